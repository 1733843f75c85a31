"""Verbs about one layer's numbers: ``shape``, ``solve``, ``explain``, ``matrix``.

``shape`` and ``solve`` import only the pure-Python geometry (no NumPy), so they start fast;
``explain`` and ``matrix`` import the library's NumPy code when they run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ..errors import ConvArithError
from ..layer import Layer, as_choice, parse_op
from ..rules import FRAMEWORKS, raise_refusals
from .errors import guarded
from .options import (
    CeilOpt,
    CountIncludePadOpt,
    DilationOpt,
    DivisorOpt,
    FrameworkOpt,
    GroupsOpt,
    InputOpt,
    JsonOpt,
    KernelOpt,
    OpArg,
    OutChannelsOpt,
    OutputPaddingOpt,
    PaddingModeOpt,
    PaddingOpt,
    StrideOpt,
    check_positive,
    check_seed,
    input_shape,
    layer_from,
    parse_padding,
    parse_per_axis,
    spatial_part,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..geometry.bound import BoundLayer

__all__ = ["bind_checked", "explain", "matrix", "shape", "solve"]

JSON = Mapping[str, object]


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def dump(data: object) -> None:
    """Print JSON for scripts."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def framework_of(name: str) -> str | None:
    """``--framework``: a framework with rules, or ``none``."""
    return None if as_choice("framework", name, (*FRAMEWORKS, "none")) == "none" else name


def bind_checked(layer: Layer, shape: Sequence[int], framework: str | None) -> BoundLayer:
    """Bind the layer to the input after the framework's rules (a refusal names its parameter)."""
    if framework is not None:
        raise_refusals(layer, shape, framework=framework)
    return layer.bind(shape)


# -- shape --------------------------------------------------------------------------------------


@guarded()
def shape(
    ctx: typer.Context,
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    count_include_pad: CountIncludePadOpt = True,
    divisor_override: DivisorOpt = None,
    bias: Annotated[bool, typer.Option(help="Count a bias in the parameters.")] = True,
    framework: FrameworkOpt = "torch",
    as_json: JsonOpt = False,
) -> None:
    """Output shape of a layer, axis by axis, with the guide's relationship and the findings.

    Examples:

      convarith shape conv2d --input 1x3x32x32 --out-channels 16 -k 3 --stride 2 --padding 1

      convarith shape conv_transpose2d -i 16x16x16 --out-channels 3 -k 3 --stride 2 --padding 1 --output-padding 1

      convarith shape conv1d -i 8x4x100 -k 4 --padding same --json
    """
    from ..geometry.report import shape_report

    sizes = input_shape(op, input)
    layer = layer_from(ctx, sizes)
    rules = framework_of(framework)
    bound = bind_checked(layer, sizes, rules)
    report = shape_report(bound, framework=rules)
    if as_json:
        dump(report)
        return
    if layer.weighted:  # show the channels the input gave
        layer = layer.replace(in_channels=bound.in_channels, out_channels=bound.out_channels)
    _print_shape_report(layer, report)


def _sizes(values: object) -> str:
    return " × ".join(map(str, cast(Sequence[int], values)))


def _print_shape_report(layer: Layer, report: JSON) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{report['op']}[/bold]  {_sizes(report['input_shape'])}  →  {_sizes(report['output_shape'])}")
    console.print(escape(repr(layer)))
    transposed = layer.transposed
    axes = cast(Sequence[Mapping[str, object]], report["axes"])
    table = Table(show_edge=False, header_style="bold")
    columns = ["axis", "in", "kernel", "stride", "dilation", "padding", *(["out_pad"] if transposed else []), "out"]
    for column in (*columns, "guide"):
        table.add_column(column, justify="left" if column in ("guide", "padding") else "right")
    relations: dict[object, Mapping[str, object]] = {}
    for axis in axes:
        rel = cast(Mapping[str, object] | None, axis["relationship"])
        guide = f"rel. {rel['number']}" if rel else "general formula"
        if rel is not None:
            relations.setdefault(rel["number"], rel)
        before, after = cast(Sequence[int], axis["padding"])
        table.add_row(
            str(axis["axis"]),
            str(axis["input"]),
            str(axis["kernel_size"]),
            str(axis["stride"]),
            str(axis["dilation"]),
            f"({before}, {after})",
            *([str(axis["output_padding"])] if transposed else []),
            str(axis["output"]),
            escape(guide),
        )
    console.print(table)
    for number, rel in relations.items():
        console.print(
            f"guide's relationship {number} ({escape(str(rel['name']))}, §{rel['section']}): "
            f"{escape(str(rel['formula']))}"
        )
    if transposed:
        console.print(
            "[bold]Equivalent direct convolution[/bold] (stride 1, kernel rotated 180°, in/out channels swapped):"
        )
        for axis in axes:
            eq = cast(Mapping[str, object], axis["equivalent_direct"])
            pads = ", ".join(f"{p}" + (" (crop)" if p < 0 else "") for p in cast(Sequence[int], eq["padding"]))
            console.print(
                f"  axis {axis['axis']}: insert {eq['zeros_between']} zeros → {eq['stretched']} cells, "
                f"pad ({pads}), kernel {eq['kernel_size']}, dilation {eq['dilation']}"
            )
    elif "transpose" in report:
        back = cast(Mapping[str, object], report["transpose"])["output_padding"]
        console.print(f"Transposed back to the input size: output_padding = {tuple(cast(Sequence[int], back))}")
    if report.get("weight_shape") is not None:
        console.print(
            f"weight {_sizes(report['weight_shape'])}, {report['parameters']:,} parameters, "
            f"{report['multiply_adds']:,} multiply-adds per sample"
        )
    colour = {"error": "red", "warning": "yellow", "info": "cyan"}
    for found in cast(Sequence[Mapping[str, object]], report["findings"]):
        severity = str(found["severity"])
        label = "note" if severity == "info" else severity
        console.print(f"[{colour.get(severity, 'cyan')}]{label}:[/] {escape(str(found['message']))}")


