"""Receptive fields through a whole graph: forward in closed form, backward cell by cell.

Every axis of every tensor carries a *label*: the model input's spatial axis it is positioned
along (an ``int``), a feature axis (``"C"``; the batch is ``"N"``), or several spatial axes merged
into one by a reshape (a :class:`Merged`). :func:`propagate` walks the graph in order and gives each
node, for each spatial axis ``k`` of the model's input, its field: a
:class:`~convarith.analysis.axes.Periodic` from the node's cells along the axis labelled ``k`` to
the input cells they read — a constant map (step 0) once ``k`` has been reduced — or a
:class:`Lost` naming the operation beyond which it is unknown.

:func:`read_back` goes the other way on the real grid: from chosen output cells, the exact input
cells (per axis) they read, through every branch; :func:`overlap_profiles` follows an all-ones input forward
(the overlap of stacked transposed convolutions).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import ConvArithError
from ..findings import Finding, finding
from .axes import AxisOp, Periodic
from .maps import Resize, adaptive_axis, layer_axis, pad_axis, resize_axis, shuffle_axis, slice_axis, unshuffle_axis

if TYPE_CHECKING:
    from ..geometry.bound import AxisGeometry, BoundLayer
    from ..layer import Layer
    from .graph import Graph, Node

__all__ = [
    "Label",
    "Lost",
    "Merged",
    "NodeFields",
    "State",
    "bound_layer",
    "clear_caches",
    "layer_facts",
    "layer_findings",
    "overlap_profiles",
    "propagate",
    "read_back",
]


@dataclass(frozen=True)
class Merged:
    """Spatial axes merged into one axis by a reshape: its parts, outermost first, with their sizes
    (feature parts are ``"C"``)."""

    parts: tuple[tuple[int | str, int], ...]

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(p for p, _ in self.parts if isinstance(p, int))


Label = int | str | Merged


@dataclass(frozen=True)
class Lost:
    """Fields are unknown from this node on: it is not an operation the analysis understands."""

    node: str
    what: str

    def __str__(self) -> str:
        return f"unknown beyond {self.node} ({self.what})"


State = Periodic | Lost


@dataclass
class NodeFields:
    """What :func:`propagate` knows of one node."""

    labels: tuple[Label, ...]
    states: tuple[State, ...]
    """One per spatial axis of the model's input."""
    axis_ops: dict[int, AxisOp] = field(default_factory=dict)
    """Output axis → its map to the same axis of the (first) input, for spatial operations."""
    findings: list[Finding] = field(default_factory=list)
    """What the walk found here (a misaligned merge, an unknown operation); a layer's own findings are
    :func:`layer_findings`."""
    exact: bool = True
    """Whether :func:`read_back` can go through this node (not an unknown operation)."""
    bound: BoundLayer | None = None
    """A layer node's layer bound to its input."""


IDENTITY = Periodic.window(1, 0, 1)


def _constant(state: State, size: int) -> State:
    """The field of every cell of an axis taken together (a reduction, a dense map)."""
    if isinstance(state, Lost):
        return state
    span = state.span(0, size - 1)
    if span is None:
        return Periodic(1, 0, (None,))
    return Periodic.window(0, span[0], span[1] - span[0] + 1)


def input_labels(shape: Sequence[int], spatial: int | None = None) -> tuple[Label, ...]:
    """Labels of the model input: ``(N, C, 0, 1, …)``, or ``(N, 0)`` for a rank-2 input (a batch of
    sequences); ``spatial`` overrides how many trailing axes are spatial."""
    rank = len(shape)
    if spatial is None:
        spatial = rank - 2 if rank >= 3 else rank - 1
    if not 0 <= spatial <= rank:
        raise ConvArithError("spatial", f"must be between 0 and the input's rank {rank}", spatial)
    lead = rank - spatial
    names: list[Label] = [*("N", "C")[:lead], *("C",) * max(lead - 2, 0)]
    return (*names, *range(spatial))


