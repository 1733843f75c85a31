"""Where each padded cell comes from, as a NumPy array (kept for callers of the old module).

The one definition of the padding modes is :func:`convarith.geometry.coverage.padded_source`
(``F.pad``'s semantics: negative pads crop, ``circular`` crops first and then wraps); this is that
map as an ``int64`` array (:func:`convarith.ops.kernels.padded_source`).

Examples
--------
>>> padded_source(4, (2, 1), "reflect").tolist()
[2, 1, 0, 1, 2, 3, 2]
>>> padded_source(4, (1, -2), "zeros").tolist()
[-1, 0, 1]
"""

from __future__ import annotations

from .kernels import padded_source

__all__ = ["padded_source"]
