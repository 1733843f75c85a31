"""The Keras 3 adapter on the torch, jax and tensorflow backends: emitted layers compute convarith's
reference values on every backend, the rules refuse exactly what Keras refuses, layers read back as
the same layer, and the Keras quirks (and backend disagreements) still exist.

Keras picks its backend once per process, so everything Keras runs here runs in one worker process
per backend (:func:`convarith.frameworks.worker.worker_for`), calling the ``_in_*`` functions of
this module by name; the test process itself never imports Keras.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

if importlib.util.find_spec("keras") is None:  # pragma: no cover
    pytest.skip("keras is not installed", allow_module_level=True)

from convarith import BoundLayer, ConvArithError, Layer, check
from convarith.frameworks import keras as adapter
from convarith.frameworks.base import explicit, random_arrays
from convarith.frameworks.syntax import parse_source
from convarith.frameworks.worker import Worker, worker_for
from convarith.ops.reference import apply
from strategies import bound_layers, examples, layers

BACKENDS = ("torch", "jax", "tensorflow")
TESTS = str(Path(__file__).resolve().parent)
MODULE = "test_frameworks_keras"


def _worker(backend: str) -> Worker:
    return worker_for({"KERAS_BACKEND": backend, "PYTHONPATH": TESTS, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _on_all(name: str, *args: object) -> dict[str, Any]:
    """``name(*args)`` of this module in every backend's worker, at once."""
    for backend in BACKENDS:
        _worker(backend).start(MODULE, name, *args)
    return {backend: _worker(backend).finish() for backend in BACKENDS}


def _errors(layer: Layer, shape: Any = None) -> list[str]:
    return [f.message for f in check(layer, shape, framework="keras") if f.severity == "error"]


def _close(got: np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    assert got.shape == want.shape, what
    tol = 1e-9 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


# -- run inside the workers ----------------------------------------------------------------------------


def _keras() -> Any:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return keras


def _in_run(cases: list[tuple[dict[str, object], tuple[int, ...], int]]) -> list[dict[str, object]]:
    """Each case emitted, built, applied; single-layer translations read back (from_native)."""
    from convarith.frameworks.base import build

    out = adapter.run_cases(cases)
    for answer, (data, shape, seed) in zip(out, cases, strict=True):
        if "error" in answer:
            continue
        layer = Layer.from_dict(data)
        emitted = adapter.emit(layer, shape)
        if len(emitted.steps) == 1:
            bound = layer.bind(shape)
            _, w, b = random_arrays(bound, seed)
            made = build(emitted, w, b)
            try:
                answer["back"] = adapter.from_native(made).to_dict()
            except ConvArithError as err:
                answer["back"] = str(err)
    return out


def _in_native(specs: list[tuple[str, dict[str, Any], tuple[int, ...]]]) -> list[str | None]:
    """Construct ``keras.layers.<cls>(**kwargs)`` and call it on ones of the channels-last shape:
    ``None`` when Keras takes it, else the exception's type."""
    keras = _keras()
    out: list[str | None] = []
    for cls, kwargs, shape in specs:
        try:
            layer = getattr(keras.layers, cls)(**kwargs, dtype="float32")
            layer(np.ones(shape, np.float32))
            out.append(None)
        except Exception as err:
            out.append(type(err).__name__)
    return out


def _in_call(cls: str, kwargs: dict[str, Any], x: np.ndarray, weights: list[np.ndarray] | None = None) -> Any:
    """One Keras layer applied to ``x`` (channels last, float64): its output, or the exception's type."""
    keras = _keras()
    try:
        layer = getattr(keras.layers, cls)(**kwargs, dtype="float64")
        layer.build(x.shape)
        if weights is not None:
            layer.set_weights(weights)
        return np.asarray(keras.ops.convert_to_numpy(layer(x)))
    except Exception as err:
        return type(err).__name__


def _in_float32_default() -> str:
    """A float64 layer's output dtype in a fresh process, without jax_enable_x64."""
    import keras

    y = keras.layers.Conv1D(1, 1, dtype="float64")(np.ones((1, 3, 1)))
    return str(keras.ops.convert_to_numpy(y).dtype)


def _in_separable(n: int, kwargs: dict[str, Any], x: np.ndarray, seed: int) -> tuple[Any, Any, Any]:
    """A SeparableConv built on ``x`` with random weights: output, (depthwise, pointwise) kernels and bias,
    and the two layers :func:`separable` reads."""
    keras = _keras()
    layer = getattr(keras.layers, f"SeparableConv{n}D")(**kwargs, dtype="float64")
    layer.build(x.shape)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(tuple(int(d) for d in v.shape)) for v in layer.weights]
    layer.set_weights(weights)
    y = np.asarray(keras.ops.convert_to_numpy(layer(x)))
    depth, point = adapter.separable(layer)
    return y, weights, (depth.to_dict(), point.to_dict())


