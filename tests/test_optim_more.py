"""Adagrad; SGD's dampening and maximize; Adam's and AdamW's amsgrad and maximize; RMSprop's
centered and maximize; ReduceLROnPlateau, CosineAnnealingWarmRestarts and ChainedScheduler:
stepped side by side with torch.optim (behind importorskip) on float64 parameters, through a
state-dict resume, and their argument checks."""
import traceback
import warnings

import numpy as np
import pytest
from helpers import frames_inside_the_checks

from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import lr_scheduler

torch = pytest.importorskip("torch")
T = torch.optim.lr_scheduler
rng = np.random.default_rng(13)
W = [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((2, 2))]
STEPS, RESUME = 30, 12


def gradient(step, i, w):
    """A fixed pseudo-random gradient plus a pull toward 0.3, so that it depends on the weights."""
    return np.random.default_rng([step, i]).standard_normal(w.shape) + 0.5 * (w - 0.3)


def skipped(step, i):
    return i == 2 and (step < 4 or step % 5 == 0)  # a parameter that joins late and then misses steps


# (ours, torch's, the groups: parameters 0 and 1 in the first, 2 in the second with its own settings)
OPTIMIZERS = {
    "Adagrad": (optim.Adagrad, torch.optim.Adagrad, {}, {}),
    "Adagrad all options": (optim.Adagrad, torch.optim.Adagrad,
                            dict(lr=0.05, lr_decay=0.02, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6),
                            dict(lr=0.2, maximize=True, weight_decay=0.0, lr_decay=0.5)),
    "Adagrad group's initial_accumulator_value": (optim.Adagrad, torch.optim.Adagrad,
                                                  dict(initial_accumulator_value=0.5),
                                                  dict(initial_accumulator_value=2.0)),
    "SGD dampening": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1),
                      dict(dampening=0.0, nesterov=True, maximize=True)),
    "SGD maximize": (optim.SGD, torch.optim.SGD, dict(lr=0.02, maximize=True), dict(weight_decay=0.2)),
    "SGD dampening 1": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.5, dampening=1.0), dict(momentum=0.0)),
    "Adam amsgrad": (optim.Adam, torch.optim.Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.1),
                     dict(betas=(0.5, 0.9), maximize=True, amsgrad=False)),
    "Adam maximize": (optim.Adam, torch.optim.Adam, dict(lr=0.01, maximize=True), dict(amsgrad=True)),
    "AdamW amsgrad maximize": (optim.AdamW, torch.optim.AdamW, dict(lr=0.03, amsgrad=True, maximize=True),
                               dict(weight_decay=0.3, maximize=False)),
    "RMSprop centered": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True, weight_decay=0.1),
                         dict(momentum=0.7, alpha=0.3, maximize=True)),
    "RMSprop centered momentum maximize": (optim.RMSprop, torch.optim.RMSprop,
                                           dict(lr=0.005, centered=True, momentum=0.5, maximize=True, alpha=0.9),
                                           dict(centered=False, momentum=0.0)),
}


def make(name, params):
    ours, theirs, defaults, group = OPTIMIZERS[name]
    cls = ours if isinstance(params[0], Tensor) else theirs
    lr = {} if "lr" in defaults else {"lr": 0.01} if cls in (optim.SGD, torch.optim.SGD) else {}
    return cls([{"params": params[:2]}, {"params": params[2:], **group}], **lr, **defaults)


def set_gradients(step, ours, theirs):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        g = None if skipped(step, i) else gradient(step, i, t.detach().numpy())
        p.grad, t.grad = (None, None) if g is None else (Tensor(g.copy()), torch.tensor(g))


