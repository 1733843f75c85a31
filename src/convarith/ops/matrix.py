"""The sparse matrix C behind every convolution, transposed convolution and pooling layer.

For one sample, a convolution is a linear map ``y = C @ x`` on the row-major unrolled tensors:
rows are the output cells ``(C_out, *out)``, columns the input cells ``(C_in, *in)``. Section 4.1
of Dumoulin & Visin's guide writes this matrix for a 3×3 kernel over a 4×4 input; its rows hold the
kernel rows at the strided columns ``r·W + c``:

>>> from convarith import Layer
>>> w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
>>> bound = Layer("conv2d", 1, 1, kernel_size=3).bind((4, 4))
>>> C = conv_matrix(bound, w)
>>> C.shape
(4, 16)
>>> C.toarray()[0].astype(int).tolist()
[1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0]

The transposed convolution is ``Cᵀ`` (and so is the input gradient: ``x.grad = Cᵀ @ grad_y``):
the layer whose matrix is exactly ``Cᵀ`` is the bound layer's :meth:`~convarith.BoundLayer.adjoint`.

>>> (conv_matrix(bound.adjoint(), w) != C.T).nnz
0

How the matrix is built
-----------------------
Every configuration factors over the spatial axes: on each axis, an output position reads a
sorted list of input positions, each through a set of kernel taps (one tap, or several when a
``reflect``/``replicate``/``circular`` padding folds them onto the same input cell). Positions
whose lists have the same shape relative to a base position form a *class*; the interior of an
axis is one class (or, for a transposed convolution, one class per phase ``q mod s``) and only
the borders are examined. The CSR arrays are then written directly in row order, all output
channels at once, segment by segment, into preallocated ``data``/``indices``/``indptr`` arrays:
the column indices of a row come out sorted because the row enumerates ``(c_in, position on
axis 0, …)`` in row-major order, so no COO sort is needed; no temporary is larger than a chunk
(2 Mi entries) and the cache of segments stays below a sixteenth of the result.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast, overload

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..errors import ConvArithError
from ..geometry.bound import AxisGeometry, BoundLayer
from ..layer import IntOrSeq, Layer, PaddingArg, parse_op
from ..rules import raise_refusals
from .binding import bind_call, bind_pool, one_sample, reject_keywords
from .kernels import CHECK_BYTES, axis_divisor, axis_steps, numeric_array, padded_source

__all__ = [
    "DENSE_LIMIT",
    "FORMATS",
    "DenseMatrix",
    "Format",
    "SparseMatrix",
    "bias_vector",
    "conv_matrix",
    "pool_matrix",
    "save_matrix",
]

IntArray = npt.NDArray[np.int64]
Format: TypeAlias = Literal["csr", "coo", "dense"]
DenseMatrix: TypeAlias = npt.NDArray[np.inexact[Any]]
"""A dense matrix (``format="dense"``): float or complex values."""
SparseMatrix: TypeAlias = sp.csr_array | sp.coo_array
"""A SciPy sparse array (``format="csr"`` or ``"coo"``)."""

FORMATS: tuple[str, ...] = ("csr", "coo", "dense")
DENSE_LIMIT = 2**26
"""Largest dense matrix (elements) that ``format="dense"`` builds."""

_GAP = np.iinfo(np.int64).min  # marks a tap that reads nothing (zero padding, or no input cell)
_CHUNK = 1 << 21  # entries of the largest temporary (and cached segment) of the writing loop
_INT32_MAX = np.iinfo(np.int32).max
_BUDGET = 4 * 2**30


# -- one axis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """How the row positions of one spatial axis read its column positions.

    Row position ``o`` of class ``c = cls[o]`` has entries at columns ``base[o] + rel[c]``
    (sorted), each with the value index ``ref[c]`` along this axis of the value table.
    """

    rows: int
    cols: int
    base: IntArray
    cls: IntArray
    rel: tuple[IntArray, ...]
    ref: tuple[IntArray, ...]
    period: int = 1
    """Period (in rows) of the regular interior: 1, or the stride of a transposed convolution."""
    step: int = 0
    """Increase of ``base`` over one period."""

    def counts(self) -> IntArray:
        sizes = np.array([len(r) for r in self.rel], dtype=np.int64)
        return sizes[self.cls]


def _classify(keys: IntArray) -> tuple[IntArray, IntArray]:
    """Group equal rows of ``keys``: the class of every row and one representative row per class."""
    # Hash each row to one integer (wrapping arithmetic), group the hashes, then check that every
    # row equals its representative, so a hash collision can only cost time, never correctness.
    words = keys.view(np.uint64)
    hashed = np.zeros(len(keys), dtype=np.uint64)
    for column in words.T:
        hashed = hashed * np.uint64(0x9E3779B97F4A7C15) + column
        hashed ^= hashed >> np.uint64(29)
    _, reps, cls = np.unique(hashed, return_index=True, return_inverse=True)
    cls = cls.ravel().astype(np.int64)
    if not np.array_equal(keys, keys[reps][cls]):
        _, reps, cls = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        cls = cls.ravel().astype(np.int64)
    return cls, reps.astype(np.int64)


def _classes(
    rows: int, interior: tuple[int, int], period: int, keys_of: Callable[[IntArray], IntArray]
) -> tuple[IntArray, IntArray]:
    """Class of every position and the key row of every class.

    Positions in ``interior`` repeat one key per phase (``period`` of them); only the border
    positions are keyed and grouped, so a long axis costs little more than its borders.
    """
    lo, hi = max(interior[0], 0), min(interior[1], rows)
    if hi - lo < 2 * period:
        lo = hi = 0
    positions = np.arange(rows, dtype=np.int64)
    cls = np.empty(rows, dtype=np.int64)
    cls[lo:hi] = (positions[lo:hi] - lo) % period
    keys = keys_of(positions[lo : lo + period]) if hi > lo else None
    border = np.concatenate([positions[:lo], positions[hi:]])
    if len(border):
        border_keys = keys_of(border)
        border_cls, reps = _classify(border_keys)
        first = 0 if keys is None else period
        cls[border] = border_cls + first
        keys = border_keys[reps] if keys is None else np.concatenate([keys, border_keys[reps]])
    assert keys is not None
    return cls, keys


def _direct_axis(ax: AxisGeometry, mode: str) -> tuple[_Axis, npt.NDArray[np.float64] | None]:
    """One axis of a direct convolution; the fold matrix (tap sets × taps) when taps merge."""
    size, out, k, pad = ax.input, ax.output, ax.kernel, ax.pad
    s, d = axis_steps(ax)
    source = padded_source(size, pad, mode)
    base = np.arange(out, dtype=np.int64) * s - pad[0]
    taps = np.arange(k, dtype=np.int64) * d

    def keys_of(o: IntArray) -> IntArray:
        src = source[(o * s)[:, None] + taps]
        return np.where(src >= 0, src - base[o][:, None], _GAP)

    # Windows wholly inside the padded cells that map to themselves read the plain kernel.
    same = np.flatnonzero((source >= 0) & (source == np.arange(len(source)) - pad[0]))
    interior = (0, 0)
    if len(same) and same[-1] - same[0] + 1 == len(same):
        interior = (-(-int(same[0]) // s), (int(same[-1]) - (k - 1) * d) // s + 1)
    cls, keys = _classes(out, interior, 1, keys_of)
    merged: dict[tuple[int, ...], int] = {}
    rels, refs = [], []
    for row in keys:
        offsets = np.unique(row[row != _GAP])
        ref = []
        for offset in offsets.tolist():
            hit = tuple(np.flatnonzero(row == offset).tolist())
            # A folding padding maps several taps onto one input cell: their weights are summed.
            ref.append(hit[0] if len(hit) == 1 else merged.setdefault(hit, k + len(merged)))
        rels.append(offsets.astype(np.int64))
        refs.append(np.array(ref, dtype=np.int64))
    fold = None
    if merged:
        fold = np.zeros((k + len(merged), k))
        fold[:k] = np.eye(k)
        for hit, r in merged.items():
            fold[r, list(hit)] = 1.0
    return _Axis(out, size, base, cls, tuple(rels), tuple(refs), 1, s), fold


def _transposed_axis(ax: AxisGeometry) -> _Axis:
    """One axis of a transposed convolution: output ``q`` gets tap ``t`` of input ``j`` when ``j·s + t·d − p_b = q``.

    ``p_b`` may be negative (ONNX's ``same_upper`` with a kernel shorter than the stride): the
    output then starts with cells no tap reaches.
    """
    size, out, k, pad_before = ax.input, ax.output, ax.kernel, ax.pad[0]
    s, d = axis_steps(ax)
    taps = np.arange(k, dtype=np.int64) * d
    base = (np.arange(out, dtype=np.int64) + pad_before) // s

    def keys_of(q: IntArray) -> IntArray:
        num = q[:, None] + pad_before - taps
        j = num // s
        valid = (num == j * s) & (j >= 0) & (j < size)
        return np.where(valid, j - base[q][:, None], _GAP)

    # Away from the borders every tap that divides lands on an input: one class per phase.
    cls, keys = _classes(out, ((k - 1) * d - pad_before, size * s - pad_before), s, keys_of)
    rels, refs = [], []
    for row in keys:
        hit = np.flatnonzero(row != _GAP)
        order = np.argsort(row[hit], kind="stable")  # later taps read earlier inputs
        rels.append(row[hit][order].astype(np.int64))
        refs.append(hit[order].astype(np.int64))
    return _Axis(out, size, base, cls, tuple(rels), tuple(refs), s, 1)


def _pool_src(ax: AxisGeometry) -> IntArray:
    """The input cell of every (window, tap); ``-1`` in the padding."""
    s, d = axis_steps(ax)
    pos = (np.arange(ax.output, dtype=np.int64) * s - ax.pad[0])[:, None] + np.arange(ax.kernel, dtype=np.int64) * d
    return np.where((pos >= 0) & (pos < ax.input), pos, -1)


def _avg_pool_axis(ax: AxisGeometry, count_include_pad: bool, override: bool) -> tuple[_Axis, IntArray]:
    """One axis of an average pool and the distinct divisor factors its classes refer to."""
    size, out, k = ax.input, ax.output, ax.kernel
    s, d = axis_steps(ax)
    start = np.arange(out, dtype=np.int64) * s - ax.pad[0]
    taps = np.arange(k, dtype=np.int64) * d
    # The divisor of every window (kernels.axis_divisor, shared with the reference pools); an N-d
    # divisor is the product of the axes'.
    divisors = np.ones(out, dtype=np.int64) if override else axis_divisor(ax, count_include_pad)

    def keys_of(o: IntArray) -> IntArray:
        pos = start[o][:, None] + taps
        rel = np.where((pos >= 0) & (pos < size), taps, _GAP)
        return np.column_stack([rel, divisors[o]])

    cls, keys = _classes(out, (-(-ax.pad[0] // s), (size - ax.extent + ax.pad[0]) // s + 1), 1, keys_of)
    factors = np.unique(keys[:, -1])
    rels, refs = [], []
    for row in keys:
        offsets = row[:-1][row[:-1] != _GAP].astype(np.int64)
        rels.append(offsets)
        refs.append(np.full(len(offsets), np.searchsorted(factors, row[-1]), dtype=np.int64))
    return _Axis(out, size, start, cls, tuple(rels), tuple(refs), 1, s), factors.astype(np.int64)


# -- the guard -----------------------------------------------------------------------------------


def _index_dtype(rows: int, cols: int, nnz: int) -> np.dtype[Any]:
    """int32 whenever every index and count fits, as SciPy itself would choose."""
    return np.dtype(np.int32 if max(rows, cols, nnz) <= _INT32_MAX else np.int64)


def _check_format(fmt: object) -> str:
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ConvArithError("format", f"must be one of {', '.join(FORMATS)}", repr(fmt))
    return str(fmt)


def _guard(
    rows: int, cols: int, nnz: int, dtype: np.dtype[Any], fmt: str, budget: float, work: int = 0
) -> np.dtype[Any]:
    """Refuse before allocating: the exact bytes of the result (and of the work arrays) vs the budget."""
    index = _index_dtype(rows, cols, nnz)
    if fmt == "dense" and rows * cols > DENSE_LIMIT:
        raise ConvArithError(
            "format",
            f"'dense' is limited to {DENSE_LIMIT:,} elements (2**26), this matrix is {rows:,}×{cols:,} = "
            f"{rows * cols:,}; use 'csr' or 'coo'",
            repr(fmt),
        )
    arrays = nnz * (dtype.itemsize + index.itemsize) + (rows + 1) * index.itemsize
    if fmt == "coo":
        work += nnz * index.itemsize  # the row indices, next to the CSR arrays they come from
    elif fmt == "dense":
        work += rows * cols * dtype.itemsize
    need = arrays + work
    if need > budget:
        raise ConvArithError(
            "memory_budget",
            f"a {rows:,}×{cols:,} matrix with {nnz:,} nonzeros needs {need / 2**30:.3f} GiB: "
            f"{arrays / 2**30:.3f} GiB of CSR arrays ({dtype.name} values, {index.name} indices) and "
            f"{work / 2**30:.3f} GiB to build {fmt!r}, over the budget",
            f"{budget:,.0f} bytes ({budget / 2**30:.3f} GiB)",
        )
    return index


# -- the writer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """Row positions ``start … start + periods·period`` of the last axis, written together."""

    start: int
    periods: int
    period: int


def _blocks(axis: _Axis) -> list[_Block]:
    """Split the last axis into runs that repeat with its period, and single positions."""
    p, n = axis.period, axis.rows
    blocks: list[_Block] = []
    pos = 0
    if n > p:
        same = (axis.cls[p:] == axis.cls[:-p]) & (axis.base[p:] - axis.base[:-p] == axis.step)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], same.astype(np.int8), [0]])))
        for u, v in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            # same[u:v] holds, so positions u … v + p − 1 repeat with period p.
            if u < pos:
                continue
            blocks.extend(_Block(x, 1, 1) for x in range(pos, u))
            periods = (v + p - u) // p
            blocks.append(_Block(u, periods, p))
            pos = u + periods * p
    blocks.extend(_Block(x, 1, 1) for x in range(pos, n))
    return blocks


def _write_csr(table: npt.NDArray[Any], groups: int, axes: Sequence[_Axis], nnz: int, index: np.dtype[Any]) -> Any:
    """Write the CSR arrays in row order.

    ``table[c_row, c_col_in_group, r_0, …]`` holds the values; row channel ``c_row`` of group
    ``g`` reads column channels ``g·Ccol_g …``. Every row channel has the same structure, so the
    matrix is written as a ``(C_row, nnz per channel)`` array, all row channels at once.
    """
    crow, ccol_g = table.shape[:2]
    rows_pc = math.prod(ax.rows for ax in axes)
    cols_sp = _cols(axes)
    nnz_pc = nnz // crow

    data = np.empty(nnz, dtype=table.dtype)
    indices = np.empty(nnz, dtype=index)
    indptr = np.empty(crow * rows_pc + 1, dtype=index)
    indptr[0] = 0
    # Row pointers of the first row channel: outer product of the per-axis counts, summed up.
    head = indptr[1 : rows_pc + 1]
    counts = [ax.counts() for ax in axes]
    grid = head.reshape([ax.rows for ax in axes])
    grid[...] = ccol_g
    for n, c in enumerate(counts):
        grid *= c.reshape([-1 if m == n else 1 for m in range(len(axes))]).astype(index)
    np.cumsum(head, out=head)

    if nnz_pc:
        _write_entries(table, groups, axes, counts, indptr, indices.reshape(crow, nnz_pc), data.reshape(crow, nnz_pc))
    if crow > 1:
        # Every row channel repeats the first one's row lengths.
        tail = indptr[1:].reshape(crow, rows_pc)
        np.add(tail[0], (np.arange(1, crow, dtype=index) * nnz_pc)[:, None], out=tail[1:])
    matrix = sp.csr_array((data, indices, indptr), shape=(crow * rows_pc, ccol_g * groups * cols_sp), copy=False)
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def _cols(axes: Sequence[_Axis]) -> int:
    return math.prod(ax.cols for ax in axes)


def _cache_limit(nnz: int) -> int:
    """Values kept in the segment cache: a sixteenth of the result, or one chunk."""
    return max(_CHUNK, nnz // 16)


def _work_bytes(nnz: int, dtype: np.dtype[Any]) -> int:
    """Working memory of the writer besides the result: the cache and one segment being built."""
    return min(nnz, _cache_limit(nnz) + _CHUNK) * (dtype.itemsize + 8)


def _write_entries(
    table: npt.NDArray[Any],
    groups: int,
    axes: Sequence[_Axis],
    counts: Sequence[IntArray],
    indptr: npt.NDArray[Any],
    idx2d: npt.NDArray[Any],
    val2d: npt.NDArray[Any],
) -> None:
    """Fill ``indices``/``data`` (viewed per row channel) segment by segment.

    A segment is a run of rows sharing the leading positions and a block of the last axis. Its
    column offsets (relative to the leading positions) and its values depend only on the classes
    involved, so they are built once, cached, and then written with one add and one copy.
    """
    crow, ccol_g = table.shape[:2]
    index = idx2d.dtype
    cols_sp = _cols(axes)
    col_strides = [math.prod(ax.cols for ax in axes[n + 1 :]) for n in range(len(axes))]
    ref_shape = table.shape[2:]
    ref_strides = [math.prod(ref_shape[n + 1 :]) for n in range(len(axes))]
    ref_size = math.prod(ref_shape)
    flat_table = table.reshape(crow, ccol_g * ref_size)
    *lead_axes, last = axes
    # Offsets relative to the leading base may exceed the final columns by the padding reach.
    reach = ccol_g * groups * cols_sp + sum(
        int(np.abs(ax.base).max()) * st for ax, st in zip(axes, col_strides, strict=True)
    )
    offset_dtype = index if reach <= _INT32_MAX else np.dtype(np.int64)
    shift: Any = 0
    if groups > 1:
        shift = ((np.arange(crow) // (crow // groups)) * ccol_g * cols_sp).astype(np.int64)[:, None]

    combos: dict[tuple[int, ...], tuple[IntArray, npt.NDArray[Any]]] = {}

    def combo(classes: tuple[int, ...]) -> tuple[IntArray, npt.NDArray[Any]]:
        """Column offsets and values (per row channel) of a row whose axes have these classes."""
        hit = combos.get(classes)
        if hit is None:
            cols = np.arange(ccol_g, dtype=np.int64) * cols_sp
            refs = np.arange(ccol_g, dtype=np.int64) * ref_size
            for n, c in enumerate(classes):
                cols = cols[..., None] + axes[n].rel[c] * col_strides[n]
                refs = refs[..., None] + axes[n].ref[c] * ref_strides[n]
            hit = (cols.ravel(), flat_table[:, refs.ravel()])
            if len(combos) > 4096:
                combos.clear()
            combos[classes] = hit
        return hit

    segments: dict[tuple[Any, ...], tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}
    cache_limit = _cache_limit(idx2d.size)
    cached = 0

    def segment(lead_cls: tuple[int, ...], block: _Block, m0: int, m1: int, plen: int) -> tuple[Any, Any]:
        """Offsets ``(periods·plen,)`` and values ``(C_row, periods·plen)`` of rows ``m0 … m1`` of a block."""
        nonlocal cached
        key = (lead_cls, block.start, m0)
        hit = segments.get(key)
        if hit is None:
            pattern = np.empty((m1 - m0, plen), dtype=offset_dtype)
            values = np.empty((crow, m1 - m0, plen), dtype=table.dtype)
            off = 0
            for f in range(block.period):
                pos = block.start + f
                cols, vals = combo((*lead_cls, int(last.cls[pos])))
                width = len(cols)
                if width:
                    bases = (int(last.base[pos]) + last.step * np.arange(m0, m1)) * col_strides[-1]
                    pattern[:, off : off + width] = bases[:, None] + cols
                    values[:, :, off : off + width] = vals[:, None, :]
                    off += width
            hit = (pattern.reshape(1, -1), values.reshape(crow, -1))
            if cached + values.size > cache_limit:
                segments.clear()
                cached = 0
            segments[key] = hit
            cached += values.size
        return hit

    blocks = _blocks(last)
    last_sizes = np.array([len(r) for r in last.rel], dtype=np.int64)
    block_sizes = [int(last_sizes[last.cls[b.start : b.start + b.period]].sum()) for b in blocks]
    lead_counts = [c.tolist() for c in counts[:-1]]
    lead_cls_lists = [ax.cls.tolist() for ax in lead_axes]
    lead_base_lists = [(ax.base * st).tolist() for ax, st in zip(lead_axes, col_strides, strict=False)]
    for flat, lead in enumerate(itertools.product(*(range(ax.rows) for ax in lead_axes))):
        lead_len = ccol_g
        for n, o in enumerate(lead):
            lead_len *= lead_counts[n][o]
        if not lead_len:
            continue
        lead_cls = tuple(lead_cls_lists[n][o] for n, o in enumerate(lead))
        lead_shift = shift + sum(lead_base_lists[n][o] for n, o in enumerate(lead))
        row0 = flat * last.rows
        for block, size in zip(blocks, block_sizes, strict=True):
            plen = lead_len * size
            if not plen:
                continue
            seg = int(indptr[row0 + block.start])
            step = max(1, _CHUNK // (plen * crow))
            for m0 in range(0, block.periods, step):
                m1 = min(m0 + step, block.periods)
                pattern, values = segment(lead_cls, block, m0, m1, plen)
                span = slice(seg + m0 * plen, seg + m1 * plen)
                np.add(pattern, lead_shift, out=idx2d[:, span], casting="unsafe")
                val2d[:, span] = values


def _finish(matrix: Any, fmt: str) -> Any:
    if fmt == "coo":
        return matrix.tocoo(copy=False)
    if fmt == "dense":
        return matrix.toarray()
    return matrix


# -- arguments -----------------------------------------------------------------------------------


def _value_dtype(dtype: npt.DTypeLike | None, default: np.dtype[Any]) -> np.dtype[Any]:
    try:
        chosen = default if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        raise ConvArithError("dtype", "must be a floating or complex dtype", repr(dtype)) from None
    if not np.issubdtype(chosen, np.inexact):
        raise ConvArithError("dtype", "must be a floating or complex dtype", repr(dtype))
    return chosen


def _default_dtype(w: npt.NDArray[Any]) -> np.dtype[Any]:
    """The weight's dtype when it is float32, complex64 or complex128, else float64."""
    if w.dtype in (np.float32, np.complex64, np.complex128):
        return w.dtype
    return np.dtype(np.float64)


def _check_budget(budget: object) -> float:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget < math.inf:
        raise ConvArithError("memory_budget", "must be a finite number of bytes, at least 0", repr(budget))
    return float(budget)


def _axis_bytes(bound: BoundLayer, budget: float) -> None:
    """Refuse before building the per-axis tables when they alone would exceed the budget.

    Each axis lists its padded cells (direct) and, for the border windows, their taps; a padding of
    10⁹ or a kernel of 10¹⁵ would exhaust the memory there, before the exact count of the result.
    Tables below :data:`~convarith.ops.kernels.CHECK_BYTES` always pass (the result's own guard
    follows).
    """
    need = 0
    for ax in bound.axes:
        s, _ = axis_steps(ax)
        border = min(ax.output, 2 * (ax.extent // s + 2))
        cells = ax.padded if not ax.transposed and not bound.pooling else ax.input
        need += 64 * max(cells, 0) + 32 * ax.output + 48 * border * ax.kernel
    if need > max(budget, CHECK_BYTES):
        raise ConvArithError(
            "memory_budget",
            f"the per-axis tables of {bound.op} over {bound.input_spatial} (padding {bound.pads}) need "
            f"{need / 2**30:.3f} GiB before the matrix itself, over the budget",
            f"{budget:,.0f} bytes ({budget / 2**30:.3f} GiB)",
        )


# -- public API ----------------------------------------------------------------------------------


@overload
def conv_matrix(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    dtype: npt.DTypeLike | None = None,
    format: Literal["csr"] = "csr",
    memory_budget: float = _BUDGET,
) -> sp.csr_array: ...
@overload
def conv_matrix(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    dtype: npt.DTypeLike | None = None,
    format: Literal["coo"],
    memory_budget: float = _BUDGET,
) -> sp.coo_array: ...
@overload
def conv_matrix(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    dtype: npt.DTypeLike | None = None,
    format: Literal["dense"],
    memory_budget: float = _BUDGET,
) -> DenseMatrix: ...
@overload
def conv_matrix(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    dtype: npt.DTypeLike | None = None,
    format: str = "csr",
    memory_budget: float = _BUDGET,
) -> SparseMatrix | DenseMatrix: ...
def conv_matrix(
    layer: Layer | BoundLayer | str,
    weight: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    output_padding: IntOrSeq = 0,
    padding_mode: str = "zeros",
    dtype: npt.DTypeLike | None = None,
    format: str = "csr",
    memory_budget: float = _BUDGET,
) -> SparseMatrix | DenseMatrix:
    """The matrix ``C`` with ``layer(x).ravel() == C @ x.ravel()`` for one sample.

    Rows are the row-major unrolling of the output ``(C_out, *out)``, columns that of the input
    ``(C_in, *in)``. The bias is not part of ``C``: add :func:`bias_vector` after ``C @ x``.

    Parameters
    ----------
    layer
        A (transposed) convolution: a :class:`~convarith.BoundLayer` (then no ``input_shape``),
        a :class:`~convarith.Layer` (then ``input_shape``; channels it leaves open come from the
        weight), or an op name (``conv1d`` … ``conv_transpose3d``, any ``N``d) with PyTorch's
        keywords. Layer-first, only the layer's own rules apply (a negative zero padding crops,
        negative transposed pads add output cells); with an op name, PyTorch's rules.
    weight
        In PyTorch's layout: ``(C_out, C_in/groups, *kernel)`` for a convolution,
        ``(C_in, C_out/groups, *kernel)`` for a transposed one.
    input_shape
        The spatial sizes, ``(C_in, *spatial)`` or ``(1, C_in, *spatial)`` (an op name needs
        ``C_in``).
    stride, padding, dilation, groups, output_padding, padding_mode
        PyTorch's keywords, with an op name only (with a layer they must stay at their defaults).
        ``padding`` also takes ``(before, after)`` pairs per axis and the policies.
        ``reflect``, ``replicate`` and ``circular`` padding fold several taps onto one input
        cell: their weights are summed into one entry.
    dtype
        Value dtype; by default the weight's when it is float32 or complex, else float64.
    format
        ``"csr"`` (``scipy.sparse.csr_array``), ``"coo"`` (``coo_array``) or ``"dense"``
        (``numpy.ndarray``, at most :data:`DENSE_LIMIT` elements).
    memory_budget
        Bytes the result may take; checked before anything large is allocated.

    Returns
    -------
    scipy.sparse.csr_array, scipy.sparse.coo_array or numpy.ndarray
        Shape ``(C_out·∏out, C_in·∏in)``. Entries are structural: every (output, input) pair the
        geometry connects is stored, even where the weight is 0. Indices are int32 whenever they
        fit. A transposed convolution's matrix is exactly the transpose of its adjoint's
        (:meth:`~convarith.BoundLayer.adjoint`); ``Cᵀ @ g`` is the input gradient for an output
        gradient ``g``.

    Raises
    ------
    ConvArithError
        For what the layer (or PyTorch, with an op name) refuses, a weight that does not fit, a
        batch other than 1, a pooling layer (see :func:`pool_matrix`), a keyword set next to a
        layer, a dense matrix above the limit, or a result above ``memory_budget`` (naming the
        nonzeros and the GiB needed; the count is exact, also for folding modes).

    Examples
    --------
    >>> from convarith import Layer
    >>> w = np.array([[[1.0, 2.0, 3.0]]])
    >>> conv_matrix(Layer("conv1d", kernel_size=3, stride=2, padding=1), w, (5,), format="dense")
    array([[2., 3., 0., 0., 0.],
           [0., 1., 2., 3., 0.],
           [0., 0., 0., 1., 2.]])
    >>> conv_matrix("conv1d", w, (1, 3), padding=1, padding_mode="reflect", format="dense")
    array([[2., 4., 0.],
           [1., 2., 3.],
           [0., 4., 2.]])
    >>> conv_matrix(Layer("conv_transpose1d", kernel_size=3, stride=2).bind((2,)), w, format="dense")
    array([[1., 0.],
           [2., 0.],
           [3., 1.],
           [0., 2.],
           [0., 3.]])
    """
    fmt = _check_format(format)
    budget = _check_budget(memory_budget)
    w = numeric_array("weight", weight, "iufc")
    keywords = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "output_padding": output_padding,
        "padding_mode": padding_mode,
    }
    bound = bind_call(layer, input_shape, w.shape, keywords, caller="conv_matrix")
    return _conv_matrix(bound, w, _value_dtype(dtype, _default_dtype(w)), fmt, budget)


def _conv_matrix(
    bound: BoundLayer, w: npt.NDArray[Any], value_dtype: np.dtype[Any], fmt: str, budget: float
) -> SparseMatrix | DenseMatrix:
    layer = bound.layer
    g, c_in, c_out = layer.groups, bound.in_channels, bound.out_channels
    _axis_bytes(bound, budget)
    folds: list[npt.NDArray[np.float64] | None] = []
    axes: list[_Axis] = []
    for ax in bound.axes:
        if bound.transposed:
            axes.append(_transposed_axis(ax))
            folds.append(None)
        else:
            axis, fold = _direct_axis(ax, layer.padding_mode)
            axes.append(axis)
            folds.append(fold)
    ccol_g = c_in // g
    nnz = c_out * ccol_g * math.prod(int(ax.counts().sum()) for ax in axes)
    rows, cols = c_out * math.prod(bound.output_spatial), c_in * math.prod(bound.input_spatial)
    index = _guard(rows, cols, nnz, value_dtype, fmt, budget, _work_bytes(nnz, value_dtype))

    if bound.transposed:
        # Row channel (group g, m) reads column channel (g, l) through w[g·C_in/g + l, m].
        kernel = w.shape[2:]
        table = (
            w.astype(value_dtype, copy=False)
            .reshape(g, ccol_g, c_out // g, *kernel)
            .swapaxes(1, 2)
            .reshape(c_out, ccol_g, *kernel)
        )
    else:
        table = w.astype(value_dtype, copy=False)
        for n, fold in enumerate(folds):
            if fold is not None:
                folded = np.tensordot(table, fold.astype(value_dtype), axes=([2 + n], [1]))
                table = np.moveaxis(folded, -1, 2 + n)
    table = np.ascontiguousarray(table)
    return cast(SparseMatrix | DenseMatrix, _finish(_write_csr(table, g, axes, nnz, index), fmt))


_POOL_DEFAULTS: dict[str, object] = {
    "kernel_size": None,
    "stride": None,
    "padding": 0,
    "dilation": 1,
    "ceil_mode": False,
    "count_include_pad": True,
    "divisor_override": None,
}


@overload
def pool_matrix(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None = None,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    at: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float64,
    format: Literal["csr"] = "csr",
    memory_budget: float = _BUDGET,
) -> sp.csr_array: ...
@overload
def pool_matrix(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None = None,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    at: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float64,
    format: Literal["coo"],
    memory_budget: float = _BUDGET,
) -> sp.coo_array: ...
@overload
def pool_matrix(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None = None,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    at: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float64,
    format: Literal["dense"],
    memory_budget: float = _BUDGET,
) -> DenseMatrix: ...
@overload
def pool_matrix(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None = None,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    at: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float64,
    format: str = "csr",
    memory_budget: float = _BUDGET,
) -> SparseMatrix | DenseMatrix: ...
def pool_matrix(
    layer: Layer | BoundLayer | str,
    input_shape: Sequence[int] | None = None,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    at: npt.ArrayLike | None = None,
    dtype: npt.DTypeLike = np.float64,
    format: str = "csr",
    memory_budget: float = _BUDGET,
) -> SparseMatrix | DenseMatrix:
    """The matrix of an average pool, or of a max pool at the input ``at`` (its Jacobian there).

    Parameters
    ----------
    layer
        A pool: a :class:`~convarith.BoundLayer` (then no ``input_shape``), a
        :class:`~convarith.Layer` (then ``input_shape``), or an op name (``avg_pool1d`` …,
        ``max_pool1d`` …, any ``N``d) with PyTorch's keywords and rules. A layer may be an
        average pool with dilation (ONNX's ``AveragePool``): its divisor counts the dilated taps
        inside the padded input (or the input), as ONNX's reference evaluator does.
    input_shape
        The spatial sizes, ``(C, *spatial)`` or ``(1, C, *spatial)`` (an op name needs ``C``).
    kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override
        PyTorch's keywords, with an op name only (``stride=None`` is the kernel size). An average
        divides by the window's taps inside the padded input (clipped at its end, which only
        bites with ``ceil_mode``), or, without ``count_include_pad``, inside the input, or by
        ``divisor_override``.
    at
        For max pooling, the input (shape ``(C, *spatial)``) at which to select: each row has one
        1 at the element PyTorch picks: the first maximum in window order, or the last NaN of a
        window holding NaNs. ``C @ at.ravel()`` is the pooled output and ``Cᵀ @ g`` the input
        gradient there. A window that holds only padding (possible with dilation) selects
        nothing: its row is empty (PyTorch outputs ``-inf`` there, a constant).
    dtype, format, memory_budget
        As in :func:`conv_matrix`.

    Returns
    -------
    scipy.sparse.csr_array, scipy.sparse.coo_array or numpy.ndarray
        Shape ``(C·∏out, C·∏in)``; channels are independent (block diagonal).

    Raises
    ------
    ConvArithError
        For what the layer (or PyTorch) refuses, a missing or misshaped ``at`` for max pooling
        (or one given for average pooling), a keyword set next to a layer, or a result too large.

    Examples
    --------
    >>> from convarith import Layer
    >>> pool_matrix("avg_pool1d", (1, 5), kernel_size=2, ceil_mode=True, format="dense")
    array([[0.5, 0.5, 0. , 0. , 0. ],
           [0. , 0. , 0.5, 0.5, 0. ],
           [0. , 0. , 0. , 0. , 1. ]])
    >>> pool_matrix(Layer("max_pool1d", kernel_size=2), (4,), at=[[3.0, 3.0, 1.0, 7.0]], format="dense")
    array([[1., 0., 0., 0.],
           [0., 0., 0., 1.]])
    """
    fmt = _check_format(format)
    budget = _check_budget(memory_budget)
    keywords = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }
    if isinstance(layer, str):
        kind, ndim = parse_op(layer)
        if kind not in ("max_pool", "avg_pool"):
            raise ConvArithError("op", "pool_matrix builds pooling layers; use conv_matrix for convolutions", layer)
        sample = one_sample(layer, ndim, input_shape, channels=True)
        if kernel_size is None:
            raise ConvArithError("kernel_size", "is required with an op name", None)
        built = Layer(layer, **keywords)  # type: ignore[arg-type]
        raise_refusals(built, sample, framework="torch")
        bound = built.bind(sample)
    else:
        reject_keywords(keywords, _POOL_DEFAULTS)
        if isinstance(layer, Layer) and input_shape is not None:
            input_shape = one_sample(layer.op, layer.ndim, input_shape, channels=False)
        bound = bind_pool(layer, input_shape)
    value_dtype = _value_dtype(dtype, np.dtype(np.float64))
    channels = bound.in_channels
    rows, cols = channels * math.prod(bound.output_spatial), channels * math.prod(bound.input_spatial)
    if bound.kind == "max_pool":
        if at is None:
            raise ConvArithError("at", "max_pool's matrix is its Jacobian at an input: pass at=", None)
        try:
            x = np.asarray(at)
        except (ValueError, TypeError):
            raise ConvArithError(
                "at", "must be a rectangular array of numbers", "a ragged or non-numeric value"
            ) from None
        sample_in = bound.sample_input_shape
        if x.shape not in (sample_in, (1, *sample_in)):
            raise ConvArithError("at", f"must have the input shape {sample_in}", x.shape)
        if x.dtype.kind not in "iuf":
            raise ConvArithError("at", "must be an array of real numbers", str(x.dtype))
        _axis_bytes(bound, budget)
        work = rows * (3 * 8 + 1 + x.dtype.itemsize)  # best values, indices, a gather, a mask
        index = _guard(rows, cols, rows, value_dtype, fmt, budget, work)
        return cast(
            SparseMatrix | DenseMatrix, _finish(_max_pool_csr(bound, x.reshape(channels, -1), value_dtype, index), fmt)
        )

    if at is not None:
        raise ConvArithError("at", "applies to max_pool only (an average pool is linear)", "an array")
    _axis_bytes(bound, budget)
    override = bound.layer.divisor_override
    axes, factors = [], []
    for ax in bound.axes:
        axis, fac = _avg_pool_axis(ax, bound.layer.count_include_pad, override is not None)
        axes.append(axis)
        factors.append(fac)
    nnz = channels * math.prod(int(ax.counts().sum()) for ax in axes)
    index = _guard(rows, cols, nnz, value_dtype, fmt, budget, _work_bytes(nnz, value_dtype))
    divisor = np.ones((), dtype=np.int64) * (1 if override is None else override)
    for fac in factors:
        divisor = np.multiply.outer(divisor, fac)
    with np.errstate(divide="ignore"):  # a divisor 0 belongs to a window with no entry
        values = (1.0 / divisor).astype(value_dtype)
    table = np.broadcast_to(values, (channels, 1, *values.shape))
    return cast(SparseMatrix | DenseMatrix, _finish(_write_csr(table, channels, axes, nnz, index), fmt))


def _max_pool_csr(bound: BoundLayer, x: npt.NDArray[Any], dtype: np.dtype[Any], index: np.dtype[Any]) -> sp.csr_array:
    """One 1 per row, where PyTorch's max pool picks (scanning the taps in row-major order)."""
    spatial, out_spatial = bound.input_spatial, bound.output_spatial
    ndim = len(spatial)
    channels = x.shape[0]
    strides = [math.prod(spatial[n + 1 :]) for n in range(ndim)]
    sources = [_pool_src(ax) for ax in bound.axes]
    best = np.zeros((channels, *out_spatial), dtype=x.dtype)
    where = np.full((channels, *out_spatial), -1, dtype=np.int64)
    for taps in itertools.product(*(range(k) for k in bound.layer.kernel_size)):
        flat = np.zeros(tuple(out_spatial), dtype=np.int64)
        valid = np.ones(tuple(out_spatial), dtype=bool)
        for n, t in enumerate(taps):
            src = sources[n][:, t].reshape([-1 if m == n else 1 for m in range(ndim)])
            flat = flat + src * strides[n]
            valid = valid & (src >= 0)
        if not valid.any():
            continue
        values = x[:, np.where(valid, flat, 0)]
        # PyTorch keeps the first maximum (strict >) but moves to every NaN it meets; a window
        # starts at its first tap inside the input.
        take = valid & ((values > best) | np.isnan(values) | (where < 0))
        best = np.where(take, values, best)
        where = np.where(take, flat, where)
    columns = where.reshape(channels, -1) + (np.arange(channels, dtype=np.int64) * math.prod(spatial))[:, None]
    picked = where.reshape(-1) >= 0  # with dilation a window can hold only padding: an empty row
    indptr = np.zeros(columns.size + 1, dtype=index)
    np.cumsum(picked, out=indptr[1:])
    matrix = sp.csr_array(
        (np.ones(int(indptr[-1]), dtype=dtype), columns.reshape(-1)[picked].astype(index), indptr),
        shape=(columns.size, channels * math.prod(spatial)),
        copy=False,
    )
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def bias_vector(bias: npt.ArrayLike, output_shape: Sequence[int]) -> npt.NDArray[np.number[Any]]:
    """The vector added after ``C @ x``: each channel's bias repeated over its output cells.

    Parameters
    ----------
    bias
        One value per output channel.
    output_shape
        ``(C_out, *out)`` or ``(1, C_out, *out)``.

    Returns
    -------
    numpy.ndarray
        Length ``C_out·∏out``, so that ``op(x, weight, bias).ravel() == C @ x.ravel() + b``.

    Raises
    ------
    ConvArithError
        When the bias is not one value per output channel.

    Examples
    --------
    >>> bias_vector([1.0, -1.0], (2, 3)).tolist()
    [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    """
    try:
        b = np.asarray(bias)
    except (ValueError, TypeError):
        raise ConvArithError(
            "bias", "must be a rectangular array of numbers", "a ragged or non-numeric value"
        ) from None
    if b.dtype.kind not in "iufc":
        raise ConvArithError("bias", "must be an array of numbers", str(b.dtype))
    given: object = output_shape
    if not isinstance(given, Sequence) or isinstance(given, str):
        raise ConvArithError("output_shape", "must be a sequence of integers", repr(given))
    try:
        shape = tuple(operator.index(v) for v in output_shape)
    except TypeError:
        raise ConvArithError("output_shape", "must be a sequence of integers", repr(output_shape)) from None
    if b.ndim == 1 and len(shape) >= 2 and shape[0] == 1 and b.shape[0] != 1:
        shape = shape[1:]  # a leading batch of 1
    if b.ndim != 1 or len(shape) < 1 or b.shape[0] != shape[0]:
        raise ConvArithError("bias", f"needs one value per output channel of {shape}", b.shape)
    return np.repeat(b, math.prod(shape[1:]))


def save_matrix(matrix: SparseMatrix | npt.ArrayLike, path: str | Path) -> Path:
    """Write a matrix to ``.npz`` (``scipy.sparse.save_npz``) or ``.mtx`` (Matrix Market).

    Parameters
    ----------
    matrix
        A SciPy sparse array or matrix, or a dense array.
    path
        The file; its suffix picks the format.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ConvArithError
        For any other suffix.

    Examples
    --------
    >>> import tempfile, scipy.sparse
    >>> C = conv_matrix(Layer("conv1d", kernel_size=2), np.ones((1, 1, 2)), (3,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     back = scipy.sparse.load_npz(save_matrix(C, Path(tmp) / "C.npz"))
    >>> (back != C).nnz
    0
    """
    if not isinstance(path, str | os.PathLike):
        raise ConvArithError("path", "must be a file path (str or pathlib.Path)", repr(path))
    if not sp.issparse(matrix):
        try:
            array = np.asarray(matrix)
        except (TypeError, ValueError):
            array = None
        if array is None or array.ndim != 2 or array.dtype.kind not in "biufc":
            raise ConvArithError(
                "matrix", "must be a SciPy sparse matrix or a numeric 2-d array", type(matrix).__name__
            )
        matrix = array
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".npz":
        sparse = matrix if sp.issparse(matrix) else sp.csr_array(np.asarray(matrix))
        try:
            sp.save_npz(target, sparse)
        except OSError as err:
            raise ConvArithError("path", f"cannot be written ({err.strerror})", str(path)) from None
    elif suffix == ".mtx":
        import scipy.io

        try:
            with target.open("wb") as handle:  # a handle: mmwrite would append ".mtx" to ".MTX"
                scipy.io.mmwrite(handle, matrix)
        except OSError as err:
            raise ConvArithError("path", f"cannot be written ({err.strerror})", str(path)) from None
    else:
        raise ConvArithError("path", "must end in .npz (scipy.sparse) or .mtx (Matrix Market)", str(path))
    return target
