"""ONNX: the adapter (a layer as an ONNX graph, run on onnxruntime or the reference evaluator) and
ONNX nodes and ``.onnx`` models read back as layers.

A layer becomes a one-input graph (opset 22) built with ``onnx.helper``: the layer's own node
(``Conv``, ``ConvTranspose``, ``MaxPool``, ``AveragePool``) with ``auto_pad`` where it means
exactly the layer's padding, else explicit ``pads``, and around it the nodes ONNX needs for what its
operator cannot say (:mod:`convarith.rules.onnx`): ``Slice`` for crops, ``Pad`` for padding modes,
negative transposed pads and large pooling pads, ``Mul`` for an average's divisor, ``Add`` for a
bias on cells the transposed operator did not write.

:func:`apply` runs the model on onnxruntime (``CONVARITH_ONNX_RUNTIME=onnxruntime``, the default) or
on ``onnx.reference.ReferenceEvaluator`` (``CONVARITH_ONNX_RUNTIME=reference``), read on every call.
onnxruntime's CPU provider has no float64 ``Conv``, ``ConvTranspose`` or ``AveragePool``: those
graphs are float32 (``Emitted.dtype``); ``MaxPool`` graphs are float64.

:func:`emit` is pure Python; ``onnx`` is imported only by the functions that build or read graphs.

Examples
--------
>>> from convarith import Layer
>>> emit(Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf")).steps
("Conv(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')",)
>>> emit(Layer("conv1d", 1, 1, kernel_size=3, padding=[(-1, 2)]), (1, 1, 8)).steps
('Slice(starts=[1], ends=[9223372036854775807], axes=[2])', 'Conv(kernel_shape=[3], pads=[0, 2])')
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer, Pad
from ..rules.onnx import PAD_MODE, auto_pad, avg_pool_native, pool_pads_native, reflect_steps, transposed_native
from .base import Emitted, KnownBug, channels, explicit

if TYPE_CHECKING:
    from ..findings import Finding

Array = npt.NDArray[np.float64]

__all__ = [
    "KNOWN_BUGS",
    "LABEL",
    "NAME",
    "OPSET",
    "RUNTIMES",
    "apply",
    "emit",
    "findings",
    "from_model",
    "from_native",
    "installed",
    "parse_call",
    "run_model",
    "runtime",
    "version",
]

NAME = "onnx"
LABEL = "ONNX"

KNOWN_BUGS = (
    KnownBug(
        runner="onnx-ref",
        name="reference-grouped-convtranspose",
        what="the ONNX reference evaluator's grouped ConvTranspose fails (a reshape error) with more than one "
        "channel per group and adds the wrong bias with one; onnxruntime computes both (tests/"
        "test_frameworks_onnx.py::test_reference_grouped_transpose; no public thread found)",
        hits=lambda bound: (
            bound.transposed
            and bound.layer.groups > 1
            and (bound.layer.bias or max(bound.in_channels, bound.out_channels) > bound.layer.groups)
        ),
    ),
)
"""What a runner of this adapter computes wrongly by its own specification (``convarith verify``)."""
OPSET = 22
"""The opset the graphs import: the newest version of Conv, ConvTranspose, MaxPool and AveragePool."""
RUNTIMES = ("onnxruntime", "reference")
INT64_MAX = 2**63 - 1
_OP = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AveragePool"}
_KIND = {v: k for k, v in _OP.items()}


def installed() -> bool:
    """Whether onnx and onnxruntime are installed (looked up, not imported)."""
    from . import installed as _installed

    return _installed(NAME)


def version() -> str:
    """onnx's and onnxruntime's versions."""
    import onnx
    import onnxruntime

    return f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}"


def runtime() -> str:
    """The runtime :func:`apply` uses now: ``CONVARITH_ONNX_RUNTIME`` (default ``onnxruntime``)."""
    value = os.environ.get("CONVARITH_ONNX_RUNTIME", "onnxruntime") or "onnxruntime"
    if value not in RUNTIMES:
        raise ConvArithError("CONVARITH_ONNX_RUNTIME", f"must be one of {', '.join(RUNTIMES)}", repr(value))
    return value


def findings(layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]:
    """ONNX's refusals, workarounds and pitfalls for ``layer`` (:func:`convarith.check`)."""
    from ..rules import check

    return list(check(layer, input_shape, framework=NAME))


# -- emit: the graph as code -----------------------------------------------------------------------


