"""A Ho et al. (2020) style UNet, small enough for a Raspberry Pi.

GroupNorm + SiLU residual blocks, sinusoidal timestep embedding, single-head self-attention at
the 16x16 level and in the middle block. The timestep embedding is computed inside the network
from a float32 timestep index so that the exported ONNX graph takes `t` directly and the Rust
runtime never has to know the embedding formula.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class UNetConfig:
    resolution: int = 32
    in_channels: int = 3
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    # One count for every level, or one per level (low-resolution blocks are cheap in MACs).
    num_res_blocks: int | tuple[int, ...] = 2
    attn_resolutions: tuple[int, ...] = (16,)
    groups: int = 8
    dropout: float = 0.1
    # Themes the network can be conditioned on (0: unconditional). Index num_classes is "no theme",
    # which training shows for a share of the images so one network serves both (classifier-free
    # guidance, Ho & Salimans 2022).
    num_classes: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attn_resolutions"] = list(self.attn_resolutions)
        if not isinstance(self.num_res_blocks, int):
            d["num_res_blocks"] = list(self.num_res_blocks)
        return d

    @staticmethod
    def from_dict(d: dict) -> "UNetConfig":
        d = dict(d)
        d["channel_mult"] = tuple(d["channel_mult"])
        d["attn_resolutions"] = tuple(d["attn_resolutions"])
        if isinstance(d.get("num_res_blocks"), list):
            d["num_res_blocks"] = tuple(d["num_res_blocks"])
        return UNetConfig(**d)

    def blocks_at(self, level: int) -> int:
        if isinstance(self.num_res_blocks, int):
            return self.num_res_blocks
        return self.num_res_blocks[level]

    def validate(self) -> None:
        levels = len(self.channel_mult)
        if not isinstance(self.num_res_blocks, int) and len(self.num_res_blocks) != levels:
            raise ValueError(f"{len(self.num_res_blocks)} residual-block counts for {levels} levels")
        if self.resolution % (2 ** (levels - 1)) != 0:
            raise ValueError(
                f"resolution {self.resolution} must be divisible by {2 ** (levels - 1)} "
                f"for {levels} UNet levels"
            )
        for m in self.channel_mult:
            if (self.base_channels * m) % self.groups != 0:
                raise ValueError(
                    f"channels {self.base_channels * m} not divisible by {self.groups} GroupNorm groups"
                )


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a float timestep index, as in the Transformer/DDPM papers."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, ch * 3, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        self.scale = ch ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        # Explicit MatMul + Softmax (not SDPA) so the ONNX graph uses ops tract runs well.
        attn = torch.softmax((q.transpose(1, 2) * self.scale) @ k, dim=-1)  # b, hw, hw
        out = (v @ attn.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        ch = cfg.base_channels
        temb = ch * 4
        self.temb_dim = ch
        self.temb_mlp = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        if cfg.num_classes > 0:
            # Added to the timestep embedding. Zero at the start, so a network initialised from an
            # unconditional one starts out exactly as that network for every theme.
            self.class_emb = nn.Embedding(cfg.num_classes + 1, temb)
            nn.init.zeros_(self.class_emb.weight)

        self.down = nn.ModuleList()
        skip_chs = [ch]
        cur, res = ch, cfg.resolution
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.blocks_at(level)):
                blocks = nn.ModuleList([ResBlock(cur, ch * mult, temb, cfg.groups, cfg.dropout)])
                cur = ch * mult
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(cur, cfg.groups))
                self.down.append(blocks)
                skip_chs.append(cur)
            if level != len(cfg.channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                skip_chs.append(cur)
                res //= 2

        self.mid1 = ResBlock(cur, cur, temb, cfg.groups, cfg.dropout)
        self.mid_attn = AttnBlock(cur, cfg.groups)
        self.mid2 = ResBlock(cur, cur, temb, cfg.groups, cfg.dropout)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(cfg.blocks_at(level) + 1):
                blocks = nn.ModuleList(
                    [ResBlock(cur + skip_chs.pop(), ch * mult, temb, cfg.groups, cfg.dropout)]
                )
                cur = ch * mult
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(cur, cfg.groups))
                self.up.append(blocks)
            if level != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(cur, cur, 3, padding=1)]))
                res *= 2
        self.norm_out = nn.GroupNorm(cfg.groups, cur)
        self.conv_out = nn.Conv2d(cur, cfg.in_channels, 3, padding=1)

    def _run(self, blocks: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for m in blocks:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """y: theme index per image, num_classes (or None) for none; ignored by an unconditional net."""
        emb = self.temb_mlp(timestep_embedding(t, self.temb_dim))
        if self.cfg.num_classes > 0:
            if y is None:
                y = torch.full((x.shape[0],), self.cfg.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.class_emb(y.long())
        h = self.conv_in(x)
        skips = [h]
        for blocks in self.down:
            h = self._run(blocks, h, emb)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = torch.cat([h, skips.pop()], dim=1)
            h = self._run(blocks, h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: UNet) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (Conv, Linear and attention MatMuls)."""
    macs = 0
    hooks = []

    def conv_hook(m, _inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out.numel() * k

    def linear_hook(m, _inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    def attn_hook(m, inp, _out):
        nonlocal macs
        _, c, h, w = inp[0].shape
        macs += 2 * (h * w) ** 2 * c

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, AttnBlock):
            hooks.append(m.register_forward_hook(attn_hook))
    r = model.cfg.resolution
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, model.cfg.in_channels, r, r), torch.zeros(1))
    for h in hooks:
        h.remove()
    return macs