# -- solve --------------------------------------------------------------------------------------


@guarded()
def solve(
    op: OpArg,
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="Input shape, as everywhere (its spatial sizes are used): 32, 32x24, 3x32x24 or 1x3x32x24.",
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Wanted output shape, the same way.", show_default=False),
    ],
    kernel_size: Annotated[
        str | None, typer.Option("--kernel-size", "-k", help="Fix the kernel size.", show_default=False)
    ] = None,
    stride: Annotated[str | None, typer.Option(help="Fix the stride.", show_default=False)] = None,
    padding: Annotated[str | None, typer.Option(help="Fix the padding (as in 'shape').", show_default=False)] = None,
    dilation: Annotated[str | None, typer.Option(help="Fix the dilation.", show_default=False)] = None,
    output_padding: Annotated[str | None, typer.Option(help="Fix the output padding.", show_default=False)] = None,
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

      convarith solve conv2d -i 3x224x224 -o 112 --kernel-size 7

      convarith solve max_pool2d -i 7x7 -o 4x4 --ceil-mode --json
    """
    from ..geometry.solver import solve as solve_sizes

    parse_op(op)
    solutions = solve_sizes(
        op,
        spatial_part(op, input, param="input_size"),
        spatial_part(op, output, param="output_size"),
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
    rows: list[dict[str, object]] = []
    for s in solutions:
        found = s.layer
        rows.append(
            {
                "layer": found.to_dict(),
                "kernel_size": list(found.kernel_size),
                "stride": list(found.stride),
                "padding": found.padding if isinstance(found.padding, str) else [list(p) for p in found.padding],
                "dilation": list(found.dilation),
                "output_padding": list(found.output_padding),
                "ceil_mode": found.ceil_mode,
                "penalty": s.penalty,
                "reasons": list(s.reasons),
                "findings": [f.to_dict() for f in s.findings],
            }
        )
    if as_json:
        dump({"op": op, "input": input, "output": output, "solutions": rows})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{op}: {input} → {output}"), show_edge=False, header_style="bold")
    for column in ("#", "kernel", "stride", "padding", "dilation", "out_pad", "penalty", "why"):
        table.add_column(column)

    def fmt(values: Sequence[object]) -> str:
        return str(values[0]) if all(v == values[0] for v in values) else ",".join(map(str, values))

    for rank, (s, row) in enumerate(zip(solutions, rows, strict=True), 1):
        pad = s.layer.padding
        pads = pad if isinstance(pad, str) else fmt([b if b == a else f"{b}:{a}" for b, a in pad])
        table.add_row(
            str(rank),
            fmt(s.layer.kernel_size),
            fmt(s.layer.stride),
            pads,
            fmt(s.layer.dilation),
            fmt(s.layer.output_padding),
            f"{s.penalty:g}",
            escape("; ".join(cast(list[str], row["reasons"]))),
        )
    _console().print(table)


# -- explain ------------------------------------------------------------------------------------


@guarded()
def explain(
    ctx: typer.Context,
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    count_include_pad: CountIncludePadOpt = True,
    divisor_override: DivisorOpt = None,
    framework: FrameworkOpt = "torch",
    symbolic: Annotated[bool, typer.Option(help="Show C with tap names (w00 w01 …) rather than numbers.")] = True,
    markdown: Annotated[
        str | None, typer.Option(help="Also write the derivation as Markdown to this file.", show_default=False)
    ] = None,
    html: Annotated[
        str | None, typer.Option(help="Also write the derivation as HTML to this file.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The derivation of a layer with its numbers: relationships, equivalent direct conv, C.

    The guide's relationship that gives each output size, the equivalent direct convolution of a
    transposed one (stretched input drawn), the rotated kernel, and C itself for small cases.

    Examples:

      convarith explain conv2d -i 4x4 -k 3

      convarith explain conv_transpose2d -i 3x3 -k 3 --stride 2 --padding 1 --output-padding 1

      convarith explain conv_transpose1d -i 4 -k 3 --stride 2 --dilation 2 --html explain.html --json
    """
    from .paths import check_distinct, output_file

    sizes = input_shape(op, input)
    layer = layer_from(ctx, sizes)
    bound = bind_checked(layer, sizes, framework_of(framework))
    md_path = None if markdown is None else output_file("markdown", markdown)
    html_path = None if html is None else output_file("html", html)
    check_distinct([("markdown", md_path), ("html", html_path)])

    from ..explain.derivation import explain_layer
    from ..explain.document import to_html, to_markdown, to_text

    doc = explain_layer(bound, symbolic=symbolic)
    written = []
    for path, render in ((md_path, to_markdown), (html_path, to_html)):
        if path is not None:
            path.write_text(render(doc), encoding="utf-8")
            written.append(str(path))
    if as_json:
        data = dict(doc.to_dict())
        if written:
            data["written"] = written
        dump(data)
        return
    typer.echo(to_text(doc))
    for path_text in written:
        typer.echo(f"wrote {path_text}")


