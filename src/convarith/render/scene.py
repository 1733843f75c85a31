"""From frames to shapes: where every cell lands on the page, and what each frame adds.

A :class:`Scene` is a static background plus, per frame, a list of shapes drawn over it, in
page pixels. Raster and SVG writers draw the same shapes, so a GIF and an SVG of one animation
agree.

Layout: a grid's last two axes are rows and columns of a *panel*; leading axes (depth slices of
a 3-d layer) are panels side by side, channels are rows of panels. The ``guide`` style puts the
input plane below and the output plane above it in perspective, as in the guide's animations;
the ``flat`` style puts them side by side.

Examples
--------
>>> from convarith import ConvSpec
>>> from convarith.render.frames import build_animation
>>> scene = compose(build_animation(ConvSpec.create("conv2d", kernel_size=3), (4, 4)))
>>> scene.width > 0 and scene.height > 0, len(scene.frames)
(True, 4)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .frames import Animation, Frame, Grid, Touch
from .style import CELL, FOOTPRINT, INK, MUTED, OKABE_ITO, UNREAD, WHITE, CellLook, StyleName, mix

__all__ = ["Line", "Polygon", "Scene", "Shape", "Text", "compose", "format_value"]

Point = tuple[float, float]
Dash = Literal["dash", "dot"] | None


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    fill: str | None
    outline: str | None = None
    width: float = 1.0
    dash: Dash = None


@dataclass(frozen=True)
class Line:
    points: tuple[Point, ...]
    colour: str
    width: float = 1.0
    dash: Dash = None


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float
    colour: str = INK
    anchor: Literal["mm", "lm", "rm", "ms", "mt"] = "mm"
    bold: bool = False


Shape = Polygon | Line | Text


@dataclass
class Scene:
    width: int
    height: int
    background: list[Shape]
    frames: list[list[Shape]] = field(default_factory=list)
    supersample: int = 2
    """Raster writers draw at this scale and reduce, which smooths slanted edges."""


def format_value(value: float) -> str:
    """A cell's number: integers plainly, others with up to two decimals; blank for ``nan``.

    >>> [format_value(v) for v in (3.0, -2.0, 1.6667, 0.5, float("nan"), float("-inf"))]
    ['3', '−2', '1.67', '0.5', '', '−∞']
    """
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = str(int(value)) if value == int(value) and abs(value) < 1e9 else f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace("-", "−")


# -- layout -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panels:
    """How a grid's cells sit in its plane, in cell units.

    A panel is one channel's 2-d slice. 2-d grids put channels side by side; 1-d strips and the
    depth slices of 3-d grids run along a row, with channels as rows of panels.
    """

    rows: int
    cols: int
    slices: int
    channels: int
    channels_across: bool
    gap: float = 1.0

    @property
    def panel_cols(self) -> int:
        return self.channels if self.channels_across else self.slices

    @property
    def panel_rows(self) -> int:
        return 1 if self.channels_across else self.channels

    @property
    def width(self) -> float:
        return self.panel_cols * self.cols + (self.panel_cols - 1) * self.gap

    @property
    def depth(self) -> float:
        return self.panel_rows * self.rows + (self.panel_rows - 1) * self.gap

    def origin(self, channel: int, panel: int) -> Point:
        col, row = (channel, 0) if self.channels_across else (panel, channel)
        return col * (self.cols + self.gap), row * (self.rows + self.gap)


def _panels(grid: Grid) -> _Panels:
    shape = grid.shape
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape[-2:]
    slices = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return _Panels(rows, cols, slices, grid.channels, channels_across=len(shape) == 2)


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


def _perspective(lower: _Panels, upper: _Panels, tilt_deg: float = 36.0) -> tuple[Projector, float]:
    """A camera above and in front: the lower plane at height 0, the upper plane higher up.

    Returns the projector in camera units and the cell size there near the planes' centres.
    """
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

    return project, 1.0


def _flat(lower: _Panels, upper: _Panels) -> Projector:
    gap = 2.5
    height = max(lower.depth, upper.depth)

    def project(plane: int, u: float, v: float) -> Point:
        panels = (lower, upper)[plane]
        x0 = 0.0 if plane == 0 else lower.width + gap
        return x0 + u, (height - panels.depth) / 2 + v

    return project


# -- composition --------------------------------------------------------------------------------------


@dataclass
class _Cells:
    """Projected cell quads of both grids, in page pixels."""

    quads: dict[tuple[int, int, tuple[int, ...]], tuple[Point, ...]]

    def quad(self, plane: int, channel: int, cell: tuple[int, ...]) -> tuple[Point, ...]:
        return self.quads[plane, channel, cell]


def _centre(quad: Sequence[Point]) -> Point:
    return sum(p[0] for p in quad) / 4, sum(p[1] for p in quad) / 4


def _size(quad: Sequence[Point]) -> float:
    """A cell's on-page size (its mean edge), for text and line widths."""
    return (math.dist(quad[0], quad[1]) + math.dist(quad[3], quad[2]) + 2 * math.dist(quad[0], quad[3])) / 4


