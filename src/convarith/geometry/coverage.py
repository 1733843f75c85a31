"""Coverage (cells no window reads) and overlap (the checkerboard condition), per axis.

A convolution's taps factor over axes, so an N-d count is the outer product of these per-axis
counts: a cell is unread when it is unread on any axis, and an output cell of a transposed
convolution receives ``∏ counts[axis][q_axis]`` kernel taps.

Examples
--------
The guide's Figure 2.7 (6×6 input, 3×3 kernel, stride 2, padding 1): every input cell is read,
but the last padded row is not.

>>> cov, = coverage(ConvSpec.create("conv1d", kernel_size=3, stride=2, padding=1), (6,))
>>> cov.unread_input, cov.unread_pad
((), (0, 1))

A 3×3 kernel with stride 2, transposed, stamps 2 taps on even outputs and 1 on odd ones: the
checkerboard.

>>> ov, = overlap(ConvSpec.create("conv_transpose1d", kernel_size=3, stride=2), (4,))
>>> ov.phase_counts, ov.uneven
((2, 1), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConvArithError
from .arithmetic import tap_counts
from .spec import ConvSpec

__all__ = ["AxisCoverage", "AxisOverlap", "coverage", "has_checkerboard_risk", "overlap", "phase_counts"]


@dataclass(frozen=True)
class AxisCoverage:
    """How a direct convolution or pooling reads one input axis."""

    reads: tuple[int, ...]
    """How many (window, tap) pairs read each input cell."""
    unread_pad: tuple[int, int]
    """Padded cells before and after the input that no window reaches."""

    @property
    def unread_input(self) -> tuple[int, ...]:
        """Input positions that no window reads: their values never affect the output."""
        return tuple(x for x, n in enumerate(self.reads) if n == 0)

    @property
    def dropped_tail(self) -> int:
        """Trailing input cells after the last cell any window reads (the floor's loss)."""
        read = [x for x, n in enumerate(self.reads) if n]
        return len(self.reads) - 1 - read[-1] if read else len(self.reads)


def coverage(spec: ConvSpec, spatial: Sequence[int]) -> tuple[AxisCoverage, ...]:
    """Per axis, which input and padding cells the windows of a direct convolution or pool read."""
    if spec.transposed:
        raise ConvArithError("op", "coverage is asked of a direct convolution or pooling; use overlap()", spec.op)
    out = spec.output_spatial(spatial)
    resolved = spec.resolve(spatial)
    result = []
    for i, o, k, s, (pb, pa), d in zip(
        spatial, out, resolved.kernel_size, resolved.stride, resolved.pads, resolved.dilation, strict=True
    ):
        padded = tap_counts(i + pb + pa, o, k, s, d, 0)
        before = next((x for x, n in enumerate(padded[:pb]) if n), pb)
        after = next((x for x, n in enumerate(reversed(padded[pb + i :])) if n), pa)
        result.append(AxisCoverage(tuple(padded[pb : pb + i]), (before, after)))
    return tuple(result)


def phase_counts(kernel: int, stride: int, dilation: int = 1, pad_before: int = 0) -> tuple[int, ...]:
    """Kernel taps landing on each output phase ``q mod s`` of a transposed convolution, away from the borders.

    Output ``q`` receives tap ``t`` of input ``j`` when ``j·s + t·d − p_b = q``, so only the taps
    with ``t·d ≡ q + p_b (mod s)`` reach it. Equal counts for every phase mean an even overlap;
    unequal counts are the checkerboard condition; a zero means that phase gets no taps at all.
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


def overlap(spec: ConvSpec, spatial: Sequence[int]) -> tuple[AxisOverlap, ...]:
    """Per axis, the overlap counts of a transposed convolution over this input."""
    if not spec.transposed:
        raise ConvArithError("op", "overlap is asked of a transposed convolution; use coverage()", spec.op)
    out = spec.output_spatial(spatial)
    resolved = spec.resolve(spatial)
    return tuple(
        AxisOverlap(tuple(tap_counts(o, i, k, s, d, pb)), phase_counts(k, s, d, pb))
        for i, o, k, s, (pb, _), d in zip(
            spatial, out, resolved.kernel_size, resolved.stride, resolved.pads, resolved.dilation, strict=True
        )
    )


def has_checkerboard_risk(spec: ConvSpec) -> bool:
    """True when a transposed convolution overlaps unevenly on some axis (input size aside).

    >>> has_checkerboard_risk(ConvSpec.create("conv_transpose2d", kernel_size=4, stride=2))
    False
    >>> has_checkerboard_risk(ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2))
    True
    """
    if not spec.transposed:
        return False
    pads = spec.padding if not isinstance(spec.padding, str) else ((0, 0),) * spec.ndim
    return any(
        min(c) != max(c)
        for c in (
            phase_counts(k, s, d, pb)
            for k, s, d, (pb, _) in zip(spec.kernel_size, spec.stride, spec.dilation, pads, strict=True)
        )
    )
