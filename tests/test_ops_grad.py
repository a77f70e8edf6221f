"""Every primitive's gradient and second derivative against finite differences (float64).

GRAD_CASES maps each primitive to functions that exercise it; `test_every_primitive_has_a_case`
fails when a new Function subclass appears without one, and `test_case_uses_its_primitive`
checks that each case really runs the primitive it claims to test.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import Function, Tensor, grad, ops
from tinygrad_cnn.function import Context
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst

rng = np.random.default_rng(20190528)


def r(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.random(shape) + 0.5


def distinct(*shape, step=0.1):
    return rng.permutation(int(np.prod(shape))).reshape(shape) * step


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
    ops.SigmoidBackward: [(lambda dy, a: ops.SigmoidBackward.apply(dy, a), r(5), r(5) * 0.3 + 0.5),
                          (lambda dy, a: ops.SigmoidBackward.apply(dy, a), r(3), r(2, 3) * 0.3 + 0.5)],  # broadcast
    ops.Relu: [(lambda z: z.relu() * z, distinct(6) - 0.25)],
    ops.ReluBackward: [(lambda dy, z: ops.ReluBackward.apply(dy, z) * z, r(6), distinct(6) - 0.25),
                       (lambda dy, z: ops.ReluBackward.apply(dy, z) * z, r(3), distinct(2, 3) - 0.25)],  # broadcast
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
    ops.Transpose: [(lambda a: a.transpose(2, 0, 1) * a.T.T.transpose(2, 0, 1), r(2, 3, 4)),
                    (lambda a: a.swapaxes(0, 1), r(2, 3))],
    ops.GetItem: [(lambda a: a[1:, ::2] * a[0, None, ::2], r(3, 4)),
                  (lambda a: a[[0, 2, 2], [1, 1, 1]] * a[0, 1], r(3, 4)),
                  (lambda a: a[a.data > 0] ** 2, r(3, 3))],
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
                      (lambda x, k, b: F.conv2d(x, k, b) ** 2, r(2, 1, 4, 4), r(2, 1, 2, 2), r(2))],
    ops.MaxPool2d: [(lambda x: F.maxpool2d(x, 2), distinct(2, 5, 4)),
                    (lambda x: F.maxpool2d(x, (2, 3), 1), distinct(1, 4, 5)),
                    (lambda x: F.maxpool2d(x, 3, 2), distinct(5, 7))],
}
# A float32 round trip rounds each perturbed input: finite differences need a larger step.
TOLERANCES = {ops.Cast: dict(eps=1e-3, atol=1e-4, rtol=1e-4)}
CASES = [pytest.param(fn, args, TOLERANCES.get(op, {}), id=f"{op.__name__}-{i}")
         for op, cases in GRAD_CASES.items() for i, (fn, *args) in enumerate(cases)]


def _all_primitives():
    found, todo = set(), list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("tinygrad_cnn."):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_primitive_has_a_case():
    missing = {cls.__name__ for cls in _all_primitives()} - {cls.__name__ for cls in GRAD_CASES}
    assert not missing, f"primitives without a gradient test: {sorted(missing)}"
    assert set(ops.PRIMITIVES) == _all_primitives()


def _ops_in_graph(tensor):
    seen, todo = set(), [tensor._ctx]
    while todo:
        node = todo.pop()
        if isinstance(node, Context):
            seen.add(node.fn)
            todo.extend(edge for edge, _, _ in node.edges)
    return seen


@pytest.mark.parametrize("op", list(GRAD_CASES))
def test_case_uses_its_primitive(op):
    for fn, *args in GRAD_CASES[op]:
        inputs = [Tensor(a, requires_grad=True) for a in args]
        out = fn(*inputs)
        used = _ops_in_graph(out)
        if op is ops.IndexAdd:  # IndexAdd runs in the backward of GetItem: look at that graph
            used = set().union(*(_ops_in_graph(g) for g in grad(out.sum(), inputs, create_graph=True)))
        assert op in used, f"{op.__name__} case does not run {op.__name__}: {sorted(c.__name__ for c in used)}"


@pytest.mark.parametrize("fn, args, tolerance", CASES)
def test_gradient(fn, args, tolerance):
    gradcheck(fn, *args, **({"atol": 1e-7, "rtol": 1e-6} | tolerance))


@pytest.mark.parametrize("fn, args, tolerance", CASES)
def test_second_derivative(fn, args, tolerance):
    gradgradcheck(fn, *args, **({"atol": 1e-6, "rtol": 1e-5} | tolerance))


@settings(max_examples=30, deadline=None)
@given(tst.broadcastable_pairs(min_value=-3, max_value=3),
       st.sampled_from(["add", "sub", "mul", "div"]))
def test_broadcasting_binary_gradients(pair, name):
    a, b = pair
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b * b + 1)}[name]
    gradcheck(fn, a, b, atol=1e-7, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(tst.arrays(min_value=-3, max_value=3))
def test_unary_gradients(a):
    gradcheck(lambda a: (a.sigmoid() + a.tanh() + (a * 0.3).exp()).sum(), a, atol=1e-7, rtol=1e-6)
