"""Keras 3: the adapter (a layer as Keras layers, run on the backend of the current process) and
Keras layers and layer strings read back as layers.

A layer becomes the Keras layer itself where Keras can hold it (``Conv*D``, ``Conv*DTranspose``,
``MaxPooling*D``, ``AveragePooling*D`` with ``'valid'`` / ``'same'`` / ``'causal'`` and, for
transposed layers, the ``output_padding`` Keras' own rule needs), else a ``keras.Sequential`` or a
functional ``keras.Model`` with the pieces Keras needs (:mod:`convarith.rules.keras`):
``ZeroPadding*D`` / ``Cropping*D``, ``keras.ops.pad`` with ``-inf`` before a max pool, a rescale by
each window's count after an average, ``Rescaling(offset=bias)`` after cells a transposed layer did
not write, one ``Conv*DTranspose`` per group, concatenated, and the equal direct ``Conv*D`` for a
dilated transposed convolution.

Inputs are ``channels_last`` (Keras' default; TensorFlow's CPU kernels refuse ``channels_first``
convolutions). Keras picks its backend once per process (``KERAS_BACKEND``): :func:`apply` runs in
the current one; :func:`run_case` is the entry point for a worker of another backend
(:func:`convarith.frameworks.worker.worker_for`). Layers run in float64 (on JAX the emitted code
turns on ``jax_enable_x64``, without which Keras computes in float32 silently), except 3-d pools,
which TensorFlow's CPU kernels have in float32 only.

:func:`emit` and :func:`parse_call` are pure Python; ``keras`` is imported only to build, run and read.

Examples
--------
>>> from convarith import Layer
>>> emit(Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf")).steps
("keras.layers.Conv2D(16, 3, strides=2, padding='same')",)
>>> emit(Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1)).steps
("keras.layers.Conv2DTranspose(32, 4, strides=2, padding='same')",)
>>> emit(Layer("conv_transpose1d", 8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)).steps
('keras.layers.Conv1DTranspose(4, 3, strides=2)', 'keras.layers.Cropping1D((1, 0))')
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer, Pad
from ..rules.keras import direct_padding, keras_transposed_crops, pool_padding, transposed_form
from .base import Emitted, channels, explicit, short

if TYPE_CHECKING:
    from ..findings import Finding

Array = npt.NDArray[np.float64]

__all__ = [
    "LABEL",
    "NAME",
    "apply",
    "emit",
    "findings",
    "from_native",
    "installed",
    "parse_call",
    "run_case",
    "run_cases",
    "separable",
    "version",
]

NAME = "keras"
LABEL = "Keras 3"

_PRELUDE = (
    'if keras.backend.backend() == "jax":  # without x64 JAX computes float64 layers in float32, silently\n'
    "    import jax\n"
    '    jax.config.update("jax_enable_x64", True)'
)


def installed() -> bool:
    """Whether Keras is installed (looked up, not imported)."""
    from . import installed as _installed

    return _installed(NAME)


def version() -> str:
    """Keras' version and the backend of this process."""
    import keras

    return f"keras {keras.__version__} ({keras.backend.backend()} backend)"


def findings(layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]:
    """Keras' refusals, workarounds and pitfalls for ``layer`` (:func:`convarith.check`)."""
    from ..rules import check

    return list(check(layer, input_shape, framework=NAME))


# -- emit --------------------------------------------------------------------------------------------


def _pairs(pairs: Sequence[Pad]) -> str:
    """A ZeroPadding / Cropping argument: one pair in 1-d, a tuple of pairs otherwise."""
    if len(pairs) == 1:
        return str(tuple(pairs[0]))
    return str(tuple(tuple(p) for p in pairs))


def _spatial_first(n: int) -> str:
    """``(2, …, n + 1, 1, 0)``: convarith's ``(out, in, *k)`` / ``(in, out, *k)`` to Keras'
    ``(*k, in, out)`` / ``(*k, out, in)``."""
    return ", ".join(str(a) for a in [*range(2, n + 2), 1, 0])