class _Walk:
    def __init__(self, graph: Graph, spatial: int | None) -> None:
        self.graph = graph
        self.out: dict[str, NodeFields] = {}
        first = graph.inputs
        if len(first) != 1:
            raise ConvArithError("model", "must have one input the analysis follows", len(first))
        self.labels0 = input_labels(graph[first[0]].shape, spatial)
        self.axes = sum(1 for label in self.labels0 if isinstance(label, int))
        self.visits: dict[str, Callable[[Node], NodeFields]] = {}

    def run(self) -> dict[str, NodeFields]:
        for node in self.graph.nodes:
            self.out[node.name] = self.visit(node)
        return self.out

    def lost(self, node: Node, what: str, labels: tuple[Label, ...] | None = None) -> NodeFields:
        gone = Lost(node.name, what)
        found = [finding("unknown-op", node=node.name, what=what)]
        return NodeFields(labels or ("C",) * len(node.shape), (gone,) * self.axes, {}, found, exact=False)

    def first(self, node: Node) -> NodeFields:
        return self.out[node.inputs[0]]

    def visit(self, node: Node) -> NodeFields:
        if node.op == "input":
            return NodeFields(self.labels0, (IDENTITY,) * self.axes)
        visit = self.visits.get(node.op)
        if visit is None:
            visit = self.visits[node.op] = getattr(self, "_" + node.op)
        return visit(node)

    # -- spatial operations ----------------------------------------------------------------------

    def spatial(self, node: Node, ops: Mapping[int, AxisOp]) -> NodeFields:
        """Apply per-axis maps (input dim → its map) to the first input's fields."""
        src = self.first(node)
        states = list(src.states)
        for dim, op in ops.items():
            label = src.labels[dim]
            if isinstance(label, Merged):
                return self.lost(node, f"{node.source or node.op} over merged spatial axes", src.labels)
            if isinstance(label, int):
                state = states[label]
                if isinstance(state, Periodic):
                    states[label] = (
                        state.then(op.periodic)
                        if op.periodic is not None
                        else Lost(node.name, "a resampling ratio with no short period")
                    )
        labels = list(src.labels)
        return NodeFields(tuple(labels), tuple(states), dict(ops))

    def _layer(self, node: Node) -> NodeFields:
        layer = node.layer
        assert layer is not None
        shape = node.input_shapes[0]
        bound, axis_ops = layer_facts(layer, tuple(shape))
        if tuple(bound.output_shape) != tuple(node.shape):
            what = f"{node.name}: the traced shape {node.shape} is not what its layer computes"
            raise ConvArithError("model", what, bound.output_shape)
        lead = len(shape) - layer.ndim
        result = self.spatial(node, {lead + n: op for n, op in enumerate(axis_ops)})
        result.bound = bound
        return result

    def _pad(self, node: Node) -> NodeFields:
        pads = node.params["pads"]
        mode = str(node.params.get("mode", "zeros"))
        shape = node.input_shapes[0]
        assert isinstance(pads, tuple)
        ops = {d: pad_axis(shape[d], pad, mode) for d, pad in enumerate(pads) if tuple(pad) != (0, 0)}
        return self.spatial(node, ops)

    def _slice(self, node: Node) -> NodeFields:
        dim = _int(node.params["dim"])
        size = node.input_shapes[0][dim]
        op = slice_axis(size, _int(node.params["start"]), _int(node.params["stop"]), _int(node.params["step"]))
        return self.spatial(node, {dim: op})

    def _select(self, node: Node) -> NodeFields:
        dim = _int(node.params["dim"])
        index = _int(node.params["index"])
        size = node.input_shapes[0][dim]
        result = self.spatial(node, {dim: slice_axis(size, index, index + 1)})
        label = result.labels[dim]
        states = list(result.states)
        if isinstance(label, int):
            states[label] = _constant(states[label], 1)
        labels = result.labels[:dim] + result.labels[dim + 1 :]
        return NodeFields(labels, tuple(states), {}, result.findings)

    def _resize(self, node: Node) -> NodeFields:
        rules = _tuple(node.params["rules"])
        before, after = node.input_shapes[0], node.shape
        ops = {}
        for d, rule in zip(_dims(node), rules, strict=True):
            assert isinstance(rule, Resize)
            ops[d] = resize_axis(before[d], after[d], rule)
        return self.spatial(node, ops)

    def _pixel_shuffle(self, node: Node) -> NodeFields:
        factor = _int(node.params["factor"])
        shape = node.input_shapes[0]
        return self.spatial(node, {d: shuffle_axis(shape[d], factor) for d in range(len(shape) - 2, len(shape))})

    def _pixel_unshuffle(self, node: Node) -> NodeFields:
        factor = _int(node.params["factor"])
        shape = node.input_shapes[0]
        return self.spatial(node, {d: unshuffle_axis(shape[d], factor) for d in range(len(shape) - 2, len(shape))})

    def _adaptive_pool(self, node: Node) -> NodeFields:
        before, after = node.input_shapes[0], node.shape
        largest = node.params.get("reduce") == "max"
        ops = {}
        for d in _dims(node):
            op = adaptive_axis(before[d], after[d])
            mean = tuple(tuple(1.0 / len(src) for _ in src) for src in op.sources)
            ops[d] = replace(op, largest=True) if largest else replace(op, weights=mean)
        return self.spatial(node, ops)

    # -- reductions and dense maps -----------------------------------------------------------------

    def collapse(self, node: Node, dims: Sequence[int]) -> list[State]:
        """Every cell of these input dims read together."""
        src = self.first(node)
        shape = node.input_shapes[0]
        states = list(src.states)
        for d in dims:
            label = src.labels[d]
            parts = label.parts if isinstance(label, Merged) else ((label, shape[d]),)
            for part, size in parts:
                if isinstance(part, int):
                    states[part] = _constant(states[part], size)
        return states

    def _reduce(self, node: Node) -> NodeFields:
        src = self.first(node)
        raw = node.params["dims"]
        assert isinstance(raw, tuple)
        rank = len(node.input_shapes[0])
        dims = sorted({_int(d) % rank for d in raw})
        states = self.collapse(node, dims)
        keep = bool(node.params.get("keepdim", False))
        labels = tuple(label for d, label in enumerate(src.labels) if keep or d not in dims)
        return NodeFields(labels, tuple(states), {})

    def _linear(self, node: Node) -> NodeFields:
        src = self.first(node)
        dim = _int(node.params["dim"]) % len(node.input_shapes[0])
        states = self.collapse(node, [dim])
        labels = tuple("C" if d == dim else label for d, label in enumerate(src.labels))
        return NodeFields(labels, tuple(states), {})

    # -- cell by cell ------------------------------------------------------------------------------

    def _elementwise(self, node: Node) -> NodeFields:
        src = self.first(node)
        if len(node.shape) != len(src.labels):
            return self.lost(node, f"{node.source or 'elementwise'} changed the rank")
        return NodeFields(src.labels, src.states, {})

    def _expand(self, node: Node) -> NodeFields:
        src = self.first(node)
        shape = node.input_shapes[0]
        extra = len(node.shape) - len(shape)
        labels: tuple[Label, ...] = ("C",) * extra + src.labels
        states = list(src.states)
        for d, label in enumerate(src.labels):
            if isinstance(label, int) and shape[d] == 1 and node.shape[extra + d] != 1:
                states[label] = _constant(states[label], 1)
        return NodeFields(labels, tuple(states), {})

    def _merge(self, node: Node) -> NodeFields:
        rank = len(node.shape)
        labels: list[Label] = ["C"] * rank
        upstream = [self.out[i] for i in node.inputs]
        for up, shape in zip(upstream, node.input_shapes, strict=True):
            offset = rank - len(shape)
            for d, label in enumerate(up.labels):
                broadcast = shape[d] == 1 and node.shape[offset + d] != 1
                if not broadcast and labels[offset + d] == "C":
                    labels[offset + d] = label
        found: list[Finding] = []
        states: list[State] = []
        for k in range(self.axes):
            merged, note = self.unite(node, upstream, k)
            states.append(merged)
            found += note
        return NodeFields(tuple(labels), tuple(states), {}, found)

    def unite(self, node: Node, upstream: Sequence[NodeFields], k: int) -> tuple[State, list[Finding]]:
        """The union of the branches' fields along spatial axis ``k``, with the alignment check."""
        notes: list[Finding] = []
        fields: list[tuple[Periodic, int]] = []
        for up, shape in zip(upstream, node.input_shapes, strict=True):
            state = up.states[k]
            if isinstance(state, Lost):
                return state, notes
            dims = [d for d, label in enumerate(up.labels) if label == k]
            size = shape[dims[0]] if dims else 1
            fields.append((state, size))
        positional = [f for f, _ in fields if f.step != 0]
        for b in positional[1:]:
            a = positional[0]
            if not a.aligned(b):
                notes.append(
                    finding(
                        "misaligned-merge",
                        k,
                        node=node.name,
                        rates=[str(a.rate), str(b.rate)],
                        offsets=[str(a.offset), str(b.offset)],
                    )
                )
                break
        result: Periodic | None = None
        for f, size in fields:
            if result is None:
                result = f
                continue
            joined = result.union(f)
            if joined is None:
                joined = _absorb(result, f, size) or _absorb(f, result, size)
            if joined is None:
                return Lost(node.name, f"branches with effective strides {result.rate} and {f.rate} merged"), notes
            result = joined
        assert result is not None
        return result, notes

    def _concat(self, node: Node) -> NodeFields:
        dim = _int(node.params["dim"]) % len(node.shape)
        first = self.first(node)
        if isinstance(first.labels[dim], (int, Merged)):
            return self.lost(node, "concatenation along a spatial axis", first.labels)
        return self._merge(node)

    def _permute(self, node: Node) -> NodeFields:
        src = self.first(node)
        order = [_int(d) % len(src.labels) for d in _tuple(node.params["order"])]
        return NodeFields(tuple(src.labels[d] for d in order), src.states, {})

    def _reshape(self, node: Node) -> NodeFields:
        src = self.first(node)
        removed = _tuple(node.params.get("removed", ()))
        inserted = _tuple(node.params.get("inserted", ()))
        labels = regroup(
            src.labels, node.input_shapes[0], node.shape, [_int(d) for d in removed], [_int(d) for d in inserted]
        )
        if labels is None:
            return self.lost(node, f"{node.source or 'reshape'} that splits a spatial axis", src.labels)
        return NodeFields(labels, src.states, {})

    def _unknown(self, node: Node) -> NodeFields:
        return self.lost(node, str(node.params.get("what", node.source or "an operation")))


