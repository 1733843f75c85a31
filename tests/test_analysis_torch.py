"""Model analysis against PyTorch: every exact field is the support of an input gradient, the
closed-form fields hold in the interior, coverage is where no gradient reaches, the overlap of a
stack is what all-ones weights give."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convarith import ConvArithError  # noqa: E402
from convarith.analysis import analyze  # noqa: E402
from convarith.analysis.axes import Periodic  # noqa: E402
from convarith.analysis.sizes import accepted_sizes  # noqa: E402
from models_torch import (  # noqa: E402
    AudioEncoder,
    DCGANGenerator,
    Step,
    UNet,
    build,
    field_by_gradient,
    overlap_by_ones,
    steps,
)
from strategies import examples  # noqa: E402


@examples(150)
@given(st.data())
def test_every_field_is_the_support_of_an_input_gradient(data: st.DataObject) -> None:
    ndim = data.draw(st.sampled_from([1, 2]))
    chosen, size = data.draw(steps(ndim))
    assume(chosen)
    shape = (1, 2) + (size,) * ndim
    report = analyze(build(chosen, ndim), shape)
    out = report.outputs[0]
    cell = tuple(data.draw(st.integers(0, n - 1)) for n in report[out].node.shape[2:])
    assert report.field(out, cell) == field_by_gradient(build(chosen, ndim, linear=True), shape, cell)


@examples(60)
@given(st.data())
def test_coverage_is_where_no_gradient_reaches(data: st.DataObject) -> None:
    """The input cells no output reads are the cells the gradient of the sum of all outputs misses."""
    ndim = data.draw(st.sampled_from([1, 2]))
    chosen, size = data.draw(steps(ndim))
    assume(chosen)
    shape = (1, 2) + (size,) * ndim
    report = analyze(build(chosen, ndim), shape)
    x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    build(chosen, ndim, linear=True)(x).sum().backward()
    assert x.grad is not None
    read = x.grad != 0
    want = tuple(
        tuple(i for i in range(size) if not read.any(dim=tuple(d for d in range(read.dim()) if d != axis + 2))[i])
        for axis in range(ndim)
    )
    if not read.any():  # nothing reaches the output: every cell unread on every axis
        want = tuple(tuple(range(size)) for _ in range(ndim))
    assert report.coverage == want


@examples(80)
@given(steps(1, groups=(1,), branches=(None, None, "add")))
def test_overlap_is_the_output_of_all_ones(drawn: tuple[list[Step], int]) -> None:
    """Along one axis, the overlap profile is what the model computes from an all-ones input with every
    weight 1 and every bias 0 (averages and interpolations keep their weights, max pools their max)."""
    chosen, size = drawn
    assume(chosen)
    model = build(chosen, 1, channels=1)
    shape = (1, 1, size)
    report = analyze(model, shape)
    out = report.outputs[0]
    want = overlap_by_ones(model, shape)[0, 0].tolist()
    got = report.profile(out)[0]
    assert got is not None
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@examples(60)
@given(st.data())
def test_closed_form_fields_hold_away_from_the_borders(data: st.DataObject) -> None:
    """With zero padding, the closed-form field of an output cell far from the borders is exactly the
    hull of the cells it reads (and, nearer the borders, holds them)."""
    kinds = ("conv", "tconv", "max_pool", "avg_pool", "upsample")
    chosen, _ = data.draw(steps(1, kinds=kinds, zero_padding=True, branches=(None,)))
    assume(chosen)
    chosen = [s for s in chosen if s.args.get("mode", "zeros") == "zeros"]
    assume(chosen)
    small = analyze(build(chosen, 1), (1, 2, 64))
    field = small[small.outputs[0]].fields[0]
    assert isinstance(field, Periodic)
    reach = max(abs(p[0]) + abs(p[1]) for p in field.phases if p is not None) if any(field.phases) else 1
    size = min(4 * reach + 8 * field.step + 64, 4096)
    report = analyze(build(chosen, 1), (1, 2, size))
    out = report.outputs[0]
    n = report[out].node.shape[2]
    centre = n // 2
    field = report[out].fields[0]
    assert isinstance(field, Periodic)
    for cell in range(n):
        cells = report.field(out, (cell,))
        assert cells is not None
        hull = field.at(cell)
        if not cells[0]:
            continue
        assert hull is not None and hull[0] <= min(cells[0]) and max(cells[0]) <= hull[1]
    hull = field.at(centre)
    assume(hull is not None and hull[0] >= 0 and hull[1] < size)
    cells = report.field(out, (centre,))
    assert cells is not None and (min(cells[0]), max(cells[0])) == hull


def _runs(model: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(shape, dtype=torch.float64))
    except RuntimeError:
        return False
    return True


def test_skip_mismatches_are_where_pytorch_refuses_the_model() -> None:
    """An uncropped U-Net: the analysis finds a mismatched merge at exactly the sizes where running the
    model raises, names the valid convolutions that shrink one branch, and goes on to the end."""
    model = UNet(depth=2, width=1, crop=False).double()
    for size in range(8, 41):
        try:
            report = analyze(model, (1, 1, size, size))
        except ConvArithError:  # refused whole (a kernel larger than its input)
            assert not _runs(model, (1, 1, size, size))
            continue
        mismatched = [f for f in report.findings if f.code == "skip-mismatch"]
        assert bool(mismatched) == (not _runs(model, (1, 1, size, size))), size
        assert report[report.outputs[0]].node.shape[1] == 2  # the table reaches the head
    report = analyze(model, (1, 1, 36, 36))
    first = next(f for f in report.findings if f.code == "skip-mismatch")
    assert "bottom.0" in str(first.data["responsible"]) and "bottom.2" in str(first.data["responsible"])


def test_accepted_sizes_are_where_the_model_runs_and_reads_every_pixel() -> None:
    """A valid-padding U-Net accepts the sizes at which it runs and every input pixel reaches the output
    (PyTorch: the gradient of the sum of its outputs, on the linear copy, is non-zero everywhere)."""
    model = UNet(depth=2, width=1).double()
    linear = UNet(depth=2, width=1, linear=True).double()
    for p in linear.parameters():
        torch.nn.init.uniform_(p, 0.5, 1.5)
    scan = accepted_sizes(model, (1, 1, 40, 40), range(16, 80))
    want = []
    for size in range(16, 80):
        x = torch.ones((1, 1, size, size), dtype=torch.float64, requires_grad=True)
        try:
            linear(x).sum().backward()
        except RuntimeError:
            continue
        assert x.grad is not None
        if bool((x.grad != 0).all()):
            want.append(size)
    assert scan.accepted == tuple(want)
    assert scan.rule == "multiples of 4 from 44" and scan.nearest(50) == 48


def test_the_classic_unet_is_aligned_and_takes_572_plus_16k() -> None:
    """Ronneberger et al.'s U-Net at 572²: 388² out, every skip centred (no misaligned merge), and the
    sizes it accepts are 572 + 16k (without cropping, 4 merges mismatch)."""
    report = analyze(UNet(), (1, 1, 572, 572))
    assert report[report.outputs[0]].node.shape == (1, 2, 388, 388)
    assert not [f for f in report.findings if f.code in ("misaligned-merge", "skip-mismatch", "unread-model-input")]
    scan = accepted_sizes(UNet(), (1, 1, 572, 572), range(548, 610), axis=0)
    assert scan.accepted == (556, 572, 588, 604) and scan.rule == "556 + 16k"
    uncropped = analyze(UNet(crop=False), (1, 1, 572, 572))
    assert sum(f.code == "skip-mismatch" for f in uncropped.findings) == 4


def test_dcgan_checkerboard_compounds_as_pytorch_computes_it() -> None:
    """The DCGAN generator's 4×4 stride-2 transposed convolutions overlap evenly one by one (4 is divisible
    by 2), so no layer warns; the all-ones output of the whole stack is what the overlap profile says."""
    model = DCGANGenerator(latent=4, width=1, linear=True).double()
    shape = (1, 4, 1, 1)
    report = analyze(model, shape)
    out = report.outputs[0]
    assert report[out].node.shape == (1, 3, 64, 64)
    assert not any(f.code == "uneven-overlap" for r in report.nodes for f in r.findings)
    ones = overlap_by_ones(model, shape)[0, 0]
    row, col = report.profile(out)
    assert row is not None and col is not None
    # separable along a chain: the output is the outer product of the axes' profiles (times the
    # channels' fan-in, which the per-axis profile does not count)
    scale = float(ones[32, 32]) / (row[32] * col[32])
    assert [v * col[32] * scale for v in row] == pytest.approx(ones[:, 32].tolist(), rel=1e-12)
    assert [row[32] * v * scale for v in col] == pytest.approx(ones[32, :].tolist(), rel=1e-12)


def test_a_3x3_stride_2_decoder_has_a_checkerboard() -> None:
    """Three 3×3 stride-2 transposed convolutions: each overlaps 1:2, the stack compounds to four values
    over a period of 8, as the all-ones output shows."""
    model = torch.nn.Sequential(*[torch.nn.ConvTranspose1d(1, 1, 3, 2, 1, bias=False) for _ in range(3)]).double()
    report = analyze(model, (1, 1, 16))
    out = report.outputs[0]
    phases = report[out].overlap[0]
    assert phases is not None and len(phases) == 8
    finding = next(f for f in report.findings if f.code == "stacked-overlap")
    assert finding.data["phase_counts"] == list(phases)
    ones = overlap_by_ones(model, (1, 1, 16))[0, 0].tolist()
    window = ones[56:64]
    assert [v / min(window) for v in window] == pytest.approx(list(phases), rel=1e-3)


def test_an_audio_encoder_field_and_stride() -> None:
    """Strided 1-d convolutions with a reflect-padded residual block: 65 samples, stride 20."""
    report = analyze(AudioEncoder(), (1, 1, 1600))
    field = report[report.outputs[0]].fields[0]
    assert isinstance(field, Periodic)
    assert field.sizes == (65,) and field.rate == 20 and field.phases[0] == (-5, 59)  # padding 1 at stride 5


def test_wav2vec2_feature_encoder_reads_400_samples_every_320() -> None:
    """The published figure: wav2vec 2.0's convolutional feature encoder, 25 ms at 16 kHz every 20 ms."""
    transformers = pytest.importorskip("transformers")
    small = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 32}
    config = transformers.Wav2Vec2Config(**small, conv_dim=(8,) * 7, num_conv_pos_embeddings=16)
    model = transformers.Wav2Vec2Model(config).eval()
    report = analyze(model, (1, 16000))
    field = report["feature_extractor.conv_layers.6.conv"].fields[0]
    assert isinstance(field, Periodic) and field.sizes == (400,) and field.rate == 320
    assert report.coverage is None and report.unknown_from is not None and "attention" in report.unknown_from
    unknown = [f for f in report.findings if f.code == "unknown-op"]
    assert len(unknown) == 1  # the first point beyond which fields are unknown, not every later one


