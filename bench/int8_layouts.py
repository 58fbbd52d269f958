"""int8 layouts for tract, measured: which quantized graph does tract run fastest, and how far is
each from f32? (issue #12: symmetric s8 activations, per-channel weight scales, QDQ vs QOperator)

    .venv/bin/python bench/int8_layouts.py [--model-dir models/emoji32] [--petal target/release/petal]

Each layout is quantized from the shipped f32 file with onnxruntime quantize_static (the recipe's
calibration: 64 noisy training images at timesteps spread over the schedule, MinMax; attention
kept float as the recipe does), written into a copy of the model directory as its `int8` variant
(the card's sha256 updated), and timed by `petal bench --variants int8 --thread-counts 1`. Its
error against f32 is measured in onnxruntime at 8 timesteps, as `quantize` reports it. A layout
that onnxruntime or tract cannot make or run is reported with its error.

Measured (session 8, `bench/results/speed/int8_layouts.json`): s8 activations fail inside
onnxruntime 1.32's quantize_static on this opset-21 graph (QuantizeLinear output_dtype INT8 vs a
UINT8 zero point), in both formats.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models" / "train"))

from petal_train.export import run_onnx  # noqa: E402
from petal_train.quantize import (  # noqa: E402
    _images, _Reader, attention_exclusions, calibration_timesteps, check_tract_safe, compare,
    noisy_inputs, quantize_weights)
from petal_train.schedule import Schedule  # noqa: E402
from petal_train.train import load_checkpoint  # noqa: E402

# name -> (format, activation type, symmetric activations, per-channel weights)
LAYOUTS = {
    "QOperator u8 asym, per-tensor (shipped)": ("QOperator", "QUInt8", False, False),
    "QOperator s8 sym, per-tensor": ("QOperator", "QInt8", True, False),
    "QOperator u8 asym, per-channel": ("QOperator", "QUInt8", False, True),
    "QDQ u8 asym, per-tensor": ("QDQ", "QUInt8", False, False),
    "QDQ s8 sym, per-tensor": ("QDQ", "QInt8", True, False),
    "QDQ s8 sym, per-channel": ("QDQ", "QInt8", True, True),
}


def quantize(f32_path: Path, feeds, fmt: str, act: str, sym: bool, per_channel: bool) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    exclude = attention_exclusions(onnx.load(f32_path))
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "q.onnx"
        quantize_static(str(f32_path), str(out), _Reader(feeds),
                        quant_format=getattr(QuantFormat, fmt), op_types_to_quantize=["Conv", "MatMul"],
                        per_channel=per_channel, reduce_range=False,
                        activation_type=getattr(QuantType, act), weight_type=QuantType.QInt8,
                        nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": sym})
        q = onnx.load(out)
    del q.graph.value_info[:]
    q, _ = quantize_weights(q)
    check_tract_safe(q)
    return q


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(ROOT / "models" / "emoji32"))
    p.add_argument("--petal", default=str(ROOT / "target" / "release" / "petal"))
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--json", default=None)
    p.add_argument("--only", default="", help="comma-separated parts of layout names to run")
    a = p.parse_args()
    model_dir = Path(a.model_dir)
    card = json.loads((model_dir / "card.json").read_text())
    f32_path = model_dir / card["variants"]["f32"]["file"]
    ck = load_checkpoint(model_dir / "ema.pt")
    sched = Schedule.from_dict(ck["schedule"])
    r = card["resolution"]
    images = _images(r, None)
    torch.manual_seed(0)
    feeds = noisy_inputs(sched, r, calibration_timesteps(sched.T, 64), 0, images)
    check = noisy_inputs(sched, r, sorted({int(round(v)) for v in np.linspace(0, sched.T - 1, 8)}),
                         1, images)
    pairs = [(f["x"], f["t"]) for f in check]
    ref = run_onnx(str(f32_path), pairs)
    rows = []
    only = [o for o in a.only.split(",") if o]
    for name, (fmt, act, sym, per_channel) in LAYOUTS.items():
        if only and not any(o in name for o in only):
            continue
        row = {"layout": name}
        try:
            q = quantize(f32_path, feeds, fmt, act, sym, per_channel)
            data = q.SerializeToString()
            row.update({k: v for k, v in compare(ref, run_onnx(data, pairs)).items()
                        if k in ("max_abs_err", "rel_mean_abs_err")})
            with tempfile.TemporaryDirectory() as d:
                for f in model_dir.iterdir():
                    if f.is_file():
                        shutil.copy(f, d)
                (Path(d) / card["variants"]["int8"]["file"]).write_bytes(data)
                c = json.loads(json.dumps(card))
                c["variants"]["int8"]["sha256"] = hashlib.sha256(data).hexdigest()
                c["variants"]["int8"]["bytes"] = len(data)
                (Path(d) / "card.json").write_text(json.dumps(c))
                out = subprocess.run([a.petal, "--quiet", "bench", "--model", d, "--variants", "int8",
                                      "--thread-counts", "1", "--runs", str(a.runs), "--json"],
                                     capture_output=True, text=True)
            if out.returncode != 0:
                row["tract"] = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
            else:
                b = json.loads(out.stdout)[0]
                row.update({"step_ms_median": b["step_ms_median"], "image_ms": b["image_ms"],
                            "optimize_ms": b["optimize_ms"]})
        except Exception as e:  # a layout tract or onnxruntime cannot take is a result too
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
