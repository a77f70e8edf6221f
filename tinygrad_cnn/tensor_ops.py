"""PyTorch's tensor functions (``torch.abs(t)``, ``torch.argmax(t, dim)``, ...), each also a
Tensor method (``t.abs()``), composed from the primitives: their backward, and the backward of
that, come from the primitives' own rules.

Reductions take PyTorch's ``dim=``/``keepdim=`` and numpy's ``axis=``/``keepdims=`` alike. With
an int `dim`, ``max``/``min`` give PyTorch's (values, indices) pair; with none, or with numpy's
``axis=``, the values alone. Integer and bool tensors have no gradient, so their functions run
on the arrays directly.
"""
from __future__ import annotations

import builtins  # sum, max, min, abs, all and any are PyTorch's names here
import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from tinygrad_cnn import devices, dtypes, ops
from tinygrad_cnn.shapes import normalize_axes
from tinygrad_cnn.shape_ops import (broadcast_to, cat, chunk, expand, flatten, permute, split, squeeze,  # noqa: F401
                                    stack, tensor_input as _input, transpose, unsqueeze)
from tinygrad_cnn.tensor import Tensor

class ValuesIndices(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return, as torch.return_types.max: the values and
    where they are (int64) along `dim`."""
    values: Tensor
    indices: Tensor


def _dims(dim: Any, axis: Any, name: str) -> Any:
    if dim is not None and axis is not None:
        raise TypeError(f"{name}() takes dim= or axis=, not both")
    return axis if dim is None else dim


def _keep(keepdim: bool, keepdims: bool | None) -> bool:
    return bool(keepdim if keepdims is None else keepdims)


def _require_floating(x: Tensor, name: str) -> Tensor:
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{name}() needs a floating tensor (float32 or float64), got {x.dtype}")
    return x


# ---- making tensors ------------------------------------------------------------------------------
def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """torch.tensor: a copy of `data` whose integer and bool values keep an integer or bool dtype
    (Python ints become int64); floats become float32 unless they are a float64 array."""
    devices.check(device)
    made = Tensor._make(dtypes.to_array(data.data if isinstance(data, Tensor) else data, dtype, keep_integers=True))
    made.requires_grad = requires_grad
    return made


def from_numpy(array: np.ndarray) -> Tensor:
    """torch.from_numpy: a Tensor that shares `array`'s memory (no copy), of one of the supported dtypes."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy() takes a numpy array, got {type(array).__name__}")
    if array.dtype not in dtypes.SUPPORTED:
        raise TypeError(f"from_numpy(): dtype {array.dtype} is not supported; the supported dtypes are {dtypes.NAMES}")
    return Tensor._make(array)


# ---- reductions ----------------------------------------------------------------------------------
def sum(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,  # noqa: A001 -- torch.sum
        keepdims: bool | None = None) -> Tensor:
    x = _input(x, "sum")
    axes = normalize_axes(_dims(dim, axis, "sum"), x.ndim)
    if not dtypes.is_floating(x.dtype):  # integer sums are int64, as PyTorch's
        return Tensor._make(np.asarray(x.data.sum(axis=axes, keepdims=_keep(keepdim, keepdims), dtype=np.int64)))
    return ops.Sum.apply(x, axis=axes, keepdims=_keep(keepdim, keepdims))


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    x = _input(x, "mean")
    axes = normalize_axes(_dims(dim, axis, "mean"), x.ndim)
    _require_floating(x, "mean")
    count = math.prod(x.shape[i] for i in axes)
    if count == 0:
        raise ValueError(f"mean() over an empty axis of a tensor of shape {x.shape} (0/0)")
    return ops.Sum.apply(x, axis=axes, keepdims=_keep(keepdim, keepdims)) / count


def var(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """torch.var: Σ (x − mean)² / (N − correction) over `dim` (every dim by default); correction 1
    (Bessel's) unless `correction` or `unbiased=False` (0) says otherwise. Composed: differentiable twice."""
    x = _require_floating(_input(x, "var"), "var")
    if isinstance(dim, bool):  # var(False): PyTorch's positional unbiased
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError("var() takes unbiased= or correction=, not both")
    correction = (1 if unbiased is None or unbiased else 0) if correction is None else correction
    axes = normalize_axes(dim, x.ndim)
    count = math.prod(x.shape[i] for i in axes)
    deviation = x - mean(x, axes, keepdim=True)
    return ops.Sum.apply(deviation * deviation, axis=axes, keepdims=bool(keepdim)) / builtins.max(count - correction, 0)


def std(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """torch.std: the square root of `var` with the same arguments."""
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def all(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001 -- torch.all
    """Whether every element (over `dim`) is nonzero: a bool tensor (uint8 for uint8, as
    PyTorch's), outside the graph."""
    return _truth(np.all, _input(x, "all"), dim, keepdim)


def any(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001 -- torch.any
    """Whether some element (over `dim`) is nonzero: a bool tensor (uint8 for uint8), outside the graph."""
    return _truth(np.any, _input(x, "any"), dim, keepdim)


def _truth(reduce: Any, x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    found = np.asarray(reduce(x.data, axis=normalize_axes(dim, x.ndim), keepdims=keepdim))
    return Tensor._make(found.astype(np.uint8) if x.dtype == np.uint8 else found)


def clone(x: Tensor) -> Tensor:
    """A copy of x's values in new memory, still in the graph (its gradient passes through)."""
    x = _input(x, "clone")
    return x * 1 if x.requires_grad else Tensor._make(x.data.copy())


def amax(x: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Maximum over `dim` (every dim where it is empty or None, as torch.amax); the gradient goes
    to the first maximum (np.argmax order)."""
    x = _input(x, "amax")
    return _extreme(x, normalize_axes(None if dim == () else dim, x.ndim), keepdim, "max")


def amin(x: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Minimum over `dim` (every dim where it is empty or None)."""
    x = _input(x, "amin")
    return _extreme(x, normalize_axes(None if dim == () else dim, x.ndim), keepdim, "min")


def _extreme(x: Tensor, axes: tuple[int, ...], keepdim: bool, name: str) -> Tensor:
    """max or min over `axes` (normalized); a float min is −max(−x), exact as negation is, so its
    gradient goes to the first minimum."""
    if builtins.any(x.shape[i] == 0 for i in axes) or (x.data.size == 0 and not axes):
        raise ValueError(f"{name}() over an empty axis of a tensor of shape {x.shape}")
    if not dtypes.is_floating(x.dtype):
        found = x.data.max(axis=axes, keepdims=keepdim) if name == "max" else x.data.min(axis=axes, keepdims=keepdim)
        return Tensor._make(np.asarray(found))
    if name == "min":
        return -ops.Max.apply(-x, axis=axes, keepdims=keepdim)
    return ops.Max.apply(x, axis=axes, keepdims=keepdim)


def max(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,  # noqa: A001 -- torch.max
        keepdims: bool | None = None) -> Any:
    """torch.max: the maximum (a tensor) without `dim`; with an int `dim`, (values, indices)."""
    x = _input(x, "max")
    return _values_and_indices(x, dim, keepdim, axis, keepdims, "max")


def min(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,  # noqa: A001 -- torch.min
        keepdims: bool | None = None) -> Any:
    """torch.min: the minimum (a tensor) without `dim`; with an int `dim`, (values, indices)."""
    x = _input(x, "min")
    return _values_and_indices(x, dim, keepdim, axis, keepdims, "min")


def _values_and_indices(x: Tensor, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None,
                        name: str) -> Any:
    keep = _keep(keepdim, keepdims)
    axes = normalize_axes(_dims(dim, axis, name), x.ndim)  # numpy's rule: None is every axis, () none
    if axis is not None or dim is None or isinstance(dim, bool) or not isinstance(dim, (numbers.Integral, np.integer)):
        return _extreme(x, axes, keep, name)
    return ValuesIndices(_extreme(x, axes, keep, name), (argmax if name == "max" else argmin)(x, dim, keep))


def argmax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Where the first maximum is (int64): over the flattened tensor without `dim`."""
    x = _input(x, "argmax")
    return _arg(x, dim, keepdim, np.argmax, "argmax")


def argmin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Where the first minimum is (int64): over the flattened tensor without `dim`."""
    x = _input(x, "argmin")
    return _arg(x, dim, keepdim, np.argmin, "argmin")


def _arg(x: Tensor, dim: Any, keepdim: bool, find: Any, name: str) -> Tensor:
    if dim is None:
        if x.data.size == 0:
            raise ValueError(f"{name}() of an empty tensor of shape {x.shape}")
        return Tensor._make(np.asarray(find(x.data), dtype=np.int64))
    (axis,) = normalize_axes(dim, x.ndim) if isinstance(dim, (numbers.Integral, np.integer)) else (None,)
    if axis is None:
        raise TypeError(f"{name}(): dim must be an int or None, got {dim!r}")
    if x.ndim and x.shape[axis] == 0:
        raise ValueError(f"{name}() over an empty dim {dim} of a tensor of shape {x.shape}")
    return Tensor._make(np.asarray(find(x.data, axis=axis if x.ndim else None, keepdims=keepdim), dtype=np.int64))


# ---- elementwise ------------------------------------------------------------------------------------
def where(condition: Any, a: Any, b: Any) -> Tensor:
    """torch.where: a where `condition` (a bool tensor or array) holds, else b, broadcast together.
    ∂C/∂a = dy where the condition holds, ∂C/∂b = dy elsewhere (primitive `Where`)."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where(): condition must be a bool tensor or array, got {cond.dtype}")
    if not isinstance(a, Tensor):  # neither a Tensor: a made as torch.tensor makes one (where(m, 1, 0) is int64)
        a = b._constant(a) if isinstance(b, Tensor) else Tensor._make(dtypes.to_array(a, keep_integers=True))
    a, b = a._promote(b)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where(): condition {cond.shape}, a {a.shape} and b {b.shape} do not broadcast") from None
    if not dtypes.is_floating(a.dtype):
        return Tensor._make(np.where(cond, a.data, b.data))
    return ops.Where.apply(a, b, condition=cond)


def abs(x: Tensor) -> Tensor:  # noqa: A001 -- torch.abs
    """|x|: −x below 0, x above, and +0 at ±0, so that ∂C/∂x = dy · sign(x), 0 at 0 (as PyTorch)."""
    x = _input(x, "abs")
    if not dtypes.is_floating(x.dtype):
        return Tensor._make(np.abs(x.data))
    return where(x == 0, 0, where(x < 0, -x, x))


def sqrt(x: Tensor) -> Tensor:
    """√x = x ** 0.5 (an integer tensor becomes float32 first, as in PyTorch)."""
    x = _input(x, "sqrt")
    return floating(x) ** 0.5


def erf(x: Tensor) -> Tensor:
    """The error function (2/√π) ∫₀ˣ e^(−t²) dt, elementwise (an integer tensor becomes float32 first)."""
    return ops.Erf.apply(floating(_input(x, "erf")))


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 -- torch's names
    """min(max(x, min), max) elementwise: where x is below `min`, min; above `max`, max; else x
    (∂C/∂x = dy inside [min, max], bounds included, as PyTorch)."""
    x = _input(x, "clamp")
    if min is None and max is None:
        raise ValueError("clamp(): give min, max or both")
    result = x
    if min is not None:
        result = where(x < min, min, result)
    if max is not None:  # compared with the result: where min > max, everything is max (as PyTorch)
        result = where(result > max, max, result)
    return result


def maximum(a: Tensor, b: Any) -> Tensor:
    """The larger of a and b elementwise (NaN if either is); at a tie each gets half of dy, as in PyTorch."""
    return _larger(a, b, 1)


def minimum(a: Tensor, b: Any) -> Tensor:
    """The smaller of a and b elementwise (NaN if either is); at a tie each gets half of dy, as in PyTorch."""
    return _larger(a, b, -1)


def _larger(a: Any, b: Any, sign: int) -> Tensor:
    a = a if isinstance(a, Tensor) else Tensor(a)
    a, b = a._promote(b)
    first, second = (a > b, a < b) if sign > 0 else (a < b, a > b)
    if not dtypes.is_floating(a.dtype):
        return Tensor._make(np.maximum(a.data, b.data) if sign > 0 else np.minimum(a.data, b.data))
    return where(first, a, where(second, b, (a + b) / 2))  # a tie: (a + a)/2 is a, exactly


def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """torch.logsumexp: ln Σ e^x over `dim`, as m + ln Σ e^(x − m) with m the maximum held
    constant, so no exponent overflows; the gradient is softmax(x) (m's own share cancels, so
    holding it constant is exact). A slice all −∞, or empty, gives −∞; one with +∞ gives +∞."""
    x = floating(_input(x, "logsumexp"))
    if dim == ():
        raise ValueError("logsumexp(): dim must name at least one dim (as PyTorch's)")
    axes = normalize_axes(dim, x.ndim)
    top = np.asarray(np.amax(x.data, axis=axes, keepdims=True, initial=-np.inf))
    top[~np.isfinite(top)] = 0  # x − m stays −∞ or +∞ there, and Σ e^(x − m) says which
    with np.errstate(divide="ignore"):  # ln 0 = −∞ is the answer for a slice all −∞
        total = (x - Tensor._make(top)).exp().sum(dim=axes, keepdim=keepdim).log()
    return total + Tensor._make(top if keepdim else np.squeeze(top, axis=axes))


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(start, stop),)


def _one_dim(x: Tensor, dim: Any, name: str) -> int | None:
    """An int `dim` of x, normalized; None for a 0-d tensor, whose dim 0 (or −1) is itself."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}(): dim must be an int, got {dim!r}")
    if x.ndim == 0 and dim in (0, -1):
        return None
    (axis,) = normalize_axes(int(dim), x.ndim)
    return axis


def prod(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """torch.prod: the product of all elements, or along the int `dim`. Floats multiply halves
    pairwise (log₂ n products, each over the whole tensor), so the gradient is the product of
    the others exactly, zeros included; integers and bools give int64."""
    x = _input(x, "prod")
    if dim is None:
        if not dtypes.is_floating(x.dtype):
            return Tensor._make(np.asarray(np.prod(x.data, dtype=np.int64)))
        return prod(x.reshape(-1), 0)
    axis = _one_dim(x, dim, "prod")
    if not dtypes.is_floating(x.dtype):
        return Tensor._make(np.asarray(np.prod(x.data, axis=axis, keepdims=keepdim, dtype=np.int64)))
    if axis is None:
        return x * 1
    if x.shape[axis] == 0:  # the empty product, 1, with a (zero-size) gradient as PyTorch's
        return x.sum(dim=axis, keepdim=keepdim) * 0 + 1
    while x.shape[axis] > 1:
        n, half = x.shape[axis], x.shape[axis] // 2
        product = x[_along(axis, 0, half)] * x[_along(axis, half, 2 * half)]
        x = cat([product, x[_along(axis, 2 * half, n)]], axis) if n % 2 else product
    return x if keepdim else x.squeeze(axis)


def cumsum(x: Tensor, dim: int) -> Tensor:
    """torch.cumsum: running sums along `dim`. Floats add shifted copies (x + x shifted by 1,
    then by 2, 4, ...: log₂ n sums over the whole tensor), so the gradient, the running sums
    from the other end, comes from the sums' own rules; integers and bools give int64."""
    x = _input(x, "cumsum")
    axis = _one_dim(x, dim, "cumsum")
    if not dtypes.is_floating(x.dtype):
        return Tensor._make(np.asarray(np.cumsum(x.data, axis=axis, dtype=np.int64)).reshape(x.shape))
    if axis is None:
        return x * 1
    n, shift = x.shape[axis], 1
    while shift < n:
        head = list(x.shape)
        head[axis] = shift
        x = x + cat([Tensor._make(np.zeros(head, x.dtype)), x[_along(axis, 0, n - shift)]], axis)
        shift *= 2
    return x


def norm(x: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    """torch.norm: the p-norm (Σ |x|^p)^(1/p) over `dim` (every dim by default) of a floating
    tensor; p is "fro" (2), a positive number, inf (max |x|), −inf (min |x|) or 0 (the count of
    nonzeros, which has no gradient). Where the norm is 0 its gradient is 0, as PyTorch's; at a
    tie of inf's maximum the gradient goes to the first (amax's rule)."""
    x = _input(x, "norm")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"norm() needs a floating tensor (float32 or float64), got {x.dtype}")
    p = 2.0 if p == "fro" else p
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or math.isnan(p) or p < 0 and p != -math.inf:
        raise ValueError(f"norm(): p must be 'fro', a number >= 0, inf or -inf, got {p!r}")
    axes = normalize_axes(None if dim == () else dim, x.ndim)  # (): every dim, as PyTorch's
    if p == 0:
        return Tensor._make(np.asarray(np.count_nonzero(x.data, axis=axes, keepdims=keepdim), x.dtype))
    size = abs(x)
    if math.isinf(p):
        return _extreme(size, axes, keepdim, "max" if p > 0 else "min")
    if p == 1:
        return size.sum(dim=axes, keepdim=keepdim)
    total = (x * x if p == 2 else _power_from_zero(size, p)).sum(dim=axes, keepdim=keepdim)
    return _power_from_zero(total, 1 / p)


def _power_from_zero(x: Tensor, p: float) -> Tensor:
    """x ** p for x >= 0, with a gradient of 0 where x is 0: below a power of 1 the slope there
    is infinite, so the power is taken of 1 instead and its result dropped (no inf·0 = NaN)."""
    zero = x == 0
    return where(zero, 0, where(zero, 1, x) ** p)


def floating(x: Tensor) -> Tensor:
    """x, or x as float32 where it is an integer or bool tensor (PyTorch's rule for exp, log, √)."""
    return x if dtypes.is_floating(x.dtype) else x.to(dtypes.float32)


__all__ = ["tensor", "from_numpy", "sum", "mean", "var", "std", "all", "any", "clone", "amax", "amin", "max", "min", "argmax", "argmin", "where",
           "abs", "sqrt", "clamp", "logsumexp", "prod", "cumsum", "norm", "maximum", "minimum", "permute", "transpose", "unsqueeze", "squeeze", "expand",
           "flatten", "cat", "stack", "split", "chunk", "ValuesIndices"]
