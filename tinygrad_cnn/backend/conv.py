"""Convolution in the fast backend: the forward and the two gradients.

Three ways to the same numbers, picked by shape (`correlation_method`):
- "scatter" where its products are fewer values than im2col's windows (F·H·W against
  C·H'·W', each times kh·kw), or the output is larger than the input (a 'full' correlation, as
  ∂C/∂x = dy ∗ k, whose windows are mostly padding): x ⊗ k is computed by GEMM and its kernel
  taps added into the output at their offsets, a cache-sized block at a time. At equal counts
  im2col is taken: its copy of a window value costs less than the scatter's add of a product;
- "fft" when a FLOP estimate says the transforms beat the direct sum (large kernels on large
  inputs);
- "im2col" otherwise: gather the windows (`unfold`), then matrix products (`correlate_windows`).

im2col and the weight gradient work a block of samples at a time: each block's windows (kh·kw
times its input for a stride-1 kernel) are gathered into a buffer of about `GATHER_BLOCK_BYTES`
and multiplied while they are still in the core's cache. So no convolution holds all its
windows: a forward keeps nothing but its input for the backward, and ∂C/∂k gathers each block
again, which costs little more than reading windows kept in memory would.
"""
from __future__ import annotations

import functools

import numpy as np

from tinygrad_cnn.backend import reference
from tinygrad_cnn.backend.grouped import depthwise_conv2d, depthwise_grad_k, depthwise_grad_x
from tinygrad_cnn.backend.im2col import (add_bias, correlate_windows, pad2d, unfold, windows_of_transposed)
from tinygrad_cnn.backend.parallel import blas_single_threaded, parallel

ndarray = np.ndarray
Padding = tuple[int, int, int, int]
# A scatter block's products, a kernel row's at a time: small enough to be added from cache.
SCATTER_BLOCK_BYTES = 4 << 20
# A block of samples' windows: small enough to be multiplied from cache.
GATHER_BLOCK_BYTES = 4 << 20


