"""Reporting figures: which period an event counts in and what it adds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event
from xinfang.reporting.projections import (
    Contribution,
    Span,
    attributed_at,
    contributions,
    counter_writes,
    parse_period,
    period_keys,
    period_section,
    running_span,
    span_figures,
    year_doc_fields,
)

RECEIVED = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)  # 2026-04-01 00:30 Shanghai
OCCURRED = datetime(2026, 6, 30, 15, 0, tzinfo=UTC)  # 2026-06-30 23:00 Shanghai


def _registered(**fields: Any) -> ev.CaseEvent:
    reg = ev.CaseRegistered(
        channel=ev.CHANNEL_VISIT,
        township_id="t1",
        category="land.use",
        people_count=7,
        source=ev.SOURCE_DIRECT,
        kind=ev.PETITION_KIND_REPEAT,
        group=True,
        escalated=False,
        **fields,
    )
    reg.received_at.FromDatetime(RECEIVED)
    return new_event(
        case_id="case-1",
        district_id="d1",
        producer="intake",
        case_version=1,
        occurred_at=OCCURRED,
        registered=reg,
    )


def _routed() -> ev.CaseEvent:
    return new_event(
        case_id="case-1",
        district_id="d1",
        producer="assignment",
        case_version=2,
        occurred_at=OCCURRED,
        routed=ev.CaseRouted(decision=ev.ROUTING_DECISION_FORWARD, unit_id="u.1", rule_id="r1"),
    )


# --- period keys -------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "keys"),
    [
        (datetime(2026, 3, 31, 16, 30, tzinfo=UTC), ["2026", "2026-Q2", "2026-04"]),
        (datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), ["2026", "2026-Q1", "2026-03"]),
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), ["2026", "2026-Q1", "2026-01"]),
        (datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC), ["2025", "2025-Q4", "2025-12"]),
        (datetime(2026, 9, 30, 16, 0, tzinfo=UTC), ["2026", "2026-Q4", "2026-10"]),
        (datetime(2026, 6, 30, 15, 0, tzinfo=UTC), ["2026", "2026-Q2", "2026-06"]),
    ],
)
def test_period_keys_use_the_shanghai_date(at: datetime, keys: list[str]) -> None:
    assert period_keys(at) == keys


# --- period strings ---------------------------------------------------------


@pytest.mark.parametrize("period", ["2026", "2026-Q1", "2026-Q4", "2026-03", "2026-12"])
def test_parse_period_accepts_year_quarter_and_month(period: str) -> None:
    assert parse_period(period) == period


def test_parse_period_trims_whitespace() -> None:
    assert parse_period(" 2026-03 ") == "2026-03"


@pytest.mark.parametrize(
    "period", ["2026-13", "2026-00", "2026-Q5", "2026-Q0", "26", "2026-3", "2026-q1", ""]
)
def test_parse_period_refuses(period: str) -> None:
    with pytest.raises(ValueError, match="YYYY"):
        parse_period(period)


# --- contributions ----------------------------------------------------------


def test_registration_counts_when_received_not_when_recorded() -> None:
    got = contributions(_registered(), {})
    assert got is not None
    assert got.at == RECEIVED
    assert got.backlog == 1  # a new case adds to the backlog (存量)


def test_registration_increments() -> None:
    got = contributions(_registered(), {})
    assert got is not None
    assert got.inc == {
        "received": 1,
        "people": 7,
        "by_channel.visit": 1,
        "by_category.land_use": 1,
        "by_township.t1": 1,
        "first": 0,
        "repeat": 1,
        "group": 1,
        "group_people": 7,
        "escalated": 0,
        "higher_level": 0,
    }


def test_first_escalated_single_registration() -> None:
    event = _registered()
    event.registered.kind = ev.PETITION_KIND_FIRST
    event.registered.group = False
    event.registered.escalated = True
    event.registered.channel = ev.CHANNEL_ONLINE
    got = contributions(event, {})
    assert got is not None
    inc = got.inc
    assert (inc["first"], inc["repeat"], inc["group"], inc["escalated"]) == (1, 0, 0, 1)
    assert inc["by_channel.online"] == 1


def test_routing_counts_when_decided() -> None:
    got = contributions(_routed(), {})
    assert got is not None
    assert (got.at, got.inc) == (
        OCCURRED,
        {"routed": 1, "by_decision.forward": 1, "by_unit.u_1": 1},
    )
    assert got.backlog == 0  # forwarded: still to be answered


def test_other_events_add_nothing() -> None:
    event = new_event(
        case_id="case-1",
        district_id="d1",
        producer="supervision",
        case_version=3,
        finalized=ev.CaseFinalized(reason="done"),
    )
    assert contributions(event, {}) is None


# --- the year counter document ------------------------------------------------


def _apply(doc: dict[str, Any], fields: dict[str, int]) -> None:
    """What Mongo's ``$inc`` with dotted paths does."""
    for path, inc in fields.items():
        *parents, leaf = path.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = node.get(leaf, 0) + inc


