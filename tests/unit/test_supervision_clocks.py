"""Statutory clocks: SLA tallies over due-day buckets, and which clock an
event opens or closes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event
from xinfang.core.districts import District, parse_district
from xinfang.supervision.clocks import (
    SlaState,
    apply_ops,
    clock_ops,
    limit_name,
    oldest_overdue_days,
    tally_sla,
)

RR = ev.CLOCK_KIND_REGISTER_AND_ROUTE

TODAY = "20260310"


def small_district(**extra: Any) -> District:
    """One township, one category, one unit: the smallest district that parses."""
    return parse_district(
        {
            "district_id": "d1",
            "name": "测试区",
            "townships": [{"id": "t1", "name": "东镇"}],
            "categories": [{"code": "land", "name": "土地"}],
            "units": [{"id": "u1", "name": "东镇政府"}],
            **extra,
        }
    )


def _registered(received_at: datetime) -> ev.CaseEvent:
    reg = ev.CaseRegistered(channel=ev.CHANNEL_VISIT, township_id="t1", category="land")
    reg.received_at.FromDatetime(received_at)
    return new_event(
        case_id="case-1",
        district_id="d1",
        producer="intake",
        case_version=1,
        occurred_at=datetime(2026, 3, 10, 2, 0, tzinfo=UTC),  # recorded later than received
        registered=reg,
    )


def _routed() -> ev.CaseEvent:
    return new_event(
        case_id="case-1",
        district_id="d1",
        producer="assignment",
        case_version=2,
        routed=ev.CaseRouted(decision=ev.ROUTING_DECISION_ACCEPT, unit_id="u1", rule_id="r1"),
    )


# --- tally_sla -----------------------------------------------------------------


def test_clock_due_today_is_overdue() -> None:
    assert tally_sla({TODAY: 2}, TODAY, 3)[SlaState.OVERDUE] == 2


def test_clock_due_yesterday_is_overdue() -> None:
    assert tally_sla({"20260309": 1}, TODAY, 3)[SlaState.OVERDUE] == 1


def test_clock_due_tomorrow_is_due_soon() -> None:
    assert tally_sla({"20260311": 1}, TODAY, 3)[SlaState.DUE_SOON] == 1


def test_clock_due_on_last_warning_day_is_due_soon() -> None:
    assert tally_sla({"20260313": 1}, TODAY, 3)[SlaState.DUE_SOON] == 1


def test_clock_due_after_warning_window_is_on_track() -> None:
    assert tally_sla({"20260314": 1}, TODAY, 3)[SlaState.ON_TRACK] == 1


def test_warning_window_crosses_month_end() -> None:
    tally = tally_sla({"20260302": 1, "20260304": 1}, "20260227", 3)
    assert tally == {SlaState.OVERDUE: 0, SlaState.DUE_SOON: 1, SlaState.ON_TRACK: 1}


def test_empty_and_negative_buckets_are_ignored() -> None:
    tally = tally_sla({"20260301": 0, "20260312": -1, "20260320": 0}, TODAY, 3)
    assert tally == {SlaState.OVERDUE: 0, SlaState.DUE_SOON: 0, SlaState.ON_TRACK: 0}


def test_tally_adds_counts_per_state() -> None:
    due = {
        "20260201": 1,
        "20260309": 2,
        TODAY: 1,
        "20260311": 4,
        "20260313": 1,
        "20260314": 5,
        "20260305": -2,
        "20260306": 0,
    }
    assert tally_sla(due, TODAY, 3) == {
        SlaState.OVERDUE: 4,
        SlaState.DUE_SOON: 5,
        SlaState.ON_TRACK: 5,
    }


def test_zero_warn_days_leaves_only_overdue_and_on_track() -> None:
    tally = tally_sla({TODAY: 1, "20260311": 1}, TODAY, 0)
    assert tally == {SlaState.OVERDUE: 1, SlaState.DUE_SOON: 0, SlaState.ON_TRACK: 1}


# --- oldest_overdue_days ---------------------------------------------------


def test_oldest_overdue_days_counts_from_the_oldest_overdue_day() -> None:
    due = {"20260301": 1, "20260309": 2, TODAY: 1, "20260320": 3}
    assert oldest_overdue_days(due, TODAY) == 9


def test_oldest_overdue_days_ignores_empty_buckets() -> None:
    due = {"20260101": 0, "20260201": -1, "20260308": 1}
    assert oldest_overdue_days(due, TODAY) == 2


def test_oldest_overdue_days_across_a_year_end() -> None:
    assert oldest_overdue_days({"20251231": 1}, "20260102") == 2


def test_clock_due_today_is_zero_days_overdue() -> None:
    assert oldest_overdue_days({TODAY: 1}, TODAY) == 0


def test_nothing_overdue_gives_zero() -> None:
    assert oldest_overdue_days({"20260311": 5}, TODAY) == 0
    assert oldest_overdue_days({}, TODAY) == 0


# --- clocks from events ------------------------------------------------------


def _start_rr(event: ev.CaseEvent, district: District) -> dict[str, Any]:
    ops = [o for o in clock_ops(event) if o.kind == RR]
    return apply_ops(None, ops, district, "case-1", "", "").doc


def test_registration_opens_register_and_route_clock_from_receipt() -> None:
    received = datetime(2026, 2, 1, 10, 0, tzinfo=SHANGHAI)
    clock = _start_rr(_registered(received), small_district())
    assert clock["kind"] == RR
    assert limit_name(clock["kind"]) == "register_and_route"
    assert clock["started_at"] == received
    assert clock["open"] and clock["duty"]


def test_register_and_route_due_moves_past_spring_festival() -> None:
    # received Sun 2026-02-01; day 15 is Mon 2026-02-16, inside the Spring
    # Festival holiday (02-15..02-23), so the last day is Tue 2026-02-24
    clock = _start_rr(_registered(datetime(2026, 2, 1, 10, 0, tzinfo=SHANGHAI)), small_district())
    assert clock["due_at"] == datetime(2026, 2, 25, 0, 0, tzinfo=SHANGHAI)
    assert clock["due_day"] == "20260225"
    assert clock["estimated"] is False


def test_register_and_route_warns_three_days_before_due() -> None:
    clock = _start_rr(_registered(datetime(2026, 2, 1, 10, 0, tzinfo=SHANGHAI)), small_district())
    assert clock["warn_at"] == datetime(2026, 2, 22, 0, 0, tzinfo=SHANGHAI)


def test_register_and_route_follows_district_limit_override() -> None:
    district = small_district(
        limits={"register_and_route": {"days": 5, "day_type": "working", "warn_days": 1}}
    )
    # received Thu 2026-02-12: Fri 13, Sat 14 (make-up), Tue 24, Wed 25, Thu 26
    clock = _start_rr(_registered(datetime(2026, 2, 12, 10, 0, tzinfo=SHANGHAI)), district)
    assert clock["due_at"] == datetime(2026, 2, 27, 0, 0, tzinfo=SHANGHAI)
    assert clock["warn_at"] == datetime(2026, 2, 26, 0, 0, tzinfo=SHANGHAI)


def test_routing_only_stops_the_register_and_route_clock() -> None:
    assert [o.op for o in clock_ops(_routed()) if o.kind == RR] == ["stop"]


def test_registration_stops_no_clock() -> None:
    ops = clock_ops(_registered(datetime(2026, 2, 1, 10, 0, tzinfo=SHANGHAI)))
    assert {o.op for o in ops} == {"start"}
