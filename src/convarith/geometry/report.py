"""Everything the geometry knows about one layer on one input, as plain JSON-ready data.

The CLI prints it as a table or as JSON; the web page reads the same dictionary. Diagnoses are
the findings of :mod:`convarith.findings` (and, with ``framework``, that framework's rules).

Examples
--------
>>> from convarith import Layer
>>> rep = shape_report(Layer("conv2d", 3, 8, kernel_size=3, stride=2, padding=1), (1, 3, 6, 6))
>>> rep["output_shape"], rep["axes"][0]["relationship"]["number"]
([1, 8, 3, 3], 6)
>>> [f["code"] for f in rep["findings"]]
['unread-padding', 'uneven-reads', 'unread-padding', 'uneven-reads']
"""

from __future__ import annotations

from collections.abc import Sequence

from ..layer import Layer
from .bound import BoundLayer
from .guide import relationship_for
from .relations import output_padding_choices, transpose_of

__all__ = ["shape_report"]

JSON = dict[str, object]


def shape_report(
    layer: Layer | BoundLayer, input_shape: Sequence[int] | None = None, *, framework: str | None = "torch"
) -> JSON:
    """Output shape, per-axis arithmetic, the guide's relationship, findings.

    For a transposed convolution also the equivalent direct convolution and the choices of
    ``output_padding``; for a direct one the ``output_padding`` of the transposed convolution
    that inverts its shape.
    """
    bound = layer if isinstance(layer, BoundLayer) else layer.bind(input_shape)  # type: ignore[arg-type]
    report: JSON = {
        "layer": bound.layer.to_dict(),
        "op": bound.op,
        "input_shape": list(bound.input_shape),
        "output_shape": list(bound.output_shape),
        "padding_policy": bound.layer.policy,
        "groups": bound.layer.groups,
        "padding_mode": bound.layer.padding_mode,
        "weight_shape": None if bound.weight_shape is None else list(bound.weight_shape),
        "parameters": bound.parameter_count,
        "multiply_adds": bound.multiply_adds,
    }
    axes: list[JSON] = []
    for n, ax in enumerate(bound.axes):
        rel = relationship_for(bound, n)
        axes.append(
            {
                "axis": n,
                "input": ax.input,
                "kernel_size": ax.kernel,
                "stride": ax.stride,
                "dilation": ax.dilation,
                "padding": list(ax.pad),
                "output_padding": ax.output_padding,
                "output": ax.output,
                "relationship": None
                if rel is None
                else {"number": rel.number, "name": rel.name, "formula": rel.formula, "section": rel.section},
            }
        )
    if bound.transposed:
        eq = bound.direct()
        for axis, ax_eq, choices in zip(axes, eq.axes, output_padding_choices(bound), strict=True):
            axis["equivalent_direct"] = {
                "zeros_between": ax_eq.zeros_between,
                "stretched": ax_eq.stretched,
                "padding": list(ax_eq.pad),
                "kernel_size": ax_eq.kernel,
                "dilation": ax_eq.dilation,
                "stride": 1,
            }
            axis["output_padding_choices"] = [
                {"output_padding": c.output_padding, "output": c.output, "consistent": c.consistent} for c in choices
            ]
    elif bound.kind == "conv":
        report["transpose"] = {"output_padding": list(transpose_of(bound).output_padding)}
    report["axes"] = axes
    report["findings"] = [f.to_dict() for f in bound.findings(framework)]
    return report
