"""Coverage (cells no window reads) and overlap (the checkerboard condition), per axis.

A convolution's taps factor over axes, so an N-d count is the outer product of these per-axis
counts: a cell is unread when it is unread on any axis, and an output cell of a transposed
convolution receives ``∏ counts[axis][q_axis]`` kernel taps.

The padding map :func:`padded_source` is the one definition of the padding modes (``F.pad``'s
semantics: negative pads crop, ``circular`` crops first and then wraps); coverage reads through it,
so an input cell read only through ``reflect`` padding counts as read. :func:`read_summary` gives
the same counts for ``zeros`` padding in ``O(k log k)`` per axis, whatever the input size.

Examples
--------
The guide's Figure 2.7 (6×6 input, 3×3 kernel, stride 2, padding 1): every input cell is read,
but the last padded row is not.

>>> from convarith import Layer
>>> cov, = coverage(Layer("conv1d", kernel_size=3, stride=2, padding=1), (6,))
>>> cov.unread_input, cov.unread_pad
((), (0, 1))

A 3×3 kernel with stride 2, transposed, stamps 2 taps on even outputs and 1 on odd ones: the
checkerboard.

>>> ov, = overlap(Layer("conv_transpose1d", kernel_size=3, stride=2), (4,))
>>> ov.phase_counts, ov.uneven
((2, 1), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConvArithError
from ..layer import Layer, Pad
from .bound import AxisGeometry, BoundLayer, as_bound

__all__ = [
    "CELL_LIMIT",
    "AxisCoverage",
    "AxisOverlap",
    "ReadSummary",
    "axis_coverage",
    "axis_overlap",
    "coverage",
    "has_checkerboard_risk",
    "overlap",
    "padded_source",
    "phase_counts",
    "read_summary",
    "source_of",
    "tap_counts",
]

CELL_LIMIT = 10_000_000
"""Largest number of (window, tap) pairs counted cell by cell on one axis."""


# -- the padding map ----------------------------------------------------------------------------------


def source_of(position: int, size: int, pad: Pad, mode: str = "zeros") -> int:
    """Input index read at one padded position (``0 … size + before + after − 1``); ``-1`` = a zero.

    >>> [source_of(p, 4, (2, 1), "reflect") for p in range(7)]
    [2, 1, 0, 1, 2, 3, 2]
    """
    before, after = pad
    if mode == "circular":
        start = max(-before, 0)
        kept = size - start - max(-after, 0)
        return (position - max(before, 0)) % kept + start
    x = position - before
    if mode == "zeros":
        return x if 0 <= x < size else -1
    if mode == "replicate":
        return min(max(x, 0), size - 1)
    if mode == "reflect":
        period = max(2 * (size - 1), 1)
        folded = x % period
        return folded if folded < size else period - folded
    raise ConvArithError("padding_mode", "must be one of zeros, reflect, replicate, circular", repr(mode))


def padded_source(size: int, pad: Pad, mode: str = "zeros") -> list[int]:
    """Input index read at each of the ``size + before + after`` padded positions; ``-1`` = zero.

    ``zeros`` maps the padding to ``-1``; ``reflect`` (mirror without repeating the edge),
    ``replicate`` (repeat the edge) and ``circular`` (wrap around) map it back into the input.
    Negative pads crop, as ``F.pad`` does.

    >>> padded_source(4, (2, 1), "replicate")
    [0, 0, 0, 1, 2, 3, 3]
    >>> padded_source(4, (2, 1), "circular")
    [2, 3, 0, 1, 2, 3, 0]
    >>> padded_source(4, (1, -2), "zeros")
    [-1, 0, 1]
    >>> padded_source(3, (-1, 1), "circular")  # crops first, then wraps, like F.pad
    [1, 2, 1]
    """
    return [source_of(p, size, pad, mode) for p in range(size + pad[0] + pad[1])]


def tap_counts(size: int, windows: int, kernel: int, stride: int, dilation: int, offset: int) -> list[int]:
    """How many (window, tap) pairs land on each of ``size`` positions.

    Window ``j`` tap ``t`` lands on position ``j·stride + t·dilation − offset``. For a direct
    convolution (``offset`` 0, positions in the padded input) this counts how often each padded
    cell is read; for a transposed convolution (``offset`` = padding before), whose input cells
    stamp the kernel into the output, it is the overlap count of each output cell.
    """
    if windows * kernel > CELL_LIMIT or size > CELL_LIMIT:
        raise ConvArithError(
            "input_shape",
            f"counting {windows:,} windows × {kernel:,} taps over {size:,} cells one by one is over the limit "
            f"of {CELL_LIMIT:,}",
            size,
        )
    counts = [0] * size
    for j in range(windows):
        start = j * stride - offset
        for t in range(kernel):
            pos = start + t * dilation
            if 0 <= pos < size:
                counts[pos] += 1
    return counts


# -- coverage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisCoverage:
    """How a direct convolution or pooling reads one input axis."""

    reads: tuple[int, ...]
    """How many (window, tap) pairs read each input cell, through the padding mode."""
    unread_pad: tuple[int, int]
    """Padded cells before and after the input that no window reaches."""
    cropped: tuple[int, int] = (0, 0)
    """Input cells a negative padding crops before and after (never read)."""

    @property
    def unread_input(self) -> tuple[int, ...]:
        """Input positions no window reads: their values never affect the output."""
        return tuple(x for x, n in enumerate(self.reads) if n == 0)

    @property
    def dropped_tail(self) -> int:
        """Trailing input cells after the last cell any window reads (the floor's loss, or a crop)."""
        read = [x for x, n in enumerate(self.reads) if n]
        return len(self.reads) - 1 - read[-1] if read else len(self.reads)


def axis_coverage(ax: AxisGeometry, mode: str = "zeros") -> AxisCoverage:
    """Per input cell of one direct axis, how many (window, tap) pairs read it."""
    before, after = ax.pad
    padded = tap_counts(ax.padded, ax.output, ax.kernel, ax.stride, ax.dilation, 0)
    reads = [0] * ax.input
    for position, count in enumerate(padded):
        src = source_of(position, ax.input, ax.pad, mode)
        if count and src >= 0:
            reads[src] += count
    front, back = max(before, 0), max(after, 0)
    unread_before = sum(1 for n in padded[:front] if n == 0)
    unread_after = sum(1 for n in padded[len(padded) - back :] if n == 0) if back else 0
    return AxisCoverage(tuple(reads), (unread_before, unread_after), (max(-before, 0), max(-after, 0)))


def coverage(layer: Layer | BoundLayer, spatial: Sequence[int] | None = None) -> tuple[AxisCoverage, ...]:
    """Per axis, which input and padding cells the windows of a direct convolution or pool read.

    ``layer`` is a bound layer, or a layer and the spatial input sizes. Cells read only through
    a ``reflect``, ``replicate`` or ``circular`` padding count as read; cells a negative padding
    crops are never read.
    """
    bound = as_bound(layer, spatial)
    if bound.transposed:
        raise ConvArithError("op", "coverage is asked of a direct convolution or pooling; use overlap()", bound.op)
    return tuple(axis_coverage(ax, bound.layer.padding_mode) for ax in bound.axes)


@dataclass(frozen=True)
class ReadSummary:
    """Coverage counts of one direct axis with ``zeros`` padding, without a per-cell list."""

    unread_input: int
    """Input cells no window reads (crops included)."""
    dropped_tail: int
    """Trailing input cells after the last one read."""
    dropped_head: int
    """Leading input cells before the first one read."""
    unread_pad: tuple[int, int]


def _read_runs(ax: AxisGeometry) -> list[tuple[int, int, int]]:
    """The padded positions windows read, as runs ``(r, n0, n1)``: positions ``n·s + r`` for ``n0 ≤ n < n1``."""
    s, o = ax.stride, ax.output
    by_phase: dict[int, list[int]] = {}
    for t in range(ax.kernel):
        offset = t * ax.dilation
        by_phase.setdefault(offset % s, []).append(offset // s)
    runs = []
    for r, starts in sorted(by_phase.items()):
        starts.sort()
        lo, hi = starts[0], starts[0] + o
        for m in starts[1:]:
            if m > hi:
                runs.append((r, lo, hi))
                lo = m
            hi = max(hi, m + o)
        runs.append((r, lo, hi))
    return runs


def _count(runs: list[tuple[int, int, int]], s: int, lo: int, hi: int) -> tuple[int, int | None, int | None]:
    """Read positions in ``[lo, hi)``: how many, the first and the last."""
    total, first, last = 0, None, None
    for r, n0, n1 in runs:
        a = max(n0, -(-(lo - r) // s))
        b = min(n1, -(-(hi - r) // s))
        if b > a:
            total += b - a
            first = a * s + r if first is None else min(first, a * s + r)
            last = (b - 1) * s + r if last is None else max(last, (b - 1) * s + r)
    return total, first, last


def read_summary(ax: AxisGeometry) -> ReadSummary:
    """:func:`axis_coverage`'s counts for ``zeros`` padding in ``O(k log k)``, any input size.

    >>> from convarith import Layer
    >>> read_summary(Layer("conv1d", kernel_size=3, stride=2).bind((10**9,)).axes[0])
    ReadSummary(unread_input=1, dropped_tail=1, dropped_head=0, unread_pad=(0, 0))
    >>> read_summary(Layer("conv1d", kernel_size=2, stride=3).bind((8,)).axes[0])
    ReadSummary(unread_input=2, dropped_tail=0, dropped_head=0, unread_pad=(0, 0))
    """
    runs = _read_runs(ax)
    before, after = ax.pad
    read, first, last = _count(runs, ax.stride, before, before + ax.input)
    if first is None or last is None:
        head = tail = ax.input
    else:
        head, tail = first - before, before + ax.input - 1 - last
    front = _count(runs, ax.stride, 0, before)[0] if before > 0 else 0
    back = _count(runs, ax.stride, ax.padded - after, ax.padded)[0] if after > 0 else 0
    return ReadSummary(ax.input - read, tail, head, (max(before, 0) - front, max(after, 0) - back))


# -- overlap ----------------------------------------------------------------------------------------


def phase_counts(kernel: int, stride: int, dilation: int = 1, pad_before: int = 0) -> tuple[int, ...]:
    """Kernel taps landing on each output phase ``q mod s`` of a transposed convolution, away from the borders.

    Output ``q`` receives tap ``t`` of input ``j`` when ``j·s + t·d − p_b = q``, so only the taps
    with ``t·d ≡ q + p_b (mod s)`` reach it. Equal counts for every phase mean an even overlap;
    unequal counts are the checkerboard condition; a zero means that phase gets no taps at all.
    (For a direct convolution the same counts say how often each input phase is read.)

    >>> phase_counts(3, 2), phase_counts(4, 2), phase_counts(2, 2, dilation=2)
    ((2, 1), (2, 2), (2, 0))
    """
    counts = [0] * stride
    for t in range(kernel):
        counts[(t * dilation - pad_before) % stride] += 1
    return tuple(counts)


@dataclass(frozen=True)
class AxisOverlap:
    """How many kernel taps a transposed convolution stamps on each output cell of one axis."""

    counts: tuple[int, ...]
    """Per output cell, including the borders."""
    phase_counts: tuple[int, ...]
    """Per output phase ``q mod s``, away from the borders."""

    @property
    def uneven(self) -> bool:
        """The checkerboard condition: some phases receive more taps than others."""
        return min(self.phase_counts) != max(self.phase_counts)

    @property
    def empty_phases(self) -> tuple[int, ...]:
        """Phases no tap ever reaches (possible with dilation): only the bias lands there."""
        return tuple(r for r, n in enumerate(self.phase_counts) if n == 0)


def axis_overlap(ax: AxisGeometry) -> AxisOverlap:
    """The overlap counts of one transposed axis."""
    return AxisOverlap(
        tuple(tap_counts(ax.output, ax.input, ax.kernel, ax.stride, ax.dilation, ax.pad[0])),
        phase_counts(ax.kernel, ax.stride, ax.dilation, ax.pad[0]),
    )


def overlap(layer: Layer | BoundLayer, spatial: Sequence[int] | None = None) -> tuple[AxisOverlap, ...]:
    """Per axis, the overlap counts of a transposed convolution over this input."""
    bound = as_bound(layer, spatial)
    if not bound.transposed:
        raise ConvArithError("op", "overlap is asked of a transposed convolution; use coverage()", bound.op)
    return tuple(axis_overlap(ax) for ax in bound.axes)


def has_checkerboard_risk(layer: Layer) -> bool:
    """True when a transposed convolution overlaps unevenly on some axis (input size aside).

    >>> has_checkerboard_risk(Layer("conv_transpose2d", kernel_size=4, stride=2))
    False
    >>> has_checkerboard_risk(Layer("conv_transpose2d", kernel_size=3, stride=2))
    True
    """
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer", type(layer).__name__)
    if not layer.transposed:
        return False
    # A policy's pads depend on the input only through their split, never for the phases' spread.
    pads = layer.padding if not isinstance(layer.padding, str) else ((0, 0),) * layer.ndim
    return any(
        min(c) != max(c)
        for c in (
            phase_counts(k, s, d, pb)
            for k, s, d, (pb, _) in zip(layer.kernel_size, layer.stride, layer.dilation, pads, strict=True)
        )
    )
