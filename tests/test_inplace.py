"""In-place changes of arrays that a backward still needs (tinygrad_cnn.function.Context).

While a node is alive, the arrays it saved are read-only, so a raw numpy write raises at the
line that writes; the library's own in-place updates (optimizer steps, load_state_dict) and a
replaced ``.data`` are allowed, and a backward through the stale node raises naming the op.
"""
import gc
import threading

import numpy as np
import pytest

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad, nn, optim, saved

READ_ONLY = r"read-only"
MODIFIED = r"modified in place after the forward: input {i} of {op} .*version 0 .* now at version 1"


def leaf(*shape, value=1.0):
    return Tensor(np.full(shape, value), requires_grad=True, dtype=np.float64)


@pytest.fixture(autouse=True)
def no_holds_left():
    """Every test must leave no array held: a leak here would leave users' arrays read-only."""
    yield
    gc.collect()
    assert not saved.holds, [h.array.shape for h in saved.holds.values()]


@pytest.mark.parametrize("write", [
    lambda t: t.data.__setitem__(Ellipsis, 0),
    lambda t: t.numpy().__setitem__(0, 5.0),
    lambda t: np.add(t.data, 1, out=t.data),
    lambda t: t.data.__iadd__(1),
    lambda t: np.asarray(t).fill(3.0),
], ids=["data[...]=0", "numpy()[0]=", "ufunc out=", "data+=1", "asarray.fill"])
def test_raw_write_into_a_saved_input_raises_until_backward(write):
    x, w = leaf(3), leaf(3, value=2.0)
    loss = (x * w).sum()  # Mul saved x and w
    before = x.data.copy()
    with pytest.raises(ValueError, match=READ_ONLY):
        write(x)
    np.testing.assert_array_equal(x.data, before)  # nothing was written
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 2.0])  # the gradient saw the forward's x
    write(x)  # released by the backward: the user's array is writeable again
    assert x.data.flags.writeable


def test_saved_output_is_protected_too():
    z = leaf(3)
    a = z.sigmoid()  # Sigmoid saves its output a
    with pytest.raises(ValueError, match=READ_ONLY):
        a.data[0] = 0.5
    a.sum().backward()
    np.testing.assert_allclose(z.grad.data, np.full(3, 0.25 * 0 + 1 / (1 + np.e) * (1 - 1 / (1 + np.e))))
    assert a.data.flags.writeable


def test_write_through_the_owner_of_a_saved_view_raises():
    x = leaf(2, 3)
    h = x.reshape(6)  # a view of x's array
    loss = (h * h).sum()
    assert np.shares_memory(h.data, x.data)
    with pytest.raises(ValueError, match=READ_ONLY):
        x.data[0, 0] = 7.0
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 2.0))
    x.data[0, 0] = 7.0
    assert h.data.flags.writeable  # the view got its flag back with its owner


@pytest.mark.parametrize("view_first", [False, True], ids=["view made while held", "view made before"])
def test_a_view_whose_owner_another_node_holds_gets_its_flag_back_later(view_first):
    x = leaf(4)
    if view_first:
        h = x.reshape(2, 2)
        second = (h * 3.0).sum() * h.sum()  # Mul holds the view h (and x's array)
        first = (x * x).sum()  # holds x's array again
    else:
        first = (x * x).sum()
        h = x.reshape(2, 2)  # born read-only: numpy copies the flag of its held base
        second = (h * 3.0).sum() * h.sum()
    second.backward()  # h's hold goes, x's stays: h cannot be writeable while its owner is not
    assert not h.data.flags.writeable and not x.data.flags.writeable
    first.backward()
    assert x.data.flags.writeable and h.data.flags.writeable


def test_array_read_only_to_begin_with_stays_read_only():
    x = leaf(3)
    b = x.broadcast_to((2, 3))  # numpy makes broadcast views read-only
    assert not b.data.flags.writeable
    (b * b).sum().backward()
    assert not b.data.flags.writeable and x.data.flags.writeable


def test_optimizer_step_on_a_retained_graph_is_allowed_and_the_next_backward_raises():
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(Tensor(np.ones((4, 3), np.float32))).sum()
    loss.backward(retain_graph=True)
    before = model.weight.data.copy()
    opt.step()  # the graph still holds the weight: the step lifts the flag and counts a version
    assert not np.array_equal(model.weight.data, before)
    assert not model.weight.data.flags.writeable  # read-only again: the graph is still alive
    with pytest.raises(RuntimeError, match=MODIFIED.format(i=1, op="Linear")):
        loss.backward()
    del loss
    assert model.weight.data.flags.writeable


def test_optimizer_after_create_graph_and_an_unbackwarded_forward():
    w = leaf(3)
    opt = optim.Adam([w], lr=0.1)
    (g,) = grad((w * w * w).sum(), w, create_graph=True)  # the graph is retained
    kept = (w * 3.0).sum()  # a forward nobody differentiates yet (Mul saves w)
    w.grad = g.detach()
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED.format(i=0, op="Mul")):
        kept.backward()
    with pytest.raises(RuntimeError, match=r"of Mul .*version"):
        g.sum().backward()


