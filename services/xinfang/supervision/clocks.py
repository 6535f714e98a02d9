"""Statutory clocks, free of I/O: which clock an event starts or stops, and
when it falls due on the district's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import compute_deadline
from xinfang.core.districts import District

__all__ = [
    "ClockOpen",
    "SlaState",
    "clock_doc_id",
    "clock_label",
    "closed_by",
    "compute_warn",
    "oldest_overdue_days",
    "opened_by",
    "sla_state",
    "tally_sla",
]


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class ClockOpen:
    kind: int  # ev.ClockKind
    limit_name: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime
    estimated: bool
    unit_id: str = ""


def clock_label(kind: int) -> str:
    """The clock's name in ids and metric labels, e.g. ``register_and_route``."""
    return ev.ClockKind.Name(ev.ClockKind.ValueType(kind)).removeprefix("CLOCK_KIND_").lower()


def clock_doc_id(case_id: str, kind: int) -> str:
    return f"{case_id}:{clock_label(kind)}"


def opened_by(event: ev.CaseEvent, district: District) -> ClockOpen | None:
    """The clock an event starts, if any. Registration starts the 15-day
    register-and-route clock (Art. 22) from receipt."""
    if event.WhichOneof("payload") == "registered":
        start = event.registered.received_at.ToDatetime(tzinfo=UTC)
        limit = district.limit("register_and_route")
        dl = compute_deadline(start, limit.days, limit.day_type, district.calendar)
        warn = compute_warn(dl.due_at, limit.warn_days)
        return ClockOpen(
            ev.CLOCK_KIND_REGISTER_AND_ROUTE,
            "register_and_route",
            start,
            dl.due_at,
            warn,
            dl.estimated,
        )
    return None


def closed_by(event: ev.CaseEvent) -> int | None:
    """The clock kind an event stops, if any."""
    if event.WhichOneof("payload") == "routed":
        return ev.CLOCK_KIND_REGISTER_AND_ROUTE
    return None


def compute_warn(due_at: datetime, warn_days: int) -> datetime:
    return due_at - timedelta(days=warn_days)


def sla_state(now: datetime, due_at: datetime, warn_at: datetime) -> SlaState:
    if now >= due_at:
        return SlaState.OVERDUE
    if now >= warn_at:
        return SlaState.DUE_SOON
    return SlaState.ON_TRACK


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
