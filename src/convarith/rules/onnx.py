"""ONNX's rules: what an ONNX graph (opset 22) cannot take as written, tested against onnxruntime and
the ONNX reference evaluator (``onnx.reference.ReferenceEvaluator``).

ONNX's ``Conv``, ``ConvTranspose``, ``MaxPool`` and ``AveragePool`` take asymmetric ``(begin, end)``
pads, groups, dilations and ``auto_pad``; almost everything else a :class:`~convarith.Layer` says is
expressible with extra nodes (``Pad``, ``Slice``, ``Mul``, ``Add``), so ONNX refuses very little
(errors) and the translation works around a lot (warnings):

* pads must not be negative (``Conv``, pools and, in onnxruntime, ``ConvTranspose``): a crop is a
  ``Slice`` before (direct) or an extension with ``Pad`` after (transposed);
* ``Conv`` pads with zeros only: a ``Pad`` with ``mode`` reflect / edge / wrap comes first, in
  several steps where onnxruntime refuses a reflection longer than the input;
* ``ConvTranspose`` ``output_padding`` must be smaller than the stride (both runtimes);
* pooling pads must be smaller than the kernel (onnxruntime), and ``AveragePool`` has no
  ``divisor_override``: an explicit ``Pad``, the pool, and a ``Mul`` by the window counts.

Pitfalls (info) point at docs/pitfalls.md: ``onnx-auto-pad`` (transposed ``SAME_*``),
``onnxruntime-vs-spec`` (``SAME_UPPER`` with a kernel shorter than the stride), ``pool-ceil-mode``
and ``count-include-pad`` (ONNX's default is 0, PyTorch's True).

Examples
--------
>>> from convarith import Layer, check
>>> [f.code for f in check(Layer("conv1d", kernel_size=3, padding=[(-1, 1)]), (1, 1, 8), framework="onnx")]
['needs-workaround']
>>> check(Layer("conv2d", kernel_size=3, stride=2, padding="same_tf"), framework="onnx")
()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import Finding, finding, refusal
from ..layer import Layer, Pad
from . import INT64_MAX, int64_refusals, register

if TYPE_CHECKING:
    from ..geometry.bound import BoundLayer

__all__ = [
    "PAD_MODE",
    "auto_pad",
    "avg_pool_native",
    "onnx_rules",
    "pool_pads_native",
    "reflect_steps",
    "transposed_native",
]

PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
"""convarith's padding modes as ONNX ``Pad`` modes."""
_OP = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AveragePool"}
_AUTO = {"valid": "VALID", "same_upper": "SAME_UPPER", "same_lower": "SAME_LOWER", "same_tf": "SAME_UPPER"}


def _workaround(what: str, workaround: str) -> Finding:
    return finding("needs-workaround", None, framework="onnx", what=what, workaround=workaround)


def _pitfall(what: str, entry: str) -> Finding:
    return finding("pitfall", None, framework="onnx", what=what, entry=entry)


def auto_pad(layer: Layer) -> str | None:
    """The ``auto_pad`` value that means exactly the layer's padding policy on every input, or ``None``.

    Direct layers: ``valid``, ONNX's own ``same_upper`` / ``same_lower``, TensorFlow's ``same_tf``
    (= ``SAME_UPPER``) and PyTorch's ``same`` at stride 1 (= ``SAME_UPPER``); never with
    ``ceil_mode``, a padding mode other than zeros, (convolutions: onnxruntime refuses it) a
    dilation or (pools) a stride past the kernel. Transposed layers: ``valid``, and the
    ``SAME_*`` policies where every axis's padding total ``d(k−1) + 1 − s + output_padding`` is
    at least 0 (where it is negative onnxruntime and the specification disagree) and
    ``output_padding`` is smaller than the stride.

    >>> auto_pad(Layer("conv1d", kernel_size=3, stride=2, padding="same_tf"))
    'SAME_UPPER'
    >>> auto_pad(Layer("conv_transpose1d", kernel_size=1, stride=2, padding="same_upper")) is None
    True
    """
    policy = layer.policy
    if policy is None:
        return None
    n = layer.ndim
    if layer.transposed:
        if any(a >= s for a, s in zip(layer.output_padding, layer.stride, strict=True)):
            return None
        if policy == "valid":
            return "VALID"
        if policy == "same_tf":
            ok = all(e >= s for e, s in zip(layer.effective_kernel, layer.stride, strict=True))
            return "SAME_UPPER" if ok else None
        totals = [e - s + a for e, s, a in zip(layer.effective_kernel, layer.stride, layer.output_padding, strict=True)]
        return _AUTO[policy] if min(totals) >= 0 else None
    if layer.ceil_mode or (layer.padding_mode != "zeros" and policy != "valid"):
        return None
    if layer.kind == "conv" and policy != "valid" and layer.dilation != (1,) * n:
        return None  # onnxruntime: "Dilation not supported for AutoPadType::SAME_UPPER or SAME_LOWER"
    if layer.kind == "avg_pool" and layer.divisor_override is not None:
        return None
    if layer.pooling and policy != "valid" and layer.dilation != (1,) * n:
        return None  # SAME pads of a dilated pool may exceed what the pool takes
    if layer.pooling and policy != "valid" and any(s > k for k, s in zip(layer.kernel_size, layer.stride, strict=True)):
        return None  # some input needs a negative total: onnxruntime's MaxPool refuses it, its AveragePool shifts
    if policy == "same":
        return "SAME_UPPER" if layer.stride == (1,) * n else None
    return _AUTO.get(policy)


