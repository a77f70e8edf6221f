"""The array kernels on their own: im2col windows in every memory order, their reuse for ∂C/∂k,
blocked transposes, and malloc keeping freed memory for the next step."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import Tensor
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
    y = K.correlate_windows(relaid, k)
    np.testing.assert_allclose(y, direct_correlation(x, k, padding, stride), rtol=1e-10, atol=1e-10)
    bias = np.arange(k.shape[0]) - 0.5  # added as the product lands: the same as adding it after
    np.testing.assert_array_equal(K.correlate_windows(relaid, k, bias), y + bias.reshape(1, -1, 1, 1))


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
def test_mnist_network_shapes_take_the_copy_free_products(shape):
    """For the shapes of the MNIST network (both convolutions and ∂C/∂k), unfold's layouts, and
    the reused ones, need no second copy of W: the products allocate less than W's size."""
    import tracemalloc

    n, c, height, width, f, kh, kw = shape
    x = np.random.default_rng(1).standard_normal((n, c, height, width)).astype(np.float32)
    k = np.random.default_rng(2).standard_normal((f, c, kh, kw)).astype(np.float32)
    windows = K.unfold(x, (kh, kw), (0, 0, 0, 0), (1, 1))
    dy = np.ones((n, f, height - kh + 1, width - kw + 1), dtype=np.float32)
    for args in ((windows, k), (K.windows_of_transposed(windows), dy.transpose(1, 0, 2, 3))):
        tracemalloc.start()
        try:
            K.correlate_windows(*args)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < windows.nbytes, (peak, windows.nbytes)


@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (200, 3), (130, 129), (64, 64), (0, 5), (700, 130), (130, 700),
                                   (2000, 70), (70, 2000)])
def test_blocked_transpose_is_a_transpose(shape):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = K.transpose_2d(a)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a.T)
    x = np.arange(5 * 3 * 4 * 7, dtype=np.float32).reshape(5, 3, 4, 7)
    np.testing.assert_array_equal(K.batch_to_back(x), np.moveaxis(x, 0, -1))
    np.testing.assert_array_equal(K.batch_to_back(x[:, 1:, ::2]), np.moveaxis(x[:, 1:, ::2], 0, -1))


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


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       layout=st.sampled_from(["nchw", "batch_last", "strided"]))
def test_window_view_is_the_strided_sliding_window_view(shape, kernel, stride, layout):
    """window_view builds sliding_window_view(x)[:, :, ::sh, ::sw] directly: the same values,
    read-only, on x's own memory, for C-contiguous x, for a batch-last array's NCHW view, and
    (through as_strided) for any other view."""
    n, c, height, width = shape
    kh, kw = min(kernel[0], height), min(kernel[1], width)
    x = np.arange(n * c * height * width, dtype=np.float32).reshape(shape)
    memory = None
    if layout == "batch_last":
        memory = np.ascontiguousarray(x.transpose(1, 2, 3, 0))
        x = memory.transpose(3, 0, 1, 2)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=3)[..., ::2]
    got = K.window_view(x, (kh, kw), stride, memory)
    want = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable
    assert got.size == 0 or np.shares_memory(got, x)


def test_ops_ignore_underflow_under_any_numpy_error_settings():
    """An op runs without an errstate of its own where numpy already ignores underflow; a
    caller's errstate that raises on it is seen at once, and forgotten when it ends."""
    tiny = Tensor(np.array([1e-30], dtype=np.float32))
    numpy_2 = K._extobj_contextvar is not None  # numpy 1.x: always False, every op enters the errstate
    assert K.underflow_ignored() == numpy_2  # numpy's default
    with np.errstate(under="raise"):
        assert not K.underflow_ignored()
        np.testing.assert_array_equal((tiny * tiny).data, [0.0])  # no FloatingPointError
        with np.errstate(under="ignore"):
            assert K.underflow_ignored() == numpy_2
        assert not K.underflow_ignored()
    assert K.underflow_ignored() == numpy_2
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        (Tensor(np.array([1e30], dtype=np.float32)) * 1e30).data  # overflow is still reported


