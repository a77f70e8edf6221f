"""Every benchmark runs in its quick mode, so none of them rots. (No timing is asserted: speed
is measured by the benchmarks themselves, in their full mode.)"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def run(script, *args):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_train_step_quick(tmp_path):
    out = run("train_step.py", "--quick", "--json", str(tmp_path / "step.json"))
    assert "| relu | 64 |" in out and "| sigmoid | 64 |" in out and "GEMM" in out
    assert "the article's per-feature-map scipy loops" in out
    assert (tmp_path / "step.json").read_text().startswith("{")


def test_ops_quick():
    out = run("ops.py", "--quick")
    assert out.count("| correlate2d") == 9 and "| maxpool2d 2×2, stride 1" in out


def test_memory_quick():
    out = run("memory.py", "--quick", "--workloads", "mnist-relu,infer-mnist")
    assert "| mnist-relu | 256 | tinygrad_cnn |" in out and "| infer-mnist | 1 | tinygrad_cnn |" in out


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"needs the MNIST files in {MNIST}")
def test_time_to_accuracy_quick():
    out = run("time_to_accuracy.py", "--quick", "--data", str(MNIST))
    assert "| tinygrad_cnn | " in out


SUITE_WORKLOADS = ["mnist-relu", "mnist-sigmoid", "lenet5", "vgg", "allconv", "resnet", "bottleneck-depthwise",
                   "overlap-pool", "dilated", "resnet-down", "mobilenet-silu", "decoder", "gradient-penalty",
                   "infer-mnist", "infer-vgg"]


def test_suite_quick(tmp_path):
    import json

    out = run("suite.py", "--quick", "--json", str(tmp_path / "suite.json"))
    assert "GEMM" in out
    for name in SUITE_WORKLOADS:
        assert f"| {name} |" in out, name
    results = json.loads((tmp_path / "suite.json").read_text())
    assert [case["workload"] for case in results["cases"]] == SUITE_WORKLOADS


def test_bound_quick(tmp_path):
    import json

    pytest.importorskip("torch")
    out = run("bound.py", "--quick", "--json", str(tmp_path / "bound.json"))
    assert "| mnist-relu | 64 |" in out
    (case,) = json.loads((tmp_path / "bound.json").read_text())["cases"]
    # the Nielsen net's products: two dense convolutions (forward, ∂C/∂k; ∂C/∂x of the second
    # only, the input needs none) and two linear layers, so a floor above 0 and below our products
    assert 0 < case["products_floor_ms"] < case["ours_products_ms"]
    assert case["perfect_products_ms"] == pytest.approx(case["ours_rest_ms"] + case["products_floor_ms"])