def _absorb(wide: Periodic, other: Periodic, size: int) -> Periodic | None:
    """A constant field that holds all of another's cells (a global branch merged with a local one:
    squeeze-and-excitation) is their union."""
    if wide.step != 0:
        return None
    span = other.span(0, size - 1)
    whole = wide.at(0)
    if span is None:
        return wide
    if whole is not None and whole[0] <= span[0] and span[1] <= whole[1]:
        return wide
    return None


def regroup(
    labels: Sequence[Label],
    before: Sequence[int],
    after: Sequence[int],
    removed: Sequence[int] = (),
    inserted: Sequence[int] = (),
) -> tuple[Label, ...] | None:
    """The labels after a reshape from ``before`` to ``after``; ``None`` if it splits a spatial axis
    (other than back into the parts it was merged from). ``removed`` / ``inserted``: the size-1 axes a
    squeeze or an unsqueeze takes out or puts in, where the tracer knows them.

    >>> regroup(("N", "C", 0, 1), (2, 3, 4, 5), (2, 60))
    ('N', Merged(parts=(('C', 3), (0, 4), (1, 5))))
    >>> regroup(("N", Merged((("C", 3), (0, 4), (1, 5)))), (2, 60), (2, 3, 4, 5))
    ('N', 'C', 0, 1)
    >>> regroup(("N", "C", 0), (1, 4, 6), (1, 4, 2, 3)) is None
    True
    >>> regroup(("N", "C", "C", 0), (1, 2, 1, 1), (1, 2, 1), removed=(2,))
    ('N', 'C', 0)
    """
    if removed:
        return tuple(label for d, label in enumerate(labels) if d not in set(removed))
    if inserted:
        out = list(labels)
        for d in sorted(inserted):
            out.insert(d, "C")
        return tuple(out)
    # size-1 axes apart: the rest is matched by groups of equal products
    ones_in = [labels[d] for d in range(len(before)) if before[d] == 1]
    core_labels = [labels[d] for d in range(len(before)) if before[d] != 1]
    core_before = [s for s in before if s != 1]
    core_after = [s for s in after if s != 1]
    grouped = _groups(core_labels, core_before, core_after)
    if grouped is None:
        return None
    spare = [label for label in ones_in if isinstance(label, int)]
    spare.reverse()
    out = []
    k = 0
    for size in after:
        if size == 1:
            out.append(spare.pop() if spare and after.count(1) == len(ones_in) else "C")
        else:
            out.append(grouped[k])
            k += 1
    return tuple(out)


