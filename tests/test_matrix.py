"""The matrix C against PyTorch: ``C @ x`` is the op, ``Cᵀ @ g`` is autograd's input gradient,
the transposed convolution's matrix is exactly the direct one's transpose, pooling matrices too."""

from __future__ import annotations

import math
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from hypothesis import event, given, settings
from hypothesis import strategies as st

from convarith import ConvArithError, Layer, output_shape
from convarith.ops import matrix as matrix_module
from convarith.ops.matrix import bias_vector, conv_matrix, pool_matrix, save_matrix
from convarith.rules import raise_refusals

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=UserWarning)

F_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def assert_matches(actual: Any, expected: Any) -> None:
    """Equal to within 1e-12 of the largest magnitude (float64 throughout); NaNs and infinities exactly."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    assert a.shape == e.shape
    special = ~np.isfinite(e)
    assert np.array_equal(a[special], e[special], equal_nan=True)
    a, e = a[~special], e[~special]
    scale = max(float(np.abs(e).max(initial=0.0)), np.finfo(np.float64).tiny)
    assert float(np.abs(a - e).max(initial=0.0)) <= 1e-12 * scale


def flat_pads(pairs: tuple[tuple[int, int], ...]) -> list[int]:
    """Per-axis (before, after) pairs in F.pad's order (last axis first)."""
    return [p for pair in reversed(pairs) for p in pair]


