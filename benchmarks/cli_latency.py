"""Wall time of ``convarith shape …`` against ``python -c "import torch"``, measured in the same run.

Goal (issues 2 and 7): the CLI answers in ≤ 0.25 s and in ≤ 0.2× the time it takes just to import
torch. ``solve``, ``--help`` and ``--version`` are timed too (they import no NumPy either).

    python benchmarks/cli_latency.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, median, pin_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, **pin_threads(1)}
    exe = shutil.which("convarith", path=str(Path(sys.executable).parent)) or "convarith"
    shape_cmd = [
        exe,
        "shape",
        "conv2d",
        "--input",
        "1x3x32x32",
        "--out-channels",
        "16",
        "-k",
        "3",
        "--stride",
        "2",
        "--padding",
        "1",
    ]
    solve_cmd = [exe, "solve", "conv_transpose2d", "--input", "16", "--output", "32"]
    help_cmd = [exe, "--help"]
    version_cmd = [exe, "--version"]
    torch_cmd = [sys.executable, "-c", "import torch"]
    python_cmd = [sys.executable, "-c", "pass"]

    def runner(cmd: list[str]):  # type: ignore[no-untyped-def]
        return lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)

    runner(shape_cmd)()  # warm the file cache
    runner(torch_cmd)()
    times = interleaved(
        {
            "convarith shape": runner(shape_cmd),
            "convarith solve": runner(solve_cmd),
            "convarith --help": runner(help_cmd),
            "convarith --version": runner(version_cmd),
            "import torch": runner(torch_cmd),
            "python -c pass": runner(python_cmd),
        },
        args.repeats,
    )
    cli, torch, bare = (median(times[k]) for k in ("convarith shape", "import torch", "python -c pass"))
    print(f"median of {args.repeats} runs, 1 thread")
    print(f"  python -c pass       {bare * 1000:7.1f} ms")
    print(f"  convarith shape      {cli * 1000:7.1f} ms   goal ≤ 250 ms: {'met' if cli <= 0.25 else 'MISSED'}")
    for name in ("convarith solve", "convarith --help", "convarith --version"):
        print(f"  {name:<20} {median(times[name]) * 1000:7.1f} ms")
    print(f"  python -c 'import torch' {torch * 1000:7.1f} ms")
    print(f"  ratio shape / torch  {cli / torch:7.3f}     goal ≤ 0.2: {'met' if cli / torch <= 0.2 else 'MISSED'}")


if __name__ == "__main__":
    main()
