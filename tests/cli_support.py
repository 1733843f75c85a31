"""Helpers shared by the CLI tests: run the app in-process, snapshot folders, check the error contract."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from convarith.cli import app

runner = CliRunner()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    warnings: tuple[str, ...]


def run(*args: str) -> Run:
    """Invoke the CLI in-process; a Python exception other than SystemExit is re-raised (a bug)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr, tuple(str(w.message) for w in caught))


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``root``: (is a folder, size, mtime in ns)."""
    out: dict[str, tuple[bool, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder, name)
            st = path.lstat()
            out[str(path.relative_to(root))] = (path.is_dir(), st.st_size if not path.is_dir() else 0, st.st_mtime_ns)
    return out


@contextmanager
def inside(folder: Path) -> Iterator[Path]:
    """Run with ``folder`` as the current directory."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(before)


def assert_refused(result: Run, flag: str | Sequence[str]) -> str:
    """Exit 2, nothing on stdout, one line on stderr naming the flag, no traceback, no warning."""
    flags = (flag,) if isinstance(flag, str) else tuple(flag)
    assert result.code == 2, (result.code, result.out, result.err)
    assert result.out == "", result.out
    assert result.err.count("\n") == 1 and result.err.endswith("\n"), result.err
    assert any(result.err.startswith(f"error: {f}: ") for f in flags), (flags, result.err)
    assert "Traceback" not in result.err
    assert not result.warnings, result.warnings
    return result.err
