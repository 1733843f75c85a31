"""TensorFlow's rules: what ``tf.nn`` refuses, what its own calls cannot say as written, and its traps.

TensorFlow writes a layer with ``tf.nn.conv1d`` / ``conv2d`` / ``conv3d``, ``tf.nn.conv{1,2,3}d_transpose``
(with an ``output_shape``), ``tf.nn.max_pool`` / ``avg_pool`` and ``tf.nn.pool`` (dilated windows), all in
the channels-last layouts ``NWC`` / ``NHWC`` / ``NDHWC`` — the CPU kernels refuse channels-first ones. Around
them the translation adds ``tf.pad``, slices, ``tf.split`` / ``tf.concat``, a kernel dilated with zeros or
a rescaling, so TensorFlow refuses only what it has no op for (errors):

* more than 3 spatial axes (``tf.nn.convolution`` and ``tf.nn.pool`` take 1 to 3).

What the single ``tf.nn`` call cannot take as written (``needs-workaround``, tested against TensorFlow):

* padding other than ``'SAME'`` / ``'VALID'`` (``conv2d``, ``conv2d_transpose`` and ``max_pool`` 1-d/2-d
  also take non-negative explicit pairs, a pool's smaller than its window); negative pads (crops);
* a ``padding_mode`` other than zeros whose padding a window reads (``tf.pad`` has ``REFLECT`` but no edge
  or wrap mode);
* ``Conv3D`` on CPU: no dilations, no groups (``conv1d``/``conv2d`` take groups as filter in-channels =
  input channels / groups); transposed convolutions: no groups at all, no dilations on CPU;
* a transposed convolution whose pads and ``output_padding`` are not what ``'SAME'``/``'VALID'`` (or
  explicit pairs for 2-d) give with ``output_shape`` set to the layer's output;
* pools: ``ceil_mode``; dilations only through ``tf.nn.pool`` with ``'VALID'`` at stride 1; an average
  whose divisor is not TensorFlow's (``'SAME'`` counts the window's cells inside the input, ``'VALID'``
  all its taps: ``count_include_pad``, ``divisor_override``).

:func:`plan` is the one decision both the rules and :mod:`convarith.frameworks.tf`'s ``emit`` read.
This module imports no framework.

Examples
--------
>>> from convarith import Layer, check
>>> [f.code for f in check(Layer("conv2d", 3, 8, kernel_size=3, stride=2, padding="same_tf"), framework="tf")]
[]
>>> [f.severity for f in check(Layer("conv4d", 1, 1, kernel_size=1), framework="tf")]
['error']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvArithError
from ..findings import Finding, finding, refusal
from ..layer import Layer, Pad
from . import register

if TYPE_CHECKING:
    from ..geometry.bound import AxisGeometry, BoundLayer

__all__ = ["Plan", "plan", "same_pads", "same_shifts", "tf_rules"]

_FW = "tf"
MODE_WORDS = {
    "reflect": "pads with tf.pad(mode='REFLECT') first",
    "replicate": "repeats the edge cells with tf.repeat + tf.concat first (tf.pad has no edge mode)",
    "circular": "wraps the input with tf.concat of its slices first (tf.pad has no wrap mode)",
}


def _workaround(what: str, workaround: str) -> Finding:
    return finding("needs-workaround", None, framework=_FW, what=what, workaround=workaround)


def _pitfall(what: str, entry: str) -> Finding:
    return finding("pitfall", None, framework=_FW, what=what, entry=entry)


def same_pads(size: int, extent: int, stride: int) -> Pad:
    """TensorFlow's ``'SAME'`` pads of one axis: ``⌈i/s⌉`` windows, the odd cell after.

    >>> same_pads(6, 3, 2), same_pads(5, 3, 2), same_pads(4, 1, 3)
    ((0, 1), (1, 1), (0, 0))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return (total // 2, total - total // 2)


def same_shifts(layer: Layer, spatial: Sequence[int] | None) -> bool:
    """Whether TensorFlow's 3-d kernels (``Conv3D``, ``MaxPool3D``, ``AvgPool3D``) compute this layer's
    ``'SAME'`` with its windows moved: they start them at half the padding *before* it is clamped at 0,
    so an axis whose windows need 2 or more cells fewer than the input (a stride 2 or more past the
    window) is read from the wrong cells (docs/pitfalls.md#tf-3d-same-shift). With no input size:
    whether some input size moves them. Conv2D, the 1-d and 2-d pools and the transposed kernels clamp.

    >>> same_shifts(Layer("conv3d", kernel_size=1, stride=(3, 1, 1)), (3, 4, 4))
    True
    >>> same_shifts(Layer("conv3d", kernel_size=1, stride=(3, 1, 1)), (4, 4, 4))
    False
    """
    if layer.ndim != 3 or layer.transposed:
        return False
    extents = layer.effective_kernel if layer.kind == "conv" else layer.kernel_size
    if spatial is None:
        return any(s - e >= 2 for e, s in zip(extents, layer.stride, strict=True))
    return any((-(-i // s) - 1) * s + e - i <= -2 for i, e, s in zip(spatial, extents, layer.stride, strict=True))


@dataclass
class Plan:
    """How the translation writes a layer in ``tf.nn``: the native call's padding and what goes around it.

    ``padding`` is ``'SAME'``, ``'VALID'`` or explicit ``(before, after)`` pairs (2-d, non-negative).
    ``before`` are ``(before, after)`` cells added (positive, zeros or -inf) or cropped (negative) on the
    input before the call; ``mode`` names a reflect/replicate/circular padding of ``mode_pads`` done
    instead; ``after`` the same on a transposed convolution's output (zeros); ``output`` the
    transposed call's ``output_shape`` spatial sizes (``None``: computed from the input in the code).
    """

    layer: Layer
    padding: str | tuple[Pad, ...] = "VALID"
    before: tuple[Pad, ...] = ()
    mode: str = "zeros"
    mode_pads: tuple[Pad, ...] = ()
    after: tuple[Pad, ...] = ()
    output: tuple[int, ...] | None = None
    """Transposed: the ``output_shape`` spatial sizes given to TensorFlow (``None`` without an input)."""
    output_extra: tuple[int, ...] = ()
    """Transposed: ``output_shape`` minus ``(i − 1)·s`` per axis (how the code computes it from ``x``)."""
    split: bool = False
    """Groups written as ``tf.split`` + ``tf.concat``."""
    dilate_kernel: bool = False
    """Dilation written as zeros between the kernel's taps (CPU kernels without dilations)."""
    pool_dilated: bool = False
    """A dilated pool through ``tf.nn.pool(dilations=…)`` ('VALID', stride 1)."""
    subsample: bool = False
    """Run at stride 1 and keep every ``s``-th output (tf.nn.pool: no strides with dilations)."""
    scale: bool = False
    """An average pool's sums rescaled by each window's own divisor (``taps / divisor``)."""
    dtype: str = "float64"
    notes: list[Finding] = field(default_factory=list)

    @property
    def fill(self) -> str:
        return "-inf" if self.layer.kind == "max_pool" else "zeros"


def _op_name(layer: Layer) -> str:
    n = layer.ndim
    if layer.kind == "conv":
        return f"tf.nn.conv{n}d"
    if layer.transposed:
        return f"tf.nn.conv{n}d_transpose"
    return "tf.nn.max_pool" if layer.kind == "max_pool" else "tf.nn.avg_pool"


def _reads_padding(bound: BoundLayer) -> bool:
    from ..geometry.coverage import read_summary

    for ax in bound.axes:
        before, after = ax.pad
        unread = read_summary(ax).unread_pad
        if max(before, 0) - unread[0] > 0 or max(after, 0) - unread[1] > 0:
            return True
    return False


def _direct_pads(layer: Layer, input_shape: Sequence[int] | None) -> tuple[Pad, ...]:
    from ..frameworks.base import explicit

    return explicit(layer, input_shape).pads


def _plan_conv(layer: Layer, bound: BoundLayer | None, input_shape: Sequence[int] | None) -> Plan:
    n, op = layer.ndim, _op_name(layer)
    p = Plan(layer)
    if n == 3 and layer.dilation != (1,) * n:
        p.dilate_kernel = True
        p.notes.append(
            _workaround(
                f"CPU Conv3D has no dilations (dilation={layer.dilation})",
                "convolves with the kernel dilated by zeros between its taps",
            )
        )
    if n == 3 and layer.groups > 1:
        p.split = True
        p.notes.append(
            _workaround(
                f"CPU Conv3D has no groups (groups={layer.groups}): its filter's in-channels must be the input's",
                "splits the channels (tf.split), convolves each group and concatenates (tf.concat)",
            )
        )
    mode = layer.padding_mode
    spatial = bound.input_spatial if bound is not None else None
    shifts = same_shifts(layer, spatial)
    if shifts and bound is None and layer.policy in ("same_tf", "same_upper"):
        raise ConvArithError(
            "input_shape", "is needed: Conv3D's 'SAME' moves these windows, so the pads are written out"
        )
    if mode == "zeros" or layer.policy == "valid":
        if layer.policy in ("same_tf", "same_upper") and not shifts:
            p.padding = "SAME"
            return p
        if layer.policy == "valid":
            p.padding = "VALID"
            return p
    pads = _direct_pads(layer, input_shape)
    folds = mode != "zeros" and (_reads_padding(bound) if bound is not None else any(max(q) > 0 for q in pads))
    if folds:
        p.mode, p.mode_pads, p.padding = mode, pads, "VALID"
        p.notes.append(_workaround(f"{op} pads with zeros only, not {mode!r}", MODE_WORDS[mode]))
        return p
    crops = tuple((min(b, 0), min(a, 0)) for b, a in pads)
    grow = tuple((max(b, 0), max(a, 0)) for b, a in pads)
    if any(b or a for b, a in crops):
        p.notes.append(_workaround(f"{op} pads must not be negative: {pads}", "crops the input by slicing first"))
    p.before = crops
    if not any(b or a for b, a in grow):
        p.padding = "VALID"
    elif _is_same(layer, grow, bound, crops):
        p.padding = "SAME"
    elif n == 2:
        p.padding = grow
    else:
        p.padding = "VALID"
        p.before = pads
        neither = "its 'SAME' moves these windows" if shifts else "are neither"
        p.notes.append(
            _workaround(
                f"{op} takes 'SAME' or 'VALID' (only conv2d takes explicit pairs); the pads {grow} {neither}",
                "pads the input with tf.pad first and convolves 'VALID'",
            )
        )
    return p


def _is_same(layer: Layer, grow: Sequence[Pad], bound: BoundLayer | None, crops: Sequence[Pad]) -> bool:
    """Whether these (non-negative) pads are TensorFlow's 'SAME' of the (cropped) input."""
    extents = layer.effective_kernel if layer.kind == "conv" else layer.kernel_size
    if bound is None:
        if layer.stride != (1,) * layer.ndim:
            return False
        return all(tuple(q) == same_pads(1, e, 1) for q, e in zip(grow, extents, strict=True))
    sizes = [i + b + a for i, (b, a) in zip(bound.input_spatial, crops, strict=True)]
    if same_shifts(layer, sizes):
        return False
    return all(tuple(q) == same_pads(i, e, s) for q, i, e, s in zip(grow, sizes, extents, layer.stride, strict=True))


def _plan_transposed(layer: Layer, bound: BoundLayer | None) -> Plan:
    from ..frameworks.base import explicit

    n, op = layer.ndim, _op_name(layer)
    p = Plan(layer)
    if layer.groups > 1:
        p.split = True
        p.notes.append(
            _workaround(
                f"{op} has no groups (groups={layer.groups})",
                "splits the channels (tf.split), transposes each group and concatenates (tf.concat)",
            )
        )
    if layer.dilation != (1,) * n:
        p.dilate_kernel = True
        p.notes.append(
            _workaround(
                f"the CPU kernel of {op} has no dilations (dilation={layer.dilation})",
                "uses the kernel dilated by zeros between its taps",
            )
        )
    resolved = explicit(layer)  # a transposed layer's pads do not depend on the input
    pads, extra = resolved.pads, resolved.output_padding
    strides, extents = layer.stride, layer.effective_kernel
    # r = o − (i − 1)s on each axis (the output's cells past the last input's stamp start)
    rs = [e + a - b - q for e, a, (b, q) in zip(extents, extra, pads, strict=True)]
    same = all(
        0 < r <= s and max(b + q - a, 0) // 2 == b for r, s, (b, q), a in zip(rs, strides, pads, extra, strict=True)
    )
    valid = all(b == 0 and 0 <= a - q <= s - 1 for (b, q), a, s in zip(pads, extra, strides, strict=True))
    pairs = all(b >= 0 and max(a - q, 0) <= s - 1 for (b, q), a, s in zip(pads, extra, strides, strict=True))
    if layer.policy == "same_tf" or same:
        p.padding, p.output_extra = "SAME", tuple(rs)
    elif valid:
        p.padding, p.output_extra = "VALID", tuple(rs)
    elif n == 2 and pairs:
        p.padding = tuple((b, max(q - a, 0)) for (b, q), a in zip(pads, extra, strict=True))
        p.output_extra = tuple(rs)
    else:
        p.padding = "VALID"
        p.output_extra = tuple(extents)
        # the stamps cover (i − 1)s + e cells; the layer's output starts at p_b and ends a − p_a after them
        p.after = tuple((-b, a - q) for (b, q), a in zip(pads, extra, strict=True))
        words = "'SAME' or 'VALID'" + (" or explicit pairs" if n == 2 else "")
        p.notes.append(
            _workaround(
                f"{op} computes a convolution's gradient for an output_shape: {words} cannot give the pads "
                f"{pads} with output_padding {extra}",
                "transposes 'VALID' onto the full stamps, then pads (tf.pad) or crops (slicing) the output and "
                "adds the bias after",
            )
        )
    if bound is not None:
        p.output = tuple((i - 1) * s + r for i, s, r in zip(bound.input_spatial, strides, p.output_extra, strict=True))
    return p


def _plan_pool(layer: Layer, bound: BoundLayer | None, input_shape: Sequence[int] | None) -> Plan:
    from ..ops.kernels import avg_divisor, axis_divisor

    n, op = layer.ndim, _op_name(layer)
    p = Plan(layer)
    if n == 3:
        p.dtype = "float32"
    dilated = layer.dilation != (1,) * n
    strided = layer.stride != (1,) * n
    if dilated:
        p.pool_dilated = True
        if strided:
            p.subsample = True
            p.notes.append(
                _workaround(
                    "tf.nn.pool refuses strides > 1 with dilations > 1",
                    "pools at stride 1 and keeps every stride-th window (slicing)",
                )
            )
    # ceil_mode as cells added to (or, for a window PyTorch drops, taken from) the padding after
    overhang = (0,) * n
    if layer.ceil_mode:
        if bound is None:
            if (
                strided
                or not layer.is_resolved
                or any(a >= e for (_, a), e in zip(layer.pads, layer.effective_kernel, strict=True))
            ):
                raise ConvArithError(
                    "input_shape", "is needed: ceil_mode's windows are written out as padding for an input"
                )
        else:
            overhang = tuple(_ceil_extra(ax) for ax in bound.axes)
            if any(overhang):
                p.notes.append(
                    _workaround(
                        "tf.nn pools have no ceil_mode",
                        "writes the last window's reach as padding after ("
                        + ("-inf)" if layer.kind == "max_pool" else "zeros, left out of the divisor)"),
                    )
                )
    native: str | tuple[Pad, ...] | None = None
    pads: tuple[Pad, ...] | None = None
    spatial = bound.input_spatial if bound is not None else None
    shifts = same_shifts(layer, spatial)
    if shifts and bound is None and layer.policy in ("same_tf", "same_upper"):
        raise ConvArithError(
            "input_shape", f"is needed: {op}'s 'SAME' moves these windows, so the pads are written out"
        )
    if not any(overhang) and not dilated and not shifts and layer.policy in ("same_tf", "same_upper"):
        native = "SAME"
    elif not any(overhang) and layer.policy == "valid":
        native = "VALID"
    else:
        pads = _direct_pads(layer, input_shape)
        grown = tuple((b, a + o) for (b, a), o in zip(pads, overhang, strict=True))
        crops = tuple((min(b, 0), min(a, 0)) for b, a in grown)
        grow = tuple((max(b, 0), max(a, 0)) for b, a in grown)
        if not any(b or a for b, a in crops):
            if not any(b or a for b, a in grow):
                native = "VALID"
            elif not dilated and not any(overhang) and _is_same(layer, grow, bound, crops):
                native = "SAME"
            elif (
                layer.kind == "max_pool"
                and n <= 2
                and not dilated
                and all(max(q) < k for q, k in zip(grow, layer.kernel_size, strict=True))
            ):
                native = grow
    if layer.kind == "avg_pool":
        if bound is None:
            ok = native == "VALID" and layer.divisor_override in (None, math.prod(layer.kernel_size))
            ok = ok or (native == "SAME" and not layer.count_include_pad and layer.divisor_override is None)
            if not ok and not (native == "VALID" and layer.is_resolved):
                raise ConvArithError(
                    "input_shape", "is needed: this average's divisor is written out for an input size"
                )
        elif native in ("SAME", "VALID"):
            want = avg_divisor(bound)
            if native == "SAME":  # TensorFlow counts the window's cells inside the input
                got = np.ones(())
                for ax in bound.axes:
                    got = np.multiply.outer(got, axis_divisor(ax, False))
                ok = bool((got == want).all())
            else:
                ok = bool((want == math.prod(layer.kernel_size)).all())
        else:
            ok = False
        if not ok:
            p.scale = True
            if native not in ("VALID", None) or pads is None:
                pads = pads if pads is not None else _direct_pads(layer, input_shape)
                native = None
            divisor = (
                f"divisor_override={layer.divisor_override}"
                if layer.divisor_override is not None
                else f"count_include_pad={layer.count_include_pad}"
            )
            p.notes.append(
                _workaround(
                    "tf.nn.avg_pool divides by the window's cells inside the input ('SAME') or by all its taps "
                    f"('VALID'), not as {divisor} does here",
                    "sums over the padded input 'VALID' and rescales by each window's own divisor",
                )
            )
    # 'SAME' refuses dilations only where they matter: a one-tap axis is not dilated
    gapped = any(d > 1 and k > 1 for k, d in zip(layer.kernel_size, layer.dilation, strict=True))
    if native is not None and not (gapped and native == "SAME"):
        p.padding = native
        return p
    assert pads is not None
    grown = tuple((b, a + o) for (b, a), o in zip(pads, overhang, strict=True))
    p.padding, p.before = "VALID", grown
    if any(min(q) < 0 for q in grown):
        p.notes.append(_workaround(f"{op} pads must not be negative: {grown}", "crops the input by slicing first"))
    if any(max(q) > 0 for q in grown) and not p.scale:
        words = "'SAME' or 'VALID'" + (" or explicit pairs smaller than the window (1-d, 2-d)" if n <= 2 else "")
        if layer.kind == "avg_pool":
            words = "'SAME' or 'VALID'"
        if dilated:
            words += " (with dilations: no 'SAME', and pairs pad zeros)"
        p.notes.append(
            _workaround(
                f"{op} takes {words}, not the pads {pads}",
                f"pads the input with tf.pad ({p.fill}) first and pools 'VALID'",
            )
        )
    return p


def _ceil_extra(ax: AxisGeometry) -> int:
    """Cells to add after (negative: take) so that 'VALID' gives a ceil_mode pool's windows on one axis."""
    floor = (ax.padded - ax.extent) // ax.stride + 1
    if ax.output == floor:
        return 0
    return (ax.output - 1) * ax.stride + ax.extent - ax.padded


def plan(layer: Layer, input_shape: Sequence[int] | None = None) -> Plan:
    """The translation's plan for a layer TensorFlow accepts (see the module docstring).

    >>> plan(Layer("conv1d", 1, 1, kernel_size=3, padding=[(1, 2)]), (1, 1, 8)).before
    ((1, 2),)
    >>> plan(Layer("conv_transpose2d", 4, 2, kernel_size=4, stride=2, padding=1), (1, 4, 8, 8)).padding
    'SAME'
    """
    if (
        layer.pooling
        and max(layer.stride) == 1
        and any(k == 1 < d for k, d in zip(layer.kernel_size, layer.dilation, strict=True))
    ):
        # a one-tap axis has no gaps: at stride 1 TensorFlow pools it as undilated ('SAME' included)
        undilated = tuple(1 if k == 1 else d for k, d in zip(layer.kernel_size, layer.dilation, strict=True))
        layer = layer.replace(dilation=undilated)
    bound = layer.bind(input_shape) if input_shape is not None else None
    if layer.kind == "conv":
        return _plan_conv(layer, bound, input_shape)
    if layer.transposed:
        return _plan_transposed(layer, bound)
    return _plan_pool(layer, bound, input_shape)


def _pitfalls(layer: Layer, bound: BoundLayer | None, p: Plan) -> list[Finding]:
    out: list[Finding] = []
    if layer.transposed:
        out.append(
            _pitfall(
                "tf.nn.conv*_transpose is the gradient of a convolution: it needs output_shape, its 'SAME' and "
                "'VALID' are the forward convolution's padding of that output, and its filter is "
                "(*k, out, in) where a convolution's is (*k, in, out)",
                "tf-conv-transpose",
            )
        )
    if layer.kind == "conv" and layer.groups > 1 and not p.split:
        out.append(
            _pitfall(
                f"groups={layer.groups} are implicit in tf.nn.conv{layer.ndim}d: the filter's in-channels are the "
                "input's divided by the groups",
                "tf-groups",
            )
        )
    if layer.kind == "conv" and layer.padding_mode == "replicate" and p.mode == "replicate":
        out.append(
            _pitfall(
                "PyTorch's 'replicate' repeats the edge cell; tf.pad has no such mode ('SYMMETRIC' mirrors with the "
                "edge, which equals it only for one cell)",
                "tf-pad-modes",
            )
        )
    if layer.kind == "max_pool" and any(max(q) > 0 for q in p.before):
        out.append(
            _pitfall(
                "tf.nn.max_pool of a window of -inf alone gives the lowest finite value (MaxPool starts from it), "
                "PyTorch -inf: the translation pads with -inf and maps that value back to -inf",
                "tf-max-pool-lowest",
            )
        )
    if layer.kind == "max_pool" and p.pool_dilated and any(max(q) > 0 for q in p.before):
        out.append(
            _pitfall(
                "tf.nn.pool with dilations pads explicit pairs with zeros (space_to_batch), not -inf: the "
                "translation pads with tf.pad (-inf) and pools 'VALID'",
                "tf-pool-dilated-pads",
            )
        )
    spatial = bound.input_spatial if bound is not None else None
    if layer.policy in ("same_tf", "same_upper") and same_shifts(layer, spatial):
        out.append(
            _pitfall(
                "TensorFlow's 3-d 'SAME' starts the windows at half an unclamped (negative) padding where the stride "
                "passes the window by 2 or more: the translation writes the pads out",
                "tf-3d-same-shift",
            )
        )
    if layer.pooling and layer.ndim == 3:
        out.append(
            _pitfall(
                "MaxPool3D and AvgPool3D have no float64 kernel on CPU: the translation runs in float32",
                "tf-float64",
            )
        )
    if layer.kind == "avg_pool" and p.scale and layer.divisor_override is None and layer.count_include_pad:
        out.append(
            _pitfall(
                "count_include_pad=True (PyTorch's default) counts the padding; TensorFlow's 'SAME' average does not",
                "count-include-pad",
            )
        )
    same = bound is not None and not layer.transposed and layer.policy in ("same_tf", "same_upper")
    if same and bound is not None and any(b != a for b, a in bound.pads):
        out.append(
            _pitfall(
                f"'SAME' pads {bound.pads} on this input: the odd cell after, and it depends on the input size "
                "at stride > 1",
                "tf-same-asymmetric",
            )
        )
    return out


def tf_rules(layer: Layer, input_shape: Sequence[int] | None) -> list[Finding]:
    """TensorFlow's refusals (errors), what its single calls cannot take as written (warnings), its traps (info)."""
    if layer.ndim > 3:
        name = "tf.nn.pool" if layer.pooling else "tf.nn.convolution"
        return [refusal(_FW, "op", f"{name} takes 1 to 3 spatial axes", layer.op)]
    bound = layer.bind(input_shape) if input_shape is not None else None
    try:
        p = plan(layer, input_shape)
    except ConvArithError:
        return []  # the plan needs the input size: nothing to say before it is known
    return p.notes + _pitfalls(layer, bound, p)


register(_FW, tf_rules)
