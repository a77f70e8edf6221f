"""Every check also runs fn on non-contiguous views of its inputs and in float32, and compares
with the float64, C-order run: a layout or a dtype that breaks is named.

Tolerances, per dtype, are relative to the largest |value| of all the outputs (for an output) or
of all the vᵀ∂f/∂x (for a gradient), and at least the size the other kind implies (a gradient is
about |v|·|f|/|x|), since an entry, or a whole array, can cancel to far below the rounding of
its terms:

* another layout, float64: rtol 1e-8. The arithmetic is the same up to the order of summation
  (BLAS and numpy block differently by stride), a few ulps of the terms; a layout bug (reading
  the buffer in the wrong order) is wrong by the size of the values.
* float32: rtol 1e-3, against float64 at the same float32-rounded inputs and cotangents, so
  that only fn's own float32 arithmetic is measured (its rounding is 6e-8 per operation), not
  the rounding of the inputs. Arrays whose float64 values exceed float32's range are skipped.

A mismatch beyond that is then weighed against the float64 function itself: if perturbing the
inputs and every primitive's result, forward and backward, by a few roundings of the dtype
compared (4·2⁻²⁴ relative for float32, 4·2⁻⁵³ for a layout, random signs, three tries: a
Monte Carlo estimate of rounding) moves the float64 result by a quarter of the mismatch or more,
rounding explains it -- a sum that cancels to nearly 0, log(1 + x²) for a tiny x, BatchNorm of
a nearly constant channel, a ReLU whose input float32 cannot tell from 0 -- and the check
passes; otherwise GradcheckError names the layout or dtype, the array and the entry. So the
tolerance is relative where fn is well-conditioned and follows fn's own sensitivity where it is
not. The perturbed run hooks every primitive through the engine's trace hook
(``tinygrad_cnn.function.config.trace``), the one place that sees each result as it is made.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinygrad_cnn.function import using_config
from tinygrad_cnn.testing._common import Runner, entry, largest_difference, magnitude
from tinygrad_cnn.testing.errors import GradcheckError
from tinygrad_cnn.testing.layouts import DEFAULT, LAYOUTS, in_layout

LAYOUT_RTOL = 1e-8
DTYPE_RTOL = {np.dtype(np.float32): 1e-3}
FLOAT32_MAX = float(np.finfo(np.float32).max)

Results = tuple[list[Any], list[np.ndarray]]


def layout_names(layouts: Any) -> tuple[str, ...]:
    """`layouts` argument: True (the default pair), False or () (none), or names of LAYOUTS."""
    if layouts is True:
        return DEFAULT
    if layouts is False or layouts is None:
        return ()
    names = (layouts,) if isinstance(layouts, str) else tuple(layouts)
    for name in names:
        if name not in LAYOUTS:
            raise ValueError(f"layouts must be True, False or names from {sorted(LAYOUTS)}, got {layouts!r}")
    return names


def dtype_tolerances(dtypes: Any) -> dict[np.dtype, float]:
    """`dtypes` argument: dtypes to compare with float64 (float32 is the only other one a
    Tensor holds), or a dict {dtype: rtol}; () or None for none."""
    if dtypes is None or dtypes is False:
        return {}
    items = dtypes.items() if isinstance(dtypes, dict) else [(d, None) for d in (
        (dtypes,) if isinstance(dtypes, (str, type, np.dtype)) else dtypes)]
    out = {}
    for name, rtol in items:
        try:
            dtype = np.dtype(name)
        except TypeError:
            raise TypeError(f"dtypes must name float dtypes, got {dtypes!r}") from None
        if dtype not in DTYPE_RTOL:
            raise ValueError(f"dtypes may hold float32 (compared with the float64 run), got {dtypes!r}")
        if rtol is not None and not (isinstance(rtol, (int, float)) and rtol > 0):
            raise ValueError(f"dtypes: the tolerance of {dtype} must be a number > 0, got {rtol!r}")
        out[dtype] = DTYPE_RTOL[dtype] if rtol is None else float(rtol)
    return out


def _labels(names: Sequence[str], outs: int) -> list[str]:
    return [f"output {k}" for k in range(outs)] + [f"vᵀ·∂f/∂({name})" for name in names]


def _arrays(results: Results) -> list[Any]:
    outputs, grads = results
    return list(outputs) + list(grads)


class _Rounding:
    """Rounding, simulated in float64: the engine's trace hook (``tinygrad_cnn.function.config.trace``,
    called with every primitive's result as it is made, forward and backward) multiplies each
    fresh floating result by 1 ± `relative`, random signs, in place, as rounding each operation to
    a shorter float would. Results that are views of an input, or read-only, are left alone (a
    reshape rounds nothing)."""

    def __init__(self, relative: float, rng: np.random.Generator) -> None:
        self.relative, self.rng = relative, rng

    def __call__(self, fn: Any, inputs: Sequence[Any], params: Any, ctx: Any, output: np.ndarray) -> None:
        if output.dtype.kind != "f" or not output.flags.writeable or not output.size \
                or any(np.may_share_memory(output, t.data) for t in inputs):
            return
        output *= 1 + self.relative * self.rng.choice([-1.0, 1.0], size=output.shape)


def _perturbed_change(runner: Runner, point: list[np.ndarray], cotangents: Sequence[Any], want: Results,
                      relative: float, index: int, rounded: Any) -> float:
    """The largest change of array `index` of the float64 results when the inputs and the
    result of every primitive, forward and backward, move by `relative` of their size in random
    directions (three tries): how far rounding to that precision can move the result."""
    rng = np.random.default_rng(12345)
    target = _arrays(want)[index]
    change = 0.0
    for _ in range(3):
        moved = [x * (1 + relative * rng.choice([-1.0, 1.0], size=x.shape)) for x in point]
        try:
            with using_config("trace", _Rounding(relative, rng)):
                got = _arrays(runner(moved, cotangents, np.float64, rounded))[index]
        except Exception:  # the function fails nearby: a point it cannot be checked at
            return np.inf
        if got is not None and target is not None:
            change = max(change, largest_difference(got, target)[0])
    return change


def _compare(runner: Runner, got: Results, want: Results, rtol: float, what: str, names: Sequence[str],
             point: list[np.ndarray], cotangents: Sequence[Any], relative: float, skip_beyond: float,
             rounded: Any = None) -> None:
    labels = _labels(names, len(want[0]))
    # The scale of an array is the largest |value| of its kind (all outputs, or all gradients),
    # and at least what the other kind implies (a gradient is v·f/x in size, an output g·x/v), so
    # that a result that cancels to 0 -- a bias before BatchNorm, a sum of ±x -- keeps the
    # rounding of its terms.
    x, v = max(map(magnitude, point), default=0.0), max(map(magnitude, cotangents), default=0.0)
    f, g = max(map(magnitude, want[0]), default=0.0), max(map(magnitude, want[1]), default=0.0)
    scales = [max(f, g * x / v if v else 0.0)] * len(want[0]) + [max(g, v * f / x if x else 0.0)] * len(want[1])
    for index, (a, b, label, scale) in enumerate(zip(_arrays(got), _arrays(want), labels, scales)):
        if a is None or b is None:
            if (a is None) != (b is None):
                raise GradcheckError(f"{runner.check}: {what}, {label} is {'None' if a is None else 'a Tensor'} "
                                     f"where the float64 C-order run gives {'None' if b is None else 'a Tensor'}")
            continue
        if np.shape(a) != np.shape(b):
            raise GradcheckError(f"{runner.check}: {what}, {label} has shape {np.shape(a)}, the float64 C-order "
                                 f"run's {np.shape(b)}")
        if magnitude(b) > skip_beyond:
            continue
        difference, worst = largest_difference(a, b)
        bound = rtol * scale + rtol * 1e-6
        if difference <= bound:
            continue
        at = entry(worst, np.shape(b))
        message = (f"{runner.check}: {what}, {label} differs from the float64 C-order run: "
                   f"{np.asarray(a).reshape(-1)[worst]:.10g} vs {np.asarray(b).reshape(-1)[worst]:.10g} at entry {at} "
                   f"(|difference| {difference:.3g} > {bound:.3g}: rtol {rtol:g} of the largest |value| of the "
                   f"{'outputs' if index < len(want[0]) else 'gradients'}, {scale:.3g}; {np.asarray(a).dtype} result)")
        change = _perturbed_change(runner, point, cotangents, want, relative, index, rounded)
        if difference <= 4 * change:
            continue  # rounding of this size explains it: fn is ill-conditioned (or at a kink) here
        raise GradcheckError(message + f"; the float64 result moves by only {change:.3g} when the inputs move by "
                             f"{relative:.2g} of their size, so this is no rounding")


def check_variants(runner: Runner, point: list[np.ndarray], cotangents: Sequence[Any], names: Sequence[str],
                   layouts: Sequence[str], dtypes: dict[np.dtype, float], base: Results | None = None,
                   given: list[np.ndarray] | None = None) -> None:
    """Run `runner` on each layout of `point` and in each dtype; compare with the float64 C-order
    run (`base`, computed if not given). `names` label the differentiated inputs in messages.
    `given`: the caller's arrays of the same values, run first as they are if any of them is not
    C-contiguous (a checked array keeps the layout it came in, which ``Tensor()`` would not)."""
    if layouts and base is None:
        base = runner(point, cotangents)
    runs = [(name, [in_layout(x, name) for x in point]) for name in layouts]
    if layouts and given is not None and not all(a.flags.c_contiguous for a in given):
        runs.insert(0, ("given", [a if a.dtype == np.float64 else a.astype(np.float64, order="K") for a in given]))
    for name, arrays in runs:
        if all(a.flags.c_contiguous for a in arrays):
            continue  # no input has a second layout (scalars, single elements)
        strides = ", ".join(f"{a.strides}" for a in arrays)
        what = (f"on inputs in the {name!r} layout (the same values, strides {strides})" if name != "given" else
                f"on the inputs in the layout they were passed in (strides {strides})")
        got = _guarded(runner, arrays, cotangents, np.float64, what)
        _compare(runner, got, base, LAYOUT_RTOL, what, names, point, cotangents, 4 * 2.0 ** -53, np.inf)
    for dtype, rtol in dtypes.items():
        with np.errstate(over="ignore"):
            low = [x.astype(dtype) for x in point]
        if any(not np.all(np.isfinite(a)) for a in low):
            continue  # inputs beyond float32's range: nothing to compare
        low_cotangents = [None if v is None else np.asarray(v).astype(dtype) for v in cotangents]
        rounded = [a.astype(np.float64) for a in low]
        rounded_cotangents = [None if v is None else v.astype(np.float64) for v in low_cotangents]
        want = runner(rounded, rounded_cotangents, np.float64, dtype)
        what = f"in {dtype} (inputs cast to {dtype}; compared with float64 at the same rounded inputs)"
        got = _guarded(runner, low, low_cotangents, dtype, what)
        _compare(runner, got, want, rtol, what, names, rounded, rounded_cotangents, 4 * float(np.finfo(dtype).eps) / 2,
                 FLOAT32_MAX / 2, dtype)


def _guarded(runner: Runner, arrays: list[np.ndarray], cotangents: Sequence[Any], dtype: Any, what: str) -> Results:
    try:
        with np.errstate(over="ignore", under="ignore"):
            return runner(arrays, cotangents, dtype)
    except GradcheckError:
        raise
    except Exception as error:
        raise GradcheckError(f"{runner.check}: {what}, fn raised {type(error).__name__}: {error}") from error
