"""Trace an ONNX model into an analysis graph, on shapes only.

The model's first input gets the shape asked for and the nodes are read in their (topological)
order. A node that reads data derived from that input becomes a node of the graph
(:mod:`convarith.analysis.graph`), named after the ONNX node; its output shapes come from ONNX's
own shape inference, node by node (``onnx.shape_inference.infer_node_outputs``), so a merge of
mismatched shapes — which whole-model inference refuses — is recorded and the trace goes on with
every input cropped to the smallest, as the PyTorch tracer does.

Every other tensor is a constant: initializers, ``Constant`` nodes, and what is computed from
them and from the *shapes* of data (``Shape → Gather → Sub → Div → Slice``: a U-Net's computed
crop). Nothing runs on data; the small constant computations are evaluated (with ONNX's
reference evaluator, one node at a time, cached) as they come, large ones (a weight transposed or
dequantised) only if an operation needs their values. ``Pad`` pads, ``Slice`` bounds, ``Resize``
scales or sizes, ``Reshape`` shapes and reduction axes are read from those values.

The operations, in the graph's terms:

- ``Conv``, ``ConvTranspose``, ``MaxPool``, ``AveragePool`` → ``layer`` (read by
  :func:`convarith.frameworks.onnx.from_native`'s rules: ``auto_pad``, ``output_shape`` …);
  ``GlobalAveragePool`` and the ``Reduce*`` family → ``reduce``;
- ``Pad`` → ``pad``; ``Slice`` → a ``slice`` per sliced axis; ``Split`` → slices; ``Gather`` of a
  constant scalar index → ``select``; ``Resize`` / ``Upsample`` → ``resize`` with ONNX's rule per
  resized axis; ``DepthToSpace`` / ``SpaceToDepth`` → ``pixel_shuffle`` / ``pixel_unshuffle``;
- arithmetic of two tensors that depend on the input → ``merge``, with constants →
  ``elementwise``, as are activations and normalisations; ``Concat`` → ``concat``;
- ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze`` → ``reshape``; ``Transpose`` →
  ``permute``; ``Gemm`` / ``MatMul`` with a constant factor → ``linear``;
- anything else → ``unknown`` (``what="onnx.OpType"``).

What exporters write out is read back whole: PyTorch's ``F.pad(mode="circular")`` (slices of one
tensor concatenated along an axis) becomes one circular ``pad``, and ``pixel_unshuffle`` (``Reshape
→ Transpose → Reshape``, also a DCR or CRD pixel shuffle so written) one ``pixel_unshuffle``. Where
ONNX shape inference and the runtimes disagree, the runtimes win: a ``ceil_mode`` pool's last window
that would start past the input and its padding is dropped (onnxruntime, the reference evaluator
and PyTorch drop it; onnx 1.23's shape inference keeps it). A ``Resize`` scale is read as the simple
fraction a float32 stands for (``0.4``, not ``0.4000000059604645``), which is what onnxruntime's
float32 arithmetic rounds to; where onnxruntime departs from the specification (a copy when the
size does not change, output sizes computed in float32), the analysis follows the specification
(``tests/test_analysis_onnx.py`` pins each case down).

``parameters`` of a node: the elements of the initializers it reads as operands (a weight, a bias,
a scale; not the integer tensors, not a ``Resize``'s scales or a ``Pad``'s pads, not a batch
norm's running statistics), each counted at its first use.

>>> import numpy as np
>>> from onnx import TensorProto, helper, numpy_helper
>>> w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
>>> nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1]),
...          helper.make_node("Relu", ["c"], ["y"], name="relu")]
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> model = helper.make_model(helper.make_graph(nodes, "net", [x], [y], [w]))
>>> g = trace(model, (1, 3, 32, 32))
>>> [(n.name, n.op, n.shape, n.parameters) for n in g.nodes]
[('x', 'input', (1, 3, 32, 32), 0), ('conv', 'layer', (1, 8, 16, 16), 216), ('relu', 'elementwise', (1, 8, 16, 16), 0)]
"""

from __future__ import annotations

import itertools
import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..analysis.graph import Graph, Op
from ..analysis.maps import Resize
from ..errors import ConvArithError
from .onnx import _attrs, _node_layer

__all__ = ["trace"]

VALUE_LIMIT = 4096
"""Constants of at most this many elements are evaluated as they come (and given to shape inference)."""

_ELEMENTWISE = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu",
    "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Shrink", "Swish", "Clip", "Exp", "Log", "Sqrt", "Reciprocal",
    "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
    "Asinh", "Acosh", "Atanh", "Erf", "Not", "IsNaN", "IsInf", "Identity", "Dropout", "Cast", "CastLike",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "RMSNormalization", "MeanVarianceNormalization", "LRN", "QuantizeLinear", "DequantizeLinear", "Trilu",
    "BitwiseNot",
    # with two or more inputs that depend on the input: merges
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "And", "Or", "Xor", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
}  # fmt: skip
_BROADCASTING = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "PRelu", "And", "Or", "Xor", "Equal",
    "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
}  # fmt: skip
_REDUCE = {
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare",
}  # fmt: skip
_ALONG_AXIS = {"Softmax", "LogSoftmax", "Hardmax", "LpNormalization", "CumSum"}
_GLOBAL = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
_LAYERS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}
_COORDINATES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
_PAD_MODE = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
_CONFIG = {
    # inputs that configure an operation (not operands whose elements are parameters)
    "Resize": {1, 2, 3}, "Upsample": {1}, "Pad": {1, 2, 3}, "Slice": {1, 2, 3, 4}, "Reshape": {1}, "Expand": {1},
    "Tile": {1}, "Squeeze": {1}, "Unsqueeze": {1}, "Split": {1}, "Clip": {1, 2}, "TopK": {1}, "Gather": {1},
    "CumSum": {1}, "Dropout": {1, 2}, "BatchNormalization": {3, 4}, **{op: {1} for op in _REDUCE},
}  # fmt: skip
_NOT_PARAMETERS = {6, 7, 8, 9}  # INT32, INT64, STRING, BOOL
_LOADED: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
_EVALUATORS: OrderedDict[tuple[bytes, tuple[tuple[str, int], ...]], Any] = OrderedDict()


