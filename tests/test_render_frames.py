"""The frame model against the matrix C and PyTorch, over random N-d bound layers.

* direct convolution and pooling: frame ``f`` covers exactly the nonzero columns of row ``f`` of
  C (mapped back through padding, folding modes and crops included), with the right weights;
* transposed convolution, guide view: the same against the transposed convolution's C;
* scatter view: frame ``f`` stamps exactly column ``f`` of that C, and the accumulated stamps
  are the geometry's overlap counts and a PyTorch conv_transpose of ones;
* numeric mode: every frame's value is PyTorch's output (``tests/oracle_torch.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, Layer
from convarith.geometry.coverage import coverage, overlap
from convarith.ops.matrix import conv_matrix, pool_matrix
from convarith.render.frames import MAX_CELLS, build_animation, guide_axis
from oracle_torch import Unsupported, run_torch
from strategies import bound_layers, layers


def _ravel(index, shape) -> int:  # type: ignore[no-untyped-def]
    return int(np.ravel_multi_index(tuple(index), tuple(shape)))


def _columns(anim, frame):  # type: ignore[no-untyped-def]
    """Column of C → the taps of the frame that read it."""
    in_shape = anim.bound.sample_input_shape
    cols: dict[int, list[tuple[int, ...]]] = {}
    for touch in frame.lower:
        src = anim.lower.source(touch.cell)
        if src is not None:
            cols.setdefault(_ravel((touch.channel, *src), in_shape), []).append(touch.tap)
    return cols


def _torch(bound, x, w=None):  # type: ignore[no-untyped-def]
    """PyTorch's output for one sample, or ``assume`` it away when PyTorch cannot run it exactly."""
    try:
        y = run_torch(bound, torch.from_numpy(x)[None], None if w is None else torch.from_numpy(w))
    except Unsupported:
        assume(False)
        raise AssertionError("unreachable") from None
    return y[0].numpy()


CONVS = bound_layers(layers(kinds=("conv",), policies=False, max_kernel=3, max_stride=3, max_dilation=2), forms=(1,))
TRANSPOSED = bound_layers(
    layers(kinds=("conv_transpose",), policies=False, max_kernel=3, max_stride=3, max_dilation=2), forms=(1,)
)
POOLS = bound_layers(layers(kinds=("max_pool", "avg_pool"), policies=False, max_kernel=3), forms=(1,))


@settings(max_examples=60)
@given(CONVS, st.integers(0, 2**31 - 1))
def test_direct_frames_are_the_rows_of_C(bound, seed) -> None:  # type: ignore[no-untyped-def]
    anim = build_animation(bound)
    assert len(anim.frames) == bound.out_channels * math.prod(bound.output_spatial)
    weight = np.random.default_rng(seed).uniform(1, 2, size=bound.weight_shape)
    C = conv_matrix(bound, weight).tocsr()
    for frame in anim.frames:
        row = C[[frame.index], :].toarray()[0]
        cols = _columns(anim, frame)
        assert set(cols) == set(np.flatnonzero(row).tolist())
        for col, taps in cols.items():
            assert row[col] == pytest.approx(sum(weight[t] for t in taps), rel=1e-12)
        (target,) = frame.upper
        assert _ravel((target.channel, *target.cell), bound.sample_output_shape) == frame.index


