"""The report as a list of blocks (paragraphs, tables, charts): built once
by ``sentences``, written out by ``word`` (.docx) and ``markdown``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TEXT_WIDTH_CM", "Block", "Chart", "ChartKind", "Para", "ParaKind", "Table", "ems"]

ChartKind = Literal["trend", "channel", "barh"]
ParaKind = Literal["title", "h1", "h2", "p", "note", "sign", "appendix"]


@dataclass(frozen=True)
class Para:
    kind: ParaKind
    text: str
    keep_with_next: bool = False


@dataclass(frozen=True)
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    widths: list[float]  # cm, summing to the text width
    note: str = ""
    left: frozenset[int] = frozenset({0})  # columns of names, left-aligned
    bold_rows: frozenset[int] = frozenset()  # totals, the bottom place
    flag_rows: frozenset[int] = frozenset()  # shown in red: the bottom place


@dataclass(frozen=True)
class Chart:
    caption: str
    kind: ChartKind
    labels: list[str]  # categories: months, channels, names
    values: list[int]
    texts: list[str]  # the value printed on each bar, formatted as in the text
    unit: str  # e.g. 单位：件
    big: int  # numbers from here on get thousands separators


Block = Para | Table | Chart

# A4, margins as in GB/T 9704 (top 3.7, bottom 3.5, left 2.8, right 2.6 cm)
TEXT_WIDTH_CM = 21.0 - 2.8 - 2.6


def ems(text: str) -> float:
    """Width in full-width characters: ASCII counts half."""
    return sum(0.5 if ord(ch) < 128 else 1.0 for ch in text)
