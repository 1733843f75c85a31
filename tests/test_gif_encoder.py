"""The GIF writer's helper process: a GIF encoded with it is byte for byte the GIF encoded in one
process, and every frame decodes as drawn; the helper runs only when it pays (a second core, a large
animation); a helper that cannot start, answers garbage or errors, dies, hangs or runs another
Pillow is replaced by this process with a warning and the same bytes; it is always ended and reaped,
also when the writing fails or is interrupted."""

from __future__ import annotations

import io
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from convarith import Layer
from convarith.render import _lzw, build_animation, compose, write, writers
from convarith.render.raster import Canvas, Palette, background_rgb, frames_rgb
from convarith.render.scene import Scene

LOTS = 1 << 40  # a backlog no test reaches: every frame large enough goes to the helper


def _images(seed: int, sizes: list[tuple[int, int]]) -> list[Image.Image]:
    """Palette images like GIF frames (mostly one index, some noise), of the given sizes."""
    rng = np.random.default_rng(seed)
    images = []
    for width, height in sizes:
        noise = rng.integers(0, 256, (height, width))
        pixels = np.where(rng.random((height, width)) < 0.8, rng.integers(0, 256), noise).astype(np.uint8)
        images.append(Image.fromarray(pixels).convert("P"))
    return images


SIZES = [(600, 100), (1, 1), (1285, 1215), (64, 64), (7, 3), (130, 610), (63, 65), (1285, 40), (300, 300)]


def _encoded(encoder: _lzw.Encoder[int], images: list[Image.Image]) -> list[tuple[int, bytes]]:
    done = []
    for tag, image in enumerate(images):
        done += encoder.put(image, tag)
    return done + list(encoder.finish())


def _pillow(images: list[Image.Image]) -> list[tuple[int, bytes]]:
    return [(tag, image.tobytes("gif", "P")) for tag, image in enumerate(images)]


def _remote(images: list[Image.Image]) -> int:
    return sum(image.size[0] * image.size[1] >= _lzw.MIN_PIXELS for image in images)


@pytest.mark.parametrize("backlog", [LOTS, _lzw.BACKLOG, 0])
def test_the_helper_gives_pillows_bytes_in_order(backlog: int) -> None:
    """Every frame large enough is sent while the backlog allows (all of them with a large one,
    none with 0), the rest encoded here; all come back in order, each Pillow's bytes."""
    images = _images(1, SIZES * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed helper warns
        with _lzw.Encoder[int](helper=True, backlog=backlog) as encoder:
            process = encoder._process
            assert process is not None
            assert _encoded(encoder, images) == _pillow(images)
    assert encoder.failure is None and process.returncode is not None  # ended and reaped
    if backlog == LOTS:
        assert encoder.remote == _remote(images)
    elif backlog == 0:
        assert encoder.remote == 0


def test_without_a_helper_every_frame_is_encoded_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("subprocess.Popen", _no_process)
    images = _images(2, SIZES)
    with _lzw.Encoder[int](helper=False) as encoder:
        assert _encoded(encoder, images) == _pillow(images)
    assert encoder.remote == 0


def _no_process(*args: object, **kwargs: object) -> None:
    raise AssertionError("no helper process expected")


@pytest.fixture(scope="module")
def scenes() -> dict[str, Scene]:
    """Two animations of ~100 frames: drawn on the palette (1×, as large pages are), and supersampled."""
    layer = Layer("conv2d", kernel_size=3)
    flat = compose(build_animation(layer, (12, 12), numeric=True))
    flat.supersample = 1  # as compose draws pages over 0.6 Mpx (the 40×40 numeric animation)
    return {"1x": flat, "2x": compose(build_animation(layer, (12, 12), numeric=True))}


class _Spy(_lzw.Encoder[_lzw.T]):
    """The writer's encoder, kept for the test to look at."""

    made: ClassVar[list[_Spy[object]]] = []
    backlog: ClassVar[int | None] = None  # the writer's backlog, if the test sets one

    def __init__(self, helper: bool, **kwargs: object) -> None:
        if _Spy.backlog is not None:
            kwargs["backlog"] = _Spy.backlog
        super().__init__(helper, **kwargs)  # type: ignore[arg-type]
        _Spy.made.append(self)  # type: ignore[arg-type]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_Spy[object]]]:
    monkeypatch.setattr(_lzw, "Encoder", _Spy)
    _Spy.made, _Spy.backlog = [], None
    yield _Spy.made
    _Spy.backlog = None


@pytest.mark.parametrize("ss", ["1x", "2x"])
@pytest.mark.parametrize("backlog", [LOTS, _lzw.BACKLOG])
def test_a_gif_written_with_the_helper_is_the_gif_written_without(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenes: dict[str, Scene],
    spy: list[_Spy[object]],
    ss: str,
    backlog: int,
) -> None:
    """The same bytes both ways — the helper encoding every frame it can, or its share — every frame
    decoding to the frame drawn; nothing else is written."""
    scene = scenes[ss]
    monkeypatch.setattr(writers, "HELPER_PIXELS", 0)  # this small animation with the helper
    monkeypatch.setattr(_lzw, "cores", lambda: 2)
    _Spy.backlog = backlog
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (helped,) = write(scene, tmp_path / "helped.gif")
    (encoder,) = spy
    assert encoder.failure is None and encoder.remote > 0
    if backlog == LOTS:  # the helper did every frame but the small ones
        assert encoder.remote > len(scene.frames) // 2
    _Spy.backlog = None
    monkeypatch.setattr(_lzw, "cores", lambda: 1)  # one core: all in this process
    (alone,) = write(scene, tmp_path / "alone.gif")
    assert spy[1].remote == 0 and spy[1]._process is None
    assert helped.read_bytes() == alone.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.gif", "helped.gif"]
    palette = Palette(writers._palette(scene))
    with Image.open(helped) as im:
        assert im.n_frames == len(scene.frames)  # type: ignore[attr-defined]
        for n, expected in enumerate(frames_rgb(scene, palette=palette)):
            im.seek(n)
            want = expected if expected.mode == "P" else palette.quantize(expected)
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(want.convert("RGB")))


