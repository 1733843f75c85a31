"""Framework adapters: one module per framework, each imported only when it is used.

Nothing is imported eagerly: ``import convarith.frameworks`` never imports a framework, and a
missing or broken framework breaks only the adapter that needs it (einops' backends are the
model). Each adapter module (:mod:`.torch`, :mod:`.keras`, :mod:`.jax`, :mod:`.onnx`, :mod:`.tf`)
follows :class:`~convarith.frameworks.base.Adapter`: ``emit`` writes the framework's code for a
layer, ``apply`` runs what that code built, ``from_native`` reads the framework's own layer or call
back into a :class:`~convarith.Layer`; its rules live in :mod:`convarith.rules`.

A *runner* is an adapter in one setting: Keras on each of its backends, ONNX on onnxruntime or on
the ONNX reference evaluator. Runners whose setting is not the current process's (Keras chooses
its backend once per process) run in a worker process (:mod:`.worker`).

Examples
--------
>>> sorted(ADAPTERS)
['jax', 'keras', 'onnx', 'tf', 'torch']
>>> RUNNERS["keras-jax"]
Runner(name='keras-jax', adapter='keras', env=(('KERAS_BACKEND', 'jax'),), label='Keras 3 (jax backend)')
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ..errors import ConvArithError

if TYPE_CHECKING:
    from .base import Adapter

__all__ = ["ADAPTERS", "RUNNERS", "Runner", "adapter", "detect", "installed"]

ADAPTERS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "keras": ("keras",),
    "jax": ("jax",),
    "onnx": ("onnx", "onnxruntime"),
    "tf": ("tensorflow",),
}
"""Adapter name → the distributions it needs (found without importing them)."""


@dataclass(frozen=True)
class Runner:
    """An adapter in one setting: environment variables for its process, and a label."""

    name: str
    adapter: str
    env: tuple[tuple[str, str], ...] = ()
    label: str = ""


RUNNERS: dict[str, Runner] = {
    r.name: r
    for r in (
        Runner("torch", "torch", (), "PyTorch"),
        Runner("jax", "jax", (), "JAX"),
        Runner("keras-torch", "keras", (("KERAS_BACKEND", "torch"),), "Keras 3 (torch backend)"),
        Runner("keras-jax", "keras", (("KERAS_BACKEND", "jax"),), "Keras 3 (jax backend)"),
        Runner("keras-tf", "keras", (("KERAS_BACKEND", "tensorflow"),), "Keras 3 (tensorflow backend)"),
        Runner("onnx", "onnx", (("CONVARITH_ONNX_RUNTIME", "onnxruntime"),), "ONNX on onnxruntime"),
        Runner("onnx-ref", "onnx", (("CONVARITH_ONNX_RUNTIME", "reference"),), "ONNX reference evaluator"),
        Runner("tf", "tf", (), "TensorFlow"),
    )
}
"""Every runner ``convarith verify`` knows, by name."""


def installed(name: str) -> bool:
    """Whether the adapter's frameworks are installed (looked up, not imported).

    >>> installed("no-such-framework")
    False
    """
    needs = ADAPTERS.get(name)
    return needs is not None and all(importlib.util.find_spec(module) is not None for module in needs)


def adapter(name: object) -> Adapter:
    """The adapter module ``name`` (imports the adapter, which imports its framework only when used).

    >>> adapter("torch").NAME
    'torch'
    """
    if not isinstance(name, str) or name not in ADAPTERS:
        raise ConvArithError("framework", f"must be one of {', '.join(ADAPTERS)}", repr(name))
    return cast("Adapter", importlib.import_module(f"{__name__}.{name}"))


_MODULE_OF = {
    "torch": "torch",
    "keras": "keras",
    "tf_keras": "keras",
    "tensorflow": "tf",
    "onnx": "onnx",
    "jax": "jax",
    "flax": "jax",
}


def detect(obj: object) -> str:
    """The adapter that reads ``obj``, from the package its type comes from.

    >>> import torch
    >>> detect(torch.nn.Conv2d(3, 16, 3))
    'torch'
    """
    package = type(obj).__module__.split(".")[0]
    if package == "keras" or package.startswith("keras"):
        return "keras"
    found = _MODULE_OF.get(package)
    if found is None:
        raise ConvArithError(
            "source",
            "must be a convarith.Layer, a layer string, or a PyTorch, Keras, JAX, ONNX or TensorFlow layer",
            type(obj).__name__,
        )
    return found
