"""Trace a Keras 3 model into an analysis graph, on shapes only.

A Functional or Sequential model is a graph already: its nodes are visited in the order Keras runs
them (deepest first) and each is evaluated on :class:`keras.KerasTensor` inputs of the shape asked
for with ``compute_output_spec`` — no data, no weights touched, no new nodes added to the model —
so one model is traced again at any input size in a fraction of a second (a fully convolutional
model takes sizes other than the one it was built with; where Keras refuses a size, its exception
goes through). A merge of mismatched shapes (``Add``, ``Concatenate`` …), which Keras refuses, is
recorded instead (:attr:`Node.mismatch <convarith.analysis.graph.Node.mismatch>`) and the trace goes
on with the inputs cropped to the smallest, as the PyTorch tracer does.

Each layer becomes one node named after it (a nested model's layers are ``model/layer``):
``Conv*D``, ``Conv*DTranspose``, ``DepthwiseConv*D``, ``MaxPooling*D`` and ``AveragePooling*D`` are
``layer`` nodes (read by :mod:`convarith.frameworks.keras`: ``'same'`` is the ``same_tf`` policy);
a ``SeparableConv*D`` is two, its depthwise half (``name.depthwise``) and its pointwise half.
Padding, cropping, upsampling, resizing, global and adaptive pooling, merges, concatenation,
``Dense``, ``Flatten``, ``Reshape``, ``Permute`` and the normalisation, activation, dropout and
rescaling layers have their own operations; anything else is ``unknown``. A layer's fused
activation is not a node (it acts cell by cell), except a softmax across positions.

Layout. The graph is in convarith's layout ``(N, C, *spatial)``: each tensor keeps, with its node,
which Keras axis each of the node's axes is (:func:`channels_last` for a ``channels_last`` tensor;
the identity for ``channels_first`` and for tensors without channels). A layer reads its input in
the layout its ``data_format`` says — a ``permute`` node (``name.permute``) turns a tensor round
where the layouts differ — and axis arguments (``Concatenate(axis=-1)``, ``Dense`` on the last axis,
``Softmax``) are moved to the node's axes. ``Flatten`` and ``Reshape`` read Keras' own order: a
channels-last tensor is permuted back to it first, so the flat features are labelled as Keras
lays them out. The input node's ``layout`` param says which axis of ``input_shape`` each of its
axes is (``(0, 3, 1, 2)`` for ``(N, H, W, C)``).

Resampling rules: ``UpSampling*D`` nearest repeats cells (``Resize("nearest", "asymmetric")``);
bilinear and bicubic are ``keras.ops.image.resize`` (half-pixel centres, edges clamped; the
bicubic kernel is the backend's: ``A = −0.75`` on torch, ``−0.5`` otherwise); ``Resizing``'s nearest
is ``tf_half_pixel_for_nn``.

``model`` may be a model object, a ``.keras`` (or legacy ``.h5``) file, or
``"keras.applications.NAME"`` (built with ``weights=None`` at the given input size; ``options`` go
to its constructor, or to :func:`keras.saving.load_model` for a file). Built models are kept (a
few) so that a scan over input sizes does not rebuild them.

>>> channels_last(4), channels_last(2)
((0, 3, 1, 2), (0, 1))
"""

from __future__ import annotations

import math
import os
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..analysis.graph import Graph, Op
from ..analysis.maps import Resize
from ..errors import ConvArithError
from ..layer import Layer

__all__ = ["channels_last", "trace"]

Axes = tuple[int, ...]
"""Where each axis of a node is in the Keras tensor: node axis ``i`` is Keras axis ``axes[i]``."""

_APPLICATIONS = "keras.applications."
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[object, ...], Any] = OrderedDict()

