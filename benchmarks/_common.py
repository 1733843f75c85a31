"""Shared helpers for the benchmarks: pinned threads, interleaved timing, a small report."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads(n: int = 1) -> dict[str, str]:
    """Pin every BLAS/OpenMP pool to ``n`` threads (call before importing NumPy or PyTorch)."""
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    return {var: str(n) for var in THREAD_VARS}


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, round-robin, so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)
