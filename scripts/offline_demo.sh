#!/usr/bin/env bash
# The offline pipeline (before the live loop of scripts/demo.sh), on the real sample video:
#   1. the teacher labels vtest.avi (COCO ground-truth JSON of its boxes),
#   2. kdlearnd distills a student on frames [0,636) and evaluates it on held-out [636,795),
#   3. kdedge runs that student on the held-out frames, writing JSON lines and COCO results.
# Outputs go to out/ (override with KD_OUT). Set-up is cached, so a second run skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR="${KD_BUILD_DIR:-build}"
OUT="${KD_OUT:-out}"
VIDEO="$(bash scripts/fetch_assets.sh)/vtest.avi"
mkdir -p "$OUT"
THREADS="$(nproc)"

echo "== teacher labels (vtest.avi, all 795 frames) ==" >&2
"$BUILD_DIR"/daemon/kdlearnd label --video "$VIDEO" --coco-out "$OUT/teacher_gt.json" \
  --results-out "$OUT/teacher_results.json" --threads "$THREADS"
echo "== distill a student on frames 0:636, evaluate on held-out 636:795 ==" >&2
"$BUILD_DIR"/daemon/kdlearnd distill --video "$VIDEO" --frames 0:636 --heldout 636:795 \
  --out "$OUT/student.kdw" --config config/examples/distill.toml --threads "$THREADS"
echo "== edge inference on the held-out frames ==" >&2
"$BUILD_DIR"/daemon/kdedge detect --weights "$OUT/student.kdw" --video "$VIDEO" --frames 636:795 \
  --threads 1 --jsonl "$OUT/detections.jsonl" --coco-out "$OUT/student_results.json"
echo "demo: outputs in $OUT/ (student.kdw, student.kdw.report.json, detections.jsonl, *_results.json, teacher_gt.json)" >&2
