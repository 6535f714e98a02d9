"""The report as a Word document: A4, 公文 styling (GB/T 9704) in Chinese,
charts embedded as PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Cm, Emu, Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.text.paragraph import Paragraph

from xinfang.reporting.report.blocks import TEXT_WIDTH_CM, Block, Chart, Para, Table, ems
from xinfang.reporting.report.catalogue import Lang
from xinfang.reporting.report.charts import CHART_DPI, chart_png

__all__ = ["write_docx"]


@dataclass(frozen=True)
class _Look:
    """Fonts and sizes, per language. East Asian names are the usual Windows ones
    (仿宋, 黑体, 楷体, 宋体); Word and LibreOffice substitute a similar font where
    one is missing."""

    latin: str
    body_ea: str  # 仿宋: body text
    head_ea: str  # 黑体: 一、 headings, captions
    sub_ea: str  # 楷体: （一） headings
    title_ea: str  # 宋体, bold: the title
    table_ea: str  # 宋体: tables
    body_pt: float
    title_pt: float
    table_pt: float
    line_pt: float  # exact line pitch of body text
    indent_pt: float  # first-line indent of body text (two characters in Chinese)
    bold_heads: bool


_LOOKS: dict[str, _Look] = {
    # GB/T 9704: 3号 (16 pt) 仿宋 body on a fixed 28 pt pitch, 2号 (22 pt) title
    "zh": _Look(
        "Times New Roman", "仿宋", "黑体", "楷体", "宋体", "宋体", 16, 22, 10.5, 28, 32, False
    ),
    "en": _Look("Times New Roman", "仿宋", "黑体", "楷体", "宋体", "宋体", 12, 17, 10, 17, 0, True),
}
_EMU_PER_INCH = 914_400


def _set_fonts(el: BaseOxmlElement, latin: str, east_asian: str) -> None:
    """Set w:rFonts (ascii, hAnsi, cs and eastAsia) on a style, run or rPrDefault,
    dropping the theme fonts, which would otherwise win over the names."""
    rpr = el.find(qn("w:rPr"))
    if rpr is None:
        rpr = OxmlElement("w:rPr")
        el.append(rpr) if el.tag != qn("w:r") else el.insert(0, rpr)
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(qn(attr), latin)
    rfonts.set(qn("w:eastAsia"), east_asian)


class _DocxWriter:
    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.look = _LOOKS[lang]
        self.doc = Document()
        self._page()
        self._styles()
        self._footer()
        self._signed = False
        self._sign_indent: dict[str, float] = {}

    # -- setup --

    def _page(self) -> None:
        sec = self.doc.sections[0]
        sec.page_width, sec.page_height = Cm(21.0), Cm(29.7)
        sec.top_margin, sec.bottom_margin = Cm(3.7), Cm(3.5)
        sec.left_margin, sec.right_margin = Cm(2.8), Cm(2.6)
        sec.header_distance, sec.footer_distance = Cm(1.5), Cm(2.5)

    def _style(
        self, name: str, east: str, size: float, bold: bool = False, base: str = "Normal"
    ) -> ParagraphStyle:
        styles = self.doc.styles
        try:
            st = styles[name]
        except KeyError:
            st = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        assert isinstance(st, ParagraphStyle)
        if name != base:
            st.base_style = styles[base]
        _set_fonts(st.element, self.look.latin, east)
        st.font.size = Pt(size)
        st.font.bold = bold
        st.font.italic = False
        st.font.color.rgb = RGBColor(0, 0, 0)
        return st

    def _styles(self) -> None:
        lk, en = self.look, self.lang == "en"
        defaults = self.doc.styles.element.find(qn("w:docDefaults"))
        rpr_default = None if defaults is None else defaults.find(qn("w:rPrDefault"))
        if rpr_default is not None:
            _set_fonts(rpr_default, lk.latin, lk.body_ea)

        self.normal = self._style("Normal", lk.body_ea, lk.body_pt)
        pf = self.normal.paragraph_format
        pf.space_before, pf.space_after = Pt(0), Pt(6 if en else 0)
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Pt(lk.line_pt)
        pf.first_line_indent = Pt(lk.indent_pt)
        pf.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        pf.widow_control = True

        self.h1 = self._style("Heading 1", lk.head_ea, lk.body_pt + (1 if en else 0), lk.bold_heads)
        self.h2 = self._style("Heading 2", lk.sub_ea, lk.body_pt, lk.bold_heads)
        for st, before in ((self.h1, 14 if en else 0), (self.h2, 8 if en else 0)):
            hpf = st.paragraph_format
            hpf.space_before, hpf.space_after = Pt(before), Pt(3 if en else 0)
            hpf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
            hpf.line_spacing = Pt(lk.line_pt)
            hpf.first_line_indent = Pt(lk.indent_pt)
            hpf.keep_with_next = True
            hpf.alignment = WD_ALIGN_PARAGRAPH.LEFT

        self.title = self._style("XF Title", lk.title_ea, lk.title_pt, bold=True)
        tpf = self.title.paragraph_format
        tpf.alignment = WD_ALIGN_PARAGRAPH.CENTER
        tpf.first_line_indent = Pt(0)
        tpf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        tpf.line_spacing = Pt(round(lk.title_pt * 1.45))
        tpf.space_before, tpf.space_after = Pt(0), Pt(lk.line_pt)

        def compact(st: ParagraphStyle, align: WD_ALIGN_PARAGRAPH) -> None:
            spf = st.paragraph_format
            spf.first_line_indent = Pt(0)
            spf.line_spacing_rule = WD_LINE_SPACING.SINGLE
            spf.space_before = spf.space_after = Pt(0)
            spf.alignment = align

        self.cell = self._style("XF Table", lk.table_ea, lk.table_pt)
        compact(self.cell, WD_ALIGN_PARAGRAPH.CENTER)
        self.caption = self._style("XF Caption", lk.head_ea, lk.table_pt + 1.5, lk.bold_heads)
        compact(self.caption, WD_ALIGN_PARAGRAPH.CENTER)
        self.note = self._style("XF Note", lk.body_ea, lk.table_pt)
        compact(self.note, WD_ALIGN_PARAGRAPH.LEFT)
        self.figure = self._style("XF Figure", lk.body_ea, lk.table_pt)
        compact(self.figure, WD_ALIGN_PARAGRAPH.CENTER)

    def _footer(self) -> None:
        """Page number, centred: — 1 —."""
        p = self.doc.sections[0].footer.paragraphs[0]
        p.style = self.cell
        p.add_run("— ")
        fld = OxmlElement("w:fldSimple")
        fld.set(qn("w:instr"), "PAGE")
        r = OxmlElement("w:r")
        t = OxmlElement("w:t")
        t.text = "1"
        r.append(t)
        fld.append(r)
        p._p.append(fld)
        p.add_run(" —")
        for run in p.runs:
            run.font.size = Pt(12)

    # -- content --

    def add(self, text: str, style: ParagraphStyle) -> Paragraph:
        """A paragraph in a style, by its id: python-docx's own lookup by style
        object scans all styles each time, which dominated the render time."""
        p = self.doc.add_paragraph()
        p._p.style = style.style_id
        if text:
            p.add_run(text)
        return p

    def para(self, b: Para) -> None:
        lk = self.look
        if b.kind == "appendix":
            p = self.add(b.text, self.h1)
            p.paragraph_format.page_break_before = True
            p.paragraph_format.first_line_indent = Pt(0)
        elif b.kind == "sign":
            p = self.add(b.text, self.normal)
            pf = p.paragraph_format
            pf.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            pf.first_line_indent = Pt(0)
            pf.right_indent = Pt(lk.body_pt * self._sign_indent.get(b.text, 0))
            if not self._signed:
                pf.space_before = Pt(lk.line_pt * 2)
                self._signed = True
        else:
            style = {"title": self.title, "h1": self.h1, "h2": self.h2, "note": self.note}
            p = self.add(b.text, style.get(b.kind, self.normal))
        if b.keep_with_next:
            p.paragraph_format.keep_with_next = True

    def table(self, b: Table) -> None:
        cap = self.add(b.caption, self.caption)
        cap.paragraph_format.space_before = Pt(12)
        cap.paragraph_format.space_after = Pt(4)
        cap.paragraph_format.keep_with_next = True
        ncols = len(b.header)
        t = self.doc.add_table(rows=1 + len(b.rows), cols=ncols)
        t.style = self.doc.styles["Table Grid"]
        t.alignment = WD_TABLE_ALIGNMENT.CENTER
        t.autofit = False
        widths = [Cm(w) for w in b.widths]
        # the grid is what LibreOffice reads; the cell widths are what Word reads
        for gc, w in zip(t._tbl.tblGrid.findall(qn("w:gridCol")), widths, strict=True):
            gc.set(qn("w:w"), str(int(w.twips)))
        # a short table stays on one page (with its caption); a long one keeps its
        # header and first rows together
        keep = len(b.rows) if len(b.rows) <= 25 else 2
        for r_i, row in enumerate(t.rows):
            head = r_i == 0
            values = b.header if head else b.rows[r_i - 1]
            bold = head or (r_i - 1) in b.bold_rows
            red = not head and (r_i - 1) in b.flag_rows
            tr_pr = row._tr.get_or_add_trPr()
            if head:
                tr_pr.append(OxmlElement("w:tblHeader"))  # repeat on each page
            cant = OxmlElement("w:cantSplit")
            tr_pr.append(cant)
            row.height = Cm(0.75 if head else 0.62)
            for c_i, (cell, text) in enumerate(zip(row.cells, values, strict=True)):
                cell.width = widths[c_i]
                cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
                p = cell.paragraphs[0]
                p._p.style = self.cell.style_id
                if c_i in b.left and not head:
                    p.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.LEFT
                if r_i <= keep and r_i < len(b.rows):
                    p.paragraph_format.keep_with_next = True
                run = p.add_run(text)
                if bold:
                    run.font.bold = True
                if red:
                    run.font.color.rgb = RGBColor(0xC0, 0, 0)
                if head:
                    _shade(cell._tc, "D9D9D9")
        if b.note:
            note = self.add(b.note, self.note)
            note.paragraph_format.space_before = Pt(3)
            note.paragraph_format.space_after = Pt(8)

    def chart(self, b: Chart) -> None:
        png = chart_png(b)
        width_px = int.from_bytes(png[16:20], "big")  # PNG IHDR
        width = min(Cm(TEXT_WIDTH_CM), Emu(width_px * _EMU_PER_INCH // CHART_DPI))
        p = self.add("", self.figure)
        p.paragraph_format.space_before = Pt(10)
        p.paragraph_format.keep_with_next = True
        p.add_run().add_picture(io.BytesIO(png), width=width)
        cap = self.add(b.caption, self.caption)
        cap.paragraph_format.space_before = Pt(3)
        cap.paragraph_format.space_after = Pt(10)

    def write(self, blocks: Sequence[Block]) -> bytes:
        signs = [b.text for b in blocks if isinstance(b, Para) and b.kind == "sign"]
        if self.lang == "zh" and len(signs) == 2:
            # GB/T 9704: the date four characters in from the right, the office
            # centred over it
            org, day = signs
            self._sign_indent = {day: 4.0, org: max(0.0, 4 + (ems(day) - ems(org)) / 2)}
        for b in blocks:
            if isinstance(b, Para):
                self.para(b)
            elif isinstance(b, Table):
                self.table(b)
            else:
                self.chart(b)
        out = io.BytesIO()
        self.doc.save(out)
        return out.getvalue()


def _shade(tc: BaseOxmlElement, fill: str) -> None:
    tc_pr = tc.find(qn("w:tcPr"))
    if tc_pr is None:
        tc_pr = OxmlElement("w:tcPr")
        tc.insert(0, tc_pr)
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


def write_docx(blocks: Sequence[Block], lang: Lang) -> bytes:
    return _DocxWriter(lang).write(blocks)
