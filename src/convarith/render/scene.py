"""From frames to shapes: where every cell lands on the page, and what each frame changes.

A :class:`Scene` is a static background plus, per frame, two lists of shapes in page pixels:
``kept[f]``, shapes that appear at frame ``f`` and stay until the end (an output value once
computed, a scatter cell's running sum — later ones paint over earlier ones), and ``frames[f]``,
shapes shown in frame ``f`` only (the kernel's footprint, the rays, the highlight). Frame ``f``
is the background, then ``kept[0] … kept[f]``, then ``frames[f]``; writers accumulate the kept
shapes (a running canvas, or SVG groups visible from their frame on), so drawing an animation is
linear in the shapes, whatever its length.

Layout: a grid's last two axes are rows and columns of a *panel*; leading axes (depth slices of
a 3-d layer) are panels side by side, channels are rows of panels (2-d: panels side by side,
wrapped into a square block beyond 8 channels). The ``guide`` style puts the input plane below
and the output plane above it in perspective, as in the guide's animations, the rays from the
kernel's footprint clipped where the output plane hides them; the ``flat`` style puts them side
by side.

Examples
--------
>>> from convarith import Layer
>>> from convarith.render.frames import build_animation
>>> scene = compose(build_animation(Layer("conv2d", kernel_size=3), (4, 4), numeric=True))
>>> scene.width > 0 and scene.height > 0, len(scene.frames), [len(k) for k in scene.kept]
(True, 4, [1, 1, 1, 1])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar, overload

from .frames import Animation, Grid, Window
from .style import CELL, FOOTPRINT, INK, MUTED, OKABE_ITO, UNREAD, WHITE, CellLook, StyleName, mix

__all__ = [
    "Frames",
    "Line",
    "Polygon",
    "Scene",
    "Shape",
    "Text",
    "clip_outside",
    "compose",
    "fit_size",
    "format_value",
    "text_width",
]

Point = tuple[float, float]
Dash = Literal["dash", "dot"] | None


Extent = tuple[float, float, float, float]
"""``(left, top, right, bottom)`` in page pixels."""

_S = TypeVar("_S")
_V = TypeVar("_V")


class _once(Generic[_S, _V]):  # lower case: a decorator, as functools.cached_property
    """A property of a frozen shape worked out on first use and kept in the shape's ``__dict__``:
    :func:`functools.cached_property` without the lock that Python 3.11's takes each first time
    (twice the cost, for tens of thousands of shapes a long animation makes)."""

    def __init__(self, compute: Callable[[_S], _V]) -> None:
        self.compute, self.name = compute, compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, shape: None, owner: type) -> _once[_S, _V]: ...
    @overload
    def __get__(self, shape: _S, owner: type) -> _V: ...
    def __get__(self, shape: _S | None, owner: type) -> _V | _once[_S, _V]:
        if shape is None:
            return self
        value = shape.__dict__[self.name] = self.compute(shape)  # found there from now on, before this
        return value


def _reach(points: tuple[Point, ...], reach: float) -> Extent:
    xs, ys = zip(*points, strict=True)
    return min(xs) - reach, min(ys) - reach, max(xs) + reach, max(ys) + reach


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    fill: str | None
    outline: str | None = None
    width: float = 1.0
    dash: Dash = None

    @_once
    def extent(self) -> Extent:
        """A rectangle that holds every pixel it paints, its outline included (worked out once: a
        long animation draws the same cell in many frames)."""
        return _reach(self.points, (self.width if self.outline is not None else 0) + 2)


@dataclass(frozen=True)
class Line:
    points: tuple[Point, ...]
    colour: str
    width: float = 1.0
    dash: Dash = None

    @_once
    def extent(self) -> Extent:
        """A rectangle that holds every pixel it paints."""
        return _reach(self.points, self.width + 2)


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float
    colour: str = INK
    anchor: Literal["mm", "lm", "rm", "ms", "mt"] = "mm"
    bold: bool = False

    @_once
    def extent(self) -> Extent:
        """A rectangle that holds its glyphs (from DejaVu Sans' advance widths, with room to spare)."""
        w = text_width(self.text, self.size, self.bold) + 2
        h = self.size * 1.3 + 2
        horizontal, vertical = self.anchor
        x0 = self.x - w / 2 if horizontal == "m" else self.x - w if horizontal == "r" else self.x - 1
        y0 = self.y - h / 2 if vertical == "m" else self.y - h if vertical == "s" else self.y - 1
        return x0, y0, x0 + w, y0 + h + (self.size * 0.3 if vertical == "s" else 0)


Shape = Polygon | Line | Text


@dataclass
class Scene:
    """A picture: its background, and per frame what it keeps and what it shows only then."""

    width: int
    height: int
    background: list[Shape]
    frames: Sequence[list[Shape]] = field(default_factory=list)
    """Per frame, the shapes shown in that frame only (drawn last); :func:`compose` makes them when
    first asked for (:class:`Frames`)."""
    kept: list[list[Shape]] = field(default_factory=list)
    """Per frame, the shapes shown from that frame to the end (empty, or one list per frame)."""
    supersample: int = 2
    """Raster writers draw at this scale and reduce, which smooths slanted edges."""
    frame_colours: frozenset[str] | None = None
    """Every colour the shapes of :attr:`frames` can paint, when known without making them all."""

    def kept_at(self, index: int) -> list[Shape]:
        """The shapes frame ``index`` adds for good (``[]`` when the scene keeps nothing)."""
        return self.kept[index] if self.kept else []


class Frames(Sequence[list[Shape]]):
    """Each frame's own shapes, made when first asked for and kept: a writer asks for them in order,
    while it draws and encodes the frames before, instead of waiting for all of them.

    >>> frames = Frames(3, lambda n: [Text(0, 0, str(n), 10)])
    >>> len(frames), frames[2][0].text, [f[0].text for f in frames] == ["0", "1", "2"]
    (3, '2', True)
    """

    def __init__(self, count: int, make: Callable[[int], list[Shape]]) -> None:
        self._made: list[list[Shape] | None] = [None] * count
        self._make = make

    def __len__(self) -> int:
        return len(self._made)

    @overload
    def __getitem__(self, index: int) -> list[Shape]: ...
    @overload
    def __getitem__(self, index: slice) -> list[list[Shape]]: ...
    def __getitem__(self, index: int | slice) -> list[Shape] | list[list[Shape]]:
        if isinstance(index, slice):
            return [self[n] for n in range(*index.indices(len(self)))]
        made = self._made[index]
        if made is None:
            made = self._made[index] = self._make(index % len(self))
        return made

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # a sequence of lists, as a list is

    def __repr__(self) -> str:
        return f"Frames({len(self)} frames, {sum(m is not None for m in self._made)} made)"


# -- numbers that fit ---------------------------------------------------------------------------------

# DejaVu Sans advance widths in em (bold in the second column), rounded up; others: the widest.
_ADVANCE = {
    **dict.fromkeys("0123456789", (0.637, 0.696)),
    ".": (0.318, 0.380),
    ",": (0.318, 0.380),
    "−": (0.838, 0.838),
    "-": (0.361, 0.415),
    "+": (0.838, 0.838),
    "e": (0.616, 0.679),
    "∞": (0.833, 0.833),
    " ": (0.318, 0.349),
}
_WIDEST = (1.0, 1.1)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of a line of DejaVu Sans at ``size`` pixels, from its advance widths (never under).

    >>> round(text_width("−12.5", 10), 2)
    30.67
    """
    return size * _em_width(text, bold)


@functools.lru_cache(maxsize=8192)
def _em_width(text: str, bold: bool) -> float:
    # a long animation sets the same few numbers thousands of times
    col = 1 if bold else 0
    return sum(_ADVANCE.get(ch, _WIDEST)[col] for ch in text)


def fit_size(text: str, size: float, width: float, bold: bool = False) -> float:
    """``size``, or smaller so that ``text`` is at most ``width`` wide.

    >>> fit_size("3", 12, 40), round(fit_size("−1.2e4", 12, 20), 2)
    (12, 5.43)
    """
    wide = text_width(text, size, bold)
    return size if wide <= width else size * width / wide


def format_value(value: float, *, short: bool = False) -> str:
    """A cell's number: integers plainly, others with up to two decimals, large or tiny ones as
    ``1.2e4``; blank for ``nan``. ``short`` keeps one significant digit in exponent form.

    >>> [format_value(v) for v in (3.0, -2.0, 1.6667, 0.5, float("nan"), float("-inf"))]
    ['3', '−2', '1.67', '0.5', '', '−∞']
    >>> [format_value(v) for v in (12345.0, -0.0004, 123.456)], format_value(-98765.0, short=True)
    (['1.2e4', '−4e−4', '123.46'], '−1e5')
    """
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    magnitude = abs(value)
    if value == 0:
        text = "0"
    elif short and (magnitude >= 10 or magnitude < 0.1):
        text = _exponent(value, 0)
    elif magnitude >= 1e4 or magnitude < 5e-3:
        text = _exponent(value, 0 if short else 1)
    elif value == int(value):
        text = str(int(value))
    else:
        text = f"{value:.{1 if short else 2}f}".rstrip("0").rstrip(".")
    return text.replace("-", "−")


def _exponent(value: float, digits: int) -> str:
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


# -- layout -----------------------------------------------------------------------------------------

SUPERSAMPLE_LIMIT = 600_000
"""Pages larger than this (pixels) are drawn at 1×: their cells are small, their frames many."""

SUPERSAMPLE_BUDGET = 100_000_000
"""Nor animations whose frames hold more pixels than this in all (frames × page)."""

WRAP_CHANNELS = 8
"""2-d grids with more channels put their panels in a square block instead of one row."""

DECK_CHANNELS = 16
"""Grids with more channels are drawn as a deck: the front channel whole, the others as cards
stacked behind it, the window one box through the deck (the page and each frame's change stay
the size of one channel)."""

DECK_CARDS = 6
"""Cards drawn behind the front one of a deck."""


@dataclass(frozen=True)
class _Panels:
    """How a grid's cells sit in its plane, in cell units.

    A panel is one channel's 2-d slice (or one depth slice of it). Panels are numbered
    ``channel · slices + slice`` and laid out ``per_row`` to a row.
    """

    rows: int
    cols: int
    slices: int
    channels: int
    per_row: int
    gap: float = 1.0
    deck: int = 1
    """Channels stacked behind one another in the one channel slot drawn (1: no deck)."""

    @property
    def count(self) -> int:
        return self.channels * self.slices

    @property
    def panel_cols(self) -> int:
        return min(self.per_row, self.count)

    @property
    def panel_rows(self) -> int:
        return -(-self.count // self.per_row)

    @property
    def width(self) -> float:
        return self.panel_cols * self.cols + (self.panel_cols - 1) * self.gap

    @property
    def depth(self) -> float:
        return self.panel_rows * self.rows + (self.panel_rows - 1) * self.gap

    def origin(self, channel: int, panel: int) -> Point:
        linear = channel * self.slices + panel
        col, row = linear % self.per_row, linear // self.per_row
        return col * (self.cols + self.gap), row * (self.rows + self.gap)


def _panels(grid: Grid) -> _Panels:
    shape = grid.shape
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape[-2:]
    slices = math.prod(shape[:-2]) if len(shape) > 2 else 1
    if grid.channels > DECK_CHANNELS:
        return _Panels(rows, cols, slices, 1, slices, deck=grid.channels)
    if len(shape) == 2:
        per_row = grid.channels if grid.channels <= WRAP_CHANNELS else math.ceil(math.sqrt(grid.channels))
    else:
        per_row = slices
    wrapped = per_row < grid.channels * slices
    return _Panels(rows, cols, slices, grid.channels, per_row, gap=2.5 if wrapped else 1.0)


def _place(grid: Grid, cell: Sequence[int]) -> tuple[int, int, int]:
    """(panel, row, column) of an N-d cell."""
    if len(cell) == 1:
        return 0, 0, cell[0]
    panel = 0
    for size, index in zip(grid.shape[:-2], cell[:-2], strict=True):
        panel = panel * size + index
    return panel, cell[-2], cell[-1]


Projector = Callable[[int, float, float], Point]
"""(plane 0 = lower / 1 = upper, u, v) → page pixels."""


def _perspective(lower: _Panels, upper: _Panels, tilt_deg: float = 36.0) -> Projector:
    """A camera above and in front: the lower plane at height 0, the upper plane higher up."""
    tilt = math.radians(tilt_deg)
    sin, cos = math.sin(tilt), math.cos(tilt)
    # lift the upper plane until the two do not overlap on the page, with a gap of ~1.6 cells
    lift = ((lower.depth + upper.depth) / 2 * sin + 0.9) / cos
    centre = lift / 2
    extent = max(lower.width, lower.depth, upper.width, upper.depth, 4.0)
    distance = 2.2 * extent + lift
    cam_y, cam_z = centre + distance * sin, -distance * cos
    planes = (lower, upper)

    def project(plane: int, u: float, v: float) -> Point:
        panels = planes[plane]
        x = u - panels.width / 2
        z = panels.depth / 2 - v  # row 0 is the far row
        y = lift if plane else 0.0
        dy, dz = y - cam_y, z - cam_z
        up = dy * cos + dz * sin
        forward = -dy * sin + dz * cos
        return distance * x / forward, -distance * up / forward

    return project


def _flat(lower: _Panels, upper: _Panels, gap: float = 2.5) -> Projector:
    height = max(lower.depth, upper.depth)

    def project(plane: int, u: float, v: float) -> Point:
        panels = (lower, upper)[plane]
        x0 = 0.0 if plane == 0 else lower.width + gap
        return x0 + u, (height - panels.depth) / 2 + v

    return project


# -- clipping ---------------------------------------------------------------------------------------


Edge = tuple[float, float, float, float]
"""A convex polygon's edge: its start point and its direction, oriented so that inside is on its left."""


def _edges(polygon: Sequence[Point]) -> tuple[Edge, ...]:
    n = len(polygon)
    # orientation of the polygon, so that "inside" is on the same side of every edge
    area = sum(polygon[k][0] * polygon[(k + 1) % n][1] - polygon[(k + 1) % n][0] * polygon[k][1] for k in range(n))
    sign = 1.0 if area > 0 else -1.0
    return tuple(
        (p[0], p[1], sign * (q[0] - p[0]), sign * (q[1] - p[1]))
        for p, q in zip(polygon, (*polygon[1:], polygon[0]), strict=True)
    )


def _inside_interval(a: Point, b: Point, edges: Sequence[Edge]) -> tuple[float, float] | None:
    """The parameters ``t`` of segment ``a → b`` inside a convex polygon (Cyrus–Beck), or ``None``."""
    t0, t1 = 0.0, 1.0
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    for px, py, ex, ey in edges:
        # inside when cross(edge, point − p) ≥ 0
        num = ex * (ay - py) - ey * (ax - px)
        den = ex * dy - ey * dx
        if den == 0:
            if num < 0:
                return None
            continue
        t = -num / den
        if den > 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 >= t1:
            return None
    return t0, t1


def clip_outside(a: Point, b: Point, polygons: Sequence[Sequence[Point]]) -> list[tuple[Point, Point]]:
    """The parts of segment ``a → b`` outside every convex polygon (what they do not hide).

    >>> square = ((1.0, -1.0), (2.0, -1.0), (2.0, 1.0), (1.0, 1.0))
    >>> clip_outside((0.0, 0.0), (3.0, 0.0), [square])
    [((0.0, 0.0), (1.0, 0.0)), ((2.0, 0.0), (3.0, 0.0))]
    """
    return _outside(a, b, [_edges(polygon) for polygon in polygons])


def _outside(a: Point, b: Point, polygons: Sequence[Sequence[Edge]]) -> list[tuple[Point, Point]]:
    """:func:`clip_outside` with each polygon's :func:`_edges` known (the output panels hide every ray)."""
    hidden = sorted(iv for iv in (_inside_interval(a, b, edges) for edges in polygons) if iv is not None)
    visible: list[tuple[float, float]] = []
    start = 0.0
    for t0, t1 in hidden:
        if t0 > start:
            visible.append((start, t0))
        start = max(start, t1)
    if start < 1.0:
        visible.append((start, 1.0))

    def at(t: float) -> Point:
        return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t

    return [(at(t0), at(t1)) for t0, t1 in visible if t1 - t0 > 1e-9]


# -- composition --------------------------------------------------------------------------------------


@dataclass
class _Cells:
    """Projected cell quads of both grids, and each plane's panel outlines, in page pixels."""

    quads: dict[tuple[int, int, tuple[int, ...]], tuple[Point, ...]]
    panels: tuple[list[tuple[Point, ...]], list[tuple[Point, ...]]]
    decks: tuple[int, int] = (1, 1)
    """Channels stacked in each plane's deck (1: every channel has its own panels)."""
    card: Point = (0.0, 0.0)
    """Page offset from one card of a deck to the next one behind it."""

    def quad(self, plane: int, channel: int, cell: tuple[int, ...]) -> tuple[Point, ...]:
        # a deck draws every channel on its front card
        return self.quads[plane, 0 if self.decks[plane] > 1 else channel, cell]


def _centre(quad: Sequence[Point]) -> Point:
    return sum(p[0] for p in quad) / 4, sum(p[1] for p in quad) / 4


def _size(quad: Sequence[Point]) -> float:
    """A cell's on-page size (its mean edge), for text and line widths."""
    return (math.dist(quad[0], quad[1]) + math.dist(quad[3], quad[2]) + 2 * math.dist(quad[0], quad[3])) / 4


def _across(quad: Sequence[Point]) -> float:
    """The horizontal width inside a cell at every height (text is set horizontally)."""
    return max(min(quad[1][0], quad[2][0]) - max(quad[0][0], quad[3][0]), 0.0)


LONG_ANIMATION = 500
"""Animations with more frames get cells of at most :data:`LONG_CELL` pixels: every frame's change
(and a GIF's encoding time) grows with the cell's area."""
LONG_CELL = 32.0
NUMERIC_CELL = 24.0
"""The smallest cell of a numeric picture (its numbers shrink to fit, and stay legible at this size)."""


def _cell_size(anim: Animation) -> float:
    """Pixels per cell: big grids get smaller cells, but never illegible ones."""
    lower, upper = _panels(anim.lower), _panels(anim.upper)
    across = max(lower.width, upper.width, lower.depth * 0.8, upper.depth * 0.8)
    size = 400 / across
    low = NUMERIC_CELL if anim.values is not None else 9.0
    high = LONG_CELL if len(anim.frames) > LONG_ANIMATION else 52.0
    return min(max(size, low), high)


def compose(anim: Animation, style: StyleName = "guide", *, caption: bool = True, legend: bool = True) -> Scene:
    """Lay out an animation: its background, and what every frame keeps and shows, in page pixels.

    >>> from convarith import Layer
    >>> from convarith.render.frames import build_animation
    >>> scene = compose(build_animation(Layer("conv_transpose1d", kernel_size=3, stride=2), (3,), view="scatter"))
    >>> len(scene.frames), [len(k) for k in scene.kept]  # each frame keeps the 3 cells it stamps (cell, count)
    (3, [6, 6, 6])
    """
    from ..errors import ConvArithError

    if style not in ("guide", "flat"):
        raise ConvArithError("style", "must be guide or flat", repr(style))
    lower, upper = _panels(anim.lower), _panels(anim.upper)
    cell = _cell_size(anim)
    if style == "guide":
        raw = _perspective(lower, upper)
    else:
        # a deck's cards and longer label need more room between the planes than the 2.5 cells
        room = 24 + max(text_width(line, 15 if n == 0 else 11) for n, line in enumerate(_label_lines(anim)))
        decked = max(lower.deck, upper.deck) > 1
        gap = max(2.5, (room + max(3.0, round(cell * 0.14)) * DECK_CARDS) / cell) if decked else 2.5
        raw = _flat(lower, upper, gap)

    # project every lattice point once, then fit the drawing on the page
    corners: dict[tuple[int, float, float], Point] = {}
    for plane, panels in enumerate((lower, upper)):
        for channel in range(panels.channels):
            for panel in range(panels.slices):
                u0, v0 = panels.origin(channel, panel)
                for r in range(panels.rows + 1):
                    for c in range(panels.cols + 1):
                        corners[plane, u0 + c, v0 + r] = raw(plane, u0 + c, v0 + r)
    xs = [p[0] for p in corners.values()]
    ys = [p[1] for p in corners.values()]
    label_room = 24.0 + max(text_width(line, 15 if n == 0 else 11) for n, line in enumerate(_label_lines(anim)))
    decks = (lower.deck, upper.deck)
    card = max(3.0, round(cell * 0.14))
    deck_room = card * DECK_CARDS if max(decks) > 1 else 0.0
    top = (48.0 if caption else 16.0) + deck_room
    bottom_room = 16.0 + (16.0 if max(decks) > 1 else 0.0)  # a deck's label reaches lower
    scale = cell
    x_shift = label_room - min(xs) * scale
    y_shift = top - min(ys) * scale
    width = (max(xs) - min(xs)) * scale + label_room + 24 + deck_room
    title = anim.caption()
    if caption and text_width(title, 14) + 32 > width:
        # centre the drawing under a caption wider than it
        extra = text_width(title, 14) + 32 - width
        x_shift += extra / 2
        width += extra

    def page(p: Point) -> Point:
        return p[0] * scale + x_shift, p[1] * scale + y_shift

    quads: dict[tuple[int, int, tuple[int, ...]], tuple[Point, ...]] = {}
    outlines: tuple[list[tuple[Point, ...]], list[tuple[Point, ...]]] = ([], [])
    for plane, (grid, panels) in enumerate(((anim.lower, lower), (anim.upper, upper))):
        for channel in range(panels.channels):  # a deck: its front card
            for panel in range(panels.slices):
                u0, v0 = panels.origin(channel, panel)
                u1, v1 = u0 + panels.cols, v0 + panels.rows
                outlines[plane].append(
                    tuple(page(corners[plane, u, v]) for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)))
                )
            for spot in grid.cells():
                panel, r, c = _place(grid, spot)
                u0, v0 = panels.origin(channel, panel)
                u, v = u0 + c, v0 + r
                quads[plane, channel, spot] = tuple(
                    page(corners[plane, uu, vv]) for uu, vv in ((u, v), (u + 1, v), (u + 1, v + 1), (u, v + 1))
                )
    cells = _Cells(quads, outlines, decks, (card, -card))
    drawing_bottom = (max(ys) - min(ys)) * scale + top
    background: list[Shape] = []
    legend_shapes, legend_height = _legend(anim, drawing_bottom + 18, width) if legend else ([], 0.0)
    height = drawing_bottom + bottom_room + legend_height

    # static grids: every cell in its kind's look (a deck: its cards, then the front one)
    painter = _Painter(anim, cells, cell, guide=style == "guide" and anim.view == "direct")
    for plane, grid in enumerate((anim.lower, anim.upper)):
        if decks[plane] > 1:
            background.extend(painter.deck(plane))
            background.extend(painter.card(plane, painter.front(plane, 0)))
            continue
        for channel in range(grid.channels):
            background.extend(painter.card(plane, channel))
    background.extend(_labels(anim, cells))
    if caption:
        background.append(Text(width / 2, 24, title, 14, INK, "mm", bold=False))
    background.extend(legend_shapes)
    page_px = math.ceil(width) * math.ceil(height)
    # long animations are drawn at 1× too: supersampling costs every frame four times the pixels
    small = page_px <= SUPERSAMPLE_LIMIT and len(anim.frames) * page_px <= SUPERSAMPLE_BUDGET
    supersample = 2 if style == "guide" and small else 1
    scene = Scene(math.ceil(width), math.ceil(height), background, supersample=supersample)
    if anim.view == "scatter":  # a frame's shapes follow the sums of the frames before
        shown_lists: list[list[Shape]] = []
        for window in anim.frames.windows():
            kept, shown = painter.scatter_frame(window)
            scene.kept.append(kept)
            shown_lists.append(shown)
        scene.frames = shown_lists
        return scene
    # the direct view: what frames keep, in order (a deck's front card follows the frames); what each
    # shows depends on its window only, and is made when a writer asks for it
    scene.kept = [painter.direct_kept(window) for window in anim.frames.windows()]
    scene.frames = Frames(len(anim.frames), lambda n: painter.direct_shown(anim.frames.window(n)))
    scene.frame_colours = painter.shown_colours()
    return scene


