"""The convolution primitives: batched multi-channel cross-correlation with padding and stride,
and its weight gradient.

Every user-facing form (`correlate2d`, `convolve2d`, `conv2d`, each kernel rank and mode) is
Correlate2d on reshaped views; see ``tinygrad_cnn.functional``. Its backward is more
correlations -- the backward of a convolution is a convolution -- so it differentiates to any
order.
"""
from __future__ import annotations

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.tensor import Tensor

Padding = tuple[int, int, int, int]


def input_grad(dy: Tensor, k: Tensor, x_shape: tuple[int, ...], padding: Padding, stride: tuple[int, int],
               groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> Tensor:
    """∂C/∂x = dy ∗ k for z = x ⋆ k (Correlate2dGradX): the full convolution of dy, put back on
    the stride-1 grid, with k."""
    return Correlate2dGradX.apply(dy, k, x_shape=tuple(x_shape), padding=padding, stride=stride, groups=groups,
                                  dilation=dilation)


class Correlate2d(Function):
    """z = x ⋆ k (+ b): cross-correlation of x (N, C, H, W) with k (F, C, kh, kw) -> (N, F, H', W'),
    x zero-padded by `padding` (top, bottom, left, right; negative crops), every `stride`-th
    position kept, the kernel's taps `dilation` apart, and optionally one shared bias b (F,)
    per feature map, as the article's:
        z[n,f,i,j] = b[f] + Σ_c Σ_p Σ_q x[n,c,i·sh+p·dh,j·sw+q·dw] · k[f,c,p,q];
    with `groups` G, the channels and maps split into G groups, each map summing only over its
    group's C/G channels (k is (F, C/G, kh, kw)). The gradients below hold group by group.

      ∂C/∂x = dy ∗ k  (full convolution of dy, put back on the stride-1 grid, with k: Correlate2dGradX)
      ∂C/∂k = x ⋆ dy  (valid cross-correlation, summed over the batch: Correlate2dGradK)
      ∂C/∂b = Σ dy    (over the batch and every position of the feature map)
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, k: Tensor, *bias: Tensor, padding: Padding,
                stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
        ctx.save_for_backward(x, k)
        ctx.geometry = dict(padding=padding, stride=stride, groups=groups, dilation=dilation)
        return B.conv2d(x.data, k.data, bias[0].data if bias else None, padding, stride, groups, dilation)

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, k = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx = input_grad(dy, k, x.shape, **ctx.geometry) if needs[0] else None
        dk = Correlate2dGradK.apply(x, dy, kernel_size=k.shape[2:], **ctx.geometry) if needs[1] else None
        if len(needs) == 2:  # called without a bias
            return dx, dk
        return dx, dk, dy.sum(axis=(0, 2, 3)) if needs[2] else None


class Correlate2dGradK(Function):
    """dk = x ⋆ dy: Correlate2d's ∂C/∂k, the valid cross-correlation of its input x (N, C, H, W)
    with dy (N, F, H', W'), summed over the batch -> (F, C, kh, kw), x padded as in the forward:
        dk[f,c,p,q] = Σ_n Σ_i Σ_j x[n,c,i·sh+p·dh,j·sw+q·dw] · dy[n,f,i,j].
    Bilinear in x and dy, so with g = ∂C/∂dk:

      ∂C/∂x  = dy ∗ g  (Correlate2d's input gradient, g in place of k)
      ∂C/∂dy = x ⋆ g   (Correlate2d's forward, g as the kernel)
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, dy: Tensor, kernel_size: tuple[int, int], padding: Padding,
                stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
        ctx.save_for_backward(x, dy)
        ctx.geometry = dict(padding=padding, stride=stride, groups=groups, dilation=dilation)
        return B.conv2d_grad_k(x.data, dy.data, kernel_size, padding, stride, groups, dilation)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, dy = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx = input_grad(dy, g, x.shape, **ctx.geometry) if needs[0] else None
        ddy = Correlate2d.apply(x, g, **ctx.geometry) if needs[1] else None
        return dx, ddy


class Correlate2dGradX(Function):
    """dx = dy ∗ k: Correlate2d's ∂C/∂x, the full convolution of dy (N, F, H', W') put back on the
    stride-1 grid with k (F, C, kh, kw) -> x's shape (N, C, H, W) (a transposed convolution):
    every dy value spreads its kernel-weighted copy back over the window it came from,
        dx_padded[n,c,i·sh+p·dh,j·sw+q·dw] += Σ_f dy[n,f,i,j] · k[f,c,p,q],
    and the forward's padding is taken off. Bilinear in dy and k, so with g = ∂C/∂dx:

      ∂C/∂dy = g ⋆ k   (Correlate2d's forward, g as the input)
      ∂C/∂k  = g ⋆ dy  (Correlate2dGradK, g as the input)
    """

    @staticmethod
    def forward(ctx: Context, dy: Tensor, k: Tensor, x_shape: tuple[int, ...], padding: Padding,
                stride: tuple[int, int], groups: int = 1, dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
        ctx.save_for_backward(dy, k)
        ctx.geometry = dict(padding=padding, stride=stride, groups=groups, dilation=dilation)
        return B.conv2d_grad_x(dy.data, k.data, x_shape, padding, stride, groups, dilation)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        dy, k = ctx.saved_tensors
        needs = ctx.needs_input_grad
        ddy = Correlate2d.apply(g, k, **ctx.geometry) if needs[0] else None
        dk = Correlate2dGradK.apply(g, dy, kernel_size=k.shape[2:], **ctx.geometry) if needs[1] else None
        return ddy, dk