# -- values ---------------------------------------------------------------------------------------------


def batched(ci: int) -> Any:
    """``examples(ci)`` without shrinking: a batch's failure message names its case already, and
    shrinking a list of layers run in three worker processes takes minutes."""
    return settings(examples(ci), phases=(Phase.explicit, Phase.reuse, Phase.generate), deadline=None)


@batched(8)
@given(st.lists(bound_layers(forms=(2,)), min_size=20, max_size=20), st.integers(0, 2**31 - 1))
def test_emitted_layers_compute_the_reference_on_every_backend(bounds: list[BoundLayer], seed: int) -> None:
    cases = []
    for bound in bounds:
        if _errors(bound.layer, bound.input_shape):
            with pytest.raises(ConvArithError):
                adapter.emit(bound.layer, bound.input_shape)
            continue
        cases.append((bound.layer.to_dict(), bound.input_shape, seed))
    answers = _on_all("_in_run", cases)
    for n, (data, shape, _) in enumerate(cases):
        layer = Layer.from_dict(data)
        bound = layer.bind(shape)
        x, w, b = random_arrays(bound, seed)
        want = apply(bound, x, w, b)
        for backend in BACKENDS:
            answer = answers[backend][n]
            what = f"{backend}: {layer!r} on {shape}: {answer.get('error', '')}"
            assert "error" not in answer, what
            _close(answer["out"], want, str(answer["dtype"]), what)
            if "back" in answer:
                assert isinstance(answer["back"], dict), what + str(answer["back"])
                back = Layer.from_dict(answer["back"])
                assert explicit(back, shape) == explicit(_comparable(layer, back), shape), what
                assert _parsed(layer, shape) == explicit(back, shape), what


def _comparable(layer: Layer, back: Layer) -> Layer:
    """``layer`` with what a Keras layer does not record and does not change on this input set as read."""
    changes: dict[str, object] = {}
    if layer.pooling:
        changes["ceil_mode"] = back.ceil_mode
        if layer.kind == "avg_pool":
            changes["count_include_pad"] = back.count_include_pad
    if layer.kind == "conv":
        changes["padding_mode"] = "zeros"
    changes["in_channels"] = back.in_channels
    changes["out_channels"] = back.out_channels
    return layer.replace(**changes)


def _parsed(layer: Layer, shape: Sequence[int]) -> Layer:
    """The single step's text parsed back, with the channels and bias of the layer."""
    step = adapter.emit(layer, shape).steps[0]
    if step.startswith("keras.layers.DepthwiseConv"):  # its text has no channels: Keras' input_shape gives them
        bound = layer.bind(shape)
        step = f"{step[:-1]}, input_shape={(*bound.input_spatial, bound.in_channels)})"
    parsed, _ = adapter.parse_call(parse_source(step), step)
    bound = layer.bind(shape)
    if parsed.weighted:
        parsed = parsed.replace(in_channels=bound.in_channels, bias=layer.bias)
    return explicit(parsed, shape)


# -- the rules against Keras' own layers ------------------------------------------------------------------