def _groups(labels: Sequence[Label], before: Sequence[int], after: Sequence[int]) -> list[Label] | None:
    out: list[Label] = []
    i = j = 0
    n, m = len(before), len(after)
    while i < n and j < m:
        gi, gj = [i], [j]
        pi, pj = before[i], after[j]
        while pi != pj:
            if pi < pj and i + 1 < n:
                i += 1
                gi.append(i)
                pi *= before[i]
            elif pj < pi and j + 1 < m:
                j += 1
                gj.append(j)
                pj *= after[j]
            else:
                return None
        i += 1
        j += 1
        parts = [labels[d] for d in gi]
        if len(gi) == 1 and len(gj) == 1:
            out.append(parts[0])
        elif len(gj) == 1:
            flat: list[tuple[int | str, int]] = []
            for d in gi:
                label = labels[d]
                if isinstance(label, Merged):
                    flat += label.parts
                else:
                    flat.append((label if isinstance(label, int) else "C", before[d]))
            out.append(Merged(tuple(flat)) if any(isinstance(p, int) for p, _ in flat) else "C")
        elif len(gi) == 1 and isinstance(parts[0], Merged):
            merged = parts[0]
            sizes = tuple(s for _, s in merged.parts if s != 1)
            if tuple(after[d] for d in gj) != sizes:
                return None
            out += [p for p, s in merged.parts if s != 1]
        elif all(not isinstance(p, (int, Merged)) for p in parts):
            out += ["C"] * len(gj)
        else:
            return None
    if i != n or j != m:
        return None
    return out


