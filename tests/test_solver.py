"""The solver: every solution is real (PyTorch's own modules agree), the ranking prefers what engineers
pick, and every request is answered or refused — with the reason — quickly."""

from __future__ import annotations

import contextlib
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from convarith import ConvArithError, Layer, has_checkerboard_risk
from convarith.geometry.solver import CLEAN, PENALTIES, SEARCH_LIMIT, Solution, solve
from strategies import examples

torch.set_num_threads(1)


def torch_output(layer: Layer, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The output spatial sizes PyTorch's nn module gives for a solver's layer.

    Symmetric pads go to the module; a convolution's asymmetric pads through ``F.pad`` first. A
    transposed convolution with asymmetric pads (which nn.ConvTranspose cannot express) runs with
    padding 0 and its output is cropped by the pads, as the finding says.
    """
    n = layer.ndim
    x = torch.zeros((1, 1, *spatial))
    bound = layer.bind(spatial)
    pads, output_padding = bound.pads, bound.output_padding  # a policy resolved
    symmetric = all(b == a for b, a in pads)
    with torch.no_grad():
        if layer.kind == "conv":
            if symmetric:
                module = getattr(torch.nn, f"Conv{n}d")(
                    1, 1, layer.kernel_size, layer.stride, tuple(b for b, _ in pads), layer.dilation
                )
                return tuple(module(x).shape[2:])
            flat = [p for pair in reversed(pads) for p in pair]
            module = getattr(torch.nn, f"Conv{n}d")(1, 1, layer.kernel_size, layer.stride, 0, layer.dilation)
            return tuple(module(F.pad(x, flat)).shape[2:])
        if layer.transposed:
            cls = getattr(torch.nn, f"ConvTranspose{n}d")
            if symmetric:
                module = cls(
                    1,
                    1,
                    layer.kernel_size,
                    layer.stride,
                    tuple(b for b, _ in pads),
                    output_padding,
                    dilation=layer.dilation,
                )
                return tuple(module(x).shape[2:])
            full = cls(1, 1, layer.kernel_size, layer.stride, 0, output_padding, dilation=layer.dilation)(x)
            return tuple(size - b - a for size, (b, a) in zip(full.shape[2:], pads, strict=True))
        assert symmetric, f"a pool answer with pads {pads}"
        assert all(2 * b <= k for (b, _), k in zip(pads, layer.kernel_size, strict=True)), pads
        name = "MaxPool" if layer.kind == "max_pool" else "AvgPool"
        kw = {"dilation": layer.dilation} if layer.kind == "max_pool" else {}
        module = getattr(torch.nn, f"{name}{n}d")(
            layer.kernel_size, layer.stride, tuple(b for b, _ in pads), ceil_mode=layer.ceil_mode, **kw
        )
        return tuple(module(x).shape[2:])


def _check_solutions(solutions: list[Solution], op: str, spatial: tuple[int, ...], wanted: tuple[int, ...]) -> None:
    assert solutions
    for sol in solutions:
        assert sol.layer.op == op and sol.spec is sol.layer
        assert torch_output(sol.layer, spatial) == wanted, sol.layer
        assert not any(f.severity == "error" for f in sol.findings)
        messages = {f.message for f in sol.findings}
        assert sol.reasons == (CLEAN,) or set(sol.reasons) <= messages
        assert sol.findings == sol.layer.bind(spatial).findings(framework="torch")
    penalties = [s.penalty for s in solutions]
    assert penalties == sorted(penalties)


ops_1d = st.sampled_from(["conv1d", "conv_transpose1d", "max_pool1d", "avg_pool1d"])


@examples(60)
@given(op=ops_1d, i=st.integers(1, 40), factor=st.sampled_from([0.25, 0.5, 1, 2, 3]), shift=st.integers(-2, 2))
def test_every_solution_gives_the_wanted_size_in_pytorch(op: str, i: int, factor: float, shift: int) -> None:
    o = max(1, int(i * factor) + shift)
    ceil_mode = op.endswith("pool1d") and shift % 2 == 0
    try:
        solutions = solve(op, i, o, limit=30, ceil_mode=ceil_mode)
    except ConvArithError as err:
        # a refusal is for the size alone here, never a crash or another parameter
        assert err.param == "output_size", err
        assert f"maps {i} to {o}" in str(err)
    else:
        _check_solutions(solutions, op, (i,), (o,))


@examples(40)
@given(op=st.sampled_from(["conv1d", "max_pool1d"]), i=st.integers(1, 12), o=st.integers(1, 14))
def test_the_solver_misses_nothing_pytorch_would_accept(op: str, i: int, o: int) -> None:
    """Brute force with PyTorch over the documented search space: a solution exists iff the solver finds one."""
    x = torch.zeros((1, 1, i))
    exists = False
    for k in range(1, 8):
        for s in range(1, 5):
            for d in range(1, 4):
                if op == "conv1d":
                    w = torch.zeros((1, 1, k))
                    for total in range(2 * d * (k - 1) + 1):
                        padded = F.pad(x, (total // 2, total - total // 2))
                        if padded.shape[-1] >= d * (k - 1) + 1:
                            exists |= F.conv1d(padded, w, stride=s, dilation=d).shape[-1] == o
                else:
                    for p in range(k // 2 + 1):
                        with contextlib.suppress(RuntimeError):  # PyTorch refuses an output of size 0
                            exists |= F.max_pool1d(x, k, s, p, d).shape[-1] == o
    try:
        found = solve(op, i, o, limit=1)
    except ConvArithError as err:
        assert err.param == "output_size"
        assert not exists
    else:
        assert exists and torch_output(found[0].layer, (i,)) == (o,)


@pytest.mark.parametrize(
    ("op", "spatial", "wanted", "options"),
    [
        ("conv2d", (32, 20), (16, 20), {}),
        ("conv3d", (9, 8, 7), (5, 8, 3), {}),
        ("conv_transpose2d", (16, 15), (32, 30), {"limit": 40}),
        ("conv_transpose3d", (4, 5, 6), (8, 10, 11), {}),
        ("max_pool2d", (7, 8), (4, 4), {"ceil_mode": True, "limit": 50}),
        ("max_pool3d", (7, 9, 6), (3, 4, 3), {}),
        ("avg_pool2d", (7, 9), (4, 3), {"ceil_mode": True, "limit": 50}),
        ("avg_pool3d", (3, 5, 4), (1, 2, 2), {"limit": 50}),
        ("conv2d", (10, 9), (10, 9), {"padding": "same", "limit": 30}),
        ("conv1d", 23, 12, {"padding": "same_tf", "stride": 2}),
        ("conv_transpose1d", 5, 10, {"padding": "same_tf"}),
    ],
)
def test_nd_solutions_give_the_wanted_size_in_pytorch(op: str, spatial, wanted, options) -> None:  # type: ignore[no-untyped-def]
    ndim = int(op[-2])
    spatial = spatial if isinstance(spatial, tuple) else (spatial,) * ndim
    wanted = wanted if isinstance(wanted, tuple) else (wanted,) * ndim
    _check_solutions(solve(op, spatial, wanted, **options), op, spatial, wanted)


# -- regressions of issue 7 (each failed on the old solver) -------------------------------------------------


@pytest.mark.parametrize("op", ["max_pool1d", "max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pools_are_answered_only_with_pads_a_pytorch_pool_accepts(op: str, ceil_mode: bool) -> None:
    for i, o in ((7, 4), (8, 3), (10, 5), (5, 5)):
        try:
            solutions = solve(op, i, o, ceil_mode=ceil_mode, limit=100)
        except ConvArithError as err:
            assert err.param == "output_size"
            continue
        for sol in solutions:
            pads = sol.layer.pads
            assert all(b == a and 2 * b <= k for (b, a), k in zip(pads, sol.layer.kernel_size, strict=True))
        _check_solutions(solutions, op, (i,) * sol.layer.ndim, (o,) * sol.layer.ndim)
    with pytest.raises(ConvArithError, match="symmetric") as err:
        solve(op, 8, 4, padding=[(0, 1)] * int(op[-2]))
    assert err.value.param == "padding"


def test_asymmetric_transposed_padding_ranks_below_the_standard_answers() -> None:
    solutions = solve("conv_transpose2d", 16, 32, limit=500)
    layers = [s.layer for s in solutions]
    standard = [
        layers.index(Layer("conv_transpose2d", kernel_size=4, stride=2, padding=1)),
        layers.index(Layer("conv_transpose2d", kernel_size=3, stride=2, padding=1, output_padding=1)),
    ]
    asymmetric = [n for n, layer in enumerate(layers) if any(b != a for b, a in layer.pads)]
    assert asymmetric and min(asymmetric) > max(standard)
    for n in asymmetric:
        assert any(f.code == "inexpressible-padding" for f in solutions[n].findings)
        assert any("crop of the output" in r for r in solutions[n].reasons)


@pytest.mark.parametrize("param", ["kernel_size", "stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (3, 0)])
def test_a_fixed_parameter_below_one_is_refused_by_name(param: str, value: object) -> None:
    with pytest.raises(ConvArithError) as err:
        solve("conv2d", 32, 16, **{param: value})  # type: ignore[arg-type]
    assert err.value.param == param


@pytest.mark.parametrize(
    ("op", "options", "param", "words"),
    [
        ("conv2d", {"output_padding": 1}, "output_padding", "transposed"),
        ("max_pool2d", {"output_padding": 1}, "output_padding", "transposed"),
        ("avg_pool2d", {"dilation": 2}, "dilation", "avg_pool"),
        ("conv2d", {"padding": "same", "stride": 2}, "padding", "stride 1"),
        ("conv1d", {"ceil_mode": True}, "ceil_mode", "pooling"),
        ("conv_transpose1d", {"padding": "same"}, "padding", "transposed"),
        ("conv_transpose1d", {"output_padding": 9}, "output_padding", "smaller than stride or dilation"),
        ("max_pool1d", {"padding": 5, "kernel_size": 3}, "padding", "half the kernel"),
    ],
)
def test_impossible_requests_get_the_reason(op: str, options: dict[str, object], param: str, words: str) -> None:
    with pytest.raises(ConvArithError, match=words) as err:
        solve(op, 16, 8, **options)  # type: ignore[arg-type]
    assert err.value.param == param
    assert not err.value.rule.startswith("no ")  # the reason, not the generic "no solution"


def test_the_no_solution_message_names_only_the_bounds_in_play() -> None:
    with pytest.raises(ConvArithError) as err:
        solve("conv2d", 4, 40, kernel_size=3)
    message = str(err.value)
    assert err.value.param == "output_size" and "kernel_size 3" in message
    assert "max_kernel" not in message and "max_stride" in message
    with pytest.raises(ConvArithError) as err:
        solve("avg_pool1d", 4, 40)
    assert "max_dilation" not in str(err.value) and "max_kernel" in str(err.value)
    with pytest.raises(ConvArithError) as err:
        solve("conv1d", 4, 40, kernel_size=3, stride=1, dilation=1)
    assert not any(f"max_{name}" in str(err.value) for name in ("kernel", "stride", "dilation"))


def test_oversize_searches_are_refused_up_front_with_the_number() -> None:
    start = time.perf_counter()
    with pytest.raises(ConvArithError) as err:
        solve("conv2d", 100000, 1, max_kernel=100000)
    assert time.perf_counter() - start < 0.5
    assert err.value.param == "max_kernel"
    assert "4,800,000" in str(err.value) and f"{SEARCH_LIMIT:,}" in str(err.value)
    assert "kernel_size" in str(err.value)  # fixing it is one way out


@pytest.mark.parametrize(
    ("op", "spatial", "wanted", "options"),
    [
        ("conv2d", 100000, 50000, {}),
        ("conv3d", (100000, 99999, 99998), (50000, 33333, 25000), {}),
        ("conv_transpose3d", (100000, 99999, 99998), (200000, 199998, 300000), {}),
        ("max_pool3d", (100000, 4000, 3999), (50000, 2000, 1333), {"ceil_mode": True}),
        ("conv2d", 224, 112, {"max_kernel": 1000}),
        ("conv1d", 100000, 1, {"max_kernel": 7}),
    ],
)
def test_large_accepted_requests_answer_quickly(op: str, spatial, wanted, options) -> None:  # type: ignore[no-untyped-def]
    """Budget: 1 s per request (the issue's bound); asserted loosely at 2 s for a loaded machine."""
    start = time.perf_counter()
    try:
        solve(op, spatial, wanted, **options)
    except ConvArithError as err:
        assert err.param == "output_size"
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("name", ["max_kernel", "max_stride", "max_dilation", "limit"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bounds_and_limit_are_validated(name: str, value: object) -> None:
    with pytest.raises(ConvArithError) as err:
        solve("conv2d", 8, 4, **{name: value})  # type: ignore[arg-type]
    assert err.value.param == name


@pytest.mark.parametrize(("param", "value"), [("input_size", 0), ("output_size", (4, 4, 4)), ("input_size", "8")])
def test_sizes_are_validated(param: str, value: object) -> None:
    sizes = {"input_size": 8, "output_size": 4} | {param: value}
    with pytest.raises(ConvArithError) as err:
        solve("conv2d", **sizes)  # type: ignore[arg-type]
    assert err.value.param == param


# -- ranking ---------------------------------------------------------------------------------------------


def test_upsampling_by_two_prefers_kernels_that_are_multiples_of_the_stride() -> None:
    solutions = solve("conv_transpose2d", (16, 16), (32, 32), limit=10)
    top = solutions[0].layer
    assert top.stride == (2, 2) and top.kernel_size[0] % 2 == 0 and not has_checkerboard_risk(top)
    for sol in solutions:
        uneven = any(f.code == "uneven-overlap" for f in sol.findings)
        assert uneven == has_checkerboard_risk(sol.layer)
        assert not uneven or any("uneven overlap" in r for r in sol.reasons)


def test_fixed_parameters_are_respected() -> None:
    solutions = solve("conv2d", 224, 112, kernel_size=7)
    assert all(sol.layer.kernel_size == (7, 7) for sol in solutions)
    assert solutions[0].layer == Layer("conv2d", kernel_size=7, stride=2, padding=3)
    kept = solve("conv1d", 23, 12, padding="same_tf")
    assert all(sol.layer.padding == "same_tf" for sol in kept)


def test_dropped_rows_rank_below_solutions_that_read_everything() -> None:
    solutions = solve("conv1d", 10, 5, limit=1000)
    dropping = [n for n, s in enumerate(solutions) if any(f.code == "dropped-input" for f in s.findings)]
    reading = [n for n, s in enumerate(solutions) if not any("input" in f.code for f in s.findings)]
    assert dropping and reading and min(dropping) > min(reading)
    assert solutions[dropping[0]].penalty - solutions[0].penalty >= PENALTIES["dropped-input"].weight - 2


def test_different_axes_get_their_own_parameters_and_equal_axes_the_same() -> None:
    best = solve("conv2d", (32, 20), (16, 20))[0].layer
    assert best.bind((32, 20)).output_spatial == (16, 20)
    assert best.stride[1] == 1
    for sol in solve("conv3d", (8, 8, 8), (4, 4, 4)):
        assert len(set(sol.layer.kernel_size)) == len(set(sol.layer.stride)) == 1


def test_penalty_is_the_table_over_the_findings() -> None:
    sol = solve("conv_transpose1d", 16, 32, kernel_size=3, stride=2, padding=1)[0]
    assert sol.layer.output_padding == (1,)
    codes = sorted(f.code for f in sol.findings)
    assert codes == ["output-padding-choice", "uneven-overlap"]
    assert sol.penalty == pytest.approx(
        PENALTIES["uneven-overlap"].weight + PENALTIES["output-padding-choice"].weight + 0.3 * 2
    )
