"""PyTorch's rules: exactly what ``torch.nn.functional`` and ``torch.nn`` refuse (tested against them).

Padding policies other than PyTorch's own ``"valid"`` and ``"same"`` are convarith's: they are
resolved into explicit pairs first, which PyTorch then takes (asymmetric pairs through ``F.pad``,
reported as ``inexpressible-padding`` for the ``nn`` modules). PyTorch's pooling-only rules (the
half-kernel bound on the pads, ``avg_pool3d``'s input at least the kernel) apply to pads that were
written, never to the TensorFlow/ONNX policies, which JAX and ONNX compute.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Finding, finding, refusal
from ..layer import Layer
from . import INT64_MAX, int64_refusals, register

__all__ = ["torch_rules"]

_MODULE = {"conv": "nn.Conv", "conv_transpose": "nn.ConvTranspose", "max_pool": "nn.MaxPool", "avg_pool": "nn.AvgPool"}
_WORKAROUND = {
    "conv": "F.pad before the convolution",
    "conv_transpose": "padding 0 and a crop of the output",
    "max_pool": "F.pad (with -inf) before the pool, which changes ceil_mode's rule",
    "avg_pool": "F.pad before the pool, which changes the divisor and ceil_mode's rule",
}


def _refuse(param: str, rule: str, value: object = None) -> Finding:
    return refusal("torch", param, rule, value)


def _layer_rules(layer: Layer) -> list[Finding]:
    """Rules that do not depend on the input."""
    out: list[Finding] = []
    out += int64_refusals("torch", layer, "PyTorch: overflow when unpacking long")
    if out:
        return out
    n = layer.ndim
    if layer.policy == "same" and layer.stride != (1,) * n:
        out.append(
            _refuse(
                "padding",
                f"'same' (PyTorch) needs stride 1 on every axis, stride is {layer.stride}; "
                "use 'same_tf' for TensorFlow's strided same",
                repr(layer.policy),
            )
        )
    if layer.transposed and any(
        a >= max(s, d) for a, s, d in zip(layer.output_padding, layer.stride, layer.dilation, strict=True)
    ):
        out.append(
            _refuse(
                "output_padding",
                "must be smaller than stride or dilation on every axis "
                f"(stride {layer.stride}, dilation {layer.dilation})",
                layer.output_padding,
            )
        )
    if layer.kind == "avg_pool" and n == 1 and layer.divisor_override is not None:
        out.append(_refuse("divisor_override", "avg_pool1d has no divisor_override in PyTorch", layer.divisor_override))
    if layer.kind == "avg_pool" and layer.dilation != (1,) * n:
        out.append(_refuse("dilation", "avg_pool has no dilation in PyTorch; it must be 1", layer.dilation))
    if layer.is_resolved:
        out += _pad_rules(layer, layer.pads, written=True)
    return out


def _pad_rules(layer: Layer, pads: Sequence[tuple[int, int]], *, written: bool) -> list[Finding]:
    flat = [p for pair in pads for p in pair]
    if min(flat) < 0 and layer.padding_mode == "zeros":
        # PyTorch pads non-zero modes with F.pad, which crops where the padding is negative.
        return [_refuse("padding", "must not be negative (with padding_mode 'zeros')", tuple(pads))]
    if layer.pooling and written:
        for (before, after), k in zip(pads, layer.kernel_size, strict=True):
            if 2 * max(before, after) > k:
                return [
                    _refuse(
                        "padding",
                        f"a pooling pad must be at most half the kernel size {layer.kernel_size}",
                        tuple(pads),
                    )
                ]
    return []


def torch_rules(layer: Layer, input_shape: Sequence[int] | None) -> list[Finding]:
    """PyTorch's refusals (errors) and the padding its modules cannot express (warnings)."""
    out = _layer_rules(layer)
    if out or input_shape is None:
        return out
    bound = layer.bind(input_shape)
    spatial, pads = bound.input_spatial, bound.pads
    if not layer.is_resolved:
        out += _pad_rules(layer, pads, written=False)
    sizes = (*bound.input_shape, *bound.output_shape)
    if max(sizes) > INT64_MAX:
        out.append(_refuse("input_shape", "every size must fit in a 64-bit integer", bound.output_shape))
    mode = layer.padding_mode
    kept = tuple(i + min(b, 0) + min(a, 0) for i, (b, a) in zip(spatial, pads, strict=True))
    if mode == "reflect" and any(max(p) >= i for p, i in zip(pads, spatial, strict=True)):
        out.append(_refuse("padding", f"reflect padding must be smaller than the input size {spatial}", pads))
    if mode == "circular" and any(max(p) > i for p, i in zip(pads, kept, strict=True)):
        out.append(
            _refuse("padding", f"circular padding must be at most the input size {spatial} (it wraps once)", pads)
        )
    if (
        layer.kind == "avg_pool"
        and layer.ndim == 3
        and layer.is_resolved
        and any(i < k for i, k in zip(spatial, layer.kernel_size, strict=True))
    ):
        # PyTorch's 3-d average pooling alone checks the unpadded input against the kernel.
        out.append(
            _refuse(
                "input_shape", f"avg_pool3d needs every input size at least the kernel {layer.kernel_size}", spatial
            )
        )
    if out:
        return out
    for n, (before, after) in enumerate(pads):
        if before != after:
            out.append(
                finding(
                    "inexpressible-padding",
                    n,
                    framework="torch",
                    what=f"{_MODULE[layer.kind]}{layer.ndim}d",
                    before=before,
                    after=after,
                    workaround=_WORKAROUND[layer.kind],
                )
            )
    return out


register("torch", torch_rules)
