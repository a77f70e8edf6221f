"""Schedules made of schedules, as torch's: `SequentialLR` hands the optimizer from one schedule
to the next at milestones, `ChainedScheduler` steps several at once. Both are importable from
``tinygrad_cnn.optim.lr_scheduler``; their state dicts hold their schedules' own."""
from __future__ import annotations

import bisect
from typing import Any, Sequence

from tinygrad_cnn.optim import Optimizer
from tinygrad_cnn.optim.lr_plateau import ReduceLROnPlateau
from tinygrad_cnn.optim.lr_scheduler import LRScheduler

__all__ = ["SequentialLR", "ChainedScheduler"]


def _schedules(owner: str, schedulers: Any, optimizer: Any) -> tuple[list[LRScheduler], Optimizer]:
    """`schedulers` as a list, checked as torch checks them: at least one, each a schedule stepped
    by step() alone (not ReduceLROnPlateau, whose step needs the metric), all driving one
    optimizer (`optimizer`, or by default the first schedule's)."""
    if isinstance(schedulers, LRScheduler) or not isinstance(schedulers, (list, tuple)):
        raise TypeError(f"{owner} takes a list of schedulers, got {type(schedulers).__name__}")
    if not schedulers:
        raise ValueError(f"{owner} needs at least one scheduler")
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"{owner}: scheduler {i} must be a learning-rate scheduler, got {type(scheduler).__name__}")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{owner} cannot hold ReduceLROnPlateau (scheduler {i}): its step needs the metric")
    optimizer = schedulers[0].optimizer if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner} takes an optimizer, got {type(optimizer).__name__}")
    if any(scheduler.optimizer is not optimizer for scheduler in schedulers):
        raise ValueError(f"{owner}: every scheduler must drive the same optimizer")
    return list(schedulers), optimizer


class _Composite(LRScheduler):
    """State dicts that carry each inner schedule's state too (as PyTorch's), so that one whose
    place is more than its step count (CosineAnnealingWarmRestarts) resumes where it was."""

    schedulers: list[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        inner = state.get("schedulers", ())  # absent from a SequentialLR state saved before they were kept
        if inner and len(inner) != len(self.schedulers):
            raise ValueError(f"{type(self).__name__} state holds {len(inner)} schedulers, this one has "
                             f"{len(self.schedulers)}")
        for scheduler, saved in zip(self.schedulers, inner):
            scheduler.load_state_dict(saved)


class SequentialLR(_Composite):
    """schedulers[i] from milestones[i−1] on (the first from the start), each counting its steps
    from the milestone where it takes over, as torch's SequentialLR."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        self.schedulers, optimizer = _schedules("SequentialLR", schedulers, optimizer)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        self.milestones = list(milestones)
        super().__init__(optimizer, last_epoch)

    def _apply(self, epoch: int, chain: bool = False) -> None:
        index = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[index - 1] if index else 0
        scheduler = self.schedulers[index]
        scheduler.last_epoch = epoch - start
        scheduler._apply(epoch - start, chain=epoch > start)  # at its milestone: its closed form, as PyTorch's
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Each of `schedulers` steps, in order, at every ``step()``, as torch's ChainedScheduler: a
    chainable one (StepLR, MultiStepLR, ExponentialLR, LinearLR, CosineAnnealingLR) scales the
    lr the one before left, so their factors multiply; one that sets its closed form (LambdaLR,
    OneCycleLR, CosineAnnealingWarmRestarts, SequentialLR) overrides those before it. Made
    without a step of its own (its schedules took theirs when they were made)."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        self.schedulers, self.optimizer = _schedules("ChainedScheduler", schedulers, optimizer)
        self.last_epoch = 0
        self.base_lrs = [group.get("initial_lr", group["lr"]) for group in self.optimizer.param_groups]
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        self.last_epoch += 1
        for scheduler in self.schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _apply(self, epoch: int, chain: bool = False) -> None:  # inside SequentialLR: each at `epoch`, in order
        for scheduler in self.schedulers:
            scheduler.last_epoch = epoch
            scheduler._apply(epoch, chain)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
