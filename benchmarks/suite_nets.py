"""The networks of benchmarks/suite.py, and the multiply-add counter its GFLOP/s come from.

Each builder takes the layer namespace (``tinygrad_cnn.nn`` or ``torch.nn``) and returns the same
architecture in either framework: the two share PyTorch's layer vocabulary, and their
state_dict keys agree for the same attribute names, which is what lets suite.py copy our
initial weights into the PyTorch twin. Imports nothing heavy at import time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def lenet5(nn: Any) -> Any:
    """LeNet-5 on 1×32×32 (tanh, average pooling)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),        # 32 → 28 → 14
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),       # → 10 → 5
        nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def vgg(nn: Any) -> Any:
    """VGG-style CIFAR-10 net on 3×32×32: three blocks of [conv 3×3 → BatchNorm → ReLU]×2 → max-pool 2."""
    layers: list[Any] = []
    channels = 3
    for width in (32, 64, 128):                                # 32 → 16 → 8 → 4
        for _ in range(2):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, 10))


def allconv(nn: Any) -> Any:
    """All-convolutional net on 3×32×32: stride-2 3×3 convolutions where a CNN would pool."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),             # 32
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # → 16
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),  # → 8
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def basic_block(nn: Any, channels: int) -> Any:
    """ResNet's basic block, a Module subclass in whichever framework `nn` is:
    relu(bn2(conv2(relu(bn1(conv1(x))))) + x)."""

    class BasicBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + x)

    return BasicBlock()


def resnet(nn: Any) -> Any:
    """ResNet's stem and one basic block on 3×64×64."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(32), nn.ReLU(),  # 64 → 32
        nn.MaxPool2d(3, 2, padding=1),                                                         # → 16
        basic_block(nn, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def bottleneck_depthwise(nn: Any) -> Any:
    """1×1 expansion, depthwise 3×3 (groups = channels), 1×1 projection, on 3×32×32."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.ReLU(),
        nn.Conv2d(64, 32, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def overlap_pool(nn: Any) -> Any:
    """Overlapping max pooling on 3×32×32: AlexNet's 3×3 stride 2, then the article's 3×3 stride 1."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(3, stride=2),   # 32 → 28 → 13
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(3, stride=1),  # → 11 → 9
        nn.Flatten(), nn.Linear(64 * 9 * 9, 10))


def dilated(nn: Any) -> Any:
    """A context module of dilated 3×3 convolutions (dilation 1, 2, 4: DeepLab's, Yu and Koltun's)
    on 3×32×32."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=4, dilation=4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def resnet_down(nn: Any) -> Any:
    """ResNet's downsampling basic block on 3×32×32: 3×3 stride 2 and 3×3 convolutions with
    BatchNorm, and a 1×1 stride-2 convolution with BatchNorm on the shortcut."""

    class DownBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
            self.body = nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64))
            self.shortcut = nn.Sequential(nn.Conv2d(32, 64, 1, 2, bias=False), nn.BatchNorm2d(64))
            self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x: Any) -> Any:
            x = self.stem(x)
            return self.head(self.body(x) + self.shortcut(x))

    return DownBlock()


def mobilenet_silu(nn: Any) -> Any:
    """An inverted residual block of MobileNetV2/EfficientNet with SiLU on 3×64×64: 1×1
    expansion, depthwise 3×3 stride 2, 1×1 projection, each with BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU(),
        nn.Conv2d(16, 96, 1, bias=False), nn.BatchNorm2d(96), nn.SiLU(),
        nn.Conv2d(96, 96, 3, 2, 1, groups=96, bias=False), nn.BatchNorm2d(96), nn.SiLU(),
        nn.Conv2d(96, 24, 1, bias=False), nn.BatchNorm2d(24),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))