def test_the_helper_runs_only_when_it_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenes: dict[str, Scene]
) -> None:
    """A small GIF, or any GIF on one core, is written without starting a process."""
    small = compose(build_animation(Layer("conv2d", kernel_size=3), (5, 5)))
    assert writers._changed_pixels(small) < writers.HELPER_PIXELS
    monkeypatch.setattr("subprocess.Popen", _no_process)
    write(small, tmp_path / "small.gif")
    monkeypatch.setattr(writers, "HELPER_PIXELS", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert _lzw.cores() == 1
    write(scenes["1x"], tmp_path / "one-core.gif")


@pytest.mark.parametrize(
    "setting",
    [("sys.executable", "/usr/bin/uwsgi"), ("sys.executable", ""), ("sys.frozen", True), ("os.name", "nt")],
)
def test_the_helper_needs_an_interpreter_and_posix_pipes(
    monkeypatch: pytest.MonkeyPatch, setting: tuple[str, object]
) -> None:
    """Not under a host embedding Python or in a frozen application (``sys.executable`` would start
    the application), nor without POSIX pipes."""
    monkeypatch.setattr(_lzw, "cores", lambda: 2)
    assert _lzw.available() == (os.name == "posix" and "python" in Path(sys.executable).name)
    monkeypatch.setattr(*setting, raising=False)
    assert not _lzw.available()


@pytest.mark.parametrize("ss", ["1x", "2x"])
def test_the_pixel_estimate_is_near_the_rectangles_drawn(scenes: dict[str, Scene], ss: str) -> None:
    """The estimate deciding on the helper is within 15 % of the pixels the writer's rectangles hold."""
    scene = scenes[ss]
    background = background_rgb(scene)
    canvas = Canvas(scene, background, Palette(writers._palette(scene, background.copy())))
    drawn = 0
    for _ in scene.frames:
        canvas.advance()
        _, part = canvas.changed()
        drawn += part.size[0] * part.size[1]
    assert abs(writers._changed_pixels(scene) - drawn) <= 0.15 * drawn


def test_the_40x40_numeric_animation_takes_the_helper() -> None:
    scene = compose(build_animation(Layer("conv2d", kernel_size=3), (40, 40), numeric=True))
    assert len(scene.frames) == 1444 and writers._changed_pixels(scene) >= 5 * writers.HELPER_PIXELS  # 127 Mpx drawn


# -- frames on a page: the pixels a frame repeats are transparent, wherever it is encoded --

PAGE = (300, 200, 250)  # width, height, the transparent index (no frame has it)


Placed = list[tuple[tuple[int, int], Image.Image]]
"""Frames on the page: where each one's rectangle is, and its pixels."""


def _page_frames(seed: int, count: int) -> Placed:
    """Rectangles on the page, each mostly the pixels already there (as a GIF frame's rectangle is)."""
    rng = np.random.default_rng(seed)
    width, height, transparent = PAGE
    page = np.full((height, width), transparent, np.uint8)
    frames = []
    for n in range(count):
        w, h = (width, height) if n == 0 else (int(rng.integers(1, 120)), int(rng.integers(1, 120)))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        pixels = page[y : y + h, x : x + w].copy()
        changed = (rng.random((h, w)) < 0.3) | (pixels == transparent)
        pixels[changed] = rng.integers(0, transparent, int(changed.sum()))
        page[y : y + h, x : x + w] = pixels
        frames.append(((x, y), Image.frombytes("P", (w, h), pixels.tobytes())))
    return frames


def _on_page(frames: Placed) -> list[tuple[int, bytes]]:
    """Each frame's LZW bytes with the pixels equal to the page's made transparent, worked out here."""
    width, height, transparent = PAGE
    page = np.full((height, width), transparent, np.uint8)
    done = []
    for tag, ((x, y), image) in enumerate(frames):
        pixels = np.asarray(image)
        under = page[y : y + image.height, x : x + image.width]
        shown = np.where(pixels == under, transparent, pixels).astype(np.uint8)
        under[...] = pixels
        done.append((tag, Image.frombytes("P", image.size, shown.tobytes()).tobytes("gif", "P")))
    return done


def _put_on_page(
    encoder: _lzw.Encoder[int], frames: list[tuple[tuple[int, int], Image.Image]]
) -> list[tuple[int, bytes]]:
    encoder.page(*PAGE)
    done = []
    for tag, (at, image) in enumerate(frames):
        done += encoder.put(image, tag, at)
    return done + list(encoder.finish())


@pytest.mark.parametrize("backlog", [LOTS, _lzw.BACKLOG, 20_000, 0])
def test_frames_on_a_page_repeat_nothing_wherever_they_are_encoded(backlog: int) -> None:
    """All frames large enough by the helper, a share of them, none: the same bytes, with exactly the
    pixels each frame repeats transparent (the first frame whole); the helper's page follows the
    frames encoded here."""
    frames = _page_frames(12, 60)
    want = _on_page(frames)
    assert want[0][1] == frames[0][1].tobytes("gif", "P")  # the first frame whole
    assert len(want[-1][1]) < len(frames[-1][1].tobytes("gif", "P"))  # later ones mostly transparent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _lzw.Encoder[int](helper=True, backlog=backlog) as encoder:
            assert _put_on_page(encoder, frames) == want
    assert encoder.failure is None
    if backlog == 20_000:
        assert 0 < encoder.remote < sum(image.width * image.height >= _lzw.MIN_PIXELS for _, image in frames)
    with _lzw.Encoder[int](helper=False) as alone:
        assert _put_on_page(alone, frames) == want


def test_a_helper_that_dies_on_a_page_is_replaced_with_the_same_bytes() -> None:
    frames = _page_frames(13, 40)
    with (
        pytest.warns(RuntimeWarning, match="exited|stopped reading"),
        _lzw.Encoder[int](helper=True, backlog=LOTS) as encoder,
    ):
        encoder.page(*PAGE)
        process = encoder._process
        assert process is not None
        done = [item for tag, (at, image) in enumerate(frames[:10]) for item in encoder.put(image, tag, at)]
        process.kill()
        process.wait()
        for tag, (at, image) in enumerate(frames[10:], 10):
            done += encoder.put(image, tag, at)
        done += encoder.finish()
    assert done == _on_page(frames) and encoder.failure is not None


def test_the_page_is_set_once_before_the_frames() -> None:
    with _lzw.Encoder[int](helper=False) as encoder:
        encoder.put(Image.new("P", (2, 2)), 0)
        with pytest.raises(ValueError, match="before the first frame"):
            encoder.page(*PAGE)


# -- a helper that fails: the frames it held are encoded here, the same bytes --


def _fails(images: list[Image.Image], match: str, **kwargs: float) -> _lzw.Encoder[int]:
    """Encode with a helper that is expected to fail with ``match``; the bytes are still Pillow's."""
    with pytest.warns(RuntimeWarning, match=match), _lzw.Encoder[int](helper=True, backlog=LOTS, **kwargs) as encoder:
        assert _encoded(encoder, images) == _pillow(images)
    assert encoder.failure is not None and encoder._process is None
    return encoder


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Run ``body`` as the helper instead (``out``: its stdout, ``send(kind, payload)``: a record)."""
    script = tmp_path / "fake_helper.py"
    script.write_text(
        "import struct, sys, time\nout = sys.stdout.buffer\n"
        "def send(kind, payload):\n    out.write(struct.pack('<cI', kind, len(payload)) + payload)\n    out.flush()\n"
        + body
    )
    monkeypatch.setattr(_lzw, "__file__", str(script))


def test_a_helper_that_dies_is_replaced() -> None:
    images = _images(3, SIZES * 2)
    with (
        pytest.warns(RuntimeWarning, match="exited|stopped reading"),
        _lzw.Encoder[int](helper=True, backlog=LOTS) as encoder,
    ):
        process = encoder._process
        assert process is not None
        done = [item for tag, image in enumerate(images[:5]) for item in encoder.put(image, tag)]
        process.kill()
        process.wait()
        for tag, image in enumerate(images[5:], 5):
            done += encoder.put(image, tag)
        done += encoder.finish()
    assert done == _pillow(images) and encoder.failure is not None


def test_a_helper_that_hangs_is_given_up() -> None:
    images = _images(4, SIZES)
    with (
        pytest.warns(RuntimeWarning, match="no answer for 0.3 s"),
        _lzw.Encoder[int](helper=True, backlog=LOTS, timeout=0.3) as encoder,
    ):
        process = encoder._process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        assert _encoded(encoder, images) == _pillow(images)
    assert process.returncode == -signal.SIGKILL  # killed while stopped, and reaped


def test_frames_held_behind_a_stuck_helper_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames encoded here wait for the helper's older one in a bounded buffer; when it is full the
    helper gets until the timeout, then is given up (during the frames, not only at the end)."""
    monkeypatch.setattr(_lzw, "HELD", 20_000)
    images = _images(11, SIZES * 4)
    largest = max(len(image.tobytes("gif", "P")) for image in images)
    with (
        pytest.warns(RuntimeWarning, match="no answer for 0.3 s"),
        _lzw.Encoder[int](helper=True, backlog=1, timeout=0.3) as encoder,
    ):
        assert encoder._process is not None
        os.kill(encoder._process.pid, signal.SIGSTOP)
        done = []
        for tag, image in enumerate(images):
            done += encoder.put(image, tag)
            assert encoder._held <= _lzw.HELD + largest
        assert encoder.failure is not None
        done += encoder.finish()
    assert done == _pillow(images)


def test_a_helper_with_another_pillow_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lzw, "identity", lambda: "0.0 /elsewhere/PIL/__init__.py")
    encoder = _fails(_images(5, SIZES), "its Pillow .* is not this process's .*elsewhere")
    assert encoder.remote == 0


