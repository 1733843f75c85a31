"""Pure-Python convolution arithmetic: bound layers, shapes, padding policies, relations, coverage, solver.

Nothing here imports NumPy or a framework, so the CLI starts fast.
"""

from .arithmetic import (
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    floor_remainder,
    pool_output_size,
)
from .bound import AxisEquivalent, AxisGeometry, BoundLayer, DirectEquivalent, bind
from .coverage import (
    AxisCoverage,
    AxisOverlap,
    ReadSummary,
    coverage,
    has_checkerboard_risk,
    overlap,
    padded_source,
    phase_counts,
    read_summary,
)
from .guide import RELATIONSHIPS, Relationship, relationship_for
from .padding import POLICIES, PaddingPolicy, resolve_policy, resolve_transposed_policy
from .relations import (
    OutputPaddingChoice,
    equivalent_direct_conv,
    input_sizes_for_output,
    output_padding_choices,
    transpose_of,
)
from .shapes import check_weight, output_shape, output_shape_of, weight_layer, weighted_layer
from .solver import Solution, solve

__all__ = [
    "POLICIES",
    "RELATIONSHIPS",
    "AxisCoverage",
    "AxisEquivalent",
    "AxisGeometry",
    "AxisOverlap",
    "BoundLayer",
    "DirectEquivalent",
    "OutputPaddingChoice",
    "PaddingPolicy",
    "ReadSummary",
    "Relationship",
    "Solution",
    "bind",
    "check_weight",
    "conv_output_size",
    "conv_transpose_output_size",
    "coverage",
    "effective_kernel",
    "equivalent_direct_conv",
    "floor_remainder",
    "has_checkerboard_risk",
    "input_sizes_for_output",
    "output_padding_choices",
    "output_shape",
    "output_shape_of",
    "overlap",
    "padded_source",
    "phase_counts",
    "pool_output_size",
    "read_summary",
    "relationship_for",
    "resolve_policy",
    "resolve_transposed_policy",
    "solve",
    "transpose_of",
    "weight_layer",
    "weighted_layer",
]
