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
    the guide's view: the equivalent stride-1 direct convolution (:meth:`BoundLayer.direct`) over
    the zero-inserted, padded (or cropped) input, the ``output_padding`` cells marked.
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

>>> from convarith import Layer
>>> layer = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
>>> anim = build_animation(layer, (3, 3))
>>> anim.lower.shape, anim.upper.shape, len(anim.frames)
((8, 8), (6, 6), 36)
>>> "".join(k[0] for k in anim.lower.axes[0].kinds)  # pad, input, zero, ..., extra
'pizizipe'
>>> anim.frames[0].lower[0].cell, anim.frames[0].lower[0].tap
((0, 0), (0, 0, 2, 2))
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, NamedTuple, overload

from ..errors import ConvArithError
from ..geometry.bound import AxisEquivalent, AxisGeometry, BoundLayer
from ..geometry.coverage import padded_source, tap_counts
from ..layer import Layer, as_int

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "KIND_PRIORITY",
    "MAX_CELLS",
    "MAX_FRAMES",
    "Animation",
    "AxisCells",
    "CellKind",
    "Frame",
    "FrameSequence",
    "Grid",
    "Touch",
    "Values",
    "View",
    "Window",
    "bind_layer",
    "build_animation",
    "guide_axis",
    "numeric_arrays",
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
"""Longest animation built."""
MAX_CELLS = 250_000
"""Most drawn cells (both grids, every channel) in one picture."""


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
    """Drawn position of window position 0 (direct) or of stamp position 0 (scatter): a tap at
    position ``u`` lies at ``u + offset``."""
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

    @functools.cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis) for axis in self.axes)

    def kind(self, cell: Sequence[int]) -> CellKind:
        """The kind of an N-d cell: the strongest kind of its axes."""
        best: CellKind = "input"
        rank = -1
        for axis, g in zip(self.axes, cell, strict=True):
            kind = axis.kinds[g]
            if KIND_PRIORITY[kind] > rank:
                best, rank = kind, KIND_PRIORITY[kind]
        return best

    def source(self, cell: Sequence[int]) -> tuple[int, ...] | None:
        """The layer's cell this drawn cell holds (a folded pad holds one), or ``None`` (zeros, zero padding, crops)."""
        src = tuple(axis.source[g] for axis, g in zip(self.axes, cell, strict=True))
        return None if min(src) < 0 else src

    def unread(self, cell: Sequence[int]) -> bool:
        """No frame touches this cell (an N-d cell is unread when it is unread on some axis)."""
        return any(axis.reads[g] == 0 for axis, g in zip(self.axes, cell, strict=True))

    def cells(self) -> Iterator[tuple[int, ...]]:
        """Every spatial position, row-major."""
        return itertools.product(*(range(len(axis)) for axis in self.axes))

    def kind_ranks(self) -> npt.NDArray[np.int64]:
        """:data:`KIND_PRIORITY` of every cell at once (the array form of :meth:`kind`), row-major."""
        import numpy as np

        ranks = np.zeros(self.shape, dtype=np.int64)
        for n, axis in enumerate(self.axes):
            along = np.array([KIND_PRIORITY[k] for k in axis.kinds], dtype=np.int64)
            ranks = np.maximum(ranks, along.reshape([-1 if m == n else 1 for m in range(len(self.axes))]))
        return ranks

    def source_index(self, sizes: Sequence[int]) -> npt.NDArray[np.int64]:
        """The row-major index (on a grid of ``sizes``) of the layer's cell each drawn cell holds, ``-1`` for none.

        The array form of :meth:`source`, for a whole grid at once.
        """
        import numpy as np

        index = np.zeros(self.shape, dtype=np.int64)
        missing = np.zeros(self.shape, dtype=bool)
        for n, (axis, size) in enumerate(zip(self.axes, sizes, strict=True)):
            shape = [-1 if m == n else 1 for m in range(len(self.axes))]
            along = np.array(axis.source, dtype=np.int64).reshape(shape)
            index = index * size + along
            missing |= along < 0
        return np.where(missing, -1, index)

    def kinds_present(self) -> set[str]:
        """The kinds that occur (the product of the axes' kinds, by priority)."""
        present: set[str] = set()
        for combo in itertools.product(*(set(axis.kinds) for axis in self.axes)):
            present.add(max(combo, key=KIND_PRIORITY.__getitem__))
        return present


