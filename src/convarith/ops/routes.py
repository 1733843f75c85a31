"""The fast routes of the reference ops and operators, and ``method="auto"``, the cost model that picks one.

Each route computes exactly what :mod:`convarith.ops.kernels`' GEMM routes compute (tested against
PyTorch to 1e-12 in float64, the operators with the dot test); they differ in how the work is laid
out, and so in which shapes they are fast for.

Routes
------
:func:`conv_fft`, :func:`conv_transpose_fft`
    The FFT: a stride-1 correlation is a convolution with the flipped kernel, a transposed
    convolution a true convolution: products of spectra, summed over a group's channels per
    frequency. The input is transformed once at a fast length of at least the padded size (a
    valid correlation needs no more: its windows never wrap around) or, transposed, the full
    extent. A stride keeps every s-th cell of the stride-1 result (a transposed stride
    zero-stretches the input first); a dilation zero-stretches the kernel. The kernel's spectrum
    is kept per FFT shape in a :class:`Spectra` (an operator transforms its kernel once). Rounding
    is that of the FFT, about ``ε·log₂(size)`` of ``‖x‖·‖w‖``; cells no tap reaches are set to
    exact zeros, as every other route leaves them.
:func:`conv_transpose_phase`
    Phase decomposition of a strided transposed convolution: output cells ``q·s + r`` (one phase
    ``r`` per residue on each axis, ``∏s`` of them) receive only the taps ``t`` with
    ``t·d ≡ r (mod s)``, so each phase is a stride-1 transposed convolution with that sub-kernel:
    one BLAS product for every tap, contiguous adds per phase, each phase written into its
    interleaved output cells once — no strided scatter-adds.
:func:`conv_winograd`
    Winograd's F(2, 3) for kernel 3, stride 1 and dilation 1 on every axis (a transposed layer
    through its direct equivalent): each tile of ``2^d`` output cells from ``4^d`` transformed
    input cells, the convolution becoming one BLAS product per transformed tap contracting the
    channels — ``(4/6)^d`` of im2col's multiply-adds and no im2col copy. The transforms add,
    subtract and halve, as long contiguous passes over flat arrays.
:func:`conv_depthwise`
    A tap loop for groups with one input channel (depthwise and one-channel layers) over the
    padded input seen flat, so that each tap reads one contiguous run, no im2col. Compiled by Numba
    when installed (the ``fast`` extra, :mod:`convarith.ops.compiled`: each channel's plane summed
    in L1, three taps per pass) once one call or this process's NumPy loops make the compile pay;
    else one long NumPy multiply-add per tap over all channels end to end.

The cost model
--------------
:func:`choose` estimates each route's time from counts (nanoseconds, measured on the benchmark
machine; :data:`COSTS`) and picks the cheapest: im2col copies plus GEMM multiply-adds for
``gemm`` (and a fixed cost per BLAS call: one per sample and group); transforms (``L·log₂L`` per
channel and sample) plus spectrum products for ``fft``; for ``taps`` (depthwise only) three
passes per tap, or the compiled kernel's costs when it runs
(:func:`convarith.ops.compiled.taps_cost`); ``phase`` instead of ``gemm`` for a transposed layer
with a stride when every phase has a tap; for ``winograd`` its products, about five passes per
transformed input cell and four per product cell, the copies in and out and a BLAS call per
transformed tap (it wins where channels and cells are many: 64→64 at 56², not 3→16 at 32²). The
FFT is never picked for tiny layers (a fixed cost per call) or with a stride (it would compute
every cell and keep every s-th).

Examples
--------
>>> import numpy as np
>>> from convarith import Layer
>>> choose(Layer("conv2d", 2, 2, kernel_size=9, padding=4).bind((1, 2, 512, 512)))
'fft'
>>> choose(Layer("conv2d", 64, 64, kernel_size=3, padding=1).bind((8, 64, 56, 56)))
'winograd'
>>> choose(Layer("conv2d", 3, 16, kernel_size=3, padding=1).bind((1, 3, 32, 32)))
'gemm'
>>> choose(Layer("conv_transpose2d", 64, 32, kernel_size=4, stride=2, padding=1).bind((4, 64, 32, 32)))
'phase'
>>> x = np.arange(6.0).reshape(1, 1, 6)
>>> np.allclose(conv_fft(x, np.ones((1, 1, 3)), Layer("conv1d", kernel_size=3).bind((1, 1, 6))), [[[3, 6, 9, 12]]])
True
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import scipy.fft as sfft

from ..geometry.bound import BoundLayer
from . import kernels
from .kernels import Array

__all__ = [
    "COSTS",
    "PARALLEL_POINTS",
    "Batch",
    "Phase",
    "Spectra",
    "choose",
    "conv_depthwise",
    "conv_fft",
    "conv_transpose_fft",
    "conv_transpose_phase",
    "conv_winograd",
    "costs",
    "fft_workers",
    "per_bound",
    "recent_spectra",
    "runner",
    "winograd_fits",
    "winograd_weights",
]

Batch = Callable[[Array], Array]
T = TypeVar("T")

COSTS: dict[str, float] = {
    "copy": 0.4,  # ns per element copied (im2col, col2im adds)
    "mac": 0.02,  # ns per GEMM multiply-add (OpenBLAS at the AVX2 setting)
    "product": 1000.0,  # ns per BLAS call (one per sample and group: tiny products are all overhead)
    "pass": 0.15,  # ns per element of one contiguous NumPy pass
    "fft": 0.3,  # ns per point and log₂(points) of a real FFT
    "spectral": 2.0,  # ns per complex multiply-add of spectra
    "call": 100_000.0,  # ns of fixed cost per FFT call (plans, allocation, padding)
}
"""The cost model's constants, in nanoseconds (measured on the benchmark machine, float32 and
float64 alike: close enough to rank routes whose costs differ by more than ~1.5×)."""


def fft_workers(points: int | None = None) -> int:
    """Threads for SciPy's FFT: ``OMP_NUM_THREADS`` when set (the BLAS pools' pin), else the cores;
    one for transforms of fewer than :data:`PARALLEL_POINTS` points (``points``: of the whole array),
    where starting threads costs more than it saves (140² took 268 µs with two, 206 µs with one)."""
    if points is not None and points < PARALLEL_POINTS:
        return 1
    value = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(value)) if value.isdigit() else max(1, os.cpu_count() or 1)


PARALLEL_POINTS = 50_000
"""The size from which :func:`fft_workers` spreads a transform over threads (280² gained 1.6×)."""


# -- the FFT -----------------------------------------------------------------------------------------


class Spectra:
    """The kernel's spectrum, one per FFT shape, computed on first use.

    ``weight`` is grouped ``(G, O, C, *k)`` (C the contraction); the spectrum is that of the kernel
    stretched by the dilation (``d − 1`` zeros between taps) and, for a correlation, flipped: a
    correlation is a convolution with the flipped kernel, read ``d(k − 1)`` cells later.
    """

    def __init__(self, weight: Array, dilation: tuple[int, ...], flip: bool) -> None:
        self.weight = weight
        self.dilation = dilation
        self.flip = flip
        self.cache: dict[tuple[int, ...], Array] = {}
        self.local = threading.local()

    def buffer(self, bound: BoundLayer, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
        """A zeroed input array of ``shape`` for ``bound``, kept for this thread (the last four, each
        up to :data:`RECENT_BYTES`).

        A layer's calls write the same cells every time, so the others stay zero: the FFT reads
        the input at its transform length without a copy to pad it, and without page faults.
        """
        buffers: OrderedDict[tuple[int, tuple[int, ...], str], tuple[BoundLayer, Array]]
        buffers = self.local.__dict__.setdefault("buffers", OrderedDict())
        key = (id(bound), shape, dtype.str)  # the bound layer is kept with its buffer: its id stays its own
        if key in buffers:
            buffers.move_to_end(key)
            return buffers[key][1]
        array = np.zeros(shape, dtype)
        if array.nbytes <= RECENT_BYTES:
            buffers[key] = (bound, array)
            while len(buffers) > 4:
                buffers.popitem(last=False)
        return array

    def get(self, shape: tuple[int, ...]) -> Array:
        if shape not in self.cache:
            nd = len(shape)
            w = self.weight
            if any(d > 1 for d in self.dilation):
                kernel = w.shape[-nd:]
                sizes = tuple((k - 1) * d + 1 for k, d in zip(kernel, self.dilation, strict=True))
                stretched = np.zeros((*w.shape[:-nd], *sizes), w.dtype)
                every = tuple(slice(None, None, d) for d in self.dilation)
                stretched[(slice(None),) * (w.ndim - nd) + every] = w
                w = stretched
            axes = tuple(range(-nd, 0))
            if self.flip:
                w = np.ascontiguousarray(np.flip(w, axes))
            points = math.prod(w.shape[:-nd]) * math.prod(shape)
            spectrum: Array = sfft.rfftn(w, shape, axes=axes, workers=fft_workers(points))
            if spectrum.nbytes > RECENT_BYTES:
                return spectrum
            self.cache[shape] = spectrum
        return self.cache[shape]


RECENT_BYTES = 16 * 2**20
"""The largest spectrum a :class:`Spectra` keeps (an operator's, or one of :func:`recent_spectra`)."""
_RECENT: OrderedDict[tuple[object, ...], object] = OrderedDict()
_LOCK = threading.Lock()  # the shared caches (a thread's own buffers need none)


def _recent(tag: str, weight: Array, extra: tuple[object, ...], build: Callable[[Array], T], keep: int = 4) -> T:
    """``build(weight)``, shared with the last ``keep`` calls of this ``tag`` and kernel, found by its bytes.

    A reference op called again with the same kernel (a layer applied to batch after batch, a
    benchmark) prepares it once; a changed kernel has other bytes, so it is never mistaken for
    the old one (``build`` gets a copy: the kernel as it was).
    """
    data = np.ascontiguousarray(weight)
    digest = hashlib.blake2b(data.tobytes(), digest_size=16).digest()
    key = (tag, weight.shape, weight.dtype.str, extra, digest)
    with _LOCK:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return cast(T, _RECENT[key])
    value = build(data.copy())
    with _LOCK:
        _RECENT[key] = value
        while len(_RECENT) > keep:
            _RECENT.popitem(last=False)
    return value


def recent_spectra(weight: Array, dilation: tuple[int, ...], flip: bool) -> Spectra:
    """The :class:`Spectra` of this kernel, shared with the last few kernels seen (by their bytes)."""
    return _recent("spectra", weight, (dilation, flip), lambda w: Spectra(w, dilation, flip))


def _mix(x: Array, w: Array) -> Array:
    """Σ_c x[n, g, c] · w[g, o, c] per frequency: ``x`` (N, G, C, *F), ``w`` (G, O, C, *F) → (N, G, O, *F)."""
    if x.shape[2] == 1:
        return x * w[:, :, 0]
    mixed: Array = np.einsum("ngc...,goc...->ngo...", x, w, optimize=True)
    return mixed


def _fft_len(size: int) -> int:
    return int(sfft.next_fast_len(size, real=True))


def conv_fft(input: Array, weight: Array, bound: BoundLayer, spectra: Spectra | None = None) -> Array:
    """A direct convolution by the FFT: ``irfft(rfft(padded input) · rfft(flipped dilated kernel))``
    from cell ``d(k − 1)`` on, every s-th cell (a view). ``spectra`` caches the kernel's spectrum."""
    layer = bound.layer
    n, c = input.shape[:2]
    nd, g = layer.ndim, layer.groups
    stride, dilation = kernels.steps(bound)
    c_out = weight.shape[0]
    out_spatial = bound.output_spatial
    padded = tuple(ax.padded for ax in bound.axes)
    shape = tuple(_fft_len(p) for p in padded)
    item = input.dtype.itemsize
    kernels.check_memory(
        (n * c * math.prod(padded) + (n + 2) * (c + c_out) * math.prod(shape)) * item, layer.op, input.shape
    )
    if n == 0 or 0 in out_spatial:
        return np.zeros((n, c_out, *out_spatial), input.dtype)
    if spectra is None:
        spectra = Spectra(weight.reshape(g, c_out // g, c // g, *weight.shape[2:]), dilation, flip=True)
    # The padded input at the transform's length: cells past the padded size are never read by a
    # window (no wrap-around), so whatever a crop leaves there does not matter.
    laid = spectra.buffer(bound, (n, c, *shape), input.dtype)
    if layer.padding_mode == "zeros":
        kernels.shift_copy(laid, input, [-b for b, _ in bound.pads])
    else:
        laid[(slice(None), slice(None), *(slice(0, p) for p in padded))] = kernels.pad(
            input, bound.pads, layer.padding_mode
        )
    axes = tuple(range(-nd, 0))
    workers = fft_workers(laid.size)
    xs = sfft.rfftn(laid, axes=axes, workers=workers)
    mixed = _mix(xs.reshape(n, g, c // g, *xs.shape[2:]), spectra.get(shape))
    full = sfft.irfftn(mixed, shape, axes=axes, workers=workers).reshape(n, c_out, *shape)
    reads = tuple(
        slice(r, r + (o - 1) * s + 1, s)
        for r, o, s in zip((ax.reach for ax in bound.axes), out_spatial, stride, strict=True)
    )
    out: Array = full[(slice(None), slice(None), *reads)]
    _zero_unreached(out, _unreached(bound))
    return out


_PER_BOUND: dict[str, OrderedDict[tuple[object, ...], tuple[BoundLayer, object]]] = {}


def per_bound(tag: str, bound: BoundLayer, compute: Callable[[], T], *extra: object) -> T:
    """``compute()`` for ``bound`` (and ``extra``), kept for the last 64 of each ``tag``, found by the
    layer's identity (hashing one costs more than the work it saves); the layer is kept with its
    value, so that its id stays its own."""
    kept_here = _PER_BOUND.setdefault(tag, OrderedDict())
    key = (id(bound), *extra)
    with _LOCK:
        kept = kept_here.get(key)
    if kept is not None:
        return cast(T, kept[1])
    value = compute()
    with _LOCK:
        kept_here[key] = (bound, value)
        while len(kept_here) > 64:
            kept_here.popitem(last=False)
    return value


def _unreached(bound: BoundLayer) -> tuple[Array, ...] | None:
    """:func:`_find_unreached`, kept per bound layer (:func:`per_bound`)."""
    return per_bound("unreached", bound, lambda: _find_unreached(bound))


def _find_unreached(bound: BoundLayer) -> tuple[Array, ...] | None:
    """Per axis, the cells no tap reaches the input from (a direct layer's output, a transposed
    layer's full extent), or ``None`` when every cell is reached. Computed once per bound layer.

    Direct: a window whose taps all fall in the zero padding (:func:`kernels.axis_divisor`
    counts the taps inside the input). Transposed: a cell no stamp covers (:func:`_stamped`).
    """
    if bound.transposed:
        stride, dilation = kernels.steps(bound)
        masks = tuple(
            ~_stamped(ax.input, ax.kernel, s, d, ax.full) for ax, s, d in zip(bound.axes, stride, dilation, strict=True)
        )
    elif bound.layer.padding_mode == "zeros":
        masks = tuple(kernels.axis_divisor(ax, False) == 0 for ax in bound.axes)
    else:
        return None
    return masks if any(mask.any() for mask in masks) else None


def _zero_unreached(out: Array, unreached: tuple[Array, ...] | None) -> None:
    """Exact zeros in the cells :func:`_unreached` names.

    The FFT leaves rounding noise in every cell; a cell whose taps all fall in the zero padding
    (or, transposed, that no stamp covers) is zero in every other route, and so here too.
    """
    for axis, mask in enumerate(unreached or ()):
        index: tuple[slice | Array, ...] = (slice(None),) * (2 + axis) + (mask,)
        out[index] = 0


def _stamped(size: int, kernel: int, stride: int, dilation: int, full: int) -> Array:
    """Per cell of a transposed axis' full extent: whether some input cell's stamp covers it.

    Cell ``q·s + r`` of phase r (:func:`_phases`) is covered when some sub-kernel tap j puts an
    input cell there: ``0 ≤ q − m0 − j·d′ ≤ size − 1`` for a j in ``[0, taps)``.
    """
    covered = np.zeros(full, dtype=bool)
    for phase in _phases(kernel, stride, dilation):
        if phase.taps == 0:
            continue
        e = np.arange(len(range(phase.residue, full, stride))) - phase.shift  # q − m0
        first = np.maximum(-((size - 1 - e) // phase.dilation), 0)  # ⌈(q − m0 − size + 1)/d′⌉
        last = np.minimum(e // phase.dilation, phase.taps - 1)
        covered[phase.residue :: stride] = first <= last
    return covered


def conv_transpose_fft(input: Array, weight: Array, bound: BoundLayer, spectra: Spectra | None = None) -> Array:
    """A transposed convolution by the FFT: the full extent is ``irfft(rfft(stretched input) · rfft(dilated
    kernel))`` (a true convolution), then cropped by the pads. ``spectra``: grouped ``(G, C_in/G, C_out/G, *k)``."""
    layer = bound.layer
    n, c_in = input.shape[:2]
    nd, g = layer.ndim, layer.groups
    stride, dilation = kernels.steps(bound)
    c_out_g = weight.shape[1]
    c_out = g * c_out_g
    full = tuple(ax.full for ax in bound.axes)
    shape = tuple(_fft_len(f) for f in full)
    item = input.dtype.itemsize
    kernels.check_memory(
        ((n + 2) * (c_in + c_out) * math.prod(shape) + n * c_out * math.prod(bound.output_spatial)) * item,
        layer.op,
        input.shape,
    )
    if n == 0 or 0 in bound.output_spatial:
        return np.zeros((n, c_out, *bound.output_spatial), input.dtype)
    if spectra is None:
        spectra = Spectra(weight.reshape(g, c_in // g, c_out_g, *weight.shape[2:]).swapaxes(1, 2), dilation, flip=False)
    laid = spectra.buffer(bound, (n, c_in, *shape), input.dtype)  # the input zero-stretched by the stride
    laid[(slice(None), slice(None), *(slice(0, ax.stretched, s) for ax, s in zip(bound.axes, stride, strict=True)))] = (
        input
    )
    axes = tuple(range(-nd, 0))
    workers = fft_workers(laid.size)
    ys = sfft.rfftn(laid, axes=axes, workers=workers)
    mixed = _mix(ys.reshape(n, g, c_in // g, *ys.shape[2:]), spectra.get(shape))
    stamps = sfft.irfftn(mixed, shape, axes=axes, workers=workers).reshape(n, c_out, *shape)
    stamps = stamps[(slice(None), slice(None), *(slice(0, f) for f in full))]
    _zero_unreached(stamps, _unreached(bound))
    if all(b >= 0 and a >= 0 for b, a in bound.pads):  # a crop: a view
        window = tuple(slice(b, b + o) for (b, _), o in zip(bound.pads, bound.output_spatial, strict=True))
        cropped: Array = stamps[(slice(None), slice(None), *window)]
        return cropped
    out = np.zeros((n, c_out, *bound.output_spatial), input.dtype)
    kernels.crop(stamps, bound, out)
    return out


# -- phase decomposition -----------------------------------------------------------------------------


class Phase(NamedTuple):
    """The output cells ``q·s + r`` of one residue r of a transposed axis and the taps that reach them."""

    residue: int
    first: int
    """t0, the first tap with ``t·d ≡ r (mod s)``."""
    taps: int
    """How many: ``t0, t0 + s′, …`` below the kernel size (``s′ = s/gcd(d, s)``); 0 for none."""
    step: int
    """s′."""
    dilation: int
    """d′ = d/gcd(d, s): tap ``t0 + j·s′`` of input cell i lands on phase cell ``i + m0 + j·d′``."""
    shift: int
    """m0 = (t0·d − r)/s."""


def _phases(kernel: int, stride: int, dilation: int) -> list[Phase]:
    """The ``s`` phases of one axis: each a stride-1 transposed convolution with a sub-kernel.

    Tap t of input cell i lands on full cell ``i·s + t·d``; that is ``q·s + r`` when
    ``t·d ≡ r (mod s)``, which holds for ``t0, t0 + s′, …``, and then ``q = i + m0 + j·d′``.
    """
    common = math.gcd(dilation, stride)
    step, sub_dilation = stride // common, dilation // common
    phases = []
    for r in range(stride):
        first = next((t for t in range(min(step, kernel)) if (t * dilation - r) % stride == 0), None)
        if first is None:
            phases.append(Phase(r, 0, 0, step, sub_dilation, 0))
        else:
            taps = len(range(first, kernel, step))
            phases.append(Phase(r, first, taps, step, sub_dilation, (first * dilation - r) // stride))
    return phases


def _phase_cells(phase: Phase, size: int, stride: int, before: int, out: int) -> tuple[slice, slice] | None:
    """Where a phase's cells go: (output cells, cells of its stride-1 extent), or None if none lands in the output.

    Phase cell q is extent cell ``q − m0`` (``0 ≤ · < size + (taps − 1)·d′``) and output cell
    ``q·s + r − p_b`` (``0 ≤ · < out``).
    """
    extent = size + (phase.taps - 1) * phase.dilation
    lo = max(phase.shift, -((phase.residue - before) // stride))  # ⌈(p_b − r)/s⌉
    hi = min(phase.shift + extent, -((phase.residue - before - out) // stride))  # ⌈(out + p_b − r)/s⌉
    if lo >= hi:
        return None
    start = lo * stride + phase.residue - before
    return slice(start, start + (hi - lo - 1) * stride + 1, stride), slice(lo - phase.shift, hi - phase.shift)


def conv_transpose_phase(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """A strided transposed convolution as ``∏s`` stride-1 ones (:func:`_phases`), written into the output once.

    One BLAS product gives every tap's columns (``W·y``, the input laid on a grid wide enough for
    every phase's extent, flat, as in the GEMM route's stride-1 path); each phase adds its taps'
    columns into its own contiguous extent at the flat offsets ``Σ j·d′·stride_of_axis``, then
    its cells are copied into the interleaved output cells ``q·s + r − p_b``.
    """
    layer = bound.layer
    n, c_in = input.shape[:2]
    g = layer.groups
    stride, dilation = kernels.steps(bound)
    c_g, c_out_g = c_in // g, weight.shape[1]
    c_out = g * c_out_g
    kernel = layer.kernel_size
    taps = math.prod(kernel)
    size, out_spatial = bound.input_spatial, bound.output_spatial
    per_axis = [_phases(k, s, d) for k, s, d in zip(kernel, stride, dilation, strict=True)]
    grid = tuple(
        i + (max(p.taps for p in phases) - 1) * phases[0].dilation for i, phases in zip(size, per_axis, strict=True)
    )
    cells = math.prod(grid)
    item = input.dtype.itemsize
    kernels.check_memory(
        n * c_out * math.prod(out_spatial) * item + kernels.CHUNK_BYTES, f"{layer.op} on {input.shape}", input.shape
    )
    befores = [b for b, _ in bound.pads]
    places = [  # per axis, per phase: where its cells go (None: no tap, or no cell in the output)
        [None if p.taps == 0 else _phase_cells(p, i, s, before, o) for p in phases]
        for phases, i, s, before, o in zip(per_axis, size, stride, befores, out_spatial, strict=True)
    ]
    covered = all(  # every output cell is some phase's: nothing to zero first
        sum(len(range(o)[place[0]]) for place in axis if place is not None) == o
        for axis, o in zip(places, out_spatial, strict=True)
    ) and all(place is not None for axis in places for place in axis)
    out = (np.empty if covered else np.zeros)((n, c_out, *out_spatial), input.dtype)
    if n == 0 or 0 in out_spatial:
        return out
    flat_strides = tuple(math.prod(grid[a + 1 :]) for a in range(len(grid)))
    span = sum((i - 1) * st for i, st in zip(size, flat_strides, strict=True)) + 1
    wmat = weight.reshape(g, c_g, c_out_g, taps).transpose(0, 3, 2, 1).reshape(g, taps * c_out_g, c_g)
    wmat = np.ascontiguousarray(wmat)
    samples, _ = kernels.plan(n, 1, (c_in + (taps + 1) * c_out) * cells * item)
    scratch = kernels.thread_scratch(input.dtype)
    for n0 in range(0, n, samples):
        yb = input[n0 : n0 + samples]
        b = yb.shape[0]
        laid = scratch.zeros(f"phase grid {size}", (b, c_in, *grid))  # every call writes the same corner
        laid[(slice(None), slice(None), *(slice(0, i) for i in size))] = yb
        res = scratch.empty("phase columns", (b, g, taps * c_out_g, span))
        np.matmul(wmat, laid.reshape(b, g, c_g, cells)[..., :span], out=res)
        columns = res.reshape(b, g, taps, c_out_g, span)
        acc = scratch.empty("phase extent", (b, g, c_out_g, cells))
        for index in itertools.product(*(range(len(phases)) for phases in per_axis)):
            parts = [phases[i] for phases, i in zip(per_axis, index, strict=True)]
            spots = [axis[i] for axis, i in zip(places, index, strict=True)]
            if any(spot is None for spot in spots):
                continue  # no tap reaches these cells, or none of them is in the output
            acc.fill(0)
            for js in itertools.product(*(range(p.taps) for p in parts)):
                tap = np.ravel_multi_index([p.first + j * p.step for p, j in zip(parts, js, strict=True)], kernel)
                offset = sum(j * p.dilation * st for j, p, st in zip(js, parts, flat_strides, strict=True))
                acc[..., offset : offset + span] += columns[:, :, int(tap)]
            target = tuple(spot[0] for spot in spots if spot is not None)
            source = tuple(spot[1] for spot in spots if spot is not None)
            out[(slice(n0, n0 + b), slice(None), *target)] = acc.reshape(b, c_out, *grid)[
                (slice(None), slice(None), *source)
            ]
    return out


# -- Winograd F(2, 3) ----------------------------------------------------------------------------------


WINOGRAD_KERNEL = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
"""G of F(2, 3): a 3-tap kernel ``g`` → its 4 transformed taps ``G·g``."""


def winograd_fits(bound: BoundLayer) -> bool:
    """Whether F(2, 3) computes ``bound``: kernel 3, stride 1 and dilation 1 on every axis (as indexed:
    :func:`kernels.steps`); a transposed layer through its direct equivalent, which then has the same."""
    stride, dilation = kernels.steps(bound)
    return all(k == 3 for k in bound.layer.kernel_size) and all(
        s == d == 1 for s, d in zip(stride, dilation, strict=True)
    )


def winograd_weights(weight: Array, groups: int, transposed: bool) -> Array:
    """The transformed kernel ``U = G·g·Gᵀ`` (every axis), laid out ``(4^d, G, O/G, C/G)`` for the batched products.

    Computed in float64, returned in the weight's dtype. A transposed layer's kernel is first made
    its direct equivalent's: rotated 180°, input and output channels swapped within each group.
    """
    w = weight.astype(np.float64)
    nd = w.ndim - 2
    if transposed:
        c_in, c_out_g, *kernel = w.shape
        w = np.flip(w, tuple(range(2, w.ndim))).reshape(groups, c_in // groups, c_out_g, *kernel)
        w = w.swapaxes(1, 2).reshape(groups * c_out_g, c_in // groups, *kernel)
    c_out, c_g = w.shape[:2]
    taps = np.ascontiguousarray(np.moveaxis(w.reshape(c_out * c_g, *w.shape[2:]), 0, -1))  # (3, …, 3, O·C)
    for _ in range(nd):  # the last untransformed axis (always at nd − 1) → its 4 transformed taps, first
        g0, g1, g2 = (taps[(slice(None),) * (nd - 1) + (t,)] for t in range(3))
        ends = g0 + g2
        taps = np.stack([g0, 0.5 * (ends + g1), 0.5 * (ends - g1), g2])  # G·g; ends (4, …, 4, O·C), axis 1 first
    laid = taps.reshape(4**nd, groups, c_out // groups, c_g)
    return np.ascontiguousarray(laid, dtype=weight.dtype)


def _input_transform(x: Array, y: Array, shift: int) -> None:
    """``Bᵀ·d`` along one axis of flat arrays: ``x`` (2, W) holds the even and odd cells of every
    tile's 4 (d0 d2 | d1 d3, the next tile ``shift`` cells on); ``y`` (4, W) gets
    ``d0 − d2, d1 + d2, d2 − d1, d1 − d3``. The last ``shift`` cells (a tile past the end) are set to zero."""
    m = x.shape[1] - shift
    even, odd, even_next, odd_next = x[0, :m], x[1, :m], x[0, shift:], x[1, shift:]
    np.subtract(even, even_next, out=y[0, :m])
    np.add(odd, even_next, out=y[1, :m])
    np.subtract(even_next, odd, out=y[2, :m])
    np.subtract(odd, odd_next, out=y[3, :m])
    y[:, m:] = 0


def _output_transform(m: Array, y: Array) -> None:
    """``Aᵀ·m`` along one axis of flat arrays: ``m`` (4, W) → ``y`` (2, W), the tile's two outputs
    ``m0 + m1 + m2`` and ``m1 − m2 − m3``."""
    np.add(m[0], m[1], out=y[0])
    y[0] += m[2]
    np.subtract(m[1], m[2], out=y[1])
    y[1] -= m[3]


def _winograd_block(laid: Array, u: Array, scratch: kernels.Scratch) -> Array:
    """The outputs of the tiles of ``laid`` (b, C, 2·L1, …, 2·Ld): ``(2,)*d + (C_out, b, L1, …, Ld)``, phase first.

    Every array is flat with the tiles' axes last, so each step is a few long contiguous
    passes: the input's even and odd cells are split on every axis, then each axis is
    transformed in turn (its neighbouring tile is a fixed flat offset further), one batched
    product per transformed tap and group, and the outputs transformed back axis by axis. The
    last tile of each axis (``L − 1``) is past the output: its cells are computed and dropped.
    """
    b, c = laid.shape[:2]
    nd = laid.ndim - 2
    blocks = tuple(size // 2 for size in laid.shape[2:])
    cells = b * math.prod(blocks)
    taps, groups, c_out_g, c_g = u.shape
    phases = scratch.empty("winograd phases", (2,) * nd + (c, b, *blocks))
    split = laid.reshape(b, c, *itertools.chain.from_iterable((size, 2) for size in blocks))
    order = (*(3 + 2 * a for a in range(nd)), 1, 0, *(2 + 2 * a for a in range(nd)))
    np.copyto(phases, split.transpose(order))
    flat = phases.reshape(-1)
    for axis in range(nd):
        transformed = scratch.empty(f"winograd input {axis}", (4 ** (axis + 1) * 2 ** (nd - axis - 1) * c * cells,))
        shift = math.prod(blocks[axis + 1 :])
        for x, y in zip(flat.reshape(4**axis, 2, -1), transformed.reshape(4**axis, 4, -1), strict=True):
            _input_transform(x, y, shift)
        flat = transformed
    products = scratch.empty("winograd products", (taps, groups, c_out_g, cells))
    np.matmul(u, flat.reshape(taps, groups, c_g, cells), out=products)
    flat = products.reshape(-1)
    for axis in range(nd):
        back = scratch.empty(
            f"winograd output {axis}", (2 ** (axis + 1) * 4 ** (nd - axis - 1) * groups * c_out_g * cells,)
        )
        for m, y in zip(flat.reshape(2**axis, 4, -1), back.reshape(2**axis, 2, -1), strict=True):
            _output_transform(m, y)
        flat = back
    return flat.reshape((2,) * nd + (groups * c_out_g, b, *blocks))


def conv_winograd(input: Array, u: Array, bound: BoundLayer) -> Array:
    """A stride-1 convolution with a 3-tap kernel on every axis by Winograd's F(2, 3): 2 outputs of 4 products per axis.

    The output is cut into tiles of ``2^d`` cells; each tile reads ``4^d`` padded input cells,
    transformed (``Bᵀ·d·B``) so that the convolution becomes ``4^d`` independent products —
    one BLAS product per transformed tap and group, contracting the channels — whose results
    are transformed back (``Aᵀ·m·A``). That is ``(4/6)^d`` of im2col's multiply-adds (``4/9`` in
    2-d) and no im2col copy. ``u`` is :func:`winograd_weights`' ``(4^d, G, O/G, C/G)``;
    ``bound`` is a direct convolution that :func:`winograd_fits` (a transposed layer's
    :meth:`~convarith.BoundLayer.direct` equivalent). The transforms only add and subtract
    (``G`` holds halves): float64 results stay within 1e-12 of the direct sums' rounding.
    Blocks of samples (and, for one large sample, of tile rows) keep the transformed arrays
    near :data:`kernels.CHUNK_BYTES`.
    """
    layer = bound.layer
    n, c = input.shape[:2]
    nd = layer.ndim
    _, groups, c_out_g, _ = u.shape
    c_out = groups * c_out_g
    out_spatial = bound.output_spatial
    tiles = [-(-o // 2) for o in out_spatial]
    laid_sizes = tuple(2 * t + 2 for t in tiles)  # the tiles' reach, one tile more: ≥ the padded size
    item = input.dtype.itemsize
    out = np.empty((n, c_out, *out_spatial), input.dtype)
    rest = math.prod(t + 1 for t in tiles[1:])
    kernels.check_memory(
        (n * c * math.prod(laid_sizes) + out.size) * item + 2 * kernels.CHUNK_BYTES, layer.op, input.shape
    )
    if n == 0 or 0 in out_spatial:
        return out
    scratch = kernels.thread_scratch(input.dtype)
    # zeroed once; every call with these pads and this input size writes the same cells
    laid = scratch.zeros(f"winograd laid {bound.pads} {layer.padding_mode} {bound.input_spatial}", (n, c, *laid_sizes))
    if layer.padding_mode == "zeros":
        kernels.shift_copy(laid, input, [-b for b, _ in bound.pads])
    else:
        padded = tuple(ax.padded for ax in bound.axes)
        laid[(slice(None), slice(None), *(slice(0, p) for p in padded))] = kernels.pad(
            input, bound.pads, layer.padding_mode
        )
    samples, rows = kernels.plan(n, tiles[0], 4**nd * (c + c_out) * rest * item)
    for n0 in range(0, n, samples):
        for r0 in range(0, tiles[0], rows):
            r = min(rows, tiles[0] - r0)
            result = _winograd_block(laid[n0 : n0 + samples, :, 2 * r0 : 2 * (r0 + r) + 2], u, scratch)
            for phase in itertools.product((0, 1), repeat=nd):
                first = slice(2 * r0 + phase[0], min(out_spatial[0], 2 * (r0 + r)), 2)
                target = out[(slice(n0, n0 + samples), slice(None), first, *(slice(p, None, 2) for p in phase[1:]))]
                source = result[phase][(slice(None), slice(None), *(slice(0, k) for k in target.shape[2:]))]
                target[...] = source.swapaxes(0, 1)
    return out


# -- depthwise taps ----------------------------------------------------------------------------------


def conv_depthwise(input: Array, weight: Array, bound: BoundLayer) -> Array:
    """A direct convolution whose groups have one input channel each (depthwise, one-channel layers).

    Compiled (:func:`convarith.ops.compiled.depthwise`, when Numba is installed and
    :func:`~convarith.ops.compiled.wanted` says the compile pays), or NumPy passes: the padded input
    is seen flat, all channels end to end: a tap at offset ``Σ t·d·stride_of_axis`` reads one
    contiguous run, so each tap is one long multiply-add (the weight repeated over each channel's
    cells, so that one pass covers every channel). Cells between a channel's rows and between
    channels are computed too and dropped; every s-th cell is kept. Output channel ``o`` reads
    input channel ``o // (C_out/G)``: one such sum per ``m < C_out/G``.
    """
    layer = bound.layer
    n, c = input.shape[:2]
    c_out = weight.shape[0]
    multiplier = c_out // c
    stride, dilation = kernels.steps(bound)
    out_spatial = bound.output_spatial
    padded = tuple(ax.padded for ax in bound.axes)
    cells = math.prod(padded)
    item = input.dtype.itemsize
    kernels.check_memory((3 * n * c + n * c_out) * cells * item, layer.op, input.shape)
    out = np.empty((n, c_out, *out_spatial), input.dtype)
    if n == 0 or 0 in out_spatial:
        return out
    from . import compiled

    numpy_ns = compiled.numpy_cost(bound, n)
    if compiled.wanted(numpy_ns):
        source, before = input, [b for b, _ in bound.pads]  # zeros: laid into each channel's plane
        if layer.padding_mode != "zeros":
            source, before = kernels.pad(input, bound.pads, layer.padding_mode), [0] * len(padded)
        if compiled.depthwise(source, weight, out, before, padded, stride, dilation, compiled.taps_cost(bound, n)):
            return out
    compiled.spent(numpy_ns)
    scratch = kernels.thread_scratch(input.dtype)
    if layer.padding_mode == "zeros":  # the same interior on every call with these pads
        xp = scratch.zeros(f"padded {bound.pads}", (n, c, *padded))
        kernels.shift_copy(xp, input, [-b for b, _ in bound.pads])
    else:
        xp = kernels.pad(input, bound.pads, layer.padding_mode)
    flat = np.ascontiguousarray(xp).reshape(n, c * cells)
    axis_strides = tuple(math.prod(padded[a + 1 :]) for a in range(len(padded)))
    span = sum((o - 1) * s * st for o, s, st in zip(out_spatial, stride, axis_strides, strict=True)) + 1
    total = (c - 1) * cells + span  # from the first window of channel 0 to the last of channel c − 1
    taps = list(np.ndindex(*layer.kernel_size))
    offsets = [sum(t * d * st for t, d, st in zip(tap, dilation, axis_strides, strict=True)) for tap in taps]
    acc = scratch.empty("acc", (n, c * cells))  # the cells read below are all written first
    tmp = scratch.empty("tmp", (n, total))
    grid = acc.reshape(n, c, *padded)
    reads = (
        slice(None),
        slice(None),
        *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_spatial, stride, strict=True)),
    )
    out_m = out.reshape(n, c, multiplier, *out_spatial)
    # each tap's weight repeated over its channel's cells (per multiplier m): one long operand
    repeated = _recent("repeated", weight, (cells, total), lambda w: _repeated(w, c, multiplier, cells, total))
    block = max(1, DEPTHWISE_BLOCK // max(c * cells * item, 1))  # samples whose arrays stay in cache
    for m in range(multiplier):
        for n0 in range(0, n, block):
            source, a, t = flat[n0 : n0 + block], acc[n0 : n0 + block, :total], tmp[n0 : n0 + block]
            for i, offset in enumerate(offsets):
                if i == 0:
                    np.multiply(source[:, offset : offset + total], repeated[m][i], out=a)
                else:
                    np.multiply(source[:, offset : offset + total], repeated[m][i], out=t)
                    a += t
        out_m[:, :, m] = grid[reads]
    return out


DEPTHWISE_BLOCK = 2**18
"""Bytes of input per block of samples in :func:`conv_depthwise` (its three arrays then fit in L2)."""


def _repeated(weight: Array, c: int, multiplier: int, cells: int, total: int) -> Array | list[list[Any]]:
    """``[m][tap]``: the weight of every channel repeated over its ``cells`` (the first ``total``), or a
    scalar for one channel."""
    w = weight.reshape(c, multiplier, -1)
    if c == 1:
        return [[w[0, m, i] for i in range(w.shape[2])] for m in range(multiplier)]
    wide = np.broadcast_to(w.transpose(1, 2, 0)[..., None], (multiplier, w.shape[2], c, cells))
    return np.ascontiguousarray(wide).reshape(multiplier, w.shape[2], c * cells)[..., :total]


# -- the cost model --------------------------------------------------------------------------------


def _fft_cost(channels: int, contraction: int, sizes: tuple[int, ...]) -> float:
    points = math.prod(_fft_len(size) for size in sizes)
    return (
        COSTS["fft"] * channels * points * math.log2(max(points, 2))
        + COSTS["spectral"] * contraction * points / 2
        + COSTS["call"]
    )


def _winograd_cost(n: int, c: int, c_out: int, groups: int, bound: BoundLayer) -> float:
    """:func:`conv_winograd` on ``n`` samples: its products, its transforms' passes (about five per
    transformed input cell, four per product cell, measured), the copies in and out, a BLAS call per
    transformed tap, group and sample."""
    nd = bound.ndim
    sizes = bound.output_spatial
    tiles = n * math.prod(-(-o // 2) + 1 for o in sizes)
    taps = int(4**nd)
    return (
        COSTS["mac"] * taps * c_out * (c // groups) * tiles
        + COSTS["pass"] * taps * tiles * (5 * c + 4 * c_out)
        + COSTS["copy"] * 3 * n * (c * math.prod(ax.input for ax in bound.axes) + c_out * math.prod(sizes))
        + COSTS["product"] * taps * groups * n
        + COSTS["copy"] * 2 * taps * c_out * (c // groups)  # the kernel found by its bytes (or transformed)
    )


def costs(bound: BoundLayer, samples: int | None = None) -> dict[str, float]:
    """Estimated nanoseconds of each route the cost model weighs for ``bound`` (``samples``: its batch, default 1)."""
    layer = bound.layer
    n = samples if samples is not None else (bound.batch or 1)
    g = layer.groups
    taps = math.prod(layer.kernel_size)
    stride, _ = kernels.steps(bound)
    if bound.transposed:
        c_in, c_out = bound.in_channels, bound.out_channels
        cells = math.prod(bound.input_spatial)
        macs = n * c_in * (c_out // g) * taps * cells
        gemm = COSTS["mac"] * macs + COSTS["copy"] * n * c_out * taps * cells + COSTS["product"] * n * g
        result = {"gemm": gemm}
        if all(s == 1 for s in stride):
            result["fft"] = _fft_cost(n * (c_in + c_out), n * c_out * (c_in // g), tuple(ax.full for ax in bound.axes))
        elif all(k >= s for k, s in zip(layer.kernel_size, stride, strict=True)):
            result["phase"] = 0.7 * gemm  # every phase has a tap: the same products, no strided adds
        if winograd_fits(bound):
            result["winograd"] = _winograd_cost(n, c_in, c_out, g, bound)
        return result
    c, c_out = bound.in_channels, bound.out_channels
    cells = math.prod(bound.output_spatial)
    macs = n * c_out * (c // g) * taps * cells
    result = {"gemm": COSTS["mac"] * macs + COSTS["copy"] * n * c * taps * cells + COSTS["product"] * n * g}
    if c == g:
        from . import compiled  # NumPy passes, or compiled when Numba is there and the compile pays

        result["taps"] = compiled.taps_cost(bound, n)
    if all(s == 1 for s in stride):
        padded = tuple(ax.padded for ax in bound.axes)
        result["fft"] = _fft_cost(n * (c + c_out), n * c_out * (c // g), padded)
    if winograd_fits(bound):
        result["winograd"] = _winograd_cost(n, c, c_out, g, bound)
    return result


def choose(bound: BoundLayer, samples: int | None = None) -> str:
    """The cheapest route for ``bound`` by :func:`costs` (``samples`` per call; the bound batch by default)."""
    estimates = costs(bound, samples)
    return min(estimates, key=lambda route: estimates[route])


# -- one layer's runner ----------------------------------------------------------------------------


def _winograd_of(weight: Array, groups: int, transposed: bool, recent: bool) -> Array:
    """:func:`winograd_weights`, shared with the last few runners of this kernel when ``recent`` (finding
    it by its bytes costs a third of transforming it again)."""
    if recent:
        return _recent("winograd", weight, (groups, transposed), lambda w: winograd_weights(w, groups, transposed))
    return winograd_weights(weight, groups, transposed)


def runner(bound: BoundLayer, weight: Array, method: str = "auto", *, recent: bool = False) -> Batch:
    """The batch function ``(N, *input) → (N, *output)`` of ``bound`` by ``method`` (``auto``: :func:`choose`).

    The kernel's spectrum (FFT) is computed on the first call and kept: an operator built once
    transforms its kernel once. With ``recent`` (the reference ops) the spectra of the last few
    kernels are shared between runners, found by the kernel's bytes (:func:`recent_spectra`).
    ``method`` is one of ``gemm``, ``taps``, ``fft``, ``winograd`` (direct) or ``gemm``, ``scatter``,
    ``phase``, ``fft``, ``winograd`` (transposed), already checked by the caller (``winograd``: only
    where :func:`winograd_fits`).
    """
    layer = bound.layer
    if method == "auto":
        method = choose(bound, 1 if bound.batch is None else None)
    g = layer.groups
    _, dilation = kernels.steps(bound)
    shape: Any = weight.shape
    if bound.transposed:
        if method == "fft":
            grouped = weight.reshape(g, shape[0] // g, *shape[1:]).swapaxes(1, 2)
            spectra = recent_spectra(grouped, dilation, False) if recent else Spectra(grouped, dilation, False)
            return lambda ys: conv_transpose_fft(ys, weight, bound, spectra)
        if method == "phase":
            return lambda ys: conv_transpose_phase(ys, weight, bound)
        if method == "winograd":
            transformed = _winograd_of(weight, g, True, recent)
            direct = bound.direct().conv
            return lambda ys: conv_winograd(ys, transformed, direct)
        if method == "scatter":
            return lambda ys: kernels.conv_transpose_scatter(ys, weight, bound)
        return lambda ys: kernels.conv_transpose_gemm(ys, weight, bound)
    if method == "fft":
        grouped = weight.reshape(g, shape[0] // g, *shape[1:])
        spectra = recent_spectra(grouped, dilation, True) if recent else Spectra(grouped, dilation, True)
        return lambda xs: conv_fft(xs, weight, bound, spectra)
    if method == "winograd":
        transformed = _winograd_of(weight, g, False, recent)
        return lambda xs: conv_winograd(xs, transformed, bound)
    if method == "taps":
        if bound.in_channels == g:
            return lambda xs: conv_depthwise(xs, weight, bound)
        return lambda xs: kernels.conv_taps(xs, weight, bound)
    return lambda xs: kernels.conv_gemm(xs, weight, bound)
