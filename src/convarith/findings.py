"""Every diagnosis as data: a stable code, a severity, the axis, the numbers, and one message table.

:func:`diagnose` looks at a bound layer and reports what a careful engineer would want to know —
input cells the floor drops, padding no window reads, the uneven overlap of a transposed
convolution (checkerboard artifacts), phases no tap reaches, the size ambiguity that
``output_padding`` resolves. Framework rules (:mod:`convarith.rules`) report their refusals and
the padding a framework cannot express as findings too. The shape report, the explanations, the
solver's ranking and the pictures' captions all read findings; nothing else words a diagnosis.

Codes are stable (``docs/findings.md`` lists them); a message is rendered from :data:`MESSAGES`
with the finding's data.

Examples
--------
>>> from convarith import Layer
>>> found = Layer("conv1d", kernel_size=3, stride=2).bind((8,)).findings()
>>> [(f.code, f.severity) for f in found]
[('dropped-input', 'warning'), ('uneven-reads', 'info')]
>>> print(found[0])
axis 0: the last 1 input cell(s) [7] are never read: the floor of the output size drops them
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .errors import ConvArithError

if TYPE_CHECKING:
    from .geometry.bound import AxisGeometry, BoundLayer

__all__ = ["MESSAGES", "SEVERITIES", "Finding", "Severity", "diagnose", "finding", "refusal"]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

MESSAGES: dict[str, tuple[Severity, str]] = {
    # coverage of a direct convolution or pool
    "dropped-input": (
        "warning",
        "axis {axis}: the last {count} input cell(s) {cells} are never read: the floor of the output size drops them",
    ),
    "unread-input": (
        "warning",
        "axis {axis}: {count} input cell(s) {cells} between windows are never read (stride {stride} skips them)",
    ),
    "cropped-input": (
        "info",
        "axis {axis}: the negative padding crops {before} input cell(s) before and {after} after",
    ),
    "unread-padding": ("info", "axis {axis}: {before} padded cell(s) before and {after} after are never read"),
    "uneven-reads": (
        "info",
        "axis {axis}: input phases are read {phase_counts} times (uneven: a checkerboard in the gradient)",
    ),
    "window-in-padding": (
        "warning",
        "axis {axis}: padding {pad} exceeds the kernel's reach d(k − 1) = {reach}: some windows read only padding",
    ),
    "padding-beyond-half": (
        "info",
        "axis {axis}: padding {pad} is more than half the kernel's reach {reach}: border windows read mostly padding",
    ),
    "ceil-overhang": (
        "info",
        "axis {axis}: with ceil_mode the last window reaches {count} cell(s) past the padded input",
    ),
    "same-even-kernel": (
        "info",
        "axis {axis}: 'same' with the even kernel extent {extent} pads unevenly {pad}; PyTorch makes a padded copy",
    ),
    "dilated-kernel": ("info", "axis {axis}: dilation {dilation} leaves gaps of {gap} cell(s) between taps"),
    "even-kernel": ("info", "axis {axis}: the even kernel {kernel} with stride 1 has no centre tap"),
    # overlap of a transposed convolution
    "uneven-overlap": (
        "warning",
        "axis {axis}: uneven overlap {phase_counts} taps per output phase (checkerboard artifacts); "
        "a kernel size divisible by the stride avoids it",
    ),
    "empty-phase": (
        "warning",
        "axis {axis}: output phases {phases} (mod {stride}) receive no kernel tap: only the bias lands there",
    ),
    "output-padding-choice": (
        "info",
        "axis {axis}: output_padding picks one of the sizes {sizes} that a stride-{stride} convolution maps to {input}",
    ),
    "output-padding-inconsistent": (
        "warning",
        "axis {axis}: output_padding {output_padding} ≥ stride {stride}: the direct convolution with the same "
        "parameters does not map the output back to the input",
    ),
    # what a framework cannot express (rules)
    "inexpressible-padding": (
        "warning",
        "axis {axis}: {framework} {what} takes one padding per axis; ({before}, {after}) needs {workaround}",
    ),
    "needs-workaround": (
        "warning",
        "{framework}: {what}; the translation {workaround}",
    ),
    "pitfall": ("info", "{framework}: {what} (docs/pitfalls.md#{entry})"),
    # a whole model (convarith.analysis)
    "unknown-op": (
        "warning",
        "{node}: {what} is not an operation the analysis follows: receptive fields are unknown from here",
    ),
    "skip-mismatch": ("error", "{node}: the merged inputs' shapes differ: {shapes} (responsible: {responsible})"),
    "misaligned-merge": (
        "warning",
        "axis {axis}: {node} merges branches whose cells look at different places (effective strides "
        "{rates}, fields centred at o·stride + {offsets})",
    ),
    "unread-model-input": (
        "warning",
        "axis {axis}: {count} input cell(s) {cells} never reach any output of the model",
    ),
    "stacked-overlap": (
        "warning",
        "axis {axis}: {node}: an all-ones input through all-ones kernels reaches its cells unevenly by phase, "
        "{phase_counts} (×{ratio} between phases): the checkerboard of the stack so far",
    ),
    # refusals (rules): the message is the rule itself
    "refused": ("error", "{param}: {rule}; got {value}"),
}
"""``code → (severity, message template)``; templates are filled from a finding's data."""


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what (``code``), how bad (``severity``), where (``axis``), and the numbers (``data``)."""

    code: str
    severity: Severity
    message: str
    axis: int | None = None
    data: Mapping[str, object] = field(default_factory=dict)
    framework: str | None = None
    """The framework whose rule this is, ``None`` for the geometry's own diagnoses."""
    param: str | None = None
    """The parameter to point at (refusals)."""

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "axis": self.axis,
            "framework": self.framework,
            "param": self.param,
            "data": dict(self.data),
        }

    def error(self) -> ConvArithError:
        """The refusal as the exception the library raises."""
        return ConvArithError(self.param or "layer", str(self.data.get("rule", self.message)), self.data.get("value"))


