"""The array kernels: every numpy computation of the ops lives here, and nowhere else.

The ops (``tinygrad_cnn.ops``) call these functions on plain arrays, so another array library
with numpy's API could stand in for this one module. No kernel loops in Python over batch,
channels, rows or columns: convolution is im2col (windows copied once, in the memory order the
matrix product reads) and one BLAS call, or a scatter of one product's kernel taps, or FFT;
pooling is a loop over the few window taps, each a whole-batch strided slice; routing a
gradient is one indexed add. (The only other loops run over kernel taps and cache-sized blocks.)

Large kernels are cut into parts that run on several threads at once, BLAS single-threaded in
each (see `parallel` and `matmul`; tinygrad_cnn.set_num_threads). Importing this module tunes
glibc's malloc to keep freed memory for reuse: see `keep_freed_memory`.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

ndarray = np.ndarray
asarray = np.asarray
exp = np.exp
log = np.log
tanh = np.tanh
broadcast_to = np.broadcast_to
add = np.add
subtract = np.subtract


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Ask glibc's malloc to serve arrays below `mmap_threshold` bytes from its heap and to
    keep up to `trim_threshold` bytes of freed heap for reuse, instead of giving memory back to
    the system after every step and faulting it in again: a training step allocates and frees
    the same few dozen large arrays each time. Measured at batch 64: about 2,800 page faults
    and a fifth of the step time without it, none with it. Called when this module is imported
    (set TINYGRAD_CNN_KEEP_FREED_MEMORY=0 to leave malloc alone); the process keeps at most
    `trim_threshold` bytes more than it uses. Returns whether the settings took (glibc only)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, mmap_threshold)) and bool(
            libc.mallopt(m_trim_threshold, trim_threshold))
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to tune
        return False


if os.environ.get("TINYGRAD_CNN_KEEP_FREED_MEMORY", "1") != "0":
    keep_freed_memory()


# Threads. numpy runs each ufunc, copy and indexed write on one core, where PyTorch runs them on
# all of its threads; and BLAS's own idle threads spin on the other cores for a while after each
# product (OpenBLAS: about 0.1 s), so a second thread of ours would have no core to run on. So
# the kernels share their work out themselves: a large array is cut into one contiguous part per
# thread along an outer axis, and the parts run at once (numpy releases the GIL inside its loops);
# a matrix product is cut the same way, each part a single-threaded BLAS call. The parts never
# overlap and are the same on every run, so a thread count repeats its numbers exactly; across
# thread counts only a product's last bit can differ (BLAS picks its inner kernel by size).
_MIN_PARALLEL_BYTES = 4 << 20
_SCATTER_BLOCK_BYTES = 4 << 20  # a scatter block's products, a kernel row's at a time (see _correlate_by_scatter)
_BLOCK = 1 << 16  # elements in a block of an elementwise pass: 256 KiB of float32, cache-resident


class _Blas:
    """The thread setting of the OpenBLAS that numpy calls, where it can be reached (found among
    the loaded libraries, in numpy's own folders, as threadpoolctl does); None elsewhere (MKL,
    Accelerate, an OpenMP build of OpenBLAS, whose setting is per thread), and there products are
    not cut but left to BLAS's own threads. The setting is the process's: while a part of a
    product runs, a product on any other thread of the process also gets one BLAS thread."""

    def __init__(self) -> None:
        self.get = self.set = None
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = 1
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
        except Exception:  # noqa: BLE001 -- numpy < 1.26 has no such config: look at the libraries alone
            blas = "openblas"
        if "openblas" not in str(blas).lower():
            return
        numpy_dir = os.path.dirname(np.__file__)
        try:
            with open("/proc/self/maps") as maps:
                paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
        except OSError:
            return
        for path in paths:
            if not (path.startswith(numpy_dir + os.sep) or path.startswith(numpy_dir + ".libs" + os.sep)):
                continue  # another package's OpenBLAS (scipy's): not the one numpy calls
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                                   ("openblas", "")):
                getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                parallel = getattr(library, f"{prefix}_get_parallel{suffix}", None)
                if getter is None or setter is None:
                    continue
                if parallel is not None and parallel() == 2:  # OpenMP: a setting per thread
                    return
                self.get, self.set = getter, setter
                return

    def threads(self) -> int | None:
        return None if self.get is None else int(self.get())

    def single_threaded(self) -> _Blas:
        """``with _blas.single_threaded():`` BLAS on one thread while the block runs (nested and
        concurrent uses count up); where BLAS is out of reach, the block runs as it is. (The
        object is its own context manager: a generator-based one cost 2 µs a product.)"""
        return self

    def __enter__(self) -> None:
        if self.get is None:
            return
        with self.lock:
            if self.depth == 0:
                self.saved = int(self.get())
                if self.saved != 1:
                    self.set(1)
            self.depth += 1

    def __exit__(self, *exc: object) -> None:
        if self.get is None:
            return
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.saved != 1:
                self.set(self.saved)


_blas = _Blas()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_num_threads = _blas.threads() or _cores()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_the_pool() -> None:  # a forked child has none of its parent's threads
    global _pool, _pool_lock, _kept_windows_lock
    _pool, _pool_lock = None, threading.Lock()
    _kept_windows_lock = threading.Lock()
    if _blas.depth and _blas.saved != 1:  # forked while a product ran: BLAS's own setting back
        _blas.set(_blas.saved)
    _blas.lock, _blas.depth = threading.Lock(), 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_pool)


def num_threads() -> int:
    """How many threads the kernels use (see tinygrad_cnn.set_num_threads)."""
    return _num_threads


def use_threads(threads: int) -> None:
    """Run the kernels on `threads` threads from now on (checked by tinygrad_cnn.set_num_threads)."""
    global _num_threads, _pool
    with _pool_lock:
        old, _pool, _num_threads = _pool, None, threads
    if old is not None:  # its helpers finish what they took; callers still inside see to the rest
        old.shutdown(wait=False)


def parallel(work: Callable[[int, int], object], length: int, nbytes: int, chunks_per_thread: int = 2) -> None:
    """work(start, stop) over [0, length) in contiguous chunks, shared out among the threads;
    `nbytes` (the memory the work touches) decides whether threads pay. Exceptions propagate.

    The calling thread starts on the chunks at once and the other threads join when they
    wake: a thread idle for a millisecond takes 0.1–0.2 ms to wake here, as long as a whole
    kernel at batch 64, so nobody waits for a thread that has not started."""
    global _pool
    threads = _num_threads
    count = min(threads * chunks_per_thread, length) if nbytes >= _MIN_PARALLEL_BYTES else 1
    if count <= 1 or threads == 1:
        if length:
            work(0, length)
        return
    with _pool_lock:  # callers on several threads of their own share one pool
        if _pool is None:
            _pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="tinygrad_cnn")
        pool = _pool
    bounds = [length * i // count for i in range(count + 1)]
    chunks = iter(list(zip(bounds[:-1], bounds[1:])))  # next() on it is atomic: each chunk runs once
    errors, callback = np.geterr(), np.geterrcall()  # per thread in numpy: the helpers follow the caller
    failed: list[BaseException] = []

    def drain() -> None:
        with np.errstate(call=callback, **errors):
            for start, stop in chunks:
                if failed:
                    return
                try:
                    work(start, stop)
                except BaseException as error:  # noqa: B036 -- handed to the caller below
                    failed.append(error)
                    return

    helpers = []
    for _ in range(threads - 1):
        try:
            helpers.append(pool.submit(drain))
        except RuntimeError:  # set_num_threads on another thread, or the interpreter exiting:
            break             # this thread does the rest
    drain()
    for helper in helpers:
        if not helper.cancel():  # a helper that never started has nothing to finish
            helper.result()
    if failed:
        raise failed[0]


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
    if (shape is None or _blas.get is None or _num_threads == 1
            or math.prod(shape) * dtype.itemsize + a.nbytes + b.nbytes < _MIN_PARALLEL_BYTES):
        # one part, no threads of ours (where BLAS's setting is out of reach, BLAS threads as it
        # likes); numpy leaves a product over one term (a column by a row) to a slow loop of its
        # own: a multiply instead
        with _blas.single_threaded():
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

    with _blas.single_threaded():
        parallel(work, length, out.nbytes + a.nbytes + b.nbytes, chunks_per_thread=1)
    return out


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
    if _num_threads == 1 or max([array.nbytes for array in arrays], default=0) < _MIN_PARALLEL_BYTES:
        return ufunc(*operands) if out is None else ufunc(*operands, out=out)
    shape = np.broadcast_shapes(*(array.shape for array in arrays))
    if not shape and out is None:  # all 0-d: nothing to cut (and numpy 1.x types scalars apart)
        return ufunc(*operands)
    if out is None:
        with np.errstate(all="ignore"):  # only the result type is wanted: 1-element arrays, not 0-d,
            probe = ufunc(*(np.ones(1, operand.dtype) if isinstance(operand, np.ndarray) else operand
                            for operand in operands))  # which numpy 1.x would promote by value
        out = _empty_like_operands(shape, probe.dtype, arrays)
    if out.ndim == 0 or out.shape[0] == 1:
        return ufunc(*operands, out=out)
    return _passes(lambda part, *parts: ufunc(*parts, out=part), out, operands, out.nbytes, blocks=False)


def _memory_order(a: ndarray) -> list[int] | None:
    """a's axes from outermost to innermost in memory, where a is dense (its elements fill one
    block of memory in some order of its axes, so a.transpose(order) is C-contiguous); else None."""
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    return order if a.transpose(order).flags.c_contiguous else None


def _layout(array: ndarray) -> tuple[int, ...]:
    """array's strides where they matter (on axes longer than 1)."""
    return tuple(stride for stride, length in zip(array.strides, array.shape) if length > 1)


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """np.broadcast_shapes, without its cost (5 µs) when the shapes are one."""
    return shapes[0] if all(shape == shapes[0] for shape in shapes) else np.broadcast_shapes(*shapes)


