"""Axis and shape arguments, checked and normalised once (shared by Tensor and the functional API):
a bad one is a TypeError or ValueError naming the argument and the shape, never numpy's error
from deep inside an op."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Normalise an axis argument (None, int or sequence) to a sorted tuple of axes >= 0."""
    if axis is None:
        return tuple(range(ndim))
    raw = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    try:
        axes = tuple(raw)
    except TypeError:
        raise TypeError(f"axis must be an int, a sequence of ints or None, got {axis!r}") from None
    normalised = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis must be an int, a sequence of ints or None, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        normalised.append(int(a) % max(ndim, 1))
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return tuple(sorted(normalised)) if ndim else ()  # a 0-d tensor accepts axis 0 / -1, as PyTorch


def reshape_target(shape: tuple[int, ...], new: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape `new` (which may hold one -1) resolves to, or a ValueError naming both shapes."""
    size = math.prod(shape)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= -1 for n in new) \
            or list(new).count(-1) > 1:
        raise ValueError(f"cannot reshape a tensor of shape {shape} to {new}: sizes must be ints >= 0, at most one -1")
    known = math.prod(int(n) for n in new if n != -1)
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape a tensor of shape {shape} to {new}: the sizes differ ({size} elements)")
        new = tuple(size // known if n == -1 else n for n in new)
    if math.prod(int(n) for n in new) != size:
        raise ValueError(f"cannot reshape a tensor of shape {shape} to {new}: the sizes differ ({size} elements)")
    return tuple(int(n) for n in new)


def check_index(index: Any, shape: tuple[int, ...]) -> Any:
    """Lists inside an index become arrays; the index is checked once here, so that a bad one is
    an IndexError naming the shape, not an error deep in the backward."""
    def convert(part: Any) -> Any:
        if isinstance(getattr(part, "data", None), np.ndarray):  # a Tensor: an integer or bool
            if part.data.dtype.kind == "f":                     # one indexes as its array
                raise TypeError(f"index with an int, a slice, or an integer or bool tensor or array, not a "
                                f"{part.dtype} tensor")
            return part.data
        if isinstance(part, list):
            return np.asarray(part)
        return part

    index = tuple(convert(p) for p in index) if isinstance(index, tuple) else convert(index)
    try:
        np.broadcast_to(np.bool_(False), shape)[index]  # a zero-stride view: nothing allocated
    except IndexError as error:
        raise IndexError(f"index {index!r} does not fit a tensor of shape {shape}: {error}") from None
    return index


def torch_order(index: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """PyTorch reads an int index (or a 0-d integer one) as a selection made before any array
    index; numpy reads it as one more array index, and where a slice stands between it and the
    arrays numpy puts the arrays' axes first (x[0, :, [1, 3]] of a (2, 3, 4) x: numpy's (2, 3),
    PyTorch's (3, 2)). For an index (checked) with both, PyTorch's two steps: the selections
    (ints, slices, None, Ellipsis, the arrays' places kept whole), then the arrays on what is
    left. None where the index has no int beside an array (numpy's reading is PyTorch's)."""
    if not isinstance(index, tuple):
        return None

    def is_int(part: Any) -> bool:
        return (isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))) or (
            isinstance(part, np.ndarray) and part.ndim == 0 and part.dtype.kind in "iu")

    def is_array(part: Any) -> bool:  # an array index that takes dims (a 0-d bool adds one, as None)
        return isinstance(part, np.ndarray) and not is_int(part) and part.ndim > 0

    if not any(is_array(part) for part in index) or not any(is_int(part) for part in index):
        return None
    first: list[Any] = []
    rest: list[Any] = []
    for part in index:
        if is_array(part):  # its dims kept whole now (a bool mask takes as many as it has), indexed next
            first += [slice(None)] * (part.ndim if part.dtype == np.bool_ else 1)
            rest.append(part)
        else:
            first.append(part)
            if not is_int(part):  # an int's dim is gone; a slice, None or Ellipsis left a dim (or dims)
                rest.append(Ellipsis if part is Ellipsis else slice(None))
    return tuple(first), tuple(rest)
