"""Add your own op to tinygrad_cnn, and property-test it with tinygrad_cnn.testing.

An op is a `Function` subclass with two static methods side by side:

* ``forward(ctx, *inputs, **params)`` gets Tensors, computes a plain numpy array, and saves
  what the backward needs (``ctx.save_for_backward`` for input Tensors or the returned array,
  ``ctx.name = value`` for anything else);
* ``backward(ctx, dy)`` gets ∂C/∂y as a Tensor and returns ∂C/∂input for each input (or None),
  written with the framework's own ops, so the backward is itself recorded when asked
  (``create_graph=True``) and the op has second derivatives for free.

This script defines three ops: `Softplus` (elementwise), `Correlate1d`, the article's overlay
in one dimension, whose backward is the same op again, as the 2-D convolution's is, and `Hinge`,
max(x, 0), which has a kink. Then it checks each with hypothesis-drawn inputs: the forward
against a numpy oracle, the gradient with `gradcheck`, the second derivative with
`gradgradcheck` (both also run the op on non-contiguous inputs and in float32). It then shows
the rest of tinygrad_cnn.testing on them: `gradcheck` catching a wrong backward;
`check_adjoint` proving Correlate1d's backward is the exact transpose of its forward, and
catching one that forgets to flip the kernel; `NondifferentiableError` for Hinge at 1e-7 (a
kink, not a bug), and a property test that rejects such draws; the layout run catching an op
that reads its input's memory in C order; `assert_matches_torch` comparing Softplus with
PyTorch's (when torch is installed); and Softplus as a layer inside random CNNs from
`strategies.networks`. Run it from the repository root (needs hypothesis: pip install -e '.[test]'):

    python examples/custom_op.py                 # 25 drawn examples per property
    python examples/custom_op.py --examples 5    # quicker
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import tinygrad_cnn  # noqa: F401  (installed, or run from a checkout)
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
except ModuleNotFoundError:
    sys.exit("examples/custom_op.py needs hypothesis: pip install -e '.[test]'")

import tinygrad_cnn.functional as F
from tinygrad_cnn import Context, Function, Tensor
from tinygrad_cnn import nn
from tinygrad_cnn.testing import (GradcheckError, NondifferentiableError, assert_matches_torch, check_adjoint,
                                  gradcheck, gradgradcheck)
from tinygrad_cnn.testing import strategies as tst


# ---- 1. an elementwise op ----------------------------------------------------------------------

class Softplus(Function):
    """y = ln(1 + e^x), a smooth ReLU.   ∂C/∂x = dy · σ(x)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)            # an input Tensor: comes back in the backward
        return np.logaddexp(0, x.data)      # ln(e^0 + e^x), without overflow for large x

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return dy * F.sigmoid(x)            # framework ops: differentiable again


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


# ---- 2. an op whose backward is the op itself ---------------------------------------------------

class Pad1d(Function):
    """y = x with `width` zeros on both ends.   ∂C/∂x = dy without its ends."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, width: int) -> np.ndarray:
        ctx.width = width                   # a plain parameter: a ctx attribute
        return np.pad(x.data, width)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return dy[ctx.width:dy.shape[0] - ctx.width]


class Correlate1d(Function):
    """y = x ⋆ k, valid cross-correlation of x (n,) with k (m,), m ≤ n: y[i] = Σ_p x[i+p] k[p].

    ∂C/∂x = dy ∗ k  (full convolution: dy padded by m−1 zeros, correlated with k reversed)
    ∂C/∂k = x ⋆ dy  (valid cross-correlation)
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, k: Tensor) -> np.ndarray:
        ctx.save_for_backward(x, k)
        windows = np.lib.stride_tricks.sliding_window_view(x.data, k.shape[0])  # (n−m+1, m), no copy
        return windows @ k.data

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, k = ctx.saved_tensors
        m = k.shape[0]
        dx = correlate1d(Pad1d.apply(dy, width=m - 1), k[::-1]) if ctx.needs_input_grad[0] else None
        dk = correlate1d(x, dy) if ctx.needs_input_grad[1] else None
        return dx, dk


