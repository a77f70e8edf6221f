"""Batch normalization's normalizing step, as a primitive: its composition from means, a power
and a division is exact, but makes a dozen passes over an activation where a fused forward and
backward make three each.

Notation: x̂ = (x − μ)·s with μ and σ² the mean and biased variance of x over `axes` (per
channel: every axis but the channel one), s = 1/√(σ² + ε), M the count of values averaged,
⟨u⟩ the mean of u over `axes`, dy = ∂C/∂x̂.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import backend as B
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.tensor import Tensor


class BatchNorm(Function):
    """x̂ = (x − μ)/√(σ² + ε), μ and σ² the batch's own statistics over `axes`.
    ∂C/∂x = s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩)  (BatchNormBackward)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, axes: tuple[int, ...], eps: float) -> np.ndarray:
        y, ctx.stats = B.batch_norm(x.data, axes, eps)  # what the backend's backward may reuse (None: nothing)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.eps = axes, eps
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        saved = None if ctx.stats is None else (y.data, ctx.stats)
        return BatchNormBackward.apply(dy, x, axes=ctx.axes, eps=ctx.eps, saved=saved)


class BatchNormBackward(Function):
    """dx = s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩), BatchNorm's ∂C/∂x (`saved`: what the backend's forward
    handed back for it, which only the backend reads; None: computed from x). With g = ∂C/∂dx:

      ∂C/∂dy = s·(g − ⟨g⟩ − x̂·⟨g·x̂⟩)  (itself: dy ↦ dx is s times a symmetric projection)
      ∂C/∂x  = −s²·(x̂·(⟨g·dy⟩ − ⟨dy⟩⟨g⟩ − 3⟨dy·x̂⟩⟨g·x̂⟩) + ⟨g·x̂⟩·(dy − ⟨dy⟩) + ⟨dy·x̂⟩·(g − ⟨g⟩))

    (the second, with s and x̂ recomputed from x as tensor expressions, so it differentiates on)."""

    @staticmethod
    def forward(ctx: Context, dy: Tensor, x: Tensor, axes: tuple[int, ...], eps: float,
                saved: Any = None) -> np.ndarray:
        ctx.save_for_backward(dy, x)
        ctx.axes, ctx.eps = axes, eps
        return B.batch_norm_backward(dy.data, x.data, axes, eps, saved)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        dy, x = ctx.saved_tensors
        axes, needs = ctx.axes, ctx.needs_input_grad
        ddy = BatchNormBackward.apply(g, x, axes=axes, eps=ctx.eps) if needs[0] else None
        dx = None
        if needs[1]:
            def mean(u: Tensor) -> Tensor:
                return u.mean(axis=axes, keepdims=True)

            centred = x - mean(x)
            s = (mean(centred * centred) + ctx.eps) ** -0.5
            x_hat = centred * s
            a, b, g_mean, c = mean(dy), mean(dy * x_hat), mean(g), mean(g * x_hat)
            dx = -(s * s) * (x_hat * (mean(g * dy) - a * g_mean - 3 * b * c) + c * (dy - a) + b * (g - g_mean))
        return ddy, dx
