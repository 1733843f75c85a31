"""Draw scenes with Pillow: the background once, then each frame over a copy of it.

Examples
--------
>>> from convarith import ConvSpec
>>> from convarith.render.frames import build_animation
>>> from convarith.render.scene import compose
>>> images = list(frames_rgb(compose(build_animation(ConvSpec.create("conv1d", kernel_size=2), (3,)))))
>>> len(images), images[0].mode
(2, 'RGB')
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from .scene import Line, Polygon, Scene, Shape, Text

__all__ = ["background_rgb", "draw_shapes", "font", "frames_rgb"]

_FONT_FILES = {False: ("DejaVuSans.ttf", "Arial.ttf"), True: ("DejaVuSans-Bold.ttf", "Arial Bold.ttf")}


@functools.lru_cache(maxsize=256)
def font(size: int, bold: bool = False) -> Any:
    """A TrueType font at ``size`` pixels: DejaVu Sans when the system has it, Pillow's own otherwise."""
    from PIL import ImageFont

    for name in _FONT_FILES[bold]:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _dashed(draw: Any, points: Sequence[tuple[float, float]], colour: str, width: int, dash: str, scale: float) -> None:
    on, off = (5.0 * scale, 3.5 * scale) if dash == "dash" else (1.6 * scale, 2.6 * scale)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        # start and end every edge on a dash, so corners look alike
        count = max(round((length + off) / (on + off)), 1)
        period = (length + off) / count
        seg = period - off
        dx, dy = (x1 - x0) / length, (y1 - y0) / length
        for n in range(count):
            a = n * period
            b = min(a + seg, length)
            draw.line([(x0 + dx * a, y0 + dy * a), (x0 + dx * b, y0 + dy * b)], fill=colour, width=width)


def draw_shapes(draw: Any, shapes: Sequence[Shape], scale: float) -> None:
    """Draw shapes (page pixels) at ``scale`` device pixels per page pixel."""
    for shape in shapes:
        if isinstance(shape, Polygon):
            points = [(x * scale, y * scale) for x, y in shape.points]
            if shape.fill is not None:
                draw.polygon(points, fill=shape.fill)
            if shape.outline is not None:
                width = max(round(shape.width * scale), 1)
                closed = [*points, points[0]]
                if shape.dash is None:
                    draw.line(closed, fill=shape.outline, width=width, joint="curve")
                else:
                    _dashed(draw, closed, shape.outline, width, shape.dash, scale)
        elif isinstance(shape, Line):
            points = [(x * scale, y * scale) for x, y in shape.points]
            width = max(round(shape.width * scale), 1)
            if shape.dash is None:
                draw.line(points, fill=shape.colour, width=width, joint="curve")
            else:
                _dashed(draw, points, shape.colour, width, shape.dash, scale)
        elif isinstance(shape, Text):
            size = max(round(shape.size * scale), 6)
            draw.text(
                (shape.x * scale, shape.y * scale),
                shape.text,
                font=font(size, shape.bold),
                fill=shape.colour,
                anchor=shape.anchor,
            )


def background_rgb(scene: Scene) -> Any:
    """The static background at the scene's supersampled size."""
    from PIL import Image, ImageDraw

    ss = scene.supersample
    image = Image.new("RGB", (scene.width * ss, scene.height * ss), "#FFFFFF")
    draw_shapes(ImageDraw.Draw(image), scene.background, ss)
    return image


def frames_rgb(scene: Scene, indices: Sequence[int] | None = None) -> Iterator[Any]:
    """Every frame (or those at ``indices``) as an RGB image at page size."""
    from PIL import ImageDraw

    ss = scene.supersample
    base = background_rgb(scene)
    for n in range(len(scene.frames)) if indices is None else indices:
        image = base.copy()
        draw_shapes(ImageDraw.Draw(image), scene.frames[n], ss)
        yield image.reduce(ss) if ss > 1 else image
