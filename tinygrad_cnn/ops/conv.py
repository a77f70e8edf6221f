"""The convolution primitives: batched multi-channel cross-correlation with padding and stride,
and its weight gradient.

Every user-facing form (`correlate2d`, `convolve2d`, `conv2d`, each kernel rank and mode) is
Correlate2d on reshaped views; see ``tinygrad_cnn.functional``. Its backward is more
correlations -- the backward of a convolution is a convolution -- so it differentiates to any
order.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.ops.movement import IndexAdd
from tinygrad_cnn.tensor import Tensor

Padding = tuple[int, int, int, int]


def dilate(dy: Tensor, stride: tuple[int, int]) -> Tensor:
    """Put a strided output back on the stride-1 grid, zeros between: (.., h, w) -> (.., (h−1)·sh+1, (w−1)·sw+1)."""
    sh, sw = stride
    *lead, h, w = dy.shape
    shape = (*lead, (h - 1) * sh + 1, (w - 1) * sw + 1)
    return IndexAdd.apply(dy, shape=shape, index=(..., slice(None, None, sh), slice(None, None, sw)))


def input_grad(dy: Tensor, k: Tensor, x_shape: tuple[int, ...], padding: Padding, stride: tuple[int, int]) -> Tensor:
    """∂C/∂x = dy ∗ k for z = x ⋆ k: dy put back on the stride-1 grid, then its full convolution
    with k -- a correlation with k rotated 180° (F and C swapped), padded by kh−1 and kw−1 less
    the forward's padding. Rows and columns of the padded input that no kept window reached (a
    stride's remainder) get zeros."""
    (top, bottom, left, right), (sh, sw) = padding, stride
    kh, kw = k.shape[-2:]
    rest_h = x_shape[2] + top + bottom - kh - (dy.shape[2] - 1) * sh
    rest_w = x_shape[3] + left + right - kw - (dy.shape[3] - 1) * sw
    if stride != (1, 1):
        dy = dilate(dy, stride)
    k_rotated = k[:, :, ::-1, ::-1].transpose(0, 1)
    full = (kh - 1 - top, kh - 1 - bottom + rest_h, kw - 1 - left, kw - 1 - right + rest_w)
    return Correlate2d.apply(dy, k_rotated, padding=full, stride=(1, 1))


class Correlate2d(Function):
    """z = x ⋆ k (+ b): cross-correlation of x (N, C, H, W) with k (F, C, kh, kw) -> (N, F, H', W'),
    x zero-padded by `padding` (top, bottom, left, right; negative crops), every `stride`-th
    position kept, and optionally one shared bias b (F,) per feature map, as the article's:
        z[n,f,i,j] = b[f] + Σ_c Σ_p Σ_q x[n,c,i·sh+p,j·sw+q] · k[f,c,p,q].

      ∂C/∂x = dy ∗ k  (full convolution of dy, put back on the stride-1 grid, with k: `input_grad`)
      ∂C/∂k = x ⋆ dy  (valid cross-correlation, summed over the batch: Correlate2dGradK)
      ∂C/∂b = Σ dy    (over the batch and every position of the feature map)
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, k: Tensor, *bias: Tensor, padding: Padding,
                stride: tuple[int, int]) -> np.ndarray:
        ctx.save_for_backward(x, k)
        ctx.padding, ctx.stride = padding, stride
        z, windows = B.conv2d(x.data, k.data, bias[0].data if bias else None, padding, stride)
        if ctx.needs_input_grad[1]:
            ctx.windows = windows  # what the backend gathered that ∂C/∂k may reuse (None: nothing)
        return z

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, k = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx = input_grad(dy, k, x.shape, ctx.padding, ctx.stride) if needs[0] else None
        dk = Correlate2dGradK.apply(x, dy, kernel_size=k.shape[2:], padding=ctx.padding, stride=ctx.stride,
                                    windows=ctx.windows) if needs[1] else None
        if len(needs) == 2:  # called without a bias
            return dx, dk
        return dx, dk, dy.sum(axis=(0, 2, 3)) if needs[2] else None


class Correlate2dGradK(Function):
    """dk = x ⋆ dy: Correlate2d's ∂C/∂k, the valid cross-correlation of its input x (N, C, H, W)
    with dy (N, F, H', W'), summed over the batch -> (F, C, kh, kw), x padded as in the forward:
        dk[f,c,p,q] = Σ_n Σ_i Σ_j x[n,c,i·sh+p,j·sw+q] · dy[n,f,i,j].
    The backend computes it from the windows Correlate2d's forward gathered (`windows`, which
    only the backend reads; None: gathered again). Bilinear in x and dy, so with g = ∂C/∂dk:

      ∂C/∂x  = dy ∗ g  (Correlate2d's input gradient, g in place of k)
      ∂C/∂dy = x ⋆ g   (Correlate2d's forward, g as the kernel)
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, dy: Tensor, kernel_size: tuple[int, int], padding: Padding,
                stride: tuple[int, int], windows: Any = None) -> np.ndarray:
        ctx.save_for_backward(x, dy)
        ctx.padding, ctx.stride = padding, stride
        return B.conv2d_grad_k(x.data, dy.data, kernel_size, padding, stride, windows)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, dy = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx = input_grad(dy, g, x.shape, ctx.padding, ctx.stride) if needs[0] else None
        ddy = Correlate2d.apply(x, g, padding=ctx.padding, stride=ctx.stride) if needs[1] else None
        return dx, ddy
