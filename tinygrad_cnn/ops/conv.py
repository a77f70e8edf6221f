"""The convolution primitive: batched multi-channel cross-correlation with padding and stride.

Every user-facing form (`correlate2d`, `convolve2d`, each kernel rank and mode) is this one
primitive on reshaped views; see ``tinygrad_cnn.functional``. Its backward is two more calls of
the same primitive -- the backward of a convolution is a convolution -- so it differentiates to
any order.
"""
from __future__ import annotations

from tinygrad_cnn import kernels as K
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.ops.movement import IndexAdd
from tinygrad_cnn.tensor import Tensor

Padding = tuple[int, int, int, int]


def dilate(dy: Tensor, stride: tuple[int, int]) -> Tensor:
    """Put a strided output back on the stride-1 grid, zeros between: (.., h, w) -> (.., (h−1)·sh+1, (w−1)·sw+1)."""
    sh, sw = stride
    *lead, h, w = dy.shape
    shape = (*lead, (h - 1) * sh + 1, (w - 1) * sw + 1)
    return IndexAdd.apply(dy, shape=shape, index=(..., slice(None, None, sh), slice(None, None, sw)),
                          unique=True)


class Correlate2d(Function):
    """z = x ⋆ k (+ b): cross-correlation of x (N, C, H, W) with k (F, C, kh, kw) -> (N, F, H', W'),
    x zero-padded by `padding` (top, bottom, left, right; negative crops), every `stride`-th
    position kept, and optionally one shared bias b (F,) per feature map, as the article's:
        z[n,f,i,j] = b[f] + Σ_c Σ_p Σ_q x[n,c,i·sh+p,j·sw+q] · k[f,c,p,q].

    Backward, with dy = ∂C/∂z put back on the stride-1 grid:
      ∂C/∂x = dy ∗ k  (full convolution: dy correlated with k rotated 180°, F and C swapped)
      ∂C/∂k = x ⋆ dy  (valid cross-correlation, summed over the batch as over a channel axis)
      ∂C/∂b = Σ dy    (over the batch and every position of the feature map)
    The bias is added into the correlation's own output (no second array of that size).
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, k: Tensor, *bias: Tensor, padding: Padding, stride: tuple[int, int],
                x_windows: K.ndarray | None = None) -> K.ndarray:
        # x_windows: x's im2col windows (kernels.unfold), when a forward already gathered them.
        ctx.save_for_backward(x, k)
        ctx.padding, ctx.stride = padding, stride
        if x_windows is None and K.correlation_method(x.shape, k.shape, padding, stride) == "im2col":
            x_windows = K.unfold(x.data, k.shape[2:], padding, stride)
        b = bias[0].data if bias else None
        if x_windows is not None:
            y = K.correlate_windows(x_windows, k.data, b)  # the bias added as each part of the product lands
            b = None
            if ctx.needs_input_grad[1] and stride == (1, 1):
                ctx.x_windows = x_windows  # ∂C/∂k = x ⋆ dy reads the same windows: keep them
        else:
            y = K.correlate2d_nchw(x.data, k.data, padding, stride)
        # Rows/columns of the padded input that no kept window reached (stride remainder):
        # their ∂C/∂x is zero, and ∂C/∂k must not see them.
        (top, bottom, left, right), (sh, sw) = padding, stride
        kh, kw = k.shape[-2:]
        ctx.uncovered = (x.shape[2] + top + bottom - kh - (y.shape[2] - 1) * sh,
                         x.shape[3] + left + right - kw - (y.shape[3] - 1) * sw)
        if b is not None:
            K.add_bias(y, b)
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, k = ctx.saved_tensors
        db = ()
        if len(ctx.needs_input_grad) == 3:  # called with a bias
            db = (dy.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[2] else None,)
        (top, bottom, left, right), stride = ctx.padding, ctx.stride
        rest_h, rest_w = ctx.uncovered
        kh, kw = k.shape[-2:]
        if stride != (1, 1):
            dy = dilate(dy, stride)
        dx = dk = None
        if ctx.needs_input_grad[0]:
            k_rotated = k[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
            full = (kh - 1 - top, kh - 1 - bottom + rest_h, kw - 1 - left, kw - 1 - right + rest_w)
            dx = Correlate2d.apply(dy, k_rotated, padding=full, stride=(1, 1))
        if ctx.needs_input_grad[1]:
            valid = (top, bottom - rest_h, left, right - rest_w)
            x_windows = getattr(ctx, "x_windows", None)
            dk = Correlate2d.apply(x.transpose(1, 0, 2, 3), dy.transpose(1, 0, 2, 3), padding=valid, stride=(1, 1),
                                   x_windows=None if x_windows is None else K.windows_of_transposed(x_windows),
                                   ).transpose(1, 0, 2, 3)
        return (dx, dk, *db)

