#!/usr/bin/env bash
# The long crash loop of issue 12: the learner is killed with -9 at random moments while two edges
# stream, N times (default 100), and every acknowledged frame must be in the store at the end.
# ctest runs the same test with 5 kills. Needs a build (bash scripts/setup.sh).
# Usage: bash scripts/crash_loops.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${KD_BUILD_DIR:-build}"
KD_CRASH_LOOPS="${1:-100}" "$BUILD_DIR/tests/loop_test" \
  --gtest_filter='LoopTest.RandomKill9OfTheLearnerWhileEdgesStreamLosesNoAcknowledgedFrame'
