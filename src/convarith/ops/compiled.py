"""Compiled kernels: the depthwise taps route by Numba, an optional extra (``pip install 'convarith[fast]'``).

NumPy has no fused multiply-add and BLAS has nothing to contract in a depthwise layer (one input
channel per group), so :func:`convarith.ops.routes.conv_depthwise` as NumPy passes goes three times
through memory per tap; :func:`depthwise` is the same sum compiled, each channel's plane read from
the L1 cache (on the benchmark's layer, 4×256 channels 14², 3×3: ~0.3 ms against 1.4–1.9 ms). Numba
is imported only when the route first compiles: ``import convarith`` and the CLI never import it,
and without Numba (or with a Numba that fails to import) the NumPy tap loop runs instead (the same
results, to rounding: both are tested against PyTorch).

The kernel
----------
:func:`depthwise` lays each channel's padded input plane out flat in a small buffer, exactly the
flat padded layout of the NumPy route (zeros around the input copied in, or an input the other
padding modes have already padded), then, per output channel, sums the taps as contiguous runs of
that plane: the tap at ``Σ t·d·stride_of_axis`` reads the run starting there, three taps per pass
over the accumulator, the run cut into chunks of :data:`CHUNK` cells that stay in L1. The cells of a
run that no output reads (between rows, under a stride) are computed and dropped; on a stride the
run covers one output row or plane at a time instead of the whole plane (:func:`plan` picks the
cheapest). Any 1–3 spatial axes (a 1-d or 2-d layer is a 3-d one with leading axes of one cell),
strides, dilations, crops and channel multipliers; no fast-math (plain IEEE products and sums).

Threads: from :data:`PARALLEL_NS` of estimated work on, the (sample, channel) pairs are shared out
over ``OMP_NUM_THREADS`` threads (the pin of every pool, :func:`convarith.ops.routes.fft_workers`)
by Numba's ``prange`` (on OpenMP, whose threads spin a while after a call before they sleep):
two shares on Python threads took longer than one (0.28 against 0.23 ms), waking the second
thread costing more than it saved. The kernels release the GIL.

When it compiles
----------------
The first call compiles (measured on the benchmark machine: ~2 s for the serial kernel, ~5.5 s
with the parallel one, per dtype) or, later, loads the machine code from Numba's disk cache
(``cache=True``: next to this file, else in the user's cache directory, else — nowhere writable
— not at all, silently): Numba's import and the load take ~0.4 s. That is a thousand NumPy tap
loops of a small layer, so :func:`wanted` compiles only on a call large enough to be worth it on
its own (:data:`EAGER_NS` estimated for the NumPy loop: ≥ ~1 ms of it) or once the NumPy loop has
run :data:`PAYBACK_NS` in this process; after the first compile every call takes the compiled
route. A one-shot call on a small layer never pays a compile.

Examples
--------
>>> plan((1, 16, 16), (1, 14, 14), (1, 1, 1), taps=9)  # stride 1: one run over the whole plane
Plan(explicit=0, units=1, span=222)
>>> plan((1, 113, 113), (1, 56, 56), (1, 2, 2), taps=9)  # stride 2: one run per output row
Plan(explicit=2, units=56, span=111)
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..geometry.bound import BoundLayer
from . import kernels
from .kernels import Array
from .routes import COSTS as ROUTE_COSTS
from .routes import fft_workers, per_bound

__all__ = [
    "CHUNK",
    "COSTS",
    "EAGER_NS",
    "PARALLEL_NS",
    "PAYBACK_NS",
    "Plan",
    "available",
    "cost",
    "depthwise",
    "numpy_cost",
    "plan",
    "plans",
    "ready",
    "spent",
    "taps_cost",
    "wanted",
]

CHUNK = 2048
"""Cells of the accumulator summed over every tap before the next (8 KiB in float32: L1)."""
EAGER_NS = 500_000.0
"""Estimated nanoseconds of the NumPy tap loop from which a single call compiles the kernel."""
PAYBACK_NS = 1_000_000_000.0
"""Estimated nanoseconds of NumPy tap loops in one process after which the kernel compiles."""
PARALLEL_NS = 100_000.0
"""Estimated nanoseconds (:func:`cost`) from which :func:`depthwise` shares its work out over threads."""
COSTS = {
    "plane": 0.3,  # ns per plane cell laid out (per input channel and sample)
    "cell": 0.04,  # ns per accumulator cell and tap
    "out": 0.3,  # ns per output cell extracted
    "run": 40.0,  # ns per run of every tap (per output channel and sample)
    "call": 10_000.0,  # ns per call (the wrappers, the dispatch, the buffers)
}
"""The compiled route's cost model, in nanoseconds, fitted on nine depthwise layers (1–3 d, strides,
dilations, kernels 3–31, float32) on the benchmark machine: within ~30 % of the measured times."""


class Plan(NamedTuple):
    """How :func:`depthwise` covers one channel's output: ``units`` runs of ``span`` plane cells each."""

    explicit: int
    """Leading axes (of three) looped over one output index at a time; the run covers the others."""
    units: int
    span: int