class Touch(NamedTuple):
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
    partial_sums: tuple[tuple[float, ...], ...] = ()
    """Scatter view: after frame ``f``, the sum so far on each cell frame ``f`` stamps (in the
    order of ``frame.upper``) — the one computation of the running sums the pictures show."""


@dataclass(frozen=True)
class Animation:
    """Everything a writer needs: the bound layer, its two grids and its frames."""

    bound: BoundLayer
    """The layer bound to its input (channels, resolved padding)."""
    view: View
    lower: Grid
    upper: Grid
    frames: FrameSequence
    """One frame per step, computed on access (:class:`FrameSequence`)."""
    values: Values | None = None

    @property
    def layer(self) -> Layer:
        """The resolved layer (explicit pads, channels)."""
        return self.bound.resolved

    @property
    def ndim(self) -> int:
        return self.bound.ndim

    @property
    def input_spatial(self) -> tuple[int, ...]:
        return self.bound.input_spatial

    @property
    def output_spatial(self) -> tuple[int, ...]:
        return self.bound.output_spatial

    @property
    def in_channels(self) -> int:
        return self.bound.in_channels

    @property
    def out_channels(self) -> int:
        return self.bound.out_channels

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The weight's shape (PyTorch layout); a pool's window for pooling."""
        shape = self.bound.weight_shape
        return self.bound.layer.kernel_size if shape is None else shape

    @property
    def guide_view(self) -> bool:
        """A transposed convolution drawn as its equivalent direct convolution."""
        return self.bound.transposed and self.view == "direct"

    def caption(self) -> str:
        """One line of parameters: :meth:`BoundLayer.caption`."""
        return self.bound.caption()

    def _repr_svg_(self) -> str:
        """Jupyter: the animation itself, as an animated SVG (2 frames a second)."""
        from .scene import compose
        from .svg import animated_svg

        return animated_svg(compose(self), fps=2.0, title=self.caption())


# -- per-axis layouts -------------------------------------------------------------------------------


def _direct_axis(ax: AxisGeometry, mode: str) -> AxisCells:
    """Input axis of a direct convolution or pooling: padding and crops around the input,
    the ``ceil_mode`` overhang after."""
    i = ax.input
    pb, pa = ax.pad
    front, back = max(pb, 0), max(pa, 0)
    crop_b, crop_a = max(-pb, 0), max(-pa, 0)
    size = front + i + back + ax.overhang
    src = padded_source(i, ax.pad, mode)
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        u = g - crop_b  # window position
        if g >= front + i + back:
            kinds.append("overhang")
        elif g < crop_b or g >= front + i + back - crop_a:
            kinds.append("crop")
        elif front <= g < front + i:
            kinds.append("input")
        else:
            kinds.append("pad")
        source.append(src[u] if kinds[-1] in ("input", "pad") else -1)
    reads = tuple(tap_counts(size, ax.output, ax.kernel, ax.stride, ax.dilation, -crop_b))
    return AxisCells(tuple(kinds), tuple(source), crop_b, reads)


def guide_axis(eq: AxisEquivalent) -> AxisCells:
    """One axis of the input of the equivalent direct convolution of a transposed one (the guide's view).

    The stretched input (``s − 1`` zeros between neighbours), padded by ``p′`` before and after,
    the last ``min(a, p′_a)`` cells of the padding after marked ``extra`` (``output_padding``); a
    negative ``p′`` marks the cells it crops ``crop``. ``source`` gives the transposed
    convolution's input index of every ``input`` cell. This is the one implementation of that
    grid: the pictures draw it and the explanations print it.

    >>> from convarith import Layer
    >>> bound = Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1).bind((3,))
    >>> cells = guide_axis(bound.direct().axes[0])
    >>> cells.kinds
    ('pad', 'input', 'zero', 'input', 'zero', 'input', 'pad', 'extra')
    >>> cells.source
    (-1, 0, -1, 1, -1, 2, -1, -1)
    """
    s = eq.zeros_between + 1
    pb, pa = eq.pad
    front, back = max(pb, 0), max(pa, 0)
    crop_b, crop_a = max(-pb, 0), max(-pa, 0)
    size = front + eq.stretched + back
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        x = g - front  # position in the stretched input
        if g < crop_b or g >= size - crop_a:
            kinds.append("crop")
        elif x < 0:
            kinds.append("pad")
        elif x >= eq.stretched:
            kinds.append("extra" if g >= size - min(eq.output_padding, back) else "pad")
        elif x % s:
            kinds.append("zero")
        else:
            kinds.append("input")
        source.append(x // s if kinds[-1] == "input" else -1)
    reads = tuple(tap_counts(size, eq.output, eq.kernel, 1, eq.dilation, -crop_b))
    return AxisCells(tuple(kinds), tuple(source), crop_b, reads)


def _output_axis(o: int) -> AxisCells:
    kinds: list[CellKind] = ["output"] * o
    return AxisCells(tuple(kinds), tuple(range(o)), 0, (1,) * o)


def _plain_input_axis(i: int) -> AxisCells:
    kinds: list[CellKind] = ["input"] * i
    return AxisCells(tuple(kinds), tuple(range(i)), 0, (1,) * i)


def _scatter_axis(ax: AxisGeometry) -> AxisCells:
    """Output axis of a transposed convolution: the cells its stamps cover (``AxisGeometry.full``),
    the border its padding crops, and output cells no stamp reaches (``output_padding``, or a
    negative padding's extra cells)."""
    pb, _ = ax.pad
    lead = max(-pb, 0)  # output cells before the first stamp (negative padding)
    stamped = ax.full - ax.output_padding
    size = lead + max(ax.full, pb + ax.output)
    kinds: list[CellKind] = []
    source: list[int] = []
    for g in range(size):
        q = g - lead - pb  # output index
        if not 0 <= q < ax.output:
            kinds.append("crop")
        elif 0 <= g - lead < stamped:
            kinds.append("output")
        else:
            kinds.append("extra")
        source.append(q if 0 <= q < ax.output else -1)
    reads = tuple(tap_counts(size, ax.input, ax.kernel, ax.stride, ax.dilation, -lead))
    return AxisCells(tuple(kinds), tuple(source), lead, reads)


# -- frames -----------------------------------------------------------------------------------------


class Window(NamedTuple):
    """A frame in compact form: the one cell it reads from or writes to, and the window on the other grid.

    Direct view: ``channel``/``cell`` the output cell produced, ``channels`` the input channels the
    window covers, ``cells`` the window's drawn cells (tap order), the same on every channel.
    Scatter view: ``channel``/``cell`` the input cell stamping, ``channels`` the output channels
    stamped, ``cells`` the stamped cells.
    """

    channel: int
    cell: tuple[int, ...]
    channels: range
    cells: tuple[tuple[int, ...], ...]


class FrameSequence(Sequence[Frame]):
    """The frames of an animation, computed on access from per-axis data (nothing per frame is stored).

    ``frames[f]`` is a :class:`Frame` with every touched cell; :meth:`window` is the same frame
    in compact form, which is what the pictures use (its size does not grow with the channels).

    >>> from convarith import Layer
    >>> frames = build_animation(Layer("conv2d", 64, 64, kernel_size=3), (8, 8)).frames
    >>> len(frames), len(frames[0].lower), frames.window(37).channel, frames.window(37).cells[0]
    (2304, 576, 1, (0, 1))
    """

    def __init__(self, bound: BoundLayer, view: View, offsets: Sequence[int], *, guide: bool) -> None:
        layer = bound.layer
        self._bound = bound
        self._scatter = view == "scatter"
        self._pooling = bound.pooling
        self._guide = guide
        n = bound.ndim
        self._stride = layer.stride if (self._scatter or not guide) else (1,) * n
        self._spatial = bound.input_spatial if self._scatter else bound.output_spatial
        self._outer = bound.in_channels if self._scatter else bound.out_channels
        c_in, c_out, g = bound.in_channels, bound.out_channels, layer.groups
        self._cig, self._cog = c_in // g, c_out // g
        kernel = layer.kernel_size
        self._taps = tuple(itertools.product(*(range(k) for k in kernel)))
        self._offsets = tuple(
            tuple(t * d + o for t, d, o in zip(tap, layer.dilation, offsets, strict=True)) for tap in self._taps
        )
        self._flipped = tuple(tuple(k - 1 - t for k, t in zip(kernel, tap, strict=True)) for tap in self._taps)
        self._per_channel = math.prod(self._spatial)

    def __len__(self) -> int:
        return self._outer * self._per_channel

    def _index(self, index: int) -> int:
        size = len(self)
        if not -size <= index < size:
            raise IndexError(index)
        return index % size

    def window(self, index: int) -> Window:
        """Frame ``index`` in compact form (see :class:`Window`)."""
        index = self._index(index)
        channel, flat = divmod(index, self._per_channel)
        pos: list[int] = []
        for size in reversed(self._spatial):
            flat, r = divmod(flat, size)
            pos.append(r)
        cell = tuple(reversed(pos))
        start = tuple(p * s for p, s in zip(cell, self._stride, strict=True))
        cells = tuple(tuple(a + b for a, b in zip(start, off, strict=True)) for off in self._offsets)
        if self._pooling:
            channels = range(channel, channel + 1)
        elif self._scatter:
            group = channel // self._cig
            channels = range(group * self._cog, (group + 1) * self._cog)
        else:
            group = channel // self._cog
            channels = range(group * self._cig, (group + 1) * self._cig)
        return Window(channel, cell, channels, cells)

    @property
    def per_channel(self) -> int:
        """Frames per outer channel: frame ``c·per_channel + p`` is window position ``p`` of channel ``c``."""
        return self._per_channel

    def channel_windows(self) -> list[Window]:
        """The first frame of every outer channel, in compact form: its ``channels`` are those every frame
        of that channel covers (output channels for the direct view, input channels for the scatter view)."""
        return [self.window(c * self._per_channel) for c in range(self._outer)]

    def window_arrays(self, shape: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Every window at once, the array form of :meth:`window` and :meth:`taps`.

        ``cells[p, t]`` is the row-major index, on the drawn grid of ``shape``, of tap ``t`` of the
        window at position ``p`` (the same on every channel); ``kernel[t]`` the row-major index of the
        spatial weight tap used there (rotated by 180° in the guide's view of a transposed convolution).
        """
        import numpy as np

        n = len(self._spatial)
        positions = np.indices(self._spatial).reshape(n, -1).T
        offsets = np.array(self._offsets, dtype=np.int64).reshape(-1, n)
        cells = positions[:, None, :] * np.array(self._stride) + offsets[None, :, :]
        flat = np.ravel_multi_index(tuple(np.moveaxis(cells, -1, 0)), tuple(shape))
        used = self._flipped if (self._guide and not self._pooling) else self._taps
        kernel_size = self._bound.layer.kernel_size
        kernel = np.ravel_multi_index(tuple(np.array(used, dtype=np.int64).reshape(-1, n).T), kernel_size)
        return np.asarray(flat, dtype=np.int64), np.asarray(kernel, dtype=np.int64)

    def windows(self) -> Iterator[Window]:
        """Every frame in compact form, in order."""
        return (self.window(n) for n in range(len(self)))

    def taps(self, window: Window, channel: int) -> Sequence[tuple[int, ...]]:
        """The weight index of every cell of ``window`` on ``channel`` (one of ``window.channels``), in tap order.

        PyTorch layout (see :attr:`Touch.tap`); the spatial taps for pooling.
        """
        if self._pooling:
            return self._taps
        if self._scatter:
            j = channel - window.channels.start
            return [(window.channel, j, *t) for t in self._taps]
        if self._guide:
            # the equivalent conv uses the kernel rotated by 180°, in/out swapped
            return [(channel, window.channel % self._cog, *f) for f in self._flipped]
        return [(window.channel, channel - window.channels.start, *t) for t in self._taps]

    def _frame(self, index: int) -> Frame:
        w = self.window(index)
        touches: list[Touch] = []
        if self._scatter:
            for oc in w.channels:
                touches.extend(Touch(oc, c, t) for c, t in zip(w.cells, self.taps(w, oc), strict=True))
            return Frame(index, (Touch(w.channel, w.cell),), tuple(touches))
        for ic in w.channels:
            touches.extend(Touch(ic, c, t) for c, t in zip(w.cells, self.taps(w, ic), strict=True))
        return Frame(index, tuple(touches), (Touch(w.channel, w.cell),))

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        if isinstance(index, slice):
            return [self._frame(n) for n in range(*index.indices(len(self)))]
        return self._frame(self._index(index))

    def __iter__(self) -> Iterator[Frame]:
        return (self._frame(n) for n in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} frames>"


# -- values -----------------------------------------------------------------------------------------


def _as_array(name: str, value: object, shape: tuple[int, ...], short: tuple[int, ...]) -> FloatArray:
    import numpy as np

    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ConvArithError(name, "must be an array of real numbers", type(value).__name__) from None
    if array.shape == shape or array.shape == short:
        if not np.isfinite(array).all():
            raise ConvArithError(name, "must hold finite numbers (no nan or inf)", "non-finite values")
        return array.reshape(shape)
    raise ConvArithError(name, f"must have shape {shape}" + (f" or {short}" if short != shape else ""), array.shape)


def _lower_values(anim: Animation, x: FloatArray) -> FloatArray:
    """The input as drawn: the layer's cells where the grid holds them, zeros in padding and inserted
    cells (``-inf`` in max-pooling padding), ``nan`` on crops and overhang."""
    import numpy as np

    lower = anim.lower
    if anim.view == "scatter":
        return x.copy()
    source = lower.source_index(anim.bound.input_spatial).ravel()
    ranks = lower.kind_ranks().ravel()
    fill = -np.inf if anim.bound.kind == "max_pool" else 0.0
    values = np.where(ranks == KIND_PRIORITY["pad"], fill, 0.0)
    values = np.where(np.isin(ranks, [KIND_PRIORITY["crop"], KIND_PRIORITY["overhang"]]), np.nan, values)
    values = np.broadcast_to(values, (lower.channels, values.size)).copy()
    held = source >= 0
    values[:, held] = x.reshape(lower.channels, -1)[:, source[held]]
    return values.reshape(lower.channels, *lower.shape)


def numeric_arrays(
    bound: BoundLayer, seed: int, input_values: object | None = None, kernel_values: object | None = None
) -> tuple[FloatArray, FloatArray | None]:
    """The input ``(C_in, *spatial)`` and weight (PyTorch's layout; ``None`` for pooling) of numeric mode:
    the values given, else small integers drawn from ``seed`` (input 0–3, then weight 0–2, as in the guide).

    >>> x, w = numeric_arrays(Layer("conv1d", kernel_size=2).bind((4,)), seed=0)
    >>> x.shape, w.shape
    ((1, 4), (1, 1, 2))
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    in_shape = bound.sample_input_shape
    if input_values is None:
        x = rng.integers(0, 4, size=in_shape).astype(np.float64)
    else:
        x = _as_array("input_values", input_values, in_shape, bound.input_spatial)
    weight: FloatArray | None = None
    if bound.pooling:
        if kernel_values is not None:
            raise ConvArithError("kernel_values", "pooling has no weights", bound.op)
    else:
        shape = bound.weight_shape
        assert shape is not None
        short = bound.layer.kernel_size if shape[0] == shape[1] == 1 else shape
        if kernel_values is None:
            weight = rng.integers(0, 3, size=shape).astype(np.float64)
        else:
            weight = _as_array("kernel_values", kernel_values, shape, short)
    return x, weight


def _values(anim: Animation, seed: int, input_values: object | None, kernel_values: object | None) -> Values:
    x, weight = numeric_arrays(anim.bound, seed, input_values, kernel_values)
    lower_values = _lower_values(anim, x)
    frame_values, partials, out = _run(anim, x, weight, lower_values)
    return Values(x, weight, lower_values, out, tuple(frame_values), tuple(partials))


def _run(
    anim: Animation, x: FloatArray, weight: FloatArray | None, lower_values: FloatArray
) -> tuple[list[float], list[tuple[float, ...]], FloatArray]:
    """Every frame's value (and the scatter view's running sums), all windows of a channel at once."""
    import numpy as np

    bound, frames = anim.bound, anim.frames
    per = frames.per_channel
    grid = anim.upper if anim.view == "scatter" else anim.lower
    cells, _ = frames.window_arrays(grid.shape)  # (positions, taps) on the grid the windows cover
    taps = cells.shape[1]
    outer = frames.channel_windows()
    if anim.view == "scatter":  # one frame at a time: each frame's running sums depend on the frames before it
        assert weight is not None
        out = np.zeros((grid.channels, math.prod(grid.shape)))
        frame_values: list[float] = []
        partials: list[tuple[float, ...]] = []
        for f in range(len(frames)):
            c, p = divmod(f, per)
            w = outer[c]
            value = float(x.reshape(len(outer), per)[c, p])
            frame_values.append(value)
            rows = slice(w.channels.start, w.channels.stop)
            block = out[rows][:, cells[p]] + value * weight[c].reshape(len(w.channels), taps)
            out[rows, cells[p]] = block
            partials.append(tuple(block.ravel().tolist()))
        crop = grid.kind_ranks().ravel() == KIND_PRIORITY["crop"]
        out[:, crop] = np.nan
        return frame_values, partials, out.reshape(grid.channels, *grid.shape)
    flat_values = lower_values.reshape(anim.lower.channels, -1)
    kind = bound.layer.kind
    out = np.full((anim.upper.channels, per), np.nan)
    for c, w in enumerate(outer):
        window = flat_values[w.channels.start : w.channels.stop][:, cells]  # (channels, positions, taps)
        if kind == "max_pool":
            real = np.where(np.isnan(window[0]), -np.inf, window[0])
            out[c] = real.max(axis=1)
        elif kind == "avg_pool":
            total = np.nansum(window[0], axis=1)
            if bound.layer.divisor_override is not None:
                out[c] = total / bound.layer.divisor_override
            else:
                counted = [KIND_PRIORITY["input"]] + ([KIND_PRIORITY["pad"]] if bound.layer.count_include_pad else [])
                count = np.isin(anim.lower.kind_ranks().ravel(), counted)[cells].sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[c] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            assert weight is not None
            if anim.guide_view:
                local = w.channel % (bound.out_channels // bound.layer.groups)
                kernel = weight[w.channels.start : w.channels.stop, local].reshape(len(w.channels), taps)[:, ::-1]
            else:
                kernel = weight[w.channel].reshape(len(w.channels), taps)
            out[c] = np.einsum("cpt,ct->p", window, kernel)
    return out.ravel().tolist(), [], out.reshape(anim.upper.channels, *anim.upper.shape)


# -- the one entry point ----------------------------------------------------------------------------


def bind_layer(layer: Layer | BoundLayer, input_shape: Sequence[int] | None) -> BoundLayer:
    """A bound layer from a layer and an input shape, or a bound layer as it is (the pictures' front door).

    >>> bind_layer(Layer("conv2d", 2, 4, kernel_size=3), (5, 5)).sample_output_shape
    (4, 3, 3)
    """
    if isinstance(layer, BoundLayer):
        if input_shape is not None and tuple(input_shape) != layer.input_shape:
            raise ConvArithError(
                "input_shape", "a bound layer has its input already; leave input_shape out", input_shape
            )
        return layer
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer or a BoundLayer", type(layer).__name__)
    if input_shape is None:
        raise ConvArithError(
            "input_shape", "a layer needs the input shape (spatial, C + spatial or N, C, spatial)", None
        )
    return layer.bind(input_shape)


def build_animation(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None = None,
    *,
    view: View = "direct",
    numeric: bool = False,
    seed: int = 0,
    input_values: object | None = None,
    kernel_values: object | None = None,
    max_frames: int = MAX_FRAMES,
) -> Animation:
    """Describe every frame of a layer's animation.

    Parameters
    ----------
    layer
        The layer (any kind, any number of spatial axes) or a bound layer; policies are
        resolved for the input, channels come from the bound layer (the input shape's ``C``,
        else the layer's ``in_channels``; ``out_channels`` from the layer).
    input_shape
        ``(*spatial)``, ``(C, *spatial)`` or ``(N, C, *spatial)`` (one sample is drawn); leave it
        out for a bound layer.
    view
        ``"direct"`` (convolution, pooling, and the guide's view of a transposed convolution) or
        ``"scatter"`` (transposed convolution: each input cell stamps the kernel).
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
        For an input the layer cannot take, a scatter view of anything but a transposed
        convolution, values of the wrong shape or not finite, too many frames or cells.

    Examples
    --------
    >>> from convarith import Layer
    >>> anim = build_animation(Layer("conv2d", kernel_size=3, stride=2, padding=1), (5, 5))
    >>> anim.lower.shape, anim.upper.shape, len(anim.frames)
    ((7, 7), (3, 3), 9)
    >>> [t.cell for t in anim.frames[0].lower][:4]
    [(0, 0), (0, 1), (0, 2), (1, 0)]
    >>> build_animation(Layer("conv2d", kernel_size=3), (4, 4), numeric=True).values.output.shape
    (1, 2, 2)
    """
    bound = bind_layer(layer, input_shape)
    if view not in ("direct", "scatter"):
        raise ConvArithError("view", "must be direct or scatter", repr(view))
    if view == "scatter" and not bound.transposed:
        raise ConvArithError("view", "the scatter view draws transposed convolutions", bound.op)
    for name, flag in (("numeric", numeric),):
        if not isinstance(flag, bool):
            raise ConvArithError(name, "must be True or False", repr(flag))
    if as_int("seed", seed) < 0:
        raise ConvArithError("seed", "must not be negative", seed)
    c_in, c_out = bound.in_channels, bound.out_channels
    spatial, out_spatial = bound.input_spatial, bound.output_spatial
    n_frames = c_in * math.prod(spatial) if view == "scatter" else c_out * math.prod(out_spatial)
    if n_frames > max_frames:
        raise ConvArithError(
            "input_shape",
            f"an animation of {n_frames} frames is too long (at most {max_frames}); draw a smaller input or fewer "
            "channels",
            bound.input_shape,
        )
    if view == "scatter":
        drawn = [c_in * math.prod(spatial), c_out * math.prod(ax.full + sum(map(abs, ax.pad)) for ax in bound.axes)]
    elif bound.transposed:
        drawn = [c_in * math.prod(ax.stretched + sum(map(abs, ax.direct_pad)) for ax in bound.axes)]
    else:
        drawn = [c_in * math.prod(ax.padded + ax.overhang + 2 * max(-min(ax.pad), 0) for ax in bound.axes)]
    cells = sum(drawn) + c_out * math.prod(out_spatial)
    if cells > MAX_CELLS:
        raise ConvArithError(
            "input_shape",
            f"a picture of {cells:,} cells is too large (at most {MAX_CELLS:,}); draw a smaller input",
            bound.input_shape,
        )
    if view == "scatter":
        lower = Grid("input", c_in, tuple(_plain_input_axis(i) for i in spatial))
        upper = Grid("output", c_out, tuple(_scatter_axis(ax) for ax in bound.axes))
        frames = FrameSequence(bound, view, [a.offset for a in upper.axes], guide=False)
    elif bound.transposed:
        lower = Grid("input", c_in, tuple(guide_axis(eq) for eq in bound.direct().axes))
        upper = Grid("output", c_out, tuple(_output_axis(o) for o in out_spatial))
        frames = FrameSequence(bound, view, [a.offset for a in lower.axes], guide=True)
    else:
        mode = bound.layer.padding_mode
        lower = Grid("input", c_in, tuple(_direct_axis(ax, mode) for ax in bound.axes))
        upper = Grid("output", c_out, tuple(_output_axis(o) for o in out_spatial))
        frames = FrameSequence(bound, view, [a.offset for a in lower.axes], guide=False)
    anim = Animation(bound, view, lower, upper, frames)
    if numeric or input_values is not None or kernel_values is not None:
        anim = replace(anim, values=_values(anim, seed, input_values, kernel_values))
    return anim
