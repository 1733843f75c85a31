"""Matrix-free convolution operators with exact adjoints, and the dot test that checks an adjoint.

:func:`conv_operator` wraps one layer, for one sample, as a SciPy
:class:`~scipy.sparse.linalg.LinearOperator`: ``matvec`` is the layer (the GEMM route of
:mod:`convarith.ops.reference`), ``rmatvec`` its exact adjoint, ``matmat``/``rmatmat`` run a
batch at once. For a convolution with zero padding the adjoint is the transposed convolution;
with ``reflect``, ``replicate`` or ``circular`` padding (or a crop) the input is first gathered
through the padding's index map, so the adjoint ends with the scatter-add through the same map.
For a transposed convolution the adjoint is the direct convolution (cut to the transposed input
when ``output_padding`` ≥ stride leaves it windows the input has no cell for).

Examples
--------
>>> import numpy as np
>>> A = conv_operator("conv2d", np.ones((2, 1, 3, 3)), (1, 5, 5), stride=2, padding_mode="circular", padding=1)
>>> A.shape
(18, 25)
>>> dot_test(A, rng=0) < 1e-12
True
"""

from __future__ import annotations

import math
import operator as _operator
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from ..errors import ConvArithError
from ..geometry import ConvSpec, transpose_of
from ..geometry.shapes import WeightedLayer, weighted_layer
from ..geometry.spec import IntOrSeq, PaddingArg, parse_op
from .reference import _conv_gemm, _conv_transpose_gemm, _float_array, _pad_adjoint

__all__ = ["conv_operator", "dot_test"]

Array = npt.NDArray[Any]
Batch = Callable[[Array], Array]


def conv_operator(
    op: str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int],
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
) -> Any:
    """A convolution or transposed convolution of one sample as a matrix-free linear operator.

    Parameters
    ----------
    op
        ``conv1d``, ``conv2d``, … or ``conv_transpose1d``, … (any number of spatial axes).
    weight
        PyTorch's layout: ``(C_out, C_in/groups, *k)`` for ``conv``, ``(C_in, C_out/groups, *k)``
        for ``conv_transpose``; float32 or float64 (the operator's dtype).
    input_shape
        One sample, ``(C_in, *spatial)``.
    stride, padding, dilation, groups, output_padding, padding_mode
        As for :func:`convarith.ops.reference.conv` / :func:`~convarith.ops.reference.conv_transpose`.
        No bias: an operator is linear.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(C_out·∏out, C_in·∏in)`` (row-major unrolling, as :func:`~convarith.ops.matrix.conv_matrix`),
        with ``matvec``, ``rmatvec`` (exact adjoint), ``matmat`` and ``rmatmat``. It also carries
        ``spec`` (the resolved :class:`~convarith.geometry.ConvSpec`), ``input_shape`` and
        ``output_shape``.

    Raises
    ------
    ConvArithError
        For a pooling op, a weight of the wrong rank, or any configuration PyTorch refuses.

    Examples
    --------
    >>> import numpy as np
    >>> A = conv_operator("conv_transpose1d", np.array([[[1.0, 2.0]]]), (1, 3), stride=2)
    >>> A.matvec(np.array([1.0, 10.0, 100.0]))
    array([  1.,   2.,  10.,  20., 100., 200.])
    >>> A.rmatvec(np.arange(6.0))
    array([ 2.,  8., 14.])
    """
    kind, ndim = parse_op(op)
    if kind not in ("conv", "conv_transpose"):
        raise ConvArithError("op", "conv_operator takes conv… or conv_transpose… (pooling: see pool_matrix)", repr(op))
    w = _float_array("weight", weight)
    if w.ndim != ndim + 2:
        raise ConvArithError("weight", f"{op} needs a weight with {ndim + 2} axes", w.shape)
    try:
        shape = tuple(_operator.index(v) for v in input_shape)
    except TypeError:
        raise ConvArithError("input_shape", "must be a sequence of integers", repr(input_shape)) from None
    if len(shape) != ndim + 1:
        raise ConvArithError("input_shape", f"{op} acts on one sample: (C_in, {ndim} spatial sizes)", shape)
    layer = weighted_layer(
        kind,
        shape,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        output_padding=output_padding,
        padding_mode=padding_mode,
    )
    spec = layer.spec
    if kind == "conv":
        forward: Batch = lambda xs: _conv_gemm(xs, w, spec, layer.out_spatial)
        adjoint = _conv_adjoint(w, layer)
    else:
        forward = lambda ys: _conv_transpose_gemm(ys, w, spec, layer.out_spatial)
        adjoint = _conv_transpose_adjoint(w, layer)
    in_shape = (layer.in_channels, *layer.in_spatial)
    out_shape = (layer.out_channels, *layer.out_spatial)
    matvec, matmat = _columns(forward, in_shape, math.prod(out_shape), w.dtype)
    rmatvec, rmatmat = _columns(adjoint, out_shape, math.prod(in_shape), w.dtype)
    linear = LinearOperator(
        (math.prod(out_shape), math.prod(in_shape)),
        matvec=matvec,
        rmatvec=rmatvec,
        matmat=matmat,
        rmatmat=rmatmat,
        dtype=w.dtype,
    )
    linear.spec, linear.input_shape, linear.output_shape = spec, in_shape, out_shape
    return linear


