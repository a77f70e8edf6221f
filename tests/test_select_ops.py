"""sort, argsort, topk, gather, take_along_dim, masked_fill, repeat, flip, roll, one_hot, randperm
and unique (tinygrad_cnn.select_ops): forwards against numpy, gradients by finite differences
(twice), PyTorch parity where torch is installed, and the bad arguments."""
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, grad
from tinygrad_cnn import select_ops as S
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst

NAN = float("nan")
SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
# Distinct values (no ties: sorting is differentiable there), none within 0.1 of another.
X = np.array([[-1.3, -0.45, 0.35, 0.8, 1.7], [0.6, -1.1, 1.4, -0.7, 0.25], [1.2, 0.55, -0.3, 0.9, -1.6]])


def ints(a):
    return tc.tensor(np.asarray(a, dtype=np.int64))


def _along(a, axis, stop=None):
    return (slice(None),) * axis + (slice(0, stop),)


@settings(deadline=None, max_examples=60)
@given(tst.arrays(shape=SHAPES, min_value=-3, max_value=3).map(np.round), st.data())  # rounded: many ties
def test_forwards_match_numpy(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    axis = dim % x.ndim
    t = Tensor(x)
    up, down = np.argsort(x, dim, kind="stable"), np.argsort(-x, dim, kind="stable")  # -x: ties keep their order
    values, indices = S.sort(t, dim)
    np.testing.assert_array_equal(indices.data, up)
    np.testing.assert_array_equal(values.data, np.take_along_axis(x, up, dim))
    values, indices = S.sort(t, dim, descending=True)
    np.testing.assert_array_equal(indices.data, down)
    np.testing.assert_array_equal(values.data, np.take_along_axis(x, down, dim))
    np.testing.assert_array_equal(S.argsort(t, dim, descending=True).data, down)
    assert indices.dtype == np.int64
    k = data.draw(st.integers(0, x.shape[axis]))
    for largest, order in ((True, down), (False, up)):
        values, indices = S.topk(t, k, dim, largest=largest)
        np.testing.assert_array_equal(indices.data, order[_along(x, axis, k)])
        np.testing.assert_array_equal(values.data, np.take_along_axis(x, order, dim)[_along(x, axis, k)])
    index = data.draw(tst.arrays(shape=st.tuples(*[st.integers(1, n) if d != axis else st.integers(0, 4)
                                                   for d, n in enumerate(x.shape)]), min_value=0,
                                 max_value=x.shape[axis] - 1)).astype(np.int64)
    first = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(index.shape))]
    np.testing.assert_array_equal(S.gather(t, dim, ints(index)).data, np.take_along_axis(first, index, dim))
    n = x.shape[axis]
    along = data.draw(tst.arrays(shape=st.tuples(*[st.sampled_from([1, m]) if d != axis else st.integers(1, 4)
                                                   for d, m in enumerate(x.shape)]), min_value=-n, max_value=n - 1))
    along = np.floor(along).astype(np.int64)  # numpy's take_along_axis broadcasts and counts -1 from the end too
    np.testing.assert_array_equal(S.take_along_dim(t, ints(along), dim).data, np.take_along_axis(x, along, dim))
    np.testing.assert_array_equal(S.take_along_dim(t, ints(index)).data, x.ravel()[index.ravel()])  # 1-d
    np.testing.assert_array_equal(S.flip(t, dim).data, np.flip(x, axis))
    np.testing.assert_array_equal(S.flip(t, (0, dim) if axis else 0).data, np.flip(x, tuple({0, axis})))
    shift = data.draw(st.integers(-7, 7))
    np.testing.assert_array_equal(S.roll(t, shift, dim).data, np.roll(x, shift, axis))
    np.testing.assert_array_equal(S.roll(t, shift).data, np.roll(x, shift))
    np.testing.assert_array_equal(S.roll(t, (shift, 1), (dim, 0)).data, np.roll(x, (shift, 1), (axis, 0)))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=x.ndim, max_size=x.ndim + 2)))
    np.testing.assert_array_equal(S.repeat(t, *reps).data, np.tile(x, reps))
    mask = data.draw(st.lists(st.booleans(), min_size=x.shape[-1], max_size=x.shape[-1]).map(np.array))
    np.testing.assert_array_equal(S.masked_fill(t, Tensor(mask, dtype=tc.bool), 9.5).data, np.where(mask, 9.5, x))
    u, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    got = S.unique(t, return_inverse=True, return_counts=True)
    for mine, theirs in zip(got, (u, inverse.reshape(x.shape), counts)):
        np.testing.assert_array_equal(mine.data, theirs)
    labels = (x - x.min()).astype(np.int64)
    np.testing.assert_array_equal(S.one_hot(ints(labels)).data, np.eye(labels.max() + 1, dtype=np.int64)[labels])