def plans(padded: Sequence[int], out: Sequence[int], stride: Sequence[int]) -> list[Plan]:
    """The ways to cover a plane of ``padded`` cells with an output of ``out`` cells and ``stride`` (three
    axes each): one run over the whole plane, one per output plane (axis 0), one per output row."""
    (_, p1, p2), (o0, o1, o2), (s0, s1, s2) = padded, out, stride
    row = (o2 - 1) * s2 + 1
    return [
        Plan(0, 1, (o0 - 1) * s0 * p1 * p2 + (o1 - 1) * s1 * p2 + row),
        Plan(1, o0, (o1 - 1) * s1 * p2 + row),
        Plan(2, o0 * o1, row),
    ]


def plan(padded: Sequence[int], out: Sequence[int], stride: Sequence[int], taps: int) -> Plan:
    """The cheapest of :func:`plans` for ``taps`` taps: a run costs ``run`` and computes the cells
    between its outputs too (``cell`` each, :data:`COSTS`)."""
    return min(plans(padded, out, stride), key=lambda p: p.units * (COSTS["run"] + COSTS["cell"] * taps * p.span))


def _three(shape: Sequence[int], fill: int) -> tuple[int, int, int]:
    """A 1–3 axis shape as three axes (leading ones of ``fill``)."""
    a, b, c = (fill,) * (3 - len(shape)) + tuple(shape)
    return a, b, c


def cost(bound: BoundLayer, samples: int) -> float:
    """Estimated nanoseconds of :func:`depthwise` on ``samples`` of ``bound``: the planes laid out, every
    tap over the runs of :func:`plan`, the outputs extracted."""
    stride, _ = kernels.steps(bound)
    padded = tuple(ax.padded for ax in bound.axes)
    taps = math.prod(bound.layer.kernel_size)
    runs = plan(_three(padded, 1), _three(bound.output_spatial, 1), _three(stride, 1), taps)
    c, c_out = bound.in_channels, bound.out_channels
    return (
        COSTS["plane"] * samples * c * math.prod(padded)
        + COSTS["cell"] * samples * c_out * taps * runs.units * runs.span
        + COSTS["out"] * samples * c_out * math.prod(bound.output_spatial)
        + COSTS["run"] * samples * c_out * runs.units
        + COSTS["call"]
    )


def numpy_cost(bound: BoundLayer, samples: int) -> float:
    """Estimated nanoseconds of the NumPy tap loop on ``samples`` of ``bound``: three contiguous passes
    (:data:`convarith.ops.routes.COSTS` ``pass``) per tap over every padded cell of every output channel."""
    taps = math.prod(bound.layer.kernel_size)
    return 3 * ROUTE_COSTS["pass"] * samples * bound.out_channels * taps * math.prod(ax.padded for ax in bound.axes)


def taps_cost(bound: BoundLayer, samples: int) -> float:
    """The estimate of the route :func:`convarith.ops.routes.conv_depthwise` takes for ``samples`` of
    ``bound``: :func:`cost` when :func:`wanted`, else :func:`numpy_cost`. The cost model runs on
    every call of a reference op: :func:`cost` is kept per bound layer
    (:func:`convarith.ops.routes.per_bound`)."""
    numpy_ns = numpy_cost(bound, samples)
    if not wanted(numpy_ns):
        return numpy_ns
    return per_bound("compiled cost", bound, lambda: cost(bound, samples), samples)


# -- when to compile ---------------------------------------------------------------------------------


_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"numpy_ns": 0.0, "kernels": None, "cached": None}


