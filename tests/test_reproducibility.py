"""Reproducibility with the library alone (tests/test_training.py does the same through
examples/train_mnist.py on the real MNIST, when the files are there): seeded runs are bitwise
identical, another seed differs, and a run saved and resumed equals one that never stopped."""
import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import io, optim
from tinygrad_cnn.data import DataLoader
from tinygrad_cnn.models import nielsen_cnn

STEPS_PER_EPOCH = 4  # 32 images in batches of 8


def setup(seed, kind):
    rng = np.random.default_rng(1234)  # the data is fixed; the seed drives init, dropout and order
    images, labels = rng.random((32, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 32)
    model = nielsen_cnn("relu" if kind == "sgd" else "sigmoid", dropout=0.3, seed=seed)
    opt = (optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
           if kind == "sgd" else optim.Adam(model.parameters(), lr=3e-3))
    return model, opt, DataLoader(images, labels, batch_size=8, shuffle=True, seed=seed)


def train(model, opt, loader, epochs):
    for _ in range(epochs):
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.state_dict()


def identical(a, b):
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_seeded_runs_are_bitwise_identical_and_another_seed_differs(kind):
    first = train(*setup(7, kind), epochs=2)
    second = train(*setup(7, kind), epochs=2)
    other = train(*setup(8, kind), epochs=2)
    assert identical(first, second)
    assert all(not np.array_equal(first[k], other[k]) for k in first if k.endswith("weight"))


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_save_load_and_continue_equals_an_uninterrupted_run(tmp_path, kind):
    straight = train(*setup(3, kind), epochs=2)

    model, opt, loader = setup(3, kind)
    train(model, opt, loader, epochs=1)
    io.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "loader": loader.state_dict()},
            tmp_path / "half.npz")
    del model, opt, loader

    model, opt, loader = setup(99, kind)  # another init, order and dropout seed: the checkpoint must win
    state = io.load(tmp_path / "half.npz")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    loader.load_state_dict(state["loader"])
    resumed = train(model, opt, loader, epochs=1)
    assert identical(resumed, straight)
    assert opt.step_count == 2 * STEPS_PER_EPOCH
