"""Model analysis of ONNX models: a PyTorch model exported to ONNX gives the same table as the model
itself (fields, coverage, findings, accepted sizes), every exact field of an exported random model
is the support of the PyTorch model's input gradient, and ``Resize`` fields are what onnxruntime
computes — with the places where onnxruntime and the ONNX reference evaluator disagree pinned down.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from convarith import ConvArithError  # noqa: E402
from convarith.analysis import Analysis, analyze  # noqa: E402
from convarith.analysis.axes import Periodic  # noqa: E402
from convarith.analysis.sizes import accepted_sizes  # noqa: E402
from convarith.frameworks.trace_onnx import trace  # noqa: E402
from strategies import examples  # noqa: E402

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


# -- exporting ---------------------------------------------------------------------------------------


def export(model: Any, shape: Sequence[int], path: Path, *, dynamic: bool = False) -> Path:
    """``model`` exported by PyTorch's TorchScript exporter (opset 17); ``dynamic``: every spatial axis
    of the input dynamic, so that the file takes other sizes."""
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    x = torch.zeros(tuple(shape), dtype=dtype)
    axes = {"x": {d: f"s{d}" for d in range(2, len(shape))}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"], output_names=["y"],
            dynamic_axes=axes,
        )  # fmt: skip
    return path


def _field(state: object) -> object:
    """A field in comparable terms: per-phase intervals, the step and the rate (or "unknown")."""
    if isinstance(state, Periodic):
        return (state.phases, state.step, state.period, state.sizes, state.rate)
    return "unknown"


def _layers(report: Analysis) -> list[Any]:
    """Convolutions and pools, adaptive ones too (PyTorch's exporter writes an adaptive average pool
    whose output divides its input as an ``AveragePool``; to one cell, both give a mean)."""
    return [r for r in report.nodes if r.node.op in ("layer", "adaptive_pool")]


def assert_same_table(mine: Analysis, theirs: Analysis) -> None:
    """The ONNX analysis (``mine``) says what the PyTorch one (``theirs``) says: output shapes, fields
    at the outputs and at every convolution or pool (matched in order), coverage, finding codes."""
    assert [mine[o].node.shape for o in mine.outputs] == [theirs[o].node.shape for o in theirs.outputs]
    for a, b in zip(mine.outputs, theirs.outputs, strict=True):
        assert [_field(s) for s in mine[a].fields] == [_field(s) for s in theirs[b].fields], (a, b)
        assert mine[a].overlap == theirs[b].overlap
    layers, others = _layers(mine), _layers(theirs)
    assert len(layers) == len(others)
    for a, b in zip(layers, others, strict=True):
        if a.bound is not None and b.bound is not None:
            assert (a.bound.kind, a.bound.pads, a.bound.layer.kernel_size, a.bound.layer.stride) == (
                b.bound.kind, b.bound.pads, b.bound.layer.kernel_size, b.bound.layer.stride,
            )  # fmt: skip
        assert (a.node.shape, a.multiply_adds) == (b.node.shape, b.multiply_adds), (a.name, b.name)
        assert [_field(s) for s in a.fields] == [_field(s) for s in b.fields], (a.name, b.name)
    assert mine.coverage == theirs.coverage
    assert sorted(f.code for f in mine.findings) == sorted(f.code for f in theirs.findings)


# -- the models -----------------------------------------------------------------------------------------

if torch is not None:

    class ResBlock(nn.Module):
        """A ResNet basic block that halves the size: 3×3 stride-2 convolution, batch norms, a
        stride-2 1×1 shortcut, the residual add."""

        def __init__(self, cin: int = 3, cout: int = 8) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.down(x))

    class Upsampler(nn.Module):
        """``nn.Upsample`` nearest and bilinear, ``F.interpolate`` to a size with corners aligned, bicubic."""

        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(2, 4, 3, padding=1)
            self.near = nn.Upsample(scale_factor=2, mode="nearest")
            self.c2 = nn.Conv2d(4, 4, 3, stride=2)
            self.bil = nn.Upsample(scale_factor=2, mode="bilinear")
            self.c3 = nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c2(self.near(self.c1(x)))
            y = self.bil(y)
            y = F.interpolate(y, size=(y.shape[2] + 3, y.shape[3] + 1), mode="bilinear", align_corners=True)
            y = F.interpolate(y, scale_factor=3, mode="bicubic")
            return self.c3(y)

    class Pads(nn.Module):
        """``F.pad`` reflect, replicate, circular (exported as slices and concatenations), a crop."""

        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(1, 2, 3)
            self.c2 = nn.Conv2d(2, 2, 3, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.pad(self.c1(x), (2, 1, 0, 3), mode="reflect")
            y = F.pad(y, (1, 1, 2, 0), mode="replicate")
            y = F.pad(self.c2(y), (1, 2, 2, 1), mode="circular")
            return F.pad(y, (-1, 2, 0, -2))

    class Shuffles(nn.Module):
        """Pixel shuffle (``DepthToSpace``) and unshuffle (exported as reshape, transpose, reshape)."""

        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(1, 8, 3, padding=1)
            self.c2 = nn.Conv2d(2, 2, 3, stride=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.pixel_shuffle(self.c1(x), 2)
            return F.pixel_unshuffle(self.c2(y), 2)

    class Classifier(nn.Module):
        """Convolutions, an adaptive average pool to 4×4 (an ``AveragePool``), flatten, a linear head."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.pool = nn.AdaptiveAvgPool2d(4)
            self.head = nn.Linear(4 * 16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.head(torch.flatten(self.pool(self.features(x)), 1)), 1)

    class Pieces(nn.Module):
        """Strided slices, a chunk, a selected row, a softmax and a mean over positions, a global pool."""

        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            y = self.c(x)[:, :, 1::2, ::3]
            a, b = torch.chunk(y, 2, dim=1)
            row = torch.softmax(a[:, :, 1], dim=-1)
            return row, b.mean((2,)), F.adaptive_avg_pool2d(y, 1)

    class CeilPools(nn.Module):
        """``ceil_mode`` pools whose last window would start past the input and its padding (dropped)."""

        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.max_pool2d(self.c(x), 2, 2, 1, ceil_mode=True)
            return F.avg_pool2d(y, 1, 2, ceil_mode=True)


