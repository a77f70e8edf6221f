"""`Module` and the first building blocks of a convolutional network (more in layers.py).

A `Module` finds its parameters by itself: every attribute that is a Tensor (a parameter when it
requires grad, a buffer otherwise) or a Module (recursively) belongs to it, in the order the
attributes were set. Layers are thin: each ``forward`` is a tensor expression of
``tinygrad_cnn.functional``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from tinygrad_cnn import creation, dtypes
from tinygrad_cnn import functional as F
from tinygrad_cnn.nn import functional as nn_functional
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor

__all__ = ["Module", "Parameter", "Conv2d", "Linear", "Sigmoid", "ReLU", "Tanh", "Flatten", "StateDictError"]


class IncompatibleKeys(NamedTuple):
    """What load_state_dict found: model keys the state lacked, and state keys the model lacks."""
    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError):
    """A state dict that does not fit the module (missing or unexpected keys, wrong shapes)."""


def _generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A layer's generator: `rng` itself, a new one from an int seed, or (None) the global one
    that tinygrad_cnn.manual_seed sets."""
    return creation.generator(rng)


class Parameter(Tensor):
    """torch.nn.Parameter: `data`'s array (shared, not copied) as a leaf that requires grad. A
    Module finds it as it finds any Tensor attribute that requires grad."""

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
        return self.forward(*args, **kwargs)

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
        if parameter is not None and not (isinstance(parameter, Tensor) and parameter.requires_grad):
            raise TypeError(f"register_parameter: {name!r} must be a Tensor that requires grad (nn.Parameter)")
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
        if not isinstance(tensor, Tensor) or tensor.requires_grad:
            raise TypeError(f"register_buffer: {name!r} must be a Tensor that does not require grad")
        setattr(self, name, tensor)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad on every parameter (freeze a layer with False)."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype: Any) -> Module:
        """Cast every floating parameter and buffer to `dtype` (float32 or float64), in place."""
        target = dtypes.resolve(dtype, floating=True)
        for _, tensor in self._named_tensors():
            if dtypes.is_floating(tensor.dtype) and tensor.dtype != target:
                tensor.data = tensor.data.astype(target)
                if tensor.grad is not None:
                    tensor.grad = None
        return self

    def _named_once(self, requires_grad: bool, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        for name, tensor in self._named_tensors(prefix, recurse):
            if tensor.requires_grad == requires_grad and id(tensor) not in seen:
                seen.add(id(tensor))
                yield name, tensor

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) of every Tensor attribute that requires grad, recursively (or, without
        `recurse`, this module's own), e.g. '0.weight'; a tensor held twice (tied weights) is
        listed once, under its first name."""
        return self._named_once(True, prefix + "." if prefix else "", recurse)

    def parameters(self, recurse: bool = True) -> list[Tensor]:
        return [t for _, t in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(name, tensor) of every Tensor attribute that does not require grad (running
        statistics, counters), recursively, each listed once."""
        return self._named_once(False, prefix + "." if prefix else "", recurse)

    def buffers(self, recurse: bool = True) -> list[Tensor]:
        return [t for _, t in self.named_buffers(recurse=recurse)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (PyTorch's default), or to zeros (a gradient
        there is; None stays None, as PyTorch's)."""
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor._make(np.zeros_like(p.grad.data))

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


def groups_argument(groups: Any, in_channels: int, out_channels: int) -> int:
    """A layer's groups: an int >= 1 that divides both channel counts."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or in_channels % groups \
            or out_channels % groups:
        raise ValueError(f"groups must be an int >= 1 dividing in_channels {in_channels} and out_channels "
                         f"{out_channels}, got {groups!r}")
    return groups


def positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def init_weight(shape: tuple[int, ...], fan_in: int, fan_out: int, init: str,
                 rng: np.random.Generator, dtype: Any) -> Tensor:
    """He normal (std √(2/fan_in), for ReLU) or Glorot uniform (±√(6/(fan_in+fan_out)), for
    sigmoid and tanh)."""
    if init == "he":
        values = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif init == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")
    return Tensor(values, requires_grad=True, dtype=dtype)


class Conv2d(Module):
    """A convolutional layer of `out_channels` feature maps, each with shared weights and one
    shared bias (the article's feature maps): z = x ⋆ weight + bias.

    x (N, in_channels, H, W) -> (N, out_channels, H', W'). ``weight`` has shape (out_channels,
    in_channels/groups, kh, kw), ``bias`` (out_channels,). `padding` is 0 / "valid", an int p or a
    pair (ph, pw) of zeros on each side, or "same" (output H×W at stride 1, PyTorch's centring);
    `dilation` and `groups` as PyTorch's. Weights start He-normal (``init="he"``, for ReLU) or
    Glorot-uniform (``init="glorot"``, for sigmoid), from `rng`; biases at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | str = 0, dilation: int | tuple[int, int] = 1,
                 groups: int = 1, bias: bool = True, init: str = "he", rng: int | np.random.Generator | None = None,
                 dtype: Any = np.float32) -> None:
        kh, kw = F.int_pair(kernel_size, "kernel_size")
        self.dilation = F.int_pair(dilation, "dilation")
        self.stride = F.int_pair(stride, "stride")
        if padding in ("valid", "same"):
            self.padding: int | tuple[int, int] | str = padding
        elif isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
                isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in padding):
            self.padding = (int(padding[0]), int(padding[1]))
        elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
            self.padding = int(padding)
        else:
            raise ValueError(f"padding must be 'valid', 'same', an int >= 0 or a pair of them, got {padding!r}")
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size, self.groups = (kh, kw), groups_argument(groups, in_channels, out_channels)
        generator = _generator(rng)
        self.weight = init_weight((out_channels, in_channels // groups, kh, kw), in_channels // groups * kh * kw,
                                   out_channels // groups * kh * kw, init, generator, dtype)
        self.bias = Tensor(np.zeros(out_channels), requires_grad=True, dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        x = F.tensor_argument(x, "x")
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:  # (C, H, W): one image, as PyTorch's
            raise ValueError(
                f"Conv2d({self.in_channels}, {self.out_channels}) expects input of shape "
                f"(N, {self.in_channels}, H, W) or ({self.in_channels}, H, W), got {x.shape}"
            )
        return nn_functional.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, bias={self.bias is not None}")


class Linear(Module):
    """A fully connected layer, the article's z = w a + b for a batch of row vectors:
    z = x @ weightᵀ + bias, x (..., in_features) -> (..., out_features).

    ``weight`` has shape (out_features, in_features), as the article's and PyTorch's, and
    ``bias`` (out_features,). Initialisation as `Conv2d` (He normal by default, or Glorot)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "he",
                 rng: int | np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.weight = init_weight((out_features, in_features), in_features, out_features, init,
                                   _generator(rng), dtype)
        self.bias = Tensor(np.zeros(out_features), requires_grad=True, dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        x = F.tensor_argument(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}) expects input of shape "
                f"(..., {self.in_features}), got {x.shape}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sigmoid(Module):
    """σ(z) = 1/(1+e^(−z)), elementwise."""

    def forward(self, z: Tensor) -> Tensor:
        return F.sigmoid(z)


class Activation(Module):
    """An elementwise `function` as a layer, with PyTorch's `inplace` argument (accepted and
    computed out of place: nn/activations.py)."""

    function: Callable[[Tensor], Tensor]

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = nn_functional.inplace_flag(inplace, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(Activation):
    """max(z, 0), elementwise."""

    function = staticmethod(F.relu)


class Tanh(Module):
    """tanh z, elementwise."""

    def forward(self, z: Tensor) -> Tensor:
        return F.tanh(z)


class Flatten(Module):
    """Dims start_dim..end_dim merged into one: by default (N, d1, d2, ...) -> (N, d1·d2·...)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        x = F.tensor_argument(x, "x")
        if x.ndim < 2:
            raise ValueError(f"Flatten expects a batch (N, d1, ...) of at least 2 dimensions, got shape {x.shape}")
        return x.flatten(self.start_dim, self.end_dim)

