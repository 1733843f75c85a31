"""A tiny document model for explanations, rendered to terminal text, Markdown and HTML.

Explanations are built once as a list of blocks and written three ways, so the terminal, the
Markdown report and the HTML report can never say different things.

Examples
--------
>>> doc = Document("Demo")
>>> doc.para("Two plus two is ", Code("4"), ".")
>>> doc.grid([["a", "b"], ["c", "d"]], caption="a grid")
>>> print(to_markdown(doc))
# Demo
<BLANKLINE>
Two plus two is `4`.
<BLANKLINE>
```text
a b
c d
```
*a grid*
<BLANKLINE>
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Block",
    "Check",
    "Code",
    "Document",
    "Heading",
    "Image",
    "Paragraph",
    "Preformatted",
    "Table",
    "to_html",
    "to_markdown",
    "to_text",
]


@dataclass(frozen=True)
class Code:
    """An inline code span inside a paragraph."""

    text: str


@dataclass(frozen=True)
class Check:
    """A numeric check: what was compared, the max abs error, and the bound it must respect.

    ``expect="within"`` passes when the error is at most ``tolerance`` (two routes agree);
    ``expect="beyond"`` passes when it exceeds it (a wrong route is shown to be wrong).
    """

    what: str
    error: float
    tolerance: float
    expect: Literal["within", "beyond"] = "within"

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance if self.expect == "within" else self.error > self.tolerance

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        bound = f"tolerance {self.tolerance:.3g}" if self.expect == "within" else f"must exceed {self.tolerance:.3g}"
        return f"{verdict}: {self.what}: max abs error {self.error:.3g} ({bound})"


Inline = str | Code


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]
    style: Literal["plain", "note", "claim"] = "plain"


@dataclass(frozen=True)
class Preformatted:
    text: str
    caption: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: str
    caption: str = ""


Block = Heading | Paragraph | Preformatted | Table | Image | Check


@dataclass
class Document:
    """An ordered list of blocks under a title, and the facts behind them as plain data."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)
    """JSON-ready facts the blocks were written from (an explanation's layer, shapes, formulas, findings)."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the title, every block as a dict (``type`` first), the checks' tally, and :attr:`data`.

        >>> doc = Document("Demo")
        >>> doc.para("x = ", Code("1"))
        >>> _ = doc.check("two routes agree", 0.0, 1e-12)
        >>> d = doc.to_dict()
        >>> d["blocks"][0], d["checks"]
        ({'type': 'paragraph', 'style': 'plain', 'text': 'x = 1', 'parts': [{'text': 'x = ', 'code': False}, \
{'text': '1', 'code': True}]}, {'passed': 1, 'total': 1})
        """
        return {
            "title": self.title,
            "blocks": [_block_dict(b) for b in self.blocks],
            "checks": {"passed": sum(c.passed for c in self.checks), "total": len(self.checks)},
            **self.data,
        }

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(text, level))

    def para(self, *parts: Inline, style: Literal["plain", "note", "claim"] = "plain") -> None:
        self.blocks.append(Paragraph(tuple(parts), style))

    def pre(self, text: str, caption: str = "") -> None:
        self.blocks.append(Preformatted(text, caption))

    def grid(self, cells: list[list[str]], caption: str = "") -> None:
        """A 2-d grid of short labels, columns aligned."""
        width = max((len(c) for row in cells for c in row), default=1)
        self.pre("\n".join(" ".join(c.rjust(width) for c in row) for row in cells), caption)

    def table(self, headers: list[str], rows: list[list[str]], caption: str = "") -> None:
        self.blocks.append(Table(tuple(headers), tuple(tuple(r) for r in rows), caption))

    def image(self, path: str, caption: str = "") -> None:
        self.blocks.append(Image(path, caption))

    def check(self, what: str, error: float, tolerance: float, expect: Literal["within", "beyond"] = "within") -> Check:
        result = Check(what, float(error), tolerance, expect)
        self.blocks.append(result)
        return result

    @property
    def checks(self) -> list[Check]:
        return [b for b in self.blocks if isinstance(b, Check)]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _block_dict(block: Block) -> dict[str, object]:
    if isinstance(block, Heading):
        return {"type": "heading", "text": block.text, "level": block.level}
    if isinstance(block, Paragraph):
        parts = [
            {"text": p.text, "code": True} if isinstance(p, Code) else {"text": p, "code": False} for p in block.parts
        ]
        text = "".join(p.text if isinstance(p, Code) else p for p in block.parts)
        return {"type": "paragraph", "style": block.style, "text": text, "parts": parts}
    if isinstance(block, Preformatted):
        return {"type": "preformatted", "text": block.text, "caption": block.caption}
    if isinstance(block, Table):
        return {
            "type": "table",
            "headers": list(block.headers),
            "rows": [list(r) for r in block.rows],
            "caption": block.caption,
        }
    if isinstance(block, Image):
        return {"type": "image", "path": block.path, "caption": block.caption}
    return {
        "type": "check",
        "what": block.what,
        "error": _finite(block.error),
        "tolerance": block.tolerance,
        "expect": block.expect,
        "passed": block.passed,
    }


