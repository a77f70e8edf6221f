"""Tensor construction, dtypes, attributes, operators and broadcasting."""
import weakref

import numpy as np
import pytest
from hypothesis import given, settings

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import strategies as tst


@pytest.mark.parametrize("data, dtype", [
    (np.ones(3, dtype=np.float32), np.float32),
    (np.ones(3, dtype=np.float64), np.float64),
    (np.ones(3, dtype=np.int64), np.float32),
    (np.ones(3, dtype=np.uint8), np.float32),
    (np.ones(3, dtype=np.bool_), np.float32),
    ([1, 2, 3], np.float32),
    ([[1.5, 2.0]], np.float32),
    (3, np.float32),
    (2.5, np.float32),
    (True, np.float32),
])
def test_dtype_rules(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=dtype))


def test_explicit_dtype():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(2), dtype="float32").dtype == np.float32
    assert Tensor([1, 2], dtype=np.int32).dtype == np.int32  # any supported dtype, on request
    with pytest.raises(TypeError, match="got float16"):
        Tensor([1, 2], dtype=np.float16)
    with pytest.raises(TypeError, match="float16 is not supported"):
        Tensor(np.ones(2, np.float16))


def test_constructor_copies():
    source = np.zeros(3)
    t = Tensor(source)
    source[0] = 5
    assert t.data[0] == 0


def test_attributes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a, requires_grad=True)
    assert t.shape == t.size() == (2, 3) and t.size(-1) == 3 and t.ndim == t.dim() == 2 and t.numel() == 6
    assert t.dtype == np.float32
    assert t.requires_grad and t.grad is None and t.is_leaf and t.grad_fn is None
    np.testing.assert_array_equal(t.T.data, a.T)
    np.testing.assert_array_equal(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.numpy() is t.data
    assert Tensor(4.0).item() == 4.0 and isinstance(Tensor(4.0).item(), float)
    with pytest.raises(ValueError, match="one element"):
        t.item()
    assert len(t) == 2
    d = (t * 2).detach()
    assert not d.requires_grad and d.is_leaf
    assert weakref.ref(t)() is t


def test_repr_shows_values_and_grad_status():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(Tensor([1.0], requires_grad=True)) == "Tensor([1.], requires_grad=True)"
    y = Tensor([1.0], requires_grad=True) * 2
    assert repr(y) == "Tensor([2.], grad_fn=<Mul>)"
    assert "dtype=float64" in repr(Tensor(np.ones(1)))


def test_scalar_operand_takes_tensor_dtype():
    t = Tensor(np.ones(2, dtype=np.float32))
    for result in (t + 1.5, 1.5 + t, t * np.float64(2), 2 ** t, t / 3, 3 - t, -t, t ** 2):
        assert result.dtype == np.float32


def test_two_tensors_promote_as_numpy():
    a = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_array_on_the_left_defers_to_tensor():
    t = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([10.0, 20.0]) - t
    assert isinstance(y, Tensor)
    np.testing.assert_array_equal(y.data, [9.0, 18.0])
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.data, [-1.0, -1.0])


@settings(max_examples=40, deadline=None)
@given(tst.broadcastable_pairs())
def test_binary_operators_match_numpy(pair):
    a, b = pair
    ta, tb = Tensor(a), Tensor(b)
    np.testing.assert_allclose((ta + tb).data, a + b)
    np.testing.assert_allclose((ta - tb).data, a - b)
    np.testing.assert_allclose((ta * tb).data, a * b)
    np.testing.assert_allclose((ta / (tb * tb + 1)).data, a / (b * b + 1))
    np.testing.assert_allclose((Tensor(np.abs(a) + 0.5) ** tb).data, (np.abs(a) + 0.5) ** b)


def test_reductions_match_numpy():
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    t = Tensor(a)
    for axis in (None, 0, 1, -1, (0, 2), ()):
        for keepdims in (False, True):
            np.testing.assert_allclose(t.sum(axis, keepdims).data, a.sum(axis=axis, keepdims=keepdims))
            np.testing.assert_allclose(t.mean(axis, keepdims).data, a.mean(axis=axis, keepdims=keepdims))
            np.testing.assert_allclose(t.max(axis=axis, keepdims=keepdims).data, a.max(axis=axis, keepdims=keepdims))


