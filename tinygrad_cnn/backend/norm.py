"""Batch normalization in the fast backend: the statistics by reductions that make no
temporary array, the normalizing and the input gradient as passes in one buffer cut across the
threads; the forward hands back what the backward reuses (x̂ is the forward's output, and s).

Notation as reference.batch_norm: x̂ = (x − μ)·s, s = 1/√(σ² + ε), ⟨u⟩ the mean over `axes`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_cnn.backend.elementwise import elementwise, empty_like_operands, passes

ndarray = np.ndarray


def _mean_of_product(a: ndarray, b: ndarray, axes: tuple[int, ...]) -> ndarray:
    """⟨a·b⟩ over `axes` (keepdims), summed by einsum without the product array."""
    letters = "abcdefghijklmnop"[:a.ndim]
    kept = "".join(letter for axis, letter in enumerate(letters) if axis not in axes)
    total = np.einsum(f"{letters},{letters}->{kept}", a, b)
    shape = tuple(1 if axis in axes else length for axis, length in enumerate(a.shape))
    return (total / math.prod(a.shape[axis] for axis in axes)).reshape(shape).astype(a.dtype, copy=False)


def batch_norm(x: ndarray, axes: tuple[int, ...], eps: float) -> tuple[ndarray, ndarray]:
    """x̂ (in x's layout) and s, for `batch_norm_backward`."""
    centred = elementwise(np.subtract, x, x.mean(axis=axes, keepdims=True))
    s = (1 / np.sqrt(_mean_of_product(centred, centred, axes) + eps)).astype(x.dtype, copy=False)
    return elementwise(np.multiply, centred, s, out=centred), s


def batch_norm_backward(dy: ndarray, x: ndarray, axes: tuple[int, ...], eps: float, saved: Any = None) -> ndarray:
    """s·(dy − (⟨dy⟩ + x̂·⟨dy·x̂⟩)), in four passes over one buffer; x̂ and s from the forward
    (`saved`), or computed again from x."""
    x_hat, s = saved if saved is not None else batch_norm(x, axes, eps)
    a, b = dy.mean(axis=axes, keepdims=True), _mean_of_product(dy, x_hat, axes)

    def step(out: ndarray, dy: ndarray, x_hat: ndarray, a: ndarray, b: ndarray, s: ndarray) -> None:
        np.multiply(x_hat, b, out=out)
        out += a
        np.subtract(dy, out, out=out)
        out *= s

    out = empty_like_operands(dy.shape, np.result_type(dy, x_hat), [dy, x_hat])
    return passes(step, out, (dy, x_hat, a.astype(out.dtype, copy=False), b, s), 4 * out.nbytes)
