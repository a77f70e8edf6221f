"""Layers: parameter discovery, state dicts, train/eval and Dropout, shapes and errors,
initialisation, repr, and (behind importorskip) parity of a whole network with torch.nn."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn


def small_net(seed=0, dtype=np.float32):
    """(N, 1, 6, 6) -> conv 3×3 -> (N, 2, 4, 4) -> pool -> (N, 2, 2, 2) -> 8 -> 3."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=seed, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8, 3, rng=seed + 1, dtype=dtype), nn.Dropout(0.25, rng=seed))


class Block(nn.Module):
    """A module that never calls super().__init__(): attributes alone must be enough."""

    def __init__(self):
        self.gain = Tensor(np.ones(3), requires_grad=True)
        self.fc = nn.Linear(3, 3, rng=1)
        self.seen = Tensor(0.0)  # a buffer: requires_grad=False

    def forward(self, x):
        return self.fc(x) * self.gain


class Net(nn.Module):
    def __init__(self):
        self.scale = Tensor(np.ones(1), requires_grad=True)
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False, rng=0), nn.Tanh(), nn.Flatten())
        self.name = "not a tensor"  # plain attributes are ignored
        self.sizes = [1, 2, 3]
        self.head = nn.Sequential(nn.Linear(8, 3, rng=2), Block(), nn.Dropout(0.5, rng=3))

    def forward(self, x):
        return self.head(self.features(x) * self.scale)


def snapshot(model):
    return {name: t.data.copy() for name, t in model._named_tensors()}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name].tobytes() == before[name].tobytes(), f"{name} changed"


# ---- parameter discovery ---------------------------------------------------------------------------
def test_sequential_parameter_names_and_order():
    model = small_net()
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert [p.shape for p in model.parameters()] == [(2, 1, 3, 3), (2,), (3, 8), (3,)]
    assert model.parameters()[0] is model[0].weight and model.parameters()[3] is model[4].bias
    assert all(p.requires_grad and p.is_leaf for p in model.parameters())
    assert len(model) == 6 and [type(m).__name__ for m in model] == [
        "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Dropout"]


