"""conv_operator against PyTorch's ops and autograd; the dot test passes exact adjoints and catches wrong ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator

import convarith
from convarith import BoundLayer, ConvArithError
from convarith import Layer as LayerModel
from convarith.ops.operator import ConvOperator, conv_operator, dot_test

torch.set_num_threads(1)
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def beyond_f_pad(size: int, pad: tuple[int, int], mode: str) -> bool:
    """Pads F.pad refuses (or answers inconsistently) for this mode: reflect ≥ size, circular > the kept size."""
    kept = size + min(pad[0], 0) + min(pad[1], 0)
    return (mode == "reflect" and max(pad) >= size) or (mode == "circular" and (kept < 1 or max(pad) > kept))


def zero_pad(x: torch.Tensor, pads: Any) -> torch.Tensor:
    """Zero padding (before, after) per axis, negative = crop, any amount: pad first, then crop
    (F.pad alone refuses a crop longer than what is there)."""
    grown = F.pad(x, [max(v, 0) for pair in reversed(pads) for v in pair])
    return F.pad(grown, [min(v, 0) for pair in reversed(pads) for v in pair])


def numpy_pad(x: torch.Tensor, pads: Any, mode: str) -> torch.Tensor:
    """Non-negative pads of any size through np.pad's index map (repeated reflection, wrapping), keeping autograd."""
    for axis, (size, pair) in enumerate(zip(x.shape[2:], pads, strict=True)):
        index = np.pad(np.arange(size), pair, mode=NUMPY_MODES[mode])
        x = x.index_select(2 + axis, torch.from_numpy(index))
    return x


@dataclass
class Layer:
    op: str
    ndim: int
    weight: np.ndarray
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    layer_first: bool = False

    @property
    def transposed(self) -> bool:
        return self.op.startswith("conv_transpose")


@st.composite
def layers(draw: Any, dtype: Any = np.float64) -> Layer:
    kind = draw(st.sampled_from(["conv", "conv_transpose"]))
    layer_first = draw(st.booleans())  # the layer's own rules: crops, negative transposed pads, any output_padding
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel, stride, dilation = per(1, 4 if ndim < 3 else 3), per(1, 3), per(1, 3)
    spatial = per(1, 8 if ndim < 3 else 5)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kwargs: dict[str, Any] = dict(stride=stride, dilation=dilation, groups=groups)
    if kind == "conv":
        mode = draw(st.sampled_from(list(MODES)))
        low = 0 if mode == "zeros" and not layer_first else -2
        kwargs["padding"] = tuple((draw(st.integers(low, 3)), draw(st.integers(low, 3))) for _ in range(ndim))
        kwargs["padding_mode"] = mode
        layout = (c_out, c_in // groups)
    else:
        low = -2 if layer_first else 0
        kwargs["padding"] = tuple((draw(st.integers(low, 3)), draw(st.integers(low, 3))) for _ in range(ndim))
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - (0 if layer_first else 1))) for s, d in zip(stride, dilation, strict=True)
        )
        layout = (c_in, c_out // groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_normal((*layout, *kernel)).astype(dtype)
    return Layer(f"{kind}{ndim}d", ndim, weight, (c_in, *spatial), kwargs, layer_first)


def operator_or_none(layer: Layer) -> Any:
    try:
        if layer.layer_first:
            model = LayerModel(layer.op, kernel_size=layer.weight.shape[2:], **layer.kwargs)
            operator = conv_operator(model, layer.weight, layer.input_shape)
        else:
            operator = conv_operator(layer.op, layer.weight, layer.input_shape, **layer.kwargs)
    except ConvArithError:
        event("refused")
        return None
    event("built")
    return operator


def flat_pads(pads: Any) -> list[int]:
    return [p for pair in reversed(pads) for p in pair]


def torch_layer(layer: Layer, x: torch.Tensor) -> torch.Tensor | None:
    """The layer applied by PyTorch to a batch: F.pad + unpadded conv, or the full conv_transpose
    zero-extended by its output_padding and then cropped (or zero-extended) by F.pad with the pads negated."""
    w = torch.from_numpy(layer.weight)
    kw = layer.kwargs
    common = dict(stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])
    pads = kw["padding"]
    mode = kw.get("padding_mode", "zeros")
    beyond = any(beyond_f_pad(i, pair, mode) for i, pair in zip(layer.input_shape[1:], pads, strict=True))
    if beyond and not (layer.layer_first and min(map(min, pads)) >= 0):
        # F.pad refuses to wrap more than once without autograd but runs with it, and returns
        # uninitialised memory when nothing is kept: PyTorch has no answer; the layer-first
        # operator's large pads (repeated reflection, wrapping) are checked against np.pad below
        return None
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            if not layer.transposed:
                if not layer.layer_first and kw["padding_mode"] == "zeros" and min(map(min, pads)) < 0:
                    return None  # PyTorch refuses a negative zero padding
                if mode == "zeros":
                    padded = zero_pad(x, pads)
                else:
                    padded = numpy_pad(x, pads, mode) if beyond else F.pad(x, flat_pads(pads), mode=MODES[mode])
                return getattr(F, f"conv{layer.ndim}d")(padded, w, **common)  # type: ignore[no-any-return]
            if not layer.layer_first and min(map(min, pads)) < 0:
                return None
            out_pad = kw["output_padding"]
            if not layer.layer_first and any(
                a >= max(s, d) for a, s, d in zip(out_pad, kw["stride"], kw["dilation"], strict=True)
            ):
                return None
            full = getattr(F, f"conv_transpose{layer.ndim}d")(x, w, **common)
    except (RuntimeError, ValueError, NotImplementedError):
        return None
    sizes = [n + a - b - p for n, a, (b, p) in zip(full.shape[2:], out_pad, pads, strict=True)]
    if min(sizes) < 1:
        return None  # the padding crops everything: no output
    return zero_pad(full, [(-b, a - p) for a, (b, p) in zip(out_pad, pads, strict=True)])


