// kdedge page: the camera's model, rates, counters and its latest frame with detections. Plain
// JavaScript, no library, nothing from outside this origin. Polls api/v1/status every 2 s and
// api/v1/detections every 1 s, and reloads latest.jpg every 1 s (404 until the first frame).
// Every field is optional. Test markers on <body>: data-kd-ready="1", data-kd-device,
// data-kd-frame="1" once a frame loaded, data-kd-error while a poll fails.
"use strict";

(() => {
  const STATUS_MS = 2000, DETECTIONS_MS = 1000, FRAME_MS = 1000, HISTORY = 150, MAX_LISTED = 10;
  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
  const arr = (v) => (Array.isArray(v) ? v : []);
  const DASH = "–";
  const errors = {};
  const history = { fps: [], inference: [], uplink: [] };  // last HISTORY status samples
  let status = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  const fmtInt = (v) => (isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH);
  const fmtNum = (v, d = 1) => (isNum(v) ? v.toFixed(d) : DASH);
  function fmtBytes(v) {
    if (!isNum(v)) return DASH;
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0, x = Math.abs(v);
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i === 0 ? x.toFixed(0) : x.toFixed(x >= 100 ? 0 : 1)) + " " + u[i];
  }
  function fmtKbps(v) {
    if (!isNum(v)) return DASH;
    return v >= 10000 ? (v / 1000).toFixed(1) + " Mbit/s" : (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " kbit/s";
  }

  function noteResult(key, err) {
    if (err) errors[key] = String(err && err.message ? err.message : err);
    else delete errors[key];
    const msgs = Object.values(errors);
    if (msgs.length) document.body.dataset.kdError = msgs.join("; ");
    else delete document.body.dataset.kdError;
  }

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) { const e = new Error(`${url}: HTTP ${r.status}`); e.status = r.status; throw e; }
    return r.json();
  }

  // ---- status ---------------------------------------------------------------------------------
  async function pollStatus() {
    try {
      status = obj(await getJson("api/v1/status"));
      noteResult("status", null);
      setLive(true);
      push(history.fps, status.fps);
      push(history.inference, status.mean_inference_ms);
      push(history.uplink, status.uplink_kbps);
      render();
      document.body.dataset.kdDevice = String(status.device || "");
      document.body.dataset.kdReady = "1";
    } catch (e) {
      noteResult("status", e);
      setLive(false, e);
    }
    setTimeout(pollStatus, STATUS_MS);
  }
  function push(a, v) { a.push(isNum(v) ? v : null); if (a.length > HISTORY) a.shift(); }

  function setLive(ok, err) {
    const live = $("live");
    live.classList.toggle("ok", ok);
    live.classList.toggle("stale", !ok);
    live.querySelector("b").textContent = ok ? "live" : "stale";
    live.title = ok ? "last poll " + new Date().toLocaleTimeString() : String(err && err.message ? err.message : err);
  }

  function kv(dl, rows) {
    dl.replaceChildren(...rows.flatMap(([k, v, cls]) => [el("dt", { text: k }), el("dd", { class: cls || "" }, v)]));
  }

  function render() {
    const s = status;
    $("daemon").textContent = s.daemon || "kdedge";
    $("device").textContent = s.device || "";
    document.title = (s.device ? s.device + " · " : "") + (s.daemon || "kdedge");
    $("build").textContent = [s.version ? "v" + s.version : "", s.git || ""].filter(Boolean).join(" · ");
    const st = $("state");
    st.textContent = s.state || "";
    st.hidden = !s.state;
    st.className = "pill " + (/fail|error|roll/i.test(s.state || "") ? "bad" : /probation|trial|download|start/i.test(s.state || "") ? "warn" : "good");

    const m = obj(s.model);
    const v = (x) => (isNum(x) && x > 0 ? "v" + x : DASH);
    const classes = arr(m.classes);
    const arch = m.architecture ||
      (isNum(m.width) ? `student, width ${m.width}` + (m.nms_free === true ? ", NMS-free" : m.nms_free === false ? ", NMS" : "") : DASH);
    const desired = isNum(s.desired_version) && s.desired_version > 0 && s.desired_version !== s.running_version;
    kv($("model"), [
      ["running", el("span", {}, m.trial === true ? el("span", { class: "pill warn", text: "on probation" }) : null,
        " ", el("b", { class: "big", text: v(s.running_version) }))],
      ["committed", v(s.committed_version), isNum(s.committed_version) && s.committed_version !== s.running_version ? "warnt" : ""],
      ["desired", v(s.desired_version), desired ? "warnt" : ""],
      ["version floor", v(s.floor_version)],
      ["architecture", arch, "mono"],
      ["input", m.input || DASH, "mono"],
      ["classes", classes.length ? el("span", {}, classes.map((c) => el("span", { class: "chip", text: c }))) : DASH],
    ]);

    const budget = s.uplink_budget_kbps, up = s.uplink_kbps;
    const f = isNum(up) && isNum(budget) && budget > 0 ? up / budget : null;
    $("rates").replaceChildren(
      rate("Frame rate", fmtNum(s.fps), "fps", history.fps),
      rate("Inference", fmtNum(s.mean_inference_ms), "ms mean", history.inference,
        isNum(s.max_frame_gap_ms) ? `max frame gap ${fmtInt(s.max_frame_gap_ms)} ms` : ""),
      rate("Uplink", isNum(up) ? fmtNum(up, up >= 100 ? 0 : 1) : DASH, "kbit/s", history.uplink,
        isNum(budget) ? `budget ${fmtKbps(budget)}` : "", f),
      rate("Downlink", fmtNum(s.downlink_kbps), "kbit/s", null,
        isNum(s.unacked_frames) ? `${fmtInt(s.unacked_frames)} frames un-acked` : ""));

    kv($("counters"), [
      ["captured", fmtInt(s.frames_captured)], ["inferred", fmtInt(s.frames_inferred)],
      ["dropped", fmtInt(s.frames_dropped), s.frames_dropped > 0 ? "warnt" : ""],
      ["selected", fmtInt(s.frames_selected)], ["sent", fmtInt(s.frames_sent)], ["acked", fmtInt(s.frames_acked)],
      ["resent", fmtInt(s.frames_resent)], ["uplink", fmtBytes(s.uplink_bytes)], ["downlink", fmtBytes(s.downlink_bytes)],
      ["swaps", fmtInt(s.swaps)], ["commits", fmtInt(s.commits)],
      ["rollbacks", fmtInt(s.rollbacks), s.rollbacks > 0 ? "badt" : ""],
      ["inference errors", fmtInt(s.inference_errors), s.inference_errors > 0 ? "badt" : ""],
    ]);
  }

  function rate(label, value, unit, hist, sub, fraction) {
    const box = el("div", { class: "rate" },
      el("div", { class: "label", text: label }),
      el("div", { class: "value" }, value, el("span", { class: "unit", text: " " + unit })),
      sub ? el("div", { class: "sub", text: sub }) : null);
    if (isNum(fraction)) {
      const b = el("div", { class: "bar" + (fraction > 1 ? " over" : fraction > 0.9 ? " near" : "") });
      b.append(el("i", { style: `width:${Math.min(100, fraction * 100).toFixed(1)}%` }));
      box.append(b);
    }
    if (hist) box.append(sparkline(hist));
    return box;
  }

  // An inline SVG line of the recent samples (no axes: a shape, the number is above it).
  function sparkline(values) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    const nums = values.filter(isNum);
    if (nums.length < 2) return svg;
    const hi = Math.max(...nums), lo = Math.min(0, ...nums);
    const span = hi - lo || 1;
    const pts = [];
    values.forEach((v, i) => {
      if (!isNum(v)) return;
      const x = (i / (values.length - 1)) * 100, y = 22 - ((v - lo) / span) * 20;
      pts.push(x.toFixed(2) + "," + y.toFixed(2));
    });
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    return svg;
  }

  // ---- detections -----------------------------------------------------------------------------
  async function pollDetections() {
    try {
      const d = obj(await getJson("api/v1/detections"));
      noteResult("detections", null);
      renderDetections(d);
    } catch (e) {
      if (e.status === 404) { noteResult("detections", null); renderDetections(null); }  // no frame yet
      else noteResult("detections", e);
    }
    setTimeout(pollDetections, DETECTIONS_MS);
  }

  // A stable colour per class name: its index in the model's class list, else a hash.
  function classIndex(name) {
    const classes = arr(obj(status && status.model).classes);
    let i = classes.indexOf(name);
    if (i < 0) i = [...String(name)].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    return i % 6;
  }

  function renderDetections(d) {
    const tbody = $("dets").querySelector("tbody");
    if (!d) {
      tbody.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "4", text: "No frame yet." })));
      $("det-sub").textContent = "";
      return;
    }
    const all = arr(d.detections).map(obj).sort((a, b) => (b.score || 0) - (a.score || 0));
    const dets = all.slice(0, MAX_LISTED);
    const parts = [];
    if (isNum(d.frame)) parts.push("frame " + fmtInt(d.frame));
    if (isNum(d.version)) parts.push("model v" + d.version);
    if (isNum(d.width) && isNum(d.height)) parts.push(`${d.width}×${d.height}`);
    $("det-sub").textContent = parts.join(" · ");
    $("frame-sub").textContent = `${all.length} detection${all.length === 1 ? "" : "s"}` + (parts.length ? " · " + parts.join(" · ") : "");
    document.body.dataset.kdDetections = String(all.length);
    const rows = dets.map((b) => el("tr", {},
      el("td", {}, el("span", { class: "chip c" + classIndex(b.class), text: b.class || "?" })),
      el("td", { class: "score" }, el("span", { class: "sbar" }, el("i", { style: `width:${Math.round((isNum(b.score) ? b.score : 0) * 100)}%` })),
        el("span", { class: "num", text: fmtNum(b.score, 2) })),
      el("td", { class: "num mono", text: isNum(b.x) && isNum(b.y) ? `${Math.round(b.x)}, ${Math.round(b.y)}` : DASH }),
      el("td", { class: "num mono", text: isNum(b.w) && isNum(b.h) ? `${Math.round(b.w)} × ${Math.round(b.h)}` : DASH })));
    if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "4", text: "Nothing detected in this frame." })));
    if (all.length > dets.length) {
      rows.push(el("tr", {}, el("td", { class: "empty", colspan: "4", text: `and ${all.length - dets.length} more below score ${fmtNum(dets[dets.length - 1].score, 2)}` })));
    }
    tbody.replaceChildren(el("tr", { class: "head" }, el("th", { text: "class" }), el("th", { text: "score" }),
      el("th", { class: "num", text: "x, y" }), el("th", { class: "num", text: "w × h" })), ...rows);
  }

  // ---- latest frame: preloaded off-screen, swapped in when complete (no flicker) -------------
  function pollFrame() {
    const img = new Image();
    img.onload = () => {
      const shown = $("latest");
      shown.src = img.src;
      shown.hidden = false;
      $("placeholder").hidden = true;
      document.body.dataset.kdFrame = "1";
      setTimeout(pollFrame, FRAME_MS);
    };
    img.onerror = () => {  // 404 until the first frame; keep the last good one otherwise
      if ($("latest").hidden) $("placeholder").hidden = false;
      setTimeout(pollFrame, FRAME_MS);
    };
    img.src = "latest.jpg?ts=" + Date.now();
  }

  window.addEventListener("error", (e) => { document.body.dataset.kdError = "script: " + (e.message || e); });

  pollStatus();
  pollDetections();
  pollFrame();
})();
