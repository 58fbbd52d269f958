"""A resume checkpoint that fits the repository's 20 MB-per-file limit.

The full training state (weights, optimizer moments, every EMA, RNG streams) of a 2 M-parameter
network is ~50 MB. `pack-resume` writes it as numbered parts of at most `--part-mb` each plus a
manifest with their sha256, and `train --resume DIR` reads the directory back bit for bit, so a
run continues exactly on a fresh machine from what is in git."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError
from .quantize import _atomic_write as atomic_write
from .train import load_checkpoint

MANIFEST = "resume.json"


def pack_resume(ckpt: Path, out_dir: Path, part_mb: float = 19.0) -> list[Path]:
    ck = load_checkpoint(ckpt)
    if "opt" not in ck or "rng" not in ck:
        raise CheckpointError(f"{ckpt} is not a full training checkpoint (no optimizer/RNG state); "
                              "pack the run's ckpt.pt")
    buf = io.BytesIO()
    torch.save(ck, buf)
    data = buf.getvalue()
    size = int(part_mb * 1024 * 1024)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("ckpt.part*"):
        old.unlink()
    parts = []
    for i in range(0, len(data), size):
        p = out_dir / f"ckpt.part{i // size:02d}"
        atomic_write(data[i:i + size], p)
        parts.append(p)
    manifest = {"step": ck["step"], "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "parts": [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in parts]}
    atomic_write((json.dumps(manifest, indent=2) + "\n").encode(), out_dir / MANIFEST)
    print(f"packed {ckpt} (step {ck['step']}, {len(data)} bytes) into {len(parts)} parts in {out_dir}")
    return parts


def unpack_resume(path: Path) -> Path:
    """A packed directory (or its manifest) -> a temporary whole checkpoint file; other paths as is."""
    manifest_path = path / MANIFEST if path.is_dir() else path
    if manifest_path.name != MANIFEST or not manifest_path.exists():
        return path
    try:
        manifest = json.loads(manifest_path.read_text())
        names = [p["file"] for p in manifest["parts"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{manifest_path} is not a resume manifest: {e}") from e
    chunks = []
    for part, name in zip(manifest["parts"], names):
        p = manifest_path.parent / name
        if not p.exists():
            raise CheckpointError(f"resume part {p} is missing")
        b = p.read_bytes()
        if hashlib.sha256(b).hexdigest() != part["sha256"]:
            raise CheckpointError(f"resume part {p} is damaged (sha256 differs from {manifest_path.name})")
        chunks.append(b)
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise CheckpointError(f"the parts in {manifest_path.parent} do not add up to the packed checkpoint")
    fd, tmp = tempfile.mkstemp(prefix="petal-resume-", suffix=".pt")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(tmp)