def buffers_by_parameter(opt):
    """{parameter index: {buffer or counter name: array}} from our state dict."""
    found = {}
    for key, value in opt.state_dict().items():
        name, _, index = key.rpartition(".")
        if index.isdigit() and not name.startswith("param_groups"):
            found.setdefault(int(index), {})[name] = value
    return found


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_step_and_resume_as_torchs(name):
    ours = [Tensor(w.copy(), requires_grad=True) for w in W]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in W]
    opt, topt = make(name, ours), make(name, theirs)
    resumed = copies = None
    for step in range(STEPS):
        set_gradients(step, ours, theirs)
        if copies is not None:
            for p, q in zip(ours, copies):
                q.grad = p.grad
            resumed.step()
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=f"step {step}")
        if copies is not None:
            assert all(p.data.tobytes() == q.data.tobytes() for p, q in zip(ours, copies)), f"step {step}"
        if step == RESUME:  # a fresh optimizer, built with another lr, over copies of the weights
            state = opt.state_dict()
            copies = [Tensor(p.data.copy(), requires_grad=True) for p in ours]
            resumed = make(name, copies)
            resumed.lr = 7.0
            resumed.load_state_dict(state)
            assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in opt.param_groups]
    assert all(not np.allclose(p.data, w) for p, w in zip(ours, W)), "a parameter never moved: a vacuous case"
    # the same per-parameter state as torch's, under torch's names
    mine = buffers_by_parameter(opt)
    for i, t in enumerate(theirs):
        expected = {key for key in topt.state[t] if not (key == "step" and name.startswith("RMSprop"))}
        assert set(mine.get(i, {})) == expected, i
        for key, value in topt.state[t].items():
            if key in mine.get(i, {}):
                np.testing.assert_allclose(mine[i][key], value.numpy(), rtol=1e-12, atol=1e-13, err_msg=f"{key}.{i}")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_groups_hold_torchs_keys(name):
    opt = make(name, [Tensor(w.copy(), requires_grad=True) for w in W])
    topt = make(name, [torch.tensor(w.copy(), requires_grad=True) for w in W])
    internal = {"foreach", "differentiable", "fused", "capturable", "decoupled_weight_decay"}
    assert [sorted(g) for g in opt.param_groups] == [sorted(set(g) - internal) for g in topt.param_groups]
    for ours, theirs in zip(opt.param_groups, topt.param_groups):
        assert {k: ours[k] for k in ours if k != "params"} == {k: theirs[k] for k in ours if k != "params"}


def test_adagrad_by_hand():
    """w0 = 1, ∂C/∂w = 1 at every step, lr = 1/2, initial_accumulator_value = 3, eps = 0:
    the sums are 4, 5 and the steps 1/2 · 1/2, then 1/2 /(1 + 1/2) · 1/√5 with lr_decay 1/2."""
    w = Tensor(np.ones(1), requires_grad=True)
    opt = optim.Adagrad([w], lr=0.5, lr_decay=0.5, initial_accumulator_value=3.0, eps=0.0)
    w.grad = Tensor(np.ones(1))
    opt.step()
    assert w.data[0] == 0.75
    opt.step()
    assert w.data[0] == pytest.approx(0.75 - 0.5 / 1.5 / 5 ** 0.5, rel=1e-15)
    assert opt.state_dict()["sum.0"][0] == 5.0 and opt.state_dict()["step.0"] == 2
    assert (opt.lr, opt.lr_decay, opt.eps, opt.maximize) == (0.5, 0.5, 0.0, False)


def test_sgd_takes_torchs_argument_order():
    w, t = Tensor(W[1].copy(), requires_grad=True), torch.tensor(W[1].copy(), requires_grad=True)
    opt, topt = optim.SGD([w], 0.1, 0.9, 0.2, 0.05), torch.optim.SGD([t], 0.1, 0.9, 0.2, 0.05)
    assert (opt.momentum, opt.dampening, opt.weight_decay, opt.nesterov) == (0.9, 0.2, 0.05, False)
    for step in range(3):
        w.grad, t.grad = Tensor(gradient(step, 0, W[1])), torch.tensor(gradient(step, 0, W[1]))
        opt.step(), topt.step()
    np.testing.assert_allclose(w.data, t.detach().numpy(), rtol=1e-13)


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_state_dict_saved_before_the_new_options_loads_with_their_defaults(kind):
    """A checkpoint of an older version holds no dampening, maximize, amsgrad or centered (and
    RMSprop's momentum buffer even without momentum): it loads, as the options' defaults."""
    make_opt = {"SGD": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                "Adam": lambda ps: optim.Adam(ps, lr=0.1), "AdamW": lambda ps: optim.AdamW(ps, lr=0.1),
                "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.1)}[kind]
    ps = [Tensor(w.copy(), requires_grad=True) for w in W]
    opt = make_opt(ps)
    for step in range(3):
        set_gradients(step, ps, [torch.tensor(w) for w in W])
        opt.step()
    old = {key: value for key, value in opt.state_dict().items()
           if key.rpartition(".")[2] not in ("dampening", "maximize", "amsgrad", "centered")
           and key not in ("dampening", "maximize", "amsgrad", "centered")}
    assert len(old) < len(opt.state_dict())
    if kind == "RMSprop":
        old.update({f"momentum_buffer.{i}": np.zeros_like(w) for i, w in enumerate(W) if f"square_avg.{i}" in old})
    flipped = {"SGD": dict(dampening=0.5, maximize=True), "Adam": dict(amsgrad=True, maximize=True),
               "AdamW": dict(amsgrad=True, maximize=True), "RMSprop": dict(centered=True, maximize=True)}[kind]
    other = make_opt([Tensor(w.copy(), requires_grad=True) for w in W])
    for key, value in flipped.items():
        setattr(other, key, value)
    other.load_state_dict(old)
    for key, value in flipped.items():
        assert getattr(other, key) == type(value)(0), key


def test_a_state_dict_that_lacks_the_amsgrad_maximum_raises_and_changes_nothing():
    ps = [Tensor(w.copy(), requires_grad=True) for w in W]
    opt = optim.Adam(ps, lr=0.1, amsgrad=True)
    set_gradients(5, ps, [torch.tensor(w) for w in W])
    opt.step()
    state = opt.state_dict()
    del state["max_exp_avg_sq.1"]
    target = optim.Adam([Tensor(w.copy(), requires_grad=True) for w in W], lr=0.5)
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"missing \['max_exp_avg_sq\.1'\]"):
        target.load_state_dict(state)
    after = target.state_dict()
    assert list(after) == list(before) and not target.amsgrad and target.lr == 0.5
    state["amsgrad"] = np.asarray(0.0)  # without amsgrad the maximum is not needed
    target.load_state_dict(state)
    assert target.lr == 0.1 and not target.amsgrad


