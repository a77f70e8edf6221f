"""Batch normalization as primitives: its composition from means, a power, a division, a scale
and a shift is exact, but makes a dozen passes over an activation where a fused forward and
backward make a few each (and keeps several activation-sized intermediates for the backward,
where the primitive keeps only its input).

Notation: x̂ = (x − μ)·s with μ and σ² the mean and biased variance of x over `axes` (per
channel: every axis but the channel one), s = 1/√(σ² + ε),
⟨u⟩ the mean of u over `axes`, P(u) = u − ⟨u⟩ − x̂·⟨u·x̂⟩ (per channel a symmetric projection),
w and b the scale and shift, one value per channel, in the statistics' shape (keepdims).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.saved import in_place
from tinygrad_cnn.tensor import Tensor


class BatchNorm(Function):
    """y = x̂·w + b, with the batch's own statistics. ∂C/∂x = w·s·P(dy) (BatchNormBackward),
    ∂C/∂w = Σ dy·x̂ (BatchNormWeightGrad), ∂C/∂b = Σ dy.

    `running` (running_mean, running_var, momentum): buffers moved in place toward the batch's
    mean and unbiased variance, as PyTorch's batch_norm does in training mode."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, axes: tuple[int, ...], eps: float,
                running: tuple[Tensor, Tensor, float] | None = None) -> np.ndarray:
        y, mean, var, ctx.stats = B.batch_norm(x.data, weight.data, bias.data, axes, eps)  # ctx.stats: the backend's
        if running is not None:
            running_mean, running_var, momentum = running
            count = y.size // mean.size
            with in_place(running_mean.data), in_place(running_var.data):  # a graph holding them sees a new version
                running_mean.data *= 1 - momentum
                running_mean.data += momentum * mean.reshape(running_mean.shape)
                running_var.data *= 1 - momentum
                running_var.data += momentum * count / max(count - 1, 1) * var.reshape(running_var.shape)
        ctx.save_for_backward(x, weight)
        ctx.axes, ctx.eps = axes, eps
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        needs, axes, eps = ctx.needs_input_grad, ctx.axes, ctx.eps
        dx = BatchNormBackward.apply(dy, x, weight, axes=axes, eps=eps, saved=ctx.stats) if needs[0] else None
        dw = BatchNormWeightGrad.apply(dy, x, axes=axes, eps=eps, saved=ctx.stats) if needs[1] else None
        db = dy.sum(axis=axes, keepdims=True) if needs[2] else None
        return dx, dw, db


class BatchNormBackward(Function):
    """dx = w·s·P(dy), BatchNorm's ∂C/∂x (`saved`: what the backend's forward handed back for
    it, which only the backend reads; None: computed from x). With g = ∂C/∂dx:

      ∂C/∂dy = w·s·P(g)  (itself: P is symmetric)
      ∂C/∂w  = Σ g·s·P(dy)  (itself with w = 1, times g, summed)
      ∂C/∂x  = −s²·(x̂·(⟨h·dy⟩ − ⟨dy⟩⟨h⟩ − 3⟨dy·x̂⟩⟨h·x̂⟩) + ⟨h·x̂⟩·(dy − ⟨dy⟩) + ⟨dy·x̂⟩·(h − ⟨h⟩)), h = g·w

    (the last with s and x̂ recomputed from x as tensor expressions, so it differentiates on)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, x: Tensor, weight: Tensor, axes: tuple[int, ...], eps: float,
                saved: Any = None) -> np.ndarray:
        ctx.save_for_backward(dy, x, weight)
        ctx.axes, ctx.eps = axes, eps
        return B.batch_norm_backward(dy.data, x.data, weight.data, axes, eps, saved)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        dy, x, weight = ctx.saved_tensors
        axes, eps, needs = ctx.axes, ctx.eps, ctx.needs_input_grad
        ddy = BatchNormBackward.apply(g, x, weight, axes=axes, eps=eps) if needs[0] else None
        dx = dw = None
        if needs[1]:
            def mean(u: Tensor) -> Tensor:
                return u.mean(axis=axes, keepdims=True)

            h = g * weight
            centred = x - mean(x)
            s = (mean(centred * centred) + eps) ** -0.5
            x_hat = centred * s
            a, b, h_mean, c = mean(dy), mean(dy * x_hat), mean(h), mean(h * x_hat)
            dx = -(s * s) * (x_hat * (mean(h * dy) - a * h_mean - 3 * b * c) + c * (dy - a) + b * (h - h_mean))
        if needs[2]:
            unit = Tensor(np.ones(weight.shape, weight.dtype))
            dw = (g * BatchNormBackward.apply(dy, x, unit, axes=axes, eps=eps)).sum(axis=axes, keepdims=True)
        return ddy, dx, dw


class BatchNormWeightGrad(Function):
    """dw = Σ dy·x̂ over `axes` (keepdims), BatchNorm's ∂C/∂w. With g = ∂C/∂dw (one value per
    channel): ∂C/∂dy = x̂·g (BatchNorm with scale g, no shift), ∂C/∂x = g·s·P(dy)
    (BatchNormBackward with scale g)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, x: Tensor, axes: tuple[int, ...], eps: float, saved: Any = None
                ) -> np.ndarray:
        ctx.save_for_backward(dy, x)
        ctx.axes, ctx.eps = axes, eps
        return B.batch_norm_weight_grad(dy.data, x.data, axes, eps, saved)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        dy, x = ctx.saved_tensors
        axes, eps, needs = ctx.axes, ctx.eps, ctx.needs_input_grad
        ddy = BatchNorm.apply(x, g, Tensor(np.zeros(g.shape, g.dtype)), axes=axes, eps=eps) if needs[0] else None
        dx = BatchNormBackward.apply(dy, x, g, axes=axes, eps=eps) if needs[1] else None
        return ddy, dx
