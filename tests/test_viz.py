"""tinygrad_cnn.viz: the DOT text of a graph, its rendering, and the PNG pictures.

The graph tests need nothing beyond the core; the picture tests need matplotlib (the `plot`
extra) and skip without it. A picture is checked as a file (PNG signature, size from its IHDR
chunk) and by its pixels: not a blank canvas, and different data give a different picture.
"""
from __future__ import annotations

import gc
import os
import shutil
import re
import struct
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn, viz
from tinygrad_cnn.models import nielsen_cnn

REPO = Path(__file__).resolve().parents[1]


# ---- reading DOT text and PNG files -----------------------------------------------------------

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', re.M)
EDGE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[label="((?:[^"\\]|\\.)*)"\])?;$', re.M)


def parse_dot(text):
    """{node id: label lines} and [(source id, target id, edge label)] from our DOT text."""
    assert text.startswith("digraph ") and text.rstrip().endswith("}")
    nodes = {name: label.split("\\n") for name, label in NODE.findall(text)}
    edges = [(a, b, label) for a, b, label in EDGE.findall(text)]
    assert text.count("->") == len(edges), "every edge statement parsed"
    return nodes, edges


def edges_by_label(text):
    """Edges as (first line of source label, first line of target label), a sorted list."""
    nodes, edges = parse_dot(text)
    return sorted((nodes[a][0], nodes[b][0]) for a, b, _ in edges)