def _conv_adjoint(weight: Array, layer: WeightedLayer) -> Batch:
    """Adjoint of a convolution: the transposed convolution back to the (padded) input, then, for
    a padding mode that folds, the scatter-add of the padded gradient through the index map."""
    spec = layer.spec
    if spec.padding_mode == "zeros":
        back = transpose_of(spec, layer.in_spatial)
        return lambda ys: _conv_transpose_gemm(ys, weight, back, layer.in_spatial)
    padded = tuple(i + b + a for i, (b, a) in zip(layer.in_spatial, spec.pads, strict=True))
    valid = replace(spec, padding=((0, 0),) * spec.ndim, padding_mode="zeros")
    back = transpose_of(valid, padded)
    return lambda ys: _pad_adjoint(
        _conv_transpose_gemm(ys, weight, back, padded), layer.in_spatial, spec.pads, spec.padding_mode
    )


def _conv_transpose_adjoint(weight: Array, layer: WeightedLayer) -> Batch:
    """Adjoint of a transposed convolution: the direct convolution it transposes (same kernel,
    stride, padding, dilation, groups), cut to the transposed input's cells."""
    spec = layer.spec
    direct = ConvSpec.create(
        f"conv{spec.ndim}d",
        kernel_size=spec.kernel_size,
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
    )
    back = direct.output_spatial(layer.out_spatial)
    cut = (slice(None), slice(None), *(slice(0, i) for i in layer.in_spatial))
    if back == layer.in_spatial:
        return lambda xs: _conv_gemm(xs, weight, direct, back)
    return lambda xs: np.ascontiguousarray(_conv_gemm(xs, weight, direct, back)[cut])


def _columns(
    batch: Batch, in_shape: tuple[int, ...], out_size: int, dtype: np.dtype[Any]
) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """matvec and matmat from a function of a batch: the columns of V are the samples."""

    def matmat(v: Array) -> Array:
        v = np.asarray(v)
        if np.iscomplexobj(v):  # a real operator acts on both parts
            return matmat(v.real) + 1j * matmat(v.imag)
        k = v.shape[1]
        samples = np.ascontiguousarray(v.T, dtype=dtype).reshape(k, *in_shape)
        return batch(samples).reshape(k, out_size).T

    def matvec(v: Array) -> Array:
        return matmat(np.asarray(v).reshape(-1, 1))[:, 0]

    return matvec, matmat


def dot_test(
    operator: Any,
    *,
    rng: int | np.random.Generator | None = None,
    dtype: npt.DTypeLike = np.float64,
    power_iterations: int = 3,
) -> float:
    """The normalised dot-test error ``|⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / (‖A‖·‖x‖·‖y‖)`` for random x, y.

    A correct adjoint gives rounding error only (about 1e-16 in float64, 1e-7 in float32); a wrong
    one gives an error of order 1/√size or more.

    ``‖A‖`` (the spectral norm) is estimated *from below*: the largest of ``‖Ax‖/‖x‖``,
    ``‖Aᵀy‖/‖y‖`` and ``‖Av‖`` for the unit vectors v of a few power iterations on ``AᵀA``
    started at x. A smaller denominator can only make the reported error larger, so the number is
    an upper bound of the error normalised by the true norm (when the adjoint is correct).

    Parameters
    ----------
    operator
        A :class:`~scipy.sparse.linalg.LinearOperator`, or anything
        :func:`~scipy.sparse.linalg.aslinearoperator` accepts (a dense or sparse matrix).
    rng
        Seed or generator of the random vectors.
    dtype
        dtype of x and y; the inner products are taken in float64.
    power_iterations
        Power iterations for the norm estimate (each costs one ``matvec`` and one ``rmatvec``).

    Returns
    -------
    float
        The normalised error (0.0 for a zero operator with a zero adjoint).

    Examples
    --------
    >>> import numpy as np
    >>> dot_test(np.arange(6.0).reshape(2, 3), rng=0)
    0.0
    >>> from scipy.sparse.linalg import LinearOperator
    >>> wrong = LinearOperator((2, 2), matvec=lambda v: v, rmatvec=lambda v: 2 * v, dtype=float)
    >>> dot_test(wrong, rng=0) > 0.1
    True
    """
    linear = aslinearoperator(operator)
    generator = np.random.default_rng(rng)
    m, n = linear.shape
    x = generator.standard_normal(n).astype(dtype)
    y = generator.standard_normal(m).astype(dtype)
    ax = np.asarray(linear.matvec(x), dtype=np.float64).ravel()
    aty = np.asarray(linear.rmatvec(y), dtype=np.float64).ravel()
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    forward, backward = float(np.dot(ax, y64)), float(np.dot(x64, aty))
    norm_x, norm_y = float(np.linalg.norm(x64)), float(np.linalg.norm(y64))
    norm_a = max(float(np.linalg.norm(ax)) / norm_x, float(np.linalg.norm(aty)) / norm_y)
    v = x64 / norm_x
    for _ in range(power_iterations):
        av = np.asarray(linear.matvec(v.astype(dtype)), dtype=np.float64).ravel()
        norm_a = max(norm_a, float(np.linalg.norm(av)) / float(np.linalg.norm(v)))
        w = np.asarray(linear.rmatvec(av.astype(dtype)), dtype=np.float64).ravel()
        norm_w = float(np.linalg.norm(w))
        if not np.isfinite(norm_w) or norm_w == 0.0:
            break
        v = w / norm_w
    denominator = norm_a * norm_x * norm_y
    if denominator == 0.0:
        return 0.0 if forward == backward else math.inf
    return abs(forward - backward) / denominator
