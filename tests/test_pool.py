"""maxpool2d: forward against scipy.ndimage, gradient routing, the tie rule, errors."""
import numpy as np
import pytest
import scipy.ndimage
from hypothesis import given, settings

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst


def reference(x, size, stride):
    """Window maxima from scipy.ndimage.maximum_filter (anchored at the window's top-left)."""
    kh, kw = size
    sh, sw = stride or size
    footprint = (1,) * (x.ndim - 2) + (kh, kw)
    origin = [0] * (x.ndim - 2) + [-(kh // 2), -(kw // 2)]
    full = scipy.ndimage.maximum_filter(x, size=footprint, origin=origin, mode="constant", cval=-np.inf)
    out_h, out_w = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
    return full[..., : (out_h - 1) * sh + 1 : sh, : (out_w - 1) * sw + 1 : sw]


@settings(max_examples=100, deadline=None)
@given(tst.pool_args())
def test_forward_matches_scipy(args):
    x, size, stride = args
    np.testing.assert_array_equal(F.maxpool2d(x, size, stride).data, reference(x, size, stride))


@settings(max_examples=40, deadline=None)
@given(tst.pool_args())
def test_gradient_and_second_derivative(args):
    x, size, stride = args
    gradcheck(lambda x: F.maxpool2d(x, size, stride), x, atol=1e-7, rtol=1e-6)
    gradgradcheck(lambda x: F.maxpool2d(x, size, stride) ** 2, x, atol=1e-6, rtol=1e-5)


def test_strategy_values_never_tie():
    @settings(max_examples=30, deadline=None)
    @given(tst.pool_args())
    def check(args):
        x, _, _ = args
        values = np.sort(x.ravel())
        assert values.size < 2 or np.diff(values).min() >= 1e-3

    check()


def test_tie_rule_first_maximum_in_row_major_order():
    x = Tensor([[1.0, 5.0, 5.0, 0.0],
                [5.0, 2.0, 3.0, 5.0]], requires_grad=True)
    y = F.maxpool2d(x, 2)
    np.testing.assert_array_equal(y.data, [[5.0, 5.0]])
    y.backward(np.array([[10.0, 20.0]]))
    np.testing.assert_array_equal(x.grad.data, [[0.0, 10.0, 20.0, 0.0],
                                                [0.0, 0.0, 0.0, 0.0]])


def test_overlapping_windows_sum_at_a_shared_maximum():
    x = Tensor([[0.0, 1.0, 0.0],
                [0.0, 9.0, 0.0],
                [0.0, 2.0, 0.0]], requires_grad=True)
    y = F.maxpool2d(x, 2, stride=1)
    np.testing.assert_array_equal(y.data, [[9.0, 9.0], [9.0, 9.0]])
    y.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.grad.data, [[0, 0, 0], [0, 10.0, 0], [0, 0, 0]])


def test_floor_drops_trailing_rows_and_columns():
    x = Tensor(np.arange(35.0).reshape(5, 7), requires_grad=True)
    y = F.maxpool2d(x, 2)
    assert y.shape == (2, 3)
    np.testing.assert_array_equal(y.data, [[8, 10, 12], [22, 24, 26]])
    y.sum().backward()
    assert x.grad.data[4].sum() == 0 and x.grad.data[:, 6].sum() == 0


def test_batched_and_float32():
    x = Tensor(np.random.default_rng(0).permutation(2 * 3 * 8 * 8).reshape(2, 3, 8, 8).astype(np.float32),
               requires_grad=True)
    y = F.maxpool2d(x, 2)
    assert y.shape == (2, 3, 4, 4) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.data.sum() == 2 * 3 * 4 * 4


# Bad arguments: the error table in tests/test_errors.py.


def test_the_argmax_is_looked_for_only_where_a_backward_can_read_it(monkeypatch):
    from tinygrad_cnn import backend, no_grad

    asked = []
    pool = backend.maxpool2d
    monkeypatch.setattr(backend, "maxpool2d", lambda *args, argmax: asked.append(argmax) or pool(*args, argmax=argmax))
    x = np.random.default_rng(0).permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6).astype(float)
    constant = F.maxpool2d(Tensor(x), 2)
    with no_grad():
        inference = F.maxpool2d(Tensor(x, requires_grad=True), 2)
    leaf = Tensor(x, requires_grad=True)
    trained = F.maxpool2d(leaf, 2)
    assert asked == [False, False, True]
    for y in (constant, inference, trained):
        np.testing.assert_array_equal(y.data, reference(x, (2, 2), None))
    trained.sum().backward()
    assert leaf.grad.data.sum() == trained.numel() == 2 * 3 * 3 * 3


def test_nan_is_the_maximum_as_in_argmax():
    x = Tensor([[1.0, np.nan, 3.0, np.nan]], requires_grad=True)
    y = F.maxpool2d(x, (1, 2))
    assert np.isnan(y.data[0, 0]) and np.isnan(y.data[0, 1])
    y.backward(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0, 2.0]])  # routed to the NaN


@pytest.mark.parametrize("size, stride", [((2, 2), (2, 2)), ((3, 2), (1, 2)), ((2, 2), (1, 1))])
def test_a_batch_last_input_pools_and_routes_as_an_nchw_one(size, stride):
    """A convolution's output may lie batch-last in memory, (C, H, W, N); pooling it gives the
    same values, the same first-maximum routes, the same first and second derivatives, and keeps
    the layout in the fast backend (its output and ∂C/∂x are batch-last too)."""
    from tinygrad_cnn import backend, grad
    from tinygrad_cnn.backend.pool import is_batch_last

    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal((3, 2, 6, 7)) * 2)  # ties: the first maximum must win
    batch_last = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    dy = rng.standard_normal(F.maxpool2d(x, size, stride).shape)
    results = []
    for data in (x, batch_last):
        t = Tensor(data, requires_grad=True)
        y = F.maxpool2d(t, size, stride)
        (dx,) = grad((y * y * Tensor(dy)).sum(), [t], create_graph=True)  # dx = 2·y·dy routed: depends on x
        assert dx.requires_grad
        (ddx,) = grad((dx * dx).sum(), [t])
        results.append((y, dx, ddx))
        assert is_batch_last(t.data) == (data is batch_last)
        if backend.name() == "fast":  # the reference backend leaves layouts to numpy
            assert is_batch_last(y.data) == is_batch_last(dx.data) == (data is batch_last)
    (y, dx, ddx), (y_b, dx_b, ddx_b) = results
    np.testing.assert_array_equal(y.data, reference(x, size, stride))
    np.testing.assert_array_equal(y_b.data, y.data)
    np.testing.assert_array_equal(dx_b.data, dx.data)
    np.testing.assert_array_equal(ddx_b.data, ddx.data)
    assert np.abs(ddx.data).max() > 0
