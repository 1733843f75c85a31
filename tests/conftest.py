"""Shared test settings: hypothesis profiles.

``dev`` (the default) runs small example counts for a fast edit-test loop; ``ci`` (``.ci/run`` and
``make test`` set ``HYPOTHESIS_PROFILE=ci``) runs the full counts. Health checks stay on: a strategy
that filters too much or draws too slowly is fixed, not silenced.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/strategies.py, tests/oracle_torch.py

settings.register_profile("ci", max_examples=100, deadline=None, database=None, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
