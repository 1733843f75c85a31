"""JAX's rules: what ``jax.lax`` refuses, what its own calls cannot say as written, and its traps.

JAX writes every layer with three ``lax`` calls: ``lax.conv_general_dilated`` (explicit
``(low, high)`` pairs, negative ones crop; ``'SAME'`` = TensorFlow's, ``'SAME_LOWER'``, ``'VALID'``;
``rhs_dilation``; ``feature_group_count``), the same call with ``lhs_dilation`` for a transposed
convolution (the kernel rotated 180° and its channel axes swapped per group), and
``lax.reduce_window`` for pools. Between them every layer convarith describes can be computed, so
the only refusal is a number XLA cannot hold (sizes are 64-bit integers). The warnings
(``needs-workaround``) name what the direct call cannot take as written, exactly when its result
would differ (tested against JAX):

* a convolution whose ``padding_mode`` is not ``zeros`` and whose windows read a padded cell —
  ``conv_general_dilated`` pads with zeros only (the translation pads with ``jnp.pad`` first);
* a grouped transposed convolution — ``lax.conv_transpose`` has no ``feature_group_count``;
* a pool whose ``ceil_mode`` changes its windows (adds a last one, or drops one that starts in the
  padding after) — ``reduce_window`` has no ``ceil_mode``;
* an average pool whose divisor is not the same for every window — ``lax`` has no average pool,
  and ``reduce_window(lax.add) / taps`` counts every tap.

The pitfalls (info) point at ``docs/pitfalls.md``. This module imports no framework.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import Finding, finding, refusal
from ..layer import Layer

if TYPE_CHECKING:
    from ..geometry.bound import AxisGeometry
from . import INT64_MAX, int64_refusals, register

__all__ = [
    "INT64_MAX",
    "avg_divisor_varies",
    "ceil_changes_windows",
    "ceil_needs_input",
    "floor_windows",
    "jax_rules",
    "reads_padding",
    "xla_swap_aborts",
]

_FW = "jax"
_JNP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _refuse(param: str, rule: str, value: object = None) -> Finding:
    return refusal(_FW, param, rule, value)


def _pitfall(what: str, entry: str) -> Finding:
    return finding("pitfall", None, framework=_FW, what=what, entry=entry)


def _workaround(what: str, workaround: str) -> Finding:
    return finding("needs-workaround", None, framework=_FW, what=what, workaround=workaround)


def reads_padding(layer: Layer, input_shape: Sequence[int]) -> bool:
    """Whether some window of a direct layer reads a cell of its (positive) padding on this input."""
    from ..geometry.coverage import read_summary

    for ax in layer.bind(input_shape).axes:
        before, after = ax.pad
        unread = read_summary(ax).unread_pad
        if max(before, 0) - unread[0] > 0 or max(after, 0) - unread[1] > 0:
            return True
    return False


def xla_swap_aborts(layer: Layer, input_shape: Sequence[int] | None) -> bool:
    """Whether XLA (jaxlib 0.10, CPU) aborts the process compiling this transposed convolution written
    as ``lax.conv_general_dilated`` with ``lhs_dilation`` (docs/pitfalls.md#xla-conv-swap-abort).

    Its convolution simplifier swaps input and kernel when the kernel is the larger (the product of
    the sizes over the axes it swaps) and keeps as they are the axes it takes for feature groups — an
    ``lhs_dilation`` equal to the kernel size with a window stride of one less: ``k = s = 2``, no
    dilation, no padding left (``p_before = 1``, ``p_after − output_padding = 1``). Such an axis's
    window then no longer fits the swapped kernel, unless the input is 2 cells long. With no input
    shape: whether some input shape aborts.

    >>> layer = Layer("conv_transpose2d", kernel_size=(3, 2), stride=(3, 2), padding=((2, 2), (1, 1)))
    >>> xla_swap_aborts(layer, (1, 1, 2, 4)), xla_swap_aborts(layer, (1, 1, 3, 4))
    (True, False)
    """
    if layer.kind != "conv_transpose" or layer.groups != 1:
        return False
    from ..frameworks.base import explicit

    resolved = explicit(layer, input_shape)
    group = []
    for k, s, d, (b, a), op in zip(
        layer.kernel_size, layer.stride, layer.dilation, resolved.pads, resolved.output_padding, strict=True
    ):
        group.append(k == s == 2 and d == 1 and b == 1 and a - op == 1)
    if not any(group):
        return False
    if input_shape is None:
        return True
    spatial = tuple(input_shape)[-layer.ndim :]
    if not any(g and i != 2 for g, i in zip(group, spatial, strict=True)):
        return False
    kernels = inputs = 1
    for g, i, k, s, d, (b, a), op in zip(
        group, spatial, layer.kernel_size, layer.stride, layer.dilation, resolved.pads, resolved.output_padding,
        strict=True,
    ):  # fmt: skip
        e = d * (k - 1) + 1
        low, high = e - 1 - b, e - 1 - a + op
        if g or (k == i and s == 1 and d == 1 and low == high == 0):
            continue  # a kept "feature group" axis, a pure contraction
        kernels *= k
        inputs *= k if i == 1 and d == 1 and low == high == k - 1 else i
    return kernels > inputs


def floor_windows(ax: AxisGeometry) -> int:
    """The windows ``lax.reduce_window`` gives on one axis of a direct layer: ``⌊(padded − e)/s⌋ + 1``."""
    return (ax.padded - ax.extent) // ax.stride + 1


def ceil_changes_windows(layer: Layer, input_shape: Sequence[int]) -> bool:
    """Whether a pool's ``ceil_mode`` gives another number of windows than the floor on some axis of this
    input: one more that reaches past the padded input, or (pads of a kernel or more) one fewer, as
    PyTorch drops a last window that starts in the padding after."""
    return (
        layer.pooling and layer.ceil_mode and any(ax.output != floor_windows(ax) for ax in layer.bind(input_shape).axes)
    )


def ceil_needs_input(layer: Layer) -> bool:
    """Whether a pool's ``ceil_mode`` may change its windows on some input (stride > 1, or pads after of a
    window's extent or more, or a policy): then writing it out needs the input shape."""
    if not (layer.pooling and layer.ceil_mode):
        return False
    if any(s > 1 for s in layer.stride) or not layer.is_resolved:
        return True
    return any(a >= e for (_, a), e in zip(layer.pads, layer.effective_kernel, strict=True))


def avg_divisor_varies(layer: Layer, input_shape: Sequence[int], count_include_pad: bool | None = None) -> bool:
    """Whether some window of an average pool divides by anything but its number of taps ``∏k``
    (``count_include_pad`` as given, the layer's own by default)."""
    from ..ops.kernels import axis_divisor

    include = layer.count_include_pad if count_include_pad is None else count_include_pad
    return any(bool((axis_divisor(ax, include) != ax.kernel).any()) for ax in layer.bind(input_shape).axes)


def _layer_rules(layer: Layer) -> list[Finding]:
    """Rules that do not depend on the input."""
    out: list[Finding] = []
    out += int64_refusals(_FW, layer, "XLA's sizes and windows are int64")
    if out:
        return out
    if layer.transposed:
        out.append(
            _pitfall(
                "lax.conv_transpose reads integer padding pairs as the padding of the lhs-dilated direct "
                "convolution (d(k − 1) − p before, d(k − 1) − p + output_padding after), not PyTorch's crop; "
                "its 'SAME'/'VALID' are the forward convolution's; it flips the kernel and swaps its channel "
                "axes only with transpose_kernel=True; its default layout is NHWC/HWIO where "
                "lax.conv_general_dilated's is NCHW/OIHW",
                "jax-conv-transpose",
            )
        )
        if layer.groups > 1:
            out.append(
                _workaround(
                    f"lax.conv_transpose has no feature_group_count (groups={layer.groups})",
                    "is lax.conv_general_dilated with lhs_dilation and feature_group_count, the kernel rotated "
                    "180° and its channel axes swapped within each group",
                )
            )
            out.append(
                _pitfall(
                    f"groups={layer.groups} in a transposed convolution: lax.conv_transpose, Keras and "
                    "TensorFlow have none",
                    "transposed-groups",
                )
            )
    return out


def _input_rules(layer: Layer, input_shape: Sequence[int]) -> list[Finding]:
    out: list[Finding] = []
    bound = layer.bind(input_shape)
    if max((*bound.input_shape, *bound.output_shape)) > INT64_MAX:
        return [_refuse("input_shape", "every size must fit in a 64-bit integer (XLA)", bound.output_shape)]
    for n, ax in enumerate(bound.axes):
        # what XLA computes on the way: the (stride-dilated, for a transposed layer) padded input, the window
        if ax.transposed:
            dilated = (ax.input - 1) * ax.stride + 1
            inner = [dilated, dilated + sum(ax.direct_pad), *map(abs, ax.direct_pad)]
        else:
            inner = [ax.padded]
        if max(*inner, ax.extent) > INT64_MAX:
            return [
                refusal(
                    _FW,
                    "padding",
                    "the padded input and the dilated kernel must fit in a 64-bit integer (XLA)",
                    max(*inner, ax.extent),
                    axis=n,
                )
            ]
    if layer.transposed:
        return out
    pads = bound.pads
    if layer.policy in ("same_tf", "same_upper") and any(b != a for b, a in pads):
        out.append(
            _pitfall(
                f"'SAME' pads {pads} on this input: TensorFlow's rule, the odd cell after, and it depends on "
                "the input size at stride > 1",
                "tf-same-asymmetric",
            )
        )
    if layer.kind == "conv" and layer.padding_mode != "zeros" and reads_padding(layer, input_shape):
        mode = layer.padding_mode
        out.append(
            _workaround(
                f"lax.conv_general_dilated pads with zeros only, not {mode!r}",
                f"pads with jnp.pad(mode={_JNP_MODE[mode]!r}) first (crops by slicing)",
            )
        )
    if layer.pooling and ceil_changes_windows(layer, input_shape):
        out.append(
            _workaround(
                "lax.reduce_window has no ceil_mode",
                "writes it as padding after: a last window's overhang (or less, for a window PyTorch drops) "
                + ("with -inf" if layer.kind == "max_pool" else "with zeros, left out of the divisor"),
            )
        )
        out.append(
            _pitfall(
                "ceil_mode adds a last window that reaches past the padded input (dropped when it would start "
                "in the padding after)",
                "pool-ceil-mode",
            )
        )
    if layer.kind == "avg_pool" and layer.divisor_override is None:
        if avg_divisor_varies(layer, input_shape):
            taps = math.prod(layer.kernel_size)
            out.append(
                _workaround(
                    f"lax has no average pool, and reduce_window(lax.add) / {taps} would divide every window "
                    "by all its taps",
                    "divides the window sums by a reduce_window count of the cells that count",
                )
            )
        if avg_divisor_varies(layer, input_shape, True) != avg_divisor_varies(layer, input_shape, False):
            out.append(
                _pitfall(
                    f"windows read padding, so count_include_pad={layer.count_include_pad} changes the divisor "
                    "(PyTorch and flax.linen.avg_pool count the padding by default, TensorFlow's 'SAME' does not)",
                    "count-include-pad",
                )
            )
    return out


def jax_rules(layer: Layer, input_shape: Sequence[int] | None) -> list[Finding]:
    """JAX's refusals (errors), what its direct calls cannot take as written (warnings), its traps (info)."""
    out = _layer_rules(layer)
    if any(f.severity == "error" for f in out):
        return out
    if xla_swap_aborts(layer, input_shape):
        out.append(
            _workaround(
                "XLA aborts the process compiling lhs_dilation 2 with a kernel of 2 and no padding beside a kernel "
                "larger than its input (docs/pitfalls.md#xla-conv-swap-abort)",
                "puts the zeros between the inputs with lax.pad instead of lhs_dilation",
            )
        )
    if input_shape is None:
        return out
    return out + _input_rules(layer, input_shape)


register(_FW, jax_rules)
