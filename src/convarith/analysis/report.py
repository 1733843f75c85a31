"""An analysis as a table for people, Markdown and a self-contained HTML page.

Every cell is text computed from the :class:`~convarith.analysis.model.Analysis`; nothing here
decides anything.

>>> import torch
>>> from convarith.analysis import analyze
>>> report = analyze(torch.nn.Sequential(torch.nn.Conv1d(1, 4, 10, stride=5), torch.nn.ReLU()), (1, 1, 16000))
>>> row = rows(report)[1]
>>> row["node"], row["field"], row["stride"], row["out"]
('0', '10', '5', '1×4×3199')
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .fields import Lost, State

if TYPE_CHECKING:
    from .model import Analysis, NodeReport
    from .sizes import SizeScan

__all__ = ["COLUMNS", "html_page", "markdown", "rows", "shown", "sizes_lines", "summary"]

COLUMNS: tuple[tuple[str, str], ...] = (
    ("node", "node"),
    ("op", "operation"),
    ("hyper", "parameters"),
    ("in", "input"),
    ("out", "output"),
    ("params", "weights"),
    ("macs", "mult-adds"),
    ("field", "receptive field"),
    ("stride", "stride"),
    ("start", "start"),
    ("notes", "findings"),
)
"""Table columns: key, heading."""

_QUIET = ("elementwise", "reshape", "permute", "expand")


def shown(report: NodeReport, every: bool = False) -> bool:
    """Whether a node gets a row: every operation that changes geometry (cell-by-cell operations,
    reshapes and permutations only with ``every``, or when they carry a finding)."""
    return every or report.node.op not in _QUIET or bool(report.findings)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def _per_axis(values: Sequence[str]) -> str:
    return values[0] if len(set(values)) == 1 else " × ".join(values)


def _field(state: State) -> str:
    if isinstance(state, Lost):
        return "?"
    sizes = state.sizes
    if len(set(sizes)) == 1:
        return str(sizes[0])
    return f"{max(sizes)} ({'|'.join(map(str, sizes))})"


def _stride(state: State) -> str:
    if isinstance(state, Lost):
        return "?"
    return "global" if state.step == 0 else str(state.rate)


def _start(state: State) -> str:
    if isinstance(state, Lost) or state.phases[0] is None:
        return "?"
    return str(state.phases[0][0])


def _count(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.2f} G"
    if n >= 10**6:
        return f"{n / 1e6:.2f} M"
    if n >= 10**4:
        return f"{n / 1e3:.1f} k"
    return str(n)


def rows(analysis: Analysis, every: bool = False) -> list[dict[str, str]]:
    """One dict of display strings per shown node (:data:`COLUMNS`)."""
    out = []
    for r in analysis.nodes:
        if not shown(r, every):
            continue
        node = r.node
        source = node.source.removeprefix("aten.")
        op = node.op if node.op != "layer" or r.bound is None else r.bound.op
        if node.op not in ("layer",) and source and source not in (node.op, "input"):
            op = f"{node.op} ({source})"
        codes = sorted({f.code for f in r.findings})
        out.append(
            {
                "node": node.name,
                "op": op,
                "hyper": r.parameters_text(),
                "in": " + ".join(_shape(s) for s in node.input_shapes) if node.input_shapes else "",
                "out": _shape(node.shape),
                "params": _count(node.parameters) if node.parameters else "",
                "macs": _count(r.multiply_adds) if r.multiply_adds else "",
                "field": _per_axis([_field(s) for s in r.fields]),
                "stride": _per_axis([_stride(s) for s in r.fields]),
                "start": _per_axis([_start(s) for s in r.fields]),
                "notes": ", ".join(codes),
            }
        )
    return out


def summary(analysis: Analysis) -> list[str]:
    """The model in a few lines: sizes, totals, outputs' fields, coverage, where fields stop."""
    lines = [
        f"input {_shape(analysis.input_shape)}; {len(analysis.nodes)} operations; "
        f"{analysis.parameters:,} weights; {analysis.multiply_adds:,} multiply-adds per sample",
    ]
    for name in analysis.outputs:
        r = analysis[name]
        fields = ", ".join(
            f"axis {k}: {_field(s)} cells, stride {_stride(s)}, start {_start(s)}" for k, s in enumerate(r.fields)
        )
        lines.append(f"output {name} {_shape(r.node.shape)}: {fields}")
    if analysis.coverage is None:
        lines.append(f"coverage: unknown beyond {analysis.unknown_from}")
    elif not any(analysis.coverage):
        lines.append("coverage: every input cell reaches an output")
    if analysis.unknown_from is not None:
        lines.append(f"receptive fields are unknown beyond {analysis.unknown_from}")
    return lines


