"""The explorer in a real browser (Debian's chromium driven by Playwright), checked against PyTorch and C.

Each test acts as a user would — loads a URL, types in a field, clicks a cell, reads the code
panel — and compares what the page then shows with PyTorch's result and with rows and columns of
the matrix C from :func:`convarith.conv_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convarith import Layer
from convarith.ops.matrix import conv_matrix
from convarith.web.app import Server

pytest.importorskip("playwright.sync_api")  # every test here drives the browser (conftest.browser)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = Server("127.0.0.1", 0)
    yield server.start()
    server.close()


class Page:
    """A browser tab on the explorer, recording server errors and script errors."""

    def __init__(self, browser: Any, url: str, state: str) -> None:
        self.tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.problems: list[str] = []
        self.tab.on("pageerror", lambda err: self.problems.append(f"script error: {err}"))
        self.tab.on("console", self._console)
        self.tab.on("response", lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)
        self.tab.goto(url + "#" + state)
        self.tab.wait_for_selector(".cx[data-ready]")

    def _console(self, message: Any) -> None:
        # a refusal is a 400 answer by design (the page shows its message); anything else is a problem
        if message.type == "error" and "status of 400" not in message.text:
            self.problems.append(message.text)

    def after(self, action: Any) -> None:
        """Do something that asks the server again, and wait for the page to draw the answer."""
        before = self.tab.get_attribute("#explorer", "data-ready")
        action()
        # polled from here: the page's Content-Security-Policy forbids the string evaluation wait_for_function uses
        for _ in range(500):
            if self.tab.get_attribute("#explorer", "data-ready") != before:
                return
            self.tab.wait_for_timeout(10)
        raise AssertionError("the page did not redraw")

    def field(self, param: str, axis: int | None = None) -> Any:
        selector = f"[data-param='{param}']" + ("" if axis is None else f"[data-axis='{axis}']")
        return self.tab.locator(f".cx-form {selector}").first

    def set_field(self, param: str, axis: int | None, value: object) -> None:
        self.after(lambda: (self.field(param, axis).fill(str(value)), self.field(param, axis).press("Tab")))

    def texts(self, grid: str, channel: int = 0) -> dict[int, str]:
        """The numbers drawn on a grid's cells of one channel: drawn index → text."""
        texts = self.tab.evaluate("([g, c]) => window.convarithExplorer.textsOf(g, c)", [grid, channel])
        return {i: t for i, t in enumerate(texts) if t}

    def kinds(self, grid: str) -> str:
        """One letter per drawn cell: the kind each is drawn as."""
        return str(self.tab.evaluate("(g) => window.convarithExplorer.page.grids[g].kinds", grid))

    def cells(self, grid: str, light: str) -> list[int]:
        """The cells of a grid drawn in one highlight (``hl`` window, ``now``, ``reach``), checked on the canvas."""
        lit = self.tab.evaluate("([g, k]) => window.convarithExplorer.litCells(g, k)", [grid, light])
        for c, i in lit:  # each is really painted: the overlay is opaque at its centre
            assert self.pixel("overlay", grid, c, i)[3] > 0, (grid, c, i)
        return sorted(i for _, i in lit)

    def pixel(self, layer: str, grid: str, channel: int, i: int) -> list[int]:
        return list(self.tab.evaluate("(a) => window.convarithExplorer.pixel(...a)", [layer, grid, channel, i]))

    def point(self, grid: str, i: int, channel: int = 0) -> tuple[float, float]:
        """Where a cell is on the screen (for the mouse)."""
        x, y = self.tab.evaluate("(a) => window.convarithExplorer.cellCentre(...a)", [grid, channel, i])
        return float(x), float(y)

    def output_shape(self) -> list[int]:
        return [int(v) for v in self.tab.get_attribute(".cx-out", "data-shape").split("x")]


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_numbers_the_page_shows_are_pytorch_s(browser: Any, url: str) -> None:
    page = Page(browser, url, "op=conv2d&input_shape=6,7&kernel_size=3,3&stride=2,2&padding=1:1,1:1&numeric=1&seed=5")
    page.set_field("kernel_size", 1, 2)  # the user types W's kernel size
    assert page.output_shape() == [1, 1, 3, 4]
    page.tab.get_by_role("button", name="last frame").click()
    lower = page.texts("lower")
    x = torch.tensor([number(lower[i]) for i, k in enumerate(page.kinds("lower")) if k == "i"], dtype=torch.float64)
    kernel = page.texts("kernel")
    w = torch.tensor([number(kernel[i]) for i in sorted(kernel)], dtype=torch.float64).reshape(1, 1, 3, 2)
    want = F.conv2d(x.reshape(1, 1, 6, 7), w, stride=2, padding=1)[0, 0]
    shown = page.texts("upper")
    got = torch.tensor([number(shown[i]) for i in sorted(shown)], dtype=torch.float64).reshape(3, 4)
    torch.testing.assert_close(got, want)
    assert x.abs().sum() > 0 and w.abs().sum() > 0  # not a vacuous all-zero comparison
    assert not page.problems, page.problems


