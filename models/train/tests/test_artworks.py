"""`prepare --artwork`: more than one emoji artwork set, from packages shaped like emoji-datasource's."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from test_recipe import run_error, run_ok

# (image file, emoji-datasource category): one skin-tone variant, dropped by default
EMOJI = [("1f600.png", "Smileys & Emotion"), ("1f436.png", "Animals & Nature"),
         ("1f1eb-1f1f7.png", "Flags"), ("1f44d-1f3fb.png", "People & Body")]


def write_package(cache: Path, artwork: str, colour: tuple[int, int, int]) -> None:
    """An npm tarball like emoji-datasource-<artwork>: emoji.json and 64 px PNGs of one colour."""
    entries = [{"image": "1f44d.png", "category": "People & Body",
                "skin_variations": {"1F3FB": {"image": "1f44d-1f3fb.png"}}}]
    entries += [{"image": name, "category": cat} for name, cat in EMOJI[:3]]
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(cache / f"emoji-datasource-{artwork}-16.0.0.tgz", "w:gz") as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add("package/emoji.json", json.dumps(entries).encode())
        for name, _ in EMOJI:
            png = io.BytesIO()
            Image.new("RGBA", (64, 64), colour + (255,)).save(png, format="PNG")
            add(f"package/img/{artwork}/64/{name}", png.getvalue())


def test_two_artwork_sets_stack_with_their_themes(tmp_path):
    cache = tmp_path / "cache"
    write_package(cache, "google", (200, 10, 10))
    write_package(cache, "twitter", (10, 10, 200))
    data = tmp_path / "data"
    run_ok(["prepare", "--cache", str(cache), "--out", str(data), "--resolution", "8",
            "--artwork", "google,twitter"])
    images = np.load(data / "images.npy")
    manifest = json.loads((data / "manifest.json").read_text())
    assert images.shape == (6, 8, 8, 3)
    assert manifest["artwork_counts"] == {"google": 3, "twitter": 3}
    assert manifest["source"] == "emoji-datasource-google@16.0.0 + emoji-datasource-twitter@16.0.0"
    assert "Apache-2.0" in manifest["license"] and "CC-BY-4.0" in manifest["license"]
    # Google's pictures first, then Twitter's, each with its emoji's theme
    assert (images[:3, ..., 0] == 200).all() and (images[3:, ..., 2] == 200).all()
    labels = np.load(data / "labels.npy").tolist()
    themes = manifest["classes"]
    named = [themes[i] for i in labels]
    assert named[:3] == named[3:] and sorted(named[:3]) == ["animals", "flags", "smileys"]

    # the default stays the one set petal's model is trained on
    run_ok(["prepare", "--cache", str(cache), "--out", str(tmp_path / "d1"), "--resolution", "8"])
    assert json.loads((tmp_path / "d1" / "manifest.json").read_text())["artwork_counts"] == {"google": 3}


def test_unknown_or_repeated_artwork_is_refused(tmp_path, capsys):
    for bad in ("apple", "google,google"):
        run_error(["prepare", "--cache", str(tmp_path), "--out", str(tmp_path / "d"), "--artwork", bad],
                  capsys, "--artwork", repr(bad), "google, twitter")
        assert not (tmp_path / "d").exists()
