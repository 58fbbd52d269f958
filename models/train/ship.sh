#!/usr/bin/env bash
# From a training run to a shipped model directory: pick the EMA, export, quantize, score, card.
#   models/train/ship.sh [RUN_DIR] [MODEL_DIR] [NAME]
# Defaults: runs/emoji32 -> ../emoji32, name emoji32.
#   EVAL_COUNT  samples per variant, scored against as many training images (default 953, half the
#               emoji set); the floor is two disjoint sets of EVAL_COUNT training images
#   PETAL       a petal binary (e.g. target/release/petal): the samples are painted by it, at its
#               defaults, as users get them; without it they come from onnxruntime + the recipe's
#               DPM-Solver++ 2M
#   PICK_COUNT  samples per EMA length in pick-ema (default EVAL_COUNT); SKIP_PICK=1 ships
#               RUN_DIR/ema-picked.pt from an earlier pick-ema, or else RUN_DIR/ema.pt
#   VARIANTS    the variants painted and scored (default "f32 int8w int8"; f32 must be among them,
#               it carries the floor). All three are exported either way; one left out gets
#               fid_l0 null on the card. On session 13's 2-core VM (no AVX-512) int8's 953
#               pictures ran over 47 min on one core unfinished, f32's took ~6 min, so there
#               VARIANTS="f32 int8w" ships in minutes.
#   GUIDANCE    a themed network (trained with --classes): the guidance scale written to the card,
#               which petal paints themed pictures with (required for one; petal's default theme
#               is "any", so its samples are guided, one theme drawn per picture). Without PETAL
#               the onnxruntime samples are painted with no theme.
set -euo pipefail
cd "$(dirname "$0")"
RUN=${1:-runs/emoji32}
OUT=${2:-../emoji32}
NAME=${3:-emoji32}
COUNT=${EVAL_COUNT:-953}
PY=${PY:-../../.venv/bin/python}
VARIANTS=${VARIANTS:-f32 int8w int8}
case " $VARIANTS " in *" f32 "*) ;; *) echo "VARIANTS must include f32 (it carries the floor)" >&2; exit 2;; esac
guidance=(); [ -n "${GUIDANCE:-}" ] && guidance=(--guidance "$GUIDANCE")
mkdir -p "$OUT"
FID="$RUN/fid.json"
rm -f "$FID"
if [ "${SKIP_PICK:-0}" = 1 ]; then
    # an earlier pick-ema's choice if there is one, else the run's primary EMA
    [ -f "$RUN/ema-picked.pt" ] || cp "$RUN/ema.pt" "$RUN/ema-picked.pt"
else
    $PY -m petal_train pick-ema --ckpt "$RUN/ckpt.pt" --out "$RUN/ema-picked.pt" --count "${PICK_COUNT:-$COUNT}"
fi
# The EMA weights travel with the model so a later run can `train --resume $OUT/ema.pt`.
cp "$RUN/ema-picked.pt" "$OUT/ema.pt"
$PY -m petal_train export --ckpt "$OUT/ema.pt" --out "$OUT/$NAME-f32.onnx"
$PY -m petal_train quantize --model "$OUT/$NAME-f32.onnx" --ckpt "$OUT/ema.pt" --out-dir "$OUT"
# The card must exist before petal can load the directory; it is rewritten with the scores below.
$PY -m petal_train card --dir "$OUT" --ckpt "$OUT/ema.pt" --name "$NAME" "${guidance[@]}"
if [ -n "${PETAL:-}" ]; then
    # One process per variant, side by side: petal paints one picture at a time per process.
    pids=()
    for v in $VARIANTS; do
        "$PETAL" --quiet --threads 1 generate --model "$OUT" --variant "$v" --count "$COUNT" --seed 1 \
            --size 32 --save-raw "$RUN/samples-$v.npy" --out "$RUN/samples-$v.png" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
fi
for v in $VARIANTS; do
    floor=(); [ "$v" = f32 ] && floor=(--floor)
    model="$OUT/$NAME-$v.onnx"
    [ -n "${PETAL:-}" ] && model="$RUN/samples-$v.npy"
    # samples-<variant>.npy is scored under its variant's name, like <name>-<variant>.onnx
    $PY -m petal_train eval --model "$model" --ckpt "$OUT/ema.pt" --count "$COUNT" "${floor[@]}" --json "$FID"
done
$PY -m petal_train card --dir "$OUT" --ckpt "$OUT/ema.pt" --name "$NAME" --fid "$FID" "${guidance[@]}"
cp "$FID" "$OUT/fid.json"
ls -la "$OUT"