def same_arrays(a: Any, b: Any) -> bool:
    """Exact equality of the CSR arrays: structure and values."""
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def grad_check(matrix: Any, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> None:
    """``x.grad`` from autograd equals ``Cᵀ · grad_output``."""
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    y.backward(g)
    assert x.grad is not None
    assert_matches(matrix.T @ g.numpy().ravel(), x.grad.numpy())


# -- the guide's example -------------------------------------------------------------------------


def test_guide_section_4_1_matrix() -> None:
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # w00 … w22 = 1 … 9
    expected = np.array(
        [
            [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0],
            [0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0],
            [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9],
        ],
        dtype=np.float64,
    )
    matrix = conv_matrix("conv2d", w, (1, 4, 4))
    assert same_arrays(matrix, conv_matrix(Layer("conv2d", kernel_size=3), w, (4, 4)))
    assert isinstance(matrix, sp.csr_array)
    assert matrix.shape == (4, 16) and matrix.nnz == 36
    assert np.array_equal(matrix.toarray(), expected)
    assert np.array_equal(conv_matrix("conv2d", w, (1, 1, 4, 4), format="dense"), expected)


def test_motivating_question_gradient_is_c_transpose_times_upstream_gradient() -> None:
    x = torch.arange(1.0, 17.0, dtype=torch.float64).reshape(1, 1, 4, 4).requires_grad_(True)
    w = torch.rand(1, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = F.conv2d(x, w)
    y.backward(torch.ones_like(y))
    matrix = conv_matrix("conv2d", w.numpy(), (1, 4, 4))
    assert_matches(matrix @ x.detach().numpy().ravel(), y.detach().numpy())
    assert_matches(matrix.T @ np.ones(4), x.grad)  # Cᵀ times the upstream gradient …
    assert not np.allclose(matrix.T @ y.detach().numpy().ravel(), x.grad.numpy().ravel())  # … not times y
    # The question's C put the 3×3 kernel in 3-wide slices; its rows belong at r·W + c.
    wrong = np.zeros((4, 16))
    wrong[0, :3] = w.numpy()[0, 0, 0]
    assert not np.allclose(wrong[0], matrix.toarray()[0])


# -- direct convolutions ---------------------------------------------------------------------------


@dataclass
class ConvCase:
    ndim: int
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    spatial: tuple[int, ...]
    padding: Any
    mode: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups, padding_mode=self.mode
        )


@st.composite
def conv_cases(draw: Any) -> ConvCase:
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda strategy: tuple(draw(strategy) for _ in range(ndim))
    kernel = per(st.integers(1, 3 if ndim == 3 else 4))
    dilation = per(st.integers(1, 2 if ndim == 3 else 3))
    stride = per(st.integers(1, 3))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    style = draw(st.sampled_from(["int", "per_axis", "pairs", "policy"]))
    low = 0 if mode == "zeros" else -2
    padding: Any
    if style == "int":
        padding = draw(st.integers(0, 3))
    elif style == "per_axis":
        padding = per(st.integers(0, 3))
    elif style == "pairs":
        padding = tuple((draw(st.integers(low, 3)), draw(st.integers(low, 3))) for _ in range(ndim))
    else:
        padding = draw(st.sampled_from(["valid", "same", "same_tf", "same_lower", "full"]))
        if padding == "same":
            stride = (1,) * ndim
    top = (30, 10, 3)[ndim - 1]  # long enough for a regular interior between the borders
    low = 4 if mode in ("reflect", "circular") else 1  # those paddings must stay within the input
    spatial = tuple(
        draw(st.integers(max(low, (k - 1) * d - 2), max(low, (k - 1) * d) + top))
        for k, d in zip(kernel, dilation, strict=True)
    )
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    return ConvCase(ndim, groups, c_in, c_out, kernel, stride, dilation, spatial, padding, mode)


def torch_conv(x: torch.Tensor, w: torch.Tensor, case: ConvCase) -> tuple[torch.Tensor, str]:
    """PyTorch's own op where it can express the case, else F.pad + the unpadded op."""
    conv = getattr(F, f"conv{case.ndim}d")
    common = dict(stride=case.stride, dilation=case.dilation, groups=case.groups)
    spec = Layer(
        f"conv{case.ndim}d",
        kernel_size=case.kernel,
        padding=case.padding,
        stride=case.stride,
        dilation=case.dilation,
        padding_mode=case.mode,
    )
    pairs = spec.resolve(case.spatial).pads
    symmetric = all(b == a >= 0 for b, a in pairs)
    if case.mode == "zeros" and (case.padding in ("valid", "same") or not isinstance(case.padding, str)) and symmetric:
        padding = case.padding if isinstance(case.padding, str) else tuple(b for b, _ in pairs)
        return conv(x, w, padding=padding, **common), "F.conv"
    if case.mode != "zeros" and symmetric:
        module = getattr(torch.nn, f"Conv{case.ndim}d")(
            case.c_in,
            case.c_out,
            case.kernel,
            padding=tuple(b for b, _ in pairs),
            padding_mode=case.mode,
            bias=False,
            **common,
        ).double()
        module.weight.data = w.detach()
        return module(x), "nn.Conv"
    return conv(F.pad(x, flat_pads(pairs), mode=F_PAD_MODE[case.mode]), w, **common), "F.pad + F.conv"


@settings(max_examples=350)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_conv_matrix_is_pytorch_conv_and_its_gradient(case: ConvCase, seed: int) -> None:
    op = f"conv{case.ndim}d"
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn((case.c_out, case.c_in // case.groups, *case.kernel), generator=gen, dtype=torch.float64)
    try:
        output_shape(op, (1, case.c_in, *case.spatial), out_channels=case.c_out, kernel_size=case.kernel, **case.kwargs)
    except ConvArithError as refusal:
        # Refusals are the geometry's own.
        with pytest.raises(ConvArithError) as raised:
            conv_matrix(op, w.numpy(), (case.c_in, *case.spatial), **case.kwargs)
        assert raised.value.param == refusal.param
        event(f"refused: {refusal.param}")
        return
    matrix = conv_matrix(op, w.numpy(), (case.c_in, *case.spatial), **case.kwargs)
    x = torch.randn((1, case.c_in, *case.spatial), generator=gen, dtype=torch.float64, requires_grad=True)
    y, route = torch_conv(x, w, case)
    event(f"{route}, {case.mode}")
    assert matrix.shape == (y.numel(), x.numel())
    assert matrix.has_canonical_format
    # One entry per (row, column), sorted: folded taps were summed, not repeated.
    check = sp.csr_array((matrix.data, matrix.indices, matrix.indptr), shape=matrix.shape)
    check.has_canonical_format = False
    check.sum_duplicates()
    assert same_arrays(check, matrix)
    assert_matches(matrix @ x.detach().numpy().ravel(), y.detach().numpy())
    grad_check(matrix, x, y, gen)


# -- transposed convolutions -----------------------------------------------------------------------


@dataclass
class TransposedCase:
    ndim: int
    groups: int
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    spatial: tuple[int, ...]
    padding: Any
    output_padding: tuple[int, ...]


@st.composite
def transposed_cases(draw: Any) -> TransposedCase:
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda strategy: tuple(draw(strategy) for _ in range(ndim))
    kernel = per(st.integers(1, 3 if ndim == 3 else 4))
    stride = per(st.integers(1, 3))
    dilation = per(st.integers(1, 3))
    style = draw(st.sampled_from(["int", "per_axis", "pairs", "policy"]))
    output_padding = (0,) * ndim
    padding: Any
    if style == "policy":
        padding = draw(st.sampled_from(["valid", "same_tf"]))
    else:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
        # Pads up to the kernel's reach (more would leave no output).
        reach = [min(3, (k - 1) * d) for k, d in zip(kernel, dilation, strict=True)]
        if style == "int":
            padding = draw(st.integers(0, min(reach)))
        elif style == "per_axis":
            padding = tuple(draw(st.integers(0, r)) for r in reach)
        else:
            padding = tuple((draw(st.integers(0, r)), draw(st.integers(0, r))) for r in reach)
    spatial = per(st.integers(1, (20, 7, 3)[ndim - 1]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    return TransposedCase(ndim, groups, c_in, c_out, kernel, stride, dilation, spatial, padding, output_padding)


@settings(max_examples=350)
@given(transposed_cases(), st.integers(0, 2**31 - 1))
def test_transposed_matrix_is_pytorch_and_exactly_the_direct_transpose(case: TransposedCase, seed: int) -> None:
    op = f"conv_transpose{case.ndim}d"
    kwargs = dict(
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        output_padding=case.output_padding,
    )
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn((case.c_in, case.c_out // case.groups, *case.kernel), generator=gen, dtype=torch.float64)
    try:
        shape = output_shape(
            op, (1, case.c_in, *case.spatial), out_channels=case.c_out, kernel_size=case.kernel, **kwargs
        )
    except ConvArithError as refusal:
        with pytest.raises(ConvArithError) as raised:
            conv_matrix(op, w.numpy(), (case.c_in, *case.spatial), **kwargs)
        assert raised.value.param == refusal.param
        event(f"refused: {refusal.param}")
        return
    matrix = conv_matrix(op, w.numpy(), (case.c_in, *case.spatial), **kwargs)

    # PyTorch: symmetric padding natively; otherwise the unpadded op cropped by (before, after).
    spec = Layer(op, kernel_size=case.kernel, **kwargs).resolve(case.spatial)
    x = torch.randn((1, case.c_in, *case.spatial), generator=gen, dtype=torch.float64, requires_grad=True)
    transposed = getattr(F, op)
    common = dict(stride=case.stride, dilation=case.dilation, groups=case.groups, output_padding=spec.output_padding)
    event("symmetric" if all(b == a for b, a in spec.pads) else "asymmetric: cropped")
    if all(b == a for b, a in spec.pads):
        y = transposed(x, w, padding=tuple(b for b, _ in spec.pads), **common)
    else:
        full = transposed(x, w, padding=0, **common)
        y = full[(..., *(slice(b, n - a) for (b, a), n in zip(spec.pads, full.shape[2:], strict=True)))]
    assert tuple(y.shape) == shape
    assert_matches(matrix @ x.detach().numpy().ravel(), y.detach().numpy())
    grad_check(matrix, x, y, gen)

    # The adjoint (the direct convolution mapping the transposed output back to its input, same
    # weight; its pad after reduced by s·⌊a/s⌋ when output_padding ≥ stride): C is its transpose.
    bound = Layer(op, case.c_in, case.c_out, kernel_size=case.kernel, **kwargs).bind((case.c_in, *case.spatial))
    if any(a >= s for a, s in zip(bound.output_padding, case.stride, strict=True)):
        event("output_padding ≥ stride")
    direct = conv_matrix(bound.adjoint(), w.numpy())
    assert same_arrays(matrix, sp.csr_array(direct.T).tocsr())


# -- pooling ---------------------------------------------------------------------------------------


@dataclass
class PoolCase:
    kind: str
    ndim: int
    channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None
    dilation: tuple[int, ...]
    padding: Any
    spatial: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None

    @property
    def kwargs(self) -> dict[str, Any]:
        kwargs = dict(kernel_size=self.kernel, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode)
        if self.kind == "avg_pool":
            kwargs.update(count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)
        else:
            kwargs.update(dilation=self.dilation)
        return kwargs


@st.composite
def pool_cases(draw: Any) -> PoolCase:
    kind = draw(st.sampled_from(["avg_pool", "max_pool"]))
    ndim = draw(st.integers(1, 3))
    per = lambda strategy: tuple(draw(strategy) for _ in range(ndim))
    kernel = per(st.integers(1, 3 if ndim == 3 else 4))
    stride = draw(st.one_of(st.none(), st.just(per(st.integers(1, 3)))))
    dilation = per(st.integers(1, 2)) if kind == "max_pool" else (1,) * ndim
    style = draw(st.sampled_from(["int", "per_axis", "pairs"]))
    padding: Any
    if style == "int":
        padding = draw(st.integers(0, min(kernel) // 2))
    elif style == "per_axis":
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    else:
        padding = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in kernel)
    top = (30, 10, 3)[ndim - 1]  # long enough for a regular interior between the borders
    spatial = tuple(
        draw(st.integers(max(1, (k - 1) * d), (k - 1) * d + top)) for k, d in zip(kernel, dilation, strict=True)
    )
    override = (
        draw(st.one_of(st.none(), st.sampled_from([-3, -2, -1, 1, 2, 3, 4, 5, 7]))) if kind == "avg_pool" else None
    )
    return PoolCase(
        kind,
        ndim,
        draw(st.integers(1, 3)),
        kernel,
        stride,
        dilation,
        padding,
        spatial,
        draw(st.booleans()),
        draw(st.booleans()),
        override,
    )


def torch_avg(x: torch.Tensor, ndim: int, **kwargs: Any) -> torch.Tensor:
    """F.avg_pool, with 1-d run as 2-d (avg_pool1d has no divisor_override)."""
    if ndim > 1:
        return getattr(F, f"avg_pool{ndim}d")(x, **kwargs)
    axis = lambda v: tuple(v) if isinstance(v, tuple) else (v,)
    lift = dict(kwargs, kernel_size=(1, *axis(kwargs["kernel_size"])), stride=(1, *axis(kwargs["stride"])))
    lift["padding"] = (0, *axis(kwargs["padding"]))
    return F.avg_pool2d(x.unsqueeze(-2), **lift).squeeze(-2)


def torch_pool(x: torch.Tensor, case: PoolCase, pads: tuple[tuple[int, int], ...]) -> tuple[torch.Tensor, Any]:
    """PyTorch's pooling (and its indices for max pooling); asymmetric pads through F.pad."""
    stride = case.stride or case.kernel
    symmetric = all(b == a for b, a in pads)
    if case.kind == "max_pool":
        fn = getattr(F, f"max_pool{case.ndim}d")
        common = dict(kernel_size=case.kernel, stride=stride, dilation=case.dilation, ceil_mode=case.ceil_mode)
        if symmetric:
            return fn(x, padding=tuple(b for b, _ in pads), return_indices=True, **common)
        return fn(F.pad(x, flat_pads(pads), value=-math.inf), padding=0, return_indices=True, **common)[0], None
    common = dict(kernel_size=case.kernel, stride=stride, ceil_mode=case.ceil_mode)
    if symmetric:
        return torch_avg(
            x,
            case.ndim,
            padding=tuple(b for b, _ in pads),
            count_include_pad=case.count_include_pad,
            divisor_override=case.divisor_override,
            **common,
        ), None
    padded = F.pad(x, flat_pads(pads))
    if case.count_include_pad or case.divisor_override is not None:
        return torch_avg(padded, case.ndim, padding=0, divisor_override=case.divisor_override, **common), None
    # Without count_include_pad: window sums over window counts of real cells.
    total = torch_avg(padded, case.ndim, padding=0, divisor_override=1, **common)
    cells = torch_avg(F.pad(torch.ones_like(x), flat_pads(pads)), case.ndim, padding=0, divisor_override=1, **common)
    return total / cells, None


@settings(max_examples=350)
@given(pool_cases(), st.integers(0, 2**31 - 1), st.integers(0, 3))
def test_pool_matrices_are_pytorch_pooling_and_its_gradient(case: PoolCase, seed: int, specials: int) -> None:
    op = f"{case.kind}{case.ndim}d"
    shape = (case.channels, *case.spatial)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    if case.kind == "max_pool":
        # Few distinct values make ties; NaNs and -inf test PyTorch's selection rules.
        values = rng.integers(-2, 3, size=shape).astype(np.float64)
        values[rng.random(shape) < 0.1 * specials] = np.nan
        if specials == 3:
            values[rng.random(shape) < 0.3] = -np.inf
    else:
        values = rng.standard_normal(shape)
    kwargs = case.kwargs
    spec_kwargs = {k: v for k, v in kwargs.items() if k not in ("divisor_override", "count_include_pad")}
    try:
        raise_refusals(Layer(op, **kwargs), (1, *shape))  # PyTorch's rules, divisor_override's included
    except ConvArithError as refusal:
        with pytest.raises(ConvArithError) as raised:
            pool_matrix(op, shape, at=values if case.kind == "max_pool" else None, **kwargs)
        assert raised.value.param == refusal.param
        event(f"refused: {refusal.param}")
        return
    matrix = pool_matrix(op, shape, at=values if case.kind == "max_pool" else None, **kwargs)
    pads = Layer(op, **spec_kwargs).resolve(case.spatial).pads
    symmetric = all(b == a for b, a in pads)
    event(f"{case.kind}, {'symmetric' if symmetric else 'asymmetric'}")
    if not symmetric and case.kind == "max_pool":
        values[np.isneginf(values)] = -5.0  # a padded -inf would tie with it in the F.pad route
    x = torch.tensor(values[None], requires_grad=True)
    y, indices = torch_pool(x, case, pads)
    if y.shape[2:] != output_shape(op, (1, *shape), **spec_kwargs)[2:]:
        # PyTorch's ceil_mode rule counts from the pre-padded input on the F.pad route.
        assert case.ceil_mode and not symmetric
        event("ceil_mode output differs on the F.pad route")
        return
    assert matrix.shape == (y.numel(), x.numel())
    if case.kind == "max_pool":
        assert np.all(matrix.data == 1) and set(np.diff(matrix.indptr).tolist()) <= {0, 1}
        empty = np.diff(matrix.indptr) == 0
        if empty.any():
            # With dilation a window can hold only padding: PyTorch gives -inf there (and an
            # index outside the window, so its backward is not comparable); the Jacobian row is 0.
            assert np.all(np.isneginf(y.detach().numpy().ravel()[empty]))
            assert_matches((matrix @ values.ravel())[~empty], y.detach().numpy().ravel()[~empty])
            event("max_pool window of padding only")
            return
        picked = matrix.indices.reshape(case.channels, -1) - np.arange(case.channels)[:, None] * math.prod(case.spatial)
        if indices is not None:
            assert np.array_equal(picked.ravel(), indices.numpy().ravel())
    assert_matches(matrix @ values.ravel(), y.detach().numpy())
    grad_check(matrix, x, y, gen)


# -- formats, dtypes, indices, files ---------------------------------------------------------------


def test_formats_agree_and_dtypes_follow_the_weight() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 2))
    kwargs = dict(stride=(2, 1), padding=((1, 0), (2, 1)), padding_mode="reflect", groups=1)
    csr = conv_matrix("conv2d", w, (3, 6, 5), **kwargs)
    coo = conv_matrix("conv2d", w, (3, 6, 5), format="coo", **kwargs)
    dense = conv_matrix("conv2d", w, (3, 6, 5), format="dense", **kwargs)
    assert isinstance(csr, sp.csr_array) and isinstance(coo, sp.coo_array) and isinstance(dense, np.ndarray)
    assert np.array_equal(csr.toarray(), dense) and np.array_equal(coo.toarray(), dense)
    assert coo.nnz == csr.nnz
    assert csr.dtype == np.float64
    assert conv_matrix("conv2d", w.astype(np.float32), (3, 6, 5), **kwargs).dtype == np.float32
    assert conv_matrix("conv2d", w.astype(np.int64), (3, 6, 5), **kwargs).dtype == np.float64
    assert conv_matrix("conv2d", w, (3, 6, 5), dtype=np.float32, **kwargs).dtype == np.float32
    with pytest.raises(ConvArithError, match="dtype"):
        conv_matrix("conv2d", w, (3, 6, 5), dtype=np.int32)
    with pytest.raises(ConvArithError, match="format"):
        conv_matrix("conv2d", w, (3, 6, 5), format="csc")
    avg = pool_matrix("avg_pool2d", (2, 5, 5), kernel_size=2, format="dense", dtype=np.float32)
    assert avg.dtype == np.float32 and np.array_equal(
        avg, pool_matrix("avg_pool2d", (2, 5, 5), kernel_size=2).toarray()
    )


def test_index_dtype_is_int32_when_it_fits_else_int64(monkeypatch: pytest.MonkeyPatch) -> None:
    assert matrix_module._index_dtype(10, 10, 2**31 - 1) == np.int32
    assert matrix_module._index_dtype(10, 10, 2**31) == np.int64
    assert matrix_module._index_dtype(2**31, 10, 10) == np.int64
    assert matrix_module._index_dtype(10, 2**31, 10) == np.int64
    w = np.random.default_rng(2).standard_normal((4, 2, 3, 3))
    kwargs = dict(stride=2, padding=1, groups=2)
    small = conv_matrix("conv_transpose2d", w, (4, 5, 6), **kwargs)
    assert small.indices.dtype == np.int32 and small.indptr.dtype == np.int32
    # Pretend int32 ends at 100: the same matrix comes out with int64 indices.
    monkeypatch.setattr(matrix_module, "_INT32_MAX", 100)
    large = conv_matrix("conv_transpose2d", w, (4, 5, 6), **kwargs)
    assert large.indices.dtype == np.int64 and large.indptr.dtype == np.int64
    assert same_arrays(small, large)
    pooled = pool_matrix("max_pool2d", (4, 5, 6), kernel_size=2, at=np.arange(120.0).reshape(4, 5, 6))
    assert pooled.indices.dtype == np.int64


@pytest.mark.parametrize("suffix", [".npz", ".mtx", ".MTX"])
def test_save_and_load_round_trip(tmp_path: Path, suffix: str) -> None:
    w = np.random.default_rng(3).standard_normal((2, 1, 3))
    matrix = conv_matrix("conv1d", w, (1, 7), padding="same", padding_mode="circular")
    path = save_matrix(matrix, tmp_path / f"C{suffix}")
    assert path.exists()
    back = sp.load_npz(path) if suffix == ".npz" else scipy.io.mmread(path)
    assert np.array_equal(sp.csr_array(back).toarray(), matrix.toarray())
    dense_path = save_matrix(matrix.toarray(), tmp_path / f"D{suffix}")
    back = sp.load_npz(dense_path) if suffix == ".npz" else scipy.io.mmread(dense_path)
    assert np.array_equal(np.asarray(sp.csr_array(back).toarray()), matrix.toarray())
    with pytest.raises(ConvArithError, match=r"path: must end in \.npz"):
        save_matrix(matrix, tmp_path / "C.txt")


# -- refusals and the memory guard -----------------------------------------------------------------


def traced_peak(call: Any) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    caught = None
    try:
        call()
    except ConvArithError as err:
        caught = err
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, caught


def test_memory_guard_refuses_before_allocating_and_names_the_need() -> None:
    w = np.ones((64, 64, 3, 3), dtype=np.float32)
    nnz = 64 * 64 * (3 * 56 - 2) ** 2  # 112,869,376: 3 taps per axis except at the two borders
    need = nnz * 8 + (64 * 56 * 56 + 1) * 4  # float32 values, int32 indices, row pointers
    peak, err = traced_peak(lambda: conv_matrix("conv2d", w, (64, 56, 56), padding=1, memory_budget=2**20))
    assert isinstance(err, ConvArithError) and err.param == "memory_budget"
    assert f"{nnz:,} nonzeros" in str(err)
    assert f"{need / 2**30:.3f} GiB of CSR arrays" in str(err)
    assert peak < need / 100  # nothing of the result's size was allocated
    peak, err = traced_peak(lambda: pool_matrix("max_pool3d", (8, 64, 64, 64), kernel_size=2, at=np.zeros(1)))
    assert err is not None and err.param == "at"  # shape checks come before any work
    at = np.zeros((4, 64, 64, 64))
    peak, err = traced_peak(lambda: pool_matrix("max_pool3d", (4, 64, 64, 64), kernel_size=1, at=at, memory_budget=1))
    assert err is not None and err.param == "memory_budget" and peak < at.nbytes / 10


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_guard_count_is_exact_also_for_folding_modes(mode: str) -> None:
    w = np.ones((3, 2, 3, 4))
    kwargs = dict(padding=((2, 1), (3, 2)), dilation=(1, 2), padding_mode=mode)
    built = conv_matrix("conv2d", w, (2, 5, 7), **kwargs)
    with pytest.raises(ConvArithError) as raised:
        conv_matrix("conv2d", w, (2, 5, 7), memory_budget=100, **kwargs)
    assert f"with {built.nnz:,} nonzeros" in str(raised.value)


def test_dense_refusal_names_the_size_before_allocating() -> None:
    w = np.ones((1, 1, 3, 3))
    peak, err = traced_peak(lambda: conv_matrix("conv2d", w, (1, 100, 100), format="dense"))
    assert err is not None and err.param == "format"
    assert "9,604×10,000 = 96,040,000" in str(err) and "2**26" in str(err)
    assert peak < 10**7
    assert conv_matrix("conv2d", w, (1, 60, 60), format="dense").shape == (58 * 58, 3600)


def test_refusals_name_the_parameter() -> None:
    w = np.ones((4, 2, 3, 3))
    cases = [
        (lambda: conv_matrix("conv2d", w, (2, 2, 8, 8)), "input_shape"),  # batch of 2
        (lambda: conv_matrix("conv2d", w, (3, 8, 8)), "weight"),  # 3 channels, weight wants 2
        (lambda: conv_matrix("conv2d", w, (4, 8, 8), groups=3), "groups"),
        (lambda: conv_matrix("conv2d", np.ones((4, 2)), (2, 8, 8)), "weight"),
        (lambda: conv_matrix("conv3d", w, (2, 8, 8, 8)), "weight"),
        (lambda: conv_matrix("max_pool2d", w, (2, 8, 8)), "op"),
        (lambda: conv_matrix("conv2d", w, (2, 2, 2)), "input_shape"),  # smaller than the kernel
        (lambda: conv_matrix("conv2d", w, (2, 8, 8), padding=8, padding_mode="reflect"), "padding"),
        (lambda: conv_matrix("conv_transpose2d", w, (4, 3, 3), stride=2, output_padding=2), "output_padding"),
        (lambda: conv_matrix("conv_transpose2d", w, (3, 3, 3)), "weight"),
        (lambda: pool_matrix("conv2d", (1, 4, 4), kernel_size=2), "op"),
        (lambda: pool_matrix("max_pool2d", (1, 4, 4), kernel_size=2), "at"),
        (lambda: pool_matrix("avg_pool2d", (1, 4, 4), kernel_size=2, at=np.zeros((1, 4, 4))), "at"),
        (lambda: pool_matrix("avg_pool2d", (1, 4, 4), kernel_size=2, divisor_override=0), "divisor_override"),
        (lambda: pool_matrix("max_pool2d", (1, 4, 4), kernel_size=2, at=np.zeros((4, 4))), "at"),
        (lambda: pool_matrix("avg_pool2d", (1, 4, 4), kernel_size=2, padding=2), "padding"),
        (lambda: pool_matrix("avg_pool2d", (1, 4, 4), kernel_size=2, memory_budget=-1), "memory_budget"),
        (lambda: bias_vector(np.ones(3), (4, 5)), "bias"),
    ]
    for call, param in cases:
        with pytest.raises(ConvArithError) as raised:
            call()
        assert raised.value.param == param, (param, str(raised.value))


# -- bias and N-d ----------------------------------------------------------------------------------


def test_bias_vector_completes_the_affine_map() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64, generator=gen)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(6, dtype=torch.float64, generator=gen)
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
    matrix = conv_matrix("conv2d", w.numpy(), tuple(x.shape), stride=2, padding=1, groups=2)
    assert_matches(matrix @ x.numpy().ravel() + bias_vector(b.numpy(), tuple(y.shape)), y)
    assert np.array_equal(bias_vector(b.numpy(), tuple(y.shape)), bias_vector(b.numpy(), tuple(y.shape[1:])))


def test_four_dimensional_convolution_reduces_to_three() -> None:
    w3 = np.random.default_rng(5).standard_normal((2, 3, 2, 3, 2))
    kwargs = dict(stride=(1, 2, 1), padding=((1, 0), 1, (0, 2)), padding_mode="replicate")
    c3 = conv_matrix("conv3d", w3, (3, 4, 5, 3), **kwargs)
    c4 = conv_matrix(
        "conv4d",
        w3[:, :, None],
        (3, 1, 4, 5, 3),
        stride=(1, 1, 2, 1),
        padding=((0, 0), (1, 0), 1, (0, 2)),
        padding_mode="replicate",
    )
    assert same_arrays(c3, c4)
