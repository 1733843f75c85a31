"""Exact NumPy convolutions, transposed convolutions and pools, N-d, by several independent routes.

Every function takes its layer in one of two forms. Layer-first, ``layer=`` a
:class:`~convarith.Layer` or :class:`~convarith.BoundLayer`: only the layer's own rules apply, so
whatever the mathematics defines is computed — a negative zero padding crops, a transposed
convolution's negative pads (ONNX ``same_upper`` with a kernel shorter than the stride) add output
cells, an average pool may be dilated (as ONNX's reference evaluator computes it). Or PyTorch's
keywords: the layer is built from them and refused exactly when PyTorch refuses it. Both forms
run the same kernels (:mod:`convarith.ops.kernels`) and return what ``torch.nn.functional``
returns (tested to 1e-12 in float64).

The routes compute the same numbers in different ways, so each one checks the others:

=====================  ============  ==============================================================
function               method        what it shows
=====================  ============  ==============================================================
:func:`conv`           ``gemm``      im2col: every window becomes a column of a matrix (a strided
                                     view, copied once), then one BLAS product per group
:func:`conv`           ``matrix``    ``y = C·x`` with the sparse matrix C of
                                     :func:`convarith.ops.matrix.conv_matrix`
:func:`conv`           ``taps``      a sum over kernel taps of strided input slices times weights
:func:`conv_transpose` ``gemm``      one BLAS product to columns, then col2im: each kernel tap's
                                     column is added into a strided slice of the output
:func:`conv_transpose` ``matrix``    ``Cᵀ·y``, C being the matrix of the layer's adjoint
                                     (:meth:`~convarith.BoundLayer.adjoint`, the direct convolution
                                     whose matrix it transposes)
:func:`conv_transpose` ``direct``    the guide's §4.3 (:meth:`~convarith.BoundLayer.direct`): insert
                                     ``s − 1`` zeros, pad by ``p′`` (crop where negative), rotate
                                     the kernel 180° and swap its in/out channel axes, then a plain
                                     stride-1 convolution
:func:`conv_transpose` ``scatter``   every input value stamps the kernel, times the value, into the
                                     output
:func:`conv_transpose` ``phase``     phase decomposition: the output cells ``q·s + r`` of each
                                     residue r take only the taps with ``t·d ≡ r (mod s)``, a
                                     stride-1 transposed convolution each, interleaved once
both                   ``fft``       the FFT: a stride-1 correlation (transposed: convolution) as a
                                     product of spectra, summed over channels per frequency
both                   ``winograd``  Winograd's F(2, 3) for kernel 3, stride 1, dilation 1: each
                                     tile of 2 output cells per axis from 4 transformed products,
                                     one BLAS product per transformed tap contracting the channels
both                   ``auto``      the route :func:`convarith.ops.routes.choose`'s cost model
                                     expects to be fastest for the shape (the default)
=====================  ============  ==============================================================

``taps`` of a layer whose groups have one input channel (depthwise) is one broadcast
multiply-add per tap over channels-last arrays. Every route but ``fft`` and ``winograd`` adds the
same products (in its own order); ``fft`` rounds like an FFT, about ``ε·log₂(size)`` of
``‖x‖·‖w‖``; ``winograd`` adds transformed products (its transforms only add, subtract and halve).

Examples
--------
>>> import numpy as np
>>> from convarith import Layer
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 3, 3))
>>> conv(x, w, layer=Layer("conv2d", kernel_size=3))[0, 0]
array([[45., 54.],
       [81., 90.]])
>>> conv(x, w)[0, 0]  # PyTorch's keywords: the same kernel
array([[45., 54.],
       [81., 90.]])
>>> y = np.ones((1, 1, 2, 2))
>>> conv_transpose(y, w)[0, 0]  # overlapping stamps of the kernel
array([[1., 2., 2., 1.],
       [2., 4., 4., 2.],
       [2., 4., 4., 2.],
       [1., 2., 2., 1.]])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from ..errors import ConvArithError
from ..geometry.bound import BoundLayer
from ..geometry.shapes import weighted_layer
from ..layer import IntOrSeq, Layer, PaddingArg, as_int
from ..rules import raise_refusals
from . import kernels, routes
from .binding import bind_pool, bind_weighted, reject_keywords, sample_of

__all__ = [
    "CONV_METHODS",
    "CONV_ROUTES",
    "CONV_TRANSPOSE_METHODS",
    "CONV_TRANSPOSE_ROUTES",
    "FloatArray",
    "apply",
    "avg_pool",
    "conv",
    "conv_transpose",
    "direct_kernel",
    "max_pool",
    "stretched_input",
]

FloatArray = npt.NDArray[np.floating[Any]]
"""A float32 or float64 array (the dtype of the input)."""

CONV_METHODS: tuple[str, ...] = ("gemm", "matrix", "taps")
"""The direct routes that add the same products as PyTorch (each in its own order)."""
CONV_TRANSPOSE_METHODS: tuple[str, ...] = ("gemm", "matrix", "direct", "scatter", "phase")
"""The transposed routes that add the same products as PyTorch."""
CONV_ROUTES: tuple[str, ...] = ("auto", *CONV_METHODS, "fft", "winograd")
"""Every ``method`` :func:`conv` takes."""
CONV_TRANSPOSE_ROUTES: tuple[str, ...] = ("auto", *CONV_TRANSPOSE_METHODS, "fft", "winograd")
"""Every ``method`` :func:`conv_transpose` takes."""

_CONV_DEFAULTS: dict[str, object] = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}
_TRANSPOSE_DEFAULTS: dict[str, object] = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1}
_MAX_DEFAULTS: dict[str, object] = {
    "kernel_size": None,
    "stride": None,
    "padding": 0,
    "dilation": 1,
    "ceil_mode": False,
}
_AVG_DEFAULTS: dict[str, object] = {
    "kernel_size": None,
    "stride": None,
    "padding": 0,
    "ceil_mode": False,
    "count_include_pad": True,
    "divisor_override": None,
}


# -- arguments -----------------------------------------------------------------------------------


def _check_method(method: object, methods: tuple[str, ...]) -> str:
    if not isinstance(method, str) or method not in methods:
        raise ConvArithError("method", f"must be one of {', '.join(methods)}", repr(method))
    return str(method)


def _check_fits(method: str, bound: BoundLayer) -> None:
    """Winograd's F(2, 3) exists for one shape of layer: refuse it, naming why, for any other."""
    if method == "winograd" and not routes.winograd_fits(bound):
        layer = bound.layer
        raise ConvArithError(
            "method",
            "'winograd' needs kernel 3, stride 1 and dilation 1 on every axis",
            f"kernel_size={layer.kernel_size}, stride={layer.stride}, dilation={layer.dilation}",
        )


