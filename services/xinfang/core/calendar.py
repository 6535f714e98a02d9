"""When a statutory period ends, on China's official working calendar.

Rules (Civil Code Arts. 201 and 203, which administrative practice follows):

* the day the period starts on is not counted; counting begins the next day;
* a period ends at 24:00 of its last day, Asia/Shanghai; we return that
  instant as 00:00 of the following day, so "due" means "late from then on";
* calendar-day period: if its last day is a rest day (a public holiday, or a
  weekend day that is not a make-up working day, 调休), it ends on the next
  working day instead;
* working-day period: only working days are counted.

Whether a day is a working day, first source that knows it wins:

1. the district's own rest and working days (its document);
2. a year's arrangement an operator loaded for the whole platform
   (``xinfang calendar load``), when the State Council's notice is out before
   the libraries have it, or to correct them;
3. ``chinese_calendar``, which follows the State Council's yearly notices;
4. ``lunar_python``'s holiday table, a second, independently kept copy of the
   same notices, for a year the first does not know yet;
5. for a year nobody knows yet, an estimate: the statutory holidays of
   《全国年节及纪念日放假办法》 (as amended in 2024), whose lunar and
   solar-term dates ``lunar_python`` computes, are rest days, and so are
   Saturdays and Sundays. What only the yearly notice says (the make-up working
   days and the days a holiday is stretched by) is unknown, so every deadline
   that touched such a day is marked *estimated*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
from lunar_python import Lunar, Solar
from lunar_python.util import HolidayUtil

from xinfang.core.errors import InvalidArgument

__all__ = [
    "SHANGHAI",
    "STATUTE",
    "Arrangement",
    "Arrangements",
    "DayType",
    "Deadline",
    "Source",
    "WorkCalendar",
    "compute_deadline",
    "library_source",
    "parse_arrangement",
    "statutory_holidays",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUTE = "《全国年节及纪念日放假办法》(2024 年修订)"
# the amended regulation is in force from 1 January 2025; earlier years had
# other holidays, and both libraries know every one of them
FIRST_AMENDED_YEAR = 2025


class DayType(StrEnum):
    CALENDAR = "calendar"
    WORKING = "working"


class Source(StrEnum):
    """Who decided whether a day is a working day."""

    DISTRICT = "district"
    LOADED = "loaded"
    CHINESE_CALENDAR = "chinese-calendar"
    LUNAR_PYTHON = "lunar-python"
    ESTIMATE = "estimate"


# ---- the statute ----------------------------------------------------------------


def _lunar(year: int, month: int, day: int) -> date:
    s = Lunar.fromYmd(year, month, day).getSolar()
    return date(s.getYear(), s.getMonth(), s.getDay())


def _qingming(year: int) -> date:
    """The solar term 清明 of ``year`` (lunar_python computes the terms)."""
    s = Solar.fromYmd(year, 4, 1).getLunar().getJieQiTable()["清明"]
    return date(s.getYear(), s.getMonth(), s.getDay())


@lru_cache(maxsize=256)
def statutory_holidays(year: int) -> Mapping[date, str]:
    """The rest days the national regulation fixes for every year, whatever the
    yearly notice adds (Art. 2, as amended in 2024): New Year's Day (1 day),
    Spring Festival (the eve and the first three days), Qingming, Labour Day
    (1-2 May), Dragon Boat (5th of the 5th month), Mid-Autumn (15th of the 8th
    month) and National Day (1-3 October)."""
    if year < FIRST_AMENDED_YEAR:
        raise ValueError(f"{year}: the amended regulation applies from {FIRST_AMENDED_YEAR}")
    out: dict[date, str] = {}

    def add(d: date, name: str) -> None:
        out[d] = f"{out[d]}、{name}" if d in out else name

    add(date(year, 1, 1), "元旦")
    new_year = _lunar(year, 1, 1)
    for offset in (-1, 0, 1, 2):  # the eve, then the first three days
        add(new_year + timedelta(days=offset), "春节")
    add(_qingming(year), "清明节")
    add(date(year, 5, 1), "劳动节")
    add(date(year, 5, 2), "劳动节")
    add(_lunar(year, 5, 5), "端午节")
    add(_lunar(year, 8, 15), "中秋节")
    for day in (1, 2, 3):
        add(date(year, 10, day), "国庆节")
    return dict(sorted(out.items()))


# ---- the libraries ----------------------------------------------------------------


@lru_cache(maxsize=64)
def _second_year(year: int) -> Mapping[date, bool] | None:
    """lunar_python's copy of a year's notice: day -> working day; None when it
    has no notice for the year."""
    days = HolidayUtil.getHolidays(year)
    if not days:
        return None
    return {date.fromisoformat(h.getDay()): bool(h.isWork()) for h in days}


@lru_cache(maxsize=16384)
def _library(d: date) -> tuple[bool, Source] | None:
    """(working day, source) from the libraries; None when neither knows the year."""
    try:
        return bool(chinese_calendar.is_workday(d)), Source.CHINESE_CALENDAR
    except NotImplementedError:
        pass
    second = _second_year(d.year)
    if second is None:
        return None
    return second.get(d, d.weekday() < 5), Source.LUNAR_PYTHON


def library_source(year: int) -> Source | None:
    """Which library knows ``year``'s notice, if one does."""
    found = _library(date(year, 7, 1))
    return None if found is None else found[1]


