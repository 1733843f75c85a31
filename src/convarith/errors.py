"""The one exception family of convarith."""

from __future__ import annotations

__all__ = ["ConvArithError"]


class ConvArithError(ValueError):
    """An invalid configuration: one line naming the parameter, the rule and the value.

    ``param``, ``rule`` and ``value`` are kept as attributes so that programs (the CLI, the web
    page) can point at the offending field without parsing the message.

    Examples
    --------
    >>> err = ConvArithError("stride", "must be at least 1 on every axis", (0, 1))
    >>> str(err)
    'stride: must be at least 1 on every axis; got (0, 1)'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, param: str, rule: str, value: object = None) -> None:
        self.param = param
        self.rule = rule
        self.value = value
        got = "" if value is None else f"; got {value}"
        super().__init__(f"{param}: {rule}{got}")