def _same_dtype(name: str, array: kernels.Array, dtype: np.dtype[Any]) -> None:
    if array.dtype != dtype:
        raise ConvArithError(name, f"must have the input's dtype {dtype}", str(array.dtype))


def _weighted(
    kind: str,
    input: object,
    weight: object,
    bias: object,
    layer: object,
    keywords: Mapping[str, object],
    defaults: Mapping[str, object],
) -> tuple[kernels.Array, kernels.Array, kernels.Array | None, BoundLayer, bool]:
    """Arrays (batched) of one float dtype, the bound layer, and whether the input was unbatched."""
    xa = kernels.float_array("input", input)
    wa = kernels.float_array("weight", weight)
    _same_dtype("weight", wa, xa.dtype)
    if layer is None:
        if wa.ndim < 3:
            raise ConvArithError(
                "weight", f"a {kind} weight needs at least 3 axes (channels, channels, kernel…)", wa.shape
            )
        if xa.ndim not in (wa.ndim - 1, wa.ndim):
            raise ConvArithError(
                "input", f"with a {wa.ndim}-axis weight the input is (N, C, {wa.ndim - 2} spatial) or (C, …)", xa.shape
            )
        bound = weighted_layer(kind, xa.shape, wa.shape, **keywords)
    else:
        reject_keywords(keywords, defaults)
        if not isinstance(layer, Layer | BoundLayer):
            raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
        if layer.kind != kind:
            raise ConvArithError("layer", f"must be a {kind} layer", layer.op)
        if isinstance(layer, BoundLayer):
            bound = bind_weighted(layer, None, wa.shape)
        else:
            if xa.ndim not in (layer.ndim + 1, layer.ndim + 2):
                raise ConvArithError("input", f"{layer.op} takes (N, C, {layer.ndim} spatial) or (C, …)", xa.shape)
            bound = bind_weighted(layer, xa.shape, wa.shape, param="input")
    unbatched = sample_of(bound, xa.shape)
    ba = None
    if bias is not None:
        ba = kernels.float_array("bias", bias)
        _same_dtype("bias", ba, xa.dtype)
        if ba.shape != (bound.out_channels,):
            raise ConvArithError("bias", f"needs one value per output channel, shape ({bound.out_channels},)", ba.shape)
    return (xa[None] if unbatched else xa), wa, ba, bound, unbatched


