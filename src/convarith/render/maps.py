"""Still pictures: the matrix C (or Cᵀ) coloured by kernel tap, and overlap maps.

Both are :class:`~convarith.render.scene.Scene` objects with one frame, so every writer takes
them (``.png``, ``.svg``, ``.gif``…).

* :func:`matrix_scene` — every structural nonzero of C (from :func:`convarith.ops.matrix.conv_matrix`
  or :func:`~convarith.ops.matrix.pool_matrix`) coloured by the kernel tap that puts it there
  (from the frame model, whose frames are C's rows), with a legend and, for small cases, row and
  column labels.
* :func:`overlap_scene` — how many kernel taps land on each output cell of a transposed
  convolution (:func:`convarith.geometry.overlap`), or of a stack of them, composed through the
  layers with C of each layer applied to the previous counts; each map's verdict is the layer's
  findings (``uneven-overlap``, ``empty-phase``).

Examples
--------
>>> from convarith import Layer
>>> scene = matrix_scene(Layer("conv2d", kernel_size=3), (4, 4))
>>> scene.width > 300, len(scene.frames)
(True, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConvArithError
from ..geometry.bound import BoundLayer, sample_shape
from ..geometry.coverage import overlap
from ..layer import Layer
from .frames import bind_layer, build_animation
from .scene import Line, Polygon, Scene, Shape, Text, fit_size, format_value, text_width
from .style import INK, MUTED, OKABE_ITO, luminance, mix, tap_colours

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from scipy import sparse

__all__ = ["MAX_MATRIX_NNZ", "MAX_MATRIX_SIDE", "matrix_scene", "matrix_taps", "overlap_counts", "overlap_scene"]

MAX_MATRIX_SIDE = 4096
MAX_MATRIX_NNZ = 150_000
SEVERAL = "#3B3B3B"


def _ravel(index: Sequence[int], shape: Sequence[int]) -> int:
    flat = 0
    for i, n in zip(index, shape, strict=True):
        flat = flat * n + i
    return flat


def matrix_taps(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None = None,
    *,
    at: npt.ArrayLike | None = None,
) -> dict[tuple[int, int], frozenset[tuple[int, ...]]]:
    """``(row, column)`` of C → the spatial kernel taps that put a weight there, from the frames.

    Rows are output cells ``(C_out, *out)`` and columns input cells ``(C_in, *in)``, row-major,
    as in :func:`convarith.ops.matrix.conv_matrix`. A folding ``padding_mode`` can put several taps
    on one entry. For max pooling, ``at`` (the input) selects one tap per row.

    >>> from convarith import Layer
    >>> taps = matrix_taps(Layer("conv1d", kernel_size=2), (3,))
    >>> sorted((rc, sorted(t)) for rc, t in taps.items())
    [((0, 0), [(0,)]), ((0, 1), [(1,)]), ((1, 1), [(0,)]), ((1, 2), [(1,)])]
    """
    bound = bind_layer(layer, input_shape)
    anim = build_animation(bound, input_values=at if bound.kind == "max_pool" else None)
    n = bound.ndim
    in_shape = bound.sample_input_shape
    taps: dict[tuple[int, int], set[tuple[int, ...]]] = {}
    for frame in anim.frames:
        touches = [t for t in frame.lower if anim.lower.source(t.cell) is not None]
        if bound.kind == "max_pool" and anim.values is not None:
            values = anim.values
            # PyTorch's choice: the first maximum in window order
            best = max(
                range(len(frame.lower)),
                key=lambda j: (values.lower[(frame.lower[j].channel, *frame.lower[j].cell)], -j),
            )
            touches = [frame.lower[best]] if anim.lower.source(frame.lower[best].cell) is not None else []
        for touch in touches:
            src = anim.lower.source(touch.cell)
            assert src is not None
            col = _ravel((touch.channel, *src), in_shape)
            taps.setdefault((frame.index, col), set()).add(touch.tap[-n:])
    return {key: frozenset(value) for key, value in taps.items()}


def _matrix(bound: BoundLayer, at: npt.ArrayLike | None) -> sparse.coo_array:
    """C from the ops module (structural entries: the pattern does not depend on the weight)."""
    import numpy as np

    from ..ops.matrix import conv_matrix, pool_matrix

    if bound.pooling:
        if bound.kind == "max_pool" and at is None:
            raise ConvArithError("at", "max pooling has a matrix only at a given input (numeric values)", bound.op)
        return pool_matrix(bound, at=at, format="coo")
    weight = bound.weight_shape
    assert weight is not None
    return conv_matrix(bound, np.ones(weight), format="coo")


def _cell_label(index: int, shape: Sequence[int], channels: int) -> str:
    position = []
    for n in reversed(shape):
        position.append(index % n)
        index //= n
    cell = ",".join(map(str, reversed(position)))
    return f"{index}:{cell}" if channels > 1 else cell


def matrix_scene(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None = None,
    *,
    transpose: bool = False,
    at: npt.ArrayLike | None = None,
) -> Scene:
    """The matrix C of a layer (``transpose=True``: Cᵀ) as a picture, nonzeros coloured by kernel tap.

    Parameters
    ----------
    layer, input_shape
        The layer and its input (channels from the bound layer), or a bound layer alone.
    transpose
        Draw Cᵀ (the transposed convolution, and the input gradient).
    at
        Max pooling only: the input ``(C, *spatial)`` at which its (selection) matrix is taken.

    Raises
    ------
    ConvArithError
        For an input the layer cannot take, max pooling without ``at``, or a matrix too large to
        draw (more than :data:`MAX_MATRIX_SIDE` rows or columns, or :data:`MAX_MATRIX_NNZ` nonzeros).

    Examples
    --------
    >>> from convarith import Layer
    >>> scene = matrix_scene(Layer("conv2d", kernel_size=3), (4, 4))
    >>> scene.width > 300, len(scene.frames)
    (True, 1)
    """
    bound = bind_layer(layer, input_shape)
    if not isinstance(transpose, bool):
        raise ConvArithError("transpose", "must be True or False", repr(transpose))
    spatial, out_spatial = bound.input_spatial, bound.output_spatial
    c_in, c_out = bound.in_channels, bound.out_channels
    rows, cols = c_out * math.prod(out_spatial), c_in * math.prod(spatial)
    if max(rows, cols) > MAX_MATRIX_SIDE:
        raise ConvArithError(
            "input_shape",
            f"C is {rows}×{cols}: too large to draw (at most {MAX_MATRIX_SIDE} per side)",
            bound.input_shape,
        )
    matrix = _matrix(bound, at)
    if matrix.nnz > MAX_MATRIX_NNZ:
        raise ConvArithError(
            "input_shape",
            f"C has {matrix.nnz} nonzeros: too many to draw (at most {MAX_MATRIX_NNZ})",
            bound.input_shape,
        )
    taps = matrix_taps(bound, at=at)
    kernel = bound.layer.kernel_size
    colours = tap_colours(kernel)

    out_cells, in_cells = out_spatial, spatial
    row_channels, col_channels = c_out, c_in
    entries = list(zip(matrix.row.tolist(), matrix.col.tolist(), strict=True))
    if transpose:
        rows, cols = cols, rows
        out_cells, in_cells = in_cells, out_cells
        row_channels, col_channels = col_channels, row_channels
        entries = [(c, r) for r, c in entries]
    px = min(max(int(640 / max(rows, cols)), 1), 30)
    labels = px >= 12 and max(rows, cols) <= 64
    row_labels = [_cell_label(r, out_cells, row_channels) for r in range(rows)] if labels else []
    col_labels = [_cell_label(c, in_cells, col_channels) for c in range(cols)] if labels else []
    label_w = 6.6 * max((len(t) for t in row_labels), default=0) + 14
    label_h = 6.6 * max((len(t) for t in col_labels), default=0) + 14
    name = "Cᵀ" if transpose else "C"
    title = f"{name} of {bound.caption()}"
    subtitle = f"{rows} × {cols}, {matrix.nnz} nonzeros ({100 * matrix.nnz / (rows * cols):.1f}%)"
    x0 = 24 + 16 + label_w
    y0 = 58 + label_h
    body_w, body_h = cols * px, rows * px
    shapes: list[Shape] = [
        Text(16, 20, title, 14, INK, "lm"),
        Text(16, 40, subtitle, 11, MUTED, "lm"),
        Polygon(((x0, y0), (x0 + body_w, y0), (x0 + body_w, y0 + body_h), (x0, y0 + body_h)), "#FFFFFF", None),
    ]
    if px >= 5:
        grid = "#E6E9EC"
        shapes += [Line(((x0, y0 + r * px), (x0 + body_w, y0 + r * px)), grid, 1) for r in range(rows + 1)]
        shapes += [Line(((x0 + c * px, y0), (x0 + c * px, y0 + body_h)), grid, 1) for c in range(cols + 1)]
    several = False
    inset = 0.5 if px >= 5 else 0.0
    for r, c in entries:
        key = (c, r) if transpose else (r, c)
        found = taps.get(key, frozenset())
        if len(found) == 1:
            fill = colours[next(iter(found))]
        else:
            fill, several = SEVERAL, True
        x, y = x0 + c * px, y0 + r * px
        quad = (
            (x + inset, y + inset),
            (x + px - inset, y + inset),
            (x + px - inset, y + px - inset),
            (x + inset, y + px - inset),
        )
        shapes.append(Polygon(quad, fill, None))
    # channel blocks
    block_rows, block_cols = math.prod(out_cells), math.prod(in_cells)
    for r in range(block_rows, rows, block_rows):
        shapes.append(Line(((x0, y0 + r * px), (x0 + body_w, y0 + r * px)), INK, 1.2))
    for c in range(block_cols, cols, block_cols):
        shapes.append(Line(((x0 + c * px, y0), (x0 + c * px, y0 + body_h)), INK, 1.2))
    shapes.append(Polygon(((x0, y0), (x0 + body_w, y0), (x0 + body_w, y0 + body_h), (x0, y0 + body_h)), None, MUTED, 1))
    size = min(px * 0.62, 11)
    for r, text in enumerate(row_labels):
        shapes.append(Text(x0 - 6, y0 + (r + 0.5) * px, text, size, MUTED, "rm"))
    for c, text in enumerate(col_labels):
        # one character per line keeps column labels narrow without rotated text
        for j, ch in enumerate(text):
            shapes.append(Text(x0 + (c + 0.5) * px, y0 - 8 - (len(text) - 1 - j) * size * 0.95, ch, size, MUTED, "ms"))
    rows_are = "input" if transpose else "output"
    cols_are = "output" if transpose else "input"
    axes_note = f"rows: {rows_are} cells, columns: {cols_are} cells, row-major" + (
        " (channel:position)" if max(row_channels, col_channels) > 1 else ""
    )
    shapes.append(Text(16, y0 + body_h + 18, axes_note, 11, MUTED, "lm"))
    legend_y = y0 + body_h + 44
    legend, legend_h, legend_w = _tap_legend(kernel, colours, several, 16, legend_y, transposed=bound.transposed)
    shapes += legend
    width = max(x0 + body_w + 24, legend_w + 32, 32 + text_width(title, 14), 32 + text_width(axes_note, 11))
    height = legend_y + legend_h + 16
    return Scene(math.ceil(width), math.ceil(height), shapes, [[]], supersample=1)


def _tap_legend(
    kernel: Sequence[int], colours: dict[tuple[int, ...], str], several: bool, x: float, y: float, *, transposed: bool
) -> tuple[list[Shape], float, float]:
    shapes: list[Shape] = [Text(x, y, "kernel tap", 12, INK, "lm", bold=True)]
    rows, cols = (1, kernel[0]) if len(kernel) == 1 else kernel[-2:]
    slices = math.prod(kernel[:-2]) if len(kernel) > 2 else 1
    box = 26.0 if math.prod(kernel) <= 49 else 14.0
    top = y + 14
    for tap, colour in colours.items():
        panel = _ravel(tap[:-2], kernel[:-2]) if len(kernel) > 2 else 0
        r, c = (0, tap[0]) if len(kernel) == 1 else tap[-2:]
        bx = x + panel * (cols + 0.6) * box + c * box
        by = top + r * box
        shapes.append(Polygon(((bx, by), (bx + box, by), (bx + box, by + box), (bx, by + box)), colour, "#FFFFFF", 1.5))
        if box >= 20:
            text = ",".join(map(str, tap))
            ink = "#FFFFFF" if luminance(colour) < 0.5 else INK
            shapes.append(Text(bx + box / 2, by + box / 2, text, 9 if len(text) <= 3 else 7, ink))
    width = slices * (cols + 0.6) * box
    height = 14 + rows * box
    note = "taps of the weight w (not rotated)" if transposed else "taps of the weight w"
    shapes.append(Text(x + width + 12, top + 8, note, 11, MUTED, "lm"))
    if several:
        sx = x + width + 12
        sy = top + 26
        shapes.append(Polygon(((sx, sy), (sx + 12, sy), (sx + 12, sy + 12), (sx, sy + 12)), SEVERAL, None))
        shapes.append(Text(sx + 18, sy + 6, "several taps (padding folds them together)", 11, MUTED, "lm"))
    return shapes, height, width + 12 + 6.6 * 40


# -- overlap -----------------------------------------------------------------------------------------


def _single_channel(layers: object, input_shape: Sequence[int]) -> list[BoundLayer]:
    """Each layer of a stack, one channel in and out, bound to the previous one's output."""
    if isinstance(layers, Layer | BoundLayer) or not isinstance(layers, Sequence) or not layers:
        raise ConvArithError("layers", "an overlap map needs a sequence of transposed convolutions", repr(layers))
    bounds: list[BoundLayer] = []
    shape: tuple[int, ...] | None = None
    for n, item in enumerate(layers):
        layer: object = item.layer if isinstance(item, BoundLayer) else item
        if not isinstance(layer, Layer):
            raise ConvArithError("layers", f"layer {n + 1} must be a convarith.Layer", type(layer).__name__)
        if not layer.transposed:
            raise ConvArithError("layers", f"layer {n + 1} must be a transposed convolution", layer.op)
        if shape is None:
            shape = sample_shape(input_shape, layer.ndim)[-layer.ndim :]
        elif len(shape) != layer.ndim:
            raise ConvArithError(
                "layers", f"layer {n + 1} has {layer.ndim} spatial axes, its input {len(shape)}", shape
            )
        bound = layer.replace(in_channels=None, out_channels=None, groups=1).bind(shape)
        bounds.append(bound)
        shape = bound.output_spatial
    return bounds


