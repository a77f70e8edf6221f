"""The array kernels: every numpy computation of the ops lives here, and nowhere else.

The ops (``tinygrad_cnn.ops``) call these functions on plain arrays, so another array library
with numpy's API could stand in for this one module. No kernel loops in Python over batch,
channels, rows or columns: convolution is im2col (a strided window view) and one matrix
product; pooling is a window view and one argmax; scatter is one indexed add.
"""
from __future__ import annotations

import functools
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


def ignore_underflow() -> np.errstate:
    """Underflow to zero is a correct result in every op; overflow and NaN are still reported."""
    return np.errstate(under="ignore")


def sigmoid(z: ndarray) -> ndarray:
    """σ(z) = 1/(1+e^(−z)), to full relative precision (σ(−30) is not rounded to zero as in
    ½·tanh(z/2) + ½). For z below about −88 (float32) e^(−z) overflows to ∞ and 1/(1+∞) = 0 is
    the exact answer, so that overflow (and underflow, for large z) is not reported. Vectorised exp, add and reciprocal:
    about five times faster than scipy.special.expit on float32."""
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(np.negative(z))
    e = np.asarray(e)
    e += 1
    return np.reciprocal(e, out=e)


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
    x: ndarray, k: ndarray, padding: tuple[int, int, int, int], stride: tuple[int, int], method: str = "auto"
) -> ndarray:
    """Batched multi-channel cross-correlation, what PyTorch calls conv2d.

    x: (N, C, H, W), k: (F, C, kh, kw) -> y: (N, F, H', W') with
    y[n, f, i, j] = Σ_c Σ_p Σ_q  x_padded[n, c, i·sh + p, j·sw + q] · k[f, c, p, q].

    Three ways to the same numbers; ``method="auto"`` picks one by shape:
    - "scatter" when the output is larger than the input (a 'full' correlation, as in
      ∂C/∂x = dy ∗ k): every input value meets every kernel tap, and scattering x ⊗ k into the
      output skips the zeros of the padding;
    - "fft" when a FLOP estimate says the transforms beat the direct sum (large kernels on
      large inputs);
    - "im2col" otherwise: gather each window once, then matrix products.
    """
    kh, kw = k.shape[2:]
    top, bottom, left, right = padding
    out_h = x.shape[2] + top + bottom - kh + 1
    out_w = x.shape[3] + left + right - kw + 1
    scatter_fits = stride == (1, 1) and 0 <= min(padding) and max(top, bottom) < kh and max(left, right) < kw
    if method == "auto":
        if scatter_fits and out_h * out_w > x.shape[2] * x.shape[3]:
            method = "scatter"
        elif _fft_wins(x.shape[0], x.shape[1], k.shape[0], x.shape[2] + top + bottom,
                       x.shape[3] + left + right, kh, kw, out_h, out_w):
            method = "fft"
        else:
            method = "im2col"
    if method == "scatter":
        if not scatter_fits:
            raise ValueError(f"the scatter method needs stride 1 and 0 <= padding < kernel size, got "
                             f"padding {padding}, stride {stride}, kernel {k.shape}")
        return _correlate_by_scatter(x, k, padding)
    if method == "fft":
        return _correlate_by_fft(pad2d(x, padding), k, stride)
    if method == "im2col":
        return _correlate_by_im2col(pad2d(x, padding), k, stride)
    raise ValueError(f"method must be 'auto', 'im2col', 'scatter' or 'fft', got {method!r}")


