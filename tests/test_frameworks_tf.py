"""The TensorFlow adapter against TensorFlow: emitted ``tf.nn`` code computes convarith's reference values,
the rules refuse exactly what ``tf.nn`` refuses and ask for a workaround exactly where the single ``tf.nn``
call cannot compute the layer, ``tf.nn`` calls written as text parse to the layer TensorFlow computes, and
TensorFlow's traps are asserted as they are today (/work/notes/pitfalls_tf.md)."""

from __future__ import annotations

import ast
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from convarith import BoundLayer, ConvArithError, Layer, check  # noqa: E402
from convarith.frameworks import tf as adapter  # noqa: E402
from convarith.frameworks.base import build, explicit, random_arrays, run  # noqa: E402
from convarith.ops.reference import apply  # noqa: E402
from convarith.rules.tf import same_pads  # noqa: E402
from strategies import bound_layers, examples, layers  # noqa: E402

ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError)


def _errors(layer: Layer, shape: Any = None) -> list[str]:
    return [f.message for f in check(layer, shape, framework="tf") if f.severity == "error"]


def _close(got: np.ndarray, want: np.ndarray, dtype: str = "float64") -> None:
    assert got.shape == want.shape
    tol = 1e-9 if dtype == "float64" else 1e-4  # float32: a sum of a few dozen products of N(0, 1) values
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)


def _last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def _first(y: Any) -> np.ndarray:
    return np.moveaxis(np.asarray(y, dtype=np.float64), -1, 1)


def _parse(text: str) -> tuple[Layer, tuple[int, ...] | None]:
    return adapter.parse_call(ast.parse(text, mode="eval").body, text)  # type: ignore[arg-type]


any_bound = st.one_of(bound_layers(forms=(2,)), bound_layers(layers(torch_like=False), forms=(2,)))


@examples(300)
@given(any_bound, st.integers(0, 2**32 - 1))
def test_emitted_code_computes_the_reference(bound: BoundLayer, seed: int) -> None:
    """Every layer of 1 to 3 axes TensorFlow runs (no refusal), and exactly (float32 for 3-d pools)."""
    assert not _errors(bound.layer, bound.input_shape)
    x, w, b = random_arrays(bound, seed)
    got = run(adapter, bound, x, w, b)
    _close(got, apply(bound, x, w, b), adapter.emit(bound.layer, bound.input_shape).dtype)


# -- refusals: more than 3 spatial axes --------------------------------------------------------------------


@examples(20)
@given(bound_layers(layers(ndims=(4,), max_kernel=2, max_stride=2, max_dilation=1), forms=(2,)))
def test_rules_refuse_exactly_what_tf_refuses(bound: BoundLayer) -> None:
    """tf.nn.convolution and tf.nn.pool take 1 to 3 spatial axes: a 4-d layer is refused by both."""
    assert _errors(bound.layer, bound.input_shape)
    with pytest.raises(ConvArithError, match="1 to 3 spatial axes"):
        adapter.emit(bound.layer, bound.input_shape)
    x = _last(random_arrays(bound)[0])
    layer = bound.layer
    with pytest.raises(ValueError, match="1, 2, or 3"):
        if layer.pooling:
            tf.nn.pool(x, layer.kernel_size, "MAX", padding="VALID")
        else:
            c = bound.in_channels
            tf.nn.convolution(x, np.ones((*layer.kernel_size, c, 1)), padding="VALID")


# -- warnings: exactly where the one tf.nn call cannot compute the layer ---------------------------------------


def _attempt(fn: Any, want: np.ndarray) -> bool:
    try:
        got = _first(fn())
    except ERRORS:
        return False
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-4, equal_nan=True))


