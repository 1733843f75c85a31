"""Pictures: a frame model derived from the geometry, and writers that turn frames into files.

* :func:`build_animation` — the frame model (:mod:`convarith.render.frames`): per frame, the
  cells the kernel covers and the cell it produces, derived from the geometry so that a direct
  convolution's frame ``f`` covers exactly the nonzero columns of row ``f`` of C.
* :func:`animate` — a layer straight to a ``.gif``, ``.png`` (APNG), ``.svg``, ``.mp4`` or a
  folder of frames, in the guide's style or a flat one.
* :func:`draw_matrix` — C or Cᵀ as a picture, nonzeros coloured by kernel tap.
* :func:`draw_overlap` — overlap maps of a transposed convolution or a stack of them.
* :func:`gallery` — the guide's gallery, regenerated, plus what it lacks, with ``index.html``;
  :func:`tour_pictures` — the pictures of ``convarith tour``.
* :func:`guide_axis` — the cells of one axis of the guide's view of a transposed convolution (the
  one implementation of that grid; explanations print it).

Every function takes a :class:`~convarith.Layer` and an input shape, or a bound layer. Names are
served lazily (like the top-level package); nothing imports NumPy or Pillow until a picture is
made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import animate, draw_matrix, draw_overlap
    from .frames import Animation, AxisCells, Frame, Grid, Touch, Values, build_animation, guide_axis
    from .gallery_items import GALLERY, TOUR_PICTURES, GalleryItem, gallery, tour_pictures
    from .maps import matrix_scene, overlap_counts, overlap_scene
    from .scene import Scene, compose
    from .writers import write

_LAZY = {
    "animate": "api",
    "draw_matrix": "api",
    "draw_overlap": "api",
    "Animation": "frames",
    "AxisCells": "frames",
    "guide_axis": "frames",
    "TOUR_PICTURES": "gallery_items",
    "tour_pictures": "gallery_items",
    "Frame": "frames",
    "Grid": "frames",
    "Touch": "frames",
    "Values": "frames",
    "build_animation": "frames",
    "GALLERY": "gallery_items",
    "GalleryItem": "gallery_items",
    "gallery": "gallery_items",
    "matrix_scene": "maps",
    "overlap_counts": "maps",
    "overlap_scene": "maps",
    "Scene": "scene",
    "compose": "scene",
    "write": "writers",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GALLERY",
    "TOUR_PICTURES",
    "Animation",
    "AxisCells",
    "Frame",
    "GalleryItem",
    "Grid",
    "Scene",
    "Touch",
    "Values",
    "animate",
    "build_animation",
    "compose",
    "draw_matrix",
    "draw_overlap",
    "gallery",
    "guide_axis",
    "matrix_scene",
    "overlap_counts",
    "overlap_scene",
    "tour_pictures",
    "write",
]


def __dir__() -> list[str]:
    return sorted(__all__)
