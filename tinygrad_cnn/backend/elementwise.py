"""Elementwise passes of the fast backend, cut across the threads and, on one thread, run in
cache-sized blocks; and the layout-keeping copies (`copy_into`, `transpose_2d`).

A result keeps its operands' memory layout where they all share one (a batch-last activation
stays batch-last), else it is in C order -- as numpy's own ufuncs choose -- so a result's layout,
and any later sum's rounding, does not depend on whether the op ran on threads.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tinygrad_cnn.backend.parallel import MIN_PARALLEL_BYTES, get_num_threads, parallel

ndarray = np.ndarray
# Elements in a block of an elementwise pass: 256 KiB of float32, so that the passes of one op
# find the block in cache from one pass to the next.
BLOCK = 1 << 16


def copy_into(out: ndarray, source: ndarray) -> ndarray:
    """out[...] = source (broadcast), cut along out's first axis."""
    if source.ndim < out.ndim:
        source = np.broadcast_to(source, out.shape)
    if out.ndim == 0:
        np.copyto(out, source)
        return out
    parallel(lambda start, stop: np.copyto(out[start:stop], _part(source, start, stop, out)), out.shape[0],
             2 * out.nbytes)
    return out


def elementwise(ufunc: np.ufunc, *operands: ndarray | float, out: ndarray | None = None) -> ndarray:
    """ufunc(*operands) with numpy's broadcasting and type rules (a Python number stays weak:
    float32 · 2 is float32), cut along the result's first axis."""
    arrays = [operand for operand in operands if isinstance(operand, np.ndarray)]
    if get_num_threads() == 1 or max([array.nbytes for array in arrays], default=0) < MIN_PARALLEL_BYTES:
        return ufunc(*operands) if out is None else ufunc(*operands, out=out)
    shape = np.broadcast_shapes(*(array.shape for array in arrays))
    if not shape and out is None:  # all 0-d: nothing to cut (and numpy 1.x types scalars apart)
        return ufunc(*operands)
    if out is None:
        with np.errstate(all="ignore"):  # only the result type is wanted: 1-element arrays, not 0-d,
            probe = ufunc(*(np.ones(1, operand.dtype) if isinstance(operand, np.ndarray) else operand
                            for operand in operands))  # which numpy 1.x would promote by value
        out = empty_like_operands(shape, probe.dtype, arrays)
    if out.ndim == 0 or out.shape[0] == 1:
        return ufunc(*operands, out=out)
    return passes(lambda part, *parts: ufunc(*parts, out=part), out, operands, out.nbytes, blocks=False)


def _memory_order(a: ndarray) -> list[int] | None:
    """a's axes from outermost to innermost in memory, where a is dense (its elements fill one
    block of memory in some order of its axes, so a.transpose(order) is C-contiguous); else None."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    return order if a.transpose(order).flags.c_contiguous else None


def _layout(array: ndarray) -> tuple[int, ...]:
    """array's strides where they matter (on axes longer than 1)."""
    return tuple(stride for stride, length in zip(array.strides, array.shape) if length > 1)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """np.broadcast_shapes, without its cost when the shapes are one (the usual case)."""
    return shapes[0] if all(shape == shapes[0] for shape in shapes) else np.broadcast_shapes(*shapes)


def empty_like_operands(shape: tuple[int, ...], dtype: np.dtype, arrays: list[ndarray]) -> ndarray:
    """An output for an elementwise op: laid out in memory as its operands of the output's shape
    when they are dense and all laid out alike, else in C order -- as numpy's own ufuncs choose in
    those cases, so a result's layout (and any later sum's rounding) does not depend on whether
    the op ran on threads. A network whose activations are batch-last then stays batch-last."""
    full = [array for array in arrays if array.shape == shape]
    if all([array.flags.c_contiguous for array in full]):  # the common case, without the layout checks
        return np.empty(shape, dtype=dtype)
    if (full and full[0].ndim > 1 and _memory_order(full[0]) is not None
            and all(_layout(array) == _layout(full[0]) for array in full)):
        return np.empty_like(full[0], dtype=dtype)
    return np.empty(shape, dtype=dtype)


def _flat_in_memory_order(out: ndarray, arrays: list[ndarray]) -> list[ndarray] | None:
    """Flat views of out and of `arrays`, element for element the same positions, where all of
    them have out's shape and layout and out is dense; else None."""
    if out.ndim == 0 or any(array.shape != out.shape or _layout(array) != _layout(out) for array in arrays):
        return None
    order = _memory_order(out)
    if order is None:
        return None
    return [array.transpose(order).reshape(-1) for array in (out, *arrays)]


