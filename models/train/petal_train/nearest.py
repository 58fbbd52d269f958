"""`nearest`: how close samples come to the training images (memorisation).

For each sample, the RMS pixel distance (values in [0, 1], 32x32x3) to its nearest training
image, horizontal flips included because training flips. The yardstick is the same distance
between training images: each training image's nearest *other* training image (its own flip
excluded). A sample counts as a near-copy when it is closer to a training image than half the
median train-to-train nearest-neighbour distance, i.e. closer than all but the most similar
training images are to each other; the fraction of training images that meet the same bar is
reported beside it so the threshold can be judged."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from .data import load_dataset, make_grid
from .errors import RecipeError

NEAR_COPY_FRACTION_OF_MEDIAN = 0.5


def _flat(imgs: np.ndarray) -> np.ndarray:
    return imgs.reshape(imgs.shape[0], -1).astype(np.float64) / 255.0


def nearest_distances(a: np.ndarray, b: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance from each image of `a` to its nearest image of `b` or its mirror image, and the index."""
    fa = _flat(a)
    best_d = np.full(a.shape[0], np.inf)
    best_i = np.zeros(a.shape[0], dtype=np.int64)
    for mirrored in (False, True):
        fb = _flat(b[:, :, ::-1] if mirrored else b)
        d2 = (fa ** 2).sum(1)[:, None] + (fb ** 2).sum(1)[None, :] - 2 * fa @ fb.T
        d2 = np.maximum(d2, 0.0)
        if exclude_self:
            np.fill_diagonal(d2, np.inf)
        i = d2.argmin(1)
        d = np.sqrt(d2[np.arange(a.shape[0]), i] / fa.shape[1])
        better = d < best_d
        best_d[better], best_i[better] = d[better], i[better]
    return best_d, best_i


def load_samples(path: Path) -> np.ndarray:
    if not path.exists():
        raise RecipeError(f"samples {path} do not exist")
    x = np.load(path)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 1:
        raise RecipeError(f"{path} is not a float [N,3,H,W] sample array (shape {x.shape})")
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)


def nearest_report(samples_path: Path, data_dir: Path, out_png: Path | None, show: int = 32) -> dict:
    samples = load_samples(samples_path)
    data = load_dataset(data_dir, samples.shape[1])
    d_sample, i_sample = nearest_distances(samples, data)
    d_train, _ = nearest_distances(data, data, exclude_self=True)
    # the mirror image of a symmetric training image is not another image: drop self-flip matches
    threshold = NEAR_COPY_FRACTION_OF_MEDIAN * float(np.median(d_train))
    report = {
        "samples": int(samples.shape[0]),
        "training_images": int(data.shape[0]),
        "distance": "RMS pixel difference, values in [0,1], nearest of the image and its mirror image",
        "sample_nn_percentiles": {p: float(np.percentile(d_sample, p)) for p in (1, 5, 25, 50)},
        "train_nn_percentiles": {p: float(np.percentile(d_train, p)) for p in (1, 5, 25, 50)},
        "near_copy_threshold": threshold,
        "near_copy_rule": f"nearest-training-image distance < {NEAR_COPY_FRACTION_OF_MEDIAN} x median "
                          "train-to-train nearest-neighbour distance",
        "near_copy_fraction": float((d_sample < threshold).mean()),
        "train_fraction_under_threshold": float((d_train < threshold).mean()),
    }
    if out_png is not None:
        # First `show` samples in seed order (not cherry-picked), each beside its nearest training image,
        # then the 8 samples closest to any training image.
        order = list(range(min(show, samples.shape[0])))
        closest = [int(i) for i in np.argsort(d_sample)[:8]]
        tiles = []
        for k in order + closest:
            tiles += [samples[k], data[i_sample[k]]]
        grid = make_grid(np.stack(tiles), cols=8)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.Resampling.NEAREST).save(out_png)
        report["picture"] = (f"{out_png.name}: rows of (sample, nearest training image) pairs: the first "
                             f"{len(order)} samples, then the {len(closest)} closest to any training image")
    return report


def nearest(args) -> dict:
    rep = nearest_report(Path(args.samples), Path(args.data), Path(args.out) if args.out else None)
    print(f"nearest training image (RMS, [0,1]) for {rep['samples']} samples: median "
          f"{rep['sample_nn_percentiles'][50]:.4f}, 5th pct {rep['sample_nn_percentiles'][5]:.4f}; "
          f"train-to-train median {rep['train_nn_percentiles'][50]:.4f}")
    print(f"near-copies ({rep['near_copy_rule']} = {rep['near_copy_threshold']:.4f}): "
          f"{100 * rep['near_copy_fraction']:.1f}% of samples, vs {100 * rep['train_fraction_under_threshold']:.1f}% "
          "of training images")
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2) + "\n")
    return rep
