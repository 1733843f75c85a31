"""Every route of the reference ops and operators against PyTorch: FFT, phases, Winograd, depthwise taps, auto.

float64 results equal PyTorch's to 1e-12 relative (max abs error / max |reference|), float32 to
1e-5; every operator route passes the dot test to 1e-12 and its adjoint equals PyTorch's autograd.
Layers are drawn layer-first (crops, negative transposed pads, any padding mode) and run by
PyTorch through the oracle; dedicated strategies draw the shapes each route exists for (large
kernels, depthwise groups, strided transposed kernels).
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from convarith import BoundLayer, ConvArithError, Layer
from convarith.ops import routes
from convarith.ops.operator import OPERATOR_METHODS, conv_operator, dot_test
from convarith.ops.reference import CONV_ROUTES, CONV_TRANSPOSE_ROUTES, conv, conv_transpose
from oracle_torch import Unsupported, run_torch
from strategies import bind_or_reject, depthwise_layers, torch_bound_layers

torch.set_num_threads(1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
FAST_CONV = tuple(r for r in CONV_ROUTES if r not in ("matrix", "winograd"))
FAST_TRANSPOSE = tuple(r for r in CONV_TRANSPOSE_ROUTES if r not in ("matrix", "direct", "scatter", "winograd"))


def fast_routes(bound: BoundLayer) -> tuple[str, ...]:
    """The fast routes that compute ``bound`` (Winograd's F(2, 3) only where it applies)."""
    general = FAST_TRANSPOSE if bound.transposed else FAST_CONV
    return (*general, "winograd") if routes.winograd_fits(bound) else general


def arrays(bound: BoundLayer, seed: int, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    assert bound.weight_shape is not None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *bound.sample_input_shape)).astype(dtype)
    return x, rng.standard_normal(bound.weight_shape).astype(dtype)