def decoder(nn: Any) -> Any:
    """DCGAN's generator: transposed convolutions 4×4 stride 2 (8 → 16 → 32) with BatchNorm and
    ReLU, a 3×3 convolution and tanh, on 3×8×8 (a linear layer reads the image out)."""
    return nn.Sequential(
        nn.ConvTranspose2d(3, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


def _nielsen(activation: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Nielsen's MNIST net: ours from tinygrad_cnn.models, PyTorch's from common."""
    def ours() -> Any:
        from tinygrad_cnn.models import nielsen_cnn
        return nielsen_cnn(activation, seed=0)

    def theirs() -> Any:
        from common import torch_nielsen_cnn
        return torch_nielsen_cnn(activation)

    return ours, theirs


def _generic(builder: Callable[[Any], Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Ours from `builder` after seeding our global generator (every layer draws from it);
    PyTorch's from the same builder (its initial values are replaced by ours)."""
    def ours() -> Any:
        import tinygrad_cnn
        tinygrad_cnn.manual_seed(0)
        return builder(tinygrad_cnn.nn)

    def theirs() -> Any:
        import torch
        return builder(torch.nn)

    return ours, theirs


@dataclass
class Workload:
    """kind: "train" (forward, cross-entropy, backward, SGD step), "penalty" (as train, plus
    a WGAN-GP gradient penalty: double backward) or "infer" (forward at no_grad, eval mode)."""
    name: str
    build: tuple[Callable[[], Any], Callable[[], Any]]  # (ours, PyTorch's)
    input_shape: tuple[int, int, int]
    kind: str = "train"
    batches: tuple[int, ...] = (64, 256)
    description: str = field(default="")


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("mnist-relu", _nielsen("relu"), (1, 28, 28), description="Nielsen's MNIST net, ReLU"),
    Workload("mnist-sigmoid", _nielsen("sigmoid"), (1, 28, 28), description="Nielsen's MNIST net, sigmoid"),
    Workload("lenet5", _generic(lenet5), (1, 32, 32), description="LeNet-5"),
    Workload("vgg", _generic(vgg), (3, 32, 32), description="VGG-style, BatchNorm"),
    Workload("allconv", _generic(allconv), (3, 32, 32), description="all-convolutional, stride 2"),
    Workload("resnet", _generic(resnet), (3, 64, 64), description="ResNet stem + basic block"),
    Workload("bottleneck-depthwise", _generic(bottleneck_depthwise), (3, 32, 32),
             description="1×1, depthwise 3×3, 1×1"),
    Workload("overlap-pool", _generic(overlap_pool), (3, 32, 32), description="overlapping max pooling"),
    Workload("dilated", _generic(dilated), (3, 32, 32), description="dilated convolutions"),
    Workload("resnet-down", _generic(resnet_down), (3, 32, 32), description="ResNet downsampling block"),
    Workload("mobilenet-silu", _generic(mobilenet_silu), (3, 64, 64), description="inverted residual, SiLU"),
    Workload("decoder", _generic(decoder), (3, 8, 8), description="DCGAN generator, transposed convolutions"),
    Workload("gradient-penalty", _nielsen("relu"), (1, 28, 28), "penalty", (64,),
             "MNIST ReLU net, CE + WGAN-GP penalty (double backward)"),
    Workload("infer-mnist", _nielsen("relu"), (1, 28, 28), "infer", (1,), "MNIST ReLU net, inference"),
    Workload("infer-vgg", _generic(vgg), (3, 32, 32), "infer", (1,), "VGG-style, inference"),
]}


def forward_macs(model: Any, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one sample's forward through the convolutions and linear layers of one
    of our models: each Conv2d is out_channels·H'·W'·(in_channels/groups)·kh·kw, each
    ConvTranspose2d in_channels·H·W·(out_channels/groups)·kh·kw, each Linear in·out, with the
    sizes recorded in a dry forward of one sample. (The recorder is an
    instance attribute shadowing the class's forward, removed afterwards, so nothing in the
    framework needs hooks.) Pooling, normalization and activations are not counted."""
    import numpy as np

    import tinygrad_cnn
    from tinygrad_cnn import nn

    counted: list[int] = []

    def recorder(layer: Any) -> Callable[[Any], Any]:
        forward = type(layer).forward

        def record(x: Any) -> Any:
            out = forward(layer, x)
            weight = layer.weight.shape
            # (in/groups)·kh·kw per output for a conv, in for a linear; (out/groups)·kh·kw per input transposed
            per_value = int(np.prod(weight[1:]))
            counted.append(int(np.prod((x if isinstance(layer, nn.ConvTranspose2d) else out).shape[1:])) * per_value)
            return out

        return record

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    for layer in layers:
        layer.forward = recorder(layer)
    was_training = model.training
    try:
        model.eval()  # no running statistics move
        with tinygrad_cnn.no_grad():
            model(tinygrad_cnn.Tensor(np.zeros((1, *input_shape), np.float32)))
    finally:
        for layer in layers:
            del layer.forward
        model.train(was_training)
    return sum(counted)
