"""One spatial axis of one operation: which input cells each output cell reads.

Every operation the analysis understands acts on each spatial axis on its own, and says it twice:

- :class:`Periodic`, on the unbounded grid (no borders): output cell ``o = qT + r`` reads the input
  interval ``[qD + lo[r], qD + hi[r]]``. A direct convolution has one phase (``T = 1``, ``D`` its
  stride), a transposed convolution or an upsampling ``T`` phases. Periodic maps compose and unite
  in closed form, which gives receptive fields, effective strides and centres of whole models
  (Araujo, Norris & Sim, Distill 2019, extended to phases).
- :class:`AxisOp`, on the real grid: the input cells each output cell reads with a non-zero weight
  (padding modes mapped back into the input, borders clipped) — the exact support used for the
  receptive field of one output cell and for the cells a whole model never reads.

Examples
--------
>>> conv = Periodic.window(stride=2, start=-1, extent=3)     # k=3, s=2, p=1
>>> up = Periodic(2, 1, ((-1, 0), (0, 1)))                    # bilinear ×2 (half-pixel)
>>> field = conv.then(conv)                                   # two convolutions
>>> field.phases, field.step, field.sizes
(((-3, 3),), 4, (7,))
>>> field.then(up).phases                                     # then upsampled: two phases
((-7, 3), (-3, 7))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ConvArithError

__all__ = ["PERIOD_LIMIT", "AxisOp", "Periodic", "Phase"]

Phase = tuple[int, int] | None
"""``(lo, hi)`` input cells read by one phase, both included; ``None``: the phase reads nothing."""

PERIOD_LIMIT = 1 << 14
"""Longest period a composed map may have (a chain of mismatched rational rescalings could grow it)."""


@dataclass(frozen=True)
class Periodic:
    """What output cell ``o = q·period + r`` reads on the unbounded grid: ``[q·step + lo, q·step + hi]``
    with ``(lo, hi) = phases[r]`` (``None``: nothing).

    >>> Periodic(2, 1, ((0, 0), None)).at(5), Periodic(2, 1, ((0, 0), None)).at(4)
    (None, (2, 2))
    """

    period: int
    step: int
    phases: tuple[Phase, ...]

    @classmethod
    def window(cls, stride: int, start: int, extent: int) -> Periodic:
        """One phase: output ``o`` reads ``[o·stride + start, o·stride + start + extent − 1]``."""
        return cls(1, stride, ((start, start + extent - 1),))

    @classmethod
    def sampled(cls, period: int, step: int, reads: Callable[[int], Sequence[int]]) -> Periodic:
        """The map of a rule ``reads(o)`` (unbounded input cells) that repeats every ``period`` outputs
        moving ``step`` inputs, from its first period."""
        phases: list[Phase] = []
        for r in range(period):
            cells = reads(r)
            phases.append((min(cells), max(cells)) if len(cells) else None)
        return cls(period, step, tuple(phases))._reduced()

    def at(self, o: int) -> Phase:
        """The interval output cell ``o`` reads (``None``: none)."""
        q, r = divmod(o, self.period)
        phase = self.phases[r]
        return None if phase is None else (q * self.step + phase[0], q * self.step + phase[1])

    @property
    def rate(self) -> Fraction:
        """Input cells per output cell: the effective stride (a fraction after upsampling)."""
        return Fraction(self.step, self.period)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The receptive field of each phase (0: an empty phase)."""
        return tuple(0 if p is None else p[1] - p[0] + 1 for p in self.phases)

    @property
    def centres(self) -> tuple[Fraction | None, ...]:
        """The centre of each phase's field, ``(lo + hi)/2``, for the first output cell of that phase."""
        return tuple(None if p is None else Fraction(p[0] + p[1], 2) for p in self.phases)

    def span(self, a: int, b: int) -> Phase:
        """The cells output cells ``a … b`` read together (their union's hull; ``None``: none).

        Not just the first and last cell's: with a dilation beyond the stride a transposed
        convolution's phases are not in order.
        """
        lo: int | None = None
        hi: int | None = None
        for o in range(a, b + 1):
            cells = self.at(o)
            if cells is not None:
                lo = cells[0] if lo is None else min(lo, cells[0])
                hi = cells[1] if hi is None else max(hi, cells[1])
        return None if lo is None or hi is None else (lo, hi)

    def then(self, op: Periodic) -> Periodic:
        """This map followed by ``op``: ``self`` maps its outputs to input cells, ``op`` maps its own
        outputs to ``self``'s outputs; the result maps ``op``'s outputs to input cells.

        >>> Periodic(1, 2, ((0, 2),)).then(Periodic(2, 1, ((0, 0), (0, 0))))  # conv s=2, then nearest ×2
        Periodic(period=2, step=2, phases=((0, 2), (0, 2)))
        """
        if self.period == 1 == op.period and self.step >= 0:  # one phase each: the span in closed form
            mine, reads = self.phases[0], op.phases[0]
            if mine is None or reads is None:
                return Periodic(1, self.step * op.step, (None,))
            return Periodic(1, self.step * op.step, ((reads[0] * self.step + mine[0], reads[1] * self.step + mine[1]),))
        g = math.gcd(self.period, op.step)
        period = op.period * (self.period // g)
        step = self.step * (op.step // g)
        if period > PERIOD_LIMIT:
            raise ConvArithError(
                "model", f"the receptive field repeats only every {period} outputs (limit {PERIOD_LIMIT})", period
            )
        phases: list[Phase] = []
        for r in range(period):
            reads = op.at(r)
            phases.append(None if reads is None else self.span(*reads))
        return Periodic(period, step, tuple(phases))._reduced()

    def lifted(self, period: int) -> tuple[Phase, ...]:
        """The phases over a multiple of the period (``period`` outputs, for :meth:`union`)."""
        return tuple(self.at(o) for o in range(period))

    def union(self, other: Periodic) -> Periodic | None:
        """The cells either map reads (two branches merged); ``None`` when their rates differ, where no
        periodic map describes the union.

        >>> Periodic.window(1, -1, 3).union(Periodic.window(1, -2, 3))
        Periodic(period=1, step=1, phases=((-2, 1),))
        """
        if self.period == 1 == other.period and self.step == other.step:  # one phase each
            a, b = self.phases[0], other.phases[0]
            phase = a if b is None else b if a is None else (min(a[0], b[0]), max(a[1], b[1]))
            return Periodic(1, self.step, (phase,))
        if self.rate != other.rate:
            return None
        period = math.lcm(self.period, other.period)
        step = int(self.rate * period)
        phases: list[Phase] = []
        for a, b in zip(self.lifted(period), other.lifted(period), strict=True):
            if a is None or b is None:
                phases.append(a if b is None else b)
            else:
                phases.append((min(a[0], b[0]), max(a[1], b[1])))
        return Periodic(period, step, tuple(phases))._reduced()

    @property
    def offset(self) -> Fraction | None:
        """Where the fields of the cells are centred on average: ``c`` in ``centre(o) ≈ o·rate + c``,
        the mean over the phases (Distill's ``−P + (r − 1)/2`` for one phase). Two branches whose
        cells look at the same places have equal rates and equal offsets; an up-convolution's
        phases share one centre, so its offset sits between its phases'.

        >>> Periodic(2, 16, ((60, 71), (60, 71))).offset, Periodic.window(8, 0, 139).offset
        (Fraction(123, 2), Fraction(69, 1))
        """
        if self.period == 1:  # the common case, without the sum below
            phase = self.phases[0]
            return None if phase is None else Fraction(phase[0] + phase[1], 2)
        centres = self.centres
        if any(c is None for c in centres):
            return None
        rate = self.rate
        return sum((c - r * rate for r, c in enumerate(centres) if c is not None), Fraction(0)) / self.period

    def aligned(self, other: Periodic) -> bool:
        """Whether two maps look at the same places: equal rates and equal :attr:`offset` s.

        >>> one = Periodic.window(2, 0, 1)
        >>> Periodic.window(2, -1, 3).aligned(one), Periodic.window(2, 0, 3).aligned(one)
        (True, False)
        """
        if self.period == 1 == other.period and self.phases[0] is not None and other.phases[0] is not None:
            (a, b), (c, d) = self.phases[0], other.phases[0]
            return self.step == other.step and a + b == c + d  # without the fractions
        return self.rate == other.rate and self.offset == other.offset

    def _reduced(self) -> Periodic:
        """The same map with its shortest period."""
        for p in range(1, self.period):
            if self.period % p or (self.step * p) % self.period:
                continue
            shift = self.step * p // self.period
            if all(self.at(r + p) == self._shifted(self.phases[r], shift) for r in range(self.period - p)):
                return Periodic(p, shift, self.phases[:p])
        return self

    @staticmethod
    def _shifted(phase: Phase, shift: int) -> Phase:
        return None if phase is None else (phase[0] + shift, phase[1] + shift)


@dataclass(frozen=True)
class AxisOp:
    """One spatial axis of one operation: its sizes, its unbounded map and its exact reads.

    ``sources[o]`` lists the input cells (``0 … input − 1``) output cell ``o`` reads with a non-zero
    weight, each as often as it is read (a reflected padding may read a cell twice).
    """

    input: int
    output: int
    periodic: Periodic | None
    """``None``: no short period (an irregular resampling ratio)."""
    sources: tuple[tuple[int, ...], ...]
    weights: tuple[tuple[float, ...], ...] | None = None
    """The weight of each source (an interpolation's, an average's); ``None``: every tap weighs one."""
    largest: bool = False
    """A max pool: an output holds the largest of its sources, not a weighted sum."""

    def __post_init__(self) -> None:
        if len(self.sources) != self.output:
            raise ConvArithError("model", "an axis map lists one source tuple per output cell", len(self.sources))

    def read(self, wanted: Sequence[bool]) -> list[bool]:
        """The input cells that the wanted output cells read (one flag per cell)."""
        if all(wanted):
            return list(self._read_by_all)
        return self._read(wanted)

    def _read(self, wanted: Sequence[bool]) -> list[bool]:
        out = [False] * self.input
        for o, want in enumerate(wanted):
            if want:
                for i in self.sources[o]:
                    out[i] = True
        return out

    @functools.cached_property
    def _read_by_all(self) -> list[bool]:
        """The input cells that some output cell reads (kept: a whole tensor is what is mostly wanted)."""
        return self._read([True] * self.output)

    @functools.cached_property
    def _runs(self) -> tuple[tuple[int, int], ...] | None:
        """Each output cell's sources as one run of cells ``start … stop − 1`` in order, for slices of the
        input instead of its cells one by one; ``None``: not every output's are."""
        runs = []
        for src in self.sources:
            start = src[0] if src else 0
            stop = start + len(src)
            if src != tuple(range(start, stop)):
                return None
            runs.append((start, stop))
        return tuple(runs)

    def counts(self, inputs: Sequence[float]) -> list[float]:
        """What each output cell holds when the input cells hold ``inputs`` and every kernel tap weighs
        one (interpolations and averages keep their weights, a max pool takes the largest): the
        overlap of a stack, one axis at a time."""
        runs = self._runs if self.weights is None else None
        if self.largest:
            if runs is not None:  # the same values in the same order, sliced
                return [max(inputs[a:b], default=0.0) for a, b in runs]
            return [max((inputs[i] for i in src), default=0.0) for src in self.sources]
        if self.weights is None:
            if runs is not None:
                return [float(sum(inputs[a:b])) for a, b in runs]
            return [float(sum([inputs[i] for i in src])) for src in self.sources]
        return [
            sum(w * inputs[i] for i, w in zip(src, ws, strict=True))
            for src, ws in zip(self.sources, self.weights, strict=True)
        ]