def torch_of(bound: BoundLayer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    try:
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            return np.asarray(run_torch(bound, torch.from_numpy(x), torch.from_numpy(w)).numpy())
    except (Unsupported, RuntimeError):  # beyond what PyTorch runs (reflect wider than the input)
        assume(False)
        raise


def assert_close(got: np.ndarray, expected: np.ndarray, dtype: Any = np.float64) -> None:
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype == dtype
    error = float(np.abs(got - expected).max(initial=0.0))
    assert error <= TOLERANCE[dtype] * float(np.abs(expected).max(initial=0.0)), (error, np.abs(expected).max())


def run(bound: BoundLayer, x: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    op = conv_transpose if bound.transposed else conv
    return op(x, w, layer=bound, method=method)


def batched(bound: BoundLayer) -> BoundLayer:
    return bound.layer.bind((2, *bound.sample_input_shape))


# -- every route on any layer ------------------------------------------------------------------


@settings(max_examples=150)
@given(torch_bound_layers(kinds=("conv", "conv_transpose")), st.data(), st.integers(0, 2**32 - 1))
def test_every_fast_route_equals_pytorch_on_any_layer(bound: BoundLayer, data: Any, seed: int) -> None:
    bound = batched(bound)
    method = data.draw(st.sampled_from(fast_routes(bound)))
    event(f"{bound.kind} {method}")
    x, w = arrays(bound, seed)
    assert_close(run(bound, x, w, method), torch_of(bound, x, w))


@settings(max_examples=60)
@given(torch_bound_layers(kinds=("conv", "conv_transpose")), st.data(), st.integers(0, 2**32 - 1))
def test_every_fast_route_in_float32(bound: BoundLayer, data: Any, seed: int) -> None:
    bound = batched(bound)
    method = data.draw(st.sampled_from(fast_routes(bound)))
    x, w = arrays(bound, seed, np.float32)
    expected = torch_of(bound, x.astype(np.float64), w.astype(np.float64)).astype(np.float32)
    assert_close(run(bound, x, w, method), expected, np.float32)


# -- the shapes each route exists for --------------------------------------------------------------


@st.composite
def large_kernels(draw: st.DrawFn) -> BoundLayer:
    """Kernels up to 40 taps (1-d) or 12×12, with strides, dilations, groups, pads and padding modes."""
    ndim = draw(st.integers(1, 2))
    top = 40 if ndim == 1 else 12
    kernel = tuple(draw(st.integers(1, top)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    groups = draw(st.integers(1, 2))
    transposed = draw(st.booleans())
    mode = "zeros" if transposed else draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    spatial = tuple(draw(st.integers(1, 20)) if transposed else e + draw(st.integers(0, 20)) for e in extent)
    pads = tuple((draw(st.integers(0, min(4, s - 1))), draw(st.integers(0, min(4, s - 1)))) for s in spatial)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    op = f"conv_transpose{ndim}d" if transposed else f"conv{ndim}d"
    layer = Layer(
        op, c_in, c_out, kernel, stride=stride, dilation=dilation, groups=groups, padding=pads, padding_mode=mode
    )
    return bind_or_reject(layer, (2, c_in, *spatial))  # may be empty: a transposed crop of all it has


@settings(max_examples=60)
@given(large_kernels(), st.integers(0, 2**32 - 1))
def test_fft_on_large_kernels_equals_pytorch(bound: BoundLayer, seed: int) -> None:
    x, w = arrays(bound, seed)
    assert_close(run(bound, x, w, "fft"), torch_of(bound, x, w))


def depthwise() -> st.SearchStrategy[BoundLayer]:
    """Groups of one input channel: 1–5 groups, up to 9 cells an axis (5 in 3-d), batch 2."""
    return depthwise_layers(max_groups=5, max_size=(9, 5))


@settings(max_examples=80)
@given(depthwise(), st.sampled_from(["taps", "auto", "fft"]), st.integers(0, 2**32 - 1))
def test_depthwise_taps_equal_pytorch(bound: BoundLayer, method: str, seed: int) -> None:
    x, w = arrays(bound, seed)
    assert_close(run(bound, x, w, method), torch_of(bound, x, w))


@st.composite
def strided_transposed(draw: st.DrawFn) -> BoundLayer:
    """Transposed layers with strides 2–4 against kernels 1–6 and dilations 1–3 (phases with and without taps)."""
    ndim = draw(st.integers(1, 2))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel, stride, dilation = per(1, 6), per(2, 4), per(1, 3)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    pads = tuple((draw(st.integers(-2, 3)), draw(st.integers(-2, 3))) for _ in range(ndim))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    layer = Layer(
        f"conv_transpose{ndim}d",
        c_in,
        c_out,
        kernel,
        stride=stride,
        dilation=dilation,
        padding=pads,
        output_padding=output_padding,
        groups=groups,
    )
    return bind_or_reject(layer, (2, c_in, *per(1, 7)))


@settings(max_examples=100)
@given(strided_transposed(), st.sampled_from(["phase", "auto", "fft"]), st.integers(0, 2**32 - 1))
def test_phase_decomposition_equals_pytorch(bound: BoundLayer, method: str, seed: int) -> None:
    x, w = arrays(bound, seed)
    assert_close(run(bound, x, w, method), torch_of(bound, x, w))


@st.composite
def winograd_layers(draw: st.DrawFn) -> BoundLayer:
    """Kernel 3, stride 1, dilation 1 on 1–3 axes: groups, odd and even sizes, crops, padding modes, transposed."""
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    mode = "zeros" if transposed else draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    top = (13, 9, 6)[ndim - 1]
    spatial = tuple(draw(st.integers(1, top)) for _ in range(ndim))
    low = -2 if mode == "zeros" else 0
    pads = tuple(
        (
            draw(st.integers(low, min(3, s - 1) if mode != "zeros" else 3)),
            draw(st.integers(low, min(3, s - 1) if mode != "zeros" else 3)),
        )
        for s in spatial
    )
    op = f"conv_transpose{ndim}d" if transposed else f"conv{ndim}d"
    layer = Layer(op, c_in, c_out, 3, padding=pads, groups=groups, padding_mode=mode)
    bound = bind_or_reject(layer, (2, c_in, *spatial))
    assert routes.winograd_fits(bound)
    return bound


@settings(max_examples=100)
@given(winograd_layers(), st.sampled_from(["winograd", "auto"]), st.integers(0, 2**32 - 1))
def test_winograd_equals_pytorch(bound: BoundLayer, method: str, seed: int) -> None:
    event(f"{bound.ndim}-d {'transposed' if bound.transposed else bound.layer.padding_mode}")
    x, w = arrays(bound, seed)
    assert_close(run(bound, x, w, method), torch_of(bound, x, w))


@settings(max_examples=40)
@given(winograd_layers(), st.integers(0, 2**32 - 1))
def test_winograd_in_float32(bound: BoundLayer, seed: int) -> None:
    x, w = arrays(bound, seed, np.float32)
    expected = torch_of(bound, x.astype(np.float64), w.astype(np.float64)).astype(np.float32)
    assert_close(run(bound, x, w, "winograd"), expected, np.float32)


def test_winograd_blocks_of_tile_rows_equal_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample too large for one block is cut into blocks of tile rows (and a batch into blocks of samples)."""
    bound = Layer("conv2d", 3, 4, 3, padding=1).bind((3, 3, 23, 17))
    x, w = arrays(bound, 7)
    whole = run(bound, x, w, "winograd")
    row = 16 * (3 + 4) * 10 * 8  # a row of tiles: 4² transformed taps, in and out channels, 9 + 1 tiles, float64
    monkeypatch.setattr(routes.kernels, "CHUNK_BYTES", 4 * row)
    assert routes.kernels.plan(3, 12, row) == (1, 4)  # one sample, 4 of its 12 tile rows per block
    assert_close(run(bound, x, w, "winograd"), whole)
    assert_close(whole, torch_of(bound, x, w))


def test_winograd_is_refused_where_it_does_not_apply() -> None:
    for layer, shape in [
        (Layer("conv2d", 2, 2, 3, stride=2), (1, 2, 8, 8)),
        (Layer("conv2d", 2, 2, 3, dilation=2), (1, 2, 8, 8)),
        (Layer("conv1d", 2, 2, 5), (1, 2, 8)),
        (Layer("conv_transpose2d", 2, 2, (3, 2)), (1, 2, 4, 4)),
    ]:
        bound = layer.bind(shape)
        assert not routes.winograd_fits(bound)
        assert "winograd" not in routes.costs(bound)
        x, w = arrays(bound, 0)
        with pytest.raises(ConvArithError) as err:
            run(bound, x[:1], w, "winograd")
        assert err.value.param == "method"
        assert "kernel 3, stride 1 and dilation 1" in str(err.value)


# -- operators: the dot test and PyTorch's autograd, every route -----------------------------------


@settings(max_examples=80)
@given(
    st.one_of(
        torch_bound_layers(kinds=("conv", "conv_transpose")),
        large_kernels(),
        depthwise(),
        strided_transposed(),
        winograd_layers(),
    ),
    st.sampled_from(OPERATOR_METHODS),
    st.integers(0, 2**32 - 1),
)
def test_operator_routes_pass_the_dot_test_and_equal_autograd(bound: BoundLayer, method: str, seed: int) -> None:
    sample = bound.layer.bind(bound.sample_input_shape)
    x, w = arrays(sample, seed)
    operator = conv_operator(sample, w, method=method)
    assert dot_test(operator, rng=seed) <= 1e-12
    xt = torch.from_numpy(x).requires_grad_(True)
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            out = run_torch(sample, xt, torch.from_numpy(w))
    except (Unsupported, RuntimeError):  # beyond what PyTorch runs (reflect wider than the input)
        assume(False)
        raise
    g = np.random.default_rng(seed + 1).standard_normal(out.shape)
    (grad,) = torch.autograd.grad(out, xt, torch.from_numpy(g))
    assert_close(operator.matmat(x), out.detach().numpy())
    assert_close(operator.rmatmat(g), grad.numpy())


def test_the_fft_operator_transforms_its_kernel_once() -> None:
    """A deconvolution operator: forward and adjoint share nothing with the next call but the kernel's spectra."""
    rng = np.random.default_rng(0)
    A = conv_operator("conv2d", rng.standard_normal((1, 1, 9, 9)), (1, 40, 40), padding=4, method="fft")
    x = rng.standard_normal((1, 40, 40))
    with mock.patch.object(routes.sfft, "rfftn", wraps=routes.sfft.rfftn) as rfftn:
        for _ in range(3):
            A.rmatvec(A.matvec(x))
    assert rfftn.call_count == 2 + 6  # the kernel once per sense, the vectors every time


# -- the cost model ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape", "route"),
    [
        (Layer("conv2d", 2, 2, kernel_size=9, padding=4), (1, 2, 512, 512), "fft"),
        (Layer("conv_transpose2d", 1, 1, kernel_size=9, padding=4), (1, 1, 512, 512), "fft"),
        (Layer("conv1d", 1, 64, kernel_size=251), (1, 1, 16000), "fft"),
        (Layer("conv2d", 64, 64, kernel_size=3, padding=1), (8, 64, 56, 56), "winograd"),
        (Layer("conv_transpose2d", 64, 64, kernel_size=3, padding=1), (8, 64, 56, 56), "winograd"),
        (Layer("conv2d", 3, 16, kernel_size=3, padding=1), (1, 3, 32, 32), "gemm"),  # few channels: transforms dominate
        (Layer("conv2d", 256, 256, kernel_size=3, padding=1, groups=256), (4, 256, 14, 14), "taps"),
        (Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1), (4, 64, 32, 32), "phase"),
        (Layer("conv_transpose1d", 4, 4, kernel_size=1, stride=3), (2, 4, 10), "gemm"),  # phases without taps
    ],
)
def test_auto_picks_the_route_each_shape_needs(layer: Layer, shape: tuple[int, ...], route: str) -> None:
    bound = layer.bind(shape)
    assert routes.choose(bound) == route
    assert route in routes.costs(bound)


def test_fft_workers_follow_the_thread_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert routes.fft_workers() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert routes.fft_workers(routes.PARALLEL_POINTS) == 2
    assert routes.fft_workers(routes.PARALLEL_POINTS - 1) == 1  # small transforms: threads cost more
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert routes.fft_workers() >= 1


def test_unknown_operator_method_is_refused() -> None:
    from convarith import ConvArithError

    with pytest.raises(ConvArithError) as err:
        conv_operator("conv1d", np.ones((1, 1, 3)), (1, 5), method="taps")
    assert err.value.param == "method"


def test_scratch_kept_between_calls_never_leaks_one_layer_into_another() -> None:
    """Work arrays live on between calls (no page faults); two layers whose arrays have the same shape
    but are written in different places must still each equal PyTorch, call after call."""
    import torch.nn.functional as F

    from convarith import Layer
    from convarith.ops.reference import conv, conv_transpose

    rng = np.random.default_rng(0)
    # the same full extent 21 × 22, written from inputs of 20 × 20 and 19 × 19: in 2-d the flat route's
    # reads cross the cells between rows, which the other layer wrote
    a = Layer("conv_transpose2d", 2, 1, kernel_size=(2, 3)).bind((2, 2, 20, 20))  # full 21 × 22
    b = Layer("conv_transpose2d", 2, 1, kernel_size=(3, 4)).bind((2, 2, 19, 19))  # full 21 × 22
    # the same padded size 8, padded (1, 1) around 6 and (2, 0) around 6
    c = Layer("conv1d", 2, 2, kernel_size=3, padding=1).bind((1, 2, 6))
    d = Layer("conv1d", 2, 2, kernel_size=3, padding=[(2, 0)]).bind((1, 2, 6))
    # Winograd lays 5 and 6 cells padded (1, 1) on the same 8: the 6 writes the 5's padding cell
    e = Layer("conv1d", 2, 2, kernel_size=3, padding=1).bind((1, 2, 5))
    f = Layer("conv1d", 2, 2, kernel_size=3, padding=1).bind((1, 2, 6))
    for _ in range(3):
        for layer in (e, f):
            x = rng.standard_normal(layer.input_shape)
            w = rng.standard_normal(layer.weight_shape)
            want = F.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
            np.testing.assert_allclose(conv(x, w, layer=layer, method="winograd"), want.numpy(), atol=1e-12)
        for layer in (a, b, c, d):
            x = rng.standard_normal(layer.input_shape)
            w = rng.standard_normal(layer.weight_shape)
            if layer.transposed:
                got = conv_transpose(x, w, layer=layer, method="gemm")
                want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), stride=layer.layer.stride)
            else:
                got = conv(x, w, layer=layer, method="gemm")
                xt = F.pad(torch.from_numpy(x), layer.pads[0])
                want = F.conv1d(xt, torch.from_numpy(w))
            np.testing.assert_allclose(got, want.numpy(), atol=1e-12)
