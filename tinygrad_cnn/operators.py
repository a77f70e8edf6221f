"""Tensor's Python operators: arithmetic and comparisons with PyTorch's promotion (numpy's
broadcasting), the in-place operators and matrix products. A mixin of `Tensor` (tensor.py),
kept apart so that each file reads in one sitting; every operator is a thin call of a primitive
in ``tinygrad_cnn.ops``.
"""
from __future__ import annotations

import numbers
import operator
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_cnn import dtypes

if TYPE_CHECKING:
    from tinygrad_cnn.tensor import Tensor


class Operators:
    """The operators of `Tensor` (which sets `_make`, `data`, `dtype`, `shape`, `ndim`,
    `requires_grad` and `is_leaf`)."""

    __slots__ = ()

    def _constant(self, value: Any) -> Tensor:
        """A non-Tensor operand: a Python or numpy scalar takes this tensor's dtype unless it is
        of a higher category (see tinygrad_cnn.dtypes); an array or list becomes a Tensor as
        torch.tensor makes one (integers stay integers: 16777217 is not a float32)."""
        if isinstance(value, numbers.Number) and not isinstance(value, np.ndarray):
            return Tensor._make(np.asarray(value, dtype=dtypes.scalar_dtype(value, self.dtype)))
        return Tensor._make(dtypes.to_array(value, keep_integers=True))


    # ---- elementwise arithmetic (numpy broadcasting) -------------------------------------------
    def _promote(self, other: Any) -> tuple[Tensor, Tensor]:
        """Both operands as Tensors of one dtype (PyTorch's promotion, recorded as a Cast)."""
        if not isinstance(other, Tensor):
            other = self._constant(other)
        if other.dtype != self.dtype:
            common = dtypes.result_type(self.dtype, other.dtype, self.ndim == 0, other.ndim == 0)
            return self.to(common), other.to(common)
        return self, other

    def _compare(self, compare: np.ufunc, other: Any) -> Tensor:
        """A bool tensor, outside the graph (a comparison has no gradient)."""
        a, b = self._promote(other)
        try:
            return Tensor._make(np.asarray(compare(a.data, b.data)))
        except ValueError:
            raise ValueError(f"comparison: operands of shapes {a.shape} and {b.shape} do not broadcast") from None

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(np.greater, other)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(np.greater_equal, other)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(np.less, other)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(np.less_equal, other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return False if other is None else self._compare(np.equal, other)  # t == None: False, as PyTorch

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return True if other is None else self._compare(np.not_equal, other)

    def _binary(self, fn: type, other: Any, reverse: bool = False) -> Tensor:
        a, b = self._promote(other)
        if reverse:
            a, b = b, a
        try:
            if a.data.shape != b.data.shape:
                np.broadcast_shapes(a.data.shape, b.data.shape)
        except ValueError:
            raise ValueError(
                f"{fn.__name__}: operands of shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
        return fn.apply(a, b)

    def __add__(self, other: Any) -> Tensor:
        return self._binary(ops.Add, other)

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(ops.Add, other, reverse=True)

    def __sub__(self, other: Any) -> Tensor:
        return self._binary(ops.Sub, other)

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(ops.Sub, other, reverse=True)

    def __mul__(self, other: Any) -> Tensor:
        return self._binary(ops.Mul, other)

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(ops.Mul, other, reverse=True)

    def __truediv__(self, other: Any) -> Tensor:  # true division: integers become float32 first
        return tensor_ops.floating(self)._binary(ops.Div, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return tensor_ops.floating(self)._binary(ops.Div, other, reverse=True)

    def __pow__(self, other: Any) -> Tensor:
        return self._binary(ops.Pow, other)

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(ops.Pow, other, reverse=True)

    # ---- in-place operators: in place where no graph sees them (saved.assign), as PyTorch's ----
    def __iadd__(self, other: Any) -> Tensor:
        return self._update(operator.add, other, "+")

    def __isub__(self, other: Any) -> Tensor:
        return self._update(operator.sub, other, "-")

    def __imul__(self, other: Any) -> Tensor:
        return self._update(operator.mul, other, "*")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._update(operator.truediv, other, "/")

    def _update(self, op: Any, other: Any, symbol: str) -> Tensor:
        if function.is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.is_leaf and self.requires_grad:
                raise RuntimeError(f"a leaf tensor that requires grad was used in an in-place operation "
                                   f"({symbol}=): update it under no_grad() (as an optimizer step does)")
            return op(self, other)  # recorded: the name is rebound to the result (no in-place ops in a graph)
        with function.no_grad():
            saved.assign(self, op(self, other).data, f"{symbol}=")
        return self

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __matmul__(self, other: Any) -> Tensor:
        return functional.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        a, b = self._promote(other)
        return functional.matmul(b, a)



def bind() -> None:
    """The names the operators are written against, which import Tensor: tensor.py calls this
    once the class exists (the one import cycle, as in tensor.py)."""
    global Tensor, function, functional, ops, saved, tensor_ops
    from tinygrad_cnn import function, functional, ops, saved, tensor_ops  # noqa: F811
    from tinygrad_cnn.tensor import Tensor  # noqa: F811
