#!/usr/bin/env bash
# From a training run to a shipped model directory: export, quantize, score, card.
#   models/train/ship.sh [RUN_DIR] [MODEL_DIR] [NAME]
# Defaults: runs/emoji32 -> ../emoji32, name emoji32. FID-L0 uses EVAL_COUNT samples (default 500).
set -euo pipefail
cd "$(dirname "$0")"
RUN=${1:-runs/emoji32}
OUT=${2:-../emoji32}
NAME=${3:-emoji32}
COUNT=${EVAL_COUNT:-500}
PY=${PY:-../../.venv/bin/python}
mkdir -p "$OUT"
FID="$RUN/fid.json"
rm -f "$FID"
# The EMA weights travel with the model so a later run can `train --resume $OUT/ema.pt`.
cp "$RUN/ema.pt" "$OUT/ema.pt"
$PY -m petal_train export --ckpt "$OUT/ema.pt" --out "$OUT/$NAME-f32.onnx"
$PY -m petal_train quantize --model "$OUT/$NAME-f32.onnx" --ckpt "$OUT/ema.pt" --out-dir "$OUT"
for v in f32 int8w int8; do
    floor=(); [ "$v" = f32 ] && floor=(--floor)
    $PY -m petal_train eval --model "$OUT/$NAME-$v.onnx" --ckpt "$OUT/ema.pt" --count "$COUNT" "${floor[@]}" --json "$FID"
done
$PY -m petal_train card --dir "$OUT" --ckpt "$OUT/ema.pt" --name "$NAME" --fid "$FID"
cp "$FID" "$OUT/fid.json"
ls -la "$OUT"
