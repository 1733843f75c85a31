"""The axis maps (:class:`~convarith.analysis.axes.AxisOp`) of every spatial operation the analysis
understands, one function each: layers (from their bound geometry), padding and cropping, strided
slices, resizing, pixel (un)shuffle, adaptive pooling.

Examples
--------
>>> from convarith import Layer
>>> ax = Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1).bind((4,)).axes[0]
>>> op = layer_axis(ax)
>>> op.periodic.phases, op.sources[:3]
(((0, 0), (0, 1)), ((0,), (0, 1), (1,)))
>>> resize_axis(3, 6, Resize("linear")).sources
((0,), (0, 1), (0, 1), (1, 2), (1, 2), (2,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from ..errors import ConvArithError
from ..geometry.bound import AxisGeometry
from ..geometry.coverage import source_of
from ..layer import Pad
from .axes import AxisOp, Periodic

__all__ = [
    "Resize",
    "adaptive_axis",
    "layer_axis",
    "pad_axis",
    "resize_axis",
    "shuffle_axis",
    "slice_axis",
    "unshuffle_axis",
]

HALF = Fraction(1, 2)
CELL_LIMIT = 20_000_000
"""Most (output cell, tap) pairs one axis map lists."""


def _check_cells(output: int, taps: int) -> None:
    if output * taps > CELL_LIMIT:
        raise ConvArithError(
            "input_shape", f"an axis of {output:,} cells × {taps:,} taps is over the limit of {CELL_LIMIT:,}", output
        )


def layer_axis(ax: AxisGeometry, padding_mode: str = "zeros") -> AxisOp:
    """A convolution, transposed convolution or pool along one axis (a max pool counts its whole
    window: the cells it may select).

    >>> from convarith import Layer
    >>> op = layer_axis(Layer("conv1d", kernel_size=3, padding=1).bind((4,)).axes[0], "reflect")
    >>> op.sources[0]
    (1, 0, 1)
    """
    k, s, d = ax.kernel, ax.stride, ax.dilation
    before = ax.pad[0]
    _check_cells(ax.output, k)
    if not ax.transposed and padding_mode == "zeros":
        # the taps o·s − before + t·d (t < k) that land in the input: one range per output cell
        lo, hi = max(0, -before), min(ax.input, ax.input + ax.pad[1])
        direct: list[tuple[int, ...]] = []
        for o in range(ax.output):
            first = o * s - before
            t0, t1 = max(0, -((first - lo) // d)), min(k - 1, (hi - 1 - first) // d)
            direct.append(tuple(range(first + t0 * d, first + t1 * d + 1, d)) if t0 <= t1 else ())
        return AxisOp(ax.input, ax.output, Periodic.window(s, -before, ax.extent), tuple(direct))
    if not ax.transposed:
        padded = ax.padded
        direct = []
        for o in range(ax.output):
            cells = []
            for t in range(k):
                p = o * s + t * d
                if 0 <= p < padded:
                    src = source_of(p, ax.input, ax.pad, padding_mode)
                    if src >= 0:
                        cells.append(src)
            direct.append(tuple(cells))
        return AxisOp(ax.input, ax.output, Periodic.window(s, -before, ax.extent), tuple(direct))

    def reads(o: int) -> list[int]:
        """Input cells ``i`` whose stamp ``i·s + t·d`` lands on (full) output cell ``o + before``."""
        out = []
        for t in range(k):
            num = o + before - t * d
            if num % s == 0:
                out.append(num // s)
        return sorted(out)

    sources = tuple(tuple(i for i in reads(o) if 0 <= i < ax.input) for o in range(ax.output))
    return AxisOp(ax.input, ax.output, Periodic.sampled(s, 1, reads), sources)


def pad_axis(size: int, pad: Pad, mode: str = "zeros") -> AxisOp:
    """Padding (negative values crop) with a padding mode, as ``F.pad``.

    >>> pad_axis(3, (1, -1)).sources
    ((), (0,), (1,))
    """
    before, after = pad
    out = size + before + after
    sources = tuple(tuple(c for c in (source_of(o, size, pad, mode),) if c >= 0) for o in range(out))
    return AxisOp(size, out, Periodic.window(1, -before, 1), sources)


def slice_axis(size: int, start: int, stop: int, step: int = 1) -> AxisOp:
    """A strided slice ``x[start:stop:step]`` (bounds already within ``0 … size``).

    >>> slice_axis(7, 1, 7, 3).sources
    ((1,), (4,))
    """
    out = len(range(start, stop, step))
    return AxisOp(size, out, Periodic.window(step, start, 1), tuple((start + o * step,) for o in range(out)))


def shuffle_axis(size: int, factor: int) -> AxisOp:
    """Pixel shuffle (channels to space): output cell ``o`` holds a channel of input cell ``o // factor``."""
    return AxisOp(
        size,
        size * factor,
        Periodic(factor, 1, ((0, 0),) * factor)._reduced(),
        tuple((o // factor,) for o in range(size * factor)),
    )


def unshuffle_axis(size: int, factor: int) -> AxisOp:
    """Pixel unshuffle (space to channels): output ``o`` gathers input cells ``o·factor … o·factor + factor − 1``."""
    out = size // factor
    return AxisOp(
        size,
        out,
        Periodic.window(factor, 0, factor),
        tuple(tuple(range(o * factor, o * factor + factor)) for o in range(out)),
    )


def adaptive_axis(size: int, out: int) -> AxisOp:
    """Adaptive pooling: window ``o`` is ``⌊o·i/o′⌋ … ⌈(o + 1)·i/o′⌉ − 1`` (PyTorch, Keras, ONNX alike).

    >>> adaptive_axis(5, 3).sources
    ((0, 1), (1, 2, 3), (3, 4))
    """

    def reads(o: int) -> list[int]:
        return list(range((o * size) // out, -(-((o + 1) * size) // out)))

    _check_cells(out, -(-size // out) + 1)
    g = math.gcd(size, out)
    return AxisOp(size, out, Periodic.sampled(out // g, size // g, reads), tuple(tuple(reads(o)) for o in range(out)))


Coordinate = Literal["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]


@dataclass(frozen=True)
class Resize:
    """How a framework resamples one axis, in ONNX ``Resize``'s terms.

    ``mode``: ``nearest``, ``linear`` or ``cubic``. ``coordinate``: where output cell ``o`` samples
    the input, ``x(o)`` with ``ratio`` = input cells per output cell (``1/scale`` where the
    framework uses the scale it was given, else ``i/o′``):
    ``half_pixel`` ``(o + ½)·ratio − ½``, ``pytorch_half_pixel`` the same but 0 for one output cell,
    ``align_corners`` ``o·(i − 1)/(o′ − 1)``, ``asymmetric`` ``o·ratio``, ``tf_half_pixel_for_nn``
    ``(o + ½)·ratio``. ``nearest``: how a nearest sample rounds ``x``. ``clamp``: a linear ``x``
    below 0 is taken as 0 (PyTorch, TensorFlow). ``cubic_a``: the cubic kernel's ``A``
    (PyTorch −0.75, ONNX and TensorFlow −0.5).
    """

    mode: Literal["nearest", "linear", "cubic"]
    coordinate: Coordinate = "half_pixel"
    nearest: Literal["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"] = "floor"
    scale: float | None = None
    """Output cells per input cell as the framework applies it; ``None``: ``o′/i``."""
    clamp: bool = True
    cubic_a: float = -0.75

    def ratio(self, size: int, out: int) -> float:
        if self.coordinate == "align_corners":
            return (size - 1) / (out - 1) if out > 1 else 0.0
        return 1.0 / self.scale if self.scale else size / out

    def exact_ratio(self, size: int, out: int) -> Fraction:
        """The ratio as a fraction (the unbounded map's period and step)."""
        if self.coordinate == "align_corners":
            return Fraction(size - 1, out - 1) if out > 1 else Fraction(0)
        if self.scale:
            return Fraction(1) / Fraction(self.scale).limit_denominator(1000)
        return Fraction(size, out)

    def x(self, o: int, ratio: float | Fraction, out: int) -> float | Fraction:
        """Where output cell ``o`` samples the input (exact with a fractional ``ratio``)."""
        c = self.coordinate
        if c in ("align_corners", "asymmetric"):
            return o * ratio
        if c == "tf_half_pixel_for_nn":
            return (o + HALF) * ratio
        if c == "pytorch_half_pixel" and out == 1:
            return 0 * ratio
        return (o + HALF) * ratio - HALF

    def taps(self, x: float | Fraction, size: int | None) -> list[int]:
        """Cells sampled at ``x`` with a non-zero weight; ``size``: clip into ``0 … size − 1`` as the
        framework does (``None``: the unbounded grid)."""
        return sorted(self.weights(x, size))

    def weights(self, x: float | Fraction, size: int | None) -> dict[int, float]:
        """The cells sampled at ``x`` and their non-zero interpolation weights."""
        if self.mode == "nearest":
            rounding = self.nearest
            if rounding == "floor":
                i = math.floor(x)
            elif rounding == "ceil":
                i = math.ceil(x)
            elif rounding == "round_prefer_ceil":
                i = math.floor(x + HALF)
            else:
                i = math.ceil(x - HALF)
            return {i if size is None else min(max(i, 0), size - 1): 1.0}
        if self.mode == "linear":
            if size is not None and self.clamp:
                x = max(x, 0 * x)
            i0 = math.floor(x)
            frac = float(x - i0)
            taps = [(i0, 1.0 - frac), (i0 + 1, frac)]
        else:
            base = math.floor(x)
            t = float(x - base)
            taps = [(base + j, _cubic(j - t, self.cubic_a)) for j in (-1, 0, 1, 2)]
        out: dict[int, float] = {}
        for cell, w in taps:
            if size is not None:
                cell = min(max(cell, 0), size - 1)
            out[cell] = out.get(cell, 0.0) + w
        return {c: w for c, w in out.items() if w != 0.0}


def _cubic(distance: float, a: float) -> float:
    """The cubic convolution kernel (Keys) at ``distance``."""
    d = abs(distance)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return 0.0


def resize_axis(size: int, out: int, rule: Resize) -> AxisOp:
    """Resizing (nearest, linear, cubic) from ``size`` to ``out`` cells.

    >>> resize_axis(2, 4, Resize("nearest", "asymmetric")).sources
    ((0,), (0,), (1,), (1,))
    """
    _check_cells(out, 4)
    ratio = rule.ratio(size, out)
    taps = [rule.weights(rule.x(o, ratio, out), size) for o in range(out)]
    sources = tuple(tuple(sorted(t)) for t in taps)
    weights = tuple(tuple(t[c] for c in sorted(t)) for t in taps)
    exact = rule.exact_ratio(size, out)
    periodic: Periodic | None = None  # an irregular ratio has no short period: its fields stay unknown
    if exact.denominator <= 1000:
        periodic = Periodic.sampled(
            exact.denominator, exact.numerator, lambda o: rule.taps(rule.x(o, exact, out), None)
        )
    return AxisOp(size, out, periodic, sources, weights)


def spans(op: AxisOp, cells: Sequence[int]) -> tuple[int, int] | None:
    """The hull of the input cells the given output cells read (exact reads)."""
    read = [i for o in cells for i in op.sources[o]]
    return (min(read), max(read)) if read else None
