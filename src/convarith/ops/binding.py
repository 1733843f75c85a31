"""From what a caller gave (a layer, a bound layer, or an op name and PyTorch's keywords) to one bound layer.

Every public function of :mod:`convarith.ops` takes its layer in one of three forms, and this
module is where they meet:

* a :class:`~convarith.geometry.bound.BoundLayer`: used as it is (it knows its input);
* a :class:`~convarith.Layer` and an input shape: bound, channels the layer leaves open taken from
  the weight; only the layer's own rules apply (a crop, ONNX's negative transposed pads, …);
* an op name and PyTorch's keywords: the layer is built and PyTorch's rules are applied
  (:func:`~convarith.geometry.shapes.weighted_layer`, :func:`~convarith.rules.raise_refusals`).

With a layer, PyTorch's keywords must stay at their defaults: the layer already says them.

Examples
--------
>>> from convarith import Layer
>>> bound = bind_weighted(Layer("conv_transpose1d", kernel_size=3, stride=2), (2, 4), (2, 5, 3))
>>> bound.in_channels, bound.out_channels, bound.output_shape
(2, 5, (5, 9))
>>> reject_keywords({"stride": 2, "padding": 0}, {"stride": 1, "padding": 0})
Traceback (most recent call last):
...
convarith.errors.ConvArithError: stride: the layer sets it; leave it at its default 1 when passing a layer; got 2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ConvArithError
from ..geometry.bound import BoundLayer, sample_shape
from ..geometry.shapes import check_weight, weight_layer, weighted_layer
from ..layer import Layer, parse_op

__all__ = [
    "WEIGHTED_DEFAULTS",
    "LayerArg",
    "bind_call",
    "bind_pool",
    "bind_weighted",
    "one_sample",
    "reject_keywords",
    "sample_of",
]

LayerArg = Layer | BoundLayer


def _same(value: object, default: object) -> bool:
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except (TypeError, ValueError):
        return False


def reject_keywords(given: Mapping[str, object], defaults: Mapping[str, object]) -> None:
    """Refuse a PyTorch keyword set next to a layer (the layer already says it)."""
    for name, value in given.items():
        default = defaults[name]
        if not _same(value, default):
            raise ConvArithError(
                name,
                f"the layer sets it; leave it at its default {default!r} when passing a layer",
                repr(value),
            )


def _check_layer(layer: object) -> Layer | BoundLayer:
    if not isinstance(layer, Layer | BoundLayer):
        raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
    return layer


def _shape(shape: object, ndim: int, param: str) -> tuple[int, ...]:
    return sample_shape(shape, ndim, param=param)


def bind_weighted(
    layer: Layer | BoundLayer,
    input_shape: Sequence[int] | None,
    weight_shape: Sequence[int],
    *,
    param: str = "input_shape",
) -> BoundLayer:
    """The bound (transposed) convolution of a layer-first call, its weight checked.

    A :class:`Layer` needs ``input_shape``; the channels it leaves open come from the weight
    (PyTorch's layout: ``(C_out, C_in/g, *k)``, transposed ``(C_in, C_out/g, *k)``) when the
    input shape does not give them. A :class:`BoundLayer` takes no ``input_shape`` (``param``
    names it in the refusal).
    """
    layer = _check_layer(layer)
    wshape = tuple(weight_shape)
    if isinstance(layer, BoundLayer):
        if input_shape is not None:
            raise ConvArithError(param, "a bound layer already has its input shape; leave it out", tuple(input_shape))
        bound = layer
    else:
        if not layer.weighted:
            raise ConvArithError("op", f"{layer.op} has no weight (see pool_matrix and the pools)", layer.op)
        if input_shape is None:
            raise ConvArithError(
                param, f"a Layer needs the input shape ({layer.ndim} spatial sizes, after C or N, C)", None
            )
        shape = _shape(input_shape, layer.ndim, param)
        channels = len(shape) > layer.ndim
        # The channels the weight says (PyTorch's layout, written once in weight_layer).
        from_weight = weight_layer(layer.op, wshape, groups=layer.groups)
        changes: dict[str, object] = {}
        if layer.out_channels is None:
            changes["out_channels"] = from_weight.out_channels
        if layer.in_channels is None and not channels:
            changes["in_channels"] = from_weight.in_channels
        if changes:
            layer = layer.replace(**changes)
        bound = layer.bind(shape)
    if not bound.layer.weighted:
        raise ConvArithError("op", f"{bound.op} has no weight (see pool_matrix and the pools)", bound.op)
    check_weight(bound, wshape)
    return bound


WEIGHTED_DEFAULTS: dict[str, object] = {
    "stride": 1,
    "padding": 0,
    "dilation": 1,
    "groups": 1,
    "output_padding": 0,
    "padding_mode": "zeros",
}
"""PyTorch's keywords of a (transposed) convolution and their defaults (for :func:`bind_call`)."""


def bind_call(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None,
    weight_shape: Sequence[int],
    keywords: Mapping[str, object],
    *,
    caller: str,
) -> BoundLayer:
    """The one bound (transposed) convolution of a per-sample call (``conv_matrix``, ``conv_operator``).

    An op name takes PyTorch's ``keywords`` and rules (``input_shape`` is ``(C, *spatial)`` or
    ``(1, C, *spatial)``); a layer takes none of them (they must stay at
    :data:`WEIGHTED_DEFAULTS`).
    """
    if isinstance(layer, str):
        kind, ndim = parse_op(layer)
        if kind not in ("conv", "conv_transpose"):
            raise ConvArithError("op", f"{caller} takes conv… or conv_transpose… (pooling: see pool_matrix)", layer)
        sample = one_sample(layer, ndim, input_shape, channels=True)
        params = dict(keywords)
        if kind == "conv_transpose":
            mode = params.pop("padding_mode", "zeros")
            if mode != "zeros":
                raise ConvArithError("padding_mode", f"{kind} pads with zeros only", repr(mode))
        return weighted_layer(layer, sample, weight_shape, **params)
    reject_keywords(keywords, WEIGHTED_DEFAULTS)
    if isinstance(layer, Layer):
        if layer.pooling:
            raise ConvArithError("op", f"{caller} takes (transposed) convolutions; pooling: see pool_matrix", layer.op)
        if input_shape is not None:
            input_shape = one_sample(layer.op, layer.ndim, input_shape, channels=False)
    return bind_weighted(layer, input_shape, weight_shape)


def bind_pool(
    layer: Layer | BoundLayer, input_shape: Sequence[int] | None, *, param: str = "input_shape"
) -> BoundLayer:
    """The bound pool of a layer-first call."""
    layer = _check_layer(layer)
    if isinstance(layer, BoundLayer):
        if input_shape is not None:
            raise ConvArithError(param, "a bound layer already has its input shape; leave it out", tuple(input_shape))
        bound = layer
    else:
        if input_shape is None:
            raise ConvArithError(
                param, f"a Layer needs the input shape ({layer.ndim} spatial sizes, after C or N, C)", None
            )
        bound = layer.bind(_shape(input_shape, layer.ndim, param))
    if not bound.pooling:
        raise ConvArithError("op", f"{bound.op} is not a pool", bound.op)
    return bound


def sample_of(bound: BoundLayer, array_shape: Sequence[int], param: str = "input") -> bool:
    """Check that an array ``(N, C, *spatial)`` or ``(C, *spatial)`` is what ``bound`` takes; True when unbatched."""
    n = bound.ndim
    shape = tuple(array_shape)
    if len(shape) not in (n + 1, n + 2) or shape[-n - 1 :] != bound.sample_input_shape:
        raise ConvArithError(
            param,
            f"{bound.op} takes (N, C, *spatial) or (C, *spatial) with (C, *spatial) = {bound.sample_input_shape}",
            shape,
        )
    return len(shape) == n + 1


def one_sample(op: str, ndim: int, input_shape: object, *, channels: bool) -> tuple[int, ...]:
    """An explicit input shape of one sample (a matrix, an operator): a leading batch must be 1 and is dropped.

    >>> one_sample("conv2d", 2, (1, 3, 8, 8), channels=True)
    (3, 8, 8)
    """
    shape = sample_shape(input_shape, ndim)
    if len(shape) == ndim + 2:
        if shape[0] != 1:
            raise ConvArithError("input_shape", "C acts on one sample: a leading batch must be 1", shape)
        shape = shape[1:]
    if channels and len(shape) != ndim + 1:
        raise ConvArithError("input_shape", f"{op} needs (C, {ndim} spatial sizes) or (1, C, …)", shape)
    return shape
