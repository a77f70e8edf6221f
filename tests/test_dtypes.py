"""Tensors of every dtype a CNN uses (tinygrad_cnn.dtypes) and the PyTorch vocabulary around them
(tinygrad_cnn.tensor_ops), against numpy; PyTorch parity is in test_torch_parity.py."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, grad
from tinygrad_cnn.testing import gradcheck, gradgradcheck


@pytest.mark.parametrize("data, dtype", [
    ([1, 2, 3], np.int64), (7, np.int64), ([True, False], np.bool_), (np.arange(3, dtype=np.int32), np.int32),
    (np.arange(3, dtype=np.uint8), np.uint8), (np.arange(3, dtype=np.int16), np.int64),
    ([1.5], np.float32), (np.ones(2), np.float64), (np.ones(2, np.float32), np.float32),
])
def test_tensor_keeps_integers_and_bools_as_torch_tensor_does(data, dtype):
    t = tc.tensor(data)
    assert t.dtype == dtype and not t.requires_grad
    np.testing.assert_array_equal(t.data, np.asarray(data).astype(dtype))
    assert Tensor(data).dtype in (np.float32, np.float64)  # Tensor(...) keeps torch.Tensor's float default


def test_from_numpy_shares_memory_and_refuses_unsupported_dtypes():
    a = np.arange(4, dtype=np.int64)
    t = tc.from_numpy(a)
    a[0] = 9
    assert t.data[0] == 9 and t.dtype == np.int64
    with pytest.raises(TypeError, match="float16 is not supported"):
        tc.from_numpy(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="takes a numpy array, got list"):
        tc.from_numpy([1, 2])


@pytest.mark.parametrize("a, b, expected", [
    (tc.tensor([1, 2]), 0.5, np.float32), (tc.tensor([1, 2]), 2, np.int64), (tc.tensor([True]), 2, np.int64),
    (tc.tensor([1, 2]), Tensor([0.5, 1.0], dtype=np.float64), np.float64),
    (tc.tensor(np.array([1, 2], np.uint8)), tc.tensor([300, 1]), np.int64),
    (Tensor([1.0]), tc.tensor([2]), np.float32), (Tensor([1.0]), 2, np.float32),
    (Tensor([1.0], dtype=np.float64), Tensor([1.0]), np.float64),
])
def test_promotion_follows_pytorchs_categories(a, b, expected):
    assert (a + b).dtype == expected and (b + a).dtype == expected and (a * b).dtype == expected


PROMOTIONS = [  # (a, b) as numpy values: a 0-d tensor beside one with dims, integer arrays as operands
    (np.array([1.0, 2.0], np.float32), np.float64(2.0)), (np.array([1, 2], np.int32), np.int64(3)),
    (np.array([1, 2], np.uint8), np.int64(5)), (np.array([1, 2]), np.float64(1.5)), (np.array([True]), np.int64(1)),
    (np.float32(1.0), np.float64(2.0)), (np.array([16777217]), np.array([16777216])),
    (np.array([1.0, 2.0], np.float32), np.array([1, 2])), (np.array([1, 2], np.uint8), np.array([1, 2], np.uint8)),
]


@pytest.mark.parametrize("a, b", PROMOTIONS, ids=[str(i) for i in range(len(PROMOTIONS))])
def test_a_0d_tensor_and_integer_arrays_promote_as_pytorchs(a, b):
    torch = pytest.importorskip("torch")
    for make_b in (tc.tensor, lambda v: v if np.ndim(v) else tc.tensor(v)):  # b a tensor, and an array operand
        mine = tc.tensor(a) + make_b(b)
        theirs = torch.tensor(a) + torch.tensor(b)
        assert mine.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(mine.data, theirs.numpy())
    assert (tc.where(tc.tensor([True, False]), 1, 0)).dtype == np.int64  # as torch.where(mask, 1, 0)


def test_true_division_and_transcendental_functions_give_floats():
    i = tc.tensor([1, 2, 4])
    assert (i / 2).dtype == np.float32 and (2 / i).dtype == np.float32
    np.testing.assert_allclose((i / 2).data, [0.5, 1.0, 2.0])
    for name in ("exp", "log", "sqrt", "sigmoid", "tanh"):
        assert getattr(i, name)().dtype == np.float32, name
    np.testing.assert_allclose(i.sqrt().data, np.sqrt([1.0, 2.0, 4.0]), rtol=1e-6)


def test_comparisons_give_bool_tensors_outside_the_graph_and_tensors_hash_by_identity():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    masks = [x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2, 2 < x]
    expected = [[0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]]
    for mask, want in zip(masks, expected):
        assert mask.dtype == np.bool_ and not mask.requires_grad and mask.grad_fn is None
        np.testing.assert_array_equal(mask.data, np.array(want, bool))
    assert len({x, x, Tensor([1.0])}) == 2 and x in {x}
    assert (x == None) is False and (x != None) is True  # noqa: E711 -- PyTorch's answers
    assert (tc.tensor([1, 2, 3]) > 1).sum().item() == 2  # a bool sum is an int64 count


def test_integer_tensors_cannot_require_grad_and_conversions_cut_or_keep_the_graph():
    with pytest.raises(TypeError, match="only floating tensors"):
        tc.tensor([1, 2], requires_grad=True)
    x = Tensor([1.5, -2.5], requires_grad=True)
    assert x.long().dtype == np.int64 and not x.long().requires_grad
    np.testing.assert_array_equal(x.long().data, [1, -2])  # toward zero, as PyTorch
    y = x.double() * 3
    assert y.dtype == np.float64 and y.requires_grad
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert x.float() is x and x.to(tc.float32) is x
    assert tc.tensor([0, 2]).bool().tolist() == [False, True]
    assert Tensor([1.0]).requires_grad_().requires_grad


def test_reductions_take_dim_and_keepdim_and_max_with_a_dim_gives_values_and_indices():
    a = np.array([[3.0, 1.0, 3.0], [0.0, 5.0, -1.0]])
    x = Tensor(a, requires_grad=True)
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.data, [3.0, 5.0])
    np.testing.assert_array_equal(indices.data, [0, 1])  # the first maximum
    assert indices.dtype == np.int64 and x.max(dim=0, keepdim=True).values.shape == (1, 3)
    np.testing.assert_array_equal(x.min(-1).indices.data, [1, 2])
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).data, a.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(x.mean(dim=(0, 1)).data, a.mean())
    assert x.argmax().item() == 4 and x.argmin().item() == 5
    np.testing.assert_array_equal(x.argmax(0, keepdim=True).data, [[0, 1, 0]])
    (g,) = grad(x.max(1).values.sum() + x.min(), [x])
    np.testing.assert_array_equal(g.data, [[1, 0, 0], [0, 1, 1]])  # first maxima of each row, the minimum
    assert tc.tensor([[1, 7], [9, 2]]).max(1).values.tolist() == [7, 9]


def test_shape_vocabulary_matches_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(a)
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(x.view(6, 4).data, a.reshape(6, 4))
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x[:, :1].squeeze().shape == (2, 4) and x[:1].squeeze(1).shape == (1, 3, 4)
    assert x[:, :1].expand(5, -1, 3, -1).shape == (5, 2, 3, 4)
    assert x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.numel() == 24 and x.dim() == 3


def test_elementwise_vocabulary_values():
    a = np.array([-2.0, -0.0, 0.0, 0.3, 2.0])
    x = Tensor(a)
    np.testing.assert_array_equal(x.abs().data, np.abs(a))
    assert not np.signbit(x.abs().data).any()  # |−0| is +0
    np.testing.assert_array_equal(x.clamp(-1, 1).data, np.clip(a, -1, 1))
    np.testing.assert_array_equal(x.clamp(min=0.1).data, np.maximum(a, 0.1))
    np.testing.assert_array_equal(tc.where(x > 0, x, -x).data, np.abs(a))
    np.testing.assert_array_equal(tc.maximum(x, Tensor(0.1, dtype=np.float64)).data, np.maximum(a, 0.1))
    np.testing.assert_array_equal(tc.minimum(x, 0.1).data, np.minimum(a, 0.1))
    assert np.isnan(tc.maximum(Tensor([np.nan]), 1.0).item())  # NaN propagates, as PyTorch's
    np.testing.assert_array_equal(x.pow(2).data, a ** 2)
    with pytest.raises(TypeError, match="condition must be a bool"):
        tc.where(x, x, x)


def test_maximum_splits_a_tie_and_clamp_passes_its_bounds():
    a, b = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([1.0, 5.0, 0.0], requires_grad=True)
    ga, gb = grad(tc.maximum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga.data, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb.data, [0.5, 1.0, 0.0])
    x = Tensor([-1.0, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    (g,) = grad(x.clamp(0.0, 1.0).sum(), [x])
    np.testing.assert_array_equal(g.data, [0, 1, 1, 1, 0])  # the bounds themselves pass dy
    y = Tensor([0.0, -3.0, 2.0], requires_grad=True)
    (g,) = grad(y.abs().sum(), [y])
    np.testing.assert_array_equal(g.data, [0.0, -1.0, 1.0])  # sign(x), 0 at 0


@pytest.mark.parametrize("fn", [
    lambda x: tc.maximum(x, x * x),
    lambda x: tc.minimum(x.exp(), 1.5),
    lambda x: tc.where(x > 0, x.tanh(), x * x) * x,
    lambda x: (x * 3).clamp(-1, 1) ** 2,
])
def test_compositions_differentiate_twice(fn):
    x = np.array([-1.3, -0.45, 0.35, 0.8, 1.7])  # away from every kink and tie
    gradcheck(fn, x)
    gradgradcheck(fn, x)


def test_factories_as_pytorchs():
    assert tc.zeros(2, 3).shape == tc.zeros((2, 3)).shape == (2, 3) and tc.zeros(2).dtype == np.float32
    np.testing.assert_array_equal(tc.ones(2, dtype=tc.int64).data, [1, 1])
    assert tc.ones(2, dtype=tc.int64).dtype == np.int64
    np.testing.assert_array_equal(tc.full((2,), 7).data, [7, 7])
    assert tc.full((2,), 7).dtype == np.int64 and tc.full((2,), 0.5).dtype == np.float32
    assert tc.full((1,), True).dtype == np.bool_
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    assert tc.zeros_like(x).dtype == np.float64 and not tc.zeros_like(x).requires_grad
    assert tc.ones_like(x, requires_grad=True).requires_grad and tc.empty_like(x).shape == (2, 2)
    np.testing.assert_array_equal(tc.full_like(x, 3).data, np.full((2, 2), 3.0))
    np.testing.assert_array_equal(tc.arange(4).data, np.arange(4))
    assert tc.arange(4).dtype == np.int64 and tc.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_array_equal(tc.arange(1, 7, 2).data, [1, 3, 5])
    assert tc.empty(3).shape == (3,) and tc.rand(2, 3).shape == (2, 3) and tc.randn(4).dtype == np.float32
    draws = tc.randint(2, 5, (1000,))
    assert draws.dtype == np.int64 and draws.data.min() == 2 and draws.data.max() == 4
    assert 0 <= tc.rand(100).data.min() and tc.rand(100).data.max() < 1


def test_manual_seed_makes_draws_and_layers_repeat():
    def run():
        tc.manual_seed(11)
        return [tc.randn(3).data, tc.rand(2).data, tc.randint(10, (3,)).data, tc.nn.Linear(3, 2).weight.data,
                tc.nn.Conv2d(1, 2, 3).weight.data]
    for got, want in zip(run(), run()):
        np.testing.assert_array_equal(got, want)
    tc.manual_seed(11)
    first, second = tc.nn.Linear(3, 2).weight.data, tc.nn.Linear(3, 2).weight.data
    assert not np.array_equal(first, second)  # one generator, drawn on: two layers differ
    gen = np.random.default_rng(5)
    np.testing.assert_array_equal(tc.randn(3, generator=gen).data,
                                  np.random.default_rng(5).standard_normal(3, dtype=np.float32))


def test_cat_stack_split_chunk():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(4.0).reshape(2, 2)
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    np.testing.assert_array_equal(tc.cat([x, y], 1).data, np.concatenate([a, b], 1))
    np.testing.assert_array_equal(tc.cat((x, x), 0).data, np.concatenate([a, a], 0))
    np.testing.assert_array_equal(tc.stack([x, x * 2], -1).data, np.stack([a, a * 2], -1))
    assert [p.shape for p in x.split(2, 1)] == [(2, 2), (2, 1)] and [p.shape for p in x.split([1, 2], 1)] == [(2, 1),
                                                                                                          (2, 2)]
    assert [p.shape for p in x.chunk(2, 1)] == [(2, 2), (2, 1)] and len(x.chunk(5, 0)) == 2
    gx, gy = grad((tc.cat([x, y * 3], 1) * 2).sum(), [x, y])
    np.testing.assert_array_equal(gx.data, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(gy.data, np.full((2, 2), 6.0))
    assert tc.cat([tc.tensor([1]), tc.tensor([2.5])]).dtype == np.float32  # promoted, as PyTorch
    gradcheck(lambda x, y: tc.cat([x * y[:, :1], y.exp()], 1) ** 2, a, b)
    gradgradcheck(lambda x, y: tc.cat([x * y[:, :1], y.exp()], 1) ** 2, a, b)


@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, 1), "keepdim": True}, {"dim": 0, "unbiased": False},
                                    {"dim": 1, "correction": 0}, {"dim": 1, "correction": 2}])
def test_var_and_std_as_pytorchs(kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((3, 4))
    for name in ("var", "std"):
        mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = getattr(mine, name)(**kwargs), getattr(theirs, name)(**kwargs)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        y.sum().backward(), ty.sum().backward()
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-12)
    gradgradcheck(lambda t: t.std(**kwargs), x)
    assert Tensor(x).var(False).item() == pytest.approx(torch.tensor(x).var(False).item(), rel=1e-12)  # positional unbiased


def test_all_any_clone_linspace_eye_as_pytorchs():
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 1.5, -2.0], [3.0, 0.0, 1.0]])
    for name, kwargs in [("all", {}), ("any", {}), ("all", {"dim": 1}), ("any", {"dim": 0, "keepdim": True})]:
        mine, theirs = getattr(tc, name)(Tensor(x), **kwargs), getattr(torch, name)(torch.tensor(x), **kwargs)
        assert mine.dtype == np.bool_ and mine.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(mine.data, theirs.numpy())
        small = np.array([[0, 3, 1], [2, 2, 0]], np.uint8)  # uint8 in, uint8 out: PyTorch's exception
        mine, theirs = getattr(tc, name)(tc.tensor(small), **kwargs), getattr(torch, name)(torch.tensor(small), **kwargs)
        assert str(theirs.dtype) == "torch." + str(mine.dtype)
        np.testing.assert_array_equal(mine.data, theirs.numpy())
    y = Tensor(x, requires_grad=True)
    copy = y.clone()
    assert copy.data is not y.data and copy.requires_grad
    (copy * 3).sum().backward()
    np.testing.assert_array_equal(y.grad.data, np.full(x.shape, 3.0))
    for start, end, steps in [(-1, 2, 7), (0, 1, 11), (0.1, 0.9, 100), (2, 2, 3), (0, 1, 1), (0, 1, 0)]:
        ours, theirs = tc.linspace(start, end, steps), torch.linspace(start, end, steps)
        assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6, atol=1e-7)
        exact = tc.linspace(start, end, steps, dtype=tc.float64).data
        np.testing.assert_allclose(exact, torch.linspace(start, end, steps, dtype=torch.float64).numpy(), rtol=1e-15)
        assert steps < 2 or (exact[0], exact[-1]) == (start, end)
    np.testing.assert_array_equal(tc.eye(2, 3).data, torch.eye(2, 3).numpy())
    np.testing.assert_allclose(Tensor(x).softmax(0).data, torch.tensor(x).softmax(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(Tensor(x).log_softmax(1).data, torch.tensor(x).log_softmax(1).numpy(), rtol=1e-12)