def close(got: np.ndarray, expected: np.ndarray, tolerance: float = 1e-12) -> bool:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = np.abs(expected).max() if expected.size else 0.0
    return bool(np.abs(got - expected).max() <= tolerance * scale) if expected.size else True


@settings(max_examples=400)
@given(layers(), st.integers(0, 2**32 - 1))
def test_matvec_is_pytorch_and_rmatvec_is_autograd(layer: Layer, seed: int) -> None:
    operator = operator_or_none(layer)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, *layer.input_shape))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch_layer(layer, xt)
    if layer.layer_first:
        # a layer computes whatever the math defines, also where PyTorch (the oracle) has no answer
        assert operator is not None or yt is None
    else:
        assert (operator is None) == (yt is None)  # PyTorch's keywords: refused exactly when PyTorch refuses
    assume(operator is not None and yt is not None)
    assert operator is not None and yt is not None
    assert operator.shape == (yt[0].numel(), x[0].size)
    assert operator.output_shape == tuple(yt.shape[1:])
    expected = yt.detach().numpy()
    assert close(operator.matvec(x[0].ravel()), expected[0].ravel())
    assert close(operator.matmat(x.reshape(3, -1).T), expected.reshape(3, -1).T)
    g = rng.standard_normal(expected.shape)
    yt.backward(torch.from_numpy(g))
    grad = xt.grad.numpy()  # type: ignore[union-attr]
    assert close(operator.rmatvec(g[0].ravel()), grad[0].ravel())
    assert close(operator.rmatmat(g.reshape(3, -1).T), grad.reshape(3, -1).T)
    assert close(operator.T @ g[1].ravel(), grad[1].ravel())


@settings(max_examples=400)
@given(layers(), st.integers(0, 2**32 - 1))
def test_dot_test_of_every_operator_is_rounding_error(layer: Layer, seed: int) -> None:
    operator = operator_or_none(layer)
    assume(operator is not None)
    assert dot_test(operator, rng=seed) <= 1e-12


