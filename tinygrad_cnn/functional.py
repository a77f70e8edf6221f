"""The lowercase API: the article's ops and the losses, with their arguments checked.

Each function checks its arguments (a bad one is a ValueError or TypeError that names the
argument and the shapes), then calls primitives from ``tinygrad_cnn.ops`` or composes them.
TypeError: an argument of the wrong kind (a string for a Tensor, a float for a stride, float
labels); ValueError: the right kind with a wrong value or shape.

NaN and ±inf in the data propagate as IEEE arithmetic says (as in numpy and PyTorch; max
pooling takes a NaN as its window's maximum); ``tinygrad_cnn.detect_anomaly()`` finds the op
where they first appear. Where a NaN can have no meaning it is an error: a class label, a
stride, a size or a padding here, a hyperparameter in ``tinygrad_cnn.optim``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_cnn import ops, tensor_ops
from tinygrad_cnn.shapes import normalize_axes
from tinygrad_cnn.tensor import Tensor


def tensor_argument(value: Any, name: str, op: str | None = None) -> Tensor:
    """`value` as a Tensor (a Tensor as it is, numbers and arrays copied); an error names `name`.
    With `op` (a convolution, pooling or linear layer) an integer or bool Tensor is refused, as
    PyTorch's "expected floating point": its values would run at a scale nobody meant."""
    if isinstance(value, Tensor):
        if op is not None and value.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating tensor (float32 or float64), got {value.dtype}; "
                            "convert it with .float()")
        return value
    try:
        return Tensor(value)
    except (TypeError, ValueError) as error:  # ragged lists stay a ValueError, strings a TypeError
        raise type(error)(f"{name} must be a Tensor or an array of numbers: {error}") from None


