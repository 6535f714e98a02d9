"""The report as Markdown: the same text and tables as the .docx, no charts."""

from __future__ import annotations

from collections.abc import Sequence

from xinfang.reporting.report.blocks import Block, Para, Table

__all__ = ["write_markdown"]


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def write_markdown(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Para):
            prefix = {"title": "# ", "h1": "## ", "h2": "### ", "appendix": "## "}.get(b.kind, "")
            if b.kind == "note":
                lines += [f"*{b.text}*", ""]
            else:
                lines += [prefix + b.text.replace("\n", ""), ""]
        elif isinstance(b, Table):
            lines += [f"**{b.caption}**", ""]
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join([":---"] + ["---:"] * (len(b.header) - 1)) + "|")
            for i, row in enumerate(b.rows):
                cells = [_md_cell(x) for x in row]
                if i in b.bold_rows:
                    cells = [f"**{x}**" if x else x for x in cells]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            if b.note:
                lines += [b.note, ""]
    return "\n".join(lines).rstrip() + "\n"
