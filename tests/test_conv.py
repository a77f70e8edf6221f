"""correlate2d / convolve2d: forward against scipy.signal, exact adjoint identities, errors."""
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad
from tinygrad_cnn.testing import gradcheck
from tinygrad_cnn.backend import conv as fast_conv
from tinygrad_cnn.testing import strategies as tst

SCIPY = {"correlate2d": scipy.signal.correlate2d, "convolve2d": scipy.signal.convolve2d}
OURS = {"correlate2d": F.correlate2d, "convolve2d": F.convolve2d}


def reference(name, x, k, mode, stride):
    """scipy.signal on every 2-D slice, summed over channels / stacked over feature maps."""
    s = (stride, stride) if isinstance(stride, int) else stride

    def plane(x2, k2):
        return SCIPY[name](x2, k2, mode=mode)[:: s[0], :: s[1]]

    if k.ndim == 2:
        lead = x.shape[:-2]
        flat = x.reshape((-1,) + x.shape[-2:])
        return np.stack([plane(p, k) for p in flat]).reshape(lead + plane(flat[0], k).shape)
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    kernels = k.reshape((-1,) + k.shape[-3:])
    out = np.stack([np.stack([sum(plane(xi[c], kf[c]) for c in range(k.shape[-3])) for kf in kernels])
                    for xi in flat])
    return out.reshape(lead + ((k.shape[0],) if k.ndim == 4 else ()) + out.shape[-2:])


@settings(max_examples=150, deadline=None)
@given(tst.conv_args())
def test_forward_matches_scipy(args):
    x, k, mode, stride = args
    for name in ("correlate2d", "convolve2d"):
        np.testing.assert_allclose(OURS[name](x, k, mode, stride).data, reference(name, x, k, mode, stride),
                                   rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(tst.conv_args(ranks=(2,), strides=(1,)))
def test_2d_equals_scipy_exactly_shaped(args):
    x, k, mode, _ = args
    x = x[(0,) * (x.ndim - 2)]  # one 2-D plane
    assert F.correlate2d(x, k, mode).shape == scipy.signal.correlate2d(x, k, mode).shape
    assert F.convolve2d(x, k, mode).shape == scipy.signal.convolve2d(x, k, mode).shape


@settings(max_examples=60, deadline=None)
@given(tst.conv_args())
def test_adjoint_identities(args):
    """y is bilinear in (x, k): ⟨y, g⟩ = ⟨x, ∂⟨y,g⟩/∂x⟩ = ⟨k, ∂⟨y,g⟩/∂k⟩, with no finite differences."""
    x, k, mode, stride = args
    for op in (F.correlate2d, F.convolve2d):
        tx, tk = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
        y = op(tx, tk, mode, stride)
        g = np.random.default_rng(0).standard_normal(y.shape)
        dx, dk = grad(y, [tx, tk], grad_outputs=g)
        inner = np.vdot(y.data, g)
        np.testing.assert_allclose(np.vdot(x, dx.data), inner, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.vdot(k, dk.data), inner, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(tst.conv_args(ranks=(2,), modes=("valid",), strides=(1,)))
def test_backward_is_the_articles_rule(args):
    """∂C/∂x = full convolution of ∂C/∂y with k; ∂C/∂k = valid cross-correlation of x with ∂C/∂y."""
    x, k, _, _ = args
    x = x[(0,) * (x.ndim - 2)]  # one 2-D plane
    tx, tk = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
    y = F.correlate2d(tx, tk)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(dy)
    np.testing.assert_allclose(tx.grad.data, scipy.signal.convolve2d(dy, k, mode="full"), atol=1e-12)
    np.testing.assert_allclose(tk.grad.data, scipy.signal.correlate2d(x, dy, mode="valid"), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(tst.conv_args(dtype=np.float64))
def test_gradcheck_drawn_shapes(args):
    x, k, mode, stride = args
    gradcheck(lambda x, k: F.correlate2d(x, k, mode, stride), x, k, atol=1e-7, rtol=1e-6)
    gradcheck(lambda x, k: F.convolve2d(x, k, mode, stride), x, k, atol=1e-7, rtol=1e-6)


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3, 6, 6), dtype=np.float32), requires_grad=True)
    k = Tensor(np.ones((4, 3, 3, 3), dtype=np.float32), requires_grad=True)
    y = F.correlate2d(x, k, "same", 2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and k.grad.dtype == np.float32


def test_float32_matches_float64():
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    y64 = F.correlate2d(x, k, "full").data
    y32 = F.correlate2d(x.astype(np.float32), k.astype(np.float32), "full").data
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)