# -- matrix -------------------------------------------------------------------------------------

_MATRIX_FLAGS = {"weight": ("--weights",), "output": ("--output", "-o"), "path": ("--output", "-o")}
_SYMBOLIC_CELLS = 64 * 64


@guarded(_MATRIX_FLAGS)
def matrix(
    ctx: typer.Context,
    op: Annotated[
        str,
        typer.Argument(
            help="conv1d … conv3d, conv_transpose1d … conv_transpose3d, max_pool1d … max_pool3d, "
            "avg_pool1d … avg_pool3d (and up to 9d).",
            show_default=False,
        ),
    ],
    input: InputOpt,
    kernel_size: Annotated[
        str | None,
        typer.Option(
            "--kernel-size", "-k", help="One int, or one per axis; optional with --weights.", show_default=False
        ),
    ] = None,
    out_channels: OutChannelsOpt = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    count_include_pad: CountIncludePadOpt = True,
    divisor_override: DivisorOpt = None,
    framework: FrameworkOpt = "torch",
    weights: Annotated[
        str | None,
        typer.Option(
            help="Kernel as .npy in PyTorch's layout; gives the kernel size and channels (default: random).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random kernel (max pooling: of the input).")] = 0,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Save C as .npz or .mtx.")] = None,
    memory_budget: Annotated[float, typer.Option(help="Refuse matrices above this many GiB.")] = 4.0,
    as_json: JsonOpt = False,
) -> None:
    """The sparse matrix C of a layer (one sample): convolutions, transposed convolutions and pools.

    Convolutions use a seeded random kernel unless --weights gives one; max pooling selects at a
    seeded random input; average pooling needs nothing. Symbolic (w00 w01 …) for small
    single-channel convolutions, the values for small pools, a summary otherwise.

    Pooling ops: max_pool1d, max_pool2d, max_pool3d, avg_pool1d, avg_pool2d, avg_pool3d.

    Examples:

      convarith matrix conv2d -i 4x4 -k 3

      convarith matrix conv_transpose2d -i 2x2 -k 3

      convarith matrix max_pool2d -i 4x4 -k 2 --seed 1

      convarith matrix conv2d -i 16x128x128 --out-channels 16 -k 3 --padding 1 -o c.npz

      convarith matrix conv2d -i 3x8x8 --weights k.npy
    """
    from .paths import load_values, output_file

    kind, _ = parse_op(op)
    budget = int(check_positive("memory_budget", memory_budget, what=" (GiB)") * 2**30)
    check_seed(seed)
    sizes = input_shape(op, input)
    weight = load_values("weights", weights)
    kernel: str | tuple[int, ...] | None = kernel_size
    if weight is not None:
        kernel, out_channels = _weights_fit(op, sizes, weight.shape, kernel_size, out_channels, groups)
    if kernel is None:
        raise ConvArithError("kernel_size", "is required (or give --weights)")
    layer = layer_from(ctx, sizes, kernel_size=kernel, out_channels=out_channels)
    bound = bind_checked(layer, sizes, framework_of(framework))
    if weight is not None:
        from ..geometry.shapes import check_weight

        check_weight(bound, weight.shape)
    target = None if output is None else output_file("output", output, (".npz", ".mtx"))

    import numpy as np

    from ..ops.matrix import conv_matrix, pool_matrix, save_matrix

    rng = np.random.default_rng(seed)
    if bound.pooling:
        at = None
        if kind == "max_pool":
            need = math.prod(bound.sample_input_shape) * 8
            if need > budget:
                raise ConvArithError(
                    "input", f"max pooling's input of {need / 2**30:.3g} GiB exceeds --memory-budget", input
                )
            at = rng.integers(0, 4, size=bound.sample_input_shape).astype(np.float64)
        C = pool_matrix(bound, at=at, memory_budget=budget)
    else:
        assert bound.weight_shape is not None
        if weight is None:
            need = math.prod(bound.weight_shape) * 8
            if need > budget:
                raise ConvArithError("kernel_size", f"a kernel of {need / 2**30:.3g} GiB exceeds --memory-budget")
            weight = rng.standard_normal(bound.weight_shape)
        C = conv_matrix(bound, weight, memory_budget=budget)
    rows, cols = C.shape
    summary: dict[str, object] = {
        "op": op,
        "layer": bound.resolved.to_dict(),
        "input_shape": list(bound.sample_input_shape),
        "output_shape": list(bound.sample_output_shape),
        "shape": [rows, cols],
        "nnz": int(C.nnz),
        "density": C.nnz / max(rows * cols, 1),
        "bytes": int(C.data.nbytes + C.indices.nbytes + C.indptr.nbytes),
        "index_dtype": str(C.indices.dtype),
    }
    if target is not None:
        save_matrix(C, target)
        summary["saved"] = str(target)
    if as_json:
        dump(summary)
        return
    typer.echo(
        f"C: {rows} × {cols}, {C.nnz} nonzeros (density {float(cast(float, summary['density'])):.3g}), "
        f"{cast(int, summary['bytes']) / 2**20:.1f} MiB as CSR with {summary['index_dtype']} indices"
    )
    if bound.in_channels == 1 and bound.out_channels == 1 and rows * cols <= _SYMBOLIC_CELLS:
        if bound.pooling:
            cells = [[f"{v:.3g}" if v else "·" for v in row] for row in C.toarray()]
        else:
            from ..explain.derivation import symbolic_matrix

            cells = symbolic_matrix(bound)
        if cells:
            width = max(len(c) for row in cells for c in row)
            typer.echo("\n".join(" ".join(c.rjust(width) for c in row) for row in cells))
    if target is not None:
        typer.echo(f"wrote {target}")


