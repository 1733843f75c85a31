"""Draw scenes with Pillow on a running canvas: the background once, each frame's kept shapes onto it
for good, each frame's own shapes over a copy of the part that changed.

:class:`Canvas` is the one raster model: :func:`frames_rgb` streams whole frames from it (PNG
folders, MP4, APNG) and the GIF writer asks it for :meth:`Canvas.changed` — the rectangle in
which frame ``f`` differs from frame ``f − 1``, drawn — so that every frame costs the shapes and
pixels it changes, never the animation's length.

Examples
--------
>>> from convarith import Layer
>>> from convarith.render.frames import build_animation
>>> from convarith.render.scene import compose
>>> images = list(frames_rgb(compose(build_animation(Layer("conv1d", kernel_size=2), (3,)))))
>>> len(images), images[0].mode
(2, 'RGB')
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from .scene import Line, Polygon, Scene, Shape, Text

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "Box",
    "Canvas",
    "Palette",
    "background_rgb",
    "changed_box",
    "draw_shapes",
    "font",
    "frames_rgb",
    "shape_box",
]

_FONT_FILES = {False: ("DejaVuSans.ttf", "Arial.ttf"), True: ("DejaVuSans-Bold.ttf", "Arial Bold.ttf")}

Box = tuple[int, int, int, int]
"""``(left, top, right, bottom)`` in page pixels, right and bottom exclusive."""


@functools.lru_cache(maxsize=512)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font at ``size`` pixels: DejaVu Sans when the system has it, Pillow's own otherwise.

    >>> font(12).size
    12
    """
    from PIL import ImageFont

    for name in _FONT_FILES[bold]:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _dashed(
    draw: ImageDraw.ImageDraw,
    points: Sequence[tuple[float, float]],
    colour: str | int,
    width: int,
    dash: str,
    scale: float,
) -> None:
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


def text_size(shape: Text, scale: float) -> int:
    """The pixel size a text is set in at ``scale`` (at least 1: a fitted size is never enlarged)."""
    return max(math.floor(shape.size * scale), 1)


def draw_shapes(
    draw: ImageDraw.ImageDraw,
    shapes: Sequence[Shape],
    scale: float,
    palette: Palette | None = None,
) -> None:
    """Draw shapes (page pixels) at ``scale`` device pixels per page pixel, at their own place (never
    shifted: Pillow's rasterising is not exact under a shift, even by whole pixels).

    On a palette image give its :class:`Palette`: colours become palette indices, text is laid
    on the pixels under it in full colour and mapped back (so it stays anti-aliased).

    >>> from PIL import Image, ImageDraw
    >>> image = Image.new("RGB", (4, 4), "#FFFFFF")
    >>> draw_shapes(ImageDraw.Draw(image), [Polygon(((0, 0), (4, 0), (4, 4), (0, 4)), "#000000")], 1)
    >>> image.getpixel((2, 2))
    (0, 0, 0)
    """
    ink = palette.index if palette is not None else _same
    core = draw.draw  # on a palette image, fills go straight to the core call ImageDraw.polygon makes
    target: Image.Image = draw._image
    image = target.im if palette is not None else None
    for shape in shapes:
        # a long animation draws tens of thousands of shapes: no isinstance chains
        if type(shape) is Text:
            if palette is not None:
                palette._paste_text(target, image, shape, scale)
            else:
                _text(draw, shape, scale)
        elif type(shape) is Polygon:
            points = [(x * scale, y * scale) for x, y in shape.points]
            if shape.fill is not None:
                if palette is None:
                    draw.polygon(points, fill=shape.fill)
                else:
                    core.draw_polygon(points, core.draw_ink(ink(shape.fill)), 1)
            if shape.outline is not None:
                points.append(points[0])
                _stroke(draw, points, ink(shape.outline), shape.width, shape.dash, scale)
        else:
            assert isinstance(shape, Line)
            points = [(x * scale, y * scale) for x, y in shape.points]
            _stroke(draw, points, ink(shape.colour), shape.width, shape.dash, scale)


