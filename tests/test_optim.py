"""Optimizers: SGD and Adam against hand-written references of torch's documented update rules,
skipped gradients, argument checks, state dicts that resume bit for bit, and (behind
importorskip) parity with torch.optim over ten steps."""
import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim

rng = np.random.default_rng(20240601)
W0 = rng.standard_normal((2, 3))
GRADS = [rng.standard_normal((2, 3)) for _ in range(3)]


def run(make, w0=W0, grads=GRADS):
    """Apply `make([w])`'s step once per gradient in `grads`; the final weights."""
    w = Tensor(w0.copy(order="K"), requires_grad=True)
    opt = make([w])
    for g in grads:
        w.grad = Tensor(g)
        opt.step()
    return w.data


# ---- SGD and Adam against the formulas --------------------------------------------------------------
def sgd_reference(w, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """torch.optim.SGD's documented algorithm (dampening 0), one step at a time."""
    w, b = w.copy(), None
    for g in grads:
        g = g + weight_decay * w
        if momentum:
            b = g.copy() if b is None else momentum * b + g
            g = g + momentum * b if nesterov else b
        w = w - lr * g
    return w


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.3),
    dict(lr=0.1, momentum=0.9, weight_decay=0.3),
    dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1),
], ids=str)
def test_sgd_three_steps_match_the_formula(kwargs):
    np.testing.assert_allclose(run(lambda ps: optim.SGD(ps, **kwargs)), sgd_reference(W0, GRADS, **kwargs),
                               rtol=1e-14, atol=1e-15)


def test_sgd_three_steps_by_hand():
    """Exact binary fractions, worked out on paper: w0 = 1, ∂C/∂w = 1 at every step, lr = 1/2."""
    ones = [np.ones(1)] * 3
    # plain: 1 - 3/2
    assert run(lambda ps: optim.SGD(ps, lr=0.5), np.ones(1), ones)[0] == -0.5
    # momentum 1/2: buffers 1, 3/2, 7/4 -> 1 - (1 + 3/2 + 7/4)/2
    assert run(lambda ps: optim.SGD(ps, lr=0.5, momentum=0.5), np.ones(1), ones)[0] == -1.125
    # nesterov: steps 1 + 1/2, 1 + 3/4, 1 + 7/8 -> 1 - (3/2 + 7/4 + 15/8)/2
    assert run(lambda ps: optim.SGD(ps, lr=0.5, momentum=0.5, nesterov=True), np.ones(1), ones)[0] == -1.5625
    # weight decay 1/2: g = 1 + w/2; w: 1 -> 1/4 -> -5/16 -> -47/64
    assert run(lambda ps: optim.SGD(ps, lr=0.5, weight_decay=0.5), np.ones(1), ones)[0] == -47 / 64


def adam_reference(w, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam's documented algorithm (amsgrad off), with the bias corrections."""
    (beta1, beta2), w = betas, w.copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.1, weight_decay=0.5),
    dict(lr=0.02, betas=(0.5, 0.9), eps=0.1, weight_decay=0.05),
], ids=str)
def test_adam_three_steps_match_the_formula(kwargs):
    np.testing.assert_allclose(run(lambda ps: optim.Adam(ps, **kwargs)), adam_reference(W0, GRADS, **kwargs),
                               rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_lr_times_the_sign():
    """With the bias corrections, step 1 is m̂/√v̂ = g/|g|: every weight moves by lr, whatever |g|."""
    g = np.array([3.0, -0.02, 150.0, -1.0])
    w = run(lambda ps: optim.Adam(ps, lr=0.01), np.zeros(4), [g])
    np.testing.assert_allclose(w, -0.01 * np.sign(g), rtol=1e-5)


def test_adam_default_hyperparameters():
    w = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.Adam([w])
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay) == (1e-3, 0.9, 0.999, 1e-8, 0.0)