def _cell_size(anim: Animation) -> float:
    """Pixels per cell: big grids get smaller cells, but never illegible ones."""
    lower, upper = _panels(anim.lower), _panels(anim.upper)
    across = max(lower.width, upper.width, lower.depth * 0.8, upper.depth * 0.8)
    size = 400 / across
    low = 30.0 if anim.values is not None else 9.0
    return min(max(size, low), 52.0)


def compose(anim: Animation, style: StyleName = "guide", *, caption: bool = True, legend: bool = True) -> Scene:
    """Lay out an animation: its background and the shapes of every frame, in page pixels."""
    lower, upper = _panels(anim.lower), _panels(anim.upper)
    cell = _cell_size(anim)
    if style == "guide":
        raw, _ = _perspective(lower, upper)
    else:
        raw = _flat(lower, upper)

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
    label_room = 24.0 + max(_text_width(line, 15 if n == 0 else 11) for n, line in enumerate(_label_lines(anim)))
    top = 48.0 if caption else 16.0
    bottom_room = 16.0
    scale = cell
    x_shift = label_room - min(xs) * scale
    y_shift = top - min(ys) * scale
    width = (max(xs) - min(xs)) * scale + label_room + 24
    if caption and _text_width(anim.caption(), 14) + 32 > width:
        # centre the drawing under a caption wider than it
        extra = _text_width(anim.caption(), 14) + 32 - width
        x_shift += extra / 2
        width += extra

    def page(p: Point) -> Point:
        return p[0] * scale + x_shift, p[1] * scale + y_shift

    quads: dict[tuple[int, int, tuple[int, ...]], tuple[Point, ...]] = {}
    for plane, (grid, panels) in enumerate(((anim.lower, lower), (anim.upper, upper))):
        for channel in range(grid.channels):
            for spot in grid.cells():
                panel, r, c = _place(grid, spot)
                u0, v0 = panels.origin(channel, panel)
                u, v = u0 + c, v0 + r
                quads[plane, channel, spot] = tuple(
                    page(corners[plane, uu, vv]) for uu, vv in ((u, v), (u + 1, v), (u + 1, v + 1), (u, v + 1))
                )
    cells = _Cells(quads)
    drawing_bottom = (max(ys) - min(ys)) * scale + top
    background: list[Shape] = []
    legend_shapes, legend_height = _legend(anim, drawing_bottom + 18, width) if legend else ([], 0.0)
    height = drawing_bottom + bottom_room + legend_height

    # static grids: every cell in its kind's look
    painter = _Painter(anim, cells, cell)
    painter.guide = style == "guide" and anim.view == "direct"
    folded = anim.spec.padding_mode != "zeros"  # padding that shows input values
    for plane, grid in enumerate((anim.lower, anim.upper)):
        for channel in range(grid.channels):
            for spot in grid.cells():
                kind = grid.kind(spot)
                look = CELL[kind]
                shapes = painter.cell(plane, channel, spot, look, kind)
                if plane == 1 and painter.guide:
                    painter.upper_plane.extend(shapes)  # drawn per frame, over the rays
                else:
                    background.extend(shapes)
                if plane == 0 and anim.view == "direct" and kind in ("input", "pad") and grid.unread(spot):
                    background.extend(painter.unread_mark(plane, channel, spot))
                if plane == 0 and anim.values is not None and (kind == "input" or folded):
                    background.extend(painter.value(plane, channel, spot, look.text))
    background.extend(_labels(anim, cells, lower, upper, cell, style))
    if caption:
        background.append(Text(width / 2, 24, anim.caption(), 14, INK, "mm", bold=False))
    background.extend(legend_shapes)
    scene = Scene(math.ceil(width), math.ceil(height), background, supersample=2 if style == "guide" else 1)
    accumulated: dict[tuple[int, tuple[int, ...]], int] = {}
    for frame in anim.frames:
        if anim.view == "scatter":
            scene.frames.append(painter.scatter_frame(frame, accumulated))
        else:
            scene.frames.append(painter.direct_frame(frame))
    return scene


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a DejaVu Sans line's width, for margins."""
    return 0.64 * size * len(text)