def _cases() -> list[tuple[str, Callable[[], Any], tuple[int, ...]]]:
    from models_torch import AudioEncoder, DCGANGenerator, UNet

    return [
        ("unet", lambda: UNet(depth=2, width=2), (1, 1, 60, 60)),
        ("unet-unread", lambda: UNet(depth=2, width=2), (1, 1, 63, 61)),
        ("unet3", lambda: UNet(depth=3, width=2), (1, 1, 140, 140)),
        ("dcgan", lambda: DCGANGenerator(latent=4, width=2), (1, 4, 1, 1)),
        ("audio", lambda: AudioEncoder(width=4), (1, 1, 400)),
        ("resblock", lambda: ResBlock(), (1, 3, 15, 16)),
        ("upsample", lambda: Upsampler(), (1, 2, 9, 7)),
        ("pads", lambda: Pads(), (1, 1, 12, 11)),
        ("shuffles", lambda: Shuffles(), (1, 1, 6, 8)),
        ("classifier", lambda: Classifier(), (1, 3, 16, 16)),
        ("pieces", lambda: Pieces(), (1, 2, 12, 14)),
        ("ceil-pools", lambda: CeilPools(), (1, 1, 7, 9)),
    ]


@needs_torch
@pytest.mark.parametrize("case", range(12), ids=lambda k: _cases()[k][0] if torch is not None else str(k))
def test_the_same_model_exported_to_onnx_gives_the_same_table(case: int, tmp_path: Path) -> None:
    _, make, shape = _cases()[case]
    torch.manual_seed(0)
    model = make().eval()
    path = export(model, shape, tmp_path / "model.onnx")
    assert_same_table(analyze(path, shape), analyze(model, shape))


