"""detect_anomaly: every op checks its result for NaN and ±inf, and the first that produces one
raises, naming the op (its forward, or its backward and the input whose gradient it is).

While the mode is on, ``config.anomaly`` (``tinygrad_cnn.function``) holds `CHECKS`, which
`Function.apply` and the backward sweep call; off, it holds None and costs nothing.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from tinygrad_cnn.function import config, using_config

if TYPE_CHECKING:
    from tinygrad_cnn.function import Context, Function
    from tinygrad_cnn.tensor import Tensor

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def detect_anomaly(mode: bool = True) -> contextlib.AbstractContextManager[None]:
    """Inside ``with detect_anomaly():`` (or a function decorated with ``@detect_anomaly()``)
    every op checks its result: the first forward whose output holds NaN or ±inf raises
    RuntimeError naming the op (and whether an input already held such values), and so does
    the first backward that returns a non-finite gradient, naming the op, the input whose
    gradient it is, and where the op's forward ran. Off by default (it costs a pass over every
    result); thread-local, like grad mode. ``detect_anomaly(False)`` switches it off for a block.
    """
    return using_config("anomaly", CHECKS if mode else None)


def is_anomaly_enabled() -> bool:
    """Whether `detect_anomaly` is on in this thread."""
    return config.anomaly is not None


def non_finite(array: np.ndarray) -> str | None:
    """None for an all-finite (or non-float) array; else which of 'nan' and 'inf' it holds."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    kinds = [name for name, present in (("nan", np.isnan(array).any()), ("inf", np.isinf(array).any()))
             if present]
    return " and ".join(kinds)


class _Checks(threading.local):
    """The checks, with the op whose backward is running in this thread (for the messages)."""

    backward_of: str | None = None

    @staticmethod
    def caller_site() -> str:
        """'file:line in function' of the innermost frame outside this package (the user's call)."""
        frame = inspect.currentframe()
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
            frame = frame.f_back
        if frame is None:
            return "an unknown place"
        return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"

    def forward(self, fn: type[Function], inputs: tuple[Tensor, ...], output: np.ndarray) -> None:
        """Raise if `output` holds NaN or ±inf. Inside a backward the gradient that backward
        returns is checked instead, so that the error names the op being differentiated."""
        found = non_finite(output)
        if found is None or self.backward_of is not None:
            return
        bad = [i for i, t in enumerate(inputs) if non_finite(t.data) is not None]
        origin = (f"; its input{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} already held NaN or "
                  "inf (from outside any op: the data, a parameter or a gradient argument)" if bad
                  else " from finite inputs")
        raise RuntimeError(f"detect_anomaly: {fn.__name__} produced {found} in its output of shape "
                           f"{output.shape}{origin}; called at {self.caller_site()}")

    def backward(self, node: Context, gradient: Tensor, run: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """Run a node's backward (`run`) and raise if a gradient it returns holds NaN or ±inf,
        naming the op, the input and where its forward ran. (The ops inside the backward skip
        their own check, so the error names the op being differentiated, not a step of its rule.)"""
        outer, self.backward_of = self.backward_of, node.fn.__name__
        try:
            input_grads = run()
        finally:
            self.backward_of = outer
        for i, input_grad in enumerate(input_grads):
            found = None if input_grad is None else non_finite(input_grad.data)
            if found is None:
                continue
            incoming = non_finite(gradient.data)
            origin = (f"; the incoming gradient ∂C/∂y (shape {gradient.shape}) already held {incoming}" if incoming
                      else " from a finite incoming gradient ∂C/∂y")
            site = node.__dict__.get("forward_site")
            raise RuntimeError(
                f"detect_anomaly: {node.fn.__name__}.backward produced {found} in the gradient of its input {i} "
                f"(shape {input_grad.shape}){origin}"
                + (f"; the forward of this {node.fn.__name__} ran at {site}" if site else ""))
        return input_grads


CHECKS = _Checks()
