"""tinygrad_cnn.nn.functional's CNN functions and the layers built on them: against numpy, their
first and second derivatives against finite differences, and PyTorch's (behind importorskip)."""
import numpy as np
import pytest
import scipy.special

import tinygrad_cnn as tc
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import gradcheck, gradgradcheck

rng = np.random.default_rng(15)


def spaced(*shape):
    """Distinct values, none near 0 (the activations' kinks) nor near another (ties)."""
    values = (rng.permutation(int(np.prod(shape))) - np.prod(shape) / 2 + 0.5) * 0.37
    return values.reshape(shape)


FUNCTIONS = {
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda t, x: t.nn.functional.leaky_relu(x, 0.1)),
    "elu": (lambda x: F.elu(x, 0.7), lambda t, x: t.nn.functional.elu(x, 0.7)),
    "gelu": (F.gelu, lambda t, x: t.nn.functional.gelu(x)),
    "gelu tanh": (lambda x: F.gelu(x, "tanh"), lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
    "silu": (F.silu, lambda t, x: t.nn.functional.silu(x)),
    "softplus": (lambda x: F.softplus(x, 2.0, 3.0), lambda t, x: t.nn.functional.softplus(x, 2.0, 3.0)),
    "hardtanh": (lambda x: F.hardtanh(x, -2.0, 3.0), lambda t, x: t.nn.functional.hardtanh(x, -2.0, 3.0)),
    "relu6": (F.relu6, lambda t, x: t.nn.functional.relu6(x)),
    "hardsigmoid": (F.hardsigmoid, lambda t, x: t.nn.functional.hardsigmoid(x)),
    "hardswish": (F.hardswish, lambda t, x: t.nn.functional.hardswish(x)),
    # inplace=True: the same values, computed out of place (PyTorch's own refuses a leaf that needs grad)
    "relu inplace": (lambda x: F.relu(x, inplace=True), lambda t, x: t.nn.functional.relu(x)),
    "leaky_relu inplace": (lambda x: F.leaky_relu(x, 0.2, True), lambda t, x: t.nn.functional.leaky_relu(x, 0.2)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda t, x: t.nn.functional.avg_pool2d(x, 2)),
    "avg_pool2d stride padding": (lambda x: F.avg_pool2d(x, 3, 2, 1),
                                  lambda t, x: t.nn.functional.avg_pool2d(x, 3, 2, 1)),
    "max_pool2d padding": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda t, x: t.nn.functional.max_pool2d(x, 3, 2, 1)),
    "max_pool2d ceil_mode": (lambda x: F.max_pool2d(x, 2, ceil_mode=True),
                             lambda t, x: t.nn.functional.max_pool2d(x, 2, ceil_mode=True)),
    "max_pool2d ceil padding": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
                                lambda t, x: t.nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    "max_pool2d dilation": (lambda x: F.max_pool2d(x, 2, 1, 1, dilation=(2, 3)),
                            lambda t, x: t.nn.functional.max_pool2d(x, 2, 1, 1, dilation=(2, 3))),
    "max_pool2d dilation ceil": (lambda x: F.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True),
                                 lambda t, x: t.nn.functional.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True)),
    "adaptive 1": (lambda x: F.adaptive_avg_pool2d(x, 1), lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, 1)),
    "adaptive uneven": (lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
                        lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, (3, 4))),
    "pad": (lambda x: F.pad(x, (1, 2, 0, 3)), lambda t, x: t.nn.functional.pad(x, (1, 2, 0, 3))),
    "interpolate nearest 2": (lambda x: F.interpolate(x, scale_factor=2),
                              lambda t, x: t.nn.functional.interpolate(x, scale_factor=2)),
    "interpolate nearest size": (lambda x: F.interpolate(x, size=(7, 4)),
                                 lambda t, x: t.nn.functional.interpolate(x, size=(7, 4))),
    "interpolate bilinear": (lambda x: F.interpolate(x, scale_factor=(1.5, 2), mode="bilinear") ** 2,
                             lambda t, x: t.nn.functional.interpolate(x, scale_factor=(1.5, 2), mode="bilinear") ** 2),
    "interpolate bilinear corners": (
        lambda x: F.interpolate(x, size=(9, 3), mode="bilinear", align_corners=True),
        lambda t, x: t.nn.functional.interpolate(x, size=(9, 3), mode="bilinear", align_corners=True)),
    "pad value crop": (lambda x: F.pad(x, (-1, 2), value=1.5), lambda t, x: t.nn.functional.pad(x, (-1, 2), value=1.5)),
    "layer_norm": (lambda x: F.layer_norm(x, (5, 7)) * x, lambda t, x: t.nn.functional.layer_norm(x, (5, 7)) * x),
    "layer_norm affine": (lambda x: F.layer_norm(x, 7, np.linspace(0.5, 2, 7), np.linspace(-1, 1, 7)),
                          lambda t, x: t.nn.functional.layer_norm(x, (7,), t.linspace(0.5, 2, 7, dtype=t.float64),
                                                                  t.linspace(-1, 1, 7, dtype=t.float64))),
    "group_norm": (lambda x: F.group_norm(x, 3, np.linspace(0.5, 2, 3), np.linspace(-1, 1, 3)) * x,
                   lambda t, x: t.nn.functional.group_norm(x, 3, t.linspace(0.5, 2, 3, dtype=t.float64),
                                                           t.linspace(-1, 1, 3, dtype=t.float64)) * x),
    "group_norm one group": (lambda x: F.group_norm(x, 1) ** 2, lambda t, x: t.nn.functional.group_norm(x, 1) ** 2),
    "batch_norm train": (lambda x: F.batch_norm(x, None, None, training=True) * x,
                         lambda t, x: t.nn.functional.batch_norm(x, None, None, training=True) * x),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_first_and_second_derivatives(name):
    ours, _ = FUNCTIONS[name]
    x = spaced(2, 3, 5, 7)
    gradcheck(ours, x)
    gradgradcheck(ours, x)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = FUNCTIONS[name]
    x = spaced(2, 3, 5, 7)
    mine, t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(mine), theirs(torch, t)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(y.shape)
    (g,) = tc.grad(y, [mine], grad_outputs=[v], create_graph=True)
    (tg,) = torch.autograd.grad(ty, [t], grad_outputs=[torch.tensor(v)], create_graph=True)
    # PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, in float64 too
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-7 if name == "hardsigmoid" else 1e-10, atol=1e-12)
    u = rng.standard_normal(x.shape)
    # a function linear in x has a gradient that does not depend on x: its second derivative is 0
    gg = tc.grad((g * Tensor(u)).sum(), [mine], allow_unused=True)[0] if g.requires_grad else None
    # (PyTorch has no second derivative of hardsigmoid; piecewise linear, it is 0)
    tgg = torch.autograd.grad((tg * torch.tensor(u)).sum(), [t], allow_unused=True)[0] \
        if tg.requires_grad and name != "hardsigmoid" else None
    gg = np.zeros(x.shape) if gg is None else gg.data
    tgg = np.zeros(x.shape) if tgg is None else tgg.numpy()
    np.testing.assert_allclose(gg, tgg, rtol=1e-9, atol=1e-11)


