"""The numeric kernels shared by the reference ops, the operators and the matrix builder.

This is an internal API with a documented contract (the names carry no underscore so that
:mod:`~convarith.ops.reference` and :mod:`~convarith.ops.operator` can share them). Every kernel
takes batched arrays ``(N, C, *spatial)`` in PyTorch's layouts and a
:class:`~convarith.geometry.bound.BoundLayer` that says what to compute; none of them checks
PyTorch's rules (the public functions do that, or not, before calling). Each fact of the
geometry comes from the bound layer: the resolved pads (negative = crop), the output sizes, the
full extent of a transposed convolution (:attr:`AxisGeometry.full`), the ``ceil_mode`` overhang.

Kernels
-------
:func:`pad`, :func:`pad_adjoint`
    ``F.pad`` (crops included) for every padding mode, through the one index map
    :func:`convarith.geometry.coverage.padded_source`, and its adjoint (the scatter-add).
:func:`conv_gemm`, :func:`conv_taps`
    A direct convolution: im2col and one BLAS product per group, or a sum over kernel taps.
:func:`conv_transpose_gemm`, :func:`conv_transpose_scatter`
    A transposed convolution: one product to columns then col2im, or every input cell stamping
    the kernel; the full extent is then cropped by positive pads and zero-extended by negative
    ones (ONNX ``same_upper`` with a kernel shorter than the stride adds output cells).
:func:`crop`
    A transposed convolution's full extent cropped by positive pads, zero-extended by negative ones.
:func:`zeros_between`
    A transposed convolution's input with ``s − 1`` zeros between neighbours (the guide's §4.3).
:func:`axis_divisor`, :func:`avg_divisor`
    The average-pool divisor: per axis, the window's taps inside the padded input (or, without
    ``count_include_pad``, inside the input); in N-d their product. PyTorch's rule at dilation 1,
    ONNX's with dilation.
:func:`steps`
    The strides and dilations used for indexing (a stride that never steps is 1).
:func:`check_memory`, :class:`Scratch`, :func:`plan`
    The up-front memory refusal, reused work arrays and the blocking of the GEMM routes.

Examples
--------
>>> import numpy as np
>>> from convarith import Layer
>>> x = np.arange(4.0).reshape(1, 1, 4)
>>> pad(x, [(2, -1)], "reflect")[0, 0]
array([2., 1., 0., 1., 2.])
>>> bound = Layer("conv1d", 1, 1, kernel_size=2, padding=[(-1, 1)]).bind((1, 1, 4))
>>> conv_gemm(x, np.ones((1, 1, 2)), bound)[0, 0]
array([3., 5., 3.])
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from ..errors import ConvArithError
from ..geometry.bound import AxisGeometry, BoundLayer
from ..geometry.coverage import padded_source as _padded_source_list
from ..layer import Pad

__all__ = [
    "CHECK_BYTES",
    "CHUNK_BYTES",
    "FLAT_WASTE",
    "Array",
    "Scratch",
    "available_memory",
    "avg_divisor",
    "axis_divisor",
    "axis_steps",
    "check_memory",
    "conv_gemm",
    "conv_taps",
    "conv_transpose_gemm",
    "conv_transpose_scatter",
    "crop",
    "float_array",
    "numeric_array",
    "pad",
    "pad_adjoint",
    "padded_source",
    "plan",
    "shift_copy",
    "steps",
    "zeros_between",
]

Array = npt.NDArray[Any]

CHUNK_BYTES = 8 * 2**20
"""Scratch per block of work (im2col columns, GEMM results). Near the size of a cache level, the
columns are still cached when BLAS reads them; the batch (and, for one large sample, the first
spatial axis) is cut into blocks of about this size. Tests shrink it to exercise the blocking."""
FLAT_WASTE = 1.5
"""The transposed GEMM's flat path computes on a zero-extended input grid; above this much extra
work the strided path is used instead."""
CHECK_BYTES = 64 * 2**20
"""Allocations below this size are not checked against the available memory."""


# -- arrays and memory ---------------------------------------------------------------------------------


def numeric_array(name: str, value: object, kinds: str = "biufc") -> npt.NDArray[Any]:
    """``value`` as a NumPy array whose dtype kind is one of ``kinds`` (NumPy's letters: b bool,
    i/u integers, f floats, c complex); ragged lists, text and objects are refused, naming ``name``.

    >>> numeric_array("x", [[1, 2]]).dtype.kind
    'i'
    >>> numeric_array("x", [[1.0], [2.0, 3.0]])
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: x: must be a rectangular array of numbers; got a ragged or non-numeric list
    >>> numeric_array("weight", ["a"], "iuf")
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: weight: must be an array of numbers; got <U1
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise ConvArithError(
            name, "must be a rectangular array of numbers", f"a ragged or non-numeric {type(value).__name__}"
        ) from None
    if array.dtype.kind not in kinds:
        raise ConvArithError(name, "must be an array of numbers", str(array.dtype))
    return array


