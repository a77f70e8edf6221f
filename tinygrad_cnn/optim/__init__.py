"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW (AMSGrad),
RMSprop (momentum, centered) and Adagrad, each with PyTorch's update rule and ``maximize``; one
family a module (``sgd``, ``adam``, ``rmsprop``, ``adagrad``) on the base class here.
Learning-rate schedules in ``tinygrad_cnn.optim.lr_scheduler``, weight averaging (SWA, EMA) in
``tinygrad_cnn.optim.swa_utils``.

An optimizer holds the parameter Tensors in `param_groups` (PyTorch's dicts: "params" and each
hyperparameter, so that a group can have its own lr or weight decay; a plain list of Tensors is
one group) and updates their arrays in place from ``.grad``. ``opt.lr`` (any hyperparameter) reads
the first group's and sets every group's. Its state (step count, per-parameter buffers,
hyperparameters) round-trips through ``state_dict()`` / ``load_state_dict()`` so that a resumed
run continues bit for bit.
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, Iterable

import numpy as np

from tinygrad_cnn.function import set_grad_enabled
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.nn.module import Parameter

# Elements of a parameter updated at once: 256 KiB of float32, so that an update's few
# temporaries of that size stay in cache.
BLOCK = 1 << 16

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler", "swa_utils"]


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
    """Base class: `param_groups`, `zero_grad()`, `step()`, state dicts. A subclass names its
    `hyperparameters` (as saved), checks them in `_check` and updates (a block of) one array in
    `_update`."""

    hyperparameters: tuple[str, ...] = ("lr",)
    buffers: tuple[str, ...] = ()  # one array per parameter, shaped like it (those a group uses: `_buffers`)
    counters: tuple[str, ...] = ()  # one int per parameter
    # Hyperparameters added after state dicts of this optimizer were first saved, with the value
    # that behaves as before: a state dict without one (an older checkpoint) loads with it.
    legacy_defaults: dict[str, Any] = {}

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"{name} takes an iterable of Tensors (e.g. model.parameters() or [w]) or of "
                            f"parameter-group dicts, got {'a single Tensor' if isinstance(params, Tensor) else type(params).__name__}")
        given = list(params)
        specs = given if given and all(isinstance(g, Mapping) for g in given) else [{"params": given}]
        self.defaults = defaults
        object.__setattr__(self, "param_groups", [])
        self.params: list[Tensor] = []
        self.state: dict[str, list[np.ndarray | None]] = {key: [] for key in self.buffers + self.counters}
        for spec in specs:
            self.add_param_group(spec)
        if not self.params:
            raise ValueError(f"{name} got an empty parameter list")
        self.step_count = 0

    def add_param_group(self, spec: Mapping[str, Any]) -> None:
        """One more parameter group, a dict as PyTorch's ({"params": [...], "lr": ...}; what it
        leaves out comes from the optimizer's defaults): for layers unfrozen while training."""
        name, k = type(self).__name__, len(self.param_groups)
        unknown = sorted(set(spec) - set(self.defaults) - {"params"})
        if unknown or "params" not in spec:
            raise ValueError(f"{name}: parameter group {k} needs 'params' and takes {sorted(self.defaults)}, "
                             f"got keys {sorted(spec)}")
        members = spec["params"]
        members = [members] if isinstance(members, Tensor) else list(members)
        group = {"params": members}
        for key, default in self.defaults.items():
            group[key] = self._check(key, spec.get(key, default))
        self._check_group(group)
        for i, p in enumerate(members, start=len(self.params)):
            if not (isinstance(p, Parameter) or isinstance(p, Tensor) and p.requires_grad):  # a frozen Parameter
                raise TypeError(f"{name}: parameter {i} is not a Tensor that requires grad (nor an nn.Parameter)")
            if not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} is not a leaf (it was computed by {p.grad_fn}): "
                                 "an optimizer updates the tensors a graph starts from")
        if len({id(p) for p in self.params + members}) != len(self.params) + len(members):
            raise ValueError(f"{name}: a parameter appears more than once in params")
        self.param_groups.append(group)
        self.params += members
        for values in self.state.values():
            values += [None] * len(members)

    def _check(self, key: str, value: Any) -> Any:
        """A hyperparameter checked (a finite real >= 0 unless a subclass says otherwise)."""
        label = "lr (the learning rate)" if key == "lr" else key
        return _hyperparameter(type(self).__name__, label, value)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Checks that need several hyperparameters of a group at once."""

    def _saved(self, group: dict[str, Any]) -> dict[str, Any]:
        """A group's hyperparameters under their saved names (`hyperparameters`)."""
        return {key: group[key] for key in self.hyperparameters}

    def _restore(self, group: dict[str, Any], saved: dict[str, Any]) -> None:
        """Set a group's hyperparameters from their saved names, checked."""
        for key in self.hyperparameters:
            group[key] = self._check(key, saved[key])
        self._check_group(group)

    def __getattr__(self, key: str) -> Any:  # opt.lr: the first group's
        groups = self.__dict__.get("param_groups")
        if groups is not None and key in self.hyperparameters:
            return self._saved(groups[0])[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:  # opt.lr = x: every group's
        if key in type(self).hyperparameters and "param_groups" in self.__dict__:
            for group in self.param_groups:
                saved = self._saved(group)
                saved[key] = value
                self._restore(group, saved)
            return
        object.__setattr__(self, key, value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (PyTorch's default), or to zeros (a gradient
        there is; None stays None, as PyTorch's)."""
        for p in self.params:
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor._make(np.zeros_like(p.grad.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, with its group's hyperparameters; with a
        `closure` (which recomputes the loss and its gradients), call it first and return its loss."""
        loss = None
        if closure is not None:
            with set_grad_enabled(True):
                loss = closure()
        self._step()
        return loss

    def _step(self) -> None:
        self.step_count += 1
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    with in_place(p.data):  # a graph still holding p counts a new version of it
                        self._update_parameter(i, p.data, p.grad.data, group)
                i += 1

    def _update_parameter(self, i: int, w: np.ndarray, g: np.ndarray, group: dict[str, Any]) -> None:
        """Parameter i's update: its buffers start as `_new_buffer` makes them (state["new"]
        names those made at this update) and its counters at 0 (each counter advances by one
        here), then `_update` runs on matching blocks of BLOCK elements of w, g and the buffers.
        The rules are elementwise, so blocks give the numbers one pass would, and a large layer's
        temporaries stay in cache where whole-array ones would be fresh memory from the system at
        every step."""
        state: dict[str, Any] = {}
        buffers, new = self._buffers(group), set()
        for name in buffers:
            if self.state[name][i] is None:
                self.state[name][i] = self._new_buffer(name, w)
                new.add(name)
            state[name] = self.state[name][i]
        state["new"] = frozenset(new)
        for name in self.counters:
            count = self.state[name][i]
            self.state[name][i] = np.array(1 if count is None else int(count) + 1, dtype=np.int64)
            state[name] = int(self.state[name][i])
        if w.size <= BLOCK or not all(a.flags.c_contiguous for a in [w, *(state[name] for name in buffers)]):
            self._update(w, np.asarray(g), state, group)
            return
        w, g = w.reshape(-1), np.ascontiguousarray(g).reshape(-1)
        flat = {name: state[name].reshape(-1) for name in buffers}
        for start in range(0, w.size, BLOCK):
            part = slice(start, start + BLOCK)
            self._update(w[part], g[part], {**state, **{name: a[part] for name, a in flat.items()}}, group)

    def _buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The buffers a parameter of `group` uses."""
        return self.buffers

    def _new_buffer(self, name: str, w: np.ndarray) -> np.ndarray:
        """A buffer's value before a parameter's first update: zeros shaped (and laid out) as w."""
        return np.zeros_like(w)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:  # pragma: no cover
        """w -= the rule's step, in place; `state` holds (blocks of) the buffers, updated in place,
        and the counters' values."""
        raise NotImplementedError

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Hyperparameters, the step count and every per-parameter buffer, as arrays."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for k, group in enumerate(self.param_groups):  # the first group's under plain names
            prefix = "" if k == 0 else f"param_groups.{k}."
            saved = self._saved(group)
            if "initial_lr" in group:  # a schedule's starting lr: resuming with last_epoch needs it, as PyTorch's
                saved["initial_lr"] = group["initial_lr"]
            for name, value in saved.items():
                state[prefix + name] = np.asarray(value, dtype=np.float64)
        state["step_count"] = np.asarray(self.step_count, dtype=np.int64)
        for name, values in self.state.items():
            for i, value in enumerate(values):
                if value is not None:
                    state[f"{name}.{i}"] = value.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved; a key, shape or value that does not fit is a
        ValueError, raised before anything changes. A hyperparameter of `legacy_defaults` may be
        absent (a state dict saved before it existed) and takes its legacy value."""
        owner = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}.load_state_dict takes a dict of arrays, got {type(state).__name__}")
        prefixes = ["" if k == 0 else f"param_groups.{k}." for k in range(len(self.param_groups))]
        expected = {prefix + name for prefix in prefixes for name in self.hyperparameters} | {"step_count"}
        legacy = {prefix + name for prefix in prefixes for name in self.legacy_defaults}
        missing = sorted(expected - set(state) - legacy)
        optional = {prefix + "initial_lr" for prefix in prefixes}
        per_param = self.buffers + self.counters
        buffers: dict[str, list[np.ndarray | None]] = {name: [None] * len(self.params) for name in per_param}
        unexpected = []
        for key, value in state.items():
            if key in expected or key in optional:
                continue
            name, _, index = key.rpartition(".")
            if name not in buffers or not index.isdigit() or int(index) >= len(self.params):
                unexpected.append(key)
                continue
            param = self.params[int(index)]
            shape, dtype = ((), np.int64) if name in self.counters else (param.shape, param.dtype)
            if np.shape(value) != shape:
                raise ValueError(f"{owner} state {key!r} has shape {np.shape(value)}, "
                                 f"expected {shape} for parameter {index}")
            buffers[name][int(index)] = np.array(value, dtype=dtype, copy=True)
        restored = []  # each group as the state sets it, checked on a copy
        for prefix, group in zip(prefixes, self.param_groups) if not missing else ():
            saved = {name: np.asarray(state[prefix + name]).item() if prefix + name in state
                     else self.legacy_defaults[name] for name in self.hyperparameters}
            restored.append(dict(group))
            self._restore(restored[-1], saved)
            if prefix + "initial_lr" in state:
                restored[-1]["initial_lr"] = float(np.asarray(state[prefix + "initial_lr"]).item())
        owners = [group for group in restored for _ in group["params"]]
        for i, group in enumerate(owners):  # a parameter's buffers (those its group uses): all there or all absent
            if any(buffers[name][i] is not None for name in per_param):
                missing += [f"{name}.{i}" for name in self._buffers(group) + self.counters if buffers[name][i] is None]
        if missing or unexpected:
            raise ValueError(f"{owner} state dict does not fit: missing {missing}, unexpected {sorted(unexpected)}")
        for group, values in zip(self.param_groups, restored):
            group.update(values)
        self.step_count = int(np.asarray(state["step_count"]).item())
        self.state = buffers

    def __repr__(self) -> str:
        settings = ", ".join(f"{n}={v}" for n, v in self._saved(self.param_groups[0]).items())
        groups = f", {len(self.param_groups)} groups" if len(self.param_groups) > 1 else ""
        return f"{type(self).__name__}({len(self.params)} parameters{groups}, {settings})"


# The optimizers, one family a module as torch.optim's, and the schedules that drive them:
# imported once the base class exists (tinygrad_cnn.optim.lr_scheduler, and weight averaging's
# SWALR in tinygrad_cnn.optim.swa_utils).
from tinygrad_cnn.optim.sgd import SGD  # noqa: E402
from tinygrad_cnn.optim.adam import Adam, AdamW  # noqa: E402
from tinygrad_cnn.optim.rmsprop import RMSprop  # noqa: E402
from tinygrad_cnn.optim.adagrad import Adagrad  # noqa: E402
from tinygrad_cnn.optim import lr_scheduler, swa_utils  # noqa: E402
