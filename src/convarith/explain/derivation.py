"""Derivations with the actual numbers: output sizes by the guide's relationships, the equivalent
direct convolution of a transposed one, and C in the guide's symbolic form.

Examples
--------
>>> from convarith.explain.document import to_text
>>> doc = explain_layer(ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1,
...                                     output_padding=1), (1, 1, 3, 3))
>>> text = to_text(doc)
>>> "relationship 14" in text and "p′ = (0, 1)" not in text
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from ..geometry import ConvSpec, coverage, equivalent_direct_conv, output_shape_of, overlap, relationship_for
from .document import Code, Document

__all__ = ["explain_layer", "stretched_grid", "symbolic_matrix", "tap_names"]

# Above this many cells, C is summarised instead of printed.
SYMBOLIC_LIMIT = 64 * 64


def _label(prefix: str, index: Sequence[int]) -> str:
    sep = "" if all(i < 10 for i in index) else ","
    return prefix + sep.join(map(str, index))


def tap_names(kernel_size: Sequence[int], prefix: str = "w") -> list[str]:
    """``w00 w01 …`` in row-major order, as the guide writes kernel taps."""
    return [_label(prefix, idx) for idx in itertools.product(*(range(k) for k in kernel_size))]


def symbolic_matrix(spec: ConvSpec, spatial: Sequence[int]) -> list[list[str]]:
    """C of a single-channel layer with each entry written as the tap(s) it holds (``0`` elsewhere).

    Built from :func:`convarith.ops.matrix.conv_matrix` with one one-hot kernel per tap, so it is
    the real matrix, folded taps (``w00+w02``) included.

    >>> C = symbolic_matrix(ConvSpec.create("conv2d", kernel_size=3), (4, 4))
    >>> C[0][:7]
    ['w00', 'w01', 'w02', '0', 'w10', 'w11', 'w12']
    """
    import numpy as np

    from ..ops.matrix import conv_matrix

    names = tap_names(spec.kernel_size)
    cells: list[list[list[str]]] | None = None
    for flat, name in enumerate(names):
        weight = np.zeros((1, 1, *spec.kernel_size))
        weight.reshape(-1)[flat] = 1.0
        matrix = conv_matrix(
            spec.op,
            weight,
            (1, *spatial),
            stride=spec.stride,
            padding=spec.padding,
            dilation=spec.dilation,
            output_padding=spec.output_padding,
            padding_mode=spec.padding_mode,
            format="dense",
        )
        if cells is None:
            cells = [[[] for _ in range(matrix.shape[1])] for _ in range(matrix.shape[0])]
        for r, c in zip(*np.nonzero(matrix), strict=True):
            count = round(float(matrix[r, c]))
            cells[r][c].append(name if count == 1 else f"{count}·{name}")
    assert cells is not None
    return [["+".join(entry) or "0" for entry in row] for row in cells]


def stretched_grid(spec: ConvSpec, spatial: Sequence[int]) -> list[list[str]]:
    """The input of the equivalent direct convolution of a transposed ``spec``, as labels.

    ``y..`` input values, ``0`` inserted zeros, ``·`` padding, ``a`` the output-padding cells.
    Negative padding crops the stretched input. One or two spatial axes.
    """
    axes = equivalent_direct_conv(spec, spatial)
    if len(axes) > 2:
        raise ValueError("only 1-d and 2-d grids are drawn")
    kinds_per_axis = []
    for eq in axes:
        kinds: list[tuple[str, int]] = [("pad", -1)] * max(eq.pad[0], 0)
        for j in range(eq.stretched):
            kinds.append(("in", j // (eq.zeros_between + 1)) if j % (eq.zeros_between + 1) == 0 else ("zero", -1))
        after = eq.pad[1]
        kinds += [("pad", -1)] * max(after - eq.output_padding, 0) + [("extra", -1)] * min(
            eq.output_padding, max(after, 0)
        )
        start = max(-eq.pad[0], 0)
        stop = len(kinds) - max(-after, 0)
        kinds_per_axis.append(kinds[start:stop])
    rows = kinds_per_axis[0] if len(axes) == 2 else [("in", 0)]
    cols = kinds_per_axis[-1]
    grid = []
    for rk, ri in rows:
        line = []
        for ck, ci in cols:
            pair = {rk, ck}
            if "extra" in pair:
                line.append("a")
            elif "pad" in pair:
                line.append("·")
            elif "zero" in pair:
                line.append("0")
            else:
                line.append(_label("y", (ri, ci) if len(axes) == 2 else (ci,)))
        grid.append(line)
    return grid


def _sub(formula: str, values: dict[str, int]) -> str:
    for name, value in values.items():
        formula = formula.replace(name, str(value))
    return formula


def explain_layer(
    spec: ConvSpec, input_shape: Sequence[int], *, out_channels: int | None = None, symbolic: bool = True
) -> Document:
    """The derivation of one layer's shapes with its numbers, as a :class:`Document`."""
    out_shape = output_shape_of(spec, input_shape, out_channels=out_channels)
    spatial = tuple(input_shape[-spec.ndim :])
    resolved = spec.resolve(spatial)
    doc = Document(f"{spec.op}: {' × '.join(map(str, input_shape))} → {' × '.join(map(str, out_shape))}")
    doc.heading("Output size")
    for n in range(spec.ndim):
        i, k, s, d = spatial[n], resolved.kernel_size[n], resolved.stride[n], resolved.dilation[n]
        (pb, pa), a, o = resolved.pads[n], resolved.output_padding[n], out_shape[-spec.ndim + n]
        if spec.transposed:
            general = (
                "o = (i − 1)·s − p_b − p_a + d·(k − 1) + 1 + a = "
                f"({i} − 1)·{s} − {pb} − {pa} + {d}·({k} − 1) + 1 + {a} = {o}"
            )
        else:
            rounding = "⌈…⌉ (ceil_mode)" if spec.ceil_mode else "⌊…⌋"
            general = (
                f"o = {rounding[0]}(i + p_b + p_a − d·(k − 1) − 1) / s{rounding[2]} + 1 = "
                f"{rounding[0]}({i} + {pb} + {pa} − {d}·({k} − 1) − 1) / {s}{rounding[2]} + 1 = {o}"
            )
            if spec.ceil_mode:
                general += "  (a last window starting in the padding after the input is dropped)"
        doc.para(f"Axis {n}: ", Code(general))
        rel = relationship_for(resolved, n)
        if rel is not None:
            values = {"i′": i, "p′": 0, "k": k, "s": s, "p": pb, "d": d, "a": a, "i": i}
            doc.para(
                f"The guide's relationship {rel.number} ({rel.name}, §{rel.section}) applies: ",
                Code(rel.formula),
                " — here ",
                Code(_sub(rel.formula.split("=", 1)[1].strip(), values) + f" = {o}"),
                ".",
            )
        else:
            doc.para(
                "No single relationship of the guide covers this axis (asymmetric padding, ceil_mode, or a "
                "dilated transposed convolution); the general formula above does.",
                style="note",
            )
    if spec.transposed:
        _explain_transposed(doc, spec, spatial)
    else:
        _explain_coverage(doc, spec, spatial)
    if symbolic and math.prod(spatial) * math.prod(out_shape[-spec.ndim :]) <= SYMBOLIC_LIMIT:
        _explain_matrix(doc, spec, spatial)
    return doc


