"""What every framework adapter gives, and the pieces they share: emitted code, building it, running it.

An adapter (one module per framework: :mod:`convarith.frameworks.torch`, ``keras``, ``jax``,
``onnx``, ``tf``) turns a :class:`~convarith.Layer` into that framework's own layer or call. It
does so by writing **code** (an :class:`Emitted`): the imports and the lines that build the target
from a weight in convarith's layout, plus the lines that take a weight in the framework's own
layout to convarith's. Everything that runs a framework runs that code, so a translation printed
for a user is the code the tests and ``convarith verify`` executed.

The neutral layouts: inputs and outputs are ``(N, C, *spatial)``; weights are PyTorch's
``(out, in/groups, *k)`` for convolutions and ``(in, out/groups, *k)`` for transposed ones (ONNX's
layouts are the same); the bias has one value per output channel.

Nothing here imports a framework.
"""

from __future__ import annotations

import ast
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError

if TYPE_CHECKING:
    from ..findings import Finding
    from ..geometry.bound import BoundLayer
    from ..layer import Layer

__all__ = ["NEUTRAL", "Adapter", "Emitted", "KnownBug", "build", "max_difference", "random_arrays", "run", "tolerance"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Emitted:
    """A layer written in one framework: runnable code and the facts behind it.

    ``build`` is a block of Python statements that, given ``w`` (the weight in convarith's layout,
    a NumPy array, ``None`` for pools) and ``b`` (the bias or ``None``), binds ``layer``: the
    framework's object or a function of one argument, taking the input in ``layout``.
    ``weight_in`` is a block that takes ``w`` from the framework's own layout to convarith's (empty
    when they are the same, as for PyTorch and ONNX); ``weight_out`` is the expression taking ``w``
    from convarith's layout to the framework's (what ``build`` loads).
    """

    framework: str
    imports: tuple[str, ...]
    build: str
    call: str
    """How ``layer`` is applied to an input ``x`` in the framework's layout (one expression)."""
    layout: str
    """``"channels_first"`` (N, C, *spatial) or ``"channels_last"`` (N, *spatial, C)."""
    steps: tuple[str, ...]
    """The pieces in the framework's words, in order (``F.pad(…)``, ``nn.Conv2d(…)``, a crop)."""
    weight_in: str = ""
    weight_out: str = "w"
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    """What the translation had to work around (explicit pads, crops, splits) and pitfalls hit."""
    dtype: str = "float64"
    """The precision the framework runs this layer in (``float32`` where it has no float64)."""

    def code(self, *, source: Emitted | None = None) -> str:
        """A module defining ``make(weight, bias=None)``: the target built with the weights loaded.

        ``weight`` is in ``source``'s layout (this framework's own when ``source`` is ``None``).
        """
        weight_in = (source or self).weight_in
        converts = source is not None and bool(source.weight_in)
        imports = sorted({"import numpy as np", *self.imports, *(source.imports if source and converts else ())})
        layout = (source or self).framework
        doc = f"weight in {layout}'s layout; returns the {self.framework} layer, called as {self.call}"
        body = "\n".join(
            [
                f'"""{doc}."""',
                "w = None if weight is None else np.asarray(weight)",
                f"if w is not None:\n{textwrap.indent(weight_in, '    ')}" if weight_in else "",
                "b = None if bias is None else np.asarray(bias)",
                self.build,
                "return layer",
            ]
        )
        body = "\n".join(line for line in body.splitlines() if line.strip())
        return "\n".join(imports) + "\n\n\ndef make(weight, bias=None):\n" + textwrap.indent(body, "    ") + "\n"


@dataclass(frozen=True)
class KnownBug:
    """A case a framework computes wrongly by its own specification: what, where it is reported, and
    which bound layers hit it (``convarith verify`` lists these instead of failing on them)."""

    runner: str
    name: str
    what: str
    hits: Callable[[BoundLayer], bool]
    thread: str = ""


def max_difference(got: npt.NDArray[Any], want: npt.NDArray[Any]) -> float:
    """The largest absolute difference; equal infinities (a max pool window of padding only) and NaN
    in both (an average over no counted cell, 0/0) are equal; any other infinity or NaN is an
    infinite difference, as is a different shape.

    >>> max_difference(np.array([1.0, -np.inf]), np.array([1.5, -np.inf]))
    0.5
    >>> max_difference(np.array([np.nan]), np.array([1.0]))
    inf
    """
    if got.shape != want.shape:
        return math.inf
    same = (got == want) | (np.isnan(got) & np.isnan(want))  # equal infinities; 0/0 in both
    finite = np.isfinite(got) & np.isfinite(want)
    if not np.all(same | finite):
        return math.inf
    with np.errstate(invalid="ignore"):  # inf − inf where both are the same infinity
        return float(np.abs(np.where(finite, got - want, 0.0)).max(initial=0.0))


def random_arrays(bound: BoundLayer, seed: int = 0) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """The input, weight and bias a check runs ``bound`` on: standard normal, drawn in that order
    from ``numpy.random.default_rng(seed)`` (so a seed names a case everywhere: tests, translation
    checks, the sweep and its reproducers).

    >>> from convarith import Layer
    >>> [None if a is None else a.shape for a in random_arrays(Layer("conv1d", 1, 2, kernel_size=3).bind((1, 1, 5)))]
    [(1, 1, 5), (2, 1, 3), (2,)]
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(bound.input_shape)
    w = None if bound.weight_shape is None else rng.standard_normal(bound.weight_shape)
    b = None if bound.bias_shape is None else rng.standard_normal(bound.bias_shape)
    return x, w, b


def tolerance(dtype: str, reference: npt.NDArray[Any], taps: int) -> float:
    """What counts as equal to ``reference``: the rounding of a sum of ``taps`` products — a few
    units in the last place of ``dtype``, times the outputs' size and the square root of ``taps``.

    >>> tolerance("float64", np.ones(3), 9) < 1e-13 < tolerance("float32", np.ones(3), 9) < 1e-5
    True
    """
    scale = max(1.0, float(np.abs(reference[np.isfinite(reference)]).max(initial=0.0)))
    eps = float(np.finfo(np.float64 if dtype == "float64" else np.float32).eps)
    return 16 * eps * scale * math.sqrt(max(taps, 1))


class Adapter(Protocol):
    """The module interface of an adapter (module-level names; see the module docstring)."""

    NAME: str
    LABEL: str

    def installed(self) -> bool: ...
    def version(self) -> str: ...
    def emit(self, layer: Layer, input_shape: Sequence[int] | None = None) -> Emitted: ...
    def apply(self, emitted: Emitted, made: Any, input: FloatArray) -> FloatArray: ...
    def from_native(self, obj: object) -> Layer: ...
    def parse_call(self, call: ast.Call, source: str) -> tuple[Layer, tuple[int, ...] | None]: ...
    def findings(self, layer: Layer, input_shape: Sequence[int] | None = None) -> list[Finding]: ...


NEUTRAL = Emitted("convarith", (), "", "", "channels_first", ())
"""convarith's own layouts, as a source: its ``weight_in`` is empty."""


def build(emitted: Emitted, weight: npt.ArrayLike | None, bias: npt.ArrayLike | None = None) -> Any:
    """Execute ``emitted``'s code and return ``make(weight, bias)`` (weight in convarith's layout).

    This runs code convarith wrote, never text from a user.
    """
    namespace: dict[str, Any] = {}
    code = emitted.code(source=NEUTRAL)  # the weight is convarith's: no weight_in
    exec(compile(code, f"<convarith {emitted.framework} translation>", "exec"), namespace)
    return namespace["make"](weight, bias)


def run(
    adapter: Adapter,
    bound: BoundLayer,
    input: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
) -> FloatArray:
    """Run ``bound`` in the adapter's framework: emit, build with the weights, apply to ``input``.

    ``input`` is ``(N, C, *spatial)`` with the bound layer's input shape; the result is the
    framework's output as float64 in the same layout.
    """
    x = np.asarray(input, dtype=np.float64)
    if x.shape != bound.input_shape:
        raise ConvArithError("input", f"must have the bound layer's input shape {bound.input_shape}", x.shape)
    emitted = adapter.emit(bound.layer, bound.input_shape)
    made = build(emitted, None if weight is None else np.asarray(weight, dtype=np.float64), bias)
    return np.asarray(adapter.apply(emitted, made, x), dtype=np.float64)


_INPUT_DEPENDENT = ("same_tf", "same_upper", "same_lower")


def explicit(layer: Layer, input_shape: Sequence[int] | None = None) -> Layer:
    """``layer`` with explicit ``(before, after)`` pairs (and a transposed layer's resolved
    ``output_padding``): for ``input_shape`` when given, else when the policy does not depend on the
    input size (every policy at stride 1, every transposed one, ``full``, ``causal``).

    >>> from convarith import Layer
    >>> explicit(Layer("conv1d", kernel_size=4, padding="same")).padding
    ((1, 2),)
    >>> explicit(Layer("conv1d", kernel_size=3, stride=2, padding="same_tf"))
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: input_shape: is needed: 'same_tf' padding at stride (2,) depends on the input size
    """
    if input_shape is not None:
        return layer.bind(input_shape).resolved
    if layer.is_resolved:
        return layer
    if not layer.transposed and layer.policy in _INPUT_DEPENDENT and max(layer.stride) > 1:
        raise ConvArithError(
            "input_shape", f"is needed: {layer.policy!r} padding at stride {layer.stride} depends on the input size"
        )
    # any input size gives the same pads here: one long enough for every window
    return layer.bind(tuple(2 * e + s for e, s in zip(layer.effective_kernel, layer.stride, strict=True))).resolved


def channels(layer: Layer, input_shape: Sequence[int] | None) -> tuple[int, int]:
    """The layer's (in, out) channels: as written, else from ``input_shape`` (pools keep them).

    >>> from convarith import Layer
    >>> channels(Layer("conv2d", out_channels=8, kernel_size=3), (1, 3, 9, 9))
    (3, 8)
    """
    given = tuple(input_shape) if input_shape is not None else ()
    c_in = layer.in_channels
    if c_in is None and len(given) > layer.ndim:
        c_in = given[-layer.ndim - 1]
    if c_in is None:
        raise ConvArithError("in_channels", "is needed (give the layer's channels or an input shape with C)")
    # as a bound layer counts them: unwritten output channels are the input's
    return c_in, layer.out_channels if layer.out_channels is not None and not layer.pooling else c_in


def short(values: Sequence[int]) -> str:
    """One number when every axis agrees, else the tuple (as frameworks accept both).

    >>> short((2, 2)), short((1, 2))
    ('2', '(1, 2)')
    """
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))
