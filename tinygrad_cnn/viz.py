"""Pictures of what a network computes: its graph, its filters, its feature maps, its training.

* `graph(tensor)` is the computation graph behind a tensor as Graphviz DOT text, and
  `render(graph_or_tensor, path)` draws it to SVG or PNG with Graphviz (both from
  ``tinygrad_cnn.dot``).
* `filters`, `feature_maps` and `training_curves` write PNG pictures with matplotlib, an
  optional extra (``pip install -e '.[plot]'``). matplotlib is imported only inside them, so
  ``import tinygrad_cnn.viz`` (and the whole core package) works without it.

The pictures are drawn on figures of their own with matplotlib's Agg renderer, never through
``pyplot``: nothing needs a screen, no global backend or pyplot figure list is touched (so a
notebook's own plotting is left alone), and a figure is freed as soon as it is saved.
Their size in pixels is fixed by the content, as each function's docstring says, not by the
fonts: a layout measured in inches times `dpi`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from tinygrad_cnn import nn
from tinygrad_cnn.dot import GRAPHVIZ_MISSING, graph, render
from tinygrad_cnn.function import no_grad
from tinygrad_cnn.tensor import Tensor

if TYPE_CHECKING:  # for the annotations only: the core must import without matplotlib
    from matplotlib.figure import Figure

__all__ = ["graph", "render", "filters", "feature_maps", "training_curves", "GRAPHVIZ_MISSING"]

PLOT_EXTRA = "pip install -e '.[plot]'"


# ---- matplotlib pictures -----------------------------------------------------------------------

def _new_figure(width: float, height: float, dpi: int) -> Figure:
    """A figure of width x height inches, drawn by Agg and unknown to pyplot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"tinygrad_cnn.viz needs matplotlib for pictures: {PLOT_EXTRA} "
                          "(or pip install matplotlib)") from None
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write the figure as a PNG, atomically (a reader never sees half a file), and free it."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"the picture's path must end in .png, got {str(path)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        # No bbox_inches="tight": the pixel size stays the figure's, whatever the fonts measure.
        # No metadata: the same picture gives the same bytes with any matplotlib version.
        figure.savefig(temporary, format="png", dpi=figure.dpi, metadata={"Software": None},
                       pil_kwargs={"optimize": True})
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        figure.clear()
    return target


def _grid(arrays: np.ndarray, rows: int, columns: int, gap: int = 1) -> np.ndarray:
    """Tile same-sized 2-D arrays (count, h, w) row by row into one image, NaN between tiles
    and after the last one (drawn as background)."""
    count, h, w = arrays.shape
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan)
    for i in range(count):
        r, c = divmod(i, columns)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = arrays[i]
    return mosaic


def _colormap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="white")  # NaN: the gaps between tiles


def _quarter(inches: float) -> float:
    """Round up to a quarter inch, so inches x dpi is an exact integer number of pixels."""
    return math.ceil(inches * 4 - 1e-9) / 4


FILTER_CELL = 0.5   # inches per kernel when the grid is at most FILTER_WIDE kernels wide
FILTER_WIDE = 12


def filters(conv: nn.Conv2d, path: str | os.PathLike[str], dpi: int = 100,
            title: str | None = None) -> Path:
    """The kernels (weights) of a `Conv2d` as a grid of small images, saved as a PNG.

    Blue is negative, red positive, white zero, on one colour scale for the whole layer (a
    colour bar shows it), so kernels compare with each other. With one input channel the
    ``out_channels`` kernels fill rows of at most 10; otherwise there is one row per input
    channel and one column per output feature map (conv 20 -> 40: 20 rows x 40 columns).

    Size: each kernel gets a square cell of 0.5 inch (0.25 inch when the grid is more than 12
    cells wide); the figure is ``columns x cell + 1.5`` by ``rows x cell + 0.75`` inches, each
    rounded up to a quarter inch, times `dpi` pixels. Returns the path.
    """
    weight = getattr(conv, "weight", None)
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise TypeError(f"filters() takes a Conv2d layer (weight of shape (out, in, kh, kw)), "
                        f"got {type(conv).__name__}")
    w = np.asarray(weight.data, dtype=np.float64)
    out_channels, in_channels, kh, kw = w.shape
    if in_channels == 1:
        columns = min(out_channels, 10)
        rows = math.ceil(out_channels / columns)
        tiles = w[:, 0]
        xlabel, ylabel = f"{out_channels} kernels ({kh}×{kw}), one per feature map", ""
    else:
        rows, columns = in_channels, out_channels
        tiles = w.transpose(1, 0, 2, 3).reshape(in_channels * out_channels, kh, kw)
        xlabel, ylabel = f"output feature map (1–{out_channels})", f"input map (1–{in_channels})"
    cell = FILTER_CELL if columns <= FILTER_WIDE else FILTER_CELL / 2
    width, height = _quarter(columns * cell + 1.5), _quarter(rows * cell + 0.75)
    figure = _new_figure(width, height, dpi)
    # Axes placed in inches, so each kernel's cell has the same size in every picture.
    axes = figure.add_axes((0.5 / width, 0.35 / height, columns * cell / width, rows * cell / height))
    limit = float(np.max(np.abs(w))) or 1.0
    image = axes.imshow(_grid(tiles, rows, columns), cmap=_colormap("RdBu_r"), vmin=-limit, vmax=limit,
                        interpolation="nearest", aspect="auto")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(xlabel, fontsize=8, labelpad=2)
    axes.set_ylabel(ylabel, fontsize=8, labelpad=2)
    for spine in axes.spines.values():
        spine.set_visible(False)
    bar = figure.add_axes(((0.5 + columns * cell + 0.2) / width, 0.35 / height, 0.12 / width,
                           rows * cell / height))
    figure.colorbar(image, cax=bar).ax.tick_params(labelsize=7)
    figure.text(0.5 / width, 1 - 0.1 / height, title or f"filters of Conv2d({in_channels}, {out_channels}, "
                f"kernel_size={(kh, kw)}): weight {w.shape}", fontsize=9, va="top")
    return _save(figure, path)


