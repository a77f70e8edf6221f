"""How an op records itself in the graph: grad mode, `Context` and `Function`.

An op is a `Function` subclass with two static methods side by side:

* ``forward(ctx, *inputs, **params)`` gets the input Tensors and returns a plain array
  computed by the backend (``tinygrad_cnn.backend``); it saves what the backward needs
  with ``ctx.save_for_backward`` and plain parameters as ``ctx`` attributes.
* ``backward(ctx, dy)`` gets ∂C/∂y as a Tensor and returns one Tensor (or None) per input,
  computed with the framework's own ops. Because of that, the backward pass can itself be
  recorded (``create_graph=True``) and differentiated again.

The `Context` object is the graph node: it holds the edges to the nodes (or leaf Tensors)
that produced the inputs, never the output Tensor itself, so a Tensor and its node form no
reference cycle and a graph is freed by reference counting alone. The arrays a node saved are
protected while it lives (``tinygrad_cnn.saved``); ``tinygrad_cnn.anomaly`` checks results.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from tinygrad_cnn.saved import Hold, hold_arrays, holds, note_view_of_held, release_holds
from tinygrad_cnn.tensor import Tensor

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class Config(threading.local):
    """The modes of this thread (each thread starts with these defaults)."""
    grad_enabled = True  # record the graph
    anomaly: Any = None  # detect_anomaly's checks while it is on (tinygrad_cnn.anomaly), else None
    # Called as trace(fn, inputs, params, ctx, output) after every primitive's forward, while a
    # tracer runs (tinygrad_cnn.onnx's export), else None.
    trace: Any = None


config = Config()


@contextlib.contextmanager
def using_config(name: str, value: Any) -> Iterator[None]:
    """``with using_config("grad_enabled", False):`` -- a mode of this thread set for the block,
    then put back. (A generator-based context manager also serves as a decorator, afresh per call.)"""
    previous = getattr(config, name)
    setattr(config, name, value)
    try:
        yield
    finally:
        setattr(config, name, previous)


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread."""
    return config.grad_enabled


def no_grad(fn: _Fn | None = None) -> Any:
    """Inside ``with no_grad():`` (or a function decorated with ``@no_grad()`` or ``@no_grad``)
    no graph is recorded: results do not require grad. Thread-local, like PyTorch's."""
    return _grad_mode(False, fn)


def enable_grad(fn: _Fn | None = None) -> Any:
    """Record the graph again inside ``with enable_grad():`` (or a decorated function), within
    a no_grad block too, as ``torch.enable_grad``."""
    return _grad_mode(True, fn)


def inference_mode(mode: Any = True) -> Any:
    """torch.inference_mode: here no_grad (no graph is recorded; there is no faster mode to
    switch to); ``inference_mode(False)`` leaves the grad mode as it is. Also a decorator."""
    if callable(mode):
        return _grad_mode(False, mode)
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"inference_mode() takes True or False, or decorates a function; got {mode!r}")
    return using_config("grad_enabled", False) if mode else using_config("grad_enabled", config.grad_enabled)


def _grad_mode(enabled: bool, fn: _Fn | None) -> Any:
    if fn is None:
        return using_config("grad_enabled", enabled)
    if not callable(fn):
        raise TypeError(f"{'enable_grad' if enabled else 'no_grad'}() takes no arguments, or decorates a function; "
                        f"got {type(fn).__name__}")
    return using_config("grad_enabled", enabled)(fn)


class set_grad_enabled:
    """Set grad mode (thread-local), as ``torch.set_grad_enabled``: called alone it switches at
    once; as a context manager (or decorator) it restores the previous mode afterwards."""

    def __init__(self, mode: bool) -> None:
        self.mode, self.previous = bool(mode), config.grad_enabled
        config.grad_enabled = self.mode

    def __enter__(self) -> None:
        pass  # already switched by __init__; __exit__ restores the mode from before

    def __exit__(self, *exc_info: object) -> None:
        config.grad_enabled = self.previous

    def __call__(self, fn: _Fn) -> _Fn:
        config.grad_enabled = self.previous  # as a decorator it switches only while fn runs
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with using_config("grad_enabled", mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or to read saved tensors after "
    "they were freed): the graph through {op} was freed by the first backward(); pass "
    "retain_graph=True to the first backward() or grad() call to keep it."
)


MODIFIED_MESSAGE = (
    "one of the arrays needed to compute the gradient was modified in place after the forward: "
    "input {item} of {op} (shape {shape}, {dtype}){view} was at version {saved} when {op} saved it "
    "and is now at version {now} (an optimizer step or load_state_dict updated it while this graph "
    "was alive). Run the forward again after the update, or update after the backward."
)


