"""What each framework refuses, as findings: one registry, one rule set per framework.

A :class:`~convarith.Layer` refuses only what no framework gives a meaning to; everything a
particular framework refuses (PyTorch's half-kernel bound on pooling pads, its ``output_padding <
max(stride, dilation)``, …) is a rule of that framework, registered here by name. :func:`check`
runs the layer's own checks on an input and then the framework's rules, and returns every refusal
(severity ``error``) and every warning (padding the framework cannot express) as
:class:`~convarith.findings.Finding` values, before anything is computed.

The frameworks issue adds Keras, JAX, ONNX and TensorFlow with :func:`register`, without touching
the layer.

Examples
--------
>>> from convarith import Layer
>>> [f.message for f in check(Layer("conv_transpose1d", kernel_size=3, stride=2, output_padding=2), (1, 1, 4))]
['output_padding: must be smaller than stride or dilation on every axis (stride (2,), dilation (1,)); got (2,)']
>>> check(Layer("conv_transpose1d", kernel_size=3, stride=2, output_padding=1), (1, 1, 4))
()
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from ..errors import ConvArithError
from ..findings import Finding, refusal
from ..layer import Layer

__all__ = ["FRAMEWORKS", "INT64_MAX", "Rules", "check", "int64_refusals", "raise_refusals", "register"]

Rules = Callable[[Layer, Sequence[int] | None], list[Finding]]
"""A framework's rules: the layer, and the input shape when known, to findings."""

_RULES: dict[str, Rules] = {}


INT64_MAX = 2**63 - 1


def int64_refusals(framework: str, layer: Layer, why: str) -> list[Finding]:
    """Every integer parameter of ``layer`` beyond a 64-bit integer, refused by ``framework`` (``why``:
    the framework's reason, e.g. "XLA's sizes and windows are int64").

    >>> [f.param for f in int64_refusals("onnx", Layer("conv1d", kernel_size=2**63), "int64")]
    ['kernel_size']
    """
    ints = {
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "dilation": layer.dilation,
        "output_padding": layer.output_padding,
        "groups": (layer.groups,),
        "padding": tuple(abs(p) for pair in (layer.pads if layer.is_resolved else ()) for p in pair),
    }
    return [
        refusal(framework, name, f"must fit in a 64-bit integer ({why})", values)
        for name, values in ints.items()
        if values and max(values) > INT64_MAX
    ]


def register(framework: str, rules: Rules) -> None:
    """Add (or replace) a framework's rules."""
    _RULES[framework] = rules


def _rules(framework: object) -> Rules:
    if not isinstance(framework, str):
        raise ConvArithError("framework", f"must be one of {', '.join(sorted(FRAMEWORKS))}", repr(framework))
    if framework not in _RULES and framework in FRAMEWORKS:
        importlib.import_module(f"{__name__}.{framework}")  # registers itself; pure Python
    if framework not in _RULES:
        raise ConvArithError("framework", f"must be one of {', '.join(sorted(FRAMEWORKS))}", repr(framework))
    return _RULES[framework]


FRAMEWORKS: tuple[str, ...] = ("torch", "keras", "jax", "onnx", "tf")
"""Frameworks with rules (each a module of this package, importing no framework)."""


def check(layer: Layer, input_shape: Sequence[int] | None = None, *, framework: str = "torch") -> tuple[Finding, ...]:
    """The refusals and warnings of ``framework`` for ``layer`` (on ``input_shape``, if given).

    Parameters
    ----------
    layer
        Any :class:`~convarith.Layer`.
    input_shape
        ``(N, C, *spatial)``, ``(C, *spatial)`` or the spatial sizes; without it only the rules
        that do not depend on the input run.
    framework
        ``"torch"``, ``"keras"``, ``"jax"``, ``"onnx"`` or ``"tf"``.

    Returns
    -------
    tuple of Finding
        Errors (the framework refuses; :func:`raise_refusals` raises the first) and warnings.

    Examples
    --------
    >>> from convarith import Layer
    >>> [f.code for f in check(Layer("conv2d", kernel_size=3, padding=[(1, 2), (0, 0)]), (1, 1, 8, 8))]
    ['inexpressible-padding']
    """
    rules = _rules(framework)
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer", type(layer).__name__)
    if input_shape is not None:
        try:
            layer.bind(input_shape)
        except ConvArithError as err:
            return (refusal(framework, err.param, err.rule, err.value),)
    return tuple(rules(layer, input_shape))


def raise_refusals(layer: Layer, input_shape: Sequence[int] | None = None, *, framework: str = "torch") -> None:
    """Raise the first refusal of ``framework`` as a :class:`~convarith.ConvArithError`."""
    for found in check(layer, input_shape, framework=framework):
        if found.severity == "error":
            raise found.error()
