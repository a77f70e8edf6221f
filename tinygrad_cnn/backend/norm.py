"""Batch normalization in the fast backend: every pass over an activation runs a cache-sized
block at a time (a slice along the outermost of the averaged axes in memory, so a block is a few
long contiguous stretches in any layout), the blocks shared out among the threads; the sums over
a batch are added block by block in a fixed order, so any thread count gives the same numbers.

Notation as reference.batch_norm: x̂ = (x − μ)·s, s = 1/√(σ² + ε), ⟨u⟩ the mean over `axes`,
w and b the per-channel scale and shift.

- forward: μ (one reduction), then x − μ written into the output with Σ(x − μ)² summed from
  cache, then the output scaled and shifted in place: y = (x − μ)·(s·w) + b;
- ∂C/∂x = w·s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩) and ∂C/∂w = Σ dy·x̂ from the sums Σ dy and
  Σ dy·(x − μ), the centred block made in cache and never whole, then one pass for ∂C/∂x.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_cnn.backend import reference
from tinygrad_cnn.backend.elementwise import BLOCK, empty_like_operands
from tinygrad_cnn.backend.parallel import parallel

ndarray = np.ndarray


def _in_blocks(work: Callable[[tuple[slice, ...]], Any], x: ndarray, axes: tuple[int, ...], nbytes: int) -> list[Any]:
    """work(index) for the blocks of x (about `BLOCK` values each, cut along the averaged axis
    that is outermost in x's memory), on the threads; the results in block order."""
    axis = max(axes, key=lambda a: (x.shape[a] > 1, abs(x.strides[a])))
    length = x.shape[axis]
    step = max(1, BLOCK // max(x.size // max(length, 1), 1))
    starts = range(0, max(length, 1), step)  # an empty axis still makes one (empty) block
    results: list[Any] = [None] * len(starts)

    def run(first: int, last: int) -> None:
        for block in range(first, last):
            index = (slice(None),) * axis + (slice(starts[block], starts[block] + step),)
            results[block] = work(index)

    parallel(run, len(starts), nbytes)
    return results


def _sum_of_product(a: ndarray, b: ndarray, axes: tuple[int, ...]) -> ndarray:
    """Σ a·b over `axes`, by einsum: no product array."""
    letters = "abcdefghijklmnop"[:a.ndim]
    kept = "".join(letter for axis, letter in enumerate(letters) if axis not in axes)
    return np.einsum(f"{letters},{letters}->{kept}", a, b)


def _keepdims(total: ndarray, x: ndarray, axes: tuple[int, ...]) -> ndarray:
    return total.reshape(tuple(1 if axis in axes else length for axis, length in enumerate(x.shape)))


def _inverse_deviation(var: ndarray, eps: float, dtype: np.dtype) -> ndarray:
    return (1 / np.sqrt(var + eps)).astype(dtype, copy=False)


def batch_norm(x: ndarray, weight: ndarray, bias: ndarray, axes: tuple[int, ...], eps: float
               ) -> tuple[ndarray, ndarray, ndarray, dict[str, Any]]:
    """y = x̂·w + b, μ, σ² (keepdims), and μ and s for the backward (in a dict it adds to)."""
    count = math.prod(x.shape[axis] for axis in axes)
    mean = x.mean(axis=axes, keepdims=True)
    out = empty_like_operands(x.shape, np.result_type(x, weight, bias), [x])

    def centre(index: tuple[slice, ...]) -> ndarray:  # out = x − μ, and Σ (x − μ)² from cache
        part = np.subtract(x[index], mean, out=out[index])
        return _sum_of_product(part, part, axes)

    squares = _in_blocks(centre, x, axes, x.nbytes + out.nbytes)
    var = _keepdims(sum(squares[1:], squares[0]) / count, x, axes).astype(x.dtype, copy=False)
    s = _inverse_deviation(var, eps, x.dtype)
    scale = (s * weight).astype(out.dtype, copy=False)

    def scale_and_shift(index: tuple[slice, ...]) -> None:
        part = out[index]
        part *= scale
        part += bias

    _in_blocks(scale_and_shift, out, axes, 2 * out.nbytes)
    return out, mean, var, {"mean": mean, "s": s}


def _sums(dy: ndarray, x: ndarray, axes: tuple[int, ...], eps: float, saved: Any) -> tuple[ndarray, ...]:
    """μ, s, Σ dy and Σ dy·(x − μ) (keepdims), in one blocked read of dy and x. `saved` (the
    forward's dict, or None) holds μ and s, and the sums of the last dy seen: ∂C/∂x and ∂C/∂w of
    one backward read the same dy and share them."""
    if saved is None:
        saved = {"mean": x.mean(axis=axes, keepdims=True)}
        saved["s"] = _inverse_deviation(x.var(axis=axes, keepdims=True), eps, x.dtype)
    mean, s = saved["mean"], saved["s"]
    seen = saved.get("sums")
    if seen is not None and seen[0]() is dy:
        return (mean, s) + seen[1:]

    def sums(index: tuple[slice, ...]) -> tuple[ndarray, ndarray]:
        part = dy[index]
        return part.sum(axis=axes), _sum_of_product(part, x[index] - mean, axes)

    parts = _in_blocks(sums, x, axes, dy.nbytes + x.nbytes)
    total_dy = _keepdims(sum([p[0] for p in parts[1:]], parts[0][0]), x, axes)
    total_dy_centred = _keepdims(sum([p[1] for p in parts[1:]], parts[0][1]), x, axes)
    saved["sums"] = (weakref.ref(dy), total_dy, total_dy_centred)  # not keeping dy alive
    return mean, s, total_dy, total_dy_centred


def batch_norm_backward(dy: ndarray, x: ndarray, weight: ndarray, axes: tuple[int, ...], eps: float,
                        saved: Any = None) -> ndarray:
    """w·s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩) = w·s·(dy − ⟨dy⟩ − (x − μ)·s²·⟨dy·(x − μ)⟩); μ and s from the
    forward (`saved`), or computed again from x."""
    count = math.prod(x.shape[axis] for axis in axes)
    mean, s, total_dy, total_dy_centred = _sums(dy, x, axes, eps, saved)
    dtype = np.result_type(dy, x, weight)
    mean_dy = (total_dy / count).astype(dtype, copy=False)
    slope = (s * s * total_dy_centred / count).astype(dtype, copy=False)
    scale = (weight * s).astype(dtype, copy=False)
    out = empty_like_operands(dy.shape, dtype, [dy, x])

    def step(index: tuple[slice, ...]) -> None:
        part = np.subtract(x[index], mean, out=out[index])
        part *= slope
        part += mean_dy
        np.subtract(dy[index], part, out=part)
        part *= scale

    _in_blocks(step, x, axes, dy.nbytes + x.nbytes + out.nbytes)
    return out


def batch_norm_weight_grad(dy: ndarray, x: ndarray, axes: tuple[int, ...], eps: float, saved: Any = None) -> ndarray:
    """Σ dy·x̂ = s·Σ dy·(x − μ) (keepdims); 0 on an empty batch, whose s is NaN."""
    if dy.size == 0:
        return reference.batch_norm_weight_grad(dy, x, axes, eps)
    _, s, _, total_dy_centred = _sums(dy, x, axes, eps, saved)
    return (s * total_dy_centred).astype(np.result_type(dy, x), copy=False)
