"""The frame model against the matrix C and PyTorch, over random N-d configurations.

* direct convolution and pooling: frame ``f`` covers exactly the nonzero columns of row ``f`` of
  C (mapped back through padding, folding modes and crops included), with the right weights;
* transposed convolution, guide view: the same against the transposed convolution's C;
* scatter view: frame ``f`` stamps exactly column ``f`` of that C, and the accumulated stamps
  are the geometry's overlap counts and a PyTorch conv_transpose of ones;
* numeric mode: every frame's value is PyTorch's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, ConvSpec, coverage, overlap
from convarith.ops.matrix import conv_matrix, pool_matrix
from convarith.render.frames import build_animation

torch.set_num_threads(1)


def _ravel(index, shape) -> int:  # type: ignore[no-untyped-def]
    return int(np.ravel_multi_index(tuple(index), tuple(shape)))


def _flat_pads(pads) -> list[int]:  # type: ignore[no-untyped-def]
    return [p for pair in reversed(pads) for p in pair]


def _columns(anim, frame):  # type: ignore[no-untyped-def]
    """Column of C → summed weight of the frame's taps that read it."""
    in_shape = (anim.in_channels, *anim.input_spatial)
    cols: dict[int, list[tuple[int, ...]]] = {}
    for touch in frame.lower:
        src = anim.lower.source(touch.cell)
        if src is not None:
            cols.setdefault(_ravel((touch.channel, *src), in_shape), []).append(touch.tap)
    return cols


@st.composite
def conv_cases(draw):  # type: ignore[no-untyped-def]
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    per = lambda lo, hi: draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    low = 0 if mode == "zeros" else -1
    padding = tuple((draw(st.integers(low, 2)), draw(st.integers(low, 2))) for _ in range(ndim))
    spatial = per(1, 6 if ndim < 3 else 3)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    try:
        spec = ConvSpec.create(
            f"conv{ndim}d",
            kernel_size=per(1, 3),
            stride=per(1, 3),
            dilation=per(1, 2),
            padding=padding,
            padding_mode=mode,
            groups=groups,
        )
        spec.output_spatial(spatial)
    except ConvArithError:
        assume(False)
    return spec, spatial, c_in, c_out


@settings(max_examples=150)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_direct_frames_are_the_rows_of_C(case, seed) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    anim = build_animation(spec, spatial, in_channels=c_in, out_channels=c_out)
    out = spec.output_spatial(spatial)
    assert len(anim.frames) == c_out * math.prod(out)
    weight = np.random.default_rng(seed).uniform(1, 2, size=anim.weight_shape)
    C = conv_matrix(
        spec.op,
        weight,
        (c_in, *spatial),
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
        padding_mode=spec.padding_mode,
    ).tocsr()
    for frame in anim.frames:
        row = C[[frame.index], :].toarray()[0]
        cols = _columns(anim, frame)
        assert set(cols) == set(np.flatnonzero(row).tolist())
        for col, taps in cols.items():
            assert row[col] == pytest.approx(sum(weight[t] for t in taps), rel=1e-12)
        (target,) = frame.upper
        assert _ravel((target.channel, *target.cell), (c_out, *out)) == frame.index