def _native_spec(bound: BoundLayer) -> tuple[str, dict[str, Any], tuple[int, ...]]:
    """The layer as one Keras layer with its parameters as they are ('valid' padding, padding_mode passed
    when the layer pads with it)."""
    layer = bound.layer
    n = layer.ndim
    # an input that every window fits without padding (Keras gets 'valid': the pads are not the question)
    spatial = [max(ax.padded, ax.extent) if not ax.transposed else ax.input for ax in bound.axes]
    shape = (1, *spatial, bound.in_channels)
    if layer.pooling:
        cls = f"{'MaxPooling' if layer.kind == 'max_pool' else 'AveragePooling'}{n}D"
        kwargs: dict[str, Any] = {"pool_size": layer.kernel_size, "strides": layer.stride}
        if layer.dilation != (1,) * n:
            kwargs["dilation_rate"] = layer.dilation
        return cls, kwargs, shape
    kwargs = {"kernel_size": layer.kernel_size, "strides": layer.stride, "dilation_rate": layer.dilation}
    if layer.padding_mode != "zeros" and any(max(p) > 0 for p in bound.pads):
        kwargs["padding_mode"] = layer.padding_mode
    depthwise = layer.kind == "conv" and n <= 2 and layer.groups == bound.in_channels
    if depthwise:
        kwargs["depth_multiplier"] = bound.out_channels // bound.in_channels
        return f"DepthwiseConv{n}D", kwargs, shape
    kwargs["filters"] = bound.out_channels
    if layer.transposed:
        return f"Conv{n}DTranspose", kwargs, shape
    kwargs["groups"] = layer.groups
    return f"Conv{n}D", kwargs, shape


@batched(6)
@given(st.lists(bound_layers(layers(ndims=(1, 2))), min_size=30, max_size=30))
def test_rules_refuse_exactly_what_keras_refuses(bounds: list[BoundLayer]) -> None:
    # a grouped transposed layer is never native (no groups): the rules' split is its translation
    bounds = [bd for bd in bounds if not (bd.transposed and bd.layer.groups > 1)]
    refused = _worker("jax").call(MODULE, "_in_native", [_native_spec(bd) for bd in bounds])
    for bound, error in zip(bounds, refused, strict=True):
        assert bool(_errors(bound.layer, bound.input_shape)) == (error is not None), (bound, error)


def test_four_d_layers_are_refused() -> None:
    assert _errors(Layer("conv4d", 1, 1, kernel_size=2)) == [
        "op: Keras has 1-, 2- and 3-d convolutions and pools only; got conv4d"
    ]


# -- reading layers and strings back ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "layer", "shape"),
    [
        (
            "keras.layers.Conv2D(16, 3, strides=2, padding='same')",
            Layer("conv2d", None, 16, 3, stride=2, padding="same_tf"),
            None,
        ),
        (
            "layers.Conv1D(8, 5, padding='causal', dilation_rate=2, use_bias=False)",
            Layer("conv1d", None, 8, 5, padding="causal", dilation=2, bias=False),
            None,
        ),
        (
            "tf.keras.layers.Conv3D(4, (1, 2, 3), groups=2, input_shape=(5, 6, 7, 4))",
            Layer("conv3d", 4, 4, (1, 2, 3), groups=2),
            (4, 5, 6, 7),
        ),
        (
            "Conv2DTranspose(32, 4, strides=2, padding='same')",
            Layer("conv_transpose2d", None, 32, 4, stride=2, padding="same_tf"),
            None,
        ),
        (
            "keras.layers.Conv1DTranspose(4, 1, strides=3)",
            Layer("conv_transpose1d", None, 4, 1, stride=3, output_padding=2),
            None,
        ),
        (
            "keras.layers.Conv1DTranspose(4, 1, strides=3, output_padding=0)",
            Layer("conv_transpose1d", None, 4, 1, stride=3),
            None,
        ),
        (
            "keras.layers.Conv1DTranspose(4, 4, strides=2, padding='same', output_padding=1)",
            Layer("conv_transpose1d", None, 4, 4, stride=2, padding=[(1, 2)]),
            None,
        ),
        (
            "keras.layers.DepthwiseConv2D(3, depth_multiplier=2, input_shape=(8, 8, 3))",
            Layer("conv2d", 3, 6, 3, groups=3),
            (3, 8, 8),
        ),
        ("keras.layers.MaxPooling2D()", Layer("max_pool2d", kernel_size=2), None),
        (
            "keras.layers.AveragePooling1D(3, 2, 'same')",
            Layer("avg_pool1d", kernel_size=3, stride=2, padding="same_tf", count_include_pad=False),
            None,
        ),
        (
            "keras.layers.MaxPool3D((2, 1, 2), strides=1, data_format='channels_first', input_shape=(2, 4, 4, 4))",
            Layer("max_pool3d", 2, kernel_size=(2, 1, 2), stride=1),
            (2, 4, 4, 4),
        ),
    ],
)
def test_layer_strings(text: str, layer: Layer, shape: Any) -> None:
    assert adapter.parse_call(parse_source(text), text) == (layer, shape)


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("keras.layers.SeparableConv2D(8, 3)", "source"),
        ("keras.layers.DepthwiseConv2D(3)", "in_channels"),
        ("keras.layers.Conv2D(8, 3, activation='relu')", "activation"),
        ("keras.layers.Conv2D(8, 3, padding='causal')", "padding"),
        ("keras.layers.Conv2D(8, 3, padding_mode='reflect')", "padding_mode"),
        ("keras.layers.Conv2D(8, kernel)", "kernel_size"),
        ("keras.layers.Dense(8)", "source"),
    ],
)
def test_layer_strings_refused(text: str, param: str) -> None:
    with pytest.raises(ConvArithError) as err:
        adapter.parse_call(parse_source(text), text)
    assert err.value.param == param


