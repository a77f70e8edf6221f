"""More layers, as PyTorch's: activations, max and average pooling, batch normalization, channel dropout
and the identity. Each ``forward`` is a function of ``tinygrad_cnn.nn.functional``."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import creation, dtypes
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.functional import int_pair
from tinygrad_cnn.nn.modules import Activation, Module, Parameter, _generator, groups_argument, init_weight, positive_int
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        self.negative_slope, self.inplace = negative_slope, F.inplace_flag(inplace, "LeakyReLU")

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        self.alpha, self.inplace = alpha, F.inplace_flag(inplace, "ELU")

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)


class Hardtanh(Module):
    """x clipped to [min_val, max_val] (F.hardtanh); ReLU6 is Hardtanh(0, 6)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        self.min_val, self.max_val, self.inplace = min_val, max_val, F.inplace_flag(inplace, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Upsample(Module):
    """F.interpolate as a layer: nearest or bilinear, to `size` or by `scale_factor`."""

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None) -> None:
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        where = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{where}, mode='{self.mode}'"


class Hardsigmoid(Activation):
    function = staticmethod(F.hardsigmoid)


class Hardswish(Activation):
    function = staticmethod(F.hardswish)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)


class SiLU(Activation):
    function = staticmethod(F.silu)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class MaxPool2d(Module):
    """Max pooling over the last two axes, as torch.nn.MaxPool2d (stride defaults to the kernel);
    without padding, dilation or ceil_mode, the article's `F.maxpool2d`."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.stride = int_pair(stride, "stride", allow_none=True) or self.kernel_size
        self.padding, self.dilation, self.return_indices, self.ceil_mode = padding, dilation, return_indices, ceil_mode

    def forward(self, x: Tensor) -> Any:
        if self.padding or self.dilation not in (1, (1, 1)) or self.ceil_mode or self.return_indices:
            return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                            self.ceil_mode, self.return_indices)
        return F.maxpool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride if stride is not None else kernel_size, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: Any) -> None:
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Dropout(Module):
    """In training mode, zero each element with probability `p` and scale the rest by 1/(1−p);
    in eval mode, the identity. The masks come from (a seed drawn from `rng`, the number of calls
    so far); both are buffers in the state dict, so a resumed run draws the same masks."""

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: int | np.random.Generator | None = None) -> None:
        self.inplace = F.inplace_flag(inplace, "Dropout")
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout probability p must be a real number, got {p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        # Buffers (saved and restored with the model); float64 holds these integers exactly.
        self.seed = Tensor(_generator(rng).integers(2**53), dtype=np.float64)
        self.calls = Tensor(0, dtype=np.float64)

    def forward(self, x: Tensor) -> Tensor:
        x = F.tensor_argument(x, "x")
        if not self.training or self.p == 0:
            return x
        rng = np.random.default_rng([int(self.seed.data), int(self.calls.data)])
        self.calls.data += 1
        keep = (rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * Tensor._make(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Module):
    """Whole channels dropped with probability p in training (F.dropout2d); the identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: int | np.random.Generator | None = None) -> None:
        self.inplace = F.inplace_flag(inplace, "Dropout2d")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout2d probability p must be in [0, 1], got {p!r}")
        self.p, self.generator = float(p), creation.generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _BatchNorm(Module):
    """Batch normalization over the channels (axis 1): parameters `weight` and `bias` (with
    `affine`), buffers `running_mean`, `running_var` and `num_batches_tracked` (with
    `track_running_stats`), named as PyTorch's so that state dicts match. `momentum=None`: the
    running statistics are the plain mean of every batch's since the last `reset_running_stats()`."""

    dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: Any = np.float32) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        dtype = dtypes.resolve(dtype, floating=True)
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)):
            raise TypeError(f"momentum must be a real number or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(Tensor(np.ones(num_features), dtype=dtype)) if affine else None
        self.bias = Parameter(Tensor(np.zeros(num_features), dtype=dtype)) if affine else None
        if track_running_stats:
            self.running_mean = Tensor(np.zeros(num_features), dtype=dtype)
            self.running_var = Tensor(np.ones(num_features), dtype=dtype)
            self.num_batches_tracked = Tensor(np.zeros((), np.int64), dtype=np.int64)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batch tracked (as at construction)."""
        if self.track_running_stats:
            for tensor, value in ((self.running_mean, 0), (self.running_var, 1), (self.num_batches_tracked, 0)):
                with in_place(tensor.data):  # a graph holding the old values sees a new version
                    tensor.data.fill(value)

    def forward(self, x: Tensor) -> Tensor:
        x = F.tensor_argument(x, "x", type(self).__name__)
        if x.ndim not in self.dims:
            raise ValueError(f"{type(self).__name__} expects {' or '.join(f'{n}-d' for n in self.dims)} input, "
                             f"got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got {x.shape[1]} channels (shape {x.shape})")
        stats = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # the cumulative average: batch k weighs 1/k
                momentum = 1.0 / float(self.num_batches_tracked.data)
        return F.batch_norm(x, *stats, self.weight, self.bias, self.training or not self.track_running_stats,
                            0.0 if momentum is None else momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class LayerNorm(Module):
    """Layer normalization over the last dims (`normalized_shape`), with an elementwise weight
    and bias of that shape (`elementwise_affine`), as PyTorch's."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 dtype: Any = np.float32) -> None:
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or not all(isinstance(n, int) and n >= 1 for n in shape):
            raise ValueError(f"normalized_shape must be ints >= 1, got {normalized_shape!r}")
        self.normalized_shape, self.eps = shape, eps
        self.weight, self.bias = _scale_and_shift(shape, dtype, elementwise_affine)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


def _scale_and_shift(shape: tuple[int, ...], dtype: Any, affine: bool) -> tuple[Tensor | None, Tensor | None]:
    """A normalization's learned weight (ones) and bias (zeros) of `shape`, or none."""
    if not affine:
        return None, None
    dtype = dtypes.resolve(dtype, floating=True)
    return (Parameter(Tensor(np.ones(shape), dtype=dtype)),
            Parameter(Tensor(np.zeros(shape), dtype=dtype)))


class GroupNorm(Module):
    """Group normalization of (N, C, ...) over groups of C/num_groups channels, with a weight and
    bias per channel (`affine`), as PyTorch's."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: Any = np.float32) -> None:
        channels, groups = positive_int(num_channels, "num_channels"), positive_int(num_groups, "num_groups")
        if channels % groups:
            raise ValueError(f"GroupNorm: num_groups {groups} must divide num_channels {channels}")
        self.num_groups, self.num_channels, self.eps = groups, channels, eps
        self.weight, self.bias = _scale_and_shift((channels,), dtype, affine)

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class BatchNorm1d(_BatchNorm):
    """(N, C) or (N, C, L)."""
    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """(N, C, H, W)."""
    dims = (4,)


class ConvTranspose2d(Module):
    """The transposed convolution (the article's ∂C/∂x as a layer, F.conv_transpose2d):
    x (N, in_channels, H, W) -> (N, out_channels, H', W'); ``weight`` has shape
    (in_channels, out_channels/groups, kh, kw), as PyTorch's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 output_padding: int | tuple[int, int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | tuple[int, int] = 1, init: str = "he", rng: int | np.random.Generator | None = None,
                 dtype: Any = np.float32) -> None:
        kh, kw = int_pair(kernel_size, "kernel_size")
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size, self.stride, self.padding, self.output_padding = (kh, kw), stride, padding, output_padding
        self.groups, self.dilation = groups_argument(groups, in_channels, out_channels), dilation
        self.weight = init_weight((in_channels, out_channels // groups, kh, kw), out_channels // groups * kh * kw,
                                   in_channels // groups * kh * kw, init, creation.generator(rng), dtype)
        self.bias = Parameter(Tensor(np.zeros(out_channels), dtype=dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                              self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class _Loss(Module):
    """A loss as a module (criterion = nn.CrossEntropyLoss(); criterion(logits, labels))."""

    def __init__(self, reduction: str = "mean", **options: Any) -> None:
        self.reduction, self.options = reduction, options

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002 -- torch's name
        return F.cross_entropy(input, target, reduction=self.reduction, **self.options)


class NLLLoss(_Loss):
    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction, weight=weight, ignore_index=ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.nll_loss(input, target, reduction=self.reduction, **self.options)


class MSELoss(_Loss):
    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction, weight=weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy(input, target, reduction=self.reduction, **self.options)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction, **self.options)


__all__ = ["ConvTranspose2d", "MaxPool2d", "LayerNorm", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "Identity", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Softmax", "AvgPool2d", "AdaptiveAvgPool2d",
           "Dropout", "Dropout2d", "BatchNorm1d", "BatchNorm2d"]
