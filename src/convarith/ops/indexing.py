"""Where each padded cell comes from: the one index map behind every padding mode.

A padding mode is a map from padded positions to input positions (or to nothing, for zeros).
``zeros`` maps the padding to ``-1``; ``reflect``, ``replicate`` and ``circular`` map it back into
the input, so several kernel taps can read the same input cell (the matrix C then sums them), and
the adjoint of padding is a scatter-add through the same map. Negative pads crop, as ``F.pad``
does.

Examples
--------
>>> padded_source(4, (2, 1), "reflect").tolist()
[2, 1, 0, 1, 2, 3, 2]
>>> padded_source(4, (2, 1), "replicate").tolist()
[0, 0, 0, 1, 2, 3, 3]
>>> padded_source(4, (2, 1), "circular").tolist()
[2, 3, 0, 1, 2, 3, 0]
>>> padded_source(4, (1, -2), "zeros").tolist()
[-1, 0, 1]
>>> padded_source(3, (-1, 1), "circular").tolist()  # crops first, then wraps, like F.pad
[1, 2, 1]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError

__all__ = ["padded_source"]


def padded_source(size: int, pad: tuple[int, int], mode: str = "zeros") -> npt.NDArray[np.int64]:
    """Input index read at each of the ``size + before + after`` padded positions; ``-1`` = zero.

    Parameters
    ----------
    size
        Input length on this axis.
    pad
        ``(before, after)``; negative values crop.
    mode
        ``zeros``, ``reflect`` (mirror without repeating the edge), ``replicate`` (repeat the
        edge) or ``circular`` (wrap around), as in PyTorch.
    """
    before, after = pad
    if mode == "circular":
        # F.pad crops first and wraps what is left; the other modes index the whole input.
        start = max(-before, 0)
        kept = size - start - max(-after, 0)
        return np.arange(-max(before, 0), kept + max(after, 0), dtype=np.int64) % kept + start
    positions = np.arange(-before, size + after, dtype=np.int64)
    if mode == "zeros":
        return np.where((positions >= 0) & (positions < size), positions, -1)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "reflect":
        period = max(2 * (size - 1), 1)
        folded = positions % period
        return np.where(folded < size, folded, period - folded)
    raise ConvArithError("padding_mode", "must be one of zeros, reflect, replicate, circular", repr(mode))