def png_size(path):
    """(width, height) of a PNG file, read from its signature and IHDR chunk."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND", "the file is complete"
    return width, height


def pixels(path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image[..., :3]


def assert_not_blank(image):
    assert image.std() > 0.02, "a picture with content, not a blank canvas"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10, "more than a few flat colours"


# ---- graph(): DOT text ------------------------------------------------------------------------

def test_graph_of_a_small_expression():
    x = Tensor(np.ones((2, 3)), requires_grad=True, dtype=np.float32)
    w = Tensor(np.arange(3.0), requires_grad=True, dtype=np.float32)
    c = Tensor(np.full((2, 3), 5.0), dtype=np.float32)  # a constant: requires no grad
    y = (x * w + c).sum()
    text = viz.graph(y, names={"x": x, "w": w})
    nodes, edges = parse_dot(text)

    labels = sorted(label[0] for label in nodes.values())
    assert labels == ["Add", "Mul", "Sum", "constant", "output", "w", "x"]
    assert edges_by_label(text) == sorted([("x", "Mul"), ("w", "Mul"), ("Mul", "Add"), ("constant", "Add"),
                                           ("Add", "Sum"), ("Sum", "output")])
    by_first_line = {label[0]: label for label in nodes.values()}
    assert by_first_line["x"] == ["x", "requires grad", "(2, 3) float32"]
    assert by_first_line["w"] == ["w", "requires grad", "(3,) float32"]
    assert by_first_line["constant"] == ["constant", "(2, 3) float32"]
    assert by_first_line["output"] == ["output", "() float32"]
    # Edges carry the shape of the tensor that flows along them.
    edge_labels = {(nodes[a][0], nodes[b][0]): label for a, b, label in edges}
    assert edge_labels[("Mul", "Add")] == "(2, 3) float32 (input 0)"
    assert edge_labels[("Add", "Sum")] == "(2, 3) float32"
    assert edge_labels[("w", "Mul")] == "(3,) float32 (input 1)"


def test_graph_of_the_readme_feature_map():
    x = Tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], requires_grad=True)
    k = Tensor([[10, 20], [30, 40]], requires_grad=True)
    b = Tensor(0.0, requires_grad=True)
    loss = F.maxpool2d(F.correlate2d(x, k, mode="valid") + b, size=2).sum()
    nodes, edges = parse_dot(viz.graph(loss))
    ops = [label[0] for label in nodes.values() if len(label) == 1]
    assert "Correlate2d" in ops and "MaxPool2d" in ops and "Add" in ops and "Sum" in ops
    leaves = [label for label in nodes.values() if "requires grad" in label]
    assert sorted(label[-1] for label in leaves) == ["() float32", "(2, 2) float32", "(3, 3) float32"]
    assert len(edges) == len(nodes) - 1  # a tree: every tensor is used once


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    x = Tensor(np.ones(4), requires_grad=True)
    y = x * x
    text = viz.graph(y, names={"x": x})
    assert edges_by_label(text) == [("Mul", "output"), ("x", "Mul"), ("x", "Mul")]
    nodes, _ = parse_dot(text)
    assert [label[0] for label in nodes.values()].count("x") == 1


def test_graph_shows_dtypes_and_names_parameters():
    model = nn.Linear(3, 2, rng=0, dtype=np.float64)
    out = model(Tensor(np.ones((5, 3)), dtype=np.float64)).sum()
    nodes, _ = parse_dot(viz.graph(out, names=dict(model.named_parameters())))
    labels = {label[0]: label for label in nodes.values()}
    assert labels["weight"] == ["weight", "requires grad", "(2, 3) float64"]
    assert labels["bias"] == ["bias", "requires grad", "(2,) float64"]


def test_graph_of_a_leaf_and_after_backward():
    leaf = Tensor(np.zeros((2, 2)), requires_grad=True)
    nodes, edges = parse_dot(viz.graph(leaf))
    assert list(nodes.values()) == [["requires grad", "(2, 2) float64"]] and edges == []

    y = (leaf.exp() * 2).sum()
    before = viz.graph(y)
    y.backward()  # frees the saved arrays; the edges stay
    assert viz.graph(y) == before

    with pytest.raises(TypeError):
        viz.graph(np.zeros(3))


def test_graph_of_a_deep_chain_needs_no_recursion():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(3000):  # deeper than Python's recursion limit
        y = y * 1.0
    text = viz.graph(y)
    nodes, edges = parse_dot(text)
    assert sum(label == ["Mul"] for label in nodes.values()) == 3000
    assert len(edges) == 3000 + 3000 + 1  # each Mul: its input and a constant; then the output


def test_labels_are_escaped():
    x = Tensor(np.ones(2), requires_grad=True)
    text = viz.graph(x.sum(), names={'my "x"\\': x})
    assert 'label="my \\"x\\"\\\\\\nrequires grad' in text


# ---- render(): Graphviz -------------------------------------------------------------------------

def fake_dot(folder, script):
    """An executable named `dot` in `folder` running the given Python code."""
    folder.mkdir()
    dot = folder / "dot"
    dot.write_text(f"#!{sys.executable}\n" + textwrap.dedent(script))
    dot.chmod(0o755)
    return dot


def test_render_runs_dot_with_the_format_of_the_suffix(tmp_path, monkeypatch):
    fake_dot(tmp_path / "bin", """
        import json, sys
        out = sys.argv[sys.argv.index("-o") + 1]
        record = {"argv": sys.argv[1:], "stdin": sys.stdin.read()}
        open(out, "w").write("<svg>" + json.dumps(record) + "</svg>")
    """)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 3).sum()
    target = tmp_path / "graph.svg"
    assert viz.render(y, target) == target
    import json

    record = json.loads(target.read_text()[len("<svg>"):-len("</svg>")])
    assert record["argv"] == ["-Tsvg", "-o", str(target)]
    assert record["stdin"] == viz.graph(y)  # a Tensor is drawn through its graph()
    viz.render(viz.graph(y), tmp_path / "graph.png")
    assert json.loads((tmp_path / "graph.png").read_text()[5:-6])["argv"][0] == "-Tpng"


def test_render_reports_a_failing_dot(tmp_path, monkeypatch):
    fake_dot(tmp_path / "bin", """
        import sys
        sys.stderr.write("Error: syntax error in line 1")
        sys.exit(1)
    """)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(RuntimeError, match="syntax error in line 1"):
        viz.render("digraph {", tmp_path / "g.svg")


def test_render_without_graphviz_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "pygraphviz", None)  # import fails, installed or not
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError) as error:
        viz.render(x.sum(), tmp_path / "g.svg")
    message = str(error.value)
    assert "`dot` program" in message and "apt install graphviz" in message
    assert "pip install pygraphviz" in message
    assert not (tmp_path / "g.svg").exists()


def test_render_falls_back_to_pygraphviz(tmp_path, monkeypatch):
    """Without `dot` on PATH, the Python package pygraphviz (Graphviz's library) draws it."""
    calls = []

    class AGraph:
        def __init__(self, string):
            calls.append(("parse", string))

        def draw(self, path, format, prog):
            calls.append(("draw", path, format, prog))
            Path(path).write_text("<svg/>")

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "pygraphviz", type(sys)("pygraphviz"))
    sys.modules["pygraphviz"].AGraph = AGraph
    x = Tensor(np.ones(2), requires_grad=True)
    target = viz.render((x * x).sum(), tmp_path / "g.svg")
    assert target.read_text() == "<svg/>"
    assert calls == [("parse", viz.graph((x * x).sum())), ("draw", str(target), "svg", "dot")]


