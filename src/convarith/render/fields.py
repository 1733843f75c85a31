"""Pictures of a model analysis: the receptive field of one output cell on the input grid, and the
receptive field and effective stride of every layer by depth.

Both are still scenes (:class:`~convarith.render.scene.Scene`) written by the usual writers
(``.svg``, ``.png``) and embedded in the HTML report.

Examples
--------
>>> import torch
>>> from convarith.analysis import analyze
>>> report = analyze(torch.nn.Conv2d(1, 1, 3, stride=2), (1, 1, 9, 9))
>>> scene = field_scene(report)
>>> scene.width > 0 and any(isinstance(s, Text) and "receptive field" in s.text for s in scene.background)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConvArithError
from .scene import Line, Polygon, Scene, Shape, Text, text_width
from .style import CELL, FOOTPRINT, INK, MUTED, OKABE_ITO, mix

if TYPE_CHECKING:
    from ..analysis.model import Analysis

__all__ = ["depth_scene", "field_scene", "report_pictures"]

_AREA = 560.0
"""The longer side of the drawn input, in pixels."""


def _runs(cells: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive cells as ``(first, last)`` runs."""
    out: list[tuple[int, int]] = []
    for c in sorted(cells):
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _rect(
    x0: float, y0: float, x1: float, y1: float, fill: str | None, outline: str | None = None, **kw: object
) -> Polygon:
    return Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), fill, outline, **kw)  # type: ignore[arg-type]


