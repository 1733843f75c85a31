"""Find the layers that take an input size to a wanted output size, best first.

Every candidate is a :class:`~convarith.Layer` that PyTorch accepts (its rules,
:func:`convarith.rules.check` with ``framework="torch"``, find no refusal) and whose bound form
(:meth:`~convarith.Layer.bind`) has the wanted output size, so the solver cannot disagree with the
geometry. Candidates are ranked by a penalty: the sum of :data:`PENALTIES` over the layer's
findings (:meth:`~convarith.BoundLayer.findings`, keyed by finding code) plus a kernel-size cost
of :data:`KERNEL_COST` per tap beyond the first on every axis. A solution's ``reasons`` are the
messages of the findings that cost something.

What is searched, per axis: kernel ``1 … max_kernel``, stride ``1 … max_stride``, dilation
``1 … max_dilation`` (``1`` for ``avg_pool``, which PyTorch does not dilate), unless fixed; the
padding total ``0 … 2·d(k − 1)`` split as evenly as possible, the odd cell after (a pool takes
only the symmetric pads ``p ≤ k/2`` PyTorch's pools accept); ``output_padding`` ``0 …
max(s, d) − 1`` for a transposed convolution. Searches of more than :data:`SEARCH_LIMIT`
candidates are refused up front with their number; a search that would bind and diagnose more
than :data:`RANK_LIMIT` candidates of the wanted size to rank them is refused when it gets there.

Examples
--------
>>> best = solve("conv_transpose2d", (16, 16), (32, 32))[0]
>>> best.layer
Layer('conv_transpose2d', kernel_size=2, stride=2)
>>> best.reasons
('clean: no finding costs anything (every cell read, even overlap, padding PyTorch expresses)',)
>>> solve("conv2d", 224, 112, kernel_size=7)[0].layer
Layer('conv2d', kernel_size=7, stride=2, padding=3)
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from ..errors import ConvArithError
from ..findings import Finding
from ..layer import IntOrSeq, Layer, Pad, PaddingArg, as_int, parse_op
from ..rules import check
from .arithmetic import conv_output_size, conv_transpose_output_size, pool_output_size
from .bound import BoundLayer
from .padding import resolve_policy, resolve_transposed_policy

__all__ = [
    "CLEAN",
    "KERNEL_COST",
    "PENALTIES",
    "RANK_LIMIT",
    "SEARCH_LIMIT",
    "Penalty",
    "Solution",
    "penalty_of",
    "solve",
]

CLEAN = "clean: no finding costs anything (every cell read, even overlap, padding PyTorch expresses)"
"""The reason of a solution whose findings cost nothing."""


class Penalty(NamedTuple):
    """What one finding costs: ``weight`` (times ``data[per]`` when ``per`` is named), or
    ``transposed`` instead of ``weight`` on a transposed convolution when given."""

    weight: float
    per: str | None = None
    transposed: float | None = None


PENALTIES: dict[str, Penalty] = {
    "empty-phase": Penalty(20.0),
    "uneven-overlap": Penalty(10.0),
    "dropped-input": Penalty(8.0),
    "unread-input": Penalty(8.0),
    "window-in-padding": Penalty(6.0),
    "output-padding-inconsistent": Penalty(5.0),
    "inexpressible-padding": Penalty(3.0, transposed=12.0),
    "padding-beyond-half": Penalty(2.0),
    "dilated-kernel": Penalty(2.0, per="gap"),
    "same-even-kernel": Penalty(1.0),
    "output-padding-choice": Penalty(1.0),
    "unread-padding": Penalty(0.5),
    "uneven-reads": Penalty(0.5),
    "even-kernel": Penalty(0.5),
    "ceil-overhang": Penalty(0.5),
}
"""``code → Penalty``. ``dilated-kernel`` costs 2 per cell of gap between taps;
``inexpressible-padding`` costs 3 on a convolution (``F.pad`` first is an easy way out) and 12 on a
transposed one (``nn.ConvTranspose`` needs padding 0 and a crop of the output: below the standard
``k = 3, p = 1, a = 1`` answer); ``output-padding-choice`` costs only on an axis whose
``output_padding`` is not 0. Codes not listed (``cropped-input``, refusals) cost nothing; refused
layers are never solutions."""

KERNEL_COST = 0.3
"""Cost per kernel tap beyond the first, on every axis (smaller kernels first when all else is equal)."""

SEARCH_LIMIT = 200_000
"""Most (kernel, stride, dilation, padding or output_padding) candidates one request may search."""

RANK_LIMIT = 1_000
"""Most candidates of the wanted size one request may bind and diagnose to rank them (the search
stops early once no larger kernel can beat the ``limit`` best)."""

_KEEP = 5
"""Candidates kept per axis beyond ``limit`` (an N-d combination the rules refuse is skipped)."""


@dataclass(frozen=True)
class Solution:
    """One layer of the wanted size, its penalty (lower is better), and why.

    ``reasons`` are the messages of the findings that cost something (:data:`CLEAN` when none
    does); ``findings`` are all of the layer's findings with PyTorch's rules.
    """

    layer: Layer
    penalty: float
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def spec(self) -> Layer:
        """The layer (the name of the ConvSpec era)."""
        return self.layer


def penalty_of(bound: BoundLayer, found: Sequence[Finding]) -> tuple[float, tuple[str, ...]]:
    """The solver's penalty of a bound layer with these findings, and the messages that cost.

    >>> from convarith import Layer
    >>> bound = Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1).bind((16,))
    >>> penalty_of(bound, bound.findings(framework="torch"))[0]  # uneven overlap 10, a > 0 1, kernel 2·0.3
    11.6
    """
    total = sum(KERNEL_COST * (k - 1) for k in bound.layer.kernel_size)
    reasons: list[str] = []
    for f in found:
        weight = _cost(bound, f)
        if weight:
            total += weight
            if f.message not in reasons:
                reasons.append(f.message)
    return round(total, 3), tuple(reasons) or (CLEAN,)


def _cost(bound: BoundLayer, f: Finding) -> float:
    if f.code not in PENALTIES:
        return 0.0
    entry = PENALTIES[f.code]
    if f.code == "output-padding-choice" and (f.axis is None or bound.axes[f.axis].output_padding == 0):
        return 0.0
    weight = entry.transposed if bound.transposed and entry.transposed is not None else entry.weight
    if entry.per is not None:
        weight *= float(cast(float, f.data.get(entry.per, 1)))
    return weight


# -- the request ----------------------------------------------------------------------------------


def _sizes(param: str, value: object, ndim: int) -> tuple[int, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        sizes = tuple(as_int(param, v) for v in value)
        if len(sizes) == 1:
            sizes *= ndim
        if len(sizes) != ndim:
            raise ConvArithError(param, f"needs 1 or {ndim} sizes for {ndim} spatial axes", sizes)
    else:
        sizes = (as_int(param, value),) * ndim
    if min(sizes) < 1:
        raise ConvArithError(param, "every size must be at least 1", sizes)
    return sizes


@dataclass(frozen=True)
class _Request:
    """What the user fixed, normalised by a probe layer (so the layer's own checks name the parameter)."""

    kind: str
    ndim: int
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    dilation: tuple[int, ...] | None
    output_padding: tuple[int, ...] | None
    padding: tuple[Pad, ...] | str | None
    ceil_mode: bool
    ranges: dict[str, range]

    def axis(self, n: int) -> tuple[range, range, range, int | None, Pad | str | None]:
        def pick(values: tuple[int, ...] | None, name: str) -> range:
            return range(values[n], values[n] + 1) if values is not None else self.ranges[name]

        pad = self.padding if self.padding is None or isinstance(self.padding, str) else self.padding[n]
        a = None if self.output_padding is None else self.output_padding[n]
        return pick(self.kernel, "kernel"), pick(self.stride, "stride"), pick(self.dilation, "dilation"), a, pad


def _request(
    op: str,
    kernel_size: IntOrSeq | None,
    stride: IntOrSeq | None,
    padding: PaddingArg | None,
    dilation: IntOrSeq | None,
    output_padding: IntOrSeq | None,
    ceil_mode: bool,
    bounds: dict[str, int],
) -> _Request:
    kind, ndim = parse_op(op)
    for name, value in bounds.items():
        bounds[name] = as_int(name, value)
        if bounds[name] < 1:
            raise ConvArithError(name, "must be at least 1", value)
    # The probe: the fixed parameters, the free ones at placeholders that no rule refuses where
    # some searched value would be accepted (the largest kernel for the pooling pad bound, the
    # largest stride and dilation for output_padding, stride 1 for 'same').
    transposed = kind == "conv_transpose"
    free = {"kernel_size": kernel_size is None, "stride": stride is None, "dilation": dilation is None}
    probe = Layer(
        op,
        kernel_size=bounds["max_kernel"] if kernel_size is None else kernel_size,
        stride=(bounds["max_stride"] if transposed else 1) if stride is None else stride,
        dilation=(bounds["max_dilation"] if transposed else 1) if dilation is None else dilation,
        padding=0 if padding is None else padding,
        output_padding=0 if output_padding is None else output_padding,
        ceil_mode=ceil_mode,
    )
    if (
        probe.pooling
        and padding is not None
        and not isinstance(probe.padding, str)
        and any(b != a for b, a in probe.padding)
    ):
        raise ConvArithError(
            "padding", "a PyTorch pool takes one symmetric padding per axis, not (before, after) pairs", padding
        )
    for f in check(probe, framework="torch"):
        if f.severity == "error":
            err = f.error()
            # name the searched ranges when the refusal may depend on a placeholder
            depends = {"output_padding": ("stride", "dilation"), "padding": ("kernel_size",) if probe.pooling else ()}
            searched = [
                f"{name} ≤ {bounds['max_' + name.split('_')[0]]}" for name in depends.get(err.param, ()) if free[name]
            ]
            note = f" (for every {' and '.join(searched)} of the search)" if searched else ""
            raise ConvArithError(err.param, err.rule + note, err.value)
    ranges = {
        "kernel": range(1, bounds["max_kernel"] + 1),
        "stride": range(1, bounds["max_stride"] + 1),
        "dilation": range(1, 2) if kind == "avg_pool" else range(1, bounds["max_dilation"] + 1),
    }
    return _Request(
        kind,
        ndim,
        None if kernel_size is None else probe.kernel_size,
        None if stride is None else probe.stride,
        None if dilation is None else probe.dilation,
        None if output_padding is None else probe.output_padding,
        None if padding is None else probe.padding,
        ceil_mode,
        ranges,
    )


# -- one axis -------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Candidate:
    penalty: float
    kernel: int
    stride: int
    dilation: int
    total: int
    output_padding: int
    pad: Pad | str


def _alternatives(req: _Request, s: int, d: int, a: int | None, pad: Pad | str | None) -> range:
    """The output_padding values tried for one (stride, dilation) of a transposed convolution."""
    if a is not None:
        return range(a, a + 1)
    if pad == "same_tf":
        return range(1)
    return range(max(s, d))


def _search_size(req: _Request, n: int) -> int:
    kernels, strides, dilations, a, pad = req.axis(n)
    per = 1
    if req.kind == "conv_transpose":
        per = 1 if a is not None or pad == "same_tf" else max(strides[-1], dilations[-1])
    elif pad is None:
        per = strides[-1] * (2 if req.ceil_mode else 1)
    return len(kernels) * len(strides) * len(dilations) * per


def _proposals(
    req: _Request, i: int, o: int, k: int, s: int, d: int, a_fixed: int | None, pad: Pad | str | None
) -> Iterator[tuple[Pad | str, int, int]]:
    """(pad as written, padding total, output_padding) triples of the wanted size, by the arithmetic."""
    reach = d * (k - 1)
    extent = reach + 1
    kind = req.kind
    if kind == "conv_transpose":
        for a in _alternatives(req, s, d, a_fixed, pad):
            if isinstance(pad, str):
                pair, resolved_a = resolve_transposed_policy(pad, k, s, d, a)  # type: ignore[arg-type]
                if conv_transpose_output_size(i, k, s, pair, d, resolved_a) == o:
                    yield pad, pair[0] + pair[1], a
                continue
            if pad is not None:
                if conv_transpose_output_size(i, k, s, pad, d, a) == o:
                    yield pad, pad[0] + pad[1], a
                continue
            total = (i - 1) * s + extent + a - o
            if 0 <= total <= 2 * reach:
                pair = (total // 2, total - total // 2)
                if conv_transpose_output_size(i, k, s, pair, d, a) == o:
                    yield pair, total, a
        return

    def size(pair: Pad) -> int:
        if kind == "conv":
            return conv_output_size(i, k, s, pair, d)
        return pool_output_size(i, k, s, pair, d, req.ceil_mode)

    if isinstance(pad, str):
        pair = resolve_policy(pad, i, k, s, d)  # type: ignore[arg-type]
        if size(pair) == o:
            yield pad, pair[0] + pair[1], 0
        return
    if pad is not None:
        if size(pad) == o:
            yield pad, pad[0] + pad[1], 0
        return
    low = (o - 1) * s + extent - i  # the smallest total whose floor gives o
    if kind == "conv":
        for total in range(max(low, 0), min(low + s - 1, 2 * reach) + 1):
            pair = (total // 2, total - total // 2)
            if size(pair) == o:
                yield pair, total, 0
        return
    # pools: symmetric p ≤ k/2; ceil_mode may round a total up to s − 1 lower, or drop a last window
    slack = s if req.ceil_mode else 0
    for p in range(max(-(-(low - slack) // 2), 0), min((low + s - 1 + slack) // 2, k // 2) + 1):
        if size((p, p)) == o:
            yield (p, p), 2 * p, 0


def _axis_layer(req: _Request, k: int, s: int, d: int, pad: Pad | str, a: int) -> Layer:
    """The N-d layer with this candidate on axis 0 and neutral axes (1-cell, k = s = d = 1) elsewhere,
    so that PyTorch's N-d rules (avg_pool3d's) apply."""
    rest = req.ndim - 1
    return Layer(
        f"{req.kind}{req.ndim}d",
        kernel_size=(k, *(1,) * rest),
        stride=(s, *(1,) * rest),
        dilation=(d, *(1,) * rest),
        padding=pad if isinstance(pad, str) else (pad, *((0, 0),) * rest),
        output_padding=(a, *(0,) * rest) if req.kind == "conv_transpose" else 0,
        ceil_mode=req.ceil_mode,
    )


@dataclass
class _AxisResult:
    candidates: list[_Candidate]
    refusals: Counter[tuple[str, str, str]]


def _solve_axis(req: _Request, n: int, i: int, o: int, keep: int, budget: list[int]) -> _AxisResult:
    kernels, strides, dilations, a_fixed, pad = req.axis(n)
    matches = [
        (k, s, d, written, total, a)
        for k in kernels
        for s in strides
        for d in dilations
        for written, total, a in _proposals(req, i, o, k, s, d, a_fixed, pad)
    ]
    result = _AxisResult([], Counter())
    best: list[float] = []
    rest = (1,) * (req.ndim - 1)
    for k, s, d, written, total, a in matches:  # kernels ascending: the kernel cost only grows
        if len(best) >= keep and KERNEL_COST * (k - 1) >= best[keep - 1]:
            break
        budget[0] += 1
        if budget[0] > RANK_LIMIT:
            raise _oversize(req, RANK_LIMIT, RANK_LIMIT, "candidates of the wanted size", "rank more than")
        bound = _axis_layer(req, k, s, d, written, a).bind((i, *rest))
        found = bound.findings(framework="torch")
        errors = [f for f in found if f.severity == "error"]
        if errors:
            err = errors[0].error()
            result.refusals[(err.param, err.rule, str(err.value))] += 1
            continue
        penalty, _ = penalty_of(bound, found)
        bisect.insort(best, penalty)
        result.candidates.append(_Candidate(penalty, k, s, d, total, a, written))
    result.candidates.sort()
    del result.candidates[keep:]
    return result


# -- the whole layer --------------------------------------------------------------------------------


def _layer(req: _Request, combo: Sequence[_Candidate]) -> Layer:
    pads = [c.pad for c in combo]
    return Layer(
        f"{req.kind}{req.ndim}d",
        kernel_size=[c.kernel for c in combo],
        stride=[c.stride for c in combo],
        dilation=[c.dilation for c in combo],
        padding=pads[0] if isinstance(pads[0], str) else cast(list[Pad], pads),
        output_padding=[c.output_padding for c in combo] if req.kind == "conv_transpose" else 0,
        ceil_mode=req.ceil_mode,
    )


def _no_solution(
    req: _Request, op: str, n: int, i: int, o: int, result: _AxisResult, bounds: dict[str, int]
) -> ConvArithError:
    if result.refusals:
        (param, rule, value), count = result.refusals.most_common(1)[0]
        return ConvArithError(
            param,
            f"{rule} — PyTorch refuses every {op} of the search that maps {i} to {o} on axis {n} "
            f"({count} of {sum(result.refusals.values())} for this reason)",
            value,
        )
    kernels, strides, dilations, a, pad = req.axis(n)
    terms = []
    for name, values, fixed in (
        ("kernel_size", kernels, req.kernel),
        ("stride", strides, req.stride),
        ("dilation", dilations, req.dilation),
    ):
        if fixed is not None:
            terms.append(f"{name} {values[0]}")
        elif len(values) > 1:
            terms.append(f"{name} ≤ {values[-1]} (max_{name.split('_')[0]})")
    if pad is not None:
        terms.append(f"padding {pad!r}")
    elif req.kind in ("max_pool", "avg_pool"):
        terms.append("symmetric padding ≤ k/2")
    else:
        terms.append("padding total ≤ 2·d(k − 1)")
    if a is not None:
        terms.append(f"output_padding {a}")
    return ConvArithError("output_size", f"no {op} with {', '.join(terms)} maps {i} to {o} on axis {n}", o)


def solve(
    op: str,
    input_size: IntOrSeq,
    output_size: IntOrSeq,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg | None = None,
    dilation: IntOrSeq | None = None,
    output_padding: IntOrSeq | None = None,
    ceil_mode: bool = False,
    max_kernel: int = 7,
    max_stride: int = 4,
    max_dilation: int = 3,
    limit: int = 10,
) -> list[Solution]:
    """Layers of ``op`` that PyTorch accepts and that map spatial ``input_size`` to ``output_size``, best first.

    Parameters
    ----------
    op
        ``conv2d``, ``conv_transpose1d``, ``max_pool3d``, … (any kind, 1 … 9 spatial axes).
    input_size, output_size
        Spatial sizes: one int for every axis, or one per axis.
    kernel_size, stride, padding, dilation, output_padding
        Fix a parameter (an int for every axis or one per axis; ``padding`` may be ``(before,
        after)`` pairs or a policy such as ``"same"``, which the solution keeps as written).
        The others are searched.
    ceil_mode
        Pooling's ``ceil_mode``.
    max_kernel, max_stride, max_dilation
        The search ranges of the free parameters (each at least 1).
    limit
        How many solutions to return at most (at least 1).

    Returns
    -------
    list of Solution
        Best (lowest penalty) first; axes with the same request get the same parameters.

    Raises
    ------
    ConvArithError
        For a bad parameter (named), a request PyTorch refuses whatever is searched (its rule,
        e.g. ``output_padding`` on a convolution or ``'same'`` with a stride), a search of more
        than :data:`SEARCH_LIMIT` candidates or one that ranks more than :data:`RANK_LIMIT` of the
        wanted size (with the number and the options to change), and when nothing in the searched range fits (naming
        the ranges and the fixed parameters).

    Examples
    --------
    >>> [s.layer for s in solve("max_pool1d", 7, 4, ceil_mode=True, limit=2)]
    [Layer('max_pool1d', kernel_size=3, stride=2, padding=1, ceil_mode=True), Layer('max_pool1d', kernel_size=2, ceil_mode=True)]
    >>> solve("conv2d", 8, 8, stride=2, padding="same")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: padding: 'same' (PyTorch) needs stride 1 on every axis, stride is (2, 2); use 'same_tf' for TensorFlow's strided same; got 'same'
    """  # noqa: E501
    bounds = {"max_kernel": max_kernel, "max_stride": max_stride, "max_dilation": max_dilation}
    if as_int("limit", limit) < 1:
        raise ConvArithError("limit", "must be at least 1", limit)
    if not isinstance(ceil_mode, bool):
        raise ConvArithError("ceil_mode", "must be True or False", repr(ceil_mode))
    req = _request(op, kernel_size, stride, padding, dilation, output_padding, ceil_mode, bounds)
    sizes_in = _sizes("input_size", input_size, req.ndim)
    sizes_out = _sizes("output_size", output_size, req.ndim)

    # Axes with the same request share one search (and get the same parameters).
    groups: dict[tuple[object, ...], list[int]] = {}
    for n in range(req.ndim):
        groups.setdefault((sizes_in[n], sizes_out[n], *req.axis(n)), []).append(n)
    firsts = [axes[0] for axes in groups.values()]
    searched = sum(_search_size(req, n) for n in firsts)
    if searched > SEARCH_LIMIT:
        raise _oversize(req, searched, SEARCH_LIMIT, "candidates", "search")
    keep = limit + _KEEP
    budget = [0]
    results = [_solve_axis(req, n, sizes_in[n], sizes_out[n], keep, budget) for n in firsts]
    for n, result in zip(firsts, results, strict=True):
        if not result.candidates:
            raise _no_solution(req, op, n, sizes_in[n], sizes_out[n], result, bounds)

    axis_group = [next(g for g, axes in enumerate(groups.values()) if n in axes) for n in range(req.ndim)]
    solutions: list[Solution] = []
    # The best combinations first: per-axis penalties add up (findings are per axis).
    start = (0,) * len(results)
    heap = [(_combo_penalty(results, groups, start), start)]
    seen = {start}
    while heap and len(solutions) < limit:
        _, index = heapq.heappop(heap)
        combo = [results[axis_group[n]].candidates[index[axis_group[n]]] for n in range(req.ndim)]
        layer = _layer(req, combo)
        bound = layer.bind(sizes_in)
        found = bound.findings(framework="torch")
        if not any(f.severity == "error" for f in found):
            penalty, reasons = penalty_of(bound, found)
            solutions.append(Solution(layer, penalty, reasons, found))
        for g in range(len(results)):
            nxt = (*index[:g], index[g] + 1, *index[g + 1 :])
            if nxt[g] < len(results[g].candidates) and nxt not in seen:
                seen.add(nxt)
                heapq.heappush(heap, (_combo_penalty(results, groups, nxt), nxt))
    solutions.sort(key=lambda sol: sol.penalty)
    return solutions


def _combo_penalty(
    results: list[_AxisResult], groups: dict[tuple[object, ...], list[int]], index: tuple[int, ...]
) -> float:
    return math.fsum(
        r.candidates[j].penalty * len(axes) for r, j, axes in zip(results, index, groups.values(), strict=True)
    )


def _oversize(req: _Request, count: int, limit: int, what: str, verb: str) -> ConvArithError:
    free = [
        (req.ranges[name].stop - 1, f"max_{name}", name)
        for name, fixed in (("kernel", req.kernel), ("stride", req.stride), ("dilation", req.dilation))
        if fixed is None and len(req.ranges[name]) > 1
    ]
    free.sort(reverse=True)
    param = free[0][1] if free else "output_size"
    options = ", ".join(f"{opt} ({value})" for value, opt, _ in free)
    fixes = ", ".join(f"{name}{'_size' if name == 'kernel' else ''}" for _, _, name in free)
    hint = f"lower {options} or fix {fixes}" if free else "fix more parameters"
    return ConvArithError(
        param, f"the request would {verb} {count:,} {what}, over the limit of {limit:,}; {hint}", count
    )