def _native_works(bound: BoundLayer) -> bool:
    """Whether one tf.nn call with the layer's own numbers computes it: 'SAME', 'VALID' or the explicit pairs
    where TensorFlow has a parameter for them (never a pad, crop, split or rescaling around it)."""
    layer = bound.layer
    n = layer.ndim
    x, w, _ = random_arrays(bound)
    if layer.kind == "max_pool":
        x = -1 - np.abs(x)  # below zero: a padding of zeros (tf-pool-dilated-pads) shows in the maxima
    want = apply(bound.layer.replace(bias=False), x, w) if layer.weighted else apply(bound, x)
    xl = tf.convert_to_tensor(_last(x).astype(np.float32))
    pads = bound.pads
    paddings: list[Any] = []
    if all(p == (0, 0) for p in pads) and not layer.transposed:
        paddings.append("VALID")
    extents = layer.effective_kernel if layer.kind == "conv" else layer.kernel_size
    if not layer.transposed and all(
        tuple(p) == same_pads(i, e, s)
        for p, i, e, s in zip(pads, bound.input_spatial, extents, layer.stride, strict=True)
    ):
        paddings.append("SAME")
    if layer.kind == "conv":
        from convarith.rules.tf import _reads_padding

        if layer.padding_mode != "zeros" and _reads_padding(bound):
            return False
        if n == 2:
            paddings.append([[0, 0], *map(list, pads), [0, 0]])
        kernel = np.transpose(w, (*range(2, n + 2), 1, 0)).astype(np.float32)
        fn = {1: tf.nn.conv1d, 2: tf.nn.conv2d, 3: tf.nn.conv3d}[n]
        strides: Any = list(layer.stride) if n < 3 else [1, *layer.stride, 1]
        dilations: Any = list(layer.dilation) if n < 3 else [1, *layer.dilation, 1]
        return any(_attempt(lambda p=p: fn(xl, kernel, strides, p, dilations=dilations), want) for p in paddings)
    if layer.transposed:
        if layer.groups > 1:
            return False  # no parameter for groups
        kernel = np.transpose(w, (*range(2, n + 2), 1, 0)).astype(np.float32)
        fn = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}[n]
        out = (bound.input_shape[0], *bound.output_spatial, bound.out_channels)
        candidates: list[Any] = ["SAME", "VALID"]
        if n == 2:
            extra = bound.output_padding
            candidates.append([[0, 0], *([b, max(a - op, 0)] for (b, a), op in zip(pads, extra, strict=True)), [0, 0]])
        return any(
            _attempt(lambda p=p: fn(xl, kernel, out, list(layer.stride), p, dilations=list(layer.dilation)), want)
            for p in candidates
        )
    kind = "MAX" if layer.kind == "max_pool" else "AVG"
    if layer.kind == "max_pool" and n <= 2 and min(min(p) for p in pads) >= 0:
        paddings.append([[0, 0], *map(list, pads), [0, 0]])
    if layer.dilation != (1,) * n:
        return any(
            _attempt(
                lambda p=p: tf.nn.pool(xl, layer.kernel_size, kind, list(layer.stride), p, dilations=layer.dilation),
                want,
            )
            for p in paddings
        )
    fn = tf.nn.max_pool if kind == "MAX" else tf.nn.avg_pool
    return any(_attempt(lambda p=p: fn(xl, layer.kernel_size, layer.stride, p), want) for p in paddings)


def _workarounds(bound: BoundLayer) -> list[str]:
    return [f.message for f in check(bound.layer, bound.input_shape, framework="tf") if f.code == "needs-workaround"]


@examples(300)
@given(any_bound)
def test_workarounds_are_exactly_what_the_native_call_cannot_do(bound: BoundLayer) -> None:
    assert bool(_workarounds(bound)) == (not _native_works(bound)), _workarounds(bound)


# -- the steps read back; strings ---------------------------------------------------------------------------------


def _with_shapes(step: str, bound: BoundLayer) -> str:
    x = str(tuple(_last(np.empty(bound.input_shape)).shape))
    text = step.replace("(x,", f"({x},", 1)
    if bound.layer.weighted:
        assert bound.weight_shape is not None
        n = bound.ndim
        kernel = tuple(np.transpose(np.empty(bound.weight_shape), (*range(2, n + 2), 1, 0)).shape)
        text = text.replace(", kernel,", f", {kernel},", 1)
    return text