def _finish(out: kernels.Array, bias: kernels.Array | None, unbatched: bool) -> FloatArray:
    out = np.ascontiguousarray(out)  # the FFT routes return a window of their transform
    if bias is not None:
        out += bias.reshape(-1, *(1,) * (out.ndim - 2))
    return out[0] if unbatched else out


# -- convolution ---------------------------------------------------------------------------------


def conv(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    layer: Layer | BoundLayer | None = None,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> FloatArray:
    """N-d convolution (PyTorch's cross-correlation), exactly as ``F.conv{N}d`` computes it.

    Parameters
    ----------
    input
        ``(N, C_in, *spatial)``, or unbatched ``(C_in, *spatial)``; float32 or float64.
    weight
        ``(C_out, C_in/groups, *kernel)`` (PyTorch's layout) of the same dtype.
    bias
        ``(C_out,)``, added to every output cell of its channel; optional.
    layer
        A ``conv`` :class:`~convarith.Layer` (channels it leaves open come from the weight) or a
        :class:`~convarith.BoundLayer` for this input. Only the layer's own rules apply: a
        negative zero padding crops, any policy is resolved. The keywords below must then stay
        at their defaults.
    stride, padding, dilation, groups, padding_mode
        Without ``layer``: PyTorch's keywords (the weight's rank sets the spatial axes, 1 to 9),
        refused exactly when PyTorch refuses them. ``padding`` also takes ``(before, after)``
        pairs per axis and the policies of :class:`~convarith.Layer`.
    method
        ``"auto"`` (the route the cost model of :func:`convarith.ops.routes.choose` expects to be
        fastest), ``"gemm"`` (im2col and one BLAS product per group and block of samples),
        ``"matrix"`` (``C @ x`` with the sparse matrix C), ``"taps"`` (a sum over kernel taps; a
        broadcast multiply-add per tap when each group has one input channel), ``"fft"`` (a
        product of spectra; for large kernels) or ``"winograd"`` (Winograd's F(2, 3): 4/9 of the
        multiply-adds of a 3×3 layer; kernel 3, stride 1 and dilation 1 on every axis only).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` (unbatched if the input was), in the input's dtype.

    Raises
    ------
    ConvArithError
        For what the layer (or PyTorch, without one) refuses, an unknown ``method``, arrays that
        are not float32/float64 or not of one dtype, shapes that do not fit the layer, a bias of
        the wrong shape, or work that does not fit in memory — naming the parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from convarith import Layer
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> conv(x, np.array([[[1.0, 0.0, -1.0]]]), padding=1, padding_mode="reflect")
    array([[[ 0., -2., -2., -2.,  0.]]])
    >>> conv(x, np.ones((1, 1, 2)), layer=Layer("conv1d", kernel_size=2, padding=[(-1, 0)]))  # a crop
    array([[[3., 5., 7.]]])
    """
    method = _check_method(method, CONV_ROUTES)
    keywords = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "padding_mode": padding_mode,
    }
    xa, wa, ba, bound, unbatched = _weighted("conv", input, weight, bias, layer, keywords, _CONV_DEFAULTS)
    _check_fits(method, bound)
    out = (
        _by_matrix(xa, wa, bound, transpose=False)
        if method == "matrix"
        else routes.runner(bound, wa, method, recent=True)(xa)
    )
    return _finish(out, ba, unbatched)


