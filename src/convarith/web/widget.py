"""The explorer in a notebook cell: an anywidget running the page's own script, answered by the kernel.

The widget's front end is the explorer page's script (``static/explorer.js``) with a few lines that
send its requests to the kernel instead of a server; the kernel answers each with
:func:`~convarith.web.payload.describe` (or the solver), exactly as the server does. The state
lives in the synced ``state`` trait, so ``widget.state`` is what the user set last.

>>> from convarith import Layer
>>> widget = Explorer(Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1), (3, 3))
>>> widget.ask("layer", widget.state)["shapes"]["output"]
[1, 1, 5, 5]
>>> widget.ask("layer", {**widget.state, "kernel_size": [0, 3]})["error"]["param"]
'kernel_size'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets

from ..errors import ConvArithError
from ..layer import Layer
from .app import page_file
from .payload import describe, error_body, solutions
from .state import read_state, state_for

__all__ = ["Explorer"]

_GLUE = """
// the notebook's transport: requests go to the kernel as widget messages
export default {
  render({ model, el }) {
    let next = 0;
    const waiting = new Map();
    model.on("msg:custom", (msg) => {
      const done = waiting.get(msg.id);
      if (done) { waiting.delete(msg.id); done(msg.answer); }
    });
    const ask = (kind, body) => new Promise((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      model.send({ kind, id, body });
    });
    const explorer = mount(el, {
      layer: (state) => ask("layer", state),
      solve: (request) => ask("solve", request),
      writeState: (state) => { model.set("state", state); model.save_changes(); },
    }, model.get("state"));
    return () => explorer.stop();
  },
};
"""


class Explorer(anywidget.AnyWidget):
    """The interactive explorer of one layer, in a Jupyter cell."""

    _esm = page_file("explorer.js") + _GLUE
    _css = page_file("explorer.css")
    state = traitlets.Dict().tag(sync=True)

    def __init__(self, layer: Layer | None = None, input_shape: Sequence[int] | None = None) -> None:
        if layer is None:
            layer, input_shape = Layer("conv2d", 1, 1, kernel_size=3, stride=2, padding=1), (5, 5)
        if input_shape is None:
            raise ConvArithError("input_shape", "the explorer needs the layer's input shape", None)
        super().__init__(state=state_for(layer, input_shape))
        self.on_msg(self._answer)

    def ask(self, kind: str, body: object) -> dict[str, Any]:
        """What the kernel answers the page: ``kind`` is ``"layer"`` (a state) or ``"solve"``."""
        try:
            if kind == "layer":
                return describe(read_state(body))
            if kind == "solve":
                return solutions(body)
            raise ConvArithError("kind", "must be layer or solve", repr(kind))
        except ConvArithError as err:
            return error_body(err)

    def _answer(self, _widget: object, content: dict[str, Any], _buffers: object) -> None:
        self.send({"id": content.get("id"), "answer": self.ask(str(content.get("kind")), content.get("body"))})
