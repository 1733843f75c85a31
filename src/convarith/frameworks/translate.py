"""Translation: a layer written in one framework, written in another, with its weights, proving itself.

:func:`translate` reads the source (a :class:`~convarith.Layer`, a layer string in any framework's
syntax, a framework's own layer object, or an ONNX node), checks the target framework's rules, and
returns a :class:`Translation`: the target's code (a module defining ``make(weight, bias=None)``
that takes the **source's** weights, converts them and returns the target layer loaded with them),
the steps in the target's words, and the findings (what the target could not say in one layer,
and pitfalls hit). :meth:`Translation.check` runs source and target on random inputs and weights
and reports the largest difference.

Reading and writing are pure Python; a framework is imported only to read its objects, to build
and to run.

Examples
--------
>>> try:
...     translate("nn.MaxPool1d(2, padding=2)", to="onnx")
... except ConvArithError as err:
...     print(err.param, "→", err.rule)
padding → a pooling pad must be at most half the kernel size (2,) (PyTorch refuses this layer)
>>> t = translate("nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)", to="torch")
>>> t.steps
('nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)',)
>>> t.check().passed
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..layer import Layer
from . import ADAPTERS, adapter, detect
from .base import NEUTRAL, Emitted, build, max_difference, random_arrays, tolerance

if TYPE_CHECKING:
    from ..findings import Finding

__all__ = ["Check", "Translation", "parse", "pitfalls", "translate"]

# the first name of a dotted call → the framework whose syntax it is
_PREFIX = {
    "nn": "torch",
    "F": "torch",
    "torch": "torch",
    "functional": "torch",
    "keras": "keras",
    "layers": "keras",
    "lax": "jax",
    "jax": "jax",
    "tf": "tf",
    "tensorflow": "tf",
}


def _syntax_of(name: str) -> str:
    """The framework whose call ``name`` is: by its module prefix, else by its spelling."""
    parts = name.split(".")
    if parts[0] in ("tf", "tensorflow") and "keras" in parts:
        return "keras"
    if len(parts) > 1 and parts[0] in _PREFIX:
        return _PREFIX[parts[0]]
    leaf = parts[-1]
    if leaf.endswith(("D", "DTranspose")) or leaf.startswith(("MaxPooling", "AveragePooling")):
        return "keras"  # Conv2D, Conv2DTranspose, MaxPooling2D, DepthwiseConv2D …
    if leaf[:-1] in ("Conv", "ConvTranspose", "MaxPool", "AvgPool") and leaf.endswith("d"):
        return "torch"  # Conv2d, ConvTranspose1d, MaxPool3d …
    if leaf in ("conv_general_dilated", "conv_transpose", "reduce_window", "conv_with_general_padding"):
        return "jax"
    raise ConvArithError(
        "source",
        "names no layer convarith reads: write e.g. nn.Conv2d(…), keras.layers.Conv2D(…), "
        "lax.conv_general_dilated(…) or tf.nn.conv2d(…)",
        name,
    )


def parse(text: str) -> tuple[str, Layer, tuple[int, ...] | None]:
    """A layer string as ``(framework, layer, input shape or None)``; literals only, never evaluated.

    >>> parse("nn.MaxPool2d(3, stride=2, ceil_mode=True)")
    ('torch', Layer('max_pool2d', kernel_size=3, stride=2, ceil_mode=True), None)
    """
    from .syntax import call_name, parse_source

    call = parse_source(text)
    framework = _syntax_of(call_name(call))
    layer, shape = adapter(framework).parse_call(call, text)
    return framework, layer, shape


def _read(source: object) -> tuple[str | None, Layer, tuple[int, ...] | None]:
    """``(framework or None, layer, input shape)`` from anything :func:`translate` takes."""
    if isinstance(source, Layer):
        return None, source, None
    if isinstance(source, str):
        if source.strip().endswith(".onnx"):
            raise ConvArithError("source", "is an .onnx path: read its nodes with translate_model", source)
        return parse(source)
    framework = detect(source)
    return framework, adapter(framework).from_native(source), None


@dataclass(frozen=True)
class Check:
    """Source and target run on the same random input and weights: their largest difference."""

    max_difference: float
    """Largest absolute difference between the target's output and the source's."""
    max_reference_difference: float
    """Largest absolute difference between the target's output and convarith's reference ops."""
    tolerance: float
    """What counts as equal: scaled by the outputs' size, looser for float32."""
    dtype: str
    output_shape: tuple[int, ...]
    source: str
    target: str

    @property
    def passed(self) -> bool:
        return self.max_difference <= self.tolerance and self.max_reference_difference <= self.tolerance

    def __str__(self) -> str:
        verdict = "equal" if self.passed else "DIFFERENT"
        return (
            f"{verdict}: max |{self.target} − {self.source}| = {self.max_difference:.3g} "
            f"(tolerance {self.tolerance:.1g}, {self.dtype}, output {self.output_shape})"
        )


