"""Findings against the frameworks: each code appears exactly where PyTorch shows the fact.

- ``dropped-input`` / ``unread-input`` / ``cropped-input`` ⇔ autograd gives those input cells a zero
  gradient; ``unread-padding`` ⇔ the padded copy's gradient is zero there;
- ``uneven-overlap`` / ``empty-phase`` ⇔ ``conv_transpose`` of ones (interior phases unequal / zero);
- ``output-padding-choice`` sizes ⇔ the sizes PyTorch gives for each ``output_padding < stride``;
- :func:`read_summary` (``O(k log k)``) ⇔ the per-cell :func:`axis_coverage`, large axes included;
- every code of ``MESSAGES`` is documented in ``docs/findings.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from convarith import BoundLayer, Layer
from convarith.findings import MESSAGES, Finding, finding
from convarith.geometry.bound import AxisGeometry
from convarith.geometry.coverage import axis_coverage, read_summary
from oracle_torch import Unsupported, run_torch, torch_read_counts
from strategies import bound_layers, examples, layers

POOLS = ["max_pool", "avg_pool"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "findings.md"


def _by_code(found: tuple[Finding, ...], axis: int) -> dict[str, Finding]:
    return {f.code: f for f in found if f.axis == axis}


def _single(bound: BoundLayer) -> BoundLayer:
    layer = bound.layer
    if layer.weighted:
        return layer.replace(in_channels=1, out_channels=1, groups=1).bind(bound.input_spatial)
    return layer.replace(in_channels=None, out_channels=None).bind(bound.input_spatial)


@examples(500)
@given(
    st.one_of(
        bound_layers(layers(kinds=["conv"])),
        bound_layers(
            layers(kinds=["max_pool", "avg_pool"], max_dilation=1).map(lambda la: la.replace(ceil_mode=False))
        ),
    )
)
def test_unread_cells_are_the_cells_autograd_gives_no_gradient(bound: BoundLayer) -> None:
    one = _single(bound)
    try:
        grad, padded_grad = torch_read_counts(one)
    except Unsupported:
        assume(False)
    found = one.findings()
    unread_axes = []
    for n, ax in enumerate(one.axes):
        codes = _by_code(found, n)
        before, after = (max(-p, 0) for p in ax.pad)
        crop = [*range(before), *range(ax.input - after, ax.input)]
        cropped = codes["cropped-input"].data["cells"] if "cropped-input" in codes else []
        assert isinstance(cropped, list) and set(cropped) <= set(crop)
        if one.layer.padding_mode != "reflect":  # reflect may read a cropped cell through its mirror
            assert cropped == crop
        dropped = codes["dropped-input"].data["cells"] if "dropped-input" in codes else []
        inner = codes["unread-input"].data["cells"] if "unread-input" in codes else []
        assert isinstance(dropped, list) and isinstance(inner, list)
        if dropped:  # the floor's loss: the last cells read by no window, after the last one read
            assert dropped == list(range(dropped[0], ax.input - after))
        unread = torch.zeros(ax.input, dtype=torch.bool)
        unread[[*cropped, *dropped, *inner]] = True
        shape = [1] * one.ndim
        shape[n] = ax.input
        unread_axes.append(unread.reshape(shape))
    # an input cell gets no gradient ⇔ it is unread on some axis
    mask = torch.zeros(grad.shape, dtype=torch.bool)
    for unread in unread_axes:
        mask = mask | unread
    assert torch.equal(grad == 0, mask)
    # (when some axis reads nothing at all, the padding counts are not visible in the gradient)
    for n, ax in enumerate(one.axes if bool((padded_grad != 0).any()) else ()):
        codes = _by_code(found, n)
        others = [d for d in range(one.ndim) if d != n]
        pline = padded_grad.abs().sum(dim=others) if others else padded_grad.abs()
        pb, pa = (max(p, 0) for p in ax.pad)
        unread_pad = (int((pline[:pb] == 0).sum()), int((pline[len(pline) - pa :] == 0).sum()) if pa else 0)
        if "unread-padding" in codes:
            assert (codes["unread-padding"].data["before"], codes["unread-padding"].data["after"]) == unread_pad
        else:
            assert unread_pad == (0, 0)


@examples(400)
@given(bound_layers(layers(kinds=["conv_transpose"], max_stride=4)))
def test_uneven_overlap_and_empty_phases_are_conv_transpose_of_ones(bound: BoundLayer) -> None:
    layer = bound.layer.replace(in_channels=1, out_channels=1, groups=1)
    found = layer.bind(bound.input_spatial).findings()
    # a long input, so that every phase has interior cells (policies resolve the same whatever the size)
    n_in = [(2 * ax.reach + abs(ax.pad[0]) + abs(ax.pad[1])) // ax.stride + 8 for ax in bound.axes]
    long = layer.bind(tuple(n_in))
    ones = torch.ones((1, 1, *n_in), dtype=torch.float64)
    y = run_torch(long, ones, torch.ones(long.weight_shape or (), dtype=torch.float64))[0, 0]
    for n, ax in enumerate(long.axes):
        others = [d for d in range(long.ndim) if d != n]
        # the N-d output is the outer product of per-axis counts: summing out the others keeps their ratios
        line = y.sum(dim=others) if others else y
        interior = {}
        for q in range(len(line)):
            if q + ax.pad[0] - ax.reach >= 0 and q + ax.pad[0] <= (ax.input - 1) * ax.stride:
                interior.setdefault(q % ax.stride, set()).add(float(line[q]))
        assert len(interior) == ax.stride and all(len(v) == 1 for v in interior.values())
        levels = [next(iter(interior[r])) for r in range(ax.stride)]
        assert max(levels) > 0
        codes = _by_code(found, n)
        assert ("empty-phase" in codes) == (0 in levels)
        assert ("uneven-overlap" in codes) == (0 not in levels and min(levels) != max(levels))
        if "empty-phase" in codes:
            assert codes["empty-phase"].data["phases"] == [r for r, v in enumerate(levels) if v == 0]


@examples(300)
@given(
    bound_layers(
        layers(kinds=["conv_transpose"], ndims=[1], policies=False, asymmetric=False, crops=False, max_stride=4)
    )
)
def test_output_padding_choice_sizes_are_pytorchs(bound: BoundLayer) -> None:
    layer = bound.layer
    found = _by_code(bound.findings(), 0)
    ax = bound.axes[0]
    assume(ax.stride > 1)
    choice = found.get("output-padding-choice")
    sizes = None if choice is None else choice.data["sizes"]
    x = torch.zeros((1, 1, *bound.input_spatial))
    w = torch.zeros((1, 1, *layer.kernel_size))
    theirs = []
    for a in range(ax.stride):
        ops = list(bound.output_padding)
        ops[0] = a
        pads = tuple(b for b, _ in bound.pads)
        try:
            y = getattr(F, f"conv_transpose{bound.ndim}d")(
                x, w, stride=layer.stride, padding=pads, dilation=layer.dilation, output_padding=ops
            )
            theirs.append(y.shape[2])
        except RuntimeError:
            pass  # an empty output
    # the sizes PyTorch gives for output_padding 0 … s − 1 (a choice only when there are several)
    assert sizes == theirs or (sizes is None and len(theirs) <= 1)


@st.composite
def large_axes(draw: st.DrawFn) -> AxisGeometry:
    """Direct axes up to a few thousand cells, strides and kernels up to 60, pads −3 … 60."""
    k, s, d = draw(st.integers(1, 60)), draw(st.integers(1, 60)), draw(st.integers(1, 5))
    pads = (draw(st.integers(-3, 60)), draw(st.integers(-3, 60)))
    i = draw(st.integers(max(1, -min(pads[0], 0) - min(pads[1], 0) + 1), 5000))
    layer = Layer("conv1d", kernel_size=k, stride=s, dilation=d, padding=[pads])
    assume(i + sum(pads) >= d * (k - 1) + 1)
    return layer.bind((i,)).axes[0]


@examples(1000)
@given(st.one_of(large_axes(), bound_layers(layers(kinds=["conv", "max_pool"], ndims=[1], modes=("zeros",))).map(
    lambda b: b.axes[0]
)))  # fmt: skip
def test_read_summary_is_the_per_cell_coverage(ax: AxisGeometry) -> None:
    cov = axis_coverage(ax)
    summary = read_summary(ax)
    read = [c for c, n in enumerate(cov.reads) if n]
    assert summary.unread_input == len(cov.unread_input)
    assert summary.dropped_tail == cov.dropped_tail
    assert summary.dropped_head == (read[0] if read else ax.input)
    assert summary.unread_pad == cov.unread_pad


def test_every_code_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    assert set(MESSAGES) <= documented, sorted(set(MESSAGES) - documented)
    table_severity = dict(
        re.findall(r"^\| `([a-z-]+)` \| (error|warning|info) \|", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    )
    assert {code: severity for code, (severity, _) in MESSAGES.items()} == {c: table_severity[c] for c in MESSAGES}


def test_every_message_template_renders_from_its_data() -> None:
    """Each template's fields are the documented data (a missing key would raise KeyError)."""
    text = DOCS.read_text(encoding="utf-8")
    for code, (_, template) in MESSAGES.items():
        row = re.search(rf"^\| `{re.escape(code)}` \| \w+ \| ([^|]*) \|", text, flags=re.MULTILINE)
        assert row is not None, code
        fields = set(re.findall(r"\{(\w+)\}", template)) - {"axis", "param", "framework"}
        data = set(re.findall(r"`(\w+)`", row.group(1)))
        assert fields <= data, (code, fields - data)
        if code != "refused":
            rendered = finding(code, 0, **dict.fromkeys(fields, 1))
            assert "{" not in rendered.message
