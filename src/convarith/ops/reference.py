"""Exact NumPy convolutions, transposed convolutions and pools, N-d, by several independent routes.

Every function here takes PyTorch's arguments and layouts and returns what ``torch.nn.functional``
returns (tested to 1e-12 in float64). All validation goes through the geometry
(:class:`~convarith.geometry.ConvSpec` and :func:`~convarith.geometry.output_shape_of`), so a
configuration is refused exactly when PyTorch refuses it, with a :class:`ConvArithError` naming the
parameter.

The routes compute the same numbers in different ways, so each one checks the others:

=====================  ==========  ==============================================================
function               method      what it shows
=====================  ==========  ==============================================================
:func:`conv`           ``gemm``    im2col: every window becomes a column of a matrix (a strided
                                   view, copied once), then one BLAS product per group
:func:`conv`           ``matrix``  ``y = C·x`` with the sparse matrix C of
                                   :func:`convarith.ops.matrix.conv_matrix`
:func:`conv`           ``taps``    a sum over kernel taps of strided input slices times weights
:func:`conv_transpose` ``gemm``    one BLAS product to columns, then col2im: each kernel tap's
                                   column is added into a strided slice of the output
:func:`conv_transpose` ``matrix``  ``Cᵀ·y``, C being the matrix of the direct convolution that the
                                   transposed one transposes
:func:`conv_transpose` ``direct``  the guide's §4.3: insert ``s − 1`` zeros, pad by ``d(k−1) − p``
                                   (crop where negative), rotate the kernel 180° and swap its
                                   in/out channel axes, then a plain stride-1 convolution
:func:`conv_transpose` ``scatter`` every input value stamps the kernel, times the value, into the
                                   output
=====================  ==========  ==============================================================

Examples
--------
>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 3, 3))
>>> conv(x, w)[0, 0]
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
import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from ..errors import ConvArithError
from ..geometry import ConvSpec, equivalent_direct_conv
from ..geometry.shapes import WeightedLayer, output_shape_of, weighted_layer
from ..geometry.spec import IntOrSeq, PaddingArg
from .indexing import padded_source

__all__ = [
    "CONV_METHODS",
    "CONV_TRANSPOSE_METHODS",
    "avg_pool",
    "conv",
    "conv_transpose",
    "max_pool",
]

Array = npt.NDArray[Any]

CONV_METHODS: tuple[str, ...] = ("gemm", "matrix", "taps")
CONV_TRANSPOSE_METHODS: tuple[str, ...] = ("gemm", "matrix", "direct", "scatter")

# Scratch per block of work (im2col columns, GEMM results). Near the size of a cache level, the
# columns are still cached when BLAS reads them; the batch (and, for one large sample, the first
# spatial axis) is cut into blocks of about this size. Tests shrink it to exercise the blocking.
_CHUNK_BYTES = 8 * 2**20
# The transposed GEMM's flat path computes on a zero-extended input grid; above this much extra
# work the strided path is used instead.
_FLAT_WASTE = 1.5
# Allocations below this size are not checked against the available memory.
_CHECK_BYTES = 64 * 2**20


# -- validation ----------------------------------------------------------------------------------


def _float_array(name: str, value: object) -> Array:
    array = np.asarray(value)
    if array.dtype.type not in (np.float32, np.float64):
        raise ConvArithError(name, "must be a float32 or float64 array", str(array.dtype))
    return array


def _same_dtype(name: str, array: Array, dtype: np.dtype[Any]) -> None:
    if array.dtype != dtype:
        raise ConvArithError(name, f"must have the input's dtype {dtype}", str(array.dtype))


def _check_method(method: str, methods: tuple[str, ...]) -> None:
    if method not in methods:
        raise ConvArithError("method", f"must be one of {', '.join(methods)}", repr(method))


def _prepare(
    kind: str, x: object, weight: object, bias: object, **params: Any
) -> tuple[Array, Array, Array | None, WeightedLayer, bool]:
    """Arrays as float32/float64 of one dtype, batched; the checked layer; whether x was unbatched."""
    name = "y" if kind == "conv_transpose" else "x"
    xa = _float_array(name, x)
    wa = _float_array("weight", weight)
    _same_dtype("weight", wa, xa.dtype)
    layer = weighted_layer(kind, xa.shape, wa.shape, **params)
    ba = None
    if bias is not None:
        ba = _float_array("bias", bias)
        _same_dtype("bias", ba, xa.dtype)
        if ba.shape != (layer.out_channels,):
            raise ConvArithError("bias", f"needs one value per output channel, shape ({layer.out_channels},)", ba.shape)
    unbatched = xa.ndim == layer.spec.ndim + 1
    return (xa[None] if unbatched else xa), wa, ba, layer, unbatched


def _finish(out: Array, bias: Array | None, unbatched: bool) -> Array:
    if bias is not None:
        out += bias.reshape(-1, *(1,) * (out.ndim - 2))
    return out[0] if unbatched else out


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(nbytes: int, what: str, shape: object) -> None:
    """Refuse before allocating when the arrays of a call would not fit in the available memory."""
    if nbytes < _CHECK_BYTES:
        return
    available = _available_memory()
    if available is not None and nbytes > available:
        raise ConvArithError(
            "input_shape",
            f"{what} needs {nbytes / 2**30:.2f} GiB but only {available / 2**30:.2f} GiB is available",
            shape,
        )


def _plan(samples: int, rows: int, row_bytes: int) -> tuple[int, int]:
    """Samples per block and rows (of the first spatial axis) per block, for ~_CHUNK_BYTES of scratch."""
    sample_bytes = max(rows * row_bytes, 1)
    if sample_bytes <= _CHUNK_BYTES:
        return max(1, min(samples, _CHUNK_BYTES // sample_bytes)), rows
    return 1, max(1, min(rows, _CHUNK_BYTES // max(row_bytes, 1)))


class _Scratch:
    """Reused work arrays: fresh multi-megabyte arrays cost page faults on every block."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.arrays: dict[tuple[str, tuple[int, ...]], Array] = {}

    def empty(self, name: str, shape: tuple[int, ...]) -> Array:
        key = (name, shape)
        if key not in self.arrays:
            self.arrays[key] = np.empty(shape, self.dtype)
        return self.arrays[key]

    def zeros(self, name: str, shape: tuple[int, ...]) -> Array:
        """Zeroed once: callers overwrite the same interior every time, so the rest stays zero."""
        key = (name, shape)
        if key not in self.arrays:
            self.arrays[key] = np.zeros(shape, self.dtype)
        return self.arrays[key]


