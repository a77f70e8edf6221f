"""Tensor: an array, its gradient, and the node of the graph that produced it.

A Tensor made by an op in grad mode remembers its node (`Context`); `backward()` walks the
nodes in reverse topological order and each node's `Function.backward` turns ∂C/∂y into ∂C/∂x
for its inputs (see ``tinygrad_cnn.autograd``). Every operator here is a thin call of a
primitive in ``tinygrad_cnn.ops`` or a composition in ``tinygrad_cnn.functional``.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tinygrad_cnn.shapes import normalize_axes, reshape_target

if TYPE_CHECKING:
    from tinygrad_cnn.function import Context

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from error
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """The array a Tensor wraps: float32/float64 keep their dtype, other numbers become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (str, bytes)):
        raise TypeError(f"Tensor data must be numbers, got {type(data).__name__} {data!r:.40}")
    try:
        array = np.asarray(data)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"Tensor data must be a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        what = f"an array of dtype {array.dtype}" if isinstance(data, np.ndarray) or array.dtype != object \
            else f"{type(data).__name__} {data!r:.60}"
        raise TypeError(f"Tensor data must be real numbers (bool, int or float), got {what}")
    if dtype is not None:
        target = _float_dtype(dtype)
    elif array.dtype in FLOAT_DTYPES and isinstance(data, (np.ndarray, np.generic)):
        target = array.dtype  # a float32/float64 array keeps its dtype; Python floats become float32
    elif array.dtype.kind == "f" and array.dtype.itemsize > 8:
        raise TypeError(f"dtype {array.dtype} is not supported; use float32 or float64")
    else:
        target = np.dtype(np.float32)
    return np.array(array, dtype=target, copy=True)  # own the memory, as torch.tensor does


