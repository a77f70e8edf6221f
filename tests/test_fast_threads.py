"""The fast backend's threads (tinygrad_cnn.backend.parallel and the kernels cut by it, imported
directly: these run the same whichever backend TINYGRAD_CNN_BACKEND selects): every kernel gives
the same numbers on any thread count (bit for bit,
except that BLAS may round a product's last bit differently once it is cut into parts), errors
and numpy's error handling reach the caller from any thread, and BLAS's own thread setting is
restored after every product. Arrays in these tests are small, so the size below
which the kernels stay on one thread is lowered to 0: every cut is exercised."""
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, backend, optim
from tinygrad_cnn.backend import parallel as P
from tinygrad_cnn.backend import reference
from tinygrad_cnn.backend.conv import _scatter_fits, correlate2d
from tinygrad_cnn.backend.elementwise import (copy_into, elementwise, maximum, relu_backward, sigmoid,
                                              sigmoid_backward)
from tinygrad_cnn.backend.im2col import add_bias, correlate_windows, unfold, windows_of_transposed
from tinygrad_cnn.backend.linalg import matmul
from tinygrad_cnn.backend.pool import Argmax, index_add, is_batch_last, maxpool2d, maxpool2d_backward, maxpool2d_gather
from tinygrad_cnn.models import nielsen_cnn

from helpers import correlation_case

CONV, ELEMENTWISE, LINALG = (sys.modules[f"tinygrad_cnn.backend.{name}"] for name in ("conv", "elementwise", "linalg"))


@pytest.fixture(scope="module", autouse=True)
def every_size_threaded():
    """MIN_PARALLEL_BYTES lowered to 0 in every backend module that reads it (the modules that
    import it hold their own binding of the name), so that every kernel is cut into parts."""
    before = tinygrad_cnn.get_num_threads()
    modules = [module for name, module in sorted(sys.modules.items())
               if name.startswith("tinygrad_cnn.backend.") and hasattr(module, "MIN_PARALLEL_BYTES")]
    assert P in modules and ELEMENTWISE in modules and LINALG in modules
    with pytest.MonkeyPatch.context() as patch:
        for module in modules:
            patch.setattr(module, "MIN_PARALLEL_BYTES", 0)
        yield
    tinygrad_cnn.set_num_threads(before)


def on_threads(threads, fn, *args, **kwargs):
    tinygrad_cnn.set_num_threads(threads)
    return fn(*args, **kwargs)


def _parts(result):
    """A kernel's result as a flat list: its arrays, and the plain values beside them (Argmax's flags)."""
    if isinstance(result, tuple):
        return [part for item in result for part in _parts(item)]
    return [result]


def assert_same_on_1_2_and_3_threads(fn, *args, products=False):
    """Bit for bit; where `products` (BLAS calls) are involved, to float32's last bit: BLAS picks
    its inner kernel by the size of the part, and kernels round differently."""
    results = [on_threads(threads, fn, *args) for threads in (1, 2, 3)]
    for result in results[1:]:
        got_parts, want_parts = _parts(result), _parts(results[0])
        assert len(got_parts) == len(want_parts) and type(result) is type(results[0])
        for got, want in zip(got_parts, want_parts):
            if not isinstance(want, np.ndarray):
                assert got == want
                continue
            assert got.dtype == want.dtype and got.shape == want.shape
            if products:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # sums that cancel: absolute
            else:
                np.testing.assert_array_equal(got, want)
    return results[0]


@settings(max_examples=40, deadline=None)
@given(case=correlation_case(), method=st.sampled_from(["auto", "im2col", "scatter"]))
def test_correlation_is_the_same_on_any_thread_count(case, method):
    x, k, padding, stride = case
    x, k = x.astype(np.float32), k.astype(np.float32)
    if method == "scatter" and not _scatter_fits(k.shape, padding, stride):
        method = "im2col"
    y = assert_same_on_1_2_and_3_threads(correlate2d, x, k, padding, stride, method, products=True)
    if stride == (1, 1) and min(padding) >= 0:  # the weight gradient from the forward's windows
        windows = unfold(x, k.shape[2:], padding, stride)
        dy = np.ones_like(y)
        assert_same_on_1_2_and_3_threads(
            lambda: correlate_windows(windows_of_transposed(windows), dy.transpose(1, 0, 2, 3)), products=True)
        assert_same_on_1_2_and_3_threads(unfold, x, k.shape[2:], padding, stride)  # the windows: copies


