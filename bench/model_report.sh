#!/usr/bin/env bash
# Everything the model card and README report about a newly shipped model, measured in one go:
#   bench/model_report.sh RUN_DIR [OUT_DIR]
# RUN_DIR is the training run that models/train/ship.sh shipped from (it holds the samples the
# release binary painted for each variant). Writes OUT_DIR (default bench/results/model-<step>/):
#   fid_nfe.json        FID-L0 of the default variant (int8w) at 5/10/20 DPM-Solver++ 2M steps,
#                       painted by the release binary, and of 1000-step DDPM (PyTorch, batched,
#                       bf16), each N samples vs N training images
#   nearest.json        memorisation: nearest training image per sample (docs/img/nearest.png)
#   conditioning.json   first-step x0 and unclipped final range, old epsilon model vs this one
#                       (OLD_MODEL=dir, default: extracted from git at OLD_REV)
#   bench-*.json        petal bench of this model and of the old one (per-step time)
# and the pictures in docs/: the sample grid, the denoising steps, the frame strips.
#   N (default 953), PETAL (default target/release/petal), SKIP_DDPM=1 leaves out the 1000-step row
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=$(cd "$1" && pwd)
N=${N:-953}
PETAL=${PETAL:-$ROOT/target/release/petal}
PY=${PY:-$ROOT/.venv/bin/python}
MODEL=$ROOT/models/emoji32
step=$($PY -c "import json;print(json.load(open('$MODEL/card.json'))['training']['steps'])")
OUT=$(mkdir -p "${2:-$ROOT/bench/results/model-$step}" && cd "${2:-$ROOT/bench/results/model-$step}" && pwd)
mkdir -p "$OUT"
train() { (cd "$ROOT/models/train" && "$PY" -m petal_train "$@"); }

echo "== 1000-step DDPM (PyTorch, batched, bf16) in the background"
ddpm_pid=""
if [ "${SKIP_DDPM:-0}" != 1 ]; then
    train eval --model "$MODEL/ema.pt" --sampler ddpm --bf16 --count "$N" --json "$OUT/fid_ddpm.json" \
        >"$OUT/ddpm.log" 2>&1 &
    ddpm_pid=$!
fi

echo "== DPM-Solver++ 2M at 5 and 10 steps, default variant, painted by the release binary"
nfe_pids=()
for s in 5 10; do
    "$PETAL" --quiet --threads 1 generate --count "$N" --seed 1 --size 32 --steps "$s" \
        --save-raw "$RUN/nfe$s-int8w.npy" --out "$RUN/nfe$s-int8w.png" &
    nfe_pids+=($!)
done
for p in "${nfe_pids[@]}"; do wait "$p"; done
for s in 5 10; do
    train eval --model "$RUN/nfe$s-int8w.npy" --count "$N" --json "$OUT/fid_nfe$s.json" | grep FID
done

echo "== memorisation"
train nearest --samples "$RUN/samples-int8w.npy" --out "$ROOT/docs/img/nearest.png" --json "$OUT/nearest.json"

echo "== conditioning: old epsilon model vs this one"
OLD=${OLD_MODEL:-}
if [ -z "$OLD" ]; then
    OLD=$(mktemp -d)
    for f in card.json emoji32-f32.onnx emoji32-int8w.onnx emoji32-int8.onnx; do
        git show "${OLD_REV:-b1ecdc2~1}:models/emoji32/$f" >"$OLD/$f"
    done
fi
"$PY" bench/v_conditioning.py "$OLD" "$MODEL" --count 64 --json "$OUT/conditioning.json"

echo "== per-step time: this model and the old one (petal bench, 1 thread)"
"$PETAL" bench --thread-counts 1 --runs 50 --json >"$OUT/bench-new.json"
"$PETAL" bench --model "$OLD" --thread-counts 1 --runs 50 --json >"$OUT/bench-old.json"

echo "== pictures"
"$PETAL" --quiet generate --out docs/img/samples.png --count 64 --size 64 --seed 2026
"$PETAL" --quiet generate --out /tmp/one.png --seed 7 --size 96 --steps 10 --steps-strip docs/img/steps.png
cargo run --quiet --release --locked --example frame_strips -- docs

if [ -n "$ddpm_pid" ]; then
    echo "== waiting for the 1000-step DDPM row"
    wait "$ddpm_pid" || { cat "$OUT/ddpm.log"; exit 1; }
    grep FID "$OUT/ddpm.log"
fi
echo "results in $OUT"