def sizes_lines(scan: SizeScan) -> list[str]:
    """The accepted input sizes in a few lines: how many, and the rule (or the sizes themselves)."""
    where = "every spatial axis" if scan.axis is None else f"axis {scan.axis}"
    tried = [c.size for c in scan.checks]
    lines = [f"input sizes {min(tried)}…{max(tried)} along {where}: {len(scan.accepted)} accepted"]
    if scan.rule:
        lines.append(f"rule: {scan.rule}")
    elif scan.accepted:
        shown_sizes = ", ".join(map(str, scan.accepted[:24])) + (" …" if len(scan.accepted) > 24 else "")
        lines.append(f"accepted: {shown_sizes}")
    return lines


def markdown(analysis: Analysis, scan: SizeScan | None = None, every: bool = False) -> str:
    """A Markdown report: summary, the table, the model's findings, the accepted sizes."""
    out = ["# Model analysis", ""]
    out += [f"- {line}" for line in summary(analysis)]
    out += ["", "| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(analysis, every):
        out.append("| " + " | ".join(row[key].replace("|", "\\|") for key, _ in COLUMNS) + " |")
    out += ["", "## Findings", ""]
    out += [f"- `{f.code}` ({f.severity}): {f.message}" for f in analysis.findings] or ["- none"]
    if scan is not None:
        out += ["", "## Input sizes", ""] + [f"- {line}" for line in sizes_lines(scan)]
    out += ["", _CONVENTIONS, ""]
    return "\n".join(out)


_CONVENTIONS = (
    "Receptive field: input cells per output cell on the unbounded grid (padding counts; "
    "per phase after upsampling, `largest (phases)`); stride: input cells per output cell (`global`: "
    "the axis was pooled away); start: the first cell output 0 reads (−start is the effective padding). "
    "Multiply-adds per sample, a transposed convolution counted as its direct equivalent."
)


def html_page(
    analysis: Analysis,
    scan: SizeScan | None = None,
    every: bool = False,
    title: str = "model",
    pictures: Sequence[str] = (),
) -> str:
    """A self-contained HTML report (no scripts, no external files); ``pictures``: SVG documents to
    show inline (:mod:`convarith.render.fields` draws them)."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>convarith analysis of {esc(title)}</title>",
        "<style>body{font:14px/1.45 system-ui,sans-serif;color:#1B2631;margin:2em auto;max-width:1400px;padding:0 1em}"
        "table{border-collapse:collapse;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid #E3E7EB;"
        "text-align:left;white-space:nowrap}th{background:#F4F6F8;position:sticky;top:0}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}.w{color:#D55E00}.e{color:#B00020;font-weight:600}"
        "figure{display:inline-block;margin:1em 2em 1em 0}</style></head><body>",
        f"<h1>Model analysis: {esc(title)}</h1><ul>",
        *(f"<li>{esc(line)}</li>" for line in summary(analysis)),
        "</ul>",
    ]
    parts += [f"<figure>{svg.split('?>', 1)[-1]}</figure>" for svg in pictures]
    parts.append("<h2>Findings</h2><ul>")
    for f in analysis.findings:
        kind = "e" if f.severity == "error" else "w" if f.severity == "warning" else ""
        parts.append(f"<li class='{kind}'><code>{esc(f.code)}</code> {esc(f.message)}</li>")
    if not analysis.findings:
        parts.append("<li>none</li>")
    parts.append("</ul>")
    if scan is not None:
        parts.append("<h2>Input sizes</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in sizes_lines(scan)) + "</ul>")
    parts.append("<h2>Operations</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for _, h in COLUMNS) + "</tr>")
    numeric = {"params", "macs", "field", "stride", "start"}
    for row in rows(analysis, every):
        cells = "".join(f"<td class='{'n' if key in numeric else ''}'>{esc(row[key])}</td>" for key, _ in COLUMNS)
        parts.append(f"<tr>{cells}</tr>")
    parts += ["</table>", f"<p>{esc(_CONVENTIONS)}</p>", "</body></html>"]
    return "\n".join(parts)
