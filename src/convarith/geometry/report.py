"""Everything the geometry knows about one layer on one input, as plain JSON-ready data.

The CLI prints it as a table or as JSON; the web page reads the same dictionary.

Examples
--------
>>> spec = ConvSpec.create("conv2d", kernel_size=3, stride=2, padding=1)
>>> rep = shape_report(spec, (1, 3, 6, 6), out_channels=8)
>>> rep["output_shape"], rep["axes"][0]["relationship"]["number"]
([1, 8, 3, 3], 6)
>>> rep["axes"][0]["unread_pad"]
[0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .coverage import coverage, overlap
from .guide import relationship_for
from .relations import equivalent_direct_conv, output_padding_choices, transpose_of
from .shapes import output_shape_of
from .spec import ConvSpec

__all__ = ["shape_report"]


def shape_report(spec: ConvSpec, input_shape: Sequence[int], *, out_channels: int | None = None) -> dict[str, Any]:
    """Output shape, per-axis arithmetic, the guide's relationship, coverage or overlap.

    For a transposed convolution also the equivalent direct convolution and the choices of
    ``output_padding``; for a direct one the transposed convolution that inverts its shape.
    """
    out_shape = output_shape_of(spec, input_shape, out_channels=out_channels)
    spatial = tuple(input_shape[-spec.ndim :])
    resolved = spec.resolve(spatial)
    report: dict[str, Any] = {
        "op": spec.op,
        "input_shape": list(input_shape),
        "output_shape": list(out_shape),
        "padding_policy": spec.padding if isinstance(spec.padding, str) else None,
        "groups": spec.groups,
        "padding_mode": spec.padding_mode,
        "warnings": [],
    }
    axes: list[dict[str, Any]] = []
    for n in range(spec.ndim):
        rel = relationship_for(resolved, n)
        axes.append(
            {
                "axis": n,
                "input": spatial[n],
                "kernel_size": resolved.kernel_size[n],
                "stride": resolved.stride[n],
                "dilation": resolved.dilation[n],
                "padding": list(resolved.pads[n]),
                "output_padding": resolved.output_padding[n],
                "output": out_shape[-spec.ndim + n],
                "relationship": None
                if rel is None
                else {"number": rel.number, "name": rel.name, "formula": rel.formula, "section": rel.section},
            }
        )
    report["axes"] = axes
    warnings: list[str] = report["warnings"]
    if spec.transposed:
        for axis, ov, eq, choices in zip(
            axes,
            overlap(spec, spatial),
            equivalent_direct_conv(spec, spatial),
            output_padding_choices(spec, spatial),
            strict=True,
        ):
            axis["phase_counts"] = list(ov.phase_counts)
            axis["equivalent_direct"] = {
                "zeros_between": eq.zeros_between,
                "stretched": eq.stretched,
                "padding": list(eq.pad),
                "kernel_size": eq.kernel,
                "dilation": eq.dilation,
                "stride": 1,
            }
            axis["output_padding_choices"] = [
                {"output_padding": c.output_padding, "output": c.output, "consistent": c.consistent} for c in choices
            ]
            if ov.empty_phases:
                warnings.append(f"axis {axis['axis']}: output phases {list(ov.empty_phases)} receive no kernel tap")
            elif ov.uneven:
                warnings.append(
                    f"axis {axis['axis']}: uneven overlap {list(ov.phase_counts)} taps per output phase "
                    "(checkerboard artifacts); make the kernel size a multiple of the stride"
                )
            if len(choices) > 1:
                sizes = [c.output for c in choices if c.consistent]
                warnings.append(
                    f"axis {axis['axis']}: output_padding picks one of the sizes {sizes} that a stride-"
                    f"{axis['stride']} convolution maps to {axis['input']}"
                )
    else:
        for axis, cov in zip(axes, coverage(spec, spatial), strict=True):
            axis["unread_input"] = list(cov.unread_input)
            axis["unread_pad"] = list(cov.unread_pad)
            if cov.unread_input:
                warnings.append(
                    f"axis {axis['axis']}: input cells {list(cov.unread_input)} are never read (the floor drops them)"
                )
        if spec.kind == "conv":
            inverse = transpose_of(spec, spatial)
            report["transpose"] = {"output_padding": list(inverse.output_padding)}
    return report