def test_custom_module_nested_parameters_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "head.0.weight", "head.0.bias",
        "head.1.gain", "head.1.fc.weight", "head.1.fc.bias"]
    assert list(net.state_dict()) == [  # a module's own tensors before its submodules', as PyTorch's
        "scale", "features.0.weight", "head.0.weight", "head.0.bias",
        "head.1.gain", "head.1.seen", "head.1.fc.weight", "head.1.fc.bias", "head.2.seed", "head.2.calls"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    params = net.parameters()
    assert not any(p is net.head[1].seen or p is net.head[2].calls for p in params)
    y = net(Tensor(np.zeros((2, 1, 4, 4), np.float32)))
    assert y.shape == (2, 3)


def test_dropout_counter_is_a_buffer_not_a_parameter():
    model = small_net()
    assert "5.calls" in model.state_dict() and model.state_dict()["5.calls"].shape == ()
    assert "5.calls" not in dict(model.named_parameters())
    assert not model[5].calls.requires_grad


def test_layers_without_bias():
    conv, fc = nn.Conv2d(2, 3, 3, bias=False, rng=0), nn.Linear(4, 5, bias=False, rng=0)
    assert conv.bias is None and fc.bias is None
    assert [n for n, _ in conv.named_parameters()] == ["weight"]
    assert list(fc.state_dict()) == ["weight"]
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(conv(Tensor(x)).data, F.correlate2d(x, conv.weight.data).data, rtol=1e-6)
    v = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(fc(Tensor(v)).data, v @ fc.weight.data.T, rtol=1e-6)


def test_shared_parameters_are_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            self.encoder = nn.Linear(3, 3, rng=0)
            self.decoder = self.encoder  # the same layer under a second name

    tied = Tied()
    assert list(tied.state_dict()) == ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"]
    assert [n for n, _ in tied.named_parameters()] == ["encoder.weight", "encoder.bias"]  # as torch


def test_module_zero_grad():
    model = small_net()
    F.cross_entropy(model(Tensor(np.ones((2, 1, 6, 6), np.float32))), [0, 2]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ---- state dicts --------------------------------------------------------------------------------------
def test_state_dict_round_trip_is_bitwise():
    a, b = small_net(seed=0), small_net(seed=10)
    a[4].bias.data[:] = [0.5, -0.25, 1e-30]
    a[0].bias.data[:] = np.nextafter(np.float32(1), np.float32(2))
    a[5].calls.data += 7
    assert not np.array_equal(a[0].weight.data, b[0].weight.data)
    state = a.state_dict()
    b.load_state_dict(state)
    for name, array in b.state_dict().items():
        assert array.dtype == state[name].dtype and array.tobytes() == state[name].tobytes(), name
    x = Tensor(np.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(np.float32))
    a.eval(), b.eval()
    assert a(x).data.tobytes() == b(x).data.tobytes()


def test_state_dict_returns_copies_and_load_copies_in():
    model = small_net()
    before = snapshot(model)
    state = model.state_dict()
    for array in state.values():
        array[...] = 42
    assert_unchanged(model, before)

    source = small_net(seed=5).state_dict()
    model.load_state_dict(source)
    loaded = snapshot(model)
    for array in source.values():
        array[...] = -1
    assert_unchanged(model, loaded)
    assert model[0].weight.data is model.parameters()[0].data  # loaded in place, same Tensors


@pytest.mark.parametrize("problem, words", [
    ("missing", ["missing", "4.bias"]),
    ("unexpected", ["unexpected", "9.weight"]),
    ("shape", ["0.weight", "(2, 1, 5, 5)", "(2, 1, 3, 3)"]),
    ("dtype", ["4.weight", "float64", "float32"]),
])
def test_load_state_dict_errors_name_the_problem_and_change_nothing(problem, words):
    model = small_net()
    before = snapshot(model)
    state = small_net(seed=3).state_dict()  # every other entry is a valid new value
    if problem == "missing":
        del state["4.bias"]
    elif problem == "unexpected":
        state["9.weight"] = np.zeros((2, 2), np.float32)
    elif problem == "shape":
        state["0.weight"] = np.zeros((2, 1, 5, 5), np.float32)
    else:
        state["4.weight"] = state["4.weight"].astype(np.float64)
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(model, before)


# ---- train / eval and Dropout -------------------------------------------------------------------------
def test_train_and_eval_propagate_to_every_submodule():
    net = Net()
    modules = [net, net.features, *net.features, net.head, *net.head, net.head[1].fc]
    assert all(m.training for m in modules)
    assert net.eval() is net
    assert not any(m.training for m in modules)
    assert net.train() is net
    assert all(m.training for m in modules)
    net.train(False)
    assert not any(m.training for m in modules)


def test_dropout_is_the_identity_in_eval_mode():
    drop = nn.Dropout(0.5, rng=0).eval()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(drop(Tensor(x)).data, x)
    assert drop.calls.data == 0  # eval does not consume masks
    np.testing.assert_array_equal(nn.Dropout(0.0, rng=0)(Tensor(x)).data, x)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.7])
def test_dropout_zeros_about_p_and_scales_the_rest(p):
    n = 200_000
    y = nn.Dropout(p, rng=1)(Tensor(np.ones(n)))
    assert y.dtype == np.float64
    kept = y.data != 0
    assert abs(1 - kept.mean() - p) < 0.005  # 5 standard deviations at p = 0.5
    assert np.all(y.data[kept] == 1 / (1 - p))  # exactly 1/(1-p)

    x = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    y32 = nn.Dropout(p, rng=1)(Tensor(x))
    assert y32.dtype == np.float32
    kept = y32.data != 0
    np.testing.assert_allclose(y32.data[kept], x[kept] / np.float32(1 - p), rtol=2e-7)


