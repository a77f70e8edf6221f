"""The array kernels on their own: im2col windows in every memory order, their reuse for ∂C/∂k,
and the thread split of copies and pooling (results must not depend on how work is split)."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import kernels as K


def direct_correlation(x, k, padding, stride):
    """The defining sum, one kernel tap at a time (an oracle independent of im2col)."""
    xp = K.pad2d(x, padding)
    kh, kw = k.shape[2:]
    out_h = (xp.shape[2] - kh) // stride[0] + 1
    out_w = (xp.shape[3] - kw) // stride[1] + 1
    y = np.zeros((x.shape[0], k.shape[0], out_h, out_w))
    for p, q in itertools.product(range(kh), range(kw)):
        window = xp[:, :, p : p + (out_h - 1) * stride[0] + 1 : stride[0], q : q + (out_w - 1) * stride[1] + 1 : stride[1]]
        y += np.einsum("nchw,fc->nfhw", window, k[:, :, p, q])
    return y


@st.composite
def correlation_case(draw, stride_one=False):
    n, c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = tuple(draw(st.integers(-1, 3)) for _ in range(4))
    stride = (1, 1) if stride_one else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    height = draw(st.integers(max(kh - padding[0] - padding[1], 1) + 1, 12))
    width = draw(st.integers(max(kw - padding[2] - padding[3], 1) + 1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c, height, width)), rng.standard_normal((f, c, kh, kw)), padding, stride


@settings(max_examples=80, deadline=None)
@given(correlation_case(), st.permutations(range(6)))
def test_windows_in_any_memory_order_give_the_correlation(case, order):
    """correlate_windows reads W's memory order from its strides; every one of the 720 orders
    (unfold's own, the reused ones, and any other, which it copies) gives the same numbers."""
    x, k, padding, stride = case
    windows = K.unfold(x, k.shape[2:], padding, stride)
    assert windows.shape[:2] == x.shape[:2] and windows.shape[4:] == k.shape[2:]
    relaid = np.ascontiguousarray(windows.transpose(order)).transpose(np.argsort(order))
    np.testing.assert_array_equal(relaid, windows)
    np.testing.assert_allclose(K.correlate_windows(relaid, k), direct_correlation(x, k, padding, stride),
                               rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(correlation_case(stride_one=True))
def test_forward_windows_serve_the_weight_gradient(case):
    """∂C/∂k = xᵀ ⋆ dyᵀ computed from the forward's windows equals gathering xᵀ afresh."""
    x, k, padding, stride = case
    windows = K.unfold(x, k.shape[2:], padding, stride)
    dy = np.random.default_rng(0).standard_normal(K.correlate_windows(windows, k).shape)
    x_t, dy_t = x.transpose(1, 0, 2, 3), dy.transpose(1, 0, 2, 3)
    reused = K.correlate_windows(K.windows_of_transposed(windows), dy_t)
    np.testing.assert_allclose(reused, direct_correlation(x_t, dy_t, padding, (1, 1)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(64, 20, 12, 12, 40, 5, 5), (64, 1, 28, 28, 20, 5, 5), (20, 64, 12, 12, 40, 8, 8)])
def test_mnist_network_shapes_take_the_copy_free_products(shape, monkeypatch):
    """For the shapes of the MNIST network (both convolutions and ∂C/∂k), unfold's layouts, and
    the reused ones, need no second copy of W: no call of np.ascontiguousarray on a 6-axis array."""
    n, c, height, width, f, kh, kw = shape
    x = np.random.default_rng(1).standard_normal((n, c, height, width)).astype(np.float32)
    k = np.random.default_rng(2).standard_normal((f, c, kh, kw)).astype(np.float32)
    windows = K.unfold(x, (kh, kw), (0, 0, 0, 0), (1, 1))
    dy = np.ones((n, f, height - kh + 1, width - kw + 1), dtype=np.float32)
    copies = []
    real = np.ascontiguousarray
    monkeypatch.setattr(K.np, "ascontiguousarray", lambda a, *args, **kw_: (copies.append(np.ndim(a)), real(a, *args, **kw_))[1])
    K.correlate_windows(windows, k)
    K.correlate_windows(K.windows_of_transposed(windows), dy.transpose(1, 0, 2, 3))
    assert 6 not in copies


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 100])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_parallel_over_covers_every_index_once(count, threads, monkeypatch):
    monkeypatch.setattr(K, "THREADS", threads)
    monkeypatch.setattr(K, "_pool", None)
    seen = np.zeros(count, dtype=int)
    parts = []

    def work(part):
        parts.append(part)
        seen[part] += 1

    K.parallel_over(count, work, elements=1 << 30)
    np.testing.assert_array_equal(seen, 1)
    assert len(parts) == max(1, min(threads, count))
    parts.clear()
    K.parallel_over(count, work, elements=10)  # too small to hand over: one call
    assert len(parts) == 1


def test_parallel_over_passes_on_a_workers_error(monkeypatch):
    monkeypatch.setattr(K, "THREADS", 2)
    monkeypatch.setattr(K, "_pool", None)

    def work(part):
        if part.start > 0:
            raise ValueError("from the second part")

    with pytest.raises(ValueError, match="second part"):
        K.parallel_over(4, work, elements=1 << 30)