def _stroke(
    draw: ImageDraw.ImageDraw,
    points: list[tuple[float, float]],
    colour: str | int,
    width: float,
    dash: str | None,
    scale: float,
) -> None:
    """A polyline, solid or dashed; a palette index goes straight to Pillow's core ``draw_lines`` (what
    ``ImageDraw.line`` calls; its ``joint="curve"`` only acts above width 4)."""
    pixels = max(round(width * scale), 1)
    if dash is not None:
        _dashed(draw, points, colour, pixels, dash, scale)
    elif pixels > 4 or not isinstance(colour, int):
        draw.line(points, fill=colour, width=pixels, joint="curve")
    else:
        draw.draw.draw_lines(points, draw.draw.draw_ink(colour), pixels)


def _same(colour: str) -> str:
    return colour


_Tile = tuple["Image.Image", "Image.Image", int, int, tuple[int, int], tuple[object, object]]
"""A text tile: its palette pixels, the glyphs' mask, its offset from the anchor, its size, and
the two images' cores (Pillow's ``Image.im``, looked up once)."""


class Palette:
    """A fixed palette to draw on directly (mode ``P``): colour → index, and text tiles.

    ``image`` is a ``P`` image holding the palette (as :meth:`PIL.Image.Image.quantize` takes it).
    Every pixel drawn is the index :meth:`PIL.Image.Image.quantize` would give its colour, so a
    frame drawn on the palette is the frame drawn in full colour and quantized.

    >>> from PIL import Image
    >>> palette = Palette(Image.new("RGB", (2, 1), "#0072B2").quantize(2))
    >>> palette.index("#0072b2"), palette.quantize(Image.new("RGB", (1, 1), "#0072B2")).mode
    (0, 'P')
    """

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        flat = image.getpalette() or []
        self._index: dict[str, int] = {}
        for k in range(len(flat) // 3 - 1, -1, -1):  # the first entry of a colour wins
            self._index["#{:02X}{:02X}{:02X}".format(*flat[3 * k : 3 * k + 3])] = k
        self._tiles: dict[tuple[object, ...], _Tile] = {}
        self.white = self.index("#FFFFFF")

    def quantize(self, image: Image.Image) -> Image.Image:
        from PIL import Image

        return image.quantize(palette=self.image, dither=Image.Dither.NONE)

    def index(self, colour: str) -> int:
        """The palette index of ``#RRGGBB``: its own entry, else the one quantizing a pixel of it gives."""
        found = self._index.get(colour)
        if found is None:
            from PIL import Image

            upper = colour.upper()
            found = self._index.get(upper)
            if found is None:
                found = int(self.quantize(Image.new("RGB", (1, 1), upper)).getpixel((0, 0)))  # type: ignore[arg-type]
            self._index[colour] = self._index[upper] = found
        return found

    def _paste_text(self, target: Image.Image, core: object, shape: Text, scale: float) -> None:
        """Text as a palette tile: its glyphs anti-aliased over the fill at its anchor, quantized, pasted
        through the glyphs' own mask (cached by text, size, colours), so a number costs a paste."""
        # ``core`` is ``target.im``, Pillow's core image: a paste per number, without the per-call checks
        size = text_size(shape, scale)
        ax, ay = round(shape.x * scale), round(shape.y * scale)
        width, height = core.size  # type: ignore[attr-defined]
        fill = core.getpixel((ax, ay)) if 0 <= ax < width and 0 <= ay < height else self.white  # type: ignore[attr-defined]
        key = (shape.text, size, shape.bold, shape.anchor, shape.colour, fill)
        found = self._tiles.get(key)
        if found is None:
            found = self._tile(shape, size, fill)
            if len(self._tiles) > 20_000:
                self._tiles.clear()
            self._tiles[key] = found
        tile, glyphs, left, top, (w, h), cores = found
        x, y = ax + left, ay + top
        if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
            core.paste(cores[0], (x, y, x + w, y + h), cores[1])  # type: ignore[attr-defined]
        else:
            target.paste(tile, (x, y), glyphs)

    def _tile(self, shape: Text, size: int, fill: object) -> _Tile:
        from PIL import Image, ImageDraw

        mask, left, top = _glyphs(shape.text, size, shape.bold, shape.anchor)
        flat = self.image.getpalette() or []
        k = int(fill) if isinstance(fill, int) else 0
        rgb = Image.new("RGB", mask.size, tuple(flat[3 * k : 3 * k + 3]))
        ImageDraw.Draw(rgb).bitmap((0, 0), mask, fill=shape.colour)
        tile, glyphs = self.quantize(rgb), mask.point(lambda v: 255 if v else 0).convert("1")
        return tile, glyphs, left, top, mask.size, (tile.im, glyphs.im)


@functools.lru_cache(maxsize=4096)
def _glyphs(text: str, size: int, bold: bool, anchor: str) -> tuple[Image.Image, int, int]:
    """A line of text rendered once as a mask, with its offset from the anchor point."""
    from PIL import Image, ImageDraw

    face = font(size, bold)
    left, top, right, bottom = (int(v) for v in face.getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=face, fill=255, anchor=anchor)
    return mask, left, top


def _text(draw: ImageDraw.ImageDraw, shape: Text, scale: float) -> None:
    """Text from the mask cache: the same string at the same size is rasterised once per process."""
    mask, left, top = _glyphs(shape.text, text_size(shape, scale), shape.bold, shape.anchor)
    x, y = round(shape.x * scale) + left, round(shape.y * scale) + top
    draw.bitmap((x, y), mask, fill=shape.colour)


def shape_box(shape: Shape) -> tuple[float, float, float, float]:
    """A rectangle (page pixels) that holds everything a shape paints, strokes and glyphs included.

    >>> shape_box(Line(((0.0, 0.0), (10.0, 0.0)), "#000000", 2))
    (-4.0, -4.0, 14.0, 4.0)
    """
    return shape.extent


def _bounds(shapes: Iterable[Shape]) -> tuple[float, float, float, float]:
    """The rectangle that holds every shape's :func:`shape_box`, in one pass (a frame's rectangle is
    asked for thousands of times per animation)."""
    left = top = math.inf
    right = bottom = -math.inf
    for shape in shapes:
        x0, y0, x1, y1 = shape.extent
        if x0 < left:
            left = x0
        if y0 < top:
            top = y0
        if x1 > right:
            right = x1
        if y1 > bottom:
            bottom = y1
    return left, top, right, bottom


def _union(shapes: Sequence[Shape], width: int, height: int) -> Box | None:
    if not shapes:
        return None
    left, top, right, bottom = _bounds(shapes)
    x0 = max(math.floor(left), 0)
    y0 = max(math.floor(top), 0)
    x1 = min(math.ceil(right), width)
    y1 = min(math.ceil(bottom), height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def background_rgb(scene: Scene) -> Image.Image:
    """The static background at the scene's supersampled size."""
    from PIL import Image, ImageDraw

    ss = scene.supersample
    image = Image.new("RGB", (scene.width * ss, scene.height * ss), "#FFFFFF")
    draw_shapes(ImageDraw.Draw(image), scene.background, ss)
    return image


class Canvas:
    """The running canvas of a scene: background and the kept shapes of the frames so far.

    Frames are visited in order with :meth:`advance`; :meth:`frame` draws the current one whole,
    :meth:`changed` only where it differs from the one before (on a page of its own, which holds the
    frame shown: shapes are drawn at their page coordinates there too, so the part is the whole
    frame's pixels — Pillow's rasterising is not exact under a shift, even by whole pixels).
    """

    def __init__(self, scene: Scene, background: Image.Image | None = None, palette: Palette | None = None) -> None:
        from PIL import ImageDraw

        self.scene = scene
        self.ss = scene.supersample
        self.image = background_rgb(scene) if background is None else background
        # a palette canvas (1× scenes): frames come out as palette images, nothing is quantized per frame
        self.palette = palette if self.ss == 1 else None
        if self.palette is not None:
            self.image = self.palette.quantize(self.image)
        self._draw = ImageDraw.Draw(self.image)
        self._shown: ImageDraw.ImageDraw | None = None  # on the frame shown by changed(), at device size
        self.index = -1

    def advance(self) -> int:
        """Move to the next frame: its kept shapes go onto the canvas for good. Returns its index."""
        self.index += 1
        draw_shapes(self._draw, self.scene.kept_at(self.index), self.ss, palette=self.palette)
        return self.index

    def _reduced(self, image: Image.Image) -> Image.Image:
        return image.reduce(self.ss) if self.ss > 1 else image

    def frame(self) -> Image.Image:
        """The current frame, whole, at page size (a palette image on a palette canvas)."""
        return self._reduced(self._whole()._image)

    def _whole(self) -> ImageDraw.ImageDraw:
        """A drawing on a copy of the canvas holding the current frame, whole, at device size."""
        from PIL import ImageDraw

        draw = ImageDraw.Draw(self.image.copy())
        draw_shapes(draw, self.scene.frames[self.index], self.ss, palette=self.palette)
        return draw

    def changed(self) -> tuple[Box, Image.Image]:
        """Where the current frame differs from the previous one (the whole page for frame 0), and that part of it.

        The rectangle holds the previous frame's own shapes (now gone), this frame's kept ones
        and its own; outside it, the two frames are the same pixels.
        """
        scene, n, shown = self.scene, self.index, self._shown
        if shown is None or n == 0:
            box: Box = (0, 0, scene.width, scene.height)
            shown = self._shown = self._whole()
        else:
            box = changed_box(scene, n) or (0, 0, 1, 1)
            # the previous frame's own shapes go, this one's kept come; then its own, where the whole frame has them
            shown._image.paste(self.image.crop(self._device(box)), self._device(box)[:2])
            draw_shapes(shown, scene.frames[n], self.ss, palette=self.palette)
        return box, self._reduced(shown._image.crop(self._device(box)))

    def _device(self, box: Box) -> Box:
        return box[0] * self.ss, box[1] * self.ss, box[2] * self.ss, box[3] * self.ss


def changed_box(scene: Scene, n: int) -> Box | None:
    """The rectangle (page pixels) outside which frame ``n`` is frame ``n − 1``: it holds the shapes of
    frame ``n − 1`` (gone now), those frame ``n`` keeps and its own; ``None`` if there are none."""
    width, height = scene.width, scene.height
    boxes = [
        b
        for b in (
            _union(scene.frames[n - 1], width, height),
            _union(scene.kept_at(n), width, height),
            _union(scene.frames[n], width, height),
        )
        if b is not None
    ]
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def frames_rgb(
    scene: Scene,
    indices: Sequence[int] | None = None,
    *,
    background: Image.Image | None = None,
    palette: Palette | None = None,
) -> Iterator[Image.Image]:
    """Every frame (or those at ``indices``, in increasing order) as an RGB image at page size, one at a time.

    ``background`` is :func:`background_rgb`'s image when the caller has it already (it is drawn on).
    With a ``palette``, a 1× scene's frames are drawn on it and come as palette images (as the GIF
    writer draws them).
    """
    wanted = set(range(len(scene.frames)) if indices is None else indices)
    if not wanted:
        return
    last = max(wanted)
    canvas = Canvas(scene, background, palette)
    for _ in range(last + 1):
        n = canvas.advance()
        if n in wanted:
            yield canvas.frame()
