"""Threads of our own: large kernels are cut into parts that run at once.

numpy runs each ufunc, copy and indexed write on one core, where PyTorch runs them on all of its
threads; and BLAS's own idle threads spin on the other cores for a while after each product, so a
second thread of ours would find no core to run on. So the fast kernels share their work out
themselves: a large array is cut into one contiguous part per thread along an outer axis, and the
parts run at once (numpy releases the GIL inside its loops); a matrix product is cut the same way,
each part a single-threaded BLAS call (`blas_single_threaded`). The parts never overlap and are
the same on every run, so a thread count repeats its numbers exactly; across thread counts only a
product's last bit can differ (BLAS picks its inner kernel by the size of the part).

BLAS's thread setting (found through threadpoolctl) is held at 1 only while one of our products
runs, and put back when the last one ends. It belongs to the whole process: a product that
another thread of the program runs at that moment also gets one BLAS thread (the right answer,
more slowly).
"""
from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this much memory touched, a kernel runs on the calling thread: waking a helper costs more.
MIN_PARALLEL_BYTES = 4 << 20


class OpenBLAS:
    """The process-wide thread count of one loaded OpenBLAS (a pthreads build), through its own
    get and set functions. threadpoolctl finds the library; its own setter is not used, because
    from threadpoolctl 3.8 on it obeys only the first Python thread that set a limit (until that
    thread lets go), and our kernels run on whichever thread calls them."""

    def __init__(self, path: str) -> None:
        library = ctypes.CDLL(path)  # the library already loaded: the same copy, not a second one
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                self.get_num_threads, self.set_num_threads = get, set_
                return
        raise OSError(f"no openblas_get/set_num_threads in {path}")

    @staticmethod
    def found() -> list[OpenBLAS]:
        """The OpenBLAS pthreads builds loaded in the process (numpy's, scipy's), as threadpoolctl
        lists them. An OpenMP build's setting is per thread, and other BLAS libraries are left to
        their own threads."""
        from threadpoolctl import ThreadpoolController  # scans the loaded libraries: not at import

        libraries = []
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            if lib.internal_api == "openblas" and lib.threading_layer == "pthreads":
                try:
                    libraries.append(OpenBLAS(lib.filepath))
                except OSError:
                    continue
        return libraries


class _Blas:
    """BLAS held at one thread while any of our products runs, on any thread of the process:
    nested and concurrent uses of the context manager count up, and the settings the libraries
    had are put back when the count returns to zero. Where no OpenBLAS pthreads build is loaded
    (MKL, Accelerate, an OpenMP build), `reachable` is False: products are not cut but left to
    BLAS's own threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: list[int] = []
        self._libraries: list[OpenBLAS] | None = None  # looked up on first use

    @property
    def libraries(self) -> list[OpenBLAS]:
        if self._libraries is None:
            self._libraries = OpenBLAS.found()
        return self._libraries

    @property
    def reachable(self) -> bool:
        return bool(self.libraries)

    def threads(self) -> int | None:
        """The thread count of the first OpenBLAS found (None where none is reachable): its own
        setting, not the 1 it is held at while one of our products runs."""
        if not self.libraries:
            return None
        with self.lock:
            return self.saved[0] if self.depth and self.saved else self.libraries[0].get_num_threads()

    def __enter__(self) -> None:
        libraries = self.libraries
        if not libraries:
            return
        with self.lock:
            if self.depth == 0:
                self.saved = [lib.get_num_threads() for lib in libraries]
                for lib, threads in zip(libraries, self.saved):
                    if threads != 1:
                        lib.set_num_threads(1)
            self.depth += 1

    def __exit__(self, *exc: object) -> None:
        if not self.libraries:
            return
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self.restore()

    def restore(self) -> None:
        for lib, threads in zip(self.libraries, self.saved):
            if threads != 1:
                lib.set_num_threads(threads)
        self.saved = []


_blas = _Blas()


def blas_single_threaded() -> _Blas:
    """``with blas_single_threaded():`` BLAS on one thread while the block runs (a context
    manager object of its own, reused: nested and concurrent blocks count up)."""
    return _blas


def blas_reachable() -> bool:
    """Whether BLAS's thread setting can be held at 1 while our parts run (else products run whole)."""
    return _blas.reachable


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_in_chunk = threading.local()  # .active: this thread is running a chunk of `parallel`
_num_threads: int | None = None  # decided on first use: BLAS's own count, else the cores
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: a new pool when next needed, new locks,
    and BLAS's own settings back if the fork came while a product held them at 1."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()
    if _blas.depth:
        _blas.depth = 0
        _blas.restore()
    _blas.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_num_threads() -> int:
    """How many threads the fast kernels use (see `set_num_threads`)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _blas.threads() or _cores()
    return _num_threads


def set_num_threads(threads: int) -> None:
    """Run the fast kernels on `threads` threads from now on; helpers of the old pool finish
    what they took. (The argument is checked by the backend's public set_num_threads.)"""
    global _num_threads, _pool
    with _pool_lock:
        old, _pool, _num_threads = _pool, None, threads
    if old is not None:
        old.shutdown(wait=False)


def parallel(work: Callable[[int, int], object], length: int, nbytes: int, chunks_per_thread: int = 2) -> None:
    """work(start, stop) over [0, length) in contiguous chunks, shared out among the threads;
    `nbytes` (the memory the work touches) decides whether threads pay. Exceptions propagate.

    The calling thread starts on the chunks at once and the helpers join when they wake, so
    nobody waits for a thread that has not started. numpy's error settings are per thread: the
    helpers follow the caller's. Called from inside a chunk (a kernel whose parts run other
    kernels), it runs the work on that chunk's thread: every thread is busy already."""
    global _pool
    threads = get_num_threads()
    count = min(threads * chunks_per_thread, length) if nbytes >= MIN_PARALLEL_BYTES else 1
    if count <= 1 or threads == 1 or getattr(_in_chunk, "active", False):
        if length:
            work(0, length)
        return
    with _pool_lock:  # callers on several threads of their own share one pool
        if _pool is None:
            _pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="tinygrad_cnn")
        pool = _pool
    bounds = [length * i // count for i in range(count + 1)]
    chunks = iter(list(zip(bounds[:-1], bounds[1:])))  # next() on it is atomic: each chunk runs once
    errors, callback = np.geterr(), np.geterrcall()
    failed: list[BaseException] = []
    # A helper cancelled before it woke stays queued until its thread gets to it: through
    # `todo`, emptied on return, it does not keep the work's arrays alive until then.
    todo = [work]

    def drain() -> None:
        _in_chunk.active = True
        try:
            with np.errstate(call=callback, **errors):
                for start, stop in chunks:
                    if failed or not todo:
                        return
                    try:
                        todo[0](start, stop)
                    except BaseException as error:  # noqa: B036 -- handed to the caller below
                        failed.append(error)
                        return
        finally:
            _in_chunk.active = False

    helpers = []
    for _ in range(threads - 1):
        try:
            helpers.append(pool.submit(drain))
        except RuntimeError:  # set_num_threads on another thread, or the interpreter exiting:
            break             # this thread does the rest
    try:
        drain()
        for helper in helpers:
            if not helper.cancel():  # a helper that never started has nothing to finish
                helper.result()
    finally:
        todo.clear()
    if failed:
        raise failed[0]
