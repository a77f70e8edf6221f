"""The fast backend against the reference backend, its specification: every function of the
backend's list on drawn shapes, strides, paddings, memory layouts and thread counts; and how a
backend is chosen."""
import contextlib
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import backend
from tinygrad_cnn.backend import elementwise, fast, linalg, parallel, reference

LAYOUTS = ("c", "batch_last", "strided", "fortran")


def in_layout(a, layout):
    """The same values as `a`, laid out in memory another way."""
    if layout == "batch_last" and a.ndim == 4:  # (C, H, W, N) memory, as a convolution's output
        return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    if layout == "strided" and a.ndim:  # every other element of a larger array
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if layout == "fortran":
        return np.asfortranarray(a)
    return a


@contextlib.contextmanager
def threads(count):
    """The fast kernels on `count` threads, cutting even small arrays into parts."""
    modules = (parallel, elementwise, linalg)
    before = parallel.get_num_threads(), [m.MIN_PARALLEL_BYTES for m in modules]
    backend.set_num_threads(count)
    for module in modules:
        module.MIN_PARALLEL_BYTES = 0
    try:
        yield
    finally:
        backend.set_num_threads(before[0])
        for module, value in zip(modules, before[1]):
            module.MIN_PARALLEL_BYTES = value


def same(got, want, exact=False):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ---- the list and the choice ----------------------------------------------------------------------
def test_both_backends_provide_every_function_and_the_package_serves_the_chosen_one():
    chosen = {"fast": fast, "reference": reference}[backend.name()]
    for name in backend.__all__:
        assert callable(getattr(fast, name)) and callable(getattr(reference, name)), name
        assert getattr(backend, name) is getattr(chosen, name), name
    assert set(fast.__all__) == set(backend.__all__)


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.parametrize("name", ["fast", "reference"])
def test_the_environment_variable_chooses_the_backend_of_the_whole_process(name):
    code = ("import numpy as np, tinygrad_cnn as tc\n"
            "from tinygrad_cnn import backend, ops\n"
            "x = tc.Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)\n"
            "tc.functional.maxpool2d(tc.functional.correlate2d(x, np.ones((2, 2))), 2).sum().backward()\n"
            "print(backend.name(), backend.conv2d.__module__, x.grad.data.sum())")
    run = _python(code, TINYGRAD_CNN_BACKEND=name)
    assert run.returncode == 0, run.stderr
    chosen, module, total = run.stdout.split()
    assert chosen == name and module.startswith(f"tinygrad_cnn.backend.{'conv' if name == 'fast' else 'reference'}")
    assert float(total) == 4.0  # the one window's maximum routes 1 to each of its 4 inputs' taps


def test_an_unknown_backend_is_refused_with_the_choices():
    run = _python("import tinygrad_cnn", TINYGRAD_CNN_BACKEND="cuda")
    assert run.returncode != 0
    assert "TINYGRAD_CNN_BACKEND must be one of ('fast', 'reference'), got 'cuda'" in run.stderr


# ---- the functions, fast against reference ---------------------------------------------------------
@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)) * groups, draw(st.integers(1, 3)) * groups
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3])))
    span_h, span_w = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1  # the kernel's extent
    padding = tuple(draw(st.integers(-1, 3)) for _ in range(4))
    # large enough for the kernel to fit once padded, and for a crop (negative padding) to leave a row
    height = draw(st.integers(1, 8)) + max(0, span_h - padding[0] - padding[1]) + max(0, -padding[0]) + max(0, -padding[1])
    width = draw(st.integers(1, 8)) + max(0, span_w - padding[2] - padding[3]) + max(0, -padding[2]) + max(0, -padding[3])
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, c, height, width))
    k = rng.standard_normal((f, c // groups, kh, kw))
    b = rng.standard_normal(f) if draw(st.booleans()) else None
    return x, k, b, padding, stride, groups, dilation, rng


def spread(k, dilation):
    """k with dilation − 1 zeros between its taps: the kernel a dilated correlation equals."""
    (dh, dw), (f, c, kh, kw) = dilation, k.shape
    out = np.zeros((f, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=k.dtype)
    out[:, :, ::dh, ::dw] = k
    return out


@settings(max_examples=80, deadline=None)
@given(conv_cases(), st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS), st.sampled_from([1, 2, 3]))
def test_convolution_and_its_input_and_weight_gradients_grouped_dilated_or_not(case, x_layout, dy_layout, count):
    x, k, b, padding, stride, groups, dilation, rng = case
    want = reference.conv2d(x, k, b, padding, stride, groups, dilation)
    dy = rng.standard_normal(want.shape)
    want_dk = reference.conv2d_grad_k(x, dy, k.shape[2:], padding, stride, groups, dilation)
    want_dx = reference.conv2d_grad_x(dy, k, x.shape, padding, stride, groups, dilation)
    # a dilated correlation is the correlation with the kernel spread with zeros
    same(want, reference.conv2d(x, spread(k, dilation), b, padding, stride, groups))
    # the reference's gradients are the adjoints of its forward: <conv2d(x, k), dy> = <x, ∂C/∂x> = <k, ∂C/∂k>
    linear = np.vdot(want, dy) - (0 if b is None else np.vdot(b, dy.sum(axis=(0, 2, 3))))
    np.testing.assert_allclose(linear, np.vdot(x, want_dx), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(linear, np.vdot(k, want_dk), rtol=1e-9, atol=1e-9)
    with threads(count):
        same(fast.conv2d(in_layout(x, x_layout), k, b, padding, stride, groups, dilation), want)
        same(fast.conv2d_grad_k(in_layout(x, x_layout), in_layout(dy, dy_layout), k.shape[2:], padding, stride,
                                groups, dilation), want_dk)
        same(fast.conv2d_grad_x(in_layout(dy, dy_layout), k, x.shape, padding, stride, groups, dilation), want_dx)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(5, 3), (4, 2, 6), (3, 4, 5, 6), (1, 2, 3, 3), (0, 3), (0, 2, 3, 3)]), st.sampled_from(LAYOUTS),
       st.sampled_from(LAYOUTS), st.sampled_from([1, 2, 3]), st.sampled_from([1, 7, 64, 1 << 16]),
       st.sampled_from([0.0, 1.0, 1e3]), st.sampled_from(["batch", "sample", "last"]), st.integers(0, 2**16))
