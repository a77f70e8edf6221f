"""Memory and graph lifetime: a long training run stays flat, a graph is freed by reference
counting alone, a 100,000-op chain survives forward, backward and deletion, and second-order
training does not leak."""
import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, backend, grad, nn, optim, saved
from tinygrad_cnn.autograd import toposort
from tinygrad_cnn.data import DataLoader
from tinygrad_cnn.models import nielsen_cnn

# A leak of one step's graph would be megabytes (the first feature maps alone are 8·20·24·24
# floats); the measured growth over 450 steps is about 15 KiB, inside numpy's window views.
GROWTH_BOUND = 256 * 1024


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def training_loop(batch_size=8, activation="relu"):
    model = nielsen_cnn(activation, dropout=0.5, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    loader = DataLoader(rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64),
                        batch_size=batch_size, shuffle=True, seed=1)

    def batches():
        while True:
            yield from loader

    stream = batches()

    def step():
        images, labels = next(stream)
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


def test_500_training_steps_do_not_grow_memory():
    model, step = training_loop()
    for _ in range(50):  # first steps: lazily built caches, optimizer buffers, pooled windows
        step()
    tracemalloc.start()
    try:
        step()
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        losses = [step() for _ in range(449)]
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    print(f"traced memory growth over steps 51-500: {growth / 1024:.1f} KiB")
    assert growth < GROWTH_BOUND, f"{growth / 1024:.0f} KiB"
    assert np.all(np.isfinite(losses))
    assert not saved.holds  # no array left read-only by a graph nobody holds
    assert all(p.data.flags.writeable for p in model.parameters())


def test_the_network_graph_is_freed_by_refcount_alone(no_gc):
    model, _ = training_loop()
    x = Tensor(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))
    for backward in (True, False):
        logits = model(x)
        loss = F.cross_entropy(logits, np.array([1, 2, 3, 4]))
        nodes = [weakref.ref(node) for node in toposort([loss._ctx])]
        hidden = weakref.ref(logits)
        assert len(nodes) >= 14 and saved.holds  # the whole network (11 ops) and its loss (3)
        if backward:
            loss.backward()
            assert not saved.holds  # every saved array released at once, not at collection
        del logits
        if backward:
            assert hidden() is None  # backward dropped what the nodes saved
        del loss
        assert all(node() is None for node in nodes), sum(node() is not None for node in nodes)
        assert not saved.holds


def test_a_100000_op_chain_forward_backward_and_deletion(no_gc):
    x = Tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for i in range(50_000):  # 100,000 ops: a Mul that saves its inputs, and a Neg that saves none
        y = -(y * 1.00001)
    first = weakref.ref(y._ctx)
    limit = sys.getrecursionlimit()
    y.backward(retain_graph=True)  # keep the graph, so that deleting it frees 100,000 live nodes
    assert x.grad.item() == pytest.approx(1.00001 ** 50_000)
    assert sys.getrecursionlimit() == limit
    del y  # a chain of nodes freed node by node: no RecursionError, no C stack overflow
    assert first() is None
    assert not saved.holds


def test_create_graph_training_does_not_leak_across_iterations():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((6, 4)), requires_grad=True)
    x = Tensor(rng.standard_normal((16, 6)))
    opt = optim.Adam([w], lr=1e-3)

    def iteration():
        loss = F.cross_entropy((x @ w).tanh(), np.arange(16) % 4)
        (g,) = grad(loss, w, create_graph=True)  # retains the first-order graph
        total = loss + (g * g).sum()  # a gradient penalty: second order
        opt.zero_grad()
        total.backward()
        opt.step()
        return weakref.ref(total._ctx), weakref.ref(g._ctx)

    first = iteration()
    for _ in range(20):
        iteration()
    assert all(ref() is None for ref in first)  # the first iteration's graphs are gone
    tracemalloc.start()
    try:
        iteration()
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            iteration()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024, f"{growth / 1024:.0f} KiB"
    assert not saved.holds and w.data.flags.writeable


@pytest.mark.parametrize("out_channels", [8, 32])  # the forward by scatter, and by im2col
def test_a_convolution_keeps_only_its_input_for_its_backward(out_channels):
    """A 3×3 convolution's windows are nine times its input: the graph holds none of them
    between forward and backward, and the backward gathers them a block at a time."""
    x = Tensor(np.random.default_rng(0).standard_normal((128, 16, 32, 32)).astype(np.float32))  # 8 MiB
    conv = nn.Conv2d(16, out_channels, 3, padding=1)
    tracemalloc.start()
    try:
        y = conv(x)
        held = tracemalloc.get_traced_memory()[0]
        y.sum().backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert held < y.data.nbytes + x.data.nbytes // 8, (held, y.data.nbytes)
    if backend.name() == "fast":  # the reference backend computes on whole-batch window views
        assert peak < y.data.nbytes + 4 * x.data.nbytes, (peak, 9 * x.data.nbytes)  # the windows: 9 · x


def test_a_batch_norm_keeps_only_its_input_and_running_statistics_cost_no_pass_of_their_own():
    """Training-mode BatchNorm2d holds its output and nothing else between forward and backward
    (its backward recomputes x̂ from the input, which the graph holds anyway): not x̂ beside
    x̂·w and x̂·w + b, and no temporary the size of x for the running variance."""
    x = Tensor(np.random.default_rng(0).standard_normal((64, 16, 32, 32)).astype(np.float32) + 3,
               requires_grad=True)  # 4 MiB
    bn = nn.BatchNorm2d(16)
    tracemalloc.start()
    try:
        y = bn(x)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < y.data.nbytes + x.data.nbytes // 8, (held, y.data.nbytes)
    if backend.name() == "fast":  # the reference backend computes with whole-array temporaries
        assert peak < 2 * y.data.nbytes, (peak, y.data.nbytes)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * x.data.mean(axis=(0, 2, 3)), rtol=1e-4)
    y.sum().backward()
    assert x.grad.shape == x.shape and bn.weight.grad.shape == bn.bias.grad.shape == (16,)


def test_a_relu_keeps_its_output_so_its_input_is_freed():
    """conv → ReLU holds one activation between forward and backward, not two: ReLU's backward
    reads its output ([a > 0] = [z > 0]), so the convolution's output z goes when ReLU is done."""
    x = Tensor(np.random.default_rng(0).standard_normal((64, 16, 32, 32)).astype(np.float32))  # 4 MiB
    conv = nn.Conv2d(16, 16, 3, padding=1)
    tracemalloc.start()
    try:
        a = conv(x).relu()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < a.data.nbytes + x.data.nbytes // 8, (held, a.data.nbytes)
    a.sum().backward()
    assert x.grad is None  # x was not asked for
    assert conv.weight.grad.shape == (16, 16, 3, 3)