def _label_lines(anim: Animation) -> list[str]:
    lines = ["output", "input"]
    for plane in (0, 1):
        lines.append(_label_detail(anim, plane))
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


def _labels(anim: Animation, cells: _Cells, lower: _Panels, upper: _Panels, cell: float, style: str) -> list[Shape]:
    shapes: list[Shape] = []
    for plane, grid in enumerate((anim.lower, anim.upper)):
        # left of the first panel's middle row
        channel_rows = [
            (channel, [spot for spot in grid.cells() if _place(grid, spot)[0] == 0 and _place(grid, spot)[2] == 0])
            for channel in range(grid.channels)
        ]
        first = [cells.quad(plane, 0, spot) for spot in channel_rows[0][1]]
        last = [cells.quad(plane, grid.channels - 1, spot) for spot in channel_rows[-1][1]]
        top_left, bottom_left = first[0][0], last[-1][3]
        x = min(top_left[0], bottom_left[0]) - 12
        y = (top_left[1] + bottom_left[1]) / 2
        shapes.append(Text(x, y - 8, grid.label, 15, INK, "rm", bold=True))
        shapes.append(Text(x, y + 10, _label_detail(anim, plane), 11, MUTED, "rm"))
        # panel titles for channels and depth slices
        if grid.channels > 1 or len(grid.shape) > 2:
            panels = lower if plane == 0 else upper
            for channel in range(grid.channels):
                for panel in range(panels.slices):
                    spot = _first_cell(grid, panel)
                    q = cells.quad(plane, channel, spot)
                    title = []
                    if grid.channels > 1:
                        title.append(f"ch {channel}")
                    if len(grid.shape) > 2:
                        title.append(f"slice {panel}")
                    shapes.append(Text(q[0][0], q[0][1] - 7, " · ".join(title), 10, MUTED, "lm"))
    return shapes


def _first_cell(grid: Grid, panel: int) -> tuple[int, ...]:
    if len(grid.shape) == 1:
        return (0,)
    lead: list[int] = []
    for size in reversed(grid.shape[:-2]):
        lead.append(panel % size)
        panel //= size
    return (*reversed(lead), 0, 0)


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
        kernel_name = "window" if anim.spec.pooling else "kernel"
    entries.insert(1, (FOOTPRINT["input"], kernel_name, False))
    if anim.view == "scatter":
        entries.append((CellLook("#FFFFFF", OKABE_ITO["orange"]), "kernel stamped", False))
    if anim.values is not None and anim.spec.kind == "max_pool":
        entries.append((CellLook("#FFFFFF", OKABE_ITO["orange"]), "maximum", False))
    has_unread = anim.view == "direct" and any(
        anim.lower.kind(s) in ("input", "pad") and anim.lower.unread(s) for s in anim.lower.cells()
    )
    shapes: list[Shape] = []
    x, row_y = 16.0, y
    box = 12.0
    for look, name, crossed in entries:
        w = box + 6 + 6.6 * len(name) + 16
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
        if x + box + 6 + 6.6 * len(name) > width - 8:
            x, row_y = 16.0, row_y + 20
        quad = ((x, row_y - box / 2), (x + box, row_y - box / 2), (x + box, row_y + box / 2), (x, row_y + box / 2))
        shapes.append(Polygon(quad, WHITE, "#7C8C99", 1.2, "dash"))
        shapes.append(Line((quad[3], quad[1]), UNREAD, 1.5))
        shapes.append(Text(x + box + 6, row_y, name, 11, MUTED, "lm"))
    return shapes, row_y - y + 20


