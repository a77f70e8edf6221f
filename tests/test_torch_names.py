"""PyTorch's everyday spellings: devices (the CPU only), ``to`` overloads, ``device=`` on the
factories, ``torch.*`` function forms, the comparison methods, ``new_*`` and ``inference_mode``
(tinygrad_cnn.devices, aliases)."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, grad, nn

A = np.array([[0.3, -1.2, 2.0], [1.5, 0.7, -0.4]])


def test_device_is_the_cpu_as_pytorch_spells_it():
    torch = pytest.importorskip("torch")
    for args in [("cpu",), ("cpu:0",), ("cpu", 0)]:
        mine, theirs = tc.device(*args), torch.device(*args)
        assert (str(mine), repr(mine), mine.type, mine.index) == (str(theirs), repr(theirs), theirs.type, theirs.index)
    assert tc.device("cpu") == tc.device(tc.device("cpu")) != tc.device("cpu:0")
    assert hash(tc.device("cpu")) == hash(tc.device("cpu")) and Tensor(A).device == tc.device("cpu")
    assert tc.cuda.is_available() is torch.cuda.is_available() is False and tc.cuda.device_count() == 0
    assert tc.cuda.manual_seed_all(0) is None


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_another_device_is_refused_everywhere(name):
    with pytest.raises(ValueError, match="CPU only"):
        tc.device(name)
    with pytest.raises(ValueError, match="CPU only"):
        Tensor(A).to(name)
    with pytest.raises(ValueError, match="CPU only"):
        nn.Linear(2, 2).to(name)
    for make in (lambda: tc.zeros(2, device=name), lambda: tc.randn(2, device=name), lambda: tc.arange(3, device=name),
                 lambda: tc.tensor([1], device=name), lambda: tc.full((2,), 1.0, device=name),
                 lambda: tc.ones_like(Tensor(A), device=name), lambda: Tensor(A).new_zeros(2, device=name),
                 lambda: tc.randperm(3, device=name)):
        with pytest.raises(ValueError, match="CPU only"):
            make()
    with pytest.raises(ValueError, match="device index 0"):
        tc.device("cpu", 1)


def test_to_takes_pytorchs_overloads():
    torch = pytest.importorskip("torch")
    x, t = Tensor(A.astype(np.float32)), torch.tensor(A.astype(np.float32))
    ints = tc.tensor([1, 2])
    cases = [(("cpu",), {}, ("cpu",), {}), ((tc.float64,), {}, (torch.float64,), {}),
             (("cpu", tc.float64), {}, ("cpu", torch.float64), {}), ((), {"dtype": tc.float64}, (), {"dtype": torch.float64}),
             ((ints,), {}, (torch.tensor([1, 2]),), {}), (("cpu",), {"dtype": tc.int64}, ("cpu",), {"dtype": torch.int64})]
    for args, kwargs, targs, tkwargs in cases:
        assert str(x.to(*args, **kwargs).dtype) == str(t.to(*targs, **tkwargs).dtype).removeprefix("torch.")
    assert x.to("cpu") is x and x.cpu() is x and x.contiguous() is x
    copied = x.to("cpu", copy=True)
    assert copied is not x and copied.data is not x.data and np.array_equal(copied.data, x.data)
    w = Tensor(A, requires_grad=True)
    (g,) = grad((w.to(tc.float32) * 2).sum(), [w])  # the cast stays in the graph
    assert g.dtype == np.float64 and np.array_equal(g.data, np.full(A.shape, 2.0))
    with pytest.raises(TypeError, match="the device comes first"):
        x.to(tc.float64, "cpu")
    with pytest.raises(TypeError, match="dtype given twice"):
        x.to(tc.float64, dtype=tc.float32)


def test_module_to_and_cpu():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert net.to("cpu") is net and net.cpu() is net and net[0].weight.dtype == np.float32
    net.to("cpu", tc.float64)
    assert net[0].weight.dtype == net[1].running_mean.dtype == np.float64
    net.to(Tensor(np.zeros(1, np.float32)))
    assert net[0].weight.dtype == np.float32 and net[1].num_batches_tracked.dtype == np.int64
    net.to(device="cpu", dtype=tc.float64)
    assert net[0].weight.dtype == np.float64


def test_function_forms_as_pytorchs():
    torch = pytest.importorskip("torch")
    positive = np.abs(A) + 0.1
    for name, data in [("exp", A), ("log", positive), ("sigmoid", A), ("relu", A), ("tanh", A), ("square", A)]:
        mine, theirs = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        y, ty = getattr(tc, name)(mine), getattr(torch, name)(theirs)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, err_msg=name)
        y.sum().backward(), ty.sum().backward()
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-12, err_msg=name)
    b = A.T.copy()
    np.testing.assert_allclose(tc.matmul(Tensor(A), Tensor(b)).data, torch.matmul(torch.tensor(A), torch.tensor(b)).numpy())
    np.testing.assert_allclose(tc.mm(Tensor(A), Tensor(b)).data, torch.mm(torch.tensor(A), torch.tensor(b)).numpy())
    np.testing.assert_allclose(tc.pow(Tensor(positive), 1.5).data, torch.pow(torch.tensor(positive), 1.5).numpy())
    np.testing.assert_allclose(tc.pow(2.0, Tensor(A)).data, torch.pow(2.0, torch.tensor(A)).numpy())
    special = np.array([0.0, np.nan, np.inf, -np.inf, 1.0])
    for name in ("isnan", "isinf", "isfinite"):
        mine = getattr(tc, name)(Tensor(special))
        assert mine.dtype == np.bool_ and np.array_equal(mine.data, getattr(torch, name)(torch.tensor(special)).numpy())
    near = A + 1e-9
    assert tc.allclose(Tensor(A), Tensor(near)) == torch.allclose(torch.tensor(A), torch.tensor(near)) is True
    assert tc.allclose(Tensor(A), Tensor(A + 1e-3)) is False
    assert tc.equal(Tensor(A), Tensor(A.copy())) is True and tc.equal(Tensor(A), Tensor(near)) is False
    assert tc.equal(Tensor(A), Tensor(A[:1])) is False and tc.numel(Tensor(A)) == torch.numel(torch.tensor(A)) == 6
    with pytest.raises(ValueError, match="mm: input must be a matrix"):
        tc.mm(Tensor(np.ones(3)), Tensor(b))


def test_methods_as_pytorchs():
    torch = pytest.importorskip("torch")
    x, t = Tensor(A), torch.tensor(A)
    other = np.array([[0.3, 0.0, 2.0], [1.0, 0.7, 0.0]])
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        assert np.array_equal(getattr(x, name)(Tensor(other)).data, getattr(t, name)(torch.tensor(other)).numpy())
        assert np.array_equal(getattr(x, name)(0.7).data, getattr(t, name)(0.7).numpy())
    assert np.array_equal(x.t().data, t.t().numpy()) and np.array_equal(Tensor(A[0]).t().data, A[0])
    for data in (A.astype(np.float32), A, np.array([1, 2]), np.array([1], np.int32), np.array([1], np.uint8),
                 np.array([True])):
        assert tc.tensor(data).type() == torch.tensor(data).type()
    assert x.type(tc.float32).dtype == np.float32
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((2,),)), ("new_empty", (2,)), ("new_full", ((2,), 4))]:
        mine, theirs = getattr(x, name)(*args), getattr(t, name)(*args)
        assert mine.shape == tuple(theirs.shape) and mine.dtype == np.float64
        if name != "new_empty":
            assert np.array_equal(mine.data, theirs.numpy())
    assert x.new_tensor([1, 2]).dtype == np.float64 and x.new_zeros(2, dtype=tc.int64).dtype == np.int64
    assert x.new_ones(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="at most 2 dims"):
        Tensor(np.ones((2, 2, 2))).t()


def test_inference_mode_records_no_graph():
    w = Tensor(A, requires_grad=True)
    with tc.inference_mode():
        assert not (w * 2).requires_grad
    with tc.inference_mode(False):
        assert (w * 2).requires_grad
    with tc.no_grad(), tc.inference_mode(False):
        assert not (w * 2).requires_grad  # False leaves the mode as it was

    @tc.inference_mode
    def bare(v):
        return v * 2

    @tc.inference_mode()
    def called(v):
        return v * 2

    assert not bare(w).requires_grad and not called(w).requires_grad and (w * 2).requires_grad


def test_save_and_load_are_the_checkpoint_functions(tmp_path):
    net = nn.Linear(3, 2, rng=0)
    tc.save(net.state_dict(), tmp_path / "net.pt")
    loaded = tc.load(tmp_path / "net.pt")
    assert list(loaded) == ["weight", "bias"] and np.array_equal(loaded["weight"], net.weight.data)
    assert tc.save is tc.io.save and tc.load is tc.io.load
