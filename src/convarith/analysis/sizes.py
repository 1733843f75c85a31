"""The input sizes a model accepts: every merge matches and no input cell is dropped.

:func:`accepted_sizes` traces the model at each size of a range (shapes only) — a U-Net that
crops or pads its skips by computed amounts is followed as it really runs — and finds the rule in
closed form when the accepted sizes repeat: ``multiples of 16``, ``572 + 16k``, or a set of
residues modulo a period.

>>> scan = SizeScan(0, tuple(SizeCheck(s, s % 4 == 0 and s >= 8, ()) for s in range(1, 41)))
>>> scan.rule, scan.nearest(30)
('multiples of 4 from 8', 28)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConvArithError
from .fields import input_labels
from .model import analyze_graph

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["SIZE_LIMIT", "SizeCheck", "SizeScan", "accepted_sizes", "closed_form", "scan_sizes"]

SIZE_LIMIT = 4096
"""Most sizes one scan traces."""


@dataclass(frozen=True)
class SizeCheck:
    """One input size: accepted, or why not (a refusal, a mismatched merge, dropped input cells)."""

    size: int
    accepted: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "accepted": self.accepted, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class SizeScan:
    """The sizes tried along one input axis (``axis``; ``None``: every spatial axis at once)."""

    axis: int | None
    checks: tuple[SizeCheck, ...]

    @property
    def accepted(self) -> tuple[int, ...]:
        return tuple(c.size for c in self.checks if c.accepted)

    @property
    def rule(self) -> str | None:
        """The accepted sizes in closed form, when they repeat over the range (``None``: no pattern)."""
        return closed_form([c.size for c in self.checks], self.accepted)

    def nearest(self, size: int) -> int | None:
        """The accepted size closest to ``size`` (the smaller on a tie)."""
        return min(self.accepted, key=lambda s: (abs(s - size), s), default=None)

    def to_dict(self) -> dict[str, object]:
        return {
            "axis": self.axis,
            "accepted": list(self.accepted),
            "rule": self.rule,
            "checks": [c.to_dict() for c in self.checks],
        }


def closed_form(tried: Sequence[int], accepted: Sequence[int]) -> str | None:
    """The accepted sizes as ``start + period·k`` (or residues modulo a period), if every size tried
    from the first accepted one on follows the rule and the pattern repeats at least twice.

    >>> closed_form(range(500, 700), [s for s in range(500, 700) if s >= 572 and (s - 572) % 16 == 0])
    '572 + 16k'
    >>> closed_form(range(1, 50), [s for s in range(1, 50) if s % 8 in (1, 3)])
    'sizes ≡ 1, 3 (mod 8)'
    """
    if not accepted:
        return None
    start = min(accepted)
    sizes = sorted(s for s in tried if s >= start)
    chosen = set(accepted)
    span = sizes[-1] - start + 1
    if len(sizes) != span:  # the rule needs every size of the range
        return None
    for period in range(1, span // 2 + 1):
        if all((s in chosen) == (s + period in chosen) for s in sizes if s + period <= sizes[-1]):
            residues = sorted({s % period for s in chosen})
            if period == 1:
                return f"every size from {start}" if start > min(tried) else "every size"
            if len(residues) == 1:
                if residues[0] == 0:
                    return f"multiples of {period}" + (f" from {start}" if start > period else "")
                return f"{start} + {period}k"
            text = ", ".join(map(str, residues))
            return f"sizes ≡ {text} (mod {period})" + (f" from {start}" if start >= period else "")
    return None


def scan_sizes(
    trace: Callable[[Sequence[int]], Graph],
    input_shape: Sequence[int],
    sizes: Sequence[int],
    *,
    axis: int | None = None,
    spatial: int | None = None,
    on_size: Callable[[int, int], None] | None = None,
) -> SizeScan:
    """Trace at each size (with ``trace(shape)``) and check it; ``axis``: the spatial axis to vary
    (``None``: all of them together)."""
    sizes = list(sizes)
    if not sizes or len(sizes) > SIZE_LIMIT:
        raise ConvArithError("sizes", f"must hold 1 to {SIZE_LIMIT} sizes", len(sizes))
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise ConvArithError("sizes", "must be positive integers", sizes[:5])
    try:  # which of the model's input axes are spatial: the graph's input says (channels last included)
        first = trace(tuple(int(v) for v in input_shape))
        node = first[first.inputs[0]]
        shape, layout = node.shape, node.params.get("layout")
    except Exception:  # refused at this size: the input's own order, channels first
        shape, layout = tuple(int(v) for v in input_shape), None
    labels = input_labels(shape, spatial)
    dims = [d for d, label in enumerate(labels) if isinstance(label, int)]
    if isinstance(layout, tuple):  # graph axis i is the model's input axis layout[i]
        dims = [int(layout[d]) for d in dims]
    if axis is not None and not 0 <= axis < len(dims):
        raise ConvArithError("axis", f"must be a spatial axis of the input (0 … {len(dims) - 1})", axis)
    varied = dims if axis is None else [dims[axis]]
    checks = []
    for n, size in enumerate(sizes):
        at = [size if d in varied else int(v) for d, v in enumerate(input_shape)]
        checks.append(_check(trace, at, size, spatial))
        if on_size is not None:
            on_size(n + 1, len(sizes))
    return SizeScan(axis, tuple(checks))


def _check(trace: Callable[[Sequence[int]], Graph], shape: Sequence[int], size: int, spatial: int | None) -> SizeCheck:
    try:
        report = analyze_graph(trace(shape), spatial)
    except ConvArithError as err:
        return SizeCheck(size, False, (f"refused: {err}",))
    except Exception as err:  # the framework's own refusal (a kernel larger than its input, …)
        first = str(err).strip().splitlines()
        return SizeCheck(size, False, (f"refused by the framework: {first[0][:200] if first else type(err).__name__}",))
    reasons = []
    for f in report.findings:
        if f.code in ("skip-mismatch", "unread-model-input"):
            reasons.append(f.message)
    if report.coverage is None:
        reasons.append(f"coverage unknown beyond {report.unknown_from}")
    return SizeCheck(size, not reasons, tuple(reasons))


def accepted_sizes(
    model: object,
    input_shape: Sequence[int],
    sizes: Sequence[int],
    *,
    axis: int | None = None,
    spatial: int | None = None,
    on_size: Callable[[int, int], None] | None = None,
    **options: Any,
) -> SizeScan:
    """The sizes of ``sizes`` at which ``model`` accepts its input (every merge matches, no input
    cell is dropped), the rule in closed form and the nearest accepted size.

    ``input_shape`` gives the other axes; ``axis`` the spatial axis to vary (default: all at
    once, square inputs). ``options`` go to the tracer.
    """
    from ..frameworks.graphs import trace

    def at(shape: Sequence[int]) -> Graph:
        return trace(model, shape, **options)

    if math.prod(int(v) for v in input_shape) <= 0:
        raise ConvArithError("input_shape", "must be positive sizes", tuple(input_shape))
    return scan_sizes(at, input_shape, sizes, axis=axis, spatial=spatial, on_size=on_size)