one_call = st.one_of(
    bound_layers(layers(kinds=("conv",), crops=False, modes=("zeros",)), forms=(2,)),
    bound_layers(layers(kinds=("conv",), ndims=(1, 3), asymmetric=False, max_stride=1, modes=("zeros",)), forms=(2,)),
    bound_layers(layers(kinds=("conv_transpose",), ndims=(1, 2), max_dilation=1, channels=False), forms=(2,)),
    bound_layers(layers(kinds=("max_pool", "avg_pool"), max_dilation=1, asymmetric=False), forms=(2,)),
)


@settings(examples(200), suppress_health_check=[HealthCheck.filter_too_much])
@given(one_call)
def test_steps_read_back_as_the_same_layer(bound: BoundLayer) -> None:
    """A translation that is one tf.nn call (and a bias) parses back to a layer computing the same values."""
    emitted = adapter.emit(bound.layer, bound.input_shape)
    calls = [s for s in emitted.steps if s.startswith("tf.nn.") and not s.startswith("tf.nn.bias_add")]
    others = [s for s in emitted.steps if not s.startswith("tf.nn.")]
    assume(len(calls) == 1 and not others)
    back, shape = _parse(_with_shapes(calls[0], bound))
    assert shape == bound.input_shape
    back_bound = back.bind(shape)
    assert back_bound.output_shape == bound.output_shape
    x, w, _ = random_arrays(bound)
    _close(apply(back_bound, x, w), apply(bound.layer.replace(bias=False), x, w) if w is not None else apply(bound, x))
    if bound.layer.kind == "conv":
        assert (back.groups, back.dilation, back.stride) == (
            bound.layer.groups,
            bound.layer.dilation,
            bound.layer.stride,
        )


def test_parse_call_examples() -> None:
    layer, shape = _parse("tf.nn.conv2d((1, 32, 32, 6), (3, 3, 3, 16), strides=2, padding='SAME', dilations=1)")
    assert shape == (1, 6, 32, 32)
    assert layer == Layer("conv2d", 6, 16, 3, stride=2, padding="same_tf", groups=2, bias=False)
    layer, _ = _parse("tf.nn.conv1d(x, (5, 4, 8), 2, 'VALID')")
    assert layer == Layer("conv1d", 4, 8, 5, stride=2, padding="valid", bias=False)
    layer, _ = _parse("tf.nn.conv2d(x, (3, 3, 4, 8), [1, 2, 2, 1], [[0, 0], [1, 2], [0, 1], [0, 0]])")
    assert layer.padding == ((1, 2), (0, 1)) and layer.stride == (2, 2)
    layer, shape = _parse(
        "tf.nn.conv2d_transpose((1, 8, 8, 64), (4, 4, 32, 64), output_shape=(1, 16, 16, 32), strides=2, padding='SAME')"
    )
    assert layer == Layer("conv_transpose2d", 64, 32, 4, stride=2, padding="same_tf", bias=False)
    assert explicit(layer).padding == ((1, 1), (1, 1))
    # 'SAME' with output 15 (⌈15/2⌉ = 8): the pads of the convolution of 15, another layer
    layer, _ = _parse("tf.nn.conv2d_transpose((1, 8, 8, 4), (3, 3, 2, 4), (1, 15, 15, 2), 2, 'SAME')")
    assert layer.padding == ((1, 1), (1, 1)) and layer.output_padding == (0, 0)
    layer, _ = _parse("tf.nn.conv1d_transpose((1, 4, 1), (1, 1, 1), (1, 12, 1), 3, 'VALID')")
    assert layer.padding == ((0, 0),) and layer.output_padding == (2,)
    layer, shape = _parse("tf.nn.max_pool2d((1, 9, 9, 3), 3, 2, 'SAME')")
    assert layer == Layer("max_pool2d", kernel_size=3, stride=2, padding="same_tf") and shape == (1, 3, 9, 9)
    layer, _ = _parse("tf.nn.avg_pool(x, (2, 2), (2, 2), 'SAME')")
    assert layer == Layer("avg_pool2d", kernel_size=2, padding="same_tf", count_include_pad=False)
    layer, _ = _parse("tf.nn.pool(x, (3,), 'MAX', padding='VALID', dilations=(2,))")
    assert layer == Layer("max_pool1d", kernel_size=3, stride=1, padding="valid", dilation=2)
    for bad, param in [
        ("tf.nn.conv2d(x, (3, 3, 3, 16), 1, 'SAME', data_format='NCHW')", "data_format"),
        ("tf.nn.conv2d(x, w, 1, 'SAME')", "filters"),
        ("tf.nn.conv2d_transpose(x, (3, 3, 2, 4), (1, 9, 9, 2), 2, 'VALID')", "input"),
        ("tf.nn.conv2d_transpose((1, 4, 4, 4), (3, 3, 2, 4), (1, 20, 20, 2), 2, 'VALID')", "output_shape"),
        ("tf.nn.conv2d_transpose((1, 4, 4, 4), (3, 3, 2, 4), (1, 9, 9, 3), 2, 'VALID')", "output_shape"),
        ("tf.nn.pool(x, (3,), 'SUM')", "pooling_type"),
        ("tf.nn.max_pool(x, 2, 2, 'SAME')", "input"),
        ("tf.nn.conv2d(x, (3, 3, 3, 16), 1, 'FULL')", "padding"),
        ("tf.nn.relu(x)", "source"),
    ]:
        with pytest.raises(ConvArithError) as err:
            _parse(bad)
        assert err.value.param == param, bad
    # TensorFlow agrees with the parsed output_shape rule: the 20-cell output is refused
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.nn.conv2d_transpose(np.ones((1, 4, 4, 4)), np.ones((3, 3, 2, 4)), (1, 20, 20, 2), 2, "VALID")