_ELEMENTWISE_LAYERS = {
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization", "UnitNormalization",
    "SpectralNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "ActivityRegularization", "Rescaling", "Normalization", "Identity", "Masking",
    "LayerScale",  # keras.applications.convnext: x · γ per channel
}  # fmt: skip
_MERGE_LAYERS = {
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "CustomScaleLayer",  # keras.applications.inception_resnet_v2: x₀ + x₁ · scale
}  # fmt: skip
_ELEMENTWISE_OPS = {
    "Relu", "Relu6", "Sigmoid", "Tanh", "Softplus", "Softsign", "Silu", "Swish", "Gelu", "Elu", "Selu", "Celu",
    "Glu", "LeakyRelu", "HardSigmoid", "HardSilu", "HardSwish", "HardTanh", "Mish", "LogSigmoid", "Exp", "Expm1",
    "Log", "Log1p", "Sqrt", "Rsqrt", "Abs", "Absolute", "Negative", "Square", "Cast", "Clip", "Sign", "Floor",
    "Ceil", "Round", "Reciprocal", "Erf", "Sin", "Cos", "StopGradient", "Identity", "Add", "Subtract", "Multiply",
    "Divide", "TrueDivide", "Maximum", "Minimum", "Power", "Where", "Nan_to_num", "NanToNum",
}  # fmt: skip
_MERGE_OPS = {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power", "Where"}
_REDUCE_OPS = {"Mean": "mean", "Sum": "sum", "Max": "max", "Min": "min", "Prod": "prod", "Std": "std", "Var": "var"}
_SOFTMAX = ("softmax", "log_softmax")
_LAYER_CLASS = re.compile(r"(Conv|DepthwiseConv)[123]D(Transpose)?|(MaxPooling|AveragePooling)[123]D")
_SEPARABLE = re.compile(r"SeparableConv[12]D")
_GLOBAL = re.compile(r"Global(Average|Max)Pooling([123])D")
_ADAPTIVE = re.compile(r"Adaptive(Average|Max)Pooling([123])D")
_PAD = re.compile(r"(ZeroPadding|Cropping)([123])D")
_UPSAMPLING = re.compile(r"UpSampling([123])D")


def channels_last(rank: int) -> Axes:
    """The axes of a ``channels_last`` Keras tensor in convarith's layout: batch, channels (Keras'
    last axis), then the spatial axes (rank 2 and below: as they are)."""
    if rank < 3:
        return tuple(range(rank))
    return (0, rank - 1, *range(1, rank - 1))


def _identity(rank: int) -> Axes:
    return tuple(range(rank))


def _layout(data_format: object, rank: int) -> Axes:
    """The node axes a layer of this ``data_format`` reads its ``rank``-d input in."""
    return _identity(rank) if data_format == "channels_first" else channels_last(rank)


@dataclass(frozen=True)
class _Tensor:
    """A Keras tensor as traced: the node that holds it, where its axes are, its Keras spec, and
    whether the node's axis 1 is known to be the channels (the input, a layer's output)."""

    node: str
    axes: Axes
    spec: Any
    channels: bool = False

    @property
    def keras_shape(self) -> tuple[int, ...]:
        return _shape(self.spec)

    @property
    def shape(self) -> tuple[int, ...]:
        """In the node's layout."""
        keras_shape = self.keras_shape
        return tuple(keras_shape[a] for a in self.axes)

    def dim(self, keras_axis: int) -> int:
        """The node axis of a Keras axis (negative counts from the end)."""
        return self.axes.index(keras_axis % len(self.axes))


def _shape(spec: Any) -> tuple[int, ...]:
    shape = tuple(spec.shape)
    if any(s is None for s in shape):
        raise ConvArithError("input_shape", "must make every size known (Keras left one undetermined)", shape)
    return tuple(int(s) for s in shape)


def _ints(value: object) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)  # type: ignore[attr-defined]


def _pairs(value: object, n: int) -> tuple[tuple[int, int], ...]:
    """A ZeroPadding / Cropping argument as one ``(before, after)`` per spatial axis."""
    if isinstance(value, int):
        return ((value, value),) * n
    items = list(value)  # type: ignore[call-overload]
    if n == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return ((int(items[0]), int(items[1])),)
    out = []
    for item in items:
        b, a = (item, item) if isinstance(item, int) else tuple(item)
        out.append((int(b), int(a)))
    return tuple(out)


