"""The layer model: normalisation, serialisation, refusals, and the bound layer's facts against PyTorch."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import assume, given

from convarith import BoundLayer, ConvArithError, Layer
from oracle_torch import Unsupported, random_arrays, run_torch, torch_module
from strategies import bound_layers, examples, layers, seeds, torch_errors

# -- normalisation -----------------------------------------------------------------------------------------


def test_values_are_normalised_per_axis() -> None:
    layer = Layer("conv2d", 3, 6, kernel_size=3, stride=(2, 1), padding=[1, (0, 2)], dilation=[2], groups=3)
    assert layer.kernel_size == (3, 3)
    assert layer.stride == (2, 1)
    assert layer.padding == ((1, 1), (0, 2))
    assert layer.dilation == (2, 2)
    assert layer.output_padding == (0, 0)
    assert Layer("max_pool2d", kernel_size=(2, 3)).stride == (2, 3)
    assert Layer("conv1d", kernel_size=3, padding="SAME_TF").padding == "same_tf"
    assert Layer("avg_pool1d", kernel_size=2, bias=True).bias is False  # a pool has no bias


@examples(300)
@given(layers(torch_like=False))
def test_to_dict_round_trips_through_json(layer: Layer) -> None:
    data = json.loads(json.dumps(layer.to_dict()))
    assert Layer.from_dict(data) == layer
    assert hash(Layer.from_dict(data)) == hash(layer)


@examples(300)
@given(layers(torch_like=False))
def test_repr_round_trips(layer: Layer) -> None:
    assert eval(repr(layer), {"Layer": Layer}) == layer


def test_repr_reads_like_the_pytorch_call() -> None:
    layer = Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1, bias=False)
    assert repr(layer) == "Layer('conv_transpose2d', 64, 32, kernel_size=4, stride=2, padding=1, bias=False)"


@pytest.mark.parametrize(
    ("op", "kwargs", "param"),
    [
        ("conv2d", {"kernel_size": 3, "stride": 0}, "stride"),
        ("conv2d", {"kernel_size": 0}, "kernel_size"),
        ("conv2d", {"kernel_size": -1}, "kernel_size"),
        ("conv2d", {"kernel_size": 3, "dilation": 0}, "dilation"),
        ("conv1d", {"kernel_size": 3, "ceil_mode": True}, "ceil_mode"),
        ("conv1d", {"kernel_size": 3, "output_padding": 1}, "output_padding"),
        ("conv_transpose1d", {"kernel_size": 3, "output_padding": -1}, "output_padding"),
        ("conv1d", {"kernel_size": 3, "groups": 0}, "groups"),
        ("conv1d", {"kernel_size": 3, "in_channels": 3, "groups": 2}, "groups"),
        ("max_pool1d", {"kernel_size": 3, "groups": 2}, "groups"),
        ("max_pool1d", {"kernel_size": 3, "padding_mode": "reflect"}, "padding_mode"),
        ("conv_transpose1d", {"kernel_size": 3, "padding_mode": "circular"}, "padding_mode"),
        ("conv_transpose1d", {"kernel_size": 3, "padding": "same"}, "padding"),
        ("conv_transpose1d", {"kernel_size": 3, "padding": "full"}, "padding"),
        (
            "conv_transpose1d",
            {"kernel_size": 3, "stride": 2, "padding": "same_tf", "output_padding": 1},
            "output_padding",
        ),
        ("avg_pool1d", {"kernel_size": 3, "divisor_override": 0}, "divisor_override"),
        ("max_pool1d", {"kernel_size": 3, "divisor_override": 2}, "divisor_override"),
        ("conv1d", {"kernel_size": 3, "padding": "half"}, "padding"),
        ("conv1d", {"kernel_size": 3, "padding_mode": "mirror"}, "padding_mode"),
        ("conv1d", {"kernel_size": 3, "bias": 1}, "bias"),
        ("conv1d", {"kernel_size": None}, "kernel_size"),
        ("conv4", {"kernel_size": 3}, "op"),
        ("conv2d", {"kernel_size": (3, 3, 3)}, "kernel_size"),
        ("conv2d", {"kernel_size": 3, "padding": [(1, 2, 3), 0]}, "padding"),
        ("conv1d", {"kernel_size": 2.0}, "kernel_size"),
        ("conv1d", {"kernel_size": True}, "kernel_size"),
        ("max_pool2d", {"kernel_size": 3, "in_channels": 2, "out_channels": 3}, "out_channels"),
    ],
)
def test_the_meaningless_is_refused(op: str, kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(ConvArithError) as err:
        Layer(op, **kwargs)  # type: ignore[arg-type]
    assert err.value.param == param


@pytest.mark.parametrize(
    ("op", "kwargs"),
    [
        ("conv2d", {"kernel_size": 3, "padding": [(1, 2), (-1, 0)]}),  # asymmetric, crops
        ("avg_pool2d", {"kernel_size": 3, "dilation": 2}),  # JAX / ONNX define a dilated average pool
        ("conv_transpose1d", {"kernel_size": 3, "stride": 1, "dilation": 3, "output_padding": 2}),  # PyTorch
        ("conv_transpose1d", {"kernel_size": 3, "stride": 2, "output_padding": 3}),  # ≥ stride: geometry only
        ("max_pool1d", {"kernel_size": 2, "padding": 3}),  # more than half the kernel: JAX, ONNX
        ("conv2d", {"kernel_size": 2, "stride": 2, "padding": "same"}),  # PyTorch refuses; the geometry does not
        ("conv_transpose1d", {"kernel_size": 3, "stride": 2, "padding": "valid", "output_padding": 1}),
    ],
)
def test_what_some_framework_defines_is_accepted(op: str, kwargs: dict[str, object]) -> None:
    layer = Layer(op, **kwargs)  # type: ignore[arg-type]
    assert layer.bind((8,) * layer.ndim).output_spatial


# -- bound layers against PyTorch ------------------------------------------------------------------------

weighted = bound_layers(layers(kinds=["conv", "conv_transpose"], asymmetric=False, crops=False, policies=False))


def _module(bound: BoundLayer) -> torch.nn.Module:
    try:
        return torch_module(bound)
    except Unsupported:
        assume(False)
        raise


@examples(300)
@given(weighted)
def test_weight_bias_and_parameter_count_are_the_nn_modules(bound: BoundLayer) -> None:
    assume(not torch_errors(bound.layer, bound.input_shape))
    module = _module(bound)
    params = dict(module.named_parameters())
    assert tuple(params["weight"].shape) == bound.weight_shape
    assert (tuple(params["bias"].shape) if "bias" in params else None) == bound.bias_shape
    assert bound.parameter_count == sum(p.numel() for p in module.parameters())


@examples(300)
@given(bound_layers(layers(kinds=["conv", "conv_transpose"])))
def test_multiply_adds_count_the_products_of_the_equivalent_direct_convolution(bound: BoundLayer) -> None:
    """C_out·∏out·(C_in/g)·∏k: the products of one sample, counted by running the (direct equivalent)
    convolution with every product replaced by a 1 (all-ones input and weight, padding counted)."""
    direct = bound.direct().conv if bound.transposed else bound
    layer = direct.layer
    one = layer.replace(padding=0, padding_mode="zeros", bias=False)
    padded = tuple(ax.padded for ax in direct.axes)
    assume(min(padded) >= 1)
    inner = one.bind((1, direct.in_channels, *padded))
    x = torch.ones((1, direct.in_channels, *padded), dtype=torch.float64)
    w = torch.ones(inner.weight_shape or (), dtype=torch.float64)
    counted = run_torch(inner, x, w).sum().item()
    assert counted == bound.multiply_adds


@examples(300)
@given(bound_layers(layers(kinds=["conv", "conv_transpose"], modes=("zeros",))), seeds)
def test_adjoint_output_padding_makes_conv_transpose_of_the_gradient_exact(bound: BoundLayer, seed: int) -> None:
    """adjoint() is Cᵀ: run on an upstream gradient it gives autograd's input gradient, shape included."""
    assume(not torch_errors(bound.layer, bound.input_shape) or bound.layer.kind == "conv")
    adjoint = bound.adjoint()
    assert adjoint.output_shape == bound.input_shape
    assert adjoint.input_shape == bound.output_shape
    x, w, _ = random_arrays(bound, seed, batch=1)
    assert w is not None
    x.requires_grad_()
    y = run_torch(bound, x, w)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    y.backward(g)
    assert x.grad is not None
    got = run_torch(adjoint, g, w)
    assert got.shape == x.grad.shape
    assert torch.allclose(got, x.grad, rtol=1e-10, atol=1e-10)


def test_adjoint_refuses_folding_modes_and_pools() -> None:
    with pytest.raises(ConvArithError) as err:
        Layer("conv1d", kernel_size=3, padding=1, padding_mode="reflect").bind((5,)).adjoint()
    assert err.value.param == "padding_mode"
    with pytest.raises(ConvArithError):
        Layer("max_pool1d", kernel_size=2).bind((5,)).adjoint()


@examples(200)
@given(bound_layers())
def test_bound_shapes_keep_the_input_form(bound: BoundLayer) -> None:
    lead = len(bound.input_shape) - bound.ndim
    assert len(bound.output_shape) == len(bound.input_shape)
    assert bound.output_shape[lead:] == bound.output_spatial
    if lead:
        assert bound.output_shape[lead - 1] == bound.out_channels
    assert bound.sample_output_shape == (bound.out_channels, *bound.output_spatial)
    resolved = bound.resolved
    assert resolved.is_resolved and resolved.bind(bound.input_shape).output_shape == bound.output_shape
    assert math.prod(bound.output_spatial) >= 1