def test_dropout_gradient_is_the_mask():
    x = Tensor(np.random.default_rng(0).standard_normal((30, 30)), requires_grad=True)
    y = nn.Dropout(0.4, rng=3)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.where(y.data != 0, 1 / 0.6, 0.0))


def test_dropout_masks_follow_the_seed_and_the_counter():
    x = Tensor(np.ones((50, 40), np.float32))
    a, b, c = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=8)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, c(x).data)
    assert a.calls.data == 1
    state = a.state_dict()
    second = a(x).data
    assert a.calls.data == 2
    assert not np.array_equal(first, second)  # a new mask on every call

    a.load_state_dict(state)  # back to one call made: the same next mask
    np.testing.assert_array_equal(a(x).data, second)
    fresh = nn.Dropout(0.5, rng=7)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh(x).data, second)


# ---- shapes and errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("padding, stride, out_hw", [
    (0, 1, (7, 6)), ("valid", 1, (7, 6)), (0, 2, (4, 3)), (1, 1, (9, 8)), (2, 2, (6, 5)),
    ("same", 1, (9, 8)), ("same", 2, (5, 4)), (1, (2, 1), (5, 8)),
])
def test_conv2d_output_shapes(padding, stride, out_hw):
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, rng=0)
    assert conv.weight.shape == (4, 3, 3, 3) and conv.bias.shape == (4,)
    assert conv(Tensor(np.zeros((2, 3, 9, 8), np.float32))).shape == (2, 4) + out_hw


def test_conv2d_rectangular_kernel_and_linear_weight_shapes():
    conv = nn.Conv2d(2, 5, (3, 2), rng=0)
    assert conv.weight.shape == (5, 2, 3, 2) and conv.bias.shape == (5,)
    assert conv(Tensor(np.zeros((1, 2, 6, 6)))).shape == (1, 5, 4, 5)
    fc = nn.Linear(7, 4, rng=0)
    assert fc.weight.shape == (4, 7) and fc.bias.shape == (4,)
    assert fc(Tensor(np.zeros((2, 3, 7)))).shape == (2, 3, 4)  # leading axes pass through


# ---- initialisation and dtypes ------------------------------------------------------------------------
def test_he_normal_statistics():
    fc = nn.Linear(1000, 400, rng=0)  # 400 000 draws: the sample std is within 0.5 %
    w = fc.weight.data.astype(np.float64)
    assert abs(w.std() / math.sqrt(2 / 1000) - 1) < 0.01
    assert abs(w.mean()) < 0.01 * math.sqrt(2 / 1000)
    assert np.all(fc.bias.data == 0)
    conv = nn.Conv2d(50, 64, 5, rng=0)  # fan_in 1250, 200 000 draws
    assert abs(conv.weight.data.std() / math.sqrt(2 / 1250) - 1) < 0.01
    assert np.all(conv.bias.data == 0)


def test_glorot_uniform_statistics():
    fc = nn.Linear(600, 400, init="glorot", rng=0)
    limit = math.sqrt(6 / (600 + 400))
    w = fc.weight.data
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.999 * limit
    assert abs(w.min() + limit) < 0.001 * limit  # both ends are reached: uniform on [-limit, limit]
    assert abs(w.std() / (limit / math.sqrt(3)) - 1) < 0.01
    conv = nn.Conv2d(20, 30, 3, init="glorot", rng=0)  # fan_in 180, fan_out 270
    limit = math.sqrt(6 / (180 + 270))
    assert np.abs(conv.weight.data).max() <= limit
    assert abs(conv.weight.data.std() / (limit / math.sqrt(3)) - 1) < 0.02


def test_initialisation_follows_the_seed():
    for make in (lambda seed: nn.Conv2d(3, 4, 3, rng=seed), lambda seed: nn.Linear(5, 6, rng=seed),
                 lambda seed: nn.Linear(5, 6, init="glorot", rng=seed)):
        a, b, c = make(0), make(0), make(1)
        np.testing.assert_array_equal(a.weight.data, b.weight.data)
        assert not np.array_equal(a.weight.data, c.weight.data)
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(nn.Linear(5, 6, rng=g1).weight.data, nn.Linear(5, 6, rng=g2).weight.data)