# -- padding -------------------------------------------------------------------------------------


def _pad(x: Array, pads: Sequence[tuple[int, int]], mode: str, *, scratch: _Scratch | None = None) -> Array:
    """``x`` (N, C, *spatial) padded (or cropped) like F.pad.

    Zeros are written around a copy (into a reused buffer given ``scratch``); the other modes
    gather through the index map of :func:`~convarith.ops.indexing.padded_source`, axis by axis.
    """
    spatial = x.shape[2:]
    if all(b == a == 0 for b, a in pads):
        return x
    if mode == "zeros":
        shape = (*x.shape[:2], *(i + b + a for i, (b, a) in zip(spatial, pads, strict=True)))
        padded = np.zeros(shape, x.dtype) if scratch is None else scratch.zeros("padded", shape)
        padded[(slice(None), slice(None), *(slice(b, b + i) for i, (b, _) in zip(spatial, pads, strict=True)))] = x
        return padded
    for axis, (size, pad) in enumerate(zip(spatial, pads, strict=True)):
        x = np.take(x, padded_source(size, pad, mode), axis=2 + axis)
    return x


def _pad_adjoint(grad: Array, spatial: Sequence[int], pads: Sequence[tuple[int, int]], mode: str) -> Array:
    """The adjoint of :func:`_pad`: scatter-add a padded (N, C, *padded) gradient back to the input."""
    for axis, (size, pad) in enumerate(zip(spatial, pads, strict=True)):
        source = padded_source(size, pad, mode)
        kept = source >= 0
        moved = np.moveaxis(grad, axis + 2, 0)
        summed = np.zeros((size, *moved.shape[1:]), grad.dtype)
        np.add.at(summed, source[kept], moved[kept])
        grad = np.moveaxis(summed, 0, axis + 2)
    return np.ascontiguousarray(grad)


# -- convolution ---------------------------------------------------------------------------------


