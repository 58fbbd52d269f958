"""`quantize`: two int8 variants of an exported f32 model, each checked against f32 with onnxruntime.

<name>-int8w.onnx  weight-only int8. Every Conv/Gemm/MatMul weight initializer is stored as int8 with a
                   symmetric per-output-channel scale; activations and all arithmetic stay float32.
                   ~4x smaller file, f32 speed. Written by hand with the onnx API. The per-channel scale
                   is applied as DequantizeLinear(w_q, scale=1, zero_point=0) -> Mul(scale[C,1,1,1]):
                   per-tensor DequantizeLinear plus a float Mul, because tract 0.23.9's per-axis
                   DequantizeLinear path subtracts an integer zero point from a float tensor, which its
                   binary ops have no common type for. Both forms compute exactly q * scale[c].
<name>-int8.onnx   integer compute for ARM: QOperator format (QLinearConv, QLinearMatMul; u8
                   activations, s8 weights, per-tensor), onnxruntime quantize_static with MinMax
                   calibration at timesteps spread over the whole schedule (activation ranges move
                   with t). Only Conv and MatMul are quantized, so the graph holds standard ONNX ops only
                   (QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul + float ops; no
                   com.microsoft QLinearAdd/QGemm/QLinearSoftmax that tract cannot load). The float
                   Gemms left over (timestep-embedding projections) get int8 weights as in int8w.
                   Softmax, the Mul feeding it (if any) and the MatMul that *reads* the attention
                   weights stay float: tract 0.23.9 folds DequantizeLinear -> Softmax -> QuantizeLinear
                   into a lookup table whose every output is 1.0; with the consumer float there is never a
                   QuantizeLinear after a Softmax. `check_tract_safe` verifies that structurally.

Results go to <out_dir>/quant_report.json, which `card` reads.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from .errors import RecipeError
from .export import op_counts, run_onnx
from .train import OUTPUT_NAMES, load_checkpoint
from .schedule import Schedule

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "runs" / "data" / "images.npy"
WEIGHT_OPS = {"Conv": 0, "Gemm": None, "MatMul": None}  # op -> output-channel axis of the weight
STANDARD_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}


def variant_paths(model: Path, out_dir: Path) -> tuple[Path, Path]:
    stem = model.stem[:-4] if model.stem.endswith("-f32") else model.stem
    return out_dir / f"{stem}-int8w.onnx", out_dir / f"{stem}-int8.onnx"


def _atomic_write(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------- inputs (calibration and checking)

def _images(resolution: int, data: Path | None) -> np.ndarray | None:
    """Training images as float32 [N,3,R,R] in [-1,1], or None when there are none at this resolution."""
    path = data if data is not None else DEFAULT_DATA
    if path.is_dir():
        path = path / "images.npy"
    if not path.exists():
        return None
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.ndim != 4 or arr.shape[1:] != (resolution, resolution, 3) or arr.shape[0] == 0:
        return None
    return arr


def noisy_inputs(sched: Schedule, resolution: int, ts: list[int], seed: int,
                 images: np.ndarray | None, themes: int = 0) -> list[dict[str, np.ndarray]]:
    """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise, x0 a real training image (or noise when there is none).
    A themed network (`themes` K > 0) gets themes cycling through 0..K (K: none)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for t in ts:
        if images is not None:
            x0 = images[int(rng.integers(0, images.shape[0]))].astype(np.float32) / 127.5 - 1.0
            x0 = x0.transpose(2, 0, 1)[None]
            if rng.random() < 0.5:
                x0 = x0[..., ::-1]
        else:
            x0 = np.clip(rng.standard_normal((1, 3, resolution, resolution)), -1, 1)
        a = float(sched.alphas_cumprod[t])
        x = math.sqrt(a) * x0 + math.sqrt(1 - a) * rng.standard_normal(x0.shape)
        feed = {"x": np.ascontiguousarray(x, dtype=np.float32), "t": np.array([float(t)], np.float32)}
        if themes > 0:
            feed["theme"] = np.array([float(len(feeds) % (themes + 1))], np.float32)
        feeds.append(feed)
    return feeds


def calibration_timesteps(T: int, n: int) -> list[int]:
    """n timesteps stratified over 0..T-1 (one from each of n equal strata, centred)."""
    return [min(T - 1, int((i + 0.5) * T / n)) for i in range(n)]


