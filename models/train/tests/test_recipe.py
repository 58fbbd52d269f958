"""End-to-end checks of the training recipe on a tiny model (CPU, one thread, about a minute).

A 12-image synthetic folder -> prepare -> train 3 steps -> export -> quantize -> eval -> card, all
through the CLI's main(), plus the user-facing errors (exit status 2, one `error:` line).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from petal_train.__main__ import main
from petal_train.card import SCHEMA, validate_card
from petal_train.errors import RecipeError
from petal_train.train import load_ema_model

torch.set_num_threads(1)
RES = 16
TINY = ["--channels", "8", "--channel-mult", "1", "2", "--groups", "4", "--attn-resolutions", "16",
        "--res-blocks", "1", "--batch", "4", "--threads", "1", "--device", "cpu"]


def write_images(folder: Path, n: int = 12, seed: int = 0) -> None:
    """Flat-colour shapes on transparent backgrounds, like the emoji set."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = np.zeros((48, 48, 4), np.uint8)
        c = rng.integers(0, 256, 3)
        y0, x0 = rng.integers(4, 20, 2)
        y1, x1 = y0 + rng.integers(12, 26), x0 + rng.integers(12, 26)
        a[y0:y1, x0:x1, :3] = c
        a[y0:y1, x0:x1, 3] = 255
        Image.fromarray(a, "RGBA").save(folder / f"img{i:02d}.png")


def run_ok(argv: list[str]) -> None:
    assert main(argv) == 0, f"`{' '.join(argv)}` failed"


def run_error(argv: list[str], capsys, *fragments: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    # progress bars (tqdm, \r-separated) may share stderr; the error itself is one "error: ..." line
    lines = [seg for line in capsys.readouterr().err.splitlines() for seg in line.split("\r")]
    errors = [seg[seg.index("error: "):] for seg in lines if "error: " in seg]
    assert len(errors) == 1, lines
    err = errors[0]
    for f in fragments:
        assert f in err, f"{f!r} not in {err!r}"
    return err


def eps_inputs(r: int, n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((1, 3, r, r)).astype(np.float32), np.array([t], np.float32))
            for t in np.linspace(0, 999, n).round()]


def ort_run(path: Path, pairs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [sess.run(["eps"], {"x": x, "t": t})[0] for x, t in pairs]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    images, data, run, models = root / "images", root / "data", root / "run", root / "models"
    write_images(images)
    run_ok(["prepare", "--images", str(images), "--out", str(data), "--resolution", str(RES)])
    run_ok(["train", "--data", str(data), "--out", str(run), "--steps", "3", "--resolution", str(RES), *TINY])
    ckpt = run / "ema.pt"
    f32 = models / "tiny-f32.onnx"
    run_ok(["export", "--ckpt", str(ckpt), "--out", str(f32)])
    run_ok(["quantize", "--model", str(f32), "--ckpt", str(ckpt), "--out-dir", str(models), "--calib", "8"])
    return {"root": root, "data": data, "ckpt": ckpt, "models": models, "f32": f32,
            "int8w": models / "tiny-int8w.onnx", "int8": models / "tiny-int8.onnx"}


def test_prepare_and_train(pipeline):
    arr = np.load(pipeline["data"] / "images.npy")
    assert arr.shape == (12, RES, RES, 3) and arr.dtype == np.uint8
    ck = torch.load(pipeline["ckpt"], map_location="cpu", weights_only=False)
    assert ck["step"] == 3 and ck["config"]["resolution"] == RES
    assert ck["meta"]["data"]["count"] == 12


def test_export_graph_and_agreement(pipeline):
    m = onnx.load(pipeline["f32"])
    onnx.checker.check_model(m, full_check=True)
    assert not any(i.data_location == onnx.TensorProto.EXTERNAL for i in m.graph.initializer)
    ops = [n.op_type for n in m.graph.node]
    model, _, _ = load_ema_model(pipeline["ckpt"])
    n_gn = sum(isinstance(x, torch.nn.GroupNorm) for x in model.modules())
    assert ops.count("GroupNormalization") == n_gn > 0
    assert "InstanceNormalization" not in ops
    assert m.opset_import[0].version == 21

    def dims(vi):
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]

    assert [i.name for i in m.graph.input] == ["x", "t"] and [o.name for o in m.graph.output] == ["eps"]
    assert dims(m.graph.input[0]) == [1, 3, RES, RES] and dims(m.graph.input[1]) == [1]
    assert dims(m.graph.output[0]) == [1, 3, RES, RES]
    pairs = eps_inputs(RES)
    got = ort_run(pipeline["f32"], pairs)
    with torch.no_grad():
        want = [model(torch.from_numpy(x), torch.from_numpy(t)).numpy() for x, t in pairs]
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want)) < 1e-4


