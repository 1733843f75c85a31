"""The framework-neutral layer: one frozen value for any convolution, transposed convolution or pool.

A :class:`Layer` says what was written — the kind, the per-axis hyper-parameters, the padding as a
policy (``"same_tf"``) or as explicit ``(before, after)`` pairs, the channels when known — and
refuses only what no framework gives a meaning to (a stride of 0, a kernel of 0, ``ceil_mode`` on a
convolution, …). What a particular framework refuses is a *rule* of that framework
(:func:`convarith.check`); what a layer does to an input is its *bound* form
(:meth:`Layer.bind`), where every derived fact lives.

Examples
--------
>>> layer = Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding=1)
>>> layer
Layer('conv2d', 3, 16, kernel_size=3, stride=2, padding=1)
>>> layer.kernel_size, layer.padding
((3, 3), ((1, 1), (1, 1)))
>>> layer.bind((1, 3, 32, 32)).output_shape
(1, 16, 16, 16)
>>> Layer.from_dict(layer.to_dict()) == layer
True
>>> Layer("conv_transpose1d", kernel_size=3, stride=0)
Traceback (most recent call last):
...
convarith.errors.ConvArithError: stride: must be at least 1 on every axis; got (0,)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast, get_args

from .errors import ConvArithError

if TYPE_CHECKING:
    from .geometry.bound import BoundLayer

__all__ = [
    "KINDS",
    "OPS",
    "PADDING_MODES",
    "POLICIES",
    "TRANSPOSED_POLICIES",
    "IntOrSeq",
    "Kind",
    "Layer",
    "Pad",
    "PaddingArg",
    "PaddingMode",
    "PaddingPolicy",
    "as_choice",
    "as_int",
    "parse_op",
]

Kind = Literal["conv", "conv_transpose", "max_pool", "avg_pool"]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PaddingPolicy = Literal["valid", "same", "same_tf", "same_upper", "same_lower", "full", "causal"]
Pad = tuple[int, int]
IntOrSeq = int | Sequence[int]
PaddingArg = int | str | Sequence[int | Sequence[int]]

KINDS: tuple[str, ...] = get_args(Kind)
PADDING_MODES: tuple[str, ...] = get_args(PaddingMode)
POLICIES: tuple[str, ...] = get_args(PaddingPolicy)
TRANSPOSED_POLICIES: tuple[str, ...] = ("valid", "same_tf", "same_upper", "same_lower")
"""Policies a transposed convolution takes (TensorFlow's and ONNX's output ``i·s``)."""
OPS: tuple[str, ...] = tuple(f"{kind}{n}d" for kind in KINDS for n in (1, 2, 3))

_PARAM_NAMES = (
    "op",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_padding",
    "bias",
    "padding_mode",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
)
_OP_PATTERN = re.compile(r"^(conv|conv_transpose|max_pool|avg_pool)([1-9])d$")


def parse_op(op: object) -> tuple[Kind, int]:
    """Split an op name such as ``"conv_transpose2d"`` into its kind and number of spatial axes.

    >>> parse_op("avg_pool3d")
    ('avg_pool', 3)
    """
    match = _OP_PATTERN.match(op) if isinstance(op, str) else None
    if match is None:
        raise ConvArithError("op", "must be conv, conv_transpose, max_pool or avg_pool followed by 1d … 9d", repr(op))
    return cast(Kind, match.group(1)), int(match.group(2))


def as_int(param: str, value: object) -> int:
    """An integer (Python or NumPy), never a bool or a float.

    >>> as_int("groups", 2)
    2
    >>> as_int("groups", 2.0)
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: groups: must be an integer; got 2.0
    """
    if isinstance(value, bool):
        raise ConvArithError(param, "must be an integer, not a boolean", value)
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConvArithError(param, "must be an integer", repr(value)) from None


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _per_axis(param: str, value: object, ndim: int) -> tuple[int, ...]:
    """An int for every axis, or one value per axis."""
    if _is_sequence(value):
        values = tuple(as_int(param, v) for v in cast(Sequence[object], value))
        if len(values) == 1:
            return values * ndim
        if len(values) != ndim:
            raise ConvArithError(param, f"needs 1 or {ndim} values for {ndim} spatial axes", values)
        return values
    return (as_int(param, value),) * ndim


def _padding(value: object, ndim: int) -> tuple[Pad, ...] | PaddingPolicy:
    """An int, per-axis ints, per-axis ``(before, after)`` pairs (mixed freely), or a policy."""
    if isinstance(value, str):
        policy = value.lower()
        if policy not in POLICIES:
            raise ConvArithError("padding", f"a padding policy must be one of {', '.join(POLICIES)}", repr(value))
        return cast(PaddingPolicy, policy)
    items: Sequence[object] = cast(Sequence[object], value) if _is_sequence(value) else (value,)
    if len(items) == 1:
        items = tuple(items) * ndim
    if len(items) != ndim:
        raise ConvArithError("padding", f"needs 1 or {ndim} entries for {ndim} spatial axes", tuple(items))
    pairs = []
    for item in items:
        if _is_sequence(item):
            pair = tuple(cast(Sequence[object], item))
            if len(pair) != 2:
                raise ConvArithError("padding", "an asymmetric padding is a (before, after) pair", pair)
            pairs.append((as_int("padding", pair[0]), as_int("padding", pair[1])))
        else:
            p = as_int("padding", item)
            pairs.append((p, p))
    return tuple(pairs)


def as_choice(param: str, value: object, allowed: Sequence[str]) -> str:
    """One of ``allowed`` (a string), the parameter named when it is not.

    >>> as_choice("padding_mode", "reflect", PADDING_MODES)
    'reflect'
    """
    if not isinstance(value, str) or value not in allowed:
        raise ConvArithError(param, f"must be one of {', '.join(allowed)}", repr(value))
    return value


def _flag(param: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConvArithError(param, "must be True or False", repr(value))
    return value


def _short(values: Sequence[int]) -> object:
    """One int when every axis agrees, the tuple otherwise (as one would write it)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


