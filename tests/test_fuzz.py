"""Fuzzing: random chains of ops on random shapes, with random (often wrong) arguments.

Each example draws an input (0 to 4 axes of 1 to 4, distinct values) and a chain of one to four
ops -- elementwise, broadcasting with a drawn operand, reductions, movement, matmul,
correlate2d/convolve2d/conv2d with a drawn kernel, mode and stride, max pooling, softmax,
losses, PyTorch's tensor vocabulary (dim arguments, cat/stack/split, where, clamp, erf, ...) and
nn.functional's CNN functions with PyTorch's options (padding, dilation, ceil_mode, groups) -- whose arguments are drawn from valid and invalid values alike. The chain must either
raise a clean, documented error (TypeError, ValueError or IndexError, from the package's own
argument checks, with a message: see tests/test_errors.py) or compute a gradient that agrees
with finite differences (gradcheck). Any other exception fails the test.

Budget: FUZZ_EXAMPLES examples (the environment variable TINYGRAD_CNN_FUZZ_EXAMPLES raises it
for a longer local run); in CI hypothesis's built-in "ci" profile is active (the CI variable is
set), which derandomizes the draws, so CI runs the same examples every time.
"""
from __future__ import annotations

import os
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib.stride_tricks import sliding_window_view
from helpers import frames_inside_the_checks

import tinygrad_cnn as tc
import tinygrad_cnn.functional as F
import tinygrad_cnn.nn.functional as NF
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import GradcheckError, gradcheck

FUZZ_EXAMPLES = int(os.environ.get("TINYGRAD_CNN_FUZZ_EXAMPLES", 400))
CLEAN_ERRORS = (TypeError, ValueError, IndexError)
KINK_MARGIN = 1e-3  # relu inputs, max and max-pool gaps farther than this from a kink or a tie


class Kinks:
    """The smallest distance to a kink met while running a chain (relu at 0, a tie in a max)."""

    def __init__(self) -> None:
        self.margin = np.inf

    def relu(self, z: Tensor) -> None:
        if z.numel():
            self.margin = min(self.margin, float(np.min(np.abs(z.data))))

    def gap(self, values: np.ndarray) -> None:
        """`values`: (..., n) candidates of each max; the gap between the two largest."""
        if values.shape[-1] > 1 and values.size:
            top = np.sort(values, axis=-1)[..., -2:]
            self.margin = min(self.margin, float(np.min(top[..., 1] - top[..., 0])))

    def ties(self, planes: np.ndarray) -> None:
        """`planes`: (P, H, W); the closest two values within any plane."""
        flat = np.sort(planes.reshape(len(planes), -1), axis=-1)
        if flat.shape[-1] > 1 and flat.size:
            self.margin = min(self.margin, float(np.min(np.diff(flat, axis=-1))))


# ---- op builders: each draws its arguments for an input of `shape`, and returns (label, fn) ----
def axis_arg(data, ndim):
    return data.draw(st.one_of(st.none(), st.integers(-ndim - 1, ndim),
                               st.lists(st.integers(-ndim - 1, ndim), max_size=3).map(tuple)), label="axis")


def elementwise(data, shape):
    name = data.draw(st.sampled_from(["exp", "log1p2", "sigmoid", "tanh", "relu", "neg", "square", "sqrt1p2",
                                      "div", "scale", "shift"]), label="elementwise")
    c = data.draw(st.sampled_from([0.5, -1.5, 2.0]), label="constant")

    def fn(t, kinks):
        if name == "relu":
            kinks.relu(t)
        return {"exp": lambda: (t * 0.5).exp(), "log1p2": lambda: (t * t + 1).log(), "sigmoid": t.sigmoid,
                "tanh": t.tanh, "relu": t.relu, "neg": lambda: -t, "square": lambda: t ** 2,
                "sqrt1p2": lambda: (t * t + 1) ** 0.5, "div": lambda: t / (t * t + 1), "scale": lambda: t * c,
                "shift": lambda: c - t}[name]()

    return name, fn


