"""Build time and peak memory of ``conv_matrix`` against the naive COO route, in the same process.

Goals (issue: the convolution matrix C), for a 16→16-channel 128×128 and a 64→64-channel 56×56
3×3 layer (padding 1, float32, one thread):

- ≤ 4 ns per nonzero;
- ≥ 10× faster than the naive route (broadcast every (row, column, value) → ``coo_array`` →
  ``.tocsr()``);
- peak memory ≤ 1.25× the final CSR arrays (tracemalloc sees NumPy's allocations).

    python benchmarks/matrix_build.py [--repeats 5] [--naive-max-nnz 2e8]

The naive route of the 115 M case peaks near 4 GiB; ``--naive-max-nnz 5e7`` skips it there.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, median, pin_threads

pin_threads(1)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from convarith import Layer  # noqa: E402
from convarith.ops.matrix import conv_matrix  # noqa: E402

CASES = [
    ("16→16, 128×128, 3×3", 16, 16, (128, 128)),
    ("64→64, 56×56, 3×3", 64, 64, (56, 56)),
]


def naive_csr(weight: np.ndarray, spatial: tuple[int, int], pad: int) -> Any:
    """Every (output, input channel, tap) at once, masked, then COO → CSR (SciPy sums and sorts)."""
    c_out, c_in, kh, kw = weight.shape
    h, w = spatial
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    co = np.arange(c_out)[:, None, None, None, None, None]
    y = np.arange(oh)[None, :, None, None, None, None]
    x = np.arange(ow)[None, None, :, None, None, None]
    ci = np.arange(c_in)[None, None, None, :, None, None]
    ty = np.arange(kh)[None, None, None, None, :, None]
    tx = np.arange(kw)[None, None, None, None, None, :]
    iy, ix = y + ty - pad, x + tx - pad
    valid = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), (c_out, oh, ow, c_in, kh, kw))
    rows = np.broadcast_to((co * oh + y) * ow + x, valid.shape)[valid]
    cols = np.broadcast_to((ci * h + iy) * w + ix, valid.shape)[valid]
    vals = np.broadcast_to(weight[:, None, None], valid.shape)[valid]
    return sp.coo_array((vals, (rows, cols)), shape=(c_out * oh * ow, c_in * h * w)).tocsr()


def csr_bytes(matrix: Any) -> int:
    return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)


def peak_bytes(build: Callable[[], Any]) -> tuple[int, int]:
    """Peak traced bytes while building, and the bytes of the result."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, csr_bytes(result)


def run_case(name: str, c_in: int, c_out: int, spatial: tuple[int, int], repeats: int, naive_max: float) -> None:
    weight = np.random.default_rng(0).standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    verdict = lambda ok: "met" if ok else "MISSED"

    bound = Layer("conv2d", c_in, c_out, kernel_size=3, padding=1).bind((c_in, *spatial))

    def fast() -> Any:
        return conv_matrix(bound, weight)

    def naive() -> Any:
        return naive_csr(weight, spatial, 1)

    def floor() -> object:
        """Only allocate and fill arrays the size of the result: fresh pages cost this much anyway."""
        arrays = (
            np.empty(nnz, np.float32),
            np.empty(nnz, np.int32),
            np.empty(c_out * math.prod(spatial) + 1, np.int32),
        )
        for a in arrays:
            a.fill(1)
        return arrays

    start = time.perf_counter()
    matrix = fast()
    cold = time.perf_counter() - start
    nnz = matrix.nnz
    runs: dict[str, Callable[[], object]] = {"conv_matrix": fast, "floor": floor}
    with_naive = nnz <= naive_max
    same = False
    if with_naive:
        reference = naive()
        same = all(np.array_equal(getattr(reference, a), getattr(matrix, a)) for a in ("indptr", "indices", "data"))
        del reference
        runs["naive COO"] = naive
    del matrix
    gc.collect()
    times = interleaved(runs, repeats)
    ours = median(times["conv_matrix"])
    peak, final = peak_bytes(fast)
    per_nnz = ours / nnz * 1e9
    print(f"\n{name}: {nnz:,} nonzeros, int32 indices, float32 values")
    print(f"  conv_matrix  {ours * 1e3:8.1f} ms  {per_nnz:6.2f} ns/nnz   goal ≤ 4: {verdict(per_nnz <= 4)}")
    print(f"               first run {cold * 1e3:.1f} ms ({cold / nnz * 1e9:.2f} ns/nnz; fresh pages from the host)")
    bare = median(times["floor"])
    print(
        f"  floor        {bare * 1e3:8.1f} ms  {bare / nnz * 1e9:6.2f} ns/nnz   (allocate + fill arrays of that size)"
    )
    print(
        f"  peak memory  {peak / 2**20:8.1f} MiB for {final / 2**20:.1f} MiB of CSR arrays: "
        f"{peak / final:.3f}×   goal ≤ 1.25: {verdict(peak / final <= 1.25)}"
    )
    if with_naive:
        theirs = median(times["naive COO"])
        naive_peak, _ = peak_bytes(naive)
        ratio = theirs / ours
        print(f"  naive COO    {theirs * 1e3:8.1f} ms  {theirs / nnz * 1e9:6.2f} ns/nnz   identical arrays: {same}")
        print(f"  speed-up     {ratio:8.1f}×   goal ≥ 10: {verdict(ratio >= 10)}")
        print(f"  naive peak   {naive_peak / 2**20:8.1f} MiB ({naive_peak / final:.2f}× the CSR arrays)")
    else:
        print(f"  naive COO    skipped ({nnz:,} nonzeros > --naive-max-nnz)")
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-max-nnz", type=float, default=2e8, help="skip the naive route above this")
    args = parser.parse_args()
    print(f"1 thread; median of {args.repeats} interleaved runs (the first run of each case is shown apart)")
    for case in CASES:
        run_case(*case, args.repeats, args.naive_max_nnz)


if __name__ == "__main__":
    main()
