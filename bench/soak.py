"""A long life in frame mode: `petal frame` paints PICTURES pictures with `--every 0`, and this
script samples the process from /proc while it runs: resident memory (VmRSS), open file
descriptors and threads.

    .venv/bin/python bench/soak.py [--petal target/release/petal] [--pictures 1000]

The frame runs as a kiosk would: a PNG display keeping its last frames, a morph frame and a
caption per picture, emerging frames, and a gallery with retention (it deletes as it goes).
The first WARM pictures are warm-up (allocator arenas, tract's plan, the first PNG encoders);
growth is measured from there to the end. Passes when RSS grows by at most 1 MiB, and the
most descriptors and threads seen in the last quarter of the run are no more than in the first
quarter after warm-up (a sample can catch a picture's file open mid-write, so the count moves by
one; a leak grows with every picture). Prints one JSON object; exits 1 on a failed bound.
`--rescore FILE` scores the samples a previous run saved with `--json`.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RSS_GROWTH_LIMIT_KB = 1024
GALLERY_KEEP = 20


def status(pid: int) -> dict | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None
    field = lambda name: int(re.search(rf"^{name}:\s+(\d+)", text, re.M).group(1))
    return {"rss_kb": field("VmRSS"), "threads": field("Threads"), "fds": fds}


def painted(gallery: Path) -> int:
    """Pictures painted so far: the newest gallery sequence number (names petal-nSEQ-...)."""
    seqs = [int(m.group(1)) for p in gallery.glob("petal-n*.png")
            if (m := re.match(r"petal-n(\d+)-", p.name))]
    return max(seqs, default=0)


def score(samples: list[dict], warm: int, wanted: int, final_pictures: int, kept: int, steps: int,
          wall: float) -> dict:
    after = [s for s in samples if s["pictures"] >= warm]
    if len(after) < 8:
        raise SystemExit("too few samples after warm-up: raise --pictures")
    first, last = after[0], after[-1]
    quarter = len(after) // 4
    head, tail = after[:quarter], after[-quarter:]
    most = lambda part, key: max(s[key] for s in part)
    result = {
        "pictures": final_pictures, "steps": steps, "wall_s": round(wall, 1),
        "warm_pictures": warm, "samples_after_warm": len(after),
        "rss_kb_at_warm": first["rss_kb"], "rss_kb_end": last["rss_kb"],
        "rss_kb_max_after_warm": most(after, "rss_kb"),
        "rss_growth_kb": last["rss_kb"] - first["rss_kb"],
        "fds_seen": sorted({s["fds"] for s in after}),
        "fds_max_first_quarter": most(head, "fds"), "fds_max_last_quarter": most(tail, "fds"),
        "threads_seen": sorted({s["threads"] for s in after}),
        "threads_max_first_quarter": most(head, "threads"),
        "threads_max_last_quarter": most(tail, "threads"),
        "gallery_files_at_end": kept,
    }
    result["passed"] = (result["rss_growth_kb"] <= RSS_GROWTH_LIMIT_KB
                        and result["fds_max_last_quarter"] <= result["fds_max_first_quarter"]
                        and result["threads_max_last_quarter"] <= result["threads_max_first_quarter"]
                        and final_pictures == wanted and kept <= GALLERY_KEEP)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--petal", default="target/release/petal")
    p.add_argument("--pictures", type=int, default=1000)
    p.add_argument("--warm", type=int, default=50)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--rescore", type=Path, default=None)
    args = p.parse_args()
    if args.rescore:
        saved = json.loads(args.rescore.read_text())
        r = saved["result"]
        result = score(saved["samples"], r["warm_pictures"], r["pictures"], r["pictures"],
                       r["gallery_files_at_end"], r["steps"], r["wall_s"])
        saved["result"] = result
        args.rescore.write_text(json.dumps(saved) + "\n")
        print(json.dumps(result, indent=1))
        sys.exit(0 if result["passed"] else 1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gallery = tmp / "gallery"
        cmd = [args.petal, "--threads", "1", "frame", "--every", "0", "--cycles", str(args.pictures),
               "--seed", "1", "--steps", str(args.steps), "--morph", "1", "--caption",
               "--display", f"png:{tmp / 'shown'}?keep=8", "--gallery", str(gallery), "--keep", str(GALLERY_KEEP)]
        log = open(tmp / "frame.log", "w")
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        samples = []
        while proc.poll() is None:
            s = status(proc.pid)
            if s is not None:
                s["pictures"] = painted(gallery)
                s["t"] = round(time.time() - t0, 1)
                samples.append(s)
            time.sleep(1.0)
        wall = time.time() - t0
        log.close()
        if proc.returncode != 0:
            sys.stderr.write((tmp / "frame.log").read_text()[-3000:])
            raise SystemExit(f"petal frame exited with {proc.returncode}")
        final_pictures = painted(gallery)
        kept = len(list(gallery.glob("*.png")))
    result = score(samples, args.warm, args.pictures, final_pictures, kept, args.steps, wall)
    print(json.dumps(result, indent=1))
    ok = result["passed"]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"result": result, "samples": samples}) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
