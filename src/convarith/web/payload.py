"""What the explorer page draws, computed by the library and sent as JSON.

:func:`describe` turns a checked :class:`~convarith.web.state.State` into everything the page
shows: shapes, the arithmetic with its numbers, findings and the chosen framework's refusals, the
two drawn grids (kinds, the layer cell each drawn cell holds, read counts), every frame's window,
the layer's matrix as (row, column, tap) entries, the values of numeric mode, and the layer written
in every framework. The page only draws and looks things up: no formula lives in JavaScript.

>>> from convarith.web.state import read_state
>>> page = describe(read_state({"op": "conv2d", "input_shape": [5, 5], "kernel_size": 3, "stride": 2}))
>>> page["shapes"]["output"], page["frames"]["count"], page["grids"]["lower"]["kinds"][:5]
([1, 1, 2, 2], 4, 'iiiii')
>>> page["matrix"]["rows"], page["matrix"]["cols"], unpacked(page["matrix"]["row"]).shape
(4, 25, (36,))

Integer arrays travel packed (:func:`packed`, :func:`unpacked`): ``frames.cells``, the grids'
``source`` and ``reads``, the matrix's ``row``, ``col`` and ``tap``.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConvArithError
from ..explain.derivation import explain_layer
from ..geometry.solver import solve
from ..render.frames import KIND_PRIORITY, Animation, Grid, build_animation, numeric_arrays
from ..rules import check
from .state import FRAMEWORKS, LIMITS, State, bounded_int

if TYPE_CHECKING:
    from ..geometry.bound import BoundLayer

__all__ = ["MAX_FRAMES", "MAX_MATRIX_ENTRIES", "describe", "error_body", "packed", "solutions", "unpacked"]

MAX_FRAMES = 8192
"""Longest animation the page plays (a 64 × 64 output of two channels)."""
MAX_MATRIX_ENTRIES = 300_000
"""Most (row, column, tap) entries of the matrix sent; beyond, the page says how many there are."""

# one letter per drawn cell kind (the page's legend): rank of KIND_PRIORITY → letter
_KIND_LETTERS = {0: "i", 1: "z", 2: "p", 3: "e", 4: "h", 5: "c"}
_KIND_NAMES = {"i": "input", "o": "output", "z": "zero", "p": "pad", "e": "extra", "h": "overhang", "c": "crop"}
assert sorted(_KIND_LETTERS) == sorted(set(KIND_PRIORITY.values()))


def error_body(err: ConvArithError) -> dict[str, object]:
    """A refusal as JSON: the field, the rule, the value and the one-line message."""
    value = None if err.value is None else str(err.value)
    return {"error": {"param": err.param, "rule": err.rule, "value": value, "message": str(err)}}


def packed(values: npt.ArrayLike) -> dict[str, object]:
    """An integer array as JSON cheaply: little-endian int32 bytes in base64, with its shape.

    A matrix of 300,000 entries as decimal lists took longer to write as JSON than to compute.
    """
    array = np.ascontiguousarray(values, dtype="<i4")
    return {"shape": list(array.shape), "int32": base64.b64encode(array.tobytes()).decode("ascii")}


def unpacked(data: Mapping[str, Any]) -> npt.NDArray[np.int32]:
    """The array :func:`packed` sent (for programs reading the page's JSON).

    >>> unpacked(packed([[1, -2], [3, 4]])).tolist()
    [[1, -2], [3, 4]]
    """
    raw = base64.b64decode(str(data["int32"]))
    return np.frombuffer(raw, dtype="<i4").reshape([int(n) for n in data["shape"]])


def _numbers(values: npt.NDArray[np.float64]) -> list[object]:
    """Floats as JSON: ``nan`` (no cell) as ``null``, infinities as the strings ``"inf"``/``"-inf"``."""
    flat = values.ravel().tolist()
    return [None if v != v else ("inf" if v > 0 else "-inf") if math.isinf(v) else v for v in flat]


def _grid(grid: Grid, sizes: tuple[int, ...], output: bool) -> dict[str, object]:
    letters = np.array([_KIND_LETTERS[r] for r in range(len(_KIND_LETTERS))])
    kinds = letters[grid.kind_ranks().ravel()]
    if output:
        kinds[kinds == "i"] = "o"
    reads = np.ones(grid.shape, dtype=np.int64)
    for n, axis in enumerate(grid.axes):
        reads = reads * np.array(axis.reads).reshape([-1 if m == n else 1 for m in range(len(grid.axes))])
    return {
        "label": grid.label,
        "channels": grid.channels,
        "shape": list(grid.shape),
        "sizes": list(sizes),
        "kinds": "".join(kinds.tolist()),
        "source": packed(grid.source_index(sizes).ravel()),
        "reads": packed(reads.ravel()),
    }


def _matrix(
    anim: Animation, cells: npt.NDArray[np.int64], kernel: npt.NDArray[np.int64], source: npt.NDArray[np.int64]
) -> dict[str, object]:
    """The layer's own matrix (rows: outputs, columns: inputs; Cᵀ for a transposed convolution) as entries.

    Every (frame, channel, tap) that lands on a cell holding a layer cell is one entry; folded
    padding may give several entries at one (row, column), which the matrix adds.
    """
    bound, frames = anim.bound, anim.frames
    n_in, n_out = math.prod(bound.input_spatial), math.prod(bound.output_spatial)
    per, taps = cells.shape
    landing = source[cells]  # (P, T): the layer cell under every tap, -1 for none
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    tap_ids: list[npt.NDArray[np.int64]] = []
    position = np.repeat(np.arange(per), taps).reshape(per, taps)
    hit = landing >= 0
    tapped = np.broadcast_to(kernel, landing.shape)[hit]  # the same taps on every channel
    for outer, window in enumerate(frames.channel_windows()):
        for channel in window.channels:
            if anim.view == "scatter":  # the frame is an input cell (a column), the taps land on outputs
                r, c = channel * n_out + landing[hit], outer * n_in + position[hit]
            else:
                r, c = outer * n_out + position[hit], channel * n_in + landing[hit]
            rows.append(r)
            cols.append(c)
            tap_ids.append(tapped)
    count = sum(len(r) for r in rows)
    shape = {"rows": bound.out_channels * n_out, "cols": bound.in_channels * n_in, "entries": count}
    if count > MAX_MATRIX_ENTRIES:
        return shape | {"row": None, "col": None, "tap": None}
    join = np.concatenate if rows else (lambda _: np.zeros(0, dtype=np.int64))
    return shape | {"row": packed(join(rows)), "col": packed(join(cols)), "tap": packed(join(tap_ids))}


def _code(bound: BoundLayer) -> dict[str, object]:
    from ..frameworks.translate import translate

    code: dict[str, object] = {}
    for framework in FRAMEWORKS:
        try:
            t = translate(bound.layer, to=framework, input_shape=bound.input_shape)
        except ConvArithError as err:
            code[framework] = {"error": str(err)}
            continue
        notes = [f.message for f in t.findings]
        code[framework] = {"code": t.code, "steps": list(t.steps), "notes": notes, "layout": t.emitted.layout}
    return code


def _weight_bases(anim: Animation) -> list[list[int]] | None:
    """Per outer channel and window channel: where its kernel starts in the flat weight (``None`` for pooling).

    Tap ``t`` of a frame of outer channel ``c`` on its ``j``-th window channel uses
    ``weight.flat[bases[c][j] + kernel[t]]``.
    """
    shape = anim.bound.weight_shape
    if shape is None:
        return None
    frames = anim.frames
    taps = math.prod(shape[2:])
    bases = []
    for window in frames.channel_windows():
        pairs = [frames.taps(window, channel)[0][:2] for channel in window.channels]
        bases.append([(o * shape[1] + i) * taps for o, i in pairs])
    return bases


def _span(channels: range) -> list[int]:
    """The channels a frame's window covers, ``[start, stop)``."""
    return [channels.start, channels.stop]


def _rotated(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A weight with every spatial axis reversed: the kernel rotated by 180°."""
    spatial = tuple(range(2, values.ndim))
    return np.flip(values, axis=spatial).copy()


def describe(state: State) -> dict[str, Any]:
    """Everything the page draws for a state (see the module docstring); raises :class:`ConvArithError`."""
    start = time.perf_counter()
    layer = state.layer()
    bound = layer.bind(state.input_shape)
    weight_shape = bound.weight_shape
    flip = state.flip and weight_shape is not None
    input_values: npt.NDArray[np.float64] | None = None
    if state.input_values is not None:
        input_values = np.reshape(state.input_values, bound.sample_input_shape)
    kernel_values: npt.NDArray[np.float64] | None = None
    if state.kernel_values is not None and weight_shape is not None:
        kernel_values = np.array(state.kernel_values).reshape(weight_shape)
    if flip and state.numeric:
        # a true convolution is the cross-correlation with the kernel rotated by 180°: the kernel shown is
        # the one numeric mode would use (given, or the seed's), the one computed with is it rotated
        input_values, shown = numeric_arrays(bound, state.seed, input_values, kernel_values)
        assert shown is not None
        kernel_values = _rotated(shown)
    anim = build_animation(
        bound,
        None,
        view=state.view,
        numeric=state.numeric,
        seed=state.seed,
        input_values=input_values,
        kernel_values=kernel_values,
        max_frames=MAX_FRAMES,
    )
    scatter = state.view == "scatter"
    window_grid = anim.upper if scatter else anim.lower
    window_sizes = bound.output_spatial if scatter else bound.input_spatial
    cells, kernel = anim.frames.window_arrays(window_grid.shape)
    if flip:
        kernel = math.prod(layer.kernel_size) - 1 - kernel  # row-major: rotating every axis reverses the order
    source = window_grid.source_index(window_sizes).ravel()
    per = anim.frames.per_channel
    explained = explain_layer(bound, symbolic=False).data
    page: dict[str, Any] = {
        "state": state.to_dict(),
        "layer": layer.to_dict(),
        "repr": repr(layer),
        "caption": bound.caption(),
        "op": bound.op,
        "transposed": bound.transposed,
        "pooling": bound.pooling,
        "shapes": {
            "input": list(bound.input_shape),
            "output": list(bound.output_shape),
            "weight": None if weight_shape is None else list(weight_shape),
            "kernel": list(layer.kernel_size),
        },
        "pads": [list(ax.pad) for ax in bound.axes],
        "axes": explained["axes"],
        "findings": [f.to_dict() for f in bound.findings()],
        "framework": {
            "name": state.framework,
            "label": FRAMEWORKS[state.framework],
            "findings": [f.to_dict() for f in check(layer, state.input_shape, framework=state.framework)],
        },
        "grids": {
            "lower": _grid(anim.lower, bound.input_spatial, output=False),
            "upper": _grid(anim.upper, bound.output_spatial, output=True),
        },
        "kinds": _KIND_NAMES,
        "frames": {
            "count": len(anim.frames),
            "per_channel": per,
            "on": "upper" if scatter else "lower",
            "cells": packed(cells),
            "kernel": kernel.tolist(),
            "channels": [_span(w.channels) for w in anim.frames.channel_windows()],
        },
        "matrix": _matrix(anim, cells, kernel, source),
        "weight_base": _weight_bases(anim),
        "values": None,
        "code": _code(bound),
        "limits": LIMITS,
    }
    if anim.values is not None:
        v = anim.values
        weight = None if v.weight is None else (_rotated(v.weight) if flip else v.weight)
        page["values"] = {
            "lower": _numbers(v.lower),
            "upper": _numbers(v.output),
            "input": _numbers(v.input),
            "weight": None if weight is None else _numbers(weight),
            "frame": list(v.frame_values),
            "partial": [list(p) for p in v.partial_sums],
        }
    page["server_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return page


def solutions(data: object) -> dict[str, object]:
    """The solver for the page: layers of an op mapping one size to another (bounded like the state)."""
    if not isinstance(data, dict):
        raise ConvArithError("request", "must be a JSON object", type(data).__name__)
    op = data.get("op")
    if not isinstance(op, str):
        raise ConvArithError("op", "must be an op name such as conv2d", repr(op))
    size_in = bounded_int("from", data.get("from"), "input_shape")
    size_out = bounded_int("to", data.get("to"), "input_shape")
    found = solve(op, size_in, size_out, limit=8, max_kernel=7, max_stride=4, max_dilation=2)
    return {
        "solutions": [
            {
                "layer": s.layer.to_dict(),
                "repr": repr(s.layer),
                "penalty": s.penalty,
                "reasons": list(s.reasons),
            }
            for s in found
        ]
    }
