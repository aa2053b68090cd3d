#!/usr/bin/env bash
# The web pages in a real browser: a real `kdlearnd serve` and one `kdedge run` on the sample video
# (plaintext transport on loopback, a factory student distilled on 8 frames), then headless
# Debian chromium loads the learner's dashboard and the edge's page from the daemons' HTTP
# servers and the test reads what the scripts rendered (--dump-dom: the data-kd-* markers on
# <body>), and saves screenshots. About 100 s on 2 busy cores (a factory distill, teacher load,
# 20 s of streaming, four chromium runs).
# Usage: dashboard_test.sh <build-dir> [<artefact-dir>]
#        dashboard_test.sh --fixtures [<artefact-dir>]
#   --fixtures: no daemons; tests/ops/fixtures/serve.py serves the pages from the source tree with
#   fixture JSON (3 cameras, 2 groups), and the markers must match it exactly (a few seconds).
#   artefacts: dashboard.png, edge.png, the dumped DOMs, the daemons' logs.
# Exit 0 = pass, 1 = fail (with the reason), 77 = skipped (no chromium, or the assets are missing).
set -uo pipefail
S="$(cd "$(dirname "$0")/../.." && pwd)"
if [ "${1:-}" = --fixtures ]; then
  FIXTURES=1
  B=""
  ART="${2:-$PWD/dashboard_fixtures}"
else
  FIXTURES=0
  [ -d "${1:-}" ] || { echo "usage: $0 <build-dir> [<artefact-dir>] | --fixtures [<artefact-dir>]"; exit 1; }
  B="$(cd "$1" && pwd)"
  ART="${2:-$B/artefacts/dashboard}"
fi
A="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}"
V="$A/vtest.avi"
STREAM_S="${KD_DASHBOARD_STREAM_S:-20}"  # seconds the edge streams before the pages are loaded

skip() { echo "SKIP: $*"; exit 77; }
CHROMIUM="${CHROMIUM:-}"
if [ -z "$CHROMIUM" ]; then
  for c in chromium chromium-headless-shell google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then CHROMIUM="$c"; break; fi
  done
fi
[ -n "$CHROMIUM" ] && command -v "$CHROMIUM" >/dev/null 2>&1 || skip "no chromium (apt-get install chromium)"
[ -f "$A/uplot/uPlot.iife.min.js" ] || skip "uPlot missing in $A (scripts/fetch_assets.sh)"
[ $FIXTURES = 1 ] || { [ -f "$V" ] && [ -f "$A/centernet.json" ]; } || skip "assets missing in $A (scripts/fetch_assets.sh)"
command -v curl >/dev/null || skip "no curl"
command -v python3 >/dev/null || skip "no python3"

