"""Model analysis against PyTorch: every exact field is the support of an input gradient, the
closed-form fields hold in the interior, coverage is where no gradient reaches, the overlap of a
stack is what all-ones weights give."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convarith.analysis import analyze  # noqa: E402
from convarith.analysis.axes import Periodic  # noqa: E402
from models_torch import Step, build, field_by_gradient, overlap_by_ones, steps  # noqa: E402
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
