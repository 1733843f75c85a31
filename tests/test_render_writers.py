"""Every writer produces files that decode, with the right frame count and size; the pictures'
geometry (not pixel hashes) matches the frame model; the matrix and overlap pictures agree with
C, the geometry and PyTorch; the CLI verbs exit 0 or 2."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer
from PIL import Image
from typer.testing import CliRunner

from convarith import ConvArithError, ConvSpec
from convarith.ops.matrix import conv_matrix
from convarith.render import animate, build_animation, compose, draw_matrix, gallery, write
from convarith.render.gallery_items import GALLERY
from convarith.render.maps import matrix_scene, matrix_taps, overlap_counts
from convarith.render.raster import frames_rgb
from convarith.render.style import CELL, FOOTPRINT

SVG = "{http://www.w3.org/2000/svg}"
SPEC = ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1)


@pytest.fixture(scope="module")
def scene():  # type: ignore[no-untyped-def]
    return compose(build_animation(SPEC, (5, 5)))


def test_gif(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (path,) = write(scene, tmp_path / "a.gif", fps=4)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 9 and im.size == (scene.width, scene.height)
        im.seek(1)
        assert im.info["duration"] == 250
        assert im.info.get("loop") == 0


def test_apng(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (path,) = write(scene, tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and getattr(im, "is_animated", False)
        assert im.n_frames == 9 and im.size == (scene.width, scene.height)


def test_png_and_svg_frame_folders(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    pngs = write(scene, tmp_path / "frames")
    assert [p.name for p in pngs] == [f"frame_{n}.png" for n in range(9)]
    for path in pngs[:2]:
        with Image.open(path) as im:
            assert im.size == (scene.width, scene.height)
    svgs = write(scene, tmp_path / "stills", frames="svg")
    assert len(svgs) == 9
    root = ET.parse(svgs[4]).getroot()
    assert [g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "frame"] == ["frame-4"]


def test_animated_svg_has_one_timed_group_per_frame(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    (path,) = write(scene, tmp_path / "a.svg", fps=2)
    root = ET.parse(path).getroot()
    assert root.get("width") == str(scene.width) and root.get("height") == str(scene.height)
    frames = [g for g in root.iter(f"{SVG}g") if g.get("class") == "frame"]
    assert len(frames) == 9
    starts = []
    for n, group in enumerate(frames):
        (anim,) = group.findall(f"{SVG}animate")
        assert anim.get("attributeName") == "visibility" and anim.get("repeatCount") == "indefinite"
        values, times = anim.get("values").split(";"), [float(t) for t in anim.get("keyTimes").split(";")]
        assert times == sorted(times) and times[0] == 0
        starts.append(times[values.index("visible")])
        assert group.get("visibility") == ("visible" if n == 0 else "hidden")
    assert starts == sorted(starts) and len(set(starts)) == 9


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
    assert tuple(meta["size"]) == (scene.width, scene.height)
    assert frames == len(scene.frames)


def test_bad_outputs(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConvArithError, match="output"):
        write(scene, tmp_path / "a.jpeg")
    with pytest.raises(ConvArithError, match="fps"):
        write(scene, tmp_path / "a.gif", fps=0)


def test_animate_accepts_op_names(tmp_path: Path) -> None:
    (path,) = animate("conv1d", (7,), tmp_path / "s.gif", kernel_size=3, stride=2, style="flat", numeric=True)
    with Image.open(path) as im:
        assert im.n_frames == 3


def _pixel(image, quad):  # type: ignore[no-untyped-def]
    x = sum(p[0] for p in quad) / 4
    y = sum(p[1] for p in quad) / 4
    return "#{:02X}{:02X}{:02X}".format(*image.getpixel((round(x), round(y))))


def _close(a: str, b: str, tol: int = 24) -> bool:
    return all(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) <= tol for i in (1, 3, 5))


@pytest.mark.parametrize("style", ["guide", "flat"])
def test_odd_transposed_picture_puts_the_extra_cells_bottom_right(style: str) -> None:
    item = next(i for i in GALLERY if i.name == "padding_strides_odd_transposed")
    anim = build_animation(item.spec, item.input)
    assert anim.lower.shape == (8, 8) and anim.upper.shape == (6, 6) and len(anim.frames) == 36
    scene = compose(anim, style)
    (first,) = frames_rgb(scene, [0])
    quads = _lower_quads(scene, anim)
    extra = [cell for cell in anim.lower.cells() if anim.lower.kind(cell) == "extra"]
    assert {c for c in extra} == {(7, c) for c in range(8)} | {(r, 7) for r in range(8)}
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
    from convarith.render.scene import Polygon

    polys = [s for s in scene.background if isinstance(s, Polygon) and s.outline is not None]
    cells = list(anim.lower.cells())
    return {cell: poly.points for cell, poly in zip(cells, polys, strict=False)}


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
        assert item.input == i and item.spec.output_spatial(i) == o
        transposed = names.get(f"{name}_transposed")
        if transposed is not None:
            assert transposed.input == o and transposed.spec.output_spatial(o) == i
    # the guide's odd case: a = 1; the floor drops the last padded row and column of the direct one
    assert names["padding_strides_odd_transposed"].spec.output_padding == (1, 1)
    odd = build_animation(names["padding_strides_odd"].spec, (6, 6))
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
    assert seen[-1][:2] == (3, 3)
    with Image.open(written[0]) as im:
        assert im.n_frames == 36
    with Image.open(written[1]) as im:
        assert im.n_frames == 9
    index = (tmp_path / "index.html").read_text()
    assert all(f'src="{p.name}"' in index for p in written[:-1])
    assert "a=1" in index  # the parameters are shown


def test_matrix_taps_agree_with_C() -> None:
    for spec, spatial, c in [
        (ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1), (5, 5), (1, 1)),
        (ConvSpec.create("conv2d", kernel_size=2, padding=1, padding_mode="reflect", groups=2), (3, 4), (2, 4)),
        (ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1), (3, 3), (1, 2)),
    ]:
        taps = matrix_taps(spec, spatial, in_channels=c[0], out_channels=c[1])
        anim = build_animation(spec, spatial, in_channels=c[0], out_channels=c[1])
        C = conv_matrix(
            spec.op,
            np.ones(anim.weight_shape),
            (c[0], *spatial),
            stride=spec.stride,
            padding=spec.pads,
            dilation=spec.dilation,
            groups=spec.groups,
            output_padding=spec.output_padding,
            padding_mode=spec.padding_mode,
        ).tocoo()
        assert set(taps) == set(zip(C.row.tolist(), C.col.tolist(), strict=True))
        # with a ones kernel an entry counts its taps
        assert all(len(taps[r, col]) == v for r, col, v in zip(C.row, C.col, C.data, strict=True))
    scene = matrix_scene(ConvSpec.create("conv2d", kernel_size=3), (4, 4), transpose=True)
    assert len(scene.frames) == 1


def test_overlap_counts_compose_like_torch() -> None:
    k3 = ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2)
    k4 = ConvSpec.create("conv_transpose2d", kernel_size=4, stride=2, padding=1, output_padding=1)
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
        overlap_counts([k3, ConvSpec.create("conv2d", kernel_size=3)], (3, 3))


def test_draw_matrix_files(tmp_path: Path) -> None:
    (png,) = draw_matrix("conv2d", (4, 4), tmp_path / "c.png", kernel_size=3)
    with Image.open(png) as im:
        assert im.format == "PNG" and not getattr(im, "is_animated", False)
    (svg,) = draw_matrix("conv2d", (4, 4), tmp_path / "c.svg", kernel_size=3, transpose=True)
    ET.parse(svg)
    with pytest.raises(ConvArithError, match="max pooling"):
        draw_matrix("max_pool2d", (4, 4), tmp_path / "m.png", kernel_size=2)
    with pytest.raises(ConvArithError, match="too large"):
        draw_matrix("conv2d", (100, 100), tmp_path / "big.png", kernel_size=3)


# -- CLI verbs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli():  # type: ignore[no-untyped-def]
    from convarith.render.commands import animate as animate_cmd
    from convarith.render.commands import draw_matrix as draw_cmd
    from convarith.render.commands import gallery as gallery_cmd

    app = typer.Typer()
    for command in (animate_cmd, draw_cmd, gallery_cmd):
        app.command()(command)
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    return run


def test_cli_animate(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(
        "animate", "conv2d", "-i", "5x5", "-k", "3", "--stride", "2", "--padding", "1", "-o", str(tmp_path / "a.gif")
    )
    assert code == 0 and "9 frames" in out
    np.save(tmp_path / "x.npy", np.arange(9.0).reshape(3, 3))
    (tmp_path / "w.csv").write_text("1,0\n0,1\n")
    code, out, _ = cli(
        "animate", "conv_transpose2d", "-i", "3x3", "-k", "2", "--stride", "2", "--view", "scatter",
        "--input-values", str(tmp_path / "x.npy"), "--kernel-values", str(tmp_path / "w.csv"),
        "-o", str(tmp_path / "s.svg"),
    )  # fmt: skip
    assert code == 0
    code, _, err = cli("animate", "conv2d", "-i", "5x5", "-k", "3", "--view", "scatter", "-o", str(tmp_path / "b.gif"))
    assert code == 2 and err.startswith("error: view:") and err.count("\n") == 1
    code, _, err = cli("animate", "conv2d", "-i", "5x5", "-k", "3", "--style", "fancy", "-o", str(tmp_path / "c.gif"))
    assert code == 2 and "style" in err
    code, _, err = cli("animate", "conv2d", "-i", "5x5", "-k", "3", "--input-values", "/nonexistent.npy", "-o", "x.gif")
    assert code == 2 and "input_values" in err


def test_cli_draw_matrix_and_gallery(tmp_path: Path, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("draw-matrix", "conv2d", "-i", "4x4", "-k", "3", "--transpose", "-o", str(tmp_path / "c.png"))
    assert code == 0 and "c.png" in out
    code, out, _ = cli("draw-matrix", "max_pool2d", "-i", "4x4", "-k", "2", "-o", str(tmp_path / "m.png"))
    assert code == 0
    import convarith.render.gallery_items as gallery_module

    monkeypatch.setattr(gallery_module, "GALLERY", gallery_module.GALLERY[:2])
    code, out, _ = cli("gallery", "--out", str(tmp_path / "gal"))
    assert code == 0 and (tmp_path / "gal" / "index.html").exists()
    assert sorted(p.name for p in (tmp_path / "gal").iterdir()) == [
        "arbitrary_padding_no_strides.gif",
        "index.html",
        "no_padding_no_strides.gif",
    ]


def test_commands_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import convarith.render.commands; "
        "heavy = [m for m in ('numpy', 'PIL', 'scipy', 'torch') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