def _label_lines(anim: Animation) -> list[str]:
    lines = ["output", "input"]
    for plane in (0, 1):
        lines.append(_label_detail(anim, plane))
        channels = (anim.lower, anim.upper)[plane].channels
        if channels > DECK_CHANNELS:
            lines += [f"{channels} channels stacked", f"ch {channels} in front"]
    return lines


def _label_detail(anim: Animation, plane: int) -> str:
    grid = anim.lower if plane == 0 else anim.upper
    spatial = anim.input_spatial if plane == 0 else anim.output_spatial
    detail = "×".join(map(str, spatial))
    if plane == 0 and anim.guide_view:
        return f"{detail} → " + "×".join(map(str, grid.shape))
    if plane == 0 and grid.shape != spatial:
        return f"{detail}, padded " + "×".join(map(str, grid.shape))
    if plane == 1 and grid.shape != spatial:
        return f"{detail} of " + "×".join(map(str, grid.shape)) + " stamped"
    return detail


def _labels(anim: Animation, cells: _Cells) -> list[Shape]:
    shapes: list[Shape] = []
    for plane, grid in enumerate((anim.lower, anim.upper)):
        # left of the plane, at its middle height
        points = [p for outline in cells.panels[plane] for p in outline]
        x = min(p[0] for p in points) - 12
        y = (min(p[1] for p in points) + max(p[1] for p in points)) / 2
        up = 16 if cells.decks[plane] > 1 else 0  # room for the deck's two lines below
        shapes.append(Text(x, y - 8 - up, grid.label, 15, INK, "rm", bold=True))
        shapes.append(Text(x, y + 10 - up, _label_detail(anim, plane), 11, MUTED, "rm"))
        # panel titles for channels and depth slices (a deck is labelled by its cards)
        if cells.decks[plane] > 1:
            continue
        if grid.channels > 1 or len(grid.shape) > 2:
            slices = math.prod(grid.shape[:-2]) if len(grid.shape) > 2 else 1
            for channel in range(grid.channels):
                for panel in range(slices):
                    q = cells.panels[plane][channel * slices + panel]
                    title = []
                    if grid.channels > 1:
                        title.append(f"ch {channel}")
                    if len(grid.shape) > 2:
                        title.append(f"slice {panel}")
                    text = " · ".join(title)
                    room = max(abs(q[1][0] - q[0][0]), 1.0)
                    shapes.append(Text(q[0][0], q[0][1] - 7, text, fit_size(text, 10, room), MUTED, "lm"))
    return shapes


