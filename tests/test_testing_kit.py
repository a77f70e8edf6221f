"""The gradient-testing kit (tinygrad_cnn.testing) tested on ops built to be wrong: each bug of the
zoo below must be caught by the check meant for it, with the error type that says why; correct
ops at kinks must give NondifferentiableError, never GradcheckError; and random checks of
correct ops must not fail at all.

| broken op (a custom Function)                   | caught by                            | error             |
|-------------------------------------------------|--------------------------------------|-------------------|
| WrongSign: tanh with ∂ = −(1 − y²)               | gradcheck                            | GradcheckError    |
| MissingProductTerm: x·eˣ with ∂ = eˣ             | gradcheck                            | GradcheckError    |
| RawSquare: x², backward on .data (no graph)     | gradgradcheck (gradcheck passes)     | GradcheckError    |
| DetachedSquare: x², backward on x.detach()       | gradgradcheck (gradcheck passes)     | GradcheckError    |
| RowBias: x + b (1, C) with ∂b = dy[:1], not Σ    | gradcheck                            | GradcheckError    |
| RowBiasUnsummed: ∂b = dy, the broadcast shape    | gradcheck (the engine's shape check) | GradcheckError    |
| TransposedKernel: x ⋆ k with ∂x = dy ∗ kᵀ        | check_adjoint (adjoint identity)     | GradcheckError    |
| UnflippedKernel: 1-D x ⋆ k with ∂x = dy ⋆ k      | check_adjoint (adjoint identity)     | GradcheckError    |
| StridedConvBias: stride-2 conv, ∂b = s²·Σ dy     | gradcheck                            | GradcheckError    |
| ShiftedCorrelation: a "linear" op that adds 1    | check_adjoint (linearity)            | GradcheckError    |
| COrderBuffer: reads x's memory in C order        | gradcheck's layout run ('transposed')| GradcheckError    |
| Float32FastPath: float32 backward drops dy       | gradcheck's float32 run              | GradcheckError    |
| Scale3: 3·x whose float32 backward uses 2.9      | check_adjoint's float32 run          | GradcheckError    |

Correct ops at kinks -- relu at 0 and ±1e-7, a pooling window with a near-tie, abs and log(x²)
at 1e-7 -- give NondifferentiableError from gradcheck and gradgradcheck, never a plain
GradcheckError.

The property tests' budget is KIT_EXAMPLES examples each (the environment variable
TINYGRAD_CNN_KIT_EXAMPLES raises it for a long local run, as TINYGRAD_CNN_FUZZ_EXAMPLES does for
tests/test_fuzz.py); CI's hypothesis profile derandomizes them.
"""
from __future__ import annotations

import builtins
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
import tinygrad_cnn.nn.functional as NF
from tinygrad_cnn import Function, Tensor, nn
from tinygrad_cnn.ops.conv import Correlate2dGradK, input_grad
from tinygrad_cnn.testing import (GradcheckError, NondifferentiableError, assert_matches_torch, check_adjoint,
                                  gradcheck, gradgradcheck)
from tinygrad_cnn.testing import layouts as L
from tinygrad_cnn.testing import strategies as tst
from helpers import RawSquare, Square

KIT_EXAMPLES = int(os.environ.get("TINYGRAD_CNN_KIT_EXAMPLES", 200))
rng = np.random.default_rng(19)


def raises_exactly(error_type, check, *args, match=None, **kwargs):
    """Run check(*args) and return the error, which must be of exactly `error_type` (a plain
    GradcheckError is not a NondifferentiableError, and the other way round)."""
    with pytest.raises(GradcheckError, match=match) as info:
        check(*args, **kwargs)
    assert type(info.value) is error_type, f"{type(info.value).__name__}: {info.value}"
    return info.value


# ---- the zoo ----------------------------------------------------------------------------------
class Tanh(Function):
    """A correct tanh that saves its output."""

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x.data)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return dy * (1 - y * y)


class WrongSign(Tanh):
    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return -(dy * (1 - y * y))