@functools.lru_cache(maxsize=4096)
def layer_facts(layer: Layer, shape: tuple[int, ...]) -> tuple[BoundLayer, tuple[AxisOp, ...]]:
    """A layer bound to an input and its axis maps: once per (layer, shape) — a network repeats its
    blocks, and a size scan its layers."""
    bound = bound_layer(layer, shape)
    ops = tuple(_pooled(_axis_map(ax, layer.padding_mode), layer, ax, n) for n, ax in enumerate(bound.axes))
    return bound, ops


@functools.lru_cache(maxsize=4096)
def bound_layer(layer: Layer, shape: tuple[int, ...]) -> BoundLayer:
    """``layer.bind(shape)``, once per (layer, shape): a tracer that binds a layer to find its output
    shape leaves the binding to the analysis."""
    return layer.bind(shape)


@functools.lru_cache(maxsize=4096)
def _axis_map(ax: AxisGeometry, padding_mode: str) -> AxisOp:
    """:func:`~convarith.analysis.maps.layer_axis`, once per axis geometry (the axes of a square input
    are alike, and so are the layers of a stage that differ only in their channels)."""
    return layer_axis(ax, padding_mode)


def clear_caches() -> None:
    """Forget every layer's facts (for timing a cold analysis)."""
    for cached in (bound_layer, layer_facts, layer_findings, _axis_map):
        cached.cache_clear()


@functools.lru_cache(maxsize=4096)
def layer_findings(layer: Layer, shape: tuple[int, ...]) -> tuple[Finding, ...]:
    """A layer's own findings at an input (:meth:`~convarith.BoundLayer.findings`), once per (layer,
    shape); the analysis asks for them only when a report shows them."""
    return layer_facts(layer, shape)[0].findings()


def _pooled(op: AxisOp, layer: Layer, ax: AxisGeometry, n: int) -> AxisOp:
    """A pool's axis map with what it does to values: the largest, or the average (its divisor per
    axis; a ``divisor_override`` on axis 0)."""
    if layer.kind == "max_pool":
        return replace(op, largest=True)
    if layer.kind != "avg_pool":
        return op
    if layer.divisor_override is not None:
        divisors = [layer.divisor_override if n == 0 else 1] * ax.output
    else:
        from ..ops.kernels import axis_divisor

        divisors = [int(v) for v in axis_divisor(ax, layer.count_include_pad)]
    weights = tuple(
        tuple(1.0 / d for _ in src) if d else tuple(0.0 for _ in src)
        for src, d in zip(op.sources, divisors, strict=True)
    )
    return replace(op, weights=weights)