@settings(max_examples=40, deadline=None)
@given(case=correlation_case(stride_one=True), block_bytes=st.sampled_from([1, 200, 3000, 40_000, 10**9]))
def test_scatter_in_blocks_of_any_size_is_the_correlation(case, block_bytes):
    """Blocks of samples, or of feature maps within one sample, down to a single map: the same
    correlation as im2col's, on any thread count."""
    x, k, padding, stride = case
    padding = tuple(min(max(pad, 0), size - 1) for pad, size in zip(padding, np.repeat(k.shape[2:], 2)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CONV, "SCATTER_BLOCK_BYTES", block_bytes)
        y = assert_same_on_1_2_and_3_threads(correlate2d, x.astype(np.float32), k.astype(np.float32),
                                             padding, stride, "scatter", products=True)
    np.testing.assert_allclose(y, correlate2d(x, k, padding, stride, "im2col"), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(case=correlation_case(), block_bytes=st.sampled_from([1, 200, 3000, 40_000, 10**9]), bias=st.booleans())
def test_im2col_and_the_weight_gradient_in_blocks_of_any_size(case, block_bytes, bias):
    """Blocks of samples, down to one sample: the correlation and ∂C/∂k of the whole batch,
    on any thread count (∂C/∂k to float32's last bits: its chunks' sums group by thread count)."""
    x, k, padding, stride = case
    b = np.arange(k.shape[0], dtype=np.float32) if bias else None
    want = reference.conv2d(x, k, b, padding, stride)
    dy = np.random.default_rng(3).standard_normal(want.shape)
    want_dk = reference.conv2d_grad_k(x, dy, k.shape[2:], padding, stride)
    x, k, dy = x.astype(np.float32), k.astype(np.float32), dy.astype(np.float32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CONV, "correlation_method", lambda *shapes: "im2col")
        patch.setattr(CONV, "GATHER_BLOCK_BYTES", block_bytes)
        y = assert_same_on_1_2_and_3_threads(CONV.conv2d, x, k, b, padding, stride, products=True)
        dk = assert_same_on_1_2_and_3_threads(CONV.conv2d_grad_k, x, dy, k.shape[2:], padding, stride,
                                              products=True)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, want_dk, rtol=1e-4, atol=1e-4)


def test_parallel_inside_a_chunk_runs_on_that_chunks_thread():
    """A kernel whose parts run other kernels: the inner ones run where their part runs."""
    seen = []

    def inner(start, stop):
        seen.append(threading.current_thread())

    def outer(start, stop):
        before = len(seen)
        P.parallel(inner, 8, 1 << 30)
        assert {id(t) for t in seen[before:]} == {id(threading.current_thread())}

    tinygrad_cnn.set_num_threads(2)
    P.parallel(outer, 2, 1 << 30, chunks_per_thread=1)
    assert len(seen) == 2
    P.parallel(inner, 8, 1 << 30)  # outside any chunk: cut again
    assert len(seen) == 2 + 4


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(1, 3), size=st.integers(1, 3), stride=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), ties=st.booleans(), nan=st.booleans(), batch_last=st.booleans())
def test_max_pooling_is_the_same_on_any_thread_count(n, c, size, stride, seed, ties, nan, batch_last):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 7, 8)).astype(np.float32)
    if ties:
        x = np.round(x)  # many equal values: the first maximum must win in every part
    if nan:
        x[rng.integers(n), 0, rng.integers(7), rng.integers(8)] = np.nan
    if batch_last:  # the same values, laid (C, H, W, N) in memory, as a convolution's output
        x = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    y, argmax = assert_same_on_1_2_and_3_threads(maxpool2d, x, (size, size), (stride, stride))
    assert isinstance(argmax, Argmax)
    index = argmax.flat
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(windows.shape[:4] + (-1,))
    first = flat.argmax(axis=-1)  # np.argmax: first maximum, NaN counts as the maximum
    np.testing.assert_array_equal(y, np.take_along_axis(flat, first[..., None], -1)[..., 0])
    assert is_batch_last(y) == is_batch_last(x) == argmax.batch_last == (batch_last and n > 1)
    memory = x.transpose(1, 2, 3, 0).ravel() if is_batch_last(x) else x.ravel()  # indices into x's memory,
    y_memory = y.transpose(1, 2, 3, 0) if is_batch_last(x) else y                 # in the order of y's
    np.testing.assert_array_equal(memory[index], y_memory)
    routed = assert_same_on_1_2_and_3_threads(index_add, y_memory.ravel() + 1, (x.size,), index.ravel(),
                                              stride >= size)
    expected = np.zeros(x.size, np.float32)
    np.add.at(expected, index.ravel(), y_memory.ravel() + 1)
    np.testing.assert_array_equal(routed, expected)
    planes = index.shape[0] if is_batch_last(x) else index.size // (index.shape[-2] * index.shape[-1])
    assert argmax.planes == planes and argmax.disjoint == (stride >= size)
    if stride >= size:  # disjoint windows: routed plane by plane, as MaxPool2d's backward does
        by_planes = assert_same_on_1_2_and_3_threads(index_add, y_memory.ravel() + 1, (x.size,), index.ravel(), True,
                                                     planes)
        np.testing.assert_array_equal(by_planes, expected)
    # the Argmax's readers: the route of a gradient to the maxima (in x's layout), and the gather
    dx = assert_same_on_1_2_and_3_threads(maxpool2d_backward, y + 1, argmax, x.shape)
    in_memory = expected.reshape(c, 7, 8, n).transpose(3, 0, 1, 2) if is_batch_last(x) else expected.reshape(x.shape)
    np.testing.assert_array_equal(dx, in_memory)
    assert is_batch_last(dx) == is_batch_last(x)
    np.testing.assert_array_equal(assert_same_on_1_2_and_3_threads(maxpool2d_gather, x, argmax), y)


SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, data=st.data())
def test_elementwise_passes_broadcast_as_numpy_on_any_thread_count(shape, data):
    other = data.draw(st.lists(st.sampled_from([1, None]), min_size=len(shape), max_size=len(shape)))
    other_shape = [1 if o == 1 else s for o, s in zip(other, shape)][data.draw(st.integers(0, len(shape))):]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(other_shape).astype(np.float32)
    for ufunc in (np.multiply, np.add, np.subtract, np.maximum):
        got = assert_same_on_1_2_and_3_threads(elementwise, ufunc, a, b)
        np.testing.assert_array_equal(got, ufunc(a, b))
        got = assert_same_on_1_2_and_3_threads(elementwise, ufunc, b, 2)  # a Python number stays weak
        assert got.dtype == ufunc(b, 2).dtype and (b.ndim == 0 or got.dtype == np.float32)  # (0-d: numpy 1.x
        np.testing.assert_array_equal(got, ufunc(b, 2))                                     # promotes scalars)
    np.testing.assert_array_equal(assert_same_on_1_2_and_3_threads(relu_backward, b, a), b * (a > 0))
    np.testing.assert_array_equal(assert_same_on_1_2_and_3_threads(sigmoid_backward, b, a), b * (a * (1 - a)))
    np.testing.assert_allclose(assert_same_on_1_2_and_3_threads(sigmoid, a * 40),
                               1 / (1 + np.exp(-(a * 40).astype(np.float64))), rtol=1e-6, atol=1e-30)
    bias = rng.standard_normal(shape[1:2]).astype(np.float32)
    if len(shape) == 4:
        y = a.copy()
        on_threads(3, add_bias, y, bias)
        np.testing.assert_array_equal(y, a + bias.reshape(1, -1, 1, 1))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=4, max_size=4), mixed=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_elementwise_passes_keep_a_batch_last_layout(shape, mixed, seed):
    """Operands laid batch-last, (C, H, W, N) in memory as a convolution's output: the result
    is laid the same way (the next op then reads it in order), with numpy's values. Operands in
    mixed layouts give C order, as numpy's ufuncs choose, on one thread as on three."""
    rng = np.random.default_rng(seed)

    def batch_last(array):
        return np.ascontiguousarray(array.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)

    a = batch_last(rng.standard_normal(shape).astype(np.float32))
    b = rng.standard_normal(shape).astype(np.float32)
    b = b if mixed else batch_last(b)
    s = (b * 0.2 + 0.5).astype(np.float32)  # a sigmoid output, in b's layout
    s = s if mixed else batch_last(s)
    cases = [(lambda: elementwise(np.add, a, b), a + b, not mixed),  # mixed layouts: C order, as numpy
             (lambda: maximum(a, 0), np.maximum(a, 0), True),
             (lambda: relu_backward(b, a), b * (a > 0), not mixed),
             (lambda: sigmoid_backward(b, s), b * (s * (1 - s)), not mixed),
             (lambda: sigmoid(a), None, True)]
    for kernel, want, batch_last_result in cases:
        got = assert_same_on_1_2_and_3_threads(kernel)
        if want is not None:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, 1 / (1 + np.exp(-a.astype(np.float64))), rtol=1e-6)
        for result in (got, on_threads(3, kernel)):  # one thread (numpy's choice) and three: the same layout
            laid = result.transpose(1, 2, 3, 0) if batch_last_result else result  # batch-last, or C order
            assert laid.flags.c_contiguous


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, block=st.integers(1, 9), strided=st.booleans(), data=st.data())
def test_relu_backward_in_cache_blocks_is_the_masked_product(shape, block, strided, data):
    """The one-shape path (a byte mask per block, cast, multiplied in place) against numpy's
    dy · [z > 0], with blocks and parts of every size and signed zeros, infinities and NaNs."""
    special = st.sampled_from([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45])
    values = st.one_of(special, st.floats(-10, 10, width=32))
    size = int(np.prod(shape))
    z = np.array(data.draw(st.lists(values, min_size=size, max_size=size)), dtype=np.float32).reshape(shape)
    dy = np.array(data.draw(st.lists(values, min_size=size, max_size=size)), dtype=np.float32).reshape(shape)
    if strided:  # not contiguous: the general path
        z, dy = np.repeat(z, 2, axis=-1)[..., ::2], np.repeat(dy, 2, axis=-1)[..., ::2]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ELEMENTWISE, "BLOCK", block)
        with np.errstate(invalid="ignore"):  # inf · 0
            got = assert_same_on_1_2_and_3_threads(relu_backward, dy, z)
            want = dy * (z > 0)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)  # NaN where numpy gives NaN, -0.0 where it gives -0.0
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9), batch=st.sampled_from([(), (1,), (4,), (3, 2)]),
       a_batched=st.booleans(), transposed=st.booleans(), seed=st.integers(0, 2**32 - 1),
       addend=st.sampled_from([None, "rows", "columns", "whole"]))
