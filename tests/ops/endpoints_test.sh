#!/usr/bin/env bash
# The management HTTP endpoints of real daemons (issue 10): a kdlearnd and a kdedge streaming the
# sample video to it, both with [http] on free loopback ports. Checks:
#   - /livez and /readyz answer 200 once started (?verbose lists the checks), 404 for unknown paths;
#   - /metrics of both passes `promtool check metrics` (Debian's prometheus 2.42, from the asset
#     cache) and carries the metric families the issue lists;
#   - /api/v1/status of the learner lists the camera; the edge's has its model; /api/v1/series and
#     /api/v1/rounds are JSON; the edge's /latest.jpg is a JPEG with /api/v1/detections beside it;
#   - the embedded pages are served (/, /app.js, uPlot) with an ETag;
#   - SIGTERM stops both with exit 0.
# Usage: endpoints_test.sh <build-dir>. Exit 0 = pass, 1 = fail, 77 = skipped (assets missing).
set -uo pipefail
B="$1"
S="$(cd "$(dirname "$0")/../.." && pwd)"
A="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}"
V="$A/vtest.avi"
PROMTOOL="$A/promtool/promtool"
for f in "$V" "$A/centernet.json" "$PROMTOOL"; do
  [ -e "$f" ] || { echo "SKIP: $f missing (scripts/fetch_assets.sh)"; exit 77; }
