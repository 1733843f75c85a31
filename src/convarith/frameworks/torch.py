"""PyTorch: the adapter (a layer as ``nn`` modules and back), and its real ops and autograd in
float64 behind the tour's backend interface.

This module imports ``torch`` only inside the functions that run it: :func:`emit` and
:func:`parse_call` are pure Python. It is the one place of convarith besides the other
``frameworks`` modules that imports ``torch``.

Examples
--------
>>> import numpy as np
>>> backend = TorchBackend()
>>> backend.conv(np.ones((1, 1, 4)), np.ones((1, 1, 3))).tolist()
[[[3.0, 3.0]]]
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer
from .base import Emitted, channels, explicit, short

if TYPE_CHECKING:
    from ..explain.backends import ConvKwargs
    from ..findings import Finding

Array = npt.NDArray[np.float64]

__all__ = [
    "LABEL",
    "NAME",
    "TorchBackend",
    "apply",
    "emit",
    "findings",
    "from_native",
    "installed",
    "parse_call",
    "version",
]


class TorchBackend:
    """PyTorch's ``conv``/``conv_transpose`` functions and autograd on float64 NumPy arrays."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self.name = f"PyTorch {torch.__version__}"

    def _fn(self, kind: str, ndim: int) -> Callable[..., object]:
        fn: Callable[..., object] = getattr(self._torch.nn.functional, f"{kind}{ndim}d")
        return fn

    def conv(self, x: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        """``F.convNd(x, weight, **kwargs)``.

        >>> import numpy as np
        >>> TorchBackend().conv(np.ones((1, 1, 3)), np.ones((1, 1, 1)), padding=1).shape
        (1, 1, 5)
        """
        t = self._torch
        out = self._fn("conv", x.ndim - 2)(t.from_numpy(x), t.from_numpy(weight), **kwargs)
        return np.asarray(out.numpy(), dtype=np.float64)  # type: ignore[attr-defined]

    def conv_transpose(self, y: Array, weight: Array, **kwargs: ConvKwargs) -> Array:
        """``F.conv_transposeNd(y, weight, **kwargs)``.

        >>> import numpy as np
        >>> TorchBackend().conv_transpose(np.ones((1, 1, 2)), np.ones((1, 1, 3)), stride=2).tolist()
        [[[1.0, 1.0, 2.0, 1.0, 1.0]]]
        """
        t = self._torch
        out = self._fn("conv_transpose", y.ndim - 2)(t.from_numpy(y), t.from_numpy(weight), **kwargs)
        return np.asarray(out.numpy(), dtype=np.float64)  # type: ignore[attr-defined]

    def input_grad(self, x: Array, weight: Array, grad_output: Array, **kwargs: ConvKwargs) -> Array:
        """``x.grad`` after ``F.convNd(x, weight, **kwargs).backward(grad_output)``.

        >>> import numpy as np
        >>> TorchBackend().input_grad(np.ones((1, 1, 3)), np.ones((1, 1, 2)), np.ones((1, 1, 2))).tolist()
        [[[1.0, 2.0, 1.0]]]
        """
        t = self._torch
        xt = t.from_numpy(x.copy()).requires_grad_(True)
        y = self._fn("conv", x.ndim - 2)(xt, t.from_numpy(weight), **kwargs)
        y.backward(t.from_numpy(grad_output))  # type: ignore[attr-defined]
        if xt.grad is None:  # pragma: no cover - autograd always fills it for a leaf
            raise RuntimeError("autograd gave no gradient")
        return np.asarray(xt.grad.numpy(), dtype=np.float64)


# -- the adapter: a convarith layer as PyTorch modules, and PyTorch modules and calls as layers -----

NAME = "torch"
LABEL = "PyTorch"

_PAD_MODULE = {"zeros": "ZeroPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad", "circular": "CircularPad"}
_MODULE = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AvgPool"}


def installed() -> bool:
    """Whether PyTorch is installed (looked up, not imported)."""
    from . import installed as _installed

    return _installed(NAME)


def version() -> str:
    """PyTorch's version."""
    import torch

    return str(torch.__version__)


def findings(layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]:
    """PyTorch's refusals and warnings for ``layer`` (:func:`convarith.check`)."""
    from ..rules import check

    return list(check(layer, input_shape, framework=NAME))


def _flat_pads(pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """``F.pad``'s order: the last axis first, (before, after) each."""
    return tuple(p for pair in reversed(pads) for p in pair)


def _arg(values: Sequence[int]) -> str:
    return short(values)


def emit(layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted:
    """``layer`` as PyTorch ``nn`` modules: the module itself when it can hold the layer as written,
    else an ``nn.Sequential`` with the explicit pad or crop it needs.

    >>> from convarith import Layer
    >>> emitted = emit(Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf"), (1, 3, 32, 32))
    >>> emitted.steps
    ('nn.ZeroPad2d((0, 1, 0, 1))', 'nn.Conv2d(3, 16, 3, stride=2)')
    >>> emit(Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1)).steps
    ('nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)',)
    """
    from ..findings import finding
    from ..rules import check

    found = findings(layer, input_shape)
    notes = tuple(f for f in found if f.severity != "error")
    for refusal in (f for f in found if f.severity == "error"):
        if layer.pooling and refusal.param == "padding" and input_shape is not None:
            # nn.MaxPool/AvgPool refuse these pads; an explicit pad before the pool computes them
            notes += (
                finding(
                    "needs-workaround",
                    None,
                    framework=NAME,
                    what=f"{refusal.message}",
                    workaround="pads explicitly before the pool (-inf for max; the divisor kept for average)",
                ),
            )
            continue
        raise refusal.error()
    n = layer.ndim
    kind = layer.kind
    steps: list[str] = []
    build: list[str] = []
    native_padding: str | None = None
    if not layer.is_resolved and layer.policy == "valid" and kind == "conv":
        native_padding = "'valid'"
    elif not layer.is_resolved and layer.policy == "same" and kind == "conv":
        native_padding = "'same'"
    resolved = layer if native_padding is not None else explicit(layer, input_shape)
    pads = () if native_padding is not None else resolved.pads
    module = f"nn.{_MODULE[kind]}{n}d"

    def args(*positional: str, **named: str) -> str:
        return ", ".join([*positional, *(f"{k}={v}" for k, v in named.items())])

    pre: tuple[int, ...] | None = None  # an F.pad before the layer
    post: tuple[int, ...] | None = None  # an F.pad (negative: a crop) after it
    named: dict[str, str] = {}
    if layer.stride != (1,) * n or layer.pooling:
        named["stride"] = _arg(layer.stride)
    if kind in ("conv", "conv_transpose"):
        c_in, c_out = channels(layer, input_shape)
        positional = [str(c_in), str(c_out), _arg(layer.kernel_size)]
        if kind == "conv":
            symmetric = all(b == a and b >= 0 for b, a in pads)
            if native_padding is not None:
                named["padding"] = native_padding
            elif symmetric:
                if any(b for b, _ in pads):
                    named["padding"] = _arg([b for b, _ in pads])
            else:
                pre = _flat_pads(pads)
        else:
            lows = [min(b, a) for b, a in pads]
            if any(lows):
                named["padding"] = _arg(lows)
            if any(b != a for b, a in pads):
                post = _flat_pads([(low - b, low - a) for (b, a), low in zip(pads, lows, strict=True)])
            if any(resolved.output_padding):
                named["output_padding"] = _arg(resolved.output_padding)
        if layer.dilation != (1,) * n:
            named["dilation"] = _arg(layer.dilation)
        if layer.groups != 1:
            named["groups"] = str(layer.groups)
        if not layer.bias:
            named["bias"] = "False"
        if kind == "conv" and layer.padding_mode != "zeros" and pre is None:
            named["padding_mode"] = repr(layer.padding_mode)
        call = f"{module}({args(*positional, **named)}, dtype=torch.float64)"
        steps_call = f"{module}({args(*positional, **named)})"
        build.append(f"core = {call}")
        build.append("with torch.no_grad():")
        build.append("    core.weight.copy_(torch.from_numpy(w))")
        if layer.bias:
            build.append("    core.bias.copy_(torch.from_numpy(b) if b is not None else torch.zeros_like(core.bias))")
    else:
        positional = [_arg(layer.kernel_size)]
        as_pairs = layer.replace(padding=pads) if pads else layer
        native = all(b == a and b >= 0 for b, a in pads) and not any(
            f.severity == "error" for f in check(as_pairs, input_shape, framework=NAME)
        )
        if native and any(b for b, _ in pads):
            named["padding"] = _arg([b for b, _ in pads])
        if native and layer.ceil_mode:
            named["ceil_mode"] = "True"
        if kind == "max_pool" and layer.dilation != (1,) * n:
            named["dilation"] = _arg(layer.dilation)
        if kind == "avg_pool" and native:
            if not layer.count_include_pad:
                named["count_include_pad"] = "False"
            if layer.divisor_override is not None:
                named["divisor_override"] = str(layer.divisor_override)
        steps_call = f"{module}({args(*positional, **named)})"
        build.append(f"core = {steps_call}")
        if not native:
            # pad explicitly (-inf for max, zeros for a sum), as far as ceil_mode's last window reaches
            if input_shape is None:
                raise ConvArithError("input_shape", "is needed: this pool's padding is written out for an input size")
            bound = layer.bind(input_shape)
            # to where the last window ends (past the input for ceil_mode, short of it for a dropped one)
            pre = _flat_pads([(b, a + ax.last_window_end) for (b, a), ax in zip(pads, bound.axes, strict=True)])
            if kind == "avg_pool":
                # the average = window sums / the divisor PyTorch's rule gives each window
                taps = math.prod(layer.kernel_size)
                if layer.divisor_override is not None:
                    divisor = str(layer.divisor_override)
                else:
                    counted = "1.0" if layer.count_include_pad else "0.0"
                    spatial = bound.input_spatial
                    build.append(f"ones = torch.ones((1, 1, *{spatial}), dtype=torch.float64)")
                    build.append(f"mask = nn.ConstantPad{n}d({_flat_pads(pads)}, {counted})(ones)  # cells that count")
                    reach = _flat_pads([(0, ax.last_window_end) for ax in bound.axes])
                    build.append(f"divisor = core(nn.ZeroPad{n}d({reach})(mask)) * {taps}")
                    divisor = "divisor"
                pad = f"nn.ZeroPad{n}d({pre})"
                steps[:] = [pad, steps_call, f"× {taps} / the divisor of each window"]
                build.append(f"pad = {pad}")
                build.append(f"layer = lambda x: core(pad(x)) * {taps} / {divisor}")
                return _emitted(build, steps, notes)
    parts: list[str] = []
    if pre is not None and kind != "avg_pool":
        if kind == "max_pool":
            pad = f"nn.ConstantPad{n}d({pre}, float('-inf'))"
        else:
            pad = f"nn.{_PAD_MODULE[layer.padding_mode]}{n}d({pre})"
        steps.append(pad)
        parts.append(pad)
    steps.append(steps_call)
    parts.append("core")
    if post is not None:
        crop = f"nn.ZeroPad{n}d({post})"
        steps.append(crop + "  # negative: a crop")
        parts.append(crop)
    if len(parts) == 1:
        build.append("layer = core")
    else:
        build.append(f"layer = nn.Sequential({', '.join(parts)})")
    return _emitted(build, steps, notes)


def _emitted(build: list[str], steps: list[str], notes: tuple[Finding, ...]) -> Emitted:
    return Emitted(
        framework=NAME,
        imports=("import torch", "from torch import nn"),
        build="\n".join(build),
        call="layer(x)",
        layout="channels_first",
        steps=tuple(steps),
        findings=notes,
    )


def apply(emitted: Emitted, made: Any, input: Array) -> Array:
    """Run the built module on a float64 ``(N, C, *spatial)`` input, without autograd."""
    import torch

    with torch.no_grad():
        out = made(torch.from_numpy(np.ascontiguousarray(input, dtype=np.float64)))
    return np.asarray(out.numpy(), dtype=np.float64)


def from_native(obj: object) -> Layer:
    """A PyTorch ``nn`` convolution, transposed convolution or pooling module as a layer.

    >>> import torch.nn as nn
    >>> from_native(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1))
    Layer('conv_transpose2d', 64, 32, kernel_size=4, stride=2, padding=1)
    >>> from_native(nn.MaxPool2d(3, 2, ceil_mode=True))
    Layer('max_pool2d', kernel_size=3, stride=2, ceil_mode=True)
    """
    name = type(obj).__name__
    match = re.fullmatch(r"(Conv|ConvTranspose|MaxPool|AvgPool|LazyConv|LazyConvTranspose)([123])d", name)
    if match is None:
        raise ConvArithError("source", "must be an nn.ConvNd, nn.ConvTransposeNd, nn.MaxPoolNd or nn.AvgPoolNd", name)
    base, n = match.group(1).removeprefix("Lazy"), int(match.group(2))
    kind = {v: k for k, v in _MODULE.items()}[base]
    get = functools.partial(getattr, obj)
    if kind in ("conv", "conv_transpose"):
        padding = get("padding")
        in_channels = get("in_channels") or None  # a lazy module has 0 until it has seen an input
        return Layer(
            f"{kind}{n}d",
            in_channels,
            get("out_channels"),
            tuple(get("kernel_size")),
            stride=tuple(get("stride")),
            padding=padding if isinstance(padding, str) else tuple(padding),
            dilation=tuple(get("dilation")),
            groups=get("groups"),
            output_padding=tuple(get("output_padding")) if kind == "conv_transpose" else 0,
            bias=get("bias") is not None,
            padding_mode=get("padding_mode"),
        )
    params: dict[str, Any] = {
        "kernel_size": get("kernel_size"),
        "stride": get("stride"),
        "padding": get("padding"),
        "ceil_mode": get("ceil_mode"),
    }
    if kind == "max_pool":
        params["dilation"] = get("dilation")
    else:
        params["count_include_pad"] = get("count_include_pad")
        params["divisor_override"] = getattr(obj, "divisor_override", None)
    return Layer(f"{kind}{n}d", **params)


# positional parameters of each PyTorch constructor or function, after the op's own leading ones
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "Conv": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
        "padding_mode",
    ),
    "ConvTranspose": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "groups",
        "bias",
        "dilation",
        "padding_mode",
    ),
    "MaxPool": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "AvgPool": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose": ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
    "max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
}


