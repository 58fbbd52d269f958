"""`train`: DDPM training (v- or epsilon-prediction) with growing EMAs, a warmup-stable-decay
learning rate, exact resume, clean stop, and multi-process data parallel under `torchrun`."""
from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .ema import EmaSet, ratio_key
from .errors import CheckpointError
from .log import setup
from .model import UNet, UNetConfig, count_macs, count_params
from .schedule import Schedule
from .data import load_labels

CKPT_VERSION = 2
# Hyperparameters that shape the trajectory: a resumed run takes them from the checkpoint so it
# continues exactly (only --steps may be raised, to extend a run before its decay phase).
TRAJECTORY_KEYS = ("batch", "lr", "warmup", "steps", "decay_frac", "min_snr", "ema_ratios",
                   "ema_cap_images", "seed", "prediction", "cond_drop", "theme_lr_mult")


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


def prediction_of(ck: dict) -> str:
    """Version-1 checkpoints predate the choice and are epsilon-prediction."""
    return ck.get("prediction", "epsilon")


# The ONNX output is named after what it predicts; the card repeats the name.
OUTPUT_NAMES = {"epsilon": "eps", "v": "v"}


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


def describe_compute(device: torch.device, amp: bool, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    procs = f", {world} processes (DDP)" if world > 1 else ""
    return f"{what}{procs}{', bf16 autocast' if amp else ', fp32'}"


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def lr_at(step: int, hp: dict) -> float:
    """Warmup, then constant, then a linear decay to zero over the last `decay_frac` of the steps.

    The constant phase means a run can be extended (resume from a checkpoint taken before the
    decay with a larger --steps) without changing anything it has already done."""
    base, warmup, total = hp["lr"], hp["warmup"], hp["steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    decay_start = int(total * (1.0 - hp["decay_frac"]))
    if step < decay_start:
        return base
    return base * max(0.0, (total - step) / max(1, total - decay_start))


def loss_weights(acp: torch.Tensor, prediction: str, min_snr: float) -> torch.Tensor:
    """Min-SNR-gamma weighting (Hang et al. 2023), expressed for the target being regressed.

    The weight on the x0 error is min(SNR, g); an epsilon loss is SNR times an x0 loss and a v loss
    is (SNR + 1) times one, so those are divided out."""
    snr = acp / (1 - acp)
    if min_snr <= 0:
        return torch.ones_like(snr)
    base = snr.clamp(max=min_snr)
    return base / (snr + 1) if prediction == "v" else base / snr


def target_for(prediction: str, x0: torch.Tensor, noise: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    if prediction == "v":
        # v = alpha * eps - sigma * x0 (Salimans & Ho 2022): bounded at every t, so the x0 it
        # implies, alpha * x_t - sigma * v, never divides by a vanishing alpha.
        return a.sqrt() * noise - (1 - a).sqrt() * x0
    return noise


class Distributed:
    """torchrun's environment, or a single process."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(device_name, local)
        if self.world > 1:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: all ranks must stop at the same step."""
        if self.world == 1:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj):
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def hyperparameters(args) -> dict:
    return {"batch": args.batch, "lr": args.lr, "warmup": args.warmup, "steps": args.steps,
            "decay_frac": args.decay_frac, "min_snr": args.min_snr,
            "ema_ratios": list(args.ema_ratios), "ema_cap_images": args.ema_cap_images,
            "seed": args.seed, "prediction": args.prediction, "cond_drop": args.cond_drop,
            "theme_lr_mult": args.theme_lr_mult}


def rng_state(rng: np.random.Generator, device: torch.device) -> dict:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(state: dict, rng: np.random.Generator, device: torch.device) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(args) -> Path:
    ddp = Distributed(args.device)
    device = ddp.device
    run = Path(args.out)
    if ddp.main:
        run.mkdir(parents=True, exist_ok=True)
    log = setup(run / "train.log" if ddp.main else None)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = UNetConfig(resolution=args.resolution, base_channels=args.channels,
                     channel_mult=tuple(args.channel_mult), num_res_blocks=args.res_blocks,
                     attn_resolutions=tuple(args.attn_resolutions), groups=args.groups, dropout=args.dropout)
    sched = Schedule(args.schedule, args.T)
    hp = hyperparameters(args)
    step, wall = 0, 0.0
    resumed = None
    if args.resume:
        resumed = load_any_checkpoint(Path(args.resume))
        cfg = UNetConfig.from_dict(resumed["config"])
        sched = Schedule.from_dict(resumed["schedule"])
        step, wall = int(resumed.get("step", 0)), float(resumed.get("wall_seconds", 0.0))
        if "hparams" in resumed:
            saved = resumed["hparams"]
            hp = {k: saved.get(k, hp[k]) for k in TRAJECTORY_KEYS}
            if "theme_lr_mult" not in saved:  # runs from before it had one rate for all
                hp["theme_lr_mult"] = 1.0
            if args.steps_given:
                hp["steps"] = args.steps
        else:  # an EMA-only v1 file: new optimizer, the prediction it was trained for
            hp["prediction"] = prediction_of(resumed)
    init = None
    if args.init_from:
        if resumed is not None:
            raise ValueError("--init-from starts a new run; it cannot be combined with --resume")
        init = load_any_checkpoint(Path(args.init_from))
        # The architecture, schedule and prediction are the source network's: its weights must fit.
        cfg = UNetConfig.from_dict(init["config"])
        sched = Schedule.from_dict(init["schedule"])
        hp["prediction"] = prediction_of(init)
    classes = resumed.get("classes") if resumed is not None else None
    if resumed is None and args.classes:
        classes = load_labels(Path(args.data))[1]
        cfg.num_classes = len(classes)
    if hp["batch"] % ddp.world:
        raise ValueError(f"--batch {hp['batch']} is not divisible by {ddp.world} processes")
    local_batch = hp["batch"] // ddp.world
    # Every rank builds the same initial network; the data and noise streams differ per rank.
    torch.manual_seed(hp["seed"])
    rng = np.random.default_rng([hp["seed"], ddp.rank])

    data = load_data(Path(args.data), cfg.resolution)
    data_t = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()  # uint8 N,3,H,W
    labels_t = None
    if cfg.num_classes > 0:
        labels, data_classes = load_labels(Path(args.data), data.shape[0])
        if classes is not None and data_classes != classes:
            raise ValueError(f"the data's themes {data_classes} are not the run's {classes}")
        labels_t = torch.from_numpy(labels)

    model = UNet(cfg).to(device)
    emas = EmaSet(model, hp["ema_ratios"], hp["ema_cap_images"])
    if init is not None:
        missing, unexpected = model.load_state_dict(init["ema"], strict=False)
        if unexpected or any(not k.startswith("class_emb.") for k in missing):
            raise CheckpointError(f"{args.init_from} does not fit this network: missing {missing}, "
                                  f"unexpected {unexpected}")
        emas = EmaSet(model, hp["ema_ratios"], hp["ema_cap_images"])
    opt = torch.optim.AdamW(param_groups(model, hp.get("theme_lr_mult", 1.0)), lr=hp["lr"], weight_decay=0.0,
                            betas=(0.9, 0.99))
    if resumed is not None:
        # An EMA-only file (the one committed to git) restarts the optimizer from the EMA weights.
        model.load_state_dict(resumed.get("model", resumed["ema"]))
        emas.load_state_dicts(resumed.get("emas", {k: resumed["ema"] for k in emas.models}))
        if "opt" in resumed:
            opt.load_state_dict(resumed["opt"])
        log.info("resumed from %s at step %d (%.0f s trained)", args.resume, step, wall)
    for m in emas.models.values():
        m.to(device)
    # Counting builds a network, which draws from the RNG: done before the training streams start.
    params, macs = count_params(model), count_macs(UNet(cfg))
    torch.manual_seed(hp["seed"] * 1000 + ddp.rank + 1)
    if resumed is not None and "rng" in resumed:
        states = resumed["rng"]
        if isinstance(states, list):
            # Written by a run of len(states) processes; resuming on fewer ranks continues rank 0's.
            restore_rng(states[ddp.rank if ddp.rank < len(states) else 0], rng, device)
        else:
            restore_rng(states, rng, device)
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model
    model.train()
    log.info("model %s: %d params, %.1f M MACs/step; data %d images; %s prediction; device %s; "
             "%d process(es), batch %d per process", cfg.to_dict(), params, macs / 1e6, data.shape[0],
             hp["prediction"], device, ddp.world, local_batch)
    acp = sched.alphas_cumprod.float().to(device)
    loss_w = loss_weights(acp, hp["prediction"], hp["min_snr"])

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True
        log.info("signal %d: finishing this step, saving and stopping", signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    amp = args.bf16 and device.type in ("cpu", "cuda")
    meta = {"data": json.loads((Path(args.data) / "manifest.json").read_text())
            if (Path(args.data) / "manifest.json").exists() else {},
            "params": params, "macs": macs, "batch": hp["batch"], "lr": hp["lr"],
            "min_snr": hp["min_snr"], "device": str(device),
            # A resumed run keeps the record of the run it was started from.
            "init_from": ({"path": str(args.init_from), "step": init.get("step"),
                           "wall_seconds": init.get("wall_seconds")} if init is not None
                          else ((resumed.get("meta") or {}).get("init_from") if resumed is not None else None)),
            "compute": describe_compute(device, amp, ddp.world)}

    def save(final: bool = False, name: str = "ckpt.pt") -> None:
        states = ddp.gather(rng_state(rng, device))  # every rank must join, even if only rank 0 writes
        if not ddp.main:
            return
        ema_states = emas.state_dicts()
        primary = ratio_key(hp["ema_ratios"][0])
        base = {"version": CKPT_VERSION, "config": cfg.to_dict(), "schedule": sched.to_dict(),
                "prediction": hp["prediction"], "step": step, "wall_seconds": wall, "meta": meta,
                "hparams": hp, "ema_ratio": primary, "classes": classes}
        atomic_save({**base, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                     "ema": ema_states[primary], "emas": ema_states, "opt": opt.state_dict(),
                     "rng": states}, run / name)
        if name == "ckpt.pt":
            atomic_save({**base, "ema": ema_states[primary]}, run / "ema.pt")
        log.info("checkpoint %s at step %d (%.0f s trained)%s", name, step, wall, " [final]" if final else "")

    metrics = open(run / "metrics.csv", "a") if ddp.main else None
    if metrics is not None and metrics.tell() == 0:
        metrics.write("step,loss,lr,seconds_per_step,wall_seconds\n")
    deadline = time.time() + args.minutes * 60 if args.minutes else math.inf
    last_ckpt = time.time()
    total = hp["steps"]
    stop_at = min(total, args.stop_at) if args.stop_at else total
    decay_start = int(total * (1.0 - hp["decay_frac"]))
    bar = tqdm(total=total, initial=min(step, total), desc="train", unit="step", dynamic_ncols=True,
               disable=not ddp.main)
    smooth = None
    try:
        while step < stop_at and not ddp.any(stop["flag"] or time.time() >= deadline):
            if step == decay_start:
                # The last state before the decay: `--resume` it with a larger --steps to extend the run.
                save(name="ckpt-stable.pt")
            t0 = time.time()
            idx = torch.from_numpy(rng.integers(0, data_t.shape[0], local_batch))
            x0 = data_t[idx].to(device).float() / 127.5 - 1.0
            flip = torch.rand(x0.shape[0], device=device) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
            t = torch.randint(0, sched.T, (x0.shape[0],), device=device)
            noise = torch.randn_like(x0)
            a = acp[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            target = target_for(hp["prediction"], x0, noise, a)
            y = None
            if labels_t is not None:
                y = labels_t[idx].to(device)
                y = torch.where(torch.rand(y.shape[0], device=device) < hp["cond_drop"],
                                torch.full_like(y, cfg.num_classes), y)
            lr = lr_at(step, hp)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                pred = net(xt, t.float(), y)
            per = F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2, 3))
            loss = (per * loss_w[t]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            emas.update(model, step * hp["batch"], hp["batch"])
            dt = time.time() - t0
            wall += dt
            loss_all = ddp.mean(loss.item())
            smooth = loss_all if smooth is None else 0.98 * smooth + 0.02 * loss_all
            bar.update(1)
            bar.set_postfix(loss=f"{smooth:.4f}", s_step=f"{dt:.2f}")
            if step % 20 == 0:
                adjust_threads(run / "threads")
            if metrics is not None and (step % 50 == 0 or args.log_every_step):
                metrics.write(f"{step},{loss_all if args.log_every_step else smooth:.6f},{lr:.3e},"
                              f"{dt:.3f},{wall:.0f}\n")
                metrics.flush()
            if step % 500 == 0:
                log.info("step %d loss %.4f lr %.2e %.2f s/step", step, smooth, lr, dt)
            if ddp.any(time.time() - last_ckpt > args.ckpt_minutes * 60):
                save()
                last_ckpt = time.time()
    finally:
        bar.close()
        save(final=True)
        if metrics is not None:
            metrics.close()
        for s, h in old.items():
            signal.signal(s, h)
        ddp.close()
    return run / "ema.pt"


def param_groups(model: UNet, theme_lr_mult: float) -> list[dict]:
    """The theme embedding learns at its own rate. It starts at zero, beside a timestep embedding
    of norm 1.4-7, and at the network's rate it had moved to norm 0.04 after 400 steps (run v10):
    the themes changed nothing the eye could see. Adam's steps do not grow with the gradient, so
    only a larger rate moves it faster."""
    theme = [p for n, p in model.named_parameters() if n.startswith("class_emb.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("class_emb.")]
    if not theme or theme_lr_mult == 1.0:
        return [{"params": list(model.parameters())}]
    return [{"params": rest}, {"params": theme, "lr_mult": theme_lr_mult}]


def load_any_checkpoint(path: Path) -> dict:
    """A checkpoint file, or a pack-resume directory unpacked to a temporary file."""
    from .resume_pack import unpack_resume

    source = unpack_resume(path)
    try:
        ck = load_checkpoint(source)
    finally:
        if source != path:
            source.unlink()
    return ck


def load_data(folder: Path, resolution: int) -> np.ndarray:
    from .data import load_dataset

    return load_dataset(folder, resolution)
