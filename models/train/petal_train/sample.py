from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import make_grid
from .schedule import sample_dpmpp_2m
from .train import load_ema_model, prediction_of


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(ckpt: Path, out: Path, count: int, steps: int, seed: int) -> None:
    model, sched, ck = load_ema_model(ckpt)
    r = model.cfg.resolution
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 3, r, r, generator=g)
    imgs = []
    for chunk in noise.split(64):
        imgs.append(to_uint8(sample_dpmpp_2m(model, sched, chunk, steps, prediction_of(ck))))
    grid = make_grid(np.concatenate(imgs))
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.Resampling.NEAREST).save(out)
    print(f"{count} samples from step {ck.get('step')} -> {out}")