@dataclass(frozen=True)
class Translation:
    """A layer written in the target framework, with the conversion of the source's weights."""

    source: str
    """The source framework, or ``"convarith"`` for a :class:`~convarith.Layer`."""
    target: str
    layer: Layer
    input_shape: tuple[int, ...] | None
    emitted: Emitted
    source_emitted: Emitted | None

    @property
    def steps(self) -> tuple[str, ...]:
        """The target's pieces in its own words, in order."""
        return self.emitted.steps

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What the target needs around the layer, and the pitfalls of this pair of frameworks."""
        return self.emitted.findings + pitfalls(self.layer, self.source, self.target, self.input_shape)

    @property
    def code(self) -> str:
        """A module defining ``make(weight, bias=None)``: the source's weight in, the target layer out."""
        return self.emitted.code(source=self.source_emitted or NEUTRAL)

    def make(self, weight: npt.ArrayLike | None = None, bias: npt.ArrayLike | None = None) -> Any:
        """The target layer, built by :attr:`code` from a weight in the source's layout."""
        namespace: dict[str, Any] = {}
        exec(compile(self.code, f"<convarith translation to {self.target}>", "exec"), namespace)
        return namespace["make"](weight, bias)

    def check(self, *, seed: int = 0, input_shape: Sequence[int] | None = None) -> Check:
        """Run source and target on random values; both must equal convarith's reference ops.

        The source's weights go through :attr:`code` exactly as a user's would. The input is
        ``input_shape``, else the translation's, else a small one that every window fits.
        """
        from ..ops.reference import apply

        shape = tuple(input_shape) if input_shape is not None else self.input_shape or _small_input(self.layer)
        bound = self.layer.bind(shape)
        x, w, b = random_arrays(bound, seed)
        want = apply(bound, x, w, b)
        target = adapter(self.target)
        emitted = self.emitted if self.input_shape == bound.input_shape else target.emit(self.layer, bound.input_shape)
        translation = self if emitted is self.emitted else _replace_emitted(self, emitted)
        native = _native_weight(self.source_emitted, w)
        got = np.asarray(target.apply(emitted, translation.make(native, b), x), dtype=np.float64)
        if self.source_emitted is None:
            source_out, dtypes = want, {emitted.dtype}
        else:
            source = adapter(self.source)
            made = build(self.source_emitted, w, b)
            source_out = np.asarray(source.apply(self.source_emitted, made, x), dtype=np.float64)
            dtypes = {emitted.dtype, self.source_emitted.dtype}
        dtype = "float64" if dtypes == {"float64"} else "float32"
        taps = math.prod(self.layer.kernel_size) * max(1, bound.in_channels // self.layer.groups)
        return Check(
            max_difference=max_difference(got, source_out),
            max_reference_difference=max_difference(got, want),
            tolerance=tolerance(dtype, want, taps),
            dtype=dtype,
            output_shape=bound.output_shape,
            source=self.source,
            target=self.target,
        )

    def to_dict(self) -> dict[str, object]:
        """Everything as JSON-ready values."""
        return {
            "source": self.source,
            "target": self.target,
            "layer": self.layer.to_dict(),
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "steps": list(self.steps),
            "layout": self.emitted.layout,
            "dtype": self.emitted.dtype,
            "findings": [f.to_dict() for f in self.findings],
            "code": self.code,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _replace_emitted(t: Translation, emitted: Emitted) -> Translation:
    return Translation(t.source, t.target, t.layer, t.input_shape, emitted, t.source_emitted)


def _native_weight(source: Emitted | None, w: npt.NDArray[np.float64] | None) -> Any:
    """``w`` (convarith's layout) in the source framework's layout, as the source layer holds it."""
    if source is None or w is None or source.weight_out == "w":
        return w
    return eval(source.weight_out, {"np": np, "w": w})  # convarith's own expression (Emitted.weight_out)


def _small_input(layer: Layer) -> tuple[int, ...]:
    """An input every window fits, with one or two channels per group."""
    from .base import channels

    c_in = layer.in_channels if layer.in_channels is not None else layer.groups
    c_in, _ = channels(layer, (1, c_in, *(1,) * layer.ndim))
    size = [2 * e + s + 1 for e, s in zip(layer.effective_kernel, layer.stride, strict=True)]
    return (2, c_in, *size)


_CHANNELS_LAST = ("keras", "tf")


def pitfalls(layer: Layer, source: str, target: str, input_shape: Sequence[int] | None = None) -> tuple[Finding, ...]:
    """The catalogue entries (``docs/pitfalls.md``) that a translation from ``source`` to ``target``
    of ``layer`` runs into, as ``pitfall`` findings.

    >>> up = Layer("conv_transpose2d", 8, 4, kernel_size=4, stride=2, padding=1)
    >>> [f.data["entry"] for f in pitfalls(up, "torch", "keras")]
    ['torch-transposed-padding', 'kernel-layouts']
    """
    from ..findings import finding

    pair = {source, target}
    hits: list[tuple[str, str, str]] = []  # (framework, what, entry)
    pads = layer.pads if layer.is_resolved else ()
    if layer.policy in ("same_tf", "same_upper", "same_lower") and ("torch" in pair or input_shape is not None):
        resolved = layer.bind(input_shape).pads if input_shape is not None else ()
        if any(b != a for b, a in resolved) or max(layer.stride) > 1:
            hits.append((target, "TensorFlow's SAME pads the odd cell after, by the input size", "tf-same-asymmetric"))
    if layer.policy == "same" and "torch" in pair and any(e % 2 == 0 for e in layer.effective_kernel):
        hits.append(("torch", "'same' with an even kernel pads the extra cell after", "torch-same"))
    if (
        layer.transposed
        and source == "torch"
        and target != "torch"
        and (any(p for pair_ in pads for p in pair_) or any(layer.output_padding))
    ):
        hits.append(
            (
                target,
                "PyTorch's transposed padding crops the output; output_padding adds cells after",
                "torch-transposed-padding",
            )
        )
    if layer.transposed and layer.groups > 1 and target in ("keras", "tf"):
        hits.append((target, "has no grouped transposed convolution", "transposed-groups"))
    if layer.weighted and (source in _CHANNELS_LAST) != (target in _CHANNELS_LAST):
        hits.append((target, "keeps its kernel in another layout; the weights are transposed", "kernel-layouts"))
    if layer.kind == "avg_pool" and len(pair & {"torch", "onnx", "tf", "keras"}) == 2 and (pads or layer.policy):
        hits.append((target, "counts padded cells in the average by another default", "count-include-pad"))
    if layer.pooling and layer.ceil_mode and target in ("keras", "tf", "jax"):
        hits.append((target, "has no ceil_mode: the last window is written as padding", "pool-ceil-mode"))
    return tuple(finding("pitfall", None, framework=fw, what=what, entry=entry) for fw, what, entry in hits)


def _full_shape(layer: Layer, shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """``(N, C, *spatial)``: one sample and the layer's channels where the shape leaves them out."""
    if shape is None:
        return None
    given = tuple(shape)
    if len(given) == layer.ndim:
        c = layer.in_channels if layer.in_channels is not None else layer.groups
        return (1, c, *given)
    if len(given) == layer.ndim + 1:
        return (1, *given)
    return given


def _emit(framework: str, layer: Layer, shape: tuple[int, ...] | None) -> Emitted:
    """The framework's code for the layer; its refusal named as that framework's."""
    chosen = adapter(framework)
    try:
        return chosen.emit(layer, shape)
    except ConvArithError as err:
        if err.param in ("input_shape", "in_channels", "out_channels"):
            raise
        raise ConvArithError(err.param, f"{err.rule} ({chosen.LABEL} refuses this layer)", err.value) from None


def translate(
    source: object,
    to: str,
    *,
    input_shape: Sequence[int] | None = None,
) -> Translation:
    """``source`` written in the framework ``to``, with the conversion of the source's weights.

    Parameters
    ----------
    source
        A :class:`~convarith.Layer`; a layer string in PyTorch, Keras, JAX (``lax``) or TensorFlow
        syntax (parsed with :mod:`ast`, literals only; arrays written as their shapes); or a
        framework's own layer object (``nn.Conv2d``, a Keras layer, an ONNX node or one-node model).
    to
        ``"torch"``, ``"keras"``, ``"jax"``, ``"onnx"`` or ``"tf"``.
    input_shape
        ``(N, C, *spatial)``; needed where the layer's padding depends on the input size
        (TensorFlow's ``SAME`` at a stride above 1) and to pin the pads of the translation.

    Raises
    ------
    ConvArithError
        When the source cannot be read, or the target refuses the layer: the target's rule, named.

    Examples
    --------
    >>> t = translate("keras.layers.Conv2D(16, 3, strides=2, padding='same')", to="torch", input_shape=(1, 3, 32, 32))
    >>> t.steps
    ('nn.ZeroPad2d((0, 1, 0, 1))', 'nn.Conv2d(3, 16, 3, stride=2)')
    """
    if not isinstance(to, str) or to not in ADAPTERS:
        raise ConvArithError("to", f"must be one of {', '.join(ADAPTERS)}", repr(to))
    framework, layer, parsed_shape = _read(source)
    shape = _full_shape(layer, input_shape if input_shape is not None else parsed_shape)
    if shape is not None:
        layer.bind(shape)  # the layer's own refusals on this input, before any framework's
    if framework is not None:
        source_emitted: Emitted | None = _emit(framework, layer, shape)  # the source's layout of the weights
    else:
        source_emitted = None
    emitted = _emit(to, layer, shape)
    return Translation(framework or "convarith", to, layer, shape, emitted, source_emitted)
