"""The analysis of a traced graph: one report per node and the model's own findings.

Conventions (stated once, used everywhere):

- **Receptive field** of a node along input axis ``k``: the input cells its cells read, on the
  unbounded grid (padding counts as cells, as in Araujo, Norris & Sim, Distill 2019), per output
  phase when an upsampling gives the node several (its size is the largest); **effective
  stride** the input cells per output cell (``1/2`` after a ×2 upsampling, ``0`` once the axis is
  pooled away: every cell then reads the same cells); **start** the first cell output cell 0
  reads (``−start`` is Distill's effective padding) and **centre** the centre of that field.
  A max pool counts its whole window. Normalisation statistics count as constants.
- **Exact fields** (:meth:`Analysis.field`) and **coverage**: the real input cells read with a
  non-zero weight, borders clipped, padding modes mapped back, every branch followed.
- **Multiply-adds** per sample: a convolution ``C_out·∏out·(C_in/g)·∏k``, a transposed one as its
  equivalent direct convolution (the products with inserted zeros included), a dense map
  ``in·out`` per position; bias additions, pooling and activations are not counted.
- **Parameters**: the trainable parameters an operation uses, each counted at its first use.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConvArithError
from ..findings import Finding, finding
from .axes import Periodic
from .fields import Lost, NodeFields, State, describe, layer_findings, overlap_profiles, propagate, read_back

if TYPE_CHECKING:
    from ..geometry.bound import BoundLayer
    from .graph import Graph, Node

__all__ = ["Analysis", "NodeReport", "analyze_graph"]

_UPSAMPLING = ("resize", "pixel_shuffle")
_LIST = 16


@dataclass(frozen=True)
class NodeReport:
    """One node: the operation, its fields along each input axis, its findings."""

    node: Node
    fields: tuple[State, ...]
    graph_findings: tuple[Finding, ...]
    """What the analysis of the graph found at this node: a mismatched or misaligned merge, an unknown
    operation (:attr:`findings` adds a layer's own)."""
    overlap: tuple[tuple[float, ...] | None, ...]
    """Per input axis, for upsampling nodes and outputs: what an all-ones input through all-ones
    kernels gives each phase of a central period of its cells, the smallest non-zero taken as 1
    (:func:`~convarith.analysis.fields.overlap_profiles`; ``None``: even, or not followed)."""
    bound: BoundLayer | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @functools.cached_property
    def findings(self) -> tuple[Finding, ...]:
        """:attr:`graph_findings`, then a layer's own (:meth:`~convarith.BoundLayer.findings`, worked out
        at the first call: only a report that shows them needs them)."""
        if self.bound is None:
            return self.graph_findings
        return (*self.graph_findings, *layer_findings(self.bound.layer, tuple(self.node.input_shapes[0])))

    @property
    def multiply_adds(self) -> int:
        if self.bound is not None:
            return self.bound.multiply_adds
        node = self.node
        if node.op == "linear":
            features = node.params.get("in_features")
            if isinstance(features, int) and node.shape:
                positions = math.prod(node.shape[1:]) if len(node.shape) > 1 else 1
                return features * positions
        return 0

    def parameters_text(self) -> str:
        """The operation's hyper-parameters in a few words (resolved padding for layers)."""
        node = self.node
        if self.bound is not None:
            layer = self.bound.layer
            bits = [f"k={_axes(layer.kernel_size)}", f"s={_axes(layer.stride)}", f"p={_pads(self.bound.pads)}"]
            if any(d != 1 for d in layer.dilation):
                bits.append(f"d={_axes(layer.dilation)}")
            if layer.groups != 1:
                bits.append(f"g={layer.groups}")
            if layer.transposed and any(self.bound.output_padding):
                bits.append(f"a={_axes(self.bound.output_padding)}")
            if layer.ceil_mode:
                bits.append("ceil")
            if layer.padding_mode != "zeros":
                bits.append(layer.padding_mode)
            return " ".join(bits)
        p = node.params
        if node.op == "pad":
            pads = p.get("pads")
            assert isinstance(pads, tuple)
            return f"{_pads(tuple(x for x in pads if tuple(x) != (0, 0)))} {p.get('mode', 'zeros')}"
        if node.op == "slice":
            return f"dim {p['dim']} [{p['start']}:{p['stop']}:{p['step']}]"
        if node.op == "select":
            return f"dim {p['dim']} [{p['index']}]"
        if node.op == "resize":
            rules = p["rules"]
            assert isinstance(rules, tuple)
            return f"{rules[0].mode} {rules[0].coordinate}" if rules else ""
        if node.op in ("pixel_shuffle", "pixel_unshuffle"):
            return f"×{p['factor']}"
        if node.op in ("reduce", "linear", "concat", "permute"):
            key = {"reduce": "dims", "linear": "dim", "concat": "dim", "permute": "order"}[node.op]
            return f"{key} {p[key]}"
        what = p.get("what")
        return str(what) if what else ""

    def to_dict(self) -> dict[str, object]:
        node = self.node
        return {
            "name": node.name,
            "op": node.op,
            "source": node.source,
            "inputs": list(node.inputs),
            "input_shapes": [list(s) for s in node.input_shapes],
            "output_shape": list(node.shape),
            "parameters": node.parameters,
            "multiply_adds": self.multiply_adds,
            "layer": None if self.bound is None else self.bound.layer.to_dict(),
            "pads": None if self.bound is None else [list(p) for p in self.bound.pads],
            "hyper": self.parameters_text(),
            "fields": [dict(describe(s)) for s in self.fields],
            "overlap": [None if o is None else list(o) for o in self.overlap],
            "findings": [f.to_dict() for f in self.findings],
        }


def _axes(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def _pads(pads: Sequence[Sequence[int]]) -> str:
    if not pads:
        return "0"
    if all(tuple(p) == tuple(pads[0]) for p in pads) and pads[0][0] == pads[0][1]:
        return str(pads[0][0])
    return ",".join(f"({b},{a})" for b, a in pads)


def _transposed(node: Node) -> bool:
    layer = node.layer
    return layer is not None and layer.transposed


def _resizes(node: Node) -> bool:
    """Whether an operation changes a spatial size other than by its stride's exact factor."""
    if node.op in ("pad", "slice", "select", "adaptive_pool"):
        return True
    layer = node.layer
    if layer is None or not node.input_shapes:
        return False
    before = node.input_shapes[0][-layer.ndim :]
    after = node.shape[-layer.ndim :]
    if layer.transposed:
        return any(o != i * s for i, o, s in zip(before, after, layer.stride, strict=True))
    return any(o * s != i for i, o, s in zip(before, after, layer.stride, strict=True))


def _cells(cells: list[int]) -> list[int] | str:
    if len(cells) <= _LIST:
        return cells
    return f"[{', '.join(map(str, cells[:8]))}, …, {', '.join(map(str, cells[-4:]))}]"


class Analysis:
    """Everything convarith says about a model at one input shape (see the module's conventions).

    ``nodes`` in the order they ran; ``coverage`` per input axis: the cells no output reads
    (``None`` where the way back crosses an unknown operation); ``findings`` of the model as a whole.
    """

    def __init__(self, graph: Graph, fields: Mapping[str, NodeFields]) -> None:
        self.graph = graph
        self._fields = fields
        first = graph.inputs[0]
        self.input_shape: tuple[int, ...] = graph[first].shape
        self.spatial_dims = tuple(d for d, label in enumerate(fields[first].labels) if isinstance(label, int))
        outputs = set(graph.outputs)
        nodes = graph.nodes
        shown = {  # the nodes whose overlap a report shows: upsamplings and outputs
            node.name for node in nodes if node.op in _UPSAMPLING or node.name in outputs or _transposed(node)
        }
        self._profiles: dict[str, dict[int, list[float]]] = {}
        counts = overlap_profiles(graph, fields, shown, self._profiles)  # and the others' when asked for
        reports = []
        for node in nodes:
            f = fields[node.name]
            overlap = self._overlap(node, f, counts[node.name]) if node.name in shown else (None,) * len(f.states)
            found = f.findings if node.mismatch is None else self._blame(node, f.findings)
            reports.append(NodeReport(node, f.states, tuple(found), overlap, f.bound))
        self.nodes: tuple[NodeReport, ...] = tuple(reports)
        self._by_name = {r.name: r for r in self.nodes}
        lost = next((s for r in self.nodes for s in r.fields if isinstance(s, Lost)), None)
        self.unknown_from: str | None = None if lost is None else lost.node
        self.coverage = self._coverage()
        self.findings: tuple[Finding, ...] = tuple(self._model_findings())

    # -- per node ---------------------------------------------------------------------------------

    def _overlap(
        self, node: Node, f: NodeFields, profiles: Mapping[int, list[float]]
    ) -> tuple[tuple[float, ...] | None, ...]:
        out: list[tuple[float, ...] | None] = [None] * len(f.states)
        for d, label in enumerate(f.labels):
            state = f.states[label] if isinstance(label, int) else None
            vec = profiles.get(d)
            if not isinstance(label, int) or not isinstance(state, Periodic) or vec is None or state.step == 0:
                continue
            period = state.period
            n = len(vec)
            if n < period:
                continue
            start = period * ((n // 2) // period)
            if start + period > n:
                start -= period
            window = vec[start : start + period]
            low = min((v for v in window if v > 0), default=0.0)
            if low > 0 and math.isfinite(max(window)) and max(window) - min(window) > 1e-9 * max(window):
                out[label] = tuple(float(f"{v / low:.4g}") for v in window)
        return tuple(out)

    def _blame(self, node: Node, found: list[Finding]) -> list[Finding]:
        """Name the operations on each branch of a mismatched merge that change a size other than by
        their stride's exact factor (a floor that drops cells, a valid convolution's border, a crop)."""
        ancestors = [self._ancestors(i) | {i} for i in node.inputs]
        common = set.intersection(*ancestors)
        responsible = [n.name for n in self.graph.nodes if n.name in set.union(*ancestors) - common and _resizes(n)]
        shapes = [list(s) for s in node.mismatch or ()]
        blamed = finding("skip-mismatch", node=node.name, shapes=shapes, responsible=", ".join(responsible) or "none")
        return [blamed, *found]

    def _ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for i in self.graph[stack.pop()].inputs:
                if i not in seen:
                    seen.add(i)
                    stack.append(i)
        return seen

    # -- the model ----------------------------------------------------------------------------------

    def _coverage(self) -> tuple[tuple[int, ...], ...] | None:
        wanted: dict[str, dict[int, list[bool]]] = {name: {} for name in self.graph.outputs}
        masks = read_back(self.graph, self._fields, wanted)
        if masks is None:
            return None
        return tuple(tuple(i for i, read in enumerate(m) if not read) for m in masks)

    def _model_findings(self) -> list[Finding]:
        found: list[Finding] = []
        if self.coverage is not None:
            for k, unread in enumerate(self.coverage):
                if unread:
                    found.append(finding("unread-model-input", k, count=len(unread), cells=_cells(list(unread))))
        for r in self.nodes:
            found += [f for f in r.graph_findings if f.code in ("skip-mismatch", "misaligned-merge")]
            if self.unknown_from == r.name:  # where fields become unknown; what follows it is unknown anyway
                found += [f for f in r.graph_findings if f.code == "unknown-op"]
        for name in self.graph.outputs:
            r = self._by_name[name]
            for k, phases in enumerate(r.overlap):
                if phases is not None:
                    low = min(phases)
                    ratio = "∞" if low == 0 else f"{max(phases) / low:.3g}"
                    found.append(finding("stacked-overlap", k, node=name, phase_counts=list(phases), ratio=ratio))
        return found

    def __getitem__(self, name: str) -> NodeReport:
        return self._by_name[name]

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.graph.outputs

    @property
    def parameters(self) -> int:
        return sum(r.node.parameters for r in self.nodes)

    @property
    def multiply_adds(self) -> int:
        return sum(r.multiply_adds for r in self.nodes)

    def field(self, name: str, cell: Sequence[int]) -> tuple[tuple[int, ...], ...] | None:
        """The exact input cells, per spatial axis, that one cell of a node reads (every channel of it,
        through every branch; padding modes mapped back, borders clipped). ``cell``: one index per
        spatial axis of the node's output. ``None`` where the way back is unknown.

        >>> from convarith import Layer
        >>> from convarith.analysis.graph import Graph
        >>> g = Graph()
        >>> x = g.add("x", "input", (), (1, 1, 10))
        >>> g.add("conv", "layer", (x,), (1, 1, 3), layer=Layer("conv1d", kernel_size=3, stride=3))
        'conv'
        >>> analyze_graph(g).field("conv", (2,))
        ((6, 7, 8),)
        """
        if name not in self._by_name:
            raise ConvArithError("node", "must name a node of the model", name)
        node = self.graph[name]
        labels = self._fields[name].labels
        dims = [d for d, label in enumerate(labels) if isinstance(label, int)]
        if len(cell) != len(dims):
            raise ConvArithError("cell", f"must give one index per spatial axis of {name} ({len(dims)})", tuple(cell))
        masks: dict[int, list[bool]] = {}
        for d, c in zip(dims, cell, strict=True):
            if not 0 <= c < node.shape[d]:
                raise ConvArithError("cell", f"must lie within {name}'s output {node.shape}", tuple(cell))
            masks[d] = [i == c for i in range(node.shape[d])]
        back = read_back(self.graph, self._fields, {name: masks})
        if back is None:
            return None
        return tuple(tuple(i for i, read in enumerate(m) if read) for m in back)

    def axis_dims(self, name: str) -> tuple[int | None, ...]:
        """For each spatial axis of the input, the axis of the node's output positioned along it
        (``None``: reduced away or not followed).

        >>> from convarith import Layer
        >>> from convarith.analysis.graph import Graph
        >>> g = Graph()
        >>> g.add("x", "input", (), (1, 1, 6, 6))
        'x'
        >>> analyze_graph(g).axis_dims("x")
        (2, 3)
        """
        labels = self._fields[name].labels
        return tuple(
            next((d for d, label in enumerate(labels) if label == k), None) for k in range(len(self.spatial_dims))
        )

    def profile(self, name: str) -> tuple[tuple[float, ...] | None, ...]:
        """What each cell of a node holds, along each input axis, for an all-ones input through
        all-ones kernels (:func:`~convarith.analysis.fields.overlap_profiles`); ``None`` where the
        axis is not followed."""
        labels = self._fields[name].labels
        profiles = overlap_profiles(self.graph, self._fields, [name], self._profiles)[name]
        out: list[tuple[float, ...] | None] = [None] * len(self.spatial_dims)
        for d, label in enumerate(labels):
            if isinstance(label, int) and d in profiles:
                out[label] = tuple(profiles[d])
        return tuple(out)

    def _repr_markdown_(self) -> str:
        """Jupyter: the Markdown report (summary, the table, the findings)."""
        from .report import markdown

        return markdown(self)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "input_shape": list(self.input_shape),
            "outputs": list(self.outputs),
            "parameters": self.parameters,
            "multiply_adds": self.multiply_adds,
            "unknown_from": self.unknown_from,
            "coverage": None if self.coverage is None else [list(c) for c in self.coverage],
            "nodes": [r.to_dict() for r in self.nodes],
            "findings": [f.to_dict() for f in self.findings],
        }


def analyze_graph(graph: Graph, spatial: int | None = None) -> Analysis:
    """Analyse a traced graph (:mod:`convarith.analysis.graph`)."""
    return Analysis(graph, propagate(graph, spatial))