def test_load_state_dict_while_a_graph_holds_the_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2, rng=1))
    loss = model(Tensor(np.ones((1, 1, 3, 6), np.float32))).sum()
    model.load_state_dict(nn.Sequential(nn.Conv2d(1, 2, 3, rng=5), nn.ReLU(), nn.Flatten(),
                                        nn.Linear(8, 2, rng=6)).state_dict())
    with pytest.raises(RuntimeError, match=MODIFIED.format(i=1, op="Linear")):
        loss.backward()


def test_replacing_the_data_of_a_saved_tensor_is_detected():
    x = leaf(3)
    y = (x.sigmoid() * x).sum()
    x.data = np.zeros(3)
    with pytest.raises(RuntimeError, match=r"input 1 of Mul \(shape \(3,\)\) was given new data"):
        y.backward()


def test_graph_dropped_without_backward_frees_its_arrays_by_refcount():
    x = leaf(3)
    gc.disable()
    try:
        loss = (x.exp() * x).sum()
        assert not x.data.flags.writeable
        del loss
        assert x.data.flags.writeable
    finally:
        gc.enable()


def test_two_graphs_on_one_parameter():
    w = leaf(3)
    first, second = (w * 2.0).sum() * w.sum(), (w * w).sum()
    first.backward()
    assert not w.data.flags.writeable  # the second graph still needs it
    second.backward()
    assert w.data.flags.writeable


def test_held_grad_is_not_accumulated_into_in_place():
    w = leaf(3)
    (w * w).sum().backward()
    first_grad = w.grad
    extra = (first_grad * w).sum()  # a graph that saved w.grad's array
    (w * 3.0).sum().backward()  # accumulates: w.grad becomes a new array, the saved one is intact
    np.testing.assert_array_equal(first_grad.data, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(w.grad.data, [5.0, 5.0, 5.0])
    extra.backward()


def test_threads_sharing_a_model_leave_no_array_held():
    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(40):
                x = Tensor(rng.standard_normal((5, 4)).astype(np.float32))
                F.cross_entropy(model(x), rng.integers(0, 3, 5)).backward()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(p.data.flags.writeable for p in model.parameters())


def test_in_place_operators_where_no_graph_sees_them_as_pytorchs():
    torch = pytest.importorskip("torch")

    def manual_sgd(lib):  # the loop of PyTorch's tutorials: update the leaf under no_grad
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        for _ in range(3):
            (w * w * w).sum().backward()
            with lib.no_grad():
                w -= 0.1 * w.grad
                w *= 0.9
            w.grad = None
        return w

    ours, theirs = manual_sgd(tinygrad_cnn), manual_sgd(torch)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6)
    assert ours.requires_grad and ours.is_leaf
    a = tinygrad_cnn.tensor([1.0, 2.0])
    alias = a
    a += 1
    a /= 2
    assert alias is a and alias.data.tolist() == [1.0, 1.5]
    array = np.zeros(3)
    shared = tinygrad_cnn.from_numpy(array)
    shared += 5
    assert array.tolist() == [5.0, 5.0, 5.0]  # from_numpy's memory, updated as PyTorch's


def test_in_place_operators_refuse_what_pytorch_refuses_and_version_the_saved_arrays():
    leaf = tinygrad_cnn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad was used in an in-place operation \(\+=\)"):
        leaf += 1
    integers = tinygrad_cnn.tensor([1, 2])
    with pytest.raises(TypeError, match=r"\+= would change a tensor of int64 .* into float32"):
        integers += 1.5
    y = leaf * 2
    y += 1  # in a recorded graph: rebound to the result, whose gradient still flows
    y.sum().backward()
    assert y.data.tolist() == [3.0, 5.0] and leaf.grad.data.tolist() == [2.0, 2.0]
    x, w = tinygrad_cnn.tensor([1.0, 2.0], requires_grad=True), tinygrad_cnn.tensor([3.0, 4.0])
    loss = (x * w).sum()
    w += 1  # w was saved for the backward: the backward now refuses, as PyTorch's
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_item_assignment_and_in_place_on_an_item_as_pytorchs():
    torch = pytest.importorskip("torch")

    def edited(lib):
        x = lib.zeros(2, 3, 4)
        x[0] += 1
        x[1, :, [1, 3]] = lib.tensor(np.arange(6.0).reshape(3, 2), dtype=lib.float32)
        x[x > 4] = -1
        x[0, 0] *= 3
        narrowed = lib.zeros(3)
        narrowed += lib.tensor(np.full(3, 0.1))  # float64 into float32: rounded, as PyTorch's
        return x, narrowed

    (x, narrowed), (tx, tnarrowed) = edited(tinygrad_cnn), edited(torch)
    np.testing.assert_array_equal(x.data, tx.numpy())
    assert narrowed.dtype == np.float32 and narrowed.data.tolist() == tnarrowed.tolist()
    held = Tensor(np.ones(3), requires_grad=True)
    loss = (held * held).sum()
    with tinygrad_cnn.no_grad():
        part = held[0:2]
        part += 1  # a view of an array the graph saved: written through, and the backward refuses
    assert held.data.tolist() == [2.0, 2.0, 1.0]
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
    modules = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    with pytest.raises(TypeError):
        modules.insert(1, "not a module")
    assert [type(m).__name__ for m in modules] == ["ReLU", "Tanh"]  # nothing lost
