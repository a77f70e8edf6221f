"""Datasets and their loader, as ``torch.utils.data``: a `Dataset` is anything with
``__len__`` and ``__getitem__``; `TensorDataset` wraps arrays or tensors that share their first
dim; `DataLoader` draws batches from a dataset in a (shuffled) order and collates them.

A `TensorDataset` gives a whole batch in one indexing of each array, with no loop in Python
over its samples; a dataset with ``__getitems__(indices)`` gives the list of samples at once
(PyTorch 2's contract); otherwise the loader fetches samples one by one. `collate_fn` stacks
them (the default: each field stacked into a Tensor, integers and bools keeping their dtype, as
``torch.tensor`` does).
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinygrad_cnn import creation, dtypes
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.tensor_ops import tensor

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]


class Dataset:
    """Base class of map-style datasets: ``dataset[i]`` is sample i, ``len(dataset)`` their count."""

    def __getitem__(self, index: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples ``(a[i], b[i], ...)`` of arrays or tensors that share their first dim."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one array or tensor")
        self.tensors = tuple(t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors)
        if any(t.ndim == 0 or len(t) != len(self.tensors[0]) for t in self.tensors):
            raise ValueError(f"TensorDataset: arrays of shapes {[t.shape for t in self.tensors]} need the same first dim")

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(tensor(t[index]) for t in self.tensors)

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, ...]:
        """The samples at `indices` already collated (what default_collate would make of them),
        by one indexing of each array: the DataLoader's way through a TensorDataset."""
        picked = np.asarray(indices, dtype=np.intp)
        return tuple(_fresh(t[picked]) for t in self.tensors)


def _fresh(array: np.ndarray) -> Tensor:
    """A Tensor of an array indexing just made (its own memory): wrapped without a second copy."""
    return Tensor._make(array) if array.dtype in dtypes.SUPPORTED else tensor(array)


def default_collate(samples: list[Any]) -> Any:
    """Samples (tuples of arrays, tensors or numbers) stacked field by field into Tensors."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    return tensor(np.stack([s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]))


class DataLoader:
    """Batches of `dataset`, as torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False,
    drop_last=False, collate_fn=None, generator=None). A shuffled order is drawn each epoch from
    `generator`, or from ``(seed, epoch)`` with `seed`, or (neither) from the global generator
    that ``tinygrad_cnn.manual_seed`` sets; with `seed`, `state_dict` carries the position across
    a resume. PyTorch's `num_workers` and `pin_memory` are accepted, and the batches are made in
    this process either way (there is no device memory to pin)."""

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable[[list[Any]], Any] | None = None, generator: np.random.Generator | None = None,
                 seed: int | None = None, num_workers: int = 0, pin_memory: bool = False) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader takes a dataset (with __len__ and __getitem__), got {type(dataset).__name__}; "
                            "for arrays, wrap them: TensorDataset(images, labels)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(shuffle, numbers.Integral) and not isinstance(shuffle, bool) and shuffle not in (0, 1):
            raise TypeError(f"DataLoader: shuffle must be a bool, got {shuffle!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"DataLoader: seed must be an int, got {seed!r}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.collate_fn = collate_fn or default_collate
        self.generator, self.seed, self.epoch = generator, seed, 0

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def _order(self) -> np.ndarray:
        count = len(self.dataset)
        if not self.shuffle:
            return np.arange(count)
        if self.seed is not None:
            return np.random.default_rng([self.seed, self.epoch]).permutation(count)
        return (self.generator or creation.default_generator()).permutation(count)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        self.epoch += 1
        # a TensorDataset (its samples not redefined) collates by indexing each array once; a
        # dataset's __getitems__ gives the list of samples for collate_fn, as PyTorch's contract
        whole = (isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
                 and type(self.dataset).__getitem__ is TensorDataset.__getitem__)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start:start + self.batch_size]
            if whole:
                yield self.dataset.batch(indices)
            elif hasattr(self.dataset, "__getitems__"):
                yield self.collate_fn(self.dataset.__getitems__([int(i) for i in indices]))
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"epoch": np.asarray(self.epoch, dtype=np.int64),
                "seed": np.asarray(-1 if self.seed is None else self.seed, dtype=np.int64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping) or not {"epoch", "seed"} <= set(state):
            raise ValueError(f"DataLoader.load_state_dict needs a dict with 'epoch' and 'seed', got "
                             f"{sorted(state) if isinstance(state, Mapping) else type(state).__name__}")
        self.epoch = int(state["epoch"])
        self.seed = None if int(state["seed"]) < 0 else int(state["seed"])