T=$(mktemp -d)
mkdir -p "$ART"
rm -f "$ART"/dashboard.png "$ART"/edge.png "$ART"/*.dom.html "$ART"/*.log
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  cp "$T"/*.log "$ART"/ 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$T"/learner.log "$T"/edge.log; do
    [ -f "$f" ] && { echo "--- tail of $(basename "$f")"; tail -n 15 "$f"; }
  done
  exit 1
}
chrome() {  # chrome <args...>: headless, as root, no GPU; its own profile; bounded in time
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --no-first-run --user-data-dir="$T/chrome" --virtual-time-budget=10000 "$@" 2>>"$T/chromium.log"
}
marker() {  # marker <dom-file> <name>: the value of data-kd-<name> on <body> ("" when absent)
  grep -o -m1 '<body[^>]*>' "$1" | grep -o "data-kd-$2=\"[^\"]*\"" | head -1 | sed 's/^[^"]*"//; s/"$//'
}
# check_pages <cameras> <groups> <charts> <detections>: loads both pages, checks their markers
# (cameras/groups/charts: at least, or exactly with a leading "="; detections: "" = any), and
# takes the screenshots.
check_pages() {
  local want_cams=$1 want_groups=$2 want_charts=$3 want_dets=$4
  at_least() {  # at_least <spec> <value>
    if [ "${1#=}" != "$1" ]; then [ "${2:-x}" = "${1#=}" ]; else [ "${2:-0}" -ge "$1" ] 2>/dev/null; fi
  }
  chrome --dump-dom "$LURL/" >"$ART/dashboard.dom.html" || fail "chromium --dump-dom $LURL/ failed (see chromium.log)"
  local d="$ART/dashboard.dom.html"
  local ready cams groups charts err device frame dets
  ready=$(marker "$d" ready); cams=$(marker "$d" cameras); groups=$(marker "$d" groups)
  charts=$(marker "$d" charts); err=$(marker "$d" error)
  echo "dashboard: ready=$ready cameras=$cams groups=$groups charts=$charts${err:+ error='$err'}"
  [ "$ready" = 1 ] || fail "the dashboard did not become ready${err:+: $err}"
  at_least "$want_cams" "$cams" || fail "the dashboard shows $cams cameras (want $want_cams)"
  at_least "$want_groups" "$groups" || fail "the dashboard shows $groups groups (want $want_groups)"
  at_least "$want_charts" "$charts" || fail "the dashboard drew $charts charts (want $want_charts)"
  grep -q 'id="cam-cam-1"' "$d" || fail "the fleet table has no row for cam-1"
  chrome --window-size=1400,2400 --screenshot="$ART/dashboard.png" "$LURL/" >/dev/null || fail "dashboard screenshot"
  [ -s "$ART/dashboard.png" ] || fail "no dashboard.png"
  echo "ok: dashboard rendered; screenshot $ART/dashboard.png"

  chrome --dump-dom "$EURL/" >"$ART/edge.dom.html" || fail "chromium --dump-dom $EURL/ failed (see chromium.log)"
  d="$ART/edge.dom.html"
  ready=$(marker "$d" ready); device=$(marker "$d" device); frame=$(marker "$d" frame)
  dets=$(marker "$d" detections); err=$(marker "$d" error)
  echo "edge page: ready=$ready device=$device frame=${frame:-0} detections=${dets:-none}${err:+ error='$err'}"
  [ "$ready" = 1 ] || fail "the edge page did not become ready${err:+: $err}"
  [ "$device" = cam-1 ] || fail "the edge page names device '$device' (want cam-1)"
  [ -z "$want_dets" ] || [ "$dets" = "$want_dets" ] || fail "the edge page lists ${dets:-no} detections (want $want_dets)"
  chrome --window-size=1400,1000 --screenshot="$ART/edge.png" "$EURL/" >/dev/null || fail "edge screenshot"
  [ -s "$ART/edge.png" ] || fail "no edge.png"
  echo "ok: edge page rendered; screenshot $ART/edge.png"
}

if [ $FIXTURES = 1 ]; then
  for page in learner edge; do
    python3 "$S/tests/ops/fixtures/serve.py" $page --assets "$A" >"$T/$page.port" 2>"$T/$page.log" &
    PIDS+=("$!")
  done
  for _ in $(seq 100); do [ -s "$T/learner.port" ] && [ -s "$T/edge.port" ] && break; sleep 0.1; done
  LURL="http://127.0.0.1:$(cat "$T/learner.port")"
  EURL="http://127.0.0.1:$(cat "$T/edge.port")"
  curl -sf -o /dev/null "$LURL/" && curl -sf -o /dev/null "$EURL/" || fail "the fixture servers did not start"
  check_pages =3 =2 =7 3
  echo "PASS"
  exit 0
fi

for b in kdlearnd kdedge kdctl; do [ -x "$B/daemon/$b" ] || fail "$B/daemon/$b is not built"; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
FRAMES_PORT=$(free_port); CONTROL_PORT=$(free_port); LEARNER_HTTP=$(free_port); EDGE_HTTP=$(free_port)
LURL="http://127.0.0.1:$LEARNER_HTTP"
EURL="http://127.0.0.1:$EDGE_HTTP"

# Keys (updates are signed even in plaintext mode) and a factory student the learner's recipe can
# train on (same recipe as the learner: one teacher scale, the integration tests' recipe).
"$B/daemon/kdctl" keygen signing --secret "$T/s.key" --public "$T/s.pub" >/dev/null || fail "kdctl keygen"
RECIPE="$S/tests/integration/one_scale.toml"
"$B/daemon/kdlearnd" distill --video "$V" --frames 0:8 --iterations 2 --config "$RECIPE" --threads 2 \
  --out "$T/factory.kdw" 2>"$T/distill.log" || { tail -5 "$T/distill.log"; fail "factory distill"; }

cat >"$T/kdlearnd.toml" <<EOF
[server]
frames_endpoint = "tcp://127.0.0.1:$FRAMES_PORT"
control_endpoint = "tcp://127.0.0.1:$CONTROL_PORT"
insecure = true
[store]
path = "$T/store"
[training]
recipe = "$RECIPE"
threads = 1
bootstrap = "$T/factory.kdw"
round_iterations = 4
round_frames = 16
min_frames = 8
[gate]
holdout_every = 4
holdout_span_ms = 0
min_holdout = 2
margin = -1.0
[publish]
signing_key = "$T/s.key"
[rollout]
canary_probation_s = 0
[[groups]]
name = "lobby"
devices = ["cam-1"]
EOF
"$B/daemon/kdlearnd" serve --config "$T/kdlearnd.toml" --set "http.listen=127.0.0.1:$LEARNER_HTTP" >"$T/learner.log" 2>&1 &
LPID=$!
PIDS+=("$LPID")

# The learner is ready: store open, teacher loaded, sockets bound (up to 120 s on a busy machine).
ready=0
for _ in $(seq 600); do
  kill -0 "$LPID" 2>/dev/null || fail "kdlearnd serve exited"
  if curl -sf -o /dev/null "$LURL/readyz"; then ready=1; break; fi
  sleep 0.2
done
[ $ready = 1 ] || fail "the learner's /readyz did not answer 200 within 120 s"
echo "ok: learner ready at $LURL"

"$B/daemon/kdedge" run --set device_id=cam-1 --set "source.uri=$V" --set source.end=200 --set source.loop=true \
  --set source.fps=10 --set "model.dir=$T/cam-1" --set "model.bootstrap=$T/factory.kdw" \
  --set learner.insecure=true --set "learner.frames_endpoint=tcp://127.0.0.1:$FRAMES_PORT" \
  --set "learner.control_endpoint=tcp://127.0.0.1:$CONTROL_PORT" --set uplink.max_fps=4 \
  --set "update.trusted_keys=[\"$T/s.pub\"]" --set update.probation_frames=10 --set update.probation_seconds=1 \
  --set update.max_latency_ratio=100 --set output.detections= --set output.status_interval_ms=500 \
  --set "http.listen=127.0.0.1:$EDGE_HTTP" >"$T/edge.log" 2>&1 &
EPID=$!
PIDS+=("$EPID")

# The learner lists the camera, online (frames and heartbeats arrive).
camera_online() {
  curl -sf "$LURL/api/v1/status" | python3 -c '
import json, sys
d = json.load(sys.stdin).get("devices", {}).get("cam-1", {})
sys.exit(0 if d.get("online") else 1)' 2>/dev/null
}
online=0
for _ in $(seq 300); do
  kill -0 "$EPID" 2>/dev/null || fail "kdedge run exited"
  kill -0 "$LPID" 2>/dev/null || fail "kdlearnd serve exited"
  if camera_online; then online=1; break; fi
  sleep 0.2
done
[ $online = 1 ] || fail "the learner's /api/v1/status did not list cam-1 online within 60 s"
echo "ok: cam-1 online; streaming for $STREAM_S s"
sleep "$STREAM_S"
kill -0 "$EPID" 2>/dev/null || fail "kdedge run exited while streaming"
kill -0 "$LPID" 2>/dev/null || fail "kdlearnd serve exited while streaming"
curl -sf -o /dev/null "$EURL/readyz" || fail "the edge's /readyz is not 200 (model loaded, frames flowing)"

# The embedded files are served with their type and an ETag.
for path in / /app.js /style.css /uPlot.iife.min.js /uPlot.min.css; do
  hdr=$(curl -sf -D - -o /dev/null "$LURL$path") || fail "learner GET $path"
  grep -qi '^etag: "' <<<"$hdr" || fail "learner GET $path: no ETag"
done
curl -sf "$LURL/" | grep -q 'app.js' || fail "the learner's / is not the dashboard"
curl -sf "$EURL/" | grep -q 'app.js' || fail "the edge's / is not its page"

check_pages 1 1 2 ""

# Both daemons stop cleanly on SIGTERM (within 30 s).
stop() {  # stop <pid>: SIGTERM, then its exit status (124 if it is still running after 30 s)
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 150); do
    if ! kill -0 "$1" 2>/dev/null; then wait "$1"; return $?; fi
    sleep 0.2
  done
  return 124
}
stop "$EPID"; erc=$?
stop "$LPID"; lrc=$?
PIDS=()
[ $erc = 0 ] && [ $lrc = 0 ] || fail "SIGTERM: kdedge exit $erc, kdlearnd exit $lrc (want 0 and 0)"
echo "PASS"
exit 0
