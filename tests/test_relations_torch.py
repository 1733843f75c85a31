"""The transposed relation, coverage and overlap, checked against PyTorch's real ops and autograd.

Every test draws from the shared strategies and filters with ``assume`` (never a bare ``return``),
so hypothesis counts the rejected draws; ``--hypothesis-show-statistics`` shows that more than
90 % of the examples reach the assertions.
"""

from __future__ import annotations

import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from convarith import BoundLayer, ConvArithError, Layer, coverage, overlap, transpose_of
from convarith.geometry import input_sizes_for_output, output_padding_choices
from oracle_torch import Unsupported, random_arrays, run_torch, torch_read_counts
from strategies import bound_layers, examples, layers, seeds, torch_errors


def stretch(y: torch.Tensor, zeros_between: tuple[int, ...]) -> torch.Tensor:
    """Insert ``s − 1`` zeros between neighbouring cells of every spatial axis (the guide's §4.3)."""
    ndim = len(zeros_between)
    sizes = [(n - 1) * (z + 1) + 1 for n, z in zip(y.shape[2:], zeros_between, strict=True)]
    out = y.new_zeros((*y.shape[:2], *sizes))
    out[(..., *(slice(None, None, z + 1) for z in zeros_between))] = y
    assert out.dim() == ndim + 2
    return out