@settings(max_examples=100)
@given(layers(dtype=np.float32), st.integers(0, 2**32 - 1))
def test_float32_operators_pass_the_dot_test_in_float32(layer: Layer, seed: int) -> None:
    operator = operator_or_none(layer)
    assume(operator is not None)
    assert operator.dtype == np.float32
    assert dot_test(operator, rng=seed, dtype=np.float32) <= 1e-5


@settings(max_examples=150)
@given(layers(), st.integers(0, 2**32 - 1))
def test_operator_columns_are_the_sparse_matrix_c(layer: Layer, seed: int) -> None:
    """A·I column by column equals conv_matrix: the two are built independently."""
    from convarith.ops.matrix import conv_matrix

    operator = operator_or_none(layer)
    assume(operator is not None and operator.shape[1] <= 400)
    dense = operator.matmat(np.eye(operator.shape[1]))
    matrix = conv_matrix(operator.layer, layer.weight).toarray()
    assert close(dense, matrix)
    assert close(operator.rmatmat(np.eye(operator.shape[0])), matrix.T)


# -- the dot test catches wrong adjoints -----------------------------------------------------------


def test_dot_test_catches_an_unflipped_kernel() -> None:
    """Using the convolution itself as its adjoint (no 180° rotation) is a classic mistake."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 1, 3, 3))
    a = conv_operator("conv2d", w, (1, 8, 8), padding=1)
    wrong = LinearOperator(a.shape, matvec=a.matvec, rmatvec=a.matvec, dtype=a.dtype)
    assert dot_test(a, rng=1) <= 1e-12
    assert dot_test(wrong, rng=1) > 1e-2


def test_dot_test_catches_an_adjoint_that_forgets_the_padding_fold() -> None:
    """With reflect padding the zero-padding adjoint (plain transposed conv) is wrong at the borders."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 3, 3, 3))
    a = conv_operator("conv2d", w, (3, 6, 7), padding=1, padding_mode="reflect")
    zeros = conv_operator("conv2d", w, (3, 6, 7), padding=1)
    wrong = LinearOperator(a.shape, matvec=a.matvec, rmatvec=zeros.rmatvec, dtype=a.dtype)
    assert dot_test(a, rng=2) <= 1e-12
    assert dot_test(wrong, rng=2) > 1e-3


def test_dot_test_catches_a_slightly_scaled_adjoint() -> None:
    rng = np.random.default_rng(0)
    a = conv_operator("conv_transpose1d", rng.standard_normal((2, 3, 4)), (2, 9), stride=3, padding=1)
    wrong = LinearOperator(a.shape, matvec=a.matvec, rmatvec=lambda v: (1 + 1e-6) * a.rmatvec(v), dtype=a.dtype)
    assert dot_test(a, rng=3) <= 1e-12
    assert dot_test(wrong, rng=3) > 1e-9


def test_dot_test_accepts_matrices_and_zero_operators() -> None:
    m = np.random.default_rng(0).standard_normal((4, 6))
    assert dot_test(m, rng=0) <= 1e-15
    assert dot_test(np.zeros((3, 2)), rng=0) == 0.0


# -- refusals and attributes ---------------------------------------------------------------------