@pytest.mark.parametrize("fn", [
    lambda x: S.sort(x, 1).values,
    lambda x: S.sort(x * x, 0, descending=True).values ** 2,
    lambda x: S.topk(x, 3).values * S.topk(x, 3).values,
    lambda x: S.topk(x.exp(), 2, dim=0, largest=False).values,
    lambda x: S.gather(x, 1, ints([[0, 0, 4], [3, 1, 1], [2, 2, 2]])) ** 2,
    lambda x: S.gather(x, 0, ints([[2, 0, 1, 1, 0]])) * x[:1],
    lambda x: S.take_along_dim(x * x, ints([[-1, 0], [4, 4], [1, -2]]), 1),
    lambda x: S.take_along_dim(x, ints([[1], [0]]).reshape(2, 1), 0).exp(),
    lambda x: S.take_along_dim(x ** 2, ints([14, 0, 0, 7])),
    lambda x: S.masked_fill(x * x, Tensor(X > 0.5, dtype=tc.bool), 2.0),
    lambda x: S.masked_fill(x, Tensor([True, False, False, True, False], dtype=tc.bool), x[0, 0] * 3) ** 2,
    lambda x: S.repeat(x, 2, 1, 2) ** 2,
    lambda x: S.repeat(x[0], 3) * S.repeat(x[1], 3),
    lambda x: S.flip(x, (0, 1)) * x,
    lambda x: S.roll(x, (1, -2), (0, 1)) ** 2,
    lambda x: S.roll(x, 4) * x,
])
def test_gradients_twice(fn):
    gradcheck(fn, X)
    gradgradcheck(fn, X)


def test_the_gradient_goes_to_the_picked_elements():
    x = Tensor([[3.0, 1.0, 2.0], [0.5, 4.0, 6.0]], requires_grad=True)
    values, indices = S.topk(x, 2)
    (g,) = grad((values * Tensor([[10.0, 1.0]])).sum(), [x])
    np.testing.assert_array_equal(g.data, [[10, 0, 1], [0, 1, 10]])
    (g,) = grad(S.gather(x, 1, ints([[0, 0, 0], [2, 1, 2]])).sum(), [x])  # picked twice: added twice
    np.testing.assert_array_equal(g.data, [[3, 0, 0], [0, 1, 2]])
    value = Tensor(5.0, requires_grad=True)
    filled = S.masked_fill(x, Tensor([True, False, True], dtype=tc.bool), value)
    gx, gv = grad((filled * Tensor([[1.0, 2.0, 3.0]])).sum(), [x, value])
    np.testing.assert_array_equal(gx.data, [[0, 2, 0], [0, 2, 0]])
    assert gv.item() == 8.0


