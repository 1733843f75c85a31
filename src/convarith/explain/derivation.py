"""Derivations with the actual numbers: output sizes by the guide's relationships, the equivalent
direct convolution of a transposed one, and C in the guide's symbolic form.

Every number comes from the bound layer (:meth:`convarith.Layer.bind`), every note from its
findings (:meth:`convarith.BoundLayer.findings`); this module only writes them down.

Examples
--------
>>> from convarith import Layer
>>> from convarith.explain.document import to_text
>>> doc = explain_layer(Layer("conv2d", kernel_size=3, stride=2, padding=1), (1, 1, 32, 32))
>>> print(doc.data["axes"][0]["relationship"]["substituted"])
⌊(32 + 2·1 − 3) / 2⌋ + 1 = 16
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

from ..errors import ConvArithError
from ..geometry.bound import AxisGeometry, BoundLayer
from ..geometry.guide import relationship_for
from ..layer import Layer
from .document import Code, Document

__all__ = [
    "GRID_LIMIT",
    "SYMBOLIC_LIMIT",
    "explain_layer",
    "general_formula",
    "stretched_grid",
    "substitute",
    "symbolic_matrix",
    "tap_names",
]

SYMBOLIC_LIMIT = 64 * 64
"""Above this many entries (output cells × input cells), C is not printed."""
GRID_LIMIT = 900
"""Above this many cells, the stretched input is not printed."""

_TOKEN = re.compile(r"i′|o′|p′|p_b|p_a|\d+|[A-Za-z]|\s+|.")
_SYMBOLS = {"i′", "o′", "p′", "p_b", "p_a", "i", "o", "k", "s", "p", "d", "a"}
_OPENS = {"(", "⌊", "⌈"}
_CLOSES = {")", "⌋", "⌉"}


def _bind(layer: Layer | BoundLayer, input_shape: Sequence[int] | None) -> BoundLayer:
    if isinstance(layer, BoundLayer):
        if input_shape is not None:
            raise ConvArithError("input_shape", "a bound layer has its input; leave input_shape out", input_shape)
        return layer
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
    if input_shape is None:
        raise ConvArithError("input_shape", "a layer needs the input shape (or pass a bound layer)", None)
    return layer.bind(input_shape)


def substitute(formula: str, values: Mapping[str, int]) -> str:
    """The formula with every symbol replaced by its value, implicit products written ``·``.

    ``2p`` becomes ``2·1`` (not ``21``), ``s(i′ − 1)`` becomes ``2·(3 − 1)``, a negative value is
    parenthesised.

    >>> substitute("⌊(i + 2p − k) / s⌋ + 1", {"i": 32, "p": 1, "k": 3, "s": 2})
    '⌊(32 + 2·1 − 3) / 2⌋ + 1'
    >>> substitute("s(i′ − 1) + a + k − 2p", {"s": 2, "i′": 3, "a": 1, "k": 3, "p": -1})
    '2·(3 − 1) + 1 + 3 − 2·(−1)'
    """
    out: list[str] = []
    previous = ""  # the last token, "" after whitespace
    for token in _TOKEN.findall(formula):
        if token.isspace():
            out.append(token)
            previous = ""
            continue
        operand_end = previous in _SYMBOLS or previous.isdigit() or previous in _CLOSES
        operand_start = token in _SYMBOLS or token.isdigit() or token in _OPENS
        if operand_end and operand_start:
            out.append("·")
        if token in _SYMBOLS and token in values:
            value = values[token]
            out.append(str(value) if value >= 0 else f"(−{-value})")
        else:
            out.append(token)
        previous = token
    return "".join(out)


def general_formula(bound: BoundLayer, axis: int) -> tuple[str, str, int]:
    """The general output-size formula of one axis, the same with its numbers, and the output.

    >>> from convarith import Layer
    >>> general_formula(Layer("max_pool1d", kernel_size=2, ceil_mode=True).bind((5,)), 0)[1]
    '⌈(5 + 0 + 0 − 1·(2 − 1) − 1) / 2⌉ + 1 = 3'
    """
    ax: AxisGeometry = bound.axes[axis]
    values = {
        "i": ax.input,
        "k": ax.kernel,
        "s": ax.stride,
        "d": ax.dilation,
        "p_b": ax.pad[0],
        "p_a": ax.pad[1],
        "a": ax.output_padding,
    }
    if bound.transposed:
        formula = "(i − 1)·s − p_b − p_a + d·(k − 1) + 1 + a"
    elif bound.layer.ceil_mode:
        formula = "⌈(i + p_b + p_a − d·(k − 1) − 1) / s⌉ + 1"
    else:
        formula = "⌊(i + p_b + p_a − d·(k − 1) − 1) / s⌋ + 1"
    numbers = substitute(formula, values)
    if bound.layer.ceil_mode and ax.output != -(-(ax.padded - ax.extent) // ax.stride) + 1:
        # PyTorch drops a last window that would start in the padding after the input
        formula += " − 1"
        numbers += " − 1"
    return f"o = {formula}", f"{numbers} = {ax.output}", ax.output


def _label(prefix: str, index: Sequence[int]) -> str:
    sep = "" if all(i < 10 for i in index) else ","
    return prefix + sep.join(map(str, index))


def tap_names(kernel_size: Sequence[int], prefix: str = "w") -> list[str]:
    """``w00 w01 …`` in row-major order, as the guide writes kernel taps.

    >>> tap_names((2, 2))
    ['w00', 'w01', 'w10', 'w11']
    """
    return [_label(prefix, idx) for idx in itertools.product(*(range(k) for k in kernel_size))]


def symbolic_matrix(layer: Layer | BoundLayer, input_shape: Sequence[int] | None = None) -> list[list[str]]:
    """C of the layer with one channel, each entry written as the tap(s) it holds (``0`` elsewhere).

    Built with :func:`convarith.ops.matrix.conv_matrix` and one one-hot kernel per tap, so it is
    the real matrix, folded taps (``w0+w1``) included.

    >>> from convarith import Layer
    >>> C = symbolic_matrix(Layer("conv2d", kernel_size=3), (4, 4))
    >>> C[0][:7]
    ['w00', 'w01', 'w02', '0', 'w10', 'w11', 'w12']
    """
    import numpy as np

    from ..ops.matrix import conv_matrix

    bound = _bind(layer, input_shape)
    if bound.pooling:
        raise ConvArithError("op", "the symbolic matrix is of a (transposed) convolution", bound.op)
    one = bound.layer.replace(in_channels=1, out_channels=1, groups=1, bias=False).bind(bound.input_spatial)
    kernel = one.layer.kernel_size
    names = tap_names(kernel)
    rows, cols = math.prod(one.output_spatial), math.prod(one.input_spatial)
    if rows * cols > SYMBOLIC_LIMIT:
        raise ConvArithError(
            "input_shape", f"C has {rows}×{cols} entries, over the {SYMBOLIC_LIMIT} printed", bound.input_shape
        )
    cells: list[list[list[str]]] = [[[] for _ in range(cols)] for _ in range(rows)]
    for flat, name in enumerate(names):
        weight = np.zeros((1, 1, *kernel))
        weight.reshape(-1)[flat] = 1.0
        matrix = conv_matrix(one, weight, format="dense")
        for r, c in zip(*np.nonzero(matrix), strict=True):
            count = round(float(matrix[r, c]))
            cells[r][c].append(name if count == 1 else f"{count}·{name}")
    return [["+".join(entry) or "0" for entry in row] for row in cells]


_CELL_LABEL = {"zero": "0", "pad": "·", "extra": "a"}


def stretched_grid(layer: Layer | BoundLayer, input_shape: Sequence[int] | None = None) -> list[list[str]]:
    """The input of the equivalent direct convolution of a transposed layer, as labels.

    ``y..`` input values, ``0`` inserted zeros, ``·`` padding, ``a`` the output-padding cells;
    cells a negative ``p′`` crops are left out. One or two spatial axes. The cells are those of
    :func:`convarith.render.frames.guide_axis`, which the pictures draw.

    >>> from convarith import Layer
    >>> stretched_grid(Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1), (3,))
    [['·', 'y0', '0', 'y1', '0', 'y2', '·', 'a']]
    """
    from ..render.frames import KIND_PRIORITY, guide_axis

    bound = _bind(layer, input_shape)
    if bound.ndim > 2:
        raise ConvArithError("input_shape", "the stretched input is printed for 1 or 2 spatial axes", bound.input_shape)
    axes = [guide_axis(eq) for eq in bound.direct().axes]
    kept = [[(kind, src) for kind, src in zip(ax.kinds, ax.source, strict=True) if kind != "crop"] for ax in axes]
    rows = kept[0] if len(kept) == 2 else [("input", 0)]
    grid = []
    for row_kind, row_src in rows:
        line = []
        for col_kind, col_src in kept[-1]:
            kind = max((row_kind, col_kind), key=lambda k: KIND_PRIORITY[k])
            if kind == "input":
                line.append(_label("y", (row_src, col_src) if len(kept) == 2 else (col_src,)))
            else:
                line.append(_CELL_LABEL[kind])
        grid.append(line)
    return grid


def explain_layer(
    layer: Layer | BoundLayer, input_shape: Sequence[int] | None = None, *, symbolic: bool = True
) -> Document:
    """The derivation of one layer's shapes with its numbers, as a :class:`~convarith.explain.document.Document`.

    Parameters
    ----------
    layer
        A layer (then ``input_shape``: spatial, ``(C, *spatial)`` or ``(N, C, *spatial)``) or a
        bound layer.
    symbolic
        Include C in the guide's symbolic form for small (transposed) convolutions.

    Returns
    -------
    Document
        Per axis the general formula and the guide's relationship with the numbers substituted;
        the findings (with PyTorch's rules) as notes; for a transposed convolution its equivalent
        direct convolution, stretched input and rotated kernel; C for small cases.
        ``Document.data`` holds the same facts for ``to_dict()``.

    Examples
    --------
    >>> from convarith import Layer
    >>> from convarith.explain.document import to_text
    >>> doc = explain_layer(Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1), (3,))
    >>> print(doc.data["axes"][0]["relationship"]["substituted"])
    2·(3 − 1) + 1 + 3 − 2·1 = 6
    """
    bound = _bind(layer, input_shape)

    def shape(values: Sequence[int]) -> str:
        return " × ".join(map(str, values))

    doc = Document(f"{bound.op}: {shape(bound.input_shape)} → {shape(bound.output_shape)}")
    found = bound.findings(framework="torch")
    axes_data: list[dict[str, object]] = []
    doc.para(Code(bound.caption()))
    doc.heading("Output size")
    for n, ax in enumerate(bound.axes):
        formula, numbers, out = general_formula(bound, n)
        doc.para(f"Axis {n}: ", Code(formula), " — here ", Code(numbers), ".")
        entry: dict[str, object] = {"axis": n, "formula": formula, "substituted": numbers, "output": out}
        rel = relationship_for(bound, n)
        if rel is not None:
            values = {"i′": ax.input, "i": ax.input, "k": ax.kernel, "s": ax.stride, "p": ax.pad[0]}
            values |= {"d": ax.dilation, "a": ax.output_padding}
            right = rel.formula.split("=", 1)[1].strip()
            substituted = f"{substitute(right, values)} = {out}"
            doc.para(
                f"The guide's relationship {rel.number} ({rel.name}, §{rel.section}) applies: ",
                Code(rel.formula),
                " — here ",
                Code(substituted),
                ".",
            )
            entry["relationship"] = {"number": rel.number, "name": rel.name, "formula": rel.formula}
            entry["relationship"] |= {"substituted": substituted}  # type: ignore[operator]
        else:
            doc.para(
                "No single relationship of the guide covers this axis (asymmetric padding, ceil_mode, or a "
                "dilated transposed convolution); the general formula above does.",
                style="note",
            )
            entry["relationship"] = None
        axes_data.append(entry)
    if found:
        doc.heading("Findings")
        for f in found:
            doc.para(f"{f.severity} ({f.code}): {f.message}", style="note")
    if bound.transposed:
        _explain_transposed(doc, bound)
    cells = math.prod(bound.input_spatial) * math.prod(bound.output_spatial)
    if symbolic and not bound.pooling and cells <= SYMBOLIC_LIMIT:
        _explain_matrix(doc, bound)
    doc.data.update(
        {
            "layer": bound.layer.to_dict(),
            "input_shape": list(bound.input_shape),
            "output_shape": list(bound.output_shape),
            "caption": bound.caption(),
            "axes": axes_data,
            "findings": [f.to_dict() for f in found],
        }
    )
    return doc


def _explain_transposed(doc: Document, bound: BoundLayer) -> None:
    eq = bound.direct()
    doc.heading("The equivalent direct convolution")
    doc.para(
        "A transposed convolution equals a stride-1 direct convolution over its input with s − 1 zeros inserted "
        "between neighbours, padded by p′ = d(k − 1) − p on each side (negative = crop) plus the output padding a "
        "after, with the kernel rotated by 180° and its in/out channel axes swapped within each group. Frameworks "
        "compute cross-correlation, which is why the rotation is needed."
    )
    doc.para("The direct convolution: ", Code(eq.conv.caption()), ".")
    doc.table(
        ["axis", "i′", "zeros between", "ĩ′", "k′", "s′", "d′", "p′ before", "p′ after (incl. a)", "a", "o′"],
        [
            [
                str(n),
                str(e.input),
                str(e.zeros_between),
                str(e.stretched),
                str(e.kernel),
                "1",
                str(e.dilation),
                str(e.pad[0]),
                str(e.pad[1]),
                str(e.output_padding),
                str(e.output),
            ]
            for n, e in enumerate(eq.axes)
        ],
    )
    drawn = math.prod(e.stretched + max(e.pad[0], 0) + max(e.pad[1], 0) for e in eq.axes)
    if bound.ndim <= 2 and drawn <= GRID_LIMIT:
        doc.grid(
            stretched_grid(bound),
            "stretched and padded input: y = input, 0 = inserted zero, · = padding, a = output_padding cell",
        )
        kernel_size = bound.layer.kernel_size
        names = tap_names(kernel_size)
        if bound.ndim == 2:
            rows, cols = kernel_size
            kernel = [names[r * cols : (r + 1) * cols] for r in range(rows)]
            rotated = [row[::-1] for row in kernel[::-1]]
        else:
            kernel, rotated = [names], [names[::-1]]
        doc.grid(kernel, "kernel as stored")
        doc.grid(rotated, "kernel rotated by 180°, as the direct convolution uses it")


def _explain_matrix(doc: Document, bound: BoundLayer) -> None:
    doc.heading("The matrix C (one channel)")
    doc.para(
        "Rows are the output cells and columns the input cells, both unrolled row-major, so that ",
        Code("y.ravel() = C @ x.ravel()"),
        ". Kernel row r sits at columns offset + r·W + c."
        + (
            " For a transposed convolution this is the transpose of the direct convolution's C."
            if bound.transposed
            else ""
        ),
    )
    doc.grid(symbolic_matrix(bound), f"C, {'transposed' if bound.transposed else 'direct'}")
