"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.optim import Optimizer, _hyperparameter

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (weight decay is L2 added to the gradient):

        g = ∓∂C/∂w + weight_decay · w           (−∂C/∂w with maximize)
        m = β1·m + (1−β1)·g        v = β2·v + (1−β2)·g²
        v̂ = v, or with amsgrad the largest v so far (max_exp_avg_sq)
        w -= lr · (m / (1−β1^t)) / (√(v̂ / (1−β2^t)) + eps)

    t counts the updates of each parameter (a parameter without a gradient on some steps keeps
    its own count, as in PyTorch). A group holds ``betas`` as a pair, as PyTorch's; the state dict
    keeps them as beta1 and beta2.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize")
    buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    counters = ("step",)
    legacy_defaults = {"amsgrad": False, "maximize": False}
    decoupled = False  # AdamW: the decay shrinks w itself, apart from the moments

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _check(self, key: str, value: Any) -> Any:
        name = type(self).__name__
        if key == "betas":
            if not isinstance(value, (tuple, list)):
                raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {value!r}")
            if len(value) != 2:
                raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {len(value)} values {tuple(value)}")
            return (_hyperparameter(name, "betas[0]", value[0], below_one=True),
                    _hyperparameter(name, "betas[1]", value[1], below_one=True))
        if key in ("beta1", "beta2"):
            return _hyperparameter(name, "betas[0]" if key == "beta1" else "betas[1]", value, below_one=True)
        if key in ("amsgrad", "maximize"):
            return bool(value)
        return super()._check(key, value)

    def _saved(self, group: dict[str, Any]) -> dict[str, Any]:
        values = dict(group, beta1=group["betas"][0], beta2=group["betas"][1])
        return {key: values[key] for key in self.hyperparameters}

    def _restore(self, group: dict[str, Any], saved: dict[str, Any]) -> None:
        group["betas"] = (self._check("beta1", saved["beta1"]), self._check("beta2", saved["beta2"]))
        for key in self.hyperparameters:
            if key not in ("beta1", "beta2"):
                group[key] = self._check(key, saved[key])

    def _buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return self.buffers if group["amsgrad"] else self.buffers[:2]  # as PyTorch's: the maximum with amsgrad only

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay and self.decoupled:
            w *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * w
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"]
            np.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1 ** t)
        denominator = np.sqrt(v / (1 - beta2 ** t)) + eps
        w -= step_size * m / denominator


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam whose weight decay shrinks the weights directly,
    w ← w − lr · weight_decay · w, before the moment update (decoupled, not added to the
    gradient); its default weight_decay is 0.01."""

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
