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

# Names served lazily (NumPy/SciPy code): attribute → module that defines it.
_LAZY = {
    "conv_matrix": "convarith.ops.matrix",
    "pool_matrix": "convarith.ops.matrix",
    "bias_vector": "convarith.ops.matrix",
    "save_matrix": "convarith.ops.matrix",
    "conv": "convarith.ops.reference",
    "conv_transpose": "convarith.ops.reference",
    "max_pool": "convarith.ops.reference",
    "avg_pool": "convarith.ops.reference",
    "conv_operator": "convarith.ops.operator",
    "dot_test": "convarith.ops.operator",
}


def __getattr__(name: str) -> object:
    """Import NumPy-backed functions on first use, so ``import convarith`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convarith' has no attribute {name!r}")


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