def float_array(name: str, value: object) -> Array:
    """``value`` as a float32 or float64 NumPy array; anything else (ragged, text, ints) is refused.

    >>> float_array("input", [[1.0, 2.0]]).dtype
    dtype('float64')
    >>> float_array("input", [1, 2])
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: input: must be a float32 or float64 array; got int64
    """
    array = numeric_array(name, value)
    if array.dtype.type not in (np.float32, np.float64):
        raise ConvArithError(name, "must be a float32 or float64 array", str(array.dtype))
    return array


def available_memory() -> int | None:
    """Bytes of memory available now (``/proc/meminfo``), or ``None`` where that is unknown."""
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


def check_memory(nbytes: int, what: str, shape: object) -> None:
    """Refuse before allocating when the arrays of a call would not fit in the available memory.

    ``nbytes`` is computed with Python integers, so any size can be asked about.

    >>> check_memory(10**30, "conv2d", (1, 1, 10**15, 10**15))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    convarith.errors.ConvArithError: input_shape: conv2d needs ... GiB but only ... GiB is available; got (1, 1, ...)
    """
    if nbytes < CHECK_BYTES:
        return
    available = available_memory()
    if available is not None and nbytes > available:
        raise ConvArithError(
            "input_shape",
            f"{what} needs {nbytes / 2**30:.2f} GiB but only {available / 2**30:.2f} GiB is available",
            shape,
        )


