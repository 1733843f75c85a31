"""Layer-first ops: the same numbers as the keyword form, the math where PyTorch refuses, the adjoint exact.

- A :class:`~convarith.Layer` (or its bound form) gives exactly what PyTorch's keywords give.
- ``conv_matrix(bound.adjoint())`` is ``conv_matrix(bound).T`` (structure and values), also for
  crops, negative transposed pads and ``output_padding ≥ stride`` with dilation.
- Negative transposed pads (ONNX ``same_upper``/``same_lower`` with a kernel shorter than the
  stride) in every route, the matrix and the operator, against ONNX's reference evaluator and
  against PyTorch (the full ``conv_transpose`` zero-extended / cropped by ``F.pad``).
- Dilated average pooling against ONNX's reference evaluator.
- Crops (negative zero padding) of a convolution against ``F.pad`` + PyTorch.
- The defects of the review: every bad value raises ``ConvArithError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from convarith import BoundLayer, ConvArithError, Layer
from convarith.ops.matrix import conv_matrix, pool_matrix
from convarith.ops.operator import conv_operator, dot_test
from convarith.ops.reference import (
    CONV_METHODS,
    CONV_TRANSPOSE_METHODS,
    avg_pool,
    conv,
    conv_transpose,
    direct_kernel,
    max_pool,
    stretched_input,
)

torch.set_num_threads(1)


def close(got: np.ndarray, expected: np.ndarray, tolerance: float = 1e-12) -> None:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = float(np.abs(expected).max(initial=0.0)) or 1.0
    assert float(np.abs(got - expected).max(initial=0.0)) <= tolerance * scale


def same_csr(a: Any, b: Any) -> bool:
    a, b = sp.csr_array(a), sp.csr_array(b)
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def zero_pad(x: torch.Tensor, pads: Any) -> torch.Tensor:
    """Zero padding per axis, negative = crop, of any amount (pad first, then crop)."""
    grown = F.pad(x, [max(v, 0) for pair in reversed(pads) for v in pair])
    return F.pad(grown, [min(v, 0) for pair in reversed(pads) for v in pair])


# -- strategies ------------------------------------------------------------------------------------------


@st.composite
def weighted(
    draw: Any, *, transposed: bool | None = None, crop: bool = False
) -> tuple[Layer, tuple[int, ...], np.ndarray]:
    """A (transposed) convolution layer with crops, negative transposed pads, output_padding ≥ stride."""
    kind = draw(st.sampled_from(["conv", "conv_transpose"])) if transposed is None else (
        "conv_transpose" if transposed else "conv"
    )  # fmt: skip
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel, stride, dilation = per(1, 3), per(1, 3), per(1, 3)
    spatial = per(1, (9, 6, 3)[ndim - 1])
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    padding: Any = tuple((draw(st.integers(-2, 3)), draw(st.integers(-2, 3))) for _ in range(ndim))
    params: dict[str, Any] = dict(kernel_size=kernel, stride=stride, dilation=dilation, groups=groups, padding=padding)
    if crop:  # a zero padding that crops on the first axis
        padding = ((draw(st.integers(-2, -1)), padding[0][1]), *padding[1:])
        params["padding"] = padding
    if kind == "conv":
        modes = ["zeros"] if crop else ["zeros", "zeros", "reflect", "replicate", "circular"]
        params["padding_mode"] = draw(st.sampled_from(modes))
        layout = (c_out, c_in // groups)
    else:
        if draw(st.booleans()):
            params["padding"] = draw(st.sampled_from(["same_upper", "same_lower", "valid", "same_tf"]))
        if params["padding"] != "same_tf":
            params["output_padding"] = tuple(
                draw(st.integers(0, max(s, d))) for s, d in zip(stride, dilation, strict=True)
            )
        layout = (c_in, c_out // groups)
    try:
        layer = Layer(f"{kind}{ndim}d", c_in, c_out, **params)
        layer.bind(spatial)
    except ConvArithError:
        assume(False)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return layer, (c_in, *spatial), rng.standard_normal((*layout, *kernel))


def keyword_form(layer: Layer, spatial: tuple[int, ...]) -> dict[str, Any]:
    """PyTorch's keywords of a bound layer (resolved pads)."""
    bound = layer.bind(spatial)
    kw: dict[str, Any] = dict(stride=layer.stride, padding=bound.pads, dilation=layer.dilation, groups=layer.groups)
    if layer.transposed:
        kw["output_padding"] = bound.output_padding
    else:
        kw["padding_mode"] = layer.padding_mode
    return kw