class MissingProductTerm(Function):
    """y = x·eˣ, whose derivative is eˣ + x·eˣ; the backward forgets the second term."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data * np.exp(x.data)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * x.exp()


class DetachedSquare(Square):
    """The right first derivative with x detached: its derivative in x is cut from the graph."""

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * x.detach() * 2


class RowBias(Function):
    """x (N, C) + b (1, C), b broadcast over the rows; ∂C/∂b must sum dy over them."""

    @staticmethod
    def forward(ctx, x, b):
        return x.data + b.data

    @staticmethod
    def backward(ctx, dy):
        return dy, dy[:1]  # the first row only: the broadcast gradient not summed back


class RowBiasUnsummed(RowBias):
    @staticmethod
    def backward(ctx, dy):
        return dy, dy  # the broadcast shape itself


def _valid_correlate(x, k, stride=(1, 1)):
    """x (N, C, H, W) ⋆ k (F, C, kh, kw), valid, strided (numpy)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape[-2:], axis=(-2, -1))[:, :, ::stride[0], ::stride[1]]
    return np.einsum("nchwij,fcij->nfhw", windows, k)


class TransposedKernel(Function):
    """z = x ⋆ k (valid); ∂C/∂x = dy ∗ k, written with kᵀ (the kernel's two axes swapped)."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x, k)
        return _valid_correlate(x.data, k.data)

    @staticmethod
    def backward(ctx, dy):
        x, k = ctx.saved_tensors
        wrong = k.swapaxes(-1, -2)
        return (input_grad(dy, wrong, x.shape, (0, 0, 0, 0), (1, 1)),
                Correlate2dGradK.apply(x, dy, kernel_size=k.shape[2:], padding=(0, 0, 0, 0), stride=(1, 1)))


class RightKernel(TransposedKernel):
    @staticmethod
    def backward(ctx, dy):
        x, k = ctx.saved_tensors
        return (input_grad(dy, k, x.shape, (0, 0, 0, 0), (1, 1)),
                Correlate2dGradK.apply(x, dy, kernel_size=k.shape[2:], padding=(0, 0, 0, 0), stride=(1, 1)))


class UnflippedKernel(Function):
    """1-D valid correlation y[i] = Σ_p x[i+p]·k[p]; ∂C/∂x is dy fully convolved with k (k
    reversed), written without the reversal."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x, k)
        return np.correlate(x.data, k.data, "valid")

    @staticmethod
    def backward(ctx, dy):
        x, k = ctx.saved_tensors
        m = k.shape[0]
        padded = np.pad(dy.data, m - 1)
        return Tensor(np.correlate(padded, k.data, "valid")), None


class StridedConvBias(Function):
    """z = x ⋆ k + b at stride 2 (valid); ∂C/∂x and ∂C/∂k right, ∂C/∂b computed as if dy had
    been spread over the stride-1 grid by repetition: s² times Σ dy."""

    @staticmethod
    def forward(ctx, x, k, b):
        ctx.save_for_backward(x, k)
        return _valid_correlate(x.data, k.data, (2, 2)) + b.data[:, None, None]

    @staticmethod
    def backward(ctx, dy):
        x, k = ctx.saved_tensors
        pads = (0, 0, 0, 0)
        return (input_grad(dy, k, x.shape, pads, (2, 2)),
                Correlate2dGradK.apply(x, dy, kernel_size=k.shape[2:], padding=pads, stride=(2, 2)),
                dy.sum(axis=(0, 2, 3)) * 4)


class ShiftedCorrelation(RightKernel):
    """Claimed linear in x, but its forward adds 1: affine."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x, k)
        return _valid_correlate(x.data, k.data) + 1


class COrderBuffer(Function):
    """2·x, with x's memory read as if it were C-contiguous (a raw-pointer kernel's bug)."""

    @staticmethod
    def forward(ctx, x):
        a = x.data
        c_strides = tuple(int(np.prod(a.shape[i + 1:])) * a.itemsize for i in range(a.ndim))
        if any(s < 0 for s in a.strides):  # (a raw pointer would read outside the buffer here)
            a = a.copy()
        return np.lib.stride_tricks.as_strided(a, a.shape, c_strides) * 2

    @staticmethod
    def backward(ctx, dy):
        return dy * 2


class Float32FastPath(Function):
    """eˣ, with a float32 'fast path' in the backward that forgets to multiply by dy."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.exp(x.data)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return x.exp() if x.dtype == np.float32 else dy * x.exp()