class _Painter:
    """Shapes for cells, values and the per-frame highlights."""

    def __init__(self, anim: Animation, cells: _Cells, cell: float) -> None:
        self.anim = anim
        self.cells = cells
        self.cell_px = cell
        self.line = max(1.0, cell / 34)
        self.guide = False
        self.upper_plane: list[Shape] = []
        self.partial: Any = None

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

    def value(self, plane: int, channel: int, spot: tuple[int, ...], colour: str, *, bold: bool = False) -> list[Shape]:
        values = self.anim.values
        assert values is not None
        array = values.lower if plane == 0 else values.output
        text = format_value(float(array[(channel, *spot)]))
        if not text:
            return []
        quad = self.cells.quad(plane, channel, spot)
        cx, cy = _centre(quad)
        size = _size(quad) * (0.36 if len(text) <= 2 else 0.3)
        return [Text(cx, cy, text, size, colour, "mm", bold)]

    def highlight(self, plane: int, touch_channel: int, spot: tuple[int, ...], look: CellLook) -> Polygon:
        quad = self.cells.quad(plane, touch_channel, spot)
        return Polygon(quad, look.fill, look.outline, self.line * 1.5, look.dash)

    def direct_frame(self, frame: Frame) -> list[Shape]:
        anim = self.anim
        shapes: list[Shape] = []
        values = anim.values
        # the kernel's footprint on the lower grid
        for touch in frame.lower:
            kind = anim.lower.kind(touch.cell)
            look = FOOTPRINT[kind]
            shapes.append(self.highlight(0, touch.channel, touch.cell, look))
            if values is not None:
                shapes.extend(self._tapped_value(touch.channel, touch.cell, touch.tap, look))
        if values is not None and anim.spec.kind == "max_pool":
            shapes.extend(self._argmax(frame))
        (target,) = frame.upper
        if self.guide:
            # rays from the footprint's corners to the output cell, then the output plane over them
            shapes.extend(self._rays(frame.lower, self.cells.quad(1, target.channel, target.cell)))
            shapes.extend(self.upper_plane)
        # outputs so far (numeric), and the one being computed
        if values is not None:
            for earlier in anim.frames[: frame.index]:
                (done,) = earlier.upper
                shapes.extend(self.value(1, done.channel, done.cell, INK))
        look = FOOTPRINT["output"]
        shapes.append(self.highlight(1, target.channel, target.cell, look))
        if values is not None:
            shapes.extend(self.value(1, target.channel, target.cell, WHITE, bold=True))
        return shapes

    def _rays(self, touches: Sequence[Touch], target: Sequence[Point]) -> list[Shape]:
        first = touches[0]
        panel = _place(self.anim.lower, first.cell)[0]
        spots = [
            _place(self.anim.lower, t.cell)[1:]
            for t in touches
            if t.channel == first.channel and _place(self.anim.lower, t.cell)[0] == panel
        ]
        lookup = {_place(self.anim.lower, t.cell)[1:]: t for t in touches if t.channel == first.channel}
        r0, r1 = min(r for r, _ in spots), max(r for r, _ in spots)
        c0, c1 = min(c for _, c in spots), max(c for _, c in spots)
        corners = []
        for (r, c), k in (((r0, c0), 0), ((r0, c1), 1), ((r1, c1), 2), ((r1, c0), 3)):
            quad = self.cells.quad(0, first.channel, lookup[r, c].cell)
            corners.append(quad[k])
        colour = mix(OKABE_ITO["blue"], WHITE, 0.35)
        return [Line((a, b), colour, self.line * 1.1) for a, b in zip(corners, target, strict=True)]

    def _tapped_value(self, channel: int, spot: tuple[int, ...], tap: tuple[int, ...], look: CellLook) -> list[Shape]:
        values = self.anim.values
        assert values is not None
        quad = self.cells.quad(0, channel, spot)
        size = _size(quad)
        cx, cy = _centre(quad)
        shapes: list[Shape] = []
        kind = self.anim.lower.kind(spot)
        shown = kind == "input" or (kind == "pad" and self.anim.spec.padding_mode != "zeros")
        text = format_value(float(values.lower[(channel, *spot)])) if shown else ""
        if values.weight is None:
            if text:
                shapes.append(Text(cx, cy, text, size * 0.36, look.text, "mm"))
            return shapes
        if text:
            shapes.append(Text(cx - size * 0.1, cy - size * 0.08, text, size * 0.34, look.text, "mm"))
        weight = format_value(float(values.weight[tap]))
        sub = OKABE_ITO["yellow"] if look.text == WHITE else OKABE_ITO["vermillion"]
        shapes.append(Text(cx + size * 0.25, cy + size * 0.24, weight, size * 0.24, sub, "mm", bold=True))
        return shapes

    def _accumulate(self, frame: Frame) -> Any:
        """The scatter view's partial sums after this frame (frames arrive in order)."""
        values = self.anim.values
        assert values is not None and values.weight is not None
        if self.partial is None:
            self.partial = _zeros((self.anim.upper.channels, *self.anim.upper.shape))
        (src,) = frame.lower
        x = values.input[(src.channel, *src.cell)]
        for touch in frame.upper:
            self.partial[(touch.channel, *touch.cell)] += x * values.weight[touch.tap]
        return self.partial

    def _argmax(self, frame: Frame) -> list[Shape]:
        values = self.anim.values
        assert values is not None
        best = max(
            frame.lower,
            key=lambda t: (
                -math.inf
                if math.isnan(float(values.lower[(t.channel, *t.cell)]))
                else float(values.lower[(t.channel, *t.cell)])
            ),
        )
        quad = self.cells.quad(0, best.channel, best.cell)
        return [Polygon(quad, None, OKABE_ITO["orange"], self.line * 3.2)]

    def scatter_frame(self, frame: Frame, accumulated: dict[tuple[int, tuple[int, ...]], int]) -> list[Shape]:
        anim = self.anim
        values = anim.values
        for touch in frame.upper:
            key = (touch.channel, touch.cell)
            accumulated[key] = accumulated.get(key, 0) + 1
        peak = max(max(len(anim.spec.kernel_size) and _peak(anim), 1), 1)
        shapes: list[Shape] = []
        (source,) = frame.lower
        look = FOOTPRINT["input"]
        shapes.append(self.highlight(0, source.channel, source.cell, look))
        if values is not None:
            text = format_value(float(values.input[(source.channel, *source.cell)]))
            quad = self.cells.quad(0, source.channel, source.cell)
            shapes.append(Text(*_centre(quad), text, _size(quad) * 0.36, WHITE, "mm", True))
        partial = None
        if values is not None:
            partial = self._accumulate(frame)
        stamped = {(t.channel, t.cell) for t in frame.upper}
        for (channel, spot), count in accumulated.items():
            kind = anim.upper.kind(spot)
            shade = count / peak
            quad = self.cells.quad(1, channel, spot)
            if kind == "crop":
                # stamped, then cut away by the padding: grey, crossed out
                fill = mix(CELL["crop"].fill, "#9AA0A6", 0.1 + 0.5 * shade)
                shapes.extend(self.cell(1, channel, spot, CellLook(fill, CELL["crop"].outline, "dot"), "crop"))
                colour = MUTED
            else:
                fill = mix(CELL["output"].fill, mix(OKABE_ITO["green"], "#000000", 0.35), 0.15 + 0.85 * shade)
                shapes.append(Polygon(quad, fill, CELL["output"].outline, self.line, CELL[kind].dash))
                colour = WHITE if shade > 0.45 else INK
            if partial is not None and kind != "crop":
                text = format_value(float(partial[(channel, *spot)]))
            else:
                text = str(count)
            shapes.append(Text(*_centre(quad), text, _size(quad) * 0.34, colour, "mm"))
        for channel, spot in stamped:
            quad = self.cells.quad(1, channel, spot)
            shapes.append(Polygon(quad, None, OKABE_ITO["orange"], self.line * 2.4))
        return shapes


def _peak(anim: Animation) -> int:
    """The largest overlap count on the upper grid (shading is relative to it)."""
    return max(
        math.prod(axis.reads[g] for axis, g in zip(anim.upper.axes, spot, strict=True)) for spot in anim.upper.cells()
    ) * (anim.in_channels // anim.spec.groups)


def _zeros(shape: tuple[int, ...]) -> Any:
    import numpy as np

    return np.zeros(shape)
