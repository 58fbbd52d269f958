#!/usr/bin/env python3
"""How `petal frame` uses its threads, measured on the release binary with the shipped model.

1. Glide painting: `petal --threads N frame --morph 8 --every 0` on a png display; the time to
   paint one show (8 in-between pictures and the picture) is what petal logs per picture
   ("seed S in X s"). Median over the pictures after the first, for each N.
2. `Next` latency: a frame with a picture due every hour and the control page on loopback;
   after the first picture (and time for the next to be painted ahead), POST /api/next and time
   until the display directory holds the next picture.

Usage: bench/frame_painting.py [--petal target/release/petal] [--threads 1,2] [--out FILE.json]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request

SEED_LINE = re.compile(r"petal: seed (\d+) in ([0-9.]+) s")


def glide(petal, threads, pictures, morph):
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        run = subprocess.run(
            [petal, "--threads", str(threads), "frame", "--display", f"png:{d}?keep=2",
             "--every", "0", "--cycles", str(pictures), "--morph", str(morph), "--seed", "1",
             "--no-emerging"],
            capture_output=True, text=True, check=True,
        )
        wall = time.monotonic() - t0
    paint = [float(m.group(2)) for m in SEED_LINE.finditer(run.stderr)]
    if len(paint) != pictures:
        raise SystemExit(f"expected {pictures} pictures in the log:\n{run.stderr}")
    return {"threads": threads, "morph": morph, "pictures": pictures, "wall_s": round(wall, 3),
            "show_paint_s": paint, "median_show_paint_s": statistics.median(paint[1:])}


def pngs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".png"))


def wait_for(cond, what, limit=120):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > limit:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.002)


def next_latency(petal, port, tries):
    token = "bench-token-0123456789abcdef"
    out = []
    with tempfile.TemporaryDirectory() as d:
        shown = os.path.join(d, "shown")
        os.mkdir(shown)
        token_file = os.path.join(d, "token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        proc = subprocess.Popen(
            [petal, "--threads", "1", "frame", "--display", f"png:{shown}?keep=100", "--every",
             "1h", "--seed", "1", "--no-emerging", "--http", str(port), "--http-token-file",
             token_file],
            stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for(lambda: len(pngs(shown)) >= 1, "the first picture")
            for i in range(tries):
                time.sleep(1.0)  # the next picture is painted ahead meanwhile
                before = len(pngs(shown))
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/next", data=b"",
                                             method="POST", headers={"X-Petal-Token": token})
                t0 = time.monotonic()
                urllib.request.urlopen(req, timeout=10).read()
                wait_for(lambda: len(pngs(shown)) > before, "the next picture")
                out.append(round((time.monotonic() - t0) * 1000, 1))
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    paint = [float(m.group(2)) for m in SEED_LINE.finditer(err)]
    return {"next_ms": out, "median_next_ms": statistics.median(out),
            "paint_ms": [round(p * 1000) for p in paint]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--petal", default="target/release/petal")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--pictures", type=int, default=5)
    ap.add_argument("--morph", type=int, default=8)
    ap.add_argument("--port", type=int, default=18471)
    ap.add_argument("--tries", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    result = {"glide": [glide(a.petal, int(t), a.pictures, a.morph) for t in a.threads.split(",")]}
    result["next"] = next_latency(a.petal, a.port, a.tries)
    for g in result["glide"]:
        print(f"glide of {g['morph']} + picture on {g['threads']} thread(s): "
              f"{g['median_show_paint_s']:.3f} s to paint (median), run {g['wall_s']:.1f} s")
    n = result["next"]
    print(f"Next -> picture on the display: median {n['median_next_ms']} ms {n['next_ms']}; "
          f"painting a picture takes {n['paint_ms']} ms")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
