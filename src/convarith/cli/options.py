"""What every verb shares: the option types, the parsing of per-axis text, and the layer they describe.

One meaning for ``--input`` everywhere: the input's shape — the spatial sizes, optionally
preceded by C, or by N and C; the op's number of spatial axes tells which (for ``conv2d``:
``32x32``, ``3x32x32`` or ``1x3x32x32``). One number stands for every spatial axis. Channels
come from ``--input`` only.

Imports only typer and the pure-Python layer model, so that ``convarith shape`` starts fast.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import typer

from ..errors import ConvArithError
from ..layer import OPS, POLICIES, IntOrSeq, Layer, PaddingArg, parse_op

__all__ = [
    "CeilOpt",
    "CountIncludePadOpt",
    "DilationOpt",
    "DivisorOpt",
    "FrameworkOpt",
    "GroupsOpt",
    "InputOpt",
    "JsonOpt",
    "KernelOpt",
    "OpArg",
    "OutChannelsOpt",
    "OutputPaddingOpt",
    "PaddingModeOpt",
    "PaddingOpt",
    "StrideOpt",
    "build_layer",
    "check_finite",
    "check_seed",
    "input_shape",
    "parse_padding",
    "parse_per_axis",
    "parse_sizes",
    "spatial_part",
]

_SEP = re.compile(r"[x×,*]")
_INTS = "integers separated by x or , (e.g. 3x32x32)"


# -- parsing ------------------------------------------------------------------------------------


def parse_sizes(param: str, text: str) -> tuple[int, ...]:
    """``"1x3x32x32"``, ``"1,3,32,32"`` or ``"1×3×32×32"`` → ``(1, 3, 32, 32)``.

    >>> parse_sizes("input", "1x3x32x32")
    (1, 3, 32, 32)
    >>> parse_sizes("input", "3x")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: input: must be integers separated by x or , (e.g. 3x32x32); got '3x'
    """
    try:
        return tuple(int(part) for part in _SEP.split(text.strip()))
    except ValueError:
        raise ConvArithError(param, f"must be {_INTS}", repr(text)) from None


def parse_per_axis(param: str, text: str | None) -> int | tuple[int, ...] | None:
    """``"3"`` → 3 (every axis); ``"3,1"`` or ``"3x1"`` → one value per axis; ``None`` stays ``None``.

    >>> parse_per_axis("stride", "2x1"), parse_per_axis("stride", "2"), parse_per_axis("stride", None)
    ((2, 1), 2, None)
    """
    if text is None:
        return None
    sizes = parse_sizes(param, text)
    return sizes[0] if len(sizes) == 1 else sizes


def parse_padding(text: str | None) -> PaddingArg | None:
    """An int, per-axis ints, ``before:after`` per axis (``1:2,0``), or a policy name.

    >>> parse_padding("1:2,0"), parse_padding("same_tf"), parse_padding("2")
    ([(1, 2), 0], 'same_tf', 2)
    """
    if text is None:
        return None
    text = text.strip()
    if re.fullmatch(r"[A-Za-z_]+", text):
        return text
    entries: list[int | tuple[int, ...]] = []
    for part in re.split(r"[,x×]", text):
        try:
            values = tuple(int(v) for v in part.split(":"))
        except ValueError:
            raise ConvArithError(
                "padding",
                f"must be an int, per-axis ints, before:after pairs (1:2,0) or one of {', '.join(POLICIES)}",
                repr(text),
            ) from None
        if len(values) > 2:
            raise ConvArithError("padding", "an asymmetric pad is before:after", repr(part))
        entries.append(values[0] if len(values) == 1 else values)
    return entries[0] if len(entries) == 1 and isinstance(entries[0], int) else entries


def input_shape(op: str, text: str, *, param: str = "input") -> tuple[int, ...]:
    """The ``--input`` rule: spatial sizes, optionally after C or N and C; one number for every axis.

    >>> input_shape("conv2d", "32"), input_shape("conv2d", "3x32x32"), input_shape("conv1d", "3x32")
    ((32, 32), (3, 32, 32), (3, 32))
    """
    _, ndim = parse_op(op)
    sizes = parse_sizes(param, text)
    if len(sizes) == 1:
        return sizes * ndim
    if len(sizes) not in (ndim, ndim + 1, ndim + 2):
        raise ConvArithError(
            param,
            f"{op} takes {ndim} spatial size(s), optionally preceded by C or by N and C "
            f"({ndim}, {ndim + 1} or {ndim + 2} values, or one for every axis)",
            repr(text),
        )
    return sizes


def spatial_part(op: str, text: str, *, param: str) -> int | tuple[int, ...]:
    """The spatial sizes of a shape written by the ``--input`` rule (``solve``'s sizes).

    >>> spatial_part("conv2d", "1x3x32x24", param="input"), spatial_part("conv2d", "16", param="input")
    ((32, 24), 16)
    """
    _, ndim = parse_op(op)
    if len(parse_sizes(param, text)) == 1:
        return parse_sizes(param, text)[0]
    return input_shape(op, text, param=param)[-ndim:]


def check_finite(param: str, value: float, *, low: float, high: float = math.inf, what: str = "") -> float:
    """A float option that must be a finite number in ``[low, high]`` (``nan`` and ``inf`` refused).

    >>> check_finite("fps", float("nan"), low=0.01, high=100)
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: fps: must be a finite number from 0.01 to 100; got nan
    """
    if not (math.isfinite(value) and low <= value <= high):
        bound = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise ConvArithError(param, f"must be a finite number {bound}{what}", value)
    return value


def check_positive(param: str, value: float, *, what: str = "") -> float:
    """A finite float above zero.

    >>> check_positive("memory_budget", -1.0)
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: memory_budget: must be a finite number above 0; got -1.0
    """
    if not (math.isfinite(value) and value > 0):
        raise ConvArithError(param, f"must be a finite number above 0{what}", value)
    return value


def check_seed(seed: int) -> int:
    """Seeds of NumPy's generators are non-negative integers.

    >>> check_seed(-5)
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: seed: must not be negative; got -5
    """
    if seed < 0:
        raise ConvArithError("seed", "must not be negative", seed)
    return seed


def build_layer(
    op: str,
    shape: tuple[int, ...],
    kernel_size: str | IntOrSeq,
    *,
    out_channels: int | None = None,
    stride: str | None = None,
    padding: str = "0",
    dilation: str = "1",
    groups: int = 1,
    output_padding: str = "0",
    padding_mode: str = "zeros",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    bias: bool = True,
) -> Layer:
    """The layer the options describe, its input channels taken from the ``--input`` shape.

    >>> build_layer("conv2d", (3, 8, 8), "3", out_channels=16, stride="2", padding="1")
    Layer('conv2d', 3, 16, kernel_size=3, stride=2, padding=1)
    """
    kind, ndim = parse_op(op)
    channels = shape[-ndim - 1] if len(shape) > ndim else None
    if kind in ("max_pool", "avg_pool") and out_channels is not None and channels is None:
        channels = 1  # a pool keeps its channels: let the layer refuse a different count
    kernel = parse_per_axis("kernel_size", kernel_size) if isinstance(kernel_size, str) else kernel_size
    pads, dilations, extra = (
        parse_padding(padding),
        parse_per_axis("dilation", dilation),
        parse_per_axis("output_padding", output_padding),
    )
    assert pads is not None and dilations is not None and extra is not None  # parsed from text that was given
    return Layer(
        op,
        channels,
        out_channels,
        kernel,
        stride=parse_per_axis("stride", stride),
        padding=pads,
        dilation=dilations,
        groups=groups,
        output_padding=extra,
        padding_mode=padding_mode,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
        bias=bias,
    )


LAYER_FLAGS = (
    "kernel_size",
    "out_channels",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_padding",
    "padding_mode",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
    "bias",
)
"""The verb parameters that describe the layer (the keywords of :func:`build_layer`)."""


def layer_from(ctx: typer.Context, shape: tuple[int, ...], **given: Any) -> Layer:
    """The layer a verb's own options describe (Click keeps them in ``ctx.params``), with ``given``
    in place of those the verb worked out itself (``matrix`` reads the kernel from ``--weights``)."""
    params = {name: value for name, value in ctx.params.items() if name in LAYER_FLAGS} | given
    return build_layer(ctx.params["op"], shape, **params)


# -- shared options -----------------------------------------------------------------------------

OpArg = Annotated[
    str,
    typer.Argument(help=f"One of: {', '.join(OPS)} (and up to 9d).", show_default=False),
]
InputOpt = Annotated[
    str,
    typer.Option(
        "--input",
        "-i",
        help="Input shape: the spatial sizes, optionally after C or N and C (conv2d: 32x32, 3x32x32 or 1x3x32x32); "
        "one number stands for every spatial axis.",
        show_default=False,
    ),
]
KernelOpt = Annotated[str, typer.Option("--kernel-size", "-k", help="One int, or one per axis: 3, 3,1 or 3x1.")]
StrideOpt = Annotated[str | None, typer.Option(help="Default 1 (pooling: the kernel size).", show_default=False)]
PaddingOpt = Annotated[
    str,
    typer.Option(help=f"Int, per-axis ints, before:after pairs (1:2,0), or a policy: {', '.join(POLICIES)}."),
]
DilationOpt = Annotated[str, typer.Option(help="One int, or one per axis.")]
GroupsOpt = Annotated[int, typer.Option(help="Blocked channel connections, as in PyTorch.")]
OutputPaddingOpt = Annotated[str, typer.Option(help="Transposed convolutions: extra cells after.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PaddingModeOpt = Annotated[str, typer.Option(help="zeros, reflect, replicate or circular.")]
CeilOpt = Annotated[bool, typer.Option(help="Pooling: round the output size up.")]
CountIncludePadOpt = Annotated[bool, typer.Option(help="avg_pool: count padded cells in the divisor.")]
DivisorOpt = Annotated[int | None, typer.Option(help="avg_pool: divide by this instead.", show_default=False)]
OutChannelsOpt = Annotated[int | None, typer.Option(help="Output channels (default: the input's).", show_default=False)]
FrameworkOpt = Annotated[
    str, typer.Option(help="Whose rules refuse a layer: torch, or none (the layer's own rules only).")
]
