"""The "same" flavours of TensorFlow/Keras/JAX and ONNX resolve exactly as the frameworks pad.

JAX's ``"SAME"`` / ``"SAME_LOWER"`` and ONNX Runtime's ``auto_pad=SAME_UPPER`` / ``SAME_LOWER`` are run
for real and compared with the same convolution given our resolved explicit padding.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax
from onnx import TensorProto, helper

from convarith import ConvSpec


@st.composite
def configs(draw):  # type: ignore[no-untyped-def]
    ndim = draw(st.integers(1, 3))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    return per(1, 9 if ndim < 3 else 5), per(1, 4), per(1, 3), per(1, 3)


@settings(max_examples=150)
@given(configs(), st.sampled_from([("SAME", "same_tf"), ("SAME_LOWER", "same_lower")]))
def test_jax_same_padding_equals_our_resolved_pads(config, policies) -> None:  # type: ignore[no-untyped-def]
    spatial, kernel, stride, dilation = config
    jax_policy, ours = policies
    spec = ConvSpec.create(f"conv{len(spatial)}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=ours)
    pads = spec.resolve(spatial).pads
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, *spatial)).astype(np.float32)
    w = rng.standard_normal((1, 1, *kernel)).astype(np.float32)
    theirs = lax.conv_general_dilated(x, w, stride, jax_policy, rhs_dilation=dilation)
    explicit = lax.conv_general_dilated(x, w, stride, list(pads), rhs_dilation=dilation)
    assert theirs.shape[2:] == spec.output_spatial(spatial)
    np.testing.assert_allclose(np.asarray(theirs), np.asarray(explicit), rtol=0, atol=1e-5)


def _onnx_conv(x: np.ndarray, w: np.ndarray, stride, dilation, **attrs) -> np.ndarray:  # type: ignore[no-untyped-def]
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=list(stride), dilations=list(dilation), **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, w.shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x, "w": w})[0]  # type: ignore[no-any-return]


@settings(max_examples=100)
@given(configs(), st.sampled_from([("SAME_UPPER", "same_upper"), ("SAME_LOWER", "same_lower")]))
def test_onnxruntime_auto_pad_equals_our_resolved_pads(config, policies) -> None:  # type: ignore[no-untyped-def]
    spatial, kernel, stride, _ = config
    dilation = (1,) * len(spatial)  # ONNX Runtime refuses dilation with auto_pad SAME_* ("not supported")
    onnx_policy, ours = policies
    spec = ConvSpec.create(f"conv{len(spatial)}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=ours)
    pads = spec.resolve(spatial).pads
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, *spatial)).astype(np.float32)
    w = rng.standard_normal((1, 1, *kernel)).astype(np.float32)
    theirs = _onnx_conv(x, w, stride, dilation, auto_pad=onnx_policy)
    explicit = _onnx_conv(x, w, stride, dilation, pads=[p[0] for p in pads] + [p[1] for p in pads])
    assert theirs.shape[2:] == spec.output_spatial(spatial)
    np.testing.assert_allclose(theirs, explicit, rtol=0, atol=1e-5)