def test_year_doc_fields_address_year_quarter_and_month() -> None:
    year, fields = year_doc_fields(RECEIVED, {"received": 1})
    assert year == "2026"
    assert fields == {"y.received": 1, "q.Q2.received": 1, "m.04.received": 1}


def test_year_doc_fields_round_trip_through_period_section() -> None:
    doc: dict[str, Any] = {}
    for at, inc in [
        (datetime(2026, 1, 15, 2, 0, tzinfo=UTC), {"received": 1, "people": 3}),
        (datetime(2026, 3, 31, 15, 0, tzinfo=UTC), {"received": 1, "people": 1}),
        (RECEIVED, {"received": 1, "people": 5}),
    ]:
        year, fields = year_doc_fields(at, inc)
        assert year == "2026"
        _apply(doc, fields)
    assert period_section(doc, "2026") == {"received": 3, "people": 9}
    assert period_section(doc, "2026-Q1") == {"received": 2, "people": 4}
    assert period_section(doc, "2026-Q2") == {"received": 1, "people": 5}
    assert period_section(doc, "2026-01") == {"received": 1, "people": 3}
    assert period_section(doc, "2026-03") == {"received": 1, "people": 1}
    assert period_section(doc, "2026-04") == {"received": 1, "people": 5}


def test_period_section_of_a_quiet_period_is_empty() -> None:
    doc: dict[str, Any] = {}
    _apply(doc, year_doc_fields(RECEIVED, {"received": 1})[1])
    assert period_section(doc, "2026-Q3") is None
    assert period_section(doc, "2026-07") is None
    assert period_section({}, "2026") is None


# --- spans: a period that has not ended ----------------------------------------


def test_a_running_period_is_counted_up_to_today_and_an_ended_one_whole() -> None:
    assert running_span("2026", date(2026, 12, 2)) == Span("2026", date(2026, 12, 2))
    assert running_span("2026", date(2026, 12, 31)).through == date(2026, 12, 31)
    assert running_span("2026", date(2027, 1, 1)) == Span("2026")
    assert running_span("2026-Q3", date(2026, 12, 2)) == Span("2026-Q3")
    assert running_span("2027", date(2026, 12, 2)) == Span("2027")  # not begun: nothing yet


def test_the_same_span_of_another_period() -> None:
    s = Span("2026-Q4", date(2026, 12, 2))
    assert (s.full_months, s.partial) == (["2026-10", "2026-11"], ("2026-12", 2))
    assert s.shifted("2026-Q3") == Span("2026-Q3", date(2026, 9, 2))
    assert s.shifted("2025-Q4") == Span("2025-Q4", date(2025, 12, 2))
    assert Span("2026-03", date(2026, 3, 31)).shifted("2026-02").through == date(2026, 2, 28)
    assert Span("2028", date(2028, 2, 29)).shifted("2027").through == date(2027, 2, 28)
    assert Span("2026").shifted("2025") == Span("2025")


def test_span_figures_sum_whole_months_and_the_days_of_the_last() -> None:
    docs: dict[str, dict[str, Any]] = {}
    days = [datetime(2025, 11, 20, 4, tzinfo=UTC), datetime(2025, 12, 1, 4, tzinfo=UTC)]
    days += [datetime(2025, 12, 2, 16, 30, tzinfo=UTC)]  # 3 December, 00:30 Shanghai
    for at in days:
        for doc_id, inc, _ in counter_writes("d1", Contribution(at, {"received": 1}, backlog=1)):
            _apply(docs.setdefault(doc_id, {}), inc)
    f = span_figures("d1", Span("2025", date(2025, 12, 2)), docs)
    assert f is not None and f.received == 2 and (f.backlog_start, f.backlog_end) == (0, 2)
    f = span_figures("d1", "2025", docs)
    assert f is not None and f.received == 3 and f.backlog_end == 3
    assert span_figures("d1", Span("2025", date(2025, 11, 19)), docs) is None


def test_a_contribution_and_its_cohort_in_one_document_are_one_write() -> None:
    # a petition received in March and routed in March: the same year and month
    # documents take both increments at once (a counter takes an event once)
    at = datetime(2026, 3, 20, 4, tzinfo=UTC)
    c = Contribution(at, {"routed": 1}, cohort=(datetime(2026, 3, 2, 4, tzinfo=UTC), {"x": 1}))
    writes = counter_writes("d1", c)
    ids = [w[0] for w in writes]
    assert sorted(ids) == ["d1:2026", "d1:2026-03"] and len(set(ids)) == len(ids)
    year = next(w[1] for w in writes if w[0] == "d1:2026")
    assert year["y.routed"] == 1 and year["y.x"] == 1 and year["m.03.x"] == 1
    month = next(w[1] for w in writes if w[0] == "d1:2026-03")
    assert month == {"d.20.routed": 1, "d.02.x": 1}


def test_a_registration_counts_when_received_everything_else_when_it_happened() -> None:
    assert attributed_at(_registered()) == RECEIVED
    assert attributed_at(_routed()) == OCCURRED
