"""Share of pictures that are Noto's blue-grey keycap/sign tiles, the shape the models over-paint.

    .venv/bin/python bench/keycap_tiles.py SAMPLES.npy [...]

A picture counts as a tile when at least 40% of its pixels are blue-grey: blue above red by
more than 10, green above red by more than 5, red 80-175, blue 150-230. Calibrated by eye on
docs/img/samples.png (it finds 11 of the 12 tiles there and no other picture); it finds 3.0%
of the 1,906 training images (51 of the 57 in symbols). Input: petal's --save-raw float
[N,3,H,W] in [-1,1], or uint8 [N,H,W,3] like the recipe's images.npy.
"""
import sys

import numpy as np


def tile_mask(x: np.ndarray, share: float = 0.40) -> np.ndarray:
    x = x.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    blue_grey = (b > r + 10) & (g > r + 5) & (r >= 80) & (r <= 175) & (b >= 150) & (b <= 230)
    return blue_grey.mean(axis=(1, 2)) >= share


def load_pictures(path: str) -> np.ndarray:
    x = np.load(path)
    if x.dtype != np.uint8:
        x = ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
    return x


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        tiles = tile_mask(load_pictures(path))
        print(f"{path}: {tiles.sum()}/{len(tiles)} = {tiles.mean():.3f} tiles")
