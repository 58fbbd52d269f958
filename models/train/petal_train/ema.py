"""EMA of the weights whose length grows with training (Karras et al. 2022, EDM).

A fixed decay such as 0.999 is a fixed half-life (~700 steps): too long early in a run, when the
average still carries the untrained network, and arbitrary later. EDM instead sets the half-life to
a fraction of all images seen so far, `half_life = min(cap, ratio * images_seen)`, so the average
always covers the same *share* of the run. Which share is best depends on the run, so several
ratios are tracked side by side (each costs one copy of a ~1 M-parameter network) and `pick-ema`
chooses among them by FID-L0 (see the recipe README).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def ratio_key(ratio: float) -> str:
    return f"{ratio:g}"


def ema_beta(ratio: float, images_seen: int, batch: int, cap_images: float) -> float:
    """Per-step decay for a half-life of min(cap, ratio * images_seen) images."""
    half_life = ratio * images_seen
    if cap_images > 0:
        half_life = min(cap_images, half_life)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (batch / half_life)


class EmaSet:
    """One EMA copy of `model` per ratio."""

    def __init__(self, model: nn.Module, ratios: list[float], cap_images: float = 0.0):
        if not ratios:
            raise ValueError("at least one EMA ratio is needed")
        self.ratios = list(ratios)
        self.cap_images = cap_images
        self.models = {}
        for r in self.ratios:
            m = copy.deepcopy(model).eval()
            for p in m.parameters():
                p.requires_grad_(False)
            self.models[ratio_key(r)] = m

    @torch.no_grad()
    def update(self, model: nn.Module, images_seen: int, batch: int) -> None:
        src = list(model.parameters())
        bufs = list(model.buffers())
        for r in self.ratios:
            m = self.models[ratio_key(r)]
            beta = ema_beta(r, images_seen, batch, self.cap_images)
            for pe, pm in zip(m.parameters(), src):
                pe.lerp_(pm.detach(), 1.0 - beta)
            for be, bm in zip(m.buffers(), bufs):
                be.copy_(bm)

    def state_dicts(self) -> dict[str, dict]:
        return {k: {n: v.detach().cpu().clone() for n, v in m.state_dict().items()}
                for k, m in self.models.items()}

    def load_state_dicts(self, states: dict[str, dict]) -> None:
        for k, m in self.models.items():
            if k in states:
                m.load_state_dict(states[k])