def binary(data, shape):
    op = data.draw(st.sampled_from(["+", "-", "*", "/"]), label="binary op")
    if data.draw(st.booleans(), label="broadcastable"):
        other_shape = data.draw(hnp.broadcastable_shapes(shape, max_dims=4, max_side=4), label="other shape")
    else:
        other_shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, max_side=4), label="other shape")
    other = data.draw(hnp.arrays(np.float64, other_shape, elements=st.floats(0.5, 2.0)), label="other")

    def fn(t, kinks):
        return {"+": lambda: t + other, "-": lambda: other - t, "*": lambda: t * other, "/": lambda: t / other}[op]()

    return f"x {op} array{other_shape}", fn


def reduction(data, shape):
    name = data.draw(st.sampled_from(["sum", "mean", "max"]), label="reduction")
    axis = axis_arg(data, len(shape))
    keepdims = data.draw(st.booleans(), label="keepdims")

    def fn(t, kinks):
        if name == "max" and t.numel():
            axes = range(t.ndim) if axis is None else np.atleast_1d(axis)
            try:
                moved = np.moveaxis(t.data, list(axes), list(range(-len(list(axes)), 0)))
                kinks.gap(moved.reshape(moved.shape[: t.ndim - len(list(axes))] + (-1,)))
            except (ValueError, np.exceptions.AxisError):
                pass  # a bad axis: the op itself must say so
        return getattr(t, name)(axis=axis, keepdims=keepdims)

    return f"{name}(axis={axis}, keepdims={keepdims})", fn


def movement(data, shape):
    ndim, size = len(shape), int(np.prod(shape))
    name = data.draw(st.sampled_from(["reshape", "permute", "swapaxes", "flatten", "getitem", "broadcast_to", "T"]),
                     label="movement")
    if name == "reshape":
        arg = data.draw(st.one_of(st.just((size,)), st.just((-1, 1)), st.just(tuple(reversed(shape))),
                                  st.lists(st.integers(-1, 5), max_size=4).map(tuple)), label="new shape")
        return f"reshape{arg}", lambda t, kinks: t.reshape(arg)
    if name == "permute":
        arg = data.draw(st.one_of(st.permutations(range(ndim)).map(tuple),
                                  st.lists(st.integers(-ndim - 1, ndim), max_size=4).map(tuple)), label="axes")
        return f"permute{arg}", lambda t, kinks: t.permute(arg)
    if name == "swapaxes":
        a, b = data.draw(st.integers(-ndim - 1, ndim), label="a"), data.draw(st.integers(-ndim - 1, ndim), label="b")
        return f"swapaxes({a}, {b})", lambda t, kinks: t.swapaxes(a, b)
    if name == "flatten":
        a, b = data.draw(st.integers(-ndim - 1, ndim), label="start"), data.draw(st.integers(-ndim - 1, ndim), label="end")
        return f"flatten({a}, {b})", lambda t, kinks: t.flatten(a, b)
    if name == "getitem":
        index = data.draw(st.one_of(st.integers(-5, 5), st.slices(5), st.tuples(st.slices(5), st.integers(-3, 3)),
                                    st.just(Ellipsis), st.lists(st.integers(-4, 4), min_size=1, max_size=3)),
                          label="index")
        return f"[{index!r}]", lambda t, kinks: t[index]
    if name == "broadcast_to":
        target = data.draw(st.one_of(hnp.array_shapes(min_dims=0, max_dims=4, max_side=4),
                                     st.just((2,) + tuple(shape))), label="target")
        return f"broadcast_to{target}", lambda t, kinks: t.broadcast_to(target)
    return "T", lambda t, kinks: t.T


def softmaxes(data, shape):
    name = data.draw(st.sampled_from(["softmax", "log_softmax"]), label="softmax")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return f"{name}(axis={axis})", lambda t, kinks: getattr(F, name)(t, axis=axis)


