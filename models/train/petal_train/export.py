"""`export`: the EMA UNet as one self-contained ONNX file with fixed input facts, checked against PyTorch.

Graph contract (what the Rust runtime and card.json rely on):
  inputs  x   float32 [1, 3, R, R]   the noisy image x_t
          t   float32 [1]            the timestep index 0..T-1, as a float
          theme float32 [1]          only for a network trained with --classes: the theme index
                                     0..K-1, or K for none (a float, like t)
  output  v   float32 [1, 3, R, R]   the prediction (named `eps` for an epsilon model)

GroupNorm must reach tract as single `GroupNormalization` nodes (tract runs them faster than the
Reshape+InstanceNormalization decomposition). The dynamo exporter of torch 2.15 emits them directly at
opset >= 21 (GroupNormalization-21: per-channel scale/bias); the legacy TorchScript exporter always
decomposes. For graphs that still hold the decomposition (lower opsets, other torch versions),
`fuse_group_norm` rewrites Reshape -> InstanceNormalization -> Reshape -> Mul -> Add into one node
when the target opset is >= 21.
"""
from __future__ import annotations

import collections
import io
import math
import os
import tempfile
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from .errors import RecipeError
from .train import OUTPUT_NAMES, load_ema_model, prediction_of

TOLERANCE = 1e-4


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(collections.Counter(n.op_type for n in model.graph.node).most_common())


