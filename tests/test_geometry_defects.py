"""Regression tests for the geometry defects of issue 7 (item 7), each against the real framework.

Each test failed on the code before the layer model (commit dfcb17e): coverage ignored the
padding mode and crops, ``transpose_of`` refused a crop with a non-zero padding mode, pooling
``stride=()`` was refused, transposed ``padding='valid'`` with ``output_padding`` was refused,
and the public API leaked ``TypeError``, returned a 4·10²⁰ size where PyTorch overflows, and ran
out of memory on huge paddings.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convarith import ConvArithError, Layer, coverage, output_shape, transpose_of
from oracle_torch import random_arrays, run_torch, torch_output_shape, torch_pad, torch_read_counts

MODES = ["zeros", "reflect", "replicate", "circular"]


def _outer(per_axis: list[tuple[int, ...]]) -> torch.Tensor:
    result = torch.ones((), dtype=torch.float64)
    for n, counts in enumerate(per_axis):
        shape = [1] * len(per_axis)
        shape[n] = len(counts)
        result = result * torch.tensor(counts, dtype=torch.float64).reshape(shape)
    return result


# -- coverage reads through the padding mode, and crops are never read -----------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "spatial"),
    [
        (1, 3, 1, (5,)),  # reflect/replicate/circular read x1/x0/x4 through the padding before
        (3, 2, 2, (6,)),
        (2, 3, ((2, 1),), (7,)),
        ((1, 3), (3, 2), ((1, 1), (2, 0)), (5, 6)),
        (3, 1, -1, (6,)),  # crops (negative padding)
        (2, 2, ((-2, 1),), (7,)),
        ((3, 1), (1, 2), ((-1, 2), (1, -2)), (6, 7)),
    ],
)
def test_coverage_counts_every_padding_mode_and_crop_like_autograd(
    mode: str, kernel: object, stride: object, padding: object, spatial: tuple[int, ...]
) -> None:
    """reads[cell] = d sum(conv(x, ones)) / dx[cell]: nonzero ⇔ read, through the padding too."""
    ndim = len(spatial)
    layer = Layer(f"conv{ndim}d", kernel_size=kernel, stride=stride, padding=padding, padding_mode=mode)  # type: ignore[arg-type]
    # (PyTorch's zeros mode refuses crops; the geometry defines them and F.pad computes them.)
    grad, _ = torch_read_counts(layer.bind(spatial))
    reads = [ax.reads for ax in coverage(layer, spatial)]
    assert torch.equal(grad, _outer(reads).expand_as(grad))
    assert [ax.unread_input for ax in coverage(layer, spatial)] == [
        tuple(int(c) for c in torch.nonzero(grad.sum(dim=[d for d in range(ndim) if d != n]) == 0).flatten())
        if ndim > 1
        else tuple(int(c) for c in torch.nonzero(grad == 0).flatten())
        for n in range(ndim)
    ]


def test_reflect_reads_cells_that_zeros_padding_never_reads() -> None:
    """kernel 1, stride 3, padding 1 over 5 cells: zero padding reads x2 only; reflect reads x1, x2, x3."""
    zeros = coverage(Layer("conv1d", kernel_size=1, stride=3, padding=1), (5,))[0]
    reflect = coverage(Layer("conv1d", kernel_size=1, stride=3, padding=1, padding_mode="reflect"), (5,))[0]
    assert zeros.unread_input == (0, 1, 3, 4)
    assert reflect.unread_input == (0, 4)
    x = torch.arange(5.0, dtype=torch.float64).reshape(1, 1, 5).requires_grad_()
    module = torch.nn.Conv1d(1, 1, 1, stride=3, padding=1, padding_mode="reflect", bias=False, dtype=torch.float64)
    torch.nn.init.ones_(module.weight)
    module(x).sum().backward()
    assert x.grad is not None
    assert tuple(int(c) for c in torch.nonzero(x.grad[0, 0] == 0).flatten()) == reflect.unread_input


def test_crop_cells_are_unread_and_counts_are_the_gradients() -> None:
    """padding -1 on 6 cells, kernel 3: cells 0 and 5 are cropped (old code: nonsense counts)."""
    (cov,) = coverage(Layer("conv1d", kernel_size=3, padding=-1, padding_mode="replicate"), (6,))
    assert cov.reads == (0, 1, 2, 2, 1, 0)
    assert cov.unread_input == (0, 5)


# -- transpose_of: crops with a non-zero padding mode ---------------------------------------------------


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "spatial"),
    [(3, 1, -1, (6,)), (3, 2, ((-1, 2),), (7,)), ((2, 3), (2, 1), ((1, -1), (-2, 1)), (6, 7))],
)
def test_transpose_of_a_crop_with_a_padding_mode_is_the_zero_mode_gradient(
    mode: str, kernel: object, stride: object, padding: object, spatial: tuple[int, ...]
) -> None:
    """The transposed layer's values are autograd's input gradient of the zero-mode conv over the
    cropped (and zero-padded) input: the same pads, zero padding, output_padding the remainder."""
    ndim = len(spatial)
    layer = Layer(f"conv{ndim}d", 2, 3, kernel_size=kernel, stride=stride, padding=padding, padding_mode=mode)  # type: ignore[arg-type]
    back = transpose_of(layer, spatial)
    assert back.padding_mode == "zeros"
    bound = layer.bind((2, *spatial))
    x, w, _ = random_arrays(bound, 7, batch=1)
    assert w is not None
    x.requires_grad_()
    y = F.__dict__[f"conv{ndim}d"](torch_pad(x, bound.pads), w, stride=layer.stride)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y.backward(g)
    transposed = back.bind((3, *bound.output_spatial))
    assert transposed.output_spatial == spatial
    got = run_torch(transposed, g, w)
    assert x.grad is not None
    assert torch.allclose(got, x.grad, rtol=0, atol=1e-12)


# -- pooling stride=() / [] ------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [(), []])
@pytest.mark.parametrize(
    ("op", "kernel", "shape"), [("max_pool1d", 3, (1, 2, 10)), ("avg_pool2d", (2, 3), (1, 1, 7, 8))]
)
def test_pooling_empty_stride_means_the_kernel(op: str, kernel: object, shape: tuple[int, ...], stride: object) -> None:
    theirs = torch_output_shape(op, shape, kernel_size=kernel, stride=stride)
    assert theirs is not None
    assert output_shape(op, shape, kernel_size=kernel, stride=stride) == theirs  # type: ignore[arg-type]
    layer = Layer(op, kernel_size=kernel, stride=stride)  # type: ignore[arg-type]
    assert layer.stride == layer.kernel_size
    assert layer.bind(shape).output_shape == theirs


def test_convolution_empty_stride_is_refused_like_pytorch() -> None:
    assert torch_output_shape("conv1d", (1, 1, 8), 1, kernel_size=3, stride=()) is None
    with pytest.raises(ConvArithError):
        output_shape("conv1d", (1, 1, 8), kernel_size=3, stride=())


# -- transposed padding='valid' with output_padding ------------------------------------------------------


@pytest.mark.parametrize(("kernel", "stride", "dilation", "a"), [(3, 2, 1, 1), (2, 3, 1, 2), (1, 1, 3, 2)])
def test_transposed_valid_with_output_padding_is_padding_zero(kernel: int, stride: int, dilation: int, a: int) -> None:
    """PyTorch's ConvTranspose has no string padding (TypeError at forward); 'valid' is padding 0, which
    PyTorch runs with output_padding."""
    x = torch.randn(1, 1, 4, dtype=torch.float64)
    w = torch.randn(1, 1, kernel, dtype=torch.float64)
    expected = F.conv_transpose1d(x, w, stride=stride, padding=0, output_padding=a, dilation=dilation)
    layer = Layer("conv_transpose1d", 1, 1, kernel_size=kernel, stride=stride, padding="valid", dilation=dilation,
                  output_padding=a)  # fmt: skip
    bound = layer.bind((1, 1, 4))
    assert bound.output_shape == tuple(expected.shape)
    assert torch.equal(run_torch(bound, x, w), expected)
    shape = output_shape("conv_transpose1d", (1, 1, 4), kernel_size=kernel, stride=stride, padding="valid",
                         dilation=dilation, output_padding=a)  # fmt: skip
    assert shape == tuple(expected.shape)


# -- the public geometry raises ConvArithError and nothing else ---------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: output_shape("conv1d", None, kernel_size=3),  # type: ignore[arg-type]
        lambda: output_shape("conv1d", 8, kernel_size=3),  # type: ignore[arg-type]
        lambda: output_shape("conv1d", "1,1,8", kernel_size=3),  # type: ignore[arg-type]
        lambda: output_shape("conv1d", (1, 1, 8, 8), kernel_size=3),
        lambda: output_shape("conv2d", (1, 1, 8), kernel_size=3),
        lambda: output_shape("conv1d", (1, 1, 8.0), kernel_size=3),  # type: ignore[arg-type]
        lambda: output_shape("conv1d", (1, 1, True), kernel_size=3),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=3.0),  # type: ignore[arg-type]
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=True),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=None),  # type: ignore[arg-type]
        lambda: output_shape("conv2d", (1, 1, 8, 8), kernel_size=(3, 3, 3)),
        lambda: output_shape("conv2d", (1, 1, 8, 8), kernel_size=3, padding=((1, 2, 3), 0)),
        lambda: output_shape("conv2d", (1, 1, 8, 8), kernel_size=3, padding=[[1], 0]),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=3, stride=10**20),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=10**20),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=3, dilation=10**20),
        lambda: output_shape("conv_transpose1d", (1, 1, 8), kernel_size=3, stride=10**20),
        lambda: output_shape("max_pool1d", (1, 1, 8), kernel_size=2, stride=10**20),
        lambda: output_shape("conv1d", (1, 1, 10**20), kernel_size=3),
        lambda: output_shape("conv_transpose1d", (1, 1, 8), kernel_size=3, padding=-(10**20)),
        lambda: output_shape("conv1d", (1, 1, 8), kernel_size=3, padding=10**20),
        lambda: output_shape("conv3d", (1, 1, 8, 8), kernel_size=3),
        lambda: output_shape(None, (1, 1, 8), kernel_size=3),  # type: ignore[arg-type]
        lambda: output_shape("conv0d", (1, 1), kernel_size=3),
        lambda: coverage(Layer("conv1d", kernel_size=3, padding=10**9), (4,)),
        lambda: coverage(Layer("conv1d", kernel_size=3, padding=10**9, padding_mode="circular"), (4,)),
        lambda: coverage(Layer("conv1d", kernel_size=3), None),  # type: ignore[arg-type]
        lambda: coverage(Layer("conv1d", kernel_size=3), (4, 4, 4, 4)),
        lambda: coverage(Layer("conv1d", kernel_size=3), (10**12,)),
        lambda: transpose_of(Layer("conv1d", kernel_size=3), None),
        lambda: transpose_of(Layer("conv1d", kernel_size=3), (2.5,)),  # type: ignore[arg-type]
    ],
)
def test_bad_values_raise_conv_arith_error_quickly(call: object) -> None:
    start = time.perf_counter()
    with pytest.raises(ConvArithError):
        call()  # type: ignore[operator]
    assert time.perf_counter() - start < 1.0


def test_pytorch_overflows_where_output_shape_refuses() -> None:
    """PyTorch: 'Overflow when unpacking long'; the old output_shape returned a size of 4·10²⁰."""
    for kwargs in ({"kernel_size": 3, "stride": 10**20}, {"kernel_size": 3, "dilation": 10**20}):
        assert torch_output_shape("conv1d", (1, 1, 8), 1, **kwargs) is None
        with pytest.raises(ConvArithError):
            output_shape("conv1d", (1, 1, 8), **kwargs)  # type: ignore[arg-type]
    assert torch_output_shape("conv_transpose1d", (1, 1, 8), 1, kernel_size=3, stride=10**20) is None


def test_numpy_integers_are_integers() -> None:
    np_shape = (np.int64(1), np.int32(2), np.int16(9))
    theirs = torch_output_shape("conv1d", (1, 2, 9), 4, kernel_size=3, stride=2)
    assert (
        output_shape("conv1d", np_shape, out_channels=np.int64(4), kernel_size=np.int8(3), stride=np.uint8(2)) == theirs
    )  # type: ignore[arg-type]
    layer = Layer("conv1d", np.int64(2), 4, kernel_size=[np.int32(3)], padding=[(np.int64(1), np.int8(0))])  # type: ignore[arg-type]
    assert layer.kernel_size == (3,) and layer.padding == ((1, 0),)
    assert all(type(v) is int for v in (*layer.kernel_size, *layer.padding[0], layer.in_channels))
    assert Layer("avg_pool2d", kernel_size=2, divisor_override=np.int64(3)).divisor_override == 3
    with pytest.raises(ConvArithError):
        Layer("avg_pool2d", kernel_size=2, divisor_override=3.0)  # type: ignore[arg-type]
    with pytest.raises(ConvArithError):
        Layer("avg_pool2d", kernel_size=2, divisor_override=np.float64(3))  # type: ignore[arg-type]


def test_huge_padding_coverage_refuses_without_allocating() -> None:
    """Above the cell limit coverage refuses (ConvArithError) instead of a MemoryError; the zero-mode
    diagnosis still counts exactly, in O(k log k): kernel 1, stride 2 reads every other cell."""
    layer = Layer("conv1d", kernel_size=1, stride=2, padding=10**12)
    start = time.perf_counter()
    with pytest.raises(ConvArithError):
        coverage(layer, (5,))
    found = {f.code: f.data for f in layer.bind((5,)).findings()}
    assert time.perf_counter() - start < 1.0
    assert found["unread-padding"]["before"] == found["unread-padding"]["after"] == 10**12 // 2
    assert found["unread-input"]["count"] == 2  # x1 and x3
    small = {f.code: f.data for f in Layer("conv1d", kernel_size=1, stride=2, padding=10).bind((5,)).findings()}
    assert small["unread-padding"] == {"before": 5, "after": 5}
    assert small["unread-input"]["cells"] == [1, 3]