def test_batch_norm_and_its_two_gradients(shape, x_layout, dy_layout, count, block, offset, over, seed):
    """The blocked kernels (any block size, so any number of blocks and a last one cut short) on
    any layout and thread count, with channel means far from zero (the sums are of x − μ, not of
    x), and on an empty batch (NaN statistics, as numpy's); the gradients from the forward's
    statistics or from x alone; ∂C/∂x and ∂C/∂w of one dy share their sums, and a new dy gets
    its own. The statistics over the batch and positions (batch norm), over each sample (layer
    norm) or over the last axis (group norm's groups)."""
    from tinygrad_cnn.backend import norm
    rng = np.random.default_rng(seed)
    axes = {"batch": (0,) + tuple(range(2, len(shape))), "sample": tuple(range(1, len(shape))),
            "last": (len(shape) - 1,)}[over]
    stat_shape = tuple(1 if axis in axes else n for axis, n in enumerate(shape))
    x = rng.standard_normal(shape) + offset * rng.standard_normal(stat_shape)
    w, b = rng.standard_normal(stat_shape), rng.standard_normal(stat_shape)
    dy, dy2 = rng.standard_normal(shape), rng.standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty batch's mean
        want, want_mean, want_var, _ = reference.batch_norm(x, w, b, axes, 1e-5)
        np.testing.assert_allclose(want_mean, x.mean(axis=axes, keepdims=True), rtol=1e-12)
        np.testing.assert_allclose(want_var, x.var(axis=axes, keepdims=True), rtol=1e-12)
    with threads(count), pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        patch.setattr(norm, "BLOCK", block)
        xs, dys = in_layout(x, x_layout), in_layout(dy, dy_layout)
        y, mean, var, saved = fast.batch_norm(xs, w, b, axes, 1e-5)
        same(y, want), same(mean, want_mean), same(var, want_var)
        for stats in (saved, None):
            same(fast.batch_norm_backward(dys, xs, w, axes, 1e-5, stats),
                 reference.batch_norm_backward(dy, x, w, axes, 1e-5))
            same(fast.batch_norm_weight_grad(dys, xs, axes, 1e-5, stats),
                 reference.batch_norm_weight_grad(dy, x, axes, 1e-5))
        same(fast.batch_norm_weight_grad(dy2, xs, axes, 1e-5, saved), reference.batch_norm_weight_grad(dy2, x, axes, 1e-5))
        same(fast.batch_norm_backward(dy2, xs, w, axes, 1e-5, saved), reference.batch_norm_backward(dy2, x, w, axes, 1e-5))


@st.composite
def pool_cases(draw):
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.integers(size[0], 8)), draw(st.integers(size[1], 8)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # −∞ cells of padding, as many as leave each window a cell of x
    padding = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in size)
    x = rng.integers(-2, 3, shape).astype(np.float64)  # few values: ties, where the first maximum wins
    if draw(st.booleans()):  # windows of −∞ alone: the first cell inside x is their maximum
        x[x == -2] = -np.inf
    if draw(st.booleans()):
        x.flat[rng.integers(0, x.size)] = np.nan  # a NaN is its window's maximum, as np.argmax says
    return x, size, stride, padding, rng