def _by_matrix(x: kernels.Array, weight: kernels.Array, bound: BoundLayer, *, transpose: bool) -> kernels.Array:
    """``C·x`` for every sample (the columns), or ``Cᵀ·x`` with C the matrix of ``bound``."""
    from .matrix import conv_matrix

    matrix = conv_matrix(bound, weight, dtype=x.dtype)
    n = x.shape[0]
    columns = x.reshape(n, -1).T
    out = np.asarray((matrix.T @ columns) if transpose else (matrix @ columns), dtype=x.dtype).T
    shape = bound.sample_input_shape if transpose else bound.sample_output_shape
    return np.ascontiguousarray(out).reshape(n, *shape)


# -- transposed convolution ----------------------------------------------------------------------


def conv_transpose(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    layer: Layer | BoundLayer | None = None,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    method: str = "auto",
) -> FloatArray:
    """N-d transposed convolution, exactly as ``F.conv_transpose{N}d`` computes it.

    Parameters
    ----------
    input
        ``(N, C_in, *spatial)``, or unbatched ``(C_in, *spatial)``; float32 or float64.
    weight
        ``(C_in, C_out/groups, *kernel)`` (PyTorch's layout for transposed convolutions), same dtype.
    bias
        ``(C_out,)``; optional.
    layer
        A ``conv_transpose`` :class:`~convarith.Layer` or :class:`~convarith.BoundLayer`. Only
        the layer's own rules apply: negative pads (ONNX ``same_upper``/``same_lower`` when
        ``d(k−1)+1 < s``) zero-extend the output instead of cropping it, ``output_padding`` may
        reach the stride. The keywords below must then stay at their defaults.
    stride, padding, output_padding, dilation, groups
        Without ``layer``: PyTorch's keywords; ``padding`` also takes ``(before, after)`` pairs
        (cropped from the output) and the transposed policies.
    method
        ``"auto"`` (the cost model's pick), ``"gemm"`` (one BLAS product to columns, then
        col2im), ``"matrix"`` (``Cᵀ·y`` with C the adjoint's matrix), ``"direct"`` (the
        equivalent stride-1 direct convolution of the guide's §4.3), ``"scatter"`` (every input
        value stamps the kernel into the output; slow, one step per input cell), ``"phase"``
        (one stride-1 transposed convolution per output phase, interleaved), ``"fft"`` or
        ``"winograd"`` (F(2, 3) through the direct equivalent; kernel 3, stride 1, dilation 1).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` with ``out = (i−1)s − p_b − p_a + d(k−1) + 1 + output_padding``.

    Raises
    ------
    ConvArithError
        As for :func:`conv`.

    Examples
    --------
    >>> import numpy as np
    >>> from convarith import Layer
    >>> y = np.array([[[1.0, 2.0]]])
    >>> w = np.array([[[1.0, 10.0, 100.0]]])
    >>> conv_transpose(y, w, stride=2)
    array([[[  1.,  10., 102.,  20., 200.]]])
    >>> conv_transpose(y, w, stride=2, method="direct")
    array([[[  1.,  10., 102.,  20., 200.]]])
    >>> # ONNX SAME_UPPER with a kernel shorter than the stride: pads (−1, −1) add output cells
    >>> conv_transpose(y, w[..., :1], layer=Layer("conv_transpose1d", kernel_size=1, stride=3, padding="same_upper"))
    array([[[0., 1., 0., 0., 2., 0.]]])
    """
    method = _check_method(method, CONV_TRANSPOSE_ROUTES)
    keywords = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }
    ya, wa, ba, bound, unbatched = _weighted(
        "conv_transpose", input, weight, bias, layer, keywords, _TRANSPOSE_DEFAULTS
    )
    _check_fits(method, bound)
    if method == "direct":
        eq = bound.direct().conv
        out = kernels.conv_gemm(kernels.zeros_between(ya, bound), direct_kernel(wa, bound.layer.groups), eq)
    elif method == "matrix":
        out = _by_matrix(ya, wa, bound.adjoint(), transpose=True)
    else:
        out = routes.runner(bound, wa, method, recent=True)(ya)
    return _finish(out, ba, unbatched)


