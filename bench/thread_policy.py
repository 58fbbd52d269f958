"""Wall time of whole `petal generate` runs under each thread policy, as a user runs them.

    .venv/bin/python bench/thread_policy.py [--petal target/release/petal] [--repeats 3] [--json FILE]

Rows (default variant int8w, DPM-Solver++ 2M, 20 steps, native 32 px, median of --repeats runs,
each a fresh process: load, optimize, paint, write the PNG):
  --count 1 with the steps on 1 and on N threads (--step-threads; a frame paints this way),
  --count 8 on 1 thread and N pictures at once (--threads N), and
  both at petal's defaults (no thread flags).
It prints pictures per second per row, the speed-up of N pictures at once over 1 thread, and
how far the defaults are from the best row of the same count.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--petal", default=str(root / "target" / "release" / "petal"))
    p.add_argument("--cores", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    n = a.cores
    policies = [
        (1, "1 thread", ["--threads", "1"]),
        (1, f"steps on {n} threads", ["--threads", str(n), "--step-threads", str(n)]),
        (1, "defaults", []),
        (8, "1 thread", ["--threads", "1"]),
        (8, f"{n} pictures at once", ["--threads", str(n)]),
        (8, "defaults", []),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for count, name, flags in policies:
            cmd = [a.petal, "--quiet", *flags, "generate", "--count", str(count), "--seed", "1",
                   "--size", "32", "--out", f"{d}/p.png"]
            walls = [timed(cmd) for _ in range(a.repeats)]
            wall = statistics.median(walls)
            rows.append({"count": count, "policy": name, "flags": flags, "wall_s": wall,
                         "walls_s": walls, "pictures_per_s": count / wall})
            print(f"--count {count}  {name:22} {wall:6.2f} s  {count / wall:5.2f} pictures/s")
    by = {(r["count"], r["policy"]): r for r in rows}
    speedup = by[(8, f"{n} pictures at once")]["pictures_per_s"] / by[(8, "1 thread")]["pictures_per_s"]
    print(f"--count 8: {n} pictures at once / 1 thread = {speedup:.2f}x")
    summary = {"speedup_count8": speedup}
    for count in (1, 8):
        best = max(r["pictures_per_s"] for r in rows if r["count"] == count)
        gap = best / by[(count, "defaults")]["pictures_per_s"] - 1
        summary[f"defaults_gap_count{count}"] = gap
        print(f"--count {count}: defaults are {gap * 100:.1f}% slower than the best policy")
    if a.json:
        Path(a.json).write_text(json.dumps({"cores": n, "rows": rows, **summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
