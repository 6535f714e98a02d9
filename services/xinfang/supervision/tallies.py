"""What each event adds to the accountability tallies of units and packaged
leaders (月督查季考评), per month. Pure: no I/O.

A unit answers for the cases routed to it, a leader for the cases it
packages. Counted in the month (Asia/Shanghai) the thing happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.registry import Registry
from xinfang.supervision.clocks import DUTY, Applied

__all__ = ["TALLIES", "TALLY_FIELDS", "month_of", "tally_deltas", "tally_doc_id"]

TALLY_FIELDS = (
    "accepted",
    "accepted_on_time",
    "resolved",
    "resolved_on_time",
    "rated",
    "satisfied",
    "basically_satisfied",
    "backflow",
    "escalated_petitions",
    "overdue_days",
    "supervision_orders",
)


def month_of(event: ev.CaseEvent) -> str:
    return event.occurred_at.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI).strftime("%Y-%m")


def tally_doc_id(district_id: str, month: str, kind: str, subject: str) -> str:
    return f"{district_id}:{month}:{kind}:{subject}"


@dataclass(frozen=True)
class Answerable:
    """Who answers for a case at an event: its unit and packaged leader."""

    unit_id: str
    leader_id: str
    escalated: bool


Deltas = list[tuple[str, str, dict[str, int]]]  # [(kind, subject, increments)]
# event type -> its increments, given who answers for the case and what the
# event did to the case's clocks
TALLIES: Registry[Callable[[ev.CaseEvent, Answerable, Mapping[int, Applied]], Deltas]] = Registry(
    "tallies"
)


def _both(who: Answerable, inc: dict[str, int]) -> Deltas:
    """The unit's and the packaged leader's increments."""
    inc = {f: n for f, n in inc.items() if n}
    if not inc:
        return []
    out: Deltas = []
    if who.unit_id:
        out.append(("unit", who.unit_id, inc))
    if who.leader_id:
        out.append(("leader", who.leader_id, inc))
    return out


@TALLIES.on("accepted", "remit_objected")
def _accepted(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    remit = clocks.get(ev.CLOCK_KIND_REMIT_OBJECTION)
    if remit is None:
        return []
    on_time = int(bool(remit.doc.get("on_time")))
    return _both(who, {"accepted": 1, "accepted_on_time": on_time})


@TALLIES.on("reply_issued")
def _replied(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    handling = clocks.get(ev.CLOCK_KIND_HANDLING)
    if handling is None:
        return []
    on_time = int(bool(handling.doc.get("on_time")))
    return _both(who, {"resolved": 1, "resolved_on_time": on_time})


@TALLIES.on("satisfaction_rated")
def _rated(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    r = event.satisfaction_rated.rating
    return _both(who, {
        "rated": 1,
        "satisfied": int(r == ev.SATISFACTION_SATISFIED),
        "basically_satisfied": int(r == ev.SATISFACTION_BASICALLY),
    })  # fmt: skip


@TALLIES.on("backflow_reopened")
def _backflow(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    return _both(who, {"backflow": 1})


@TALLIES.on("routed")
def _routed(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    if not (who.escalated and event.routed.unit_id):
        return []
    return [("unit", who.unit_id, {"escalated_petitions": 1})]


@TALLIES.on("supervision_order_issued")
def _order(event: ev.CaseEvent, who: Answerable, clocks: Mapping[int, Applied]) -> Deltas:
    o = event.supervision_order_issued  # names whom it is issued to
    out: Deltas = []
    if o.unit_id:
        out.append(("unit", o.unit_id, {"supervision_orders": 1}))
    if o.leader_id:
        out.append(("leader", o.leader_id, {"supervision_orders": 1}))
    return out


def tally_deltas(
    event: ev.CaseEvent,
    unit_id: str,
    leader_id: str,
    escalated: bool,
    clocks: Mapping[int, Applied],
) -> Deltas:
    """[(kind, subject, increments)] for the unit and the leader concerned:
    what the event's type counts (``TALLIES``), and for any event the days
    by which the duty clocks it stopped were late."""
    who = Answerable(unit_id, leader_id, escalated)
    if event.HasField("routed"):
        # routing is the office's: a leader answers for handling, not for
        # routing, and an escalated petition counts against the unit it is
        # routed to
        routed_to = event.routed.unit_id if escalated and event.routed.unit_id else unit_id
        who = Answerable(routed_to, "", escalated)
    fn = TALLIES.get(event)
    out = fn(event, who, clocks) if fn is not None else []
    late = sum(a.closed_late_days for kind, a in clocks.items() if kind in DUTY)
    if not late or event.HasField("supervision_order_issued"):
        return out
    merged: dict[tuple[str, str], dict[str, int]] = {(k, s): dict(i) for k, s, i in out}
    for kind, subject, inc in _both(who, {"overdue_days": late}):
        merged.setdefault((kind, subject), {}).update(inc)
    return [(k, s, i) for (k, s), i in merged.items()]
