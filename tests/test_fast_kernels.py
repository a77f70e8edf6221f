"""The fast backend's array kernels on their own (tinygrad_cnn.backend's modules, imported
directly: these run the same whichever backend TINYGRAD_CNN_BACKEND selects): im2col windows in
every memory order, their reuse for ∂C/∂k, blocked transposes, max pooling's argmax, and the
opt-in that makes malloc keep freed memory for the next step. The few tests that go through
Tensor and assert the fast backend's layouts skip under the reference backend."""
import itertools
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn
from tinygrad_cnn import Tensor, backend
from tinygrad_cnn.backend.conv import correlate2d
from tinygrad_cnn.backend.elementwise import batch_to_back, transpose_2d
from tinygrad_cnn.backend.im2col import correlate_windows, pad2d, unfold, window_view, windows_of_transposed
from tinygrad_cnn.backend.pool import index_add, is_batch_last, maxpool2d

from helpers import correlation_case

REPO = Path(__file__).resolve().parents[1]
# malloc's settings and page-fault counts are glibc's (mallopt, M_MMAP_THRESHOLD) and Linux's.
ON_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not ON_GLIBC, reason="glibc's malloc on Linux only")
fast_only = pytest.mark.skipif(backend.name() != "fast", reason="asserts the fast backend's layouts")


def direct_correlation(x, k, padding, stride):
    """The defining sum, one kernel tap at a time (an oracle independent of im2col)."""
    xp = pad2d(x, padding)
    kh, kw = k.shape[2:]
    out_h = (xp.shape[2] - kh) // stride[0] + 1
    out_w = (xp.shape[3] - kw) // stride[1] + 1
    y = np.zeros((x.shape[0], k.shape[0], out_h, out_w))
    for p, q in itertools.product(range(kh), range(kw)):
        window = xp[:, :, p : p + (out_h - 1) * stride[0] + 1 : stride[0], q : q + (out_w - 1) * stride[1] + 1 : stride[1]]
        y += np.einsum("nchw,fc->nfhw", window, k[:, :, p, q])
    return y


@settings(max_examples=80, deadline=None)
@given(correlation_case(), st.permutations(range(6)))
def test_windows_in_any_memory_order_give_the_correlation(case, order):
    """correlate_windows reads W's memory order from its strides; every one of the 720 orders
    (unfold's own, the reused ones, and any other, which it copies) gives the same numbers."""
    x, k, padding, stride = case
    windows = unfold(x, k.shape[2:], padding, stride)
    assert windows.shape[:2] == x.shape[:2] and windows.shape[4:] == k.shape[2:]
    relaid = np.ascontiguousarray(windows.transpose(order)).transpose(np.argsort(order))
    np.testing.assert_array_equal(relaid, windows)
    y = correlate_windows(relaid, k)
    np.testing.assert_allclose(y, direct_correlation(x, k, padding, stride), rtol=1e-10, atol=1e-10)
    bias = np.arange(k.shape[0]) - 0.5  # added as the product lands: the same as adding it after
    np.testing.assert_array_equal(correlate_windows(relaid, k, bias), y + bias.reshape(1, -1, 1, 1))


@settings(max_examples=60, deadline=None)
@given(correlation_case(stride_one=True))
def test_forward_windows_serve_the_weight_gradient(case):
    """∂C/∂k = xᵀ ⋆ dyᵀ computed from the forward's windows equals gathering xᵀ afresh."""
    x, k, padding, stride = case
    windows = unfold(x, k.shape[2:], padding, stride)
    dy = np.random.default_rng(0).standard_normal(correlate_windows(windows, k).shape)
    x_t, dy_t = x.transpose(1, 0, 2, 3), dy.transpose(1, 0, 2, 3)
    reused = correlate_windows(windows_of_transposed(windows), dy_t)
    np.testing.assert_allclose(reused, direct_correlation(x_t, dy_t, padding, (1, 1)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(64, 20, 12, 12, 40, 5, 5), (64, 1, 28, 28, 20, 5, 5), (20, 64, 12, 12, 40, 8, 8)])
