"""Clocks through extension, hearing pauses, restarts and late stops."""

from __future__ import annotations

from datetime import datetime

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.supervision.clocks import (
    DUTY,
    OTHER_UNITS,
    ClockOp,
    SlaState,
    apply_ops,
    unit_rollup,
)

from .test_supervision_clocks import small_district

H = ev.CLOCK_KIND_HANDLING
RRD = ev.CLOCK_KIND_REREVIEW_DECISION


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=SHANGHAI)


def test_handling_runs_60_days_from_acceptance() -> None:
    # accepted Mon 2025-03-03: day 60 is Fri 2025-05-02, inside the May Day
    # holiday (05-01..05-05), so the last day is Tue 2025-05-06
    doc = apply_ops(
        None, [ClockOp("start", H, at(2025, 3, 3))], small_district(), "c", "u1", ""
    ).doc
    assert doc["due_at"] == at(2025, 5, 7, 0)


def test_extension_adds_its_days_and_reindexes() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "u1", "")
    # 60 days from Mon 2025-06-02 is Fri 2025-08-01, a working day
    assert started.doc["due_at"] == at(2025, 8, 2, 0)
    res = apply_ops(started.doc, [ClockOp("extend", H, at(2025, 7, 1), days=30)], d, "c", "u1", "")
    # +30: Sun 2025-08-31 is a rest day, so Mon 2025-09-01
    assert res.doc["due_at"] == at(2025, 9, 2, 0)
    assert res.doc["extra_days"] == 30
    assert ("due", "20250902") in res.indexed
    assert res.stats == {"due.20250802": -1, "due.20250902": 1}


def test_hearing_days_do_not_count() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", RRD, at(2025, 6, 2))], d, "c", "u1", "")
    before = started.doc["due_at"]
    paused = apply_ops(started.doc, [ClockOp("pause", RRD, at(2025, 6, 10))], d, "c", "u1", "")
    assert paused.doc["paused"] and paused.stats == {f"due.{started.doc['due_day']}": -1}
    # the hearing touched 06-10, 06-11 and 06-12: three days added
    resumed = apply_ops(paused.doc, [ClockOp("resume", RRD, at(2025, 6, 12, 16))], d, "c", "", "")
    assert resumed.doc["extra_days"] == 3
    assert not resumed.doc["paused"]
    assert resumed.doc["due_at"] > before
    # 30 + 3 days from Mon 2025-06-02 is Sat 2025-07-05, a rest day: Mon 07-07
    assert resumed.doc["due_at"] == at(2025, 7, 8, 0)


def test_stopping_late_reports_the_days_late() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 3, 3))], d, "c", "u1", "")
    late = apply_ops(started.doc, [ClockOp("stop", H, at(2025, 5, 9, 9))], d, "c", "u1", "")
    assert late.doc["on_time"] is False
    assert late.closed_late_days == 3  # due 05-07 00:00, stopped 05-09 09:00
    assert late.stats["completed"] == 1 and late.stats["completed_on_time"] == 0
    on_time = apply_ops(started.doc, [ClockOp("stop", H, at(2025, 5, 6, 23))], d, "c", "", "")
    assert on_time.doc["on_time"] is True and on_time.closed_late_days == 0


def test_restart_replaces_a_running_clock_and_may_move_it_to_another_unit() -> None:
    d = small_district()
    t = ev.CLOCK_KIND_TIER
    first = apply_ops(
        None,
        [ClockOp("start", t, at(2025, 3, 3), tier=ev.TIER_VILLAGE_MEDIATION)],
        d,
        "c",
        "u1",
        "",
    )
    again = apply_ops(
        first.doc,
        [
            ClockOp("stop", t, at(2025, 3, 5)),
            ClockOp("start", t, at(2025, 3, 5), tier=ev.TIER_TOWNSHIP),
        ],
        d,
        "c",
        "u2",
        "",
    )
    assert again.doc["open"] and again.doc["tier"] == ev.TIER_TOWNSHIP
    assert again.stats["open"] == 0  # one stopped, one started
    assert again.stats["started"] == 1 and again.stats["completed"] == 1
    # per unit: the old unit's clock ended, the new unit's started
    assert again.unit_stats["u1"]["open"] == -1 and again.unit_stats["u1"]["completed"] == 1
    assert again.unit_stats["u2"]["open"] == 1 and again.unit_stats["u2"]["started"] == 1


def test_ops_on_a_stopped_clock_change_nothing() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 3, 3))], d, "c", "", "")
    stopped = apply_ops(started.doc, [ClockOp("stop", H, at(2025, 3, 4))], d, "c", "", "")
    again = apply_ops(stopped.doc, [ClockOp("extend", H, at(2025, 3, 5), days=10)], d, "c", "", "")
    assert again.doc == stopped.doc and again.stats == {}


