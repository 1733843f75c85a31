"""How a transposed convolution relates to the direct one it transposes.

The guide's relationships 8–14, generalised to dilation, asymmetric padding and ``output_padding``:
a transposed convolution with kernel ``k``, stride ``s``, padding ``(p_b, p_a)``, dilation ``d``
and output padding ``a`` equals a *direct*, stride-1 convolution with the same kernel rotated by
180° (in/out channel axes swapped per group) over its input

1. stretched by inserting ``s − 1`` zeros between neighbours (``ĩ′ = (i′ − 1)s + 1`` cells),
2. padded by ``p′_b = d(k−1) − p_b`` before and ``p′_a = d(k−1) − p_a + a`` after
   (a negative ``p′`` crops instead).

Examples
--------
The guide's Figure 4.7: the transpose of a 6×6 input, 3×3 kernel, stride 2, padding 1 convolution.

>>> spec = ConvSpec.create("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1)
>>> eq, = equivalent_direct_conv(spec, (3,))
>>> eq.stretched, eq.pad, eq.output
(5, (1, 2), 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import ConvArithError
from .arithmetic import Pad, floor_remainder
from .spec import ConvSpec

__all__ = [
    "AxisEquivalent",
    "OutputPaddingChoice",
    "equivalent_direct_conv",
    "input_sizes_for_output",
    "output_padding_choices",
    "transpose_of",
]


@dataclass(frozen=True)
class AxisEquivalent:
    """One axis of the direct convolution equivalent to a transposed one."""

    input: int
    """``i′``, the transposed convolution's input size."""
    zeros_between: int
    """``s − 1`` zeros inserted between neighbouring input cells."""
    stretched: int
    """``ĩ′ = (i′ − 1)s + 1``, the input size after inserting the zeros."""
    kernel: int
    dilation: int
    pad: Pad
    """``(p′_b, p′_a)`` of the direct convolution, the extra ``a`` included in ``p′_a``;
    negative values crop."""
    output_padding: int
    """``a``: cells added after, inside ``pad[1]``, that no forward window reached."""
    output: int

    @property
    def crops(self) -> bool:
        return min(self.pad) < 0


def equivalent_direct_conv(spec: ConvSpec, spatial: Sequence[int]) -> tuple[AxisEquivalent, ...]:
    """The stride-1 direct convolution that computes the transposed ``spec`` on this input."""
    if not spec.transposed:
        raise ConvArithError("op", "an equivalent direct convolution is defined for transposed convolutions", spec.op)
    out = spec.output_spatial(spatial)
    resolved = spec.resolve(spatial)
    axes = []
    for i, o, k, s, (pb, pa), d, a in zip(
        spatial,
        out,
        resolved.kernel_size,
        resolved.stride,
        resolved.pads,
        resolved.dilation,
        resolved.output_padding,
        strict=True,
    ):
        reach = d * (k - 1)
        axes.append(AxisEquivalent(i, s - 1, (i - 1) * s + 1, k, d, (reach - pb, reach - pa + a), a, o))
    return tuple(axes)


def transpose_of(spec: ConvSpec, spatial: Sequence[int]) -> ConvSpec:
    """The transposed convolution that maps this direct convolution's output back to ``spatial``.

    Same kernel, stride, padding, dilation and groups; ``output_padding`` is the remainder the
    floor dropped (relationship 14's ``a``).

    >>> conv = ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1)
    >>> transpose_of(conv, (6, 5)).output_padding
    (1, 0)
    """
    if spec.kind != "conv":
        raise ConvArithError("op", "only a direct convolution has a transposed counterpart", spec.op)
    spec.output_spatial(spatial)
    resolved = spec.resolve(spatial)
    extra = tuple(
        floor_remainder(i, k, s, p, d)
        for i, k, s, p, d in zip(
            spatial, resolved.kernel_size, resolved.stride, resolved.pads, resolved.dilation, strict=True
        )
    )
    return replace(resolved, kind="conv_transpose", output_padding=extra, padding_mode="zeros")


def input_sizes_for_output(spec: ConvSpec, out_spatial: Sequence[int]) -> tuple[range, ...]:
    """Per axis, every input size a direct convolution or pooling maps to ``out_spatial``.

    A stride-``s`` layer maps ``s`` consecutive input sizes (fewer near 1) to the same output: the
    ambiguity that ``output_padding`` resolves.

    >>> spec = ConvSpec.create("conv1d", kernel_size=3, stride=2, padding=1)
    >>> input_sizes_for_output(spec, (3,))
    (range(5, 7),)
    """
    if spec.transposed:
        raise ConvArithError("op", "input sizes for an output are asked of a direct convolution or pooling", spec.op)
    result = []
    for n, o in enumerate(out_spatial):
        axis = spec.axis(n)
        # o(i) is non-decreasing in i and grows by at least 1 every s steps, so all solutions lie
        # below (o + 1)·s + extent; the scan is short.
        top = (o + 1) * axis.stride[0] + axis.effective_kernel[0] + 1
        hits = [i for i in range(1, top) if _output_or_none(axis, i) == o]
        result.append(range(hits[0], hits[-1] + 1) if hits else range(0))
    return tuple(result)


def _output_or_none(axis: ConvSpec, i: int) -> int | None:
    try:
        return axis.output_spatial((i,))[0]
    except ConvArithError:
        return None


@dataclass(frozen=True)
class OutputPaddingChoice:
    """One ``output_padding`` a transposed convolution may take on an axis."""

    output_padding: int
    output: int
    consistent: bool
    """True when the direct convolution with the same parameters maps ``output`` back to the
    transposed input (``a < s``); PyTorch also accepts ``s ≤ a < d``, which is not."""


def output_padding_choices(spec: ConvSpec, spatial: Sequence[int]) -> tuple[tuple[OutputPaddingChoice, ...], ...]:
    """Per axis, every ``output_padding`` PyTorch accepts and the output size it gives.

    >>> spec = ConvSpec.create("conv_transpose1d", kernel_size=3, stride=2, padding=1)
    >>> [(c.output_padding, c.output) for c in output_padding_choices(spec, (3,))[0]]
    [(0, 5), (1, 6)]
    """
    if not spec.transposed:
        raise ConvArithError("op", "output_padding belongs to transposed convolutions", spec.op)
    resolved = spec.resolve(spatial)
    choices = []
    for n, i in enumerate(spatial):
        axis = resolved.axis(n)
        s, d = axis.stride[0], axis.dilation[0]
        row = []
        for a in range(max(s, d)):
            candidate = replace(axis, output_padding=(a,))
            o = _output_or_none(candidate, i)
            if o is not None:
                row.append(OutputPaddingChoice(a, o, a < s))
        choices.append(tuple(row))
    return tuple(choices)
