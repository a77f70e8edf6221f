"""Training steps of well-known CNNs: tinygrad_cnn against PyTorch, workload by workload.

    python benchmarks/suite.py                      # full: 30 timed steps per case, blocks of 5
    python benchmarks/suite.py --quick              # CI: each workload at batch 64, a few steps
    python benchmarks/suite.py --workloads vgg resnet --batch-sizes 64 --json out.json

Workloads (networks in suite_nets.py): Nielsen's MNIST net (ReLU and sigmoid), LeNet-5, a
VGG-style net with BatchNorm, an all-convolutional net (stride-2 convolutions), ResNet's stem
and a basic block, a 1×1 / depthwise 3×3 / 1×1 bottleneck, overlapping max pooling, a WGAN-GP
gradient penalty (λ = 1; double backward) on the MNIST net, and inference at batch 1 (MNIST, VGG).

Each network is built once with our layers and once with PyTorch's, and PyTorch's gets our
initial parameters and buffers through its state_dict. At setup the two forwards must agree
to 1e-4, and for training the losses and parameter changes of two steps must agree too (see
check_agreement), or the run stops: the frameworks are compared on the same computation. A training step is forward, cross-entropy
on seeded random inputs and labels, backward and an SGD update (lr 0.01, momentum 0.9),
float32, with the same thread count for both. Timing is as in train_step.py: the frameworks
alternate in blocks of `--block` timed steps, each after `--warmup` untimed ones, because both
thread pools busy-wait after their own work and would otherwise take the other's cores.

FLOPs: 2 per multiply-add of the convolutions and linear layers (shapes from a dry forward;
pooling, normalization and activations not counted). A training step counts the forward's
multiply-adds 3 times (forward, ∂C/∂x, ∂C/∂w), as train_step.py; the gradient-penalty step 6
times (forward; ∂out/∂x for the penalty; then the backward of both graphs, two products per
layer each); inference once.
"""
from __future__ import annotations

import argparse
import sys

from common import add_timing_options, pin_threads  # noqa: E402

THREADS = pin_threads()

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

try:
    import tinygrad_cnn  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, grad, no_grad, optim, set_num_threads  # noqa: E402
from suite_nets import WORKLOADS, Workload, forward_macs  # noqa: E402
from train_step import gemm_gflops, summary  # noqa: E402

set_num_threads(THREADS)  # our kernels' threads, as torch.set_num_threads below

# λ = 1, not WGAN-GP's 10: with 10, this lr and momentum, the He-initialised net on random
# inputs diverges to NaN within a few steps, and a diverged run would time NaN arithmetic.
LR, MOMENTUM, PENALTY_WEIGHT = 0.01, 0.9, 1.0
FLOP_FACTOR = {"train": 3, "penalty": 6, "infer": 1}
Step = Callable[[], float]


def load_torch() -> Any:
    """torch with our thread count, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    return torch


def ours(workload: Workload, model: Any, x: np.ndarray, y: np.ndarray) -> Step:
    if workload.kind == "infer":
        model.eval()

        def infer() -> float:
            with no_grad():
                return float(model(Tensor(x)).data[0, 0])

        return infer
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> float:
        if workload.kind == "penalty":
            inputs = Tensor(x, requires_grad=True)
            out = model(inputs)
            (g,) = grad(out.sum(), [inputs], create_graph=True)
            norm = (g * g).flatten(1).sum(dim=1) ** 0.5
            loss = F.cross_entropy(out, y) + PENALTY_WEIGHT * ((norm - 1) ** 2).mean()
        else:
            loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def theirs(torch: Any, workload: Workload, model: Any, x: np.ndarray, y: np.ndarray) -> Step:
    """PyTorch's step, written as ours line for line."""
    labels = torch.from_numpy(y)
    if workload.kind == "infer":
        model.eval()

        def infer() -> float:
            with torch.no_grad():
                return float(model(torch.from_numpy(x))[0, 0])

        return infer
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> float:
        if workload.kind == "penalty":
            inputs = torch.from_numpy(x).requires_grad_()
            out = model(inputs)
            (g,) = torch.autograd.grad(out.sum(), inputs, create_graph=True)
            norm = (g * g).flatten(1).sum(dim=1) ** 0.5
            loss = torch.nn.functional.cross_entropy(out, labels) + PENALTY_WEIGHT * ((norm - 1) ** 2).mean()
        else:
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def copy_state(torch: Any, ours_model: Any, torch_model: Any) -> None:
    """Our parameters and buffers into the PyTorch twin (the keys match; strict loading)."""
    torch_model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours_model.state_dict().items()})


