#!/usr/bin/env bash
# Fetches the real assets into the cache folder (never into git), verifying checksums.
#   teacher: npm pack @vladmandic/human@3.3.6 -> models/centernet.{json,bin}   (MIT)
#   video:   apt-get download opencv-doc      -> examples/data/vtest.avi        (Apache-2.0/BSD-3)
#   chart:   npm pack uplot@1.6.32            -> uplot/uPlot.iife.min.js, uPlot.min.css (MIT; the dashboards)
#   lint:    apt-get download prometheus      -> promtool/promtool (Apache-2.0; `promtool check metrics`
#            in ctest; only the binary is extracted, no Prometheus server is installed)
# Idempotent: files already present with the right sha256 are kept.
# Prints the asset folder on stdout. Exit 1 with a clear message when a registry can't be reached.
set -euo pipefail

ASSETS="${KD_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kd/assets}"
HUMAN_VERSION=3.3.6
SHA_JSON=bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05
SHA_BIN=1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef
SHA_VIDEO=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
UPLOT_VERSION=1.6.32
SHA_UPLOT_JS=19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f
SHA_UPLOT_CSS=df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04
# Debian 12's prometheus package; the checksum is of the promtool binary inside this revision.
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
SHA_PROMTOOL=14d9c8acdc5d1321dc2092400111c586f09ac350f23f2383d1679b2bf256e583

log() { echo "fetch_assets: $*" >&2; }
die() { log "error: $*"; exit 1; }
has_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
# apt_download <package[=version]> [hint]: into $work, running 'apt-get update' once if the lists
# are missing.
apt_download() {
  (cd "$work" && apt-get download "$1" >"$work/apt.out" 2>&1) || {
    # A machine that never ran 'apt-get update' has no package lists.
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
    (cd "$work" && apt-get download "$1" >"$work/apt.out" 2>&1) ||
      die "apt-get download $1 failed: is the Debian mirror reachable?${2:+ $2} $(tail -n 3 "$work/apt.out")"
  }
}
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
  apt_download opencv-doc
  dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb |
    tar -x -C "$work" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  check_sha "$work/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$SHA_VIDEO"
  mv "$work/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$ASSETS/vtest.avi"
fi

if has_sha "$ASSETS/uplot/uPlot.iife.min.js" "$SHA_UPLOT_JS" && has_sha "$ASSETS/uplot/uPlot.min.css" "$SHA_UPLOT_CSS"; then
  log "uPlot present"
else
  command -v npm >/dev/null || die "npm not found (install Debian's 'npm' package)"
  log "npm pack uplot@$UPLOT_VERSION (0.2 MB)"
  (cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null 2>"$work/npm.err") ||
    die "npm pack failed: is the npm registry reachable? $(tail -n 3 "$work/npm.err")"
  rm -rf "$work/package"
  tar -xzf "$work/uplot-$UPLOT_VERSION.tgz" -C "$work" \
    package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
  check_sha "$work/package/dist/uPlot.iife.min.js" "$SHA_UPLOT_JS"
  check_sha "$work/package/dist/uPlot.min.css" "$SHA_UPLOT_CSS"
  mkdir -p "$ASSETS/uplot"
  cp "$work/package/LICENSE" "$ASSETS/uplot/LICENSE"
  mv "$work/package/dist/uPlot.min.css" "$ASSETS/uplot/uPlot.min.css"
  mv "$work/package/dist/uPlot.iife.min.js" "$ASSETS/uplot/uPlot.iife.min.js"
fi

if has_sha "$ASSETS/promtool/promtool" "$SHA_PROMTOOL" && [ -x "$ASSETS/promtool/promtool" ]; then
  log "promtool present"
else
  log "apt-get download prometheus=$PROMETHEUS_DEB_VERSION (19 MB; promtool only, nothing installed)"
  apt_download "prometheus=$PROMETHEUS_DEB_VERSION" \
    "(or Debian replaced that revision: set PROMETHEUS_DEB_VERSION and SHA_PROMTOOL here to the new one)"
  dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
  check_sha "$work/usr/bin/promtool" "$SHA_PROMTOOL"
  "$work/usr/bin/promtool" --version >/dev/null 2>&1 || die "the extracted promtool does not run"
  mkdir -p "$ASSETS/promtool"
  mv "$work/usr/bin/promtool" "$ASSETS/promtool/promtool"
fi

echo "$ASSETS"
