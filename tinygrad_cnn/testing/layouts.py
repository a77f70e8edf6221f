"""Memory layouts: the same values in arrays with other strides (numpy only).

Each function returns an array equal to its argument, element for element, whose memory is laid
out differently: an op that reads its input's buffer as if it were C-contiguous (``np.ndarray(
shape, buffer=x)``, a raw pointer in a kernel, ``reshape`` with ``order='A'``) gives other values on
these. ``Tensor(array)`` copies into a new buffer, so the checks wrap these arrays as they are.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def transposed(a: np.ndarray) -> np.ndarray:
    """Column-major (Fortran) order: the C-contiguous copy of aᵀ, transposed back (a view)."""
    return np.ascontiguousarray(a.T).T


def reversed_strides(a: np.ndarray) -> np.ndarray:
    """Negative strides on every axis: the copy of a reversed along each axis, viewed reversed."""
    flip = tuple(slice(None, None, -1) for _ in range(a.ndim))
    return a[flip].copy()[flip]


def strided(a: np.ndarray) -> np.ndarray:
    """Every other element of a buffer twice as long on each axis (no two values adjacent)."""
    buffer = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
    view = buffer[tuple(slice(None, None, 2) for _ in range(a.ndim))]
    view[...] = a
    return view


def permuted(a: np.ndarray) -> np.ndarray:
    """The first two axes swapped in memory: neither C nor Fortran order for 3 axes or more."""
    axes = (1, 0) + tuple(range(2, a.ndim))
    return np.ascontiguousarray(a.transpose(axes)).transpose(axes)


# name -> (make, the fewest axes for which the layout differs from C order)
LAYOUTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {
    "transposed": (transposed, 2),
    "strided": (strided, 1),
    "reversed": (reversed_strides, 1),
    "permuted": (permuted, 3),
}

# What every check runs besides C order: column-major (or, for a vector, negative strides, its
# nearest equivalent) and a strided view. Two runs of fn are cheap next to the finite differences.
DEFAULT = ("transposed", "strided")


def in_layout(a: np.ndarray, name: str) -> np.ndarray:
    """`a`'s values in the layout `name` (one of LAYOUTS, or "C"); an array whose layout cannot
    differ (fewer axes than the layout needs, or one element) comes back as a C-order copy."""
    if name == "C":
        return np.array(a, order="C", copy=True)
    if name not in LAYOUTS:
        raise ValueError(f"layout must be 'C' or one of {sorted(LAYOUTS)}, got {name!r}")
    make, fewest = LAYOUTS[name]
    if name == "transposed" and a.ndim == 1:
        make, fewest = reversed_strides, 1
    if a.ndim < fewest or a.size < 2:
        return np.array(a, order="C", copy=True)
    return make(a)
