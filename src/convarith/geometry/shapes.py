"""Output shapes with batch and channels, mirroring ``torch.nn.functional`` names and keywords."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConvArithError
from .spec import ConvSpec, IntOrSeq, PaddingArg, _as_int, check_channels, parse_op

__all__ = ["WeightedLayer", "output_shape", "output_shape_of", "weighted_layer"]


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
        ``"same"`` (PyTorch), ``"same_tf"`` (TensorFlow/Keras, alias ``"same_upper"``),
        ``"same_lower"``, ``"full"``.
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
    spec = ConvSpec.create(
        op,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        output_padding=output_padding,
        padding_mode=padding_mode,
        ceil_mode=ceil_mode,
    )
    return output_shape_of(spec, input_shape, out_channels=out_channels)


def output_shape_of(spec: ConvSpec, input_shape: Sequence[int], *, out_channels: int | None = None) -> tuple[int, ...]:
    """:func:`output_shape` for a spec already built."""
    shape = tuple(_as_int("input_shape", v) for v in input_shape)
    if len(shape) not in (spec.ndim + 1, spec.ndim + 2):
        raise ConvArithError(
            "input_shape", f"{spec.op} needs (N, C, {spec.ndim} spatial sizes) or, unbatched, (C, spatial…)", shape
        )
    batch = shape[: -spec.ndim - 1]
    if batch and batch[0] < 0:
        raise ConvArithError("input_shape", "the batch size must not be negative", shape)
    channels = check_channels(spec, shape[-spec.ndim - 1], out_channels)
    return (*batch, channels, *spec.output_spatial(shape[-spec.ndim :]))


@dataclass(frozen=True)
class WeightedLayer:
    """A (transposed) convolution checked against its weight: resolved spec and the shapes it maps."""

    spec: ConvSpec
    """Resolved: explicit ``(before, after)`` pairs (and ``output_padding`` for ``same_tf``)."""
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    in_channels: int
    out_channels: int


def weighted_layer(
    op: str,
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
) -> WeightedLayer:
    """Check a (transposed) convolution given its weight's shape in PyTorch's layout.

    ``op`` is ``"conv"`` or ``"conv_transpose"`` (the weight's rank gives the spatial axes) or a
    full name such as ``"conv2d"``; the weight is ``(C_out, C_in/groups, *k)``, transposed
    ``(C_in, C_out/groups, *k)``; ``input_shape`` is batched or not, as in :func:`output_shape`.

    >>> layer = weighted_layer("conv_transpose", (1, 4, 3, 3), (4, 3, 3, 3), stride=2, groups=2)
    >>> layer.out_channels, layer.out_spatial
    (6, (7, 7))
    """
    kind = op if op in ("conv", "conv_transpose") else parse_op(op)[0]
    if kind not in ("conv", "conv_transpose"):
        raise ConvArithError("op", "a weight belongs to a convolution or a transposed convolution", op)
    layout = "(C_in, C_out/groups, *kernel)" if kind == "conv_transpose" else "(C_out, C_in/groups, *kernel)"
    ndim = len(weight_shape) - 2 if kind == op else parse_op(op)[1]
    if len(weight_shape) != ndim + 2 or ndim < 1:
        raise ConvArithError(
            "weight", f"needs the layout {layout} with {max(ndim, 1)} spatial axes", tuple(weight_shape)
        )
    spec = ConvSpec.create(
        f"{kind}{ndim}d",
        kernel_size=tuple(weight_shape[2:]),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        output_padding=output_padding,
        padding_mode=padding_mode,
    )
    transposed = spec.transposed
    out_channels = weight_shape[1] * spec.groups if transposed else weight_shape[0]
    out_shape = output_shape_of(spec, input_shape, out_channels=out_channels)
    in_channels = int(input_shape[-ndim - 1])
    weight_in = weight_shape[0] if transposed else weight_shape[1] * spec.groups
    if weight_in != in_channels:
        raise ConvArithError(
            "weight",
            f"a {spec.op} weight is {layout}: with {in_channels} input channels and groups {spec.groups} "
            f"its axis {0 if transposed else 1} must be {in_channels if transposed else in_channels // spec.groups}",
            tuple(weight_shape),
        )
    in_spatial = tuple(int(i) for i in input_shape[-ndim:])
    return WeightedLayer(spec.resolve(in_spatial), in_spatial, out_shape[-ndim:], in_channels, out_channels)
