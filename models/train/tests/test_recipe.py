"""End-to-end checks of the training recipe on a tiny model (CPU, one thread, about a minute).

A 12-image synthetic folder -> prepare -> train 3 steps -> export -> quantize -> eval -> card, all
through the CLI's main(), plus the user-facing errors (exit status 2, one `error:` line).
"""
from __future__ import annotations

import hashlib
import json
import math
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
    out = sess.get_outputs()[0].name
    return [sess.run([out], {"x": x, "t": t})[0] for x, t in pairs]


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

    # v-prediction is the default; the output is named after what it predicts
    assert [i.name for i in m.graph.input] == ["x", "t"] and [o.name for o in m.graph.output] == ["v"]
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
    # int8 (per-tensor u8 activations) on this 3-step, nearly untrained tiny model measures 0.16-0.19
    # of the output scale depending on the calibration draw (the trained emoji32 model: 0.12, see its
    # quant_report.json), so its bound is loose; the correlation check below is what catches a broken
    # quantization (wrong scales, a Softmax folded into a table of ones), which decorrelates the output.
    for v, rel_tol, size_ratio in (("int8w", 0.03, 0.5), ("int8", 0.25, 0.5)):
        path = pipeline[v]
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        assert all(n.domain in ("", "ai.onnx") for n in m.graph.node), f"{v}: non-standard op"
        assert path.stat().st_size < size_ratio * f32_size
        got = ort_run(path, pairs)
        mean_err = float(np.mean([np.abs(a - b).mean() for a, b in zip(got, ref)]))
        assert np.isfinite(mean_err) and mean_err < rel_tol * scale, (v, mean_err, scale)
        corr = np.corrcoef(np.concatenate([g.ravel() for g in got]), np.concatenate([r.ravel() for r in ref]))
        assert corr[0, 1] > 0.95, (v, corr[0, 1])
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
    assert card["schema_version"] == 2 and card["prediction"] == "v" and card["output"]["name"] == "v"
    assert card["training"]["images_seen"] == 3 * 4
    assert "linear decay" in card["training"]["lr_schedule"]

    # the 1000-step DDPM reference row, batched in PyTorch
    ddpm = pipeline["root"] / "ddpm.json"
    run_ok(["eval", "--model", str(pipeline["ckpt"]), "--data", str(pipeline["data"]), "--count", "4",
            "--sampler", "ddpm", "--json", str(ddpm)])
    row = json.loads(ddpm.read_text())
    assert np.isfinite(row["ema"]) and row["eval"]["sampler"] == "ddpm"

    bad = dict(card, variants={"f32": dict(card["variants"]["f32"], sha256="xyz")})
    with pytest.raises(RecipeError, match="sha256"):
        validate_card(bad)


# ---------------------------------------------------------------- v2 recipe: parameterisation, schedules, resume

def test_v_target_recovers_x0_and_eps_at_every_noise_level():
    from petal_train.schedule import Schedule, predicted_x0
    from petal_train.train import target_for

    sched = Schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    for t in (0, 500, 990, 999):
        a = float(sched.alphas_cumprod[t])
        xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
        v = target_for("v", x0, noise, torch.tensor(a, dtype=torch.float64))
        assert torch.allclose(predicted_x0(v, xt, a, "v"), x0, atol=1e-12)
        # An error in v moves x0 by at most as much (sigma <= 1): no amplification at t = 999,
        # where an eps error would be multiplied by 1 / sqrt(alpha_bar) ~ 20,000.
        err = predicted_x0(v + 1e-3, xt, a, "v") - x0
        assert err.abs().max() <= 1e-3 + 1e-12
    assert torch.equal(target_for("epsilon", x0, noise, torch.tensor(0.5)), noise)


@pytest.mark.parametrize("prediction", ["v", "epsilon"])
def test_samplers_reach_the_data_law_with_an_exact_gaussian_denoiser(prediction):
    """Data N(mu, s^2) per value has a closed-form denoiser; DDPM (1000 steps) and DPM-Solver++ 2M
    (20 steps) driven by it must land on mean mu and variance s^2 (up to their known shrinkage)."""
    from petal_train.schedule import Schedule, sample_ddpm, sample_dpmpp_2m

    sched = Schedule("cosine", 1000)
    mu, s = 0.3, 0.5

    def exact(x, t):
        a = float(sched.alphas_cumprod[int(t[0])])
        var = a * s * s + 1 - a
        dev = x.double() - math.sqrt(a) * mu
        eps = math.sqrt(1 - a) * dev / var
        x0 = mu + math.sqrt(a) * s * s / var * dev
        return (math.sqrt(a) * eps - math.sqrt(1 - a) * x0) if prediction == "v" else eps

    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2000, 3, 2, 2, generator=g)
    for x in (sample_ddpm(exact, sched, noise, prediction, clip=False, generator=g),
              sample_dpmpp_2m(exact, sched, noise, 20, prediction, clip=False)):
        assert abs(float(x.mean()) - mu) < 0.01
        assert abs(float(x.std()) / s - 1) < 0.03