class _Reader:
    """onnxruntime CalibrationDataReader over a fixed list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.feeds, self.i = feeds, 0

    def get_next(self):
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return self.feeds[self.i - 1]

    def rewind(self):
        self.i = 0


# ---------------------------------------------------------------- int8w (weight only)

def quantize_weights(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Weight-only int8: returns the new model and the number of weights quantized."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    one = "petal_dq_scale_one"
    zero = "petal_dq_zero_i8"
    new_nodes: dict[int, list] = {}
    done = 0
    for node in g.node:
        if node.op_type not in WEIGHT_OPS or len(node.input) < 2:
            continue
        wname = node.input[1]
        if wname not in inits or any(c is not node for c in consumers.get(wname, [])):
            continue
        w = numpy_helper.to_array(inits[wname])
        if w.dtype != np.float32 or w.ndim < 2:
            continue
        if node.op_type == "Conv":
            axis = 0
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axis = 0 if trans_b else 1
        else:  # MatMul: B is [K, N]
            axis = w.ndim - 1
        red = tuple(d for d in range(w.ndim) if d != axis)
        amax = np.abs(w).max(axis=red, keepdims=True).astype(np.float32)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        qname, sname, dqname = wname + "_q", wname + "_scale", wname + "_dq"
        g.initializer.remove(inits[wname])
        g.initializer.extend([numpy_helper.from_array(q, qname), numpy_helper.from_array(scale, sname)])
        new_nodes[id(node)] = [
            helper.make_node("DequantizeLinear", [qname, one, zero], [dqname], name=wname + "_DequantizeLinear"),
            helper.make_node("Mul", [dqname, sname], [wname + "_w"], name=wname + "_scale_Mul"),
        ]
        node.input[1] = wname + "_w"
        done += 1
    if done:
        g.initializer.extend([numpy_helper.from_array(np.array(1.0, np.float32), one),
                              numpy_helper.from_array(np.array(0, np.int8), zero)])
        nodes = []
        for n in g.node:
            nodes.extend(new_nodes.get(id(n), []))
            nodes.append(n)
        del g.node[:]
        g.node.extend(nodes)
    # Stale value_info would describe the removed float initializers; the graph needs none.
    del g.value_info[:]
    return m, done


# ---------------------------------------------------------------- int8 (QOperator)

def attention_exclusions(model: onnx.ModelProto) -> list[str]:
    """Names of nodes to keep float: every Softmax, a Mul that feeds one, and the MatMul(s) that read a
    Softmax output (directly or through Transpose/Reshape)."""
    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    cons: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    out = []
    for n in g.node:
        if n.op_type != "Softmax":
            continue
        out.append(n.name)
        p = prod.get(n.input[0])
        if p is not None and p.op_type == "Mul":
            out.append(p.name)
        frontier = list(cons.get(n.output[0], []))
        while frontier:
            c = frontier.pop()
            if c.op_type in ("Transpose", "Reshape", "Squeeze", "Unsqueeze"):
                frontier.extend(cons.get(c.output[0], []))
            elif c.op_type == "MatMul":
                out.append(c.name)
    return out


def check_tract_safe(model: onnx.ModelProto) -> None:
    """Standard-domain ops only, and no Softmax whose output (possibly through layout ops) reaches a
    QuantizeLinear (the tract 0.23.9 lookup-table fold)."""
    bad = sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if bad:
        raise RecipeError(f"quantized graph holds non-standard ops tract cannot load: {', '.join(bad)}")
    cons: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    for n in model.graph.node:
        if n.op_type != "Softmax":
            continue
        frontier = list(cons.get(n.output[0], []))
        while frontier:
            c = frontier.pop()
            if c.op_type == "QuantizeLinear":
                raise RecipeError(f"Softmax {n.name} feeds a QuantizeLinear ({c.name}); tract 0.23.9 "
                                  "folds that into a constant lookup table")
            if c.op_type in ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity"):
                frontier.extend(cons.get(c.output[0], []))


def quantize_static_qoperator(model_path: Path, feeds: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    f32 = onnx.load(model_path)
    exclude = attention_exclusions(f32)
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "int8.onnx"
        try:
            quantize_static(
                str(model_path), str(out), _Reader(feeds),
                quant_format=QuantFormat.QOperator,
                op_types_to_quantize=["Conv", "MatMul"],
                per_channel=False, reduce_range=False,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": True,
                               "ActivationSymmetric": False},
            )
        except Exception as e:  # onnxruntime raises many types
            raise RecipeError(f"onnxruntime quantize_static failed: {e}") from e
        q = onnx.load(out)
    del q.graph.value_info[:]
    return q


# ---------------------------------------------------------------- comparison

def compare(ref: list[np.ndarray], got: list[np.ndarray]) -> dict:
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref, got)])
    scale = float(np.mean(np.concatenate([np.abs(a).ravel() for a in ref])))
    return {"max_abs_err": float(diffs.max()), "mean_abs_err": float(diffs.mean()),
            "mean_abs_f32": scale, "rel_mean_abs_err": float(diffs.mean() / scale) if scale > 0 else None}


def quantize(model: Path, ckpt: Path, out_dir: Path, calib: int = 64, data: Path | None = None,
             seed: int = 0) -> dict:
    if not model.exists():
        raise RecipeError(f"model {model} does not exist (run `export` first)")
    if calib < 1:
        raise RecipeError(f"--calib must be at least 1 (got {calib})")
    try:
        f32 = onnx.load(model)
    except Exception as e:
        raise RecipeError(f"{model} is not a readable ONNX file: {e}") from e
    names = [i.name for i in f32.graph.input]
    outputs = [o.name for o in f32.graph.output]
    if names not in (["x", "t"], ["x", "t", "theme"]) or len(outputs) != 1 \
            or outputs[0] not in OUTPUT_NAMES.values():
        raise RecipeError(f"{model} is not a petal export (inputs {names} -> outputs {outputs}, "
                          f"expected x, t[, theme] -> one of {sorted(OUTPUT_NAMES.values())})")
    r = f32.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    ck = load_checkpoint(ckpt)
    sched = Schedule.from_dict(ck["schedule"])
    if ck["config"].get("resolution") != r:
        raise RecipeError(f"checkpoint {ckpt} is {ck['config'].get('resolution')} px, model {model} is {r} px")
    images = _images(r, data)
    themes = int(ck["config"].get("num_classes", 0)) if "theme" in names else 0
    src = "training images" if images is not None else "noise (no training images at this resolution)"

    int8w_path, int8_path = variant_paths(model, out_dir)
    check_ts = sorted({int(round(v)) for v in np.linspace(0, sched.T - 1, 8)})
    check = noisy_inputs(sched, r, check_ts, seed + 1, images, themes)
    pairs = [tuple(f.values()) for f in check]
    ref = run_onnx(str(model), pairs)

    # (a) weight-only
    wq, nq = quantize_weights(f32)
    onnx.checker.check_model(wq, full_check=True)
    check_tract_safe(wq)
    wq_bytes = wq.SerializeToString()
    r_w = compare(ref, run_onnx(wq_bytes, pairs))

    # (b) QOperator static
    torch.manual_seed(seed)
    feeds = noisy_inputs(sched, r, calibration_timesteps(sched.T, calib), seed, images, themes)
    q = quantize_static_qoperator(model, feeds)
    # The float Gemms left over (timestep-embedding projections) get int8 weights as in int8w.
    q, _ = quantize_weights(q)
    onnx.checker.check_model(q, full_check=True)
    check_tract_safe(q)
    q_bytes = q.SerializeToString()
    r_q = compare(ref, run_onnx(q_bytes, pairs))

    for name, rep in (("int8w", r_w), ("int8", r_q)):
        if not math.isfinite(rep["max_abs_err"]):
            raise RecipeError(f"{name} variant produces non-finite outputs")

    _atomic_write(wq_bytes, int8w_path)
    _atomic_write(q_bytes, int8_path)
    f32_bytes = model.stat().st_size
    report = {
        "f32": {"file": model.name, "bytes": f32_bytes, "max_abs_err_vs_f32": 0.0, "mean_abs_err_vs_f32": 0.0},
        "int8w": {"file": int8w_path.name, "bytes": len(wq_bytes), "weights_quantized": nq,
                  "max_abs_err_vs_f32": r_w["max_abs_err"], "mean_abs_err_vs_f32": r_w["mean_abs_err"],
                  "rel_mean_abs_err_vs_f32": r_w["rel_mean_abs_err"], "ops": op_counts(wq)},
        "int8": {"file": int8_path.name, "bytes": len(q_bytes), "format": "QOperator u8/s8 per-tensor",
                 "calibration": {"samples": calib, "source": src, "method": "MinMax",
                                 "timesteps": "stratified over 0..T-1"},
                 "kept_float": attention_exclusions(f32),
                 "max_abs_err_vs_f32": r_q["max_abs_err"], "mean_abs_err_vs_f32": r_q["mean_abs_err"],
                 "rel_mean_abs_err_vs_f32": r_q["rel_mean_abs_err"], "ops": op_counts(q)},
        "checked_on": {"timesteps": check_ts, "inputs": src, "mean_abs_output_f32": r_w["mean_abs_f32"]},
    }
    _atomic_write((json.dumps(report, indent=2) + "\n").encode(), out_dir / "quant_report.json")
    print(f"checked on t = {check_ts} ({src}); mean |f32 output| = {r_w['mean_abs_f32']:.4f}")
    for name, path, rep, nbytes in (("int8w", int8w_path, r_w, len(wq_bytes)), ("int8", int8_path, r_q, len(q_bytes))):
        print(f"{name:6s} -> {path}: {nbytes} bytes ({nbytes / f32_bytes:.2f}x f32); vs f32: "
              f"max abs err {rep['max_abs_err']:.4f}, mean abs err {rep['mean_abs_err']:.5f} "
              f"({100 * (rep['rel_mean_abs_err'] or 0):.2f}% of mean |output|)")
    print(f"int8 ops: " + ", ".join(f"{k} {v}" for k, v in report["int8"]["ops"].items()))
    return report
