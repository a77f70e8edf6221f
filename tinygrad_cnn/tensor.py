"""Tensor: an array, its gradient, and the node of the graph that produced it.

A Tensor made by an op in grad mode remembers its node (`Context`); `backward()` walks the
nodes in reverse topological order and each node's `Function.backward` turns ∂C/∂y into ∂C/∂x
for its inputs (see ``tinygrad_cnn.autograd``). Every operator here is a thin call of a
primitive in ``tinygrad_cnn.ops`` or a composition in ``tinygrad_cnn.functional``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from tinygrad_cnn import dtypes
from tinygrad_cnn.operators import Operators
from tinygrad_cnn.aliases import Aliases
from tinygrad_cnn.shapes import check_index, normalize_axes, reshape_target, torch_order

if TYPE_CHECKING:
    from tinygrad_cnn.function import Context

class Tensor(Operators, Aliases):
    """An n-dimensional array that records the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)`` copies `data`, as ``torch.Tensor``: float32
    and float64 arrays keep their dtype; Python numbers, lists, bool and integer arrays become
    float32 unless `dtype` says otherwise (``tinygrad_cnn.tensor()`` keeps integers and bools);
    strings, object arrays and float16 are a TypeError. Only floating tensors can require grad.

    While a graph that saved this tensor for its backward is alive, ``data`` is read-only
    (``x.data[...] = 0`` raises); it is writeable again once ``backward()`` has run or the graph
    is dropped. See `tinygrad_cnn.saved`.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_hooks", "__weakref__")
    # numpy hands `array + tensor` to Tensor.__radd__ instead of broadcasting over objects.
    __array_ufunc__ = None
    __hash__ = object.__hash__  # by identity, as PyTorch's: == compares elementwise

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = dtypes.to_array(data.data if isinstance(data, Tensor) else data, dtype)
        self.grad: Tensor | None = None
        self._ctx: Context | None = None
        self.requires_grad = requires_grad

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not dtypes.is_floating(self.data.dtype):
            raise TypeError(f"only floating tensors (float32 or float64) can require grad, got {self.data.dtype}")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad in place; returns self."""
        self.requires_grad = requires_grad
        return self

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False, ctx: Context | None = None) -> Tensor:
        """Wrap an op's result without copying or converting it."""
        tensor = object.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor._requires_grad = requires_grad
        tensor._ctx = ctx
        return tensor

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

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the length of `dim` (PyTorch's size; numpy's size is `numel`)."""
        return self.shape if dim is None else self.shape[normalize_axes(dim, self.ndim)[0]]

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> str | None:
        """The name of the op that made this tensor (None for a leaf)."""
        return None if self._ctx is None else self._ctx.fn.__name__

    @property
    def T(self) -> Tensor:
        """The dims reversed."""
        return self.permute(tuple(range(self.ndim))[::-1])

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

    def tolist(self) -> Any:
        return self.data.tolist()

    def to(self, *args: Any, dtype: Any = None, device: Any = None, non_blocking: bool = False,
           copy: bool = False) -> Tensor:
        """PyTorch's to(dtype), to(device, dtype=None), to(tensor): the device must be the CPU,
        the dtype cast as `astype` casts; `copy` makes a new tensor even when nothing changes."""
        target = devices.to_arguments("to", args, dtype, device)
        result = self if target is None else self.astype(target)
        return tensor_ops.clone(result) if copy and result is self else result

    def astype(self, dtype: Any) -> Tensor:
        """Cast to `dtype`: to float32 or float64 differentiably (the gradient is cast back); to
        an integer or bool dtype the result has no gradient."""
        target = dtypes.resolve(dtype)
        if target == self.dtype:
            return self
        if dtypes.is_floating(target):
            return ops.Cast.apply(self, dtype=target)
        return Tensor._make(self.data.astype(target))

    def float(self) -> Tensor:
        return self.astype(dtypes.float32)

    def double(self) -> Tensor:
        return self.astype(dtypes.float64)

    def long(self) -> Tensor:
        return self.astype(dtypes.int64)

    def bool(self) -> Tensor:
        return self.astype(dtypes.bool_)

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

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:  # a 0-d integer tensor as a list index or slice bound, as PyTorch's (only
        # 0-d: numpy reads anything with an __index__ as one integer, so a[labels] of one label would drop an axis)
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise TypeError(f"only a 0-d integer tensor is an index, got {self.dtype} of shape {self.shape}")
        return int(self.item())

    def __format__(self, spec: str) -> str:  # a 0-d tensor formats as its number (f"{loss:.3f}")
        return format(self.item(), spec) if self.ndim == 0 else super().__format__(spec)

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

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

    def register_hook(self, hook: Any) -> Any:
        """hook(grad) runs when a backward computes this tensor's whole gradient, before it is
        used (a leaf's, before it goes into .grad); what it returns (not None) replaces it, as
        PyTorch's. Returns a handle whose remove() takes it away."""
        return autograd.register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf's gradient in .grad at each backward or grad(), as a leaf's (after its hooks)."""
        autograd.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        return self._ctx is not None and self._ctx.__dict__.get("retained", lambda: None)() is self

    def matmul(self, other: Any) -> Tensor:
        return functional.matmul(self, other)

    def exp(self) -> Tensor:
        return ops.Exp.apply(tensor_ops.floating(self))

    def log(self) -> Tensor:
        return ops.Log.apply(tensor_ops.floating(self))

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(tensor_ops.floating(self))

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(tensor_ops.floating(self))

    def sqrt(self) -> Tensor:
        return tensor_ops.sqrt(self)

    def erf(self) -> Tensor:
        return tensor_ops.erf(self)

    def abs(self) -> Tensor:
        return tensor_ops.abs(self)

    def pow(self, exponent: Any) -> Tensor:
        return self ** exponent

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 -- torch's names
        return tensor_ops.clamp(self, min, max)

    clip = clamp

    # ---- reductions (dim=/keepdim= or numpy's axis=/keepdims=: see tinygrad_cnn.tensor_ops) ---------
    def sum(self, *args: Any, **kwargs: Any) -> Tensor:
        return tensor_ops.sum(self, *args, **kwargs)

    def mean(self, *args: Any, **kwargs: Any) -> Tensor:
        return tensor_ops.mean(self, *args, **kwargs)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        """The maximum; with an int dim, (values, indices). The gradient goes to the first maximum."""
        return tensor_ops.max(self, *args, **kwargs)

    def min(self, *args: Any, **kwargs: Any) -> Any:
        return tensor_ops.min(self, *args, **kwargs)

    def var(self, *args: Any, **kwargs: Any) -> Tensor:
        return tensor_ops.var(self, *args, **kwargs)

    def std(self, *args: Any, **kwargs: Any) -> Tensor:
        return tensor_ops.std(self, *args, **kwargs)

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.all(self, dim, keepdim)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.any(self, dim, keepdim)

    def softmax(self, dim: int) -> Tensor:
        return functional.softmax(self, axis=dim)

    def log_softmax(self, dim: int) -> Tensor:
        return functional.log_softmax(self, axis=dim)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return tensor_ops.logsumexp(self, dim, keepdim)

    def prod(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.prod(self, dim, keepdim)

    def cumsum(self, dim: int) -> Tensor:
        return tensor_ops.cumsum(self, dim)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.norm(self, p, dim, keepdim)

    def clone(self) -> Tensor:
        return tensor_ops.clone(self)

    def amax(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return tensor_ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        return tensor_ops.amin(self, dim, keepdim)

    def argmax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.argmax(self, dim, keepdim)

    def argmin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return tensor_ops.argmin(self, dim, keepdim)

    # ---- shape --------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=reshape_target(self.shape, shape))

    view = reshape  # always possible here: a Tensor's data is never a view another tensor must see

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return tensor_ops.flatten(self, start_dim, end_dim)

    def permute(self, *dims: Any) -> Tensor:
        return tensor_ops.permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """dims `dim0` and `dim1` swapped, as PyTorch's (numpy's transpose is `permute`)."""
        return tensor_ops.transpose(self, dim0, dim1)

    swapaxes = transpose

    def unsqueeze(self, dim: int) -> Tensor:
        return tensor_ops.unsqueeze(self, dim)

    def squeeze(self, dim: Any = None) -> Tensor:
        return tensor_ops.squeeze(self, dim)

    def expand(self, *sizes: Any) -> Tensor:
        return tensor_ops.expand(self, *sizes)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return tensor_ops.broadcast_to(self, shape)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        return tensor_ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return tensor_ops.chunk(self, chunks, dim)

    def __setitem__(self, index: Any, value: Any) -> None:
        """x[index] = value, written into x's array where no graph sees it (under no_grad, or with
        nothing requiring grad), as PyTorch's; in a recorded graph, refused (use where())."""
        if function.is_grad_enabled() and (self.requires_grad or getattr(value, "requires_grad", False)):
            raise RuntimeError("item assignment into a tensor of a recorded graph: write it under no_grad(), "
                               "or build the new tensor with where()")
        index = check_index(index, self.shape)
        steps = torch_order(index)
        values = np.asarray(value.data if isinstance(value, Tensor) else value)
        if steps is not None:  # PyTorch's reading of an int beside an array index (see __getitem__)
            saved.assign(Tensor._make(self.data[steps[0]]), values, "item assignment", steps[1])
        else:
            saved.assign(self, values, "item assignment", index)

    def __getitem__(self, index: Any) -> Tensor:
        index = check_index(index, self.shape)
        steps = torch_order(index)  # an int beside an array index: PyTorch's reading, in two steps
        if steps is not None:
            return ops.GetItem.apply(self, index=steps[0])[steps[1]]
        return ops.GetItem.apply(self, index=index)

    # ---- the article's ops -----------------------------------------------------------------------
    def correlate2d(self, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
        return functional.correlate2d(self, k, mode=mode, stride=stride)

    def convolve2d(self, k: Any, mode: str = "valid", stride: int | tuple[int, int] = 1) -> Tensor:
        return functional.convolve2d(self, k, mode=mode, stride=stride)

    def maxpool2d(self, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None) -> Tensor:
        return functional.maxpool2d(self, size=size, stride=stride)


# The one import cycle: the ops, the graph and the functional API are written against Tensor, so
# they are imported once it exists (the package imports this module first).
from tinygrad_cnn import aliases, autograd, devices, function, functional, operators, ops, saved, tensor_ops  # noqa: E402

operators.bind()
aliases.bind()