done
T=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# get <url> <out-file>: prints the HTTP status code ("000" when nothing answered).
get() { python3 - "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except Exception:
    code, body = 0, b""
open(sys.argv[2], "wb").write(body)
print("%03d" % code)
PY
}
wait_code() {  # wait_code <url> <code> <seconds>
  for _ in $(seq $(( $3 * 5 ))); do
    [ "$(get "$1" "$T/wait.out")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}

# Keys, a tiny factory student, configs. The learner labels at one teacher scale (the integration
# tests' recipe): the shipped recipe's four scales make a teacher batch last minutes on two busy
# cores, and the learner finishes the batch in progress before it stops.
"$B/daemon/kdctl" keygen signing --secret "$T/signing.key" --public "$T/signing.pub" >/dev/null
printf 'iterations = 2\nbatch_size = 2\n[student]\nwidth = 8\nhead_channels = 16\ninput_long_side = 192\n' >"$T/tiny.toml"
"$B/daemon/kdlearnd" distill --video "$V" --frames 0:4 --out "$T/factory.kdw" --config "$T/tiny.toml" --seed 1 \
  >/dev/null 2>"$T/distill.log" || { echo "FAIL: no factory student:"; tail -n 5 "$T/distill.log"; exit 1; }
FP=$(free_port); CP=$(free_port); LH=$(free_port); EH=$(free_port)
cat >"$T/kdlearnd.toml" <<TOML
[server]
frames_endpoint = "tcp://127.0.0.1:$FP"
control_endpoint = "tcp://127.0.0.1:$CP"
insecure = true
[store]
path = "$T/store"
[training]
recipe = "$S/tests/integration/one_scale.toml"
bootstrap = "$T/factory.kdw"
[publish]
signing_key = "$T/signing.key"
[http]
listen = "127.0.0.1:$LH"
TOML
cat >"$T/kdedge.toml" <<TOML
device_id = "cam-1"
[source]
uri = "$V"
loop = true
realtime = true
fps = 10
[model]
dir = "$T/slots"
bootstrap = "$T/factory.kdw"
[learner]
insecure = true
frames_endpoint = "tcp://127.0.0.1:$FP"
control_endpoint = "tcp://127.0.0.1:$CP"
[uplink]
max_fps = 2
[update]
trusted_keys = ["$T/signing.pub"]
[output]
detections = ""
status_interval_ms = 500
[http]
listen = "127.0.0.1:$EH"
TOML
"$B/daemon/kdlearnd" serve --config "$T/kdlearnd.toml" 2>"$T/learner.log" &
lpid=$!; pids+=($lpid)
"$B/daemon/kdedge" run --config "$T/kdedge.toml" 2>"$T/edge.log" &
epid=$!; pids+=($epid)
L="http://127.0.0.1:$LH"
E="http://127.0.0.1:$EH"

# --- health ----------------------------------------------------------------------------------------
wait_code "$L/readyz" 200 120 && ok "learner /readyz 200" || { bad "learner never ready:"; get "$L/readyz?verbose" "$T/r"; cat "$T/r"; tail -n 5 "$T/learner.log"; }
wait_code "$E/readyz" 200 60 && ok "edge /readyz 200" || { bad "edge never ready:"; get "$E/readyz?verbose" "$T/r"; cat "$T/r"; tail -n 5 "$T/edge.log"; }
for u in "$L" "$E"; do
  [ "$(get "$u/livez" "$T/live")" = 200 ] && ok "$u/livez 200" || bad "$u/livez: $(cat "$T/live")"
  get "$u/readyz?verbose" "$T/verbose" >/dev/null
  grep -q '^\[+\]' "$T/verbose" && ok "$u/readyz?verbose lists checks" || bad "$u/readyz?verbose: $(cat "$T/verbose")"
  [ "$(get "$u/no/such/page" "$T/x")" = 404 ] && ok "$u unknown path 404" || bad "$u unknown path not 404"
done
# The camera must have reported to the learner before the learner's status and metrics name it.
for _ in $(seq 150); do
  get "$L/api/v1/status" "$T/status.json" >/dev/null
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["devices"].get("cam-1",{}).get("running_version",0)>0 else 1)' "$T/status.json" 2>/dev/null && break
  sleep 0.2
done

# The learner re-executes itself (OMP_WAIT_POLICY, GLIBC_TUNABLES) and names itself again: pkill/top/ps -C find it.
[ "$(cat /proc/$lpid/comm)" = kdlearnd ] && ok "learner process named kdlearnd" || bad "learner process named '$(cat /proc/$lpid/comm)'"
# ... with the settings it re-executed for (model/threads.h).
for kv in OMP_WAIT_POLICY=PASSIVE GLIBC_TUNABLES=glibc.malloc.hugetlb=1; do
  tr '\0' '\n' </proc/$lpid/environ | grep -qx "$kv" && ok "learner runs with $kv" || bad "learner runs without $kv"
done

# --- metrics -----------------------------------------------------------------------------------------
lint() {  # lint <name> <url> <families...>
  local name="$1" url="$2"; shift 2
  [ "$(get "$url/metrics" "$T/$name.prom")" = 200 ] || { bad "$name /metrics did not answer"; return; }
  if "$PROMTOOL" check metrics <"$T/$name.prom" >"$T/$name.lint" 2>&1; then
    ok "$name /metrics passes promtool check metrics ($(grep -c '^# TYPE' "$T/$name.prom") families)"
  else
    bad "$name /metrics: promtool:"; cat "$T/$name.lint"
  fi
  for fam in "$@"; do
    grep -q "^# TYPE $fam " "$T/$name.prom" || bad "$name /metrics lacks $fam"
  done
}
lint learner "$L" kd_build_info kd_learner_frames_stored_total kd_learner_frames_duplicate_total \
  kd_learner_frames_refused_total kd_learner_store_bytes kd_learner_store_budget_bytes kd_learner_label_backlog_frames \
  kd_learner_train_steps_total kd_learner_train_step_duration_seconds kd_learner_gate_decisions_total \
  kd_learner_background_yield_seconds_total \
  kd_learner_publishes_total kd_learner_heldout_ap_ratio kd_learner_rollout_stage kd_learner_device_last_seen_timestamp_seconds \
  kd_learner_device_model_version kd_learner_device_uplink_bytes_total kd_learner_device_downlink_bytes_total \
  kd_learner_rollbacks_total kd_learner_latest_version
lint edge "$E" kd_build_info kd_edge_frames_captured_total kd_edge_frames_inferred_total kd_edge_frames_dropped_total \
  kd_edge_inference_duration_seconds kd_edge_uplink_bytes_total kd_edge_downlink_bytes_total kd_edge_unacked_frames \
  kd_edge_model_version kd_edge_rollbacks_total kd_edge_updates_refused_total
grep -q 'kd_build_info{daemon="kdlearnd"' "$T/learner.prom" && ok "kd_build_info names kdlearnd" || bad "kd_build_info"
grep -q 'kd_learner_device_model_version{camera="cam-1",slot="running"} [1-9]' "$T/learner.prom" &&
  ok "the learner's metrics name cam-1 and its running version" || bad "no running version of cam-1 in the learner's metrics"

# --- JSON, preview, pages ----------------------------------------------------------------------------
python3 - "$T/status.json" <<'PY' && ok "learner /api/v1/status lists cam-1 with its versions and the notices" || bad "learner status: $(head -c 400 "$T/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["daemon"] == "kdlearnd" and "cam-1" in d["devices"] and isinstance(d["notices"], list)
c = d["devices"]["cam-1"]
assert c["online"] and c["running_version"] >= 1 and "desired_version" in c and c["uplink_budget_kbps"] > 0
PY
for path in /api/v1/series "/api/v1/rounds?group=cam-1"; do
  get "$L$path" "$T/api.json" >/dev/null
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/api.json" && ok "learner $path is JSON" || bad "learner $path: $(head -c 200 "$T/api.json")"
done
get "$E/api/v1/status" "$T/edge.json" >/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["daemon"]=="kdedge" and d["model"]["version"]>=1 and d["frames_inferred"]>0' "$T/edge.json" &&
  ok "edge /api/v1/status has its model and frames" || bad "edge status: $(head -c 300 "$T/edge.json")"
[ "$(get "$E/latest.jpg" "$T/latest.jpg")" = 200 ] && [ "$(head -c 2 "$T/latest.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ] &&
  ok "edge /latest.jpg is a JPEG ($(stat -c %s "$T/latest.jpg") B)" || bad "edge /latest.jpg"
get "$E/api/v1/detections" "$T/dets.json" >/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["width"]>0 and isinstance(d["detections"],list)' "$T/dets.json" &&
  ok "edge /api/v1/detections" || bad "edge detections: $(head -c 200 "$T/dets.json")"
for page in / /app.js /uPlot.iife.min.js; do
  [ "$(get "$L$page" "$T/page")" = 200 ] && [ -s "$T/page" ] && ok "learner $page served" || bad "learner $page"
done
[ "$(get "$E/" "$T/page")" = 200 ] && grep -qi "<html" "$T/page" && ok "edge page served" || bad "edge page"

# --- stop ----------------------------------------------------------------------------------------------
# The learner finishes the teacher batch in progress before it stops: allow 2 minutes on a busy machine.
kill -TERM "$epid" "$lpid"
for _ in $(seq 240); do
  kill -0 "$epid" 2>/dev/null || kill -0 "$lpid" 2>/dev/null || break
  sleep 0.5
done
for p in "$epid" "$lpid"; do kill -0 "$p" 2>/dev/null && { bad "pid $p still running 120 s after SIGTERM"; kill -9 "$p"; }; done
wait "$epid"; erc=$?
wait "$lpid"; lrc=$?
[ $erc -eq 0 ] && ok "kdedge exit 0 after SIGTERM" || bad "kdedge exit $erc"
[ $lrc -eq 0 ] && ok "kdlearnd exit 0 after SIGTERM" || bad "kdlearnd exit $lrc"
pids=()
[ $fail -eq 0 ] || { echo "--- learner log"; tail -n 20 "$T/learner.log"; echo "--- edge log"; tail -n 20 "$T/edge.log"; }
exit $fail
