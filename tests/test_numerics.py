"""Numerics: extreme values, floating-point errors, float32 against float64, inputs and
gradients left untouched, and detect_anomaly.

Documented tolerance: every primitive's float32 output and float32 gradients agree with float64
to FLOAT32_TOLERANCE × max(1, largest |float64 value|) -- about 80 float32 ulps; the worst
measured is below 2e-7. The MNIST network's loss and gradients agree to NETWORK_TOLERANCE, as
their sums run over thousands of terms.
"""
import threading
import warnings

import numpy as np
import pytest
from helpers import GRAD_CASES

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, detect_anomaly, grad, is_anomaly_enabled, ops, optim
from tinygrad_cnn.models import nielsen_cnn

FLOAT32_TOLERANCE = 1e-5
NETWORK_TOLERANCE = 1e-4
CASES = [pytest.param(fn, args, id=f"{op.__name__}-{i}")
         for op, cases in GRAD_CASES.items() for i, (fn, *args) in enumerate(cases)]


@pytest.fixture
def strict():
    """numpy's floating-point reports as errors, and every warning as an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def close_enough(got, want, tolerance):
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    return float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0)) <= tolerance * scale


# ---- extreme logits -------------------------------------------------------------------------------
LOGITS = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0],
                   [1000.0, -1000.0, 999.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, fn, expected", [
    ("sigmoid", F.sigmoid, lambda z: np.where(z > 0, 1.0, np.where(z < 0, 0.0, 0.5))),
    ("softmax", F.softmax, lambda z: np.array([[0, 0, 1], [0.5, 0.5, 0], [1 / 3] * 3, [1 / (1 + np.exp(-1.0)), 0,
                                                                                   1 / (1 + np.e)]])),
    ("log_softmax", F.log_softmax, lambda z: np.array([[-2000, -1000, 0], [-np.log(2)] * 2 + [-2000 - np.log(2)],
                                                       [-np.log(3)] * 3,
                                                       [-np.log1p(np.exp(-1.0)), -2000 - np.log1p(np.exp(-1.0)),
                                                        -1 - np.log1p(np.exp(-1.0))]])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_extreme_logits_are_finite_exact_and_silent(strict, dtype, name, fn, expected):
    z = Tensor(LOGITS.astype(dtype), requires_grad=True)
    y = fn(z)
    assert y.dtype == dtype and np.all(np.isfinite(y.data))
    np.testing.assert_allclose(y.data, expected(LOGITS), rtol=1e-6, atol=1e-7)
    y.backward(np.ones(y.shape, dtype))
    assert z.grad.dtype == dtype and np.all(np.isfinite(z.grad.data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_of_extreme_logits(strict, dtype):
    z = Tensor(LOGITS.astype(dtype), requires_grad=True)
    labels = np.array([2, 0, 1, 1])
    loss = F.cross_entropy(z, labels)
    # −log p: 0, ln 2, ln 3 and 2000 + ln(1 + e⁻¹): large but finite, as it must be
    expected = (0 + np.log(2) + np.log(3) + 2000 + np.log1p(np.exp(-1.0))) / 4
    assert loss.dtype == dtype and loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    softmax = F.softmax(LOGITS).data
    np.testing.assert_allclose(z.grad.data, (softmax - np.eye(3)[labels]) / 4, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_a_training_step_of_the_mnist_network_raises_no_floating_point_error(strict, activation):
    model = nielsen_cnn(activation, dropout=0.5, seed=0)
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
                optim.Adam(model.parameters(), lr=1e-3)):
        rng = np.random.default_rng(1)
        for scale in (1.0, 100.0):  # images in [0, 1], and saturating ones
            x = Tensor(rng.random((8, 1, 28, 28), dtype=np.float32) * scale)
            loss = F.cross_entropy(model(x), rng.integers(0, 10, 8))
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert np.isfinite(loss.item())
            assert all(np.all(np.isfinite(p.data)) for p in model.parameters())


# ---- float32 against float64 ------------------------------------------------------------------
def test_the_float32_cases_cover_every_primitive():
    assert set(GRAD_CASES) == set(ops.PRIMITIVES), set(ops.PRIMITIVES) ^ set(GRAD_CASES)


def _run(fn, args, dtype, seed=0):
    inputs = [Tensor(a.astype(dtype), requires_grad=True) for a in args]
    out = fn(*inputs)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    grads = grad(out, inputs, grad_outputs=Tensor(v, dtype=out.dtype), allow_unused=True)
    return out, [g.data for g in grads]


@pytest.mark.parametrize("fn, args", CASES)
def test_float32_matches_float64(fn, args):
    y64, g64 = _run(fn, args, np.float64)
    y32, g32 = _run(fn, args, np.float32)
    if y64.dtype == np.float64 and fn(*[Tensor(a.astype(np.float32)) for a in args]).dtype == np.float32:
        assert y32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32)  # no silent float64
    assert close_enough(y32.data, y64.data, FLOAT32_TOLERANCE)
    for got, want in zip(g32, g64):
        assert close_enough(got, want, FLOAT32_TOLERANCE)


def test_the_mnist_network_in_float32_matches_float64():
    rng = np.random.default_rng(3)
    x, labels = rng.random((4, 1, 28, 28)), rng.integers(0, 10, 4)
    results = {}
    for dtype in (np.float32, np.float64):
        model = nielsen_cnn("sigmoid", seed=5)
        if dtype == np.float64:
            for p in model.parameters():
                p.data = p.data.astype(np.float64)
        loss = F.cross_entropy(model(Tensor(x, dtype=dtype)), labels)
        loss.backward()
        results[dtype] = (loss.data, [p.grad.data for p in model.parameters()])
        assert loss.dtype == dtype and all(p.grad.dtype == dtype for p in model.parameters())
    (l32, g32), (l64, g64) = results[np.float32], results[np.float64]
    assert close_enough(l32, l64, NETWORK_TOLERANCE)
    for got, want in zip(g32, g64):
        assert close_enough(got, want, NETWORK_TOLERANCE)


# ---- nothing is modified in place, nothing aliased -----------------------------------------
@pytest.mark.parametrize("fn, args", CASES)
def test_forward_and_backward_leave_inputs_and_the_incoming_gradient_alone(fn, args):
    for dtype in (np.float64, np.float32):
        arrays = [a.astype(dtype) for a in args]
        inputs = [Tensor(a, requires_grad=True) for a in arrays]
        kept = [t.data.copy() for t in inputs]
        out = fn(*inputs)
        v = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
        incoming, v_kept = Tensor(v), v.copy()
        out.backward(incoming)
        for t, before in zip(inputs, kept):
            np.testing.assert_array_equal(t.data, before)
        np.testing.assert_array_equal(incoming.data, v_kept)
        grads = [t.grad.data for t in inputs if t.grad is not None]
        for i, g in enumerate(grads):
            assert not np.shares_memory(g, incoming.data)
            assert not any(np.shares_memory(g, t.data) for t in inputs)
            assert not any(np.shares_memory(g, other) for other in grads[i + 1:])


def test_gradients_of_a_network_share_no_memory():
    model = nielsen_cnn("relu", seed=0)
    x = Tensor(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32), requires_grad=True)
    for _ in range(2):  # the second backward accumulates into the arrays of the first
        F.cross_entropy(model(x), np.array([3, 7])).backward()
    tensors = model.parameters() + [x]
    grads = [t.grad.data for t in tensors]
    for i, g in enumerate(grads):
        assert not any(np.shares_memory(g, t.data) for t in tensors)
        assert not any(np.shares_memory(g, other) for other in grads[i + 1:])


# ---- detect_anomaly ------------------------------------------------------------------------------
def test_anomaly_mode_is_off_by_default():
    assert not is_anomaly_enabled()
    with np.errstate(divide="ignore"):
        y = (Tensor([0.0, 1.0], requires_grad=True) * 0).log()  # -inf, as numpy gives it
    assert np.isneginf(y.data).all()


def test_anomaly_forward_names_the_first_op_that_makes_a_nan():
    x = Tensor([1.0, -1.0], requires_grad=True, dtype=np.float64)
    with detect_anomaly():
        y = x * 2  # fine
        with pytest.raises(RuntimeError, match=r"detect_anomaly: Pow produced nan in its output of shape \(2,\) "
                                               r"from finite inputs; called at .*test_numerics.py"):
            y ** 0.5
    assert not is_anomaly_enabled()


def test_anomaly_forward_says_when_the_nan_came_in_with_the_data():
    with detect_anomaly(), pytest.raises(RuntimeError, match=r"Mul produced nan .* its input 0 already held NaN"):
        Tensor([np.nan, 1.0]) * 2


def test_anomaly_backward_names_the_op_the_input_and_the_forward():
    a = Tensor([1e-120], requires_grad=True, dtype=np.float64)
    b = Tensor([1e-200], requires_grad=True, dtype=np.float64)
    with detect_anomaly():
        y = a / b  # 1e80: finite; but ∂y/∂b = −a/b² overflows (b² underflows to 0)
        assert np.isfinite(y.data).all()
        with pytest.raises(RuntimeError, match=r"Div.backward produced inf in the gradient of its input 1 "
                                               r"\(shape \(1,\)\) from a finite incoming gradient.*"
                                               r"the forward of this Div ran at .*test_numerics.py:\d+"):
            y.sum().backward()


def test_anomaly_backward_when_the_incoming_gradient_is_already_bad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        y = x.exp()
        with pytest.raises(RuntimeError, match=r"Exp.backward produced nan .* the incoming gradient .* already"):
            y.backward(np.array([np.nan, 1.0]))


def test_anomaly_mode_finds_nothing_in_a_healthy_training_step():
    model = nielsen_cnn("sigmoid", dropout=0.5, seed=0)
    opt = optim.Adam(model.parameters())
    x = Tensor(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))
    with detect_anomaly():
        loss = F.cross_entropy(model(x), np.array([0, 1, 2, 3]))
        loss.backward()
        opt.step()
        (g,) = grad(F.cross_entropy(model(x), np.array([0, 1, 2, 3])), model[0].bias, create_graph=True)
        (g * g).sum().backward()  # second order too
    assert np.isfinite(loss.item())


def test_anomaly_mode_as_decorator_nested_and_thread_local():
    seen = {}

    @detect_anomaly()
    def inside():
        seen["decorated"] = is_anomaly_enabled()
        with detect_anomaly(False):
            seen["switched off"] = is_anomaly_enabled()
            with np.errstate(divide="ignore"):
                (Tensor([0.0]) * 0).log()  # no error: the block switched it off
        seen["restored"] = is_anomaly_enabled()
        thread = threading.Thread(target=lambda: seen.__setitem__("other thread", is_anomaly_enabled()))
        thread.start()
        thread.join()

    inside()
    assert seen == {"decorated": True, "switched off": False, "restored": True, "other thread": False}
    assert not is_anomaly_enabled() and tinygrad_cnn.is_anomaly_enabled is is_anomaly_enabled