def _weights_fit(
    op: str,
    sizes: tuple[int, ...],
    weight_shape: tuple[int, ...],
    kernel_size: str | None,
    out_channels: int | None,
    groups: int,
) -> tuple[tuple[int, ...], int]:
    """The kernel size and output channels a ``--weights`` array gives; refuse ``-k`` or
    ``--out-channels`` that disagree with it (they are never silently overridden)."""
    from ..geometry.shapes import weight_layer

    kind, ndim = parse_op(op)
    if kind not in ("conv", "conv_transpose"):
        raise ConvArithError("weight", f"{op} has no weights", tuple(weight_shape))
    from_weight = weight_layer(op, weight_shape, groups=groups)
    assert from_weight.out_channels is not None and from_weight.in_channels is not None
    if kernel_size is not None:
        given = Layer(op, kernel_size=parse_per_axis("kernel_size", kernel_size)).kernel_size
        if given != from_weight.kernel_size:
            raise ConvArithError(
                "kernel_size", f"differs from the kernel {from_weight.kernel_size} of --weights", given
            )
    if out_channels is not None and out_channels != from_weight.out_channels:
        raise ConvArithError(
            "out_channels", f"differs from the {from_weight.out_channels} output channels of --weights", out_channels
        )
    if len(sizes) > ndim and sizes[-ndim - 1] != from_weight.in_channels:
        layout = "(C_in, C_out/groups, *kernel)" if kind == "conv_transpose" else "(C_out, C_in/groups, *kernel)"
        raise ConvArithError(
            "weight",
            f"in the layout {layout} with groups {groups} it takes {from_weight.in_channels} input channels, "
            f"--input has {sizes[-ndim - 1]}",
            tuple(weight_shape),
        )
    return from_weight.kernel_size, from_weight.out_channels