def _part(operand: ndarray | float, start: int, stop: int, out: ndarray) -> ndarray | float:
    """Rows start..stop-1 of an operand broadcast against `out`, as the part of out it meets."""
    if not isinstance(operand, np.ndarray) or out.ndim == 0:
        return operand
    if operand.ndim < out.ndim or operand.shape[0] == 1:
        return operand  # broadcast along the cut axis: every part reads all of it
    return operand[start:stop]


def maximum(a: ndarray, b: ndarray | float) -> ndarray:
    return elementwise(np.maximum, a, b)


def multiply(a: ndarray, b: ndarray | float) -> ndarray:
    return elementwise(np.multiply, a, b)


def transpose_2d(a: ndarray) -> ndarray:
    """a.T as a new contiguous array, copied in blocks of 64 rows (or columns) of a. numpy's
    own transposing copy walks one array with a long stride and misses the cache once the
    matrix outgrows it; with 64 rows or fewer, the rows it walks across stay in cache, and its
    one copy is the faster."""
    rows, cols = a.shape
    if a.nbytes <= 1 << 18 or rows <= 64 or cols == 1:  # fits in cache (or is a vector): one copy
        return np.ascontiguousarray(a.T)
    out = np.empty((cols, rows), dtype=a.dtype)
    block = 64
    along_rows = rows >= cols

    def work(first: int, last: int) -> None:  # blocks first..last-1: a loop over cache-sized blocks
        for start in range(first * block, min(last * block, max(rows, cols)), block):
            if along_rows:
                out[:, start : start + block] = a[start : start + block].T
            else:
                out[start : start + block] = a[:, start : start + block].T

    parallel(work, -(-max(rows, cols) // block), 2 * a.nbytes)
    return out


def batch_to_back(x: ndarray) -> ndarray:
    """(N, ...) -> (..., N), contiguous."""
    return transpose_2d(x.reshape(x.shape[0], math.prod(x.shape[1:]))).reshape(x.shape[1:] + x.shape[:1])


def passes(step: Callable[..., object], out: ndarray, operands: tuple[ndarray | float, ...], nbytes: int,
            blocks: bool = True) -> ndarray:
    """step(out_part, *operand_parts): a few elementwise passes written into `out`, cut across
    the threads (Python numbers are passed as they are). Where every array operand has out's
    shape and layout (C order, batch-last, ...), the passes run over the flat memory: on one
    thread block by block (`BLOCK` elements, small enough to stay in cache between one pass and
    the next), on several (or with `blocks` False) each thread's part at once: between two numpy
    calls a thread takes the GIL back, and with two threads each handover costs a wake-up.
    Otherwise the passes run over rows, operands broadcast as numpy does."""
    block = BLOCK if blocks and (get_num_threads() == 1 or nbytes < MIN_PARALLEL_BYTES) else None
    if block is not None and out.size <= block:  # one block: numpy broadcasts and lays out as it likes
        step(out, *operands)
        return out
    flat = _flat_in_memory_order(out, [operand for operand in operands if isinstance(operand, np.ndarray)])
    if flat is not None:
        out_flat, *array_flats = flat
        flats = iter(array_flats)
        flat_operands = [next(flats) if isinstance(operand, np.ndarray) else operand for operand in operands]

        def in_blocks(start: int, stop: int) -> None:  # a loop over cache-sized blocks
            size = block or stop - start
            for first in range(start, stop, size):
                last = min(first + size, stop)
                step(out_flat[first:last], *(operand[first:last] if isinstance(operand, np.ndarray) else operand
                                             for operand in flat_operands))

        parallel(in_blocks, out.size, nbytes)
    else:
        parallel(lambda start, stop: step(_part(out, start, stop, out),
                                          *(_part(operand, start, stop, out) for operand in operands)),
                 out.shape[0] if out.ndim else 1, nbytes)
    return out


def sigmoid(z: ndarray) -> ndarray:
    """σ(z) = 1/(1+e^(−z)), to full relative precision (σ(−30) is not rounded to zero as in
    ½·tanh(z/2) + ½). For z below about −88 (float32) e^(−z) overflows to ∞ and 1/(1+∞) = 0 is
    the exact answer, so that overflow (and underflow, for large z) is not reported. exp, add
    and reciprocal run in one buffer, block by block in cache."""
    z = np.asarray(z)

    def step(e: ndarray, z: ndarray) -> None:
        np.exp(np.negative(z, out=e), out=e)
        e += 1
        np.reciprocal(e, out=e)

    with np.errstate(over="ignore", under="ignore"):
        return passes(step, empty_like_operands(z.shape, np.result_type(z.dtype, np.float16), [z]), (z,),
                       3 * z.nbytes)


def where(condition: ndarray, a: ndarray, b: ndarray) -> ndarray:
    """a where the condition holds, else b (broadcast together; np.where's values and type), as
    the bitwise blend (a & m) | (b & ~m), m all ones where the condition holds: exact for every
    value, NaN and −0 included. np.where branches on each element, which a condition in no
    order (x > 0 of an activation) mispredicts about every other time; the blend's passes do not
    branch. Other dtypes (bool, complex, mixed widths) go to np.where."""
    dtype = np.result_type(a, b)
    bits = np.dtype(f"i{dtype.itemsize}") if dtype.kind in "fiu" and dtype.itemsize in (2, 4, 8) else None
    if bits is None or condition.dtype != np.bool_:
        return np.where(condition, a, b)
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)

    def step(out: ndarray, condition: ndarray, a: ndarray, b: ndarray) -> None:
        blended, mask = out.view(bits), np.empty(out.shape, dtype=bits)
        np.copyto(mask, condition)
        np.negative(mask, out=mask)                        # 1 -> all ones, 0 -> 0
        np.bitwise_and(a.view(bits), mask, out=blended)
        np.invert(mask, out=mask)
        blended |= np.bitwise_and(b.view(bits), mask, out=mask)

    out = empty_like_operands(broadcast_shapes(condition.shape, a.shape, b.shape), dtype, [a, b])
    return passes(step, out, (condition, a, b), 3 * out.nbytes)


def relu_backward(dy: ndarray, z: ndarray) -> ndarray:
    """dy · [z > 0]. numpy multiplies a float by a bool array through a slow casting loop, so
    the mask is cast into the output and multiplied by dy there (block by block in cache where
    dy and z have one shape and order)."""
    def step(out: ndarray, dy: ndarray, z: ndarray) -> None:
        np.copyto(out, np.greater(z, 0))
        np.multiply(out, dy, out=out)

    out = empty_like_operands(broadcast_shapes(dy.shape, z.shape), dy.dtype, [z, dy])
    return passes(step, out, (dy, z), out.nbytes)


def silu(z: ndarray) -> ndarray:
    """z·σ(z) = z / (1 + e^(−z)): exp, add and divide in one buffer, block by block in cache (as
    `sigmoid`; for very negative z, z/∞ = −0 is the limit)."""
    def step(out: ndarray, z: ndarray) -> None:
        np.exp(np.negative(z, out=out), out=out)
        out += 1
        np.divide(z, out, out=out)

    with np.errstate(over="ignore"):
        return passes(step, empty_like_operands(z.shape, np.result_type(z.dtype, np.float16), [z]), (z,),
                      2 * z.nbytes)


def silu_backward(dy: ndarray, z: ndarray) -> ndarray:
    """dy · s(1 + z(1 − s)), s = σ(z) computed in the pass's own buffer: one pass in cache
    where the composition made several arrays."""
    def step(out: ndarray, dy: ndarray, z: ndarray) -> None:
        s = np.empty(out.shape, dtype=out.dtype)
        np.exp(np.negative(z, out=s), out=s)
        s += 1
        np.reciprocal(s, out=s)  # σ(z)
        np.subtract(1, s, out=out)
        out *= z
        out += 1
        out *= s
        out *= dy

    out = empty_like_operands(broadcast_shapes(dy.shape, z.shape), np.result_type(dy, z), [z, dy])
    with np.errstate(over="ignore"):
        return passes(step, out, (dy, z), 3 * out.nbytes)


def sigmoid_backward(dy: ndarray, a: ndarray) -> ndarray:
    """dy · a · (1 − a) in one buffer (a = σ(z)): three passes in cache where three ops made
    three arrays."""
    def step(out: ndarray, dy: ndarray, a: ndarray) -> None:
        np.subtract(1, a, out=out)
        out *= a
        out *= dy

    out = empty_like_operands(broadcast_shapes(dy.shape, a.shape), np.result_type(dy, a), [a, dy])
    return passes(step, out, (dy, a), 2 * out.nbytes)


