"""Weight averaging (optim.swa_utils): the averages against their closed forms in numpy, and
AveragedModel, update_bn and SWALR side by side with torch.optim.swa_utils (behind importorskip)."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.optim import swa_utils


def small_net(seed=0):
    return nn.Sequential(nn.Conv2d(2, 3, 3, rng=seed), nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 2, rng=seed)).to(np.float64)


def visit(model, rng):
    """Give every parameter and buffer of `model` new values (a training step, as far as an
    average can tell); return them by name."""
    state = {}
    for name, tensor in model._named_tensors():
        if np.issubdtype(tensor.dtype, np.floating):
            tensor.data[...] = rng.standard_normal(tensor.shape)
        else:
            tensor.data[...] = rng.integers(0, 100, tensor.shape)
        state[name] = tensor.data.copy()
    return state


AVERAGES = {  # name: (AveragedModel's keywords, the average of the states seen so far, in numpy)
    "swa default": ({}, lambda seen: np.mean(seen, axis=0)),
    "swa multi": ({"multi_avg_fn": swa_utils.get_swa_multi_avg_fn()}, lambda seen: np.mean(seen, axis=0)),
    "swa single": ({"avg_fn": swa_utils.get_swa_avg_fn()}, lambda seen: np.mean(seen, axis=0)),
    "ema multi": ({"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.9)}, lambda seen: ema(seen, 0.9)),
    "ema single": ({"avg_fn": swa_utils.get_ema_avg_fn(0.8)}, lambda seen: ema(seen, 0.8)),
    "custom": ({"avg_fn": lambda avg, cur, n: avg * 0.5 + cur * 0.5}, lambda seen: ema(seen, 0.5)),
    "custom on arrays": ({"avg_fn": lambda avg, cur, n: avg.numpy() * 0.25 + cur.numpy() * 0.75},
                         lambda seen: ema(seen, 0.25)),
}


def ema(seen, decay):
    average = seen[0]
    for state in seen[1:]:
        average = decay * average + (1 - decay) * state
    return average


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("name", list(AVERAGES))
def test_the_average_is_its_closed_form(name, use_buffers):
    keywords, closed_form = AVERAGES[name]
    model = small_net()
    averaged = swa_utils.AveragedModel(model, use_buffers=use_buffers, **keywords)
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(4):
        seen.append(visit(model, rng))
        averaged.update_parameters(model)
    assert int(averaged.n_averaged.item()) == 4
    for key, tensor in averaged.module._named_tensors():
        values = [state[key] for state in seen]
        if tensor.requires_grad or (use_buffers and np.issubdtype(tensor.dtype, np.floating)):
            np.testing.assert_allclose(tensor.data, closed_form(values), rtol=1e-12, atol=1e-12)
        elif not use_buffers:  # buffers follow the model's
            np.testing.assert_array_equal(tensor.data, values[-1])
        assert tensor.data is not dict(model._named_tensors())[key].data  # a copy, not the model's arrays
    x = Tensor(rng.standard_normal((2, 2, 6, 6)))
    np.testing.assert_array_equal(averaged(x).data, averaged.module(x).data)


def test_the_averaged_model_is_trained_around_not_through():
    model = small_net()
    averaged = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = Tensor(np.random.default_rng(2).standard_normal((4, 2, 6, 6))), np.array([0, 1, 1, 0])
    before = [p.data.copy() for p in averaged.parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    for p, b in zip(averaged.parameters(), before):  # nothing moves until update_parameters
        np.testing.assert_array_equal(p.data, b)
    averaged.update_parameters(model)
    averaged.update_parameters(model)  # the same weights again: their average is themselves
    for p, q in zip(averaged.parameters(), model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-15)


def test_update_bn_sets_the_running_statistics_to_the_plain_mean_over_the_batches():
    model = small_net().eval()
    bn = model[1]
    bn.running_mean.data[...], bn.num_batches_tracked.data[...] = 5, 7  # an earlier training's
    rng = np.random.default_rng(3)
    batches = [(Tensor(rng.standard_normal((4, 2, 6, 6)) * 2 + 1), np.zeros(4)) for _ in range(3)]
    swa_utils.update_bn(batches, model)
    assert not model.training and bn.momentum == 0.1 and int(bn.num_batches_tracked.item()) == 3
    conv_out = [model[0](x).data for x, _ in batches]
    np.testing.assert_allclose(bn.running_mean.data, np.mean([z.mean(axis=(0, 2, 3)) for z in conv_out], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, np.mean([z.var(axis=(0, 2, 3), ddof=1) for z in conv_out], axis=0),
                               rtol=1e-12)


@pytest.mark.parametrize("call, error", [
    (lambda: swa_utils.AveragedModel(small_net(), avg_fn=swa_utils.get_swa_avg_fn(),
                                     multi_avg_fn=swa_utils.get_swa_multi_avg_fn()), ValueError),
    (lambda: swa_utils.AveragedModel("model"), TypeError),
    (lambda: swa_utils.AveragedModel(small_net(), avg_fn=3), TypeError),
    (lambda: swa_utils.get_ema_multi_avg_fn(1.5), ValueError),
    (lambda: swa_utils.get_ema_avg_fn(-0.1), ValueError),
    (lambda: swa_utils.get_ema_avg_fn("0.9"), TypeError),
    (lambda: swa_utils.AveragedModel(small_net()).update_parameters(nn.Linear(2, 2)), ValueError),
    (lambda: swa_utils.AveragedModel(nn.Linear(2, 2)).update_parameters(  # same parameters, a buffer more
        nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, affine=False))), ValueError),
    (lambda: swa_utils.AveragedModel(small_net(), device="cuda"), ValueError),
    (lambda: swa_utils.update_bn([], small_net(), device="cuda"), ValueError),
    (lambda: swa_utils.SWALR(optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1), 0.1,
                             anneal_strategy="exp"), ValueError),
    (lambda: swa_utils.SWALR(optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1), 0.1,
                             anneal_epochs=-1), ValueError),
    (lambda: swa_utils.SWALR(optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1), [0.1, 0.2]), ValueError),
    (lambda: swa_utils.SWALR("optimizer", 0.1), TypeError),
])
def test_bad_arguments_are_named(call, error):
    with pytest.raises(error):
        call()


# ---- side by side with PyTorch ------------------------------------------------------------------
def torch_twin(model, torch):
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(3 * 4 * 4, 2)).double()
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return twin


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("kind", ["swa", "ema"])
def test_averaged_model_as_pytorchs(kind, use_buffers):
    torch = pytest.importorskip("torch")
    model = small_net()
    twin = torch_twin(model, torch)
    ours = swa_utils.AveragedModel(model, use_buffers=use_buffers,
                                   multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.7) if kind == "ema" else None)
    theirs = torch.optim.swa_utils.AveragedModel(
        twin, use_buffers=use_buffers,
        multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.7) if kind == "ema" else None)
    assert [name for name, _ in model.named_buffers()] == [name for name, _ in twin.named_buffers()]
    rng = np.random.default_rng(4)
    for _ in range(5):
        state = visit(model, rng)
        twin.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        ours.update_parameters(model)
        theirs.update_parameters(twin)
    mine, its = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(its)  # n_averaged first, then module.*
    for key in mine:
        np.testing.assert_allclose(mine[key], its[key].numpy(), rtol=1e-12, atol=1e-12, err_msg=key)


def test_update_bn_as_pytorchs():
    torch = pytest.importorskip("torch")
    model = small_net()
    twin = torch_twin(model, torch)
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((4, 2, 6, 6)) * 3 - 1 for _ in range(3)]
    swa_utils.update_bn([(Tensor(x), 0) for x in inputs], model)
    torch.optim.swa_utils.update_bn([(torch.tensor(x), 0) for x in inputs], twin)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, twin.state_dict()[key].numpy(), rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_made_at_the_start_takes_over_from_the_lr_another_schedule_left(strategy):
    # PyTorch's SWA recipe: both schedules made before training, the cosine one stepped until
    # SWA starts; SWALR's ramp starts from the lr the cosine left, not from the one it saw when made
    torch = pytest.importorskip("torch")
    w, tw = Tensor(np.ones(2), requires_grad=True), torch.ones(2, requires_grad=True)
    opt, topt = optim.SGD([w], lr=0.1, momentum=0.9), torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    cosine, tcosine = (optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20),
                       torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=20))
    swa = swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=3, anneal_strategy=strategy)
    tswa = torch.optim.swa_utils.SWALR(topt, swa_lr=0.05, anneal_epochs=3, anneal_strategy=strategy)
    lrs, tlrs = [], []
    for epoch in range(12):
        opt.step(), topt.step()
        if epoch > 5:
            swa.step(), tswa.step()
        else:
            cosine.step(), tcosine.step()
        lrs.append(opt.param_groups[0]["lr"]), tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12)
    assert lrs[6] < lrs[5]  # the ramp went down from the cosine's lr, not up to the first one


@pytest.mark.parametrize("anneal_epochs", [0, 1, 4])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_as_pytorchs(strategy, anneal_epochs):
    torch = pytest.importorskip("torch")
    w, tw = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)], \
        [torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)]
    opt = optim.SGD([{"params": [w[0]]}, {"params": [w[1]], "lr": 0.3}], lr=0.5)
    topt = torch.optim.SGD([{"params": [tw[0]]}, {"params": [tw[1]], "lr": 0.3}], lr=0.5)
    cosine, tcosine = (optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
                       torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10))
    for _ in range(3):  # a first phase: SWALR starts from the lr it leaves
        opt.step(), topt.step(), cosine.step(), tcosine.step()
    swa = swa_utils.SWALR(opt, [0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    tswa = torch.optim.swa_utils.SWALR(topt, [0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    np.testing.assert_allclose(swa.get_last_lr(), tswa.get_last_lr(), rtol=1e-12)
    for _ in range(7):
        opt.step(), topt.step(), swa.step(), tswa.step()
        np.testing.assert_allclose(swa.get_last_lr(), tswa.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups],
                                   rtol=1e-12)