BLOCKWISE = {
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1),
    "sgd dampening": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5, maximize=True),
    "adam amsgrad": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    "rmsprop centered": lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
}


@pytest.mark.parametrize("kind", list(BLOCKWISE))
def test_a_large_parameter_updated_in_blocks_equals_one_pass(kind, monkeypatch):
    shape = (3, optim.BLOCK + 7)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]

    def run():
        w = Tensor(w0.copy(), requires_grad=True)
        opt = BLOCKWISE[kind]([w])
        for g in grads:
            w.grad = Tensor(g)
            opt.step()
        return w.data

    blocked = run()
    monkeypatch.setattr(optim, "BLOCK", w0.size)
    assert np.array_equal(blocked, run()) and not np.array_equal(blocked, w0)


# ---- schedules ----------------------------------------------------------------------------------
def schedule_twins(lr=0.1, second_lr=0.3):
    """An SGD of two groups, ours and torch's."""
    def sgd(lib, module):
        return lib.optim.SGD([{"params": [module(W[0].copy(), requires_grad=True)]},
                              {"params": [module(W[1].copy(), requires_grad=True)], "lr": second_lr}], lr=lr)
    import tinygrad_cnn
    return sgd(tinygrad_cnn, Tensor), sgd(torch, torch.tensor)


def lrs_of(opt):
    return [group["lr"] for group in opt.param_groups]


METRIC = [5.0, 4.0, 4.0, 4.0, 4.0, 3.9999, 3.5, 3.5, 3.6, 3.5, 3.5, 3.5, 3.4, 3.4, 3.4, 3.4, 3.4, 3.4, 3.4,
          3.0, 3.0, 3.0, 3.0, 3.0, 2.9999, 3.0, 3.0, 3.0, 3.0, 3.0]
PLATEAUS = {
    "min rel": dict(mode="min", patience=2, factor=0.5),
    "min rel cooldown": dict(mode="min", patience=1, factor=0.5, cooldown=2, threshold=1e-3),
    "min abs min_lr list": dict(mode="min", threshold_mode="abs", threshold=0.05, patience=1, cooldown=1,
                                min_lr=[0.01, 0.05], factor=0.3),
    "max rel": dict(mode="max", patience=2, factor=0.7, threshold=0.01, min_lr=0.02),
    "max abs cooldown": dict(mode="max", threshold_mode="abs", threshold=0.2, patience=0, cooldown=3, factor=0.5),
    "eps larger than the reduction": dict(patience=0, factor=0.9, eps=0.004),
}


@pytest.mark.parametrize("name", list(PLATEAUS))
def test_reduce_lr_on_plateau_steps_as_torchs(name):
    kwargs = PLATEAUS[name]
    upside_down = kwargs.get("mode") == "max"  # the same plateaus, for a metric that should grow
    opt, topt = schedule_twins()
    plateau, tplateau = lr_scheduler.ReduceLROnPlateau(opt, **kwargs), T.ReduceLROnPlateau(topt, **kwargs)
    seen = [lrs_of(opt)]
    for step, metric in enumerate(METRIC):
        value = 10.0 - metric if upside_down else metric
        plateau.step(Tensor(np.array(value)) if step % 3 == 0 else np.float64(value) if step % 3 == 1 else value)
        tplateau.step(value)
        assert plateau.get_last_lr() == tplateau.get_last_lr() == lrs_of(opt) == lrs_of(topt), step
        assert (plateau.best, plateau.num_bad_epochs, plateau.cooldown_counter, plateau.last_epoch) == (
            tplateau.best, tplateau.num_bad_epochs, tplateau.cooldown_counter, tplateau.last_epoch), step
        seen.append(lrs_of(opt))
    assert len({tuple(lrs) for lrs in seen}) >= 3, "reduced at least twice: not a vacuous case"