def test_pooling_and_padding_against_numpy():
    x = rng.standard_normal((2, 3, 6, 8))
    windows = x.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(F.avg_pool2d(x, 2).data, windows, rtol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (1, 1)).data, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(F.pad(x, (1, 2, 3, 0), value=-2.0).data,
                                  np.pad(x, ((0, 0), (0, 0), (3, 0), (1, 2)), constant_values=-2.0))
    np.testing.assert_array_equal(F.pad(x, (-2, -1)).data, x[..., 2:-1])
    assert F.softplus(Tensor([1000.0, -1000.0], dtype=np.float64)).tolist() == [1000.0, 0.0]  # no overflow
    assert np.isfinite(F.elu(Tensor([1000.0], requires_grad=True)).sum().data)


def test_batch_norm_layers_track_pytorchs_running_statistics_and_state_dict():
    torch = pytest.importorskip("torch")
    for ours, theirs, shape in ((nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2), (4, 3, 5, 5)),
                                (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3), (6, 3)),
                                (nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3), (6, 3, 4)),
                                (nn.BatchNorm2d(3, momentum=None), torch.nn.BatchNorm2d(3, momentum=None), (4, 3, 2, 2))):
        theirs = theirs.double()
        for p in (ours.weight, ours.bias, ours.running_mean, ours.running_var):
            p.data = p.data.astype(np.float64)
        for step in range(3):
            x = rng.standard_normal(shape) * (step + 1) + step
            y = ours(Tensor(x))
            ty = theirs(torch.tensor(x))
            np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)
        ours.eval(), theirs.eval()
        x = rng.standard_normal(shape)
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
        assert ours.num_batches_tracked.item() == 3 and ours.num_batches_tracked.dtype == np.int64
        ours.reset_running_stats(), theirs.reset_running_stats()
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


