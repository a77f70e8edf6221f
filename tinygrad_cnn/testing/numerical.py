"""gradcheck and gradgradcheck: analytic gradients against central differences in float64, with
non-differentiable points told apart from wrong gradients.

Kinks. Where an entry fails, the function is sampled along that entry's direction at five
points, t = −eps, −eps/2, 0, eps/2, eps (φ(t) = ⟨v, f(x + t·d)⟩, the quantity the check
differentiates). A function smooth on that segment makes the third and fourth differences
Δ³ = φ(eps) − 2φ(eps/2) + 2φ(−eps/2) − φ(−eps) and Δ⁴ = φ(eps) − 4φ(eps/2) + 6φ(0) − 4φ(−eps/2) +
φ(−eps) of the order eps³·φ''' -- far below rounding for eps = 1e-6 -- while a kink anywhere in
the segment (slopes s₋ and s₊ on its two sides) leaves max(|Δ³|, |Δ⁴|)/eps of the order of
|s₊ − s₋|, the same size as the error it causes in the central difference: at least two thirds
of that error for a single kink, wherever it sits (worked out for a hinge max(t − c, 0) with
−eps < c < eps), and more for a jump. So an entry whose failure is at least a tenth explained this
way, by a non-smoothness above the rounding of φ, is non-differentiable there
(NondifferentiableError); any other failing entry is a wrong gradient (GradcheckError), and one
of those is reported first. A value that turns non-finite inside the segment is a singularity,
also NondifferentiableError. Chainer's gradient_check fits a quadratic to five such points for
the same purpose; the ratio test here needs no tolerance on the fit.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinygrad_cnn.autograd import grad
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.testing._common import Runner, as_given, as_tuple, differentiated, entry, float64_copy
from tinygrad_cnn.testing.errors import GradcheckError, NondifferentiableError
from tinygrad_cnn.testing.variants import check_variants, dtype_tolerances, layout_names

UNIT = float(np.finfo(np.float64).eps) / 2
EXPLAINED = 0.1  # a kink explains a failure when its size is at least this fraction of the error
ROUNDING = 64    # φ's rounding: this many units of its terms' magnitude Σ|vᵢ·yᵢ|


def _numbers(value: Any, name: str, check: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{check}: {name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _validate(check: str, eps: Any, atol: Any, rtol: Any, seed: Any, max_entries: Any) -> None:
    _numbers(eps, "eps", check)
    _numbers(atol, "atol", check, positive=False)
    _numbers(rtol, "rtol", check, positive=False)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{check}: seed must be an int, got {seed!r}")
    if isinstance(max_entries, bool) or not isinstance(max_entries, (int, np.integer)) or max_entries < 0:
        raise ValueError(f"{check}: max_entries must be an int >= 0, got {max_entries!r}")


class _Segment:
    """φ(t) = ⟨v, f(x + t·d)⟩ along one direction d of input `number`, with its rounding scale."""

    def __init__(self, runner: Runner, point: list[np.ndarray], cotangents: list[Any], number: int,
                 direction: np.ndarray) -> None:
        self.runner, self.point, self.cotangents = runner, point, cotangents
        self.number, self.direction = number, direction
        self.scale = 0.0  # max over the evaluations of Σ|vᵢ·yᵢ|

    def __call__(self, t: float) -> float:
        arrays = [x + t * self.direction if n == self.number else x for n, x in enumerate(self.point)]
        _, outs = self.runner.outputs(arrays)
        total = 0.0
        with np.errstate(all="ignore"):
            for o, v in zip(outs, self.cotangents):
                if o is not None and v is not None:
                    total += float(np.vdot(o.data, v))
                    self.scale = max(self.scale, float(np.sum(np.abs(o.data * v))))
        return total


def _nondifferentiable(segment: _Segment, eps: float, ends: tuple[float, float], middle: float,
                       error: float) -> str | None:
    """Why the function is not differentiable on the segment (a sentence), or None if it is
    smooth there as far as the five samples tell."""
    minus, plus = ends
    halves = segment(-eps / 2), segment(eps / 2)
    samples = np.array([minus, halves[0], middle, halves[1], plus])
    finite = np.isfinite(samples)
    if not finite.all():
        return None if not finite.any() else "the function is not finite on the whole segment (a singularity)"
    third = samples[4] - 2 * samples[3] + 2 * samples[1] - samples[0]
    fourth = samples[4] - 4 * samples[3] + 6 * samples[2] - 4 * samples[1] + samples[0]
    kink = max(abs(third), abs(fourth)) / eps
    rounding = ROUNDING * UNIT * segment.scale / eps
    if kink > rounding and kink >= EXPLAINED * error:
        slopes = np.diff(samples) / (eps / 2)
        return (f"the slopes between the five points −eps, −eps/2, 0, eps/2, eps along it are "
                f"{', '.join(f'{s:.6g}' for s in slopes)}: a kink, a jump or a tie, not a smooth curve "
                f"(non-smoothness {kink:.3g} per unit step against an error of {error:.3g})")
    return None


def _gradcheck(fn: Callable[..., Any], inputs: tuple[Any, ...], eps: float, atol: float, rtol: float, seed: int,
               max_entries: int, layouts: Any, dtypes: Any, check: str,
               names: Callable[[int], str] | None = None) -> bool:
    _validate(check, eps, atol, rtol, seed, max_entries)
    layouts, dtypes = layout_names(layouts), dtype_tolerances(dtypes)
    positions = differentiated(inputs)
    if not positions:
        raise ValueError(f"{check}: no input to differentiate (pass float arrays or Tensors with requires_grad=True)")
    name = names or (lambda i: f"input {i}")
    point = [float64_copy(inputs[i]) for i in positions]
    rng = np.random.default_rng(seed)
    runner = Runner(fn, inputs, positions, check)
    leaves, outputs = runner.outputs(point)
    cotangents = [None if o is None else rng.standard_normal(o.shape) for o in outputs]
    analytic = runner.vjp(leaves, outputs, cotangents)
    base = ([None if o is None else o.data for o in outputs], analytic)
    del leaves, outputs
    centre = _Segment(runner, point, cotangents, 0, np.zeros_like(point[0]))
    middle = centre(0.0)  # φ(0), and the scale of its terms

    kinks: list[str] = []
    for number, (x, exact) in enumerate(zip(point, analytic)):
        exact = np.asarray(exact, np.float64)
        if x.size <= max_entries:
            directions = [np.eye(1, x.size, j).reshape(x.shape) for j in range(x.size)]
            got = exact.reshape(-1)
        else:
            directions = [rng.standard_normal(x.shape) for _ in range(3)]
            got = np.array([np.vdot(exact, d) for d in directions])
        segments = [_Segment(runner, point, cotangents, number, direction) for direction in directions]
        ends = [(segment(-eps), segment(eps)) for segment in segments]
        with np.errstate(invalid="ignore", over="ignore"):
            numeric = np.array([(plus - minus) / (2 * eps) for minus, plus in ends])
            error = np.abs(got - numeric)
            excess = error - (atol + rtol * np.abs(numeric))
        excess = np.where(np.isnan(excess), np.inf, excess)
        for j in np.argsort(-excess, kind="stable"):
            if excess[j] <= 0:
                break
            where = (f"entry {entry(int(j), x.shape)}" if x.size <= max_entries else f"random direction {j}")
            head = (f"{check}: gradient of {name(positions[number])} (shape {x.shape}) is wrong at {where}: "
                    f"analytic {got[j]:.10g} vs numeric {numeric[j]:.10g}")
            segment = segments[j]
            segment.scale = max(segment.scale, centre.scale)
            reason = _nondifferentiable(segment, eps, ends[j], middle, float(error[j]))
            if reason is None:
                raise GradcheckError(
                    f"{head} (|difference| {error[j]:.3g} > atol {atol:g} + rtol {rtol:g}·|numeric|; "
                    "values of vᵀ·∂f/∂x for a fixed random cotangent v)")
            kinks.append(f"{check}: fn is not differentiable at {name(positions[number])} (shape {x.shape}), "
                         f"{where}, within eps = {eps:g}: analytic {got[j]:.10g} vs central difference "
                         f"{numeric[j]:.10g}, and {reason}")
    if kinks:
        more = f"; {len(kinks) - 1} more such entries" if len(kinks) > 1 else ""
        raise NondifferentiableError(f"{kinks[0]}{more}. This says nothing of the backward rule: check at points "
                                     "away from kinks and ties")
    check_variants(runner, point, cotangents, [name(i) for i in positions], layouts, dtypes, base,
                   [as_given(inputs[i]) for i in positions])
    return True


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    max_entries: int = 1024,
    layouts: Any = True,
    dtypes: Any = ("float32",),
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central differences in float64.

    Differentiated inputs are the float ndarrays and the Tensors with ``requires_grad=True``
    (other arguments pass through unchanged); each becomes a float64 Tensor. The output (a
    Tensor or a tuple of them) is contracted with a fixed random cotangent v, and for every
    input x the analytic vᵀ∂f/∂x from ``grad`` is compared entry by entry with
    (⟨v, f(x + eps·e)⟩ − ⟨v, f(x − eps·e)⟩) / 2eps. Inputs with more than `max_entries`
    entries are checked along three random directions instead. Passes when every
    |analytic − numeric| ≤ atol + rtol·|numeric|; otherwise raises GradcheckError naming the
    worst entry, or NondifferentiableError (a subclass) when every failing entry sits where fn
    has a kink, a jump or a tie along that entry (see this module's notes).

    Then fn runs again, outputs and vᵀ∂f/∂x compared with the float64 run: on its inputs in
    other memory layouts (`layouts`: True for a column-major and a strided view, False for
    none, or names from ``tinygrad_cnn.testing.layouts.LAYOUTS``) and in float32 (`dtypes`:
    ``()`` for none, or ``{"float32": rtol}``); see ``tinygrad_cnn.testing.variants``. Returns True.
    """
    return _gradcheck(fn, inputs, eps, atol, rtol, seed, max_entries, layouts, dtypes, "gradcheck")


def gradgradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    max_entries: int = 1024,
    layouts: Any = True,
    dtypes: Any = ("float32",),
) -> bool:
    """Check second derivatives: gradcheck of the vector-Jacobian product
    (x, v) ↦ vᵀ ∂fn(x)/∂x, built with ``grad(..., create_graph=True)``, with respect to the
    inputs and to v (as ``torch.autograd.gradgradcheck``). Arguments as `gradcheck`; a kink of
    the first derivative (a jump of the second) raises NondifferentiableError."""
    _validate("gradgradcheck", eps, atol, rtol, seed, max_entries)
    positions = differentiated(inputs)
    if not positions:
        raise ValueError("gradgradcheck: no input to differentiate (pass float arrays or Tensors with "
                         "requires_grad=True)")
    rng = np.random.default_rng(seed + 1)
    first = Runner(fn, inputs, positions, "gradgradcheck")
    _, outputs = first.outputs([float64_copy(inputs[i]) for i in positions])
    live = [k for k, o in enumerate(outputs) if o is not None and o.requires_grad]
    cotangents = [rng.standard_normal(outputs[k].shape) for k in live]
    count = len(inputs)

    def vjp(*args: Any) -> tuple[Tensor, ...]:
        outs = as_tuple(fn(*args[:count]))
        leaves = [args[i] for i in positions]
        try:
            grads = grad([outs[k] for k in live], leaves, grad_outputs=list(args[count:]), create_graph=True,
                         allow_unused=True)
        except Exception as error:  # the first backward pass fails: the op's failure
            raise GradcheckError(f"gradgradcheck: the backward pass raised {type(error).__name__}: {error}") from error
        # An input the first gradient does not reach has a zero gradient (no graph at all).
        return tuple(Tensor._make(np.zeros(x.shape, x.dtype)) if g is None else g for g, x in zip(grads, leaves))

    def names(i: int) -> str:
        return f"input {i}" if i < count else f"the cotangent of output {live[i - count]}"

    return _gradcheck(vjp, tuple(inputs) + tuple(cotangents), eps, atol, rtol, seed, max_entries, layouts, dtypes,
                      "gradgradcheck", names)

