"""Max pooling in the fast backend: the window maxima with the place of each, the routing of a
gradient to those places and its adjoint, the gather; and `index_add`, the scatter-add.

Tap (p, q) of every window at once is the strided slice x[..., p::sh, q::sw]: pooling is a loop
over the few window taps, each a whole-batch pass. A batch-last input (a convolution's output in
(C, H, W, N) memory) is pooled batch-last, each pass running along the batch, and its output,
routes and ∂C/∂x stay batch-last.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from tinygrad_cnn.backend.parallel import parallel

ndarray = np.ndarray


class Argmax(NamedTuple):
    """Where each window's first maximum lies: `flat` indices into x's memory (x.ravel(), or for
    a batch-last x the (C, H, W, N) array it is a view of), in the order of the output's memory:
    (*lead, H', W'), or (C, H', W', N) batch-last. `planes`: how many planes (a channel of one
    sample, or batch-last a channel of every sample) the routes come in, one after the other;
    `disjoint`: no cell lies in two windows, so each plane's routes stay in that plane."""
    flat: ndarray
    batch_last: bool
    planes: int
    disjoint: bool


def is_batch_last(x: ndarray) -> bool:
    """Whether x (N, C, H, W) lies batch-last in memory, (C, H, W, N) in C order, as a
    convolution's output from a batch-last product does (and not in NCHW order as well)."""
    return x.ndim == 4 and x.shape[0] > 1 and x.transpose(1, 2, 3, 0).flags.c_contiguous and not x.flags.c_contiguous


