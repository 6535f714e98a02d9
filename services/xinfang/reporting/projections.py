"""What each case event adds to a district's period figures. Pure: no I/O.

Figures are counted in the period (month, quarter, year; Asia/Shanghai) in
which the thing happened: a petition in the period it was received, a
routing decision, a reply or a rating in the period it was made. Which
timestamp that is, is decided in one place, :func:`attributed_at`. The
backlog (存量) is kept as monthly net changes: +1 when a case comes in or
comes back (倒流), -1 when it is answered or declined; the backlog at any
instant is their running sum.

Besides the year document (year, quarters, months), each district has one
counter document per month with its days (``d.DD.``), so that a period that
has not ended can be compared with exactly the same span of the year before
(1 January to 2 December against 1 January to 2 December).

Field names are those of ``figures.PeriodFigures`` (nested ones dotted:
``by_channel.letter``), so a counter document reads straight into it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
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
    "CLOCKS",
    "DECISIONS",
    "Contribution",
    "Span",
    "attributed_at",
    "backlog_between",
    "backlog_of_span",
    "case_update",
    "contributions",
    "counter_writes",
    "figures_from",
    "months_of",
    "parse_period",
    "period_keys",
    "period_section",
    "previous_period",
    "running_span",
    "same_period_last_year",
    "span_section",
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


def attributed_at(event: ev.CaseEvent) -> datetime:
    """When an event counts: the one place that decides which period a
    figure falls in. A petition counts when it was received (a letter
    registered days later is still that day's letter); everything else when
    the envelope says it happened (``occurred_at``)."""
    if event.WhichOneof("payload") == "registered":
        return _at(event.registered.received_at)
    return _at(event.occurred_at)


@dataclass(frozen=True)
class Contribution:
    at: datetime  # when it counts
    inc: dict[str, int]  # PeriodFigures fields (dotted for maps)
    backlog: int = 0  # net change of the backlog at ``at``
    # what it adds to the cohort of its case: the petitions received in a
    # period, and how many of them have been decided or answered since
    # (counted in the period the case was received, once per case)
    cohort: tuple[datetime, dict[str, int]] | None = None


def _cohort(
    case: Mapping[str, Any], flag: str, field: str
) -> tuple[datetime, dict[str, int]] | None:
    """The case's first ``field`` counted in the period it was received."""
    received = case.get("received_at")
    if received is None or case.get(flag):
        return None
    if received.tzinfo is None:  # as the store hands it back
        received = received.replace(tzinfo=UTC)
    return received, {field: 1}


# event type -> what it adds to the period figures, given the read model's
# case document before it and when it happened
Contributes = Callable[[ev.CaseEvent, Mapping[str, Any], datetime], "Contribution | None"]
CONTRIBUTIONS: Registry[Contributes] = Registry("reporting figures")


def contributions(event: ev.CaseEvent, case: Mapping[str, Any]) -> Contribution | None:
    """What ``event`` adds, given what is known of its case so far (``case``
    is the read model's case document before this event)."""
    fn = CONTRIBUTIONS.get(event)
    return None if fn is None else fn(event, case, attributed_at(event))


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
    return Contribution(at, inc, backlog=1)


@CONTRIBUTIONS.on("routed")
def _routed(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    d = event.routed.decision
    inc = {"routed": 1, f"by_decision.{DECISIONS.get(d, 'other')}": 1}
    if event.routed.unit_id:
        inc[f"by_unit.{_key(event.routed.unit_id)}"] = 1
    return Contribution(
        at,
        inc,
        backlog=-1 if d in _CLOSING_DECISIONS else 0,
        cohort=_cohort(case, "cohort_routed", "cohort_routed"),
    )


@CONTRIBUTIONS.on("accepted")
def _accepted(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    tier = event.accepted.tier
    return Contribution(
        at, {"accepted": 1, "mediation_entered": int(tier in _LADDER_BELOW_DISTRICT)}
    )


@CONTRIBUTIONS.on("reply_issued")
def _replied(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    resolved = int(event.reply_issued.resolved)
    due = case.get("handling_due")
    on_time = due is not None and at < due
    inc = {
        "replied": 1,
        "resolved": resolved,
        # every reply is one or the other: 按期 + 超期 = 办结
        "replied_on_time": int(on_time),
        "replied_late": int(not on_time),
        "leader_resolved": resolved * int(bool(case.get("leader_id"))),
        "higher_level_resolved": resolved * int(bool(case.get("higher_level"))),
        "mediation_resolved": resolved * int(case.get("tier", 0) in _LADDER_BELOW_DISTRICT),
    }
    return Contribution(
        at, inc, backlog=-1, cohort=_cohort(case, "cohort_replied", "cohort_replied")
    )


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

CLOCKS = {
    ev.CLOCK_KIND_REGISTER_AND_ROUTE: "register_and_route",
    ev.CLOCK_KIND_WRITTEN_NOTICE: "written_notice",
    ev.CLOCK_KIND_REMIT_OBJECTION: "remit_objection",
    ev.CLOCK_KIND_TIER: "tier",
    ev.CLOCK_KIND_HANDLING: "handling",
    ev.CLOCK_KIND_REVIEW_REQUEST: "review_request",
    ev.CLOCK_KIND_REVIEW_DECISION: "review_decision",
    ev.CLOCK_KIND_REREVIEW_REQUEST: "rereview_request",
    ev.CLOCK_KIND_REREVIEW_DECISION: "rereview_decision",
}


@CONTRIBUTIONS.on("deadline_breached")
def _breached(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    """A clock ran out: one breach of one statutory time limit, of whatever
    kind (registering and routing, a tier's time box, handling...). A case
    can breach several, so breaches are not cases handled late."""
    clock = CLOCKS.get(event.deadline_breached.clock, "other")
    return Contribution(at, {"breaches": 1, f"breaches_by_clock.{clock}": 1})


@CONTRIBUTIONS.on("supervision_order_issued")
def _order(event: ev.CaseEvent, case: Mapping[str, Any], at: datetime) -> Contribution:
    """One supervision order (督办通知), issued per breach: orders, not cases."""
    clock = CLOCKS.get(event.supervision_order_issued.clock, "other")
    return Contribution(at, {"supervision_orders": 1, f"orders_by_clock.{clock}": 1})


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
    return {
        "unit_id": event.routed.unit_id,
        "status": status,
        "sla_state": "on_track",
        "cohort_routed": True,  # its cohort has counted it as decided
    }


@CASE_FIELDS.on("review_requested")
def _review_requested_fields(event: ev.CaseEvent) -> dict[str, Any]:
    status = "rereview_requested" if event.review_requested.rereview else "review_requested"
    return {"status": status, "sla_state": "on_track"}


@CASE_FIELDS.on("review_decided")
def _review_decided_fields(event: ev.CaseEvent) -> dict[str, Any]:
    if event.review_decided.rereview:
        return {}
    return {"status": "reviewed", "sla_state": "on_track"}


CASE_FIELDS.on("reply_issued")(lambda e: {"cohort_replied": True})
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


def day_doc_fields(
    at: datetime, inc: Mapping[str, int], backlog: int
) -> tuple[str, dict[str, int]]:
    """(month, increments) for the district's counter document of that month,
    which holds its days (``d.DD.``) and each day's backlog change
    (``d.DD._backlog``): what a span ending inside a month is summed from."""
    month = at.astimezone(SHANGHAI).strftime("%Y-%m")
    day = at.astimezone(SHANGHAI).strftime("%d")
    out = {f"d.{day}.{k}": v for k, v in inc.items() if v}
    if backlog:
        out[f"d.{day}._backlog"] = backlog
    return month, out


def counter_writes(
    district_id: str, c: Contribution
) -> list[tuple[str, dict[str, int], dict[str, Any]]]:
    """(counter document id, increments, fields on insert) for one
    contribution: the year documents, the months' day documents, the
    backlog; one entry per document (a counter takes an event once)."""
    out: dict[str, tuple[dict[str, int], dict[str, Any]]] = {}

    def add(doc_id: str, inc: Mapping[str, int], on_insert: dict[str, Any]) -> None:
        if not inc:
            return
        have = out.setdefault(doc_id, ({}, on_insert))[0]
        for k, v in inc.items():
            have[k] = have.get(k, 0) + v

    parts = [(c.at, c.inc, c.backlog)]
    if c.cohort is not None:
        parts.append((c.cohort[0], c.cohort[1], 0))
    for at, inc, backlog in parts:
        year, fields = year_doc_fields(at, inc)
        add(f"{district_id}:{year}", fields, {"district_id": district_id, "year": int(year)})
        month, days = day_doc_fields(at, inc, backlog)
        add(f"{district_id}:{month}", days, {"district_id": district_id, "month": month})
        if backlog:
            add(f"{district_id}:backlog", {f"m.{month}": backlog}, {"district_id": district_id})
    return [(doc_id, inc, ins) for doc_id, (inc, ins) in out.items()]


@dataclass(frozen=True)
class Span:
    """What a figure covers: a whole period, or (``through`` set) its first
    days up to and including ``through``, for a period that has not ended."""

    period: str
    through: date | None = None

    @property
    def full_months(self) -> list[str]:
        """The months counted whole."""
        months = months_of(self.period)
        if self.through is None:
            return months
        return [m for m in months if m < self.through.strftime("%Y-%m")]

    @property
    def partial(self) -> tuple[str, int] | None:
        """(month, days) of the month counted in part, if any."""
        if self.through is None:
            return None
        m = self.through.strftime("%Y-%m")
        return (m, self.through.day) if m in months_of(self.period) else None

    def shifted(self, period: str) -> Span:
        """The same span of another period (the previous one, or last year's):
        as many months and days in from its start, the day clipped to its
        month (29 February -> 28 February)."""
        if self.through is None:
            return Span(period)
        first, other = months_of(self.period)[0], months_of(period)[0]
        k = _month_index(self.through.strftime("%Y-%m")) - _month_index(first)
        y, m = divmod(_month_index(other) + k, 12)
        day = min(self.through.day, calendar.monthrange(y, m + 1)[1])
        return Span(period, date(y, m + 1, day))


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def running_span(period: str, today: date) -> Span:
    """The span a report of ``period`` covers on ``today``: the whole period
    once it has ended (or before it starts), else up to today, included."""
    months = months_of(period)
    start = date(int(months[0][:4]), int(months[0][5:]), 1)
    y, m = int(months[-1][:4]), int(months[-1][5:])
    end = date(y, m, calendar.monthrange(y, m)[1])
    return Span(period, today) if start <= today <= end else Span(period)


def add_section(into: dict[str, Any], section: Mapping[str, Any]) -> None:
    """Add one section of counters into another (maps key by key)."""
    for k, v in section.items():
        if isinstance(v, Mapping):
            sub = into.setdefault(k, {})
            for kk, vv in v.items():
                sub[kk] = sub.get(kk, 0) + int(vv)
        elif isinstance(v, int | float):
            into[k] = into.get(k, 0) + int(v)


def span_section(
    span: Span, year_doc: Mapping[str, Any], month_doc: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, int]:
    """(figures section, net backlog change of the partial month's days) of a
    span, from its year's document and the day document of its partial
    month; the section is None when nothing at all was counted in it."""
    if span.through is None:
        return period_section(year_doc, span.period), 0
    out: dict[str, Any] = {}
    seen = False
    for m in span.full_months:
        sec = period_section(year_doc, m)
        if sec is not None:
            add_section(out, sec)
            seen = True
    backlog = 0
    if span.partial is not None:
        days = month_doc.get("d") or {}
        for d in range(1, span.partial[1] + 1):
            sec = days.get(f"{d:02d}")
            if isinstance(sec, Mapping):
                backlog += int(sec.get("_backlog", 0))
                add_section(out, {k: v for k, v in sec.items() if k != "_backlog"})
                seen = True
    return (out if seen else None), backlog


def backlog_of_span(deltas: Mapping[str, int], span: Span, partial_days: int) -> tuple[int, int]:
    """(存量 at the start, at the end) of a span from monthly net changes and
    the net change of the days of its partial month."""
    start = sum(n for m, n in deltas.items() if m < months_of(span.period)[0])
    full = span.full_months
    end = start + sum(n for m, n in deltas.items() if m in full) + partial_days
    return start, end


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


# ---- a report's figures out of the counter documents -------------------------------


@dataclass(frozen=True)
class ReportSpans:
    """The spans a period's report reads: the period (to date, if it has
    not ended), the same span of the previous period (环比) and of last year
    (同比), and the months shown in the trend."""

    current: Span
    previous: Span
    last_year: Span
    months: list[str]

    @classmethod
    def of(cls, period: str, today: date) -> ReportSpans:
        span = running_span(period, today)
        months = months_of(period)
        if span.through is not None:
            last = span.through.strftime("%Y-%m")
            months = [m for m in months if m <= last]  # months still to come are not shown
        return cls(
            span,
            span.shifted(previous_period(period)),
            span.shifted(same_period_last_year(period)),
            months,
        )

    def doc_ids(self, district_id: str) -> list[str]:
        """The counter documents these spans are summed from."""
        ids = {f"{district_id}:backlog"}
        for s in (self.current, self.previous, self.last_year):
            ids.add(f"{district_id}:{s.period[:4]}")
            if s.partial is not None:
                ids.add(f"{district_id}:{s.partial[0]}")
        return sorted(ids)


def span_figures(
    district_id: str, span: Span | str, docs: Mapping[str, Mapping[str, Any]]
) -> PeriodFigures | None:
    """A span's figures out of the district's counter documents (by id), or
    None when nothing was counted in it."""
    if isinstance(span, str):
        span = Span(span)
    year_doc = docs.get(f"{district_id}:{span.period[:4]}") or {}
    month_doc = docs.get(f"{district_id}:{span.partial[0]}") if span.partial else None
    section, partial_backlog = span_section(span, year_doc, month_doc or {})
    deltas = (docs.get(f"{district_id}:backlog") or {}).get("m", {})
    backlog = backlog_of_span(deltas, span, partial_backlog)
    if section is None and backlog == (0, 0):
        return None
    return figures_from(span.period, section or {}, backlog)