def _dims(node: Node) -> list[int]:
    """The dims a resize or an adaptive pool acts on: ``params["dims"]``, else the trailing ``rank − 2``."""
    rank = len(node.shape)
    dims = node.params.get("dims")
    if dims is None:
        return list(range(2, rank)) if rank > 2 else list(range(1, rank))
    return [_int(d) % rank for d in _tuple(dims)]


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConvArithError("model", "an operation's parameter must be an integer", repr(value))
    return value


def _tuple(value: object) -> tuple[object, ...]:
    if not isinstance(value, (tuple, list)):
        raise ConvArithError("model", "an operation's parameter must be a sequence", repr(value))
    return tuple(value)


def propagate(graph: Graph, spatial: int | None = None) -> dict[str, NodeFields]:
    """Labels, fields and findings of every node, in the graph's order."""
    return _Walk(graph, spatial).run()


# -- backward: the exact cells ---------------------------------------------------------------------------

Masks = dict[int, list[bool]]
"""Wanted cells of a tensor: dim → one flag per cell (dims not listed: every cell). Never changed in
place: one list may be shared by the masks of several tensors."""


TERM_LIMIT = 256
"""Most products of per-axis masks one tensor's wanted cells are kept as, before their union's hull."""


def _add_term(terms: list[Masks], new: Masks) -> None:
    """Add a product of per-dim masks to a union of them, merging where that stays exact: a term inside
    another, or two terms that differ along one dim only."""

    def inside(a: Masks, b: Masks, dims: Sequence[int]) -> bool:
        """Whether ``a`` lies in ``b``, given the dims along which they differ."""
        return all(not x or y for d in dims for x, y in zip(a[d], b[d], strict=True))

    for n, old in enumerate(terms):
        differ = [d for d in new if new[d] != old[d]]
        if inside(new, old, differ):
            return
        if inside(old, new, differ):
            terms[n] = new
            return
        if len(differ) == 1:
            d = differ[0]
            merged = dict(old)
            merged[d] = [x or y for x, y in zip(old[d], new[d], strict=True)]
            terms[n] = merged
            return
    terms.append(new)
    if len(terms) > TERM_LIMIT:  # pragma: no cover - a pathological graph: keep the hull of the union
        hull = {d: [any(t[d][i] for t in terms) for i in range(len(new[d]))] for d in new}
        terms[:] = [hull]


def read_back(
    graph: Graph, fields: Mapping[str, NodeFields], wanted: Mapping[str, Masks]
) -> tuple[list[bool], ...] | None:
    """The model input's cells, per spatial axis, that the ``wanted`` cells of the given nodes read
    (through every branch, padding modes mapped back, borders clipped); ``None`` if the way back
    crosses an operation the analysis does not understand.

    The wanted cells of a tensor are a union of products of per-axis masks: a product is what one
    path asks for, and a path that reaches only padding along one axis asks for nothing along the
    others either.
    """
    terms: dict[str, list[Masks]] = {}
    for name, m in wanted.items():
        shape = graph[name].shape
        _add_term(terms.setdefault(name, []), {d: list(m.get(d, [True] * shape[d])) for d in range(len(shape))})
    for node in reversed(graph.nodes):
        mine = terms.get(node.name)
        if not mine or node.op == "input":
            continue
        if not fields[node.name].exact:
            return None
        for full in mine:
            if not all(any(v) for v in full.values()):
                continue  # a product with an empty factor: no cell
            if node.op == "elementwise" and node.input_shapes[0] == node.shape:
                _add_term(terms.setdefault(node.inputs[0], []), full)  # the same cells (masks are shared, not changed)
                continue
            for index, (name, in_shape) in enumerate(zip(node.inputs, node.input_shapes, strict=True)):
                back = _back(node, index, full, in_shape, fields)
                if back is None:
                    return None
                if all(any(v) for v in back.values()):
                    _add_term(terms.setdefault(name, []), back)
    first = graph.inputs[0]
    shape = graph[first].shape
    found = terms.get(first, [])
    return tuple(
        [any(cells) for cells in zip(*(t[d] for t in found), strict=True)] if found else [False] * shape[d]
        for d, label in enumerate(fields[first].labels)
        if isinstance(label, int)
    )