@settings(max_examples=60)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_numeric_direct_frames_equal_torch(case, seed) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, *spatial))
    anim = build_animation(spec, spatial, in_channels=c_in, out_channels=c_out, input_values=x)
    w = anim.values.weight
    # C @ x for every case; PyTorch itself where nothing is cropped
    C = conv_matrix(
        spec.op,
        w,
        (c_in, *spatial),
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
        padding_mode=spec.padding_mode,
    )
    values = np.array(anim.values.frame_values)
    np.testing.assert_allclose(values, C @ x.ravel(), rtol=1e-12, atol=1e-12)
    if min(p for pair in spec.pads for p in pair) >= 0:
        mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
        padded = F.pad(torch.from_numpy(x)[None], _flat_pads(spec.pads), mode=mode)
        conv = getattr(F, f"conv{spec.ndim}d")
        expected = conv(padded, torch.from_numpy(w), stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
        np.testing.assert_allclose(values, expected.numpy().ravel(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(anim.values.output, expected.numpy()[0], rtol=1e-12, atol=1e-12)


@settings(max_examples=60)
@given(conv_cases())
def test_unread_cells_match_coverage(case) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    assume(min(p for pair in spec.pads for p in pair) >= 0)
    anim = build_animation(spec, spatial, in_channels=c_in, out_channels=c_out)
    for axis, cov, (pb, pa), i in zip(anim.lower.axes, coverage(spec, spatial), spec.pads, spatial, strict=True):
        assert axis.reads[pb : pb + i] == cov.reads
        before = next((g for g in range(pb) if axis.reads[g]), pb)
        after = next((g for g in range(pa) if axis.reads[len(axis) - 1 - g]), pa)
        assert (before, after) == cov.unread_pad


@st.composite
def transposed_cases(draw):  # type: ignore[no-untyped-def]
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    per = lambda lo, hi: draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel, stride, dilation = per(1, 3), per(1, 3), per(1, 2)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim))
    spatial = per(1, 4 if ndim < 3 else 3)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    try:
        spec = ConvSpec.create(
            f"conv_transpose{ndim}d",
            kernel_size=kernel,
            stride=stride,
            dilation=dilation,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
        )
        spec.output_spatial(spatial)
    except ConvArithError:
        assume(False)
    return spec, spatial, c_in, c_out


def _transposed_matrix(spec, spatial, weight, c_in):  # type: ignore[no-untyped-def]
    return conv_matrix(
        spec.op,
        weight,
        (c_in, *spatial),
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
        output_padding=spec.output_padding,
    ).tocsr()


@settings(max_examples=150)
@given(transposed_cases(), st.integers(0, 2**31 - 1))
def test_guide_view_frames_are_the_rows_of_the_transposed_C(case, seed) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    anim = build_animation(spec, spatial, in_channels=c_in, out_channels=c_out)
    out = spec.output_spatial(spatial)
    assert anim.lower.shape == tuple(
        (i - 1) * s + 1 + max(pb, 0) + max(pa, 0)
        for i, s, (pb, pa) in zip(spatial, spec.stride, _equivalent_pads(spec, spatial), strict=True)
    )
    assert len(anim.frames) == c_out * math.prod(out)
    weight = np.random.default_rng(seed).uniform(1, 2, size=anim.weight_shape)
    C = _transposed_matrix(spec, spatial, weight, c_in)
    for frame in anim.frames:
        row = C[[frame.index], :].toarray()[0]
        cols = _columns(anim, frame)
        assert set(cols) == set(np.flatnonzero(row).tolist())
        for col, taps in cols.items():
            assert row[col] == pytest.approx(sum(weight[t] for t in taps), rel=1e-12)


def _equivalent_pads(spec, spatial):  # type: ignore[no-untyped-def]
    from convarith import equivalent_direct_conv

    return [eq.pad for eq in equivalent_direct_conv(spec, spatial)]


def _torch_transposed(spec, x, w):  # type: ignore[no-untyped-def]
    """PyTorch's conv_transpose with asymmetric padding: symmetric part in the op, the rest cropped."""
    fn = getattr(F, f"conv_transpose{spec.ndim}d")
    low = [min(pb, pa) for pb, pa in spec.pads]
    y = fn(
        torch.from_numpy(x)[None],
        torch.from_numpy(w),
        stride=spec.stride,
        padding=low,
        dilation=spec.dilation,
        groups=spec.groups,
        output_padding=spec.output_padding,
    )
    crop = tuple(
        slice(pb - m, y.shape[2 + n] - (pa - m)) for n, ((pb, pa), m) in enumerate(zip(spec.pads, low, strict=True))
    )
    return y[(0, slice(None), *crop)].numpy()


@settings(max_examples=80)
@given(transposed_cases(), st.integers(0, 2**31 - 1))
def test_numeric_transposed_views_equal_torch(case, seed) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, *spatial))
    c_out_g = c_out // spec.groups
    w = rng.standard_normal((c_in, c_out_g, *spec.kernel_size))
    expected = _torch_transposed(spec, x, w)
    assert expected.shape[1:] == spec.output_spatial(spatial)
    guide = build_animation(spec, spatial, in_channels=c_in, out_channels=c_out, input_values=x, kernel_values=w)
    np.testing.assert_allclose(np.array(guide.values.frame_values), expected.ravel(), rtol=1e-11, atol=1e-11)
    scatter = build_animation(
        spec, spatial, view="scatter", in_channels=c_in, out_channels=c_out, input_values=x, kernel_values=w
    )
    inside = _inside(scatter)
    np.testing.assert_allclose(scatter.values.output[(slice(None), *inside)], expected, rtol=1e-11, atol=1e-11)