class Scale3(Function):
    """3·x, linear; its float32 backward multiplies by 2.9."""

    @staticmethod
    def forward(ctx, x):
        return 3 * x.data

    @staticmethod
    def backward(ctx, dy):
        return dy * (2.9 if dy.dtype == np.float32 else 3.0)


X = rng.standard_normal((3, 4))
IMAGE, KERNEL = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3))


def test_wrong_sign_is_caught_by_gradcheck():
    assert gradcheck(Tanh.apply, X)
    raises_exactly(GradcheckError, gradcheck, WrongSign.apply, X, match=r"gradient of input 0 \(shape \(3, 4\)\)")


def test_missing_product_rule_term_is_caught_by_gradcheck():
    error = raises_exactly(GradcheckError, gradcheck, MissingProductTerm.apply, X)
    assert "analytic" in str(error) and "numeric" in str(error)


@pytest.mark.parametrize("op", [RawSquare, DetachedSquare])
def test_second_derivative_cut_from_the_graph_is_caught_by_gradgradcheck(op):
    assert gradcheck(op.apply, X)  # the first derivative is right
    assert gradgradcheck(Square.apply, X)
    raises_exactly(GradcheckError, gradgradcheck, op.apply, X, match=r"gradgradcheck: gradient of input 0")


def test_broadcast_gradient_not_summed_back_is_caught_by_gradcheck():
    b = rng.standard_normal((1, 4))
    assert gradcheck(lambda x, b: x + b, X, b)
    raises_exactly(GradcheckError, gradcheck, RowBias.apply, X, b, match=r"gradient of input 1 \(shape \(1, 4\)\)")
    # unsummed to the broadcast shape: the engine's shape check, reported as the op's failure
    raises_exactly(GradcheckError, gradcheck, RowBiasUnsummed.apply, X, b,
                   match=r"backward pass raised RuntimeError: RowBiasUnsummed.backward returned a gradient of shape")


def test_transposed_kernel_in_the_input_gradient_is_caught_by_check_adjoint():
    assert check_adjoint(RightKernel.apply, IMAGE, KERNEL)
    raises_exactly(GradcheckError, check_adjoint, TransposedKernel.apply, IMAGE, KERNEL,
                   match=r"the adjoint identity ⟨fn\(x\), g⟩ = ⟨x, vjp\(g\)⟩ fails for input 0")


def test_check_adjoint_catches_what_finite_differences_at_rtol_1e_3_miss():
    """A kernel symmetric but for 1e-7 of its size: transposing it changes ∂C/∂x by ~1e-7,
    below gradcheck's tolerance, far above the adjoint identity's float64 rounding."""
    symmetric = KERNEL + KERNEL.swapaxes(-1, -2)
    nearly = symmetric + 1e-7 * rng.standard_normal(KERNEL.shape)
    assert gradcheck(TransposedKernel.apply, IMAGE, nearly, layouts=False, dtypes=())
    raises_exactly(GradcheckError, check_adjoint, TransposedKernel.apply, IMAGE, nearly, match="adjoint identity")


def test_unflipped_kernel_is_caught_by_check_adjoint():
    k = np.array([1.0, 2.0, -0.5])
    raises_exactly(GradcheckError, check_adjoint, UnflippedKernel.apply, rng.standard_normal(8), k,
                   match="adjoint identity")


def test_wrong_bias_gradient_of_a_strided_conv_is_caught_by_gradcheck():
    b = rng.standard_normal(3)
    correct = lambda x, k, b: NF.conv2d(x, k, b, stride=2)  # noqa: E731
    np.testing.assert_allclose(StridedConvBias.apply(Tensor(IMAGE), Tensor(KERNEL), Tensor(b)).data,
                               correct(Tensor(IMAGE), Tensor(KERNEL), Tensor(b)).data, rtol=1e-12)
    assert gradcheck(correct, IMAGE, KERNEL, b)
    raises_exactly(GradcheckError, gradcheck, StridedConvBias.apply, IMAGE, KERNEL, b,
                   match=r"gradient of input 2 \(shape \(3,\)\)")


