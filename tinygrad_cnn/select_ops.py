"""PyTorch's selecting and rearranging functions: sort, argsort, topk, gather, take_along_dim,
masked_fill, repeat, flip, roll, and the gradient-free one_hot, randperm and unique.

No primitive of their own: the order is found on the array (numpy, outside the graph) and the
values are then picked by integer-array indexing (GetItem, whose backward scatter-adds with
IndexAdd, whose backward is GetItem again), `where`, `cat`, `reshape` and `expand`. So the
gradient goes to the picked elements and second derivatives come from those primitives' rules.
Integer and bool tensors go through the same indexing, without gradients.

Ties: sort, argsort and topk always use a stable order (equal values keep their order in x,
descending too, as PyTorch's ``stable=True``); NaN counts as larger than every number, as
PyTorch's. ``stable=False`` and ``sorted=False`` give that same order: PyTorch leaves it
unspecified, and one order everywhere makes results reproducible.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import creation, devices, dtypes
from tinygrad_cnn.shape_ops import cat, tensor_input as _input
from tinygrad_cnn.shapes import normalize_axes
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.tensor_ops import ValuesIndices, clone, where


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _axis(dim: Any, ndim: int, name: str) -> int:
    """One dim as an axis >= 0; a 0-d tensor takes 0 or -1 (as its 1-element reshape)."""
    if not _is_int(dim):
        raise TypeError(f"{name}: dim must be an int, got {dim!r}")
    return normalize_axes(dim, max(ndim, 1))[0]


def _order(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The stable argsort of `a` along `axis` (int64). Descending sorts the reversed array
    ascending and reverses the result, which keeps ties (and NaNs, first) in their order in `a`
    and needs no negation (that would overflow for the most negative integer and fails for bool)."""
    if not descending:
        return np.argsort(a, axis=axis, kind="stable").astype(np.int64, copy=False)
    n = a.shape[axis]
    reversed_order = np.argsort(np.flip(a, axis), axis=axis, kind="stable").astype(np.int64, copy=False)
    return np.flip(n - 1 - reversed_order, axis)


def _along(x: Tensor, axis: int, index: np.ndarray) -> Tensor:
    """out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (torch.gather's rule, same ndim): one
    integer-array index, an open grid on every other dim, so the gradient is scattered back
    by GetItem's rule (positions picked twice receive the sum)."""
    ndim = index.ndim
    grid = tuple(index if d == axis else np.arange(n).reshape((n,) + (1,) * (ndim - d - 1))
                 for d, n in enumerate(index.shape))
    return x[grid]


def _copy(result: Tensor, x: Tensor) -> Tensor:
    """`result` in memory of its own: PyTorch's repeat, flip and roll always copy, while a
    reshape or a slice here may give a view of x's array (or a zero-stride broadcast)."""
    return clone(result) if np.may_share_memory(result.data, x.data) else result


# ---- sorting ----------------------------------------------------------------------------------
def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """torch.sort: (values, indices) along `dim`, ascending unless `descending`; always stable."""
    return _sort(_input(x, "sort"), dim, descending, "sort")


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """torch.argsort: the indices (int64) that sort x along `dim`; always stable."""
    return _sort(_input(x, "argsort"), dim, descending, "argsort").indices


