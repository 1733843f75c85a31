"""A model as a graph of framework-neutral operations: what the tracers write and the analysis reads.

A tracer (``convarith.frameworks.trace_*``) runs a model on shapes only and writes one
:class:`Node` per operation on data that depends on the model's input, in the order they ran,
in convarith's layout — ``(N, C, *spatial)`` (channels-last models are turned round). Parameters,
buffers and tensors that do not depend on the input are not nodes: an operation names only its
data inputs.

The operations (``Node.op``) and their ``params``:

========================  =============================================================================
``input``                 the model's input
``layer``                 ``layer``: a :class:`~convarith.Layer` (convolution, transposed convolution,
                          max or average pool) over the trailing ``layer.ndim`` axes
``pad``                   ``pads``: one ``(before, after)`` per axis of the input (negative crops),
                          ``mode``: zeros, reflect, replicate, circular
``slice``                 ``dim``, ``start``, ``stop``, ``step`` (``0 ≤ start ≤ stop ≤ size``)
``select``                ``dim``, ``index``: one index taken, the axis removed
``resize``                ``rule``: a :class:`~convarith.analysis.maps.Resize`, over the trailing axes
                          whose sizes change (or ``dims``)
``pixel_shuffle``         ``factor`` (channels to space); ``pixel_unshuffle``: ``factor`` (space to channels)
``adaptive_pool``         adaptive average or max pooling to the output's trailing sizes; ``reduce``
``reduce``                ``dims`` reduced (mean, sum, max, a norm …), ``keepdim``
``elementwise``           one data input, each output cell from the same cell (activations, affine
                          normalisation, dropout, casts, arithmetic with constants); ``what``. A
                          normalisation whose statistics run over positions (group, instance, layer
                          norm) is elementwise by convention: its statistics count as constants
``merge``                 two or more data inputs combined cell by cell, with broadcasting (add, mul,
                          sub, max, where …); ``what``
``concat``                ``dim``
``permute``               ``order``
``reshape``               view, reshape, flatten, squeeze, unsqueeze (from the shapes)
``expand``                size-1 axes broadcast to the output's sizes
``linear``                ``dim``: a dense map with constant weights over one axis (a classifier's
                          ``Linear`` after a flatten, a channel ``Linear`` in channels-last blocks)
``unknown``               anything else: the point beyond which fields are unknown; ``what``
========================  =============================================================================

``merge``, ``concat`` and ``unknown`` read one or more data inputs, every other operation one.

Examples
--------
>>> from convarith import Layer
>>> g = Graph()
>>> x = g.add("x", "input", (), (1, 3, 8, 8))
>>> c = g.add("conv", "layer", (x,), (1, 4, 8, 8), layer=Layer("conv2d", 3, 4, kernel_size=3, padding=1))
>>> g.add("relu", "elementwise", (c,), (1, 4, 8, 8), what="relu")
'relu'
>>> [n.op for n in g.nodes], g.outputs
(['input', 'layer', 'elementwise'], ('relu',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..errors import ConvArithError
from ..layer import Layer

__all__ = ["OPS", "Graph", "Node", "Op"]

Op = Literal[
    "input",
    "layer",
    "pad",
    "slice",
    "select",
    "resize",
    "pixel_shuffle",
    "pixel_unshuffle",
    "adaptive_pool",
    "reduce",
    "elementwise",
    "merge",
    "concat",
    "permute",
    "reshape",
    "expand",
    "linear",
    "unknown",
]
OPS: tuple[str, ...] = get_args(Op)
_OPS = frozenset(OPS)
_MANY_INPUTS = ("merge", "concat", "unknown")


@dataclass(frozen=True)
class Node:
    """One operation of a traced model."""

    name: str
    """Unique in the graph: the module or layer path where there is one (``layer1.0.conv1``)."""
    op: Op
    inputs: tuple[str, ...]
    """The data inputs, by node name, in argument order."""
    shape: tuple[int, ...]
    """The output's shape, in convarith's layout."""
    params: Mapping[str, object] = field(default_factory=dict)
    source: str = ""
    """The framework's own name for the operation (``aten.convolution``, ``Conv2D``, ``Conv``)."""
    parameters: int = 0
    """Trainable parameters the operation uses (each counted at its first use)."""
    multiply_adds: int = 0
    """Multiply-adds of one sample (convolutions and linear maps; see :mod:`convarith.analysis`)."""
    mismatch: tuple[tuple[int, ...], ...] | None = None
    """For a merge whose inputs' shapes did not match: those shapes (the tracer went on with every
    input padded with zeros at the end to the largest size on each axis)."""

    @property
    def layer(self) -> Layer | None:
        value = self.params.get("layer")
        return value if isinstance(value, Layer) else None

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        shapes = self.params.get("input_shapes")
        return shapes if isinstance(shapes, tuple) else ()


class Graph:
    """Nodes in the order they ran (so every input comes before its consumers)."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._used: set[str] = set()
        self.output_names: list[str] | None = None
        """The model's outputs when the tracer knows them; else every node no other node reads."""

    def add(
        self,
        name: str,
        op: Op,
        inputs: Sequence[str],
        shape: Sequence[int],
        *,
        source: str = "",
        parameters: int = 0,
        multiply_adds: int = 0,
        mismatch: Sequence[Sequence[int]] | None = None,
        **params: object,
    ) -> str:
        """Add a node (its name made unique with a ``_2``, ``_3`` … suffix); returns the name used."""
        if op not in _OPS:
            raise ConvArithError("op", f"must be one of {', '.join(OPS)}", op)
        if len(inputs) > 1 and op not in _MANY_INPUTS:
            raise ConvArithError("inputs", f"a {op} node reads one data input (merge, concat, unknown: more)", inputs)
        nodes = self._nodes
        for i in inputs:
            if i not in nodes:
                raise ConvArithError("inputs", "must name nodes added before", i)
        unique, n = name, 1
        while unique in nodes:
            n += 1
            unique = f"{name}_{n}"
        shapes = tuple([nodes[i].shape for i in inputs])
        node = nodes[unique] = object.__new__(Node)  # Node's fields, set at once (a frozen __init__ sets each)
        node.__dict__.update(
            name=unique,
            op=op,
            inputs=tuple(inputs),
            shape=tuple(map(int, shape)),
            params={**params, "input_shapes": shapes},
            source=source,
            parameters=parameters,
            multiply_adds=multiply_adds,
            mismatch=None if mismatch is None else tuple(tuple(int(v) for v in s) for s in mismatch),
        )
        self._used.update(inputs)
        return unique

    def __getitem__(self, name: str) -> Node:
        return self._nodes[name]

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(n.name for n in self._nodes.values() if n.op == "input")

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.output_names is not None:
            return tuple(self.output_names)
        return tuple(name for name in self._nodes if name not in self._used)

    def consumers(self) -> dict[str, list[str]]:
        """Each node's readers."""
        out: dict[str, list[str]] = {name: [] for name in self._nodes}
        for node in self._nodes.values():
            for i in node.inputs:
                out[i].append(node.name)
        return out
