"""im2col for the fast backend: the windows of an input gathered once, in the memory order that
makes the copy and the products fastest for the shapes at hand, and correlations computed as
matrix products on the windows as they lie.

The windows of a padded input x form a 6-axis array
    W[n, c, i, j, p, q] = x_padded[n, c, i·sh + p, j·sw + q]
(sample, channel, output row and column, kernel tap row and column), and a correlation is the
contraction y[n, f, i, j] = Σ_{c,p,q} W[n, c, i, j, p, q] · k[f, c, p, q]. The same W serves the
weight gradient: ∂C/∂k[f, c, p, q] = Σ_{n,i,j} W[n, c, i, j, p, q] · dy[n, f, i, j] is the same
contraction with W's axes relabelled (`windows_of_transposed`: n and c swapped, (i, j) and (p, q)
swapped) and dy as the kernel, so a convolution's backward need not gather its input again.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cnn.backend.elementwise import batch_to_back, copy_into, elementwise
from tinygrad_cnn.backend.reference import extent
from tinygrad_cnn.backend.linalg import matmul

ndarray = np.ndarray


def pad2d(x: ndarray, padding: tuple[int, int, int, int]) -> ndarray:
    """Zero-pad the last two axes by (top, bottom, left, right); a negative amount crops."""
    top, bottom, left, right = padding
    if min(padding) < 0:
        height, width = x.shape[-2:]
        x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
    if max(padding) > 0:  # zeros and one copy: np.pad's generality costs more than the copy at small sizes
        top, bottom, left, right = (max(p, 0) for p in padding)
        height, width = x.shape[-2:]
        padded = np.zeros(x.shape[:-2] + (height + top + bottom, width + left + right), dtype=x.dtype)
        padded[..., top:top + height, left:left + width] = x
        x = padded
    return x


_N, _C, _I, _J, _P, _Q = range(6)
_CONTRACTED = frozenset((_C, _P, _Q))
_SAMPLE_MAJOR = (_N, _C, _P, _Q, _I, _J)   # one (C·kh·kw, H'·W') matrix per sample
_BATCH_LAST = (_C, _P, _Q, _I, _J, _N)     # one (C·kh·kw, H'·W'·N) matrix, copied in runs of W'·N
_ROWS = (_N, _I, _J, _C, _P, _Q)           # one (N·H'·W', C·kh·kw) matrix, copied in runs of kw


def unfold(x: ndarray, kernel_size: tuple[int, int], padding: tuple[int, int, int, int],
           stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """The windows W[n, c, i, j, p, q] of x (N, C, H, W) padded by `padding` (the kernel's taps
    `dilation` apart), copied into fresh memory (a 6-axis view of it is returned). numpy copies
    fastest along long contiguous runs of the source, so the memory order follows the shape
    (measured on the MNIST network's shapes, see benchmarks/ops.py):
    - kernel wider than the output (∂C/∂k = x ⋆ dy, where dy is the kernel): rows of runs of kw;
    - large outputs: sample-major, runs of W' (one product per sample lands in NCHW order);
    - small outputs: batch-last, from x moved to (C, H, W, N): runs of W'·N.
    """
    kh, kw = kernel_size
    sh, sw = stride
    x = pad2d(x, padding)
    n, c, height, width = x.shape
    span_h, span_w = extent(kernel_size, dilation)
    out_h, out_w = (height - span_h) // sh + 1, (width - span_w) // sw + 1
    if kw > out_w:
        order = _ROWS
    elif out_h * out_w >= 256:
        order = _SAMPLE_MAJOR
    else:
        order = _BATCH_LAST
    if order[-1] == _N:
        batch_last = x.transpose(1, 2, 3, 0)  # a view when x is batch-last already (a conv's output)
        if not batch_last.flags.c_contiguous:
            batch_last = batch_to_back(x)
        windows = window_view(batch_last.transpose(3, 0, 1, 2), (kh, kw), stride, batch_last, dilation)
    else:
        windows = window_view(x, (kh, kw), stride, dilation=dilation)
    # The matrix the product reads has rows of the last run of axes. Rows a multiple of 4 KiB
    # apart map onto few cache sets, which slows BLAS down: such rows get 64 bytes of padding.
    runs = _runs(tuple(axis for axis in order if windows.shape[axis] > 1)) or [[]]
    row = math.prod([windows.shape[axis] for axis in runs[-1]])
    pad = 64 // x.itemsize if (row * x.itemsize) % 4096 == 0 and windows.size > row else 0
    buffer = np.empty((windows.size // max(row, 1), row + pad), dtype=x.dtype)
    copied = buffer[:, :row].reshape([windows.shape[axis] for axis in order])  # a view of buffer
    copy_into(copied, windows.transpose(order))
    return copied.transpose(_INVERSE[order])



def window_view(x: ndarray, kernel_size: tuple[int, int], stride: tuple[int, int],
                memory: ndarray | None = None, dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """The read-only view W[n, c, i, j, p, q] = x[n, c, i·sh + p·dh, j·sw + q·dw] of x (N, C, H, W)'s
    memory: sliding_window_view with a stride (and the taps `dilation` apart), built directly
    (numpy's own checks cost more than the view). `memory`: the C-contiguous array x is a view of
    with the same first element (x itself where x is C-contiguous)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    n, c, height, width = x.shape
    span_h, span_w = extent(kernel_size, dilation)
    shape = (n, c, (height - span_h) // sh + 1, (width - span_w) // sw + 1, kh, kw)
    s_n, s_c, s_h, s_w = x.strides
    strides = (s_n, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw)
    if memory is None and x.flags.c_contiguous:
        memory = x
    try:  # numpy checks that the view stays inside memory's buffer
        view = np.ndarray(shape, x.dtype, buffer=memory, strides=strides) if memory is not None else None
    except (TypeError, ValueError, BufferError):
        view = None
    if view is None:
        view = as_strided(x, shape, strides, writeable=False)
    view.flags.writeable = False
    return view


_INVERSE = {order: tuple(int(axis) for axis in np.argsort(order)) for order in (_SAMPLE_MAJOR, _BATCH_LAST, _ROWS)}


@functools.lru_cache(maxsize=256)
def _runs(order: tuple[int, ...]) -> list[list[int]]:
    """Consecutive axes of `order` grouped by kind: contracted (c, p, q) or kept (n, i, j).
    (Cached: a training loop asks about the same few orders; callers do not change the lists.)"""
    runs: list[list[int]] = []
    for axis in order:
        if runs and (axis in _CONTRACTED) == (runs[-1][0] in _CONTRACTED):
            runs[-1].append(axis)
        else:
            runs.append([axis])
    return runs


def windows_of_transposed(windows: ndarray) -> ndarray:
    """From the stride-1 windows W of x to those of xᵀ (N and C swapped) against a kernel of
    W's output size, as ∂C/∂k = xᵀ ⋆ dyᵀ sees them: W'[c, n, p, q, i, j] = W[n, c, i, j, p, q]."""
    return windows.transpose(1, 0, 4, 5, 2, 3)


def correlate_windows(windows: ndarray, k: ndarray, bias: ndarray | None = None) -> ndarray:
    """y[n, f, i, j] = Σ_{c,p,q} W[n, c, i, j, p, q] · k[f, c, p, q] (+ bias[f]), as matrix
    products on W's memory as it lies. W's axes, outermost first, fall into runs of contracted
    axes (c, p, q: 'K') and kept axes (n, i, j: 'O'); each pattern is one BLAS call without a
    copy of W: K|O: k @ W;  O|K: W @ kᵀ;  O|K|O: k @ W batched over the first run;  K|O|K: W @ k
    batched over the first run, then summed over it. Only the small k and the output are
    rearranged. The bias is added to each part of the product as it comes out of BLAS."""
    f = k.shape[0]
    if windows.size == 0 or k.size == 0:  # an empty batch or map: nothing to multiply
        y = np.zeros((windows.shape[_N], f, windows.shape[_I], windows.shape[_J]),
                     dtype=np.result_type(windows.dtype, k.dtype))
        if bias is not None:
            add_bias(y, bias)
        return y
    per_map = None if bias is None else bias.reshape(f, 1)
    order, laid_axes, runs, kinds, sizes = _windows_plan(windows.shape, windows.strides)
    # In unfold's layouts each run merges into one matrix axis without a copy (reshape would
    # copy any other layout, which stays correct, only slower).
    laid = windows.transpose(laid_axes)
    k_axis = {_C: 1, _P: 2, _Q: 3}

    def weights(*k_runs: list[int]) -> ndarray:  # k as (F, K1, K2, ...) in the runs' order
        in_runs = [a for run in k_runs for a in run]
        axes = [k_axis[a] for a in in_runs + [a for a in (_C, _P, _Q) if a not in in_runs]]  # length 1 last
        return k.transpose([0] + axes).reshape([f] + [math.prod(windows.shape[a] for a in run) for run in k_runs])

    # the bias along the product's f axis: its rows, or (O|K) its columns
    if kinds == "K":  # every kept axis has length 1
        y, labels = matmul(weights(runs[0]), laid.reshape(sizes[0], 1), per_map).reshape(f), ["f"]
    elif kinds == "KO":
        y, labels = matmul(weights(runs[0]), laid.reshape(sizes), per_map), ["f"] + runs[1]
    elif kinds == "OK":
        y = matmul(laid.reshape(sizes), weights(runs[1]).T, None if bias is None else per_map.T)
        labels = runs[0] + ["f"]
    elif kinds == "OKO":
        y, labels = matmul(weights(runs[1]), laid.reshape(sizes), per_map), runs[0] + ["f"] + runs[2]
    elif kinds == "KOK":
        stacked = weights(runs[0], runs[2]).transpose(1, 2, 0)                    # (K1, K2, F)
        y, labels = matmul(laid.reshape(sizes), stacked).sum(axis=0), runs[1] + ["f"]
        if bias is not None:
            y += per_map.T
    else:  # some other interleaving: copy W into K|O
        keep = [a for a in order if a not in _CONTRACTED]
        contracted = [a for a in order if a in _CONTRACTED]
        moved = windows.transpose(contracted + keep + laid_axes[len(order):])  # length-1 axes last
        matrix = copy_into(np.empty(moved.shape, dtype=moved.dtype), moved)
        y = matmul(weights(contracted), matrix.reshape(math.prod(windows.shape[a] for a in contracted), -1), per_map)
        labels = ["f"] + keep
    size_of = {"f": f, _N: windows.shape[_N], _I: windows.shape[_I], _J: windows.shape[_J]}
    y = y.reshape([size_of[label] for label in labels])
    axes, batch_last = _nchw_axes(tuple(labels))
    if batch_last:  # the batch axis last, as from K|O:
        y = y.transpose(axes)  # an NCHW view of batch-last memory, which the next ops keep (no copy)
    elif axes is not None:
        moved = y.transpose(axes)
        y = copy_into(np.empty(moved.shape, dtype=moved.dtype), moved)
    return y.reshape(windows.shape[_N], f, windows.shape[_I], windows.shape[_J])


@functools.lru_cache(maxsize=64)
def _nchw_axes(labels: tuple[object, ...]) -> tuple[list[int] | None, bool]:
    """The permutation that takes a product's axes (labelled "f", _N, _I, _J) to NCHW order
    (None: already in it), and whether it only moves the batch axis from last to first."""
    wanted = [label for label in ("f", _N, _I, _J) if label in labels]
    axes = [labels.index(label) for label in sorted(wanted, key=[_N, "f", _I, _J].index)]
    if axes == list(range(len(axes))):
        return None, False
    return axes, axes == [len(axes) - 1] + list(range(len(axes) - 1))


@functools.lru_cache(maxsize=256)
def _windows_plan(shape: tuple[int, ...], strides: tuple[int, ...]
                  ) -> tuple[list[int], list[int], list[list[int]], str, list[int]]:
    """How correlate_windows reads windows of this shape and these strides: the axes longer
    than 1 from outermost to innermost in memory (axes of length 1 have no place in memory:
    they go last), their runs of contracted and kept axes, the runs' kinds ('K'/'O') and sizes.
    (Cached: a training loop repeats its shapes; callers do not change the lists.)"""
    order = [axis for axis in sorted(range(6), key=lambda axis: -strides[axis]) if shape[axis] > 1]
    ones = [axis for axis in range(6) if shape[axis] == 1]
    runs = _runs(tuple(order))
    kinds = "".join("K" if run[0] in _CONTRACTED else "O" for run in runs)
    sizes = [math.prod([shape[a] for a in run]) for run in runs]
    return order, order + ones, runs, kinds, sizes


def add_bias(y: ndarray, bias: ndarray) -> None:
    """y[:, f] += bias[f], in place: one shared bias per feature map of y (N, F, H, W)."""
    elementwise(np.add, y, bias.reshape(1, -1, 1, 1), out=y)