@example(m=2, k=3, n=8, batch=(), a_batched=False, transposed=False, seed=1, addend="columns")  # cut by columns
@example(m=8, k=3, n=2, batch=(), a_batched=False, transposed=False, seed=1, addend="whole")    # by rows
@example(m=2, k=3, n=2, batch=(4,), a_batched=False, transposed=True, seed=1, addend="whole")  # by the batch
@example(m=7, k=1, n=5, batch=(3,), a_batched=True, transposed=False, seed=1, addend="rows")  # one term: a multiply
def test_products_are_the_same_on_any_thread_count(m, k, n, batch, a_batched, transposed, seed, addend):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch if a_batched else ()) + (m, k)).astype(np.float32)
    b = rng.standard_normal(batch + (k, n)).astype(np.float32)
    if transposed:  # a view with a leading dimension, as the kernels pass kᵀ
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
    shape = {None: None, "rows": (m, 1), "columns": (n,), "whole": batch + (m, n)}[addend]
    added = None if shape is None else rng.standard_normal(shape)  # float64, as a float64 bias
    got = assert_same_on_1_2_and_3_threads(matmul, a, b, added, products=True)
    product = assert_same_on_1_2_and_3_threads(matmul, a, b, products=True)
    np.testing.assert_allclose(product, np.matmul(a.astype(float), b.astype(float)), rtol=1e-5, atol=1e-5)
    if added is not None:  # each part's sum as numpy's in-place add of the whole: to the bit
        np.testing.assert_array_equal(got, np.add(product, added, out=product))