def conv(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "gemm",
) -> Array:
    """N-d convolution (PyTorch's cross-correlation), exactly as ``F.conv{N}d`` computes it.

    Parameters
    ----------
    x
        Input ``(N, C_in, *spatial)``, or unbatched ``(C_in, *spatial)``; float32 or float64.
    weight
        ``(C_out, C_in/groups, *kernel)`` (PyTorch's layout) of the same dtype. Its number of
        axes sets the number of spatial axes (any number from 1 to 9).
    bias
        ``(C_out,)``, added to every output cell of its channel; optional.
    stride, dilation
        An int for every axis or one per axis.
    padding
        An int, one per axis, ``(before, after)`` pairs per axis (negative values crop with a
        non-zero ``padding_mode``), or a policy: ``"valid"``, ``"same"``, ``"same_tf"``,
        ``"same_lower"``, ``"full"``.
    groups
        Channel groups, as in PyTorch.
    padding_mode
        ``zeros``, ``reflect``, ``replicate`` or ``circular`` (PyTorch's ``nn.ConvNd`` option).
    method
        ``"gemm"`` (im2col and one BLAS product per group and block of samples; the fast one),
        ``"matrix"`` (``C @ x`` with the sparse matrix C) or ``"taps"`` (a sum over kernel taps).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` (unbatched if ``x`` was), in the input's dtype.

    Raises
    ------
    ConvArithError
        When PyTorch would refuse the configuration (and for an unknown ``method``, a dtype other
        than float32/float64, mismatched dtypes or a bias of the wrong shape), naming the parameter.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> conv(x, np.array([[[1.0, 0.0, -1.0]]]), padding=1, padding_mode="reflect")
    array([[[ 0., -2., -2., -2.,  0.]]])
    >>> conv(x, np.ones((2, 1, 2)), stride=2, method="taps").shape
    (1, 2, 2)
    """
    _check_method(method, CONV_METHODS)
    xa, wa, ba, layer, unbatched = _prepare(
        "conv",
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    if method == "gemm":
        out = _conv_gemm(xa, wa, layer.spec, layer.out_spatial)
    elif method == "taps":
        out = _conv_taps(xa, wa, layer.spec, layer.out_spatial)
    else:
        out = _conv_matrix(xa, wa, layer)
    return _finish(out, ba, unbatched)


def _conv_gemm(x: Array, weight: Array, spec: ConvSpec, out_spatial: tuple[int, ...]) -> Array:
    """im2col + GEMM on a resolved spec: per group, ``W (C_out/G, C_g·taps) @ cols (C_g·taps, cells)``.

    The columns keep PyTorch's channels-first layout, so the weight is used as it is (its
    ``(C_g, *k)`` axes are the contraction) and BLAS writes the product straight into the output.
    """
    n, c = x.shape[:2]
    nd, g = spec.ndim, spec.groups
    c_g, c_out = c // g, weight.shape[0]
    c_out_g = c_out // g
    kernel = spec.kernel_size
    taps = math.prod(kernel)
    item = x.dtype.itemsize
    padded_sizes = tuple(i + b + a for i, (b, a) in zip(x.shape[2:], spec.pads, strict=True))
    _check_memory(
        (n * c_out * math.prod(out_spatial) + c * math.prod(padded_sizes)) * item + _CHUNK_BYTES,
        f"{spec.op} on {x.shape}",
        x.shape,
    )
    out = np.empty((n, c_out, *out_spatial), x.dtype)
    if n == 0:
        return out
    wmat = np.ascontiguousarray(weight).reshape(g, c_out_g, c_g * taps)
    out_g = out.reshape(n, g, c_out_g, *out_spatial)
    rows, rest = out_spatial[0], out_spatial[1:]
    samples, block_rows = _plan(n, rows, math.prod(rest) * (taps * c + c_out) * item)
    scratch = _Scratch(x.dtype)
    for n0 in range(0, n, samples):
        xp = _pad(x[n0 : n0 + samples], spec.pads, spec.padding_mode, scratch=scratch)
        b = xp.shape[0]
        sb, sc, *sp = xp.strides
        # every window as a view (b, G, C_g, *k, *out): the im2col matrix before its one copy.
        # In bounds: the last tap of the last window reads (o−1)s + (k−1)d ≤ padded − 1.
        windows = as_strided(
            xp,
            shape=(b, g, c_g, *kernel, *out_spatial),
            strides=(
                sb,
                c_g * sc,
                sc,
                *(d * st for d, st in zip(spec.dilation, sp, strict=True)),
                *(s * st for s, st in zip(spec.stride, sp, strict=True)),
            ),
            writeable=False,
        )
        for r0 in range(0, rows, block_rows):
            block = windows[(slice(None),) * (3 + nd) + (slice(r0, r0 + block_rows),)]
            r = block.shape[3 + nd]
            cols = scratch.empty("cols", block.shape)
            np.copyto(cols, block)
            cells = r * math.prod(rest)
            columns = cols.reshape(b, g, c_g * taps, cells)
            if r == rows:  # whole samples: BLAS writes into the output itself
                np.matmul(wmat, columns, out=out[n0 : n0 + b].reshape(b, g, c_out_g, cells))
            else:
                res = scratch.empty("res", (b, g, c_out_g, cells))
                np.matmul(wmat, columns, out=res)
                out_g[n0 : n0 + b, :, :, r0 : r0 + r] = res.reshape(b, g, c_out_g, r, *rest)
    return out


def _conv_taps(x: Array, weight: Array, spec: ConvSpec, out_spatial: tuple[int, ...]) -> Array:
    """Σ over kernel taps t of (the input slice that tap t reads in every window) × weight[..., t]."""
    n, c = x.shape[:2]
    g, c_out = spec.groups, weight.shape[0]
    padded = math.prod(i + b + a for i, (b, a) in zip(x.shape[2:], spec.pads, strict=True))
    _check_memory((n * c * padded + 3 * n * c_out * math.prod(out_spatial)) * x.dtype.itemsize, spec.op, x.shape)
    xp = _pad(x, spec.pads, spec.padding_mode)
    xg = xp.reshape(n, g, c // g, *xp.shape[2:])
    wg = weight.reshape(g, c_out // g, *weight.shape[1:])
    out = np.zeros((n, g, c_out // g, *out_spatial), x.dtype)
    for tap in np.ndindex(*spec.kernel_size):
        reads = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, spec.dilation, out_spatial, spec.stride, strict=True)
        )
        out += np.einsum("goc,ngc...->ngo...", wg[(..., *tap)], xg[(slice(None),) * 3 + reads])
    return out.reshape(n, c_out, *out_spatial)


def _conv_matrix(x: Array, weight: Array, layer: WeightedLayer) -> Array:
    """``y = C·x`` for every sample, C from :func:`convarith.ops.matrix.conv_matrix`."""
    from .matrix import conv_matrix

    spec = layer.spec
    matrix = conv_matrix(
        spec.op,
        weight,
        (layer.in_channels, *layer.in_spatial),
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
        output_padding=spec.output_padding,
        padding_mode=spec.padding_mode,
        dtype=x.dtype,
    )
    n = x.shape[0]
    out = np.asarray(matrix @ x.reshape(n, -1).T, dtype=x.dtype).T
    return np.ascontiguousarray(out).reshape(n, layer.out_channels, *layer.out_spatial)


# -- transposed convolution ----------------------------------------------------------------------


def conv_transpose(
    y: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    method: str = "gemm",
) -> Array:
    """N-d transposed convolution, exactly as ``F.conv_transpose{N}d`` computes it.

    Parameters
    ----------
    y
        Input ``(N, C_in, *spatial)``, or unbatched ``(C_in, *spatial)``; float32 or float64.
    weight
        ``(C_in, C_out/groups, *kernel)`` (PyTorch's layout for transposed convolutions), same
        dtype.
    bias
        ``(C_out,)``; optional.
    stride, dilation, output_padding, groups
        As in PyTorch, an int for every axis or one per axis.
    padding
        An int, one per axis, ``(before, after)`` pairs per axis (cropped from the output), or
        ``"valid"`` / ``"same_tf"`` (TensorFlow's transposed ``"same"``: output ``i·s``).
    method
        ``"gemm"`` (one BLAS product to columns, then col2im; the fast one), ``"matrix"``
        (``Cᵀ·y``), ``"direct"`` (the equivalent stride-1 direct convolution of the guide's §4.3)
        or ``"scatter"`` (every input value stamps the kernel into the output; slow, one step per
        input cell).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` with ``out = (i−1)s − p_b − p_a + d(k−1) + 1 + output_padding``.

    Raises
    ------
    ConvArithError
        When PyTorch would refuse the configuration, or for an unknown ``method``, naming the
        parameter.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[[1.0, 2.0]]])
    >>> w = np.array([[[1.0, 10.0, 100.0]]])
    >>> conv_transpose(y, w, stride=2)
    array([[[  1.,  10., 102.,  20., 200.]]])
    >>> conv_transpose(y, w, stride=2, method="direct")
    array([[[  1.,  10., 102.,  20., 200.]]])
    """
    _check_method(method, CONV_TRANSPOSE_METHODS)
    ya, wa, ba, layer, unbatched = _prepare(
        "conv_transpose",
        y,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        output_padding=output_padding,
    )
    if method == "gemm":
        out = _conv_transpose_gemm(ya, wa, layer.spec, layer.out_spatial)
    elif method == "direct":
        out = _conv_transpose_direct(ya, wa, layer.spec, layer.out_spatial)
    elif method == "scatter":
        out = _conv_transpose_scatter(ya, wa, layer.spec, layer.out_spatial)
    else:
        out = _conv_transpose_matrix(ya, wa, layer)
    return _finish(out, ba, unbatched)


def _full_sizes(spec: ConvSpec, in_spatial: Sequence[int]) -> tuple[int, ...]:
    """Extent every stamp reaches, output_padding included, before the padding is cropped away."""
    return tuple(
        (i - 1) * s + d * (k - 1) + 1 + a
        for i, s, d, k, a in zip(
            in_spatial, spec.stride, spec.dilation, spec.kernel_size, spec.output_padding, strict=True
        )
    )


def _crop(spec: ConvSpec, out_spatial: Sequence[int]) -> tuple[slice, ...]:
    return (slice(None), slice(None), *(slice(b, b + o) for (b, _), o in zip(spec.pads, out_spatial, strict=True)))


def _conv_transpose_gemm(y: Array, weight: Array, spec: ConvSpec, out_spatial: tuple[int, ...]) -> Array:
    """One product ``W·y`` gives every tap's contribution (the columns); col2im adds each tap's
    columns into its strided slice of the uncropped output, which is then cropped by the padding.

    With stride 1 the input is laid on the output's flat grid (zeros in the extra cells), so each
    tap's slice is one contiguous run per channel: the adds run at memory speed.
    """
    n, c_in = y.shape[:2]
    in_spatial = y.shape[2:]
    nd, g = spec.ndim, spec.groups
    c_in_g, c_out_g = c_in // g, weight.shape[1]
    c_out = g * c_out_g
    kernel = spec.kernel_size
    taps = math.prod(kernel)
    item = y.dtype.itemsize
    full = _full_sizes(spec, in_spatial)
    flat_strides = tuple(math.prod(full[a + 1 :]) for a in range(nd))
    span = sum((i - 1) * st for i, st in zip(in_spatial, flat_strides, strict=True)) + 1
    flat = all(s == 1 for s in spec.stride) and span <= _FLAT_WASTE * math.prod(in_spatial)
    _check_memory(
        (n * c_out * math.prod(out_spatial) + c_out * math.prod(full) + c_in * math.prod(full)) * item + _CHUNK_BYTES,
        f"{spec.op} on {y.shape}",
        y.shape,
    )
    out = np.empty((n, c_out, *out_spatial), y.dtype)
    if n == 0:
        return out
    # weight (C_in, C_out/G, *k) → (G, taps·C_out/G, C_in/G): rows ordered (tap, output channel)
    wmat = weight.reshape(g, c_in_g, c_out_g, taps).transpose(0, 3, 2, 1).reshape(g, taps * c_out_g, c_in_g)
    wmat = np.ascontiguousarray(wmat)
    rows, rest = in_spatial[0], in_spatial[1:]
    row_cells = flat_strides[0] if flat else math.prod(rest)
    samples, block_rows = _plan(n, rows, taps * c_out * row_cells * item)
    scratch = _Scratch(y.dtype)
    crop = _crop(spec, out_spatial)
    offsets = [
        sum(t * d * st for t, d, st in zip(tap, spec.dilation, flat_strides, strict=True))
        for tap in np.ndindex(*kernel)
    ]
    tail = span - (rows - 1) * flat_strides[0]  # flat cells of the last input row
    for n0 in range(0, n, samples):
        yb = y[n0 : n0 + samples]
        b = yb.shape[0]
        acc = scratch.empty("full", (b, g, c_out_g, *full))
        acc.fill(0)
        if flat:
            # y on the output's grid: cell i sits at flat index Σ i·stride_of_full; zeros elsewhere
            grid = scratch.zeros("grid", (b, c_in, *full))  # every block overwrites the same corner
            grid[(slice(None), slice(None), *(slice(0, i) for i in in_spatial))] = yb
            grid_g = grid.reshape(b, g, c_in_g, -1)
            acc_flat = acc.reshape(b, g, c_out_g, -1)
            for r0 in range(0, rows, block_rows):
                r = min(block_rows, rows - r0)
                q0, q = r0 * flat_strides[0], (r - 1) * flat_strides[0] + tail
                res = scratch.empty("res", (b, g, taps * c_out_g, q))
                np.matmul(wmat, grid_g[..., q0 : q0 + q], out=res)
                cols = res.reshape(b, g, taps, c_out_g, q)
                for t, offset in enumerate(offsets):
                    acc_flat[..., q0 + offset : q0 + offset + q] += cols[:, :, t]
        else:
            for r0 in range(0, rows, block_rows):
                r = min(block_rows, rows - r0)
                block = yb[:, :, r0 : r0 + r].reshape(b, g, c_in_g, -1)
                res = scratch.empty("res", (b, g, taps * c_out_g, block.shape[-1]))
                np.matmul(wmat, block, out=res)
                cols = res.reshape(b, g, *kernel, c_out_g, r, *rest)
                starts, sizes = (r0 * spec.stride[0], *(0,) * (nd - 1)), (r, *rest)
                for tap in np.ndindex(*kernel):
                    # input cell j of this block lands on output cell start + j·s + t·d
                    region = tuple(
                        slice(st + t * d, st + t * d + (m - 1) * s + 1, s)
                        for st, t, d, m, s in zip(starts, tap, spec.dilation, sizes, spec.stride, strict=True)
                    )
                    acc[(slice(None),) * 3 + region] += cols[(slice(None), slice(None), *tap)]
        out[n0 : n0 + b] = acc.reshape(b, c_out, *full)[crop]
    return out


def direct_kernel(weight: Array, groups: int, *, rotate: bool = True, swap: bool = True) -> Array:
    """A transposed conv's kernel (C_in, C_out/G, *k) as the direct conv's (C_out, C_in/G, *k):
    rotated by 180° on every spatial axis, in/out channel axes swapped within each group.

    ``rotate`` and ``swap`` exist to show what goes wrong without them (the tour does).
    """
    c_in, c_out_g, *kernel = weight.shape
    if rotate:
        weight = np.flip(weight, axis=tuple(range(2, weight.ndim)))
    if swap:
        weight = weight.reshape(groups, c_in // groups, c_out_g, *kernel).swapaxes(1, 2)
        weight = weight.reshape(groups * c_out_g, c_in // groups, *kernel)
    return np.ascontiguousarray(weight)


def stretched_input(y: Array, spec: ConvSpec) -> Array:
    """The input of the direct convolution equivalent to transposed ``spec``: ``s − 1`` zeros
    inserted between neighbours, padded by ``p′ = d(k−1) − p`` (output_padding inside ``p′_a``),
    cropped where ``p′`` is negative."""
    axes = equivalent_direct_conv(spec, y.shape[2:])
    n, c_in = y.shape[:2]
    # One placement does all three: cell i lands at i·s + p′_b; what falls outside is cropped.
    sizes = tuple(eq.stretched + eq.pad[0] + eq.pad[1] for eq in axes)
    _check_memory(n * c_in * math.prod(sizes) * y.dtype.itemsize, f"the stretched input of {spec.op}", y.shape)
    stretched = np.zeros((n, c_in, *sizes), y.dtype)
    source, target = [], []
    for eq, size in zip(axes, sizes, strict=True):
        s, before = eq.zeros_between + 1, eq.pad[0]
        first = max(0, -(before // s))  # ⌈−p′_b / s⌉: the first cell a crop leaves
        last = min(eq.input - 1, (size - 1 - before) // s)
        if last < first:  # the crop leaves no input cell: all zeros
            return stretched
        source.append(slice(first, last + 1))
        target.append(slice(first * s + before, last * s + before + 1, s))
    stretched[(slice(None), slice(None), *target)] = y[(slice(None), slice(None), *source)]
    return stretched


def _conv_transpose_direct(y: Array, weight: Array, spec: ConvSpec, out_spatial: tuple[int, ...]) -> Array:
    """The guide's §4.3, generalised: stretch, pad (or crop), rotate + swap, stride-1 conv."""
    direct = ConvSpec.create(
        f"conv{spec.ndim}d", kernel_size=spec.kernel_size, dilation=spec.dilation, groups=spec.groups
    )
    return _conv_gemm(stretched_input(y, spec), direct_kernel(weight, spec.groups), direct, out_spatial)


def _conv_transpose_scatter(y: Array, weight: Array, spec: ConvSpec, out_spatial: tuple[int, ...]) -> Array:
    """Every input cell i stamps the kernel, times its values (summed over the group's input
    channels), onto the output cells i·s + t·d − p_b."""
    n, c_in = y.shape[:2]
    g, c_out_g = spec.groups, weight.shape[1]
    full = _full_sizes(spec, y.shape[2:])
    _check_memory(2 * n * g * c_out_g * math.prod(full) * y.dtype.itemsize, spec.op, y.shape)
    acc = np.zeros((n, g, c_out_g, *full), y.dtype)
    yg = y.reshape(n, g, c_in // g, *y.shape[2:])
    wg = weight.reshape(g, c_in // g, *weight.shape[1:])
    extent = spec.effective_kernel
    for cell in np.ndindex(*y.shape[2:]):
        stamp = np.einsum("ngc,gco...->ngo...", yg[(..., *cell)], wg)
        region = tuple(
            slice(i * s, i * s + e, d) for i, s, e, d in zip(cell, spec.stride, extent, spec.dilation, strict=True)
        )
        acc[(slice(None),) * 3 + region] += stamp
    return np.ascontiguousarray(acc.reshape(n, g * c_out_g, *full)[_crop(spec, out_spatial)])


def _conv_transpose_matrix(y: Array, weight: Array, layer: WeightedLayer) -> Array:
    """``Cᵀ·y``: C is the matrix of the direct convolution (same kernel, stride, padding, dilation,
    groups; the weight read as (C_out, C_in/G, *k)) from this layer's output back to its input."""
    from .matrix import conv_matrix

    spec = layer.spec
    c_out = layer.out_channels
    direct = ConvSpec.create(
        f"conv{spec.ndim}d",
        kernel_size=spec.kernel_size,
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
    )
    back = direct.output_spatial(layer.out_spatial)
    matrix = conv_matrix(
        direct.op,
        weight,
        (c_out, *layer.out_spatial),
        stride=spec.stride,
        padding=spec.pads,
        dilation=spec.dilation,
        groups=spec.groups,
        output_padding=(0,) * spec.ndim,
        padding_mode="zeros",
        dtype=y.dtype,
    )
    if back != layer.in_spatial:
        # output_padding ≥ stride (allowed when dilation > stride) gives the direct conv extra
        # windows that the transposed input has no cell for: keep the rows of the others.
        rows = np.arange(matrix.shape[0]).reshape(layer.in_channels, *back)
        matrix = matrix[rows[(slice(None), *(slice(0, i) for i in layer.in_spatial))].ravel()]
    n = y.shape[0]
    out = np.asarray(matrix.T @ y.reshape(n, -1).T, dtype=y.dtype).T
    return np.ascontiguousarray(out).reshape(n, c_out, *layer.out_spatial)


# -- pooling -------------------------------------------------------------------------------------


def max_pool(
    x: npt.ArrayLike,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    *,
    ndim: int | None = None,
) -> Array:
    """N-d max pooling, exactly as ``F.max_pool{N}d`` (the padding is −∞).

    Parameters
    ----------
    x
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; float32 or float64.
    kernel_size, stride, padding, dilation, ceil_mode
        As in PyTorch; ``stride=None`` is the kernel size. ``padding`` may also be
        ``(before, after)`` pairs.
    ndim
        Number of spatial axes. Default: ``len(kernel_size)`` when it is a sequence, otherwise
        ``x.ndim − 2`` (a batched input); give it for an unbatched input with an int kernel size.

    Returns
    -------
    numpy.ndarray
        ``(N, C, *out)``.

    Examples
    --------
    >>> import numpy as np
    >>> max_pool(np.array([[[1.0, 5.0, 2.0, 4.0, 3.0]]]), 2, ceil_mode=True)
    array([[[5., 4., 3.]]])
    """
    return _pool("max_pool", x, kernel_size, stride, padding, dilation, ceil_mode, True, None, ndim)


def avg_pool(
    x: npt.ArrayLike,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    ndim: int | None = None,
) -> Array:
    """N-d average pooling, exactly as ``F.avg_pool{N}d``, PyTorch's divisor rules included.

    The divisor is the window clipped to the padded input (``count_include_pad=True``; a
    ``ceil_mode`` window that runs past the padding counts only what it covers), the number of
    input cells in the window (``count_include_pad=False``), or ``divisor_override``.

    Parameters
    ----------
    x
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; float32 or float64.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in PyTorch; ``stride=None`` is the kernel size. ``padding`` may also be
        ``(before, after)`` pairs.
    ndim
        Number of spatial axes, as for :func:`max_pool`.

    Returns
    -------
    numpy.ndarray
        ``(N, C, *out)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    >>> avg_pool(x, 2, padding=1)
    array([[[0.5, 2.5, 4.5]]])
    >>> avg_pool(x, 2, padding=1, count_include_pad=False)
    array([[[1. , 2.5, 4.5]]])
    """
    return _pool("avg_pool", x, kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override, ndim)


def _pool_ndim(x: Array, kernel_size: object, ndim: int | None) -> int:
    if ndim is not None:
        value = operator.index(ndim)
        if value < 1:
            raise ConvArithError("ndim", "must be at least 1", value)
        return value
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str):
        return len(kernel_size)
    if x.ndim < 3:
        raise ConvArithError("x", "needs (N, C, *spatial); pass ndim= for an unbatched input", x.shape)
    return x.ndim - 2


def _pool(
    kind: str,
    x: object,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None,
    padding: PaddingArg,
    dilation: IntOrSeq,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
    ndim: int | None,
) -> Array:
    xa = _float_array("x", x)
    nd = _pool_ndim(xa, kernel_size, ndim)
    spec = ConvSpec.create(
        f"{kind}{nd}d",
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )
    shape = output_shape_of(spec, xa.shape)
    if divisor_override is not None:
        if isinstance(divisor_override, bool):
            raise ConvArithError("divisor_override", "must be an integer", divisor_override)
        divisor_override = operator.index(divisor_override)
        if divisor_override == 0:
            raise ConvArithError("divisor_override", "must not be zero", divisor_override)
    in_spatial, out_spatial = xa.shape[-nd:], shape[-nd:]
    spec = spec.resolve(in_spatial)
    unbatched = xa.ndim == nd + 1
    xb = xa[None] if unbatched else xa
    # with ceil_mode the last window may run past the padding: extend it so every window fits
    extent = spec.effective_kernel
    after = [
        max(a, (o - 1) * s + e - i - b)
        for (b, a), o, s, e, i in zip(spec.pads, out_spatial, spec.stride, extent, in_spatial, strict=True)
    ]
    sizes = tuple(i + b + a for i, (b, _), a in zip(in_spatial, spec.pads, after, strict=True))
    _check_memory(xb.shape[0] * xb.shape[1] * math.prod(sizes) * xb.dtype.itemsize * 2, f"{spec.op}", xa.shape)
    fill = -np.inf if kind == "max_pool" else 0.0
    padded = np.full((*xb.shape[:2], *sizes), fill, xb.dtype)
    padded[(slice(None), slice(None), *(slice(b, b + i) for i, (b, _) in zip(in_spatial, spec.pads, strict=True)))] = xb
    s0, s1, *sp = padded.strides
    windows = as_strided(
        padded,
        shape=(*xb.shape[:2], *out_spatial, *spec.kernel_size),
        strides=(
            s0,
            s1,
            *(s * st for s, st in zip(spec.stride, sp, strict=True)),
            *(d * st for d, st in zip(spec.dilation, sp, strict=True)),
        ),
        writeable=False,
    )
    window_axes = tuple(range(-nd, 0))
    if kind == "max_pool":
        out = windows.max(axis=window_axes)
    else:
        out = windows.sum(axis=window_axes) / _divisor(spec, in_spatial, out_spatial, divisor_override)
    out = np.asarray(out, dtype=xb.dtype)
    return out[0] if unbatched else out


def _divisor(
    spec: ConvSpec, in_spatial: Sequence[int], out_spatial: Sequence[int], divisor_override: int | None
) -> Array | float:
    """PyTorch's avg_pool divisor per output cell: a product of per-axis counts."""
    if divisor_override is not None:
        return float(divisor_override)
    divisor: Array = np.ones((), np.float64)
    for (before, after), o, s, k, i in zip(
        spec.pads, out_spatial, spec.stride, spec.kernel_size, in_spatial, strict=True
    ):
        start = np.arange(o) * s - before
        end = np.minimum(start + k, i + after)
        count = end - start if spec.count_include_pad else np.minimum(end, i) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, count.astype(np.float64))
    return divisor
