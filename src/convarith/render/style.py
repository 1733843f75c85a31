"""Colours and cell looks: an Okabe–Ito (colour-blind-safe) palette, one look per cell kind.

Examples
--------
>>> OKABE_ITO["blue"]
'#0072B2'
>>> CELL["pad"].dash
'dash'
>>> mix("#000000", "#FFFFFF", 0.5)
'#808080'
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CELL",
    "FOOTPRINT",
    "INK",
    "MUTED",
    "OKABE_ITO",
    "CellLook",
    "StyleName",
    "luminance",
    "mix",
    "sequential",
    "tap_colours",
]

StyleName = Literal["guide", "flat"]

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}

INK = "#1B2631"
MUTED = "#5D6D7E"
WHITE = "#FFFFFF"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def mix(a: str, b: str, t: float) -> str:
    """Blend two ``#RRGGBB`` colours: ``t = 0`` gives ``a``, ``t = 1`` gives ``b``."""
    ra, rb = _rgb(a), _rgb(b)
    return "#{:02X}{:02X}{:02X}".format(*(round(x + (y - x) * t) for x, y in zip(ra, rb, strict=True)))


@dataclass(frozen=True)
class CellLook:
    fill: str
    outline: str
    dash: Literal["dash", "dot"] | None = None
    text: str = INK


CELL: dict[str, CellLook] = {
    "input": CellLook(mix(OKABE_ITO["sky"], WHITE, 0.62), mix(OKABE_ITO["blue"], WHITE, 0.15)),
    "pad": CellLook(WHITE, "#7C8C99", "dash", MUTED),
    "zero": CellLook("#E9ECEF", "#A3ADB6", None, MUTED),
    "extra": CellLook(mix(OKABE_ITO["orange"], WHITE, 0.72), OKABE_ITO["orange"], "dash", INK),
    "overhang": CellLook(WHITE, OKABE_ITO["purple"], "dot", MUTED),
    "crop": CellLook("#FAFAFA", "#C9B7AE", "dot", "#B0A49E"),
    "output": CellLook(mix(OKABE_ITO["green"], WHITE, 0.72), mix(OKABE_ITO["green"], "#000000", 0.1)),
}

# the kernel's footprint over each kind of cell
FOOTPRINT: dict[str, CellLook] = {
    "input": CellLook(OKABE_ITO["blue"], mix(OKABE_ITO["blue"], "#000000", 0.45), None, WHITE),
    "pad": CellLook(mix(OKABE_ITO["sky"], WHITE, 0.55), mix(OKABE_ITO["blue"], "#000000", 0.45), "dash", INK),
    "zero": CellLook(mix(OKABE_ITO["sky"], "#A3ADB6", 0.55), mix(OKABE_ITO["blue"], "#000000", 0.45), None, INK),
    "extra": CellLook(OKABE_ITO["orange"], mix(OKABE_ITO["orange"], "#000000", 0.45), "dash", INK),
    "overhang": CellLook(mix(OKABE_ITO["purple"], WHITE, 0.55), mix(OKABE_ITO["purple"], "#000000", 0.4), "dot", INK),
    "output": CellLook(OKABE_ITO["green"], mix(OKABE_ITO["green"], "#000000", 0.45), None, WHITE),
    "crop": CellLook("#FAFAFA", "#C9B7AE", "dot", "#B0A49E"),
}

UNREAD = OKABE_ITO["vermillion"]

# Cividis-like anchors: a sequential map readable with every common colour-vision deficiency.
_SEQ = ["#00224E", "#35456C", "#666970", "#948E77", "#C8B866", "#FEE838"]


def sequential(t: float) -> str:
    """A colour-blind-safe sequential colour for ``0 ≤ t ≤ 1`` (dark blue → yellow)."""
    t = min(max(t, 0.0), 1.0) * (len(_SEQ) - 1)
    low = min(int(t), len(_SEQ) - 2)
    return mix(_SEQ[low], _SEQ[low + 1], t - low)


def luminance(colour: str) -> float:
    """Relative brightness ``0…1`` (for choosing black or white text on a fill)."""
    r, g, b = _rgb(colour)
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255


def tap_colours(kernel: Sequence[int]) -> dict[tuple[int, ...], str]:
    """A colour for every kernel tap: the hue tells the row, the shade the column.

    Rows (everything but the last axis) take Okabe–Ito hues while there are at most seven of
    them; the column darkens or lightens that hue. Longer kernels fall back to a sequential map
    over all taps.

    >>> colours = tap_colours((3, 3))
    >>> colours[0, 1] == OKABE_ITO["blue"], len(set(colours.values()))
    (True, 9)
    """
    taps = list(itertools.product(*(range(k) for k in kernel)))
    hues = ["blue", "orange", "green", "vermillion", "purple", "sky", "yellow"]
    rows = math.prod(kernel[:-1])
    cols = kernel[-1]
    if len(kernel) == 1 and cols <= len(hues):
        return {t: OKABE_ITO[hues[t[0]]] for t in taps}
    if rows > len(hues) or cols > 5:
        return {t: sequential(j / max(len(taps) - 1, 1)) for j, t in enumerate(taps)}
    result = {}
    for j, t in enumerate(taps):
        hue = OKABE_ITO[hues[j // cols]]
        c = t[-1]
        # the middle column keeps the pure hue; earlier ones darker, later ones lighter
        shift = (c - (cols - 1) / 2) / max(cols - 1, 1)
        result[t] = mix(hue, "#FFFFFF", 1.1 * shift) if shift > 0 else mix(hue, "#000000", -0.9 * shift)
    return result
