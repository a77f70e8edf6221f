"""Resizing, as ``torch.nn.functional.interpolate`` and ``nn.Upsample``: nearest and bilinear,
composed from the primitives (an integer nearest factor is a broadcast; everything else reads
each output's source rows and columns by index), so each differentiates twice."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import tensor_ops
from tinygrad_cnn.functional import tensor_argument
from tinygrad_cnn.tensor import Tensor

MODES = ("nearest", "bilinear")


def interpolate(input: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",  # noqa: A002
                align_corners: bool | None = None) -> Tensor:
    """x (N, C, H, W) resized to `size` (an int or (h, w)) or by `scale_factor` (a number or a
    pair; the output is ⌊H·s⌋ × ⌊W·s⌋), as PyTorch's:
    - "nearest": output row i reads row ⌊i·r⌋, r = 1/s when scale_factor is given, else H/h;
    - "bilinear": output row i reads the rows around src = (i + ½)·r − ½ (clipped at 0), or with
      `align_corners` i·(H − 1)/(h − 1), weighted by their distances; columns alike. Each output
      reads only its two neighbours, so a NaN or ∞ stays where it is."""
    x = tensor_argument(input, "input", "interpolate")
    if x.ndim != 4:
        raise ValueError(f"interpolate: input must be (N, C, H, W), got shape {x.shape}")
    if mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {MODES}, got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners applies to mode='bilinear' only")
    (height, width), sizes, scales = x.shape[2:], _pair(size, "size", int), _pair(scale_factor, "scale_factor", float)
    if (sizes is None) == (scales is None):
        raise ValueError(f"interpolate: give either size or scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if sizes is None:
        sizes = (math.floor(height * scales[0]), math.floor(width * scales[1]))
    if min(sizes) < 1:
        raise ValueError(f"interpolate: the output would be {sizes[0]}×{sizes[1]} for input {x.shape}")
    ratios = [1 / s if scales else n / o for s, n, o in zip(scales or (0, 0), (height, width), sizes)]
    if mode == "nearest":
        if sizes[0] % height == 0 and sizes[1] % width == 0 and all(
                math.isclose(r, n / o) for r, n, o in zip(ratios, (height, width), sizes)):
            return _repeat(x, sizes[0] // height, sizes[1] // width)  # every source cell copied f·g times
        # (in float32, as PyTorch computes these indices)
        rows, cols = (np.minimum(np.floor(np.arange(o, dtype=np.float32) * np.float32(r)).astype(np.int64), n - 1)
                      for o, r, n in zip(sizes, ratios, (height, width)))
        return x[:, :, rows][:, :, :, cols]
    for axis, out, length, ratio in ((3, sizes[1], width, ratios[1]), (2, sizes[0], height, ratios[0])):
        x = _linear(x, axis, out, length, ratio, bool(align_corners))  # columns first, then rows: PyTorch's order
    return x


def _repeat(x: Tensor, f: int, g: int) -> Tensor:
    """Each cell of x's last two axes repeated f×g times: a broadcast, whose gradient sums."""
    n, c, height, width = x.shape
    spread = tensor_ops.broadcast_to(x.reshape(n, c, height, 1, width, 1), (n, c, height, f, width, g))
    return spread.reshape(n, c, height * f, width * g)


def _linear(x: Tensor, axis: int, out: int, length: int, ratio: float, align_corners: bool) -> Tensor:
    """Linear interpolation along `axis` to `out` cells: λ0·x[i0] + λ1·x[i1] (PyTorch's weights,
    computed in x's precision as PyTorch's)."""
    dtype = x.dtype.type
    i = np.arange(out, dtype=x.dtype)
    if align_corners:
        source = i * dtype((length - 1) / (out - 1)) if out > 1 else np.zeros(out, x.dtype)
    else:
        source = np.maximum((i + dtype(0.5)) * dtype(ratio) - dtype(0.5), dtype(0))
    first = np.minimum(np.floor(source).astype(np.int64), length - 1)
    second = np.minimum(first + 1, length - 1)
    weight = (source - first).astype(x.dtype)
    shape = (out, 1) if axis == 2 else (out,)
    index: list[Any] = [slice(None)] * 4
    index[axis] = first
    near = x[tuple(index)]
    index[axis] = second
    far = x[tuple(index)]
    return near * Tensor._make((1 - weight).reshape(shape)) + far * Tensor._make(weight.reshape(shape))


def _pair(value: Any, name: str, kind: type) -> tuple[Any, Any] | None:
    if value is None:
        return None
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    wanted = numbers.Integral if kind is int else numbers.Real
    if len(pair) != 2 or not all(isinstance(v, wanted) and not isinstance(v, bool) and v > 0 for v in pair) \
            or not all(math.isfinite(v) for v in pair):
        raise ValueError(f"interpolate: {name} must be a positive {kind.__name__} or a pair of them, got {value!r}")
    return kind(pair[0]), kind(pair[1])


__all__ = ["interpolate"]