def test_min_snr_weights_are_the_same_x0_weighting_for_both_targets():
    from petal_train.schedule import Schedule
    from petal_train.train import loss_weights

    acp = Schedule("cosine", 1000).alphas_cumprod
    snr = acp / (1 - acp)
    w_eps, w_v = loss_weights(acp, "epsilon", 5.0), loss_weights(acp, "v", 5.0)
    # eps-MSE = SNR * x0-MSE and v-MSE = (SNR + 1) * x0-MSE: both weight the x0 error by min(SNR, 5)
    assert torch.allclose(w_eps * snr, snr.clamp(max=5.0))
    assert torch.allclose(w_v * (snr + 1), snr.clamp(max=5.0))
    assert torch.equal(loss_weights(acp, "v", 0.0), torch.ones_like(acp))


def test_lr_schedule_warms_up_holds_and_decays_to_zero():
    from petal_train.train import lr_at

    hp = {"lr": 1e-3, "warmup": 10, "steps": 100, "decay_frac": 0.2}
    assert lr_at(0, hp) == pytest.approx(1e-4) and lr_at(9, hp) == pytest.approx(1e-3)
    assert lr_at(50, hp) == lr_at(79, hp) == 1e-3
    assert lr_at(80, hp) == pytest.approx(1e-3) and lr_at(90, hp) == pytest.approx(5e-4)
    assert lr_at(99, hp) == pytest.approx(5e-5) and lr_at(100, hp) == 0.0


def test_ema_half_life_grows_with_images_seen():
    from petal_train.ema import ema_beta

    # half-life = ratio * images seen: after `half_life` images an old weight counts half
    for seen in (6400, 64000, 640000):
        beta = ema_beta(0.1, seen, 64, 0)
        assert beta ** (0.1 * seen / 64) == pytest.approx(0.5)
    assert ema_beta(0.1, 640000, 64, 6400) == pytest.approx(0.5 ** (64 / 6400))  # capped
    assert ema_beta(0.1, 0, 64, 0) == 0.0  # the first step copies the weights


def metrics_rows(run: Path) -> list[dict]:
    import csv

    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


TRAIN_SMALL = ["--warmup", "2", "--decay-frac", "0.5", "--log-every-step", "--ckpt-minutes", "100"]


