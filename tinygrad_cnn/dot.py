"""The computation graph behind a tensor as Graphviz DOT text (`graph`), and its drawing to SVG,
PNG or PDF with Graphviz (`render`); ``tinygrad_cnn.viz`` re-exports both."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tinygrad_cnn.autograd import toposort
from tinygrad_cnn.function import Context
from tinygrad_cnn.tensor import Tensor

GRAPHVIZ_MISSING = (
    "rendering a graph needs Graphviz, and neither of its two routes is installed here: "
    "(1) the `dot` program on PATH (the Graphviz package: `apt install graphviz`, "
    "`brew install graphviz` or `conda install graphviz`), or (2) the Python package pygraphviz "
    "(`pip install pygraphviz`, built against Graphviz's library). Without either, the DOT text "
    "of viz.graph() can be pasted into any Graphviz viewer."
)


def _shape_text(shape: tuple[int, ...], dtype: Any) -> str:
    return f"{tuple(int(n) for n in shape)} {np.dtype(dtype).name}"


def _quote(text: str) -> str:
    """A DOT string literal (a newline becomes DOT's centred line break)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph(tensor: Tensor, names: Mapping[str, Tensor] | None = None) -> str:
    """The graph that computed `tensor`, as Graphviz DOT text (``digraph``), inputs at the top.

    Nodes: one box per op (its `Function` class name, e.g. ``Correlate2d``); one ellipse per leaf
    that requires grad (blue, "requires grad", its shape and dtype); one grey note per constant
    input (an input that requires no grad, so autograd never sends it a gradient); one green
    ellipse for `tensor` itself. Edges follow the forward pass, input -> op -> op, each labelled
    with the shape and dtype of the tensor it carries. A tensor used twice has one node and two
    edges. `names` labels the leaves and the output, e.g. ``names=dict(model.named_parameters())``.

    The walk is autograd's own topological sort (an explicit stack), so graphs of any depth
    work. It reads only the graph's edges, so it also works after ``backward()`` freed the
    saved arrays. Render the text with `render`.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph() takes a Tensor, got {type(tensor).__name__}")
    label_of = {id(t): name for name, t in (names or {}).items()}

    def tensor_label(t: Tensor, role: str) -> str:
        name = label_of.get(id(t))
        return "\n".join(([name] if name else []) + [role, _shape_text(t.shape, t.dtype)])

    lines = ["digraph tinygrad_cnn {",
             '  graph [rankdir=TB, ordering=in, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    output_id = "output"
    if tensor._ctx is None:  # a leaf: the graph is the tensor alone
        role = "requires grad" if tensor.requires_grad else "constant"
        lines.append(f"  {output_id} [label={_quote(tensor_label(tensor, role))}, shape=ellipse, "
                     'style=filled, fillcolor="#c7e9c0"];')
        return "\n".join(lines + ["}"]) + "\n"

    order: list[Context] = toposort([tensor._ctx])  # every node after the nodes feeding it
    op_ids = {id(node): f"op{i}" for i, node in enumerate(order)}
    leaf_ids: dict[int, str] = {}
    constants = 0
    for node in order:
        lines.append(f"  {op_ids[id(node)]} [label={_quote(node.fn.__name__)}, shape=box, "
                     'style="rounded,filled", fillcolor="#f0f0f0"];')
    edges: list[str] = []
    for node in order:
        for position, (source, shape, dtype) in enumerate(node.edges):
            if isinstance(source, Context):
                source_id = op_ids[id(source)]
            elif isinstance(source, Tensor):  # a leaf that requires grad
                source_id = leaf_ids.get(id(source), "")
                if not source_id:
                    source_id = leaf_ids[id(source)] = f"leaf{len(leaf_ids)}"
                    lines.append(f"  {source_id} [label={_quote(tensor_label(source, 'requires grad'))}, "
                                 'shape=ellipse, style=filled, fillcolor="#c6dbef"];')
            else:  # None: a constant, of which the node kept only the shape and dtype
                source_id = f"const{constants}"
                constants += 1
                label = _quote("constant\n" + _shape_text(shape, dtype))
                lines.append(f'  {source_id} [label={label}, shape=note, fontcolor="#777777", color="#999999"];')
            label = _shape_text(shape, dtype) + (f" (input {position})" if len(node.edges) > 1 else "")
            edges.append(f"  {source_id} -> {op_ids[id(node)]} [label={_quote(label)}];")
    lines.append(f"  {output_id} [label={_quote(tensor_label(tensor, 'output'))}, shape=ellipse, "
                 'style=filled, fillcolor="#c7e9c0"];')
    edges.append(f"  {op_ids[id(tensor._ctx)]} -> {output_id};")
    return "\n".join(lines + edges + ["}"]) + "\n"


def render(dot: str | Tensor, path: str | os.PathLike[str], timeout: float = 60.0) -> Path:
    """Draw a graph (DOT text from `graph`, or a Tensor, whose graph is drawn) to `path`; the
    suffix picks the format (``.svg``, ``.png``, ``.pdf``). Uses the Graphviz ``dot`` program
    when it is on PATH, else the Python package pygraphviz; with neither, a RuntimeError says
    how to install one. Returns the path."""
    text = graph(dot) if isinstance(dot, Tensor) else dot
    if not isinstance(text, str):
        raise TypeError(f"render() takes DOT text or a Tensor, got {type(dot).__name__}")
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render(): the path must end in .svg, .png or .pdf, got {str(path)!r}")
    program = shutil.which("dot")
    if program is not None:
        try:
            done = subprocess.run([program, f"-T{fmt}", "-o", str(target)], input=text, text=True,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"Graphviz `dot` ({program}) did not finish in {timeout:g} s") from None
        if done.returncode != 0:
            raise RuntimeError(f"Graphviz `dot` ({program}) failed with exit status {done.returncode}: "
                               f"{done.stderr.strip()}")
        return target
    try:
        import pygraphviz
    except ImportError:
        raise RuntimeError(GRAPHVIZ_MISSING) from None
    pygraphviz.AGraph(string=text).draw(str(target), format=fmt, prog="dot")
    return target
