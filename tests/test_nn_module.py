"""nn.Module's PyTorch surface beyond the basics: forward hooks, Parameters that stay parameters
while frozen, and editing containers (tinygrad_cnn.nn.module, nn.containers)."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn


def small_net():
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=1))


def test_forward_hook_sees_and_may_replace_the_output():
    net, seen = small_net(), []
    x = tc.randn(2, 1, 6, 6, generator=np.random.default_rng(0))
    expected = net(x).data
    handle = net[0].register_forward_hook(lambda module, args, output: seen.append((module, args, output)))
    np.testing.assert_array_equal(net(x).data, expected)
    ((module, args, output),) = seen
    assert module is net[0] and args[0] is x and output.shape == (2, 2, 4, 4)
    np.testing.assert_array_equal(output.data, net[0](x).data)
    handle.remove()
    net(x)
    assert len(seen) == 2  # the direct call above ran it; net(x) after remove() did not
    with net[3].register_forward_hook(lambda module, args, output: output * 0):
        np.testing.assert_array_equal(net(x).data, np.zeros((2, 3)))
    np.testing.assert_array_equal(net(x).data, expected)  # removed on leaving the block


def test_forward_pre_hook_may_replace_the_inputs_and_hooks_keep_order():
    layer, calls = nn.Linear(2, 1, rng=0), []
    x = Tensor(np.ones((1, 2)))
    layer.register_forward_pre_hook(lambda module, args: calls.append("first"))
    layer.register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    layer.register_forward_pre_hook(lambda module, args: calls.append("prepended"), prepend=True)
    y = layer(x)
    np.testing.assert_allclose(y.data, (2 * x.data) @ layer.weight.data.T + layer.bias.data, rtol=1e-6)
    assert calls == ["prepended", "first"]
    layer.register_forward_pre_hook(lambda module, args: args[0] * 0)  # a bare tensor counts as (tensor,)
    np.testing.assert_allclose(layer(x).data, layer.bias.data[None], rtol=1e-6)


def test_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    module, seen = Scale(), []
    module.register_forward_pre_hook(lambda m, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True)
    module.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs), with_kwargs=True)
    np.testing.assert_array_equal(module(Tensor([1.0, 2.0]), factor=5.0).data, [3.0, 6.0])
    assert seen == [{"factor": 3.0}]
    with pytest.raises(TypeError, match="hook must be callable"):
        module.register_forward_hook(3)


def test_hooks_feed_gradients_through():
    net = small_net()
    kept = []
    net[1].register_forward_hook(lambda m, args, out: kept.append(out))
    net(tc.randn(1, 1, 6, 6, generator=np.random.default_rng(1))).sum().backward()
    assert kept[0].requires_grad and net[0].weight.grad is not None


def test_frozen_parameters_stay_parameters_and_thaw():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    net[0].requires_grad_(False)
    assert [name for name, _ in net.named_parameters()] == names and net.buffers() == []
    assert not net[0].weight.requires_grad
    net.requires_grad_(True)  # reaches the frozen ones again
    assert all(p.requires_grad for p in net.parameters())
    frozen = nn.Parameter(Tensor(np.ones(2)), requires_grad=False)
    holder = nn.Module()
    holder.register_parameter("w", frozen)
    holder.register_buffer("b", Tensor(np.zeros(2)))
    assert holder.parameters() == [frozen] and [n for n, _ in holder.named_buffers()] == ["b"]
    with pytest.raises(TypeError, match="register_buffer"):
        holder.register_buffer("c", frozen)
    bn = nn.BatchNorm2d(2)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]


def test_frozen_layer_is_left_alone_by_the_optimizer():
    net = small_net()
    net[0].requires_grad_(False)
    before = net[0].weight.data.copy()
    optimizer = tc.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    net(tc.randn(2, 1, 6, 6, generator=np.random.default_rng(2))).sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(net[0].weight.data, before)
    assert net[0].weight.grad is None and net[3].weight.grad is not None


def test_sequential_slices_keep_names_and_items_can_be_set_and_deleted():
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU(), flat=nn.Flatten()))
    tail = named[1:]
    assert isinstance(tail, nn.Sequential) and [n for n, _ in tail.named_children()] == ["act", "flat"]
    new = nn.Tanh()
    named[-2] = new
    assert named.act is new and [n for n, _ in named.named_children()] == ["conv", "act", "flat"]
    del named[0]
    assert [n for n, _ in named.named_children()] == ["0", "1"] and named[0] is new  # renumbered, as PyTorch's
    layers = nn.ModuleList([nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Flatten()])
    del layers[1:3]
    assert [type(m).__name__ for m in layers] == ["ReLU", "Flatten"] and layers[1] is getattr(layers, "1")
    with pytest.raises(IndexError, match="out of range"):
        layers[2] = nn.ReLU()
    with pytest.raises(TypeError, match="takes Modules"):
        layers[0] = 3


def test_sequential_edits_as_pytorchs():
    torch = pytest.importorskip("torch")
    mine = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.Sigmoid(), d=nn.Flatten()))
    theirs = torch.nn.Sequential(OrderedDict(a=torch.nn.ReLU(), b=torch.nn.Tanh(), c=torch.nn.Sigmoid(),
                                             d=torch.nn.Flatten()))
    for edit in (lambda s: s[1:3], lambda s: s[::2], lambda s: s[-1:]):
        assert [n for n, _ in edit(mine).named_children()] == [n for n, _ in edit(theirs).named_children()]
    del mine[1], theirs[1]
    assert [n for n, _ in mine.named_children()] == [n for n, _ in theirs.named_children()]


def test_rand_refuses_an_integer_dtype():
    with pytest.raises(TypeError, match="float32 or float64"):
        tc.rand(3, dtype=tc.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        tc.randn(3, dtype=tc.int32)
    assert tc.rand(2, dtype=tc.float64).dtype == np.float64


def test_review_edges_of_hooks_and_containers():
    module = nn.Linear(2, 1, rng=0)
    module.register_forward_pre_hook(lambda m, args, kwargs: args[0], with_kwargs=True)
    with pytest.raises(TypeError, match=r"must return None or a tuple \(new_args, new_kwargs\)"):
        module(Tensor(np.ones((1, 2))))
    calls = []
    layer = nn.ReLU()
    layer.register_forward_hook(lambda m, a, o: calls.append("first"))
    layer.register_forward_hook(lambda m, a, o: calls.append("prepended"), prepend=True)
    layer(Tensor([1.0]))
    assert calls == ["prepended", "first"]

    class Mine(nn.Sequential):
        pass

    seq = Mine(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert type(seq[1:]) is Mine
    new = nn.Flatten()
    seq[np.int64(-1)] = new
    assert seq[2] is new
    del seq[np.int64(0)]
    assert [type(m).__name__ for m in seq] == ["Tanh", "Flatten"]
