"""The reference backend: every array function the ops call, written in plain numpy as the
formulas say, one numpy call or a few each. It is the specification the fast backend is tested
against, and a backend of its own (TINYGRAD_CNN_BACKEND=reference): slower, never different in
what it computes (results agree to rounding).

Arrays in, arrays out; shapes follow the article: x (N, C, H, W) an input, k (F, C, kh, kw) a
kernel, y (N, F, H', W') a feature map, dy = ∂C/∂y.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.special
from numpy.lib.stride_tricks import sliding_window_view

ndarray = np.ndarray
Padding = tuple[int, int, int, int]

# ---- elementwise: numpy's broadcasting and type rules ----------------------------------------
add = np.add
subtract = np.subtract
multiply = np.multiply
divide = np.divide
power = np.power
negative = np.negative
exp = np.exp
log = np.log
tanh = np.tanh
erf = scipy.special.erf


def where(condition: ndarray, a: ndarray, b: ndarray) -> ndarray:
    """a where the condition holds, else b (broadcast together)."""
    return np.where(condition, a, b)


def astype(a: ndarray, dtype: np.dtype) -> ndarray:
    return a.astype(dtype)


def relu(z: ndarray) -> ndarray:
    """max(z, 0)."""
    return np.maximum(z, 0)


def relu_backward(dy: ndarray, z: ndarray) -> ndarray:
    """dy · [z > 0]."""
    return dy * (z > 0)


def sigmoid(z: ndarray) -> ndarray:
    """σ(z) = 1 / (1 + e^(−z)). For very negative z, e^(−z) overflows to ∞ and 1/(1+∞) = 0 is the
    exact answer: that overflow is not an error."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


def sigmoid_backward(dy: ndarray, a: ndarray) -> ndarray:
    """dy · a(1 − a), with a = σ(z)."""
    return dy * a * (1 - a)


def silu(z: ndarray) -> ndarray:
    """z·σ(z) = z / (1 + e^(−z)) (for very negative z, z/∞ = −0: the limit)."""
    with np.errstate(over="ignore"):
        return z / (1 + np.exp(-z))


def silu_backward(dy: ndarray, z: ndarray) -> ndarray:
    """dy · σ(z)(1 + z(1 − σ(z))), SiLU's derivative."""
    s = sigmoid(z)
    return dy * (s * (1 + z * (1 - s)))


# ---- reductions ---------------------------------------------------------------------------------
def reduce_sum(a: ndarray, axis: tuple[int, ...], keepdims: bool) -> ndarray:
    return np.asarray(a.sum(axis=axis, keepdims=keepdims))


def reduce_max(a: ndarray, axis: tuple[int, ...], keepdims: bool) -> ndarray:
    return np.asarray(a.max(axis=axis, keepdims=keepdims))


def first_argmax_mask(a: ndarray, axes: tuple[int, ...]) -> ndarray:
    """One-hot mask (in a's dtype) of the first maximum of each slice over `axes`, in row-major
    order (the np.argmax rule)."""
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, rest + list(axes))  # the reduced axes last
    flat = moved.reshape(moved.shape[: len(rest)] + (-1,))
    mask = np.zeros(flat.shape, dtype=a.dtype)
    np.put_along_axis(mask, flat.argmax(axis=-1)[..., None], 1, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(rest + list(axes)))


def log_softmax(z: ndarray, axes: tuple[int, ...]) -> ndarray:
    """z − m − ln Σ_axes e^(z − m), m = max_axes z (so every exponent is ≤ 0)."""
    shifted = z - z.max(axis=axes, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axes, keepdims=True))
    return shifted


# ---- movement -----------------------------------------------------------------------------------
broadcast_to = np.broadcast_to


def reshape(a: ndarray, shape: tuple[int, ...]) -> ndarray:
    return a.reshape(shape)


def transpose(a: ndarray, axes: tuple[int, ...]) -> ndarray:
    return a.transpose(axes)


def concatenate(arrays: list[ndarray], axis: int) -> ndarray:
    return np.concatenate(arrays, axis=axis)


def getitem(a: ndarray, index: object) -> ndarray:
    return a[index]


def index_add(v: ndarray, shape: tuple[int, ...], index: object) -> ndarray:
    """zeros(shape) with v added at `index`; a position named twice receives the sum."""
    out = np.zeros(shape, dtype=v.dtype)
    np.add.at(out, index, v)
    return out


# ---- products -----------------------------------------------------------------------------------
matmul = np.matmul


def linear(x: ndarray, w: ndarray, b: ndarray | None = None) -> ndarray:
    """x @ wᵀ (+ b) for x (..., in), w (out, in), b (out,)."""
    y = x @ w.T
    return y if b is None else y + b