# a fake helper's greeting, as the real one's
GREET = f"import runpy\nsend(b'H', runpy.run_path({_lzw.__file__!r})['identity']().encode())\n"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("send(b'E', b'MemoryError: out of memory')\n", "MemoryError: out of memory"),
        ("sys.exit(3)\n", r"exited \(code 3\)|stopped reading"),
        ("out.write(b'Python 3.11 banner from a sitecustomize\\n'); out.flush(); time.sleep(5)\n", "unexpected answer"),
        ("send(b'D', b'data before the greeting'); time.sleep(5)\n", "unexpected answer"),
        (
            GREET
            + "sys.stdin.buffer.read(8); out.write(struct.pack('<cI', b'D', 1 << 31)); out.flush(); time.sleep(5)\n",
            "unexpected answer",
        ),  # a length no frame's LZW has: refused at once, not waited for
        (GREET + "import os; os.close(1); time.sleep(5)\n", "closed its output"),
    ],
)
def test_a_helper_that_errs_or_answers_garbage_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, match: str
) -> None:
    _fake(tmp_path, monkeypatch, body)
    _fails(_images(6, SIZES), match)


def test_a_helper_that_cannot_start_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    _fails(_images(7, SIZES), "cannot start")


# -- always ended and reaped --


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_the_helper_is_ended_when_the_writing_fails(error: type[BaseException]) -> None:
    images = _images(8, SIZES)
    with pytest.raises(error), _lzw.Encoder[int](helper=True, backlog=LOTS) as encoder:
        process = encoder._process
        for tag, image in enumerate(images):
            encoder.put(image, tag)
        raise error
    assert process is not None and process.returncode is not None and encoder._process is None


