"""Adagrad, as ``torch.optim.Adagrad``."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.optim import Optimizer, _hyperparameter

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``:

        g = ∓∂C/∂w + weight_decay · w            (−∂C/∂w with maximize)
        sum += g²                                 (sum starts at initial_accumulator_value)
        w -= lr / (1 + (t − 1) · lr_decay) · g / (√sum + eps)

    t counts the updates of each parameter. As PyTorch's, every parameter's sum starts at the
    optimizer's initial_accumulator_value, even in a group that names its own (which the group
    keeps and saves, unused).
    """

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")
    buffers = ("sum",)
    counters = ("step",)

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        # checked here too: every sum starts from it, though each group may name its own
        initial_accumulator_value = _hyperparameter("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))

    def _check(self, key: str, value: Any) -> Any:
        return bool(value) if key == "maximize" else super()._check(key, value)

    def _new_buffer(self, name: str, w: np.ndarray) -> np.ndarray:
        return np.full_like(w, self.defaults["initial_accumulator_value"])

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * w
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total = state["sum"]
        total += g * g
        w -= clr * (g / (np.sqrt(total) + group["eps"]))