_LEGEND_NAMES = {
    "input": "input",
    "pad": "padding",
    "zero": "inserted zero",
    "extra": "output padding a",
    "overhang": "ceil_mode overhang",
    "crop": "cropped",
    "output": "output",
}


def _legend(anim: Animation, y: float, width: float) -> tuple[list[Shape], float]:
    kinds = anim.lower.kinds_present() | anim.upper.kinds_present()
    entries: list[tuple[CellLook, str, bool]] = []
    for kind in ("input", "pad", "zero", "extra", "crop", "overhang", "output"):
        if kind in kinds:
            entries.append((CELL[kind], _LEGEND_NAMES[kind], kind == "crop"))
    if anim.view == "scatter":
        kernel_name = "input cell stamping"
    elif anim.guide_view:
        kernel_name = "kernel (rotated 180°)"
    else:
        kernel_name = "window" if anim.bound.pooling else "kernel"
    entries.insert(1, (FOOTPRINT["input"], kernel_name, False))
    if anim.view == "scatter":
        entries.append((CellLook("#FFFFFF", OKABE_ITO["orange"]), "kernel stamped", False))
    if anim.values is not None and anim.bound.kind == "max_pool":
        entries.append((CellLook("#FFFFFF", OKABE_ITO["orange"]), "maximum", False))
    has_unread = anim.view == "direct" and any(0 in axis.reads for axis in anim.lower.axes)
    shapes: list[Shape] = []
    x, row_y = 16.0, y
    box = 12.0
    for look, name, crossed in entries:
        w = box + 6 + text_width(name, 11) + 16
        if x + w > width - 8:
            x, row_y = 16.0, row_y + 20
        quad = ((x, row_y - box / 2), (x + box, row_y - box / 2), (x + box, row_y + box / 2), (x, row_y + box / 2))
        shapes.append(Polygon(quad, look.fill, look.outline, 1.2, look.dash))
        if crossed:
            shapes.append(Line((quad[0], quad[2]), look.outline, 1))
        shapes.append(Text(x + box + 6, row_y, name, 11, MUTED, "lm"))
        x += w
    if has_unread:
        name = "never read"
        if x + box + 6 + text_width(name, 11) > width - 8:
            x, row_y = 16.0, row_y + 20
        quad = ((x, row_y - box / 2), (x + box, row_y - box / 2), (x + box, row_y + box / 2), (x, row_y + box / 2))
        shapes.append(Polygon(quad, WHITE, "#7C8C99", 1.2, "dash"))
        shapes.append(Line((quad[3], quad[1]), UNREAD, 1.5))
        shapes.append(Text(x + box + 6, row_y, name, 11, MUTED, "lm"))
    return shapes, row_y - y + 20


