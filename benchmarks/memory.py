"""Memory of training steps: peak RSS of a step, and RSS across many steps, ours and PyTorch's.

    python benchmarks/memory.py                        # Nielsen's net, batch 256, 1,000 steps each
    python benchmarks/memory.py --workloads all --steps 30   # every network of suite.py
    python benchmarks/memory.py --quick                # CI: 20 steps

The workloads are suite.py's (networks in suite_nets.py, the same step: forward, cross-entropy,
backward, SGD; the gradient penalty's double backward; inference), at ``--batch`` (the gradient
penalty at 64 and inference at 1, their only sizes). Each framework runs in a fresh process of
its own (so neither inherits the other's heap). We report the resident set size after the first
few steps (the working set), the peak RSS (``ru_maxrss``), the peak above the RSS measured once
the libraries are imported and before the model is built (what the network and its steps take:
both processes import tinygrad_cnn, through suite.py, so only this column compares the
frameworks' own memory), and the growth between step 100 (or the first sample) and the last
step, sampled every 50 steps: a leak shows as growth that does not stay flat.
"""
from __future__ import annotations

import argparse
import importlib.util
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


def batch_of(workload: Any, batch: int) -> int:
    """`batch` where the workload runs at it, else its first size (gradient penalty 64, inference 1)."""
    return batch if batch in workload.batches else workload.batches[0]


def worker(framework: str, name: str, steps: int, batch: int, malloc: str) -> dict[str, Any]:
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from common import apply_malloc

    apply_malloc(malloc)  # in each framework's process alike
    import numpy as np
    import suite  # the steps of both frameworks (it sets the threads from --threads)
    from suite_nets import WORKLOADS

    workload = WORKLOADS[name]
    torch = suite.load_torch() if framework == "pytorch" else None
    libraries = rss_mib()
    rng = np.random.default_rng(0)
    x = rng.random((batch, *workload.input_shape), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    if torch is None:
        step = suite.ours(workload, workload.build[0](), x, y)
    else:
        step = suite.theirs(torch, workload, workload.build[1](), x, y)
    samples = []
    for i in range(1, steps + 1):
        step()
        if i == 5 or i % 50 == 0 or i == steps:
            samples.append((i, rss_mib()))
    after_warmup = [mib for i, mib in samples if i >= min(100, samples[0][0])]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"framework": framework, "workload": name, "batch": batch, "steps": steps,
            "working_set_mib": samples[0][1], "peak_rss_mib": peak, "peak_above_libraries_mib": peak - libraries,
            "growth_mib": after_warmup[-1] - after_warmup[0], "samples": samples}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="mnist-relu", help="comma-separated names of suite.py, or 'all'")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="20 steps")
    parser.add_argument("--worker", choices=("tinygrad_cnn", "pytorch"), help=argparse.SUPPRESS)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import add_malloc_option
    from suite_nets import WORKLOADS

    add_malloc_option(parser)
    args = parser.parse_args(argv)
    names = list(WORKLOADS) if args.workloads == "all" else [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads must name workloads of suite.py ({', '.join(WORKLOADS)}) or 'all', got {unknown}")
    if args.worker:
        print(json.dumps(worker(args.worker, names[0], args.steps, args.batch, args.malloc)))
        return
    if args.quick:
        args.steps = 20
    if args.steps < 5:
        parser.error(f"--steps must be at least 5 (the working set is read after step 5), got {args.steps}")
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
                       MKL_NUM_THREADS=str(args.threads))
    # Not imported here: Linux carries a process's peak RSS across fork and exec into the
    # worker's ru_maxrss, so this process stays small.
    frameworks = ("tinygrad_cnn", "pytorch") if importlib.util.find_spec("torch") else ("tinygrad_cnn",)
    print(f"{args.steps} steps, {args.threads} threads, one fresh process per framework and workload, "
          f"malloc: {args.malloc}\n")
    print("| workload | batch | framework | RSS after 5 steps (MiB) | peak RSS (MiB) | peak above libraries (MiB) "
          "| × PyTorch | RSS growth, step 100 (or 5) → last (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        rows = []
        for framework in frameworks:
            command = [sys.executable, __file__, "--worker", framework, "--workloads", name, "--steps",
                       str(args.steps), "--batch", str(batch_of(WORKLOADS[name], args.batch)), "--threads",
                       str(args.threads), "--malloc", args.malloc]
            done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        theirs = rows[-1]["peak_above_libraries_mib"] if len(rows) == 2 else None
        for row in rows:
            ratio = f"{row['peak_above_libraries_mib'] / theirs:.2f}" if theirs and row is rows[0] else ""
            print(f"| {name} | {row['batch']} | {row['framework']} | {row['working_set_mib']:.0f} | "
                  f"{row['peak_rss_mib']:.0f} | {row['peak_above_libraries_mib']:.0f} | {ratio} | "
                  f"{row['growth_mib']:+.1f} |", flush=True)


if __name__ == "__main__":
    main()
