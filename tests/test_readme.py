"""The code of README.md and docs/*.md runs and prints what they say it prints; their tables,
links, layout and pictures agree with the code and files they describe."""
import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
HOW_IT_WORKS = (DOCS / "how-it-works.md").read_text(encoding="utf-8")
REFERENCE = (DOCS / "reference.md").read_text(encoding="utf-8")
PERFORMANCE = (DOCS / "performance.md").read_text(encoding="utf-8")
PAGES = {ROOT / "README.md": README, DOCS / "how-it-works.md": HOW_IT_WORKS,
         DOCS / "reference.md": REFERENCE, DOCS / "performance.md": PERFORMANCE,
         DOCS / "results.md": (DOCS / "results.md").read_text(encoding="utf-8")}
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def test_docs_folder_holds_the_pages_tested_here():
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(p.name for p in PAGES if p.parent == DOCS)


def section(text, title_start):
    """The text of the `## ` section of `text` whose title starts with `title_start` (to the next `## `)."""
    (match,) = [m for m in re.finditer(r"^## (.*)$", text, flags=re.M) if m.group(1).startswith(title_start)]
    following = re.search(r"^## ", text[match.end():], flags=re.M)
    return text[match.end():match.end() + following.start() if following else len(text)]


def blocks(text):
    """(language, code) of every fenced block of `text`."""
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)


def cells(text):
    """(code, printed or None) for every python block of `text`; printed is the block that
    follows it after the word "prints"."""
    return re.findall(r"```python\n(.*?)```\n(?:prints\n```\n(.*?)```)?", text, flags=re.S)


def run(code, namespace, name):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), namespace)
    return out.getvalue()


# ---- code cells --------------------------------------------------------------------------------

def test_readme_is_short_and_starts_with_the_pitch():
    assert README.startswith("# tinygrad_cnn\n\nA small autograd framework")
    assert len(README.splitlines()) <= 300


def test_example_prints_what_the_readme_shows():
    ((code, printed),) = cells(section(README, "A feature map"))
    assert len([line for line in code.splitlines() if line.strip()]) <= 10  # a 10-line example
    assert printed and run(code, {}, "README example") == printed


def test_how_it_works_cells_run_in_order_and_print_what_the_page_shows():
    steps = re.findall(r"^### \d\. `([\w./]+)`", HOW_IT_WORKS, flags=re.M)
    assert steps == ["tensor.py", "function.py", "autograd.py", "ops/", "nn/", "optim/"]
    for step in steps:
        assert (ROOT / "tinygrad_cnn" / step).exists(), step
    namespace = {}
    found = cells(HOW_IT_WORKS)
    assert len(found) == len(steps)
    for number, (code, printed) in enumerate(found, 1):
        out = run(code, namespace, f"docs/how-it-works.md, cell {number}")
        assert printed, f"cell {number} shows what it prints"
        assert out == printed, f"cell {number}"


def test_testing_example_runs():
    (code,) = [code for lang, code in blocks(README) if lang == "python" and "@given" in code]
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
    (code,) = [code for lang, code in blocks(REFERENCE) if lang == "python" and "io.save(" in code]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace('"../shared/data/mnist"', repr(str(MNIST))), "docs/reference.md training", "exec"),
         namespace)
    assert (tmp_path / "checkpoint.safetensors").exists()
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


def test_op_table_lists_every_primitive():
    import tinygrad_cnn.ops as ops

    in_readme = table_rows(section(README, "The primitives"), r"`([A-Z]\w+)`")
    assert sorted(in_readme) == sorted(cls.__name__ for cls in ops.PRIMITIVES)


def test_op_table_is_the_one_in_ops():
    import tinygrad_cnn.ops as ops

    in_readme = table_rows(section(README, "The primitives"), r"`([A-Z]\w+)`")
    in_ops = table_rows(ops.__doc__, r"([A-Z]\w+)")
    assert in_readme == in_ops