class _Unknown(Exception):
    """An operation the graph cannot express: it becomes an ``unknown`` node with this description."""


Shape = tuple[int, ...]
_Step = tuple[str, str, Shape, str, dict[str, object]]
"""A deferred node: label, source, shape, its input (the first step's), params."""


@dataclass
class _Call:
    """One ONNX node that reads data, as the handlers see it."""

    node: Any
    label: str
    op: str
    source: str
    attrs: dict[str, Any]
    inputs: list[str]
    """The node's inputs (``""``: an omitted optional one)."""
    shapes: list[Shape | None]
    """Each input's shape (``None``: omitted or unknown)."""
    outs: list[Shape | None]
    """Each output's shape, by shape inference."""
    data: list[str]
    """The graph nodes of the inputs that depend on the model's input, in order."""
    parameters: int = 0
    mismatch: list[Shape] | None = None

    @property
    def x(self) -> Shape:
        shape = self.shapes[0]
        assert shape is not None
        return shape

    @property
    def y(self) -> Shape:
        shape = self.outs[0]
        assert shape is not None
        return shape


def _numel(shape: Iterable[int]) -> int:
    return math.prod(int(d) for d in shape)


def _load(model: object) -> Any:
    """The ``ModelProto`` of a model or an ``.onnx`` file (files cached by path, time and size; local
    functions inlined)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        proto = model
        if proto.functions:
            from onnx import inliner

            proto = inliner.inline_local_functions(proto)
        return proto
    if not isinstance(model, (str, os.PathLike)):
        raise ConvArithError("model", "must be an onnx.ModelProto or a path to an .onnx file", type(model).__name__)
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ConvArithError("model", "must be an existing .onnx file", path)
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    try:
        proto = onnx.load(path)
    except Exception as err:
        raise ConvArithError("model", "must be a readable ONNX file", f"{path}: {err}") from err
    if proto.functions:
        from onnx import inliner

        proto = inliner.inline_local_functions(proto)
    _LOADED[key] = proto
    while len(_LOADED) > 2:
        _LOADED.popitem(last=False)
    return proto


def _snap(scale: float) -> float:
    """A float32 scale as the simple fraction it stands for (``0.4`` for ``0.4000000059604645``),
    where one is within float32's precision (as onnxruntime's float32 arithmetic finds it)."""
    nice = Fraction(scale).limit_denominator(1000)
    return float(nice) if abs(float(nice) - scale) <= 1e-6 * abs(scale) else scale


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _subgraph_names(node: Any) -> set[str]:
    """The tensor names the node's subgraphs (``If``, ``Loop``, ``Scan`` bodies) read."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.HasField("g") else []
        graphs += list(attr.graphs)
        for g in graphs:
            for inner in g.node:
                names.update(i for i in inner.input if i)
                names |= _subgraph_names(inner)
    return names


