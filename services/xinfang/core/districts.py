"""A district (the tenant) as data: its townships, villages, units, categories,
time limits and routing table.

Nothing about a district is code: offices change their organisation and rules
at run time, and every change bumps a version so past decisions can be
explained by the table they were made with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from xinfang.core.calendar import DayType, Deadline, WorkCalendar, compute_deadline
from xinfang.core.errors import InvalidArgument

__all__ = [
    "DEFAULT_LIMITS",
    "District",
    "Leader",
    "LeaderRules",
    "Limit",
    "Reception",
    "RoutingRow",
    "Unit",
    "parse_district",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # no ".": ids become field names


@dataclass(frozen=True)
class Limit:
    days: int
    day_type: DayType
    warn_days: int = 3


# The statute's defaults (2022 regulations); each district may override any.
DEFAULT_LIMITS: dict[str, Limit] = {
    "register_and_route": Limit(15, DayType.CALENDAR, 3),  # Art. 22
    "written_notice": Limit(15, DayType.CALENDAR, 3),  # Art. 23
    "remit_objection": Limit(5, DayType.WORKING, 1),  # Art. 23
    "handling": Limit(60, DayType.CALENDAR, 10),  # Art. 34
    "handling_extension_max": Limit(30, DayType.CALENDAR, 0),  # Art. 34
    "review_request": Limit(30, DayType.CALENDAR, 5),  # Art. 35
    "review_decision": Limit(30, DayType.CALENDAR, 5),  # Art. 35
    "rereview_request": Limit(30, DayType.CALENDAR, 5),  # Art. 36
    "rereview_decision": Limit(30, DayType.CALENDAR, 5),  # Art. 36
    # time boxes of the 民事直说 ladder: not in the statute, district practice;
    # these defaults are ours (village at once, township within a set time)
    "tier_village_mediation": Limit(7, DayType.CALENDAR, 2),
    "tier_township": Limit(15, DayType.CALENDAR, 3),
    "tier_township_joint_meeting": Limit(15, DayType.CALENDAR, 3),
    "tier_township_leader_package": Limit(30, DayType.CALENDAR, 5),
    "tier_district_leader_package": Limit(60, DayType.CALENDAR, 10),
}


@dataclass(frozen=True)
class Leader:
    leader_id: str
    name: str
    level: str  # "district" (县级领导) or "township"
    township_id: str = ""


@dataclass(frozen=True)
class LeaderRules:
    """Which cases a leader packages (领导包案) on acceptance, by rule (Art. 18)."""

    group: bool = True  # 集体访
    higher_level: bool = True  # 上级交办 backlog batches
    escalated: bool = True  # 越级访
    repeat_threshold: int = 3  # this many earlier petitions on the matter


@dataclass(frozen=True)
class Reception:
    """Leader reception days (领导接访日): a weekly rota plus dated exceptions."""

    weekday: int = 3  # Thursday
    rota: tuple[str, ...] = ()
    start: date = date(2026, 1, 1)
    dates: tuple[tuple[date, str], ...] = ()

    def leader_on(self, day: date) -> str | None:
        for d, leader in self.dates:
            if d == day:
                return leader
        if not self.rota or day.weekday() != self.weekday or day < self.start:
            return None
        return self.rota[((day - self.start).days // 7) % len(self.rota)]


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    kind: str  # township | department | office | external


@dataclass(frozen=True)
class RoutingRow:
    rule_id: str
    unit_id: str
    category: str = ""  # "" = any
    township_id: str = ""  # "" = any
    decision: str = "accept"  # accept | forward | out_litigation | out_discipline | decline


@dataclass(frozen=True)
class District:
    district_id: str
    name: str
    townships: dict[str, str]  # id -> name
    villages: dict[str, tuple[str, str]]  # id -> (township id, name)
    categories: dict[str, str]  # code -> name
    units: dict[str, Unit]
    routing: tuple[RoutingRow, ...]
    limits: dict[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    leaders: dict[str, Leader] = field(default_factory=dict)
    leader_rules: LeaderRules = field(default_factory=LeaderRules)
    reception: Reception = field(default_factory=Reception)
    # score weights and fairness settings, parsed by supervision.scoring
    scoring: dict[str, Any] = field(default_factory=dict)
    # how far back a step may be entered late (补录), in days; imported
    # histories are not bound by it
    late_entry_days: int = 30
    version: int = 1

    def limit(self, name: str) -> Limit:
        return self.limits.get(name) or DEFAULT_LIMITS[name]

    def deadline(self, name: str, start: datetime, extra_days: int = 0) -> Deadline:
        """When the period ``name`` started at ``start`` ends on this district's
        calendar, with ``extra_days`` added (an extension, a hearing's days).
        The one place every service asks, so they agree on every deadline."""
        limit = self.limit(name)
        return compute_deadline(start, limit.days + extra_days, limit.day_type, self.calendar)


def _req(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc or doc[key] in ("", None):
        raise InvalidArgument(f"{where}.{key}", "is required")
    return doc[key]


def _check_id(value: str, where: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidArgument(where, f"{value!r} is not a valid id (lowercase a-z, 0-9, _ and -)")
    return value


def parse_district(doc: dict[str, Any]) -> District:
    """Validate a district document (JSON as loaded by ``xinfang district load``)."""
    did = _check_id(_req(doc, "district_id", "district"), "district.district_id")
    townships: dict[str, str] = {}
    villages: dict[str, tuple[str, str]] = {}
    for i, t in enumerate(_req(doc, "townships", "district")):
        tid = _check_id(_req(t, "id", f"townships[{i}]"), f"townships[{i}].id")
        townships[tid] = _req(t, "name", f"townships[{i}]")
        for j, v in enumerate(t.get("villages", [])):
            vid = _check_id(_req(v, "id", f"townships[{i}].villages[{j}]"), "village.id")
            villages[vid] = (tid, _req(v, "name", f"townships[{i}].villages[{j}]"))
    categories = {
        _check_id(c["code"], "categories.code"): c["name"]
        for c in _req(doc, "categories", "district")
    }
    units = {
        u["id"]: Unit(_check_id(u["id"], "units.id"), u["name"], u.get("kind", "department"))
        for u in _req(doc, "units", "district")
    }
    routing: list[RoutingRow] = []
    for i, r in enumerate(doc.get("routing", [])):
        row = RoutingRow(
            rule_id=_req(r, "rule_id", f"routing[{i}]"),
            unit_id=_req(r, "unit_id", f"routing[{i}]"),
            category=r.get("category", ""),
            township_id=r.get("township_id", ""),
            decision=r.get("decision", "accept"),
        )
        if row.unit_id not in units:
            raise InvalidArgument(f"routing[{i}].unit_id", f"unknown unit {row.unit_id!r}")
        if row.category and row.category not in categories:
            raise InvalidArgument(f"routing[{i}].category", f"unknown category {row.category!r}")
        if row.township_id and row.township_id not in townships:
            raise InvalidArgument(
                f"routing[{i}].township_id", f"unknown township {row.township_id!r}"
            )
        routing.append(row)
    limits = dict(DEFAULT_LIMITS)
    for name, spec in (doc.get("limits") or {}).items():
        if name not in DEFAULT_LIMITS:
            raise InvalidArgument(f"limits.{name}", "unknown time limit")
        limits[name] = _parse_limit(name, spec)
    cal = doc.get("calendar") or {}
    try:
        calendar = WorkCalendar.with_overrides(
            rest=[date.fromisoformat(d) for d in cal.get("rest_days", [])],
            working=[date.fromisoformat(d) for d in cal.get("working_days", [])],
        )
    except (TypeError, ValueError) as e:
        raise InvalidArgument("calendar", f"dates must be YYYY-MM-DD: {e}") from e
    leaders = _parse_leaders(doc.get("leaders", []), townships)
    rules_doc = doc.get("leader_rules") or {}
    try:
        leader_rules = LeaderRules(
            group=bool(rules_doc.get("group", True)),
            higher_level=bool(rules_doc.get("higher_level", True)),
            escalated=bool(rules_doc.get("escalated", True)),
            repeat_threshold=int(rules_doc.get("repeat_threshold", 3)),
        )
    except (TypeError, ValueError) as e:
        raise InvalidArgument("leader_rules.repeat_threshold", "must be a whole number") from e
    reception = _parse_reception(doc.get("reception") or {}, leaders)
    late = doc.get("late_entry_days", 30)
    if isinstance(late, bool) or not isinstance(late, int) or not 0 <= late <= 366:
        raise InvalidArgument("late_entry_days", "is a whole number of days, 0 to 366")
    return District(
        district_id=did,
        name=_req(doc, "name", "district"),
        townships=townships,
        villages=villages,
        categories=categories,
        units=units,
        routing=tuple(routing),
        limits=limits,
        calendar=calendar,
        leaders=leaders,
        leader_rules=leader_rules,
        reception=reception,
        scoring=dict(doc.get("scoring") or {}),
        late_entry_days=late,
        version=int(doc.get("version", 1)),
    )


def _parse_limit(name: str, spec: Any) -> Limit:
    where = f"limits.{name}"
    if not isinstance(spec, dict):
        raise InvalidArgument(where, "must be an object with days, day_type, warn_days")
    try:
        days = int(spec["days"])
        day_type = DayType(spec.get("day_type", "calendar"))
        warn = int(spec.get("warn_days", min(3, days - 1)))
    except KeyError as e:
        raise InvalidArgument(f"{where}.days", "is required") from e
    except (TypeError, ValueError) as e:
        raise InvalidArgument(
            where,
            f"days and warn_days are whole numbers, day_type 'calendar' or 'working': {e}",
        ) from e
    if days < 1:
        raise InvalidArgument(f"{where}.days", "must be at least 1")
    if not 0 <= warn < days:
        raise InvalidArgument(f"{where}.warn_days", "must be at least 0 and less than days")
    return Limit(days, day_type, warn)


def _parse_leaders(items: Any, townships: dict[str, str]) -> dict[str, Leader]:
    leaders: dict[str, Leader] = {}
    for i, item in enumerate(items):
        where = f"leaders[{i}]"
        lid = _check_id(_req(item, "id", where), f"{where}.id")
        level = item.get("level", "district")
        if level not in ("district", "township"):
            raise InvalidArgument(f"{where}.level", "is 'district' or 'township'")
        tid = item.get("township_id", "")
        if level == "township" and tid not in townships:
            raise InvalidArgument(f"{where}.township_id", f"unknown township {tid!r}")
        leaders[lid] = Leader(lid, _req(item, "name", where), level, tid)
    return leaders


def _parse_reception(doc: dict[str, Any], leaders: dict[str, Leader]) -> Reception:
    try:
        rota = tuple(doc.get("rota", []))
        dates = tuple(
            (date.fromisoformat(d), lid) for d, lid in sorted((doc.get("dates") or {}).items())
        )
        start = date.fromisoformat(doc.get("start", "2026-01-01"))
        weekday = int(doc.get("weekday", 3))
    except (TypeError, ValueError) as e:
        raise InvalidArgument("reception", f"dates are YYYY-MM-DD, weekday 0-6: {e}") from e
    for lid in (*rota, *(lid for _, lid in dates)):
        if lid not in leaders:
            raise InvalidArgument("reception", f"unknown leader {lid!r}")
    if not 0 <= weekday <= 6:
        raise InvalidArgument("reception.weekday", "0 (Monday) to 6 (Sunday)")
    return Reception(weekday=weekday, rota=rota, start=start, dates=dates)