def test_quantized_variants(pipeline):
    pairs = eps_inputs(RES, seed=1)
    ref = ort_run(pipeline["f32"], pairs)
    scale = float(np.mean([np.abs(r).mean() for r in ref]))
    f32_size = pipeline["f32"].stat().st_size
    for v, rel_tol, size_ratio in (("int8w", 0.03, 0.5), ("int8", 0.15, 0.5)):
        path = pipeline[v]
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        assert all(n.domain in ("", "ai.onnx") for n in m.graph.node), f"{v}: non-standard op"
        assert path.stat().st_size < size_ratio * f32_size
        got = ort_run(path, pairs)
        mean_err = float(np.mean([np.abs(a - b).mean() for a, b in zip(got, ref)]))
        assert np.isfinite(mean_err) and mean_err < rel_tol * scale, (v, mean_err, scale)
        ops = {n.op_type for n in m.graph.node}
        if v == "int8w":
            assert "DequantizeLinear" in ops and not ops & {"QLinearConv", "QuantizeLinear"}
            assert any(i.data_type == onnx.TensorProto.INT8 for i in m.graph.initializer)
        else:
            assert "QLinearConv" in ops
            # tract 0.23.9 turns DequantizeLinear -> Softmax -> QuantizeLinear into a table of 1.0s.
            prod = {o: n for n in m.graph.node for o in n.output}
            for n in m.graph.node:
                if n.op_type == "QuantizeLinear":
                    src = prod.get(n.input[0])
                    while src is not None and src.op_type in ("Transpose", "Reshape"):
                        src = prod.get(src.input[0])
                    assert src is None or src.op_type != "Softmax"
    report = json.loads((pipeline["models"] / "quant_report.json").read_text())
    assert report["int8w"]["file"] == "tiny-int8w.onnx" and report["int8"]["file"] == "tiny-int8.onnx"
    assert report["int8w"]["max_abs_err_vs_f32"] >= 0 and report["int8"]["mean_abs_err_vs_f32"] >= 0


def test_onnx_sampler_matches_torch(pipeline):
    from petal_train.evaluate import generate

    a, _ = generate(pipeline["f32"], pipeline["ckpt"], 3, 4, seed=5)
    b, _ = generate(pipeline["ckpt"], pipeline["ckpt"], 3, 4, seed=5)
    assert a.shape == b.shape == (3, RES, RES, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_feature_net_sane():
    from petal_train.evaluate import feature_net, features, frechet

    feature_net()  # raises RecipeError on missing/unexpected keys
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, RES, RES, 3), dtype=np.uint8)
    imgs[0] = 255
    f = features(imgs)
    assert f.shape == (4, 1280) and np.isfinite(f).all()
    assert np.abs(f[0] - f[1]).max() > 1e-2  # different images, different features
    assert np.allclose(features(imgs[:1]), f[:1], atol=1e-5)
    g = rng.standard_normal((50, 8))
    assert abs(frechet(g, g)) < 1e-6 and frechet(g, g + 1.0) == pytest.approx(8.0, rel=1e-6)


def test_eval_and_card(pipeline):
    models, fid = pipeline["models"], pipeline["root"] / "fid.json"
    for v in ("f32", "int8w", "int8"):
        run_ok(["eval", "--model", str(pipeline[v]), "--ckpt", str(pipeline["ckpt"]), "--data",
                str(pipeline["data"]), "--count", "4", "--steps", "3", "--json", str(fid)]
               + (["--floor"] if v == "f32" else []))
    scores = json.loads(fid.read_text())
    assert set(scores) >= {"f32", "int8w", "int8", "floor", "eval"}
    assert all(np.isfinite(scores[k]) and scores[k] >= -1e-6 for k in ("f32", "int8w", "int8", "floor"))

    run_ok(["card", "--dir", str(models), "--ckpt", str(pipeline["ckpt"]), "--name", "tiny", "--fid", str(fid)])
    card = json.loads((models / "card.json").read_text())
    validate_card(card)
    import jsonschema

    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(card)
    assert card["resolution"] == RES and card["inputs"]["x"]["shape"] == [1, 3, RES, RES]
    assert card["training"]["steps"] == 3 and card["training"]["images"] == 12
    assert set(card["variants"]) == {"f32", "int8w", "int8"}
    for v, entry in card["variants"].items():
        path = models / entry["file"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["bytes"] == path.stat().st_size
        assert entry["fid_l0"] == pytest.approx(scores[v])
    assert card["variants"]["f32"]["max_abs_err_vs_f32"] == 0.0
    assert card["variants"]["int8"]["max_abs_err_vs_f32"] > 0
    assert card["fid_l0_floor"] == pytest.approx(scores["floor"])
    assert card["eval"] == {"samples": 4, "sampler": "dpmpp-2m", "steps": 3}

    bad = dict(card, variants={"f32": dict(card["variants"]["f32"], sha256="xyz")})
    with pytest.raises(RecipeError, match="sha256"):
        validate_card(bad)


# ---------------------------------------------------------------- user-facing errors

def test_error_empty_image_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    run_error(["prepare", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "d")], capsys,
              "holds no images")


def test_error_unreadable_image(tmp_path, capsys):
    write_images(tmp_path / "imgs", n=2)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"this is not a png \x00\x01\x02" * 10)
    run_error(["prepare", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "d")], capsys,
              "cannot read image", "broken.png")


def test_error_bad_resolution(tmp_path, capsys):
    write_images(tmp_path / "imgs", n=2)
    run_error(["prepare", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "d"),
               "--resolution", "12"], capsys, "resolution 12")


def test_error_data_resolution_mismatch(pipeline, tmp_path, capsys):
    # the pipeline's data is 16 px; a 32 px model must refuse it and say how to fix it
    run_error(["train", "--data", str(pipeline["data"]), "--out", str(tmp_path / "r"), "--steps", "1",
               "--resolution", "32", *TINY], capsys, "16x16", "--resolution 32")


def test_error_missing_inputs(tmp_path, capsys):
    run_error(["export", "--ckpt", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")], capsys,
              "nope.pt", "does not exist")
    assert not (tmp_path / "m.onnx").exists()
    run_error(["quantize", "--model", str(tmp_path / "m.onnx"), "--ckpt", str(tmp_path / "nope.pt"),
               "--out-dir", str(tmp_path)], capsys, "does not exist")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    run_error(["export", "--ckpt", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "m.onnx")], capsys,
              "cannot be read")
    run_error(["card", "--dir", str(tmp_path / "nodir"), "--ckpt", str(tmp_path / "junk.pt"), "--name", "x"],
              capsys, "does not exist")
