"""Model analysis against Keras 3: the receptive fields of keras.applications are the published ones,
every exact field of a random functional model is the support of an input gradient, every node has
Keras' own shape, files and application names read as their models, channels-first models read as
their channels-last twins, mismatched merges are recorded.

Keras runs in the test process on its default backend (the gradients need tensorflow's); the
per-backend adapter tests run Keras in worker processes of their own and are not disturbed."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convarith import ConvArithError  # noqa: E402
from convarith.analysis import Analysis, analyze  # noqa: E402
from convarith.analysis.fields import Lost  # noqa: E402
from convarith.frameworks.trace_keras import trace  # noqa: E402
from strategies import examples  # noqa: E402

L = keras.layers


def _tf() -> Any:
    if keras.backend.backend() != "tensorflow":  # pragma: no cover
        pytest.skip("the gradients here are tensorflow's")
    import tensorflow as tf

    return tf


def _graph(report: Analysis) -> list[tuple[object, ...]]:
    """The nodes as data, the input's name and layout left out (Keras numbers unnamed inputs per process)."""
    first = report.graph.inputs[0]

    def named(name: str) -> str:
        return "<input>" if name == first else name

    def params(p: Any) -> dict[str, object]:
        return {k: v for k, v in p.items() if k != "layout"}

    return [(named(n.name), n.op, n.shape, tuple(map(named, n.inputs)), params(n.params)) for n in report.graph.nodes]


# -- the published receptive fields ----------------------------------------------------------------------

# google-research/receptive_field, README table (Araujo, Norris & Sim, Distill 2019): TF-slim's
# vgg_16 pool5, mobilenet_v1 Conv2d_13_pointwise, inception_v3 Mixed_7c — Keras' names for them
PUBLISHED = [
    ("VGG16", 224, ("block5_pool",), 212, 32, 90),
    ("MobileNet", 224, ("conv_pw_13", "conv_pw_13_relu"), 315, 32, 126),
    ("InceptionV3", 299, ("mixed10",), 1311, 32, 618),
]


@pytest.mark.parametrize(("name", "size", "nodes", "rf", "stride", "padding"), PUBLISHED)
def test_receptive_fields_are_the_published_ones(
    name: str, size: int, nodes: Sequence[str], rf: int, stride: int, padding: int
) -> None:
    report = analyze(f"keras.applications.{name}", (1, size, size, 3), include_top=False)
    for node in nodes:
        for f in report[node].fields:
            assert not isinstance(f, Lost)
            assert (max(f.sizes), f.rate, -f.phases[0][0]) == (rf, stride, padding), (name, node)


def test_a_model_built_at_one_size_traces_at_another_as_if_built_there() -> None:
    built = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(224, 224, 3))
    again = analyze(built, (1, 160, 128, 3))
    fresh = analyze("keras.applications.MobileNet", (1, 160, 128, 3), include_top=False)
    assert _graph(again) == _graph(fresh)
    assert again["conv_pw_13_relu"].node.shape == (1, 1024, 5, 4)
    trainable = sum(math.prod(w.shape) for w in built.trainable_weights)  # BN's moving statistics are not weights
    assert again.parameters == fresh.parameters == trainable < built.count_params()


def test_a_model_refuses_sizes_keras_refuses() -> None:
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, L.Dense(3, name="fc")(L.Flatten()(L.Conv2D(4, 3)(inp))))
    assert analyze(model, (1, 16, 16, 3))["fc"].node.shape == (1, 3)
    with pytest.raises(ValueError, match="fc"):  # the Dense after the Flatten: Keras' own check
        trace(model, (1, 20, 20, 3))


# -- random functional models against their gradients ----------------------------------------------------


@dataclass
class Step:
    """One layer of a random model (``side``: a 1×1 convolution of its input beside it, cropped to its
    output and added or concatenated)."""

    kind: str
    args: dict[str, Any]
    side: str | None = None
    crop: tuple[int, ...] = field(default=())


def _layer(step: Step, n: int, name: str, linear: bool) -> Any:
    a, kind = step.args, step.kind
    common: dict[str, Any] = {"name": name, "dtype": "float64"}
    conv = {"strides": a.get("s", 1), "padding": a.get("p", "valid")}
    if kind == "conv":
        return getattr(L, f"Conv{n}D")(
            2, a["k"], dilation_rate=a["d"], activation=None if linear else "relu", **conv, **common
        )
    if kind == "depthwise":
        return getattr(L, f"DepthwiseConv{n}D")(a["k"], dilation_rate=a["d"], **conv, **common)
    if kind == "separable":
        return getattr(L, f"SeparableConv{n}D")(2, a["k"], dilation_rate=a["d"], **conv, **common)
    if kind == "tconv":
        return getattr(L, f"Conv{n}DTranspose")(2, a["k"], output_padding=a["op"], **conv, **common)
    if kind in ("max_pool", "avg_pool"):
        pool = "Average" if kind == "avg_pool" or linear else "Max"
        return getattr(L, f"{pool}Pooling{n}D")(a["k"], **conv, **common)
    if kind == "upsample":
        if n == 1:
            return L.UpSampling1D(a["f"], **common)
        return L.UpSampling2D(a["f"], interpolation=a["mode"], **common)
    if kind in ("pad", "crop"):
        cls = "ZeroPadding" if kind == "pad" else "Cropping"
        return getattr(L, f"{cls}{n}D")(a["pairs"][0] if n == 1 else a["pairs"], **common)
    if kind == "dense":
        return L.Dense(3, activation=None if linear else "tanh", **common)
    raise AssertionError(kind)