# -- layer-first = keyword form ----------------------------------------------------------------------------


@settings(max_examples=120)
@given(weighted(), st.integers(0, 2**32 - 1))
def test_layer_first_equals_keyword_form_wherever_pytorch_accepts(case: Any, seed: int) -> None:
    layer, shape, w = case
    kw = keyword_form(layer, shape[1:])
    x = np.random.default_rng(seed).standard_normal((2, *shape))
    op, methods = (conv_transpose, CONV_TRANSPOSE_METHODS) if layer.transposed else (conv, CONV_METHODS)
    try:
        keyword = op(x, w, **kw)
    except ConvArithError:
        event("PyTorch refuses: layer-first only")
        keyword = None
    bound = layer.bind((2, *shape))
    for method in methods:
        first = op(x, w, layer=layer, method=method)
        again = op(x[0], w, layer=bound, method=method)
        close(again, first[0])
        if keyword is not None:
            close(first, keyword)
    matrix = conv_matrix(layer, w, shape[1:])
    close(np.asarray(matrix @ x[1].ravel()), first[1].ravel())
    if keyword is not None:
        assert same_csr(matrix, conv_matrix(layer.op, w, shape, **kw))
        flat = conv_operator(layer.op, w, shape, **kw).matvec(x[0].ravel())
        assert np.array_equal(conv_operator(layer, w, shape).matvec(x[0]), flat.reshape(keyword.shape[1:]))
    assert dot_test(conv_operator(bound, w), rng=seed) <= 1e-12


