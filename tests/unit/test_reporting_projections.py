"""Reporting figures: which period an event counts in and what it adds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event
from xinfang.reporting.projections import (
    contributions,
    parse_period,
    period_keys,
    period_section,
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