FEATURE_CELL = 0.5     # inches per feature map
FEATURE_COLUMNS = 20   # feature maps per row
_ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh)


def _stages(model: Iterable[Any], x: Tensor) -> list[tuple[str, np.ndarray]]:
    """Run the layers one by one; keep the input, each Conv2d's output (after the activation
    layer right behind it, if any) and each MaxPool2d's output, up to the first non-image."""
    stages = [("input", x.data[0])]
    layers = list(model)
    counts = {"conv": 0, "pool": 0}
    i = 0
    while i < len(layers) and x.ndim == 4:
        layer = layers[i]
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            counts["conv"] += 1
            label = f"conv {counts['conv']}"
            if i + 1 < len(layers) and isinstance(layers[i + 1], _ACTIVATIONS):
                i += 1
                x = layers[i](x)
                label += f" + {type(layers[i]).__name__}"
            stages.append((label, x.data[0]))
        elif isinstance(layer, nn.MaxPool2d):
            counts["pool"] += 1
            stages.append((f"max-pool {counts['pool']}", x.data[0]))
        i += 1
    return stages


def feature_maps(model: nn.Sequential | Sequence[nn.Module], image: Any, path: str | os.PathLike[str],
                 dpi: int = 100, title: str | None = None) -> Path:
    """What each convolutional and pooling layer of `model` makes of one image, saved as a PNG.

    `model` is a `Sequential` (or a list of layers), run layer by layer without recording a
    graph and in eval mode (restored after). `image` is an array or Tensor of shape (H, W),
    (C, H, W) or (1, C, H, W). One band per stage: the input, then each Conv2d's feature maps
    (after the activation layer right behind it) and each MaxPool2d's, until the first layer
    whose output is not an image (Flatten). Each map is drawn on its own grey scale (black its
    minimum, white its maximum; a constant map is black), at most 20 maps per row.

    Size: 0.5 inch per map and 20 maps per row: ``min(20, widest stage) x 0.5 + 1.75`` inches
    wide; each band is ``rows x 0.5 + 0.25`` inches tall, plus 0.5 inch for the title; times
    `dpi` pixels. Returns the path.
    """
    x = image if isinstance(image, Tensor) else Tensor(np.asarray(image, dtype=np.float32))
    if x.ndim == 2:
        x = x.reshape(1, 1, *x.shape)
    elif x.ndim == 3:
        x = x.reshape(1, *x.shape)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"feature_maps() takes one image of shape (H, W), (C, H, W) or (1, C, H, W), "
                         f"got shape {x.shape}")
    try:
        layers = list(model)
    except TypeError:
        raise TypeError(f"feature_maps() takes a Sequential or a list of layers, "
                        f"got {type(model).__name__}") from None
    training = [getattr(layer, "training", False) for layer in layers]
    for layer in layers:
        if hasattr(layer, "eval"):
            layer.eval()  # Dropout is off: the picture shows what the trained network computes
    try:
        with no_grad():
            stages = _stages(layers, x.detach())
    finally:
        for layer, mode in zip(layers, training):
            if hasattr(layer, "train"):
                layer.train(mode)

    columns = min(FEATURE_COLUMNS, max(len(maps) for _, maps in stages))
    bands = [(label, maps, math.ceil(len(maps) / columns)) for label, maps in stages]
    left = 1.5
    width = columns * FEATURE_CELL + left + 0.25
    height = sum(rows * FEATURE_CELL + 0.25 for _, _, rows in bands) + 0.5
    figure = _new_figure(width, height, dpi)
    cmap = _colormap("gray")
    top = height - 0.5
    for label, maps, rows in bands:
        maps = np.asarray(maps, dtype=np.float64)
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
        band_height = rows * FEATURE_CELL
        shown = min(columns, len(maps))
        axes = figure.add_axes((left / width, (top - 0.25 - band_height) / height,
                                shown * FEATURE_CELL / width, band_height / height))
        axes.imshow(_grid(scaled, rows, shown), cmap=cmap, vmin=0, vmax=1, interpolation="nearest",
                    aspect="auto")
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_visible(False)
        h, w = maps.shape[1:]
        figure.text(0.1 / width, (top - 0.25 - band_height / 2) / height,
                    f"{label}\n{len(maps)} × {h}×{w}", fontsize=8, va="center")
        top -= band_height + 0.25
    figure.text(0.1 / width, 1 - 0.1 / height, title or "feature maps of one image, layer by layer",
                fontsize=10, va="top")
    return _save(figure, path)