def _sort(x: Tensor, dim: Any, descending: bool, name: str) -> ValuesIndices:
    axis = _axis(dim, x.ndim, name)
    if x.ndim == 0:
        values, indices = _sort(x.reshape(1), 0, descending, name)
        return ValuesIndices(values.reshape(()), indices.reshape(()))
    order = _order(x.data, axis, bool(descending))
    return ValuesIndices(_along(x, axis, order), Tensor._make(order))


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002
    """torch.topk: the k largest (or smallest) elements along `dim` and their indices, in sorted
    order (`sorted=False` too); among ties the first in x comes first."""
    x = _input(x, "topk")
    axis = _axis(dim, x.ndim, "topk")
    if x.dtype == dtypes.bool_:  # as PyTorch's CPU topk
        raise TypeError("topk: bool tensors are not supported (convert with .long())")
    if not _is_int(k):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    size = x.shape[axis] if x.ndim else 1
    if k < 0:
        raise ValueError(f"topk: k={k} must be >= 0")
    if k > size:
        raise ValueError(f"topk: k={k} is larger than dim {dim} of size {size}")
    if x.ndim == 0:  # k = 1: x itself and index 0; k = 0: nothing, of shape (0,)
        values, indices = topk(x.reshape(1), k, 0, largest)
        return ValuesIndices(values.reshape(()), indices.reshape(())) if k else ValuesIndices(values, indices)
    order = _order(x.data, axis, bool(largest))[(slice(None),) * axis + (slice(0, int(k)),)]
    return ValuesIndices(_along(x, axis, order), Tensor._make(np.ascontiguousarray(order)))


# ---- picking by index -------------------------------------------------------------------------
def _index_array(index: Any, name: str, kinds: tuple[np.dtype, ...]) -> np.ndarray:
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}: index must be a Tensor, not {type(index).__name__}")
    if index.dtype not in kinds:
        raise TypeError(f"{name}: index must be an {' or '.join(map(str, kinds))} tensor, got {index.dtype}")
    return index.data.astype(np.int64, copy=False)


