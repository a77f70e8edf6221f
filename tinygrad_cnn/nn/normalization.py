"""Normalization, as torch.nn.functional's: batch_norm (the BatchNorm primitive in training, one
scale and shift per channel in evaluation), group_norm and layer_norm (the same primitive's
kernel over each sample's groups or last dims). Re-exported by ``tinygrad_cnn.nn.functional``."""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import dtypes, ops, tensor_ops
from tinygrad_cnn.function import is_grad_enabled
from tinygrad_cnn.functional import tensor_argument
from tinygrad_cnn.nn.activations import number as _number
from tinygrad_cnn.tensor import Tensor

__all__ = ["batch_norm", "group_norm", "layer_norm"]


def batch_norm(x: Any, running_mean: Tensor | None, running_var: Tensor | None, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x − mean) / √(var + eps) · weight + bias per channel (axis 1), over the batch and every
    position. Training: the batch's mean and biased variance (the BatchNorm primitive, whose
    second derivative is complete: the inverse deviation is not held constant); the running
    statistics move by `momentum` toward them (the unbiased variance), outside the graph.
    Evaluation: the running statistics, as one scale and shift per channel (x·α + β, as PyTorch
    computes it)."""
    x = tensor_argument(x, "x", "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: x must be (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, channels) + (1,) * (x.ndim - 2)
    for stat, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if stat is not None and (not isinstance(stat, Tensor) or stat.shape != (channels,)):
            raise ValueError(f"batch_norm: {name} must be a Tensor of shape ({channels},) for x of shape {x.shape}")
    momentum, eps = _number(momentum, "momentum", 0.0), _number(eps, "eps", 0.0)
    x = tensor_ops.floating(x)
    params = [None if p is None else tensor_argument(p, name) for p, name in ((weight, "weight"), (bias, "bias"))]
    if training or running_mean is None or running_var is None:
        count = math.prod(x.shape[i] for i in axes)
        if count < 2 and training:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got x of shape {x.shape}")
        dtype = functools.reduce(dtypes.result_type, [p.dtype for p in params if p is not None], x.dtype)
        weight, bias = (Tensor(np.full(shape, fill, dtype)) if p is None else p.reshape(shape).to(dtype)
                        for p, fill in zip(params, (1, 0)))
        tracked = training and running_mean is not None and running_var is not None
        return ops.BatchNorm.apply(x.to(dtype), weight, bias, axes=axes, eps=eps,
                                   running=(running_mean, running_var, momentum) if tracked else None)
    # evaluation: α = weight/√(var + eps), β = bias − mean·α: one scale and shift, computed on the
    # arrays where no parameter's gradient is wanted (the same formula without the graph's ops)
    values = [running_mean, running_var, *params]
    if not (is_grad_enabled() and any(p is not None and p.requires_grad for p in params)):
        values = [None if v is None else v.data for v in values]
    mean, var, weight, bias = (None if v is None else v.reshape(shape) for v in values)
    scale = (var + eps) ** -0.5
    scale = scale if weight is None else scale * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    return x * scale + shift


def _normalized(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    """(x − mean) / √(var + eps) over `axes`, every other position with its own mean and biased
    variance: the BatchNorm primitive with a unit scale and no shift (one fused kernel whose
    second derivative is complete)."""
    one, zero = (Tensor._make(np.full((1,) * x.ndim, fill, x.dtype)) for fill in (1, 0))  # broadcast to every position
    return ops.BatchNorm.apply(x, one, zero, axes=axes, eps=eps)


def group_norm(x: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """PyTorch's group_norm: x (N, C, ...) normalized over each sample's groups of C/num_groups
    channels (and every position), then · weight + bias per channel."""
    x = tensor_ops.floating(tensor_argument(x, "x", "group_norm"))
    if x.ndim < 2 or isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) \
            or num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: num_groups must be an int >= 1 dividing the channels of x (N, C, ...), "
                         f"got {num_groups!r} for x of shape {x.shape}")
    grouped = x.reshape(x.shape[0], int(num_groups), -1)
    y = _normalized(grouped, (2,), _number(eps, "eps", 0.0)).reshape(x.shape)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * tensor_argument(weight, "weight").reshape(shape)
    if bias is not None:
        y = y + tensor_argument(bias, "bias").reshape(shape)
    return y


def layer_norm(x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    """(x − mean) / √(var + eps) · weight + bias over the last dims (`normalized_shape`), each
    sample on its own; the biased variance (the BatchNorm primitive's kernel: differentiable twice)."""
    x = tensor_argument(x, "x", "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dims of x, shape {x.shape}")
    y = _normalized(tensor_ops.floating(x), tuple(range(x.ndim - len(shape), x.ndim)), _number(eps, "eps", 0.0))
    if weight is not None:
        y = y * tensor_argument(weight, "weight")
    if bias is not None:
        y = y + tensor_argument(bias, "bias")
    return y
