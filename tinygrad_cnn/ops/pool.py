"""Max pooling, its backward (the routing of ∂C/∂y to each window's maximum) and the adjoint of
that routing (the gather): three primitives, each the others' backward, so pooling
differentiates to any order. The argmax is found once, by the forward, and the other two read it
as the backend left it."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function, is_grad_enabled
from tinygrad_cnn.tensor import Tensor


class MaxPool2d(Function):
    """y = the max of each (kh, kw) window of the last two axes, windows every `stride`, of x
    padded with −∞ (`padding`: (top, bottom), (left, right) cells; a padded cell never wins,
    and every window must hold a cell of x).

    ∂C/∂x = each window's dy routed to its argmax, 0 elsewhere (MaxPool2dBackward); where
    overlapping windows share a maximum the contributions add up. Tie rule: within a window the
    first maximum in row-major order (np.argmax) receives the gradient, as the article's
    `MaxPoolingMap`.
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))) -> np.ndarray:
        # the argmax serves only the backward: not looked for where none can run (no_grad, a constant x)
        recorded = ctx.needs_input_grad[0] and is_grad_enabled()
        y, ctx.argmax = B.maxpool2d(x.data, size, stride, padding, argmax=recorded)
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return MaxPool2dBackward.apply(dy, argmax=ctx.argmax, x_shape=shape)


class MaxPool2dBackward(Function):
    """dx = zeros(x_shape) with each window's dy added at its argmax (saved by MaxPool2d's
    forward): PyTorch's max_pool2d_with_indices_backward. Linear in dy:
    ∂C/∂dy = g read at each window's argmax (MaxPool2dWithIndices)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, argmax: Any, x_shape: tuple[int, ...]) -> np.ndarray:
        ctx.argmax = argmax
        return B.maxpool2d_backward(dy.data, argmax, x_shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return MaxPool2dWithIndices.apply(g, argmax=ctx.argmax)


class MaxPool2dWithIndices(Function):
    """y = g read at each window's saved argmax: max pooling with its argmax held fixed.
    Linear in g: ∂C/∂g = dy routed to the argmax (MaxPool2dBackward)."""

    @staticmethod
    def forward(ctx: Context, g: Tensor, argmax: Any) -> np.ndarray:
        ctx.argmax = argmax
        return B.maxpool2d_gather(g.data, argmax)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        return MaxPool2dBackward.apply(dy, argmax=ctx.argmax, x_shape=shape)
