"""Samplers, as ``torch.utils.data.sampler`` (re-exported by `tinygrad_cnn.utils.data`): what
order a DataLoader visits a dataset's indices in, and how they are grouped into batches.

A sampler that draws takes `generator`: a numpy Generator (its stream goes on from epoch to
epoch), an int seed (epoch e draws from ``default_rng([seed, e])``, so a sampler built again with
that seed draws the same epochs, and a DataLoader sets e from its own epoch: its `state_dict`
resumes them), or None (the global generator that ``tinygrad_cnn.manual_seed`` sets). Its epoch
counts the passes over it, and `set_epoch` sets it, as PyTorch's DistributedSampler's.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from tinygrad_cnn import creation
from tinygrad_cnn.tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def short(value: Any) -> str:
    """repr(value), cut to a line (an argument in an error message may be a list of 60,000 indices)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + " ... " + text[-15:]


def int_array(indices: Any, owner: str) -> np.ndarray:
    """`indices` (a sequence of ints) as a 1-d array; anything else is a TypeError naming `owner`."""
    array = np.asarray(indices) if hasattr(indices, "__len__") and hasattr(indices, "__getitem__") else None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise TypeError(f"{owner}: indices must be a sequence of ints, got {short(indices)}")
    return array


def _positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value > 0


class Sampler:
    """Base class of samplers: ``iter(sampler)`` gives the indices (or, for a batch sampler, the
    lists of indices) of one pass; ``len(sampler)``, where defined, their count."""

    def __iter__(self) -> Iterator[Any]:  # pragma: no cover
        raise NotImplementedError