def test_batch_norm_eval_is_the_running_statistics_and_training_differentiates_twice():
    bn = nn.BatchNorm2d(2)
    bn.running_mean.data[:] = [1.0, -1.0]
    bn.running_var.data[:] = [4.0, 0.25]
    bn.eval()
    x = np.ones((1, 2, 1, 1), np.float32)
    np.testing.assert_allclose(bn(Tensor(x)).data.ravel(), [0.0, 2.0 / np.sqrt(0.25 + 1e-5)], rtol=1e-6)
    # eval mode is one scale and shift: computed on the arrays when no parameter's gradient is
    # wanted, through the graph when one is (fine-tuning in eval mode), to the same values
    bn.weight.data[:], bn.bias.data[:] = [2.0, -1.0], [0.5, 0.25]
    x = Tensor(rng.standard_normal((3, 2, 2, 2)).astype(np.float32), requires_grad=True)
    with tc.no_grad():
        untracked = bn(x)
    tracked = bn(x)
    np.testing.assert_allclose(untracked.data, tracked.data, rtol=1e-6)

    def channels(*values):
        return np.array(values).reshape(1, 2, 1, 1)

    x_hat = (x.data - channels(1, -1)) / np.sqrt(channels(4, 0.25) + 1e-5)
    np.testing.assert_allclose(tracked.data, x_hat * channels(2, -1) + channels(0.5, 0.25), rtol=1e-5, atol=1e-6)
    tracked.sum().backward()
    np.testing.assert_allclose(bn.bias.grad.data, [12, 12])
    np.testing.assert_allclose(bn.weight.grad.data, x_hat.sum(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(channels(2, -1) / np.sqrt(channels(4, 0.25) + 1e-5), x.shape),
                               rtol=1e-6)
    w, b = rng.standard_normal(3) + 2, rng.standard_normal(3)
    gradgradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True) ** 2, spaced(4, 3, 2), w, b)


def test_activations_at_their_ends_and_pytorchs_inplace_argument():
    x = Tensor(np.array([-7.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 7.0, np.nan]), requires_grad=True)
    before = x.data.copy()
    for layer in (nn.ReLU(inplace=True), nn.ReLU6(inplace=True), nn.Hardtanh(-1.0, 1.0, inplace=True),
                  nn.Hardswish(inplace=True), nn.Hardsigmoid(inplace=True), nn.LeakyReLU(0.1, True), nn.ELU(inplace=True),
                  nn.SiLU(inplace=True), nn.Dropout(0.5, inplace=True, rng=0).eval(), nn.Dropout2d(0.5, True).eval()):
        y = layer(x)
        np.testing.assert_array_equal(x.data, before)  # the input is left as it was
        assert np.isnan(y.data[-1]), layer  # NaN stays NaN
    relu6 = F.relu6(x)
    (grad,) = tc.grad(relu6[:-1].sum(), [x])
    # PyTorch's hardtanh: the gradient is 0 at both ends, 1 strictly between
    np.testing.assert_array_equal(grad.data[:-1], [0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(relu6.data[:-1], [0, 0, 0, 0, 1, 3, 6, 6])
    np.testing.assert_array_equal(F.hardswish(x).data[:-1], [0, 0, -1 / 3, 0, 2 / 3, 3, 6, 7])
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    with pytest.raises(TypeError, match="inplace must be a bool"):
        nn.ReLU(inplace="yes")
    with pytest.raises(ValueError, match="min_val 2.0 must not exceed max_val 1.0"):
        F.hardtanh(x, 2.0, 1.0)


def test_interpolation_reads_only_its_neighbours_and_upsample_is_the_layer():
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    x[0, 0, 0, 0] = np.inf
    y = F.interpolate(Tensor(x), scale_factor=2, mode="bilinear").data
    # ∞ reaches the outputs that read its cell (PyTorch's the same) and no others
    assert np.isinf(y[0, 0, :3, :3]).all() and np.isfinite(y[0, 0, 3:]).all() and np.isfinite(y[0, 0, :, 3:]).all()
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2)(Tensor(x)).data, x.repeat(2, 2).repeat(2, 3))
    assert repr(nn.Upsample(scale_factor=2, mode="bilinear")) == "Upsample(scale_factor=2, mode='bilinear')"


