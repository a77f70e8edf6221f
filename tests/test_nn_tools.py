"""nn.init, nn.utils's gradient clipping and Module's PyTorch conveniences (apply, modules,
buffers, requires_grad_, to, load_state_dict(strict=False)); PyTorch parity behind importorskip."""
import math

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Sequential(nn.Linear(4 * 6 * 6, 5, rng=1), nn.Tanh()))


@pytest.mark.parametrize("init, expected_std", [
    (lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / (8 * 9))),
    (lambda w: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / (16 * 9))),
    (lambda w: nn.init.xavier_normal_(w, gain=2.0), 2 * math.sqrt(2 / (8 * 9 + 16 * 9))),
    (lambda w: nn.init.xavier_uniform_(w), math.sqrt(2 / (8 * 9 + 16 * 9))),
    (lambda w: nn.init.normal_(w, 1.0, 0.5), 0.5),
    (lambda w: nn.init.uniform_(w, -1.0, 1.0), 1 / math.sqrt(3)),
])
def test_initialisers_draw_with_pytorchs_spread(init, expected_std):
    w = tc.zeros(16, 8, 3, 3)
    assert init(w) is w
    assert abs(w.data.std() - expected_std) < 0.06 * expected_std  # 1,152 draws: a few percent
    tc.manual_seed(4)
    first = init(tc.zeros(16, 8, 3, 3)).data.copy()
    tc.manual_seed(4)
    np.testing.assert_array_equal(init(tc.zeros(16, 8, 3, 3)).data, first)  # from the global generator


def test_constant_initialisers_and_gains():
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    assert nn.init.zeros_(w).data.sum() == 0 and nn.init.ones_(w).data.sum() == 6
    assert nn.init.constant_(w, 0.5).data.tolist() == [[0.5] * 3] * 2
    torch = pytest.importorskip("torch")
    for name, param in (("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("linear", None), ("sigmoid", None)):
        assert nn.init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_pytorch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(4)]
    ours = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = Tensor(g.copy()), torch.tensor(g.copy())
    total = nn.utils.clip_grad_norm_(ours, 2.0, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 2.0, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(ours, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad.data, t.grad.numpy())
    small = Tensor(np.zeros(2), requires_grad=True)
    small.grad = Tensor(np.array([0.3, 0.4]))
    assert nn.utils.clip_grad_norm_(small, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(small.grad.data, [0.3, 0.4])  # under the limit: untouched


def test_module_walks_and_names_as_pytorch():
    net = small_net()
    names = [name for name, _ in net.named_modules()]
    assert names == ["", "0", "1", "2", "3", "4", "4.0", "4.1"]
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Sequential"]
    assert len(list(net.modules())) == 8
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen[-1] == "Sequential" and seen[0] == "Conv2d"  # children first, then the module itself
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Sequential(torch.nn.Linear(144, 5), torch.nn.Tanh()))
    assert names == [name for name, _ in theirs.named_modules()]
    assert list(net.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_buffers_freezing_casting_and_non_strict_loading():
    net = small_net()
    net.register_buffer("steps", tc.tensor(0))
    assert "steps" in net.state_dict() and all(p is not net.steps for p in net.parameters())
    with pytest.raises(TypeError, match="does not require grad"):
        net.register_buffer("w", Tensor([1.0], requires_grad=True))
    assert net[0].requires_grad_(False) is net[0] and len(net.parameters()) == 6  # frozen ones stay parameters
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True, True, True]
    net.to(tc.float64)
    assert all(t.dtype == np.float64 for name, t in net._named_tensors() if name != "1.num_batches_tracked"
               and name != "steps")
    assert net[1].num_batches_tracked.dtype == np.int64  # integers stay integers
    state = net.state_dict()
    del state["4.0.bias"]
    state["extra"] = np.zeros(1)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["4.0.bias"] and unexpected == ["extra"]
    with pytest.raises(nn.StateDictError, match="missing keys"):
        net.load_state_dict(state)
    assert net.load_state_dict(net.state_dict()) == ([], [])
