"""Elementwise primitives. Binary ops broadcast as numpy; their backward sums ∂C/∂y back to
each operand's shape (`sum_to`). Notation: y = f(a, b), dy = ∂C/∂y."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.ops.reduce import sum_to
from tinygrad_cnn.tensor import Tensor


def _binary_grads(ctx: Context, da: Any, db: Any) -> tuple[Tensor | None, Tensor | None]:
    """Evaluate the wanted gradient formulas (callables) and undo the broadcasting."""
    (_, a_shape, _), (_, b_shape, _) = ctx.edges
    return (sum_to(da(), a_shape) if ctx.needs_input_grad[0] else None,
            sum_to(db(), b_shape) if ctx.needs_input_grad[1] else None)


class Add(Function):
    """y = a + b.   ∂C/∂a = dy,  ∂C/∂b = dy."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        return B.add(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return _binary_grads(ctx, lambda: dy, lambda: dy)


class Sub(Function):
    """y = a − b.   ∂C/∂a = dy,  ∂C/∂b = −dy."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        return B.subtract(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return _binary_grads(ctx, lambda: dy, lambda: -dy)


class Mul(Function):
    """y = a · b.   ∂C/∂a = dy · b,  ∂C/∂b = dy · a."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return B.multiply(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return _binary_grads(ctx, lambda: dy * b, lambda: dy * a)