class Tensor:
    """An n-dimensional float32/float64 array that records the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)`` copies `data`. float32 and float64 arrays
    keep their dtype; Python numbers, lists, bool and integer arrays become float32 unless
    `dtype` says otherwise; strings and object arrays are a TypeError.

    While a graph that saved this tensor for its backward is alive, ``data`` is read-only
    (``x.data[...] = 0`` raises); it is writeable again once ``backward()`` has run or the graph
    is dropped. See `tinygrad_cnn.saved`.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    # numpy hands `array + tensor` to Tensor.__radd__ instead of broadcasting over objects.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Context | None = None

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False, ctx: Context | None = None) -> Tensor:
        """Wrap an op's result without copying or converting it."""
        tensor = object.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor.requires_grad = requires_grad
        tensor._ctx = ctx
        return tensor

    def _constant(self, value: Any) -> Tensor:
        """A non-Tensor operand: a Python or numpy scalar takes this tensor's dtype (as in
        PyTorch); an array keeps its own float dtype and promotes as numpy does."""
        if isinstance(value, numbers.Number) and not isinstance(value, np.ndarray):
            if isinstance(value, complex):
                raise TypeError(f"complex operand {value!r} is not supported")
            return Tensor._make(np.asarray(value, dtype=self.dtype))
        return Tensor(value)

    # ---- array-like attributes -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> str | None:
        """The name of the op that made this tensor (None for a leaf)."""
        return None if self._ctx is None else self._ctx.fn.__name__

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied; read-only while a graph saved it)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (requires_grad=False)."""
        return Tensor._make(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """Cast to float32 or float64 (differentiable: the gradient is cast back)."""
        target = _float_dtype(dtype)
        return self if target == self.dtype else ops.Cast.apply(self, dtype=target)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __bool__(self) -> bool:
        if self.data.size != 1:  # numpy's rule: only one element has a truth value
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous (only a "
                             "one-element tensor has one); use (t > 0).sum() or compare .data")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extras = []
        if self.dtype != np.float32:
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.fn.__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({body}{''.join(', ' + e for e in extras)})"

    # ---- autograd ----------------------------------------------------------------------------
    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate ∂self/∂leaf into ``leaf.grad`` for every leaf that requires grad.

        `gradient` (∂C/∂self) may be omitted only for a one-element tensor. Without
        `retain_graph` the saved arrays are freed and a second backward raises RuntimeError;
        `create_graph=True` records the backward pass itself, for higher derivatives.
        """
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # ---- elementwise arithmetic (numpy broadcasting) -------------------------------------------
    def _promote(self, other: Any) -> tuple[Tensor, Tensor]:
        """Both operands as Tensors of one dtype (numpy's promotion, recorded as a Cast)."""
        if not isinstance(other, Tensor):
            other = self._constant(other)
        if other.dtype != self.dtype:
            common = np.result_type(self.dtype, other.dtype)
            return self.astype(common), other.astype(common)
        return self, other

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

    def __truediv__(self, other: Any) -> Tensor:
        return self._binary(ops.Div, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._binary(ops.Div, other, reverse=True)

    def __pow__(self, other: Any) -> Tensor:
        return self._binary(ops.Pow, other)

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(ops.Pow, other, reverse=True)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __matmul__(self, other: Any) -> Tensor:
        return functional.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        a, b = self._promote(other)
        return functional.matmul(b, a)

    def matmul(self, other: Any) -> Tensor:
        return functional.matmul(self, other)

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    # ---- reductions ----------------------------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=normalize_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = normalize_axes(axis, self.ndim)
        count = int(np.prod([self.shape[i] for i in axes]))
        if count == 0 and self.size == 0:
            raise ValueError(f"mean() over an empty axis of a tensor of shape {self.shape} (0/0)")
        return ops.Sum.apply(self, axis=axes, keepdims=keepdims) / count

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis`; the gradient goes to the first maximum (np.argmax order)."""
        axes = normalize_axes(axis, self.ndim)
        if any(self.shape[i] == 0 for i in axes) or (self.size == 0 and not axes):
            raise ValueError(f"max() over an empty axis of a tensor of shape {self.shape}")
        return ops.Max.apply(self, axis=axes, keepdims=keepdims)

    # ---- movement ------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=reshape_target(self.shape, shape))

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge axes start_axis..end_axis into one (all of them by default, as numpy)."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (normalize_axes(a, self.ndim)[0] for a in (start_axis, end_axis))
        if start > end:
            raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
        merged = math.prod(self.shape[start : end + 1])
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes, as ``numpy.transpose`` (no argument reverses them; note that
        ``t.transpose(0, 1)`` is a permutation, not PyTorch's swap: use `swapaxes` for that)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        ndim = self.data.ndim
        perm = _PERMUTATIONS.get((axes, ndim))  # the usual call: a permutation seen before
        if perm is None:
            if not axes:
                perm = tuple(range(ndim))[::-1]
            elif all(type(a) is int and -ndim <= a < ndim for a in axes):
                perm = tuple(a % ndim for a in axes)
            else:
                perm = tuple(normalize_axes(a, ndim)[0] for a in axes)
            if sorted(perm) != list(range(ndim)):
                raise ValueError(f"transpose: axes {axes} are not a permutation of a {ndim}-d tensor's axes")
            if all(type(a) is int for a in axes) and len(_PERMUTATIONS) < 1024:
                _PERMUTATIONS[(axes, ndim)] = perm
        return ops.Transpose.apply(self, axes=perm)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        if self.ndim == 0:
            normalize_axes(axis1, 0), normalize_axes(axis2, 0)  # only 0 and -1 are allowed
            return self.transpose()
        perm = list(range(self.ndim))
        a, b = normalize_axes(axis1, self.ndim)[0], normalize_axes(axis2, self.ndim)[0]
        perm[a], perm[b] = perm[b], perm[a]
        return self.transpose(perm)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        shape = tuple(shape)
        try:
            fits = np.broadcast_shapes(self.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"cannot broadcast a tensor of shape {self.shape} to {shape}")
        return self if shape == self.shape else ops.BroadcastTo.apply(self, shape=shape)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_index(index, self.shape))

    # ---- the article's ops -----------------------------------------------------------------------
    def correlate2d(self, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
        return functional.correlate2d(self, k, mode=mode, stride=stride)

    def convolve2d(self, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
        return functional.convolve2d(self, k, mode=mode, stride=stride)

    def maxpool2d(self, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None) -> Tensor:
        return functional.maxpool2d(self, size=size, stride=stride)


# (axes as given, ndim) -> the permutation they name: checked once (ints only, so that the key is hashable)
_PERMUTATIONS: dict[tuple[tuple[int, ...], int], tuple[int, ...]] = {}


def _index(index: Any, shape: tuple[int, ...]) -> Any:
    """Lists inside an index become arrays; the index is checked once here, so that a bad one is
    an IndexError naming the shape, not an error deep in the backward."""
    def convert(part: Any) -> Any:
        if isinstance(part, Tensor):  # it holds floats: as a mask or as indices it would be ambiguous
            raise TypeError("index with an int, a slice, or a numpy integer or boolean array, not a Tensor")
        if isinstance(part, list):
            return np.asarray(part)
        return part

    index = tuple(convert(p) for p in index) if isinstance(index, tuple) else convert(index)
    try:
        np.broadcast_to(np.bool_(False), shape)[index]  # a zero-stride view: nothing allocated
    except IndexError as error:
        raise IndexError(f"index {index!r} does not fit a tensor of shape {shape}: {error}") from None
    return index


# The one import cycle: the ops, the graph and the functional API are written against Tensor, so
# they are imported once it exists (the package imports this module first).
from tinygrad_cnn import autograd, functional, ops  # noqa: E402
