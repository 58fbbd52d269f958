#!/usr/bin/env bash
# FID-L0 of the shipped default variant at more sampler steps than the default, painted by the
# release binary (N samples, seed 1, as models/train/ship.sh paints them) and scored against N
# training images:
#   bench/fid_steps.sh OUT_DIR STEPS...        e.g. bench/fid_steps.sh bench/results/model-7800 20 30 50
#   SAMPLER (default dpmpp-2m), VARIANT (default int8w), N (default 953), PETAL, THREADS (default 2)
# Appends one entry per step count to OUT_DIR/fid_steps-SAMPLER.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
N=${N:-953}
SAMPLER=${SAMPLER:-dpmpp-2m}
VARIANT=${VARIANT:-int8w}
PETAL=${PETAL:-$ROOT/target/release/petal}
PY=${PY:-$ROOT/.venv/bin/python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for s in "$@"; do
    start=$(date +%s)
    "$PETAL" --quiet --threads "${THREADS:-2}" generate --variant "$VARIANT" --sampler "$SAMPLER" \
        --count "$N" --seed 1 --size 32 --steps "$s" \
        --save-raw "$scratch/s$s.npy" --out "$scratch/s$s.png"
    painted=$(( $(date +%s) - start ))
    echo "== $SAMPLER $s steps: $N pictures painted in ${painted}s"
    (cd models/train && "$PY" -m petal_train eval --model "$scratch/s$s.npy" --count "$N" --steps "$s" \
        --json "$OUT/fid_steps-$SAMPLER.json") | grep FID
done