@needs_torch
def test_an_exported_unet_accepts_the_sizes_the_model_accepts(tmp_path: Path) -> None:
    from models_torch import UNet

    model = UNet(depth=2, width=2).eval()
    path = export(model, (1, 1, 60, 60), tmp_path / "unet.onnx", dynamic=True)
    sizes = range(36, 78)
    mine, theirs = accepted_sizes(path, (1, 1, 60, 60), sizes), accepted_sizes(model, (1, 1, 60, 60), sizes)
    assert mine.accepted == theirs.accepted == tuple(range(44, 78, 4))
    assert mine.rule == theirs.rule == "multiples of 4 from 44"
    for a, b in zip(mine.checks, theirs.checks, strict=True):
        assert len(a.reasons) == len(b.reasons), (a, b)
        assert a.reasons[0].startswith("refused") == b.reasons[0].startswith("refused") if a.reasons else True
    # one axis at a time: the height varies, the width stays
    mine = accepted_sizes(path, (1, 1, 60, 64), range(56, 66), axis=0)
    assert mine.accepted == accepted_sizes(model, (1, 1, 60, 64), range(56, 66), axis=0).accepted == (56, 60, 64)


def _exportable(chosen: Sequence[Any], size: int) -> bool:
    """Whether PyTorch's TorchScript exporter takes these steps: not ``nearest-exact`` (no opset-17
    symbolic), and adaptive pools only to a divisor of their input's size."""
    from models_torch import _size_after

    for step in chosen:
        if step.kind == "upsample" and step.args["mode"] == "nearest-exact":
            return False
        if step.kind == "adaptive" and size % step.args["out"]:
            return False
        after = _size_after(step, size)
        assert after is not None
        size = after
    return True


