"""Matrix products of the fast backend, cut across the threads: each part one single-threaded
BLAS call (see parallel.py), and a bias added to each part while it is in its core's cache."""
from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn.backend.parallel import (MIN_PARALLEL_BYTES, blas_reachable, blas_single_threaded,
                                           get_num_threads, parallel)

ndarray = np.ndarray




def matmul(a: ndarray, b: ndarray, addend: ndarray | None = None) -> ndarray:
    """a @ b (numpy's rules), cut across the threads: a batched product by its batch, a single
    one by the longer of a's rows and b's columns; each part one single-threaded BLAS call.
    `addend` (broadcast to the product) is added to each part in place right after its product,
    while the part is still in its core's cache: a bias costs no pass of its own."""
    matrices = a.ndim >= 2 and b.ndim >= 2
    shape = dtype = None
    if matrices:
        shape = ((a.shape[0], b.shape[1]) if a.ndim == b.ndim == 2 else
                 np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]))
        dtype = a.dtype if a.dtype == b.dtype else np.result_type(a, b)
    if (shape is None or not blas_reachable() or get_num_threads() == 1
            or math.prod(shape) * dtype.itemsize + a.nbytes + b.nbytes < MIN_PARALLEL_BYTES):
        # one part, no threads of ours (where BLAS's setting is out of reach, BLAS threads as it
        # likes); numpy leaves a product over one term (a column by a row) to a slow loop of its
        # own: a multiply instead
        with blas_single_threaded():
            one_term = matrices and a.shape[-1] == 1 == b.shape[-2] and a.dtype == b.dtype
            out = np.multiply(a, b) if one_term else np.matmul(a, b)
        if addend is not None:
            out += addend
        return out
    out = np.empty(shape, dtype=dtype)
    added = None if addend is None else np.broadcast_to(addend, out.shape)
    whole = slice(None)
    if out.ndim > 2:  # by the batch; an operand without a batch axis is read whole by every part
        if a.ndim < out.ndim or b.ndim < out.ndim or a.shape[0] != b.shape[0]:
            a = np.broadcast_to(a, out.shape[:-2] + a.shape[-2:])
            b = np.broadcast_to(b, out.shape[:-2] + b.shape[-2:])
        cut_a, cut_b, cut_out, length = True, True, 0, out.shape[0]
    elif a.shape[0] >= b.shape[1]:  # by a's rows
        cut_a, cut_b, cut_out, length = True, False, 0, out.shape[0]
    else:  # by b's columns
        cut_a, cut_b, cut_out, length = False, True, 1, out.shape[1]

    def work(start: int, stop: int) -> None:
        part = (whole,) * cut_out + (slice(start, stop),)  # the part's rows or columns of out (and of b)
        product = np.matmul(a[start:stop] if cut_a else a, b[part] if cut_b else b, out=out[part])
        if added is not None:
            product += added[part]

    with blas_single_threaded():
        parallel(work, length, out.nbytes + a.nbytes + b.nbytes, chunks_per_thread=1)
    return out


def linear(x: ndarray, w: ndarray, b: ndarray | None = None) -> ndarray:
    """x @ wᵀ (+ b) for x (..., in), w (out, in): every leading axis of x is a row of one product."""
    rows = x.reshape(-1, x.shape[-1])
    return matmul(rows, w.T, b).reshape(x.shape[:-1] + (w.shape[0],))