def test_ties_keep_their_order_and_nan_is_the_largest():
    x = Tensor([3.0, 1.0, 3.0, 2.0, 1.0, NAN, 3.0, NAN])
    np.testing.assert_array_equal(S.argsort(x).data, [1, 4, 3, 0, 2, 6, 5, 7])
    np.testing.assert_array_equal(S.argsort(x, descending=True).data, [5, 7, 0, 2, 6, 3, 1, 4])
    np.testing.assert_array_equal(S.topk(x, 4).indices.data, [5, 7, 0, 2])
    np.testing.assert_array_equal(S.topk(Tensor([1.0, 1.0, 1.0, 0.0]), 2, largest=False).indices.data, [3, 0])
    big = np.iinfo(np.int64)
    np.testing.assert_array_equal(S.sort(ints([0, big.min, big.max, big.min]), descending=True).indices.data,
                                  [2, 0, 1, 3])
    np.testing.assert_array_equal(S.unique(Tensor([NAN, 1.0, NAN]), return_counts=True)[1].data, [1, 1, 1])
    many = np.random.default_rng(0).integers(0, 4, (3, 300)).astype(np.float64)  # long runs of ties
    np.testing.assert_array_equal(S.argsort(Tensor(many)).data, np.argsort(many, kind="stable"))
    np.testing.assert_array_equal(S.argsort(Tensor(many), descending=True).data, np.argsort(-many, kind="stable"))


def test_integer_and_bool_tensors_pass_through_without_gradients():
    flags = tc.tensor([True, False, True])
    values, indices = S.sort(flags, descending=True)
    assert values.dtype == np.bool_ and values.tolist() == [True, True, False] and indices.tolist() == [0, 2, 1]
    labels = tc.tensor(np.array([[4, 1], [2, 9]], np.int32))
    for out in (S.sort(labels, 0).values, S.topk(labels, 1).values, S.gather(labels, 1, ints([[1], [0]])),
                S.take_along_dim(labels, ints([[1]]), 1), S.masked_fill(labels, flags[:2], 1.5),
                S.repeat(labels, 2, 1), S.flip(labels, 0), S.roll(labels, 1, 1), S.unique(labels)):
        assert out.dtype == np.int32 and not out.requires_grad
    np.testing.assert_array_equal(S.masked_fill(labels, flags[:2], 1.5).data, [[1, 1], [1, 9]])  # 1.5 as int32: 1
    np.testing.assert_array_equal(S.masked_fill(flags, flags, False).data, [False, False, False])
    scalar = S.masked_fill(Tensor(np.float32(1.0)), tc.tensor(True), Tensor(np.float64(2.0)))
    assert scalar.dtype == np.float32 and scalar.item() == 2.0  # x's dtype, 0-d beside 0-d too


def test_zero_dim_and_empty():
    s = Tensor(5.0, requires_grad=True)
    for values, indices in (S.sort(s), S.topk(s, 1)):
        assert values.shape == indices.shape == () and values.item() == 5.0 and indices.item() == 0
        (g,) = grad(values * 2, [s])
        assert g.item() == 2.0
    np.testing.assert_array_equal(S.gather(s, 0, ints([0, 0])).data, [5.0, 5.0])
    assert S.topk(s, 0).values.shape == (0,) and S.take_along_dim(s, ints(0)).shape == (1,)  # 1-d, as PyTorch's
    assert S.flip(s, 0).item() == 5.0 and S.roll(s, 3).item() == 5.0 and S.repeat(s, 2, 1).shape == (2, 1)
    empty = Tensor(np.zeros((2, 0)))
    assert S.sort(empty, 1).values.shape == (2, 0) and S.topk(empty, 0).indices.shape == (2, 0)
    assert S.roll(empty, 1, 1).shape == (2, 0) and S.one_hot(ints(np.zeros(0)), 3).shape == (0, 3)
    assert S.randperm(0).shape == (0,) and S.unique(empty).shape == (0,)


def test_repeat_flip_and_roll_copy():
    x = Tensor([[1.0, 2.0]])
    for out in (S.repeat(x, 1, 1), S.repeat(x[:, :1], 3, 1), S.flip(x, ()), S.flip(x, 1), S.roll(x, 0, 1),
                S.roll(x, 2, 1)):
        assert not np.may_share_memory(out.data, x.data)
        out.data[...] = 0  # its own, writeable memory
    assert x.tolist() == [[1.0, 2.0]]


