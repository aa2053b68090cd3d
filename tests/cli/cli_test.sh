#!/usr/bin/env bash
# Command-line contract of kdlearnd and kdedge: bad input gets a clear error and a non-zero exit;
# with the real assets present, a tiny distill -> detect round trip writes what it promises.
# Usage: cli_test.sh <build-dir>
set -uo pipefail
B="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
expect_error() {  # expect_error <regex> <command...>
  local re="$1"; shift
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || ! grep -Eq "$re" <<<"$out"; then
    echo "FAIL: '$*' -> rc=$rc, output: $out"; fail=1
  else
    echo "ok: $* -> rc=$rc"
  fi
}
V="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}/vtest.avi"
expect_error "frame range '5:2'" "$B/daemon/kdlearnd" distill --video "$V" --frames 5:2 --out "$T/x.kdw"
expect_error "non-integer" "$B/daemon/kdlearnd" distill --video "$V" --frames a:b --out "$T/x.kdw"
expect_error "NotFound.*nope.avi" "$B/daemon/kdlearnd" label --video "$T/nope.avi" --coco-out "$T/gt.json"
expect_error "NotFound.*--store" "$B/daemon/kdlearnd" labels --store "$T/no-store" --device cam-1 --out "$T/l.jsonl"
expect_error "cannot open weight file" "$B/daemon/kdedge" detect --weights "$T/none.kdw" --video "$V"
echo "not weights" >"$T/bad.kdw"
expect_error "not a kd weight file" "$B/daemon/kdedge" detect --weights "$T/bad.kdw" --video "$V"
head -c 4096 /dev/urandom >"$T/garbage.avi"
printf 'iterations = 3\nbogus = 1\n' >"$T/bad.toml"
expect_error "unknown config key 'bogus'" "$B/daemon/kdlearnd" distill --video "$V" --out "$T/x.kdw" --config "$T/bad.toml"
expect_error "video is required" "$B/daemon/kdedge" detect --weights "$T/bad.kdw"
# distill checks --out and --init before labelling and training (an instant error, not minutes later).
for args in "--out $T/no-such-dir/x.kdw" "--out $T" "--out $T/x.kdw --init $T/none.kdw" "--out $T/x.kdw --init $T/bad.kdw"; do
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  "$B/daemon/kdlearnd" distill --video "$V" --frames 0:600 --iterations 100000 $args >/dev/null 2>&1; rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ $rc -eq 2 ] || [ $rc -eq 1 ] && [ $ms -lt 10000 ] && echo "ok: distill $args -> rc=$rc in $ms ms" ||
    { echo "FAIL: distill $args -> rc=$rc in $ms ms"; fail=1; }
done

# Daemons: configs are validated before anything starts (exit 2); --check-config on the examples.
expect_ok() {  # expect_ok <command...>
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: '$*' -> rc=$rc, output: $out"; fail=1; else echo "ok: $* -> rc=0"; fi
}
S="$(dirname "$0")/../.."
# The example configs name key files under /etc/kd and the sample video: make them for real
# (--check-config reads every file a config names, and checks it is of the right kind).
E="$T/etc"
mkdir -p "$E"
"$B/daemon/kdctl" keygen curve --secret "$E/learner.key_secret" --public "$E/learner.key" >/dev/null
"$B/daemon/kdctl" keygen curve --secret "$E/cam-01.key_secret" --public "$E/cam-01.key" >/dev/null
"$B/daemon/kdctl" keygen signing --secret "$E/publisher.key_secret" --public "$E/publisher.pub" >/dev/null
sed -e "s|/etc/kd/|$E/|g" "$S/config/examples/kdlearnd.toml" >"$T/kdlearnd.toml"
sed -e "s|/etc/kd/|$E/|g" -e "s|\"../../out/vtest.avi\"|\"$V\"|" "$S/config/examples/kdedge.toml" >"$T/kdedge.toml"
expect_ok "$B/daemon/kdlearnd" serve --check-config --config "$T/kdlearnd.toml"
if [ -f "$V" ]; then expect_ok "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml"; fi
# ... and a config whose files are missing or of the wrong kind is refused by --check-config, exit 2,
# naming the key (it used to pass, and serve/run failed later with exit 1 or 2).
expect_exit2() {  # expect_exit2 <regex> <command...>
  local re="$1"; shift
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 2 ] || ! grep -Eq "$re" <<<"$out"; then echo "FAIL: '$*' -> rc=$rc, output: $out"; fail=1; else echo "ok: $* -> rc=2"; fi
}
# A worker role other than train or label is refused before anything starts (no coordinator needed).
expect_exit2 "role.*neither train nor label" "$B/daemon/kdlearnd" worker --config "$T/kdlearnd.toml" --coordinator 127.0.0.1:1 --role boss
expect_exit2 "NotFound: server.secret_key" "$B/daemon/kdlearnd" serve --check-config --config "$S/config/examples/kdlearnd.toml"
cp "$E/learner.key" "$E/public-as-secret.key" && chmod 600 "$E/public-as-secret.key"
expect_exit2 "server.secret_key.*no secret-key" "$B/daemon/kdlearnd" serve --check-config --config "$T/kdlearnd.toml" --set "server.secret_key=$E/public-as-secret.key"
expect_exit2 "publish.signing_key" "$B/daemon/kdlearnd" serve --check-config --config "$T/kdlearnd.toml" --set "publish.signing_key=$E/learner.key_secret"
expect_exit2 "NotFound: training.recipe" "$B/daemon/kdlearnd" serve --check-config --config "$T/kdlearnd.toml" --set "training.recipe=$T/none.toml"
expect_exit2 "training.bootstrap" "$B/daemon/kdlearnd" serve --check-config --config "$T/kdlearnd.toml" --set "training.bootstrap=$T/none.kdw"
if [ -f "$V" ]; then
  expect_exit2 "learner.client_key.*no secret-key" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set "learner.client_key=$E/public-as-secret.key"
  expect_exit2 "update.trusted_keys\\[0\\]" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set "update.trusted_keys=[\"$E/learner.key\"]"
  expect_exit2 "model.bootstrap" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set "model.bootstrap=$T/none.kdw"
  expect_exit2 "source.uri" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set "source.uri=$T/none.avi"
  expect_exit2 "source.uri" "$B/daemon/kdedge" run --config "$T/kdedge.toml" --set "source.uri=$T/none.avi"