def test_kernel_larger_than_input_in_full_and_same():
    x, k = np.arange(6.0).reshape(2, 3), np.arange(20.0).reshape(4, 5)
    for mode in ("full", "same"):
        np.testing.assert_allclose(F.correlate2d(x, k, mode).data, scipy.signal.correlate2d(x, k, mode))
        np.testing.assert_allclose(F.convolve2d(x, k, mode).data, scipy.signal.convolve2d(x, k, mode))


# Bad arguments: the error table in tests/test_errors.py.


@settings(max_examples=40, deadline=None)
@given(tst.conv_args(ranks=(4,)), tst.hnp.arrays(np.int64, 4, elements=tst.st.integers(0, 3)))
def test_every_kernel_method_agrees(args, padding):
    """im2col, scatter and FFT compute the same correlation (forced here; 'auto' picks by shape)."""
    x, k, _, stride = args
    x = x.reshape((-1,) + x.shape[-3:])
    padding = tuple(int(p) for p in padding)
    if x.shape[2] + padding[0] + padding[1] < k.shape[2] or x.shape[3] + padding[2] + padding[3] < k.shape[3]:
        return
    expected = fast_conv.correlate2d(x, k, padding, (stride, stride), method="im2col")
    np.testing.assert_allclose(fast_conv.correlate2d(x, k, padding, (stride, stride), method="fft"), expected,
                               rtol=1e-9, atol=1e-9)
    if stride == 1 and max(padding[:2]) < k.shape[2] and max(padding[2:]) < k.shape[3]:
        np.testing.assert_allclose(fast_conv.correlate2d(x, k, padding, (1, 1), method="scatter"), expected,
                                   rtol=1e-9, atol=1e-9)


def test_fft_is_chosen_for_large_kernels_and_matches_scipy():
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((4, 3, 64, 64)), rng.standard_normal((8, 3, 15, 15))
    assert fast_conv.fft_wins(4, 3, 8, 64, 64, 15, 15, 50, 50) and not fast_conv.fft_wins(64, 20, 40, 12, 12, 5, 5, 8, 8)
    assert not fast_conv.fft_wins(20, 64, 40, 12, 12, 8, 8, 5, 5)  # conv2's dC/dk in the MNIST network
    y = F.correlate2d(x, k)
    expected = np.stack([sum(scipy.signal.correlate2d(x[n, c], k[f, c], mode="valid") for c in range(3))
                         for n in range(4) for f in range(8)]).reshape(y.shape)
    np.testing.assert_allclose(y.data, expected, rtol=1e-9, atol=1e-9)
    y32 = F.correlate2d(x.astype(np.float32), k.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.data, expected, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="method must be"):
        fast_conv.correlate2d(x, k, (0, 0, 0, 0), (1, 1), method="winograd")


def test_conv2d_bias_is_added_in_the_primitive_and_summed_in_its_backward():
    """conv2d hands its bias to Correlate2d (one op, not a correlation and an Add): the forward
    equals correlate2d plus the bias per feature map, and ∂C/∂b = Σ ∂C/∂z over batch and positions."""
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((3, 2, 6, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 2, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    z = F.conv2d(x, w, b, stride=2, padding=1)
    assert z._ctx.fn.__name__ == "Correlate2d"  # one node, no Add after it
    expected = F.conv2d(x, w, stride=2, padding=1).data + b.data.reshape(4, 1, 1)
    np.testing.assert_allclose(z.data, expected, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(z.shape)
    z.backward(g)
    np.testing.assert_allclose(b.grad.data, g.sum(axis=(0, 2, 3)), rtol=1e-12)
    # a bias that does not require grad gets none, and the others still do
    frozen = Tensor(b.data)
    x.grad = w.grad = None
    F.conv2d(x, w, frozen).sum().backward()
    assert frozen.grad is None and x.grad is not None and w.grad is not None
