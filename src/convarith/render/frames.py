"""The frame model: what each frame of an animation shows, derived from the geometry.

An :class:`Animation` is a pure description, no pixels: two grids (the *lower* one the kernel
reads, the *upper* one it writes), and one :class:`Frame` per step naming the cells highlighted on
each grid and the kernel tap at each of them. Writers (:mod:`convarith.render.writers`) turn it
into GIF, APNG, SVG, PNG or MP4.

Views
-----
``direct``
    Convolution or pooling: one frame per output position (per output channel, channel
    outermost), so frame ``f`` is row ``f`` of the matrix C. For a transposed convolution this is
    the guide's view: the equivalent stride-1 direct convolution over the zero-inserted, padded
    (or cropped) input, the ``output_padding`` cells marked.
``scatter``
    Transposed convolution only: one frame per input cell, which stamps the kernel into the
    output (frame ``f`` is column ``f`` of the transposed convolution's matrix); the cells
    stamped so far give the overlap counts (the checkerboard).

Every axis is laid out on its own and the N-d grid is the product of its axes, so the model is
the same for 1-d, 2-d, 3-d or more; a cell kind combines its axes' kinds by priority.

Examples
--------
The guide's ``padding_strides_odd_transposed`` (i′=3, k=3, s=2, p=1, a=1): an 8×8 drawn input
(zeros inserted, padded by 1 before and 1 + a after), the extra cells last (bottom/right).

>>> from convarith import ConvSpec
>>> spec = ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
>>> anim = build_animation(spec, (3, 3))
>>> anim.lower.shape, anim.upper.shape, len(anim.frames)
((8, 8), (6, 6), 36)
>>> "".join(k[0] for k in anim.lower.axes[0].kinds)  # pad, input, zero, ..., extra
'pizizipe'
>>> anim.frames[0].lower[0].cell, anim.frames[0].lower[0].tap
((0, 0), (0, 0, 2, 2))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConvArithError
from ..geometry import ConvSpec, check_channels, equivalent_direct_conv, overlap
from ..geometry.arithmetic import tap_counts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "KIND_PRIORITY",
    "Animation",
    "AxisCells",
    "CellKind",
    "Frame",
    "Grid",
    "Touch",
    "Values",
    "View",
    "build_animation",
]

CellKind = Literal["input", "output", "zero", "pad", "extra", "overhang", "crop"]
"""What a drawn cell is.