def test_mnist_network_shapes_take_the_copy_free_products(shape):
    """For the shapes of the MNIST network (both convolutions and ∂C/∂k), unfold's layouts, and
    the reused ones, need no second copy of W: the products allocate less than W's size."""
    import tracemalloc

    n, c, height, width, f, kh, kw = shape
    x = np.random.default_rng(1).standard_normal((n, c, height, width)).astype(np.float32)
    k = np.random.default_rng(2).standard_normal((f, c, kh, kw)).astype(np.float32)
    windows = unfold(x, (kh, kw), (0, 0, 0, 0), (1, 1))
    dy = np.ones((n, f, height - kh + 1, width - kw + 1), dtype=np.float32)
    for args in ((windows, k), (windows_of_transposed(windows), dy.transpose(1, 0, 2, 3))):
        tracemalloc.start()
        try:
            correlate_windows(*args)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < windows.nbytes, (peak, windows.nbytes)


@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (200, 3), (130, 129), (64, 64), (0, 5), (700, 130), (130, 700),
                                   (2000, 70), (70, 2000)])
def test_blocked_transpose_is_a_transpose(shape):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = transpose_2d(a)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a.T)
    x = np.arange(5 * 3 * 4 * 7, dtype=np.float32).reshape(5, 3, 4, 7)
    np.testing.assert_array_equal(batch_to_back(x), np.moveaxis(x, 0, -1))
    np.testing.assert_array_equal(batch_to_back(x[:, 1:, ::2]), np.moveaxis(x[:, 1:, ::2], 0, -1))


def test_unfold_pads_rows_a_multiple_of_4k_apart_and_stays_exact():
    """conv2 at batch 64: rows of 8·8·64 floats (16 KiB) get 64 bytes of padding; the windows
    still hold exactly x's values, and the product is the correlation."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3, 12, 12)).astype(np.float32)
    k = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    windows = unfold(x, (5, 5), (0, 0, 0, 0), (1, 1))
    assert windows.base.shape[1] == 8 * 8 * 64 + 16  # the padded rows of the buffer
    np.testing.assert_array_equal(windows, np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3)))
    np.testing.assert_allclose(correlate_windows(windows, k), direct_correlation(x.astype(float), k.astype(float),
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
    got = window_view(x, (kh, kw), stride, memory)
    want = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable
    assert got.size == 0 or np.shares_memory(got, x)


def test_ops_give_underflow_to_zero_under_any_numpy_error_settings():
    """Underflow to zero is the right answer of every op, forward and backward, even where the
    caller's np.errstate raises on it (Function.apply ignores underflow while the op runs, on the
    kernels' helper threads too); the caller's settings are as they were after the op, and
    overflow is still reported."""
    before = tinygrad_cnn.get_num_threads()
    tinygrad_cnn.set_num_threads(2)  # the fast backend cuts a large elementwise op into parts on two threads
    try:
        tiny = np.full(2 << 20, 1e-30, np.float32)  # 8 MiB: cut into parts
        tiny[-1] = 2.0
        x = Tensor(tiny, requires_grad=True)
        with np.errstate(all="raise"):
            settings_before = np.geterr()
            cube = x * x * x  # 1e-90 underflows to 0 in float32
            expected = np.zeros_like(tiny)
            expected[-1] = 8.0
            np.testing.assert_array_equal(cube.data, expected)
            np.testing.assert_array_equal(Tensor(np.array([-200.0], np.float32)).exp().data, [0.0])
            cube.sum().backward()  # 3x² = 3e-60: underflows in the backward's ops too
            expected[-1] = 12.0
            np.testing.assert_array_equal(x.grad.data, expected)
            assert np.geterr() == settings_before
        seen = []

        def callback(kind, flag):
            seen.append(kind)

        with np.errstate(under="call", call=callback):
            np.testing.assert_array_equal((x * x * x).data[:2], [0.0, 0.0])
            assert np.geterrcall() is callback and np.geterr()["under"] == "call"  # the caller's, kept
            assert not seen  # the op's underflow was ignored, not handed to the caller's callback
            np.float32(1e-30) * np.float32(1e-30)  # the caller's own underflow still reaches it
            assert seen == ["underflow"]
        with np.errstate(all="raise"), pytest.raises(FloatingPointError):
            (Tensor(np.array([1e30], dtype=np.float32)) * 1e30).data  # overflow is still reported
    finally:
        tinygrad_cnn.set_num_threads(before)


FAULTS_SCRIPT = """
import resource, sys, numpy as np
import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.models import nielsen_cnn
if sys.argv[1] == "keep":
    assert tinygrad_cnn.backend.keep_freed_memory()  # glibc: the settings took
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