def _in_range(index: np.ndarray, low: int, size: int, dim: Any, name: str) -> None:
    if index.size and (index.min() < low or index.max() >= size):
        bad = index.min() if index.min() < low else index.max()
        raise IndexError(f"{name}: index {bad} is out of range for dim {dim} of size {size}")


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (for dim 1); `index` (int64 or int32)
    has x's ndim and, outside `dim`, no dim longer than x's; out has index's shape. The gradient
    is added back at the picked places (twice picked, twice added)."""
    x = _input(x, "gather")
    axis = _axis(dim, x.ndim, "gather")
    idx = _index_array(index, "gather", (dtypes.int64, dtypes.int32))
    if x.ndim == 0:  # as PyTorch's: a 0-d x takes a 0-d or 1-d index of zeros
        if idx.ndim > 1:
            raise ValueError(f"gather: index of shape {idx.shape} for a 0-d tensor (0-d or 1-d only)")
        _in_range(idx, 0, 1, dim, "gather")
        return _along(x.reshape(1), 0, idx.reshape(-1)).reshape(idx.shape)
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index of shape {idx.shape} and x of shape {x.shape} differ in ndim")
    if any(i > n for d, (i, n) in enumerate(zip(idx.shape, x.shape)) if d != axis):
        raise ValueError(f"gather: index of shape {idx.shape} is larger than x of shape {x.shape} outside dim {dim}")
    _in_range(idx, 0, x.shape[axis], dim, "gather")
    return _along(x, axis, idx)


def take_along_dim(x: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """torch.take_along_dim: gather along `dim` with x and `indices` (int64) broadcast together
    outside `dim`; without `dim`, the flattened x at the flattened indices (1-d, as PyTorch's). A
    negative index counts from the end."""
    x = _input(x, "take_along_dim")
    idx = _index_array(indices, "take_along_dim", (dtypes.int64,))
    if dim is None:
        x, idx, axis = x.reshape(-1), idx.reshape(-1), 0
    else:
        axis = _axis(dim, x.ndim, "take_along_dim")
        if x.ndim == 0:
            x, idx = x.reshape(1), idx.reshape(-1)
        if idx.ndim != x.ndim:
            raise ValueError(f"take_along_dim: indices of shape {idx.shape} and x of shape {x.shape} differ in ndim")
    outside = [list(s) for s in (x.shape, idx.shape)]
    outside[0][axis] = outside[1][axis] = 1
    try:
        common = list(np.broadcast_shapes(tuple(outside[0]), tuple(outside[1])))
    except ValueError:
        raise ValueError(f"take_along_dim: indices of shape {idx.shape} and x of shape {x.shape} do not "
                         f"broadcast outside dim {dim}") from None
    n = x.shape[axis]
    _in_range(idx, -n, n, dim, "take_along_dim")  # numpy's indexing counts a negative one from the end
    x_shape, idx_shape = list(common), list(common)
    x_shape[axis], idx_shape[axis] = n, idx.shape[axis]
    return _along(x.expand(tuple(x_shape)), axis, np.broadcast_to(idx, tuple(idx_shape)))


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """torch.masked_fill: `value` where the bool `mask` holds, x elsewhere (x and mask broadcast
    together), in x's dtype. x's gradient is 0 where filled; a 0-d value tensor's is the sum of
    the filled places'."""
    x = _input(x, "masked_fill")
    condition = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if condition.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {condition.dtype}")
    try:
        np.broadcast_shapes(x.shape, condition.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {condition.shape} and x of shape {x.shape} "
                         "do not broadcast") from None
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
    elif not isinstance(value, (numbers.Real, np.number, np.bool_)):
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {type(value).__name__}")
    number = np.asarray(value.data if isinstance(value, Tensor) else value)
    if x.dtype.kind in "iuf" and number.dtype.kind in "iuf":  # PyTorch refuses what would wrap or overflow
        limits = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
        finite = bool(np.isfinite(number))
        if (finite and not limits.min <= number <= limits.max) or (not finite and x.dtype.kind in "iu"):
            raise ValueError(f"masked_fill: value {number.item()!r} cannot be converted to {x.dtype} without overflow")
    if not dtypes.is_floating(x.dtype):  # an integer or bool x keeps its dtype: 1.5 becomes 1, as PyTorch's
        fill = number.astype(x.dtype)
        return Tensor._make(np.where(condition, fill, x.data))
    fill = value.to(x.dtype) if isinstance(value, Tensor) else Tensor._make(np.asarray(value, x.dtype))
    return where(condition, fill, x)


# ---- rearranging ------------------------------------------------------------------------------
def _ints(values: tuple[Any, ...], name: str, what: str) -> tuple[int, ...]:
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    if not all(_is_int(v) for v in values):
        raise TypeError(f"{name}: {what} must be ints, got {values!r}")
    return tuple(int(v) for v in values)


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """Tensor.repeat: x tiled sizes[i] times along dim i; more sizes than dims add leading dims
    (numpy's tile). A broadcast of x with a new dim before each dim, then merged: the gradient
    sums the copies."""
    x = _input(x, "repeat")
    if not sizes:
        raise TypeError("repeat: give the number of copies for each dim")
    sizes = _ints(sizes, "repeat", "sizes")
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat: sizes {sizes} must be >= 0")
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes for a tensor of shape {x.shape} (one per dim at least)")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = x.reshape(tuple(v for n in shape for v in (1, n)))
    spread = spread.expand(tuple(v for r, n in zip(sizes, shape) for v in (r, n)))
    return _copy(spread.reshape(tuple(r * n for r, n in zip(sizes, shape))), x)


def flip(x: Tensor, dims: Any) -> Tensor:
    """torch.flip: x reversed along `dims` (an int or a sequence; no dim twice), as a copy."""
    x = _input(x, "flip")
    if isinstance(dims, tuple) and len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]  # Tensor.flip's (0, 1) beside flip(x, (0, 1))
    axes = normalize_axes(dims, x.ndim) if dims is not None else None
    if axes is None:
        raise TypeError("flip: dims must be an int or a sequence of ints, got None")
    return _copy(x[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(x.ndim))], x)


