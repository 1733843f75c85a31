"""Write scenes to files: GIF, APNG, animated SVG, PNG or SVG frame folders, MP4.

The format comes from the path: ``.gif``, ``.png`` (animated PNG), ``.svg`` (one animated SVG),
``.mp4`` (needs the optional ``video`` extra, imageio-ffmpeg), or a path without a suffix, a
new or empty folder, for one PNG (or SVG) per frame, ``frame_000.png`` … (zero-padded).

A GIF is streamed: the first frame whole, every later one as the rectangle in which it differs
from the one before (:meth:`~convarith.render.raster.Canvas.changed`), its pixels that stay the
same transparent, all on one palette, so its memory does not grow with the frame count and each
frame costs what it changes. A large one is LZW-encoded on a second core as well, by a helper
process (:mod:`convarith.render._lzw`), in the same bytes.

Examples
--------
>>> import tempfile, pathlib
>>> from convarith import Layer
>>> from convarith.render.frames import build_animation
>>> from convarith.render.scene import compose
>>> scene = compose(build_animation(Layer("conv2d", kernel_size=3), (4, 4)))
>>> with tempfile.TemporaryDirectory() as tmp:
...     paths = write(scene, pathlib.Path(tmp) / "conv.gif")
...     [p.name for p in paths]
['conv.gif']
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from ..errors import ConvArithError
from .raster import Box, Canvas, Palette, background_rgb, frames_rgb
from .scene import Polygon, Scene
from .svg import animated_svg, frame_svg

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["FORMATS", "MAX_FPS", "MIN_FPS", "Format", "check_output", "format_for", "write"]

Format = Literal["gif", "apng", "svg", "mp4", "png-frames", "svg-frames"]
FORMATS: dict[str, Format] = {".gif": "gif", ".png": "apng", ".apng": "apng", ".svg": "svg", ".mp4": "mp4"}

MIN_FPS, MAX_FPS = 0.01, 100.0
"""Frame rates accepted (GIF and APNG store a frame's duration in ms, at most ~65 s)."""

# An APNG keeps every frame in memory while Pillow writes it: refuse beyond this.
MAX_BYTES = 1_500_000_000


def format_for(path: Path, frames: str = "png") -> Format:
    """The format a path asks for: its suffix, or a folder of ``frames`` (png or svg) without one.

    >>> format_for(Path("a.gif")), format_for(Path("out/frames"), "svg")
    ('gif', 'svg-frames')
    """
    suffix = path.suffix.lower()
    if not suffix:
        if frames not in ("png", "svg"):
            raise ConvArithError("frames", "a folder takes png or svg frames", repr(frames))
        return "png-frames" if frames == "png" else "svg-frames"
    if suffix not in FORMATS:
        raise ConvArithError(
            "output", "must end in .gif, .png (APNG), .svg or .mp4, or be a folder for a frame sequence", str(path)
        )
    return FORMATS[suffix]


def check_output(path: object, kind: Format) -> Path:
    """The output path, refused (``ConvArithError`` naming ``output``) when it cannot be written as asked.

    A file needs an existing folder and must not be a folder; a frame folder must be new (in an
    existing folder) or empty. An empty path and ``/`` are refused.

    >>> check_output("/no-such-folder/a.gif", "gif")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: output: its folder /no-such-folder does not exist; got '/no-such-folder/a.gif'
    """
    if not isinstance(path, str | os.PathLike):
        raise ConvArithError("output", "must be a path", type(path).__name__)
    text = os.fspath(path)
    if not isinstance(text, str) or text.strip() in ("", ".", "/") or Path(text) == Path(Path(text).anchor or "."):
        raise ConvArithError("output", "must name a file or a new folder, not an empty path or the root", repr(text))
    target = Path(text)
    parent = target.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConvArithError("output", f"its folder {parent} {what}", repr(text))
    if kind in ("png-frames", "svg-frames"):
        if target.exists() and not target.is_dir():
            raise ConvArithError("output", "a frame sequence needs a folder, and this is a file", repr(text))
        if target.is_dir() and any(target.iterdir()):
            raise ConvArithError("output", "the frame folder must be new or empty", repr(text))
        if not os.access(target if target.is_dir() else parent, os.W_OK):
            raise ConvArithError("output", "cannot be written (permission denied)", repr(text))
    else:
        if target.is_dir():
            raise ConvArithError("output", "is a folder; give a file name", repr(text))
        if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise ConvArithError("output", "cannot be written (permission denied)", repr(text))
    return target


def check_fps(fps: object) -> float:
    """Frames per second, a finite number from :data:`MIN_FPS` to :data:`MAX_FPS`.

    >>> check_fps(2)
    2.0
    """
    if isinstance(fps, bool) or not isinstance(fps, int | float):
        raise ConvArithError("fps", "must be a number", repr(fps))
    value = float(fps)
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise ConvArithError("fps", f"must be from {MIN_FPS} to {MAX_FPS:g} frames per second", fps)
    return value


def _durations(n: int, fps: float, hold_last: float) -> list[int]:
    step = round(1000 / fps)
    return [step] * (n - 1) + [step + round(1000 * hold_last)]


PALETTE_SAMPLE = 1_000_000
"""Pixels the palette is chosen from at most (a larger montage is subsampled, nearest pixel)."""


def _colours(scene: Scene) -> set[str]:
    """Every colour a shape of the scene paints (its frames' own: those it says they can paint, if it does)."""
    colours: set[str] = set(scene.frame_colours or ())
    frames = scene.frames if scene.frame_colours is None else ()
    for group in (scene.background, *scene.kept, *frames):
        for shape in group:
            if isinstance(shape, Polygon):
                colours.update(c for c in (shape.fill, shape.outline) if c is not None)
            else:
                colours.add(shape.colour)
    return {c.upper() for c in colours}


def _palette(scene: Scene, background: Image.Image | None = None) -> Image.Image:
    """One palette for every frame: every colour a shape paints exactly, the rest (anti-aliased
    edges and text) by Pillow's octree quantizer over the first, middle and last frames side by
    side (first and middle of a long animation: by then its kept shapes have shown their blends);
    no dithering, which keeps flat fills flat and the GIF small.

    The octree, not a median cut: on the gallery's kinds of frame it gives half the error (mean
    absolute error per channel against the frames drawn in full colour: 0.69–0.85 against
    1.26–2.23) in a quarter of the time.
    """
    from PIL import Image

    n = len(scene.frames)
    samples = sorted({0, n // 2, n - 1} if n <= 100 else {0, n // 2})  # long ones: the kept shapes of half suffice
    montage = Image.new("RGB", (scene.width * len(samples), scene.height), "#FFFFFF")
    for slot, image in enumerate(frames_rgb(scene, samples, background=background)):
        montage.paste(image, (slot * scene.width, 0))
    pixels = montage.width * montage.height
    if pixels > PALETTE_SAMPLE:
        shrink = math.sqrt(PALETTE_SAMPLE / pixels)
        size = (max(round(montage.width * shrink), 1), max(round(montage.height * shrink), 1))
        montage = montage.resize(size, Image.Resampling.NEAREST)
    exact = sorted(_colours(scene))
    if len(exact) > 160:  # too many to keep them all: quantize everything
        return montage.quantize(colors=255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    rest = montage.quantize(colors=255 - len(exact), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    entries = [tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in exact]
    flat = rest.getpalette() or []
    for k in range(0, min(len(flat), 3 * (255 - len(exact))), 3):
        rgb = (flat[k], flat[k + 1], flat[k + 2])
        if rgb not in entries:
            entries.append(rgb)
    palette = Image.new("P", (1, 1))
    palette.putpalette([v for rgb in entries for v in rgb])
    return palette


HELPER_PIXELS = 20_000_000
"""Changed pixels (all frames' rectangles) from which a GIF is LZW-encoded with a helper process
on a second core as well: its start-up, about 0.1 s of that core, is then a fraction of the
encoding it takes over (Pillow: 5–6 ns a pixel)."""


def _changed_pixels(scene: Scene, samples: int = 32) -> int:
    """About how many pixels the GIF's frames hold: the frame count times the mean rectangle of
    ``samples`` frames spread over the animation (:meth:`Canvas.changed`'s rectangles)."""
    from .raster import changed_box

    n, width, height = len(scene.frames), scene.width, scene.height
    if n < 2:
        return width * height
    picks = sorted({1 + k * (n - 2) // (samples - 1) for k in range(samples)})
    area = 0
    for k in picks:
        box = changed_box(scene, k)
        area += 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])
    return width * height + area * (n - 1) // len(picks)


def _rectangles(scene: Scene) -> Iterator[tuple[Box, Image.Image]]:
    """Each frame as the GIF encodes it: the rectangle in which it differs from the one before (the
    whole page for the first) and its pixels on the GIF's one palette. The palette is chosen at the
    first ``next``."""
    background = background_rgb(scene)
    palette = Palette(_palette(scene, background.copy()))
    canvas = Canvas(scene, background, palette)  # draws on the palette at 1×
    for _ in range(len(scene.frames)):
        canvas.advance()
        box, part = canvas.changed()
        yield box, part if part.mode == "P" else palette.quantize(part)


def _gif(scene: Scene, fp: IO[bytes], durations: list[int]) -> None:
    from PIL import GifImagePlugin

    from ._lzw import Encoder, available

    bound = len(scene.frames) * scene.width * scene.height  # no frame is larger than the page
    helper = bound >= HELPER_PIXELS and available() and _changed_pixels(scene) >= HELPER_PIXELS
    # started first, its start-up overlaps choosing the palette
    with Encoder[_Tag](helper) as encoder:
        transparent = None
        for n, (box, image) in enumerate(_rectangles(scene)):
            if n == 0:
                header, _ = GifImagePlugin.getheader(image, info={"loop": 0, "duration": durations[0]})
                for block in header:
                    fp.write(block)
                transparent = _free_index(image, header)
                if transparent is not None:
                    encoder.page(scene.width, scene.height, transparent)
            tag = (box[:2], image.size, durations[n], transparent if n else None)  # the first frame is whole
            for done, lzw in encoder.put(image, tag, box[:2]):
                fp.write(_gif_frame(lzw, *done))
        for done, lzw in encoder.finish():
            fp.write(_gif_frame(lzw, *done))
    fp.write(b";")


_Tag = tuple[tuple[int, int], tuple[int, int], int, int | None]
"""A GIF frame's offset, size, duration and transparent index, as :func:`_gif_frame` takes them."""


def _free_index(first: Image.Image, header: list[bytes]) -> int | None:
    """An index of the GIF's colour table that no pixel has, to mark the pixels a frame does not change
    (between the kernel's footprint and the output cell it feeds, most of its rectangle): as one
    index they LZW-encode in 20 % less time, to half the bytes. ``None`` if the palette fills the table."""
    used = len(first.getpalette() or []) // 3  # every pixel is drawn on the palette: an index below this
    flags = b"".join(header)[10]  # the logical screen's packed fields
    table = 2 << (flags & 7) if flags & 0x80 else 0  # the global colour table's size
    return used if used < table else None


def _gif_frame(
    lzw: bytes, offset: tuple[int, int], size: tuple[int, int], duration: int, transparent: int | None = None
) -> bytes:
    """One GIF frame of a ``P`` image of ``size`` whose LZW data (Pillow's encoder, sub-blocked) is
    ``lzw``: its graphic control (``duration`` ms, drawn over the frame before: disposal 1; the
    ``transparent`` index, if any, leaves the pixel before), its descriptor at ``offset`` (no local
    palette), its data.

    The bytes ``PIL.GifImagePlugin.getdata`` writes, without its per-call set-up (a class, a
    collector, the image's encoder info), which cost as much as encoding a small rectangle.
    """
    (x, y), (w, h) = offset, size
    return b"".join(
        (
            struct.pack(
                "<3sBHBB", b"!\xf9\x04", 1 << 2 | (transparent is not None), duration // 10, transparent or 0, 0
            ),
            struct.pack("<sHHHHBB", b",", x, y, w, h, 0, 8),  # 8: the LZW code size of a 256-colour palette
            lzw,
            b"\0",
        )
    )


def _check_memory(scene: Scene, bytes_per_pixel: int) -> None:
    need = len(scene.frames) * scene.width * scene.height * bytes_per_pixel
    if need > MAX_BYTES:
        raise ConvArithError(
            "output",
            f"an APNG of {len(scene.frames)} frames of {scene.width}×{scene.height} would need about "
            f"{need / 1e9:.1f} GB while written (limit {MAX_BYTES / 1e9:.1f} GB); write a .gif, .mp4 or a frame folder",
            len(scene.frames),
        )


def write(
    scene: Scene,
    path: str | os.PathLike[str],
    *,
    fps: float = 2.0,
    format: Format | None = None,
    frames: str = "png",
    title: str = "convarith",
    hold_last: float = 1.0,
) -> list[Path]:
    """Write a scene; returns the files written.

    Parameters
    ----------
    scene
        From :func:`convarith.render.scene.compose` (or a still from :mod:`convarith.render.maps`).
    path
        ``.gif``, ``.png`` (APNG), ``.svg`` (animated), ``.mp4``, or a new or empty folder.
    fps
        Frames per second (0.01 … 100); the last frame stays ``hold_last`` seconds (0 … 60) longer.
    format
        Overrides the suffix.
    frames
        For a folder: ``png`` or ``svg`` stills, named ``frame_0 …`` zero-padded to one width.

    Raises
    ------
    ConvArithError
        For an unknown suffix, a path that cannot be written as asked (``output``), a bad
        ``fps`` or ``hold_last``, an APNG too large for memory, or MP4 without imageio-ffmpeg.
    """
    fps = check_fps(fps)
    if isinstance(hold_last, bool) or not isinstance(hold_last, int | float) or not 0 <= hold_last <= 60:
        raise ConvArithError("hold_last", "must be from 0 to 60 seconds", hold_last)
    if not scene.frames:
        raise ConvArithError("frames", "an animation needs at least one frame", 0)
    if not isinstance(path, str | os.PathLike):
        raise ConvArithError("output", "must be a path", type(path).__name__)
    kind = format or format_for(Path(os.fspath(path)), frames)
    if kind not in FORMATS.values() and kind not in ("png-frames", "svg-frames"):
        raise ConvArithError("format", "must be gif, apng, svg, mp4, png-frames or svg-frames", repr(kind))
    target = check_output(path, kind)
    if kind == "apng" and len(scene.frames) > 1:
        _check_memory(scene, bytes_per_pixel=1)
    created: list[Path] = []
    try:
        return _write(scene, target, kind, fps, title, float(hold_last), created)
    except OSError as err:
        for done in created:
            done.unlink(missing_ok=True)
        raise ConvArithError("output", f"cannot be written ({err.strerror or err})", str(target)) from None


def _write(
    scene: Scene, path: Path, kind: Format, fps: float, title: str, hold_last: float, created: list[Path]
) -> list[Path]:
    durations = _durations(len(scene.frames), fps, hold_last)
    if kind in ("gif", "apng", "svg", "mp4"):
        created.append(path)
    if kind == "gif":
        with path.open("wb") as fp:
            _gif(scene, fp, durations)
        return [path]
    if kind == "apng" and len(scene.frames) == 1:
        next(frames_rgb(scene)).save(path, format="PNG")  # a still: plain full-colour PNG
        return [path]
    if kind == "apng":
        from PIL import Image

        palette = _palette(scene)
        images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in frames_rgb(scene)]
        images[0].save(path, format="PNG", save_all=True, append_images=images[1:], duration=durations, loop=0)
        return [path]
    if kind == "svg":
        path.write_text(animated_svg(scene, fps, title, hold_last), encoding="utf-8")
        return [path]
    if kind == "mp4":
        return [_write_mp4(scene, path, fps)]
    path.mkdir(exist_ok=True)
    width = len(str(len(scene.frames) - 1))
    if kind == "svg-frames":
        for index in range(len(scene.frames)):
            target = path / f"frame_{index:0{width}d}.svg"
            created.append(target)
            target.write_text(frame_svg(scene, index, title), encoding="utf-8")
        return list(created)
    for index, image in enumerate(frames_rgb(scene)):
        target = path / f"frame_{index:0{width}d}.png"
        created.append(target)
        image.save(target, optimize=False, compress_level=6)
    return list(created)


def _write_mp4(scene: Scene, path: Path, fps: float) -> Path:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConvArithError(
            "output",
            "MP4 needs the optional extra 'video' (pip install 'convarith[video]', i.e. imageio-ffmpeg)",
            str(path),
        ) from None
    from PIL import Image

    # H.264 in yuv420p wants even sizes
    width, height = scene.width + scene.width % 2, scene.height + scene.height % 2
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, macro_block_size=1)
    writer.send(None)
    try:
        for image in frames_rgb(scene):
            canvas = Image.new("RGB", (width, height), "#FFFFFF")
            canvas.paste(image, (0, 0))
            writer.send(canvas.tobytes())
    finally:
        writer.close()
    return path