def test_separable_conv_is_two_layers_on_every_backend() -> None:
    x = np.random.default_rng(1).standard_normal((2, 9, 8, 3))
    kwargs = {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2}
    for backend, (y, weights, (depth_data, point_data)) in _on_all("_in_separable", 2, kwargs, x, 3).items():
        depth, point = Layer.from_dict(depth_data), Layer.from_dict(point_data)
        assert depth == Layer("conv2d", 3, 6, 3, stride=2, padding="same_tf", groups=3, bias=False)
        assert point == Layer("conv2d", 6, 5, 1)
        dk, pk, bias = weights  # (*k, in, m), (1, 1, in·m, out), (out,)
        xn = np.moveaxis(x, -1, 1)
        mid = apply(depth.bind(xn.shape), xn, dk.reshape(3, 3, 6, 1).transpose(2, 3, 0, 1))
        want = apply(point.bind(mid.shape), mid, pk.transpose(3, 2, 0, 1), bias)
        _close(np.moveaxis(y, -1, 1), want, "float64", backend)
    assert adapter.separable("layers.SeparableConv1D(4, 3, input_shape=(10, 2))")[1] == Layer("conv1d", 2, 4, 1)


def test_weight_layouts() -> None:
    """Keras keeps (*k, in/groups, out) for convolutions and (*k, out, in) for transposed ones: the
    emitted code converts both ways."""
    emitted = adapter.emit(Layer("conv2d", 4, 6, kernel_size=(2, 3), groups=2))
    w = np.arange(6 * 2 * 2 * 3, dtype=np.float64).reshape(6, 2, 2, 3)
    keras_w = eval(emitted.weight_out, {}, {"w": w})  # test-only: our own expression
    assert keras_w.shape == (2, 3, 2, 6) and keras_w[1, 2, 0, 5] == w[5, 0, 1, 2]
    namespace: dict[str, Any] = {"w": keras_w}
    exec(emitted.weight_in, {}, namespace)  # test-only: our own statement
    np.testing.assert_array_equal(namespace["w"], w)
    assert adapter.emit(Layer("conv_transpose1d", 4, 6, kernel_size=3, stride=2)).weight_out == "w.transpose(2, 1, 0)"


def test_generated_code_is_a_module_that_runs() -> None:
    """``Emitted.code()`` takes Keras' own layouts; run on each backend through run_case (convarith's)."""
    layer = Layer("conv_transpose2d", 4, 6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)
    emitted = adapter.emit(layer, (1, 4, 5, 5))
    assert "def make(weight, bias=None)" in emitted.code() and "Concatenate" in emitted.steps[-2]
    assert [f.code for f in emitted.findings].count("needs-workaround") == 2


