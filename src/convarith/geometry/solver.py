"""Find the layer parameters that take an input size to a wanted output size, best first.

Candidates are enumerated per axis (kernel, stride, dilation, padding total split as evenly as
possible, output padding), kept when :meth:`ConvSpec.output_spatial` gives the wanted size (so
the solver cannot disagree with the shape arithmetic), and ranked by a penalty that spells out
what a careful engineer would avoid.

Examples
--------
>>> best = solve("conv_transpose2d", (16, 16), (32, 32))[0]
>>> best.spec.kernel_size, best.spec.stride, best.spec.pads, best.spec.output_padding
((2, 2), (2, 2), ((0, 0), (0, 0)), (0, 0))
>>> best.reasons
('clean: even overlap, every cell read, symmetric padding',)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConvArithError
from .arithmetic import Pad, effective_kernel
from .coverage import coverage, overlap, phase_counts
from ..layer import IntOrSeq, PaddingArg, _padding, _per_axis, parse_op
from ..layer import Layer as ConvSpec

__all__ = ["Solution", "solve"]

CLEAN = "clean: even overlap, every cell read, symmetric padding"


@dataclass(frozen=True)
class Solution:
    """One parameter set, with its penalty (lower is better) and the reasons for it."""

    spec: ConvSpec
    penalty: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _AxisCandidate:
    kernel: int
    stride: int
    dilation: int
    pad: Pad
    output_padding: int
    penalty: float
    reasons: tuple[str, ...]


def solve(
    op: str,
    input_size: IntOrSeq,
    output_size: IntOrSeq,
    *,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: PaddingArg | None = None,
    dilation: IntOrSeq | None = None,
    output_padding: IntOrSeq | None = None,
    ceil_mode: bool = False,
    max_kernel: int = 7,
    max_stride: int = 4,
    max_dilation: int = 3,
    limit: int = 10,
) -> list[Solution]:
    """Parameter sets of ``op`` that map spatial ``input_size`` to ``output_size``, best first.

    Any of ``kernel_size``, ``stride``, ``padding``, ``dilation`` and ``output_padding`` may be
    fixed; the others are searched up to ``max_kernel``, ``max_stride`` and ``max_dilation``.
    Raises :class:`ConvArithError` when nothing in that range fits.
    """
    kind, ndim = parse_op(op)
    sizes_in = _per_axis("input_size", input_size, ndim)
    sizes_out = _per_axis("output_size", output_size, ndim)
    fixed = {
        "kernel_size": None if kernel_size is None else _per_axis("kernel_size", kernel_size, ndim),
        "stride": None if stride is None else _per_axis("stride", stride, ndim),
        "dilation": None if dilation is None else _per_axis("dilation", dilation, ndim),
        "output_padding": None if output_padding is None else _per_axis("output_padding", output_padding, ndim),
    }
    fixed_pads = None if padding is None else _padding(padding, ndim)
    if ceil_mode and kind not in ("max_pool", "avg_pool"):
        raise ConvArithError("ceil_mode", "applies to pooling only", ceil_mode)
    for name, bound in (("max_kernel", max_kernel), ("max_stride", max_stride), ("max_dilation", max_dilation)):
        if bound < 1:
            raise ConvArithError(name, "must be at least 1", bound)

    per_axis: list[list[_AxisCandidate]] = []
    keys: list[tuple[object, ...]] = []
    cache: dict[tuple[object, ...], list[_AxisCandidate]] = {}
    for n in range(ndim):
        chosen = {name: None if values is None else values[n] for name, values in fixed.items()}
        axis_pad = fixed_pads if isinstance(fixed_pads, str) or fixed_pads is None else (fixed_pads[n],)
        key = (
            sizes_in[n],
            sizes_out[n],
            chosen["kernel_size"],
            chosen["stride"],
            chosen["dilation"],
            chosen["output_padding"],
            axis_pad,
        )
        if key not in cache:
            cache[key] = _solve_axis(
                f"{kind}1d",
                sizes_in[n],
                sizes_out[n],
                chosen["kernel_size"],
                chosen["stride"],
                chosen["dilation"],
                chosen["output_padding"],
                axis_pad,
                ceil_mode,
                max_kernel,
                max_stride,
                max_dilation,
            )
        if not cache[key]:
            raise ConvArithError(
                "output_size",
                f"no {op} with kernel ≤ {max_kernel}, stride ≤ {max_stride}, dilation ≤ {max_dilation} "
                f"and the fixed parameters maps {sizes_in[n]} to {sizes_out[n]} on axis {n}",
                sizes_out[n],
            )
        keys.append(key)
        per_axis.append(cache[key][: max(limit, 1) * 2])

    # Axes with the same request get the same parameters, as a person would write them.
    if len(set(keys)) == 1:
        combos: list[tuple[_AxisCandidate, ...]] = [(c,) * ndim for c in per_axis[0]]
    else:
        combos = list(itertools.product(*per_axis))
    solutions = [_combine(op, combo, ceil_mode) for combo in combos]
    solutions.sort(key=lambda sol: sol.penalty)
    return solutions[:limit]


def _solve_axis(
    op: str,
    i: int,
    o: int,
    kernel: int | None,
    stride: int | None,
    dilation: int | None,
    output_padding: int | None,
    padding: object,
    ceil_mode: bool,
    max_kernel: int,
    max_stride: int,
    max_dilation: int,
) -> list[_AxisCandidate]:
    kind, _ = parse_op(op)
    kernels = [kernel] if kernel else range(1, max_kernel + 1)
    strides = [stride] if stride else range(1, max_stride + 1)
    dilations = [dilation] if dilation else ([1] if kind == "avg_pool" else range(1, max_dilation + 1))
    found = []
    for k, s, d in itertools.product(kernels, strides, dilations):
        extras = (
            [output_padding] if output_padding is not None else (range(max(s, d)) if kind == "conv_transpose" else [0])
        )
        if padding is not None:
            paddings: list[object] = [padding]
        else:
            # Only the most even split of each padding total: a more lopsided one is never better.
            reach = effective_kernel(k, d) - 1
            top = reach if kind in ("conv", "conv_transpose") else k
            paddings = [((t // 2, t - t // 2),) for t in range(2 * top + 1)]
        for a, pad in itertools.product(extras, paddings):
            try:
                spec = ConvSpec.create(
                    op,
                    kernel_size=k,
                    stride=s,
                    dilation=d,
                    padding=pad,  # type: ignore[arg-type]
                    output_padding=a,
                    ceil_mode=ceil_mode,
                )
                if spec.output_spatial((i,)) != (o,):
                    continue
            except ConvArithError:
                continue
            resolved = spec.resolve((i,))
            penalty, reasons = _judge(resolved, i)
            found.append(_AxisCandidate(k, s, d, resolved.pads[0], resolved.output_padding[0], penalty, reasons))
    found.sort(key=lambda c: (c.penalty, c.kernel, c.stride, c.dilation))
    return found


def _judge(spec: ConvSpec, i: int) -> tuple[float, tuple[str, ...]]:
    """Penalty and reasons for one resolved 1-d candidate."""
    k, s, d = spec.kernel_size[0], spec.stride[0], spec.dilation[0]
    (pb, pa), a = spec.pads[0], spec.output_padding[0]
    notes: list[tuple[float, str]] = []
    if spec.transposed:
        ov = overlap(spec, (i,))[0]
        if ov.empty_phases:
            notes.append((20, f"output phases {list(ov.empty_phases)} of every {s} get no kernel tap (holes)"))
        elif ov.uneven:
            notes.append((10, f"uneven overlap {list(ov.phase_counts)} taps per phase: checkerboard risk"))
        if a >= s:
            notes.append((5, f"output_padding {a} ≥ stride: the direct convolution would not map the output back"))
        elif a:
            notes.append((1, f"needs output_padding={a}"))
    else:
        cov = coverage(spec, (i,))[0]
        if cov.unread_input:
            notes.append((8, f"{len(cov.unread_input)} input cells never read"))
        if sum(cov.unread_pad):
            notes.append((0.5, f"{sum(cov.unread_pad)} padded cells never read"))
        reads = phase_counts(k, s, d, pb)
        if min(reads) != max(reads) and not cov.unread_input:
            notes.append((0.5, f"input cells read unevenly {list(reads)} per phase (checkerboard in the gradient)"))
        reach = effective_kernel(k, d) - 1
        if max(pb, pa) > reach:
            notes.append((6, "windows entirely in the padding"))
        elif max(pb, pa) > -(-reach // 2):
            notes.append((2, "padding beyond half the kernel: border windows read mostly padding"))
    if pb != pa:
        notes.append((3 if abs(pb - pa) > 1 else 1, f"asymmetric padding ({pb}, {pa})"))
    if d > 1:
        notes.append((2 * (d - 1), f"dilation {d}: gaps in the receptive field"))
    if k % 2 == 0 and spec.kind == "conv" and s == 1:
        notes.append((0.5, "even kernel with stride 1: no centre tap"))
    notes.append((0.3 * (k - 1), ""))
    penalty = sum(weight for weight, _ in notes)
    reasons = tuple(text for _, text in notes if text) or (CLEAN,)
    return penalty, reasons


def _combine(op: str, combo: Sequence[_AxisCandidate], ceil_mode: bool) -> Solution:
    spec = ConvSpec.create(
        op,
        kernel_size=[c.kernel for c in combo],
        stride=[c.stride for c in combo],
        padding=[c.pad for c in combo],
        dilation=[c.dilation for c in combo],
        output_padding=[c.output_padding for c in combo],
        ceil_mode=ceil_mode,
    )
    reasons: list[str] = []
    for c in combo:
        reasons.extend(r for r in c.reasons if r not in reasons)
    if len(reasons) > 1 and CLEAN in reasons:
        reasons.remove(CLEAN)
    return Solution(spec, round(sum(c.penalty for c in combo), 3), tuple(reasons))