class _Tracer:
    def __init__(self, model: Any, input_shape: Sequence[int], channels_last: bool) -> None:
        import onnx

        self.onnx = onnx
        self.model = model
        g = model.graph
        self.opsets = {(imp.domain if imp.domain != "ai.onnx" else ""): int(imp.version) for imp in model.opset_import}
        self.inits = {t.name: t for t in g.initializer}
        self.types: dict[str, tuple[int, Shape | None]] = {}
        self.values: dict[str, np.ndarray[Any, Any]] = {}
        self.pending: dict[str, Any] = {}
        self.data: dict[str, str] = {}
        self.origins: dict[str, frozenset[str]] = {}
        self.counted: set[str] = set()
        self.graph = Graph()
        self.outputs = {o.name for o in g.output}
        self.used: set[str] = set(self.outputs)
        self.consumers: dict[str, list[Any]] = {}
        self.deferred: dict[str, tuple[str, int, list[_Step], Shape]] = {}
        """A pixel (un)shuffle written out, under way: kind, factor, the steps so far, the final shape."""
        for node in g.node:
            self.used.update(i for i in node.input if i)
            self.used |= _subgraph_names(node)
            for i in dict.fromkeys(node.input):
                if i:
                    self.consumers.setdefault(i, []).append(node)
        for name, init in self.inits.items():
            self.types[name] = (int(init.data_type), tuple(int(d) for d in init.dims))
            if int(init.data_type) not in _NOT_PARAMETERS:
                self.origins[name] = frozenset((name,))
        inputs = [i for i in g.input if i.name not in self.inits]
        if not inputs:
            raise ConvArithError("model", "must have an input that is not an initializer", 0)
        self._input(inputs[0], input_shape, channels_last)
        for other in inputs[1:]:
            tensor = other.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if not tensor.HasField("shape") or None in dims:
                raise ConvArithError(
                    "model", "must give a static shape to every input but the first", f"{other.name} {dims}"
                )
            self.types[other.name] = (int(tensor.elem_type), tuple(int(d) for d in dims if d is not None))

    def _input(self, info: Any, input_shape: Sequence[int], channels_last: bool) -> None:
        shape = tuple(input_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
            raise ConvArithError("input_shape", "must be positive integers", shape)
        shape = tuple(int(s) for s in shape)
        tensor = info.type.tensor_type
        if tensor.HasField("shape") and len(tensor.shape.dim) != len(shape):
            raise ConvArithError(
                "input_shape", f"must have the rank of the model's input {info.name} ({len(tensor.shape.dim)})", shape
            )
        self.shape = shape
        self.types[info.name] = (int(tensor.elem_type) or 1, shape)
        if not channels_last:
            self.data[info.name] = self.graph.add(info.name, "input", (), shape, source="input")
            return
        if len(shape) < 3:
            raise ConvArithError("input_shape", "must have a channel and a spatial axis with channels_last", shape)
        first = (shape[0], shape[-1], *shape[1:-1])
        name = self.graph.add(info.name, "input", (), first, source="input")
        order = (0, *range(2, len(shape)), 1)
        self.data[info.name] = self.graph.add(f"{info.name}.channels_last", "permute", (name,), shape, order=order)

    # -- constants --------------------------------------------------------------------------------

    def value(self, name: str) -> np.ndarray[Any, Any] | None:
        """A constant tensor's value (``None``: omitted, dependent on the input, or not computable)."""
        if not name or name in self.data:
            return None
        if name in self.values:
            return self.values[name]
        if name in self.inits:
            from onnx import numpy_helper

            array = np.asarray(numpy_helper.to_array(self.inits[name]))
            self.values[name] = array
            return array
        node = self.pending.pop(name, None)
        if node is None:
            return None
        self._evaluate(node)
        return self.values.get(name)

    def _cheap(self, name: str) -> bool:
        if name in self.values:
            return True
        if name in self.inits:
            return _numel(self.inits[name].dims) <= VALUE_LIMIT
        return False

    def _evaluate(self, node: Any) -> bool:
        """Compute a constant node's outputs (the reference evaluator, cached per node); False if it cannot."""
        inputs = [self.value(i) if i else None for i in node.input]
        if any(v is None for i, v in zip(node.input, inputs, strict=True) if i):
            return False
        try:
            outputs = self._run(node, {i: v for i, v in zip(node.input, inputs, strict=True) if i})
        except Exception:
            return False
        for name, out in zip(node.output, outputs, strict=False):
            if name:
                self._store(name, np.asarray(out))
        return True

    def _run(self, node: Any, feeds: dict[str, Any]) -> list[Any]:
        domain = node.domain if node.domain != "ai.onnx" else ""
        key = (node.SerializeToString(), tuple(sorted(self.opsets.items())))
        evaluator = _EVALUATORS.get(key)
        if evaluator is None:
            from onnx.reference import ReferenceEvaluator

            evaluator = ReferenceEvaluator(node, opsets={domain: self.opsets.get(domain, 1), **self.opsets})
            _EVALUATORS[key] = evaluator
            while len(_EVALUATORS) > 512:
                _EVALUATORS.popitem(last=False)
        else:
            _EVALUATORS.move_to_end(key)
        return list(evaluator.run(None, feeds))

    def _store(self, name: str, array: np.ndarray[Any, Any]) -> None:
        from onnx import helper

        self.values[name] = array
        try:
            elem = int(helper.np_dtype_to_tensor_dtype(array.dtype))
        except Exception:
            elem = 0
        self.types[name] = (elem, tuple(int(d) for d in array.shape))

    def _constant(self, node: Any) -> None:
        """A node that reads no data: its values now when they are cheap, else on demand."""
        op = node.op_type
        attrs = _attrs(node)
        sources = [i for i in node.input if i]
        if op not in ("Shape", "Size"):
            origin = frozenset().union(*(self.origins.get(i, frozenset()) for i in sources))
            for out in node.output:
                self.origins[out] = origin
        if op == "Constant" and not node.domain:
            array = self._constant_value(attrs)
            if array is not None:
                self._store(node.output[0], array)
                return
        if op in ("Shape", "Size") and not node.domain:
            known = self.types.get(node.input[0], (0, None))[1]
            if known is not None:
                shape = list(known)
                if op == "Shape":
                    lo, hi = int(attrs.get("start", 0)), attrs.get("end")
                    self._store(node.output[0], np.array(shape[lo : None if hi is None else int(hi)], np.int64))
                else:
                    self._store(node.output[0], np.array(_numel(shape), np.int64))
                return
        nested = any(a.HasField("g") or len(a.graphs) for a in node.attribute)
        if not nested and all(self._cheap(i) for i in sources) and self._evaluate(node):
            return
        for name in node.output:
            if name:
                self.pending[name] = node
        try:
            types = self._infer(node, {i: self.types[i] for i in sources if i in self.types})
        except Exception:
            types = {}
        for name, t in types.items():
            self.types[name] = t

    @staticmethod
    def _constant_value(attrs: dict[str, Any]) -> np.ndarray[Any, Any] | None:
        from onnx import TensorProto, numpy_helper

        if isinstance(attrs.get("value"), TensorProto):
            return np.asarray(numpy_helper.to_array(attrs["value"]))
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
            if key in attrs:
                return np.array(attrs[key], dtype)
        for key in ("value_int", "value_ints"):
            if key in attrs:
                return np.array(attrs[key], np.int64)
        return None

    # -- shapes -----------------------------------------------------------------------------------

    def _infer(self, node: Any, types: dict[str, tuple[int, Shape | None]]) -> dict[str, tuple[int, Shape | None]]:
        """The node's output types by ONNX shape inference, given its inputs' types (and the values
        of its small constant inputs)."""
        onnx = self.onnx
        from onnx import helper, numpy_helper

        domain = node.domain if node.domain != "ai.onnx" else ""
        schema = onnx.defs.get_schema(node.op_type, self.opsets.get(domain, 1), domain)
        protos = {
            name: helper.make_tensor_type_proto(elem, None if shape is None else list(shape))
            for name, (elem, shape) in types.items()
        }
        values = {}
        for name in node.input:
            if name and name not in self.data and name in self.values and self.values[name].size <= VALUE_LIMIT:
                try:
                    values[name] = numpy_helper.from_array(self.values[name], name)
                except Exception:  # a dtype ONNX cannot hold
                    continue
        opsets = [helper.make_opsetid(d, v) for d, v in self.opsets.items()]
        inferred = onnx.shape_inference.infer_node_outputs(schema, node, protos, values, opset_imports=opsets)
        out: dict[str, tuple[int, Shape | None]] = {}
        for name, proto in inferred.items():
            tensor = proto.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            shape = (
                None if not tensor.HasField("shape") or None in dims else tuple(int(d) for d in dims if d is not None)
            )
            out[name] = (int(tensor.elem_type), shape)
        return out

    def _fit(
        self, node: Any, data_inputs: Sequence[int]
    ) -> tuple[dict[str, tuple[int, Shape | None]], list[Shape] | None]:
        """Inputs of a merge (or a concatenation) whose shapes disagree, other than by broadcasting,
        cropped to the smallest on each axis; and the shapes that disagreed."""
        names = [i for i in node.input if i]
        types = {i: self.types[i] for i in names if i in self.types}
        if node.op_type == "Concat":
            considered = [i for i in names if types.get(i, (0, None))[1] is not None]
        else:
            considered = [node.input[k] for k in data_inputs]
        shapes = [types[i][1] for i in considered if i in types]
        known = [s for s in shapes if s is not None]
        if len(known) < 2:
            return types, None
        rank = max(len(s) for s in known)
        axes = list(range(rank))
        if node.op_type == "Concat":
            if len({len(s) for s in known}) != 1:
                return types, None
            axes.remove(int(_attrs(node).get("axis", 0)) % rank)
        small: dict[int, int] = {}
        for d in axes:
            sizes = {s[d - (rank - len(s))] for s in known if d - (rank - len(s)) >= 0} - {1}
            if len(sizes) > 1:
                small[d] = min(sizes)
        if not small:
            return types, None
        cropped = dict(types)
        for name in considered:
            elem, shape = types[name]
            if shape is None:
                continue
            offset = rank - len(shape)
            cropped[name] = (
                elem,
                tuple(small[d + offset] if d + offset in small and size != 1 else size for d, size in enumerate(shape)),
            )
        return cropped, [tuple(s) for s in known]

    # -- the walk ---------------------------------------------------------------------------------

    def run(self) -> Graph:
        g = self.model.graph
        for index, node in enumerate(g.node):
            reads = [i for i in node.input if i in self.data]
            reads += sorted(n for n in _subgraph_names(node) if n in self.data)
            if not reads or (node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx")):
                self._constant(node)
            else:
                self._data_node(index, node)
        names = [self.data[o.name] for o in g.output if o.name in self.data]
        self.graph.output_names = list(dict.fromkeys(names))
        return self.graph

    def _data_node(self, index: int, node: Any) -> None:
        op = node.op_type
        domain = node.domain if node.domain != "ai.onnx" else ""
        label = node.name or f"{op}_{index}"
        data_inputs = [k for k, i in enumerate(node.input) if i in self.data]
        for name in node.input:  # small constants' values, for shape inference and the handlers
            known = self.types.get(name, (0, None))[1]
            if (name in self.inits or name in self.pending) and known is not None and _numel(known) <= VALUE_LIMIT:
                self.value(name)
        mismatch = None
        if not domain and (op in _BROADCASTING or op == "Concat"):
            types, mismatch = self._fit(node, data_inputs)
        else:
            types = {i: self.types[i] for i in node.input if i and i in self.types}
        try:
            inferred = self._infer(node, types)
        except ConvArithError:
            raise
        except Exception as err:  # a shape this node refuses (a reshape that does not fit, …)
            lines = str(err).strip().splitlines()
            what = lines[0][:300] if lines else type(err).__name__
            raise ConvArithError(
                "input_shape", f"the model refuses it (ONNX shape inference fails at {label}, {op}: {what})", self.shape
            ) from None
        outs = []
        for name in node.output:
            shape = inferred.get(name, (0, None))[1] if name else None
            if name and shape is None and name in self.used:
                raise ConvArithError(
                    "model", f"must have static shapes: shape inference gives none for {name} of {label} ({op})"
                )
            outs.append(shape)
        if not domain and op in _LAYERS and outs[0] is not None and min(outs[0][2:], default=1) < 1:
            raise ConvArithError(
                "input_shape", f"the model refuses it ({label}, {op}, would give an empty output {outs[0]})", self.shape
            )
        params = self._parameters(node, op)
        call = _Call(
            node,
            label,
            op,
            op if not domain else f"{domain}.{op}",
            {k: (_text(v) if isinstance(v, bytes) else v) for k, v in _attrs(node).items()},
            list(node.input),
            [types.get(i, (0, None))[1] if i else None for i in node.input],
            outs,
            [self.data[node.input[k]] for k in data_inputs],
            params,
            mismatch,
        )
        handler = getattr(self, f"_op_{op}", None) if not domain else None
        if handler is None and not domain:
            handler = self._family(op)
        made: list[str | None]
        try:
            if handler is None:
                raise _Unknown(f"onnx.{call.source}")
            if not _FREE.get(op, False) and (node.input[0] not in self.data or len(data_inputs) > 1):
                raise _Unknown(f"onnx.{op} with a parameter that depends on the input's values")
            made = list(handler(call))
        except _Unknown as why:
            made = [self.add(call, "unknown", outs[0] or (), call.data, what=str(why))]
        except ConvArithError as err:
            made = [self.add(call, "unknown", outs[0] or (), call.data, what=f"onnx.{op}: {err}")]
        for k, name in enumerate(node.output):
            if not name:
                continue
            elem = inferred.get(name, (0, None))[0]
            self.types[name] = (elem, outs[k])  # a handler may correct shape inference (ceil_mode pools)
            produced = made[k] if k < len(made) else None
            if produced is None and name in self.used:
                shape = outs[k]
                assert shape is not None
                produced = self.add(call, "unknown", shape, call.data, what=f"onnx.{op} output {k}")
            if produced is not None:
                self.data[name] = produced

    def _family(self, op: str) -> Any:
        if op in _ELEMENTWISE:
            return self._elementwise
        if op in _REDUCE:
            return self._reduce
        if op in _ALONG_AXIS:
            return self._along_axis
        if op in _GLOBAL:
            return self._global
        if op in _LAYERS:
            return self._layer
        return None

    def _parameters(self, node: Any, op: str) -> int:
        config = _CONFIG.get(op, set())
        total = 0
        for k, name in enumerate(node.input):
            if not name or k in config or name in self.data:
                continue
            for init in self.origins.get(name, frozenset()):
                if init not in self.counted:
                    self.counted.add(init)
                    total += _numel(self.inits[init].dims)
        return total

    def add(
        self, call: _Call, op: Op, shape: Sequence[int], inputs: Sequence[str] | None = None, **params: object
    ) -> str:
        """A node for ``call`` (its parameters and mismatch go to the first node it makes)."""
        name = self.graph.add(
            call.label,
            op,
            list(call.data[:1] if inputs is None else inputs),
            shape,
            source=call.source,
            parameters=call.parameters,
            mismatch=call.mismatch,
            **params,  # type: ignore[arg-type]
        )
        call.parameters, call.mismatch = 0, None
        return name

    def ints(self, call: _Call, k: int, attr: str | None = None) -> list[int] | None:
        """Integers from attribute ``attr`` (older opsets) or input ``k`` (``None``: neither given)."""
        if attr is not None and attr in call.attrs:
            return [int(v) for v in call.attrs[attr]]
        if k < len(call.inputs) and call.inputs[k]:
            value = self.value(call.inputs[k])
            if value is None:
                raise _Unknown(f"onnx.{call.op} whose {attr or 'parameters'} cannot be computed from constants")
            return [int(v) for v in np.asarray(value).reshape(-1)]
        return None

    # -- operations -------------------------------------------------------------------------------

    def _layer(self, call: _Call) -> list[str]:
        x = call.x
        shapes: dict[str, tuple[int, ...] | None] = {call.inputs[0]: x}
        if len(call.inputs) > 1 and call.inputs[1]:
            shapes[call.inputs[1]] = call.shapes[1]
        layer = _node_layer(call.node, shapes)
        bound = layer.bind(x)
        y = call.y
        if layer.ceil_mode and tuple(bound.output_spatial) != tuple(y[-layer.ndim :]) and min(bound.output_spatial) > 0:
            # ONNX shape inference (onnx 1.23) keeps a last ceil_mode window that starts past the
            # input and its right padding; onnxruntime, the reference evaluator and PyTorch drop it
            # (and so does convarith): the runtimes' size goes on
            call.outs[0] = y = (*y[: -layer.ndim], *bound.output_spatial)
        if tuple(bound.output_spatial) != tuple(y[-layer.ndim :]):
            raise _Unknown(
                f"onnx.{call.op} whose output {call.y} is not the {bound.output_shape} convarith finds for {layer!r}"
            )
        return [self.add(call, "layer", y, layer=layer)]

    def _elementwise(self, call: _Call) -> list[str]:
        y = call.y
        first = self.graph[call.data[0]].shape
        if len(call.data) > 1:
            return [self.add(call, "merge", y, call.data, what=call.op)]
        if tuple(y) != tuple(first) and call.op not in ("LayerNormalization", "RMSNormalization"):
            return [self.add(call, "merge" if len(y) >= len(first) else "unknown", y, what=f"onnx.{call.op}")]
        return [self.add(call, "elementwise", y, what=call.op)]

    def _reduce(self, call: _Call) -> list[str]:
        rank = len(call.x)
        axes = self.ints(call, 1, "axes")
        if not axes:
            if int(call.attrs.get("noop_with_empty_axes", 0)):
                return [self.add(call, "elementwise", call.y, what=call.op)]
            axes = list(range(rank))
        keep = bool(int(call.attrs.get("keepdims", 1)))
        dims = tuple(sorted({a % rank for a in axes}))
        return [self.add(call, "reduce", call.y, dims=dims, keepdim=keep or len(call.y) == rank, what=call.op)]

    def _op_ArgMax(self, call: _Call) -> list[str]:
        rank = len(call.x)
        keep = bool(int(call.attrs.get("keepdims", 1)))
        dims = (int(call.attrs.get("axis", 0)) % rank,)
        return [self.add(call, "reduce", call.y, dims=dims, keepdim=keep, what=call.op)]

    _op_ArgMin = _op_ArgMax

    def _global(self, call: _Call) -> list[str]:
        rank = len(call.x)
        return [self.add(call, "reduce", call.y, dims=tuple(range(2, rank)), keepdim=True, what=call.op)]

    def _along_axis(self, call: _Call) -> list[str]:
        """Softmax and its kin: every cell of the axis reads all of it (over channels: cell by cell)."""
        x = call.x
        rank = len(x)
        if call.op == "CumSum":
            given = self.ints(call, 1)
            if not given:
                raise _Unknown("onnx.CumSum without an axis")
            dims = [given[0] % rank]
        else:
            legacy = call.op in ("Softmax", "LogSoftmax", "Hardmax") and self.opsets.get("", 1) < 13
            axis = int(call.attrs.get("axis", 1 if legacy else -1)) % rank
            dims = list(range(axis, rank)) if legacy else [axis]
        dims = [d for d in dims if x[d] > 1]
        if not dims:
            return [self.add(call, "elementwise", call.y, what=call.op)]
        return [self.add(call, "reduce", call.y, dims=tuple(dims), keepdim=True, what=call.op)]

    def _op_Pad(self, call: _Call) -> list[str]:
        x = call.x
        rank = len(x)
        mode = str(call.attrs.get("mode", "constant"))
        if mode not in _PAD_MODE:
            raise _Unknown(f"onnx.Pad mode={mode}")
        pads = self.ints(call, 1, "pads") or [0] * (2 * rank)
        axes = [a % rank for a in (self.ints(call, 3) or range(rank))]
        n = len(axes)
        if len(pads) != 2 * n:
            raise _Unknown(f"onnx.Pad with {len(pads)} pads for {n} axes")
        pairs = [(0, 0)] * rank
        for k, d in enumerate(axes):
            pairs[d] = (pads[k], pads[k + n])
        return [self.add(call, "pad", call.y, pads=tuple(pairs), mode=_PAD_MODE[mode])]

    def _op_Slice(self, call: _Call) -> list[str]:
        x = call.x
        rank = len(x)
        starts = self.ints(call, 1, "starts")
        ends = self.ints(call, 2, "ends")
        if starts is None or ends is None:
            raise _Unknown("onnx.Slice without starts or ends")
        axes = self.ints(call, 3, "axes") or list(range(len(starts)))
        steps = self.ints(call, 4) or [1] * len(starts)
        cuts = []
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            d = axis % rank
            size = x[d]
            if step < 1:
                raise _Unknown("onnx.Slice with a negative step")
            start = min(max(start + size if start < 0 else start, 0), size)
            end = min(max(end + size if end < 0 else end, 0), size)
            if (start, max(end, start), step) != (0, size, 1):
                cuts.append((d, start, max(end, start), step))
        if not cuts:
            return [call.data[0]]  # the whole tensor: the same node
        name = call.data[0]
        shape = list(x)
        for d, start, stop, step in cuts:
            shape[d] = len(range(start, stop, step))
            name = self.add(call, "slice", tuple(shape), [name], dim=d, start=start, stop=stop, step=step)
        return [name]

    def _op_Split(self, call: _Call) -> list[str]:
        x = call.x
        d = int(call.attrs.get("axis", 0)) % len(x)
        made, start = [], 0
        for shape in call.outs:
            if shape is None:
                made.append("")
                continue
            size = shape[d]
            made.append(self.add(call, "slice", shape, dim=d, start=start, stop=start + size, step=1))
            start += size
        return made

    def _op_Gather(self, call: _Call) -> list[str]:
        x = call.x
        d = int(call.attrs.get("axis", 0)) % len(x)
        index = self.value(call.inputs[1])
        if index is None:
            raise _Unknown("onnx.Gather with indices that depend on the input")
        values = [int(v) % x[d] for v in np.asarray(index).reshape(-1)]
        if index.ndim == 0:
            return [self.add(call, "select", call.y, dim=d, index=values[0])]
        steps = {b - a for a, b in itertools.pairwise(values)}
        if index.ndim == 1 and values and (len(values) == 1 or (len(steps) == 1 and min(steps) >= 1)):
            step = steps.pop() if steps else 1
            return [self.add(call, "slice", call.y, dim=d, start=values[0], stop=values[-1] + 1, step=step)]
        raise _Unknown("onnx.Gather of indices other than one or an ascending progression")

    def _op_Resize(self, call: _Call) -> list[str]:
        x, y = call.x, call.y
        rank = len(x)
        a = call.attrs
        legacy = call.op == "Upsample" or self.opsets.get("", 1) < 11
        mode = str(a.get("mode", "nearest"))
        mode = "linear" if mode in ("bilinear", "trilinear") else mode
        if mode not in ("nearest", "linear", "cubic"):
            raise _Unknown(f"onnx.{call.op} mode={mode}")
        scales: list[float | None] = [None] * rank
        axes = list(range(rank))
        if legacy:
            given = a.get("scales")
            if given is None:
                value = self.value(call.inputs[1]) if len(call.inputs) > 1 else None
                if value is None:
                    raise _Unknown(f"onnx.{call.op} whose scales cannot be computed from constants")
                given = value.reshape(-1).tolist()
            factors = [float(s) for s in given]
            scales = [_snap(f) for f in factors]
            coordinate, nearest_modes = "asymmetric", ["floor" if s >= 1 else "ceil" for s in factors]
            cubic_a = -0.75
        else:
            coordinate = str(a.get("coordinate_transformation_mode", "half_pixel"))
            nearest_modes = [str(a.get("nearest_mode", "round_prefer_floor"))] * rank
            cubic_a = float(a.get("cubic_coeff_a", -0.75))
            if "axes" in a:
                axes = [int(v) % rank for v in a["axes"]]
            given_scales = self.value(call.inputs[2]) if len(call.inputs) > 2 and call.inputs[2] else None
            sizes = self.value(call.inputs[3]) if len(call.inputs) > 3 and call.inputs[3] else None
            if sizes is not None and sizes.size:
                policy = str(a.get("keep_aspect_ratio_policy", "stretch"))
                if policy != "stretch":
                    ratios = [float(s) / x[d] for s, d in zip(sizes.reshape(-1).tolist(), axes, strict=True)]
                    common = min(ratios) if policy == "not_larger" else max(ratios)
                    for d in axes:
                        scales[d] = _snap(common)
            elif given_scales is not None and given_scales.size:
                for d, s in zip(axes, given_scales.reshape(-1).tolist(), strict=True):
                    scales[d] = _snap(float(s))
            elif (len(call.inputs) > 2 and call.inputs[2]) or (len(call.inputs) > 3 and call.inputs[3]):
                raise _Unknown(f"onnx.{call.op} whose scales or sizes cannot be computed from constants")
            if int(a.get("antialias", 0)) and mode != "nearest" and any(y[d] < x[d] for d in axes):
                raise _Unknown("onnx.Resize antialias=1 downsampling")
            if coordinate == "half_pixel_symmetric":
                # the same as half_pixel where the scale applied makes exactly the output size
                if any(s is not None and x[d] * s != y[d] for d, s in enumerate(scales)):
                    raise _Unknown("onnx.Resize coordinate_transformation_mode=half_pixel_symmetric")
                coordinate = "half_pixel"
            if coordinate not in _COORDINATES:
                raise _Unknown(f"onnx.Resize coordinate_transformation_mode={coordinate}")
        rules, dims = [], []
        for d in axes:
            scale = scales[d]
            same = x[d] == y[d] and scale in (None, 1.0)
            if same and not (coordinate == "tf_half_pixel_for_nn" and mode != "nearest"):
                continue
            rules.append(
                Resize(
                    mode,  # type: ignore[arg-type]
                    coordinate,  # type: ignore[arg-type]
                    nearest_modes[d],  # type: ignore[arg-type]
                    scale=scale,
                    clamp=True,
                    cubic_a=cubic_a,
                )
            )
            dims.append(d)
        if not rules:
            return [self.add(call, "elementwise", y, what=call.op)]
        return [self.add(call, "resize", y, rules=tuple(rules), dims=tuple(dims))]

    _op_Upsample = _op_Resize

    def _op_DepthToSpace(self, call: _Call) -> list[str]:
        if len(call.x) != 4:
            raise _Unknown("onnx.DepthToSpace of a tensor that is not 4-d")
        return [self.add(call, "pixel_shuffle", call.y, factor=int(call.attrs["blocksize"]))]

    def _op_SpaceToDepth(self, call: _Call) -> list[str]:
        if len(call.x) != 4:
            raise _Unknown("onnx.SpaceToDepth of a tensor that is not 4-d")
        return [self.add(call, "pixel_unshuffle", call.y, factor=int(call.attrs["blocksize"]))]

    def _op_Concat(self, call: _Call) -> list[str]:
        y = call.y
        dim = int(call.attrs.get("axis", 0)) % len(y)
        if len([i for i in call.inputs if i]) == 1:
            return [self.add(call, "elementwise", y, what="Concat")]  # one tensor: a copy
        wrapped = self._circular(call, dim)
        if wrapped is not None:
            source, pads = wrapped
            return [self.add(call, "pad", y, [source], pads=pads, mode="circular")]
        return [self.add(call, "concat", y, call.data, dim=dim)]

    def _circular(self, call: _Call, dim: int) -> tuple[str, tuple[tuple[int, int], ...]] | None:
        """A circular pad written out as a concatenation of slices of one tensor along one axis (as
        PyTorch's exporter writes ``F.pad(mode="circular")``): its source and pads, or ``None``."""
        if len(call.data) != len([i for i in call.inputs if i]) or len(call.data) < 2 or call.mismatch:
            return None
        pieces = []
        for name in call.data:
            node = self.graph[name]
            if node.op == "slice" and node.params["dim"] == dim and node.params["step"] == 1:
                start, stop = node.params["start"], node.params["stop"]
                assert isinstance(start, int) and isinstance(stop, int)
                pieces.append((node.inputs[0], range(start, stop)))
            else:
                pieces.append((name, range(node.shape[dim])))
        sources = {source for source, _ in pieces}
        if len(sources) != 1:
            return None
        source = sources.pop()
        shape = self.graph[source].shape
        size = shape[dim]
        cells = [i for _, r in pieces for i in r]
        for before in range(min(size, len(cells) - size) + 1):
            after = len(cells) - size - before
            if after <= size and cells == [(o - before) % size for o in range(len(cells))]:
                pads = [(0, 0)] * len(shape)
                pads[dim] = (before, after)
                return source, tuple(pads)
        return None

    def _op_Reshape(self, call: _Call) -> list[str]:
        later = self.deferred.pop(call.inputs[0], None)
        if later is not None:  # the last step of a pixel (un)shuffle written out
            kind, factor, steps, expected = later
            if tuple(call.y) == expected:
                return [self.add(call, kind, call.y, [steps[0][3]], factor=factor)]  # type: ignore[arg-type]
            name = self._replay(steps)
            return [self.add(call, "reshape", call.y, [name])]
        if self._shuffle_start(call):
            return [call.data[0]]  # a placeholder: the one reader is the deferred transpose
        return [self.add(call, "reshape", call.y)]

    def _op_Flatten(self, call: _Call) -> list[str]:
        return [self.add(call, "reshape", call.y)]

    def _shuffle_start(self, call: _Call) -> bool:
        """Whether this reshape begins a pixel shuffle or unshuffle written out as ``Reshape →
        Transpose → Reshape`` (PyTorch's exporter writes ``pixel_unshuffle`` so); if so it is
        deferred: nothing is added until the last reshape shows what the three do together."""
        x, y = call.x, call.y
        out = call.node.output[0]
        if len(x) != 4 or len(y) != 6 or len(self.consumers.get(out, [])) != 1 or out in self.outputs:
            return False
        n, c, h, w = x
        (transpose,) = self.consumers[call.node.output[0]]
        if transpose.op_type != "Transpose" or transpose.domain not in ("", "ai.onnx"):
            return False
        perm = tuple(int(p) for p in _attrs(transpose).get("perm", ()))
        r = y[3]
        if y == (n, c, h // max(r, 1), r, w // max(r, 1), r) and r > 1 and h % r == 0 and w % r == 0:
            kind, order, expected = "pixel_unshuffle", (0, 1, 3, 5, 2, 4), (n, c * r * r, h // r, w // r)
        elif y[2] == y[3] and y[2] > 1 and y[:2] == (n, c // (y[2] * y[2])) and y[4:] == (h, w):
            r = y[2]
            order = (0, 1, 4, 2, 5, 3)  # channels (C, r, r), as DepthToSpace's CRD mode
            kind, expected = "pixel_shuffle", (n, c // (r * r), h * r, w * r)
        elif y[1] == y[2] and y[1] > 1 and y[0] == n and y[3] == c // (y[1] * y[1]) and y[4:] == (h, w):
            r = y[1]
            order = (0, 3, 4, 1, 5, 2)  # channels (r, r, C), DepthToSpace's DCR mode
            kind, expected = "pixel_shuffle", (n, c // (r * r), h * r, w * r)
        else:
            return False
        if perm != order:
            return False
        steps: list[_Step] = [(call.label, call.source, y, call.data[0], {})]
        self.deferred[call.node.output[0]] = (kind, r, steps, expected)
        return True

    def _replay(self, steps: Sequence[_Step]) -> str:
        """Add the deferred steps of what turned out not to be a pixel (un)shuffle."""
        name = steps[0][3]
        for label, source, shape, _, params in steps:
            op = "permute" if params else "reshape"
            name = self.graph.add(label, op, [name], shape, source=source, **params)  # type: ignore[arg-type]
        return name

    def _op_Squeeze(self, call: _Call) -> list[str]:
        x = call.x
        axes = self.ints(call, 1, "axes")
        dims = range(len(x)) if axes is None else [a % len(x) for a in axes]
        return [self.add(call, "reshape", call.y, removed=tuple(sorted(d for d in set(dims) if x[d] == 1)))]

    def _op_Unsqueeze(self, call: _Call) -> list[str]:
        y = call.y
        axes = self.ints(call, 1, "axes") or []
        return [self.add(call, "reshape", y, inserted=tuple(sorted({a % len(y) for a in axes})))]

    def _op_Transpose(self, call: _Call) -> list[str]:
        rank = len(call.x)
        perm = call.attrs.get("perm")
        order = tuple(int(p) % rank for p in perm) if perm is not None else tuple(reversed(range(rank)))
        later = self.deferred.pop(call.inputs[0], None)
        if later is not None:
            kind, factor, steps, expected = later
            step: _Step = (call.label, call.source, call.y, "", {"order": order})
            consumers = self.consumers.get(call.node.output[0], [])
            if len(consumers) == 1 and consumers[0].op_type == "Reshape" and call.node.output[0] not in self.outputs:
                self.deferred[call.node.output[0]] = (kind, factor, [*steps, step], expected)
                return [steps[0][3]]
            return [self._replay([*steps, step])]
        return [self.add(call, "permute", call.y, order=order)]

    def _op_Expand(self, call: _Call) -> list[str]:
        return [self.add(call, "expand", call.y)]

    def _op_Gemm(self, call: _Call) -> list[str]:
        """``A′·B′ + C``: a dense map over the data factor's feature axis when the other is constant."""
        a_data, b_data = call.inputs[0] in self.data, call.inputs[1] in self.data
        c_data = len(call.inputs) > 2 and call.inputs[2] in self.data
        if a_data == b_data or c_data:
            raise _Unknown("onnx.Gemm of two tensors that depend on the input (attention)")
        k = 0 if a_data else 1
        transposed = bool(int(call.attrs.get("transA" if a_data else "transB", 0)))
        shape = call.shapes[k]
        assert shape is not None
        name = call.data[0]
        dim = 1 if a_data else 0
        if transposed:
            shape = (shape[1], shape[0])
            name = self.add(call, "permute", shape, [name], order=(1, 0))
        features = shape[dim]
        return [self.add(call, "linear", call.y, [name], dim=dim, in_features=features)]

    def _op_MatMul(self, call: _Call) -> list[str]:
        a_data, b_data = call.inputs[0] in self.data, call.inputs[1] in self.data
        if a_data and b_data:
            raise _Unknown("onnx.MatMul of two tensors that depend on the input (attention)")
        shape = call.shapes[0 if a_data else 1]
        other = call.shapes[1 if a_data else 0]
        assert shape is not None and other is not None
        if len(shape) < 2 or len(other) < (2 if a_data else 1) or len(call.y) != len(shape):
            raise _Unknown("onnx.MatMul that changes the rank of its input")
        dim = len(shape) - (1 if a_data else 2)
        return [self.add(call, "linear", call.y, dim=dim, in_features=shape[dim])]


_FREE = {
    **{op: True for op in _ELEMENTWISE},
    "Concat": True,
    "Gemm": True,
    "MatMul": True,
    "Where": True,
}
"""Operations that may read data on any input (the others read it on their first input only)."""


def trace(model: object, input_shape: Sequence[int], **options: Any) -> Graph:
    """The graph of an ONNX model (a ``ModelProto`` or an ``.onnx`` path) with its first input of
    ``input_shape``, from shapes only.

    Other inputs keep their declared (static) shapes and count as constants. The one option,
    ``channels_last=True``: the model's input is ``(N, *spatial, C)`` (a converted TensorFlow
    model); the graph's input is then ``(N, C, *spatial)``, followed by the permutation to the
    model's layout.
    """
    unknown = sorted(set(options) - {"channels_last"})
    if unknown:
        raise ConvArithError("options", "an ONNX model takes only channels_last", unknown)
    return _Tracer(_load(model), input_shape, bool(options.get("channels_last", False))).run()