def matmul(data, shape):
    inner = shape[-1] if shape and data.draw(st.booleans(), label="matching inner") else data.draw(
        st.integers(1, 4), label="inner")
    other_shape = data.draw(st.sampled_from([(inner,), (inner, 3), (2, inner, 2)]), label="other shape")
    other = data.draw(hnp.arrays(np.float64, other_shape, elements=st.floats(-2, 2)), label="other")
    left = data.draw(st.booleans(), label="x on the left")
    return (f"x @ array{other_shape}" if left else f"array{other_shape} @ x",
            lambda t, kinks: t @ other if left else other @ t)


def correlation(data, shape):
    name = data.draw(st.sampled_from(["correlate2d", "convolve2d", "conv2d"]), label="conv")
    rank = 4 if name == "conv2d" else data.draw(st.integers(1, 5), label="kernel rank")
    kernel_shape = tuple(data.draw(st.integers(1, 3), label="kernel side") for _ in range(rank))
    if rank >= 3 and len(shape) >= 3 and data.draw(st.booleans(), label="matching channels"):
        kernel_shape = kernel_shape[:-3] + (shape[-3],) + kernel_shape[-2:]
    k = data.draw(hnp.arrays(np.float64, kernel_shape, elements=st.floats(-1, 1)), label="kernel")
    stride = data.draw(st.sampled_from([1, 2, (1, 2), 0, -1, 1.5, (1, 1, 1)]), label="stride")
    if name == "conv2d":
        padding = data.draw(st.sampled_from([0, 1, (0, 1), "same", "valid", "full", -1, 1.5]), label="padding")
        return f"conv2d(k{kernel_shape}, stride={stride!r}, padding={padding!r})", \
            lambda t, kinks: F.conv2d(t, k, stride=stride, padding=padding)
    mode = data.draw(st.sampled_from(["valid", "full", "same", "circular"]), label="mode")
    return f"{name}(k{kernel_shape}, {mode!r}, stride={stride!r})", \
        lambda t, kinks: getattr(F, name)(t, k, mode=mode, stride=stride)


def pooling(data, shape):
    size = data.draw(st.sampled_from([1, 2, 3, (1, 2), 0, 2.5]), label="size")
    stride = data.draw(st.sampled_from([None, 1, 2, 0]), label="stride")

    def fn(t, kinks):
        try:
            kh, kw = (size, size) if isinstance(size, int) else size
            sh, sw = (kh, kw) if stride is None else (stride, stride)
            windows = sliding_window_view(t.data, (kh, kw), axis=(-2, -1))[..., ::sh, ::sw, :, :]
            kinks.gap(windows.reshape(windows.shape[:-2] + (-1,)))
        except (ValueError, TypeError, IndexError):
            pass  # bad arguments: the op itself must say so
        return F.maxpool2d(t, size, stride)

    return f"maxpool2d({size!r}, stride={stride!r})", fn


def loss(data, shape):
    if data.draw(st.booleans(), label="cross_entropy"):
        n = (shape[0] if len(shape) >= 1 else 1) + data.draw(st.sampled_from([0, 0, 0, 1]), label="extra labels")
        classes = shape[1] if len(shape) == 2 else 3
        labels = data.draw(st.one_of(hnp.arrays(np.int64, n, elements=st.integers(0, classes - 1)),
                                     hnp.arrays(np.int64, n, elements=st.integers(-1, classes)),
                                     hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.5, np.nan]))),
                           label="labels")
        return f"cross_entropy(labels={labels!r})", lambda t, kinks: F.cross_entropy(t, labels)
    target_shape = data.draw(st.one_of(st.just(tuple(shape)), hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)),
                             label="target shape")
    target = np.linspace(-1, 1, int(np.prod(target_shape))).reshape(target_shape)
    return f"mse_loss(target{target_shape})", lambda t, kinks: F.mse_loss(t, target)


