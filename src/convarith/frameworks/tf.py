"""TensorFlow: a layer as ``tf.nn`` calls, and ``tf.nn`` calls written as text back as layers.

Every layer is a function of one argument in TensorFlow's channels-last layout (``NWC`` / ``NHWC`` /
``NDHWC``: the CPU kernels of ``Conv2D``, ``Conv3D``, the transposed convolutions and the pools refuse
``NCHW``), built from the ``tf.nn`` call of its kind:

* a convolution is ``tf.nn.conv1d`` / ``conv2d`` / ``conv3d`` with ``'SAME'`` / ``'VALID'`` (``conv2d``:
  explicit pairs) and groups as the filter's in-channels (``(*k, in/groups, out)``); around it ``tf.pad``
  and slices for other pads, crops and the reflect / replicate / circular modes, and for ``Conv3D``
  (no dilations, no groups on CPU) a kernel dilated with zeros and ``tf.split`` / ``tf.concat``;
* a transposed convolution is ``tf.nn.conv{1,2,3}d_transpose`` with its ``output_shape`` (the filter
  ``(*k, out, in)``), ``'SAME'``/``'VALID'``/pairs where they give the layer's pads, else ``'VALID'`` and
  a pad or crop of the output; groups by ``tf.split``; dilations (none on CPU) by a dilated kernel;
* a pool is ``tf.nn.max_pool{n}d`` / ``avg_pool{n}d`` (``tf.nn.pool`` when dilated), with ``tf.pad``
  (``-inf`` for a max) where TensorFlow's padding is not the layer's, and an average's sums rescaled
  by each window's divisor where TensorFlow divides otherwise.

The code converts the input to the layer's dtype first (``tf.convert_to_tensor``): float64, but
float32 for 3-d pools (``MaxPool3D``/``AvgPool3D`` have no float64 CPU kernel).

:func:`emit` and :func:`parse_call` are pure Python; TensorFlow is imported only by :func:`version` and
:func:`apply`. ``tf.nn`` has no layer objects (Keras layers are the Keras adapter's), so
:func:`from_native` refuses every object.

Examples
--------
>>> from convarith import Layer
>>> emit(Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf", bias=False)).steps
("tf.nn.conv2d(x, kernel, strides=2, padding='SAME')",)
>>> emit(Layer("conv_transpose2d", 64, 32, 4, stride=2, padding=1, bias=False), (1, 64, 8, 8)).steps
("tf.nn.conv2d_transpose(x, kernel, output_shape=(1, 16, 16, 32), strides=2, padding='SAME')",)
"""

from __future__ import annotations

import ast
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer, Pad
from ..rules.tf import Plan, plan
from .base import Emitted, channels

if TYPE_CHECKING:
    from ..findings import Finding

Array = npt.NDArray[np.float64]

__all__ = ["LABEL", "NAME", "apply", "emit", "findings", "from_native", "installed", "parse_call", "version"]

NAME = "tf"
LABEL = "TensorFlow"

_IMPORTS = ("import numpy as np", "import tensorflow as tf")
_QUIET = "TF_CPP_MIN_LOG_LEVEL"


def installed() -> bool:
    """Whether TensorFlow is installed (looked up, not imported)."""
    from . import installed as _installed

    return _installed(NAME)


def _import_tf() -> Any:
    os.environ.setdefault(_QUIET, "2")  # TensorFlow's C++ start-up chatter, unless the user set it
    import importlib

    return importlib.import_module("tensorflow")


def version() -> str:
    """TensorFlow's version."""
    return str(_import_tf().__version__)


def findings(layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]:
    """TensorFlow's refusals, workarounds and pitfalls for ``layer`` (:func:`convarith.check`)."""
    from ..rules import check

    return list(check(layer, input_shape, framework=NAME))


# -- writing code ---------------------------------------------------------------------------------