def _estimate(d: date) -> bool:
    if d.year >= FIRST_AMENDED_YEAR and d in statutory_holidays(d.year):
        return False
    return d.weekday() < 5


# ---- a year's arrangement, loaded by an operator ----------------------------------


@dataclass(frozen=True)
class Arrangement:
    """One year's State Council arrangement (放假调休安排): its rest days and its
    make-up working days. Days it does not name follow the week. It may name a
    few days of late December of the year before (a New Year holiday that
    starts on 30 December)."""

    year: int
    rest_days: frozenset[date]
    working_days: frozenset[date]
    source: str
    version: int = 0
    loaded_by: str = ""
    loaded_at: str = ""

    def decides(self, d: date) -> bool | None:
        if d in self.rest_days:
            return False
        if d in self.working_days:
            return True
        if d.year == self.year:
            return d.weekday() < 5
        return None


@dataclass(frozen=True)
class Arrangements:
    """Every year's arrangement loaded for the platform; a day a loaded year
    names beats the week rule of the year it falls in."""

    years: tuple[Arrangement, ...] = ()

    def decides(self, d: date) -> bool | None:
        for a in self.years:
            if d in a.rest_days or d in a.working_days:
                return a.decides(d)
        for a in self.years:
            if a.year == d.year:
                return a.decides(d)
        return None

    def get(self, year: int) -> Arrangement | None:
        return next((a for a in self.years if a.year == year), None)


_ARRANGEMENT_KEYS = {"year", "source", "holidays", "note"}
_HOLIDAY_KEYS = {"name", "from", "to", "work"}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _day(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidArgument(where, f"{value!r} is not a date (YYYY-MM-DD)") from None


def parse_arrangement(doc: Any) -> Arrangement:
    """Validate a year's arrangement as written from the notice::

        {"year": 2027, "source": "国务院办公厅关于2027年部分节假日安排的通知",
         "holidays": [{"name": "春节", "from": "2027-02-05", "to": "2027-02-12",
                       "work": ["2027-02-20"]}, ...]}

    ``from``..``to`` are the days off, both included; ``work`` the make-up
    working days (调休上班) that go with them. Refused, naming the field: a
    day outside the year (late December of the year before excepted), a
    make-up day that is not a Saturday or Sunday, a day both off and at
    work, and a statutory holiday that no holiday of the file rests on (a
    wrong year, or a typo)."""
    if not isinstance(doc, dict):
        raise InvalidArgument("calendar", "must be a JSON object with year, source, holidays")
    unknown = sorted(set(doc) - _ARRANGEMENT_KEYS)
    if unknown:
        raise InvalidArgument(unknown[0], f"unknown key (expected {sorted(_ARRANGEMENT_KEYS)})")
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool):
        raise InvalidArgument("year", "is required, a whole number such as 2027")
    if not FIRST_AMENDED_YEAR <= year <= 2100:
        raise InvalidArgument(
            "year", f"must be {FIRST_AMENDED_YEAR}..2100 (earlier years: the libraries know them)"
        )
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidArgument("source", "is required: the notice the arrangement is from")
    holidays = doc.get("holidays")
    if not isinstance(holidays, list) or not holidays:
        raise InvalidArgument("holidays", "is required: a list of {name, from, to, work}")
    first, last = date(year - 1, 12, 1), date(year, 12, 31)
    rest: dict[date, str] = {}
    work: dict[date, str] = {}
    for i, h in enumerate(holidays):
        where = f"holidays[{i}]"
        if not isinstance(h, dict):
            raise InvalidArgument(where, "must be an object {name, from, to, work}")
        unknown = sorted(set(h) - _HOLIDAY_KEYS)
        if unknown:
            raise InvalidArgument(f"{where}.{unknown[0]}", "unknown key")
        name = h.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument(f"{where}.name", "is required")
        start, end = _day(h.get("from"), f"{where}.from"), _day(h.get("to"), f"{where}.to")
        if end < start:
            raise InvalidArgument(f"{where}.to", f"{end} is before from ({start})")
        if (end - start).days > 15:
            raise InvalidArgument(f"{where}.to", "a holiday of more than 16 days: check the dates")
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        if not isinstance(h.get("work", []), list):
            raise InvalidArgument(f"{where}.work", "must be a list of dates")
        make_up = [_day(w, f"{where}.work[{j}]") for j, w in enumerate(h.get("work", []))]
        for d, field_name in [*((d, f"{where}.from") for d in days),
                              *((d, f"{where}.work") for d in make_up)]:  # fmt: skip
            if not first <= d <= last:
                raise InvalidArgument(
                    field_name, f"{d} is outside {year} (of {year - 1}, only December)"
                )
        for d in days:
            if d in rest:
                raise InvalidArgument(f"{where}.from", f"{d} is already off for {rest[d]}")
            rest[d] = name
        for j, d in enumerate(make_up):
            if d.weekday() < 5:
                raise InvalidArgument(
                    f"{where}.work[{j}]",
                    f"{d} is a {_WEEKDAYS[d.weekday()]}; a make-up working day (调休上班) "
                    "is a Saturday or a Sunday",
                )
            work[d] = name
    for d in work:
        if d in rest:
            raise InvalidArgument("holidays", f"{d} is both a day off ({rest[d]}) and at work")
    missing = [(d, n) for d, n in statutory_holidays(year).items() if d not in rest]
    if missing:
        d, n = missing[0]
        raise InvalidArgument(
            "holidays",
            f"{d} ({n}) is a statutory holiday under {STATUTE} but no holiday of the file "
            f"rests on it; {len(missing)} such day(s) in all",
        )
    return Arrangement(year, frozenset(rest), frozenset(work), source.strip())


