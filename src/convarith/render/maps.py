"""Still pictures: the matrix C (or Cᵀ) coloured by kernel tap, and overlap maps.

Both are :class:`~convarith.render.scene.Scene` objects with one frame, so every writer takes
them (``.png``, ``.svg``, ``.gif``…).

* :func:`matrix_scene` — every structural nonzero of C (from :func:`convarith.ops.matrix.conv_matrix`
  or :func:`~convarith.ops.matrix.pool_matrix`) coloured by the kernel tap that puts it there
  (from the frame model, whose frames are C's rows), with a legend and, for small cases, row and
  column labels.
* :func:`overlap_scene` — how many kernel taps land on each output cell of a transposed
  convolution (:func:`convarith.geometry.overlap`), or of a stack of them, composed through the
  layers with C of each layer applied to the previous counts.

Examples
--------
>>> from convarith import ConvSpec
>>> scene = matrix_scene(ConvSpec.create("conv2d", kernel_size=3), (4, 4))
>>> scene.width > 300, len(scene.frames)
(True, 1)
>>> overlap_counts([ConvSpec.create("conv_transpose1d", kernel_size=3, stride=2)], (3,))[-1].tolist()
[[1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConvArithError
from ..geometry import ConvSpec, overlap
from .frames import build_animation
from .scene import Line, Polygon, Scene, Shape, Text, format_value
from .style import INK, MUTED, OKABE_ITO, luminance, mix, tap_colours

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

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
    spec: ConvSpec,
    input_spatial: Sequence[int],
    *,
    in_channels: int = 1,
    out_channels: int | None = None,
    at: Any | None = None,
) -> dict[tuple[int, int], frozenset[tuple[int, ...]]]:
    """``(row, column)`` of C → the spatial kernel taps that put a weight there, from the frames.

    Rows are output cells ``(C_out, *out)`` and columns input cells ``(C_in, *in)``, row-major,
    as in :func:`convarith.ops.matrix.conv_matrix`. A folding ``padding_mode`` can put several taps
    on one entry. For max pooling, ``at`` (the input) selects one tap per row.

    >>> from convarith import ConvSpec
    >>> taps = matrix_taps(ConvSpec.create("conv1d", kernel_size=2), (3,))
    >>> sorted((rc, sorted(t)) for rc, t in taps.items())
    [((0, 0), [(0,)]), ((0, 1), [(1,)]), ((1, 1), [(0,)]), ((1, 2), [(1,)])]
    """
    anim = build_animation(
        spec,
        input_spatial,
        in_channels=in_channels,
        out_channels=out_channels,
        input_values=at if spec.kind == "max_pool" else None,
    )
    n = spec.ndim
    in_shape = (anim.in_channels, *anim.input_spatial)
    taps: dict[tuple[int, int], set[tuple[int, ...]]] = {}
    for frame in anim.frames:
        touches = [t for t in frame.lower if anim.lower.source(t.cell) is not None]
        if spec.kind == "max_pool" and anim.values is not None:
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


def _matrix(spec: ConvSpec, spatial: Sequence[int], in_channels: int, out_channels: int | None, at: Any) -> Any:
    """C from the ops module (structural entries: the pattern does not depend on the weight)."""
    import numpy as np

    from ..geometry import check_channels
    from ..ops.matrix import conv_matrix, pool_matrix

    shape = (in_channels, *spatial)
    if spec.pooling:
        if spec.kind == "max_pool" and at is None:
            raise ConvArithError("op", "max pooling has a matrix only at a given input (numeric values)", spec.op)
        return pool_matrix(
            spec.op,
            shape,
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            padding=spec.pads,
            dilation=spec.dilation,
            ceil_mode=spec.ceil_mode,
            count_include_pad=spec.count_include_pad,
            at=at,
        )
    c_out = check_channels(spec, in_channels, out_channels)
    g = spec.groups
    wshape = (in_channels, c_out // g) if spec.transposed else (c_out, in_channels // g)
    return conv_matrix(
        spec.op,
        np.ones((*wshape, *spec.kernel_size)),
        shape,
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=g,
        output_padding=spec.output_padding,
        padding_mode=spec.padding_mode,
    )


def _cell_label(index: int, shape: Sequence[int], channels: int) -> str:
    position = []
    for n in reversed(shape):
        position.append(index % n)
        index //= n
    cell = ",".join(map(str, reversed(position)))
    return f"{index}:{cell}" if channels > 1 else cell


def matrix_scene(
    spec: ConvSpec,
    input_spatial: Sequence[int],
    *,
    in_channels: int = 1,
    out_channels: int | None = None,
    transpose: bool = False,
    at: Any | None = None,
) -> Scene:
    """The matrix C of a layer (``transpose=True``: Cᵀ) as a picture, nonzeros coloured by kernel tap.

    Parameters
    ----------
    spec, input_spatial, in_channels, out_channels
        The layer and its input.
    transpose
        Draw Cᵀ (the transposed convolution, and the input gradient).
    at
        Max pooling only: the input ``(C, *spatial)`` at which its (selection) matrix is taken.

    Raises
    ------
    ConvArithError
        For an invalid layer, max pooling without ``at``, or a matrix too large to draw
        (more than :data:`MAX_MATRIX_SIDE` rows or columns, or :data:`MAX_MATRIX_NNZ` nonzeros).
    """
    spatial = tuple(input_spatial)
    out_spatial = spec.output_spatial(spatial)
    spec = spec.resolve(spatial)
    c_out = in_channels if spec.pooling else (out_channels or in_channels)
    rows, cols = c_out * math.prod(out_spatial), in_channels * math.prod(spatial)
    if max(rows, cols) > MAX_MATRIX_SIDE:
        raise ConvArithError(
            "input", f"C is {rows}×{cols}: too large to draw (at most {MAX_MATRIX_SIDE} per side)", spatial
        )
    matrix = _matrix(spec, spatial, in_channels, out_channels, at).tocoo()
    if matrix.nnz > MAX_MATRIX_NNZ:
        raise ConvArithError(
            "input", f"C has {matrix.nnz} nonzeros: too many to draw (at most {MAX_MATRIX_NNZ})", spatial
        )
    taps = matrix_taps(spec, spatial, in_channels=in_channels, out_channels=out_channels, at=at)
    kernel = spec.kernel_size
    colours = tap_colours(kernel)

    out_cells, in_cells = out_spatial, spatial
    row_channels, col_channels = c_out, in_channels
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
    title = f"{name} of {_caption(spec, spatial, out_spatial, in_channels, c_out)}"
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
    legend, legend_h, legend_w = _tap_legend(kernel, colours, several, 16, legend_y, transposed=spec.transposed)
    shapes += legend
    width = max(x0 + body_w + 24, legend_w + 32, 16 + 7.2 * len(title), 32 + 6.4 * len(axes_note))
    height = legend_y + legend_h + 16
    return Scene(math.ceil(width), math.ceil(height), shapes, [[]], supersample=1)


def _caption(spec: ConvSpec, spatial: Sequence[int], out: Sequence[int], c_in: int, c_out: int) -> str:
    from .frames import Animation, Grid

    empty = Grid("", 1, ())
    return Animation(spec, "direct", tuple(spatial), tuple(out), c_in, c_out, empty, empty, ()).caption()


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


def overlap_counts(specs: Sequence[ConvSpec], input_spatial: Sequence[int]) -> list[npt.NDArray[np.float64]]:
    """Taps landing on every output cell after each transposed convolution of a stack.

    Layer 1's counts are :func:`convarith.geometry.overlap`'s (an outer product over axes); each
    further layer applies its own C (all-ones kernel, one channel) to the previous counts, so a
    cell's count is the number of paths from the stack's input to it.

    Returns
    -------
    list of numpy.ndarray
        One ``(1, *out)`` array per layer.
    """
    import numpy as np

    from ..ops.matrix import conv_matrix

    if not specs:
        raise ConvArithError("layers", "an overlap map needs at least one transposed convolution", 0)
    counts: list[npt.NDArray[np.float64]] = []
    spatial = tuple(input_spatial)
    for n, spec in enumerate(specs):
        if not spec.transposed:
            raise ConvArithError("layers", f"layer {n + 1} must be a transposed convolution", spec.op)
        out = spec.output_spatial(spatial)
        if n == 0:
            per_axis = [np.asarray(ov.counts, dtype=np.float64) for ov in overlap(spec, spatial)]
            grid = per_axis[0]
            for axis in per_axis[1:]:
                grid = np.multiply.outer(grid, axis)
            counts.append(grid.reshape(1, *out))
        else:
            resolved = spec.resolve(spatial)
            matrix = conv_matrix(
                resolved.op,
                np.ones((1, 1, *resolved.kernel_size)),
                (1, *spatial),
                stride=resolved.stride,
                padding=resolved.pads,
                dilation=resolved.dilation,
                output_padding=resolved.output_padding,
            )
            counts.append((matrix @ counts[-1].ravel()).reshape(1, *out))
        spatial = out
    return counts


def overlap_scene(
    specs: Sequence[ConvSpec], input_spatial: Sequence[int], *, titles: Sequence[str] | None = None
) -> Scene:
    """Overlap maps of a stack of transposed convolutions, one map per layer, left to right.

    Cells are shaded by their count (darker = more taps) and carry the count; uneven counts in
    the interior are the checkerboard.
    """
    maps = overlap_counts(specs, input_spatial)
    shapes: list[Shape] = []
    x = 24.0
    top = 84.0
    heights = []
    spatial = tuple(input_spatial)
    for n, (spec, counts) in enumerate(zip(specs, maps, strict=True)):
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
                    shapes.append(Text(cx + px / 2, cy + px / 2, format_value(value), px * 0.38, colour))
        resolved = spec.resolve(spatial)
        ov = overlap(spec, spatial)
        verdict = "uneven: checkerboard" if any(a.uneven for a in ov) else "even"
        title = titles[n] if titles else f"layer {n + 1}: k={_fmt(resolved.kernel_size)} s={_fmt(resolved.stride)}"
        shapes.append(Text(x, top - 34, title, 12, INK, "lm", bold=True))
        out = spec.output_spatial(spatial)
        shapes.append(
            Text(
                x,
                top - 16,
                f"{'×'.join(map(str, spatial))} → {'×'.join(map(str, out))}, max {format_value(peak)}, {verdict}",
                10,
                MUTED,
                "lm",
            )
        )
        width = max(cols * px, 7 * 38)
        x += width + 36
        heights.append(rows * px)
        spatial = out
    caption = "taps per output cell (darker = more); uneven counts make checkerboard artifacts"
    height = top + max(heights) + 40
    shapes.append(Text(24, height - 18, caption, 11, MUTED, "lm"))
    shapes.insert(0, Text(24, 20, "overlap of " + " → ".join(s.op for s in specs), 14, INK, "lm"))
    return Scene(math.ceil(max(x, 24 + 6.2 * len(caption) + 24)), math.ceil(height), shapes, [[]], supersample=1)


def _fmt(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))
