"""Trace a model of any supported framework into an analysis graph (:mod:`convarith.analysis.graph`).

The tracer is chosen from the model: a ``torch.nn.Module`` (:mod:`.trace_torch`), a Keras model, a
``.keras`` file or ``"keras.applications.NAME"`` (:mod:`.trace_keras`), an ONNX ``ModelProto`` or an
``.onnx`` file (:mod:`.trace_onnx`). Each imports its framework only when called.

>>> model_framework("model.onnx"), model_framework("keras.applications.VGG16")
('onnx', 'keras')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConvArithError

if TYPE_CHECKING:
    from ..analysis.graph import Graph

__all__ = ["model_framework", "trace"]

_TRACERS = {"torch": "trace_torch", "keras": "trace_keras", "onnx": "trace_onnx"}


def model_framework(model: object) -> str:
    """``torch``, ``keras`` or ``onnx``: whose model this is (from its classes, or a file's suffix)."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if text.startswith("keras.applications."):
            return "keras"
        suffix = os.path.splitext(text)[1].lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix in (".keras", ".h5"):
            return "keras"
        raise ConvArithError("model", "must be an .onnx or .keras file, or keras.applications.NAME", repr(text))
    for cls in type(model).__mro__:
        package = cls.__module__.split(".")[0]
        if package == "torch":
            return "torch"
        if package in ("keras", "tf_keras"):
            return "keras"
        if package == "onnx":
            return "onnx"
    raise ConvArithError(
        "model", "must be a torch.nn.Module, a Keras model, an ONNX model, or a path to one", type(model).__name__
    )


def trace(model: object, input_shape: Sequence[int], **options: Any) -> Graph:
    """The model's graph at ``input_shape`` (in the model's own layout; the graph is in convarith's)."""
    module = importlib.import_module(f"{__package__}.{_TRACERS[model_framework(model)]}")
    graph: Graph = module.trace(model, input_shape, **options)
    return graph
