"""The README's code runs and prints what the README says it prints; its tables and pictures
agree with the code they describe."""
import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def section(title_start):
    """The text of the `## ` section whose title starts with `title_start` (to the next `## `)."""
    (match,) = [m for m in re.finditer(r"^## (.*)$", README, flags=re.M) if m.group(1).startswith(title_start)]
    following = re.search(r"^## ", README[match.end():], flags=re.M)
    return README[match.end():match.end() + following.start() if following else len(README)]


def cells(text):
    """(code, printed or None) for every python block of `text`; printed is the block that
    follows it after the word "prints"."""
    return re.findall(r"```python\n(.*?)```\n(?:prints\n```\n(.*?)```)?", text, flags=re.S)


def run(code, namespace, name):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), namespace)
    return out.getvalue()


def test_sections_come_in_the_order_a_newcomer_reads_them():
    titles = re.findall(r"^## (.*)$", README, flags=re.M)
    expected = ["Two commands", "A feature map", "Training on MNIST", "The primitives", "Testing your own ops",
                "How it works", "Reference", "Performance", "Layout"]
    assert [next(t for t in titles if t.startswith(e)) for e in expected] == \
        [t for t in titles if any(t.startswith(e) for e in expected)]
    assert len(titles) == len(expected)
    assert README.startswith("# tinygrad_cnn\n\nA small autograd framework")  # the pitch first


def test_example_prints_what_the_readme_shows():
    ((code, printed),) = cells(section("A feature map"))
    assert len([line for line in code.splitlines() if line.strip()]) <= 10  # a 10-line example
    assert printed and run(code, {}, "README example") == printed


def test_how_it_works_cells_run_in_order_and_print_what_the_readme_shows():
    text = section("How it works")
    steps = re.findall(r"^### \d\. `([\w./]+)`", text, flags=re.M)
    assert steps == ["tensor.py", "function.py", "autograd.py", "ops/", "nn.py", "optim.py"]
    for step in steps:
        assert (ROOT / "tinygrad_cnn" / step).exists(), step
    namespace = {}
    found = cells(text)
    assert len(found) == len(steps)
    for number, (code, printed) in enumerate(found, 1):
        out = run(code, namespace, f"README How it works, cell {number}")
        assert printed, f"cell {number} shows what it prints"
        assert out == printed, f"cell {number}"


def test_testing_example_runs():
    (code,) = [code for lang, code in BLOCKS if lang == "python" and "@given" in code]
    namespace = {}
    exec(compile(code, "README testing example", "exec"), namespace)
    namespace["test_feature_map_gradients"]()


def test_ci_runs_the_readme_test_command():
    command = re.search(r"^(pip install -e \"\.\[test\]\" && python -m pytest)", README, flags=re.M)
    assert command, "README names the test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install --quiet --disable-pip-version-check -e ".[test]"' in ci and "pytest" in ci
    assert '-e ".[plot]"' in ci  # so the picture tests run in CI


def test_training_pieces_example_runs(tmp_path, monkeypatch):
    if not MNIST.is_dir():
        pytest.skip(f"needs the MNIST files in {MNIST}")
    (code,) = [code for lang, code in BLOCKS if lang == "python" and "io.save(" in code]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace('"../shared/data/mnist"', repr(str(MNIST))), "README training", "exec"), namespace)
    assert (tmp_path / "checkpoint.npz").exists()
    assert namespace["loss"].item() < 1.0  # 31 steps of SGD on 2,000 digits already learn something


# ---- tables ------------------------------------------------------------------------------------

def table_rows(text, first_column=r"`?([A-Z]\w+)`?"):
    """{name: (forward, backward)} from the rows of a markdown op table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(rf"^\|\s*{first_column}\s*\|(.*)\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return rows


def test_op_table_is_the_one_in_ops():
    import tinygrad_cnn.ops as ops

    in_readme = table_rows(section("The primitives"), r"`([A-Z]\w+)`")
    in_ops = table_rows(ops.__doc__, r"([A-Z]\w+)")
    assert in_readme == in_ops
    assert sorted(in_readme) == sorted(cls.__name__ for cls in ops.PRIMITIVES)


def train_mnist():
    spec = importlib.util.spec_from_file_location("train_mnist", ROOT / "examples" / "train_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_table_commands_are_valid():
    """Each row's options parse, and its epochs column is what they ask for."""
    example = train_mnist()
    rows = re.findall(r"^\| [^|]+ \| ([\w-]+) \| (\d+) \| [^|]+ \| \*\*([\d.]+) %\*\* \| [^|]+ \| `([^`]+)` \|$",
                      section("Training on MNIST"), flags=re.M)
    assert len(rows) == 3
    for data, epochs, accuracy, options in rows:
        args = example.parse_args(shlex.split(options))
        assert args.epochs == int(epochs)
        assert args.fashion == (data == "Fashion-MNIST")
        assert 90 < float(accuracy) < 100


# ---- pictures ----------------------------------------------------------------------------------

PICTURES = re.findall(r"!\[[^\]]*\]\((docs/img/[\w.]+)\)|<img src=\"(docs/img/[\w.]+)\"", README)


def test_pictures_exist_and_are_small():
    paths = [ROOT / (a or b) for a, b in PICTURES]
    assert len(paths) >= 4
    for path in paths:
        data = path.read_bytes()
        assert len(data) < 100_000, f"{path.name} is {len(data):,} bytes"
        if path.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert path.suffix == ".svg" and b"<svg" in data
    assert sum(p.stat().st_size for p in paths) < 300_000


def test_graph_picture_is_the_example_graph():
    """docs/img/graph.svg was drawn from the first example's loss: each of its nodes is there."""
    from tinygrad_cnn import viz

    ((code, _),) = cells(section("A feature map"))
    namespace = {}
    run(code.split("loss.backward()")[0], namespace, "README example")
    dot = viz.graph(namespace["loss"], names={n: namespace[n] for n in ("x", "k", "b")})
    labels = re.findall(r'^\s*\w+ \[label="([^"]*)"', dot, flags=re.M)  # nodes, not edges
    svg = (ROOT / "docs" / "img" / "graph.svg").read_text(encoding="utf-8")
    assert len(labels) == 11
    for label in labels:
        for line in label.split("\\n"):
            assert f">{line}</text>" in svg, line
    assert svg.count("class=\"node\"") == len(labels)