def test_reduce_lr_on_plateau_by_hand():
    """patience 2: the 3rd epoch in a row without improvement on the best reduces; a cooldown of 1
    then ignores one, an improvement restarts the count, and min_lr holds the second group at 0.1."""
    opt, _ = schedule_twins()
    plateau = lr_scheduler.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5, min_lr=[0.0, 0.1])
    lrs = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]:
        plateau.step(metric)
        lrs.append(lrs_of(opt))
    assert lrs == [[0.1, 0.3]] * 3 + [[0.05, 0.15]] * 7 + [[0.025, 0.1]]


def test_reduce_lr_on_plateau_resumes_from_its_state_dict():
    opt, _ = schedule_twins()
    plateau = lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=2, factor=0.5)
    for metric in METRIC[:9]:
        plateau.step(metric)
    again, _ = schedule_twins()
    resumed = lr_scheduler.ReduceLROnPlateau(again, patience=1, cooldown=2, factor=0.5)
    again.load_state_dict(opt.state_dict())
    resumed.load_state_dict(plateau.state_dict())
    assert resumed.best == 3.5 and resumed.last_epoch == 9
    for metric in METRIC[9:]:
        plateau.step(metric), resumed.step(metric)
        assert lrs_of(again) == lrs_of(opt) and resumed.get_last_lr() == plateau.get_last_lr()
    assert lrs_of(opt) != [0.1, 0.3]


COMPOSED = {  # another schedule stepping the same optimizer, before the plateau's step
    "exponential": lambda S, o: S.ExponentialLR(o, 0.95),
    "cosine": lambda S, o: S.CosineAnnealingLR(o, 8, eta_min=0.001),
    "warm restarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 4),
    "chained": lambda S, o: S.ChainedScheduler([S.StepLR(o, 4, 0.5), S.LinearLR(o, 0.2, total_iters=5)]),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_reduce_lr_on_plateau_composes_with_a_schedule_as_torchs(name):
    opt, topt = schedule_twins()
    ours, theirs = COMPOSED[name](lr_scheduler, opt), COMPOSED[name](T, topt)
    plateau, tplateau = (lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5),
                         T.ReduceLROnPlateau(topt, patience=1, factor=0.5))
    reductions = 0
    for step, metric in enumerate(METRIC):
        opt.step(), topt.step()
        ours.step(), theirs.step()
        before = lrs_of(opt)
        plateau.step(metric), tplateau.step(metric)
        reductions += lrs_of(opt) != before
        np.testing.assert_allclose(lrs_of(opt), lrs_of(topt), rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
        np.testing.assert_allclose(plateau.get_last_lr(), tplateau.get_last_lr(), rtol=1e-12, atol=1e-15)
    assert reductions >= 3, "not a vacuous case"


WARM_RESTARTS = {  # (T_0, T_mult, eta_min, the epochs given to step: None for step())
    "T_mult 1": (3, 1, 0.0, [None] * 25),
    "T_mult 2": (2, 2, 0.01, [None] * 40),
    "T_mult 3, from a resumed last_epoch": (1, 3, 0.0, [None] * 45),
    "T_mult 1, float epochs": (4, 1, 0.005, [e + i / 3 for e in range(9) for i in range(3)]),
    "T_mult 2, float epochs": (2, 2, 0.0, [e + i / 4 for e in range(16) for i in range(4)]),
    "T_mult 3 at its restarts": (1, 3, 0.0, [1, 4, 13, 40, 121, 3.5, 27.0, 80.5, 2, 12.9, 13, 39.99, 40]),
    "step() after step(epoch)": (3, 2, 0.0, [None, None, 7.5, None, None, 2, None, 20.25] + [None] * 14),
}


@pytest.mark.parametrize("name", list(WARM_RESTARTS))
def test_cosine_annealing_warm_restarts_as_torchs(name):
    T_0, T_mult, eta_min, epochs = WARM_RESTARTS[name]  # noqa: N806
    opt, topt = schedule_twins()
    ours, theirs = (lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min),
                    T.CosineAnnealingWarmRestarts(topt, T_0, T_mult, eta_min))
    assert ours.get_last_lr() == theirs.get_last_lr() == [0.1, 0.3]
    restarts, place = 0, ours.T_cur
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's: step(epoch) is deprecated (and the step order)
        for step, epoch in enumerate(epochs):
            ours.step(epoch), theirs.step(epoch)
            np.testing.assert_allclose(lrs_of(opt), lrs_of(topt), rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
            assert (ours.T_cur, ours.T_i, ours.last_epoch) == (theirs.T_cur, theirs.T_i, theirs.last_epoch), step
            restarts, place = restarts + (ours.T_cur < place), ours.T_cur  # back to a cycle's start
            if step == 5:  # a resume: fresh objects, then the state dicts
                states = opt.state_dict(), ours.state_dict()
                opt, _ = schedule_twins(lr=9.0)
                ours = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min)
                opt.load_state_dict(states[0]), ours.load_state_dict(states[1])
    assert restarts >= 2, "went back at least twice: not a vacuous case"


