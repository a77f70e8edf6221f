"""The dtypes a Tensor holds, as PyTorch's for CNNs: float32 and float64 for values that have
gradients; int64, int32 and uint8 for labels, indices and images; bool for masks.

`Tensor(data)` is ``torch.Tensor``: numbers become float32 unless they are already a float32 or
float64 array. `tensor(data)` is ``torch.tensor``: integer and bool data keep an integer or bool
dtype. Only floating tensors can require grad. Promotion between two operands follows PyTorch's
categories: a floating operand wins over an integer or bool one (keeping its own float dtype),
and a Python number takes the tensor's dtype unless it is of a higher category (a Python float
with an integer tensor gives float32).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
int64, int32, uint8 = np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
FLOATING = (float32, float64)
SUPPORTED = (float32, float64, int64, int32, uint8, bool_)
NAMES = ", ".join(str(dtype) for dtype in SUPPORTED)


def resolve(dtype: Any, floating: bool = False) -> np.dtype:
    """`dtype` (a numpy dtype, its name, a tinygrad_cnn dtype, or Python's float/int/bool) checked."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype must be one of {NAMES}, got {dtype!r}") from error
    allowed = FLOATING if floating else SUPPORTED
    if resolved not in allowed:
        raise TypeError(f"dtype must be {'float32 or float64' if floating else 'one of ' + NAMES}, got {resolved}")
    return resolved


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def to_array(data: Any, dtype: Any = None, keep_integers: bool = False) -> np.ndarray:
    """A fresh array of `data` for a Tensor to own. Without `dtype`: float32 and float64 arrays
    keep their dtype, other floats become float32; integers and bools become float32 too,
    unless `keep_integers` (``tensor()``), where they become int64 (Python ints, or an integer
    array of a dtype not supported) or keep their dtype."""
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
        target = resolve(dtype)
    elif array.dtype.kind == "f" and array.dtype not in FLOATING and isinstance(data, (np.ndarray, np.generic)):
        raise TypeError(f"dtype {array.dtype} is not supported; the supported dtypes are {NAMES}")
    elif array.dtype in FLOATING and isinstance(data, (np.ndarray, np.generic)):
        target = array.dtype  # a float32/float64 array keeps its dtype; Python floats become float32
    elif keep_integers and array.dtype.kind in "biu":
        target = array.dtype if array.dtype in SUPPORTED else int64
    else:
        target = float32
    return np.array(array, dtype=target, copy=True)  # own the memory, as torch.tensor does


def result_type(a: np.dtype, b: np.dtype, a_is_0d: bool = False, b_is_0d: bool = False) -> np.dtype:
    """The dtype two tensors' op gives: a floating one wins over an integer or bool one; within a
    category, numpy's promotion (float32 with float64 is float64, uint8 with int64 is int64),
    except that a 0-d tensor beside one with dims takes the other's dtype, as PyTorch's (a loss
    summed in float64 does not turn a float32 network's arrays into float64)."""
    if is_floating(a) != is_floating(b):
        return a if is_floating(a) else b
    if a_is_0d != b_is_0d and (a == bool_) == (b == bool_):
        return b if a_is_0d else a
    return np.result_type(a, b)


def scalar_dtype(value: numbers.Number, dtype: np.dtype) -> np.dtype:
    """The dtype a Python (or numpy) scalar takes beside a tensor of `dtype`: the tensor's,
    unless the scalar is of a higher category (float beside an integer or bool tensor: float32;
    int beside a bool tensor: int64)."""
    if isinstance(value, complex):
        raise TypeError(f"complex operand {value!r} is not supported")
    if isinstance(value, (bool, np.bool_)):
        return dtype
    if isinstance(value, (numbers.Integral, np.integer)):
        return int64 if dtype == bool_ else dtype
    return dtype if is_floating(dtype) else float32