def correlate1d(x: Tensor, k: Tensor) -> Tensor:
    if x.ndim != 1 or k.ndim != 1 or not 1 <= k.shape[0] <= x.shape[0]:
        raise ValueError(f"correlate1d takes x (n,) and k (m,) with 1 <= m <= n, got {x.shape} and {k.shape}")
    return Correlate1d.apply(x, k)


# ---- 3. an op with a kink ---------------------------------------------------------------------

class Hinge(Function):
    """y = max(x, 0).   ∂C/∂x = dy · [x > 0] (a constant mask: the second derivative is 0)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.positive = x.data > 0
        return np.maximum(x.data, 0)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return dy * Tensor._make(ctx.positive.astype(dy.dtype))


# ---- property tests --------------------------------------------------------------------------

@st.composite
def signal_and_kernel(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """An x (n,) and a k (m,) with 1 <= m <= n <= 8, values in [-2, 2] (float64)."""
    m = draw(st.integers(1, 4))
    n = draw(st.integers(m, 8))
    x = draw(tst.arrays(shape=(n,), min_value=-2, max_value=2))
    return x, draw(tst.arrays(shape=(m,), min_value=-2, max_value=2))


def check_softplus(examples: int) -> int:
    seen = []

    # derandomize: the same examples every run; database=None: no .hypothesis folder in the cwd.
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None)
    @given(tst.arrays())  # any shape from () to 4 axes, values in [-10, 10]
    def softplus_properties(x: np.ndarray) -> None:
        np.testing.assert_allclose(softplus(Tensor(x)).data, np.log1p(np.exp(x)), rtol=1e-12, atol=1e-12)
        gradcheck(softplus, x)
        gradgradcheck(softplus, x)
        seen.append(x.shape)

    softplus_properties()
    return len(seen)


def check_correlate1d(examples: int) -> int:
    seen = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None)
    @given(signal_and_kernel())
    def correlate1d_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
        x, k = pair
        y = correlate1d(Tensor(x), Tensor(k)).data
        np.testing.assert_allclose(y, np.correlate(x, k, mode="valid"), rtol=1e-12, atol=1e-12)
        # The framework's own 2-D op on a single row agrees.
        np.testing.assert_allclose(y, F.correlate2d(x[None], k[None]).data[0], rtol=1e-12, atol=1e-12)
        gradcheck(correlate1d, x, k)
        gradgradcheck(correlate1d, x, k)
        seen.append(pair)

    correlate1d_properties()
    return len(seen)


def check_hinge(examples: int) -> tuple[int, int]:
    """Hinge at any drawn point: gradcheck passes, or says the point is a kink
    (NondifferentiableError), and the example is rejected; never a wrong gradient."""
    seen, kinks = [], []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.filter_too_much])
    @given(tst.arrays())
    def hinge_properties(x: np.ndarray) -> None:
        try:
            gradcheck(Hinge.apply, x)
        except NondifferentiableError:
            kinks.append(x.shape)
            assume(False)  # a point where the gradient does not exist: not a test of the rule
        seen.append(x.shape)

    hinge_properties()
    return len(seen), len(kinks)


class SoftplusLayer(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return softplus(x)


def check_in_networks(examples: int) -> int:
    """Softplus as a layer in random small CNNs (conv with stride, padding, dilation and groups,
    BatchNorm, pooling, activations, linear), drawn away from every kink of theirs."""
    seen = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(tst.networks(layer=lambda channels: SoftplusLayer(), max_blocks=2))
    def in_a_network(net: tst.Network) -> None:
        gradcheck(net, *net.inputs, max_entries=8)  # input and every parameter (3 directions each)
        seen.append(net)

    in_a_network()
    return len(seen)


class Correlate1dUnflipped(Correlate1d):
    """∂C/∂x written as dy padded and correlated with k -- the kernel not reversed."""

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, k = ctx.saved_tensors
        m = k.shape[0]
        return correlate1d(Pad1d.apply(dy, width=m - 1), k), correlate1d(x, dy)


def adjoint_checks() -> str:
    """Correlate1d is linear in x (and in k): its backward must be the exact transpose."""
    x, k = np.random.default_rng(0).standard_normal(9), np.array([0.5, -1.0, 2.0])
    check_adjoint(correlate1d, x, k, wrt=0)
    check_adjoint(correlate1d, x, k, wrt=1)
    try:
        check_adjoint(Correlate1dUnflipped.apply, x, k)
    except GradcheckError as error:
        return str(error)
    raise AssertionError("check_adjoint missed an unflipped kernel")


class DoubleFromCOrder(Function):
    """y = 2x, its forward reading x's memory as if it were C-contiguous (a raw-pointer slip)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        a = x.data
        c_strides = tuple(int(np.prod(a.shape[i + 1:])) * a.itemsize for i in range(a.ndim))
        return 2 * np.lib.stride_tricks.as_strided(a if min(a.strides, default=0) >= 0 else a.copy(), a.shape,
                                                   c_strides)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        return dy * 2


