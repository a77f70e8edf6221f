"""Hypothesis strategies for property-testing ops and their gradients (needs hypothesis).

    from hypothesis import given
    from tinygrad_cnn.testing import gradcheck, strategies as tst

    @given(tst.conv_args())
    def test_my_layer(args):
        x, k, mode, stride = args
        gradcheck(lambda x, k: my_layer(x, k, mode, stride), x, k)

Arrays: `arrays`, `tensors`, `broadcastable_pairs`, `layouts` (the same values in another memory
layout). Op arguments: `conv_args` and `pool_args` (the article's correlate2d and maxpool2d),
`conv2d_args` and `max_pool2d_args` (nn.functional's, with padding, dilation, groups and
ceil_mode). Whole networks: `networks` (small CNNs drawn away from every kink).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn import nn
from tinygrad_cnn.nn.functional import max_pool2d
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.testing.layouts import LAYOUTS, in_layout
from tinygrad_cnn.testing.networks import Network

__all__ = ["arrays", "tensors", "broadcastable_pairs", "conv_args", "pool_args", "layouts", "conv2d_args",
           "max_pool2d_args", "networks"]


def _elements(dtype: Any, min_value: float, max_value: float) -> st.SearchStrategy[float]:
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False, width=np.dtype(dtype).itemsize * 8)


def arrays(
    shape: int | Sequence[int] | st.SearchStrategy[tuple[int, ...]] | None = None,
    dtype: Any = np.float64,
    min_value: float = -10,
    max_value: float = 10,
) -> st.SearchStrategy[np.ndarray]:
    """Finite float ndarrays with values in [min_value, max_value]; when `shape` is None a
    shape of 0 to 4 axes, each of length 1 to 5, is drawn."""
    if shape is None:
        shape = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)
    return hnp.arrays(dtype, shape, elements=_elements(dtype, min_value, max_value))


def tensors(
    shape: int | Sequence[int] | st.SearchStrategy[tuple[int, ...]] | None = None,
    dtype: Any = np.float64,
    min_value: float = -10,
    max_value: float = 10,
) -> st.SearchStrategy[Tensor]:
    """Like `arrays`, as Tensors with ``requires_grad=True``."""
    return arrays(shape, dtype, min_value, max_value).map(lambda a: Tensor(a, requires_grad=True))


@st.composite
def broadcastable_pairs(
    draw: st.DrawFn, dtype: Any = np.float64, min_value: float = -10, max_value: float = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Two ndarrays whose shapes broadcast together (each of up to 4 axes)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    a, b = shapes.input_shapes
    return (draw(arrays(a, dtype, min_value, max_value)), draw(arrays(b, dtype, min_value, max_value)))


@st.composite
def conv_args(
    draw: st.DrawFn,
    ranks: Sequence[int] = (2, 3, 4),
    modes: Sequence[str] = ("valid", "full", "same"),
    strides: Sequence[int] = (1, 2),
    dtype: Any = np.float64,
    max_side: int = 6,
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """``(x, k, mode, stride)`` that correlate2d and convolve2d accept: a kernel of rank 2
    (kh, kw), 3 (C, kh, kw) or 4 (F, C, kh, kw), an x with leading axes to match, and in
    'full'/'same' mode kernels that may be larger than the input."""
    rank = draw(st.sampled_from(ranks))
    mode = draw(st.sampled_from(modes))
    stride = draw(st.sampled_from(strides))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    low_h, low_w = (kh, kw) if mode == "valid" else (1, 1)
    height = draw(st.integers(low_h, max(low_h, max_side)))
    width = draw(st.integers(low_w, max(low_w, max_side)))
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    if rank == 2:
        x_shape, k_shape = lead + (height, width), (kh, kw)
    else:
        channels = draw(st.integers(1, 3))
        x_shape = lead[:1] + (channels, height, width)
        k_shape = ((draw(st.integers(1, 3)),) if rank == 4 else ()) + (channels, kh, kw)
    x = draw(arrays(x_shape, dtype, -2, 2))
    k = draw(arrays(k_shape, dtype, -2, 2))
    return x, k, mode, stride


@st.composite
def pool_args(
    draw: st.DrawFn, dtype: Any = np.float64, max_side: int = 7
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int] | None]:
    """``(x, size, stride)`` for maxpool2d, with every value of x distinct: any two differ by
    at least 1e-2 (scaled values of a random permutation), so finite differences never cross a
    tie and the argmax is unambiguous. `stride` is None (= size) or a pair."""
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    size = (draw(st.integers(1, min(3, height))), draw(st.integers(1, min(3, width))))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    shape = lead + (height, width)
    count = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(count))), dtype=np.float64)
    step = draw(st.floats(1e-2, 1.0))
    offset = draw(st.floats(-5, 5))
    x = ((order - count / 2) * step + offset).reshape(shape).astype(dtype)
    return x, size, stride


def layouts(array: np.ndarray, names: Sequence[str] | None = None) -> st.SearchStrategy[np.ndarray]:
    """`array`'s values in a drawn memory layout: "C", or one of
    ``tinygrad_cnn.testing.layouts.LAYOUTS`` (column-major, strided, negative strides, permuted
    axes); `names` narrows the choice. Wrap the result with ``Tensor._make`` or pass it to a
    check -- ``Tensor(array)`` copies into C order."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"layouts takes an ndarray, got {type(array).__name__}")
    choices = ["C", *LAYOUTS] if names is None else list(names)
    for name in choices:
        if name != "C" and name not in LAYOUTS:
            raise ValueError(f"layouts: names must be 'C' or from {sorted(LAYOUTS)}, got {name!r}")
    return st.sampled_from(choices).map(lambda name: in_layout(array, name))