@dataclass(frozen=True, init=False)
class Layer:
    """One convolution, transposed convolution or pooling layer, in PyTorch's naming, any framework's meaning.

    Parameters
    ----------
    op
        ``conv1d`` … ``conv9d``, ``conv_transpose1d`` …, ``max_pool1d`` …, ``avg_pool1d`` ….
    in_channels, out_channels
        Optional: a layer may be described without its channels (a pool keeps them).
    kernel_size, stride, dilation, output_padding
        An int for every axis or one per axis. ``stride=None`` (or an empty sequence, for
        pooling) is PyTorch's default: 1, or the kernel size for pooling.
    padding
        An int, one per axis, ``(before, after)`` pairs per axis (negative values crop), or a
        policy: ``"valid"``, ``"same"`` (PyTorch: total ``d(k−1)``, the odd cell after),
        ``"same_tf"`` (TensorFlow / Keras ``"same"``), ``"same_upper"`` / ``"same_lower"``
        (ONNX ``SAME_UPPER`` / ``SAME_LOWER``), ``"full"`` (``d(k−1)`` each side) or ``"causal"``
        (Keras: ``d(k−1)`` before). Kept as written; :meth:`bind` resolves it for an input.
    groups, bias, padding_mode, ceil_mode, count_include_pad, divisor_override
        As in PyTorch.

    Raises
    ------
    ConvArithError
        Only for what no framework gives a meaning to: a kernel, stride or dilation below 1,
        negative ``output_padding``, ``output_padding`` on anything but a transposed
        convolution, ``ceil_mode`` or ``count_include_pad``-style options on the wrong kind,
        channels that ``groups`` does not divide, a policy a transposed convolution has no
        meaning for (``same``, ``full``, ``causal``), a folding ``padding_mode`` on anything but
        a convolution.

    Examples
    --------
    >>> Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1)
    Layer('conv_transpose2d', 64, 32, kernel_size=4, stride=2, padding=1)
    >>> Layer("max_pool2d", kernel_size=3, stride=2, padding="same_tf").padding
    'same_tf'
    >>> Layer("conv1d", kernel_size=3, padding=[(2, 0)]).padding
    ((2, 0),)
    """

    kind: Kind
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pad, ...] | PaddingPolicy
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    in_channels: int | None
    out_channels: int | None
    bias: bool
    padding_mode: PaddingMode
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None

    def __init__(
        self,
        op: str,
        in_channels: int | None = None,
        out_channels: int | None = None,
        kernel_size: IntOrSeq | None = None,
        *,
        stride: IntOrSeq | None = None,
        padding: PaddingArg = 0,
        dilation: IntOrSeq = 1,
        groups: int = 1,
        output_padding: IntOrSeq = 0,
        bias: bool = True,
        padding_mode: str = "zeros",
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        kind, ndim = parse_op(op)
        if kernel_size is None:
            raise ConvArithError("kernel_size", "is required", None)
        kernel = _per_axis("kernel_size", kernel_size, ndim)
        pooling = kind in ("max_pool", "avg_pool")
        if pooling and (stride is None or (_is_sequence(stride) and len(cast(Sequence[int], stride)) == 0)):
            strides = kernel  # PyTorch: None or an empty sequence means "the kernel size"
        else:
            strides = _per_axis("stride", 1 if stride is None else stride, ndim)
        values = {
            "kind": kind,
            "kernel_size": kernel,
            "stride": strides,
            "padding": _padding(padding, ndim),
            "dilation": _per_axis("dilation", dilation, ndim),
            "output_padding": _per_axis("output_padding", output_padding, ndim),
            "groups": as_int("groups", groups),
            "in_channels": None if in_channels is None else as_int("in_channels", in_channels),
            "out_channels": None if out_channels is None else as_int("out_channels", out_channels),
            "bias": _flag("bias", bias) and not pooling,
            "padding_mode": as_choice("padding_mode", padding_mode, PADDING_MODES),
            "ceil_mode": _flag("ceil_mode", ceil_mode),
            "count_include_pad": _flag("count_include_pad", count_include_pad) or kind != "avg_pool",
            "divisor_override": None if divisor_override is None else as_int("divisor_override", divisor_override),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self._check()

    @classmethod
    def create(cls, op: str, **params: object) -> Layer:
        """``Layer(op, **params)``: the keyword form (and the old ``ConvSpec.create``)."""
        return cls(op, **params)  # type: ignore[arg-type]

    # -- what no framework accepts ------------------------------------------------------------

    def _check(self) -> None:
        for name in ("kernel_size", "stride", "dilation"):
            values = getattr(self, name)
            if min(values) < 1:
                raise ConvArithError(name, "must be at least 1 on every axis", values)
        if self.groups < 1:
            raise ConvArithError("groups", "must be at least 1", self.groups)
        if min(self.output_padding) < 0:
            raise ConvArithError("output_padding", "must not be negative", self.output_padding)
        if not self.transposed and max(self.output_padding) != 0:
            raise ConvArithError(
                "output_padding", f"only transposed convolutions have one, not {self.kind}", self.output_padding
            )
        for name in ("in_channels", "out_channels"):
            count = getattr(self, name)
            if count is not None and count < 1:
                raise ConvArithError(name, "must be at least 1", count)
            if count is not None and count % self.groups:
                raise ConvArithError("groups", f"must divide {name} = {count}", self.groups)
        if self.pooling:
            if self.groups != 1:
                raise ConvArithError("groups", "pooling has no groups; it must be 1", self.groups)
            if None not in (self.in_channels, self.out_channels) and self.in_channels != self.out_channels:
                raise ConvArithError(
                    "out_channels", f"pooling keeps its {self.in_channels} channels", self.out_channels
                )
        elif self.ceil_mode:
            raise ConvArithError("ceil_mode", "applies to pooling only", self.ceil_mode)
        if self.kind != "conv" and self.padding_mode != "zeros":
            raise ConvArithError("padding_mode", f"{self.kind} pads with zeros only", repr(self.padding_mode))
        if self.divisor_override is not None:
            if self.kind != "avg_pool":
                raise ConvArithError("divisor_override", "applies to avg_pool only", self.divisor_override)
            if self.divisor_override == 0:
                raise ConvArithError("divisor_override", "must not be zero", self.divisor_override)
        if isinstance(self.padding, str):
            if self.transposed and self.padding not in TRANSPOSED_POLICIES:
                raise ConvArithError(
                    "padding",
                    f"a transposed convolution takes explicit padding or {', '.join(TRANSPOSED_POLICIES)}",
                    repr(self.padding),
                )
            if self.padding == "same_tf" and max(self.output_padding) != 0:
                raise ConvArithError(
                    "output_padding",
                    "'same_tf' fixes the output at i·s (TensorFlow); leave it at 0",
                    self.output_padding,
                )

    # -- properties ---------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.kernel_size)

    @property
    def op(self) -> str:
        """The functional name, e.g. ``"conv_transpose2d"``."""
        return f"{self.kind}{self.ndim}d"

    @property
    def transposed(self) -> bool:
        return self.kind == "conv_transpose"

    @property
    def pooling(self) -> bool:
        return self.kind in ("max_pool", "avg_pool")

    @property
    def weighted(self) -> bool:
        """A (transposed) convolution: it has a weight."""
        return not self.pooling

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        """Extent of the dilated kernel on each axis, ``d·(k−1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True))

    @property
    def policy(self) -> PaddingPolicy | None:
        """The padding policy as written, or ``None`` for explicit pairs."""
        return self.padding if isinstance(self.padding, str) else None

    @property
    def is_resolved(self) -> bool:
        return not isinstance(self.padding, str)

    @property
    def pads(self) -> tuple[Pad, ...]:
        """The explicit ``(before, after)`` pairs (a policy needs an input: see :meth:`bind`)."""
        if isinstance(self.padding, str):
            raise ConvArithError("padding", f"the policy {self.padding!r} needs the input size; bind() the layer first")
        return self.padding

    # -- derived layers -------------------------------------------------------------------------

    def replace(self, **changes: object) -> Layer:
        """A copy with some parameters changed (in the constructor's terms), checked again.

        >>> Layer("conv2d", kernel_size=3).replace(stride=2).stride
        (2, 2)
        """
        params = self._params()
        params.update(changes)
        op = cast(str, params.pop("op"))
        return Layer(op, **params)  # type: ignore[arg-type]

    def axis(self, n: int) -> Layer:
        """The 1-d layer that axis ``n`` of this one is (same kind, groups and modes)."""
        if not 0 <= n < self.ndim:
            raise ConvArithError("axis", f"must be 0 … {self.ndim - 1}", n)
        return self.replace(
            op=f"{self.kind}1d",
            kernel_size=self.kernel_size[n],
            stride=self.stride[n],
            padding=self.padding if isinstance(self.padding, str) else (self.padding[n],),
            dilation=self.dilation[n],
            output_padding=self.output_padding[n],
        )

    def bind(self, input_shape: Sequence[int]) -> BoundLayer:
        """This layer applied to an input: every shape and per-axis fact (:class:`~convarith.BoundLayer`).

        ``input_shape`` is ``(N, C, *spatial)``, ``(C, *spatial)`` or the spatial sizes alone.

        >>> Layer("conv_transpose1d", kernel_size=3, stride=2, padding="same_tf").bind((4,)).output_shape
        (8,)
        """
        from .geometry.bound import bind

        return bind(self, input_shape)

    # -- the old ConvSpec interface ---------------------------------------------------------------

    def resolve(self, spatial: Sequence[int]) -> Layer:
        """The same layer with its padding policy turned into explicit pairs for these spatial sizes."""
        return self.bind(tuple(spatial)).resolved

    def output_spatial(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Output spatial sizes for these input spatial sizes (the layer's own rules only)."""
        return self.bind(tuple(spatial)).output_spatial

    # -- serialisation ----------------------------------------------------------------------------

    def _params(self) -> dict[str, object]:
        """The constructor's arguments that rebuild this layer."""
        return {
            "op": self.op,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "output_padding": self.output_padding,
            "bias": self.bias,
            "padding_mode": self.padding_mode,
            "ceil_mode": self.ceil_mode,
            "count_include_pad": self.count_include_pad,
            "divisor_override": self.divisor_override,
        }

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data; :meth:`from_dict` rebuilds the same layer.

        >>> Layer("avg_pool1d", kernel_size=2, padding="same_tf").to_dict()["padding"]
        'same_tf'
        """
        data = self._params()
        for name in ("kernel_size", "stride", "dilation", "output_padding"):
            data[name] = list(cast(tuple[int, ...], data[name]))
        if not isinstance(self.padding, str):
            data["padding"] = [list(pair) for pair in self.padding]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Layer:
        """The layer :meth:`to_dict` described (unknown keys are refused)."""
        if not isinstance(data, Mapping):
            raise ConvArithError("layer", "must be a mapping such as Layer.to_dict() gives", type(data).__name__)
        unknown = sorted(set(data) - set(_PARAM_NAMES))
        if unknown:
            raise ConvArithError("layer", "has unknown keys", unknown)
        params = dict(data)
        if "op" not in params:
            raise ConvArithError("layer", "needs 'op'", sorted(params))
        op = params.pop("op")
        return cls(cast(str, op), **params)  # type: ignore[arg-type]

    def _repr_html_(self) -> str:
        """Jupyter: the call and a table of the per-axis parameters."""
        from html import escape

        rows: list[tuple[str, Sequence[object]]] = [
            ("kernel_size", self.kernel_size),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ]
        if not isinstance(self.padding, str):
            rows.append(("padding", tuple(f"{b}, {a}" for b, a in self.padding)))
        if self.transposed:
            rows.append(("output_padding", self.output_padding))
        head = "".join(f"<th>axis {n}</th>" for n in range(self.ndim))
        body = "".join(
            f"<tr><th>{name}</th>" + "".join(f"<td>{escape(str(v))}</td>" for v in values) + "</tr>"
            for name, values in rows
        )
        return f"<p><code>{escape(repr(self))}</code></p><table><tr><th></th>{head}</tr>{body}</table>"

    def __repr__(self) -> str:
        """Reads like the PyTorch call: only what differs from the defaults."""
        args = [repr(self.op)]
        if self.in_channels is not None or self.out_channels is not None:
            args += [repr(self.in_channels), repr(self.out_channels)]
        args.append(f"kernel_size={_short(self.kernel_size)!r}")
        default_stride = self.kernel_size if self.pooling else (1,) * self.ndim
        if self.stride != default_stride:
            args.append(f"stride={_short(self.stride)!r}")
        if isinstance(self.padding, str):
            args.append(f"padding={self.padding!r}")
        elif any(p != (0, 0) for p in self.padding):
            symmetric = all(b == a for b, a in self.padding)
            shown = _short([b for b, _ in self.padding]) if symmetric else self.padding
            args.append(f"padding={shown!r}")
        for name, default in (("dilation", 1), ("output_padding", 0)):
            values = getattr(self, name)
            if values != (default,) * self.ndim:
                args.append(f"{name}={_short(values)!r}")
        if self.groups != 1:
            args.append(f"groups={self.groups}")
        if self.weighted and not self.bias:
            args.append("bias=False")
        if self.padding_mode != "zeros":
            args.append(f"padding_mode={self.padding_mode!r}")
        if self.ceil_mode:
            args.append("ceil_mode=True")
        if not self.count_include_pad:
            args.append("count_include_pad=False")
        if self.divisor_override is not None:
            args.append(f"divisor_override={self.divisor_override}")
        return f"Layer({', '.join(args)})"
