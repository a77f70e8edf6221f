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

Saved arrays are protected while a backward may still read them (see `Context`): a live node's
saved arrays are read-only, so writing into one (``x.data[...] = 0``) raises at once; an update
by the library itself (an optimizer step, ``load_state_dict``) goes through `in_place`, which
counts a new version, and a backward through a node that saved the old version raises,
naming the op. ``detect_anomaly()`` checks every op's result for NaN and infinity.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

import numpy as np

from tinygrad_cnn import kernels as K

if TYPE_CHECKING:
    from tinygrad_cnn.tensor import Tensor


@functools.lru_cache(maxsize=None)
def _tensor_class() -> type[Tensor]:
    """The Tensor class, imported on first use (tensor.py imports this module): an import
    statement in `Function.apply` itself cost 2 µs on every op."""
    from tinygrad_cnn.tensor import Tensor

    return Tensor


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class _Modes(threading.local):
    enabled = True  # grad mode: record the graph
    anomaly = False  # detect_anomaly: check every result for NaN and infinity
    backward_of: str | None = None  # the op whose backward is running (anomaly messages)


_grad_mode = _Modes()


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread."""
    return _grad_mode.enabled


def is_anomaly_enabled() -> bool:
    """Whether `detect_anomaly` is on in this thread."""
    return _grad_mode.anomaly


class _ModeAs:
    """Context manager (and decorator) that sets a thread-local mode for its block, then
    restores it. `attribute` names the mode: "enabled" (grad mode) or "anomaly"."""

    def __init__(self, mode: bool, attribute: str = "enabled") -> None:
        self.mode = bool(mode)
        self.attribute = attribute
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(getattr(_grad_mode, self.attribute))
        setattr(_grad_mode, self.attribute, self.mode)

    def __exit__(self, *exc_info: object) -> None:
        setattr(_grad_mode, self.attribute, self._previous.pop())

    def __call__(self, fn: _Fn) -> _Fn:
        mode, attribute = self.mode, self.attribute

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _ModeAs(mode, attribute):  # a fresh manager per call: safe under recursion and threads
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradModeAs(_ModeAs):
    """Grad mode for a block (``with _GradModeAs(False):``)."""

    def __init__(self, mode: bool) -> None:
        super().__init__(mode, "enabled")


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


class detect_anomaly(_ModeAs):
    """Inside ``with detect_anomaly():`` (or a function decorated with ``@detect_anomaly()``)
    every op checks its result: the first forward whose output holds NaN or ±inf raises
    RuntimeError naming the op (and whether an input already held such values), and so does
    the first backward that returns a non-finite gradient, naming the op, the input whose
    gradient it is, and where the op's forward ran. Off by default (it costs a pass over every
    result); thread-local, like grad mode. ``detect_anomaly(False)`` switches it off for a block.
    """

    def __init__(self, mode: bool = True) -> None:
        super().__init__(mode, "anomaly")


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _caller_site() -> str:
    """'file:line in function' of the innermost frame outside this package (the user's call)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _non_finite(array: np.ndarray) -> str | None:
    """None for an all-finite (or non-float) array; else which of 'nan' and 'inf' it holds."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    kinds = [name for name, present in (("nan", np.isnan(array).any()), ("inf", np.isinf(array).any()))
             if present]
    return " and ".join(kinds)


def _check_forward(fn: type[Function], inputs: tuple[Tensor, ...], output: np.ndarray) -> None:
    """detect_anomaly: raise if `output` holds NaN or ±inf. Inside a backward the gradient that
    backward returns is checked instead, so that the error names the op being differentiated."""
    found = _non_finite(output)
    if found is None or _grad_mode.backward_of is not None:
        return
    bad = [i for i, t in enumerate(inputs) if _non_finite(t.data) is not None]
    origin = (f"; its input{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} already held NaN or "
              "inf (from outside any op: the data, a parameter or a gradient argument)" if bad
              else " from finite inputs")
    raise RuntimeError(f"detect_anomaly: {fn.__name__} produced {found} in its output of shape "
                       f"{output.shape}{origin}; called at {_caller_site()}")


# ---- arrays saved for the backward ------------------------------------------------------------------
class _Hold:
    """An array that live graph nodes saved for their backward: read-only while `count` > 0.

    `writeable` is the flag it had before (restored when the last node lets go), `version`
    counts the in-place updates made through `in_place` while it was held, and `stuck` holds
    (weakly, by id) views of this array that are read-only only because it was: views made
    from it while it was held (numpy copies the flag), or views whose own hold ended first.
    They get their flag back with this array."""

    __slots__ = ("array", "count", "writeable", "version", "stuck")

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.count, self.version = array, 0, 0
        self.stuck: dict[int, weakref.ref[np.ndarray]] | None = None  # made when first needed
        self.writeable = array.flags.writeable
        if self.writeable:
            array.setflags(write=False)


# id(array) -> its hold, for every array that a live node saved (the hold keeps the array
# alive, so an id is not reused while it is a key). The lock is reentrant because a Context's
# __del__ may run inside a critical section when the garbage collector frees a cycle.
_holds: dict[int, _Hold] = {}
_holds_lock = threading.RLock()


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory of `array` (numpy links a view straight to it)."""
    base = array.base
    while isinstance(base, np.ndarray):
        array, base = base, base.base
    return array


def _hold(arrays: Iterable[np.ndarray]) -> tuple[tuple[int, _Hold, int], ...]:
    """Make each array, and the array that owns its memory, read-only; return (position, hold,
    version now) for every hold taken. Writing through the owner would change the view too."""
    taken = []
    holds = _holds
    with _holds_lock:
        for position, array in enumerate(arrays):
            if array.base is None:  # the common case: the array owns its memory
                hold = holds.get(id(array))
                if hold is None:
                    hold = holds[id(array)] = _Hold(array)
                hold.count += 1
                taken.append((position, hold, hold.version))
                continue
            owner = _owner(array)
            for target in (array,) if owner is array else (owner, array):
                hold = holds.get(id(target))
                if hold is None:
                    hold = holds[id(target)] = _Hold(target)
                    stuck = holds[id(owner)].stuck if target is not owner else None
                    if stuck:  # a view read-only only because its owner is held
                        ref = stuck.pop(id(target), None)
                        if ref is not None and ref() is target:
                            hold.writeable = True
                hold.count += 1
                taken.append((position, hold, hold.version))
    return tuple(taken)


def _restore(hold: _Hold) -> None:
    if hold.writeable:
        try:
            hold.array.setflags(write=True)
        except ValueError:  # a view of an array another live node still holds: restored with it
            _note_stuck(hold.array)
    for ref in (hold.stuck or {}).values():
        view = ref()
        if view is not None and id(view) not in _holds:
            try:
                view.setflags(write=True)
            except ValueError:  # its owner is read-only for another reason
                pass
    hold.stuck = None


def _note_stuck(view: np.ndarray) -> None:
    """Remember a read-only view of a held array, to give it its flag back with the array. A
    view with a zero stride on a longer axis (np.broadcast_to) repeats memory: numpy makes it
    read-only for good, and so do we."""
    owner_hold = _holds.get(id(_owner(view)))
    if owner_hold is None or not owner_hold.writeable or any(
            stride == 0 and length > 1 for stride, length in zip(view.strides, view.shape)):
        return
    if owner_hold.stuck is None:
        owner_hold.stuck = {}
    stuck = owner_hold.stuck
    if len(stuck) >= 64 and (len(stuck) & (len(stuck) - 1)) == 0:  # at 64, 128, ...: drop dead views
        for key in [key for key, ref in stuck.items() if ref() is None]:
            del stuck[key]
    stuck[id(view)] = weakref.ref(view)


def _view_born_read_only(output: np.ndarray) -> None:
    """An op made a view of an array a live node holds (x.reshape, w.T, x[0] of a held x):
    numpy gave it the read-only flag of its base; note it, so that it is writeable again once
    nothing holds that base. Writes through it now would change what the node saved."""
    if _holds.get(id(_owner(output))) is None:  # read-only for another reason (np.broadcast_to)
        return
    with _holds_lock:
        _note_stuck(output)


def _unhold(taken: Iterable[tuple[int, _Hold, int]]) -> None:
    """Let go of holds taken by `_hold`; an array no node holds any more gets its flag back."""
    freed = None
    with _holds_lock:
        for _, hold, _ in taken:
            hold.count -= 1
            if not hold.count:
                del _holds[id(hold.array)]
                if freed is None:
                    freed = [hold]
                else:
                    freed.append(hold)
        if freed is None:
            return
        if len(freed) > 1:
            freed.sort(key=_is_view)  # owners before their views
        for hold in freed:
            if hold.writeable and not hold.stuck and hold.array.base is None:
                hold.array.setflags(write=True)  # the common case, inline
            else:
                _restore(hold)


def _is_view(hold: _Hold) -> bool:
    return hold.array.base is not None


class in_place:
    """``with in_place(array):`` around an in-place update of `array` by the library (an
    optimizer step, ``load_state_dict``). If live graph nodes saved the array (or the array
    that owns its memory), its read-only flag is lifted for the update and a new version is
    counted, so that a later backward through those nodes raises instead of using the new
    values. Costs one dict lookup when no node holds any array."""

    __slots__ = ("array", "lifted", "locked")

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.lifted: list[np.ndarray] = []
        self.locked = False

    def __enter__(self) -> np.ndarray:
        if not _holds:  # the usual case: backward() already released every node
            return self.array
        _holds_lock.acquire()  # kept through the update: no other thread takes or drops a hold
        self.locked = True
        owner = _owner(self.array)
        for target in (self.array,) if owner is self.array else (owner, self.array):
            hold = _holds.get(id(target))
            if hold is not None:
                hold.version += 1
                if hold.writeable:  # read-only only because of the hold
                    target.setflags(write=True)
                    self.lifted.append(target)
        return self.array

    def __exit__(self, *exc_info: object) -> None:
        if self.locked:
            for target in reversed(self.lifted):  # views before their owner
                target.setflags(write=False)
            self.lifted, self.locked = [], False
            _holds_lock.release()


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
        self._holds: tuple[tuple[int, _Hold, int], ...] = ()

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
        Tensor = _tensor_class()
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
        self._holds = _hold(arrays)

    def release(self) -> None:
        """Drop the saved tensors and the forward's ctx attributes (after a backward), and give
        the saved arrays their write flag back."""
        self.released = True
        self._saved = None
        self._output = None
        self._arrays = ()
        self.__dict__.clear()
        if self._holds:
            taken, self._holds = self._holds, ()
            _unhold(taken)

    def __del__(self) -> None:
        # A graph dropped without a backward (an evaluation in grad mode, retain_graph=True)
        # must not leave its arrays read-only.
        if self._holds:
            taken, self._holds = self._holds, ()
            try:
                _unhold(taken)
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
        Tensor = _tensor_class()
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__}.apply takes Tensors as positional inputs (got "
                                f"{type(t).__name__} at position {i}); pass other values as keywords")
        ctx = Context(cls, inputs)
        modes = _grad_mode
        # Underflow to zero (exp(-1000), σ(-1000)·σ'(…)) is the right answer in every op, never
        # an error, even when the caller runs under np.errstate(all="raise"). Under
        # detect_anomaly numpy stays silent: the check below names the op instead.
        if modes.anomaly:
            with np.errstate(all="ignore"):
                returned = cls.forward(ctx, *inputs, **params)
        elif K.underflow_ignored():  # numpy's default: no errstate to enter (2 µs an op)
            returned = cls.forward(ctx, *inputs, **params)
        else:
            with K.ignore_underflow():
                returned = cls.forward(ctx, *inputs, **params)
        # numpy gives scalars (np.float64) for full reductions; a Tensor always holds an array.
        output = K.asarray(returned)
        if _holds and output.base is not None and not output.flags.writeable:
            _view_born_read_only(output)
        if modes.anomaly:
            _check_forward(cls, inputs, output)
        if not modes.enabled or True not in ctx.needs_input_grad:
            return Tensor._make(output)
        ctx._record(inputs, returned, output)
        if modes.anomaly:  # named if this node's backward goes wrong
            ctx.__dict__["_forward_site"] = _caller_site()
        return Tensor._make(output, requires_grad=True, ctx=ctx)
