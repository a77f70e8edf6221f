"""What several test modules share: the per-primitive gradient cases, input makers, and the
check that an error was raised by the package's own argument checks. (No test module imports
another; they import this.)"""
from pathlib import Path
import traceback

import numpy as np
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import backend as B
from tinygrad_cnn import Function, Tensor, cat, grad, ops, stack, where

PACKAGE = Path(F.__file__).resolve().parent

rng = np.random.default_rng(20190528)



def r(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.random(shape) + 0.5


def distinct(*shape, step=0.1):
    return rng.permutation(int(np.prod(shape))).reshape(shape) * step


def recorded_grad(fn, t):
    """∂fn(t)/∂t with its graph recorded (create_graph), so that it can be differentiated again;
    where t does not require grad (a forward-only run), a leaf copy of it stands in."""
    if not t.requires_grad:
        t = Tensor(t.data, requires_grad=True)
    return grad(fn(t), [t], create_graph=True)[0]


# (x, the argmax of its pooling) for the cases of the route and the gather: 2×2 windows every 2
# on a (2, 5, 4) input, and overlapping (2, 3) windows every 1 on a (1, 4, 5) one
POOLED = [(x, B.maxpool2d(x, size, stride)[1])
          for x, size, stride in ((distinct(2, 5, 4), (2, 2), (2, 2)), (distinct(1, 4, 5), (2, 3), (1, 1)))]

GRAD_CASES = {
    ops.Add: [(lambda a, b: a + b, r(2, 3), r(3))],
    ops.Sub: [(lambda a, b: a - b, r(2, 1), r(1, 4))],
    ops.Mul: [(lambda a, b: a * b, r(2, 3), r(2, 3)), (lambda a: a * a * a, r(4))],
    ops.Div: [(lambda a, b: a / b, r(3), positive(2, 3))],
    ops.Pow: [(lambda a, b: a ** b, positive(3), r(2, 3)), (lambda a: a ** 3, r(4)),
              (lambda a: 2.0 ** a, r(3))],
    ops.Neg: [(lambda a: -a, r(3))],
    ops.Exp: [(lambda a: a.exp(), r(2, 2))],
    ops.Log: [(lambda a: a.log(), positive(3))],
    ops.Sigmoid: [(lambda z: z.sigmoid(), r(5) * 3)],
    ops.Tanh: [(lambda z: z.tanh(), r(5))],
    ops.Erf: [(lambda z: z.erf(), r(5) * 2), (lambda z: z.erf() * z, r(2, 3))],
    ops.SigmoidBackward: [(lambda dy, a: ops.SigmoidBackward.apply(dy, a), r(5), r(5) * 0.3 + 0.5),
                          (lambda dy, a: ops.SigmoidBackward.apply(dy, a), r(3), r(2, 3) * 0.3 + 0.5)],  # broadcast
    ops.Silu: [(lambda z: ops.Silu.apply(z) * z, r(6) * 3),
               # and inside a double backward, where SiluBackward's own backward runs
               (lambda z: (recorded_grad(lambda z: (ops.Silu.apply(z) ** 2).sum(), z) ** 2).sum(), r(2, 3) * 2)],
    ops.SiluBackward: [(lambda dy, z: ops.SiluBackward.apply(dy, z) * z, r(5), r(5) * 3),
                       (lambda dy, z: ops.SiluBackward.apply(dy, z), r(3), r(2, 3) * 3)],  # broadcast
    ops.Relu: [(lambda z: z.relu() * z, distinct(6) - 0.25)],
    ops.ReluBackward: [(lambda dy, z: ops.ReluBackward.apply(dy, z) * z, r(6), distinct(6) - 0.25),
                       (lambda dy, z: ops.ReluBackward.apply(dy, z) * z, r(3), distinct(2, 3) - 0.25)],  # broadcast
    ops.Where: [(lambda a, b: where(a.data > 0, a, b) * a, r(2, 3), r(3)),
                (lambda a: where(a.data > 0.5, a * a, a.exp()), r(4)),
                (lambda a: a.clamp(-0.5, 0.5) * a, distinct(6) * 3 - 0.75),
                (lambda a: a.abs() * a, distinct(5) - 0.25)],
    ops.Cast: [(lambda a: (a.astype(np.float32).astype(np.float64)) * a, r(3))],
    ops.Sum: [(lambda a: a.sum(), r(2, 3)), (lambda a: a.sum(axis=(0, 2), keepdims=True) * a, r(2, 3, 2)),
              (lambda a: a.mean(axis=1), r(3, 4))],
    ops.Max: [(lambda a: a.max(axis=1) * a.max(), distinct(3, 4)),
              (lambda a: a.max(axis=(0, 2), keepdims=True) * a, distinct(2, 2, 3))],
    ops.LogSoftmax: [(lambda z: F.log_softmax(z, axis=1), r(3, 4) * 3),
                    (lambda z: F.log_softmax(z, axis=0) * z, r(2, 3)),  # the saved output in a product
                    (lambda z: F.log_softmax(z, axis=-1)[:, 1] * 2, r(2, 2, 3))],
    ops.BroadcastTo: [(lambda a: a.broadcast_to((2, 3, 4)) * a, r(3, 1))],
    ops.Reshape: [(lambda a: a.reshape(3, 2) @ a, r(2, 3)), (lambda a: a.flatten(1) * 2, r(2, 2, 2))],
    ops.Transpose: [(lambda a: a.permute(2, 0, 1) * a.T.T.permute(2, 0, 1), r(2, 3, 4)),
                    (lambda a: a.swapaxes(0, 1), r(2, 3))],
    ops.GetItem: [(lambda a: a[1:, ::2] * a[0, None, ::2], r(3, 4)),
                  (lambda a: a[[0, 2, 2], [1, 1, 1]] * a[0, 1], r(3, 4)),
                  (lambda a: a[a.data > 0] ** 2, r(3, 3))],
    ops.Cat: [(lambda a, b: cat([a, b * a[:, :1]], 1) ** 2, r(2, 3), r(2, 2)),
              (lambda a: stack([a, a.exp(), a], -1), r(3, 2))],
    ops.IndexAdd: [(lambda a: a[[0, 0, 1]] * a[[0, 0, 1]], r(3, 2))],
    ops.MatMul: [(lambda a, b: a @ b, r(3, 4), r(4, 2)), (lambda a, b: a @ b, r(2, 1, 3, 4), r(5, 4, 2)),
                 (lambda a, b: a @ b, r(4), r(4, 2)), (lambda a, b: a @ b, r(3, 4), r(4)),
                 (lambda a, b: a @ b, r(4), r(4))],
    ops.Linear: [(lambda x, w, b: F.linear(x, w, b), r(5, 3), r(4, 3), r(4)),
                 (lambda x, w: F.linear(x, w) ** 2, r(2, 3, 3), r(2, 3)),  # leading axes are rows
                 (lambda x, w, b: F.linear(x, w, b) * x.sum(), r(3), r(2, 3), r(2))],  # a single vector
    ops.Correlate2d: [(lambda x, k: F.correlate2d(x, k, "valid"), r(2, 3, 5, 4), r(2, 3, 2, 3)),
                      (lambda x, k: F.correlate2d(x, k, "full", (2, 1)), r(1, 2, 4, 4), r(3, 2, 3, 2)),
                      (lambda x, k: F.convolve2d(x, k, "same", 2), r(2, 5, 6), r(2, 4, 3)),
                      (lambda x, k: F.correlate2d(x, k, "valid", 3), r(3, 7, 8), r(2, 2)),
                      # with its shared bias per feature map: ∂C/∂b = Σ dy
                      (lambda x, k, b: F.conv2d(x, k, b, stride=2, padding=1), r(2, 3, 5, 6), r(4, 3, 3, 2), r(4)),
                      (lambda x, k, b: F.conv2d(x, k, b) ** 2, r(2, 1, 4, 4), r(2, 1, 2, 2), r(2)),
                      # grouped: two groups of two channels, and depthwise with two maps per channel
                      (lambda x, k: ops.Correlate2d.apply(x, k, padding=(1, 0, 1, 1), stride=(2, 1), groups=2) ** 2,
                       r(2, 4, 5, 5), r(4, 2, 3, 2)),
                      (lambda x, k, b: F.conv2d(x, k, b, padding=1, groups=3) * x.sum(), r(2, 3, 4, 4), r(6, 1, 2, 2),
                       r(6)),
                      # dilated: dense and strided, and depthwise
                      (lambda x, k: ops.Correlate2d.apply(x, k, padding=(2, 1, 0, 2), stride=(2, 1), dilation=(2, 3)) ** 2,
                       r(2, 2, 6, 5), r(3, 2, 2, 2)),
                      (lambda x, k: F.conv2d(x, k, padding=2, groups=2, dilation=2) * x.sum(), r(1, 2, 4, 5),
                       r(2, 1, 3, 2))],
    # ∂C/∂k on its own: strided, padded (negative padding crops), and with a stride remainder
    ops.Correlate2dGradK: [
        (lambda x, dy: ops.Correlate2dGradK.apply(x, dy, kernel_size=(2, 3), padding=(1, 0, 0, 1), stride=(2, 1)),
         r(2, 3, 5, 4), r(2, 4, 3, 3)),
        (lambda x, dy: ops.Correlate2dGradK.apply(x, dy, kernel_size=(2, 2), padding=(0, -1, 1, 0), stride=(1, 2)),
         r(1, 2, 5, 4), r(1, 3, 3, 2)),
        (lambda x, dy: ops.Correlate2dGradK.apply(x, dy, kernel_size=(2, 2), padding=(1, 1, 0, 0), stride=(1, 1),
                                                  groups=2) * 1.5, r(2, 2, 3, 3), r(2, 4, 4, 2)),
        (lambda x, dy: ops.Correlate2dGradK.apply(x, dy, kernel_size=(2, 2), padding=(1, 0, 2, 1), stride=(1, 2),
                                                  dilation=(3, 2)), r(2, 2, 5, 5), r(2, 3, 3, 3)),
        # and inside a double backward: a penalty on the weight gradient
        (lambda x, k: (recorded_grad(lambda k: (F.conv2d(x, k, stride=2) ** 2).sum(), k) ** 2).sum(),
         r(2, 2, 5, 5) * 0.5, r(3, 2, 3, 3) * 0.5)],
    # ∂C/∂x on its own: strided with a remainder, padded beyond the kernel, and inside a double backward
    ops.Correlate2dGradX: [
        (lambda dy, k: ops.Correlate2dGradX.apply(dy, k, x_shape=(2, 3, 6, 5), padding=(1, 0, 0, 1), stride=(2, 2)),
         r(2, 4, 3, 2), r(4, 3, 2, 3)),
        (lambda dy, k: ops.Correlate2dGradX.apply(dy, k, x_shape=(1, 2, 3, 4), padding=(2, 0, -1, 1), stride=(3, 1)),
         r(1, 3, 2, 3), r(3, 2, 1, 2)),
        (lambda dy, k: ops.Correlate2dGradX.apply(dy, k, x_shape=(2, 4, 5, 5), padding=(1, 1, 1, 1), stride=(2, 2),
                                                  groups=4), r(2, 8, 3, 3), r(8, 1, 3, 3)),
        (lambda dy, k: ops.Correlate2dGradX.apply(dy, k, x_shape=(2, 2, 7, 6), padding=(1, 2, 2, 0), stride=(2, 1),
                                                  dilation=(2, 2)), r(2, 3, 4, 6), r(3, 2, 2, 2)),
        (lambda x, k: (recorded_grad(lambda x: (F.conv2d(x, k, stride=2, padding=1) ** 2).sum(), x) ** 2).sum(),
         r(2, 2, 5, 5) * 0.5, r(3, 2, 3, 3) * 0.5)],
    ops.BatchNorm: [(lambda x, w, b: ops.BatchNorm.apply(x, w, b, axes=(0, 2), eps=1e-5) * x, r(3, 2, 4), r(1, 2, 1),
                     r(1, 2, 1)),
                    (lambda x, w, b: ops.BatchNorm.apply(x, w, b, axes=(0,), eps=0.1) ** 3, r(5, 3), r(1, 3), r(1, 3))],
    ops.BatchNormBackward: [
        (lambda dy, x, w: ops.BatchNormBackward.apply(dy, x, w, axes=(0, 2), eps=1e-5) * x, r(3, 2, 4), r(3, 2, 4),
         r(1, 2, 1)),
        (lambda dy, x, w: ops.BatchNormBackward.apply(dy, x, w, axes=(0,), eps=0.1) ** 2, r(4, 2), r(4, 2), r(1, 2))],
    ops.BatchNormWeightGrad: [
        (lambda dy, x: ops.BatchNormWeightGrad.apply(dy, x, axes=(0, 2), eps=1e-5) ** 2, r(3, 2, 4), r(3, 2, 4)),
        (lambda dy, x: ops.BatchNormWeightGrad.apply(dy, x, axes=(0,), eps=0.1) * 1.5, r(4, 2), r(4, 2))],
    ops.MaxPool2d: [(lambda x: F.maxpool2d(x, 2), distinct(2, 5, 4)),
                    (lambda x: F.maxpool2d(x, (2, 3), 1), distinct(1, 4, 5)),
                    (lambda x: F.maxpool2d(x, 3, 2), distinct(5, 7)),
                    # −∞ padding, and ceil mode's extra cell past the end: a padded cell never wins
                    (lambda x: ops.MaxPool2d.apply(x, size=(3, 3), stride=(2, 2), padding=((1, 2), (1, 1))),
                     distinct(2, 5, 6))],
    # the route and the gather at a fixed argmax, disjoint and overlapping windows; and the
    # route inside a double backward, where its own backward (the gather) runs
    ops.MaxPool2dBackward: [
        (lambda dy: ops.MaxPool2dBackward.apply(dy, argmax=POOLED[0][1], x_shape=POOLED[0][0].shape), r(2, 2, 2)),
        (lambda dy: ops.MaxPool2dBackward.apply(dy, argmax=POOLED[1][1], x_shape=POOLED[1][0].shape) ** 2,
         r(1, 3, 3)),
        (lambda x: (recorded_grad(lambda x: (F.maxpool2d(x, 2, 1) ** 2).sum(), x) ** 2).sum(), distinct(1, 4, 5))],
    ops.MaxPool2dWithIndices: [
        (lambda g: ops.MaxPool2dWithIndices.apply(g, argmax=POOLED[0][1]), r(2, 5, 4)),
        (lambda g: ops.MaxPool2dWithIndices.apply(g, argmax=POOLED[1][1]) ** 2, r(1, 4, 5))],
}

# A float32 round trip rounds each perturbed input: finite differences need a larger step.
TOLERANCES = {ops.Cast: dict(eps=1e-3, atol=1e-4, rtol=1e-4)}


def frames_inside_the_checks(error: BaseException) -> bool:
    """The innermost frame of the traceback is the package's own check: not numpy, not pathlib,
    not a backend kernel or a primitive's forward (the backend's public entry checks arguments)."""
    innermost = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve()
    if PACKAGE not in innermost.parents:
        return False
    relative = innermost.relative_to(PACKAGE).as_posix()
    return not relative.startswith("ops/") and (relative == "backend/__init__.py" or not relative.startswith("backend/"))


@st.composite
def correlation_case(draw, stride_one=False):
    """x (N, C, H, W), k (F, C, kh, kw), padding (top, bottom, left, right; -1 crops) and stride
    of a small correlation, float64, with at least one output position."""
    n, c, f = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = tuple(draw(st.integers(-1, 3)) for _ in range(4))
    stride = (1, 1) if stride_one else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    height = draw(st.integers(max(kh - padding[0] - padding[1], 1) + 1, 12))
    width = draw(st.integers(max(kw - padding[2] - padding[3], 1) + 1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    case_rng = np.random.default_rng(seed)
    return case_rng.standard_normal((n, c, height, width)), case_rng.standard_normal((f, c, kh, kw)), padding, stride


# ---- ops for the checker's own tests (test_testing.py, test_testing_kit.py) -----------------------
class Square(Function):
    """y = x², ∂C/∂x = 2x·dy (written with our ops: differentiable again)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * x * 2


class RawSquare(Square):
    """The right first derivative, computed on raw arrays: no graph, so no second derivative."""

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return Tensor(dy.data * x.data * 2)
