"""ConvOperator.to_pylops: PyLops' dot test, forward/adjoint equal convarith's and PyTorch's, PyLops solvers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from convarith import ConvArithError
from convarith.ops.operator import ConvOperator, conv_operator
from strategies import examples

pylops = pytest.importorskip("pylops")
from pylops.optimization.basic import cgls, lsqr  # noqa: E402
from pylops.utils import dottest  # noqa: E402

torch.set_num_threads(1)
TORCH_MODES = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@st.composite
def configs(draw: Any) -> tuple[str, np.ndarray, tuple[int, ...], dict[str, Any]]:
    """A PyTorch keyword call: conv or conv_transpose, 1 or 2 axes, stride, dilation, groups, padding mode."""
    transposed = draw(st.booleans())
    ndim = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2]))
    stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    spatial = tuple(draw(st.integers(5, 9)) for _ in range(ndim))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    kwargs: dict[str, Any] = dict(stride=stride, dilation=dilation, groups=groups, padding=padding)
    if transposed:
        kwargs["output_padding"] = draw(st.integers(0, max(stride, dilation) - 1))
        layout = (c_in, c_out // groups)
    else:
        kwargs["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        layout = (c_out, c_in // groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = rng.standard_normal((*layout, *kernel))
    op = f"{'conv_transpose' if transposed else 'conv'}{ndim}d"
    return op, weight, (c_in, *spatial), kwargs


def torch_forward(op: str, weight: np.ndarray, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """PyTorch's layer on a batch: F.pad for the non-zero padding modes, then the op."""
    kw = dict(kwargs)
    fn = getattr(F, op)
    mode = kw.pop("padding_mode", "zeros")
    if mode != "zeros":
        pad = kw.pop("padding")
        x = F.pad(x, [pad] * (2 * (x.ndim - 2)), mode=TORCH_MODES[mode])
    return fn(x, torch.from_numpy(weight), **kw)  # type: ignore[no-any-return]


def close(got: np.ndarray, expected: np.ndarray, tolerance: float = 1e-12) -> bool:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = max(float(np.abs(expected).max()), 1e-300)
    return bool(np.abs(got - expected).max() <= tolerance * scale)


@examples(200)
@given(configs(), st.integers(0, 2**32 - 1))
def test_pylops_operator_passes_dottest_and_is_convarith_and_pytorch(
    config: tuple[str, np.ndarray, tuple[int, ...], dict[str, Any]], seed: int
) -> None:
    op, weight, input_shape, kwargs = config
    try:
        a = conv_operator(op, weight, input_shape, **kwargs)
    except ConvArithError:
        assume(False)  # PyTorch refuses it too (an empty output, a reflect pad too wide)
        raise
    p = a.to_pylops()
    assert isinstance(p, pylops.LinearOperator) and p.conv is a
    assert (p.shape, p.dims, p.dimsd, p.dtype) == (a.shape, a.input_shape, a.output_shape, np.float64)
    assert p.explicit is False
    assert dottest(p, rtol=1e-12, raiseerror=False)  # PyLops' own dot test
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *input_shape))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = torch_forward(op, weight, xt, kwargs)
    expected = yt.detach().numpy()
    assert p.dimsd == expected.shape[1:]
    forward = p @ x[0]  # N-d in, N-d out
    assert forward.shape == a.output_shape
    assert np.array_equal(forward, a.matvec(x[0]))
    assert close(forward, expected[0])
    assert np.array_equal(p.matvec(x[0].ravel()), a.matvec(x[0].ravel()))
    assert close(p.matmat(x.reshape(2, -1).T), expected.reshape(2, -1).T)
    g = rng.standard_normal(expected.shape)
    yt.backward(torch.from_numpy(g))
    grad = xt.grad.numpy()  # type: ignore[union-attr]
    adjoint = p.H @ g[0]
    assert adjoint.shape == a.input_shape
    assert np.array_equal(adjoint, a.rmatvec(g[0]))
    assert close(adjoint, grad[0])
    assert np.array_equal(p.rmatvec(g[1].ravel()), a.rmatvec(g[1].ravel()))
    assert close(p.rmatmat(g.reshape(2, -1).T), grad.reshape(2, -1).T)


def test_float32_operator_keeps_its_dtype_and_passes_dottest_in_float32() -> None:
    w = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float32)
    p = conv_operator("conv2d", w, (3, 8, 9), stride=2, dilation=2, padding=2, padding_mode="reflect").to_pylops()
    assert p.dtype == np.float32 and (p.dims, p.dimsd) == ((3, 8, 9), (2, 4, 5))
    assert (p @ np.ones((3, 8, 9), dtype=np.float32)).dtype == np.float32
    assert dottest(p, rtol=1e-4)


def blur_kernel(size: int, sigma: float) -> np.ndarray:
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum())[None, None]


def image(n: int) -> np.ndarray:
    """A smooth blob plus a bright square on a 2-d grid."""
    u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    x = np.exp(-4 * ((u - 0.3) ** 2 + (v + 0.2) ** 2))
    x[n // 5 : n // 5 + n // 4, n // 2 : n // 2 + n // 4] += 1.0
    return x[None]


@pytest.mark.parametrize(
    ("solver", "kwargs"),
    [
        ("cgls", dict(dilation=2, padding=4, padding_mode="reflect")),  # same size, dilated blur
        ("lsqr", dict(stride=2, dilation=2, padding=4)),  # blur and subsample: underdetermined
        ("cgls", dict(stride=(2, 1), padding=(2, 2), padding_mode="circular")),
    ],
)
def test_pylops_solver_deblurs_an_image_through_a_strided_or_dilated_operator(
    solver: str, kwargs: dict[str, Any]
) -> None:
    """Least squares with PyLops' solvers on convarith's operator: the data residual drops below
    1e-3 of the data (from 1 at x = 0), and the reconstruction is closer to the truth than the
    blurred data's adjoint image."""
    x_true = image(24)
    a = conv_operator("conv2d", blur_kernel(5, 1.2), x_true.shape, **kwargs)
    p = a.to_pylops()
    y = p @ x_true
    if solver == "cgls":
        x = cgls(p, y.ravel(), niter=300, tol=1e-12)[0]
    else:
        x = lsqr(p, y.ravel(), niter=300, atol=1e-12, btol=1e-12)[0]
    x = x.reshape(p.dims)
    residual = np.linalg.norm((p @ x) - y) / np.linalg.norm(y)
    assert residual < 1e-3, residual
    error = np.linalg.norm(x - x_true) / np.linalg.norm(x_true)
    scaled = p.H @ y
    scaled *= float(np.vdot(scaled, x_true) / np.vdot(scaled, scaled))  # the best multiple of Aᵀy
    assert error < np.linalg.norm(scaled - x_true) / np.linalg.norm(x_true), error


def test_missing_pylops_is_a_conv_arith_error(monkeypatch: pytest.MonkeyPatch) -> None:
    a = conv_operator("conv1d", np.ones((1, 1, 2)), (1, 4))
    monkeypatch.setitem(sys.modules, "pylops", None)  # import pylops now raises ImportError
    with pytest.raises(ConvArithError) as err:
        a.to_pylops()
    assert err.value.param == "pylops"
    assert "pip install 'convarith[pylops]'" in str(err.value)


def test_convarith_does_not_import_pylops() -> None:
    code = "import sys, convarith, convarith.ops.operator; assert 'pylops' not in sys.modules, 'pylops imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert isinstance(conv_operator("conv1d", np.ones((1, 1, 2)), (1, 4)), ConvOperator)