def int_pair(value: Any, name: str, allow_none: bool = False) -> tuple[int, int] | None:
    """An int or an (h, w) pair of ints >= 1."""
    if value is None and allow_none:
        return None
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(parts) != 2 or not all(
        isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in parts
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(parts) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(parts[0]), int(parts[1])


MODES = ("valid", "full", "same")


def _mode_padding(mode: str, size: int, rotated: bool = False) -> tuple[int, int]:
    """Zeros before and after one axis that make the primitive's cross-correlation give
    scipy.signal's `mode` output for a kernel of `size`; for an even kernel 'same' centres as
    scipy does: correlate2d takes the later of the two centre rows, convolve2d the earlier."""
    if mode == "valid":
        return 0, 0
    if mode == "full":
        return size - 1, size - 1
    before = size // 2 if rotated else (size - 1) // 2
    return before, size - 1 - before


def _correlate(x: Any, k: Any, mode: str, stride: Any, op: str, rotated: bool) -> Tensor:
    """correlate2d / convolve2d: reshape every kernel rank to the NCHW primitive and back."""
    x, k = tensor_argument(x, "x", op)._promote(tensor_argument(k, "k", op))
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    sh, sw = int_pair(stride, "stride")
    if k.ndim not in (2, 3, 4):
        raise ValueError(
            f"{op}: the kernel k must have rank 2 (kh, kw), 3 (C, kh, kw) or 4 (F, C, kh, kw); "
            f"got shape {k.shape}"
        )
    spatial_rank = 2 if k.ndim == 2 else 3
    if x.ndim < spatial_rank:
        raise ValueError(
            f"{op}: a rank-{k.ndim} kernel of shape {k.shape} needs x of rank >= {spatial_rank}; "
            f"got x of shape {x.shape}"
        )
    if k.ndim >= 3 and x.shape[-3] != k.shape[-3]:
        raise ValueError(
            f"{op}: x has {x.shape[-3]} channels (axis -3 of shape {x.shape}) but the kernel "
            f"of shape {k.shape} expects {k.shape[-3]}"
        )
    (height, width), (kh, kw) = x.shape[-2:], k.shape[-2:]
    if min(height, width, kh, kw) == 0 or (k.ndim >= 3 and k.shape[-3] == 0):
        raise ValueError(f"{op}: empty input or kernel (x {x.shape}, k {k.shape})")
    if mode == "valid" and (kh > height or kw > width):
        raise ValueError(
            f"{op}: in valid mode the kernel ({kh}, {kw}) must fit in the input ({height}, {width}); "
            f"x has shape {x.shape}, k has shape {k.shape} (use mode='full' or 'same')"
        )
    padding = _mode_padding(mode, kh, rotated) + _mode_padding(mode, kw, rotated)
    if rotated:
        k = k[..., ::-1, ::-1]
    lead = x.shape[:-spatial_rank]
    batch = math.prod(lead)
    if batch == 0:  # the kernels need at least one sample (and PyTorch's empty-batch result is of little use)
        raise ValueError(f"{op}: empty batch: x has shape {x.shape}, no sample to correlate with k {k.shape}")
    channels = 1 if k.ndim == 2 else k.shape[-3]
    features = k.shape[0] if k.ndim == 4 else 1
    x_nchw = x.reshape(batch, channels, height, width)
    k_fchw = k if k.ndim == 4 else k.reshape(1, channels, kh, kw)
    y = ops.Correlate2d.apply(x_nchw, k_fchw, padding=padding, stride=(sh, sw))
    return y.reshape(lead + ((features,) if k.ndim == 4 else ()) + y.shape[-2:])


def correlate2d(x: Any, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
    """Cross-correlation over the last two axes: y = x ⋆ k.

    For 2-D x and k it equals ``scipy.signal.correlate2d(x, k, mode)`` (mode 'valid', 'full' or
    'same'). The kernel's rank decides the rest: (kh, kw) is applied to every leading slice,
    (..., H, W) -> (..., H', W'); (C, kh, kw) also sums over the channel axis -3 (the article's
    "stack of pancakes"), (..., C, H, W) -> (..., H', W'); (F, C, kh, kw) makes F feature maps,
    (..., C, H, W) -> (..., F, H', W') (PyTorch's conv2d). `stride` keeps every s-th position.

    Backward: ∂C/∂x = ∂C/∂y ∗ k (full convolution), ∂C/∂k = x ⋆ ∂C/∂y (valid cross-correlation).
    """
    return _correlate(x, k, mode, stride, "correlate2d", rotated=False)


def convolve2d(x: Any, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
    """Convolution: correlate2d with the kernel rotated 180° over its last two axes; for 2-D x
    and k it equals ``scipy.signal.convolve2d(x, k, mode)``. Shapes and backward as correlate2d."""
    return _correlate(x, k, mode, stride, "convolve2d", rotated=True)


def maxpool2d(x: Any, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None) -> Tensor:
    """Max over (kh, kw) windows of the last two axes, (..., H, W) -> (..., H', W').

    `stride` defaults to `size` (non-overlapping windows, as in Nielsen's network); stride 1 is
    the article's `MaxPoolingMap`. Rows and columns that do not fill a window are dropped.
    Backward routes each window's ∂C/∂y to its maximum; in a tie, to the first maximum in
    row-major order (np.argmax); overlapping windows add up.
    """
    x = tensor_argument(x, "x", "maxpool2d")
    kh, kw = int_pair(size, "size")
    stride = int_pair(stride, "stride", allow_none=True) or (kh, kw)
    if x.ndim < 2:
        raise ValueError(f"maxpool2d: x must have at least 2 dimensions, got shape {x.shape}")
    if kh > x.shape[-2] or kw > x.shape[-1]:
        raise ValueError(
            f"maxpool2d: the window ({kh}, {kw}) is larger than the input's last two axes "
            f"{x.shape[-2:]} (x has shape {x.shape})"
        )
    return ops.MaxPool2d.apply(x, size=(kh, kw), stride=stride)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] | str = 0, groups: int = 1, dilation: int | tuple[int, int] = 1) -> Tensor:
    """PyTorch's conv2d: x (N, C, H, W) ⋆ weight (F, C/groups, kh, kw) + bias (F,) -> (N, F, H', W').
    `padding` is zeros on each side (an int or an (h, w) pair), "valid" (0) or "same" (output
    H×W at stride 1, centred as scipy's and PyTorch's). The same primitive as `correlate2d`; the
    bias gradient is ∂C/∂b = Σ ∂C/∂z over batch and positions. `groups` (checked by the caller,
    nn.functional.conv2d) splits channels and maps into independent groups; `dilation` puts the
    kernel's taps that far apart (the primitive's own: no zeros are spread between them)."""
    x, weight = tensor_argument(x, "x", "conv2d")._promote(tensor_argument(weight, "weight", "conv2d"))
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"conv2d: expects x (N, C, H, W) and weight (F, C, kh, kw) with the same C; "
                         f"got x {x.shape}, weight {weight.shape}")
    if min(weight.shape[1:]) == 0:
        raise ValueError(f"conv2d: empty kernel: weight has shape {weight.shape} (x {x.shape})")
    if x.shape[0] == 0:
        raise ValueError(f"conv2d: empty batch: x has shape {x.shape}, no sample to correlate with weight "
                         f"{weight.shape}")
    dilation = int_pair(dilation, "dilation")
    kh, kw = (weight.shape[2] - 1) * dilation[0] + 1, (weight.shape[3] - 1) * dilation[1] + 1  # the kernel's extent
    if isinstance(padding, str) and padding in ("valid", "same"):
        pads = _mode_padding(padding, kh) + _mode_padding(padding, kw)
    else:
        pair = padding if isinstance(padding, (tuple, list)) else (padding, padding)
        if len(pair) != 2 or not all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in pair):
            raise ValueError(f"conv2d: padding must be 'valid', 'same', an int >= 0 or a pair of them, "
                             f"got {padding!r}")
        ph, pw = pair
        pads = (int(ph), int(ph), int(pw), int(pw))
    height, width = x.shape[-2:]
    padded = (height + pads[0] + pads[1], width + pads[2] + pads[3])
    if kh > padded[0] or kw > padded[1]:
        raise ValueError(f"conv2d: kernel ({kh}, {kw}) larger than the padded input {padded}; "
                         f"x {x.shape}, weight {weight.shape}" + (f", dilation {dilation}" if dilation != (1, 1) else ""))
    stride = int_pair(stride, "stride")
    if bias is None:
        return ops.Correlate2d.apply(x, weight, padding=pads, stride=stride, groups=groups, dilation=dilation)
    bias = tensor_argument(bias, "bias")
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if bias.dtype != x.dtype:  # one dtype for all three, as numpy would promote z + b
        common = np.result_type(x.dtype, bias.dtype)
        x, weight, bias = x.astype(common), weight.astype(common), bias.astype(common)
    return ops.Correlate2d.apply(x, weight, bias, padding=pads, stride=stride, groups=groups, dilation=dilation)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product as ``numpy.matmul``: 1-D operands are vectors, batch axes broadcast."""
    a, b = tensor_argument(a, "a")._promote(tensor_argument(b, "b"))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: a has shape {a.shape}, b has shape {b.shape} "
            f"({a2.shape[-1]} != {b2.shape[-2]})"
        )
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    y = ops.MatMul.apply(a2, b2)
    if a.ndim == 1:
        y = y.reshape(y.shape[:-2] + y.shape[-1:])
    if b.ndim == 1:
        y = y.reshape(y.shape[:-1])
    return y


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """PyTorch's linear: x (..., in) @ weightᵀ (weight (out, in)) + bias (out,) -> (..., out),
    one op (`ops.Linear`). ∂C/∂w = dyᵀ @ x and ∂C/∂b = Σ dy over every leading axis of x."""
    x, weight = tensor_argument(x, "x", "linear")._promote(tensor_argument(weight, "weight", "linear"))
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: expects x (..., in) and weight (out, in) with the same in; "
                         f"got x {x.shape}, weight {weight.shape}")
    if bias is None:
        return ops.Linear.apply(x, weight)
    bias = tensor_argument(bias, "bias")
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if bias.dtype != x.dtype:  # one dtype for all three, as numpy would promote x @ wᵀ + b
        common = np.result_type(x.dtype, bias.dtype)
        x, weight, bias = x.astype(common), weight.astype(common), bias.astype(common)
    return ops.Linear.apply(x, weight, bias)


def sigmoid(z: Any) -> Tensor:
    """σ(z) = 1/(1+e^(−z)); ∂C/∂z = ∂C/∂a · σ(z)(1−σ(z)). Finite and silent for any finite z."""
    return tensor_argument(z, "z").sigmoid()


def relu(z: Any) -> Tensor:
    """max(z, 0); ∂C/∂z = ∂C/∂a · [z > 0]."""
    return tensor_argument(z, "z").relu()


def tanh(z: Any) -> Tensor:
    """tanh z; ∂C/∂z = ∂C/∂a · (1 − tanh² z)."""
    return tensor_argument(z, "z").tanh()


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log softmax along `axis`: x − max − ln Σ e^(x − max). Subtracting the (constant) max keeps
    every exponent ≤ 0, so nothing overflows; the gradient is dy − softmax(x)·Σ dy."""
    return _log_softmax(x, axis, "log_softmax")