def test_layers_and_dropout2d():
    x = Tensor(spaced(2, 3, 4, 4))
    for layer, expected in ((nn.Identity(), x.data), (nn.LeakyReLU(0.2), np.where(x.data > 0, x.data, 0.2 * x.data)),
                            (nn.SiLU(), x.data / (1 + np.exp(-x.data))), (nn.AvgPool2d(2), F.avg_pool2d(x, 2).data),
                            (nn.AdaptiveAvgPool2d(1), x.data.mean(axis=(2, 3), keepdims=True)),
                            (nn.Softmax(1), np.exp(x.data) / np.exp(x.data).sum(1, keepdims=True)),
                            (nn.Flatten(0, 1), x.data.reshape(6, 4, 4)), (nn.ELU(), F.elu(x).data),
                            (nn.Softplus(), np.log1p(np.exp(x.data))),
                            (nn.GELU(), x.data * (1 + scipy.special.erf(x.data / np.sqrt(2))) / 2),
                            (nn.GroupNorm(1, 3, dtype=np.float64), (x.data - x.data.mean(axis=(1, 2, 3), keepdims=True))
                             / np.sqrt(x.data.var(axis=(1, 2, 3), keepdims=True) + 1e-5))):
        np.testing.assert_allclose(layer(x).data, expected, rtol=1e-5, atol=1e-6)
    drop = nn.Dropout2d(0.5, rng=0)
    y = drop(Tensor(np.ones((8, 16, 3, 3), np.float32))).data
    per_channel = y.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) <= {0.0, 2.0} and (per_channel.min(-1) == per_channel.max(-1)).all()
    assert 0.25 < (per_channel[..., 0] == 0).mean() < 0.75
    drop.eval()
    assert drop(x) is x


LOSSES = {
    "cross_entropy": lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
    "cross_entropy weight ignore": lambda lib, x, t: lib.nn.functional.cross_entropy(
        x, t, weight=lib.tensor([0.5, 2.0, 1.0, 0.25]).double(), ignore_index=2),
    "cross_entropy sum smoothing": lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, reduction="sum",
                                                                                      label_smoothing=0.2),
    "cross_entropy none weight smoothing": lambda lib, x, t: lib.nn.functional.cross_entropy(
        x, t, weight=lib.tensor([0.5, 2.0, 1.0, 0.25]).double(), reduction="none", label_smoothing=0.1),
    "cross_entropy mean weight smoothing ignore": lambda lib, x, t: lib.nn.functional.cross_entropy(
        x, t, weight=lib.tensor([0.5, 2.0, 1.0, 0.25]).double(), label_smoothing=0.3, ignore_index=1),
    "cross_entropy probabilities": lambda lib, x, t: lib.nn.functional.cross_entropy(
        x, lib.nn.functional.softmax(x * 0.5, dim=1).detach(), label_smoothing=0.1),
    "nll_loss": lambda lib, x, t: lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(x, dim=1), t),
    "CrossEntropyLoss": lambda lib, x, t: lib.nn.CrossEntropyLoss(label_smoothing=0.05)(x, t),
    "mse_loss sum": lambda lib, x, t: lib.nn.functional.mse_loss(x, x.exp() * 0.1, reduction="sum"),
    "l1_loss": lambda lib, x, t: lib.nn.L1Loss()(x, x * 0.5 + 0.1),
    "bce": lambda lib, x, t: lib.nn.functional.binary_cross_entropy(x.sigmoid(), (x > 0).double() * 0.8),
    "bce with logits": lambda lib, x, t: lib.nn.BCEWithLogitsLoss(pos_weight=lib.tensor(2.0).double())(
        x, (x > 0.2).double()),
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3)], ids=["(N, C)", "(N, C, d)"])
def test_losses_with_pytorchs_options(name, shape):
    torch = pytest.importorskip("torch")
    x = spaced(*shape)
    t = rng.integers(0, 4, shape[:1] + shape[2:])
    mine = Tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y = LOSSES[name](tc, mine, tc.tensor(t))
    ty = LOSSES[name](torch, theirs, torch.tensor(t))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(y.shape)
    y.backward(v)
    ty.backward(torch.tensor(v))
    np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_losses_differentiate_twice():
    x, t = spaced(5, 4), rng.integers(0, 4, 5)
    gradgradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.2, weight=np.array([1.0, 2.0, 0.5, 1.0])), x)
    gradgradcheck(lambda x: F.binary_cross_entropy_with_logits(x, (x.data > 0).astype(float)), x)