Kept = list[Shape]
Shown = list[Shape]


class _Painter:
    """Shapes for cells, values and the per-frame highlights."""

    def __init__(self, anim: Animation, cells: _Cells, cell: float, *, guide: bool) -> None:
        self.anim = anim
        self.cells = cells
        self.cell_px = cell
        self.line = max(1.0, cell / 34)
        self.guide = guide
        self.accumulated: dict[tuple[int, tuple[int, ...]], int] = {}
        self.peak = _peak(anim) if anim.view == "scatter" else 1
        self.kinds: dict[tuple[int, tuple[int, ...]], str] = {}
        self.places: dict[tuple[int, ...], tuple[int, int, int]] = {}
        # what every frame reading a cell draws alike: made once per cell
        self.highlights: dict[tuple[int, int, tuple[int, ...], CellLook], Polygon] = {}
        self.read: dict[tuple[int, tuple[int, ...]], tuple[list[Shape], Point, float, float, str]] = {}
        self.weights: dict[tuple[int, ...], str] = {}
        self.ray_corners: list[tuple[int, int]] | None = None  # (tap, corner of its cell) of each ray
        self.ray_colour = mix(OKABE_ITO["blue"], WHITE, 0.35)
        self.hiding = [_edges(panel) for panel in cells.panels[1]]  # the output plane, in front of the rays
        self.index = 0
        self.shown_front = [self.front(0, 0), self.front(1, 0)]

    def cell(self, plane: int, channel: int, spot: tuple[int, ...], look: CellLook, kind: str) -> list[Shape]:
        quad = self.cells.quad(plane, channel, spot)
        shapes: list[Shape] = [Polygon(quad, look.fill, look.outline, self.line, look.dash)]
        if kind == "crop":
            shapes.append(Line((quad[0], quad[2]), look.outline, self.line))
            shapes.append(Line((quad[1], quad[3]), look.outline, self.line))
        return shapes

    def unread_mark(self, plane: int, channel: int, spot: tuple[int, ...]) -> list[Shape]:
        quad = self.cells.quad(plane, channel, spot)
        inset = [
            (p[0] * 0.82 + c[0] * 0.18, p[1] * 0.82 + c[1] * 0.18)
            for p, c in zip(quad, [_centre(quad)] * 4, strict=True)
        ]
        return [Line((inset[3], inset[1]), UNREAD, self.line * 1.6)]

    def number(
        self, quad: Sequence[Point], value: float, colour: str, *, bold: bool = False, share: float = 0.86
    ) -> list[Shape]:
        """A value centred in a cell, its font shrunk (or the number abbreviated) to fit."""
        text = format_value(value)
        if not text:
            return []
        cx, cy = _centre(quad)
        size = _size(quad) * (0.36 if len(text) <= 2 else 0.3)
        room = _across(quad) * share
        fitted = fit_size(text, size, room, bold)
        if fitted < size * 0.6:
            short = format_value(value, short=True)
            text, fitted = short, fit_size(short, size, room, bold)
        return [Text(cx, cy, text, fitted, colour, "mm", bold)]

    def value(self, plane: int, channel: int, spot: tuple[int, ...], colour: str, *, bold: bool = False) -> list[Shape]:
        values = self.anim.values
        assert values is not None
        array = values.lower if plane == 0 else values.output
        return self.number(self.cells.quad(plane, channel, spot), float(array[(channel, *spot)]), colour, bold=bold)

    def highlight(self, plane: int, touch_channel: int, spot: tuple[int, ...], look: CellLook) -> Polygon:
        # a lower cell is highlighted once per tap that reads it: its shape is made once
        key = (plane, touch_channel, spot, look)
        found = self.highlights.get(key)
        if found is None:
            quad = self.cells.quad(plane, touch_channel, spot)
            found = self.highlights[key] = Polygon(quad, look.fill, look.outline, self.line * 1.5, look.dash)
        return found

    # -- decks -----------------------------------------------------------------------------------

    def card(self, plane: int, channel: int) -> list[Shape]:
        """One channel's cells in their kinds' looks (the lower grid's values and never-read marks too)."""
        anim = self.anim
        grid = anim.lower if plane == 0 else anim.upper
        folded = anim.bound.layer.padding_mode != "zeros"  # padding that shows input values
        shapes: list[Shape] = []
        for spot in grid.cells():
            kind = self._kind(plane, spot)
            look = CELL[kind]
            shapes.extend(self.cell(plane, channel, spot, look, kind))
            if plane == 0 and anim.view == "direct" and kind in ("input", "pad") and grid.unread(spot):
                shapes.extend(self.unread_mark(plane, channel, spot))
            if plane == 0 and anim.values is not None and (kind == "input" or folded):
                shapes.extend(self.value(plane, channel, spot, look.text))
        if self.cells.decks[plane] > 1:
            shapes.extend(self.front_label(plane, channel))
        return shapes

    def deck(self, plane: int) -> list[Shape]:
        """The cards behind a deck's front one, farthest first, and the deck's label."""
        base = CELL["input" if plane == 0 else "output"]
        dx, dy = self.cells.card
        shapes: list[Shape] = []
        behind = min(self.cells.decks[plane] - 1, DECK_CARDS)
        for outline in self.cells.panels[plane]:
            for k in range(behind, 0, -1):
                quad = tuple((x + k * dx, y + k * dy) for x, y in outline)
                shapes.append(Polygon(quad, mix(base.fill, WHITE, 0.35 * k / behind), base.outline, self.line))
        x, y = self._label_anchor(plane)
        shapes.append(Text(x, y + 10, f"{self.cells.decks[plane]} channels stacked", 11, MUTED, "rm"))
        return shapes

    def front_label(self, plane: int, channel: int) -> list[Shape]:
        """ "ch k in front" left of a deck, over a white box (so that a later one replaces it)."""
        x, y = self._label_anchor(plane)
        text = f"ch {channel} in front"
        w = text_width(f"ch {self.cells.decks[plane]} in front", 11) + 4
        box = ((x - w, y + 18), (x + 2, y + 18), (x + 2, y + 34), (x - w, y + 34))
        return [Polygon(box, WHITE), Text(x, y + 26, text, 11, INK, "rm")]

    def _label_anchor(self, plane: int) -> Point:
        points = [p for outline in self.cells.panels[plane] for p in outline]
        return min(p[0] for p in points) - 12, (min(p[1] for p in points) + max(p[1] for p in points)) / 2

    def front(self, plane: int, index: int) -> int:
        """The channel a deck shows in front at frame ``index``: the one the frame reads or writes."""
        window = self.anim.frames.window(index)
        mine = (plane == 0) == (self.anim.view == "scatter")
        return window.channel if mine else window.channels.start

    def _turn(self, plane: int, window: Window) -> list[Shape]:
        """A deck's front card redrawn when the frame brings another channel to the front."""
        if self.cells.decks[plane] == 1:
            return []
        mine = (plane == 0) == (self.anim.view == "scatter")
        channel = window.channel if mine else window.channels.start
        if channel == self.shown_front[plane]:
            return []
        self.shown_front[plane] = channel
        return self.card(plane, channel)

    def _visible(self, plane: int, channels: range) -> range:
        """The channels drawn: all of them, or a deck's front one."""
        return channels if self.cells.decks[plane] == 1 else range(channels.start, channels.start + 1)

    def _through(self, plane: int, block: tuple[Point, ...], channels: range, look: CellLook) -> list[Shape]:
        """The window as a box through a deck: back outline at the depth of the channels it covers, edges."""
        total = self.cells.decks[plane]
        if total == 1 or len(channels) == 1:
            return []
        behind = min(total - 1, DECK_CARDS)
        depth = max(round((len(channels) - 1) / (total - 1) * behind), 1)
        dx, dy = self.cells.card
        back = tuple((x + depth * dx, y + depth * dy) for x, y in block)
        shapes: list[Shape] = [Polygon(back, None, look.outline, self.line * 1.2)]
        shapes.extend(Line((p, q), look.outline, self.line * 1.2) for p, q in zip(block, back, strict=True))
        return shapes

    def _place(self, spot: tuple[int, ...]) -> tuple[int, int, int]:
        """(panel, row, column) of a lower-grid cell (cached)."""
        place = self.places.get(spot)
        if place is None:
            place = self.places[spot] = _place(self.anim.lower, spot)
        return place

    def _kind(self, plane: int, spot: tuple[int, ...]) -> str:
        key = (plane, spot)
        kind = self.kinds.get(key)
        if kind is None:
            kind = self.kinds[key] = (self.anim.lower if plane == 0 else self.anim.upper).kind(spot)
        return kind

    # -- frames ----------------------------------------------------------------------------------

    def direct_kept(self, window: Window) -> Kept:
        """What a direct frame adds for good: a deck's new front card, the output value it computes.
        Frames are asked for in order (a deck's front card is the one before unless the frame turns it)."""
        kept: list[Shape] = [*self._turn(0, window), *self._turn(1, window)]
        if self.anim.values is not None:
            kept.extend(self.value(1, window.channel, window.cell, INK))
        return kept

    def direct_shown(self, window: Window) -> Shown:
        """What a direct frame shows only then: the kernel's footprint (values and weights), the rays,
        the output cell highlighted. Frames may be asked for in any order."""
        anim = self.anim
        shown: list[Shape] = []
        values = anim.values
        channels = self._visible(0, window.channels)
        if self.cells.decks[0] > 1:
            # the window as one box through the deck (the channels it reads)
            block = self._block(channels.start, window.cells, uniform=False)
            if block is not None:
                shown.extend(self._through(0, block[0], window.channels, block[1]))
        # the kernel's footprint on the lower grid
        if values is None:
            shown.extend(self._footprint(channels, window))
        else:
            for ic in channels:
                taps = anim.frames.taps(window, ic)
                for spot, tap in zip(window.cells, taps, strict=True):
                    shown.extend(self._tapped(ic, spot, tap))
        if values is not None and anim.bound.kind == "max_pool":
            shown.extend(self._argmax(window))
        if self.guide:
            # rays from the footprint's corners to the output cell, hidden where the output plane is
            shown.extend(self._rays(channels.start, window.cells, self.cells.quad(1, window.channel, window.cell)))
        look = FOOTPRINT["output"]
        shown.append(self.highlight(1, window.channel, window.cell, look))
        if values is not None:
            # the output stays once computed (kept); this frame shows it highlighted
            shown.extend(self.value(1, window.channel, window.cell, WHITE, bold=True))
        return shown

    def shown_colours(self) -> frozenset[str]:
        """Every colour :meth:`direct_shown` can paint, from the kinds of cell the lower grid has
        (so that a writer knows them before it has made every frame)."""
        anim, values = self.anim, self.anim.values
        looks = [FOOTPRINT[kind] for kind in anim.lower.kinds_present()]
        colours = {c for look in (*looks, FOOTPRINT["output"]) for c in (look.fill, look.outline)}
        if self.cells.decks[0] > 1:
            colours.add(FOOTPRINT["input"].outline)  # the window as a box through the deck
        if values is not None:
            colours |= {look.text for look in looks} | {WHITE}  # the values read, the output value
            if values.weight is not None:
                colours |= {OKABE_ITO["yellow"] if look.text == WHITE else OKABE_ITO["vermillion"] for look in looks}
            if anim.bound.kind == "max_pool":
                colours.add(OKABE_ITO["orange"])
        if self.guide:
            colours.add(self.ray_colour)
        return frozenset(colours)

    def _block(
        self, channel: int, cells: Sequence[tuple[int, ...]], *, uniform: bool = True
    ) -> tuple[tuple[Point, ...], CellLook] | None:
        """The window's outline on one channel, and its look, when it is one rectangle on one panel
        (``uniform``: of one kind of cell)."""
        places = [self._place(c) for c in cells]
        if len({p[0] for p in places}) != 1 or (uniform and len({self._kind(0, c) for c in cells}) != 1):
            return None
        rows = [p[1] for p in places]
        cols = [p[2] for p in places]
        r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
        if len(set(zip(rows, cols, strict=True))) != (r1 - r0 + 1) * (c1 - c0 + 1):
            return None
        at = {(p[1], p[2]): c for p, c in zip(places, cells, strict=True)}
        corners = (
            self.cells.quad(0, channel, at[r0, c0])[0],
            self.cells.quad(0, channel, at[r0, c1])[1],
            self.cells.quad(0, channel, at[r1, c1])[2],
            self.cells.quad(0, channel, at[r1, c0])[3],
        )
        return corners, FOOTPRINT[self._kind(0, cells[0]) if uniform else "input"]

    def _footprint(self, channels: range, window: Window) -> list[Shape]:
        """The window on each panel: one block where it is a full rectangle of one kind of cell (a
        contiguous window, the common case), cell by cell elsewhere — a frame's shapes grow with
        the panels it covers, not with the taps; on a deck, one box through it."""
        by_panel: dict[int, list[tuple[int, ...]]] = {}
        for spot in window.cells:
            by_panel.setdefault(self._place(spot)[0], []).append(spot)
        shapes: list[Shape] = []
        for channel in channels:
            for spots in by_panel.values():
                found = self._block(channel, spots) if len(spots) > 1 else None
                if found is None:
                    for spot in spots:
                        shapes.append(self.highlight(0, channel, spot, FOOTPRINT[self._kind(0, spot)]))
                    continue
                block, look = found
                shapes.append(Polygon(block, look.fill, look.outline, self.line * 1.5, look.dash))
                if self.cell_px >= 12:  # the cells inside the block, as thin lines
                    shapes.extend(self._inner_lines(channel, spots, look))
        return shapes

    def _inner_lines(self, channel: int, spots: Sequence[tuple[int, ...]], look: CellLook) -> list[Shape]:
        at = {self._place(c)[1:]: c for c in spots}
        rows = sorted({r for r, _ in at})
        cols = sorted({c for _, c in at})
        r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]

        def quad(r: int, c: int) -> tuple[Point, ...]:
            return self.cells.quad(0, channel, at[r, c])

        shapes: list[Shape] = []
        for r in range(r0 + 1, r1 + 1):
            shapes.append(Line((quad(r, c0)[0], quad(r, c1)[1]), look.outline, self.line))
        for c in range(c0 + 1, c1 + 1):
            shapes.append(Line((quad(r0, c)[0], quad(r1, c)[3]), look.outline, self.line))
        return shapes

    def _rays(self, channel: int, cells: Sequence[tuple[int, ...]], target: Sequence[Point]) -> list[Shape]:
        if self.ray_corners is None:
            # every window is the same taps moved: which cell's corner each ray starts at is found once
            self.ray_corners = self._ray_corners(cells)
        shapes: list[Shape] = []
        for (tap, k), b in zip(self.ray_corners, target, strict=True):
            for p, q in _outside(self.cells.quad(0, channel, cells[tap])[k], b, self.hiding):
                shapes.append(Line((p, q), self.ray_colour, self.line * 1.1))
        return shapes

    def _ray_corners(self, cells: Sequence[tuple[int, ...]]) -> list[tuple[int, int]]:
        """The window's four outer corners on the panel of its first cell, as (tap, corner of that
        tap's cell), clockwise from the top left."""
        panel = self._place(cells[0])[0]
        lookup = {self._place(c)[1:]: t for t, c in enumerate(cells) if self._place(c)[0] == panel}
        r0, r1 = min(r for r, _ in lookup), max(r for r, _ in lookup)
        c0, c1 = min(c for _, c in lookup), max(c for _, c in lookup)
        corners = []
        for (r, c), k in (((r0, c0), 0), ((r0, c1), 1), ((r1, c1), 2), ((r1, c0), 3)):
            tap = lookup.get((r, c))
            if tap is None:  # a window that is no rectangle: the nearest cell it has
                tap = min(lookup.items(), key=lambda item: abs(item[0][0] - r) + abs(item[0][1] - c))[1]
            corners.append((tap, k))
        return corners

    def _tapped(self, channel: int, spot: tuple[int, ...], tap: tuple[int, ...]) -> list[Shape]:
        """A cell read by weight ``tap``: highlighted, its value, and the weight (numeric pictures)."""
        found = self.read.get((channel, spot))
        if found is None:
            found = self.read[channel, spot] = self._read_cell(channel, spot)
        shapes, (cx, cy), size, room, text_colour = found
        values = self.anim.values
        if values is None or values.weight is None:
            return shapes
        weight = self.weights.get(tap)
        if weight is None:
            weight = self.weights[tap] = format_value(float(values.weight[tap]), short=True)
        sub = OKABE_ITO["yellow"] if text_colour == WHITE else OKABE_ITO["vermillion"]
        # small cells: the weight as large as the value, or it is unreadable
        fitted = fit_size(weight, size * (0.3 if self.cell_px < 28 else 0.24), room * 0.4, bold=True)
        return [*shapes, Text(cx + room * 0.27, cy + size * 0.24, weight, fitted, sub, "mm", bold=True)]

    def _read_cell(self, channel: int, spot: tuple[int, ...]) -> tuple[list[Shape], Point, float, float, str]:
        """What every frame reading a cell shows alike — the cell highlighted, its value — and the
        cell's centre, size, width and text colour (where the weight goes)."""
        values = self.anim.values
        assert values is not None
        kind = self._kind(0, spot)
        look = FOOTPRINT[kind]
        quad = self.cells.quad(0, channel, spot)
        shown = kind == "input" or (kind == "pad" and self.anim.bound.layer.padding_mode != "zeros")
        value = float(values.lower[(channel, *spot)]) if shown else math.nan
        size, room, centre = _size(quad), _across(quad), _centre(quad)
        shapes: list[Shape] = [self.highlight(0, channel, spot, look)]
        if values.weight is None:
            shapes.extend(self.number(quad, value, look.text))
        elif text := format_value(value) if shown else "":
            # upper left: the input value, in at most 62% of the cell's width
            fitted = fit_size(text, size * 0.34, room * 0.6)
            cx, cy = centre
            shapes.append(Text(cx - room * 0.18, cy - size * 0.1, text, fitted, look.text, "mm"))
        return shapes, centre, size, room, look.text

    def _argmax(self, window: Window) -> list[Shape]:
        values = self.anim.values
        assert values is not None
        channel = window.channels.start

        def key(spot: tuple[int, ...]) -> float:
            v = float(values.lower[(channel, *spot)])
            return -math.inf if math.isnan(v) else v

        best = max(window.cells, key=key)
        quad = self.cells.quad(0, channel, best)
        return [Polygon(quad, None, OKABE_ITO["orange"], self.line * 3.2)]

    def scatter_frame(self, window: Window) -> tuple[Kept, Shown]:
        anim = self.anim
        values = anim.values
        shown: list[Shape] = []
        kept: list[Shape] = [*self._turn(0, window), *self._turn(1, window)]
        shown.append(self.highlight(0, window.channel, window.cell, FOOTPRINT["input"]))
        if values is not None:
            quad = self.cells.quad(0, window.channel, window.cell)
            shown.extend(self.number(quad, float(values.input[(window.channel, *window.cell)]), WHITE, bold=True))
        index = self.index
        self.index += 1
        sums = values.partial_sums[index] if values is not None else ()
        taps = len(window.cells)
        for oc in self._visible(1, window.channels):
            for t, spot in enumerate(window.cells):
                j = (oc - window.channels.start) * taps + t
                key = (oc, spot)
                count = self.accumulated.get(key, 0) + 1
                self.accumulated[key] = count
                kind = self._kind(1, spot)
                shade = count / self.peak
                quad = self.cells.quad(1, oc, spot)
                if kind == "crop":
                    # stamped, then cut away by the padding: grey, crossed out
                    fill = mix(CELL["crop"].fill, "#9AA0A6", 0.1 + 0.5 * min(shade, 1.0))
                    kept.extend(self.cell(1, oc, spot, CellLook(fill, CELL["crop"].outline, "dot"), kind))
                    colour = MUTED
                else:
                    dark = mix(OKABE_ITO["green"], "#000000", 0.35)
                    fill = mix(CELL["output"].fill, dark, 0.15 + 0.85 * min(shade, 1.0))
                    kept.append(Polygon(quad, fill, CELL["output"].outline, self.line, CELL[kind].dash))
                    colour = WHITE if shade > 0.45 else INK
                number = sums[j] if sums and kind != "crop" else float(count)
                kept.extend(self.number(quad, number, colour))
                shown.append(Polygon(quad, None, OKABE_ITO["orange"], self.line * 2.4))
        return kept, shown


def _peak(anim: Animation) -> int:
    """The largest overlap count on the upper grid (shading is relative to it)."""
    per_axis = 1
    for axis in anim.upper.axes:
        per_axis *= max(axis.reads)
    return max(per_axis * (anim.in_channels // anim.bound.layer.groups), 1)