def overlap_counts(layers: Sequence[Layer], input_shape: Sequence[int]) -> list[npt.NDArray[np.float64]]:
    """Taps landing on every output cell after each transposed convolution of a stack.

    Layer 1's counts are :func:`convarith.geometry.overlap`'s (an outer product over axes); each
    further layer applies its own C (all-ones kernel, one channel) to the previous counts, so a
    cell's count is the number of paths from the stack's input to it. Channels and groups are
    left out: a map is of one channel.

    Returns
    -------
    list of numpy.ndarray
        One ``(1, *out)`` array per layer.

    Examples
    --------
    >>> from convarith import Layer
    >>> overlap_counts([Layer("conv_transpose1d", kernel_size=3, stride=2)], (3,))[-1].tolist()
    [[1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]]
    """
    import numpy as np

    from ..ops.matrix import conv_matrix

    counts: list[npt.NDArray[np.float64]] = []
    for n, bound in enumerate(_single_channel(layers, input_shape)):
        out = bound.output_spatial
        if n == 0:
            per_axis = [np.asarray(ov.counts, dtype=np.float64) for ov in overlap(bound)]
            grid = per_axis[0]
            for axis in per_axis[1:]:
                grid = np.multiply.outer(grid, axis)
            counts.append(grid.reshape(1, *out))
        else:
            weight = bound.weight_shape
            assert weight is not None
            matrix = conv_matrix(bound, np.ones(weight))
            counts.append(np.asarray(matrix @ counts[-1].ravel(), dtype=np.float64).reshape(1, *out))
    return counts