def layout_bug_is_caught() -> str:
    try:
        gradcheck(DoubleFromCOrder.apply, np.arange(6.0).reshape(2, 3))
    except GradcheckError as error:
        return str(error)
    raise AssertionError("the layout run missed a C-order read")


def torch_parity() -> str:
    try:
        import torch
    except ImportError:
        return "torch is not installed: assert_matches_torch skipped"
    x = np.linspace(-3, 3, 7)
    assert_matches_torch(softplus, torch.nn.functional.softplus, x)  # forward, first and second derivatives
    return "Softplus matches torch.nn.functional.softplus: forward, first and second derivatives"


class SoftplusWithAWrongBackward(Softplus):
    """The slip gradcheck is for: ∂C/∂x written as dy · y instead of dy · σ(x)."""

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return dy * softplus(x)


def wrong_backward_is_caught() -> str:
    try:
        gradcheck(SoftplusWithAWrongBackward.apply, np.linspace(-2, 2, 5))
    except GradcheckError as error:
        return str(error)
    raise AssertionError("gradcheck missed a wrong backward")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Define two ops and property-test them.")
    parser.add_argument("--examples", type=int, default=25, help="hypothesis examples per property")
    args = parser.parse_args(argv)

    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    softplus(x).sum().backward()
    print(f"softplus'([-1, 0, 2]) = {np.round(x.grad.data, 4)} (σ of each: the backward rule)")
    count = check_softplus(args.examples)
    print(f"Softplus: forward = log(1 + e^x); gradcheck and gradgradcheck pass on {count} drawn arrays")
    count = check_correlate1d(args.examples)
    print(f"Correlate1d: forward = np.correlate(x, k, 'valid'); gradcheck and gradgradcheck pass on "
          f"{count} drawn (x, k) pairs")
    message = wrong_backward_is_caught()
    print(f"a wrong backward is caught:\n  {message}")

    print(f"check_adjoint: Correlate1d's backward is the transpose of its forward; an unflipped kernel is "
          f"caught:\n  {adjoint_checks()}")
    try:
        gradcheck(Hinge.apply, np.array([1e-7, 2.0, -1.0]))
    except NondifferentiableError as error:
        print(f"Hinge at 1e-7 is a kink, not a bug:\n  {error}")
    passed, kinks = check_hinge(args.examples)
    print(f"Hinge: gradcheck passes on {passed} drawn arrays; {kinks} draws at a kink were rejected")
    print(f"a layout bug is caught:\n  {layout_bug_is_caught()}")
    print(torch_parity())
    count = check_in_networks(args.examples)
    print(f"Softplus inside random CNNs: gradcheck passes on {count} drawn networks")
    print("all checks passed")


if __name__ == "__main__":
    main()