def _inline_md(parts: tuple[Inline, ...]) -> str:
    return "".join(f"`{p.text}`" if isinstance(p, Code) else p for p in parts)


def to_markdown(doc: Document) -> str:
    """GitHub-flavoured Markdown."""
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            prefix = {"plain": "", "note": "> ", "claim": "**Claim.** "}[block.style]
            out += [prefix + _inline_md(block.parts), ""]
        elif isinstance(block, Preformatted):
            out += ["```text", block.text, "```"] + ([f"*{block.caption}*"] if block.caption else []) + [""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            out += ["| " + " | ".join(row) + " |" for row in block.rows]
            out += ([f"*{block.caption}*"] if block.caption else []) + [""]
        elif isinstance(block, Image):
            out += [f"![{block.caption}]({block.path})", ""]
        else:
            out += [f"{'✅' if block.passed else '❌'} {block}", ""]
    return "\n".join(out)


_CSS = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
pre { background: #f5f5f2; padding: .8rem 1rem; border-radius: 6px; overflow-x: auto; line-height: 1.25; }
code { background: #f0f0ea; padding: 0 .25em; border-radius: 3px; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .6rem; text-align: right; font-variant-numeric: tabular-nums; }
.caption { color: #555; font-style: italic; margin-top: -.4rem; }
.note { border-left: 4px solid #0072B2; padding-left: .8rem; color: #333; }
.check { font-family: ui-monospace, monospace; padding: .3rem .6rem; border-radius: 4px; }
.pass { background: #e6f4ea; } .fail { background: #fde8e8; }
img { max-width: 100%; }
"""


def _inline_html(parts: tuple[Inline, ...]) -> str:
    return "".join(f"<code>{html.escape(p.text)}</code>" if isinstance(p, Code) else html.escape(p) for p in parts)


def to_html(doc: Document) -> str:
    """A self-contained HTML page."""
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            cls = {"plain": "", "note": ' class="note"', "claim": ' class="claim"'}[block.style]
            lead = "<strong>Claim.</strong> " if block.style == "claim" else ""
            out.append(f"<p{cls}>{lead}{_inline_html(block.parts)}</p>")
        elif isinstance(block, Preformatted):
            out.append(f"<pre>{html.escape(block.text)}</pre>")
            if block.caption:
                out.append(f'<p class="caption">{html.escape(block.caption)}</p>')
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            if block.caption:
                out.append(f'<p class="caption">{html.escape(block.caption)}</p>')
        elif isinstance(block, Image):
            out.append(f'<figure><img src="{html.escape(block.path)}" alt="{html.escape(block.caption)}">')
            out.append(f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
        else:
            cls = "pass" if block.passed else "fail"
            out.append(f'<p class="check {cls}">{html.escape(str(block))}</p>')
    out.append("</body></html>")
    return "\n".join(out)


def to_text(doc: Document) -> str:
    """Plain text for terminals (Markdown-ish, without markup)."""
    out = [doc.title, "=" * len(doc.title), ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += [block.text, ("-" if block.level == 2 else "·") * len(block.text), ""]
        elif isinstance(block, Paragraph):
            prefix = {"plain": "", "note": "note: ", "claim": "Claim: "}[block.style]
            out += [prefix + "".join(p.text if isinstance(p, Code) else p for p in block.parts), ""]
        elif isinstance(block, Preformatted):
            out += ["    " + line for line in block.text.splitlines()]
            out += ([f"    ({block.caption})"] if block.caption else []) + [""]
        elif isinstance(block, Table):
            widths = [max(len(x) for x in col) for col in zip(block.headers, *block.rows, strict=True)]
            out.append("  ".join(h.rjust(w) for h, w in zip(block.headers, widths, strict=True)))
            out += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in block.rows]
            out += ([f"({block.caption})"] if block.caption else []) + [""]
        elif isinstance(block, Image):
            out += [f"[picture: {block.path}] {block.caption}", ""]
        else:
            out += [str(block), ""]
    return "\n".join(out)