def test_randperm_draws_from_the_generator():
    tc.manual_seed(3)
    first = S.randperm(50)
    tc.manual_seed(3)
    assert first.tolist() == S.randperm(50).tolist() and first.dtype == np.int64
    assert sorted(first.tolist()) == list(range(50)) and first.tolist() != list(range(50))
    mine = S.randperm(50, generator=np.random.default_rng(7))
    assert mine.tolist() == S.randperm(50, generator=np.random.default_rng(7)).tolist()
    assert S.randperm(5, dtype=tc.float32).dtype == np.float32 and S.randperm(256, dtype=tc.uint8).data.max() == 255


def test_unique_returns_what_is_asked():
    x = Tensor([[3.0, 1.0], [2.0, 3.0]])
    assert S.unique(x).tolist() == [1.0, 2.0, 3.0] and S.unique(x, sorted=False).tolist() == [1.0, 2.0, 3.0]
    values, inverse = S.unique(x, return_inverse=True)
    assert inverse.dtype == np.int64 and inverse.tolist() == [[2, 0], [1, 2]]
    values, counts = S.unique(x, return_counts=True)
    assert counts.tolist() == [1, 1, 2]
    assert not S.unique(Tensor(X, requires_grad=True)).requires_grad


BAD = [
    (lambda: S.sort([1, 2]), TypeError, r"sort\(\): input must be a Tensor, not list"),
    (lambda: S.sort(Tensor(X), 2), ValueError, r"axis 2 is out of range"),
    (lambda: S.argsort(Tensor(X), 1.0), TypeError, r"argsort: dim must be an int, got 1.0"),
    (lambda: S.topk(Tensor(X), 6), ValueError, r"topk: k=6 is larger than dim -1 of size 5"),
    (lambda: S.topk(Tensor(X), -1), ValueError, r"topk: k=-1 must be >= 0"),
    (lambda: S.topk(Tensor(X), 1.5), TypeError, r"topk: k must be an int, got 1.5"),
    (lambda: S.topk(tc.tensor([True]), 1), TypeError, r"topk: bool tensors"),
    (lambda: S.gather(Tensor(X), 1, Tensor([[0.0]])), TypeError, r"gather: index must be an int64 or int32 tensor, got float32"),
    (lambda: S.gather(Tensor(X), 1, [[0]]), TypeError, r"gather: index must be a Tensor, not list"),
    (lambda: S.gather(Tensor(X), 1, ints([0])), ValueError, r"gather: index of shape \(1,\) and x of shape \(3, 5\) differ in ndim"),
    (lambda: S.gather(Tensor(X), 1, ints(np.zeros((4, 1)))), ValueError, r"larger than x of shape \(3, 5\) outside dim 1"),
    (lambda: S.gather(Tensor(X), 1, ints([[5]])), IndexError, r"gather: index 5 is out of range for dim 1 of size 5"),
    (lambda: S.gather(Tensor(X), 1, ints([[-1]])), IndexError, r"gather: index -1 is out of range"),
    (lambda: S.take_along_dim(Tensor(X), ints([[-6]]), 1), IndexError, r"take_along_dim: index -6 is out of range"),
    (lambda: S.take_along_dim(Tensor(X), tc.tensor(np.zeros((1, 1), np.int32)), 1), TypeError, r"must be an int64 tensor"),
    (lambda: S.take_along_dim(Tensor(X), ints([[0], [0]]), 1), ValueError, r"indices of shape \(2, 1\) and x of shape \(3, 5\) do not broadcast"),
    (lambda: S.take_along_dim(Tensor(X), ints([0]), 1), ValueError, r"differ in ndim"),
    (lambda: S.masked_fill(Tensor(X), ints([1]), 0.0), TypeError, r"masked_fill: mask must be a bool tensor, got int64"),
    (lambda: S.masked_fill(Tensor(X), tc.tensor([True, False]), 0.0), ValueError, r"mask of shape \(2,\) and x of shape \(3, 5\)"),
    (lambda: S.masked_fill(Tensor(X), tc.tensor([True]), Tensor([1.0, 2.0])), ValueError, r"0-d tensor, got shape \(2,\)"),
    (lambda: S.masked_fill(Tensor(X), tc.tensor([True]), "a"), TypeError, r"value must be a number or a 0-d tensor, got str"),
    (lambda: S.repeat(Tensor(X), 2), ValueError, r"repeat: 1 sizes for a tensor of shape \(3, 5\)"),
    (lambda: S.repeat(Tensor(X), 2, -1), ValueError, r"repeat: sizes \(2, -1\) must be >= 0"),
    (lambda: S.repeat(Tensor(X)), TypeError, r"repeat: give the number of copies"),
    (lambda: S.repeat(Tensor(X), 2, 1.5), TypeError, r"repeat: sizes must be ints"),
    (lambda: S.flip(Tensor(X), (0, 0)), ValueError, r"repeats an axis"),
    (lambda: S.flip(Tensor(X), None), TypeError, r"flip: dims must be an int or a sequence"),
    (lambda: S.flip(Tensor(X), 2), ValueError, r"axis 2 is out of range"),
    (lambda: S.roll(Tensor(X), (1, 1), (1,)), ValueError, r"roll: 2 shifts for 1 dims"),
    (lambda: S.roll(Tensor(X), (1, 1)), ValueError, r"roll: 2 shifts without dims"),
    (lambda: S.roll(Tensor(X), 1.5, 0), TypeError, r"roll: shifts must be ints"),
    (lambda: S.roll(Tensor(X), 1, 2), ValueError, r"axis 2 is out of range"),
    (lambda: S.one_hot(tc.tensor([0, 2], dtype=tc.int32)), TypeError, r"one_hot: the class indices must be an int64 tensor"),
    (lambda: S.one_hot(ints([0, -1]), 3), ValueError, r"one_hot: class values must be >= 0, got -1"),
    (lambda: S.one_hot(ints([0, 3]), 3), ValueError, r"one_hot: class value 3 is not below num_classes=3"),
    (lambda: S.one_hot(ints([0]), -2), ValueError, r"num_classes must be an int >= 0, or -1"),
    (lambda: S.one_hot(ints(np.zeros(0))), ValueError, r"cannot infer num_classes from an empty tensor"),
    (lambda: S.randperm(-1), ValueError, r"randperm: n must be >= 0, got -1"),
    (lambda: S.randperm(2.0), TypeError, r"randperm: n must be an int, got 2.0"),
    (lambda: S.randperm(3, generator="x"), TypeError, r"randperm: generator must be None"),
    (lambda: S.randperm(3, dtype=tc.bool), TypeError, r"randperm: dtype bool"),
    (lambda: S.randperm(257, dtype=tc.uint8), ValueError, r"n=257 does not fit uint8"),
    (lambda: S.unique(Tensor(X), dim=0), ValueError, r"unique: dim=0 is not supported"),
]


