"""NumPy reference ops (``method="auto"``) against PyTorch's CPU ops, at equal thread counts.

Goal (issue 11): ``conv`` and ``conv_transpose`` for batch 8, 64→64 channels, 56×56, 3×3 kernel,
padding 1, float32, within 1.5× of PyTorch's time with the machine's OpenBLAS setting
(``OPENBLAS_CORETYPE=Haswell``, which holds OpenBLAS to AVX2) and within 1.3× with it unset;
``--blas haswell`` / ``native`` set or unset it for the workers (``as-set``: the environment as it
is). Reported at 1 and 2 threads.

Each library runs in its own subprocess with every BLAS/OpenMP pool pinned to the thread count
(environment variables, and ``torch.set_num_threads``). The parent alternates blocks between the
two: a block is one warm-up call and ``--calls`` timed back-to-back calls (steady state, as a
layer runs in a model); medians over all blocks are compared. Two libraries in one process would
let one's idle thread pool spin on the cores the other needs (OpenBLAS workers spin for up to
2^28 cycles after a call, PyTorch's OpenMP threads after each parallel region): at 2 threads on 2
cores both then ran 2–4× slower than alone, and making the pools sleep when idle slowed OpenBLAS's
own GEMM instead. Single calls separated by pauses were no better: every call then starts cold and
PyTorch's 2-thread time jumped between 10 and 17 ms. Between blocks the parent pauses ``--pause``
seconds, longer than OpenBLAS's spinning: without it PyTorch's 2-thread block, starting while
OpenBLAS's idle workers still spun, took 17 ms instead of 10.

On a shared machine another process on the second core ruins 2-thread timings, so before each
thread count the script waits (up to ``--quiet-wait`` seconds) until other processes use less than
a fifth of a core, and prints how busy the machine was.

    python benchmarks/reference_ops.py [--blocks 7] [--calls 3] [--threads 1 2] [--blas as-set]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import BLAS_ENV, Others, Worker, add_blas_option, answer, coretype, median, print_busy, wait_quiet

GOALS = {"haswell": 1.5, "native": 1.3}  # by OpenBLAS setting
CASE = "batch 8, 64→64 channels, 56×56, 3×3, padding 1, float32"
OPS = ("conv", "conv_transpose")


def worker(library: str, threads: int) -> None:
    """Inside the pinned subprocess: answer each op name on stdin with one call's seconds."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 56, 56)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    runs: dict[str, Any]
    if library == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        runs = {
            "conv": lambda: F.conv2d(xt, wt, padding=1).numpy(),
            "conv_transpose": lambda: F.conv_transpose2d(xt, wt, padding=1).numpy(),
        }
    else:
        from convarith import Layer
        from convarith.ops.reference import conv, conv_transpose

        direct = Layer("conv2d", 64, 64, kernel_size=3, padding=1).bind(x.shape)
        transposed = Layer("conv_transpose2d", 64, 64, kernel_size=3, padding=1).bind(x.shape)
        runs = {
            "conv": lambda: conv(x, w, layer=direct),
            "conv_transpose": lambda: conv_transpose(x, w, layer=transposed),
        }
    for run in runs.values():
        run()  # warm up
    answer(runs, lambda path: np.savez(path, **{op: run() for op, run in runs.items()}))


def measure(threads: int, blocks: int, calls: int, pause: float, blas: str, scratch: Path) -> dict[str, float]:
    workers = {library: Worker(__file__, library, threads, BLAS_ENV.get(blas)) for library in ("ours", "torch")}
    try:
        import numpy as np

        saved = {}
        for library, w in workers.items():
            w.ask(f"save {scratch / library}.npz")
            saved[library] = np.load(scratch / f"{library}.npz")
        for op in OPS:
            ours, theirs = saved["ours"][op], saved["torch"][op]
            error = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
            assert error < 1e-5, (op, error)
        times: dict[str, list[float]] = {f"{op} {lib}": [] for op in OPS for lib in workers}
        others = Others([os.getpid(), *(w.process.pid for w in workers.values())])
        for _ in range(blocks):
            for op in OPS:
                for library, w in workers.items():
                    time.sleep(pause)  # let the other process's idle pool stop spinning
                    times[f"{op} {library}"].extend(float(t) for t in w.ask(f"{op} {calls}").split())
        return {name: median(values) for name, values in times.items()} | others.since()
    finally:
        for w in workers.values():
            w.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=7, help="blocks per library and op, alternating")
    parser.add_argument("--calls", type=int, default=3, help="timed back-to-back calls per block")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of pause between blocks")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="seconds to wait for an idle machine")
    add_blas_option(parser)
    parser.add_argument("--worker", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.threads[0])
        return
    import tempfile

    blas = coretype(args.blas)
    goal = GOALS["haswell" if blas == "Haswell" else "native"]
    print(
        f"{CASE}; median of {args.blocks}×{args.calls} calls in alternating blocks, "
        f"each library in its own pinned process; OPENBLAS_CORETYPE={blas}"
    )
    print(f"{'threads':>7}  {'op':<15} {'ours':>9} {'torch':>9} {'ours/torch':>10}  goal ≤ {goal}")
    with tempfile.TemporaryDirectory() as scratch:
        for threads in args.threads:
            busy = wait_quiet(args.quiet_wait)
            medians = measure(threads, args.blocks, args.calls, args.pause, args.blas, Path(scratch))
            for op in OPS:
                ours, theirs = medians[f"{op} ours"], medians[f"{op} torch"]
                ratio = ours / theirs
                verdict = "met" if ratio <= goal else "MISSED"
                print(f"{threads:>7}  {op:<15} {ours * 1e3:7.2f}ms {theirs * 1e3:7.2f}ms {ratio:10.2f}  {verdict}")
            print_busy(medians, busy)


if __name__ == "__main__":
    main()