def available() -> bool:
    """Whether Numba is installed (looked up once, not imported; false too once it failed to import)."""
    if "installed" not in _STATE:
        try:
            _STATE["installed"] = importlib.util.find_spec("numba") is not None
        except ValueError:  # sys.modules["numba"] is None: made unimportable on purpose
            _STATE["installed"] = False
    return bool(_STATE["installed"])


def ready() -> bool:
    """Whether the kernel is compiled in this process (for some dtype)."""
    return bool(compile_seconds)


def wanted(numpy_ns: float) -> bool:
    """Whether a call whose NumPy tap loop is estimated at ``numpy_ns`` takes the compiled route.

    Yes once the kernel is compiled; else for a call large enough to compile for (:data:`EAGER_NS`: a
    layer that size is seldom run once, and its later calls gain ~1 ms each), or once this process
    has spent :data:`PAYBACK_NS` in the NumPy loop (:func:`spent`: many small calls). Never without
    Numba.
    """
    return available() and (ready() or numpy_ns >= EAGER_NS or _STATE["numpy_ns"] + numpy_ns >= PAYBACK_NS)


def spent(numpy_ns: float) -> None:
    """Count an estimated ``numpy_ns`` run by the NumPy tap loop towards :data:`PAYBACK_NS`."""
    with _LOCK:
        _STATE["numpy_ns"] += numpy_ns


# -- the kernel ------------------------------------------------------------------------------------


