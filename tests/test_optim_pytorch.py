"""Optimizers with parameter groups, AdamW, RMSprop and the learning-rate schedules, stepped
side by side with torch.optim over several steps (behind importorskip)."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import lr_scheduler

torch = pytest.importorskip("torch")
rng = np.random.default_rng(8)
W = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
GRADS = [[rng.standard_normal(w.shape) for w in W] for _ in range(12)]


def twins(make_ours, make_theirs, groups):
    ours = [Tensor(w.copy(), requires_grad=True) for w in W]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in W]
    spec = (lambda ps: [{"params": [ps[0]], **groups[0]}, {"params": [ps[1]], **groups[1]}]) if groups else list
    return ours, theirs, make_ours(spec(ours)), make_theirs(spec(theirs))


def run(ours, theirs, opt, topt, sched=None, tsched=None, steps=10):
    for step in range(steps):
        for p, t, g in zip(ours, theirs, GRADS[step]):
            p.grad, t.grad = Tensor(g.copy()), torch.tensor(g.copy())
        opt.step()
        topt.step()
        if sched is not None:
            sched.step()
            tsched.step()
            np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)


OPTIMIZERS = {
    "SGD groups": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                   [{"lr": 0.05, "weight_decay": 0.1}, {"nesterov": True}]),
    "Adam groups": (lambda ps: optim.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01),
                    [{"betas": (0.8, 0.99)}, {"weight_decay": 0.2, "lr": 0.02}]),
    "AdamW": (lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.3),
              lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.3), None),
    "AdamW default decay": (lambda ps: optim.AdamW(ps), lambda ps: torch.optim.AdamW(ps), None),
    "RMSprop": (lambda ps: optim.RMSprop(ps, lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01), None),
    "RMSprop momentum decay": (lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1),
                               lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5,
                                                              weight_decay=0.1), None),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_step_as_torch(name):
    make_ours, make_theirs, groups = OPTIMIZERS[name]
    run(*twins(make_ours, make_theirs, groups))


def test_param_groups_are_pytorchs_dicts_and_lr_sets_every_group():
    ours, _, opt, topt = twins(*OPTIMIZERS["SGD groups"])
    assert [sorted(g) for g in opt.param_groups] == [sorted(set(g) - {"foreach", "differentiable", "fused"})
                                                     for g in topt.param_groups]
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[1]["lr"] == 0.1 and opt.lr == 0.05
    opt.lr = 0.2
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    resumed = optim.SGD([{"params": [Tensor(W[0].copy(), requires_grad=True)]},
                         {"params": [Tensor(W[1].copy(), requires_grad=True)], "nesterov": True, "momentum": 0.9}],
                        lr=1.0, momentum=0.9)
    resumed.load_state_dict(opt.state_dict())
    assert [g["weight_decay"] for g in resumed.param_groups] == [0.1, 0.0]
    with pytest.raises(ValueError, match="parameter group 0 needs 'params'"):
        optim.SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        optim.SGD([{"params": ours[:1], "nesterov": True}], lr=0.1)


SCHEDULES = {
    "StepLR": (lambda o: lr_scheduler.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    "MultiStepLR": (lambda o: lr_scheduler.MultiStepLR(o, [2, 5], 0.3),
                    lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.3)),
    "ExponentialLR": (lambda o: lr_scheduler.ExponentialLR(o, 0.8),
                      lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)),
    "CosineAnnealingLR": (lambda o: lr_scheduler.CosineAnnealingLR(o, 7, 0.001),
                          lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.001)),
    "LinearLR": (lambda o: lr_scheduler.LinearLR(o, 0.2, 1.0, 4), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.2, 1.0, 4)),
    "LambdaLR": (lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
                 lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e))),
    "OneCycleLR": (lambda o: lr_scheduler.OneCycleLR(o, 0.5, total_steps=10),
                   lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=10)),
    "OneCycleLR three phases linear": (
        lambda o: lr_scheduler.OneCycleLR(o, [0.5, 0.2], epochs=2, steps_per_epoch=5, three_phase=True,
                                          anneal_strategy="linear"),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, [0.5, 0.2], epochs=2, steps_per_epoch=5, three_phase=True,
                                                      anneal_strategy="linear")),
    "SequentialLR": (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(o, 0.1, total_iters=3),
                                                             lr_scheduler.CosineAnnealingLR(o, 6)], [3]),
                     lambda o: torch.optim.lr_scheduler.SequentialLR(
                         o, [torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=3),
                             torch.optim.lr_scheduler.CosineAnnealingLR(o, 6)], [3])),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("kind", ["SGD groups", "Adam groups"])
def test_schedules_step_as_torch(name, kind):
    make_ours, make_theirs = SCHEDULES[name]
    ours, theirs, opt, topt = twins(*OPTIMIZERS[kind])
    sched, tsched = make_ours(opt), make_theirs(topt)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
    run(ours, theirs, opt, topt, sched, tsched, steps=9)
    momenta = [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]
    theirs_momenta = [g.get("momentum", g.get("betas", (None,))[0]) for g in topt.param_groups]
    np.testing.assert_allclose(momenta, theirs_momenta, rtol=1e-12)


def test_a_schedule_resumes_from_its_state_dict():
    ours = [Tensor(w.copy(), requires_grad=True) for w in W]
    opt = optim.SGD(ours, lr=0.1)
    sched = lr_scheduler.StepLR(opt, 2, 0.5)
    for _ in range(5):
        opt.step()
        sched.step()
    other_opt = optim.SGD([Tensor(w.copy(), requires_grad=True) for w in W], lr=0.1)
    other = lr_scheduler.StepLR(other_opt, 2, 0.5)
    other.load_state_dict(sched.state_dict())
    assert other_opt.lr == 0.1  # the lr is the optimizer's to restore, as PyTorch's
    other_opt.load_state_dict(opt.state_dict())
    assert other.get_last_lr() == sched.get_last_lr() == [0.025] and other_opt.lr == 0.025
    for _ in range(3):
        opt.step(), sched.step(), other_opt.step(), other.step()
        assert other_opt.lr == opt.lr


def test_a_schedule_made_with_last_epoch_resumes_from_the_optimizers_state_dict():
    # resuming as PyTorch's docs do: the optimizer's state dict carries each group's initial_lr,
    # from which a schedule made with last_epoch continues
    def trained(make_opt, make_sched, params, module):
        opt = make_opt(params)
        sched = make_sched(opt, -1)
        for _ in range(5):
            opt.step(), sched.step()
        again = make_opt([module(w.copy(), requires_grad=True) for w in W])
        again.load_state_dict(opt.state_dict())
        resumed = make_sched(again, 4)
        lrs = []
        for _ in range(4):
            again.step(), resumed.step()
            lrs.append(resumed.get_last_lr()[0])
        return lrs

    ours = trained(lambda ps: optim.SGD(ps, lr=0.1), lambda o, last: lr_scheduler.StepLR(o, 2, 0.5, last_epoch=last),
                   [Tensor(w.copy(), requires_grad=True) for w in W], Tensor)
    theirs = trained(lambda ps: torch.optim.SGD(ps, lr=0.1),
                     lambda o, last: torch.optim.lr_scheduler.StepLR(o, 2, 0.5, last_epoch=last),
                     [torch.tensor(w.copy(), requires_grad=True) for w in W], torch.tensor)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[0] < 0.05  # not restarted from the optimizer's lr at the time


COMPOSED = {  # two schedules on one optimizer, or an lr set by hand between steps (at step 2)
    "warm-up then decay": (lambda T, o: [T.LinearLR(o, start_factor=0.1, total_iters=3), T.MultiStepLR(o, [4], 0.1)],
                           False),
    "exponential and cosine": (lambda T, o: [T.ExponentialLR(o, 0.9), T.CosineAnnealingLR(o, 10)], False),
    "linear to 0 and step": (lambda T, o: [T.LinearLR(o, 1.0, 0.0, 4), T.StepLR(o, 2, 0.5)], False),
    "StepLR after a hand-set lr": (lambda T, o: [T.StepLR(o, 3, 0.5)], True),
    "MultiStepLR after a hand-set lr": (lambda T, o: [T.MultiStepLR(o, [3, 5], 0.5)], True),
    "ExponentialLR after a hand-set lr": (lambda T, o: [T.ExponentialLR(o, 0.8)], True),
    "LinearLR after a hand-set lr": (lambda T, o: [T.LinearLR(o, 0.5, 1.0, 4)], True),
    "CosineAnnealingLR after a hand-set lr, past T_max": (lambda T, o: [T.CosineAnnealingLR(o, 6, eta_min=0.001)],
                                                          True),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_schedules_compose_and_follow_a_hand_set_lr_as_pytorchs(name):
    make, by_hand = COMPOSED[name]

    def lrs(params, opt_class, schedules):
        opt = opt_class(params, lr=0.1)
        stepped = make(schedules, opt)
        out = []
        for step in range(25):
            opt.step()
            for schedule in stepped:
                schedule.step()
            if by_hand and step == 1:
                opt.param_groups[0]["lr"] = 0.01
            out.append(opt.param_groups[0]["lr"])
        return out

    ours = lrs([Tensor(W[0].copy(), requires_grad=True)], optim.SGD, lr_scheduler)
    theirs = lrs([torch.tensor(W[0].copy(), requires_grad=True)], torch.optim.SGD, torch.optim.lr_scheduler)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)


def test_an_undisturbed_schedule_sets_its_closed_form_exactly():
    opt = optim.SGD([Tensor(W[0].copy(), requires_grad=True)], lr=0.1)
    cosine = lr_scheduler.CosineAnnealingLR(opt, 7, eta_min=0.003)
    for step in range(1, 20):
        opt.step(), cosine.step()
        assert opt.param_groups[0]["lr"] == cosine.lr_at(0, step)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_add_param_group_zero_grad_and_a_closure_as_pytorchs(kind):
    def run(lib, module):
        first, second = (module(w.copy(), requires_grad=True) for w in W)
        make = {"SGD": lambda ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9), "Adam": lambda ps: lib.optim.Adam(ps, lr=0.01)}
        opt = make[kind]([first])
        losses = []
        for step in range(8):
            if step == 3:  # a layer unfrozen mid-training, with its own lr
                opt.add_param_group({"params": [second], "lr": 0.05})

            def closure():
                opt.zero_grad(set_to_none=False)
                loss = (first * first).sum() + (second * second * 3.0).sum()
                loss.backward()
                return loss

            losses.append(opt.step(closure).item())
        return [p.detach().numpy() for p in (first, second)], losses

    import tinygrad_cnn
    (ours, our_losses), (theirs, their_losses) = run(tinygrad_cnn, Tensor), run(torch, torch.tensor)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_group_added_after_a_schedule_is_stepped_as_pytorchs():
    def lrs(lib, module):
        first, second = (module(w.copy(), requires_grad=True) for w in W)
        opt = lib.optim.SGD([first], lr=0.1)
        schedule = (lib.optim.lr_scheduler if lib is torch else lr_scheduler).StepLR(opt, 2, 0.5)
        opt.add_param_group({"params": [second], "lr": 0.3})
        out = []
        for _ in range(5):
            opt.step(), schedule.step()
            out.append([group["lr"] for group in opt.param_groups])
        return out

    import tinygrad_cnn
    np.testing.assert_allclose(lrs(tinygrad_cnn, Tensor), lrs(torch, torch.tensor), rtol=1e-12)


RESUMED = {  # (schedules, when the lr is set by hand, to what, after which step the run is resumed)
    "exponential then cosine with eta_min": (lambda T, o: [T.ExponentialLR(o, 0.9), T.CosineAnnealingLR(o, 3, 0.01)],
                                             None, None, None),
    "cosine set by hand at its bottom": (lambda T, o: [T.CosineAnnealingLR(o, 3, eta_min=0.01)], 2, 0.05, None),
    "two cosines": (lambda T, o: [T.CosineAnnealingLR(o, 4), T.CosineAnnealingLR(o, 7, eta_min=0.001)],
                    None, None, None),
    "SequentialLR resumed": (lambda T, o: [T.SequentialLR(o, [T.LinearLR(o, 0.1, total_iters=3),
                                                              T.ExponentialLR(o, 0.5)], [3])], None, None, 5),
    "warm-up beside decay, resumed": (lambda T, o: [T.LinearLR(o, 0.25, total_iters=5), T.ExponentialLR(o, 0.9)],
                                      None, None, 3),
    "StepLR set by hand, resumed": (lambda T, o: [T.StepLR(o, 3, 0.5)], 1, 0.02, 4),
    "OneCycleLR resumed": (lambda T, o: [T.OneCycleLR(o, 0.5, total_steps=30)], None, None, 7),
    "CosineAnnealingLR resumed": (lambda T, o: [T.CosineAnnealingLR(o, 8, eta_min=0.003)], None, None, 3),
}


@pytest.mark.parametrize("name", list(RESUMED))
def test_schedules_across_their_bottoms_and_a_resume_as_pytorchs(name):
    make, by_hand_at, by_hand, resume_after = RESUMED[name]

    def lrs(lib, schedules, module):
        def fresh():
            opt = lib.optim.SGD([module(W[0].copy(), requires_grad=True)], lr=0.1)
            return opt, make(schedules, opt)

        opt, stepped = fresh()
        out = []
        for step in range(20):
            opt.step()
            for schedule in stepped:
                schedule.step()
            if step == by_hand_at:
                opt.param_groups[0]["lr"] = by_hand
            if step == resume_after:  # PyTorch's documented resume: fresh objects, then their state dicts
                states = opt.state_dict(), [schedule.state_dict() for schedule in stepped]
                opt, stepped = fresh()
                opt.load_state_dict(states[0])
                for schedule, state in zip(stepped, states[1]):
                    schedule.load_state_dict(state)
            out.append(opt.param_groups[0]["lr"])
        return out

    import tinygrad_cnn
    ours = lrs(tinygrad_cnn, lr_scheduler, Tensor)
    theirs = lrs(torch, torch.optim.lr_scheduler, torch.tensor)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
