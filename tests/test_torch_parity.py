"""Parity with PyTorch: forward values and gradients of every op family in float64 (rtol 1e-10),
second derivatives through `grad(..., create_graph=True)`, and a float32 LeNet-like network.

PyTorch is the oracle: each case runs the same computation in both frameworks on the same
arrays and compares the value, then the vector-Jacobian product with a random cotangent (never
ones: for softmax a cotangent of ones gives a zero gradient, which would prove nothing).
"""
import pytest

torch = pytest.importorskip("torch")

import itertools  # noqa: E402
import operator  # noqa: E402

import numpy as np  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tinygrad_cnn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, grad  # noqa: E402
from tinygrad_cnn.testing import strategies as tst  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12
rng = np.random.default_rng(19980101)


def r(*shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def distinct(*shape, step=0.1):
    """Values of a random permutation, `step` apart: no window or slice holds a tie."""
    return (rng.permutation(int(np.prod(shape))) - np.prod(shape) / 2).reshape(shape) * step


def as_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    assert isinstance(value, Tensor), f"expected a Tensor, got {type(value).__name__}"
    return np.asarray(value)


def assert_matches(ours, theirs, what, rtol=RTOL, atol=ATOL):
    """Same shape, same dtype, same values (to rtol/atol) as the torch result."""
    assert ours is not None, f"{what}: no gradient (None)"
    a, b = as_numpy(ours), as_numpy(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch has {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype}, torch has {b.dtype}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def check_parity(ours, theirs, *arrays, seed=0, rtol=RTOL, atol=ATOL):
    """ours(*Tensors) against theirs(*torch tensors): the value, then ``backward(v)`` for a
    random cotangent v, comparing every input's ``.grad``."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    assert_matches(y, ty, "forward", rtol, atol)
    v = np.random.default_rng(seed).standard_normal(ty.shape)
    y.backward(v)
    ty.backward(torch.tensor(v))
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert_matches(x.grad, t.grad, f"gradient of input {i}", rtol, atol)


# ---- convolution ---------------------------------------------------------------------------------
def torch_conv(x, k, mode, stride):
    """conv2d as the brief defines it: 'valid' is no padding, 'full' pads kh-1 and kw-1."""
    kh, kw = k.shape[-2:]
    padding = (kh - 1, kw - 1) if mode == "full" else 0
    return TF.conv2d(x, k, stride=stride, padding=padding)


CONV_CASES = [  # x (N, C, H, W), k (F, C, kh, kw), mode, stride
    ((1, 1, 5, 5), (1, 1, 3, 3), "valid", 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), "valid", 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), "valid", 2),
    ((3, 2, 8, 8), (2, 2, 5, 5), "valid", 2),  # a row and a column no window reaches
    ((2, 2, 9, 10), (3, 2, 3, 3), "valid", (2, 3)),
    ((1, 2, 4, 4), (3, 2, 4, 4), "valid", 1),  # kernel as large as the input: 1x1 output
    ((2, 3, 5, 6), (4, 3, 3, 2), "full", 1),
    ((2, 2, 6, 7), (3, 2, 3, 3), "full", 2),
    ((1, 3, 4, 5), (2, 3, 4, 4), "full", (2, 3)),
    ((2, 1, 3, 3), (2, 1, 5, 4), "full", 1),  # kernel larger than the input
    ((2, 2, 3, 4), (3, 2, 5, 4), "full", (3, 2)),
]


@pytest.mark.parametrize("x_shape, k_shape, mode, stride", CONV_CASES)
def test_correlate2d_matches_conv2d(x_shape, k_shape, mode, stride):
    check_parity(lambda x, k: F.correlate2d(x, k, mode=mode, stride=stride),
                 lambda x, k: torch_conv(x, k, mode, stride), r(*x_shape), r(*k_shape))


def test_tensor_method_and_convolve2d_match_conv2d():
    """``x.correlate2d`` is the same op; convolve2d is conv2d with the kernel flipped."""
    x, k = r(2, 3, 6, 5), r(2, 3, 3, 2)
    check_parity(lambda x, k: x.correlate2d(k, stride=(1, 2)),
                 lambda x, k: TF.conv2d(x, k, stride=(1, 2)), x, k)
    check_parity(lambda x, k: F.convolve2d(x, k, mode="full", stride=2),
                 lambda x, k: TF.conv2d(x, torch.flip(k, (-2, -1)), stride=2, padding=(2, 1)), x, k)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (2, 2), (4, 3), (2, 5)])
def test_correlate2d_same_matches_torch_padding_same(kernel):
    """'same' at stride 1 against torch's own padding='same' (even kernels pad more after)."""
    check_parity(lambda x, k: F.correlate2d(x, k, mode="same"),
                 lambda x, k: TF.conv2d(x, k, padding="same"), r(2, 2, 6, 7), r(3, 2, *kernel))


def _lift_to_conv2d(x, k, rotate):
    """Every kernel rank of correlate2d/convolve2d as one torch conv2d: x -> (N, C, H, W),
    k -> (F, C, kh, kw); returns the lifted pair and how to reshape the result back."""
    height, width = x.shape[-2:]
    if rotate:
        k = torch.flip(k, (-2, -1))
    if k.ndim == 2:  # (kh, kw) on every leading slice
        return x.reshape(-1, 1, height, width), k[None, None], x.shape[:-2]
    channels = k.shape[-3]
    lead = x.shape[:-3]
    if k.ndim == 3:  # (C, kh, kw): one feature map, summed over channels
        return x.reshape(-1, channels, height, width), k[None], lead
    return x.reshape(-1, channels, height, width), k, lead + (k.shape[0],)


@settings(max_examples=40, deadline=None)
@given(args=tst.conv_args(modes=("valid", "full"), strides=(1, 2, (2, 3))), rotate=st.booleans())
def test_conv_shapes_match_conv2d(args, rotate):
    x, k, mode, stride = args
    ours = F.convolve2d if rotate else F.correlate2d

    def theirs(x, k):
        x4, k4, lead = _lift_to_conv2d(x, k, rotate)
        y = torch_conv(x4, k4, mode, stride)
        return y.reshape(lead + y.shape[-2:])

    check_parity(lambda x, k: ours(x, k, mode=mode, stride=stride), theirs, x, k)


# ---- max pooling ---------------------------------------------------------------------------------
def torch_maxpool(x, size, stride):
    """max_pool2d over the last two axes of an input of any rank >= 2 (floor, no padding)."""
    y = TF.max_pool2d(x.reshape((-1,) + x.shape[-2:]), kernel_size=size,
                      stride=size if stride is None else stride)
    return y.reshape(x.shape[:-2] + y.shape[-2:])


POOL_CASES = [  # x shape, size, stride
    ((2, 3, 6, 6), 2, None),  # non-overlapping
    ((1, 2, 5, 5), 3, 1),  # overlapping, stride 1: shared maxima add up
    ((2, 2, 6, 6), 3, 2),  # overlapping by one row and column
    ((2, 1, 7, 9), (2, 3), (1, 2)),  # non-square size and stride
    ((2, 2, 7, 5), 2, None),  # floor: the last row and column belong to no window
    ((3, 8, 7), (3, 2), (2, 3)),  # a column gap between windows (stride > size)
    ((6, 5), 2, 1),  # a single 2-D map
]


@pytest.mark.parametrize("shape, size, stride", POOL_CASES)
def test_maxpool2d_matches_max_pool2d(shape, size, stride):
    check_parity(lambda x: F.maxpool2d(x, size, stride), lambda x: torch_maxpool(x, size, stride),
                 distinct(*shape))


@settings(max_examples=25, deadline=None)
@given(args=tst.pool_args())
def test_maxpool2d_shapes_match_max_pool2d(args):
    x, size, stride = args
    check_parity(lambda x: x.maxpool2d(size, stride), lambda x: torch_maxpool(x, size, stride), x)


# ---- losses, softmax, matmul ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 40.0])  # 40: exponents far beyond float64's range without the shift
def test_cross_entropy(scale):
    labels = np.array([0, 4, 2, 2, 1, 3])
    check_parity(lambda z: F.cross_entropy(z, labels),
                 lambda z: TF.cross_entropy(z, torch.tensor(labels)), r(6, 5, scale=scale))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_log_softmax_and_softmax(axis, offset):
    x = r(3, 4, 5, scale=3) + offset
    check_parity(lambda x: F.log_softmax(x, axis=axis), lambda x: torch.log_softmax(x, dim=axis), x)
    check_parity(lambda x: F.softmax(x, axis=axis), lambda x: torch.softmax(x, dim=axis), x, seed=1)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), ()])
