"""Bad input -> a clear error: one table, one parametrized test (PyTorch's OpInfo error_inputs).

Each row is (id, call, error type, message pattern). The id starts with the public name it
exercises ("F.conv2d", "Tensor.__add__", "nn.Linear", ...); `test_every_public_name_has_a_case`
fails when a public op, layer, loss, optimizer or loader has none. Every call runs with warnings
as errors, and the error must come from the package's own checks (the innermost frame in
tinygrad_cnn, outside the kernels and the primitives), never from deep inside numpy.

The kinds, by the rule in ``tinygrad_cnn.functional``: TypeError for an argument of the wrong
kind, ValueError for a wrong value or shape (IndexError for an index), RuntimeError for misuse of
the engine (backward), and the package's ValueError subclasses (StateDictError,
CheckpointError, DatasetError) for files and state dicts. NaN is allowed in data (it propagates,
as in numpy and PyTorch; see test_numerics for detect_anomaly) and refused where it has no
meaning: labels, strides, sizes, paddings, hyperparameters.
"""
from __future__ import annotations

import tempfile
import traceback
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import frames_inside_the_checks

import tinygrad_cnn
import tinygrad_cnn.functional as F
import tinygrad_cnn.nn.functional as NF
from tinygrad_cnn import Tensor, data, detect_anomaly, grad, io, nn, optim
from tinygrad_cnn.data import DataLoader, DatasetError
from tinygrad_cnn.io import CheckpointError
from tinygrad_cnn.nn import StateDictError

PACKAGE = Path(tinygrad_cnn.__file__).resolve().parent
NOWHERE = Path(tempfile.gettempdir()) / f"tinygrad_cnn-absent-{uuid.uuid4().hex}"
NAN = float("nan")


def t(*shape, grad=True, dtype=np.float64):
    return Tensor(np.ones(shape), requires_grad=grad, dtype=dtype)


def arange(*shape):
    return Tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape), requires_grad=True)


def param(*shape):
    return Tensor(np.zeros(shape or (2,)), requires_grad=True)


# ---- engine misuse, as calls ------------------------------------------------------------------
def backward_twice():
    y = (t(3) * t(3)).sum()
    y.backward()
    y.backward()


def step_then_backward():
    model = nn.Linear(3, 2, rng=0)
    loss = model(Tensor(np.ones((4, 3), np.float32))).sum()
    loss.backward(retain_graph=True)
    optim.SGD(model.parameters(), lr=0.1).step()
    loss.backward()


def new_data_then_backward():
    x = t(3)
    y = (x.exp() * x).sum()
    x.data = np.zeros(3)
    y.backward()


def write_saved_array():
    x = t(3)
    y = (x * x).sum()  # noqa: F841 -- the graph that holds x
    x.data[0] = 5.0


def anomaly(call):
    def run():
        with detect_anomaly():
            call()
    return run


