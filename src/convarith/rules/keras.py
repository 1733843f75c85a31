"""Keras 3's rules: what its layers refuse, and what the translation writes around (tested on the
torch, jax and tensorflow backends, Keras 3.15).

Refusals (errors), each one Keras raising on the layer as written:

* ``Conv*D`` and ``Conv*DTranspose`` refuse ``strides > 1`` with ``dilation_rate > 1`` (a
  ``ValueError`` at construction; ``DepthwiseConv*D`` accepts it);
* Keras has ``Conv1D``–``Conv3D`` and pools of 1–3 axes only;
* pools have no ``dilation_rate`` (an unrecognized keyword);
* convolutions have no ``padding_mode``: they pad with zeros only (an unrecognized keyword).

Everything else is expressible with more layers (warnings, ``needs-workaround``): a direct
convolution's padding that is neither ``'valid'``, ``'same'`` nor ``'causal'`` becomes
``ZeroPadding*D`` / ``Cropping*D`` first; a transposed one that no ``padding`` × ``output_padding``
combination computes becomes ``padding='valid'`` then ``Cropping*D`` / ``ZeroPadding*D`` (and the
bias added after, by ``Rescaling(offset=…)``, where cells were added); a dilated transposed
convolution (TensorFlow's CPU kernel refuses dilation) or a grouped one at stride 1 becomes the
equal direct ``Conv*D``; a grouped one at a larger stride one ``Conv*DTranspose`` per group on a
channel slice, concatenated; pools whose padding is not Keras' ``'same'`` pad explicitly
(``-inf`` for max) and averages are rescaled by each window's count.

The transposed ``'same'`` / ``output_padding`` rule (Keras' own, the same on every backend):
the output is ``i·s`` when ``output_padding`` is ``None``, else ``(i − 1)s + e mod 2 + a``; cells
are cropped from the full output ``(i − 1)s + e`` by ``(e − 1 − L, e − 1 − R)`` with
``L = min(⌈P/2⌉, e − 1)``, ``R = P − L``, ``P = s + e − 2`` (``None``) or ``e + e mod 2 − 2 + a``
— not PyTorch's ``padding = k // 2, output_padding = a``, whose odd cell lands on the other side
(:func:`keras_transposed_crops`).

Examples
--------
>>> from convarith import Layer, check
>>> [f.message for f in check(Layer("conv2d", kernel_size=3, stride=2, dilation=2), framework="keras")]
['stride: Keras refuses strides > 1 with dilation_rate > 1 (Conv2D); got (2, 2)']
>>> [f.code for f in check(Layer("conv1d", kernel_size=3, padding=[(2, 1)]), framework="keras")]
['needs-workaround']
>>> keras_transposed_crops(3, 2, "same", 1)
(0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import Finding, finding, refusal
from ..layer import Layer, Pad
from . import register
from .tf import same_shifts

if TYPE_CHECKING:
    from ..geometry.bound import BoundLayer

__all__ = [
    "direct_padding",
    "keras_rules",
    "keras_transposed_crops",
    "pool_padding",
    "transposed_form",
]

NAME = "keras"
_CLASS = {"conv": "Conv", "conv_transpose": "Conv", "max_pool": "MaxPooling", "avg_pool": "AveragePooling"}


def _class(layer: Layer) -> str:
    suffix = "DTranspose" if layer.transposed else "D"
    return f"{_CLASS[layer.kind]}{layer.ndim}{suffix}"


def _workaround(what: str, workaround: str) -> Finding:
    return finding("needs-workaround", None, framework=NAME, what=what, workaround=workaround)


def _pitfall(what: str, entry: str) -> Finding:
    return finding("pitfall", None, framework=NAME, what=what, entry=entry)


def keras_transposed_crops(extent: int, stride: int, padding: str, output_padding: int | None) -> Pad:
    """Cells Keras' ``Conv*DTranspose`` crops from the full output ``(i − 1)s + e`` of one axis,
    ``(before, after)``; a negative ``after`` adds cells (with the bias). ``extent`` = ``d(k − 1) + 1``.

    >>> keras_transposed_crops(3, 2, "same", None), keras_transposed_crops(1, 2, "same", None)
    ((0, 1), (0, -1))
    >>> keras_transposed_crops(3, 2, "valid", None), keras_transposed_crops(1, 3, "valid", None)
    ((0, 0), (0, -2))
    """
    e, s = extent, stride
    if padding == "valid":
        extra = max(e, s) - e if output_padding is None else output_padding
        return (0, -extra)
    total = s + e - 2 if output_padding is None else e + e % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, e - 1)
    return (e - 1 - left, e - 1 - (total - left))


def transposed_form(
    layer: Layer, bound_pads: Sequence[Pad], output_padding: Sequence[int]
) -> tuple[str, tuple[int, ...] | None] | None:
    """Keras' ``(padding, output_padding)`` that computes a transposed layer's explicit pads and
    ``output_padding`` exactly (``None`` for Keras' own default), or ``None`` when none does.

    >>> transposed_form(Layer("conv_transpose1d", kernel_size=3, stride=2), [(0, 1)], [0])
    ('same', None)
    >>> transposed_form(Layer("conv_transpose1d", kernel_size=3, stride=2), [(1, 1)], [1]) is None
    True
    """
    want = [(b, a - e) for (b, a), e in zip(bound_pads, output_padding, strict=True)]
    extents, strides = layer.effective_kernel, layer.stride
    for padding in ("valid", "same"):
        if all(
            keras_transposed_crops(e, s, padding, None) == w for e, s, w in zip(extents, strides, want, strict=True)
        ):
            return padding, None
        chosen: list[int] = []
        for e, s, w in zip(extents, strides, want, strict=True):
            # the tensorflow backend refuses 'same' with an even extent and output_padding 0 (its
            # conv_transpose's SAME needs ⌈out / s⌉ = i): docs/pitfalls.md#keras-tf-same-output-padding
            found = [
                a
                for a in range(s)
                if keras_transposed_crops(e, s, padding, a) == w and not (padding == "same" and e % 2 == 0 and a == 0)
            ]
            if not found:
                break
            chosen.append(found[0])
        else:
            return padding, tuple(chosen)
    return None


def direct_padding(layer: Layer, pads: Sequence[Pad] | None, spatial: Sequence[int] | None) -> str | None:
    """Keras' ``padding`` string that means a direct convolution's padding, else ``None``.

    ``pads`` are the explicit pairs (``None`` when the layer keeps a policy and no input is known).

    >>> direct_padding(Layer("conv1d", kernel_size=3, stride=2, padding="same_tf"), None, None)
    'same'
    >>> direct_padding(Layer("conv1d", kernel_size=3, dilation=2), [(4, 0)], (9,))
    'causal'
    """
    n = layer.ndim
    policy = layer.policy
    if pads is None:
        if policy == "valid":
            return "valid"
        if policy == "same_tf" or (policy in ("same", "same_upper") and layer.stride == (1,) * n):
            return None if same_shifts(layer, None) else "same"
        if policy == "causal" and n == 1 and layer.kind == "conv":
            return "causal"
        return None
    if all(b == a == 0 for b, a in pads):
        return "valid"
    if spatial is not None or layer.stride == (1,) * n:
        from ..geometry.padding import resolve_policy

        sizes = spatial if spatial is not None else (1,) * n  # at stride 1 'same' does not depend on it
        same = [
            resolve_policy("same_tf", i, k, s, d)
            for i, k, s, d in zip(sizes, layer.kernel_size, layer.stride, layer.dilation, strict=True)
        ]
        if list(pads) == same and not same_shifts(layer, spatial):
            return "same"
    if layer.kind == "conv" and n == 1 and tuple(pads) == ((layer.effective_kernel[0] - 1, 0),):
        return "causal"
    return None


def pool_padding(layer: Layer, bound: BoundLayer | None) -> str | None:
    """Keras' pool ``padding`` that computes the pool exactly (on every backend), else ``None``.

    Max pools: ``'valid'`` / ``'same'`` where the pads are those. Average pools: the same, with
    ``count_include_pad=False`` for ``'same'`` (Keras never counts padded cells), no divisor
    override, and, with an input, symmetric ``'same'`` pads only (the torch backend pads an
    asymmetric ``'same'`` average by replicating the edge: docs/pitfalls.md#keras-torch-avg-same).

    >>> pool_padding(Layer("max_pool2d", kernel_size=3, stride=2, padding="same_tf"), None)
    'same'
    >>> pool_padding(Layer("avg_pool1d", kernel_size=3, stride=1, padding=1), None) is None
    True
    """
    if layer.kind == "avg_pool" and layer.divisor_override is not None:
        return None
    if bound is None:
        if layer.policy == "valid" and not layer.ceil_mode:
            return "valid"
        if (
            layer.policy == "same_tf"
            and not layer.ceil_mode
            and (layer.kind == "max_pool" or not layer.count_include_pad)
            and not same_shifts(layer, None)
        ):
            return "same"
        if layer.is_resolved and not layer.ceil_mode and all(b == a == 0 for b, a in layer.pads):
            return "valid"
        return None
    if any(ax.overhang for ax in bound.axes):
        return None  # ceil_mode's last window: written as padding
    pads = bound.pads
    if all(b == a == 0 for b, a in pads):
        return "valid"
    from ..geometry.padding import resolve_policy

    same = [
        resolve_policy("same_tf", i, k, s, 1)
        for i, k, s in zip(bound.input_spatial, layer.kernel_size, layer.stride, strict=True)
    ]
    if list(pads) != same or same_shifts(layer, bound.input_spatial):
        return None
    if layer.kind == "max_pool":
        return "same"
    if layer.count_include_pad or any(b != a for b, a in pads):
        return None
    return "same"


def _refusals(layer: Layer, c_in: int | None, bound: BoundLayer | None) -> list[Finding]:
    n = layer.ndim
    cls = _class(layer)
    if n > 3:
        return [refusal(NAME, "op", "Keras has 1-, 2- and 3-d convolutions and pools only", layer.op)]
    if layer.pooling and layer.dilation != (1,) * n:
        return [refusal(NAME, "dilation", f"Keras' {cls} has no dilation_rate", layer.dilation)]
    if layer.weighted and max(layer.stride) > 1 and max(layer.dilation) > 1:
        depthwise = layer.kind == "conv" and n <= 2 and c_in is not None and layer.groups == c_in
        if not depthwise:
            return [refusal(NAME, "stride", f"Keras refuses strides > 1 with dilation_rate > 1 ({cls})", layer.stride)]
    if layer.kind == "conv" and layer.padding_mode != "zeros" and bound is None:
        from ..errors import ConvArithError
        from ..frameworks.base import explicit

        try:
            padded = any(max(p) > 0 for p in explicit(layer).pads)
        except ConvArithError:  # a policy that pads by the input size
            padded = layer.policy != "valid"
        if padded:
            return [
                refusal(
                    NAME,
                    "padding_mode",
                    f"Keras' {cls} pads with zeros only (it has no padding_mode)",
                    repr(layer.padding_mode),
                )
            ]
    return []


def keras_rules(layer: Layer, input_shape: Sequence[int] | None) -> list[Finding]:
    """Keras' refusals (errors), the workarounds of its translation (warnings) and pitfalls (info)."""
    bound = layer.bind(input_shape) if input_shape is not None else None
    out = _refusals(layer, bound.in_channels if bound is not None else layer.in_channels, bound)
    if out:
        return out
    padded = bound is not None and any(max(p) > 0 for p in bound.pads)
    if layer.kind == "conv" and layer.padding_mode != "zeros" and padded:
        rule = f"Keras' {_class(layer)} pads with zeros only (it has no padding_mode)"
        return [refusal(NAME, "padding_mode", rule, repr(layer.padding_mode))]
    n, cls = layer.ndim, _class(layer)
    pads: Sequence[Pad] | None
    if bound is not None:
        pads = bound.pads
    elif layer.is_resolved or layer.transposed:
        from ..frameworks.base import explicit

        pads = explicit(layer).pads
    else:
        pads = None
    spatial = bound.input_spatial if bound is not None else None
    if layer.policy in ("same_tf", "same_upper") and same_shifts(layer, spatial):
        out.append(
            _pitfall(
                "'same' on the TensorFlow backend moves these windows (its 3-d kernels start them at half a negative "
                "padding): the translation writes the pads out",
                "tf-3d-same-shift",
            )
        )
    if layer.kind == "conv":
        if layer.weighted and max(layer.stride) > 1 and max(layer.dilation) > 1:
            out.append(
                _workaround(f"{cls} refuses strides > 1 with dilation", "writes DepthwiseConv (which takes both)")
            )
        if direct_padding(layer, pads, spatial) is None:
            if pads is None:
                out.append(
                    _workaround(f"{cls} padding is 'valid', 'same' or 'causal'", "pads explicitly for the input")
                )
            else:
                crops = any(min(p) < 0 for p in pads)
                grow = any(max(p) > 0 for p in pads)
                how = " and ".join(w for w, c in (("crops with Cropping", crops), ("pads with ZeroPadding", grow)) if c)
                out.append(_workaround(f"{cls} padding is 'valid', 'same' or 'causal'", f"{how}{n}D first"))
        if layer.policy == "same_tf" and max(layer.stride) > 1:
            out.append(_pitfall("'same' pads the odd cell after, by the input size", "tf-same-asymmetric"))
    elif layer.transposed:
        resolved_op = bound.output_padding if bound is not None else _explicit_op(layer)
        assert pads is not None
        if max(layer.dilation) > 1 or (layer.groups > 1 and layer.stride == (1,) * n):
            why = (
                "TensorFlow's CPU kernel refuses a dilated Conv*DTranspose"
                if max(layer.dilation) > 1
                else (f"{cls} has no groups")
            )
            out.append(_workaround(why, f"writes the equal direct Conv{n}D (kernel flipped, channels swapped)"))
        else:
            if layer.groups > 1:
                out.append(
                    _workaround(
                        f"{cls} has no groups",
                        f"runs one {cls} per group on a slice of the channels and concatenates them",
                    )
                )
                out.append(_pitfall("has no grouped transposed convolution", "transposed-groups"))
            if transposed_form(layer, pads, resolved_op) is None:
                out.append(
                    _workaround(
                        f"no {cls} padding and output_padding computes these pads {tuple(pads)} "
                        f"and output_padding {tuple(resolved_op)}",
                        "uses padding='valid' and crops (Cropping) or extends (ZeroPadding, the bias added after)",
                    )
                )
        if any(layer.output_padding) and layer.policy != "same_tf":
            out.append(
                _pitfall(
                    "padding='same' with output_padding crops the odd cell before (not PyTorch's k // 2)",
                    "keras-transposed-same-output-padding",
                )
            )
    else:
        if pool_padding(layer, bound) is None:
            if layer.kind == "max_pool":
                how = "pads with -inf (keras.ops.pad) and pools with padding='valid'"
            else:
                how = "pads with zeros and pools with padding='valid', rescaled by each window's count"
            out.append(
                _workaround(
                    f"{cls} padding is 'valid' or 'same' (no ceil_mode, count_include_pad or divisor_override)", how
                )
            )
        if layer.ceil_mode:
            out.append(_pitfall(f"{cls} has no ceil_mode: the last window is written as padding", "pool-ceil-mode"))
        padded = layer.policy not in (None, "valid") or any(max(p) > 0 for p in (pads or ()))
        if layer.kind == "avg_pool" and padded:
            out.append(_pitfall(f"{cls} 'same' never counts padded cells", "count-include-pad"))
        if n == 3:
            out.append(
                _pitfall(
                    f"TensorFlow has no float64 CPU kernel for {cls}: the translation runs in float32",
                    "keras-float64",
                )
            )
    return out


def _explicit_op(layer: Layer) -> tuple[int, ...]:
    from ..frameworks.base import explicit

    return explicit(layer).output_padding


register(NAME, keras_rules)
