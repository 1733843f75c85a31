"""Bad input → one line on stderr naming the flag the user typed, exit code 2.

The library raises :class:`~convarith.ConvArithError` with the *library's* parameter name
(``input_shape``, ``kernel_size``, ``weight``…). The CLI maps it to the flag of the verb that
was run (``--input``, ``--kernel-size``, ``--weights``…) and, when the user typed a short alias
(``-k``), names that spelling.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TypeVar

import typer

from ..errors import ConvArithError

__all__ = ["ARGV", "FLAGS", "fail", "flag_for", "guarded", "one_line"]

P = ParamSpec("P")
R = TypeVar("R")

ARGV: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("convarith_argv", default=())
"""The command line being run (set by the app's entry point), to tell which alias of a flag was typed."""

FLAGS: dict[str, tuple[str, ...]] = {
    "op": ("OP",),
    "input_shape": ("--input", "-i"),
    "input": ("--input", "-i"),
    "input_size": ("--input", "-i"),
    "in_channels": ("--input", "-i"),
    "output_size": ("--output", "-o"),
    "output": ("--output", "-o"),
    "path": ("--output", "-o"),
    "out_channels": ("--out-channels",),
    "kernel_size": ("--kernel-size", "-k"),
    "stride": ("--stride",),
    "padding": ("--padding",),
    "dilation": ("--dilation",),
    "groups": ("--groups",),
    "output_padding": ("--output-padding",),
    "padding_mode": ("--padding-mode",),
    "ceil_mode": ("--ceil-mode",),
    "count_include_pad": ("--count-include-pad",),
    "divisor_override": ("--divisor-override",),
    "bias": ("--bias",),
    "framework": ("--framework",),
    "max_kernel": ("--max-kernel",),
    "max_stride": ("--max-stride",),
    "max_dilation": ("--max-dilation",),
    "limit": ("--top",),
    "top": ("--top",),
    "memory_budget": ("--memory-budget",),
    "seed": ("--seed",),
    "fps": ("--fps",),
    "style": ("--style",),
    "view": ("--view",),
    "frames": ("--frames",),
    "numeric": ("--numeric",),
    "backend": ("--backend",),
    "input_values": ("--input-values",),
    "kernel_values": ("--kernel-values",),
    "weights": ("--weights",),
    "transpose": ("--transpose",),
    "symbolic": ("--symbolic",),
    "markdown": ("--markdown",),
    "html": ("--html",),
    "names": ("--only",),
    "only": ("--only",),
}
"""Library parameter → the flag (and its aliases) of the CLI option that sets it, for every verb."""


def _typed(aliases: Sequence[str], argv: Sequence[str]) -> str:
    """The alias the user typed last (``-k``, ``--kernel-size=3``, ``-k3`` all count), else the first."""
    typed = aliases[0]
    for token in argv:
        if token == "--":
            break
        for alias in aliases:
            long = alias.startswith("--")
            if token == alias or (long and token.startswith(alias + "=")) or (not long and token.startswith(alias)):
                typed = alias
    return typed


def flag_for(param: str, overrides: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """The flag to name for a library parameter, in the spelling the user typed.

    >>> flag_for("output_padding")
    '--output-padding'
    >>> token = ARGV.set(("shape", "conv2d", "-i", "8x8", "-k", "0"))
    >>> flag_for("kernel_size")
    '-k'
    >>> ARGV.reset(token)
    """
    aliases = (overrides or {}).get(param) or FLAGS.get(param)
    if aliases is None:
        return param
    return _typed(aliases, ARGV.get())


def one_line(text: str) -> str:
    """Collapse line breaks so that an error stays one line whatever the user typed.

    >>> one_line("a\\nb\\r\\nc")
    'a b c'
    """
    return " ".join(text.splitlines())


def fail(flag: str, rule: str, value: object = None) -> typer.Exit:
    """Print ``error: FLAG: RULE; got VALUE`` on stderr and give the exit to raise (code 2)."""
    got = "" if value is None else f"; got {value}"
    typer.echo(one_line(f"error: {flag}: {rule}{got}"), err=True)
    return typer.Exit(2)


def guarded(
    overrides: Mapping[str, tuple[str, ...]] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a verb: a :class:`ConvArithError` becomes one line naming the flag, and exit code 2.

    ``overrides`` maps library parameters to this verb's flags where they differ from
    :data:`FLAGS` (e.g. ``weight`` → ``--weights`` in ``matrix``, ``--kernel-values`` in
    ``animate``; ``output`` → ``--out`` in ``tour``). An ``OSError`` (a disk that fills up, a
    folder removed while writing) is reported against the verb's ``output`` flag the same way.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except ConvArithError as err:
                raise fail(flag_for(err.param, overrides), err.rule, err.value) from None
            except OSError as err:
                where = err.filename if err.filename is not None else None
                raise fail(
                    flag_for("output", overrides), f"cannot write ({err.strerror or err})", where and repr(str(where))
                ) from None

        return wrapper

    return decorate
