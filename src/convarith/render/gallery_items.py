"""The guide's gallery regenerated, errata fixed, plus what it lacks; with an ``index.html``.

Names follow the GIF folder of Dumoulin & Visin's repository (``padding_strides_odd.gif``,
``padding_strides_odd_transposed.gif``, ``dilation.gif``, …). Each transposed animation is the
transposed convolution of its direct one, drawn in the guide's view (the equivalent direct
convolution); its ``output_padding`` cells sit after the input (bottom/right), where PyTorch
puts them.

Examples
--------
>>> [item.name for item in GALLERY[:3]]
['no_padding_no_strides', 'arbitrary_padding_no_strides', 'same_padding_no_strides']
>>> item = next(i for i in GALLERY if i.name == "padding_strides_odd_transposed")
>>> item.layer.output_padding, item.input
((1, 1), (3, 3))
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConvArithError
from ..geometry.relations import transpose_of
from ..layer import Layer
from .frames import View, build_animation
from .maps import matrix_scene, overlap_scene
from .scene import Scene, compose
from .style import StyleName
from .writers import write

__all__ = ["GALLERY", "TOUR_PICTURES", "GalleryItem", "gallery", "tour_pictures"]

# The guide's numeric figures: a 5×5 input and a 3×3 kernel.
GUIDE_INPUT = [
    [3, 3, 2, 1, 0],
    [0, 0, 1, 3, 1],
    [3, 1, 2, 2, 3],
    [2, 0, 0, 2, 2],
    [2, 0, 0, 0, 1],
]
GUIDE_KERNEL = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]

Section = Literal["convolution", "transposed", "numeric", "beyond the guide", "matrices and overlap"]


@dataclass(frozen=True)
class GalleryItem:
    name: str
    section: Section
    layer: Layer
    input: tuple[int, ...]
    """The input shape: spatial sizes, or ``(C, *spatial)``."""
    description: str
    kind: Literal["animation", "matrix", "overlap"] = "animation"
    view: View = "direct"
    numeric: bool = False
    input_values: Sequence[Sequence[float]] | None = None
    kernel_values: Sequence[Sequence[float]] | None = None
    transpose: bool = False
    stack: tuple[Layer, ...] = field(default=())

    @property
    def filename(self) -> str:
        return f"{self.name}.gif" if self.kind == "animation" else f"{self.name}.png"

    def scene(self, style: StyleName = "guide") -> Scene:
        """The item's picture."""
        if self.kind == "matrix":
            return matrix_scene(self.layer, self.input, transpose=self.transpose)
        if self.kind == "overlap":
            return overlap_scene(self.stack or (self.layer,), self.input)
        anim = build_animation(
            self.layer,
            self.input,
            view=self.view,
            numeric=self.numeric,
            input_values=self.input_values,
            kernel_values=self.kernel_values,
        )
        return compose(anim, style)

    def caption(self) -> str:
        """The parameters line (:meth:`BoundLayer.caption`; the layers, for a stack)."""
        if self.kind == "overlap":
            return " → ".join(
                f"{s.op} k={s.kernel_size[0]} s={s.stride[0]} p={s.pads[0][0]}" for s in self.stack or (self.layer,)
            )
        return self.layer.bind(self.input).caption()


def _conv(i: int, k: int, s: int, p: int, d: int = 1) -> tuple[Layer, tuple[int, int]]:
    return Layer("conv2d", kernel_size=k, stride=s, padding=p, dilation=d), (i, i)