def layer_of(state: str) -> tuple[Layer, tuple[int, ...]]:
    """The layer a test's URL state describes (written here independently of the page's own reading)."""
    params = dict(kv.split("=") for kv in state.split("&"))
    ints = lambda key, default: tuple(int(v) for v in params.get(key, default).split(","))
    pads = [tuple(int(v) for v in pair.split(":")) for pair in params.get("padding", "0:0,0:0").split(",")]
    layer = Layer(
        params["op"], 1, 1, kernel_size=ints("kernel_size", "1,1"), stride=ints("stride", "1,1"),
        dilation=ints("dilation", "1,1"), padding=pads, output_padding=ints("output_padding", "0,0"),
    )  # fmt: skip
    return layer, (1, 1, *ints("input_shape", "5,5"))


TRANSPOSED = "op=conv_transpose2d&input_shape=3,4&kernel_size=3,3&stride=2,2&padding=1:1,1:1&output_padding=1,0"


@pytest.mark.parametrize(
    "state", ["op=conv2d&input_shape=5,6&kernel_size=3,2&stride=2,1&dilation=1,2&padding=1:1,0:2", TRANSPOSED]
)
def test_highlights_are_rows_and_columns_of_c(browser: Any, url: str, state: str) -> None:
    page = Page(browser, url, state)
    layer, shape = layer_of(state)
    bound = layer.bind(shape)
    c = conv_matrix(bound, np.ones(bound.weight_shape), format="dense") != 0
    drawn = [i for i, k in enumerate(page.kinds("lower")) if k == "i"]  # the input cells: row-major, in order
    assert len(drawn) == math.prod(bound.input_spatial)
    position = {d: n for n, d in enumerate(drawn)}
    for row in (0, c.shape[0] // 2, c.shape[0] - 1):
        page.tab.mouse.click(*page.point("upper", row))  # pin an output cell
        lit = page.cells("lower", "hl")
        columns = [position[d] for d in lit if d in position]
        assert sorted(columns) == list(np.flatnonzero(c[row])), row
        dark = next(d for d in drawn if d not in lit)
        assert page.pixel("overlay", "lower", 0, dark)[3] == 0  # and nothing else is painted
        page.tab.mouse.click(*page.point("upper", row))  # unpin
    for column in (0, c.shape[1] // 2, c.shape[1] - 1):
        page.tab.mouse.move(*page.point("lower", drawn[column]))
        assert page.cells("upper", "reach") == list(np.flatnonzero(c[:, column])), column
    assert not page.problems, page.problems


def test_the_scatter_view_counts_the_overlap_of_c(browser: Any, url: str) -> None:
    page = Page(browser, url, TRANSPOSED)
    page.after(lambda: page.tab.select_option("select.cx-view", "scatter"))
    layer, shape = layer_of(TRANSPOSED)
    bound = layer.bind(shape)
    taps_per_output = (conv_matrix(bound, np.ones(bound.weight_shape), format="dense") != 0).sum(axis=1)
    counts = page.texts("upper")
    shown = [int(counts[i]) for i, k in enumerate(page.kinds("upper")) if k in "oe"]  # the output cells, in order
    assert shown == taps_per_output.tolist()
    assert len(set(shown)) > 1  # uneven: the checkerboard this layer is known for
    assert not page.problems, page.problems


@pytest.mark.parametrize("framework", ["torch", "jax", "onnx"])
def test_the_code_panel_s_code_runs_and_reproduces_the_page(browser: Any, url: str, framework: str) -> None:
    state = "op=conv2d&input_shape=5,6&in_channels=2&out_channels=2&kernel_size=3,2&stride=2,1&padding=1:2,0:1"
    page = Page(browser, url, state + "&numeric=1&seed=7")
    page.tab.locator(f".cx-code-tabs [data-code='{framework}']").click()
    code = page.tab.locator(".cx-source").inner_text()
    weight = _page_weight(page, (2, 2, 3, 2))
    page.tab.get_by_role("button", name="last frame").click()
    x = _grid_values(page, "lower", "i", 2).reshape(1, 2, 5, 6)
    y = _grid_values(page, "upper", "o", 2)
    assert np.abs(x).sum() > 0 and np.abs(weight).sum() > 0 and np.abs(y).sum() > 0
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{framework} code from the page>", "exec"), namespace)
    made = namespace["make"](weight)
    if framework == "torch":
        got = made(torch.from_numpy(x)).detach().numpy()
    elif framework == "jax":
        got = np.asarray(made(x))
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(made.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got.reshape(y.shape), y, atol=1e-4)
    assert not page.problems, page.problems


def _grid_values(page: Page, grid: str, kind: str, channels: int) -> np.ndarray:
    """The numbers drawn on a grid's cells of one kind, every channel, in row-major order."""
    kinds = page.kinds(grid)
    values = []
    for channel in range(channels):
        texts = page.texts(grid, channel)
        values += [number(texts[i]) for i, k in enumerate(kinds) if k == kind]
    return np.array(values)


def _page_weight(page: Page, shape: tuple[int, ...]) -> np.ndarray:
    """The kernel the page shows, moving to a frame of every output channel (its kernels: one panel per input)."""
    weight = np.zeros(shape)
    out_cells = int(np.prod(page.output_shape()[2:]))
    for o in range(shape[0]):
        page.tab.locator("input.cx-scrub").fill(str(o * out_cells))
        for i in range(shape[1]):
            kernel = page.texts("kernel", i)
            weight[o, i] = np.array([number(kernel[t]) for t in sorted(kernel)]).reshape(shape[2:])
    return weight


def test_the_url_holds_the_whole_state(browser: Any, url: str) -> None:
    page = Page(browser, url, "op=conv1d&input_shape=9&kernel_size=4&stride=2&padding=2:1&framework=onnx")
    assert page.output_shape() == [1, 1, 5]
    page.set_field("dilation", 0, 2)
    assert page.output_shape() == [1, 1, 3]
    page.tab.get_by_role("button", name="next frame").click()
    page.tab.locator(".cx-summary").click()  # out of the buttons: the keys step frames
    page.tab.keyboard.press("ArrowRight")
    assert page.tab.get_attribute("#explorer", "data-frame") == "2"
    shared = page.tab.url
    assert "dilation=2" in shared and "framework=onnx" in shared and "frame=2" in shared
    other = Page(browser, url, shared.split("#", 1)[1])  # a colleague opens the shared link
    assert other.output_shape() == [1, 1, 3]
    assert other.field("dilation", 0).input_value() == "2"
    assert other.field("padding", 0).input_value() == "2"
    assert other.tab.locator(".cx-frameworks .cx-on").inner_text() == "ONNX"
    assert other.tab.get_attribute("#explorer", "data-frame") == "2"  # the frame shown travels too
    assert not page.problems and not other.problems


def test_bad_input_gets_one_clear_line_and_no_server_error(browser: Any, url: str) -> None:
    page = Page(browser, url, "op=conv2d&input_shape=5,5&kernel_size=3,3")
    page.set_field("kernel_size", 0, 0)
    banner = page.tab.locator(".cx-banner")
    assert banner.is_visible()
    assert banner.inner_text() == "kernel_size: each value must be 1 … 16; got 0"
    assert "cx-bad" in (page.field("kernel_size", 0).get_attribute("class") or "")
    page.set_field("kernel_size", 0, 7)  # bigger than the padded input: the geometry's own refusal
    assert "input_shape" in banner.inner_text() and banner.is_visible()
    page.set_field("kernel_size", 0, 2)
    assert not banner.is_visible() and page.output_shape() == [1, 1, 4, 3]
    page.after(lambda: page.tab.goto(url + "#op=conv2d&input_shape=5,x&kernel_size=3,3"))
    assert "input_shape" in banner.inner_text()
    assert not page.problems, page.problems


def test_each_framework_s_words_and_refusals(browser: Any, url: str) -> None:
    page = Page(browser, url, "op=conv2d&input_shape=6,6&kernel_size=3,3&stride=2,2&padding=1:2,0:0")
    assert page.tab.locator(".cx-framework-says [data-code='inexpressible-padding']").count() == 1
    page.after(lambda: page.tab.locator(".cx-frameworks [data-framework='keras']").click())
    assert page.tab.locator(".cx-framework-says [data-code='needs-workaround']").count() == 1
    options = page.tab.locator("select.cx-policy option").all_inner_texts()
    assert "'same'" in options and "'causal'" in options
    assert "strides" in page.tab.locator(".cx-params").inner_text()
    page.after(lambda: page.tab.select_option("select.cx-policy", "same_tf"))
    assert page.output_shape() == [1, 1, 3, 3]
    pads = Layer("conv2d", kernel_size=3, stride=2, padding="same_tf").bind((6, 6)).pads
    shown = page.tab.eval_on_selector_all(
        ".cx-form input[data-param='padding']", "ns => ns.map(n => [n.dataset.axis, n.dataset.side, n.placeholder])"
    )
    assert {(int(a), int(side)): int(text) for a, side, text in shown} == {
        (a, side): pads[a][side] for a in range(2) for side in range(2)
    }
    assert "ZeroPadding2D" not in page.tab.locator(".cx-code").inner_text()
    assert not page.problems, page.problems


def test_the_solver_applies_a_layer(browser: Any, url: str) -> None:
    page = Page(browser, url, "op=conv_transpose2d&input_shape=8,8&kernel_size=3,3")
    page.tab.locator(".cx-solve-from").fill("16")
    page.tab.locator(".cx-solve-to").fill("32")
    page.tab.locator("button.cx-solve").click()
    page.tab.wait_for_selector("button.cx-apply")
    page.after(lambda: page.tab.locator("button.cx-apply").first.click())
    assert page.output_shape() == [1, 1, 32, 32]
    assert not page.problems, page.problems


def test_values_typed_or_dropped_as_an_image_are_the_input(browser: Any, url: str, tmp_path: Any) -> None:
    from PIL import Image

    page = Page(browser, url, "op=conv2d&input_shape=4,5&kernel_size=2,2&numeric=1&seed=1")
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    Image.fromarray(grey, mode="L").convert("RGB").save(tmp_path / "x.png")
    page.after(lambda: page.tab.set_input_files("input.cx-image", str(tmp_path / "x.png")))
    texts = page.texts("lower")
    drawn = [number(texts[i]) for i, k in enumerate(page.kinds("lower")) if k == "i"]
    np.testing.assert_allclose(drawn, np.round(grey.ravel() / 255, 2))
    page.tab.mouse.dblclick(*page.point("lower", 7))  # the user types a value into one input cell
    page.after(lambda: (page.tab.locator("input.cx-edit").fill("7"), page.tab.locator("input.cx-edit").press("Enter")))
    assert page.texts("lower")[7] == "7"
    page.tab.get_by_role("button", name="last frame").click()
    x = np.array([number(t) for _, t in sorted(page.texts("lower").items())]).reshape(1, 1, 4, 5)
    w = np.array([number(t) for _, t in sorted(page.texts("kernel").items())]).reshape(1, 1, 2, 2)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w))[0, 0].numpy()
    shown = np.array([number(t) for _, t in sorted(page.texts("upper").items())]).reshape(3, 4)
    np.testing.assert_allclose(shown, want, atol=0.051)  # as shown: two decimals below 10, one from 10
    assert not page.problems, page.problems


