"""The first building blocks of a convolutional network (more in layers.py), on `Module`
(module.py). Layers are thin: each ``forward`` is a tensor expression of
``tinygrad_cnn.functional``; their weights and biases are `Parameter`s.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tinygrad_cnn import creation
from tinygrad_cnn import functional as F
from tinygrad_cnn.nn import functional as nn_functional
from tinygrad_cnn.nn.module import Module, Parameter, StateDictError
from tinygrad_cnn.tensor import Tensor

__all__ = ["Module", "Parameter", "Conv2d", "Linear", "Sigmoid", "ReLU", "Tanh", "Flatten", "StateDictError"]


def _generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A layer's generator: `rng` itself, a new one from an int seed, or (None) the global one
    that tinygrad_cnn.manual_seed sets."""
    return creation.generator(rng)


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
    return Parameter(Tensor(values, dtype=dtype))


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
        self.bias = Parameter(Tensor(np.zeros(out_channels), dtype=dtype)) if bias else None

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
        self.bias = Parameter(Tensor(np.zeros(out_features), dtype=dtype)) if bias else None

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

