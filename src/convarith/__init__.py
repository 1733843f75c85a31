"""convarith: convolution arithmetic you can run, see and trust.

The layer model and the geometry (shapes, padding policies, the transposed relation, coverage,
findings, framework rules, the solver) are pure Python and imported eagerly; everything that needs
NumPy is imported on first use (and still visible to type checkers, ``dir()`` and ``__all__``),
and no framework is ever imported here.

>>> import convarith
>>> convarith.output_shape("conv2d", (1, 1, 4, 4), kernel_size=3)
(1, 1, 2, 2)
>>> convarith.Layer("conv_transpose2d", 16, 3, kernel_size=4, stride=2, padding=1).bind((1, 16, 8, 8)).output_shape
(1, 3, 16, 16)
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

from .errors import ConvArithError
from .findings import Finding, diagnose
from .geometry import (
    AxisGeometry,
    BoundLayer,
    DirectEquivalent,
    Solution,
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
from .layer import Layer
from .rules import check

if TYPE_CHECKING:
    from .frameworks.translate import Translation, translate
    from .frameworks.verify import verify
    from .ops.matrix import bias_vector, conv_matrix, pool_matrix, save_matrix
    from .ops.operator import ConvOperator, conv_operator, dot_test
    from .ops.reference import avg_pool, conv, conv_transpose, max_pool

    ConvSpec = Layer

__version__ = "0.2.0"

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
    "ConvOperator": "convarith.ops.operator",
    "conv_operator": "convarith.ops.operator",
    "dot_test": "convarith.ops.operator",
    "translate": "convarith.frameworks.translate",
    "Translation": "convarith.frameworks.translate",
    "verify": "convarith.frameworks.verify",
}


def __getattr__(name: str) -> object:
    """Import NumPy-backed functions on first use, so ``import convarith`` stays light."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "ConvSpec":
        warnings.warn("convarith.ConvSpec is now convarith.Layer", DeprecationWarning, stacklevel=2)
        return Layer
    raise AttributeError(f"module 'convarith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AxisGeometry",
    "BoundLayer",
    "ConvArithError",
    "ConvOperator",
    "DirectEquivalent",
    "Finding",
    "Layer",
    "Solution",
    "Translation",
    "__version__",
    "avg_pool",
    "bias_vector",
    "check",
    "conv",
    "conv_matrix",
    "conv_operator",
    "conv_transpose",
    "coverage",
    "diagnose",
    "dot_test",
    "equivalent_direct_conv",
    "has_checkerboard_risk",
    "input_sizes_for_output",
    "max_pool",
    "output_padding_choices",
    "output_shape",
    "overlap",
    "pool_matrix",
    "relationship_for",
    "save_matrix",
    "solve",
    "translate",
    "transpose_of",
    "verify",
]
