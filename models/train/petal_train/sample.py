from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import make_grid
from .errors import RecipeError
from .guidance import Guided
from .schedule import sample_dpmpp_2m
from .train import load_ema_model, prediction_of


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(ckpt: Path, out: Path, count: int, steps: int, seed: int,
                guidance: float | None = None) -> None:
    """`guidance` (a themed network): one row of 8 per theme instead, at that guidance scale,
    every row from the same 8 noises."""
    model, sched, ck = load_ema_model(ckpt)
    r = model.cfg.resolution
    g = torch.Generator().manual_seed(seed)
    themes = None
    if guidance is not None:
        if model.cfg.num_classes <= 0:
            raise RecipeError("--guidance needs a network trained with --classes")
        k = model.cfg.num_classes
        count = 8 * k
        themes = torch.arange(k).repeat_interleave(8)
        noise = torch.randn(8, 3, r, r, generator=g).repeat(k, 1, 1, 1)
    else:
        noise = torch.randn(count, 3, r, r, generator=g)
    imgs = []
    for i, chunk in enumerate(noise.split(64)):
        net = model if themes is None else Guided(model, themes[i * 64:i * 64 + chunk.shape[0]], guidance)
        imgs.append(to_uint8(sample_dpmpp_2m(net, sched, chunk, steps, prediction_of(ck))))
    grid = make_grid(np.concatenate(imgs))
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.Resampling.NEAREST).save(out)
    rows = f", a row per theme ({', '.join(ck.get('classes') or [])}), guidance {guidance:g}" if themes is not None else ""
    print(f"{count} samples from step {ck.get('step')}{rows} -> {out}")
