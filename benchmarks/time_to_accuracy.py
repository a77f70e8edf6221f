"""Wall time to 99 % MNIST test accuracy: tinygrad_cnn against PyTorch on the same schedule.

    python benchmarks/time_to_accuracy.py             # full MNIST, 6-epoch schedule, target 99 %
    python benchmarks/time_to_accuracy.py --quick     # CI: 2,000 images, 3 epochs, target 90 %

tinygrad_cnn runs examples/train_mnist.py itself (its defaults: Nielsen's ReLU network, SGD with
Nesterov momentum 0.9, peak learning rate 0.05 annealed by a cosine, L2 5e-4, batch 64); PyTorch
runs the same network from the same initial weights, on the same batches in the same order (the
same seeded DataLoader), with the same schedule. Test accuracy is measured after every epoch
(not timed); we report the training time until the first epoch at or above the target.
"""
from __future__ import annotations

import argparse
import sys

from common import add_malloc_option, apply_malloc, copy_weights, pin_threads, torch_nielsen_cnn  # noqa: E402

THREADS = pin_threads()

import importlib.util  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
try:
    import tinygrad_cnn  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(ROOT))

from tinygrad_cnn import data, set_num_threads  # noqa: E402
from tinygrad_cnn.models import nielsen_cnn  # noqa: E402

set_num_threads(THREADS)  # our kernels' threads, as torch.set_num_threads below

LR, MOMENTUM, WEIGHT_DECAY, BATCH = 0.05, 0.9, 5e-4, 64


def cosine(step: int, total: int) -> float:
    return LR * 0.5 * (1 + np.cos(np.pi * min(step, total) / total))


def train_ours(args: argparse.Namespace) -> list[tuple[float, float]]:
    """examples/train_mnist.py with this run's data, schedule length and seed."""
    spec = importlib.util.spec_from_file_location("train_mnist", ROOT / "examples" / "train_mnist.py")
    train_mnist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_mnist)
    options = ["--data", args.data, "--epochs", str(args.epochs), "--seed", str(args.seed), "--save", "",
               "--limit", str(args.limit), "--test-limit", str(args.test_limit)]
    history = train_mnist.train(train_mnist.parse_args(options), log=lambda line: None)["history"]
    return list(zip(np.cumsum(history["seconds"]).tolist(), history["test_accuracy"]))


def train_torch(train: tuple, test: tuple, epochs: int, seed: int) -> list[tuple[float, float]] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    model = torch_nielsen_cnn("relu")
    copy_weights(nielsen_cnn("relu", seed=seed), model)  # the same initial weights
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY)
    loader = data.DataLoader(*train, batch_size=BATCH, shuffle=True, seed=seed, drop_last=True)
    total, step, elapsed, history = epochs * len(loader), 0, 0.0, []
    test_x = torch.from_numpy(test[0])
    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in loader:
            for group in opt.param_groups:
                group["lr"] = cosine(step, total)
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x.data)), torch.from_numpy(y.data))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        elapsed += time.perf_counter() - started
        with torch.no_grad():
            predictions = torch.cat([model(test_x[i:i + 1000]).argmax(1) for i in range(0, len(test_x), 1000)])
        history.append((elapsed, float((predictions.numpy() == test[1]).mean())))
    return history


def report(name: str, history: list[tuple[float, float]], target: float) -> dict[str, Any]:
    reached = next((i for i, (_, accuracy) in enumerate(history) if accuracy >= target), None)
    return {"framework": name, "epochs_to_target": None if reached is None else reached + 1,
            "seconds_to_target": None if reached is None else history[reached][0],
            "final_accuracy": history[-1][1], "seconds_total": history[-1][0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=6, help="length of the cosine schedule")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=THREADS, help="BLAS and PyTorch threads")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 3 epochs, target 90 %%")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    apply_malloc(args.malloc)
    if args.quick:
        args.limit, args.test_limit, args.epochs, args.target = 2000, 1000, 3, 0.9
    train, test = data.mnist(args.data, "train"), data.mnist(args.data, "test")
    if args.limit:
        train = (train[0][:args.limit], train[1][:args.limit])
    if args.test_limit:
        test = (test[0][:args.test_limit], test[1][:args.test_limit])
    rows = [report("tinygrad_cnn", train_ours(args), args.target)]
    theirs = train_torch(train, test, args.epochs, args.seed)
    if theirs is not None:
        rows.append(report("pytorch", theirs, args.target))
    print(f"{len(train[0])} training images, {args.epochs}-epoch schedule, {THREADS} threads, "
          f"target {100 * args.target:.1f} %\n")
    print("| framework | epochs to target | training time to target | final accuracy | whole schedule |")
    print("|---|---|---|---|---|")
    for row in rows:
        to_target = ("not reached" if row["epochs_to_target"] is None
                     else f"{row['epochs_to_target']} | {row['seconds_to_target'] / 60:.1f} min")
        if row["epochs_to_target"] is None:
            to_target = "not reached | not reached"
        print(f"| {row['framework']} | {to_target} | {100 * row['final_accuracy']:.2f} % | "
              f"{row['seconds_total'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
