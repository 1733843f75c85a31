"""Every writer produces files that decode, with the right frame count, size and pixels; the
streamed GIF is the frames the raster model draws, in the bytes Pillow's GIF writer gives, and
drawing on a palette is ImageDraw's drawing; composition is linear (each frame's shapes are
bounded by its window, never by its index); numbers fit their cells; bad paths and frame rates are
one-line errors; the matrix and overlap pictures agree with C, the findings and PyTorch."""

from __future__ import annotations

import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from convarith import ConvArithError, Layer
from convarith.ops.matrix import conv_matrix
from convarith.render import animate, build_animation, compose, draw_matrix, draw_overlap, gallery, write, writers
from convarith.render._lzw import encode
from convarith.render.frames import View
from convarith.render.gallery_items import GALLERY, TOUR_PICTURES, tour_pictures
from convarith.render.maps import matrix_scene, matrix_taps, overlap_counts, overlap_scene
from convarith.render.raster import Canvas, Palette, draw_shapes, font, frames_rgb, text_size
from convarith.render.scene import Line, Polygon, Text, format_value
from convarith.render.style import CELL, FOOTPRINT
from convarith.render.writers import _gif_frame, _palette

SVG = "{http://www.w3.org/2000/svg}"
LAYER = Layer("conv2d", kernel_size=3, stride=2, padding=1)


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return compose(build_animation(LAYER, (5, 5)))


def test_gif(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (path,) = write(scene, tmp_path / "a.gif", fps=4)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 9 and im.size == (scene.width, scene.height)
        im.seek(1)
        assert im.info["duration"] == 250
        assert im.info.get("loop") == 0


@pytest.mark.parametrize("style", ["guide", "flat"])
def test_streamed_gif_frames_are_the_drawn_frames(tmp_path: Path, style: str) -> None:
    """Each GIF frame, written as the rectangle that changed, decodes to the whole frame drawn."""
    layer = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
    for view in ("direct", "scatter"):
        scene = compose(build_animation(layer, (3, 3), view=view, numeric=True), style)
        (path,) = write(scene, tmp_path / f"{view}.gif")
        palette = Palette(_palette(scene))
        with Image.open(path) as im:
            assert im.n_frames == len(scene.frames)
            # whole frames, drawn as the writer draws them (on the palette at 1×, else quantized)
            for n, expected in enumerate(frames_rgb(scene, palette=palette)):
                im.seek(n)
                assert expected.mode == ("P" if scene.supersample == 1 else "RGB")
                want = np.asarray((expected if expected.mode == "P" else palette.quantize(expected)).convert("RGB"))
                np.testing.assert_array_equal(np.asarray(im.convert("RGB")), want)


def test_streamed_guide_gif_at_1x_decodes_to_the_drawn_frames(tmp_path: Path) -> None:
    """Large guide pages are drawn at 1× on the palette (rays, footprints, numbers): each frame decodes as drawn."""
    scene = compose(build_animation(Layer("conv2d", kernel_size=3, padding=1), (5, 5), numeric=True), "guide")
    scene.supersample = 1  # as compose draws pages over 0.6 Mpx (the 40×40 numeric animation)
    (path,) = write(scene, tmp_path / "guide.gif")
    palette = Palette(_palette(scene))
    with Image.open(path) as im:
        assert im.n_frames == len(scene.frames) == 25
        for n, expected in enumerate(frames_rgb(scene, palette=palette)):
            im.seek(n)
            assert expected.mode == "P"
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(expected.convert("RGB")))


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (130, 610), (1285, 40)])
@pytest.mark.parametrize("transparent", [None, 243, 0])
def test_gif_frames_are_the_bytes_pillow_writes(size: tuple[int, int], transparent: int | None) -> None:
    """The streamed frames skip Pillow's per-call set-up; the bytes are the ones ``getdata`` writes."""
    from PIL import GifImagePlugin

    rng = np.random.default_rng(size[0])
    pixels = np.where(rng.random(size[::-1]) < 0.8, 7, rng.integers(0, 243, size[::-1])).astype(np.uint8)
    image = Image.fromarray(pixels).convert("P")
    image.putpalette(list(rng.integers(0, 256, 3 * 243)))
    extra = {} if transparent is None else {"transparency": transparent}
    for offset, duration in (((0, 0), 500), ((248, 44), 10), ((3, 1000), 100_000 + 1000)):
        want = b"".join(GifImagePlugin.getdata(image, offset=offset, duration=duration, disposal=1, **extra))
        assert _gif_frame(encode(image), offset, image.size, duration, transparent) == want