EDGES = {  # the values where a composition's pieces meet: a logit of exactly 0, a saturated
    # probability (0 or 1, as sigmoid(40) rounds to in float64), a masked (−∞) logit
    "bce with logits at 0": (lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, lib.tensor([0.0, 0.5, 1.0]).double(), reduction="sum"), [0.0, 0.0, 0.0]),
    "bce with logits at 0, pos_weight": (lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, lib.tensor([0.0, 0.5, 1.0]).double(), pos_weight=lib.tensor([2.0, 2.0, 2.0]).double()), [0.0, 0.0, 0.0]),
    "bce of saturated sigmoids": (lambda lib, x: lib.nn.functional.binary_cross_entropy(
        x.sigmoid(), lib.tensor([1.0, 0.0, 1.0, 0.0]).double()), [40.0, -40.0, 1.0, -2.0]),
    "cross_entropy with a masked logit": (lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.tensor([0, 2])), [[1.0, -np.inf, 0.5], [0.2, 0.1, 3.0]]),
    "cross_entropy sum with a masked logit": (lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.tensor([0, 1]), reduction="sum"), [[1.0, -np.inf, 0.5], [-np.inf, 0.1, 0.3]]),
    "nll_loss of log(0)": (lambda lib, x: lib.nn.functional.nll_loss(x, lib.tensor([0, 2])),
                           [[np.log(0.5), -np.inf, np.log(0.5)], [np.log(0.2), np.log(0.3), np.log(0.5)]]),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_losses_at_the_edges_of_their_compositions_as_pytorchs(name):
    torch = pytest.importorskip("torch")
    loss, values = EDGES[name]
    mine, theirs = Tensor(np.array(values), requires_grad=True), torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y, ty = loss(tc, mine), loss(torch, theirs)
    assert np.isfinite(y.item())
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10)
    y.backward()
    ty.backward()
    grad, tgrad = mine.grad.data, theirs.grad.numpy()
    np.testing.assert_allclose(grad, tgrad, rtol=1e-9, atol=1e-12)


def test_binary_cross_entropy_at_0_and_1_has_the_clamped_losss_gradient():
    # PyTorch divides by max(x(1 − x), 1e-12) there, which is 0 or ±1e12 at x = 0 or 1; ours is
    # the derivative of the loss it computes: the limit where x = t, 0 on the −100 clamp
    x = Tensor(np.array([0.0, 1.0, 0.0, 1.0]), requires_grad=True)
    F.binary_cross_entropy(x, np.array([0.0, 1.0, 1.0, 0.0]), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, -1.0, 0.0, 0.0])


CONVS = {
    "dilation": (lambda x, w: F.conv2d(x, w, dilation=2), lambda t, x, w: t.nn.functional.conv2d(x, w, dilation=2),
                 (4, 4, 2, 2)),
    "groups": (lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2),
               lambda t, x, w: t.nn.functional.conv2d(x, w, stride=2, padding=1, groups=2), (4, 2, 3, 3)),
    "depthwise dilated": (lambda x, w: F.conv2d(x, w, groups=4, dilation=(1, 2)),
                          lambda t, x, w: t.nn.functional.conv2d(x, w, groups=4, dilation=(1, 2)), (4, 1, 2, 2)),
    "transpose": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                  lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                  (4, 3, 3, 3)),
    "transpose groups dilation": (lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=2),
                                  lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, groups=2, dilation=2),
                                  (4, 2, 2, 3)),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_dilated_grouped_and_transposed_convolutions(name):
    ours, theirs, w_shape = CONVS[name]
    x, w = rng.standard_normal((2, 4, 6, 7)), rng.standard_normal(w_shape)
    gradcheck(ours, x, w)
    gradgradcheck(ours, x, w)
    torch = pytest.importorskip("torch")
    mine = [Tensor(a, requires_grad=True) for a in (x, w)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    y, ty = ours(*mine), theirs(torch, *ts)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(y.shape)
    y.backward(v)
    ty.backward(torch.tensor(v))
    for a, b in zip(mine, ts):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_layers_with_pytorchs_shapes_and_outputs():
    torch = pytest.importorskip("torch")
    for ours, theirs in ((nn.Conv2d(4, 6, 3, padding=1, dilation=2, groups=2), torch.nn.Conv2d(4, 6, 3, padding=1,
                                                                                               dilation=2, groups=2)),
                         (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                          torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2))):
        ours.load_state_dict({k: v.numpy().copy() for k, v in theirs.state_dict().items()})
        x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil", [
    (2, None, 0, 1, False), (3, 2, 1, 1, True), ((2, 3), 1, (1, 0), 1, False), (3, 2, 0, 1, True),
    (3, 2, 1, 2, False), ((2, 3), (1, 2), (1, 0), (2, 3), True), (2, None, 0, 2, True)])
