"""The ONNX adapter against onnxruntime and the ONNX reference evaluator: emitted graphs compute
convarith's reference values on both, rules agree with what ONNX's own operators refuse, nodes and
models read back as the same layer, and the known disagreements between the runtimes still exist."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convarith import BoundLayer, ConvArithError, Layer, check  # noqa: E402
from convarith.frameworks import onnx as adapter  # noqa: E402
from convarith.frameworks.base import build, explicit, random_arrays, run  # noqa: E402
from convarith.ops.reference import apply  # noqa: E402
from strategies import bound_layers, examples  # noqa: E402

RUNTIMES = ("onnxruntime", "reference")


def _errors(layer: Layer, shape: Any = None) -> list[str]:
    return [f.message for f in check(layer, shape, framework="onnx") if f.severity == "error"]


@pytest.fixture
def on_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(name: str) -> None:
        monkeypatch.setenv("CONVARITH_ONNX_RUNTIME", name)

    yield use


def _close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.shape == want.shape
    if dtype == "float64":
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    else:  # float32 graphs: a sum of a few dozen products of N(0, 1) values
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _reference_lacks_groups(bound: BoundLayer) -> bool:
    """The reference evaluator's grouped ConvTranspose fails or is wrong (test_reference_grouped_transpose)."""
    return bound.transposed and bound.layer.groups > 1


@examples(300)
@given(bound_layers(forms=(2,)), st.integers(0, 2**32 - 1), st.sampled_from(RUNTIMES))
def test_emitted_graphs_compute_the_reference(bound: BoundLayer, seed: int, which: str) -> None:
    assume(not _errors(bound.layer, bound.input_shape))
    x, w, b = random_arrays(bound, seed)
    os.environ["CONVARITH_ONNX_RUNTIME"] = which
    try:
        if which == "reference" and _reference_lacks_groups(bound):
            return
        got = run(adapter, bound, x, w, b)
    finally:
        del os.environ["CONVARITH_ONNX_RUNTIME"]
    emitted = adapter.emit(bound.layer, bound.input_shape)
    _close(got, apply(bound, x, w, b), emitted.dtype)


# -- the rules against ONNX's own operators ---------------------------------------------------------------


