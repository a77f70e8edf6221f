"""Small CNNs as functions of their input and parameters, and how far they sit from a kink
(numpy only; ``tinygrad_cnn.testing.strategies.networks`` draws them).

A `Network` is called like the functions the checks take -- ``net(x, *params)`` -- so that
``gradcheck(net, *net.inputs)`` differentiates with respect to the input and every parameter.
`kink_margin` measures the smallest distance from a kink that a forward pass meets: the
smallest |input| of a ReLU or LeakyReLU, and the smallest gap between the two largest values of
a max-pooling window. Finite differences with step eps, and float32 rounding, cross no kink
when that margin is far above both.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_cnn import nn
from tinygrad_cnn.function import no_grad
from tinygrad_cnn.tensor import Tensor


def _window_gaps(z: np.ndarray, layer: Any, clamped: bool) -> float:
    """The smallest top-two gap over the windows of max-pooling `layer` (without ceil_mode or
    dilation) on z (N, C, H, W). With `clamped` (z came out of a ReLU) a window whose largest
    values are both exactly 0 is no tie: those zeros do not move under a small perturbation."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    ph, pw = (layer.padding, layer.padding) if isinstance(layer.padding, int) else layer.padding
    padded = np.pad(z, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    windows = sliding_window_view(padded, (kh, kw), axis=(-2, -1))[:, :, ::sh, ::sw]
    top = np.sort(windows.reshape(-1, kh * kw), axis=-1)[:, -2:] if kh * kw > 1 else None
    if top is None or not top.size:
        return np.inf
    with np.errstate(invalid="ignore"):
        gaps = top[:, 1] - top[:, 0]
    gaps = np.where(np.isnan(gaps) | (clamped & (top[:, 1] == 0) & (top[:, 0] == 0)), np.inf, gaps)
    return float(gaps.min())


def kink_margin(model: nn.Sequential, x: np.ndarray) -> float:
    """The smallest distance to a kink met by ``model(x)`` in float64 (inf if none)."""
    margin, clamped = np.inf, False
    z = Tensor(x, dtype=np.float64)
    with no_grad():
        for layer in model:
            if isinstance(layer, (nn.ReLU, nn.LeakyReLU)) and z.numel():
                margin = min(margin, float(np.abs(z.data).min()))
            if isinstance(layer, nn.MaxPool2d):
                margin = min(margin, _window_gaps(z.data, layer, clamped))
            clamped = isinstance(layer, nn.ReLU)
            z = layer(z)
    return margin


class Network:
    """A drawn CNN: `model` (an nn.Sequential in float64), its input `x`, its parameters' values
    `params` (in ``named_parameters()`` order, named by `names`) and `margin`, the smallest
    distance to a kink its forward meets (`kink_margin`).

    ``net(x, *params)`` runs the model with the given Tensors in place of its parameters (the
    model's own are put back afterwards); ``net(x)`` with its own. `inputs` is (x, *params)."""

    def __init__(self, model: nn.Sequential, x: np.ndarray) -> None:
        self.model, self.x = model, x
        self._slots = []
        for name, _ in model.named_parameters():
            path, _, attribute = name.rpartition(".")
            module = model
            for part in path.split(".") if path else ():
                module = getattr(module, part)
            self._slots.append((module, attribute))
        self.names = [name for name, _ in model.named_parameters()]
        self.params = [tensor.data.copy() for _, tensor in model.named_parameters()]
        self.margin = kink_margin(model, x)

    @property
    def inputs(self) -> tuple[np.ndarray, ...]:
        return (self.x, *self.params)

    def __call__(self, x: Any, *params: Any) -> Tensor:
        if params and len(params) != len(self._slots):
            raise ValueError(f"Network takes x and {len(self._slots)} parameters ({', '.join(self.names)}), got "
                             f"{len(params)} parameters")
        saved = [getattr(module, attribute) for module, attribute in self._slots]
        try:
            for (module, attribute), value in zip(self._slots, params):
                setattr(module, attribute, value if isinstance(value, Tensor) else Tensor(value, requires_grad=True))
            return self.model(x if isinstance(x, Tensor) else Tensor(x))
        finally:
            for (module, attribute), value in zip(self._slots, saved):
                setattr(module, attribute, value)

    def __repr__(self) -> str:
        return f"Network(x {self.x.shape}, margin {self.margin:.3g}):\n{self.model!r}"