# ---- skipped parameters and zero_grad ------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
], ids=["SGD", "Adam"])
def test_parameters_without_grad_are_skipped(make):
    a, b = Tensor(W0.copy(), requires_grad=True), Tensor(W0[0].copy(), requires_grad=True)
    opt = make([a, b])
    for g in GRADS:
        a.grad = Tensor(g)  # b.grad stays None: not even weight decay moves it
        opt.step()
    np.testing.assert_array_equal(b.data, W0[0])
    assert not any(key.endswith(".1") for key in opt.state_dict())  # no buffers for b
    assert not np.array_equal(a.data, W0)


def test_sgd_momentum_buffer_starts_at_the_first_gradient_it_sees():
    """A parameter that joins late starts its buffer at its own first gradient (torch's rule)."""
    a, b = Tensor(np.zeros(3), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad = Tensor(GRADS[0][0])
    opt.step()
    b.grad = Tensor(GRADS[1][0])
    opt.step()
    np.testing.assert_array_equal(b.data, -0.1 * GRADS[1][0])


def test_adam_parameter_that_joins_late_gets_a_first_step():
    a, b = Tensor(np.zeros(3), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.01)
    a.grad = Tensor(np.ones(3))
    opt.step()  # b has no gradient yet: skipped
    g = np.array([2.0, -0.5, 0.1])
    b.grad = Tensor(g)
    opt.step()  # b's first update: as torch, ≈ -lr·sign(g)
    np.testing.assert_allclose(b.data, -0.01 * np.sign(g), rtol=1e-5)


def test_zero_grad_sets_grads_to_none():
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    before = [p.data.copy() for p in model.parameters()]
    opt.step()  # nothing to do
    assert all(np.array_equal(p.data, q) for p, q in zip(model.parameters(), before))


# ---- argument checks: the error table in tests/test_errors.py -------------------------------------
def param():
    return Tensor(np.zeros(2), requires_grad=True)


def test_model_parameters_generator_is_accepted():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    opt = optim.SGD((p for _, p in model.named_parameters()), lr=0.1)
    assert len(opt.params) == 4 and opt.params[0] is model[0].weight


# ---- state dicts --------------------------------------------------------------------------------------
def fresh_params():
    g = np.random.default_rng(7)
    return [Tensor(g.standard_normal((3, 2)), requires_grad=True), Tensor(g.standard_normal(4), requires_grad=True),
            Tensor(g.standard_normal((2, 2)).astype(np.float32), requires_grad=True)]


def gradient(step, i, p):
    """A fixed pseudo-random gradient plus a pull toward zero, so it depends on the weights."""
    g = np.random.default_rng([step, i]).standard_normal(p.shape).astype(p.dtype)
    return Tensor(g + p.dtype.type(0.5) * p.data)


def steps(opt, first, last):
    for step in range(first, last):
        for i, p in enumerate(opt.params):
            p.grad = None if (step + i) % 4 == 3 else gradient(step, i, p)  # some skipped steps
        opt.step()


MAKERS = {
    "sgd": lambda ps, lr=0.05: optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=0.01),
    "nesterov": lambda ps, lr=0.05: optim.SGD(ps, lr=lr, momentum=0.7, nesterov=True),
    "plain sgd": lambda ps, lr=0.05: optim.SGD(ps, lr=lr),
    "adam": lambda ps, lr=0.05: optim.Adam(ps, lr=lr, betas=(0.8, 0.95), weight_decay=0.1),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_state_dict_resumes_bit_for_bit(kind):
    original = MAKERS[kind](fresh_params())
    steps(original, 0, 5)
    state = original.state_dict()
    # a fresh optimizer, built with another lr (restored from the state), over copies of the weights
    copies = [Tensor(p.data.copy(), requires_grad=True) for p in original.params]
    resumed = MAKERS[kind](copies, lr=123.0)
    resumed.load_state_dict(state)
    assert resumed.lr == original.lr and resumed.step_count == original.step_count == 5
    for array in state.values():  # the loaded state is a copy
        array[...] = -1
    steps(original, 5, 12)
    steps(resumed, 5, 12)
    for p, q in zip(original.params, resumed.params):
        assert p.dtype == q.dtype and p.data.tobytes() == q.data.tobytes()
    a, b = original.state_dict(), resumed.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), key