def _empty_like_operands(shape: tuple[int, ...], dtype: np.dtype, arrays: list[ndarray]) -> ndarray:
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
    matrix outgrows it: 5× slower for the (F·H·W, N) outputs at batch 256. With 64 rows or
    fewer, the rows it walks across stay in cache, and its one copy is the faster: 0.12
    against 0.21 ms for (64, 2880), pool1's output at batch 64 moved batch-last for conv2."""
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


def ignore_underflow() -> np.errstate:
    """Underflow to zero is a correct result in every op; overflow and NaN are still reported."""
    return np.errstate(under="ignore")


try:  # numpy 2 keeps its error settings in one immutable object per context
    from numpy._core._ufunc_config import _extobj_contextvar
except ImportError:  # numpy 1.x: always enter the errstate
    _extobj_contextvar = None
_settings_ignoring_underflow: object = None  # the last settings object seen to ignore underflow


def underflow_ignored() -> bool:
    """Whether numpy already ignores underflow here (its default), so that `ignore_underflow`
    would change nothing. numpy 2 replaces its settings object on every change, so one seen to
    ignore underflow need not be asked again (np.geterr costs as much as an errstate)."""
    global _settings_ignoring_underflow
    if _extobj_contextvar is None:
        return False
    settings = _extobj_contextvar.get()
    if settings is _settings_ignoring_underflow:
        return True
    if np.geterr()["under"] != "ignore":
        return False
    _settings_ignoring_underflow = settings  # held: its id cannot pass to another object
    return True