@dataclass
class _Plan:
    """The pieces of the translation, in order: ``(kind, code)`` with kind ``layer`` (a variable
    holding a Keras layer), ``op`` (an expression of the tensor ``t``) or ``block`` (statements
    taking ``t`` to ``t``); ``steps`` in Keras' words."""

    n: int
    dtype: str
    build: list[str] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    channels: int | None = None

    def layer(self, name: str, call: str, step: str | None = None, built: Sequence[str] = ()) -> None:
        """A Keras layer ``name = keras.layers.…`` (``call`` without the dtype)."""
        self.build.append(f'{name} = {call[:-1]}{", " if not call.endswith("()") else ""}dtype="{self.dtype}")')
        self.build.extend(built)
        self.stages.append(("layer", name))
        self.steps.append(step or call)

    def pad(self, pairs: Sequence[Pad]) -> None:
        grow = [(max(b, 0), max(a, 0)) for b, a in pairs]
        if any(b or a for b, a in grow):
            k = len(self.stages)
            self.layer(f"pad{k}", f"keras.layers.ZeroPadding{self.n}D({_pairs(grow)})")

    def crop(self, pairs: Sequence[Pad]) -> None:
        cut = [(max(b, 0), max(a, 0)) for b, a in pairs]
        if any(b or a for b, a in cut):
            k = len(self.stages)
            self.layer(f"crop{k}", f"keras.layers.Cropping{self.n}D({_pairs(cut)})")

    def code(self) -> str:
        lines = list(self.build)
        if len(self.stages) == 1 and self.stages[0][0] == "layer":
            lines.append(f"layer = {self.stages[0][1]}")
        c = "None" if self.channels is None else str(self.channels)
        if len(self.stages) == 1 and self.stages[0][0] == "layer":
            pass
        elif all(kind == "layer" for kind, _ in self.stages):
            # the input's dtype: without it a Sequential casts its input to float32
            first = f'keras.Input(shape=({"None, " * self.n}{c}), dtype="{self.dtype}")'
            lines.append(f"layer = keras.Sequential([{', '.join([first, *(code for _, code in self.stages)])}])")
        else:
            lines.append(f'x_in = keras.Input(shape=({"None, " * self.n}{c}), dtype="{self.dtype}")')
            lines.append("t = x_in")
            for kind, code in self.stages:
                if kind == "layer":
                    lines.append(f"t = {code}(t)")
                elif kind == "op":
                    lines.append(f"t = {code}")
                else:
                    lines.append(code)
            lines.append("layer = keras.Model(x_in, t)")
        return "\n".join(lines)


def _conv_call(cls: str, positional: Sequence[str], named: dict[str, str]) -> str:
    return f"keras.layers.{cls}({', '.join([*positional, *(f'{k}={v}' for k, v in named.items())])})"


def _load(name: str, c_in: int, n: int, weight: str, bias: str | None) -> list[str]:
    """Build a layer for ``c_in`` channels and load ``weight`` (an expression) and the bias."""
    lines = [f"{name}.build((None, {'None, ' * n}{c_in}))"]
    if bias is None:
        lines.append(f"{name}.set_weights([{weight}])")
    else:
        lines.append(f"{name}.set_weights([{weight}, {bias}])")
    return lines


