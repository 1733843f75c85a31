"""The explorer's state: what the page asks for, read from JSON with every value bounded first.

The page keeps its whole state in the URL and sends it as JSON; :func:`read_state` checks it
before anything is computed (types, ranges, sizes) and names the field at fault in the
:class:`~convarith.ConvArithError` it raises, with the names the layer uses (``kernel_size``,
``padding``, …) so the page can point at the input the user wrote. Nothing here evaluates text.

>>> state = read_state({"op": "conv2d", "input_shape": [5, 5], "kernel_size": 3, "padding": 1})
>>> state.layer()
Layer('conv2d', 1, 1, kernel_size=3, padding=1)
>>> state.input_shape, state.framework
((1, 1, 5, 5), 'torch')
>>> read_state({"op": "conv2d", "input_shape": [500, 5], "kernel_size": 3})
Traceback (most recent call last):
...
convarith.errors.ConvArithError: input_shape: each value must be 1 … 128; got 500
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from ..errors import ConvArithError
from ..layer import PADDING_MODES, POLICIES, Layer, PaddingPolicy, as_choice, parse_op

__all__ = ["FRAMEWORKS", "LIMITS", "State", "bounded_int", "read_state", "state_for"]

FRAMEWORKS: dict[str, str] = {"torch": "PyTorch", "keras": "Keras", "jax": "JAX", "onnx": "ONNX", "tf": "TensorFlow"}
"""The frameworks whose conventions and refusals the page shows, and their names."""

LIMITS: dict[str, tuple[int, int]] = {
    "input_shape": (1, 128),
    "channels": (1, 8),
    "kernel_size": (1, 16),
    "stride": (1, 8),
    "dilation": (1, 8),
    "padding": (-16, 32),
    "output_padding": (0, 15),
    "groups": (1, 8),
    "seed": (0, 2**31 - 1),
}
"""Inclusive ranges of every integer the page may send (checked before any work)."""

MAX_INPUT_CELLS = 16_384
"""Most input cells (every channel): a 128 × 128 picture of one channel."""
MAX_VALUE = 1e6
"""Largest magnitude of a value the user types or draws."""

View = Literal["direct", "scatter"]


def bounded_int(field: str, value: object, limit: str | None = None) -> int:
    """An integer within ``LIMITS[limit or field]``, the ``field`` named when it is not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConvArithError(field, "must be an integer", repr(value))
    low, high = LIMITS[limit or field]
    if not low <= value <= high:
        raise ConvArithError(field, f"each value must be {low} … {high}", value)
    return value


def _per_axis(field: str, value: object, ndim: int, limit: str | None = None) -> tuple[int, ...]:
    values = [value] * ndim if not isinstance(value, list) else value
    if len(values) != ndim:
        raise ConvArithError(field, f"needs one value per axis ({ndim})", repr(value))
    return tuple(bounded_int(field, v, limit) for v in values)


def _padding(value: object, ndim: int) -> tuple[tuple[int, int], ...] | PaddingPolicy:
    if isinstance(value, str):
        if value not in POLICIES:
            raise ConvArithError("padding", f"a policy must be one of {', '.join(POLICIES)}", repr(value))
        return cast(PaddingPolicy, value)
    if not isinstance(value, list):
        pair = bounded_int("padding", value)
        return ((pair, pair),) * ndim
    if len(value) != ndim:
        raise ConvArithError("padding", f"needs one (before, after) pair per axis ({ndim})", repr(value))
    pairs = []
    for item in value:
        if isinstance(item, list) and len(item) == 2:
            pairs.append((bounded_int("padding", item[0]), bounded_int("padding", item[1])))
        else:
            p = bounded_int("padding", item)
            pairs.append((p, p))
    return tuple(pairs)


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConvArithError(field, "must be true or false", repr(value))
    return value


