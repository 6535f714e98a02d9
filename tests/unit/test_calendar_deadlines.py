"""Statutory deadlines on China's official working calendar.

Every expected date below is worked out by hand from the State Council's
published holiday notices, not recomputed with ``chinese_calendar``:

* 2024 Spring Festival: rest 2024-02-10 (Sat) .. 2024-02-17 (Sat); make-up
  working days Sunday 2024-02-04 and Sunday 2024-02-18.
* 2025 National Day + Mid-Autumn: rest 2025-10-01 (Wed) .. 2025-10-08 (Wed);
  make-up working days Sunday 2025-09-28 and Saturday 2025-10-11.
* 2026 Spring Festival: rest 2026-02-15 (Sun) .. 2026-02-23 (Mon); make-up
  working days Saturday 2026-02-14 and Saturday 2026-02-28.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from xinfang.core.calendar import SHANGHAI, DayType, WorkCalendar, compute_deadline

CAL = WorkCalendar()


def _at(d: date, hour: int = 10, minute: int = 0) -> datetime:
    """A moment on day ``d``, Asia/Shanghai."""
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=SHANGHAI)


# --- calendar-day periods -------------------------------------------------


def test_start_day_is_not_counted() -> None:
    # Mon 2025-03-03 + 1 day -> Tue 2025-03-04 (an ordinary working day)
    dl = compute_deadline(_at(date(2025, 3, 3)), 1, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 3, 4)


def test_fifteen_calendar_days_on_ordinary_weeks() -> None:
    # Mon 2025-03-03 + 15 days -> Tue 2025-03-18; no holiday in March 2025
    dl = compute_deadline(_at(date(2025, 3, 3)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 3, 18)


def test_calendar_period_ending_on_ordinary_weekend_moves_to_monday() -> None:
    # Mon 2025-03-03 + 5 days -> Sat 2025-03-08 (rest) -> Mon 2025-03-10
    dl = compute_deadline(_at(date(2025, 3, 3)), 5, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 3, 10)


def test_calendar_period_ending_in_spring_festival_moves_past_the_holiday() -> None:
    # Sun 2026-02-01 + 15 days -> Mon 2026-02-16 (holiday) -> Tue 2026-02-24
    dl = compute_deadline(_at(date(2026, 2, 1)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2026, 2, 24)


def test_calendar_period_ending_in_national_day_moves_past_the_holiday() -> None:
    # Sat 2025-09-20 + 15 days -> Sun 2025-10-05 (holiday) -> Thu 2025-10-09
    dl = compute_deadline(_at(date(2025, 9, 20)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 10, 9)


def test_calendar_period_ending_on_first_day_after_holiday_stays() -> None:
    # Mon 2026-02-09 + 15 days -> Tue 2026-02-24, the first working day after
    dl = compute_deadline(_at(date(2026, 2, 9)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2026, 2, 24)


@pytest.mark.parametrize(
    ("start", "make_up_day"),
    [
        (date(2026, 2, 13), date(2026, 2, 28)),  # Saturday make-up day, 2026
        (date(2026, 1, 30), date(2026, 2, 14)),  # Saturday make-up day, 2026
        (date(2025, 9, 26), date(2025, 10, 11)),  # Saturday make-up day, 2025
        (date(2025, 9, 13), date(2025, 9, 28)),  # Sunday make-up day, 2025
        (date(2024, 1, 20), date(2024, 2, 4)),  # Sunday make-up day, 2024
        (date(2024, 2, 3), date(2024, 2, 18)),  # Sunday make-up day, 2024
    ],
)
def test_calendar_period_ending_on_make_up_working_day_stays(
    start: date, make_up_day: date
) -> None:
    dl = compute_deadline(_at(start), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == make_up_day


# --- working-day periods --------------------------------------------------


def test_working_day_period_skips_an_ordinary_weekend() -> None:
    # from Fri 2025-03-07: Mon 10, Tue 11, Wed 12, Thu 13, Fri 14
    dl = compute_deadline(_at(date(2025, 3, 7)), 5, DayType.WORKING, CAL)
    assert dl.last_day == date(2025, 3, 14)


def test_working_day_period_counts_saturday_make_up_and_skips_spring_festival() -> None:
    # from Thu 2026-02-12: Fri 13 (1), Sat 14 make-up (2), 15..23 holiday,
    # Tue 24 (3), Wed 25 (4), Thu 26 (5)
    dl = compute_deadline(_at(date(2026, 2, 12)), 5, DayType.WORKING, CAL)
    assert dl.last_day == date(2026, 2, 26)


def test_working_day_period_counts_sunday_make_up_and_skips_national_day() -> None:
    # from Fri 2025-09-26: Sat 27 rest, Sun 28 make-up (1), Mon 29 (2),
    # Tue 30 (3), Oct 1..8 holiday, Thu 9 (4), Fri 10 (5)
    dl = compute_deadline(_at(date(2025, 9, 26)), 5, DayType.WORKING, CAL)
    assert dl.last_day == date(2025, 10, 10)


def test_working_day_period_ends_on_make_up_day_after_holiday() -> None:
    # from Tue 2024-02-06: Wed 7 (1), Thu 8 (2), Fri 9 (3), 10..17 holiday,
    # Sun 18 make-up (4)
    dl = compute_deadline(_at(date(2024, 2, 6)), 4, DayType.WORKING, CAL)
    assert dl.last_day == date(2024, 2, 18)


# --- due instant and time zone -------------------------------------------


def test_due_at_is_midnight_shanghai_after_the_last_day() -> None:
    dl = compute_deadline(_at(date(2026, 2, 12)), 5, DayType.WORKING, CAL)
    assert dl.due_at == datetime(2026, 2, 27, 0, 0, tzinfo=SHANGHAI)
    assert dl.due_at == datetime(2026, 2, 26, 16, 0, tzinfo=UTC)
    assert dl.due_at.utcoffset() == SHANGHAI.utcoffset(dl.due_at)


def test_late_evening_start_counts_from_the_shanghai_date() -> None:
    start = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)  # 2025-03-03 23:30 Shanghai
    dl = compute_deadline(start, 1, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 3, 4)
    assert dl.due_at == datetime(2025, 3, 5, 0, 0, tzinfo=SHANGHAI)


def test_start_after_shanghai_midnight_counts_from_the_shanghai_date() -> None:
    start = datetime(2025, 3, 3, 16, 30, tzinfo=UTC)  # 2025-03-04 00:30 Shanghai
    dl = compute_deadline(start, 1, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2025, 3, 5)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="zone-aware"):
        compute_deadline(datetime(2025, 3, 3, 10, 0), 15, DayType.CALENDAR, CAL)


@pytest.mark.parametrize("days", [0, -1])
def test_period_shorter_than_one_day_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        compute_deadline(_at(date(2025, 3, 3)), days, DayType.CALENDAR, CAL)


# --- district overrides ----------------------------------------------------


def test_district_extra_rest_day_pushes_a_calendar_deadline() -> None:
    cal = WorkCalendar.with_overrides(rest=[date(2025, 3, 18)])
    dl = compute_deadline(_at(date(2025, 3, 3)), 15, DayType.CALENDAR, cal)
    assert dl.last_day == date(2025, 3, 19)


def test_district_extra_rest_day_is_not_counted_as_a_working_day() -> None:
    # from Fri 2025-03-07 with Mon 10 a local rest day: Tue 11 .. Mon 17
    cal = WorkCalendar.with_overrides(rest=[date(2025, 3, 10)])
    dl = compute_deadline(_at(date(2025, 3, 7)), 5, DayType.WORKING, cal)
    assert dl.last_day == date(2025, 3, 17)


def test_district_extra_working_day_is_counted() -> None:
    # from Fri 2025-03-07 with Sat 8 a local working day: Sat 8 is day 1
    cal = WorkCalendar.with_overrides(working=[date(2025, 3, 8)])
    dl = compute_deadline(_at(date(2025, 3, 7)), 1, DayType.WORKING, cal)
    assert dl.last_day == date(2025, 3, 8)


def test_district_extra_working_day_holds_a_calendar_deadline() -> None:
    # Mon 2025-03-03 + 5 days -> Sat 2025-03-08, a local working day
    cal = WorkCalendar.with_overrides(working=[date(2025, 3, 8)])
    dl = compute_deadline(_at(date(2025, 3, 3)), 5, DayType.CALENDAR, cal)
    assert dl.last_day == date(2025, 3, 8)


# --- years without official data -----------------------------------------


def test_year_with_official_data_is_not_estimated() -> None:
    dl = compute_deadline(_at(date(2025, 9, 20)), 15, DayType.CALENDAR, CAL)
    assert dl.estimated is False


def test_year_without_data_uses_weekend_rule_and_is_estimated() -> None:
    # Fri 2031-02-14 + 15 days -> Sat 2031-03-01 -> Mon 2031-03-03
    dl = compute_deadline(_at(date(2031, 2, 14)), 15, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2031, 3, 3)
    assert dl.estimated is True


def test_working_days_in_year_without_data_are_monday_to_friday() -> None:
    # from Fri 2031-03-07: Mon 10 .. Fri 14
    dl = compute_deadline(_at(date(2031, 3, 7)), 5, DayType.WORKING, CAL)
    assert dl.last_day == date(2031, 3, 14)
    assert dl.estimated is True


def test_estimate_knows_the_statutory_new_years_day() -> None:
    # Wed 2031-01-01 is New Year's Day, a rest day fixed by the regulation
    # whatever the notice says: the period ends on Thu 2031-01-02
    dl = compute_deadline(_at(date(2030, 12, 31)), 1, DayType.CALENDAR, CAL)
    assert dl.last_day == date(2031, 1, 2)
    assert dl.estimated is True


def test_override_day_in_year_without_data_is_not_estimated() -> None:
    cal = WorkCalendar.with_overrides(working=[date(2031, 3, 1)])
    assert cal.is_estimated(date(2031, 3, 1)) is False
    assert cal.is_estimated(date(2031, 3, 2)) is True
