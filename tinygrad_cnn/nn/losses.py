"""Losses with PyTorch's options (``torch.nn.functional``'s signatures), composed from the
primitives: cross_entropy (class indices or probabilities, (N, C, d1, ...) logits, weight,
ignore_index, reduction, label_smoothing), nll_loss, mse_loss, l1_loss, binary_cross_entropy and
binary_cross_entropy_with_logits. `reduction` is "mean", "sum" or "none".
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import functional as article, tensor_ops
from tinygrad_cnn.nn import activations
from tinygrad_cnn.functional import tensor_argument
from tinygrad_cnn.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, name: str, total: float | None = None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / total if total is not None else loss.mean()
    raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _class_weights(weight: Any, classes: int, dtype: np.dtype, name: str) -> np.ndarray:
    if weight is None:
        return np.ones(classes, dtype=dtype)
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if w.shape != (classes,):
        raise ValueError(f"{name}: weight must have one entry per class, shape ({classes},), got {w.shape}")
    return w


def _indices(target: Any, input: Tensor, name: str) -> np.ndarray:  # noqa: A002 -- torch's name
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index targets must be integers, got dtype {t.dtype}")
    if t.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"{name}: target of shape {t.shape} does not fit input of shape {input.shape} "
                         f"(expected {input.shape[:1] + input.shape[2:]})")
    return t


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """−weight[t] · input[n, t, ...] for class-index targets t (input holds log probabilities,
    (N, C, d1, ...)); targets equal to ignore_index count for nothing. The mean divides by the
    weights of the targets counted, as PyTorch's."""
    input = tensor_argument(input, "input")
    if input.ndim < 2 or input.shape[1] == 0:
        raise ValueError(f"nll_loss: input must be (N, C, ...) with C >= 1, got shape {input.shape}")
    t = _indices(target, input, "nll_loss")
    classes = input.shape[1]
    counted = t != ignore_index
    if np.any((t[counted] < 0) | (t[counted] >= classes)):
        raise ValueError(f"nll_loss: targets must lie in [0, {classes - 1}] (or be ignore_index {ignore_index}), "
                         f"got values from {t.min()} to {t.max()}")
    w = _class_weights(weight, classes, input.dtype, "nll_loss")
    picked = np.where(counted, t, 0)
    target_weights = w[picked] * counted  # (N, d1, ...)
    mask = np.zeros(input.shape, dtype=input.dtype)  # −weight at each counted target: a product, no scatter
    np.put_along_axis(mask, np.expand_dims(picked, 1), np.expand_dims(-target_weights, 1), axis=1)
    loss = article.picked(input, mask).sum(dim=1)
    return _reduce(loss, reduction, "nll_loss", float(target_weights.sum()))


def cross_entropy(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """torch.nn.functional.cross_entropy: log_softmax over dim 1 of (N, C, d1, ...) logits, then
    nll_loss of class-index targets, or −Σ_c weight_c · p_c · log q_c for probability targets (a
    float target of the input's shape). label_smoothing mixes the targets with the uniform
    distribution. With its defaults on (N, C) logits, it is tinygrad_cnn.functional's."""
    input = tensor_argument(input, "input")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    probabilities = isinstance(target, Tensor) and target.dtype.kind == "f" and target.shape == input.shape or (
        isinstance(target, np.ndarray) and target.dtype.kind == "f" and target.shape == input.shape and input.ndim > 1)
    if (not probabilities and weight is None and reduction == "mean" and label_smoothing == 0 and input.ndim == 2
            and not np.any(np.asarray(target.data if isinstance(target, Tensor) else target) == ignore_index)):
        return article.cross_entropy(input, target)
    if input.ndim < 2 or input.shape[1] == 0:
        raise ValueError(f"cross_entropy: input must be (N, C, ...) with C >= 1, got shape {input.shape}")
    classes = input.shape[1]
    shape = (1, classes) + (1,) * (input.ndim - 2)
    w = _class_weights(weight, classes, input.dtype, "cross_entropy")
    log_q = article.log_softmax(input, axis=1)
    weighted = log_q * Tensor._make(w.reshape(shape))
    if probabilities:
        p = target if isinstance(target, Tensor) else Tensor._make(target.astype(input.dtype))
        if label_smoothing:
            p = p * (1 - label_smoothing) + label_smoothing / classes
        return _reduce(-(weighted * p).sum(dim=1), reduction, "cross_entropy")
    nll = nll_loss(log_q, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    t = _indices(target, input, "cross_entropy")
    counted = (t != ignore_index).astype(input.dtype)
    smooth = -weighted.sum(dim=1) * Tensor._make(counted)
    if reduction == "mean":
        total = float((w[np.where(t != ignore_index, t, 0)] * counted).sum()) if weight is not None else counted.sum()
        smooth = smooth.sum() / total
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _pair(input: Any, target: Any, name: str) -> tuple[Tensor, Tensor]:  # noqa: A002
    input, target = tensor_argument(input, "input"), tensor_argument(target, "target")
    if input.shape != target.shape:
        raise ValueError(f"{name}: input has shape {input.shape} but target has shape {target.shape}")
    return input._promote(target)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """(input − target)², reduced."""
    input, target = _pair(input, target, "mse_loss")
    return _reduce((input - target) ** 2, reduction, "mse_loss")


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """|input − target|, reduced."""
    input, target = _pair(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """−weight · (t · ln x + (1 − t) · ln(1 − x)) for probabilities x, each logarithm clamped at
    −100 as PyTorch's (so x = 0 or 1 gives a finite loss)."""
    input, target = _pair(input, target, "binary_cross_entropy")
    if np.any((input.data < 0) | (input.data > 1)):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1]")
    loss = -(target * _log_clamped(input) + (1 - target) * _log_clamped(1 - input))
    if weight is not None:
        loss = loss * tensor_argument(weight, "weight")
    return _reduce(loss, reduction, "binary_cross_entropy")


def _log_clamped(p: Tensor) -> Tensor:
    """ln p, and −100 where that is below −100 (p = 0 included), with a zero gradient there: the
    logarithm only ever sees the p above e^−100 (1 elsewhere), so no 0 · ∞ = NaN reaches the
    gradient where p is 0 (a saturated sigmoid)."""
    kept = p.data > np.exp(-100.0)
    return tensor_ops.where(kept, tensor_ops.where(kept, p, 1.0).log(), -100.0)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None, reduction: str = "mean",  # noqa: A002
                                     pos_weight: Any = None) -> Tensor:
    """binary_cross_entropy of σ(input), in PyTorch's overflow-free form:
    (1 − t)·x + (1 + (pos_weight − 1)·t) · ln(1 + e^(−x)), the last by its two one-sided forms,
    so that its gradient is −σ(−x) everywhere, x = 0 included (ln(1 + e^(−|x|)) + max(−x, 0)
    would give −1 there: neither term's kink splits the difference)."""
    input, target = _pair(input, target, "binary_cross_entropy_with_logits")
    softplus_neg = activations.log1p_exp(-input)
    scale = 1 if pos_weight is None else (tensor_argument(pos_weight, "pos_weight") - 1) * target + 1
    loss = (1 - target) * input + scale * softplus_neg
    if weight is not None:
        loss = loss * tensor_argument(weight, "weight")
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")