class _Tracer:
    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.graph = Graph()
        self.counted: set[int] = set()
        try:
            from keras.src.layers.input_spec import assert_input_compatibility
        except ImportError:  # pragma: no cover - a Keras without it: no check beyond the shapes
            assert_input_compatibility = None
        self.check_input = assert_input_compatibility

    # -- bookkeeping ---------------------------------------------------------------------------------

    def parameters(self, layer: Any) -> int:
        """A layer's trainable parameters (as PyTorch's, not batch normalisation's moving statistics), at
        its first use only."""
        if id(layer) in self.counted or not hasattr(layer, "trainable_weights"):
            return 0
        self.counted.add(id(layer))
        return sum(math.prod(int(d) for d in w.shape) for w in layer.trainable_weights)

    def spec(self, shape: Sequence[int], dtype: Any) -> Any:
        return self.keras.KerasTensor(tuple(int(s) for s in shape), dtype=dtype)

    def add(
        self,
        name: str,
        op: Op,
        inputs: Sequence[_Tensor],
        spec: Any,
        axes: Axes,
        *,
        source: str,
        parameters: int = 0,
        mismatch: Sequence[Sequence[int]] | None = None,
        channels: bool | None = None,
        **params: object,
    ) -> _Tensor:
        """A node; ``channels``: whether its axis 1 is the channels (default: as its first input's, if
        the rank is the same)."""
        if channels is None:
            same = bool(inputs) and len(inputs[0].axes) == len(axes) and op not in ("reshape", "permute")
            channels = same and inputs[0].channels
        keras_shape = _shape(spec)
        shape = tuple(keras_shape[a] for a in axes)
        extra: dict[str, Any] = dict(params)
        node = self.graph.add(
            name,
            op,
            [t.node for t in inputs],
            shape,
            source=source,
            parameters=parameters,
            mismatch=mismatch,
            **extra,
        )
        return _Tensor(node, axes, spec, channels)

    def arrange(self, t: _Tensor, axes: Axes, name: str, *, channels: bool = False) -> _Tensor:
        """``t`` with its node's axes in the given Keras order: a ``permute`` node where they differ
        (``channels``: the order is a layer's layout, axis 1 its channels)."""
        if t.axes == axes:
            return _Tensor(t.node, t.axes, t.spec, t.channels or channels)
        order = tuple(t.axes.index(a) for a in axes)
        return self.add(
            f"{name}.permute", "permute", [t], t.spec, axes, source="layout", channels=channels, order=order
        )

    def fit(self, ins: Sequence[_Tensor], skip: int | None) -> tuple[list[_Tensor], list[tuple[int, ...]] | None]:
        """Inputs (in one layout) whose sizes disagree, other than by broadcasting a 1 (``skip``: a
        concatenation's axis, where sizes may differ, and where no size broadcasts), cropped to the
        smallest; the shapes if any was cropped."""
        shapes = [t.shape for t in ins]
        if len({len(s) for s in shapes}) != 1:
            return list(ins), None
        small: dict[int, int] = {}
        for d in range(len(shapes[0])):
            if d == skip:
                continue
            sizes = {s[d] for s in shapes} - (set() if skip is not None else {1})
            if len(sizes) > 1:
                small[d] = min(sizes)
        if not small:
            return list(ins), None
        out = []
        for t in ins:
            keras_shape = list(t.keras_shape)
            for d, size in small.items():
                if keras_shape[t.axes[d]] != 1 or skip is not None:
                    keras_shape[t.axes[d]] = size
            out.append(_Tensor(t.node, t.axes, self.spec(keras_shape, t.spec.dtype), t.channels))
        return out, shapes

    # -- the graph of a Functional model -----------------------------------------------------------------

    def walk(self, fn: Any, inputs: Sequence[_Tensor], prefix: str) -> list[_Tensor]:
        """Every node of a Functional model, deepest first (Keras' own order), from its inputs."""
        tensors: dict[int, _Tensor] = {id(x): t for x, t in zip(fn.inputs, inputs, strict=True)}
        by_depth = fn._nodes_by_depth
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if node.operation is None or node.is_input:
                    continue
                if any(id(x) not in tensors for x in node.input_tensors):
                    continue
                ins = [tensors[id(x)] for x in node.input_tensors]
                outs = self.visit(node, ins, prefix)
                for x, y in zip(node.outputs, outs, strict=True):
                    tensors[id(x)] = y
        missing = [x for x in fn.outputs if id(x) not in tensors]
        if missing:
            raise ConvArithError("model", "has an output that does not depend on its input", missing[0].name)
        return [tensors[id(x)] for x in fn.outputs]

    def evaluate(self, node: Any, ins: Sequence[_Tensor]) -> list[Any]:
        """Keras' output specs of a node for these inputs (shapes only), its input checks first."""
        op = node.operation
        values = {id(x): t.spec for x, t in zip(node.input_tensors, ins, strict=True)}
        args, kwargs = node.arguments.fill_in(values)
        if isinstance(op, self.keras.layers.Layer) and self.check_input is not None and args:
            self.check_input(op.input_spec, args[0], layer_name=op.name)
        out = op.compute_output_spec(*args, **kwargs)
        return list(self.keras.tree.flatten(out))

    def visit(self, node: Any, ins: list[_Tensor], prefix: str) -> list[_Tensor]:
        op = node.operation
        keras = self.keras
        name = prefix + str(op.name)
        cls = type(op).__name__
        if isinstance(op, keras.Model):
            inner = op if hasattr(op, "_nodes_by_depth") else getattr(op, "_functional", None)
            if inner is not None and len(inner.inputs) == len(ins):
                # the parameters are counted layer by layer inside
                return self.walk(inner, ins, name + "/")
        if not isinstance(op, keras.layers.Layer):
            return self.operation(node, ins, name, cls)
        if cls in _MERGE_LAYERS or cls == "Concatenate":
            return [self.merge(node, ins, name, cls, getattr(op, "axis", None) if cls == "Concatenate" else None)]
        specs = self.evaluate(node, ins)
        x = ins[0]
        if len(specs) != 1:
            return self.unknown(op, ins, specs, name, f"keras.layers.{cls} with {len(specs)} outputs")
        y = specs[0]
        rank = len(x.keras_shape)
        if _LAYER_CLASS.fullmatch(cls):
            return [self.layer(op, cls, x, y, name)]
        if _SEPARABLE.fullmatch(cls):
            return [self.separable(op, cls, x, y, name)]
        if cls in _ELEMENTWISE_LAYERS or cls == "Softmax":
            if len(y.shape) != rank:
                return self.unknown(op, ins, specs, name, f"keras.layers.{cls} changing the rank")
            activation = getattr(op, "activation", None)
            softmax = cls == "Softmax" or getattr(activation, "__name__", "") in _SOFTMAX
            if softmax:
                axis = getattr(op, "axis", -1) if cls == "Softmax" else -1
                return [self.softmax(x, y, axis, name, cls, self.parameters(op), keep=True)]
            what = getattr(activation, "__name__", None) or cls
            count = self.parameters(op)
            return [self.add(name, "elementwise", [x], y, x.axes, source=cls, parameters=count, what=what)]
        if cls == "Dense":
            return [self.dense(op, x, y, name)]
        if match := _GLOBAL.fullmatch(cls):
            x = self.arrange(x, _layout(op.data_format, rank), name, channels=True)
            keep = bool(getattr(op, "keepdims", False))
            return [
                self.add(
                    name, "reduce", [x], y, x.axes if keep else _identity(2), source=cls, channels=True,
                    dims=tuple(range(2, rank)), keepdim=keep, what="mean" if match.group(1) == "Average" else "max",
                )
            ]  # fmt: skip
        if match := _ADAPTIVE.fullmatch(cls):
            x = self.arrange(x, _layout(op.data_format, rank), name, channels=True)
            return [
                self.add(
                    name, "adaptive_pool", [x], y, x.axes, source=cls, dims=tuple(range(2, rank)),
                    reduce="avg" if match.group(1) == "Average" else "max",
                )
            ]  # fmt: skip
        if match := _PAD.fullmatch(cls):
            n = int(match.group(2))
            x = self.arrange(x, _layout(getattr(op, "data_format", None), rank), name, channels=True)
            crop = match.group(1) == "Cropping"
            pairs = _pairs(op.cropping if crop else op.padding, n)
            sign = -1 if crop else 1
            pads = ((0, 0), (0, 0), *((sign * b, sign * a) for b, a in pairs))
            return [self.add(name, "pad", [x], y, x.axes, source=cls, pads=pads, mode="zeros")]
        if match := _UPSAMPLING.fullmatch(cls):
            return [self.upsampling(op, cls, int(match.group(1)), x, y, name)]
        if cls == "Resizing":
            return [self.resizing(op, x, y, name)]
        if cls == "Flatten":
            order = _identity(rank)
            if getattr(op, "data_format", None) == "channels_first" and rank > 2:
                order = (0, *range(2, rank), 1)  # Keras moves the channels last, then flattens
            x = self.arrange(x, order, name)
            return [self.add(name, "reshape", [x], y, _identity(len(y.shape)), source=cls)]
        if cls == "Reshape":
            x = self.arrange(x, _identity(rank), name)
            return [self.add(name, "reshape", [x], y, _identity(len(y.shape)), source=cls)]
        if cls == "Permute":
            keras_order = (0, *(int(d) for d in op.dims))
            order = tuple(x.axes.index(a) for a in keras_order)
            return [self.add(name, "permute", [x], y, _identity(rank), source=cls, order=order)]
        return self.unknown(op, ins, specs, name, f"keras.layers.{cls}")

    # -- layers --------------------------------------------------------------------------------------

    def layer(self, op: Any, cls: str, x: _Tensor, y: Any, name: str) -> _Tensor:
        """A convolution, transposed convolution, depthwise convolution or pool."""
        from .keras import _layer_from, _match

        rank = len(x.keras_shape)
        x = self.arrange(x, _layout(getattr(op, "data_format", None), rank), name, channels=True)
        kind, n, transposed = _match(cls)
        values = _values(op)
        pool = kind in ("MaxPooling", "AveragePooling")
        try:
            layer = _layer_from(kind, n, transposed, values, None if pool else x.shape[1])
        except ConvArithError as err:
            return self.add(name, "unknown", [x], y, x.axes, source=cls, parameters=self.parameters(op), what=str(err))
        self._agree(layer, x, y, name)
        out = self.add(name, "layer", [x], y, x.axes, source=cls, parameters=self.parameters(op), layer=layer)
        return self.fused(op, out, name)

    def _agree(self, layer: Layer, x: _Tensor, y: Any, name: str) -> None:
        """The layer read must give Keras' own output size (else the reading is wrong: say so)."""
        bound = layer.bind(x.shape)
        keras_shape = _shape(y)
        want = tuple(keras_shape[a] for a in x.axes)[2:]
        if tuple(bound.output_spatial) != want:
            raise ConvArithError(
                "model", f"layer {name} read as {layer!r} gives {bound.output_spatial} where Keras gives {want}", name
            )

    def separable(self, op: Any, cls: str, x: _Tensor, y: Any, name: str) -> _Tensor:
        """A separable convolution: its depthwise half, then its pointwise half."""
        from .keras import separable

        rank = len(x.keras_shape)
        x = self.arrange(x, _layout(getattr(op, "data_format", None), rank), name, channels=True)
        depth, point = separable(op)
        bound = depth.bind(x.shape)
        middle = [0] * rank
        for i, size in enumerate(bound.output_shape):
            middle[x.axes[i]] = int(size)
        total = self.parameters(op)
        first = math.prod(int(d) for d in op.depthwise_kernel.shape) if total else 0
        half = self.spec(middle, y.dtype)
        mid = self.add(f"{name}.depthwise", "layer", [x], half, x.axes, source=cls, parameters=first, layer=depth)
        self._agree(point, mid, y, name)
        out = self.add(name, "layer", [mid], y, x.axes, source=cls, parameters=total - first, layer=point)
        return self.fused(op, out, name)

    def fused(self, op: Any, t: _Tensor, name: str) -> _Tensor:
        """A layer's own activation: a node only when it is a softmax across positions."""
        activation = getattr(getattr(op, "activation", None), "__name__", "")
        if activation in _SOFTMAX and t.dim(-1) != 1:
            return self.softmax(t, t.spec, -1, f"{name}.activation", activation, 0, keep=False)
        return t

    def softmax(
        self, x: _Tensor, y: Any, axis: object, name: str, source: str, parameters: int, *, keep: bool
    ) -> _Tensor:
        """A softmax over Keras ``axis``: across the channels it is cell by cell, across anything else (a
        spatial axis, features whose labels are not known here) a reduction (``keep``: a node even when
        it is cell by cell)."""
        dims = tuple(sorted({x.dim(a) for a in _ints(axis)}))
        if all((d == 1 and x.channels) or x.shape[d] == 1 for d in dims):
            if not keep:
                return x
            return self.add(name, "elementwise", [x], y, x.axes, source=source, parameters=parameters, what="softmax")
        return self.add(
            name, "reduce", [x], y, x.axes, source=source, parameters=parameters, dims=dims, keepdim=True,
            what="softmax",
        )  # fmt: skip

    def dense(self, op: Any, x: _Tensor, y: Any, name: str) -> _Tensor:
        dim = x.dim(-1)
        out = self.add(
            name, "linear", [x], y, x.axes, source="Dense", parameters=self.parameters(op), dim=dim,
            channels=True if dim == 1 else None,
            in_features=x.shape[dim],
        )  # fmt: skip
        return self.fused(op, out, name)

    def upsampling(self, op: Any, cls: str, n: int, x: _Tensor, y: Any, name: str) -> _Tensor:
        rank = len(x.keras_shape)
        x = self.arrange(x, _layout(getattr(op, "data_format", None), rank), name, channels=True)
        mode = str(getattr(op, "interpolation", "nearest"))
        if mode == "nearest":
            rule = Resize("nearest", "asymmetric", "floor")
        elif mode in ("bilinear", "bicubic"):
            rule = self._smooth(mode)
        else:
            return self.add(name, "unknown", [x], y, x.axes, source=cls, what=f"{cls} {mode} interpolation")
        return self._resize(x, y, rule, name, cls)

    def resizing(self, op: Any, x: _Tensor, y: Any, name: str) -> _Tensor:
        rank = len(x.keras_shape)
        x = self.arrange(x, _layout(getattr(op, "data_format", None), rank), name, channels=True)
        mode = str(op.interpolation)
        plain = not (op.crop_to_aspect_ratio or op.pad_to_aspect_ratio or getattr(op, "antialias", False))
        rule: Resize | None = None
        if plain and mode == "nearest":
            rule = Resize("nearest", "tf_half_pixel_for_nn", "floor")
        elif plain and mode in ("bilinear", "bicubic"):
            rule = self._smooth(mode)
        if rule is None:
            return self.add(name, "unknown", [x], y, x.axes, source="Resizing", what=f"Resizing ({mode})")
        return self._resize(x, y, rule, name, "Resizing")

    def _smooth(self, mode: str) -> Resize:
        if mode == "bilinear":
            return Resize("linear", "half_pixel", clamp=True)
        torch = self.keras.backend.backend() == "torch"
        return Resize("cubic", "half_pixel", clamp=True, cubic_a=-0.75 if torch else -0.5)

    def _resize(self, x: _Tensor, y: Any, rule: Resize, name: str, source: str) -> _Tensor:
        keras_shape = _shape(y)
        after = tuple(keras_shape[a] for a in x.axes)
        dims = tuple(d for d in range(2, len(after)) if after[d] != x.shape[d])
        if not dims:
            return self.add(name, "elementwise", [x], y, x.axes, source=source, what="resize to the same size")
        return self.add(name, "resize", [x], y, x.axes, source=source, rules=(rule,) * len(dims), dims=dims)

    def merge(self, node: Any, ins: list[_Tensor], name: str, cls: str, axis: object) -> _Tensor:
        """A merge layer or a concatenation: inputs in one layout, mismatched sizes cropped and recorded."""
        ranks = {len(t.keras_shape) for t in ins}
        axes = ins[0].axes if len(ranks) == 1 else None
        arranged = [self.arrange(t, axes if axes is not None else _identity(len(t.keras_shape)), name) for t in ins]
        concat = axis is not None
        dim = arranged[0].dim(int(axis)) if concat else None  # type: ignore[call-overload]
        fitted, mismatch = self.fit(arranged, dim)
        [y] = self.evaluate(node, fitted)
        out_axes = arranged[0].axes if axes is not None else _identity(len(y.shape))
        parameters = self.parameters(node.operation)
        if concat:
            return self.add(
                name, "concat", arranged, y, out_axes, source=cls, parameters=parameters, mismatch=mismatch, dim=dim
            )
        return self.add(
            name, "merge", arranged, y, out_axes, source=cls, parameters=parameters, mismatch=mismatch, what=cls.lower()
        )

    def unknown(self, op: Any, ins: Sequence[_Tensor], specs: Sequence[Any], name: str, what: str) -> list[_Tensor]:
        x = ins[0]
        parameters = self.parameters(op)
        out = []
        for k, y in enumerate(specs):
            rank = len(_shape(y))
            axes = x.axes if rank == len(x.axes) else _identity(rank)
            count = parameters if k == 0 else 0
            out.append(self.add(name, "unknown", ins, y, axes, source=type(op).__name__, parameters=count, what=what))
        return out

    # -- keras.ops used on Keras tensors ---------------------------------------------------------------

    def operation(self, node: Any, ins: list[_Tensor], name: str, cls: str) -> list[_Tensor]:
        """A ``keras.ops`` function called on Keras tensors (not a layer)."""
        op = node.operation
        if cls in _MERGE_OPS and len(ins) > 1:
            return [self.merge(node, ins, name, cls, None)]
        if cls == "Concatenate" and len(ins) > 1:
            return [self.merge(node, ins, name, cls, getattr(op, "axis", 0))]
        specs = self.evaluate(node, ins)
        x = ins[0]
        if len(specs) != 1 or len(ins) != 1:
            return self.unknown(op, ins, specs, name, f"keras.ops.{cls}")
        y = specs[0]
        shape = _shape(y)
        rank = len(x.keras_shape)
        if cls in _ELEMENTWISE_OPS and shape == x.keras_shape:
            return [self.add(name, "elementwise", [x], y, x.axes, source=f"ops.{cls}", what=cls.lower())]
        if cls in ("Softmax", "LogSoftmax") and shape == x.keras_shape:
            return [self.softmax(x, y, getattr(op, "axis", -1), name, f"ops.{cls}", 0, keep=True)]
        if cls == "Transpose":
            keras_order = tuple(range(rank))[::-1] if op.axes is None else tuple(int(a) % rank for a in op.axes)
            order = tuple(x.axes.index(a) for a in keras_order)
            return [self.add(name, "permute", [x], y, _identity(rank), source=f"ops.{cls}", order=order)]
        if cls in ("Reshape", "ExpandDims", "Squeeze"):
            x = self.arrange(x, _identity(rank), name)
            where: dict[str, Any] = {}
            axis = getattr(op, "axis", None)
            if cls == "ExpandDims":
                where["inserted"] = tuple(sorted(a % len(shape) for a in _ints(axis)))
            elif cls == "Squeeze":
                gone = range(rank) if axis is None else (a % rank for a in _ints(axis))
                where["removed"] = tuple(sorted(d for d in gone if x.keras_shape[d] == 1))
            return [self.add(name, "reshape", [x], y, _identity(len(shape)), source=f"ops.{cls}", **where)]
        if cls in _REDUCE_OPS:
            axis = getattr(op, "axis", None)
            keep = bool(getattr(op, "keepdims", False))
            dims = tuple(range(rank)) if axis is None else tuple(sorted({x.dim(a) for a in _ints(axis)}))
            kept = tuple(a for i, a in enumerate(x.axes) if i not in dims)
            out_axes = x.axes if keep else tuple(sorted(kept).index(a) for a in kept)
            return [
                self.add(name, "reduce", [x], y, out_axes, source=f"ops.{cls}", dims=dims, keepdim=keep,
                         what=_REDUCE_OPS[cls])
            ]  # fmt: skip
        return self.unknown(op, ins, specs, name, f"keras.ops.{cls}")