def test_float32_by_default_and_float64_on_request():
    for layer in (nn.Conv2d(1, 2, 3), nn.Linear(3, 2)):
        assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    for layer in (nn.Conv2d(1, 2, 3, dtype=np.float64), nn.Linear(3, 2, dtype=np.float64)):
        assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    model = small_net(dtype=np.float64)
    assert model(Tensor(np.ones((2, 1, 6, 6)))).dtype == np.float64
    assert small_net()(Tensor(np.ones((2, 1, 6, 6), np.float32))).dtype == np.float32


# ---- printing -----------------------------------------------------------------------------------------
def test_repr():
    assert repr(small_net()) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=0, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten()\n"
        "  (4): Linear(in_features=8, out_features=3, bias=True)\n"
        "  (5): Dropout(p=0.25)\n"
        ")"
    )
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 2, stride=2, padding="same", bias=False)), nn.Sigmoid())
    assert repr(nested) == (
        "Sequential(\n"
        "  (0): Sequential(\n"
        "    (0): Conv2d(1, 1, kernel_size=(2, 2), stride=(2, 2), padding='same', bias=False)\n"
        "  )\n"
        "  (1): Sigmoid()\n"
        ")"
    )


# ---- parity with torch.nn -----------------------------------------------------------------------------
# Each case: (in, out, kernel, stride, padding) of the first conv; torch gets the same layer (an odd
# kernel's "same" at stride 2 is padding (k-1)/2; an even one pads (k-1)//2 before, the rest after).
FIRST_CONV = [(2, 3, 3, 1, 0), (2, 3, 3, 2, 0), (2, 3, 3, 1, 1), (2, 3, 3, 2, 2), (2, 3, 3, 1, "same"),
              (2, 3, 3, 2, "same"), (2, 3, 4, 1, "same"), (2, 3, 4, 2, "same"), (2, 3, (3, 2), 1, "valid")]


def torch_conv(tnn, cin, cout, k, stride, padding, dtype, bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    if padding == "same" and (stride != 1 or kh % 2 == 0 or kw % 2 == 0):
        conv = tnn.Conv2d(cin, cout, (kh, kw), stride=stride, bias=bias, dtype=dtype)
        return [tnn.ZeroPad2d(((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)), conv]
    return [tnn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding, bias=bias, dtype=dtype)]


def build_pair(first, dtype, torch):
    """Our network and the equivalent torch.nn one, with the same (random, biases too) weights."""
    tnn, tdtype = torch.nn, {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    cin, cout, k, stride, padding = first
    ours = nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=padding, rng=0, dtype=dtype), nn.ReLU(),
        nn.Conv2d(cout, 4, 3, stride=2, padding=1, init="glorot", rng=1, dtype=dtype), nn.Sigmoid(),
        nn.Conv2d(4, 4, 3, padding="same", bias=False, init="glorot", rng=2, dtype=dtype), nn.Tanh(),
        nn.MaxPool2d(2), nn.Flatten(),
    )
    x = np.random.default_rng(0).standard_normal((3, cin, 13, 12)).astype(dtype)
    features = ours(Tensor(x)).shape[1]
    ours = nn.Sequential(*ours, nn.Linear(features, 5, rng=3, dtype=dtype))
    theirs = tnn.Sequential(
        *torch_conv(tnn, cin, cout, k, stride, padding, tdtype), tnn.ReLU(),
        *torch_conv(tnn, cout, 4, 3, 2, 1, tdtype), tnn.Sigmoid(),
        *torch_conv(tnn, 4, 4, 3, 1, "same", tdtype, bias=False), tnn.Tanh(),
        tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(features, 5, dtype=tdtype),
    )
    g = np.random.default_rng(1)
    for p in ours.parameters():
        if p.ndim == 1:  # biases start at zero: make them count
            p.data[:] = g.standard_normal(p.shape) * 0.1
    pairs = list(zip(ours.named_parameters(), theirs.named_parameters()))
    assert len(pairs) == len(ours.parameters()) == len(list(theirs.parameters()))
    with torch.no_grad():
        for (_, p), (_, t) in pairs:
            assert tuple(t.shape) == p.shape
            t.copy_(torch.from_numpy(p.data))
    return ours, theirs, x, pairs


