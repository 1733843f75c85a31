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

from hypothesis import assume
from hypothesis import strategies as st

from convarith import BoundLayer, ConvArithError, Layer, check
from convarith.layer import KINDS, PADDING_MODES, TRANSPOSED_POLICIES

DIRECT_POLICIES = ("valid", "same", "same_tf", "same_upper", "same_lower", "full", "causal")
WEIGHTED = ("conv", "conv_transpose")
POOLS = ("max_pool", "avg_pool")


def _per_axis(draw: st.DrawFn, ndim: int, values: st.SearchStrategy[int]) -> tuple[int, ...]:
    return tuple(draw(values) for _ in range(ndim))


@st.composite
def layers(
    draw: st.DrawFn,
    kinds: Sequence[str] = KINDS,
    ndims: Sequence[int] = (1, 2, 3),
    *,
    policies: bool = True,
    crops: bool = True,
    asymmetric: bool = True,
    modes: Sequence[str] = PADDING_MODES,
    channels: bool = True,
    torch_like: bool = True,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
) -> Layer:
    """A layer the layer model accepts.

    ``torch_like`` keeps most parameters inside what PyTorch accepts (``output_padding < max(s, d)``,
    pooling pads at most half the kernel, no ``avg_pool`` dilation), so that a ``torch_valid``
    filter keeps most draws; without it those limits are crossed often.
    """
    kind = draw(st.sampled_from(list(kinds)))
    ndim = draw(st.sampled_from(list(ndims)))
    pooling = kind in POOLS
    kernel = _per_axis(draw, ndim, st.integers(1, max_kernel if ndim < 3 else min(max_kernel, 3)))
    stride = _per_axis(draw, ndim, st.integers(1, max_stride))
    if kind == "avg_pool" and (torch_like or draw(st.booleans())):
        dilation = (1,) * ndim
    else:
        dilation = _per_axis(draw, ndim, st.integers(1, max_dilation))
    params: dict[str, Any] = {"kernel_size": kernel, "stride": stride, "dilation": dilation}

    mode = draw(st.sampled_from(list(modes))) if kind == "conv" and modes else "zeros"
    if torch_like and mode == "zeros" and draw(st.integers(0, 3)):
        crops = False  # PyTorch crops only through F.pad, i.e. with a non-zero padding_mode
    allowed = TRANSPOSED_POLICIES if kind == "conv_transpose" else DIRECT_POLICIES
    use_policy = policies and draw(st.integers(0, 3)) == 0
    if use_policy:
        policy = draw(st.sampled_from(allowed))
        if torch_like and policy == "same":
            params["stride"] = stride = (1,) * ndim
        params["padding"] = policy
    else:
        pads = []
        for k in kernel:
            top = k // 2 if pooling and torch_like else 3
            low = -1 if crops and not pooling else 0
            if asymmetric and draw(st.booleans()):
                pads.append((draw(st.integers(low, top)), draw(st.integers(low, top))))
            else:
                p = draw(st.integers(max(low, 0), top))
                pads.append((p, p))
        params["padding"] = pads

    if kind == "conv":
        params["padding_mode"] = mode
    if kind == "conv_transpose" and params["padding"] != "same_tf":
        params["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1 if torch_like else max(s, d)))
            for s, d in zip(stride, dilation, strict=True)
        )
    if pooling:
        params["ceil_mode"] = draw(st.booleans())
    if kind == "avg_pool":
        params["count_include_pad"] = draw(st.booleans())
        params["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    if not pooling and channels and draw(st.integers(0, 4)):
        groups = draw(st.integers(1, 3))
        params["groups"] = groups
        params["in_channels"] = groups * draw(st.integers(1, 2))
        params["out_channels"] = groups * draw(st.integers(1, 2))
        params["bias"] = draw(st.booleans())
    elif pooling and channels and draw(st.booleans()):
        c = draw(st.integers(1, 3))
        params["in_channels"] = params["out_channels"] = c
    return Layer(f"{kind}{ndim}d", **params)


def _low_input(layer: Layer, n: int) -> int:
    """The smallest input size on axis ``n`` that gives an output cell (for explicit pads)."""
    k, s, d, a = layer.kernel_size[n], layer.stride[n], layer.dilation[n], layer.output_padding[n]
    extent = d * (k - 1) + 1
    low = k if layer.kind == "avg_pool" and layer.ndim == 3 else 1  # PyTorch's avg_pool3d rule
    if isinstance(layer.padding, str):
        return max(low, extent if layer.padding == "valid" and not layer.transposed else 1)
    before, after = layer.padding[n]
    if layer.transposed:
        # (i − 1)s − p_b − p_a + extent + a ≥ 1
        return max(low, 1 + -(-(before + after + 1 - extent - a) // s))
    crop = max(-before, 0) + max(-after, 0)
    if layer.padding_mode == "reflect":  # PyTorch: reflect pads smaller than the input
        low = max(low, before + 1, after + 1)
    if layer.padding_mode == "circular":  # PyTorch: wraps at most once around what the crop keeps
        low = max(low, crop + max(before, after, 1))
    return max(low, extent - before - after, crop + 1)


@st.composite
def input_shapes(draw: st.DrawFn, layer: Layer, *, forms: Sequence[int] = (0, 1, 2), extra: int = 5) -> tuple[int, ...]:
    """An input shape for ``layer`` whose output is not empty: spatial, ``(C, *spatial)`` or ``(N, C, *spatial)``."""
    top = extra if layer.ndim < 3 else min(extra, 3)
    spatial = tuple(_low_input(layer, n) + draw(st.integers(0, top)) for n in range(layer.ndim))
    form = draw(st.sampled_from(list(forms)))
    if form == 0:
        return spatial
    c = layer.in_channels if layer.in_channels is not None else layer.groups * draw(st.integers(1, 2))
    if form == 1:
        return (c, *spatial)
    return (draw(st.integers(1, 2)), c, *spatial)


@st.composite
def bound_layers(
    draw: st.DrawFn, layer_strategy: st.SearchStrategy[Layer] | None = None, *, forms: Sequence[int] = (0, 1, 2)
) -> BoundLayer:
    """A layer bound to an input that gives a non-empty output."""
    layer = draw(layers() if layer_strategy is None else layer_strategy)
    shape = draw(input_shapes(layer, forms=forms))
    try:
        return layer.bind(shape)
    except ConvArithError:
        assume(False)
        raise AssertionError("unreachable") from None


def torch_errors(layer: Layer, shape: Sequence[int] | None = None) -> list[str]:
    """The refusals of PyTorch's rules, as messages."""
    return [f.message for f in check(layer, shape, framework="torch") if f.severity == "error"]


def torch_valid(bound: BoundLayer) -> BoundLayer:
    """``assume`` that PyTorch accepts the bound layer (its rules say so); returns it."""
    assume(not torch_errors(bound.layer, bound.input_shape))
    return bound


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