def _native_model(bound: BoundLayer) -> Any:
    """The layer written as ONE ONNX node with its parameters as they are (pads negative, output_padding,
    ceil_mode, count_include_pad), or None when the node has no attribute for it (padding_mode,
    divisor_override)."""
    layer = bound.layer.replace(in_channels=bound.in_channels, out_channels=bound.out_channels)
    if layer.padding_mode != "zeros" and any(max(p) > 0 for p in bound.pads):
        return None
    if layer.divisor_override is not None:
        return None
    n = layer.ndim
    dtype = TensorProto.DOUBLE if layer.kind == "max_pool" else TensorProto.FLOAT
    attrs: dict[str, Any] = {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
    attrs["pads"] = [b for b, _ in bound.pads] + [a for _, a in bound.pads]
    if layer.kind != "avg_pool" or layer.dilation != (1,) * n:
        attrs["dilations"] = list(layer.dilation)
    inputs, inits = ["x"], []
    if layer.weighted:
        attrs["group"] = layer.groups
        inits.append(numpy_helper.from_array(np.ones(bound.weight_shape, np.float32), "W"))
        inputs.append("W")
    if layer.transposed:
        attrs["output_padding"] = list(bound.output_padding)
    if layer.pooling:
        attrs["ceil_mode"] = int(layer.ceil_mode)
    if layer.kind == "avg_pool":
        attrs["count_include_pad"] = int(layer.count_include_pad)
    op = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AveragePool"}
    node = helper.make_node(op[layer.kind], inputs, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "native",
        [helper.make_tensor_value_info("x", dtype, list(bound.input_shape))],
        [helper.make_tensor_value_info("y", dtype, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", adapter.OPSET)])


def _native_works(bound: BoundLayer, runtimes: tuple[str, ...] = RUNTIMES) -> bool:
    """Whether ONNX's own node, as written, computes the layer on onnxruntime and the reference evaluator."""
    model = _native_model(bound)
    if model is None:
        return False
    x, _, _ = random_arrays(bound)
    w = None if bound.weight_shape is None else np.ones(bound.weight_shape)
    want = apply(bound.layer.replace(bias=False), x, w) if bound.layer.weighted else apply(bound, x)
    dtype = np.float64 if bound.layer.kind == "max_pool" else np.float32
    if bound.transposed and bound.layer.groups > 1:
        runtimes = ("onnxruntime",)
    for which in runtimes:
        try:
            got = adapter.run_model(model, x.astype(dtype), which)
        except Exception:
            return False
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4, equal_nan=True):
            return False
    return True


def _workarounds(bound: BoundLayer) -> list[str]:
    explicit_layer = bound.layer.replace(padding=bound.pads, output_padding=bound.output_padding)
    return [
        f.message for f in check(explicit_layer, bound.input_shape, framework="onnx") if f.code == "needs-workaround"
    ]


@examples(300)
@given(bound_layers(forms=(2,)))
def test_workarounds_are_exactly_what_the_native_node_cannot_do(bound: BoundLayer) -> None:
    assume(not _errors(bound.layer, bound.input_shape))
    works = _native_works(bound)
    if bound.pooling:
        # pools: the reference evaluator's pooling bugs are not all mapped (see the pitfalls), and the rules
        # are conservative there: a pool the rules leave alone works natively on onnxruntime
        if not _workarounds(bound):
            assert _native_works(bound, ("onnxruntime",))
        return
    assert bool(_workarounds(bound)) == (not works), _workarounds(bound)


# -- reading nodes and models back ---------------------------------------------------------------------


@examples(200)
@given(bound_layers(forms=(2,)))
def test_single_nodes_read_back_as_the_same_layer(bound: BoundLayer) -> None:
    assume(not _errors(bound.layer, bound.input_shape))
    emitted = adapter.emit(bound.layer, bound.input_shape)
    assume(len(emitted.steps) == 1)
    # output_padding ≥ stride that adds no cell is dropped (the same computation, other numbers)
    assume(all(a < s for a, s in zip(bound.output_padding, bound.layer.stride, strict=True)))
    _, w, b = random_arrays(bound)
    model = build(emitted, w, b)
    back = adapter.from_native(model)
    layer = bound.layer
    # flags that change nothing on this input are not written: no padding, ceil_mode without effect
    if layer.pooling and layer.ceil_mode and not back.ceil_mode:
        assert layer.replace(ceil_mode=False).bind(bound.input_shape).output_shape == bound.output_shape
        layer = layer.replace(ceil_mode=False)
    if not any(max(p) > 0 for p in bound.pads) and not layer.ceil_mode:
        if layer.kind == "avg_pool":
            layer = layer.replace(count_include_pad=back.count_include_pad)
        if layer.kind == "conv":
            layer = layer.replace(padding_mode="zeros")
    want = explicit(layer, bound.input_shape).replace(in_channels=bound.in_channels, out_channels=bound.out_channels)
    assert (
        explicit(back, bound.input_shape).replace(in_channels=bound.in_channels, out_channels=bound.out_channels)
        == want
    )
    # and from_model finds the node with its input shape
    [(name, again, shape)] = adapter.from_model(model)
    assert again == back and shape == bound.input_shape and name


def test_from_model_reads_an_onnx_file(tmp_path: Any) -> None:
    layer = Layer("conv_transpose2d", 4, 2, kernel_size=3, stride=2, padding="same_upper", output_padding=1)
    bound = layer.bind((1, 4, 5, 5))
    _, w, b = random_arrays(bound)
    model = build(adapter.emit(layer, bound.input_shape), w, b)
    model.graph.node[0].name = "up"
    path = tmp_path / "up.onnx"
    onnx.save(model, str(path))
    [(name, back, shape)] = adapter.from_model(path)
    assert (name, back, shape) == ("up", layer, (1, 4, 5, 5))
    assert adapter.from_model(str(path), node_name="up")[0][1] == layer
    with pytest.raises(ConvArithError, match="node_name"):
        adapter.from_model(path, node_name="down")
    with pytest.raises(ConvArithError, match="path"):
        adapter.from_model(tmp_path / "missing.onnx")


def test_output_shape_becomes_the_pads_the_spec_computes() -> None:
    """ConvTranspose output_shape: total = s(i−1) + a + d(k−1) + 1 − out; SAME_UPPER puts the odd cell after,
    anything else before (ConvTranspose-22)."""

    def node_model(auto_pad: str) -> Any:
        node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], strides=[2], output_shape=[8], auto_pad=auto_pad)
        graph = helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(np.ones((1, 2, 3), np.float32), "W")],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])

    upper = adapter.from_native(node_model("SAME_UPPER"))
    lower = adapter.from_native(node_model("NOTSET"))
    assert upper.padding == ((0, 1),) and lower.padding == ((1, 0),)
    assert upper.out_channels == 2 and upper.bind((1, 1, 4)).output_shape == (1, 2, 8)