def _ints(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


@dataclass
class _Node:
    op: str
    inputs: list[str]
    attrs: dict[str, str]
    """Attribute name → its Python literal."""
    step: str


@dataclass
class _Graph:
    """The nodes and initializers of a graph under construction, as code."""

    np_dtype: str
    inits: list[str] = field(default_factory=list)
    nodes: list[_Node] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    """Statements before the initializers (a divisor computed from window counts)."""

    def const(self, name: str, expr: str) -> str:
        self.inits.append(f'numpy_helper.from_array({expr}, "{name}")')
        return name

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.const(name, f"np.array({_ints(values)}, np.int64)")

    def node(self, op: str, inputs: Sequence[str], shown: Sequence[str] = (), **attrs: str) -> None:
        """Add ``op`` applied to the current tensor (and ``inputs``); ``shown`` are extra step words."""
        words = [*shown, *(f"{k}={v}" for k, v in attrs.items())]
        self.nodes.append(_Node(op, ["", *inputs], dict(attrs), f"{op}({', '.join(words)})"))

    def code(self, input_info: str, output_info: str) -> tuple[str, tuple[str, ...]]:
        lines = list(self.before)
        lines.append("initializers = [")
        lines += [f"    {init}," for init in self.inits]
        lines.append("]")
        lines.append("nodes = [")
        current = "x"
        for n, node in enumerate(self.nodes):
            out = "y" if n == len(self.nodes) - 1 else f"t{n}"
            names = ", ".join(f'"{name}"' for name in [current, *node.inputs[1:]])
            attrs = "".join(f", {k}={v}" for k, v in node.attrs.items())
            lines.append(f'    helper.make_node("{node.op}", [{names}], ["{out}"]{attrs}),')
            current = out
        lines.append("]")
        lines.append(f'graph = helper.make_graph(nodes, "convarith", [{input_info}], [{output_info}], initializers)')
        lines.append(f'layer = helper.make_model(graph, opset_imports=[helper.make_opsetid("", {OPSET})])')
        return "\n".join(lines), tuple(node.step for node in self.nodes)


def _full(pairs: Sequence[Pad]) -> list[int]:
    """ONNX's ``pads`` of an (N, C, *spatial) tensor: every axis's begin, then every axis's end."""
    return [0, 0, *(b for b, _ in pairs), 0, 0, *(a for _, a in pairs)]


def _slice(graph: _Graph, crops: Sequence[Pad]) -> None:
    """Crop ``(before, after)`` cells of each spatial axis (a ``Slice``)."""
    axes = [n for n, (b, a) in enumerate(crops) if b or a]
    if not axes:
        return
    starts = [crops[n][0] for n in axes]
    ends = [-crops[n][1] if crops[n][1] else INT64_MAX for n in axes]
    dims = [n + 2 for n in axes]
    k = len(graph.nodes)
    graph.node(
        "Slice",
        [graph.ints(f"starts{k}", starts), graph.ints(f"ends{k}", ends), graph.ints(f"axes{k}", dims)],
        (f"starts={_ints(starts)}", f"ends={_ints(ends)}", f"axes={_ints(dims)}"),
    )


def _pad(graph: _Graph, pairs: Sequence[Pad], mode: str = "constant", value: str | None = None) -> None:
    """A ``Pad`` of the spatial axes (``value``: the constant's expression, zeros by default)."""
    if not any(b or a for b, a in pairs):
        return
    k = len(graph.nodes)
    inputs = [graph.ints(f"pads{k}", _full(pairs))]
    shown = [f"pads={_ints(_full(pairs))}"]
    if value is not None:
        inputs.append(graph.const(f"value{k}", f"np.array({value}, np.{graph.np_dtype})"))
        shown.append(f"constant_value={value}")
    attrs = {} if mode == "constant" else {"mode": repr(mode)}
    graph.node("Pad", inputs, shown, **attrs)


def _padding_mode(graph: _Graph, layer: Layer, pads: Sequence[Pad], spatial: Sequence[int] | None) -> None:
    """The input padded by a reflect / replicate / circular ``Pad`` and cropped (``Slice``), as F.pad does."""
    grow = [(max(b, 0), max(a, 0)) for b, a in pads]
    crops = [(max(-b, 0), max(-a, 0)) for b, a in pads]
    mode = PAD_MODE[layer.padding_mode]
    if layer.padding_mode == "circular":
        _slice(graph, crops)  # wraps around what the crop keeps
        _pad(graph, grow, "wrap")
        return
    if layer.padding_mode == "reflect" and spatial is not None:
        # a one-cell axis reflects as its edge; longer pads than the input reflect in steps
        edge = [g if i == 1 else (0, 0) for g, i in zip(grow, spatial, strict=True)]
        _pad(graph, edge, "edge")
        rounds = [reflect_steps(i, g) if i > 1 else [(0, 0)] for g, i in zip(grow, spatial, strict=True)]
        for r in range(max(len(steps) for steps in rounds)):
            _pad(graph, [steps[r] if r < len(steps) else (0, 0) for steps in rounds], mode)
    else:
        _pad(graph, grow, mode)
    _slice(graph, crops)  # mirrors over the whole input, then crops


def emit(layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted:
    """``layer`` as an ONNX graph (the code that builds its ``ModelProto``).

    >>> from convarith import Layer
    >>> emit(Layer("conv_transpose1d", 1, 1, kernel_size=1, stride=2, padding="same_upper")).steps
    ('ConvTranspose(kernel_shape=[1], strides=[2])', 'Pad(pads=[0, 0, 1, 0, 0, 0])', 'Add(bias)')
    >>> emit(Layer("max_pool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 1, 8, 8)).steps
    ('Pad(pads=[0, 0, 1, 1, 0, 0, 2, 2], constant_value=-np.inf)', 'MaxPool(kernel_shape=[3, 3], strides=[2, 2])')
    """
    from ..rules import raise_refusals

    raise_refusals(layer, input_shape, framework=NAME)
    notes = tuple(f for f in findings(layer, input_shape) if f.severity != "error")
    n, kind = layer.ndim, layer.kind
    bound = layer.bind(input_shape) if input_shape is not None else None
    native = auto_pad(layer)
    dilated_average = kind == "avg_pool" and max(layer.dilation) > 1
    if native is not None and layer.pooling and bound is not None and (native != "VALID" or dilated_average):
        # the reference evaluator mis-sizes SAME pools (a negative total is not clamped at 0, and its
        # MaxPool goes wrong with pads) and VALID average pools with dilations (it sizes them
        # undilated): explicit pads, on which both runtimes agree
        native = None
    given = tuple(input_shape) if input_shape is not None else ()
    spatial = bound.input_spatial if bound is not None else None
    elem, np_dtype = ("DOUBLE", "float64") if kind == "max_pool" else ("FLOAT", "float32")
    graph = _Graph(np_dtype)
    op = _OP[kind]
    attrs: dict[str, str] = {"kernel_shape": _ints(layer.kernel_size)}
    if layer.stride != (1,) * n:
        attrs["strides"] = _ints(layer.stride)
    if layer.dilation != (1,) * n:
        attrs["dilations"] = _ints(layer.dilation)
    c_in: int | None
    if layer.weighted:
        c_in, c_out = (bound.in_channels, bound.out_channels) if bound is not None else channels(layer, input_shape)
        if layer.groups != 1:
            attrs["group"] = str(layer.groups)
        wname = graph.const("W", f"w.astype(np.{np_dtype})")
        bias = f"(np.zeros({c_out}) if b is None else b)"
    else:
        c_in = layer.in_channels if layer.in_channels is not None else (given[-n - 1] if len(given) > n else None)
        c_out = c_in if c_in is not None else 0
    if kind == "conv":
        inputs = [wname]
        if layer.bias:
            inputs.append(graph.const("B", f"{bias}.astype(np.{np_dtype})"))
        if native is not None:
            attrs["auto_pad"] = repr(native)
        else:
            pads = explicit(layer, input_shape).pads
            if layer.padding_mode == "zeros":
                _slice(graph, [(max(-b, 0), max(-a, 0)) for b, a in pads])
                grow = [(max(b, 0), max(a, 0)) for b, a in pads]
                if any(b or a for b, a in grow):
                    attrs["pads"] = _ints([b for b, _ in grow] + [a for _, a in grow])
            else:
                _padding_mode(graph, layer, pads, spatial)
        graph.node(op, inputs, **attrs)
    elif kind == "conv_transpose":
        inputs = [wname]
        if native is not None:
            if layer.bias:
                inputs.append(graph.const("B", f"{bias}.astype(np.{np_dtype})"))
            attrs["auto_pad"] = repr(native)
            if any(layer.output_padding):
                attrs["output_padding"] = _ints(layer.output_padding)
            graph.node(op, inputs, **attrs)
        else:
            resolved = explicit(layer, input_shape)
            pads, extra = resolved.pads, resolved.output_padding
            if transposed_native(pads, extra, layer.stride):
                if layer.bias:
                    inputs.append(graph.const("B", f"{bias}.astype(np.{np_dtype})"))
                if any(b or a for b, a in pads):
                    attrs["pads"] = _ints([b for b, _ in pads] + [a for _, a in pads])
                if any(extra):
                    attrs["output_padding"] = _ints(extra)
                graph.node(op, inputs, **attrs)
            else:
                # crop what ConvTranspose may crop, extend the rest with zeros, then add the bias
                crop = [(max(b, 0), max(a - e, 0)) for (b, a), e in zip(pads, extra, strict=True)]
                grow = [(max(-b, 0), max(e - a, 0)) for (b, a), e in zip(pads, extra, strict=True)]
                if spatial is not None:
                    lengths = [
                        (i - 1) * s + e for i, s, e in zip(spatial, layer.stride, layer.effective_kernel, strict=True)
                    ]
                    late = any(length - b - a < 1 for length, (b, a) in zip(lengths, crop, strict=True))
                else:
                    late = False
                if any(b or a for b, a in crop) and not late:
                    attrs["pads"] = _ints([b for b, _ in crop] + [a for _, a in crop])
                graph.node(op, inputs, **attrs)
                _pad(graph, grow)
                if late:  # the crop would leave no cell before the extension: extend first, then crop
                    _slice(graph, crop)
                if layer.bias:
                    shape = ", ".join([str(c_out), *["1"] * n])
                    graph.node("Add", [graph.const("B", f"{bias}.reshape({shape}).astype(np.{np_dtype})")], ("bias",))
    else:
        _emit_pool(graph, layer, input_shape, attrs, native)
    in_dims = [str(given[0]) if len(given) == n + 2 else '"N"', str(c_in) if c_in is not None else '"C"']
    in_dims += [str(i) for i in spatial] if spatial is not None else [f'"d{k}"' for k in range(n)]
    input_info = f'helper.make_tensor_value_info("x", TensorProto.{elem}, [{", ".join(in_dims)}])'
    if bound is not None:
        out_dims = [in_dims[0], str(c_out) if c_in is not None else '"C"', *map(str, bound.output_spatial)]
        shape = f"[{', '.join(out_dims)}]"
    else:
        shape = "None"
    output_info = f'helper.make_tensor_value_info("y", TensorProto.{elem}, {shape})'
    build, steps = graph.code(input_info, output_info)
    return Emitted(
        framework=NAME,
        imports=("import onnxruntime", "from onnx import TensorProto, helper, numpy_helper"),
        build=build,
        call='onnxruntime.InferenceSession(layer.SerializeToString()).run(None, {"x": x})[0]',
        layout="channels_first",
        steps=steps,
        findings=notes,
        dtype=np_dtype,
    )


def _emit_pool(
    graph: _Graph, layer: Layer, input_shape: Sequence[int] | None, attrs: dict[str, str], native: str | None
) -> None:
    kind, op = layer.kind, _OP[layer.kind]
    if native is not None:
        attrs["auto_pad"] = repr(native)
        if kind == "avg_pool" and layer.count_include_pad:
            attrs["count_include_pad"] = "1"
        graph.node(op, [], **attrs)
        return
    pads = explicit(layer, input_shape).pads
    crops = [(max(-b, 0), max(-a, 0)) for b, a in pads]
    grow = [(max(b, 0), max(a, 0)) for b, a in pads]
    simple = not any(b or a for b, a in crops)
    ceil = layer.ceil_mode
    if ceil and input_shape is not None:
        # the reference evaluator sizes and divides ceil_mode windows its own way: write the last
        # window's reach out as padding where ceil_mode changes the output
        floor = layer.replace(ceil_mode=False).bind(input_shape).output_spatial
        ceil = floor != layer.bind(input_shape).output_spatial
        simple = simple and not ceil
    if kind == "max_pool":
        # the reference evaluator's MaxPool goes wrong with pads (fails in 1-d and 3-d, shifts the
        # windows in 2-d where the axes' pads differ): pad with -inf first
        ok = pool_pads_native(layer, grow) and not any(b or a for b, a in grow)
    else:
        ok = avg_pool_native(layer, grow)
    if simple and ok:
        if any(b or a for b, a in grow):
            attrs["pads"] = _ints([b for b, _ in grow] + [a for _, a in grow])
        if ceil:
            attrs["ceil_mode"] = "1"
        if kind == "avg_pool" and layer.count_include_pad:
            attrs["count_include_pad"] = "1"
        graph.node(op, [], **attrs)
        return
    # explicit: crop, pad as far as the last (ceil_mode) window reaches, pool without padding
    if input_shape is None:
        raise ConvArithError("input_shape", f"is needed: this {op}'s padding is written out for an input size")
    bound = layer.bind(input_shape)
    # exactly the windows the layer has: the pad after extended (or cut) to where the last one ends
    ends = [(b, a + ax.last_window_end if ceil else a) for (b, a), ax in zip(pads, bound.axes, strict=True)]
    _slice(graph, [(max(-b, 0), max(-a, 0)) for b, a in ends])
    reach = [(max(b, 0), max(a, 0)) for b, a in ends]
    if kind == "max_pool":
        _pad(graph, reach, value="-np.inf")
        graph.node(op, [], **attrs)
        return
    from ..ops.kernels import axis_divisor

    _pad(graph, reach)
    taps = math.prod(layer.kernel_size)
    if layer.divisor_override is not None:
        scale = f"np.array({taps} / {layer.divisor_override}, np.{graph.np_dtype})"
        shown = f"× {taps} / {layer.divisor_override}"
    else:
        counts = [axis_divisor(ax, layer.count_include_pad).tolist() for ax in bound.axes]
        graph.before.append(f"counts = {counts}  # per axis: the cells each window averages")
        graph.before.append("with np.errstate(divide='ignore'):")
        graph.before.append(f"    scale = {taps} / np.prod(np.meshgrid(*counts, indexing='ij'), axis=0)")
        scale = f"scale.astype(np.{graph.np_dtype})"
        shown = f"× {taps} / each window's count"
    attrs["count_include_pad"] = "1"
    graph.node(op, [], **attrs)
    graph.node("Mul", [graph.const("scale", scale)], (shown,))


# -- running ------------------------------------------------------------------------------------------


def run_model(model: Any, x: npt.ArrayLike, which: str | None = None) -> npt.NDArray[Any]:
    """Run a one-input, one-output ``ModelProto`` on ``which`` runtime (default: :func:`runtime`)."""
    which = runtime() if which is None else which
    name = model.graph.input[0].name
    feed = np.ascontiguousarray(x)
    if which == "reference":
        from onnx.reference import ReferenceEvaluator

        outputs: list[Any] = list(ReferenceEvaluator(model).run(None, {name: feed}))
        return np.asarray(outputs[0])
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {name: feed})[0])


