"""How an op records itself in the graph: grad mode, `Context` and `Function`.

An op is a `Function` subclass with two static methods side by side:

* ``forward(ctx, *inputs, **params)`` gets the input Tensors and returns a plain array
  computed by the kernels (``tinygrad_cnn.kernels``); it saves what the backward needs
  with ``ctx.save_for_backward`` and plain parameters as ``ctx`` attributes.
* ``backward(ctx, dy)`` gets ∂C/∂y as a Tensor and returns one Tensor (or None) per input,
  computed with the framework's own ops. Because of that, the backward pass can itself be
  recorded (``create_graph=True``) and differentiated again.

The `Context` object is the graph node: it holds the edges to the nodes (or leaf Tensors)
that produced the inputs, never the output Tensor itself, so a Tensor and its node form no
reference cycle and a graph is freed by reference counting alone.
"""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from tinygrad_cnn import kernels as K

if TYPE_CHECKING:
    from tinygrad_cnn.tensor import Tensor

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread."""
    return _grad_mode.enabled


class _GradModeAs:
    """Context manager (and decorator) that sets grad mode for its block, then restores it."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_grad_mode.enabled)
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc_info: object) -> None:
        _grad_mode.enabled = self._previous.pop()

    def __call__(self, fn: _Fn) -> _Fn:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradModeAs(mode):  # a fresh manager per call: safe under recursion and threads
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeAs):
    """Inside ``with no_grad():`` (or a function decorated with ``@no_grad()``) no graph is
    recorded: results do not require grad. Thread-local, like PyTorch's."""

    def __init__(self) -> None:
        super().__init__(False)


class set_grad_enabled(_GradModeAs):
    """Set grad mode (thread-local), as ``torch.set_grad_enabled``: called alone it switches at
    once; as a context manager (or decorator) it restores the previous mode afterwards."""

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._previous.append(_grad_mode.enabled)
        _grad_mode.enabled = self.mode

    def __enter__(self) -> None:
        pass  # already switched by __init__; __exit__ restores the mode from before


FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or to read saved tensors after "
    "they were freed): the graph through {op} was freed by the first backward(); pass "
    "retain_graph=True to the first backward() or grad() call to keep it."
)


class Context:
    """One node of the graph: the op that ran, its saved tensors and its edges.

    ``edges[i]`` says where the gradient of input i goes: the `Context` that produced it,
    the leaf Tensor itself (a leaf that requires grad), or None (a constant).
    """

    __slots__ = ("fn", "needs_input_grad", "edges", "released", "_saved", "_output", "__dict__",
                 "__weakref__")

    def __init__(self, fn: type[Function], inputs: tuple[Tensor, ...]) -> None:
        self.fn = fn
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        self.edges: tuple[tuple[Any, tuple[int, ...], Any], ...] = ()
        self.released = False
        self._saved: tuple[Any, ...] | None = ()
        self._output: Any = None

    def save_for_backward(self, *items: Any) -> None:
        """Save input Tensors, or the output array the forward returns, for the backward."""
        self._saved = items

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        """The saved tensors. A saved output comes back as a Tensor whose node is this one,
        so a backward that uses it (sigmoid's σ(z)(1−σ(z))) is differentiable again."""
        if self.released or self._saved is None:
            raise RuntimeError(FREED_MESSAGE.format(op=self.fn.__name__))
        from tinygrad_cnn.tensor import Tensor

        return tuple(
            Tensor._make(self._output, requires_grad=True, ctx=self) if item is _OUTPUT else item
            for item in self._saved
        )

    def _record(self, inputs: tuple[Tensor, ...], returned: Any, output: Any) -> None:
        """Link the node into the graph once the forward has run (`returned` is what it
        returned, `output` the same as an array)."""
        self.edges = tuple(
            (t._ctx if t._ctx is not None else (t if t.requires_grad else None), t.shape, t.dtype)
            for t in inputs
        )
        saved = []
        for item in self._saved or ():
            if item is returned:
                saved.append(_OUTPUT)
                self._output = output
            elif any(item is t for t in inputs):
                saved.append(item)
            else:
                raise TypeError(
                    f"{self.fn.__name__}.forward: save_for_backward takes the op's input Tensors or "
                    "the array its forward returns; keep other values as ctx attributes"
                )
        self._saved = tuple(saved)

    def release(self) -> None:
        """Drop the saved tensors and the forward's ctx attributes (after a backward)."""
        self.released = True
        self._saved = None
        self._output = None
        self.__dict__.clear()

    def __repr__(self) -> str:
        return f"<{self.fn.__name__} node>"


class _OutputMarker:
    __slots__ = ()


_OUTPUT = _OutputMarker()


class Function:
    """Base class of every differentiable primitive (see ``tinygrad_cnn.ops``)."""

    @staticmethod
    def forward(ctx: Context, *inputs: Any, **params: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, dy: Tensor) -> Any:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run the forward on the input Tensors and, in grad mode, record the node."""
        from tinygrad_cnn.tensor import Tensor

        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__}.apply takes Tensors as positional inputs (got "
                                f"{type(t).__name__} at position {i}); pass other values as keywords")
        ctx = Context(cls, inputs)
        # Underflow to zero (exp(-1000), σ(-1000)·σ'(…)) is the right answer in every op, never
        # an error, even when the caller runs under np.errstate(all="raise").
        with K.ignore_underflow():
            returned = cls.forward(ctx, *inputs, **params)
        # numpy gives scalars (np.float64) for full reductions; a Tensor always holds an array.
        output = K.asarray(returned)
        if not (_grad_mode.enabled and any(t.requires_grad for t in inputs)):
            return Tensor._make(output)
        ctx._record(inputs, returned, output)
        return Tensor._make(output, requires_grad=True, ctx=ctx)