@needs_torch
@examples(60)
@given(data=st.data())
def test_every_field_of_an_exported_model_is_the_support_of_an_input_gradient(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from models_torch import build, field_by_gradient, steps

    ndim = data.draw(st.sampled_from([1, 2]))
    chosen, size = data.draw(steps(ndim, max_steps=4))
    assume(chosen and _exportable(chosen, size))
    shape = (1, 2) + (size,) * ndim
    try:
        path = export(build(chosen, ndim), shape, tmp_path_factory.mktemp("random") / "model.onnx")
    except torch.onnx.errors.SymbolicValueError:  # PyTorch's exporter lost a size it needs (an adaptive
        assume(False)  # pool after an operation whose output it types without sizes): nothing to analyse
    report = analyze(path, shape)
    out = report.outputs[0]
    cell = tuple(data.draw(st.integers(0, n - 1)) for n in report[out].node.shape[2:])
    assert report.field(out, cell) == field_by_gradient(build(chosen, ndim, linear=True), shape, cell)


# -- Resize, by hand, against onnxruntime ------------------------------------------------------------------

MODES = [("nearest", n) for n in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")]
MODES += [("linear", "floor"), ("cubic", "floor")]
COORDINATES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]


def resize_model(
    mode: str, coordinate: str, nearest: str, *, scale: float | None = None, size: int | None = None
) -> Any:
    """A one-node ``Resize`` of the last axis of an ``(N, 1, 1, W)`` input, by a scale or to a size:
    opset 19 with ``axes=[3]``; opset 13 (and every axis) for ``tf_half_pixel_for_nn``, which opset
    13 deprecated."""
    legacy = coordinate == "tf_half_pixel_for_nn"
    lead = [1, 1, 1] if legacy else []
    if scale is not None:
        inputs, init = ["x", "", "scales"], numpy_helper.from_array(np.array([*lead, scale], np.float32), "scales")
    else:
        inputs, init = ["x", "", "", "sizes"], numpy_helper.from_array(np.array([*lead, size], np.int64), "sizes")
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": coordinate, "nearest_mode": nearest}
    if not legacy:
        attrs["axes"] = [3]
    node = helper.make_node("Resize", inputs, ["y"], name="resize", **attrs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 1, "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "resize", [x], [y], [init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13 if legacy else 19)])


def supports(run: Callable[[np.ndarray], np.ndarray], n: int) -> list[tuple[int, ...]]:
    """Per output cell, the input cells whose one-hot input changes it (the runtime's own field)."""
    out = run(np.eye(n, dtype=np.float32).reshape(n, 1, 1, n))[:, 0, 0, :]
    return [tuple(int(i) for i in np.nonzero(out[:, o])[0]) for o in range(out.shape[1])]


def _batched(model: Any, n: int) -> bytes:
    """The model, serialised, with a batch of ``n`` one-hot inputs where it resizes every axis to sizes."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        sizes = numpy_helper.to_array(init)
        if init.name == "sizes" and sizes.size == 4:
            init.CopyFrom(numpy_helper.from_array(np.array([n, *sizes[1:]], np.int64), "sizes"))
    return out.SerializeToString()


_RUNNERS: dict[tuple[str, bytes], Any] = {}


def _runner(which: str, model: bytes) -> Any:
    if (which, model) not in _RUNNERS:
        if which == "onnxruntime":
            options = ort.SessionOptions()
            options.log_severity_level = 3
            _RUNNERS[which, model] = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        else:
            _RUNNERS[which, model] = ReferenceEvaluator(onnx.ModelProto.FromString(model))
    return _RUNNERS[which, model]


def on_onnxruntime(model: Any, n: int) -> list[tuple[int, ...]]:
    session = _runner("onnxruntime", _batched(model, n))
    return supports(lambda x: session.run(None, {"x": x})[0], n)


def on_reference(model: Any, n: int) -> list[tuple[int, ...]] | None:
    try:
        evaluator = _runner("reference", _batched(model, n))
        return supports(lambda x: evaluator.run(None, {"x": x})[0], n)
    except ValueError:  # tf_half_pixel_for_nn: not in the reference evaluator any more
        return None


def fields(model: Any, n: int) -> list[tuple[int, ...]] | None:
    report = analyze(model, (1, 1, 1, n))
    out = report.outputs[0]
    if report.unknown_from is not None:
        return None
    return [report.field(out, (0, o))[1] for o in range(report[out].node.shape[3])]  # type: ignore[index]


SPECS = [("scale", s) for s in (2.0, 3.0, 1.5, 0.5, 1 / 3, 0.75, 0.6)] + [("size", s) for s in (1, 3, 8)]


@pytest.mark.parametrize("coordinate", COORDINATES)
def test_resize_fields_are_what_onnxruntime_reads(coordinate: str) -> None:
    """Every output cell's exact field is the set of input cells onnxruntime's output depends on,
    wherever onnxruntime and the reference evaluator agree (their disagreements: the next tests)."""
    compared = 0
    for (mode, nearest), n, (kind, value) in itertools.product(MODES, (2, 7), SPECS):
        model = resize_model(mode, coordinate, nearest, **{kind: value})
        runtime = on_onnxruntime(model, n)
        reference = on_reference(model, n)
        if reference is not None and reference != runtime:
            continue
        if len(runtime) != math.floor(n * np.float64(np.float32(value))) and kind == "scale":
            continue  # onnxruntime's float32 output size (test_onnxruntime_sizes_and_samples_in_float32)
        if kind == "scale" and len(runtime) == n and value != 1:
            continue  # onnxruntime copies when the size does not change (test_onnxruntime_copies_…)
        assert fields(model, n) == runtime, (mode, coordinate, nearest, n, kind, value)
        compared += 1
    assert compared > 0.6 * len(MODES) * 2 * len(SPECS)


def test_resize_of_two_axes_by_sizes() -> None:
    """Both axes resized (to 7×3 from 4×5): the field of every output cell, per axis, is the set of
    rows and columns whose one-hot input changes it on onnxruntime."""
    sizes = numpy_helper.from_array(np.array([1, 1, 7, 3], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", mode="linear")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "r", [x], [y], [sizes]))
    g = trace(model, (1, 1, 4, 5))
    assert g["resize"].op == "resize" and g["resize"].params["dims"] == (2, 3)
    report = analyze(model, (1, 1, 4, 5))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    hot = [np.eye(20, dtype=np.float32)[k].reshape(1, 1, 4, 5) for k in range(20)]
    outs = [session.run(None, {"x": h})[0][0, 0] for h in hot]
    for o in itertools.product(range(7), range(3)):
        read = {divmod(k, 5) for k in range(20) if outs[k][o] != 0}
        rows, cols = report.field("resize", o)  # type: ignore[misc]
        assert read == set(itertools.product(rows, cols)), o


def test_half_pixel_symmetric_is_half_pixel_where_the_scale_makes_the_size_and_unknown_elsewhere() -> None:
    exact = resize_model("linear", "half_pixel_symmetric", "floor", scale=1.5)
    assert fields(exact, 4) == on_onnxruntime(exact, 4) == on_reference(exact, 4)
    fractional = resize_model("linear", "half_pixel_symmetric", "floor", scale=1.5)
    assert fields(fractional, 5) is None
    assert "half_pixel_symmetric" in analyze(fractional, (1, 1, 1, 5)).findings[0].message


# onnxruntime and the reference evaluator (onnx 1.23) disagree: each case a minimal reproducer, with
# the side the analysis takes. If one of these fails, a runtime changed: look again.


def test_onnxruntime_copies_when_the_size_does_not_change() -> None:
    """A scale of 1.25 on 2 cells gives 2 cells: onnxruntime copies the input, the reference
    evaluator (and the specification) sample at (o + ½)/1.25 − ½, so cell 1 reads cell 0. The
    analysis follows the specification."""
    model = resize_model("nearest", "half_pixel", "floor", scale=1.25)
    assert on_onnxruntime(model, 2) == [(0,), (1,)]
    assert on_reference(model, 2) == fields(model, 2) == [(0,), (0,)]


def test_onnxruntime_sizes_and_samples_in_float32() -> None:
    """onnxruntime multiplies and divides in float32: 10 × 0.7f is 7 cells there but ⌊6.99999988⌋ = 6
    by ONNX shape inference and the reference evaluator; and 1 / 0.4f is 2.5 in float32, a tie that
    ``round_prefer_ceil`` takes up to cell 3, where the reference evaluator's float64 2.49999996 goes
    to 2. The analysis takes ONNX's sizes, and reads a float32 scale as the fraction it stands for
    (0.4 = 2/5), as onnxruntime's rounding does."""
    model = resize_model("nearest", "asymmetric", "floor", scale=0.7)
    assert len(on_onnxruntime(model, 10)) == 7
    assert len(on_reference(model, 10) or []) == len(fields(model, 10) or []) == 6
    model = resize_model("nearest", "asymmetric", "round_prefer_ceil", scale=0.4)
    assert on_onnxruntime(model, 5) == fields(model, 5) == [(0,), (3,)]
    assert on_reference(model, 5) == [(0,), (2,)]


def test_reference_align_corners_uses_the_unfloored_size() -> None:
    """``align_corners`` with a scale: the specification's ``length_resized`` is the output's size
    (onnxruntime: x = o·(5 − 1)/(2 − 1)); the reference evaluator divides by the unfloored
    ``5 × 0.5 − 1 = 1.5``. ``pytorch_half_pixel`` likewise tests the unfloored size for 1, and
    then samples at −½ where the specification says 0."""
    model = resize_model("nearest", "align_corners", "floor", scale=0.5)
    assert on_onnxruntime(model, 5) == fields(model, 5) == [(0,), (4,)]
    assert on_reference(model, 5) == [(0,), (2,)]
    model = resize_model("cubic", "pytorch_half_pixel", "floor", size=1)
    assert on_onnxruntime(model, 3) == fields(model, 3) == [(0,)]
    assert on_reference(model, 3) == [(0, 1)]


def test_onnx_shape_inference_keeps_a_ceil_mode_window_the_runtimes_drop() -> None:
    """``MaxPool`` k=1, s=2, ``ceil_mode=1`` on 4 cells: ONNX shape inference (onnx 1.23) says 3 cells,
    onnxruntime and the reference evaluator compute 2 (the last window would start past the input, as
    PyTorch drops it). The trace takes the runtimes' size."""
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[1], strides=[2], ceil_mode=1)
    model = _model([node], [_x(1, 1, 4)], opset=19)
    inferred = onnx.shape_inference.infer_shapes(model).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in inferred] == [1, 1, 3]
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 4)
    assert on_onnxruntime_raw(model, x).shape == ReferenceEvaluator(model).run(None, {"x": x})[0].shape == (1, 1, 2)
    assert trace(model, (1, 1, 4))["pool"].shape == (1, 1, 2)


