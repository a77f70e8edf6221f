"""The backward pass: an iterative topological sort of the nodes, then one sweep in reverse.

Each node's gradient (∂C/∂y of its output) is the sum of what its consumers sent it; the
node's `Function.backward` turns it into one gradient per input, which goes along the edge to
the producing node or, for a leaf, into ``leaf.grad`` (or into the result of `grad`). The
sort keeps an explicit stack, so a chain of any depth backpropagates without RecursionError.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterable, Sequence

import numpy as np

from tinygrad_cnn.function import FREED_MESSAGE, Context, config, using_config
from tinygrad_cnn.tensor import Tensor


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _root_gradients(outputs: Sequence[Tensor], gradients: Sequence[Any]) -> list[Tensor]:
    """Check the outputs and their ∂C/∂output, filling in ones for one-element outputs."""
    roots = []
    for i, (output, gradient) in enumerate(zip(outputs, gradients)):
        if not isinstance(output, Tensor):
            raise TypeError(f"outputs[{i}] must be a Tensor, got {type(output).__name__}")
        if not output.requires_grad:
            raise RuntimeError(
                f"element {i} of the outputs does not require grad and has no grad_fn: nothing "
                "that requires grad was used to compute it"
            )
        if gradient is None:
            if output.numel() != 1:
                raise RuntimeError(
                    f"backward of a non-scalar output of shape {output.shape} needs a gradient "
                    "argument (∂C/∂output of the same shape); it is implicit only for one element"
                )
            gradient = Tensor._make(np.ones(output.shape, dtype=output.dtype))
        elif not isinstance(gradient, Tensor):
            try:
                gradient = Tensor(gradient, dtype=output.dtype)
            except (TypeError, ValueError) as error:
                raise type(error)(f"gradient for outputs[{i}] must be a Tensor or an array of numbers: "
                                  f"{error}") from None
        if gradient.shape != output.shape:
            raise ValueError(
                f"gradient of shape {gradient.shape} does not match the output's shape {output.shape}"
            )
        roots.append(gradient.astype(output.dtype))
    return roots


def toposort(starts: Iterable[Context]) -> list[Context]:
    """Nodes reachable from `starts`, each after all the nodes that produced its inputs."""
    order: list[Context] = []
    visited: set[int] = set()
    for start in starts:
        if id(start) in visited:
            continue
        visited.add(id(start))
        stack = [(start, iter(start.edges))]
        while stack:
            node, edges = stack[-1]
            for parent, _, _ in edges:
                if isinstance(parent, Context) and id(parent) not in visited:
                    visited.add(id(parent))
                    stack.append((parent, iter(parent.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


class RemovableHandle:
    """What register_hook and a Module's register_forward_hook return, as PyTorch's: ``remove()``
    takes the hook away (also on leaving a ``with`` block)."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def register_hook(tensor: Tensor, hook: Any) -> RemovableHandle:
    """See `Tensor.register_hook`. A non-leaf's hooks live on the node that made it (which a
    backward meets), a leaf's on the leaf."""
    if not callable(hook):
        raise TypeError(f"register_hook takes a function of the gradient, got {type(hook).__name__}")
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require grad")
    if tensor._ctx is not None:
        hooks = tensor._ctx.__dict__.setdefault("hooks", {})
    else:
        if getattr(tensor, "_hooks", None) is None:
            tensor._hooks = {}
        hooks = tensor._hooks
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def retain_grad(tensor: Tensor) -> None:
    """See `Tensor.retain_grad`."""
    if not tensor.requires_grad:
        raise RuntimeError("retain_grad() on a tensor that does not require grad")
    if tensor._ctx is not None:  # a leaf keeps its .grad anyway
        tensor._ctx.retained = weakref.ref(tensor)


def _hooked(hooks: dict[int, Any] | None, gradient: Tensor) -> Tensor:
    """`gradient` through each hook in turn: one that returns a Tensor (of its shape) replaces it."""
    for hook in list((hooks or {}).values()):
        changed = hook(gradient)
        if changed is not None:
            if not isinstance(changed, Tensor) or (changed.shape, changed.dtype) != (gradient.shape, gradient.dtype):
                got = f"{changed.shape} {changed.dtype}" if isinstance(changed, Tensor) else type(changed).__name__
                raise RuntimeError(f"a tensor hook must return None or a Tensor of the gradient's shape and dtype "
                                   f"{gradient.shape} {gradient.dtype}, got {got}")
            gradient = changed
    return gradient


def _retain(tensor: Tensor, gradient: Tensor, create_graph: bool) -> None:
    """tensor.grad = its gradient, or the sum with the one kept before: a new Tensor each time
    (as PyTorch's retain_grad), so a .grad read earlier keeps its values."""
    if tensor.grad is not None:
        tensor.grad = tensor.grad + gradient if create_graph else Tensor._make(tensor.grad.data + gradient.data)
    else:
        tensor.grad = gradient if create_graph and gradient.requires_grad else Tensor._make(gradient.data.copy())


def _accumulate(store: dict[int, Tensor], key: int, gradient: Tensor) -> None:
    previous = store.get(key)
    store[key] = gradient if previous is None else previous + gradient


def _accumulate_leaf(leaf: Tensor, gradient: Tensor, create_graph: bool) -> None:
    """leaf.grad += gradient. Without create_graph, in place into an array .grad owns (as
    PyTorch); a .grad never shares memory with an input, a gradient argument or another .grad."""
    if create_graph:
        if leaf.grad is not None:
            leaf.grad = leaf.grad + gradient
        else:  # a constant gradient is copied: it may be the caller's tensor or another leaf's
            leaf.grad = gradient if gradient.requires_grad else Tensor._make(gradient.data.copy())
        return
    own = leaf.grad
    if (own is None or own.requires_grad or own.shape != leaf.shape or own.data.base is not None
            or not own.data.flags.writeable):
        total = gradient.data if own is None else own.data + gradient.data
        leaf.grad = Tensor._make(np.array(total, dtype=leaf.dtype, copy=True))
    else:
        np.add(own.data, gradient.data, out=own.data, casting="unsafe")


