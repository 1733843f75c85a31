"""The fifteen relationships of Dumoulin & Visin, *A guide to convolution arithmetic* (arXiv 1603.07285).

Each relationship is stated for one axis with symmetric padding ``p``, as in the guide. The
transposed ones (8–14) are written for the transposed layer's own parameters: ``i′`` its input,
and ``k``, ``s``, ``p`` those of the direct convolution it transposes (which PyTorch's
``ConvTranspose`` takes as its arguments), ``a`` its ``output_padding``.

:func:`relationship_for` picks the most specific relationship that applies to one axis of a layer,
so explanations can cite the guide; the general formulas of :mod:`.arithmetic` agree with every
relationship on its domain (tested).

Examples
--------
>>> from convarith import Layer
>>> rel = relationship_for(Layer("conv2d", kernel_size=3, padding=1), axis=0)
>>> rel.number, rel.name, rel.formula
(3, 'half (same) padding', 'o = i')
>>> rel.output(i=5, k=3, s=1, p=1, d=1, a=0)
5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConvArithError
from ..layer import Layer
from .bound import BoundLayer

__all__ = ["RELATIONSHIPS", "Relationship", "relationship_for"]


@dataclass(frozen=True)
class Relationship:
    number: int
    name: str
    section: str
    formula: str
    condition: str
    output: Callable[..., int]
    """``output(i=…, k=…, s=…, p=…, d=…, a=…)``; ``i`` is ``i′`` for the transposed ones."""
    direct_padding: str = ""
    """For 8–14: ``p′`` of the equivalent direct convolution, as the guide states it."""


def _r(
    number: int, name: str, section: str, formula: str, condition: str, output: Callable[..., int], pp: str = ""
) -> Relationship:
    return Relationship(number, name, section, formula, condition, output, pp)


RELATIONSHIPS: dict[int, Relationship] = {
    r.number: r
    for r in (
        _r(1, "no zero padding, unit strides", "2.1", "o = (i − k) + 1", "s = 1, p = 0", lambda i, k, **_: i - k + 1),
        _r(
            2,
            "zero padding, unit strides",
            "2.2.1",
            "o = (i − k) + 2p + 1",
            "s = 1",
            lambda i, k, p, **_: i - k + 2 * p + 1,
        ),
        _r(3, "half (same) padding", "2.2.1", "o = i", "s = 1, k = 2n + 1, p = n", lambda i, **_: i),
        _r(4, "full padding", "2.2.1", "o = i + (k − 1)", "s = 1, p = k − 1", lambda i, k, **_: i + k - 1),
        _r(
            5,
            "no zero padding, non-unit strides",
            "2.3",
            "o = ⌊(i − k) / s⌋ + 1",
            "p = 0",
            lambda i, k, s, **_: (i - k) // s + 1,
        ),
        _r(
            6,
            "zero padding, non-unit strides",
            "2.4",
            "o = ⌊(i + 2p − k) / s⌋ + 1",
            "any i, k, s, p",
            lambda i, k, s, p, **_: (i + 2 * p - k) // s + 1,
        ),
        _r(7, "pooling", "3", "o = ⌊(i − k) / s⌋ + 1", "pooling, p = 0", lambda i, k, s, **_: (i - k) // s + 1),
        _r(
            8,
            "transposed: no zero padding, unit strides",
            "4.2",
            "o′ = i′ + (k − 1)",
            "s = 1, p = 0",
            lambda i, k, **_: i + k - 1,
            "p′ = k − 1",
        ),
        _r(
            9,
            "transposed: zero padding, unit strides",
            "4.3",
            "o′ = i′ + (k − 1) − 2p",
            "s = 1",
            lambda i, k, p, **_: i + k - 1 - 2 * p,
            "p′ = k − p − 1",
        ),
        _r(
            10,
            "transposed: half (same) padding",
            "4.3.1",
            "o′ = i′",
            "s = 1, k = 2n + 1, p = n",
            lambda i, **_: i,
            "p′ = p",
        ),
        _r(
            11,
            "transposed: full padding",
            "4.3.2",
            "o′ = i′ − (k − 1)",
            "s = 1, p = k − 1",
            lambda i, k, **_: i - k + 1,
            "p′ = 0",
        ),
        _r(
            12,
            "transposed: no zero padding, non-unit strides",
            "4.4",
            "o′ = s(i′ − 1) + k",
            "p = 0, (i − k) mod s = 0",
            lambda i, k, s, **_: s * (i - 1) + k,
            "p′ = k − 1, ĩ′ stretched by s − 1 zeros",
        ),
        _r(
            13,
            "transposed: zero padding, non-unit strides",
            "4.5",
            "o′ = s(i′ − 1) + k − 2p",
            "(i + 2p − k) mod s = 0",
            lambda i, k, s, p, **_: s * (i - 1) + k - 2 * p,
            "p′ = k − p − 1, ĩ′ stretched by s − 1 zeros",
        ),
        _r(
            14,
            "transposed: zero padding, non-unit strides, odd case",
            "4.5",
            "o′ = s(i′ − 1) + a + k − 2p",
            "a = (i + 2p − k) mod s",
            lambda i, k, s, p, a, **_: s * (i - 1) + a + k - 2 * p,
            "p′ = k − p − 1, ĩ′ stretched by s − 1 zeros, a extra cells after",
        ),
        _r(
            15,
            "dilated convolution",
            "5.1",
            "o = ⌊(i + 2p − k − (k − 1)(d − 1)) / s⌋ + 1",
            "any i, k, s, p, d",
            lambda i, k, s, p, d, **_: (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1,
        ),
    )
}


def relationship_for(spec: Layer | BoundLayer, axis: int = 0) -> Relationship | None:
    """The most specific relationship of the guide for one axis of a bound (or explicitly padded) layer.

    ``None`` when the guide has none: asymmetric padding, ``ceil_mode``, a dilated transposed
    convolution (the guide stops at direct dilated ones), an ``output_padding`` PyTorch accepts
    only because of dilation, or an unbound layer with a padding policy.
    """
    if isinstance(spec, BoundLayer):
        spec = spec.layer.replace(padding=spec.pads, output_padding=spec.output_padding)
    if not isinstance(spec, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(spec).__name__)
    if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis < spec.ndim:
        raise ConvArithError("axis", f"must be an axis of the layer, 0 … {spec.ndim - 1}", repr(axis))
    if isinstance(spec.padding, str):
        return None
    (pb, pa) = spec.padding[axis]
    if pb != pa or spec.ceil_mode:
        return None
    k, s, p, d, a = spec.kernel_size[axis], spec.stride[axis], pb, spec.dilation[axis], spec.output_padding[axis]
    if spec.transposed:
        if d != 1 or a >= s:
            return None
        if s == 1:
            number = 8 if p == 0 else 10 if (k % 2 and p == k // 2) else 11 if p == k - 1 else 9
        else:
            number = 14 if a else 12 if p == 0 else 13
    elif d != 1:
        number = 15
    elif spec.pooling and p == 0:
        number = 7
    elif s == 1:
        number = 1 if p == 0 else 3 if (k % 2 and p == k // 2) else 4 if p == k - 1 else 2
    else:
        number = 5 if p == 0 else 6
    return RELATIONSHIPS[number]