def test_invalid_operators_raise_conv_arith_error_naming_the_parameter() -> None:
    w = np.zeros((2, 3, 3, 3))
    cases = [
        ("op", lambda: conv_operator("max_pool2d", w, (3, 5, 5))),
        ("op", lambda: conv_operator("convolution", w, (3, 5, 5))),
        ("weight", lambda: conv_operator("conv1d", w, (3, 5))),
        ("weight", lambda: conv_operator("conv2d", w.astype(np.int32), (3, 5, 5))),
        ("input_shape", lambda: conv_operator("conv2d", w, (2, 3, 5, 5))),  # one sample: a batch must be 1
        ("input_shape", lambda: conv_operator("conv2d", w, None)),
        ("stride", lambda: conv_operator(LayerModel("conv2d", kernel_size=3), w, (3, 5, 5), stride=2)),
        ("input_shape", lambda: conv_operator(LayerModel("conv2d", kernel_size=3), w)),
        ("op", lambda: conv_operator(LayerModel("max_pool2d", kernel_size=3), w, (3, 5, 5))),
        ("input_shape", lambda: conv_operator("conv2d", w, (3, 2, 2))),
        ("output_padding", lambda: conv_operator("conv2d", w, (3, 5, 5), output_padding=1)),
        ("padding_mode", lambda: conv_operator("conv_transpose2d", w, (2, 5, 5), padding_mode="reflect")),
        ("weight", lambda: conv_operator("conv2d", w, (4, 5, 5))),
    ]
    for param, run in cases:
        with pytest.raises(ConvArithError) as err:
            run()
        assert err.value.param == param, (param, str(err.value))


def test_operator_is_a_linear_operator_with_its_layer_and_shapes_and_handles_complex_and_nd() -> None:
    w = np.random.default_rng(0).standard_normal((4, 2, 3))
    a = conv_operator("conv1d", w, (2, 10), stride=2, padding="same_tf")
    assert isinstance(a, ConvOperator) and isinstance(a, LinearOperator)
    assert isinstance(a.layer, BoundLayer) and a.layer.pads == ((0, 1),) and a.layer.layer.padding == "same_tf"
    assert (a.input_shape, a.output_shape, a.shape) == ((2, 10), (4, 5), (20, 20))
    v = np.random.default_rng(1).standard_normal((20, 2))
    z = v[:, 0] + 1j * v[:, 1]
    assert np.allclose(a.matvec(z), a.matvec(v[:, 0]) + 1j * a.matvec(v[:, 1]), rtol=0, atol=1e-12)
    # N-d in, N-d out; a batch (k, *input_shape) in PyTorch's order
    x = np.random.default_rng(2).standard_normal((3, 2, 10))
    expected = F.conv1d(F.pad(torch.from_numpy(x), (0, 1)), torch.from_numpy(w), stride=2).numpy()
    assert close(a.matvec(x[0]), expected[0]) and a.matvec(x[0]).shape == (4, 5)
    assert close(a.matmat(x), expected) and a.matmat(x).shape == (3, 4, 5)
    assert close(a @ x[1], expected[1]) and close(a.dot(x), expected)
    assert a.rmatvec(expected[0]).shape == (2, 10) and a.rmatmat(expected).shape == (3, 2, 10)
    assert close(a.rmatvec(expected[0]).ravel(), a.rmatvec(expected[0].ravel()))
    for bad in (np.ones(7), np.ones((2, 9)), [[1.0], [2.0, 3.0]], np.array(["a"] * 20)):
        with pytest.raises(ConvArithError) as err:
            a.matvec(bad)
        assert err.value.param == "x"
    assert convarith.conv_operator is conv_operator
    assert convarith.dot_test is dot_test
    assert convarith.ConvOperator is ConvOperator


def test_layer_first_operator_equals_the_keyword_one() -> None:
    w = np.random.default_rng(3).standard_normal((4, 3, 3, 2))
    keyword = conv_operator("conv_transpose2d", w, (4, 5, 6), stride=2, padding=1, output_padding=1, groups=1)
    layer = LayerModel("conv_transpose2d", kernel_size=(3, 2), stride=2, padding=1, output_padding=1)
    for first in (conv_operator(layer, w, (5, 6)), conv_operator(layer.replace(out_channels=3).bind((4, 5, 6)), w)):
        assert first.shape == keyword.shape and first.output_shape == keyword.output_shape
        x = np.random.default_rng(4).standard_normal(keyword.shape[1])
        assert np.array_equal(first.matvec(x), keyword.matvec(x))
        assert dot_test(first, rng=5) <= 1e-12
