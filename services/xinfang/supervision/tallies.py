"""What each event adds to the accountability tallies of units and packaged
leaders (月督查季考评), per month. Pure: no I/O.

A unit answers for the cases routed to it, a leader for the cases it
packages. Counted in the month (Asia/Shanghai) the thing happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.supervision.clocks import DUTY, Applied

__all__ = ["TALLY_FIELDS", "month_of", "tally_deltas", "tally_doc_id"]

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


def tally_deltas(
    event: ev.CaseEvent,
    unit_id: str,
    leader_id: str,
    escalated: bool,
    clocks: Mapping[int, Applied],
) -> list[tuple[str, str, dict[str, int]]]:
    """[(kind, subject, increments)] for the unit and the leader concerned."""
    inc: dict[str, int] = {}
    k = event.WhichOneof("payload")
    remit = clocks.get(ev.CLOCK_KIND_REMIT_OBJECTION)
    if k in ("accepted", "remit_objected") and remit is not None:
        inc["accepted"] = 1
        inc["accepted_on_time"] = int(bool(remit.doc.get("on_time")))
    handling = clocks.get(ev.CLOCK_KIND_HANDLING)
    if k == "reply_issued" and handling is not None:
        inc["resolved"] = 1
        inc["resolved_on_time"] = int(bool(handling.doc.get("on_time")))
    late = sum(a.closed_late_days for kind, a in clocks.items() if kind in DUTY)
    if late:
        inc["overdue_days"] = late
    if k == "satisfaction_rated":
        r = event.satisfaction_rated.rating
        inc["rated"] = 1
        inc["satisfied"] = int(r == ev.SATISFACTION_SATISFIED)
        inc["basically_satisfied"] = int(r == ev.SATISFACTION_BASICALLY)
    if k == "backflow_reopened":
        inc["backflow"] = 1
    if k == "routed" and escalated and event.routed.unit_id:
        inc["escalated_petitions"] = 1
        unit_id = event.routed.unit_id
    if k == "supervision_order_issued":
        o = event.supervision_order_issued
        out: list[tuple[str, str, dict[str, int]]] = []
        if o.unit_id:
            out.append(("unit", o.unit_id, {"supervision_orders": 1}))
        if o.leader_id:
            out.append(("leader", o.leader_id, {"supervision_orders": 1}))
        return out
    inc = {f: n for f, n in inc.items() if n}
    if not inc:
        return []
    out = []
    if unit_id:
        out.append(("unit", unit_id, inc))
    if leader_id and k != "routed":  # a leader answers for handling, not for routing
        out.append(("leader", leader_id, inc))
    return out
