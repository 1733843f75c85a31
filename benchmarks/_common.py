"""Shared helpers for the benchmarks: pinned threads, interleaved timing, pinned worker processes
answering timing requests, and how busy the machine was meanwhile."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

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


# -- pinned worker processes (one library each: two pools in one process spin on each other's cores) --


def answer(runs: Mapping[str, Callable[[], object]], save: Callable[[str], None]) -> None:
    """Inside a worker: answer ``NAME CALLS`` on stdin with each call's seconds (after one warm-up call:
    the pools may have gone to sleep while another process ran), ``save PATH`` by ``save(PATH)``."""
    for line in sys.stdin:
        command = line.split()
        if command[0] == "save":  # the results, to check that the libraries agree
            save(command[1])
            print("saved", flush=True)
            continue
        run, times = runs[command[0]], []
        run()
        for _ in range(int(command[1])):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(" ".join(map(str, times)), flush=True)


# ``--blas``: the machine's OpenBLAS setting forced, or unset (issue 11 reports both)
BLAS_ENV: dict[str, dict[str, str | None]] = {
    "native": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None},
    "haswell": {"OPENBLAS_CORETYPE": "Haswell"},
}


def add_blas_option(parser: argparse.ArgumentParser) -> None:
    """``--blas as-set|haswell|native``: the workers' OpenBLAS kernels (:data:`BLAS_ENV`)."""
    parser.add_argument("--blas", choices=["as-set", *BLAS_ENV], default="as-set", help="OpenBLAS kernels (see above)")


def coretype(blas: str) -> str:
    """The ``OPENBLAS_CORETYPE`` the workers run with for ``--blas blas`` ("unset" when none)."""
    forced = BLAS_ENV.get(blas, {})
    value = forced["OPENBLAS_CORETYPE"] if "OPENBLAS_CORETYPE" in forced else os.environ.get("OPENBLAS_CORETYPE")
    return value or "unset"


def print_busy(medians: Mapping[str, float], busy: float | None) -> None:
    """The line under a thread count's results: how busy other processes and the hypervisor were."""
    if "others" not in medians:
        return
    noisy = max(medians["others"], busy or 0.0) > 0.2 or medians["steal"] > 0.2
    note = "  NOT QUIET: timings unreliable" if noisy else ""
    print(
        f"{'':>7}  (other processes: {busy or 0.0:.2f} cores before, {medians['others']:.2f} during; "
        f"hypervisor steal {medians['steal']:.2f}{note})"
    )


class Worker:
    """``script --worker LIBRARY --threads N`` in a subprocess pinned to ``threads``; ``environment``
    sets variables (``None``: removes them)."""

    def __init__(
        self, script: str, library: str, threads: int, environment: Mapping[str, str | None] | None = None
    ) -> None:
        env = {**os.environ, **pin_threads(threads)}
        for name, value in (environment or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.process = subprocess.Popen(
            [sys.executable, script, "--worker", library, "--threads", str(threads)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


# -- how busy the machine was ------------------------------------------------------------------------


def busy_cores(seconds: float = 0.5) -> float | None:
    """Cores busy over ``seconds`` (from /proc/stat; None where that does not exist)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def cpu_ticks() -> tuple[int, int, int] | None:
    """Machine-wide (busy, total, steal) clock ticks from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            v = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return None
    steal = v[7] if len(v) > 7 else 0
    return sum(v) - v[3] - v[4], sum(v), steal


def process_ticks(pid: int) -> int:
    """User + system clock ticks used by one process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_quiet(limit: float) -> float | None:
    """Wait until the machine is (nearly) idle or ``limit`` seconds pass; return the last reading."""
    deadline = time.monotonic() + limit
    busy = busy_cores()
    while busy is not None and busy > 0.2 and time.monotonic() < deadline:
        busy = busy_cores()
    return busy


class Others:
    """Cores other processes (and the hypervisor) used while the benchmark's own ``pids`` ran:
    ``Others(pids)`` starts counting, ``.since()`` gives ``{"others": …, "steal": …}`` (empty off Linux)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.before, self.ours = cpu_ticks(), sum(process_ticks(pid) for pid in self.pids)

    def since(self) -> dict[str, float]:
        after, ours = cpu_ticks(), sum(process_ticks(pid) for pid in self.pids)
        if self.before is None or after is None:
            return {}
        elapsed = (after[1] - self.before[1]) / (os.cpu_count() or 1)  # ticks of one core
        others = (after[0] - self.before[0]) - (after[2] - self.before[2]) - (ours - self.ours)
        return {"others": max(others, 0) / elapsed, "steal": (after[2] - self.before[2]) / elapsed}
