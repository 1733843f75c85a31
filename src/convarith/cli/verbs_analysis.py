"""The ``analyze`` verb: a real model in, every layer's geometry out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConvArithError
from .errors import guarded
from .options import JsonOpt, parse_sizes
from .paths import check_distinct, output_file

if TYPE_CHECKING:
    from ..analysis.model import Analysis
    from ..analysis.sizes import SizeScan

__all__ = ["analyze"]

_FLAGS = {
    "model": ("MODEL",),
    "args": ("--arg",),
    "input_shape": ("--input", "-i"),
    "sizes": ("--sizes",),
    "axis": ("--axis",),
    "node": ("--node",),
    "cell": ("--cell",),
    "markdown": ("--markdown",),
    "html": ("--html",),
    "field": ("--field",),
    "depth": ("--depth",),
    "output": ("--html",),
}


def _sizes(text: str) -> range:
    start, sep, stop = text.partition("..")
    try:
        lo, hi = int(start), int(stop)
    except ValueError:
        raise ConvArithError("sizes", "must be FIRST..LAST (e.g. 200..600)", repr(text)) from None
    if not sep or not 1 <= lo <= hi:
        raise ConvArithError("sizes", "must be FIRST..LAST with 1 ≤ FIRST ≤ LAST", repr(text))
    return range(lo, hi + 1)


@guarded(_FLAGS)
def analyze(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="package.module:factory (a callable returning a torch.nn.Module or Keras model), "
            "an .onnx or .keras file, or keras.applications.NAME.",
            show_default=False,
        ),
    ],
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="The model's input shape as it takes it (e.g. 1x3x224x224; Keras: 1x224x224x3)."
        ),
    ],
    arg: Annotated[
        list[str] | None,
        typer.Option(
            "--arg", help="key=value for the factory (or keras.applications), a Python literal.", show_default=False
        ),
    ] = None,
    sizes: Annotated[
        str | None,
        typer.Option(help="FIRST..LAST: find the input sizes the model accepts in this range.", show_default=False),
    ] = None,
    axis: Annotated[
        int | None,
        typer.Option(help="With --sizes: the spatial axis to vary (default: all together).", show_default=False),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Show every operation (elementwise ones too).")] = False,
    node: Annotated[
        str | None, typer.Option(help="The node whose cell --field draws (default: the first output).")
    ] = None,
    cell: Annotated[
        str | None, typer.Option(help="Its cell, one index per spatial axis (default: the centre).")
    ] = None,
    field: Annotated[str | None, typer.Option(help="Draw that cell's receptive field (.svg or .png).")] = None,
    depth: Annotated[str | None, typer.Option(help="Plot receptive field and stride by depth (.svg or .png).")] = None,
    markdown: Annotated[str | None, typer.Option(help="Write a Markdown report.", show_default=False)] = None,
    html: Annotated[str | None, typer.Option(help="Write a self-contained HTML report.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """A model's geometry, layer by layer: shapes, receptive fields, strides, coverage, checkerboards.

    Traced on shapes only (nothing runs on data): receptive fields through transposed convolutions,
    upsampling and every branch, merges whose inputs mismatch, input cells no output reads, the
    checkerboard of stacked upsamplings, and with --sizes the input sizes the model accepts.

    Examples:

      convarith analyze mynet:make_unet --arg depth=4 -i 1x1x572x572 --sizes 540..620

      convarith analyze model.onnx -i 1x3x224x224 --html report.html

      convarith analyze keras.applications.VGG16 --arg include_top=False -i 1x224x224x3 --json
    """
    from ..analysis import analyze as run_analysis
    from ..frameworks.graphs import load_model, parse_args

    shape = parse_sizes("input_shape", input)
    if any(v < 1 for v in shape):
        raise ConvArithError("input_shape", "must be positive sizes", input)
    scan_range = _sizes(sizes) if sizes is not None else None
    if axis is not None:
        from ..analysis.fields import input_labels

        count = sum(isinstance(label, int) for label in input_labels(shape))
        if not 0 <= axis < count:
            raise ConvArithError("axis", f"must be a spatial axis of the input (0 … {count - 1})", axis)
    outputs: dict[str, Path | None] = {
        "markdown": None if markdown is None else output_file("markdown", markdown, (".md",)),
        "html": None if html is None else output_file("html", html, (".html", ".htm")),
        "field": None if field is None else output_file("field", field, (".svg", ".png")),
        "depth": None if depth is None else output_file("depth", depth, (".svg", ".png")),
    }
    check_distinct(list(outputs.items()))
    cell_at = None if cell is None else parse_sizes("cell", cell)
    loaded, options = load_model(model, parse_args(arg or []))
    options = dict(options)
    report = run_analysis(loaded, shape, **options)
    if node is not None and node not in {r.name for r in report.nodes}:
        raise ConvArithError("node", "must name a node of the model (see the table)", node)
    scan = _scan(loaded, shape, scan_range, axis, options, quiet=as_json) if scan_range is not None else None
    _write(report, scan, outputs, every, node, cell_at, model)
    if as_json:
        from .verbs_geometry import dump

        data = report.to_dict()
        data["sizes"] = None if scan is None else scan.to_dict()
        dump(data)
    else:
        _print(report, scan, every)


def _scan(
    model: object, shape: tuple[int, ...], sizes: range, axis: int | None, options: dict[str, Any], *, quiet: bool
) -> SizeScan:
    from rich.console import Console
    from rich.progress import Progress

    from ..analysis.sizes import accepted_sizes

    console = Console(stderr=True)
    if quiet or len(sizes) < 8 or not console.is_terminal:
        return accepted_sizes(model, shape, sizes, axis=axis, **options)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("input sizes", total=len(sizes))
        return accepted_sizes(
            model, shape, sizes, axis=axis, on_size=lambda done, total: progress.update(task, completed=done), **options
        )


def _write(
    report: Analysis,
    scan: SizeScan | None,
    outputs: dict[str, Path | None],
    every: bool,
    node: str | None,
    cell: tuple[int, ...] | None,
    title: str,
) -> None:
    from ..analysis.report import html_page, markdown

    if outputs["markdown"] is not None:
        outputs["markdown"].write_text(markdown(report, scan, every), encoding="utf-8")
    if outputs["html"] is not None:
        from ..render.fields import report_pictures

        page = html_page(report, scan, every, title=title, pictures=report_pictures(report))
        outputs["html"].write_text(page, encoding="utf-8")
    if outputs["field"] is not None or outputs["depth"] is not None:
        from ..render import write
        from ..render.fields import depth_scene, field_scene

        if outputs["field"] is not None:
            write(field_scene(report, node, cell), str(outputs["field"]))
        if outputs["depth"] is not None:
            write(depth_scene(report), str(outputs["depth"]))


def _print(report: Analysis, scan: SizeScan | None, every: bool) -> None:
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.report import COLUMNS, rows, sizes_lines, summary

    # a terminal gets the table at its width (long cells wrap); a pipe or a file gets every cell whole
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
    table = Table(show_edge=False, pad_edge=False, header_style="bold", box=None)
    numeric = {"params", "macs", "field", "stride", "start"}
    for key, heading in COLUMNS:
        table.add_column(heading, justify="right" if key in numeric else "left", no_wrap=key in numeric | {"node"})
    for row in rows(report, every):
        style = "red" if "skip-mismatch" in row["notes"] else "yellow" if row["notes"] else ""
        table.add_row(*(escape(row[key]) for key, _ in COLUMNS), style=style or None)
    console.print(table)
    console.print()
    for line in summary(report):
        console.print(escape(line))
    for f in report.findings:
        colour = "red" if f.severity == "error" else "yellow" if f.severity == "warning" else "cyan"
        console.print(f"[{colour}]{f.severity}[/{colour}] {escape(f.message)}")
    if scan is not None:
        for line in sizes_lines(scan):
            console.print(escape(line))
