"""Matrix product."""
from __future__ import annotations

from tinygrad_cnn import kernels as K
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
    def forward(ctx: Context, a: Tensor, b: Tensor) -> K.ndarray:
        ctx.save_for_backward(a, b)
        return K.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        da = sum_to(dy @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        db = sum_to(a.swapaxes(-1, -2) @ dy, b.shape) if ctx.needs_input_grad[1] else None
        return da, db