@pytest.mark.parametrize("threads", [2, 3])
def test_thread_split_does_not_change_results(threads, monkeypatch):
    """Copies, the scatter's tap adds and pooling give bit-identical results on 1 or more threads."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 13, 11)).astype(np.float32)
    k = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    calls = [
        lambda: K.correlate2d_nchw(x, k, (0, 0, 0, 0), (1, 1), method="im2col"),
        lambda: K.correlate2d_nchw(x, k, (2, 2, 2, 2), (1, 1), method="scatter"),
        lambda: K.maxpool2d(x, (2, 2), (2, 2)),
        lambda: K.maxpool2d(x, (3, 2), (1, 1)),
    ]
    monkeypatch.setattr(K, "THREADS", 1)
    serial = [call() for call in calls]
    monkeypatch.setattr(K, "THREADS", threads)
    monkeypatch.setattr(K, "_pool", None)
    monkeypatch.setattr(K, "_PARALLEL_MIN_SIZE", 1)
    for call, expected in zip(calls, serial):
        got = call()
        for got_array, expected_array in zip(got if isinstance(got, tuple) else (got,),
                                             expected if isinstance(expected, tuple) else (expected,)):
            np.testing.assert_array_equal(got_array, expected_array)


def test_thread_count_follows_the_blas_setting(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert K._thread_count() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert K._thread_count() == 1


@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (200, 3), (130, 129), (64, 64), (0, 5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_transpose_is_a_transpose(shape, threads, monkeypatch):
    monkeypatch.setattr(K, "THREADS", threads)
    monkeypatch.setattr(K, "_pool", None)
    monkeypatch.setattr(K, "_PARALLEL_MIN_SIZE", 1)
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = K.transpose_2d(a)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a.T)
    x = np.arange(5 * 3 * 4 * 7, dtype=np.float32).reshape(5, 3, 4, 7)
    np.testing.assert_array_equal(K.batch_to_back(x), np.moveaxis(x, 0, -1))
    np.testing.assert_array_equal(K.batch_to_front(x), np.moveaxis(x, -1, 0))
    np.testing.assert_array_equal(K.batch_to_front(x[:, 1:, ::2]), np.moveaxis(x[:, 1:, ::2], -1, 0))


@pytest.fixture
def split_everything(monkeypatch):
    """Two threads, and every array large enough to split."""
    monkeypatch.setattr(K, "THREADS", 2)
    monkeypatch.setattr(K, "_pool", None)
    monkeypatch.setattr(K, "_PARALLEL_MIN_SIZE", 1)


@pytest.mark.parametrize("shapes", [((4, 3), (4, 3)), ((4, 3), (3,)), ((4, 1), (1, 3)), ((1, 3), (5, 3)),
                                    ((), (6, 2)), ((6, 2), ())])
@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.divide, np.maximum])
def test_elementwise_split_equals_the_ufunc(shapes, ufunc, split_everything):
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal(shape).astype(np.float32) + 2 for shape in shapes)
    got = K.elementwise(ufunc, a, b)
    expected = ufunc(a, b)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    mask = K.elementwise(np.greater, a, b, dtype=np.float32)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, (a > b).astype(np.float32))


def test_elementwise_keeps_numpy_type_rules(split_everything):
    half = np.ones((4, 2), dtype=np.float16)
    assert K.elementwise(np.add, half, np.ones((), dtype=np.float64)).dtype == np.add(half, np.ones((), np.float64)).dtype
    assert K.elementwise(np.multiply, half, half).dtype == np.float16


def test_workers_run_under_the_callers_error_state(split_everything):
    """numpy's error state is per thread; an overflow in the part a worker computes must raise
    under the caller's np.errstate(over="raise") and stay silent under "ignore"."""
    big = np.full((4, 3), 3e38, dtype=np.float32)
    small = np.ones((4, 3), dtype=np.float32)
    a = np.concatenate([small[:2], big[2:]])  # the overflow is in the second (worker's) half
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        K.elementwise(np.add, a, a)
    with np.errstate(over="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isinf(K.elementwise(np.add, a, a)[3]).all()


def test_unfold_pads_rows_a_multiple_of_4k_apart_and_stays_exact():
    """conv2 at batch 64: rows of 8·8·64 floats (16 KiB) get 64 bytes of padding; the windows
    still hold exactly x's values, and the product is the correlation."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3, 12, 12)).astype(np.float32)
    k = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    windows = K.unfold(x, (5, 5), (0, 0, 0, 0), (1, 1))
    assert windows.base.shape[1] == 8 * 8 * 64 + 16  # the padded rows of the buffer
    np.testing.assert_array_equal(windows, np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3)))
    np.testing.assert_allclose(K.correlate_windows(windows, k), direct_correlation(x.astype(float), k.astype(float),
                               (0, 0, 0, 0), (1, 1)), rtol=1e-4, atol=1e-4)


FAULTS_SCRIPT = """
import resource, numpy as np
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, optim, kernels
from tinygrad_cnn.models import nielsen_cnn
model = nielsen_cnn("relu", seed=0)
opt = optim.SGD(model.parameters(), lr=0.01)
x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
y = np.arange(64) % 10
def step():
    loss = F.cross_entropy(model(Tensor(x)), y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def test_freed_memory_is_kept_for_the_next_step():
    """A training step frees and allocates the same large arrays every time; with malloc
    keeping freed memory (the default on glibc) they are not faulted in again each step."""
    import os
    import subprocess
    import sys

    if not K.keep_freed_memory():
        pytest.skip("not glibc: malloc is left alone")

    def faults_per_step(keep: str) -> float:
        env = dict(os.environ, TINYGRAD_CNN_KEEP_FREED_MEMORY=keep, OMP_NUM_THREADS="1")
        run = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], env=env, capture_output=True, text=True,
                             timeout=120, check=True)
        return float(run.stdout.strip())

    kept, returned = faults_per_step("1"), faults_per_step("0")
    assert kept * 5 < returned, (kept, returned)
