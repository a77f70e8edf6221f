"""The engine: accumulation, graph lifetime, retain/create graph, grad(), no_grad."""
import gc
import threading
import weakref

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad, no_grad
from tinygrad_cnn.testing import gradcheck


def test_diamond_accumulates_every_path():
    x = Tensor(3.0, requires_grad=True, dtype=np.float64)
    a = x * 2
    b = x * x
    y = a * b + a  # y = 2x·x² + 2x = 2x³ + 2x
    y.backward()
    assert x.grad.item() == pytest.approx(6 * 9 + 2)


def test_reused_tensor_in_one_op():
    x = Tensor([1.0, -2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, -4.0])
    x.grad = None
    (x + x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


@pytest.mark.parametrize("shape", [(), (1,), (3, 1), (1, 4), (4,)])
def test_broadcasting_gradients_sum_back(shape):
    rng = np.random.default_rng(0)
    big = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    small = Tensor(rng.standard_normal(shape), requires_grad=True)
    (big * small + small).sum().backward()
    assert small.grad.shape == shape and big.grad.shape == (2, 3, 4)
    expected = (big.data + 1).sum(axis=tuple(range(3 - len(shape))), keepdims=False)
    expected = expected.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True) \
        if shape else (big.data + 1).sum()
    np.testing.assert_allclose(small.grad.data, np.reshape(expected, shape))
    np.testing.assert_allclose(big.grad.data, np.broadcast_to(small.data, (2, 3, 4)))


def test_accumulation_over_two_backward_calls_and_reset():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [7.0, 7.0])
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])


def test_grad_arrays_share_no_memory():
    x = Tensor(np.ones(3), requires_grad=True)
    y = Tensor(np.ones(3), requires_grad=True)
    seed = np.ones(3)
    (x + y).backward(seed)
    assert not np.shares_memory(x.grad.data, y.grad.data)
    assert not np.shares_memory(x.grad.data, seed)
    assert not np.shares_memory(x.grad.data, x.data)


def test_backward_with_gradient_argument():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    (x * 3).backward(Tensor(np.full((2, 2), 2.0)))
    np.testing.assert_array_equal(x.grad.data, np.full((2, 2), 6.0))


def test_retain_graph_allows_second_backward():
    x = Tensor(2.0, requires_grad=True, dtype=np.float64)
    y = x.sigmoid() * x
    y.backward(retain_graph=True)
    first = x.grad.item()
    y.backward()
    assert x.grad.item() == pytest.approx(2 * first)


def test_leaf_backward():
    x = Tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_no_grad_records_nothing_and_is_thread_local():
    x = Tensor(1.0, requires_grad=True)
    seen = {}

    def other_thread():
        seen["other"] = (x * 2).requires_grad

    with no_grad():
        inside = x * 2
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert not inside.requires_grad and inside.grad_fn is None
    assert seen["other"] is True
    assert (x * 2).requires_grad

    @no_grad()
    def decorated():
        return x * 2

    assert not decorated().requires_grad


def test_detach_stops_the_gradient():
    x = Tensor(3.0, requires_grad=True, dtype=np.float64)
    y = x * x.detach()
    y.backward()
    assert x.grad.item() == 3.0


def test_graph_is_freed_by_refcount_alone():
    gc.disable()
    try:
        x = Tensor(np.ones(4), requires_grad=True)
        hidden = (x * 2).sigmoid()
        probe = weakref.ref(hidden)
        node = weakref.ref(hidden._ctx)
        loss = (hidden * hidden).sum()
        del hidden
        assert probe() is not None  # the Mul node saved it for backward
        loss.backward()
        assert probe() is None  # backward released the saved tensors
        del loss
        assert node() is None
    finally:
        gc.enable()


def test_intermediate_freed_when_loss_deleted_without_backward():
    gc.disable()
    try:
        x = Tensor(np.ones(4), requires_grad=True)
        hidden = x.exp()
        probe = weakref.ref(hidden)
        loss = (hidden * 3).sum()
        del hidden
        del loss
        assert probe() is None
    finally:
        gc.enable()


