"""The array functions under the graph: the whole surface between the ops and the arrays.

The ops (``tinygrad_cnn.ops``) compute only through the functions listed in ``__all__`` below,
on plain numpy arrays. Two backends provide them:

* ``reference`` (reference.py): the readable specification, plain numpy as the formulas say;
* ``fast`` (fast.py, the default): the same functions, with the costly ones replaced by kernels
  that choose memory layouts and share their work among threads (elementwise.py, linalg.py,
  im2col.py, conv.py, pool.py, parallel.py).

The environment variable TINYGRAD_CNN_BACKEND (``fast`` or ``reference``), read once when the
package is imported, picks one for the whole process; `name()` says which. Another array module
with numpy's API could serve as a third: it would provide these same functions.

This package imports nothing else of tinygrad_cnn, and importing it changes nothing in the
process (no allocator, thread or error setting): `keep_freed_memory` is an explicit opt-in.
"""
from __future__ import annotations

import numbers
import os

from tinygrad_cnn.backend import parallel
from tinygrad_cnn.backend.malloc import keep_freed_memory  # noqa: F401 -- public, beside the array functions
from tinygrad_cnn.backend.parallel import get_num_threads  # noqa: F401 -- public, as set_num_threads below

BACKENDS = ("fast", "reference")

# The functions the ops may call, each with the reference's signature and meaning.
__all__ = [
    # elementwise (numpy's broadcasting and type rules)
    "add", "subtract", "multiply", "divide", "power", "negative", "exp", "log", "tanh", "erf", "astype", "where",
    "relu", "relu_backward", "sigmoid", "sigmoid_backward", "silu", "silu_backward",
    # reductions
    "reduce_sum", "reduce_max", "first_argmax_mask", "log_softmax",
    # movement
    "broadcast_to", "reshape", "transpose", "concatenate", "getitem", "index_add",
    # products
    "matmul", "linear",
    # convolution and its two gradients
    "conv2d", "conv2d_grad_k", "conv2d_grad_x",
    # max pooling: the forward hands back each window's argmax (when asked), which the other two read
    "maxpool2d", "maxpool2d_backward", "maxpool2d_gather",
    # batch normalization with the batch's own statistics and a per-channel scale and shift, its
    # input gradient and its scale's gradient
    "batch_norm", "batch_norm_backward", "batch_norm_weight_grad",
]

_name = os.environ.get("TINYGRAD_CNN_BACKEND", "fast").strip().lower() or "fast"
if _name == "fast":
    from tinygrad_cnn.backend import fast as _chosen
elif _name == "reference":
    from tinygrad_cnn.backend import reference as _chosen
else:
    raise ValueError(f"TINYGRAD_CNN_BACKEND must be one of {BACKENDS}, got {os.environ['TINYGRAD_CNN_BACKEND']!r}")

globals().update({function: getattr(_chosen, function) for function in __all__})


def name() -> str:
    """Which backend computes: "fast" or "reference" (TINYGRAD_CNN_BACKEND)."""
    return _name


def set_num_threads(threads: int) -> None:
    """Run the fast kernels on `threads` threads, as torch.set_num_threads: large convolutions,
    products, poolings and elementwise passes are cut into parts that run at once, and BLAS runs
    single-threaded inside each part. The default is the thread count BLAS starts with
    (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, else the cores this process may use); 1 runs
    everything on the calling thread. A thread count repeats its numbers exactly; across thread
    counts a product's last bit may differ, as BLAS picks its inner kernel by the size of the part."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be an int, got {type(threads).__name__} {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads!r}")
    parallel.set_num_threads(int(threads))
