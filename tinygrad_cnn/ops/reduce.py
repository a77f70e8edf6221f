"""Reductions: Sum and Max over axes, whose backward broadcasts ∂C/∂y back over the reduced
axes (`BroadcastTo`, whose own backward is `sum_to`: the pair differentiates forever); and
LogSoftmax, which normalises along axes by such a reduction."""
from __future__ import annotations

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.tensor import Tensor


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a broadcast gradient back to `shape` (the adjoint of numpy broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _expand(dy: Tensor, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """dy of a reduction, broadcast back over the reduced axes to `shape`."""
    if not keepdims:
        dy = dy.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return dy.broadcast_to(shape)


class Sum(Function):
    """y = Σ_axes a.   ∂C/∂a = dy broadcast over the summed axes."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
        ctx.axis, ctx.keepdims = axis, keepdims
        return B.reduce_sum(a.data, axis, keepdims)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return _expand(dy, shape, ctx.axis, ctx.keepdims)


class Max(Function):
    """y = max_axes a.   ∂C/∂a = dy at the first maximum of each reduced slice (np.argmax
    order), 0 elsewhere -- the article's max-pooling rule."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.axis, ctx.keepdims = axis, keepdims
        return B.reduce_max(a.data, axis, keepdims)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        mask = Tensor._make(B.first_argmax_mask(a.data, ctx.axis))  # built only when needed
        return _expand(dy, a.shape, ctx.axis, ctx.keepdims) * mask


class BroadcastTo(Function):
    """y = a broadcast to `shape`.   ∂C/∂a = dy summed back to a's shape."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, shape: tuple[int, ...]) -> np.ndarray:
        return B.broadcast_to(a.data, shape)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return sum_to(dy, shape)


class LogSoftmax(Function):
    """y = z − m − ln Σ_axes e^(z − m), m = max_axes z (a constant: it keeps every exponent ≤ 0,
    so nothing overflows). One primitive, as PyTorch's, where the composed form took six.
    ∂C/∂z = dy − e^y · Σ_axes dy   (e^y = softmax z; written with the framework's ops on the
    saved output, so it differentiates again)."""

    @staticmethod
    def forward(ctx: Context, z: Tensor, axis: tuple[int, ...]) -> np.ndarray:
        ctx.axis = axis
        y = B.log_softmax(z.data, axis)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return dy - y.exp() * dy.sum(axis=ctx.axis, keepdims=True)