def torch_vocabulary(data, shape):
    """PyTorch's tensor methods and top-level functions, with their dim arguments drawn."""
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim - 1, ndim), label="dim")
    other = data.draw(st.integers(-ndim - 1, ndim), label="other dim")
    name = data.draw(st.sampled_from(["sum", "amax", "max", "transpose", "unsqueeze", "squeeze", "expand", "cat",
                                      "stack", "split", "chunk", "where", "clamp", "abs", "erf", "maximum"]),
                     label="torch op")
    size = data.draw(st.sampled_from([1, 2, 0, -1, (1, 1), (2, -1)]), label="size")

    def fn(t, kinks):
        if name in ("abs", "where", "maximum"):
            kinks.relu(t)  # abs, where(t > 0) and maximum(t, 0) have their kink or tie at 0
        if name == "clamp":
            kinks.relu(t - 0.5), kinks.relu(t + 0.5)
        if name in ("amax", "max") and t.numel() and -t.ndim <= dim < max(t.ndim, 1):
            kinks.gap(np.moveaxis(t.data, dim, -1) if t.ndim else t.data.reshape(1))
        return {"sum": lambda: t.sum(dim=dim, keepdim=True), "amax": lambda: t.amax(dim), "max": lambda: t.max(dim)[0],
                "transpose": lambda: t.transpose(dim, other), "unsqueeze": lambda: t.unsqueeze(dim),
                "squeeze": lambda: t.squeeze(dim), "expand": lambda: t.expand(*((2,) + t.shape[1:] if t.ndim else ())),
                "cat": lambda: tc.cat([t, t * 2], dim), "stack": lambda: tc.stack([t, -t], dim),
                "split": lambda: t.split(size, dim)[-1], "chunk": lambda: t.chunk(size, dim)[0],
                "where": lambda: tc.where(t > 0, t, t * 3), "clamp": lambda: t.clamp(-0.5, 0.5),
                "abs": t.abs, "erf": t.erf, "maximum": lambda: tc.maximum(t, tc.zeros_like(t))}[name]()

    return f"{name}(dim={dim}, other={other}, size={size!r})", fn


