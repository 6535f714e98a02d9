"""What each case event adds to a district's period figures. Pure: no I/O.

Figures are counted in the period (month, quarter, year; Asia/Shanghai) in
which the thing happened: a registration in the period it was received, a
routing decision in the period it was made.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI

__all__ = [
    "CHANNELS",
    "DECISIONS",
    "contributions",
    "parse_period",
    "period_keys",
    "period_section",
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
_PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|0[1-9]|1[0-2]))?$")


def period_keys(at: datetime) -> list[str]:
    local = at.astimezone(SHANGHAI)
    q = (local.month - 1) // 3 + 1
    return [f"{local.year}", f"{local.year}-Q{q}", f"{local.year}-{local.month:02d}"]


def year_doc_fields(at: datetime, inc: dict[str, int]) -> tuple[str, dict[str, int]]:
    """(year, increments) for the district's one counter document per year,
    which holds the year (``y.``), its quarters (``q.Qn.``) and months
    (``m.MM.``): one write per event instead of three."""
    year, quarter, month = period_keys(at)
    q, m = quarter[5:], month[5:]
    out: dict[str, int] = {}
    for k, v in inc.items():
        out[f"y.{k}"] = v
        out[f"q.{q}.{k}"] = v
        out[f"m.{m}.{k}"] = v
    return year, out


def period_section(doc: dict[str, object], period: str) -> dict[str, object]:
    """The figures of one period out of its year's counter document."""
    if len(period) == 4:
        sec = doc.get("y")
    elif period[5] == "Q":
        sec = (doc.get("q") or {}).get(period[5:])  # type: ignore[attr-defined]
    else:
        sec = (doc.get("m") or {}).get(period[5:])  # type: ignore[attr-defined]
    return sec if isinstance(sec, dict) else {}


def parse_period(period: str) -> str:
    """Normalise and check a period string; raises ValueError naming the forms."""
    if not _PERIOD.match(period.strip()):
        raise ValueError("use YYYY, YYYY-Qn or YYYY-MM")
    return period.strip()


def _key(s: str) -> str:
    # Mongo field names may not contain '.' or start with '$'
    return s.replace(".", "_").replace("$", "_")


def contributions(event: ev.CaseEvent) -> tuple[datetime, dict[str, int]] | None:
    """(when it counts, increments) for an event, or None if it adds nothing."""
    kind = event.WhichOneof("payload")
    if kind == "registered":
        r = event.registered
        inc = {
            "received": 1,
            "people": r.people_count,
            f"channel.{CHANNELS.get(r.channel, 'other')}": 1,
            f"category.{_key(r.category)}": 1,
            f"township.{_key(r.township_id)}": 1,
            "first": int(r.kind == ev.PETITION_KIND_FIRST),
            "repeat": int(r.kind == ev.PETITION_KIND_REPEAT),
            "group": int(r.group),
            "escalated": int(r.escalated),
        }
        return r.received_at.ToDatetime(tzinfo=UTC), inc
    if kind == "routed":
        r2 = event.routed
        return event.occurred_at.ToDatetime(tzinfo=UTC), {
            "routed": 1,
            f"decision.{DECISIONS.get(r2.decision, 'other')}": 1,
            f"unit.{_key(r2.unit_id)}": 1,
        }
    return None
