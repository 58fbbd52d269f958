"""FID-L0 of each sampler/steps setting on the shipped model, to choose petal's defaults.

    pip install diffusers==0.42.1   # beside models/train/requirements.txt
    .venv/bin/python bench/sampler_quality.py --ckpt models/emoji32/ema.pt --count 256

The samplers are diffusers' schedulers configured exactly as petal's Rust samplers (which
tests/samplers.rs matches to diffusers step by step): trailing spacing, x0 clipped to [-1, 1],
DPM-Solver++ with lower_order_final and final_sigmas_type="zero". The EMA UNet runs batched in
PyTorch (the same weights as the f32 ONNX file), all settings start from the same noise, and the
score is FID-L0 against the training set (models/train/README.md: relative, not published FID).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models" / "train"))

from petal_train.data import load_dataset  # noqa: E402
from petal_train.evaluate import features, frechet, reference_features  # noqa: E402
from petal_train.train import load_ema_model  # noqa: E402


def scheduler(name: str, sched):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    betas = dict(num_train_timesteps=sched.T, trained_betas=sched.betas.float().numpy(),
                 timestep_spacing="trailing")
    if name == "ddim":
        return DDIMScheduler(**betas, clip_sample=True, set_alpha_to_one=True)
    order = {"dpmpp-2m": 2, "dpmpp-3m": 3}[name]
    return DPMSolverMultistepScheduler(**betas, algorithm_type="dpmsolver++", solver_order=order,
                                       thresholding=True, sample_max_value=1.0,
                                       lower_order_final=True, final_sigmas_type="zero")


@torch.no_grad()
def sample(model, sched, name: str, steps: int, noise: torch.Tensor, batch: int) -> np.ndarray:
    out = []
    for x in noise.split(batch):
        s = scheduler(name, sched)
        s.set_timesteps(steps)
        for t in s.timesteps:
            eps = model(x, torch.full((x.shape[0],), float(t)))
            x = s.step(eps, t, x).prev_sample
        out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=str(ROOT / "models" / "emoji32" / "ema.pt"))
    p.add_argument("--data", default=str(ROOT / "models" / "train" / "runs" / "data"))
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--settings", default="dpmpp-2m:10,dpmpp-2m:20,dpmpp-3m:20,ddim:20,ddim:50")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    model, sched, ck = load_ema_model(Path(a.ckpt))
    data = load_dataset(Path(a.data), model.cfg.resolution)
    ref = reference_features(Path(a.data), data)
    r = model.cfg.resolution
    noise = torch.randn(a.count, 3, r, r, generator=torch.Generator().manual_seed(0))
    rows = []
    for setting in a.settings.split(","):
        name, steps = setting.split(":")
        t0 = time.time()
        imgs = sample(model, sched, name, int(steps), noise, a.batch)
        fid = frechet(features(imgs), ref)
        rows.append({"sampler": name, "steps": int(steps), "fid_l0": fid, "count": a.count})
        print(f"{name:9} {steps:>4} steps  FID-L0 {fid:8.2f}   ({time.time() - t0:.0f} s)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"step": ck.get("step"), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