def test_movement_matches_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = Tensor(a)
    np.testing.assert_array_equal(t.reshape(4, 6).data, a.reshape(4, 6))
    np.testing.assert_array_equal(t.reshape((-1, 2)).data, a.reshape(-1, 2))
    np.testing.assert_array_equal(t.flatten().data, a.ravel())
    np.testing.assert_array_equal(t.flatten(1).data, a.reshape(2, 12))
    np.testing.assert_array_equal(t.T.data, a.T)
    np.testing.assert_array_equal(t.permute(1, 0, 2).data, a.transpose(1, 0, 2))
    np.testing.assert_array_equal(t.transpose(0, 2).data, a.swapaxes(0, 2))  # PyTorch's transpose: a swap
    np.testing.assert_array_equal(t.swapaxes(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(t[1, :, ::2].data, a[1, :, ::2])
    np.testing.assert_array_equal(t[[0, 1, 1], [2, 0, 0]].data, a[[0, 1, 1], [2, 0, 0]])
    np.testing.assert_array_equal(t[a > 10].data, a[a > 10])
    np.testing.assert_array_equal(t[..., None, 1].data, a[..., None, 1])
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) to \(5,\)"):
        t.reshape(5)
    with pytest.raises(ValueError, match="permutation"):
        t.permute(0, 0, 1)
    with pytest.raises(IndexError, match=r"shape \(2, 3, 4\)"):
        t[5]


def test_matmul_matches_numpy():
    rng = np.random.default_rng(1)
    for sa, sb in [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                   ((2, 1, 3, 4), (5, 4, 2)), ((5, 3, 4), (4, 2))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)
        np.testing.assert_allclose((a @ Tensor(b)).data, a @ b)
    with pytest.raises(ValueError, match=r"inner dimensions.*\(3, 4\).*\(3, 2\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((3, 2)))
    with pytest.raises(ValueError, match="batch axes"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((3, 4, 2)))


def test_an_integer_or_bool_tensor_indexes_and_a_float_one_is_a_clear_error():
    t = Tensor([5.0, 6.0, 7.0])
    with pytest.raises(TypeError, match="not a float32 tensor"):
        t[Tensor([1.0, 0.0, 1.0])]  # a float Tensor would be ambiguous: mask or positions?
    np.testing.assert_array_equal(t[np.array([True, False, True])].data, [5.0, 7.0])
    np.testing.assert_array_equal(t[t > 5.5].data, [6.0, 7.0])
    np.testing.assert_array_equal(t[t.argmax(keepdim=False)].data, 7.0)


def test_zero_dim_accepts_axis_0_and_minus_1():
    t = Tensor(3.0, requires_grad=True)
    for y in (t.sum(axis=0), t.mean(axis=-1), t.max(axis=0), t.swapaxes(0, -1)):
        assert y.shape == () and y.item() == 3.0
    with pytest.raises(ValueError, match="out of range"):
        t.sum(axis=1)


def test_truth_value_and_float_follow_numpy():
    assert bool(Tensor(1.0)) and not bool(Tensor([0.0]))
    assert float(Tensor([2.5])) == 2.5
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))


def test_max_over_nonempty_axis_of_empty_tensor():
    assert Tensor(np.zeros((0, 3))).max(axis=1).shape == (0,)
    with pytest.raises(ValueError, match="empty axis"):
        Tensor(np.zeros((0, 3))).max(axis=0)


def test_a_tensor_as_a_python_number_index_and_sequence_as_pytorchs():
    assert int(tc.tensor(3.7)) == 3 and [10, 20, 30][tc.tensor(1)] == 20 and list(range(tc.tensor(3))) == [0, 1, 2]
    x = tc.tensor(np.arange(12.0).reshape(3, 4))
    assert x[tc.tensor(1):tc.tensor(3)].shape == (2, 4)
    assert f"{tc.tensor(1.23456):.3f}" == "1.235" and f"{tc.tensor(1.5)}" == "1.5" and "Tensor(" in f"{x}"
    rows = list(x)  # one tensor per row, each still in the graph
    assert len(rows) == 3 and all(isinstance(r, Tensor) for r in rows)
    np.testing.assert_array_equal(rows[2].data, x.data[2])
    a, b = tc.tensor([1.0, 2.0])
    assert (a.item(), b.item()) == (1.0, 2.0)


def test_pytorchs_dtype_aliases_and_grad_mode_decorators():
    assert (tc.float, tc.double, tc.long, tc.int) == (tc.float32, tc.float64, tc.int64, tc.int32)
    assert tc.tensor([1], dtype=tc.long).dtype == np.int64 and tc.zeros(2, dtype=tc.double).dtype == np.float64

    @tc.no_grad  # without parentheses too, as torch.no_grad
    def doubled(v):
        return v * 2

    x = tc.tensor([1.0], requires_grad=True)
    assert not doubled(x).requires_grad and (x * 2).requires_grad
    with tc.no_grad():
        with tc.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad


def test_clamp_with_min_above_max_is_max_everywhere_as_pytorch():
    x = tc.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = x.clamp(1.0, 0.0)
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def test_float64_creation_keeps_every_digit():
    np.testing.assert_array_equal(tc.full((2,), 0.1, dtype=tc.float64).data, [0.1, 0.1])
    assert tc.full((1,), 1e40, dtype=tc.float64).item() == 1e40
    assert tc.full_like(tc.tensor(np.zeros(2)), 0.1).data[0] == 0.1
    np.testing.assert_array_equal(tc.arange(0, 1, 0.1, dtype=tc.float64).data, np.arange(0, 1, 0.1))
    assert tc.arange(-5, 5, 0.7).data[-1] == np.float32(4.8)  # float32 of the float64 value, no float32 drift
    draws = tc.randn(1000, dtype=tc.float64).data
    assert draws.dtype == np.float64 and np.any(draws != draws.astype(np.float32))


INDICES = [  # an int beside an array index: PyTorch selects with the int first, numpy does not
    (0, slice(None), [1, 3]), (0, [1, 2]), (slice(None), 1, slice(None), [0, 4]), (0, Ellipsis, [1, 3]),
    (None, 0, slice(None), [1, 2]), (1, slice(None), np.array([[True, False, True, False, True]] * 4)),
    (0, slice(1, 3), [0, 2], [1, 4]), ([0, 1], 2, slice(None), [1, 3]), (0, 1, [1, 3]), (slice(None), [0, 2]),
]


@pytest.mark.parametrize("index", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_mixed_int_and_array_indices_read_as_pytorch(index):
    torch = pytest.importorskip("torch")
    values = np.arange(120.0).reshape(2, 3, 4, 5)
    x, tx = Tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    y = x[index]
    ty = tx[tuple(torch.tensor(part) if isinstance(part, (list, np.ndarray)) else part for part in index)]
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    ty.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
