"""Add your own op to tinygrad_cnn, and property-test it with tinygrad_cnn.testing.

An op is a `Function` subclass with two static methods side by side:

* ``forward(ctx, *inputs, **params)`` gets Tensors, computes a plain numpy array, and saves
  what the backward needs (``ctx.save_for_backward`` for input Tensors or the returned array,
  ``ctx.name = value`` for anything else);
* ``backward(ctx, dy)`` gets ∂C/∂y as a Tensor and returns ∂C/∂input for each input (or None),
  written with the framework's own ops, so the backward is itself recorded when asked
  (``create_graph=True``) and the op has second derivatives for free.

This script defines two ops: `Softplus` (elementwise) and `Correlate1d`, the article's overlay
in one dimension, whose backward is the same op again, as the 2-D convolution's is. Then it
checks each with hypothesis-drawn inputs: the forward against a numpy oracle, the gradient with
`gradcheck`, the second derivative with `gradgradcheck`; and it shows that `gradcheck` catches
a wrong backward. Run it from the repository root (needs hypothesis: pip install -e '.[test]'):

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
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ModuleNotFoundError:
    sys.exit("examples/custom_op.py needs hypothesis: pip install -e '.[test]'")

import tinygrad_cnn.functional as F
from tinygrad_cnn import Context, Function, Tensor
from tinygrad_cnn.testing import GradcheckError, gradcheck, gradgradcheck
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
    print("all checks passed")


if __name__ == "__main__":
    main()