FAULTS_SCRIPT = """
import resource, numpy as np
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, optim, kernels
from tinygrad_cnn.models import nielsen_cnn
model = nielsen_cnn("relu", seed=0)
opt = optim.SGD(model.parameters(), lr=0.01)
x = np.random.default_rng(0).random((256, 1, 28, 28), dtype=np.float32)
y = np.arange(256) % 10
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
    keeping freed memory (the default on glibc) they are not faulted in again each step.
    glibc's own thresholds adapt to what was freed before, so without the setting a step
    faulted once or thousands of times from run to run (at batch 64, and later at batch 256
    too); the comparison run fixes glibc's default threshold (MALLOC_MMAP_THRESHOLD_, which
    turns the adapting off) so that it shows what the setting saves."""
    import os
    import subprocess
    import sys

    if not K.keep_freed_memory():
        pytest.skip("not glibc: malloc is left alone")

    def faults_per_step(keep: str) -> float:
        env = dict(os.environ, TINYGRAD_CNN_KEEP_FREED_MEMORY=keep, OMP_NUM_THREADS="1",
                   MALLOC_MMAP_THRESHOLD_=str(128 << 10))  # glibc's default, fixed
        run = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], env=env, capture_output=True, text=True,
                             timeout=120, check=True)
        return float(run.stdout.strip())

    kept, returned = faults_per_step("1"), faults_per_step("0")
    assert kept * 5 < returned, (kept, returned)


@pytest.mark.parametrize("method", ["im2col", "scatter", "fft"])
@pytest.mark.parametrize("empty", ["batch", "feature maps", "channels"])
def test_an_empty_axis_gives_an_empty_or_zero_result(method, empty):
    n, f, c = 0 if empty == "batch" else 2, 0 if empty == "feature maps" else 2, 0 if empty == "channels" else 3
    x, k = np.ones((n, c, 6, 6), dtype=np.float32), np.ones((f, c, 3, 3), dtype=np.float32)
    padding = (2, 2, 2, 2) if method == "scatter" else (0, 0, 0, 0)
    y = K.correlate2d_nchw(x, k, padding, (1, 1), method=method)
    assert y.shape == ((n, f, 8, 8) if method == "scatter" else (n, f, 4, 4)) and y.dtype == np.float32
    assert not y.any()  # no channel to sum over: zeros


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 2), (17, 17)])  # 17·17 = 289 taps: an index wider than a byte
@pytest.mark.parametrize("values", ["ties", "increasing", "decreasing"])  # first, last and every tap win
def test_max_pooling_finds_the_first_maximum_of_each_window(size, values):
    rng = np.random.default_rng(2)
    x = {"ties": np.round(rng.standard_normal((2, 3, 19, 20)) * 2),
         "increasing": np.arange(2 * 3 * 19 * 20).reshape(2, 3, 19, 20),
         "decreasing": -np.arange(2 * 3 * 19 * 20).reshape(2, 3, 19, 20)}[values].astype(np.float32)
    y, index = K.maxpool2d(x, size, (1, 2))
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=(2, 3))[:, :, :, ::2]
    flat = windows.reshape(windows.shape[:4] + (-1,))
    first = flat.argmax(axis=-1)
    np.testing.assert_array_equal(y, flat.max(axis=-1))
    rows, cols = np.divmod(first, size[1])
    i, j = np.meshgrid(np.arange(y.shape[2]), np.arange(y.shape[3]) * 2, indexing="ij")
    np.testing.assert_array_equal(np.unravel_index(index, x.shape)[2:], (i + rows, j + cols))


