"""Datasets and their loader, as ``torch.utils.data``: a `Dataset` is anything with
``__len__`` and ``__getitem__``; `TensorDataset` wraps arrays or tensors that share their first
dim; `Subset`, `random_split` and `ConcatDataset` (also ``a + b``) select and join datasets;
`DataLoader` draws batches from a dataset in the order of a sampler (`tinygrad_cnn.utils.sampler`,
re-exported here) and collates them.

A `TensorDataset` gives a whole batch in one indexing of each array, with no loop in Python
over its samples, and so does a `Subset` of one; a dataset with ``__getitems__(indices)`` gives
the list of samples at once (PyTorch 2's contract); otherwise the loader fetches samples one by
one. `collate_fn` stacks them (the default: each field stacked into a Tensor, integers and bools
keeping their dtype, as ``torch.tensor`` does).
"""
from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from tinygrad_cnn import creation, dtypes
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.tensor_ops import tensor
from tinygrad_cnn.utils.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                                        WeightedRandomSampler, indices_of, int_array, short, start_epoch)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader", "default_collate",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _check_dataset(name: str, dataset: Any) -> None:
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"{name} takes a dataset (with __len__ and __getitem__), got {type(dataset).__name__}; "
                        "for arrays, wrap them: TensorDataset(images, labels)")


class Dataset:
    """Base class of map-style datasets: ``dataset[i]`` is sample i, ``len(dataset)`` their count;
    ``a + b`` is ``ConcatDataset([a, b])``."""

    def __getitem__(self, index: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def __add__(self, other: Any) -> ConcatDataset:
        return ConcatDataset([self, other])


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
        picked = index_array(indices)
        return tuple(_fresh(t[picked]) for t in self.tensors)


def index_array(indices: Any) -> np.ndarray:
    """Indices a sampler gave, as an array to index with: integers only (a float or bool index
    is a TypeError, not truncated or read as a mask)."""
    picked = np.asarray(indices)
    if picked.size and picked.dtype.kind not in "iu":
        raise TypeError(f"dataset indices must be integers, got {picked.dtype} indices {short(indices)}")
    return picked.astype(np.intp, copy=False)


def _fresh(array: np.ndarray) -> Tensor:
    """A Tensor of an array indexing just made (its own memory): wrapped without a second copy."""
    return Tensor._make(array) if array.dtype in dtypes.SUPPORTED else tensor(array)


class Subset(Dataset):
    """The samples of `dataset` at `indices` (ints, each in ``[-len(dataset), len(dataset))``):
    ``subset[i]`` is ``dataset[indices[i]]``. Batches pass through: `__getitems__` to the
    dataset's own where it has one, `batch` to a TensorDataset's (one indexing of each array).
    A subclass that redefines `__getitem__` must redefine `__getitems__` too (PyTorch's rule:
    the loader fetches through `__getitems__`)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        if type(self).__getitem__ is not Subset.__getitem__ and type(self).__getitems__ is Subset.__getitems__:
            raise NotImplementedError(f"{type(self).__name__} overrides __getitem__ but not __getitems__, which the "
                                      "DataLoader fetches through: define __getitems__(self, indices) too")
        _check_dataset("Subset", dataset)
        array = int_array(indices, "Subset")
        count = len(dataset)
        if array.size and (array.min() < -count or array.max() >= count):
            bad = array[(array < -count) | (array >= count)][0]
            raise ValueError(f"Subset: index {bad} of indices is out of range for a dataset of {count} samples")
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int | list[int]) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def batch(self, indices: Sequence[int]) -> Any:
        """The samples at `indices` collated by the dataset's own `batch` (a TensorDataset's): one
        fancy-index of `indices` as an array, made once per `indices` object given to the Subset
        (a list from random_split, say), not at every batch."""
        if getattr(self, "_array_of", None) is not self.indices:
            self._array_of, self._array = self.indices, index_array(self.indices)
        return self.dataset.batch(self._array[index_array(indices)])


class ConcatDataset(Dataset):
    """The samples of `datasets` one after another; `cumulative_sizes` holds the running totals of
    their lengths. A negative index counts from the end, as a list's."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        if isinstance(datasets, Dataset) or not hasattr(datasets, "__iter__"):
            raise TypeError(f"ConcatDataset takes a list of datasets, got {type(datasets).__name__}")
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset, got none")
        for i, dataset in enumerate(self.datasets):
            _check_dataset(f"ConcatDataset: datasets[{i}]", dataset)
        self.cumulative_sizes = self.cumsum(self.datasets)

    @staticmethod
    def cumsum(sequence: Iterable[Any]) -> list[int]:
        return list(itertools.accumulate(len(dataset) for dataset in sequence))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
            raise TypeError(f"ConcatDataset: an index must be an int, got {short(idx)}")
        count = len(self)
        if idx < 0:
            if -idx > count:  # a ValueError, as PyTorch's
                raise ValueError(f"ConcatDataset: index {idx} is out of range for {count} samples")
            idx += count
        if idx >= count:  # an IndexError, as a list's: it ends iteration over the samples
            raise IndexError(f"ConcatDataset: index {idx} is out of range for {count} samples")
        which = bisect.bisect_right(self.cumulative_sizes, idx)  # past the empty datasets that end at idx
        return self.datasets[which][idx - (self.cumulative_sizes[which - 1] if which else 0)]


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | int | None = None) -> list[Subset]:
    """`dataset` split at random into Subsets of `lengths` without overlap, as PyTorch's: ints
    that sum to ``len(dataset)``, or fractions that sum to 1, each split then getting
    ``floor(fraction * len(dataset))`` samples and the ones left over handed one by one to the
    splits in turn from the first (an empty split warns). The order is one permutation drawn
    from `generator` (a numpy Generator, an int seed, or None: the global generator)."""
    _check_dataset("random_split", dataset)
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__"):
        raise TypeError(f"random_split: lengths must be a sequence of ints or fractions, got {short(lengths)}")
    lengths = list(lengths)
    if not lengths or any(isinstance(x, bool) or not isinstance(x, numbers.Real) for x in lengths):
        raise TypeError(f"random_split: lengths must be a non-empty sequence of ints or fractions, got "
                        f"{short(lengths)}")
    count, total = len(dataset), sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: the fraction lengths[{i}] = {fraction!r} is not between 0 and 1")
        sizes = [math.floor(count * fraction) for fraction in lengths]
        for i in range(count - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"random_split: the split at index {i} is empty (lengths {short(lengths)} of "
                              f"{count} samples)", stacklevel=2)
    else:
        bad = [x for x in lengths if not isinstance(x, numbers.Integral) or x < 0]
        if bad:
            raise ValueError(f"random_split: lengths must be ints >= 0 or fractions that sum to 1 (not above), got "
                             f"{short(lengths)}, whose sum is {total!r}")
        sizes = [int(x) for x in lengths]
        if sum(sizes) != count:
            raise ValueError(f"random_split: lengths {short(lengths)} sum to {sum(sizes)}, not to the dataset's "
                             f"length {count}")
    order = creation.generator(generator, "random_split: generator").permutation(count).tolist()
    return [Subset(dataset, order[end - size:end]) for end, size in zip(itertools.accumulate(sizes), sizes)]


