"""Every script in examples/ runs, with small settings, and prints what it promises.

A new example without an entry in COMMANDS fails here: the docs cannot rot unnoticed.
"""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PICTURES = {"filters_conv1.png": (650, 175), "filters_conv2.png": (1150, 575),
            "feature_maps.png": (1175, 525), "training_curves.png": (900, 350)}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is a PNG"
    return struct.unpack(">II", data[16:24])


def check_train_mnist(out: str, tmp_path: Path) -> None:
    lines = out.strip().splitlines()
    assert lines[-1].startswith("final test accuracy: ")
    assert (tmp_path / "m.safetensors").exists()
    if HAS_MATPLOTLIB:
        for name, size in PICTURES.items():
            assert f"wrote {tmp_path / 'plots' / name}" in out
            assert png_size(tmp_path / "plots" / name) == size


def check_article(out: str, tmp_path: Path) -> None:
    assert all(f"== ({section}) " in out for section in "abcdefghi")
    assert "sum_of_results:\n[[212 196]\n [164 148]]" in out


def check_custom_op(out: str, tmp_path: Path) -> None:
    assert "pass on 5 drawn arrays" in out and "pass on 5 drawn (x, k) pairs" in out
    assert "a wrong backward is caught:\n  gradcheck: gradient of input 0" in out
    assert out.strip().endswith("all checks passed")


def train_mnist_arguments(tmp_path: Path) -> list[str]:
    if not MNIST.is_dir():
        pytest.skip(f"needs the MNIST files in {MNIST}")
    return (["--data", str(MNIST), "--limit", "128", "--test-limit", "100", "--epochs", "2", "--batch-size", "32",
             "--save", str(tmp_path / "m.safetensors")]
            + (["--plots", str(tmp_path / "plots")] if HAS_MATPLOTLIB else []))


# example file -> (its arguments for a quick run, given a temporary folder; a check of its output)
COMMANDS = {
    "train_mnist.py": (train_mnist_arguments, check_train_mnist),
    "article_walkthrough.py": (lambda tmp_path: [], check_article),
    "custom_op.py": (lambda tmp_path: ["--examples", "5"], check_custom_op),
}
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    if name not in COMMANDS:
        pytest.fail(f"examples/{name} is not run by the tests: add a quick command for it to COMMANDS "
                    "in tests/test_examples.py")
    arguments, check = COMMANDS[name]
    argv = arguments(tmp_path)
    # From another folder, without PYTHONPATH: as a reader runs it after `pip install -e .`.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    check(done.stdout, tmp_path)


def test_every_command_names_an_existing_example():
    assert sorted(COMMANDS) == EXAMPLES


def test_plots_without_matplotlib_fail_before_training(tmp_path):
    """--plots says what to install at once, not after a long run (matplotlib hidden from the
    script's lookup, installed or not)."""
    code = ("import importlib.util, runpy, sys\n"
            "original = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: None if name == 'matplotlib' else original(name, *a)\n"
            f"sys.argv = ['train_mnist.py', '--data', {str(tmp_path / 'none')!r}, '--plots', {str(tmp_path)!r}]\n"
            f"runpy.run_path({str(ROOT / 'examples' / 'train_mnist.py')!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr  # argparse's usage error, before any data is read
    assert "--plots needs matplotlib: pip install -e '.[plot]'" in done.stderr
    assert not (tmp_path / "none").exists()


def test_train_mnist_resumes_an_old_npz_checkpoint_and_saves_safetensors(tmp_path):
    """--resume reads the .npz checkpoints of earlier versions exactly; --save writes safetensors
    (a path ending in .npz still gets the old format)."""
    import numpy as np

    from tinygrad_cnn import io

    if not MNIST.is_dir():
        pytest.skip(f"needs the MNIST files in {MNIST}")
    spec = importlib.util.spec_from_file_location("train_mnist", ROOT / "examples" / "train_mnist.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    def run(*argv):
        args = example.parse_args(["--data", str(MNIST), "--limit", "256", "--test-limit", "50", "--batch-size", "32",
                                   "--seed", "4", *map(str, argv)])
        return example.train(args, log=lambda line: None)

    straight = run("--epochs", 2, "--save", tmp_path / "straight.safetensors")
    run("--epochs", 2, "--stop-after", 1, "--save", tmp_path / "half.npz")
    assert (tmp_path / "half.npz").read_bytes()[:2] == b"PK"  # the old format
    resumed = run("--epochs", 2, "--resume", tmp_path / "half.npz", "--save", tmp_path / "resumed.safetensors")
    for name, value in straight["model"].state_dict().items():
        assert np.array_equal(value, resumed["model"].state_dict()[name]), name
    saved = io.load(tmp_path / "resumed.safetensors")
    assert saved["epoch"] == 2 and list(saved) == ["model", "optimizer", "loader", "epoch", "history"]
    assert all(np.array_equal(saved["model"][k], v) for k, v in resumed["model"].state_dict().items())
