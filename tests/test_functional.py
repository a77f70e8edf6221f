"""Activations and losses: values against numpy/scipy, gradients, extreme inputs."""
import warnings

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst

EXTREMES = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]])


@settings(max_examples=50, deadline=None)
@given(tst.arrays(min_value=-50, max_value=50))
def test_activations_match_scipy(a):
    np.testing.assert_allclose(F.sigmoid(a).data, scipy.special.expit(a), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(F.tanh(a).data, np.tanh(a))
    np.testing.assert_array_equal(F.relu(a).data, np.maximum(a, 0))


@settings(max_examples=50, deadline=None)
@given(tst.arrays(shape=hnp.array_shapes(min_dims=1, max_dims=3), min_value=-30, max_value=30))
def test_softmax_matches_scipy(a):
    for axis in range(-a.ndim, a.ndim):
        np.testing.assert_allclose(F.softmax(a, axis).data, scipy.special.softmax(a, axis=axis), atol=1e-12)
        np.testing.assert_allclose(F.log_softmax(a, axis).data, scipy.special.log_softmax(a, axis=axis),
                                   atol=1e-10)


def test_cross_entropy_and_mse_values():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    expected = -scipy.special.log_softmax(logits, axis=1)[np.arange(5), labels].mean()
    assert F.cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    pred, target = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert F.mse_loss(pred, target).item() == pytest.approx(((pred - target) ** 2).mean(), rel=1e-12)


def test_loss_gradients():
    rng = np.random.default_rng(1)
    labels = np.array([2, 0, 1])
    gradcheck(lambda z: F.cross_entropy(z, labels), rng.standard_normal((3, 4)), atol=1e-8, rtol=1e-6)
    gradgradcheck(lambda z: F.cross_entropy(z, labels), rng.standard_normal((3, 4)), atol=1e-7, rtol=1e-5)
    gradcheck(F.mse_loss, rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), atol=1e-8, rtol=1e-6)
    gradgradcheck(lambda z: F.softmax(z, axis=0), rng.standard_normal((3, 2)), atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_finite_and_silent(dtype):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for fn in (F.sigmoid, F.softmax, F.log_softmax, lambda z: F.cross_entropy(z, np.array([0, 2, 1])),
                   lambda z: F.sigmoid(z * 0.1)):
            z = Tensor(EXTREMES.astype(dtype), requires_grad=True)
            y = fn(z)
            assert np.all(np.isfinite(y.data)) and y.dtype == dtype
            y.sum().backward()
            assert np.all(np.isfinite(z.grad.data)) and z.grad.dtype == dtype
    sig = F.sigmoid(np.array([-1000.0, 1000.0])).data
    np.testing.assert_array_equal(sig, [0.0, 1.0])
    logp = F.log_softmax(np.array([[-1000.0, 1000.0]])).data
    np.testing.assert_array_equal(logp, [[-2000.0, 0.0]])


# Bad arguments: the error table in tests/test_errors.py.


@settings(max_examples=40, deadline=None)
@given(lead=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4),
       features=st.tuples(st.integers(1, 5), st.integers(1, 5)), with_bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_linear_is_x_times_w_transposed_plus_b(lead, features, with_bias, dtype, seed):
    """F.linear, one op, against numpy's x @ wᵀ + b and the gradients of the three ops it
    replaces (any leading axes, none, or an empty batch)."""
    rng = np.random.default_rng(seed)
    n_in, n_out = features
    x = Tensor(rng.standard_normal(lead + (n_in,)), requires_grad=True, dtype=dtype)
    w = Tensor(rng.standard_normal((n_out, n_in)), requires_grad=True, dtype=dtype)
    b = Tensor(rng.standard_normal(n_out), requires_grad=True, dtype=dtype) if with_bias else None
    y = F.linear(x, w, b)
    want = x.data.astype(float) @ w.data.T.astype(float) + (0 if b is None else b.data.astype(float))
    assert y.shape == lead + (n_out,) and y.dtype == dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, want, rtol=tolerance, atol=tolerance)
    dy = rng.standard_normal(y.shape)
    (y * Tensor(dy, dtype=dtype)).sum().backward()
    rows, dy_rows = x.data.reshape(-1, n_in).astype(float), dy.reshape(-1, n_out)
    np.testing.assert_allclose(x.grad.data, dy @ w.data.astype(float), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(w.grad.data, dy_rows.T @ rows, rtol=tolerance, atol=tolerance)
    if b is not None:
        np.testing.assert_allclose(b.grad.data, dy_rows.sum(axis=0), rtol=tolerance, atol=tolerance)