def test_affine_op_fails_linearity():
    raises_exactly(GradcheckError, check_adjoint, ShiftedCorrelation.apply, IMAGE, KERNEL,
                   match=r"fn is not linear in input 0: fn\(a·x \+ y\) ≠ a·fn\(x\) \+ fn\(y\)")
    raises_exactly(GradcheckError, check_adjoint, F.relu, X, match="not linear")


def test_layout_bug_is_caught_by_the_layout_run():
    assert gradcheck(COrderBuffer.apply, X, layouts=False)  # in C order the op is right
    raises_exactly(GradcheckError, gradcheck, COrderBuffer.apply, X,
                   match=r"on inputs in the 'transposed' layout \(the same values, strides \(8, 24\)\), output 0")
    raises_exactly(GradcheckError, gradcheck, COrderBuffer.apply, X, layouts=["strided"], match="'strided' layout")
    # an input passed in another layout is run as it is, first
    raises_exactly(GradcheckError, gradcheck, COrderBuffer.apply, np.asfortranarray(X), layouts=["reversed"],
                   match=r"on the inputs in the layout they were passed in \(strides \(8, 24\)\)")


def test_float32_bug_is_caught_by_the_float32_run():
    assert gradcheck(Float32FastPath.apply, X, dtypes=())
    raises_exactly(GradcheckError, gradcheck, Float32FastPath.apply, X,
                   match=r"in float32 .*vᵀ·∂f/∂\(input 0\) differs from the float64 C-order run")
    assert check_adjoint(Scale3.apply, X, dtypes=())
    raises_exactly(GradcheckError, check_adjoint, Scale3.apply, X, match=r"in float32 .*vᵀ·∂f/∂\(input 0\)")


# ---- kinks told apart from bugs -----------------------------------------------------------------
@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
@pytest.mark.parametrize("value", [1e-7, -1e-7, 0.0, 3e-7])
def test_relu_near_its_kink_is_nondifferentiable_not_wrong(check, value):
    x = np.array([value, 1.5, -0.7])
    error = raises_exactly(NondifferentiableError, check, F.relu, x, match=r"input 0 \(shape \(3,\)\), entry \(0,\)")
    assert "not differentiable" in str(error)


def test_relu_away_from_its_kink_passes():
    assert gradcheck(F.relu, np.array([2e-6, 1.5, -0.7]))  # the kink is outside ±eps
    assert gradgradcheck(F.relu, np.array([2e-6, 1.5, -0.7]))


@pytest.mark.parametrize("gap", [1e-7, 0.0, -4e-7])
def test_pooling_window_with_a_near_tie_is_nondifferentiable(gap):
    x = np.array([[[1.0, 1.0 + gap, -2.0, 0.5], [0.25, -1.0, 3.0, 0.75]]])
    error = raises_exactly(NondifferentiableError, gradcheck, lambda x: F.maxpool2d(x, 2), x)
    assert "entry (0, 0, 0)" in str(error) or "entry (0, 0, 1)" in str(error)
    raises_exactly(NondifferentiableError, gradcheck, lambda x: NF.max_pool2d(x, 2, 1, padding=1), x)
    assert gradcheck(lambda x: F.maxpool2d(x, 2), x + np.array([[[0.0, 0.1, 0, 0], [0, 0, 0, 0]]]))


def test_abs_near_zero_and_a_singularity_are_nondifferentiable():
    assert gradcheck(lambda x: x.abs(), np.array([0.0, 1.0]))  # at 0 its subgradient 0 is the central difference
    raises_exactly(NondifferentiableError, gradcheck, lambda x: x.abs(), np.array([1e-7, 1.0]))
    raises_exactly(NondifferentiableError, gradcheck, lambda x: (x * x).log(), np.array([1e-7, 1.0]))