def check_network_parity(first, dtype, rtol, atol):
    torch = pytest.importorskip("torch")
    ours, theirs, x, pairs = build_pair(first, dtype, torch)
    labels = np.array([0, 4, 2])
    xs, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    logits, tlogits = ours(xs), theirs(tx)
    assert logits.dtype == dtype and logits.shape == tuple(tlogits.shape)
    np.testing.assert_allclose(logits.data, tlogits.detach().numpy(), rtol=rtol, atol=atol)
    loss = F.cross_entropy(logits, labels)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.tensor(labels))
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=rtol, atol=atol)
    loss.backward()
    tloss.backward()
    for (name, p), (tname, t) in pairs + [(("input", xs), ("input", tx))]:
        tg = t.grad.numpy()
        assert np.abs(tg).max() > 1e-4, f"torch's gradient of {tname} is ~0: a vacuous case"
        assert p.grad.dtype == dtype, name
        np.testing.assert_allclose(p.grad.data, tg, rtol=rtol, atol=atol * np.abs(tg).max(),
                                   err_msg=f"∂loss/∂{name} (torch {tname})")


@pytest.mark.parametrize("first", FIRST_CONV, ids=str)
def test_network_matches_torch_float64(first):
    check_network_parity(first, np.float64, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("first", FIRST_CONV[::2], ids=str)
def test_network_matches_torch_float32(first):
    check_network_parity(first, np.float32, rtol=1e-4, atol=1e-5)


def test_state_dict_keys_match_torch():
    """A Sequential's state dict has torch.nn's keys and shapes, so weights move across as is."""
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 3))
    state = ours.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    back = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict(back)
    for name, array in ours.state_dict().items():
        assert array.tobytes() == state[name].tobytes()


def test_module_list_and_sequential_slices():
    layers = nn.ModuleList([nn.Linear(2, 3, rng=0), nn.Linear(3, 1, rng=1)])
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    head = model[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is model[2]
    with pytest.raises(ValueError, match="in_features must be an int >= 1"):
        nn.Linear(0, 3)


def test_the_module_vocabulary_of_a_custom_pytorch_model():
    torch = pytest.importorskip("torch")
    from collections import OrderedDict

    def build(lib):
        class Custom(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.body = lib.nn.Sequential(OrderedDict([("conv", lib.nn.Conv2d(1, 2, 3)), ("act", lib.nn.ReLU())]))
                self.scale = lib.nn.Parameter(lib.ones(2))
                self.heads = lib.nn.ModuleList([lib.nn.Linear(2, 2)])
                self.heads.append(lib.nn.Linear(2, 3))
                self.heads.insert(0, lib.nn.Linear(2, 4))
                self.add_module("extra", lib.nn.Linear(3, 1))
                self.register_parameter("bias", lib.nn.Parameter(lib.zeros(1)))
        return Custom()

    ours, theirs = build(tc), build(torch)
    names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == names  # own parameters first, then the submodules'
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["scale", "bias"]
    assert [n for n, _ in ours.named_parameters(prefix="m")][:2] == ["m.scale", "m.bias"]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [m.out_features for m in ours.heads] == [4, 2, 3] and ours.body[0] is ours.body.conv
    for p in ours.parameters():
        p.grad = tc.ones(p.shape)
    ours.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in ours.parameters())
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())
    assert ours.double().scale.dtype == np.float64 and ours.float().heads[0].weight.dtype == np.float32
    assert isinstance(ours.scale, Tensor) and isinstance(ours.scale, nn.Parameter) and ours.scale.is_leaf
    shared = Tensor(np.ones(3, np.float32))
    assert nn.Parameter(shared).data is shared.data  # the array shared, not copied