@settings(max_examples=80)
@given(
    st.sampled_from(["max_pool", "avg_pool"]),
    st.integers(1, 2),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_pool_layer_first_equals_keyword_form(kind: str, ndim: int, seed: int, data: Any) -> None:
    per = lambda lo, hi: tuple(data.draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel = per(1, 4)
    params: dict[str, Any] = dict(
        kernel_size=kernel,
        stride=per(1, 3),
        padding=tuple(data.draw(st.integers(0, k // 2)) for k in kernel),
        ceil_mode=data.draw(st.booleans()),
    )
    if kind == "avg_pool":
        params["count_include_pad"] = data.draw(st.booleans())
        params["divisor_override"] = data.draw(st.sampled_from([None, 1, 3]))
    else:
        params["dilation"] = per(1, 2)
    spatial = per(4, 9)
    x = np.random.default_rng(seed).standard_normal((3, *spatial))
    layer = Layer(f"{kind}{ndim}d", **params)
    fn = max_pool if kind == "max_pool" else avg_pool
    try:
        keyword = fn(x, **params, ndim=ndim)
    except ConvArithError:
        assume(False)
    assert np.array_equal(fn(x, layer=layer), keyword)
    assert np.array_equal(fn(x[None], layer=layer.bind((1, *x.shape)))[0], keyword)
    at = x if kind == "max_pool" else None
    first = pool_matrix(layer, x.shape, at=at)
    assert same_csr(first, pool_matrix(f"{kind}{ndim}d", x.shape, at=at, **params))
    close(np.asarray(first @ x.ravel()), keyword.ravel())


# -- the adjoint's matrix is exactly Cᵀ ----------------------------------------------------------------


@settings(max_examples=200)
@given(weighted())
def test_adjoint_matrix_is_exactly_the_transpose(case: Any) -> None:
    layer, shape, w = case
    assume(layer.padding_mode == "zeros")
    bound = layer.bind(shape)
    adjoint = bound.adjoint()
    a = bound.output_padding
    if bound.transposed and any(p >= s for p, s in zip(a, layer.stride, strict=True)):
        event("output_padding ≥ stride")
    if min(p for pair in bound.pads for p in pair) < 0:
        event("negative pads")
    assert adjoint.input_shape == bound.sample_output_shape and adjoint.output_shape == bound.sample_input_shape
    c = conv_matrix(bound, w)
    ct = conv_matrix(adjoint, w)
    assert same_csr(ct, c.T)
    assert same_csr(conv_matrix(adjoint.adjoint(), w), c) or bound.transposed  # a conv's adjoint's adjoint is itself


# -- negative transposed pads: ONNX's SAME_UPPER / SAME_LOWER ---------------------------------------------


def onnx_conv_transpose(x: np.ndarray, w: np.ndarray, layer: Layer) -> np.ndarray:
    auto_pad = {"same_upper": "SAME_UPPER", "same_lower": "SAME_LOWER"}[str(layer.padding)]
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w"],
        ["y"],
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        group=layer.groups,
        auto_pad=auto_pad,
        output_padding=list(layer.output_padding),
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in ("x", "w")],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return np.asarray(ReferenceEvaluator(model).run(None, {"x": x, "w": w})[0])


@settings(max_examples=60)
@given(
    st.integers(1, 2),
    st.sampled_from(["same_upper", "same_lower"]),
    st.integers(1, 2),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_negative_transposed_pads_equal_onnx_and_pytorch(
    ndim: int, policy: str, groups: int, seed: int, data: Any
) -> None:
    per = lambda lo, hi: tuple(data.draw(st.integers(lo, hi)) for _ in range(ndim))
    stride = per(2, 4)
    kernel = tuple(data.draw(st.integers(1, s)) for s in stride)  # mostly shorter than the stride
    dilation = per(1, 2)
    output_padding = tuple(data.draw(st.integers(0, s - 1)) for s in stride)
    spatial = per(1, 4)
    layer = Layer(
        f"conv_transpose{ndim}d", groups, 2 * groups, kernel_size=kernel, stride=stride, dilation=dilation,
        groups=groups, padding=policy, output_padding=output_padding,
    )  # fmt: skip
    bound = layer.bind((groups, *spatial))
    negative = min(p for pair in bound.pads for p in pair) < 0
    event("negative pads" if negative else "non-negative pads")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, groups, *spatial))
    w = rng.standard_normal((groups, 2, *kernel))
    # PyTorch: the full transposed convolution, output_padding's cells appended, then F.pad with −pads
    full = F.conv_transpose1d if ndim == 1 else F.conv_transpose2d
    t = full(torch.from_numpy(x), torch.from_numpy(w), stride=stride, dilation=dilation, groups=groups)
    expected = zero_pad(t, [(-b, op - a) for (b, a), op in zip(bound.pads, bound.output_padding, strict=True)]).numpy()
    assert expected.shape[2:] == tuple(i * s for i, s in zip(spatial, stride, strict=True))
    if groups == 1:  # ONNX's reference evaluator has no groups for ConvTranspose
        close(onnx_conv_transpose(x, w, layer), expected)
    for method in CONV_TRANSPOSE_METHODS:
        close(conv_transpose(x, w, layer=layer, method=method), expected)
    matrix = conv_matrix(layer, w, (groups, *spatial))
    close(np.asarray(matrix @ x[0].ravel()), expected[0].ravel())
    operator = conv_operator(bound, w)
    close(operator.matmat(x), expected)
    assert dot_test(operator, rng=seed) <= 1e-12
    # the §4.3 route's own input: a valid stride-1 convolution of it is the layer
    stretched = stretched_input(x, bound)
    plain = Layer(f"conv{ndim}d", kernel_size=kernel, dilation=dilation, groups=groups)
    direct = conv(stretched, direct_kernel(w, groups), layer=plain)
    close(direct, expected)


def test_same_upper_with_a_short_kernel_adds_output_cells() -> None:
    """k = 1, s = 3: ONNX's total padding is 1 − 3 = −2, split (−1, −1): one zero cell each side of the stamps."""
    layer = Layer("conv_transpose1d", 1, 1, kernel_size=1, stride=3, padding="same_upper")
    bound = layer.bind((1, 1, 2))
    assert bound.pads == ((-1, -1),) and bound.output_spatial == (6,)
    x, w = np.array([[[1.0, 2.0]]]), np.array([[[5.0]]])
    expected = onnx_conv_transpose(x, w, layer)
    assert expected.tolist() == [[[0.0, 5.0, 0.0, 0.0, 10.0, 0.0]]]
    for method in CONV_TRANSPOSE_METHODS:
        assert np.array_equal(conv_transpose(x, w, layer=layer, method=method), expected)
    with pytest.raises(ConvArithError) as err:  # PyTorch's keywords refuse a negative padding
        conv_transpose(x, w, stride=3, padding=-1)
    assert err.value.param == "padding"


# -- crops: negative zero padding of a convolution ----------------------------------------------------


@settings(max_examples=80)
@given(weighted(transposed=False, crop=True), st.integers(0, 2**32 - 1))
def test_conv_crops_equal_f_pad_and_pytorch(case: Any, seed: int) -> None:
    layer, shape, w = case
    pads = layer.bind(shape).pads
    x = np.random.default_rng(seed).standard_normal((2, *shape))
    fn = getattr(F, f"conv{layer.ndim}d")
    xt = zero_pad(torch.from_numpy(x), pads)
    expected = fn(xt, torch.from_numpy(w), stride=layer.stride, dilation=layer.dilation, groups=layer.groups).numpy()
    for method in CONV_METHODS:
        close(conv(x, w, layer=layer, method=method), expected)
    with pytest.raises(ConvArithError) as err:
        conv(x, w, **keyword_form(layer, shape[1:]))
    assert err.value.param == "padding"


# -- dilated average pooling: ONNX's AveragePool ----------------------------------------------------------


def onnx_avg_pool(x: np.ndarray, layer: Layer, pads: Any) -> np.ndarray:
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=[b for b, _ in pads] + [a for _, a in pads],
        count_include_pad=int(layer.count_include_pad),
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, None)],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return np.asarray(ReferenceEvaluator(model).run(None, {"x": x})[0])


@settings(max_examples=40)
@given(st.integers(1, 2), st.booleans(), st.integers(0, 2**32 - 1), st.data())
def test_dilated_avg_pool_equals_onnx(ndim: int, count_include_pad: bool, seed: int, data: Any) -> None:
    per = lambda lo, hi: tuple(data.draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel, dilation, stride = per(1, 3), per(1, 3), per(1, 2)
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    pads = tuple((data.draw(st.integers(0, e // 2)), data.draw(st.integers(0, e // 2))) for e in extents)
    spatial = tuple(data.draw(st.integers(e, e + 4)) for e in extents)
    layer = Layer(
        f"avg_pool{ndim}d", kernel_size=kernel, stride=stride, dilation=dilation, padding=pads,
        count_include_pad=count_include_pad,
    )  # fmt: skip
    event("dilated" if max(dilation) > 1 else "not dilated")
    x = np.random.default_rng(seed).standard_normal((1, 2, *spatial))
    expected = onnx_avg_pool(x, layer, pads)
    got = avg_pool(x, layer=layer)
    close(got, expected)
    close(np.asarray(pool_matrix(layer, x.shape[1:]) @ x[0].ravel()), expected[0].ravel())
    with pytest.raises(ConvArithError) as err:  # PyTorch's keywords: avg_pool has no dilation
        pool_matrix(f"avg_pool{ndim}d", x.shape[1:], kernel_size=1, dilation=2)
    assert err.value.param == "dilation"


# -- the review's defects: everything bad is a ConvArithError --------------------------------------------


def test_divisor_override_float_is_refused_and_numpy_int_accepted_everywhere() -> None:
    """The two old validations disagreed: pool_matrix refused np.int64(2), avg_pool took 2.5 to a TypeError."""
    x = np.arange(1.0, 17.0).reshape(1, 1, 2, 8)
    expected = F.avg_pool2d(torch.from_numpy(x), 2, divisor_override=3).numpy()
    for value in (3, np.int64(3), np.int32(3)):
        assert np.array_equal(avg_pool(x, 2, divisor_override=value), expected)
        matrix = pool_matrix("avg_pool2d", (1, 2, 8), kernel_size=2, divisor_override=value)
        close(np.asarray(matrix @ x.ravel()), expected.ravel())
        layer = Layer("avg_pool2d", kernel_size=2, divisor_override=value)
        assert np.array_equal(avg_pool(x, layer=layer), expected)
    # F.avg_pool1d has no divisor_override (PyTorch raises TypeError): the keyword form refuses, the layer computes
    x1 = x[:, :, 0]
    with pytest.raises(ConvArithError) as refused:
        avg_pool(x1, 2, divisor_override=3)
    assert refused.value.param == "divisor_override"
    as_2d = F.avg_pool2d(torch.from_numpy(x1)[:, :, None], (1, 2), divisor_override=3)[:, :, 0].numpy()
    assert np.array_equal(avg_pool(x1, layer=Layer("avg_pool1d", kernel_size=2, divisor_override=3)), as_2d)
    for value in (2.5, 3.0, "3", True):
        for call in (
            lambda v=value: avg_pool(x, 2, divisor_override=v),
            lambda v=value: pool_matrix("avg_pool2d", (1, 2, 8), kernel_size=2, divisor_override=v),
        ):
            with pytest.raises(ConvArithError) as err:
                call()
            assert err.value.param == "divisor_override"


BAD_CALLS: list[tuple[str, Any]] = [
    # None shapes
    ("input_shape", lambda: conv_matrix("conv2d", np.ones((1, 1, 3, 3)), None)),
    ("input_shape", lambda: conv_matrix(Layer("conv2d", kernel_size=3), np.ones((1, 1, 3, 3)), None)),
    ("input_shape", lambda: pool_matrix("avg_pool2d", None, kernel_size=2)),
    ("input_shape", lambda: pool_matrix(Layer("avg_pool2d", kernel_size=2))),
    ("input_shape", lambda: conv_operator("conv1d", np.ones((1, 1, 3)), None)),
    ("input_shape", lambda: conv_operator("conv1d", np.ones((1, 1, 3)), [None, 5])),
    # mismatched dimensions (were IndexError)
    ("input", lambda: conv(np.ones((1, 1, 1, 1, 5)), np.ones((1, 1, 3)))),
    ("input", lambda: conv(np.ones((5,)), np.ones((1, 1, 3)))),
    ("input", lambda: conv(np.ones((1, 1, 1, 5)), np.ones((1, 1, 3)), layer=Layer("conv1d", kernel_size=3))),
    ("weight", lambda: conv(np.ones((1, 1, 5)), np.ones((1, 1, 3, 3)), layer=Layer("conv1d", kernel_size=3))),
    ("input", lambda: max_pool(np.ones((5,)), (2, 2))),
    ("input", lambda: avg_pool(np.ones((2, 1, 1, 5)), layer=Layer("avg_pool1d", kernel_size=2))),
    ("input_shape", lambda: conv_matrix("conv2d", np.ones((1, 1, 3, 3)), (1, 5))),
    ("weight", lambda: conv_matrix("conv2d", np.ones((1, 1, 3)), (1, 5, 5))),
    ("weight", lambda: conv_transpose(np.ones((1, 2, 3)), np.ones((1, 1, 2)))),
    ("input", lambda: stretched_input(np.ones((1, 1, 3, 3)), Layer("conv_transpose1d", kernel_size=2).bind((3,)))),
    ("layer", lambda: conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), layer=Layer("conv_transpose1d", kernel_size=3))),
    ("stride", lambda: conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), layer=Layer("conv1d", kernel_size=3), stride=2)),
    ("padding", lambda: pool_matrix(Layer("max_pool1d", kernel_size=2), (4,), padding=1, at=np.ones((1, 4)))),
    # huge strides and kernels (were OverflowError): PyTorch's keywords refuse what overflows int64
    ("stride", lambda: conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), stride=10**20)),
    ("kernel_size", lambda: max_pool(np.ones((1, 1, 5)), 10**20, padding=5 * 10**19)),
    ("memory_budget", lambda: pool_matrix(Layer("avg_pool1d", kernel_size=10**15, padding=10**15 // 2), (5,))),
    # huge paddings (were MemoryError): refused up front, naming the bytes
    ("input_shape", lambda: conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=10**6)),
    (
        "input_shape",
        lambda: conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), layer=Layer("conv2d", kernel_size=3, padding=10**9)),
    ),
    ("memory_budget", lambda: conv_matrix("conv2d", np.ones((1, 1, 3, 3)), (1, 5, 5), padding=10**9)),
    ("memory_budget", lambda: conv_matrix(Layer("conv1d", kernel_size=3, padding=10**12), np.ones((1, 1, 3)), (5,))),
    ("input_shape", lambda: max_pool(np.ones((1, 1, 5, 5)), layer=Layer("max_pool2d", kernel_size=3, padding=10**6))),
    (
        "input_shape",
        lambda: conv_transpose(
            np.ones((1, 1, 5, 5)),
            np.ones((1, 1, 3, 3)),
            layer=Layer("conv_transpose2d", kernel_size=3, padding=-(10**6)),
        ),
    ),
    (
        "input_shape",
        lambda: conv_operator(Layer("conv2d", kernel_size=3, padding=10**6), np.ones((1, 1, 3, 3)), (5, 5)).matvec(
            np.ones(25)
        ),
    ),
    # ragged and non-numeric arrays (were ValueError from NumPy)
    ("input", lambda: conv([[[1.0, 2.0], [3.0]]], np.ones((1, 1, 1)))),
    ("input", lambda: conv(np.array([[["a", "b"]]]), np.ones((1, 1, 1)))),
    ("weight", lambda: conv(np.ones((1, 1, 4)), [[[1.0], [2.0, 3.0]]])),
    ("weight", lambda: conv_matrix("conv1d", [[[1.0], [2.0, 3.0]]], (1, 4))),
    ("weight", lambda: conv_matrix("conv1d", np.array([[["x"]]]), (1, 4))),
    ("input", lambda: max_pool([[[1.0, 2.0], [3.0]]], 2)),
    ("at", lambda: pool_matrix("max_pool1d", (1, 4), kernel_size=2, at=[[1.0, 2.0], [3.0]])),
    ("bias", lambda: conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), [[1.0], [2.0, 3.0]])),
    ("weight", lambda: conv_operator("conv1d", [[[1.0], [2.0, 3.0]]], (1, 4))),
    ("dtype", lambda: conv_matrix("conv1d", np.ones((1, 1, 2)), (1, 4), dtype="not a dtype")),
    ("memory_budget", lambda: conv_matrix("conv1d", np.ones((1, 1, 2)), (1, 4), memory_budget=float("nan"))),
]


