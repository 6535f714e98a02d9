"""Statutory clocks, free of I/O: which clocks an event starts, stops, extends
or pauses, and when each falls due on the district's calendar.

A *duty* clock (register and route, written notice, a tier's time box,
handling, review and re-review decisions) breaches when it runs out: a
breach event and a supervision order follow. A *window* clock (the unit's
remit objection, the petitioner's review and re-review requests) only
expires: running out is not anyone's failure, it closes a door.

Extra days move a deadline: an approved extension of handling (Art. 34) and
the days of a hearing during re-review (Art. 36: not counted). A hearing's
days are the calendar days it touched, first and last included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI, Deadline
from xinfang.core.districts import District
from xinfang.core.registry import Registry

__all__ = [
    "DUTY",
    "OTHER_UNITS",
    "ClockOp",
    "SlaState",
    "apply_ops",
    "clock_doc_id",
    "clock_label",
    "clock_ops",
    "day_key",
    "limit_name",
    "oldest_overdue_days",
    "schedule",
    "tallied_unit",
    "tally_sla",
    "unit_rollup",
]


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


DUTY: frozenset[int] = frozenset(
    {
        ev.CLOCK_KIND_REGISTER_AND_ROUTE,
        ev.CLOCK_KIND_WRITTEN_NOTICE,
        ev.CLOCK_KIND_TIER,
        ev.CLOCK_KIND_HANDLING,
        ev.CLOCK_KIND_REVIEW_DECISION,
        ev.CLOCK_KIND_REREVIEW_DECISION,
    }
)


def clock_label(kind: int) -> str:
    """The clock's name in ids and metric labels, e.g. ``register_and_route``."""
    return ev.ClockKind.Name(ev.ClockKind.ValueType(kind)).removeprefix("CLOCK_KIND_").lower()


def clock_doc_id(case_id: str, kind: int) -> str:
    return f"{case_id}:{clock_label(kind)}"


def limit_name(kind: int, tier: int = 0) -> str:
    """The district limit that sets a clock's length."""
    if kind == ev.CLOCK_KIND_TIER:
        return "tier_" + ev.Tier.Name(ev.Tier.ValueType(tier)).removeprefix("TIER_").lower()
    return clock_label(kind)


def day_key(at: datetime) -> str:
    """The local day (``YYYYMMDD``) an instant falls on: clocks are bucketed by
    the day they fall due, so counting or finding what is due reads a few
    buckets rather than every open clock."""
    return at.astimezone(SHANGHAI).strftime("%Y%m%d")


# ---- what events do to clocks ------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """A deadline recomputed by re-evaluation, and what it was computed from."""

    warn_at: datetime
    estimated: bool
    started_at: datetime
    extra_days: int


@dataclass(frozen=True)
class ClockOp:
    # start | stop | extend | pause | resume | expire | warned | breached | move
    op: str
    kind: int
    at: datetime
    tier: int = 0
    days: int = 0
    moved: Moved | None = None  # for "move": ``at`` is the new deadline


def _when(event: ev.CaseEvent) -> datetime:
    return event.occurred_at.ToDatetime(tzinfo=UTC)


# event type -> the clock operations it causes, in order, given when it happened
CLOCK_OPS: Registry[Callable[[ev.CaseEvent, datetime], list[ClockOp]]] = Registry("clocks")


def clock_ops(event: ev.CaseEvent) -> list[ClockOp]:
    """The clock operations one case event causes, in order."""
    fn = CLOCK_OPS.get(event)
    return [] if fn is None else fn(event, _when(event))