def _log_softmax(x: Any, axis: Any, name: str) -> Tensor:
    x = tensor_argument(x, "x")
    axes = normalize_axes(axis, x.ndim)
    if any(x.shape[i] == 0 for i in axes):
        raise ValueError(f"{name} over an empty axis of a tensor of shape {x.shape}")
    return ops.LogSoftmax.apply(x, axis=axes)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """e^x / Σ e^x along `axis`, computed as exp(log_softmax(x))."""
    return _log_softmax(x, axis, "softmax").exp()


def cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean over the batch of −ln softmax(logits)[label]: logits (N, classes), integer labels (N,).

    Labels are integer class indices in [0, classes); float labels are accepted only when every
    one is a whole number (NaN, inf or 2.5 is a TypeError). An empty batch is a ValueError (its
    mean would be 0/0)."""
    logits = tensor_argument(logits, "logits")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, classes), got {logits.shape}")
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} hold no "
                         f"{'sample' if logits.shape[0] == 0 else 'class'}; the mean loss would be undefined")
    labels = labels.data if isinstance(labels, Tensor) else labels
    try:
        labels = np.asarray(labels)
    except ValueError as error:  # ragged lists
        raise ValueError(f"cross_entropy: labels must be a 1-d array of class indices: {error}") from None
    if labels.dtype.kind not in "iu":
        whole = labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels))) and bool(
            np.all(labels == np.round(labels)))
        if not whole:
            detail = " (they hold NaN or inf)" if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)) else ""
            raise TypeError(f"cross_entropy: labels must be integer class indices, got dtype {labels.dtype}{detail}")
        if labels.size and np.abs(labels).max() >= 2**62:
            raise ValueError(f"cross_entropy: labels must lie in [0, {logits.shape[1] - 1}], got values up to "
                             f"{np.abs(labels).max():g}")
        labels = labels.astype(np.intp)
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: labels must have shape ({logits.shape[0]},) to match logits of shape "
            f"{logits.shape}, got {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {logits.shape[1] - 1}] for {logits.shape[1]} "
            f"classes, got values from {labels.min()} to {labels.max()}"
        )
    # −1/N at each label: picks −ln p[label]/N as a product (no scatter), and one Mul and one Sum
    # are the whole loss after the log softmax
    weights = np.zeros(logits.shape, dtype=logits.dtype)
    weights[np.arange(logits.shape[0]), labels] = -1.0 / logits.shape[0]
    return picked(log_softmax(logits, axis=1), weights).sum()


def picked(values: Tensor, mask: np.ndarray) -> Tensor:
    """values · mask for a mask that is 0 but at a few picked entries (a product, no scatter),
    with 0 where the mask is 0 whatever the value there: a −∞ log-probability of a class not
    picked (a logit masked with −∞) leaves the loss finite, as PyTorch's, not −∞ · 0 = NaN."""
    return tensor_ops.where(mask != 0, values, 0.0) * Tensor._make(mask)


def mse_loss(pred: Any, target: Any) -> Tensor:
    """Mean squared error, mean over all elements of (pred − target)²; shapes must match."""
    pred, target = tensor_argument(pred, "pred"), tensor_argument(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}")
    if pred.numel() == 0:
        raise ValueError(f"mse_loss: pred and target of shape {pred.shape} are empty; the mean would be undefined")
    return ((pred - target) ** 2).mean()


__all__ = ["correlate2d", "convolve2d", "conv2d", "maxpool2d", "matmul", "linear", "sigmoid", "relu", "tanh",
           "softmax", "log_softmax", "cross_entropy", "mse_loss"]
