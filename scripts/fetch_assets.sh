#!/usr/bin/env bash
# Fetches the real assets into the cache folder (never into git), verifying checksums.
#   teacher: npm pack @vladmandic/human@3.3.6 -> models/centernet.{json,bin}   (MIT)
#   video:   apt-get download opencv-doc      -> examples/data/vtest.avi        (Apache-2.0/BSD-3)
# Idempotent: files already present with the right sha256 are kept.
# Prints the asset folder on stdout. Exit 1 with a clear message when a registry can't be reached.
set -euo pipefail

ASSETS="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}"
HUMAN_VERSION=3.3.6
SHA_JSON=bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05
SHA_BIN=1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef
SHA_VIDEO=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf

log() { echo "fetch_assets: $*" >&2; }
die() { log "error: $*"; exit 1; }
has_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
check_sha() {
  has_sha "$1" "$2" || die "checksum mismatch for $1 (expected $2, got $(sha256sum "$1" | cut -d' ' -f1)); delete it and retry"
}

mkdir -p "$ASSETS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if has_sha "$ASSETS/centernet.json" "$SHA_JSON" && has_sha "$ASSETS/centernet.bin" "$SHA_BIN"; then
  log "teacher weights present"
else
  command -v npm >/dev/null || die "npm not found (install Debian's 'npm' package)"
  log "npm pack @vladmandic/human@$HUMAN_VERSION (28 MB)"
  (cd "$work" && npm pack --silent "@vladmandic/human@$HUMAN_VERSION" >/dev/null 2>"$work/npm.err") ||
    die "npm pack failed: is the npm registry reachable? $(tail -n 3 "$work/npm.err")"
  tar -xzf "$work/vladmandic-human-$HUMAN_VERSION.tgz" -C "$work" \
    package/models/centernet.json package/models/centernet.bin package/LICENSE
  check_sha "$work/package/models/centernet.json" "$SHA_JSON"
  check_sha "$work/package/models/centernet.bin" "$SHA_BIN"
  cp "$work/package/LICENSE" "$ASSETS/human-LICENSE"
  # .bin first, .json last: the .json's presence marks a complete pair.
  mv "$work/package/models/centernet.bin" "$ASSETS/centernet.bin"
  mv "$work/package/models/centernet.json" "$ASSETS/centernet.json"
fi

if has_sha "$ASSETS/vtest.avi" "$SHA_VIDEO"; then
  log "sample video present"
else
  log "apt-get download opencv-doc (96 MB)"
  (cd "$work" && apt-get download opencv-doc >"$work/apt.out" 2>&1) || {
    # A machine that never ran 'apt-get update' has no package lists.
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
    (cd "$work" && apt-get download opencv-doc >"$work/apt.out" 2>&1) ||
      die "apt-get download opencv-doc failed: is the Debian mirror reachable? $(tail -n 3 "$work/apt.out")"
  }
  dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb |
    tar -x -C "$work" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  check_sha "$work/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$SHA_VIDEO"
  mv "$work/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$ASSETS/vtest.avi"
fi

echo "$ASSETS"