def _run(
    outputs: Sequence[Tensor],
    gradients: Sequence[Tensor],
    *,
    retain_graph: bool,
    create_graph: bool,
    targets: set[int] | None = None,
) -> dict[int, Tensor]:
    """Backpropagate. With `targets` (ids of nodes and leaves), collect their gradients and
    leave every ``.grad`` untouched; without, accumulate into the leaves' ``.grad``."""
    node_grads: dict[int, Tensor] = {}
    captured: dict[int, Tensor] = {}
    hooked_leaves: dict[int, tuple[Tensor, Tensor]] = {}  # a leaf with hooks: its total, hooked once at the end

    def send(edge: Any, gradient: Tensor) -> None:
        if isinstance(edge, Context):
            _accumulate(node_grads, id(edge), gradient)
        elif getattr(edge, "_hooks", None) and (targets is None or id(edge) in targets):
            earlier = hooked_leaves.get(id(edge))
            hooked_leaves[id(edge)] = (edge, gradient if earlier is None else earlier[1] + gradient)
        elif targets is None:
            _accumulate_leaf(edge, gradient, create_graph)
        elif id(edge) in targets:
            _accumulate(captured, id(edge), gradient)

    for output, gradient in zip(outputs, gradients):
        send(output._ctx if output._ctx is not None else output, gradient)
    order = toposort(output._ctx for output in outputs if output._ctx is not None)

    needed = None
    if targets is not None:  # only the nodes on a path to a target need their backward run
        needed = set()
        for node in order:
            if any(id(e) in targets or id(e) in needed for e, _, _ in node.edges if e is not None):
                needed.add(id(node))

    checks = config.anomaly
    with using_config("grad_enabled", create_graph):
        for node in reversed(order):
            gradient = node_grads.pop(id(node), None)
            if gradient is None or (needed is not None and id(node) not in needed and id(node) not in targets):
                continue
            extras = node.__dict__  # register_hook's and retain_grad's, when a tensor asked
            if "hooks" in extras:
                gradient = _hooked(extras["hooks"], gradient)
            if "retained" in extras and extras["retained"]() is not None:
                _retain(extras["retained"](), gradient, create_graph)
            if targets is not None and id(node) in targets:
                captured[id(node)] = gradient
            if needed is not None and id(node) not in needed:
                continue
            if node.released:
                raise RuntimeError(FREED_MESSAGE.format(op=node.fn.__name__))
            if checks:
                input_grads = checks.backward(node, gradient, lambda: _as_tuple(node.fn.backward(node, gradient)))
            else:
                input_grads = _as_tuple(node.fn.backward(node, gradient))
            if len(input_grads) != len(node.edges):
                raise RuntimeError(
                    f"{node.fn.__name__}.backward returned {len(input_grads)} gradients for "
                    f"{len(node.edges)} inputs"
                )
            for (edge, shape, dtype), input_grad in zip(node.edges, input_grads):
                if edge is None or input_grad is None:
                    continue
                if input_grad.shape != shape:
                    raise RuntimeError(
                        f"{node.fn.__name__}.backward returned a gradient of shape "
                        f"{input_grad.shape} for an input of shape {shape}"
                    )
                send(edge, input_grad if input_grad.dtype == dtype else input_grad.astype(dtype))
            if not retain_graph:
                node.release()
        for leaf, total in hooked_leaves.values():
            total = _hooked(leaf._hooks, total)
            if targets is None:
                _accumulate_leaf(leaf, total, create_graph)
            else:
                captured[id(leaf)] = total
    return captured


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """See `Tensor.backward`."""
    if isinstance(tensor, Tensor) and not tensor.requires_grad:
        raise RuntimeError(
            f"backward() on a tensor of shape {tensor.shape} that does not require grad: nothing that "
            "requires grad was used to compute it (or it was computed under no_grad() or detached)")
    roots = _root_gradients([tensor], [gradient])
    _run([tensor], roots, retain_graph=create_graph if retain_graph is None else retain_graph,
         create_graph=create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of `outputs` with respect to `inputs`, as ``torch.autograd.grad``.

    Returns one Tensor per input and leaves every ``.grad`` untouched. `grad_outputs` gives
    ∂C/∂output for each output (None: ones, for one-element outputs). With ``create_graph=True``
    the results are themselves differentiable (and the graph is retained). An input the outputs
    do not depend on is a RuntimeError unless ``allow_unused=True``, which gives None for it.
    """
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"inputs[{i}] must be a Tensor, got {type(tensor).__name__}")
        if not tensor.requires_grad:
            raise RuntimeError(f"inputs[{i}] does not require grad")
    keys = [id(t._ctx) if t._ctx is not None else id(t) for t in inputs]
    roots = _root_gradients(outputs, grad_outputs)
    captured = _run(outputs, roots, retain_graph=create_graph if retain_graph is None else retain_graph,
                    create_graph=create_graph, targets=set(keys))
    results: list[Tensor | None] = []
    for i, key in enumerate(keys):
        gradient = captured.get(key)
        if gradient is None and not allow_unused:
            raise RuntimeError(
                f"inputs[{i}] was not used to compute the outputs; pass allow_unused=True to get "
                "None for it"
            )
        if gradient is not None and not create_graph:
            # Results may be one object (d(x+y)/dx is d(x+y)/dy) or the grad_outputs themselves.
            gradient = Tensor._make(gradient.data.copy())
        results.append(gradient)
    return tuple(results)