def test_mse_loss(shape):
    check_parity(F.mse_loss, TF.mse_loss, r(*shape), r(*shape))


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4,)),  # dot product: a 0-d result
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),  # b broadcast over a's batch
    ((1, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),  # both broadcast: (2, 5, 3, 2)
]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES)
@pytest.mark.parametrize("ours", [F.matmul, operator.matmul], ids=["F.matmul", "@"])
def test_matmul(ours, a_shape, b_shape):
    check_parity(ours, torch.matmul, r(*a_shape), r(*b_shape))


# ---- elementwise ops with broadcasting -------------------------------------------------------------
SHAPES = [(), (1,), (3, 1), (2, 3, 4)]


def _signed(*shape):
    """Away from zero: |value| in [0.5, 2]."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


BINARY = {  # the same expression runs on Tensors and on torch tensors
    "add": (operator.add, r, r),
    "sub": (operator.sub, r, r),
    "mul": (operator.mul, r, r),
    "div": (operator.truediv, r, _signed),
    "pow": (operator.pow, lambda *s: rng.uniform(0.5, 2.0, s), lambda *s: rng.uniform(-2, 2, s)),
}


@pytest.mark.parametrize("a_shape, b_shape", list(itertools.product(SHAPES, SHAPES)))
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_broadcast(name, a_shape, b_shape):
    op, make_a, make_b = BINARY[name]
    check_parity(op, op, make_a(*a_shape), make_b(*b_shape))


SCALAR_EXPRESSIONS = {
    "t + 2": lambda t: t + 2.0,
    "2 - t": lambda t: 2.0 - t,
    "t * 0.5 - 1": lambda t: t * 0.5 - 1,
    "3 / t": lambda t: 3.0 / t,
    "t / 4": lambda t: t / 4,
    "t ** 3": lambda t: t ** 3,
    "2 ** t": lambda t: 2.0 ** t,
    "-t": lambda t: -t,
    "t * t (one input used twice)": lambda t: t * t,
}


@pytest.mark.parametrize("name", list(SCALAR_EXPRESSIONS))
@pytest.mark.parametrize("shape", [(), (3, 1), (2, 3, 4)])
def test_expressions_with_python_numbers(name, shape):
    expression = SCALAR_EXPRESSIONS[name]
    check_parity(expression, expression, _signed(*shape))


UNARY = {
    "exp": (lambda t: t.exp(), torch.exp, r),
    "log": (lambda t: t.log(), torch.log, lambda *s: rng.uniform(0.1, 5, s)),
    "sigmoid": (F.sigmoid, torch.sigmoid, lambda *s: r(*s, scale=4)),
    "tanh": (F.tanh, torch.tanh, r),
    # relu at exactly 0: both frameworks give the gradient 0 there
    "relu": (F.relu, torch.relu, lambda *s: np.where(rng.random(s) < 0.2, 0.0, r(*s))),
}


@pytest.mark.parametrize("shape", [(), (1,), (2, 3, 4)])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops(name, shape):
    ours, theirs, make = UNARY[name]
    check_parity(ours, theirs, make(*shape))


def test_sigmoid_and_tanh_saturate_as_torch():
    x = np.array([-800.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 800.0])
    check_parity(F.sigmoid, torch.sigmoid, x)
    check_parity(F.tanh, torch.tanh, x)


# ---- reductions and movement ---------------------------------------------------------------------
AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]
REDUCTIONS = {
    "sum": (lambda t, axis, keep: t.sum(axis=axis, keepdims=keep),
            lambda t, dims, keep: t.sum(dim=dims, keepdim=keep)),
    "mean": (lambda t, axis, keep: t.mean(axis=axis, keepdims=keep),
             lambda t, dims, keep: t.mean(dim=dims, keepdim=keep)),
    "max": (lambda t, axis, keep: t.max(axis=axis, keepdims=keep),
            lambda t, dims, keep: t.amax(dim=dims, keepdim=keep)),  # no ties: amax's split is moot
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions(name, axis, keepdims):
    ours, theirs = REDUCTIONS[name]
    dims = (0, 1, 2) if axis is None else axis
    check_parity(lambda t: ours(t, axis, keepdims), lambda t: theirs(t, dims, keepdims),
                 distinct(2, 3, 4))


MOVEMENT = {
    "reshape": (lambda t: t.reshape(4, 6), lambda t: t.reshape(4, 6)),
    "reshape -1": (lambda t: t.reshape(-1, 3), lambda t: t.reshape(-1, 3)),
    "flatten": (lambda t: t.flatten(1), lambda t: t.flatten(1)),
    "permute": (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    "transpose": (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
    "swapaxes": (lambda t: t.swapaxes(0, 2), lambda t: t.transpose(0, 2)),
    "view": (lambda t: t.view(3, 8), lambda t: t.view(3, 8)),
    "flatten dims": (lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
    "unsqueeze": (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
    "unsqueeze -1": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "squeeze": (lambda t: t[:, :1].squeeze(), lambda t: t[:, :1].squeeze()),
    "squeeze dim": (lambda t: t[:1, :, :1].squeeze(0), lambda t: t[:1, :, :1].squeeze(0)),
    "expand": (lambda t: t[:, :1].expand(5, 2, 3, 4), lambda t: t[:, :1].expand(5, 2, 3, 4)),
    "expand -1": (lambda t: t[:, :1].expand(-1, 3, -1), lambda t: t[:, :1].expand(-1, 3, -1)),
    "slice": (lambda t: t[1:, ::2], lambda t: t[1:, ::2]),
    "int and ellipsis": (lambda t: t[..., 1], lambda t: t[..., 1]),
    "None": (lambda t: t[:, None, 0], lambda t: t[:, None, 0]),
    "repeated integer index": (lambda t: t[[1, 0, 1]], lambda t: t[[1, 0, 1]]),
    "advanced pair": (lambda t: t[np.array([0, 1, 1]), :, np.array([3, 0, 3])],
                      lambda t: t[torch.tensor([0, 1, 1]), :, torch.tensor([3, 0, 3])]),
}


@pytest.mark.parametrize("name", list(MOVEMENT))
def test_movement(name):
    ours, theirs = MOVEMENT[name]
    check_parity(ours, theirs, r(2, 3, 4))


# The same source on both sides: PyTorch's vocabulary, ported by changing the import alone.
VOCABULARY = {
    "abs": lambda lib, t: t.abs() + lib.abs(t * 2),
    "sqrt": lambda lib, t: (t * t + 0.5).sqrt() + lib.sqrt(t * t + 1),
    "clamp": lambda lib, t: t.clamp(-0.5, 0.7) + t.clamp(min=0.1) + lib.clamp(t, max=0.2) + t.clip(-1, 1),
    "where": lambda lib, t: lib.where(t > 0, t * 3, t.exp()),
    "maximum": lambda lib, t: lib.maximum(t, t.flip(0) if hasattr(t, "flip") else t[::-1]),
    "minimum": lambda lib, t: lib.minimum(t * 2, 0.3 * t),
    "max dim values": lambda lib, t: t.max(1).values + t.max(dim=0, keepdim=True)[0].sum(),
    "min dim values": lambda lib, t: t.min(-1)[0] * t.min(),
    "amax": lambda lib, t: t.amax((0, 2)) + lib.amin(t, 1).sum(),
    "pow": lambda lib, t: t.pow(2) + (t * t + 1).pow(0.5),
    "sum dim keepdim": lambda lib, t: t.sum(dim=1, keepdim=True) * t.mean(dim=(0, 2), keepdim=True),
    "comparison mask": lambda lib, t: t * (t > 0.1).float() + t * (t <= -0.2).double(),
    "cat": lambda lib, t: lib.cat([t, t.exp(), t * 2], 1),
    "stack": lambda lib, t: lib.stack([t, t * t], -1) + lib.stack((t, t), 0).sum(0).unsqueeze(-1),
    "split and chunk": lambda lib, t: t.split(1, 1)[1] * t.chunk(2, 2)[0].sum() + t.split([2, 1], 1)[0].sum(),
}


@pytest.mark.parametrize("name", list(VOCABULARY))
def test_vocabulary_ported_by_changing_the_import(name):
    import tinygrad_cnn

    fn = VOCABULARY[name]
    check_parity(lambda t: fn(tinygrad_cnn, t), lambda t: fn(torch, t), distinct(2, 3, 4) - 1.1)


def test_indices_and_integer_tensors_as_pytorchs():
    import tinygrad_cnn

    a = distinct(3, 4)
    for lib, make in ((tinygrad_cnn, tinygrad_cnn.tensor), (torch, torch.tensor)):
        t = make(a)
        labels = make([2, 0, 1])
        got = [t.argmax(), t.argmax(1), t.argmin(0, keepdim=True), t.max(1).indices, t.min(0)[1], labels,
               labels + 1, labels * 2, labels / 2, (labels == 1).sum(), labels.sum(), (t > 0.2).sum(1),
               t[labels > 0], make([True, False]), lib.where(labels > 0, labels, 7)]
        if lib is torch:
            theirs = [x.numpy() for x in got]
        else:
            ours = [x.data for x in got]
    for mine, other in zip(ours, theirs):
        assert mine.dtype == other.dtype, (mine.dtype, other.dtype)
        np.testing.assert_array_equal(mine, other)


# ---- second derivatives --------------------------------------------------------------------------
def double_backward(ours, theirs, arrays, cotangent, directions):
    """First grad(f, inputs, grad_outputs=v, create_graph=True) in both frameworks, then the
    gradient of Σ_i ⟨g_i, u_i⟩ with respect to the inputs (a Hessian-vector product when f is a
    scalar); compares f, g and the second gradient."""
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    assert_matches(y, ty, "forward")
    v = np.asarray(cotangent, dtype=np.float64)
    gs = grad(y, xs, grad_outputs=Tensor(v), create_graph=True)
    tgs = torch.autograd.grad(ty, ts, grad_outputs=torch.tensor(v), create_graph=True)
    for i, (g, tg) in enumerate(zip(gs, tgs)):
        assert g.requires_grad, f"first gradient {i} was not recorded (create_graph=True)"
        assert_matches(g, tg, f"first gradient of input {i}")
    inner = sum((g * Tensor(u)).sum() for g, u in zip(gs, directions))
    tinner = sum((tg * torch.tensor(u)).sum() for tg, u in zip(tgs, directions))
    second, tsecond = grad(inner, xs), torch.autograd.grad(tinner, ts)
    for i, (h, th) in enumerate(zip(second, tsecond)):
        assert np.abs(as_numpy(th)).max() > 1e-3, "torch's second gradient is ~0: a vacuous case"
        assert_matches(h, th, f"second gradient of input {i}")


@pytest.mark.parametrize("mode, stride", [("valid", 1), ("valid", 2), ("full", (2, 1))])
def test_second_derivative_conv_sigmoid(mode, stride):
    x, k = r(2, 2, 6, 7), r(3, 2, 3, 2, scale=0.5)
    out_shape = torch_conv(torch.tensor(x), torch.tensor(k), mode, stride).shape
    double_backward(lambda x, k: F.sigmoid(F.correlate2d(x, k, mode=mode, stride=stride)),
                    lambda x, k: torch.sigmoid(torch_conv(x, k, mode, stride)),
                    [x, k], r(*out_shape), [r(*x.shape), r(*k.shape)])


def test_second_derivative_conv_maxpool_tanh():
    """Through maxpool (its backward's backward is a gather) and a loss with a squared term."""
    x, k, target = distinct(2, 1, 7, 7, step=0.05), r(2, 1, 2, 2, scale=0.5), r(2, 2, 3, 3)
    double_backward(
        lambda x, k: F.mse_loss(F.tanh(F.maxpool2d(F.correlate2d(x, k), 2)), Tensor(target)),
        lambda x, k: TF.mse_loss(torch.tanh(torch_maxpool(TF.conv2d(x, k), 2, None)),
                                 torch.tensor(target)),
        [x, k], np.array(1.0), [r(*x.shape), r(*k.shape)])


def test_hessian_vector_product_of_an_mlp():
    inputs, labels = r(6, 3), np.array([0, 3, 1, 1, 2, 0])
    params = [r(5, 3), r(5), r(4, 5), r(4)]  # w1, b1, w2, b2

    def ours(w1, b1, w2, b2):
        return F.cross_entropy(F.tanh(Tensor(inputs) @ w1.T + b1) @ w2.T + b2, labels)

    def theirs(w1, b1, w2, b2):
        return TF.cross_entropy(torch.tanh(torch.tensor(inputs) @ w1.T + b1) @ w2.T + b2,
                                torch.tensor(labels))

    double_backward(ours, theirs, params, np.array(1.0), [r(*p.shape) for p in params])


# ---- a LeNet-like network in float32 ---------------------------------------------------------------
def test_lenet_float32_gradients_match_torch():
    g = np.random.default_rng(5)
    n = 8
    x = g.standard_normal((n, 1, 28, 28)).astype(np.float32)
    labels = g.integers(0, 10, n)
    shapes = {"k1": (4, 1, 5, 5), "b1": (4,), "k2": (6, 4, 3, 3), "b2": (6,), "w": (10, 150), "b": (10,)}
    fan_in = {"k1": 25, "b1": 25, "k2": 36, "b2": 36, "w": 150, "b": 150}
    arrays = {name: (g.standard_normal(shape) / np.sqrt(fan_in[name])).astype(np.float32)
              for name, shape in shapes.items()}

    p = {name: Tensor(a, requires_grad=True) for name, a in arrays.items()}
    a1 = F.maxpool2d(F.relu(F.correlate2d(Tensor(x), p["k1"]) + p["b1"].reshape(4, 1, 1)), 2)
    a2 = F.maxpool2d(F.relu(F.correlate2d(a1, p["k2"]) + p["b2"].reshape(6, 1, 1)), 2)
    logits = a2.reshape(n, 150) @ p["w"].T + p["b"]
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    t = {name: torch.tensor(a, requires_grad=True) for name, a in arrays.items()}
    ta1 = TF.max_pool2d(TF.relu(TF.conv2d(torch.tensor(x), t["k1"], t["b1"])), 2)
    ta2 = TF.max_pool2d(TF.relu(TF.conv2d(ta1, t["k2"], t["b2"])), 2)
    tlogits = ta2.flatten(1) @ t["w"].T + t["b"]
    tloss = TF.cross_entropy(tlogits, torch.tensor(labels))
    tloss.backward()

    assert a1.shape == (n, 4, 12, 12) and a2.shape == (n, 6, 5, 5)
    assert logits.dtype == np.float32 and loss.dtype == np.float32
    assert_matches(logits, tlogits, "logits", rtol=1e-4, atol=1e-5)
    assert_matches(loss, tloss, "loss", rtol=1e-5, atol=1e-6)
    for name in shapes:
        assert np.abs(t[name].grad.numpy()).max() > 1e-4, f"torch's ∂loss/∂{name} is ~0: a vacuous case"
        assert_matches(p[name].grad, t[name].grad, f"∂loss/∂{name}", rtol=1e-4, atol=1e-5)
