"""Gradient clipping, as ``torch.nn.utils``: both change the ``.grad`` arrays in place."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Any) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not all(isinstance(p, Tensor) for p in params):
        raise TypeError("parameters must be a Tensor or an iterable of Tensors")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale every gradient by max_norm / (total norm + 1e-6) where the total norm (over all of
    them, as one vector) exceeds max_norm; returns the total norm before clipping."""
    grads = _grads(parameters)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm!r}")
    if not grads:
        return Tensor(0.0)
    if norm_type == math.inf:
        total = max(float(np.abs(g.data).max(initial=0.0)) for g in grads)
    else:
        total = sum(float((np.abs(g.data.astype(np.float64)) ** norm_type).sum()) for g in grads) ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g.data *= g.data.dtype.type(scale)
    return Tensor(total, dtype=grads[0].dtype)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to [−clip_value, clip_value]."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    for g in _grads(parameters):
        np.clip(g.data, -clip_value, clip_value, out=g.data)
