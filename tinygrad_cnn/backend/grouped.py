"""Grouped convolutions in the fast backend: the channels split into `groups` independent
correlations (reference.conv2d's groups).

- One input channel per group (a depthwise convolution; each channel may feed several maps, the
  "channel multiplier"): no matrix product is worth making, so each of the kh·kw kernel taps is
  one multiply-add of a strided slice of x over all maps at once -- a tap loop, per block of
  samples small enough to stay in cache, the blocks shared among the threads.
- Several input channels per group: each group is a dense convolution of its channel slice,
  computed by the dense kernels (reference.by_groups with conv.py's functions).

Notation as reference.py: x (N, C, H, W), k (F, C/groups, kh, kw), y and dy (N, F, H', W'),
m = F/C maps per input channel in the depthwise case.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tinygrad_cnn.backend.im2col import pad2d
from tinygrad_cnn.backend.parallel import parallel
from tinygrad_cnn.backend.reference import extent

ndarray = np.ndarray
Padding = tuple[int, int, int, int]
# Bytes of a sample block's output, so that a tap's slice and the block's sum stay in cache.
BLOCK_BYTES = 1 << 20


def _per_channel(x: ndarray, maps: int) -> ndarray:
    """x with each channel repeated for its `maps` maps: (N, C, ...) -> (N, C·maps, ...)."""
    return x if maps == 1 else np.repeat(x, maps, axis=1)


def _in_sample_blocks(work: Callable[[slice], None], n: int, per_sample: int) -> None:
    """work(samples) over blocks of samples of about BLOCK_BYTES, shared among the threads."""
    size = max(1, min(n, BLOCK_BYTES // max(per_sample, 1)))
    blocks = -(-n // size)

    def run(first: int, last: int) -> None:  # a loop over cache-sized blocks
        for block in range(first, last):
            work(slice(block * size, min(n, (block + 1) * size)))

    parallel(run, blocks, n * per_sample * 3, chunks_per_thread=max(1, min(blocks // 2, 8)))


def _tap(i: int, count: int, step: int) -> slice:
    """The rows (or columns) a kernel tap at offset i (p·dh for tap p of a dilated kernel) meets
    for `count` outputs every `step`."""
    return slice(i, i + (count - 1) * step + 1, step)


def depthwise_conv2d(x: ndarray, k: ndarray, b: ndarray | None, padding: Padding, stride: tuple[int, int],
                     dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """y[n, f, i, j] = b[f] + Σ_{p,q} x_padded[n, f // m, i·sh + p·dh, j·sw + q·dw] · k[f, 0, p, q]."""
    (sh, sw), (dh, dw), (f, _, kh, kw) = stride, dilation, k.shape
    x = _per_channel(pad2d(x, padding), f // x.shape[1])
    n, _, height, width = x.shape
    span_h, span_w = extent(k.shape, dilation)
    out_h, out_w = (height - span_h) // sh + 1, (width - span_w) // sw + 1
    dtype = np.result_type(x.dtype, k.dtype)
    y = np.empty((n, f, out_h, out_w), dtype=dtype)
    taps = k[:, 0].astype(dtype, copy=False)

    def work(samples: slice) -> None:
        out, product = y[samples], np.empty_like(y[samples])
        out[...] = 0 if b is None else b.reshape(-1, 1, 1)
        for p in range(kh):  # a loop over the kernel's taps: one multiply-add of every map each
            for q in range(kw):
                np.multiply(x[samples, :, _tap(p * dh, out_h, sh), _tap(q * dw, out_w, sw)], taps[:, p, q, None, None],
                            out=product)
                out += product

    _in_sample_blocks(work, n, y[:1].nbytes)
    return y


def depthwise_grad_k(x: ndarray, dy: ndarray, kernel_size: tuple[int, int], padding: Padding,
                     stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """dk[f, 0, p, q] = Σ_{n,i,j} x_padded[n, f // m, i·sh + p·dh, j·sw + q·dw] · dy[n, f, i, j]."""
    (kh, kw), (sh, sw), (dh, dw), (n, f, out_h, out_w) = kernel_size, stride, dilation, dy.shape
    x = _per_channel(pad2d(x, padding), f // x.shape[1])
    parts = np.zeros((n, f, kh, kw), dtype=np.result_type(x.dtype, dy.dtype))

    def work(samples: slice) -> None:
        for p in range(kh):  # a loop over the kernel's taps: one contraction each
            for q in range(kw):
                parts[samples, :, p, q] = np.einsum("nfij,nfij->nf", x[samples, :, _tap(p * dh, out_h, sh),
                                                                      _tap(q * dw, out_w, sw)], dy[samples])

    _in_sample_blocks(work, n, dy[:1].nbytes)
    return parts.sum(axis=0)[:, None]


def depthwise_grad_x(dy: ndarray, k: ndarray, x_shape: tuple[int, ...], padding: Padding,
                     stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """dx = dy ∗ k: each tap's slab dy·k[f, 0, p, q] added back where that tap read x, the
    maps of one channel summed, the padding taken off (0 <= padding)."""
    (sh, sw), (dh, dw), (n, f, out_h, out_w), (_, _, kh, kw) = stride, dilation, dy.shape, k.shape
    top, bottom, left, right = padding
    channels, height, width = x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right
    dtype = np.result_type(dy.dtype, k.dtype)
    dx = np.empty((n, channels, height, width), dtype=dtype)
    taps = k[:, 0].astype(dtype, copy=False)

    def work(samples: slice) -> None:
        spread = np.zeros((samples.stop - samples.start, f, height, width), dtype=dtype)
        product = np.empty_like(dy[samples], dtype=dtype)
        for p in range(kh):  # a loop over the kernel's taps: one multiply-add of every map each
            for q in range(kw):
                np.multiply(dy[samples], taps[:, p, q, None, None], out=product)
                spread[:, :, _tap(p * dh, out_h, sh), _tap(q * dw, out_w, sw)] += product
        dx[samples] = spread.reshape(len(spread), channels, f // channels, height, width).sum(axis=2)

    _in_sample_blocks(work, n, dx[:1].nbytes * (f // channels))
    return dx[:, :, top:height - bottom, left:width - right]