def _items() -> list[GalleryItem]:
    guide = [
        ("no_padding_no_strides", 4, 3, 1, 0, "no padding, unit strides"),
        ("arbitrary_padding_no_strides", 5, 4, 1, 2, "arbitrary padding, unit strides"),
        ("same_padding_no_strides", 5, 3, 1, 1, "half (same) padding, unit strides"),
        ("full_padding_no_strides", 5, 3, 1, 2, "full padding, unit strides"),
        ("no_padding_strides", 5, 3, 2, 0, "no padding, strides"),
        ("padding_strides", 5, 3, 2, 1, "padding, strides"),
        ("padding_strides_odd", 6, 3, 2, 1, "padding, strides, odd: the floor drops the last padded row"),
    ]
    items: list[GalleryItem] = []
    for name, i, k, s, p, text in guide:
        spec, spatial = _conv(i, k, s, p)
        items.append(GalleryItem(name, "convolution", spec, spatial, f"Convolution: {text}."))
    spec, spatial = _conv(7, 3, 1, 0, 2)
    items.append(GalleryItem("dilation", "convolution", spec, spatial, "Dilated convolution, d = 2."))
    for name, i, k, s, p, text in guide:
        conv, spatial = _conv(i, k, s, p)
        out = conv.bind(spatial).output_spatial
        items.append(
            GalleryItem(
                f"{name}_transposed",
                "transposed",
                transpose_of(conv, spatial),
                out,
                f"Transposed of '{name}' ({text}), drawn as the equivalent stride-1 direct convolution over the "
                "zero-inserted, padded input (kernel rotated 180°).",
            )
        )
    conv, spatial = _conv(7, 3, 1, 0, 2)
    items.append(
        GalleryItem(
            "dilation_transposed",
            "transposed",
            transpose_of(conv, spatial),
            conv.bind(spatial).output_spatial,
            "Transposed dilated convolution (missing from the guide).",
        )
    )
    conv, spatial = _conv(5, 3, 1, 0)
    items.append(
        GalleryItem(
            "numerical_no_padding_no_strides",
            "numeric",
            conv,
            spatial,
            "The guide's numeric convolution: 5×5 input, 3×3 kernel (its weights in the small numbers).",
            numeric=True,
            input_values=GUIDE_INPUT,
            kernel_values=GUIDE_KERNEL,
        )
    )
    conv, spatial = _conv(5, 3, 2, 1)
    items.append(
        GalleryItem(
            "numerical_padding_strides",
            "numeric",
            conv,
            spatial,
            "The guide's numeric strided convolution with padding.",
            numeric=True,
            input_values=GUIDE_INPUT,
            kernel_values=GUIDE_KERNEL,
        )
    )
    items.append(
        GalleryItem(
            "numerical_padding_strides_transposed",
            "numeric",
            transpose_of(conv, spatial),
            conv.bind(spatial).output_spatial,
            "A numeric transposed convolution (3×3 → 5×5) with the guide's kernel, equal to PyTorch's "
            "conv_transpose2d.",
            numeric=True,
            input_values=[[1, 2, 0], [0, 1, 3], [2, 1, 1]],
            kernel_values=GUIDE_KERNEL,
        )
    )
    for kind, label in (("avg", "average"), ("max", "max")):
        items.append(
            GalleryItem(
                f"numerical_{label}_pooling",
                "numeric",
                Layer(f"{kind}_pool2d", kernel_size=3, stride=1),
                (5, 5),
                f"The guide's numeric {label} pooling: 3×3 windows, unit strides.",
                numeric=True,
                input_values=GUIDE_INPUT,
            )
        )
    for kind, label in (("max", "max"), ("avg", "average")):
        items.append(
            GalleryItem(
                f"{label}_pooling_padding_ceil_mode",
                "beyond the guide",
                Layer(f"{kind}_pool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True),
                (6, 6),
                f"{label.capitalize()} pooling with padding and ceil_mode: the last window reaches past the "
                "padding (purple), PyTorch keeps it because it starts inside.",
                numeric=True,
            )
        )
    for name in [g[0] for g in guide] + ["dilation"]:
        base = next(item for item in items if item.name == f"{name}_transposed")
        items.append(
            GalleryItem(
                f"{name}_transposed_scatter",
                "beyond the guide",
                base.layer,
                base.input,
                f"Scatter view of '{name}_transposed': each input cell stamps the kernel into the output; "
                "the shade counts overlapping taps (uneven counts: checkerboard artifacts).",
                view="scatter",
            )
        )
    items.append(
        GalleryItem(
            "conv1d_padding_strides",
            "beyond the guide",
            Layer("conv1d", kernel_size=3, stride=2, padding=1),
            (7,),
            "1-d convolution as a strip.",
        )
    )
    items.append(
        GalleryItem(
            "conv3d_slices",
            "beyond the guide",
            Layer("conv3d", kernel_size=2, stride=1),
            (3, 4, 4),
            "3-d convolution: the depth slices side by side, the kernel spans two of them.",
        )
    )
    items.append(
        GalleryItem(
            "groups",
            "beyond the guide",
            Layer("conv2d", 2, 4, kernel_size=3, groups=2),
            (2, 4, 4),
            "Channels as planes: 2 input channels, 4 output channels, groups = 2 (each output reads its group).",
        )
    )
    conv, spatial = _conv(4, 3, 1, 0)
    items.append(
        GalleryItem(
            "matrix_no_padding_no_strides",
            "matrices and overlap",
            conv,
            spatial,
            "The guide's §4.1 matrix C: 3×3 kernel over a 4×4 input, 4 × 16, coloured by kernel tap.",
            kind="matrix",
        )
    )
    conv, spatial = _conv(5, 3, 2, 1)
    items.append(
        GalleryItem(
            "matrix_padding_strides",
            "matrices and overlap",
            conv,
            spatial,
            "C of the strided, padded convolution (padding taps are not stored: they multiply zeros).",
            kind="matrix",
        )
    )
    items.append(
        GalleryItem(
            "matrix_padding_strides_transposed",
            "matrices and overlap",
            conv,
            spatial,
            "Cᵀ: the transposed convolution (and the input gradient) of the same layer.",
            kind="matrix",
            transpose=True,
        )
    )
    k3 = Layer("conv_transpose2d", kernel_size=3, stride=2)
    k4 = Layer("conv_transpose2d", kernel_size=4, stride=2, padding=1)
    items.append(
        GalleryItem(
            "overlap_k3_s2_stack",
            "matrices and overlap",
            k3,
            (3, 3),
            "Overlap through three k=3, s=2 transposed convolutions: the checkerboard compounds.",
            kind="overlap",
            stack=(k3, k3, k3),
        )
    )
    items.append(
        GalleryItem(
            "overlap_k4_s2_stack",
            "matrices and overlap",
            k4,
            (3, 3),
            "Overlap through three k=4, s=2, p=1 transposed convolutions: even in the interior.",
            kind="overlap",
            stack=(k4, k4, k4),
        )
    )
    return items


GALLERY: tuple[GalleryItem, ...] = tuple(_items())


def _items_named(names: Sequence[str] | None) -> list[GalleryItem]:
    if names is None:
        return list(GALLERY)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConvArithError("names", "must be a sequence of gallery item names", repr(names))
    known = {item.name: item for item in GALLERY}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConvArithError("names", "are not gallery items", unknown)
    return [item for item in GALLERY if item.name in names]


def _folder(out_dir: object) -> Path:
    """A folder to write pictures into: created when new (its parent must exist); a file is refused."""
    from .writers import check_output

    target = check_output(out_dir, "png-frames") if not Path(str(out_dir)).is_dir() else Path(str(out_dir))
    try:
        target.mkdir(exist_ok=True)
    except OSError as err:
        raise ConvArithError("output", f"cannot be created ({err.strerror or err})", str(target)) from None
    return target


def gallery(
    out_dir: Path,
    *,
    style: StyleName = "guide",
    fps: float = 2.0,
    names: Sequence[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Path]:
    """Write the gallery and its ``index.html`` into ``out_dir``; returns the files written.

    Parameters
    ----------
    out_dir
        A folder, created if missing (its parent must exist); files in it of the same names are
        replaced.
    style, fps
        As for the animations.
    names
        Only these items (default: all of :data:`GALLERY`).
    progress
        Called after each item with ``(done, total, filename)``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in gallery(pathlib.Path(tmp) / "g", names=["matrix_no_padding_no_strides"])]
    ['matrix_no_padding_no_strides.png', 'index.html']
    """
    items = _items_named(names)
    folder = _folder(out_dir)
    written: list[Path] = []
    for n, item in enumerate(items, 1):
        written += write(item.scene(style), folder / item.filename, fps=fps, title=item.name)
        if progress is not None:
            progress(n, len(items), item.filename)
    index = folder / "index.html"
    try:
        index.write_text(_index_html(items), encoding="utf-8")
    except OSError as err:
        raise ConvArithError("output", f"cannot be written ({err.strerror or err})", str(index)) from None
    return [*written, index]


TOUR_PICTURES: tuple[tuple[str, str], ...] = (
    ("matrix_no_padding_no_strides", "C of the 4×4 input and 3×3 kernel: each colour is one kernel tap (step 1)."),
    ("no_padding_no_strides", "The convolution of step 1: each output cell is one row of C."),
    ("numerical_no_padding_no_strides", "The same with numbers (the guide's Figure 1.1)."),
    (
        "no_padding_no_strides_transposed",
        "Step 3: the transposed convolution as a direct one over the input padded "
        "by k − 1 = 2, kernel rotated by 180°.",
    ),
    (
        "padding_strides_odd_transposed",
        "Step 4: stride 2, padding 1, output_padding 1 — zeros inserted between "
        "inputs, the extra a cells after (bottom and right).",
    ),
    (
        "padding_strides_odd_transposed_scatter",
        "The same as scatter: each input stamps the kernel; the shading "
        "counts the overlap — uneven for k = 3, s = 2: the checkerboard.",
    ),
    ("dilation_transposed", "A dilated transposed convolution (the guide has none): p′ = d(k − 1) − p."),
)
"""The tour's pictures: gallery item names and their captions in the tour."""


def tour_pictures(folder: Path, *, style: StyleName = "guide") -> list[tuple[str, str]]:
    """Draw the tour's pictures into ``folder`` (created if missing); returns ``(file name, caption)`` pairs.

    The file names are relative to ``folder``, in the tour's order.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     pairs = tour_pictures(pathlib.Path(tmp) / "pictures")
    ...     sorted(p.name for p in (pathlib.Path(tmp) / "pictures").iterdir()) == sorted(f for f, _ in pairs)
    True
    >>> pairs[0][0]
    'matrix_no_padding_no_strides.png'
    """
    target = _folder(folder)
    known = {item.name: item for item in GALLERY}
    pairs: list[tuple[str, str]] = []
    for name, caption in TOUR_PICTURES:
        item = known[name]
        write(item.scene(style), target / item.filename, title=item.name)
        pairs.append((item.filename, caption))
    return pairs


def _index_html(items: Sequence[GalleryItem]) -> str:
    sections: dict[str, list[str]] = {}
    for item in items:
        extra = " · scatter view" if item.view == "scatter" else ""
        extra += " · numeric" if item.numeric else ""
        sections.setdefault(item.section, []).append(
            '<figure id="{id}"><a href="{file}"><img src="{file}" alt="{id}" loading="lazy"></a>'
            "<figcaption><b>{file}</b><code>{params}{extra}</code><span>{text}</span></figcaption></figure>".format(
                id=html.escape(item.name),
                file=html.escape(item.filename),
                params=html.escape(item.caption()),
                extra=html.escape(extra),
                text=html.escape(item.description),
            )
        )
    body = "\n".join(
        f"<h2>{html.escape(section.capitalize())}</h2>\n<div class=grid>\n" + "\n".join(figs) + "\n</div>"
        for section, figs in sections.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convarith gallery</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1B2631; }}
h1 {{ font-weight: 600; }} h2 {{ margin-top: 2.5rem; border-bottom: 1px solid #D5DBE0; padding-bottom: .3rem; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1.2rem; }}
figure {{ margin: 0; border: 1px solid #E3E7EA; border-radius: 8px; padding: .6rem; background: #fff; }}
img {{ width: 100%; height: auto; display: block; }}
figcaption {{ font-size: .85rem; display: grid; gap: .25rem; margin-top: .4rem; }}
code {{ font-size: .78rem; color: #5D6D7E; }}
</style></head><body>
<h1>convarith gallery</h1>
<p>The animations of Dumoulin &amp; Visin, <i>A guide to convolution arithmetic for deep learning</i>,
regenerated from convarith's frame model (every frame checked against the matrix C and PyTorch),
with input and output labelled and the transposed <code>output_padding</code> cells after the input,
plus pictures the guide does not have. Regenerate with <code>convarith gallery --out DIR</code>.</p>
{body}
</body></html>
"""
