"""`train`: epsilon-prediction DDPM training with EMA, checkpoints, resume and clean stop."""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import load_dataset
from .errors import CheckpointError
from .log import setup
from .model import UNet, UNetConfig, count_macs, count_params
from .schedule import Schedule


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise CheckpointError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(ck, dict) or "ema" not in ck or "config" not in ck:
        raise CheckpointError(f"{path} is not a petal checkpoint (no 'ema'/'config' entries)")
    return ck


def load_ema_model(path: Path) -> tuple[UNet, Schedule, dict]:
    ck = load_checkpoint(path)
    model = UNet(UNetConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["ema"])
    model.eval()
    return model, Schedule.from_dict(ck["schedule"]), ck


def adjust_threads(path: Path) -> None:
    """A shared machine: writing a number into <run>/threads changes torch's thread count live
    (e.g. 1 while a compiler runs beside the trainer, 2 when it is done)."""
    try:
        n = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    if n > 0 and n != torch.get_num_threads():
        torch.set_num_threads(n)
        setup().info("threads -> %d", n)


def describe_compute(device: torch.device, amp: bool) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{what}{', bf16 autocast' if amp else ', fp32'}"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def train(args) -> Path:
    run = Path(args.out)
    run.mkdir(parents=True, exist_ok=True)
    log = setup(run / "train.log")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    cfg = UNetConfig(resolution=args.resolution, base_channels=args.channels,
                     channel_mult=tuple(args.channel_mult), num_res_blocks=args.res_blocks,
                     attn_resolutions=tuple(args.attn_resolutions), groups=args.groups, dropout=args.dropout)
    sched = Schedule(args.schedule, args.T)
    step, wall = 0, 0.0
    resumed = None
    if args.resume:
        resumed = load_checkpoint(Path(args.resume))
        cfg = UNetConfig.from_dict(resumed["config"])
        sched = Schedule.from_dict(resumed["schedule"])
        step, wall = int(resumed.get("step", 0)), float(resumed.get("wall_seconds", 0.0))
    data = load_dataset(Path(args.data), cfg.resolution)
    data_t = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()  # uint8 N,3,H,W

    model = UNet(cfg).to(device)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))
    if resumed is not None:
        # An EMA-only file (the one committed to git) restarts the optimizer from the EMA weights.
        model.load_state_dict(resumed.get("model", resumed["ema"]))
        ema.load_state_dict(resumed["ema"])
        if "opt" in resumed:
            opt.load_state_dict(resumed["opt"])
        log.info("resumed from %s at step %d (%.0f s trained)", args.resume, step, wall)
    for p in ema.parameters():
        p.requires_grad_(False)

    params, macs = count_params(model), count_macs(copy.deepcopy(model).cpu())
    model.train()
    log.info("model %s: %d params, %.1f M MACs/step; data %d images; device %s",
             cfg.to_dict(), params, macs / 1e6, data.shape[0], device)
    acp = sched.alphas_cumprod.float().to(device)
    snr = acp / (1 - acp)
    # Min-SNR-gamma weighting (Hang et al. 2023) for epsilon prediction: w = min(SNR, g) / SNR.
    # It stops the many low-noise timesteps from dominating the gradient and converges faster.
    loss_w = (snr.clamp(max=args.min_snr) / snr) if args.min_snr > 0 else torch.ones_like(snr)

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True
        log.info("signal %d: finishing this step, saving and stopping", signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    meta = {"data": json.loads((Path(args.data) / "manifest.json").read_text())
            if (Path(args.data) / "manifest.json").exists() else {},
            "params": params, "macs": macs, "batch": args.batch, "lr": args.lr,
            "min_snr": args.min_snr, "device": str(device),
            "compute": describe_compute(device, amp=args.bf16)}

    def save(final: bool = False) -> None:
        base = {"config": cfg.to_dict(), "schedule": sched.to_dict(), "step": step,
                "wall_seconds": wall, "meta": meta}
        atomic_save({**base, "model": model.state_dict(), "ema": ema.state_dict(),
                     "opt": opt.state_dict()}, run / "ckpt.pt")
        atomic_save({**base, "ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()}},
                    run / "ema.pt")
        log.info("checkpoint at step %d (%.0f s trained)%s", step, wall, " [final]" if final else "")

    amp = args.bf16 and device.type in ("cpu", "cuda")
    metrics = open(run / "metrics.csv", "a")
    if metrics.tell() == 0:
        metrics.write("step,loss,lr,seconds_per_step,wall_seconds\n")
    deadline = time.time() + args.minutes * 60 if args.minutes else math.inf
    last_ckpt, t_last = time.time(), time.time()
    total = args.steps
    bar = tqdm(total=total, initial=min(step, total), desc="train", unit="step", dynamic_ncols=True)
    ema_losses = None
    try:
        while step < total and time.time() < deadline and not stop["flag"]:
            t0 = time.time()
            idx = torch.from_numpy(rng.integers(0, data_t.shape[0], args.batch))
            x0 = data_t[idx].to(device).float() / 127.5 - 1.0
            flip = torch.rand(x0.shape[0], device=device) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
            t = torch.randint(0, sched.T, (x0.shape[0],), device=device)
            noise = torch.randn_like(x0)
            a = acp[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            lr = args.lr * min(1.0, (step + 1) / args.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                pred = model(xt, t.float())
            per = F.mse_loss(pred.float(), noise, reduction="none").mean(dim=(1, 2, 3))
            loss = (per * loss_w[t]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            # EMA with warmup so early checkpoints are usable; settles at args.ema.
            decay = min(args.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            step += 1
            dt = time.time() - t0
            wall += dt
            ema_losses = loss.item() if ema_losses is None else 0.98 * ema_losses + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{ema_losses:.4f}", s_step=f"{dt:.2f}")
            if step % 20 == 0:
                adjust_threads(run / "threads")
            if step % 50 == 0:
                metrics.write(f"{step},{ema_losses:.5f},{lr:.2e},{dt:.3f},{wall:.0f}\n")
                metrics.flush()
            if step % 500 == 0:
                log.info("step %d loss %.4f lr %.1e %.2f s/step", step, ema_losses, lr, dt)
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                save()
                last_ckpt = time.time()
        t_last = time.time()
    finally:
        bar.close()
        save(final=True)
        metrics.close()
        for s, h in old.items():
            signal.signal(s, h)
    del t_last
    return run / "ema.pt"
