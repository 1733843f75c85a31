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
>>> item.spec.output_padding, item.input
((1, 1), (3, 3))
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..geometry import ConvSpec, transpose_of
from .frames import View, build_animation
from .maps import matrix_scene, overlap_scene
from .scene import Scene, compose
from .style import StyleName
from .writers import write

__all__ = ["GALLERY", "GalleryItem", "gallery"]

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
    spec: ConvSpec
    input: tuple[int, ...]
    description: str
    kind: Literal["animation", "matrix", "overlap"] = "animation"
    view: View = "direct"
    numeric: bool = False
    input_values: Any = None
    kernel_values: Any = None
    transpose: bool = False
    stack: tuple[ConvSpec, ...] = field(default=())
    channels: tuple[int, int] = (1, 1)

    @property
    def filename(self) -> str:
        return f"{self.name}.gif" if self.kind == "animation" else f"{self.name}.png"

    def scene(self, style: StyleName = "guide") -> Scene:
        if self.kind == "matrix":
            return matrix_scene(self.spec, self.input, transpose=self.transpose)
        if self.kind == "overlap":
            return overlap_scene(self.stack or (self.spec,), self.input)
        anim = build_animation(
            self.spec,
            self.input,
            view=self.view,
            numeric=self.numeric,
            input_values=self.input_values,
            kernel_values=self.kernel_values,
            in_channels=self.channels[0],
            out_channels=self.channels[1],
        )
        return compose(anim, style)


def _conv(i: int, k: int, s: int, p: int, d: int = 1) -> tuple[ConvSpec, tuple[int, int]]:
    return ConvSpec.create("conv2d", kernel_size=k, stride=s, padding=p, dilation=d), (i, i)


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
        out = conv.output_spatial(spatial)
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
            conv.output_spatial(spatial),
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
            conv.output_spatial(spatial),
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
                ConvSpec.create(f"{kind}_pool2d", kernel_size=3, stride=1),
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
                ConvSpec.create(f"{kind}_pool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True),
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
                base.spec,
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
            ConvSpec.create("conv1d", kernel_size=3, stride=2, padding=1),
            (7,),
            "1-d convolution as a strip.",
        )
    )
    items.append(
        GalleryItem(
            "conv3d_slices",
            "beyond the guide",
            ConvSpec.create("conv3d", kernel_size=2, stride=1),
            (3, 4, 4),
            "3-d convolution: the depth slices side by side, the kernel spans two of them.",
        )
    )
    items.append(
        GalleryItem(
            "groups",
            "beyond the guide",
            ConvSpec.create("conv2d", kernel_size=3, groups=2),
            (4, 4),
            "Channels as planes: 2 input channels, 4 output channels, groups = 2 (each output reads its group).",
            channels=(2, 4),
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
    k3 = ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2)
    k4 = ConvSpec.create("conv_transpose2d", kernel_size=4, stride=2, padding=1)
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
        Created if missing.
    style, fps
        As for the animations.
    names
        Only these items (default: all of :data:`GALLERY`).
    progress
        Called after each item with ``(done, total, filename)``.
    """
    items = [item for item in GALLERY if names is None or item.name in names]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n, item in enumerate(items, 1):
        written += write(item.scene(style), out_dir / item.filename, fps=fps, title=item.name)
        if progress is not None:
            progress(n, len(items), item.filename)
    index = out_dir / "index.html"
    index.write_text(_index_html(items), encoding="utf-8")
    return [*written, index]


def _params(item: GalleryItem) -> str:
    if item.kind == "overlap":
        return " → ".join(f"{s.op} k={s.kernel_size[0]} s={s.stride[0]} p={s.pads[0][0]}" for s in item.stack)
    out = item.spec.output_spatial(item.input)
    from .maps import _caption

    return _caption(item.spec.resolve(item.input), item.input, out, *item.channels)


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
                params=html.escape(_params(item)),
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