def cnn_functions(data, shape):
    """tinygrad_cnn.nn.functional's CNN functions with PyTorch's options, valid or not."""
    name = data.draw(st.sampled_from(["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "pad", "conv2d",
                                      "conv_transpose2d", "gelu", "elu", "leaky_relu", "softplus", "layer_norm",
                                      "batch_norm"]), label="nn.functional op")
    kernel = data.draw(st.sampled_from([1, 2, 3, (1, 2), 0]), label="kernel")
    stride = data.draw(st.sampled_from([None, 1, 2, 0]), label="stride")
    padding = data.draw(st.sampled_from([0, 1, (0, 1), -1, 3]), label="padding")
    dilation = data.draw(st.sampled_from([1, 2, (1, 2), 0]), label="dilation")
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    groups = data.draw(st.sampled_from([1, 2, 3]), label="groups")
    channels = shape[-3] if len(shape) >= 3 else 1
    w = data.draw(hnp.arrays(np.float64, (2 * groups, max(channels // groups, 1), 2, 2), elements=st.floats(-1, 1)),
                  label="weight")

    def fn(t, kinks):
        if name == "max_pool2d" and t.ndim >= 2:
            kinks.ties(t.data.reshape((-1,) + t.shape[-2:]))  # any two values of a plane may share a window
        if name in ("elu", "leaky_relu"):
            kinks.relu(t)
        calls = {"max_pool2d": lambda: NF.max_pool2d(t, kernel, stride, padding if padding != 3 else 1, dilation,
                                                     ceil_mode),
                 "avg_pool2d": lambda: NF.avg_pool2d(t, kernel, stride, padding),
                 "adaptive_avg_pool2d": lambda: NF.adaptive_avg_pool2d(t, kernel),
                 "pad": lambda: NF.pad(t, (padding, 1) if isinstance(padding, int) else padding, value=0.5),
                 "conv2d": lambda: NF.conv2d(t, w, None, stride or 1, padding, dilation, groups),
                 "conv_transpose2d": lambda: NF.conv_transpose2d(t, w.swapaxes(0, 1)[:channels], None, stride or 1,
                                                                 padding, 0, 1, dilation),
                 "gelu": lambda: NF.gelu(t, "tanh" if ceil_mode else "none"), "elu": lambda: NF.elu(t, 0.5),
                 "leaky_relu": lambda: NF.leaky_relu(t, 0.2), "softplus": lambda: NF.softplus(t, 2.0),
                 "layer_norm": lambda: NF.layer_norm(t, t.shape[-1:]) * t,
                 "batch_norm": lambda: NF.batch_norm(t, None, None, training=True) * t}
        return calls[name]()

    return (f"{name}(kernel={kernel!r}, stride={stride!r}, padding={padding!r}, dilation={dilation!r}, "
            f"ceil_mode={ceil_mode}, groups={groups})"), fn


BUILDERS = [elementwise, binary, reduction, movement, softmaxes, matmul, correlation, pooling, loss, torch_vocabulary,
            cnn_functions]


def run_chain(steps, x, kinks):
    for _, fn in steps:
        x = fn(x, kinks)
    return x


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_chains_give_a_correct_gradient_or_a_clean_error(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4), label="input shape")
    count = int(np.prod(shape))
    # distinct values at least 0.1 apart, none within 0.05 of zero: no tie or kink at the start
    grid = (np.array(data.draw(st.permutations(range(count)), label="order"), dtype=np.float64) - count / 2 + 0.5)
    x0 = (grid * data.draw(st.sampled_from([0.1, 0.3]), label="step")).reshape(shape)
    steps, current = [], x0
    for _ in range(data.draw(st.integers(1, 4), label="length")):
        builder = data.draw(st.sampled_from(BUILDERS), label="op kind")
        steps.append(builder(data, current.shape))
        try:
            with np.errstate(all="ignore"):  # overflow is judged below, by the values
                current = run_chain(steps[-1:], Tensor(current), Kinks()).data
        except CLEAN_ERRORS as error:
            assert str(error), "an error without a message"
            assert frames_inside_the_checks(error), (
                f"{type(error).__name__} from deep inside, for {[label for label, _ in steps]}:\n"
                + "".join(traceback.format_tb(error.__traceback__)[-4:]))
            event(f"clean {type(error).__name__} at op {len(steps)}")
            return  # a clean, documented refusal: the chain ends here
        # any other exception propagates and fails the test
    labels = [label for label, _ in steps]
    kinks = Kinks()
    with np.errstate(all="ignore"):
        out = run_chain(steps, Tensor(x0, requires_grad=True, dtype=np.float64), kinks)
    assume(np.all(np.isfinite(out.data)) and np.max(np.abs(out.data), initial=0) < 1e6)
    assume(kinks.margin > KINK_MARGIN)
    assert out.dtype == np.float64
    event(f"gradient checked through {len(steps)} ops")
    try:
        gradcheck(lambda x: run_chain(steps, x, Kinks()), x0, eps=1e-6, atol=1e-5, rtol=1e-3, max_entries=16)
    except GradcheckError as error:
        raise AssertionError(f"wrong gradient for x{shape} -> {labels}: {error}") from None


def test_the_fuzzer_reaches_both_outcomes():
    """The fuzz test means something only if its draws both succeed and fail: run a fixed set of
    chains through the same machinery and check that each outcome occurs."""
    outcomes = {"error": 0, "gradient": 0}
    rng = np.random.default_rng(0)
    calls = [(lambda t: t.sum(axis=5)), (lambda t: F.maxpool2d(t, 3)), (lambda t: (t * 2).tanh().sum(axis=0)),
             (lambda t: F.correlate2d(t, np.ones((2, 2)), mode="full").exp())]
    for call in calls:
        x = rng.standard_normal((2, 2))
        try:
            gradcheck(call, x)
            outcomes["gradient"] += 1
        except CLEAN_ERRORS as error:
            assert frames_inside_the_checks(error)
            outcomes["error"] += 1
    assert outcomes == {"error": 2, "gradient": 2}


@pytest.mark.parametrize("deep", [True, False])
def test_the_origin_check_tells_our_errors_from_numpys(deep):
    """The helper the fuzzer relies on: an error raised inside numpy is not 'clean'."""
    try:
        np.ones(3).reshape(4) if deep else Tensor(np.ones(3)).reshape(4)
    except ValueError as error:
        assert frames_inside_the_checks(error) is (not deep)