@pytest.mark.parametrize("call, error, pattern", BAD)
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


OURS = types.SimpleNamespace(tensor=tc.tensor, **{name: getattr(S, name) for name in S.__all__})
TORCH_CASES = [
    lambda t, lib: lib.sort(t, dim=1, stable=True),
    lambda t, lib: lib.sort(t, dim=0, descending=True, stable=True),
    lambda t, lib: lib.argsort(t, dim=-1, descending=True, stable=True),
    lambda t, lib: lib.topk(t, 2, 1),
    lambda t, lib: lib.topk(t, 2, 0, largest=False),
    lambda t, lib: lib.gather(t, 1, lib.tensor([[0, 0], [3, 1], [4, 2]])),
    lambda t, lib: lib.take_along_dim(t, lib.tensor([[-1, 0]]), 1),
    lambda t, lib: lib.take_along_dim(t, lib.tensor([13, 2, 2])),
    lambda t, lib: lib.take_along_dim(t, lib.tensor([[13, 2], [14, 0]])),
    lambda t, lib: lib.masked_fill(t, lib.tensor([[True], [False], [True]]), -2.5),
    lambda t, lib: lib.flip(t, (0, 1)),
    lambda t, lib: lib.roll(t, (2, -1), (1, 0)),
    lambda t, lib: lib.roll(t, 7),
]


