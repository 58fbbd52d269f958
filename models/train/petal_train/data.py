"""`prepare`: build the training set as one uint8 array [N, H, W, 3] plus a manifest."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .errors import DataError

EMOJI_VERSION = "16.0.0"
# The emoji-datasource artwork sets whose licences let petal train on them and ship the result,
# with that licence. All draw the same emoji list (the packages' emoji.json is one file), so the
# themes come out the same for each. Apple's artwork is not licensed for this.
ARTWORKS = {
    "google": "Apache-2.0 (Google Noto Emoji artwork, npm emoji-datasource-google@16.0.0)",
    "twitter": "CC-BY-4.0 (Twemoji artwork, npm emoji-datasource-twitter@16.0.0)",
}
DEFAULT_ARTWORK = ("google",)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
# Skin-tone modifiers U+1F3FB..U+1F3FF: variants of the same artwork, dropped so they don't dominate.
SKIN_TONE = re.compile(r"1f3f[b-f]")
# The emoji set's categories (emoji-datasource `category`), in a fixed order: the class index the
# network is conditioned on, and the `--theme` names petal exposes. "Component" (hair pieces; the
# skin-tone swatches are dropped above) is drawn like people and is filed with them.
THEMES = [("smileys", "Smileys & Emotion"), ("people", "People & Body"),
          ("animals", "Animals & Nature"), ("food", "Food & Drink"), ("travel", "Travel & Places"),
          ("activities", "Activities"), ("objects", "Objects"), ("symbols", "Symbols"),
          ("flags", "Flags")]
CATEGORY_ALIASES = {"Component": "People & Body"}


def emoji_categories(package_dir: Path) -> dict[str, str]:
    """Image file name -> category, for every emoji and skin variation the package lists."""
    path = package_dir / "emoji.json"
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the emoji categories from {path}: {e}") from e
    out = {}
    for e in entries:
        cat = CATEGORY_ALIASES.get(e["category"], e["category"])
        out[e["image"]] = cat
        for v in (e.get("skin_variations") or {}).values():
            out[v["image"]] = cat
    return out


def theme_labels(files: list[Path], categories: dict[str, str]) -> np.ndarray:
    index = {cat: i for i, (_, cat) in enumerate(THEMES)}
    labels = []
    for f in files:
        cat = categories.get(f.name)
        if cat not in index:
            raise DataError(f"{f.name} has no known emoji category ({cat!r}) in emoji.json")
        labels.append(index[cat])
    return np.asarray(labels, dtype=np.int16)


def folder_themes(root: Path, files: list[Path]) -> tuple[list[str], np.ndarray | None]:
    """A folder of your own images has themes when every image sits in a subfolder: the
    subfolder's name is its theme (e.g. `cats/`, `boats/`). Loose images mean no themes."""
    parts = [f.relative_to(root).parts for f in files]
    if any(len(p) < 2 for p in parts):
        return [], None
    # Theme names are what a user types after --theme: lowercase, words joined by "-".
    names = {p[0]: re.sub(r"[^a-z0-9_]+", "-", p[0].lower()).strip("-") for p in parts}
    themes = sorted(set(names.values()))
    for folder, name in names.items():
        if not name or name in ("any", "none"):
            raise DataError(f"theme folder {folder!r} cannot be a theme name ({name!r}): use letters or "
                            "digits, and not 'any' or 'none', which petal's --theme reserves")
    if len(themes) != len(names):
        raise DataError(f"theme folders {sorted(names)} give the same theme name twice ({themes})")
    index = {name: i for i, name in enumerate(themes)}
    return themes, np.asarray([index[names[p[0]]] for p in parts], dtype=np.int16)


def emoji_package(artwork: str) -> str:
    return f"emoji-datasource-{artwork}@{EMOJI_VERSION}"