def test_a_gif_frame_leaves_transparent_the_pixels_it_does_not_change(tmp_path: Path) -> None:
    """Every frame after the first marks an index no drawn pixel has as transparent (the encoder puts it
    exactly where a frame repeats the one before: tests/test_gif_encoder.py), and the file decodes to
    the drawn frames (above) in fewer bytes than without it."""
    scene = compose(build_animation(Layer("conv2d", kernel_size=3, padding=1), (6, 6), numeric=True))
    scene.supersample = 1  # drawn on the palette, as large pages are
    (path,) = write(scene, tmp_path / "a.gif")
    palette = Palette(_palette(scene))
    free = len(palette.image.getpalette() or []) // 3
    assert max(int(np.asarray(frame).max()) for frame in frames_rgb(scene, palette=palette)) < free
    # each frame's graphic control block (its terminator and the image descriptor follow it)
    controls = re.findall(rb"!\xf9\x04(.)..(.)\x00,", path.read_bytes(), re.DOTALL)
    assert len(controls) == len(scene.frames)
    assert controls[0][0][0] & 1 == 0  # the first frame is whole
    assert all(flags[0] & 1 and index[0] == free for flags, index in controls[1:])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writers, "_free_index", lambda first, header: None)
        (opaque,) = write(scene, tmp_path / "opaque.gif")
    assert path.stat().st_size < 0.8 * opaque.stat().st_size
    with Image.open(path) as im, Image.open(opaque) as same:
        for n in range(len(scene.frames)):
            im.seek(n)
            same.seek(n)
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(same.convert("RGB")))