def _distinct(draw: st.DrawFn, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Values of a random permutation, scaled and shifted: any two differ by at least 1e-2."""
    count = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(count))), dtype=np.float64)
    step, offset = draw(st.floats(1e-2, 1.0)), draw(st.floats(-5, 5))
    return ((order - count / 2) * step + offset).reshape(shape).astype(dtype)


@st.composite
def conv2d_args(
    draw: st.DrawFn, dtype: Any = np.float64, max_side: int = 7, max_channels: int = 4, groups: bool = True,
    dilation: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """``(x, weight, bias, options)`` for ``nn.functional.conv2d(x, weight, bias, **options)``:
    x (N, C, H, W), weight (F, C/groups, kh, kw), bias (F,) or None, and `options` stride,
    padding, dilation and groups (pairs or ints) with an output of at least one position."""
    n = draw(st.integers(1, 2))
    g = draw(st.integers(1, 2)) if groups else 1
    c, f = g * draw(st.integers(1, max(1, max_channels // g))), g * draw(st.integers(1, max(1, max_channels // g)))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph, max_side)))
    w = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw, max_side)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    x = draw(arrays((n, c, h, w), dtype, -2, 2))
    weight = draw(arrays((f, c // g, kh, kw), dtype, -2, 2))
    bias = draw(st.one_of(st.none(), arrays((f,), dtype, -2, 2)))
    return x, weight, bias, {"stride": stride, "padding": (ph, pw), "dilation": (dh, dw), "groups": g}


@st.composite
def max_pool2d_args(
    draw: st.DrawFn, dtype: Any = np.float64, max_side: int = 7
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(x, options)`` for ``nn.functional.max_pool2d(x, **options)``: kernel_size, stride,
    padding (at most half the kernel), dilation and ceil_mode, with distinct values in x as
    `pool_args` (no tie in any window)."""
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph, max_side)))
    w = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw, max_side)))
    options = {"kernel_size": (kh, kw), "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
               "padding": (ph, pw), "dilation": (dh, dw), "ceil_mode": draw(st.booleans())}
    x = _distinct(draw, lead + (h, w), dtype)
    # a dilated window can fall wholly on the padding of a small input (its max is −∞): none such
    assume(np.all(np.isfinite(max_pool2d(Tensor(x), **options).data)))
    return x, options


ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "gelu": nn.GELU}


