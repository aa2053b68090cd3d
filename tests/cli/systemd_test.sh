#!/usr/bin/env bash
# The systemd units of deploy/systemd, checked without systemd as PID 1:
#   1. `systemd-analyze verify --man=no` passes with an EMPTY stderr (it exits 0 on an unknown key
#      or a bad value and only warns), for each unit alone and with its drop-in (v4l2, gpu); and
#      the sysusers file creates the user `kd`.
#   2. `systemd-analyze security --offline=yes` rates each of them at most MAX_EXPOSURE (measured:
#      1.4 for both units, 1.6 with the V4L2 drop-in, 1.5 with the GPU drop-in; systemd 252).
#   3. Both daemons against a fake NOTIFY_SOCKET (a datagram socket bound by python3), started as
#      systemd starts them (NOTIFY_SOCKET, WATCHDOG_USEC=2 s, WATCHDOG_PID = their pid): READY=1,
#      then at least 2 WATCHDOG=1 within ~3 s, then SIGTERM -> STOPPING=1 and exit 0. Needs the
#      assets (teacher, vtest.avi); without them this part is skipped with a message.
# Usage: systemd_test.sh <build-dir>. Exit 0 = pass, 1 = fail, 77 = skipped (no systemd-analyze).
set -uo pipefail
B="$1"
S="$(cd "$(dirname "$0")/../.." && pwd)"
U="$S/deploy/systemd"
# The highest exposure score accepted (0 = locked down .. 10 = exposed; a bare unit scores 9.6): the
# measured 1.4..1.6 plus a little room, so that a hardening line that goes missing fails the test.
MAX_EXPOSURE=1.7
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed"
  exit 77
fi
T=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# --- 1. verify -----------------------------------------------------------------------------------
for exe in kdlearnd kdedge; do
  [ -x "$B/daemon/$exe" ] || { bad "$B/daemon/$exe is not built (verify checks ExecStart's binary)"; exit 1; }
