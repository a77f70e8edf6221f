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
FASHION = ROOT.parent / "shared" / "data" / "fashion-mnist"
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


def nielsen_arguments(tmp_path: Path) -> list[str]:
    if not MNIST.is_dir():
        pytest.skip(f"needs the MNIST files in {MNIST}")
    return (["--data", str(MNIST), "--quick", "--threads", "1", "--save", str(tmp_path / "rows")]
            + (["--plots", str(tmp_path / "plots")] if HAS_MATPLOTLIB else []))


NIELSEN = {1: 97.80, 2: 98.78, 3: 99.06, 4: 99.23, 5: 99.37, 6: 99.43, 7: 99.60, 8: 99.67, 9: 99.70}


def check_nielsen(out: str, tmp_path: Path) -> None:
    """A line per row in the promised format, in order, then the table of all nine."""
    import re

    rows = re.findall(r"^row (\d): (.+): test accuracy (\d+\.\d\d) % \(Nielsen (\d+\.\d\d) %\), (\d+) epochs, "
                      r"(\d+\.\d) min$", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(1, 10)), out
    assert all(float(r[3]) == NIELSEN[int(r[0])] and r[4] == "1" for r in rows)
    assert "ensemble of 3 row-7 networks, majority vote" in out
    assert len(re.findall(r"^  row 8 member \d \(seed \d\): test accuracy", out, re.MULTILINE)) == 3
    table = out[out.index("| row | network |"):].splitlines()
    assert [line.split(" | ")[0] for line in table[2:11]] == [f"| {n}" for n in range(1, 10)]
    saved = sorted(path.name for path in (tmp_path / "rows").iterdir())
    assert saved == sorted([f"row{n}.safetensors" for n in (1, 2, 3, 4, 5, 6, 7, 9)]
                           + [f"row8_member{k}.safetensors" for k in (2, 3)])
    if HAS_MATPLOTLIB:
        picture = tmp_path / "plots" / "nielsen_ch6_curves.png"
        assert f"wrote {picture}" in out and png_size(picture) == (880, 336)


def fashion_arguments(tmp_path: Path) -> list[str]:
    if not FASHION.is_dir():
        pytest.skip(f"needs the Fashion-MNIST files in {FASHION}")
    return ["--data", str(FASHION), "--quick", "--threads", "2", "--save", str(tmp_path / "f.safetensors")]


def check_fashion(out: str, tmp_path: Path) -> None:
    import re

    assert re.fullmatch(r"final test accuracy: \d+\.\d\d %", out.strip().splitlines()[-1])
    assert "epoch 1: train loss" in out and (tmp_path / "f.safetensors").exists()