def direct_kernel(weight: npt.ArrayLike, groups: int, *, rotate: bool = True, swap: bool = True) -> FloatArray:
    """A transposed convolution's kernel ``(C_in, C_out/G, *k)`` as its direct equivalent's ``(C_out, C_in/G, *k)``.

    Rotated by 180° on every spatial axis, in/out channel axes swapped within each group.
    ``rotate`` and ``swap`` exist to show what goes wrong without them (the tour does).

    Parameters
    ----------
    weight
        The transposed convolution's weight, PyTorch's layout.
    groups
        Its groups (they must divide ``C_in``).
    rotate, swap
        Switch either step off.

    Returns
    -------
    numpy.ndarray
        ``(C_out, C_in/G, *k)``.

    Examples
    --------
    >>> import numpy as np
    >>> direct_kernel(np.arange(6.0).reshape(2, 1, 3), 1)
    array([[[2., 1., 0.],
            [5., 4., 3.]]])
    """
    w = kernels.float_array("weight", weight)
    g = as_int("groups", groups)
    if w.ndim < 3:
        raise ConvArithError("weight", "needs the layout (C_in, C_out/groups, *kernel)", w.shape)
    c_in, c_out_g, *kernel = w.shape
    if g < 1 or c_in % g:
        raise ConvArithError("groups", f"must divide the weight's {c_in} input channels", g)
    if rotate:
        w = np.flip(w, axis=tuple(range(2, w.ndim)))
    if swap:
        w = w.reshape(g, c_in // g, c_out_g, *kernel).swapaxes(1, 2).reshape(g * c_out_g, c_in // g, *kernel)
    return np.ascontiguousarray(w)


def stretched_input(input: npt.ArrayLike, bound: BoundLayer) -> FloatArray:
    """The input of the direct convolution equivalent to the transposed ``bound`` (the guide's §4.3).

    ``s − 1`` zeros inserted between neighbours, then padded by ``p′`` of
    :meth:`~convarith.BoundLayer.direct` (``output_padding`` inside ``p′_a``), cropped where
    ``p′`` is negative: a stride-1 convolution without padding of this with
    :func:`direct_kernel` is the transposed convolution.

    Parameters
    ----------
    input
        ``(N, C_in, *i′)`` or ``(C_in, *i′)``, float32 or float64.
    bound
        A bound transposed convolution taking that input.

    Returns
    -------
    numpy.ndarray
        ``(N, C_in, *(ĩ′ + p′_b + p′_a))`` (unbatched if the input was).

    Examples
    --------
    >>> import numpy as np
    >>> from convarith import Layer
    >>> bound = Layer("conv_transpose1d", kernel_size=3, stride=2, padding=1, output_padding=1).bind((1, 3))
    >>> stretched_input(np.array([[1.0, 2.0, 3.0]]), bound)
    array([[0., 1., 0., 2., 0., 3., 0., 0.]])
    """
    if not isinstance(bound, BoundLayer):
        raise ConvArithError("bound", "must be a bound transposed convolution (Layer.bind)", type(bound).__name__)
    xa = kernels.float_array("input", input)
    eq = bound.direct().conv
    unbatched = sample_of(bound, xa.shape)
    xb = xa[None] if unbatched else xa
    stretched = kernels.zeros_between(xb, bound)
    sizes = math.prod(ax.padded for ax in eq.axes)
    kernels.check_memory(
        xb.shape[0] * xb.shape[1] * sizes * xb.dtype.itemsize, f"the stretched input of {bound.op}", xa.shape
    )
    out = kernels.pad(stretched, eq.pads)
    return out[0] if unbatched else out


# -- pooling -------------------------------------------------------------------------------------


def max_pool(
    input: npt.ArrayLike,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    *,
    layer: Layer | BoundLayer | None = None,
    ndim: int | None = None,
) -> FloatArray:
    """N-d max pooling, exactly as ``F.max_pool{N}d`` (the padding is −∞).

    Parameters
    ----------
    input
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; float32 or float64.
    kernel_size, stride, padding, dilation, ceil_mode
        PyTorch's keywords; ``stride=None`` is the kernel size. ``padding`` may also be
        ``(before, after)`` pairs or a policy.
    layer
        A ``max_pool`` :class:`~convarith.Layer` or :class:`~convarith.BoundLayer` instead of the
        keywords (which must then stay at their defaults); only its own rules apply.
    ndim
        Number of spatial axes for the keyword form. Default: ``len(kernel_size)`` when it is a
        sequence, otherwise ``input.ndim − 2`` (a batched input); give it for an unbatched input
        with an int kernel size.

    Returns
    -------
    numpy.ndarray
        ``(N, C, *out)`` (unbatched if the input was). A window of padding only gives −∞.

    Raises
    ------
    ConvArithError
        For what the layer (or PyTorch) refuses, or an input that does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> from convarith import Layer
    >>> max_pool(np.array([[[1.0, 5.0, 2.0, 4.0, 3.0]]]), 2, ceil_mode=True)
    array([[[5., 4., 3.]]])
    >>> max_pool(np.array([[1.0, 5.0, 2.0, 4.0, 3.0]]), layer=Layer("max_pool1d", kernel_size=3, stride=1))
    array([[5., 5., 4.]])
    """
    keywords = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil_mode,
    }
    return _pool("max_pool", input, keywords, _MAX_DEFAULTS, layer, ndim)