def markdown_tables(text):
    """Every markdown table of `text` as a list of {header: cell} rows."""
    tables = []
    for table in re.findall(r"(?:^\|.*\|[ \t]*\n)+", text, flags=re.M):
        lines = [[cell.strip() for cell in line.strip()[1:-1].split("|")] for line in table.splitlines()]
        header, rows = lines[0], [row for row in lines[1:] if not set("".join(row)) <= set("-: ")]
        tables.append([dict(zip(header, row)) for row in rows])
    return tables


def training_rows(text):
    (table,) = [t for t in markdown_tables(text) if t and "options" in t[0]]
    return table


def train_mnist():
    spec = importlib.util.spec_from_file_location("train_mnist", ROOT / "examples" / "train_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["README.md", "docs/performance.md"])
def test_training_table_commands_are_valid(page):
    """Each row's options parse, and its epochs and data columns are what they ask for."""
    example = train_mnist()
    rows = training_rows(PAGES[ROOT / page])
    assert len(rows) == 3
    for row in rows:
        args = example.parse_args(shlex.split(row["options"].strip("`")))
        assert args.epochs == int(row["epochs"])
        assert args.fashion == (row["data"] == "Fashion-MNIST")
        accuracy = re.fullmatch(r"\*\*([\d.]+) %\*\*", row["test accuracy"])
        assert accuracy and 90 < float(accuracy.group(1)) < 100


def test_readme_and_performance_give_the_same_results():
    def results(text):
        return [(row["options"], row["test accuracy"]) for row in training_rows(text)]

    assert results(README) == results(PERFORMANCE)


# ---- layout and links --------------------------------------------------------------------------

def layout_tree():
    """{path: [listed children]} for every folder of the README's layout tree."""
    ((_, tree),) = blocks(section(README, "Layout"))
    folders, stack = {}, []
    for line in tree.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        del stack[depth:]
        path = "/".join(stack + [name.rstrip("/")])
        folders.setdefault("/".join(stack), []).append(name.rstrip("/"))
        if name.endswith("/"):
            folders.setdefault(path, [])
            stack.append(name.rstrip("/"))
    return folders


def test_layout_lists_the_package_files_that_exist():
    folders = layout_tree()
    for folder, children in folders.items():
        for child in children:
            assert (ROOT / folder / child).exists(), f"{folder}/{child} is in the README's layout but not on disk"
        if folder.startswith("tinygrad_cnn") and children:
            on_disk = sorted(p.name for p in (ROOT / folder).glob("*.py"))
            assert sorted(c for c in children if c.endswith(".py")) == on_disk, folder
    assert "tinygrad_cnn/backend" in folders


def slug(title):
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-")


@pytest.mark.parametrize("page", list(PAGES), ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page):
    text = PAGES[page]
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    for link in links:
        if re.match(r"\w+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link}"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {slug(h) for h in headings}, f"{page.name}: {link}"


# ---- pictures ----------------------------------------------------------------------------------

def pictures():
    found = []
    for page, text in PAGES.items():
        for a, b in re.findall(r"!\[[^\]]*\]\(([\w./]+\.(?:png|svg))\)|<img src=\"([\w./]+)\"", text):
            found.append((page.parent / (a or b)).resolve())
    return found


def test_pictures_exist_and_are_small():
    paths = pictures()
    assert len(paths) >= 4
    for path in paths:
        data = path.read_bytes()
        assert len(data) < 100_000, f"{path.name} is {len(data):,} bytes"
        if path.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert path.suffix == ".svg" and b"<svg" in data
    assert sum(p.stat().st_size for p in set(paths)) < 300_000


def test_graph_picture_is_the_example_graph():
    """docs/img/graph.svg was drawn from the first example's loss: each of its nodes is there."""
    from tinygrad_cnn import viz

    ((code, _),) = cells(section(README, "A feature map"))
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