def _wrap(text: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and text_width(candidate, size) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def overlap_scene(layers: Sequence[Layer], input_shape: Sequence[int], *, titles: Sequence[str] | None = None) -> Scene:
    """Overlap maps of a stack of transposed convolutions, one map per layer, left to right.

    Cells are shaded by their count (darker = more taps) and carry the count; under each map,
    the layer's overlap findings (``uneven-overlap``: the checkerboard, ``empty-phase``).

    >>> from convarith import Layer
    >>> scene = overlap_scene([Layer("conv_transpose2d", kernel_size=3, stride=2)] * 2, (3, 3))
    >>> any("checkerboard" in getattr(s, "text", "") for s in scene.background)
    True
    """
    bounds = _single_channel(layers, input_shape)
    maps = overlap_counts([b.layer for b in bounds], input_shape)
    if titles is not None and len(titles) != len(bounds):
        raise ConvArithError("titles", f"needs one title per layer ({len(bounds)})", len(titles))
    shapes: list[Shape] = []
    x = 24.0
    top = 84.0
    bottoms = []
    for n, (bound, counts) in enumerate(zip(bounds, maps, strict=True)):
        grid = counts[0]
        if grid.ndim == 1:
            grid = grid.reshape(1, -1)
        if grid.ndim > 2:
            grid = grid.reshape(-1, grid.shape[-1])  # depth slices stacked
        rows, cols = grid.shape
        px = min(max(int(300 / max(rows, cols)), 6), 36)
        peak = float(grid.max()) or 1.0
        for r in range(rows):
            for c in range(cols):
                value = float(grid[r, c])
                t = value / peak
                fill = mix("#FFFFFF", mix(OKABE_ITO["green"], "#000000", 0.45), 0.12 + 0.88 * t)
                cx, cy = x + c * px, top + r * px
                shapes.append(Polygon(((cx, cy), (cx + px, cy), (cx + px, cy + px), (cx, cy + px)), fill, "#FFFFFF", 1))
                if px >= 16:
                    colour = "#FFFFFF" if t > 0.5 else INK
                    text = format_value(value)
                    shapes.append(Text(cx + px / 2, cy + px / 2, text, fit_size(text, px * 0.38, px * 0.86), colour))
        layer = bound.layer
        title = titles[n] if titles else f"layer {n + 1}: k={_fmt(layer.kernel_size)} s={_fmt(layer.stride)}"
        shapes.append(Text(x, top - 34, title, 12, INK, "lm", bold=True))
        sizes = f"{'×'.join(map(str, bound.input_spatial))} → {'×'.join(map(str, bound.output_spatial))}"
        shapes.append(Text(x, top - 16, f"{sizes}, max {format_value(peak)}", 10, MUTED, "lm"))
        width = max(cols * px, 7 * 38)
        notes = [f.message for f in bound.findings() if f.code in ("uneven-overlap", "empty-phase")]
        y = top + rows * px + 16
        for note in notes or ["no uneven-overlap or empty-phase finding: even overlap"]:
            for line in _wrap(note, 10, width):
                shapes.append(Text(x, y, line, 10, OKABE_ITO["vermillion"] if notes else MUTED, "lm"))
                y += 13
        x += width + 36
        bottoms.append(y)
    caption = "taps per output cell (darker = more); uneven counts make checkerboard artifacts"
    height = max(bottoms) + 30
    shapes.append(Text(24, height - 18, caption, 11, MUTED, "lm"))
    shapes.insert(0, Text(24, 20, "overlap of " + " → ".join(b.op for b in bounds), 14, INK, "lm"))
    width = max(x, 24 + text_width(caption, 11) + 24)
    return Scene(math.ceil(width), math.ceil(height), shapes, [[]], supersample=1)


def _fmt(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))