@CLOCK_OPS.on("registered")
def _registered(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    received = event.registered.received_at.ToDatetime(tzinfo=UTC)
    return [
        ClockOp("start", ev.CLOCK_KIND_REGISTER_AND_ROUTE, received),
        ClockOp("start", ev.CLOCK_KIND_WRITTEN_NOTICE, received),
    ]


@CLOCK_OPS.on("routed")
def _routed(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    ops = [ClockOp("stop", ev.CLOCK_KIND_REGISTER_AND_ROUTE, at)]
    to_unit = event.routed.decision in (ev.ROUTING_DECISION_ACCEPT, ev.ROUTING_DECISION_FORWARD)
    if to_unit and not event.routed.designated:  # a designated unit may not object
        ops.append(ClockOp("start", ev.CLOCK_KIND_REMIT_OBJECTION, at))
    return ops


@CLOCK_OPS.on("remit_objected")
def _objected(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    # back to registration: a new register-and-route clock from now
    return [
        ClockOp("stop", ev.CLOCK_KIND_REMIT_OBJECTION, at),
        ClockOp("start", ev.CLOCK_KIND_REGISTER_AND_ROUTE, at),
    ]


@CLOCK_OPS.on("accepted")
def _accepted(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    ops = [
        ClockOp("stop", ev.CLOCK_KIND_REMIT_OBJECTION, at),
        ClockOp("start", ev.CLOCK_KIND_HANDLING, at),
    ]
    if event.accepted.tier:
        ops.append(ClockOp("start", ev.CLOCK_KIND_TIER, at, tier=event.accepted.tier))
    return ops


@CLOCK_OPS.on("tier_escalated")
def _escalated(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    return [
        ClockOp("stop", ev.CLOCK_KIND_TIER, at),
        ClockOp("start", ev.CLOCK_KIND_TIER, at, tier=event.tier_escalated.to_tier),
    ]


@CLOCK_OPS.on("handling_extended")
def _extended(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    return [ClockOp("extend", ev.CLOCK_KIND_HANDLING, at, days=event.handling_extended.days)]


@CLOCK_OPS.on("reply_issued")
def _replied(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    return [
        ClockOp("stop", ev.CLOCK_KIND_HANDLING, at),
        ClockOp("stop", ev.CLOCK_KIND_TIER, at),
        ClockOp("start", ev.CLOCK_KIND_REVIEW_REQUEST, at),
    ]


@CLOCK_OPS.on("review_requested")
def _review_requested(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    if event.review_requested.rereview:
        return [
            ClockOp("stop", ev.CLOCK_KIND_REREVIEW_REQUEST, at),
            ClockOp("start", ev.CLOCK_KIND_REREVIEW_DECISION, at),
        ]
    return [
        ClockOp("stop", ev.CLOCK_KIND_REVIEW_REQUEST, at),
        ClockOp("start", ev.CLOCK_KIND_REVIEW_DECISION, at),
    ]


@CLOCK_OPS.on("review_decided")
def _review_decided(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    if event.review_decided.rereview:
        return [ClockOp("stop", ev.CLOCK_KIND_REREVIEW_DECISION, at)]
    return [
        ClockOp("stop", ev.CLOCK_KIND_REVIEW_DECISION, at),
        ClockOp("start", ev.CLOCK_KIND_REREVIEW_REQUEST, at),
    ]


@CLOCK_OPS.on("backflow_reopened")
def _backflow(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    return [
        ClockOp("stop", ev.CLOCK_KIND_REVIEW_REQUEST, at),
        ClockOp("stop", ev.CLOCK_KIND_REREVIEW_REQUEST, at),
        ClockOp("start", ev.CLOCK_KIND_HANDLING, at),
    ]


@CLOCK_OPS.on("deadline_window_closed")
def _window_closed(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    w = event.deadline_window_closed
    return [ClockOp("expire", w.clock, w.due_at.ToDatetime(tzinfo=UTC))]


# the scanner's notices: the consumer marks the clock, so the scanner, which
# only reads clocks, does not notify twice for one deadline
@CLOCK_OPS.on("deadline_warned")
def _warned(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    w = event.deadline_warned
    return [ClockOp("warned", w.clock, w.due_at.ToDatetime(tzinfo=UTC))]


@CLOCK_OPS.on("deadline_breached")
def _breached(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    b = event.deadline_breached
    return [ClockOp("breached", b.clock, b.due_at.ToDatetime(tzinfo=UTC))]


@CLOCK_OPS.on("deadline_rescheduled")
def _rescheduled(event: ev.CaseEvent, at: datetime) -> list[ClockOp]:
    r = event.deadline_rescheduled
    moved = Moved(
        warn_at=r.warn_at.ToDatetime(tzinfo=UTC),
        estimated=r.estimated,
        started_at=r.started_at.ToDatetime(tzinfo=UTC),
        extra_days=r.extra_days,
    )
    return [ClockOp("move", r.clock, r.due_at.ToDatetime(tzinfo=UTC), tier=r.tier, moved=moved)]


def _one(op: str, kind: int) -> Callable[[ev.CaseEvent, datetime], list[ClockOp]]:
    return lambda event, at: [ClockOp(op, kind, at)]


CLOCK_OPS.on("notice_sent")(_one("stop", ev.CLOCK_KIND_WRITTEN_NOTICE))
CLOCK_OPS.on("hearing_started")(_one("pause", ev.CLOCK_KIND_REREVIEW_DECISION))
CLOCK_OPS.on("hearing_ended")(_one("resume", ev.CLOCK_KIND_REREVIEW_DECISION))
CLOCK_OPS.on("finalized")(_one("stop", ev.CLOCK_KIND_REREVIEW_REQUEST))


# ---- deadlines -----------------------------------------------------------------


def schedule(
    kind: int, tier: int, start: datetime, extra_days: int, district: District
) -> tuple[Deadline, datetime]:
    """(deadline, warning time) of a clock: the district's limit plus extra days."""
    name = limit_name(kind, tier)
    dl = district.deadline(name, start, extra_days)
    return dl, dl.due_at - timedelta(days=district.limit(name).warn_days)


def _hearing_days(paused_at: datetime, resumed_at: datetime) -> int:
    first = paused_at.astimezone(SHANGHAI).date()
    last = resumed_at.astimezone(SHANGHAI).date()
    return (last - first).days + 1


@dataclass
class Applied:
    """What applying ops to one clock document changed."""

    doc: dict[str, Any]
    stats: dict[str, int]  # increments of the district x clock tallies
    # the same increments for the unit a duty clock runs against, by unit id
    # (a window, or a clock before routing, belongs to no unit)
    unit_stats: dict[str, dict[str, int]]
    indexed: list[tuple[str, str]]  # (bucket kind "warn"/"due", day) to index the clock under
    closed_late_days: int = 0  # for a clock stopped late: how late, in days
    duration_days: float | None = None  # for a stopped clock: how long it ran


def tallied_unit(clock: Mapping[str, Any]) -> str:
    """The unit a clock counts against in the per-unit tallies, or "": only a
    duty clock started for a unit (a window, or the office's own clock before
    routing, belongs to none)."""
    return str(clock.get("unit_id") or "") if clock.get("duty") else ""


def apply_ops(
    doc: Mapping[str, Any] | None,
    ops: list[ClockOp],
    district: District,
    case_id: str,
    unit_id: str,
    leader_id: str,
) -> Applied:
    """Fold a clock document through ops. Pure: the caller reads and writes."""
    d: dict[str, Any] = {k: v for k, v in (doc or {}).items() if not k.startswith("_")}
    stats: dict[str, int] = {}
    unit_stats: dict[str, dict[str, int]] = {}
    indexed: list[tuple[str, str]] = []
    late_days = 0
    duration: float | None = None

    def bump(key: str, n: int) -> None:
        stats[key] = stats.get(key, 0) + n
        if unit := tallied_unit(d):  # read at the time: a restart moves it
            per = unit_stats.setdefault(unit, {})
            per[key] = per.get(key, 0) + n

    def index() -> None:
        indexed.append(("due", d["due_day"]))
        indexed.append(("warn", day_key(d["warn_at"])))

    def reschedule() -> None:
        dl, warn = schedule(d["kind"], d.get("tier", 0), d["started_at"], d["extra_days"], district)
        if d.get("open") and not d.get("paused") and "due_day" in d:
            bump(f"due.{d['due_day']}", -1)
        d.update(
            due_at=dl.due_at,
            due_day=day_key(dl.due_at),
            warn_at=warn,
            estimated=dl.estimated,
            warned=False,
            breached=False,
        )
        d.pop("closing", None)  # a window the scanner saw end ends later now
        if d.get("open") and not d.get("paused"):
            bump(f"due.{d['due_day']}", 1)
            index()

    for op in ops:
        if op.op == "start":
            if d.get("open"):  # restarted (an escalation, a backflow): the old one ends
                if not d.get("paused"):
                    bump(f"due.{d['due_day']}", -1)
                bump("open", -1)
            d.update(
                case_id=case_id,
                district_id=district.district_id,
                kind=op.kind,
                tier=op.tier,
                duty=op.kind in DUTY,
                started_at=op.at,
                extra_days=0,
                open=True,
                paused=False,
                unit_id=unit_id,
                leader_id=leader_id,
            )
            d.pop("closed_at", None)
            d.pop("on_time", None)
            bump("open", 1)
            bump("started", 1)
            reschedule()
        elif not d.get("open"):
            continue  # stopping, extending or pausing a clock that is not running
        elif op.op == "stop":
            on_time = op.at < d["due_at"]
            if not d.get("paused"):
                bump(f"due.{d['due_day']}", -1)
            d.update(open=False, closed_at=op.at, on_time=on_time, paused=False)
            bump("open", -1)
            bump("completed", 1)
            bump("completed_on_time", int(on_time))
            if not on_time:
                late_days = math.ceil((op.at - d["due_at"]).total_seconds() / 86400)
            duration = (op.at - d["started_at"]).total_seconds() / 86400
        elif op.op == "expire":
            # a window ran out (the scanner saw it): it closes, nobody failed;
            # unless it was restarted since, and so ends at another time
            if d.get("duty") or d["due_at"] != op.at:
                continue
            if not d.get("paused"):
                bump(f"due.{d['due_day']}", -1)
            d.update(open=False, expired=True, closed_at=d["due_at"], paused=False)
            bump("open", -1)
            bump("expired", 1)
        elif op.op in ("warned", "breached"):
            if d["due_at"] == op.at:  # else: a notice of a deadline since moved
                d[op.op] = True
        elif op.op == "move":
            m = op.moved
            if m is None or not _same_basis(d, op.tier, m):
                continue  # changed by a step since the move was computed
            if d["due_at"] == op.at:
                d["estimated"] = m.estimated  # the same day, now known (or not)
                continue
            if not d.get("paused"):
                bump(f"due.{d['due_day']}", -1)
            d.update(
                due_at=op.at,
                due_day=day_key(op.at),
                warn_at=m.warn_at,
                estimated=m.estimated,
                warned=False,
                breached=False,
            )
            d.pop("closing", None)
            if not d.get("paused"):
                bump(f"due.{d['due_day']}", 1)
                index()
        elif op.op == "extend":
            d["extra_days"] = d.get("extra_days", 0) + op.days
            reschedule()
        elif op.op == "pause" and not d.get("paused"):
            bump(f"due.{d['due_day']}", -1)
            d.update(paused=True, paused_at=op.at)
        elif op.op == "resume" and d.get("paused"):
            d["extra_days"] = d.get("extra_days", 0) + _hearing_days(d["paused_at"], op.at)
            d["paused"] = False
            d.pop("paused_at", None)
            reschedule()
    return Applied(
        d, stats, {u: v for u, v in unit_stats.items() if any(v.values())}, indexed,
        late_days, duration,
    )  # fmt: skip


def _same_basis(d: Mapping[str, Any], tier: int, m: Moved) -> bool:
    return bool(
        d.get("started_at") == m.started_at
        and d.get("extra_days", 0) == m.extra_days
        and d.get("tier", 0) == tier
    )


def moved_deadline(
    clock: Mapping[str, Any], district: District
) -> tuple[Deadline, datetime] | None:
    """The deadline an open clock gets under the district as it is now, or
    None when it keeps the one it has (re-evaluation's decision; the
    consumer applies it with a ``move``). The same day, now counted on a
    known year rather than an estimated one, is a move too: the clock stops
    saying ``estimated``."""
    if not clock.get("open"):
        return None
    dl, warn = schedule(
        clock["kind"], clock.get("tier", 0), clock["started_at"], clock.get("extra_days", 0),
        district,
    )  # fmt: skip
    if dl.due_at == clock["due_at"] and dl.estimated == bool(clock.get("estimated")):
        return None
    return dl, warn


# ---- SLA tallies for metrics --------------------------------------------------


def tally_sla(due: dict[str, int], today: str, warn_days: int) -> dict[SlaState, int]:
    """Open clocks by SLA state, from counts per due day (``YYYYMMDD``, the
    local day the clock falls due at 00:00 of)."""
    soon = (datetime.strptime(today, "%Y%m%d") + timedelta(days=warn_days)).strftime("%Y%m%d")
    out = dict.fromkeys(SlaState, 0)
    for day, n in due.items():
        if n <= 0:
            continue
        if day <= today:
            out[SlaState.OVERDUE] += n
        elif day <= soon:
            out[SlaState.DUE_SOON] += n
        else:
            out[SlaState.ON_TRACK] += n
    return out


def oldest_overdue_days(due: dict[str, int], today: str) -> int:
    days = [d for d, n in due.items() if n > 0 and d <= today]
    if not days:
        return 0
    return (datetime.strptime(today, "%Y%m%d") - datetime.strptime(min(days), "%Y%m%d")).days


OTHER_UNITS = "_other"


@dataclass
class UnitFigures:
    """A unit's duty clocks in one district, over every clock kind."""

    sla: dict[SlaState, int]
    oldest_overdue_days: int = 0
    completed: int = 0
    completed_on_time: int = 0
    breached: int = 0
    orders: int = 0


def unit_rollup(
    docs: Sequence[Mapping[str, Any]], today: str, max_units: int
) -> dict[tuple[str, str], UnitFigures]:
    """Per-unit figures from the (district, clock, unit) tally documents.

    Bounded: a district's units are its directory's, and past ``max_units``
    of them (by id, so a unit keeps its series) the rest add up under
    ``_other``. Each clock kind keeps its own warning lead for "due soon".
    """
    by_district: dict[str, set[str]] = {}
    for doc in docs:
        by_district.setdefault(str(doc["district_id"]), set()).add(str(doc["unit_id"]))
    named = {d: set(sorted(units)[:max_units]) for d, units in by_district.items()}
    out: dict[tuple[str, str], UnitFigures] = {}
    for doc in docs:
        district, unit = str(doc["district_id"]), str(doc["unit_id"])
        key = (district, unit if unit in named[district] else OTHER_UNITS)
        f = out.setdefault(key, UnitFigures(dict.fromkeys(SlaState, 0)))
        due = doc.get("due", {})
        for state, n in tally_sla(due, today, int(doc.get("warn_days", 3))).items():
            f.sla[state] += n
        f.oldest_overdue_days = max(f.oldest_overdue_days, oldest_overdue_days(due, today))
        f.completed += int(doc.get("completed", 0))
        f.completed_on_time += int(doc.get("completed_on_time", 0))
        f.breached += int(doc.get("breached", 0))
        f.orders += int(doc.get("orders", 0))
    return out