# ---- convolution --------------------------------------------------------------------------------
def pad2d(x: ndarray, padding: Padding) -> ndarray:
    """Zeros around the last two axes, (top, bottom, left, right); a negative amount crops."""
    top, bottom, left, right = padding
    height, width = x.shape[-2:]
    x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
    widths = [(0, 0)] * (x.ndim - 2) + [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
    return np.pad(x, widths)


def windows(x: ndarray, kernel_size: tuple[int, int], padding: Padding, stride: tuple[int, int],
            dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """W[n, c, i, j, p, q] = x_padded[n, c, i·sh + p·dh, j·sw + q·dw]: every window the kernel
    meets, its taps `dilation` apart."""
    (sh, sw), (dh, dw) = stride, dilation
    span = extent(kernel_size, dilation)
    return sliding_window_view(pad2d(x, padding), span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]


def extent(kernel_size: tuple[int, ...], dilation: tuple[int, int]) -> tuple[int, int]:
    """The rows and columns a kernel (..., kh, kw) with its taps `dilation` apart spans."""
    (kh, kw), (dh, dw) = kernel_size[-2:], dilation
    return (kh - 1) * dh + 1, (kw - 1) * dw + 1


def by_groups(function: Callable[..., Any], groups: int, split: tuple[tuple[ndarray | None, int], ...],
              join_axis: int, *args: Any) -> ndarray:
    """A grouped convolution's function as `groups` ungrouped ones: each (array, axis) of `split`
    cut into `groups` equal parts along its axis, function(*parts, *args) per group, the results
    joined along `join_axis`."""
    pieces = [np.split(array, groups, axis=axis) if array is not None else [None] * groups for array, axis in split]
    return np.concatenate([function(*parts, *args) for parts in zip(*pieces)], axis=join_axis)


def conv2d(x: ndarray, k: ndarray, b: ndarray | None, padding: Padding, stride: tuple[int, int], groups: int = 1,
           dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """y[n, f, i, j] = b[f] + Σ_c Σ_p Σ_q x_padded[n, c, i·sh + p·dh, j·sw + q·dw] · k[f, c, p, q]
    (the article's feature map: a cross-correlation with shared weights plus a shared bias; with
    `dilation`, the kernel's taps lie that far apart). With `groups`, x's channels and k's maps
    split into that many groups, each map correlating only its group's channels (k is
    (F, C/groups, kh, kw))."""
    if groups > 1:
        return by_groups(conv2d, groups, ((x, 1), (k, 0), (b, 0)), 1, padding, stride, 1, dilation)
    y = np.tensordot(windows(x, k.shape[2:], padding, stride, dilation), k, axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', F)
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    if b is not None:
        y += b.reshape(-1, 1, 1)
    return y


def conv2d_grad_k(x: ndarray, dy: ndarray, kernel_size: tuple[int, int], padding: Padding,
                  stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> ndarray:
    """∂C/∂k[f, c, p, q] = Σ_n Σ_i Σ_j x_padded[n, c, i·sh + p·dh, j·sw + q·dw] · dy[n, f, i, j]: the
    valid cross-correlation of the input with ∂C/∂y, summed over the batch (within each group)."""
    if groups > 1:
        return by_groups(conv2d_grad_k, groups, ((x, 1), (dy, 1)), 0, kernel_size, padding, stride, 1, dilation)
    return np.ascontiguousarray(np.tensordot(dy, windows(x, kernel_size, padding, stride, dilation),
                                             axes=([0, 2, 3], [0, 2, 3])))  # (F, C, kh, kw)


def full_padding(dy_shape: tuple[int, ...], k_shape: tuple[int, ...], x_shape: tuple[int, ...], padding: Padding,
                 stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> Padding:
    """The padding of dy, put back on the stride-1 grid, whose correlation with the rotated kernel
    is ∂C/∂x: kh − 1 and kw − 1 (of the kernel's extent, dilated) less the forward's padding, and
    on the far sides also the rows and columns no kept window reached (a stride's remainder),
    which get zeros."""
    (top, bottom, left, right), (sh, sw), (kh, kw) = padding, stride, extent(k_shape, dilation)
    rest_h = x_shape[2] + top + bottom - kh - (dy_shape[2] - 1) * sh
    rest_w = x_shape[3] + left + right - kw - (dy_shape[3] - 1) * sw
    return kh - 1 - top, kh - 1 - bottom + rest_h, kw - 1 - left, kw - 1 - right + rest_w


def rotated(k: ndarray) -> ndarray:
    """k (F, C, kh, kw) rotated 180° with F and C swapped: the kernel of the full convolution."""
    return k[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def conv2d_grad_x(dy: ndarray, k: ndarray, x_shape: tuple[int, ...], padding: Padding,
                  stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1),
                  correlate: Callable[..., ndarray] | None = None) -> ndarray:
    """∂C/∂x = dy ∗ k, the article's full convolution: dy put back on the stride-1 grid (zeros
    between its values), padded by `full_padding`, cross-correlated with k rotated 180° and
    dilated as in the forward (by `correlate`, a backend's conv2d: this module's unless given).
    A negative amount (the forward padded more than the kernel's extent − 1) drops outputs from
    that side, after the zeros of the other sides are in place. Grouped: each group's maps give
    their own channels' gradient."""
    if groups > 1:
        shape = (x_shape[0], x_shape[1] // groups) + tuple(x_shape[2:])
        return by_groups(conv2d_grad_x, groups, ((dy, 1), (k, 0)), 1, shape, padding, stride, 1, dilation, correlate)
    (sh, sw), (n, f, h, w) = stride, dy.shape
    if stride != (1, 1):
        dilated = np.zeros((n, f, (h - 1) * sh + 1, (w - 1) * sw + 1), dtype=dy.dtype)
        dilated[:, :, ::sh, ::sw] = dy
        dy = dilated
    full = full_padding((n, f, h, w), k.shape, x_shape, padding, stride, dilation)
    y = (correlate or conv2d)(dy, rotated(k), None, tuple(max(p, 0) for p in full), (1, 1), 1, dilation)
    top, bottom, left, right = (max(-p, 0) for p in full)
    return y[:, :, top:y.shape[2] - bottom, left:y.shape[3] - right]


# ---- batch normalization ---------------------------------------------------------------------------
def batch_norm(x: ndarray, weight: ndarray, bias: ndarray, axes: tuple[int, ...], eps: float
               ) -> tuple[ndarray, ndarray, ndarray, None]:
    """y = x̂·weight + bias with x̂ = (x − μ)/√(σ² + ε), μ and σ² the mean and biased variance of
    x over `axes` (weight and bias broadcast against x: one value per channel). Also returns μ and
    σ² (keepdims), and what `batch_norm_backward` and `batch_norm_weight_grad` may reuse: nothing,
    here."""
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias, mean, var, None


def _normalized(x: ndarray, axes: tuple[int, ...], eps: float) -> tuple[ndarray, ndarray]:
    """x̂ and s = 1/√(σ² + ε)."""
    s = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return (x - x.mean(axis=axes, keepdims=True)) * s, s


def batch_norm_backward(dy: ndarray, x: ndarray, weight: ndarray, axes: tuple[int, ...], eps: float,
                        saved: Any = None) -> ndarray:
    """∂C/∂x = weight·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩)/√(σ² + ε), ⟨·⟩ the mean over `axes`."""
    x_hat, s = _normalized(x, axes, eps)
    return weight * s * (dy - dy.mean(axis=axes, keepdims=True) - x_hat * (dy * x_hat).mean(axis=axes, keepdims=True))


def batch_norm_weight_grad(dy: ndarray, x: ndarray, axes: tuple[int, ...], eps: float, saved: Any = None) -> ndarray:
    """∂C/∂weight = Σ dy·x̂ over `axes` (keepdims)."""
    return (dy * _normalized(x, axes, eps)[0]).sum(axis=axes, keepdims=True)


# ---- max pooling --------------------------------------------------------------------------------
def maxpool2d(x: ndarray, size: tuple[int, int], stride: tuple[int, int],
              padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
              argmax: bool = True) -> tuple[ndarray, ndarray | None]:
    """y = the maximum of each window of the last two axes of x padded with −∞ (`padding`: the
    (top, bottom), (left, right) cells), and argmax: the flat index into x (x.ravel()) of each
    window's first maximum among its cells inside x, in row-major order (np.argmax's rule: a NaN
    counts as the maximum), an array of y's shape; None if `argmax` is False (no backward will
    read it). Every window must hold a cell of x."""
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = size, stride, padding
    height, width = x.shape[-2:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)], constant_values=-np.inf)
    inside = np.pad(np.ones((height, width), bool), [(top, bottom), (left, right)])
    taps = sliding_window_view(padded, size, axis=(-2, -1))[..., ::sh, ::sw, :, :]  # (..., H', W', kh, kw)
    taps = taps.reshape(taps.shape[:-2] + (kh * kw,))
    valid = sliding_window_view(inside, size)[::sh, ::sw].reshape(taps.shape[-3:])
    y = taps.max(axis=-1)
    if not argmax:
        return y, None
    found = np.where(np.isnan(y)[..., None], np.isnan(taps), taps == y[..., None]) & valid
    tap = found.argmax(axis=-1)
    # the tap (p, q) of window (i, j) is x's cell (i·sh + p − top, j·sw + q − left) of the window's plane
    *lead, out_h, out_w = y.shape
    rows = np.arange(out_h)[:, None] * sh + tap // kw - top
    cols = np.arange(out_w)[None, :] * sw + tap % kw - left
    planes = np.arange(int(np.prod(lead))).reshape(lead + [1, 1]) if lead else 0
    return y, (planes * height + rows) * width + cols


def maxpool2d_backward(dy: ndarray, argmax: ndarray, x_shape: tuple[int, ...]) -> ndarray:
    """∂C/∂x: each window's dy added at its maximum (the argmax), zeros elsewhere."""
    dx = np.zeros(int(np.prod(x_shape)), dtype=dy.dtype)
    np.add.at(dx, argmax.ravel(), dy.ravel())
    return dx.reshape(x_shape)


def maxpool2d_gather(g: ndarray, argmax: ndarray) -> ndarray:
    """g (x's shape) read at each window's maximum: the pooling with its argmax held fixed."""
    return g.reshape(-1)[argmax]
