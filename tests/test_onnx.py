"""ONNX export (tinygrad_cnn.onnx): the file passes onnx.checker, and ONNX Runtime computes what
our forward computes, to float32 rounding, at batch 1 and 17 from one export (a dynamic batch
axis): for the MNIST network, the benchmark suite's VGG-style and ResNet-style nets, and a net
per kind of primitive. What has no ONNX form is an ExportError naming it. The ONNX Runtime
tests need the `onnx` extra (skipped without it); the errors and the import tests do not.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn
import tinygrad_cnn.functional as F
import tinygrad_cnn.nn.functional as NF
from tinygrad_cnn import Tensor, nn, no_grad, ops
from tinygrad_cnn.function import Function
from tinygrad_cnn.models import nielsen_cnn
from tinygrad_cnn.onnx import ExportError, export

ROOT = Path(__file__).resolve().parents[1]


def suite_nets():
    """benchmarks/suite_nets.py, whose builders take the layer namespace (ours or torch.nn)."""
    name = "tests_onnx_suite_nets"
    if name not in sys.modules:  # (registered first: its dataclasses look their module up)
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "suite_nets.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def seeded(build):
    def make():
        tinygrad_cnn.manual_seed(0)
        return build()
    return make


def warmed_up(model, shape, steps=2):
    """A few training-mode batches, so that BatchNorm's running statistics are not 0 and 1."""
    rng = np.random.default_rng(1)
    model.train()
    for _ in range(steps):
        model(Tensor(rng.standard_normal((8, *shape)).astype(np.float32)))
    return model


