"""check_adjoint: the exact identities of a linear map and its vector-Jacobian product.

For fn linear in x (a correlation in x with the kernel fixed, a transposed convolution, a pooling
route with its indices fixed, a reshape, a crop), the backward must be the adjoint:

    ⟨fn(x), g⟩ = ⟨x, vjp(g)⟩  for every x and g,  and  fn(a·x + y) = a·fn(x) + fn(y).

Both hold to rounding in float64 for random x, y, g and a; no finite differences, no step.
A transposed or unflipped kernel, an off-by-one crop or a missing stride in the backward breaks
the first by the size of the values; an affine or nonlinear forward breaks the second.

Tolerance: float64 rounding of the sums involved. Each computed value of fn(x) and of vjp(g) is
a sum of at most n = size(x) + size(fn(x)) products, each rounded by u = 2⁻⁵³ relative, so the
two sides may differ by γₙ ≈ n·u times the sum of the magnitudes of their terms; the bound used
is 4·n·u·(Σ|fn(x)ᵢ·gᵢ| + Σ|xⱼ·vjp(g)ⱼ|) (and 4·n·u times the largest |value| of the three
outputs for linearity), some 1e-12 relative for a thousand entries -- a bug shows at 1e-1.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.testing._common import Runner, entry, largest_difference, magnitude
from tinygrad_cnn.testing.errors import GradcheckError
from tinygrad_cnn.testing.variants import check_variants, dtype_tolerances, layout_names

UNIT = float(np.finfo(np.float64).eps) / 2
FACTOR = 4  # units of rounding per term (γₙ ≈ n·u, with room for the few operations per product)


def _finite(arrays: list[Any], what: str, wrt: int) -> None:
    for k, a in enumerate(arrays):
        if a is not None and not np.all(np.isfinite(a)):
            raise GradcheckError(f"check_adjoint: {what} {k} is not finite for random finite values of input {wrt}")


def check_adjoint(
    fn: Callable[..., Any],
    *inputs: Any,
    wrt: int = 0,
    seed: int = 0,
    layouts: Any = True,
    dtypes: Any = ("float32",),
) -> bool:
    """Check that fn is linear in ``inputs[wrt]`` and that its backward is the exact adjoint.

    ``inputs[wrt]`` (a float array or Tensor) gives the shape; random float64 x, y (standard
    normal), a scalar a and a cotangent g for each output stand in for it. The other inputs are
    held fixed: float arrays become float64 constant Tensors (float32 in the float32 run), the
    rest pass through unchanged. Raises GradcheckError naming the identity that fails
    (linearity, then the adjoint identity) with both sides; then compares runs on other layouts
    and in float32 as `gradcheck` does (`layouts`, `dtypes`). Returns True.
    """
    if isinstance(wrt, bool) or not isinstance(wrt, (int, np.integer)):
        raise TypeError(f"check_adjoint: wrt must be an int (the position of the input fn is linear in), got {wrt!r}")
    if not 0 <= wrt < len(inputs):
        raise ValueError(f"check_adjoint: wrt={wrt} is not the position of one of the {len(inputs)} inputs")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"check_adjoint: seed must be an int, got {seed!r}")
    layouts, dtypes = layout_names(layouts), dtype_tolerances(dtypes)
    target = inputs[wrt]
    if not (isinstance(target, (np.ndarray, Tensor)) and np.asarray(target.data if isinstance(target, Tensor)
                                                                      else target).dtype.kind == "f"):
        raise TypeError(f"check_adjoint: input {wrt} (wrt) must be a float array or Tensor, got "
                        f"{type(target).__name__}")
    constants = [i for i, v in enumerate(inputs) if i != wrt and isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    runner = Runner(fn, inputs, [wrt], "check_adjoint", constants)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(target.shape), rng.standard_normal(target.shape)
    a = float(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]))

    leaves, outs = runner.outputs([x])
    if all(o is None for o in outs):
        raise TypeError("check_adjoint: fn returned no Tensor")
    g = [None if o is None else rng.standard_normal(o.shape) for o in outs]
    (vjp,) = runner.vjp(leaves, outs, g)
    fx = [None if o is None else np.asarray(o.data, np.float64) for o in outs]
    del leaves, outs
    fy = [None if o is None else np.asarray(o.data, np.float64) for o in runner.outputs([y])[1]]
    fz = [None if o is None else np.asarray(o.data, np.float64) for o in runner.outputs([a * x + y])[1]]
    for what, arrays in (("fn(x): output", fx), ("fn(y): output", fy), ("fn(a·x + y): output", fz)):
        _finite(arrays, what, wrt)
    _finite([vjp], "vjp(g) for input", wrt)
    n = x.size + sum(o.size for o in fx if o is not None)

    for k, (ox, oy, oz) in enumerate(zip(fx, fy, fz)):
        if ox is None:
            continue
        expected = a * ox + oy
        difference, worst = largest_difference(oz, expected)
        bound = FACTOR * n * UNIT * (abs(a) * magnitude(ox) + magnitude(oy) + magnitude(oz))
        if difference > bound:
            raise GradcheckError(
                f"check_adjoint: fn is not linear in input {wrt}: fn(a·x + y) ≠ a·fn(x) + fn(y) (a = {a:.6g}, "
                f"random x, y of shape {x.shape}): output {k} at entry {entry(worst, ox.shape)} is "
                f"{oz.reshape(-1)[worst]:.17g} vs {expected.reshape(-1)[worst]:.17g} (|difference| {difference:.3g} > "
                f"{bound:.3g}, float64 rounding). An affine fn (a bias, a constant) or a nonlinear one fails here")

    left = sum(float(np.vdot(o, v)) for o, v in zip(fx, g) if o is not None)
    right = float(np.vdot(x, vjp))
    terms = sum(float(np.sum(np.abs(o * v))) for o, v in zip(fx, g) if o is not None) + float(np.sum(np.abs(x * vjp)))
    bound = FACTOR * n * UNIT * terms
    if abs(left - right) > bound:
        raise GradcheckError(
            f"check_adjoint: the adjoint identity ⟨fn(x), g⟩ = ⟨x, vjp(g)⟩ fails for input {wrt} (shape {x.shape}), "
            f"random x and g: ⟨fn(x), g⟩ = {left:.17g} but ⟨x, vjp(g)⟩ = {right:.17g} (|difference| "
            f"{abs(left - right):.3g} > {bound:.3g}, float64 rounding of the {n} terms' sum {terms:.3g}): the "
            "backward is not the transpose of the forward")
    check_variants(runner, [x], g, [f"input {wrt}"], layouts, dtypes, (fx, [vjp]))
    return True
