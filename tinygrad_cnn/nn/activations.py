"""The activations of ``torch.nn.functional`` (re-exported there), each composed from the
primitives or one of them, so each differentiates twice.

`inplace=True` is accepted wherever PyTorch takes it, so that a model written for PyTorch
(``nn.ReLU(inplace=True)``) runs unchanged; the result is computed out of place and returned,
and the input is left as it was. Code that uses the returned tensor, as such models do, gets
PyTorch's values; code that relies on the input being overwritten does not.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from tinygrad_cnn import ops, tensor_ops
from tinygrad_cnn.functional import tensor_argument
from tinygrad_cnn.tensor import Tensor


def number(value: Any, name: str, low: float | None = None) -> float:
    """A finite real number (at least `low`), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (low is not None and value < low):
        raise ValueError(f"{name} must be a finite number{'' if low is None else f' >= {low}'}, got {value!r}")
    return float(value)


def inplace_flag(inplace: Any, name: str) -> bool:
    """PyTorch's `inplace` argument, checked: a bool (the work is done out of place either way)."""
    if not isinstance(inplace, bool):
        raise TypeError(f"{name}: inplace must be a bool, got {type(inplace).__name__} {inplace!r}")
    return inplace


def relu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002 -- torch's names
    """max(x, 0): the Relu primitive."""
    inplace_flag(inplace, "relu")
    return tensor_argument(input, "x").relu()


def leaky_relu(x: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, negative_slope · x elsewhere (the slope's gradient at 0, as PyTorch)."""
    x, _ = tensor_argument(x, "x"), inplace_flag(inplace, "leaky_relu")
    return tensor_ops.where(x > 0, x, x * number(negative_slope, "negative_slope"))


def elu(x: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, alpha · (e^x − 1) elsewhere; e^x of min(x, 0), so that a large x cannot
    overflow the branch it does not take (whose gradient would then be 0 · ∞)."""
    x, _ = tensor_argument(x, "x"), inplace_flag(inplace, "elu")
    return tensor_ops.where(x > 0, x, (x.clamp(max=0).exp() - 1) * number(alpha, "alpha"))


def silu(x: Any, inplace: bool = False) -> Tensor:
    """x · σ(x) (swish): the Silu primitive, whose backward is one pass (SiluBackward)."""
    inplace_flag(inplace, "silu")
    return ops.Silu.apply(tensor_ops.floating(tensor_argument(x, "x")))


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x · Φ(x), Φ the standard normal's distribution function, ½(1 + erf(x/√2)) (the Erf
    primitive); with ``approximate="tanh"``, Φ(x) ≈ ½(1 + tanh(√(2/π)(x + 0.044715 x³))), as PyTorch."""
    x = tensor_argument(x, "x")
    if approximate == "none":
        return x * ((x * (1 / math.sqrt(2))).erf() + 1) * 0.5
    if approximate == "tanh":
        return x * (((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)).tanh() + 1) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """ln(1 + e^(βx))/β, and x itself where βx > threshold (as PyTorch). Each side of 0 has its own
    form that neither overflows nor loses small values to 1 + e^…: βx + ln(1 + e^(−βx)) above,
    ln(1 + e^(βx)) at and below, each fed only its own side's values (clamped), so the side not
    taken cannot give 0 · ∞, and the gradient at 0 is σ(0) = ½, as the smooth function's."""
    x = tensor_argument(x, "x")
    beta, threshold = number(beta, "beta", 1e-300), number(threshold, "threshold")
    z = x * beta
    return tensor_ops.where(z > threshold, x, log1p_exp(z) / beta)


def log1p_exp(z: Tensor) -> Tensor:
    """ln(1 + e^z) by its two one-sided forms, z + ln(1 + e^(−z)) above 0 and ln(1 + e^z) at and
    below, each fed only its own side's values (clamped): no overflow, no 0 · ∞ in the
    gradient, which is σ(z) everywhere (½ at 0, as the smooth function's)."""
    above, below = z.clamp(min=0), z.clamp(max=0)
    return tensor_ops.where(z > 0, above + ((-above).exp() + 1).log(), (below.exp() + 1).log())


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]. As PyTorch's, its gradient is 1 strictly inside and 0 at
    and beyond both ends (clamp's includes the ends); NaN stays NaN."""
    x, _ = tensor_argument(x, "x"), inplace_flag(inplace, "hardtanh")
    low, high = number(min_val, "min_val"), number(max_val, "max_val")
    if low > high:
        raise ValueError(f"hardtanh: min_val {low} must not exceed max_val {high}")
    return tensor_ops.where(x <= low, low, tensor_ops.where(x >= high, high, x))


def relu6(x: Any, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6) (MobileNetV2's activation)."""
    return hardtanh(x, 0.0, 6.0, inplace)


def hardsigmoid(x: Any, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6, PyTorch's piecewise-linear σ (gradient 1/6 strictly between −3 and 3)."""
    return relu6(tensor_ops.floating(tensor_argument(x, "x")) + 3, inplace) / 6


def hardswish(x: Any, inplace: bool = False) -> Tensor:
    """x · relu6(x + 3) / 6 (MobileNetV3's activation)."""
    x = tensor_ops.floating(tensor_argument(x, "x"))
    return x * relu6(x + 3, inplace) / 6


__all__ = ["relu", "leaky_relu", "elu", "silu", "gelu", "softplus", "hardtanh", "relu6", "hardsigmoid", "hardswish"]