def check_against_onnxruntime(model, shape, path, batches=(1, 17), rtol=1e-4, atol=1e-5, dtype=np.float32):
    """Export at batch 4, check the file, and compare ONNX Runtime with our eval-mode forward."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(2)
    training = getattr(model, "training", None)
    proto = export(model, rng.standard_normal((4, *shape)).astype(dtype), path)
    assert getattr(model, "training", None) == training  # the flag is restored
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if training is not None:
        model.eval()
    for batch in batches:
        x = rng.standard_normal((batch, *shape)).astype(dtype)
        with no_grad():
            expected = model(Tensor(x)).data
        (got,) = session.run(None, {"input": x})
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"batch {batch}")
    return proto


# ---- the networks of the README and of the benchmark suite -------------------------------------------
NETWORKS = {
    "mnist-relu": (lambda: nielsen_cnn("relu", seed=0), (1, 28, 28)),
    "mnist-sigmoid": (lambda: nielsen_cnn("sigmoid", seed=0), (1, 28, 28)),
    "vgg": (seeded(lambda: suite_nets().vgg(nn)), (3, 32, 32)),
    "resnet": (seeded(lambda: suite_nets().resnet(nn)), (3, 64, 64)),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_network_runs_in_onnxruntime_as_here(tmp_path, name):
    build, shape = NETWORKS[name]
    model = warmed_up(build(), shape)
    proto = check_against_onnxruntime(model, shape, tmp_path / f"{name}.onnx")
    initializers = {i.name for i in proto.graph.initializer}
    assert "0.weight" in initializers  # parameters under their state-dict names
    kinds = {node.op_type for node in proto.graph.node}
    assert {"Conv", "Gemm"} <= kinds and "MaxPool" in kinds
    if name == "resnet":  # max pooling's −∞ padding is MaxPool's pads, BatchNorm a folded scale and shift
        (pool,) = [n for n in proto.graph.node if n.op_type == "MaxPool"]
        assert [list(a.ints) for a in pool.attribute if a.name == "pads"] == [[1, 1, 1, 1]]
        assert "Pad" not in kinds and sum(n.op_type == "Conv" for n in proto.graph.node) == 3
        assert "1.running_var" not in initializers


@pytest.mark.parametrize("name, shape", [("dilated", (3, 32, 32)), ("resnet_down", (3, 32, 32)),
                                         ("mobilenet_silu", (3, 64, 64)), ("decoder", (3, 8, 8))])
def test_the_suites_other_networks_run_in_onnxruntime_as_here(tmp_path, name, shape):
    model = warmed_up(seeded(lambda: getattr(suite_nets(), name)(nn))(), shape)
    proto = check_against_onnxruntime(model, shape, tmp_path / f"{name}.onnx")
    attributes = [{a.name: list(a.ints) for a in n.attribute if a.ints} | {a.name: a.i for a in n.attribute if a.i}
                  for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    kinds = {node.op_type for node in proto.graph.node}
    if name == "dilated":  # the dilations are Conv's own, no spread kernel
        assert [a.get("dilations", [1, 1]) for a in attributes] == [[1, 1], [2, 2], [4, 4]]
    elif name == "mobilenet_silu":  # the depthwise convolution is one grouped Conv; SiLU is z·σ(z)
        assert sorted(a.get("group", 1) for a in attributes) == [1, 1, 1, 96] and {"Sigmoid", "Mul"} <= kinds
    elif name == "decoder":
        assert [node.op_type for node in proto.graph.node if "Conv" in node.op_type] == \
            ["ConvTranspose", "ConvTranspose", "Conv"]
    else:  # the 1×1 stride-2 shortcut
        assert any(a["kernel_shape"] == [1, 1] and a["strides"] == [2, 2] for a in attributes)


def test_one_conv_node_per_convolution_and_one_gemm_per_linear(tmp_path):
    pytest.importorskip("onnx")
    proto = export(nielsen_cnn("relu", seed=0), np.zeros((2, 1, 28, 28), np.float32), tmp_path / "m.onnx")
    kinds = [node.op_type for node in proto.graph.node]
    assert kinds == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Reshape", "Gemm", "Relu", "Gemm",
                     "Identity"]
    conv = proto.graph.node[0]
    assert {a.name: list(a.ints) for a in conv.attribute if a.ints} == {
        "kernel_shape": [5, 5], "strides": [1, 1], "pads": [0, 0, 0, 0]}


# ---- one net per kind of primitive ----------------------------------------------------------------
class Lambda(nn.Module):
    def __init__(self, fn, *layers):
        super().__init__()
        self.fn = fn
        for i, layer in enumerate(layers):
            setattr(self, f"layer{i}", layer)

    def forward(self, x):
        return self.fn(self, x)


def _grouped_and_dilated():
    tinygrad_cnn.manual_seed(3)
    return nn.Sequential(nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), nn.Conv2d(6, 6, 3, groups=6))


OPS = {
    "gelu (Erf)": (lambda: Lambda(lambda s, x: NF.gelu(s.layer0(x)), nn.Conv2d(3, 4, 3, rng=0)), (3, 8, 8)),
    "gelu tanh, silu, softplus-free": (lambda: Lambda(lambda s, x: NF.silu(NF.gelu(x, approximate="tanh"))),
                                       (3, 5)),
    "softmax and log_softmax": (lambda: Lambda(lambda s, x: NF.softmax(x, dim=1) + NF.log_softmax(x, dim=-1)), (6,)),
    "log_softmax over two axes": (lambda: Lambda(lambda s, x: F.log_softmax(x, axis=(1, 2))), (3, 4)),
    "avg_pool2d with padding": (lambda: nn.AvgPool2d(3, 2, padding=1), (3, 9, 9)),
    "max_pool2d padding, dilation, ceil": (lambda: nn.MaxPool2d(3, 2, padding=1, dilation=2, ceil_mode=True),
                                           (3, 11, 11)),
    "adaptive_avg_pool2d, uneven": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (3, 7, 5)),
    "conv padding same, stride": (lambda: nn.Conv2d(3, 4, 4, stride=2, padding=1, rng=0), (3, 9, 9)),
    "conv grouped and dilated": (_grouped_and_dilated, (4, 9, 9)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), (3, 5, 5)),
    "batch norm without running statistics": (lambda: nn.BatchNorm2d(3, track_running_stats=False), (3, 4, 4)),
    "batch norm 1d": (lambda: nn.BatchNorm1d(5), (5,)),
    "layer norm (Sum, Pow, Div)": (lambda: nn.LayerNorm((4, 4)), (3, 4, 4)),
    "linear on 3-d input": (lambda: nn.Linear(8, 3, rng=0), (4, 8)),
    "permute and matmul": (lambda: Lambda(lambda s, x: x.permute(0, 2, 1) @ x), (3, 4)),
    "indexing": (lambda: Lambda(lambda s, x: x[:, 0, 1:5:2, None, ::-1] * 2 + x[..., 2, -2:1:-3, None, :]),
                 (3, 8, 8)),
    "gather with an index array": (lambda: Lambda(lambda s, x: x[:, np.array([2, 0, 2])].exp()), (4, 2)),
    "cat of chunks, flatten": (lambda: Lambda(lambda s, x: tinygrad_cnn.cat(list(x.chunk(2, 1))[::-1], 1).flatten(1)),
                               (4, 3)),
    "expand, max, sum": (lambda: Lambda(lambda s, x: x.amax(1, keepdim=True).expand(-1, 4) - x.sum(1, keepdim=True)),
                         (4,)),
    "pow, div, neg, log": (lambda: Lambda(lambda s, x: -((x * x + 1) ** 0.5 / (x.exp() + 2)).log()), (4,)),
    "dropout in eval mode": (lambda: nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.5), nn.Tanh()), (4,)),
    "where with a constant condition": (lambda: Lambda(lambda s, x: tinygrad_cnn.where(
        np.array([True, False, True]), x, x * 3)), (3,)),
    "float64 (Gemm, Sigmoid)": (lambda: nn.Sequential(nn.Linear(4, 3, rng=0, dtype=np.float64), nn.Sigmoid()), (4,)),
}


@pytest.mark.parametrize("name", OPS)
def test_primitive_runs_in_onnxruntime_as_here(tmp_path, name):
    build, shape = OPS[name]
    dtype = np.float64 if "float64" in name else np.float32
    check_against_onnxruntime(build(), shape, tmp_path / "m.onnx", dtype=dtype)


def test_a_later_opset_runs_too(tmp_path):
    onnx = pytest.importorskip("onnx")
    opset = min(onnx.defs.onnx_opset_version(), 21)
    ort = pytest.importorskip("onnxruntime")
    model = nielsen_cnn("relu", seed=0).eval()
    proto = export(model, np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx", opset=opset)
    assert proto.opset_import[0].version == opset
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    (got,) = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got, model(Tensor(x)).data, rtol=1e-4, atol=1e-5)


# ---- what has no ONNX form -----------------------------------------------------------------------------
class Halve(Function):
    """A user's own primitive: y = x / 2 (no ONNX form is known for it)."""

    @staticmethod
    def forward(ctx, x):
        return x.data / 2

    @staticmethod
    def backward(ctx, dy):
        return dy / 2


