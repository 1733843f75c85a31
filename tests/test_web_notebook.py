"""The explorer in notebooks: rich displays and the widget, in an executed notebook and in a real browser."""

from __future__ import annotations

import json
from typing import Any

import nbformat
from nbclient import NotebookClient

from convarith import Layer
from convarith.web.widget import Explorer

CELLS = [
    "from convarith import Layer\nlayer = Layer('conv_transpose2d', 1, 1, kernel_size=3, stride=2, padding=1)\nlayer",
    "layer.bind((1, 1, 3, 3))",
    "from convarith.render.frames import build_animation\nbuild_animation(layer, (3, 3))",
    "from convarith.web.widget import Explorer\nwidget = Explorer(layer, (3, 3))\nwidget",
    "widget.ask('layer', widget.state)['shapes']['output']",
    "import torch\nfrom convarith.analysis import analyze\n"
    "analyze(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU()), (1, 1, 9, 9))",
]


def test_a_notebook_displays_layers_animations_and_the_widget() -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [cell.outputs[0]["data"] for cell in notebook.cells]
    assert "Layer(&#x27;conv_transpose2d&#x27;, 1, 1, kernel_size=3, stride=2, padding=1)" in outputs[0]["text/html"]
    bound = outputs[1]["text/html"]
    assert "(1, 1, 3, 3) → (1, 1, 5, 5)" in bound and "uneven-overlap" in bound
    svg = outputs[2]["image/svg+xml"]
    assert svg.startswith("<svg") and svg.count("<animate") >= 25  # a frame each: 5 × 5 outputs
    view = outputs[3]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"]
    assert outputs[4]["text/plain"] == "[1, 1, 5, 5]"
    report = outputs[5]["text/markdown"]
    assert report.startswith("# Model analysis") and "| conv" in report.lower()


FAKE_MODEL = """
const listeners = {};
let state = %(state)s;
const model = {
  get: (name) => state,
  set: (name, value) => { state = value; window.syncedState = value; },
  save_changes: () => {},
  on: (name, callback) => { listeners[name] = callback; },
  send: async (message) => {
    const answer = await window.kernelAsk(message.kind, message.body);  // the kernel, here a Playwright binding
    listeners["msg:custom"]({ id: message.id, answer });
  },
};
const url = URL.createObjectURL(new Blob([%(esm)s], { type: "text/javascript" }));
const widget = await import(url);
widget.default.render({ model, el: document.getElementById("cell") });
"""


def test_the_widget_s_front_end_talks_to_the_kernel(browser: Any) -> None:
    """The widget's own script in a real browser, its messages answered by the widget's Python side."""
    widget = Explorer(Layer("conv2d", 1, 1, kernel_size=3, stride=2, padding=1), (7, 7))
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.expose_function("kernelAsk", widget.ask)
    page.set_content("<style>" + widget._css + "</style><div id='cell'></div>")
    page.add_script_tag(
        type="module", content=FAKE_MODEL % {"state": json.dumps(widget.state), "esm": json.dumps(widget._esm)}
    )
    page.wait_for_selector("#cell[data-ready]")
    assert page.get_attribute(".cx-out", "data-shape") == "1x1x4x4"
    field = page.locator(".cx-form [data-param='kernel_size'][data-axis='1']")
    field.fill("1")
    field.press("Tab")
    page.wait_for_selector(".cx-out[data-shape='1x1x4x4']", state="detached")
    assert page.get_attribute(".cx-out", "data-shape") == "1x1x4x5"
    assert page.evaluate("() => window.syncedState.kernel_size") == [3, 1]
    assert not problems, problems