def test_max_pool2d_and_its_module_give_pytorchs_values_and_indices(kernel, stride, padding, dilation, ceil):
    torch = pytest.importorskip("torch")
    x = spaced(2, 3, 11, 12)
    y, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil, return_indices=True)
    ty, tindices = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation, ceil,
                                                  return_indices=True)
    np.testing.assert_array_equal(y.data, ty.numpy())
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    assert indices.dtype == np.int64
    layer = nn.MaxPool2d(kernel, stride, padding, dilation, return_indices=True, ceil_mode=ceil)
    np.testing.assert_array_equal(layer(Tensor(x))[1].data, tindices.numpy())
    np.testing.assert_array_equal(nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil)(Tensor(x)).data,
                                  ty.numpy())


def test_softplus_gradient_at_zero_is_a_half_and_erf_is_scipys():
    x = Tensor(np.array([0.0, -700.0, 700.0]), requires_grad=True)
    F.softplus(x, 2.0).sum().backward()  # the two sides' forms meet at 0 without a kink
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.0, 1.0])
    z = rng.standard_normal(50).astype(np.float32) * 3
    assert tc.erf(Tensor(z)).dtype == np.float32 and tc.tensor([1, 2]).erf().dtype == np.float32
    np.testing.assert_allclose(tc.erf(Tensor(z)).data, scipy.special.erf(z), rtol=1e-6)


def test_one_image_without_a_batch_axis_as_pytorchs():
    torch = pytest.importorskip("torch")
    x, w, wt = spaced(3, 6, 6), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((3, 2, 3, 3))
    cases = [(lambda lib, x, w: lib.nn.functional.conv2d(x, w, padding=1, stride=2), w),
             (lambda lib, x, w: lib.nn.functional.conv2d(x, w[:3, :1], groups=3), w),
             (lambda lib, x, w: lib.nn.functional.conv_transpose2d(x, w, stride=2), wt)]
    for fn, weight in cases:
        mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = fn(tc, mine, Tensor(weight)), fn(torch, theirs, torch.tensor(weight))
        assert y.shape == tuple(ty.shape) and y.ndim == 3
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        y.sum().backward(), ty.sum().backward()
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    conv = nn.Conv2d(3, 4, 3, dtype=np.float64)
    np.testing.assert_array_equal(conv(Tensor(x)).data, conv(Tensor(x[None])).data[0])


def test_avg_pool2d_with_pytorchs_options():
    torch = pytest.importorskip("torch")
    import itertools

    grid = itertools.product([5, 6], [4, 7], [2, 3], [1, 2, 3], [0, 1], [False, True], [True, False], [None, 3])
    checked = 0
    for height, width, k, s, p, ceil_mode, count_include_pad, divisor in grid:
        if p > k // 2:
            continue
        x = rng.standard_normal((2, 3, height, width))
        mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y = F.avg_pool2d(mine, k, s, p, ceil_mode, count_include_pad, divisor)
        ty = torch.nn.functional.avg_pool2d(theirs, k, s, p, ceil_mode, count_include_pad, divisor)
        assert y.shape == tuple(ty.shape), (height, width, k, s, p, ceil_mode)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
        upstream = rng.standard_normal(y.shape)
        y.backward(Tensor(upstream)), ty.backward(torch.tensor(upstream))
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)
        checked += 1
    assert checked > 200
    layer = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
    x = rng.standard_normal((1, 2, 6, 6))
    np.testing.assert_allclose(layer(Tensor(x)).data, torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)(
        torch.tensor(x)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4), (1, 2, 2, 4)])
def test_softmax_without_a_dim_takes_pytorchs_implicit_one_and_warns(shape):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        mine = nn.Softmax()(Tensor(x)).data
    with pytest.warns(UserWarning):
        theirs = torch.nn.Softmax()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    with pytest.warns(UserWarning, match="log_softmax"):
        mine = F.log_softmax(Tensor(x)).data
    with pytest.warns(UserWarning):
        theirs = torch.nn.functional.log_softmax(torch.tensor(x)).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)