def test_real_model_definitions_trace_whole() -> None:
    """transformers' ConvNeXt (channels-last blocks: permute, LayerNorm, Linear) and ResNet, and a
    diffusers U-Net (attention: the point beyond which fields are unknown), from configs: every
    output's shape is PyTorch's, and the fields are known up to attention."""
    transformers = pytest.importorskip("transformers")
    convnext = transformers.ConvNextModel(
        transformers.ConvNextConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64])
    ).eval()
    resnet = transformers.ResNetModel(
        transformers.ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64], embedding_size=8)
    ).eval()
    for model in (convnext, resnet):
        report = analyze(model, (1, 3, 64, 64))
        with torch.no_grad():
            real = model(torch.zeros(1, 3, 64, 64))
        shapes = {tuple(t.shape) for t in real.values() if isinstance(t, torch.Tensor)}
        assert {report[n].node.shape for n in report.outputs} == shapes
        assert report.unknown_from is None and report.coverage == ((), ())
        last = report[report.outputs[0]].fields[0]
        assert isinstance(last, Periodic) and last.rate == 32
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4, attention_head_dim=4,
    ).eval()  # fmt: skip
    report = analyze(unet, (1, 3, 16, 16), extra_args=(1,))
    assert report[report.outputs[0]].node.shape == (1, 3, 16, 16)
    assert report.unknown_from is not None and "attentions" in report.unknown_from
    assert [f.code for f in report.findings].count("unknown-op") == 1


