"""The errors the checks raise: one class for a wrong result, one subclass for a point where the
check cannot decide because the function is not differentiable there."""
from __future__ import annotations


class GradcheckError(AssertionError):
    """A check failed: an analytic gradient disagrees with finite differences, an adjoint or
    linearity identity does not hold, a layout or dtype run disagrees with the float64 one, or
    the op disagrees with PyTorch. The message names the check, the input and the entry."""


class NondifferentiableError(GradcheckError):
    """gradcheck or gradgradcheck failed only at entries where the function is not
    differentiable along the entry checked, within the finite-difference step: a kink (ReLU at
    0 or at 1e-7), a near-tie (two maxima of a pooling window), a jump, a singularity. The
    failure says nothing about the backward rule: draw the inputs away from such points
    (``hypothesis.assume``, or catch this error and reject the example)."""