class _ArraySampler(Sampler):
    """A sampler whose pass is one numpy array of indices, drawn when the pass begins: the
    DataLoader takes the array itself (`indices_of`), with no loop in Python over its items."""

    def _draw(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(self._draw().tolist())


def indices_of(sampler: Iterable[Any]) -> np.ndarray | list[Any]:
    """The indices of one pass of `sampler`: the array of one of ours whose `__iter__` a subclass
    has not replaced, else the list of what iterating it gives (any iterable is a sampler)."""
    if isinstance(sampler, _ArraySampler) and type(sampler).__iter__ is _ArraySampler.__iter__:
        return sampler._draw()
    return list(sampler)


class SequentialSampler(_ArraySampler):
    """``0, 1, ..., len(data_source) - 1``, in that order."""

    def __init__(self, data_source: Any) -> None:
        if not hasattr(data_source, "__len__"):
            raise TypeError(f"SequentialSampler: data_source must have a length, got {type(data_source).__name__}")
        self.data_source = data_source

    def _draw(self) -> np.ndarray:
        return np.arange(len(self.data_source))

    def __len__(self) -> int:
        return len(self.data_source)


class _DrawingSampler(_ArraySampler):
    """A sampler that draws from `generator` (see the module's docstring) at its `epoch`."""

    def __init__(self, generator: Any) -> None:
        creation.generator(generator, f"{type(self).__name__}: generator")  # checked, not kept
        self.generator, self.epoch = generator, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next pass as pass `epoch` (with an int seed; other generators have no epochs)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"{type(self).__name__}.set_epoch: epoch must be an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        if self.generator is None or isinstance(self.generator, np.random.Generator):
            return creation.generator(self.generator)
        return np.random.default_rng([int(self.generator), self.epoch])

    def _draw(self) -> np.ndarray:
        indices = self._sample(self._rng())
        self.epoch += 1
        return indices

    def _sample(self, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def start_epoch(sampler: Any, epoch: int) -> None:
    """Make `sampler` draw its next pass as pass `epoch`, where it is a drawing sampler of ours."""
    if isinstance(sampler, _DrawingSampler):
        sampler.set_epoch(epoch)


class RandomSampler(_DrawingSampler):
    """The indices of `data_source` in a random order: each once per ``len(data_source)`` drawn
    (`num_samples` beyond that starts another permutation), or with `replacement` `num_samples`
    independent uniform draws. `num_samples` is ``len(data_source)`` by default."""

    def __init__(self, data_source: Any, replacement: bool = False, num_samples: int | None = None,
                 generator: np.random.Generator | int | None = None) -> None:
        if not hasattr(data_source, "__len__"):
            raise TypeError(f"RandomSampler: data_source must have a length, got {type(data_source).__name__}")
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        self.data_source, self.replacement, self._num_samples = data_source, replacement, num_samples
        if not _positive_int(self.num_samples):
            raise ValueError(f"RandomSampler: num_samples must be an int >= 1, got {self.num_samples!r}"
                             + (" (the length of an empty data_source)" if num_samples is None else ""))
        super().__init__(generator)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _sample(self, rng: np.random.Generator) -> np.ndarray:
        count, wanted = len(self.data_source), int(self.num_samples)
        if count == 0:
            raise ValueError(f"RandomSampler: cannot draw {wanted} samples from an empty data_source")
        if self.replacement:
            return rng.integers(count, size=wanted)
        full, rest = divmod(wanted, count)  # whole permutations, then the start of one more
        parts = [rng.permutation(count) for _ in range(full)] + ([rng.permutation(count)[:rest]] if rest else [])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_DrawingSampler):
    """The given `indices`, each once, in a random order."""

    def __init__(self, indices: Sequence[int], generator: np.random.Generator | int | None = None) -> None:
        int_array(indices, "SubsetRandomSampler")
        self.indices = indices
        super().__init__(generator)

    def _sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.indices, dtype=np.intp)[rng.permutation(len(self.indices))]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_DrawingSampler):
    """`num_samples` indices of ``range(len(weights))``, index i drawn with probability
    ``weights[i] / sum(weights)``: independently (`replacement`, the default), or without
    replacement, each draw among the indices not drawn yet, in proportion to their weights (as
    ``torch.multinomial``), which needs at least `num_samples` positive weights."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: np.random.Generator | int | None = None) -> None:
        if not _positive_int(num_samples):
            raise ValueError(f"WeightedRandomSampler: num_samples must be an int >= 1, got {num_samples!r}")
        if not isinstance(replacement, bool):  # a ValueError, as PyTorch's
            raise ValueError(f"WeightedRandomSampler: replacement must be a bool, got {replacement!r}")
        try:
            array = np.asarray(weights.data if isinstance(weights, Tensor) else weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"WeightedRandomSampler: weights must be a sequence of numbers, got "
                            f"{short(weights)}") from None
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"WeightedRandomSampler: weights must be a non-empty 1-d sequence, got shape "
                             f"{array.shape}")
        bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
        if bad.size:
            raise ValueError(f"WeightedRandomSampler: weights must be finite and >= 0, got weights[{bad[0]}] = "
                             f"{float(array[bad[0]])}")
        positive = int(np.count_nonzero(array))
        if positive == 0:
            raise ValueError("WeightedRandomSampler: weights must not all be 0")
        if not replacement and num_samples > positive:
            raise ValueError(f"WeightedRandomSampler: num_samples={num_samples} without replacement needs as many "
                             f"positive weights, got {positive}")
        self.weights, self.num_samples, self.replacement = array, int(num_samples), replacement
        super().__init__(generator)

    def _sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                          p=self.weights / self.weights.sum())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """The indices of `sampler` (any iterable of indices) in lists of `batch_size`; the last one
    shorter, or dropped with `drop_last`."""

    def __init__(self, sampler: Iterable[Any], batch_size: int, drop_last: bool) -> None:
        if not hasattr(sampler, "__iter__"):
            raise TypeError(f"BatchSampler: sampler must be an iterable of indices, got {type(sampler).__name__}")
        if not _positive_int(batch_size):
            raise ValueError(f"BatchSampler: batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(drop_last, bool):  # a ValueError, as PyTorch's
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self) -> Iterator[list[Any]]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)  # type: ignore[arg-type]
        return full if self.drop_last or not rest else full + 1
