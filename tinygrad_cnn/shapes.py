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
