"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: built on an optimizer, each sets
every parameter group's lr (and OneCycleLR its momentum) at construction and at each ``step()``,
from the number of steps taken (``last_epoch``) and the group's initial lr, by the closed form of
PyTorch's schedule. Where something else moved a group's lr since the schedule last set it
(another schedule stepping the same optimizer, or a hand-set lr), StepLR, MultiStepLR,
ExponentialLR, LinearLR and CosineAnnealingLR scale what they find instead, by the step their
closed form takes (PyTorch's chainable form), so schedules compose as PyTorch's do.
CosineAnnealingWarmRestarts, LambdaLR and OneCycleLR set their closed form whatever moved the lr,
as PyTorch's. ``get_last_lr()`` gives the lrs set last; ``state_dict()`` and ``load_state_dict()``
carry a schedule across a resume.

SequentialLR and ChainedScheduler (compositions) live in ``lr_composite``, ReduceLROnPlateau (driven
by a metric rather than the step count) in ``lr_plateau``; all are importable from here, as torch's.
"""
from __future__ import annotations

import bisect
import math
import numbers
from typing import Any, Callable, Sequence

from tinygrad_cnn.optim import Optimizer, _hyperparameter

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "LinearLR", "OneCycleLR", "SequentialLR", "ChainedScheduler",
           "ReduceLROnPlateau"]


class LRScheduler:
    """Base class: a subclass gives the lr of group `k` after `epoch` steps (`lr_at`). A
    chainable one (`chain_offset` not None: the value its closed form scales about, 0 or an
    eta_min) scales an lr that something else moved by its own step's ratio."""

    chain_offset: float | None = None

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} takes an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, k: int, epoch: int) -> float:  # pragma: no cover
        raise NotImplementedError

    def step(self) -> None:
        """One step of the schedule (after the optimizer's step, as in PyTorch)."""
        self.last_epoch += 1
        self._apply(self.last_epoch, chain=True)

    def _apply(self, epoch: int, chain: bool = False) -> None:
        """Set each group's lr for `epoch`: the closed form (without `chain`, exactly), times a
        scale that is 1 until, with `chain`, a group's lr is found moved from the one this
        schedule set last (before its first step: from the initial lr); from then on the closed
        form is scaled (about `chain_offset`) to go on from the lr found, as PyTorch's chainable
        form does, until the closed form passes through the offset itself."""
        last = getattr(self, "_last_lr", self.base_lrs)
        self._scales = getattr(self, "_scales", [1.0] * len(self.base_lrs))
        offset = self.chain_offset
        groups = self.optimizer.param_groups
        for group in groups[len(self.base_lrs):] if chain and offset is not None and epoch > 0 else ():
            # a group added after this schedule was made: scaled by the step's ratio, as PyTorch's chainable form
            before, now = self.lr_at(0, epoch - 1), self.lr_at(0, epoch)
            if before != offset:
                group["lr"] = offset + (group["lr"] - offset) * (now - offset) / (before - offset)
        for k, group in enumerate(groups[:len(self.base_lrs)]):
            if not chain:  # the closed form itself (SequentialLR's milestone)
                self._scales[k] = 1.0
            elif offset is not None:
                before, closed = self.base_lrs[k] if epoch == 0 else self.lr_at(k, epoch - 1), self.lr_at(k, epoch)
                moved = group["lr"] != last[k]
                if before == offset and (moved or self._scales[k] != 1):  # no ratio from a cosine's bottom:
                    lr = group["lr"] + closed - before  # PyTorch's adds the step to the lr it finds
                    self._scales[k] = 1.0 if closed == offset else (lr - offset) / (closed - offset)
                elif moved and before != offset:
                    self._scales[k] = (group["lr"] - offset) / (before - offset)
            closed = self.lr_at(k, epoch)
            scale = self._scales[k]
            group["lr"] = closed if offset is None or scale == 1 else offset + scale * (closed - offset)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "last_lr": list(self._last_lr),
                "scales": list(getattr(self, "_scales", [1.0] * len(self.base_lrs)))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The schedule's position (and how far a composition or a hand-set lr moved it); the
        lrs themselves are the optimizer's, restored by its own state dict, as PyTorch's."""
        self.last_epoch, self.base_lrs = int(state["last_epoch"]), [float(lr) for lr in state["base_lrs"]]
        self._scales = [float(scale) for scale in state.get("scales", [1.0] * len(self.base_lrs))]
        current = [group["lr"] for group in self.optimizer.param_groups]
        self._last_lr = [float(lr) for lr in state.get("last_lr", current)]  # what it set: moves since then count


def _positive(owner: str, name: str, value: Any, integer: bool = False) -> Any:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, (int, float))
    if not ok or not value > 0:
        raise ValueError(f"{owner}: {name} must be a{'n int' if integer else ' number'} > 0, got {value!r}")
    return value


class LambdaLR(LRScheduler):
    """lr = initial lr · lr_lambda(epoch) (one function, or one per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        count = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * count
        if len(self.lr_lambdas) != count or not all(callable(f) for f in self.lr_lambdas):
            raise ValueError(f"LambdaLR: lr_lambda must be a function or one per parameter group ({count})")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        return self.base_lrs[k] * self.lr_lambdas[k](epoch)


class StepLR(LRScheduler):
    """lr = initial lr · gamma^⌊epoch / step_size⌋."""

    chain_offset = 0.0

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size, self.gamma = _positive("StepLR", "step_size", step_size, True), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        return self.base_lrs[k] * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = initial lr · gamma^(the number of milestones reached)."""

    chain_offset = 0.0

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        return self.base_lrs[k] * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = initial lr · gamma^epoch."""

    chain_offset = 0.0

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        return self.base_lrs[k] * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803
        self.T_max, self.eta_min = _positive("CosineAnnealingLR", "T_max", T_max), eta_min
        self.chain_offset = eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        return self.eta_min + (self.base_lrs[k] - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR's cosine with warm restarts (Loshchilov & Hutter 2017), as torch's: lr = eta_min +
    (initial lr − eta_min) · (1 + cos(π · T_cur / T_i)) / 2, T_cur the epochs since the last
    restart and T_i the current cycle's length, T_0 at first and T_mult times longer after each
    restart. ``step()`` goes one epoch on; ``step(epoch)`` goes to `epoch`, which may be a float
    (``epoch + i / batches`` to step every batch), and a later ``step()`` counts on from it."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        owner = "CosineAnnealingWarmRestarts"
        for name, value, least in (("T_0", T_0, 1), ("T_mult", T_mult, 1)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
            if value < least:
                raise ValueError(f"{owner}: {name} must be an int >= {least}, got {value!r}")
        self.T_0, self.T_i, self.T_mult = T_0, T_0, T_mult
        self.eta_min = _hyperparameter(owner, "eta_min", eta_min)
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:  # at the place in the cycle (T_cur, T_i) last set
        return self.eta_min + (self.base_lrs[k] - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2

    def _place(self, epoch: float) -> None:
        """T_cur and T_i at `epoch` epochs from the start, by torch's closed form."""
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** n

    def _apply(self, epoch: int, chain: bool = False) -> None:
        if chain and epoch > 0:  # one epoch on from the last: counted, as torch's (not its closed form)
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        else:  # the start, or SequentialLR's milestone
            self._place(epoch)
        super()._apply(epoch, chain)

    def step(self, epoch: float | None = None) -> None:
        """One epoch on, or to `epoch` (a number >= 0, fractional for a step per batch)."""
        if epoch is None:
            super().step()
            return
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or not 0 <= epoch < math.inf:
            raise ValueError(f"CosineAnnealingWarmRestarts.step: epoch must be a finite number >= 0, got {epoch!r}")
        self._place(epoch)
        self.last_epoch = math.floor(epoch)
        super()._apply(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "T_cur": self.T_cur, "T_i": self.T_i}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.T_cur, self.T_i = state["T_cur"], state["T_i"]


class LinearLR(LRScheduler):
    """lr = initial lr · (start_factor + (end_factor − start_factor) · min(epoch, total_iters) / total_iters)."""

    chain_offset = 0.0

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                             f"{start_factor} and {end_factor}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = _positive("LinearLR", "total_iters", total_iters, True)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, k: int, epoch: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return self.base_lrs[k] * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class OneCycleLR(LRScheduler):
    """The 1cycle policy, as torch's (cosine or linear annealing, two or three phases): the lr
    rises from max_lr/div_factor to max_lr over pct_start of total_steps, then falls to
    max_lr/(div_factor·final_div_factor); with cycle_momentum the momentum (SGD's momentum,
    Adam's beta1) moves the other way between max_momentum and base_momentum."""

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        self.total_steps = _positive("OneCycleLR", "total_steps", total_steps, True)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        count = len(optimizer.param_groups)
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * count
        self.anneal = self._cos if anneal_strategy == "cos" else self._linear
        up = float(pct_start * self.total_steps) - 1
        # (end step, lr factor start -> end, momentum start -> end) for each phase, as torch lays them out
        if three_phase:
            self.phases = [(up, "initial", "max", "max_m", "base_m"),
                           (2 * up, "max", "initial", "base_m", "max_m"),
                           (self.total_steps - 1, "initial", "min", "max_m", "max_m")]
        else:
            self.phases = [(up, "initial", "max", "max_m", "base_m"),
                           (self.total_steps - 1, "max", "min", "base_m", "max_m")]
        self.cycle_momentum = cycle_momentum
        for group, top in zip(optimizer.param_groups, max_lrs):
            group["initial_lr"] = top / div_factor
            group["max_lr"], group["min_lr"] = top, top / div_factor / final_div_factor
            if cycle_momentum:
                group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _linear(start: float, end: float, pct: float) -> float:
        return (end - start) * pct + start

    def _at(self, group: dict[str, Any], epoch: int) -> tuple[float, float | None]:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {epoch} times, past total_steps {self.total_steps}")
        names = {"initial": "initial_lr", "max": "max_lr", "min": "min_lr", "max_m": "max_momentum",
                 "base_m": "base_momentum"}
        start_step = 0.0
        for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self.phases):
            if epoch <= end_step or i == len(self.phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                lr = self.anneal(group[names[lr_from]], group[names[lr_to]], pct)
                momentum = self.anneal(group[names[m_from]], group[names[m_to]], pct) if self.cycle_momentum else None
                return lr, momentum
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply(self, epoch: int, chain: bool = False) -> None:  # the closed form only, as PyTorch's
        for group in self.optimizer.param_groups:
            group["lr"], momentum = self._at(group, epoch)
            if momentum is not None:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                elif "momentum" in group:
                    group["momentum"] = momentum
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


# The compositions and the metric-driven schedule, on the base class above.
from tinygrad_cnn.optim.lr_plateau import ReduceLROnPlateau  # noqa: E402
from tinygrad_cnn.optim.lr_composite import ChainedScheduler, SequentialLR  # noqa: E402
