"""RMSprop, as ``torch.optim.RMSprop``."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.optim import Optimizer, _hyperparameter

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (its argument order too):

        g = ∓∂C/∂w + weight_decay · w            (−∂C/∂w with maximize)
        v = α·v + (1−α)·g²                        (v starts at 0)
        s = √(v − ḡ²) + eps  with centered (ḡ = α·ḡ + (1−α)·g, from 0),  else  √v + eps
        b = momentum · b + g / s                  (with momentum; b starts at 0)
        w -= lr · b,  or  lr · g / s              without momentum

    As PyTorch's, a parameter keeps a momentum buffer only with momentum and ḡ (grad_avg) only
    when centered.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")
    buffers = ("square_avg", "momentum_buffer", "grad_avg")
    legacy_defaults = {"centered": False, "maximize": False}

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _check(self, key: str, value: Any) -> Any:
        if key == "alpha":
            return _hyperparameter("RMSprop", "alpha", value, below_one=True)
        if key in ("centered", "maximize"):
            return bool(value)
        return super()._check(key, value)

    def _buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("square_avg",) + ("momentum_buffer",) * (group["momentum"] > 0) + ("grad_avg",) * group["centered"]

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        alpha = group["alpha"]
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * w
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            mean = state["grad_avg"]
            mean += (1 - alpha) * (g - mean)
            scale = np.sqrt(v - mean * mean) + group["eps"]
        else:
            scale = np.sqrt(v) + group["eps"]
        scaled = g / scale
        if group["momentum"]:
            b = state["momentum_buffer"]
            b *= group["momentum"]
            b += scaled
            scaled = b
        w -= group["lr"] * scaled