def _conv_block(draw: st.DrawFn, c: int, h: int, w: int, n: int, max_channels: int, activations: Sequence[str],
                batch_norm: bool, pooling: bool) -> tuple[list[Any], int, int, int]:
    """Conv2d (stride, padding, dilation, groups, bias drawn), then maybe BatchNorm2d, an
    activation and MaxPool2d; returns the layers and the channels, height and width after them."""
    k = draw(st.integers(1, min(3, h + 2, w + 2)))
    dilation = draw(st.sampled_from([d for d in (1, 2) if d * (k - 1) + 1 <= min(h, w) + 2]))
    span = dilation * (k - 1) + 1
    padding = draw(st.integers(max(0, (span - min(h, w) + 1) // 2), 1))
    stride = draw(st.integers(1, 2))
    f = draw(st.integers(1, max_channels))
    groups = draw(st.sampled_from([g for g in range(1, min(c, f) + 1) if c % g == 0 and f % g == 0]))
    layers: list[Any] = [nn.Conv2d(c, f, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                   bias=draw(st.booleans()), dtype=np.float64)]
    h, w = (h + 2 * padding - span) // stride + 1, (w + 2 * padding - span) // stride + 1
    if batch_norm and n * h * w >= 2 and draw(st.booleans()):
        layers.append(nn.BatchNorm2d(f, dtype=np.float64))
    activation = draw(st.sampled_from(list(activations) + [None]))
    if activation is not None:
        layers.append(ACTIVATIONS[activation]())
    if pooling and min(h, w) >= 2 and draw(st.booleans()):
        size = draw(st.integers(2, min(3, h, w)))
        pool_stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, size // 2))
        layers.append(nn.MaxPool2d(size, pool_stride, padding=pad))
        h, w = (h + 2 * pad - size) // pool_stride + 1, (w + 2 * pad - size) // pool_stride + 1
    return layers, f, h, w


def _randomize(model: nn.Sequential, rng: np.random.Generator) -> None:
    """Weights at He scale; biases and BatchNorm's scale and shift away from their defaults
    (zeros and ones), so that every parameter matters to the output."""
    for name, tensor in model.named_parameters():
        kind = name.rpartition(".")[2]
        shape = tensor.shape
        if kind == "weight" and len(shape) > 1:
            tensor.data = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, int(np.prod(shape[1:]))))
        elif kind == "weight":
            tensor.data = rng.uniform(0.5, 1.5, shape)
        else:
            tensor.data = rng.uniform(-0.5, 0.5, shape)


@st.composite
def networks(
    draw: st.DrawFn,
    max_blocks: int = 3,
    max_channels: int = 3,
    max_side: int = 7,
    activations: Sequence[str] = ("relu", "leaky_relu", "tanh", "sigmoid"),
    batch_norm: bool = True,
    pooling: bool = True,
    linear: bool = True,
    layer: Any = None,
    margin: float = 1e-3,
) -> Network:
    """A small random CNN with its input, as a `Network` (call ``net(x, *params)``; check it
    with ``gradcheck(net, *net.inputs)``): 1 to `max_blocks` blocks of Conv2d (kernel 1-3,
    stride 1-2, padding, dilation 1-2, groups, bias or not), then maybe BatchNorm2d (batch
    statistics), an activation from `activations` (names of ACTIVATIONS: relu, leaky_relu, tanh,
    sigmoid, gelu) or none, and MaxPool2d (padding too); then
    maybe Flatten and Linear. Input (N, C, H, W) with N 1-3, C up to `max_channels`, sides 3 to
    `max_side`; weights He-scaled, biases and BatchNorm's affine parameters random, all float64.

    `layer`: a callable (channels) -> Module, a layer of yours that keeps the shape (N, C, H, W),
    placed before a drawn block (or at the end), to test it inside whole networks.

    Away from kinks: no ReLU or LeakyReLU input lies within `margin` of 0 and no pooling window's
    two largest values within `margin` of each other (ties of ReLU's exact zeros aside). The
    values are drawn from a seed, the margin measured, and up to 8 other seeds tried before the
    example is rejected (``assume``) -- so finite differences (step 1e-6) and float32 rounding
    never cross a kink the check would mistake for a wrong gradient."""
    unknown = [name for name in activations if name not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"networks: activations must be names from {sorted(ACTIVATIONS)}, got {unknown}")
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, max_channels))
    h, w = draw(st.integers(3, max_side)), draw(st.integers(3, max_side))
    shape = (n, c, h, w)
    blocks = draw(st.integers(1, max_blocks))
    place = draw(st.integers(0, blocks)) if layer is not None else -1
    layers: list[Any] = []
    for number in range(blocks + 1):
        if number == place:
            layers.append(layer(c))
        if number < blocks:
            block, c, h, w = _conv_block(draw, c, h, w, n, max_channels, activations, batch_norm, pooling)
            layers += block
    if linear and draw(st.booleans()):
        layers += [nn.Flatten(), nn.Linear(c * h * w, draw(st.integers(1, 3)), dtype=np.float64)]
    model = nn.Sequential(*layers)
    seed = draw(st.integers(0, 2**32 - 1))
    for attempt in range(9):
        rng = np.random.default_rng([seed, attempt])
        _randomize(model, rng)
        net = Network(model, rng.standard_normal(shape))
        if net.margin > margin:
            return net
    assume(False)
    raise AssertionError("unreachable")  # pragma: no cover
