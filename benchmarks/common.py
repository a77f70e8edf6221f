"""What the benchmarks share: thread pinning done before numpy starts its BLAS thread pool, and
the PyTorch twin of ``tinygrad_cnn.models.nielsen_cnn``. Imports nothing heavy at import time."""
from __future__ import annotations

import os
import sys
from typing import Any


def pin_threads(default: int = 2) -> int:
    """Read ``--threads N`` (or ``--threads=N``) from the command line and set the BLAS/OpenMP
    thread counts; call it before numpy is imported (BLAS sizes its pool on import)."""
    threads = default
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            threads = int(sys.argv[i + 1])
        elif arg.startswith("--threads="):
            threads = int(arg.split("=", 1)[1])
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    return threads


def torch_nielsen_cnn(activation: str = "relu") -> Any:
    """Nielsen's network in PyTorch, layer for layer the same as nielsen_cnn (weights differ
    unless copied: see copy_weights)."""
    import torch

    act = torch.nn.ReLU if activation == "relu" else torch.nn.Sigmoid
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5), act(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(20, 40, 5), act(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(640, 100), act(), torch.nn.Linear(100, 10))


def copy_weights(ours: Any, theirs: Any) -> None:
    """Give the PyTorch twin the same parameters as a tinygrad_cnn model (same order and shapes)."""
    import torch

    with torch.no_grad():
        for target, source in zip(theirs.parameters(), ours.parameters()):
            target.copy_(torch.from_numpy(source.data))


def add_malloc_option(parser: Any) -> None:
    """--malloc keep|default: whether the run calls tinygrad_cnn.backend.keep_freed_memory() first.
    glibc's setting is the whole process's, so it holds for both frameworks alike."""
    parser.add_argument("--malloc", choices=("keep", "default"), default="default",
                        help="keep: glibc keeps freed memory for reuse (tinygrad_cnn.backend.keep_freed_memory), "
                             "for both frameworks; default: malloc as it comes")


def apply_malloc(choice: str) -> bool:
    """Make the --malloc choice for this process; returns whether glibc's settings changed."""
    if choice != "keep":
        return False
    from tinygrad_cnn.backend import keep_freed_memory

    return keep_freed_memory()


def add_timing_options(parser: Any, threads: int, steps: int, warmup: int, block: int) -> None:
    """The options every side-by-side timing shares: --threads, --steps, --warmup, --block and
    --json (see suite.measure: the frameworks alternate in blocks of timed steps)."""
    parser.add_argument("--threads", type=int, default=threads, help="threads for BLAS, our kernels and PyTorch")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per case (each framework)")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps before each block")
    parser.add_argument("--block", type=int, default=block, help="timed steps per block")
    parser.add_argument("--json", help="also write the figures to this file")
