#!/usr/bin/env bash
# Quick-start command 2: set up (packages, assets, build; cached) and run every test.
# Unit tests, the real-asset tests (teacher parity, sample video) and the quick ablation smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR="${KD_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