def _explain_transposed(doc: Document, spec: ConvSpec, spatial: Sequence[int]) -> None:
    axes = equivalent_direct_conv(spec, spatial)
    doc.heading("The equivalent direct convolution")
    doc.para(
        "A transposed convolution equals a stride-1 direct convolution over its input with s − 1 zeros inserted "
        "between neighbours, padded by p′ = d(k − 1) − p on each side (negative = crop) plus the output padding a "
        "after, with the kernel rotated by 180° and its in/out channel axes swapped within each group. Frameworks "
        "compute cross-correlation, which is why the rotation is needed."
    )
    doc.table(
        ["axis", "i′", "zeros between", "ĩ′", "k′", "s′", "d′", "p′ before", "p′ after (incl. a)", "a", "o′"],
        [
            [
                str(n),
                str(eq.input),
                str(eq.zeros_between),
                str(eq.stretched),
                str(eq.kernel),
                "1",
                str(eq.dilation),
                str(eq.pad[0]),
                str(eq.pad[1]),
                str(eq.output_padding),
                str(eq.output),
            ]
            for n, eq in enumerate(axes)
        ],
    )
    if spec.ndim <= 2 and math.prod(eq.stretched + max(eq.pad[0], 0) + max(eq.pad[1], 0) for eq in axes) <= 900:
        doc.grid(
            stretched_grid(spec, spatial),
            "stretched and padded input: y = input, 0 = inserted zero, · = padding, a = output_padding cell",
        )
        names = tap_names(spec.kernel_size)
        if spec.ndim == 2:
            rows, cols = spec.kernel_size
            kernel = [names[r * cols : (r + 1) * cols] for r in range(rows)]
            rotated = [row[::-1] for row in kernel[::-1]]
        else:
            kernel, rotated = [names], [names[::-1]]
        doc.grid(kernel, "kernel as stored")
        doc.grid(rotated, "kernel rotated by 180°, as the direct convolution uses it")
    for n, ov in enumerate(overlap(spec, spatial)):
        if ov.empty_phases:
            doc.para(
                f"Axis {n}: output phases {list(ov.empty_phases)} (mod {spec.stride[n]}) receive no kernel tap.",
                style="note",
            )
        elif ov.uneven:
            doc.para(
                f"Axis {n}: each output phase receives {list(ov.phase_counts)} taps — uneven overlap, the "
                "checkerboard-artifact condition. A kernel size divisible by the stride avoids it.",
                style="note",
            )


def _explain_coverage(doc: Document, spec: ConvSpec, spatial: Sequence[int]) -> None:
    for n, cov in enumerate(coverage(spec, spatial)):
        if cov.unread_input:
            doc.para(f"Axis {n}: input cells {list(cov.unread_input)} are never read by any window.", style="note")
        if cov.unread_pad[1]:
            doc.para(
                f"Axis {n}: the last {cov.unread_pad[1]} padded cell(s) are never reached (the floor in the "
                "output size drops them, as in the guide's Figure 2.7).",
                style="note",
            )


def _explain_matrix(doc: Document, spec: ConvSpec, spatial: Sequence[int]) -> None:
    one_channel = (
        ConvSpec.create(
            spec.op,
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            padding=spec.padding,
            dilation=spec.dilation,
            output_padding=spec.output_padding,
            padding_mode=spec.padding_mode,
        )
        if spec.kind in ("conv", "conv_transpose")
        else None
    )
    if one_channel is None:
        return
    doc.heading("The matrix C (one channel)")
    doc.para(
        "Rows are the output cells and columns the input cells, both unrolled row-major, so that ",
        Code("y.ravel() = C @ x.ravel()"),
        ". Kernel row r of the kernel sits at columns offset + r·W + c."
        + (
            " For a transposed convolution this is the transpose of the direct convolution's C."
            if spec.transposed
            else ""
        ),
    )
    doc.grid(symbolic_matrix(one_channel, spatial), f"C, {'transposed' if spec.transposed else 'direct'}")