def _fft_wins(n: int, c: int, f: int, height: int, width: int, kh: int, kw: int, out_h: int, out_w: int) -> bool:
    """Whether the FFT route is estimated to be faster: direct multiply-adds against the
    transforms plus the per-frequency channel products (a rough FLOP model), for kernels of 7×7
    and up on maps of 32×32 and up. Measured here: 8× faster at 15×15 on 64×64 inputs, 25× at
    9×9 on 32×32; but 3× slower for the MNIST network's ∂C/∂k (an 8×8 'kernel' on 12×12 maps),
    where numpy's per-transform and per-frequency overheads dominate the FLOPs."""
    direct = 2.0 * n * f * c * out_h * out_w * kh * kw
    area = height * width
    transforms = 5.0 * (n * c + f * c + n * f) * area * np.log2(max(area, 2))
    products = 8.0 * n * c * f * height * (width // 2 + 1)
    return kh * kw >= 49 and area >= 32 * 32 and transforms + products < direct


def _correlate_by_fft(x: ndarray, k: ndarray, stride: tuple[int, int]) -> ndarray:
    """The correlation theorem: x ⋆ k = irfft2(rfft2(x) · rfft2(k rotated 180°)) read from offset
    (kh−1, kw−1). A circular transform of x's own size (H, W) is enough: the wrap-around of the
    full result only lands on positions before that offset. Channels are summed by one complex
    (N, C) @ (C, F) product per frequency."""
    n, c, height, width = x.shape
    f, _, kh, kw = k.shape
    x_hat = np.fft.rfft2(x, s=(height, width))                          # (N, C, H, W/2+1)
    k_hat = np.fft.rfft2(k[:, :, ::-1, ::-1], s=(height, width))       # (F, C, H, W/2+1)
    freq = x_hat.shape[2] * x_hat.shape[3]
    y_hat = np.matmul(x_hat.reshape(n, c, freq).transpose(2, 0, 1),    # (freq, N, C)
                      k_hat.reshape(f, c, freq).transpose(2, 1, 0))    # (freq, C, F)
    y_hat = y_hat.transpose(1, 2, 0).reshape(n, f, x_hat.shape[2], x_hat.shape[3])
    y = np.fft.irfft2(y_hat, s=(height, width))[:, :, kh - 1 :: stride[0], kw - 1 :: stride[1]]
    return np.ascontiguousarray(y, dtype=np.result_type(x.dtype, k.dtype))


def _correlate_by_im2col(x: ndarray, k: ndarray, stride: tuple[int, int]) -> ndarray:
    """im2col: a strided window view of x, copied once into a matrix, then matrix products.

    The copy is the cost, and numpy copies fastest in long contiguous runs of x, so the layout
    follows the shape (measured on the MNIST network's shapes, see benchmarks/ops.py):
    - kernel wider than the output (∂C/∂k = x ⋆ dy, where dy is the kernel): rows of
      (C·kh·kw) runs of kw, one (N·H'·W', C·kh·kw) @ (C·kh·kw, F) product;
    - large outputs: runs of W' into (N, C·kh·kw, H'·W'), one product per sample, which lands
      in NCHW order without a transpose;
    - small outputs (per-sample products too thin for BLAS): one (F, C·kh·kw) @
      (C·kh·kw, N·H'·W') product, then a transpose of the (small) output.
    """
    n, c, _, _ = x.shape
    f, _, kh, kw = k.shape
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    out_h, out_w = windows.shape[2:4]
    weights = k.reshape(f, c * kh * kw)
    if kw > out_w:
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * kh * kw)
        y = (cols @ weights.T).reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2)
    elif out_h * out_w >= 256:
        cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, out_h * out_w)
        return np.matmul(weights, cols).reshape(n, f, out_h, out_w)
    else:
        cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * out_h * out_w)
        y = (weights @ cols).reshape(f, n, out_h, out_w).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y)


