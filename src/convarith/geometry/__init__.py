"""Pure-Python convolution arithmetic: specs, shapes, padding policies, relations, coverage, solver.

Nothing here imports NumPy or a framework, so the CLI starts fast.
"""

from .arithmetic import (
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    floor_remainder,
    pool_output_size,
)
from .coverage import AxisCoverage, AxisOverlap, coverage, has_checkerboard_risk, overlap, phase_counts
from .guide import RELATIONSHIPS, Relationship, relationship_for
from .padding import POLICIES, PaddingPolicy, resolve_policy
from .relations import (
    AxisEquivalent,
    OutputPaddingChoice,
    equivalent_direct_conv,
    input_sizes_for_output,
    output_padding_choices,
    transpose_of,
)
from .shapes import output_shape, output_shape_of
from .solver import Solution, solve
from .spec import KINDS, OPS, PADDING_MODES, ConvSpec, Kind, PaddingMode, check_channels, parse_op

__all__ = [
    "KINDS",
    "OPS",
    "PADDING_MODES",
    "POLICIES",
    "RELATIONSHIPS",
    "AxisCoverage",
    "AxisEquivalent",
    "AxisOverlap",
    "ConvSpec",
    "Kind",
    "OutputPaddingChoice",
    "PaddingMode",
    "PaddingPolicy",
    "Relationship",
    "Solution",
    "check_channels",
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
    "parse_op",
    "phase_counts",
    "pool_output_size",
    "relationship_for",
    "resolve_policy",
    "solve",
    "transpose_of",
]