def parse_call(call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]:
    """A PyTorch constructor or functional call written as text (literals only) as a layer.

    Arrays are written as their shapes: ``F.conv2d((1, 3, 32, 32), (16, 3, 3, 3), stride=2)``
    gives the layer and the input shape; a name (``x``) leaves the input shape unknown.

    >>> import ast
    >>> parse_call(ast.parse("nn.Conv2d(3, 16, 3, 2, 1)").body[0].value, "")
    (Layer('conv2d', 3, 16, kernel_size=3, stride=2, padding=1), None)
    >>> parse_call(ast.parse("F.conv_transpose1d((1, 4, 10), (4, 2, 3), b, stride=2)").body[0].value, "")
    (Layer('conv_transpose1d', 4, 2, kernel_size=3, stride=2), (1, 4, 10))
    """
    from .syntax import call_name, literal_arguments

    name = call_name(call)
    leaf = name.rsplit(".", 1)[-1]
    match = re.fullmatch(
        r"(Conv|ConvTranspose|MaxPool|AvgPool)([123])d|(conv|conv_transpose|max_pool|avg_pool)([123])d", leaf
    )
    if match is None:
        raise ConvArithError("source", "is not a PyTorch convolution, transposed convolution or pooling call", name)
    base = match.group(1) or match.group(3)
    n = int(match.group(2) or match.group(4))
    values = literal_arguments(call, _SIGNATURES[base], source)
    kind = {v: k for k, v in _MODULE.items()}.get(base, base)
    params: dict[str, Any] = {k: v for k, v in values.items() if k not in ("input", "weight", "return_indices")}
    input_shape: tuple[int, ...] | None = None
    if base.islower():  # functional: shapes in place of arrays
        x, w = values.get("input"), values.get("weight")
        input_shape = tuple(x) if isinstance(x, tuple) else None
        if kind in ("conv", "conv_transpose"):
            if not isinstance(w, tuple) or len(w) != n + 2:
                raise ConvArithError("weight", f"must be written as its shape, {n + 2} integers", w)
            groups = int(params.get("groups", 1))
            if kind == "conv":
                params["in_channels"], params["out_channels"] = w[1] * groups, w[0]
            else:
                params["in_channels"], params["out_channels"] = w[0], w[1] * groups
            params["kernel_size"] = w[2:]
            params["bias"] = params.get("bias") is not None  # F.conv*: no bias unless one is passed
    elif kind in ("conv", "conv_transpose"):
        params["bias"] = params.get("bias", True) is not False  # nn.Conv*: bias=True by default
    layer = Layer(f"{kind}{n}d", **params)
    return layer, input_shape


