"""Scenes as SVG: one animated file (SMIL, no script) or one still per frame.

The animated file holds the background once; per frame, a ``<g class="kept">`` of the shapes it
adds for good, visible from its time slot to the end of the loop (later groups paint over
earlier ones), and a ``<g class="frame">`` of its own shapes, visible during its slot only — each
switched by a discrete SMIL ``<animate>``, looping forever. So the file grows with the shapes,
not with frames × shapes; it plays in every browser and shows frame 0 where SMIL is unsupported.

Examples
--------
>>> from convarith import Layer
>>> from convarith.render.frames import build_animation
>>> from convarith.render.scene import compose
>>> text = animated_svg(compose(build_animation(Layer("conv1d", kernel_size=2), (3,))), fps=2)
>>> text.count('class="frame"'), text.startswith("<svg")
(2, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .scene import Line, Polygon, Scene, Shape

__all__ = ["animated_svg", "frame_svg"]

_FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
_DASH = {"dash": "5 3.5", "dot": "1.6 2.6"}
_ANCHOR = {"l": "start", "m": "middle", "r": "end"}
_BASELINE = {"m": "central", "s": "alphabetic", "t": "hanging"}


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def _shape(shape: Shape) -> str:
    if isinstance(shape, Polygon):
        attrs = [f'points="{_points(shape.points)}"', f'fill="{shape.fill or "none"}"']
        if shape.outline is not None:
            attrs += [f'stroke="{shape.outline}"', f'stroke-width="{_num(shape.width)}"', 'stroke-linejoin="round"']
            if shape.dash is not None:
                attrs.append(f'stroke-dasharray="{_DASH[shape.dash]}"')
        return f"<polygon {' '.join(attrs)}/>"
    if isinstance(shape, Line):
        attrs = [
            f'points="{_points(shape.points)}"',
            'fill="none"',
            f'stroke="{shape.colour}"',
            f'stroke-width="{_num(shape.width)}"',
            'stroke-linecap="round"',
        ]
        if shape.dash is not None:
            attrs.append(f'stroke-dasharray="{_DASH[shape.dash]}"')
        return f"<polyline {' '.join(attrs)}/>"
    weight = ' font-weight="bold"' if shape.bold else ""
    return (
        f'<text x="{_num(shape.x)}" y="{_num(shape.y)}" font-size="{_num(shape.size)}" fill="{shape.colour}" '
        f'text-anchor="{_ANCHOR[shape.anchor[0]]}" dominant-baseline="{_BASELINE[shape.anchor[1]]}"{weight}>'
        f"{escape(shape.text)}</text>"
    )


def _open(scene: Scene, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width}" height="{scene.height}" '
        f'viewBox="0 0 {scene.width} {scene.height}" font-family="{escape(_FONT)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{scene.width}" height="{scene.height}" fill="#FFFFFF"/>',
        '<g class="background">',
        *(_shape(s) for s in scene.background),
        "</g>",
    ]


def frame_svg(scene: Scene, index: int, title: str = "convarith") -> str:
    """One frame as a still SVG document: the background, the shapes kept so far, the frame's own."""
    lines = _open(scene, title)
    for n in range(index + 1):
        kept = scene.kept_at(n)
        if kept:
            lines += [f'<g class="kept" id="kept-{n}">', *(_shape(s) for s in kept), "</g>"]
    lines += [f'<g class="frame" id="frame-{index}">', *(_shape(s) for s in scene.frames[index]), "</g>", "</svg>"]
    return "\n".join(lines) + "\n"


def _switch(timing: str, total: float) -> str:
    return (
        f'<animate attributeName="visibility" {timing} dur="{total:.3f}s" calcMode="discrete" '
        'repeatCount="indefinite"/>'
    )


def animated_svg(scene: Scene, fps: float, title: str = "convarith", hold_last: float = 1.0) -> str:
    """Every frame in one SVG, shown in turn by SMIL and looping (the last one held ``hold_last`` s more)."""
    n = len(scene.frames)
    step = 1.0 / fps
    total = n * step + hold_last
    lines = _open(scene, title)
    for index, shapes in enumerate(scene.frames):
        start = index * step / total
        end = (index + 1) * step / total if index < n - 1 else 1.0
        kept = scene.kept_at(index)
        if kept:
            # visible from this frame's slot to the end of the loop
            lines.append(f'<g class="kept" id="kept-{index}" visibility="{"visible" if index == 0 else "hidden"}">')
            if index > 0:
                lines.append(_switch(f'values="hidden;visible" keyTimes="0;{start:.6f}"', total))
            lines.extend(_shape(s) for s in kept)
            lines.append("</g>")
        if n == 1:
            timing = ""
        elif index == 0:
            timing = f'values="visible;hidden" keyTimes="0;{end:.6f}"'
        elif index == n - 1:
            timing = f'values="hidden;visible" keyTimes="0;{start:.6f}"'
        else:
            timing = f'values="hidden;visible;hidden" keyTimes="0;{start:.6f};{end:.6f}"'
        visibility = "visible" if index == 0 else "hidden"
        lines.append(f'<g class="frame" id="frame-{index}" visibility="{visibility}">')
        if timing:
            lines.append(_switch(timing, total))
        lines.extend(_shape(s) for s in shapes)
        lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