def apply(emitted: Emitted, made: Any, input: Array) -> Array:
    """Run the built model on a float64 ``(N, C, *spatial)`` input (in the graph's dtype) on the
    runtime ``CONVARITH_ONNX_RUNTIME`` names."""
    x = np.asarray(input, dtype=np.float64).astype(emitted.dtype)
    return np.asarray(run_model(made, x), dtype=np.float64)


# -- reading ONNX back ----------------------------------------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _shapes(model: Any) -> dict[str, tuple[int, ...] | None]:
    """Every tensor's shape the model states or shape inference finds (``None``: not fully known)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model shape inference cannot handle keeps the shapes it states
        inferred = model
    out: dict[str, tuple[int, ...] | None] = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        t = info.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[info.name] = None if None in dims else tuple(int(d) for d in dims)  # type: ignore[arg-type]
    for init in graph.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _decode(s: object) -> str:
    return s.decode() if isinstance(s, bytes) else str(s)


def _node_layer(node: Any, shapes: dict[str, tuple[int, ...] | None]) -> Layer:
    op = str(node.op_type)
    if op not in _KIND:
        raise ConvArithError("source", "must be an ONNX Conv, ConvTranspose, MaxPool or AveragePool node", op)
    kind = _KIND[op]
    a = _attrs(node)
    w_shape = shapes.get(node.input[1]) if kind in ("conv", "conv_transpose") and len(node.input) > 1 else None
    if "kernel_shape" in a:
        kernel = tuple(int(k) for k in a["kernel_shape"])
    elif w_shape is not None:
        kernel = w_shape[2:]
    else:
        raise ConvArithError("kernel_shape", f"is needed: the {op} node has no kernel_shape and no weight shape")
    n = len(kernel)
    stride = tuple(a.get("strides", [1] * n))
    dilation = tuple(a.get("dilations", [1] * n))
    raw = [int(p) for p in a.get("pads", [0] * 2 * n)]
    pads: Any = [(raw[k], raw[k + n]) for k in range(n)]
    auto = _decode(a.get("auto_pad", "NOTSET"))
    if auto != "NOTSET":
        pads = {"VALID": "valid", "SAME_UPPER": "same_upper", "SAME_LOWER": "same_lower"}[auto]
    params: dict[str, Any] = {"kernel_size": kernel, "stride": stride, "padding": pads, "dilation": dilation}
    if kind in ("conv", "conv_transpose"):
        groups = int(a.get("group", 1))
        params["groups"] = groups
        params["bias"] = len(node.input) > 2 and node.input[2] != ""
        if w_shape is not None:
            if kind == "conv":
                params["out_channels"], params["in_channels"] = w_shape[0], w_shape[1] * groups
            else:
                params["in_channels"], params["out_channels"] = w_shape[0], w_shape[1] * groups
    if kind == "conv_transpose":
        extra = tuple(int(v) for v in a.get("output_padding", [0] * n))
        params["output_padding"] = extra
        if "output_shape" in a:
            x_shape = shapes.get(node.input[0])
            if x_shape is None:
                raise ConvArithError("input_shape", "is needed: ConvTranspose output_shape sets the pads from it")
            wanted = [int(v) for v in a["output_shape"]][-n:]
            pairs = []
            for k in range(n):
                full = stride[k] * (x_shape[2 + k] - 1) + extra[k] + dilation[k] * (kernel[k] - 1) + 1
                total = full - wanted[k]
                half = total // 2
                pairs.append((half, total - half) if auto == "SAME_UPPER" else (total - half, half))
            params["padding"] = pairs
    if kind in ("max_pool", "avg_pool"):
        params["ceil_mode"] = bool(a.get("ceil_mode", 0))
    if kind == "avg_pool":
        params["count_include_pad"] = bool(a.get("count_include_pad", 0))
    return Layer(f"{kind}{n}d", **params)


def from_native(obj: object) -> Layer:
    """An ONNX node as a layer: a ``ModelProto`` holding one such node, a ``(NodeProto, ModelProto)``
    pair, or a ``NodeProto`` alone (its channels then unknown).

    ``output_shape`` of a ``ConvTranspose`` becomes explicit pads, split as the specification says
    (odd cell after for ``SAME_UPPER``, before otherwise); that needs the input's shape from the model.
    """
    import onnx

    model: Any = None
    node: Any
    if isinstance(obj, tuple) and len(obj) == 2:
        node, model = obj
    elif isinstance(obj, onnx.ModelProto):
        model = obj
        found = [nd for nd in model.graph.node if nd.op_type in _KIND]
        if len(found) != 1:
            raise ConvArithError(
                "source", "must hold one Conv, ConvTranspose, MaxPool or AveragePool node (use from_model)", len(found)
            )
        node = found[0]
    else:
        node = obj
    if not isinstance(node, onnx.NodeProto):
        raise ConvArithError("source", "must be an ONNX NodeProto or ModelProto", type(obj).__name__)
    shapes = _shapes(model) if model is not None else {}
    return _node_layer(node, shapes)


def from_model(path_or_model: object, node_name: str | None = None) -> list[tuple[str, Layer, tuple[int, ...] | None]]:
    """Every Conv, ConvTranspose, MaxPool and AveragePool node of a model (or a ``.onnx`` file):
    ``(node name, layer, input shape)``, the shape from onnx shape inference (``None`` if unknown).

    Nodes without a name are called ``<op_type>_<index>``. ``node_name`` keeps that one node.
    """
    import onnx

    if isinstance(path_or_model, str | os.PathLike):
        path = Path(path_or_model)
        if not path.is_file():
            raise ConvArithError("path", "is not a file", str(path))
        model = onnx.load(str(path))
    elif isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    else:
        raise ConvArithError(
            "model", "must be a path to an .onnx file or an onnx.ModelProto", type(path_or_model).__name__
        )
    shapes = _shapes(model)
    out: list[tuple[str, Layer, tuple[int, ...] | None]] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in _KIND:
            continue
        name = node.name or f"{node.op_type}_{index}"
        if node_name is not None and name != node_name:
            continue
        out.append((name, _node_layer(node, shapes), shapes.get(node.input[0])))
    if node_name is not None and not out:
        raise ConvArithError("node_name", "names no Conv, ConvTranspose, MaxPool or AveragePool node", node_name)
    return out


def parse_call(call: object, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """ONNX has no call syntax to parse: read models with :func:`from_model` instead."""
    raise ConvArithError("source", "ONNX layers are read from models (from_model / from_native), not strings", source)