def _short(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


def _tuple(values: Sequence[object]) -> str:
    return f"({values[0]!r},)" if len(values) == 1 else f"({', '.join(repr(v) for v in values)})"


def _full(pairs: Sequence[Pad]) -> str:
    """``tf.pad``'s paddings of a channels-last tensor."""
    return str([[0, 0], *([int(b), int(a)] for b, a in pairs), [0, 0]])


def _index(n: int, axis: int, part: str) -> str:
    """``x[:, :, 1:-2]``: a slice of one spatial axis (the trailing ones left out)."""
    return f"[{', '.join([':'] * (axis + 1) + [part])}]"


def _crop(pairs: Sequence[Pad]) -> str | None:
    """``[:, 1:, :-2]``: the slice cropping the negative pads, or ``None``."""
    if not any(min(p) < 0 for p in pairs):
        return None
    parts = [":"]
    for before, after in pairs:
        lo, hi = max(-before, 0), max(-after, 0)
        parts.append(f"{lo or ''}:{-hi if hi else ''}")
    while parts and parts[-1] == ":":
        parts.pop()
    return f"[{', '.join(parts)}]"


def _constant(pairs: Sequence[Pad], fill: str, dtype: str) -> list[str]:
    """``tf.pad`` of the positive pads (zeros, or -inf) and a slice of the negative ones."""
    lines = []
    grow = [(max(b, 0), max(a, 0)) for b, a in pairs]
    if any(b or a for b, a in grow):
        value = ", constant_values=-np.inf" if fill == "-inf" else ""
        lines.append(f"x = tf.pad(x, {_full(grow)}{value})")
    crop = _crop(pairs)
    if crop is not None:
        lines.append(f"x = x{crop}")
    return lines


def _mode_lines(p: Plan, spatial: Sequence[int] | None) -> list[str]:
    """The reflect / replicate / circular padding as ``tf.pad``, ``tf.concat`` or ``tf.gather``."""
    from ..geometry.coverage import padded_source

    pads, mode = p.mode_pads, p.mode
    lines: list[str] = []
    grow = [(max(b, 0), max(a, 0)) for b, a in pads]
    crop = _crop(pads)
    if spatial is not None:
        kept = [i + min(b, 0) + min(a, 0) for i, (b, a) in zip(spatial, pads, strict=True)]
        beyond = (mode == "reflect" and any(max(g) >= i for g, i in zip(grow, spatial, strict=True))) or (
            mode == "circular" and any(max(g) > k for g, k in zip(grow, kept, strict=True))
        )
        if beyond:  # longer than one period: where each padded cell comes from, as indices
            for axis, (i, pair) in enumerate(zip(spatial, pads, strict=True)):
                if pair != (0, 0):
                    source = padded_source(i, pair, mode)
                    lines.append(f"x = tf.gather(x, {source}, axis={axis + 1})")
            return lines
    if mode == "circular" and crop is not None:
        lines.append(f"x = x{crop}")  # PyTorch crops first, then wraps what is left
    if mode == "reflect" and any(b or a for b, a in grow):
        lines.append(f"x = tf.pad(x, {_full(grow)}, mode='REFLECT')")
    for axis, (b, a) in enumerate(grow):
        if mode == "reflect" or not (b or a):
            continue
        n = len(grow)
        if mode == "replicate":
            parts = [f"tf.repeat(x{_index(n, axis, ':1')}, {b}, axis={axis + 1})"] if b else []
            parts += ["x"] + ([f"tf.repeat(x{_index(n, axis, '-1:')}, {a}, axis={axis + 1})"] if a else [])
        else:
            parts = [f"x{_index(n, axis, f'-{b}:')}"] if b else []
            parts += ["x"] + ([f"x{_index(n, axis, f':{a}')}"] if a else [])
        lines.append(f"x = tf.concat([{', '.join(parts)}], axis={axis + 1})")
    if mode != "circular" and crop is not None:
        lines.append(f"x = x{crop}")  # reflect / replicate over the whole input, then crop
    return lines


def _perm(n: int) -> tuple[str, str]:
    """weight_out (convarith → TensorFlow) and weight_in (back) of a (transposed) convolution's weight."""
    forward = (*range(2, n + 2), 1, 0)
    back = (n + 1, n, *range(n))
    return f"np.transpose(w, {forward})", f"w = np.transpose(w, {back})"


def _padding_text(padding: str | tuple[Pad, ...]) -> str:
    if isinstance(padding, str):
        return repr(padding)
    return _full(padding)


def _strides(layer: Layer, values: Sequence[int]) -> str:
    if layer.kind == "conv" and layer.ndim == 3:
        return str([1, *values, 1])  # Conv3D takes 5 strides, no shorthand
    return _short(values)


def emit(layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted:
    """``layer`` as TensorFlow code: ``layer`` is a function of a channels-last input.

    >>> from convarith import Layer
    >>> emit(Layer("max_pool1d", kernel_size=3, stride=2, padding=1), (1, 1, 8)).steps
    ('tf.nn.max_pool1d(x, 3, 2, [[0, 0], [1, 1], [0, 0]])',)
    >>> emit(Layer("conv1d", 1, 1, kernel_size=3, padding=[(2, 0)], bias=False)).steps
    ('tf.pad(x, [[0, 0], [2, 0], [0, 0]])', "tf.nn.conv1d(x, kernel, stride=1, padding='VALID')")
    """
    from ..rules import raise_refusals

    raise_refusals(layer, input_shape, framework=NAME)
    notes = tuple(f for f in findings(layer, input_shape) if f.severity != "error")
    p = plan(layer, input_shape)
    bound = layer.bind(input_shape) if input_shape is not None else None
    spatial = bound.input_spatial if bound is not None else None
    dt = f"tf.{p.dtype}"
    build: list[str] = []
    body: list[str] = [f"x = tf.convert_to_tensor(x, {dt})"]
    pre: list[str] = []
    if p.mode != "zeros":
        pre += _mode_lines(p, spatial)
    if p.before:
        pre += _constant(p.before, p.fill, p.dtype)
    body += pre
    steps = [line.removeprefix("x = ") for line in pre]
    weight_in, weight_out = "", "w"
    if layer.weighted:
        call, post, weight_out, weight_in = _weighted(layer, input_shape, p, build)
        if p.dilate_kernel:
            taps = ", ".join(f"::{v}" for v in layer.dilation)
            steps.insert(0, f"kernel = dilated[{taps}] (zeros between the taps)")
    else:
        call, post = _pool(layer, bound, p, build)
    if p.split:
        g = layer.groups
        body.append(f"xs = tf.split(x, {g}, axis=-1)")
        body.append(f"y = tf.concat([{call.replace('(x, kernel', '(xg, kg')} for xg, kg in zip(xs, kernels)], axis=-1)")
        steps.append(f"tf.split(x, {g}, axis=-1)")
        steps.append(call.replace("(x, kernel", "(xg, kg"))
        steps.append("tf.concat(…, axis=-1)")
    else:
        body.append(f"y = {call}")
        steps.append(call)
    for line in post:
        body.append(line)
        steps.append(line.removeprefix("y = "))
    body.append("return y")
    build.append("def layer(x):")
    build += [f"    {line}" for line in body]
    return Emitted(
        framework=NAME,
        imports=_IMPORTS,
        build="\n".join(build),
        call="layer(x)",
        layout="channels_last",
        steps=tuple(steps),
        weight_in=weight_in,
        weight_out=weight_out,
        findings=notes,
        dtype=p.dtype,
    )


def _weighted(
    layer: Layer, input_shape: Sequence[int] | None, p: Plan, build: list[str]
) -> tuple[str, list[str], str, str]:
    """The call, the lines after it, weight_out and weight_in of a (transposed) convolution."""
    n, g = layer.ndim, layer.groups
    c_out = channels(layer, input_shape)[1] if (input_shape is not None or layer.in_channels) else None
    weight_out, weight_in = _perm(n)
    dt = f"tf.{p.dtype}"
    layout = "(*k, in/groups, out)" if layer.kind == "conv" else "(*k, out/groups, in)"
    build.append(f"kernel = {weight_out}  # TensorFlow's filter layout {layout}")
    if p.dilate_kernel:
        d = layer.dilation
        extents = ", ".join(str(e) for e in layer.effective_kernel)
        taps = ", ".join(f"::{v}" for v in d)
        build.append("# no dilations in this CPU kernel: the same taps with zeros between them")
        build.append(f"dilated = np.zeros(({extents}, *kernel.shape[-2:]))")
        build.append(f"dilated[{taps}] = kernel")
        build.append("kernel = dilated")
    if p.split:
        build.append(f"kernels = [tf.constant(k, {dt}) for k in np.split(kernel, {g}, axis=-1)]")
    else:
        build.append(f"kernel = tf.constant(kernel, {dt})")
    post: list[str] = []
    if layer.bias:
        size = c_out if c_out is not None else "kernel.shape[-1]"
        build.append(f"bias = tf.constant(np.zeros({size}) if b is None else b, {dt})")
    dilation = "" if p.dilate_kernel or layer.dilation == (1,) * n else f", dilations={_short(layer.dilation)}"
    padding = _padding_text(p.padding)
    if layer.kind == "conv":
        stride = "stride" if n == 1 else "strides"
        call = f"tf.nn.conv{n}d(x, kernel, {stride}={_strides(layer, layer.stride)}, padding={padding}{dilation})"
    else:
        c = (c_out // g if p.split else c_out) if c_out is not None else "kernel.shape[-2]"
        if p.output is not None:
            assert input_shape is not None
            batch = input_shape[0] if len(input_shape) == n + 2 else 1
            sizes = [str(v) for v in p.output]
            shown = f"({batch}, {', '.join(sizes)}, {c})"
        else:
            sizes = [
                f"(x.shape[{k + 1}] - 1) * {s} + {r}"
                for k, (s, r) in enumerate(zip(layer.stride, p.output_extra, strict=True))
            ]
            shown = f"(x.shape[0], {', '.join(sizes)}, {c})"
        call = (
            f"tf.nn.conv{n}d_transpose(x, kernel, output_shape={shown}, strides={_short(layer.stride)}, "
            f"padding={padding}{dilation})"
        )
        if p.after:
            post += [line.replace("x", "y") for line in _constant(p.after, "zeros", p.dtype)]
    if layer.bias:
        post.append("y = tf.nn.bias_add(y, bias)")
    return call, post, weight_out, weight_in


def _pool(layer: Layer, bound: Any, p: Plan, build: list[str]) -> tuple[str, list[str]]:
    n = layer.ndim
    kind = "MAX" if layer.kind == "max_pool" else "AVG"
    padding = _padding_text(p.padding)
    strides = (1,) * n if p.subsample else layer.stride
    if p.pool_dilated:
        call = (
            f"tf.nn.pool(x, {_tuple(layer.kernel_size)}, {kind!r}, strides={_tuple(strides)}, padding={padding}, "
            f"dilations={_tuple(layer.dilation)})"
        )
    else:
        name = "max_pool" if kind == "MAX" else "avg_pool"
        call = f"tf.nn.{name}{n}d(x, {_short(layer.kernel_size)}, {_short(strides)}, {padding})"
    post: list[str] = []
    if layer.kind == "max_pool" and any(max(q) > 0 for q in p.before):
        # TensorFlow's max of a window of -inf alone is the lowest finite value (MaxPool starts from it)
        post.append("y = tf.where(y == y.dtype.min, tf.constant(-np.inf, y.dtype), y)")
    if p.subsample:
        post.append("y = y" + "[:, " + ", ".join(f"::{s}" for s in layer.stride) + "]")
    if p.scale:
        from ..ops.kernels import axis_divisor

        if bound is None:
            raise ConvArithError("input_shape", "is needed: this average's divisor is written out for an input size")
        taps = math.prod(layer.kernel_size)
        if layer.divisor_override is not None:
            build.append(f"scale = {taps} / {layer.divisor_override}")
        else:
            counts = [axis_divisor(ax, layer.count_include_pad).tolist() for ax in bound.axes]
            build.append(f"counts = {counts}  # per axis: the cells each window averages")
            build.append("with np.errstate(divide='ignore'):")
            build.append(f"    scale = {taps} / np.prod(np.meshgrid(*counts, indexing='ij'), axis=0)")
            build.append(f"scale = tf.constant(scale[None, ..., None], tf.{p.dtype})")
        post.append(f"y = y * scale  # × {taps} / each window's divisor")
    return call, post


# -- running ------------------------------------------------------------------------------------------


def apply(emitted: Emitted, made: Any, input: Array) -> Array:
    """Run the built function on a float64 ``(N, C, *spatial)`` input; the result in the same layout."""
    tf = _import_tf()
    x = np.asarray(input, dtype=np.float64)
    last = np.moveaxis(x, 1, -1).astype(emitted.dtype)
    y = np.asarray(made(tf.convert_to_tensor(last)), dtype=np.float64)
    return np.moveaxis(y, -1, 1)


# -- reading TensorFlow back ------------------------------------------------------------------------------


def from_native(obj: object) -> Layer:
    """``tf.nn`` has no layer objects: read a call with :func:`parse_call` (Keras layers: the Keras adapter)."""
    raise ConvArithError(
        "source",
        'tf.nn has no layer objects: write the call as text, e.g. "tf.nn.conv2d(x, (3, 3, 3, 16), strides=2, '
        "padding='SAME')\" (Keras layers are read by the keras adapter)",
        type(obj).__name__,
    )


_CONV = ("input", "filters", "strides", "padding", "data_format", "dilations")
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "conv1d": ("input", "filters", "stride", "padding", "data_format", "dilations"),
    "conv2d": _CONV,
    "conv3d": _CONV,
    "convolution": _CONV,
    "conv1d_transpose": ("input", "filters", "output_shape", "strides", "padding", "data_format", "dilations"),
    "conv2d_transpose": ("input", "filters", "output_shape", "strides", "padding", "data_format", "dilations"),
    "conv3d_transpose": ("input", "filters", "output_shape", "strides", "padding", "data_format", "dilations"),
    "conv_transpose": ("input", "filters", "output_shape", "strides", "padding", "data_format", "dilations"),
    "max_pool": ("input", "ksize", "strides", "padding", "data_format"),
    "avg_pool": ("input", "ksize", "strides", "padding", "data_format"),
    "pool": ("input", "window_shape", "pooling_type", "strides", "padding", "data_format", "dilations"),
}
for _n in (1, 2, 3):
    _SIGNATURES[f"max_pool{_n}d"] = _SIGNATURES["max_pool"]
    _SIGNATURES[f"avg_pool{_n}d"] = _SIGNATURES["avg_pool"]


def _ints(name: str, value: object, n: int, default: int = 1) -> tuple[int, ...]:
    """``n`` per-axis integers from an int, ``n`` of them, or ``n + 2`` with N and C (which must be 1)."""
    if value is None:
        return (default,) * n
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(value) == 1:
            return value * n
        if len(value) == n:
            return value
        if len(value) == n + 2:
            if value[0] != 1 or value[-1] != 1:
                raise ConvArithError(name, "must be 1 on the batch and channel axes", value)
            return value[1:-1]
    raise ConvArithError(name, f"must be an integer or {n} (or {n + 2}) integers", value)


def _pads(value: object, n: int) -> str | tuple[Pad, ...]:
    if isinstance(value, str):
        if value.upper() not in ("SAME", "VALID"):
            raise ConvArithError("padding", "must be 'SAME', 'VALID' or explicit pairs", value)
        return value.upper()
    if isinstance(value, tuple) and len(value) == n + 2 and all(isinstance(q, tuple) and len(q) == 2 for q in value):
        if value[0] != (0, 0) or value[-1] != (0, 0):
            raise ConvArithError("padding", "explicit pairs must be [0, 0] on the batch and channel axes", value)
        return tuple((int(b), int(a)) for b, a in value[1:-1])
    raise ConvArithError("padding", f"must be 'SAME', 'VALID' or {n + 2} [before, after] pairs", value)


def _shape(name: str, value: object, rank: int) -> tuple[int, ...] | None:
    from .syntax import Unknown

    if value is None or isinstance(value, Unknown):
        return None
    if isinstance(value, tuple) and len(value) == rank and all(isinstance(v, int) for v in value):
        return value
    raise ConvArithError(name, f"must be a name or the array's shape ({rank} integers)", value)


def parse_call(call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """A ``tf.nn`` convolution, transposed convolution or pool written as text (literals only) as a layer.

    Arrays are written as their shapes in TensorFlow's channels-last layout; the input shape is
    returned in convarith's ``(N, C, *spatial)``. A transposed convolution's ``output_shape`` sets
    its pads: TensorFlow's forward convolution of that output (``'SAME'``: the odd cell after).

    >>> import ast
    >>> text = "tf.nn.conv2d(x, (3, 3, 3, 16), strides=2, padding='SAME')"
    >>> parse_call(ast.parse(text).body[0].value, text)
    (Layer('conv2d', 3, 16, kernel_size=3, stride=2, padding='same_tf', bias=False), None)
    >>> text = "tf.nn.conv2d_transpose(x, (4, 4, 32, 64), output_shape=(1, 16, 16, 32), strides=2, padding='SAME')"
    >>> parse_call(ast.parse(text).body[0].value, text)
    (Layer('conv_transpose2d', 64, 32, kernel_size=4, stride=2, padding='same_tf', bias=False), None)
    """
    from .syntax import call_name, literal_arguments

    name = call_name(call)
    leaf = name.rsplit(".", 1)[-1]
    if leaf not in _SIGNATURES or name.split(".")[0] not in ("tf", "tensorflow", "nn", leaf):
        raise ConvArithError("source", "is not a tf.nn convolution, transposed convolution or pooling call", name)
    values = literal_arguments(call, _SIGNATURES[leaf], source)
    fmt = values.get("data_format")
    if fmt is not None and (not isinstance(fmt, str) or fmt.startswith("NC")):
        raise ConvArithError(
            "data_format", "must be channels-last (NWC, NHWC, NDHWC): TensorFlow's CPU kernels refuse NC…", fmt
        )
    if leaf.startswith("conv"):
        return _parse_conv(leaf, values)
    return _parse_pool(leaf, values)


def _parse_conv(leaf: str, values: dict[str, object]) -> tuple[Layer, tuple[int, ...] | None]:
    w = values.get("filters")
    if not isinstance(w, tuple) or len(w) < 3 or not all(isinstance(v, int) for v in w):
        raise ConvArithError("filters", "must be written as the filter's shape (*k, in, out)", w)
    n = len(w) - 2
    if leaf[4:5].isdigit() and int(leaf[4]) != n:
        raise ConvArithError("filters", f"{leaf} takes a filter of {int(leaf[4]) + 2} axes", w)
    kernel = w[:n]
    x = _shape("input", values.get("input"), n + 2)
    input_shape = None if x is None else (x[0], x[-1], *x[1:-1])
    stride = _ints("strides", values.get("stride", values.get("strides")), n)
    dilation = _ints("dilations", values.get("dilations"), n)
    padding = _pads(values.get("padding", "VALID" if "transpose" not in leaf else "SAME"), n)
    if "transpose" not in leaf:
        c_filter, c_out = w[n], w[n + 1]
        groups = 1
        if x is not None:
            if x[-1] % c_filter:
                raise ConvArithError("filters", "in-channels must divide the input's channels", (c_filter, x[-1]))
            groups = x[-1] // c_filter
        pads: Any = {"SAME": "same_tf", "VALID": "valid"}.get(padding, padding) if isinstance(padding, str) else padding
        layer = Layer(
            f"conv{n}d",
            c_filter * groups,
            c_out,
            kernel,
            stride=stride,
            padding=pads,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        return layer, input_shape
    c_out, c_in = w[n], w[n + 1]
    out = values.get("output_shape")
    if not isinstance(out, tuple) or len(out) != n + 2 or not all(isinstance(v, int) for v in out):
        raise ConvArithError("output_shape", f"must be written as {n + 2} integers (N, *spatial, C)", out)
    if out[-1] != c_out:
        raise ConvArithError("output_shape", f"must end with the filter's out-channels {c_out}", out)
    base = Layer(f"conv_transpose{n}d", c_in, c_out, kernel, stride=stride, dilation=dilation, bias=False)
    extents = base.effective_kernel
    wanted = out[1:-1]
    if x is None:
        if padding == "SAME":
            return base.replace(padding="same_tf"), None
        raise ConvArithError(
            "input", "must be written as its shape: output_shape sets the pads from the input size", values.get("input")
        )
    pairs: list[Pad] = []
    extra: list[int] = []
    for i, o, s, e, k in zip(x[1:-1], wanted, stride, extents, range(n), strict=True):
        # TensorFlow's convolution of the output: (p_b, p_a) on o gives i windows
        if padding == "SAME":
            if -(-o // s) != i:
                raise ConvArithError("output_shape", f"'SAME' needs ⌈o/s⌉ = i on axis {k}", (o, s, i))
            tb, ta = _same(o, e, s)
        elif padding == "VALID":
            tb, ta = 0, 0
        else:
            assert not isinstance(padding, str)
            tb, ta = padding[k]
        if (o + tb + ta - e) // s + 1 != i or o + tb + ta < e:
            raise ConvArithError("output_shape", f"gives {i} windows on axis {k} only for other sizes", out)
        full = (i - 1) * s + e  # stamps; the output is cells tb … tb + o of them, zeros past the end
        after = full - tb - o
        pairs.append((tb, max(after, 0)))
        extra.append(max(-after, 0))
    if padding == "SAME" and all(o == i * s for o, i, s in zip(wanted, x[1:-1], stride, strict=True)):
        return base.replace(padding="same_tf"), input_shape
    return base.replace(padding=pairs, output_padding=extra), input_shape


def _same(size: int, extent: int, stride: int) -> Pad:
    from ..rules.tf import same_pads

    return same_pads(size, extent, stride)


def _parse_pool(leaf: str, values: dict[str, object]) -> tuple[Layer, tuple[int, ...] | None]:
    x = values.get("input")
    if leaf == "pool":
        window = values.get("window_shape")
        if not isinstance(window, tuple) or not window:
            raise ConvArithError("window_shape", "must be the window's sizes", window)
        n = len(window)
        kind = {"MAX": "max_pool", "AVG": "avg_pool"}.get(str(values.get("pooling_type")).upper())
        if kind is None:
            raise ConvArithError("pooling_type", "must be 'MAX' or 'AVG'", values.get("pooling_type"))
        dilation = _ints("dilations", values.get("dilations"), n)
        kernel = _ints("window_shape", window, n)
    else:
        kind = leaf[:8]
        if leaf[-2:-1].isdigit():
            n = int(leaf[-2])
        elif isinstance(x, tuple):
            n = len(x) - 2
        elif isinstance(values.get("ksize"), tuple) and len(values["ksize"]) in (1, 2, 3):  # type: ignore[arg-type]
            n = len(values["ksize"])  # type: ignore[arg-type]
        else:
            raise ConvArithError("input", f"{leaf}'s number of axes needs the input's shape or ksize per axis", x)
        kernel = _ints("ksize", values.get("ksize"), n)
        dilation = (1,) * n
    shape = _shape("input", x, n + 2)
    stride = _ints("strides", values.get("strides"), n)
    padding = _pads(values.get("padding", "VALID"), n)
    pads: Any = {"SAME": "same_tf", "VALID": "valid"}.get(padding, padding) if isinstance(padding, str) else padding
    params: dict[str, Any] = {"kernel_size": kernel, "stride": stride, "padding": pads, "dilation": dilation}
    if kind == "avg_pool":
        params["count_include_pad"] = False  # TensorFlow's 'SAME' average counts the input's cells only
    layer = Layer(f"{kind}{n}d", **params)
    return layer, None if shape is None else (shape[0], shape[-1], *shape[1:-1])