def roll(x: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """torch.roll: x shifted `shifts[i]` places along `dims[i]`, what falls off the end coming
    back at the start; without `dims`, along the flattened x, shape kept. A cat of two slices
    per dim: the gradient is rolled back."""
    x = _input(x, "roll")
    shift_list = _ints(shifts if isinstance(shifts, (tuple, list)) else (shifts,), "roll", "shifts")
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: {len(shift_list)} shifts without dims (one shift rolls the flattened tensor)")
        return roll(x.reshape(-1), shift_list, 0).reshape(x.shape)
    dim_list = _ints(dims if isinstance(dims, (tuple, list)) else (dims,), "roll", "dims")
    if len(shift_list) != len(dim_list):
        raise ValueError(f"roll: {len(shift_list)} shifts for {len(dim_list)} dims (one shift per dim)")
    result = x
    for shift, dim in zip(shift_list, dim_list):
        axis = _axis(dim, x.ndim, "roll")
        n = x.shape[axis] if x.ndim else 1
        if n and shift % n:
            cut = n - shift % n
            before = (slice(None),) * axis
            result = cat([result[before + (slice(cut, n),)], result[before + (slice(0, cut),)]], axis)
    return _copy(result, x)


# ---- no gradient ------------------------------------------------------------------------------
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """torch.nn.functional.one_hot: int64 class indices → int64 (*shape, num_classes) with a 1
    at each index; num_classes=-1 takes the largest index + 1. No gradient."""
    labels = _input(tensor, "one_hot")
    if labels.dtype != dtypes.int64:
        raise TypeError(f"one_hot: the class indices must be an int64 tensor, got {labels.dtype}")
    if not _is_int(num_classes) or num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be an int >= 0, or -1 to infer it, got {num_classes!r}")
    a = labels.data
    if num_classes == -1:
        if a.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = int(a.max()) + 1
    if a.size and a.min() < 0:
        raise ValueError(f"one_hot: class values must be >= 0, got {a.min()}")
    if a.size and a.max() >= num_classes:
        raise ValueError(f"one_hot: class value {a.max()} is not below num_classes={num_classes}")
    return Tensor._make((a[..., None] == np.arange(int(num_classes))).astype(np.int64))


def randperm(n: int, generator: Any = None, dtype: Any = dtypes.int64, device: Any = None) -> Tensor:
    """torch.randperm: 0 .. n-1 in a random order, drawn from `generator` (a numpy Generator; None:
    the global one that manual_seed sets), int64 unless `dtype` says otherwise."""
    devices.check(device)
    if not _is_int(n):
        raise TypeError(f"randperm: n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"randperm: n must be >= 0, got {n}")
    kind = dtypes.resolve(dtype)
    if kind == dtypes.bool_:
        raise TypeError("randperm: dtype bool is not supported (values go up to n - 1)")
    if kind == dtypes.uint8 and n > 256:
        raise ValueError(f"randperm: n={n} does not fit uint8 (at most 256)")
    rng = creation.generator(generator, "randperm: generator")
    return Tensor._make(rng.permutation(int(n)).astype(kind))


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002 -- torch's name
           return_counts: bool = False, dim: Any = None) -> Any:
    """torch.unique (dim=None only): the distinct values of x, ascending (`sorted=False` too), and
    as asked the inverse (x's shape: where each element's value is in the output) and the counts,
    both int64. Each NaN is distinct, as PyTorch's. No gradient."""
    x = _input(x, "unique")
    if dim is not None:
        raise ValueError(f"unique: dim={dim!r} is not supported (only dim=None: the unique elements)")
    values, inverse, counts = np.unique(x.data.reshape(-1), return_inverse=True, return_counts=True,
                                        equal_nan=False)
    out = [Tensor._make(values)]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64).reshape(x.shape)))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


# PyTorch's torch.* names; repeat is Tensor.repeat's and one_hot nn.functional's only.
__all__ = ["sort", "argsort", "topk", "gather", "take_along_dim", "masked_fill", "flip", "roll", "randperm",
           "unique"]