def _values(op: Any) -> dict[str, Any]:
    """A Keras layer's constructor values, as :func:`convarith.frameworks.keras.from_native` reads
    them (the activation left out: it is not part of the layer's geometry)."""
    keys = (
        "filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "use_bias", "output_padding",
        "depth_multiplier", "pool_size", "data_format",
    )  # fmt: skip
    return {k: getattr(op, k) for k in keys if hasattr(op, k)}


# -- the model ---------------------------------------------------------------------------------------------


def _import_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


@contextmanager
def _own_names() -> Iterator[None]:
    """Layers created here named from scratch (``conv2d``, ``conv2d_1`` …), whatever the process made
    before, so that a model rebuilt at another size has the same names; the counters restored after."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover
        yield
        return
    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", None)
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)


def _cached(key: tuple[object, ...], build: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        return build()
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    model = build()
    _cache[key] = model
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return model


def _frozen(options: Mapping[str, Any]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


def _model(keras: Any, model: object, shape: tuple[int, ...], options: Mapping[str, Any]) -> Any:
    """The Keras model ``model`` names (built or loaded, and kept), or ``model`` itself."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if text.startswith(_APPLICATIONS):
            name = text[len(_APPLICATIONS) :]
            build = getattr(keras.applications, name, None)
            if build is None or not callable(build) or name.startswith("_"):
                raise ConvArithError("model", "must name a function of keras.applications", text)

            def make() -> Any:
                with _own_names():
                    return build(**{"weights": None, "input_shape": shape[1:], **options})

            return _cached(("applications", name, shape[1:], _frozen(options)), make)
        if not os.path.isfile(text):
            raise ConvArithError("model", "must be an existing .keras or .h5 file", text)
        stat = os.stat(text)

        def load() -> Any:
            with _own_names():
                return keras.saving.load_model(text, **{"compile": False, **options})

        return _cached(("file", os.path.realpath(text), stat.st_mtime_ns, stat.st_size, _frozen(options)), load)
    if options:
        rule = "are for a model built or loaded by name; a model object takes none"
        raise ConvArithError("options", rule, sorted(options))
    if not isinstance(model, keras.Model):
        raise ConvArithError("model", "must be a Keras Model (Functional or Sequential)", type(model).__name__)
    return model


