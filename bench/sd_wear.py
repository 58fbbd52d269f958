"""Bytes `petal frame` writes to storage per day at its defaults, for each display.

    .venv/bin/python bench/sd_wear.py [--petal target/release/petal] [--pictures 6]

Runs `petal frame` for a few pictures with each display (and once more with a gallery), with
`--every 0` instead of the default 10 minutes, and reads the kernel's count of bytes the process
wrote to files (`wchar` in /proc/PID/io, sampled until it exits; stdout/stderr go to /dev/null).
Bytes per picture x 144 pictures a day (one every 10 minutes) is the daily figure. Defaults
otherwise: DPM-Solver++ 2M 20 steps, emerging frames on fast displays.

The framebuffer is a plain file standing in for /dev/fb0 (800x480, 16 bpp): its writes are
reported separately, because on a board they go to video memory, not to the SD card.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

PICTURES_PER_DAY = 24 * 60 // 10


def written_bytes(cmd: list[str]) -> int:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = 0
    io = Path(f"/proc/{proc.pid}/io")
    while proc.poll() is None:
        try:
            for line in io.read_text().splitlines():
                if line.startswith("wchar:"):
                    last = int(line.split()[1])
        except OSError:
            pass
        time.sleep(0.005)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    return last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--petal", default="target/release/petal")
    p.add_argument("--pictures", type=int, default=6)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fb = tmp / "fb0"
        fb.write_bytes(bytes(800 * 480 * 2))
        (tmp / "png").mkdir()
        def frame(spec: str, gallery: Path | None = None) -> float:
            cmd = [args.petal, "--threads", "1", "frame", "--every", "0", "--cycles", str(args.pictures),
                   "--seed", "1", "--display", spec]
            if gallery is not None:
                cmd += ["--gallery", str(gallery)]
            return written_bytes(cmd) / args.pictures

        fb_spec = f"fb:{fb}?width=800&height=480&bpp=16"
        png = frame(f"png:{tmp / 'png'}")
        fb_only = frame(fb_spec)
        gallery = frame(fb_spec, tmp / "gallery") - fb_only
        rows = [
            {"display": "png (256x256; every emerging frame kept as a numbered PNG, and current.png)",
             "storage_bytes_per_picture": png},
            {"display": "fb (800x480, 16 bpp): an fb run writes only to the framebuffer device",
             "storage_bytes_per_picture": 0.0, "framebuffer_bytes_per_picture": fb_only},
            {"display": "gallery (--gallery DIR, any display)", "storage_bytes_per_picture": gallery},
        ]
        for r in rows:
            r["storage_bytes_per_day"] = r["storage_bytes_per_picture"] * PICTURES_PER_DAY
            extra = (f" (framebuffer: {r['framebuffer_bytes_per_picture'] / 1e3:.0f} kB per picture)"
                     if "framebuffer_bytes_per_picture" in r else "")
            print(f"{r['display']}: {r['storage_bytes_per_picture'] / 1e3:.1f} kB per picture, "
                  f"{r['storage_bytes_per_day'] / 1e6:.2f} MB per day{extra}")
    if args.json:
        args.json.write_text(json.dumps({"pictures": args.pictures, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