def avg_pool(
    input: npt.ArrayLike,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    layer: Layer | BoundLayer | None = None,
    ndim: int | None = None,
) -> FloatArray:
    """N-d average pooling, exactly as ``F.avg_pool{N}d``, PyTorch's divisor rules included.

    The divisor is the number of the window's taps inside the padded input
    (``count_include_pad=True``; a ``ceil_mode`` window that runs past the padding counts only
    what it covers), inside the input (``count_include_pad=False``), or ``divisor_override``.
    A layer may be dilated (ONNX's ``AveragePool`` is; PyTorch's is not): the same counts over
    the dilated taps, as ONNX's reference evaluator computes them.

    Parameters
    ----------
    input
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; float32 or float64.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        PyTorch's keywords; ``stride=None`` is the kernel size. ``padding`` may also be
        ``(before, after)`` pairs or a policy. ``divisor_override`` is an integer (NumPy's too).
    layer
        An ``avg_pool`` :class:`~convarith.Layer` or :class:`~convarith.BoundLayer` instead of
        the keywords (which must then stay at their defaults).
    ndim
        Number of spatial axes for the keyword form, as for :func:`max_pool`.

    Returns
    -------
    numpy.ndarray
        ``(N, C, *out)``. A window with no cell to count (possible with dilation and
        ``count_include_pad=False``) gives NaN, as in ONNX.

    Raises
    ------
    ConvArithError
        For what the layer (or PyTorch) refuses, or an input that does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    >>> avg_pool(x, 2, padding=1)
    array([[[0.5, 2.5, 4.5]]])
    >>> avg_pool(x, 2, padding=1, count_include_pad=False)
    array([[[1. , 2.5, 4.5]]])
    """
    keywords = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }
    return _pool("avg_pool", input, keywords, _AVG_DEFAULTS, layer, ndim)


def _pool_ndim(x: kernels.Array, kernel_size: object, ndim: int | None) -> int:
    if ndim is not None:
        value = as_int("ndim", ndim)
        if value < 1:
            raise ConvArithError("ndim", "must be at least 1", value)
        return value
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str):
        return len(kernel_size)
    if x.ndim < 3:
        raise ConvArithError("input", "needs (N, C, *spatial); pass ndim= for an unbatched input", x.shape)
    return x.ndim - 2


