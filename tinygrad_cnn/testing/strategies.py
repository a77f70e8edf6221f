"""Hypothesis strategies for property-testing ops and their gradients (needs hypothesis).

    from hypothesis import given
    from tinygrad_cnn.testing import gradcheck, strategies as tst

    @given(tst.conv_args())
    def test_my_layer(args):
        x, k, mode, stride = args
        gradcheck(lambda x, k: my_layer(x, k, mode, stride), x, k)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn.tensor import Tensor

__all__ = ["arrays", "tensors", "broadcastable_pairs", "conv_args", "pool_args"]


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