def rotate_and_swap(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The kernel rotated by 180° with its in/out channel axes swapped within each group."""
    c_in, c_out_g, *k = weight.shape
    rotated = weight.flip(list(range(2, weight.dim())))
    return (
        rotated.reshape(groups, c_in // groups, c_out_g, *k)
        .transpose(1, 2)
        .reshape(groups * c_out_g, c_in // groups, *k)
    )


def _outer(per_axis: list[tuple[int, ...]], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    result = torch.ones((), dtype=dtype)
    for n, counts in enumerate(per_axis):
        shape = [1] * len(per_axis)
        shape[n] = len(counts)
        result = result * torch.tensor(counts, dtype=dtype).reshape(shape)
    return result


def _single_channel(bound: BoundLayer) -> BoundLayer:
    layer = bound.layer
    if layer.weighted:
        layer = layer.replace(in_channels=1, out_channels=1, groups=1)
    else:
        layer = layer.replace(in_channels=None, out_channels=None)
    return layer.bind(bound.input_spatial)


transposed = bound_layers(layers(kinds=["conv_transpose"]))
direct = bound_layers(layers(kinds=["conv"]))


@examples(600)
@given(transposed, seeds)
# p′ = (−2, 2): a crop wider than the one stretched cell, with padding after (found by CI)
@example(Layer("conv_transpose1d", kernel_size=1, dilation=3, padding=[(2, 0)], output_padding=2).bind((1,)), 0)
def test_equivalent_direct_convolution_reproduces_conv_transpose(bound: BoundLayer, seed: int) -> None:
    """``bound.direct()``: stretch, pad p′ (crop where negative), rotate + swap, stride-1 conv — PyTorch's
    conv_transpose to 1e-12 in float64, for every transposed layer PyTorch runs (policies, asymmetric pads)."""
    assume(not torch_errors(bound.layer, bound.input_shape))
    x, w, b = random_arrays(bound, seed)
    assert w is not None
    expected = run_torch(bound, x, w, b)
    eq = bound.direct()
    assert eq.conv.layer.stride == (1,) * bound.ndim
    got = run_torch(eq.conv, stretch(x, eq.zeros_between), rotate_and_swap(w, bound.layer.groups), b)
    assert got.shape == expected.shape
    scale = max(expected.abs().max().item(), 1.0)
    assert (got - expected).abs().max().item() <= 1e-12 * scale


@examples(600)
@given(
    st.one_of(
        direct,
        bound_layers(
            layers(kinds=["max_pool", "avg_pool"], max_dilation=1).map(lambda la: la.replace(ceil_mode=False))
        ),
    )
)
def test_coverage_counts_match_autograd(bound: BoundLayer) -> None:
    """Every padding mode and crops: reads[cell] is the gradient of sum(conv(x, ones)); a cell read only
    through reflect / replicate / circular padding counts as read; cropped cells are never read."""
    one = _single_channel(bound)
    try:
        grad, padded_grad = torch_read_counts(one)
    except Unsupported:
        assume(False)
    axes = coverage(one)
    assert torch.equal(grad, _outer([ax.reads for ax in axes]).expand_as(grad))
    for n, ax in enumerate(axes):
        others = [d for d in range(one.ndim) if d != n]
        line = padded_grad.abs().sum(dim=others) if others else padded_grad.abs()
        before, after = (max(p, 0) for p in one.pads[n])
        unread_before = int((line[:before] == 0).sum())
        unread_after = int((line[len(line) - after :] == 0).sum()) if after else 0
        assert ax.unread_pad == (unread_before, unread_after)
        crop_before, crop_after = (max(-p, 0) for p in one.pads[n])
        assert ax.cropped == (crop_before, crop_after)
        if one.layer.padding_mode != "reflect":
            # F.pad's reflect mirrors over the whole input, so its padding may read a cropped cell
            # (pads (1, -1) of [a, b] give [b, a]); the other modes never do.
            assert all(ax.reads[c] == 0 for c in range(crop_before))
            assert all(ax.reads[len(ax.reads) - 1 - c] == 0 for c in range(crop_after))


@examples(600)
@given(transposed)
def test_overlap_counts_match_conv_transpose_of_ones(bound: BoundLayer) -> None:
    """counts[q] is the output of conv_transpose(ones, ones); interior cells repeat the phase counts."""
    one = _single_channel(bound)
    ones = torch.ones((1, 1, *one.input_spatial), dtype=torch.float64)
    y = run_torch(one, ones, torch.ones(one.weight_shape or (), dtype=torch.float64))[0, 0]
    axes = overlap(one)
    assert torch.equal(y, _outer([ax.counts for ax in axes]).expand_as(y))
    for n, ax in enumerate(axes):
        g = one.axes[n]
        # output q lies away from both borders when every tap of it comes from a real input cell
        for q, count in enumerate(ax.counts):
            first = q + g.pad[0] - g.reach
            last = q + g.pad[0]
            if first >= 0 and last <= (g.input - 1) * g.stride:
                assert count == ax.phase_counts[q % g.stride]


@examples(400)
@given(direct)
def test_transpose_of_maps_the_output_back_and_sizes_are_the_preimage(bound: BoundLayer) -> None:
    back = transpose_of(bound)
    assert back.padding_mode == "zeros"
    back_bound = back.bind(bound.output_shape)
    assert back_bound.output_spatial == bound.input_spatial
    layer = bound.layer.replace(padding=bound.pads)
    # every size in the preimage, and only those, gives the output (the layer-first geometry)
    for n, sizes in enumerate(input_sizes_for_output(layer, bound.output_spatial)):
        axis = layer.axis(n).replace(in_channels=None, out_channels=None, groups=1)
        assert bound.input_spatial[n] in sizes
        for i in range(1, max(sizes) + 3 * layer.stride[n]):
            try:
                got = axis.bind((i,)).output_spatial[0]
            except ConvArithError:
                got = None
            assert (got == bound.output_spatial[n]) == (i in sizes), (n, i, sizes)


@examples(400)
@given(bound_layers(layers(kinds=["conv_transpose"], policies=False, crops=False, asymmetric=False)))
def test_output_padding_choices_are_what_pytorch_accepts(bound: BoundLayer) -> None:
    """Each choice is accepted by PyTorch with the size it gives; the others PyTorch refuses;
    'consistent' ⇔ the direct convolution maps that size back to this input."""
    assume(not torch_errors(bound.layer.replace(output_padding=0), bound.input_shape))
    layer = bound.layer
    one = _single_channel(bound)
    direct_layer = Layer(
        f"conv{bound.ndim}d",
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
    )
    x = torch.zeros((1, 1, *one.input_spatial))
    w = torch.zeros((1, 1, *layer.kernel_size))
    fn = getattr(torch.nn.functional, f"conv_transpose{bound.ndim}d")
    pads = tuple(b for b, _ in one.pads)
    for n, choices in enumerate(output_padding_choices(one)):
        offered = {c.output_padding: c for c in choices}
        for a in range(max(layer.stride[n], layer.dilation[n]) + 1):
            ops = [0] * bound.ndim
            ops[n] = a
            try:
                size = fn(x, w, stride=layer.stride, padding=pads, dilation=layer.dilation, output_padding=ops).shape[
                    2 + n
                ]
            except RuntimeError:
                size = None
            if a not in offered:
                assert size is None or size < 1, (n, a)
                continue
            assert size == offered[a].output
            try:
                maps_back = direct_layer.axis(n).bind((size,)).output_spatial[0] == one.input_spatial[n]
            except ConvArithError:
                maps_back = False
            assert offered[a].consistent == maps_back


def test_run_torch_crop_path_agrees_with_pytorchs_own_padding() -> None:
    """The oracle's full-output-then-crop route for transposed pads equals PyTorch's own keyword."""
    bound = Layer("conv_transpose2d", 2, 4, kernel_size=3, stride=2, padding=((1, 1), (2, 2)), output_padding=1).bind(
        (1, 2, 4, 5)
    )
    x, w, b = random_arrays(bound, 3)
    assert w is not None
    own = torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=(1, 2), output_padding=1)
    eq = bound.direct()
    routed = run_torch(eq.conv, stretch(x, eq.zeros_between), rotate_and_swap(w, 1), b)
    assert torch.allclose(own, routed, rtol=0, atol=1e-12)
    try:
        run_torch(Layer("max_pool1d", kernel_size=2, padding=[(0, 1)], ceil_mode=True).bind((5,)), torch.zeros(1, 1, 5))
    except Unsupported:
        pass
    else:
        raise AssertionError("ceil_mode over asymmetric pads is not PyTorch's own rule")