def test_policies_need_the_input_only_when_keras_cannot_compute_them() -> None:
    assert adapter.emit(Layer("conv2d", 3, 8, kernel_size=3, stride=2, padding="same_tf")).steps == (
        "keras.layers.Conv2D(8, 3, strides=2, padding='same')",
    )
    with pytest.raises(ConvArithError, match="input_shape: is needed"):
        adapter.emit(Layer("conv2d", 3, 8, kernel_size=3, stride=2, padding="same_lower"))
    with pytest.raises(ConvArithError, match="stride: Keras refuses"):
        adapter.emit(Layer("conv_transpose1d", 1, 1, kernel_size=3, stride=2, dilation=2))
    assert adapter.emit(Layer("conv1d", 2, 4, kernel_size=3, stride=2, dilation=2, groups=2), (1, 2, 9)).steps == (
        "keras.layers.DepthwiseConv1D(3, strides=2, dilation_rate=2, depth_multiplier=2)",
    )


# -- Keras' quirks and the backends' disagreements: asserted, so that a change is noticed ------------------

X5 = np.arange(1.0, 6.0).reshape(1, 5, 1)


def test_transposed_same_with_output_padding_is_not_pytorchs_k_over_2() -> None:
    """Conv1DTranspose(k=3, s=2, 'same', output_padding=1) on 5 cells: 10 cells, the full output cropped
    (0, 1) — PyTorch's padding=1, output_padding=1 crops (1, 0): the same shape, shifted by one cell.
    All three backends agree with each other and with Keras' formula."""
    k = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    kwargs = {"filters": 1, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1, "use_bias": False}
    full = apply(
        Layer("conv_transpose1d", 1, 1, 3, stride=2, bias=False).bind((1, 1, 5)),
        X5.reshape(1, 1, 5),
        k.reshape(1, 1, 3),
    )
    for backend, got in _on_all("_in_call", "Conv1DTranspose", kwargs, X5, [k]).items():
        assert got.ravel().tolist() == full.ravel()[:-1].tolist(), backend
    torch_port = full.ravel()[1:]
    assert not np.array_equal(full.ravel()[:-1], torch_port)
    layer, _ = adapter.parse_call(
        parse_source("Conv1DTranspose(1, 3, strides=2, padding='same', output_padding=1)"), ""
    )
    assert explicit(layer, (1, 1, 5)).padding == ((0, 1),)


def test_transposed_output_padding_none_and_given_differ() -> None:
    """output_padding None: 'valid' is (i − 1)s + max(e, s), 'same' is i·s; given: 'valid' (i − 1)s + e + a,
    'same' (i − 1)s + e mod 2 + a."""
    x = np.ones((1, 4, 1))
    sizes = {}
    for padding in ("valid", "same"):
        for op in (None, 0):
            kwargs = {"filters": 1, "kernel_size": 2, "strides": 3, "padding": padding, "output_padding": op}
            got = _on_all("_in_call", "Conv1DTranspose", kwargs, x)
            if (padding, op) == ("same", 0):  # tensorflow: SAME needs ⌈out / s⌉ = i, and ⌈9 / 3⌉ = 3 ≠ 4
                assert got.pop("tensorflow") == "InvalidArgumentError"
            assert len({g.shape for g in got.values()}) == 1
            sizes[padding, op] = got["jax"].shape[1]
    assert sizes == {("valid", None): 12, ("valid", 0): 11, ("same", None): 12, ("same", 0): 9}
    # the translation never writes 'same' with an even extent and output_padding 0
    layer = Layer("conv_transpose1d", 1, 1, kernel_size=2, stride=3, padding=[(1, 1)])
    assert "padding='same'" not in adapter.emit(layer, (1, 1, 4)).steps[0]