def test_cosine_annealing_warm_restarts_by_hand():
    """T_0 = 2, T_mult = 2: cycles of 2, 4, 8 epochs, restarting at epochs 2, 6 and 14."""
    opt, _ = schedule_twins(lr=1.0)
    sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, 2, T_mult=2)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(14):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert [epoch for epoch, lr in enumerate(lrs) if lr == 1.0] == [0, 2, 6, 14]
    assert lrs[1] == pytest.approx(0.5) and lrs[4] == pytest.approx(0.5) and lrs[10] == pytest.approx(0.5)
    sched.step(3.0)  # halfway through the second cycle (epochs 2 to 6)
    assert sched.get_last_lr()[0] == pytest.approx((1 + np.cos(np.pi / 4)) / 2) and sched.last_epoch == 3


def test_cosine_annealing_warm_restarts_made_with_last_epoch_as_torchs():
    def lrs(S, o):
        for group in o.param_groups:
            group["initial_lr"] = group["lr"]
        sched = S.CosineAnnealingWarmRestarts(o, 3, eta_min=0.01, last_epoch=4)
        out = [lrs_of(o)]
        for _ in range(6):
            o.step(), sched.step()
            out.append(lrs_of(o))
        return out

    opt, topt = schedule_twins()
    np.testing.assert_allclose(lrs(lr_scheduler, opt), lrs(T, topt), rtol=1e-12)


def test_warm_restarts_inside_a_sequential_lr_resume_as_torchs():
    """A SequentialLR's state holds its schedules' own: warm restarts resume mid-cycle."""
    def lrs(S, opt, again):
        def make(o):
            return S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=3), S.CosineAnnealingWarmRestarts(o, 3, 2)], [3])
        sequential, out = make(opt), []
        for step in range(25):
            opt.step(), sequential.step()
            if step == 8:  # a resume: fresh objects, then the state dicts
                states = opt.state_dict(), sequential.state_dict()
                opt = again
                sequential = make(opt)
                opt.load_state_dict(states[0]), sequential.load_state_dict(states[1])
            out.append(lrs_of(opt))
        return out

    (opt, topt), (again, tagain) = schedule_twins(), schedule_twins()
    ours, theirs = lrs(lr_scheduler, opt, again), lrs(T, topt, tagain)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert len({tuple(lr) for lr in ours[9:]}) > 5


CHAINED = {
    "exponential and step": lambda S, o: [S.ExponentialLR(o, 0.9), S.StepLR(o, 3, 0.5)],
    "warm-up and cosine": lambda S, o: [S.LinearLR(o, 0.1, total_iters=4), S.CosineAnnealingLR(o, 10, eta_min=0.001)],
    "exponential, then warm restarts over it": lambda S, o: [S.ExponentialLR(o, 0.9),
                                                             S.CosineAnnealingWarmRestarts(o, 4)],
    "warm restarts, then exponential": lambda S, o: [S.CosineAnnealingWarmRestarts(o, 4), S.ExponentialLR(o, 0.9)],
    "multistep and a SequentialLR": lambda S, o: [S.MultiStepLR(o, [3, 7], 0.5), S.SequentialLR(
        o, [S.LinearLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.8)], [2])],
}


