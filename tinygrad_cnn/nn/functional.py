"""``torch.nn.functional`` for tinygrad_cnn: every name of ``tinygrad_cnn.functional`` (the
article's ops, conv2d, linear, the losses), and the CNN functions a PyTorch script reaches for,
each composed from the primitives (so each differentiates twice):

activations (activations.py) ``relu``, ``leaky_relu``, ``elu``, ``gelu``, ``silu``, ``softplus``, ``hardtanh``,
``relu6``, ``hardsigmoid``, ``hardswish``, and ``softmax``/``log_softmax(dim)``;
pooling ``max_pool2d`` (padding, dilation, ceil_mode, return_indices), ``avg_pool2d``, ``adaptive_avg_pool2d``;
``batch_norm``, ``group_norm``, ``layer_norm`` (normalization.py); ``pad`` (constant); ``dropout``, ``dropout2d``;
``interpolate`` (upsample.py); losses with PyTorch's options (losses.py).
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from tinygrad_cnn import creation, ops, tensor_ops
from tinygrad_cnn.backend import reference
from tinygrad_cnn.functional import *  # noqa: F401,F403 -- the article's and PyTorch's shared names
from tinygrad_cnn.functional import __all__ as _SHARED
from tinygrad_cnn import functional as article
from tinygrad_cnn.functional import int_pair, tensor_argument
from tinygrad_cnn.ops.conv import input_grad
from tinygrad_cnn.nn.activations import (elu, gelu, hardsigmoid, hardswish, hardtanh, leaky_relu, relu, relu6,
                                         silu, softplus)
from tinygrad_cnn.nn.activations import inplace_flag, number as _number
from tinygrad_cnn.nn.upsample import interpolate
from tinygrad_cnn.select_ops import one_hot
from tinygrad_cnn.nn.normalization import batch_norm, group_norm, layer_norm
from tinygrad_cnn.nn.losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, l1_loss,
                                    mse_loss, nll_loss)
from tinygrad_cnn.tensor import Tensor


def softmax(input: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:  # noqa: A002 -- torch's names
    """e^x / Σ e^x along `dim` (numpy's axis= too); without one, PyTorch's implicit choice."""
    return article.softmax(input, axis=_softmax_dim(input, dim, axis, "softmax"))


def log_softmax(input: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:  # noqa: A002
    """x − ln Σ e^x along `dim` (numpy's axis= too), one primitive; without one, PyTorch's implicit choice."""
    return article.log_softmax(input, axis=_softmax_dim(input, dim, axis, "log_softmax"))


def _softmax_dim(input: Any, dim: int | None, axis: int | None, name: str) -> int:
    """`dim` (or numpy's `axis`); neither given, PyTorch's deprecated implicit one, with its
    warning: dim 0 of a 0-, 1- or 3-dim input (one unbatched sample), else dim 1 (the classes)."""
    if dim is not None or axis is not None:
        return dim if axis is None else axis
    ndim = getattr(input, "ndim", np.ndim(input))
    implicit = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated (as in PyTorch); give dim={implicit}",
                  UserWarning, stacklevel=3)
    return implicit


# ---- convolution ------------------------------------------------------------------------------------
def _groups(groups: Any, channels: int, maps: int, name: str) -> int:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1 \
            or channels % groups or maps % groups:
        raise ValueError(f"{name}: groups must be an int >= 1 dividing {channels} input and {maps} output "
                         f"channels, got {groups!r}")
    return int(groups)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """PyTorch's conv2d, with dilation (the kernel's taps that far apart) and groups (the channels
    split into `groups` independent correlations), both the primitive's own;
    tinygrad_cnn.functional.conv2d, the article's primitive, does the rest. One image (C, H, W)
    gives one output (F, H', W'), as PyTorch's unbatched input."""
    if isinstance(x, Tensor) and x.ndim == 3:
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if groups == 1:
        return article.conv2d(x, weight, bias, stride, padding, dilation=dilation)
    x = tensor_argument(x, "x", "conv2d")
    weight = tensor_argument(weight, "weight", "conv2d")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: expects x (N, C, H, W) and weight (F, C/groups, kh, kw); got x {x.shape}, "
                         f"weight {weight.shape}")
    groups = _groups(groups, x.shape[1], weight.shape[0], "conv2d")
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"conv2d: weight {weight.shape} has {weight.shape[1]} input channels per group; x {x.shape} "
                         f"has {x.shape[1]} for {groups} groups")
    return article.conv2d(x, weight, bias, stride, padding, groups, dilation)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """PyTorch's conv_transpose2d: the article's ∂C/∂x made public, the full convolution of x
    (N, C_in, H, W) with weight (C_in, C_out/groups, kh, kw) -> (N, C_out, H', W'),
    H' = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1 (and W' alike).
    One image (C_in, H, W) gives one output (C_out, H', W'), as PyTorch's unbatched input."""
    x = tensor_argument(x, "x", "conv_transpose2d")
    if x.ndim == 3:
        return conv_transpose2d(x.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    weight = tensor_argument(weight, "weight", "conv_transpose2d")
    x, weight = x._promote(weight)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv_transpose2d: expects x (N, C_in, H, W) and weight (C_in, C_out/groups, kh, kw); "
                         f"got x {x.shape}, weight {weight.shape}")
    groups = _groups(groups, x.shape[1], weight.shape[0], "conv_transpose2d")
    if weight.shape[0] != x.shape[1]:
        raise ValueError(f"conv_transpose2d: weight {weight.shape} is for {weight.shape[0]} input channels, x {x.shape}")
    (sh, sw), (ph, pw), (oh, ow) = (int_pair(stride, "stride"), _nonnegative_pair(padding, "padding"),
                                    _nonnegative_pair(output_padding, "output_padding"))
    if oh >= sh and oh >= int_pair(dilation, "dilation")[0] or ow >= sw and ow >= int_pair(dilation, "dilation")[1]:
        raise ValueError(f"conv_transpose2d: output_padding {(oh, ow)} must be below stride {(sh, sw)} or dilation")
    dh, dw = int_pair(dilation, "dilation")
    kh, kw = (weight.shape[2] - 1) * dh + 1, (weight.shape[3] - 1) * dw + 1  # the kernel's extent
    n, _, height, width = x.shape
    out_h, out_w = (height - 1) * sh - 2 * ph + kh + oh, (width - 1) * sw - 2 * pw + kw + ow
    if out_h < 1 or out_w < 1:
        raise ValueError(f"conv_transpose2d: the output would be {out_h}×{out_w} for x {x.shape}, weight {weight.shape}")
    y = input_grad(x, weight, (n, weight.shape[1] * groups, out_h, out_w), (ph, ph, pw, pw), (sh, sw), groups,
                   (dh, dw))
    if bias is not None:
        y = y + tensor_argument(bias, "bias").reshape(1, -1, 1, 1)
    return y