def maxpool2d(x: ndarray, size: tuple[int, int], stride: tuple[int, int],
              padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
              argmax: bool = True) -> tuple[ndarray, Argmax | None]:
    """Window max over the last two axes of x padded with −∞ (`padding`: (top, bottom), (left,
    right) cells), and where each window's first maximum among its cells inside x lies, in
    row-major order (the np.argmax rule; a NaN counts as the maximum): see `Argmax`; None, and
    only the maxima computed, if `argmax` is False. A batch-last x gives a batch-last output.
    The padding is never materialised.

    Tap (p, q) of every window at once is a strided slice of x; with padding, of the windows
    whose tap falls inside x (a rectangle of them). The maximum is a running np.maximum over the
    kh·kw taps; its tap index is then computed arithmetically from the comparisons tap ≠ max
    (a tap outside x counts as ≠), so that the first maximum wins. (np.argmax over a tiny last
    axis of copied windows is several times slower, and masked writes slower still.)
    """
    kh, kw = size
    sh, sw = stride
    (top, bottom), (left, right) = padding
    *lead, height, width = x.shape
    out_h, out_w = (height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1
    batch_last = is_batch_last(x)
    # planes (slices, H, W, batch): batch-last, the channels with the batch innermost; else one per plane
    planes = x.transpose(1, 2, 3, 0) if batch_last else x.reshape(math.prod(lead), height, width, 1)
    slices, batch = planes.shape[0], planes.shape[3]
    taps, inside, seed = _tap_plan(size, stride, padding, height, width)

    def work(start: int, stop: int) -> None:  # planes start..stop-1
        def tap(p: int, q: int) -> tuple[ndarray, tuple[slice, slice, slice]]:  # x's cells, their windows
            rows, cells_h, cols, cells_w = inside[p, q]
            return planes[start:stop, cells_h, cells_w], (slice(None), rows, cols)

        peak = y[start:stop]
        if seed is not None:
            np.copyto(peak, tap(*seed)[0])
        else:
            peak.fill(-np.inf)
        for t in taps:
            if t != seed:
                cells, windows = tap(*t)
                np.maximum(peak[windows], cells, out=peak[windows])
        if not argmax:
            return
        index = first[start:stop]
        # The first tap t with tap_t == max, as nested products, innermost first:
        # t = ne_0·(1 + ne_1·(1 + ne_2·(…(1 + ne_{T−2})))), where ne_t = (tap_t ≠ max).
        # (bool arrays viewed as uint8 bytes: no casts, no separate fill)
        if len(taps) == 1:
            index.fill(0)
        else:
            cells, windows = tap(*taps[-2])
            if cells.shape != peak.shape:
                index.fill(1)
            if index.dtype == np.uint8:
                np.not_equal(cells, peak[windows], out=index[windows].view(np.bool_))
            else:  # more than 256 taps
                np.copyto(index[windows], np.not_equal(cells, peak[windows]))
        for p, q in reversed(taps[:-2]):
            index += 1
            cells, windows = tap(p, q)
            index[windows] *= np.not_equal(cells, peak[windows]).view(np.uint8)
        if np.isnan(peak).any():  # rare: a NaN is the maximum of its window, as in np.argmax
            _first_nan_taps([tap(p, q) for p, q in taps], index)
        routes = flat[start:stop]
        np.take(offsets, index, out=routes, mode="clip")  # in range by construction: no checked copy
        routes += origins[start:stop]

    y = np.empty((slices, out_h, out_w, batch), dtype=x.dtype)
    if not argmax:
        parallel(work, slices, x.nbytes)
        return (y.transpose(3, 0, 1, 2) if batch_last else y.reshape(*lead, out_h, out_w)), None
    first = np.empty(y.shape, dtype=np.uint8 if kh * kw <= 256 else np.intp)
    flat = np.empty(y.shape, dtype=np.intp)
    origins = _window_origins(slices, height, width, out_h, out_w, sh, sw, batch, top, left)
    offsets = np.array([(p * width + q) * batch for p, q in taps], dtype=np.intp)
    parallel(work, slices, 3 * x.nbytes)
    disjoint = sh >= kh and sw >= kw
    if batch_last:
        return y.transpose(3, 0, 1, 2), Argmax(flat, True, slices, disjoint)
    return y.reshape(*lead, out_h, out_w), Argmax(flat.reshape(*lead, out_h, out_w), False, slices, disjoint)


@functools.lru_cache(maxsize=64)
def _tap_plan(size: tuple[int, int], stride: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
              height: int, width: int) -> tuple[list[tuple[int, int]], dict, tuple[int, int] | None]:
    """The window taps (p, q) in row-major order; for each, the windows whose tap lies inside x
    (rows, cols) and x's cells there (strided slices), as `_inside` gives them; and a tap inside
    x in every window, if one is, which starts the running maximum (else −∞ does).
    (Cached: a network pools the same few shapes every step; callers do not change the result.)"""
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = size, stride, padding
    out_h, out_w = (height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1
    taps = [(p, q) for p in range(kh) for q in range(kw)]
    inside = {(p, q): _inside(p - top, sh, out_h, height) + _inside(q - left, sw, out_w, width) for p, q in taps}
    seed = next((t for t in taps if inside[t][0] == slice(0, out_h) and inside[t][2] == slice(0, out_w)), None)
    return taps, inside, seed


def _inside(offset: int, stride: int, outputs: int, size: int) -> tuple[slice, slice]:
    """Along one axis: the windows (a slice of the outputs) whose cell at `offset` from the
    window's start (a window starts at i·stride − padding) lies inside x's `size` cells, and
    those cells (a strided slice of x)."""
    first = -(offset // stride) if offset < 0 else 0  # ⌈−offset / stride⌉
    last = max(first, min(outputs, (size - 1 - offset) // stride + 1))
    cell = first * stride + offset
    return slice(first, last), slice(cell, cell + (last - first - 1) * stride + 1 if last > first else cell, stride)


def maxpool2d_backward(dy: ndarray, argmax: Argmax, x_shape: tuple[int, ...]) -> ndarray:
    """∂C/∂x: each window's dy added at its maximum, zeros elsewhere (batch-last for a batch-last x).
    Disjoint windows route within their own plane, and the routes come plane by plane: each
    thread zeroes its planes and writes their routes while they are in its cache."""
    if argmax.batch_last:  # the routes run in (C, H', W', N) order: dy in that order too
        dy = dy.transpose(1, 2, 3, 0)
    routed = index_add(dy.reshape(-1), (math.prod(x_shape),), argmax.flat.reshape(-1), unique=argmax.disjoint,
                       groups=argmax.planes if argmax.disjoint else 1)
    if not argmax.batch_last:
        return routed.reshape(x_shape)
    n, c, height, width = x_shape
    return routed.reshape(c, height, width, n).transpose(3, 0, 1, 2)


def maxpool2d_gather(g: ndarray, argmax: Argmax) -> ndarray:
    """g (x's shape) read at each window's maximum: the pooling with its argmax held fixed."""
    if not argmax.batch_last:
        return g.reshape(-1)[argmax.flat]
    return g.transpose(1, 2, 3, 0).reshape(-1)[argmax.flat].transpose(3, 0, 1, 2)


def _first_nan_taps(taps: list[tuple[ndarray, tuple[slice, ...]]], first: ndarray) -> None:
    """Where a window holds a NaN, the tap of its first NaN (np.argmax's answer), written into
    `first`; `taps` as `maxpool2d`'s work makes them: each tap's cells and the windows they are in."""
    found = np.zeros(first.shape, dtype=bool)
    for t, (cells, windows) in enumerate(taps):
        nan = np.isnan(cells) & ~found[windows]
        first[windows][nan] = t
        found[windows] |= nan


@functools.lru_cache(maxsize=32)
def _window_origins(slices: int, height: int, width: int, out_h: int, out_w: int, sh: int, sw: int,
                    batch: int = 1, top: int = 0, left: int = 0) -> ndarray:
    """Flat index of each pooling window's top-left cell in planes (slices, H, W, batch), as an
    array (slices, H', W', batch); a window starts `top` rows and `left` columns before its
    stride's multiple, so that with padding this "cell" may lie outside its plane, and only
    the cell at a tap inside x is ever used (cached: a training loop repeats shapes)."""
    rows = (np.arange(out_h)[:, None] * sh - top) * width + np.arange(out_w)[None, :] * sw - left
    cells = np.arange(slices)[:, None, None] * (height * width) + rows
    origins = cells[..., None] * batch + np.arange(batch)
    origins.setflags(write=False)
    return origins


def index_add(values: ndarray, shape: tuple[int, ...], index: object, unique: bool | None = None,
              groups: int = 1) -> ndarray:
    """zeros(shape) with `values` added at `index`; repeated positions add up (np.add.at).
    `unique`: whether the index can name no position twice (None: decided from the index).

    `groups` > 1 (flat distinct positions only, as max pooling's routes, plane by plane): index
    and values come in that many equal runs, and the r-th run's positions lie in the r-th of as
    many equal parts of the flat output. Each thread then zeroes its parts and writes their
    values while they are in its cache, in one pass over the threads."""
    if unique is None:
        unique = index_is_unique(index)
    out = np.empty(shape, dtype=values.dtype)
    flat = (unique and isinstance(index, np.ndarray) and index.dtype.kind in "iu"
            and index.ndim == 1 == out.ndim == values.ndim)
    if flat and groups > 1 and len(index) % groups == 0 == out.size % groups:  # max pooling's routes
        cells, routes = out.size // groups, len(index) // groups

        def zero_and_write(start: int, stop: int) -> None:  # groups start..stop-1: disjoint cells
            out[start * cells : stop * cells].fill(0)
            out[index[start * routes : stop * routes]] = values[start * routes : stop * routes]

        parallel(zero_and_write, groups, out.nbytes + values.nbytes + index.nbytes)
        return out
    if len(shape):
        parallel(lambda start, stop: out[start:stop].fill(0), shape[0], out.nbytes)
    else:
        out.fill(0)
    if flat:  # flat distinct positions

        def write(start: int, stop: int) -> None:  # the parts write disjoint cells
            out[index[start:stop]] = values[start:stop]

        parallel(write, len(index), 4 * values.nbytes)
    elif unique:
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


def index_is_unique(index: object) -> bool:
    """Whether an index can name no position twice (integer arrays can; slices, ints, None,
    Ellipsis and boolean masks cannot)."""
    parts = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)