def _back(
    node: Node, index: int, full: Masks, in_shape: Sequence[int], fields: Mapping[str, NodeFields]
) -> Masks | None:
    """The wanted cells of one input of ``node``, per dim, given its own wanted cells (all non-empty)."""
    f = fields[node.name]
    op = node.op
    rank = len(node.shape)
    if op in ("layer", "pad", "slice", "resize", "pixel_shuffle", "pixel_unshuffle", "adaptive_pool"):
        keeps_channels = op in ("pad", "slice", "resize", "adaptive_pool")
        out: Masks = {}
        for d in range(len(in_shape)):
            axis_op = f.axis_ops.get(d)
            if axis_op is not None:
                out[d] = axis_op.read(full[d])
            elif keeps_channels and in_shape[d] == node.shape[d]:
                out[d] = full[d]
            else:
                out[d] = [True] * in_shape[d]  # a layer reads every channel (of its group)
        return out
    if op == "select":
        dim = _int(node.params["dim"]) % len(in_shape)
        chosen = _int(node.params["index"]) % in_shape[dim]
        out = {dim: [i == chosen for i in range(in_shape[dim])]}
        for d in range(len(in_shape)):
            if d != dim:
                out[d] = list(full[d - (1 if d > dim else 0)])
        return out
    if op in ("elementwise", "merge", "expand", "concat"):
        offset = rank - len(in_shape)
        cat = _int(node.params["dim"]) % rank if op == "concat" else None
        out = {}
        for d in range(len(in_shape)):
            flags = full[offset + d]
            if offset + d == cat:
                start = sum(s[d] for s in node.input_shapes[:index])
                out[d] = list(flags[start : start + in_shape[d]])
            elif in_shape[d] == len(flags):
                out[d] = flags
            elif in_shape[d] == 1:
                out[d] = [any(flags)]  # broadcast
            else:  # a mismatched merge went on with every input padded to the largest: its first cells
                out[d] = list(flags[: in_shape[d]]) + [False] * max(in_shape[d] - len(flags), 0)
        return out
    if op in ("reduce", "linear"):
        raw = node.params["dims"] if op == "reduce" else (node.params["dim"],)
        gone = sorted({_int(d) % len(in_shape) for d in _tuple(raw)})
        keep = op == "linear" or bool(node.params.get("keepdim", False))
        out = {}
        j = 0
        for d in range(len(in_shape)):
            if d in gone:
                out[d] = [True] * in_shape[d]
                j += 1 if keep else 0
            else:
                out[d] = list(full[j])
                j += 1
        return out
    if op == "permute":
        order = [_int(d) % len(in_shape) for d in _tuple(node.params["order"])]
        return {d: list(full[j]) for j, d in enumerate(order)}
    if op == "reshape":
        return _back_reshape(full, in_shape, node.shape)
    return None