def emit(layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted:
    """``layer`` as Keras layers: the layer itself where Keras holds it as written, else a
    ``Sequential`` or functional ``Model`` with the pads, crops and splits it needs.

    >>> from convarith import Layer
    >>> emit(Layer("conv1d", 2, 4, kernel_size=3, padding=[(2, 0)])).steps
    ("keras.layers.Conv1D(4, 3, padding='causal')",)
    >>> emit(Layer("max_pool2d", kernel_size=2, padding=1), (1, 3, 5, 5)).steps[0]
    'keras.ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-inf)'
    """
    from ..rules import raise_refusals

    raise_refusals(layer, input_shape, framework=NAME)
    notes = tuple(f for f in findings(layer, input_shape) if f.severity != "error")
    n = layer.ndim
    dtype = "float32" if layer.pooling and n == 3 else "float64"
    plan = _Plan(n, dtype)
    given = tuple(input_shape) if input_shape is not None else ()
    plan.channels = layer.in_channels if layer.in_channels is not None else (given[-n - 1] if len(given) > n else None)
    if layer.kind == "conv":
        c_in, c_out = channels(layer, input_shape)
        _emit_conv(plan, layer, input_shape, c_in, c_out, "w")
    elif layer.kind == "conv_transpose":
        _emit_transposed(plan, layer, input_shape)
    else:
        _emit_pool(plan, layer, input_shape)
    w_layout = f"w.transpose({_spatial_first(n)})" if layer.weighted else "w"
    back = ", ".join(str(a) for a in [n + 1, n, *range(n)])
    return Emitted(
        framework=NAME,
        imports=("import keras",),
        build=_PRELUDE + "\n" + plan.code(),
        call="layer(x)",
        layout="channels_last",
        steps=tuple(plan.steps),
        weight_in=f"w = w.transpose({back})" if layer.weighted else "",
        weight_out=w_layout,
        findings=notes,
        dtype=dtype,
    )


def _emit_conv(plan: _Plan, layer: Layer, input_shape: Sequence[int] | None, c_in: int, c_out: int, w: str) -> None:
    """A direct convolution; ``w`` is the expression of its weight in convarith's layout."""
    n = layer.ndim
    plan.channels = c_in
    try:
        pads: Sequence[Pad] | None = explicit(layer, input_shape).pads
    except ConvArithError:
        pads = None  # 'same' at a stride, no input: Keras' 'same' is exactly that policy
    spatial = layer.bind(input_shape).input_spatial if input_shape is not None else None
    padding = direct_padding(layer, pads, spatial)
    depthwise = layer.groups == c_in and max(layer.stride) > 1 and max(layer.dilation) > 1
    if padding == "causal" and depthwise:  # DepthwiseConv1D takes no 'causal': its pads written out
        padding = None
    if padding is None:
        if pads is None:
            raise ConvArithError("input_shape", f"is needed: Keras pads {layer.padding!r} explicitly for an input size")
        # pad first, then crop: a crop of a whole small input beside a pad (Keras refuses it) stays legal
        plan.pad(pads)
        plan.crop([(-b, -a) for b, a in pads])
        padding = "valid"
    named: dict[str, str] = {}
    if layer.stride != (1,) * n:
        named["strides"] = short(layer.stride)
    if padding != "valid":
        named["padding"] = repr(padding)
    if layer.dilation != (1,) * n:
        named["dilation_rate"] = short(layer.dilation)
    bias = f"np.zeros({c_out}) if b is None else b" if layer.bias else None
    if depthwise:
        m = c_out // c_in
        if m != 1:
            named["depth_multiplier"] = str(m)
        if not layer.bias:
            named["use_bias"] = "False"
        call = _conv_call(f"DepthwiseConv{n}D", [short(layer.kernel_size)], named)
        k = ", ".join(map(str, layer.kernel_size))
        weight = f"{w}.reshape({c_in}, {m}, {k}).transpose({', '.join(str(a) for a in [*range(2, n + 2), 0, 1])})"
    else:
        if layer.groups != 1:
            named["groups"] = str(layer.groups)
        if not layer.bias:
            named["use_bias"] = "False"
        call = _conv_call(f"Conv{n}D", [str(c_out), short(layer.kernel_size)], named)
        weight = f"{w}.transpose({_spatial_first(n)})"
    plan.layer("core", call, built=_load("core", c_in, n, weight, bias))


def _emit_transposed(plan: _Plan, layer: Layer, input_shape: Sequence[int] | None) -> None:
    n = layer.ndim
    c_in, c_out = channels(layer, input_shape)
    resolved = explicit(layer, input_shape)
    pads, extra = resolved.pads, resolved.output_padding
    g = layer.groups
    if max(layer.dilation) > 1 or (g > 1 and layer.stride == (1,) * n):
        # stride 1: the direct convolution of the input padded by d(k−1) − p, kernel flipped and
        # the channel axes swapped within each group
        reach = [e - 1 for e in layer.effective_kernel]
        direct = Layer(
            f"conv{n}d",
            c_in,
            c_out,
            layer.kernel_size,
            padding=[(r - b, r - a + x) for r, (b, a), x in zip(reach, pads, extra, strict=True)],
            dilation=layer.dilation,
            groups=g,
            bias=layer.bias,
        )
        k = ", ".join(map(str, layer.kernel_size))
        flip = ", ".join(str(a) for a in range(2, n + 2))
        w = (
            f"np.flip(w.reshape({g}, {c_in // g}, {c_out // g}, {k}).swapaxes(1, 2)"
            f".reshape({c_out}, {c_in // g}, {k}), axis=({flip},))"
        )
        shape = input_shape if input_shape is not None else None
        plan.steps.append("the kernel flipped and its channel axes swapped per group (a direct kernel)")
        _emit_conv(plan, direct, shape, c_in, c_out, w)
        return
    form = transposed_form(layer, pads, extra)
    net = [(b, a - x) for (b, a), x in zip(pads, extra, strict=True)]
    named: dict[str, str] = {}
    if layer.stride != (1,) * n:
        named["strides"] = short(layer.stride)
    if form is not None:
        padding, output_padding = form
    else:
        padding = "valid"
        default = all(e >= s for e, s in zip(layer.effective_kernel, layer.stride, strict=True))
        output_padding = None if default else (0,) * n  # None: Keras adds max(s − e, 0) cells
    if padding != "valid":
        named["padding"] = repr(padding)
    if output_padding is not None:
        named["output_padding"] = short(output_padding)
    if form is None:
        have = [
            keras_transposed_crops(e, s, "valid", 0) for e, s in zip(layer.effective_kernel, layer.stride, strict=True)
        ]
        rest = [(b - hb, a - ha) for (b, a), (hb, ha) in zip(net, have, strict=True)]
    else:
        rest = [(0, 0)] * n
    extends = any(min(p) < 0 for p in rest)
    late_bias = layer.bias and extends  # cells added after the layer need the bias too
    bias_here = layer.bias and not late_bias
    if not bias_here:
        named["use_bias"] = "False"
    if g == 1:
        call = _conv_call(f"Conv{n}DTranspose", [str(c_out), short(layer.kernel_size)], named)
        bias = f"np.zeros({c_out}) if b is None else b" if bias_here else None
        plan.layer("core", call, built=_load("core", c_in, n, f"w.transpose({_spatial_first(n)})", bias))
    else:
        ci, co = c_in // g, c_out // g
        call = _conv_call(f"Conv{n}DTranspose", [str(co), short(layer.kernel_size)], named)
        plan.channels = c_in
        lines = ["parts = []", f"for g in range({g}):  # one {call.split('(')[0]} per group"]
        lines.append(f'    part = {call[:-1]}, dtype="{plan.dtype}")')
        lines.append(f"    part.build((None, {'None, ' * n}{ci}))")
        wg = f"w[g * {ci}:(g + 1) * {ci}].transpose({_spatial_first(n)})"
        if bias_here:
            bg = f"(np.zeros({c_out}) if b is None else b)[g * {co}:(g + 1) * {co}]"
            lines.append(f"    part.set_weights([{wg}, {bg}])")
        else:
            lines.append(f"    part.set_weights([{wg}])")
        lines.append(f"    parts.append(part(t[..., g * {ci}:(g + 1) * {ci}]))")
        lines.append(f't = keras.layers.Concatenate(dtype="{plan.dtype}")(parts)  # default: float32')
        plan.stages.append(("block", "\n".join(lines)))
        plan.steps.append(f"x[..., g * {ci}:(g + 1) * {ci}] for g in range({g}) → {call}")
        plan.steps.append("keras.layers.Concatenate()")
    # pad first, then crop: every intermediate keeps a cell
    plan.pad([(-b, -a) for b, a in rest])
    plan.crop(rest)
    if late_bias:
        plan.layer(
            "add_bias",
            f"keras.layers.Rescaling(1.0, offset=np.zeros({c_out}) if b is None else b)",
            step="keras.layers.Rescaling(1.0, offset=bias)",
        )


def _emit_pool(plan: _Plan, layer: Layer, input_shape: Sequence[int] | None) -> None:
    n = layer.ndim
    bound = layer.bind(input_shape) if input_shape is not None else None
    cls = f"{'MaxPooling' if layer.kind == 'max_pool' else 'AveragePooling'}{n}D"
    named: dict[str, str] = {}
    if layer.stride != layer.kernel_size:
        named["strides"] = short(layer.stride)
    native = pool_padding(layer, bound)
    if native is not None:
        if native != "valid":
            named["padding"] = repr(native)
        plan.layer("core", _conv_call(cls, [short(layer.kernel_size)], named))
        return
    if bound is None:
        try:
            resolved = explicit(layer)
        except ConvArithError:
            resolved = None
        if resolved is None or layer.ceil_mode or layer.kind == "avg_pool":
            raise ConvArithError("input_shape", f"is needed: Keras' {cls} padding is written out for an input size")
        pads, overhang = resolved.pads, [0] * n
    else:
        # ceil_mode: to where the last window ends (past the input, or short of it where PyTorch
        # drops a window that would start in the padding)
        pads, overhang = bound.pads, [ax.last_window_end if layer.ceil_mode else 0 for ax in bound.axes]
    plan.channels = bound.in_channels if bound is not None else layer.in_channels
    ends = [(b, a + o) for (b, a), o in zip(pads, overhang, strict=True)]
    cut = [(-b, -a) for b, a in ends]  # cropped after the padding: a crop of a whole small input is refused
    reach = [(max(b, 0), max(a, 0)) for b, a in ends]
    named["padding"] = "'valid'"
    core = _conv_call(cls, [short(layer.kernel_size)], named)
    if layer.kind == "max_pool":
        if any(b or a for b, a in reach):
            full = str(((0, 0), *reach, (0, 0)))
            plan.stages.append(("op", f"keras.ops.pad(t, {full}, constant_values=-np.inf)"))
            plan.steps.append(f"keras.ops.pad(x, {full}, constant_values=-inf)")
            plan.crop(cut)
            plan.layer("core", core)
            # TensorFlow's MaxPool gives the lowest finite value for a window of -inf alone
            # (docs/pitfalls.md#tf-max-pool-lowest): map it back
            lowest = f"np.array(np.finfo(np.{plan.dtype}).min, np.{plan.dtype})"
            plan.stages.append(
                ("op", f"keras.ops.where(keras.ops.equal(t, {lowest}), np.array(-np.inf, np.{plan.dtype}), t)")
            )
            plan.steps.append("-inf where the backend gives the lowest finite value")
            return
        plan.crop(cut)
        plan.layer("core", core)
        return
    plan.pad(reach)
    plan.crop(cut)
    plan.layer("core", core)
    include = layer.count_include_pad and not any(overhang) and layer.divisor_override is None
    if include:
        return  # zeros padded in, every window divided by its size: PyTorch's count_include_pad
    assert bound is not None
    taps = math.prod(layer.kernel_size)
    if layer.divisor_override is not None:
        # an array: the torch backend makes a Python float a float32 tensor before promoting it
        plan.build.append(f"scale = np.array({taps} / {layer.divisor_override}, np.{plan.dtype})")
        shown = f"× {taps} / {layer.divisor_override}"
    else:
        from ..ops.kernels import axis_divisor

        counts = [axis_divisor(ax, layer.count_include_pad).tolist() for ax in bound.axes]
        plan.build.append(f"counts = {counts}  # per axis: the cells each window averages")
        plan.build.append("with np.errstate(divide='ignore'):")
        plan.build.append(f"    scale = {taps} / np.prod(np.meshgrid(*counts, indexing='ij'), axis=0)")
        plan.build.append(f"scale = scale.reshape(1, *scale.shape, 1).astype(np.{plan.dtype})")
        shown = f"× {taps} / each window's count"
    plan.stages.append(("op", "keras.ops.multiply(t, scale)"))
    plan.steps.append(shown)


# -- running -------------------------------------------------------------------------------------------


def apply(emitted: Emitted, made: Any, input: Array) -> Array:
    """Run the built layer or model on a float64 ``(N, C, *spatial)`` input in this process's backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]
    x = np.moveaxis(np.asarray(input, dtype=np.float64), 1, -1).astype(emitted.dtype)
    y = keras.ops.convert_to_numpy(made(keras.ops.convert_to_tensor(x, dtype=emitted.dtype)))
    return np.moveaxis(np.asarray(y, dtype=np.float64), -1, 1)


def run_case(
    layer_data: dict[str, object],
    input_shape: Sequence[int],
    x: npt.ArrayLike,
    w: npt.ArrayLike | None = None,
    b: npt.ArrayLike | None = None,
) -> Array:
    """Emit, build and apply a layer (given as :meth:`Layer.to_dict`) in this process's backend:
    what a worker of another backend calls by name."""
    from .base import build

    layer = Layer.from_dict(layer_data)
    emitted = emit(layer, tuple(input_shape))
    made = build(emitted, None if w is None else np.asarray(w, np.float64), None if b is None else np.asarray(b))
    return apply(emitted, made, np.asarray(x, np.float64))


def run_cases(cases: Sequence[tuple[dict[str, object], Sequence[int], int]]) -> list[dict[str, object]]:
    """Many cases in one call: ``(layer dict, input shape, seed)`` each, the arrays drawn from the
    seed by :func:`~convarith.frameworks.base.random_arrays`; each answer is
    ``{"out": array, "dtype": …}`` or ``{"error": "Type: message"}``."""
    from .base import random_arrays

    out: list[dict[str, object]] = []
    for data, shape, seed in cases:
        layer = Layer.from_dict(data)
        bound = layer.bind(tuple(shape))
        x, w, b = random_arrays(bound, seed)
        try:
            got = run_case(data, bound.input_shape, x, w, b)
            out.append({"out": got, "dtype": emit(layer, bound.input_shape).dtype})
        except Exception as err:
            first = (str(err).strip().splitlines() or [""])[0]
            out.append({"error": f"{type(err).__name__}: {first[:300]}"})
    return out


# -- reading Keras back ------------------------------------------------------------------------------

_POSITIONAL: dict[str, tuple[str, ...]] = {
    "Conv": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
        "activation",
        "use_bias",
    ),
    "ConvTranspose": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "DepthwiseConv": (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "SeparableConv": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "depth_multiplier",
        "activation",
        "use_bias",
    ),
    "Pool": ("pool_size", "strides", "padding", "data_format", "name"),
}
_NAME = re.compile(
    r"(Conv|DepthwiseConv|SeparableConv)([123])D(Transpose)?|(MaxPooling|AveragePooling|MaxPool|AvgPool)([123])D"
)


def _tuple(value: object, n: int, param: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, tuple | list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(int(v) for v in value)
        return values * n if len(values) == 1 else values
    raise ConvArithError(param, f"must be an integer or {n} integers", value)


def _padding(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in ("valid", "same", "causal"):
        raise ConvArithError("padding", "must be 'valid', 'same' or 'causal' (Keras)", repr(value))
    return value.lower()


def _transposed_padding(
    kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], padding: str, op: object
) -> dict[str, Any]:
    """A Keras transposed layer's ``padding`` and ``output_padding`` as convarith's."""
    n = len(kernel)
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if padding == "same" and op is None:
        return {"padding": "same_tf"}
    ops = None if op is None else _tuple(op, n, "output_padding")
    if padding == "valid":
        extra = ops if ops is not None else tuple(max(e, s) - e for e, s in zip(extents, stride, strict=True))
        return {"padding": 0, "output_padding": extra}
    assert ops is not None
    pairs, extras = [], []
    for e, s, a in zip(extents, stride, ops, strict=True):
        before, after = keras_transposed_crops(e, s, "same", a)
        pairs.append((before, max(after, 0)))
        extras.append(max(-after, 0))
    return {"padding": pairs, "output_padding": tuple(extras)}


def _layer_from(cls: str, n: int, transposed: bool, values: dict[str, Any], in_channels: int | None) -> Layer:
    """The layer a Keras class with these constructor values is (``cls``: Conv, DepthwiseConv, Pool kinds)."""
    activation = values.get("activation")
    if activation not in (None, "linear") and getattr(activation, "__name__", "") != "linear":
        raise ConvArithError(
            "activation", "convarith reads the convolution alone: apply the activation apart", activation
        )
    if values.get("data_format") not in (None, "channels_last", "channels_first"):
        raise ConvArithError("data_format", "must be 'channels_last' or 'channels_first'", values.get("data_format"))
    if cls in ("MaxPooling", "AveragePooling", "MaxPool", "AvgPool"):
        kind = "max_pool" if cls.startswith("Max") else "avg_pool"
        pool = _tuple(values.get("pool_size", 2), n, "pool_size")
        strides = values.get("strides")
        stride = pool if strides is None else _tuple(strides, n, "strides")
        padding = _padding(values.get("padding", "valid"))
        if padding == "causal":
            raise ConvArithError("padding", "a Keras pool takes 'valid' or 'same'", "'causal'")
        params: dict[str, Any] = {
            "kernel_size": pool,
            "stride": stride,
            "padding": "same_tf" if padding == "same" else 0,
        }
        if kind == "avg_pool":
            params["count_include_pad"] = False  # Keras never counts padded cells
        return Layer(f"{kind}{n}d", in_channels, None, **params)
    if "kernel_size" not in values:
        raise ConvArithError("kernel_size", "is required", None)
    kernel = _tuple(values["kernel_size"], n, "kernel_size")
    stride = _tuple(values.get("strides", 1), n, "strides")
    dilation = _tuple(values.get("dilation_rate", 1), n, "dilation_rate")
    padding = _padding(values.get("padding", "valid"))
    bias = bool(values.get("use_bias", True))
    if transposed:
        filters = values.get("filters")
        if padding == "causal":
            raise ConvArithError("padding", "a Keras transposed convolution takes 'valid' or 'same'", "'causal'")
        return Layer(
            f"conv_transpose{n}d",
            in_channels,
            filters,
            kernel,
            stride=stride,
            dilation=dilation,
            bias=bias,
            **_transposed_padding(kernel, stride, dilation, padding, values.get("output_padding")),
        )
    if padding == "causal" and n != 1:
        raise ConvArithError("padding", "'causal' is Conv1D's only", "'causal'")
    policy: Any = {"valid": 0, "same": "same_tf", "causal": "causal"}[padding]
    if cls == "DepthwiseConv":
        if in_channels is None:
            raise ConvArithError(
                "in_channels",
                "is needed: a DepthwiseConv's groups are its input channels (build it, or give input_shape=…)",
            )
        m = values.get("depth_multiplier", 1)
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ConvArithError("depth_multiplier", "must be a positive integer", m)
        return Layer(
            f"conv{n}d",
            in_channels,
            in_channels * m,
            kernel,
            stride=stride,
            padding=policy,
            dilation=dilation,
            groups=in_channels,
            bias=bias,
        )
    groups = values.get("groups", 1)
    return Layer(
        f"conv{n}d",
        in_channels,
        values.get("filters"),
        kernel,
        stride=stride,
        padding=policy,
        dilation=dilation,
        groups=groups,
        bias=bias,
    )


def _match(name: str) -> tuple[str, int, bool]:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ConvArithError(
            "source",
            "must be a Keras Conv*D, Conv*DTranspose, DepthwiseConv*D, SeparableConv*D, MaxPooling*D or "
            "AveragePooling*D",
            name,
        )
    if match.group(1):
        return match.group(1), int(match.group(2)), bool(match.group(3))
    return match.group(4), int(match.group(5)), False


def from_native(obj: object) -> Layer:
    """A Keras layer object as a layer (its input channels read from its kernel when built).

    ``SeparableConv*D`` is two layers: read it with :func:`separable`.
    """
    cls, n, transposed = _match(type(obj).__name__)
    if cls == "SeparableConv":
        raise ConvArithError("source", "a SeparableConv is two layers (depthwise, pointwise): read it with separable()")
    if transposed and cls != "Conv":
        raise ConvArithError("source", "is not a Keras layer convarith reads", type(obj).__name__)
    values = {
        k: getattr(obj, k)
        for k in (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "dilation_rate",
            "groups",
            "use_bias",
            "output_padding",
            "depth_multiplier",
            "pool_size",
            "data_format",
        )
        if hasattr(obj, k)
    }
    values["activation"] = getattr(getattr(obj, "activation", None), "__name__", None)
    if values["activation"] == "linear":
        values["activation"] = None
    if cls in ("MaxPooling", "AveragePooling", "MaxPool", "AvgPool"):
        return _layer_from(cls, n, False, values, None)
    in_channels: int | None = None
    if getattr(obj, "built", False):
        kernel = obj.kernel  # type: ignore[attr-defined]
        shape = tuple(int(d) for d in kernel.shape)
        if transposed:
            in_channels = shape[-1]
        elif cls == "DepthwiseConv":
            in_channels = shape[-2]
        else:
            in_channels = shape[-2] * int(values.get("groups", 1))
    return _layer_from(cls, n, transposed, values, in_channels)


def separable(obj: object) -> tuple[Layer, Layer]:
    """A built ``SeparableConv*D`` (or its text with ``input_shape=…``) as its two layers: the
    depthwise convolution (``groups`` = input channels, no bias) and the pointwise ``1×…×1`` one.

    >>> separable("keras.layers.SeparableConv1D(8, 3, strides=2, depth_multiplier=2, input_shape=(10, 3))")
    (Layer('conv1d', 3, 6, kernel_size=3, stride=2, groups=3, bias=False), Layer('conv1d', 6, 8, kernel_size=1))
    """
    if isinstance(obj, str):
        from .syntax import call_name, literal_arguments, parse_source

        call = parse_source(obj)
        cls, n, _ = _match(call_name(call).rsplit(".", 1)[-1])
        if cls != "SeparableConv":
            raise ConvArithError("source", "is not a SeparableConv*D call", obj[:80])
        values = literal_arguments(call, _POSITIONAL["SeparableConv"], obj)
        shape = _input_shape(values, n)
        c_in = shape[0] if shape is not None else None
    else:
        cls, n, _ = _match(type(obj).__name__)
        if cls != "SeparableConv":
            raise ConvArithError("source", "is not a Keras SeparableConv*D", type(obj).__name__)
        values = {
            k: getattr(obj, k)
            for k in (
                "filters",
                "kernel_size",
                "strides",
                "padding",
                "dilation_rate",
                "depth_multiplier",
                "use_bias",
                "data_format",
            )
        }
        c_in = int(obj.depthwise_kernel.shape[-2]) if getattr(obj, "built", False) else None  # type: ignore[attr-defined]
    if c_in is None:
        raise ConvArithError("in_channels", "is needed: build the SeparableConv or give input_shape=…")
    m = int(values.get("depth_multiplier", 1))  # type: ignore[call-overload]
    depth = _layer_from("DepthwiseConv", n, False, {**values, "use_bias": False, "depth_multiplier": m}, c_in)
    point = Layer(f"conv{n}d", c_in * m, values.get("filters"), 1, bias=bool(values.get("use_bias", True)))  # type: ignore[arg-type]
    return depth, point


def _input_shape(values: dict[str, object], n: int) -> tuple[int, ...] | None:
    """``input_shape=…`` of a layer string (without the batch) as ``(C, *spatial)``."""
    shape = values.get("input_shape")
    if shape is None:
        return None
    if not isinstance(shape, tuple) or len(shape) != n + 1 or not all(isinstance(d, int) for d in shape):
        raise ConvArithError("input_shape", f"must be {n + 1} integers (the input without its batch)", shape)
    if values.get("data_format") == "channels_first":
        return tuple(shape)
    return (shape[-1], *shape[:-1])


def parse_call(call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """A Keras layer constructor written as text (literals only) as a layer; ``input_shape=…``
    (Keras' own keyword, without the batch) gives the input channels and shape.

    >>> import ast
    >>> parse_call(ast.parse("keras.layers.Conv2D(16, 3, strides=2, padding='same')").body[0].value, "")
    (Layer('conv2d', None, 16, kernel_size=3, stride=2, padding='same_tf'), None)
    >>> text = "layers.Conv1DTranspose(4, 3, strides=2, padding='same', output_padding=1)"
    >>> parse_call(ast.parse(text).body[0].value, text)
    (Layer('conv_transpose1d', None, 4, kernel_size=3, stride=2, padding=((0, 1),)), None)
    """
    from .syntax import call_name, literal_arguments

    name = call_name(call)
    cls, n, transposed = _match(name.rsplit(".", 1)[-1])
    if cls == "SeparableConv":
        raise ConvArithError("source", "a SeparableConv is two layers (depthwise, pointwise): read it with separable()")
    key = "Pool" if cls.endswith(("Pooling", "Pool")) else ("ConvTranspose" if transposed else cls)
    values = literal_arguments(call, _POSITIONAL[key], source)
    shape = _input_shape(values, n)
    c_in = shape[0] if shape is not None else None
    for k, v in values.items():
        if k not in (*_POSITIONAL[key], "input_shape", "name", "dtype"):
            raise ConvArithError(k, f"is not an argument convarith reads from Keras' {cls}", v)
    return _layer_from(cls, n, transposed, values, c_in), shape
