"""The examples of the layer-model pages run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["docs/layer.md", "docs/findings.md", "README.md"])
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
