"""Train Nielsen's convolutional network on MNIST (or Fashion-MNIST) with tinygrad_cnn.

    conv 5×5 ×20 → pool 2 → conv 5×5 ×40 → pool 2 → FC 100 → 10, softmax cross-entropy

with ReLU and L2 regularisation (weight decay) by default, or the article's sigmoid activations
(``--activation sigmoid``). Offline with a local copy of the data:

    python examples/train_mnist.py --data ../shared/data/mnist

Each epoch shows a progress bar (tqdm if installed, else a plain one-line bar), then the test
accuracy and the wall time; the run ends with ``final test accuracy: 99.xx %`` and saves the
model (with the optimizer and data-order state, so ``--resume`` continues the run exactly) as a
safetensors file, whose "model.*" tensors PyTorch loads too; ``--resume`` also reads the .npz
checkpoints of earlier versions.
With ``--plots DIR`` (needs matplotlib: ``pip install -e '.[plot]'``) it then draws the learned
filters, the feature maps of the first test digit and the training curves into DIR.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

try:
    import tinygrad_cnn  # noqa: F401  (installed, or run from a checkout)
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, data, io, nn, no_grad, optim, set_num_threads
from tinygrad_cnn.models import nielsen_cnn


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> optim.Optimizer:
    if name == "adam":
        return optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine annealing from `base` to 0 over `total` steps."""
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


@no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(Tensor(images[start:start + batch_size]))
        correct += int((logits.data.argmax(axis=1) == labels[start:start + batch_size]).sum())
    model.train(was_training)
    return correct / len(images)


class ProgressBar:
    """A one-line progress bar for terminals; a few plain lines for logs (no tqdm needed)."""

    def __init__(self, total: int, description: str, stream: Any = sys.stderr) -> None:
        self.total, self.description, self.stream = total, description, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.perf_counter()
        self.next_report = 0.25

    def update(self, done: int, loss: float, images_per_second: float) -> None:
        fraction = done / self.total
        width = 24
        text = (f"{self.description} [{'#' * int(fraction * width):<{width}}] {done}/{self.total} "
                f"loss {loss:.4f} {images_per_second:,.0f} img/s")
        if self.tty:
            self.stream.write("\r" + text)
            if done == self.total:
                self.stream.write("\n")
        elif fraction >= self.next_report or done == self.total:
            self.stream.write(text + "\n")
            self.next_report = min(1.0, math.floor(fraction * 4) / 4 + 0.25)
        self.stream.flush()


def progress(batches: Iterable[Any], total: int, description: str) -> Iterator[tuple[Any, Callable[..., None]]]:
    """Yield (batch, report) where report(loss, images_per_second) updates tqdm or our bar."""
    try:
        from tqdm import tqdm
    except ImportError:
        bar = ProgressBar(total, description)
        for done, batch in enumerate(batches, 1):
            yield batch, (lambda loss, speed, done=done: bar.update(done, loss, speed))
        return
    with tqdm(batches, total=total, desc=description, leave=True, dynamic_ncols=True) as bars:
        for batch in bars:
            yield batch, (lambda loss, speed: bars.set_postfix(loss=f"{loss:.4f}", img_s=f"{speed:,.0f}"))


def train_epoch(model: nn.Module, loader: data.DataLoader, optimizer: optim.Optimizer,
                test_set: tuple[np.ndarray, np.ndarray], history: dict[str, list[float]], line: str,
                log: Callable[[str], None], bar: str | None = None, augment: Callable[[np.ndarray], np.ndarray] | None = None,
                after_step: Callable[[], Any] | None = None) -> None:
    """One epoch of training: each batch of `loader` (through `augment`, if given) into the model,
    cross-entropy, backward, an optimizer step, then `after_step()` (a schedule's step). Then the
    epoch goes into `history` (mean loss, every step's loss, test accuracy on `test_set`, seconds:
    the format viz.training_curves draws) and ``<line>: train loss ..., test accuracy ..., s`` to
    `log`. `bar`: a progress bar's title (None: no bar)."""
    started = time.perf_counter()
    losses: list[float] = []
    images = 0
    batches = progress(loader, len(loader), bar) if bar is not None else (
        (batch, lambda loss, speed: None) for batch in loader)
    for (x, y), report in batches:
        if augment is not None:
            x = Tensor(augment(x.data))
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        losses.append(loss.item())
        images += len(y)
        report(float(np.mean(losses[-50:])), images / (time.perf_counter() - started))
    seconds = time.perf_counter() - started
    history["loss"].append(float(np.mean(losses)))
    history["step_loss"].extend(losses)
    history["test_accuracy"].append(accuracy(model, *test_set))
    history["seconds"].append(seconds)
    log(f"{line}: train loss {history['loss'][-1]:.4f}, test accuracy {100 * history['test_accuracy'][-1]:.2f} %, "
        f"{seconds:.1f} s")