def test_a_failing_write_ends_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenes: dict[str, Scene], spy: list[_Spy[object]]
) -> None:
    """An error while drawing reaches the caller; the helper is reaped (its pipes closed)."""
    monkeypatch.setattr(writers, "HELPER_PIXELS", 0)
    monkeypatch.setattr(_lzw, "cores", lambda: 2)
    changed = Canvas.changed

    def breaks(self: Canvas) -> object:
        if self.index == 20:
            raise KeyboardInterrupt
        return changed(self)

    monkeypatch.setattr(Canvas, "changed", breaks)
    with pytest.raises(KeyboardInterrupt):
        write(scenes["1x"], tmp_path / "a.gif")
    (encoder,) = spy
    assert encoder._process is None and encoder.remote + len(encoder._frames) >= 1


# -- the helper's side --


def _requests(*images: Image.Image) -> bytes:
    return b"".join(_lzw.REQUEST.pack(b"F", 0, 0, *image.size) + image.tobytes() for image in images)


def _records(data: bytes) -> list[tuple[bytes, bytes]]:
    records, start = [], 0
    while start < len(data):
        kind, length = _lzw.RECORD.unpack_from(data, start)
        start += _lzw.RECORD.size
        records.append((kind, data[start : start + length]))
        start += length
    return records