def glibc_defaults_env(**extra):
    """This process's environment without malloc settings of its own (glibc then runs on its
    defaults), plus `extra`."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    return dict(env, **extra)


@pytest.mark.glibc
@needs_glibc
def test_freed_memory_is_kept_for_the_next_step_once_asked():
    """A training step frees and allocates the same large arrays every time; with malloc
    keeping freed memory (`keep_freed_memory`, called by the program: the library never does)
    they are not faulted in again each step. glibc's own thresholds adapt to what was freed
    before, so without the setting a step faulted once or thousands of times from run to run;
    the comparison run fixes glibc's default threshold (MALLOC_MMAP_THRESHOLD_, which turns the
    adapting off) so that it shows what the setting saves."""

    def faults_per_step(keep: str) -> float:
        env = glibc_defaults_env(OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_=str(128 << 10))  # glibc's default, fixed
        run = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, keep], env=env, cwd=REPO, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return float(run.stdout.strip())

    kept, returned = faults_per_step("keep"), faults_per_step("leave")
    assert kept * 5 < returned, (kept, returned)


RESIDENT_SCRIPT = """
import os, sys
import numpy as np
if sys.argv[1] != "plain":
    import tinygrad_cnn
if sys.argv[1] == "keep":
    assert tinygrad_cnn.backend.keep_freed_memory()