def _back_reshape(full: Masks, before: Sequence[int], after: Sequence[int]) -> Masks:
    """Wanted cells back through a reshape: per group of dims, the projection of the wanted flat cells."""
    import itertools

    wanted_all = all(any(v) for v in full.values())
    out: Masks = {}
    i = j = 0
    n, m = len(before), len(after)
    while i < n:
        gi, gj = [i], [j] if j < m else []
        pi = before[i]
        pj = after[j] if j < m else 1
        while pi != pj and j < m:
            if pi < pj:
                i += 1
                gi.append(i)
                pi *= before[i]
            else:
                j += 1
                gj.append(j)
                pj *= after[j]
        if len(gi) == 1 and len(gj) == 1:
            out[gi[0]] = list(full[gj[0]]) if gj[0] < m else [wanted_all] * before[gi[0]]
        else:
            flat = [
                all(full[d][c] for d, c in zip(gj, combo, strict=True))
                for combo in itertools.product(*(range(after[d]) for d in gj))
            ]
            sizes = [before[d] for d in gi]
            for pos, d in enumerate(gi):
                flags = [False] * before[d]
                inner = math.prod(sizes[pos + 1 :])
                for c, want in enumerate(flat):
                    if want:
                        flags[(c // inner) % sizes[pos]] = True
                out[d] = flags
        i += 1
        j += 1
    return out


_SAME_DIMS = ("layer", "pad", "slice", "resize", "pixel_shuffle", "pixel_unshuffle", "adaptive_pool")


def overlap_profiles(
    graph: Graph,
    fields: Mapping[str, NodeFields],
    names: Iterable[str] | None = None,
    known: dict[str, dict[int, list[float]]] | None = None,
) -> dict[str, dict[int, list[float]]]:
    """Per spatial dim of each node, what its cells hold when the input is all ones, every kernel tap
    weighs one and every bias is 0 (interpolations keep their weights): the overlap of a stack of
    layers — uneven by phase after transposed convolutions whose kernel the stride does not divide,
    the checkerboard of the whole stack (Odena, Dumoulin & Olah, Distill 2016). Separable: in 2-d
    the profile is the product of the axes' (exactly along a chain; branches merged with other
    profiles are summed axis by axis, channels not counted). Followed
    through spatial, elementwise, merging and permuting operations; stops where an axis is reduced
    or reshaped.

    ``names``: only these nodes' profiles and those they are made from (a report needs those of its
    outputs and upsamplings), added to ``known``; ``None``: every node's."""
    profiles = {} if known is None else known
    nodes = graph.nodes
    if names is not None:
        needed: set[str] = set()
        stack = [name for name in names if name not in profiles]
        while stack:
            name = stack.pop()
            if name in needed or name in profiles:
                continue
            needed.add(name)
            f = fields[name]
            if f.exact and any(isinstance(label, int) for label in f.labels):  # else it reads no input's
                stack += graph[name].inputs
        nodes = [node for node in nodes if node.name in needed]
    for node in nodes:
        f = fields[node.name]
        mine: dict[int, list[float]] = {}
        profiles[node.name] = mine
        spatial = [label for label in f.labels if isinstance(label, int)]
        if node.op == "input":
            mine.update({d: [1.0] * node.shape[d] for d, label in enumerate(f.labels) if isinstance(label, int)})
            continue
        if not f.exact or not spatial:
            continue
        same = node.op == "elementwise" and node.input_shapes[0] == node.shape
        if same and f.labels == fields[node.inputs[0]].labels and len(set(spatial)) == len(spatial):
            mine.update(profiles[node.inputs[0]])  # each axis its own: the input's profiles, as they are
            continue
        for d, label in enumerate(f.labels):
            if not isinstance(label, int):
                continue
            total: list[float] | None = None
            for name in node.inputs:
                if node.op in _SAME_DIMS:
                    src = d
                else:  # the input's axis with the same label (a reshape, a permutation, a broadcast)
                    found = [j for j, other in enumerate(fields[name].labels) if other == label]
                    if len(found) != 1:
                        continue
                    src = found[0]
                vec = profiles[name].get(src)
                if vec is None:
                    continue
                if node.op == "reduce" and src in {
                    _int(x) % len(node.input_shapes[0]) for x in _tuple(node.params["dims"])
                }:
                    what = str(node.params.get("what", ""))
                    if what in ("mean", "nanmean"):
                        vec = [sum(vec) / len(vec)]
                    elif what in ("sum", "nansum"):
                        vec = [float(sum(vec))]
                    elif what in ("amax", "max"):
                        vec = [max(vec)]
                    else:
                        continue
                axis_op = f.axis_ops.get(d)
                if axis_op is not None:
                    vec = axis_op.counts(vec)
                elif len(vec) == 1 != node.shape[d]:
                    vec = vec * node.shape[d]
                elif len(vec) != node.shape[d]:
                    vec = (vec + [0.0] * node.shape[d])[: node.shape[d]]
                if total is None:
                    total = vec
                elif node.params.get("what") in ("mul", "mul_"):
                    total = [a * b for a, b in zip(total, vec, strict=True)]
                else:
                    total = [a + b for a, b in zip(total, vec, strict=True)]
            if total is not None:
                mine[d] = total
    return profiles


def describe(state: State) -> Mapping[str, object]:
    """A field as data: per-phase sizes, the largest, the effective stride, where output 0's field starts
    and its centre."""
    if isinstance(state, Lost):
        return {"unknown": str(state)}
    first = state.phases[0]
    return {
        "size": max(state.sizes),
        "sizes": list(state.sizes),
        "stride": str(state.rate),
        "start": None if first is None else first[0],
        "centre": None if first is None else str(Fraction(first[0] + first[1], 2)),
    }