def _collates_whole(dataset: Any) -> bool:
    """Whether ``dataset.batch(indices)`` is what default_collate makes of its samples: a
    TensorDataset's, or a Subset's of one, where no subclass redefines their samples."""
    if isinstance(dataset, TensorDataset):
        return type(dataset).__getitem__ is TensorDataset.__getitem__
    if isinstance(dataset, Subset):
        return type(dataset).__getitems__ is Subset.__getitems__ and _collates_whole(dataset.dataset)
    return False


def _key(index: Any) -> Any:
    """A sampler's index as the dataset gets it: a Python int (numpy's too), anything else as it is."""
    return int(index) if isinstance(index, numbers.Integral) and not isinstance(index, bool) else index


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
    sampler=None, batch_sampler=None, num_workers=0, collate_fn=None, pin_memory=False,
    drop_last=False, *, generator=None), PyTorch's order (and `seed`, ours). A
    shuffled order is drawn each epoch from `generator`, or from ``(seed, epoch)`` with `seed`, or
    (neither) from the global generator that ``tinygrad_cnn.manual_seed`` sets; with `seed`,
    `state_dict` carries the position across a resume. `sampler` (any iterable of indices, in
    place of `shuffle`) gives the order instead, and `batch_sampler` (any iterable of lists of
    indices, in place of `batch_size`, `shuffle`, `sampler` and `drop_last`) the batches; a
    sampler of ours drawing from an int seed draws the loader's epoch, so that `state_dict`
    resumes it too. PyTorch's `num_workers` and `pin_memory` are accepted, and the batches are
    made in this process either way (there is no device memory to pin)."""

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, sampler: Iterable[Any] | None = None,
                 batch_sampler: Iterable[Sequence[Any]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, *, generator: np.random.Generator | int | None = None,
                 seed: int | None = None) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        _check_dataset("DataLoader", dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(shuffle, numbers.Integral) and not isinstance(shuffle, bool) and shuffle not in (0, 1):
            raise TypeError(f"DataLoader: shuffle must be a bool, got {shuffle!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"DataLoader: seed must be an int, got {seed!r}")
        if seed is not None and seed < 0:  # -1 stands for "no seed" in state_dict
            raise ValueError(f"DataLoader: seed must be >= 0, got {seed}")
        creation.generator(generator, "DataLoader: generator")
        for name, given in (("sampler", sampler), ("batch_sampler", batch_sampler)):
            if given is not None and not hasattr(given, "__iter__"):
                raise TypeError(f"DataLoader: {name} must be an iterable of indices, got {type(given).__name__}")
        if sampler is not None and shuffle:
            raise ValueError(f"DataLoader: sampler is mutually exclusive with shuffle (the sampler gives the order), "
                             f"got shuffle={shuffle!r}")
        if batch_sampler is not None:
            clashes = [f"{name}={short(value)}" for name, value, clash in (
                ("batch_size", batch_size, batch_size != 1), ("shuffle", shuffle, bool(shuffle)),
                ("sampler", sampler, sampler is not None), ("drop_last", drop_last, bool(drop_last))) if clash]
            if clashes:
                raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler "
                                 f"and drop_last (it makes the batches), got {', '.join(clashes)}")
            batch_size, drop_last = None, False  # as PyTorch's
        self.dataset, self.shuffle, self.drop_last = dataset, shuffle, drop_last
        self.batch_size = None if batch_size is None else int(batch_size)
        self.collate_fn = collate_fn or default_collate
        self.generator, self.seed, self.epoch = generator, seed, 0
        self._sampler, self._batch_sampler = sampler, batch_sampler

    @property
    def sampler(self) -> Iterable[Any]:
        """The sampler given, else PyTorch's default: with `shuffle`, a RandomSampler drawing from
        this loader's seed (else its generator) at its epoch; otherwise a SequentialSampler."""
        if self._sampler is not None:
            return self._sampler
        if self.shuffle and len(self.dataset):
            drawn = RandomSampler(self.dataset, generator=self.generator if self.seed is None else self.seed)
            start_epoch(drawn, self.epoch)
            return drawn
        return SequentialSampler(self.dataset)

    @property
    def batch_sampler(self) -> Iterable[Sequence[Any]]:
        """The batch sampler given, else the batches of `sampler` (PyTorch's BatchSampler)."""
        if self._batch_sampler is not None:
            return self._batch_sampler
        return BatchSampler(self.sampler, self.batch_size, bool(self.drop_last))

    def __len__(self) -> int:
        if self._batch_sampler is not None:
            return len(self._batch_sampler)  # type: ignore[arg-type]
        count = len(self._sampler) if self._sampler is not None else len(self.dataset)  # type: ignore[arg-type]
        full, rest = divmod(count, self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def _order(self) -> np.ndarray | list[Any]:
        """The indices of this epoch, in one array where the sampler is one of ours."""
        sampler = self.sampler
        start_epoch(sampler, self.epoch)
        return indices_of(sampler)

    def _batches(self) -> Iterator[Sequence[Any]]:
        if self._batch_sampler is not None:
            start_epoch(getattr(self._batch_sampler, "sampler", None), self.epoch)
            return iter(self._batch_sampler)
        order = self._order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return (order[start:start + self.batch_size] for start in range(0, stop, self.batch_size))

    def __iter__(self) -> Iterator[Any]:
        batches = self._batches()
        self.epoch += 1
        # a TensorDataset (or a Subset of one; samples not redefined) collates by indexing each
        # array once; a dataset's __getitems__ gives the list of samples for collate_fn, as PyTorch's
        whole = self.collate_fn is default_collate and _collates_whole(self.dataset)
        for indices in batches:
            if whole:
                yield self.dataset.batch(indices)
            elif hasattr(self.dataset, "__getitems__"):
                yield self.collate_fn(self.dataset.__getitems__([_key(i) for i in indices]))
            else:
                yield self.collate_fn([self.dataset[_key(i)] for i in indices])

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"epoch": np.asarray(self.epoch, dtype=np.int64),
                "seed": np.asarray(-1 if self.seed is None else self.seed, dtype=np.int64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping) or not {"epoch", "seed"} <= set(state):
            raise ValueError(f"DataLoader.load_state_dict needs a dict with 'epoch' and 'seed', got "
                             f"{sorted(state) if isinstance(state, Mapping) else type(state).__name__}")
        self.epoch = int(state["epoch"])
        self.seed = None if int(state["seed"]) < 0 else int(state["seed"])
