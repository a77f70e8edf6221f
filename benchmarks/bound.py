"""What bounds each training step of the suite: the step as it is, and the step with perfect products.

    python benchmarks/bound.py                          # every training workload, batch 64 and 256
    python benchmarks/bound.py --workloads vgg --batch-sizes 64 --json out.json
    python benchmarks/bound.py --quick                  # CI: one workload, a few steps

A training step spends its time in matrix products (the dense convolutions and their two
gradients, gathers and scatters included, the linear layers, other matmuls) and in everything
else (batch normalization, activations, pooling, depthwise convolutions, the loss, the
optimizer, Python). For each training workload of suite.py this measures, in one run:

- PyTorch's step and ours, in alternating blocks (as suite.py);
- the share of our step spent inside the backend's product functions (conv2d, conv2d_grad_k
  and conv2d_grad_x with more than one input channel per group, linear, matmul), over a few
  more steps, and so "products + rest" (their sum is our step);
- "products floor": each product's multiply-adds at the best rate this machine's BLAS reaches
  for its shape (one thread, its longest axis cut into blocks of 256 to 16,384), shared
  perfectly among the threads, with nothing gathered or scattered around it.

"perfect products" is our step with its product functions replaced by that floor: where it is
above a target, the rest of our step alone misses it. Where the products floor alone is near
PyTorch's whole step, no convolution built on this BLAS's products can come near it. A
depthwise convolution (one input channel per group) is a tap loop, not a product: it counts
in the rest.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from common import add_timing_options, pin_threads  # noqa: E402

THREADS = pin_threads()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import suite  # noqa: E402  (puts a checkout on the path where tinygrad_cnn is not installed)
from tinygrad_cnn import backend  # noqa: E402
from suite_nets import WORKLOADS  # noqa: E402

PRODUCTS = ("conv2d", "conv2d_grad_k", "conv2d_grad_x", "linear", "matmul")
BLOCKS = (256, 512, 1024, 2048, 4096, 8192, 16384)


def gemm_shapes(function: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> list[tuple[int, int, int]]:
    """The (M, K, N) products, as many as they are, that one backend call amounts to: a
    convolution's are per group, over every output position (none for a depthwise convolution,
    one input channel per group, which is no product)."""
    if function == "matmul":
        a, b = np.asarray(args[0]), np.asarray(args[1])
        if a.ndim < 2 or b.ndim < 2:
            return []
        batch = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), dtype=np.int64))
        return [(a.shape[-2], a.shape[-1], b.shape[-1])] * batch
    if function == "linear":
        x, w = args[0], args[1]
        return [(int(np.prod(x.shape[:-1])), w.shape[1], w.shape[0])]
    groups = kwargs.get("groups", args[5] if len(args) > 5 else 1)
    x_channels = args[2][1] if function == "conv2d_grad_x" else args[0].shape[1]
    if groups > 1 and x_channels == groups:
        return []
    y = out if function == "conv2d" else args[1] if function == "conv2d_grad_k" else args[0]
    kernel = args[2] if function == "conv2d_grad_k" else args[1].shape[2:]
    taps, maps = x_channels // groups * kernel[0] * kernel[1], y.shape[1] // groups
    positions = y.shape[0] * y.shape[2] * y.shape[3]
    shape = {"conv2d": (maps, taps, positions),          # k @ windows
             "conv2d_grad_k": (maps, positions, taps),   # dy @ windowsᵀ
             "conv2d_grad_x": (taps, maps, positions)}[function]  # kᵀ @ dy, then col2im
    return [shape] * groups


@functools.lru_cache(maxsize=None)
def best_rate(m: int, k: int, n: int) -> float:
    """FLOP/s of one BLAS thread on an (M, K) @ (K, N) product at the best block of its longest
    axis (the whole product where it is small)."""
    rng = np.random.default_rng(0)
    longest = max(range(3), key=lambda axis: (m, k, n)[axis])
    best = 0.0
    for block in [b for b in BLOCKS if b < (m, k, n)[longest]] or [(m, k, n)[longest]]:
        shape = [m, k, n]
        shape[longest] = block
        a = rng.random((shape[0], shape[1]), dtype=np.float32)
        b = rng.random((shape[1], shape[2]), dtype=np.float32)
        with threadpool_limits(1, user_api="blas"):
            a @ b
            times = []
            for _ in range(5):
                started = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - started)
        best = max(best, 2.0 * shape[0] * shape[1] * shape[2] / max(float(np.median(times)), 1e-9))
    return best


class Recorder:
    """Wraps the backend's product functions: their time and the products each call made."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.products: list[tuple[int, int, int]] = []
        self.depth = 0
        self.saved: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> Recorder:
        for function in PRODUCTS:
            original = self.saved[function] = getattr(backend, function)
            setattr(backend, function, self.wrap(function, original))
        return self

    def __exit__(self, *exc: Any) -> None:
        for function, original in self.saved.items():
            setattr(backend, function, original)

    def wrap(self, function: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if self.depth:  # a product inside a product's own kernel: counted by the outer one
                return original(*args, **kwargs)
            self.depth += 1
            started = time.perf_counter()
            try:
                out = original(*args, **kwargs)
            finally:
                self.depth -= 1
            seconds = time.perf_counter() - started
            products = gemm_shapes(function, args, kwargs, out)
            if products:  # a depthwise convolution's time stays in the rest
                self.seconds += seconds
                self.products += products
            return out
        return recorded


def run_case(torch: Any, name: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    workload = WORKLOADS[name]
    rng = np.random.default_rng(batch)
    x = rng.random((batch, *workload.input_shape), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    build_ours, build_theirs = workload.build
    ours_model = build_ours()
    steps = {"tinygrad_cnn": suite.ours(workload, ours_model, x, y)}
    torch_model = build_theirs()
    suite.copy_state(torch, ours_model, torch_model)
    steps["pytorch"] = suite.theirs(torch, workload, torch_model, x, y)
    suite.check_agreement(torch, workload, (ours_model, torch_model), (steps["tinygrad_cnn"], steps["pytorch"]), x)
    times = suite.measure(steps, args.steps, args.warmup, args.block)
    ours_ms, torch_ms = (float(np.median(times[k])) * 1e3 for k in ("tinygrad_cnn", "pytorch"))
    with Recorder() as recorder:  # our product functions' share of a step, over a few more steps
        for _ in range(args.warmup):
            steps["tinygrad_cnn"]()
        recorder.seconds, recorder.products = 0.0, []
        started = time.perf_counter()
        for _ in range(args.profile_steps):
            steps["tinygrad_cnn"]()
        recorded_ms = (time.perf_counter() - started) / args.profile_steps * 1e3
    # the products' share of the recorded steps, applied to the timed median (a shared VM's
    # steps vary from one stretch of time to the next)
    products_ms = ours_ms * min(recorder.seconds / args.profile_steps * 1e3 / recorded_ms, 1.0)
    counts = collections.Counter(recorder.products)
    floor_ms = sum(count * 2.0 * m * k * n / best_rate(m, k, n) for (m, k, n), count in counts.items())
    floor_ms *= 1e3 / args.profile_steps / THREADS
    rest_ms = ours_ms - products_ms
    return {"workload": name, "batch": batch, "pytorch_ms": torch_ms, "ours_ms": ours_ms,
            "ours_products_ms": products_ms, "ours_rest_ms": rest_ms, "products_floor_ms": floor_ms,
            "perfect_products_ms": rest_ms + floor_ms, "ratio": ours_ms / torch_ms,
            "perfect_products_ratio": (rest_ms + floor_ms) / torch_ms, "products_floor_ratio": floor_ms / torch_ms}


def table(cases: list[dict[str, Any]]) -> str:
    lines = ["| workload | batch | PyTorch ms | ours ms | ours: products + rest ms | products floor ms | "
             "perfect products ms | × PyTorch: ours | perfect products | products floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        lines.append(f"| {c['workload']} | {c['batch']} | {c['pytorch_ms']:.1f} | {c['ours_ms']:.1f} | "
                     f"{c['ours_products_ms']:.1f} + {c['ours_rest_ms']:.1f} | {c['products_floor_ms']:.1f} | "
                     f"{c['perfect_products_ms']:.1f} | {c['ratio']:.2f} | {c['perfect_products_ratio']:.2f} | "
                     f"{c['products_floor_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    training = [name for name, workload in WORKLOADS.items() if workload.kind != "infer"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_options(parser, THREADS, steps=20, warmup=2, block=5)
    parser.add_argument("--workloads", nargs="+", choices=training, default=training)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256],
                        help="batch sizes (the gradient penalty runs at 64 only)")
    parser.add_argument("--profile-steps", type=int, default=10, help="steps over which our products are timed")
    parser.add_argument("--quick", action="store_true", help="mnist-relu at batch 64, 2 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.workloads, args.batch_sizes = ["mnist-relu"], [64]
        args.steps = args.block = args.profile_steps = 2
        args.warmup = 1
    torch = suite.load_torch()
    if torch is None:
        raise SystemExit("bound.py compares against PyTorch: pip install -e '.[bench]'")
    cases = []
    for name in args.workloads:
        for batch in (WORKLOADS[name].batches if WORKLOADS[name].kind == "penalty" else args.batch_sizes):
            cases.append(run_case(torch, name, batch, args))
            print(f"done: {name} at batch {batch}", file=sys.stderr, flush=True)
    print(f"threads: {THREADS}; products floor: each product at this BLAS's best one-thread rate for its "
          f"shape, divided among the threads")
    print(table(cases))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": THREADS, "cases": cases}, indent=2))


if __name__ == "__main__":
    main()
