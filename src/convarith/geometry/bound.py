"""A layer bound to an input: every derived fact of the geometry, computed once, in one place.

:func:`bind` resolves the padding policy for the input, checks what no framework accepts (an
output with no cell, channels the groups do not divide), and gives a :class:`BoundLayer` holding
the shapes and, per axis, an :class:`AxisGeometry` with the resolved pads, the stretched size, the
full extent and the ``a`` of the transposed relation. :meth:`BoundLayer.direct` is *the*
equivalent direct convolution of a transposed one, and :meth:`BoundLayer.adjoint` the layer
whose matrix is exactly ``Cᵀ``; reference ops, operators, explanations and pictures all call them.

Examples
--------
The guide's Figure 4.7: the transpose of a 6×6 input, 3×3 kernel, stride 2, padding 1 convolution.

>>> from convarith import Layer
>>> bound = Layer("conv_transpose2d", 1, 1, kernel_size=3, stride=2, padding=1, output_padding=1).bind((1, 1, 3, 3))
>>> bound.output_shape, bound.weight_shape
((1, 1, 6, 6), (1, 1, 3, 3))
>>> eq = bound.direct()
>>> eq.conv.input_spatial, eq.conv.pads, eq.conv.output_spatial
((5, 5), ((1, 2), (1, 2)), (6, 6))
>>> bound.adjoint().layer
Layer('conv2d', 1, 1, kernel_size=3, stride=2, padding=1, bias=False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConvArithError
from ..layer import Layer, Pad, as_int
from .arithmetic import (
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    floor_remainder,
    pool_output_size,
)
from .padding import resolve_policy, resolve_transposed_policy

if TYPE_CHECKING:
    from ..findings import Finding

__all__ = ["AxisEquivalent", "AxisGeometry", "BoundLayer", "DirectEquivalent", "as_bound", "bind", "sample_shape"]


@dataclass(frozen=True)
class AxisGeometry:
    """One spatial axis of a bound layer: its sizes and resolved parameters, and what follows from them."""

    input: int
    output: int
    kernel: int
    stride: int
    dilation: int
    pad: Pad
    """Resolved ``(before, after)``; negative values crop."""
    output_padding: int
    """Resolved (``same_tf`` sets it for a transposed convolution)."""
    transposed: bool = False

    @property
    def extent(self) -> int:
        """``d(k − 1) + 1``, the dilated kernel's extent."""
        return effective_kernel(self.kernel, self.dilation)

    @property
    def reach(self) -> int:
        """``d(k − 1)``: how far the last tap lies from the first."""
        return self.dilation * (self.kernel - 1)

    @property
    def padded(self) -> int:
        """Cells of the padded (or cropped) input of a direct layer."""
        return self.input + self.pad[0] + self.pad[1]

    @property
    def remainder(self) -> int:
        """Direct layer: padded cells after the last window that the floor drops — the guide's
        ``a = (i + 2p − k) mod s`` of relationship 14, and the ``output_padding`` of the transpose."""
        return floor_remainder(self.input, self.kernel, self.stride, self.pad, self.dilation)

    @property
    def stretched(self) -> int:
        """Transposed layer: ``ĩ′ = (i′ − 1)s + 1``, its input with ``s − 1`` zeros between neighbours."""
        return (self.input - 1) * self.stride + 1

    @property
    def full(self) -> int:
        """Transposed layer: the cells its stamps cover, ``output_padding`` included, before the crop."""
        return (self.input - 1) * self.stride + self.extent + self.output_padding

    @property
    def direct_pad(self) -> Pad:
        """Transposed layer: ``(p′_b, p′_a) = (d(k−1) − p_b, d(k−1) − p_a + a)`` of the equivalent
        direct convolution; negative values crop."""
        return (self.reach - self.pad[0], self.reach - self.pad[1] + self.output_padding)

    @property
    def overhang(self) -> int:
        """Direct layer: cells the last window reaches past the padded input (``ceil_mode`` pools)."""
        return max(self.last_window_end, 0)

    @property
    def last_window_end(self) -> int:
        """Direct layer: where the last window ends, against the end of the padded input — positive
        past it (``ceil_mode``'s partial window), negative where the windows stop short (a floor, or
        ``ceil_mode`` dropping a window that would start in the padding). A framework without
        ``ceil_mode`` pads (or crops) the input's end by this to get the same windows."""
        if self.transposed:
            return 0
        return (self.output - 1) * self.stride + self.extent - self.padded

    @property
    def crops(self) -> bool:
        return min(self.pad) < 0