# example file -> (its arguments for a quick run, given a temporary folder; a check of its output)
COMMANDS = {
    "train_mnist.py": (train_mnist_arguments, check_train_mnist),
    "article_walkthrough.py": (lambda tmp_path: [], check_article),
    "custom_op.py": (lambda tmp_path: ["--examples", "5"], check_custom_op),
    "nielsen_ch6.py": (nielsen_arguments, check_nielsen),
    "train_fashion.py": (fashion_arguments, check_fashion),
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


def test_custom_op_shows_the_testing_kit(tmp_path):
    """examples/custom_op.py walks through tinygrad_cnn.testing on its own ops: the adjoint
    check, a kink told apart from a bug, the layout run, PyTorch parity and random networks."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_op.py"), "--examples", "3"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "an unflipped kernel is caught:\n  check_adjoint: the adjoint identity ⟨fn(x), g⟩ = ⟨x, vjp(g)⟩ fails" in out
    assert "Hinge at 1e-7 is a kink, not a bug:\n  gradcheck: fn is not differentiable at input 0" in out
    assert "Hinge: gradcheck passes on 3 drawn arrays" in out
    assert "a layout bug is caught:\n  gradcheck: on inputs in the 'transposed' layout" in out
    parity = ("Softplus matches torch.nn.functional.softplus: forward, first and second derivatives"
              if importlib.util.find_spec("torch") else "torch is not installed: assert_matches_torch skipped")
    assert parity in out
    assert "Softplus inside random CNNs: gradcheck passes on 3 drawn networks" in out
    assert out.strip().endswith("all checks passed")


def load_nielsen():
    """examples/nielsen_ch6.py as a module (registered, as its dataclass needs)."""
    spec = importlib.util.spec_from_file_location("nielsen_ch6", ROOT / "examples" / "nielsen_ch6.py")
    example = importlib.util.module_from_spec(spec)
    sys.modules["nielsen_ch6"] = example
    spec.loader.exec_module(example)
    return example


def test_one_pixel_shift_samples_the_books_expanded_set():
    """Row 5's on-the-fly expansion: each image comes back as itself or one of its four
    one-pixel shifts (zeros shifted in), all five drawn, and a seed repeats the draw."""
    import numpy as np

    example = load_nielsen()
    image = np.arange(1, 26, dtype=np.float32).reshape(1, 1, 5, 5)
    batch = np.repeat(image, 200, axis=0)
    shifted = example.OnePixelShift(np.random.default_rng(3))(batch)
    padded = np.pad(image[0, 0], 1)
    variants = [padded[1 - dy:6 - dy, 1 - dx:6 - dx] for dy, dx in example.OnePixelShift.MOVES]
    kinds = [next(k for k, v in enumerate(variants) if np.array_equal(out[0], v)) for out in shifted]
    assert sorted(set(kinds)) == [0, 1, 2, 3, 4]
    assert np.array_equal(example.OnePixelShift(np.random.default_rng(3))(batch), shifted)


def test_majority_vote_breaks_ties_by_mean_probability():
    import numpy as np

    example = load_nielsen()
    a = np.array([[0.6, 0.4, 0.0], [0.9, 0.1, 0.0]])
    b = np.array([[0.0, 0.7, 0.3], [0.0, 0.2, 0.8]])
    c = np.array([[0.0, 0.9, 0.1], [0.3, 0.0, 0.7]])
    # image 0: two votes for class 1; image 1: one vote for 0, two for 2
    assert example.majority_vote([a, b, c]).tolist() == [1, 2]
    # a tie (one vote each for 0 and 1): class 1 has the higher mean probability
    assert example.majority_vote([np.array([[0.55, 0.45]]), np.array([[0.0, 1.0]])]).tolist() == [1]


def test_a_ladder_row_repeats_exactly_from_its_seed():
    """Initial weights, data order, the shifts and dropout all follow --seed: the same seed
    trains the same weights, another seed others (rows 5 and 7 on a few images, one epoch)."""
    import numpy as np

    example = load_nielsen()
    rng = np.random.default_rng(0)
    train = (rng.random((128, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 128))
    test = (train[0][:32], train[1][:32])

    def weights(row, seed):
        model, history = example.fit(example.ROWS[row], seed, 1, train, test, log=lambda line: None)
        assert len(history["loss"]) == len(history["test_accuracy"]) == 1 and len(history["step_loss"]) == 2
        return model.state_dict()

    for row in (5, 7):
        first, again, other = weights(row, 3), weights(row, 3), weights(row, 4)
        assert all(np.array_equal(first[k], again[k]) for k in first)
        assert not all(np.array_equal(first[k], other[k]) for k in first)


def test_ladder_jobs_train_the_networks_one_process_would(tmp_path):
    """--jobs 2 trains in worker processes exactly what --jobs 1 trains in one (on one thread
    each): the same row lines, row 8's members and vote included. Row 8's member 1 is row 7's
    network, whether or not row 7 is asked for: the same training, loss for loss."""
    import re

    if not MNIST.is_dir():
        pytest.skip(f"needs the MNIST files in {MNIST}")

    def run(rows, jobs):
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "nielsen_ch6.py"), "--data", str(MNIST),
                               "--quick", "--rows", rows, "--threads", "1", "--jobs", str(jobs)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def results(out):
        accuracy = r"test accuracy [\d.]+ %"
        return re.findall(rf"^(row \d: .+?: {accuracy}|  row 8 member \d \(seed \d\): {accuracy})", out, re.MULTILINE)

    def row7_epoch(out):
        return re.findall(r"^  row 7 epoch 1: train loss [\d.]+, test accuracy [\d.]+ %", out, re.MULTILINE)

    one = run("4,8", 1)
    assert len(results(one)) == 5 and results(one) == results(run("4,8", 2)), one
    assert row7_epoch(one) and row7_epoch(one) == row7_epoch(run("7", 1))
