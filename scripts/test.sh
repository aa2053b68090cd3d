#!/usr/bin/env bash
# Quick-start command 2: set up (packages, assets, build; cached) and run every test.
# Unit tests, the real-asset tests (teacher parity, sample video) and the quick ablation smoke test,
# then each fuzz target for a few seconds (build-fuzz, clang).
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium (headless) renders the dashboard in tests/ops/dashboard_test.sh; fonts so it has glyphs.
KD_SETUP_EXTRA="chromium fonts-dejavu-core ${KD_SETUP_EXTRA:-}" bash scripts/setup.sh
BUILD_DIR="${KD_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"

# Then every fuzz target for 5 s on its seed corpus (fuzz/README.md): a separate clang tree with
# ASan + UBSan + libFuzzer, configured once and rebuilt incrementally (ccache as in setup.sh).
# KD_FUZZ=0 skips this part.
if [ "${KD_FUZZ:-1}" != 0 ]; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
  FUZZ_DIR="${KD_FUZZ_BUILD_DIR:-build-fuzz}"
  if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
    CC=clang-14 CXX=clang++-14 cmake -S . -B "$FUZZ_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DKD_BUILD_FUZZERS=ON -DKD_BUILD_TESTS=OFF -DKD_BUILD_BENCH=OFF -DKD_BUILD_FUZZ_SEEDS=OFF >/dev/null
  fi
  echo "test: building the fuzz targets in $FUZZ_DIR" >&2
  cmake --build "$FUZZ_DIR" --target kd_fuzzers -- -j"$(nproc)" | grep -Ev '^\[[0-9]+/[0-9]+\] (Building|Linking|Copying)' || true
  test "${PIPESTATUS[0]}" = 0
  ctest --test-dir "$FUZZ_DIR" --output-on-failure -j"$(nproc)"
fi