def _build(steps: Sequence[Step], n: int, size: int | None, *, linear: bool, limit: int = 24) -> tuple[Any, list[Step]]:
    """The model of the steps Keras accepts at ``size`` (``None``: any size; every step is kept) and
    those steps. The linear copy: positive kernels, zero biases, no activations, average pools."""
    inp = keras.Input((size,) * n + (2,), batch_size=1, dtype="float64", name="x")
    x, kept = inp, []
    for step in steps:
        try:
            i = len(kept)
            layer = _layer(step, n, f"s{i}", linear)
            y = layer(x)
            if size is not None and step.kind == "tconv":
                # Keras gives 'same' with an output_padding sizes tensorflow's kernel refuses to compute
                layer(np.zeros(tuple(x.shape)))
            spatial = y.shape[1:-1]
            if size is not None and not all(1 <= s <= limit for s in spatial):
                continue
            if step.side is not None:
                if size is not None:
                    step.crop = tuple(a - b for a, b in zip(x.shape[1:-1], spatial, strict=True))
                if min(step.crop) < 0:
                    step.side = None
                else:
                    z = getattr(L, f"Conv{n}D")(2, 1, name=f"s{i}_side", dtype="float64")(x)
                    if max(step.crop):
                        pairs = tuple((0, c) for c in step.crop)
                        z = getattr(L, f"Cropping{n}D")(pairs[0] if n == 1 else pairs, name=f"s{i}_crop")(z)
                    merge = L.Add if step.side == "add" else L.Concatenate
                    y = merge(name=f"s{i}_merge", dtype="float64")([y, z])
        except Exception:  # Keras' refusal (ValueError) or the backend's
            if size is None:
                raise
            continue
        x = y
        kept.append(step)
    model = keras.Model(inp, x)
    if linear:
        rng = np.random.default_rng(0)
        for layer in model.layers:
            weights = layer.get_weights()
            if weights:
                layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if w.ndim > 1 else 0 * w for w in weights])
    return model, kept


@st.composite
def _steps(draw: st.DrawFn, n: int) -> list[Step]:
    kinds = ["conv", "conv", "depthwise", "separable", "tconv", "max_pool", "avg_pool"]
    kinds += ["upsample", "pad", "crop", "dense"]
    out = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(kinds))
        k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        padding = draw(st.sampled_from(["valid", "same"] + (["causal"] if n == 1 and kind == "conv" else [])))
        d = draw(st.integers(1, 2)) if s == 1 else 1  # Keras refuses a stride with a dilation
        args: dict[str, Any] = {"k": k, "s": s, "p": padding, "d": d}
        if kind == "tconv":
            args["op"] = draw(st.one_of(st.none(), st.integers(0, s - 1)))
        elif kind in ("max_pool", "avg_pool"):
            args = {"k": draw(st.integers(1, 3)), "s": s, "p": padding}
        elif kind == "upsample":
            args = {"f": draw(st.integers(2, 3)), "mode": draw(st.sampled_from(["nearest", "bilinear"]))}
        elif kind in ("pad", "crop"):
            most = 2 if kind == "pad" else 1
            args = {"pairs": tuple((draw(st.integers(0, most)), draw(st.integers(0, most))) for _ in range(n))}
        side = draw(st.sampled_from([None, None, "add", "cat"])) if kind in ("conv", "max_pool", "avg_pool") else None
        out.append(Step(kind, args, side))
    return out