def plan(samples: int, rows: int, row_bytes: int) -> tuple[int, int]:
    """Samples per block and rows (of the first spatial axis) per block, for about :data:`CHUNK_BYTES` of scratch."""
    sample_bytes = max(rows * row_bytes, 1)
    if sample_bytes <= CHUNK_BYTES:
        return max(1, min(samples, CHUNK_BYTES // sample_bytes)), rows
    return 1, max(1, min(rows, CHUNK_BYTES // max(row_bytes, 1)))


class Scratch:
    """Reused work arrays: fresh multi-megabyte arrays cost page faults on every block."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.arrays: dict[tuple[str, tuple[int, ...]], Array] = {}

    def empty(self, name: str, shape: tuple[int, ...]) -> Array:
        """An uninitialised array, the same one for every call with this name and shape."""
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


_THREAD = threading.local()
POOL_BYTES = 64 * 2**20
"""Scratch a thread keeps between calls (:func:`thread_scratch`); past it the pool starts afresh."""


def thread_scratch(dtype: np.dtype[Any]) -> Scratch:
    """This thread's :class:`Scratch` for ``dtype``, kept between calls: fresh multi-megabyte arrays cost
    page faults on every call (on a 7×7 stem, most of its time). Keys name everything that fixes an
    array's untouched part (:func:`pad` names its pads), so reuse by another layer is safe."""
    pools: dict[str, Scratch] = _THREAD.__dict__.setdefault("pools", {})
    pool = pools.get(dtype.str)
    if pool is None or sum(a.nbytes for a in pool.arrays.values()) > POOL_BYTES:
        pool = pools[dtype.str] = Scratch(dtype)
    return pool


# -- geometry as used for indexing -----------------------------------------------------------------------


def steps(bound: BoundLayer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Strides and dilations as used for indexing.

    A stride that never steps (one output window of a direct layer, one input cell of a
    transposed one) and the dilation of a one-tap kernel change nothing; they are taken as 1 so
    that values such as ``10**20`` never reach NumPy's 64-bit integers.

    >>> from convarith import Layer
    >>> steps(Layer("conv1d", kernel_size=1, stride=10**20, dilation=10**20).bind((5,)))
    ((1,), (1,))
    """
    pairs = [axis_steps(ax) for ax in bound.axes]
    return tuple(s for s, _ in pairs), tuple(d for _, d in pairs)


def axis_steps(ax: AxisGeometry) -> tuple[int, int]:
    """:func:`steps` of one axis: ``(stride, dilation)`` as used for indexing."""
    moves = ax.input if ax.transposed else ax.output
    return (ax.stride if moves > 1 else 1), (ax.dilation if ax.kernel > 1 else 1)


def padded_source(size: int, pad: Pad, mode: str) -> npt.NDArray[np.int64]:
    """:func:`convarith.geometry.coverage.padded_source` as an int64 array (``-1`` = a zero).

    A ``circular`` padding needs a cell left after its crops to wrap around.
    """
    if mode == "circular" and size + min(pad[0], 0) + min(pad[1], 0) < 1:
        raise ConvArithError(
            "padding", f"circular padding crops all {size} input cell(s): nothing is left to wrap", pad
        )
    return np.asarray(_padded_source_list(size, pad, mode), dtype=np.int64)


# -- padding ---------------------------------------------------------------------------------------------


def shift_copy(target: Array, source: Array, starts: Sequence[int]) -> None:
    """``target[..., q] = source[..., q + start]`` on every spatial axis, zeros where that is outside ``source``.

    The spatial axes are the trailing ``len(starts)`` ones. ``target`` is assumed zero where
    nothing is copied (a fresh or re-used zeroed buffer).
    """
    nd = len(starts)
    dst: list[slice] = []
    src: list[slice] = []
    for size_t, size_s, start in zip(target.shape[-nd:], source.shape[-nd:], starts, strict=True):
        lo, hi = max(0, start), min(size_s, size_t + start)
        if hi <= lo:
            return
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    lead: tuple[slice, ...] = (slice(None),) * (target.ndim - nd)
    target[(*lead, *dst)] = source[(*lead, *src)]


def pad(input: Array, pads: Sequence[Pad], mode: str = "zeros", *, scratch: Scratch | None = None) -> Array:
    """``input`` (N, C, *spatial) padded, or cropped where a pad is negative, exactly like ``F.pad``.

    Zeros are written around a copy (into a reused buffer given ``scratch``); the other modes
    gather through the index map :func:`padded_source`, axis by axis.

    >>> import numpy as np
    >>> pad(np.arange(1.0, 4.0).reshape(1, 1, 3), [(-1, 2)])[0, 0]
    array([2., 3., 0., 0.])
    """
    spatial = input.shape[2:]
    if all(b == a == 0 for b, a in pads):
        return input
    if mode == "zeros":
        shape = (*input.shape[:2], *(i + b + a for i, (b, a) in zip(spatial, pads, strict=True)))
        # the key names the pads: the border another layer's pads left would not be zero
        padded = np.zeros(shape, input.dtype) if scratch is None else scratch.zeros(f"padded {tuple(pads)}", shape)
        shift_copy(padded, input, [-b for b, _ in pads])
        return padded
    out = input
    for axis, (size, pair) in enumerate(zip(spatial, pads, strict=True)):
        out = np.take(out, padded_source(size, pair, mode), axis=2 + axis)
    return out


def pad_adjoint(grad: Array, spatial: Sequence[int], pads: Sequence[Pad], mode: str) -> Array:
    """The adjoint of :func:`pad`: scatter-add a padded (N, C, *padded) gradient back onto the input."""
    for axis, (size, pair) in enumerate(zip(spatial, pads, strict=True)):
        source = padded_source(size, pair, mode)
        kept = source >= 0
        moved = np.moveaxis(grad, axis + 2, 0)
        summed = np.zeros((size, *moved.shape[1:]), grad.dtype)
        np.add.at(summed, source[kept], moved[kept])
        grad = np.moveaxis(summed, 0, axis + 2)
    return np.ascontiguousarray(grad)


# -- direct convolution ------------------------------------------------------------------------------


def conv_gemm(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """im2col + GEMM: per group, ``W (C_out/G, C_g·taps) @ cols (C_g·taps, cells)``.

    The columns keep PyTorch's channels-first layout, so the weight is used as it is (its
    ``(C_g, *k)`` axes are the contraction) and BLAS writes the product straight into the output.
    ``bound`` is a direct convolution; its pads may be negative (crops) and its padding mode any.
    """
    layer = bound.layer
    n, c = input.shape[:2]
    nd, g = layer.ndim, layer.groups
    stride, dilation = steps(bound)
    out_spatial = bound.output_spatial
    c_g, c_out = c // g, weight.shape[0]
    c_out_g = c_out // g
    kernel = layer.kernel_size
    taps = math.prod(kernel)
    item = input.dtype.itemsize
    padded = math.prod(ax.padded for ax in bound.axes)
    check_memory(
        (n * c_out * math.prod(out_spatial) + c * padded) * item + CHUNK_BYTES,
        f"{layer.op} on {input.shape}",
        input.shape,
    )
    out = np.empty((n, c_out, *out_spatial), input.dtype)
    if n == 0:
        return out
    wmat = np.ascontiguousarray(weight).reshape(g, c_out_g, c_g * taps)
    out_g = out.reshape(n, g, c_out_g, *out_spatial)
    rows, rest = out_spatial[0], out_spatial[1:]
    samples, block_rows = plan(n, rows, math.prod(rest) * (taps * c + c_out) * item)
    scratch = thread_scratch(input.dtype)
    for n0 in range(0, n, samples):
        xp = pad(input[n0 : n0 + samples], bound.pads, layer.padding_mode, scratch=scratch)
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
                *(d * st for d, st in zip(dilation, sp, strict=True)),
                *(s * st for s, st in zip(stride, sp, strict=True)),
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


def conv_taps(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """Σ over kernel taps t of (the input slice that tap t reads in every window) × weight[..., t]."""
    layer = bound.layer
    n, c = input.shape[:2]
    g, c_out = layer.groups, weight.shape[0]
    stride, dilation = steps(bound)
    out_spatial = bound.output_spatial
    padded = math.prod(ax.padded for ax in bound.axes)
    check_memory(
        (n * c * padded + 3 * n * c_out * math.prod(out_spatial)) * input.dtype.itemsize, layer.op, input.shape
    )
    xp = pad(input, bound.pads, layer.padding_mode)
    xg = xp.reshape(n, g, c // g, *xp.shape[2:])
    wg = weight.reshape(g, c_out // g, *weight.shape[1:])
    out = np.zeros((n, g, c_out // g, *out_spatial), input.dtype)
    for tap in np.ndindex(*layer.kernel_size):
        reads = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilation, out_spatial, stride, strict=True)
        )
        out += np.einsum("goc,ngc...->ngo...", wg[(..., *tap)], xg[(slice(None),) * 3 + reads])
    return out.reshape(n, c_out, *out_spatial)


# -- transposed convolution ----------------------------------------------------------------------------


def crop(full: Array, bound: BoundLayer, out: Array) -> None:
    """``out`` = the full extent cropped by positive pads and zero-extended by negative ones."""
    if all(b >= 0 and a >= 0 for b, a in bound.pads):
        window = tuple(slice(b, b + o) for (b, _), o in zip(bound.pads, bound.output_spatial, strict=True))
        out[...] = full[(slice(None), slice(None), *window)]
        return
    out.fill(0)
    shift_copy(out, full, [b for b, _ in bound.pads])


def conv_transpose_gemm(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """One product ``W·y`` gives every tap's contribution (the columns); col2im adds each tap's
    columns into its strided slice of the full extent, which the pads then crop (or extend).

    With stride 1 the input is laid on the output's flat grid (zeros in the extra cells), so each
    tap's slice is one contiguous run per channel: the adds run at memory speed.
    """
    layer = bound.layer
    n, c_in = input.shape[:2]
    in_spatial = bound.input_spatial
    nd, g = layer.ndim, layer.groups
    stride, dilation = steps(bound)
    c_in_g, c_out_g = c_in // g, weight.shape[1]
    c_out = g * c_out_g
    kernel = layer.kernel_size
    taps = math.prod(kernel)
    item = input.dtype.itemsize
    out_spatial = bound.output_spatial
    full = tuple(ax.full for ax in bound.axes)
    check_memory(
        (n * c_out * math.prod(out_spatial) + (c_out + c_in) * math.prod(full)) * item + CHUNK_BYTES,
        f"{layer.op} on {input.shape}",
        input.shape,
    )
    flat_strides = tuple(math.prod(full[a + 1 :]) for a in range(nd))
    span = sum((i - 1) * st for i, st in zip(in_spatial, flat_strides, strict=True)) + 1
    flat = all(s == 1 for s in stride) and span <= FLAT_WASTE * math.prod(in_spatial)
    out = np.empty((n, c_out, *out_spatial), input.dtype)
    if n == 0:
        return out
    # weight (C_in, C_out/G, *k) → (G, taps·C_out/G, C_in/G): rows ordered (tap, output channel)
    wmat = weight.reshape(g, c_in_g, c_out_g, taps).transpose(0, 3, 2, 1).reshape(g, taps * c_out_g, c_in_g)
    wmat = np.ascontiguousarray(wmat)
    # One input channel per group: W·y has an inner dimension of 1 (an outer product), which BLAS
    # runs slowly and which materialises all the taps' columns at once. Each tap's columns are then
    # the broadcast product w_tap ⊗ y, made per tap in a small buffer: the same products, the same
    # order of the adds, so the same numbers.
    outer = c_in_g == 1
    w_taps = wmat.reshape(g, taps, c_out_g, 1) if outer else wmat
    rows, rest = in_spatial[0], in_spatial[1:]
    row_cells = flat_strides[0] if flat else math.prod(rest)
    samples, block_rows = plan(n, rows, taps * c_out * row_cells * item)
    scratch = thread_scratch(input.dtype)
    offsets = [
        sum(t * d * st for t, d, st in zip(tap, dilation, flat_strides, strict=True)) for tap in np.ndindex(*kernel)
    ]
    tail = span - (rows - 1) * flat_strides[0]  # flat cells of the last input row
    for n0 in range(0, n, samples):
        yb = input[n0 : n0 + samples]
        b = yb.shape[0]
        acc = scratch.empty("full", (b, g, c_out_g, *full))
        acc.fill(0)
        if flat:
            # y on the output's grid: cell i sits at flat index Σ i·stride_of_full; zeros elsewhere
            grid = scratch.zeros(f"grid {in_spatial}", (b, c_in, *full))  # a key per corner: the rest stays zero
            grid[(slice(None), slice(None), *(slice(0, i) for i in in_spatial))] = yb
            grid_g = grid.reshape(b, g, c_in_g, -1)
            acc_flat = acc.reshape(b, g, c_out_g, -1)
            for r0 in range(0, rows, block_rows):
                r = min(block_rows, rows - r0)
                q0, q = r0 * flat_strides[0], (r - 1) * flat_strides[0] + tail
                if outer:  # each tap's columns as a broadcast product, one tap at a time
                    tmp = scratch.empty("tap", (b, g, c_out_g, q))
                    for t, offset in enumerate(offsets):
                        np.multiply(w_taps[:, t], grid_g[..., q0 : q0 + q], out=tmp)
                        acc_flat[..., q0 + offset : q0 + offset + q] += tmp
                else:
                    res = scratch.empty("res", (b, g, taps * c_out_g, q))
                    np.matmul(wmat, grid_g[..., q0 : q0 + q], out=res)
                    cols = res.reshape(b, g, taps, c_out_g, q)
                    for t, offset in enumerate(offsets):
                        acc_flat[..., q0 + offset : q0 + offset + q] += cols[:, :, t]
        else:
            for r0 in range(0, rows, block_rows):
                r = min(block_rows, rows - r0)
                block = yb[:, :, r0 : r0 + r].reshape(b, g, c_in_g, -1)
                starts, sizes = (r0 * stride[0], *(0,) * (nd - 1)), (r, *rest)
                if outer:
                    source = block.reshape(b, g, 1, r, *rest)
                    tmp = scratch.empty("tap", (b, g, c_out_g, r, *rest))
                else:
                    res = scratch.empty("res", (b, g, taps * c_out_g, block.shape[-1]))
                    np.matmul(wmat, block, out=res)
                    cols = res.reshape(b, g, *kernel, c_out_g, r, *rest)
                for i, tap in enumerate(np.ndindex(*kernel)):
                    # input cell j of this block lands on output cell start + j·s + t·d
                    region = tuple(
                        slice(st + t * d, st + t * d + (m - 1) * s + 1, s)
                        for st, t, d, m, s in zip(starts, tap, dilation, sizes, stride, strict=True)
                    )
                    if outer:
                        np.multiply(w_taps[:, i].reshape(g, c_out_g, *(1,) * nd), source, out=tmp)
                        acc[(slice(None),) * 3 + region] += tmp
                    else:
                        acc[(slice(None),) * 3 + region] += cols[(slice(None), slice(None), *tap)]
        crop(acc.reshape(b, c_out, *full), bound, out[n0 : n0 + b])
    return out


def conv_transpose_scatter(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """Every input cell i stamps the kernel, times its values (summed over the group's input
    channels), onto the output cells ``i·s + t·d − p_b``."""
    layer = bound.layer
    n, c_in = input.shape[:2]
    g, c_out_g = layer.groups, weight.shape[1]
    stride, dilation = steps(bound)
    full = tuple(ax.full for ax in bound.axes)
    out_spatial = bound.output_spatial
    check_memory(
        (n * g * c_out_g * (math.prod(full) + math.prod(out_spatial))) * input.dtype.itemsize, layer.op, input.shape
    )
    acc = np.zeros((n, g, c_out_g, *full), input.dtype)
    yg = input.reshape(n, g, c_in // g, *input.shape[2:])
    wg = weight.reshape(g, c_in // g, *weight.shape[1:])
    extent = [(k - 1) * d + 1 for k, d in zip(layer.kernel_size, dilation, strict=True)]
    for cell in np.ndindex(*input.shape[2:]):
        stamp = np.einsum("ngc,gco...->ngo...", yg[(..., *cell)], wg)
        region = tuple(slice(i * s, i * s + e, d) for i, s, e, d in zip(cell, stride, extent, dilation, strict=True))
        acc[(slice(None),) * 3 + region] += stamp
    out = np.empty((n, g * c_out_g, *out_spatial), input.dtype)
    crop(acc.reshape(n, g * c_out_g, *full), bound, out)
    return out


def zeros_between(input: Array, bound: BoundLayer) -> Array:
    """A transposed layer's input (N, C, *i′) with ``s − 1`` zeros between neighbours: (N, C, *ĩ′).

    >>> import numpy as np
    >>> from convarith import Layer
    >>> zeros_between(np.ones((1, 1, 3)), Layer("conv_transpose1d", kernel_size=2, stride=3).bind((3,)))[0, 0]
    array([1., 0., 0., 1., 0., 0., 1.])
    """
    stride, _ = steps(bound)
    sizes = tuple(ax.stretched for ax in bound.axes)
    check_memory(
        input.shape[0] * input.shape[1] * math.prod(sizes) * input.dtype.itemsize,
        f"the stretched input of {bound.op}",
        input.shape,
    )
    out = np.zeros((*input.shape[:2], *sizes), input.dtype)
    out[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = input
    return out


# -- average pooling ------------------------------------------------------------------------------------


def axis_divisor(ax: AxisGeometry, count_include_pad: bool) -> npt.NDArray[np.int64]:
    """Per output cell of one pooled axis, the window's taps inside the padded input (or the input).

    With ``count_include_pad`` a tap counts when it lies in the padded input (PyTorch: the window
    clipped at the end of the padding, which only bites with ``ceil_mode``); without it, when it
    lies in the input. With dilation this is ONNX's reference evaluator's count.

    >>> from convarith import Layer
    >>> ax = Layer("avg_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True).bind((6,)).axes[0]
    >>> axis_divisor(ax, True).tolist(), axis_divisor(ax, False).tolist()
    ([3, 3, 3, 2], [2, 3, 3, 1])
    """
    stride, dilation = axis_steps(ax)
    start = np.arange(ax.output, dtype=np.int64) * stride - ax.pad[0]
    lo, hi = (-ax.pad[0], ax.input + ax.pad[1]) if count_include_pad else (0, ax.input)
    first = np.clip(-((start - lo) // dilation), 0, ax.kernel)  # ⌈(lo − start)/d⌉
    last = np.clip((hi - 1 - start) // dilation + 1, 0, ax.kernel)  # ⌊(hi − 1 − start)/d⌋ + 1
    counts: npt.NDArray[np.int64] = np.maximum(last - first, 0)
    return counts


def avg_divisor(bound: BoundLayer) -> Array:
    """The divisor of every output cell (an array of the output's spatial shape): the product of
    the per-axis :func:`axis_divisor` counts, or ``divisor_override``.

    >>> from convarith import Layer
    >>> avg_divisor(Layer("avg_pool2d", kernel_size=2, padding=1, count_include_pad=False).bind((3, 3))).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    layer = bound.layer
    if layer.divisor_override is not None:
        return np.full(bound.output_spatial, float(layer.divisor_override))
    divisor: Array = np.ones((), np.float64)
    for ax in bound.axes:
        divisor = np.multiply.outer(divisor, axis_divisor(ax, layer.count_include_pad).astype(np.float64))
    return divisor
