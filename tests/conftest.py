"""Shared test settings: hypothesis profiles, and the browser the browser tests drive.

``dev`` (the default) runs small example counts, new ones every run, for a fast edit-test loop;
``ci`` (``.ci/run`` and ``make test`` set ``HYPOTHESIS_PROFILE=ci``) runs the full counts, the same
examples every run. Health checks stay on: a strategy
that filters too much or draws too slowly is fixed, not silenced.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/strategies.py, tests/oracle_torch.py

# CI draws the same examples every run (a red CI must be reproducible, and a green one means the
# examples checked here pass there); the dev profile explores new ones on every run
settings.register_profile("ci", max_examples=100, deadline=None, database=None, print_blob=True, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make browser`): `playwright install` cannot download browsers here


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, one per test module (skipped without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