def test_grad_function_like_torch():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    w = Tensor([3.0, 4.0], requires_grad=True, dtype=np.float64)
    y = (x * w).sum()
    gx, gw = grad(y, [x, w], retain_graph=True)
    np.testing.assert_array_equal(gx.data, w.data)
    np.testing.assert_array_equal(gw.data, x.data)
    assert x.grad is None and w.grad is None  # grad() leaves .grad alone
    (gx_only,) = grad(y, x)
    np.testing.assert_array_equal(gx_only.data, w.data)


def test_grad_with_respect_to_intermediate():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = x * 3
    y = (h * h).sum()
    (gh,) = grad(y, h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grad_unused_input():
    x = Tensor(1.0, requires_grad=True)
    unused = Tensor(1.0, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        grad(y, [x, unused], retain_graph=True)
    gx, gu = grad(y, [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_input_not_requiring_grad():
    x = Tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"inputs\[0\] does not require grad"):
        grad(x * 2, Tensor(1.0))


def test_create_graph_gives_second_derivative():
    x = Tensor(0.7, requires_grad=True, dtype=np.float64)
    y = x.sigmoid()
    (dy,) = grad(y, x, create_graph=True)
    assert dy.requires_grad
    (d2y,) = grad(dy, x)
    s = 1 / (1 + np.exp(-0.7))
    assert dy.item() == pytest.approx(s * (1 - s))
    assert d2y.item() == pytest.approx(s * (1 - s) * (1 - 2 * s))


def test_backward_create_graph_then_backward_again():
    x = Tensor(1.5, requires_grad=True, dtype=np.float64)
    y = x ** 3
    y.backward(create_graph=True)
    first = x.grad
    x.grad = None
    first.backward()
    assert x.grad.item() == pytest.approx(6 * 1.5)


def test_hessian_vector_product_of_conv_net():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6))
    labels = np.array([0, 2])

    def loss_fn(k1, w):
        h = F.maxpool2d(F.correlate2d(x, k1).tanh(), 2)  # (2, 3, 2, 2)
        return F.cross_entropy(h.reshape(2, 12) @ w, labels)

    def directional(k1, w, v_k, v_w):
        gk, gw = grad(loss_fn(k1, w), [k1, w], create_graph=True)
        return (gk * v_k).sum() + (gw * v_w).sum()

    gradcheck(directional, rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((12, 3)),
              rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((12, 3)))


def test_zero_dim_results_are_arrays():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    s = t.sum()
    assert isinstance(s.data, np.ndarray) and np.asarray(s).shape == ()
    a = Tensor(np.float64(2.0), requires_grad=True)
    assert isinstance(grad(a * a, a)[0].data, np.ndarray)
    (a * 3.0).backward(create_graph=True)
    a.grad = a.grad.detach()
    (a * 3.0).backward()  # accumulates in place into the 0-d .grad
    assert a.grad.item() == 6.0


def test_create_graph_gradients_do_not_alias():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward(create_graph=True)
    (x * 1).sum().backward()  # accumulating into a .grad made under create_graph
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])
    g = Tensor([1.0, 1.0])
    x.grad = y.grad = None
    (x + y).backward(g, create_graph=True)
    (x * 1).backward(Tensor([5.0, 5.0]))
    np.testing.assert_array_equal(g.data, [1.0, 1.0])  # the caller's gradient is untouched
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])


def test_grad_results_do_not_alias():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    g = Tensor([1.0, 1.0])
    gx, gy = grad(x + y, [x, y], grad_outputs=g)
    assert gx is not gy and not np.shares_memory(gx.data, gy.data) and not np.shares_memory(gx.data, g.data)


def test_set_grad_enabled_switches_at_once_and_as_context():
    from tinygrad_cnn import is_grad_enabled, set_grad_enabled
    x = Tensor(1.0, requires_grad=True)
    set_grad_enabled(False)
    try:
        assert not is_grad_enabled() and not (x * 2).requires_grad
        with set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not is_grad_enabled()
    finally:
        set_grad_enabled(True)
    assert is_grad_enabled()


def test_pow_gradients_at_zero_follow_pytorch():
    a = Tensor([0.0, 2.0], requires_grad=True, dtype=np.float64)
    b = Tensor([2.0, 0.0], requires_grad=True, dtype=np.float64)
    with np.errstate(all="raise"):
        (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.0, 0.0])  # 2·0¹ and 0·2^(−1) -> 0, not nan
    np.testing.assert_allclose(b.grad.data, [0.0, np.log(2.0)])  # 0²·ln 0 -> 0, not nan
