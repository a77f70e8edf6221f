"""Tensor.register_hook and retain_grad (tinygrad_cnn.autograd), as PyTorch's: a hook sees a
tensor's whole gradient once per backward and may replace it; retain_grad keeps a non-leaf's."""
import numpy as np
import pytest

import tinygrad_cnn as tc
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad

X = np.random.default_rng(0).standard_normal((2, 1, 5, 5))
K = np.random.default_rng(1).standard_normal((3, 1, 3, 3))


def conv_step(lib, F_conv):
    """A feature map z = x ⋆ k with a hook and retain_grad on z and a doubling hook on the leaf
    k, which two paths reach (the convolution and the L2 term): its hook must see their sum."""
    x = lib.tensor(X, requires_grad=True)
    k = lib.tensor(K, requires_grad=True)
    z = F_conv(x, k)
    z.retain_grad()
    seen = []
    z.register_hook(lambda g: seen.append(np.array(g.data if lib is tc else g.numpy())))
    k.register_hook(lambda g: g * 2)
    loss = (z.relu() ** 2).sum() + (k * k).sum()
    loss.backward()
    as_array = (lambda t: t.data) if lib is tc else (lambda t: t.numpy())
    return as_array(z.grad), as_array(k.grad), as_array(x.grad), seen


def test_hooks_and_retained_gradients_as_pytorchs():
    torch = pytest.importorskip("torch")
    mine = conv_step(tc, F.conv2d)
    theirs = conv_step(torch, torch.nn.functional.conv2d)
    for got, want in zip(mine[:3], theirs[:3]):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len(mine[3]) == len(theirs[3]) == 1
    np.testing.assert_allclose(mine[3][0], theirs[3][0], rtol=1e-12)


def test_a_hook_replaces_the_gradient_upstream_and_can_be_removed():
    w = Tensor([1.0, 2.0], requires_grad=True)
    z = w * 3
    handle = z.register_hook(lambda g: g * 10)
    (z * z).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad.data, [180.0, 360.0])  # 2z · 10 · 3
    handle.remove()
    w.grad = None
    (z * z).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [18.0, 36.0])
    v = Tensor([1.0, 2.0], requires_grad=True)
    with v.register_hook(lambda g: g * 0):
        (v * v).sum().backward()
    np.testing.assert_array_equal(v.grad.data, [0.0, 0.0])
    (v * v).sum().backward()  # removed on leaving the block
    np.testing.assert_array_equal(v.grad.data, [2.0, 4.0])


def test_hooks_run_in_grad_as_in_backward():
    torch = pytest.importorskip("torch")
    results = []
    for lib, gradient in ((tc, grad), (torch, torch.autograd.grad)):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        w.register_hook(lambda g: g * 10)
        z = w * 3
        z.register_hook(lambda g: g * 10)
        values = [gradient((w * w).sum(), [w])[0], gradient((z * z).sum(), [z], retain_graph=True)[0],
                  gradient((z * z).sum(), [w])[0]]
        results.append([np.asarray(v.data if lib is tc else v.numpy()) for v in values])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want)


def test_retained_gradients_accumulate_and_leaves_keep_theirs():
    torch = pytest.importorskip("torch")
    grads = []
    for lib in (tc, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        z = w * 3
        z.retain_grad()
        w.retain_grad()  # a leaf: nothing changes
        (z * z).sum().backward(retain_graph=True)
        (z * z).sum().backward()
        grads.append([np.asarray(t.grad.data if lib is tc else t.grad.numpy()) for t in (z, w)])
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want)
    y = Tensor([1.0], requires_grad=True) * 2
    (y * 1).sum().backward()
    assert y.grad is None  # not retained unless asked, as PyTorch's


def test_bad_hooks():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="register_hook takes a function"):
        w.register_hook(3)
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).retain_grad()
    z = w * 2
    z.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"must return None or a Tensor of the gradient's shape and dtype \(2,\) float32, got \(\)"):
        z.sum().backward()


def test_review_edges_against_pytorch():
    torch = pytest.importorskip("torch")
    out = []
    for lib, gradient in ((tc, grad), (torch, torch.autograd.grad)):
        as_list = (lambda t: t.data.tolist()) if lib is tc else (lambda t: t.tolist())
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g * 10)
        y.sum().backward()  # frees y's node: its hook stays, as the tensor's
        kept_hook = as_list(gradient((y * 3).sum(), [y])[0])
        y = x * 2
        y.retain_grad()
        gradient((y * y).sum(), [x])  # retain_grad holds under grad() too
        retained = as_list(y.grad)
        y = x * 1
        y.retain_grad()
        y.sum().backward(retain_graph=True)
        first = y.grad
        y.sum().backward()
        out.append((kept_hook, retained, first is y.grad, as_list(first), as_list(y.grad), y.retains_grad))
        calls = []
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        z = x * 2
        z.register_hook(lambda g: calls.append(1))
        gradient((z * w).sum(), [w])  # z's gradient is not needed for w's: its hook does not run
        out[-1] += (calls,)
    assert out[0] == out[1]


def test_a_hook_may_not_change_the_dtype():
    w = Tensor([1.0, 2.0], requires_grad=True)
    z = w * 2
    z.register_hook(lambda g: g.to(tc.float64))
    with pytest.raises(RuntimeError, match=r"shape and dtype \(2,\) float32, got \(2,\) float64"):
        z.sum().backward()