def test_a_kernel_tap_lights_every_cell_it_multiplies(browser: Any, url: str) -> None:
    state = "op=conv2d&input_shape=6,5&kernel_size=3,2&stride=2,1&dilation=1,2&padding=1:1,0:1"
    page = Page(browser, url, state)
    layer, shape = layer_of(state)
    bound = layer.bind(shape)
    drawn = [i for i, k in enumerate(page.kinds("lower")) if k == "i"]
    for tap in (0, 3, 5):
        one_hot = np.zeros(bound.weight_shape)
        one_hot.flat[tap] = 1
        used = np.flatnonzero((conv_matrix(bound, one_hot, format="dense") != 0).any(axis=0))
        page.tab.mouse.move(*page.point("kernel", tap))
        lit = set(page.cells("lower", "hl"))
        assert [n for n, d in enumerate(drawn) if d in lit] == list(used), tap
    assert not page.problems, page.problems


@pytest.mark.parametrize(
    "state",
    [
        "op=max_pool2d&input_shape=5,6&kernel_size=3,2&stride=2,2&padding=1:1,1:1&ceil_mode=1&numeric=1",
        "op=avg_pool1d&input_shape=9&kernel_size=4&stride=3&padding=2:2&count_include_pad=0&numeric=1",
        "op=conv_transpose2d&input_shape=3,4&in_channels=2&out_channels=4&groups=2&kernel_size=3,3&stride=2,2"
        "&padding=1:1,0:0&output_padding=1,0&view=scatter&numeric=1&flip=1",
        "op=conv3d&input_shape=3,4,4&in_channels=2&out_channels=2&groups=2&kernel_size=2,2,2&numeric=1",
        "op=conv2d&input_shape=6,6&kernel_size=3,3&padding=-1:2,2:-1&padding_mode=zeros&numeric=1",
        "op=conv2d&input_shape=6,6&kernel_size=3,3&padding=2:2,2:2&padding_mode=reflect&numeric=1",
    ],
)
def test_every_control_and_cell_answers_without_a_script_error(browser: Any, url: str, state: str) -> None:
    page = Page(browser, url, state)
    explorer = "window.convarithExplorer"
    for grid in ("lower", "kernel", "upper"):
        count = page.tab.evaluate(f"(g) => {explorer}.textsOf(g, 0).length", grid)
        for i in sorted({0, count // 2, count - 1}):
            page.tab.mouse.move(*page.point(grid, i))
            page.tab.mouse.click(*page.point(grid, i))  # pin
            page.tab.mouse.click(*page.point(grid, i))  # unpin
    for name in ("next frame", "last frame", "previous frame", "first frame"):
        page.tab.get_by_role("button", name=name).click()
    page.tab.locator("select.cx-speed").select_option("60")
    page.tab.locator("button.cx-play").click()
    page.tab.wait_for_timeout(300)
    page.tab.get_by_role("button", name="previous frame").click()  # stops playing (if it has not ended)
    assert page.tab.get_attribute("button.cx-play", "aria-label") == "play"
    box = page.tab.locator("canvas.cx-matrix-overlay").bounding_box()
    assert box is not None
    page.tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    frame = int(page.tab.get_attribute("#explorer", "data-frame") or -1)
    assert 0 <= frame < page.tab.evaluate(f"() => {explorer}.count()")
    assert not page.problems, page.problems
