"""The PyTorch oracle: the real PyTorch op for any bound layer, and PyTorch's answer to its keywords.

Everything a test compares with PyTorch goes through here, so the translation from a
:class:`~convarith.Layer` to PyTorch calls is written once:

- :func:`torch_pad` — per-axis ``(before, after)`` pairs (negative = crop) through ``F.pad``;
- :func:`run_torch` — any bound layer run by PyTorch: asymmetric pads and crops through
  :func:`torch_pad` and then the op with padding 0; a transposed convolution with asymmetric or
  negative pads as its full output (padding 0) cropped or zero-extended;
- :func:`torch_output_shape` / :func:`torch_accepts` — what PyTorch's ``nn`` modules and
  ``F`` functions give for keyword arguments (the front door), ``None`` when PyTorch refuses.

:data:`ORACLES` maps a framework name to its oracle, so that tests can be parametrised by
framework when more oracles arrive.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from convarith import BoundLayer, Layer

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=UserWarning, module="torch")

Pads = Sequence[tuple[int, int]]

_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class Unsupported(Exception):
    """The oracle cannot run this layer exactly in PyTorch (tests ``assume`` it away)."""


def flat_pads(pads: Pads) -> list[int]:
    """Per-axis ``(before, after)`` pairs (first spatial axis first) in ``F.pad``'s order (last axis first)."""
    return [p for pair in reversed(list(pads)) for p in pair]


def torch_pad(t: torch.Tensor, pads: Pads, mode: str = "zeros", value: float = 0.0) -> torch.Tensor:
    """Pad (negative = crop) the last ``len(pads)`` axes of ``t``, as PyTorch's modules do, with ``F.pad``.

    ``mode`` is a ``padding_mode`` (``zeros``, ``reflect``, ``replicate``, ``circular``).
    """
    flat = flat_pads(pads)
    if not any(flat):
        return t
    if mode == "zeros":
        # Pad first, then crop: the same cells as one F.pad where that works, and also a crop wider than the
        # input on one side with a pad on the other (F.pad refuses to narrow below zero cells).
        padded = F.pad(t, [max(p, 0) for p in flat], mode="constant", value=value)
        return F.pad(padded, [min(p, 0) for p in flat]) if min(flat) < 0 else padded
    if mode == "circular":
        # F.pad wraps only what the crops keep; a pad wider than that it refuses in 1-d but in 3-d
        # answers with uninitialised memory ((2, −1) on 2 cells: a 1e-310 in cell 0)
        sizes = t.shape[-len(pads) :]
        if any(
            b > kept or a > kept
            for size, (b, a) in zip(sizes, pads, strict=True)
            for kept in [size + min(b, 0) + min(a, 0)]
        ):
            raise Unsupported(f"a circular pad wider than the {list(sizes)} cells its crops keep")
    return F.pad(t, flat, mode=_MODE[mode])


