"""Verbs that write pictures and reports: ``animate``, ``draw-matrix``, ``gallery``, ``tour``.

Every output path and every option is checked before anything is drawn (see
:mod:`convarith.cli.paths`); the library (NumPy, Pillow) is imported only once the checks pass.
"""

from __future__ import annotations

import math
from typing import Annotated

import typer

from ..errors import ConvArithError
from ..layer import as_choice
from .errors import guarded
from .options import (
    CeilOpt,
    CountIncludePadOpt,
    DilationOpt,
    DivisorOpt,
    FrameworkOpt,
    GroupsOpt,
    InputOpt,
    KernelOpt,
    OpArg,
    OutChannelsOpt,
    OutputPaddingOpt,
    PaddingModeOpt,
    PaddingOpt,
    StrideOpt,
    check_seed,
    input_shape,
    layer_from,
)
from .verbs_geometry import bind_checked, framework_of

__all__ = ["animate", "draw_matrix", "gallery", "tour"]

STYLES = ("guide", "flat")
MAX_AT_CELLS = 2**24
"""Largest input a max-pool matrix picture selects at (its C would not be drawable anyway)."""

FpsOpt = Annotated[float, typer.Option(help="Frames per second, 0.01 to 100.")]
StyleOpt = Annotated[str, typer.Option(help="guide (perspective, input below) or flat (side by side).")]


def _fps(fps: float) -> float:
    """The writers' rule (a GIF delay is whole hundredths of a second), checked before any work."""
    from ..render.writers import check_fps

    return check_fps(fps)


_ANIMATE_FLAGS = {"weight": ("--kernel-values",), "output": ("--output", "-o"), "path": ("--output", "-o")}


@guarded(_ANIMATE_FLAGS)
def animate(
    ctx: typer.Context,
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="out.gif, out.png (APNG), out.svg, out.mp4, or a new (or empty) folder for a frame sequence.",
            show_default=False,
        ),
    ],
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
    view: Annotated[
        str, typer.Option(help="direct (transposed: the guide's equivalent direct conv) or scatter (transposed only).")
    ] = "direct",
    numeric: Annotated[bool, typer.Option(help="Show values: input, kernel and output numbers.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the numeric values.")] = 0,
    input_values: Annotated[
        str | None,
        typer.Option(help="Input values, .npy (C, *spatial) or a CSV plane; implies --numeric.", show_default=False),
    ] = None,
    kernel_values: Annotated[
        str | None,
        typer.Option(
            help="Kernel values, .npy in PyTorch's layout or a CSV plane; implies --numeric.", show_default=False
        ),
    ] = None,
    style: StyleOpt = "guide",
    fps: FpsOpt = 2.0,
    frames: Annotated[str, typer.Option(help="For a folder output: png or svg stills.")] = "png",
) -> None:
    """Animate a convolution, transposed convolution or pooling, in the style of the guide's GIFs.

    Examples:

      convarith animate conv2d -i 5x5 -k 3 --stride 2 --padding 1 -o padding_strides.gif

      convarith animate conv_transpose2d -i 3x3 -k 3 --stride 2 --padding 1 --output-padding 1 -o t.gif

      convarith animate conv_transpose2d -i 3x3 -k 3 --stride 2 --view scatter -o checkerboard.svg

      convarith animate conv2d -i 2x4x4 --out-channels 2 -k 3 --numeric -o channels.png

      convarith animate max_pool2d -i 6x6 -k 3 --stride 2 --padding 1 --ceil-mode --numeric -o pool.png
    """
    from .paths import animation_target, load_values

    sizes = input_shape(op, input)
    layer = layer_from(ctx, sizes)
    bound = bind_checked(layer, sizes, framework_of(framework))
    as_choice("view", view, ("direct", "scatter"))
    as_choice("style", style, STYLES)
    as_choice("frames", frames, ("png", "svg"))
    check_seed(seed)
    _fps(fps)
    values_in = load_values("input_values", input_values)
    values_kernel = load_values("kernel_values", kernel_values)
    target = animation_target("output", output)

    from ..render.api import animate as animate_layer

    # The frame model refuses too many frames or values of the wrong shape before any file exists.
    written = animate_layer(
        bound,
        None,
        target,
        view=view,  # type: ignore[arg-type]
        style=style,  # type: ignore[arg-type]
        fps=fps,
        numeric=numeric,
        seed=seed,
        input_values=values_in,
        kernel_values=values_kernel,
        frames=frames,
    )
    where = written[0] if len(written) == 1 else target
    typer.echo(f"wrote {where} ({len(written)} file(s)): {bound.caption()}")


_DRAW_FLAGS = {"output": ("--output", "-o"), "path": ("--output", "-o")}