def native_refusal(layer: Layer, input_shape: Sequence[int]) -> str | None:
    """Run the layer through PyTorch's own ``torch.nn.functional`` call, its parameters as written:
    PyTorch's error message if it refuses, ``None`` if it computes. Layers PyTorch's keywords cannot
    write (an asymmetric pad, another framework's padding policy) raise :class:`ConvArithError`.

    ``convarith verify`` compares this with the rules (:func:`findings`) on every case.

    >>> native_refusal(Layer("max_pool1d", kernel_size=2, padding=2), (1, 1, 8))[:37]
    'max_pool1d() padding should be at mos'
    >>> native_refusal(Layer("conv1d", 1, 1, kernel_size=3), (1, 1, 8)) is None
    True
    """
    import torch
    import torch.nn.functional as F

    n = layer.ndim
    if layer.kind == "conv" and layer.policy in ("same", "valid"):
        padding: Any = layer.policy
    elif layer.is_resolved and all(b == a for b, a in layer.pads):
        padding = tuple(b for b, _ in layer.pads)
    else:
        raise ConvArithError("padding", "has no PyTorch keyword", layer.padding)
    bound = layer.bind(input_shape)
    x = torch.zeros(bound.input_shape, dtype=torch.float64)
    w = None if bound.weight_shape is None else torch.zeros(bound.weight_shape, dtype=torch.float64)
    common = {"stride": layer.stride}
    try:
        if layer.kind == "conv":
            if layer.padding_mode != "zeros":  # F.conv has no padding_mode: the module pads first
                module = getattr(torch.nn, f"Conv{n}d")(
                    bound.in_channels,
                    bound.out_channels,
                    layer.kernel_size,
                    padding=padding,
                    dilation=layer.dilation,
                    groups=layer.groups,
                    padding_mode=layer.padding_mode,
                    dtype=torch.float64,
                    **common,
                )
                module(x)
            else:
                getattr(F, f"conv{n}d")(
                    x, w, None, padding=padding, dilation=layer.dilation, groups=layer.groups, **common
                )
        elif layer.kind == "conv_transpose":
            getattr(F, f"conv_transpose{n}d")(
                x,
                w,
                None,
                padding=padding,
                output_padding=layer.output_padding,
                groups=layer.groups,
                dilation=layer.dilation,
                **common,
            )
        else:
            named: dict[str, Any] = {"padding": padding, "ceil_mode": layer.ceil_mode, **common}
            if layer.kind == "max_pool":
                getattr(F, f"max_pool{n}d")(x, layer.kernel_size, dilation=layer.dilation, **named)
            else:
                if layer.dilation != (1,) * n:
                    return "avg_pool has no dilation"
                if layer.divisor_override is not None:
                    if n == 1:
                        return "avg_pool1d has no divisor_override"
                    named["divisor_override"] = layer.divisor_override
                getattr(F, f"avg_pool{n}d")(x, layer.kernel_size, count_include_pad=layer.count_include_pad, **named)
    except (RuntimeError, ValueError, TypeError, OverflowError) as err:
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None
