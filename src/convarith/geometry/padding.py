"""Padding policies and their exact resolution into per-axis ``(before, after)`` pairs.

Frameworks disagree on what "same" means, and the difference is a common porting bug. Each policy
name means one thing, the framework it follows named:

==================  =====================================================================================
policy              meaning (direct convolution or pooling; transposed convolution)
==================  =====================================================================================
``"valid"``         no padding (every framework)
``"same"``          PyTorch ``padding="same"``: total ``d(k−1)``, the odd cell *after*; stride 1 only
                    (a PyTorch rule). No transposed meaning.
``"same_tf"``       TensorFlow / Keras / JAX ``"SAME"``: output ``⌈i/s⌉``, total
                    ``max((o−1)s + d(k−1) + 1 − i, 0)``, the odd cell after. Transposed (TensorFlow's
                    ``conv_transpose``): output ``i·s``, padding total ``max(d(k−1) + 1 − s, 0)``,
                    split with the odd cell after, the cells a short kernel misses given back as
                    ``output_padding``.
``"same_upper"``    ONNX ``SAME_UPPER``: as ``same_tf`` for a direct convolution or pool. Transposed
                    (ONNX ``ConvTranspose``, as its reference evaluator computes): output ``i·s``,
                    total ``d(k−1) + 1 − s + output_padding`` split ``(⌊t/2⌋, t − ⌊t/2⌋)`` — a
                    negative total (kernel shorter than the stride) *adds* cells, the odd one
                    *before*, where TensorFlow adds it after.
``"same_lower"``    ONNX ``SAME_LOWER``: the odd cell before (transposed: ``(t − ⌊t/2⌋, ⌊t/2⌋)``).
``"full"``          ``d(k−1)`` on both sides (the guide's full padding). No transposed meaning.
``"causal"``        Keras ``"causal"``: ``d(k−1)`` before, none after. No transposed meaning.
==================  =====================================================================================

Examples
--------
>>> resolve_policy("same", 5, kernel=4, stride=1, dilation=1)
(1, 2)
>>> resolve_policy("same_tf", 6, kernel=3, stride=2, dilation=1)
(0, 1)
>>> resolve_policy("same_lower", 6, kernel=3, stride=2, dilation=1)
(1, 0)
>>> resolve_transposed_policy("same_tf", kernel=1, stride=2, dilation=1, output_padding=0)
((0, 0), 1)
>>> resolve_transposed_policy("same_upper", kernel=1, stride=2, dilation=1, output_padding=0)
((-1, 0), 0)
"""

from __future__ import annotations

from ..layer import POLICIES, Pad, PaddingPolicy
from .arithmetic import effective_kernel

__all__ = ["POLICIES", "PaddingPolicy", "resolve_policy", "resolve_transposed_policy"]


def _split(total: int, odd_after: bool) -> Pad:
    small, large = total // 2, total - total // 2
    return (small, large) if odd_after else (large, small)


def resolve_policy(policy: PaddingPolicy, i: int, kernel: int, stride: int, dilation: int) -> Pad:
    """The ``(before, after)`` padding a policy gives one axis of a direct convolution or pool."""
    reach = effective_kernel(kernel, dilation) - 1
    if policy == "valid":
        return (0, 0)
    if policy == "full":
        return (reach, reach)
    if policy == "causal":
        return (reach, 0)
    if policy == "same":
        return _split(reach, odd_after=True)
    out = -(-i // stride)
    total = max((out - 1) * stride + reach + 1 - i, 0)
    return _split(total, odd_after=policy != "same_lower")


def resolve_transposed_policy(
    policy: PaddingPolicy, kernel: int, stride: int, dilation: int, output_padding: int
) -> tuple[Pad, int]:
    """Padding and ``output_padding`` of one axis of a transposed convolution under a policy.

    ``same_tf`` follows TensorFlow: a transposed convolution is the gradient of the ``"SAME"``
    convolution that takes ``i·s`` cells to ``i``, whose padding total is ``max(d(k−1) + 1 − s, 0)``;
    when the clamp bites the missing cells come back as ``output_padding``. ``same_upper`` and
    ``same_lower`` follow the ONNX specification, whose total may be negative.
    """
    extent = effective_kernel(kernel, dilation)
    if policy == "valid":
        return (0, 0), output_padding
    if policy == "same_tf":
        return _split(max(extent - stride, 0), odd_after=True), max(stride - extent, 0)
    total = extent - stride + output_padding
    return _split(total, odd_after=policy == "same_upper"), output_padding
