"""The report's charts as PNG: matplotlib's object API on Agg (no pyplot
state), one CJK font family for all text. Without a CJK font the charts
still render, warning-free (the labels come out as boxes)."""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from xinfang.reporting.report.blocks import Chart

__all__ = ["CHART_DPI", "chart_png"]

# Chinese-capable families, best first; fonts-noto-cjk provides the first.
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Noto Serif CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
)
_CJK_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
CHART_DPI = 150
_BLUE = "#2F5597"
_GREY = "#595959"


@functools.cache
def _cjk_family() -> str | None:
    """A CJK font family matplotlib has, or None. Looked up by name in matplotlib's
    font list (so it never logs 'findfont: not found'); fonts installed after that
    list was cached are added from their usual paths."""

    def known() -> set[str]:
        return {e.name for e in font_manager.fontManager.ttflist}

    names = known()
    for fam in _CJK_FAMILIES:
        if fam in names:
            return fam
    for path in _CJK_FILES:
        if Path(path).exists():
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    names = known()
    return next((fam for fam in _CJK_FAMILIES if fam in names), None)


def chart_png(ch: Chart) -> bytes:
    """One chart as a PNG at CHART_DPI. Uses matplotlib's object API (no pyplot,
    so no global list of figures to leak into) and one CJK font family, chosen
    once, for all text."""
    fam = _cjk_family()
    rc = {
        "font.family": "sans-serif",
        "font.sans-serif": ([fam] if fam else []) + ["DejaVu Sans"],
        "font.size": 9,
        "axes.unicode_minus": False,
        "axes.edgecolor": "#A6A6A6",
        "axes.linewidth": 0.6,
        "xtick.color": _GREY,
        "ytick.color": _GREY,
        "xtick.major.size": 0,
        "ytick.major.size": 0,
    }
    with warnings.catch_warnings():
        if fam is None:
            # No CJK font at all: Chinese labels come out as boxes, and matplotlib
            # warns per glyph. The chart is still worth having; the warning is not.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        with rc_context(rc):  # type: ignore[arg-type]
            return _draw(ch)


def _draw(ch: Chart) -> bytes:
    values = ch.values
    vmax = max(values) if values else 0
    ink = "#262626"
    if ch.kind == "barh":
        # labelled bars, largest on top; the values say it all, so no value axis
        fig = Figure(figsize=(6.2, 0.35 + 0.3 * len(values)), dpi=CHART_DPI)
        ax = fig.add_subplot()
        ys = list(range(len(values)))
        bars = ax.barh(ys, values, color=_BLUE, height=0.62)
        ax.set_yticks(ys, ch.labels)
        ax.invert_yaxis()
        ax.bar_label(bars, ch.texts, padding=3, fontsize=8, color=ink)
        ax.set_xlim(0, vmax * 1.3 if vmax else 1)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="y", labelsize=9, colors=ink)
    else:
        fig = Figure(figsize=(6.2, 2.8), dpi=CHART_DPI)
        ax = fig.add_subplot()
        xs = list(range(len(values)))
        bars = ax.bar(xs, values, color=_BLUE, width=0.62 if ch.kind == "trend" else 0.5)
        ax.set_xticks(xs, ch.labels)
        ax.bar_label(bars, ch.texts, padding=2, fontsize=8, color=ink)
        ax.set_ylim(0, vmax * 1.18 if vmax else 1)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.yaxis.grid(True, color="#E7E6E6", linewidth=0.6)
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= ch.big else f"{v:.0f}")
        )
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="x", labelsize=9, colors=ink)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(ch.unit, loc="left", fontsize=8, color=_GREY, pad=4)
    ax.set_axisbelow(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CHART_DPI, bbox_inches="tight", pad_inches=0.06)
    return buf.getvalue()
