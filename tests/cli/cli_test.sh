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
expect_error "cannot open weight file" "$B/daemon/kdedge" detect --weights "$T/none.kdw" --video "$V"
echo "not weights" >"$T/bad.kdw"
expect_error "not a kd weight file" "$B/daemon/kdedge" detect --weights "$T/bad.kdw" --video "$V"
head -c 4096 /dev/urandom >"$T/garbage.avi"
printf 'iterations = 3\nbogus = 1\n' >"$T/bad.toml"
expect_error "unknown config key 'bogus'" "$B/daemon/kdlearnd" distill --video "$V" --out "$T/x.kdw" --config "$T/bad.toml"
expect_error "video is required" "$B/daemon/kdedge" detect --weights "$T/bad.kdw"

# Daemons: configs are validated before anything starts (exit 2); --check-config on the examples.
expect_ok() {  # expect_ok <command...>
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: '$*' -> rc=$rc, output: $out"; fail=1; else echo "ok: $* -> rc=0"; fi
}
S="$(dirname "$0")/../.."
expect_ok "$B/daemon/kdlearnd" serve --check-config --config "$S/config/examples/kdlearnd.toml"
expect_ok "$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml"
expect_error "uplink.bogus" "$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml" --set uplink.bogus=1
expect_error "uplink.kbps.*out of range" "$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml" --set uplink.kbps=0
expect_error "store.path" "$B/daemon/kdlearnd" serve --check-config --set server.insecure=true
expect_error "uplink.kbps.*out of range" env KD_EDGE_UPLINK__KBPS=0 "$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml"
expect_ok env KD_EDGE_UPLINK__KBPS=0 "$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml" --set uplink.kbps=500
"$B/daemon/kdedge" run --check-config --config "$S/config/examples/kdedge.toml" --set uplink.kbps=0 >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok: bad config exits 2" || { echo "FAIL: bad config should exit 2"; fail=1; }
# kdctl: keys are written (secret 0600), a learner that is not running is a clear error.
expect_ok "$B/daemon/kdctl" keygen curve --secret "$T/c.key" --public "$T/c.pub"
expect_ok "$B/daemon/kdctl" keygen signing --secret "$T/s.key" --public "$T/s.pub"
[ "$(stat -c %a "$T/c.key")" = 600 ] && [ "$(stat -c %a "$T/s.key")" = 600 ] && echo "ok: secret keys are 0600" ||
  { echo "FAIL: secret key mode"; fail=1; }
expect_error "Unavailable" "$B/daemon/kdctl" status --store "$T/no-learner"

if [ -f "$V" ]; then
  printf 'iterations = 5\nbatch_size = 2\n[student]\nwidth = 8\nhead_channels = 16\ninput_long_side = 192\n' >"$T/tiny.toml"
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
    expect_error "corrupt|checksum" bash -c "printf 'X' | dd of='$T/s.kdw' bs=1 seek=200 conv=notrunc 2>/dev/null; '$B/daemon/kdedge' detect --weights '$T/s.kdw' --video '$V' --frames 0:1"
  else
    echo "FAIL: distill/detect round trip"; tail -5 "$T/distill.log" "$T/detect.log"; fail=1
  fi
fi
exit $fail
