"""The README's examples run and print what the README says they print."""
import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)


def test_example_prints_what_the_readme_shows():
    (index,) = [i for i, (lang, code) in enumerate(BLOCKS) if lang == "python" and "print(" in code]
    code, printed = BLOCKS[index][1], BLOCKS[index + 1][1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README example", "exec"), {})
    assert out.getvalue() == printed


def test_testing_example_runs():
    (code,) = [code for lang, code in BLOCKS if lang == "python" and "@given" in code]
    namespace = {}
    exec(compile(code, "README testing example", "exec"), namespace)
    namespace["test_feature_map_gradients"]()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"^(pip install -e \"\.\[test\]\" && python -m pytest)", README, flags=re.M)
    assert command, "README names the test command"
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install --quiet --disable-pip-version-check -e ".[test]"' in ci and "pytest" in ci


def test_training_pieces_example_runs(tmp_path, monkeypatch):
    mnist = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not mnist.is_dir():
        import pytest
        pytest.skip(f"needs the MNIST files in {mnist}")
    (code,) = [code for lang, code in BLOCKS if lang == "python" and "io.save(" in code]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace('"../shared/data/mnist"', repr(str(mnist))), "README training", "exec"), namespace)
    assert (tmp_path / "checkpoint.npz").exists()
    assert namespace["loss"].item() < 1.0  # 31 steps of SGD on 2,000 digits already learn something