def test_the_helper_lays_frames_on_its_page() -> None:
    """``P`` sets the page, ``F`` frames are answered with what they repeat transparent, ``U`` frames
    only laid on the page; a frame off the page is an error named to the parent."""
    frames = _page_frames(14, 8)
    width, height, transparent = PAGE
    requests = _lzw.REQUEST.pack(b"P", transparent, 0, width, height)
    for n, ((x, y), image) in enumerate(frames):
        requests += _lzw.REQUEST.pack(b"U" if n % 3 == 2 else b"F", x, y, *image.size) + image.tobytes()
    out = io.BytesIO()
    assert _lzw.serve(io.BytesIO(requests), out) == 0
    want = [lzw for tag, lzw in _on_page(frames) if tag % 3 != 2]
    assert _records(out.getvalue()) == [(b"H", _lzw.identity().encode()), *((b"D", lzw) for lzw in want)]
    off = requests[: _lzw.REQUEST.size] + _lzw.REQUEST.pack(b"F", width - 1, 0, 2, 1) + b"\0\0"
    out = io.BytesIO()
    assert _lzw.serve(io.BytesIO(off), out) == 1
    assert _records(out.getvalue())[-1] == (b"E", b"ValueError: a 2\xc3\x971 frame at (299, 0) is off the page")


def test_the_helper_greets_then_answers_each_frame() -> None:
    images = _images(9, [(40, 30), (1, 1), (600, 100)])
    out = io.BytesIO()
    assert _lzw.serve(io.BytesIO(_requests(*images)), out) == 0
    assert _records(out.getvalue()) == [
        (b"H", _lzw.identity().encode()),
        *((b"D", image.tobytes("gif", "P")) for image in images),
    ]


@pytest.mark.parametrize(("cut", "match"), [(3, b"header was cut short"), (100, b"40\xc3\x9730 frame's pixels")])
def test_the_helper_names_a_request_cut_short(cut: int, match: bytes) -> None:
    out = io.BytesIO()
    requests = _requests(*_images(10, [(40, 30)]))
    assert _lzw.serve(io.BytesIO(requests[:cut]), out) == 1
    kind, message = _records(out.getvalue())[-1]
    assert kind == b"E" and match in message
