"""Random layers for property-based checks (hypothesis strategies): the tests and ``convarith verify``
draw from the same generator.

``layers()`` draws any :class:`~convarith.Layer` the layer model accepts (kind, 1–3 spatial axes,
per-axis kernel / stride / dilation, padding as ``(before, after)`` pairs with crops, or a policy;
padding modes, ``output_padding``, pooling options, channels and groups). ``bound_layers()`` binds
one to an input chosen so that the output is not empty. Sizes are drawn so that most draws are
usable: filters reject a few per cent, not a third.

Needs ``hypothesis`` (the ``verify`` extra).

>>> from hypothesis import given, settings
>>> @settings(max_examples=20, database=None)
... @given(bound_layers())
... def every_output_is_non_empty(bound):
...     assert min(bound.output_spatial) >= 1
>>> every_output_is_non_empty()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from .errors import ConvArithError
from .geometry.bound import BoundLayer
from .layer import KINDS, PADDING_MODES, TRANSPOSED_POLICIES, Layer

__all__ = ["DIRECT_POLICIES", "POOLS", "WEIGHTED", "bound_layers", "input_shapes", "layers"]

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
