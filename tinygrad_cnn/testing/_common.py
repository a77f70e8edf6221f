"""What the checks share: which arguments are differentiated, running fn with its vector-Jacobian
product on given arrays (in the layout and dtype they come in), and comparing arrays."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinygrad_cnn.autograd import grad
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.testing.errors import GradcheckError


def as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def differentiated(inputs: Sequence[Any]) -> list[int]:
    """Positions to differentiate: float ndarrays, and Tensors that require grad."""
    return [
        i for i, value in enumerate(inputs)
        if (isinstance(value, Tensor) and value.requires_grad)
        or (isinstance(value, np.ndarray) and value.dtype.kind == "f")
    ]


def float64_copy(value: Any) -> np.ndarray:
    """A C-contiguous float64 copy of an array or a Tensor's data."""
    return np.array(value.data if isinstance(value, Tensor) else value, dtype=np.float64, order="C", copy=True)


def as_given(value: Any) -> np.ndarray:
    """The array a differentiated input holds, as passed (no copy, its layout kept)."""
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def entry(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(index, shape))


class Runner:
    """fn's outputs and its vector-Jacobian products for given arrays at the differentiated
    positions. The arrays become leaf Tensors as they are -- no copy, so their layout and dtype
    reach fn -- and `constants` (positions of other float arrays) become Tensors of the dtype of
    the run, so that a float32 run is float32 throughout."""

    def __init__(self, fn: Callable[..., Any], inputs: Sequence[Any], positions: Sequence[int], check: str,
                 constants: Sequence[int] = ()) -> None:
        self.fn, self.inputs, self.positions, self.check = fn, list(inputs), list(positions), check
        self.constants = list(constants)

    def arguments(self, arrays: Sequence[np.ndarray], dtype: Any = np.float64,
                  rounded: Any = None) -> tuple[list[Any], list[Tensor]]:
        """fn's arguments: `arrays` as leaves; constants in `dtype`, first rounded to `rounded`."""
        args = list(self.inputs)
        leaves = [Tensor._make(a, requires_grad=True) for a in arrays]
        for i, leaf in zip(self.positions, leaves):
            args[i] = leaf
        for i in self.constants:
            args[i] = Tensor._make(np.asarray(self.inputs[i]).astype(rounded or dtype).astype(dtype))
        return args, leaves

    def outputs(self, arrays: Sequence[np.ndarray], dtype: Any = np.float64,
                rounded: Any = None) -> tuple[list[Tensor], tuple[Any, ...]]:
        args, leaves = self.arguments(arrays, dtype, rounded)
        outs = as_tuple(self.fn(*args))
        for k, out in enumerate(outs):
            if out is not None and not isinstance(out, Tensor):
                raise TypeError(f"{self.check}: fn must return a Tensor or a tuple of Tensors, got "
                                f"{type(out).__name__} as output {k}")
        return leaves, outs

    def __call__(self, arrays: Sequence[np.ndarray], cotangents: Sequence[np.ndarray | None],
                 dtype: Any = np.float64, rounded: Any = None) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
        """(outputs, vᵀ∂f/∂x for each differentiated input) as arrays, the cotangents v cast to
        each output's dtype; an input the outputs do not reach has a zero gradient."""
        leaves, outs = self.outputs(arrays, dtype, rounded)
        return [None if o is None else o.data for o in outs], self.vjp(leaves, outs, cotangents)

    def vjp(self, leaves: list[Tensor], outs: Sequence[Any], cotangents: Sequence[np.ndarray | None],
            create_graph: bool = False) -> list[Any]:
        live = [(o, v) for o, v in zip(outs, cotangents) if o is not None and v is not None and o.requires_grad]
        if not live:
            return [np.zeros(leaf.shape, leaf.dtype) for leaf in leaves]
        try:
            grads = grad([o for o, _ in live], leaves, allow_unused=True, create_graph=create_graph,
                         grad_outputs=[Tensor._make(np.asarray(v, o.dtype)) for o, v in live])
        except Exception as error:  # any failure of the backward pass is the op's failure
            raise GradcheckError(f"{self.check}: the backward pass raised {type(error).__name__}: {error}") from error
        if create_graph:
            return list(grads)
        return [np.zeros(leaf.shape, leaf.dtype) if g is None else g.data for g, leaf in zip(grads, leaves)]


def largest_difference(got: np.ndarray, want: np.ndarray) -> tuple[float, int]:
    """(max |got − want|, flat index of it); a NaN or infinity where the other is finite counts
    as an infinite difference, equal non-finite values as none."""
    got, want = np.asarray(got, np.float64).reshape(-1), np.asarray(want, np.float64).reshape(-1)
    if got.size == 0:
        return 0.0, 0
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(got - want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    difference = np.where(same, 0.0, np.where(np.isnan(difference), np.inf, difference))
    worst = int(np.argmax(difference))
    return float(difference[worst]), worst


def magnitude(a: np.ndarray | None) -> float:
    """The largest finite |value| of `a` (0 for an empty or all-non-finite one)."""
    if a is None:
        return 0.0
    finite = np.abs(np.asarray(a, np.float64))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size else 0.0
