"""The PyTorch-keyword front door: output shapes that mirror ``torch.nn.functional`` names and keywords.

These functions take PyTorch's arguments, build a :class:`~convarith.Layer`, refuse exactly what
PyTorch refuses (:mod:`convarith.rules.torch`) and bind it; everything else works on layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConvArithError
from ..layer import IntOrSeq, Layer, PaddingArg, as_int, parse_op
from ..rules import raise_refusals
from .bound import BoundLayer, sample_shape

__all__ = ["check_weight", "output_shape", "output_shape_of", "weight_layer", "weighted_layer"]


def output_shape(
    op: str,
    input_shape: Sequence[int],
    *,
    out_channels: int | None = None,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Shape of ``op``'s output for an input of ``input_shape``, exactly as PyTorch computes it.

    Parameters
    ----------
    op
        ``conv1d``…``conv3d``, ``conv_transpose1d``…``conv_transpose3d``, ``max_pool1d``…``3d``
        or ``avg_pool1d``…``3d``.
    input_shape
        ``(N, C, *spatial)``; an unbatched ``(C, *spatial)`` is accepted as PyTorch does.
    out_channels
        Output channels of a (transposed) convolution; ``None`` keeps ``C``.
    kernel_size, stride, dilation, output_padding
        An int for every axis or one per axis. ``stride=None`` is PyTorch's default (1, or the
        kernel size for pooling).
    padding
        An int, one per axis, ``(before, after)`` pairs per axis, or a policy: ``"valid"``,
        ``"same"`` (PyTorch), ``"same_tf"`` (TensorFlow/Keras), ``"same_upper"`` /
        ``"same_lower"`` (ONNX), ``"full"``, ``"causal"`` (Keras).
    groups, padding_mode, ceil_mode
        As in PyTorch.

    Returns
    -------
    tuple of int
        The output shape, batched or not like the input.

    Raises
    ------
    ConvArithError
        Exactly when PyTorch would refuse the configuration, naming the parameter and the rule.
        For a batch of 0 samples PyTorch skips the checks of its compute kernels (it accepts, say,
        any ``output_padding`` or empty spatial sizes); convarith answers as for a batch of 1.

    Examples
    --------
    >>> output_shape("conv2d", (1, 3, 32, 32), out_channels=16, kernel_size=3, stride=2, padding=1)
    (1, 16, 16, 16)
    >>> output_shape("conv_transpose2d", (1, 16, 16, 16), out_channels=3, kernel_size=3, stride=2,
    ...              padding=1, output_padding=1)
    (1, 3, 32, 32)
    >>> output_shape("max_pool2d", (8, 64, 7, 7), kernel_size=2, ceil_mode=True)
    (8, 64, 4, 4)
    """
    kind, ndim = parse_op(op)
    shape = sample_shape(input_shape, ndim)
    if len(shape) == ndim:
        raise ConvArithError(
            "input_shape", f"{op} needs (N, C, {ndim} spatial sizes) or, unbatched, (C, spatial…)", shape
        )
    layer = Layer(
        op,
        out_channels=None if kind in ("max_pool", "avg_pool") else out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        output_padding=output_padding,
        padding_mode=padding_mode,
        ceil_mode=ceil_mode,
    )
    if layer.pooling and out_channels is not None and out_channels != shape[-ndim - 1]:
        raise ConvArithError("out_channels", f"pooling keeps the {shape[-ndim - 1]} input channels", out_channels)
    return output_shape_of(layer, shape)


def output_shape_of(layer: Layer, input_shape: Sequence[int], *, out_channels: int | None = None) -> tuple[int, ...]:
    """:func:`output_shape` for a layer already built (PyTorch's rules applied)."""
    if out_channels is not None:
        layer = layer.replace(out_channels=as_int("out_channels", out_channels))
    raise_refusals(layer, input_shape, framework="torch")
    return layer.bind(input_shape).output_shape