def _functional(keras: Any, model: Any, shape: tuple[int, ...]) -> Any:
    """The Functional graph of a model (a Sequential's own; an unbuilt Sequential built at ``shape``)."""
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            model.build((None, *shape[1:]))
        if getattr(model, "_functional", None) is not None:
            return model._functional
    elif hasattr(model, "_nodes_by_depth") and model.inputs:
        return model
    raise ConvArithError(
        "model", "must be a Functional or Sequential Keras model (a subclassed model has no graph to follow)",
        type(model).__name__,
    )  # fmt: skip


def _input_axes(fn: Any, rank: int) -> Axes:
    """The layout of the model's input: the ``data_format`` of the first layer that reads it with one,
    through layers that act cell by cell (else Keras' ``image_data_format``)."""
    followed = {id(x) for x in fn.inputs}
    for depth in sorted(fn._nodes_by_depth, reverse=True):
        for node in fn._nodes_by_depth[depth]:
            if node.is_input or not any(id(x) in followed for x in node.input_tensors):
                continue
            op = node.operation
            fmt = getattr(op, "data_format", None)
            if fmt in ("channels_last", "channels_first"):
                return _layout(fmt, rank)
            cls = type(op).__name__
            if cls in _ELEMENTWISE_LAYERS or cls in _MERGE_LAYERS or cls in _ELEMENTWISE_OPS:
                followed.update(id(x) for x in node.outputs)
    return _layout(_import_keras().config.image_data_format(), rank)


