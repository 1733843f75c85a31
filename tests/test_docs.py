"""The examples of the layer-model pages run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["docs/layer.md", "docs/findings.md", "docs/reference-ops.md", "README.md"])
def test_doc_examples_run(page: str) -> None:
    import convarith

    result = doctest.testfile(
        str(ROOT / page),
        module_relative=False,
        globs={"convarith": convarith, "Layer": convarith.Layer},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 3, f"{page} has too few examples"
    assert result.failed == 0


def test_analysis_page_examples_run() -> None:
    pytest.importorskip("torch")
    result = doctest.testfile(
        str(ROOT / "docs/analysis.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 10 and result.failed == 0


def test_framework_page_examples_run() -> None:
    import convarith

    result = doctest.testfile(
        str(ROOT / "docs/frameworks.md"),
        module_relative=False,
        globs={"convarith": convarith},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 10 and result.failed == 0


def test_every_pitfall_reproducer_runs_in_a_fresh_interpreter() -> None:
    """The catalogue runs PyTorch, JAX, Keras, TensorFlow, ONNX and onnxruntime: a process of its own,
    so that Keras' backend and JAX's x64 are the page's."""
    import subprocess
    import sys

    code = (
        "import doctest, sys\n"
        f"r = doctest.testfile({str(ROOT / 'docs/pitfalls.md')!r}, module_relative=False,"
        " optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)\n"
        "print('RESULT', r.attempted, r.failed)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    attempted, failed = map(int, line[0].split()[1:])
    assert attempted > 40 and failed == 0, proc.stdout[-6000:]


def test_every_pitfall_a_finding_names_is_in_the_catalogue() -> None:
    import re

    page = (ROOT / "docs/pitfalls.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', page))
    named: set[str] = set()
    for path in (ROOT / "src/convarith").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r'entry=\\?"([a-z0-9-]+)"', text))
        named |= set(re.findall(r'_pitfall\([^()]*?(?:\([^()]*\)[^()]*?)*,\s*"([a-z0-9-]+)"\s*,?\s*\)', text, re.S))
        named |= set(re.findall(r'"(?:[^"]+)", "([a-z0-9]+(?:-[a-z0-9]+)+)"\)\)', text))
    assert named, "no pitfall entries found in the source: the scan is broken"
    assert named <= anchors, f"entries without a catalogue section: {sorted(named - anchors)}"
