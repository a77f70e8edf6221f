"""End-to-end training on the real MNIST (examples/train_mnist.py): accuracy on a subset,
bitwise reproducibility, and a resumed run identical to an uninterrupted one."""
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not MNIST.is_dir(), reason=f"needs the MNIST files in {MNIST}")


def _example():
    spec = importlib.util.spec_from_file_location("train_mnist", ROOT / "examples" / "train_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_mnist = _example()


def run(*argv, quiet=True):
    args = train_mnist.parse_args(["--data", str(MNIST), *map(str, argv)])
    return train_mnist.train(args, log=(lambda line: None) if quiet else print)


def weights(model):
    return model.state_dict()


def test_subset_reaches_90_percent(tmp_path):
    started = time.perf_counter()
    result = run("--limit", 2000, "--test-limit", 1000, "--epochs", 3, "--seed", 0, "--save", tmp_path / "m.npz")
    print(f"2,000-image run: {100 * result['final_accuracy']:.2f} % in {time.perf_counter() - started:.1f} s")
    assert result["final_accuracy"] >= 0.90
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("extra", [(), ("--activation", "sigmoid", "--optimizer", "adam", "--dropout", 0.3)])
def test_two_seeded_runs_are_bitwise_identical(tmp_path, extra):
    common = ("--limit", 640, "--test-limit", 100, "--epochs", 1, "--save", "", *extra)
    first, second = run(*common, "--seed", 7), run(*common, "--seed", 7)
    other = run(*common, "--seed", 8)
    for name, value in weights(first["model"]).items():
        assert np.array_equal(value, weights(second["model"])[name]), name
    assert all(p.dtype == np.float32 for p in first["model"].parameters())  # no silent float64
    assert any(not np.array_equal(v, weights(other["model"])[n]) for n, v in weights(first["model"]).items())


@pytest.mark.parametrize("extra", [(), ("--optimizer", "adam", "--dropout", 0.5)])
def test_resume_matches_uninterrupted_run(tmp_path, extra):
    common = ("--limit", 640, "--test-limit", 100, "--seed", 3, *extra)
    straight = run(*common, "--epochs", 2, "--save", tmp_path / "straight.npz")
    run(*common, "--epochs", 2, "--stop-after", 1, "--save", tmp_path / "half.npz")
    resumed = run(*common, "--epochs", 2, "--resume", tmp_path / "half.npz", "--save", tmp_path / "resumed.npz")
    for name, value in weights(straight["model"]).items():
        assert np.array_equal(value, weights(resumed["model"])[name]), name
    assert straight["history"]["test_accuracy"] == resumed["history"]["test_accuracy"]
    # Every step's loss is kept too (for viz.training_curves): 2 epochs of 640 // 64 steps.
    assert straight["history"]["step_loss"] == resumed["history"]["step_loss"]
    assert len(resumed["history"]["step_loss"]) == 2 * 10


def test_command_line_prints_final_accuracy(tmp_path):
    checkpoint = tmp_path / "cli.npz"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_mnist.py"), "--data", str(MNIST), "--limit", "256",
         "--test-limit", "200", "--epochs", "1", "--batch-size", "32", "--save", str(checkpoint)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("epoch 1: train loss") for line in lines)
    assert lines[-1].startswith("final test accuracy: ") and lines[-1].endswith(" %")
    assert 0 <= float(lines[-1].split()[3]) <= 100
    assert "8/8" in done.stderr  # the progress bar reached the last batch
    assert checkpoint.exists()


def test_float32_network_never_upcasts(monkeypatch):
    """Every array made during a float32 training step (forward, backward, update) is float32,
    and the step raises no floating-point error."""
    import tinygrad_cnn.functional as F
    from tinygrad_cnn import Tensor, optim
    from tinygrad_cnn.models import nielsen_cnn
    from tinygrad_cnn.tensor import Tensor as TensorClass

    for activation in ("relu", "sigmoid"):
        model = nielsen_cnn(activation, dropout=0.5, seed=0)
        opt = optim.Adam(model.parameters(), weight_decay=1e-4)
        x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
        y = np.arange(8) % 10
        made = []
        original = TensorClass._make.__func__
        monkeypatch.setattr(TensorClass, "_make", classmethod(
            lambda cls, data, *a, **k: made.append(data.dtype) or original(cls, data, *a, **k)))
        with np.errstate(all="raise"):
            loss = F.cross_entropy(model(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        monkeypatch.undo()
        assert made and all(dtype == np.float32 for dtype in made), sorted({str(d) for d in made})
        assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
        assert all(b.dtype == np.float32 for buffers in opt.state.values() for b in buffers if b is not None
                   and b.ndim)


def test_command_line_without_data_says_what_to_do(tmp_path):
    empty = tmp_path / "no-data"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_mnist.py"), "--data", str(empty), "--epochs", "1"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    assert done.returncode == 1
    assert "error: could not download train-images-idx3-ubyte.gz" in done.stderr and "--data DIR" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(p.name.endswith(".part") for p in empty.iterdir())