def fetch_emoji(cache: Path, artwork: str = "google") -> Path:
    """Runs `npm pack` once per artwork set and unpacks its 64 px PNGs; returns their folder."""
    img_dir = cache / "package" / "img" / artwork / "64"
    if img_dir.is_dir() and any(img_dir.iterdir()) and (cache / "package" / "emoji.json").exists():
        return img_dir
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / (emoji_package(artwork).replace("@", "-") + ".tgz")  # npm pack's file name
    if not tgz.exists():
        if shutil.which("npm") is None:
            raise DataError("npm is not installed; install Node.js/npm or pass --images DIR")
        subprocess.run(["npm", "pack", emoji_package(artwork), "--pack-destination", str(cache)],
                       check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(tgz) as tf:
        members = [m for m in tf.getmembers()
                   if m.name.startswith(f"package/img/{artwork}/64/") or m.name == "package/emoji.json"]
        tf.extractall(cache, members=members, filter="data")
    if not img_dir.is_dir():
        raise DataError(f"{tgz} holds no package/img/{artwork}/64/ images")
    return img_dir


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a directory")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"image folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def load_image(path: Path, resolution: int, background: tuple[int, int, int]) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGBA")
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e
    bg = Image.new("RGBA", im.size, background + (255,))
    im = Image.alpha_composite(bg, im).convert("RGB")
    w, h = im.size
    side = min(w, h)
    im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    # Flat-colour artwork at integer factors: BOX (area average) has no ringing; LANCZOS otherwise.
    flt = Image.Resampling.BOX if side % resolution == 0 else Image.Resampling.LANCZOS
    im = im.resize((resolution, resolution), flt)
    return np.asarray(im, dtype=np.uint8)


def prepare(out: Path, resolution: int, images: Path | None, cache: Path,
            background: tuple[int, int, int] = (255, 255, 255), keep_skin_tones: bool = False,
            artworks: tuple[str, ...] = DEFAULT_ARTWORK) -> dict:
    if resolution < 8 or resolution % 8 != 0:
        raise DataError(f"resolution {resolution} must be a multiple of 8 and at least 8")
    artwork_counts = None
    if images is None:
        unknown = [a for a in artworks if a not in ARTWORKS]
        if not artworks or unknown or len(set(artworks)) != len(artworks):
            raise DataError(f"--artwork {','.join(artworks)!r}: name each of {', '.join(ARTWORKS)} "
                            "at most once, comma-separated")
        files, artwork_counts = [], {}
        for artwork in artworks:
            these = list_images(fetch_emoji(cache, artwork))
            if not keep_skin_tones:
                these = [f for f in these if not SKIN_TONE.search(f.stem)]
            files += these
            artwork_counts[artwork] = len(these)
        # one emoji.json serves every artwork set (fetch_emoji unpacks it beside them)
        categories = emoji_categories(cache / "package")
        source = " + ".join(emoji_package(a) for a in artworks)
        license_ = "; ".join(ARTWORKS[a] for a in artworks)
        themes = [name for name, _ in THEMES]
        labels = theme_labels(files, categories)
    else:
        files = list_images(images)
        source, license_ = str(images), "user-supplied"
        themes, labels = folder_themes(images, files)
    arr = np.stack([load_image(f, resolution, background) for f in tqdm(files, desc="prepare", unit="img")])
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"source": source, "license": license_, "count": int(arr.shape[0]),
                "resolution": resolution, "background": list(background)}
    if artwork_counts is not None:
        # images.npy holds the artwork sets one after another, in this order
        manifest["artwork_counts"] = artwork_counts
    if labels is not None:
        manifest["classes"] = themes
        manifest["class_counts"] = np.bincount(labels, minlength=len(themes)).tolist()
    # Atomic writes: a crash never leaves a truncated dataset behind.
    with tempfile.NamedTemporaryFile(dir=out, suffix=".npy", delete=False) as f:
        np.save(f, arr)
    os.replace(f.name, out / "images.npy")
    labels_path = out / "labels.npy"
    if labels is None:
        labels_path.unlink(missing_ok=True)
    else:
        with tempfile.NamedTemporaryFile(dir=out, suffix=".npy", delete=False) as f:
            np.save(f, labels)
        os.replace(f.name, labels_path)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    grid = make_grid(arr[:64])
    Image.fromarray(grid).save(out / "preview.png")
    return manifest


def load_dataset(data_dir: Path, resolution: int | None = None) -> np.ndarray:
    path = data_dir / "images.npy"
    if not path.exists():
        raise DataError(f"no prepared data at {path}; run `python -m petal_train prepare` first")
    arr = np.load(path)
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
        raise DataError(f"{path} is not a uint8 [N,H,W,3] array (got {arr.dtype} {arr.shape})")
    if resolution is not None and arr.shape[1:3] != (resolution, resolution):
        raise DataError(f"dataset {path} is {arr.shape[1]}x{arr.shape[2]} but the model wants "
                        f"{resolution}x{resolution}; re-run prepare with --resolution {resolution}")
    return arr


def load_labels(data_dir: Path, count: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The theme index of each training image and the theme names (class-conditional training);
    `count`, when given, is the number of prepared images they must match."""
    path, manifest = data_dir / "labels.npy", data_dir / "manifest.json"
    if not path.exists() or not manifest.exists():
        raise DataError(f"no theme labels at {path}; `prepare` writes them for the emoji set, and for "
                        "a folder of your own images when every image sits in a theme subfolder")
    labels = np.load(path)
    classes = json.loads(manifest.read_text()).get("classes")
    if count is None:
        count = labels.shape[0] if labels.ndim == 1 else -1
    if not classes or labels.shape != (count,) or labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"{path} does not match the prepared images ({count}) and themes {classes}")
    return labels.astype(np.int64), list(classes)


def make_grid(imgs: np.ndarray, cols: int = 8, pad: int = 2) -> np.ndarray:
    n, h, w, c = imgs.shape
    rows = (n + cols - 1) // cols
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, im in enumerate(imgs):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = im
    return grid
