"""One training step of Nielsen's MNIST network: tinygrad_cnn against PyTorch, side by side.

    python benchmarks/train_step.py                 # full: 60 timed steps per case, blocks of 10
    python benchmarks/train_step.py --quick         # CI: a few steps, to keep the script alive
    python benchmarks/train_step.py --json out.json

A step is forward + backward + SGD update, float32, with the same thread count for both (set
before numpy and torch start their thread pools). The two frameworks are timed alternately in
one process, in blocks: each block runs a few untimed steps, then `--block` timed ones. (Single
steps alternated let each framework's thread pool, still spinning after its own work -- OpenBLAS
and OpenMP both busy-wait -- take the other's cores: PyTorch measured twice as slow that way.)
We report the median, the interquartile range, the ratio to PyTorch, the achieved GFLOP/s, and
this machine's float32 GEMM GFLOP/s measured in the same run. The article's per-feature-map
scipy code is timed on a few samples as the historical baseline.
"""
from __future__ import annotations

import argparse
import sys


from common import (add_malloc_option, add_timing_options, apply_malloc, copy_weights, pin_threads,  # noqa: E402
                    torch_nielsen_cnn)

THREADS = pin_threads()

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402

try:
    import tinygrad_cnn  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinygrad_cnn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, optim, set_num_threads  # noqa: E402
from tinygrad_cnn.models import nielsen_cnn  # noqa: E402

set_num_threads(THREADS)  # our kernels' threads, as torch.set_num_threads below

LR = 0.01


def step_flops(batch: int) -> float:
    """FLOPs of one step: 2 per multiply-add, the forward's MACs three times (forward, ∂C/∂w,
    ∂C/∂x), as the issue counts them (0.63 GFLOP at batch 64)."""
    macs = 24 * 24 * 20 * 25 + 8 * 8 * 40 * 20 * 25 + 640 * 100 + 100 * 10
    return 2 * 3 * macs * batch


def gemm_gflops(size: int = 1024, repeats: int = 7) -> float:
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / np.median(times) / 1e9