def _depthwise(x: Array, weight: Array, geometry: Array, out: Array, first: int, last: int) -> None:
    """The compiled loop (plain Python too, slowly): ``x`` (N, C, cells), ``weight`` (C_out, taps),
    ``geometry`` the 23 integers :func:`depthwise` lays out, ``out`` (N, C_out, cells), written for
    the (sample, input channel) pairs ``first ≤ b·C + c < last``. Indices are unsigned: Numba then
    skips the negative-index wrap-around that keeps LLVM from vectorising the loops."""
    u = np.uint64
    c = x.shape[1]
    c_out, taps = out.shape[1], weight.shape[1]
    multiplier = c_out // c
    i1, i2 = geometry[1], geometry[2]
    p0, p1, p2 = geometry[3], geometry[4], geometry[5]
    b0, b1, b2 = geometry[6], geometry[7], geometry[8]
    o0, o1, o2 = geometry[9], geometry[10], geometry[11]
    s0, s1, s2 = geometry[12] * p1 * p2, geometry[13] * p2, geometry[14]  # flat steps between outputs
    d0, d1, d2 = geometry[15] * p1 * p2, geometry[16] * p2, geometry[17]  # flat steps between taps
    k1, k2 = geometry[19], geometry[20]
    explicit, chunk = geometry[21], geometry[22]
    offsets = np.empty(taps, np.int64)  # where each tap's run starts (taps in C order, as the weight)
    for t in range(taps):
        offsets[t] = (t // (k1 * k2)) * d0 + (t // k2 % k1) * d1 + (t % k2) * d2
    lo0, hi0 = max(0, -b0), min(geometry[0], p0 - b0)  # the input cells inside the plane
    lo1, hi1 = max(0, -b1), min(i1, p1 - b1)
    lo2, hi2 = max(0, -b2), min(i2, p2 - b2)
    width = u(max(hi2 - lo2, 0))
    n0 = o0 if explicit >= 1 else 1  # runs per channel, and the output rows each covers
    n1 = o1 if explicit == 2 else 1
    r0 = 1 if explicit >= 1 else o0
    r1 = 1 if explicit == 2 else o1
    span = (r0 - 1) * s0 + (r1 - 1) * s1 + (o2 - 1) * s2 + 1
    plane = np.zeros(p0 * p1 * p2, x.dtype)  # every channel writes the same cells: the rest stays zero
    acc = np.empty(span, x.dtype)
    for pair in range(first, last):
        b, ci = pair // c, pair % c
        xc = x[b, ci]
        for a in range(lo0, hi0):
            for r in range(lo1, hi1):
                dst = u(((a + b0) * p1 + r + b1) * p2 + lo2 + b2)
                src = u((a * i1 + r) * i2 + lo2)
                for k in range(width):
                    plane[dst + k] = xc[src + k]
        for m in range(multiplier):
            o = ci * multiplier + m
            w = weight[o]
            oc = out[b, o]
            for v0 in range(n0):
                for v1 in range(n1):
                    start = v0 * s0 + v1 * s1
                    for c0 in range(0, span, chunk):
                        length = u(min(chunk, span - c0))
                        base = u(start + c0)
                        at = u(c0)
                        for k in range(length):
                            acc[at + k] = 0
                        t = 0
                        while t + 3 <= taps:
                            wa, wb, wc = w[t], w[t + 1], w[t + 2]
                            pa, pb, pc = base + u(offsets[t]), base + u(offsets[t + 1]), base + u(offsets[t + 2])
                            for k in range(length):
                                acc[at + k] += wa * plane[pa + k] + wb * plane[pb + k] + wc * plane[pc + k]
                            t += 3
                        while t < taps:
                            wa, pa = w[t], base + u(offsets[t])
                            for k in range(length):
                                acc[at + k] += wa * plane[pa + k]
                            t += 1
                    for e0 in range(r0):
                        for e1 in range(r1):
                            q = u(((v0 + e0) * o1 + v1 + e1) * o2)
                            row = u(e0 * s0 + e1 * s1)
                            if s2 == 1:
                                for k in range(u(o2)):
                                    oc[q + k] = acc[row + k]
                            else:
                                for k in range(u(o2)):
                                    oc[q + k] = acc[row + k * u(s2)]


_SERIAL: Any = _depthwise  # the compiled loop once compiled (read as a global by _depthwise_parallel)
_PRANGE: Any = range  # numba.prange once compiled


def _depthwise_parallel(x: Array, weight: Array, geometry: Array, out: Array, parts: int) -> None:
    """:func:`_depthwise` on ``parts`` shares of the (sample, channel) pairs, one per thread of Numba's pool."""
    pairs = x.shape[0] * x.shape[1]
    for part in _PRANGE(parts):
        _SERIAL(x, weight, geometry, out, pairs * part // parts, pairs * (part + 1) // parts)


def _compile(cache: bool) -> tuple[Callable[..., None], Callable[..., None]]:
    """:func:`_depthwise` and :func:`_depthwise_parallel` compiled lazily by Numba (imported here), with or
    without its disk cache (each compiles on its first call, for the types of that call)."""
    global _SERIAL, _PRANGE
    import numba

    options: dict[str, Any] = {"cache": cache, "nogil": True, "error_model": "numpy"}
    serial: Callable[..., None] = numba.njit(**options)(_depthwise)
    _SERIAL, _PRANGE = serial, numba.prange
    parallel: Callable[..., None] = numba.njit(parallel=True, **options)(_depthwise_parallel)
    return serial, parallel


def _kernels() -> tuple[Callable[..., None], Callable[..., None], bool] | None:
    """The compiled kernels (serial, parallel) and whether they use the disk cache, or ``None`` when Numba
    is installed but cannot be imported (then :func:`available` turns false: the NumPy loop runs, as
    without Numba). Numba refuses ``cache=True`` (a ``RuntimeError``) when neither the package's
    folder nor the user's cache directory is writable: the kernels are then compiled in memory only."""
    with _LOCK:
        if _STATE["kernels"] is None:
            try:
                import numba  # noqa: F401  (a broken install — say, built for another NumPy — fails here)
            except Exception:
                _STATE["installed"] = False
                return None
            try:
                _STATE["kernels"], _STATE["cached"] = _compile(cache=True), True
            except RuntimeError:
                _STATE["kernels"], _STATE["cached"] = _compile(cache=False), False
        serial, parallel = _STATE["kernels"]
        return serial, parallel, bool(_STATE["cached"])


def _call(kernels: tuple[Callable[..., None], Callable[..., None]], args: tuple[Array, ...], threads: int) -> None:
    """The serial kernel on every pair, or the parallel one on ``threads`` threads. Parallel calls take
    turns (Numba's fallback thread pool, ``workqueue``, aborts the process on concurrent launches)."""
    if threads <= 1:
        kernels[0](*args, 0, args[0].shape[0] * args[0].shape[1])
        return
    import numba

    with _PARALLEL:
        before = numba.get_num_threads()  # this thread's setting, restored for the caller's own Numba code
        numba.set_num_threads(threads)
        try:
            kernels[1](*args, threads)
        finally:
            numba.set_num_threads(before)


_PARALLEL = threading.Lock()


def _run(args: tuple[Array, ...], share: bool) -> bool:
    """Run the kernel, on the pinned threads (:func:`_threads`) if ``share`` (false: Numba cannot be imported). The
    first call of each kind (dtype, read-only arrays or not, serial or parallel) compiles the kernel
    or loads it from the disk cache, with Numba's warnings silenced (notes for its developers, not
    our users); should the cache fail (a file another process half wrote, a full disk), the kernels
    are compiled again without. :data:`compile_seconds` keeps how long each first call took."""
    found = _kernels()
    if found is None:
        return False
    serial, parallel, cached = found
    threads = min(_threads(), args[0].shape[0] * args[0].shape[1]) if share and fft_workers() > 1 else 1
    kind = (args[0].dtype.str, args[0].flags.writeable, args[1].flags.writeable, threads > 1)
    if kind in compile_seconds:
        _call((serial, parallel), args, threads)
        return True
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _call((serial, parallel), args, threads)
    except Exception as error:
        if not cached or not _cache_error(error):
            raise
        with _LOCK:
            _STATE["kernels"], _STATE["cached"] = _compile(cache=False), False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _call(_STATE["kernels"], args, threads)
    with _LOCK:
        compile_seconds[kind] = time.perf_counter() - start
    return True


def _threads() -> int:
    """The threads of the parallel kernel: ``OMP_NUM_THREADS`` when set (the pin of every pool, as for the
    FFT: :func:`convarith.ops.routes.fft_workers`), else the cores; at most Numba's pool."""
    import numba

    return max(1, min(fft_workers(), int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=64)
def _geometry(
    spatial: tuple[int, ...],
    out: tuple[int, ...],
    kernel: tuple[int, ...],
    before: tuple[int, ...],
    padded: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Array:
    """The kernel's 23 integers (per three axes: input, plane, pads before, output, stride, dilation,
    kernel; then the plan and :data:`CHUNK`), kept for the last 64 layers: a call on the same layer
    lays them out once."""
    padded3, out3, stride3 = _three(padded, 1), _three(out, 1), _three(stride, 1)
    runs = plan(padded3, out3, stride3, math.prod(kernel))
    axes = (_three(spatial, 1), padded3, _three(before, 0), out3, stride3, _three(dilation, 1), _three(kernel, 1))
    return np.array([*itertools.chain(*axes), runs.explicit, CHUNK], dtype=np.int64)


compile_seconds: dict[tuple[str, bool, bool, bool], float] = {}
"""Seconds of the first call of each kind (dtype, writeable input and weight, parallel): the compile, or
the load from the disk cache."""


def _cache_error(error: BaseException) -> bool:
    """Whether ``error`` came from Numba's disk cache (an unreadable or unwritable file), not the kernel."""
    import traceback

    return any("caching" in frame.filename for frame in traceback.extract_tb(error.__traceback__))


def depthwise(
    source: Array,
    weight: Array,
    out: Array,
    before: Sequence[int],
    padded: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    estimate: float = 0.0,
) -> bool:
    """Write a depthwise convolution into ``out`` (N, C_out, *out): ``source`` (N, C, *spatial) laid at
    ``before`` cells (negative: cropped) in a zero plane of ``padded`` cells, ``weight`` (C_out, 1, *k),
    output channel ``o`` reading input channel ``o // (C_out/C)``; ``stride`` and ``dilation`` per axis.
    From an ``estimate`` (ns, :func:`cost`) of :data:`PARALLEL_NS` on, the (sample, channel) pairs are
    shared out over ``OMP_NUM_THREADS`` threads (else the cores). False, and ``out`` untouched, when
    Numba cannot be imported.

    ``out`` must be C-contiguous; ``source`` and ``weight`` are made so (and of ``out``'s dtype).
    """
    n, c = source.shape[:2]
    c_out = out.shape[1]
    dtype = out.dtype.newbyteorder("=")  # Numba computes in the machine's byte order
    geometry = _geometry(
        source.shape[2:], out.shape[2:], weight.shape[2:], tuple(before), tuple(padded), tuple(stride), tuple(dilation)
    )
    x = np.ascontiguousarray(source, dtype).reshape(n, c, -1)
    w = np.ascontiguousarray(weight, dtype).reshape(c_out, -1)
    target = out if out.dtype == dtype else np.empty(out.shape, dtype)
    if not _run((x, w, geometry, target.reshape(n, c_out, -1)), estimate >= PARALLEL_NS and n * c > 1):
        return False
    if target is not out:
        out[...] = target
    return True
