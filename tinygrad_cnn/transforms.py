"""Image transforms for whole batches, as torchvision's but vectorised: each takes a numpy batch
(N, C, H, W) (``ToTensor`` also (N, H, W) uint8) and returns a new one, drawing one random choice
per image at once (no Python loop over the images). Random transforms draw from `generator`, or
from the global generator that ``tinygrad_cnn.manual_seed`` sets.

    augment = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip(), Normalize(0.1307, 0.3081)])
    x = augment(images)                      # in the training loop, a batch at a time
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

import numpy as np

from tinygrad_cnn import creation

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RandomAffine"]


def _batch(x: Any, name: str) -> np.ndarray:
    x = np.asarray(getattr(x, "data", x))
    if x.ndim != 4:
        raise ValueError(f"{name} takes a batch (N, C, H, W), got shape {x.shape}")
    return x


class Compose:
    """The transforms one after the other."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        if not all(callable(t) for t in transforms):
            raise TypeError("Compose takes a list of callables")
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> np.ndarray:
        for transform in self.transforms:
            x = transform(x)
        return x


class ToTensor:
    """uint8 images (N, H, W) or (N, C, H, W) to float32 in [0, 1], channels first, as
    torchvision's ToTensor (a float batch passes as it is)."""

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(getattr(x, "data", x))
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4:
            raise ValueError(f"ToTensor takes (N, H, W) or (N, C, H, W) images, got shape {x.shape}")
        return x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


class Normalize:
    """(x − mean) / std per channel."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean, self.std = np.atleast_1d(np.asarray(mean, np.float64)), np.atleast_1d(np.asarray(std, np.float64))
        if np.any(self.std <= 0) or self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or per-channel lists, std > 0; got {mean}, {std}")

    def __call__(self, x: Any) -> np.ndarray:
        x = _batch(x, "Normalize")
        if len(self.mean) not in (1, x.shape[1]) or len(self.std) not in (1, x.shape[1]):
            raise ValueError(f"Normalize: {len(self.mean)} means and {len(self.std)} stds for {x.shape[1]} channels")
        mean, std = (v.astype(x.dtype).reshape(1, -1, 1, 1) for v in (self.mean, self.std))
        return (x - mean) / std


class RandomCrop:
    """A random (h, w) window of each image, after `padding` zeros on each side."""

    def __init__(self, size: int | tuple[int, int], padding: int = 0,
                 generator: np.random.Generator | None = None) -> None:
        self.size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1 or not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"RandomCrop: size must be an int or (h, w) >= 1 and padding an int >= 0, "
                             f"got {size!r}, {padding!r}")
        self.padding, self.generator = int(padding), generator

    def __call__(self, x: Any) -> np.ndarray:
        x = _batch(x, "RandomCrop")
        p, (h, w) = self.padding, self.size
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        n, _, height, width = padded.shape
        if h > height or w > width:
            raise ValueError(f"RandomCrop: a ({h}, {w}) window does not fit images of {height}×{width} (padded)")
        rng = creation.generator(self.generator, "generator")
        top, left = rng.integers(0, height - h + 1, n), rng.integers(0, width - w + 1, n)
        rows = (top[:, None] + np.arange(h))[:, :, None]   # (N, h, 1)
        cols = (left[:, None] + np.arange(w))[:, None, :]  # (N, 1, w)
        return padded[np.arange(n)[:, None, None], :, rows, cols].transpose(0, 3, 1, 2)  # one gather


class RandomHorizontalFlip:
    """Each image mirrored left to right with probability p."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p!r}")
        self.p, self.generator = p, generator

    def __call__(self, x: Any) -> np.ndarray:
        x = _batch(x, "RandomHorizontalFlip")
        flip = creation.generator(self.generator, "generator").random(len(x)) < self.p
        return np.where(flip[:, None, None, None], x[..., ::-1], x)


class RandomAffine:
    """Each image rotated by an angle drawn from [−degrees, degrees], scaled by a factor drawn
    from scale = (a, b) (default: unscaled) and shifted by up to translate = (a, b) of its width
    and height, about its centre; bilinear, zeros outside (as torchvision's with
    InterpolationMode.BILINEAR and fill 0)."""

    def __init__(self, degrees: float, translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, generator: np.random.Generator | None = None) -> None:
        if not isinstance(degrees, numbers.Real) or degrees < 0:
            raise ValueError(f"RandomAffine: degrees must be a number >= 0, got {degrees!r}")
        if translate is not None and (len(translate) != 2 or not all(0 <= t <= 1 for t in translate)):
            raise ValueError(f"RandomAffine: translate must be a pair of fractions in [0, 1], got {translate!r}")
        if scale is not None and (len(scale) != 2 or not 0 < scale[0] <= scale[1]):
            raise ValueError(f"RandomAffine: scale must be a pair (a, b) with 0 < a <= b, got {scale!r}")
        self.degrees, self.translate, self.scale, self.generator = float(degrees), translate, scale, generator

    def __call__(self, x: Any) -> np.ndarray:
        x = _batch(x, "RandomAffine")
        n, _, height, width = x.shape
        rng = creation.generator(self.generator, "generator")
        angle = np.deg2rad(rng.uniform(-self.degrees, self.degrees, n))
        a, b = self.translate or (0.0, 0.0)
        dx = np.round(rng.uniform(-a * width, a * width, n))
        dy = np.round(rng.uniform(-b * height, b * height, n))
        factor = None if self.scale is None else rng.uniform(self.scale[0], self.scale[1], n)  # drawn last, as torchvision
        return affine(x, angle, dx, dy, factor)


def affine(x: np.ndarray, angle: np.ndarray, dx: np.ndarray, dy: np.ndarray,
           scale: np.ndarray | None = None) -> np.ndarray:
    """Each image i rotated by angle[i] radians and scaled by scale[i] (default 1) about its
    centre, then shifted by (dx[i], dy[i]) pixels (right, down): every output pixel reads its
    source point, bilinearly, zeros outside."""
    n, c, height, width = x.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    rows, cols = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx, indexing="ij")  # (H, W)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cols - dx[:, None, None], rows - dy[:, None, None]        # undo the shift, the scale, the rotation
    if scale is not None:
        u, v = u / scale[:, None, None], v / scale[:, None, None]
    src_x, src_y = cos * u - sin * v + cx, sin * u + cos * v + cy    # (N, H, W) source coordinates
    x0, y0 = np.floor(src_x).astype(np.intp), np.floor(src_y).astype(np.intp)
    fx, fy = (src_x - x0).astype(x.dtype), (src_y - y0).astype(x.dtype)
    out = np.zeros(x.shape, dtype=np.result_type(x.dtype, np.float32))
    batch = np.arange(n)[:, None, None]
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox  # a loop over the 4 bilinear corners, each a whole-batch gather
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        values = x[batch, :, np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]  # (N, H, W, C)
        out += (values * (weight * inside)[..., None]).transpose(0, 3, 1, 2)
    return out