def _values(field: str, value: object, count: int) -> tuple[float, ...] | None:
    """A flat list of finite numbers of exactly ``count`` entries, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count:
        size = len(value) if isinstance(value, list) else type(value).__name__
        raise ConvArithError(field, f"must be a list of {count} numbers", size)
    numbers = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > MAX_VALUE:
            raise ConvArithError(field, f"must hold finite numbers of magnitude at most {MAX_VALUE:g}", repr(v))
        numbers.append(float(v))
    return tuple(numbers)


@dataclass(frozen=True)
class State:
    """Everything the page shows, as checked values (:func:`read_state` makes one)."""

    op: str
    input_spatial: tuple[int, ...]
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | PaddingPolicy
    output_padding: tuple[int, ...]
    groups: int
    padding_mode: str
    ceil_mode: bool
    count_include_pad: bool
    framework: str
    view: View
    numeric: bool
    seed: int
    flip: bool
    input_values: tuple[float, ...] | None
    kernel_values: tuple[float, ...] | None

    @property
    def pooling(self) -> bool:
        return "pool" in self.op

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(1, C, *spatial)``: one sample."""
        return (1, self.in_channels, *self.input_spatial)

    def layer(self) -> Layer:
        """The layer the state describes (its own refusals raised, named)."""
        params: dict[str, object] = {
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
        }
        if self.pooling:
            params |= {"ceil_mode": self.ceil_mode}
            if self.op.startswith("avg"):
                params |= {"count_include_pad": self.count_include_pad}
            return Layer(self.op, **params)  # type: ignore[arg-type]
        params |= {"groups": self.groups, "padding_mode": self.padding_mode}
        if self.op.startswith("conv_transpose"):
            params |= {"output_padding": self.output_padding}
        return Layer(self.op, self.in_channels, self.out_channels, **params)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, the form the page keeps in its URL."""
        data = asdict(self)
        data["input_shape"] = list(data.pop("input_spatial"))
        if not isinstance(self.padding, str):
            data["padding"] = [list(pair) for pair in self.padding]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


_DEFAULTS: dict[str, object] = {
    "in_channels": 1,
    "out_channels": 1,
    "stride": 1,
    "dilation": 1,
    "padding": 0,
    "output_padding": 0,
    "groups": 1,
    "padding_mode": "zeros",
    "ceil_mode": False,
    "count_include_pad": True,
    "framework": "torch",
    "view": "direct",
    "numeric": False,
    "seed": 0,
    "flip": False,
    "input_values": None,
    "kernel_values": None,
}


def read_state(data: object) -> State:
    """Check what the page sent (a JSON object) and make a :class:`State`; unknown fields are refused."""
    if not isinstance(data, Mapping):
        raise ConvArithError("request", "must be a JSON object", type(data).__name__)
    unknown = sorted(set(data) - set(_DEFAULTS) - {"op", "input_shape", "kernel_size"})
    if unknown:
        raise ConvArithError("request", "has fields the explorer does not know", ", ".join(map(str, unknown)))
    given = {**_DEFAULTS, **data}
    op = given.get("op")
    _, ndim = parse_op(op)
    if ndim > 3:
        raise ConvArithError("op", "the explorer draws 1-d, 2-d and 3-d layers", repr(op))
    op = cast(str, op)
    if "input_shape" not in given or "kernel_size" not in given:
        raise ConvArithError("request", "needs op, input_shape and kernel_size", None)
    spatial = _per_axis("input_shape", given["input_shape"], ndim)
    channels = bounded_int("in_channels", given["in_channels"], "channels")
    pooling = "pool" in op
    out_channels = channels if pooling else bounded_int("out_channels", given["out_channels"], "channels")
    if channels * math.prod(spatial) > MAX_INPUT_CELLS:
        raise ConvArithError(
            "input_shape", f"at most {MAX_INPUT_CELLS:,} input cells (channels × sizes)", channels * math.prod(spatial)
        )
    kernel = _per_axis("kernel_size", given["kernel_size"], ndim)
    groups = 1 if pooling else bounded_int("groups", given["groups"])
    weight_count = out_channels * (channels // max(groups, 1)) * math.prod(kernel)
    return State(
        op=op,
        input_spatial=spatial,
        in_channels=channels,
        out_channels=out_channels,
        kernel_size=kernel,
        stride=_per_axis("stride", given["stride"], ndim),
        dilation=_per_axis("dilation", given["dilation"], ndim),
        padding=_padding(given["padding"], ndim),
        output_padding=_per_axis("output_padding", given["output_padding"], ndim),
        groups=groups,
        padding_mode=as_choice("padding_mode", given["padding_mode"], PADDING_MODES),
        ceil_mode=_flag("ceil_mode", given["ceil_mode"]),
        count_include_pad=_flag("count_include_pad", given["count_include_pad"]),
        framework=as_choice("framework", given["framework"], tuple(FRAMEWORKS)),
        view=cast(View, as_choice("view", given["view"], ("direct", "scatter"))),
        numeric=_flag("numeric", given["numeric"]),
        seed=bounded_int("seed", given["seed"]),
        flip=_flag("flip", given["flip"]),
        input_values=_values("input_values", given["input_values"], channels * math.prod(spatial)),
        kernel_values=None if pooling else _values("kernel_values", given["kernel_values"], weight_count),
    )


def state_for(layer: Layer, input_shape: Sequence[int]) -> dict[str, Any]:
    """The page's state for a layer and an input (spatial, ``(C, *spatial)`` or ``(N, C, *spatial)``)."""
    bound = layer.bind(tuple(input_shape))
    padding = layer.padding if isinstance(layer.padding, str) else [list(pair) for pair in layer.padding]
    state: dict[str, Any] = {
        "op": layer.op,
        "input_shape": list(bound.input_spatial),
        "in_channels": bound.in_channels,
        "kernel_size": list(layer.kernel_size),
        "stride": list(layer.stride),
        "dilation": list(layer.dilation),
        "padding": padding,
        "ceil_mode": layer.ceil_mode,
        "count_include_pad": layer.count_include_pad,
    }
    if layer.weighted:
        state |= {"out_channels": bound.out_channels, "groups": layer.groups, "padding_mode": layer.padding_mode}
        state |= {"output_padding": list(layer.output_padding)}
    return read_state(state).to_dict()  # checked here: a bad layer is refused before any page asks
