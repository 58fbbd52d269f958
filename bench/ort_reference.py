"""The same model, sampler and steps as `petal bench`, in onnxruntime, timed side by side.

    .venv/bin/python bench/ort_reference.py [--model-dir models/emoji32] [--petal target/release/petal]

For each variant and thread count it prints per-step latency (median/min/max over --runs UNet calls
at timesteps spread over the schedule) and the time for one picture (DPM-Solver++ 2M, trailing
spacing, --steps steps), then runs `petal bench --json` with the same settings and prints both
tables. It also paints one picture from the same noise in both runtimes (`petal generate
--init-noise ... --save-raw ...`) and reports the largest difference, so the two implementations
check each other.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def alphas_cumprod(sched: dict) -> np.ndarray:
    T = sched["T"]
    if sched["kind"] == "cosine":
        f = lambda i: math.cos((i / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])
    else:
        betas = np.linspace(sched["beta_start"], sched["beta_end"], T)
    return np.cumprod(1.0 - betas)


def trailing(T: int, steps: int) -> list[int]:
    # diffusers' "trailing": round(arange(T, 0, -T/steps)) - 1
    return [int(round(T - i * T / steps)) - 1 for i in range(steps)]


def dpmpp_2m(net, ac: np.ndarray, x: np.ndarray, steps: int, prediction: str = "epsilon") -> np.ndarray:
    """DPM-Solver++(2M), x0 clipped to [-1, 1]; the last step goes to sigma = 0, i.e. returns x0
    (diffusers' final_sigmas_type="zero"). `net` predicts epsilon or v, as the card says."""
    ts = trailing(len(ac), steps)
    lam = lambda t: 0.5 * math.log(ac[t] / (1 - ac[t]))  # noqa: E731
    x = x.astype(np.float64)
    prev_x0 = prev_h = None
    for i, t in enumerate(ts):
        out = net(x.astype(np.float32), t).astype(np.float64)
        if prediction == "v":
            x0 = math.sqrt(ac[t]) * x - math.sqrt(1 - ac[t]) * out
        else:
            x0 = (x - math.sqrt(1 - ac[t]) * out) / math.sqrt(ac[t])
        x0 = np.clip(x0, -1, 1)
        if i + 1 == len(ts):
            return x0.astype(np.float32)
        s = ts[i + 1]
        h = lam(s) - lam(t)
        if prev_x0 is None:
            d = x0
        else:
            r = prev_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        x = math.sqrt((1 - ac[s]) / (1 - ac[t])) * x - math.sqrt(ac[s]) * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
    return x.astype(np.float32)


def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bench_one(path: Path, threads: int, ac: np.ndarray, runs: int, steps: int, prediction: str) -> dict:
    t0 = time.perf_counter()
    s = session(path, threads)
    load_ms = (time.perf_counter() - t0) * 1e3

    def eps(x, t):
        return s.run(None, {"x": x, "t": np.array([t], dtype=np.float32)})[0]

    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)
    T = len(ac)
    for _ in range(2):
        eps(x, T - 1)
    times = []
    for i in range(runs):
        t = T - 1 - (i * (T - 1)) // runs
        t0 = time.perf_counter()
        eps(x, t)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    t0 = time.perf_counter()
    dpmpp_2m(eps, ac, x, steps, prediction)
    image_ms = (time.perf_counter() - t0) * 1e3
    return {"runtime": "onnxruntime " + ort.__version__, "threads": threads, "load_ms": load_ms,
            "step_ms_median": times[len(times) // 2], "step_ms_min": times[0], "step_ms_max": times[-1],
            "image_ms": image_ms}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(root / "models" / "emoji32"))
    p.add_argument("--petal", default=str(root / "target" / "release" / "petal"))
    p.add_argument("--variants", default="f32,int8w,int8")
    p.add_argument("--thread-counts", default=f"1,{os.cpu_count()}")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", default=None, help="also write all rows to this file")
    a = p.parse_args()
    card = json.loads((Path(a.model_dir) / "card.json").read_text())
    ac = alphas_cumprod(card["schedule"])
    prediction = card.get("prediction", "epsilon")
    threads = sorted({int(t) for t in a.thread_counts.split(",")})
    rows = []
    for v in a.variants.split(","):
        path = Path(a.model_dir) / card["variants"][v]["file"]
        for t in threads:
            rows.append({"variant": v, **bench_one(path, t, ac, a.runs, a.steps, prediction)})
        petal = subprocess.run([a.petal, "--quiet", "bench", "--model", a.model_dir, "--variants", v,
                                "--thread-counts", ",".join(map(str, threads)), "--runs", str(a.runs),
                                "--steps", str(a.steps), "--json"], capture_output=True, text=True)
        if petal.returncode != 0:
            print(f"petal bench failed: {petal.stderr.strip()}", file=sys.stderr)
            return 1
        for r in json.loads(petal.stdout):
            rows.append({"runtime": "petal (tract)", **{k: r[k] for k in
                         ("variant", "threads", "load_ms", "step_ms_median", "step_ms_min", "step_ms_max",
                          "image_ms", "peak_rss_mib")},
                         # one picture per thread (generate --count N), as ms per picture
                         "parallel_ms_per_picture": 1e3 / r["pictures_per_s_picture_threads"]})

    print(f"{'runtime':22} {'variant':7} {'thr':>3} {'step med':>9} {'min':>7} {'max':>7} {'image ms':>9}")
    for r in rows:
        print(f"{r['runtime']:22} {r['variant']:7} {r['threads']:>3} {r['step_ms_median']:>9.2f} "
              f"{r['step_ms_min']:>7.2f} {r['step_ms_max']:>7.2f} {r['image_ms']:>9.1f}")

    # Side by side: ms per picture, petal's best policy (one picture with its steps on N threads,
    # or N pictures at once, one per thread) against onnxruntime's threads inside the step.
    print("\nms per picture, petal / onnxruntime (petal: best of a step on N threads and N pictures at once)")
    ort_rows = {(r["variant"], r["threads"]): r for r in rows if r["runtime"].startswith("onnxruntime")}
    best = {}
    for r in rows:
        if r["runtime"] != "petal (tract)":
            continue
        o = ort_rows[(r["variant"], r["threads"])]
        petal_ms = min(r["image_ms"], r["parallel_ms_per_picture"])
        best[(r["variant"], r["threads"])] = petal_ms
        print(f"  {r['variant']:6} {r['threads']} thr: petal {petal_ms:7.1f} (one {r['image_ms']:.1f}, "
              f"parallel {r['parallel_ms_per_picture']:.1f})  onnxruntime {o['image_ms']:7.1f}  "
              f"ratio {petal_ms / o['image_ms']:.2f}")
    (bv, bt), bms = min(best.items(), key=lambda kv: kv[1])
    ort_f32_1 = ort_rows.get(("f32", 1))
    ort_best = min(ort_rows.values(), key=lambda r: r["image_ms"])
    print(f"petal best: {bms:.1f} ms/picture ({bv}, {bt} threads)")
    if ort_f32_1:
        print(f"  vs onnxruntime f32, 1 thread: {ort_f32_1['image_ms']:.1f} ms ({bms / ort_f32_1['image_ms']:.2f}x)")
    print(f"  vs onnxruntime best ({ort_best['variant']}, {ort_best['threads']} threads): "
          f"{ort_best['image_ms']:.1f} ms ({bms / ort_best['image_ms']:.2f}x)")

    # Cross-check: one picture from the same noise in both runtimes (f32).
    with tempfile.TemporaryDirectory() as d:
        noise = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
        np.save(f"{d}/noise.npy", noise)
        subprocess.run([a.petal, "--quiet", "generate", "--model", a.model_dir, "--variant", "f32",
                        "--steps", str(a.steps), "--sampler", "dpmpp-2m", "--spacing", "trailing",
                        "--init-noise", f"{d}/noise.npy", "--save-raw", f"{d}/raw.npy",
                        "--out", f"{d}/p.png"], check=True)
        s = session(Path(a.model_dir) / card["variants"]["f32"]["file"], 1)
        ref = dpmpp_2m(lambda x, t: s.run(None, {"x": x, "t": np.array([t], np.float32)})[0], ac, noise,
                       a.steps, prediction)
        diff = float(np.abs(np.load(f"{d}/raw.npy") - ref).max())
        print(f"same noise, f32, dpmpp-2m x {a.steps}: max |petal - onnxruntime| = {diff:.2e}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "max_abs_diff_f32": diff}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
