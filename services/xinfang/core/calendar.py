"""When a statutory period ends, on China's official working calendar.

Rules (Civil Code Arts. 201 and 203, which administrative practice follows):

* the day the period starts on is not counted; counting begins the next day;
* a period ends at 24:00 of its last day, Asia/Shanghai; we return that
  instant as 00:00 of the following day, so "due" means "late from then on";
* calendar-day period: if its last day is a rest day (a public holiday, or a
  weekend day that is not a make-up working day, 调休), it ends on the next
  working day instead;
* working-day period: only working days are counted.

Official arrangements come from the ``chinese_calendar`` package, which
follows the State Council's yearly notices. A district may add local rest
days or working days. For a year the package has no data for yet (the notice
for year N comes out late in year N-1), the stated rule is: Monday-Friday are
working days, Saturday and Sunday rest days, and every date so computed is
marked *estimated* so callers can show it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["SHANGHAI", "DayType", "Deadline", "WorkCalendar", "compute_deadline"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


class DayType(StrEnum):
    CALENDAR = "calendar"
    WORKING = "working"


@lru_cache(maxsize=16384)
def _official(d: date) -> bool | None:
    """True: working day; False: rest day; None: no official data for the year."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    extra_rest_days: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def with_overrides(
        cls, rest: Iterable[date] = (), working: Iterable[date] = ()
    ) -> WorkCalendar:
        return cls(frozenset(rest), frozenset(working))

    def is_estimated(self, d: date) -> bool:
        return (
            d not in self.extra_rest_days
            and d not in self.extra_working_days
            and _official(d) is None
        )

    def is_working_day(self, d: date) -> bool:
        if d in self.extra_rest_days:
            return False
        if d in self.extra_working_days:
            return True
        official = _official(d)
        if official is None:
            return d.weekday() < 5
        return official

    def next_working_day(self, d: date) -> date:
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d


@dataclass(frozen=True)
class Deadline:
    last_day: date  # the period's last day, Asia/Shanghai
    due_at: datetime  # 24:00 of last_day, i.e. 00:00 of the day after, Asia/Shanghai
    estimated: bool  # some day involved fell in a year without official data


def compute_deadline(start: datetime, days: int, day_type: DayType, cal: WorkCalendar) -> Deadline:
    if start.tzinfo is None:
        raise ValueError("start must be zone-aware")
    if days < 1:
        raise ValueError("a period has at least one day")
    start_day = start.astimezone(SHANGHAI).date()
    estimated = False
    if day_type is DayType.CALENDAR:
        last = start_day + timedelta(days=days)
        estimated = cal.is_estimated(last)
        while not cal.is_working_day(last):
            last += timedelta(days=1)
            estimated = estimated or cal.is_estimated(last)
    else:
        last = start_day
        counted = 0
        while counted < days:
            last += timedelta(days=1)
            estimated = estimated or cal.is_estimated(last)
            if cal.is_working_day(last):
                counted += 1
    due = datetime.combine(last + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    return Deadline(last_day=last, due_at=due, estimated=estimated)
