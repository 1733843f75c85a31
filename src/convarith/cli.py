"""``convarith <verb>``: a thin shell over the library. Parses, calls, prints.

Exit codes: 0 success, 2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_options import (
    CeilOpt,
    DilationOpt,
    GroupsOpt,
    JsonOpt,
    KernelOpt,
    OpArg,
    OutChannelsOpt,
    OutputPaddingOpt,
    PaddingModeOpt,
    PaddingOpt,
    StrideOpt,
    guarded,
    parse_padding,
    parse_per_axis,
    parse_sizes,
    spec_from_options,
)
from .errors import ConvArithError
from .geometry.report import shape_report
from .geometry.solver import solve as solve_sizes
from .render.commands import animate, draw_matrix
from .render.commands import gallery as gallery_command

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Convolution arithmetic you can run, see and trust.",
    epilog="Run 'convarith VERB --help' for the options and examples of each verb.",
)


# -- output -------------------------------------------------------------------------------------


def _console() -> Any:
    from rich.console import Console

    return Console()


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# -- verbs --------------------------------------------------------------------------------------


@app.command()
@guarded
def shape(
    op: OpArg,
    input: Annotated[str, typer.Option("--input", "-i", help="Input shape N x C x spatial…, e.g. 1x3x32x32.")],
    kernel_size: KernelOpt,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Output shape of a layer, axis by axis, with the guide's relationship and the pitfalls.

    Examples:

      convarith shape conv2d --input 1x3x32x32 --out-channels 16 -k 3 --stride 2 --padding 1

      convarith shape conv_transpose2d -i 1x16x16x16 --out-channels 3 -k 3 --stride 2 --padding 1 --output-padding 1

      convarith shape conv1d -i 8x4x100 -k 4 --padding same --json
    """
    spec = spec_from_options(
        op, kernel_size, stride, padding, dilation, groups, output_padding, padding_mode, ceil_mode
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
def explain(
    op: OpArg,
    input: Annotated[str, typer.Option("--input", "-i", help="Input shape N x C x spatial…, e.g. 1x1x4x4.")],
    kernel_size: KernelOpt,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    markdown: Annotated[Path | None, typer.Option(help="Also write the derivation as Markdown here.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the derivation as HTML here.")] = None,
) -> None:
    """The derivation of a layer with its numbers: relationships, equivalent direct conv, C.

    The guide's relationship that gives each output size, the equivalent direct convolution of a
    transposed one (stretched input drawn), the rotated kernel, and C itself for small cases.

    Examples:

      convarith explain conv2d -i 1x1x4x4 -k 3

      convarith explain conv_transpose2d -i 1x1x3x3 -k 3 --stride 2 --padding 1 --output-padding 1

      convarith explain conv_transpose1d -i 1x1x4 -k 3 --stride 2 --dilation 2 --html explain.html
    """
    from .explain.derivation import explain_layer
    from .explain.document import to_html, to_markdown, to_text

    spec = spec_from_options(
        op, kernel_size, stride, padding, dilation, groups, output_padding, padding_mode, ceil_mode
    )
    doc = explain_layer(spec, parse_sizes("input", input), out_channels=out_channels)
    typer.echo(to_text(doc))
    for path, render in ((markdown, to_markdown), (html, to_html)):
        if path is not None:
            path.write_text(render(doc), encoding="utf-8")
            typer.echo(f"wrote {path}")


@app.command()
@guarded
def matrix(
    op: OpArg,
    input: Annotated[str, typer.Option("--input", "-i", help="Input shape C x spatial…, e.g. 1x4x4.")],
    kernel_size: KernelOpt,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    weights: Annotated[Path | None, typer.Option(help="Kernel as .npy in PyTorch's layout (default: random).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random kernel.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save C as .npz or .mtx.")] = None,
    memory_budget: Annotated[float, typer.Option(help="Refuse matrices above this many GiB.")] = 4.0,
    as_json: JsonOpt = False,
) -> None:
    """The sparse matrix C of a layer (one sample); save it as .npz or Matrix Market.

    Symbolic (w00 w01 …) for small single-channel cases, a summary otherwise.

    Examples:

      convarith matrix conv2d -i 1x4x4 -k 3

      convarith matrix conv_transpose2d -i 1x2x2 -k 3

      convarith matrix conv2d -i 16x128x128 --out-channels 16 -k 3 --padding 1 -o c.npz
    """
    import numpy as np

    from .explain.derivation import symbolic_matrix
    from .geometry.shapes import output_shape_of
    from .ops.matrix import conv_matrix, save_matrix

    spec = spec_from_options(op, kernel_size, stride, padding, dilation, groups, output_padding, padding_mode)
    shape = parse_sizes("input", input)
    if spec.kind not in ("conv", "conv_transpose"):
        raise ConvArithError("op", "'matrix' draws convolutions; pooling matrices are in the library (pool_matrix)", op)
    out_shape = output_shape_of(spec, shape, out_channels=out_channels)
    c_in, c_out = shape[-spec.ndim - 1], out_shape[-spec.ndim - 1]
    layout = (c_in, c_out // spec.groups) if spec.transposed else (c_out, c_in // spec.groups)
    if weights is not None:
        try:
            weight = np.load(weights)
        except (OSError, ValueError) as err:
            raise ConvArithError("weights", "must be a readable .npy file", str(weights)) from err
    else:
        weight = np.random.default_rng(seed).standard_normal((*layout, *spec.kernel_size))
    C = conv_matrix(
        op,
        weight,
        shape,
        stride=spec.stride,
        padding=spec.padding,
        dilation=spec.dilation,
        groups=spec.groups,
        output_padding=spec.output_padding,
        padding_mode=spec.padding_mode,
        memory_budget=int(memory_budget * 2**30),
    )
    summary = {
        "op": op,
        "shape": list(C.shape),
        "nnz": int(C.nnz),
        "density": C.nnz / max(C.shape[0] * C.shape[1], 1),
        "bytes": int(C.data.nbytes + C.indices.nbytes + C.indptr.nbytes),
        "index_dtype": str(C.indices.dtype),
    }
    if output is not None:
        save_matrix(C, output)
        summary["saved"] = str(output)
    if as_json:
        _dump(summary)
        return
    typer.echo(
        f"C: {C.shape[0]} × {C.shape[1]}, {C.nnz} nonzeros (density {summary['density']:.3g}), "
        f"{summary['bytes'] / 2**20:.1f} MiB as CSR with {summary['index_dtype']} indices"
    )
    if c_in == 1 and c_out == 1 and C.shape[0] * C.shape[1] <= 64 * 64:
        rows = symbolic_matrix(spec, shape[-spec.ndim :])
        width = max(len(c) for row in rows for c in row)
        typer.echo("\n".join(" ".join(c.rjust(width) for c in row) for row in rows))
    if output is not None:
        typer.echo(f"wrote {output}")


@app.command()
@guarded
def tour(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Markdown and HTML report.")] = Path("tour-output"),
    backend: Annotated[str, typer.Option(help="auto (PyTorch when installed), torch or numpy.")] = "auto",
    pictures: Annotated[bool, typer.Option(help="Draw the guide's animations into the report.")] = True,
) -> None:
    """Walk through the motivating question and answer it with numbers computed on the spot.

    Example:

      convarith tour --out tour-output
    """
    if backend not in ("auto", "torch", "numpy"):
        raise ConvArithError("backend", "must be auto, torch or numpy", backend)
    from .explain.document import to_text
    from .explain.tour import write_tour

    doc = write_tour(out, backend, pictures)
    typer.echo(to_text(doc))
    failed = [c for c in doc.checks if not c.passed]
    typer.echo(
        f"{len(doc.checks) - len(failed)} of {len(doc.checks)} checks passed; wrote {out / 'tour.md'} and "
        f"{out / 'tour.html'}"
    )
    if failed:
        raise typer.Exit(1)


# Picture verbs live with the pictures; their module imports only typer until a command runs.
app.command()(animate)
app.command("draw-matrix")(draw_matrix)
app.command("gallery")(gallery_command)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