@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_as_pytorchs(case):
    torch = pytest.importorskip("torch")
    fn = TORCH_CASES[case]
    x = np.round(X * 2) / 2  # ties, for sort's order; topk's cases have none in their top 2
    mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = fn(mine, OURS), fn(theirs, torch)
    outs, touts = (y, ty) if isinstance(ty, tuple) else ((y,), (ty,))
    for o, to in zip(outs, touts):
        assert str(o.dtype) == str(to.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(o.data, to.detach().numpy())
    if ty.__class__ is not torch.Tensor or ty.dtype.is_floating_point:
        w = np.random.default_rng(case).standard_normal(outs[0].shape)
        (outs[0] * Tensor(w)).sum().backward()
        (touts[0] * torch.tensor(w)).sum().backward()
        np.testing.assert_array_equal(mine.grad.data, theirs.grad.numpy())


def test_as_pytorchs_tensor_methods_and_the_rest():
    torch = pytest.importorskip("torch")
    x = np.arange(6.0).reshape(2, 3)
    for reps in [(2, 2), (1, 3, 1), (0, 2), (2, 1, 1, 2)]:
        np.testing.assert_array_equal(S.repeat(Tensor(x), *reps).data, torch.tensor(x).repeat(*reps).numpy())
    labels = np.array([[0, 3], [2, 2]])
    np.testing.assert_array_equal(S.one_hot(ints(labels)).data,
                                  torch.nn.functional.one_hot(torch.tensor(labels)).numpy())
    np.testing.assert_array_equal(S.one_hot(ints(labels), 6).data,
                                  torch.nn.functional.one_hot(torch.tensor(labels), 6).numpy())
    v = np.array([[3.0, NAN], [1.0, 3.0]])
    for mine, theirs in zip(S.unique(Tensor(v), return_inverse=True, return_counts=True),
                            torch.unique(torch.tensor(v), return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(mine.data, theirs.numpy())
    t = torch.tensor([3.0, 1.0, 3.0, 2.0, NAN, 1.0])
    for descending in (False, True):
        torch_sorted = torch.sort(t, descending=descending, stable=True)
        np.testing.assert_array_equal(S.sort(Tensor(t.numpy()), descending=descending).indices.data,
                                      torch_sorted.indices.numpy())


def test_review_edges_flip_keyword_and_masked_fill_overflow():
    x = tc.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.flip(dims=[1]).data, np.flip(x.data, 1))
    np.testing.assert_array_equal(x.flip(0, 1).data, np.flip(x.data, (0, 1)))
    with pytest.raises(TypeError, match="takes the dims once"):
        x.flip()
    mask = tc.tensor([True, False])
    for data, dtype, value in [([1, 2], tc.int32, 2 ** 40), ([1, 2], tc.int64, float("nan")),
                               ([1.0, 2.0], tc.float32, 1e300), ([1, 2], tc.uint8, -1)]:
        with pytest.raises(ValueError, match="cannot be converted to .* without overflow"):
            tc.tensor(data, dtype=dtype).masked_fill(mask, value)
    assert tc.tensor([1.0, 2.0]).masked_fill(mask, float("inf")).data[0] == np.inf
    assert tc.tensor([1, 2]).masked_fill(mask, 1.5).data.tolist() == [1, 2]