@pytest.mark.parametrize("name", list(CHAINED))
def test_chained_scheduler_as_torchs(name):
    opt, topt = schedule_twins()
    ours = lr_scheduler.ChainedScheduler(CHAINED[name](lr_scheduler, opt), optimizer=opt)
    theirs = T.ChainedScheduler(CHAINED[name](T, topt))
    np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
    seen = set()
    for step in range(20):
        opt.step(), topt.step()
        ours.step(), theirs.step()
        np.testing.assert_allclose(lrs_of(opt), lrs_of(topt), rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
        np.testing.assert_allclose(ours.get_last_lr(), lrs_of(opt), rtol=0)
        seen.add(round(lrs_of(opt)[0], 12))
        if step == 6:  # a resume: fresh objects, then the state dicts
            states = opt.state_dict(), ours.state_dict()
            opt, _ = schedule_twins()
            ours = lr_scheduler.ChainedScheduler(CHAINED[name](lr_scheduler, opt))
            opt.load_state_dict(states[0]), ours.load_state_dict(states[1])
    assert len(seen) >= 4


def test_chained_scheduler_inside_a_sequential_lr_multiplies_its_schedules():
    opt, _ = schedule_twins(lr=1.0)
    inner = lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(opt, 0.5), lr_scheduler.StepLR(opt, 2, 0.1)])
    warm_up = lr_scheduler.LinearLR(opt, 0.5, total_iters=2)
    sequential = lr_scheduler.SequentialLR(opt, [warm_up, inner], [2])
    lrs = []
    for _ in range(6):
        sequential.step()
        lrs.append(lrs_of(opt)[0])
    np.testing.assert_allclose(lrs, [0.75, 1.0, 0.5, 0.025, 0.0125, 0.000625], rtol=1e-12)


# ---- argument checks ----------------------------------------------------------------------------
def param():
    return Tensor(np.zeros(2), requires_grad=True)


def sgd():
    return optim.SGD([param()], lr=0.1)


def tsgd():
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)