def field_by_gradient(model: Any, shape: Sequence[int], cell: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The input cells, per spatial axis, whose gradient of one output cell (summed over channels) is not 0."""
    tf = _tf()
    x = tf.ones(tuple(shape), dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        target = tf.reduce_sum(y[(0, *cell)])
    support = tape.gradient(target, x).numpy() != 0
    out = []
    for axis in range(1, support.ndim - 1):
        others = tuple(d for d in range(support.ndim) if d != axis)
        out.append(tuple(int(i) for i in np.nonzero(support.any(axis=others))[0]))
    return tuple(out)


def _channels_first(shape: Sequence[int | None]) -> tuple[int | None, ...]:
    return (shape[0], shape[-1], *shape[1:-1])


@examples(80)
@given(st.data())
def test_every_field_is_the_support_of_an_input_gradient(data: st.DataObject) -> None:
    n = data.draw(st.sampled_from([1, 2]), "ndim")
    size = data.draw(st.integers(4, 14), "size")
    steps = data.draw(_steps(n), "steps")
    linear, kept = _build(steps, n, size, linear=True)
    # the model analysed is built for any size (the trace evaluates it at this one), the linear copy at it
    model, _ = _build(kept, n, None, linear=False)
    shape = (1,) + (size,) * n + (2,)
    report = analyze(model, shape)
    names = [layer.name for layer in linear.layers]
    for node in report.graph.nodes:
        if node.name in names:  # every node named after a layer has the layer's own shape
            assert node.shape == _channels_first(linear.get_layer(node.name).output.shape), node.name
    chosen = data.draw(st.sampled_from(names[1:] or names), "node")
    cell = tuple(data.draw(st.integers(0, s - 1)) for s in report[chosen].node.shape[2:])
    probe = keras.Model(linear.inputs, linear.get_layer(chosen).output)
    got, want = report.field(chosen, cell), field_by_gradient(probe, shape, cell)
    assert got == want


def test_a_flatten_is_read_in_keras_order() -> None:
    """Flatten of a channels-last tensor, reshaped back and convolved: the fields go through."""
    inp = keras.Input((9, 8, 2), dtype="float64")
    x = L.Conv2D(3, 3, strides=2, dtype="float64", name="a")(inp)
    x = L.Flatten(name="flat")(x)
    x = L.Reshape((4, 3, 3), name="back")(x)
    x = L.Dense(2, dtype="float64", name="mix")(x)
    x = L.Concatenate(name="cat")([x, x])
    y = L.Conv2D(2, 2, dtype="float64", name="b")(x)
    model = keras.Model(inp, y)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([np.ones(w.shape) if w.ndim > 1 else np.zeros(w.shape) for w in layer.get_weights()])
    report = analyze(model, (1, 9, 8, 2))
    assert [n.op for n in report.graph.nodes][:5] == ["input", "layer", "permute", "reshape", "reshape"]
    assert report["mix"].node.params["dim"] == 3 and report["cat"].node.params["dim"] == 3
    for cell in [(0, 0), (2, 1), (1, 0)]:
        assert report.field("b", cell) == field_by_gradient(model, (1, 9, 8, 2), cell)


# -- files, names, layouts, mismatches ----------------------------------------------------------------------


def _small(data_format: str = "channels_last") -> Any:
    first = data_format == "channels_first"
    inp = keras.Input((3, None, None) if first else (None, None, 3), name="image")
    kw = {"data_format": data_format}
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="a", **kw)(inp)
    x = L.MaxPooling2D(2, name="b", **kw)(x)
    x = L.UpSampling2D(2, interpolation="bilinear", name="c", **kw)(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="d", **kw)(x)
    x = L.Cropping2D(((0, 1), (1, 1)), name="e", **kw)(x)
    x = L.Conv2DTranspose(3, 3, strides=2, name="f", **kw)(x)
    x = L.BatchNormalization(axis=1 if first else -1, name="g")(x)
    x = L.Concatenate(axis=1 if first else -1, name="h")([x, L.DepthwiseConv2D(3, padding="same", name="i", **kw)(x)])
    x = L.SeparableConv2D(2, 3, dilation_rate=2, name="j", **kw)(x)
    return keras.Model(inp, L.GlobalAveragePooling2D(keepdims=True, name="k", **kw)(x))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' own saving
def test_a_keras_file_reads_as_its_model(tmp_path: Path) -> None:
    model = _small()
    path = tmp_path / "small.keras"
    model.save(path)
    shape = (1, 21, 17, 3)
    assert _graph(analyze(str(path), shape)) == _graph(analyze(model, shape))
    assert _graph(analyze(path, (1, 30, 30, 3))) == _graph(analyze(model, (1, 30, 30, 3)))


def test_channels_first_models_read_as_their_channels_last_twins() -> None:
    last = analyze(_small("channels_last"), (1, 21, 17, 3))
    first = analyze(_small("channels_first"), (1, 3, 21, 17))
    assert _graph(first) == _graph(last)
    assert first.graph["image"].params["layout"] == (0, 1, 2, 3)  # which input_shape axis each node axis is
    assert last.graph["image"].params["layout"] == (0, 3, 1, 2)
    assert [r.fields for r in first.nodes] == [r.fields for r in last.nodes]
    assert first["j"].node.shape == (1, 2, 17, 11)


def test_a_permute_to_channels_first_and_a_channels_first_flatten() -> None:
    inp = keras.Input((10, 12, 2))
    x = L.Permute((3, 1, 2), name="to_first")(inp)
    x = L.Conv2D(3, 3, strides=2, data_format="channels_first", name="a")(x)
    x = L.Flatten(data_format="channels_first", name="flat")(x)
    x = L.Reshape((4, 5, 3), name="back")(x)  # Keras flattened it channels last
    y = L.Conv2D(2, 3, name="b")(x)
    twin_in = keras.Input((10, 12, 2))
    twin = keras.Model(twin_in, L.Conv2D(2, 3, name="b")(L.Conv2D(3, 3, strides=2, name="a")(twin_in)))
    got, want = analyze(keras.Model(inp, y), (1, 10, 12, 2)), analyze(twin, (1, 10, 12, 2))
    assert got["b"].fields == want["b"].fields
    assert got.field("b", (1, 2)) == want.field("b", (1, 2))
    assert got.graph["to_first"].params["order"] == (0, 1, 2, 3)  # already channels first in convarith's layout


def test_a_mismatched_merge_is_recorded_and_the_trace_goes_on() -> None:
    inp = keras.Input((None, None, 3))
    x = L.Conv2D(3, 3, strides=2, padding="same", name="down")(inp)
    x = L.UpSampling2D(2, name="up")(x)
    y = L.Conv2D(2, 1, name="head")(L.Add(name="skip")([x, inp]))
    model = keras.Model(inp, y)
    odd = analyze(model, (1, 9, 7, 3))
    assert odd.graph["skip"].mismatch == ((1, 3, 10, 8), (1, 3, 9, 7))
    assert odd["head"].node.shape == (1, 2, 9, 7)
    assert "skip-mismatch" in [f.code for f in odd.findings]
    even = analyze(model, (1, 10, 8, 3))
    assert even.graph["skip"].mismatch is None and "skip-mismatch" not in [f.code for f in even.findings]


def test_nested_models_shared_layers_and_ops() -> None:
    block_in = keras.Input((None, None, 4))
    block = keras.Model(block_in, L.Conv2D(4, 3, padding="same", name="conv")(block_in), name="block")
    shared = L.Conv2D(4, 1, name="shared")
    inp = keras.Input((None, None, 4), name="x")
    y = block(shared(inp))
    y = shared(keras.ops.relu(y) + 1.0)
    y = L.Lambda(lambda t: t * 2, name="double")(y)
    report = analyze(keras.Model(inp, y), (1, 8, 8, 4))
    names = [n.name for n in report.graph.nodes]  # keras.ops are named by Keras, once per process
    assert [names[k] for k in (0, 1, 2, 5, 6)] == ["x", "shared", "block/conv", "shared_2", "double"]
    ops = ["input", "layer", "layer", "elementwise", "elementwise", "layer", "unknown"]
    assert [n.op for n in report.graph.nodes] == ops
    assert [n.parameters for n in report.graph.nodes] == [0, 20, 148, 0, 0, 0, 0]
    assert report["shared_2"].fields[0].sizes == (3,)
    assert isinstance(report["double"].fields[0], Lost) and report.outputs == ("double",)


def test_a_softmax_over_channels_is_cell_by_cell_and_over_positions_a_reduction() -> None:
    inp = keras.Input((6, 5, 8))
    x = L.Activation("softmax", name="channels")(inp)
    x = L.Softmax(axis=1, name="rows")(x)
    y = L.Conv2D(2, 3, activation="softmax", data_format="channels_first", name="cf")(x)  # over its last axis
    report = analyze(keras.Model(inp, y), (1, 6, 5, 8))
    assert [(n.name, n.op) for n in report.graph.nodes][1:] == [
        ("channels", "elementwise"), ("rows", "reduce"), ("cf.permute", "permute"), ("cf", "layer"),
        ("cf.activation", "reduce"),
    ]  # fmt: skip
    assert report["rows"].node.params["dims"] == (2,) and report["cf.activation"].node.params["dims"] == (3,)
    assert report["rows"].fields[0].step == 0 and report["rows"].fields[1] == report["channels"].fields[1]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConvArithError, match=r"keras\.applications"):
        trace("keras.applications.NoSuchNet", (1, 32, 32, 3))
    with pytest.raises(ConvArithError, match="options"):
        trace(_small(), (1, 16, 16, 3), include_top=False)
    with pytest.raises(ConvArithError, match="rank"):
        trace(_small(), (1, 16, 16))
    a, b = keras.Input((8, 3)), keras.Input((8, 3))
    with pytest.raises(ConvArithError, match="one input"):
        trace(keras.Model([a, b], L.Add()([a, b])), (1, 8, 3))

    class Sub(keras.Model):  # type: ignore[misc]
        def call(self, x: Any) -> Any:
            return x

    with pytest.raises(ConvArithError, match="subclassed"):
        trace(Sub(), (1, 8, 3))
