"""Movement primitives: reshape, transpose, indexing and its adjoint, scatter-add."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import kernels as K
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.tensor import Tensor


class Reshape(Function):
    """y = a reshaped.   ∂C/∂a = dy reshaped back."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, shape: tuple[int, ...]) -> K.ndarray:
        return a.data.reshape(shape)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return dy.reshape(shape)


class Transpose(Function):
    """y = a with axes permuted by `axes`.   ∂C/∂a = dy permuted by the inverse permutation."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, axes: tuple[int, ...]) -> K.ndarray:
        ctx.axes = axes
        return a.data.transpose(axes)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return dy.transpose(tuple(inverse))


def _is_unique(index: Any) -> bool:
    """Whether an index can name a position twice (integer arrays can; slices, ints, None,
    Ellipsis and boolean masks cannot)."""
    parts = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


class GetItem(Function):
    """y = a[index] (basic or integer-array indexing).   ∂C/∂a = dy scatter-added into zeros
    at `index` (positions named twice receive the sum)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, index: Any) -> K.ndarray:
        ctx.index = index
        return a.data[index]

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return IndexAdd.apply(dy, shape=shape, index=ctx.index, unique=_is_unique(ctx.index))


class IndexAdd(Function):
    """y = zeros(shape) with v added at `index`.   ∂C/∂v = dy[index] (a gather).
    `groups`: a hint for the kernel, see kernels.index_add."""

    @staticmethod
    def forward(ctx: Context, v: Tensor, shape: tuple[int, ...], index: Any, unique: bool,
                groups: int = 1) -> K.ndarray:
        ctx.index = index
        return K.index_add(v.data, shape, index, unique, groups)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return GetItem.apply(dy, index=ctx.index)