def random_arrays(
    bound: BoundLayer, seed: int = 0, *, batch: int = 2
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Float64 input, weight and bias (``None`` when the layer has none) of the bound layer's shapes."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *bound.sample_input_shape), generator=gen, dtype=torch.float64)
    w = None if bound.weight_shape is None else torch.randn(bound.weight_shape, generator=gen, dtype=torch.float64)
    b = None if bound.bias_shape is None else torch.randn(bound.bias_shape, generator=gen, dtype=torch.float64)
    return x, w, b


def _fn(name: str) -> Callable[..., torch.Tensor]:
    return getattr(F, name)  # type: ignore[no-any-return]


def _plain(bound: BoundLayer) -> tuple[int, ...] | None:
    """The per-axis padding PyTorch's own keyword takes, or ``None`` (asymmetric, crops, another mode)."""
    if bound.layer.padding_mode != "zeros" or any(b != a or b < 0 for b, a in bound.pads):
        return None
    return tuple(b for b, _ in bound.pads)


def _run_conv(bound: BoundLayer, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    layer = bound.layer
    plain = _plain(bound)
    if plain is not None:
        return _fn(f"conv{bound.ndim}d")(
            x, w, b, stride=layer.stride, padding=plain, dilation=layer.dilation, groups=layer.groups
        )
    padded = torch_pad(x, bound.pads, layer.padding_mode)
    return _fn(f"conv{bound.ndim}d")(
        padded, w, b, stride=layer.stride, padding=0, dilation=layer.dilation, groups=layer.groups
    )


def _run_conv_transpose(bound: BoundLayer, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    layer = bound.layer
    plain = _plain(bound)
    if plain is not None and all(
        a < max(s, d) for a, s, d in zip(bound.output_padding, layer.stride, layer.dilation, strict=True)
    ):
        return _fn(f"conv_transpose{bound.ndim}d")(
            x,
            w,
            b,
            stride=layer.stride,
            padding=plain,
            output_padding=bound.output_padding,
            groups=layer.groups,
            dilation=layer.dilation,
        )
    # The full output (padding 0, no output_padding); output cell q is full cell q + p_b, zero where
    # that lies outside the full output (a negative p_b, or output_padding, extends it with zeros).
    full = _fn(f"conv_transpose{bound.ndim}d")(
        x, w, None, stride=layer.stride, padding=0, output_padding=0, groups=layer.groups, dilation=layer.dilation
    )
    y = full.new_zeros((*full.shape[:2], *bound.output_spatial))
    source, target = [], []
    for ax, length in zip(bound.axes, full.shape[2:], strict=True):
        lo, hi = max(ax.pad[0], 0), min(ax.pad[0] + ax.output, length)
        source.append(slice(lo, max(hi, lo)))
        target.append(slice(lo - ax.pad[0], max(hi, lo) - ax.pad[0]))
    y[(..., *target)] = full[(..., *source)]
    if b is not None:
        y = y + b.reshape(-1, *([1] * bound.ndim))
    return y


def _run_pool(bound: BoundLayer, x: torch.Tensor) -> torch.Tensor:
    layer = bound.layer
    n = bound.ndim
    pads = bound.pads
    symmetric = all(before == after >= 0 for before, after in pads)
    half = all(2 * before <= k for (before, _), k in zip(pads, layer.kernel_size, strict=True))
    kw: dict[str, Any] = {"kernel_size": layer.kernel_size, "stride": layer.stride, "ceil_mode": layer.ceil_mode}
    if layer.kind == "max_pool":
        kw["dilation"] = layer.dilation
    else:
        if layer.dilation != (1,) * n:
            raise Unsupported("PyTorch's avg_pool has no dilation")
        kw["count_include_pad"] = layer.count_include_pad
        if layer.divisor_override is not None:
            if n == 1:  # PyTorch's avg_pool1d has none: the 2-d pool over a unit axis
                return _run_pool(
                    layer.replace(
                        op="avg_pool2d",
                        kernel_size=(1, *layer.kernel_size),
                        stride=(1, *layer.stride),
                        padding=((0, 0), *pads),
                        dilation=(1, 1),
                    ).bind((*x.shape[:2], 1, *x.shape[2:])),
                    x.unsqueeze(2),
                ).squeeze(2)
            kw["divisor_override"] = layer.divisor_override
    # PyTorch's avg_pool3d alone refuses an unpadded input smaller than the kernel: pad it first then
    small = layer.kind == "avg_pool" and n == 3 and any(ax.input < ax.kernel for ax in bound.axes)
    if symmetric and half and not small:
        return _fn(f"{layer.kind}{n}d")(x, padding=tuple(before for before, _ in pads), **kw)
    # F.pad, then the pool with padding 0: exact without ceil_mode (with it, PyTorch's rule for
    # the last window and its divisor would see the padded input as the input).
    if layer.ceil_mode:
        raise Unsupported("ceil_mode's rule over F.pad's padded input is not the pool's own")
    if layer.kind == "max_pool":
        return _fn(f"max_pool{n}d")(torch_pad(x, pads, value=-math.inf), padding=0, **kw)
    pool = _fn(f"avg_pool{n}d")
    total = pool(torch_pad(x, pads), padding=0, **kw)
    if layer.count_include_pad or layer.divisor_override is not None:
        return total
    inside = pool(torch_pad(torch.ones_like(x), pads), padding=0, **kw)
    return total / inside


def run_torch(
    bound: BoundLayer,
    input: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The bound layer computed by PyTorch's own ops (any pads, crops, modes, policies already resolved).

    Raises :class:`Unsupported` for the few layers PyTorch cannot run exactly.
    """
    if bound.kind == "conv":
        if weight is None:
            raise ValueError("a convolution needs a weight")
        return _run_conv(bound, input, weight, bias)
    if bound.kind == "conv_transpose":
        if weight is None:
            raise ValueError("a transposed convolution needs a weight")
        return _run_conv_transpose(bound, input, weight, bias)
    return _run_pool(bound, input)


def torch_read_counts(bound: BoundLayer) -> tuple[torch.Tensor, torch.Tensor]:
    """How often PyTorch's windows read each input cell and each padded cell (autograd).

    The gradient of ``sum(layer(x))`` with an all-ones kernel (a sum pool, divisor 1, for pools)
    with respect to the input and to its padded (``F.pad``-ed, cropped) copy, for one channel.
    Raises :class:`Unsupported` where ``F.pad`` refuses the padding (reflect beyond the input).
    """
    layer = bound.layer
    x = torch.zeros((1, 1, *bound.input_spatial), dtype=torch.float64, requires_grad=True)
    try:
        padded = torch_pad(x, bound.pads, layer.padding_mode)
    except RuntimeError as err:
        raise Unsupported(str(err)) from None
    padded.retain_grad()
    spatial = tuple(padded.shape[2:])
    if layer.weighted:
        inner = Layer(
            f"conv{bound.ndim}d", 1, 1, kernel_size=layer.kernel_size, stride=layer.stride, dilation=layer.dilation
        ).bind((1, 1, *spatial))
        y = run_torch(inner, padded, torch.ones(inner.weight_shape or (), dtype=torch.float64))
    else:
        if max(layer.dilation) > 1 or layer.ceil_mode:
            raise Unsupported("a sum pool has no dilation; ceil_mode's rule differs over the padded input")
        inner = Layer(f"avg_pool{bound.ndim}d", kernel_size=layer.kernel_size, stride=layer.stride, divisor_override=1)
        y = run_torch(inner.bind((1, 1, *spatial)), padded)
    if tuple(y.shape[2:]) != bound.output_spatial:
        raise AssertionError(f"PyTorch gives {tuple(y.shape[2:])}, the bound layer {bound.output_spatial}")
    y.sum().backward()
    assert x.grad is not None and padded.grad is not None
    return x.grad[0, 0], padded.grad[0, 0]


# -- the front door: PyTorch keywords ------------------------------------------------------------------

REFUSALS = (RuntimeError, ValueError, ZeroDivisionError, IndexError, TypeError, OverflowError)
"""What PyTorch raises when it refuses a configuration."""


def torch_output_shape(
    op: str, input_shape: Sequence[int], out_channels: int | None = None, **kwargs: Any
) -> tuple[int, ...] | None:
    """The output shape PyTorch gives for ``op`` with these keywords, or ``None`` when it refuses.

    Convolutions run the ``nn`` module (its ``padding_mode`` path included) with oneDNN disabled:
    oneDNN, picked by batch size and groups, skips some checks of PyTorch's reference path (it
    accepts dilation 0 with a 1-tap kernel, or an output of size 0). Pools run ``F``.
    """
    try:
        x = torch.zeros(tuple(input_shape))
        if op.startswith("conv"):
            ndim = int(op[-2])
            name = ("ConvTranspose" if "transpose" in op else "Conv") + f"{ndim}d"
            channels = input_shape[-ndim - 1]
            module = getattr(torch.nn, name)(channels, out_channels, bias=False, **kwargs)
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                return tuple(module(x).shape)
        return tuple(_fn(op)(x, **kwargs).shape)
    except REFUSALS:
        return None


def torch_accepts(op: str, input_shape: Sequence[int], out_channels: int | None = None, **kwargs: Any) -> bool:
    """Whether PyTorch runs ``op`` with these keywords."""
    return torch_output_shape(op, input_shape, out_channels, **kwargs) is not None


def torch_kwargs(bound: BoundLayer) -> dict[str, Any]:
    """PyTorch keywords of a bound layer whose padding PyTorch's keyword can express.

    PyTorch's own policies (``"same"``, ``"valid"`` on a direct convolution) are passed as written;
    any other policy as its resolved pads. Raises :class:`Unsupported` for asymmetric pads.
    """
    layer = bound.layer
    padding: Any
    if layer.kind == "conv" and layer.policy in ("same", "valid"):
        padding = layer.policy
    elif any(b != a for b, a in bound.pads):
        raise Unsupported("asymmetric pads have no PyTorch keyword")
    else:
        padding = tuple(b for b, _ in bound.pads)
    kw: dict[str, Any] = {"kernel_size": layer.kernel_size, "stride": layer.stride, "padding": padding}
    if layer.kind != "avg_pool" or max(layer.dilation) > 1:  # avg_pool has no keyword: PyTorch refuses it
        kw["dilation"] = layer.dilation
    if layer.weighted:
        kw["groups"] = layer.groups
    if layer.kind == "conv":
        kw["padding_mode"] = layer.padding_mode
    if layer.transposed:
        kw["output_padding"] = bound.output_padding
    if layer.pooling:
        kw["ceil_mode"] = layer.ceil_mode
    if layer.kind == "avg_pool":
        kw["count_include_pad"] = layer.count_include_pad
        if layer.divisor_override is not None:  # avg_pool1d has no such keyword
            kw["divisor_override"] = layer.divisor_override
    return kw


def torch_module(bound: BoundLayer) -> torch.nn.Module:
    """The ``torch.nn`` module of a bound (transposed) convolution with PyTorch-expressible padding."""
    layer = bound.layer
    kw = torch_kwargs(bound)
    name = ("ConvTranspose" if layer.transposed else "Conv") + f"{layer.ndim}d"
    return getattr(torch.nn, name)(  # type: ignore[no-any-return]
        bound.in_channels, bound.out_channels, bias=layer.bias, dtype=torch.float64, **kw
    )


# -- registry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Oracle:
    """One framework's ground truth, in the terms of the tests."""

    name: str
    pad: Callable[..., Any]
    run: Callable[..., Any]
    output_shape: Callable[..., tuple[int, ...] | None]


ORACLES: dict[str, Oracle] = {"torch": Oracle("torch", torch_pad, run_torch, torch_output_shape)}