def test_weight_layout_is_pytorchs() -> None:
    emitted = adapter.emit(Layer("conv_transpose2d", 4, 6, kernel_size=3, groups=2))
    assert emitted.weight_in == "" and emitted.weight_out == "w"
    w = np.arange(4 * 3 * 9, dtype=np.float64).reshape(4, 3, 3, 3)
    namespace: dict[str, Any] = {"w": w}
    back = eval(emitted.weight_out, {}, namespace)  # test-only: our own one-name expression
    np.testing.assert_array_equal(back, w)


def test_generated_code_is_a_module_that_runs() -> None:
    layer = Layer("conv2d", 2, 3, kernel_size=3, stride=2, padding=[(1, 0), (-1, 2)], padding_mode="reflect")
    bound = layer.bind((1, 2, 7, 7))
    emitted = adapter.emit(layer, bound.input_shape)
    namespace: dict[str, Any] = {}
    exec(compile(emitted.code(), "<test>", "exec"), namespace)  # test-only: the code convarith wrote
    x, w, b = random_arrays(bound)
    model = namespace["make"](w, b)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.astype(np.float32)})[0]
    _close(got.astype(np.float64), apply(bound, x, w, b), "float32")
    assert emitted.steps[0].startswith("Pad(") and "mode='reflect'" in emitted.steps[0]


def test_policies_need_the_input_only_when_onnx_cannot_compute_them() -> None:
    assert adapter.emit(Layer("conv2d", 3, 8, kernel_size=3, stride=2, padding="same_tf")).steps == (
        "Conv(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')",
    )
    with pytest.raises(ConvArithError, match="input_shape: is needed"):
        adapter.emit(Layer("conv2d", 3, 8, kernel_size=3, stride=2, dilation=2, padding="same_tf"))
    with pytest.raises(ConvArithError, match=r"from_model"):
        adapter.parse_call(None, "Conv(...)")


def test_version_and_registry() -> None:
    assert adapter.installed() and "onnxruntime" in adapter.version()
    assert adapter.findings(Layer("avg_pool1d", kernel_size=2, padding=1), (1, 1, 4))[0].data["entry"] == (
        "count-include-pad"
    )


# -- the runtimes' disagreements (PITFALLS 9, 10, 12, 13): asserted, so that a fix is noticed ---------


