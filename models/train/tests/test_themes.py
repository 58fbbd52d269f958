"""Themes: class-conditional training on the data's categories and classifier-free guidance."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from petal_train.guidance import Guided, draw_themes
from petal_train.model import UNet, UNetConfig
from test_recipe import RES, TINY, run_error, run_ok, write_images

SMALL = ["--threads", "1", "--ckpt-minutes", "100", "--warmup", "1", "--decay-frac", "0.5"]


@pytest.fixture(scope="module")
def themed(tmp_path_factory):
    """Images in two theme subfolders, prepared, and a tiny unconditional run to start from."""
    root = tmp_path_factory.mktemp("themes")
    write_images(root / "images" / "boats", n=6, seed=1)
    write_images(root / "images" / "cats", n=4, seed=2)
    data = root / "data"
    run_ok(["prepare", "--images", str(root / "images"), "--out", str(data), "--resolution", str(RES)])
    run_ok(["train", "--data", str(data), "--out", str(root / "plain"), "--steps", "2",
            "--resolution", str(RES), *TINY, *SMALL])
    return {"root": root, "data": data, "plain": root / "plain" / "ema.pt"}


def test_prepare_takes_themes_from_subfolders(themed, tmp_path):
    import json

    labels = np.load(themed["data"] / "labels.npy")
    manifest = json.loads((themed["data"] / "manifest.json").read_text())
    assert manifest["classes"] == ["boats", "cats"] and manifest["class_counts"] == [6, 4]
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 4
    # loose images: no themes, and no stale labels from an earlier prepare into the same folder
    write_images(tmp_path / "loose", n=3)
    run_ok(["prepare", "--images", str(tmp_path / "loose"), "--out", str(themed["data"].parent / "d2"),
            "--resolution", str(RES)])
    assert not (themed["data"].parent / "d2" / "labels.npy").exists()


def test_a_new_theme_embedding_starts_as_the_unconditional_network():
    torch.manual_seed(0)
    cfg = dict(resolution=16, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
               attn_resolutions=(16,), groups=4, dropout=0.0)
    plain = UNet(UNetConfig(**cfg)).eval()
    themed = UNet(UNetConfig(**cfg, num_classes=3)).eval()
    missing, unexpected = themed.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["class_emb.weight"] and unexpected == []
    x, t = torch.randn(4, 3, 16, 16), torch.tensor([0.0, 10.0, 500.0, 999.0])
    with torch.no_grad():
        ref = plain(x, t)
        for y in ([0, 1, 2, 3], None):
            out = themed(x, t, None if y is None else torch.tensor(y))
            assert torch.equal(out, ref)


def test_init_from_adds_themes_and_the_new_run_resumes_exactly(themed, tmp_path):
    data = str(themed["data"])
    common = ["--data", data, "--init-from", str(themed["plain"]), "--classes", "--steps", "4",
              "--resolution", str(RES), *TINY, *SMALL, "--log-every-step"]
    run_ok(["train", "--out", str(tmp_path / "whole"), *common])
    run_ok(["train", "--out", str(tmp_path / "parts"), "--stop-at", "2", *common])
    run_ok(["train", "--out", str(tmp_path / "parts"), "--resume", str(tmp_path / "parts" / "ckpt.pt"),
            "--data", data, "--threads", "1", "--ckpt-minutes", "100", "--log-every-step"])
    a = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "parts" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    assert a["classes"] == b["classes"] == ["boats", "cats"]
    assert a["config"]["num_classes"] == 2
    assert a["meta"]["init_from"]["step"] == b["meta"]["init_from"]["step"] == 2  # kept on resume
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the theme embedding was trained: it left zero
    assert a["model"]["class_emb.weight"].abs().max() > 0
    # every other weight started from the plain run's EMA
    src = torch.load(themed["plain"], weights_only=False)["ema"]
    assert set(src) == set(a["model"]) - {"class_emb.weight"}


def test_guidance_combines_the_two_outputs_linearly():
    torch.manual_seed(1)
    net = UNet(UNetConfig(resolution=16, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                          attn_resolutions=(16,), groups=4, dropout=0.0, num_classes=2)).eval()
    torch.nn.init.normal_(net.class_emb.weight)
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([100.0, 700.0]), torch.tensor([0, 1])
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t, torch.tensor([2, 2]))
        assert not torch.allclose(cond, uncond)
        assert torch.equal(Guided(net, y, 1.0)(x, t), cond)
        assert torch.allclose(Guided(net, y, 0.0)(x, t), uncond, atol=1e-6)
        assert torch.allclose(Guided(net, y, 2.5)(x, t), uncond + 2.5 * (cond - uncond), atol=1e-5)


def test_drawn_themes_follow_the_data_mix():
    labels = np.array([0] * 750 + [1] * 250)
    drawn = draw_themes(labels, 4000, seed=3)
    assert abs((drawn == 1).mean() - 0.25) < 0.03
    assert np.array_equal(drawn, draw_themes(labels, 4000, seed=3))


def test_eval_with_guidance(themed, tmp_path):
    run_ok(["train", "--data", str(themed["data"]), "--out", str(tmp_path / "c"), "--init-from",
            str(themed["plain"]), "--classes", "--steps", "2", "--resolution", str(RES), *TINY, *SMALL])
    out = tmp_path / "fid.json"
    run_ok(["eval", "--model", str(tmp_path / "c" / "ema.pt"), "--data", str(themed["data"]), "--count", "4",
            "--steps", "2", "--guidance", "2", "--json", str(out)])
    import json

    scores = json.loads(out.read_text())
    assert scores["ema-cfg2"] > 0 and scores["eval"]["guidance"] == 2.0


def test_error_themes_without_labels(tmp_path, capsys):
    write_images(tmp_path / "loose", n=4)
    run_ok(["prepare", "--images", str(tmp_path / "loose"), "--out", str(tmp_path / "d"), "--resolution", str(RES)])
    run_error(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--classes", "--steps", "1",
               "--resolution", str(RES), *TINY], capsys, "no theme labels", "subfolder")


def test_error_guidance_on_an_unconditional_network(themed, capsys):
    run_error(["eval", "--model", str(themed["plain"]), "--data", str(themed["data"]), "--count", "4",
               "--steps", "1", "--guidance", "2"], capsys, "trained with --classes")


@pytest.fixture(scope="module")
def themed_models(themed):
    """A themed network exported, quantized and carded, as ship.sh does it."""
    root = themed["root"]
    run_ok(["train", "--data", str(themed["data"]), "--out", str(root / "cond"), "--init-from",
            str(themed["plain"]), "--classes", "--steps", "3", "--resolution", str(RES), *TINY, *SMALL])
    ckpt, models = root / "cond" / "ema.pt", root / "models"
    f32 = models / "tiny-f32.onnx"
    run_ok(["export", "--ckpt", str(ckpt), "--out", str(f32)])
    run_ok(["quantize", "--model", str(f32), "--ckpt", str(ckpt), "--out-dir", str(models), "--calib", "8"])
    return {"ckpt": ckpt, "models": models, "f32": f32}


def test_themed_export_takes_a_theme_and_matches_torch(themed_models):
    import onnx
    import onnxruntime as ort

    from petal_train.train import load_ema_model

    m = onnx.load(themed_models["f32"])
    assert [i.name for i in m.graph.input] == ["x", "t", "theme"]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in m.graph.input)
    sess = ort.InferenceSession(str(themed_models["f32"]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, RES, RES)).astype(np.float32)
    outs = [sess.run(None, {"x": x, "t": np.array([400.0], np.float32),
                            "theme": np.array([float(k)], np.float32)})[0] for k in range(3)]
    model, _, _ = load_ema_model(themed_models["ckpt"])
    assert model.class_emb.weight.shape[0] == 3  # boats, cats, none
    assert not np.allclose(outs[0], outs[1])  # three training steps moved the themes apart
    with torch.no_grad():
        for k in range(3):
            want = model(torch.from_numpy(x), torch.tensor([400.0]), torch.tensor([k])).numpy()
            assert np.abs(outs[k] - want).max() < 1e-4
    for name in ("tiny-int8w.onnx", "tiny-int8.onnx"):
        q = onnx.load(themed_models["models"] / name)
        assert [i.name for i in q.graph.input] == ["x", "t", "theme"]


def test_themed_card(themed_models, capsys):
    import json

    from petal_train.card import SCHEMA, validate_card

    models, ckpt = themed_models["models"], themed_models["ckpt"]
    run_error(["card", "--dir", str(models), "--ckpt", str(ckpt), "--name", "tiny"], capsys, "--guidance")
    run_ok(["card", "--dir", str(models), "--ckpt", str(ckpt), "--name", "tiny", "--guidance", "2.5"])
    card = json.loads((models / "card.json").read_text())
    validate_card(card)
    assert card["schema_version"] == 3
    assert card["themes"] == ["boats", "cats"] and card["guidance_scale"] == 2.5
    assert card["theme_weights"] == [6, 4]  # "any" draws themes as the training set holds them
    assert card["inputs"]["theme"] == {"name": "theme", "shape": [1], "dtype": "float32",
                                       "units": "theme index in 0..1, 2 for none"}
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    for broken in ({k: v for k, v in card.items() if k != "guidance_scale"},
                   dict(card, schema_version=2),
                   dict(card, inputs={"x": card["inputs"]["x"], "t": card["inputs"]["t"]})):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema).validate(broken)


def test_theme_folder_names_become_names_petal_takes(tmp_path, capsys):
    import json

    write_images(tmp_path / "imgs" / "Big Boats", n=2, seed=1)
    write_images(tmp_path / "imgs" / "cats", n=2, seed=2)
    run_ok(["prepare", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "d"), "--resolution", str(RES)])
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["classes"] == ["big-boats", "cats"]
    write_images(tmp_path / "bad" / "any", n=2, seed=1)
    write_images(tmp_path / "bad" / "cats", n=2, seed=2)
    run_error(["prepare", "--images", str(tmp_path / "bad"), "--out", str(tmp_path / "d2"),
               "--resolution", str(RES)], capsys, "'any'", "reserves")
    assert not (tmp_path / "d2" / "images.npy").exists()


def test_the_theme_embedding_learns_at_its_own_rate():
    from petal_train.train import param_groups

    net = UNet(UNetConfig(resolution=16, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                          attn_resolutions=(16,), groups=4, dropout=0.0, num_classes=2))
    rest, theme = param_groups(net, 25.0)
    assert [p.shape for p in theme["params"]] == [net.class_emb.weight.shape] and theme["lr_mult"] == 25.0
    assert len(rest["params"]) == len(list(net.parameters())) - 1
    # one rate for all keeps the parameters in the network's order (an optimizer state saved that
    # way loads back)
    (only,) = param_groups(net, 1.0)
    assert [id(p) for p in only["params"]] == [id(p) for p in net.parameters()]
    # one Adam step at the same gradient moves the theme embedding 25x as far as an equal weight
    torch.manual_seed(0)
    plain = next(p for n, p in net.named_parameters() if n == "conv_in.bias")
    opt = torch.optim.AdamW(param_groups(net, 25.0), lr=1e-3, weight_decay=0.0)
    for g in opt.param_groups:
        g["lr"] = 1e-3 * g.get("lr_mult", 1.0)
    before_t, before_p = net.class_emb.weight.detach().clone(), plain.detach().clone()
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    moved_t = (net.class_emb.weight - before_t).abs().max().item()
    moved_p = (plain - before_p).abs().max().item()
    assert moved_t == pytest.approx(25 * moved_p, rel=1e-3)
