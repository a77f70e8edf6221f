"""The array kernels: every numpy computation of the ops lives here, and nowhere else.

The ops (``tinygrad_cnn.ops``) call these functions on plain arrays, so another array library
with numpy's API could stand in for this one module. No kernel loops in Python over batch,
channels, rows or columns: convolution is im2col (a strided window view) and one matrix
product; pooling is a window view and one argmax; scatter is one indexed add.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ndarray = np.ndarray
asarray = np.asarray
exp = np.exp
log = np.log
tanh = np.tanh
maximum = np.maximum
matmul = np.matmul
broadcast_to = np.broadcast_to
zeros = np.zeros
ones = np.ones


def ignore_underflow() -> np.errstate:
    """Underflow to zero is a correct result in every op; overflow and NaN are still reported."""
    return np.errstate(under="ignore")


def result_dtype(*dtypes: np.dtype) -> np.dtype:
    return np.result_type(*dtypes)


def sigmoid(z: ndarray) -> ndarray:
    """σ(z) = 1/(1+e^(−z)), computed from e^(−|z|) so that no exp overflows for any finite z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def relu_mask(x: ndarray) -> ndarray:
    """1 where x > 0, else 0, in x's dtype (the derivative of max(x, 0))."""
    return (x > 0).astype(x.dtype)


def first_argmax_mask(x: ndarray, axes: tuple[int, ...]) -> ndarray:
    """One-hot mask of the first maximum (row-major, as np.argmax) over `axes`, in x's dtype."""
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    lead = moved.shape[: len(rest)]
    flat = moved.reshape(lead + (-1,))
    mask = np.zeros(flat.shape, dtype=x.dtype)
    np.put_along_axis(mask, flat.argmax(axis=-1)[..., None], 1, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(rest + list(axes)))


def pad2d(x: ndarray, padding: tuple[int, int, int, int]) -> ndarray:
    """Zero-pad the last two axes by (top, bottom, left, right); a negative amount crops."""
    top, bottom, left, right = padding
    if min(padding) < 0:
        height, width = x.shape[-2:]
        x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
    if max(padding) > 0:
        widths = [(0, 0)] * (x.ndim - 2) + [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
        x = np.pad(x, widths)
    return x


def correlate2d_nchw(
    x: ndarray, k: ndarray, padding: tuple[int, int, int, int], stride: tuple[int, int]
) -> ndarray:
    """Batched multi-channel cross-correlation, what PyTorch calls conv2d.

    x: (N, C, H, W), k: (F, C, kh, kw) -> y: (N, F, H', W') with
    y[n, f, i, j] = Σ_c Σ_p Σ_q  x_padded[n, c, i·sh + p, j·sw + q] · k[f, c, p, q].

    im2col: a strided window view of x_padded, copied once into a (N·H'·W', C·kh·kw) matrix,
    times the (C·kh·kw, F) kernel matrix -- one GEMM for the whole batch.
    """
    x = pad2d(x, padding)
    n, c, _, _ = x.shape
    f, _, kh, kw = k.shape
    sh, sw = stride
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # N,C,H',W',kh,kw
    out_h, out_w = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * kh * kw)
    y = cols @ k.reshape(f, c * kh * kw).T  # (N·H'·W', F)
    return np.ascontiguousarray(y.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2))


def maxpool2d(x: ndarray, size: tuple[int, int], stride: tuple[int, int]) -> tuple[ndarray, ndarray]:
    """Window max over the last two axes, and the flat index (into x.ravel()) of each window's
    first maximum in row-major order (the np.argmax rule)."""
    kh, kw = size
    sh, sw = stride
    *lead, height, width = x.shape
    windows = sliding_window_view(x, (kh, kw), axis=(-2, -1))[..., ::sh, ::sw, :, :]
    out_h, out_w = windows.shape[-4:-2]
    flat = windows.reshape(windows.shape[:-2] + (kh * kw,))
    first = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, first[..., None], axis=-1)[..., 0]
    rows = np.arange(out_h)[:, None] * sh + first // kw
    cols = np.arange(out_w)[None, :] * sw + first % kw
    slices = np.arange(math.prod(lead)).reshape(tuple(lead) + (1, 1))
    return y, (slices * height + rows) * width + cols


def index_add(values: ndarray, shape: tuple[int, ...], index: object, unique: bool) -> ndarray:
    """zeros(shape) with `values` added at `index`; repeated positions add up (np.add.at)."""
    out = np.zeros(shape, dtype=values.dtype)
    if unique:
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out