# -- the tracer's fast paths are PyTorch's answers ------------------------------------------------------


@examples(120)
@given(st.data())
def test_shapes_without_meta_kernels_are_pytorchs(data: st.DataObject) -> None:
    """The outputs the tracer makes without PyTorch's meta kernels (residual arithmetic, global means, the
    outputs of normalisations and activations) have the shape, strides and type PyTorch's kernels give,
    channels-last and broadcast operands included; what it leaves to PyTorch it leaves whole."""
    from convarith.frameworks.trace_torch import _empty_like, _shortcut

    shape = data.draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=4, max_size=4))
    other = [data.draw(st.sampled_from([1, s])) for s in shape][data.draw(st.integers(0, 4)) :]
    x, y = torch.empty(shape, device="meta"), torch.empty(other, device="meta")
    if data.draw(st.booleans()):
        x = x.to(memory_format=torch.channels_last)
    if len(other) == 4 and data.draw(st.booleans()):
        y = y.to(memory_format=torch.channels_last)
    if data.draw(st.booleans()):
        x, y = y, x
    ops = [("add", torch.ops.aten.add.Tensor, (x, y)), ("mul", torch.ops.aten.mul.Tensor, (x, y))]
    ops += [("div", torch.ops.aten.div.Tensor, (x, y.to(torch.float64)))]  # two types: PyTorch's promotion
    if x.dim() == 4:
        dims, keep = data.draw(st.sampled_from([[2, 3], [-1, -2], [1], [0, 3]])), data.draw(st.booleans())
        ops += [("mean", torch.ops.aten.mean.dim, (x, dims, keep)), ("amax", torch.ops.aten.amax.default, (x, dims))]
    for name, op, args in ops:
        got = _shortcut(op, name, args)
        if got is None:
            continue
        want = op(*args)
        assert (got.shape, got.stride(), got.dtype) == (want.shape, want.stride(), want.dtype), name
    made, want = _empty_like(x), torch.empty_like(x)
    assert (made.shape, made.stride(), made.dtype) == (want.shape, want.stride(), want.dtype)