CASES = [
    # ---- Tensor construction and dtypes ----------------------------------------------------
    ("Tensor/str", lambda: Tensor("abc"), TypeError, r"Tensor data must be numbers, got str 'abc'"),
    ("Tensor/bytes", lambda: Tensor(b"xy"), TypeError, r"Tensor data must be numbers, got bytes"),
    ("Tensor/str array", lambda: Tensor(np.array(["a", "b"])), TypeError, r"real numbers .* dtype <U1"),
    ("Tensor/object array", lambda: Tensor(np.array([1, "a"], dtype=object)), TypeError, r"dtype object"),
    ("Tensor/None in list", lambda: Tensor([1, None]), TypeError, r"real numbers .* got list \[1, None\]"),
    ("Tensor/None", lambda: Tensor(None), TypeError, r"got NoneType None"),
    ("Tensor/dict", lambda: Tensor({"a": 1}), TypeError, r"got dict"),
    ("Tensor/complex", lambda: Tensor(np.ones(2, dtype=np.complex128)), TypeError, r"complex128"),
    ("Tensor/datetime", lambda: Tensor(np.array(["2020-01-01"], dtype="datetime64[D]")), TypeError,
     r"datetime64"),
    ("Tensor/ragged", lambda: Tensor([[1, 2], [3]]), ValueError, r"rectangular"),
    ("Tensor/float16 dtype", lambda: Tensor([1, 2], dtype=np.float16), TypeError,
     r"dtype must be one of float32, float64, int64, int32, uint8, bool, got float16"),
    ("Tensor/float16 data", lambda: Tensor(np.ones(2, np.float16)), TypeError,
     r"float16 is not supported; the supported dtypes are float32, float64, int64, int32, uint8, bool"),
    ("Tensor/unknown dtype", lambda: Tensor([1], dtype="junk"), TypeError, r"dtype must be one of .*, got 'junk'"),
    ("Tensor/int requires grad", lambda: Tensor([1, 2], dtype=np.int64, requires_grad=True), TypeError,
     r"only floating tensors \(float32 or float64\) can require grad, got int64"),
    ("Tensor.requires_grad_/int", lambda: tinygrad_cnn.tensor([1, 2]).requires_grad_(), TypeError,
     r"only floating tensors .* got int64"),
    ("Tensor.astype/complex", lambda: t(2).astype(np.complex64), TypeError, r"dtype must be one of .*, got complex64"),
    ("Tensor.to/float16", lambda: t(2).to(np.float16), TypeError, r"got float16"),
    ("Tensor.__gt__/shapes", lambda: t(2, 3) > t(4), ValueError, r"comparison: operands of shapes \(2, 3\) and \(4,\)"),
    ("Tensor.__ge__/str", lambda: t(2) >= "a", TypeError, r"Tensor data must be numbers, got str 'a'"),
    ("Tensor.__lt__/shapes", lambda: t(3) < t(2), ValueError, r"comparison: .*\(3,\) and \(2,\)"),
    ("Tensor.__le__/shapes", lambda: t(3) <= t(2), ValueError, r"comparison: .*\(3,\) and \(2,\)"),
    ("Tensor.__eq__/shapes", lambda: t(3) == t(2), ValueError, r"comparison: .*\(3,\) and \(2,\)"),
    ("Tensor.__ne__/shapes", lambda: t(3) != t(2), ValueError, r"comparison: .*\(3,\) and \(2,\)"),
    ("Tensor.size/dim", lambda: t(2, 3).size(2), ValueError, r"axis 2 is out of range"),
    ("Tensor.mean/int", lambda: tinygrad_cnn.tensor([1, 2]).mean(), TypeError, r"mean\(\) needs a floating tensor"),
    ("Tensor.mean/dim and axis", lambda: t(2, 3).mean(dim=0, axis=1), TypeError, r"dim= or axis=, not both"),
    ("Tensor.min/empty", lambda: Tensor(np.zeros((0, 3))).min(0), ValueError, r"min\(\) over an empty axis"),
    ("Tensor.amax/dim", lambda: t(2, 3).amax(2), ValueError, r"axis 2 is out of range"),
    ("Tensor.amin/dim", lambda: t(2, 3).amin((0, 0)), ValueError, r"repeats"),
    ("Tensor.argmax/dim", lambda: t(2, 3).argmax(2), ValueError, r"axis 2 is out of range"),
    ("Tensor.argmax/dims", lambda: t(2, 3).argmax((0, 1)), TypeError, r"argmax\(\): dim must be an int or None"),
    ("Tensor.argmin/empty", lambda: Tensor(np.zeros((0,))).argmin(), ValueError, r"argmin\(\) of an empty tensor"),
    ("Tensor.clamp/none", lambda: t(2).clamp(), ValueError, r"clamp\(\): give min, max or both"),
    ("Tensor.clip/str", lambda: t(2).clip("a"), TypeError, r"Tensor data must be numbers"),
    ("Tensor.pow/shapes", lambda: t(2).pow(t(3)), ValueError, r"Pow: .*\(2,\) and \(3,\)"),
    ("Tensor.permute/not a permutation", lambda: t(2, 3).permute(0, 0), ValueError,
     r"dims \(0, 0\) are not a permutation of a 2-d"),
    ("Tensor.permute/too many", lambda: t(2, 3).permute(0, 1, 2), ValueError, r"axis 2 is out of range"),
    ("Tensor.unsqueeze/dim", lambda: t(2, 3).unsqueeze(3), ValueError, r"axis 3 is out of range .* 3 dim"),
    ("Tensor.unsqueeze/float", lambda: t(2, 3).unsqueeze(1.0), TypeError, r"unsqueeze: dim must be an int"),
    ("Tensor.squeeze/dim", lambda: t(2, 3).squeeze(4), ValueError, r"axis 4 is out of range"),
    ("Tensor.expand/shape", lambda: t(2, 3).expand(4, 3), ValueError, r"cannot broadcast .* \(2, 3\) to \(4, 3\)"),
    ("Tensor.expand/fewer", lambda: t(2, 3).expand(3), ValueError, r"expand: 1 sizes for a tensor of shape \(2, 3\)"),
    ("F.conv2d/int64 input", lambda: F.conv2d(tinygrad_cnn.tensor(np.ones((1, 1, 3, 3), np.int64)), t(1, 1, 2, 2)),
     TypeError, r"conv2d: x must be a floating tensor \(float32 or float64\), got int64; convert it with .float\(\)"),
    ("F.correlate2d/bool kernel", lambda: F.correlate2d(t(3, 3), tinygrad_cnn.tensor([[True]])), TypeError,
     r"correlate2d: k must be a floating tensor .* got bool"),
    ("F.maxpool2d/uint8", lambda: F.maxpool2d(tinygrad_cnn.tensor(np.ones((4, 4), np.uint8))), TypeError,
     r"maxpool2d: x must be a floating tensor .* got uint8"),
    ("F.linear/int weight", lambda: F.linear(t(2, 3), tinygrad_cnn.tensor(np.ones((4, 3), np.int32))), TypeError,
     r"linear: weight must be a floating tensor .* got int32"),
    ("Tensor.split/size", lambda: t(4, 3).split(0), ValueError, r"split\(\): split_size must be an int >= 1, got 0"),
    ("Tensor.split/sections", lambda: t(4, 3).split([1, 2]), ValueError, r"sizes \[1, 2\] do not add up to dim 0's length 4"),
    ("Tensor.chunk/chunks", lambda: t(4, 3).chunk(0, 1), ValueError, r"chunks must be an int >= 1, got 0"),
    ("tc.tensor/str", lambda: tinygrad_cnn.tensor("ab"), TypeError, r"Tensor data must be numbers, got str"),
    ("tc.tensor/requires grad", lambda: tinygrad_cnn.tensor([True], requires_grad=True), TypeError, r"got bool"),
    ("tc.from_numpy/list", lambda: tinygrad_cnn.from_numpy([1]), TypeError, r"takes a numpy array, got list"),
    ("tc.cat/empty", lambda: tinygrad_cnn.cat([]), TypeError, r"cat\(\) takes a non-empty list or tuple of Tensors"),
    ("tc.cat/shapes", lambda: tinygrad_cnn.cat([t(2, 3), t(2, 4)]), ValueError,
     r"tensors of shapes \[\(2, 3\), \(2, 4\)\] differ outside dim 0"),
    ("tc.cat/dim", lambda: tinygrad_cnn.cat([t(2), t(2)], 1), ValueError, r"axis 1 is out of range"),
    ("tc.stack/shapes", lambda: tinygrad_cnn.stack([t(2), t(3)]), ValueError, r"stack\(\): tensors of shapes"),
    ("tc.stack/arrays", lambda: tinygrad_cnn.stack([np.ones(2)]), TypeError, r"stack\(\) takes a non-empty list"),
    ("tc.split/dim", lambda: tinygrad_cnn.split(t(2, 3), 1, 2), ValueError, r"axis 2 is out of range"),
    ("tc.chunk/float", lambda: tinygrad_cnn.chunk(t(2, 3), 1.5), ValueError, r"chunks must be an int"),
    ("tc.where/condition", lambda: tinygrad_cnn.where(t(2), t(2), t(2)), TypeError, r"condition must be a bool"),
    ("tc.where/shapes", lambda: tinygrad_cnn.where(np.ones(3, bool), t(2), t(2)), ValueError,
     r"condition \(3,\), a \(2,\) and b \(2,\) do not broadcast"),
    ("tc.maximum/shapes", lambda: tinygrad_cnn.maximum(t(2), t(3)), ValueError, r"comparison: .*\(2,\) and \(3,\)"),
    ("tc.minimum/str", lambda: tinygrad_cnn.minimum(t(2), "a"), TypeError, r"Tensor data must be numbers"),
    ("tc.zeros/size", lambda: tinygrad_cnn.zeros(2, -1), ValueError, r"zeros: sizes must be ints >= 0, got \(2, -1\)"),
    ("tc.ones/float", lambda: tinygrad_cnn.ones(2.5), ValueError, r"ones: sizes must be ints"),
    ("tc.empty/dtype", lambda: tinygrad_cnn.empty(2, dtype=np.float16), TypeError, r"got float16"),
    ("tc.full/size", lambda: tinygrad_cnn.full((-2,), 1.0), ValueError, r"full: sizes must be ints >= 0"),
    ("tc.zeros_like/dtype", lambda: tinygrad_cnn.zeros_like(t(2), dtype="junk"), TypeError, r"got 'junk'"),
    ("tc.ones_like/grad", lambda: tinygrad_cnn.ones_like(t(2), dtype=np.int64, requires_grad=True), TypeError,
     r"only floating tensors"),
    ("tc.full_like/fill", lambda: tinygrad_cnn.full_like(t(2), "a"), TypeError, r"Tensor data must be numbers"),
    ("tc.empty_like/dtype", lambda: tinygrad_cnn.empty_like(t(2), dtype=np.complex64), TypeError, r"got complex64"),
    ("tc.arange/step", lambda: tinygrad_cnn.arange(0, 3, 0), ValueError, r"arange: step must not be 0"),
    ("tc.rand/size", lambda: tinygrad_cnn.rand(-1), ValueError, r"rand: sizes must be ints >= 0"),
    ("tc.randn/size", lambda: tinygrad_cnn.randn(2, None), ValueError, r"randn: sizes must be ints"),
    ("tc.randint/range", lambda: tinygrad_cnn.randint(5, 5, (2,)), ValueError, r"high \(5\) must be above low \(5\)"),
    ("tc.manual_seed/negative", lambda: tinygrad_cnn.manual_seed(-1), TypeError, r"seed must be an int >= 0, got -1"),
    ("tc.permute/dims", lambda: tinygrad_cnn.permute(t(2, 3), (1,)), ValueError, r"not a permutation"),
    ("tc.transpose/dim", lambda: tinygrad_cnn.transpose(t(2, 3), 0, 5), ValueError, r"axis 5 is out of range"),
    ("tc.unsqueeze/dim", lambda: tinygrad_cnn.unsqueeze(t(2), 5), ValueError, r"axis 5 is out of range"),
    ("tc.squeeze/dim", lambda: tinygrad_cnn.squeeze(t(2), 3), ValueError, r"axis 3 is out of range"),
    ("tc.expand/shape", lambda: tinygrad_cnn.expand(t(2), 3), ValueError, r"cannot broadcast"),
    ("tc.flatten/order", lambda: tinygrad_cnn.flatten(t(2, 3), 1, 0), ValueError, r"start_dim 1 comes after end_dim 0"),
    ("tc.broadcast_to/shape", lambda: tinygrad_cnn.tensor_ops.broadcast_to(t(2), (3,)), ValueError, r"cannot broadcast"),
    ("tc.sum/dim", lambda: tinygrad_cnn.sum(t(2), 1), ValueError, r"axis 1 is out of range"),
    ("tc.mean/int", lambda: tinygrad_cnn.mean(tinygrad_cnn.tensor([1])), TypeError, r"needs a floating tensor"),
    ("tc.max/dim", lambda: tinygrad_cnn.max(t(2), 1), ValueError, r"axis 1 is out of range"),
    ("tc.min/dim", lambda: tinygrad_cnn.min(t(2), dim=0, axis=0), TypeError, r"dim= or axis=, not both"),
    ("tc.amax/dim", lambda: tinygrad_cnn.amax(t(2), 1), ValueError, r"axis 1 is out of range"),
    ("tc.amin/empty", lambda: tinygrad_cnn.amin(Tensor(np.zeros(0))), ValueError, r"min\(\) over an empty axis"),
    ("tc.argmax/dims", lambda: tinygrad_cnn.argmax(t(2), [0]), TypeError, r"dim must be an int or None"),
    ("tc.argmin/dim", lambda: tinygrad_cnn.argmin(t(2), 1), ValueError, r"axis 1 is out of range"),
    ("tc.abs/str", lambda: tinygrad_cnn.abs("a"), TypeError, r"abs\(\): input must be a Tensor, not str"),
    ("tc.sqrt/array", lambda: tinygrad_cnn.sqrt(np.ones(2)), TypeError, r"sqrt\(\): input must be a Tensor, not ndarray"),
    ("tc.clamp/none", lambda: tinygrad_cnn.clamp(t(2)), ValueError, r"give min, max or both"),
    ("nnF.leaky_relu/slope", lambda: NF.leaky_relu(t(2), "a"), ValueError, r"negative_slope must be a finite number"),
    ("nnF.elu/alpha", lambda: NF.elu(t(2), np.nan), ValueError, r"alpha must be a finite number, got nan"),
    ("nnF.silu/str", lambda: NF.silu("a"), TypeError, r"x must be a Tensor or an array of numbers"),
    ("nnF.softplus/beta", lambda: NF.softplus(t(2), beta=0), ValueError, r"beta must be a finite number >= 1e-300"),
    ("nnF.avg_pool2d/padding", lambda: NF.avg_pool2d(t(1, 1, 4, 4), 2, padding=2), ValueError,
     r"padding must be ints from 0 to half the kernel \(2, 2\), got 2"),
    ("nnF.avg_pool2d/window", lambda: NF.avg_pool2d(t(1, 1, 2, 2), 3), ValueError, r"window \(3, 3\) is larger"),
    ("nnF.avg_pool2d/int", lambda: NF.avg_pool2d(tinygrad_cnn.tensor([[1, 2], [3, 4]]), 2), TypeError,
     r"avg_pool2d: x must be a floating tensor .* got int64"),
    ("nnF.adaptive_avg_pool2d/size", lambda: NF.adaptive_avg_pool2d(t(1, 1, 4, 4), 0), ValueError,
     r"output_size must be >= 1"),
    ("nnF.adaptive_avg_pool2d/1-d", lambda: NF.adaptive_avg_pool2d(t(4), 1), ValueError, r"at least 2 dims"),
    ("nnF.batch_norm/stats", lambda: NF.batch_norm(t(2, 3), t(2), t(3)), ValueError,
     r"running_mean must be a Tensor of shape \(3,\) for x of shape \(2, 3\)"),
    ("nnF.batch_norm/one value", lambda: NF.batch_norm(t(1, 3), None, None, training=True), ValueError,
     r"training needs more than one value per channel"),
    ("nnF.batch_norm/1-d", lambda: NF.batch_norm(t(3), None, None), ValueError, r"x must be \(N, C, ...\)"),
    ("nnF.pad/odd", lambda: NF.pad(t(2, 3), (1,)), ValueError, r"pad must be an even number of ints"),
    ("nnF.pad/mode", lambda: NF.pad(t(2, 3), (1, 1), mode="reflect"), ValueError, r"only mode='constant'"),
    ("nnF.pad/too many", lambda: NF.pad(t(3), (1, 1, 1, 1)), ValueError, r"at most 2 per dim of x \(3,\)"),
    ("nnF.dropout2d/p", lambda: NF.dropout2d(t(1, 2, 3, 3), 1.5), ValueError, r"p must lie in \[0, 1\], got 1.5"),
    ("nnF.dropout2d/2-d", lambda: NF.dropout2d(t(2, 3)), ValueError, r"x must be \(N, C, H, W\) or \(C, H, W\)"),
    ("nn.LeakyReLU/slope", lambda: nn.LeakyReLU("a")(t(2)), ValueError, r"negative_slope must be a finite number"),
    ("nn.ELU/alpha", lambda: nn.ELU(np.inf)(t(2)), ValueError, r"alpha must be a finite number"),
    ("nn.SiLU/str", lambda: nn.SiLU()("a"), TypeError, r"x must be a Tensor"),
    ("nn.GELU/approximate", lambda: nn.GELU("exact")(t(2)), ValueError, r"approximate must be 'none' or 'tanh'"),
    ("nn.Softplus/beta", lambda: nn.Softplus(-1)(t(2)), ValueError, r"beta must be a finite number"),
    ("nn.Softmax/dim", lambda: nn.Softmax(3)(t(2, 3)), ValueError, r"axis 3 is out of range"),
    ("nn.AvgPool2d/kernel", lambda: nn.AvgPool2d(0)(t(1, 1, 4, 4)), ValueError, r"kernel_size must be >= 1"),
    ("nn.AdaptiveAvgPool2d/size", lambda: nn.AdaptiveAvgPool2d((1, 2, 3))(t(1, 1, 4, 4)), TypeError,
     r"output_size must be an int or a pair of ints"),
    ("nn.Dropout2d/p", lambda: nn.Dropout2d(2), ValueError, r"Dropout2d probability p must be in \[0, 1\], got 2"),
    ("nn.BatchNorm2d/features", lambda: nn.BatchNorm2d(0), ValueError, r"num_features must be an int >= 1, got 0"),
    ("nn.BatchNorm2d/channels", lambda: nn.BatchNorm2d(3)(t(2, 4, 3, 3)), ValueError,
     r"BatchNorm2d\(3\) got 4 channels \(shape \(2, 4, 3, 3\)\)"),
    ("nn.BatchNorm2d/dims", lambda: nn.BatchNorm2d(3)(t(2, 3)), ValueError, r"BatchNorm2d expects 4-d input"),
    ("nn.BatchNorm1d/dtype", lambda: nn.BatchNorm1d(3, dtype=np.int64), TypeError, r"float32 or float64, got int64"),
    ("nn.BatchNorm1d/dims", lambda: nn.BatchNorm1d(3)(t(2, 3, 4, 5)), ValueError, r"expects 2-d or 3-d input"),
    ("nnI.calculate_gain/unknown", lambda: nn.init.calculate_gain("swish"), ValueError, r"unknown nonlinearity 'swish'"),
    ("nnI.uniform_/bounds", lambda: nn.init.uniform_(t(2), 1.0, 0.0), ValueError, r"b \(0.0\) must be at least a"),
    ("nnI.normal_/std", lambda: nn.init.normal_(t(2), 0.0, -1.0), ValueError, r"std must be >= 0, got -1.0"),
    ("nnI.constant_/array", lambda: nn.init.constant_(np.ones(2), 1.0), TypeError, r"takes a Tensor, got ndarray"),
    ("nnI.zeros_/list", lambda: nn.init.zeros_([1.0]), TypeError, r"takes a Tensor, got list"),
    ("nnI.ones_/None", lambda: nn.init.ones_(None), TypeError, r"takes a Tensor, got NoneType"),
    ("nnI.xavier_uniform_/1-d", lambda: nn.init.xavier_uniform_(t(3)), ValueError, r"at least 2 dims, got shape \(3,\)"),
    ("nnI.xavier_normal_/1-d", lambda: nn.init.xavier_normal_(t(3)), ValueError, r"at least 2 dims"),
    ("nnI.kaiming_uniform_/mode", lambda: nn.init.kaiming_uniform_(t(2, 3), mode="fan"), ValueError,
     r"mode must be 'fan_in' or 'fan_out', got 'fan'"),
    ("nnI.kaiming_normal_/gain", lambda: nn.init.kaiming_normal_(t(2, 3), nonlinearity="x"), ValueError,
     r"unknown nonlinearity 'x'"),
    ("nnU.clip_grad_norm_/max_norm", lambda: nn.utils.clip_grad_norm_([t(2)], -1.0), ValueError,
     r"max_norm must be >= 0, got -1.0"),
    ("nnU.clip_grad_norm_/arrays", lambda: nn.utils.clip_grad_norm_([np.ones(2)], 1.0), TypeError,
     r"parameters must be a Tensor or an iterable of Tensors"),
    ("nnU.clip_grad_value_/negative", lambda: nn.utils.clip_grad_value_([t(2)], -1), ValueError,
     r"clip_value must be >= 0, got -1"),
    ("optim.AdamW/betas", lambda: optim.AdamW([param()], betas=(0.9,)), ValueError,
     r"AdamW: betas must be a pair \(beta1, beta2\), got 1 values"),
    ("optim.AdamW/groups", lambda: optim.AdamW([{"params": [param()], "momentum": 0.9}]), ValueError,
     r"parameter group 0 needs 'params' and takes .*, got keys \['momentum', 'params'\]"),
    ("optim.RMSprop/alpha", lambda: optim.RMSprop([param()], alpha=1.0), ValueError, r"RMSprop: alpha must be in \[0, 1\)"),
    ("optim.RMSprop/lr", lambda: optim.RMSprop([param()], lr=-1), ValueError, r"lr \(the learning rate\) must be finite"),
    ("sched.LambdaLR/lambdas", lambda: optim.lr_scheduler.LambdaLR(optim.SGD([param()], lr=0.1), [1, 2]), ValueError,
     r"lr_lambda must be a function or one per parameter group \(1\)"),
    ("sched.StepLR/step_size", lambda: optim.lr_scheduler.StepLR(optim.SGD([param()], lr=0.1), 0), ValueError,
     r"StepLR: step_size must be an int > 0, got 0"),
    ("sched.MultiStepLR/optimizer", lambda: optim.lr_scheduler.MultiStepLR("sgd", [1]), TypeError,
     r"MultiStepLR takes an optimizer, got str"),
    ("sched.ExponentialLR/optimizer", lambda: optim.lr_scheduler.ExponentialLR(None, 0.9), TypeError,
     r"takes an optimizer, got NoneType"),
    ("sched.CosineAnnealingLR/T_max", lambda: optim.lr_scheduler.CosineAnnealingLR(optim.SGD([param()], lr=0.1), 0),
     ValueError, r"T_max must be a number > 0, got 0"),
    ("sched.LinearLR/factor", lambda: optim.lr_scheduler.LinearLR(optim.SGD([param()], lr=0.1), 0.0), ValueError,
     r"start_factor must be in \(0, 1\]"),
    ("sched.OneCycleLR/steps", lambda: optim.lr_scheduler.OneCycleLR(optim.SGD([param()], lr=0.1), 1.0), ValueError,
     r"give total_steps, or epochs and steps_per_epoch"),
    ("sched.OneCycleLR/strategy", lambda: optim.lr_scheduler.OneCycleLR(optim.SGD([param()], lr=0.1), 1.0, 10,
                                                                          anneal_strategy="exp"), ValueError,
     r"anneal_strategy must be 'cos' or 'linear'"),
    ("sched.SequentialLR/milestones", lambda: optim.lr_scheduler.SequentialLR(optim.SGD([param()], lr=0.1), [], []),
     ValueError, r"SequentialLR needs at least one scheduler"),
    ("nnF.max_pool2d/dilation", lambda: NF.max_pool2d(t(1, 1, 4, 4), 2, dilation=0), ValueError,
     r"dilation must be >= 1"),
    ("nnF.max_pool2d/dilated window", lambda: NF.max_pool2d(t(1, 1, 4, 4), 3, dilation=2), ValueError,
     r"window \(3, 3\) with dilation \(2, 2\) is larger than the padded input of shape \(1, 1, 4, 4\)"),
    ("nnF.gelu/approximate", lambda: NF.gelu(t(2), "erf"), ValueError, r"approximate must be 'none' or 'tanh'"),
    ("erf/str", lambda: tinygrad_cnn.erf("a"), TypeError, r"erf"),
    ("nnF.max_pool2d/padding", lambda: NF.max_pool2d(t(1, 1, 4, 4), 2, padding=2), ValueError,
     r"padding must be ints from 0 to half the kernel"),
    ("nnF.dropout/p", lambda: NF.dropout(t(3), -0.5), ValueError, r"p must be a finite number >= 0.0, got -0.5"),
    ("nnF.nll_loss/range", lambda: NF.nll_loss(t(2, 3), [0, 3]), ValueError, r"targets must lie in \[0, 2\]"),
    ("nnF.nll_loss/float target", lambda: NF.nll_loss(t(2, 3), np.array([0.0, 1.0])), TypeError,
     r"class-index targets must be integers, got dtype float64"),
    ("nnF.nll_loss/shape", lambda: NF.nll_loss(t(2, 3, 4), [0, 1]), ValueError,
     r"target of shape \(2,\) does not fit input of shape \(2, 3, 4\) \(expected \(2, 4\)\)"),
    ("nnF.nll_loss/reduction", lambda: NF.nll_loss(t(2, 3), [0, 1], reduction="avg"), ValueError,
     r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"),
    ("nnF.cross_entropy/weight", lambda: NF.cross_entropy(t(2, 3), [0, 1], weight=[1.0, 2.0]), ValueError,
     r"weight must have one entry per class, shape \(3,\), got \(2,\)"),
    ("nnF.l1_loss/shapes", lambda: NF.l1_loss(t(2), t(3)), ValueError, r"input has shape \(2,\) but target has shape \(3,\)"),
    ("nnF.binary_cross_entropy/range", lambda: NF.binary_cross_entropy(Tensor([1.5]), Tensor([1.0])), ValueError,
     r"input must hold probabilities in \[0, 1\]"),
    ("nnF.binary_cross_entropy_with_logits/shapes", lambda: NF.binary_cross_entropy_with_logits(t(2), t(2, 1)),
     ValueError, r"input has shape \(2,\) but target has shape \(2, 1\)"),
    ("nn.CrossEntropyLoss/smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=2)(t(2, 3), [0, 1]), ValueError,
     r"label_smoothing must lie in \[0, 1\], got 2"),
    ("nn.NLLLoss/reduction", lambda: nn.NLLLoss(reduction="x")(t(2, 3), [0, 1]), ValueError, r"reduction must be"),
    ("nn.MSELoss/shapes", lambda: nn.MSELoss()(t(2), t(3)), ValueError, r"input has shape \(2,\)"),
    ("nn.L1Loss/reduction", lambda: nn.L1Loss("avg")(t(2), t(2)), ValueError, r"reduction must be"),
    ("nn.BCELoss/range", lambda: nn.BCELoss()(Tensor([-1.0]), Tensor([0.0])), ValueError, r"probabilities in \[0, 1\]"),
    ("nn.BCEWithLogitsLoss/shapes", lambda: nn.BCEWithLogitsLoss()(t(2), t(3)), ValueError, r"input has shape"),
    ("ud.TensorDataset/lengths", lambda: tinygrad_cnn.utils.data.TensorDataset(np.ones(3), np.ones(4)), ValueError,
     r"arrays of shapes \[\(3,\), \(4,\)\] need the same first dim"),
    ("ud.TensorDataset/empty", lambda: tinygrad_cnn.utils.data.TensorDataset(), ValueError, r"at least one array"),
    ("ud.DataLoader/arrays", lambda: tinygrad_cnn.utils.data.DataLoader(3), TypeError,
     r"takes a dataset \(with __len__ and __getitem__\), got int"),
    ("ud.DataLoader/batch_size", lambda: tinygrad_cnn.utils.data.DataLoader([1, 2], batch_size=0), ValueError,
     r"batch_size must be an int >= 1, got 0"),
    ("ud.DataLoader/seed", lambda: tinygrad_cnn.utils.data.DataLoader([1, 2], seed=1.5), TypeError, r"seed must be an int"),
    ("nnF.layer_norm/shape", lambda: NF.layer_norm(t(2, 3), (2,)), ValueError,
     r"normalized_shape \(2,\) must be the last dims of x, shape \(2, 3\)"),
    ("nn.LayerNorm/shape", lambda: nn.LayerNorm(0), ValueError, r"normalized_shape must be ints >= 1, got 0"),
    ("T.Compose/item", lambda: tinygrad_cnn.transforms.Compose([None]), TypeError, r"Compose takes a list of callables"),
    ("T.ToTensor/shape", lambda: tinygrad_cnn.transforms.ToTensor()(np.zeros(3, np.uint8)), ValueError,
     r"ToTensor takes \(N, H, W\) or \(N, C, H, W\) images, got shape \(3,\)"),
    ("T.Normalize/channels", lambda: tinygrad_cnn.transforms.Normalize([0, 0, 0], [1, 1, 1])(np.zeros((1, 2, 3, 3))),
     ValueError, r"3 means and 3 stds for 2 channels"),
    ("T.RandomCrop/size", lambda: tinygrad_cnn.transforms.RandomCrop(0), ValueError, r"size must be an int or \(h, w\) >= 1"),
    ("T.RandomHorizontalFlip/p", lambda: tinygrad_cnn.transforms.RandomHorizontalFlip(2), ValueError, r"p must lie in"),
    ("T.RandomAffine/degrees", lambda: tinygrad_cnn.transforms.RandomAffine(-5), ValueError, r"degrees must be a number >= 0"),
    ("T.RandomAffine/batch", lambda: tinygrad_cnn.transforms.RandomAffine(5)(np.zeros((3, 3))), ValueError,
     r"RandomAffine takes a batch \(N, C, H, W\), got shape \(3, 3\)"),
    ("nnF.conv_transpose2d/output_padding", lambda: NF.conv_transpose2d(t(1, 2, 3, 3), t(2, 2, 3, 3),
                                                                        output_padding=1), ValueError,
     r"output_padding \(1, 1\) must be below stride \(1, 1\) or dilation"),
    ("nnF.conv_transpose2d/channels", lambda: NF.conv_transpose2d(t(1, 2, 3, 3), t(3, 2, 3, 3)), ValueError,
     r"weight \(3, 2, 3, 3\) is for 3 input channels"),
    ("nnF.conv_transpose2d/groups", lambda: NF.conv_transpose2d(t(1, 2, 3, 3), t(2, 2, 3, 3), groups=3), ValueError,
     r"groups must be an int >= 1 dividing 2 input and 2 output channels, got 3"),
    ("nnF.conv_transpose2d/padding", lambda: NF.conv_transpose2d(t(1, 2, 3, 3), t(2, 2, 3, 3), padding=-1), ValueError,
     r"padding must be an int >= 0 or a pair of them, got -1"),
    ("nnF.conv2d/groups weight", lambda: NF.conv2d(t(1, 4, 5, 5), t(2, 4, 3, 3), groups=2), ValueError,
     r"weight \(2, 4, 3, 3\) has 4 input channels per group; x \(1, 4, 5, 5\) has 4 for 2 groups"),
    ("nnF.conv2d/dilation", lambda: NF.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), dilation=0), ValueError,
     r"dilation must be >= 1"),
    ("nn.Conv2d/groups", lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError,
     r"groups must be an int >= 1 dividing in_channels 4 and out_channels 6, got 4"),
    ("nn.ConvTranspose2d/channels", lambda: nn.ConvTranspose2d(0, 2, 3), ValueError, r"in_channels must be an int >= 1"),
    ("Tensor.view/size", lambda: t(2, 3).view(4), ValueError, r"cannot reshape a tensor of shape \(2, 3\) to \(4,\)"),
    # ---- Tensor operators: broadcasting, operands, matmul ----------------------------------
    ("Tensor.__add__/shapes", lambda: t(2, 3) + t(4), ValueError, r"Add: operands of shapes \(2, 3\) and \(4,\)"),
    ("Tensor.__radd__/shapes", lambda: np.ones(4) + t(2, 3), ValueError, r"Add: .*\(4,\) and \(2, 3\)"),
    ("Tensor.__sub__/shapes", lambda: t(2, 3) - t(3, 2), ValueError, r"Sub: .*\(2, 3\) and \(3, 2\) do not broadcast"),
    ("Tensor.__rsub__/shapes", lambda: np.ones(5) - t(2), ValueError, r"Sub: .*\(5,\) and \(2,\)"),
    ("Tensor.__mul__/shapes", lambda: t(3) * t(4), ValueError, r"Mul: .*\(3,\) and \(4,\)"),
    ("Tensor.__rmul__/shapes", lambda: np.ones((2, 2)) * t(3), ValueError, r"Mul: .*\(2, 2\) and \(3,\)"),
    ("Tensor.__truediv__/shapes", lambda: t(2, 1, 3) / t(4, 2), ValueError, r"Div: .*\(2, 1, 3\) and \(4, 2\)"),
    ("Tensor.__rtruediv__/shapes", lambda: np.ones(3) / t(2), ValueError, r"Div: .*\(3,\) and \(2,\)"),
    ("Tensor.__pow__/shapes", lambda: t(2) ** t(3), ValueError, r"Pow: .*\(2,\) and \(3,\)"),
    ("Tensor.__rpow__/shapes", lambda: np.ones(3) ** t(2), ValueError, r"Pow: .*\(3,\) and \(2,\)"),
    ("Tensor.__add__/str", lambda: t(2) + "a", TypeError, r"Tensor data must be numbers, got str 'a'"),
    ("Tensor.__mul__/object", lambda: t(2) * np.array([object(), object()]), TypeError, r"dtype object"),
    ("Tensor.__mul__/None", lambda: t(2) * None, TypeError, r"got NoneType None"),
    ("Tensor.__add__/complex", lambda: t(2) + 1j, TypeError, r"complex operand"),
    ("Tensor.__matmul__/inner", lambda: t(3, 4) @ t(3, 2), ValueError,
     r"matmul: inner dimensions differ: a has shape \(3, 4\), b has shape \(3, 2\) \(4 != 3\)"),
    ("Tensor.__matmul__/vector", lambda: t(3) @ t(4), ValueError, r"inner dimensions.*\(3,\).*\(4,\)"),
    ("Tensor.__matmul__/batch", lambda: t(2, 3, 4) @ t(3, 4, 2), ValueError,
     r"batch axes of shapes \(2, 3, 4\) and \(3, 4, 2\)"),
    ("Tensor.__matmul__/0-d", lambda: t(2) @ t(), ValueError, r"at least 1 dimension, got shapes \(2,\) and \(\)"),
    ("Tensor.__rmatmul__/inner", lambda: np.ones((2, 5)) @ t(3, 2), ValueError, r"\(2, 5\).*\(3, 2\)"),
    ("Tensor.matmul/str", lambda: t(2, 2).matmul("ab"), TypeError, r"b must be a Tensor or an array of numbers"),
    ("Tensor.__getitem__/out of range", lambda: t(2, 3)[5], IndexError, r"index 5 does not fit .* \(2, 3\)"),
    ("Tensor.__getitem__/float", lambda: t(2, 3)[1.5], IndexError, r"index 1.5 does not fit"),
    ("Tensor.__getitem__/str", lambda: t(2, 3)["a"], IndexError, r"index 'a' does not fit"),
    ("Tensor.__getitem__/Tensor", lambda: t(3)[t(3)], TypeError, r"integer or bool tensor or array, not a float64 tensor"),
    ("Tensor.__getitem__/mask shape", lambda: t(3)[np.array([True, False])], IndexError, r"shape \(3,\)"),
    ("Tensor.__bool__/many", lambda: bool(t(2)), ValueError, r"truth value of a tensor of shape \(2,\)"),
    ("Tensor.__float__/many", lambda: float(t(2)), ValueError, r"one element, got shape \(2,\)"),
    ("Tensor.__len__/0-d", lambda: len(t()), TypeError, r"len\(\) of a 0-d tensor"),
    ("Tensor.item/many", lambda: t(2, 2).item(), ValueError, r"one element, got shape \(2, 2\)"),
    # ---- reductions and movement ------------------------------------------------------------
    ("Tensor.sum/axis range", lambda: t(2, 3, 4).sum(3), ValueError, r"axis 3 is out of range .* 3 dimensions"),
    ("Tensor.sum/axis negative", lambda: t(2, 3, 4).sum(-4), ValueError, r"axis -4 is out of range"),
    ("Tensor.sum/axis repeated", lambda: t(2, 3, 4).sum((0, 0)), ValueError, r"axis \(0, 0\) repeats"),
    ("Tensor.sum/axis float", lambda: t(2, 3, 4).sum(1.5), TypeError, r"axis must be an int"),
    ("Tensor.sum/axis str", lambda: t(2, 3, 4).sum("x"), TypeError, r"axis must be an int.*'x'"),
    ("Tensor.sum/0-d axis 1", lambda: t().sum(axis=1), ValueError, r"axis 1 is out of range .* 0 dimensions"),
    ("Tensor.mean/axis", lambda: t(2, 3).mean(axis=2), ValueError, r"axis 2 is out of range"),
    ("Tensor.mean/empty", lambda: Tensor(np.zeros((0, 3))).mean(axis=0), ValueError,
     r"mean\(\) over an empty axis .* \(0, 3\)"),
    ("Tensor.max/empty axis", lambda: Tensor(np.zeros((0, 3))).max(axis=0), ValueError,
     r"max\(\) over an empty axis of a tensor of shape \(0, 3\)"),
    ("Tensor.max/axis", lambda: t(2, 3).max(axis=(0, 5)), ValueError, r"axis 5 is out of range"),
    ("Tensor.reshape/size", lambda: t(2, 3).reshape(4), ValueError,
     r"cannot reshape a tensor of shape \(2, 3\) to \(4,\): the sizes differ"),
    ("Tensor.reshape/two -1", lambda: t(2, 3).reshape(-1, -1), ValueError, r"at most one -1"),
    ("Tensor.reshape/float", lambda: t(2, 3).reshape(3.0, 2), ValueError, r"sizes must be ints"),
    ("Tensor.reshape/-1 of empty", lambda: Tensor(np.zeros((0, 3))).reshape(0, -1), ValueError,
     r"\(0, 3\)"),
    ("Tensor.flatten/order", lambda: t(2, 3, 4).flatten(2, 1), ValueError, r"start_dim 2 comes after end_dim 1"),
    ("Tensor.flatten/axis", lambda: t(2, 3).flatten(5), ValueError, r"axis 5 is out of range"),
    ("Tensor.transpose/dim", lambda: t(2, 3).transpose(0, 2), ValueError, r"axis 2 is out of range"),
    ("Tensor.transpose/float", lambda: t(2, 3).transpose(0, 1.0), TypeError, r"axis must be an int"),
    ("Tensor.swapaxes/axis", lambda: t(2, 3).swapaxes(0, 2), ValueError, r"axis 2 is out of range .* 2 dim"),
    ("Tensor.broadcast_to/shape", lambda: t(2, 3).broadcast_to((3, 3)), ValueError,
     r"cannot broadcast a tensor of shape \(2, 3\) to \(3, 3\)"),
    ("Tensor.broadcast_to/fewer axes", lambda: t(2, 3).broadcast_to((3,)), ValueError, r"\(2, 3\) to \(3,\)"),
    # ---- engine ------------------------------------------------------------------------------
    ("Tensor.backward/non-scalar", lambda: (t(3) * 2).backward(), RuntimeError,
     r"non-scalar output of shape \(3,\) needs a gradient argument"),
    ("Tensor.backward/gradient shape", lambda: (t(2, 3) * 2).backward(np.ones((3, 2))), ValueError,
     r"gradient of shape \(3, 2\) does not match the output's shape \(2, 3\)"),
    ("Tensor.backward/gradient str", lambda: (t(3) * 2).backward("abc"), TypeError,
     r"gradient for outputs\[0\] must be a Tensor or an array of numbers"),
    ("Tensor.backward/twice", backward_twice, RuntimeError, r"backward through the graph a second time.*retain_graph=True"),
    ("Tensor.backward/no grad", lambda: Tensor(1.0).backward(), RuntimeError,
     r"backward\(\) on a tensor of shape \(\) that does not require grad"),
    ("Tensor.backward/under no_grad", lambda: (lambda x: tinygrad_cnn.no_grad()(lambda: (x * 2).sum())())(t(2))
     .backward(), RuntimeError, r"does not require grad"),
    ("Tensor.backward/stale after optimizer step", step_then_backward, RuntimeError,
     r"modified in place after the forward: input 1 of Linear \(shape \(2, 3\), float32\) .* version 0 .* version 1"),
    ("Tensor.backward/data replaced", new_data_then_backward, RuntimeError,
     r"input 1 of Mul \(shape \(3,\)\) was given new data"),
    ("Tensor.data/write into a saved array", write_saved_array, ValueError, r"assignment destination is read-only"),
    ("detect_anomaly/forward", anomaly(lambda: (t(2) * 0).log()), RuntimeError,
     r"detect_anomaly: Log produced inf in its output of shape \(2,\) from finite inputs"),
    ("detect_anomaly/backward", anomaly(lambda: ((t(2) * 0) ** 0.5).sum().backward()), RuntimeError,
     r"detect_anomaly: Pow.backward produced inf in the gradient of its input 0 \(shape \(2,\)\)"),
    ("grad/input without grad", lambda: grad((t(3) * 2).sum(), t(grad=False)), RuntimeError,
     r"inputs\[0\] does not require grad"),
    ("set_num_threads/zero", lambda: tinygrad_cnn.set_num_threads(0), ValueError, r"threads must be at least 1, got 0"),
    ("set_num_threads/float", lambda: tinygrad_cnn.set_num_threads(1.5), TypeError,
     r"threads must be an int, got float 1\.5"),
    ("set_num_threads/bool", lambda: tinygrad_cnn.set_num_threads(True), TypeError, r"got bool True"),
    ("set_num_threads/str", lambda: tinygrad_cnn.set_num_threads("2"), TypeError, r"got str '2'"),
    ("grad/input not a Tensor", lambda: grad((t(3) * 2).sum(), 3), TypeError, r"inputs\[0\] must be a Tensor, got int"),
    ("grad/output not a Tensor", lambda: grad(3, t(3)), TypeError, r"outputs\[0\] must be a Tensor, got int"),
    ("grad/unused input", lambda: grad((t(3) * 2).sum(), t(3)), RuntimeError, r"inputs\[0\] was not used.*allow_unused"),
    ("grad/grad_outputs count", lambda: grad([(t(3) * 2).sum()], [t(3)], grad_outputs=[1, 2]), ValueError,
     r"grad_outputs has 2 entries for 1 outputs"),
    # ---- the article's ops: correlate2d, convolve2d ---------------------------------------
    ("F.correlate2d/kernel rank 1", lambda: F.correlate2d(np.ones((3, 3)), np.ones(3)), ValueError,
     r"kernel k must have rank 2 .* got shape \(3,\)"),
    ("F.correlate2d/kernel rank 5", lambda: F.correlate2d(np.ones((2, 3, 3)), np.ones((1, 1, 1, 1, 1))), ValueError,
     r"rank 2 .*\(1, 1, 1, 1, 1\)"),
    ("F.correlate2d/x rank", lambda: F.correlate2d(np.ones(3), np.ones((2, 2))), ValueError,
     r"rank-2 kernel of shape \(2, 2\) needs x of rank >= 2; got x of shape \(3,\)"),
    ("F.correlate2d/x rank for channels", lambda: F.correlate2d(np.ones((5, 5)), np.ones((3, 2, 2))), ValueError,
     r"needs x of rank >= 3"),
    ("F.correlate2d/channels", lambda: F.correlate2d(np.ones((2, 5, 5)), np.ones((3, 2, 2))), ValueError,
     r"x has 2 channels .*\(2, 5, 5\).* kernel of shape \(3, 2, 2\) expects 3"),
    ("F.correlate2d/channels rank 4", lambda: F.correlate2d(t(2, 3, 5, 5), t(4, 2, 2, 2)), ValueError,
     r"x has 3 channels .* expects 2"),
    ("F.correlate2d/kernel larger (valid)", lambda: F.correlate2d(np.ones((2, 2)), np.ones((3, 3))), ValueError,
     r"valid mode the kernel \(3, 3\) must fit in the input \(2, 2\)"),
    ("F.correlate2d/kernel taller (valid)", lambda: F.correlate2d(np.ones((4, 9)), np.ones((5, 1))), ValueError,
     r"kernel \(5, 1\) must fit in the input \(4, 9\)"),
    ("F.correlate2d/empty", lambda: F.correlate2d(np.ones((0, 3)), np.ones((1, 1))), ValueError,
     r"empty input or kernel \(x \(0, 3\), k \(1, 1\)\)"),
    ("F.correlate2d/empty batch", lambda: F.correlate2d(np.ones((0, 3, 3)), np.ones((2, 2))), ValueError,
     r"empty batch: x has shape \(0, 3, 3\)"),
    ("F.correlate2d/mode", lambda: F.correlate2d(np.ones((3, 3)), np.ones((2, 2)), mode="circular"), ValueError,
     r"mode must be one of \('valid', 'full', 'same'\), got 'circular'"),
    ("F.correlate2d/mode None", lambda: F.correlate2d(np.ones((3, 3)), np.ones((2, 2)), mode=None), ValueError,
     r"mode must be one of"),
    ("F.correlate2d/stride 0", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=0), ValueError,
     r"stride must be >= 1, got 0"),
    ("F.correlate2d/stride negative", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=(1, -1)),
     ValueError, r"stride must be >= 1, got \(1, -1\)"),
    ("F.correlate2d/stride float", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=1.5), TypeError,
     r"stride must be an int or a pair of ints, got 1.5"),
    ("F.correlate2d/stride NaN", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=NAN), TypeError,
     r"stride must be an int .* got nan"),
    ("F.correlate2d/stride str", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride="1"), TypeError,
     r"stride must be an int"),
    ("F.correlate2d/stride triple", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=(1, 2, 3)),
     TypeError, r"stride must be an int or a pair"),
    ("F.correlate2d/stride bool", lambda: F.correlate2d(np.ones((4, 4)), np.ones((2, 2)), stride=True), TypeError,
     r"stride"),
    ("F.correlate2d/kernel str", lambda: F.correlate2d(np.ones((4, 4)), "kernel"), TypeError,
     r"k must be a Tensor or an array of numbers"),
    ("F.correlate2d/x object", lambda: F.correlate2d(np.array([[None]]), np.ones((1, 1))), TypeError,
     r"x must be a Tensor or an array of numbers.*object"),
    ("Tensor.correlate2d/mode", lambda: t(3, 3).correlate2d(t(2, 2), mode="bad"), ValueError, r"mode must be"),
    ("F.convolve2d/mode", lambda: F.convolve2d(np.ones((4, 4)), np.ones((2, 2)), mode="circular"), ValueError,
     r"convolve2d: mode must be one of"),
    ("F.convolve2d/kernel larger (valid)", lambda: F.convolve2d(np.ones((3, 3)), np.ones((4, 2))), ValueError,
     r"convolve2d: in valid mode the kernel \(4, 2\) must fit in the input \(3, 3\)"),
    ("F.convolve2d/channels", lambda: F.convolve2d(np.ones((3, 4, 4)), np.ones((2, 1, 2, 2))), ValueError,
     r"convolve2d: x has 3 channels"),
    ("Tensor.convolve2d/stride", lambda: t(3, 3).convolve2d(t(2, 2), stride=0), ValueError, r"stride must be >= 1"),
    # ---- conv2d ---------------------------------------------------------------------------------
    ("F.conv2d/x rank", lambda: F.conv2d(t(3, 5, 5), t(4, 3, 2, 2)), ValueError,
     r"conv2d: expects x \(N, C, H, W\) .* got x \(3, 5, 5\), weight \(4, 3, 2, 2\)"),
    ("F.conv2d/weight rank", lambda: F.conv2d(t(1, 3, 5, 5), t(3, 2, 2)), ValueError, r"weight \(3, 2, 2\)"),
    ("F.conv2d/channels", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 2, 2, 2)), ValueError,
     r"the same C; got x \(1, 3, 5, 5\), weight \(4, 2, 2, 2\)"),
    ("F.conv2d/kernel larger", lambda: F.conv2d(t(1, 3, 2, 2), t(4, 3, 3, 3)), ValueError,
     r"kernel \(3, 3\) larger than the padded input \(2, 2\)"),
    ("F.conv2d/empty kernel", lambda: F.conv2d(t(1, 3, 5, 5), t(2, 3, 0, 2)), ValueError,
     r"empty kernel: weight has shape \(2, 3, 0, 2\)"),
    ("F.conv2d/no channels", lambda: F.conv2d(t(1, 0, 5, 5), t(2, 0, 2, 2)), ValueError, r"empty kernel"),
    ("F.conv2d/empty batch", lambda: F.conv2d(t(0, 1, 3, 3), t(2, 1, 2, 2)), ValueError,
     r"empty batch: x has shape \(0, 1, 3, 3\)"),
    ("F.conv2d/padding mode", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding="full"), ValueError,
     r"padding must be 'valid', 'same', an int >= 0 or a pair of them, got 'full'"),
    ("F.conv2d/padding negative", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding=-1), ValueError,
     r"padding .* got -1"),
    ("F.conv2d/padding float", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding=1.5), ValueError,
     r"padding .* got 1.5"),
    ("F.conv2d/padding NaN", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding=NAN), ValueError,
     r"padding .* got nan"),
    ("F.conv2d/padding triple", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding=(1, 1, 1)), ValueError,
     r"padding .* got \(1, 1, 1\)"),
    ("F.conv2d/padding None", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), padding=None), ValueError,
     r"padding .* got None"),
    ("F.conv2d/stride 0", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), stride=0), ValueError, r"stride must be >= 1"),
    ("F.conv2d/bias shape", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), bias=t(3)), ValueError,
     r"bias must have shape \(4,\), got \(3,\)"),
    ("F.conv2d/bias str", lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 2, 2), bias="b"), TypeError,
     r"bias must be a Tensor"),
    # ---- linear ---------------------------------------------------------------------------------
    ("F.linear/in features", lambda: F.linear(t(2, 3), t(4, 5)), ValueError,
     r"linear: expects x \(\.\.\., in\) .* got x \(2, 3\), weight \(4, 5\)"),
    ("F.linear/weight rank", lambda: F.linear(t(2, 3), t(3)), ValueError, r"weight \(3,\)"),
    ("F.linear/scalar x", lambda: F.linear(t(), t(4, 1)), ValueError, r"got x \(\), weight \(4, 1\)"),
    ("F.linear/bias shape", lambda: F.linear(t(2, 3), t(4, 3), t(3)), ValueError,
     r"linear: bias must have shape \(4,\), got \(3,\)"),
    ("F.linear/bias str", lambda: F.linear(t(2, 3), t(4, 3), "b"), TypeError, r"bias must be a Tensor"),
    ("F.linear/x str", lambda: F.linear("x", t(4, 3)), TypeError, r"x must be a Tensor"),
    # ---- pooling --------------------------------------------------------------------------------
    ("F.maxpool2d/window larger", lambda: F.maxpool2d(np.ones((3, 3)), 4), ValueError,
     r"window \(4, 4\) is larger than the input's last two axes \(3, 3\)"),
    ("F.maxpool2d/window wider", lambda: F.maxpool2d(np.ones((3, 3)), (1, 4)), ValueError, r"\(1, 4\) is larger"),
    ("F.maxpool2d/rank", lambda: F.maxpool2d(np.ones(3), 1), ValueError, r"at least 2 dimensions, got shape \(3,\)"),
    ("F.maxpool2d/size 0", lambda: F.maxpool2d(np.ones((3, 3)), 0), ValueError, r"size must be >= 1, got 0"),
    ("F.maxpool2d/size negative", lambda: F.maxpool2d(np.ones((3, 3)), (2, -1)), ValueError, r"size must be >= 1"),
    ("F.maxpool2d/size float", lambda: F.maxpool2d(np.ones((3, 3)), 2.0), TypeError, r"size must be an int"),
    ("F.maxpool2d/size str", lambda: F.maxpool2d(np.ones((3, 3)), "2"), TypeError, r"size must be an int"),
    ("F.maxpool2d/stride 0", lambda: F.maxpool2d(np.ones((3, 3)), 2, stride=0), ValueError, r"stride must be >= 1"),
    ("F.maxpool2d/stride negative", lambda: F.maxpool2d(np.ones((3, 3)), 2, stride=-1), ValueError,
     r"stride must be >= 1, got -1"),
    ("F.maxpool2d/stride float", lambda: F.maxpool2d(np.ones((3, 3)), 2, stride=1.5), TypeError, r"stride must be"),
    ("F.maxpool2d/x str", lambda: F.maxpool2d("abc", 2), TypeError, r"x must be a Tensor or an array of numbers"),
    ("Tensor.maxpool2d/window", lambda: t(1, 2, 2).maxpool2d(3), ValueError, r"window \(3, 3\) is larger"),
    # ---- activations, softmax, matmul -------------------------------------------------------
    ("F.sigmoid/str", lambda: F.sigmoid("a"), TypeError, r"z must be a Tensor or an array of numbers"),
    ("F.relu/object", lambda: F.relu(np.array([object()])), TypeError, r"z must be a Tensor.*dtype object"),
    ("F.tanh/ragged", lambda: F.tanh([[1.0], [1.0, 2.0]]), ValueError, r"z must be a Tensor.*rectangular"),
    ("F.softmax/axis", lambda: F.softmax(t(2, 3), axis=3), ValueError, r"axis 3 is out of range"),
    ("F.softmax/empty axis", lambda: F.softmax(np.ones((2, 0))), ValueError,
     r"^softmax over an empty axis .* \(2, 0\)"),
    ("F.log_softmax/empty axis", lambda: F.log_softmax(np.ones((0, 3)), axis=0), ValueError,
     r"^log_softmax over an empty axis .* \(0, 3\)"),
    ("F.log_softmax/axis", lambda: F.log_softmax(t(2, 3), axis=-3), ValueError, r"axis -3 is out of range"),
    ("F.log_softmax/axis float", lambda: F.log_softmax(t(2, 3), axis=1.0), TypeError, r"axis must be an int"),
    ("F.matmul/inner", lambda: F.matmul(np.ones((2, 3)), np.ones((2, 3))), ValueError,
     r"inner dimensions differ: a has shape \(2, 3\), b has shape \(2, 3\)"),
    ("F.matmul/str", lambda: F.matmul(np.ones((2, 3)), "abc"), TypeError, r"b must be a Tensor"),
    # ---- losses ------------------------------------------------------------------------------------
    ("F.cross_entropy/label too large", lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 3])), ValueError,
     r"labels must lie in \[0, 2\] for 3 classes, got values from 0 to 3"),
    ("F.cross_entropy/label negative", lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, -1])), ValueError,
     r"must lie in \[0, 2\] .* from -1 to 0"),
    ("F.cross_entropy/label count", lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), ValueError,
     r"labels must have shape \(2,\) to match logits of shape \(2, 3\), got \(3,\)"),
    ("F.cross_entropy/labels 2-d", lambda: F.cross_entropy(np.ones((2, 3)), [[0], [1]]), ValueError,
     r"labels must have shape \(2,\) .* got \(2, 1\)"),
    ("F.cross_entropy/label float", lambda: F.cross_entropy(np.ones((2, 3)), np.array([0.5, 1.0])), TypeError,
     r"labels must be integer class indices, got dtype float64"),
    ("F.cross_entropy/label NaN", lambda: F.cross_entropy(np.ones((2, 3)), [NAN, 1.0]), TypeError,
     r"integer class indices, got dtype float64 \(they hold NaN or inf\)"),
    ("F.cross_entropy/label inf", lambda: F.cross_entropy(np.ones((2, 3)), [np.inf, 1.0]), TypeError,
     r"NaN or inf"),
    ("F.cross_entropy/label huge float", lambda: F.cross_entropy(np.ones((2, 3)), [1e30, 1.0]), ValueError,
     r"labels must lie in \[0, 2\]"),
    ("F.cross_entropy/label str", lambda: F.cross_entropy(np.ones((2, 3)), ["a", "b"]), TypeError,
     r"integer class indices, got dtype <U1"),
    ("F.cross_entropy/label bool", lambda: F.cross_entropy(np.ones((2, 3)), [True, False]), TypeError,
     r"got dtype bool"),
    ("F.cross_entropy/label object", lambda: F.cross_entropy(np.ones((2, 3)), np.array([object(), 1])), TypeError,
     r"got dtype object"),
    ("F.cross_entropy/labels ragged", lambda: F.cross_entropy(np.ones((2, 3)), [[0], [1, 2]]), ValueError,
     r"labels must be a 1-d array"),
    ("F.cross_entropy/logits rank", lambda: F.cross_entropy(np.ones(3), np.array([0])), ValueError,
     r"logits must have shape \(N, classes\), got \(3,\)"),
    ("F.cross_entropy/empty batch", lambda: F.cross_entropy(np.ones((0, 3)), []), ValueError,
     r"logits of shape \(0, 3\) hold no sample"),
    ("F.cross_entropy/no class", lambda: F.cross_entropy(np.ones((2, 0)), [0, 0]), ValueError,
     r"logits of shape \(2, 0\) hold no class"),
    ("F.cross_entropy/logits str", lambda: F.cross_entropy("ab", [0]), TypeError, r"logits must be a Tensor"),
    ("F.mse_loss/shapes", lambda: F.mse_loss(np.ones((2, 3)), np.ones((3, 2))), ValueError,
     r"pred has shape \(2, 3\) but target has shape \(3, 2\)"),
    ("F.mse_loss/broadcastable shapes", lambda: F.mse_loss(np.ones((2, 3)), np.ones(3)), ValueError,
     r"\(2, 3\) but target has shape \(3,\)"),
    ("F.mse_loss/empty", lambda: F.mse_loss(np.ones(0), np.ones(0)), ValueError, r"shape \(0,\) are empty"),
    ("F.mse_loss/str", lambda: F.mse_loss(np.ones(2), "ab"), TypeError, r"target must be a Tensor"),
    # ---- layers -----------------------------------------------------------------------------------
    ("nn.Conv2d/in_channels 0", lambda: nn.Conv2d(0, 1, 3), ValueError, r"in_channels must be an int >= 1, got 0"),
    ("nn.Conv2d/out_channels 0", lambda: nn.Conv2d(1, 0, 3), ValueError, r"out_channels must be an int >= 1"),
    ("nn.Conv2d/in_channels float", lambda: nn.Conv2d(1.5, 1, 3), ValueError, r"in_channels .* got 1.5"),
    ("nn.Conv2d/kernel_size 0", lambda: nn.Conv2d(1, 2, 0), ValueError, r"kernel_size must be >= 1, got 0"),
    ("nn.Conv2d/kernel_size float", lambda: nn.Conv2d(1, 2, 2.5), TypeError, r"kernel_size must be an int"),
    ("nn.Conv2d/stride 0", lambda: nn.Conv2d(1, 2, 3, stride=0), ValueError, r"stride must be >= 1"),
    ("nn.Conv2d/stride float", lambda: nn.Conv2d(1, 2, 3, stride=(1, 0.5)), TypeError, r"stride must be an int"),
    *[(f"nn.Conv2d/padding {padding!r}", lambda padding=padding: nn.Conv2d(1, 1, 3, padding=padding), ValueError,
       r"padding must be 'valid', 'same', an int >= 0 or a pair of them")
      for padding in (-1, 1.5, "full", True, (1, -1), (1, 2, 3), None, NAN)],
    ("nn.Conv2d/init", lambda: nn.Conv2d(1, 2, 3, init="bogus"), ValueError, r"init must be 'he' or 'glorot', got 'bogus'"),
    ("nn.Conv2d/dtype", lambda: nn.Conv2d(1, 2, 3, dtype=np.int32), TypeError, r"float32 or float64"),
    ("nn.Conv2d/rng", lambda: nn.Conv2d(1, 2, 3, rng="a"), TypeError, r"rng must be None, an int seed"),
    ("nn.Conv2d/input channels", lambda: nn.Conv2d(3, 4, 3)(t(2, 2, 5, 5, dtype=np.float32)), ValueError,
     r"Conv2d\(3, 4\) expects input of shape \(N, 3, H, W\), got \(2, 2, 5, 5\)"),
    ("nn.Conv2d/input rank 3", lambda: nn.Conv2d(3, 4, 3)(t(3, 5, 5)), ValueError, r"\(N, 3, H, W\), got \(3, 5, 5\)"),
    ("nn.Conv2d/input rank 5", lambda: nn.Conv2d(3, 4, 3)(t(1, 2, 3, 5, 5)), ValueError, r"got \(1, 2, 3, 5, 5\)"),
    ("nn.Conv2d/input smaller than kernel", lambda: nn.Conv2d(1, 2, 3)(t(1, 1, 2, 2)), ValueError,
     r"kernel \(3, 3\) larger than the padded input \(2, 2\)"),
    ("nn.Conv2d/input str", lambda: nn.Conv2d(1, 2, 3)("image"), TypeError, r"x must be a Tensor"),
    ("nn.Linear/in_features 0", lambda: nn.Linear(0, 2), ValueError, r"in_features must be an int >= 1, got 0"),
    ("nn.Linear/out_features str", lambda: nn.Linear(2, "3"), ValueError, r"out_features must be an int >= 1"),
    ("nn.Linear/init", lambda: nn.Linear(2, 3, init="bogus"), ValueError, r"init must be 'he' or 'glorot'"),
    ("nn.Linear/input features", lambda: nn.Linear(4, 3)(t(2, 5)), ValueError,
     r"Linear\(4, 3\) expects input of shape \(\.\.\., 4\), got \(2, 5\)"),
    ("nn.Linear/input 0-d", lambda: nn.Linear(3, 2)(t()), ValueError, r"\(\.\.\., 3\), got \(\)"),
    ("nn.MaxPool2d/size 0", lambda: nn.MaxPool2d(0), ValueError, r"size must be >= 1, got 0"),
    ("nn.MaxPool2d/stride float", lambda: nn.MaxPool2d(2, stride=1.5), TypeError, r"stride must be an int"),
    ("nn.MaxPool2d/window larger", lambda: nn.MaxPool2d(4)(t(1, 1, 3, 3)), ValueError,
     r"window \(4, 4\) is larger than the input's last two axes \(3, 3\)"),
    ("nn.Flatten/1-d", lambda: nn.Flatten()(t(3)), ValueError, r"Flatten expects a batch .* got shape \(3,\)"),
    ("nn.Flatten/str", lambda: nn.Flatten()("ab"), TypeError, r"x must be a Tensor"),
    ("nn.ReLU/str", lambda: nn.ReLU()("ab"), TypeError, r"z must be a Tensor"),
    ("nn.Sigmoid/object", lambda: nn.Sigmoid()(np.array([None])), TypeError, r"z must be a Tensor"),
    ("nn.Tanh/str", lambda: nn.Tanh()("ab"), TypeError, r"z must be a Tensor"),
    ("nn.Dropout/p 1", lambda: nn.Dropout(1.0), ValueError, r"p must be in \[0, 1\), got 1.0"),
    ("nn.Dropout/p negative", lambda: nn.Dropout(-0.1), ValueError, r"p must be in \[0, 1\)"),
    ("nn.Dropout/p 1.5", lambda: nn.Dropout(1.5), ValueError, r"p must be in \[0, 1\), got 1.5"),
    ("nn.Dropout/p NaN", lambda: nn.Dropout(NAN), ValueError, r"p must be in \[0, 1\), got nan"),
    ("nn.Dropout/p str", lambda: nn.Dropout("0.5"), TypeError, r"p must be a real number, got '0.5'"),
    ("nn.Dropout/input str", lambda: nn.Dropout(0.5)("ab"), TypeError, r"x must be a Tensor"),
    ("nn.Sequential/not a module", lambda: nn.Sequential(nn.ReLU(), 3), TypeError,
     r"Sequential takes Modules, got int at position 1"),
    ("nn.ModuleList/function", lambda: nn.ModuleList([lambda x: x]), TypeError, r"takes Modules, got function"),
    ("nn.Module.load_state_dict/missing", lambda: nn.Linear(2, 2).load_state_dict({"weight": np.ones((2, 2), np.float32)}),
     StateDictError, r"missing keys \['bias'\]"),
    ("nn.Module.load_state_dict/unexpected", lambda: nn.Linear(2, 2, bias=False).load_state_dict(
        {"weight": np.ones((2, 2), np.float32), "bias": np.ones(2, np.float32)}), StateDictError,
     r"unexpected keys \['bias'\]"),
    ("nn.Module.load_state_dict/shape", lambda: nn.Linear(2, 2, bias=False).load_state_dict(
        {"weight": np.ones((2, 3), np.float32)}), StateDictError,
     r"weight: checkpoint \(2, 3\) float32, model \(2, 2\) float32"),
    ("nn.Module.load_state_dict/dtype", lambda: nn.Linear(2, 2, bias=False).load_state_dict(
        {"weight": np.ones((2, 2))}), StateDictError, r"weight: checkpoint \(2, 2\) float64, model \(2, 2\) float32"),
    ("nn.Module.load_state_dict/object", lambda: nn.Linear(1, 1, bias=False).load_state_dict(
        {"weight": np.array([[None]])}), StateDictError, r"checkpoint \(1, 1\) object"),
    ("nn.Module.load_state_dict/not a dict", lambda: nn.Linear(2, 2).load_state_dict(3), TypeError,
     r"load_state_dict takes a dict of arrays by name, got int"),
    # ---- optimizers -------------------------------------------------------------------------------
    ("optim.SGD/lr negative", lambda: optim.SGD([param()], lr=-0.1), ValueError,
     r"SGD: lr \(the learning rate\) must be finite and >= 0, got -0.1"),
    ("optim.SGD/lr NaN", lambda: optim.SGD([param()], lr=NAN), ValueError, r"lr .* must be finite and >= 0, got nan"),
    ("optim.SGD/lr inf", lambda: optim.SGD([param()], lr=float("inf")), ValueError, r"got inf"),
    ("optim.SGD/lr str", lambda: optim.SGD([param()], lr="0.1"), TypeError, r"lr .* must be a real number, got '0.1'"),
    ("optim.SGD/lr None", lambda: optim.SGD([param()], lr=None), TypeError, r"must be a real number, got None"),
    ("optim.SGD/momentum negative", lambda: optim.SGD([param()], lr=0.1, momentum=-0.9), ValueError,
     r"SGD: momentum must be finite and >= 0, got -0.9"),
    ("optim.SGD/momentum NaN", lambda: optim.SGD([param()], lr=0.1, momentum=NAN), ValueError, r"momentum .* nan"),
    ("optim.SGD/weight_decay negative", lambda: optim.SGD([param()], lr=0.1, weight_decay=-1), ValueError,
     r"weight_decay must be finite and >= 0"),
    ("optim.SGD/weight_decay NaN", lambda: optim.SGD([param()], lr=0.1, weight_decay=NAN), ValueError,
     r"weight_decay .* nan"),
    ("optim.SGD/nesterov without momentum", lambda: optim.SGD([param()], lr=0.1, nesterov=True), ValueError,
     r"nesterov=True needs a momentum > 0"),
    ("optim.SGD/empty list", lambda: optim.SGD([], lr=0.1), ValueError, r"SGD got an empty parameter list"),
    ("optim.SGD/no requires_grad", lambda: optim.SGD([param(), Tensor(np.zeros(2))], lr=0.1), TypeError,
     r"parameter 1 is not a Tensor that requires grad"),
    ("optim.SGD/ndarray", lambda: optim.SGD([np.zeros(2)], lr=0.1), TypeError, r"parameter 0 is not a Tensor"),
    ("optim.SGD/single tensor", lambda: optim.SGD(param(), lr=0.1), TypeError, r"got a single Tensor"),
    ("optim.SGD/not iterable", lambda: optim.SGD(3, lr=0.1), TypeError, r"iterable of Tensors .* got int"),
    ("optim.SGD/repeated parameter", lambda: (lambda w: optim.SGD([w, w], lr=0.1))(param()), ValueError,
     r"a parameter appears more than once"),
    ("optim.Adam/empty iterator", lambda: optim.Adam(iter([])), ValueError, r"Adam got an empty parameter list"),
    ("optim.Adam/no requires_grad", lambda: optim.Adam([Tensor(np.zeros(2))]), TypeError, r"parameter 0"),
    ("optim.Adam/lr negative", lambda: optim.Adam([param()], lr=-1e-3), ValueError, r"Adam: lr .* got -0.001"),
    ("optim.Adam/lr NaN", lambda: optim.Adam([param()], lr=NAN), ValueError, r"Adam: lr .* got nan"),
    ("optim.Adam/beta1 = 1", lambda: optim.Adam([param()], betas=(1.0, 0.999)), ValueError,
     r"betas\[0\] must be in \[0, 1\), got 1.0"),
    ("optim.Adam/beta2 = 1", lambda: optim.Adam([param()], betas=(0.9, 1.0)), ValueError, r"betas\[1\] .* got 1.0"),
    ("optim.Adam/beta1 negative", lambda: optim.Adam([param()], betas=(-0.1, 0.999)), ValueError, r"betas\[0\]"),
    ("optim.Adam/beta2 negative", lambda: optim.Adam([param()], betas=(0.9, -0.5)), ValueError, r"betas\[1\]"),
    ("optim.Adam/beta NaN", lambda: optim.Adam([param()], betas=(NAN, 0.9)), ValueError, r"betas\[0\] .* got nan"),
    ("optim.Adam/one beta", lambda: optim.Adam([param()], betas=(0.9,)), ValueError, r"a pair .* got 1 values"),
    ("optim.Adam/betas float", lambda: optim.Adam([param()], betas=0.9), TypeError, r"betas must be a pair"),
    ("optim.Adam/eps negative", lambda: optim.Adam([param()], eps=-1e-8), ValueError, r"eps must be finite and >= 0"),
    ("optim.Adam/eps NaN", lambda: optim.Adam([param()], eps=NAN), ValueError, r"eps .* nan"),
    ("optim.Adam/eps str", lambda: optim.Adam([param()], eps="a"), TypeError, r"eps must be a real number"),
    ("optim.Adam/weight_decay negative", lambda: optim.Adam([param()], weight_decay=-0.1), ValueError,
     r"weight_decay must be finite"),
    ("optim.Optimizer.load_state_dict/missing", lambda: optim.SGD([param()], lr=0.1).load_state_dict({}), ValueError,
     r"SGD state dict does not fit: missing \['lr', 'momentum', 'nesterov', 'step_count', 'weight_decay'\]"),
    ("optim.Optimizer.load_state_dict/not a dict", lambda: optim.SGD([param()], lr=0.1).load_state_dict(3), TypeError,
     r"SGD.load_state_dict takes a dict of arrays, got int"),
    ("optim.Optimizer.load_state_dict/buffer shape", lambda: optim.SGD([param()], lr=0.1, momentum=0.9).load_state_dict(
        {**optim.SGD([param()], lr=0.1, momentum=0.9).state_dict(), "momentum_buffer.0": np.zeros(3)}), ValueError,
     r"state 'momentum_buffer.0' has shape \(3,\), expected \(2,\) for parameter 0"),
    # ---- checkpoints (file damage and tampering: tests/test_io.py) ------------------------------
    ("io.save/not a dict", lambda: io.save(3, NOWHERE / "c.npz"), TypeError, r"save takes a Module or a dict of arrays, got int"),
    ("io.save/object array", lambda: io.save({"a": np.array([object()])}, NOWHERE / "c.npz"), TypeError,
     r"checkpoint entry 'a' has dtype object"),
    ("io.save/str", lambda: io.save({"a": "text"}, NOWHERE / "c.npz"), TypeError, r"entry 'a' has dtype <U4"),
    ("io.save/key", lambda: io.save({1: np.ones(2)}, NOWHERE / "c.npz"), ValueError, r"names must be non-empty strings"),
    ("io.save/slash in key", lambda: io.save({"a/b": np.ones(2)}, NOWHERE / "c.npz"), ValueError, r"without '/'.*'a/b'"),
    ("io.save/missing folder", lambda: io.save({"a": np.ones(2)}, NOWHERE / "c.npz"), FileNotFoundError,
     r"cannot save a checkpoint to .*c.npz: the folder .* does not exist"),
    ("io.save/path", lambda: io.save({"a": np.ones(2)}, 3), TypeError, r"save: path must be a str or os.PathLike, got int"),
    ("io.load/missing file", lambda: io.load(NOWHERE / "c.npz"), FileNotFoundError, r"no checkpoint file at this path"),
    ("io.load/folder", lambda: io.load(tempfile.gettempdir()), IsADirectoryError, r"a folder, not a checkpoint"),
    ("io.load/path", lambda: io.load(None), TypeError, r"load: path must be a str or os.PathLike, got NoneType"),
    ("io.load/not a checkpoint", lambda: io.load(__file__), CheckpointError, r"a text file, not a checkpoint"),
    ("io.save/not a value", lambda: io.save({"a": object()}, NOWHERE / "c.safetensors"), TypeError,
     r"checkpoint entry 'a' is a object: save arrays, Tensors, and numbers, strings, bools, None or lists"),
    ("io.save/names collide", lambda: io.save({"a.b": 1, "a": {"b": 2}}, NOWHERE / "c.safetensors"), ValueError,
     r"checkpoint names must differ once joined by dots.*'a\.b'"),
    ("io.save/complex", lambda: io.save({"c": np.ones(2, np.complex64)}, NOWHERE / "c.safetensors"), TypeError,
     r"checkpoint entry 'c' has dtype complex64"),
    ("io.from_torch/not a dict", lambda: io.from_torch(3), TypeError,
     r"from_torch takes a Module or a state dict \(a dict of tensors\), got int"),
    ("io.to_torch/not a dict", lambda: io.to_torch([np.ones(2)]), TypeError,
     r"to_torch takes a Module or a state dict \(a dict of tensors\), got list"),
    *[case for onnx in [__import__("tinygrad_cnn.onnx", fromlist=["export"])] for here in [Path(tempfile.gettempdir())]
      for case in [
        ("onnx.export/model", lambda: onnx.export(3, np.ones((1, 2), np.float32), here / "m.onnx"), TypeError,
         r"export: model must be a Module \(or a function of one Tensor\), got int"),
        ("onnx.export/int input", lambda: onnx.export(nn.Linear(2, 2), np.ones((1, 2), np.int64), here / "m.onnx"),
         TypeError, r"example_input must be a float32 or float64 array or Tensor of shape \(N, ...\).*int64 \(1, 2\)"),
        ("onnx.export/0-d input", lambda: onnx.export(nn.Linear(2, 2), np.float32(1), here / "m.onnx"), TypeError,
         r"example_input must be .* got float32"),
        ("onnx.export/path", lambda: onnx.export(nn.Linear(2, 2), np.ones((1, 2), np.float32), None), TypeError,
         r"export: path must be a str or os.PathLike, got NoneType"),
        ("onnx.export/opset", lambda: onnx.export(nn.Linear(2, 2), np.ones((1, 2), np.float32), here / "m.onnx",
                                                  opset=11), ValueError, r"opset must be an int >= 18, got 11"),
        ("onnx.export/missing folder", lambda: onnx.export(nn.Linear(2, 2), np.ones((1, 2), np.float32),
                                                           NOWHERE / "m.onnx"), FileNotFoundError,
         r"export: the folder .* does not exist"),
        ("onnx.export/no ONNX form", lambda: onnx.export(lambda x: F.maxpool2d(x, 2), np.ones((1, 4, 4), np.float32),
                                                         here / "m.onnx"), ValueError,
         r"MaxPool2d \(op 0 of the forward\) has no ONNX form in tinygrad_cnn.onnx for a tensor that is not"),
        ("onnx.export/comparison", lambda: onnx.export(nn.LeakyReLU(), np.ones((2, 3), np.float32), here / "m.onnx"),
         ValueError, r"Where \(op \d+ of the forward\) has a condition computed from the model's input"),
    ]],
    # ---- data ------------------------------------------------------------------------------------
    ("data.mnist/split", lambda: data.mnist(NOWHERE, split="val"), ValueError, r"split must be 'train' or 'test', got 'val'"),
    ("data.mnist/no files", lambda: data.mnist(NOWHERE, download=False), DatasetError,
     r"train-images-idx3-ubyte.gz does not exist \(and download=False\)"),
    ("data.read_idx/missing", lambda: data.read_idx(NOWHERE / "x.gz", data.IMAGE_MAGIC), DatasetError,
     r"x.gz: not a valid gzip file"),
    ("data.read_idx/not gzip", lambda: data.read_idx(__file__, data.IMAGE_MAGIC), DatasetError, r"not a valid gzip file"),
    *[(f"data.DataLoader/batch_size {size!r}", lambda size=size: DataLoader(np.ones((4, 2)), np.ones(4), batch_size=size),
       ValueError, r"batch_size must be an int >= 1") for size in (0, -1, 2.5, True, "4", None)],
    ("data.DataLoader/lengths", lambda: DataLoader(np.ones((10, 1, 2, 2)), np.ones(9)), ValueError,
     r"images of shape \(10, 1, 2, 2\) and labels of shape \(9,\) need the same first axis"),
    ("data.DataLoader/0-d", lambda: DataLoader(np.ones(()), np.ones(3)), ValueError, r"images of shape \(\)"),
    ("data.DataLoader/object images", lambda: DataLoader(np.array([object()] * 4), np.ones(4)), TypeError,
     r"images must be an array of numbers, got dtype object"),
    ("data.DataLoader/str labels", lambda: DataLoader(np.ones((2, 3)), ["a", "b"]), TypeError,
     r"labels must be an array of numbers, got dtype <U1"),
    ("data.DataLoader/ragged", lambda: DataLoader([[1], [1, 2]], [0, 1]), ValueError, r"rectangular"),
    ("data.DataLoader/seed", lambda: DataLoader(np.ones((4, 2)), np.ones(4), seed="a"), TypeError,
     r"seed must be an int, got 'a'"),
    ("data.DataLoader.load_state_dict/keys", lambda: DataLoader(np.ones((4, 2)), np.ones(4)).load_state_dict({}),
     ValueError, r"needs a dict with 'epoch' and 'seed', got \[\]"),
]