def test_a_wrong_gradient_is_reported_even_beside_a_kink():
    """A kink in one input does not hide a wrong gradient in another."""
    fn = lambda x, y: (F.relu(x).sum() + WrongSign.apply(y).sum())  # noqa: E731
    raises_exactly(GradcheckError, gradcheck, fn, np.array([1e-7, 2.0]), np.array([0.3, -0.4]),
                   match=r"gradient of input 1")
    right = lambda x, y: (F.relu(x).sum() + Tanh.apply(y).sum())  # noqa: E731
    raises_exactly(NondifferentiableError, gradcheck, right, np.array([1e-7, 2.0]), np.array([0.3, -0.4]))


def test_wrong_gradient_right_at_a_kink_free_point_stays_a_gradcheck_error():
    """Strong curvature is no kink: a wrong gradient of x³ at its inflection point."""
    class WrongCube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data ** 3

        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            return dy * (x * x * 3 + 0.01)

    raises_exactly(GradcheckError, gradcheck, WrongCube.apply, np.array([0.0, 1e-7, 2.0]))


# ---- layouts and dtypes -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["C", *L.LAYOUTS])
def test_every_layout_keeps_the_values(name):
    a = rng.standard_normal((2, 3, 4))
    b = L.in_layout(a, name)
    assert np.array_equal(a, b) and b.dtype == a.dtype
    assert b.flags.c_contiguous == (name == "C")
    assert L.in_layout(np.float64(2.5), name).shape == ()


def test_layout_and_dtype_keywords_are_checked():
    with pytest.raises(ValueError, match="layouts must be True, False or names from"):
        gradcheck(Square.apply, X, layouts=["diagonal"])
    with pytest.raises(ValueError, match="dtypes may hold float32"):
        gradcheck(Square.apply, X, dtypes=["float16"])
    with pytest.raises(ValueError, match="the tolerance of float32 must be a number > 0"):
        gradcheck(Square.apply, X, dtypes={"float32": -1})
    with pytest.raises(ValueError, match="gradcheck: eps must be a finite number > 0"):
        gradcheck(Square.apply, X, eps=0)


def test_ill_conditioned_float32_results_are_not_failures():
    """Results that cancel to ~0 in float64 but not in float32, or formulas that lose float32's
    digits (log(1 + x²) at x = 0.05), are rounding the float64 function shows too, not bugs."""
    assert gradcheck(lambda x: x.sum(), np.array([-0.05, 0.05, 0.15, -0.15]))
    assert gradcheck(lambda x: ((x * x + 1).log() * (x * x + 1).log() + 1).log(), np.array([-0.05, 0.05]))
    assert gradcheck(lambda x: NF.batch_norm(x, None, None, training=True), np.full((2, 1, 2, 2), 0.1) +
                     1e-6 * rng.standard_normal((2, 1, 2, 2)))


# ---- check_adjoint ------------------------------------------------------------------------------
def test_check_adjoint_on_the_linear_ops():
    w = rng.standard_normal((2, 3, 3, 3))
    assert check_adjoint(lambda x, k: NF.conv2d(x, k, stride=2, padding=1, dilation=2), IMAGE, KERNEL[:, :2])
    assert check_adjoint(lambda x, k: NF.conv2d(x, k, stride=(2, 1), padding=1), IMAGE, KERNEL[:, :2], wrt=1)
    assert check_adjoint(lambda x, k: NF.conv2d(x, k, groups=2), rng.standard_normal((1, 4, 5, 5)),
                         rng.standard_normal((2, 2, 3, 3)))
    assert check_adjoint(lambda x, w: NF.conv_transpose2d(x, w, stride=2, padding=1), rng.standard_normal((2, 2, 4, 4)),
                         w)
    assert check_adjoint(lambda x: x.reshape(4, 3).T[1:, :], X)
    idx = np.array([[0, 2], [1, 1]])
    assert check_adjoint(lambda x: x[idx], X)


def test_check_adjoint_arguments():
    with pytest.raises(ValueError, match=r"check_adjoint: wrt=2 is not the position of one of the 2 inputs"):
        check_adjoint(RightKernel.apply, IMAGE, KERNEL, wrt=2)
    with pytest.raises(TypeError, match="wrt must be an int"):
        check_adjoint(RightKernel.apply, IMAGE, KERNEL, wrt="x")
    with pytest.raises(TypeError, match=r"input 1 \(wrt\) must be a float array or Tensor, got str"):
        check_adjoint(lambda x, mode: F.correlate2d(x, x, mode), X, "valid", wrt=1)