def field_scene(analysis: Analysis, node: str | None = None, cell: Sequence[int] | None = None) -> Scene:
    """The input cells one output cell reads (exactly: dark), inside its closed-form field (dashed,
    padding included), on the input grid. ``node``: the first output by default; ``cell``: its
    central cell."""
    from ..analysis.axes import Periodic

    name = node or analysis.outputs[0]
    report = analysis[name]
    dims = analysis.axis_dims(name)
    if cell is None:
        cell = tuple(report.node.shape[d] // 2 for d in sorted(d for d in dims if d is not None))
    order = sorted(d for d in dims if d is not None)
    cells = analysis.field(name, cell)
    if cells is None:
        raise ConvArithError(
            "node", f"the way back from {name} crosses an operation the analysis does not follow", name
        )
    sizes = [analysis.input_shape[d] for d in analysis.spatial_dims]
    if len(sizes) not in (1, 2):
        raise ConvArithError("input_shape", "a field picture needs an input of 1 or 2 spatial axes", len(sizes))
    hulls: list[tuple[int, int] | None] = []
    for k, state in enumerate(report.fields):
        dim = dims[k]
        at = cell[order.index(dim)] if dim is not None else 0
        hulls.append(state.at(at) if isinstance(state, Periodic) else None)
    # rows, columns: a 1-d input is one row
    axes = [(1, [0], None), (sizes[0], list(cells[0]), hulls[0])] if len(sizes) == 1 else [
        (sizes[0], list(cells[0]), hulls[0]),
        (sizes[1], list(cells[1]), hulls[1]),
    ]  # fmt: skip
    spans = []
    for size, _, hull in axes:
        lo = min(0, hull[0]) if hull else 0
        hi = max(size - 1, hull[1]) if hull else size - 1
        margin = max(size // 2, 1)
        spans.append((max(lo, -margin), min(hi, size - 1 + margin)))
    longest = max(hi - lo + 1 for lo, hi in spans)
    px = min(22.0, _AREA / longest)
    px_row = 36.0 if len(sizes) == 1 else px
    left, top = 60.0, 92.0
    (r0, r1), (c0, c1) = spans
    width_px = (c1 - c0 + 1) * px
    height_px = (r1 - r0 + 1) * px_row

    def x(c: float) -> float:
        return left + (c - c0) * px

    def y(r: float) -> float:
        return top + (r - r0) * px_row

    shapes: list[Shape] = []
    where = f"({cell[0]})" if len(cell) == 1 else str(tuple(cell))
    title = f"receptive field of {name} at cell {where}"
    shapes.append(Text(left, 28, title, 15, INK, "lm", bold=True))
    lines = []
    names = ["along the input"] if len(sizes) == 1 else ["rows", "columns"]
    for label, (_, read, hull), state in zip(names, axes[-len(sizes) :], report.fields, strict=True):
        if read:
            text = f"{label}: cells {min(read)}–{max(read)} read ({len(read)} of {max(read) - min(read) + 1})"
        else:
            text = f"{label}: no input cell"
        if hull is not None and isinstance(state, Periodic):
            text += f"; closed form {hull[0]}…{hull[1]} ({hull[1] - hull[0] + 1} cells, stride {state.rate})"
        lines.append(text)
    for n, line in enumerate(lines):
        shapes.append(Text(left, 50 + 17 * n, line, 11.5, MUTED, "lm"))
    # the padding around the input (where the closed form reaches), then the input
    shapes.append(_rect(x(c0), y(r0), x(c1 + 1), y(r1 + 1), "#FFFFFF", CELL["pad"].outline, width=0.8, dash="dash"))
    shapes.append(_rect(x(0), y(0), x(axes[1][0]), y(axes[0][0]), CELL["input"].fill, CELL["input"].outline, width=1.0))
    if px >= 6:
        for c in range(c0, c1 + 2):
            colour = CELL["input"].outline if 0 <= c <= axes[1][0] else "#D5DBE0"
            shapes.append(Line(((x(c), y(max(r0, 0))), (x(c), y(min(r1 + 1, axes[0][0])))), colour, 0.5))
        if len(sizes) == 2:
            for r in range(max(r0, 0), min(r1 + 1, axes[0][0]) + 1):
                shapes.append(
                    Line(((x(max(c0, 0)), y(r)), (x(min(c1 + 1, axes[1][0])), y(r))), CELL["input"].outline, 0.5)
                )
    look = FOOTPRINT["input"]
    for ra, rb in _runs(axes[0][1]):
        for ca, cb in _runs(axes[1][1]):
            shapes.append(_rect(x(ca), y(ra), x(cb + 1), y(rb + 1), look.fill, None))
    hull_r, hull_c = axes[0][2], axes[1][2]
    if hull_c is not None and (len(sizes) == 1 or hull_r is not None):
        ra, rb = (0, 0) if len(sizes) == 1 else hull_r  # type: ignore[misc]
        ca, cb = hull_c
        shapes.append(
            _rect(x(max(ca, c0)), y(max(ra, r0)), x(min(cb, c1) + 1), y(min(rb, r1) + 1), None,
                  OKABE_ITO["orange"], width=2.0, dash="dash")
        )  # fmt: skip
    # axis labels
    shapes.append(Text(x(0), y(r0) - 8, "0", 10, MUTED, "ms"))
    shapes.append(Text(x(axes[1][0]), y(r0) - 8, str(axes[1][0]), 10, MUTED, "ms"))
    if len(sizes) == 2:
        shapes.append(Text(left - 8, y(0), "0", 10, MUTED, "rm"))
        shapes.append(Text(left - 8, y(axes[0][0]), str(axes[0][0]), 10, MUTED, "rm"))
    base = top + height_px + 26
    legend = [
        (look.fill, None, "read by this cell (non-zero weight, every branch, padding modes mapped back)"),
        (None, OKABE_ITO["orange"], "closed-form field (the unbounded grid: padding counts as cells)"),
        (CELL["input"].fill, CELL["input"].outline, f"the input, {' × '.join(map(str, sizes))}"),
    ]
    for n, (fill, outline, text) in enumerate(legend):
        yy = base + 20 * n
        shapes.append(
            _rect(left, yy - 6, left + 14, yy + 6, fill, outline, width=1.5, dash="dash" if fill is None else None)
        )
        shapes.append(Text(left + 22, yy, text, 11, INK, "lm"))
    width = max(left + width_px + 40, left + max(text_width(t, 11.5) for t in [title, *lines]) + 40, 560)
    height = base + 20 * len(legend) + 12
    return Scene(math.ceil(width), math.ceil(height), shapes, [[]], supersample=1)


def depth_scene(analysis: Analysis) -> Scene:
    """The receptive field (log scale) and the effective stride of every layer, resampling and pooling,
    in the order they run, along each input axis."""
    from ..analysis.axes import Periodic

    kept = [
        r
        for r in analysis.nodes
        if r.node.op in ("layer", "resize", "pixel_shuffle", "pixel_unshuffle", "adaptive_pool", "reduce")
    ]
    points = []
    for r in kept:
        field = r.fields[0] if r.fields else None
        if isinstance(field, Periodic):
            points.append((r.name, max(field.sizes), float(field.rate)))
    if not points:
        raise ConvArithError("model", "has no layer with a known receptive field to plot", None)
    left, top, plot_w, plot_h, gap = 76.0, 64.0, 640.0, 190.0, 70.0
    shapes: list[Shape] = [
        Text(left, 26, "receptive field and effective stride by depth (input axis 0)", 15, INK, "lm", bold=True)
    ]
    n = len(points)

    def xs(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    panels: list[tuple[str, list[float], str, float]] = [
        ("receptive field (cells, log scale)", [float(p[1]) for p in points], OKABE_ITO["blue"], top),
        (
            "effective stride (log scale; below 1 after upsampling, 0 = global)",
            [p[2] for p in points],
            OKABE_ITO["vermillion"],
            top + plot_h + gap,
        ),
    ]
    for title, values, colour, y0 in panels:
        positive = [v for v in values if v > 0] or [1.0]
        lo, hi = math.floor(math.log2(min(positive))), math.ceil(math.log2(max(positive)))
        hi = max(hi, lo + 1)

        def ys(v: float, lo: int = lo, hi: int = hi, y0: float = y0) -> float:
            if v <= 0:
                return y0 + plot_h
            return y0 + plot_h - plot_h * (math.log2(v) - lo) / (hi - lo)

        shapes.append(_rect(left, y0, left + plot_w, y0 + plot_h, "#FBFCFD", "#C5CDD4", width=0.8))
        step = max(1, math.ceil((hi - lo) / 6))
        for e in range(lo, hi + 1, step):
            yy = ys(2.0**e)
            shapes.append(Line(((left, yy), (left + plot_w, yy)), "#E3E7EB", 0.6))
            label = f"{2**e:g}" if e >= 0 else f"1/{2 ** (-e):g}"
            shapes.append(Text(left - 8, yy, label, 10, MUTED, "rm"))
        shapes.append(Text(left, y0 - 12, title, 11.5, INK, "lm"))
        line = [(xs(i), ys(v)) for i, v in enumerate(values)]
        if len(line) > 1:
            shapes.append(Line(tuple(line), colour, 1.8))
        for px, py in line:
            shapes.append(_rect(px - 2.4, py - 2.4, px + 2.4, py + 2.4, colour, mix(colour, "#000000", 0.3), width=0.6))
        last = values[-1]
        shapes.append(Text(xs(n - 1) + 6, ys(last) - 8, f"{last:g}", 10.5, colour, "lm", bold=True))
    base = top + 2 * plot_h + gap + 22
    shapes.append(
        Text(left, base, f"{n} layers in the order they run: from {points[0][0]} to {points[-1][0]}", 10.5, MUTED, "lm")
    )
    width = left + plot_w + 60
    return Scene(math.ceil(width), math.ceil(base + 20), shapes, [[]], supersample=1)


def report_pictures(analysis: Analysis) -> list[str]:
    """The SVG pictures of an HTML report: the field of the first output's central cell (when the way
    back is known) and the fields by depth (when some layer's is)."""
    from .svg import frame_svg

    out = []
    for make, title in ((field_scene, "receptive field"), (depth_scene, "by depth")):
        try:
            out.append(frame_svg(make(analysis), 0, title))
        except ConvArithError:  # nothing to draw (an unknown operation on the way back, no layer)
            continue
    return out