def on_onnxruntime_raw(model: Any, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


# -- the tracer itself ---------------------------------------------------------------------------------------


def _model(nodes: list[Any], inputs: list[Any], inits: Sequence[Any] = (), opset: int = 17) -> Any:
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [y], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(*dims: int | str) -> Any:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def _weight(name: str, *shape: int) -> Any:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_a_mismatched_merge_is_recorded_and_the_trace_goes_on() -> None:
    """Whole-model shape inference refuses ``Add`` of 8×8 and 6×6; the trace crops to 6×6 and says who."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="valid"),
        helper.make_node("Add", ["x", "c"], ["s"], name="skip"),
        helper.make_node("Relu", ["s"], ["y"], name="relu"),
    ]
    model = _model(nodes, [_x(1, 1, "H", "W")], [_weight("w", 1, 1, 3, 3)])
    g = trace(model, (1, 1, 8, 8))
    assert g["skip"].shape == (1, 1, 6, 6) and g["skip"].mismatch == ((1, 1, 8, 8), (1, 1, 6, 6))
    report = analyze(model, (1, 1, 8, 8))
    (blamed,) = [f for f in report.findings if f.code == "skip-mismatch"]
    assert "valid" in blamed.message


def test_computed_crops_and_shapes_are_evaluated_from_shapes_not_data() -> None:
    """A centre crop computed from ``Shape`` (Gather, Sub, Div, Unsqueeze, Slice) and a ``Reshape``
    to a computed shape: constants of the input's size, evaluated at each size."""
    ints = lambda name, *v: numpy_helper.from_array(np.array(v, np.int64), name)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "two"], ["h"], axis=0),
        helper.make_node("Sub", ["h", "four"], ["h4"]),
        helper.make_node("Div", ["h4", "two"], ["start"]),
        helper.make_node("Add", ["start", "four"], ["end"]),
        helper.make_node("Unsqueeze", ["start", "zero"], ["starts"]),
        helper.make_node("Unsqueeze", ["end", "zero"], ["ends"]),
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["crop"], name="crop"),
        helper.make_node("Concat", ["batch", "minus"], ["flat"], axis=0),
        helper.make_node("Reshape", ["crop", "flat"], ["y"], name="flatten"),
    ]
    inits = [ints("two", 2), ints("four", 4), ints("zero", 0), ints("axes", 2), ints("batch", 1), ints("minus", -1)]
    inits[0] = numpy_helper.from_array(np.array(2, np.int64), "two")
    inits[1] = numpy_helper.from_array(np.array(4, np.int64), "four")
    model = _model(nodes, [_x(1, 3, "H", 5)], inits)
    for h in (9, 12):
        g = trace(model, (1, 3, h, 5))
        crop = g["crop"]
        assert (crop.op, crop.params["dim"], crop.params["start"], crop.params["stop"]) == (
            "slice",
            2,
            (h - 4) // 2,
            (h - 4) // 2 + 4,
        )
        assert g["flatten"].shape == (1, 3 * 4 * 5)
    assert analyze(model, (1, 3, 9, 5)).coverage == ((0, 1, 6, 7, 8), ())


