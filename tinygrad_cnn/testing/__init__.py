"""Checks for users' own ops, layers and compositions (public API); numpy is all they need.

* ``gradcheck(fn, *inputs)`` compares the analytic gradient that ``backward`` derives with
  central finite differences in float64; ``gradgradcheck`` does the same for the gradient of
  the gradient. A failure where fn has a kink, a jump or a tie along the entry checked raises
  ``NondifferentiableError`` (a ``GradcheckError``), a wrong gradient ``GradcheckError``.
* ``check_adjoint(fn, *inputs, wrt=0)``: for fn linear in one input, the identities
  ⟨fn(x), g⟩ = ⟨x, vjp(g)⟩ and fn(a·x + y) = a·fn(x) + fn(y), to float64 rounding.
* ``assert_matches_torch(ours, theirs, *inputs)``: forward, first and second derivatives
  against a PyTorch function (needs torch).

Each also runs fn on non-contiguous views of its inputs and in float32 and compares with the
float64 run (``tinygrad_cnn.testing.variants``). ``tinygrad_cnn.testing.strategies`` has
hypothesis strategies to draw inputs, layouts and whole networks (it needs hypothesis).
"""
from __future__ import annotations

from tinygrad_cnn.testing.adjoint import check_adjoint
from tinygrad_cnn.testing.errors import GradcheckError, NondifferentiableError
from tinygrad_cnn.testing.numerical import gradcheck, gradgradcheck
from tinygrad_cnn.testing.pytorch import assert_matches_torch

__all__ = ["gradcheck", "gradgradcheck", "check_adjoint", "assert_matches_torch", "GradcheckError",
           "NondifferentiableError"]