def train(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the training the command line describes; return the history and final accuracy."""
    train_images, train_labels = data.mnist(args.data, "train", fashion=args.fashion)
    test_images, test_labels = data.mnist(args.data, "test", fashion=args.fashion)
    if args.limit:
        train_images, train_labels = train_images[:args.limit], train_labels[:args.limit]
    if args.test_limit:
        test_images, test_labels = test_images[:args.test_limit], test_labels[:args.test_limit]

    model = nielsen_cnn(args.activation, args.dropout, args.seed)
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    loader = data.DataLoader(train_images, train_labels, args.batch_size, shuffle=True, seed=args.seed,
                             drop_last=True)
    # Per epoch: mean training loss, test accuracy (a fraction), seconds; step_loss: every step's
    # loss. The format viz.training_curves draws; kept in every checkpoint.
    history: dict[str, list[float]] = {"loss": [], "test_accuracy": [], "seconds": [], "step_loss": []}
    first_epoch = 0
    if args.resume:
        checkpoint = io.load(args.resume)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        loader.load_state_dict(checkpoint["loader"])
        history = {"step_loss": [], **{k: list(map(float, v)) for k, v in checkpoint["history"].items()}}
        first_epoch = int(checkpoint["epoch"])
        log(f"resumed from {args.resume} after epoch {first_epoch}")

    dataset = "Fashion-MNIST" if args.fashion else "MNIST"
    log(f"{dataset}: {len(train_images)} training and {len(test_images)} test images; "
        f"{args.activation} network, {args.optimizer} lr {args.lr} (cosine), weight decay "
        f"{args.weight_decay}, dropout {args.dropout}, batch {args.batch_size}, seed {args.seed}")
    total_steps = args.epochs * len(loader)

    def anneal() -> None:  # the lr of the next step, from the steps taken (so a resumed run continues it)
        optimizer.lr = cosine_lr(args.lr, optimizer.step_count, total_steps)

    anneal()
    last_epoch = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(first_epoch, last_epoch):
        train_epoch(model, loader, optimizer, (test_images, test_labels), history, f"epoch {epoch + 1}", log,
                    bar=f"epoch {epoch + 1}/{args.epochs}", after_step=anneal)
        if args.save:
            io.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "loader": loader.state_dict(), "epoch": epoch + 1,
                     "history": {k: np.asarray(v) for k, v in history.items()}}, args.save)

    final = history["test_accuracy"][-1] if history["test_accuracy"] else accuracy(model, test_images, test_labels)
    log(f"trained {len(history['seconds'])} of {args.epochs} epochs in {sum(history['seconds']) / 60:.1f} min")
    if args.save:
        log(f"saved model, optimizer and data order to {args.save}")
    if args.plots:
        for path in plot(model, history, test_images[0], int(test_labels[0]), Path(args.plots)):
            log(f"wrote {path}")
    log(f"final test accuracy: {100 * final:.2f} %")
    return {"model": model, "history": history, "final_accuracy": final}


def plot(model: nn.Sequential, history: dict[str, list[float]], digit: np.ndarray, label: int,
         folder: Path) -> list[Path]:
    """The pictures of --plots: each Conv2d's filters, the feature maps of one digit, the curves."""
    from tinygrad_cnn import viz  # matplotlib is needed only here

    convs = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    paths = [viz.filters(conv, folder / f"filters_conv{i}.png", title=f"conv {i}: the {conv.out_channels} "
                         f"learned {conv.kernel_size[0]}×{conv.kernel_size[1]} kernels, weight "
                         f"{conv.weight.shape}") for i, conv in enumerate(convs, 1)]
    with no_grad():
        guess = int(model.eval()(Tensor(digit[None])).data.argmax())
    model.train()
    paths.append(viz.feature_maps(model, digit, folder / "feature_maps.png",
                                  title=f"feature maps of the first test digit (a {label}; the network says {guess})"))
    paths.append(viz.training_curves(history, folder / "training_curves.png"))
    return paths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="folder with the four IDX .gz files (default: download to ~/.cache/tinygrad_cnn)")
    parser.add_argument("--fashion", action="store_true", help="Fashion-MNIST instead of MNIST")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                        help="SGD with Nesterov momentum 0.9, or Adam")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate, annealed to 0 by a cosine (default 0.05 for sgd, 1e-3 for adam)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 regularisation")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout before the last layer")
    parser.add_argument("--activation", choices=("relu", "sigmoid"), default="relu",
                        help="relu, or the article's sigmoid network")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N images only (quick run)")
    parser.add_argument("--test-limit", type=int, default=0, help="test on the first N test images only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="mnist_cnn.safetensors",
                        help="checkpoint written after every epoch (.safetensors; a path ending in .npz: the old format)")
    parser.add_argument("--resume", default=None, help="continue from a checkpoint written by --save (or an old .npz)")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="at the end, draw the filters, feature maps and training curves into DIR (matplotlib)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop after this many epochs of the --epochs schedule (continue with --resume)")
    args = parser.parse_args(argv)
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 1e-3
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    require_matplotlib(parser, args)
    return args


def require_matplotlib(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--plots needs matplotlib: say so now, not after training."""
    if args.plots and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plots needs matplotlib: pip install -e '.[plot]'")


def run_or_exit(work: Callable[[argparse.Namespace], Any], args: argparse.Namespace, dataset: str = "MNIST") -> None:
    """work(args) on `--threads` threads (where given); a missing or damaged dataset file
    (no copy and no network) ends the program with a message that says what to pass."""
    if getattr(args, "threads", 0):
        set_num_threads(args.threads)
    try:
        work(args)
    except data.DatasetError as error:
        sys.exit(f"error: {error}\nWith a local copy of the four {dataset} files, pass its folder: --data DIR")


def main(argv: list[str] | None = None) -> None:
    run_or_exit(train, parse_args(argv))


if __name__ == "__main__":
    main()
