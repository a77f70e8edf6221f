"""How many threads the array kernels use, as torch.set_num_threads / torch.get_num_threads."""
from __future__ import annotations

import numbers

from tinygrad_cnn import kernels as K

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(threads: int) -> None:
    """Run the kernels on `threads` threads: large convolutions, products, poolings and
    elementwise passes are cut into parts that run at once, and BLAS runs single-threaded inside
    each part. The default is the thread count BLAS starts with (OPENBLAS_NUM_THREADS,
    OMP_NUM_THREADS, else the cores this process may use). 1 runs everything on the calling
    thread. A thread count repeats its numbers exactly; across thread counts a product's last
    bit may differ, as BLAS picks its inner kernel by the size of the part.

    OpenBLAS's thread setting belongs to the whole process: while a part of one of our products
    runs, it is 1, so a product that another thread of yours runs at that moment gets one BLAS
    thread too; the setting it had is put back after."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be an int, got {type(threads).__name__} {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads!r}")
    K.use_threads(int(threads))


def get_num_threads() -> int:
    """How many threads the kernels use."""
    return K.num_threads()