page = os.sysconf("SC_PAGE_SIZE")
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * page
before = resident()
a = np.ones(48 << 20, dtype=np.uint8)  # every page written: resident
held = resident()
del a
print(held - before, resident() - before)
"""


@pytest.mark.glibc
@needs_glibc
def test_importing_the_library_leaves_malloc_alone():
    """Importing tinygrad_cnn changes nothing in malloc: a 48 MB array, above glibc's largest
    adaptive mmap threshold (32 MiB), goes back to the system when freed, as in a process that
    never imported it. The run that calls `keep_freed_memory` shows the check can see the
    difference: there the freed array stays resident."""

    def resident_growth(mode: str) -> tuple[int, int]:
        run = subprocess.run([sys.executable, "-c", RESIDENT_SCRIPT, mode], env=glibc_defaults_env(), cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        held, after_free = map(int, run.stdout.split())
        return held, after_free

    mib = 1 << 20
    for mode in ("plain", "import"):  # freed: handed back to the system
        held, after_free = resident_growth(mode)
        assert held >= 40 * mib and after_free < 8 * mib, (mode, held, after_free)
    held, after_free = resident_growth("keep")  # freed: kept by malloc for the next array
    assert held >= 40 * mib and after_free >= 40 * mib, ("keep", held, after_free)


@pytest.mark.parametrize("method", ["im2col", "scatter", "fft"])
@pytest.mark.parametrize("empty", ["batch", "feature maps", "channels"])
def test_an_empty_axis_gives_an_empty_or_zero_result(method, empty):
    n, f, c = 0 if empty == "batch" else 2, 0 if empty == "feature maps" else 2, 0 if empty == "channels" else 3
    x, k = np.ones((n, c, 6, 6), dtype=np.float32), np.ones((f, c, 3, 3), dtype=np.float32)
    padding = (2, 2, 2, 2) if method == "scatter" else (0, 0, 0, 0)
    y = correlate2d(x, k, padding, (1, 1), method=method)
    assert y.shape == ((n, f, 8, 8) if method == "scatter" else (n, f, 4, 4)) and y.dtype == np.float32
    assert not y.any()  # no channel to sum over: zeros


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 2), (17, 17)])  # 17·17 = 289 taps: an index wider than a byte
@pytest.mark.parametrize("values", ["ties", "increasing", "decreasing"])  # first, last and every tap win
def test_max_pooling_finds_the_first_maximum_of_each_window(size, values):
    rng = np.random.default_rng(2)
    x = {"ties": np.round(rng.standard_normal((2, 3, 19, 20)) * 2),
         "increasing": np.arange(2 * 3 * 19 * 20).reshape(2, 3, 19, 20),
         "decreasing": -np.arange(2 * 3 * 19 * 20).reshape(2, 3, 19, 20)}[values].astype(np.float32)
    y, argmax = maxpool2d(x, size, (1, 2))
    index = argmax.flat  # flat indices into x.ravel(), in y's shape (x is NCHW, not batch-last)
    assert not argmax.batch_last and index.shape == y.shape and argmax.planes == 2 * 3
    assert argmax.disjoint == (size[0] <= 1 and size[1] <= 2)  # no cell in two windows: stride (1, 2)
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=(2, 3))[:, :, :, ::2]
    flat = windows.reshape(windows.shape[:4] + (-1,))
    first = flat.argmax(axis=-1)
    np.testing.assert_array_equal(y, flat.max(axis=-1))
    rows, cols = np.divmod(first, size[1])
    i, j = np.meshgrid(np.arange(y.shape[2]), np.arange(y.shape[3]) * 2, indexing="ij")
    np.testing.assert_array_equal(np.unravel_index(index, x.shape)[2:], (i + rows, j + cols))


@fast_only
def test_conv2_of_the_mnist_network_stays_batch_last_through_relu_and_pooling():
    """conv2's product comes out batch-last, (F, H', W', N) in memory; the bias, ReLU and max
    pooling keep that layout (no transposing copy) and the backward's gradients follow it,
    with the values of the plain NCHW computation."""
    import tinygrad_cnn.functional as F

    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 20, 12, 12)).astype(np.float32)
    k = rng.standard_normal((40, 20, 5, 5)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    tx, tk, tb = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True), Tensor(b, requires_grad=True)
    z = F.conv2d(tx, tk, tb)
    a = F.relu(z)
    p = F.maxpool2d(a, 2)
    assert is_batch_last(z.data) and is_batch_last(a.data) and is_batch_last(p.data)
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
    np.testing.assert_array_equal(index_add(values, (groups * cells,), index, True, groups), expected)
    extra = groups * cells + 1  # one cell more: the parts no longer divide the output
    np.testing.assert_array_equal(index_add(values, (extra,), index, True, groups),
                                  np.concatenate([expected, [0]]).astype(np.float32))


SELECTED_SCRIPT = """
import importlib, pkgutil
import numpy as np
from tinygrad_cnn import Tensor, backend
selected = {name: getattr(backend, name) for name in backend.__all__}
for module in pkgutil.iter_modules(backend.__path__):  # every kernel module, as these tests import them
    importlib.import_module(f"tinygrad_cnn.backend.{module.name}")
changed = [name for name in backend.__all__ if getattr(backend, name) is not selected[name]]
assert not changed, changed
print(backend.name(), float((Tensor(np.ones((2, 3))) @ Tensor(np.ones((3, 2)))).sum().data))
"""


def test_importing_the_fast_kernels_leaves_the_selected_backend_in_place():
    """The fast kernels can be imported (as these tests do) in a process that computes with the
    reference backend: importing a submodule binds its name in the package, so no submodule may
    share a name with a function of the backend's list, which the ops call."""
    run = subprocess.run([sys.executable, "-c", SELECTED_SCRIPT], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, TINYGRAD_CNN_BACKEND="reference"))
    assert run.returncode == 0 and run.stdout.split() == ["reference", "12.0"], run.stdout + run.stderr
