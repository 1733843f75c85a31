"""High-level picture functions: a layer straight to a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..geometry import ConvSpec
from .frames import View, build_animation
from .maps import matrix_scene, overlap_scene
from .scene import compose
from .style import StyleName
from .writers import write

__all__ = ["animate", "draw_matrix", "draw_overlap"]


def _spec(layer: ConvSpec | str, params: dict[str, Any]) -> ConvSpec:
    return layer if isinstance(layer, ConvSpec) else ConvSpec.create(layer, **params)


def animate(
    layer: ConvSpec | str,
    input_spatial: Sequence[int],
    path: str | Path,
    *,
    view: View = "direct",
    style: StyleName = "guide",
    fps: float = 2.0,
    numeric: bool = False,
    seed: int = 0,
    input_values: Any | None = None,
    kernel_values: Any | None = None,
    in_channels: int = 1,
    out_channels: int | None = None,
    frames: str = "png",
    **params: Any,
) -> list[Path]:
    """Animate a layer into a file (format from the suffix); returns the files written.

    ``layer`` is a :class:`~convarith.ConvSpec` or an op name with PyTorch-style ``params``
    (``kernel_size``, ``stride``, ``padding``…). See :func:`build_animation` for the views and
    values, :func:`convarith.render.writers.write` for the formats.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in animate("conv2d", (5, 5), pathlib.Path(tmp) / "a.svg", kernel_size=3, stride=2)]
    ['a.svg']
    """
    spec = _spec(layer, params)
    anim = build_animation(
        spec,
        input_spatial,
        view=view,
        in_channels=in_channels,
        out_channels=out_channels,
        numeric=numeric,
        seed=seed,
        input_values=input_values,
        kernel_values=kernel_values,
    )
    return write(compose(anim, style), Path(path), fps=fps, frames=frames, title=anim.caption())


def draw_matrix(
    layer: ConvSpec | str,
    input_spatial: Sequence[int],
    path: str | Path,
    *,
    transpose: bool = False,
    in_channels: int = 1,
    out_channels: int | None = None,
    at: Any | None = None,
    **params: Any,
) -> list[Path]:
    """Draw C (or Cᵀ) of a layer into a ``.png`` or ``.svg`` (see :func:`matrix_scene`)."""
    spec = _spec(layer, params)
    scene = matrix_scene(
        spec, input_spatial, in_channels=in_channels, out_channels=out_channels, transpose=transpose, at=at
    )
    return write(scene, Path(path), title="C")


def draw_overlap(layers: Sequence[ConvSpec], input_spatial: Sequence[int], path: str | Path) -> list[Path]:
    """Draw the overlap maps of a stack of transposed convolutions (see :func:`overlap_scene`)."""
    return write(overlap_scene(layers, input_spatial), Path(path), title="overlap")
