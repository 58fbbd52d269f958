"""Noise schedules. The same formulas are implemented in Rust (src/schedule.rs); the model card
names the schedule so both sides derive identical betas."""
from __future__ import annotations

import math

import torch


def make_betas(kind: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Betas in float64. `linear` is Ho et al.; `cosine` is Nichol & Dhariwal (2021), clipped at 0.999."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008

        def f(i: float) -> float:
            return math.cos((i / T + s) / (1 + s) * math.pi / 2) ** 2

        return torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=torch.float64)
    raise ValueError(f"unknown schedule kind {kind!r} (expected 'linear' or 'cosine')")


class Schedule:
    def __init__(self, kind: str = "cosine", T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.kind, self.T, self.beta_start, self.beta_end = kind, T, beta_start, beta_end
        self.betas = make_betas(kind, T, beta_start, beta_end)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "T": self.T}
        if self.kind == "linear":
            d.update(beta_start=self.beta_start, beta_end=self.beta_end)
        return d

    @staticmethod
    def from_dict(d: dict) -> "Schedule":
        return Schedule(d["kind"], d["T"], d.get("beta_start", 1e-4), d.get("beta_end", 0.02))

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(t.device)[t]
        return a / (1 - a)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """'trailing' spacing: always starts at T-1, so the first step sees pure noise."""
    return [int(round(T - 1 - i * T / steps)) for i in range(steps)]


def predicted_x0(out: torch.Tensor, x: torch.Tensor, a_t: float, prediction: str) -> torch.Tensor:
    """The clean image implied by the network's output at noise level alpha_bar = a_t."""
    if prediction == "v":
        return math.sqrt(a_t) * x - math.sqrt(1 - a_t) * out
    if prediction == "epsilon":
        return (x - math.sqrt(1 - a_t) * out) / math.sqrt(a_t)
    raise ValueError(f"unknown prediction type {prediction!r} (expected 'v' or 'epsilon')")


@torch.no_grad()
def sample_dpmpp_2m(model, sched: Schedule, noise: torch.Tensor, steps: int = 20,
                    prediction: str = "epsilon", clip: bool = True) -> torch.Tensor:
    """DPM-Solver++(2M) in float64 bookkeeping; used by `sample`/`eval` on the PyTorch side."""
    ac = sched.alphas_cumprod
    ts = ddim_timesteps(sched.T, steps)
    x = noise.double()
    prev_x0, prev_h = None, None

    def lam(t):
        return 0.5 * math.log(ac[t] / (1 - ac[t]))

    for i, t in enumerate(ts):
        a_t = ac[t].item()
        tt = torch.full((x.shape[0],), float(t), device=x.device)
        x0 = predicted_x0(model(x.float(), tt).double(), x, a_t, prediction)
        if clip:
            x0 = x0.clamp(-1, 1)
        if i + 1 == len(ts):
            x = x0
            break
        s = ts[i + 1]
        a_s = ac[s].item()
        h = lam(s) - lam(t)
        if prev_x0 is None:
            d = x0
        else:
            r = prev_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        x = math.sqrt((1 - a_s) / (1 - a_t)) * x - math.sqrt(a_s) * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
    return x.float()


@torch.no_grad()
def sample_ddpm(model, sched: Schedule, noise: torch.Tensor, prediction: str = "epsilon",
                clip: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral DDPM over all T steps (Ho et al. eq. 7, posterior variance "fixed_small"), the
    reference the few-step solvers approximate. Float64 bookkeeping, like sample_dpmpp_2m."""
    ac = sched.alphas_cumprod
    x = noise.double()
    for t in range(sched.T - 1, -1, -1):
        a_t = ac[t].item()
        a_prev = ac[t - 1].item() if t > 0 else 1.0
        tt = torch.full((x.shape[0],), float(t), device=x.device)
        x0 = predicted_x0(model(x.float(), tt).double(), x, a_t, prediction)
        if clip:
            x0 = x0.clamp(-1, 1)
        beta = 1 - a_t / a_prev
        mean = (math.sqrt(a_prev) * beta / (1 - a_t)) * x0 + (math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t)) * x
        if t > 0:
            std = math.sqrt((1 - a_prev) / (1 - a_t) * beta)
            mean = mean + std * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        x = mean
    return x.float()