CURVES_SIZE = (9.0, 3.5)  # inches


def training_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike[str],
                    dpi: int = 100, title: str | None = None) -> Path:
    """Loss and accuracy per epoch, side by side, saved as a PNG.

    `history` is what ``examples/train_mnist.py``'s ``train()`` records (and keeps in its
    checkpoints): ``"loss"``, the mean training loss of each epoch, and ``"test_accuracy"``, the
    test accuracy after each epoch as a fraction in [0, 1], one entry per epoch. Optional:
    ``"step_loss"``, the loss of every training step (drawn under the epoch means, at fractional
    epochs, as a running mean over a twentieth of an epoch), and ``"train_accuracy"``
    (fractions, drawn beside the test accuracy).

    Size: 9 x 3.5 inches, times `dpi` pixels. Returns the path.
    """
    try:
        loss = np.asarray(history["loss"], dtype=np.float64)
        accuracy = np.asarray(history["test_accuracy"], dtype=np.float64)
    except KeyError as error:
        raise ValueError(f"training_curves(): history needs 'loss' and 'test_accuracy' (one value per "
                         f"epoch), missing {error}") from None
    if loss.ndim != 1 or loss.size == 0 or accuracy.shape != loss.shape:
        raise ValueError(f"training_curves(): 'loss' and 'test_accuracy' must be lists of one value per "
                         f"epoch, of the same length; got {loss.shape} and {accuracy.shape}")
    epochs = np.arange(1, loss.size + 1)
    figure = _new_figure(*CURVES_SIZE, dpi)
    loss_axes = figure.add_axes((0.07, 0.14, 0.39, 0.72))
    steps = np.asarray(history.get("step_loss", ()), dtype=np.float64)
    if steps.size:
        # Single steps are noise over an order of magnitude; a running mean over a twentieth
        # of an epoch shows the trend within epochs.
        per_epoch = steps.size / loss.size
        window = max(1, int(per_epoch // 20))
        smooth = np.convolve(steps, np.ones(window) / window, mode="valid")
        loss_axes.plot((np.arange(smooth.size) + window) / per_epoch, smooth, color="#9ecae1", linewidth=0.8,
                       label=f"steps (running mean of {window})" if window > 1 else "each step")
    loss_axes.plot(epochs, loss, "o-", color="#08519c", label="epoch mean")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss (cross-entropy)")
    if np.all(loss > 0) and np.all(steps > 0):
        loss_axes.set_yscale("log")  # late epochs' progress is invisible on a linear scale
    loss_axes.legend(fontsize=8)
    loss_axes.grid(alpha=0.3)
    accuracy_axes = figure.add_axes((0.58, 0.14, 0.39, 0.72))
    if "train_accuracy" in history:
        accuracy_axes.plot(epochs, 100 * np.asarray(history["train_accuracy"], dtype=np.float64), "s--",
                           color="#a1d99b", label="training")
    accuracy_axes.plot(epochs, 100 * accuracy, "o-", color="#006d2c",
                       label=f"test (last: {100 * accuracy[-1]:.2f} %)")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy (%)")
    accuracy_axes.legend(fontsize=8, loc="lower right")
    accuracy_axes.grid(alpha=0.3)
    for axes in (loss_axes, accuracy_axes):
        axes.set_xticks(epochs if epochs.size <= 20 else np.linspace(1, epochs[-1], 11).round())
    figure.text(0.07, 0.97, title or f"training: {loss.size} epoch{'s' * (loss.size > 1)}", fontsize=10,
                va="top")
    return _save(figure, path)
