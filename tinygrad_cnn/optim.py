"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, with the update rules of PyTorch.

An optimizer holds the parameter Tensors and updates their arrays in place from ``.grad``; its
state (step count, momentum buffers, moments, hyperparameters) round-trips through
``state_dict()`` / ``load_state_dict()`` so that a resumed run continues bit for bit.
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np

from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


def _hyperparameter(owner: str, name: str, value: Any, below_one: bool = False) -> float:
    """A finite real number >= 0 (and < 1 for Adam's betas): NaN or inf here would silently
    turn every weight into NaN at the first step."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (below_one and value >= 1):
        raise ValueError(f"{owner}: {name} must be {'in [0, 1)' if below_one else 'finite and >= 0'}, "
                         f"got {value!r}")
    return value


class Optimizer:
    """Base class: `params` (Tensors that require grad), `zero_grad()`, `step()`, state dicts."""

    hyperparameters: tuple[str, ...] = ("lr",)
    buffers: tuple[str, ...] = ()  # one array per parameter, shaped like it
    counters: tuple[str, ...] = ()  # one int per parameter

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"{name} takes an iterable of Tensors (e.g. model.parameters() or [w]), got "
                            f"{'a single Tensor' if isinstance(params, Tensor) else type(params).__name__}")
        self.params = list(params)
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once in params")
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a Tensor that requires grad")
        self.lr = _hyperparameter(name, "lr (the learning rate)", lr)
        self.step_count = 0
        self.state: dict[str, list[np.ndarray | None]] = {
            name: [None] * len(self.params) for name in self.buffers + self.counters}

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        self.step_count += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                with in_place(p.data):  # a graph still holding p counts a new version of it
                    self._update(i, p.data, p.grad.data)

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Hyperparameters, the step count and every per-parameter buffer, as arrays."""
        state: OrderedDict[str, np.ndarray] = OrderedDict(
            (name, np.asarray(getattr(self, name), dtype=np.float64)) for name in self.hyperparameters)
        state["step_count"] = np.asarray(self.step_count, dtype=np.int64)
        for name, values in self.state.items():
            for i, value in enumerate(values):
                if value is not None:
                    state[f"{name}.{i}"] = value.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved; a key or shape that does not fit is a ValueError."""
        if not isinstance(state, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict takes a dict of arrays, got {type(state).__name__}")
        expected = set(self.hyperparameters) | {"step_count"}
        missing = sorted(expected - set(state))
        per_param = self.buffers + self.counters
        buffers: dict[str, list[np.ndarray | None]] = {name: [None] * len(self.params) for name in per_param}
        unexpected = []
        for key, value in state.items():
            if key in expected:
                continue
            name, _, index = key.rpartition(".")
            if name not in buffers or not index.isdigit() or int(index) >= len(self.params):
                unexpected.append(key)
                continue
            param = self.params[int(index)]
            shape, dtype = ((), np.int64) if name in self.counters else (param.shape, param.dtype)
            if np.shape(value) != shape:
                raise ValueError(f"{type(self).__name__} state {key!r} has shape {np.shape(value)}, "
                                 f"expected {shape} for parameter {index}")
            buffers[name][int(index)] = np.array(value, dtype=dtype, copy=True)
        for i in range(len(self.params)):  # a parameter's buffers are all there or all absent
            present = [name for name in per_param if buffers[name][i] is not None]
            if present and len(present) != len(per_param):
                missing += [f"{name}.{i}" for name in per_param if buffers[name][i] is None]
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__} state dict does not fit: missing {missing}, "
                             f"unexpected {sorted(unexpected)}")
        for name in self.hyperparameters:
            setattr(self, name, type(getattr(self, name))(np.asarray(state[name]).item()))
        self.step_count = int(np.asarray(state["step_count"]).item())
        self.state = buffers

    def __repr__(self) -> str:
        settings = ", ".join(f"{n}={getattr(self, n)}" for n in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``:

        g = ∂C/∂w + weight_decay · w            (L2 regularisation)
        v = g on the first step, then momentum · v + g
        w -= lr · (g + momentum · v  if nesterov  else  v)      (just lr · g without momentum)
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")
    buffers = ("momentum_buffer",)

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _hyperparameter("SGD", "momentum", momentum)
        self.weight_decay = _hyperparameter("SGD", "weight_decay", weight_decay)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            v = self.state["momentum_buffer"][i]
            if v is None:
                v = self.state["momentum_buffer"][i] = g.copy()
            else:
                v *= self.momentum
                v += g
            g = g + self.momentum * v if self.nesterov else v
        w -= self.lr * g


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (weight decay is L2 added to the gradient):

        g = ∂C/∂w + weight_decay · w
        m = β1·m + (1−β1)·g        v = β2·v + (1−β2)·g²
        w -= lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + eps)

    t counts the updates of each parameter (a parameter without a gradient on some steps keeps
    its own count, as in PyTorch).
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")
    counters = ("step",)

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {len(betas)} values {tuple(betas)}")
        self.beta1 = _hyperparameter("Adam", "betas[0]", betas[0], below_one=True)
        self.beta2 = _hyperparameter("Adam", "betas[1]", betas[1], below_one=True)
        self.eps = _hyperparameter("Adam", "eps", eps)
        self.weight_decay = _hyperparameter("Adam", "weight_decay", weight_decay)

    def _update(self, i: int, w: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * w
        m, v = self.state["exp_avg"][i], self.state["exp_avg_sq"][i]
        if m is None:
            m = self.state["exp_avg"][i] = np.zeros_like(w)
            v = self.state["exp_avg_sq"][i] = np.zeros_like(w)
            self.state["step"][i] = np.zeros((), dtype=np.int64)
        self.state["step"][i] += 1
        t = int(self.state["step"][i])
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        step_size = self.lr / (1 - self.beta1 ** t)
        denominator = np.sqrt(v / (1 - self.beta2 ** t)) + self.eps
        w -= step_size * m / denominator
