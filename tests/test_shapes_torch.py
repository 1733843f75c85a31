"""Shapes and refusals against PyTorch's real ops, over random N-d configurations."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, ConvSpec, output_shape

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=UserWarning)


@dataclass
class Case:
    op: str
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    out_channels: int | None = None


def _per_axis(draw: Any, ndim: int, values: st.SearchStrategy[int]) -> int | tuple[int, ...]:
    return draw(st.one_of(values, st.tuples(*[values] * ndim)))


@st.composite
def cases(draw: Any) -> Case:
    """Valid and invalid configurations PyTorch can express, with a bias towards valid ones."""
    kind = draw(st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool"]))
    ndim = draw(st.integers(1, 3))
    op = f"{kind}{ndim}d"
    small = st.integers(1, 4) if ndim == 3 else st.integers(1, 9)
    spatial = tuple(
        draw(st.one_of(small, st.just(0))) if draw(st.integers(0, 30)) == 0 else draw(small) for _ in range(ndim)
    )
    maybe_bad = lambda good: st.one_of(good, st.integers(-1, 0)) if draw(st.integers(0, 15)) == 0 else good
    kernel = _per_axis(draw, ndim, maybe_bad(st.integers(1, 4)))
    stride = _per_axis(draw, ndim, maybe_bad(st.integers(1, 3)))
    batch = draw(st.integers(0, 2))
    if kind in ("conv", "conv_transpose"):
        groups = draw(maybe_bad(st.integers(1, 3)))
        aligned = draw(st.integers(0, 3)) > 0 and groups > 0
        in_channels = groups * draw(st.integers(1, 2)) if aligned else draw(st.integers(1, 6))
        out_channels = groups * draw(st.integers(1, 2)) if aligned else draw(st.integers(1, 6))
        dilation = _per_axis(draw, ndim, maybe_bad(st.integers(1, 3)))
        kwargs: dict[str, Any] = dict(kernel_size=kernel, stride=stride, dilation=dilation, groups=groups)
        if kind == "conv":
            kwargs["padding"] = draw(
                st.one_of(_per_axis_strategy(ndim, maybe_bad(st.integers(0, 4))), st.sampled_from(["same", "valid"]))
            )
            kwargs["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        else:
            kwargs["padding"] = _per_axis(draw, ndim, maybe_bad(st.integers(0, 4)))
            kwargs["output_padding"] = _per_axis(draw, ndim, maybe_bad(st.sampled_from([0, 0, 0, 1, 1, 2, 3])))
        return Case(op, (batch, in_channels, *spatial), kwargs, out_channels)
    kwargs = dict(
        kernel_size=kernel,
        stride=stride,
        padding=_per_axis(draw, ndim, maybe_bad(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))),
        ceil_mode=draw(st.booleans()),
    )
    if kind == "max_pool":
        kwargs["dilation"] = _per_axis(draw, ndim, maybe_bad(st.integers(1, 3)))
    return Case(op, (batch, draw(st.integers(1, 3)), *spatial), kwargs)


def _per_axis_strategy(ndim: int, values: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.tuples(*[values] * ndim))


def torch_shape(case: Case) -> tuple[int, ...] | None:
    """The shape PyTorch produces, or None when PyTorch refuses the configuration."""
    x = torch.zeros(case.input_shape)
    kw = dict(case.kwargs)
    ndim = len(case.input_shape) - 2
    try:
        if case.op.startswith("conv"):
            module_type = getattr(torch.nn, ("ConvTranspose" if "transpose" in case.op else "Conv") + f"{ndim}d")
            module = module_type(case.input_shape[1], case.out_channels, bias=False, **kw)
            # PyTorch's oneDNN path, chosen by batch size and groups, skips some checks of its
            # reference path (it accepts dilation 0 with a 1-tap kernel, or an output of size 0);
            # the reference path is the ground truth.
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                return tuple(module(x).shape)
        if case.op.startswith("max_pool"):
            return tuple(getattr(F, case.op)(x, **kw).shape)
        return tuple(getattr(F, case.op)(x, **kw).shape)
    except (RuntimeError, ValueError, ZeroDivisionError, IndexError):
        return None


def ours(case: Case) -> tuple[int, ...] | None:
    try:
        return output_shape(case.op, case.input_shape, out_channels=case.out_channels, **case.kwargs)
    except ConvArithError:
        return None


@settings(max_examples=int(os.environ.get("CONVARITH_EXAMPLES", "2500")))
@given(cases())
@example(Case("conv2d", (1, 1, 5, 5), dict(kernel_size=4, padding="same"), 1))
@example(Case("conv_transpose2d", (1, 1, 3, 3), dict(kernel_size=3, stride=1, dilation=3, output_padding=2), 1))
@example(Case("max_pool2d", (1, 1, 9, 9), dict(kernel_size=3, padding=2, dilation=2)))
@example(Case("conv2d", (1, 1, 3, 3), dict(kernel_size=3, padding=3, padding_mode="circular"), 1))
@example(Case("conv2d", (1, 1, 3, 3), dict(kernel_size=3, padding=3, padding_mode="reflect"), 1))
def test_shape_and_refusal_match_pytorch(case: Case) -> None:
    theirs = torch_shape(case)
    if case.input_shape[0] == 0:
        # PyTorch skips its compute kernels' checks for an empty batch; we answer as for one sample
        # and check that PyTorch accepts the empty batch whenever it accepts one sample.
        one = torch_shape(Case(case.op, (1, *case.input_shape[1:]), case.kwargs, case.out_channels))
        assert one is None or theirs == (0, *one[1:]), case
        theirs = None if one is None else (0, *one[1:])
    assert ours(case) == theirs, case


def test_errors_name_the_parameter_rule_and_value() -> None:
    with pytest.raises(ConvArithError) as err:
        output_shape("conv_transpose2d", (1, 1, 3, 3), kernel_size=3, stride=2, output_padding=2)
    assert err.value.param == "output_padding"
    assert "smaller than stride or dilation" in str(err.value)
    assert "(2, 2)" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("policy", ["same_tf", "same_lower", "full", "valid"])
@given(
    ndim=st.integers(1, 3),
    data=st.data(),
)
@settings(max_examples=150)
def test_padding_policies_resolve_to_pads_that_pytorch_runs(policy: str, ndim: int, data: st.DataObject) -> None:
    """A policy resolves to explicit pairs; F.pad + PyTorch's unpadded op gives our shape."""
    kernel = data.draw(st.tuples(*[st.integers(1, 4)] * ndim))
    stride = data.draw(st.tuples(*[st.integers(1, 3)] * ndim))
    dilation = data.draw(st.tuples(*[st.integers(1, 3)] * ndim))
    spatial = data.draw(st.tuples(*[st.integers(1, 8)] * ndim))
    spec = ConvSpec.create(f"conv{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=policy)
    try:
        ours_out = spec.output_spatial(spatial)
    except ConvArithError:
        ours_out = None
    x = torch.zeros((1, 1, *spatial))
    flat = [p for pair in reversed(spec.resolve(spatial).pads) for p in pair]
    try:
        y = getattr(F, f"conv{ndim}d")(F.pad(x, flat), torch.zeros((1, 1, *kernel)), stride=stride, dilation=dilation)
        theirs = tuple(y.shape[2:])
    except RuntimeError:
        theirs = None
    assert ours_out == theirs
    if policy.startswith("same") and ours_out is not None:
        assert ours_out == tuple(-(-i // s) for i, s in zip(spatial, stride, strict=True))


def test_pytorch_same_puts_the_odd_cell_after() -> None:
    """Even kernel, PyTorch 'same': the result equals padding (1, 2) explicitly, not (2, 1)."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 7, dtype=torch.float64)
    w = torch.randn(1, 1, 4, dtype=torch.float64)
    spec = ConvSpec.create("conv1d", kernel_size=4, padding="same").resolve((7,))
    assert spec.pads == ((1, 2),)
    expected = F.conv1d(x, w, padding="same")
    assert torch.allclose(F.conv1d(F.pad(x, spec.pads[0]), w), expected, rtol=0, atol=1e-12)
