// kdlearnd dashboard: plain JavaScript over uPlot, no build step, nothing from outside this origin.
// Polls api/v1/status (2 s), api/v1/series (5 s) and api/v1/rounds?group=G (10 s per group) and
// redraws. Every field is optional: a missing one shows as "–", never as an exception.
// Test markers on <body> (read with chromium --dump-dom): data-kd-ready="1" once status, series
// and every group's rounds have arrived and the charts are drawn; data-kd-cameras, data-kd-groups,
// data-kd-charts (uPlot charts drawn); data-kd-error while a poll fails.
"use strict";

(() => {
  const STATUS_MS = 2000, SERIES_MS = 5000, ROUNDS_MS = 10000;

  const state = {
    status: null, series: null, rounds: {},  // rounds: group -> [round, ...]
    errors: {},                              // endpoint -> message of its last failure
    charts: new Map(),                       // key -> {u, el, kind}
    drawn: new Set(),                        // keys of charts whose draw hook ran
    statusOk: false, seriesOk: false, roundsOk: new Set(),
    allVersions: new Set(),                  // groups whose versions table is expanded
  };
  const VERSIONS_SHOWN = 8;                  // versions listed per group until expanded

  // ---- small helpers -------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
  const arr = (v) => (Array.isArray(v) ? v : []);
  const DASH = "–";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k === "title") e.title = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  function fmtNum(v, digits = 1) {
    if (!isNum(v)) return DASH;
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
    return v.toFixed(digits);
  }
  function fmtInt(v) { return isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH; }
  function fmtAp(v) { return isNum(v) && v >= 0 ? v.toFixed(3) : DASH; }
  function fmtBytes(v) {
    if (!isNum(v)) return DASH;
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0, x = Math.abs(v);
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (v < 0 ? "-" : "") + (i === 0 ? x.toFixed(0) : x.toFixed(x >= 100 ? 0 : 1)) + " " + u[i];
  }
  function fmtKbps(v) {
    if (!isNum(v)) return DASH;
    if (v >= 10000) return (v / 1000).toFixed(1) + " Mbit/s";
    return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " kbit/s";
  }
  function fmtRate(v) {  // kbit/s, unit in the column header
    if (!isNum(v)) return DASH;
    return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
  }
  function fmtAgo(s) {
    if (!isNum(s)) return DASH;
    s = Math.max(0, Math.round(s));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function fmtDuration(s) {
    if (!isNum(s) || s < 0) return DASH;
    s = Math.round(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }
  function fmtClock(unix) {
    if (!isNum(unix) || unix <= 0) return DASH;
    const d = new Date(unix * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  // A per-key stable colour for cameras.
  const PALETTE = ["#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#f97316", "#6366f1"];
  function cssVar(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }
  const nowS = () => {
    const s = state.status && state.status.now_unix_s;
    return isNum(s) ? s : Date.now() / 1000;
  };

  // ---- fetching -------------------------------------------------------------------------------
  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  function noteResult(key, err) {
    if (err) state.errors[key] = String(err && err.message ? err.message : err);
    else delete state.errors[key];
    const msgs = Object.values(state.errors);
    if (msgs.length) document.body.dataset.kdError = msgs.join("; ");
    else delete document.body.dataset.kdError;
  }

  async function pollStatus() {
    try {
      state.status = obj(await getJson("api/v1/status"));
      state.statusOk = true;
      noteResult("status", null);
      setLive(true);
      renderStatus();
    } catch (e) {
      noteResult("status", e);
      setLive(false, e);
    }
    setTimeout(pollStatus, STATUS_MS);
  }

  async function pollSeries() {
    try {
      state.series = obj(await getJson("api/v1/series"));
      state.seriesOk = true;
      noteResult("series", null);
      renderSeries();
    } catch (e) {
      noteResult("series", e);
    }
    setTimeout(pollSeries, SERIES_MS);
  }

  async function pollRounds() {
    const groups = Object.keys(obj(state.status && state.status.groups));
    await Promise.all(groups.map(async (g) => {
      try {
        const r = obj(await getJson("api/v1/rounds?group=" + encodeURIComponent(g)));
        // {"group": g, "rounds": [...]} or {"groups": {g: {"rounds": [...]}}}
        state.rounds[g] = arr(Array.isArray(r.rounds) ? r.rounds : obj(obj(r.groups)[g]).rounds);
        state.roundsOk.add(g);
        noteResult("rounds:" + g, null);
      } catch (e) {
        noteResult("rounds:" + g, e);
      }
    }));
    for (const g of groups) renderAccuracy(g);
    markReady();
    // Until the first status names the groups, ask again soon.
    setTimeout(pollRounds, state.statusOk ? ROUNDS_MS : 500);
  }

  function setLive(ok, err) {
    const live = $("live");
    live.classList.toggle("ok", ok);
    live.classList.toggle("stale", !ok);
    live.querySelector("b").textContent = ok ? "live" : "stale";
    live.title = ok ? "last poll " + new Date().toLocaleTimeString() : String(err && err.message ? err.message : err);
  }

  // ---- ready markers ---------------------------------------------------------------------------
  function markReady() {
    const b = document.body.dataset;
    const st = obj(state.status);
    const groups = Object.keys(obj(st.groups));
    b.kdCameras = String(Object.keys(obj(st.devices)).length);
    b.kdGroups = String(groups.length);
    b.kdCharts = String(state.drawn.size);
    const allRounds = groups.every((g) => state.roundsOk.has(g));
    if (state.statusOk && state.seriesOk && allRounds && state.drawn.size >= state.charts.size && state.charts.size > 0) {
      b.kdReady = "1";
    }
  }

  // ---- status: header, notices, tiles, fleet, versions ----------------------------------------
  function renderStatus() {
    const st = state.status;
    $("daemon").textContent = st.daemon || "kdlearnd";
    const build = [st.version ? "v" + st.version : "", st.git ? st.git : ""].filter(Boolean).join(" · ");
    $("build").textContent = build;
    document.title = (st.daemon || "kdlearnd") + " · dashboard";
    $("uptime").textContent = isNum(st.started_unix_s) && isNum(st.now_unix_s)
      ? "up " + fmtDuration(st.now_unix_s - st.started_unix_s) : "";
    $("draining").hidden = st.draining !== true;
    renderNotices();
    renderTiles();
    renderFleet();
    renderGroupCards();
    renderStore();
    markReady();
  }

  function renderNotices() {
    const box = $("notices");
    const list = arr(state.status.notices).map(obj).filter((n) => n.text || n.kind);
    box.replaceChildren();
    if (!list.length) {
      box.append(el("div", { class: "notice ok" }, el("span", { class: "icon", text: "✓" }), el("span", { text: "All clear: no notices" })));
      return;
    }
    const rank = { error: 0, warn: 1, warning: 1, info: 2 };
    list.sort((a, b) => (rank[a.level] ?? 3) - (rank[b.level] ?? 3));
    for (const n of list) {
      const level = ["error", "warn", "info"].includes(n.level) ? n.level : n.level === "warning" ? "warn" : "info";
      const icon = level === "error" ? "✕" : level === "warn" ? "!" : "i";
      box.append(el("div", { class: "notice " + level },
        el("span", { class: "icon", text: icon }),
        n.kind ? el("span", { class: "kind", text: String(n.kind).replace(/_/g, " ") }) : null,
        n.subject ? el("span", { class: "subject", text: n.subject }) : null,
        el("span", { class: "text", text: n.text || "" })));
    }
  }

  function tile(label, value, sub, cls) {
    return el("div", { class: "tile" + (cls ? " " + cls : "") },
      el("div", { class: "label", text: label }), el("div", { class: "value", text: value }),
      sub ? el("div", { class: "sub", text: sub }) : null);
  }

  function renderTiles() {
    const st = state.status;
    const devices = Object.values(obj(st.devices)).map(obj);
    const online = devices.filter((d) => d.online === true).length;
    const L = obj(st.learner);
    const S = obj(st.store);
    const received = isNum(L.frames_received) ? L.frames_received : st.frames_received;
    const used = isNum(S.total_sst_bytes) ? S.total_sst_bytes : L.store_bytes;
    const budget = isNum(S.max_bytes) ? S.max_bytes : L.store_budget_bytes;
    const pct = isNum(used) && isNum(budget) && budget > 0 ? used / budget : null;
    const groups = Object.values(obj(st.groups)).map(obj);
    const published = groups.reduce((n, g) => n + arr(g.versions).length, 0);
    const backlog = L.label_backlog;
    const rounds = Object.values(state.rounds).reduce((n, r) => n + arr(r).length, 0);
    $("tiles").replaceChildren(
      tile("Cameras online", `${online} / ${devices.length}`, devices.length ? "" : "none enrolled yet",
        devices.length && online < devices.length ? "warn" : ""),
      tile("Groups", String(groups.length), published ? `${published} versions kept` : ""),
      tile("Frames received", fmtInt(received), isNum(L.frames_labelled) ? fmtInt(L.frames_labelled) + " labelled" : ""),
      tile("Label backlog", fmtInt(backlog), "frames waiting for the teacher", isNum(backlog) && backlog > 200 ? "warn" : ""),
      isNum(L.train_rounds)
        ? tile("Training", fmtInt(L.train_rounds) + " rounds", isNum(L.train_steps) ? fmtInt(L.train_steps) + " steps" : "")
        : tile("Training", isNum(L.train_steps) ? fmtInt(L.train_steps) + " steps" : DASH, rounds ? `${rounds} rounds logged` : ""),
      tile("Store", fmtBytes(used), isNum(budget) ? `of ${fmtBytes(budget)}` + (pct !== null ? ` (${(pct * 100).toFixed(0)}%)` : "") : "",
        pct !== null && pct > 0.9 ? "bad" : pct !== null && pct > 0.75 ? "warn" : ""));
  }

  // Rollout role of a camera in its group's rollout.
  function rolloutOf(id, dev) {
    const g = obj(obj(state.status.groups)[dev.group]);
    const r = obj(g.rollout);
    if (!r.stage) return { text: DASH, cls: "" };
    const canary = arr(r.canary).concat(typeof r.canary === "string" && r.canary ? [r.canary] : []);
    const committed = arr(r.committed);
    const parts = [r.stage];
    if (isNum(r.version) && r.version > 0) parts[0] += " v" + r.version;
    const roles = [];
    if (canary.includes(id)) roles.push("canary");
    if (committed.includes(id)) roles.push("committed");
    const cls = /fail|halt|roll/i.test(r.stage) ? "bad" : r.stage === "canary" || r.stage === "rest" ? "warn" : "";
    return { text: parts.join(" "), roles: roles.join(", "), cls };
  }

  function versionCell(d) {
    const run = d.running_version, com = d.committed_version, des = d.desired_version;
    const v = (x) => (isNum(x) && x > 0 ? "v" + x : DASH);
    const differs = isNum(des) && des > 0 && des !== run;
    return el("td", { class: "ver" + (differs ? " differs" : "") },
      el("span", { class: "run", text: v(run) }), el("span", { class: "sep", text: "/" }),
      el("span", { class: isNum(com) && com !== run ? "warnt" : "", text: v(com) }), el("span", { class: "sep", text: "/" }),
      el("span", { class: differs ? "desired" : "", text: v(des), title: differs ? "desired differs from running" : null }));
  }

  function bar(value, budget) {
    if (!isNum(value) || !isNum(budget) || budget <= 0) return null;
    const f = value / budget;
    const b = el("span", { class: "bar" + (f > 1 ? " over" : f > 0.9 ? " near" : "") });
    b.append(el("i", { style: `width:${Math.min(100, f * 100).toFixed(1)}%` }));
    return b;
  }

  function renderFleet() {
    const st = state.status;
    const devices = obj(st.devices);
    const ids = Object.keys(devices).sort();
    const tbody = $("fleet").querySelector("tbody");
    tbody.replaceChildren();
    const now = nowS();
    let online = 0;
    for (const id of ids) {
      const d = obj(devices[id]);
      if (d.online === true) online++;
      const ago = isNum(d.last_seen_unix_s) && d.last_seen_unix_s > 0 ? now - d.last_seen_unix_s : null;
      const ro = rolloutOf(id, d);
      const up = d.uplink_kbps, budget = d.uplink_budget_kbps;
      const stateCls = /fail|roll|error/i.test(d.state || "") ? "bad" : /probation|trial|download/i.test(d.state || "") ? "warn" : "";
      tbody.append(el("tr", { id: "cam-" + id, class: d.online === true ? "" : "offline" },
        el("td", { class: "cam" }, el("span", { class: "flex" }, el("span", { class: "dot " + (d.online === true ? "on" : "off"), title: d.online === true ? "online" : "offline" }),
          el("b", { text: id }), d.enrolled === false ? el("span", { class: "pill", text: "not enrolled", title: "not in the allowlist (fine with insecure transport)" }) : null)),
        el("td", { class: "muted", text: d.online === true && ago !== null && ago < 5 ? "now" : fmtAgo(ago) }),
        el("td", { text: d.group || DASH }),
        el("td", {}, d.state ? el("span", { class: "pill " + stateCls, text: d.state }) : DASH),
        el("td", { class: "num", text: fmtNum(d.fps) }),
        el("td", { class: "num", text: isNum(d.inference_ms) ? d.inference_ms.toFixed(1) + " ms" : DASH }),
        versionCell(d),
        el("td", {}, el("span", { class: "pill " + ro.cls, text: ro.text }), ro.roles ? el("span", { class: "hint", text: " · " + ro.roles }) : null),
        el("td", { class: "bw", title: isNum(budget) ? `${fmtKbps(up)} of a ${fmtKbps(budget)} budget` : null },
          el("span", { class: "flex" }, el("span", { class: "num", text: fmtRate(up) }), bar(up, budget),
            isNum(budget) ? el("span", { class: "hint", text: fmtRate(budget) }) : null)),
        el("td", { class: "num", text: fmtRate(d.downlink_kbps) }),
        el("td", { class: "num" + (isNum(d.unacked_frames) && d.unacked_frames > 50 ? " warnt" : ""), text: fmtInt(d.unacked_frames) }),
        el("td", { class: "num", text: fmtInt(d.frames_stored) })));
    }
    if (!ids.length) {
      tbody.append(el("tr", {}, el("td", { colspan: "12", class: "empty", text: "No camera has connected yet." })));
    }
    $("fleet-sub").textContent = ids.length ? `${online} of ${ids.length} online` : "";
  }

  // ---- groups: accuracy chart + versions table -----------------------------------------------
  function renderGroupCards() {
    const groups = obj(state.status.groups);
    const host = $("groups");
    const names = Object.keys(groups).sort();
    // Remove cards of groups that disappeared.
    for (const card of [...host.children]) {
      if (!names.includes(card.dataset.group)) {
        destroyChart("acc:" + card.dataset.group);
        card.remove();
      }
    }
    for (const g of names) {
      let card = host.querySelector(`[data-group="${CSS.escape(g)}"]`);
      if (!card) {
        card = el("section", { class: "card group", "data-group": g },
          el("h2", {}, "Accuracy ", el("span", { class: "gname", text: g }), el("span", { class: "sub" })),
          el("div", { class: "gmeta" }),
          el("div", { class: "chart acc" }),
          el("div", { class: "legend-note muted" }),
          el("h3", { text: "Versions" }),
          el("div", { class: "table-wrap" }, el("table", { class: "versions" })));
        host.append(card);
      }
      renderGroupMeta(card, g, obj(groups[g]));
      renderVersions(card.querySelector("table.versions"), obj(groups[g]), g);
      renderAccuracy(g);
    }
  }

  function renderGroupMeta(card, name, g) {
    const r = obj(g.rollout);
    const lr = obj(g.last_round);
    const margin = obj(state.status.gate).margin;
    card.querySelector("h2 .sub").textContent = "AP (.50:.95) and AP50 on held-out frames, against their (refined) teacher labels";
    const items = [
      ["cameras", arr(g.devices).join(", ") || DASH],
      ["latest", isNum(g.latest) && g.latest > 0 ? "v" + g.latest : DASH],
      ["rollout", r.stage ? r.stage + (isNum(r.version) && r.version > 0 ? " v" + r.version : "") +
        (isNum(r.failures) && r.failures > 0 ? ` (${r.failures} failures)` : "") : DASH],
      ["labelled", fmtInt(g.labelled)],
      ["held out", fmtInt(g.held_out)],
      ["last round", isNum(lr.round) ? `#${lr.round}: ${lr.gate || "?"}, AP ${fmtAp(lr.ap_candidate)} vs ${fmtAp(lr.ap_deployed)}` : DASH],
      ["gate margin", isNum(margin) ? (margin >= 0 ? "+" : "") + margin.toFixed(3) + " AP" : DASH],
    ];
    const meta = card.querySelector(".gmeta");
    meta.replaceChildren(...items.map(([k, v]) => el("span", { class: "kv" }, el("span", { class: "k", text: k }), el("span", { class: "v", text: v }))));
    const gate = lr.gate;
    if (gate) {
      meta.append(el("span", { class: "pill " + (gate === "pass" ? "good" : gate === "fail" ? "bad" : ""), text: "gate " + gate }));
    }
  }

  function renderVersions(table, g, name) {
    const all = arr(g.versions).map(obj).sort((a, b) => (b.version || 0) - (a.version || 0));
    const expanded = state.allVersions.has(name);
    const versions = expanded ? all : all.slice(0, VERSIONS_SHOWN);
    const r = obj(g.rollout);
    const head = el("thead", {}, el("tr", {},
      el("th", { text: "Version" }), el("th", { text: "Published" }), el("th", { class: "num", text: "AP" }),
      el("th", { class: "num", text: "AP50" }), el("th", { class: "num", text: "AP vs base" }),
      el("th", { class: "num", text: "AP50 vs base" }), el("th", { class: "num", text: "Held-out" }),
      el("th", { class: "num", text: "Shipped as" }), el("th", { text: "" })));
    const body = el("tbody");
    const now = nowS();
    for (const v of versions) {
      const rev = isNum(v.revert_of) && v.revert_of > 0;
      const diff = (a, b) => {
        if (!isNum(a) || !isNum(b) || a < 0 || b < 0) return el("td", { class: "num muted", text: DASH });
        const d = a - b;
        return el("td", { class: "num " + (d > 0 ? "up" : d < 0 ? "down" : ""), text: (d >= 0 ? "+" : "") + d.toFixed(3) });
      };
      const shipped = isNum(v.delta_size) && v.delta_size > 0
        ? `Δ ${fmtBytes(v.delta_size)} from v${v.delta_base}` : isNum(v.full_size) ? `full ${fmtBytes(v.full_size)}` : DASH;
      const tags = [];
      if (rev) tags.push(el("span", { class: "pill bad", text: `rollback to v${v.revert_of}` }));
      if (isNum(r.version) && r.version === v.version && r.stage) tags.push(el("span", { class: "pill", text: r.stage }));
      if (isNum(v.version) && v.version === g.latest) tags.push(el("span", { class: "pill good", text: "latest" }));
      body.append(el("tr", { class: rev ? "rollback" : "" },
        el("td", {}, el("b", { text: "v" + (v.version ?? "?") })),
        el("td", { title: fmtClock(v.created_unix_s) },
          isNum(v.created_unix_s) ? fmtAgo(now - v.created_unix_s) : DASH),
        el("td", { class: "num", text: fmtAp(v.ap) }), el("td", { class: "num", text: fmtAp(v.ap50) }),
        diff(v.ap, v.ap_base), diff(v.ap50, v.ap50_base),
        el("td", { class: "num", text: isNum(v.holdout_frames) && v.holdout_frames > 0 ? fmtInt(v.holdout_frames) : DASH }),
        el("td", { class: "num", text: shipped }),
        el("td", { class: "tags" }, tags)));
    }
    if (!versions.length) body.append(el("tr", {}, el("td", { colspan: "9", class: "empty", text: "Nothing published yet." })));
    if (all.length > VERSIONS_SHOWN) {
      const more = el("button", { class: "linkish", type: "button",
        text: expanded ? "show the newest " + VERSIONS_SHOWN : `show all ${all.length} versions (${all.length - VERSIONS_SHOWN} older)` });
      more.addEventListener("click", () => {
        if (expanded) state.allVersions.delete(name); else state.allVersions.add(name);
        renderVersions(table, g, name);
      });
      body.append(el("tr", { class: "more" }, el("td", { colspan: "9" }, more)));
    }
    table.replaceChildren(head, body);
  }

  // Vertical markers (publishes, rollbacks) drawn in uPlot's draw hook with u.valToPos.
  function markersPlugin(getMarkers) {
    return {
      hooks: {
        draw: [(u) => {
          const marks = getMarkers();
          if (!marks.length) return;
          const ctx = u.ctx, dpr = uPlot.pxRatio || 1;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
          ctx.textBaseline = "top";
          const rowsEnd = [0, 0];  // right edge of the last label in each text row (no overlaps)
          for (const m of marks.slice().sort((a, b) => a.t - b.t)) {
            const x = Math.round(u.valToPos(m.t, "x", true)) + 0.5;
            if (!(x >= left - 1 && x <= left + width + 1)) continue;
            ctx.strokeStyle = m.color;
            ctx.globalAlpha = 0.9;
            ctx.lineWidth = dpr * (m.bold ? 2 : 1);
            ctx.setLineDash(m.dash ? m.dash.map((d) => d * dpr) : []);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            // Labels sit above the plot (the chart's top padding) in two rows; a label that fits
            // in neither is left out (the line stays, the versions table names it).
            const w = ctx.measureText(m.label).width + 6 * dpr;
            const tx = Math.min(x - w / 2 + 3 * dpr, left + width - w);
            const row = rowsEnd.findIndex((end) => end < tx);
            if (row < 0 && !m.bold) continue;
            const r = row < 0 ? 0 : row;
            rowsEnd[r] = tx + w;
            const ty = top - (r + 1) * 14 * dpr;
            ctx.globalAlpha = 1;
            if (row < 0) {  // a rollback always gets its label: over the row's last one
              ctx.fillStyle = cssVar("--card", "#fff");
              ctx.fillRect(tx - 1 * dpr, ty - 1 * dpr, w, 13 * dpr);
            }
            ctx.fillStyle = m.color;
            ctx.fillText(m.label, tx, ty);
          }
          ctx.restore();
        }],
      },
    };
  }

  // Marks the chart as drawn (for the data-kd-charts test marker).
  function drawnPlugin(key) {
    return { hooks: { draw: [() => { if (!state.drawn.has(key)) { state.drawn.add(key); markReady(); } }] } };
  }

  function axisColors() {
    return {
      stroke: cssVar("--muted", "#64748b"),
      grid: { stroke: cssVar("--grid", "rgba(100,116,139,0.15)"), width: 1 },
      ticks: { stroke: cssVar("--grid", "rgba(100,116,139,0.15)"), width: 1 },
    };
  }

  function chartWidth(host) {
    return Math.max(240, Math.floor(host.getBoundingClientRect().width || host.clientWidth || 600));
  }

  // Creates or updates the uPlot chart `key` in `host`.
  function upsertChart(key, host, makeOpts, data, height) {
    let c = state.charts.get(key);
    if (c && c.el !== host) { destroyChart(key); c = null; }
    if (!c) {
      if (typeof uPlot === "undefined") throw new Error("uPlot did not load");
      const opts = makeOpts();
      opts.width = chartWidth(host);
      opts.height = height || 220;
      opts.plugins = (opts.plugins || []).concat([drawnPlugin(key)]);
      host.replaceChildren();
      const u = new uPlot(opts, data, host);
      c = { u, el: host };
      // Follow the container's width (grid reflows, window resizes).
      c.ro = new ResizeObserver(() => {
        const w = chartWidth(host);
        if (Math.abs(w - c.u.width) > 1) c.u.setSize({ width: w, height: c.u.height });
      });
      c.ro.observe(host);
      state.charts.set(key, c);
    } else {
      c.u.setData(data);
    }
    return c;
  }

  function destroyChart(key) {
    const c = state.charts.get(key);
    if (c) { c.ro.disconnect(); c.u.destroy(); state.charts.delete(key); state.drawn.delete(key); }
  }

  // x-range over data and markers, with a little room; an empty chart shows the last hour.
  function xRange(extra) {
    return (u, min, max) => {
      const xs = extra().concat([min, max]).filter(isNum);
      let lo = Math.min(...xs), hi = Math.max(...xs);
      if (!xs.length) { hi = nowS(); lo = hi - 3600; }
      if (hi - lo < 60) { lo -= 30; hi += 30; }
      const pad = (hi - lo) * 0.03;
      return [lo - pad, hi + pad];
    };
  }

  function renderAccuracy(g) {
    const card = $("groups").querySelector(`[data-group="${CSS.escape(g)}"]`);
    if (!card || !state.status) return;
    const group = obj(obj(state.status.groups)[g]);
    const rounds = arr(state.rounds[g]).map(obj).filter((r) => isNum(r.time_unix_s)).sort((a, b) => a.time_unix_s - b.time_unix_s);
    const ap = (v) => (isNum(v) && v >= 0 ? v : null);
    const data = [
      rounds.map((r) => r.time_unix_s),
      rounds.map((r) => ap(r.ap_candidate)), rounds.map((r) => ap(r.ap_deployed)),
      rounds.map((r) => ap(r.ap50_candidate)), rounds.map((r) => ap(r.ap50_deployed)),
    ];
    const markers = () => {
      const gg = obj(obj(obj(state.status).groups)[g]);
      return arr(gg.versions).map(obj).filter((v) => isNum(v.created_unix_s) && v.created_unix_s > 0).map((v) => {
        const rev = isNum(v.revert_of) && v.revert_of > 0;
        return {
          t: v.created_unix_s,
          label: rev ? `v${v.version} ↩ v${v.revert_of}` : `v${v.version}`,
          color: rev ? cssVar("--bad", "#dc2626") : cssVar("--accent", "#2563eb"),
          dash: rev ? null : [4, 3], bold: rev,
        };
      });
    };
    const c = upsertChart("acc:" + g, card.querySelector(".chart.acc"), () => {
      const cand = cssVar("--accent", "#2563eb"), dep = cssVar("--good", "#059669");
      const gateColors = (r) => r.gate === "pass" ? cssVar("--good", "#059669") : r.gate === "fail" ? cssVar("--bad", "#dc2626") : cssVar("--muted", "#64748b");
      return {
        scales: { x: { time: true, range: xRange(() => markers().map((m) => m.t)) }, y: { range: (u, lo, hi) => [0, Math.min(1, Math.max(0.1, (isNum(hi) ? hi : 0.5) * 1.15))] } },
        series: [
          {},
          { label: "AP candidate", stroke: cand, width: 2, points: { size: 6, fill: cand }, spanGaps: true, value: (u, v) => fmtAp(v) },
          { label: "AP deployed", stroke: dep, width: 2, points: { size: 5 }, spanGaps: true, value: (u, v) => fmtAp(v) },
          { label: "AP50 candidate", stroke: cand, width: 1.5, dash: [6, 4], points: { show: false }, spanGaps: true, value: (u, v) => fmtAp(v) },
          { label: "AP50 deployed", stroke: dep, width: 1.5, dash: [6, 4], points: { show: false }, spanGaps: true, value: (u, v) => fmtAp(v) },
        ],
        axes: [Object.assign({}, axisColors()), Object.assign({ size: 48, values: (u, s) => s.map((v) => v.toFixed(2)) }, axisColors())],
        padding: [34, 12, 0, 0],
        plugins: [markersPlugin(markers), gateDotsPlugin(() => arr(state.rounds[g]).map(obj), gateColors)],
        legend: { live: true },
      };
    }, data, 260);
    c.u.redraw(false);
    const note = card.querySelector(".legend-note");
    const versions = arr(group.versions).map(obj);
    const rollbacks = versions.filter((v) => isNum(v.revert_of) && v.revert_of > 0).length;
    note.textContent = (rounds.length ? `${rounds.length} rounds` : "no training round yet") +
      ` · dotted lines: publishes (${versions.length})` + (rollbacks ? ` · red: rollbacks (${rollbacks})` : "") +
      " · dots under the axis: gate pass (green) / fail (red) / waiting (grey) · dashed: AP50";
  }

  // Small dots under the plot area, one per round, coloured by the gate's decision.
  function gateDotsPlugin(getRounds, colorOf) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx, dpr = uPlot.pxRatio || 1;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          for (const r of getRounds()) {
            if (!isNum(r.time_unix_s) || !r.gate) continue;
            const x = u.valToPos(r.time_unix_s, "x", true);
            if (x < left || x > left + width) continue;
            ctx.fillStyle = colorOf(r);
            ctx.beginPath();
            ctx.arc(x, top + height - 5 * dpr, 3 * dpr, 0, 2 * Math.PI);
            ctx.fill();
          }
          ctx.restore();
        }],
      },
    };
  }

  // ---- series: bandwidth per camera, learner throughput --------------------------------------
  function seriesArr(v, n) {
    const a = arr(v);
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = isNum(a[i]) ? a[i] : null;
    return out;
  }

  function renderSeries() {
    const s = state.series;
    const t = arr(s.t).filter(isNum);
    const n = t.length;
    const cams = obj(s.cameras);
    const host = $("bandwidth");
    const ids = Object.keys(cams).sort();
    // Camera panels: create, update, drop.
    for (const p of [...host.children]) {
      if (!ids.includes(p.dataset.cam)) { destroyChart("bw:" + p.dataset.cam); p.remove(); }
    }
    if (ids.length) host.querySelector(":scope > .empty")?.remove();
    const panels = ids.map((id, i) => {
      let panel = host.querySelector(`[data-cam="${CSS.escape(id)}"]`);
      if (!panel) {
        panel = el("div", { class: "panel", "data-cam": id }, el("h3", {}, el("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` }), id,
          el("span", { class: "sub" })), el("div", { class: "chart" }));
        host.append(panel);
      }
      return panel;
    });
    ids.forEach((id, i) => {
      const panel = panels[i];
      const c = obj(cams[id]);
      const up = seriesArr(c.uplink_kbps, n), down = seriesArr(c.downlink_kbps, n), budget = seriesArr(c.uplink_budget_kbps, n);
      const lastUp = up.filter(isNum).pop(), lastBudget = budget.filter(isNum).pop();
      panel.querySelector(".sub").textContent = isNum(lastUp) ? ` now ${fmtKbps(lastUp)}` + (isNum(lastBudget) ? ` of ${fmtKbps(lastBudget)}` : "") : "";
      const color = PALETTE[i % PALETTE.length];
      upsertChart("bw:" + id, panel.querySelector(".chart"), () => ({
        scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(10, (isNum(hi) ? hi : 0) * 1.1)] } },
        series: [
          {},
          { label: "uplink", stroke: color, width: 2, fill: color + "22", value: (u, v) => fmtKbps(v) },
          { label: "downlink", stroke: cssVar("--violet", "#7c3aed"), width: 1.5, value: (u, v) => fmtKbps(v) },
          { label: "uplink budget", stroke: cssVar("--bad", "#dc2626"), width: 1.5, dash: [6, 4], value: (u, v) => fmtKbps(v) },
        ],
        axes: [Object.assign({}, axisColors()), Object.assign({ size: 56, label: "kbit/s", labelSize: 16, values: (u, sp) => sp.map((v) => fmtInt(v)) }, axisColors())],
      }), [t, up, down, budget], 190);
    });
    if (!ids.length) host.replaceChildren(el("div", { class: "empty", text: "No camera series yet." }));

    // Learner: ingest and training rates (+ label backlog on a right axis), store vs budget.
    const L = obj(s.learner);
    const lhost = $("learner");
    if (!lhost.children.length) {
      lhost.append(
        el("div", { class: "panel", id: "p-rates" }, el("h3", { text: "Ingest, labelling and training" }), el("div", { class: "chart" })),
        el("div", { class: "panel", id: "p-store" }, el("h3", { text: "Store vs budget" }), el("div", { class: "chart" })));
    }
    upsertChart("learner:rates", $("p-rates").querySelector(".chart"), () => ({
      scales: { x: { time: true }, rate: { range: (u, lo, hi) => [0, Math.max(1, (isNum(hi) ? hi : 0) * 1.1)] },
        frames: { range: (u, lo, hi) => [0, Math.max(10, (isNum(hi) ? hi : 0) * 1.1)] } },
      series: [
        {},
        { label: "ingest frames/s", scale: "rate", stroke: cssVar("--accent", "#2563eb"), width: 2, value: (u, v) => fmtNum(v, 2) },
        { label: "train steps/s", scale: "rate", stroke: cssVar("--good", "#059669"), width: 2, value: (u, v) => fmtNum(v, 2) },
        { label: "label backlog (frames)", scale: "frames", stroke: cssVar("--warn", "#d97706"), width: 1.5, dash: [5, 3], value: (u, v) => fmtInt(v) },
      ],
      axes: [Object.assign({}, axisColors()), Object.assign({ scale: "rate", size: 44, label: "per s" }, axisColors()),
        Object.assign({ scale: "frames", side: 1, size: 52, label: "backlog", grid: { show: false } }, axisColors(), { grid: { show: false } })],
    }), [t, seriesArr(L.ingest_fps, n), seriesArr(L.train_steps_per_s, n), seriesArr(L.label_backlog, n)], 220);
    upsertChart("learner:store", $("p-store").querySelector(".chart"), () => ({
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1024 * 1024, (isNum(hi) ? hi : 0) * 1.08)] } },
      series: [
        {},
        { label: "store", stroke: cssVar("--accent", "#2563eb"), width: 2, fill: cssVar("--accent", "#2563eb") + "22", value: (u, v) => fmtBytes(v) },
        { label: "budget", stroke: cssVar("--bad", "#dc2626"), width: 1.5, dash: [6, 4], value: (u, v) => fmtBytes(v) },
      ],
      axes: [Object.assign({}, axisColors()), Object.assign({ size: 64, values: (u, sp) => sp.map((v) => fmtBytes(v)) }, axisColors())],
    }), [t, seriesArr(L.store_bytes, n), seriesArr(L.store_budget_bytes, n)], 220);
    const interval = isNum(s.interval_s) ? s.interval_s : null;
    $("learner-sub").textContent = n ? `last ${fmtDuration(n * (interval || 5))}, sampled every ${interval || "?"} s` : "no samples yet";
    markReady();
  }

  function renderStore() {
    const st = state.status;
    const S = obj(st.store), L = obj(st.learner);
    const used = isNum(S.total_sst_bytes) ? S.total_sst_bytes : L.store_bytes;
    const budget = isNum(S.max_bytes) ? S.max_bytes : L.store_budget_bytes;
    const host = $("store");
    if (!isNum(used) || !isNum(budget) || budget <= 0) { host.replaceChildren(); return; }
    const f = used / budget;
    const b = el("div", { class: "meter" + (f > 0.9 ? " over" : f > 0.75 ? " near" : "") }, el("i", { style: `width:${Math.min(100, f * 100).toFixed(1)}%` }));
    const flags = [];
    if (S.writes_stopped === true) flags.push(el("span", { class: "pill bad", text: "writes stopped" }));
    if (isNum(S.background_errors) && S.background_errors > 0) flags.push(el("span", { class: "pill bad", text: `${S.background_errors} background errors` }));
    host.replaceChildren(el("div", { class: "meter-row" },
      el("span", { class: "k", text: "store" }), b,
      el("span", { class: "v", text: `${fmtBytes(used)} of ${fmtBytes(budget)} (${(f * 100).toFixed(1)}%)` }), flags));
  }

  window.addEventListener("error", (e) => { document.body.dataset.kdError = "script: " + (e.message || e); });

  pollStatus();
  pollSeries();
  pollRounds();
})();
