"""Arrays saved for a backward are protected while a graph node may still read them.

A live node's saved arrays (and the arrays that own their memory) are read-only, so a raw write
(``x.data[...] = 0``) raises at the line that writes; the flag comes back when the last node
holding the array lets go. An update by the library itself (an optimizer step,
``load_state_dict``) goes through `in_place`, which lifts the flag for the update and counts a
new version, so that a backward through a node that saved the old version raises (see
``tinygrad_cnn.function.Context``).
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Iterable

import numpy as np


class Hold:
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
holds: dict[int, Hold] = {}
holds_lock = threading.RLock()


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory of `array` (numpy links a view straight to it)."""
    base = array.base
    while isinstance(base, np.ndarray):
        array, base = base, base.base
    return array


def hold_arrays(arrays: Iterable[np.ndarray]) -> tuple[tuple[int, Hold, int], ...]:
    """Make each array, and the array that owns its memory, read-only; return (position, hold,
    version now) for every hold taken. Writing through the owner would change the view too."""
    taken = []
    with holds_lock:
        for position, array in enumerate(arrays):
            if array.base is None:  # the common case: the array owns its memory
                hold = holds.get(id(array))
                if hold is None:
                    hold = holds[id(array)] = Hold(array)
                hold.count += 1
                taken.append((position, hold, hold.version))
                continue
            owner = _owner(array)
            for target in (array,) if owner is array else (owner, array):
                hold = holds.get(id(target))
                if hold is None:
                    hold = holds[id(target)] = Hold(target)
                    stuck = holds[id(owner)].stuck if target is not owner else None
                    if stuck:  # a view read-only only because its owner is held
                        ref = stuck.pop(id(target), None)
                        if ref is not None and ref() is target:
                            hold.writeable = True
                hold.count += 1
                taken.append((position, hold, hold.version))
    return tuple(taken)


def _restore(hold: Hold) -> None:
    if hold.writeable:
        try:
            hold.array.setflags(write=True)
        except ValueError:  # a view of an array another live node still holds: restored with it
            _note_stuck(hold.array)
    for ref in (hold.stuck or {}).values():
        view = ref()
        if view is not None and id(view) not in holds:
            try:
                view.setflags(write=True)
            except ValueError:  # its owner is read-only for another reason
                pass
    hold.stuck = None


def _note_stuck(view: np.ndarray) -> None:
    """Remember a read-only view of a held array, to give it its flag back with the array. A
    view with a zero stride on a longer axis (np.broadcast_to) repeats memory: numpy makes it
    read-only for good, and so do we."""
    owner_hold = holds.get(id(_owner(view)))
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


def note_view_of_held(output: np.ndarray) -> None:
    """An op made a view of an array a live node holds (x.reshape, w.T, x[0] of a held x):
    numpy gave it the read-only flag of its base; note it, so that it is writeable again once
    nothing holds that base. Writes through it now would change what the node saved."""
    if holds.get(id(_owner(output))) is None:  # read-only for another reason (np.broadcast_to)
        return
    with holds_lock:
        _note_stuck(output)


def release_holds(taken: Iterable[tuple[int, Hold, int]]) -> None:
    """Let go of holds taken by `hold_arrays`; an array no node holds any more gets its flag back."""
    freed = None
    with holds_lock:
        for _, hold, _ in taken:
            hold.count -= 1
            if not hold.count:
                del holds[id(hold.array)]
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


def _is_view(hold: Hold) -> bool:
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
        if not holds:  # the usual case: backward() already released every node
            return self.array
        holds_lock.acquire()  # kept through the update: no other thread takes or drops a hold
        self.locked = True
        owner = _owner(self.array)
        for target in (self.array,) if owner is self.array else (owner, self.array):
            hold = holds.get(id(target))
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
            holds_lock.release()


def assign(tensor: Any, value: np.ndarray, what: str, index: Any = ...) -> None:
    """tensor[index]'s values replaced by `value` in place (an in-place operator or an item
    assignment where no graph sees it): its array is written through `in_place` (views of it,
    and from_numpy's array, see the change; a graph that saved it raises at its backward), or
    replaced where it is read-only (a broadcast view). As PyTorch's, the tensor keeps its dtype
    (float64 into float32 is rounded) but refuses a higher kind (a float into an integer tensor)
    or a change of shape."""
    if index is ... and (value.shape != tensor.shape or not np.can_cast(value.dtype, tensor.dtype, "same_kind")):
        raise TypeError(f"{what} would change a tensor of {tensor.dtype} and shape {tensor.shape} into "
                        f"{value.dtype} and shape {value.shape}; write x = x {what[:-1]} y")
    array = tensor.data
    try:
        with in_place(array):
            # a view read-only only because its owner was held, which in_place just made writeable
            lifted = not array.flags.writeable and array.base is not None and array.base.flags.writeable
            if lifted:
                array.setflags(write=True)
            try:
                array[index] = value
            finally:
                if lifted:
                    array.setflags(write=False)
    except ValueError:  # a read-only array (a broadcast view): the tensor takes a new one
        if index is not ...:
            raise
        tensor.data = value.astype(tensor.dtype)
