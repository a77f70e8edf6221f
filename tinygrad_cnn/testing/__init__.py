"""Gradient checks for users' own ops and compositions (public API).

``gradcheck(fn, *inputs)`` compares the analytic gradient that ``backward`` derives with
central finite differences in float64; ``gradgradcheck`` does the same for the gradient of the
gradient. ``tinygrad_cnn.testing.strategies`` has hypothesis strategies to draw the inputs
(it needs hypothesis; these two functions need only numpy).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinygrad_cnn.autograd import grad
from tinygrad_cnn.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences."""


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _differentiated(inputs: tuple[Any, ...]) -> list[int]:
    """Positions to differentiate: float ndarrays, and Tensors that require grad."""
    return [
        i for i, value in enumerate(inputs)
        if (isinstance(value, Tensor) and value.requires_grad)
        or (isinstance(value, np.ndarray) and value.dtype.kind == "f")
    ]


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    max_entries: int = 1024,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central differences in float64.

    Differentiated inputs are the float ndarrays and the Tensors with ``requires_grad=True``
    (other arguments pass through unchanged); each becomes a float64 Tensor. The output (a
    Tensor or a tuple of them) is contracted with a fixed random cotangent v, and for every
    input x the analytic vᵀ∂f/∂x from ``grad`` is compared entry by entry with
    (⟨v, f(x + eps·e)⟩ − ⟨v, f(x − eps·e)⟩) / 2eps. Inputs with more than `max_entries`
    entries are checked along three random directions instead. Passes when every
    |analytic − numeric| ≤ atol + rtol·|numeric|; otherwise raises GradcheckError naming the
    worst entry. Returns True.
    """
    positions = _differentiated(inputs)
    if not positions:
        raise ValueError("gradcheck: no input to differentiate (pass float arrays or Tensors with requires_grad=True)")
    point = [np.array(np.asarray(inputs[i]), dtype=np.float64) for i in positions]
    rng = np.random.default_rng(seed)

    def evaluate(arrays: list[np.ndarray]) -> tuple[list[Any], tuple[Any, ...]]:
        args = list(inputs)
        for i, array in zip(positions, arrays):
            args[i] = Tensor(array, requires_grad=True, dtype=np.float64)
        return args, _as_tuple(fn(*args))

    args, outputs = evaluate(point)
    for output in outputs:
        if output is not None and not isinstance(output, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(output).__name__}")
    cotangents = [None if o is None else rng.standard_normal(o.shape) for o in outputs]

    def project(arrays: list[np.ndarray]) -> float:
        _, outs = evaluate(arrays)
        return float(sum(np.vdot(o.data, v) for o, v in zip(outs, cotangents) if o is not None))

    live = [(o, v) for o, v in zip(outputs, cotangents) if o is not None and o.requires_grad]
    analytic: list[np.ndarray] = [np.zeros_like(p) for p in point]
    if live:
        grads = grad([o for o, _ in live], [args[i] for i in positions],
                     grad_outputs=[Tensor(v, dtype=o.dtype) for o, v in live], allow_unused=True)
        analytic = [a if g is None else np.asarray(g.data, dtype=np.float64) for a, g in zip(analytic, grads)]

    for number, (x, exact) in enumerate(zip(point, analytic)):
        if x.size <= max_entries:
            directions = [np.eye(1, x.size, j).reshape(x.shape) for j in range(x.size)]
            got = exact.reshape(-1)
        else:
            directions = [rng.standard_normal(x.shape) for _ in range(3)]
            got = np.array([np.vdot(exact, d) for d in directions])
        numeric = np.empty(len(directions))
        for j, direction in enumerate(directions):
            plus = [p if n != number else x + eps * direction for n, p in enumerate(point)]
            minus = [p if n != number else x - eps * direction for n, p in enumerate(point)]
            numeric[j] = (project(plus) - project(minus)) / (2 * eps)
        excess = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and not np.all(excess <= 0):
            worst = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)))
            where = (f"entry {tuple(int(i) for i in np.unravel_index(worst, x.shape))}" if x.size <= max_entries
                     else f"random direction {worst}")
            raise GradcheckError(
                f"gradcheck: gradient of input {positions[number]} (shape {x.shape}) is wrong at "
                f"{where}: analytic {got[worst]:.10g} vs numeric {numeric[worst]:.10g} "
                f"(|difference| {abs(got[worst] - numeric[worst]):.3g} > atol {atol:g} + rtol {rtol:g}·|numeric|; "
                "values of vᵀ·∂f/∂x for a fixed random cotangent v)"
            )
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    max_entries: int = 1024,
) -> bool:
    """Check second derivatives: gradcheck of the vector-Jacobian product
    (x, v) ↦ vᵀ ∂fn(x)/∂x, built with ``grad(..., create_graph=True)``, with respect to the
    inputs and to v (as ``torch.autograd.gradgradcheck``). Arguments as `gradcheck`."""
    positions = _differentiated(inputs)
    rng = np.random.default_rng(seed + 1)
    with_grad = [Tensor(np.asarray(v), requires_grad=True, dtype=np.float64) if i in positions else v
                 for i, v in enumerate(inputs)]
    outputs = _as_tuple(fn(*with_grad))
    cotangents = [rng.standard_normal(o.shape) for o in outputs if o is not None and o.requires_grad]
    count = len(inputs)

    def vjp(*args: Any) -> tuple[Tensor, ...]:
        outs = [o for o in _as_tuple(fn(*args[:count])) if o is not None and o.requires_grad]
        diff = [args[i] for i in positions]
        grads = grad(outs, diff, grad_outputs=list(args[count:]), create_graph=True, allow_unused=True)
        # An input the first gradient does not reach has a zero gradient (no graph at all).
        return tuple(Tensor._make(np.zeros(x.shape)) if g is None else g for g, x in zip(grads, diff))

    return gradcheck(vjp, *inputs, *cotangents, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     max_entries=max_entries)