# ---- the calendar a district counts on ---------------------------------------------


@dataclass(frozen=True)
class WorkCalendar:
    extra_rest_days: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)
    # the platform's loaded arrangements, attached by the directory
    loaded: Arrangements = field(default_factory=Arrangements)

    @classmethod
    def with_overrides(
        cls, rest: Iterable[date] = (), working: Iterable[date] = ()
    ) -> WorkCalendar:
        return cls(frozenset(rest), frozenset(working))

    def with_arrangements(self, loaded: Arrangements) -> WorkCalendar:
        return self if loaded == self.loaded else replace(self, loaded=loaded)

    def day(self, d: date) -> tuple[bool, Source]:
        """(working day, who decided)."""
        if d in self.extra_rest_days:
            return False, Source.DISTRICT
        if d in self.extra_working_days:
            return True, Source.DISTRICT
        loaded = self.loaded.decides(d)
        if loaded is not None:
            return loaded, Source.LOADED
        return _library(d) or (_estimate(d), Source.ESTIMATE)

    def is_estimated(self, d: date) -> bool:
        return self.day(d)[1] is Source.ESTIMATE

    def is_working_day(self, d: date) -> bool:
        return self.day(d)[0]

    def next_working_day(self, d: date) -> date:
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d


@dataclass(frozen=True)
class Deadline:
    last_day: date  # the period's last day, Asia/Shanghai
    due_at: datetime  # 24:00 of last_day, i.e. 00:00 of the day after, Asia/Shanghai
    estimated: bool  # some day involved fell in a year no source knows yet


def compute_deadline(start: datetime, days: int, day_type: DayType, cal: WorkCalendar) -> Deadline:
    if start.tzinfo is None:
        raise ValueError("start must be zone-aware")
    if days < 1:
        raise ValueError("a period has at least one day")
    start_day = start.astimezone(SHANGHAI).date()
    estimated = False
    if day_type is DayType.CALENDAR:
        last = start_day + timedelta(days=days)
        working, source = cal.day(last)
        estimated = source is Source.ESTIMATE
        while not working:
            last += timedelta(days=1)
            working, source = cal.day(last)
            estimated = estimated or source is Source.ESTIMATE
    else:
        last = start_day
        counted = 0
        while counted < days:
            last += timedelta(days=1)
            working, source = cal.day(last)
            estimated = estimated or source is Source.ESTIMATE
            counted += working
    due = datetime.combine(last + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    return Deadline(last_day=last, due_at=due, estimated=estimated)
