"""The solver: every solution is real (PyTorch agrees), and the ranking prefers what engineers pick."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, has_checkerboard_risk, solve

torch.set_num_threads(1)


def _torch_out(op: str, spec, i: int) -> int:  # type: ignore[no-untyped-def]
    ((pb, pa),) = spec.pads
    x = F.pad(torch.zeros((1, 1, i)), (pb, pa)) if op != "conv_transpose1d" else torch.zeros((1, 1, i))
    k, s, d, a = spec.kernel_size[0], spec.stride[0], spec.dilation[0], spec.output_padding[0]
    if op == "conv1d":
        return F.conv1d(x, torch.zeros((1, 1, k)), stride=s, dilation=d).shape[-1]
    if op == "max_pool1d":
        return F.max_pool1d(torch.zeros((1, 1, i)), k, s, pb, d).shape[-1]
    assert pb == pa, "PyTorch's ConvTranspose pads symmetrically"
    return F.conv_transpose1d(x, torch.zeros((1, 1, k)), stride=s, padding=pb, dilation=d, output_padding=a).shape[-1]


@settings(max_examples=60)
@given(op=st.sampled_from(["conv1d", "conv_transpose1d", "max_pool1d"]), i=st.integers(1, 40), o=st.integers(1, 80))
def test_every_solution_gives_the_wanted_size_in_pytorch(op: str, i: int, o: int) -> None:
    try:
        solutions = solve(op, i, o, limit=30)
    except ConvArithError:
        return
    assert solutions
    for sol in solutions:
        if sol.spec.transposed and sol.spec.pads[0][0] != sol.spec.pads[0][1]:
            continue
        if op == "max_pool1d" and sol.spec.pads[0][0] != sol.spec.pads[0][1]:
            continue
        assert _torch_out(op, sol.spec, i) == o
    penalties = [s.penalty for s in solutions]
    assert penalties == sorted(penalties)


def test_upsampling_by_two_prefers_kernels_that_are_multiples_of_the_stride() -> None:
    solutions = solve("conv_transpose2d", (16, 16), (32, 32), limit=10)
    top = solutions[0].spec
    assert top.stride == (2, 2) and top.kernel_size[0] % 2 == 0 and not has_checkerboard_risk(top)
    risky = [s for s in solutions if has_checkerboard_risk(s.spec)]
    assert all(any("checkerboard" in r for r in s.reasons) for s in risky)
    clean_rank = max(
        i for i, s in enumerate(solutions) if not has_checkerboard_risk(s.spec) and s.spec.dilation == (1, 1)
    )
    assert all(i > clean_rank or not has_checkerboard_risk(s.spec) for i, s in enumerate(solutions) if i <= clean_rank)


def test_fixed_parameters_are_respected_and_named_in_the_refusal() -> None:
    for sol in solve("conv2d", 224, 112, kernel_size=7):
        assert sol.spec.kernel_size == (7, 7)
    assert solve("conv2d", 224, 112, kernel_size=7)[0].spec.pads == ((3, 3), (3, 3))
    with pytest.raises(ConvArithError, match="output_size"):
        solve("conv2d", 4, 40, max_kernel=3)


def test_dropped_rows_rank_below_clean_solutions() -> None:
    solutions = solve("conv1d", 10, 5, limit=1000)
    first_dropping = next(
        i for i, s in enumerate(solutions) if any("never read" in r and "input" in r for r in s.reasons)
    )
    assert all("input cells never read" not in " ".join(s.reasons) for s in solutions[:first_dropping])
    assert first_dropping > 0


def test_different_axes_get_their_own_parameters() -> None:
    best = solve("conv2d", (32, 20), (16, 20))[0].spec
    assert best.output_spatial((32, 20)) == (16, 20)
    assert best.stride[1] == 1
