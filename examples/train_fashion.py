"""Train a BatchNorm convnet on Fashion-MNIST with augmentation, on a CPU in minutes.

    conv 3×3 ×32 → max-pool 2 → BN → ReLU         28×28 → 14×14
    conv 3×3 ×64 → max-pool 2 → BN → ReLU         → 7×7
    conv 3×3 ×128 → max-pool 2 → BN → ReLU        → 3×3
    FC 1152→256 → ReLU → dropout (--dropout, default none) → FC 256→10, softmax cross-entropy

Padded 3×3 convolutions keep each stage's map whole until its pooling, and the widths double as
the maps shrink, so each stage costs about the same. Each BatchNorm comes after its pooling, on a
quarter of the values (max-pooling commutes with the increasing per-channel maps that BatchNorm,
with a positive scale, and ReLU apply). BatchNorm lets the 1cycle schedule (SGD with Nesterov
momentum, warm-up to lr 0.1 over the first 20 % of the steps, then a cosine to ~0, weight decay
5e-4) run at a high learning rate; 24 epochs of it pass 93.5 % within 15 minutes of training
on two cores (20 sat at the target: docs/results.md has the runs, with the variants tried). Training images are augmented a batch at a time
(tinygrad_cnn.transforms): a random 28×28 crop of the image padded by 2 pixels, a horizontal flip
with probability 1/2 (clothes are left-right symmetric, digits are not), then the dataset's
normalisation. Offline with a local copy of the data:

    python examples/train_fashion.py --data ../shared/data/fashion-mnist

Each epoch prints its training loss, test accuracy and time; the run ends with ``final test
accuracy: XX.XX %`` and saves the model, with its history, to ``--save`` (safetensors). Seeded
(``--seed``): the same command repeats exactly. ``--quick`` trains one epoch on 2,000 images and
tests on 500, a check that everything runs. ``--plots DIR`` draws the training curves
(matplotlib).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_mnist beside this file
from train_mnist import require_matplotlib, run_or_exit, train_epoch  # noqa: E402  (also puts a checkout on the path)

from tinygrad_cnn import data, io, nn, optim, transforms  # noqa: E402
from tinygrad_cnn.optim import lr_scheduler  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # of the Fashion-MNIST training pixels


def fashion_cnn(seed: int = 0, widths: tuple[int, int, int] = (32, 64, 128), hidden: int = 256,
                dropout: float = 0.0) -> nn.Sequential:
    """The network above; `seed` fixes the initial weights and the dropout masks."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    channels = 1
    for width in widths:  # 28 → 14 → 7 → 3
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False, rng=rng), nn.MaxPool2d(2),
                   nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(),
                         nn.Linear(channels * 3 * 3, hidden, rng=rng), nn.ReLU(), nn.Dropout(dropout, rng=rng),
                         nn.Linear(hidden, 10, init="glorot", rng=rng))


def train(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the training the command line describes; return the model, history and final accuracy."""
    train_images, train_labels = data.mnist(args.data, "train", fashion=True)
    test_images, test_labels = data.mnist(args.data, "test", fashion=True)
    if args.quick:
        train_images, train_labels = train_images[:2000], train_labels[:2000]
        test_images, test_labels = test_images[:500], test_labels[:500]
    normalize = transforms.Normalize(MEAN, STD)
    rng = np.random.default_rng([args.seed, 1])
    augment = transforms.Compose([transforms.RandomCrop(28, padding=2, generator=rng),
                                  transforms.RandomHorizontalFlip(generator=rng), normalize])
    test_images = normalize(test_images)

    model = fashion_cnn(args.seed, dropout=args.dropout)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    loader = data.DataLoader(train_images, train_labels, args.batch_size, shuffle=True, seed=args.seed,
                             drop_last=True)
    schedule = lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(loader),
                                       pct_start=0.2)
    log(f"Fashion-MNIST: {len(train_images)} training and {len(test_images)} test images; BatchNorm convnet, "
        f"crop+flip, dropout {args.dropout}, SGD Nesterov 1cycle lr {args.lr}, weight decay {args.weight_decay}, batch "
        f"{args.batch_size}, {args.epochs} epochs, seed {args.seed}")
    history: dict[str, list[float]] = {"loss": [], "test_accuracy": [], "seconds": [], "step_loss": []}
    for epoch in range(args.epochs):
        train_epoch(model, loader, optimizer, (test_images, test_labels), history, f"epoch {epoch + 1}", log,
                    bar=f"epoch {epoch + 1}/{args.epochs}", augment=augment, after_step=schedule.step)
    final = history["test_accuracy"][-1]
    log(f"trained {args.epochs} epochs in {sum(history['seconds']) / 60:.1f} min")
    if args.save:
        io.save({"model": model.state_dict(), "history": {k: np.asarray(v) for k, v in history.items()}}, args.save)
        log(f"saved the model to {args.save}")
    if args.plots:
        from tinygrad_cnn import viz  # matplotlib is needed only here

        log(f"wrote {viz.training_curves(history, Path(args.plots) / 'fashion_training_curves.png')}")
    log(f"final test accuracy: {100 * final:.2f} %")
    return {"model": model, "history": history, "final_accuracy": final}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="folder with the four Fashion-MNIST IDX .gz files "
                        "(default: download to ~/.cache/tinygrad_cnn)")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the 1cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout before the last layer (augmentation and weight decay regularise already)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one epoch on 2,000 training and 500 test images")
    parser.add_argument("--save", default="fashion_cnn.safetensors", help="where to write the model (safetensors)")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="draw the training curves into DIR/fashion_training_curves.png (matplotlib)")
    parser.add_argument("--threads", type=int, default=0, help="threads for the ops (0: the library's default)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    require_matplotlib(parser, args)
    return args


def main(argv: list[str] | None = None) -> None:
    run_or_exit(train, parse_args(argv), "Fashion-MNIST")


if __name__ == "__main__":
    main()