def _inside(anim):  # type: ignore[no-untyped-def]
    """Slices of the scatter view's upper grid that are the output (the rest is cropped)."""
    result = []
    for axis in anim.upper.axes:
        kept = [g for g, kind in enumerate(axis.kinds) if kind != "crop"]
        assert kept == list(range(kept[0], kept[-1] + 1))
        result.append(slice(kept[0], kept[-1] + 1))
    return tuple(result)


@settings(max_examples=150)
@given(transposed_cases())
def test_scatter_frames_are_the_columns_of_C_and_overlap_counts(case) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, c_in, c_out = case
    anim = build_animation(spec, spatial, view="scatter", in_channels=c_in, out_channels=c_out)
    out = spec.output_spatial(spatial)
    assert len(anim.frames) == c_in * math.prod(spatial)
    C = _transposed_matrix(spec, spatial, np.ones(anim.weight_shape), c_in).tocsc()
    counts = np.zeros((c_out, *anim.upper.shape))
    for frame in anim.frames:
        column = C[:, [frame.index]].toarray()[:, 0]
        rows = set()
        for touch in frame.upper:
            counts[(touch.channel, *touch.cell)] += 1
            src = anim.upper.source(touch.cell)
            if src is not None:
                rows.add(_ravel((touch.channel, *src), (c_out, *out)))
        assert rows == set(np.flatnonzero(column).tolist())
    inside = counts[(slice(None), *_inside(anim))]
    # the geometry's overlap counts (outer product over axes), per input channel feeding a cell
    per_axis = [np.array(ov.counts) for ov in overlap(spec, spatial)]
    grid = per_axis[0]
    for axis in per_axis[1:]:
        grid = np.multiply.outer(grid, axis)
    np.testing.assert_array_equal(inside, np.broadcast_to(grid * (c_in // spec.groups), inside.shape))
    # and PyTorch's conv_transpose of ones with a ones kernel
    ones = _torch_transposed(spec, np.ones((c_in, *spatial)), np.ones(anim.weight_shape))
    np.testing.assert_array_equal(inside, ones)


@st.composite
def pool_cases(draw):  # type: ignore[no-untyped-def]
    ndim = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["max_pool", "avg_pool"]))
    per = lambda lo, hi: draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel = per(1, 4)
    stride = per(1, 3)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = per(1, 2) if kind == "max_pool" else (1,) * ndim
    spatial = per(1, 7 if ndim < 3 else 4)
    ceil_mode = draw(st.booleans())
    include = draw(st.booleans())
    try:
        spec = ConvSpec.create(
            f"{kind}{ndim}d",
            kernel_size=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
            count_include_pad=include,
        )
        spec.output_spatial(spatial)
    except ConvArithError:
        assume(False)
    return spec, spatial, padding, draw(st.integers(1, 2))


@settings(max_examples=150)
@given(pool_cases(), st.integers(0, 2**31 - 1))
def test_pooling_frames_match_pool_matrix_and_torch(case, seed) -> None:  # type: ignore[no-untyped-def]
    spec, spatial, padding, channels = case
    x = np.random.default_rng(seed).standard_normal((channels, *spatial))
    anim = build_animation(spec, spatial, in_channels=channels, input_values=x)
    out = spec.output_spatial(spatial)
    assert len(anim.frames) == channels * math.prod(out)
    n = spec.ndim
    if spec.kind == "avg_pool":
        C = pool_matrix(
            spec.op,
            (channels, *spatial),
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            padding=padding,
            ceil_mode=spec.ceil_mode,
            count_include_pad=spec.count_include_pad,
        ).tocsr()
        for frame in anim.frames:
            row = C[[frame.index], :].toarray()[0]
            assert set(_columns(anim, frame)) == set(np.flatnonzero(row).tolist())
        fn = getattr(F, f"avg_pool{n}d")
        kwargs = {"count_include_pad": spec.count_include_pad}
    else:
        fn = getattr(F, f"max_pool{n}d")
        kwargs = {"dilation": spec.dilation}
    expected = fn(
        torch.from_numpy(x)[None],
        spec.kernel_size,
        stride=spec.stride,
        padding=padding,
        ceil_mode=spec.ceil_mode,
        **kwargs,
    )
    np.testing.assert_allclose(np.array(anim.values.frame_values), expected.numpy().ravel(), rtol=1e-12, atol=1e-12)


def test_guide_numeric_figure() -> None:
    """The guide's Figure 1.1: 5×5 input, 3×3 kernel → its printed output."""
    x = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
    w = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
    anim = build_animation(ConvSpec.create("conv2d", kernel_size=3), (5, 5), input_values=x, kernel_values=w)
    assert anim.values.frame_values == (12, 12, 17, 10, 17, 19, 9, 6, 14)


def test_cell_kinds_of_the_odd_transposed_case() -> None:
    """padding_strides_odd_transposed: the output_padding cells are after (bottom/right)."""
    spec = ConvSpec.create("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)
    anim = build_animation(spec, (3, 3))
    for axis in anim.lower.axes:
        assert axis.kinds == ("pad", "input", "zero", "input", "zero", "input", "pad", "extra")
        assert axis.source == (-1, 0, -1, 1, -1, 2, -1, -1)
    assert anim.lower.kind((7, 0)) == "extra" and anim.lower.kind((0, 7)) == "extra"
    assert anim.lower.kind((1, 2)) == "zero" and anim.lower.kind((0, 1)) == "pad"


def test_crops_are_drawn_and_never_covered() -> None:
    spec = ConvSpec.create("conv1d", kernel_size=2, padding=((-1, 1),), padding_mode="circular")
    anim = build_animation(spec, (4,))
    assert anim.lower.axes[0].kinds == ("crop", "input", "input", "input", "pad")
    assert all(t.cell[0] != 0 for f in anim.frames for t in f.lower)


def test_ceil_mode_overhang_cells() -> None:
    spec = ConvSpec.create("max_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True)
    anim = build_animation(spec, (6,))
    assert anim.lower.axes[0].kinds == ("pad", *["input"] * 6, "pad", "overhang")


def test_bad_requests_are_one_line_errors() -> None:
    conv = ConvSpec.create("conv2d", kernel_size=3)
    with pytest.raises(ConvArithError, match="scatter"):
        build_animation(conv, (5, 5), view="scatter")
    with pytest.raises(ConvArithError, match="input_values"):
        build_animation(conv, (5, 5), input_values=np.zeros((4, 4)))
    with pytest.raises(ConvArithError, match="kernel_values"):
        build_animation(ConvSpec.create("max_pool2d", kernel_size=2), (4, 4), kernel_values=np.ones((2, 2)))
    with pytest.raises(ConvArithError, match="frames"):
        build_animation(conv, (200, 200))
