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


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else ""


def parse_args(texts: Sequence[str]) -> dict[str, Any]:
    """``key=value`` texts as keyword arguments, each value a Python literal read with ``ast`` (never
    evaluated), or the text itself when it is not one.

    >>> parse_args(["depth=4", "crop=False", "name=unet", "sizes=(3, 4)"])
    {'depth': 4, 'crop': False, 'name': 'unet', 'sizes': (3, 4)}
    """
    import ast

    out: dict[str, Any] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConvArithError("args", "must be key=value with a Python name as the key", repr(text))
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key.strip()] = value.strip()
    return out


def load_model(spec: str, args: dict[str, Any] | None = None) -> tuple[object, dict[str, Any]]:
    """A model named on the command line, and the options left for its tracer.

    ``package.module:factory`` imports the module (the current folder first on the path, as
    ``python -m`` does) and calls the factory with ``args``; an ``.onnx`` or ``.keras`` file and
    ``keras.applications.NAME`` are returned as they are, with ``args`` as the tracer's options.
    """
    import sys

    args = dict(args or {})
    if ":" in spec and not os.path.exists(spec):
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute or not all(p.isidentifier() for p in [*module_name.split("."), attribute]):
            raise ConvArithError("model", "must be package.module:factory, a file, or keras.applications.NAME", spec)
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # the user's module: any error while importing it is theirs to see
            raise ConvArithError(
                "model", f"cannot import {module_name} ({type(err).__name__}: {_first(err)})", spec
            ) from None
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise ConvArithError("model", f"{module_name} has no callable {attribute}", spec)
        try:
            return factory(**args), {}
        except TypeError as err:
            raise ConvArithError("args", f"{attribute} does not take them ({_first(err)})", sorted(args)) from None
        except Exception as err:
            raise ConvArithError("model", f"{attribute} raised {type(err).__name__}: {_first(err)}", spec) from None
    model_framework(spec)  # a file or keras.applications name, else one clear refusal
    if not spec.startswith("keras.applications.") and not os.path.isfile(spec):
        raise ConvArithError("model", "is not a file", spec)
    return spec, args
