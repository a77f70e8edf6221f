"""The public testing module catches what it promises to catch."""
import numpy as np
import pytest
from hypothesis import given, settings

from tinygrad_cnn import Function, Tensor
from tinygrad_cnn.testing import GradcheckError, gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst
from helpers import RawSquare, Square


class WrongSquare(Square):
    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * x * 2.01


class SavesOtherArray(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.data * 2)
        return x.data


def test_custom_function_passes_both_checks():
    x = np.linspace(-2, 2, 7)
    assert gradcheck(Square.apply, x)
    assert gradgradcheck(Square.apply, x)


def test_wrong_gradient_is_reported_with_worst_entry():
    x = np.array([[1.0, -3.0], [0.5, 2.0]])
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2, 2\)\).*entry \(0, 1\): analytic \S+ vs numeric"):
        gradcheck(WrongSquare.apply, x)


def test_missing_second_derivative_is_caught():
    x = np.linspace(-2, 2, 5)
    assert gradcheck(RawSquare.apply, x)
    with pytest.raises(GradcheckError):
        gradgradcheck(RawSquare.apply, x)


def test_random_direction_check_for_large_inputs():
    x = np.random.default_rng(0).standard_normal(3000)
    assert gradcheck(lambda x: (Square.apply(x)).sum(), x, max_entries=100)
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda x: WrongSquare.apply(x).sum(), x, max_entries=100)


def test_non_differentiated_arguments_pass_through():
    x = np.ones(3)
    assert gradcheck(lambda x, power, name: x ** power, x, 3, "label")
    constant = Tensor(np.ones(3))  # requires_grad=False: not differentiated
    assert gradcheck(lambda x, c: x * c, x, constant)


def test_tuple_outputs():
    assert gradcheck(lambda a, b: (a * b, a + b), np.ones(2), np.arange(2.0))


def test_save_for_backward_takes_inputs_or_output():
    with pytest.raises(TypeError, match="save_for_backward takes the op's input Tensors"):
        SavesOtherArray.apply(Tensor([1.0], requires_grad=True))


def test_no_differentiable_input():
    with pytest.raises(ValueError, match="no input to differentiate"):
        gradcheck(lambda n: Tensor(n), 3)


@settings(max_examples=50, deadline=None)
@given(tst.arrays(min_value=-2, max_value=3))
def test_arrays_respect_bounds(a):
    assert a.dtype == np.float64 and np.all(np.isfinite(a)) and a.min(initial=-2) >= -2 and a.max(initial=3) <= 3
    assert a.ndim <= 4 and all(1 <= n <= 5 for n in a.shape)


@settings(max_examples=30, deadline=None)
@given(tst.tensors(shape=(2, 3), dtype=np.float32))
def test_tensors_require_grad(t):
    assert isinstance(t, Tensor) and t.requires_grad and t.shape == (2, 3) and t.dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(tst.broadcastable_pairs())
def test_pairs_broadcast(pair):
    a, b = pair
    np.broadcast_shapes(a.shape, b.shape)


@settings(max_examples=80, deadline=None)
@given(tst.conv_args(ranks=(4,), modes=("valid",), strides=(2,)))
def test_conv_args_respect_choices(args):
    x, k, mode, stride = args
    assert k.ndim == 4 and mode == "valid" and stride == 2
    assert x.shape[-3] == k.shape[1] and x.shape[-2] >= k.shape[-2] and x.shape[-1] >= k.shape[-1]


def test_integer_arguments_are_not_differentiated():
    index = np.array([0, 0, 2])
    assert gradcheck(lambda x, i: x[i] * x[i], np.arange(4.0), index)


def test_apply_takes_tensors():
    with pytest.raises(TypeError, match=r"Square.apply takes Tensors.*ndarray at position 0"):
        Square.apply(np.ones(2))
