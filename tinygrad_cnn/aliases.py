"""PyTorch's other spellings of what tinygrad_cnn already computes, so that code written for
PyTorch reads the same here: Tensor's alias methods (a slot-less mixin of `Tensor`, as
operators.py is: the device API of a framework whose one device is the CPU, the comparison
methods, ``t()``, ``type()``, ``contiguous()``, ``square()``, the ``new_*`` factories, the
method forms of select_ops' sort, topk, gather, ...; ``to`` is in tensor.py), and the ``torch.*``
function forms (``torch.exp(x)``, ``torch.matmul(a, b)``, ``torch.isnan(x)``...), each one call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_cnn import devices, dtypes

if TYPE_CHECKING:
    from tinygrad_cnn.tensor import Tensor

# (torch.sigmoid, relu, tanh and matmul are tinygrad_cnn.functional's, exported by the package)
__all__ = ["exp", "log", "pow", "square", "mm", "numel", "isnan", "isinf", "isfinite", "allclose", "equal"]

# Tensor.type()'s names, as PyTorch's legacy tensor types
TYPE_NAMES = {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor", "int64": "torch.LongTensor",
              "int32": "torch.IntTensor", "uint8": "torch.ByteTensor", "bool": "torch.BoolTensor"}


class Aliases:
    """PyTorch's other names for what `Tensor` does."""

    __slots__ = ()

    # ---- the device: always the CPU --------------------------------------------------------
    @property
    def device(self) -> devices.device:
        return devices.CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def cpu(self) -> Tensor:
        """This tensor: it is in the CPU's memory already (as PyTorch's cpu() of a CPU tensor)."""
        return self

    def contiguous(self) -> Tensor:
        """This tensor: `view` works on any tensor here (see `reshape`), so nothing to copy."""
        return self

    def type(self, dtype: Any = None) -> Any:
        """Without `dtype`, PyTorch's type name ('torch.FloatTensor', ...); with one, ``to(dtype)``."""
        if dtype is None:
            return TYPE_NAMES[str(self.dtype)]
        return self.astype(dtype)

    # ---- comparisons and small arithmetic, by name ----------------------------------------------
    def eq(self, other: Any) -> Tensor:
        return self == other

    def ne(self, other: Any) -> Tensor:
        return self != other

    def lt(self, other: Any) -> Tensor:
        return self < other

    def le(self, other: Any) -> Tensor:
        return self <= other

    def gt(self, other: Any) -> Tensor:
        return self > other

    def ge(self, other: Any) -> Tensor:
        return self >= other

    def square(self) -> Tensor:
        return self * self

    def t(self) -> Tensor:
        """The transpose of a matrix (a tensor of at most 2 dims, as PyTorch's t())."""
        if self.ndim > 2:
            raise ValueError(f"t() takes a tensor of at most 2 dims, got shape {self.shape}: use transpose(d0, d1)")
        return self.T

    # ---- new tensors of this one's dtype ----------------------------------------------------------
    def new_zeros(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.zeros(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.ones(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.empty(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> Tensor:
        return creation.full(size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        """A copy of `data` as a tensor of this one's dtype (or `dtype`)."""
        devices.check(device)
        made = tensor_ops.tensor(data, dtype=dtypes.resolve(dtype or self.dtype))
        made.requires_grad = requires_grad
        return made

    # ---- selecting and rearranging: the method forms of tinygrad_cnn.select_ops ------------------
    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        return select_ops.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return select_ops.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
        return select_ops.topk(self, k, dim, largest, sorted)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        return select_ops.gather(self, dim, index)

    def take_along_dim(self, indices: Tensor, dim: int | None = None) -> Tensor:
        return select_ops.take_along_dim(self, indices, dim)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return select_ops.masked_fill(self, mask, value)

    def repeat(self, *sizes: Any) -> Tensor:
        return select_ops.repeat(self, *sizes)

    def flip(self, *args: Any, dims: Any = None) -> Tensor:
        """x.flip(0, 1), x.flip((0, 1)) or x.flip(dims=(0, 1)), as PyTorch's."""
        if (dims is None) == (not args):
            raise TypeError(f"flip() takes the dims once, positionally or as dims=, got {args!r} and dims={dims!r}")
        return select_ops.flip(self, args if dims is None else dims)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return select_ops.roll(self, shifts, dims)

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
               dim: Any = None) -> Any:
        return select_ops.unique(self, sorted, return_inverse, return_counts, dim)


# ---- torch.* function forms ------------------------------------------------------------------
def exp(x: Tensor) -> Tensor:
    return _input(x, "exp").exp()


def log(x: Tensor) -> Tensor:
    return _input(x, "log").log()


def pow(x: Any, exponent: Any) -> Tensor:  # noqa: A001 -- torch.pow
    """x ** exponent; a number for x raises it to a tensor's powers, as torch.pow(2, t)."""
    return _input(x, "pow") ** exponent if isinstance(x, Tensor) else x ** _input(exponent, "pow")


def square(x: Tensor) -> Tensor:
    return _input(x, "square").square()


def mm(a: Tensor, b: Tensor) -> Tensor:
    """The product of two matrices (2-D only, as torch.mm; matmul broadcasts)."""
    for name, t in (("input", a), ("mat2", b)):
        if _input(t, "mm").ndim != 2:
            raise ValueError(f"mm: {name} must be a matrix (2-D), got shape {t.shape}")
    return functional.matmul(a, b)


def numel(x: Tensor) -> int:
    return _input(x, "numel").numel()


def isnan(x: Tensor) -> Tensor:
    """Where x is NaN: a bool tensor, outside the graph (as every comparison)."""
    return Tensor._make(np.isnan(_input(x, "isnan").data))


def isinf(x: Tensor) -> Tensor:
    return Tensor._make(np.isinf(_input(x, "isinf").data))


def isfinite(x: Tensor) -> Tensor:
    return Tensor._make(np.isfinite(_input(x, "isfinite").data))


def allclose(a: Tensor, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether |a − b| <= atol + rtol·|b| everywhere (broadcasting), as torch.allclose."""
    other = b.data if isinstance(b, Tensor) else b
    return bool(np.allclose(_input(a, "allclose").data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Tensor, b: Tensor) -> bool:
    """Whether a and b have the same shape and the same values (as torch.equal)."""
    return _input(a, "equal").shape == _input(b, "equal").shape and bool(np.array_equal(a.data, b.data))


def bind() -> None:
    """The names the aliases are written against, which import Tensor: tensor.py calls this once
    the class exists."""
    global Tensor, creation, functional, select_ops, tensor_ops, _input
    from tinygrad_cnn import creation, functional, select_ops, tensor_ops  # noqa: F811
    from tinygrad_cnn.shape_ops import tensor_input as _input  # noqa: F811
    from tinygrad_cnn.tensor import Tensor  # noqa: F811
