"""ReduceLROnPlateau, as torch's: the one schedule driven by a metric rather than by the step
count. Importable from ``tinygrad_cnn.optim.lr_scheduler``."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Sequence

from tinygrad_cnn.optim import Optimizer, _hyperparameter
from tinygrad_cnn.optim.lr_scheduler import LRScheduler

__all__ = ["ReduceLROnPlateau"]


def _count(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{owner}: {name} must be an int >= 0, got {value!r}")
    return int(value)


class ReduceLROnPlateau(LRScheduler):
    """Multiply every group's lr by `factor` (down to its `min_lr`) once the metric given to
    ``step(metric)`` has not improved for more than `patience` steps in a row, as torch's:

        improved:  metric < best·(1 − threshold)  (mode "min", threshold_mode "rel")
                   metric < best − threshold      ("min", "abs"); > best·(1 + threshold) or
                   > best + threshold in mode "max"
        after a reduction, `cooldown` steps count no bad step; a reduction smaller than `eps`
        is skipped.

    It scales whatever lr the groups have, so another schedule stepping the same optimizer
    composes with it as in PyTorch (a chainable one goes on from the reduced lr). Its state dict
    holds its place (best, the bad steps, the cooldown left), not its settings.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner} takes an optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer, self.mode, self.threshold_mode = optimizer, mode, threshold_mode
        self.factor = _hyperparameter(owner, "factor", factor, below_one=True)
        self.threshold = _hyperparameter(owner, "threshold", threshold)
        self.eps = _hyperparameter(owner, "eps", eps)
        self.patience, self.cooldown = _count(owner, "patience", patience), _count(owner, "cooldown", cooldown)
        count = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != count:
                raise ValueError(f"{owner}: min_lr must be a number or one per parameter group ({count}), "
                                 f"got {len(min_lr)} values")
            self.default_min_lr: float | None = None
            self.min_lrs = [_hyperparameter(owner, f"min_lr[{k}]", lr) for k, lr in enumerate(min_lr)]
        else:
            self.default_min_lr = _hyperparameter(owner, "min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * count
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    def _reset(self) -> None:
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        """Whether metric `a` improves on `best` by more than the threshold."""
        if self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold) if self.mode == "min" else a > best * (self.threshold + 1.0)
        return a < best - self.threshold if self.mode == "min" else a > best + self.threshold

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """One epoch's metric (a number, or a one-element Tensor or array): reduce the lrs if it
        is one bad epoch more than `patience`."""
        try:
            if isinstance(metrics, (str, bytes)):
                raise TypeError
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a number or a one-element Tensor, "
                            f"got {metrics!r}") from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):  # a group added since: the one min_lr, if there was one
            if self.default_min_lr is None:
                raise ValueError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, min_lr gave "
                                 f"{len(self.min_lrs)}: set min_lrs to one per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter, "min_lrs": list(self.min_lrs),
                "last_lr": list(self._last_lr)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Its place; the lrs are the optimizer's, restored by its own state dict, as PyTorch's."""
        if not isinstance(state, Mapping):
            raise TypeError(f"ReduceLROnPlateau.load_state_dict takes a dict, got {type(state).__name__}")
        missing = sorted({"last_epoch", "best", "num_bad_epochs", "cooldown_counter"} - set(state))
        if missing:
            raise ValueError(f"ReduceLROnPlateau state dict does not fit: missing {missing}")
        self.last_epoch, self.best = int(state["last_epoch"]), float(state["best"])
        self.num_bad_epochs, self.cooldown_counter = int(state["num_bad_epochs"]), int(state["cooldown_counter"])
        self.min_lrs = [float(lr) for lr in state.get("min_lrs", self.min_lrs)]
        current = [group["lr"] for group in self.optimizer.param_groups]
        self._last_lr = [float(lr) for lr in state.get("last_lr", current)]
