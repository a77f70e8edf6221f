"""Movement primitives: reshape, transpose, indexing and its adjoint, scatter-add."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.tensor import Tensor


class Reshape(Function):
    """y = a reshaped.   ∂C/∂a = dy reshaped back."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, shape: tuple[int, ...]) -> np.ndarray:
        return B.reshape(a.data, shape)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return dy.reshape(shape)


class Transpose(Function):
    """y = a with axes permuted by `axes`.   ∂C/∂a = dy permuted by the inverse permutation."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, axes: tuple[int, ...]) -> np.ndarray:
        ctx.axes = axes
        return B.transpose(a.data, axes)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return dy.permute(inverse)


class Cat(Function):
    """y = the inputs joined along `axis` (their other axes alike).   ∂C/∂x_i = dy's slice of x_i's
    place along `axis` (GetItem)."""

    @staticmethod
    def forward(ctx: Context, *inputs: Tensor, axis: int) -> np.ndarray:
        ctx.axis = axis
        return B.concatenate([t.data for t in inputs], axis)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, ...]:
        grads, start = [], 0
        for needed, (_, shape, _) in zip(ctx.needs_input_grad, ctx.edges):
            stop = start + shape[ctx.axis]
            index = (slice(None),) * ctx.axis + (slice(start, stop),)
            grads.append(GetItem.apply(dy, index=index) if needed else None)
            start = stop
        return tuple(grads)


class GetItem(Function):
    """y = a[index] (basic or integer-array indexing).   ∂C/∂a = dy scatter-added into zeros
    at `index` (positions named twice receive the sum)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, index: Any) -> np.ndarray:
        ctx.index = index
        return B.getitem(a.data, index)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return IndexAdd.apply(dy, shape=shape, index=ctx.index)


class IndexAdd(Function):
    """y = zeros(shape) with v added at `index` (a position named twice receives the sum).
    ∂C/∂v = dy[index] (a gather)."""

    @staticmethod
    def forward(ctx: Context, v: Tensor, shape: tuple[int, ...], index: Any) -> np.ndarray:
        ctx.index = index
        return B.index_add(v.data, shape, index)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return GetItem.apply(dy, index=ctx.index)