def trace(model: object, input_shape: Sequence[int], **options: Any) -> Graph:
    """The graph of a Keras model at ``input_shape`` (in the model's own layout, channels last for
    most), traced on shapes only, in convarith's layout.

    ``model``: a Functional or Sequential ``keras.Model``, a ``.keras`` file, or
    ``"keras.applications.NAME"``; ``options`` go to the application's constructor (``include_top=False``)
    or to ``keras.saving.load_model``.
    """
    keras = _import_keras()
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConvArithError("input_shape", "must be integers", input_shape) from None
    if not shape or min(shape) < 1:
        raise ConvArithError("input_shape", "must be positive sizes, the batch first", shape)
    fn = _functional(keras, _model(keras, model, shape, options), shape)
    if len(fn.inputs) != 1:
        raise ConvArithError("model", "must have one input (the analysis follows one)", len(fn.inputs))
    x = fn.inputs[0]
    if len(x.shape) != len(shape):
        raise ConvArithError("input_shape", f"must have the rank of the model's input {tuple(x.shape)}", shape)
    tracer = _Tracer(keras)
    spec = tracer.spec(shape, x.dtype)
    axes = _input_axes(fn, len(shape))
    name = str(x._keras_history.operation.name)
    node = tracer.graph.add(name, "input", (), tuple(shape[a] for a in axes), source="InputLayer", layout=axes)
    outputs = tracer.walk(fn, [_Tensor(node, axes, spec, len(shape) > 2)], "")
    tracer.graph.output_names = list(dict.fromkeys(t.node for t in outputs))
    return tracer.graph