def test_torch_backend_averages_asymmetric_same_padding_by_replicating_the_edge() -> None:
    """AveragePooling1D(4, strides=1, padding='same') on [1..5] pads (1, 2): jax and tensorflow average the
    cells inside the input; the torch backend replicates the edge cells into the windows (a bug)."""
    got = _on_all("_in_call", "AveragePooling1D", {"pool_size": 4, "strides": 1, "padding": "same"}, X5)
    inside = [2.0, 2.5, 3.5, 4.0, 4.5]
    assert got["jax"].ravel().tolist() == inside and got["tensorflow"].ravel().tolist() == inside
    assert got["torch"].ravel().tolist() == [1.75, 2.5, 3.5, 4.25, 4.75]
    # the translation writes asymmetric 'same' averages out, so it is right on every backend
    layer = Layer("avg_pool1d", kernel_size=4, stride=1, padding="same_tf", count_include_pad=False)
    assert "AveragePooling1D(4, strides=1, padding='same')" not in adapter.emit(layer, (1, 1, 5)).steps
    answers = _on_all("_in_run", [(layer.to_dict(), (1, 1, 5), 0)])
    for backend, [answer] in answers.items():
        x, _, _ = random_arrays(layer.bind((1, 1, 5)), 0)
        _close(answer["out"], apply(layer.bind((1, 1, 5)), x), "float64", backend)


def test_tensorflow_cpu_refuses_dilated_transposed_and_channels_first() -> None:
    x = np.ones((1, 6, 2))
    dilated = _on_all("_in_call", "Conv1DTranspose", {"filters": 1, "kernel_size": 3, "dilation_rate": 2}, x)
    assert dilated["tensorflow"] == "InvalidArgumentError"
    assert dilated["torch"].shape == dilated["jax"].shape == (1, 10, 1)
    first = _on_all(
        "_in_call", "Conv1D", {"filters": 1, "kernel_size": 3, "data_format": "channels_first"}, np.ones((1, 2, 6))
    )
    assert first["tensorflow"] == "UnimplementedError" and first["jax"].shape == (1, 1, 4)
    pool = _on_all("_in_call", "MaxPooling3D", {"pool_size": 2}, np.ones((1, 4, 4, 4, 1)))
    assert pool["tensorflow"] == "InvalidArgumentError" and pool["torch"].shape == (1, 2, 2, 2, 1)
    assert adapter.emit(Layer("max_pool3d", kernel_size=2)).dtype == "float32"


def test_depthwise_accepts_strides_with_dilation_unlike_conv() -> None:
    """Keras' docs say DepthwiseConv*D raises for strides > 1 with dilation_rate > 1; it computes them (right,
    on every backend, as the property test checks); Conv*D refuses."""
    x = np.ones((1, 9, 2))
    depthwise = _on_all("_in_call", "DepthwiseConv1D", {"kernel_size": 3, "strides": 2, "dilation_rate": 2}, x)
    conv = _on_all("_in_call", "Conv1D", {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, x)
    for backend in BACKENDS:
        assert depthwise[backend].shape == (1, 3, 2) and conv[backend] == "ValueError"


def test_jax_backend_computes_float64_layers_in_float32_without_x64() -> None:
    with Worker({"KERAS_BACKEND": "jax", "PYTHONPATH": TESTS}) as fresh:
        assert fresh.call(MODULE, "_in_float32_default") == "float32"
    assert 'jax.config.update("jax_enable_x64", True)' in adapter.emit(Layer("conv1d", 1, 1, 1)).build


def test_version_and_findings() -> None:
    assert adapter.installed() and adapter.NAME == "keras"
    assert "backend" in _worker("jax").call("convarith.frameworks.keras", "version")
    entries = [f.data.get("entry") for f in adapter.findings(Layer("avg_pool1d", kernel_size=2, padding=1), (1, 1, 4))]
    assert "count-include-pad" in entries
    refused = adapter.findings(Layer("conv2d", 1, 1, kernel_size=3, padding=1, padding_mode="reflect"))
    assert [f.code for f in refused] == ["refused"] and "Keras" in refused[0].message
    assert math.isclose(1.0, 1.0) and os.environ.get("KERAS_BACKEND", "unset") in ("unset", *BACKENDS)


def test_from_native_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ConvArithError, match="source"):
        adapter.from_native(object())
    parsed = adapter.parse_call(ast.parse("keras.layers.Conv2D(8, 3)").body[0].value, "")  # type: ignore[attr-defined]
    assert parsed[0].out_channels == 8