@dataclass(frozen=True)
class AxisEquivalent:
    """One axis of the direct convolution equivalent to a transposed one (the guide's §4.3 terms)."""

    input: int
    """``i′``, the transposed convolution's input size."""
    zeros_between: int
    """``s − 1`` zeros inserted between neighbouring input cells."""
    stretched: int
    """``ĩ′ = (i′ − 1)s + 1``."""
    kernel: int
    dilation: int
    pad: Pad
    """``(p′_b, p′_a)``, the extra ``a`` included in ``p′_a``; negative values crop."""
    output_padding: int
    """``a``: cells added after, inside ``pad[1]``, that no forward window reached."""
    output: int

    @property
    def crops(self) -> bool:
        return min(self.pad) < 0


@dataclass(frozen=True)
class DirectEquivalent:
    """The stride-1 direct convolution that computes a transposed one.

    Insert ``zeros_between`` zeros between neighbouring input cells, then run :attr:`conv` — a
    convolution over the stretched input with padding ``p′`` (negative = crop), the same dilation
    and groups — with the kernel rotated by 180° and its in/out channel axes swapped per group.
    """

    transposed: BoundLayer
    conv: BoundLayer
    zeros_between: tuple[int, ...]
    axes: tuple[AxisEquivalent, ...]


@dataclass(frozen=True)
class BoundLayer:
    """A :class:`~convarith.Layer` applied to an input of a given shape.

    Shapes keep the form of the input they were given: spatial sizes alone, ``(C, *spatial)``,
    or ``(N, C, *spatial)``.
    """

    layer: Layer
    """The layer as written (its padding policy kept)."""
    input_shape: tuple[int, ...]
    in_channels: int
    out_channels: int
    axes: tuple[AxisGeometry, ...]

    # -- shapes -----------------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        return self.layer.ndim

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def op(self) -> str:
        return self.layer.op

    @property
    def transposed(self) -> bool:
        return self.layer.transposed

    @property
    def pooling(self) -> bool:
        return self.layer.pooling

    @property
    def batch(self) -> int | None:
        """The batch size, or ``None`` when the input shape has no batch axis."""
        return self.input_shape[0] if len(self.input_shape) == self.ndim + 2 else None

    @property
    def input_spatial(self) -> tuple[int, ...]:
        return tuple(ax.input for ax in self.axes)

    @property
    def output_spatial(self) -> tuple[int, ...]:
        return tuple(ax.output for ax in self.axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The output's shape, in the form of the input shape."""
        lead = len(self.input_shape) - self.ndim
        head = (*self.input_shape[: -1 - self.ndim], self.out_channels) if lead else ()
        return (*head, *self.output_spatial)

    @property
    def sample_input_shape(self) -> tuple[int, ...]:
        """``(C_in, *spatial)`` of one sample."""
        return (self.in_channels, *self.input_spatial)

    @property
    def sample_output_shape(self) -> tuple[int, ...]:
        """``(C_out, *out)`` of one sample."""
        return (self.out_channels, *self.output_spatial)

    @property
    def pads(self) -> tuple[Pad, ...]:
        """Resolved ``(before, after)`` pairs."""
        return tuple(ax.pad for ax in self.axes)

    @property
    def output_padding(self) -> tuple[int, ...]:
        return tuple(ax.output_padding for ax in self.axes)

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """PyTorch's layout: ``(C_out, C_in/g, *k)``, transposed ``(C_in, C_out/g, *k)``; ``None`` for pooling."""
        g, k = self.layer.groups, self.layer.kernel_size
        if self.pooling:
            return None
        if self.transposed:
            return (self.in_channels, self.out_channels // g, *k)
        return (self.out_channels, self.in_channels // g, *k)

    @property
    def bias_shape(self) -> tuple[int, ...] | None:
        """``(C_out,)`` for a layer with a bias, else ``None``."""
        return (self.out_channels,) if self.layer.bias else None

    @property
    def resolved(self) -> Layer:
        """The layer with explicit pairs (and resolved ``output_padding``) and its channels."""
        return self.layer.replace(
            padding=self.pads,
            output_padding=self.output_padding,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
        )

    def _repr_html_(self) -> str:
        """Jupyter: the shapes, every axis's numbers and the findings (``convarith.web.widget`` is interactive)."""
        from html import escape

        cells: list[tuple[str, list[object]]] = [
            ("input", [ax.input for ax in self.axes]),
            ("kernel", [ax.kernel for ax in self.axes]),
            ("stride", [ax.stride for ax in self.axes]),
            ("dilation", [ax.dilation for ax in self.axes]),
            ("pads (before, after)", [f"{ax.pad[0]}, {ax.pad[1]}" for ax in self.axes]),
            ("output", [ax.output for ax in self.axes]),
        ]
        head = "".join(f"<th>axis {n}</th>" for n in range(self.ndim))
        body = "".join(
            f"<tr><th>{name}</th>" + "".join(f"<td>{escape(str(v))}</td>" for v in values) + "</tr>"
            for name, values in cells
        )
        found = "".join(f"<li><b>{escape(f.code)}</b> {escape(f.message)}</li>" for f in self.findings())
        shapes = f"{self.input_shape} → {self.output_shape}"
        return (
            f"<p><code>{escape(self.caption())}</code><br>{escape(shapes)}</p>"
            f"<table><tr><th></th>{head}</tr>{body}</table>" + (f"<ul>{found}</ul>" if found else "")
        )

    def caption(self) -> str:
        """One line of parameters, e.g. ``conv2d  i=5×5 k=3 s=2 p=1 → o=3×3`` (one value when every axis agrees).

        >>> from convarith import Layer
        >>> layer = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=[(1, 2), 1], output_padding=1)
        >>> layer.bind((3, 3)).caption()
        'conv_transpose2d  i=3×3 k=3 s=2 p=1:2,1 a=1 → o=5×6'
        """
        layer = self.layer

        def fmt(values: Sequence[int]) -> str:
            return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))

        def sizes(values: Sequence[int]) -> str:
            return "×".join(map(str, values))

        pads = self.pads
        symmetric = all(b == a for b, a in pads)
        pad = fmt([b for b, _ in pads]) if symmetric else ",".join(f"{b}:{a}" if b != a else str(b) for b, a in pads)
        parts = [f"i={sizes(self.input_spatial)}", f"k={fmt(layer.kernel_size)}", f"s={fmt(layer.stride)}", f"p={pad}"]
        if max(layer.dilation) > 1:
            parts.append(f"d={fmt(layer.dilation)}")
        if self.transposed and max(self.output_padding) > 0:
            parts.append(f"a={fmt(self.output_padding)}")
        if layer.ceil_mode:
            parts.append("ceil_mode")
        if layer.padding_mode != "zeros":
            parts.append(layer.padding_mode)
        if layer.groups > 1:
            parts.append(f"groups={layer.groups}")
        channels = ""
        if self.in_channels > 1 or self.out_channels > 1:
            channels = f"  C {self.in_channels}→{self.out_channels}"
        return f"{self.op}  {' '.join(parts)} → o={sizes(self.output_spatial)}{channels}"

    # -- counts -----------------------------------------------------------------------------------

    @property
    def parameter_count(self) -> int:
        """Weights plus biases (0 for pooling)."""
        weight = self.weight_shape
        if weight is None:
            return 0
        return math.prod(weight) + (self.out_channels if self.layer.bias else 0)

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one sample, bias excluded, 0 for pooling.

        Convention: ``C_out · ∏out · (C_in/g) · ∏k`` — every output cell of every output channel
        takes one product per weight of its group. A transposed convolution is counted as its
        equivalent direct convolution (the multiplications by the inserted zeros included), which
        is the same formula over its own output.
        """
        if self.pooling:
            return 0
        return (
            self.out_channels
            * math.prod(self.output_spatial)
            * (self.in_channels // self.layer.groups)
            * math.prod(self.layer.kernel_size)
        )

    # -- related layers ---------------------------------------------------------------------------

    def _with(self, layer: Layer, spatial: Sequence[int], channels: int) -> BoundLayer:
        lead = self.input_shape[: len(self.input_shape) - self.ndim]
        shape = (*lead[:-1], channels) if lead else ()
        return bind(layer, (*shape, *spatial))

    def direct(self) -> DirectEquivalent:
        """The stride-1 direct convolution equivalent to this transposed one (the guide's §4.3).

        >>> from convarith import Layer
        >>> eq = Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1).bind((3,)).direct()
        >>> eq.zeros_between, eq.conv.input_spatial, eq.conv.pads
        ((1,), (5,), ((1, 2),))
        """
        if not self.transposed:
            raise ConvArithError(
                "op", "an equivalent direct convolution is defined for transposed convolutions", self.op
            )
        layer = self.layer
        conv = Layer(
            f"conv{self.ndim}d",
            self.in_channels,
            self.out_channels,
            kernel_size=layer.kernel_size,
            padding=tuple(ax.direct_pad for ax in self.axes),
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias,
        )
        bound = self._with(conv, [ax.stretched for ax in self.axes], self.in_channels)
        axes = tuple(
            AxisEquivalent(
                ax.input,
                ax.stride - 1,
                ax.stretched,
                ax.kernel,
                ax.dilation,
                ax.direct_pad,
                ax.output_padding,
                ax.output,
            )
            for ax in self.axes
        )
        return DirectEquivalent(self, bound, tuple(ax.stride - 1 for ax in self.axes), axes)

    def adjoint(self) -> BoundLayer:
        """The layer whose matrix is exactly ``Cᵀ`` of this one, bound to this layer's output.

        A convolution's adjoint is the transposed convolution with the same kernel, stride,
        padding, dilation and groups and ``output_padding`` equal to the floor's remainder (so it
        gives back exactly this input). A transposed convolution's adjoint is that direct
        convolution, its padding after reduced by ``s·⌊a/s⌋`` when ``output_padding a ≥ s`` (which
        PyTorch allows when dilation exceeds the stride) so that it has no window too many.

        >>> from convarith import Layer
        >>> adj = Layer("conv1d", 1, 4, kernel_size=3, stride=2, padding=1).bind((1, 6)).adjoint()
        >>> adj.layer, adj.output_shape
        (Layer('conv_transpose1d', 4, 1, kernel_size=3, stride=2, padding=1, output_padding=1, bias=False), (1, 6))
        """
        layer = self.layer
        if self.pooling:
            raise ConvArithError("op", "a pool's adjoint is not a layer; use pool_matrix(...).T", self.op)
        if not self.transposed and layer.padding_mode != "zeros":
            raise ConvArithError(
                "padding_mode",
                f"with {layer.padding_mode!r} padding Cᵀ also folds the padded gradient back into the input, which "
                "no single layer does; adjoint() the 'zeros' layer over the padded input and fold after "
                "(conv_operator does)",
                repr(layer.padding_mode),
            )
        common = {
            "kernel_size": layer.kernel_size,
            "stride": layer.stride,
            "dilation": layer.dilation,
            "groups": layer.groups,
            "bias": False,
        }
        if self.transposed:
            pads = tuple((ax.pad[0], ax.pad[1] - ax.stride * (ax.output_padding // ax.stride)) for ax in self.axes)
            adjoint = Layer(f"conv{self.ndim}d", self.out_channels, self.in_channels, padding=pads, **common)  # type: ignore[arg-type]
        else:
            adjoint = Layer(
                f"conv_transpose{self.ndim}d",
                self.out_channels,
                self.in_channels,
                padding=self.pads,
                output_padding=tuple(ax.remainder for ax in self.axes),
                **common,  # type: ignore[arg-type]
            )
        return self._with(adjoint, self.output_spatial, self.out_channels)

    def findings(self, framework: str | None = None) -> tuple[Finding, ...]:
        """Every diagnosis of this bound layer (and, given a framework, that framework's rules).

        >>> from convarith import Layer
        >>> [f.code for f in Layer("conv_transpose1d", kernel_size=3, stride=2).bind((4,)).findings()]
        ['uneven-overlap', 'output-padding-choice']
        """
        from ..findings import diagnose

        found = list(diagnose(self))
        if framework is not None:
            from ..rules import check

            found = [*check(self.layer, self.input_shape, framework=framework), *found]
        return tuple(found)


def sample_shape(shape: object, ndim: int, *, param: str = "input_shape") -> tuple[int, ...]:
    """A shape as a tuple of ints of one of the accepted lengths (spatial, C + spatial, N + C + spatial)."""
    if shape is None or isinstance(shape, str | bytes) or not isinstance(shape, Sequence):
        raise ConvArithError(param, "must be a sequence of integers", repr(shape))
    sizes = tuple(as_int(param, v) for v in shape)
    if len(sizes) not in (ndim, ndim + 1, ndim + 2):
        raise ConvArithError(
            param,
            f"needs {ndim} spatial sizes, optionally after C or N, C ({ndim}, {ndim + 1} or {ndim + 2} values)",
            sizes,
        )
    return sizes


def as_bound(layer: Layer | BoundLayer, input_shape: Sequence[int] | None = None) -> BoundLayer:
    """A bound layer as it is, or a layer bound to ``input_shape`` — the two forms geometry functions take.

    >>> as_bound(Layer("conv1d", kernel_size=3), (5,)).output_spatial
    (3,)
    """
    if isinstance(layer, BoundLayer):
        if input_shape is not None:
            raise ConvArithError("input_shape", "a bound layer already has its input; leave it out", repr(input_shape))
        return layer
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
    if input_shape is None:
        raise ConvArithError("input_shape", "a Layer needs the input's shape (spatial sizes, after C or N, C)", None)
    return bind(layer, input_shape)


def bind(layer: Layer, input_shape: Sequence[int]) -> BoundLayer:
    """Apply ``layer`` to an input of ``input_shape`` (see :meth:`Layer.bind`).

    Raises
    ------
    ConvArithError
        For an input no framework could take: sizes below 1 (a batch may be 0), channels that
        differ from the layer's or that its groups do not divide, or an output with no cell.
    """
    if not isinstance(layer, Layer):
        raise ConvArithError("layer", "must be a convarith.Layer", type(layer).__name__)
    n = layer.ndim
    shape = sample_shape(input_shape, n)
    spatial = shape[len(shape) - n :]
    if len(shape) == n + 2 and shape[0] < 0:
        raise ConvArithError("input_shape", "the batch size must not be negative", shape)
    if min(spatial) < 1:
        raise ConvArithError("input_shape", "spatial sizes must be at least 1", shape)
    given = shape[-n - 1] if len(shape) > n else None
    if given is not None and given < 1:
        raise ConvArithError("input_shape", "the channel count must be at least 1", shape)
    if given is not None and layer.in_channels is not None and given != layer.in_channels:
        raise ConvArithError("input_shape", f"the layer takes {layer.in_channels} input channels", shape)
    c_in = given if given is not None else (layer.in_channels or layer.groups)
    if c_in % layer.groups:
        raise ConvArithError("groups", f"must divide the {c_in} input channels", layer.groups)
    c_out = c_in if layer.pooling or layer.out_channels is None else layer.out_channels

    axes = []
    policy = layer.policy
    for m, i in enumerate(spatial):
        k, s, d, a = layer.kernel_size[m], layer.stride[m], layer.dilation[m], layer.output_padding[m]
        if layer.transposed:
            pad, a = resolve_transposed_policy(policy, k, s, d, a) if policy is not None else (layer.pads[m], a)
            o = conv_transpose_output_size(i, k, s, pad, d, a)
        else:
            pad = resolve_policy(policy, i, k, s, d) if policy is not None else layer.pads[m]
            o = (
                pool_output_size(i, k, s, pad, d, layer.ceil_mode)
                if layer.pooling
                else conv_output_size(i, k, s, pad, d)
            )
        if layer.padding_mode == "circular" and i + min(pad[0], 0) + min(pad[1], 0) < 1:
            raise ConvArithError("padding", f"the crop leaves no input cell on axis {m} to wrap around", layer.padding)
        axes.append(AxisGeometry(i, o, k, s, d, pad, a, layer.transposed))
    out = tuple(ax.output for ax in axes)
    if min(out) < 1:
        if layer.kind == "conv":
            padded = tuple(ax.padded for ax in axes)
            raise ConvArithError(
                "input_shape",
                f"the padded input {padded} must be at least the dilated kernel {layer.effective_kernel} on every axis",
                shape,
            )
        raise ConvArithError(
            "input_shape", f"{layer.op} would give an output of size {out}; every size must be at least 1", shape
        )
    return BoundLayer(layer, shape, c_in, c_out, tuple(axes))