def _one_node(op: str, x: np.ndarray, weight: np.ndarray | None = None, **attrs: Any) -> Any:
    dtype = TensorProto.DOUBLE if x.dtype == np.float64 else TensorProto.FLOAT
    inputs, inits = ["x"], []
    if weight is not None:
        inputs.append("W")
        inits.append(numpy_helper.from_array(weight, "W"))
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], **attrs)],
        "g",
        [helper.make_tensor_value_info("x", dtype, list(x.shape))],
        [helper.make_tensor_value_info("y", dtype, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", adapter.OPSET)])


def _both(model: Any, x: np.ndarray) -> tuple[Any, Any]:
    out = []
    for which in RUNTIMES:
        try:
            out.append(adapter.run_model(model, x, which).ravel().tolist())
        except Exception as err:
            out.append(type(err).__name__)
    return out[0], out[1]


X4 = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 4)


def test_convtranspose_same_upper_short_kernel_disagrees_and_the_translation_does_not() -> None:
    """Kernel 1 < stride 2: the spec's output is i·s = 8 with a zero cell first; onnxruntime gives 7."""
    model = _one_node("ConvTranspose", X4, np.ones((1, 1, 1), np.float32), strides=[2], auto_pad="SAME_UPPER")
    ours, spec = _both(model, X4)
    assert spec == [0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0]
    assert ours == [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0]
    layer = Layer("conv_transpose1d", 1, 1, kernel_size=1, stride=2, padding="same_upper", bias=False)
    bound = layer.bind((1, 1, 4))
    for which in RUNTIMES:
        os.environ["CONVARITH_ONNX_RUNTIME"] = which
        try:
            got = run(adapter, bound, X4.astype(np.float64), np.ones((1, 1, 1)))
        finally:
            del os.environ["CONVARITH_ONNX_RUNTIME"]
        assert got.ravel().tolist() == spec
    assert "onnxruntime-vs-spec" in [f.data.get("entry") for f in adapter.findings(layer)]


def test_convtranspose_output_shape_disagrees() -> None:
    """output_shape 8 (total 1, NOTSET → the odd cell before): onnxruntime crops as the spec says; the
    reference evaluator ignores output_shape's pads and fails; SAME_UPPER with output_shape 10 adds the
    cell before (reference) or after (onnxruntime)."""
    w = np.array([1, 10, 100], np.float32).reshape(1, 1, 3)
    ours, spec = _both(_one_node("ConvTranspose", X4, w, strides=[2], output_shape=[8]), X4)
    assert ours == [10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0, 400.0] and spec == "ValueError"
    ours, spec = _both(_one_node("ConvTranspose", X4, w, strides=[2], output_shape=[10], auto_pad="SAME_UPPER"), X4)
    assert ours[-1] == 0.0 and spec[0] == 0.0 and ours != spec


def test_negative_pads_disagree() -> None:
    """Pad with a negative pad crops in onnxruntime (and in the spec); the reference evaluator refuses it.
    ConvTranspose with a negative pad: the reference evaluator extends, onnxruntime refuses."""
    pads = np.array([0, 0, -1, 0, 0, 1], np.int64)
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode="edge")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(pads, "pads")],
    )
    ours, spec = _both(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]), X4)
    assert ours == [2.0, 3.0, 4.0, 4.0] and spec == "ValueError"
    ours, spec = _both(_one_node("ConvTranspose", X4, np.ones((1, 1, 2), np.float32), pads=[-1, 0]), X4)
    assert ours in ("Fail", "InvalidArgument", "RuntimeException") and spec == [0.0, 1.0, 3.0, 5.0, 7.0, 4.0]


def test_reference_evaluator_pool_bugs() -> None:
    """MaxPool k=3, s=1, pads (1, 1) on 6 cells: onnxruntime is right; the reference evaluator fails.
    A SAME pool whose total would be negative (k=1, s=2, 2 cells): the reference evaluator fails."""
    x = np.arange(1, 7, dtype=np.float64).reshape(1, 1, 6)
    ours, spec = _both(_one_node("MaxPool", x, kernel_shape=[3], pads=[1, 1]), x)
    assert ours == [2.0, 3.0, 4.0, 5.0, 6.0, 6.0] and spec == "IndexError"
    x4 = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    ours, spec = _both(_one_node("MaxPool", x4, kernel_shape=[2, 3], pads=[0, 1, 0, 1]), x4)
    # 2-d, pads on one axis only: onnxruntime is right, the reference evaluator shifts the windows
    assert ours[:4] == [5.0, 6.0, 7.0, 7.0] and spec[:4] == [6.0, 7.0, 7.0, 10.0]
    # a VALID average pool with dilations: the reference evaluator sizes it as if undilated
    x5 = np.arange(4, dtype=np.float32).reshape(1, 1, 4)
    ours, spec = _both(_one_node("AveragePool", x5, kernel_shape=[2], dilations=[3], auto_pad="VALID"), x5)
    assert ours == [1.5] and isinstance(spec, list) and len(spec) == 3
    x2 = np.ones((1, 1, 2), np.float32)
    ours, spec = _both(_one_node("AveragePool", x2, kernel_shape=[1], strides=[2], auto_pad="SAME_UPPER"), x2)
    assert ours == [1.0] and spec == "ValueError"


