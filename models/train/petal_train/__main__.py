"""One command per stage: prepare, train, sample, export, quantize, eval, card."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
RUNS = HERE / "runs"


def rgb(s: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in s.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
        raise argparse.ArgumentTypeError(f"background {s!r} is not R,G,B with each 0..255")
    return parts  # type: ignore[return-value]


def artwork_list(s: str) -> tuple[str, ...]:
    """Comma-separated names; `prepare` checks them against the artwork sets it knows."""
    return tuple(n.strip() for n in s.split(","))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m petal_train", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    q = sub.add_parser("prepare", help="build the training set")
    q.add_argument("--out", default=str(RUNS / "data"))
    q.add_argument("--resolution", type=int, default=32)
    q.add_argument("--images", default=None, help="a folder of your own images instead of the emoji set")
    q.add_argument("--cache", default=str(RUNS / "cache"))
    q.add_argument("--background", type=rgb, default=(255, 255, 255), help="R,G,B behind transparent pixels")
    q.add_argument("--keep-skin-tones", action="store_true")
    q.add_argument("--artwork", type=artwork_list, default=("google",),
                   help="the emoji artwork sets to train on, comma-separated: google (Noto, the "
                        "default), twitter (Twemoji); e.g. google,twitter for both")

    q = sub.add_parser("train", help="train (or resume) a UNet")
    q.add_argument("--data", default=str(RUNS / "data"))
    q.add_argument("--out", default=str(RUNS / "emoji32"))
    q.add_argument("--resume", default=None,
                   help="ckpt.pt, a pack-resume directory (exact continuation) or ema.pt to continue from")
    q.add_argument("--steps", type=int, default=None,
                   help="total steps; the learning rate decays over the last --decay-frac of them "
                        "(default 20000; on --resume, the checkpoint's unless given)")
    q.add_argument("--init-from", default=None,
                   help="start a new run from another run's EMA weights (ema.pt, ckpt.pt or a pack-resume "
                        "directory), e.g. to add --classes to a trained unconditional network")
    q.add_argument("--classes", action="store_true",
                   help="condition on the data's themes (emoji categories) for classifier-free guidance")
    q.add_argument("--cond-drop", type=float, default=0.1,
                   help="share of images shown without their theme when training with --classes")
    q.add_argument("--theme-lr-mult", type=float, default=25.0,
                   help="the theme embedding's learning rate as a multiple of --lr (it starts at zero)")
    q.add_argument("--minutes", type=float, default=0, help="stop after this many minutes (0: no limit)")
    q.add_argument("--stop-at", type=int, default=0,
                   help="save and stop at this step without changing the schedule (0: run to --steps)")
    q.add_argument("--batch", type=int, default=64, help="total over all processes")
    q.add_argument("--lr", type=float, default=5e-4)
    q.add_argument("--warmup", type=int, default=200)
    q.add_argument("--decay-frac", type=float, default=0.2,
                   help="share of --steps at the end over which the learning rate decays linearly to 0")
    q.add_argument("--prediction", choices=["v", "epsilon"], default="v")
    q.add_argument("--ema-ratios", type=float, nargs="+", default=[0.1, 0.05, 0.2],
                   help="EMA half-lives as shares of the images seen (EDM); the first is the default "
                        "until pick-ema measures them")
    q.add_argument("--ema-cap-images", type=float, default=0, help="upper bound on the EMA half-life (0: none)")
    q.add_argument("--min-snr", type=float, default=5.0)
    q.add_argument("--log-every-step", action="store_true", help="metrics.csv gets every step's raw loss")
    q.add_argument("--resolution", type=int, default=32)
    q.add_argument("--channels", type=int, default=32)
    q.add_argument("--channel-mult", type=int, nargs="+", default=[1, 2, 2, 2])
    q.add_argument("--res-blocks", type=int, nargs="+", default=[1, 2, 2, 2],
                   help="residual blocks per level: one number for all levels, or one per level")
    q.add_argument("--attn-resolutions", type=int, nargs="*", default=[8])
    q.add_argument("--groups", type=int, default=8)
    q.add_argument("--dropout", type=float, default=0.1)
    q.add_argument("--schedule", choices=["cosine", "linear"], default="cosine")
    q.add_argument("--T", type=int, default=1000)
    q.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    q.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    q.add_argument("--threads", type=int, default=0)
    q.add_argument("--ckpt-minutes", type=float, default=5.0)
    q.add_argument("--seed", type=int, default=0)

    q = sub.add_parser("sample", help="an image grid from a checkpoint (DPM-Solver++ 2M)")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ema.pt"))
    q.add_argument("--out", default="samples.png")
    q.add_argument("--count", type=int, default=64)
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--guidance", type=float, default=None,
                   help="a themed network: a row of 8 per theme, painted at this guidance scale")

    q = sub.add_parser("export", help="ONNX export with fixed input facts, verified against PyTorch")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ema.pt"))
    q.add_argument("--out", required=True, help="output .onnx path")
    q.add_argument("--opset", type=int, default=21)

    q = sub.add_parser("quantize", help="int8 variants of an exported model, checked against f32")
    q.add_argument("--model", required=True, help="the f32 .onnx")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ema.pt"), help="for calibration schedule")
    q.add_argument("--out-dir", required=True)
    q.add_argument("--calib", type=int, default=64, help="calibration samples across timesteps")

    q = sub.add_parser("eval", help="FID-L0 of a model variant against the training set")
    q.add_argument("--model", required=True,
                   help=".onnx file, ema.pt checkpoint, or a .npy of samples (petal generate --save-raw)")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ema.pt"), help="schedule source for .onnx")
    q.add_argument("--data", default=str(RUNS / "data"))
    q.add_argument("--count", type=int, default=953,
                   help="samples, scored against as many training images (default: half the emoji set)")
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--sampler", choices=["dpmpp-2m", "ddpm"], default="dpmpp-2m",
                   help="ddpm: ancestral over all T steps (ignores --steps)")
    q.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                   help="bf16 autocast for a .pt model (about 3x faster on a CPU with bf16)")
    q.add_argument("--guidance", type=float, default=None,
                   help="a .pt network trained with --classes: themes drawn as in the data, painted with "
                        "classifier-free guidance at this scale (1: theme only)")
    q.add_argument("--ref-seed", type=int, default=0,
                   help="which random training images the samples are scored against")
    q.add_argument("--floor", action="store_true",
                   help="also compute the data floor: two disjoint sets of --count training images")
    q.add_argument("--json", default=None, help="append the result to this JSON file")

    q = sub.add_parser("pick-ema", help="score each EMA length of a checkpoint; write the best as ema.pt")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ckpt.pt"))
    q.add_argument("--out", default=None, help="EMA-only file to write (default: ema.pt next to --ckpt)")
    q.add_argument("--data", default=str(RUNS / "data"))
    q.add_argument("--count", type=int, default=953)
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)

    q = sub.add_parser("nearest", help="memorisation: each sample's nearest training image")
    q.add_argument("--samples", required=True, help="float .npy [N,3,H,W] (petal generate --save-raw)")
    q.add_argument("--data", default=str(RUNS / "data"))
    q.add_argument("--out", default=None, help="picture of samples beside their nearest training images")
    q.add_argument("--json", default=None)

    q = sub.add_parser("pack-resume", help="a training checkpoint as parts small enough to commit")
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ckpt.pt"))
    q.add_argument("--out", required=True, help="directory for the parts and resume.json")
    q.add_argument("--part-mb", type=float, default=19.0)

    q = sub.add_parser("card", help="write card.json for a model directory")
    q.add_argument("--dir", required=True)
    q.add_argument("--ckpt", default=str(RUNS / "emoji32" / "ema.pt"))
    q.add_argument("--name", required=True)
    q.add_argument("--fid", default=None, help="JSON file written by eval --json")
    q.add_argument("--guidance", type=float, default=None,
                   help="a themed network: the guidance scale petal paints themed pictures with")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import RecipeError
    try:
        if args.cmd == "prepare":
            from .data import prepare
            m = prepare(Path(args.out), args.resolution, Path(args.images) if args.images else None,
                        Path(args.cache), args.background, args.keep_skin_tones, args.artwork)
            print(f"prepared {m['count']} images at {m['resolution']} px from {m['source']} -> {args.out}")
        elif args.cmd == "train":
            from .train import train
            args.steps_given = args.steps is not None
            if args.steps is None:
                args.steps = 20_000
            args.res_blocks = args.res_blocks[0] if len(args.res_blocks) == 1 else tuple(args.res_blocks)
            print(f"trained; EMA weights at {train(args)}")
        elif args.cmd == "sample":
            from .sample import sample_grid
            sample_grid(Path(args.ckpt), Path(args.out), args.count, args.steps, args.seed, args.guidance)
        elif args.cmd == "export":
            from .export import export
            export(Path(args.ckpt), Path(args.out), args.opset)
        elif args.cmd == "quantize":
            from .quantize import quantize
            quantize(Path(args.model), Path(args.ckpt), Path(args.out_dir), args.calib)
        elif args.cmd == "eval":
            from .evaluate import evaluate
            evaluate(args)
        elif args.cmd == "pick-ema":
            from .pick import pick_ema
            pick_ema(Path(args.ckpt), Path(args.out) if args.out else None, Path(args.data),
                     args.count, args.steps, args.seed, args.bf16)
        elif args.cmd == "nearest":
            from .nearest import nearest
            nearest(args)
        elif args.cmd == "pack-resume":
            from .resume_pack import pack_resume
            pack_resume(Path(args.ckpt), Path(args.out), args.part_mb)
        elif args.cmd == "card":
            from .card import write_card
            write_card(Path(args.dir), Path(args.ckpt), args.name, Path(args.fid) if args.fid else None,
                       args.guidance)
    except (RecipeError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
