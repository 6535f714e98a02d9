"""What each case event adds to a district's period figures. Pure: no I/O.

Figures are counted in the period (month, quarter, year; Asia/Shanghai) in
which the thing happened: a petition in the period it was received, a
routing decision, a reply or a rating in the period it was made. The
backlog (存量) is kept as monthly net changes: +1 when a case comes in or
comes back (倒流), -1 when it is answered or declined; the backlog at any
instant is their running sum.

Field names are those of ``figures.PeriodFigures`` (nested ones dotted:
``by_channel.letter``), so a counter document reads straight into it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.periods import (
    months_of,
    parse_period,
    period_keys,
    previous_period,
    same_period_last_year,
)
from xinfang.core.registry import Registry
from xinfang.reporting.figures import PeriodFigures

__all__ = [
    "CHANNELS",
    "DECISIONS",
    "Contribution",
    "backlog_between",
    "case_update",
    "contributions",
    "figures_from",
    "months_of",
    "parse_period",
    "period_keys",
    "period_section",
    "previous_period",
    "same_period_last_year",
    "year_doc_fields",
]

CHANNELS = {
    ev.CHANNEL_LETTER: "letter",
    ev.CHANNEL_VISIT: "visit",
    ev.CHANNEL_ONLINE: "online",
    ev.CHANNEL_PHONE: "phone",
    ev.CHANNEL_FAX: "fax",
}
DECISIONS = {
    ev.ROUTING_DECISION_ACCEPT: "accept",
    ev.ROUTING_DECISION_FORWARD: "forward",
    ev.ROUTING_DECISION_OUT_LITIGATION: "out_litigation",
    ev.ROUTING_DECISION_OUT_DISCIPLINE: "out_discipline",
    ev.ROUTING_DECISION_DECLINE: "decline",
}
_CLOSING_DECISIONS = (
    ev.ROUTING_DECISION_DECLINE,
    ev.ROUTING_DECISION_OUT_LITIGATION,
    ev.ROUTING_DECISION_OUT_DISCIPLINE,
)
_LADDER_BELOW_DISTRICT = (
    ev.TIER_VILLAGE_MEDIATION,
    ev.TIER_TOWNSHIP,
    ev.TIER_TOWNSHIP_JOINT_MEETING,
    ev.TIER_TOWNSHIP_LEADER_PACKAGE,
)


def _key(s: str) -> str:
    # Mongo field names may not contain '.' or start with '$'
    return s.replace(".", "_").replace("$", "_") or "_"


def _at(ts: Any) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Contribution:
    at: datetime  # when it counts
    inc: dict[str, int]  # PeriodFigures fields (dotted for maps)
    backlog: int = 0  # net change of the backlog at ``at``


# event type -> what it adds to the period figures, given the read model's
# case document before it and when it happened
Contributes = Callable[[ev.CaseEvent, Mapping[str, Any], datetime], "Contribution | None"]
CONTRIBUTIONS: Registry[Contributes] = Registry("reporting figures")


def contributions(event: ev.CaseEvent, case: Mapping[str, Any]) -> Contribution | None:
    """What ``event`` adds, given what is known of its case so far (``case``
    is the read model's case document before this event)."""
    fn = CONTRIBUTIONS.get(event)
    return None if fn is None else fn(event, case, _at(event.occurred_at))


@CONTRIBUTIONS.on("registered")
def _registered(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    r = event.registered
    inc = {
        "received": 1,
        "people": r.people_count,
        f"by_channel.{CHANNELS.get(r.channel, 'other')}": 1,
        f"by_category.{_key(r.category)}": 1,
        f"by_township.{_key(r.township_id)}": 1,
        "first": int(r.kind == ev.PETITION_KIND_FIRST),
        "repeat": int(r.kind == ev.PETITION_KIND_REPEAT),
        "group": int(r.group),
        "group_people": r.people_count if r.group else 0,
        "escalated": int(r.escalated),
        "higher_level": int(r.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT),
    }
    return Contribution(_at(r.received_at), inc, backlog=1)


@CONTRIBUTIONS.on("routed")
def _routed(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    d = event.routed.decision
    inc = {"routed": 1, f"by_decision.{DECISIONS.get(d, 'other')}": 1}
    if event.routed.unit_id:
        inc[f"by_unit.{_key(event.routed.unit_id)}"] = 1
    return Contribution(at, inc, backlog=-1 if d in _CLOSING_DECISIONS else 0)


@CONTRIBUTIONS.on("accepted")
def _accepted(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    tier = event.accepted.tier
    return Contribution(
        at, {"accepted": 1, "mediation_entered": int(tier in _LADDER_BELOW_DISTRICT)}
    )


@CONTRIBUTIONS.on("reply_issued")
def _replied(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    resolved = int(event.reply_issued.resolved)
    on_time = case.get("handling_due")
    inc = {
        "replied": 1,
        "resolved": resolved,
        "replied_on_time": int(on_time is not None and at < on_time),
        "leader_resolved": resolved * int(bool(case.get("leader_id"))),
        "higher_level_resolved": resolved * int(bool(case.get("higher_level"))),
        "mediation_resolved": resolved * int(case.get("tier", 0) in _LADDER_BELOW_DISTRICT),
    }
    return Contribution(at, inc, backlog=-1)


@CONTRIBUTIONS.on("satisfaction_rated")
def _rated(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    r = event.satisfaction_rated.rating
    return Contribution(
        at,
        {
            "rated": 1,
            "satisfied": int(r == ev.SATISFACTION_SATISFIED),
            "basically_satisfied": int(r == ev.SATISFACTION_BASICALLY),
            "dissatisfied": int(r == ev.SATISFACTION_DISSATISFIED),
        },
    )


@CONTRIBUTIONS.on("review_requested")
def _review(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    return Contribution(at, {"rereviews" if event.review_requested.rereview else "reviews": 1})


@CONTRIBUTIONS.on("leader_package_assigned")
def _package(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    reception = event.leader_package_assigned.rule == "reception_day"
    people = int(case.get("people", 1))
    return Contribution(
        at,
        {
            "leader_packages": 1,
            "leader_receptions": int(reception),
            "leader_reception_people": people if reception else 0,
        },
    )


@CONTRIBUTIONS.on("suggestion_adopted")
def _adopted(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution | None:
    if case.get("status") == "adopted":
        return None  # adopted once, counted once
    return Contribution(at, {"suggestions_adopted": 1})


def _one(field: str, backlog: int = 0) -> Contributes:
    """An event that counts one in one figure."""

    def count(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
        return Contribution(at, {field: 1}, backlog=backlog)

    return count


CONTRIBUTIONS.on("backflow_reopened")(_one("backflow", backlog=1))
CONTRIBUTIONS.on("remit_disputed")(_one("unit_disputes"))
CONTRIBUTIONS.on("leader_visit_out")(_one("leader_visits_out"))
CONTRIBUTIONS.on("suggestion_made")(_one("suggestions_made"))
CONTRIBUTIONS.on("deadline_warned")(_one("warnings"))
CONTRIBUTIONS.on("deadline_breached")(_one("breaches"))
CONTRIBUTIONS.on("supervision_order_issued")(_one("supervision_orders"))


_STATUS = {
    "registered": "registered",
    "accepted": "accepted",
    "remit_objected": "registered",
    "remit_disputed": "disputed",
    "reply_issued": "replied",
    "finalized": "final",
    "backflow_reopened": "accepted",
    "suggestion_made": "suggested",
    "suggestion_adopted": "adopted",
}


# event type -> the fields it sets in the read model's case document (beyond
# the status of ``_STATUS``)
CASE_FIELDS: Registry[Callable[[ev.CaseEvent], dict[str, Any]]] = Registry("reporting cases")


def case_update(event: ev.CaseEvent, handling_due: datetime | None = None) -> dict[str, Any]:
    """Fields of the read model's case document an event sets: what search
    filters on, and what later events need (leader, tier, due time)."""
    k = event.WhichOneof("payload") or ""
    upd: dict[str, Any] = {}
    if k in _STATUS:
        upd["status"] = _STATUS[k]
        upd["sla_state"] = "on_track"
    if fn := CASE_FIELDS.get(event):
        upd.update(fn(event))
    if handling_due is not None:
        upd["handling_due"] = handling_due
    return upd


@CASE_FIELDS.on("registered")
def _registered_fields(event: ev.CaseEvent) -> dict[str, Any]:
    r = event.registered
    return {
        "received_at": _at(r.received_at),
        "channel": CHANNELS.get(r.channel, "other"),
        "category": r.category,
        "township_id": r.township_id,
        "people": r.people_count,
        "higher_level": r.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
    }


@CASE_FIELDS.on("routed")
def _routed_fields(event: ev.CaseEvent) -> dict[str, Any]:
    d = event.routed.decision
    status = (
        "declined"
        if d == ev.ROUTING_DECISION_DECLINE
        else "out_of_system"
        if d in _CLOSING_DECISIONS
        else "routed"
    )
    return {"unit_id": event.routed.unit_id, "status": status, "sla_state": "on_track"}


@CASE_FIELDS.on("review_requested")
def _review_requested_fields(event: ev.CaseEvent) -> dict[str, Any]:
    status = "rereview_requested" if event.review_requested.rereview else "review_requested"
    return {"status": status, "sla_state": "on_track"}


@CASE_FIELDS.on("review_decided")
def _review_decided_fields(event: ev.CaseEvent) -> dict[str, Any]:
    if event.review_decided.rereview:
        return {}
    return {"status": "reviewed", "sla_state": "on_track"}


CASE_FIELDS.on("accepted")(lambda e: {"unit_id": e.accepted.unit_id, "tier": e.accepted.tier})
CASE_FIELDS.on("tier_escalated")(lambda e: {"tier": e.tier_escalated.to_tier})
CASE_FIELDS.on("leader_package_assigned")(
    lambda e: {"leader_id": e.leader_package_assigned.leader_id}
)
CASE_FIELDS.on("deadline_warned")(lambda e: {"sla_state": "due_soon"})
CASE_FIELDS.on("deadline_breached")(lambda e: {"sla_state": "overdue"})


# ---- periods ------------------------------------------------------------------------


def year_doc_fields(at: datetime, inc: Mapping[str, int]) -> tuple[str, dict[str, int]]:
    """(year, increments) for the district's one counter document per year,
    which holds the year (``y.``), its quarters (``q.Qn.``) and months
    (``m.MM.``): one write per event instead of three."""
    year, quarter, month = period_keys(at)
    q, m = quarter[5:], month[5:]
    out: dict[str, int] = {}
    for k, v in inc.items():
        if v:
            out[f"y.{k}"] = v
            out[f"q.{q}.{k}"] = v
            out[f"m.{m}.{k}"] = v
    return year, out


def period_section(doc: Mapping[str, Any], period: str) -> dict[str, Any] | None:
    """The figures of one period out of its year's counter document; None
    when nothing at all was counted for it."""
    if len(period) == 4:
        sec = doc.get("y")
    elif period[5] == "Q":
        sec = (doc.get("q") or {}).get(period[5:])
    else:
        sec = (doc.get("m") or {}).get(period[5:])
    return sec if isinstance(sec, dict) else None


def backlog_between(deltas: Mapping[str, int], period: str) -> tuple[int, int]:
    """(存量 at the start, at the end) of a period from monthly net changes."""
    months = months_of(period)
    start = sum(n for m, n in deltas.items() if m < months[0])
    end = start + sum(n for m, n in deltas.items() if months[0] <= m <= months[-1])
    return start, end


_FIELDS = {f.name for f in fields(PeriodFigures)}


def figures_from(
    period: str, section: Mapping[str, Any], backlog: tuple[int, int]
) -> PeriodFigures:
    f = PeriodFigures(period=period)
    for k, v in section.items():
        if k in _FIELDS and k != "period":
            setattr(f, k, dict(v) if isinstance(v, dict) else int(v))
    f.backlog_start, f.backlog_end = backlog
    return f
