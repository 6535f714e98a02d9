"""Render a district's period figures as a work report: .docx, Markdown, JSON.

Split by concern: ``catalogue`` (every word, zh and en), ``model`` (the
figures a report states, totals as the sums of their parts), ``sentences``
(the paragraphs and tables built from them), ``blocks`` (what those are),
``charts`` (PNG), ``word`` (.docx) and ``markdown``. The renderers read only
:class:`~xinfang.reporting.figures.ReportFigures`, which is already
aggregated, so a district's year renders in about half a second whatever its
case count, charts included. Needs a CJK font for the charts
(fonts-noto-cjk, see scripts/install.sh).
"""

from __future__ import annotations

import json

from xinfang.reporting.figures import ReportFigures
from xinfang.reporting.report.catalogue import TEXT, lang_of
from xinfang.reporting.report.markdown import write_markdown
from xinfang.reporting.report.sentences import build
from xinfang.reporting.report.word import write_docx

__all__ = ["TEXT", "render_docx", "render_json", "render_markdown"]


def render_json(f: ReportFigures) -> bytes:
    """The figures, their rates and the 三降一好转 indicators as UTF-8 JSON."""
    return json.dumps(f.to_json(), ensure_ascii=False, indent=2).encode("utf-8")


def render_markdown(f: ReportFigures, lang: str = "zh") -> str:
    """The report as Markdown: the same text and tables as the .docx, no charts."""
    return write_markdown(build(f, lang_of(lang)))


def render_docx(f: ReportFigures, lang: str = "zh") -> bytes:
    """The report as a Word document (A4, 公文 styling), charts embedded as PNG."""
    lg = lang_of(lang)
    return write_docx(build(f, lg), lg)
