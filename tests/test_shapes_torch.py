"""Shapes and refusals against PyTorch's real ops, over random 1-, 2- and 3-d configurations.

Two doors: the PyTorch-keyword front door (:func:`convarith.output_shape`) must refuse exactly
when PyTorch refuses; a :class:`~convarith.Layer` bound to an input must have PyTorch's output
shape, and ``check(layer, shape, framework="torch")`` must report an error exactly when PyTorch
refuses the layer's keywords.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from convarith import ConvArithError, Layer, output_shape
from oracle_torch import Unsupported, random_arrays, run_torch, torch_kwargs, torch_output_shape
from strategies import TorchCall, bound_layers, examples, layers, torch_calls, torch_errors


def _ours(call: TorchCall) -> tuple[int, ...] | None:
    try:
        return output_shape(call.op, call.input_shape, out_channels=call.out_channels, **call.kwargs)
    except ConvArithError:
        return None


def _theirs(call: TorchCall) -> tuple[int, ...] | None:
    return torch_output_shape(call.op, call.input_shape, call.out_channels, **call.kwargs)


@examples(3000)
@given(torch_calls())
@example(TorchCall("conv2d", (1, 1, 5, 5), {"kernel_size": 4, "padding": "same"}, 1))
@example(TorchCall("conv_transpose2d", (1, 1, 3, 3), {"kernel_size": 3, "dilation": 3, "output_padding": 2}, 1))
@example(TorchCall("max_pool2d", (1, 1, 9, 9), {"kernel_size": 3, "padding": 2, "dilation": 2}))
@example(TorchCall("conv2d", (1, 1, 3, 3), {"kernel_size": 3, "padding": 3, "padding_mode": "circular"}, 1))
@example(TorchCall("conv2d", (1, 1, 3, 3), {"kernel_size": 3, "padding": 3, "padding_mode": "reflect"}, 1))
@example(TorchCall("max_pool1d", (1, 1, 8), {"kernel_size": 3, "stride": ()}))
@example(TorchCall("avg_pool2d", (1, 1, 8, 8), {"kernel_size": 3, "stride": []}))
@example(TorchCall("conv1d", (1, 1, 8), {"kernel_size": 3, "stride": 10**20}, 1))
@example(TorchCall("max_pool1d", (1, 1, 8), {"kernel_size": 10**20}))
def test_front_door_shape_and_refusal_match_pytorch(call: TorchCall) -> None:
    theirs = _theirs(call)
    if call.input_shape[0] == 0:
        # PyTorch skips its compute kernels' checks for an empty batch; convarith answers as for one
        # sample: PyTorch must accept the empty batch whenever it accepts one sample.
        one = _theirs(TorchCall(call.op, (1, *call.input_shape[1:]), call.kwargs, call.out_channels))
        assert one is None or theirs == (0, *one[1:]), call
        theirs = None if one is None else (0, *one[1:])
    event("refused" if theirs is None else "accepted")
    assert _ours(call) == theirs, call


@examples(1500)
@given(
    bound_layers(
        st.one_of(
            layers(kinds=["conv", "conv_transpose"], torch_like=False, asymmetric=False),
            layers(kinds=["max_pool", "avg_pool"], torch_like=False, asymmetric=False, policies=False),
        )
    )
)
def test_check_refuses_exactly_when_pytorch_refuses_the_keywords(bound) -> None:  # type: ignore[no-untyped-def]
    """A layer PyTorch's keywords express: check() has an error ⇔ PyTorch refuses; else the same shape."""
    layer = bound.layer
    # A pool's policy is resolved and run through F.pad (PyTorch's pooling-pad rules are for written pads).
    assume(not (layer.pooling and layer.policy not in (None, "valid")))
    # PyTorch's avg_pool1d has no divisor_override (convarith's rules miss this: reported).
    assume(not (layer.op == "avg_pool1d" and layer.divisor_override is not None))
    try:
        kwargs = torch_kwargs(bound)
    except Unsupported:
        assume(False)
    shape = (1, bound.in_channels, *bound.input_spatial)
    theirs = torch_output_shape(layer.op, shape, bound.out_channels if layer.weighted else None, **kwargs)
    errors = torch_errors(layer, bound.input_shape)
    event("refused" if theirs is None else "accepted")
    assert (theirs is None) == bool(errors), (layer, bound.input_shape, errors)
    if theirs is not None:
        assert theirs[2:] == bound.output_spatial
        assert theirs[1] == bound.out_channels


@examples(800)
@given(
    bound_layers(
        st.one_of(layers(kinds=["conv", "conv_transpose"]), layers(kinds=["max_pool", "avg_pool"], asymmetric=False))
    ),
    st.integers(0, 2**31 - 1),
)
def test_bound_output_shape_is_pytorchs(bound, seed) -> None:  # type: ignore[no-untyped-def]
    """Any layer PyTorch accepts (asymmetric pads and crops through F.pad, policies resolved) runs
    in PyTorch to the bound layer's output shape and channels."""
    assume(not torch_errors(bound.layer, bound.input_shape))
    x, w, b = random_arrays(bound, seed, batch=1)
    try:
        y = run_torch(bound, x, w, b)
    except Unsupported:
        assume(False)
    assert tuple(y.shape) == (1, *bound.sample_output_shape)


def test_errors_name_the_parameter_rule_and_value() -> None:
    with pytest.raises(ConvArithError) as err:
        output_shape("conv_transpose2d", (1, 1, 3, 3), kernel_size=3, stride=2, output_padding=2)
    assert err.value.param == "output_padding"
    assert "smaller than stride or dilation" in str(err.value)
    assert "(2, 2)" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("policy", ["same_tf", "same_upper", "same_lower"])
@examples(300)
@given(bound_layers(layers(kinds=["conv", "max_pool", "avg_pool"], policies=False, modes=("zeros",))))
def test_same_flavours_give_ceil_i_over_s(policy: str, bound) -> None:  # type: ignore[no-untyped-def]
    """TensorFlow's and ONNX's "same": output ⌈i/s⌉ on every axis, whatever the kernel and dilation."""
    layer = bound.layer.replace(padding=policy, ceil_mode=False)
    out = layer.bind(bound.input_shape).output_spatial
    assert out == tuple(-(-i // s) for i, s in zip(bound.input_spatial, layer.stride, strict=True))


def test_pytorch_same_puts_the_odd_cell_after() -> None:
    """Even kernel, PyTorch 'same': the result equals padding (1, 2) explicitly, not (2, 1)."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 7, dtype=torch.float64)
    w = torch.randn(1, 1, 4, dtype=torch.float64)
    bound = Layer("conv1d", kernel_size=4, padding="same").bind((1, 1, 7))
    assert bound.pads == ((1, 2),)
    expected = F.conv1d(x, w, padding="same")
    assert torch.equal(run_torch(bound, x, w), expected)
    assert not torch.equal(F.conv1d(F.pad(x, (2, 1)), w), expected)