@guarded(_DRAW_FLAGS)
def draw_matrix(
    ctx: typer.Context,
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    output: Annotated[str, typer.Option("--output", "-o", help="c.png or c.svg.", show_default=False)],
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
    transpose: Annotated[bool, typer.Option(help="Draw Cᵀ (the transposed convolution, the input gradient).")] = False,
    seed: Annotated[int, typer.Option(help="Max pooling: seed of the input the selection is taken at.")] = 0,
) -> None:
    """Draw the sparse matrix C of a layer, every nonzero coloured by its kernel tap.

    Examples:

      convarith draw-matrix conv2d -i 4x4 -k 3 -o c.png

      convarith draw-matrix conv2d -i 5x5 -k 3 --stride 2 --padding 1 --transpose -o ct.svg

      convarith draw-matrix conv2d -i 3x3 -k 3 --padding 1 --padding-mode reflect -o reflect.png

      convarith draw-matrix max_pool2d -i 4x4 -k 2 --seed 3 -o pool.svg
    """
    from .paths import output_file

    sizes = input_shape(op, input)
    layer = layer_from(ctx, sizes)
    bound = bind_checked(layer, sizes, framework_of(framework))
    check_seed(seed)
    target = output_file(
        "output", output, (".png", ".svg"), what=" (draw-matrix writes one picture, never a frame sequence)"
    )

    at = None
    if bound.kind == "max_pool":
        if math.prod(bound.sample_input_shape) > MAX_AT_CELLS:
            raise ConvArithError("input", f"is too large to draw C of (more than {MAX_AT_CELLS} cells)", input)
        import numpy as np

        rng = np.random.default_rng(seed)
        at = rng.integers(0, 4, size=bound.sample_input_shape).astype(np.float64)

    from ..render.api import draw_matrix as draw

    (path, *_) = draw(bound, None, target, transpose=transpose, at=at)
    typer.echo(f"wrote {path}: C of {bound.caption()}" + (", transposed" if transpose else ""))


_GALLERY_FLAGS = {"output": ("--out",), "path": ("--out",), "out_dir": ("--out",)}


@guarded(_GALLERY_FLAGS)
def gallery(
    out: Annotated[
        str, typer.Option("--out", help="A new or empty folder (or an earlier gallery) for the pictures.")
    ] = "gallery",
    style: StyleOpt = "guide",
    fps: FpsOpt = 2.0,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Only this item (repeat for more), named as in the gallery's index.", show_default=False),
    ] = None,
) -> None:
    """Regenerate the guide's gallery (named as in its repository), its numeric figures, and more.

    Examples:

      convarith gallery --out gallery

      convarith gallery --out flat-gallery --style flat --fps 3

      convarith gallery --out some --only no_padding_no_strides --only padding_strides_transposed
    """
    from .paths import output_folder, picture_file

    as_choice("style", style, STYLES)
    _fps(fps)
    from ..render.gallery_items import GALLERY

    known = [item.name for item in GALLERY]
    for name in only or ():
        as_choice("only", name, tuple(known))
    folder = output_folder(
        "output", out, lambda name: name == "index.html" or picture_file(name), what="an earlier gallery"
    )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..render.gallery_items import gallery as make_gallery

    with Progress(
        TextColumn("[bold]gallery[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        task = progress.add_task("", total=len(only) if only else len(known))

        def advance(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, description=name)

        written = make_gallery(
            folder,
            style=style,  # type: ignore[arg-type]
            fps=fps,
            names=only or None,
            progress=advance,
        )
    typer.echo(f"wrote {len(written) - 1} pictures and {folder / 'index.html'}")


PICTURES = "pictures"
"""The tour's pictures go into this folder inside ``--out``."""
_TOUR_FLAGS = {"output": ("--out",), "path": ("--out",), "out": ("--out",)}


@guarded(_TOUR_FLAGS)
def tour(
    out: Annotated[
        str, typer.Option("--out", help="A new or empty folder (or an earlier tour's) for the Markdown and HTML.")
    ] = "tour-output",
    backend: Annotated[str, typer.Option(help="auto (PyTorch when installed), torch or numpy.")] = "auto",
    pictures: Annotated[bool, typer.Option(help="Draw the guide's animations into the report.")] = True,
    style: StyleOpt = "guide",
) -> None:
    """Walk through the motivating question and answer it with numbers computed on the spot.

    Exit code 1 if any of the tour's checks fails.

    Examples:

      convarith tour --out tour-output

      convarith tour --out tour-numpy --backend numpy --no-pictures
    """
    from .paths import output_folder

    as_choice("backend", backend, ("auto", "torch", "numpy"))
    as_choice("style", style, STYLES)
    folder = output_folder(
        "output",
        out,
        lambda name: name in ("tour.md", "tour.html", PICTURES),
        what="an earlier tour",
    )

    from ..explain.backends import pick_backend

    pick_backend(backend)  # refuses 'torch' without PyTorch before anything is written

    from ..explain.document import to_text
    from ..explain.tour import write_tour

    drawn: list[tuple[str, str]] = []
    if pictures:
        from ..render.gallery_items import tour_pictures

        folder.mkdir(exist_ok=True)
        drawn = [
            (f"{PICTURES}/{name}", caption)
            for name, caption in tour_pictures(folder / PICTURES, style=style)  # type: ignore[arg-type]
        ]
    doc = write_tour(folder, backend, drawn)
    typer.echo(to_text(doc))
    failed = [c for c in doc.checks if not c.passed]
    typer.echo(
        f"{len(doc.checks) - len(failed)} of {len(doc.checks)} checks passed; wrote {folder / 'tour.md'} and "
        f"{folder / 'tour.html'}"
    )
    if failed:
        raise typer.Exit(1)
