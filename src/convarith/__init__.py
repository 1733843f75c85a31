"""convarith: convolution arithmetic you can run, see and trust.

The geometry (shapes, padding policies, the transposed relation, coverage, the solver) is pure
Python and imported eagerly; everything that needs NumPy is imported on first use, and no
framework is ever imported here.

>>> import convarith
>>> convarith.output_shape("conv2d", (1, 1, 4, 4), kernel_size=3)
(1, 1, 2, 2)
"""

from __future__ import annotations

from .errors import ConvArithError
from .geometry import (
    ConvSpec,
    coverage,
    equivalent_direct_conv,
    has_checkerboard_risk,
    input_sizes_for_output,
    output_padding_choices,
    output_shape,
    overlap,
    relationship_for,
    solve,
    transpose_of,
)

__version__ = "0.1.0"

__all__ = [
    "ConvArithError",
    "ConvSpec",
    "__version__",
    "coverage",
    "equivalent_direct_conv",
    "has_checkerboard_risk",
    "input_sizes_for_output",
    "output_padding_choices",
    "output_shape",
    "overlap",
    "relationship_for",
    "solve",
    "transpose_of",
]