@settings(max_examples=40)
@given(CONVS, st.integers(0, 2**31 - 1))
def test_numeric_direct_frames_equal_torch(bound, seed) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(seed).standard_normal(bound.sample_input_shape)
    anim = build_animation(bound, input_values=x)
    assert anim.values is not None and anim.values.weight is not None
    w = anim.values.weight
    values = np.array(anim.values.frame_values)
    np.testing.assert_allclose(values, conv_matrix(bound, w) @ x.ravel(), rtol=1e-12, atol=1e-12)
    expected = _torch(bound, x, w)
    np.testing.assert_allclose(values, expected.ravel(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(anim.values.output, expected, rtol=1e-11, atol=1e-11)


@settings(max_examples=40)
@given(CONVS)
def test_unread_cells_match_coverage(bound) -> None:  # type: ignore[no-untyped-def]
    assume(bound.layer.padding_mode == "zeros" and min(p for pair in bound.pads for p in pair) >= 0)
    anim = build_animation(bound)
    for axis, cov, (pb, pa), i in zip(anim.lower.axes, coverage(bound), bound.pads, bound.input_spatial, strict=True):
        assert axis.reads[pb : pb + i] == cov.reads
        before = sum(1 for g in range(pb) if not axis.reads[g])
        after = sum(1 for g in range(pa) if not axis.reads[len(axis) - 1 - g])
        assert (before, after) == cov.unread_pad


@settings(max_examples=60)
@given(TRANSPOSED, st.integers(0, 2**31 - 1))
def test_guide_view_frames_are_the_rows_of_the_transposed_C(bound, seed) -> None:  # type: ignore[no-untyped-def]
    anim = build_animation(bound)
    eq = bound.direct()
    assert anim.lower.shape == tuple(ax.stretched + max(ax.pad[0], 0) + max(ax.pad[1], 0) for ax in eq.axes)
    assert len(anim.frames) == bound.out_channels * math.prod(bound.output_spatial)
    weight = np.random.default_rng(seed).uniform(1, 2, size=bound.weight_shape)
    C = conv_matrix(bound, weight).tocsr()
    for frame in anim.frames:
        row = C[[frame.index], :].toarray()[0]
        cols = _columns(anim, frame)
        assert set(cols) == set(np.flatnonzero(row).tolist())
        for col, taps in cols.items():
            assert row[col] == pytest.approx(sum(weight[t] for t in taps), rel=1e-12)


@settings(max_examples=40)
@given(TRANSPOSED, st.integers(0, 2**31 - 1))
def test_numeric_transposed_views_equal_torch(bound, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(bound.sample_input_shape)
    w = rng.standard_normal(bound.weight_shape)
    expected = _torch(bound.layer.replace(bias=False).bind(bound.input_shape), x, w)
    assert expected.shape == bound.sample_output_shape
    guide = build_animation(bound, input_values=x, kernel_values=w)
    assert guide.values is not None
    np.testing.assert_allclose(np.array(guide.values.frame_values), expected.ravel(), rtol=1e-11, atol=1e-11)
    scatter = build_animation(bound, view="scatter", input_values=x, kernel_values=w)
    assert scatter.values is not None
    inside = _inside(scatter)
    np.testing.assert_allclose(scatter.values.output[(slice(None), *inside)], expected, rtol=1e-11, atol=1e-11)
    # the running sums the scatter pictures show end at the output
    last: dict[tuple[int, tuple[int, ...]], float] = {}
    for frame, sums in zip(scatter.frames, scatter.values.partial_sums, strict=True):
        for touch, value in zip(frame.upper, sums, strict=True):
            last[touch.channel, touch.cell] = value
    for (channel, cell), value in last.items():
        if scatter.upper.kind(cell) != "crop":
            assert value == pytest.approx(float(scatter.values.output[(channel, *cell)]), abs=1e-12)


def _inside(anim):  # type: ignore[no-untyped-def]
    """Slices of the scatter view's upper grid that are the output (the rest is cropped)."""
    result = []
    for axis in anim.upper.axes:
        kept = [g for g, kind in enumerate(axis.kinds) if kind != "crop"]
        assert kept == list(range(kept[0], kept[-1] + 1))
        result.append(slice(kept[0], kept[-1] + 1))
    return tuple(result)


@settings(max_examples=60)
@given(TRANSPOSED)
def test_scatter_frames_are_the_columns_of_C_and_overlap_counts(bound) -> None:  # type: ignore[no-untyped-def]
    anim = build_animation(bound, view="scatter")
    c_in, c_out = bound.in_channels, bound.out_channels
    assert len(anim.frames) == c_in * math.prod(bound.input_spatial)
    C = conv_matrix(bound, np.ones(bound.weight_shape)).tocsc()
    counts = np.zeros((c_out, *anim.upper.shape))
    for frame in anim.frames:
        column = C[:, [frame.index]].toarray()[:, 0]
        rows = set()
        for touch in frame.upper:
            counts[(touch.channel, *touch.cell)] += 1
            src = anim.upper.source(touch.cell)
            if src is not None:
                rows.add(_ravel((touch.channel, *src), bound.sample_output_shape))
        assert rows == set(np.flatnonzero(column).tolist())
    inside = counts[(slice(None), *_inside(anim))]
    # the geometry's overlap counts (outer product over axes), per input channel feeding a cell
    per_axis = [np.array(ov.counts) for ov in overlap(bound)]
    grid = per_axis[0]
    for axis in per_axis[1:]:
        grid = np.multiply.outer(grid, axis)
    np.testing.assert_array_equal(inside, np.broadcast_to(grid * (c_in // bound.layer.groups), inside.shape))
    # and PyTorch's conv_transpose of ones with a ones kernel
    plain = bound.layer.replace(bias=False).bind(bound.input_shape)
    ones = _torch(plain, np.ones(bound.sample_input_shape), np.ones(bound.weight_shape))
    np.testing.assert_array_equal(inside, ones)


@settings(max_examples=60)
@given(POOLS, st.integers(0, 2**31 - 1))
def test_pooling_frames_match_pool_matrix_and_torch(bound, seed) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(seed).standard_normal(bound.sample_input_shape)
    anim = build_animation(bound, input_values=x)
    assert len(anim.frames) == bound.out_channels * math.prod(bound.output_spatial)
    assert anim.values is not None
    if bound.kind == "avg_pool":
        C = pool_matrix(bound).tocsr()
        for frame in anim.frames:
            row = C[[frame.index], :].toarray()[0]
            assert set(_columns(anim, frame)) == set(np.flatnonzero(row).tolist())
        np.testing.assert_allclose(np.array(anim.values.frame_values), C @ x.ravel(), rtol=1e-12, atol=1e-12)
    expected = _torch(bound, x)
    np.testing.assert_allclose(np.array(anim.values.frame_values), expected.ravel(), rtol=1e-12, atol=1e-12)


def test_guide_numeric_figure() -> None:
    """The guide's Figure 1.1: 5×5 input, 3×3 kernel → its printed output."""
    x = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
    w = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
    anim = build_animation(Layer("conv2d", kernel_size=3), (5, 5), input_values=x, kernel_values=w)
    assert anim.values is not None
    assert anim.values.frame_values == (12, 12, 17, 10, 17, 19, 9, 6, 14)


def test_cell_kinds_of_the_odd_transposed_case() -> None:
    """padding_strides_odd_transposed: the output_padding cells are after (bottom/right)."""
    layer = Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
    anim = build_animation(layer, (3, 3))
    for axis in anim.lower.axes:
        assert axis.kinds == ("pad", "input", "zero", "input", "zero", "input", "pad", "extra")
        assert axis.source == (-1, 0, -1, 1, -1, 2, -1, -1)
    assert anim.lower.kind((7, 0)) == "extra" and anim.lower.kind((0, 7)) == "extra"
    assert anim.lower.kind((1, 2)) == "zero" and anim.lower.kind((0, 1)) == "pad"
    assert anim.caption() == anim.bound.caption() == "conv_transpose2d  i=3×3 k=3 s=2 p=1 a=1 → o=6×6"


def test_guide_axis_marks_crops_of_a_negative_direct_padding() -> None:
    """A transposed padding beyond d(k − 1) crops the stretched input: p′ < 0."""
    bound = Layer("conv_transpose1d", kernel_size=2, stride=2, padding=2).bind((4,))
    (eq,) = bound.direct().axes
    assert eq.pad == (-1, -1)
    cells = guide_axis(eq)
    assert cells.kinds == ("crop", "zero", "input", "zero", "input", "zero", "crop")
    assert len(cells) - cells.kinds.count("crop") - eq.kernel + 1 == bound.output_spatial[0]


def test_crops_are_drawn_and_never_covered() -> None:
    layer = Layer("conv1d", kernel_size=2, padding=[(-1, 1)], padding_mode="circular")
    anim = build_animation(layer, (4,))
    assert anim.lower.axes[0].kinds == ("crop", "input", "input", "input", "pad")
    assert all(t.cell[0] != 0 for f in anim.frames for t in f.lower)


def test_ceil_mode_overhang_cells() -> None:
    bound = Layer("max_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True).bind((6,))
    anim = build_animation(bound)
    assert anim.lower.axes[0].kinds == ("pad", *["input"] * 6, "pad", "overhang")
    assert anim.lower.axes[0].kinds.count("overhang") == bound.axes[0].overhang


def test_channels_come_from_the_bound_layer() -> None:
    anim = build_animation(Layer("conv2d", 2, 4, kernel_size=3, groups=2), (2, 4, 4))
    assert (anim.in_channels, anim.out_channels, anim.lower.channels, anim.upper.channels) == (2, 4, 2, 4)
    # each output channel reads its group's input channel only
    assert {t.channel for t in anim.frames[0].lower} == {0}
    assert {t.channel for t in anim.frames[-1].lower} == {1}
    same = build_animation(anim.bound)
    assert same.frames == anim.frames
    with pytest.raises(ConvArithError, match="input_shape"):
        build_animation(anim.bound, (3, 4, 4))
    with pytest.raises(ConvArithError, match="input_shape"):
        build_animation(Layer("conv2d", kernel_size=3))


def test_bad_requests_are_one_line_errors() -> None:
    conv = Layer("conv2d", kernel_size=3)
    with pytest.raises(ConvArithError, match="scatter"):
        build_animation(conv, (5, 5), view="scatter")
    with pytest.raises(ConvArithError, match="input_values"):
        build_animation(conv, (5, 5), input_values=np.zeros((4, 4)))
    with pytest.raises(ConvArithError, match="input_values"):
        build_animation(conv, (5, 5), input_values=[["a"] * 5] * 5)
    with pytest.raises(ConvArithError, match="input_values"):
        build_animation(conv, (3, 3), input_values=np.full((3, 3), np.nan))
    with pytest.raises(ConvArithError, match="kernel_values"):
        build_animation(Layer("max_pool2d", kernel_size=2), (4, 4), kernel_values=np.ones((2, 2)))
    with pytest.raises(ConvArithError, match="frames"):
        build_animation(conv, (200, 200))
    with pytest.raises(ConvArithError, match="seed"):
        build_animation(conv, (5, 5), numeric=True, seed=-5)
    # a tiny output of a huge input: refused by its cell count, before anything is drawn
    with pytest.raises(ConvArithError, match=f"at most {MAX_CELLS:,}"):
        build_animation(Layer("conv1d", kernel_size=1, stride=10**9), (10**9,))


@settings(max_examples=40)
@given(st.one_of(CONVS, TRANSPOSED, POOLS), st.booleans())
def test_windows_are_the_frames_in_compact_form(bound, scatter) -> None:  # type: ignore[no-untyped-def]
    """``frames.window(f)`` names exactly the touches of ``frames[f]``: every channel it lists × every cell."""
    assume(not scatter or bound.transposed)
    anim = build_animation(bound, view="scatter" if scatter else "direct")
    frames = anim.frames
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    assert [f.index for f in frames[:: max(len(frames) - 1, 1)]] == sorted({0, len(frames) - 1})
    assert frames[-1] == frames[len(frames) - 1]
    for n in picks:
        frame, window = frames[n], frames.window(n)
        reads, writes = (frame.upper, frame.lower) if scatter else (frame.lower, frame.upper)
        assert writes == (type(writes[0])(window.channel, window.cell),)
        assert [(t.channel, t.cell) for t in reads] == [(c, cell) for c in window.channels for cell in window.cells]
        assert [t.tap for t in reads] == [tap for c in window.channels for tap in frames.taps(window, c)]
    with pytest.raises(IndexError):
        frames[len(frames)]


def test_many_channels_store_nothing_per_frame() -> None:
    import tracemalloc

    tracemalloc.start()
    anim = build_animation(Layer("conv2d", 64, 64, kernel_size=3), (8, 8))
    size = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(anim.frames) == 2304 and len(anim.frames[5].lower) == 64 * 9
    assert size < 1_000_000  # per-axis data only: 1.3 M touches would take hundreds of MB


@settings(max_examples=40)
@given(st.one_of(CONVS, TRANSPOSED, POOLS), st.booleans())
def test_rays_start_where_each_windows_own_corners_are(bound, numeric) -> None:  # type: ignore[no-untyped-def]
    """The painter finds the cells the rays start from once per animation (every window is the same
    taps moved); found anew for every window, the scene is the same."""
    from convarith.render import scene as scenes

    try:
        anim = build_animation(bound, numeric=numeric)
    except ConvArithError:  # too many frames for an animation
        assume(False)
        raise
    once = scenes.compose(anim)
    rays = scenes._Painter._rays

    def anew(self, *args):  # type: ignore[no-untyped-def]
        self.ray_corners = None
        return rays(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scenes._Painter, "_rays", anew)
        each = scenes.compose(anim)
    assert once.frames == each.frames and once.kept == each.kept


def _colours(shapes) -> set[str]:  # type: ignore[no-untyped-def]
    from convarith.render.scene import Polygon

    found: set[str] = set()
    for shape in shapes:
        if isinstance(shape, Polygon):
            found.update(c for c in (shape.fill, shape.outline) if c is not None)
        else:
            found.add(shape.colour)
    return found


@settings(max_examples=40)
@given(st.one_of(CONVS, TRANSPOSED, POOLS), st.booleans(), st.sampled_from(["guide", "flat"]), st.randoms())
def test_direct_frames_are_made_when_asked_for_in_any_order(bound, numeric, style, rng) -> None:  # type: ignore[no-untyped-def]
    """A direct scene's frames are made on demand: in any order the same shapes, and every colour
    they paint is one the scene names beforehand (the GIF's palette holds those exactly)."""
    from convarith.render.scene import Frames, compose

    try:
        anim = build_animation(bound, numeric=numeric)
    except ConvArithError:  # too many frames for an animation
        assume(False)
        raise
    in_order, shuffled = compose(anim, style), compose(anim, style)
    assert isinstance(in_order.frames, Frames) and in_order.frame_colours is not None
    order = list(range(len(anim.frames)))
    rng.shuffle(order)
    made = {n: shuffled.frames[n] for n in order}
    assert [made[n] for n in range(len(order))] == list(in_order.frames)
    assert _colours(shape for frame in in_order.frames for shape in frame) <= in_order.frame_colours


@settings(max_examples=30, deadline=None)
@given(
    st.one_of(CONVS, TRANSPOSED, POOLS), st.booleans(), st.sampled_from(["direct", "scatter"]), st.sampled_from([1, 2])
)
def test_each_changed_rectangle_is_that_part_of_the_whole_frame(bound, numeric, view, supersample) -> None:  # type: ignore[no-untyped-def]
    """What a GIF stores of each frame, the rectangle that changed, is pixel for pixel that part of the
    frame drawn whole, and outside it the frame is the one before."""
    from convarith.render.raster import Canvas, frames_rgb
    from convarith.render.scene import compose

    assume(view == "direct" or bound.kind == "conv_transpose")
    try:
        anim = build_animation(bound, numeric=numeric, view=view)
    except ConvArithError:  # too many frames for an animation
        assume(False)
        raise
    assume(len(anim.frames) <= 30)
    scene = compose(anim)
    scene.supersample = supersample
    canvas = Canvas(scene)
    before = None
    for whole in frames_rgb(scene):
        canvas.advance()
        (x0, y0, x1, y1), part = canvas.changed()
        frame = np.asarray(whole)
        np.testing.assert_array_equal(np.asarray(part), frame[y0:y1, x0:x1])
        if before is not None:
            outside = np.ones(frame.shape[:2], bool)
            outside[y0:y1, x0:x1] = False
            np.testing.assert_array_equal(frame[outside], before[outside])
        before = frame


def test_frames_made_on_demand_read_as_a_list() -> None:
    """``Scene.frames`` of a direct view reads as the list it stands for: length, negative indices,
    slices, iteration, equality; each frame is made once, when first asked for."""
    from convarith.render.scene import Frames, Text

    made: list[int] = []

    def make(n: int) -> list[Text]:
        made.append(n)
        return [Text(0, 0, str(n), 10)]

    frames = Frames(4, make)
    assert len(frames) == 4 and made == []
    assert frames[-1][0].text == "3" and made == [3]
    assert [f[0].text for f in frames[1:3]] == ["1", "2"] and made == [3, 1, 2]
    assert [f[0].text for f in frames] == ["0", "1", "2", "3"] and sorted(made) == [0, 1, 2, 3]  # each once
    assert frames[3] is frames[-1]
    assert frames == [[Text(0, 0, str(n), 10)] for n in range(4)] and frames != [[]] * 4 and frames != [[]] * 3
    with pytest.raises(IndexError):
        frames[4]
