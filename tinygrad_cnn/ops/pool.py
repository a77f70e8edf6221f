"""Max pooling."""
from __future__ import annotations

import math

from tinygrad_cnn import kernels as K
from tinygrad_cnn.function import Context, Function
from tinygrad_cnn.ops.movement import IndexAdd
from tinygrad_cnn.tensor import Tensor


class MaxPool2d(Function):
    """y = the max of each (kh, kw) window of the last two axes, windows every `stride`.

    ∂C/∂x = each window's dy routed to its argmax, 0 elsewhere; where overlapping windows share
    a maximum the contributions add up. Tie rule: within a window the first maximum in
    row-major order (np.argmax) receives the gradient, as the article's `MaxPoolingMap`.
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, size: tuple[int, int], stride: tuple[int, int]) -> K.ndarray:
        # argmax: flat indices into x's memory, in the order of y's memory (kernels.maxpool2d)
        ctx.batch_last = K.is_batch_last(x.data)
        y, ctx.argmax = K.maxpool2d(x.data, size, stride)
        ctx.disjoint = stride[0] >= size[0] and stride[1] >= size[1]  # no cell in two windows
        return y

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Tensor:
        ((_, shape, _),) = ctx.edges
        if ctx.batch_last:  # the indices run in (C, H', W', N) order: dy in that order too
            dy = dy.transpose(1, 2, 3, 0)
        # Disjoint windows route within their own plane (a channel of one sample, or batch-last
        # a channel of every sample), and the routes come plane by plane: the kernel's groups.
        planes = ctx.argmax.shape[0] if ctx.batch_last else math.prod(ctx.argmax.shape[:-2])
        routed = IndexAdd.apply(dy.flatten(), shape=(math.prod(shape),), index=ctx.argmax.reshape(-1),
                                unique=ctx.disjoint, groups=planes if ctx.disjoint else 1)
        if not ctx.batch_last:
            return routed.reshape(shape)
        n, c, height, width = shape  # ∂C/∂x batch-last, as x
        return routed.reshape(c, height, width, n).transpose(3, 0, 1, 2)
