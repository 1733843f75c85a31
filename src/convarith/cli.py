"""``convarith <verb>``: a thin shell over the library. Parses, calls, prints.

Exit codes: 0 success, 2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from .errors import ConvArithError
from .geometry.report import shape_report
from .geometry.solver import solve as solve_sizes
from .geometry.spec import OPS, ConvSpec

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Convolution arithmetic you can run, see and trust.",
    epilog="Run 'convarith VERB --help' for the options and examples of each verb.",
)


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


def _console() -> Any:
    from rich.console import Console

    return Console()


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


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


# -- verbs --------------------------------------------------------------------------------------


@app.command()
@guarded
def shape(
    op: OpArg,
    input: Annotated[str, typer.Option("--input", "-i", help="Input shape N x C x spatial…, e.g. 1x3x32x32.")],
    kernel_size: KernelOpt,
    out_channels: Annotated[int | None, typer.Option(help="Output channels (default: the input's).")] = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: Annotated[str, typer.Option(help="zeros, reflect, replicate or circular.")] = "zeros",
    ceil_mode: Annotated[bool, typer.Option(help="Pooling: round the output size up.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Output shape of a layer, axis by axis, with the guide's relationship and the pitfalls.

    Examples:

      convarith shape conv2d --input 1x3x32x32 --out-channels 16 -k 3 --stride 2 --padding 1

      convarith shape conv_transpose2d -i 1x16x16x16 --out-channels 3 -k 3 --stride 2 --padding 1 --output-padding 1

      convarith shape conv1d -i 8x4x100 -k 4 --padding same --json
    """
    spec = ConvSpec.create(
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
    report = shape_report(spec, parse_sizes("input", input), out_channels=out_channels)
    if as_json:
        _dump(report)
        return
    _print_shape_report(report)


def _print_shape_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    shape_text = " × ".join(map(str, report["input_shape"])) + "  →  " + " × ".join(map(str, report["output_shape"]))
    console.print(f"[bold]{report['op']}[/bold]  {shape_text}")
    transposed = report["op"].startswith("conv_transpose")
    table = Table(show_edge=False, header_style="bold")
    for column in (
        "axis",
        "in",
        "kernel",
        "stride",
        "dilation",
        "padding",
        *(["out_pad"] if transposed else []),
        "out",
        "guide",
    ):
        table.add_column(column, justify="right" if column not in ("guide", "padding") else "left")
    for axis in report["axes"]:
        rel = axis["relationship"]
        guide = f"rel. {rel['number']}: {rel['formula']}" if rel else "general formula"
        table.add_row(
            str(axis["axis"]),
            str(axis["input"]),
            str(axis["kernel_size"]),
            str(axis["stride"]),
            str(axis["dilation"]),
            "({}, {})".format(*axis["padding"]),
            *([str(axis["output_padding"])] if transposed else []),
            str(axis["output"]),
            guide,
        )
    console.print(table)
    if transposed:
        console.print(
            "[bold]Equivalent direct convolution[/bold] (stride 1, kernel rotated 180°, in/out channels swapped):"
        )
        for axis in report["axes"]:
            eq = axis["equivalent_direct"]
            pads = ", ".join(f"{p}" + (" (crop)" if p < 0 else "") for p in eq["padding"])
            console.print(
                f"  axis {axis['axis']}: insert {eq['zeros_between']} zeros → {eq['stretched']} cells, "
                f"pad ({pads}), kernel {eq['kernel_size']}, dilation {eq['dilation']}"
            )
    elif "transpose" in report:
        console.print(
            f"Transposed back to the input size: output_padding = {tuple(report['transpose']['output_padding'])}"
        )
    for warning in report["warnings"]:
        console.print(f"[yellow]note:[/yellow] {warning}")


@app.command()
@guarded
def solve(
    op: OpArg,
    input: Annotated[str, typer.Option("--input", "-i", help="Input spatial size(s), e.g. 32 or 32x24.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Wanted output spatial size(s).")],
    kernel_size: Annotated[str | None, typer.Option("--kernel-size", "-k", help="Fix the kernel size.")] = None,
    stride: Annotated[str | None, typer.Option(help="Fix the stride.")] = None,
    padding: Annotated[str | None, typer.Option(help="Fix the padding (as in 'shape').")] = None,
    dilation: Annotated[str | None, typer.Option(help="Fix the dilation.")] = None,
    output_padding: Annotated[str | None, typer.Option(help="Fix the output padding.")] = None,
    ceil_mode: Annotated[bool, typer.Option(help="Pooling: round up.")] = False,
    max_kernel: Annotated[int, typer.Option(help="Largest kernel to try.")] = 7,
    max_stride: Annotated[int, typer.Option(help="Largest stride to try.")] = 4,
    max_dilation: Annotated[int, typer.Option(help="Largest dilation to try.")] = 3,
    top: Annotated[int, typer.Option(help="How many solutions to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Parameter sets that map an input size to a wanted output size, best first, with reasons.

    Examples:

      convarith solve conv_transpose2d --input 16 --output 32

      convarith solve conv2d -i 224 -o 112 --kernel-size 7

      convarith solve max_pool2d -i 7x7 -o 4x4 --ceil-mode --json
    """
    solutions = solve_sizes(
        op,
        parse_per_axis("input", input),  # type: ignore[arg-type]
        parse_per_axis("output", output),  # type: ignore[arg-type]
        kernel_size=parse_per_axis("kernel_size", kernel_size),
        stride=parse_per_axis("stride", stride),
        padding=parse_padding(padding),
        dilation=parse_per_axis("dilation", dilation),
        output_padding=parse_per_axis("output_padding", output_padding),
        ceil_mode=ceil_mode,
        max_kernel=max_kernel,
        max_stride=max_stride,
        max_dilation=max_dilation,
        limit=top,
    )
    rows: list[dict[str, Any]] = [
        {
            "kernel_size": list(s.spec.kernel_size),
            "stride": list(s.spec.stride),
            "padding": [list(p) for p in s.spec.pads],
            "dilation": list(s.spec.dilation),
            "output_padding": list(s.spec.output_padding),
            "penalty": s.penalty,
            "reasons": list(s.reasons),
        }
        for s in solutions
    ]
    if as_json:
        _dump({"op": op, "input": input, "output": output, "solutions": rows})
        return
    from rich.table import Table

    table = Table(title=f"{op}: {input} → {output}", show_edge=False, header_style="bold")
    for column in ("#", "kernel", "stride", "padding", "dilation", "out_pad", "penalty", "why"):
        table.add_column(column)

    def fmt(values: list[Any]) -> str:
        return str(values[0]) if all(v == values[0] for v in values) else ",".join(map(str, values))

    for rank, row in enumerate(rows, 1):
        pads = fmt([p[0] if p[0] == p[1] else f"{p[0]}:{p[1]}" for p in row["padding"]])
        table.add_row(
            str(rank),
            fmt(row["kernel_size"]),
            fmt(row["stride"]),
            pads,
            fmt(row["dilation"]),
            fmt(row["output_padding"]),
            f"{row['penalty']:g}",
            "; ".join(row["reasons"]),
        )
    _console().print(table)


@app.command()
@guarded
def tour(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Markdown and HTML report.")] = Path("tour-output"),
) -> None:
    """Walk through the motivating question and answer it with numbers.

    Example:

      convarith tour --out tour-output
    """
    spec = ConvSpec.create("conv2d", kernel_size=3)
    report = shape_report(spec, (1, 1, 4, 4))
    out.mkdir(parents=True, exist_ok=True)
    (out / "shape.json").write_text(json.dumps(report, indent=2))
    _print_shape_report(report)
    typer.echo(f"wrote {out / 'shape.json'}")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
