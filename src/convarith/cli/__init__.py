"""``convarith <verb>``: a thin shell over the library. Parses, calls, prints.

The only package of convarith that imports Typer and Rich. Verbs: ``shape``, ``solve``,
``explain``, ``matrix`` (:mod:`.verbs_geometry`), ``animate``, ``draw-matrix``, ``gallery``,
``tour`` (:mod:`.verbs_pictures`); shared options in :mod:`.options`, output paths and value
files in :mod:`.paths`, the flag-naming errors in :mod:`.errors`.

Exit codes: 0 success, 1 a tour check failed, 2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