def test_windows_are_not_duties() -> None:
    assert ev.CLOCK_KIND_REVIEW_REQUEST not in DUTY
    assert ev.CLOCK_KIND_REMIT_OBJECTION not in DUTY
    assert ev.CLOCK_KIND_HANDLING in DUTY


def test_a_duty_clock_is_tallied_for_its_unit_too() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "u1", "")
    day = started.doc["due_day"]
    assert started.unit_stats == {"u1": {"open": 1, "started": 1, f"due.{day}": 1}}
    stopped = apply_ops(started.doc, [ClockOp("stop", H, at(2025, 6, 5))], d, "c", "u1", "")
    assert stopped.unit_stats == {
        "u1": {f"due.{day}": -1, "open": -1, "completed": 1, "completed_on_time": 1}
    }
    # a window is nobody's duty, and a clock with no unit yet is the office's own
    window = ev.CLOCK_KIND_REVIEW_REQUEST
    assert apply_ops(None, [ClockOp("start", window, at(2025, 6, 2))], d, "c", "u1", "").stats
    assert (
        apply_ops(None, [ClockOp("start", window, at(2025, 6, 2))], d, "c", "u1", "").unit_stats
        == {}
    )
    assert apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "", "").unit_stats == {}


def test_unit_rollup_adds_kinds_up_and_bounds_the_units() -> None:
    today = "20250610"
    docs = [
        # u1: a handling clock overdue since 06-01, two due 06-12 (warn 3 days: due soon)
        {"district_id": "d1", "unit_id": "u1", "clock": "handling", "warn_days": 3,
         "due": {"20250601": 1, "20250612": 2}, "completed": 4, "completed_on_time": 3,
         "breached": 1, "orders": 1},
        # u1: a tier clock due 06-12 with a 1-day lead: on track; a closed day counts nothing
        {"district_id": "d1", "unit_id": "u1", "clock": "tier", "warn_days": 1,
         "due": {"20250612": 1, "20250605": 0}, "completed": 1},
        {"district_id": "d1", "unit_id": "u2", "clock": "handling", "warn_days": 3,
         "due": {"20250701": 1}},
        {"district_id": "d1", "unit_id": "u3", "clock": "handling", "warn_days": 3,
         "due": {"20250608": 2}, "orders": 2},
        {"district_id": "d2", "unit_id": "u9", "clock": "handling", "warn_days": 3,
         "due": {"20250701": 1}},
    ]  # fmt: skip
    out = unit_rollup(docs, today, max_units=2)
    assert set(out) == {("d1", "u1"), ("d1", "u2"), ("d1", OTHER_UNITS), ("d2", "u9")}
    u1 = out[("d1", "u1")]
    assert u1.sla == {SlaState.OVERDUE: 1, SlaState.DUE_SOON: 2, SlaState.ON_TRACK: 1}
    assert u1.oldest_overdue_days == 9
    assert (u1.completed, u1.completed_on_time, u1.breached, u1.orders) == (5, 3, 1, 1)
    other = out[("d1", OTHER_UNITS)]  # u3, past the bound
    assert other.sla[SlaState.OVERDUE] == 2 and other.orders == 2
    assert out[("d2", "u9")].sla[SlaState.ON_TRACK] == 1


def test_a_window_the_scanner_saw_end_closes_once_at_its_event() -> None:
    d = small_district()
    w = ev.CLOCK_KIND_REVIEW_REQUEST
    started = apply_ops(None, [ClockOp("start", w, at(2025, 6, 2))], d, "c", "", "")
    due = started.doc["due_at"]
    # a restarted window ends at another time: an old end changes nothing
    stale = apply_ops(started.doc, [ClockOp("expire", w, at(2025, 6, 3))], d, "c", "", "")
    assert stale.doc["open"] and stale.stats == {}
    closed = apply_ops(started.doc, [ClockOp("expire", w, due)], d, "c", "", "")
    assert not closed.doc["open"] and closed.doc["expired"]
    assert closed.doc["closed_at"] == due
    assert closed.stats == {f"due.{started.doc['due_day']}": -1, "open": -1, "expired": 1}
    again = apply_ops(closed.doc, [ClockOp("expire", w, due)], d, "c", "", "")
    assert again.stats == {}  # a closed window is not closed twice
    # a duty clock never expires: it breaches
    h = apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "u1", "")
    assert apply_ops(h.doc, [ClockOp("expire", H, h.doc["due_at"])], d, "c", "u1", "").doc["open"]