def test_palette_drawing_is_imagedraws() -> None:
    """Shapes drawn on a palette image through Pillow's core are the pixels ImageDraw draws with the same indices."""
    from PIL import ImageDraw

    def shapes_at(dx: float, dy: float) -> list[Polygon | Line]:
        def at(k: int, *points: tuple[float, float]) -> tuple[tuple[float, float], ...]:
            # side by side, none hiding another
            return tuple((x + 50 * (k % 4) + dx, y + 40 * (k // 4) + dy) for x, y in points)

        quad = ((3.2, 4.7), (40.5, 6.1), (38.9, 30.4), (5.5, 28.8))
        return [
            Polygon(at(0, *quad), "#0072B2"),
            Polygon(at(1, *quad), "#E69F00", "#000000", 1.5),
            Polygon(at(2, *quad), None, "#009E73", 1.0, "dash"),
            Polygon(at(3, *quad), "#56B4E9", "#D55E00", 3.0),  # width 6 at 2×: curved joints
            Line(at(4, (1.0, 1.0), (45.3, 33.3)), "#CC79A7", 1.2),
            Line(at(5, (2.0, 30.0), (44.0, 2.5), (20.0, 20.0)), "#000000", 2.6),
            Line(at(6, (0.0, 16.0), (48.0, 16.5)), "#5D6D7E", 1.0, "dot"),
        ]

    colours = ["#FFFFFF", *sorted({c for s in shapes_at(0, 0) for c in _colours_of(s)})]
    flat = [int(c[k : k + 2], 16) for c in colours for k in (1, 3, 5)]
    palette = Palette(_palette_image(flat))
    for scale, shapes in ((1, shapes_at(0.0, 0.0)), (2, shapes_at(-1.5, 2.5))):
        fast = _palette_image(flat, (420, 170), palette.white)
        expected = fast.copy()
        draw_shapes(ImageDraw.Draw(fast), shapes, scale, palette)
        for shape in shapes:
            _imagedraw(ImageDraw.Draw(expected), shape, scale, palette)
        assert fast.tobytes() == expected.tobytes()
        assert len(set(fast.tobytes())) == len(colours)  # every colour drawn


def _colours_of(shape: Polygon | Line) -> list[str]:
    return [c for c in ((shape.fill, shape.outline) if isinstance(shape, Polygon) else (shape.colour,)) if c]


def _palette_image(flat: list[int], size: tuple[int, int] = (1, 1), index: int = 0) -> Image.Image:
    image = Image.new("P", size, index)
    image.putpalette(flat)
    return image


def _imagedraw(draw, shape, scale, palette) -> None:  # type: ignore[no-untyped-def]
    """A shape drawn with ImageDraw's own calls, as draw_shapes did before its palette fast path."""
    from convarith.render.raster import _dashed

    points = [(x * scale, y * scale) for x, y in shape.points]
    if isinstance(shape, Polygon):
        if shape.fill is not None:
            draw.polygon(points, fill=palette.index(shape.fill))
        colour, points = shape.outline, [*points, points[0]]
    else:
        colour = shape.colour
    if colour is None:
        return
    width = max(round(shape.width * scale), 1)
    if shape.dash is None:
        draw.line(points, fill=palette.index(colour), width=width, joint="curve")
    else:
        _dashed(draw, points, palette.index(colour), width, shape.dash, scale)


def test_changed_rectangles_hold_every_changed_pixel() -> None:
    scene = compose(build_animation(Layer("conv2d", kernel_size=3, padding=1), (6, 6), numeric=True))
    canvas = Canvas(scene)
    previous = None
    for full in frames_rgb(scene):
        canvas.advance()
        box, part = canvas.changed()
        now = np.asarray(full)
        np.testing.assert_array_equal(np.asarray(part), now[box[1] : box[3], box[0] : box[2]])
        if previous is not None:
            outside = np.ones(now.shape[:2], bool)
            outside[box[1] : box[3], box[0] : box[2]] = False
            np.testing.assert_array_equal(now[outside], previous[outside])
            assert (box[2] - box[0]) * (box[3] - box[1]) < now.shape[0] * now.shape[1] / 2
        previous = now


@pytest.mark.parametrize(
    ("layer", "shape", "view"),
    [
        (Layer("conv2d", kernel_size=3), (12, 12), "direct"),
        (Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1), (6, 6), "direct"),
        (Layer("conv_transpose2d", kernel_size=3, stride=2), (6, 6), "scatter"),
        (Layer("avg_pool2d", kernel_size=2, stride=1), (3, 9, 9), "direct"),
    ],
)
@pytest.mark.parametrize("style", ["guide", "flat"])
def test_composition_is_linear(layer: Layer, shape: tuple[int, ...], view: str, style: str) -> None:
    """A frame's shapes are bounded by what it touches: never by how many frames came before."""
    anim = build_animation(layer, shape, view=view, numeric=True)  # type: ignore[arg-type]
    scene = compose(anim, style)  # type: ignore[arg-type]
    panels = anim.upper.channels * (math.prod(anim.upper.shape[:-2]) if len(anim.upper.shape) > 2 else 1)
    for frame, shown, kept in zip(anim.frames, scene.frames, scene.kept, strict=True):
        touched = len(frame.lower) + len(frame.upper)
        assert len(shown) <= 3 * touched + 4 * (panels + 1) + 2
        assert len(kept) <= 4 * len(frame.upper)
    sizes = [len(s) + len(k) for s, k in zip(scene.frames, scene.kept, strict=True)]
    assert max(sizes) <= 2 * min(sizes) + 8  # the last frame is no heavier than the first


def test_guide_rays_are_clipped_by_the_output_plane() -> None:
    anim = build_animation(Layer("conv2d", kernel_size=3), (5, 5))
    scene = compose(anim, "guide")
    upper = [s.points for s in scene.background if isinstance(s, Polygon) and s.fill == CELL["output"].fill]
    upper = upper[:9]  # the 3×3 output cells (the legend's sample box comes last)
    rays = [s for frame in scene.frames for s in frame if not isinstance(s, Polygon | Text)]
    assert len(rays) >= 4 * len(scene.frames)
    for ray in rays:
        (a, b) = ray.points
        for t in (0.05, 0.5, 0.95):  # no visible part of a ray lies on the output plane
            point = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
            assert not any(_inside(_shrunk(q), point) for q in upper)
    assert not any(s in scene.frames[0] for s in scene.background)  # the plane is drawn once, not per frame


def _shrunk(quad):  # type: ignore[no-untyped-def]
    cx, cy = sum(p[0] for p in quad) / 4, sum(p[1] for p in quad) / 4
    return [(cx + (x - cx) * 0.98, cy + (y - cy) * 0.98) for x, y in quad]


@pytest.mark.parametrize("style", ["guide", "flat"])
def test_numbers_fit_their_cells(style: str) -> None:
    values = np.array([[-12345.678, 1e7, -0.0012], [123.456, -98765.0, 3.0], [-7.25, 0.5, 1e-9]])
    weight = np.array([[-1234.5, 0.001], [-3.5, 99999.0]])
    for layer, x, w in [
        (Layer("conv2d", kernel_size=2), values, weight),
        (Layer("conv_transpose2d", kernel_size=2, stride=2), values, weight),
        (Layer("max_pool2d", kernel_size=2, stride=1), values, None),
    ]:
        anim = build_animation(layer, (3, 3), input_values=x, kernel_values=w)
        scene = compose(anim, style)  # type: ignore[arg-type]
        cells = [s.points for s in scene.background if isinstance(s, Polygon) and len(s.points) == 4]
        texts = [s for group in (*scene.frames, *scene.kept, scene.background) for s in group if isinstance(s, Text)]
        numbers = [t for t in texts if t.anchor == "mm" and t.text.replace("−", "-").lstrip("-")[:1].isdigit()]
        assert len(numbers) > 10
        for t in numbers:
            quad = next(q for q in cells if _inside(q, (t.x, t.y)))
            width = font(text_size(t, 1), t.bold).getlength(t.text)
            lo, hi = max(quad[0][0], quad[3][0]), min(quad[1][0], quad[2][0])
            assert lo - 0.5 <= t.x - width / 2 and t.x + width / 2 <= hi + 0.5, (t.text, t.size, lo, hi)


def _inside(quad, point) -> bool:  # type: ignore[no-untyped-def]
    x, y = point
    sign = [
        (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) for a, b in zip(quad, [*quad[1:], quad[0]], strict=True)
    ]
    return all(s >= 0 for s in sign) or all(s <= 0 for s in sign)


def test_format_value_abbreviates() -> None:
    assert [format_value(v) for v in (12345.0, -98765.4, 0.001, 1e-9, 9999.0)] == [
        "1.2e4",
        "−9.9e4",
        "1e−3",
        "1e−9",
        "9999",
    ]
    assert float(format_value(-98765.4).replace("−", "-")) == pytest.approx(-98765.4, rel=0.01)


def test_apng(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (path,) = write(scene, tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and getattr(im, "is_animated", False)
        assert im.n_frames == 9 and im.size == (scene.width, scene.height)


def test_png_and_svg_frame_folders_are_zero_padded(tmp_path: Path) -> None:
    scene = compose(build_animation(Layer("conv1d", kernel_size=2), (12,)))
    pngs = write(scene, tmp_path / "frames")
    assert [p.name for p in pngs] == [f"frame_{n:02d}.png" for n in range(11)]
    assert sorted(p.name for p in pngs) == [p.name for p in pngs]
    with Image.open(pngs[3]) as im:
        assert im.size == (scene.width, scene.height)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(next(frames_rgb(scene, [3]))))
    svgs = write(scene, tmp_path / "stills", frames="svg")
    assert [p.name for p in svgs] == [f"frame_{n:02d}.svg" for n in range(11)]
    root = ET.parse(svgs[4]).getroot()
    assert [g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "frame"] == ["frame-4"]


def test_animated_svg_keeps_and_shows(tmp_path: Path) -> None:
    scene = compose(build_animation(LAYER, (5, 5), numeric=True))
    (path,) = write(scene, tmp_path / "a.svg", fps=2)
    root = ET.parse(path).getroot()
    assert root.get("width") == str(scene.width) and root.get("height") == str(scene.height)
    frames = [g for g in root.iter(f"{SVG}g") if g.get("class") == "frame"]
    kept = [g for g in root.iter(f"{SVG}g") if g.get("class") == "kept"]
    assert len(frames) == len(kept) == 9
    starts = []
    for n, group in enumerate(frames):
        (anim,) = group.findall(f"{SVG}animate")
        assert anim.get("attributeName") == "visibility" and anim.get("repeatCount") == "indefinite"
        values, times = anim.get("values").split(";"), [float(t) for t in anim.get("keyTimes").split(";")]
        assert times == sorted(times) and times[0] == 0
        starts.append(times[values.index("visible")])
        assert group.get("visibility") == ("visible" if n == 0 else "hidden")
        # the output value computed in frame n stays from then on (its text is in kept group n)
        texts = [t.text for t in kept[n].iter(f"{SVG}text")]
        assert texts == [format_value(scene_value(n))]
        if n:
            (keep,) = kept[n].findall(f"{SVG}animate")
            assert keep.get("values") == "hidden;visible" and float(keep.get("keyTimes").split(";")[1]) == starts[n]
    assert starts == sorted(starts) and len(set(starts)) == 9


def scene_value(n: int) -> float:
    anim = build_animation(LAYER, (5, 5), numeric=True)
    assert anim.values is not None
    return anim.values.frame_values[n]


def test_mp4_without_the_extra_names_it(tmp_path: Path, scene, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the extra were not installed
    with pytest.raises(ConvArithError, match="video"):
        write(scene, tmp_path / "a.mp4")


def test_mp4_decodes_with_every_frame(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    import imageio_ffmpeg

    (path,) = write(scene, tmp_path / "a.mp4")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    assert tuple(meta["size"]) == (scene.width + scene.width % 2, scene.height + scene.height % 2)  # even for H.264
    assert frames == len(scene.frames)


def test_bad_outputs_are_refused_before_writing(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.gif").mkdir()
    cases = {
        "a.jpeg": "must end in",
        "missing/a.gif": "does not exist",
        "file/a.gif": "is not a folder",
        "dir.gif": "is a folder",
        "file": "this is a file",
        "full": "new or empty",
    }
    for name, message in cases.items():
        with pytest.raises(ConvArithError, match=message) as err:
            write(scene, tmp_path / name)
        assert err.value.param == "output"
    for path in ("", "/", "."):
        with pytest.raises(ConvArithError, match="empty path or the root") as err:
            write(scene, path)
        assert err.value.param == "output"
    with pytest.raises(ConvArithError, match="output"):
        write(scene, "/proc/convarith-test.gif")  # unwritable even for root
    assert not Path("/proc/convarith-test.gif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.gif", "file", "full"]
    assert [p.name for p in write(scene, tmp_path / "new")][:1] == ["frame_0.png"]  # a new folder is fine
    (tmp_path / "empty").mkdir()
    assert len(write(scene, tmp_path / "empty")) == 9  # and an empty one


@pytest.mark.parametrize("fps", [0, -1, 1e-9, 0.009, 101, math.inf, math.nan, True, "2"])
def test_bad_fps(tmp_path: Path, scene, fps: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConvArithError, match="fps") as err:
        write(scene, tmp_path / "a.gif", fps=fps)  # type: ignore[arg-type]
    assert err.value.param == "fps" and not (tmp_path / "a.gif").exists()


def test_extreme_fps_durations(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (slow,) = write(scene, tmp_path / "slow.gif", fps=0.01)
    (fast,) = write(scene, tmp_path / "fast.gif", fps=100)
    with Image.open(slow) as im:
        assert im.info["duration"] == 100_000
    with Image.open(fast) as im:
        assert im.info["duration"] == 10


def test_animate_takes_a_layer_or_a_bound_layer(tmp_path: Path) -> None:
    layer = Layer("conv1d", kernel_size=3, stride=2)
    (path,) = animate(layer, (7,), tmp_path / "s.gif", style="flat", numeric=True)
    with Image.open(path) as im:
        assert im.n_frames == 3
    (path,) = animate(layer.bind((2, 7)), None, tmp_path / "c.gif")
    with Image.open(path) as im:
        assert im.n_frames == 6  # 2 channels from the input shape; without out_channels the layer keeps 2
    with pytest.raises(ConvArithError, match="style"):
        animate(layer, (7,), tmp_path / "x.gif", style="fancy")  # type: ignore[arg-type]


def _pixel(image, quad):  # type: ignore[no-untyped-def]
    x = sum(p[0] for p in quad) / 4
    y = sum(p[1] for p in quad) / 4
    return "#{:02X}{:02X}{:02X}".format(*image.getpixel((round(x), round(y))))


def _close(a: str, b: str, tol: int = 24) -> bool:
    return all(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) <= tol for i in (1, 3, 5))


@pytest.mark.parametrize("style", ["guide", "flat"])
def test_odd_transposed_picture_puts_the_extra_cells_bottom_right(style: str) -> None:
    item = next(i for i in GALLERY if i.name == "padding_strides_odd_transposed")
    anim = build_animation(item.layer, item.input)
    assert anim.lower.shape == (8, 8) and anim.upper.shape == (6, 6) and len(anim.frames) == 36
    scene = compose(anim, style)  # type: ignore[arg-type]
    (first,) = frames_rgb(scene, [0])
    quads = _lower_quads(scene, anim)
    extra = [cell for cell in anim.lower.cells() if anim.lower.kind(cell) == "extra"]
    assert set(extra) == {(7, c) for c in range(8)} | {(r, 7) for r in range(8)}
    inputs = [cell for cell in anim.lower.cells() if anim.lower.kind(cell) == "input"]
    # on the page: below and right of every input cell, and drawn in the extra look
    low = max(max(p[1] for p in quads[c]) for c in inputs)
    right = max(max(p[0] for p in quads[c]) for c in inputs)
    for cell in extra:
        centre = [sum(p[k] for p in quads[cell]) / 4 for k in (0, 1)]
        assert centre[1] > low or centre[0] > right
    assert _close(_pixel(first, quads[(7, 3)]), CELL["extra"].fill)
    assert _close(_pixel(first, quads[(3, 7)]), CELL["extra"].fill)
    assert _close(_pixel(first, quads[(1, 1)]), FOOTPRINT["input"].fill)  # frame 0 covers it
    assert _close(_pixel(first, quads[(2, 4)]), CELL["zero"].fill)
    assert _close(_pixel(first, quads[(5, 5)]), CELL["input"].fill)


def _lower_quads(scene, anim):  # type: ignore[no-untyped-def]
    """The lower grid's quads, in background order (cells are drawn row-major, first)."""
    polys = [s for s in scene.background if isinstance(s, Polygon) and s.outline is not None]
    cells = list(anim.lower.cells())
    return {cell: poly.points for cell, poly in zip(cells, polys, strict=False)}


def test_many_channels_wrap_into_a_block() -> None:
    anim = build_animation(Layer("conv2d", 16, 16, kernel_size=3), (4, 4))
    scene = compose(anim, "flat")
    assert scene.width < 2 * scene.height + 400  # 4×4 panels, not 16 in a row


def test_gallery_items_have_the_guides_geometry(tmp_path: Path) -> None:
    names = {item.name: item for item in GALLERY}
    expected = {
        "no_padding_no_strides": ((4, 4), (2, 2)),
        "arbitrary_padding_no_strides": ((5, 5), (6, 6)),
        "same_padding_no_strides": ((5, 5), (5, 5)),
        "full_padding_no_strides": ((5, 5), (7, 7)),
        "no_padding_strides": ((5, 5), (2, 2)),
        "padding_strides": ((5, 5), (3, 3)),
        "padding_strides_odd": ((6, 6), (3, 3)),
        "dilation": ((7, 7), (3, 3)),
    }
    for name, (i, o) in expected.items():
        item = names[name]
        assert item.input == i and item.layer.bind(i).output_spatial == o
        transposed = names.get(f"{name}_transposed")
        if transposed is not None:
            assert transposed.input == o and transposed.layer.bind(o).output_spatial == i
    # the guide's odd case: a = 1; the floor drops the last padded row and column of the direct one
    assert names["padding_strides_odd_transposed"].layer.output_padding == (1, 1)
    odd = build_animation(names["padding_strides_odd"].layer, (6, 6))
    unread = {cell for cell in odd.lower.cells() if odd.lower.unread(cell)}
    assert unread == {(7, c) for c in range(8)} | {(r, 7) for r in range(8)}
    # every guide GIF is there, named as in its repository
    guide = [f"{n}.gif" for n in expected] + [f"{n}_transposed.gif" for n in expected if n != "dilation"]
    assert set(guide) <= {item.filename for item in GALLERY}
    # render a few and decode them
    picks = ["padding_strides_odd_transposed", "numerical_no_padding_no_strides", "matrix_no_padding_no_strides"]
    seen = []
    written = gallery(tmp_path, names=picks, progress=lambda done, total, name: seen.append((done, total, name)))
    assert [p.name for p in written] == [f"{picks[0]}.gif", f"{picks[1]}.gif", f"{picks[2]}.png", "index.html"]
    assert seen == [(1, 3, written[0].name), (2, 3, written[1].name), (3, 3, written[2].name)]
    with Image.open(written[0]) as im:
        assert im.n_frames == 36
    with Image.open(written[1]) as im:
        assert im.n_frames == 9
    index = (tmp_path / "index.html").read_text()
    assert all(f'src="{p.name}"' in index for p in written[:-1])
    assert names[picks[0]].caption() in index and "a=1" in index  # the parameters are BoundLayer.caption()
    with pytest.raises(ConvArithError, match="names"):
        gallery(tmp_path, names=["no_such_picture"])


def test_tour_pictures(tmp_path: Path) -> None:
    pairs = tour_pictures(tmp_path / "pictures")
    assert [caption for _, caption in pairs] == [caption for _, caption in TOUR_PICTURES]
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == sorted(name for name, _ in pairs)
    for name, _ in pairs:
        with Image.open(tmp_path / "pictures" / name) as im:
            assert im.size[0] > 100
    with pytest.raises(ConvArithError, match="output"):
        tour_pictures(tmp_path / "missing" / "pictures")


def test_matrix_taps_agree_with_C() -> None:
    for layer, shape in [
        (Layer("conv2d", kernel_size=3, stride=2, padding=1), (5, 5)),
        (Layer("conv2d", 2, 4, kernel_size=2, padding=1, padding_mode="reflect", groups=2), (2, 3, 4)),
        (Layer("conv_transpose2d", 1, 2, kernel_size=3, stride=2, padding=1, output_padding=1), (3, 3)),
    ]:
        bound = layer.bind(shape)
        taps = matrix_taps(bound)
        C = conv_matrix(bound, np.ones(bound.weight_shape)).tocoo()
        assert set(taps) == set(zip(C.row.tolist(), C.col.tolist(), strict=True))
        # with a ones kernel an entry counts its taps
        assert all(len(taps[r, col]) == v for r, col, v in zip(C.row, C.col, C.data, strict=True))
    bound = Layer("conv2d", kernel_size=3).bind((4, 4))
    scene = matrix_scene(bound, transpose=True)
    title = next(s for s in scene.background if isinstance(s, Text))
    assert title.text == f"Cᵀ of {bound.caption()}"
    # one tap-coloured square per stored entry of C (9 taps × 4 rows)
    squares = [s for s in scene.background if isinstance(s, Polygon) and s.outline is None and s.fill != "#FFFFFF"]
    assert len(squares) == conv_matrix(bound, np.ones((1, 1, 3, 3))).nnz == 36


def test_overlap_counts_compose_like_torch() -> None:
    k3 = Layer("conv_transpose2d", kernel_size=3, stride=2)
    k4 = Layer("conv_transpose2d", kernel_size=4, stride=2, padding=1, output_padding=1)
    counts = overlap_counts([k3, k4, k3], (3, 2))
    x = torch.ones(1, 1, 3, 2, dtype=torch.float64)
    for layer, got in zip([k3, k4, k3], counts, strict=True):
        x = F.conv_transpose2d(
            x,
            torch.ones(1, 1, *layer.kernel_size, dtype=torch.float64),
            stride=layer.stride,
            padding=[p for p, _ in layer.pads],
            output_padding=layer.output_padding,
        )
        np.testing.assert_array_equal(got, x[0].numpy())
    with pytest.raises(ConvArithError, match="layer 2"):
        overlap_counts([k3, Layer("conv2d", kernel_size=3)], (3, 3))


def test_overlap_verdicts_are_the_findings() -> None:
    k3 = Layer("conv_transpose2d", kernel_size=3, stride=2)
    k4 = Layer("conv_transpose2d", kernel_size=4, stride=2, padding=1)
    empty = Layer("conv_transpose1d", kernel_size=2, stride=2, dilation=2)
    for stack, shape in (([k3, k4], (3, 3)), ([empty], (3,))):
        scene = overlap_scene(stack, shape)
        text = " ".join(s.text for s in scene.background if isinstance(s, Text))
        bound = stack[0].bind(shape)
        wanted = [f.message for f in bound.findings() if f.code in ("uneven-overlap", "empty-phase")]
        assert wanted
        assert all(" ".join(m.split()) in text for m in wanted)
    assert "checkerboard" not in " ".join(
        s.text for s in overlap_scene([k4], (3, 3)).background if isinstance(s, Text) and "axis" in s.text
    )


def test_draw_matrix_and_overlap_files(tmp_path: Path) -> None:
    layer = Layer("conv2d", kernel_size=3)
    (png,) = draw_matrix(layer, (4, 4), tmp_path / "c.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and not getattr(im, "is_animated", False)
    (svg,) = draw_matrix(layer, (4, 4), tmp_path / "c.svg", transpose=True)
    assert ET.parse(svg).getroot().tag == f"{SVG}svg"
    with pytest.raises(ConvArithError, match="max pooling"):
        draw_matrix(Layer("max_pool2d", kernel_size=2), (4, 4), tmp_path / "m.png")
    at = np.arange(16.0).reshape(1, 4, 4)
    (pool,) = draw_matrix(Layer("max_pool2d", kernel_size=2), (1, 4, 4), tmp_path / "m.png", at=at)
    assert pool.exists()
    with pytest.raises(ConvArithError, match="too large"):
        draw_matrix(layer, (100, 100), tmp_path / "big.png")
    with pytest.raises(ConvArithError, match="output"):
        draw_matrix(layer, (4, 4), tmp_path / "frames")
    (o,) = draw_overlap([Layer("conv_transpose2d", kernel_size=3, stride=2)] * 2, (3, 3), tmp_path / "o.svg")
    assert ET.parse(o).getroot().tag == f"{SVG}svg"


def test_render_imports_no_cli_library() -> None:
    import subprocess

    code = (
        "import sys; import convarith.render as r; r.animate; r.gallery; r.matrix_scene; "
        "print([m for m in ('typer', 'rich', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_many_channels_are_a_deck_whose_frames_do_not_grow() -> None:
    """Beyond DECK_CHANNELS a grid is a deck: each frame's shapes are one channel's, plus the box through it."""
    from convarith.render.scene import DECK_CHANNELS

    one = compose(build_animation(Layer("conv2d", 1, 1, kernel_size=3), (8, 8)))
    many = compose(build_animation(Layer("conv2d", 64, 64, kernel_size=3), (8, 8)))
    assert DECK_CHANNELS < 64
    shown = [len(s) for s in many.frames]
    assert max(shown) <= max(len(s) for s in one.frames) + 5
    texts = [s.text for s in many.background if isinstance(s, Text)]
    assert "64 channels stacked" in texts and "ch 0 in front" in texts
    # frame 36 is the first of output channel 1: the output deck turns to it
    assert [s.text for s in many.kept[36] if isinstance(s, Text)] == ["ch 1 in front"]
    assert all(not k for n, k in enumerate(many.kept) if n % 36)
    assert many.width * many.height < 2 * one.width * one.height
    # a few channels keep their own panels (the gallery's groups item)
    groups = compose(build_animation(Layer("conv2d", 2, 4, kernel_size=3, groups=2), (4, 4)))
    titles = {s.text for s in groups.background if isinstance(s, Text)}
    assert {"ch 0", "ch 1", "ch 2", "ch 3"} <= titles and not any("stacked" in t for t in titles)


def test_a_deck_turns_to_the_channel_a_grouped_window_reads() -> None:
    layer = Layer("conv2d", 32, 32, kernel_size=3, groups=32, padding=1)
    anim = build_animation(layer, (5, 5), numeric=True)
    assert anim.values is not None
    scene = compose(anim)
    turn = [s.text for s in scene.kept[25] if isinstance(s, Text)]  # first frame of channel 1
    assert turn.count("ch 1 in front") == 2  # both decks turn
    # the input card redrawn with channel 1's values, then the output this frame computes
    numbers = [t for t in turn if t[0] in "−0123456789"]
    assert sorted(numbers) == sorted(
        [*(format_value(float(v)) for v in anim.values.input[1].ravel()), format_value(anim.values.frame_values[25])]
    )


@pytest.mark.parametrize(
    ("layer", "shape", "view", "supersample"),
    [
        (Layer("conv2d", kernel_size=3), (12, 12), "direct", 1),
        (Layer("conv2d", kernel_size=3, padding=1), (8, 8), "direct", 2),
        (Layer("conv_transpose2d", kernel_size=3, stride=2), (4, 4), "scatter", 2),
        (Layer("conv2d", 16, 16, kernel_size=3), (6, 6), "direct", 1),
    ],
)
def test_the_palette_keeps_the_frames_close_to_full_colour(
    layer: Layer, shape: tuple[int, int], view: View, supersample: int
) -> None:
    """The GIF's one palette (exact shape colours, the anti-aliased rest quantized) draws frames that
    differ from the full-colour ones by under 1 level a channel on average (a median cut of the same
    frames: 1.3–2.2)."""
    scene = compose(build_animation(layer, shape, view=view, numeric=layer.in_channels is None))
    scene.supersample = supersample
    palette = Palette(_palette(scene))
    picks = sorted({0, len(scene.frames) // 3, len(scene.frames) - 1})
    for full, drawn in zip(frames_rgb(scene, picks), frames_rgb(scene, picks, palette=palette), strict=True):
        on_palette = drawn if drawn.mode == "P" else palette.quantize(drawn)
        error = np.abs(np.asarray(on_palette.convert("RGB"), float) - np.asarray(full, float)).mean()
        assert error < 1.0