def test_resume_continues_exactly(pipeline, tmp_path):
    """6 steps in one go == 3 steps, stop, resume for 3 (crossing the decay start at step 3):
    weights, every EMA, optimizer state and the loss of every step are bit-identical."""
    data = str(pipeline["data"])
    common = ["--data", data, "--steps", "6", "--resolution", str(RES), *TINY, *TRAIN_SMALL]
    run_ok(["train", "--out", str(tmp_path / "whole"), *common])
    run_ok(["train", "--out", str(tmp_path / "parts"), "--stop-at", "3", *common])
    assert torch.load(tmp_path / "parts" / "ckpt.pt", weights_only=False)["step"] == 3
    assert (tmp_path / "parts" / "ckpt-stable.pt").exists() is False  # the decay starts at step 3
    # On resume the checkpoint's schedule applies; the flags are not repeated.
    run_ok(["train", "--out", str(tmp_path / "parts"), "--resume", str(tmp_path / "parts" / "ckpt.pt"),
            "--data", data, "--threads", "1", "--log-every-step", "--ckpt-minutes", "100"])
    a = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "parts" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert set(a["emas"]) == set(b["emas"]) == {"0.1", "0.05", "0.2"}
    for r in a["emas"]:
        for k in a["emas"][r]:
            assert torch.equal(a["emas"][r][k], b["emas"][r][k]), (r, k)
    for sa, sb in zip(a["opt"]["state"].values(), b["opt"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    whole, parts = metrics_rows(tmp_path / "whole"), metrics_rows(tmp_path / "parts")
    assert [r["loss"] for r in whole] == [r["loss"] for r in parts]
    # lr 5e-4, linear decay from step 3 to 0 at step 6: the last step (index 5) ran at a third
    assert float(whole[-1]["lr"]) == pytest.approx(5e-4 / 3, rel=1e-3)
    # the decay phase began at step 3: the run that crossed it kept the pre-decay state
    assert torch.load(tmp_path / "whole" / "ckpt-stable.pt", weights_only=False)["step"] == 3


def test_packed_resume_checkpoint_continues_exactly(pipeline, tmp_path):
    """The committed form of a checkpoint (parts under a size limit) resumes like ckpt.pt itself."""
    data = str(pipeline["data"])
    common = ["--data", data, "--steps", "5", "--resolution", str(RES), *TINY, *TRAIN_SMALL]
    run_ok(["train", "--out", str(tmp_path / "whole"), *common])
    run_ok(["train", "--out", str(tmp_path / "half"), "--stop-at", "2", *common])
    packed = tmp_path / "packed"
    run_ok(["pack-resume", "--ckpt", str(tmp_path / "half" / "ckpt.pt"), "--out", str(packed), "--part-mb", "0.1"])
    parts = sorted(packed.glob("ckpt.part*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 0.1 * 1024 * 1024 for p in parts)
    run_ok(["train", "--out", str(tmp_path / "half"), "--resume", str(packed), "--data", data, "--threads", "1",
            "--log-every-step", "--ckpt-minutes", "100"])
    a = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "half" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 5
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # a damaged part is named, not loaded
    parts[0].write_bytes(b"x" + parts[0].read_bytes()[1:])
    with pytest.raises(RecipeError, match="damaged"):
        from petal_train.resume_pack import unpack_resume
        unpack_resume(packed)


def test_nearest_finds_copies_and_mirror_copies(pipeline, tmp_path):
    from petal_train.nearest import nearest_report

    data = np.load(pipeline["data"] / "images.npy")
    rng = np.random.default_rng(0)
    copies = np.stack([data[3], data[5][:, ::-1]])  # a copy and a mirrored copy
    fresh = rng.integers(0, 256, (2, RES, RES, 3)).astype(np.uint8)  # nothing like the data
    imgs = np.concatenate([copies, fresh]).astype(np.float32) / 127.5 - 1.0
    np.save(tmp_path / "s.npy", imgs.transpose(0, 3, 1, 2))
    rep = nearest_report(tmp_path / "s.npy", pipeline["data"], tmp_path / "nn.png")
    assert rep["samples"] == 4 and rep["near_copy_fraction"] == pytest.approx(0.5)
    assert rep["sample_nn_percentiles"][1] < 1e-3
    assert Image.open(tmp_path / "nn.png").size[0] > 0


def test_pick_ema_scores_each_length_and_writes_the_best(pipeline, tmp_path):
    ckpt = pipeline["root"] / "run" / "ckpt.pt"
    out = tmp_path / "ema.pt"
    run_ok(["pick-ema", "--ckpt", str(ckpt), "--out", str(out), "--data", str(pipeline["data"]),
            "--count", "4", "--steps", "2"])
    ck = torch.load(out, weights_only=False)
    scores = ck["ema_pick"]["scores"]
    assert set(scores) == {"0.1", "0.05", "0.2"} and all(np.isfinite(v) for v in scores.values())
    assert ck["ema_ratio"] == min(scores, key=scores.get)
    full = torch.load(ckpt, weights_only=False)
    assert all(torch.equal(ck["ema"][k], full["emas"][ck["ema_ratio"]][k]) for k in ck["ema"])
    assert "opt" not in ck and "model" not in ck  # an EMA-only file, small enough to commit


def test_torchrun_two_processes_match_one(pipeline, tmp_path):
    """DDP on 2 CPU processes (gloo): the same effective batch, a loss curve within noise of one
    process, and one checkpoint (rank 0) that a single process resumes."""
    import subprocess
    import sys

    steps = 40
    common = ["train", "--data", str(pipeline["data"]), "--steps", str(steps), "--resolution", str(RES),
              "--channels", "8", "--channel-mult", "1", "2", "--groups", "4", "--attn-resolutions", "16",
              "--res-blocks", "1", "--batch", "8", "--threads", "1", "--device", "cpu", "--lr", "2e-3",
              *TRAIN_SMALL]
    run_ok([*common, "--out", str(tmp_path / "one")])
    env = dict(__import__("os").environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "petal_train", *common, "--out", str(tmp_path / "two")],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "two" / "train.log").read_text()
    assert "2 process(es), batch 4 per process" in log
    ck = torch.load(tmp_path / "two" / "ckpt.pt", weights_only=False)
    assert ck["step"] == steps and ck["hparams"]["batch"] == 8 and len(ck["rng"]) == 2
    assert not any(k.startswith("module.") for k in ck["model"])  # plain weights, not the DDP wrapper
    one = np.array([float(r["loss"]) for r in metrics_rows(tmp_path / "one")])
    two = np.array([float(r["loss"]) for r in metrics_rows(tmp_path / "two")])
    assert len(one) == len(two) == steps
    # Same start (identical initial weights), then different batches: compare the second half's means
    # against the step-to-step noise of the single-process curve.
    late1, late2 = one[steps // 2:], two[steps // 2:]
    noise = np.sqrt(late1.var(ddof=1) / len(late1) + late2.var(ddof=1) / len(late2))
    assert abs(late1.mean() - late2.mean()) < 4 * noise + 1e-3, (late1.mean(), late2.mean(), noise)
    assert late2.mean() < two[:5].mean()  # it learned
    # rank 0's checkpoint continues on one process
    run_ok(["train", "--out", str(tmp_path / "two"), "--resume", str(tmp_path / "two" / "ckpt.pt"),
            "--data", str(pipeline["data"]), "--steps", str(steps + 2), "--threads", "1"])
    assert torch.load(tmp_path / "two" / "ckpt.pt", weights_only=False)["step"] == steps + 2


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
