"""Per-op forward and backward times: tinygrad_cnn against PyTorch and scipy.signal.

    python benchmarks/ops.py            # full
    python benchmarks/ops.py --quick    # CI: one repeat each, small batch

Each row is one op at the shapes of Nielsen's MNIST network (batch N), timed as the median of
several runs, forward alone and forward + backward; PyTorch (when installed) runs the same op on
the same arrays with the same thread count, and scipy.signal the 2-D correlations one plane at a
time (the article's way). A slow op shows as a large ratio in the last column.
"""
from __future__ import annotations

import argparse
import sys

from common import pin_threads  # noqa: E402  (before numpy)

THREADS = pin_threads()

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
from tinygrad_cnn import Tensor, set_num_threads  # noqa: E402

set_num_threads(THREADS)  # our kernels' threads, as torch.set_num_threads below


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def cases(n: int) -> list[dict[str, Any]]:
    """(name, our op, torch op, scipy op or None, input arrays)."""
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    def distinct(*shape: int) -> np.ndarray:
        return (rng.permutation(int(np.prod(shape))).reshape(shape) / 1000).astype(np.float32)

    def torch_conv(mode: str, rank: int) -> Callable[..., Any]:
        def op(x: Any, k: Any) -> Any:
            import torch.nn.functional as TF
            kh, kw = k.shape[-2:]
            weight = k.reshape((1, 1, kh, kw) if rank == 2 else ((1,) + tuple(k.shape) if rank == 3 else k.shape))
            inputs = x.reshape((-1, 1) + tuple(x.shape[-2:])) if rank == 2 else x
            padding = {"valid": 0, "full": (kh - 1, kw - 1), "same": "same"}[mode]
            return TF.conv2d(inputs, weight, padding=padding)
        return op

    def scipy_conv(mode: str) -> Callable[..., Any]:
        def op(x: np.ndarray, k: np.ndarray) -> Any:
            planes = x.reshape((-1,) + x.shape[-2:])
            kernels = k.reshape((-1,) + k.shape[-2:])
            return [scipy.signal.correlate2d(p, kernels[i % len(kernels)], mode=mode) for i, p in enumerate(planes)]
        return op

    rows = []
    for mode in ("valid", "full", "same"):
        rows.append(dict(name=f"correlate2d rank 2 (kh, kw), {mode}", ours=lambda x, k, m=mode: F.correlate2d(x, k, m),
                         torch=torch_conv(mode, 2), scipy=scipy_conv(mode), inputs=(r(n, 28, 28), r(5, 5))))
        rows.append(dict(name=f"correlate2d rank 3 (C, kh, kw), {mode}", ours=lambda x, k, m=mode: F.correlate2d(x, k, m),
                         torch=torch_conv(mode, 3), scipy=None, inputs=(r(n, 20, 12, 12), r(20, 5, 5))))
        rows.append(dict(name=f"correlate2d rank 4 (F, C, kh, kw), {mode}", ours=lambda x, k, m=mode: F.correlate2d(x, k, m),
                         torch=torch_conv(mode, 4), scipy=None, inputs=(r(n, 20, 12, 12), r(40, 20, 5, 5))))
    rows.append(dict(name="maxpool2d 2×2, stride 2", ours=lambda x: F.maxpool2d(x, 2),
                     torch=lambda x: __import__("torch").nn.functional.max_pool2d(x, 2), scipy=None,
                     inputs=(distinct(n, 20, 24, 24),)))
    rows.append(dict(name="maxpool2d 2×2, stride 1 (MaxPoolingMap)", ours=lambda x: F.maxpool2d(x, 2, 1),
                     torch=lambda x: __import__("torch").nn.functional.max_pool2d(x, 2, 1), scipy=None,
                     inputs=(distinct(n, 20, 24, 24),)))
    rows.append(dict(name="matmul (N, 640) @ (640, 100)", ours=lambda a, b: a @ b, torch=lambda a, b: a @ b,
                     scipy=None, inputs=(r(n, 640), r(640, 100))))
    rows.append(dict(name="sigmoid (N, 20, 24, 24)", ours=F.sigmoid, torch=lambda x: x.sigmoid(), scipy=None,
                     inputs=(r(n, 20, 24, 24),)))
    return rows


def run(n: int, repeats: int) -> list[dict[str, Any]]:
    try:
        import torch
        torch.set_num_threads(THREADS)
    except ImportError:
        torch = None
    results = []
    for case in cases(n):
        arrays = case["inputs"]

        def ours_forward() -> Any:
            return case["ours"](*[Tensor(a) for a in arrays])

        def ours_both() -> Any:
            inputs = [Tensor(a, requires_grad=True) for a in arrays]
            case["ours"](*inputs).sum().backward()

        row = {"op": case["name"], "ours_forward_ms": median_ms(ours_forward, repeats),
               "ours_forward_backward_ms": median_ms(ours_both, repeats)}
        if torch is not None:
            def torch_forward() -> Any:
                with torch.no_grad():
                    return case["torch"](*[torch.from_numpy(a) for a in arrays])

            def torch_both() -> Any:
                inputs = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
                case["torch"](*inputs).sum().backward()

            row["torch_forward_ms"] = median_ms(torch_forward, repeats)
            row["torch_forward_backward_ms"] = median_ms(torch_both, repeats)
        if case["scipy"] is not None:
            row["scipy_forward_ms"] = median_ms(lambda: case["scipy"](*arrays), max(1, repeats // 3))
        results.append(row)
    return results


def table(results: list[dict[str, Any]], n: int) -> str:
    def cell(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f}" if key in row else "n/a"

    lines = [f"batch N = {n}, {THREADS} threads, median ms", "",
             "| op | ours fwd | PyTorch fwd | scipy fwd | ours fwd+bwd | PyTorch fwd+bwd | fwd+bwd × PyTorch |",
             "|---|---|---|---|---|---|---|"]
    for row in results:
        ratio = (f"{row['ours_forward_backward_ms'] / row['torch_forward_backward_ms']:.2f}"
                 if "torch_forward_backward_ms" in row else "n/a")
        lines.append(f"| {row['op']} | {cell(row, 'ours_forward_ms')} | {cell(row, 'torch_forward_ms')} | "
                     f"{cell(row, 'scipy_forward_ms')} | {cell(row, 'ours_forward_backward_ms')} | "
                     f"{cell(row, 'torch_forward_backward_ms')} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=THREADS, help="BLAS and PyTorch threads")
    parser.add_argument("--quick", action="store_true", help="batch 4, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 4, 1
    print(table(run(args.batch, args.repeats), args.batch))


if __name__ == "__main__":
    main()