def test_the_operations_map_to_the_graphs_terms() -> None:
    ints = lambda name, *v: numpy_helper.from_array(np.array(v, np.int64), name)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("DepthToSpace", ["c"], ["d"], name="d2s", blocksize=2, mode="DCR"),
        helper.make_node("SpaceToDepth", ["d"], ["s"], name="s2d", blocksize=2),
        helper.make_node("Pad", ["s", "pads"], ["p"], name="pad", mode="edge"),
        helper.make_node("Gather", ["p", "one"], ["g"], name="row", axis=2),
        helper.make_node("Softmax", ["g"], ["sm"], name="softmax", axis=-1),
        helper.make_node("ReduceMean", ["sm"], ["m"], name="mean", axes=[2], keepdims=0),
        helper.make_node("Gemm", ["m", "fc", "fb"], ["y"], name="fc", transB=1),
    ]
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    inits = [_weight("w", 8, 2, 3, 3), _weight("b", 8), ints("pads", 0, 0, 1, 2, 0, 0, 1, 2), one]
    inits += [_weight("fc", 5, 8), _weight("fb", 5)]
    model = _model(nodes, [_x("N", 2, "H", "W")], inits)
    g = trace(model, (1, 2, 9, 10))
    ops = {n.name: (n.op, n.shape) for n in g.nodes}
    assert ops == {
        "x": ("input", (1, 2, 9, 10)),
        "conv": ("layer", (1, 8, 5, 5)),
        "d2s": ("pixel_shuffle", (1, 2, 10, 10)),
        "s2d": ("pixel_unshuffle", (1, 8, 5, 5)),
        "pad": ("pad", (1, 8, 7, 9)),
        "row": ("select", (1, 8, 9)),
        "softmax": ("reduce", (1, 8, 9)),
        "mean": ("reduce", (1, 8)),
        "fc": ("linear", (1, 5)),
    }
    assert [n.parameters for n in g.nodes] == [0, 8 * 2 * 9 + 8, 0, 0, 0, 0, 0, 0, 5 * 8 + 5]
    assert g["pad"].params["pads"] == ((0, 0), (0, 0), (1, 1), (2, 2)) and g["pad"].params["mode"] == "replicate"
    assert (g["row"].params["dim"], g["row"].params["index"]) == (2, 1)
    assert g.output_names == ["fc"]
    report = analyze(model, (1, 2, 9, 10))
    assert report.multiply_adds == report["conv"].multiply_adds + 5 * 8
    assert report.field("softmax", (4,)) == ((0, 1), tuple(range(10)))


