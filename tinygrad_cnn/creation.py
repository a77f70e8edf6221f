"""Making tensors, as PyTorch's factory functions: zeros, ones, full, empty and their ``_like``
twins, arange, and random draws (rand, randn, randint) from one global generator that
`manual_seed` sets. Layers, dropout and data loaders given no ``rng=`` draw their seeds from it
too, so a run that starts with ``manual_seed(n)`` repeats itself.

Sizes are given as PyTorch's: ``zeros(2, 3)`` or ``zeros((2, 3))``. Without `dtype`, values are
float32 (``arange`` and ``randint`` of ints: int64). ``device=`` may name the CPU (see devices.py).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import devices, dtypes
from tinygrad_cnn.tensor import Tensor

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator (torch.manual_seed); returns it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise TypeError(f"manual_seed: seed must be an int >= 0, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator: what rand, randn, randint and layers without rng= draw from."""
    return _generator


def generator(rng: Any = None, name: str = "rng") -> np.random.Generator:
    """`rng` as a numpy Generator: a Generator as it is, an int seed a new one, None the global one."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (numbers.Integral, np.integer)) or rng < 0:
        raise TypeError(f"{name} must be None, an int seed >= 0 or a numpy Generator, got {rng!r}")
    return np.random.default_rng(int(rng))


def _size(size: tuple[Any, ...], name: str) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (numbers.Integral, np.integer)) and not isinstance(n, bool) and n >= 0 for n in size):
        raise ValueError(f"{name}: sizes must be ints >= 0, got {size}")
    return tuple(int(n) for n in size)


def _made(values: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    made = Tensor._make(values if dtype is None else values.astype(dtypes.resolve(dtype), copy=False))
    made.requires_grad = requires_grad
    return made


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False,
         device: Any = None) -> Tensor:
    """A tensor of `size` filled with `fill_value` (float32 unless `dtype`, or an int or bool fill
    value, says otherwise, as torch.full)."""
    devices.check(device)
    shape = _size(size if isinstance(size, (tuple, list)) else (size,), "full")
    if isinstance(fill_value, (list, tuple, np.ndarray)) and np.ndim(fill_value) != 0:
        raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    if dtype is None:
        kind = dtypes.to_array(fill_value, keep_integers=True).dtype
    else:  # the fill value converted once, straight to `dtype` (0.1 stays 0.1 in float64)
        kind = dtypes.resolve(dtype)
        if not isinstance(fill_value, (numbers.Number, np.number, np.bool_)):
            dtypes.to_array(fill_value, keep_integers=True)  # its error for what is not a number
    return _made(np.full(shape, fill_value, dtype=kind), None, requires_grad)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False,
          device: Any = None) -> Tensor:
    devices.check(device)
    return _made(np.zeros(_size(size, "zeros"), dtype=np.float32), dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False,
         device: Any = None) -> Tensor:
    devices.check(device)
    return _made(np.ones(_size(size, "ones"), dtype=np.float32), dtype, requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False,
          device: Any = None) -> Tensor:
    """As zeros: its values are not to be relied on in PyTorch, and zeros here."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, device=device)


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False,
               device: Any = None) -> Tensor:
    return zeros(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False,
              device: Any = None) -> Tensor:
    return ones(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device)


def empty_like(x: Tensor, dtype: Any = None, requires_grad: bool = False,
               device: Any = None) -> Tensor:
    return zeros_like(x, dtype=dtype, requires_grad=requires_grad, device=device)


def full_like(x: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False,
              device: Any = None) -> Tensor:
    return full(x.shape, fill_value, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, requires_grad: bool = False,
           device: Any = None) -> Tensor:
    """start, start + step, ... below end (int64 for ints, float32 for floats, as torch.arange).
    Float values are computed in float64 and then converted (no float32 drift)."""
    devices.check(device)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be 0")
    integers = all(isinstance(v, (numbers.Integral, np.integer)) for v in (start, end, step))
    values = np.arange(start, end, step, dtype=np.int64 if integers else np.float64)
    return _made(values if integers or dtype is not None else values.astype(np.float32), dtype, requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False,
             device: Any = None) -> Tensor:
    """`steps` values evenly spaced from start to end, both included (float32 unless `dtype`),
    by PyTorch's formula: the first half counted up from start, the second down from end, in the
    dtype itself, so both ends are exact."""
    devices.check(device)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: steps must be an int >= 0, got {steps!r}")
    kind = np.float32 if dtype is None else dtypes.resolve(dtype).type
    kind = kind if np.dtype(kind).kind == "f" else np.float64  # an integer dtype: converted from float64
    i = np.arange(int(steps), dtype=kind)
    start, end = kind(start), kind(end)
    step = (end - start) / kind(max(int(steps) - 1, 1))
    values = np.where(i < max(steps // 2, 1), start + i * step, end - (kind(steps - 1) - i) * step)
    return _made(values, dtype, requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False,
        device: Any = None) -> Tensor:
    """The (n, m) identity matrix (m defaults to n), float32 unless `dtype`."""
    devices.check(device)
    rows, columns = _size((n, n if m is None else m), "eye")
    return _made(np.eye(rows, columns, dtype=np.float32), dtype, requires_grad)


def rand(*size: Any, generator: np.random.Generator | None = None, dtype: Any = None,
         requires_grad: bool = False, device: Any = None) -> Tensor:
    """Uniform on [0, 1), from `generator` (else the global one), drawn in `dtype` (float32 by default)."""
    devices.check(device)
    values = (generator or _generator).random(_size(size, "rand"), dtype=_drawn(dtype))
    return _made(values, dtype, requires_grad)


def randn(*size: Any, generator: np.random.Generator | None = None, dtype: Any = None,
          requires_grad: bool = False, device: Any = None) -> Tensor:
    """Standard normal, from `generator` (else the global one), drawn in `dtype` (float32 by default)."""
    devices.check(device)
    values = (generator or _generator).standard_normal(_size(size, "randn"), dtype=_drawn(dtype))
    return _made(values, dtype, requires_grad)


def _drawn(dtype: Any) -> type:
    """The precision a random draw is made in: float64 for a float64 tensor (all its digits
    random), float32 otherwise. Only a floating dtype may be asked for, as in PyTorch (an
    integer draw on [0, 1) would be all zeros): randint draws integers."""
    return np.float64 if dtype is not None and dtypes.resolve(dtype, floating=True) == np.float64 else np.float32


def randint(low: int, high: int | None = None, size: Any = (), generator: np.random.Generator | None = None,
            dtype: Any = None, device: Any = None) -> Tensor:
    """Integers in [low, high) (int64), as torch.randint(low, high, size); randint(high, size) starts at 0."""
    devices.check(device)
    if high is None or isinstance(high, (tuple, list)):  # randint(high, size), as PyTorch's overload
        low, high, size = 0, low, size if high is None else high
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be above low ({low})")
    shape = _size(size if isinstance(size, (tuple, list)) else (size,), "randint")
    return _made((generator or _generator).integers(low, high, shape, dtype=np.int64), dtype, False)


__all__ = ["manual_seed", "default_generator", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
           "full_like", "empty_like", "arange", "linspace", "eye", "rand", "randn", "randint"]
