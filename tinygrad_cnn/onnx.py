"""ONNX export (``pip install -e ".[onnx]"``): a model's forward, traced in eval mode, as an ONNX graph.

`export` runs the forward on the example input and on one of another batch size and other values,
recording every primitive (its class, inputs, keyword parameters and node). From the output back
to the input, each primitive becomes one ONNX node or a small fixed group (Correlate2d a Conv,
MaxPool2d a MaxPool, Linear a Gemm, a pad a Pad, ...). What does not depend on the input --
parameters, buffers, what is computed from them alone (BatchNorm's eval-mode scale) -- becomes
initializers, under their state-dict names. The two runs tell the batch axis (dim 0, "batch": one
file runs at any batch size) and anything computed from the input outside the primitives (a
comparison such as ``x > 0``): that, like a primitive without an ONNX form, is an `ExportError`.
The core never imports onnx; `export` does, when called.
"""
from __future__ import annotations

import bisect
import numbers
import os
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn.function import set_grad_enabled, using_config
from tinygrad_cnn.io import _atomic_write
from tinygrad_cnn.tensor import Tensor

__all__ = ["export", "ExportError"]

MIN_OPSET, DEFAULT_OPSET, INT64_MIN = 18, 18, -2**63  # from opset 18 every reduction takes its axes as an input
UNARY = {"Neg", "Exp", "Log", "Sigmoid", "Tanh", "Erf", "Relu"}
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "MatMul"}


class ExportError(ValueError):
    """The model's forward has a step that `export` cannot write as ONNX."""


_Record = namedtuple("_Record", "fn inputs params ctx output")  # one primitive that ran; output: its array


class _Recorder(list):
    """``config.trace`` during the forward: `Function.apply` calls it after every primitive."""

    def __call__(self, fn: type, inputs: tuple[Tensor, ...], params: dict[str, Any], ctx: Any, output: Any) -> None:
        self.append(_Record(fn, tuple(inputs), dict(params), ctx, output))


def _full_index(index: Any, ndim: int) -> tuple[Any, ...]:
    """`index` as a tuple with its Ellipsis (or the axes it leaves out) written as full slices."""
    index = index if isinstance(index, tuple) else (index,)
    rest = (slice(None),) * (ndim - sum(e is not None and e is not Ellipsis for e in index))
    at = next((i for i, e in enumerate(index) if e is Ellipsis), None)
    return index + rest if at is None else index[:at] + rest + index[at + 1:]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    return type(a) is type(b) and a == b


class _Trace:
    """One run of the forward on `x`: `resolve(j, t)` says where input Tensor `t` of record j came from."""

    def __init__(self, model: Any, x: np.ndarray) -> None:
        # In grad mode, with an input that requires grad: the forward then takes the primitives'
        # path everywhere the input flows (cat, for one, joins constants without one).
        inp, self.records = Tensor(x, requires_grad=True), _Recorder()
        with set_grad_enabled(True), using_config("trace", self.records):
            self.out = model(inp)
        if not isinstance(self.out, Tensor):
            raise TypeError(f"export: the model must return one Tensor, got {type(self.out).__name__}")
        self.x, self.made, self.dynamic = inp.data, {}, []
        for i, r in enumerate(self.records):
            self.made.setdefault(id(r.output), []).append(i)
        for i, r in enumerate(self.records):  # (the records keep every output alive: ids stay unique)
            self.dynamic.append(any(self.resolve(i, t)[0] != "const" for t in r.inputs))

    def resolve(self, j: int, t: Tensor) -> tuple[str, Any]:
        """("input", None), ("node", i) for a record that depends on the input, or ("const", array)."""
        made = self.made.get(id(t.data), [])
        k = bisect.bisect_left(made, j) - 1  # the last record before j that made this array
        if k >= 0 and self.records[made[k]].output is t.data:
            i = made[k]
            return ("node", i) if self.dynamic[i] else ("const", self.records[i].output)
        return ("input", None) if t.data is self.x else ("const", t.data)


