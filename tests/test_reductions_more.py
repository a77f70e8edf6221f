"""logsumexp, prod, cumsum and norm (tinygrad_cnn.tensor_ops): forwards against numpy and scipy,
gradients by finite differences (twice), and PyTorch parity where torch is installed."""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, grad
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst

INF = float("inf")


@settings(deadline=None)
@given(tst.arrays(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)), st.data())
def test_forwards_match_numpy_and_scipy(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keep = data.draw(st.booleans())
    t = Tensor(x)
    np.testing.assert_allclose(tc.logsumexp(t, dim, keep).data, scipy.special.logsumexp(x, dim, keepdims=keep),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.prod(dim, keep).data, np.prod(x, dim, keepdims=keep), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(t.cumsum(dim).data, np.cumsum(x, dim), rtol=1e-10, atol=1e-9)
    for p in (1, 2, 3, INF, -INF):
        expected = np.linalg.norm(np.moveaxis(x, dim, -1), p, axis=-1)
        np.testing.assert_allclose(t.norm(p, dim, keep).data, np.expand_dims(expected, dim) if keep else expected,
                                   rtol=1e-10)
    np.testing.assert_allclose(tc.prod(t).data, np.prod(x), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(tc.norm(t).data, np.linalg.norm(x.ravel()), rtol=1e-10)


@pytest.mark.parametrize("fn", [
    lambda x: tc.logsumexp(x * 3, 1),
    lambda x: x.logsumexp((0, 1), keepdim=True),
    lambda x: x.prod(1),
    lambda x: x.prod(0, keepdim=True) * x[:1],
    lambda x: x.prod(),
    lambda x: x.cumsum(1) ** 2,
    lambda x: x.cumsum(0).exp(),
    lambda x: x.norm(),
    lambda x: x.norm(3, dim=1),
    lambda x: x.norm(1, dim=0, keepdim=True) * x,
])
def test_gradients_twice(fn):
    x = np.array([[-1.3, -0.45, 0.35, 0.8, 1.7], [0.6, -1.1, 1.4, -0.7, 0.25], [1.2, 0.55, -0.3, 0.9, -1.6]])
    gradcheck(fn, x)
    gradgradcheck(fn, x)


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    x = Tensor([[2.0, 0.0, 3.0, 5.0, 7.0], [0.0, 0.0, 4.0, 1.0, 2.0]], requires_grad=True)
    (g,) = grad(x.prod(1).sum(), [x])
    np.testing.assert_array_equal(g.data, [[0, 210, 0, 0, 0], [0, 0, 0, 0, 0]])


def test_edges():
    empty = tc.zeros(2, 0)
    np.testing.assert_array_equal(empty.prod(1).data, [1.0, 1.0])  # the empty product
    np.testing.assert_array_equal(tc.logsumexp(empty, 1).data, [-INF, -INF])
    x = Tensor([[-INF, -INF], [0.0, INF], [1.0, 2.0]], requires_grad=True)
    np.testing.assert_allclose(tc.logsumexp(x, 1).data, [-INF, INF, np.log(np.e + np.e ** 2)])
    y = Tensor([[0.0, 0.0, 0.0], [0.0, 3.0, -4.0]], requires_grad=True)
    for p in (2, 3, 0.5):  # a zero norm, and zero elements, have a zero gradient, not NaN
        (g,) = grad(y.norm(p, dim=1).sum(), [y])
        assert np.isfinite(g.data).all() and (g.data[0] == 0).all() and g.data[1, 0] == 0
    np.testing.assert_array_equal(y.norm(0, dim=1).data, [0, 2])  # the count of nonzeros
    assert not y.norm(0).requires_grad
    ints = tc.tensor([[1, 2, 3], [4, 5, 6]], dtype=tc.int32)
    assert ints.prod().item() == 720 and ints.prod().dtype == np.int64 and ints.prod(1).dtype == np.int64
    np.testing.assert_array_equal(ints.cumsum(1).data, [[1, 3, 6], [4, 9, 15]])
    assert ints.cumsum(0).dtype == np.int64 and tc.cumsum(tc.tensor([True, True]), 0).dtype == np.int64
    assert tc.logsumexp(tc.tensor([1, 2]), 0).dtype == np.float32


def test_bad_arguments():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="prod.*dim must be an int"):
        x.prod((0, 1))
    with pytest.raises(ValueError, match="norm.*p must be"):
        x.norm(-1)
    with pytest.raises(ValueError, match="norm.*p must be"):
        x.norm("nuc")
    with pytest.raises(TypeError, match="norm.*floating"):
        tc.tensor([1, 2]).norm()
    with pytest.raises((ValueError, IndexError), match="2"):
        x.cumsum(2)


@pytest.mark.parametrize("dim", [0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_as_pytorchs(dim, keepdim):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5))
    x[0, 1, :] = 0
    x[1, 2, 3] = 0
    cases = [(lambda t, lib: lib.logsumexp(t, dim, keepdim))]
    for p in ("fro", 1, 3, 0.5, INF, -INF):
        cases.append(lambda t, lib, p=p: lib.norm(t, p, dim, keepdim))
    if not isinstance(dim, tuple):
        cases += [lambda t, lib: lib.prod(t, dim, keepdim), lambda t, lib: lib.cumsum(t, dim)]
    for fn in cases:
        mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = fn(mine, tc), fn(theirs, torch)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
        w = rng.standard_normal(y.shape)
        (y * Tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_zero_dim_tensors_and_empty_dims_as_pytorchs():
    torch = pytest.importorskip("torch")
    for name in ("logsumexp", "prod", "cumsum"):
        for dim in (0, -1):
            mine, theirs = getattr(Tensor(2.5), name)(dim), getattr(torch.tensor(2.5), name)(dim)
            assert mine.shape == tuple(theirs.shape) and mine.item() == pytest.approx(theirs.item())
    assert tc.tensor(3).cumsum(0).item() == 3 and tc.tensor(3).prod(0).dtype == np.int64
    x = np.array([[3.0, -4.0], [1.0, 2.0]])
    np.testing.assert_allclose(tc.norm(Tensor(x), dim=()).data, torch.norm(torch.tensor(x), dim=()).numpy())
    with pytest.raises(ValueError, match="at least one dim"):
        tc.logsumexp(Tensor(x), ())
    with pytest.raises(TypeError, match=r"cumsum\(\): dim must be an int, got None"):
        tc.cumsum(Tensor(x), None)
    empty = Tensor(np.zeros((2, 0)), requires_grad=True)
    (g,) = grad(empty.prod(1).sum(), [empty])  # the empty product keeps its place in the graph
    assert g.shape == (2, 0)
