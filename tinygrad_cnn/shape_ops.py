"""PyTorch's shape functions (each also a Tensor method, re-exported by tensor_ops): joining and
splitting (cat, stack, split, chunk) and the dims moved, added, removed or broadcast (permute,
transpose, unsqueeze, squeeze, expand, broadcast_to, flatten). Views where numpy gives one;
their gradients come from the Cat, Transpose, Reshape, BroadcastTo and GetItem primitives."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tinygrad_cnn import dtypes, ops
from tinygrad_cnn.shapes import normalize_axes
from tinygrad_cnn.tensor import Tensor


def tensor_input(x: Any, name: str) -> Tensor:
    """x itself where it is a Tensor; anything else a TypeError naming the function."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): input must be a Tensor, not {type(x).__name__}")
    return x


# ---- joining and splitting ----------------------------------------------------------------------
def cat(tensors: Any, dim: int = 0) -> Tensor:
    """torch.cat: the tensors joined along `dim` (their other dims alike), in one dtype."""
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("cat() takes a non-empty list or tuple of Tensors")
    common = tensors[0].dtype
    for t in tensors[1:]:
        common = dtypes.result_type(common, t.dtype)
    tensors = [t.to(common) for t in tensors]
    (axis,) = normalize_axes(dim, tensors[0].ndim)
    rest = [t.shape[:axis] + t.shape[axis + 1:] for t in tensors]
    if any(t.ndim != tensors[0].ndim for t in tensors) or any(r != rest[0] for r in rest):
        raise ValueError(f"cat(): tensors of shapes {[t.shape for t in tensors]} differ outside dim {dim}")
    if not dtypes.is_floating(common) or not any(t.requires_grad for t in tensors):
        return Tensor._make(np.concatenate([t.data for t in tensors], axis=axis))
    return ops.Cat.apply(*tensors, axis=axis)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """torch.stack: the tensors (all of one shape) joined along a new dim `dim`."""
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("stack() takes a non-empty list or tuple of Tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack(): tensors of shapes {[t.shape for t in tensors]} differ")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.split: pieces of `split_size` along `dim` (the last may be shorter), or of the listed sizes."""
    x = tensor_input(x, "split")
    (axis,) = normalize_axes(dim, x.ndim)
    length = x.shape[axis]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = list(split_size_or_sections)
        if sum(sizes) != length or any(
                isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)) or n < 0 for n in sizes):
            raise ValueError(f"split(): sizes {sizes} do not add up to dim {dim}'s length {length}")
    else:
        size = split_size_or_sections
        if isinstance(size, bool) or not isinstance(size, (numbers.Integral, np.integer)) or size < 1:
            raise ValueError(f"split(): split_size must be an int >= 1, got {size!r}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    pieces, start = [], 0
    for n in sizes:
        pieces.append(x[(slice(None),) * axis + (slice(start, start + n),)])
        start += n
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.chunk: at most `chunks` pieces of equal length along `dim` (the last may be shorter)."""
    x = tensor_input(x, "chunk")
    if isinstance(chunks, bool) or not isinstance(chunks, (numbers.Integral, np.integer)) or chunks < 1:
        raise ValueError(f"chunk(): chunks must be an int >= 1, got {chunks!r}")
    (axis,) = normalize_axes(dim, x.ndim)
    return split(x, max(1, -(-x.shape[axis] // chunks)), axis)


# ---- shape -------------------------------------------------------------------------------------------
def permute(x: Tensor, *dims: Any) -> Tensor:
    """The dims reordered: dim i of the result is dim `dims[i]` of x."""
    x = tensor_input(x, "permute")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    perm = tuple(normalize_axes(d, x.ndim)[0] for d in dims) if x.ndim else ()
    if len(dims) != x.ndim or sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of a {x.ndim}-d tensor's dims")
    return ops.Transpose.apply(x, axes=perm)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """dims `dim0` and `dim1` swapped (PyTorch's transpose; numpy's is `permute`)."""
    x = tensor_input(x, "transpose")
    if x.ndim == 0:
        normalize_axes(dim0, 0), normalize_axes(dim1, 0)  # only 0 and -1 are allowed
        return x
    perm = list(range(x.ndim))
    a, b = normalize_axes(dim0, x.ndim)[0], normalize_axes(dim1, x.ndim)[0]
    perm[a], perm[b] = perm[b], perm[a]
    return ops.Transpose.apply(x, axes=tuple(perm))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """A new dim of length 1 at `dim` (−1: last), as PyTorch."""
    x = tensor_input(x, "unsqueeze")
    if isinstance(dim, bool) or not isinstance(dim, (numbers.Integral, np.integer)):
        raise TypeError(f"unsqueeze: dim must be an int, got {dim!r}")
    (axis,) = normalize_axes(dim, x.ndim + 1)
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    """The dims of length 1 removed (all, or those of `dim` that have length 1, as PyTorch)."""
    x = tensor_input(x, "squeeze")
    axes = normalize_axes(dim, x.ndim)
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1)))


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """x broadcast to `sizes`; −1 keeps a dim's length (PyTorch's expand)."""
    x = tensor_input(x, "expand")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor of shape {x.shape}")
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return x.broadcast_to(shape)


def broadcast_to(x: Tensor, shape: Any) -> Tensor:
    """x broadcast to `shape` (numpy's rules)."""
    x = tensor_input(x, "broadcast_to")
    shape = tuple(shape)
    try:
        fits = np.broadcast_shapes(x.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"cannot broadcast a tensor of shape {x.shape} to {shape}")
    return x if shape == x.shape else ops.BroadcastTo.apply(x, shape=shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dims start_dim..end_dim merged into one (all of them by default)."""
    x = tensor_input(x, "flatten")
    if x.ndim == 0:
        return x.reshape(1)
    start, end = (normalize_axes(d, x.ndim)[0] for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return x.reshape(x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :])


__all__ = ["cat", "stack", "split", "chunk", "permute", "transpose", "unsqueeze", "squeeze", "expand", "broadcast_to",
           "flatten"]