def test_translate_reads_tf_strings() -> None:
    from convarith.frameworks.translate import parse

    assert parse("tf.nn.conv2d(x, (3, 3, 3, 16), strides=2, padding='SAME')")[0] == "tf"


def test_from_native_refuses_objects() -> None:
    with pytest.raises(ConvArithError, match="no layer objects"):
        adapter.from_native(tf.constant(1.0))


def test_generated_code_is_a_module_that_runs() -> None:
    """code() takes TensorFlow's own filter layout (weight_in back to convarith's, then weight_out)."""
    layer = Layer("conv_transpose2d", 4, 6, kernel_size=(3, 2), stride=2, padding=1, groups=2, dilation=2)
    bound = layer.bind((2, 4, 5, 4))
    emitted = adapter.emit(layer, bound.input_shape)
    x, w, b = random_arrays(bound)
    tf_w = eval(emitted.weight_out, {"np": np}, {"w": w})  # test-only: our own expression
    assert tf_w.shape == (3, 2, 3, 4)  # (*k, out/groups, in)
    module: dict[str, Any] = {}
    exec(compile(emitted.code(), "<test>", "exec"), module)  # test-only: the code convarith wrote
    _close(_first(module["make"](tf_w, b)(_last(x))), apply(bound, x, w, b))
    _close(_first(build(emitted, w, b)(_last(x))), apply(bound, x, w, b))


def test_emit_without_an_input_shape() -> None:
    """Policies and pads that do not depend on the input size need none; a transposed output_shape is then
    computed from x in the code."""
    for layer, shape in [
        (Layer("conv_transpose1d", 2, 3, 3, stride=2, padding=1, output_padding=1), (1, 2, 5)),
        (
            Layer("conv_transpose3d", 2, 2, 2, stride=(1, 2, 3), padding=(0, 1, 2), output_padding=(0, 1, 2)),
            (1, 2, 3, 3, 3),
        ),
        (Layer("conv1d", 2, 2, 3, padding=2, padding_mode="replicate"), (1, 2, 4)),
        (Layer("conv1d", 2, 2, 3, padding=[(2, -1)], padding_mode="circular"), (1, 2, 4)),
        (Layer("max_pool1d", kernel_size=3, stride=1, padding=1, dilation=2), (1, 2, 6)),
    ]:
        bound = layer.bind(shape)
        emitted = adapter.emit(layer)
        x, w, b = random_arrays(bound)
        _close(_first(build(emitted, w, b)(_last(x))), apply(bound, x, w, b))
    with pytest.raises(ConvArithError, match="input_shape"):
        adapter.emit(Layer("avg_pool1d", kernel_size=3, padding=1))