class _Graph:
    def __init__(self, one: _Trace, two: _Trace, names: dict[int, str]) -> None:
        self.one, self.two, self.param_names = one, two, names
        self.nodes: list[tuple[str, list[str], str, dict[str, Any]]] = []
        self.inits: dict[str, np.ndarray] = {}  # the initializers, by name
        self.const_names, self.value_names = {}, {}  # (id, dtype) -> initializer; record -> its output's name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        self.nodes.append((op, inputs, f"{op}_{len(self.nodes)}", attrs))
        return self.nodes[-1][2]

    def const(self, array: Any, name: str | None = None) -> str:
        array = np.asarray(array)
        key = (id(array), array.dtype.str)  # (every array named here stays alive in inits)
        if key not in self.const_names:
            name = name or f"const_{len(self.inits)}"
            while name in self.inits:
                name += "_"
            self.inits[name], self.const_names[key] = array, name
        return self.const_names[key]

    def ints(self, values: Any) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64))

    def reduce(self, op: str, x: str, axes: Any, keepdims: bool = True) -> str:
        return self.node(op, [x, self.ints(axes)], keepdims=int(keepdims))

    def value(self, j: int, slot: int, dtype: Any = None) -> str:
        """Input `slot` of record j, cast to `dtype` if given (a constant: the same in the other run)."""
        r = self.one.records[j]
        kind, what = self.one.resolve(j, r.inputs[slot])
        if kind == "const":
            kind2, what2 = self.two.resolve(j, self.two.records[j].inputs[slot])
            if kind2 != "const" or not _same(what, what2):
                raise ExportError(f"input {slot} of {r.fn.__name__} (op {j} of the forward) is computed from the "
                                  "model's input outside the recorded ops (a comparison such as x > 0, .numpy(), "
                                  "a new Tensor of its values): ONNX export needs every step to be a primitive")
            array = what if dtype is None else what.astype(dtype, copy=False)
            return self.const(array, self.param_names.get(id(what)) if array is what else None)
        name = "input" if kind == "input" else self.value_names[what]
        have = self.one.x.dtype if kind == "input" else self.one.records[what].output.dtype
        return name if dtype is None or np.dtype(dtype) == have else self.node("Cast", [name], to=np.dtype(dtype))

    def border(self, j: int) -> tuple[int, float] | None:
        """(k, v) where record j adds a border of constant v around IndexAdd k's scatter into zeros
        (a pad with another value than 0, as max pooling's −∞): the two are one Pad."""
        def find(trace: _Trace) -> tuple[int, float] | None:
            r = trace.records[j]
            for slot in (0, 1) if r.fn.__name__ == "Add" else ():
                (kind, k), (kind_c, c) = trace.resolve(j, r.inputs[slot]), trace.resolve(j, r.inputs[1 - slot])
                if kind == "node" and trace.records[k].fn.__name__ == "IndexAdd" and kind_c == "const" \
                        and c.shape == r.output.shape:
                    inner = np.zeros(c.shape, bool)
                    inner[trace.records[k].params["index"]] = True
                    outside = c[~inner]
                    if outside.size and (c[inner] == 0).all() and (outside == outside.flat[0]).all():
                        return k, float(outside.flat[0])
            return None
        one = find(self.one)
        return one if one is not None and one == find(self.two) else None

    def build(self) -> str:
        """Every record the output needs, lowered after those it reads; the name of the last node."""
        if [r.fn for r in self.one.records] != [r.fn for r in self.two.records]:
            raise ExportError("export: the forward ran other ops for another batch size or other values "
                              "(control flow that depends on the input): one ONNX graph cannot hold it")
        kind, last = self.one.resolve(len(self.one.records), self.one.out)
        if kind == "const":
            raise ExportError("export: the model's output does not depend on its input")
        seen, stack = set(), [] if kind == "input" else [(last, False)]
        while stack:
            j, expanded = stack.pop()
            if expanded:
                self.lower(j)
            elif j not in seen:
                seen.add(j)
                stack.append((j, True))
                fused = self.border(j)  # the border's Pad reads the IndexAdd's input
                for k, slot in [(fused[0], 0)] if fused else [(j, s) for s in range(len(self.one.records[j].inputs))]:
                    kind_i, i = self.one.resolve(k, self.one.records[k].inputs[slot])
                    if kind_i == "node" and i not in seen:
                        stack.append((i, False))
        return self.node("Identity", ["input" if kind == "input" else self.value_names[last]])

    def lower(self, j: int) -> None:
        """Emit record j's ONNX form; its output's name goes to value_names[j]."""
        r, r2 = self.one.records[j], self.two.records[j]
        name, p, dtype = r.fn.__name__, r.params, r.output.dtype
        x = (lambda slot=0, cast=dtype: self.value(j, slot, cast))
        fused = self.border(j)
        if fused or name == "IndexAdd":
            out = self.pad(*(fused or (j, 0.0)))
        elif name in BINARY:
            out = self.node(name, [x(0), x(1, None if name == "Pow" else dtype)])
        elif name in UNARY:
            out = self.node(name, [x()])
        elif name == "Silu":  # z·σ(z)
            out = self.node("Mul", [x(), self.node("Sigmoid", [x()])])
        elif name == "Cast":
            out = self.node("Cast", [x(0, None)], to=dtype)
        elif name == "Where":
            if not _same(p["condition"], r2.params["condition"]):
                raise ExportError(f"Where (op {j} of the forward) has a condition computed from the model's input "
                                  "outside the recorded ops (a comparison such as x > 0): it has no ONNX form here")
            out = self.node("Where", [self.const(np.asarray(p["condition"], bool)), x(0), x(1)])
        elif name in ("Sum", "Max"):
            out = self.reduce("Reduce" + name, x(), p["axis"], p["keepdims"]) if p["axis"] else x()
        elif name == "LogSoftmax" and len(p["axis"]) == 1:
            out = self.node("LogSoftmax", [x()], axis=int(p["axis"][0]))
        elif name == "LogSoftmax":  # over several axes: z − m − ln Σ e^(z − m)
            shifted = self.node("Sub", [x(), self.reduce("ReduceMax", x(), p["axis"])])
            total = self.reduce("ReduceSum", self.node("Exp", [shifted]), p["axis"])
            out = self.node("Sub", [shifted, self.node("Log", [total])])
        elif name in ("Reshape", "BroadcastTo"):
            out = self.reshape(j)
        elif name == "Transpose":
            out = self.node("Transpose", [x()], perm=[int(a) for a in p["axes"]])
        elif name == "Cat":
            out = self.node("Concat", [x(s) for s in range(len(r.inputs))], axis=int(p["axis"]))
        elif name == "GetItem":
            out = self.getitem(j)
        elif name == "Linear" and r.inputs[0].ndim == 2:
            out = self.node("Gemm", [x(s) for s in range(len(r.inputs))], transB=1)
        elif name == "Linear":
            out = self.node("MatMul", [x(0), self.node("Transpose", [x(1)], perm=[1, 0])])
            out = self.node("Add", [out, x(2)]) if len(r.inputs) == 3 else out
        elif name in ("Correlate2d", "Correlate2dGradX"):
            out = self.conv(j)
        elif name == "MaxPool2d" and r.inputs[0].ndim == 4:
            (top, bottom), (left, right) = p.get("padding", ((0, 0), (0, 0)))
            out = self.node("MaxPool", [x()], kernel_shape=list(p["size"]), strides=list(p["stride"]),
                            pads=[int(top), int(left), int(bottom), int(right)])
        elif name == "BatchNorm":  # batch statistics (a BatchNorm without running statistics, in eval mode)
            centred = self.node("Sub", [x(), self.reduce("ReduceMean", x(), p["axes"])])
            variance = self.reduce("ReduceMean", self.node("Mul", [centred, centred]), p["axes"])
            deviation = self.node("Sqrt", [self.node("Add", [variance, self.const(np.asarray(p["eps"], dtype))])])
            out = self.node("Add", [self.node("Mul", [self.node("Div", [centred, deviation]), x(1)]), x(2)])
        else:
            raise ExportError(f"{name} (op {j} of the forward) has no ONNX form in tinygrad_cnn.onnx"
                              + (" for a tensor that is not (N, C, H, W)" if name == "MaxPool2d" else ""))
        for key in p.keys() - {"shape", "x_shape", "index", "condition"}:  # (those differ with the batch)
            if not _same(p[key], r2.params.get(key)):
                raise ExportError(f"{name} (op {j} of the forward) has {key}={p[key]!r} for the example and "
                                  f"{r2.params.get(key)!r} for another input: one ONNX graph cannot hold both")
        self.value_names[j] = out

    def reshape(self, j: int) -> str:
        """Reshape (with -1 on the axis that grows with the batch) or BroadcastTo (Expand, with 1
        there: Expand broadcasts both ways, so the input's own batch size stays)."""
        r, r2 = self.one.records[j], self.two.records[j]
        shape, source, source2 = list(r.output.shape), r.inputs[0].shape, r2.inputs[0].shape
        grows = [d for d in range(len(shape)) if shape[d] != r2.output.shape[d]]
        if r.fn.__name__ == "Reshape":
            if len(grows) > 1 or 0 in shape:
                raise ExportError(f"Reshape (op {j}) to {tuple(shape)}: export handles one axis that grows with "
                                  "the batch, and no empty axis")
            return self.node("Reshape", [self.value(j, 0), self.ints([-1 if d in grows else n
                                                                      for d, n in enumerate(shape)])])
        for d in grows:
            back = d - (len(shape) - len(source))
            if back < 0 or source[back] != shape[d] or source2[back] != r2.output.shape[d]:
                raise ExportError(f"BroadcastTo (op {j}) broadcasts {source} to a shape of the batch's size "
                                  f"{tuple(shape)}: export needs the batch axis to come from the input")
            shape[d] = 1
        return self.node("Expand", [self.value(j, 0), self.ints(shape)])

    def conv(self, j: int) -> str:
        r = self.one.records[j]
        p, k = r.params, r.inputs[1].shape
        top, bottom, left, right = (int(v) for v in p["padding"])
        dilation = [int(v) for v in p.get("dilation", (1, 1))]
        attrs = dict(kernel_shape=list(k[2:]), strides=[int(v) for v in p["stride"]], group=int(p.get("groups", 1)))
        if dilation != [1, 1]:
            attrs["dilations"] = dilation
        kind, kernel = self.one.resolve(j, r.inputs[1])
        if r.fn.__name__ == "Correlate2d" and len(r.inputs) == 2 and k[:2] == (1, 1) and kind == "const" and \
                dilation == [1, 1] and \
                (kernel == kernel.dtype.type(1 / (k[2] * k[3]))).all() and (top, bottom, left, right) == (0,) * 4:
            return self.node("AveragePool", [self.value(j, 0)], kernel_shape=attrs["kernel_shape"],
                             strides=attrs["strides"])  # avg_pool2d: a uniform kernel over each plane
        inputs = [self.value(j, s, r.output.dtype) for s in range(len(r.inputs))]
        if r.fn.__name__ == "Correlate2dGradX":  # dx = dy ∗ k: a transposed convolution
            size = r.inputs[0].shape[2:]
            extra = [p["x_shape"][2 + i] - ((size[i] - 1) * attrs["strides"][i] + (k[2 + i] - 1) * dilation[i] + 1 - pads)
                     for i, pads in enumerate((top + bottom, left + right))]
            if min(top, bottom, left, right) < 0 or not all(0 <= e < s for e, s in zip(extra, attrs["strides"])):
                raise ExportError(f"Correlate2dGradX (op {j}) with padding {p['padding']} has no ConvTranspose form")
            return self.node("ConvTranspose", inputs, pads=[top, left, bottom, right], output_padding=extra, **attrs)
        if min(top, bottom, left, right) < 0:  # negative padding crops
            height, width = r.inputs[0].shape[2:]
            inputs[0] = self.node("Slice", [inputs[0], self.ints([max(-top, 0), max(-left, 0)]),
                                            self.ints([height - max(-bottom, 0), width - max(-right, 0)]),
                                            self.ints([2, 3])])
        return self.node("Conv", inputs, pads=[max(top, 0), max(left, 0), max(bottom, 0), max(right, 0)], **attrs)

    def pad(self, j: int, value: float) -> str:
        """IndexAdd j (its input added into zeros at a slice of step 1 per axis): a Pad with `value`."""
        pads = []
        for trace in (self.one, self.two):
            r = trace.records[j]
            spans = [part.indices(n) if isinstance(part, slice) else (0, 0, 0)
                     for part, n in zip(_full_index(r.params["index"], len(r.output.shape)), r.output.shape)]
            if any(step != 1 for _, _, step in spans) or tuple(b - a for a, b, _ in spans) != r.inputs[0].shape:
                raise ExportError(f"IndexAdd (op {j}) at {r.params['index']!r} is a scatter, not a constant padding: "
                                  "it has no ONNX form")
            pads.append([a for a, _, _ in spans] + [n - b for (_, b, _), n in zip(spans, r.output.shape)])
        if pads[0] != pads[1]:
            raise ExportError(f"IndexAdd (op {j}) pads the batch axis, or pads by an amount that depends on the input")
        dtype = self.one.records[j].output.dtype
        return self.node("Pad", [self.value(j, 0, dtype), self.ints(pads[0]), self.const(np.asarray(value, dtype))])

    def getitem(self, j: int) -> str:
        """GetItem j as Slice (slices), Gather (ints, or one integer array) and Unsqueeze (None)."""
        r, r2 = self.one.records[j], self.two.records[j]
        shapes = (r.inputs[0].shape, r2.inputs[0].shape)
        index = [_full_index(i, len(shape)) for i, shape in zip((r.params["index"], r2.params["index"]), shapes)]
        slices, gathers, new_axes, axis, position = [], [], [], 0, 0
        for a, b in zip(*index):
            if a is None:
                new_axes.append(position)
                position += 1
            elif isinstance(a, slice):
                sizes = (shapes[0][axis], shapes[1][axis])
                spans = (a.indices(sizes[0]), b.indices(sizes[1]))
                if spans[0] != spans[1] and (sizes[0] == sizes[1] or spans != ((0, sizes[0], 1), (0, sizes[1], 1))):
                    raise ExportError(f"GetItem (op {j}) slices the batch axis, or by amounts that depend on the input")
                if spans[0] != (0, sizes[0], 1):
                    start, stop, step = spans[0]
                    slices.append((axis, start, INT64_MIN if stop < 0 else stop, step))
                axis, position = axis + 1, position + 1
            elif isinstance(a, (numbers.Integral, np.ndarray)) and not isinstance(a, bool) and \
                    np.asarray(a).dtype.kind in "iu" and _same(np.asarray(a), np.asarray(b)):
                gathers.append((axis, np.asarray(a, np.int64)))
                axis, position = axis + 1, position + np.ndim(a)
            else:
                raise ExportError(f"GetItem (op {j}) at {r.params['index']!r}: export handles slices, None, ints "
                                  "and one integer array that does not depend on the input")
        if len(gathers) > 1 and any(np.ndim(g) for _, g in gathers):
            raise ExportError(f"GetItem (op {j}) at {r.params['index']!r} mixes integer arrays with other integers")
        out = self.value(j, 0)
        if slices:
            axes, starts, stops, steps = zip(*slices)
            out = self.node("Slice", [out, self.ints(starts), self.ints(stops), self.ints(axes), self.ints(steps)])
        for gather_axis, indices in sorted(gathers, key=lambda g: -g[0]):  # the last axis first
            out = self.node("Gather", [out, self.const(indices)], axis=gather_axis)
        return self.node("Unsqueeze", [out, self.ints(new_axes)]) if new_axes else out