def test_state_dict_is_a_copy_and_has_the_expected_keys():
    opt = MAKERS["adam"](fresh_params())
    steps(opt, 0, 2)
    state = opt.state_dict()
    assert set(state) >= {"lr", "beta1", "beta2", "eps", "weight_decay", "step_count",
                          "exp_avg.0", "exp_avg_sq.0", "exp_avg.1", "exp_avg_sq.1", "exp_avg.2", "exp_avg_sq.2"}
    assert state["exp_avg.2"].dtype == np.float32 and state["step_count"] == 2
    state["exp_avg.0"][...] = 0
    state["lr"][...] = 9
    assert opt.lr == 0.05 and np.any(opt.state_dict()["exp_avg.0"] != 0)


@pytest.mark.parametrize("change", ["wrong shape", "unknown key", "missing lr", "missing step_count",
                                    "index out of range", "buffer of another optimizer"])
def test_mismatched_state_dict_raises_and_changes_nothing(change):
    opt = MAKERS["sgd"](fresh_params())
    steps(opt, 0, 3)
    state = opt.state_dict()
    if change == "wrong shape":
        state["momentum_buffer.1"] = np.zeros(5)
    elif change == "unknown key":
        state["foo"] = np.zeros(1)
    elif change == "missing lr":
        del state["lr"]
    elif change == "missing step_count":
        del state["step_count"]
    elif change == "index out of range":
        state["momentum_buffer.3"] = np.zeros(2)
    else:
        state["exp_avg.0"] = np.zeros((3, 2))
    target = MAKERS["sgd"](fresh_params(), lr=0.5)
    before = target.state_dict()
    with pytest.raises(ValueError):
        target.load_state_dict(state)
    after = target.state_dict()
    assert list(after) == list(before) and all(np.array_equal(after[k], before[k]) for k in before)


def test_adam_state_with_half_of_a_buffer_pair_raises():
    opt = MAKERS["adam"](fresh_params())
    steps(opt, 0, 3)
    state = opt.state_dict()
    del state["exp_avg_sq.0"]
    with pytest.raises(ValueError):
        MAKERS["adam"](fresh_params()).load_state_dict(state)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_changing_lr_is_respected_and_saved(kind):
    a, b = fresh_params(), fresh_params()
    opt_a, opt_b = MAKERS[kind](a), MAKERS[kind](b, lr=0.01)
    opt_a.lr = 0.01  # changed after construction: as if built with lr=0.01
    steps(opt_a, 0, 3)
    steps(opt_b, 0, 3)
    assert all(p.data.tobytes() == q.data.tobytes() for p, q in zip(a, b))
    assert opt_a.state_dict()["lr"] == 0.01
    other = MAKERS[kind](fresh_params())
    other.load_state_dict(opt_a.state_dict())
    assert other.lr == 0.01
    opt_a.lr = 0.0  # lr 0: nothing moves
    before = [p.data.copy() for p in a]
    steps(opt_a, 3, 4)
    assert all(np.array_equal(p.data, q) for p, q in zip(a, before))


MOMENTS = ("momentum_buffer", "exp_avg", "exp_avg_sq")


def test_float32_parameters_stay_float32():
    for kind in MAKERS:
        opt = MAKERS[kind]([Tensor(np.ones((2, 3), np.float32), requires_grad=True)])
        steps(opt, 0, 3)
        assert opt.params[0].dtype == np.float32
        moments = [v for k, v in opt.state_dict().items() if k.split(".")[0] in MOMENTS]
        assert (len(moments) > 0) == (kind != "plain sgd")
        assert all(v.dtype == np.float32 for v in moments)


BLOCKWISE = {**MAKERS, "adamw": lambda ps: optim.AdamW(ps, lr=0.05), "rmsprop": lambda ps: optim.RMSprop(
    ps, lr=0.01, momentum=0.9, weight_decay=0.1)}


