"""High-level picture functions: a layer straight to a file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..geometry.bound import BoundLayer
from ..layer import Layer
from .frames import View, build_animation
from .maps import matrix_scene, overlap_scene
from .scene import compose
from .style import StyleName
from .writers import write

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["animate", "draw_matrix", "draw_overlap"]

PathLike = str | os.PathLike[str]


def animate(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None,
    path: PathLike,
    *,
    view: View = "direct",
    style: StyleName = "guide",
    fps: float = 2.0,
    numeric: bool = False,
    seed: int = 0,
    input_values: npt.ArrayLike | None = None,
    kernel_values: npt.ArrayLike | None = None,
    frames: str = "png",
) -> list[Path]:
    """Animate a layer into a file (format from the suffix); returns the files written.

    ``input_shape`` is ``(*spatial)``, ``(C, *spatial)`` or ``(N, C, *spatial)`` (``None`` with a
    bound layer); channels come from the bound layer. See :func:`build_animation` for the views
    and values, :func:`convarith.render.writers.write` for the formats and the paths accepted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from convarith import Layer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in animate(Layer("conv2d", kernel_size=3, stride=2), (5, 5), pathlib.Path(tmp) / "a.svg")]
    ['a.svg']
    """
    anim = build_animation(
        layer,
        input_shape,
        view=view,
        numeric=numeric,
        seed=seed,
        input_values=input_values,
        kernel_values=kernel_values,
    )
    return write(compose(anim, style), path, fps=fps, frames=frames, title=anim.caption())


def draw_matrix(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None,
    path: PathLike,
    *,
    transpose: bool = False,
    at: npt.ArrayLike | None = None,
) -> list[Path]:
    """Draw C (or Cᵀ) of a layer into a ``.png`` or ``.svg`` (see :func:`matrix_scene`).

    >>> import tempfile, pathlib
    >>> from convarith import Layer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in draw_matrix(Layer("conv1d", kernel_size=3), (5,), pathlib.Path(tmp) / "c.png")]
    ['c.png']
    """
    from ..errors import ConvArithError

    target = Path(os.fspath(path)) if isinstance(path, str | os.PathLike) else None
    if target is not None and target.suffix.lower() not in (".png", ".svg"):
        raise ConvArithError("output", "a matrix picture is a .png or .svg file", str(path))
    scene = matrix_scene(layer, input_shape, transpose=transpose, at=at)
    return write(scene, path, title="C")


def draw_overlap(layers: Sequence[Layer], input_shape: Sequence[int], path: PathLike) -> list[Path]:
    """Draw the overlap maps of a stack of transposed convolutions (see :func:`overlap_scene`).

    >>> import tempfile, pathlib
    >>> from convarith import Layer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in draw_overlap([Layer("conv_transpose2d", kernel_size=3, stride=2)], (3, 3),
    ...                                   pathlib.Path(tmp) / "o.png")]
    ['o.png']
    """
    return write(overlap_scene(layers, input_shape), path, title="overlap")
