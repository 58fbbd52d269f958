"""How well conditioned sampling from pure noise is, for an epsilon model and a v model.

    .venv/bin/python bench/v_conditioning.py OLD_MODEL_DIR NEW_MODEL_DIR [--count 64]

Each directory holds card.json and <name>-f32.onnx. The f32 file runs in onnxruntime (batch 1)
from the same noise for both models. Reported per model:
  * the clean-image estimate x0 the network implies at the first step (t = T-1, where
    sqrt(alpha_bar) is 4.9e-5 for the cosine schedule): its largest |value| and the share of
    values outside the image range [-1, 1];
  * the same for the final picture of DPM-Solver++ 2M, 20 trailing steps, with x0 clipping off.
An epsilon model divides its error by sqrt(alpha_bar) there; a v model does not divide at all.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models" / "train"))

from petal_train.schedule import Schedule, predicted_x0, sample_dpmpp_2m  # noqa: E402


class Onnx:
    def __init__(self, path: Path):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.out = self.sess.get_outputs()[0].name

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        outs = [self.sess.run([self.out], {"x": xi[None].numpy().astype(np.float32),
                                           "t": np.array([float(ti)], np.float32)})[0] for xi, ti in zip(x, t)]
        return torch.from_numpy(np.concatenate(outs))


def stats(x: torch.Tensor) -> dict:
    x = x.double()
    return {"max_abs": float(x.abs().max()), "outside_range": float((x.abs() > 1.0).double().mean())}


def measure(model_dir: Path, noise: torch.Tensor, steps: int) -> dict:
    card = json.loads((model_dir / "card.json").read_text())
    sched = Schedule(card["schedule"]["kind"], card["schedule"]["T"])
    net = Onnx(model_dir / card["variants"]["f32"]["file"])
    prediction = card.get("prediction", "epsilon")
    t_last = sched.T - 1
    a = float(sched.alphas_cumprod[t_last])
    with torch.no_grad():
        out = net(noise, torch.full((noise.shape[0],), float(t_last)))
        x0_first = predicted_x0(out.double(), noise.double(), a, prediction)
        final = sample_dpmpp_2m(net, sched, noise, steps, prediction, clip=False)
    return {"model": str(model_dir), "prediction": prediction, "sqrt_alpha_bar_first": a ** 0.5,
            "first_step_x0": stats(x0_first), "final_unclipped": stats(final)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for m in args.models:
        noise = torch.randn(args.count, 3, 32, 32, generator=torch.Generator().manual_seed(args.seed))
        r = measure(m, noise, args.steps)
        rows.append(r)
        print(f"{m} ({r['prediction']}): first-step x0 max |x0| {r['first_step_x0']['max_abs']:.3g}, "
              f"{100 * r['first_step_x0']['outside_range']:.1f}% outside [-1,1]; final picture, unclipped "
              f"DPM-Solver++ 2M {args.steps}: max |x| {r['final_unclipped']['max_abs']:.3g}, "
              f"{100 * r['final_unclipped']['outside_range']:.2f}% outside [-1,1]")
    if args.json:
        args.json.write_text(json.dumps({"count": args.count, "steps": args.steps, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
