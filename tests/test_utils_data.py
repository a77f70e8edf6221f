"""tinygrad_cnn.utils.data: Dataset, TensorDataset and the DataLoader over datasets."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn.utils.data import DataLoader, Dataset, TensorDataset

IMAGES = np.arange(60, dtype=np.float32).reshape(10, 1, 2, 3)
LABELS = np.arange(10) % 3


def seen(loader):
    return [int(i) for _, y in loader for i in y.data]


def test_tensor_dataset_samples_and_batches():
    ds = TensorDataset(IMAGES, tc.tensor(LABELS))
    x, y = ds[4]
    np.testing.assert_array_equal(x.data, IMAGES[4])
    assert y.item() == 1 and y.dtype == np.int64 and len(ds) == 10
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 1, 2, 3), (4, 1, 2, 3), (2, 1, 2, 3)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    assert len(DataLoader(ds, 4, drop_last=True)) == 2 and len(list(DataLoader(ds, 4, drop_last=True))) == 2


def test_shuffle_covers_every_sample_once_and_repeats_with_a_seed_or_the_global_generator():
    labels = np.arange(10)
    ds = TensorDataset(IMAGES, labels)
    order = seen(DataLoader(ds, 3, shuffle=True, seed=5))
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert seen(DataLoader(ds, 3, shuffle=True, seed=5)) == order
    loader = DataLoader(ds, 3, shuffle=True, seed=5)
    first, second = seen(loader), seen(loader)
    assert first == order and second != first  # a new order every epoch
    resumed = DataLoader(ds, 3, shuffle=True, seed=0)
    resumed.load_state_dict(loader.state_dict())
    assert seen(resumed) == seen(loader)
    tc.manual_seed(2)
    a = seen(DataLoader(ds, 4, shuffle=True))
    tc.manual_seed(2)
    assert seen(DataLoader(ds, 4, shuffle=True)) == a
    assert seen(DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(1))) == \
        seen(DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(1)))


def test_a_dataset_of_your_own_and_collate_functions():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i * i}

    (batch,) = list(DataLoader(Squares(), batch_size=5))
    np.testing.assert_array_equal(batch["x"].data[:, 0], np.arange(5))
    assert batch["y"].tolist() == [0, 1, 4, 9, 16] and batch["y"].dtype == np.int64
    sizes = [len(b) for b in DataLoader(Squares(), 2, collate_fn=lambda samples: samples)]
    assert sizes == [2, 2, 1]


def test_batches_match_pytorchs_loader():
    torch = pytest.importorskip("torch")
    ours = list(DataLoader(TensorDataset(IMAGES, LABELS), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(IMAGES),
                                                                             torch.tensor(LABELS)), batch_size=4))
    for (x, y), (tx, ty) in zip(ours, theirs):
        np.testing.assert_array_equal(x.data, tx.numpy())
        np.testing.assert_array_equal(y.data, ty.numpy())
        assert x.dtype == tx.numpy().dtype and y.dtype == ty.numpy().dtype


def test_pytorchs_worker_and_pinning_arguments_are_accepted():
    images, labels = np.arange(20.0).reshape(10, 2), np.arange(10)
    plain = [b[1].tolist() for b in DataLoader(TensorDataset(images, labels), batch_size=4)]
    assert [b[1].tolist() for b in DataLoader(TensorDataset(images, labels), batch_size=4, num_workers=4,
                                              pin_memory=True)] == plain


def test_a_datasets_getitems_returns_samples_that_collate_fn_stacks_as_pytorchs():
    torch = pytest.importorskip("torch")

    def batches(lib):
        class Pairs(lib.utils.data.Dataset):
            def __len__(self):
                return 5

            def __getitem__(self, i):
                return np.ones(2) * i, i

            def __getitems__(self, indices):  # PyTorch's contract: the list of samples
                return [self[i] for i in indices]

        return [tuple(np.asarray(part) for part in batch) for batch in lib.utils.data.DataLoader(Pairs(), batch_size=3)]

    ours, theirs = batches(tc), batches(torch)
    assert len(ours) == len(theirs) == 2
    for mine, reference in zip(ours, theirs):
        for a, b in zip(mine, reference):
            np.testing.assert_array_equal(a, b)