def _passes(step: Callable[..., object], out: ndarray, operands: tuple[ndarray | float, ...], nbytes: int,
            blocks: bool = True) -> ndarray:
    """step(out_part, *operand_parts): a few elementwise passes written into `out`, cut across
    the threads (Python numbers are passed as they are). Where every array operand has out's
    shape and layout (C order, batch-last, ...), the passes run over the flat memory: on one
    thread block by block (`_BLOCK` elements, small enough to stay in cache between one pass and
    the next), on several (or with `blocks` False) each thread's part at once. Between two numpy
    calls a thread takes the GIL back, and with two threads each handover costs a wake-up: blocks
    made two threads slower than one (relu_backward at conv1's output, batch 64: 0.66 against
    0.54 ms; whole parts, 0.44). Otherwise the passes run over rows, operands broadcast as numpy
    does."""
    block = _BLOCK if blocks and (_num_threads == 1 or nbytes < _MIN_PARALLEL_BYTES) else None
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
    the exact answer, so that overflow (and underflow, for large z) is not reported. Vectorised
    exp, add and reciprocal in one buffer: about five times faster than scipy.special.expit on
    float32."""
    z = np.asarray(z)

    def step(e: ndarray, z: ndarray) -> None:
        np.exp(np.negative(z, out=e), out=e)
        e += 1
        np.reciprocal(e, out=e)

    with np.errstate(over="ignore", under="ignore"):
        return _passes(step, _empty_like_operands(z.shape, np.result_type(z.dtype, np.float16), [z]), (z,),
                       3 * z.nbytes)


def relu_backward(dy: ndarray, z: ndarray) -> ndarray:
    """dy · [z > 0]. numpy multiplies a float by a bool array through a slow casting loop, so
    the mask is cast into the output and multiplied by dy there (block by block in cache where
    dy and z have one shape and order: 0.54 against 0.93 ms at the MNIST network's conv1
    output, batch 64)."""
    def step(out: ndarray, dy: ndarray, z: ndarray) -> None:
        np.copyto(out, np.greater(z, 0))
        np.multiply(out, dy, out=out)

    out = _empty_like_operands(_broadcast(dy.shape, z.shape), dy.dtype, [z, dy])
    return _passes(step, out, (dy, z), out.nbytes)


def sigmoid_backward(dy: ndarray, a: ndarray) -> ndarray:
    """dy · a · (1 − a) in one buffer (a = σ(z)): three passes in cache where three ops made
    three arrays."""
    def step(out: ndarray, dy: ndarray, a: ndarray) -> None:
        np.subtract(1, a, out=out)
        out *= a
        out *= dy

    out = _empty_like_operands(_broadcast(dy.shape, a.shape), np.result_type(dy, a), [a, dy])
    return _passes(step, out, (dy, a), 2 * out.nbytes)


def log_softmax(z: ndarray, axes: tuple[int, ...]) -> ndarray:
    """z − m − ln Σ_axes e^(z − m), m = max_axes z."""
    shifted = z - z.max(axis=axes, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axes, keepdims=True))
    return shifted


def first_argmax_mask(x: ndarray, axes: tuple[int, ...]) -> ndarray:
    """One-hot mask of the first maximum (row-major, as np.argmax) over `axes`, in x's dtype."""
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    lead = moved.shape[: len(rest)]
    flat = moved.reshape(lead + (-1,))
    mask = np.zeros(flat.shape, dtype=x.dtype)
    np.put_along_axis(mask, flat.argmax(axis=-1)[..., None], 1, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(rest + list(axes)))