def pool_pads_native(layer: Layer, pads: Sequence[Pad]) -> bool:
    """Whether ONNX's pool takes these pads itself: none negative, each smaller than the kernel
    (onnxruntime's rule) and at most half of it where the reference evaluator needs that."""
    if all(b == a == 0 for b, a in pads):
        return True
    if layer.dilation != (1,) * layer.ndim:
        return False  # a dilated window may read only padding, where the runtimes disagree
    return all(min(b, a) >= 0 and 2 * max(b, a) <= k for (b, a), k in zip(pads, layer.kernel_size, strict=True))


def avg_pool_native(layer: Layer, pads: Sequence[Pad]) -> bool:
    """Whether ``AveragePool`` computes this average pool's divisor itself."""
    return layer.divisor_override is None and pool_pads_native(layer, pads)


def transposed_native(pads: Sequence[Pad], output_padding: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether ``ConvTranspose`` takes these pads and ``output_padding`` as attributes (both runtimes)."""
    return all(min(p) >= 0 for p in pads) and all(a < s for a, s in zip(output_padding, stride, strict=True))


def reflect_steps(size: int, pad: Pad) -> list[Pad]:
    """``(before, after)`` reflections, each shorter than the input, that pad ``pad`` in turn.

    A reflection of the reflected input about its new edge continues the mirror pattern when the
    edge lies a multiple of ``size − 1`` away, so every step but the last pads ``size − 1``.

    >>> reflect_steps(3, (5, 1))
    [(2, 1), (2, 0), (1, 0)]
    """
    step = max(size - 1, 1)
    before, after = max(pad[0], 0), max(pad[1], 0)
    out: list[Pad] = []
    while before or after or not out:
        b, a = min(before, step), min(after, step)
        out.append((b, a))
        before, after = before - b, after - a
    return out


def _layer_rules(layer: Layer) -> list[Finding]:
    out: list[Finding] = []
    out += int64_refusals("onnx", layer, "ONNX attributes are int64")
    return out


def _pad_findings(layer: Layer, pads: Sequence[Pad], bound: BoundLayer | None) -> list[Finding]:
    spatial = None if bound is None else bound.input_spatial
    op = _OP[layer.kind]
    out: list[Finding] = []
    crops = any(min(p) < 0 for p in pads)
    if layer.transposed:
        if crops:
            out.append(
                _workaround(
                    "ConvTranspose pads must not be negative (onnxruntime refuses them)",
                    "extends the output with Pad and adds the bias after",
                )
            )
        return out
    if crops:
        out.append(_workaround(f"{op} pads must not be negative", "crops the input with Slice first"))
    if layer.kind == "conv" and layer.padding_mode != "zeros" and any(max(p) > 0 for p in pads):
        mode = PAD_MODE[layer.padding_mode]
        out.append(_workaround("Conv pads with zeros only", f"pads with Pad(mode={mode!r}) first"))
        if (
            layer.padding_mode == "reflect"
            and spatial is not None
            and any(max(p) >= i for p, i in zip(pads, spatial, strict=True))
        ):
            out.append(
                _workaround(
                    "onnxruntime's Pad(mode='reflect') takes pads smaller than the input",
                    "reflects in several Pad steps",
                )
            )
    grow = [(max(b, 0), max(a, 0)) for b, a in pads]
    if layer.kind == "max_pool" and any(b or a for b, a in grow):
        out.append(
            _workaround(
                "the ONNX reference evaluator's MaxPool goes wrong with pads",
                "pads with Pad(-inf) first",
            )
        )
    if layer.pooling and layer.ceil_mode and bound is not None:
        floor = layer.replace(padding=tuple(pads), ceil_mode=False).bind(bound.input_shape).output_spatial
        if floor != bound.output_spatial:
            out.append(
                _workaround(
                    f"the ONNX reference evaluator sizes and divides ceil_mode {op} windows unlike onnxruntime",
                    "pads as far as the last window reaches and pools without ceil_mode",
                )
            )
    if layer.pooling and not pool_pads_native(layer, grow):
        fill = "-inf" if layer.kind == "max_pool" else "zeros"
        what = f"{op} pads must be at most half the kernel, undilated, for both onnxruntime and the reference evaluator"
        tail = "" if layer.kind == "max_pool" else " and divides by each window's count"
        out.append(_workaround(what, f"pads with Pad({fill}) first{tail}"))
    return out


def onnx_rules(layer: Layer, input_shape: Sequence[int] | None) -> list[Finding]:
    """ONNX's refusals (errors), the workarounds of its translation (warnings) and pitfalls (info)."""
    out = _layer_rules(layer)
    if out:
        return out
    bound = layer.bind(input_shape) if input_shape is not None else None
    if bound is not None:
        sizes = (*bound.input_shape, *bound.output_shape)
        if max(sizes) > INT64_MAX:
            return [refusal("onnx", "input_shape", "every size must fit in a 64-bit integer", bound.output_shape)]
        if layer.padding_mode == "circular":
            for i, (b, a) in zip(bound.input_spatial, bound.pads, strict=True):
                if i + min(b, 0) + min(a, 0) < 1:
                    return [refusal("onnx", "padding", "circular padding must leave a cell to wrap", bound.pads)]
    pads: Sequence[Pad] | None = bound.pads if bound is not None else (layer.pads if layer.is_resolved else None)
    native = auto_pad(layer)
    if native is None and pads is None and layer.transposed:
        from ..frameworks.base import explicit

        pads = explicit(layer).pads  # a transposed policy does not depend on the input size
    if native is None and pads is not None:
        out += _pad_findings(layer, pads, bound)
    elif native is None and layer.kind == "conv" and layer.padding_mode != "zeros":
        mode = PAD_MODE[layer.padding_mode]
        out.append(_workaround("Conv pads with zeros only", f"pads with Pad(mode={mode!r}) first"))
    if layer.transposed and any(a >= s for a, s in zip(layer.output_padding, layer.stride, strict=True)):
        out.append(
            _workaround(
                f"ConvTranspose output_padding must be smaller than the stride {layer.stride}",
                "extends the output with Pad and adds the bias after",
            )
        )
    if layer.kind == "avg_pool" and layer.divisor_override is not None:
        out.append(
            _workaround(
                "AveragePool has no divisor_override",
                f"averages with count_include_pad=1 and scales by the window size / {layer.divisor_override}",
            )
        )
    # pitfalls
    if layer.transposed and layer.policy in ("same_upper", "same_lower", "same_tf"):
        out.append(_pitfall(f"ConvTranspose auto_pad {_AUTO[layer.policy]} makes the output i·s", "onnx-auto-pad"))
        totals = [e - s + a for e, s, a in zip(layer.effective_kernel, layer.stride, layer.output_padding, strict=True)]
        if layer.policy != "same_tf" and min(totals) < 0:
            out.append(
                _pitfall(
                    "with a kernel shorter than the stride onnxruntime's ConvTranspose SAME_* output is "
                    "not the specification's i·s; the translation writes explicit pads",
                    "onnxruntime-vs-spec",
                )
            )
    if layer.pooling and layer.ceil_mode:
        out.append(
            _pitfall(f"{_OP[layer.kind]} ceil_mode drops a last window that starts in the padding", "pool-ceil-mode")
        )
    padded = layer.policy not in (None, "valid") or any(max(p) > 0 for p in (pads or ()))
    if layer.kind == "avg_pool" and layer.divisor_override is None and padded:
        value = int(layer.count_include_pad)
        out.append(
            _pitfall(
                f"AveragePool's count_include_pad defaults to 0 (PyTorch's to True); written as {value}",
                "count-include-pad",
            )
        )
    return out


register("onnx", onnx_rules)