@settings(max_examples=60, deadline=None)
@given(pool_cases(), st.sampled_from(LAYOUTS), st.sampled_from([1, 2, 3]))
def test_max_pooling_its_routing_and_its_gather(case, layout, count):
    x, size, stride, padding, rng = case
    want, argmax = reference.maxpool2d(x, size, stride, padding)
    dy, g = rng.standard_normal(want.shape), rng.standard_normal(x.shape)
    with threads(count):
        got, fast_argmax = fast.maxpool2d(in_layout(x, layout), size, stride, padding)
        same(got, want, exact=True)
        for backend in (fast, reference):  # the maxima alone, where no backward needs the argmax
            maxima, none = backend.maxpool2d(in_layout(x, layout), size, stride, padding, argmax=False)
            assert none is None
            same(maxima, want, exact=True)
        same(fast.maxpool2d_backward(in_layout(dy, layout), fast_argmax, x.shape),
             reference.maxpool2d_backward(dy, argmax, x.shape))
        same(fast.maxpool2d_gather(in_layout(g, layout), fast_argmax), reference.maxpool2d_gather(g, argmax),
             exact=True)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.sampled_from([(), (1,), (3,), (2, 1)]),
       st.booleans(), st.sampled_from(LAYOUTS), st.sampled_from([1, 2, 3]), st.integers(0, 2**16))
def test_products(m, k, n, batch, bias, layout, count, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(batch + (m, k)), rng.standard_normal((k, n))
    w, bias = rng.standard_normal((n, k)), rng.standard_normal(n) if bias else None
    with threads(count):
        same(fast.matmul(in_layout(a, layout), b), reference.matmul(a, b))
        same(fast.linear(in_layout(a, layout), w, bias), reference.linear(a, w, bias))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(2, 3, 4, 5), (64, 9), (3, 1, 5), (7,)]), st.sampled_from(LAYOUTS),
       st.sampled_from(["same", "row", "scalar"]), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([1, 2, 3]), st.integers(0, 2**16))
def test_elementwise_functions(shape, layout, second, dtype, count, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 4).astype(dtype)
    a.flat[0] = 0  # the kink of ReLU: its gradient there is 0
    b = {"same": (rng.standard_normal(shape)).astype(dtype), "row": rng.standard_normal(shape[-1:]).astype(dtype),
         "scalar": np.asarray(0.5, dtype)}[second]
    s = reference.sigmoid(a)
    with threads(count):
        for name in ("add", "subtract", "multiply"):
            same(getattr(fast, name)(in_layout(a, layout), b), getattr(reference, name)(a, b))
        same(fast.relu(in_layout(a, layout)), reference.relu(a), exact=True)
        same(fast.relu_backward(b, in_layout(a, layout)), reference.relu_backward(b, a), exact=True)
        tolerance = dict(rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)
        np.testing.assert_allclose(fast.sigmoid(in_layout(a, layout)), s, **tolerance)
        assert fast.sigmoid(a).dtype == s.dtype
        np.testing.assert_allclose(fast.sigmoid_backward(b, in_layout(s, layout)), reference.sigmoid_backward(b, s),
                                   **tolerance)
        np.testing.assert_allclose(fast.silu(in_layout(a, layout)), reference.silu(a), **tolerance)
        assert fast.silu(a).dtype == reference.silu(a).dtype
        np.testing.assert_allclose(fast.silu_backward(b, in_layout(a, layout)), reference.silu_backward(b, a),
                                   **tolerance)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(2, 3, 4, 5), (64, 9), (3, 1, 5), (7,), ()]), st.sampled_from(LAYOUTS),
       st.sampled_from(["same", "row", "scalar"]), st.sampled_from(["condition", "a", "b"]),
       st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.bool_]), st.sampled_from([1, 2, 3]),
       st.integers(0, 2**16))
def test_where_picks_each_value_exactly(shape, layout, narrow, which, dtype, count, seed):
    rng = np.random.default_rng(seed)
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.25, 1e-30]) if np.dtype(dtype).kind == "f" else \
        np.arange(-3, 4)
    arrays = {"condition": rng.random(shape) < 0.5, "a": rng.choice(values, shape).astype(dtype),
              "b": rng.choice(values, shape).astype(dtype)}
    # one of the three broadcast along the first axis, or a 0-d array
    arrays[which] = {"same": arrays[which], "row": arrays[which][..., :1] if shape else arrays[which],
                     "scalar": arrays[which].reshape(-1)[:1].reshape(())}[narrow]
    want = np.where(arrays["condition"], arrays["a"], arrays["b"])
    with threads(count):
        got = fast.where(*(in_layout(array, layout) if array.shape == shape and shape else array
                           for array in arrays.values()))
    assert got.dtype == want.dtype and got.shape == want.shape
    # bit for bit: NaN, −0 and ∞ included
    assert np.array_equal(np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(want).view(np.uint8))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.booleans(), st.integers(0, 2**16))
def test_index_add_with_repeated_positions_and_slices(size, count, use_slice, seed):
    rng = np.random.default_rng(seed)
    if use_slice:
        index = (slice(None), slice(None, None, 2))
        v = rng.standard_normal((3, (size + 1) // 2))
        shape = (3, size)
    else:
        index = rng.integers(0, size, count)
        v = rng.standard_normal(count)
        shape = (size,)
    same(fast.index_add(v, shape, index), reference.index_add(v, shape, index))