def export(model: Any, example_input: Any, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET) -> Any:
    """Write `model`'s forward, traced in eval mode on `example_input` (an (N, ...) float array or
    Tensor), as an ONNX file at `path`; return the ``onnx.ModelProto``. Its input is "input" (dim 0
    named "batch": any batch size runs), its output "output"; parameters and buffers are
    initializers under their state-dict names. The model's training flag is restored afterwards.
    Raises ExportError for a step without an ONNX form, naming it."""
    if not callable(model):
        raise TypeError(f"export: model must be a Module (or a function of one Tensor), got {type(model).__name__}")
    x = example_input.data if isinstance(example_input, Tensor) else example_input
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64) or x.ndim < 1 or not len(x):
        raise TypeError("export: example_input must be a float32 or float64 array or Tensor of shape (N, ...) with "
                        f"N >= 1, got {type(example_input).__name__} {getattr(x, 'dtype', '')} {np.shape(x)}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export: path must be a str or os.PathLike, got {type(path).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"export: opset must be an int >= {MIN_OPSET}, got {opset!r}")
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"export: the folder {Path(path).parent} of {path} does not exist")
    other = (np.concatenate([x[::-1], x[:1]]) * 1.5 + 0.25).astype(x.dtype)  # another batch size, other values
    training = getattr(model, "training", None)
    if training is not None:
        model.eval()
    try:
        one, two = _Trace(model, x), _Trace(model, other)
    finally:
        if training is not None:
            model.train(training)
    graph = _Graph(one, two, {id(t.data): n for n, t in getattr(model, "_named_tensors", lambda: ())()})
    graph.build()
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("tinygrad_cnn.onnx.export needs the onnx package: pip install 'tinygrad_cnn[onnx]'") from None
    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"export: opset {opset} is newer than this onnx package's {onnx.defs.onnx_opset_version()}")
    elem = helper.np_dtype_to_tensor_dtype
    nodes = [helper.make_node(op, inputs, [name], name=name,
                              **{k: elem(v) if isinstance(v, np.dtype) else v for k, v in attrs.items()})
             for op, inputs, name, attrs in graph.nodes]
    nodes[-1].output[0] = "output"
    out_shape = [d if d == e else "batch" for d, e in zip(one.out.shape, two.out.shape)]
    proto = helper.make_model(
        helper.make_graph(nodes, "tinygrad_cnn",
                          [helper.make_tensor_value_info("input", elem(x.dtype), ["batch", *x.shape[1:]])],
                          [helper.make_tensor_value_info("output", elem(one.out.dtype), out_shape)],
                          [numpy_helper.from_array(np.asarray(a), n) for n, a in graph.inits.items()]),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="tinygrad_cnn",
        ir_version=helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))
    onnx.checker.check_model(proto)
    _atomic_write(Path(path), lambda file: file.write(proto.SerializeToString()))  # temporary file, fsync, rename
    return proto
