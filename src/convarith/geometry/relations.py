"""How a transposed convolution relates to the direct one it transposes.

The guide's relationships 8–14, generalised to dilation, asymmetric padding and ``output_padding``:
a transposed convolution with kernel ``k``, stride ``s``, padding ``(p_b, p_a)``, dilation ``d``
and output padding ``a`` equals a *direct*, stride-1 convolution with the same kernel rotated by
180° (in/out channel axes swapped per group) over its input

1. stretched by inserting ``s − 1`` zeros between neighbours (``ĩ′ = (i′ − 1)s + 1`` cells),
2. padded by ``p′_b = d(k−1) − p_b`` before and ``p′_a = d(k−1) − p_a + a`` after
   (a negative ``p′`` crops instead).

The one implementation is :meth:`convarith.BoundLayer.direct`; the functions here are its
keyword-friendly views.

Examples
--------
The guide's Figure 4.7: the transpose of a 6×6 input, 3×3 kernel, stride 2, padding 1 convolution.

>>> from convarith import Layer
>>> eq, = equivalent_direct_conv(Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1), (3,))
>>> eq.stretched, eq.pad, eq.output
(5, (1, 2), 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConvArithError
from ..layer import Layer
from ..rules import check
from .bound import AxisEquivalent, BoundLayer, as_bound, sample_shape

__all__ = [
    "AxisEquivalent",
    "OutputPaddingChoice",
    "equivalent_direct_conv",
    "input_sizes_for_output",
    "output_padding_choices",
    "transpose_of",
]


def equivalent_direct_conv(
    layer: Layer | BoundLayer, spatial: Sequence[int] | None = None
) -> tuple[AxisEquivalent, ...]:
    """Per axis, the stride-1 direct convolution that computes the transposed ``layer`` on this input."""
    return as_bound(layer, spatial).direct().axes


def transpose_of(layer: Layer | BoundLayer, spatial: Sequence[int] | None = None) -> Layer:
    """The transposed convolution that maps this direct convolution's output back to ``spatial``.

    Same kernel, stride, padding (resolved; negative values, crops, kept), dilation and groups,
    zero padding, and ``output_padding`` the remainder the floor dropped (relationship 14's
    ``a``). Channels, when the layer has them, are swapped.

    >>> from convarith import Layer
    >>> transpose_of(Layer("conv2d", kernel_size=3, stride=2, padding=1), (6, 5)).output_padding
    (1, 0)
    """
    bound = as_bound(layer, spatial)
    if bound.kind != "conv":
        raise ConvArithError("op", "only a direct convolution has a transposed counterpart", bound.op)
    source = bound.layer
    return Layer(
        f"conv_transpose{bound.ndim}d",
        source.out_channels,
        source.in_channels,
        kernel_size=source.kernel_size,
        stride=source.stride,
        padding=bound.pads,
        dilation=source.dilation,
        groups=source.groups,
        output_padding=tuple(ax.remainder for ax in bound.axes),
        bias=source.bias,
    )


def _output_or_zero(layer: Layer, i: int) -> int:
    try:
        return layer.bind((i,)).output_spatial[0]
    except ConvArithError:
        return 0


def _first_reaching(layer: Layer, target: int, top: int) -> int:
    """The smallest input size whose output is at least ``target`` (outputs never decrease with the input)."""
    lo, hi = 1, top
    while _output_or_zero(layer, hi) < target:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _output_or_zero(layer, mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def input_sizes_for_output(layer: Layer, out_spatial: Sequence[int]) -> tuple[range, ...]:
    """Per axis, every input size a direct convolution or pooling maps to ``out_spatial``.

    A stride-``s`` layer maps ``s`` consecutive input sizes (fewer near 1) to the same output: the
    ambiguity that ``output_padding`` resolves.

    >>> from convarith import Layer
    >>> input_sizes_for_output(Layer("conv1d", kernel_size=3, stride=2, padding=1), (3,))
    (range(5, 7),)
    """
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer", type(layer).__name__)
    if layer.transposed:
        raise ConvArithError("op", "input sizes for an output are asked of a direct convolution or pooling", layer.op)
    wanted = sample_shape(out_spatial, layer.ndim, param="output_shape")[-layer.ndim :]
    result = []
    for n, o in enumerate(wanted):
        axis = layer.axis(n)
        if o < 1:
            result.append(range(0))
            continue
        top = max(o * axis.stride[0] + axis.effective_kernel[0], 2)
        first = _first_reaching(axis, o, top)
        after = _first_reaching(axis, o + 1, top)
        result.append(range(first, after) if _output_or_zero(axis, first) == o else range(0))
    return tuple(result)


@dataclass(frozen=True)
class OutputPaddingChoice:
    """One ``output_padding`` a transposed convolution may take on an axis."""

    output_padding: int
    output: int
    consistent: bool
    """True when the direct convolution with the same parameters maps ``output`` back to the
    transposed input (``a < s``); PyTorch also accepts ``s ≤ a < d``, which is not."""


def output_padding_choices(
    layer: Layer | BoundLayer, spatial: Sequence[int] | None = None
) -> tuple[tuple[OutputPaddingChoice, ...], ...]:
    """Per axis, every ``output_padding`` PyTorch accepts (``a < max(s, d)``) and the output size it gives.

    >>> from convarith import Layer
    >>> [(c.output_padding, c.output) for c in output_padding_choices(Layer("conv_transpose1d", kernel_size=3,
    ...                                                                      stride=2, padding=1), (3,))[0]]
    [(0, 5), (1, 6)]
    """
    bound = as_bound(layer, spatial)
    if not bound.transposed:
        raise ConvArithError("op", "output_padding belongs to transposed convolutions", bound.op)
    resolved = bound.resolved
    choices = []
    for n, ax in enumerate(bound.axes):
        axis = resolved.axis(n)
        row = []
        for a in range(max(ax.stride, ax.dilation)):
            candidate = axis.replace(output_padding=a, in_channels=None, out_channels=None)
            if not any(f.severity == "error" for f in check(candidate, (ax.input,), framework="torch")):
                o = candidate.bind((ax.input,)).output_spatial[0]
                row.append(OutputPaddingChoice(a, o, a < ax.stride))
        choices.append(tuple(row))
    return tuple(choices)