def weight_layer(op: str, weight_shape: Sequence[int], **params: object) -> Layer:
    """The layer a weight of ``weight_shape`` (PyTorch's layout) belongs to.

    ``op`` is ``"conv"`` or ``"conv_transpose"`` (the weight's rank gives the spatial axes) or a
    full name such as ``"conv2d"``; the weight is ``(C_out, C_in/groups, *k)``, transposed
    ``(C_in, C_out/groups, *k)``. Channels come from the weight.

    >>> weight_layer("conv_transpose", (4, 3, 3, 3), stride=2, groups=2)
    Layer('conv_transpose2d', 4, 6, kernel_size=3, stride=2, groups=2)
    """
    kind = op if op in ("conv", "conv_transpose") else parse_op(op)[0]
    if kind not in ("conv", "conv_transpose"):
        raise ConvArithError("op", "a weight belongs to a convolution or a transposed convolution", op)
    if not isinstance(weight_shape, Sequence) or isinstance(weight_shape, str | bytes):
        raise ConvArithError("weight", "needs a shape", repr(weight_shape))
    wshape = tuple(as_int("weight", v) for v in weight_shape)
    layout = "(C_in, C_out/groups, *kernel)" if kind == "conv_transpose" else "(C_out, C_in/groups, *kernel)"
    ndim = len(wshape) - 2 if kind == op else parse_op(op)[1]
    if len(wshape) != ndim + 2 or ndim < 1:
        raise ConvArithError("weight", f"needs the layout {layout} with {max(ndim, 1)} spatial axes", wshape)
    if min(wshape) < 1:
        raise ConvArithError("weight", "every axis must be at least 1", wshape)
    groups = as_int("groups", params.get("groups", 1))
    if groups < 1:
        raise ConvArithError("groups", "must be at least 1", groups)
    if kind == "conv_transpose":
        in_channels, out_channels = wshape[0], wshape[1] * groups
    else:
        in_channels, out_channels = wshape[1] * groups, wshape[0]
    return Layer(
        f"{kind}{ndim}d",
        in_channels,
        out_channels,
        kernel_size=wshape[2:],
        **params,  # type: ignore[arg-type]
    )


def check_weight(bound: BoundLayer, weight_shape: Sequence[int]) -> None:
    """Refuse a weight whose shape is not the bound layer's (PyTorch's layout)."""
    if bound.weight_shape is None:
        raise ConvArithError("weight", f"{bound.op} has no weight", tuple(weight_shape))
    if tuple(weight_shape) != bound.weight_shape:
        layout = "(C_in, C_out/groups, *kernel)" if bound.transposed else "(C_out, C_in/groups, *kernel)"
        raise ConvArithError(
            "weight",
            f"a {bound.op} weight is {layout}: with {bound.in_channels} input and {bound.out_channels} output "
            f"channels and groups {bound.layer.groups} it must be {bound.weight_shape}",
            tuple(weight_shape),
        )


def weighted_layer(op: str, input_shape: Sequence[int], weight_shape: Sequence[int], **params: object) -> BoundLayer:
    """A (transposed) convolution from PyTorch's keywords and its weight's shape, PyTorch's rules applied.

    >>> bound = weighted_layer("conv_transpose", (1, 4, 3, 3), (4, 3, 3, 3), stride=2, groups=2)
    >>> bound.out_channels, bound.output_spatial
    (6, (7, 7))
    """
    layer = weight_layer(op, weight_shape, **params)
    shape = sample_shape(input_shape, layer.ndim)
    if len(shape) == layer.ndim:
        raise ConvArithError("input_shape", f"{layer.op} needs (N, C, spatial…) or (C, spatial…)", shape)
    c_in = shape[-layer.ndim - 1]
    if c_in != layer.in_channels:
        transposed = layer.transposed
        layout = "(C_in, C_out/groups, *kernel)" if transposed else "(C_out, C_in/groups, *kernel)"
        wanted = (
            c_in if transposed else (c_in // layer.groups if c_in % layer.groups == 0 else f"{c_in}/{layer.groups}")
        )
        raise ConvArithError(
            "weight",
            f"a {layer.op} weight is {layout}: with {c_in} input channels and groups {layer.groups} its axis "
            f"{0 if transposed else 1} must be {wanted}",
            tuple(weight_shape),
        )
    raise_refusals(layer, shape, framework="torch")
    return layer.bind(shape)
