"""tinygrad_cnn.utils.data beyond the loader's basics: Subset, random_split, ConcatDataset, the
samplers, and the DataLoader's sampler= and batch_sampler=. Exact (against torch where it is
installed) where the result is deterministic; statistical, with a fixed seed, where it is drawn."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler, SequentialSampler,
                                     Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, random_split)

IMAGES = np.arange(40, dtype=np.float32).reshape(10, 2, 2)
LABELS = np.arange(10) * 10


def labels_of(loader):
    return [y.tolist() for _, y in loader]


def torch_data():
    return pytest.importorskip("torch").utils.data


class Spy(Dataset):
    """Samples i -> (i,), recording each __getitems__ call."""

    def __init__(self, n):
        self.n, self.calls = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (i,)

    def __getitems__(self, indices):
        self.calls.append(list(indices))
        return [(i,) for i in indices]


# ---- Subset -----------------------------------------------------------------------------------
def test_subset_indexes_the_dataset_at_its_indices_as_pytorchs():
    td = torch_data()
    indices = [4, 0, -1, 7]
    ours, theirs = Subset(TensorDataset(IMAGES, LABELS), indices), td.Subset(td.TensorDataset(
        td.default_convert(IMAGES), td.default_convert(LABELS)), indices)
    assert len(ours) == len(theirs) == 4
    for i in range(-4, 4):
        for a, b in zip(ours[i], theirs[i]):
            np.testing.assert_array_equal(a.data, b.numpy())
    for a, b in zip(ours[[3, 2]], theirs[[3, 2]]):  # a list index: one indexing of the dataset
        np.testing.assert_array_equal(a.data, b.numpy())


@pytest.mark.parametrize("indices", [[8, 1, 1, 5, 0], np.array([8, 1, 1, 5, 0]), range(9, -1, -2)])
def test_a_subset_of_a_tensor_dataset_loads_each_batch_in_one_indexing(monkeypatch, indices):
    def no_sample(self, index):
        raise AssertionError("a sample fetched one by one")

    monkeypatch.setattr(TensorDataset, "__getitem__", no_sample)
    subset = Subset(Subset(TensorDataset(IMAGES, LABELS), indices), [0, 2, 3, 4, 1])
    picked = [list(indices)[i] for i in [0, 2, 3, 4, 1]]
    batches = list(DataLoader(subset, batch_size=2))
    assert [y.tolist() for _, y in batches] == [[10 * i for i in picked[:2]], [10 * i for i in picked[2:4]],
                                                [10 * picked[4]]]
    np.testing.assert_array_equal(batches[0][0].data, IMAGES[picked[:2]])
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


def test_a_subset_passes_batches_through_the_datasets_getitems():
    spy = Spy(10)
    batches = list(DataLoader(Subset(spy, [9, 3, 5, 1, 0]), batch_size=2))
    assert spy.calls == [[9, 3], [5, 1], [0]]
    assert [b[0].tolist() for b in batches] == [[9, 3], [5, 1], [0]]


def test_a_subset_subclass_must_redefine_getitems_with_getitem_as_pytorchs():
    class Doubled(Subset):
        def __getitem__(self, i):
            return 2 * super().__getitem__(i)

    with pytest.raises(NotImplementedError, match="overrides __getitem__ but not __getitems__"):
        Doubled(range(4), [0])


# ---- random_split -----------------------------------------------------------------------------
SPLITS = [(10, [3, 7]), (10, [0, 10]), (10, [0.3, 0.7]), (10, [0.5, 0.5]), (7, [0.5, 0.5]), (11, [0.25] * 4),
          (10, [0.1] * 10), (3, [0.2, 0.2, 0.2, 0.2, 0.2]), (100, [0.33, 0.33, 0.34]), (1, [1]), (1, [1, 0]),
          (5, [1.0]), (0, [0.5, 0.5]), (9, [0.9, 0.1]), (101, [0.6, 0.2, 0.2]), (13, [1 / 3, 1 / 3, 1 / 3])]


@pytest.mark.parametrize("n, lengths", SPLITS)
def test_random_split_lengths_as_pytorchs_and_every_index_once(n, lengths):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = torch.utils.data.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = random_split(range(n), lengths, generator=0)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert len(ours_warned) == len(theirs_warned)  # an empty split warns, as PyTorch's
    every = [s[i] for s in ours for i in range(len(s))]
    assert sorted(every) == list(range(n))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), weights=st.lists(st.integers(0, 20), min_size=1, max_size=6).filter(any))
def test_random_split_fractions_as_pytorchs_for_any_length(n, weights):
    torch = pytest.importorskip("torch")
    fractions = [w / sum(weights) for w in weights]

    def lengths(split):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return [len(s) for s in split(range(n), fractions)]
            except ValueError:  # fractions that round above 1 are read as ints, which they are not
                return "ValueError"

    assert lengths(random_split) == lengths(torch.utils.data.random_split)


@pytest.mark.parametrize("lengths", [[0.33, 0.56, 0.11], [1 / 9] * 9])
def test_random_split_refuses_fractions_whose_sum_rounds_above_1_as_pytorchs(lengths):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.utils.data.random_split(range(10), lengths)
    with pytest.raises(ValueError, match=r"whose sum is 1.0000000000000002"):
        random_split(range(10), lengths)


def test_random_split_is_reproducible_from_a_seed_a_generator_or_manual_seed():
    def split(**kwargs):
        return [s.indices for s in random_split(range(50), [0.2, 0.8], **kwargs)]

    assert split(generator=3) == split(generator=3) != split(generator=4)
    assert split(generator=np.random.default_rng(1)) == split(generator=np.random.default_rng(1))
    tc.manual_seed(5)
    first = split()
    tc.manual_seed(5)
    assert split() == first and first[0] + first[1] != list(range(50))


@pytest.mark.parametrize("lengths, error, pattern", [
    ([3, 4], ValueError, r"lengths \[3, 4\] sum to 7, not to the dataset's length 10"),
    ([-1, 11], ValueError, r"ints >= 0 or fractions that sum to 1 \(not above\), got \[-1, 11\], whose sum is 10"),
    ([2.5, 7.5], ValueError, r"ints >= 0 or fractions .*, got \[2.5, 7.5\], whose sum is 10.0"),
    ([1.5, -0.5], ValueError, r"the fraction lengths\[0\] = 1.5 is not between 0 and 1"),
    ([], TypeError, r"non-empty sequence of ints or fractions, got \[\]"),
    (["3", 7], TypeError, r"ints or fractions, got \['3', 7\]"),
    (10, TypeError, r"lengths must be a sequence of ints or fractions, got 10"),
])
def test_random_split_refuses_lengths_that_do_not_fit(lengths, error, pattern):
    with pytest.raises(error, match=pattern):
        random_split(range(10), lengths)


def test_random_split_refuses_a_bad_generator_and_a_non_dataset():
    with pytest.raises(TypeError, match=r"random_split: generator must be None, an int seed >= 0 .* got 'a'"):
        random_split(range(4), [2, 2], generator="a")
    with pytest.raises(TypeError, match=r"random_split takes a dataset .* got int"):
        random_split(4, [2, 2])


# ---- ConcatDataset ----------------------------------------------------------------------------
PARTS = [range(3), range(0), range(10, 12), range(0), range(20, 24)]


def test_concat_dataset_indexes_as_pytorchs_negative_indices_included():
    td = torch_data()
    ours, theirs = ConcatDataset(PARTS), td.ConcatDataset(PARTS)
    assert len(ours) == len(theirs) == 9 and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-9, 9)] == [theirs[i] for i in range(-9, 9)]
    for index, error in ((-10, ValueError), (9, IndexError)):  # the errors PyTorch's raises
        with pytest.raises(error):
            theirs[index]
        with pytest.raises(error, match=f"index {index} is out of range for 9 samples"):
            ours[index]


def test_adding_datasets_concatenates_them_and_the_loader_reads_across():
    a, b = TensorDataset(IMAGES[:3], LABELS[:3]), TensorDataset(IMAGES[7:], LABELS[7:])
    joined = a + b
    assert isinstance(joined, ConcatDataset) and len(joined) == 6 and joined[-1][1].item() == 90
    assert labels_of(DataLoader(joined, batch_size=4)) == [[0, 10, 20, 70], [80, 90]]
    assert [s for s in ConcatDataset([range(2), range(5, 6)])] == [0, 1, 5]  # IndexError ends iteration


@pytest.mark.parametrize("datasets, index, error, pattern", [
    ([], None, ValueError, r"needs at least one dataset"),
    ([range(2), 5], None, TypeError, r"ConcatDataset: datasets\[1\] takes a dataset .* got int"),
    (TensorDataset(IMAGES), None, TypeError, r"takes a list of datasets, got TensorDataset"),
    ([range(2)], 0.5, TypeError, r"an index must be an int, got 0.5"),
])
def test_concat_dataset_refuses_what_is_not_a_list_of_datasets(datasets, index, error, pattern):
    with pytest.raises(error, match=pattern):
        ConcatDataset(datasets)[index]


# ---- samplers ---------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_batch_sampler_batches_as_pytorchs(n, batch_size, drop_last):
    td = torch_data()
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = td.BatchSampler(td.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs) == len(list(ours))
    assert list(SequentialSampler(range(n))) == list(td.SequentialSampler(range(n)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), extra=st.integers(0, 70), seed=st.integers(0, 2**32))
def test_random_sampler_without_replacement_is_permutations_one_after_another(n, extra, seed):
    once = list(RandomSampler(range(n), generator=seed))
    assert sorted(once) == list(range(n))
    drawn = list(RandomSampler(range(n), num_samples=n + extra, generator=seed))
    assert len(drawn) == len(RandomSampler(range(n), num_samples=n + extra)) == n + extra
    for start in range(0, n + extra, n):  # each block of n: distinct indices of range(n)
        block = drawn[start:start + n]
        assert len(set(block)) == len(block) and set(block) <= set(range(n))


def test_random_sampler_with_replacement_draws_num_samples_uniformly():
    drawn = np.array(list(RandomSampler(range(5), replacement=True, num_samples=5000, generator=0)))
    assert drawn.shape == (5000,) and drawn.min() == 0 and drawn.max() == 4
    np.testing.assert_allclose(np.bincount(drawn) / 5000, 0.2, atol=0.03)
    sampler = RandomSampler(range(5), replacement=True, generator=1)
    assert len(sampler) == 5 and any(len(set(sampler)) < 5 for _ in range(20))  # repeats within a pass


def test_a_seeded_sampler_draws_a_new_order_each_pass_and_the_same_passes_when_built_again():
    a, b = RandomSampler(range(20), generator=4), RandomSampler(range(20), generator=4)
    passes = [list(a) for _ in range(3)]
    assert passes == [list(b) for _ in range(3)] and passes[0] != passes[1] != passes[2]
    b.set_epoch(1)
    assert list(b) == passes[1]
    streamed = RandomSampler(range(20), generator=np.random.default_rng(0))  # a numpy Generator's stream goes on
    rng = np.random.default_rng(0)
    assert [list(streamed), list(streamed)] == [rng.permutation(20).tolist(), rng.permutation(20).tolist()]
    tc.manual_seed(3)
    first = list(RandomSampler(range(20)))
    tc.manual_seed(3)
    assert list(RandomSampler(range(20))) == first


def test_subset_random_sampler_is_a_permutation_of_its_indices():
    sampler = SubsetRandomSampler([9, 2, 2, 7, 4], generator=0)
    orders = [list(sampler) for _ in range(20)]
    assert all(sorted(o) == [2, 2, 4, 7, 9] for o in orders) and len(sampler) == 5
    assert len({tuple(o) for o in orders}) > 1


def test_weighted_random_sampler_draws_in_proportion_to_the_weights():
    weights = [1.0, 0.0, 3.0, 6.0]
    drawn = np.array(list(WeightedRandomSampler(weights, 20000, generator=0)))
    assert len(drawn) == 20000 and len(WeightedRandomSampler(weights, 7)) == 7
    np.testing.assert_allclose(np.bincount(drawn, minlength=4) / 20000, [0.1, 0.0, 0.3, 0.6], atol=0.015)
    # without replacement: distinct, never a zero weight; the first draw in proportion to the weights
    passes = [list(WeightedRandomSampler(weights, 3, replacement=False, generator=seed)) for seed in range(3000)]
    assert all(sorted(p) == [0, 2, 3] for p in passes)
    np.testing.assert_allclose(np.bincount([p[0] for p in passes], minlength=4) / 3000, [0.1, 0, 0.3, 0.6],
                               atol=0.03)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: WeightedRandomSampler([1.0, -0.5], 3), ValueError, r"finite and >= 0, got weights\[1\] = -0.5"),
    (lambda: WeightedRandomSampler([1.0, np.nan], 3), ValueError, r"finite and >= 0, got weights\[1\] = nan"),
    (lambda: WeightedRandomSampler([0, 0], 3), ValueError, r"weights must not all be 0"),
    (lambda: WeightedRandomSampler([[1.0]], 3), ValueError, r"non-empty 1-d sequence, got shape \(1, 1\)"),
    (lambda: WeightedRandomSampler(["a"], 3), TypeError, r"weights must be a sequence of numbers, got \['a'\]"),
    (lambda: WeightedRandomSampler([1, 1], 0), ValueError, r"num_samples must be an int >= 1, got 0"),
    (lambda: WeightedRandomSampler([1, 0, 1], 3, replacement=False), ValueError,
     r"num_samples=3 without replacement needs as many positive weights, got 2"),
    (lambda: WeightedRandomSampler([1], 1, replacement=1), ValueError, r"replacement must be a bool, got 1"),
    (lambda: RandomSampler(range(3), num_samples=2.0), ValueError, r"num_samples must be an int >= 1, got 2.0"),
    (lambda: RandomSampler(range(0)), ValueError, r"got 0 \(the length of an empty data_source\)"),
    (lambda: RandomSampler(range(3), replacement="no"), TypeError, r"replacement must be a bool, got 'no'"),
    (lambda: RandomSampler(range(3), generator=-1), TypeError, r"RandomSampler: generator must be .* got -1"),
    (lambda: RandomSampler(5), TypeError, r"data_source must have a length, got int"),
    (lambda: RandomSampler(range(3)).set_epoch(-1), ValueError, r"set_epoch: epoch must be an int >= 0, got -1"),
    (lambda: SubsetRandomSampler([0.5, 1]), TypeError, r"indices must be a sequence of ints, got \[0.5, 1\]"),
    (lambda: BatchSampler(range(3), 0, False), ValueError, r"batch_size must be an int >= 1, got 0"),
    (lambda: BatchSampler(range(3), True, False), ValueError, r"batch_size must be an int >= 1, got True"),
    (lambda: BatchSampler(range(3), 2, None), ValueError, r"drop_last must be a bool, got None"),
    (lambda: BatchSampler(3, 2, False), TypeError, r"sampler must be an iterable of indices, got int"),
    (lambda: Subset(range(5), [1, 5]), ValueError, r"index 5 of indices is out of range for a dataset of 5"),
    (lambda: Subset(range(5), [-6]), ValueError, r"index -6 of indices is out of range"),
    (lambda: Subset(range(5), [1.0]), TypeError, r"indices must be a sequence of ints, got \[1.0\]"),
    (lambda: Subset(range(5), list(range(100)) + [0.5]), TypeError, r"got \[0, 1, 2.* \.\.\. .*0\.5\]$"),
])
def test_bad_arguments_are_named_with_their_value(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_an_empty_data_source_with_num_samples_is_refused_when_drawn():
    sampler = RandomSampler([], num_samples=3)
    with pytest.raises(ValueError, match="cannot draw 3 samples from an empty data_source"):
        list(sampler)


# ---- DataLoader with sampler= and batch_sampler= ---------------------------------------------
def test_a_loader_with_a_sampler_batches_its_indices_in_order():
    dataset = TensorDataset(IMAGES, LABELS)
    order = [3, 1, 4, 1, 5, 9, 2, 6]
    loader = DataLoader(dataset, batch_size=3, sampler=order)
    assert labels_of(loader) == [[30, 10, 40], [10, 50, 90], [20, 60]] and len(loader) == 3
    dropping = DataLoader(dataset, batch_size=3, sampler=order, drop_last=True)
    assert labels_of(dropping) == [[30, 10, 40], [10, 50, 90]] and len(dropping) == 2
    assert loader.sampler is order and [len(b) for b in loader.batch_sampler] == [3, 3, 2]
    spy = Spy(10)
    keys = DataLoader(spy, batch_size=2, sampler=iter(np.array([7, 2])))  # any iterable, numpy ints too
    assert [b[0].tolist() for b in keys] == [[7, 2]] and [type(i) for i in spy.calls[0]] == [int, int]


def test_a_loader_with_a_batch_sampler_yields_exactly_its_batches():
    td = torch_data()
    batches = [[0, 1], [9], [4, 4, 4], [8, 2]]
    loader = DataLoader(TensorDataset(IMAGES, LABELS), batch_sampler=batches)
    assert labels_of(loader) == [[0, 10], [90], [40, 40, 40], [80, 20]] and len(loader) == 4
    assert loader.batch_size is None and loader.batch_sampler is batches
    for drop_last in (False, True):
        ours = DataLoader(TensorDataset(IMAGES, LABELS), batch_sampler=BatchSampler(SequentialSampler(range(10)), 4,
                                                                                     drop_last))
        theirs = td.DataLoader(td.TensorDataset(td.default_convert(IMAGES), td.default_convert(LABELS)),
                               batch_sampler=td.BatchSampler(td.SequentialSampler(range(10)), 4, drop_last))
        assert labels_of(ours) == [y.tolist() for _, y in theirs] and len(ours) == len(theirs)


def test_the_default_samplers_are_pytorchs_and_give_the_loaders_order():
    dataset = TensorDataset(IMAGES, LABELS)
    plain = DataLoader(dataset, batch_size=4)
    assert type(plain.sampler) is SequentialSampler and type(plain.batch_sampler) is BatchSampler
    assert list(plain.batch_sampler) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = DataLoader(dataset, batch_size=4, shuffle=True, seed=8)
    next(iter(shuffled))
    assert type(shuffled.sampler) is RandomSampler
    expected = [[10 * i for i in batch] for batch in shuffled.batch_sampler]  # the loader's next epoch
    assert labels_of(shuffled) == expected
    # the order of epoch e is default_rng([seed, e]).permutation(n): a checkpoint's state resumes it
    assert sum(expected, []) == [10 * i for i in np.random.default_rng([8, 1]).permutation(10)]


@pytest.mark.parametrize("kind", ["sampler", "batch_sampler"])
def test_a_seeded_sampler_in_a_loader_resumes_with_the_loaders_state(kind):
    def loader():
        dataset = TensorDataset(IMAGES, LABELS)
        if kind == "sampler":
            return DataLoader(dataset, batch_size=3, sampler=RandomSampler(dataset, generator=7))
        return DataLoader(dataset, batch_sampler=BatchSampler(WeightedRandomSampler(np.arange(10.0), 8, generator=7),
                                                              3, drop_last=False))

    original = loader()
    epochs = [labels_of(original) for _ in range(4)]
    assert epochs[0] != epochs[1] != epochs[2]
    again = loader()
    again.load_state_dict(loader().state_dict())
    assert [labels_of(again) for _ in range(4)] == epochs
    resumed = loader()
    first = loader()
    labels_of(first), labels_of(first)
    resumed.load_state_dict(first.state_dict())
    assert [labels_of(resumed) for _ in range(2)] == epochs[2:]


def test_a_weighted_sampler_repeats_samples_through_the_one_indexing_path():
    loader = DataLoader(TensorDataset(IMAGES, LABELS), batch_size=5,
                        sampler=WeightedRandomSampler([0, 0, 1, 0, 0, 0, 0, 0, 0, 1], 10, generator=0))
    labels = sum(labels_of(loader), [])
    assert len(labels) == 10 and set(labels) <= {20, 90} and len(set(labels)) == 2


@pytest.mark.parametrize("kwargs", [
    dict(shuffle=True, sampler=[0, 1]), dict(batch_size=2, batch_sampler=[[0]]),
    dict(shuffle=True, batch_sampler=[[0]]),
    dict(sampler=[0], batch_sampler=[[0]]), dict(drop_last=True, batch_sampler=[[0]]),
    dict(shuffle=False, sampler=[0, 1]), dict(batch_size=1, drop_last=False, batch_sampler=[[0]]),
])
def test_sampler_arguments_exclude_each_other_as_pytorchs(kwargs):
    td = torch_data()
    try:
        td.DataLoader(range(4), **kwargs)
        refused = False
    except ValueError:
        refused = True
    if refused:
        with pytest.raises(ValueError, match=r"(sampler|batch_sampler) is mutually exclusive with .* got .*="):
            DataLoader(range(4), **kwargs)
    else:
        assert len(list(DataLoader(range(4), **kwargs))) >= 1


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(sampler=3), TypeError, r"DataLoader: sampler must be an iterable of indices, got int"),
    (dict(batch_sampler=3), TypeError, r"DataLoader: batch_sampler must be an iterable of indices, got int"),
    (dict(batch_size=4, drop_last=True, batch_sampler=[[0]]), ValueError, r"got batch_size=4, drop_last=True$"),
    (dict(generator="rng"), TypeError, r"DataLoader: generator must be None, an int seed >= 0 .* got 'rng'"),
    (dict(seed=-2), ValueError, r"DataLoader: seed must be >= 0, got -2"),
])
def test_loader_arguments_are_named_with_their_value(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        DataLoader(range(4), **kwargs)


def test_dataloader_takes_pytorchs_positional_order():
    torch = pytest.importorskip("torch")
    import inspect
    ours = list(inspect.signature(DataLoader).parameters)[:9]
    assert ours == list(inspect.signature(torch.utils.data.DataLoader).parameters)[:9]
    ds = TensorDataset(np.arange(10.0))
    loader = DataLoader(ds, 4, False, None, None, 0, None, False, True)  # drop_last ninth, as PyTorch's
    assert [len(b[0]) for b in loader] == [4, 4]


@pytest.mark.parametrize("kwargs", [{"batch_size": 2, "sampler": [0.5, 1.7]}, {"batch_sampler": [[0.5, 1.7]]},
                                    {"batch_size": 2, "sampler": [True, False]}])
def test_non_integer_indices_from_a_sampler_are_refused(kwargs):
    ds = TensorDataset(np.arange(10.0), np.arange(10))
    with pytest.raises(TypeError, match="dataset indices must be integers"):
        list(DataLoader(ds, **kwargs))
    with pytest.raises(TypeError, match="dataset indices must be integers"):
        list(DataLoader(Subset(ds, np.arange(5)), **kwargs))


def test_subset_batches_follow_its_indices_when_they_are_replaced():
    ds = TensorDataset(np.arange(10.0), np.arange(10))
    subset = Subset(ds, [5, -1, 2])
    assert next(iter(DataLoader(subset, 3)))[1].data.tolist() == [5, 9, 2]
    subset.indices = [1, 0]  # a new list: the array it is read through is made again
    assert next(iter(DataLoader(subset, 2)))[1].data.tolist() == [1, 0]
