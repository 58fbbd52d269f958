#!/usr/bin/env bash
# FID-L0 of a themed model against its guidance scale, painted by the release binary at its
# defaults otherwise (theme "any": each picture's theme drawn from its seed as often as the
# training set holds it; N pictures, seed 1, as models/train/ship.sh paints them), each scored
# against N training images, plus the same pictures with no theme ("none", one network call per
# step), and a 64-picture grid per scale (seed 2026, as the README's grid):
#   bench/guidance_sweep.sh MODEL_DIR OUT_DIR SCALE...     e.g. ... runs/v11/ship out 1 2 3
#   VARIANT (default int8w), N (default 953), STEPS (default 20), PETAL, JOBS (default 2)
# Writes OUT_DIR/fid_guidance.json (one key per scale, "none" for no theme) and grid-*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODEL=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
N=${N:-953}
VARIANT=${VARIANT:-int8w}
STEPS=${STEPS:-20}
PETAL=${PETAL:-$ROOT/target/release/petal}
PY=${PY:-$ROOT/.venv/bin/python}
JOBS=${JOBS:-2}
paint() {  # paint NAME FLAGS...: N pictures and the grid, with timing
    local name=$1; shift
    local start; start=$(date +%s)
    "$PETAL" --quiet --threads 1 generate --model "$MODEL" --variant "$VARIANT" --steps "$STEPS" \
        --count "$N" --seed 1 --size 32 --save-raw "$OUT/samples-$name.npy" --out "$OUT/samples-$name.png" "$@"
    echo "== $name: $N pictures in $(( $(date +%s) - start )) s on one thread"
    "$PETAL" --quiet --threads 1 generate --model "$MODEL" --variant "$VARIANT" --steps "$STEPS" \
        --count 64 --size 64 --seed 2026 --out "$OUT/grid-$name.png" "$@"
}
runs=("none:--theme none")
for s in "$@"; do runs+=("g$s:--theme any --guidance $s"); done
running=0
for r in "${runs[@]}"; do
    name=${r%%:*}
    # shellcheck disable=SC2086
    paint "$name" ${r#*:} &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
for r in "${runs[@]}"; do
    name=${r%%:*}
    cp "$OUT/samples-$name.npy" "$OUT/$name.npy"
    (cd models/train && "$PY" -m petal_train eval --model "$OUT/$name.npy" --count "$N" --steps "$STEPS" \
        --json "$OUT/fid_guidance.json") | grep FID
    rm "$OUT/$name.npy"
done
echo "results in $OUT/fid_guidance.json"