class Context:
    """One node of the graph: the op that ran, its saved tensors and its edges.

    ``edges[i]`` says where the gradient of input i goes: the `Context` that produced it,
    the leaf Tensor itself (a leaf that requires grad), or None (a constant).

    In-place changes of saved arrays. While a node is alive and not yet released by a
    backward, every array it saved (the data of a saved input, or its saved output) and the
    array that owns that memory are read-only, so a raw write -- ``x.data[...] = 0``,
    ``x.numpy()[0] = 1``, ``np.add(a, b, out=x.data)`` -- raises numpy's "assignment destination
    is read-only" (or "output array is read-only") at the line that writes. The flag is
    restored when the last node holding the array is released (``backward()`` without
    ``retain_graph``) or freed (the graph is dropped), unless the array was read-only to begin
    with. The library's own in-place updates go through `in_place`, which counts a new version;
    and giving a saved tensor new data (``x.data = other``) swaps the array under the node. When
    ``saved_tensors`` is read in the backward, either change raises RuntimeError naming the op,
    the input and the versions, as PyTorch's version counter does.

    Limits: a third array that is a view of the same memory made *before* the forward (a
    ``numpy()`` of another Tensor that shares it, a view made by the user) keeps its own flag and
    is not protected; nor are arrays an op keeps as a ctx attribute (max pooling's argmax, which
    is computed in the forward and never read from the input again).
    """

    __slots__ = ("fn", "needs_input_grad", "edges", "released", "_saved", "_output", "_arrays",
                 "_holds", "__dict__", "__weakref__")

    def __init__(self, fn: type[Function], inputs: tuple[Tensor, ...]) -> None:
        self.fn = fn
        self.needs_input_grad = tuple([t.requires_grad for t in inputs])
        self.edges: tuple[tuple[Any, tuple[int, ...], Any], ...] = ()
        self.released = False
        self._saved: tuple[Any, ...] | None = ()
        self._output: Any = None
        self._arrays: tuple[np.ndarray, ...] = ()
        self._holds: tuple[tuple[int, Hold, int], ...] = ()

    def save_for_backward(self, *items: Any) -> None:
        """Save input Tensors, or the output array the forward returns, for the backward."""
        self._saved = items

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        """The saved tensors. A saved output comes back as a Tensor whose node is this one,
        so a backward that uses it (sigmoid's σ(z)(1−σ(z))) is differentiable again. Raises
        RuntimeError if the graph was freed, or if a saved array was changed in place."""
        if self.released or self._saved is None:
            raise RuntimeError(FREED_MESSAGE.format(op=self.fn.__name__))
        for item, hold, version in self._holds:
            if hold.version != version:
                array = self._arrays[item]
                raise RuntimeError(MODIFIED_MESSAGE.format(
                    item=item, op=self.fn.__name__, shape=array.shape, dtype=array.dtype, saved=version,
                    now=hold.version, view="" if hold.array is array else " or the array it is a view of"))
        saved = []
        for item, array in zip(self._saved, self._arrays):
            if item is _OUTPUT:
                saved.append(Tensor._make(self._output, requires_grad=True, ctx=self))
                continue
            if item.data is not array:
                raise RuntimeError(
                    f"input {len(saved)} of {self.fn.__name__} (shape {array.shape}) was given new data "
                    f"(tensor.data = ...) after the forward, which the backward of {self.fn.__name__} "
                    "needs; run the forward again after replacing it")
            saved.append(item)
        return tuple(saved)

    def _record(self, inputs: tuple[Tensor, ...], returned: Any, output: Any) -> None:
        """Link the node into the graph once the forward has run (`returned` is what it
        returned, `output` the same as an array), and make the saved arrays read-only."""
        self.edges = tuple([
            (t._ctx if t._ctx is not None else (t if t.requires_grad else None), t.data.shape, t.data.dtype)
            for t in inputs
        ])
        if not self._saved:
            return
        saved, arrays = [], []
        for item in self._saved:
            if item is returned:
                saved.append(_OUTPUT)
                arrays.append(output)
                self._output = output
            elif _is_one_of(item, inputs):
                saved.append(item)
                arrays.append(item.data)
            else:
                raise TypeError(
                    f"{self.fn.__name__}.forward: save_for_backward takes the op's input Tensors or "
                    "the array its forward returns; keep other values as ctx attributes"
                )
        self._saved, self._arrays = tuple(saved), tuple(arrays)
        self._holds = hold_arrays(arrays)

    def release(self) -> None:
        """Drop the saved tensors and the forward's ctx attributes (after a backward), and give
        the saved arrays their write flag back. A tensor's hooks and retain_grad (autograd.py),
        which belong to the tensor rather than to the forward, stay."""
        self.released = True
        self._saved = None
        self._output = None
        self._arrays = ()
        kept = {key: self.__dict__[key] for key in ("hooks", "retained") if key in self.__dict__}
        self.__dict__.clear()
        self.__dict__.update(kept)
        if self._holds:
            taken, self._holds = self._holds, ()
            release_holds(taken)

    def __del__(self) -> None:
        # A graph dropped without a backward (an evaluation in grad mode, retain_graph=True)
        # must not leave its arrays read-only.
        if self._holds:
            taken, self._holds = self._holds, ()
            try:
                release_holds(taken)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __repr__(self) -> str:
        return f"<{self.fn.__name__} node>"


def _is_one_of(item: Any, inputs: tuple[Tensor, ...]) -> bool:
    for t in inputs:
        if item is t:
            return True
    return False


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
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__}.apply takes Tensors as positional inputs (got "
                                f"{type(t).__name__} at position {i}); pass other values as keywords")
        ctx = Context(cls, inputs)
        checks = config.anomaly
        # Underflow to zero (exp(-1000), σ(-1000)·σ'(…)) is the right answer in every op, never
        # an error, even when the caller runs under np.errstate(all="raise"). Under
        # detect_anomaly numpy stays silent: its check names the op instead.
        with np.errstate(all="ignore") if checks else np.errstate(under="ignore"):
            returned = cls.forward(ctx, *inputs, **params)
        # numpy gives scalars (np.float64) for full reductions; a Tensor always holds an array.
        output = np.asarray(returned)
        if holds and output.base is not None and not output.flags.writeable:
            note_view_of_held(output)
        if checks:
            checks.forward(cls, inputs, output)
        if config.trace is not None:
            config.trace(cls, inputs, params, ctx, output)
        if not config.grad_enabled or True not in ctx.needs_input_grad:
            return Tensor._make(output)
        ctx._record(inputs, returned, output)
        if checks:  # named if this node's backward goes wrong
            ctx.__dict__["forward_site"] = checks.caller_site()
        return Tensor._make(output, requires_grad=True, ctx=ctx)
