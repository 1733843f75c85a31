"""Per-axis convolution arithmetic: plain integer formulas, no validation, no framework.

Every N-d shape in convarith is these formulas applied axis by axis. A padding is always an
explicit ``(before, after)`` pair here; policies such as ``"same"`` are resolved earlier
(:mod:`convarith.geometry.padding`).

Examples
--------
The guide's Figure 2.6 (5×5 input, 3×3 kernel, stride 2, padding 1):

>>> conv_output_size(5, kernel=3, stride=2, pad=(1, 1))
3
>>> conv_transpose_output_size(3, kernel=3, stride=2, pad=(1, 1))
5
"""

from __future__ import annotations

Pad = tuple[int, int]

__all__ = [
    "Pad",
    "conv_output_size",
    "conv_transpose_output_size",
    "effective_kernel",
    "floor_remainder",
    "pool_output_size",
]


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``d·(k−1) + 1`` (the guide's relationship 15 uses it)."""
    return dilation * (kernel - 1) + 1


def conv_output_size(i: int, kernel: int, stride: int = 1, pad: Pad = (0, 0), dilation: int = 1) -> int:
    """``⌊(i + p_b + p_a − d(k−1) − 1) / s⌋ + 1``; zero or less means no window fits."""
    return (i + pad[0] + pad[1] - effective_kernel(kernel, dilation)) // stride + 1


def floor_remainder(i: int, kernel: int, stride: int = 1, pad: Pad = (0, 0), dilation: int = 1) -> int:
    """Padded cells after the last window that the floor of :func:`conv_output_size` drops.

    This is the guide's ``a = (i + 2p − k) mod s`` of relationship 14, generalised to dilation and
    asymmetric padding; it is also the ``output_padding`` that makes the transposed convolution
    give back exactly ``i``.
    """
    return (i + pad[0] + pad[1] - effective_kernel(kernel, dilation)) % stride


def conv_transpose_output_size(
    i: int, kernel: int, stride: int = 1, pad: Pad = (0, 0), dilation: int = 1, output_padding: int = 0
) -> int:
    """``(i − 1)·s − p_b − p_a + d(k−1) + 1 + a`` (PyTorch's ``ConvTranspose`` formula)."""
    return (i - 1) * stride - pad[0] - pad[1] + effective_kernel(kernel, dilation) + output_padding


def pool_output_size(
    i: int, kernel: int, stride: int, pad: Pad = (0, 0), dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Pooling output size, PyTorch's rule included.

    With ``ceil_mode`` the division rounds up, but a last window that would *start* in the
    padding after the input is dropped (it would read nothing but padding).
    """
    span = i + pad[0] + pad[1] - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= i + pad[0]:
        out -= 1
    return out