def _pool(
    kind: str,
    input: object,
    keywords: Mapping[str, object],
    defaults: Mapping[str, object],
    layer: object,
    ndim: int | None,
) -> FloatArray:
    xa = kernels.float_array("input", input)
    if layer is None:
        if keywords["kernel_size"] is None:
            raise ConvArithError("kernel_size", "is required (or pass layer=)", None)
        nd = _pool_ndim(xa, keywords["kernel_size"], ndim)
        if xa.ndim not in (nd + 1, nd + 2):
            raise ConvArithError("input", f"a {nd}-d pool takes (N, C, {nd} spatial) or (C, …)", xa.shape)
        built = Layer(f"{kind}{nd}d", **keywords)  # type: ignore[arg-type]
        raise_refusals(built, xa.shape, framework="torch")
        bound = built.bind(xa.shape)
    else:
        reject_keywords(keywords, defaults)
        if not isinstance(layer, Layer | BoundLayer):
            raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
        if layer.kind != kind:
            raise ConvArithError("layer", f"must be a {kind} layer", layer.op)
        if ndim is not None and as_int("ndim", ndim) != layer.ndim:
            raise ConvArithError("ndim", f"the layer has {layer.ndim} spatial axes", ndim)
        if isinstance(layer, BoundLayer):
            bound = bind_pool(layer, None)
        else:
            if xa.ndim not in (layer.ndim + 1, layer.ndim + 2):
                raise ConvArithError("input", f"{layer.op} takes (N, C, {layer.ndim} spatial) or (C, …)", xa.shape)
            bound = bind_pool(layer, xa.shape, param="input")
    unbatched = sample_of(bound, xa.shape)
    xb = xa[None] if unbatched else xa
    out = _pool_kernel(xb, bound)
    return out[0] if unbatched else out


def _pool_kernel(x: kernels.Array, bound: BoundLayer) -> kernels.Array:
    """Window max or mean over the padded input, extended by the ``ceil_mode`` overhang."""
    layer = bound.layer
    nd = layer.ndim
    stride, dilation = kernels.steps(bound)
    sizes = tuple(ax.padded + ax.overhang for ax in bound.axes)
    kernels.check_memory(x.shape[0] * x.shape[1] * math.prod(sizes) * x.dtype.itemsize * 2, layer.op, x.shape)
    maximum = layer.kind == "max_pool"
    padded = np.full((*x.shape[:2], *sizes), -np.inf if maximum else 0.0, x.dtype)
    kernels.shift_copy(padded, x, [-b for b, _ in bound.pads])
    s0, s1, *sp = padded.strides
    windows = as_strided(
        padded,
        shape=(*x.shape[:2], *bound.output_spatial, *layer.kernel_size),
        strides=(
            s0,
            s1,
            *(s * st for s, st in zip(stride, sp, strict=True)),
            *(d * st for d, st in zip(dilation, sp, strict=True)),
        ),
        writeable=False,
    )
    window_axes = tuple(range(-nd, 0))
    if maximum:
        return np.asarray(windows.max(axis=window_axes), dtype=x.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(windows.sum(axis=window_axes) / kernels.avg_divisor(bound), dtype=x.dtype)


def apply(
    layer: Layer | BoundLayer,
    input: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
) -> FloatArray:
    """Any layer on ``input``: the reference op of its kind (conv, conv_transpose, max or avg pool).

    The one entry the framework comparisons use: convarith's answer for a layer, whatever it is.

    >>> import numpy as np
    >>> from convarith import Layer
    >>> apply(Layer("max_pool1d", kernel_size=2), np.array([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
    [[[3.0, 2.0]]]
    >>> apply(Layer("conv1d", kernel_size=2, bias=False), np.ones((1, 1, 3)), np.ones((1, 1, 2))).tolist()
    [[[2.0, 2.0]]]
    """
    kind = layer.layer.kind if isinstance(layer, BoundLayer) else layer.kind if isinstance(layer, Layer) else None
    if kind in ("conv", "conv_transpose"):
        if weight is None:
            raise ConvArithError("weight", f"is required for a {kind} layer")
        return (conv if kind == "conv" else conv_transpose)(input, weight, bias, layer=layer)
    if kind == "max_pool":
        return max_pool(input, layer=layer)
    if kind == "avg_pool":
        return avg_pool(input, layer=layer)
    raise ConvArithError("layer", "must be a convarith.Layer or BoundLayer", type(layer).__name__)