def test_render_checks_its_arguments(tmp_path):
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        viz.render(x.sum(), tmp_path / "g.jpeg")
    with pytest.raises(TypeError):
        viz.render(42, tmp_path / "g.svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_render_with_the_real_dot(tmp_path):
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    k = Tensor(np.ones((2, 2)), requires_grad=True)
    svg = viz.render(F.correlate2d(x, k).sum(), tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "Correlate2d" in svg


# ---- matplotlib is optional ---------------------------------------------------------------------

def test_core_and_viz_import_without_matplotlib():
    """In a fresh interpreter where matplotlib cannot be imported: the package and viz import,
    graph() works, and a picture is an ImportError that names the extra to install."""
    code = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        import numpy as np
        import tinygrad_cnn
        from tinygrad_cnn import Tensor, nn, viz
        x = Tensor(np.ones(2), requires_grad=True)
        assert "Mul" in viz.graph(x * x)
        try:
            viz.filters(nn.Conv2d(1, 2, 3), "never.png")
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("no ImportError")
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install -e '.[plot]'" in done.stdout
    assert not (REPO / "never.png").exists()


def test_importing_the_package_does_not_import_matplotlib():
    code = "import sys, tinygrad_cnn, tinygrad_cnn.viz; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ---- the pictures -------------------------------------------------------------------------------

@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib")


@pytest.fixture
def figures(monkeypatch):
    """Weak references to every figure viz makes, to check that none outlives its picture."""
    made = []
    original = viz._new_figure

    def tracking(*args, **kwargs):
        figure = original(*args, **kwargs)
        made.append(weakref.ref(figure))
        return figure

    monkeypatch.setattr(viz, "_new_figure", tracking)
    return made


def assert_freed(figures):
    gc.collect()
    assert figures and all(ref() is None for ref in figures), "every figure is freed after saving"
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # and pyplot never saw one


def test_filters_of_a_single_channel_layer(matplotlib, tmp_path, figures):
    conv = nn.Conv2d(1, 20, 5, rng=0)
    path = viz.filters(conv, tmp_path / "f.png")
    assert path == tmp_path / "f.png"
    # 20 kernels in 2 rows of 10, half an inch each: (10·0.5 + 1.5) x (2·0.5 + 0.75) inches.
    assert png_size(path) == (650, 175)
    first = pixels(path)
    assert_not_blank(first)
    # The colours are the weights: other weights, another picture; the same, the same bytes.
    viz.filters(nn.Conv2d(1, 20, 5, rng=1), tmp_path / "g.png")
    assert not np.array_equal(first, pixels(tmp_path / "g.png"))
    viz.filters(conv, tmp_path / "f2.png")
    assert (tmp_path / "f2.png").read_bytes() == path.read_bytes()
    assert_freed(figures)


def test_filters_show_each_kernel_in_its_own_cell(matplotlib, tmp_path):
    """A layer whose only non-zero weight is one kernel: the picture changes only in that cell,
    and flipping its sign turns red into blue."""
    conv = nn.Conv2d(1, 4, 3, rng=0)
    conv.weight.data[:] = 0
    conv.weight.data[2] = 1.0  # the third kernel, all positive
    positive = pixels(viz.filters(conv, tmp_path / "p.png", title=""))
    conv.weight.data[2] = -1.0
    negative = pixels(viz.filters(conv, tmp_path / "n.png", title=""))
    changed = np.argwhere(np.any(positive != negative, axis=2))
    assert len(changed) > 100
    # The changed pixels form one block (the kernel's cell), not the whole canvas.
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
    height, width = positive.shape[:2]
    assert (bottom - top) < height / 2 and (right - left) < width / 4
    block_p = positive[top:bottom + 1, left:right + 1].reshape(-1, 3).mean(axis=0)
    block_n = negative[top:bottom + 1, left:right + 1].reshape(-1, 3).mean(axis=0)
    assert block_p[0] > block_p[2] + 0.2 and block_n[2] > block_n[0] + 0.2  # red vs blue


def test_filters_of_a_multi_channel_layer(matplotlib, tmp_path):
    path = viz.filters(nn.Conv2d(3, 4, 3, rng=0), tmp_path / "f.png", dpi=60)
    # One row per input channel, one column per feature map: (4·0.5 + 1.5) x (3·0.5 + 0.75) in.
    assert png_size(path) == (210, 135)
    assert_not_blank(pixels(path))
    # Wider than 12 kernels: quarter-inch cells, (40·0.25 + 1.5) x (20·0.25 + 0.75) inches.
    assert png_size(viz.filters(nielsen_cnn()[3], tmp_path / "c2.png")) == (1150, 575)


def test_filters_check_their_arguments(matplotlib, tmp_path):
    with pytest.raises(TypeError, match="Conv2d"):
        viz.filters(nn.Linear(3, 2), tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"\.png"):
        viz.filters(nn.Conv2d(1, 2, 3), tmp_path / "f.jpg")
    assert list(tmp_path.iterdir()) == []


def digit(seed):
    """A blob-shaped 28x28 image, so the feature maps are not just noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    image = np.zeros((28, 28), np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(6, 22, 2)
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8)
    return image / image.max()


def test_feature_maps_of_nielsens_network(matplotlib, tmp_path, figures):
    model = nielsen_cnn(dropout=0.5, seed=0)
    path = viz.feature_maps(model, digit(0), tmp_path / "m.png")
    # 20 maps per row; bands: input 1 row, conv 1 and pool 1 one row of 20, conv 2 and pool 2
    # two rows of 20 (40 maps): width 20·0.5 + 1.75 in; height (1+1+1+2+2)·0.5 + 5·0.25 + 0.5 in.
    assert png_size(path) == (1175, 525)
    first = pixels(path)
    assert_not_blank(first)
    viz.feature_maps(model, digit(1), tmp_path / "other_digit.png")
    assert not np.array_equal(first, pixels(tmp_path / "other_digit.png"))
    viz.feature_maps(nielsen_cnn(seed=1), digit(0), tmp_path / "other_model.png")
    assert not np.array_equal(first, pixels(tmp_path / "other_model.png"))
    # Nothing recorded, and the model is back in training mode.
    assert all(p.grad is None for p in model.parameters()) and model[-2].training
    assert_freed(figures)


def test_feature_maps_take_every_image_shape(matplotlib, tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 3, 3, rng=0), nn.Sigmoid(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 5 * 5, 2, rng=0))
    image = digit(2)[:12, :12]
    paths = [viz.feature_maps(model, shaped, tmp_path / f"{i}.png")
             for i, shaped in enumerate([image, image[None], image[None, None], Tensor(image[None, None])])]
    assert len({p.read_bytes() for p in paths}) == 1
    # input (1 map), conv 1 + Sigmoid (3), max-pool 1 (3): 3 columns; three bands of one row.
    assert png_size(paths[0]) == (325, 275)
    with pytest.raises(ValueError, match="one image"):
        viz.feature_maps(model, np.zeros((2, 1, 12, 12)), tmp_path / "x.png")
    with pytest.raises(TypeError, match="Sequential"):
        viz.feature_maps(nn.Conv2d(1, 3, 3), image, tmp_path / "x.png")


HISTORY = {"loss": [0.31, 0.09, 0.05, 0.04], "test_accuracy": [0.975, 0.986, 0.989, 0.991],
           "step_loss": list(np.exp(-np.linspace(0, 4, 400)) + 0.03)}


def test_training_curves(matplotlib, tmp_path, figures):
    path = viz.training_curves(HISTORY, tmp_path / "c.png")
    assert png_size(path) == (900, 350)  # 9 x 3.5 inches
    first = pixels(path)
    assert_not_blank(first)
    worse = {**HISTORY, "test_accuracy": [0.5, 0.6, 0.7, 0.8]}
    assert not np.array_equal(first, pixels(viz.training_curves(worse, tmp_path / "w.png")))
    plain = {"loss": HISTORY["loss"], "test_accuracy": HISTORY["test_accuracy"]}  # no step_loss
    assert not np.array_equal(first, pixels(viz.training_curves(plain, tmp_path / "p.png")))
    assert png_size(viz.training_curves(HISTORY, tmp_path / "small.png", dpi=40)) == (360, 140)
    assert_freed(figures)


def test_training_curves_check_the_history(matplotlib, tmp_path):
    with pytest.raises(ValueError, match="test_accuracy"):
        viz.training_curves({"loss": [1.0]}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="same length"):
        viz.training_curves({"loss": [1.0, 0.5], "test_accuracy": [0.9]}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="same length"):
        viz.training_curves({"loss": [], "test_accuracy": []}, tmp_path / "c.png")