class Div(Function):
    """y = a / b.   ∂C/∂a = dy / b,  ∂C/∂b = −dy · a / b²."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return B.divide(a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return _binary_grads(ctx, lambda: dy / b, lambda: -(dy * a) / (b * b))


class Pow(Function):
    """y = a ** b.   ∂C/∂a = dy · b · a^(b−1),  ∂C/∂b = dy · y · ln a.

    At the edges PyTorch takes: ∂C/∂a = 0 where b = 0 (not 0·a^(−1)), and ∂C/∂b = 0 where a = 0
    (not 0·ln 0): the exponent and the logarithm's argument are shifted by constant masks there.
    """

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        y = B.power(a.data, b.data)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b, y = ctx.saved_tensors
        b_is_zero = Tensor._make((b.data == 0).astype(b.dtype))
        a_is_zero = Tensor._make((a.data == 0).astype(a.dtype))
        return _binary_grads(ctx, lambda: dy * b * a ** (b - 1 + b_is_zero),
                             lambda: dy * y * (a + a_is_zero).log())


class Neg(Function):
    """y = −a.   ∂C/∂a = −dy."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> np.ndarray:
        return B.negative(a.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return -dy


class Exp(Function):
    """y = e^a.   ∂C/∂a = dy · y."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> np.ndarray:
        y = B.exp(a.data)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return dy * y


class Log(Function):
    """y = ln a.   ∂C/∂a = dy / a."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> np.ndarray:
        ctx.save_for_backward(a)
        return B.log(a.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return dy / a


class Sigmoid(Function):
    """a = σ(z) = 1 / (1 + e^(−z)).   ∂C/∂z = ∂C/∂a · σ(z)(1 − σ(z))  (the article's σ'), computed
    by `SigmoidBackward` in one pass."""

    @staticmethod
    def forward(ctx: Context, z: Tensor) -> np.ndarray:
        a = B.sigmoid(z.data)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx: Context, da: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return SigmoidBackward.apply(da, a)


class SigmoidBackward(Function):
    """g = dy · a(1 − a), Sigmoid's backward as one primitive (a = σ(z), Sigmoid's output, so that
    a second derivative reaches z through it).
    ∂C/∂dy = dg · a(1 − a)  (this op again),   ∂C/∂a = dg · dy · (1 − 2a)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, a: Tensor) -> np.ndarray:
        ctx.save_for_backward(dy, a)
        return B.sigmoid_backward(dy.data, a.data)

    @staticmethod
    def backward(ctx: Context, dg: Tensor) -> tuple[Tensor | None, Tensor | None]:
        dy, a = ctx.saved_tensors
        return _binary_grads(ctx, lambda: SigmoidBackward.apply(dg, a), lambda: dg * dy * (1 - 2 * a))


class Silu(Function):
    """y = z·σ(z) (SiLU, swish).   ∂C/∂z = dy · σ(z)(1 + z(1 − σ(z))), computed by `SiluBackward`
    in one pass (the composition z · z.sigmoid() makes six arrays forward and backward)."""

    @staticmethod
    def forward(ctx: Context, z: Tensor) -> np.ndarray:
        ctx.save_for_backward(z)
        return B.silu(z.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (z,) = ctx.saved_tensors
        return SiluBackward.apply(dy, z)


class SiluBackward(Function):
    """g = dy · σ(z)(1 + z(1 − σ(z))), Silu's backward as one primitive. Linear in dy:
    ∂C/∂dy = dg · σ(z)(1 + z(1 − σ(z)))  (this op again),
    ∂C/∂z = dg · dy · σ(z)(1 − σ(z))(2 + z(1 − 2σ(z)))  (SiLU's second derivative, composed)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, z: Tensor) -> np.ndarray:
        ctx.save_for_backward(dy, z)
        return B.silu_backward(dy.data, z.data)

    @staticmethod
    def backward(ctx: Context, dg: Tensor) -> tuple[Tensor | None, Tensor | None]:
        dy, z = ctx.saved_tensors

        def dz() -> Tensor:
            s = Sigmoid.apply(z)
            return dg * dy * s * (1 - s) * (z * (1 - 2 * s) + 2)

        return _binary_grads(ctx, lambda: SiluBackward.apply(dg, z), dz)


_TWO_OVER_ROOT_PI = 2 / math.sqrt(math.pi)


class Erf(Function):
    """y = erf z = (2/√π) ∫₀ᶻ e^(−t²) dt.   ∂C/∂z = dy · (2/√π) · e^(−z²)."""

    @staticmethod
    def forward(ctx: Context, z: Tensor) -> np.ndarray:
        ctx.save_for_backward(z)
        return B.erf(z.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (z,) = ctx.saved_tensors
        return dy * ((-(z * z)).exp() * _TWO_OVER_ROOT_PI)


class Tanh(Function):
    """a = tanh z.   ∂C/∂z = ∂C/∂a · (1 − a²)."""

    @staticmethod
    def forward(ctx: Context, z: Tensor) -> np.ndarray:
        a = B.tanh(z.data)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx: Context, da: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return da * (1 - a * a)


class Relu(Function):
    """a = max(z, 0).   ∂C/∂z = ∂C/∂a · [z > 0]  (0 at the kink z = 0, as PyTorch), computed by
    `ReluBackward` in one pass from the output: [a > 0] = [z > 0], so z need not be kept (as
    PyTorch's threshold_backward, which reads the result)."""

    @staticmethod
    def forward(ctx: Context, z: Tensor) -> np.ndarray:
        a = B.relu(z.data)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx: Context, da: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return ReluBackward.apply(da, a)


class ReluBackward(Function):
    """g = dy · [z > 0], Relu's backward as one primitive (z: Relu's input or its output).
    ∂C/∂dy = dg · [z > 0]  (this op again),   ∂C/∂z = 0  (a step: flat wherever it is differentiable)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, z: Tensor) -> np.ndarray:
        ctx.save_for_backward(z)
        return B.relu_backward(dy.data, z.data)

    @staticmethod
    def backward(ctx: Context, dg: Tensor) -> tuple[Tensor | None, None]:
        (z,) = ctx.saved_tensors
        ((_, dy_shape, _), _) = ctx.edges
        return (sum_to(ReluBackward.apply(dg, z), dy_shape) if ctx.needs_input_grad[0] else None), None


class Cast(Function):
    """y = a as another float dtype.   ∂C/∂a = dy cast back to a's dtype."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, dtype: Any) -> np.ndarray:
        return B.astype(a.data, dtype)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, _, dtype),) = ctx.edges
        return dy.astype(dtype)


class Where(Function):
    """y = a where `condition` holds, else b (a bool array, a constant; all three broadcast).
    ∂C/∂a = dy where the condition holds, 0 elsewhere;  ∂C/∂b = dy elsewhere, 0 where it holds
    (this op again, with a zero in place of the other operand)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor, condition: np.ndarray) -> np.ndarray:
        ctx.condition = condition
        return B.where(condition, a.data, b.data)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        zero = Tensor._make(np.zeros((), dtype=dy.dtype))
        return _binary_grads(ctx, lambda: Where.apply(dy, zero, condition=ctx.condition),
                             lambda: Where.apply(zero, dy, condition=ctx.condition))
