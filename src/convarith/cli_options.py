"""What every CLI verb shares: parsing of per-axis options, the option types, and the error guard.

Kept apart from :mod:`convarith.cli` so that verbs defined elsewhere (the pictures) use the same
options without a circular import. Imports only typer and the pure-Python geometry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from .errors import ConvArithError
from .geometry.spec import OPS, ConvSpec

P = ParamSpec("P")
R = TypeVar("R")

# -- parsing ------------------------------------------------------------------------------------

_SEP = re.compile(r"[x×,*]")


def parse_sizes(param: str, text: str) -> tuple[int, ...]:
    """``"1x3x32x32"`` or ``"1,3,32,32"`` → ``(1, 3, 32, 32)``."""
    try:
        return tuple(int(part) for part in _SEP.split(text.strip()))
    except ValueError:
        raise ConvArithError(param, "must be integers separated by x or ,", repr(text)) from None


def parse_per_axis(param: str, text: str | None) -> int | tuple[int, ...] | None:
    """``"3"`` → 3 (every axis); ``"3,1"`` or ``"3x1"`` → one value per axis."""
    if text is None:
        return None
    sizes = parse_sizes(param, text)
    return sizes[0] if len(sizes) == 1 else sizes


def parse_padding(text: str | None) -> Any:
    """An int, per-axis ints, ``before:after`` per axis (``1:2,0``), or a policy name."""
    if text is None:
        return None
    text = text.strip()
    if re.fullmatch(r"[A-Za-z_]+", text):
        return text
    entries: list[Any] = []
    for part in re.split(r"[,x×]", text):
        try:
            values = [int(v) for v in part.split(":")]
        except ValueError:
            raise ConvArithError(
                "padding", "must be an int, per-axis ints, before:after pairs (1:2,0) or a policy", repr(text)
            ) from None
        if len(values) > 2:
            raise ConvArithError("padding", "an asymmetric pad is before:after", repr(part))
        entries.append(values[0] if len(values) == 1 else tuple(values))
    return entries[0] if len(entries) == 1 else entries


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn bad input into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConvArithError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper


# -- shared options -----------------------------------------------------------------------------

OpArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(OPS)}.", show_default=False)]
KernelOpt = Annotated[str, typer.Option("--kernel-size", "-k", help="One int, or one per axis: 3, 3,1 or 3x1.")]
StrideOpt = Annotated[str | None, typer.Option(help="Default 1 (pooling: the kernel size).")]
PaddingOpt = Annotated[
    str, typer.Option(help="Int, per-axis ints, before:after pairs (1:2,0), or valid|same|same_tf|same_lower|full.")
]
DilationOpt = Annotated[str, typer.Option(help="One int, or one per axis.")]
GroupsOpt = Annotated[int, typer.Option(help="Blocked channel connections, as in PyTorch.")]
OutputPaddingOpt = Annotated[str, typer.Option(help="Transposed convolutions: extra cells after.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PaddingModeOpt = Annotated[str, typer.Option(help="zeros, reflect, replicate or circular.")]
CeilOpt = Annotated[bool, typer.Option(help="Pooling: round the output size up.")]
OutChannelsOpt = Annotated[int | None, typer.Option(help="Output channels (default: the input's).")]


def spec_from_options(
    op: str,
    kernel_size: str,
    stride: str | None,
    padding: str,
    dilation: str,
    groups: int,
    output_padding: str,
    padding_mode: str = "zeros",
    ceil_mode: bool = False,
) -> ConvSpec:
    """A spec from the CLI's text options (shared by every verb that describes a layer)."""
    return ConvSpec.create(
        op,
        kernel_size=parse_per_axis("kernel_size", kernel_size),  # type: ignore[arg-type]
        stride=parse_per_axis("stride", stride),
        padding=parse_padding(padding),
        dilation=parse_per_axis("dilation", dilation),  # type: ignore[arg-type]
        groups=groups,
        output_padding=parse_per_axis("output_padding", output_padding),  # type: ignore[arg-type]
        padding_mode=padding_mode,
        ceil_mode=ceil_mode,
    )
