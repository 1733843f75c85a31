"""The NumPy reference ops against PyTorch's real ops, over random N-d configurations, every route.

float64 results must equal PyTorch's to 1e-12 relative (max abs error / max |reference|); float32
to 1e-5. PyTorch runs with oneDNN disabled: its reference path is the ground truth for refusals.
Asymmetric padding, padding modes and the policies PyTorch lacks are compared with ``F.pad`` plus
the unpadded PyTorch op (a crop of the uncropped output for transposed convolutions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

import convarith
from convarith import ConvArithError, Layer
from convarith.ops import kernels
from convarith.ops.reference import (
    CONV_METHODS,
    CONV_TRANSPOSE_METHODS,
    avg_pool,
    conv,
    conv_transpose,
    max_pool,
)

torch.set_num_threads(1)
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def flat_pads(pads: Any) -> list[int]:
    """Per-axis (before, after) → F.pad's order, last axis first."""
    return [p for pair in reversed(pads) for p in pair]


def pairs(padding: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    items = padding if isinstance(padding, tuple) else (padding,) * ndim
    return tuple(item if isinstance(item, tuple) else (item, item) for item in items)


def torch_or_none(run: Any) -> np.ndarray | None:
    """PyTorch's result (reference path, no oneDNN), or None when PyTorch refuses."""
    try:
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            return np.asarray(run().numpy())
    except (RuntimeError, ValueError, NotImplementedError):
        return None


def ours_or_none(run: Any) -> np.ndarray | None:
    try:
        return np.asarray(run())
    except ConvArithError:
        return None


def assert_close(got: np.ndarray | None, expected: np.ndarray | None, dtype: Any = np.float64) -> None:
    assert (got is None) == (expected is None), ("refusals differ", got is None, expected is None)
    event("refused by both" if got is None else "computed")
    if got is None or expected is None:
        return
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype == dtype
    finite = np.isfinite(expected)  # max pooling over padding only gives −∞, in both
    assert np.array_equal(got[~finite], expected[~finite], equal_nan=True)
    if finite.any():
        error = np.abs(got[finite] - expected[finite]).max()
        assert error <= TOLERANCE[dtype] * np.abs(expected[finite]).max(), (error, np.abs(expected).max())


# -- convolution ---------------------------------------------------------------------------------


@dataclass
class ConvCase:
    ndim: int
    batch: int | None  # None: unbatched
    c_in: int
    c_out: int
    groups: int
    kernel: tuple[int, ...]
    stride: Any
    dilation: Any
    padding: Any
    padding_mode: str
    spatial: tuple[int, ...]
    bias: bool


@st.composite
def conv_cases(draw: Any, transposed: bool = False) -> ConvCase:
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel = per(1, 4 if ndim < 3 else 3)
    stride = draw(st.one_of(st.integers(1, 3), st.just(per(1, 3))))
    dilation = draw(st.one_of(st.integers(1, 3), st.just(per(1, 3))))
    spatial = per(1, 9 if ndim < 3 else 5)
    mode = "zeros" if transposed else draw(st.sampled_from(list(MODES)))
    low = 0 if mode == "zeros" else -2
    pair = st.tuples(st.integers(low, 3), st.integers(low, 3))
    policies = ["valid", "same_tf"] if transposed else ["valid", "same", "same_tf", "same_lower", "full"]
    padding = draw(
        st.one_of(
            st.integers(0, 3),
            st.tuples(*[st.integers(0, 3)] * ndim),
            st.tuples(*[st.one_of(st.integers(low, 3), pair)] * ndim),
            st.sampled_from(policies),
        )
    )
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    return ConvCase(
        ndim, batch, c_in, c_out, groups, kernel, stride, dilation, padding, mode, spatial, draw(st.booleans())
    )


def conv_arrays(case: ConvCase, seed: int, dtype: Any, transposed: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    shape = (case.c_in, *case.spatial) if case.batch is None else (case.batch, case.c_in, *case.spatial)
    layout = (case.c_in, case.c_out // case.groups) if transposed else (case.c_out, case.c_in // case.groups)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((*layout, *case.kernel)).astype(dtype)
    b = rng.standard_normal(case.c_out).astype(dtype)
    return x, w, b


def torch_conv(case: ConvCase, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray | None:
    """PyTorch's own op (``F.conv`` or ``nn.ConvNd`` with its padding_mode) where it takes the padding,
    else the pads our policy resolution gives, through ``F.pad`` and the unpadded op."""
    fn = getattr(F, f"conv{case.ndim}d")
    xt, wt = torch.from_numpy(x if case.batch is not None else x[None]), torch.from_numpy(w)
    bt = None if b is None else torch.from_numpy(b)
    kw = dict(stride=case.stride, dilation=case.dilation, groups=case.groups)
    symmetric = not isinstance(case.padding, str) and all(p == q for p, q in pairs(case.padding, case.ndim))
    native = symmetric and min(p for p, _ in pairs(case.padding, case.ndim)) >= 0
    if native or case.padding in ("same", "valid"):
        padding = tuple(p for p, _ in pairs(case.padding, case.ndim)) if native else case.padding
        if case.padding_mode == "zeros":
            out = torch_or_none(lambda: fn(xt, wt, bt, padding=padding, **kw))
        else:

            def module() -> torch.Tensor:
                conv = getattr(torch.nn, f"Conv{case.ndim}d")(
                    case.c_in, case.c_out, case.kernel, padding=padding, padding_mode=case.padding_mode,
                    bias=b is not None, dtype=xt.dtype, **kw,
                )  # fmt: skip
                conv.weight.data = wt
                if b is not None:
                    conv.bias.data = bt
                return conv(xt)  # type: ignore[no-any-return]

            out = torch_or_none(module)
    else:
        try:  # pairs, or a policy PyTorch lacks: our resolution, checked against the frameworks elsewhere
            pads = Layer(
                f"conv{case.ndim}d", kernel_size=case.kernel, stride=case.stride, dilation=case.dilation,
                padding=case.padding, padding_mode=case.padding_mode,
            ).bind(case.spatial).pads  # fmt: skip
        except ConvArithError:
            return None
        if case.padding_mode == "circular" and any(
            max(b, a) > i + min(b, 0) + min(a, 0) for i, (b, a) in zip(case.spatial, pads, strict=True)
        ):
            # F.pad's rule is "wrapping around more than once" is an error, but for some shapes it
            # wraps twice anyway, and with nothing left after a crop it returns uninitialised
            # memory: PyTorch has no consistent answer; convarith refuses (test_indexing)
            return None
        mode = MODES[case.padding_mode]
        out = torch_or_none(lambda: fn(F.pad(xt, flat_pads(pads), mode=mode), wt, bt, padding=0, **kw))
    return out if out is None or case.batch is not None else out[0]


def our_conv(case: ConvCase, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, method: str) -> np.ndarray | None:
    return ours_or_none(
        lambda: conv(
            x,
            w,
            b,
            stride=case.stride,
            padding=case.padding,
            dilation=case.dilation,
            groups=case.groups,
            padding_mode=case.padding_mode,
            method=method,
        )
    )


@settings(max_examples=600)
@given(conv_cases(), st.sampled_from(CONV_METHODS), st.integers(0, 2**32 - 1))
@example(
    ConvCase(2, 1, 1, 1, 1, (3, 3), 1, 1, ((-1, 2), (2, -2)), "circular", (4, 5), False), "gemm", 0
)  # crops and wraps at once
@example(ConvCase(1, None, 2, 2, 2, (4,), 1, 2, "same", "reflect", (7,), True), "matrix", 1)
@example(
    ConvCase(3, None, 1, 1, 1, (1, 1, 1), 1, 1, (0, (-1, 2), 0), "circular", (2, 2, 1), False), "gemm", 0
)  # wraps twice: F.pad answers for this shape, refuses for others; we refuse
def test_conv_equals_pytorch(case: ConvCase, method: str, seed: int) -> None:
    x, w, b = conv_arrays(case, seed, np.float64)
    bias = b if case.bias else None
    assert_close(our_conv(case, x, w, bias, method), torch_conv(case, x, w, bias))


@settings(max_examples=150)
@given(conv_cases(), st.sampled_from(CONV_METHODS), st.integers(0, 2**32 - 1))
def test_conv_float32_agrees_with_pytorch(case: ConvCase, method: str, seed: int) -> None:
    x, w, b = conv_arrays(case, seed, np.float32)
    assert_close(our_conv(case, x, w, b, method), torch_conv(case, x, w, b), np.float32)


@settings(max_examples=200)
@given(conv_cases(), st.sampled_from([1, 100, 2000, 30000]), st.integers(0, 2**32 - 1))
def test_conv_gemm_blocks_of_samples_and_rows_change_nothing(case: ConvCase, chunk: int, seed: int) -> None:
    """With tiny scratch blocks the GEMM route splits the batch and the first output axis."""
    x, w, b = conv_arrays(case, seed, np.float64)
    with mock.patch.object(kernels, "CHUNK_BYTES", chunk):
        got = our_conv(case, x, w, b, "gemm")
    assert_close(got, torch_conv(case, x, w, b))


# -- transposed convolution ----------------------------------------------------------------------


@dataclass
class TransposedCase:
    conv: ConvCase
    output_padding: Any


@st.composite
def transposed_cases(draw: Any) -> TransposedCase:
    case = draw(conv_cases(transposed=True))
    per_axis = lambda v: v if isinstance(v, tuple) else (v,) * case.ndim
    limits = [max(s, d) for s, d in zip(per_axis(case.stride), per_axis(case.dilation), strict=True)]
    output_padding: Any = 0
    if not isinstance(case.padding, str):
        # mostly valid values, sometimes one too large (PyTorch refuses those)
        output_padding = tuple(draw(st.integers(0, m - 1 if draw(st.integers(0, 9)) else m)) for m in limits)
    return TransposedCase(case, output_padding)


def torch_conv_transpose(t: TransposedCase, y: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray | None:
    case = t.conv
    fn = getattr(F, f"conv_transpose{case.ndim}d")
    yt, wt = torch.from_numpy(y if case.batch is not None else y[None]), torch.from_numpy(w)
    bt = None if b is None else torch.from_numpy(b)
    kw = dict(stride=case.stride, dilation=case.dilation, groups=case.groups)
    if not isinstance(case.padding, str) and all(p == q for p, q in pairs(case.padding, case.ndim)):
        padding = tuple(p for p, _ in pairs(case.padding, case.ndim))
        out = torch_or_none(lambda: fn(yt, wt, bt, padding=padding, output_padding=t.output_padding, **kw))
        return out if out is None or case.batch is not None else out[0]
    try:  # asymmetric pairs or a policy: crop PyTorch's uncropped output
        spec = Layer(
            f"conv_transpose{case.ndim}d", kernel_size=case.kernel, stride=case.stride, dilation=case.dilation,
            padding=case.padding, output_padding=t.output_padding,
        ).resolve(case.spatial)  # fmt: skip
    except ConvArithError:
        return None
    full = torch_or_none(lambda: fn(yt, wt, bt, padding=0, output_padding=spec.output_padding, **kw))
    if full is None:
        return None
    spatial = full.shape[-case.ndim :]
    crop = tuple(slice(before, n - after) for (before, after), n in zip(spec.pads, spatial, strict=True))
    if any(s.stop - s.start < 1 for s in crop):
        return None  # nothing left: PyTorch refuses such a padding
    out = np.ascontiguousarray(full[(..., *crop)])
    return out if case.batch is not None else out[0]


def our_conv_transpose(
    t: TransposedCase, y: np.ndarray, w: np.ndarray, b: np.ndarray | None, method: str
) -> np.ndarray | None:
    case = t.conv
    return ours_or_none(
        lambda: conv_transpose(
            y,
            w,
            b,
            stride=case.stride,
            padding=case.padding,
            output_padding=t.output_padding,
            dilation=case.dilation,
            groups=case.groups,
            method=method,
        )
    )


@settings(max_examples=600)
@given(transposed_cases(), st.sampled_from(CONV_TRANSPOSE_METHODS), st.integers(0, 2**32 - 1))
@example(
    TransposedCase(ConvCase(1, 1, 1, 1, 1, (2,), 1, 4, ((5, 0),), "zeros", (1,), False), (1,)), "direct", 0
)  # p′_b = d(k−1) − p_b < 0 crops everything the stretched input has
@example(TransposedCase(ConvCase(2, 2, 2, 4, 2, (3, 2), (1, 1), (3, 1), 1, "zeros", (3, 4), True), (2, 0)), "matrix", 1)
def test_conv_transpose_equals_pytorch(t: TransposedCase, method: str, seed: int) -> None:
    y, w, b = conv_arrays(t.conv, seed, np.float64, transposed=True)
    bias = b if t.conv.bias else None
    assert_close(our_conv_transpose(t, y, w, bias, method), torch_conv_transpose(t, y, w, bias))


@settings(max_examples=150)
@given(transposed_cases(), st.sampled_from(CONV_TRANSPOSE_METHODS), st.integers(0, 2**32 - 1))
def test_conv_transpose_float32_agrees_with_pytorch(t: TransposedCase, method: str, seed: int) -> None:
    y, w, b = conv_arrays(t.conv, seed, np.float32, transposed=True)
    assert_close(our_conv_transpose(t, y, w, b, method), torch_conv_transpose(t, y, w, b), np.float32)


@settings(max_examples=300)
@given(
    transposed_cases(),
    st.sampled_from([0.0, 1e9]),
    st.sampled_from([1, 100, 2000, 30000]),
    st.integers(0, 2**32 - 1),
)
def test_conv_transpose_gemm_both_col2im_paths_and_blocks(
    t: TransposedCase, waste: float, chunk: int, seed: int
) -> None:
    """``_FLAT_WASTE`` 0 forces the strided col2im, 1e9 the flat one whenever the stride is 1."""
    y, w, b = conv_arrays(t.conv, seed, np.float64, transposed=True)
    with mock.patch.object(kernels, "FLAT_WASTE", waste), mock.patch.object(kernels, "CHUNK_BYTES", chunk):
        got = our_conv_transpose(t, y, w, b, "gemm")
    assert_close(got, torch_conv_transpose(t, y, w, b))


# -- pooling -------------------------------------------------------------------------------------


@dataclass
class PoolCase:
    kind: str
    ndim: int
    batch: int | None
    kernel: tuple[int, ...]
    stride: Any
    padding: Any
    dilation: Any
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    spatial: tuple[int, ...]


@st.composite
def pool_cases(draw: Any, asymmetric: bool = False) -> PoolCase:
    kind = draw(st.sampled_from(["max_pool", "avg_pool"]))
    ndim = draw(st.integers(1, 3))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel = per(1, 4)
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.just(per(1, 3))))
    if asymmetric:
        padding: Any = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in kernel)
    else:
        padding = tuple(draw(st.integers(0, k // 2 + (draw(st.integers(0, 20)) == 0))) for k in kernel)
    dilation = per(1, 3) if kind == "max_pool" else 1
    divisor = draw(st.one_of(st.none(), st.integers(-3, 6).filter(bool))) if kind == "avg_pool" else None
    return PoolCase(
        kind, ndim, draw(st.sampled_from([None, 1, 2])), kernel, stride, padding, dilation,
        False if asymmetric else draw(st.booleans()), draw(st.booleans()), divisor, per(1, 9 if ndim < 3 else 5),
    )  # fmt: skip


def pool_input(case: PoolCase, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (2, *case.spatial) if case.batch is None else (case.batch, 2, *case.spatial)
    return rng.standard_normal(shape)


def our_pool(case: PoolCase, x: np.ndarray) -> np.ndarray | None:
    if case.kind == "max_pool":
        run = lambda: max_pool(x, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    else:
        run = lambda: avg_pool(
            x, case.kernel, case.stride, case.padding, case.ceil_mode, case.count_include_pad, case.divisor_override
        )
    return ours_or_none(run)


def torch_avg_pool(xt: torch.Tensor, case: PoolCase, kernel: Any, stride: Any, padding: Any) -> torch.Tensor:
    if case.ndim == 1 and case.divisor_override is not None:
        # F.avg_pool1d has no divisor_override keyword (a TypeError in PyTorch): a refusal
        raise RuntimeError("avg_pool1d() got an unexpected keyword argument 'divisor_override'")
    if case.ndim == 1:  # the same 1-d pool as a 2-d pool over a singleton axis
        stride = None if stride is None else (1, *((stride,) if isinstance(stride, int) else stride))
        padding = (0, *((padding,) if isinstance(padding, int) else padding))
        out = F.avg_pool2d(
            xt.unsqueeze(-2), (1, *kernel), stride, padding, case.ceil_mode, case.count_include_pad,
            case.divisor_override,
        )  # fmt: skip
        return out.squeeze(-2)
    fn = getattr(F, f"avg_pool{case.ndim}d")
    return fn(xt, kernel, stride, padding, case.ceil_mode, case.count_include_pad, case.divisor_override)  # type: ignore[no-any-return]


def torch_pool(case: PoolCase, x: np.ndarray) -> np.ndarray | None:
    xt = torch.from_numpy(x)
    if case.kind == "max_pool":
        fn = getattr(F, f"max_pool{case.ndim}d")
        return torch_or_none(lambda: fn(xt, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode))
    return torch_or_none(lambda: torch_avg_pool(xt, case, case.kernel, case.stride, case.padding))


@settings(max_examples=500)
@given(pool_cases(), st.integers(0, 2**32 - 1))
@example(PoolCase("max_pool", 1, 1, (2,), 1, (1,), (3,), False, True, None, (2,)), 0)  # a window of padding only
@example(PoolCase("avg_pool", 2, 1, (3, 2), 2, (1, 1), 1, True, True, None, (6, 5)), 0)  # ceil windows clipped
def test_pools_equal_pytorch(case: PoolCase, seed: int) -> None:
    x = pool_input(case, seed)
    assert_close(our_pool(case, x), torch_pool(case, x))


@settings(max_examples=300)
@given(pool_cases(asymmetric=True), st.integers(0, 2**32 - 1))
def test_pools_with_asymmetric_padding_equal_f_pad_and_pytorch(case: PoolCase, seed: int) -> None:
    x = pool_input(case, seed)
    xt = torch.from_numpy(x)
    flat = flat_pads(case.padding)
    zero = (0,) * case.ndim
    if case.kind == "max_pool":
        fn = getattr(F, f"max_pool{case.ndim}d")
        padded = F.pad(xt, flat, value=-math.inf)
        expected = torch_or_none(lambda: fn(padded, case.kernel, case.stride, 0, case.dilation))
    elif case.count_include_pad or case.divisor_override is not None:
        expected = torch_or_none(lambda: torch_avg_pool(F.pad(xt, flat), case, case.kernel, case.stride, zero))
    else:  # the mean over input cells only: the padded mean over the padded mean of ones
        sums = torch_or_none(lambda: torch_avg_pool(F.pad(xt, flat), case, case.kernel, case.stride, zero))
        ones = torch_or_none(
            lambda: torch_avg_pool(F.pad(torch.ones_like(xt), flat), case, case.kernel, case.stride, zero)
        )
        expected = None if sums is None or ones is None else sums / ones
    if (
        case.kind == "avg_pool"
        and case.ndim == 3
        and min(i - k for i, k in zip(case.spatial, case.kernel, strict=True)) < 0
    ):
        expected = None  # avg_pool3d alone checks the unpadded input against the kernel (F.pad hides it)
    assert_close(our_pool(case, x), expected)


def test_unbatched_pool_with_an_int_kernel_needs_ndim() -> None:
    x = np.arange(12.0).reshape(3, 4)  # (C, W)
    expected = F.max_pool1d(torch.from_numpy(x), 2).numpy()
    assert np.array_equal(max_pool(x, 2, ndim=1), expected)
    assert np.array_equal(max_pool(x, (2,)), expected)
    with pytest.raises(ConvArithError) as err:
        max_pool(x, 2)
    assert err.value.param == "input"


# -- refusals, shapes, exports -------------------------------------------------------------------


def test_invalid_configurations_raise_conv_arith_error_naming_the_parameter() -> None:
    x = np.zeros((1, 4, 5, 5))
    cases = [
        ("weight", lambda: conv(x, np.zeros((2, 4, 3, 3)), groups=2)),  # C_in/groups is 2
        ("groups", lambda: conv(x, np.zeros((3, 2, 3, 3)), groups=2)),  # 3 output channels
        ("weight", lambda: conv(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)), groups=2)),  # 3/2 channels
        ("method", lambda: conv(x, np.zeros((2, 4, 3, 3)), method="im2row")),
        ("method", lambda: conv_transpose(x, np.zeros((4, 2, 3, 3)), method="taps")),
        ("input", lambda: conv(x.astype(np.int64), np.zeros((2, 4, 3, 3), np.int64))),
        ("input", lambda: conv(x.astype(np.float16), np.zeros((2, 4, 3, 3), np.float16))),
        ("weight", lambda: conv(x, np.zeros((2, 4, 3, 3), np.float32))),
        ("bias", lambda: conv(x, np.zeros((2, 4, 3, 3)), np.zeros(3))),
        ("weight", lambda: conv(x, np.zeros((2, 4)))),
        ("weight", lambda: conv_transpose(x, np.zeros((3, 2, 3, 3)))),
        ("input_shape", lambda: conv(x, np.zeros((2, 4, 6, 6)))),  # kernel larger than the input
        ("input", lambda: conv(np.zeros((4, 5)), np.zeros((2, 4, 3, 3)))),
        ("padding", lambda: conv(x, np.zeros((2, 4, 3, 3)), padding=5, padding_mode="reflect")),
        ("padding", lambda: conv(x, np.zeros((2, 4, 3, 3)), padding="same", stride=2)),
        ("padding_mode", lambda: conv(x, np.zeros((2, 4, 3, 3)), padding_mode="mirror")),
        ("output_padding", lambda: conv_transpose(x, np.zeros((4, 2, 3, 3)), stride=2, output_padding=2)),
        ("divisor_override", lambda: avg_pool(x, 2, divisor_override=0)),
        ("padding", lambda: max_pool(x, 2, padding=2)),
        ("dilation", lambda: conv(x, np.zeros((2, 4, 3, 3)), dilation=0)),
    ]
    for param, run in cases:
        with pytest.raises(ConvArithError) as err:
            run()
        assert err.value.param == param, (param, str(err.value))
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "run",
    [
        lambda x, w, wt: conv(x, w, method="gemm"),
        lambda x, w, wt: conv(x, w, method="taps"),
        lambda x, w, wt: conv_transpose(x, wt, method="gemm"),
        lambda x, w, wt: conv_transpose(x, wt, stride=2, method="direct"),
        lambda x, w, wt: conv_transpose(x, wt, method="scatter"),
        lambda x, w, wt: max_pool(x, 2),
    ],
)
def test_work_that_does_not_fit_is_refused_before_allocating(run: Any) -> None:
    x, w, wt = np.ones((2, 3, 40, 40)), np.ones((4, 3, 3, 3)), np.ones((3, 4, 3, 3))
    with (
        mock.patch.object(kernels, "available_memory", lambda: 1000),
        mock.patch.object(kernels, "CHECK_BYTES", 0),
        mock.patch.object(np, "zeros", side_effect=AssertionError("allocated before refusing")),
        mock.patch.object(np, "empty", side_effect=AssertionError("allocated before refusing")),
        pytest.raises(ConvArithError) as err,
    ):
        run(x, w, wt)
    assert "GiB" in str(err.value)
    assert err.value.param == "input_shape"


def test_empty_batch_and_unbatched_inputs_keep_their_shape() -> None:
    w = np.ones((4, 3, 2, 2))
    assert conv(np.zeros((0, 3, 5, 5)), w).shape == (0, 4, 4, 4)
    assert conv_transpose(np.zeros((0, 4, 5, 5)), w).shape == (0, 3, 6, 6)
    assert conv(np.ones((3, 5, 5)), w, np.ones(4)).shape == (4, 4, 4)
    assert conv_transpose(np.ones((4, 5, 5)), w).shape == (3, 6, 6)


def test_four_dimensional_convolution_is_the_sum_of_three_dimensional_ones() -> None:
    """Nothing is limited to 3 axes: a 4-d conv is the sum over its first kernel axis of 3-d convs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 5, 3, 4))
    w = rng.standard_normal((3, 2, 2, 3, 2, 2))
    got = conv(x, w, padding=((0, 0), (1, 1), (0, 1), (1, 0)))
    for method in ("taps", "matrix"):
        same = conv(x, w, padding=((0, 0), (1, 1), (0, 1), (1, 0)), method=method)
        assert np.abs(same - got).max() <= 1e-12 * np.abs(got).max()
    expected = sum(
        np.stack(
            [conv(x[:, :, a + t], w[:, :, t], padding=((1, 1), (0, 1), (1, 0)), method="taps") for a in range(3)],
            axis=2,
        )
        for t in range(2)
    )
    assert np.abs(got - expected).max() <= 1e-12 * np.abs(expected).max()
    y = rng.standard_normal((2, 3, 3, 2, 2, 3))
    transposed = [conv_transpose(y, w, stride=(1, 2, 1, 2), method=m) for m in CONV_TRANSPOSE_METHODS]
    for other in transposed[1:]:
        assert np.abs(other - transposed[0]).max() <= 1e-12 * np.abs(transposed[0]).max()


def test_functions_are_served_lazily_from_the_package() -> None:
    assert convarith.conv is conv
    assert convarith.conv_transpose is conv_transpose
    assert convarith.max_pool is max_pool
    assert convarith.avg_pool is avg_pool
