"""The GIFs in a real browser: Chromium (Debian's, driven by Playwright) decodes every frame with its
own GIF decoder (WebCodecs' ``ImageDecoder``, as an ``<img>`` plays it: each frame laid over the
one before, its transparent pixels leaving those showing) to exactly the frame drawn."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convarith import Layer
from convarith.render import _lzw, build_animation, compose, write, writers
from convarith.render.frames import View
from convarith.render.raster import Palette, frames_rgb
from convarith.render.scene import Scene

pytest.importorskip("playwright.sync_api")  # every test here drives the browser (conftest.browser)
ORIGIN = "http://127.0.0.1:9"  # answered by the page's route, never the network; loopback is a secure context

DECODE = """async () => {
  const data = await (await fetch('/picture.gif')).arrayBuffer();
  const decoder = new ImageDecoder({data, type: 'image/gif'});
  await decoder.tracks.ready;
  const frames = [];
  for (let k = 0; k < decoder.tracks.selectedTrack.frameCount; k++) {
    const {image} = await decoder.decode({frameIndex: k});
    const canvas = new OffscreenCanvas(image.displayWidth, image.displayHeight);
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    image.close();
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let text = '';
    for (let i = 0; i < pixels.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, pixels.subarray(i, i + 0x8000));
    }
    frames.push([canvas.width, canvas.height, btoa(text)]);
  }
  return frames;
}"""


def _decoded(browser: Any, gif: bytes) -> list[np.ndarray]:
    """Every frame of ``gif`` as Chromium composes it, RGB."""
    page = browser.new_page()
    try:
        page.route(
            f"{ORIGIN}/**",
            lambda route: route.fulfill(
                body=gif if route.request.url.endswith(".gif") else b"<html></html>",
                content_type="image/gif" if route.request.url.endswith(".gif") else "text/html",
            ),
        )
        page.goto(f"{ORIGIN}/")
        frames = page.evaluate(DECODE)
    finally:
        page.close()
    return [
        np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)[..., :3]
        for width, height, data in frames
    ]


def _drawn(scene: Scene) -> list[np.ndarray]:
    palette = Palette(writers._palette(scene))
    return [
        np.asarray((frame if frame.mode == "P" else palette.quantize(frame)).convert("RGB"))
        for frame in frames_rgb(scene, palette=palette)
    ]


def _assert_plays_as_drawn(browser: Any, scene: Scene, path: Path) -> None:
    (gif,) = write(scene, path)
    decoded, drawn = _decoded(browser, gif.read_bytes()), _drawn(scene)
    assert len(decoded) == len(drawn) == len(scene.frames)
    for n, (got, want) in enumerate(zip(decoded, drawn, strict=True)):
        assert np.array_equal(got, want), f"frame {n}: {int((got != want).any(axis=2).sum())} pixels differ"


@pytest.mark.parametrize(
    ("layer", "shape", "view"),
    [
        (Layer("conv2d", kernel_size=3, padding=1), (6, 6), "direct"),
        (Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1), (3, 3), "scatter"),
        (Layer("max_pool2d", kernel_size=2, stride=1, ceil_mode=True), (4, 4), "direct"),
    ],
)
@pytest.mark.parametrize("supersample", [1, 2])
def test_chromium_plays_every_gif_frame_as_drawn(
    browser: Any, tmp_path: Path, layer: Layer, shape: tuple[int, ...], view: View, supersample: int
) -> None:
    scene = compose(build_animation(layer, shape, view=view, numeric=True))
    scene.supersample = supersample  # drawn on the palette (as large pages are) or supersampled
    _assert_plays_as_drawn(browser, scene, tmp_path / "a.gif")


def test_chromium_plays_a_gif_encoded_with_the_helper_as_drawn(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper process makes a frame's repeated pixels transparent against its own copy of the page."""
    monkeypatch.setattr(writers, "HELPER_PIXELS", 0)
    monkeypatch.setattr(_lzw, "cores", lambda: 2)
    scene = compose(build_animation(Layer("conv2d", kernel_size=3), (12, 12), numeric=True))
    scene.supersample = 1
    _assert_plays_as_drawn(browser, scene, tmp_path / "helped.gif")
