"""assert_matches_torch: an op's forward, first and second derivatives against PyTorch's.

For people porting an op from PyTorch: both functions get the same float64 values, ours as
Tensors, theirs as torch tensors, and must agree on

* order 0: every output;
* order 1: vᵀ·∂f/∂x for a random cotangent v, for every differentiated input x;
* order 2: the derivatives of s = Σₓ ⟨vᵀ·∂f/∂x, w_x⟩ (random w) with respect to every input x
  and to v: Hessian-vector products and the Jacobian-vector product J·w, which together cover
  the second derivative as ``gradgradcheck`` does.

torch is imported on the first call, so the package never needs it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinygrad_cnn.autograd import grad
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.testing._common import (Runner, as_given, as_tuple, differentiated, entry, float64_copy,
                                         largest_difference)
from tinygrad_cnn.testing.errors import GradcheckError
from tinygrad_cnn.testing.variants import check_variants, dtype_tolerances, layout_names


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "assert_matches_torch needs PyTorch, which is not installed: pip install torch (the CPU build is enough; "
            f"the project's tests use torch==2.13.0). ({error})") from None
    return torch


def _compare(ours: Any, theirs: Any, rtol: float, atol: float, what: str) -> None:
    a = np.zeros(0) if ours is None else np.asarray(ours, np.float64)
    b = np.zeros(0) if theirs is None else np.asarray(theirs, np.float64)
    if ours is None and theirs is not None:
        a = np.zeros_like(b)
    if theirs is None and ours is not None:
        b = np.zeros_like(a)
    if a.shape != b.shape:
        raise GradcheckError(f"assert_matches_torch: {what} has shape {a.shape} here, {b.shape} in PyTorch")
    difference, worst = largest_difference(a, b)
    if a.size and difference > atol + rtol * abs(b.reshape(-1)[worst]):
        raise GradcheckError(
            f"assert_matches_torch: {what} differs at entry {entry(worst, a.shape)}: ours {a.reshape(-1)[worst]:.17g} "
            f"vs PyTorch {b.reshape(-1)[worst]:.17g} (|difference| {difference:.3g} > atol {atol:g} + rtol {rtol:g}"
            "·|PyTorch's|)")


def assert_matches_torch(
    ours: Callable[..., Any],
    theirs: Callable[..., Any],
    *inputs: Any,
    order: int = 2,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    seed: int = 0,
    layouts: Any = True,
    dtypes: Any = ("float32",),
) -> bool:
    """Check ``ours(*inputs)`` against ``theirs(*inputs)`` (a PyTorch function) up to `order`
    (0, 1 or 2) in float64.

    Differentiated inputs are the float ndarrays and the Tensors that require grad, as in
    `gradcheck`: ours gets float64 Tensors, theirs float64 torch tensors that require grad.
    Other ndarrays reach theirs as torch tensors (``torch.from_numpy``) and ours unchanged;
    anything else reaches both unchanged. Entries agree when |ours − theirs| ≤ atol +
    rtol·|theirs|; otherwise GradcheckError names the output or derivative, the input and the
    entry. Then ours runs on other layouts and in float32 as in `gradcheck`. Returns True.
    Raises ImportError (with what to install) if torch is missing.
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"assert_matches_torch: order must be 0, 1 or 2, got {order!r}")
    for value, name in ((rtol, "rtol"), (atol, "atol")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"assert_matches_torch: {name} must be a number >= 0, got {value!r}")
    layouts, dtypes = layout_names(layouts), dtype_tolerances(dtypes)
    torch = _torch()
    positions = differentiated(inputs)
    point = [float64_copy(inputs[i]) for i in positions]
    rng = np.random.default_rng(seed)

    runner = Runner(ours, inputs, positions, "assert_matches_torch")
    leaves, outs = runner.outputs(point)
    args = list(inputs)
    for i, value in enumerate(inputs):
        if isinstance(value, np.ndarray) and i not in positions:
            args[i] = torch.from_numpy(value.copy())
    theirs_leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    for i, leaf in zip(positions, theirs_leaves):
        args[i] = leaf
    theirs_outs = as_tuple(theirs(*args))
    if len(theirs_outs) != len(outs):
        raise GradcheckError(f"assert_matches_torch: ours returns {len(outs)} outputs, PyTorch's {len(theirs_outs)}")
    for k, (o, t) in enumerate(zip(outs, theirs_outs)):
        _compare(None if o is None else o.data, None if t is None else t.detach().numpy(), rtol, atol,
                 f"forward output {k}")
    if order == 0 or not positions:
        return True

    live = [k for k, (o, t) in enumerate(zip(outs, theirs_outs))
            if o is not None and t is not None and o.requires_grad and t.requires_grad]
    vs = {k: rng.standard_normal(outs[k].shape) for k in live}
    cotangents = [vs.get(k) for k in range(len(outs))]
    our_vs = [Tensor(vs[k], requires_grad=True, dtype=np.float64) for k in live]
    their_vs = [torch.tensor(vs[k], dtype=torch.float64, requires_grad=True) for k in live]
    if live:
        try:
            first = grad([outs[k] for k in live], leaves, grad_outputs=our_vs, create_graph=order == 2,
                         allow_unused=True)
        except Exception as error:
            raise GradcheckError(f"assert_matches_torch: our backward pass raised {type(error).__name__}: "
                                 f"{error}") from error
        their_first = torch.autograd.grad([theirs_outs[k] for k in live], theirs_leaves, grad_outputs=their_vs,
                                          create_graph=order == 2, allow_unused=True)
    else:
        first, their_first = (None,) * len(positions), (None,) * len(positions)
    for i, f, t in zip(positions, first, their_first):
        _compare(None if f is None else f.data, None if t is None else t.detach().numpy(), rtol, atol,
                 f"first derivative vᵀ·∂f/∂(input {i})")

    if order == 2 and live:
        ws = [rng.standard_normal(x.shape) for x in point]
        ours_terms = [(f * Tensor(w)).sum() for f, w in zip(first, ws) if f is not None and f.requires_grad]
        their_terms = [(t * torch.from_numpy(w)).sum() for t, w in zip(their_first, ws)
                       if t is not None and t.requires_grad]
        wrt = leaves + our_vs
        second = (grad(sum(ours_terms[1:], ours_terms[0]), wrt, allow_unused=True) if ours_terms
                  else (None,) * len(wrt))
        their_wrt = theirs_leaves + their_vs
        their_second = (torch.autograd.grad(sum(their_terms[1:], their_terms[0]), their_wrt, allow_unused=True)
                        if their_terms else (None,) * len(their_wrt))
        names = [f"input {i}" for i in positions] + [f"the cotangent of output {k}" for k in live]
        for name, s, t in zip(names, second, their_second):
            _compare(None if s is None else s.data, None if t is None else t.detach().numpy(), rtol, atol,
                     f"second derivative ∂(vᵀ·J·w)/∂({name})")
    del leaves, outs
    check_variants(runner, point, cotangents, [f"input {i}" for i in positions], layouts, dtypes,
                   given=[as_given(inputs[i]) for i in positions])
    return True
