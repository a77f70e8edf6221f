"""Memory of training Nielsen's MNIST network: peak RSS of a step, and RSS across many steps.

    python benchmarks/memory.py                  # batch 256, 1,000 steps per framework
    python benchmarks/memory.py --quick          # CI: 20 steps

Each framework runs in a fresh process of its own (so neither inherits the other's heap). We
report the resident set size after the first few steps (the working set), the peak RSS
(``ru_maxrss``), and the growth between step 100 and the last step, sampled every 50 steps:
a leak shows as growth that does not stay flat.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(framework: str, steps: int, batch: int, malloc: str) -> dict[str, Any]:
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from common import apply_malloc

    apply_malloc(malloc)  # in each framework's process alike
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    if framework == "tinygrad_cnn":
        import tinygrad_cnn.functional as F
        from tinygrad_cnn import Tensor, optim
        from tinygrad_cnn.models import nielsen_cnn
        from tinygrad_cnn import set_num_threads

        set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        model = nielsen_cnn("relu")
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        from common import torch_nielsen_cnn

        model = torch_nielsen_cnn("relu")
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()

    samples = []
    for i in range(1, steps + 1):
        step()
        if i == 5 or i % 50 == 0 or i == steps:
            samples.append((i, rss_mib()))
    after_warmup = [mib for i, mib in samples if i >= min(100, steps)]
    return {"framework": framework, "batch": batch, "steps": steps, "working_set_mib": samples[0][1],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "growth_mib": after_warmup[-1] - after_warmup[0], "samples": samples}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="20 steps")
    parser.add_argument("--worker", choices=("tinygrad_cnn", "pytorch"), help=argparse.SUPPRESS)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import add_malloc_option

    add_malloc_option(parser)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.batch, args.malloc)))
        return
    if args.quick:
        args.steps = 20
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
                       MKL_NUM_THREADS=str(args.threads))
    rows = []
    for framework in ("tinygrad_cnn", "pytorch"):
        if framework == "pytorch":
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        command = [sys.executable, __file__, "--worker", framework, "--steps", str(args.steps),
                   "--batch", str(args.batch), "--malloc", args.malloc]
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"batch {args.batch}, {args.steps} steps, {args.threads} threads, one fresh process per framework, "
          f"malloc: {args.malloc}\n")
    print("| framework | RSS after 5 steps (MiB) | peak RSS (MiB) | RSS growth, step 100 → last (MiB) |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['framework']} | {row['working_set_mib']:.0f} | {row['peak_rss_mib']:.0f} | "
              f"{row['growth_mib']:+.1f} |")


if __name__ == "__main__":
    main()
