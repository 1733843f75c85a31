"""JAX: a layer as ``jax.lax`` calls, and ``lax`` calls written as text back as layers.

Every layer is a function of one argument built from three ``lax`` primitives, in JAX's default
``lax`` layout (channels first, ``NCHW`` inputs and ``OIHW`` kernels — the defaults of
``lax.conv_general_dilated``; note that ``lax.conv_transpose`` defaults to ``NHWC``/``HWIO``):

* a convolution is ``lax.conv_general_dilated`` (``'SAME'``/``'SAME_LOWER'``/``'VALID'`` where
  they mean the layer's padding, else explicit pairs — negative ones crop), after ``jnp.pad`` for
  the ``reflect``/``replicate``/``circular`` modes;
* a transposed convolution is the same call with ``lhs_dilation`` = the stride, the padding of
  the equivalent direct convolution ``(d(k−1) − p_b, d(k−1) − p_a + output_padding)`` and the
  kernel rotated by 180° with its channel axes swapped within each group (that kernel is JAX's
  layout of a transposed weight here, :attr:`Emitted.weight_out`); the ``lax.conv_transpose`` call
  that computes the same (no groups) is shown as a comment and a step;
* a pool is ``lax.reduce_window`` (``lax.max`` from ``-inf``; an average is the ``lax.add`` sums
  over the taps or over a ``reduce_window`` count of the cells that count), ``ceil_mode`` as extra
  padding after the input.

The built code turns on ``jax_enable_x64`` (``jax.config.update``) so that it runs in float64
on CPU, as :func:`apply` does: a process-wide JAX setting.

:func:`emit` and :func:`parse_call` are pure Python; JAX is imported only by :func:`version` and
:func:`apply`. JAX has no layer objects, so :func:`from_native` refuses every object.

Examples
--------
>>> from convarith import Layer
>>> emit(Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf", bias=False)).steps
("lax.conv_general_dilated(x, kernel, (2, 2), 'SAME')",)
>>> emit(Layer("conv_transpose1d", 4, 2, kernel_size=3, stride=2, padding=1, output_padding=1)).steps[0]
'lax.conv_general_dilated(x, kernel, (1,), ((1, 2),), lhs_dilation=(2,))'
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer, Pad
from ..rules.jax import floor_windows
from .base import Emitted, channels, explicit

if TYPE_CHECKING:
    from ..findings import Finding

Array = npt.NDArray[np.float64]

__all__ = [
    "LABEL",
    "NAME",
    "apply",
    "conv_transpose_form",
    "dimension_numbers",
    "emit",
    "findings",
    "from_native",
    "installed",
    "parse_call",
    "version",
]

NAME = "jax"
LABEL = "JAX"

_POLICY = {"valid": "'VALID'", "same_tf": "'SAME'", "same_upper": "'SAME'", "same_lower": "'SAME_LOWER'"}
_JNP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}
_IMPORTS = ("import jax", "import jax.numpy as jnp", "from jax import lax")
_X64 = 'jax.config.update("jax_enable_x64", True)  # float64 on CPU (JAX computes in float32 by default)'


def installed() -> bool:
    """Whether JAX is installed (looked up, not imported)."""
    from . import installed as _installed

    return _installed(NAME)


def version() -> str:
    """JAX's version (and jaxlib's)."""
    from importlib.metadata import version as distribution_version

    import jax

    return f"{jax.__version__} (jaxlib {distribution_version('jaxlib')})"


def findings(layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]:
    """JAX's refusals, warnings and pitfalls for ``layer`` (:func:`convarith.check`)."""
    from ..rules import check

    return list(check(layer, input_shape, framework=NAME))


def dimension_numbers(ndim: int) -> tuple[str, str, str]:
    """The channels-first dimension numbers of ``ndim`` spatial axes: ``('NCHW', 'OIHW', 'NCHW')`` for 2."""
    s = _SPATIAL[ndim] if ndim in _SPATIAL else "".join(chr(ord("A") + n) for n in range(ndim))
    return (f"NC{s}", f"OI{s}", f"NC{s}")


# -- writing code ---------------------------------------------------------------------------------