@pytest.mark.parametrize("fn, pattern", [
    (lambda x: Halve.apply(x.relu()), r"Halve \(op 1 of the forward\) has no ONNX form in tinygrad_cnn.onnx"),
    (lambda x: NF.leaky_relu(x), r"Where \(op \d+ of the forward\) has a condition computed from the model's input"),
    (lambda x: x + Tensor(x.numpy() > 0).float(), r"input 1 of Add \(op 0 of the forward\) is computed from the "
                                                  r"model's input outside the recorded ops"),
    (lambda x: x * 2 if len(x) < 3 else x - 1, r"the forward ran other ops .* \(control flow"),
    (lambda x: ops.IndexAdd.apply(x[:, 0], shape=(x.shape[0], 8), index=(slice(None), slice(None, None, 2))),
     r"IndexAdd \(op 1\) at .* is a scatter, not a constant padding"),
    (lambda x: F.maxpool2d(x[:, 0], 2), r"MaxPool2d \(op 1 of the forward\) has no ONNX form .*not \(N, C, H, W\)"),
    (lambda x: Tensor(np.ones(3)), r"the model's output does not depend on its input"),
    (lambda x: x[:-1] * 2, r"GetItem \(op 0\) slices the batch axis"),
])
def test_what_has_no_onnx_form_is_named(tmp_path, fn, pattern):
    x = np.linspace(-1, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) + 0.1
    with pytest.raises(ExportError, match=pattern):
        export(fn, x, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_training_flag_is_restored_when_the_forward_fails(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3, rng=0))
    with pytest.raises(ValueError):
        export(model, np.ones((2, 5), np.float32), tmp_path / "m.onnx")  # 5 features for a Linear(4, ...)
    assert model.training
    model.eval()
    with pytest.raises(ExportError):
        export(nn.Sequential(nn.LeakyReLU()).eval(), np.ones((2, 3), np.float32), tmp_path / "m.onnx")
    assert not model.training


# ---- the core does without onnx --------------------------------------------------------------------------
def test_the_core_imports_neither_onnx_nor_safetensors_nor_torch():
    code = ("import sys, tinygrad_cnn, tinygrad_cnn.io, tinygrad_cnn.onnx, tinygrad_cnn.nn\n"
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'safetensors', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_export_without_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(ImportError, match=r"needs the onnx package: pip install 'tinygrad_cnn\[onnx\]'"):
        export(nielsen_cnn(seed=0), np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
