"""`card`: <dir>/card.json describing the exported variants (schema: models/card.schema.json).

Reads the checkpoint (architecture, schedule, training info), the variant files in <dir> (sha256,
size), <dir>/quant_report.json written by `quantize` (errors vs f32) and the JSON written by
`eval --json` (FID-L0 per variant, the data floor, eval settings). Validates against the schema
before writing, atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import RecipeError
from .model import UNet, UNetConfig, count_macs, count_params
from .schedule import Schedule
from .train import OUTPUT_NAMES, load_checkpoint, prediction_of

SCHEMA = Path(__file__).resolve().parent.parent.parent / "card.schema.json"
VARIANTS = ("f32", "int8w", "int8")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise RecipeError(f"{what} {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise RecipeError(f"{what} {path} is not a JSON object")
    return data


def validate_card(card: dict, schema_path: Path = SCHEMA) -> None:
    import jsonschema

    schema = _read_json(schema_path, "card schema")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(card), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(top level)"
        raise RecipeError(f"card does not match {schema_path.name} at {where}: {e.message}"
                          + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


def _onnx_step(path: Path) -> str | None:
    """The checkpoint step `export` recorded in the ONNX metadata, if any."""
    try:
        import onnx

        m = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise RecipeError(f"{path} is not a readable ONNX file: {e}") from e
    return {p.key: p.value for p in m.metadata_props}.get("petal.step")


def training_extras(ck: dict) -> dict:
    """What a version-2 checkpoint records about its run beyond the version-1 fields."""
    hp = ck.get("hparams")
    if not isinstance(hp, dict):
        return {}
    extras = {
        "images_seen": int(ck.get("step", 0)) * int(hp["batch"]),
        "lr_schedule": (f"linear warmup over {hp['warmup']} steps, constant, then linear decay to 0 over "
                        f"the last {hp['decay_frac'] * 100:g}% of {hp['steps']} steps"),
        "ema": {"kind": "EDM: half-life = ratio x images seen", "ratio": float(ck.get("ema_ratio", 0)),
                "cap_images": hp.get("ema_cap_images", 0), **(ck.get("ema_pick") or {})},
    }
    init = (ck.get("meta") or {}).get("init_from")
    if isinstance(init, dict):
        # A run started from another run's weights: its steps are on top of that run's.
        extras["init_from"] = {"steps": init.get("step"), "wall_seconds": init.get("wall_seconds")}
    if hp.get("theme_lr_mult") is not None and ck.get("classes"):
        extras["themes"] = {"cond_drop": hp.get("cond_drop"), "theme_lr_mult": hp.get("theme_lr_mult")}
    return extras


def build_card(dir: Path, ckpt: Path, name: str, fid_json: Path | None,
               guidance: float | None = None) -> dict:
    if not dir.is_dir():
        raise RecipeError(f"model directory {dir} does not exist")
    ck = load_checkpoint(ckpt)
    cfg = UNetConfig.from_dict(ck["config"])
    sched = Schedule.from_dict(ck["schedule"])
    r = cfg.resolution
    meta = ck.get("meta", {}) or {}
    data = meta.get("data", {}) or {}

    files = {v: dir / f"{name}-{v}.onnx" for v in VARIANTS}
    if not files["f32"].exists():
        raise RecipeError(f"{files['f32']} does not exist; run `export --out {files['f32']}` first")
    step = _onnx_step(files["f32"])
    if step is not None and step != str(ck.get("step")):
        raise RecipeError(f"{files['f32'].name} was exported from step {step} but {ckpt} is at step "
                          f"{ck.get('step')}; re-export (and re-quantize) or pass the matching --ckpt")

    quant = {}
    qpath = dir / "quant_report.json"
    if qpath.exists():
        quant = _read_json(qpath, "quantization report")
    fid = _read_json(fid_json, "FID json") if fid_json is not None else {}

    variants = {}
    for v, path in files.items():
        if not path.exists():
            continue
        q = quant.get(v, {}) if isinstance(quant.get(v), dict) else {}
        err = 0.0 if v == "f32" else q.get("max_abs_err_vs_f32")
        if v != "f32" and q.get("file") not in (None, path.name):
            err = None  # the report is about some other file
        fid_v = fid.get(v)
        variants[v] = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size,
                       "fid_l0": float(fid_v) if isinstance(fid_v, (int, float)) else None,
                       "max_abs_err_vs_f32": float(err) if isinstance(err, (int, float)) else None}

    model = UNet(cfg)
    params = count_params(model)
    macs = int(meta.get("macs") or count_macs(model))
    source = data.get("source", "unknown")
    ev = fid.get("eval")
    prediction = prediction_of(ck)
    card = {
        "schema_version": 2,
        "name": name,
        "description": (f"{r}x{r} RGB denoising diffusion model (DDPM, {prediction} prediction, "
                        f"{sched.kind} schedule, T={sched.T}), a {params / 1e6:.2f}M-parameter UNet "
                        f"trained on {source}."),
        "resolution": r,
        "channels": 3,
        "value_range": [-1.0, 1.0],
        "schedule": sched.to_dict(),
        "prediction": prediction,
        "inputs": {
            "x": {"name": "x", "shape": [1, 3, r, r], "dtype": "float32"},
            "t": {"name": "t", "shape": [1], "dtype": "float32", "units": "timestep index in 0..T-1"},
        },
        "output": {"name": OUTPUT_NAMES[prediction], "shape": [1, 3, r, r], "dtype": "float32"},
        "architecture": cfg.to_dict(),
        "params": params,
        "macs_per_step": macs,
        "training": {
            "data": source,
            "data_license": data.get("license", "unknown"),
            "images": data.get("count"),
            "steps": int(ck.get("step", 0)),
            "batch": meta.get("batch"),
            "wall_seconds": round(float(ck.get("wall_seconds", 0.0)), 1),
            "compute": meta.get("compute") or f"PyTorch on {meta.get('device', 'unknown device')}",
            "lr": meta.get("lr"),
            "min_snr": meta.get("min_snr"),
            **training_extras(ck),
        },
        "variants": variants,
        "fid_l0_floor": float(fid["floor"]) if isinstance(fid.get("floor"), (int, float)) else None,
        "eval": ({"samples": int(ev["samples"]), "sampler": str(ev.get("sampler", "dpmpp-2m")),
                  "steps": int(ev["steps"])} if isinstance(ev, dict) and "samples" in ev and "steps" in ev
                 else None),
    }
    if cfg.num_classes > 0:
        themes = ck.get("classes")
        if not themes or len(themes) != cfg.num_classes:
            raise RecipeError(f"{ckpt} is a themed network but records themes {themes!r}")
        if guidance is None:
            raise RecipeError(f"{ckpt} is a themed network: pass --guidance, the scale petal paints "
                              "themed pictures with")
        card["schema_version"] = 3
        card["inputs"]["theme"] = {"name": "theme", "shape": [1], "dtype": "float32",
                                   "units": f"theme index in 0..{len(themes) - 1}, {len(themes)} for none"}
        card["themes"] = list(themes)
        counts = data.get("class_counts")
        if isinstance(counts, list) and len(counts) == len(themes):
            # "any" draws themes as often as the training set holds them.
            card["theme_weights"] = [int(c) for c in counts]
        card["guidance_scale"] = float(guidance)
    elif guidance is not None:
        raise RecipeError(f"--guidance applies to a themed network; {ckpt} has no themes")
    return card


def write_card(dir: Path, ckpt: Path, name: str, fid_json: Path | None = None,
               guidance: float | None = None) -> dict:
    card = build_card(dir, ckpt, name, fid_json, guidance)
    validate_card(card)
    fd, tmp = tempfile.mkstemp(dir=dir, prefix="card.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(card, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dir / "card.json")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {dir / 'card.json'}: variants {', '.join(card['variants'])}; step {card['training']['steps']}")
    return card
