"""Write scenes to files: GIF, APNG, animated SVG, PNG or SVG frame folders, MP4.

The format comes from the path: ``.gif``, ``.png`` (animated PNG), ``.svg`` (one animated SVG),
``.mp4`` (needs the optional ``video`` extra, imageio-ffmpeg), or a path without a suffix, a
folder, for one PNG (or SVG) per frame.

Examples
--------
>>> import tempfile, pathlib
>>> from convarith import ConvSpec
>>> from convarith.render.frames import build_animation
>>> from convarith.render.scene import compose
>>> scene = compose(build_animation(ConvSpec.create("conv2d", kernel_size=3), (4, 4)))
>>> with tempfile.TemporaryDirectory() as tmp:
...     paths = write(scene, pathlib.Path(tmp) / "conv.gif")
...     [p.name for p in paths]
['conv.gif']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..errors import ConvArithError
from .raster import frames_rgb
from .scene import Scene
from .svg import animated_svg, frame_svg

__all__ = ["FORMATS", "Format", "format_for", "quantized_frames", "write"]

Format = Literal["gif", "apng", "svg", "mp4", "png-frames", "svg-frames"]
FORMATS: dict[str, Format] = {".gif": "gif", ".png": "apng", ".apng": "apng", ".svg": "svg", ".mp4": "mp4"}

# A GIF or APNG keeps every frame in memory while it is written: refuse beyond this.
MAX_BYTES = 1_500_000_000


def format_for(path: Path, frames: str = "png") -> Format:
    """The format a path asks for: its suffix, or a folder of ``frames`` (png or svg) without one."""
    suffix = path.suffix.lower()
    if not suffix or path.is_dir():
        if frames not in ("png", "svg"):
            raise ConvArithError("frames", "a folder takes png or svg frames", repr(frames))
        return "png-frames" if frames == "png" else "svg-frames"
    if suffix not in FORMATS:
        raise ConvArithError(
            "output", "must end in .gif, .png (APNG), .svg or .mp4, or be a folder for a frame sequence", str(path)
        )
    return FORMATS[suffix]


def _durations(n: int, fps: float, hold_last: float) -> list[int]:
    step = round(1000 / fps)
    return [step] * (n - 1) + [step + round(1000 * hold_last)]


def quantized_frames(scene: Scene) -> list[Any]:
    """Every frame as a palette image, all sharing one palette built once.

    The palette comes from the first, middle and last frames side by side (every colour the
    animation uses appears in them), and the frames are mapped onto it without dithering, which
    keeps flat fills flat and the GIF small.
    """
    from PIL import Image

    n = len(scene.frames)
    _check_memory(scene, bytes_per_pixel=4)
    samples = sorted({0, n // 2, n - 1})
    rgb = list(frames_rgb(scene))
    montage = Image.new("RGB", (scene.width * len(samples), scene.height), "#FFFFFF")
    for slot, index in enumerate(samples):
        montage.paste(rgb[index], (slot * scene.width, 0))
    palette = montage.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in rgb]


def _check_memory(scene: Scene, bytes_per_pixel: int) -> None:
    need = len(scene.frames) * scene.width * scene.height * bytes_per_pixel
    if need > MAX_BYTES:
        raise ConvArithError(
            "input",
            f"{len(scene.frames)} frames of {scene.width}×{scene.height} would need about {need / 1e9:.1f} GB "
            f"(limit {MAX_BYTES / 1e9:.1f} GB); draw a smaller input or write a frame folder",
            len(scene.frames),
        )


def write(
    scene: Scene,
    path: Path,
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
        From :func:`convarith.render.scene.compose`.
    path
        ``.gif``, ``.png`` (APNG), ``.svg`` (animated), ``.mp4``, or a folder.
    fps
        Frames per second; the last frame stays ``hold_last`` seconds longer.
    format
        Overrides the suffix.
    frames
        For a folder: ``png`` or ``svg`` stills.

    Raises
    ------
    ConvArithError
        For an unknown suffix, a bad ``fps``, too many frames for memory, or MP4 without
        imageio-ffmpeg.
    """
    if not fps > 0:
        raise ConvArithError("fps", "must be positive", fps)
    if not scene.frames:
        raise ConvArithError("frames", "an animation needs at least one frame", 0)
    kind = format or format_for(path, frames)
    if kind in ("png-frames", "svg-frames"):
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    durations = _durations(len(scene.frames), fps, hold_last)
    if kind == "gif":
        images = quantized_frames(scene)
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False, disposal=1
        )
        return [path]
    if kind == "apng" and len(scene.frames) == 1:
        next(frames_rgb(scene)).save(path, format="PNG")  # a still: plain full-colour PNG
        return [path]
    if kind == "apng":
        images = quantized_frames(scene)
        images[0].save(path, format="PNG", save_all=True, append_images=images[1:], duration=durations, loop=0)
        return [path]
    if kind == "svg":
        path.write_text(animated_svg(scene, fps, title, hold_last), encoding="utf-8")
        return [path]
    if kind == "mp4":
        return [_write_mp4(scene, path, fps)]
    width = len(str(len(scene.frames) - 1))
    written: list[Path] = []
    if kind == "svg-frames":
        for index in range(len(scene.frames)):
            target = path / f"frame_{index:0{width}d}.svg"
            target.write_text(frame_svg(scene, index, title), encoding="utf-8")
            written.append(target)
        return written
    for index, image in enumerate(frames_rgb(scene)):
        target = path / f"frame_{index:0{width}d}.png"
        image.save(target, optimize=False, compress_level=6)
        written.append(target)
    return written


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