def ours(activation: str) -> Callable[[np.ndarray, np.ndarray], float]:
    model = nielsen_cnn(activation, seed=0)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    def step(x: np.ndarray, y: np.ndarray) -> float:
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def theirs(activation: str) -> Callable[[np.ndarray, np.ndarray], float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    model = torch_nielsen_cnn(activation)
    copy_weights(nielsen_cnn(activation, seed=0), model)  # the same starting point as ours
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    def step(x: np.ndarray, y: np.ndarray) -> float:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def article_step(activation: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The article's way: one scipy.signal call per (sample, feature map, input map), max pooling
    by a loop over windows, hand-written backward (as FeatureMap / MaxPoolingMap)."""
    rng = np.random.default_rng(0)
    k1, k2 = rng.standard_normal((20, 1, 5, 5)) * 0.2, rng.standard_normal((40, 20, 5, 5)) * 0.06
    w3, w4 = rng.standard_normal((100, 640)) * 0.05, rng.standard_normal((10, 100)) * 0.1
    act = (lambda z: np.maximum(z, 0)) if activation == "relu" else (lambda z: 1 / (1 + np.exp(-z)))
    act_prime = ((lambda z: (z > 0) * 1.0) if activation == "relu"
                 else (lambda z: act(z) * (1 - act(z))))

    def conv(a, k):  # a (C, H, W), k (F, C, kh, kw)
        return np.array([sum(scipy.signal.correlate2d(a[c], k[f, c], mode="valid") for c in range(k.shape[1]))
                         for f in range(k.shape[0])])

    def pool(a):  # the article's MaxPoolingMap loop (stride 2 here)
        out = np.zeros((a.shape[0], a.shape[1] // 2, a.shape[2] // 2))
        where = np.zeros(out.shape + (2,), dtype=int)
        for m in range(a.shape[0]):
            for r in range(out.shape[1]):
                for c in range(out.shape[2]):
                    window = a[m, 2 * r:2 * r + 2, 2 * c:2 * c + 2]
                    i, j = np.unravel_index(window.argmax(), window.shape)
                    out[m, r, c], where[m, r, c] = window[i, j], (2 * r + i, 2 * c + j)
        return out, where

    def unpool(grad, where, shape):
        out = np.zeros(shape)
        for m in range(grad.shape[0]):
            for r in range(grad.shape[1]):
                for c in range(grad.shape[2]):
                    out[m][tuple(where[m, r, c])] += grad[m, r, c]
        return out

    def step(x: np.ndarray, y: np.ndarray) -> float:
        grads = [np.zeros_like(p) for p in (k1, k2, w3, w4)]
        for image, label in zip(x.astype(np.float64), y):
            z1 = conv(image, k1)
            p1, where1 = pool(act(z1))
            z2 = conv(p1, k2)
            p2, where2 = pool(act(z2))
            z3 = w3 @ p2.reshape(-1)
            z4 = w4 @ act(z3)
            probs = np.exp(z4 - z4.max())
            probs /= probs.sum()
            d4 = probs - np.eye(10)[label]
            grads[3] += np.outer(d4, act(z3))
            d3 = (w4.T @ d4) * act_prime(z3)
            grads[2] += np.outer(d3, p2.reshape(-1))
            d2 = unpool((w3.T @ d3).reshape(p2.shape), where2, z2.shape) * act_prime(z2)
            grads[1] += np.array([[scipy.signal.correlate2d(p1[c], d2[f], mode="valid") for c in range(20)]
                                  for f in range(40)])
            dp1 = np.array([sum(scipy.signal.convolve2d(d2[f], k2[f, c], mode="full") for f in range(40))
                            for c in range(20)])
            d1 = unpool(dp1, where1, z1.shape) * act_prime(z1)
            grads[0] += np.array([[scipy.signal.correlate2d(image[0], d1[f], mode="valid")] for f in range(20)])
        for p, g in zip((k1, k2, w3, w4), grads):
            p -= LR * g / len(x)
        return float(-np.log(probs[label]))

    return step


def measure(steps: dict[str, Callable[[np.ndarray, np.ndarray], float]], batch: int, count: int,
            warmup: int, block: int) -> dict[str, list[float]]:
    """Time `count` steps of each framework in alternating blocks of `block` timed steps, each
    block after `warmup` untimed ones (so one framework's spinning threads have settled)."""
    rng = np.random.default_rng(batch)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    times: dict[str, list[float]] = {name: [] for name in steps}
    while any(len(t) < count for t in times.values()):
        for name, step in steps.items():
            for _ in range(warmup):
                step(x, y)
            for _ in range(min(block, count - len(times[name]))):
                started = time.perf_counter()
                step(x, y)
                times[name].append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(np.asarray(times) * 1e3, [25, 50, 75])
    return {"median_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3), "steps": len(times)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"threads": THREADS, "gemm_gflops": gemm_gflops(), "cases": []}
    for activation in args.activations:
        for batch in args.batch_sizes:
            steps = {"tinygrad_cnn": ours(activation)}
            torch_step = theirs(activation)
            if torch_step is not None:
                steps["pytorch"] = torch_step
            times = measure(steps, batch, args.steps, args.warmup, args.block)
            case: dict[str, Any] = {"activation": activation, "batch": batch,
                                    "gflop_per_step": step_flops(batch) / 1e9}
            for name, values in times.items():
                case[name] = summary(values)
                case[name]["gflops"] = step_flops(batch) / (case[name]["median_ms"] / 1e3) / 1e9
            if "pytorch" in case:
                case["ratio"] = case["tinygrad_cnn"]["median_ms"] / case["pytorch"]["median_ms"]
            results["cases"].append(case)
    if args.article_samples:
        x = np.random.default_rng(1).random((args.article_samples, 1, 28, 28), dtype=np.float32)
        y = np.arange(args.article_samples) % 10
        step = article_step("relu")
        started = time.perf_counter()
        step(x, y)
        per_sample = (time.perf_counter() - started) / args.article_samples
        results["article_scipy_loops"] = {"samples": args.article_samples, "ms_per_sample": per_sample * 1e3,
                                          "ms_per_step_batch_64": per_sample * 64e3}
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"threads: {results['threads']}, this machine's float32 GEMM: {results['gemm_gflops']:.0f} GFLOP/s",
             "",
             "| network | batch | tinygrad_cnn ms/step (IQR) | PyTorch ms/step (IQR) | × PyTorch | tinygrad_cnn GFLOP/s | PyTorch GFLOP/s |",
             "|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        ours_, theirs_ = case["tinygrad_cnn"], case.get("pytorch")
        torch_cells = (f"{theirs_['median_ms']:.1f} ({theirs_['q1_ms']:.1f}–{theirs_['q3_ms']:.1f})",
                       f"{case['ratio']:.2f}", f"{theirs_['gflops']:.1f}") if theirs_ else ("n/a", "n/a", "n/a")
        lines.append(f"| {case['activation']} | {case['batch']} | {ours_['median_ms']:.1f} "
                     f"({ours_['q1_ms']:.1f}–{ours_['q3_ms']:.1f}) | {torch_cells[0]} | {torch_cells[1]} | "
                     f"{ours_['gflops']:.1f} | {torch_cells[2]} |")
    if "article_scipy_loops" in results:
        article = results["article_scipy_loops"]
        lines += ["", f"the article's per-feature-map scipy loops: {article['ms_per_sample']:.0f} ms per sample, "
                      f"≈ {article['ms_per_step_batch_64']:,.0f} ms per batch-64 step "
                      f"(timed on {article['samples']} samples)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_options(parser, THREADS, steps=60, warmup=3, block=10)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--activations", nargs="+", choices=("relu", "sigmoid"), default=["relu", "sigmoid"])
    parser.add_argument("--article-samples", type=int, default=4, help="samples for the article baseline (0: skip)")
    parser.add_argument("--quick", action="store_true", help="3 timed steps, batch 64 only, 1 article sample")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    apply_malloc(args.malloc)
    if args.quick:
        args.steps, args.warmup, args.block, args.batch_sizes, args.article_samples = 3, 1, 3, [64], 1
    results = run(args)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
