"""`Module`, the base class of layers and models, and `Parameter`.

A `Module` finds what it holds by itself: every attribute that is a Module is a submodule, every
Tensor attribute a parameter (an `nn.Parameter`, or any Tensor that requires grad) or else a
buffer, in the order the attributes were set, as PyTorch lists them. Hooks run around
``forward`` as PyTorch's do: ``register_forward_pre_hook`` and ``register_forward_hook``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from tinygrad_cnn import devices, dtypes
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.autograd import RemovableHandle
from tinygrad_cnn.tensor import Tensor

__all__ = ["Module", "Parameter", "StateDictError", "RemovableHandle"]


class IncompatibleKeys(NamedTuple):
    """What load_state_dict found: model keys the state lacked, and state keys the model lacks."""
    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError):
    """A state dict that does not fit the module (missing or unexpected keys, wrong shapes)."""


class Parameter(Tensor):
    """torch.nn.Parameter: `data`'s array (shared, not copied) as a leaf that requires grad. A
    Module lists it among its parameters even while it does not require grad (a frozen layer)."""

    def __new__(cls, data: Any = None, requires_grad: bool = True) -> Parameter:
        source = data if isinstance(data, Tensor) else Tensor(np.empty(0, np.float32) if data is None else data)
        parameter = cls._make(source.data)
        parameter.requires_grad = requires_grad  # checked: only a floating tensor can
        return parameter

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        pass  # made whole by __new__


class Module:
    """Base class of layers and models: ``__call__`` runs ``forward``."""

    training: bool = True

    def forward(self, *args: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hooks = self.__dict__.get("_forward_hooks")  # made by the first register_forward_*hook
        if not hooks:
            return self.forward(*args, **kwargs)
        for hook, with_kwargs in list(hooks["pre"].values()):
            changed = hook(self, args, kwargs) if with_kwargs else hook(self, args)
            if changed is not None:  # new inputs: (args, kwargs) with kwargs, else args (a tuple or one)
                if with_kwargs and not (isinstance(changed, tuple) and len(changed) == 2):
                    raise TypeError("a forward pre-hook with_kwargs must return None or a tuple (new_args, "
                                    f"new_kwargs), got {type(changed).__name__}")
                args, kwargs = changed if with_kwargs else (changed, kwargs)
                args = args if isinstance(args, tuple) else (args,)
        output = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(hooks["post"].values()):
            changed = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            output = output if changed is None else changed
        return output

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args) before each forward, as PyTorch's: what it returns (not None)
        replaces the positional inputs; with `with_kwargs`, hook(module, args, kwargs) returns
        (args, kwargs). `prepend`: run before the hooks already registered."""
        return self._add_hook("pre", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args, output) after each forward (with `with_kwargs`, hook(module, args,
        kwargs, output)), as PyTorch's: what it returns (not None) replaces the output. A hook
        that keeps output's values sees the feature maps of a layer as the network runs."""
        return self._add_hook("post", hook, prepend, with_kwargs)

    def _add_hook(self, kind: str, hook: Callable[..., Any], prepend: bool, with_kwargs: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"a forward hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault("_forward_hooks", {"pre": {}, "post": {}})[kind]
        handle = RemovableHandle(hooks)
        earlier = list(hooks.items()) if prepend else []
        for key, _ in earlier:  # the same dict, which the handle removes from, reordered
            del hooks[key]
        hooks[handle.id] = (hook, bool(with_kwargs))
        hooks.update(earlier)
        return handle

    # ---- what a module holds -----------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def _named_tensors(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """This module's own tensors first, then (`recurse`) its submodules' in order, as PyTorch lists them."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
        if recurse:
            for name, child in self.named_children():
                yield from child._named_tensors(prefix + name + ".")

    def add_module(self, name: str, module: Module | None) -> None:
        """A submodule under `name`, as setting the attribute does (torch's add_module)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        setattr(self, name, module)

    register_module = add_module

    def register_parameter(self, name: str, parameter: Tensor | None) -> None:
        """A parameter under `name`, as setting the attribute does (a Tensor that requires grad)."""
        if parameter is not None and not _is_parameter(parameter):
            raise TypeError(f"register_parameter: {name!r} must be an nn.Parameter (or a Tensor that requires grad)")
        setattr(self, name, parameter)

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (named `prefix`) and every submodule, depth first, named by their paths."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def apply(self, fn: Any) -> Module:
        """fn(module) for every submodule, then for this one (as PyTorch: e.g. an initialiser)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def register_buffer(self, name: str, tensor: Any) -> None:
        """A Tensor attribute that is state but no parameter: saved in the state dict, not in
        parameters() (it does not require grad)."""
        if not isinstance(tensor, Tensor) or _is_parameter(tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor that does not require grad (no Parameter)")
        setattr(self, name, tensor)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad on every parameter (freeze a layer with False)."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, *args: Any, dtype: Any = None, device: Any = None, non_blocking: bool = False) -> Module:
        """PyTorch's to(dtype), to(device, dtype=None), to(tensor): cast every floating parameter
        and buffer to the dtype (float32 or float64), in place; the device must be the CPU."""
        dtype = devices.to_arguments("Module.to", args, dtype, device)
        if dtype is None:
            return self
        target = dtypes.resolve(dtype, floating=True)
        for _, tensor in self._named_tensors():
            if dtypes.is_floating(tensor.dtype) and tensor.dtype != target:
                tensor.data = tensor.data.astype(target)
                if tensor.grad is not None:
                    tensor.grad = None
        return self

    def _named_once(self, parameters: bool, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        for name, tensor in self._named_tensors(prefix, recurse):
            if _is_parameter(tensor) == parameters and id(tensor) not in seen:
                seen.add(id(tensor))
                yield name, tensor

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) of every Parameter (frozen ones too) and every other Tensor attribute
        that requires grad, recursively (or, without `recurse`, this module's own), e.g.
        '0.weight'; a tensor held twice (tied weights) is listed once, under its first name."""
        return self._named_once(True, prefix + "." if prefix else "", recurse)

    def parameters(self, recurse: bool = True) -> list[Tensor]:
        return [t for _, t in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) of every other Tensor attribute (running statistics, counters),
        recursively, each listed once."""
        return self._named_once(False, prefix + "." if prefix else "", recurse)

    def buffers(self, recurse: bool = True) -> list[Tensor]:
        return [t for _, t in self.named_buffers(recurse=recurse)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (PyTorch's default), or to zeros (a gradient
        there is; None stays None, as PyTorch's)."""
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor._make(np.zeros_like(p.grad.data))

    def cpu(self) -> Module:
        """This module: its tensors are in the CPU's memory already."""
        return self

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout drops); `eval()` switches it off. Applies to all submodules."""
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A copy of every parameter and buffer, by name."""
        return OrderedDict((name, t.data.copy()) for name, t in self._named_tensors())

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy `state` into the parameters and buffers in place. Every key must match a name,
        with the same shape and dtype; otherwise StateDictError names each problem and nothing
        is changed. With ``strict=False`` missing and unexpected keys are allowed (the rest is
        loaded); either way the keys are returned, as PyTorch's (missing_keys, unexpected_keys)."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict takes a dict of arrays by name, got {type(state).__name__}")
        own = dict(self._named_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [f"{k}: checkpoint {np.shape(state[k])} {np.asarray(state[k]).dtype}, model "
                 f"{own[k].shape} {own[k].dtype}"
                 for k in own if k in state
                 and (np.shape(state[k]) != own[k].shape or np.asarray(state[k]).dtype != own[k].dtype)]
        problems = ([f"missing keys {missing}"] if missing and strict else []) + \
                   ([f"unexpected keys {unexpected}"] if unexpected and strict else []) + \
                   ([f"shape or dtype mismatch: {'; '.join(wrong)}"] if wrong else [])
        if problems:
            raise StateDictError(f"cannot load the state dict into {type(self).__name__}: " + ", ".join(problems))
        for name, tensor in own.items():
            if name in state:
                with in_place(tensor.data):  # a graph still holding the old values sees a new version
                    np.copyto(tensor.data, state[name])
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _is_parameter(tensor: Any) -> bool:
    """A module's parameter: an nn.Parameter, frozen or not, or a plain Tensor that requires grad."""
    return isinstance(tensor, Parameter) or (isinstance(tensor, Tensor) and tensor.requires_grad)