def pad2d(x: ndarray, padding: tuple[int, int, int, int]) -> ndarray:
    """Zero-pad the last two axes by (top, bottom, left, right); a negative amount crops."""
    top, bottom, left, right = padding
    if min(padding) < 0:
        height, width = x.shape[-2:]
        x = x[..., max(-top, 0) : height - max(-bottom, 0), max(-left, 0) : width - max(-right, 0)]
    if max(padding) > 0:
        widths = [(0, 0)] * (x.ndim - 2) + [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
        x = np.pad(x, widths)
    return x


def correlate2d_nchw(
    x: ndarray, k: ndarray, padding: tuple[int, int, int, int], stride: tuple[int, int], method: str = "auto"
) -> ndarray:
    """Batched multi-channel cross-correlation, what PyTorch calls conv2d.

    x: (N, C, H, W), k: (F, C, kh, kw) -> y: (N, F, H', W') with
    y[n, f, i, j] = Σ_c Σ_p Σ_q  x_padded[n, c, i·sh + p, j·sw + q] · k[f, c, p, q].

    Three ways to the same numbers; ``method="auto"`` picks one by shape (`correlation_method`):
    - "scatter" when the output is larger than the input (a 'full' correlation, as in
      ∂C/∂x = dy ∗ k): every input value meets every kernel tap, and scattering x ⊗ k into the
      output skips the zeros of the padding;
    - "fft" when a FLOP estimate says the transforms beat the direct sum (large kernels on
      large inputs);
    - "im2col" otherwise: gather each window once (`unfold`), then matrix products
      (`correlate_windows`).
    """
    if method == "auto":
        method = correlation_method(x.shape, k.shape, padding, stride)
    if method == "scatter":
        if not _scatter_fits(k.shape, padding, stride):
            raise ValueError(f"the scatter method needs stride 1 and 0 <= padding < kernel size, got "
                             f"padding {padding}, stride {stride}, kernel {k.shape}")
        return _correlate_by_scatter(x, k, padding)
    if method == "fft":
        return _correlate_by_fft(pad2d(x, padding), k, stride)
    if method == "im2col":
        return correlate_windows(unfold(x, k.shape[2:], padding, stride), k)
    raise ValueError(f"method must be 'auto', 'im2col', 'scatter' or 'fft', got {method!r}")


def correlation_method(x_shape: tuple[int, ...], k_shape: tuple[int, ...], padding: tuple[int, int, int, int],
                       stride: tuple[int, int]) -> str:
    """The fastest of "scatter", "fft" and "im2col" for these shapes (see correlate2d_nchw)."""
    n, c, height, width = x_shape
    f, _, kh, kw = k_shape
    top, bottom, left, right = padding
    out_h, out_w = height + top + bottom - kh + 1, width + left + right - kw + 1
    if _scatter_fits(k_shape, padding, stride) and out_h * out_w > height * width:
        return "scatter"
    if _fft_wins(n, c, f, height + top + bottom, width + left + right, kh, kw, out_h, out_w):
        return "fft"
    return "im2col"


def _scatter_fits(k_shape: tuple[int, ...], padding: tuple[int, int, int, int], stride: tuple[int, int]) -> bool:
    kh, kw = k_shape[2:]
    top, bottom, left, right = padding
    return stride == (1, 1) and 0 <= min(padding) and max(top, bottom) < kh and max(left, right) < kw


def _fft_wins(n: int, c: int, f: int, height: int, width: int, kh: int, kw: int, out_h: int, out_w: int) -> bool:
    """Whether the FFT route is estimated to be faster: direct multiply-adds against the
    transforms plus the per-frequency channel products (a rough FLOP model), for kernels of 7×7
    and up on maps of 32×32 and up. Measured here: 8× faster at 15×15 on 64×64 inputs, 25× at
    9×9 on 32×32; but 3× slower for the MNIST network's ∂C/∂k (an 8×8 'kernel' on 12×12 maps),
    where numpy's per-transform and per-frequency overheads dominate the FLOPs."""
    area = height * width
    if kh * kw < 49 or area < 32 * 32:
        return False
    direct = 2.0 * n * f * c * out_h * out_w * kh * kw
    transforms = 5.0 * (n * c + f * c + n * f) * area * np.log2(max(area, 2))
    products = 8.0 * n * c * f * height * (width // 2 + 1)
    return transforms + products < direct


def _correlate_by_fft(x: ndarray, k: ndarray, stride: tuple[int, int]) -> ndarray:
    """The correlation theorem: x ⋆ k = irfft2(rfft2(x) · rfft2(k rotated 180°)) read from offset
    (kh−1, kw−1). A circular transform of x's own size (H, W) is enough: the wrap-around of the
    full result only lands on positions before that offset. Channels are summed by one complex
    (N, C) @ (C, F) product per frequency."""
    n, c, height, width = x.shape
    f, _, kh, kw = k.shape
    x_hat = np.fft.rfft2(x, s=(height, width))                          # (N, C, H, W/2+1)
    k_hat = np.fft.rfft2(k[:, :, ::-1, ::-1], s=(height, width))       # (F, C, H, W/2+1)
    freq = x_hat.shape[2] * x_hat.shape[3]
    y_hat = np.matmul(x_hat.reshape(n, c, freq).transpose(2, 0, 1),    # (freq, N, C)
                      k_hat.reshape(f, c, freq).transpose(2, 1, 0))    # (freq, C, F)
    y_hat = y_hat.transpose(1, 2, 0).reshape(n, f, x_hat.shape[2], x_hat.shape[3])
    y = np.fft.irfft2(y_hat, s=(height, width))[:, :, kh - 1 :: stride[0], kw - 1 :: stride[1]]
    return np.ascontiguousarray(y, dtype=np.result_type(x.dtype, k.dtype))


# im2col. The windows of a padded input x form a 6-axis array
#     W[n, c, i, j, p, q] = x_padded[n, c, i·sh + p, j·sw + q]
# (sample, channel, output row and column, kernel tap row and column), and a correlation is
# the contraction y[n, f, i, j] = Σ_{c,p,q} W[n, c, i, j, p, q] · k[f, c, p, q]. `unfold` copies W
# out of its strided view once, in the memory order that makes the copy and the products
# fastest for the shapes at hand; `correlate_windows` reads that order from the strides and
# picks the matrix product that needs no further copy of W. The same W serves ∂C/∂k later:
# the windows of xᵀ (batch and channel axes swapped), as the weight gradient's correlation
# x ⋆ dy sees them, are W with its axes permuted (`windows_of_transposed`), so a convolution's
# backward need not gather its input a second time.
_N, _C, _I, _J, _P, _Q = range(6)
_CONTRACTED = frozenset((_C, _P, _Q))
_SAMPLE_MAJOR = (_N, _C, _P, _Q, _I, _J)   # one (C·kh·kw, H'·W') matrix per sample
_BATCH_LAST = (_C, _P, _Q, _I, _J, _N)     # one (C·kh·kw, H'·W'·N) matrix, copied in runs of W'·N
_ROWS = (_N, _I, _J, _C, _P, _Q)           # one (N·H'·W', C·kh·kw) matrix, copied in runs of kw


def unfold(x: ndarray, kernel_size: tuple[int, int], padding: tuple[int, int, int, int],
           stride: tuple[int, int]) -> ndarray:
    """The windows W[n, c, i, j, p, q] of x (N, C, H, W) padded by `padding`, copied into fresh
    memory (a 6-axis view of it is returned). numpy copies fastest along long contiguous runs of
    the source, so the memory order follows the shape (measured on the MNIST network's shapes,
    see benchmarks/ops.py):
    - kernel wider than the output (∂C/∂k = x ⋆ dy, where dy is the kernel): rows of runs of kw;
    - large outputs: sample-major, runs of W' (one product per sample lands in NCHW order);
    - small outputs: batch-last, from x moved to (C, H, W, N): runs of W'·N.
    """
    kh, kw = kernel_size
    sh, sw = stride
    x = pad2d(x, padding)
    n, c, height, width = x.shape
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    if kw > out_w:
        order = _ROWS
    elif out_h * out_w >= 256:
        order = _SAMPLE_MAJOR
    else:
        order = _BATCH_LAST
    if order[-1] == _N:
        batch_last = x.transpose(1, 2, 3, 0)  # a view when x is batch-last already (a conv's output)
        if not batch_last.flags.c_contiguous:
            batch_last = batch_to_back(x)
        windows = window_view(batch_last.transpose(3, 0, 1, 2), (kh, kw), stride, batch_last)
    else:
        windows = window_view(x, (kh, kw), stride)
    # The matrix the product reads has rows of the last run of axes. Rows a multiple of 4 KiB
    # apart map onto few cache sets, and OpenBLAS ran at 70 instead of 100 GFLOP/s on conv2's
    # (500, 16384) matrix at batch 256: such rows get 64 bytes of padding.
    runs = _runs(tuple(axis for axis in order if windows.shape[axis] > 1)) or [[]]
    row = math.prod([windows.shape[axis] for axis in runs[-1]])
    pad = 64 // x.itemsize if (row * x.itemsize) % 4096 == 0 and windows.size > row else 0
    buffer = _window_buffer((windows.size // max(row, 1), row + pad), x.dtype)
    copied = buffer[:, :row].reshape([windows.shape[axis] for axis in order])  # a view of buffer
    copy_into(copied, windows.transpose(order))
    return copied.transpose(_INVERSE[order])


_kept_windows: dict[tuple[tuple[int, int], np.dtype], ndarray] = {}
_kept_windows_lock = threading.Lock()
_KEPT_WINDOWS = 4  # buffers kept, the most recently used: a network's convolutions, a shape each


def _unheld_count() -> int:
    """sys.getrefcount of an array that only a local name holds, counted as _window_buffer counts
    (interpreters differ: CPython 3.14 can count a local's reference as borrowed)."""
    buffer = np.empty(0)
    return sys.getrefcount(buffer)


_UNHELD = _unheld_count()


def _window_buffer(shape: tuple[int, int], dtype: np.dtype) -> ndarray:
    """Memory for `unfold`'s windows: the buffer of the same shape that the previous call got,
    once nothing holds it any more (its last windows were freed after their backward), else a new
    one. The windows are a step's largest arrays (31 and 14 MiB for the MNIST network at batch
    256); handed back to malloc every step, they now and then no longer fitted where they had
    been, as the smaller arrays around them landed elsewhere, and the heap grew by their size
    (once, in 6 of 15 runs of 1,000 steps; kept, in none of 9, for 11 MiB more working set)."""
    key = (shape, np.dtype(dtype))
    with _kept_windows_lock:
        buffer = _kept_windows.pop(key, None)
        if buffer is None or sys.getrefcount(buffer) > _UNHELD:  # held by windows not yet freed (or new)
            buffer = np.empty(shape, dtype=dtype)
        _kept_windows[key] = buffer  # the most recently used last
        while len(_kept_windows) > _KEPT_WINDOWS:
            del _kept_windows[next(iter(_kept_windows))]
    return buffer


def window_view(x: ndarray, kernel_size: tuple[int, int], stride: tuple[int, int],
                memory: ndarray | None = None) -> ndarray:
    """The read-only view W[n, c, i, j, p, q] = x[n, c, i·sh + p, j·sw + q] of x (N, C, H, W)'s
    memory: sliding_window_view with a stride, built directly (numpy's own checks cost 20 µs a
    call). `memory`: the C-contiguous array x is a view of with the same first element (x itself
    where x is C-contiguous)."""
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c, height, width = x.shape
    shape = (n, c, (height - kh) // sh + 1, (width - kw) // sw + 1, kh, kw)
    s_n, s_c, s_h, s_w = x.strides
    strides = (s_n, s_c, s_h * sh, s_w * sw, s_h, s_w)
    if memory is None and x.flags.c_contiguous:
        memory = x
    try:  # numpy checks that the view stays inside memory's buffer
        view = np.ndarray(shape, x.dtype, buffer=memory, strides=strides) if memory is not None else None
    except (TypeError, ValueError, BufferError):
        view = None
    if view is None:
        view = as_strided(x, shape, strides, writeable=False)
    view.flags.writeable = False
    return view


_INVERSE = {order: tuple(int(axis) for axis in np.argsort(order)) for order in (_SAMPLE_MAJOR, _BATCH_LAST, _ROWS)}


@functools.lru_cache(maxsize=256)
def _runs(order: tuple[int, ...]) -> list[list[int]]:
    """Consecutive axes of `order` grouped by kind: contracted (c, p, q) or kept (n, i, j).
    (Cached: a training loop asks about the same few orders; callers do not change the lists.)"""
    runs: list[list[int]] = []
    for axis in order:
        if runs and (axis in _CONTRACTED) == (runs[-1][0] in _CONTRACTED):
            runs[-1].append(axis)
        else:
            runs.append([axis])
    return runs


def windows_of_transposed(windows: ndarray) -> ndarray:
    """From the stride-1 windows W of x to those of xᵀ (N and C swapped) against a kernel of
    W's output size, as ∂C/∂k = xᵀ ⋆ dyᵀ sees them: W'[c, n, p, q, i, j] = W[n, c, i, j, p, q]."""
    return windows.transpose(1, 0, 4, 5, 2, 3)


def correlate_windows(windows: ndarray, k: ndarray, bias: ndarray | None = None) -> ndarray:
    """y[n, f, i, j] = Σ_{c,p,q} W[n, c, i, j, p, q] · k[f, c, p, q] (+ bias[f]), as matrix
    products on W's memory as it lies. W's axes, outermost first, fall into runs of contracted
    axes (c, p, q: 'K') and kept axes (n, i, j: 'O'); each pattern is one BLAS call without a
    copy of W: K|O: k @ W;  O|K: W @ kᵀ;  O|K|O: k @ W batched over the first run;  K|O|K: W @ k
    batched over the first run, then summed over it. Only the small k and the output are
    rearranged. The bias is added to each part of the product as it comes out of BLAS."""
    f = k.shape[0]
    if windows.size == 0 or k.size == 0:  # an empty batch or map: nothing to multiply
        y = np.zeros((windows.shape[_N], f, windows.shape[_I], windows.shape[_J]),
                     dtype=np.result_type(windows.dtype, k.dtype))
        if bias is not None:
            add_bias(y, bias)
        return y
    per_map = None if bias is None else bias.reshape(f, 1)
    order, laid_axes, runs, kinds, sizes = _windows_plan(windows.shape, windows.strides)
    # In unfold's layouts each run merges into one matrix axis without a copy (reshape would
    # copy any other layout, which stays correct, only slower).
    laid = windows.transpose(laid_axes)
    k_axis = {_C: 1, _P: 2, _Q: 3}

    def weights(*k_runs: list[int]) -> ndarray:  # k as (F, K1, K2, ...) in the runs' order
        in_runs = [a for run in k_runs for a in run]
        axes = [k_axis[a] for a in in_runs + [a for a in (_C, _P, _Q) if a not in in_runs]]  # length 1 last
        return k.transpose([0] + axes).reshape([f] + [math.prod(windows.shape[a] for a in run) for run in k_runs])

    # the bias along the product's f axis: its rows, or (O|K) its columns
    if kinds == "K":  # every kept axis has length 1
        y, labels = matmul(weights(runs[0]), laid.reshape(sizes[0], 1), per_map).reshape(f), ["f"]
    elif kinds == "KO":
        y, labels = matmul(weights(runs[0]), laid.reshape(sizes), per_map), ["f"] + runs[1]
    elif kinds == "OK":
        y = matmul(laid.reshape(sizes), weights(runs[1]).T, None if bias is None else per_map.T)
        labels = runs[0] + ["f"]
    elif kinds == "OKO":
        y, labels = matmul(weights(runs[1]), laid.reshape(sizes), per_map), runs[0] + ["f"] + runs[2]
    elif kinds == "KOK":
        stacked = weights(runs[0], runs[2]).transpose(1, 2, 0)                    # (K1, K2, F)
        y, labels = matmul(laid.reshape(sizes), stacked).sum(axis=0), runs[1] + ["f"]
        if bias is not None:
            y += per_map.T
    else:  # some other interleaving: copy W into K|O
        keep = [a for a in order if a not in _CONTRACTED]
        contracted = [a for a in order if a in _CONTRACTED]
        moved = windows.transpose(contracted + keep + laid_axes[len(order):])  # length-1 axes last
        matrix = copy_into(np.empty(moved.shape, dtype=moved.dtype), moved)
        y = matmul(weights(contracted), matrix.reshape(math.prod(windows.shape[a] for a in contracted), -1), per_map)
        labels = ["f"] + keep
    size_of = {"f": f, _N: windows.shape[_N], _I: windows.shape[_I], _J: windows.shape[_J]}
    y = y.reshape([size_of[label] for label in labels])
    axes, batch_last = _nchw_axes(tuple(labels))
    if batch_last:  # the batch axis last, as from K|O:
        y = y.transpose(axes)  # an NCHW view of batch-last memory, which the next ops keep (no copy)
    elif axes is not None:
        moved = y.transpose(axes)
        y = copy_into(np.empty(moved.shape, dtype=moved.dtype), moved)
    return y.reshape(windows.shape[_N], f, windows.shape[_I], windows.shape[_J])


@functools.lru_cache(maxsize=64)
def _nchw_axes(labels: tuple[object, ...]) -> tuple[list[int] | None, bool]:
    """The permutation that takes a product's axes (labelled "f", _N, _I, _J) to NCHW order
    (None: already in it), and whether it only moves the batch axis from last to first."""
    wanted = [label for label in ("f", _N, _I, _J) if label in labels]
    axes = [labels.index(label) for label in sorted(wanted, key=[_N, "f", _I, _J].index)]
    if axes == list(range(len(axes))):
        return None, False
    return axes, axes == [len(axes) - 1] + list(range(len(axes) - 1))


@functools.lru_cache(maxsize=256)
def _windows_plan(shape: tuple[int, ...], strides: tuple[int, ...]
                  ) -> tuple[list[int], list[int], list[list[int]], str, list[int]]:
    """How correlate_windows reads windows of this shape and these strides: the axes longer
    than 1 from outermost to innermost in memory (axes of length 1 have no place in memory:
    they go last), their runs of contracted and kept axes, the runs' kinds ('K'/'O') and sizes.
    (Cached: a training loop repeats its shapes; callers do not change the lists.)"""
    order = [axis for axis in sorted(range(6), key=lambda axis: -strides[axis]) if shape[axis] > 1]
    ones = [axis for axis in range(6) if shape[axis] == 1]
    runs = _runs(tuple(order))
    kinds = "".join("K" if run[0] in _CONTRACTED else "O" for run in runs)
    sizes = [math.prod([shape[a] for a in run]) for run in runs]
    return order, order + ones, runs, kinds, sizes


def add_bias(y: ndarray, bias: ndarray) -> None:
    """y[:, f] += bias[f], in place: one shared bias per feature map of y (N, F, H, W)."""
    elementwise(np.add, y, bias.reshape(1, -1, 1, 1), out=y)


def _correlate_by_scatter(x: ndarray, k: ndarray, padding: tuple[int, int, int, int]) -> ndarray:
    """The same correlation for 0 <= padding < kernel size, stride 1, computed as a transposed
    convolution: a GEMM gives every product x[n, c, i, j]·k[f, c, p, q] summed over c, and each
    of the kh·kw kernel taps adds its slab into the output at its offset.

    The work goes in blocks of samples (and of feature maps, where one sample's products are
    large) of `_SCATTER_BLOCK_BYTES` of products: each block moves its samples' batch axis last
    (so each tap's add runs over contiguous stretches of W·n values), then runs one GEMM per
    kernel row p, whose kw taps are added while that row's products (a kh-th of the block's) are
    still in the core's cache, and writes its part of the output in NCHW order. No array the
    size of all the products, and no transposition of the whole batch. (The MNIST network's
    ∂C/∂x of conv2, in a training step: 3.5 against 4.3 ms at batch 64 for one GEMM per block of
    2 MiB of products, its taps added from memory; at batch 256, 12.2 against 12.3 ms.)"""
    n, c, height, width = x.shape
    f, _, kh, kw = k.shape
    top, bottom, left, right = padding
    dtype = np.result_type(x.dtype, k.dtype)
    full_h, full_w = height + kh - 1, width + kw - 1
    row0, col0 = kh - 1 - top, kw - 1 - left  # where the output starts in the full correlation
    out_h, out_w = full_h - row0 - (kh - 1 - bottom), full_w - col0 - (kw - 1 - right)
    out = np.empty((n, f, out_h, out_w), dtype=dtype)
    k_taps = k.transpose(2, 3, 0, 1)  # (kh, kw, F, C)
    per_sample = kh * kw * f * height * width * np.dtype(dtype).itemsize
    samples = max(1, min(n, _SCATTER_BLOCK_BYTES // max(per_sample, 1)))
    maps = max(1, f if samples > 1 or per_sample <= _SCATTER_BLOCK_BYTES else f * _SCATTER_BLOCK_BYTES // per_sample)
    map_blocks = -(-f // maps)

    def work(first: int, last: int) -> None:  # blocks first..last-1: a loop over cache-sized blocks
        for block in range(first, last):
            sample_block, map_block = divmod(block, map_blocks)
            n0, n1 = sample_block * samples, min(n, (sample_block + 1) * samples)
            f0, f1 = map_block * maps, min(f, (map_block + 1) * maps)
            columns = np.ascontiguousarray(x[n0:n1].transpose(1, 2, 3, 0)).reshape(c, height * width * (n1 - n0))
            rows = k_taps[:, :, f0:f1].reshape(kh, kw * (f1 - f0), c)
            row_products = np.empty((kw * (f1 - f0), height * width * (n1 - n0)), dtype=dtype)
            taps = row_products.reshape(kw, f1 - f0, height, width, n1 - n0)
            full = np.zeros((f1 - f0, full_h, full_w, n1 - n0), dtype=dtype)
            for p in range(kh):  # a loop over kernel rows: one product per row, its taps added from cache
                np.matmul(rows[p], columns, out=row_products)
                for q in range(kw):  # a loop over the row's taps, each one whole-block add
                    full[:, kh - 1 - p : kh - 1 - p + height, kw - 1 - q : kw - 1 - q + width] += taps[q]
            out[n0:n1, f0:f1] = full[:, row0 : row0 + out_h, col0 : col0 + out_w].transpose(3, 0, 1, 2)

    blocks = -(-n // samples) * map_blocks
    with _blas.single_threaded():
        parallel(work, blocks, n * per_sample, chunks_per_thread=blocks)  # every block a chunk: even shares
    return out


def is_batch_last(x: ndarray) -> bool:
    """Whether x (N, C, H, W) lies batch-last in memory, (C, H, W, N) in C order, as a
    convolution's output from a batch-last product does (and not in NCHW order as well)."""
    return x.ndim == 4 and x.shape[0] > 1 and x.transpose(1, 2, 3, 0).flags.c_contiguous and not x.flags.c_contiguous


def maxpool2d(x: ndarray, size: tuple[int, int], stride: tuple[int, int]) -> tuple[ndarray, ndarray]:
    """Window max over the last two axes, and the flat index (into x's memory: x.ravel(), or for
    a batch-last x the (C, H, W, N) array it is a view of) of each window's first maximum in
    row-major order (the np.argmax rule; a NaN counts as the maximum). The indices come in the
    order of the output's memory: (*lead, H', W'), or (C, H', W', N) for a batch-last x, whose
    output is batch-last too.

    Tap (p, q) of every window at once is the strided slice x[..., p::sh, q::sw]. The maximum
    is a running np.maximum over the kh·kw taps; its tap index is then computed arithmetically
    from the comparisons tap ≠ max, so that the first maximum wins. (np.argmax over a tiny last
    axis of copied windows is several times slower, and masked writes slower still.) Batch-last,
    each pass runs along the batch: 3–7× faster than along rows of 12 values with a stride of 2.
    """
    kh, kw = size
    sh, sw = stride
    *lead, height, width = x.shape
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    batch_last = is_batch_last(x)
    # planes (slices, H, W, batch): batch-last, the channels with the batch innermost; else one per plane
    planes = x.transpose(1, 2, 3, 0) if batch_last else x.reshape(math.prod(lead), height, width, 1)
    slices, batch = planes.shape[0], planes.shape[3]
    taps = [(p, q) for p in range(kh) for q in range(kw)]

    def work(start: int, stop: int) -> None:  # planes start..stop-1
        def tap(p: int, q: int) -> ndarray:
            return planes[start:stop, p : p + (out_h - 1) * sh + 1 : sh, q : q + (out_w - 1) * sw + 1 : sw]

        top, index = y[start:stop], first[start:stop]
        np.copyto(top, tap(*taps[0]))
        for p, q in taps[1:]:
            np.maximum(top, tap(p, q), out=top)
        # The first tap t with tap_t == max, as nested products, innermost first:
        # t = ne_0·(1 + ne_1·(1 + ne_2·(…(1 + ne_{T−2})))), where ne_t = (tap_t ≠ max).
        # (bool arrays viewed as uint8 bytes: no casts, no separate fill)
        if len(taps) == 1:
            index.fill(0)
        elif index.dtype == np.uint8:
            np.not_equal(tap(*taps[-2]), top, out=index.view(np.bool_))
        else:  # more than 256 taps
            np.copyto(index, np.not_equal(tap(*taps[-2]), top))
        for p, q in reversed(taps[:-2]):
            index += 1
            index *= np.not_equal(tap(p, q), top).view(np.uint8)
        if np.isnan(top).any():  # rare: a NaN is the maximum of its window, as in np.argmax
            _first_nan_taps(np.moveaxis(planes[start:stop], 3, 1), np.moveaxis(index, 3, 1), size, stride,
                            (out_h, out_w))
        routes = flat[start:stop]
        np.take(offsets, index, out=routes, mode="clip")  # in range by construction: no checked copy
        routes += origins[start:stop]

    y = np.empty((slices, out_h, out_w, batch), dtype=x.dtype)
    first = np.empty(y.shape, dtype=np.uint8 if kh * kw <= 256 else np.intp)
    flat = np.empty(y.shape, dtype=np.intp)
    origins = _window_origins(slices, height, width, out_h, out_w, sh, sw, batch)
    offsets = np.array([(p * width + q) * batch for p, q in taps], dtype=np.intp)
    parallel(work, slices, 3 * x.nbytes)
    if batch_last:
        return y.transpose(3, 0, 1, 2), flat
    return y.reshape(*lead, out_h, out_w), flat.reshape(*lead, out_h, out_w)


def _first_nan_taps(x: ndarray, first: ndarray, size: tuple[int, int], stride: tuple[int, int],
                    out: tuple[int, int]) -> ndarray:
    """Where a window holds a NaN, the tap of its first NaN (np.argmax's answer), written into `first`."""
    (kh, kw), (sh, sw), (out_h, out_w) = size, stride, out
    found = np.zeros(first.shape, dtype=bool)
    for tap in range(kh * kw):
        p, q = divmod(tap, kw)
        nan = np.isnan(x[..., p : p + (out_h - 1) * sh + 1 : sh, q : q + (out_w - 1) * sw + 1 : sw]) & ~found
        first[nan] = tap
        found |= nan
    return first


@functools.lru_cache(maxsize=32)
def _window_origins(slices: int, height: int, width: int, out_h: int, out_w: int, sh: int, sw: int,
                    batch: int = 1) -> ndarray:
    """Flat index of each pooling window's top-left cell in planes (slices, H, W, batch), as an
    array (slices, H', W', batch) (cached: a training loop repeats shapes)."""
    rows = np.arange(out_h)[:, None] * (sh * width) + np.arange(out_w)[None, :] * sw
    cells = np.arange(slices)[:, None, None] * (height * width) + rows
    origins = cells[..., None] * batch + np.arange(batch)
    origins.setflags(write=False)
    return origins


def index_add(values: ndarray, shape: tuple[int, ...], index: object, unique: bool, groups: int = 1) -> ndarray:
    """zeros(shape) with `values` added at `index`; repeated positions add up (np.add.at).

    `groups` > 1 (flat distinct positions only, as max pooling's routes, plane by plane): index
    and values come in that many equal runs, and the r-th run's positions lie in the r-th of as
    many equal parts of the flat output. Each thread then zeroes its parts and writes their
    values while they are in its cache, in one pass over the threads (0.4 against 0.6 ms, the
    zeroing and the writes one after the other, for pool1's routes at batch 64)."""
    out = np.empty(shape, dtype=values.dtype)
    flat = (unique and isinstance(index, np.ndarray) and index.dtype.kind in "iu"
            and index.ndim == 1 == out.ndim == values.ndim)
    if flat and groups > 1 and len(index) % groups == 0 == out.size % groups:  # max pooling's routes
        cells, routes = out.size // groups, len(index) // groups

        def zero_and_write(start: int, stop: int) -> None:  # groups start..stop-1: disjoint cells
            out[start * cells : stop * cells].fill(0)
            out[index[start * routes : stop * routes]] = values[start * routes : stop * routes]

        parallel(zero_and_write, groups, out.nbytes + values.nbytes + index.nbytes)
        return out
    if len(shape):
        parallel(lambda start, stop: out[start:stop].fill(0), shape[0], out.nbytes)
    else:
        out.fill(0)
    if flat:  # flat distinct positions

        def write(start: int, stop: int) -> None:  # the parts write disjoint cells
            out[index[start:stop]] = values[start:stop]

        parallel(write, len(index), 4 * values.nbytes)
    elif unique:
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out