def train_briefly(activation, seed, x, labels, steps):
    """A few SGD steps of Nielsen's network; its parameters after them."""
    model = nielsen_cnn(activation, seed=seed)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        loss = F.cross_entropy(model(Tensor(x)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.skipif(backend.name() != "fast", reason="the reference backend computes on one thread")
def test_training_steps_agree_on_any_thread_count():
    rng = np.random.default_rng(0)
    x, labels = rng.random((6, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 6)

    def train() -> list:
        return train_briefly("relu", 1, x, labels, steps=2)

    one, three = on_threads(1, train), on_threads(3, train)
    for got, want in zip(three, one):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(on_threads(3, train), three):  # and a thread count repeats its numbers exactly
        np.testing.assert_array_equal(got, want)


def test_two_models_train_at_once_in_two_threads_as_each_would_alone():
    """Two Python threads each train a model while a third does numpy work of its own: the pool,
    BLAS's thread setting and the saved-array holds are shared, and nobody's numbers change."""
    rng = np.random.default_rng(4)
    data = [(rng.random((5, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 5)) for _ in range(2)]
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 300))

    def train(seed, x, labels):
        return train_briefly("sigmoid" if seed else "relu", seed, x, labels, steps=3)

    tinygrad_cnn.set_num_threads(2)
    alone = [train(seed, *data[seed]) for seed in (0, 1)]
    product = a @ b
    results, errors = {}, []

    def run(key, fn, *args):
        try:
            results[key] = fn(*args)
        except BaseException as error:  # noqa: BLE001 -- reported below
            errors.append(error)

    workers = [threading.Thread(target=run, args=(seed, train, seed, *data[seed])) for seed in (0, 1)]
    workers.append(threading.Thread(target=run, args=("numpy", lambda: [a @ b for _ in range(20)])))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    for seed in (0, 1):
        for got, want in zip(results[seed], alone[seed]):
            np.testing.assert_array_equal(got, want)
    for got in results["numpy"]:
        np.testing.assert_allclose(got, product, rtol=1e-12, atol=1e-12)


def test_an_error_in_any_part_reaches_the_caller_and_the_threads_stay_usable():
    on_threads(3, lambda: None)
    done = []

    def work(start, stop):
        if start <= 7 < stop:
            raise KeyError("part with 7")
        done.append((start, stop))

    with pytest.raises(KeyError, match="part with 7"):
        P.parallel(work, 12, 1 << 30)
    calls = []
    P.parallel(lambda start, stop: calls.append((start, stop)), 12, 1 << 30)
    assert sorted(calls) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]  # 2 parts per thread
    P.parallel(lambda start, stop: calls.append("empty"), 0, 1 << 30)
    assert "empty" not in calls


def test_a_helper_that_wakes_after_the_work_is_done_keeps_none_of_its_arrays():
    """The caller runs every part when the helpers are late, and cancels them; their queued
    calls must not hold the work (and its arrays) until a helper thread gets to them."""
    import weakref

    on_threads(2, P.parallel, lambda start, stop: None, 2, 1 << 30)  # the pool and its helper made
    release = threading.Event()
    P._pool.submit(release.wait)  # the one helper is busy: the next call's helper stays queued
    try:
        a = np.ones(1000)
        alive = weakref.ref(a)
        P.parallel(lambda start, stop, a=a: a[start:stop].sum(), len(a), 1 << 30)
        del a
        assert alive() is None
    finally:
        release.set()


def test_numpy_error_handling_follows_the_caller_into_every_thread():
    tinygrad_cnn.set_num_threads(3)
    z = np.zeros((12, 4), np.float32)
    z[-1, -1] = 1000.0  # exp overflows in the last part only
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            elementwise(np.exp, z)
    with np.errstate(over="ignore"):
        with np.testing.assert_no_warnings():
            assert np.isinf(elementwise(np.exp, z)[-1, -1])


def blas_thread_counts():
    """Each OpenBLAS's own thread count."""
    return [lib.get_num_threads() for lib in P._blas.libraries]


def test_blas_threads_are_restored_after_products_from_many_threads():
    """BLAS is held at one thread while our products run (on any number of caller threads at
    once), and its own setting is put back when the last product ends."""
    if not P.blas_reachable():
        pytest.skip("BLAS's thread setting is out of reach here (not an OpenBLAS pthreads build)")
    tinygrad_cnn.set_num_threads(2)
    saved = blas_thread_counts()
    for lib in P._blas.libraries:
        lib.set_num_threads(3)  # a setting other than 1, so that a restore can be told from none
    try:
        before = blas_thread_counts()
        assert before == [3] * len(before)
        with P.blas_single_threaded():
            assert blas_thread_counts() == [1] * len(before)
            with P.blas_single_threaded():  # nested: still one thread, until the outer block ends
                pass
            assert blas_thread_counts() == [1] * len(before)
        assert blas_thread_counts() == before
        seen = []

        def held_on_another_thread():  # not the thread that set BLAS's count last: held all the same
            with P.blas_single_threaded():
                seen.append(blas_thread_counts())
            seen.append(blas_thread_counts())

        other = threading.Thread(target=held_on_another_thread)
        other.start()
        other.join()
        assert seen == [[1] * len(before), before]
        a = np.ones((40, 30), np.float32)
        errors = []

        def products():
            try:
                for _ in range(50):
                    np.testing.assert_array_equal(matmul(a, a.T), np.full((40, 40), 30, np.float32))
            except BaseException as error:  # noqa: B036 -- reported below
                errors.append(error)

        callers = [threading.Thread(target=products) for _ in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert not errors
        assert blas_thread_counts() == before
    finally:
        for lib, threads in zip(P._blas.libraries, saved):
            lib.set_num_threads(threads)


def test_the_first_thread_count_is_blass_own_even_while_a_product_holds_it_at_one(monkeypatch):
    """The thread count is decided on first use from BLAS's setting. A kernel may first ask while
    our own product holds BLAS at one thread (a convolution's blocks are cut inside that hold):
    it must read the setting BLAS had, not the 1 we put there, or the process stays on one thread."""
    if not P.blas_reachable():
        pytest.skip("BLAS's thread setting is out of reach here (not an OpenBLAS pthreads build)")
    saved = blas_thread_counts()
    for lib in P._blas.libraries:
        lib.set_num_threads(3)
    try:
        monkeypatch.setattr(P, "_num_threads", None)  # as in a fresh process
        with P.blas_single_threaded():
            assert blas_thread_counts() == [1] * len(saved)
            assert P.get_num_threads() == 3
        assert P.get_num_threads() == 3 and blas_thread_counts() == [3] * len(saved)
    finally:
        for lib, threads in zip(P._blas.libraries, saved):
            lib.set_num_threads(threads)
        tinygrad_cnn.set_num_threads(2)


def test_the_thread_count_is_set_and_read_back():
    tinygrad_cnn.set_num_threads(3)
    assert tinygrad_cnn.get_num_threads() == 3 == P.get_num_threads()  # the count the kernels read
    tinygrad_cnn.set_num_threads(np.int64(1))
    assert tinygrad_cnn.get_num_threads() == 1 and type(tinygrad_cnn.get_num_threads()) is int


@pytest.mark.parametrize("threads, error", [(0, ValueError), (-2, ValueError), (True, TypeError), (2.0, TypeError),
                                            ("2", TypeError), (None, TypeError)])
def test_a_thread_count_that_is_not_a_positive_int_is_refused(threads, error):
    """set_num_threads checks its argument (a bool is not a count), and a refused count leaves
    the one set before."""
    tinygrad_cnn.set_num_threads(2)
    with pytest.raises(error, match="threads must be"):
        tinygrad_cnn.set_num_threads(threads)
    assert tinygrad_cnn.get_num_threads() == 2


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork here")
def test_a_forked_child_gets_threads_of_its_own():
    """The parent's helper threads do not exist in a forked child: the child must start its own
    (with the parent's pool, every part would quietly run on the child's calling thread)."""
    import multiprocessing

    tinygrad_cnn.set_num_threads(2)
    assert "tinygrad_cnn" in " ".join(_threads_that_ran_parts())  # the parent's helper thread now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        names = pool.apply_async(_threads_that_ran_parts).get(timeout=60)
    assert "tinygrad_cnn" in " ".join(names), names


def _threads_that_ran_parts():
    names = set()

    def work(start, stop):
        time.sleep(0.05)  # long enough for a helper to wake and take a part
        names.add(threading.current_thread().name)

    P.parallel(work, 4, 1 << 30)  # memory enough to be cut at any threshold
    return sorted(names)


@pytest.mark.parametrize("ufunc, first, second", [
    (np.maximum, np.ones((6, 4), np.float32), 0), (np.multiply, np.ones((6, 4), np.float32), 2.5),
    (np.maximum, np.ones((6, 4), np.int8), 0), (np.add, np.ones((6, 4), np.float16), np.ones(4, np.float32)),
    (np.greater, np.ones((6, 4), np.float32), 0), (np.subtract, 1, np.ones((6, 1), np.float64)),
])
def test_elementwise_results_have_numpys_dtype(ufunc, first, second):
    tinygrad_cnn.set_num_threads(2)
    got, want = elementwise(ufunc, first, second), ufunc(first, second)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_a_copy_broadcasts_along_the_axis_it_is_cut_along():
    tinygrad_cnn.set_num_threads(3)
    out = copy_into(np.empty((6, 3), np.float32), np.arange(3, dtype=np.float32)[None])
    np.testing.assert_array_equal(out, np.tile(np.arange(3, dtype=np.float32), (6, 1)))


def test_set_num_threads_while_another_thread_runs_kernels():
    errors, done = [], threading.Event()
    x = np.ones((64, 100), np.float32)

    def kernels():
        try:
            while not done.is_set():
                np.testing.assert_array_equal(elementwise(np.multiply, x, 2), 2 * x)
        except BaseException as error:  # noqa: B036 -- reported below
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    worker = threading.Thread(target=kernels)
    worker.start()
    try:
        for i in range(300):
            tinygrad_cnn.set_num_threads(2 + i % 2)
    finally:
        done.set()
        worker.join()
        sys.setswitchinterval(interval)
    assert not errors, errors


def test_numpys_error_callback_reaches_every_thread():
    tinygrad_cnn.set_num_threads(2)
    z = np.zeros((64, 1000), np.float32)
    z[:, -1] = 1000.0  # exp overflows in every part
    seen = []
    for _ in range(20):  # a helper thread takes parts whenever it wakes in time
        with np.errstate(over="call", call=lambda kind, flag: seen.append(kind)):
            assert np.isinf(elementwise(np.exp, z)).any()
    assert seen and set(seen) == {"overflow"}
    called_on = []

    def work(start, stop):
        time.sleep(0.05)  # long enough for a helper to wake and take a part
        np.exp(np.full(stop - start, 1000.0, np.float32))  # overflows in every part

    with np.errstate(over="call", call=lambda kind, flag: called_on.append((kind, threading.current_thread().name))):
        P.parallel(work, 4, 1 << 30)
    assert [kind for kind, _ in called_on] == ["overflow"] * 4  # every part's, whichever thread ran it
    assert any(name.startswith("tinygrad_cnn") for _, name in called_on), called_on  # a helper's among them


def test_kernels_still_run_while_the_interpreter_exits():
    """At exit the pool refuses new helpers: a kernel run from an atexit hook does all its parts
    on the calling thread instead of failing."""
    import subprocess
    from pathlib import Path

    script = ("import atexit, numpy as np\n"
              "import tinygrad_cnn\n"
              "from tinygrad_cnn.backend import parallel\n"
              "from tinygrad_cnn.backend.elementwise import maximum\n"
              "tinygrad_cnn.set_num_threads(2)\n"
              "x = np.ones((1024, 2048), np.float32)  # 8 MiB: above MIN_PARALLEL_BYTES, cut into parts\n"
              "maximum(x, 0)\n"
              "assert parallel._pool is not None  # the helpers' pool exists\n"
              "atexit.register(lambda: print('at exit', int(maximum(x, 0).sum())))\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "at exit 2097152" in run.stdout, run.stdout + run.stderr