def check_agreement(torch: Any, workload: Workload, models: tuple[Any, Any], steps: tuple[Step, Step],
                    x: np.ndarray) -> None:
    """Stop the run unless both frameworks compute the same thing: forward outputs within 1e-4
    (relative to the largest output, at least 1); for training, the losses of two steps within
    1e-3 relative, and each parameter's change over those steps (gradients, momentum, update)
    within 1e-2 of its own largest change plus the largest change of any parameter (a scale
    shared by all, because some gradients are float noise around 0, e.g. a conv's bias before
    BatchNorm). The forward runs in each workload's mode, so BatchNorm's running statistics
    move the same way in both."""
    ours_model, torch_model = models
    with no_grad():
        a = ours_model(Tensor(x)).data
    with torch.no_grad():
        b = torch_model(torch.from_numpy(x)).numpy()
    if a.shape != b.shape or np.abs(a - b).max() > 1e-4 * max(1.0, float(np.abs(b).max())):
        difference = np.abs(a - b).max() if a.shape == b.shape else f"shapes {a.shape} and {b.shape}"
        raise SystemExit(f"{workload.name}: the forwards of tinygrad_cnn and PyTorch disagree "
                         f"(largest difference {difference}); not timing different computations")
    if workload.kind == "infer":
        return
    before = {name: p.data.copy() for name, p in ours_model.named_parameters()}
    for i in range(2):
        loss_a, loss_b = steps[0](), steps[1]()
        if not abs(loss_a - loss_b) <= 1e-3 * max(1.0, abs(loss_b)):
            raise SystemExit(f"{workload.name}: step {i + 1}'s loss is {loss_a} in tinygrad_cnn and "
                             f"{loss_b} in PyTorch; not timing different computations")
    theirs_now = dict(torch_model.named_parameters())
    changes = {name: (p.data - before[name], theirs_now[name].detach().numpy() - before[name])
               for name, p in ours_model.named_parameters()}
    shared = max(float(np.abs(change_b).max()) for _, change_b in changes.values())
    for name, (change_a, change_b) in changes.items():
        if np.abs(change_a - change_b).max() > 1e-2 * (float(np.abs(change_b).max()) + shared):
            raise SystemExit(f"{workload.name}: parameter {name} moved differently in two steps of tinygrad_cnn "
                             f"and PyTorch (largest difference {np.abs(change_a - change_b).max()}); "
                             "not timing different computations")


def measure(steps: dict[str, Step], count: int, warmup: int, block: int) -> dict[str, list[float]]:
    """Time `count` steps of each framework in alternating blocks of `block` timed steps, each
    block after `warmup` untimed ones (so one framework's spinning threads have settled). Stops
    the run if a framework's last loss (or output) is not finite: its timings would be of
    NaN arithmetic, not of training."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    last: dict[str, float] = {}
    while any(len(t) < count for t in times.values()):
        for name, step in steps.items():
            for _ in range(warmup):
                step()
            for _ in range(min(block, count - len(times[name]))):
                started = time.perf_counter()
                last[name] = step()
                times[name].append(time.perf_counter() - started)
    for name, value in last.items():
        if not np.isfinite(value):
            raise SystemExit(f"{name} diverged (last loss or output {value}); its timings would mean nothing")
    return times


def run_case(torch: Any, workload: Workload, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(batch)
    x = rng.random((batch, *workload.input_shape), dtype=np.float32)  # in [0, 1), as pixels
    y = rng.integers(0, 10, batch).astype(np.int64)
    build_ours, build_theirs = workload.build
    ours_model = build_ours()
    flops = 2 * FLOP_FACTOR[workload.kind] * forward_macs(ours_model, workload.input_shape) * batch
    steps = {"tinygrad_cnn": ours(workload, ours_model, x, y)}
    if torch is not None:
        torch_model = build_theirs()
        copy_state(torch, ours_model, torch_model)
        steps["pytorch"] = theirs(torch, workload, torch_model, x, y)
        check_agreement(torch, workload, (ours_model, torch_model), (steps["tinygrad_cnn"], steps["pytorch"]), x)
    case: dict[str, Any] = {"workload": workload.name, "kind": workload.kind, "batch": batch,
                            "gflop_per_step": flops / 1e9}
    for name, values in measure(steps, args.steps, args.warmup, args.block).items():
        case[name] = summary(values)
        case[name]["gflops"] = flops / (case[name]["median_ms"] / 1e3) / 1e9
    if "pytorch" in case:
        case["ratio"] = case["tinygrad_cnn"]["median_ms"] / case["pytorch"]["median_ms"]
    return case


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch = load_torch()
    results: dict[str, Any] = {"threads": THREADS, "gemm_gflops": gemm_gflops(), "cases": [],
                               "flops": "2 per multiply-add of conv and linear layers; forward ×3 for a "
                                        "training step, ×6 with the gradient penalty, ×1 for inference"}
    for name in args.workloads:
        workload = WORKLOADS[name]
        batches = args.batch_sizes if workload.kind == "train" and args.batch_sizes else workload.batches
        for batch in batches:
            results["cases"].append(run_case(torch, workload, batch, args))
            print(f"done: {name} at batch {batch}", file=sys.stderr, flush=True)
    return results


def milliseconds(figures: dict[str, float]) -> str:
    digits = 2 if figures["median_ms"] < 10 else 1
    return f"{figures['median_ms']:.{digits}f} ({figures['q1_ms']:.{digits}f}–{figures['q3_ms']:.{digits}f})"


def table(results: dict[str, Any]) -> str:
    lines = [f"threads: {results['threads']}, this machine's float32 GEMM: {results['gemm_gflops']:.0f} GFLOP/s",
             "",
             "| workload | batch | ours ms (IQR) | PyTorch ms (IQR) | × PyTorch | ours GFLOP/s | PyTorch GFLOP/s |",
             "|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        ours_, theirs_ = case["tinygrad_cnn"], case.get("pytorch")
        torch_cells = ((milliseconds(theirs_), f"{case['ratio']:.2f}", f"{theirs_['gflops']:.1f}") if theirs_
                       else ("n/a", "n/a", "n/a"))
        lines.append(f"| {case['workload']} | {case['batch']} | {milliseconds(ours_)} | {torch_cells[0]} | "
                     f"{torch_cells[1]} | {ours_['gflops']:.1f} | {torch_cells[2]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_options(parser, THREADS, steps=30, warmup=2, block=5)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--batch-sizes", type=int, nargs="+",
                        help="batch sizes of the training workloads (default 64 256); the gradient "
                             "penalty stays at 64 and inference at 1")
    parser.add_argument("--quick", action="store_true", help="batch 64 only, 2 timed steps in one block")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.block, args.warmup, args.batch_sizes = 2, 2, 1, [64]
    results = run(args)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
