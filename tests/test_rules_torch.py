"""Every PyTorch rule of ``convarith.rules.torch`` against PyTorch itself.

Each rule is exercised on both sides of its boundary: ``check(layer, shape, framework="torch")``
reports an error exactly where PyTorch (``nn`` modules for convolutions, ``F`` for pools) raises,
and ``inexpressible-padding`` exactly where the ``nn`` module cannot take the pads.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import assume, given

from convarith import BoundLayer, Layer, check
from convarith.rules import FRAMEWORKS, raise_refusals
from oracle_torch import torch_module, torch_output_shape
from strategies import bound_layers, examples, layers

INT64_MAX = 2**63 - 1


def _errors(layer: Layer, shape: tuple[int, ...]) -> list[str]:
    return [f.param or "" for f in check(layer, shape, framework="torch") if f.severity == "error"]


def _agree(op: str, shape: tuple[int, ...], out: int | None, **kwargs: Any) -> None:
    layer = Layer(op, out_channels=out, **kwargs)
    refused = torch_output_shape(op, shape, out, **kwargs) is None
    assert bool(_errors(layer, shape)) == refused, (op, shape, kwargs)


# each rule, on both sides of its boundary
CASES: list[tuple[str, tuple[int, ...], int | None, dict[str, Any]]] = [
    # int64: PyTorch's "Overflow when unpacking long"
    ("conv1d", (1, 1, 8), 1, {"kernel_size": 3, "stride": INT64_MAX}),
    ("conv1d", (1, 1, 8), 1, {"kernel_size": 3, "stride": INT64_MAX + 1}),
    ("conv1d", (1, 1, 8), 1, {"kernel_size": 3, "dilation": INT64_MAX + 1}),
    ("conv_transpose1d", (1, 1, 8), 1, {"kernel_size": 3, "padding": INT64_MAX + 1}),
    ("max_pool1d", (1, 1, 8), None, {"kernel_size": 2, "stride": INT64_MAX + 1}),
    # 'same' needs stride 1
    ("conv2d", (1, 1, 8, 8), 1, {"kernel_size": 3, "padding": "same"}),
    ("conv2d", (1, 1, 8, 8), 1, {"kernel_size": 3, "stride": (1, 2), "padding": "same"}),
    # output_padding < max(stride, dilation)
    ("conv_transpose1d", (1, 1, 4), 1, {"kernel_size": 3, "stride": 2, "output_padding": 1}),
    ("conv_transpose1d", (1, 1, 4), 1, {"kernel_size": 3, "stride": 2, "output_padding": 2}),
    ("conv_transpose1d", (1, 1, 4), 1, {"kernel_size": 3, "stride": 1, "dilation": 3, "output_padding": 2}),
    ("conv_transpose1d", (1, 1, 4), 1, {"kernel_size": 3, "stride": 1, "dilation": 3, "output_padding": 3}),
    # avg_pool has no dilation
    ("avg_pool1d", (1, 1, 8), None, {"kernel_size": 2}),
    # negative padding with zeros
    ("conv1d", (1, 1, 8), 1, {"kernel_size": 3, "padding": -1}),
    ("conv1d", (1, 1, 8), 1, {"kernel_size": 3, "padding": -1, "padding_mode": "replicate"}),
    ("conv_transpose1d", (1, 1, 8), 1, {"kernel_size": 3, "padding": -1}),
    # pooling pads at most half the kernel
    ("max_pool1d", (1, 1, 8), None, {"kernel_size": 3, "padding": 1}),
    ("max_pool1d", (1, 1, 8), None, {"kernel_size": 3, "padding": 2}),
    ("avg_pool2d", (1, 1, 8, 8), None, {"kernel_size": (4, 2), "padding": (2, 1)}),
    ("avg_pool2d", (1, 1, 8, 8), None, {"kernel_size": (4, 2), "padding": (2, 2)}),
    # reflect < input, circular ≤ input (after the crop)
    ("conv1d", (1, 1, 4), 1, {"kernel_size": 3, "padding": 3, "padding_mode": "reflect"}),
    ("conv1d", (1, 1, 4), 1, {"kernel_size": 3, "padding": 4, "padding_mode": "reflect"}),
    ("conv1d", (1, 1, 4), 1, {"kernel_size": 3, "padding": 4, "padding_mode": "circular"}),
    ("conv1d", (1, 1, 4), 1, {"kernel_size": 3, "padding": 5, "padding_mode": "circular"}),
    # avg_pool3d: the unpadded input at least the kernel
    ("avg_pool3d", (1, 1, 3, 3, 3), None, {"kernel_size": 3, "padding": 1}),
    ("avg_pool3d", (1, 1, 2, 3, 3), None, {"kernel_size": 3, "padding": 1}),
    ("avg_pool2d", (1, 1, 2, 3), None, {"kernel_size": 3, "padding": 1}),
    ("max_pool3d", (1, 1, 2, 3, 3), None, {"kernel_size": 3, "padding": 1}),
]


@pytest.mark.parametrize(("op", "shape", "out", "kwargs"), CASES)
def test_each_rule_agrees_with_pytorch_on_both_sides(
    op: str, shape: tuple[int, ...], out: int | None, kwargs: dict[str, Any]
) -> None:
    _agree(op, shape, out, **kwargs)


def test_avg_pool_dilation_is_refused() -> None:
    assert _errors(Layer("avg_pool1d", kernel_size=2, dilation=2), (1, 1, 8)) == ["dilation"]


def test_avg_pool1d_has_no_divisor_override_in_pytorch() -> None:
    """Neither F.avg_pool1d nor nn.AvgPool1d takes divisor_override (TypeError); the 2- and 3-d pools do."""
    with pytest.raises(TypeError):
        torch.nn.functional.avg_pool1d(torch.zeros(1, 1, 8), 2, divisor_override=3)  # type: ignore[call-arg]
    assert torch_output_shape("avg_pool2d", (1, 1, 8, 8), kernel_size=2, divisor_override=3) == (1, 1, 4, 4)
    assert _errors(Layer("avg_pool2d", kernel_size=2, divisor_override=3), (1, 1, 8, 8)) == []
    assert _errors(Layer("avg_pool1d", kernel_size=2, divisor_override=3), (1, 1, 8)) == ["divisor_override"]


@examples(300)
@given(bound_layers(layers(policies=False)))
def test_inexpressible_padding_is_exactly_the_asymmetric_axes(bound: BoundLayer) -> None:
    """Warned axes are the asymmetric ones; with none, the nn module takes the pads and gives the shape."""
    found = check(bound.layer, bound.input_shape, framework="torch")
    assume(not any(f.severity == "error" for f in found))
    warned = sorted(f.axis for f in found if f.code == "inexpressible-padding")
    assert warned == [n for n, (b, a) in enumerate(bound.pads) if b != a]
    if not warned and bound.layer.weighted:
        with torch.no_grad():
            y = torch_module(bound)(torch.zeros((1, bound.in_channels, *bound.input_spatial), dtype=torch.float64))
        assert tuple(y.shape[2:]) == bound.output_spatial


def test_raise_refusals_raises_the_first_error_and_frameworks_are_named() -> None:
    assert "torch" in FRAMEWORKS
    with pytest.raises(ValueError, match="output_padding"):
        raise_refusals(Layer("conv_transpose1d", kernel_size=3, stride=2, output_padding=2), (1, 1, 4))
    with pytest.raises(ValueError, match="framework"):
        check(Layer("conv1d", kernel_size=3), (1, 1, 4), framework="caffe")
