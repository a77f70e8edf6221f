"""Stochastic gradient descent, as ``torch.optim.SGD``."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.optim import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (its argument order too):

        g = ∓∂C/∂w + weight_decay · w            (−∂C/∂w with maximize; L2 regularisation)
        v = g on the first step, then momentum · v + (1 − dampening) · g
        w -= lr · (g + momentum · v  if nesterov  else  v)      (just lr · g without momentum)

    Nesterov needs a momentum > 0 and no dampening, as PyTorch's.
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov", "dampening", "maximize")
    buffers = ("momentum_buffer",)
    legacy_defaults = {"dampening": 0.0, "maximize": False}

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _check(self, key: str, value: Any) -> Any:
        return bool(value) if key in ("nesterov", "maximize") else super()._check(key, value)

    def _check_group(self, group: dict[str, Any]) -> None:
        if group["nesterov"] and (group["momentum"] == 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs a momentum > 0 and dampening 0, got momentum "
                             f"{group['momentum']!r} and dampening {group['dampening']!r}")

    def _buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return self.buffers if group["momentum"] else ()  # as PyTorch's: no buffer without momentum

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        momentum, dampening, weight_decay = group["momentum"], group["dampening"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay:
            g = g + weight_decay * w
        if momentum:
            v = state["momentum_buffer"]
            if "momentum_buffer" in state["new"]:  # PyTorch's first step: the gradient itself, undamped
                v[...] = g
            else:
                v *= momentum
                v += (1 - dampening) * g if dampening else g
            g = g + momentum * v if group["nesterov"] else v
        w -= group["lr"] * g