``input``/``output`` real cells; ``zero`` inserted between input cells by a transposed
convolution's stride; ``pad`` padding (zeros, or folded back with a non-zero ``padding_mode``);
``extra`` the ``output_padding`` cells (``a``) that no forward window reached; ``overhang`` cells a
``ceil_mode`` pooling window reaches past the padding; ``crop`` cells a negative padding (or a
transposed convolution's padding) removes.
"""
View = Literal["direct", "scatter"]

# An N-d cell's kind is the strongest of its axes' kinds.
KIND_PRIORITY: dict[str, int] = {
    "input": 0,
    "output": 0,
    "zero": 1,
    "pad": 2,
    "extra": 3,
    "overhang": 4,
    "crop": 5,
}

MAX_FRAMES = 4096


@dataclass(frozen=True)
class AxisCells:
    """One axis of a drawn grid."""

    kinds: tuple[CellKind, ...]
    """Kind of every drawn position."""
    source: tuple[int, ...]
    """Index (on this axis) of the layer's input — or, on an upper grid, output — cell a drawn
    position holds; ``-1`` when it holds a zero or nothing (a folding ``padding_mode`` maps its
    padding back into the input)."""
    offset: int
    """Drawn position of window position 0: a tap at window position ``u`` lies at ``u + offset``."""
    reads: tuple[int, ...]
    """How many (frame, tap) pairs touch every drawn position (0 = never read: the floor's loss)."""

    def __len__(self) -> int:
        return len(self.kinds)


@dataclass(frozen=True)
class Grid:
    """A drawn grid: channels × the product of its axes."""

    label: str
    channels: int
    axes: tuple[AxisCells, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis) for axis in self.axes)

    def kind(self, cell: Sequence[int]) -> CellKind:
        """The kind of an N-d cell: the strongest kind of its axes."""
        kinds = [axis.kinds[g] for axis, g in zip(self.axes, cell, strict=True)]
        return max(kinds, key=KIND_PRIORITY.__getitem__)

    def source(self, cell: Sequence[int]) -> tuple[int, ...] | None:
        """The layer's cell this drawn cell holds, or ``None`` for zeros, padding and crops."""
        if self.kind(cell) in ("crop", "overhang", "zero", "extra"):
            return None
        src = tuple(axis.source[g] for axis, g in zip(self.axes, cell, strict=True))
        return None if min(src) < 0 else src

    def unread(self, cell: Sequence[int]) -> bool:
        """No frame touches this cell (an N-d cell is unread when it is unread on some axis)."""
        return any(axis.reads[g] == 0 for axis, g in zip(self.axes, cell, strict=True))

    def cells(self) -> Iterator[tuple[int, ...]]:
        """Every spatial position, row-major."""
        return itertools.product(*(range(len(axis)) for axis in self.axes))

    def kinds_present(self) -> set[str]:
        return {self.kind(cell) for cell in self.cells()}


@dataclass(frozen=True)
class Touch:
    """One highlighted cell of a frame."""

    channel: int
    cell: tuple[int, ...]
    """Drawn-grid position."""
    tap: tuple[int, ...] = ()
    """Index into the layer's weight (PyTorch layout: ``(out, in/groups, *k)`` for a convolution,
    ``(in, out/groups, *k)`` for a transposed one), or the spatial tap for pooling; ``()`` for
    the single cell a frame reads from or writes to."""


@dataclass(frozen=True)
class Frame:
    index: int
    lower: tuple[Touch, ...]
    """Cells the kernel covers (direct view) or the one input cell stamping (scatter view)."""
    upper: tuple[Touch, ...]
    """The output cell produced (direct view) or the output cells stamped (scatter view)."""


@dataclass(frozen=True)
class Values:
    """Numbers of the numeric mode."""

    input: FloatArray
    """The layer's input, ``(C_in, *spatial)``."""
    weight: FloatArray | None
    """The layer's weight in PyTorch's layout (``None`` for pooling)."""
    lower: FloatArray
    """Values on the drawn lower grid ``(C, *shape)``: zeros in padding and inserted cells
    (``-inf`` in max-pooling padding), ``nan`` where there is nothing (crops, overhang)."""
    output: FloatArray
    """The result on the upper grid ``(C_out, *shape)``; ``nan`` on cropped cells."""
    frame_values: tuple[float, ...]
    """Direct view: the output value each frame computes. Scatter: the input value stamped."""


@dataclass(frozen=True)
class Animation:
    """Everything a writer needs: the layer, its two grids and its frames."""

    spec: ConvSpec
    """The resolved layer."""
    view: View
    input_spatial: tuple[int, ...]
    output_spatial: tuple[int, ...]
    in_channels: int
    out_channels: int
    lower: Grid
    upper: Grid
    frames: tuple[Frame, ...]
    values: Values | None = None

    @property
    def ndim(self) -> int:
        return self.spec.ndim

    @property
    def weight_shape(self) -> tuple[int, ...]:
        s = self.spec
        if s.pooling:
            return s.kernel_size
        if s.transposed:
            return (self.in_channels, self.out_channels // s.groups, *s.kernel_size)
        return (self.out_channels, self.in_channels // s.groups, *s.kernel_size)

    @property
    def guide_view(self) -> bool:
        """A transposed convolution drawn as its equivalent direct convolution."""
        return self.spec.transposed and self.view == "direct"

    def caption(self) -> str:
        """One line of parameters, e.g. ``conv2d  i=5×5 k=3×3 s=2×2 p=1 → o=3×3``."""
        s = self.spec

        def fmt(values: Sequence[int]) -> str:
            return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))

        def sizes(values: Sequence[int]) -> str:
            return "×".join(map(str, values))

        pads = s.pads
        symmetric = all(b == a for b, a in pads)
        pad = fmt([b for b, _ in pads]) if symmetric else ",".join(f"{b}:{a}" for b, a in pads)
        parts = [f"i={sizes(self.input_spatial)}", f"k={fmt(s.kernel_size)}", f"s={fmt(s.stride)}", f"p={pad}"]
        if max(s.dilation) > 1:
            parts.append(f"d={fmt(s.dilation)}")
        if s.transposed and max(s.output_padding) > 0:
            parts.append(f"a={fmt(s.output_padding)}")
        if s.ceil_mode:
            parts.append("ceil_mode")
        if s.padding_mode != "zeros":
            parts.append(s.padding_mode)
        if s.groups > 1:
            parts.append(f"groups={s.groups}")
        channels = ""
        if self.in_channels > 1 or self.out_channels > 1:
            channels = f"  C {self.in_channels}→{self.out_channels}"
        return f"{s.op}  {' '.join(parts)} → o={sizes(self.output_spatial)}{channels}"


# -- per-axis layouts -------------------------------------------------------------------------------


def _direct_axis(
    i: int, o: int, k: int, s: int, d: int, pad: tuple[int, int], mode: str, *, pooling: bool
) -> AxisCells:
    """Input axis of a direct convolution or pooling: padding and crops around the input."""
    from ..ops.indexing import padded_source

    pb, pa = pad
    front, back = max(pb, 0), max(pa, 0)
    padded = i + pb + pa
    last = (o - 1) * s + d * (k - 1)  # window position of the last tap
    extra = max(last + 1 - padded, 0) if pooling else 0  # ceil_mode windows reach past the padding
    size = front + i + back + extra
    offset = max(-pb, 0)
    src = padded_source(i, pad, mode).tolist()
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        x = g - front  # input position
        u = g - offset  # window position
        if g >= front + i + back:
            kinds.append("overhang")
        elif 0 <= x < i:
            kinds.append("input" if 0 <= u < padded else "crop")
        else:
            kinds.append("pad")
        source.append(src[u] if 0 <= u < padded and kinds[-1] != "overhang" else -1)
    reads = tuple(tap_counts(size, o, k, s, d, -offset))
    return AxisCells(tuple(kinds), tuple(source), offset, reads)


def _guide_axis(i: int, s: int, k: int, d: int, pad: tuple[int, int], a: int, o: int) -> AxisCells:
    """Input axis of the equivalent direct convolution: zeros inserted, padded or cropped, ``a`` marked."""
    stretched = (i - 1) * s + 1
    pb, pa = pad
    front, back = max(pb, 0), max(pa, 0)
    crop_b, crop_a = max(-pb, 0), max(-pa, 0)
    size = front + stretched + back
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        x = g - front
        if x < 0:
            kinds.append("pad")
        elif x >= stretched:
            # the last min(a, p′_a) cells of the padding after are output_padding's
            kinds.append("extra" if g >= size - min(a, back) else "pad")
        elif x < crop_b or x >= stretched - crop_a:
            kinds.append("crop")
        elif x % s:
            kinds.append("zero")
        else:
            kinds.append("input")
        source.append(x // s if kinds[-1] == "input" else -1)
    reads = tuple(tap_counts(size, o, k, 1, d, -crop_b))
    return AxisCells(tuple(kinds), tuple(source), crop_b, reads)


def _output_axis(o: int) -> AxisCells:
    kinds: list[CellKind] = ["output"] * o
    return AxisCells(tuple(kinds), tuple(range(o)), 0, (1,) * o)


def _plain_input_axis(i: int) -> AxisCells:
    kinds: list[CellKind] = ["input"] * i
    return AxisCells(tuple(kinds), tuple(range(i)), 0, (1,) * i)


def _scatter_axis(i: int, k: int, s: int, d: int, pad: tuple[int, int], o: int, counts: Sequence[int]) -> AxisCells:
    """Output axis of a transposed convolution with the stamped border that its padding crops."""
    pb, _ = pad
    full = (i - 1) * s + d * (k - 1) + 1  # cells the stamps cover before the crop
    size = max(full, pb + o)
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        q = g - pb
        if not 0 <= q < o:
            kinds.append("crop")
        elif g >= full:
            kinds.append("extra")  # output_padding that no stamp reaches
        else:
            kinds.append("output")
        source.append(q if 0 <= q < o else -1)
    reads = tuple(tap_counts(size, i, k, s, d, 0))
    # the overlap the geometry predicts is what lands inside the output
    assert list(reads[pb : pb + o]) == list(counts)
    return AxisCells(tuple(kinds), tuple(source), 0, reads)


# -- frames -----------------------------------------------------------------------------------------


def _direct_frames(
    spec: ConvSpec, lower: Grid, out_spatial: tuple[int, ...], c_in: int, c_out: int, *, guide: bool
) -> list[Frame]:
    """One frame per (output channel, output position): the window and its taps."""
    n = spec.ndim
    stride = (1,) * n if guide else spec.stride
    cig, cog = c_in // spec.groups, c_out // spec.groups
    taps = list(itertools.product(*(range(k) for k in spec.kernel_size)))
    frames: list[Frame] = []
    for oc in range(c_out):
        group = oc // cog
        channels = [oc] if spec.pooling else range(group * cig, (group + 1) * cig)
        for pos in itertools.product(*(range(o) for o in out_spatial)):
            touches = []
            for ic in channels:
                for t in taps:
                    cell = tuple(
                        p * st + tt * d + axis.offset
                        for p, st, tt, d, axis in zip(pos, stride, t, spec.dilation, lower.axes, strict=True)
                    )
                    if spec.pooling:
                        tap: tuple[int, ...] = t
                    elif guide:
                        # the equivalent conv uses the kernel rotated by 180°, in/out swapped
                        flipped = tuple(k - 1 - tt for k, tt in zip(spec.kernel_size, t, strict=True))
                        tap = (ic, oc - group * cog, *flipped)
                    else:
                        tap = (oc, ic - group * cig, *t)
                    touches.append(Touch(ic, cell, tap))
            frames.append(Frame(len(frames), tuple(touches), (Touch(oc, pos),)))
    return frames


def _scatter_frames(spec: ConvSpec, upper: Grid, in_spatial: tuple[int, ...], c_in: int, c_out: int) -> list[Frame]:
    """One frame per (input channel, input position): the kernel stamped into the output."""
    cig, cog = c_in // spec.groups, c_out // spec.groups
    taps = list(itertools.product(*(range(k) for k in spec.kernel_size)))
    frames: list[Frame] = []
    for ic in range(c_in):
        group = ic // cig
        for pos in itertools.product(*(range(i) for i in in_spatial)):
            stamps = []
            for oc in range(group * cog, (group + 1) * cog):
                for t in taps:
                    cell = tuple(p * s + tt * d for p, s, tt, d in zip(pos, spec.stride, t, spec.dilation, strict=True))
                    stamps.append(Touch(oc, cell, (ic, oc - group * cog, *t)))
            frames.append(Frame(len(frames), (Touch(ic, pos),), tuple(stamps)))
    return frames


# -- values -----------------------------------------------------------------------------------------


def _as_array(name: str, value: Any, shape: tuple[int, ...], short: tuple[int, ...]) -> FloatArray:
    import numpy as np

    array = np.asarray(value, dtype=np.float64)
    if array.shape == shape:
        return array
    if array.shape == short:
        return array.reshape(shape)
    raise ConvArithError(name, f"must have shape {shape}" + (f" or {short}" if short != shape else ""), array.shape)


def _values(anim: Animation, seed: int, input_values: Any | None, kernel_values: Any | None) -> Values:
    import numpy as np

    spec = anim.spec
    rng = np.random.default_rng(seed)
    in_shape = (anim.in_channels, *anim.input_spatial)
    if input_values is None:
        x = rng.integers(0, 4, size=in_shape).astype(np.float64)
    else:
        x = _as_array("input_values", input_values, in_shape, tuple(anim.input_spatial))
    weight: FloatArray | None = None
    if spec.pooling:
        if kernel_values is not None:
            raise ConvArithError("kernel_values", "pooling has no weights", spec.op)
    else:
        shape = anim.weight_shape
        short = tuple(spec.kernel_size) if shape[0] == shape[1] == 1 else shape
        if kernel_values is None:
            weight = rng.integers(0, 3, size=shape).astype(np.float64)
        else:
            weight = _as_array("kernel_values", kernel_values, shape, short)

    lower = anim.lower
    if anim.view == "scatter":
        lower_values = x.copy()
    else:
        fill = -np.inf if spec.kind == "max_pool" else 0.0
        lower_values = np.full((lower.channels, *lower.shape), np.nan)
        for cell in lower.cells():
            kind = lower.kind(cell)
            if kind in ("crop", "overhang"):
                continue
            src = lower.source(cell)
            for c in range(lower.channels):
                lower_values[(c, *cell)] = x[(c, *src)] if src is not None else (fill if kind == "pad" else 0.0)

    upper = anim.upper
    frame_values: list[float] = []
    if anim.view == "scatter":
        assert weight is not None
        out = np.zeros((upper.channels, *upper.shape))
        for frame in anim.frames:
            (src_touch,) = frame.lower
            value = float(x[(src_touch.channel, *src_touch.cell)])
            frame_values.append(value)
            for touch in frame.upper:
                out[(touch.channel, *touch.cell)] += value * weight[touch.tap]
        for cell in upper.cells():
            if upper.kind(cell) == "crop":
                out[(slice(None), *cell)] = np.nan  # type: ignore[index]
    else:
        out = np.full((upper.channels, *upper.shape), np.nan)
        for frame in anim.frames:
            value = _window_value(spec, lower, lower_values, weight, frame)
            frame_values.append(value)
            (target,) = frame.upper
            out[(target.channel, *target.cell)] = value
    return Values(x, weight, lower_values, out, tuple(frame_values))


def _window_value(spec: ConvSpec, lower: Grid, values: FloatArray, weight: FloatArray | None, frame: Frame) -> float:
    import numpy as np

    cells = [values[(t.channel, *t.cell)] for t in frame.lower]
    if spec.kind == "max_pool":
        return float(max(v for v in cells if not np.isnan(v)))
    if spec.kind == "avg_pool":
        counted = ("input", "pad") if spec.count_include_pad else ("input",)
        total = sum(v for v in cells if not np.isnan(v))
        return float(total / sum(lower.kind(t.cell) in counted for t in frame.lower))
    assert weight is not None
    return float(sum(v * weight[t.tap] for v, t in zip(cells, frame.lower, strict=True)))


# -- the one entry point ----------------------------------------------------------------------------


def build_animation(
    spec: ConvSpec,
    input_spatial: Sequence[int],
    *,
    view: View = "direct",
    in_channels: int = 1,
    out_channels: int | None = None,
    numeric: bool = False,
    seed: int = 0,
    input_values: Any | None = None,
    kernel_values: Any | None = None,
    max_frames: int = MAX_FRAMES,
) -> Animation:
    """Describe every frame of a layer's animation.

    Parameters
    ----------
    spec
        The layer (any kind, any number of spatial axes); policies are resolved here.
    input_spatial
        Spatial input sizes, e.g. ``(5, 5)``.
    view
        ``"direct"`` (convolution, pooling, and the guide's view of a transposed convolution) or
        ``"scatter"`` (transposed convolution: each input cell stamps the kernel).
    in_channels, out_channels
        Channel counts (checked against ``groups``); ``out_channels=None`` keeps ``in_channels``.
    numeric
        Attach :class:`Values`: input and kernel from ``seed`` (small integers, as in the
        guide's figures) unless ``input_values`` (``(C_in, *spatial)``, or ``spatial`` for one
        channel) or ``kernel_values`` (PyTorch layout, or the kernel size for one channel in and
        out) are given, which imply ``numeric``.
    max_frames
        Refuse longer animations before building them.

    Returns
    -------
    Animation

    Raises
    ------
    ConvArithError
        For an invalid layer or input (PyTorch's rules), a scatter view of anything but a
        transposed convolution, values of the wrong shape, or too many frames.

    Examples
    --------
    >>> from convarith import ConvSpec
    >>> anim = build_animation(ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1), (5, 5))
    >>> anim.lower.shape, anim.upper.shape, len(anim.frames)
    ((7, 7), (3, 3), 9)
    >>> [t.cell for t in anim.frames[0].lower][:4]
    [(0, 0), (0, 1), (0, 2), (1, 0)]
    >>> build_animation(ConvSpec.create("conv2d", kernel_size=3), (4, 4), numeric=True).values.output.shape
    (1, 2, 2)
    """
    out_spatial = spec.output_spatial(input_spatial)  # validates like PyTorch
    spatial = tuple(int(i) for i in input_spatial)
    spec = spec.resolve(spatial)
    c_out = check_channels(spec, in_channels, out_channels)
    if view not in ("direct", "scatter"):
        raise ConvArithError("view", "must be direct or scatter", repr(view))
    if view == "scatter" and not spec.transposed:
        raise ConvArithError("view", "the scatter view draws transposed convolutions", spec.op)
    n_frames = (in_channels * math.prod(spatial)) if view == "scatter" else c_out * math.prod(out_spatial)
    if n_frames > max_frames:
        raise ConvArithError(
            "input",
            f"an animation of {n_frames} frames is too long (at most {max_frames}); draw a smaller input",
            spatial,
        )
    dims = zip(spatial, out_spatial, spec.kernel_size, spec.stride, spec.dilation, spec.pads, strict=True)
    if view == "scatter":
        counts = overlap(spec, spatial)
        lower = Grid("input", in_channels, tuple(_plain_input_axis(i) for i in spatial))
        upper = Grid(
            "output",
            c_out,
            tuple(
                _scatter_axis(i, k, s, d, pad, o, ov.counts)
                for (i, o, k, s, d, pad), ov in zip(dims, counts, strict=True)
            ),
        )
        frames = _scatter_frames(spec, upper, spatial, in_channels, c_out)
    elif spec.transposed:
        axes = equivalent_direct_conv(spec, spatial)
        lower = Grid(
            "input",
            in_channels,
            tuple(
                _guide_axis(
                    eq.input, eq.zeros_between + 1, eq.kernel, eq.dilation, eq.pad, eq.output_padding, eq.output
                )
                for eq in axes
            ),
        )
        upper = Grid("output", c_out, tuple(_output_axis(o) for o in out_spatial))
        frames = _direct_frames(spec, lower, out_spatial, in_channels, c_out, guide=True)
    else:
        lower = Grid(
            "input",
            in_channels,
            tuple(
                _direct_axis(i, o, k, s, d, pad, spec.padding_mode, pooling=spec.pooling) for i, o, k, s, d, pad in dims
            ),
        )
        upper = Grid("output", c_out, tuple(_output_axis(o) for o in out_spatial))
        frames = _direct_frames(spec, lower, out_spatial, in_channels, c_out, guide=False)
    anim = Animation(spec, view, spatial, tuple(out_spatial), in_channels, c_out, lower, upper, tuple(frames))
    if numeric or input_values is not None or kernel_values is not None:
        from dataclasses import replace

        anim = replace(anim, values=_values(anim, seed, input_values, kernel_values))
    return anim