def test_a_weight_used_twice_counts_once() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="a"),
        helper.make_node("Conv", ["c", "w"], ["y"], name="b"),
    ]
    g = trace(_model(nodes, [_x(1, 1, "H", "W")], [_weight("w", 1, 1, 3, 3)]), (1, 1, 8, 8))
    assert [n.parameters for n in g.nodes] == [0, 9, 0]


def test_unknown_operations_and_attention_stop_the_fields() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "t"], ["a"], name="scores"),
        helper.make_node("TopK", ["a", "k"], ["y", "i"], name="topk", axis=-1),
    ]
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    model = _model(nodes, [_x(1, 4, "L")], [k])
    g = trace(model, (1, 4, 6))
    assert g["scores"].op == "unknown" and "attention" in str(g["scores"].params["what"])
    assert g["topk"].op == "unknown" and g["topk"].params["what"] == "onnx.TopK"
    assert analyze(model, (1, 4, 6)).coverage is None


def test_channels_last_models_are_turned_round() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], name="conv", strides=[2, 2]),
    ]
    model = _model(nodes, [_x(1, "H", "W", 3)], [_weight("w", 4, 3, 3, 3)])
    report = analyze(model, (1, 11, 9, 3), channels_last=True)
    assert report.input_shape == (1, 3, 11, 9)
    assert report.field("conv", (1, 2)) == ((2, 3, 4), (4, 5, 6))


def test_bad_input_is_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("Add", ["x", "m"], ["y"])]
    mask = helper.make_tensor_value_info("m", TensorProto.FLOAT, [1, 1, "H", "W"])
    with pytest.raises(ConvArithError, match="static shape"):
        trace(_model(nodes, [_x(1, 1, "H", "W"), mask]), (1, 1, 4, 4))
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_x(1, 1, "H", "W")])
    with pytest.raises(ConvArithError, match="rank"):
        trace(model, (1, 1, 4))
    with pytest.raises(ConvArithError, match="channels_last"):
        trace(model, (1, 1, 4, 4), crop=True)
    with pytest.raises(ConvArithError, match="file"):
        trace(tmp_path / "missing.onnx", (1, 1, 4, 4))
    conv = _model([helper.make_node("Conv", ["x", "w"], ["y"])], [_x(1, 1, "H", "W")], [_weight("w", 1, 1, 5, 5)])
    with pytest.raises(ConvArithError, match="refuses"):
        trace(conv, (1, 1, 3, 3))
    path = tmp_path / "conv.onnx"
    onnx.save(conv, str(path))
    assert [n.shape for n in trace(path, (1, 1, 7, 7)).nodes] == [(1, 1, 7, 7), (1, 1, 3, 3)]