def conv2d(x: ndarray, k: ndarray, b: ndarray | None, padding: Padding, stride: tuple[int, int], groups: int = 1,
           dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """y[n, f, i, j] = b[f] + Σ_{c,p,q} x_padded[n, c, i·sh + p·dh, j·sw + q·dw] · k[f, c, p, q]
    (within each of `groups` channel groups)."""
    if groups > 1:
        if k.shape[1] == 1:
            return depthwise_conv2d(x, k, b, padding, stride, dilation)
        return reference.by_groups(conv2d, groups, ((x, 1), (k, 0), (b, 0)), 1, padding, stride, 1, dilation)
    method = correlation_method(x.shape, k.shape, padding, stride, dilation)
    if method == "im2col":
        return _correlate_by_im2col(x, k, padding, stride, b, dilation)  # the bias added as each part lands
    y = correlate2d(x, k, padding, stride, method, dilation)
    if b is not None:
        add_bias(y, b)
    return y


def conv2d_grad_k(x: ndarray, dy: ndarray, kernel_size: tuple[int, int], padding: Padding,
                  stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """dk[f, c, p, q] = Σ_{n,i,j} x_padded[n, c, i·sh + p·dh, j·sw + q·dw] · dy[n, f, i, j]: the
    windows of x contracted with dy, which plays the kernel, a block of samples at a time; each
    chunk of blocks sums its own products and the chunks' sums are added in order."""
    if groups > 1:
        if x.shape[1] == groups:
            return depthwise_grad_k(x, dy, kernel_size, padding, stride, dilation)
        return reference.by_groups(conv2d_grad_k, groups, ((x, 1), (dy, 1)), 0, kernel_size, padding, stride, 1,
                                   dilation)

    def grad(n0: int, n1: int) -> ndarray:
        windows = unfold(x[n0:n1], kernel_size, padding, stride, dilation)
        return correlate_windows(windows_of_transposed(windows), dy[n0:n1].transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)

    n = x.shape[0]
    samples, blocks, nbytes = _sample_blocks(x.shape, kernel_size, dy.shape[2:], x.itemsize)
    if blocks <= 1:
        return grad(0, n)
    sums = {}

    def work(first: int, last: int) -> None:  # blocks first..last-1, summed in order
        total = grad(first * samples, min(n, (first + 1) * samples))
        for block in range(first + 1, last):
            total += grad(block * samples, min(n, (block + 1) * samples))
        sums[first] = total

    with blas_single_threaded():
        parallel(work, blocks, nbytes)
    return functools.reduce(np.add, [sums[first] for first in sorted(sums)])


def _sample_blocks(x_shape: tuple[int, ...], kernel_size: tuple[int, int], out_size: tuple[int, int],
                   itemsize: int) -> tuple[int, int, int]:
    """How many samples' windows fill a gather block, how many blocks the batch makes, and the
    bytes of all the windows."""
    per_sample = x_shape[1] * kernel_size[0] * kernel_size[1] * out_size[0] * out_size[1] * itemsize
    samples = max(1, min(x_shape[0], GATHER_BLOCK_BYTES // max(per_sample, 1)))
    return samples, -(-x_shape[0] // samples), x_shape[0] * per_sample


def _correlate_by_im2col(x: ndarray, k: ndarray, padding: Padding, stride: tuple[int, int],
                         b: ndarray | None = None, dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """x ⋆ k (+ b) by im2col, a block of samples at a time, the blocks shared out among the
    threads. One block (a small batch) keeps the memory order its products come in (batch-last
    for small outputs, which the next ops read as they lie)."""
    n = x.shape[0]
    kh, kw = k.shape[2:]
    span_h, span_w = reference.extent(k.shape, dilation)
    padded_h, padded_w = x.shape[2] + padding[0] + padding[1], x.shape[3] + padding[2] + padding[3]
    out_size = ((padded_h - span_h) // stride[0] + 1, (padded_w - span_w) // stride[1] + 1)
    samples, blocks, nbytes = _sample_blocks(x.shape, (kh, kw), out_size, x.itemsize)
    if blocks <= 1:
        return correlate_windows(unfold(x, (kh, kw), padding, stride, dilation), k, b)
    y = np.empty((n, k.shape[0]) + out_size, dtype=np.result_type(x.dtype, k.dtype))

    def work(first: int, last: int) -> None:
        for block in range(first, last):
            n0, n1 = block * samples, min(n, (block + 1) * samples)
            y[n0:n1] = correlate_windows(unfold(x[n0:n1], (kh, kw), padding, stride, dilation), k, b)

    with blas_single_threaded():
        parallel(work, blocks, nbytes, chunks_per_thread=blocks)  # every block a chunk: even shares
    return y


def conv2d_grad_x(dy: ndarray, k: ndarray, x_shape: tuple[int, ...], padding: Padding,
                  stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """∂C/∂x = dy ∗ k (reference.conv2d_grad_x). Strided, a scatter of dy's products with the
    kernel at the stride (the transposed convolution), with no zeros put between dy's values
    (those would be sh·sw times the work); otherwise the correlation of dy with the rotated
    kernel, by whichever method `conv2d` picks for the shapes. A dilated kernel's taps are
    never spread with zeros either."""
    if groups > 1:
        if x_shape[1] == groups and min(padding) >= 0:
            return depthwise_grad_x(dy, k, x_shape, padding, stride, dilation)
        shape = (x_shape[0], x_shape[1] // groups) + tuple(x_shape[2:])
        return reference.by_groups(conv2d_grad_x, groups, ((dy, 1), (k, 0)), 1, shape, padding, stride, 1, dilation)
    full = reference.full_padding(dy.shape, k.shape, x_shape, padding, stride, dilation)
    top, bottom, left, right = full
    span_h, span_w = reference.extent(k.shape, dilation)
    if stride != (1, 1) and 0 <= top < span_h and 0 <= left < span_w and min(bottom, right) >= 0:
        return _correlate_by_scatter(dy, reference.rotated(k), full, spread=stride, dilation=dilation)
    return reference.conv2d_grad_x(dy, k, x_shape, padding, stride, 1, dilation,
                                   correlate=lambda x, k, b, padding, stride, groups, dilation:
                                   correlate2d(x, k, padding, stride, dilation=dilation))


def correlate2d(x: ndarray, k: ndarray, padding: Padding, stride: tuple[int, int], method: str = "auto",
                dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """The correlation of `conv2d` without a bias, by the named method ("auto": by shape)."""
    if method == "auto":
        method = correlation_method(x.shape, k.shape, padding, stride, dilation)
    if method == "scatter":
        if not _scatter_fits(k.shape, padding, stride, dilation):
            raise ValueError(f"the scatter method needs stride 1 and 0 <= padding < the kernel's extent, got "
                             f"padding {padding}, stride {stride}, kernel {k.shape}, dilation {dilation}")
        return _correlate_by_scatter(x, k, padding, dilation=dilation)
    if method == "fft":
        if dilation != (1, 1):
            raise ValueError(f"the fft method takes no dilation, got {dilation}")
        return _correlate_by_fft(pad2d(x, padding), k, stride)
    if method == "im2col":
        return _correlate_by_im2col(x, k, padding, stride, dilation=dilation)
    raise ValueError(f"method must be 'auto', 'im2col', 'scatter' or 'fft', got {method!r}")


def correlation_method(x_shape: tuple[int, ...], k_shape: tuple[int, ...], padding: tuple[int, int, int, int],
                       stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> str:
    """The fastest of "scatter", "fft" and "im2col" for these shapes (see the module's docstring).
    The FFT is not taken for a dilated kernel (its transform would be of the kernel's extent)."""
    n, c, height, width = x_shape
    f, _, kh, kw = k_shape
    top, bottom, left, right = padding
    span_h, span_w = reference.extent(k_shape, dilation)
    out_h, out_w = height + top + bottom - span_h + 1, width + left + right - span_w + 1
    if _scatter_fits(k_shape, padding, stride, dilation) and kh * kw > 1:
        if out_h * out_w > height * width or f * height * width < c * out_h * out_w:
            return "scatter"
    # the direct sum visits only the kept (strided) positions; the transforms cost the same either way
    if dilation == (1, 1) and fft_wins(n, c, f, height + top + bottom, width + left + right, kh, kw,
                                       (out_h - 1) // stride[0] + 1, (out_w - 1) // stride[1] + 1):
        return "fft"
    return "im2col"


def _scatter_fits(k_shape: tuple[int, ...], padding: tuple[int, int, int, int], stride: tuple[int, int],
                  dilation: tuple[int, int] = (1, 1)) -> bool:
    span_h, span_w = reference.extent(k_shape, dilation)
    top, bottom, left, right = padding
    return stride == (1, 1) and 0 <= min(padding) and max(top, bottom) < span_h and max(left, right) < span_w


def fft_wins(n: int, c: int, f: int, height: int, width: int, kh: int, kw: int, out_h: int, out_w: int) -> bool:
    """Whether the FFT route is estimated to be faster: direct multiply-adds (for the out_h·out_w
    positions the correlation keeps) against the
    transforms plus the per-frequency channel products (a rough FLOP model), for kernels of 7×7
    and up on maps of 32×32 and up: below that, numpy's per-transform and per-frequency
    overheads outweigh the FLOPs saved."""
    area = height * width
    if kh * kw < 49 or area < 32 * 32:
        return False
    direct = 2.0 * n * f * c * out_h * out_w * kh * kw
    transforms = 5.0 * (n * c + f * c + n * f) * area * np.log2(max(area, 2))
    products = 8.0 * n * c * f * height * (width // 2 + 1)
    return transforms + products < direct


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



def _correlate_by_scatter(x: ndarray, k: ndarray, padding: tuple[int, int, int, int],
                          spread: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """The same correlation for 0 <= top, left padding < the kernel's extent (bottom and right
    >= 0), stride 1, computed as a transposed convolution: a GEMM gives every product
    x[n, c, i, j]·k[f, c, p, q] summed over c, and each of the kh·kw kernel taps adds its slab
    into the output at its offset ((kh−1−p)·dh, (kw−1−q)·dw). With `spread` (sh, sw), x's
    values stand that far apart with zeros between (dy put back on the stride-1 grid, for ∂C/∂x
    of a strided correlation), which are never made: each tap's slab lands on every sh-th row
    and sw-th column.

    The work goes in blocks of samples (and of feature maps, where one sample's products are
    large) of `SCATTER_BLOCK_BYTES` of products, or of the output they are added into where that
    is larger (spread far apart): each block moves its samples' batch axis last
    (so each tap's add runs over contiguous stretches of W·n values), then runs one GEMM per
    kernel row p, whose kw taps are added while that row's products (a kh-th of the block's) are
    still in the core's cache, and writes its part of the output in NCHW order. No array the
    size of all the products, and no transposition of the whole batch."""
    n, c, height, width = x.shape
    f, _, kh, kw = k.shape
    top, bottom, left, right = padding
    dtype = np.result_type(x.dtype, k.dtype)
    (sh, sw), span_h, span_w = spread, (height - 1) * spread[0] + 1, (width - 1) * spread[1] + 1
    (dh, dw), (extent_h, extent_w) = dilation, reference.extent(k.shape, dilation)
    row0, col0 = extent_h - 1 - top, extent_w - 1 - left  # where the output starts in the full correlation
    out_h, out_w = span_h + top + bottom - extent_h + 1, span_w + left + right - extent_w + 1
    # the full correlation, and zeros past it where the padding reaches farther (bottom, right >= kernel)
    full_h, full_w = max(span_h + extent_h - 1, row0 + out_h), max(span_w + extent_w - 1, col0 + out_w)
    out = np.empty((n, f, out_h, out_w), dtype=dtype)
    k_taps = k.transpose(2, 3, 0, 1)  # (kh, kw, F, C)
    # a block's largest buffers: its products, or (spread far apart) the output they are added into
    per_sample = max(kh * kw * height * width, full_h * full_w) * f * np.dtype(dtype).itemsize
    samples = max(1, min(n, SCATTER_BLOCK_BYTES // max(per_sample, 1)))
    maps = max(1, f if samples > 1 or per_sample <= SCATTER_BLOCK_BYTES else f * SCATTER_BLOCK_BYTES // per_sample)
    map_blocks = -(-f // maps)

    def work(first: int, last: int) -> None:  # blocks first..last-1: a loop over cache-sized blocks
        for block in range(first, last):
            sample_block, map_block = divmod(block, map_blocks)
            n0, n1 = sample_block * samples, min(n, (sample_block + 1) * samples)
            f0, f1 = map_block * maps, min(f, (map_block + 1) * maps)
            columns = np.ascontiguousarray(x[n0:n1].transpose(1, 2, 3, 0)).reshape(c, height * width * (n1 - n0))
            rows = k_taps[:, :, f0:f1].reshape(kh, kw * (f1 - f0), c)
            row_products = np.empty((kw * (f1 - f0), height * width * (n1 - n0)), dtype=dtype)
            taps = row_products.reshape(kw, f1 - f0, height, width, n1 - n0)
            full = np.zeros((f1 - f0, full_h, full_w, n1 - n0), dtype=dtype)
            for p in range(kh):  # a loop over kernel rows: one product per row, its taps added from cache
                np.matmul(rows[p], columns, out=row_products)
                row = (kh - 1 - p) * dh
                for q in range(kw):  # a loop over the row's taps, each one whole-block add
                    col = (kw - 1 - q) * dw
                    full[:, row : row + span_h : sh, col : col + span_w : sw] += taps[q]
            out[n0:n1, f0:f1] = full[:, row0 : row0 + out_h, col0 : col0 + out_w].transpose(3, 0, 1, 2)

    blocks = -(-n // samples) * map_blocks
    with blas_single_threaded():
        parallel(work, blocks, n * per_sample, chunks_per_thread=blocks)  # every block a chunk: even shares
    return out


