"""Reporting periods: a year ``2026``, a quarter ``2026-Q3``, a month
``2026-07``, all in Asia/Shanghai. One definition for every service that
counts or ranks by period."""

from __future__ import annotations

import re
from datetime import datetime

from xinfang.core.calendar import SHANGHAI

__all__ = ["months_of", "parse_period", "period_keys", "previous_period", "same_period_last_year"]

_PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|0[1-9]|1[0-2]))?$")


def period_keys(at: datetime) -> list[str]:
    local = at.astimezone(SHANGHAI)
    q = (local.month - 1) // 3 + 1
    return [f"{local.year}", f"{local.year}-Q{q}", f"{local.year}-{local.month:02d}"]


def parse_period(period: str) -> str:
    """Normalise and check a period string; raises ValueError naming the forms."""
    if not _PERIOD.match(period.strip()):
        raise ValueError("use YYYY, YYYY-Qn or YYYY-MM")
    return period.strip()


def months_of(period: str) -> list[str]:
    year = period[:4]
    if len(period) == 4:
        return [f"{year}-{m:02d}" for m in range(1, 13)]
    if period[5] == "Q":
        q = int(period[6])
        return [f"{year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
    return [period]


def previous_period(period: str) -> str:
    year = int(period[:4])
    if len(period) == 4:
        return str(year - 1)
    if period[5] == "Q":
        q = int(period[6])
        return f"{year - 1}-Q4" if q == 1 else f"{year}-Q{q - 1}"
    m = int(period[5:])
    return f"{year - 1}-12" if m == 1 else f"{year}-{m - 1:02d}"


def same_period_last_year(period: str) -> str:
    return f"{int(period[:4]) - 1}{period[4:]}"