fi
expect_error "uplink.bogus" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set uplink.bogus=1
expect_error "uplink.kbps.*out of range" "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set uplink.kbps=0
expect_error "store.path" "$B/daemon/kdlearnd" serve --check-config --set server.insecure=true
expect_error "uplink.kbps.*out of range" env KD_EDGE_UPLINK__KBPS=0 "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml"
if [ -f "$V" ]; then expect_ok env KD_EDGE_UPLINK__KBPS=0 "$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set uplink.kbps=500; fi
"$B/daemon/kdedge" run --check-config --config "$T/kdedge.toml" --set uplink.kbps=0 >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok: bad config exits 2" || { echo "FAIL: bad config should exit 2"; fail=1; }
# kdctl: keys are written (secret 0600), a learner that is not running is a clear error.
expect_ok "$B/daemon/kdctl" keygen curve --secret "$T/c.key" --public "$T/c.pub"
expect_ok "$B/daemon/kdctl" keygen signing --secret "$T/s.key" --public "$T/s.pub"
[ "$(stat -c %a "$T/c.key")" = 600 ] && [ "$(stat -c %a "$T/s.key")" = 600 ] && echo "ok: secret keys are 0600" ||
  { echo "FAIL: secret key mode"; fail=1; }
expect_error "Unavailable" "$B/daemon/kdctl" status --store "$T/no-learner"

