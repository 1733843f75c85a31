"""The transposed relation, coverage and overlap, checked against PyTorch's real ops."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, ConvSpec, coverage, equivalent_direct_conv, overlap, transpose_of
from convarith.geometry import input_sizes_for_output, output_padding_choices

torch.set_num_threads(1)


def _flat_pads(pads: list[tuple[int, int]]) -> list[int]:
    """Per-axis (before, after) → F.pad's order (last axis first); negative values crop."""
    return [p for pair in reversed(pads) for p in pair]


def direct_route(y: torch.Tensor, weight: torch.Tensor, spec: ConvSpec, groups: int) -> torch.Tensor:
    """A transposed convolution computed the guide's §4.3 way, from our equivalent direct conv."""
    axes = equivalent_direct_conv(spec, tuple(y.shape[2:]))
    ndim = len(axes)
    # 1. insert s − 1 zeros between neighbours
    stretched = y.new_zeros((*y.shape[:2], *(eq.stretched for eq in axes)))
    stretched[(..., *(slice(None, None, eq.zeros_between + 1) for eq in axes))] = y
    # 2. pad by p′ (crop where negative); output_padding is inside p′ after
    padded = F.pad(stretched, _flat_pads([eq.pad for eq in axes]))
    # 3. rotate the kernel by 180° and swap its in/out channel axes within each group
    c_in, c_out_g, *k = weight.shape
    rotated = weight.flip(list(range(2, 2 + ndim)))
    swapped = (
        rotated.reshape(groups, c_in // groups, c_out_g, *k)
        .transpose(1, 2)
        .reshape(groups * c_out_g, c_in // groups, *k)
    )
    # 4. a plain stride-1 convolution
    conv = getattr(F, f"conv{ndim}d")
    return conv(padded, swapped, stride=1, dilation=spec.dilation, groups=groups)


@st.composite
def transposed_cases(draw):  # type: ignore[no-untyped-def]
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda lo, hi: draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel, stride, dilation = per(1, 4), per(1, 3), per(1, 3)
    padding = per(0, 4)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    spatial = per(1, 5 if ndim < 3 else 3)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    return ndim, groups, kernel, stride, dilation, padding, output_padding, spatial, c_in, c_out


@settings(max_examples=400)
@given(transposed_cases(), st.integers(0, 2**31 - 1))
def test_equivalent_direct_convolution_reproduces_conv_transpose(case, seed) -> None:  # type: ignore[no-untyped-def]
    ndim, groups, kernel, stride, dilation, padding, output_padding, spatial, c_in, c_out = case
    spec = ConvSpec.create(
        f"conv_transpose{ndim}d",
        kernel_size=kernel,
        stride=stride,
        dilation=dilation,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
    )
    try:
        spec.output_spatial(spatial)
    except ConvArithError:
        return
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn((2, c_in, *spatial), generator=gen, dtype=torch.float64)
    w = torch.randn((c_in, c_out // groups, *kernel), generator=gen, dtype=torch.float64)
    expected = getattr(F, f"conv_transpose{ndim}d")(
        y, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation
    )
    got = direct_route(y, w, spec, groups)
    assert got.shape == expected.shape
    scale = max(expected.abs().max().item(), 1.0)
    assert (got - expected).abs().max().item() <= 1e-12 * scale


@settings(max_examples=300)
@given(
    ndim=st.integers(1, 3),
    data=st.data(),
    pooling=st.sampled_from(["conv", "avg_pool"]),
)
def test_coverage_counts_match_pytorch_gradients(ndim: int, data: st.DataObject, pooling: str) -> None:
    """With all-ones weights, d(sum y)/dx counts how often each (padded) input cell is read."""
    per = lambda lo, hi: data.draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel, stride = per(1, 4), per(1, 4)
    dilation = per(1, 3) if pooling == "conv" else (1,) * ndim
    pads = [tuple(data.draw(st.integers(0, k // 2 if pooling != "conv" else 3)) for _ in range(2)) for k in kernel]
    spatial = per(1, 9 if ndim < 3 else 5)
    spec = ConvSpec.create(f"{pooling}{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=pads)
    try:
        axes = coverage(spec, spatial)
    except ConvArithError:
        return
    x = torch.zeros((1, 1, *spatial), dtype=torch.float64, requires_grad=True)
    padded = F.pad(x, _flat_pads(pads))
    padded.retain_grad()
    if pooling == "conv":
        y = getattr(F, f"conv{ndim}d")(
            padded, torch.ones((1, 1, *kernel), dtype=torch.float64), stride=stride, dilation=dilation
        )
        scale = 1.0
    else:
        y = getattr(F, f"avg_pool{ndim}d")(padded, kernel, stride)
        scale = math.prod(kernel)
    y.sum().backward()
    grad = torch.round(x.grad[0, 0] * scale).long()  # type: ignore[index]
    expected = torch.ones((), dtype=torch.long)
    for n, axis in enumerate(axes):
        shape = [1] * ndim
        shape[n] = len(axis.reads)
        expected = expected * torch.tensor(axis.reads).reshape(shape)
    assert torch.equal(grad, expected.expand_as(grad))
    padded_grad = padded.grad[0, 0]  # type: ignore[index]
    for n, axis in enumerate(axes):
        line = padded_grad.abs().sum(dim=[d for d in range(ndim) if d != n]) if ndim > 1 else padded_grad.abs()
        read = (line > 0).tolist()
        before = min(read.index(True), pads[n][0])
        after = min(read[::-1].index(True), pads[n][1])
        assert axis.unread_pad == (before, after)


@settings(max_examples=300)
@given(ndim=st.integers(1, 3), data=st.data())
def test_overlap_counts_match_conv_transpose_of_ones(ndim: int, data: st.DataObject) -> None:
    per = lambda lo, hi: data.draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel, stride, dilation, padding = per(1, 5), per(1, 4), per(1, 3), per(0, 3)
    spatial = per(1, 6 if ndim < 3 else 3)
    spec = ConvSpec.create(
        f"conv_transpose{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=padding
    )
    try:
        axes = overlap(spec, spatial)
    except ConvArithError:
        return
    ones = torch.ones((1, 1, *spatial), dtype=torch.float64)
    y = getattr(F, f"conv_transpose{ndim}d")(
        ones, torch.ones((1, 1, *kernel), dtype=torch.float64), stride=stride, padding=padding, dilation=dilation
    )[0, 0]
    expected = torch.ones((), dtype=torch.float64)
    for n, axis in enumerate(axes):
        shape = [1] * ndim
        shape[n] = len(axis.counts)
        expected = expected * torch.tensor(axis.counts, dtype=torch.float64).reshape(shape)
        # interior phase counts: the counts away from both borders repeat with period s
        s, reach = stride[n], dilation[n] * (kernel[n] - 1)
        interior = axis.counts[reach : len(axis.counts) - reach]
        for q, count in enumerate(interior, start=reach):
            assert count == axis.phase_counts[q % s]
    assert torch.equal(y, expected.expand_as(y))


@settings(max_examples=300)
@given(ndim=st.integers(1, 3), data=st.data())
def test_transpose_of_maps_the_output_back_and_sizes_are_the_preimage(ndim: int, data: st.DataObject) -> None:
    per = lambda lo, hi: data.draw(st.tuples(*[st.integers(lo, hi)] * ndim))
    kernel, stride, dilation, padding = per(1, 4), per(1, 4), per(1, 2), per(0, 2)
    spatial = per(1, 9)
    spec = ConvSpec.create(f"conv{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=padding)
    try:
        out = spec.output_spatial(spatial)
    except ConvArithError:
        return
    back = transpose_of(spec, spatial)
    x = torch.zeros((1, 1, *out))
    w = torch.zeros((1, 1, *kernel))
    y = getattr(F, f"conv_transpose{ndim}d")(
        x, w, stride=stride, padding=padding, dilation=dilation, output_padding=back.output_padding
    )
    assert tuple(y.shape[2:]) == spatial
    # every size in the preimage, and only those, gives `out` through PyTorch's conv
    for n, sizes in enumerate(input_sizes_for_output(spec, out)):
        assert spatial[n] in sizes
        for i in range(1, max(sizes) + 3 * stride[n]):
            probe = list(spatial)
            probe[n] = i
            try:
                o = getattr(F, f"conv{ndim}d")(
                    torch.zeros((1, 1, *probe)), w, stride=stride, padding=padding, dilation=dilation
                )
                got = o.shape[2 + n]
            except RuntimeError:
                got = None
            assert (got == out[n]) == (i in sizes), (n, i, sizes)
    # output_padding choices: each gives the size PyTorch gives; consistent ones invert the conv
    transposed = ConvSpec.create(
        f"conv_transpose{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=padding
    )
    for n, choices in enumerate(output_padding_choices(transposed, out)):
        for choice in choices:
            ops = list(back.output_padding)
            ops[n] = choice.output_padding
            y = getattr(F, f"conv_transpose{ndim}d")(
                x, w, stride=stride, padding=padding, dilation=dilation, output_padding=ops
            )
            assert y.shape[2 + n] == choice.output
            assert choice.consistent == (choice.output in input_sizes_for_output(spec, out)[n])