def test_conv2_of_the_mnist_network_stays_batch_last_through_relu_and_pooling():
    """conv2's product comes out batch-last, (F, H', W', N) in memory; the bias, ReLU and max
    pooling keep that layout (no transposing copy) and the backward's gradients follow it,
    with the values of the plain NCHW computation."""
    import tinygrad_cnn.functional as F
    from tinygrad_cnn import Tensor

    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 20, 12, 12)).astype(np.float32)
    k = rng.standard_normal((40, 20, 5, 5)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    tx, tk, tb = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True), Tensor(b, requires_grad=True)
    z = F.conv2d(tx, tk, tb)
    a = F.relu(z)
    p = F.maxpool2d(a, 2)
    assert K.is_batch_last(z.data) and K.is_batch_last(a.data) and K.is_batch_last(p.data)
    want = direct_correlation(x.astype(float), k.astype(float), (0, 0, 0, 0), (1, 1)) + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(z.data, want, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(p.shape).astype(np.float32)
    (p * Tensor(g)).sum().backward()
    dz = np.zeros_like(want)  # the reference gradient: routed to each window's maximum, masked by ReLU
    windows = np.maximum(want, 0).reshape(8, 40, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(8, 40, 4, 4, 4)
    first = windows.argmax(axis=-1)
    n, f, i, j = np.indices(first.shape)
    dz[n, f, 2 * i + first // 2, 2 * j + first % 2] = g
    dz *= want > 0
    np.testing.assert_allclose(tb.grad.data, dz.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tk.grad.data, direct_correlation(x.transpose(1, 0, 2, 3).astype(float),
                               dz.transpose(1, 0, 2, 3), (0, 0, 0, 0), (1, 1)).transpose(1, 0, 2, 3),
                               rtol=1e-3, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 6), cells=st.integers(1, 5), data=st.data())
def test_index_add_by_groups_writes_each_run_into_its_own_part(groups, cells, data):
    """The groups hint (max pooling's routes, plane by plane): zeros with the values at their
    positions, as without the hint; where the hint does not divide the runs, it is ignored."""
    routes = data.draw(st.integers(0, cells))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    index = np.concatenate([g * cells + rng.permutation(cells)[:routes] for g in range(groups)]).astype(np.intp)
    values = rng.standard_normal(index.size).astype(np.float32)
    expected = np.zeros(groups * cells, np.float32)
    expected[index] = values
    np.testing.assert_array_equal(K.index_add(values, (groups * cells,), index, True, groups), expected)
    extra = groups * cells + 1  # one cell more: the parts no longer divide the output
    np.testing.assert_array_equal(K.index_add(values, (extra,), index, True, groups),
                                  np.concatenate([expected, [0]]).astype(np.float32))


def test_unfold_reuses_its_buffer_only_once_the_windows_in_it_are_freed():
    """The im2col buffer of a shape is kept from call to call (a step's largest arrays): a call
    while earlier windows are alive gets fresh memory and leaves them as they were; once they
    are freed, the next call writes into their memory."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((2, 3, 3, 9, 9), dtype=np.float32)
    w1 = K.unfold(x1, (3, 3), (0, 0, 0, 0), (1, 1))
    w2 = K.unfold(x2, (3, 3), (0, 0, 0, 0), (1, 1))
    assert not np.shares_memory(w1, w2)
    np.testing.assert_array_equal(w1, np.lib.stride_tricks.sliding_window_view(x1, (3, 3), axis=(2, 3)))
    np.testing.assert_array_equal(w2, np.lib.stride_tricks.sliding_window_view(x2, (3, 3), axis=(2, 3)))
    address = w2.__array_interface__["data"][0]
    del w1, w2
    w3 = K.unfold(x1, (3, 3), (0, 0, 0, 0), (1, 1))
    assert w3.__array_interface__["data"][0] == address  # the last buffer, free again
    np.testing.assert_array_equal(w3, np.lib.stride_tricks.sliding_window_view(x1, (3, 3), axis=(2, 3)))
    for size in range(4, 4 + 2 * K._KEPT_WINDOWS):  # other shapes: only the most recent few are kept
        K.unfold(rng.random((1, 1, size, size), dtype=np.float32), (3, 3), (0, 0, 0, 0), (1, 1))
    assert len(K._kept_windows) == K._KEPT_WINDOWS
