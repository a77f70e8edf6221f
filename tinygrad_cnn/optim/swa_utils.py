"""Weight averaging, as ``torch.optim.swa_utils``: `AveragedModel` keeps a running average of a
model's weights beside it during training, an equal-weight one (stochastic weight averaging,
SWA: Izmailov et al. 2018) or an exponential moving average (EMA, Polyak averaging with
exponential weights); `update_bn` recomputes a BatchNorm model's running statistics for the
averaged weights, and `SWALR` anneals the learning rate to a constant for the averaging phase.

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    for x, y in loader:
        ...; optimizer.step()
        ema.update_parameters(model)
    update_bn(loader, ema)      # or AveragedModel(..., use_buffers=True)
    ema(x_test)

The averaging functions work as PyTorch's: ``avg_fn(averaged, current, num_averaged)`` returns
the new average of one Tensor, ``multi_avg_fn(averaged_list, current_list, num_averaged)``
updates the arrays of a list of Tensors in place; `num_averaged` is a 0-d int64 Tensor.
"""
from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Callable, Iterable

import numpy as np

from tinygrad_cnn.function import no_grad
from tinygrad_cnn.nn.layers import _BatchNorm
from tinygrad_cnn.nn.modules import Module
from tinygrad_cnn.optim import Optimizer
from tinygrad_cnn.optim.lr_scheduler import LRScheduler
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]

AvgFn = Callable[[Tensor, Tensor, Tensor], Tensor]
MultiAvgFn = Callable[[list[Tensor], list[Tensor], Tensor], None]


def _decay(decay: Any) -> float:
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise TypeError(f"decay must be a real number, got {decay!r}")
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")
    return float(decay)


def _lerp(averaged: list[Tensor], current: list[Tensor], weight: float) -> None:
    """averaged += weight · (current − averaged), array by array, in place (integer arrays
    are computed in float64 and truncated back, as PyTorch's copy into an integer tensor)."""
    for a, c in zip(averaged, current):
        with in_place(a.data):  # a graph holding the old values sees a new version
            if np.issubdtype(a.dtype, np.floating):
                a.data += a.dtype.type(weight) * (c.data - a.data)
            else:
                np.copyto(a.data, a.data + weight * (c.data - a.data), casting="unsafe")


def _on_cpu(device: Any, owner: str) -> None:
    if device not in (None, "cpu"):
        raise ValueError(f"{owner}: device must be None or 'cpu' (arrays live in memory), got {device!r}")


def _copy(averaged: list[Tensor], current: list[Tensor]) -> None:
    for a, c in zip(averaged, current):
        with in_place(a.data):
            np.copyto(a.data, c.data, casting="unsafe")


def get_ema_multi_avg_fn(decay: float = 0.999) -> MultiAvgFn:
    """The exponential moving average, in place: W ← decay·W + (1 − decay)·W_model."""
    decay = _decay(decay)
    return lambda averaged, current, num_averaged: _lerp(averaged, current, 1 - decay)


def get_swa_multi_avg_fn() -> MultiAvgFn:
    """The equal-weight average of the n + 1 models seen, in place: W ← W + (W_model − W)/(n + 1)."""
    return lambda averaged, current, num_averaged: _lerp(averaged, current, 1 / (int(num_averaged.data) + 1))


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """The exponential moving average of one Tensor: decay·W + (1 − decay)·W_model."""
    decay = _decay(decay)
    return lambda averaged, current, num_averaged: decay * averaged + (1 - decay) * current


def get_swa_avg_fn() -> AvgFn:
    """The equal-weight average of one Tensor: W + (W_model − W)/(n + 1)."""
    return lambda averaged, current, num_averaged: averaged + (current - averaged) / (num_averaged + 1)


