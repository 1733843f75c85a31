"""Shared hypothesis strategies: layers, bound layers, inputs, and PyTorch keyword calls.

``layers()`` draws any :class:`~convarith.Layer` the layer model accepts (kind, 1–3 spatial axes,
per-axis kernel / stride / dilation, padding as ints, ``(before, after)`` pairs with crops, or a
policy; padding modes, ``output_padding``, pooling options, channels and groups). ``bound_layers()``
binds one to an input chosen so that the output is not empty. ``torch_valid()`` filters with
``convarith.check(..., framework="torch")`` through ``assume``. ``torch_calls()`` draws raw PyTorch
keyword calls, valid and invalid, for the front door (``output_shape``).

Sizes are drawn so that most draws are usable: filters reject a few per cent, not a third.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume, reject
from hypothesis import strategies as st

from convarith import BoundLayer, ConvArithError, Layer, check
from convarith.cases import DIRECT_POLICIES, POOLS, WEIGHTED, bound_layers, input_shapes, layers
from convarith.layer import KINDS, PADDING_MODES

__all__ = [
    "DIRECT_POLICIES",
    "POOLS",
    "WEIGHTED",
    "bind_or_reject",
    "bound_layers",
    "depthwise_layers",
    "examples",
    "input_shapes",
    "layers",
    "torch_bound_layers",
    "torch_calls",
    "torch_errors",
    "torch_valid",
]


def torch_errors(layer: Layer, shape: Sequence[int] | None = None) -> list[str]:
    """The refusals of PyTorch's rules, as messages."""
    return [f.message for f in check(layer, shape, framework="torch") if f.severity == "error"]


def torch_valid(bound: BoundLayer) -> BoundLayer:
    """``assume`` that PyTorch accepts the bound layer (its rules say so); returns it."""
    assume(not torch_errors(bound.layer, bound.input_shape))
    return bound


def bind_or_reject(layer: Layer, shape: Sequence[int]) -> BoundLayer:
    """``layer.bind(shape)``, or a rejected draw when the input cannot take the layer (an empty output,
    a crop of more than there is); any other error fails the test."""
    try:
        return layer.bind(shape)
    except ConvArithError:
        reject()


@st.composite
def depthwise_layers(
    draw: st.DrawFn,
    *,
    max_groups: int,
    max_size: tuple[int, int],
    batches: tuple[int, int] = (2, 2),
) -> BoundLayer:
    """One input channel per group (depthwise) with a channel multiplier 1–3, any layer-first geometry
    (strides, dilations, crops, padding modes), 1–3 axes of up to ``max_size`` cells (1–2 d, 3-d),
    a batch from the ``batches`` range."""
    ndim = draw(st.integers(1, 3))
    groups, multiplier = draw(st.integers(1, max_groups)), draw(st.integers(1, 3))
    layer = draw(layers(kinds=("conv",), ndims=(ndim,), channels=False))
    layer = layer.replace(in_channels=groups, out_channels=groups * multiplier, groups=groups)
    shape = draw(st.tuples(*[st.integers(1, max_size[ndim == 3])] * ndim))
    return bind_or_reject(layer, (draw(st.integers(*batches)), groups, *shape))


@st.composite
def torch_bound_layers(draw: st.DrawFn, **layer_options: Any) -> BoundLayer:
    """A bound layer PyTorch accepts (through F.pad for asymmetric pads and crops)."""
    return torch_valid(draw(bound_layers(layers(**layer_options))))


# -- PyTorch keyword calls (the front door) -------------------------------------------------------------


@dataclass
class TorchCall:
    """One PyTorch call: the op, the input shape, the keywords and (convolutions) the output channels."""

    op: str
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    out_channels: int | None = None


@st.composite
def torch_calls(draw: st.DrawFn) -> TorchCall:
    """PyTorch keyword calls, valid and invalid (about a third refused), of every kind in 1–3 d."""
    kind = draw(st.sampled_from(list(KINDS)))
    ndim = draw(st.integers(1, 3))
    op = f"{kind}{ndim}d"
    small = st.integers(1, 4) if ndim == 3 else st.integers(1, 9)

    def maybe_bad(good: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
        return st.one_of(good, st.integers(-1, 0)) if draw(st.integers(0, 15)) == 0 else good

    def per_axis(values: st.SearchStrategy[int]) -> int | tuple[int, ...]:
        return draw(st.one_of(values, st.tuples(*[values] * ndim)))

    spatial = tuple(draw(st.just(0)) if draw(st.integers(0, 30)) == 0 else draw(small) for _ in range(ndim))
    kernel = per_axis(maybe_bad(st.integers(1, 4)))
    stride: Any = per_axis(maybe_bad(st.integers(1, 3)))
    batch = draw(st.integers(0, 2))
    if kind in WEIGHTED:
        groups = draw(maybe_bad(st.integers(1, 3)))
        aligned = draw(st.integers(0, 3)) > 0 and groups > 0
        in_channels = groups * draw(st.integers(1, 2)) if aligned else draw(st.integers(1, 6))
        out_channels = groups * draw(st.integers(1, 2)) if aligned else draw(st.integers(1, 6))
        dilation = per_axis(maybe_bad(st.integers(1, 3)))
        kwargs: dict[str, Any] = {"kernel_size": kernel, "stride": stride, "dilation": dilation, "groups": groups}
        if kind == "conv":
            if draw(st.integers(0, 4)) == 0:
                kwargs["padding"] = draw(st.sampled_from(["same", "valid"]))
            else:
                kwargs["padding"] = per_axis(maybe_bad(st.integers(0, 4)))
            kwargs["padding_mode"] = draw(st.sampled_from(list(PADDING_MODES)))
        else:
            kwargs["padding"] = per_axis(maybe_bad(st.integers(0, 4)))
            kwargs["output_padding"] = per_axis(maybe_bad(st.sampled_from([0, 0, 0, 1, 1, 2, 3])))
        return TorchCall(op, (batch, in_channels, *spatial), kwargs, out_channels)
    if draw(st.integers(0, 6)) == 0:
        stride = draw(st.sampled_from([None, (), []]))  # PyTorch: the kernel size
    kwargs = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": per_axis(maybe_bad(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))),
        "ceil_mode": draw(st.booleans()),
    }
    if kind == "max_pool":
        kwargs["dilation"] = per_axis(maybe_bad(st.integers(1, 3)))
    return TorchCall(op, (batch, draw(st.integers(1, 3)), *spatial), kwargs)


seeds = st.integers(0, 2**31 - 1)
"""Seeds for the random arrays of a case (:func:`oracle_torch.random_arrays`)."""


def examples(ci: int) -> Any:
    """``@settings`` with ``ci`` examples under the ``ci`` profile and a tenth of them (at least 10) otherwise."""
    from hypothesis import settings

    n = ci if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else max(ci // 10, 10)
    return settings(max_examples=n)