@pytest.mark.parametrize(("param", "call"), BAD_CALLS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_CALLS)])
def test_bad_values_raise_conv_arith_error_naming_the_parameter(param: str, call: Any) -> None:
    with np.errstate(all="raise"), pytest.raises(ConvArithError) as err:
        call()
    assert err.value.param == param, str(err.value)
    assert "\n" not in str(err.value)


def test_strides_and_dilations_like_10_to_the_20_are_computed_layer_first() -> None:
    """A stride that never steps and a dilation of a one-tap kernel change nothing: computed, no overflow."""
    x = np.arange(5.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 2.0]]])
    layer = Layer("conv1d", kernel_size=2, stride=10**20)
    expected = F.conv1d(torch.from_numpy(x), torch.from_numpy(w), stride=10).numpy()  # one window either way
    for method in CONV_METHODS:
        assert np.array_equal(conv(x, w, layer=layer, method=method), expected)
    assert np.array_equal(conv_matrix(layer, w, (5,), format="dense") @ x.ravel(), expected.ravel())
    transposed = Layer("conv_transpose1d", kernel_size=1, stride=10**20, dilation=10**20)
    for method in CONV_TRANSPOSE_METHODS:
        assert np.array_equal(conv_transpose(x[:, :, :1], w[..., :1], layer=transposed, method=method), 2 * x[:, :, :1])
    pooled = max_pool(x, layer=Layer("max_pool1d", kernel_size=5, stride=10**20))
    assert pooled.tolist() == [[[4.0]]]
    assert isinstance(layer.bind((5,)), BoundLayer)