# ---- assert_matches_torch -----------------------------------------------------------------------
def test_matches_torch_on_a_conv_layer():
    torch = pytest.importorskip("torch")
    b = rng.standard_normal(3)
    ours = lambda x, k, b: NF.conv2d(x, k, b, stride=2, padding=1).tanh()  # noqa: E731
    theirs = lambda x, k, b: torch.nn.functional.conv2d(x, k, b, stride=2, padding=1).tanh()  # noqa: E731
    assert assert_matches_torch(ours, theirs, IMAGE, KERNEL, b)
    assert assert_matches_torch(lambda x: F.maxpool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2), IMAGE)


def test_torch_mismatch_at_each_order_is_named():
    torch = pytest.importorskip("torch")
    with pytest.raises(GradcheckError, match=r"forward output 0 differs at entry \(\d, \d\): ours"):
        assert_matches_torch(lambda x: x.tanh(), lambda x: x.sin(), X)
    with pytest.raises(GradcheckError, match=r"first derivative vᵀ·∂f/∂\(input 0\) differs"):
        assert_matches_torch(WrongSign.apply, torch.tanh, X)
    with pytest.raises(GradcheckError, match=r"second derivative ∂\(vᵀ·J·w\)/∂\(input 0\) differs"):
        assert_matches_torch(RawSquare.apply, lambda x: x * x, X)
    assert assert_matches_torch(RawSquare.apply, lambda x: x * x, X, order=1)
    with pytest.raises(ValueError, match="order must be 0, 1 or 2, got 3"):
        assert_matches_torch(Square.apply, lambda x: x * x, X, order=3)


def test_without_torch_the_error_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match=r"assert_matches_torch needs PyTorch, which is not installed: pip install"):
        assert_matches_torch(Square.apply, lambda x: x * x, X)


# ---- strategies ---------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_layouts_strategy_keeps_values_and_changes_strides(data):
    a = data.draw(tst.arrays(min_value=-3, max_value=3))
    b = data.draw(tst.layouts(a))
    assert np.array_equal(a, b) and b.shape == a.shape and b.dtype == a.dtype
    c = data.draw(tst.layouts(rng.standard_normal((2, 3)), names=["strided"]))
    assert not c.flags.c_contiguous and not c.flags.f_contiguous


@settings(max_examples=40, deadline=None)
@given(tst.conv2d_args())
def test_conv2d_args_are_accepted(args):
    x, weight, bias, options = args
    y = NF.conv2d(x, weight, bias, **options)
    assert y.shape[:2] == (x.shape[0], weight.shape[0]) and min(y.shape[2:]) >= 1


@settings(max_examples=40, deadline=None)
@given(tst.max_pool2d_args())
def test_max_pool2d_args_are_accepted_and_tie_free(args):
    x, options = args
    assert NF.max_pool2d(x, **options).ndim == x.ndim
    values = np.sort(x.reshape(-1))
    assert values.size < 2 or np.diff(values).min() >= 1e-2 * (1 - 1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tst.networks())
def test_networks_are_away_from_kinks(net):
    assert net.margin > 1e-3
    assert isinstance(net.model, nn.Sequential) and net(net.x).shape[0] == net.x.shape[0]
    out = net(*net.inputs)
    np.testing.assert_array_equal(out.data, net(net.x).data)
    kinds = {type(layer).__name__ for layer in net.model}
    assert "Conv2d" in kinds


class Swish(nn.Module):
    """A layer of the user's own, to test inside whole networks."""

    def forward(self, x):
        return x * F.sigmoid(x)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(tst.networks(layer=lambda channels: Swish(), max_blocks=2))
def test_a_layer_of_ones_own_inside_networks(net):
    assert any(isinstance(layer, Swish) for layer in net.model)
    assert gradcheck(net, *net.inputs, max_entries=8)


