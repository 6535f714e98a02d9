"""Years no library knows yet, and years an operator loaded.

The statutory holidays below are worked out by hand from 《全国年节及纪念日放
假办法》 as amended in 2024 (New Year 1 day; Spring Festival the eve and days
1-3; Qingming; Labour Day 1-2 May; Dragon Boat; Mid-Autumn; National Day 1-3
October) and the almanac's dates for 2027 and 2028 (Chinese New Year
2027-02-06 and 2028-01-26; 清明 2027-04-05 and 2028-04-04; 端午 2027-06-09 and
2028-05-28; 中秋 2027-09-15 and 2028-10-03), not recomputed with the library.

The 2027 arrangement loaded here is a made-up one in the notice's shape, not
the State Council's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar
import pytest

from xinfang.core import calendar as calmod
from xinfang.core.calendar import (
    SHANGHAI,
    Arrangements,
    DayType,
    Source,
    WorkCalendar,
    compute_deadline,
    library_source,
    parse_arrangement,
    statutory_holidays,
)
from xinfang.core.errors import InvalidArgument

CAL = WorkCalendar()


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 10, 0, tzinfo=SHANGHAI)


def _days(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=n) for n in range((b - a).days + 1)]


# --- the statute, on the almanac ----------------------------------------------


def test_statutory_holidays_of_2027() -> None:
    assert dict(statutory_holidays(2027)) == {
        date(2027, 1, 1): "元旦",
        date(2027, 2, 5): "春节",  # the eve (除夕), a Friday
        date(2027, 2, 6): "春节",
        date(2027, 2, 7): "春节",
        date(2027, 2, 8): "春节",
        date(2027, 4, 5): "清明节",
        date(2027, 5, 1): "劳动节",
        date(2027, 5, 2): "劳动节",
        date(2027, 6, 9): "端午节",
        date(2027, 9, 15): "中秋节",
        date(2027, 10, 1): "国庆节",
        date(2027, 10, 2): "国庆节",
        date(2027, 10, 3): "国庆节",
    }


def test_statutory_holidays_of_2028() -> None:
    days = statutory_holidays(2028)
    assert [d for d, n in days.items() if n == "春节"] == _days("2028-01-25", "2028-01-28")
    assert days[date(2028, 4, 4)] == "清明节"
    assert days[date(2028, 5, 28)] == "端午节"
    assert days[date(2028, 10, 3)] == "中秋节、国庆节"  # Mid-Autumn falls on National Day
    assert len(days) == 12


def test_years_before_the_amendment_are_not_estimated_from_it() -> None:
    with pytest.raises(ValueError, match="2025"):
        statutory_holidays(2024)


# --- deadlines in an estimated year --------------------------------------------


def test_30_day_window_from_2_december_2026_skips_new_years_day() -> None:
    # Wed 2026-12-02 + 30 days = Fri 2027-01-01, New Year's Day; Sat 2, Sun 3
    # rest: the window ends Mon 2027-01-04, and says it is estimated
    dl = compute_deadline(_at(date(2026, 12, 2)), 30, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2027, 1, 4)
    assert dl.estimated is True


def test_60_day_clock_ending_on_spring_festival_eve_2027_moves_past_the_festival() -> None:
    # Mon 2026-12-07 + 60 days = Fri 2027-02-05, the eve; 6-8 festival and
    # weekend: due on Tue 2027-02-09
    dl = compute_deadline(_at(date(2026, 12, 7)), 60, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2027, 2, 9)
    assert dl.estimated is True


def test_working_days_skip_spring_festival_2027() -> None:
    # from Thu 2027-02-04: Fri 5 .. Mon 8 off; Tue 9 (1) .. Fri 12 (4), Mon 15 (5)
    dl = compute_deadline(_at(date(2027, 2, 4)), 5, DayType.WORKING, CAL)
    assert dl.last_day == date(2027, 2, 15)
    assert dl.estimated is True


@pytest.mark.parametrize(
    ("holiday", "after"),
    [
        (date(2027, 4, 5), date(2027, 4, 6)),  # Qingming, a Monday
        (date(2027, 5, 1), date(2027, 5, 3)),  # Labour Day, Sat and Sun
        (date(2027, 6, 9), date(2027, 6, 10)),  # Dragon Boat, a Wednesday
        (date(2027, 9, 15), date(2027, 9, 16)),  # Mid-Autumn, a Wednesday
        (date(2027, 10, 1), date(2027, 10, 4)),  # National Day, Fri to Sun
    ],
)
def test_a_period_ending_on_a_2027_statutory_holiday_ends_after_it(
    holiday: date, after: date
) -> None:
    dl = compute_deadline(_at(holiday - timedelta(days=15)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == after
    assert dl.estimated is True


# --- the libraries ----------------------------------------------------------------


def test_the_libraries_know_2026_and_not_2027() -> None:
    assert library_source(2026) is Source.CHINESE_CALENDAR
    assert library_source(2027) is None
    assert CAL.day(date(2026, 2, 14)) == (True, Source.CHINESE_CALENDAR)  # a make-up Saturday


def test_the_second_source_agrees_with_the_first_on_recent_years() -> None:
    # the two copies of the State Council's notices, day by day
    differ = []
    for d in _days("2020-01-01", "2026-12-31"):
        second = calmod._second_year(d.year)
        assert second is not None
        if second.get(d, d.weekday() < 5) != chinese_calendar.is_workday(d):
            differ.append(d)
    assert differ == []


@pytest.fixture
def first_source_without_2026(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = chinese_calendar.is_workday

    def is_workday(d: date) -> bool:
        if d.year == 2026:
            raise NotImplementedError("no data for 2026")
        return bool(real(d))

    monkeypatch.setattr(chinese_calendar, "is_workday", is_workday)
    calmod._library.cache_clear()
    yield
    calmod._library.cache_clear()


@pytest.mark.usefixtures("first_source_without_2026")
def test_the_second_source_serves_a_year_the_first_does_not_know() -> None:
    assert CAL.day(date(2026, 2, 14)) == (True, Source.LUNAR_PYTHON)  # make-up Saturday
    assert CAL.day(date(2026, 2, 23)) == (False, Source.LUNAR_PYTHON)  # Spring Festival Monday
    # Sun 2026-02-01 + 15 days -> Mon 16 (holiday) -> Tue 2026-02-24, not estimated
    dl = compute_deadline(_at(date(2026, 2, 1)), 15, DayType.CALENDAR, CAL)
    assert (dl.last_day, dl.estimated) == (date(2026, 2, 24), False)


# --- an arrangement loaded by an operator ------------------------------------------


def _notice_2027(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "year": 2027,
        "source": "test: made-up 2027 arrangement",
        "holidays": [
            {"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
            {"name": "春节", "from": "2027-02-05", "to": "2027-02-12", "work": ["2027-02-20"]},
            {"name": "清明节", "from": "2027-04-03", "to": "2027-04-05"},
            {"name": "劳动节", "from": "2027-05-01", "to": "2027-05-05", "work": ["2027-05-08"]},
            {"name": "端午节", "from": "2027-06-09", "to": "2027-06-09"},
            {"name": "中秋节", "from": "2027-09-15", "to": "2027-09-15"},
            {"name": "国庆节", "from": "2027-10-01", "to": "2027-10-07",
             "work": ["2027-09-26", "2027-10-09"]},
        ],
    }  # fmt: skip
    doc.update(change)
    return doc


def _loaded(doc: dict[str, Any] | None = None) -> WorkCalendar:
    return WorkCalendar().with_arrangements(
        Arrangements((parse_arrangement(doc or _notice_2027()),))
    )


def test_a_loaded_year_decides_and_is_not_estimated() -> None:
    cal = _loaded()
    assert cal.day(date(2027, 2, 10)) == (False, Source.LOADED)  # a stretched festival Wednesday
    assert cal.day(date(2027, 2, 20)) == (True, Source.LOADED)  # make-up Saturday
    assert cal.day(date(2027, 3, 3)) == (True, Source.LOADED)  # an ordinary Wednesday
    # Mon 2026-12-07 + 60 days = Fri 2027-02-05, off until Fri 12: Sat 13 and
    # Sun 14 are a weekend, so the clock ends Mon 2027-02-15, no longer estimated
    dl = compute_deadline(_at(date(2026, 12, 7)), 60, DayType.CALENDAR, cal)
    assert (dl.last_day, dl.estimated) == (date(2027, 2, 15), False)
    # a working-day period counts the make-up Saturday
    dl = compute_deadline(_at(date(2027, 2, 17)), 3, DayType.WORKING, cal)
    assert dl.last_day == date(2027, 2, 20)  # Thu 18, Fri 19, Sat 20


def test_a_loaded_year_leaves_other_years_to_the_libraries_and_estimate() -> None:
    cal = _loaded()
    assert cal.day(date(2026, 10, 7)) == (False, Source.CHINESE_CALENDAR)
    assert cal.day(date(2028, 1, 26)) == (False, Source.ESTIMATE)


def test_district_overrides_beat_the_loaded_year() -> None:
    cal = WorkCalendar.with_overrides(rest=[date(2027, 3, 3)], working=[date(2027, 2, 10)])
    cal = cal.with_arrangements(_loaded().loaded)
    assert cal.day(date(2027, 3, 3)) == (False, Source.DISTRICT)
    assert cal.day(date(2027, 2, 10)) == (True, Source.DISTRICT)


def test_a_loaded_year_may_name_late_december_of_the_year_before() -> None:
    holidays = _notice_2027()["holidays"]
    holidays[0] = {"name": "元旦", "from": "2026-12-31", "to": "2027-01-03"}
    cal = _loaded(_notice_2027(holidays=holidays))
    assert cal.day(date(2026, 12, 31)) == (False, Source.LOADED)
    assert cal.day(date(2026, 12, 30)) == (True, Source.CHINESE_CALENDAR)


def _holiday(i: int, **change: Any) -> dict[str, Any]:
    holidays = _notice_2027()["holidays"]
    holidays[i] = {**holidays[i], **change}
    return _notice_2027(holidays=holidays)


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        ([], "calendar", "JSON object"),
        (_notice_2027(year="2027"), "year", "whole number"),
        (_notice_2027(year=2024), "year", "2025..2100"),
        (_notice_2027(source=""), "source", "required"),
        (_notice_2027(holidays=[]), "holidays", "required"),
        (_notice_2027(holiday=[]), "holiday", "unknown key"),
        (_holiday(1, to="2027-02-31"), "holidays[1].to", "not a date"),
        (_holiday(1, to="2027-02-01"), "holidays[1].to", "before from"),
        (_holiday(1, work=["2027-02-22"]), "holidays[1].work[0]", "Saturday or a Sunday"),
        (_holiday(1, work=["2027-02-06"]), "holidays", "both a day off"),
        (_holiday(0, **{"from": "2026-11-30", "to": "2026-11-30"}), "holidays[0].from", "outside"),
        (_holiday(2, **{"from": "2027-02-12", "to": "2027-02-12"}), "holidays[2].from", "already"),
        (_holiday(1, to="2027-02-25"), "holidays[1].to", "more than 16 days"),
        # a typo that drops the eve from the Spring Festival
        (_holiday(1, **{"from": "2027-02-06"}), "holidays", "2027-02-05 (春节) is a statutory"),
        (_holiday(6, to="2027-10-02"), "holidays", "2027-10-03 (国庆节)"),
    ],
)
def test_a_wrong_arrangement_is_refused_naming_the_field(doc: Any, field: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_arrangement(doc)
    assert e.value.message.startswith(f"{field}: ")
    assert says in e.value.message