def _nonnegative_pair(value: Any, name: str) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) and p >= 0 for p in pair):
        raise ValueError(f"{name} must be an int >= 0 or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


# ---- pooling ---------------------------------------------------------------------------------------
def _pool_padding(padding: Any, kh: int, kw: int, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at most half its kernel side (PyTorch's limit)."""
    ph, pw = (padding, padding) if isinstance(padding, numbers.Integral) and not isinstance(padding, bool) else \
        tuple(padding) if isinstance(padding, (tuple, list)) and len(padding) == 2 else (None, None)
    if not all(isinstance(p, numbers.Integral) and 0 <= p <= k // 2 for p, k in ((ph, kh), (pw, kw))):
        raise ValueError(f"{name}: padding must be ints from 0 to half the kernel ({kh}, {kw}), got {padding!r}")
    return int(ph), int(pw)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """PyTorch's max_pool2d: the article's max pooling of x padded each side with −∞ (a padded
    cell never wins; the MaxPool2d primitive pads without copying x); with `ceil_mode`, the last partial window too (one that starts inside the
    input or its left padding, as PyTorch's rule); with `return_indices`, also where each maximum
    is, as a flat index into its (H, W) plane (int64, no gradient). With `dilation`, a window's
    taps lie `dilation` apart: the maximum over the kh·kw strided slices of x, one per tap (its
    gradient goes to the first maximum in the window's row-major order, as PyTorch's)."""
    x = tensor_argument(x, "x", "max_pool2d")
    if x.ndim < 2:
        raise ValueError(f"max_pool2d: x must have at least 2 dims (..., H, W), got shape {x.shape}")
    kh, kw = int_pair(kernel_size, "kernel_size")
    sh, sw = int_pair(stride, "stride", allow_none=True) or (kh, kw)
    dh, dw = int_pair(dilation, "dilation")
    ph, pw = _pool_padding(padding, kh, kw, "max_pool2d")
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the rows and columns one window covers
    height, width = x.shape[-2:]
    if height + 2 * ph < span_h or width + 2 * pw < span_w:
        raise ValueError(f"max_pool2d: the window ({kh}, {kw}) with dilation ({dh}, {dw}) is larger than the padded "
                         f"input of shape {x.shape}")
    eh, ew = (_ceil_extra(height, span_h, sh, ph), _ceil_extra(width, span_w, sw, pw)) if ceil_mode else (0, 0)
    if (dh, dw) == (1, 1):
        padding = ((ph, ph + eh), (pw, pw + ew))
        y = ops.MaxPool2d.apply(x, size=(kh, kw), stride=(sh, sw), padding=padding)
        if not return_indices:
            return y
        planes = x.data.reshape((-1,) + x.shape[-2:])
        flat = reference.maxpool2d(planes, (kh, kw), (sh, sw), padding)[1] % (height * width)
        return y, Tensor._make(flat.astype(np.int64).reshape(y.shape))
    padded = pad(x, (pw, pw + ew, ph, ph + eh), value=-np.inf) if ph or pw or eh or ew else x
    out_h, out_w = (padded.shape[-2] - span_h) // sh + 1, (padded.shape[-1] - span_w) // sw + 1
    taps = [padded[..., i * dh:i * dh + (out_h - 1) * sh + 1:sh, j * dw:j * dw + (out_w - 1) * sw + 1:sw]
            for i in range(kh) for j in range(kw)]
    y, tap = tensor_ops.stack(taps, -1).max(dim=-1)
    if not return_indices:
        return y
    rows = np.arange(out_h)[:, None] * sh + tap.data // kw * dh
    cols = np.arange(out_w)[None, :] * sw + tap.data % kw * dw
    # where each maximum lies, from the padded plane to the input's
    return y, Tensor._make(((rows - ph) * width + cols - pw).astype(np.int64).reshape(y.shape))


def _ceil_extra(size: int, kernel: int, stride: int, padding: int) -> int:
    """Cells of −∞ past the end that ceil_mode's last window (`kernel` cells wide) needs."""
    out = _pool_outputs(size, kernel, stride, padding, True)
    return max(0, (out - 1) * stride + kernel - (size + 2 * padding))


def _pool_outputs(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's output count of a pooling along one axis: ⌊(size + 2·padding − kernel)/stride⌋ + 1,
    or with `ceil_mode` ⌈…⌉ + 1 less the last window where it would start in the right padding."""
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each (kh, kw) window of the last two axes, every `stride` (default: the
    kernel), as PyTorch's: zero padding counted in the mean (`count_include_pad`, else only the
    cells inside x), `ceil_mode`'s last partial window (one that starts inside x or its left
    padding; it counts up to the padded edge), or a fixed `divisor_override`. Each window's cells
    and its divisor are a row range times a column range, so the mean is separable:
    y = Aᵀ·x·B on each plane, A (H, H') and B (W, W') holding 1/(the window's row count) and
    1/(its column count) where a row or column of x falls in an output's window -- two matrix
    products, whose backward is two more."""
    x = tensor_argument(x, "x", "avg_pool2d")
    kh, kw = int_pair(kernel_size, "kernel_size")
    sh, sw = int_pair(stride, "stride", allow_none=True) or (kh, kw)
    ph, pw = _pool_padding(padding, kh, kw, "avg_pool2d")
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, numbers.Integral) or divisor_override < 1):
        raise ValueError(f"avg_pool2d: divisor_override must be an int >= 1, got {divisor_override!r}")
    if x.ndim < 2:
        raise ValueError(f"avg_pool2d: x must have at least 2 dims (..., H, W), got shape {x.shape}")
    if x.shape[-2] + 2 * ph < kh or x.shape[-1] + 2 * pw < kw:
        raise ValueError(f"avg_pool2d: the window ({kh}, {kw}) is larger than the padded input of shape {x.shape}")
    rows = _window_means(x.shape[-2], kh, sh, ph, ceil_mode, count_include_pad, x.dtype)
    cols = _window_means(x.shape[-1], kw, sw, pw, ceil_mode, count_include_pad, x.dtype)
    if divisor_override is not None:  # the windows' sums, over one divisor
        rows, cols = ((rows != 0) / divisor_override).astype(x.dtype), (cols != 0).astype(x.dtype)
    return Tensor._make(np.ascontiguousarray(rows.T)) @ (x @ Tensor._make(cols))


def _window_means(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool, count_include_pad: bool,
                  dtype: np.dtype) -> np.ndarray:
    """(size, outputs): column j holds 1/(window j's count) on the positions of window j (start
    j·stride − padding), 0 elsewhere, so that v @ it averages v's windows along that axis. The
    count is PyTorch's: the window's cells up to the padded edge, or (not `count_include_pad`)
    its cells inside v."""
    start = np.arange(_pool_outputs(size, kernel, stride, padding, ceil_mode)) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    inside_start, inside_end = np.maximum(start, 0), np.minimum(end, size)
    count = (end - start) if count_include_pad else (inside_end - inside_start)
    position = np.arange(size)[:, None]
    return (((position >= inside_start) & (position < inside_end)) / count).astype(dtype)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """The mean over PyTorch's adaptive windows: output cell (i, j) averages rows
    ⌊i·H/h⌋ … ⌈(i+1)·H/h⌉ − 1 and the columns alike. Where the sizes divide, one avg_pool2d;
    elsewhere one whole-batch mean per output cell (the outputs adaptive pooling makes are small,
    1×1 to 7×7, so this loop is over a few dozen cells, never over the batch or the channels)."""
    x = tensor_argument(x, "x", "adaptive_avg_pool2d")
    out_h, out_w = int_pair(output_size, "output_size")
    if x.ndim < 2:
        raise ValueError(f"adaptive_avg_pool2d: x must have at least 2 dims (..., H, W), got shape {x.shape}")
    height, width = x.shape[-2:]
    if height % out_h == 0 and width % out_w == 0:
        return avg_pool2d(x, (height // out_h, width // out_w))
    rows = [(i * height // out_h, -(-(i + 1) * height // out_h)) for i in range(out_h)]
    cols = [(j * width // out_w, -(-(j + 1) * width // out_w)) for j in range(out_w)]
    cells = [x[..., r0:r1, c0:c1].mean(dim=(-2, -1)) for r0, r1 in rows for c0, c1 in cols]
    return tensor_ops.stack(cells, -1).reshape(x.shape[:-2] + (out_h, out_w))


# ---- padding and dropout ------------------------------------------------------------------------------
def pad(x: Any, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:  # noqa: A002 -- torch's name
    """`value` around x: `pad` holds (before, after) pairs from the last dim backwards, as
    PyTorch's (left, right, top, bottom, ...); a negative amount crops. Written as a scatter of x
    into a tensor of `value` (IndexAdd), so ∂C/∂x is dy's inner part."""
    x = tensor_argument(x, "x")
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    amounts = tuple(pad) if isinstance(pad, (tuple, list)) else None
    if not amounts or len(amounts) % 2 or len(amounts) // 2 > x.ndim or not all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in amounts):
        raise ValueError(f"pad: pad must be an even number of ints, at most 2 per dim of x {x.shape}, got {pad!r}")
    crop, shape, inner = [slice(None)] * x.ndim, list(x.shape), [slice(None)] * x.ndim
    for i in range(len(amounts) // 2):
        axis, before, after = x.ndim - 1 - i, amounts[2 * i], amounts[2 * i + 1]
        crop[axis] = slice(max(-before, 0), x.shape[axis] - max(-after, 0))
        kept = len(range(x.shape[axis])[crop[axis]])
        shape[axis] = kept + max(before, 0) + max(after, 0)
        inner[axis] = slice(max(before, 0), max(before, 0) + kept)
    x = x[tuple(crop)]
    padded = ops.IndexAdd.apply(x, shape=tuple(shape), index=tuple(inner))
    if value != 0:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
            raise ValueError(f"pad: value must be a number, got {value!r}")
        border = np.full(shape, value, dtype=x.dtype)
        border[tuple(inner)] = 0
        padded = padded + Tensor._make(border)
    return padded


def dropout(x: Any, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator: np.random.Generator | None = None) -> Tensor:
    """Each element zeroed with probability p and the rest scaled by 1/(1 − p), in training
    (`inplace`: as in activations.py, computed out of place)."""
    inplace_flag(inplace, "dropout")
    return _drop(tensor_argument(x, "x"), p, training, generator, "dropout")


def _drop(x: Tensor, p: float, training: bool, generator: np.random.Generator | None, name: str) -> Tensor:
    """x times a mask of 0 (probability p) and 1/(1 − p), drawn per element, or (dropout2d) per
    channel of the last three dims."""
    p = _number(p, "p", 0.0)
    if p > 1:
        raise ValueError(f"{name}: p must lie in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if name == "dropout2d" and x.ndim < 3:
        raise ValueError(f"dropout2d: x must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    shape = x.shape[:-2] + (1, 1) if name == "dropout2d" else x.shape
    keep = (creation.generator(generator).random(shape) >= p).astype(x.dtype)
    return x * Tensor._make(keep / x.dtype.type(1 - p) if p < 1 else keep)


def dropout2d(x: Any, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: np.random.Generator | None = None) -> Tensor:
    """Whole channels (axis 1 of (N, C, H, W)) zeroed with probability p, the rest scaled by
    1/(1 − p), in training; x itself otherwise."""
    inplace_flag(inplace, "dropout2d")
    return _drop(tensor_argument(x, "x"), p, training, generator, "dropout2d")


__all__ = list(_SHARED) + ["conv_transpose2d", "leaky_relu", "elu", "gelu", "silu", "softplus", "hardtanh", "relu6",
                           "hardsigmoid", "hardswish", "interpolate", "one_hot", "max_pool2d", "avg_pool2d",
                           "adaptive_avg_pool2d", "batch_norm", "group_norm", "layer_norm", "pad", "dropout", "dropout2d", "nll_loss", "l1_loss",
                           "binary_cross_entropy", "binary_cross_entropy_with_logits"]