def verification_inputs(sched, resolution: int, n: int = 6, seed: int = 0,
                        themes: int = 0) -> list[tuple[np.ndarray, ...]]:
    """(x_t, t) pairs spread over the whole schedule, x_t = sqrt(a) x0 + sqrt(1-a) noise with a smooth
    random x0 in [-1, 1] (activation ranges move with t, so one t is not enough). With `themes` K > 0,
    (x_t, t, theme) triples, the theme cycling through 0..K (K: none)."""
    g = torch.Generator().manual_seed(seed)
    T = sched.T
    ts = sorted({int(round(v)) for v in np.linspace(0, T - 1, n)})
    out = []
    for t in ts:
        x0 = torch.nn.functional.interpolate(torch.rand(1, 3, max(resolution // 4, 1), max(resolution // 4, 1),
                                                        generator=g) * 2 - 1, size=(resolution, resolution),
                                             mode="bilinear", align_corners=False)
        a = float(sched.alphas_cumprod[t])
        x = math.sqrt(a) * x0 + math.sqrt(1 - a) * torch.randn(x0.shape, generator=g)
        pair = (x.float().numpy(), np.array([float(t)], dtype=np.float32))
        if themes > 0:
            pair += (np.array([float(len(out) % (themes + 1))], dtype=np.float32),)
        out.append(pair)
    return out


def _initializer(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def fuse_group_norm(model: onnx.ModelProto) -> int:
    """Rewrite Reshape[1,G,-1] -> InstanceNormalization(ones, zeros) -> Reshape[shape of x] -> Mul(gamma)
    -> Add(beta) into GroupNormalization-21. Returns the number of fused patterns. Patterns that do not
    match exactly (unexpected constants, tensors used elsewhere) are left alone."""
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    graph_outputs = {o.name for o in g.output}

    def only_consumer(name: str, op: str):
        cs = consumers.get(name, [])
        if len(cs) != 1 or cs[0].op_type != op or name in graph_outputs:
            return None
        return cs[0]

    remove, add, fused = set(), [], 0
    new_inits = []
    for inorm in list(g.node):
        if inorm.op_type != "InstanceNormalization":
            continue
        r1 = producers.get(inorm.input[0])
        if r1 is None or r1.op_type != "Reshape":
            continue
        shape1 = _initializer(model, r1.input[1])
        s_in, b_in = _initializer(model, inorm.input[1]), _initializer(model, inorm.input[2])
        if shape1 is None or s_in is None or b_in is None or len(shape1) != 3:
            continue
        if not (np.all(s_in == 1) and np.all(b_in == 0)):
            continue
        groups = int(shape1[1])
        r2 = only_consumer(inorm.output[0], "Reshape")
        if r2 is None or only_consumer(r1.output[0], "InstanceNormalization") is None:
            continue
        mul = only_consumer(r2.output[0], "Mul")
        if mul is None:
            continue
        gamma_name = mul.input[1] if mul.input[0] == r2.output[0] else mul.input[0]
        gamma = _initializer(model, gamma_name)
        add_n = only_consumer(mul.output[0], "Add")
        if gamma is None or add_n is None:
            continue
        beta_name = add_n.input[1] if add_n.input[0] == mul.output[0] else add_n.input[0]
        beta = _initializer(model, beta_name)
        if beta is None:
            continue
        eps = next((a.f for a in inorm.attribute if a.name == "epsilon"), 1e-5)
        prefix = f"{inorm.name or inorm.output[0]}_fused"
        new_inits += [numpy_helper.from_array(gamma.reshape(-1).astype(np.float32), prefix + "_scale"),
                      numpy_helper.from_array(beta.reshape(-1).astype(np.float32), prefix + "_bias")]
        add.append((add_n, helper.make_node(
            "GroupNormalization", [r1.input[0], prefix + "_scale", prefix + "_bias"], [add_n.output[0]],
            name=prefix, num_groups=groups, epsilon=eps, stash_type=1)))
        remove.update(id(n) for n in (r1, inorm, r2, mul, add_n))
        fused += 1
    if not fused:
        return 0
    replace_at = {id(old): new for old, new in add}
    nodes = []
    for n in g.node:
        if id(n) in replace_at:
            nodes.append(replace_at[id(n)])
        elif id(n) not in remove:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    # Drop nodes and initializers nobody reads any more (Shape/Constant nodes that fed the removed
    # Reshapes, the InstanceNormalization ones/zeros).
    live = {o.name for o in g.output}
    kept = []
    for n in reversed(list(g.node)):
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(n.input)
    del g.node[:]
    g.node.extend(reversed(kept))
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return fused


def _fix_io(model: onnx.ModelProto, resolution: int, output: str) -> None:
    """Pin the graph's I/O facts to the contract (names, dtypes, fixed shapes)."""
    want = {"x": [1, 3, resolution, resolution], "t": [1], "theme": [1]}
    names = [i.name for i in model.graph.input]
    if names not in (["x", "t"], ["x", "t", "theme"]):
        raise RecipeError(f"exported graph inputs are {names}, expected ['x', 't'] or ['x', 't', 'theme']")
    if len(model.graph.output) != 1:
        raise RecipeError(f"exported graph has {len(model.graph.output)} outputs, expected 1")
    old = model.graph.output[0].name
    if old != output:
        for n in model.graph.node:
            for k, o in enumerate(n.output):
                if o == old:
                    n.output[k] = output
            for k, i in enumerate(n.input):
                if i == old:
                    n.input[k] = output
        model.graph.output[0].name = output
    for vi, shape in [*((i, want[i.name]) for i in model.graph.input),
                      (model.graph.output[0], [1, 3, resolution, resolution])]:
        tt = vi.type.tensor_type
        if tt.elem_type != onnx.TensorProto.FLOAT:
            raise RecipeError(f"graph {vi.name} is not float32")
        tt.shape.ClearField("dim")
        for d in shape:
            tt.shape.dim.add().dim_value = d


class ThemedGraph(torch.nn.Module):
    """The theme as a float input, like t, so every input of the graph is float32."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor, theme: torch.Tensor) -> torch.Tensor:
        return self.model(x, t, theme.long())


def _torch_export(model: torch.nn.Module, resolution: int, opset: int) -> onnx.ModelProto:
    x = torch.zeros(1, 3, resolution, resolution)
    t = torch.zeros(1)
    args, names = (x, t), ["x", "t"]
    if model.cfg.num_classes > 0:
        model = ThemedGraph(model)
        args, names = (x, t, torch.zeros(1)), ["x", "t", "theme"]
    buf = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(buf):
        warnings.simplefilter("ignore")
        try:
            prog = torch.onnx.export(model, args, input_names=names, output_names=["eps"],
                                     opset_version=opset, dynamo=True, external_data=False, verbose=False)
        except Exception as e:  # the exporter raises many types
            raise RecipeError(f"torch.onnx.export failed at opset {opset}: {e}\n{buf.getvalue()}") from e
    if prog is None:
        raise RecipeError("torch.onnx.export returned no program")
    return prog.model_proto


def run_onnx(path_or_bytes, pairs) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])
    out = sess.get_outputs()[0].name
    names = [i.name for i in sess.get_inputs()]
    return [sess.run([out], dict(zip(names, pair)))[0] for pair in pairs]


def export(ckpt: Path, out: Path, opset: int = 21) -> dict:
    if opset < 18:
        raise RecipeError(f"opset {opset} is too old; GroupNormalization needs opset >= 18 (21 recommended)")
    model, sched, ck = load_ema_model(ckpt)
    model.eval()
    r = model.cfg.resolution
    themes = model.cfg.num_classes
    n_gn = sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules())

    proto = _torch_export(model, r, opset)
    fused = 0
    if opset >= 21 and op_counts(proto).get("GroupNormalization", 0) < n_gn:
        fused = fuse_group_norm(proto)
    prediction = prediction_of(ck)
    _fix_io(proto, r, OUTPUT_NAMES[prediction])
    # The dynamo exporter annotates every node with stack traces and module paths (~5% of the file,
    # and local paths); the runtime needs none of it.
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    proto.doc_string = (f"petal DDPM {prediction}-predictor; schedule {sched.to_dict()}; "
                        f"step {ck.get('step')}; inputs x[1,3,{r},{r}] t[1] (timestep index)"
                        + (f" theme[1] (0..{themes - 1}, {themes}: none)" if themes else ""))
    helper.set_model_props(proto, {"petal.schedule": str(sched.to_dict()), "petal.resolution": str(r),
                                   "petal.step": str(ck.get("step")),
                                   "petal.prediction": prediction})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise RecipeError(f"exported graph fails onnx.checker: {e}") from e
    counts = op_counts(proto)
    if opset >= 21 and counts.get("GroupNormalization", 0) != n_gn:
        raise RecipeError(f"expected {n_gn} GroupNormalization nodes, graph has "
                          f"{counts.get('GroupNormalization', 0)} ({counts})")

    # Verify the serialized bytes (what lands on disk) before replacing anything.
    data = proto.SerializeToString()
    pairs = verification_inputs(sched, r, themes=themes)
    got = run_onnx(data, pairs)
    with torch.no_grad():
        want = [model(*(torch.from_numpy(a) for a in pair[:2]),
                      torch.from_numpy(pair[2]).long() if themes else None).numpy() for pair in pairs]
    diffs = [float(np.abs(a - b).max()) for a, b in zip(got, want)]
    max_diff = max(diffs)
    for pair, d in zip(pairs, diffs):
        theme = f"  theme={int(pair[2][0])}" if themes else ""
        print(f"  t={int(pair[1][0]):4d}{theme}  max |onnx - torch| = {d:.2e}")
    if not np.isfinite(max_diff) or max_diff > TOLERANCE:
        raise RecipeError(f"ONNX export disagrees with PyTorch: max abs diff {max_diff:.3e} > {TOLERANCE}")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    total = sum(counts.values())
    print(f"exported {ckpt} (step {ck.get('step')}) -> {out}: {len(data)} bytes, opset {opset}, "
          f"{total} nodes" + (f", {fused} GroupNorm patterns fused" if fused else ""))
    print("  ops: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if opset < 21:
        print(f"  note: at opset {opset} GroupNorm stays decomposed (GroupNormalization-18 has per-group "
              "scale/bias, not per-channel); use opset 21 for single GroupNormalization nodes")
    print(f"  verified against PyTorch on {len(pairs)} (x, t) pairs: max abs diff {max_diff:.2e}")
    return {"file": str(out), "bytes": len(data), "opset": opset, "ops": counts, "nodes": total,
            "max_abs_diff": max_diff, "fused_group_norms": fused}