class AveragedModel(Module):
    """A copy of `model` (``self.module``) whose weights are a running average of the weights
    `model` passes through: each ``update_parameters(model)`` folds in its current weights,
    the first copies them. Called, it runs the copy. `avg_fn` or `multi_avg_fn` (at most one)
    says how to average; by default the equal-weight average (SWA). With `use_buffers` the
    buffers (BatchNorm's running statistics) are averaged too, else they are copied from
    `model` at each update. The buffer `n_averaged` counts the models averaged."""

    def __init__(self, model: Module, device: Any = None, avg_fn: AvgFn | None = None,
                 multi_avg_fn: MultiAvgFn | None = None, use_buffers: bool = False) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: model must be a Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        for fn, name in ((avg_fn, "avg_fn"), (multi_avg_fn, "multi_avg_fn")):
            if fn is not None and not callable(fn):
                raise TypeError(f"AveragedModel: {name} must be a function, got {type(fn).__name__}")
        _on_cpu(device, "AveragedModel")
        self.n_averaged = Tensor(np.zeros((), np.int64), dtype=np.int64)  # first, as PyTorch's state dict
        self.module = copy.deepcopy(model)
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, bool(use_buffers)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _averaged(self, model: Module) -> tuple[list[Tensor], list[Tensor]]:
        """This copy's Tensors that are averaged and `model`'s, in the same order."""
        if self.use_buffers:
            return (self.module.parameters() + self.module.buffers(), model.parameters() + model.buffers())
        return self.module.parameters(), model.parameters()

    @no_grad()
    def update_parameters(self, model: Module) -> None:
        """Fold `model`'s current weights (and with `use_buffers`, buffers) into the average."""
        mine, theirs = self._averaged(model)
        for kind, ours, its in (("parameters", mine, theirs), ("buffers", self.module.buffers(), model.buffers())):
            if [a.shape for a in ours] != [b.shape for b in its]:
                raise ValueError(f"AveragedModel.update_parameters: the model's {kind} do not match the averaged "
                                 f"copy's: {[b.shape for b in its]} against {[a.shape for a in ours]}")
        if int(self.n_averaged.data) == 0:
            _copy(mine, theirs)
        elif self.avg_fn is not None:
            for a, b in zip(mine, theirs):
                new = self.avg_fn(a.detach(), b.detach(), self.n_averaged)
                new = new.data if isinstance(new, Tensor) else np.asarray(new)
                with in_place(a.data):
                    np.copyto(a.data, new, casting="unsafe")
        else:
            (self.multi_avg_fn or get_swa_multi_avg_fn())(mine, theirs, self.n_averaged)
        if not self.use_buffers:  # the buffers follow the model's
            _copy(self.module.buffers(), model.buffers())
        self.n_averaged.data += 1


@no_grad()
def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute the running statistics of every BatchNorm layer of `model` from one pass over
    `loader` (batches of inputs, or tuples whose first element is the input), each batch
    weighing the same (the model runs in training mode, then goes back to its mode)."""
    _on_cpu(device, "update_bn")
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        for batch in loader:
            model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate from its value when this schedule takes over to `swa_lr`
    (one number or one per group) over `anneal_epochs` steps, by a cosine or linear ramp, then
    hold it there: lr = swa_lr·α + lr₀·(1 − α), α the ramp at step/anneal_epochs. As PyTorch's,
    each step recovers lr₀ from the group's lr as it is now (lr₀ = (lr − α₋·swa_lr)/(1 − α₋), α₋
    the ramp a step before), so the ramp starts from whatever lr another schedule left, even
    when both were made at the start of training."""

    def __init__(self, optimizer: Optimizer, swa_lr: float | list[float], anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"SWALR takes an optimizer, got {type(optimizer).__name__}")
        groups = optimizer.param_groups
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(groups)
        if len(swa_lrs) != len(groups) or any(isinstance(lr, bool) or not isinstance(lr, numbers.Real) or lr < 0
                                              for lr in swa_lrs):
            raise ValueError(f"SWALR: swa_lr must be a number >= 0 or one per parameter group ({len(groups)}), "
                             f"got {swa_lr!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs!r}")
        for group, lr in zip(groups, swa_lrs):
            group["swa_lr"] = float(lr)
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        super().__init__(optimizer, last_epoch)

    def _alpha(self, step: int) -> float:
        t = max(0.0, min(1.0, step / max(1, self.anneal_epochs)))
        return (1 - math.cos(math.pi * t)) / 2 if self.anneal_strategy == "cos" else t

    def lr_at(self, k: int, epoch: int) -> float:
        group = self.optimizer.param_groups[k]
        step = max(1, epoch) if self.anneal_epochs == 0 else epoch
        before, alpha = self._alpha(step - 1), self._alpha(step)
        start = group["swa_lr"] if before == 1 else (group["lr"] - before * group["swa_lr"]) / (1 - before)
        return group["swa_lr"] * alpha + start * (1 - alpha)