NAN = float("nan")
ERRORS = [  # (id, our call, error, message pattern, torch's call that it also rejects, or None)
    ("Adagrad/lr", lambda: optim.Adagrad([param()], lr=-0.1), ValueError,
     r"Adagrad: lr \(the learning rate\) must be finite and >= 0, got -0.1",
     lambda: torch.optim.Adagrad([torch.zeros(2, requires_grad=True)], lr=-0.1)),
    ("Adagrad/lr_decay", lambda: optim.Adagrad([param()], lr_decay=-1), ValueError,
     r"Adagrad: lr_decay must be finite and >= 0, got -1", lambda: torch.optim.Adagrad([torch.zeros(2)], lr_decay=-1)),
    ("Adagrad/initial_accumulator_value", lambda: optim.Adagrad([param()], initial_accumulator_value=-0.5),
     ValueError, r"initial_accumulator_value must be finite and >= 0, got -0.5",
     lambda: torch.optim.Adagrad([torch.zeros(2)], initial_accumulator_value=-0.5)),
    ("Adagrad/initial_accumulator_value of a group", lambda: optim.Adagrad(
        [{"params": [param()], "initial_accumulator_value": 0.1}], initial_accumulator_value="1"), TypeError,
     r"Adagrad: initial_accumulator_value must be a real number, got '1'", None),
    ("Adagrad/eps", lambda: optim.Adagrad([param()], eps=NAN), ValueError, r"Adagrad: eps must be finite .* got nan",
     None),
    ("Adagrad/weight_decay", lambda: optim.Adagrad([param()], weight_decay=-0.1), ValueError,
     r"weight_decay must be finite and >= 0, got -0.1",
     lambda: torch.optim.Adagrad([torch.zeros(2)], weight_decay=-0.1)),
    ("Adagrad/params", lambda: optim.Adagrad(param()), TypeError, r"Adagrad takes an iterable of Tensors", None),
    ("SGD/dampening", lambda: optim.SGD([param()], lr=0.1, dampening=-0.5), ValueError,
     r"SGD: dampening must be finite and >= 0, got -0.5", None),
    ("SGD/dampening str", lambda: optim.SGD([param()], lr=0.1, dampening="0"), TypeError,
     r"SGD: dampening must be a real number, got '0'", None),
    ("SGD/nesterov with dampening", lambda: optim.SGD([param()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     ValueError, r"SGD: nesterov=True needs a momentum > 0 and dampening 0, got momentum 0.9 and dampening 0.1",
     lambda: torch.optim.SGD([torch.zeros(2)], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("SGD/dampening set by hand under nesterov", lambda: setattr(
        optim.SGD([param()], lr=0.1, momentum=0.9, nesterov=True), "dampening", 0.5), ValueError,
     r"nesterov=True needs a momentum > 0 and dampening 0", None),
    ("Adam/betas with amsgrad", lambda: optim.Adam([param()], betas=(0.9, 1.5), amsgrad=True), ValueError,
     r"Adam: betas\[1\] must be in \[0, 1\), got 1.5",
     lambda: torch.optim.Adam([torch.zeros(2)], betas=(0.9, 1.5), amsgrad=True)),
    ("AdamW/maximize positional", lambda: optim.AdamW([param()], 1e-3, (0.9, 0.999), 1e-8, 0.01, False, True),
     TypeError, r"takes from 2 to 7 positional arguments",
     lambda: torch.optim.AdamW([torch.zeros(2)], 1e-3, (0.9, 0.999), 1e-8, 0.01, False, True)),
    ("RMSprop/momentum", lambda: optim.RMSprop([param()], momentum=-0.1, centered=True), ValueError,
     r"RMSprop: momentum must be finite and >= 0, got -0.1",
     lambda: torch.optim.RMSprop([torch.zeros(2)], momentum=-0.1, centered=True)),
    ("ReduceLROnPlateau/factor", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.0", lambda: T.ReduceLROnPlateau(tsgd(), factor=1.0)),
    ("ReduceLROnPlateau/factor negative", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), factor=-0.5), ValueError,
     r"factor must be in \[0, 1\), got -0.5", None),
    ("ReduceLROnPlateau/mode", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), mode="minimum"), ValueError,
     r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'minimum'", lambda: T.ReduceLROnPlateau(tsgd(), "minimum")),
    ("ReduceLROnPlateau/threshold_mode", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), threshold_mode="relative"),
     ValueError, r"threshold_mode must be 'rel' or 'abs', got 'relative'",
     lambda: T.ReduceLROnPlateau(tsgd(), threshold_mode="relative")),
    ("ReduceLROnPlateau/patience", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), patience=-1), ValueError,
     r"ReduceLROnPlateau: patience must be an int >= 0, got -1", None),
    ("ReduceLROnPlateau/patience float", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), patience=2.5), TypeError,
     r"ReduceLROnPlateau: patience must be an int, got 2.5", None),
    ("ReduceLROnPlateau/cooldown", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), cooldown=None), TypeError,
     r"cooldown must be an int, got None", None),
    ("ReduceLROnPlateau/threshold", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), threshold=NAN), ValueError,
     r"threshold must be finite and >= 0, got nan", None),
    ("ReduceLROnPlateau/min_lr list", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), min_lr=[0.1, 0.2]), ValueError,
     r"min_lr must be a number or one per parameter group \(1\), got 2 values",
     lambda: T.ReduceLROnPlateau(tsgd(), min_lr=[0.1, 0.2])),
    ("ReduceLROnPlateau/min_lr negative", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), min_lr=[-1.0]), ValueError,
     r"min_lr\[0\] must be finite and >= 0, got -1.0", None),
    ("ReduceLROnPlateau/eps", lambda: lr_scheduler.ReduceLROnPlateau(sgd(), eps="small"), TypeError,
     r"eps must be a real number, got 'small'", None),
    ("ReduceLROnPlateau/optimizer", lambda: lr_scheduler.ReduceLROnPlateau([param()]), TypeError,
     r"ReduceLROnPlateau takes an optimizer, got list", lambda: T.ReduceLROnPlateau([torch.zeros(2)])),
    ("ReduceLROnPlateau.step/str", lambda: lr_scheduler.ReduceLROnPlateau(sgd()).step("0.5"), TypeError,
     r"metrics must be a number or a one-element Tensor, got '0.5'", None),
    ("ReduceLROnPlateau.step/tensor", lambda: lr_scheduler.ReduceLROnPlateau(sgd()).step(Tensor(np.ones(2))),
     TypeError, r"metrics must be a number or a one-element Tensor, got",
     lambda: T.ReduceLROnPlateau(tsgd()).step(torch.ones(2))),
    ("ReduceLROnPlateau.load_state_dict", lambda: lr_scheduler.ReduceLROnPlateau(sgd()).load_state_dict(
        {"last_epoch": 3}), ValueError, r"missing \['best', 'cooldown_counter', 'num_bad_epochs'\]", None),
    ("CosineAnnealingWarmRestarts/T_0", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 0), ValueError,
     r"CosineAnnealingWarmRestarts: T_0 must be an int >= 1, got 0", lambda: T.CosineAnnealingWarmRestarts(tsgd(), 0)),
    ("CosineAnnealingWarmRestarts/T_0 float", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2.0), TypeError,
     r"T_0 must be an int, got 2.0", lambda: T.CosineAnnealingWarmRestarts(tsgd(), 2.0)),
    ("CosineAnnealingWarmRestarts/T_mult", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2, 0), ValueError,
     r"T_mult must be an int >= 1, got 0", lambda: T.CosineAnnealingWarmRestarts(tsgd(), 2, 0)),
    ("CosineAnnealingWarmRestarts/T_mult float", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2, 1.5),
     TypeError, r"T_mult must be an int, got 1.5", lambda: T.CosineAnnealingWarmRestarts(tsgd(), 2, 1.5)),
    ("CosineAnnealingWarmRestarts/eta_min", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2, eta_min="0"),
     TypeError, r"eta_min must be a real number, got '0'",
     lambda: T.CosineAnnealingWarmRestarts(tsgd(), 2, eta_min="0")),
    ("CosineAnnealingWarmRestarts.step/negative", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2).step(-1),
     ValueError, r"epoch must be a finite number >= 0, got -1",
     lambda: T.CosineAnnealingWarmRestarts(tsgd(), 2).step(-1)),
    ("CosineAnnealingWarmRestarts.step/nan", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2).step(NAN),
     ValueError, r"epoch must be a finite number >= 0, got nan", None),
    ("CosineAnnealingWarmRestarts.step/inf", lambda: lr_scheduler.CosineAnnealingWarmRestarts(sgd(), 2).step(
        float("inf")), ValueError, r"epoch must be a finite number >= 0, got inf", None),
    ("ChainedScheduler/optimizer", lambda: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(sgd(), 2)], "sgd"),
     TypeError, r"ChainedScheduler takes an optimizer, got str",
     lambda: T.ChainedScheduler([T.StepLR(tsgd(), 2)], "sgd")),
    ("ChainedScheduler/empty", lambda: lr_scheduler.ChainedScheduler([]), ValueError,
     r"ChainedScheduler needs at least one scheduler", lambda: T.ChainedScheduler([])),
    ("ChainedScheduler/plateau", lambda: (lambda o: lr_scheduler.ChainedScheduler(
        [lr_scheduler.StepLR(o, 2), lr_scheduler.ReduceLROnPlateau(o)]))(sgd()), ValueError,
     r"ChainedScheduler cannot hold ReduceLROnPlateau \(scheduler 1\)",
     lambda: (lambda o: T.ChainedScheduler([T.StepLR(o, 2), T.ReduceLROnPlateau(o)]))(tsgd())),
    ("ChainedScheduler/two optimizers", lambda: lr_scheduler.ChainedScheduler(
        [lr_scheduler.StepLR(sgd(), 2), lr_scheduler.StepLR(sgd(), 2)]), ValueError,
     r"every scheduler must drive the same optimizer",
     lambda: T.ChainedScheduler([T.StepLR(tsgd(), 2), T.StepLR(tsgd(), 2)])),
    ("ChainedScheduler/another optimizer", lambda: lr_scheduler.ChainedScheduler(
        [lr_scheduler.StepLR(sgd(), 2)], optimizer=sgd()), ValueError, r"every scheduler must drive the same optimizer",
     lambda: T.ChainedScheduler([T.StepLR(tsgd(), 2)], optimizer=tsgd())),
    ("ChainedScheduler/not a scheduler", lambda: lr_scheduler.ChainedScheduler([sgd()]), TypeError,
     r"ChainedScheduler: scheduler 0 must be a learning-rate scheduler, got SGD", lambda: T.ChainedScheduler([tsgd()])),
    ("ChainedScheduler/one scheduler", lambda: lr_scheduler.ChainedScheduler(lr_scheduler.StepLR(sgd(), 2)), TypeError,
     r"ChainedScheduler takes a list of schedulers, got StepLR", lambda: T.ChainedScheduler(T.StepLR(tsgd(), 2))),
    ("SequentialLR/plateau", lambda: (lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.StepLR(o, 2), lr_scheduler.ReduceLROnPlateau(o)], [3]))(sgd()), ValueError,
     r"SequentialLR cannot hold ReduceLROnPlateau \(scheduler 1\)",
     lambda: (lambda o: T.SequentialLR(o, [T.StepLR(o, 2), T.ReduceLROnPlateau(o)], [3]))(tsgd())),
]


@pytest.mark.parametrize("call, error, pattern, theirs", [case[1:] for case in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_arguments_raise_a_clear_error(call, error, pattern, theirs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error, match=pattern) as info:
            call()
    assert type(info.value) is error
    if "positional" not in pattern:
        assert frames_inside_the_checks(info.value), "".join(traceback.format_tb(info.value.__traceback__)[-3:])
    if theirs is not None:
        with warnings.catch_warnings(), pytest.raises(Exception):
            warnings.simplefilter("ignore")
            theirs()


def test_sgd_lr_defaults_to_pytorchs():
    torch = pytest.importorskip("torch")
    import inspect
    assert optim.SGD([Tensor(np.ones(2), requires_grad=True)]).lr == \
        inspect.signature(torch.optim.SGD).parameters["lr"].default