def _correlate_by_scatter(x: ndarray, k: ndarray, padding: tuple[int, int, int, int]) -> ndarray:
    """The same correlation for 0 <= padding < kernel size, stride 1, computed as a transposed
    convolution: one GEMM gives every product x[n, c, i, j]·k[f, c, p, q] summed over c, and
    each of the kh·kw kernel taps adds its (N, F, H, W) slab into the output at its offset."""
    n, c, height, width = x.shape
    f, _, kh, kw = k.shape
    top, bottom, left, right = padding
    taps = (k.transpose(2, 3, 0, 1).reshape(kh * kw * f, c)
            @ x.transpose(1, 0, 2, 3).reshape(c, n * height * width))  # (kh·kw·F, N·H·W)
    taps = taps.reshape(kh, kw, f, n, height, width)
    full = np.zeros((f, n, height + kh - 1, width + kw - 1), dtype=taps.dtype)
    for p in range(kh):  # a loop over kernel taps, each one whole-batch add
        for q in range(kw):
            full[:, :, kh - 1 - p : kh - 1 - p + height, kw - 1 - q : kw - 1 - q + width] += taps[p, q]
    rows = slice(kh - 1 - top, full.shape[2] - (kh - 1 - bottom))
    cols = slice(kw - 1 - left, full.shape[3] - (kw - 1 - right))
    return np.ascontiguousarray(full[:, :, rows, cols].transpose(1, 0, 2, 3))


def maxpool2d(x: ndarray, size: tuple[int, int], stride: tuple[int, int]) -> tuple[ndarray, ndarray]:
    """Window max over the last two axes, and the flat index (into x.ravel()) of each window's
    first maximum in row-major order (the np.argmax rule; a NaN counts as the maximum).

    A loop over the kh·kw window taps: tap (p, q) of every window at once is the strided slice
    x[..., p::sh, q::sw]; the running maximum's tap changes only where a later tap is strictly
    larger, which keeps the first maximum. (np.argmax over a tiny last axis of copied windows is
    several times slower.)
    """
    kh, kw = size
    sh, sw = stride
    *lead, height, width = x.shape
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    # The tap of each window's maximum, updated arithmetically (masked writes are ~50x slower):
    # first = first·(1 − larger) + tap·larger.
    first_dtype = np.uint8 if kh * kw <= 256 else np.intp
    y = first = None
    for tap in range(kh * kw):
        p, q = divmod(tap, kw)
        plane = x[..., p : p + (out_h - 1) * sh + 1 : sh, q : q + (out_w - 1) * sw + 1 : sw]
        if y is None:
            y, first = plane.copy(), np.zeros(plane.shape, dtype=first_dtype)
            continue
        larger = (plane > y).view(np.uint8)
        first *= 1 - larger
        first += larger * first_dtype(tap)
        np.maximum(y, plane, out=y)
    if np.isnan(y).any():  # rare: a NaN is the maximum of its window, as in np.argmax
        first = _first_nan_taps(x, first, size, stride, (out_h, out_w))
    offsets = np.array([p * width + q for p in range(kh) for q in range(kw)], dtype=np.intp)
    return y, _window_origins(math.prod(lead), height, width, out_h, out_w, sh, sw).reshape(y.shape) + offsets[first]


def _first_nan_taps(x: ndarray, first: ndarray, size: tuple[int, int], stride: tuple[int, int],
                    out: tuple[int, int]) -> ndarray:
    """Where a window holds a NaN, the tap of its first NaN (np.argmax's answer)."""
    (kh, kw), (sh, sw), (out_h, out_w) = size, stride, out
    found = np.zeros(first.shape, dtype=bool)
    for tap in range(kh * kw):
        p, q = divmod(tap, kw)
        nan = np.isnan(x[..., p : p + (out_h - 1) * sh + 1 : sh, q : q + (out_w - 1) * sw + 1 : sw]) & ~found
        first[nan] = tap
        found |= nan
    return first


@functools.lru_cache(maxsize=32)
def _window_origins(slices: int, height: int, width: int, out_h: int, out_w: int, sh: int, sw: int) -> ndarray:
    """Flat index of each pooling window's top-left cell (cached: a training loop repeats shapes)."""
    rows = np.arange(out_h)[:, None] * (sh * width) + np.arange(out_w)[None, :] * sw
    origins = np.arange(slices)[:, None, None] * (height * width) + rows
    origins.setflags(write=False)
    return origins


def index_add(values: ndarray, shape: tuple[int, ...], index: object, unique: bool) -> ndarray:
    """zeros(shape) with `values` added at `index`; repeated positions add up (np.add.at)."""
    out = np.zeros(shape, dtype=values.dtype)
    if unique:
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out