@pytest.mark.parametrize("kind", list(BLOCKWISE))
@pytest.mark.parametrize("layout", ["C", "transposed"])
def test_a_large_parameter_updated_in_blocks_equals_one_pass(kind, layout, monkeypatch):
    """A parameter of several blocks (and one not in C order, updated at once) ends exactly where
    one whole-array pass of the same rule puts it."""
    shape = (3, optim.BLOCK + 7)
    w0 = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
    if layout == "transposed":
        w0, grads = np.asfortranarray(w0), [np.asfortranarray(g) for g in grads]
    blocked = run(BLOCKWISE[kind], w0, grads)
    monkeypatch.setattr(optim, "BLOCK", w0.size)
    assert np.array_equal(blocked, run(BLOCKWISE[kind], w0, grads))
    assert not np.array_equal(blocked, w0)


# ---- parity with torch.optim ----------------------------------------------------------------------------
SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
             dict(lr=0.1, weight_decay=0.01), dict(lr=0.05, momentum=0.5, weight_decay=0.1),
             dict(lr=0.02, momentum=0.99, nesterov=True, weight_decay=0.05)]
ADAM_CASES = [dict(lr=0.01), dict(lr=0.05, weight_decay=0.1), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
              dict(lr=0.003, betas=(0.5, 0.9), weight_decay=0.5)]
SHAPES = [(4, 3), (3,), (2, 1, 2, 2)]
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-6}


def assert_close(ours, theirs, dtype, what):
    """Relative tolerance, and the same as an absolute one at the array's scale (an entry near zero
    may come from cancellation of larger terms)."""
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * np.abs(theirs).max(), err_msg=what)


def quadratic_gradient(w, step, i):
    """∂/∂w of ½ Σ h (w − c)² plus fixed noise: different curvature per entry, a fixed minimum."""
    g = np.random.default_rng([99, i])
    h, c = g.uniform(0.5, 2.0, w.shape), g.standard_normal(w.shape)
    noise = np.random.default_rng([step, i]).standard_normal(w.shape) * 0.1
    return (h * (w - c) + noise).astype(w.dtype)


def compare_with_torch(ours_class, theirs_name, kwargs, dtype, skip=lambda step, i: False):
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(3)
    arrays = [g.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ps = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt, topt = ours_class(ps, **kwargs), getattr(torch.optim, theirs_name)(ts, **kwargs)
    for step in range(10):
        for i, (p, t) in enumerate(zip(ps, ts)):
            if skip(step, i):
                p.grad, t.grad = None, None
            else:
                p.grad = Tensor(quadratic_gradient(p.data, step, i))
                t.grad = torch.from_numpy(quadratic_gradient(t.detach().numpy(), step, i))
        opt.step()
        topt.step()
    for i, (p, t) in enumerate(zip(ps, ts)):
        assert p.dtype == dtype and t.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype]
        assert not np.array_equal(p.data, arrays[i]), "the parameter never moved: a vacuous case"
        assert_close(p.data, t.detach().numpy(), dtype, f"parameter {i}")
    state = opt.state_dict()
    for i, t in enumerate(ts):
        for name, value in topt.state[t].items():
            if name == "step":
                continue
            ours = state[f"{name}.{i}"]
            assert ours.dtype == dtype
            assert_close(ours, value.numpy(), dtype, f"{name}.{i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(kwargs, dtype):
    compare_with_torch(optim.SGD, "SGD", kwargs, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=str)
def test_adam_matches_torch(kwargs, dtype):
    compare_with_torch(optim.Adam, "Adam", kwargs, dtype)


def test_sgd_with_skipped_gradients_matches_torch():
    compare_with_torch(optim.SGD, "SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1), np.float64,
                       skip=lambda step, i: (step + i) % 3 == 0 or (i == 2 and step < 4))


def test_adam_with_skipped_gradients_matches_torch():
    compare_with_torch(optim.Adam, "Adam", dict(lr=0.05), np.float64,
                       skip=lambda step, i: i == 2 and step < 4)


def test_adam_step_count_matches_torch_when_nothing_is_skipped():
    torch = pytest.importorskip("torch")
    t = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([t])
    opt = optim.Adam([param()])
    for _ in range(3):
        t.grad = torch.ones(2, dtype=torch.float64)
        opt.params[0].grad = Tensor(np.ones(2))
        topt.step()
        opt.step()
    assert opt.state_dict()["step_count"] == math.floor(topt.state[t]["step"].item()) == 3