def test_version_and_registry() -> None:
    from convarith.frameworks import ADAPTERS
    from convarith.frameworks import adapter as get

    assert adapter.version() == tf.__version__
    assert adapter.installed() and "tf" in ADAPTERS and get("tf") is adapter
    assert adapter.findings(Layer("conv2d", 1, 1, 3)) == []


# -- TensorFlow's traps, asserted as they are (/work/notes/pitfalls_tf.md) ----------------------------------------


def test_cpu_kernels_refuse_channels_first() -> None:
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):
        tf.nn.conv2d(x, np.ones((1, 1, 2, 1)), 1, "VALID", data_format="NCHW")
    with pytest.raises(tf.errors.UnimplementedError, match="NHWC"):
        tf.nn.conv1d(x[:, :, 0], np.ones((1, 2, 1)), 1, "VALID", data_format="NCW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.conv3d(x[..., None], np.ones((1, 1, 1, 2, 1)), [1] * 5, "VALID", data_format="NCDHW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.max_pool2d(x, 2, 2, "VALID", data_format="NCHW")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NHWC"):
        tf.nn.conv2d_transpose(x, np.ones((1, 1, 1, 2)), (1, 1, 4, 4), 1, "VALID", data_format="NCHW")
    assert adapter.emit(Layer("conv2d", 2, 1, 1)).layout == "channels_last"


def test_max_pool_float64_numpy_input_becomes_float32_after_the_first_call() -> None:
    """tf.nn.max_pool2d on a float64 NumPy array returns float64 the first time in a process (not asserted here:
    other tests ran it) and float32, rounded, on every later call; a tf.float64 tensor stays float64, and
    avg_pool2d keeps float64. The emitted code converts its input first."""
    x = np.full((1, 2, 2, 1), 1 + 2**-30)
    tf.nn.max_pool2d(x, 2, 2, "VALID")
    later = tf.nn.max_pool2d(x, 2, 2, "VALID")
    assert later.dtype == tf.float32 and later.numpy().item() == 1.0  # 2⁻³⁰ rounded away
    assert tf.nn.max_pool2d(tf.constant(x), 2, 2, "VALID").dtype == tf.float64
    assert tf.nn.avg_pool2d(x, 2, 2, "VALID").dtype == tf.float64
    assert "tf.convert_to_tensor(x, tf.float64)" in adapter.emit(Layer("max_pool2d", kernel_size=2)).build


def test_max_pool_of_minus_inf_is_the_lowest_finite_value() -> None:
    x = tf.constant(np.array([-np.inf, -np.inf, 1.0]).reshape(1, 3, 1))
    assert tf.nn.max_pool1d(x, 2, 1, "VALID").numpy().ravel().tolist() == [np.finfo(np.float64).min, 1.0]
    x3 = tf.reshape(tf.cast(x, tf.float32), (1, 3, 1, 1, 1))
    assert tf.nn.max_pool3d(x3, (2, 1, 1), 1, "VALID").numpy().ravel().tolist() == [-np.inf, 1.0]  # 3-d: -inf
    layer = Layer("max_pool1d", kernel_size=2, stride=1, padding=[(3, 0)])
    emitted = adapter.emit(layer, (1, 1, 3))
    assert any("tf-max-pool-lowest" in f.message for f in emitted.findings)
    assert run(adapter, layer.bind((1, 1, 3)), np.ones((1, 1, 3))).ravel().tolist()[:2] == [-np.inf, -np.inf]


def test_3d_same_moves_the_windows() -> None:
    """Conv3D, MaxPool3D and AvgPool3D start 'SAME' windows at half an unclamped total: k=1, s=3 on 3 cells
    reads the second cell; Conv2D reads the first. The rules see it; the translation writes 'VALID'."""
    x = np.arange(1.0, 4.0).reshape(1, 3, 1, 1, 1)
    one = np.ones((1, 1, 1, 1, 1))
    assert tf.nn.conv3d(x, one, [1, 3, 1, 1, 1], "SAME").numpy().ravel().tolist() == [2.0]
    assert tf.nn.max_pool3d(x.astype(np.float32), 1, [1, 3, 1, 1, 1], "SAME").numpy().ravel().tolist() == [2.0]
    assert tf.nn.avg_pool3d(x.astype(np.float32), 1, [1, 3, 1, 1, 1], "SAME").numpy().ravel().tolist() == [2.0]
    assert tf.nn.conv2d(x[..., 0], one[..., 0, :, :], [1, 3, 1, 1], "SAME").numpy().ravel().tolist() == [1.0]
    layer = Layer("conv3d", 1, 1, kernel_size=1, stride=(3, 1, 1), padding="same_tf", bias=False)
    emitted = adapter.emit(layer, (1, 1, 3, 1, 1))
    assert emitted.steps == ("tf.nn.conv3d(x, kernel, strides=[1, 3, 1, 1, 1], padding='VALID')",)
    assert any("tf-3d-same-shift" in f.message for f in emitted.findings)
    assert run(adapter, layer.bind((1, 1, 3, 1, 1)), np.arange(1.0, 4.0).reshape(1, 1, 3, 1, 1), one).ravel() == [1]
    assert "'SAME'" in adapter.emit(layer, (1, 1, 4, 1, 1)).steps[0]  # 4 cells: the windows need 1 fewer, clamped
    with pytest.raises(ConvArithError, match="input_shape"):
        adapter.emit(layer)


def test_dilated_pool_pads_explicit_pairs_with_zeros() -> None:
    x = -np.ones((1, 3, 1, 1))
    pairs = [[0, 0], [1, 1], [0, 0], [0, 0]]
    assert tf.nn.pool(x, (2, 1), "MAX", (1, 1), pairs, dilations=(2, 1)).numpy().ravel().tolist() == [0, -1, 0]
    assert tf.nn.pool(x, (2, 1), "MAX", (1, 1), pairs, dilations=(1, 1)).numpy().ravel().tolist() == [-1] * 4
    layer = Layer("max_pool2d", kernel_size=(2, 1), stride=1, padding=[(1, 1), (0, 0)], dilation=(2, 1))
    emitted = adapter.emit(layer, (1, 1, 3, 1))
    assert any("tf-pool-dilated-pads" in f.message for f in emitted.findings)
    assert run(adapter, layer.bind((1, 1, 3, 1)), -np.ones((1, 1, 3, 1))).ravel().tolist() == [-1] * 3


def test_conv3d_cpu_has_no_dilations_and_no_groups_where_conv2d_has_both() -> None:
    x = np.ones((1, 4, 4, 4, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="dilated rates of 1"):
        tf.nn.conv3d(x, np.ones((2, 2, 2, 4, 2)), [1] * 5, "VALID", dilations=[1, 2, 2, 2, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must match"):
        tf.nn.conv3d(x, np.ones((2, 2, 2, 2, 2)), [1] * 5, "VALID")
    with pytest.raises(TypeError, match="list"):
        tf.nn.conv3d(x, np.ones((1, 1, 1, 4, 2)), 2, "VALID")  # conv1d/conv2d take an int stride; Conv3D needs 5
    # tf.nn.convolution dilates a 3-d convolution itself (space_to_batch), at stride 1 only
    assert tf.nn.convolution(x, np.ones((2, 2, 2, 4, 2)), padding="VALID", dilations=2).shape == (1, 2, 2, 2, 2)
    # conv2d: groups = input channels / filter in-channels, and dilations with strides (tf.nn.convolution refuses)
    layer = Layer("conv2d", 4, 6, 3, stride=2, dilation=2, groups=2, bias=False)
    bound = layer.bind((1, 4, 9, 9))
    xs, w, _ = random_arrays(bound)
    got = tf.nn.conv2d(_last(xs), np.transpose(w, (2, 3, 1, 0)), 2, "VALID", dilations=2)
    _close(_first(got), apply(bound, xs, w))
    with pytest.raises(ValueError, match="dilation_rate"):
        tf.nn.convolution(_last(xs), np.transpose(w, (2, 3, 1, 0)), strides=2, padding="VALID", dilations=2)


def test_transposed_convolutions_have_no_groups_and_no_cpu_dilations() -> None:
    x = np.ones((1, 5, 5, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="dilation"):
        tf.nn.conv2d_transpose(x, np.ones((3, 3, 2, 4)), (1, 9, 9, 2), 1, "VALID", dilations=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="out_depth"):
        tf.nn.conv2d_transpose(x, np.ones((3, 3, 2, 2)), (1, 11, 11, 2), 2, "VALID")
    codes = [f.code for f in check(Layer("conv_transpose2d", 4, 2, 3, groups=2, dilation=2), framework="tf")]
    assert codes.count("needs-workaround") == 2


def test_transposed_same_is_the_forward_convolutions_padding_of_output_shape() -> None:
    """'SAME' with output_shape o pads the convolution of o TensorFlow's way: k=3, s=2, i=4 → o=8 crops (0, 1)
    (PyTorch's padding=1, output_padding=1 crops (1, 0): shifted by one); o=7 is PyTorch's padding=1."""
    x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    k = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    eight = tf.nn.conv1d_transpose(x, k, (1, 8, 1), 2, "SAME").numpy().ravel()
    assert eight.tolist() == [1.0, 10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0]
    seven = tf.nn.conv1d_transpose(x, k, (1, 7, 1), 2, "SAME").numpy().ravel()
    torch_p1 = apply(
        Layer("conv_transpose1d", 1, 1, 3, stride=2, padding=1, bias=False).bind((1, 1, 4)), _first(x), k.T
    )
    assert seven.tolist() == torch_p1.ravel().tolist()
    with pytest.raises(tf.errors.InvalidArgumentError, match="doesn't match"):
        tf.nn.conv1d_transpose(x, k, (1, 9, 1), 2, "SAME")
    assert explicit(_parse("tf.nn.conv1d_transpose((1, 4, 1), (3, 1, 1), (1, 8, 1), 2, 'SAME')")[0]).padding == (
        (0, 1),
    )
    # 'VALID' leaves the cells past the last stamp zero: o = (i − 1)s + k + extra, extra < s
    valid = tf.nn.conv1d_transpose(x, k, (1, 10, 1), 2, "VALID").numpy().ravel()
    assert valid[-1] == 0.0 and valid[-2] == 400.0


def test_explicit_pairs_exist_for_conv2d_and_max_pool_only() -> None:
    x1, x2, x3 = np.ones((1, 6, 1)), np.ones((1, 6, 6, 1)), np.ones((1, 4, 4, 4, 1))
    pairs1, pairs2 = [[0, 0], [1, 1], [0, 0]], [[0, 0], [1, 1], [0, 2], [0, 0]]
    assert tf.nn.conv2d(x2, np.ones((3, 3, 1, 1)), 1, pairs2).shape == (1, 6, 6, 1)
    assert tf.nn.conv2d_transpose(x2, np.ones((3, 3, 1, 1)), (1, 6, 6, 1), 1, [[0, 0], [1, 1], [1, 1], [0, 0]]).shape
    assert tf.nn.max_pool1d(x1, 2, 1, pairs1).shape == (1, 7, 1)
    assert tf.nn.max_pool2d(x2, 2, 1, [[0, 0], [1, 1], [0, 1], [0, 0]]).shape == (1, 7, 6, 1)
    for call in (
        lambda: tf.nn.conv1d(x1, np.ones((3, 1, 1)), 1, pairs1),
        lambda: tf.nn.conv3d(x3, np.ones((1, 1, 1, 1, 1)), [1] * 5, [[0, 0], [1, 1], [0, 0], [0, 0], [0, 0]]),
        lambda: tf.nn.convolution(x2, np.ones((3, 3, 1, 1)), padding=pairs2),
        lambda: tf.nn.conv1d_transpose(x1, np.ones((3, 1, 1)), (1, 6, 1), 1, pairs1),
        lambda: tf.nn.avg_pool2d(x2, 2, 1, pairs2),
    ):
        with pytest.raises(TypeError, match="Expected string"):
            call()
    with pytest.raises(tf.errors.InvalidArgumentError, match="nonnegative"):
        tf.nn.conv2d(x2, np.ones((3, 3, 1, 1)), 1, [[0, 0], [-1, 1], [0, 0], [0, 0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the window"):
        tf.nn.max_pool2d(x2, 2, 1, [[0, 0], [2, 0], [0, 0], [0, 0]])


def test_same_average_excludes_the_padding_and_same_max_ignores_it() -> None:
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    assert tf.nn.avg_pool1d(x, 2, 2, "SAME").numpy().ravel().tolist() == [1.5, 3.5, 5.0]
    include = Layer("avg_pool1d", kernel_size=2, padding=[(0, 1)])
    assert apply(include.bind((1, 1, 5)), _first(x)).ravel().tolist() == [1.5, 3.5, 2.5]  # PyTorch's default
    assert tf.nn.max_pool1d(-x, 2, 2, "SAME").numpy().ravel().tolist() == [-1.0, -3.0, -5.0]
    emitted = adapter.emit(include, (1, 1, 5))
    assert any("count-include-pad" in f.message for f in emitted.findings)


def test_pool_with_dilations_only_valid_at_stride_one_and_3d_pools_have_no_float64() -> None:
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    assert tf.nn.pool(x, (2,), "MAX", padding="VALID", dilations=(2,)).numpy().ravel().tolist() == [3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="SAME"):
        tf.nn.pool(x, (2,), "MAX", padding="SAME", dilations=(2,))
    with pytest.raises(ValueError, match="strides"):
        tf.nn.pool(x, (2,), "MAX", strides=(2,), padding="VALID", dilations=(2,))
    with pytest.raises(TypeError):
        tf.nn.pool(x, (2,), "MAX", padding="VALID", dilations=2)  # an int is not taken here
    x3 = tf.constant(np.ones((1, 2, 2, 2, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="double"):
        tf.nn.max_pool3d(x3, 1, 1, "VALID")
    with pytest.raises(tf.errors.NotFoundError):
        tf.nn.avg_pool3d(x3, 1, 1, "VALID")
    assert adapter.emit(Layer("max_pool3d", kernel_size=2)).dtype == "float32"
    assert adapter.emit(Layer("avg_pool2d", kernel_size=2)).dtype == "float64"


def test_tf_pad_has_no_edge_or_wrap_mode() -> None:
    """PyTorch's 'replicate' repeats the edge; tf.pad's 'SYMMETRIC' mirrors including the edge (the same for
    one cell only) and 'REFLECT' takes pads smaller than the input, like PyTorch's reflect."""
    x = np.arange(1.0, 4.0).reshape(1, 3, 1)
    assert tf.pad(x, [[0, 0], [2, 0], [0, 0]], mode="SYMMETRIC").numpy().ravel().tolist() == [2, 1, 1, 2, 3]
    replicate = Layer("conv1d", 1, 1, 1, padding=[(2, 0)], padding_mode="replicate", bias=False)
    assert apply(replicate.bind((1, 1, 3)), _first(x), np.ones((1, 1, 1))).ravel().tolist() == [1, 1, 1, 2, 3]
    with pytest.raises(ValueError):
        tf.pad(x, [[0, 0], [1, 0], [0, 0]], mode="EDGE")
    with pytest.raises(tf.errors.InvalidArgumentError, match="less than"):
        tf.pad(x, [[0, 0], [3, 0], [0, 0]], mode="REFLECT")
    steps = adapter.emit(replicate, (1, 1, 3)).steps
    assert steps[0].startswith("tf.concat([tf.repeat(")
    # a reflection longer than the input: indices (tf.gather), as PyTorch's F.pad would refuse
    long = Layer("conv1d", 1, 1, 1, padding=[(4, 0)], padding_mode="reflect", bias=False)
    assert adapter.emit(long, (1, 1, 3)).steps[0].startswith("tf.gather(")
    got = run(adapter, long.bind((1, 1, 3)), _first(x), np.ones((1, 1, 1)))
    assert got.ravel().tolist() == apply(long.bind((1, 1, 3)), _first(x), np.ones((1, 1, 1))).ravel().tolist()