# ---- random checks of correct ops never fail -----------------------------------------------------
def _network_case(data):
    net = data.draw(tst.networks(), label="network")
    check = data.draw(st.sampled_from([gradcheck, gradgradcheck]), label="check")
    return check(net, *net.inputs, max_entries=6)


def _adjoint_case(data):
    x, weight, bias, options = data.draw(tst.conv2d_args(), label="conv2d")
    wrt = data.draw(st.sampled_from([0, 1]), label="wrt")
    return check_adjoint(lambda x, w: NF.conv2d(x, w, None, **options), x, weight, wrt=wrt)


def _pool_case(data):
    x, options = data.draw(tst.max_pool2d_args(), label="max_pool2d")
    check = data.draw(st.sampled_from([gradcheck, gradgradcheck]), label="check")
    return check(lambda x: NF.max_pool2d(x, **options), x)


def _conv_case(data):
    x, weight, bias, options = data.draw(tst.conv2d_args(), label="conv2d")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return gradcheck(lambda *a: NF.conv2d(*a[:2], a[2] if len(a) > 2 else None, **options).tanh(), *inputs,
                     max_entries=12)


@settings(max_examples=KIT_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(st.data())
def test_random_checks_of_correct_ops_do_not_fail(data):
    """Whole networks away from kinks (gradcheck and gradgradcheck), convolutions' adjoints,
    pooling without ties, convolutions with every option: no GradcheckError of either kind."""
    case = data.draw(st.sampled_from([_network_case, _network_case, _adjoint_case, _pool_case, _conv_case]),
                     label="case")
    event(case.__name__)
    assert case(data) is True


@settings(max_examples=KIT_EXAMPLES, deadline=None)
@given(tst.arrays(max_value=3, min_value=-3), st.sampled_from(["relu", "abs", "maxpool"]))
def test_kinked_ops_anywhere_give_nondifferentiable_never_a_wrong_gradient(x, op):
    """relu, abs and max pooling at any point hypothesis finds -- zeros, ties, 1e-300 -- pass or
    raise NondifferentiableError: their gradients are right wherever they exist."""
    fn = {"relu": F.relu, "abs": lambda x: x.abs(),
          "maxpool": lambda x: F.maxpool2d(x, 1 if x.ndim < 2 else (min(2, x.shape[-2]), min(2, x.shape[-1])))}[op]
    if op == "maxpool" and x.ndim < 2:
        x = x.reshape(1, -1)
    try:
        gradcheck(fn, x)
        gradgradcheck(fn, x)
        event("passed")
    except NondifferentiableError:
        event("NondifferentiableError")


def test_the_checks_need_numpy_only():
    """gradcheck, check_adjoint and the rest import without hypothesis (the `testing` extra is for
    the strategies alone)."""
    import subprocess

    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import numpy as np, tinygrad_cnn.testing as t\n"
            "assert t.gradcheck(lambda x: x * x, np.ones(3)) and t.check_adjoint(lambda x: x * 2, np.ones(3))\n"
            "try:\n    import tinygrad_cnn.testing.strategies\nexcept ImportError:\n    print('strategies need hypothesis')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "strategies need hypothesis"


def test_network_takes_its_input_and_all_its_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64, rng=0), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 1, dtype=np.float64, rng=0))
    from tinygrad_cnn.testing.networks import Network

    net = Network(model, rng.standard_normal((1, 1, 4, 4)))
    assert net.names == ["0.weight", "0.bias", "3.weight", "3.bias"] and len(net.inputs) == 5
    doubled = [p * 2 for p in net.params]
    assert not np.allclose(net(net.x, *doubled).data, net(net.x).data)
    assert np.array_equal(model[0].weight.data, net.params[0])  # its own parameters are put back
    with pytest.raises(ValueError, match=r"Network takes x and 4 parameters \(0.weight, 0.bias, 3.weight, 3.bias\), "
                                         r"got 1"):
        net(net.x, net.params[0])


def test_networks_refuses_unknown_activations():
    @given(tst.networks(activations=("swish",)))
    def draw(net):
        pass  # pragma: no cover

    with pytest.raises(ValueError, match=r"networks: activations must be names from \[.*'relu'.*\], got \['swish'\]"):
        draw()
