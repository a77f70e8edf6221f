"""Every primitive's gradient and second derivative against finite differences (float64).

GRAD_CASES (tests/helpers.py) maps each primitive to functions that exercise it; `test_every_primitive_has_a_case`
fails when a new Function subclass appears without one, and `test_case_uses_its_primitive`
checks that each case really runs the primitive it claims to test.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import GRAD_CASES, TOLERANCES

from tinygrad_cnn import Function, Tensor, grad, ops
from tinygrad_cnn.function import Context
from tinygrad_cnn.testing import gradcheck, gradgradcheck
from tinygrad_cnn.testing import strategies as tst

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
