"""Layer calls written as text: parsed with :mod:`ast`, literals only — nothing a user writes is evaluated.

>>> import ast
>>> call = ast.parse("nn.Conv2d(3, 16, kernel_size=3, stride=(2, 1))").body[0].value
>>> call_name(call)
'nn.Conv2d'
>>> literal_arguments(call, ("in_channels", "out_channels", "kernel_size", "stride"), "")
{'in_channels': 3, 'out_channels': 16, 'kernel_size': 3, 'stride': (2, 1)}
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ..errors import ConvArithError

__all__ = ["MAX_SOURCE", "Unknown", "call_name", "literal_arguments", "parse_source"]

MAX_SOURCE = 2_000
"""Characters a layer string may have."""


def parse_source(text: object) -> ast.Call:
    """The one call a layer string holds.

    >>> parse_source("keras.layers.Conv2D(16, 3)").func.attr
    'Conv2D'
    >>> parse_source("import os")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: source: must be one call such as "nn.Conv2d(3, 16, 3)"; got 'import os'
    """
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_SOURCE:
        raise ConvArithError("source", f"must be a layer call of at most {MAX_SOURCE} characters", repr(text)[:80])
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        tree = None
    if tree is None or not isinstance(tree.body, ast.Call):
        raise ConvArithError("source", 'must be one call such as "nn.Conv2d(3, 16, 3)"', repr(text)[:80])
    return tree.body


def call_name(call: ast.Call) -> str:
    """The dotted name called (``torch.nn.Conv2d``), or a refusal for anything else."""
    parts: list[str] = []
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ConvArithError("source", "must call a layer by its name", ast.unparse(call.func))
    parts.append(node.id)
    return ".".join(reversed(parts))


class Unknown:
    """A name in the text (``x``, ``w``, ``b``): a value the text refers to but does not give."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def _literal(node: ast.expr, name: str) -> object:
    if isinstance(node, ast.Name) and node.id not in ("True", "False", "None"):
        return Unknown(node.id)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ConvArithError(
            name, "must be a literal (a number, string, tuple or list)", ast.unparse(node)[:80]
        ) from None
    return _tuples(value)


def _tuples(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def literal_arguments(call: ast.Call, positional: Sequence[str], source: str) -> dict[str, object]:
    """Positional and keyword arguments by parameter name, as literals (lists become tuples)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise ConvArithError("source", "must not use * or ** arguments", source[:80] or None)
    if len(call.args) > len(positional):
        raise ConvArithError("source", f"takes at most {len(positional)} positional arguments", len(call.args))
    values: dict[str, object] = {}
    for name, node in zip(positional, call.args, strict=False):
        values[name] = _literal(node, name)
    for keyword in call.keywords:
        assert keyword.arg is not None
        if keyword.arg in values:
            raise ConvArithError(keyword.arg, "is given twice")
        values[keyword.arg] = _literal(keyword.value, keyword.arg)
    return values
