#!/usr/bin/env bash
# The long crash loops of issue 12 (ctest runs the same tests with 5 kills each):
#   - the learner is killed with -9 at random moments while two edges stream, N times (default
#     100); every acknowledged frame must be in the store at the end;
#   - a kdedge process is killed with -9 at random moments while the learner publishes a version
#     every few seconds, M times (default 50); after each kill its slots must hold whole models, and
#     at the end it must still take the next update.
# Needs a build (bash scripts/setup.sh). Usage: bash scripts/crash_loops.sh [N] [M]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${KD_BUILD_DIR:-build}"
KD_CRASH_LOOPS="${1:-100}" KD_TEST_EDGE_KILLS="${2:-50}" "$BUILD_DIR/tests/loop_test" \
  --gtest_filter='LoopTest.RandomKill9Of*'