if [ -f "$V" ]; then
  printf 'iterations = 5\nbatch_size = 2\n[student]\nwidth = 8\nhead_channels = 16\ninput_long_side = 192\n[refine]\nextra_long_sides = [640]\n' >"$T/tiny.toml"
  # Refined labels: the recipe's [refine] changes the teacher's boxes (two scales fused, smoothed).
  if "$B/daemon/kdlearnd" label --video "$V" --frames 0:5 --coco-out "$T/raw_gt.json" --results-out "$T/raw.json" 2>/dev/null &&
     "$B/daemon/kdlearnd" label --video "$V" --frames 0:5 --coco-out "$T/ref_gt.json" --results-out "$T/ref.json" \
       --refine --config "$T/tiny.toml" 2>/dev/null && grep -q '"bbox"' "$T/ref.json" && ! cmp -s "$T/raw.json" "$T/ref.json"; then
    echo "ok: label --refine writes refined boxes"
  else
    echo "FAIL: label --refine"; fail=1
  fi
  expect_error "NotFound" "$B/daemon/kdlearnd" label --video "$V" --frames 0:1 --coco-out "$T/x.json" --refine --config "$T/none.toml"
  expect_error "InvalidArgument|error" "$B/daemon/kdedge" detect --weights "$T/bad.kdw" --video "$T/garbage.avi"
  if "$B/daemon/kdlearnd" distill --video "$V" --frames 0:8 --out "$T/s.kdw" --config "$T/tiny.toml" --seed 3 2>"$T/distill.log" &&
     "$B/daemon/kdedge" detect --weights "$T/s.kdw" --video "$V" --frames 10:14 --jsonl "$T/d.jsonl" --coco-out "$T/r.json" 2>"$T/detect.log"; then
    lines=$(wc -l <"$T/d.jsonl")
    if [ "$lines" = 4 ] && grep -q '"model_version":1' "$T/d.jsonl" && grep -q '"frame":13' "$T/d.jsonl" &&
       [ -s "$T/s.kdw.report.json" ] && grep -q '^\[' "$T/r.json"; then
      echo "ok: distill -> detect round trip ($lines JSON lines)"
    else
      echo "FAIL: round trip outputs"; cat "$T/d.jsonl" | head -3; fail=1
    fi
    # One rule for frame ranges (issue 12, defect 3): an explicit A:B must exist entirely, whether
    # the video is truncated (it used to exit 0 with a partial result) or simply shorter.
    head -c $(( $(stat -c %s "$V") / 10 )) "$V" >"$T/cut.avi"
    expect_error "ended at frame" "$B/daemon/kdedge" detect --weights "$T/s.kdw" --video "$T/cut.avi" --frames 0:700
    expect_error "ended at frame" "$B/daemon/kdlearnd" label --video "$T/cut.avi" --frames 0:700 --coco-out "$T/cut.json"
    expect_error "ends beyond" "$B/daemon/kdedge" detect --weights "$T/s.kdw" --video "$V" --frames 0:99999
    expect_error "beyond the last frame" "$B/daemon/kdedge" detect --weights "$T/s.kdw" --video "$V" --frames 900:1000
    expect_error "corrupt|checksum" bash -c "printf 'X' | dd of='$T/s.kdw' bs=1 seek=200 conv=notrunc 2>/dev/null; '$B/daemon/kdedge' detect --weights '$T/s.kdw' --video '$V' --frames 0:1"
  else
    echo "FAIL: distill/detect round trip"; tail -5 "$T/distill.log" "$T/detect.log"; fail=1
  fi

  # kdlearnd serve + kdctl: a learner killed with -9 leaves its admin socket; kdctl says at once
  # that the learner is not running (and --json prints a document); a clean stop removes the socket.
  L="$T/learner"
  mkdir -p "$L"
  printf '[server]\nframes_endpoint = "tcp://127.0.0.1:*"\ncontrol_endpoint = "tcp://127.0.0.1:*"\ninsecure = true\n[store]\npath = "%s/store"\n[publish]\nsigning_key = "%s/s.key"\n[http]\nlisten = "127.0.0.1:0"\n' "$L" "$T" >"$L/l.toml"
  wait_socket() {  # wait_socket <pid>: up to 60 s for the learner to answer kdctl, while it lives
    for _ in $(seq 300); do
      "$B/daemon/kdctl" status --store "$L/store" >/dev/null 2>&1 && return 0
      kill -0 "$1" 2>/dev/null || return 1
      sleep 0.2
    done
    return 1
  }
  "$B/daemon/kdlearnd" serve --config "$L/l.toml" 2>"$L/serve1.log" &
  pid=$!
  if wait_socket $pid; then
    # The text status ends with the round scheduler's table (which group trains next, and why).
    if "$B/daemon/kdctl" status --store "$L/store" | grep -q 'TRAINER s'; then
      echo "ok: kdctl status shows the schedule"
    else
      echo "FAIL: kdctl status has no schedule table"; fail=1
    fi
    kill -9 $pid; wait $pid 2>/dev/null
    start=$(date +%s%N)
    out=$("$B/daemon/kdctl" status --store "$L/store" --json 2>/dev/null); rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    if [ $rc -ne 0 ] && grep -q '"ok": false' <<<"$out" && grep -q 'not running' <<<"$out" && [ $ms -lt 3000 ]; then
      echo "ok: kdctl status against a killed learner: rc=$rc in $ms ms, JSON error"
    else
      echo "FAIL: kdctl status against a killed learner: rc=$rc in $ms ms, output: $out"; fail=1
    fi
    "$B/daemon/kdlearnd" serve --config "$L/l.toml" 2>"$L/serve2.log" &
    pid=$!
    if wait_socket $pid && kill -TERM $pid && wait $pid; then
      [ ! -e "$L/store/admin.sock" ] && echo "ok: a clean stop removes admin.sock" ||
        { echo "FAIL: admin.sock left after a clean stop"; fail=1; }
    else
      echo "FAIL: second learner start/stop"; tail -5 "$L/serve2.log"; fail=1
    fi
  else
    echo "FAIL: kdlearnd serve did not start"; tail -5 "$L/serve1.log"; fail=1
  fi
fi
exit $fail
