"""conv_operator against PyTorch's ops and autograd; the dot test passes exact adjoints and catches wrong ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator

import convarith
from convarith import ConvArithError, ConvSpec
from convarith.ops.operator import conv_operator, dot_test

torch.set_num_threads(1)
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@dataclass
class Layer:
    op: str
    ndim: int
    weight: np.ndarray
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any]

    @property
    def transposed(self) -> bool:
        return self.op.startswith("conv_transpose")


@st.composite
def layers(draw: Any, dtype: Any = np.float64) -> Layer:
    kind = draw(st.sampled_from(["conv", "conv_transpose"]))
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    kernel, stride, dilation = per(1, 4 if ndim < 3 else 3), per(1, 3), per(1, 3)
    spatial = per(1, 8 if ndim < 3 else 5)
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kwargs: dict[str, Any] = dict(stride=stride, dilation=dilation, groups=groups)
    if kind == "conv":
        mode = draw(st.sampled_from(list(MODES)))
        low = 0 if mode == "zeros" else -2
        kwargs["padding"] = tuple((draw(st.integers(low, 3)), draw(st.integers(low, 3))) for _ in range(ndim))
        kwargs["padding_mode"] = mode
        layout = (c_out, c_in // groups)
    else:
        kwargs["padding"] = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim))
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
        )
        layout = (c_in, c_out // groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_normal((*layout, *kernel)).astype(dtype)
    return Layer(f"{kind}{ndim}d", ndim, weight, (c_in, *spatial), kwargs)


def operator_or_none(layer: Layer) -> Any:
    try:
        operator = conv_operator(layer.op, layer.weight, layer.input_shape, **layer.kwargs)
    except ConvArithError:
        event("refused")
        return None
    event("built")
    return operator


def flat_pads(pads: Any) -> list[int]:
    return [p for pair in reversed(pads) for p in pair]


def torch_layer(layer: Layer, x: torch.Tensor) -> torch.Tensor | None:
    """The layer applied by PyTorch to a batch: F.pad + unpadded conv, or conv_transpose + crop."""
    w = torch.from_numpy(layer.weight)
    kw = layer.kwargs
    common = dict(stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])
    pads = kw["padding"]
    if kw.get("padding_mode") == "circular":
        for i, (b, a) in zip(layer.input_shape[1:], pads, strict=True):
            kept = i + min(b, 0) + min(a, 0)
            if kept < 1 or max(b, a) > kept:
                # F.pad refuses to wrap more than once without autograd but runs with it, and
                # returns uninitialised memory when nothing is kept: PyTorch has no answer here
                return None
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            if not layer.transposed:
                padded = F.pad(x, flat_pads(pads), mode=MODES[kw["padding_mode"]])
                return getattr(F, f"conv{layer.ndim}d")(padded, w, **common)  # type: ignore[no-any-return]
            full = getattr(F, f"conv_transpose{layer.ndim}d")(x, w, output_padding=kw["output_padding"], **common)
    except (RuntimeError, ValueError, NotImplementedError):
        return None
    crop = tuple(slice(b, n - a) for (b, a), n in zip(pads, full.shape[2:], strict=True))
    if any(s.stop - s.start < 1 for s in crop):
        return None  # the padding crops everything: PyTorch refuses such a padding
    return full[(..., *crop)]


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
    assert (operator is None) == (yt is None)
    if operator is None or yt is None:
        return
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
    if operator is not None:
        assert dot_test(operator, rng=seed) <= 1e-12


@settings(max_examples=100)
@given(layers(dtype=np.float32), st.integers(0, 2**32 - 1))
def test_float32_operators_pass_the_dot_test_in_float32(layer: Layer, seed: int) -> None:
    operator = operator_or_none(layer)
    if operator is not None:
        assert operator.dtype == np.float32
        assert dot_test(operator, rng=seed, dtype=np.float32) <= 1e-5


@settings(max_examples=150)
@given(layers(), st.integers(0, 2**32 - 1))
def test_operator_columns_are_the_sparse_matrix_c(layer: Layer, seed: int) -> None:
    """A·I column by column equals conv_matrix: the two are built independently."""
    from convarith.ops.matrix import conv_matrix

    operator = operator_or_none(layer)
    if operator is None or operator.shape[1] > 400:
        return
    dense = operator.matmat(np.eye(operator.shape[1]))
    matrix = conv_matrix(layer.op, layer.weight, layer.input_shape, **layer.kwargs).toarray()
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
        ("input_shape", lambda: conv_operator("conv2d", w, (1, 3, 5, 5))),
        ("input_shape", lambda: conv_operator("conv2d", w, (3, 2, 2))),
        ("output_padding", lambda: conv_operator("conv2d", w, (3, 5, 5), output_padding=1)),
        ("padding_mode", lambda: conv_operator("conv_transpose2d", w, (2, 5, 5), padding_mode="reflect")),
        ("weight", lambda: conv_operator("conv2d", w, (4, 5, 5))),
    ]
    for param, run in cases:
        with pytest.raises(ConvArithError) as err:
            run()
        assert err.value.param == param, (param, str(err.value))


def test_operator_carries_its_spec_and_shapes_and_handles_complex_vectors() -> None:
    w = np.random.default_rng(0).standard_normal((4, 2, 3))
    a = conv_operator("conv1d", w, (2, 10), stride=2, padding="same_tf")
    assert isinstance(a.spec, ConvSpec) and a.spec.pads == ((0, 1),)
    assert (a.input_shape, a.output_shape, a.shape) == ((2, 10), (4, 5), (20, 20))
    v = np.random.default_rng(1).standard_normal((20, 2))
    z = v[:, 0] + 1j * v[:, 1]
    assert np.allclose(a.matvec(z), a.matvec(v[:, 0]) + 1j * a.matvec(v[:, 1]), rtol=0, atol=1e-12)
    assert convarith.conv_operator is conv_operator
    assert convarith.dot_test is dot_test
