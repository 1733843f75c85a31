"""The verification sweep at scale: ``convarith verify`` over every installed runner, its time and
its cases per second per framework (time spent inside each runner's worker; the runners share the
machine's cores, one thread each).

Goal (issue 8): a 20,000-case run with zero unexplained mismatches, recorded in docs/benchmarks.md.

    python benchmarks/verify_sweep.py [--cases 20000] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convarith.frameworks import RUNNERS
from convarith.frameworks.verify import verify
from convarith.layer import KINDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    def progress(done: int, _: object) -> None:
        if done % 500 == 0:
            print(f"  {done} cases", file=sys.stderr, flush=True)

    report = verify(None, cases=args.cases, seed=args.seed, on_case=progress)
    print(
        f"{report.cases} cases, seed {args.seed}, {report.elapsed:.0f} s wall "
        f"({report.cases / report.elapsed:.1f} cases/s for all runners together)"
    )
    print()
    print(
        "| runner | version | agree (conv / conv_t / max / avg) | refused | mismatch | known bug | seconds | cases/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in report.runners:
        agree = " / ".join(str(report.count(r, k, "agree")) for k in KINDS)
        seconds = report.seconds.get(r, 0.0)
        print(
            f"| {r} ({RUNNERS[r].label}) | {report.versions.get(r, '')} | {agree} "
            f"| {report.count(r, status='refused')} | {report.count(r, status='mismatch')} "
            f"| {report.count(r, status='known-bug')} | {seconds:.0f} "
            f"| {report.cases / seconds:.0f} |"
        )
    for m in report.mismatches:
        print(f"\nMISMATCH {m.runner}: {m.detail}\n{m.reproducer}")
    for m in report.known:
        print(f"\nknown bug {m.runner}: {m.known_bug}")
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
