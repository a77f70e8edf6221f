"""Matrix product, and the fully connected layer as one op."""
from __future__ import annotations

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.ops.reduce import sum_to
from tinygrad_cnn.tensor import Tensor


class MatMul(Function):
    """y = a @ b for a, b of rank ≥ 2 (numpy.matmul: batch axes broadcast).

    ∂C/∂a = dy @ bᵀ,  ∂C/∂b = aᵀ @ dy  (ᵀ swaps the last two axes; summed over broadcast
    batch axes). The article's fully connected layer: z = w a + b, ∂C/∂w = ∂C/∂z aᵀ,
    ∂C/∂a = wᵀ ∂C/∂z.
    """

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return B.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        da = sum_to(dy @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        db = sum_to(a.swapaxes(-1, -2) @ dy, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Linear(Function):
    """y = x @ wᵀ + b for x (..., in), w (out, in), b (out,) (optional): the article's
    z = w a + b for a batch of row vectors, as one op (PyTorch's addmm) where MatMul, Transpose
    and Add would take three.

    ∂C/∂x = dy @ w,  ∂C/∂w = dyᵀ @ x,  ∂C/∂b = Σ dy  (x and dy as rows: every leading axis of x
    is a row of the product), written with MatMul, Transpose and Sum, so it differentiates again.
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, w: Tensor, *bias: Tensor) -> np.ndarray:
        ctx.save_for_backward(x, w)
        return B.linear(x.data, w.data, bias[0].data if bias else None)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dy_rows = dy if dy.ndim == 2 else dy.reshape(-1, dy.shape[-1])
        dx = dy @ w if needs[0] else None
        dw = dy_rows.T @ (x if x.ndim == 2 else x.reshape(-1, x.shape[-1])) if needs[1] else None
        if len(needs) == 2:  # called without a bias
            return dx, dw
        return dx, dw, dy_rows.sum(axis=0) if needs[2] else None
