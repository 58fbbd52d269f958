"""Classifier-free guidance (Ho & Salimans, 2022) for a network trained with --classes.

The guided output is `u + s * (c - u)`: u is the output with no theme, c with the theme, s the
guidance scale (1: the theme alone, one network call; above 1 pushes each picture further toward
what its theme looks like, at some cost in variety). The combination is linear in the network's
output, so it is the same whether the network predicts v or epsilon, and the samplers need not
know about it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .errors import RecipeError


class Guided(nn.Module):
    def __init__(self, model: nn.Module, themes: torch.Tensor, scale: float):
        super().__init__()
        if model.cfg.num_classes <= 0:
            raise RecipeError("guidance needs a network trained with --classes")
        if scale < 0:
            raise RecipeError(f"guidance scale {scale} must be at least 0")
        self.model, self.themes, self.scale = model, themes.long(), float(scale)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y = self.themes
        cond = self.model(x, t, y)
        if self.scale == 1.0:
            return cond
        uncond = self.model(x, t, torch.full_like(y, self.model.cfg.num_classes))
        return uncond + self.scale * (cond - uncond)


def draw_themes(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """One theme per sample, drawn as often as the training set holds it, so a set of guided
    samples is scored against training images of the same theme mix."""
    return np.random.default_rng([seed, 7]).choice(labels, size=count, replace=True)
