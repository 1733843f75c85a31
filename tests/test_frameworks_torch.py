"""The PyTorch adapter against PyTorch: emitted modules compute convarith's reference values, read
back as the same layer, and parse from the text a user writes."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from convarith import BoundLayer, ConvArithError, Layer, check
from convarith.frameworks import torch as adapter
from convarith.frameworks.base import build, explicit, random_arrays, run
from convarith.ops.reference import apply
from strategies import bound_layers, examples, layers


def _accepted(bound: BoundLayer) -> bool:
    return not any(f.severity == "error" for f in check(bound.layer, bound.input_shape, framework="torch"))


def _translatable(bound: BoundLayer) -> bool:
    """What the adapter writes: what PyTorch accepts, and pools whose pads only nn.*Pool refuses
    (an explicit pad before the pool computes them)."""
    refusals = [f for f in check(bound.layer, bound.input_shape, framework="torch") if f.severity == "error"]
    return all(bound.layer.pooling and f.param == "padding" for f in refusals)


@examples(600)
@given(bound_layers(forms=(2,)), st.integers(0, 2**32 - 1))
def test_emitted_modules_compute_the_reference(bound: BoundLayer, seed: int) -> None:
    assume(_translatable(bound))
    x, w, b = random_arrays(bound, seed)
    got = run(adapter, bound, x, w, b)
    want = apply(bound, x, w, b)
    assert got.shape == want.shape == bound.output_shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@examples(300)
@given(bound_layers(forms=(2,)))
def test_a_refused_layer_is_not_emitted(bound: BoundLayer) -> None:
    refused = not _translatable(bound)
    try:
        adapter.emit(bound.layer, bound.input_shape)
    except ConvArithError:
        assert refused
    else:
        assert not refused


@examples(300)
@given(bound_layers(forms=(2,)))
def test_single_modules_read_back_as_the_same_layer(bound: BoundLayer) -> None:
    assume(_accepted(bound))
    emitted = adapter.emit(bound.layer, bound.input_shape)
    assume(len(emitted.steps) == 1)
    _, w, b = random_arrays(bound)
    module = build(emitted, w, b)
    back = adapter.from_native(module)
    # the same computation: equal once both are written out for this input
    assert explicit(back, bound.input_shape) == explicit(bound.layer, bound.input_shape)
    step = ast.parse(emitted.steps[0].replace(", dtype=torch.float64", "")).body[0]
    assert isinstance(step, ast.Expr) and isinstance(step.value, ast.Call)
    parsed, _ = adapter.parse_call(step.value, emitted.steps[0])
    assert parsed == back


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("nn.Conv2d(3, 16, 3, stride=2, padding=1)", None),
        ("torch.nn.ConvTranspose2d(64, 32, 4, 2, 1, 1, 2, False, 1)", None),
        ("F.conv2d((1, 3, 9, 9), (9, 1, 3, 3), None, 2, 1, 1, 3)", (1, 3, 9, 9)),
        ("F.conv_transpose1d(x, (4, 2, 3), stride=2, output_padding=1)", None),
        ("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", None),
        ("F.avg_pool3d(x, 2, count_include_pad=False, divisor_override=3)", None),
    ],
)
def test_strings_parse_as_pytorch_builds_them(text: str, shape: tuple[int, ...] | None) -> None:
    call = ast.parse(text).body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    layer, input_shape = adapter.parse_call(call.value, text)
    assert input_shape == shape
    if text.startswith(("nn.", "torch.nn.")):
        module = eval(text.replace("torch.nn.", "nn."), {"nn": torch.nn})  # test-only: our own literal strings
        assert adapter.from_native(module) == layer


def test_tf_same_at_stride_two_is_a_pad_then_a_conv() -> None:
    """TensorFlow's SAME on an even input pads (0, 1): nn.Conv2d cannot say it, F.pad + Conv2d can."""
    layer = Layer("conv2d", 3, 16, kernel_size=3, stride=2, padding="same_tf")
    emitted = adapter.emit(layer, (1, 3, 32, 32))
    assert emitted.steps == ("nn.ZeroPad2d((0, 1, 0, 1))", "nn.Conv2d(3, 16, 3, stride=2)")
    assert [f.code for f in emitted.findings] == ["inexpressible-padding", "inexpressible-padding"]
    with pytest.raises(ConvArithError, match="input_shape: is needed"):
        adapter.emit(layer)


def test_asymmetric_average_pool_keeps_pytorchs_divisor() -> None:
    layer = Layer("avg_pool1d", kernel_size=3, stride=2, padding=[(1, 0)], ceil_mode=True)
    bound = layer.bind((1, 1, 6))
    x = np.arange(6.0).reshape(1, 1, 6)
    np.testing.assert_allclose(run(adapter, bound, x), apply(bound, x), rtol=1e-12)


@given(bound_layers(layers(kinds=("conv", "conv_transpose")), forms=(2,)), st.integers(0, 3))
@examples(100)
def test_generated_code_is_a_module_that_runs(bound: BoundLayer, seed: int) -> None:
    layer = bound.layer
    assume(_accepted(bound))
    emitted = adapter.emit(layer, bound.input_shape)
    namespace: dict[str, object] = {}
    exec(compile(emitted.code(), "<test>", "exec"), namespace)
    x, w, b = random_arrays(bound, seed)
    module = namespace["make"](w, b)  # type: ignore[operator]
    got = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, apply(bound, x, w, b), rtol=1e-10, atol=1e-10)