def finding(
    code: str,
    axis: int | None = None,
    *,
    framework: str | None = None,
    param: str | None = None,
    **data: object,
) -> Finding:
    """A finding with its message rendered from :data:`MESSAGES`.

    >>> print(finding("even-kernel", 0, kernel=4))
    axis 0: the even kernel 4 with stride 1 has no centre tap
    """
    severity, template = MESSAGES[code]
    message = template.format(axis=axis, param=param, framework=framework, **data)
    return Finding(code, severity, message, axis, data, framework, param)


def refusal(framework: str | None, param: str, rule: str, value: object = None, axis: int | None = None) -> Finding:
    """A refusal: the ``ConvArithError`` it becomes (:meth:`Finding.error`) names ``param``, ``rule`` and ``value``."""
    message = str(ConvArithError(param, rule, value))
    return Finding("refused", "error", message, axis, {"rule": rule, "value": value}, framework, param)


_LIST = 16  # cells listed in a message; the count is always exact


def _cells(cells: list[int]) -> list[int] | str:
    if len(cells) <= _LIST:
        return cells
    return f"[{', '.join(map(str, cells[:8]))}, …, {', '.join(map(str, cells[-4:]))}]"


def _direct_findings(bound: BoundLayer, n: int, ax: AxisGeometry) -> list[Finding]:
    from .geometry.coverage import CELL_LIMIT, axis_coverage, phase_counts, read_summary

    layer = bound.layer
    found: list[Finding] = []
    before, after = ax.pad
    crop_before, crop_after = max(-before, 0), max(-after, 0)
    mode = layer.padding_mode
    if mode == "zeros" and (ax.padded > 4096 or ax.output * ax.kernel > 4096):
        summary = read_summary(ax)
        unread_pad = summary.unread_pad
        tail = max(summary.dropped_tail - max(-after, 0), 0)
        tail_cells = list(range(ax.input - max(-after, 0) - tail, ax.input - max(-after, 0)))
        inner_count = summary.unread_input - summary.dropped_tail - summary.dropped_head
        inner: list[int] | None = None
        cropped = [*range(crop_before), *range(ax.input - crop_after, ax.input)]
    elif ax.padded <= CELL_LIMIT and ax.output * ax.kernel <= CELL_LIMIT:
        cov = axis_coverage(ax, mode)
        unread_pad = cov.unread_pad
        lo, hi = cov.cropped[0], ax.input - cov.cropped[1]
        unread = [x for x in cov.unread_input if lo <= x < hi]
        # a reflect padding mirrors over the whole input, so it may still read a cropped cell
        cropped = [x for x in cov.unread_input if not lo <= x < hi]
        read = [x for x in range(lo, hi) if cov.reads[x]]
        last = read[-1] if read else lo - 1
        tail_cells = [x for x in unread if x > last]
        inner = [x for x in unread if x <= last]
        inner_count = len(inner)
    else:
        return found  # a folding padding over more cells than are counted one by one
    if cropped:
        found.append(
            finding(
                "cropped-input",
                n,
                before=sum(1 for x in cropped if x < crop_before),
                after=sum(1 for x in cropped if x >= crop_before),
                cells=_cells(cropped),
            )
        )
    if tail_cells:
        found.append(finding("dropped-input", n, count=len(tail_cells), cells=_cells(tail_cells)))
    if inner_count:
        found.append(
            finding(
                "unread-input",
                n,
                count=inner_count,
                cells="" if inner is None else _cells(inner),
                stride=ax.stride,
            )
        )
    if sum(unread_pad):
        found.append(finding("unread-padding", n, before=unread_pad[0], after=unread_pad[1]))
    reads = phase_counts(ax.kernel, ax.stride, ax.dilation, before)
    if layer.kind == "conv" and min(reads) != max(reads) and not inner_count:
        found.append(finding("uneven-reads", n, phase_counts=list(reads)))
    widest = max(before, after)
    if widest > ax.reach and layer.kind == "conv":
        found.append(finding("window-in-padding", n, pad=[before, after], reach=ax.reach))
    elif widest > -(-ax.reach // 2) and layer.kind == "conv":
        found.append(finding("padding-beyond-half", n, pad=[before, after], reach=ax.reach))
    if ax.overhang:
        found.append(finding("ceil-overhang", n, count=ax.overhang))
    if layer.policy == "same" and ax.extent % 2 == 0:
        found.append(finding("same-even-kernel", n, extent=ax.extent, pad=[before, after]))
    if ax.dilation > 1:
        found.append(finding("dilated-kernel", n, dilation=ax.dilation, gap=ax.dilation - 1))
    if layer.kind == "conv" and ax.stride == 1 and ax.kernel % 2 == 0:
        found.append(finding("even-kernel", n, kernel=ax.kernel))
    return found


def _transposed_findings(bound: BoundLayer, n: int, ax: AxisGeometry) -> list[Finding]:
    from .geometry.coverage import phase_counts

    found: list[Finding] = []
    phases = phase_counts(ax.kernel, ax.stride, ax.dilation, ax.pad[0])
    empty = [r for r, c in enumerate(phases) if c == 0]
    if empty:
        found.append(finding("empty-phase", n, phases=empty, stride=ax.stride, phase_counts=list(phases)))
    elif min(phases) != max(phases):
        found.append(finding("uneven-overlap", n, phase_counts=list(phases), stride=ax.stride))
    if ax.output_padding >= ax.stride:
        found.append(finding("output-padding-inconsistent", n, output_padding=ax.output_padding, stride=ax.stride))
    # every size the direct convolution with these parameters maps back to this input
    base = ax.output - ax.output_padding
    sizes = [base + a for a in range(ax.stride) if base + a >= 1]
    if len(sizes) > 1:
        found.append(finding("output-padding-choice", n, sizes=sizes, stride=ax.stride, input=ax.input))
    if ax.dilation > 1:
        found.append(finding("dilated-kernel", n, dilation=ax.dilation, gap=ax.dilation - 1))
    return found


def diagnose(bound: BoundLayer) -> tuple[Finding, ...]:
    """Every geometric diagnosis of a bound layer, axis by axis (no framework rules).

    >>> from convarith import Layer
    >>> [f.code for f in diagnose(Layer("conv_transpose1d", kernel_size=2, stride=2, dilation=2).bind((3,)))]
    ['empty-phase', 'output-padding-choice', 'dilated-kernel']
    """
    from .geometry.bound import BoundLayer

    if not isinstance(bound, BoundLayer):
        raise ConvArithError("bound", "must be a BoundLayer (layer.bind(input_shape))", type(bound).__name__)
    found: list[Finding] = []
    for n, ax in enumerate(bound.axes):
        if bound.transposed:
            found += _transposed_findings(bound, n, ax)
        else:
            found += _direct_findings(bound, n, ax)
    return tuple(found)