IDS = [case[0] for case in CASES]


def test_ids_are_unique():
    assert len(IDS) == len(set(IDS)), sorted({i for i in IDS if IDS.count(i) > 1})


@pytest.mark.parametrize("call, error, pattern", [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_error(call, error, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (0/0, a cast of NaN) on the way to the error
        with pytest.raises(error, match=pattern) as info:
            call()
    assert type(info.value) is error or error is ValueError and isinstance(info.value, ValueError), info.value
    if not ("read-only" in pattern):  # numpy's own refusal, at the line that writes
        assert frames_inside_the_checks(info.value), "".join(traceback.format_tb(info.value.__traceback__)[-3:])


# ---- completeness --------------------------------------------------------------------------------
# Public names that take no argument that can be wrong (or only self): nothing to put in the table.
NO_BAD_INPUT = {
    "Tensor.detach", "Tensor.numpy", "Tensor.exp", "Tensor.log", "Tensor.sigmoid", "Tensor.relu", "Tensor.tanh",
    "Tensor.__neg__", "Tensor.__repr__", "Tensor.__array__", "Tensor.__hash__", "Tensor.abs", "Tensor.sqrt",
    "Tensor.erf",
    "Tensor.numel", "Tensor.dim", "Tensor.tolist", "Tensor.float", "Tensor.double", "Tensor.long", "Tensor.bool",
}


def public_names() -> set[str]:
    names = {f"F.{name}" for name in F.__all__}
    names |= {f"nn.{name}" for name in nn.__all__
              if name not in ("Module", "StateDictError", "functional", "init", "utils", "Identity")}
    names |= {f"nnI.{name}" for name in nn.init.__all__} | {f"nnU.{name}" for name in nn.utils.__all__}
    names |= {f"nnF.{name}" for name in NF.__all__ if name not in F.__all__}
    names |= {"nn.Module.load_state_dict", "optim.SGD", "optim.Adam", "optim.Optimizer.load_state_dict", "optim.AdamW",
              "optim.RMSprop"}
    names |= {f"sched.{name}" for name in optim.lr_scheduler.__all__ if name != "LRScheduler"}
    names |= {f"ud.{name}" for name in ("TensorDataset", "DataLoader")}
    names |= {f"T.{name}" for name in tinygrad_cnn.transforms.__all__}
    names |= {"io.save", "io.load", "io.from_torch", "io.to_torch", "onnx.export", "data.mnist", "data.read_idx", "data.DataLoader",
              "data.DataLoader.load_state_dict", "grad", "detect_anomaly", "set_num_threads"}
    names |= {f"tc.{name}" for name in tinygrad_cnn.tensor_ops.__all__ + tinygrad_cnn.creation.__all__
              if name not in ("ValuesIndices", "default_generator")}
    for name, member in vars(Tensor).items():
        public = not name.startswith("_") or (name.startswith("__") and name.endswith("__"))
        if public and callable(member) and name not in ("__init__", "__init_subclass__"):
            names.add(f"Tensor.{name}")
    names.add("Tensor")
    return names - NO_BAD_INPUT


def test_every_public_name_has_a_case():
    covered = {case_id.split("/")[0] for case_id in IDS}
    missing = sorted(public_names() - covered)
    assert not missing, f"public names without an error case: {missing}"


def test_the_table_is_large_enough_to_mean_something():
    print(f"{len(CASES)} error cases")  # reported with -s
    assert len(CASES) >= 200
