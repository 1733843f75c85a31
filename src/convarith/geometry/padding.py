"""Padding policies and their exact resolution into per-axis ``(before, after)`` pairs.

Frameworks disagree on what "same" means, and the difference is a common porting bug:

======================  ===================================================================
policy                  meaning
======================  ===================================================================
``"valid"``             no padding (all frameworks)
``"same"``              PyTorch: total ``d(k−1)``, the odd cell *after*; stride 1 only
``"same_tf"``           TensorFlow / Keras ``"same"``: output ``⌈i/s⌉`` for any stride, total
                        ``max((o−1)s + d(k−1) + 1 − i, 0)``, the odd cell *after*; depends on
                        the input size. Alias: ``"same_upper"`` (ONNX ``SAME_UPPER``).
``"same_lower"``        ONNX ``SAME_LOWER``: as ``same_tf`` with the odd cell *before*
``"full"``              ``d(k−1)`` on both sides (the guide's full padding)
======================  ===================================================================

Examples
--------
>>> resolve_policy("same", 5, kernel=4, stride=1, dilation=1)
(1, 2)
>>> resolve_policy("same_tf", 6, kernel=3, stride=2, dilation=1)
(0, 1)
>>> resolve_policy("same_lower", 6, kernel=3, stride=2, dilation=1)
(1, 0)
"""

from __future__ import annotations

from typing import Literal, get_args

from .arithmetic import Pad, effective_kernel

PaddingPolicy = Literal["valid", "same", "same_tf", "same_upper", "same_lower", "full"]
POLICIES: tuple[str, ...] = get_args(PaddingPolicy)

__all__ = ["POLICIES", "PaddingPolicy", "resolve_policy", "tf_same_transpose"]


def resolve_policy(policy: PaddingPolicy, i: int, kernel: int, stride: int, dilation: int) -> Pad:
    """The ``(before, after)`` padding a policy gives one axis of a direct convolution or pool."""
    extent = effective_kernel(kernel, dilation)
    if policy == "valid":
        return (0, 0)
    if policy == "full":
        return (extent - 1, extent - 1)
    if policy == "same":
        total = extent - 1
        return (total // 2, total - total // 2)
    out = -(-i // stride)
    total = max((out - 1) * stride + extent - i, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if policy == "same_lower" else (small, large)


def tf_same_transpose(kernel: int, stride: int, dilation: int) -> tuple[Pad, int]:
    """Padding and ``output_padding`` of a TF/Keras ``"same"`` transposed convolution (output ``i·s``).

    A transposed convolution is the gradient of the direct one that maps its output back to its
    input; with TF's ``"same"`` that direct convolution takes ``i·s`` cells to ``i``, so its
    padding total is ``max(d(k−1) + 1 − s, 0)``. When the clamp bites (a kernel shorter than the
    stride) the missing cells come back as ``output_padding``.
    """
    extent = effective_kernel(kernel, dilation)
    total = max(extent - stride, 0)
    return (total // 2, total - total // 2), max(stride - extent, 0)
