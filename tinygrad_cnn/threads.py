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
    thread. Any thread count gives the same numbers."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    K.use_threads(int(threads))


def get_num_threads() -> int:
    """How many threads the kernels use."""
    return K.num_threads()