def test_same_pools_with_a_negative_total_go_wrong_in_both_runtimes() -> None:
    """ONNX's SAME pad formula is not clamped at 0: with the stride past the kernel (k=1, s=3 on 3 cells: one
    window, total -2) onnxruntime's MaxPool refuses and its AveragePool reads the second cell, the reference
    evaluator's MaxPool reads it too and its AveragePool fails. So the translation never writes SAME there."""
    x = np.arange(1, 4, dtype=np.float32).reshape(1, 1, 3)
    same = {"kernel_shape": [1], "strides": [3], "auto_pad": "SAME_UPPER"}
    ours, spec = _both(_one_node("MaxPool", x, **same), x)
    assert ours in ("Fail", "RuntimeException", "InvalidArgument") and spec == [2.0]
    ours, spec = _both(_one_node("AveragePool", x, **same), x)
    assert ours == [2.0] and spec == "ValueError"
    for op in ("max_pool1d", "avg_pool1d"):
        layer = Layer(op, kernel_size=1, stride=3, padding="same_upper", count_include_pad=False)
        assert (
            adapter.emit(layer, (1, 1, 3))
            .steps[0]
            .startswith(("MaxPool(kernel_shape=[1], strides=[3])", "AveragePool(kernel_shape=[1], strides=[3])"))
        )
        with pytest.raises(ConvArithError, match="input_shape"):
            adapter.emit(layer)
    assert "SAME_UPPER" in adapter.emit(Layer("max_pool1d", kernel_size=3, stride=2, padding="same_tf")).steps[0]


def test_reference_grouped_transpose() -> None:
    """Grouped ConvTranspose: with two channels per group the reference evaluator fails, with one its bias is
    wrong; onnxruntime computes both (the known bug verify lists)."""
    layer = Layer("conv_transpose1d", 2, 4, kernel_size=2, groups=2, bias=False)
    bound = layer.bind((1, 2, 3))
    x, w, _ = random_arrays(bound)
    model = build(adapter.emit(layer, bound.input_shape), w)
    got = adapter.run_model(model, x.astype(np.float32), "onnxruntime")
    _close(got.astype(np.float64), apply(bound, x, w), "float32")
    with pytest.raises(ValueError):
        adapter.run_model(model, x.astype(np.float32), "reference")
    # one channel per group computes, but the bias goes wrong
    depthwise = Layer("conv_transpose1d", 2, 2, kernel_size=2, groups=2)
    bound = depthwise.bind((1, 2, 3))
    x, w, b = random_arrays(bound)
    model = build(adapter.emit(depthwise, bound.input_shape), w, b)
    want = apply(bound, x, w, b)
    _close(adapter.run_model(model, x.astype(np.float32), "onnxruntime").astype(np.float64), want, "float32")
    got = adapter.run_model(model, x.astype(np.float32), "reference").astype(np.float64)
    assert np.abs(got - want).max() > 0.1
    unbiased = build(adapter.emit(depthwise.replace(bias=False), bound.input_shape), w)
    _close(
        adapter.run_model(unbiased, x.astype(np.float32), "reference").astype(np.float64),
        apply(bound.layer.replace(bias=False).bind((1, 2, 3)), x, w),
        "float32",
    )
    assert adapter.KNOWN_BUGS[0].hits(bound) and not adapter.KNOWN_BUGS[0].hits(
        depthwise.replace(bias=False).bind((1, 2, 3))
    )


def test_count_include_pad_and_ceil_mode_are_written_out() -> None:
    """ONNX's count_include_pad defaults to 0 (PyTorch's True): the translation always writes PyTorch's
    meaning; ceil_mode that changes the output is written as padding (the reference evaluator's ceil differs)."""
    layer = Layer("avg_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True)
    bound = layer.bind((1, 1, 6))
    emitted = adapter.emit(layer, bound.input_shape)
    assert emitted.steps[0].startswith("Pad(") and emitted.steps[-1].startswith("Mul(")
    x = np.arange(1.0, 7.0).reshape(1, 1, 6)
    for which in RUNTIMES:
        got = adapter.run_model(build(emitted, None), x.astype(np.float32), which)
        np.testing.assert_allclose(got, apply(bound, x), rtol=1e-6)
    assert adapter.emit(Layer("avg_pool1d", kernel_size=2, padding=1), (1, 1, 4)).steps == (
        "AveragePool(kernel_shape=[2], strides=[2], pads=[1, 1], count_include_pad=1)",
    )