def test_the_trace_leaves_the_model_as_it_was() -> None:
    """Tracing swaps parameters and buffers for meta copies and wraps forward methods for its length
    only: afterwards (also after a refusal) the model holds its own tensors and methods, and runs."""
    model = UNet(depth=1, width=2).eval()
    before = {name: t for name, t in [*model.named_parameters(), *model.named_buffers()]}
    report = analyze(model, (1, 1, 32, 32))
    with pytest.raises(ConvArithError):
        analyze(model, (1, 1, 2, 2))  # refused: a kernel larger than its input
    after = {name: t for name, t in [*model.named_parameters(), *model.named_buffers()]}
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert not any(t.is_meta for t in after.values())
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert model(torch.zeros(1, 1, 32, 32)).shape == report[report.outputs[0]].node.shape == (1, 2, 16, 16)


def test_shared_modules_hooks_and_unbatched_inputs() -> None:
    """A module registered under two names is traced under its first; the operations in a module's own
    forward hook are named after it; an unbatched convolution, which PyTorch runs itself, keeps its
    weights in the count."""

    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)
            self.alias = self.conv
            self.head = torch.nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.alias(self.conv(x)))

    model = Twice()
    model.head.register_forward_hook(lambda module, args, out: out * 2)
    report = analyze(model, (1, 2, 8, 8))
    assert [r.name for r in report.nodes] == ["input", "conv", "conv_2", "head", "head.mul"]
    assert report.parameters == sum(p.numel() for p in model.parameters())
    unbatched = analyze(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), (3, 8, 8))
    assert unbatched.parameters == 3 * 4 * 9 + 4


@examples(40)
@given(st.data())
def test_profiles_asked_for_one_by_one_are_the_whole_graphs(data: st.DataObject) -> None:
    """The overlap profiles a report works out when asked (its outputs' and upsamplings' at first, any
    node's on request) are those of every node computed at once."""
    from convarith.analysis.fields import overlap_profiles, propagate
    from convarith.frameworks.trace_torch import trace

    ndim = data.draw(st.sampled_from([1, 2]))
    chosen, size = data.draw(steps(ndim))
    assume(chosen)
    graph = trace(build(chosen, ndim), (1, 2) + (size,) * ndim)
    fields = propagate(graph)
    whole = overlap_profiles(graph, fields)
    names = [n.name for n in graph.nodes]
    known: dict[str, dict[int, list[float]]] = {}
    for name in data.draw(st.permutations(names)):
        assert overlap_profiles(graph, fields, [name], known)[name] == whole[name]


def test_a_graph_refuses_several_inputs_to_a_one_input_operation() -> None:
    """Only merges, concatenations and unknown operations read more than one data input."""
    from convarith.analysis.graph import Graph

    g = Graph()
    a = g.add("a", "input", (), (1, 1, 4))
    b = g.add("b", "elementwise", (a,), (1, 1, 4), what="relu")
    assert g.add("sum", "merge", (a, b), (1, 1, 4), what="add") == "sum"
    with pytest.raises(ConvArithError, match="one data input"):
        g.add("pad", "pad", (a, b), (1, 1, 6), pads=((0, 0), (0, 0), (1, 1)))