def _tuple(values: Sequence[object]) -> str:
    """A tuple literal, ``(2,)`` for one value."""
    return f"({values[0]!r},)" if len(values) == 1 else f"({', '.join(repr(v) for v in values)})"


def _pairs(pads: Sequence[Pad]) -> str:
    return _tuple([tuple(p) for p in pads])


def _stride_one(layer: Layer) -> bool:
    return all(s == 1 for s in layer.stride)


def _native_padding(layer: Layer, pads: Sequence[Pad]) -> str:
    """``'VALID'``/``'SAME'``/``'SAME_LOWER'`` when they give these pads on every input, else the pairs."""
    if all(p == (0, 0) for p in pads):
        return "'VALID'"
    if _stride_one(layer):
        reach = [e - 1 for e in layer.effective_kernel]
        if list(pads) == [(r // 2, r - r // 2) for r in reach]:
            return "'SAME'"
        if list(pads) == [(r - r // 2, r // 2) for r in reach]:
            return "'SAME_LOWER'"
    return _pairs(pads)


def _crop(n: int, pads: Sequence[Pad]) -> str:
    """``[:, :, 1:-2]``: a slice of the spatial axes that crops the negative pads."""
    parts = [":", ":"]
    for before, after in pads:
        lo, hi = max(-before, 0), max(-after, 0)
        parts.append(f"{lo or ''}:{-hi if hi else ''}")
    return f"[{', '.join(parts)}]"


def _jnp_pad(pads: Sequence[Pad], mode: str) -> str:
    widths = _tuple([(0, 0), (0, 0), *((max(b, 0), max(a, 0)) for b, a in pads)])
    return f"jnp.pad(x, {widths}, mode={_JNP_MODE[mode]!r})"


def _kwargs(**named: str | None) -> str:
    return "".join(f", {k}={v}" for k, v in named.items() if v is not None)


def _bias_lines(layer: Layer, c_out: int) -> list[str]:
    if not layer.bias:
        return []
    ones = ", ".join(["1"] * layer.ndim)
    return [f"bias = jnp.asarray(b if b is not None else np.zeros({c_out})).reshape(-1, {ones})"]


def _conv(layer: Layer, input_shape: Sequence[int] | None) -> tuple[list[str], list[str], str, str]:
    """Build lines, steps, weight_in and weight_out of a direct convolution."""
    from ..rules.jax import reads_padding

    n = layer.ndim
    _, c_out = channels(layer, input_shape)
    mode = layer.padding_mode
    pre: list[str] = []
    if mode != "zeros":
        resolved = explicit(layer, input_shape)
        pads = resolved.pads
        folds = reads_padding(layer, input_shape) if input_shape is not None else any(max(b, a) > 0 for b, a in pads)
    else:
        folds = False
    if folds:
        positive = any(max(b, a) > 0 for b, a in pads)
        crops = any(min(b, a) < 0 for b, a in pads)
        if mode == "circular" and crops:
            pre.append(f"x = x{_crop(n, pads)}")  # PyTorch crops first, then wraps what is left
        if positive:
            pre.append(f"x = {_jnp_pad(pads, mode)}")
        if mode != "circular" and crops:
            pre.append(f"x = x{_crop(n, pads)}")  # reflect / replicate over the whole input, then crop
        padding = "'VALID'"
    elif layer.policy in _POLICY:
        padding = _POLICY[layer.policy]
    else:
        padding = _native_padding(layer, explicit(layer, input_shape).pads)
    ones = (1,) * n
    call = "lax.conv_general_dilated(x, kernel, {}, {}{})".format(
        _tuple(layer.stride),
        padding,
        _kwargs(
            rhs_dilation=_tuple(layer.dilation) if layer.dilation != ones else None,
            feature_group_count=str(layer.groups) if layer.groups != 1 else None,
        ),
    )
    build = [
        _X64,
        f"kernel = jnp.asarray(w)  # (out, in/groups, *k): lax's default {dimension_numbers(n)[1]!r}",
        *_bias_lines(layer, c_out),
        "def layer(x):",
        *(f"    {line}" for line in pre),
        f"    return {call}" + (" + bias" if layer.bias else ""),
    ]
    steps = [line.split("  #")[0].removeprefix("x = ") for line in pre] + [call]
    if layer.bias:
        steps.append("+ bias")
    return build, steps, "", "w"


def _transposed_kernel(layer: Layer, c_in: int, c_out: int) -> tuple[str, str]:
    """weight_out (neutral → the direct kernel, OIHW) and weight_in (its inverse) of a transposed layer."""
    n, g = layer.ndim, layer.groups
    axes = _tuple(list(range(2, 2 + n)))
    k = ", ".join(map(str, layer.kernel_size))
    if g == 1:
        return f"np.flip(w, {axes}).swapaxes(0, 1)", f"w = np.flip(w.swapaxes(0, 1), {axes})"
    out = (
        f"np.flip(w, {axes}).reshape({g}, {c_in // g}, {c_out // g}, {k})"
        f".swapaxes(1, 2).reshape({c_out}, {c_in // g}, {k})"
    )
    back = (
        f"w = np.flip(w.reshape({g}, {c_out // g}, {c_in // g}, {k})"
        f".swapaxes(1, 2).reshape({c_in}, {c_out // g}, {k}), {axes})"
    )
    return out, back


def conv_transpose_form(layer: Layer) -> str | None:
    """The ``lax.conv_transpose`` call (kernel ``w`` in PyTorch's layout) equal to a transposed layer,
    or ``None`` with groups (it has no ``feature_group_count``).

    Its ``'SAME'`` is ``same_tf``; its ``'VALID'`` is padding 0 with ``output_padding``
    ``max(s − d(k−1) − 1, 0)``; integer pairs are the direct convolution's padding.

    >>> conv_transpose_form(Layer("conv_transpose2d", kernel_size=3, stride=2, padding="same_tf"))
    "lax.conv_transpose(x, w, (2, 2), 'SAME', dimension_numbers=('NCHW', 'OIHW', 'NCHW'), transpose_kernel=True)"
    """
    if layer.groups != 1:
        return None
    resolved = explicit(layer)
    pads, a = resolved.pads, resolved.output_padding
    extents, strides = layer.effective_kernel, layer.stride
    totals = [max(e - s, 0) for e, s in zip(extents, strides, strict=True)]
    same = [(t // 2, t - t // 2) for t in totals]
    lift = [max(s - e, 0) for e, s in zip(extents, strides, strict=True)]
    if list(pads) == same and list(a) == lift:
        padding = "'SAME'"
    elif all(p == (0, 0) for p in pads) and list(a) == lift:
        padding = "'VALID'"
    else:
        direct = [(e - 1 - b, e - 1 - p + op) for e, (b, p), op in zip(extents, pads, a, strict=True)]
        padding = _pairs(direct)
    ones = (1,) * layer.ndim
    dilation = _kwargs(rhs_dilation=_tuple(layer.dilation) if layer.dilation != ones else None)
    return (
        f"lax.conv_transpose(x, w, {_tuple(strides)}, {padding}{dilation}, "
        f"dimension_numbers={dimension_numbers(layer.ndim)}, transpose_kernel=True)"
    )


def _conv_transpose(layer: Layer, input_shape: Sequence[int] | None) -> tuple[list[str], list[str], str, str]:
    n = layer.ndim
    c_in, c_out = channels(layer, input_shape)
    resolved = explicit(layer, input_shape)
    direct = [
        (e - 1 - b, e - 1 - p + op)
        for e, (b, p), op in zip(layer.effective_kernel, resolved.pads, resolved.output_padding, strict=True)
    ]
    from ..rules.jax import xla_swap_aborts

    ones = (1,) * n
    # XLA aborts on some lhs_dilation (docs/pitfalls.md#xla-conv-swap-abort): the zeros put in by lax.pad there
    spread = layer.stride != ones and xla_swap_aborts(layer, input_shape)
    source = "x"
    if spread:
        interior = _tuple([(0, 0, 0), (0, 0, 0), *((0, 0, s - 1) for s in layer.stride)])
        source = f"lax.pad(x, 0.0, {interior})"
    call = "lax.conv_general_dilated({}, kernel, {}, {}{})".format(
        source,
        _tuple(ones),
        _pairs(direct),
        _kwargs(
            lhs_dilation=_tuple(layer.stride) if layer.stride != ones and not spread else None,
            rhs_dilation=_tuple(layer.dilation) if layer.dilation != ones else None,
            feature_group_count=str(layer.groups) if layer.groups != 1 else None,
        ),
    )
    weight_out, weight_in = _transposed_kernel(layer, c_in, c_out)
    build = [
        _X64,
        "# the equivalent direct convolution: zeros between the inputs (lhs_dilation), the padding",
        "# (d(k-1) - p_before, d(k-1) - p_after + output_padding), the kernel rotated 180 degrees with",
        "# its channel axes swapped in each group: (out, in/groups, *k)",
        f"kernel = jnp.asarray({weight_out})",
        *_bias_lines(layer, c_out),
    ]
    alternative = None if spread else conv_transpose_form(layer)
    if alternative is not None:
        build.append(f"# the same as {alternative}")
    build += ["def layer(x):", f"    return {call}" + (" + bias" if layer.bias else "")]
    steps = [call]
    if layer.bias:
        steps.append("+ bias")
    if alternative is not None:
        steps.append(f"# = {alternative}")
    return build, steps, weight_in, weight_out


def _pool(layer: Layer, input_shape: Sequence[int] | None) -> tuple[list[str], list[str], str, str]:
    from ..rules.jax import avg_divisor_varies, ceil_changes_windows, ceil_needs_input

    n = layer.ndim
    kind = layer.kind
    if input_shape is None and ceil_needs_input(layer):
        raise ConvArithError("input_shape", "is needed: ceil_mode's windows are written out as padding for an input")
    # ceil_mode as cells added to (a dropped window: taken from) the padding after, on the axes it changes
    overhang = [0] * n
    if layer.ceil_mode and input_shape is not None and ceil_changes_windows(layer, input_shape):
        overhang = [
            (ax.output - 1) * ax.stride + ax.extent - ax.padded if ax.output != floor_windows(ax) else 0
            for ax in layer.bind(input_shape).axes
        ]
    if any(overhang) or layer.policy not in _POLICY:
        pads = explicit(layer, input_shape).pads
        grown = [(b, a + o) for (b, a), o in zip(pads, overhang, strict=True)]
        padding = _native_padding(layer, grown) if not any(overhang) else _pairs(grown)
        if padding.startswith("("):
            padding = _pairs([(0, 0), (0, 0), *grown])
    else:
        pads = None
        padding = _POLICY[str(layer.policy)]
    window = _tuple([1, 1, *layer.kernel_size])
    strides = _tuple([1, 1, *layer.stride])
    dilation = _tuple([1, 1, *layer.dilation]) if layer.dilation != (1,) * n else None
    extra = _kwargs(window_dilation="window_dilation" if dilation else None)
    build = [_X64, f"window, strides, padding = {window}, {strides}, {padding}"]
    if dilation:
        build.append(f"window_dilation = {dilation}")
    shown = f"{window}, {strides}, {padding}" + _kwargs(window_dilation=dilation)
    if kind == "max_pool":
        build += [
            "def layer(x):",
            f"    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, padding{extra})",
        ]
        return build, [f"lax.reduce_window(x, -jnp.inf, lax.max, {shown})"], "", "w"
    sums = f"lax.reduce_window(x, 0.0, lax.add, window, strides, padding{extra})"
    steps = [f"lax.reduce_window(x, 0.0, lax.add, {shown})"]
    taps = math.prod(layer.kernel_size)
    if layer.divisor_override is not None:
        divisor = str(layer.divisor_override)
    elif input_shape is not None:
        divisor = "counts" if avg_divisor_varies(layer, input_shape) else str(taps)
    elif layer.count_include_pad or (layer.is_resolved and all(max(p) <= 0 for p in layer.pads)):
        divisor = str(taps)  # no ceil_mode window here: every window counts all its taps
    else:
        divisor = "counts"
    body = ["def layer(x):", f"    sums = {sums}"]
    if divisor == "counts":
        ones = "jnp.ones_like(x[:1, :1])"
        if layer.count_include_pad:
            # the padded input counts, ceil_mode's overhang does not
            if pads is None:
                pads = explicit(layer, input_shape).pads
            config = _tuple([(0, 0, 0), (0, 0, 0), *((b, a, 0) for b, a in pads)])
            reach = _pairs([(0, 0), (0, 0), *((0, o) for o in overhang)])
            counted = (
                f"lax.reduce_window(lax.pad({ones}, 1.0, {config}), 0.0, lax.add, window, strides, {reach}{extra})"
            )
            steps.append(
                f"/ lax.reduce_window(lax.pad(ones, 1.0, {config}), 0.0, lax.add, {window}, {strides}, {reach})"
            )
        else:
            counted = f"lax.reduce_window({ones}, 0.0, lax.add, window, strides, padding{extra})"
            steps.append(f"/ lax.reduce_window(ones, 0.0, lax.add, {shown})  # the input cells of each window")
        body += [f"    counts = {counted}", "    return sums / counts"]
    else:
        body.append(f"    return sums / {divisor}")
        steps.append(f"/ {divisor}")
    return build + body, steps, "", "w"


def emit(layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted:
    """``layer`` as a function of one ``NCHW`` array built from ``lax`` calls (see the module notes).

    >>> from convarith import Layer
    >>> emit(Layer("max_pool2d", kernel_size=3, stride=2, padding="same_tf")).steps
    ("lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), 'SAME')",)
    >>> for step in emit(Layer("conv1d", 2, 2, kernel_size=3, padding=1, padding_mode="circular"), (1, 2, 5)).steps:
    ...     print(step)
    jnp.pad(x, ((0, 0), (0, 0), (1, 1)), mode='wrap')
    lax.conv_general_dilated(x, kernel, (1,), 'VALID')
    + bias
    """
    from ..rules import raise_refusals

    raise_refusals(layer, input_shape, framework=NAME)
    notes = tuple(f for f in findings(layer, input_shape) if f.severity != "error")
    if layer.kind == "conv":
        build, steps, weight_in, weight_out = _conv(layer, input_shape)
    elif layer.kind == "conv_transpose":
        build, steps, weight_in, weight_out = _conv_transpose(layer, input_shape)
    else:
        build, steps, weight_in, weight_out = _pool(layer, input_shape)
    return Emitted(
        framework=NAME,
        imports=_IMPORTS,
        build="\n".join(build),
        call="layer(x)",
        layout="channels_first",
        steps=tuple(steps),
        weight_in=weight_in,
        weight_out=weight_out,
        findings=notes,
        dtype="float64",
    )


def apply(emitted: Emitted, made: Any, input: Array) -> Array:
    """Run the built function on a float64 ``(N, C, *spatial)`` input (turns on ``jax_enable_x64``)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]
    # one compiled computation for the whole layer (op by op, XLA compiles each primitive apart)
    out = jax.jit(made)(jnp.asarray(np.ascontiguousarray(input, dtype=np.float64)))
    return np.asarray(out, dtype=np.float64)


def from_native(obj: object) -> Layer:
    """JAX has no layer objects: its layers are ``lax`` calls (read them as text with :func:`parse_call`).

    >>> from_native(print)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: source: JAX has no layer objects; give the lax call as a string ...
    """
    raise ConvArithError(
        "source",
        "JAX has no layer objects; give the lax call as a string such as "
        "\"lax.conv_general_dilated((1, 3, 32, 32), (16, 3, 3, 3), (2, 2), 'SAME')\"",
        type(obj).__name__,
    )


# -- reading calls ------------------------------------------------------------------------------------

_SIGNATURES: dict[str, tuple[str, ...]] = {
    "conv_general_dilated": (
        "lhs",
        "rhs",
        "window_strides",
        "padding",
        "lhs_dilation",
        "rhs_dilation",
        "dimension_numbers",
        "feature_group_count",
        "batch_group_count",
        "precision",
        "preferred_element_type",
    ),
    "conv": ("lhs", "rhs", "window_strides", "padding", "precision", "preferred_element_type"),
    "conv_with_general_padding": (
        "lhs",
        "rhs",
        "window_strides",
        "padding",
        "lhs_dilation",
        "rhs_dilation",
        "precision",
        "preferred_element_type",
    ),
    "conv_transpose": (
        "lhs",
        "rhs",
        "strides",
        "padding",
        "rhs_dilation",
        "dimension_numbers",
        "transpose_kernel",
        "precision",
        "preferred_element_type",
        "use_consistent_padding",
    ),
    "reduce_window": (
        "operand",
        "init_value",
        "computation",
        "window_dimensions",
        "window_strides",
        "padding",
        "base_dilation",
        "window_dilation",
    ),
}
_STRING_POLICY = {"VALID": "valid", "SAME": "same_tf", "SAME_LOWER": "same_lower"}


def _ints(name: str, value: object, count: int, default: int | None = None) -> tuple[int, ...]:
    if value is None and default is not None:
        return (default,) * count
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * count
    if not isinstance(value, tuple) or len(value) != count or not all(isinstance(v, int) for v in value):
        raise ConvArithError(name, f"must be {count} integers", value)
    return value


def _shape(name: str, value: object, rank: int) -> tuple[int, ...] | None:
    """An array written as its shape (``None`` for a name such as ``x``)."""
    from .syntax import Unknown

    if isinstance(value, Unknown):
        return None
    if not isinstance(value, tuple) or len(value) != rank or not all(isinstance(v, int) for v in value):
        raise ConvArithError(name, f"must be written as its shape, {rank} integers", value)
    return value


def _specs(value: object, rank: int, default: tuple[str, str, str] | None) -> tuple[str, str, str]:
    if value is None:
        if default is None:
            raise ConvArithError("dimension_numbers", "is needed", value)
        return default
    if not isinstance(value, tuple) or len(value) != 3 or not all(isinstance(v, str) for v in value):
        raise ConvArithError("dimension_numbers", "must be three strings such as ('NCHW', 'OIHW', 'NCHW')", value)
    lhs, rhs, out = value
    spatial = [c for c in rhs if c not in "OI"]
    for spec, pair in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        if (
            len(spec) != rank
            or len(set(spec)) != rank
            or not all(spec.count(c) == 1 for c in pair)
            or set(spec) - set(pair) != set(spatial)
        ):
            raise ConvArithError(
                "dimension_numbers", f"must name N, C (O, I) and the same {rank - 2} spatial axes", value
            )
    return (lhs, rhs, out)


def _padding(value: object, n: int) -> str | tuple[Pad, ...]:
    if isinstance(value, str):
        if value.upper() not in _STRING_POLICY:
            raise ConvArithError("padding", "must be 'SAME', 'SAME_LOWER', 'VALID' or (low, high) pairs", value)
        return value.upper()
    if (
        isinstance(value, tuple)
        and len(value) == n
        and all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in value)
    ):
        return tuple((p[0], p[1]) for p in value)
    raise ConvArithError("padding", f"must be a string or {n} (low, high) pairs", value)


def _transposed_from_direct(
    extents: Sequence[int], strides: Sequence[int], dilation: Sequence[int], direct: Sequence[Pad]
) -> tuple[tuple[Pad, ...], tuple[int, ...]]:
    """A transposed layer's (pads, output_padding) from its direct convolution's padding: the smallest
    ``output_padding`` below ``max(s, d)`` that keeps the padding after non-negative."""
    pads: list[Pad] = []
    extra: list[int] = []
    for e, s, d, (b, a) in zip(extents, strides, dilation, direct, strict=True):
        op = min(max(a - (e - 1), 0), max(s, d) - 1)
        pads.append((e - 1 - b, e - 1 - a + op))
        extra.append(op)
    return tuple(pads), tuple(extra)


def parse_call(call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """A ``lax`` convolution, transposed convolution or max pool written as text (literals only) as a layer.

    Arrays are written as their shapes in the call's own layout (its ``dimension_numbers``); the
    input shape is returned in convarith's ``(N, C, *spatial)``. ``lax.conv_general_dilated`` with
    ``lhs_dilation`` is a transposed convolution; ``lax.conv_transpose``'s defaults are ``NHWC`` /
    ``HWIO`` (TensorFlow's). ``lax.reduce_window`` is read when its computation is ``lax.max``
    (a max pool); a window sum is not a layer by itself.

    >>> import ast
    >>> text = "lax.conv_general_dilated((1, 3, 32, 32), (16, 3, 3, 3), (2, 2), 'SAME')"
    >>> parse_call(ast.parse(text).body[0].value, text)
    (Layer('conv2d', 3, 16, kernel_size=3, stride=2, padding='same_tf', bias=False), (1, 3, 32, 32))
    >>> text = "jax.lax.conv_transpose(x, (3, 3, 8, 4), (2, 2), 'SAME')"
    >>> parse_call(ast.parse(text).body[0].value, text)
    (Layer('conv_transpose2d', 8, 4, kernel_size=3, stride=2, padding='same_tf', bias=False), None)
    """
    from .syntax import call_name, literal_arguments

    name = call_name(call)
    leaf = name.rsplit(".", 1)[-1]
    if leaf not in _SIGNATURES or name.split(".")[0] not in ("lax", "jax", leaf):
        raise ConvArithError(
            "source",
            "is not a JAX lax.conv_general_dilated, lax.conv, lax.conv_with_general_padding, "
            "lax.conv_transpose or lax.reduce_window call",
            name,
        )
    if leaf == "reduce_window":
        return _parse_reduce_window(call, source)
    values = literal_arguments(call, _SIGNATURES[leaf], source)
    rhs = values.get("rhs")
    if not isinstance(rhs, tuple) or len(rhs) < 3:
        raise ConvArithError("rhs", "must be written as the kernel's shape (at least 3 integers)", rhs)
    rank = len(rhs)
    n = rank - 2
    transposed_call = leaf == "conv_transpose"
    default_specs = (
        (f"N{_SPATIAL.get(n, '')}C", f"{_SPATIAL.get(n, '')}IO", f"N{_SPATIAL.get(n, '')}C")
        if transposed_call
        else dimension_numbers(n)
    )
    if transposed_call and n not in _SPATIAL:
        raise ConvArithError("dimension_numbers", "lax.conv_transpose has no default beyond 3 spatial axes", None)
    lhs_spec, rhs_spec, _ = _specs(values.get("dimension_numbers"), rank, default_specs)
    spatial = [c for c in rhs_spec if c not in "OI"]
    kernel = tuple(rhs[rhs_spec.index(c)] for c in spatial)
    o, i = rhs[rhs_spec.index("O")], rhs[rhs_spec.index("I")]
    lhs = _shape("lhs", values.get("lhs"), rank)
    input_shape = None
    if lhs is not None:
        input_shape = (lhs[lhs_spec.index("N")], lhs[lhs_spec.index("C")], *(lhs[lhs_spec.index(c)] for c in spatial))
    dilation = _ints("rhs_dilation", values.get("rhs_dilation"), n, 1)
    if values.get("batch_group_count", 1) not in (1, None):
        raise ConvArithError(
            "batch_group_count", "is not a layer's parameter (it is the weight gradient's)", values["batch_group_count"]
        )
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if transposed_call:
        strides = _ints("strides", values.get("strides"), n)
        flipped = values.get("transpose_kernel", False) is True
        c_in, c_out = (o, i) if flipped else (i, o)
        padding = _padding(values.get("padding"), n)
        params: dict[str, Any] = {"stride": strides, "dilation": dilation}
        if padding == "SAME":
            params["padding"] = "same_tf"
        elif padding == "VALID":
            params["padding"] = 0
            params["output_padding"] = tuple(max(s - e, 0) for s, e in zip(strides, extents, strict=True))
        elif isinstance(padding, str):
            raise ConvArithError("padding", "lax.conv_transpose takes 'SAME', 'VALID' or pairs", padding)
        elif values.get("use_consistent_padding", False) is True:
            params["padding"] = padding
        else:
            params["padding"], params["output_padding"] = _transposed_from_direct(extents, strides, dilation, padding)
        layer = Layer(f"conv_transpose{n}d", c_in, c_out, kernel, bias=False, **params)
        return layer, input_shape
    groups = values.get("feature_group_count", 1)
    if not isinstance(groups, int) or isinstance(groups, bool):
        raise ConvArithError("feature_group_count", "must be an integer", groups)
    strides = _ints("window_strides", values.get("window_strides"), n)
    lhs_dilation = _ints("lhs_dilation", values.get("lhs_dilation"), n, 1)
    padding = _padding(values.get("padding"), n)
    if any(d > 1 for d in lhs_dilation):
        if any(s != 1 for s in strides):
            raise ConvArithError(
                "window_strides", "with lhs_dilation must be 1 to be a transposed convolution", strides
            )
        if isinstance(padding, str):
            raise ConvArithError(
                "padding", "with lhs_dilation must be (low, high) pairs (JAX refuses strings)", padding
            )
        pads, extra = _transposed_from_direct(extents, lhs_dilation, dilation, padding)
        layer = Layer(
            f"conv_transpose{n}d",
            i * groups,
            o,
            kernel,
            stride=lhs_dilation,
            padding=pads,
            output_padding=extra,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        return layer, input_shape
    layer = Layer(
        f"conv{n}d",
        i * groups,
        o,
        kernel,
        stride=strides,
        padding=_STRING_POLICY[padding] if isinstance(padding, str) else padding,
        dilation=dilation,
        groups=groups,
        bias=False,
    )
    return layer, input_shape


def _parse_reduce_window(call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """``lax.reduce_window(x, -jnp.inf, lax.max, window, strides, padding, window_dilation=…)``."""
    from .syntax import call_name, literal_arguments

    positional = _SIGNATURES["reduce_window"]
    nodes = dict(zip(positional, call.args, strict=False))
    nodes.update({k.arg: k.value for k in call.keywords if k.arg is not None})
    computation = nodes.get("computation")
    reducer = ""
    if isinstance(computation, ast.Attribute | ast.Name):
        reducer = call_name(ast.Call(func=computation, args=[], keywords=[])).rsplit(".", 1)[-1]
    if reducer != "max":
        raise ConvArithError(
            "computation",
            "only lax.max is read as a layer (a max pool); a sum over windows is an average pool only once "
            "divided: write that layer with convarith.Layer('avg_pool2d', ...)",
            ast.unparse(computation) if computation is not None else None,
        )
    stripped = ast.Call(
        func=call.func,
        args=[
            a if k not in ("init_value", "computation") else ast.Constant(None)
            for k, a in zip(positional, call.args, strict=False)
        ],
        keywords=[
            k if k.arg not in ("init_value", "computation") else ast.keyword(k.arg, ast.Constant(None))
            for k in call.keywords
        ],
    )
    values = literal_arguments(stripped, positional, source)
    window = values.get("window_dimensions")
    if not isinstance(window, tuple) or len(window) < 3:
        raise ConvArithError("window_dimensions", "must give the window on every axis, N and C included", window)
    rank = len(window)
    strides = _ints("window_strides", values.get("window_strides"), rank, 1)
    dilation = _ints("window_dilation", values.get("window_dilation"), rank, 1)
    if any(v != 1 for v in _ints("base_dilation", values.get("base_dilation"), rank, 1)):
        raise ConvArithError(
            "base_dilation", "is not a pooling layer's parameter; it must be 1", values.get("base_dilation")
        )
    raw = values.get("padding", "VALID")
    padding = _padding(raw, rank)
    if isinstance(padding, str) and values.get("window_strides") is None:
        raise ConvArithError(
            "window_strides",
            f"must be given with padding {raw!r}: lax.reduce_window computes its pads with no strides and fails",
        )

    def trivial(axis: int) -> bool:
        flat = padding[axis] == (0, 0) if not isinstance(padding, str) else True
        return window[axis] == strides[axis] == dilation[axis] == 1 and flat

    if trivial(0) and trivial(1):
        batch, chan, axes = 0, 1, list(range(2, rank))
    elif trivial(0) and trivial(rank - 1):
        batch, chan, axes = 0, rank - 1, list(range(1, rank - 1))
    else:
        raise ConvArithError("window_dimensions", "must be 1 (stride 1, no padding) on N and C, first or last", window)
    n = rank - 2
    operand = _shape("operand", values.get("operand"), rank)
    input_shape = None if operand is None else (operand[batch], operand[chan], *(operand[a] for a in axes))
    layer = Layer(
        f"max_pool{n}d",
        kernel_size=tuple(window[a] for a in axes),
        stride=tuple(strides[a] for a in axes),
        padding=_STRING_POLICY[padding] if isinstance(padding, str) else tuple(padding[a] for a in axes),
        dilation=tuple(dilation[a] for a in axes),
    )
    return layer, input_shape