done
# stage <variant> <unit> [drop-in]: the unit (and its drop-in) in a folder of its own, ExecStart
# pointing at the built binary; systemd-analyze reads drop-ins from <unit>.d next to the unit.
stage() {
  local dir="$T/units/$1"
  mkdir -p "$dir"
  sed -e "s|^ExecStart=/usr/local/bin/|ExecStart=$B/daemon/|" "$U/$2" >"$dir/$2"
  if [ $# -ge 3 ]; then
    mkdir -p "$dir/$2.d"
    cp "$U/$2.d/$3" "$dir/$2.d/"
  fi
  echo "$dir/$2"
}
declare -A units=(
  [kdlearnd]="$(stage kdlearnd kdlearnd.service)"
  [kdlearnd+gpu]="$(stage kdlearnd-gpu kdlearnd.service gpu.conf)"
  [kdedge]="$(stage kdedge kdedge.service)"
  [kdedge+v4l2]="$(stage kdedge-v4l2 kdedge.service v4l2.conf)"
)
for v in kdlearnd kdlearnd+gpu kdedge kdedge+v4l2; do
  f="${units[$v]}"
  grep -q "^ExecStart=$B/daemon/" "$f" || bad "$v: ExecStart was not rewritten"
  systemd-analyze verify --man=no "$f" >"$T/verify.out" 2>"$T/verify.err"; rc=$?
  if [ $rc -eq 0 ] && [ ! -s "$T/verify.err" ]; then
    ok "systemd-analyze verify $v: exit 0, empty stderr"
  else
    bad "systemd-analyze verify $v: exit $rc, stderr:"; cat "$T/verify.err" "$T/verify.out"
  fi
done
# The sysusers file: a dry run into an empty root must create the user and group kd.
mkdir -p "$T/sysroot/etc"
if command -v systemd-sysusers >/dev/null; then
  out=$(systemd-sysusers --dry-run --root="$T/sysroot" "$U/kd.sysusers.conf" 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -q "Creating user 'kd'" <<<"$out" && grep -q "Creating group 'kd'" <<<"$out"; then
    ok "systemd-sysusers creates user and group kd"
  else
    bad "systemd-sysusers kd.sysusers.conf: exit $rc: $out"
  fi
fi

# --- 2. security ---------------------------------------------------------------------------------
for v in kdlearnd kdlearnd+gpu kdedge kdedge+v4l2; do
  out=$(systemd-analyze security --offline=yes --no-pager "${units[$v]}" 2>&1); rc=$?
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
  if [ -z "$score" ]; then
    bad "systemd-analyze security $v: no score (exit $rc): $out"
  elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    ok "systemd-analyze security $v: exposure $score <= $MAX_EXPOSURE"
  else
    bad "systemd-analyze security $v: exposure $score > $MAX_EXPOSURE; the open items:"
    grep '✗' <<<"$out"
  fi
done

# --- 3. a fake NOTIFY_SOCKET and the real daemons ------------------------------------------------
A="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}"
V="$A/vtest.avi"
if ! command -v python3 >/dev/null; then
  echo "SKIP (part 3): python3 not installed"
  exit $fail
fi
if [ ! -f "$V" ] || [ ! -f "$A/centernet.json" ]; then
  echo "SKIP (part 3): assets missing in $A (bash scripts/fetch_assets.sh)"
  exit $fail
fi
# The receiver: one line per KEY=VALUE line received, "<monotonic s> <line>"; "BOUND" once bound.
cat >"$T/receiver.py" <<'EOF'
import socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as f:
    f.write("BOUND\n")
    while True:
        for line in s.recv(65536).decode("utf-8", "replace").split("\n"):
            f.write("%.3f %s\n" % (time.monotonic(), line))
EOF
# notify_check <name> <ready-timeout-s> <command...>: runs the daemon as systemd would and checks
# READY=1, >= 2 WATCHDOG=1 in the 3.2 s after it (WatchdogSec=2 s: a ping per second), then
# STOPPING=1 after SIGTERM and exit 0.
notify_check() {
  local name="$1" ready_s="$2"; shift 2
  local sock="$T/$name.sock" log="$T/$name.notify" err="$T/$name.log"
  python3 "$T/receiver.py" "$sock" "$log" &
  local rpid=$!
  pids+=("$rpid")
  for _ in $(seq 50); do grep -q '^BOUND$' "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^BOUND$' "$log" 2>/dev/null || { bad "$name: the fake NOTIFY_SOCKET did not bind"; return; }
  # WATCHDOG_PID is the daemon's own pid, as systemd sets it: the shell execs into the daemon.
  NOTIFY_SOCKET="$sock" WATCHDOG_USEC=2000000 bash -c 'export WATCHDOG_PID=$$; exec "$@"' _ "$@" \
    >/dev/null 2>"$err" &
  local dpid=$!
  pids+=("$dpid")
  for _ in $(seq $((ready_s * 5))); do
    grep -q ' READY=1$' "$log" && break
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.2
  done
  if ! grep -q ' READY=1$' "$log"; then
    bad "$name: no READY=1 within $ready_s s (received: $(grep -vc '^BOUND$' "$log") lines); its log:"
    tail -n 5 "$err"
    kill -9 "$dpid" "$rpid" 2>/dev/null
    wait "$dpid" "$rpid" 2>/dev/null
    return
  fi
  ok "$name: READY=1"
  sleep 3.2
  local pings
  pings=$(awk '/ READY=1$/ { r = 1; next } r && / WATCHDOG=1$/ { n++ } END { print n + 0 }' "$log")
  if [ "$pings" -ge 2 ]; then ok "$name: $pings x WATCHDOG=1 in 3.2 s"; else bad "$name: $pings x WATCHDOG=1 in 3.2 s (want >= 2)"; fi
  kill -TERM "$dpid"
  local waited=0
  while kill -0 "$dpid" 2>/dev/null && [ $waited -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
  if kill -0 "$dpid" 2>/dev/null; then
    bad "$name: still running 60 s after SIGTERM"
    kill -9 "$dpid"
  fi
  wait "$dpid"; local rc=$?
  sleep 0.2  # the last datagram reaches the log
  if awk '/ READY=1$/ { r = 1 } r && / STOPPING=1$/ { s = 1 } END { exit !s }' "$log"; then
    ok "$name: STOPPING=1 after SIGTERM"
  else
    bad "$name: no STOPPING=1 after SIGTERM"
  fi
  if [ $rc -eq 0 ]; then
    ok "$name: exit 0 after SIGTERM"
  else
    bad "$name: exit $rc after SIGTERM; its log:"
    tail -n 5 "$err"
  fi
  kill "$rpid" 2>/dev/null
  wait "$rpid" 2>/dev/null
}

# Keys and a tiny factory student, as cli_test.sh makes them.
E="$T/etc"
mkdir -p "$E"
"$B/daemon/kdctl" keygen curve --secret "$E/learner.key_secret" --public "$E/learner.key" >/dev/null
"$B/daemon/kdctl" keygen curve --secret "$E/cam-01.key_secret" --public "$E/cam-01.key" >/dev/null
"$B/daemon/kdctl" keygen signing --secret "$E/publisher.key_secret" --public "$E/publisher.pub" >/dev/null
printf 'iterations = 2\nbatch_size = 2\n[student]\nwidth = 8\nhead_channels = 16\ninput_long_side = 192\n' >"$T/tiny.toml"
if ! "$B/daemon/kdlearnd" distill --video "$V" --frames 0:4 --out "$T/factory.kdw" --config "$T/tiny.toml" --seed 1 \
     >/dev/null 2>"$T/distill.log"; then
  bad "could not make a factory student for kdedge:"; tail -n 5 "$T/distill.log"
  exit 1
fi

# kdedge on the looping sample video, with no learner listening (it keeps detecting offline).
sed -e "s|/etc/kd/|$E/|g" -e "s|\"../../out/vtest.avi\"|\"$V\"|" "$S/config/examples/kdedge.toml" >"$T/kdedge.toml"
notify_check kdedge 60 "$B/daemon/kdedge" run --config "$T/kdedge.toml" \
  --set source.loop=true --set "model.dir=$T/edge/model" --set "model.bootstrap=$T/factory.kdw" \
  --set 'output.detections=""' --set 'http.listen=""' \
  --set 'learner.frames_endpoint="tcp://127.0.0.1:1"' --set 'learner.control_endpoint="tcp://127.0.0.1:1"'

# kdlearnd serve, insecure on loopback, a fresh store; it loads the teacher before READY=1.
printf '[server]\nframes_endpoint = "tcp://127.0.0.1:*"\ncontrol_endpoint = "tcp://127.0.0.1:*"\ninsecure = true\n[store]\npath = "%s/store"\n[publish]\nsigning_key = "%s/publisher.key_secret"\n[http]\nlisten = ""\n' \
  "$T/learner" "$E" >"$T/kdlearnd.toml"
mkdir -p "$T/learner"
notify_check kdlearnd 90 env OMP_WAIT_POLICY=PASSIVE GLIBC_TUNABLES=glibc.malloc.hugetlb=1 "$B/daemon/kdlearnd" serve --config "$T/kdlearnd.toml"
exit $fail
