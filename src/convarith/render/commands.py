"""CLI verbs for pictures: ``animate``, ``draw-matrix``, ``gallery``.

Plain Typer-annotated functions; ``convarith.cli`` registers them. Only typer, typing and pathlib
are imported here at the top, so the CLI starts fast; the library (and NumPy, Pillow) is imported
when a command runs. Bad input raises :class:`~convarith.errors.ConvArithError`, which the CLI's
``guarded`` wrapper (applied inside each command) turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..cli_options import (
    CeilOpt,
    DilationOpt,
    GroupsOpt,
    KernelOpt,
    OpArg,
    OutChannelsOpt,
    OutputPaddingOpt,
    PaddingModeOpt,
    PaddingOpt,
    StrideOpt,
    guarded,
    parse_sizes,
    spec_from_options,
)
from ..errors import ConvArithError

__all__ = ["animate", "draw_matrix", "gallery"]

InputOpt = Annotated[
    str, typer.Option("--input", "-i", help="Input spatial size(s), e.g. 5x5 (no batch, no channels).")
]
InChannelsOpt = Annotated[int, typer.Option(help="Input channels, drawn as planes.")]


def _load_values(param: str, path: Path | None) -> Any:
    """A ``.npy`` array or a CSV table (one 2-d plane, comma-separated)."""
    if path is None:
        return None
    import numpy as np

    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as err:
        raise ConvArithError(param, f"must be a readable .npy or comma-separated file ({err})", str(path)) from None


def _choice(param: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConvArithError(param, f"must be one of {', '.join(allowed)}", repr(value))
    return value


@guarded
def animate(
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="out.gif, out.png (APNG), out.svg, out.mp4, or a folder for frames.")
    ],
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    in_channels: InChannelsOpt = 1,
    out_channels: OutChannelsOpt = None,
    view: Annotated[
        str, typer.Option(help="direct (transposed: the guide's equivalent direct conv) or scatter (transposed only).")
    ] = "direct",
    numeric: Annotated[bool, typer.Option(help="Show values: input, kernel and output numbers.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the numeric values.")] = 0,
    input_values: Annotated[
        Path | None, typer.Option(help="Input values, .npy (C_in, *spatial) or a CSV plane; implies --numeric.")
    ] = None,
    kernel_values: Annotated[
        Path | None, typer.Option(help="Kernel values, .npy in PyTorch's layout or a CSV plane; implies --numeric.")
    ] = None,
    style: Annotated[str, typer.Option(help="guide (perspective, input below) or flat (side by side).")] = "guide",
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 2.0,
    frames: Annotated[str, typer.Option(help="For a folder output: png or svg stills.")] = "png",
) -> None:
    """Animate a convolution, transposed convolution or pooling, in the style of the guide's GIFs.

    Examples:

      convarith animate conv2d -i 5x5 -k 3 --stride 2 --padding 1 -o padding_strides.gif

      convarith animate conv_transpose2d -i 3x3 -k 3 --stride 2 --padding 1 --output-padding 1 -o t.gif

      convarith animate conv_transpose2d -i 3x3 -k 3 --stride 2 --view scatter -o checkerboard.svg

      convarith animate max_pool2d -i 6x6 -k 3 --stride 2 --padding 1 --ceil-mode --numeric -o pool.png
    """
    from .frames import build_animation
    from .scene import compose
    from .writers import write

    spec = spec_from_options(
        op, kernel_size, stride, padding, dilation, groups, output_padding, padding_mode, ceil_mode
    )
    anim = build_animation(
        spec,
        parse_sizes("input", input),
        view=_choice("view", view, ("direct", "scatter")),  # type: ignore[arg-type]
        in_channels=in_channels,
        out_channels=out_channels,
        numeric=numeric,
        seed=seed,
        input_values=_load_values("input_values", input_values),
        kernel_values=_load_values("kernel_values", kernel_values),
    )
    scene = compose(anim, _choice("style", style, ("guide", "flat")))  # type: ignore[arg-type]
    written = write(scene, output, fps=fps, frames=frames, title=anim.caption())
    where = written[0] if len(written) == 1 else written[0].parent
    typer.echo(f"wrote {where} ({len(scene.frames)} frames, {scene.width}×{scene.height}): {anim.caption()}")


@guarded
def draw_matrix(
    op: OpArg,
    input: InputOpt,
    kernel_size: KernelOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="c.png or c.svg.")],
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    groups: GroupsOpt = 1,
    output_padding: OutputPaddingOpt = "0",
    padding_mode: PaddingModeOpt = "zeros",
    ceil_mode: CeilOpt = False,
    in_channels: InChannelsOpt = 1,
    out_channels: OutChannelsOpt = None,
    transpose: Annotated[bool, typer.Option(help="Draw Cᵀ (the transposed convolution, the input gradient).")] = False,
    seed: Annotated[int, typer.Option(help="Max pooling: seed of the input the selection is taken at.")] = 0,
) -> None:
    """Draw the sparse matrix C of a layer, every nonzero coloured by its kernel tap.

    Examples:

      convarith draw-matrix conv2d -i 4x4 -k 3 -o c.png

      convarith draw-matrix conv2d -i 5x5 -k 3 --stride 2 --padding 1 --transpose -o ct.svg

      convarith draw-matrix conv2d -i 3x3 -k 3 --padding 1 --padding-mode reflect -o reflect.png
    """
    from .maps import matrix_scene
    from .writers import write

    spec = spec_from_options(
        op, kernel_size, stride, padding, dilation, groups, output_padding, padding_mode, ceil_mode
    )
    spatial = parse_sizes("input", input)
    at = None
    if spec.kind == "max_pool":
        import numpy as np

        at = np.random.default_rng(seed).integers(0, 4, size=(in_channels, *spatial)).astype(float)
    scene = matrix_scene(spec, spatial, in_channels=in_channels, out_channels=out_channels, transpose=transpose, at=at)
    (path,) = write(scene, output, title="C")
    typer.echo(f"wrote {path} ({scene.width}×{scene.height})")


@guarded
def gallery(
    out: Annotated[Path, typer.Option("--out", help="Folder for the pictures and index.html.")] = Path("gallery"),
    style: Annotated[str, typer.Option(help="guide or flat.")] = "guide",
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 2.0,
) -> None:
    """Regenerate the guide's gallery (named as in its repository), its numeric figures, and more.

    Examples:

      convarith gallery --out gallery

      convarith gallery --out flat-gallery --style flat --fps 3
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .gallery_items import GALLERY
    from .gallery_items import gallery as make_gallery

    _choice("style", style, ("guide", "flat"))
    with Progress(
        TextColumn("[bold]gallery[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=False,
    ) as progress:
        task = progress.add_task("", total=len(GALLERY))

        def advance(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, description=name)

        written = make_gallery(out, style=style, fps=fps, progress=advance)  # type: ignore[arg-type]
    typer.echo(f"wrote {len(written) - 1} pictures and {out / 'index.html'}")
