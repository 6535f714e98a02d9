"""Supervision: holds every unit and leader to time (全流程办理，全方位监督).

* Consumes case events and keeps every statutory clock (``clocks.py``), one
  document per case and clock kind, written idempotently.
* A scanner finds what is due by reading day buckets (``due:<day>``,
  ``warn:<day>``) of clock ids, so its work is proportional to what falls
  due, not to what is open. It publishes ``DeadlineWarned``,
  ``DeadlineBreached`` and ``SupervisionOrderIssued`` (to the unit and the
  packaged leader) as one immutable notice record per clock and due date,
  published by the outbox (a second pass or replica records nothing twice).
  A tier's
  breach makes assignment escalate the case.
* Tallies per district and clock feed Prometheus; tallies per unit and
  leader and month feed scores and rankings (``scoring.py``), published on
  the rankings topic and queryable over gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from pymongo.errors import DuplicateKeyError

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import OVERSIGHT
from xinfang.core.batch import Batch, BatchConsumer
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event, payload_name, to_timestamp
from xinfang.core.directory import Directory
from xinfang.core.districts import District
from xinfang.core.errors import InvalidArgument, NotFound
from xinfang.core.grpc_server import rpc
from xinfang.core.lease import Lease
from xinfang.core.logging import get_logger
from xinfang.core.mongo import (
    TRANSIENT_ERRORS,
    Collection,
    Position,
    doc_lock,
    upsert_by_id,
)
from xinfang.core.outbox import Outbox, outbox_field
from xinfang.core.periods import months_of, parse_period
from xinfang.core.registry import Registry
from xinfang.core.runtime import BatchHandler, Runtime, ServiceSpec
from xinfang.core.store import Store
from xinfang.supervision import scoring
from xinfang.supervision.clocks import (
    Applied,
    SlaState,
    apply_ops,
    clock_doc_id,
    clock_label,
    clock_ops,
    day_key,
    limit_name,
    oldest_overdue_days,
    schedule,
    tallied_unit,
    tally_sla,
    unit_rollup,
)
from xinfang.supervision.tallies import TALLY_FIELDS, month_of, tally_deltas, tally_doc_id
from xinfang.supervision.v1 import supervision_pb2 as pb
from xinfang.supervision.v1 import supervision_pb2_grpc as pb_grpc

__all__ = ["SPEC", "ClockMetrics", "Supervision"]

SERVICE = "supervision"
log = get_logger(__name__)
_IDS = uuid.UUID("0d5b8a7e-93f1-4a0c-9c55-2f1f6c1f2b33")
_SYSTEM = ev.Actor(user_id="supervision", role="system")

NOTICES = "notices"  # the scanner's recorded warnings, breaches and orders
CLOCKS = "clocks"  # one per case and clock kind
CASES = "cases"  # per case: who answers for it, and which events it has seen
STATS = "clock_stats"  # per district (and unit) and clock kind: counters
TALLIES = "tallies"  # per unit or leader and month: counters for scores
BUCKETS = "due_buckets"  # per day: the clocks due (or to be warned) that day
RECHECKS = "rechecks"  # clocks indexed under a day the scanner has passed

STAGE_DAYS = Histogram(
    "xinfang_stage_duration_days",
    "How long a statutory clock ran before it was stopped, in days",
    ["district", "clock"],
    buckets=(0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120),
)


def _unset_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, str]:
    return {k: "" for k in (old or {}) if not k.startswith("_") and k not in new}


class Supervision:
    def __init__(self, rt_db: Any, outbox: Outbox, directory: Directory) -> None:
        self.clocks: Collection = rt_db[CLOCKS]
        self.stats: Collection = rt_db[STATS]
        self.cases: Collection = rt_db[CASES]
        self.buckets: Collection = rt_db[BUCKETS]
        self.meta: Collection = rt_db["meta"]
        self.rechecks: Collection = rt_db[RECHECKS]
        self.tallies: Collection = rt_db[TALLIES]
        self.rankings: Collection = rt_db["rankings"]
        self.outbox = outbox
        self.directory = directory
        self.producer: AIOKafkaProducer | None = None
        self.rankings_topic = "xinfang.rankings.v1"

    # ---- consuming case events ---------------------------------------------------

    def consumer(self, store: Store) -> BatchConsumer:
        """The consumer over batches (``core.batch``): counters are written
        first, then clocks (each with its applied marker), and last the
        case's record of the event, whose marker therefore means that
        everything the event changed is written."""
        return BatchConsumer(store, (CLOCKS, CASES), self._prepare, self.apply, TRANSIENT_ERRORS)

    async def _prepare(self, b: Batch, items: Sequence[tuple[ev.CaseEvent, Position]]) -> None:
        await b.load(CASES, [e.case_id for e, _ in items])
        await b.load(
            CLOCKS,
            [clock_doc_id(e.case_id, op.kind) for e, _ in items for op in clock_ops(e)],
        )

    async def apply(self, b: Batch, event: ev.CaseEvent, pos: Position) -> str:
        """One event's effect: its clocks, every counter they move, and the
        record that it was applied, all into the batch."""
        district = await self.directory.get(event.district_id)
        case = await b.get(CASES, event.case_id) or {}
        if case and case.get("district_id") != event.district_id:
            raise InvalidArgument("district_id", "case belongs to another district")
        if event.event_id in case.get("_applied", {}):
            return "duplicate"
        case_upd, info = _case_info(event, case)
        ops = clock_ops(event)
        marker = {f"_applied.{event.event_id}": [pos.partition, pos.offset]}
        today = datetime.now(SHANGHAI).strftime("%Y%m%d")
        by_kind: dict[int, Applied] = {}
        # (clock, unit) -> increments; unit "" is the district's own tally
        tallies: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for kind in dict.fromkeys(op.kind for op in ops):
            doc_id = clock_doc_id(event.case_id, kind)
            old = await b.get(CLOCKS, doc_id)
            if old is not None and old["district_id"] != event.district_id:
                raise InvalidArgument("district_id", "clock belongs to another district")
            if old is not None and event.event_id in old.get("_applied", {}):
                continue  # written by a try that crashed; its counters went first
            res = apply_ops(
                old,
                [op for op in ops if op.kind == kind],
                district,
                event.case_id,
                info.get("unit_id", ""),
                info.get("leader_id", ""),
            )
            if old is None and not res.doc:
                continue  # stopping a clock that never ran
            upd: dict[str, Any] = {"$set": {**res.doc, **marker}}
            if unset := _unset_fields(old, res.doc):
                upd["$unset"] = unset
            b.update(CLOCKS, doc_id, upd)
            for bucket, day in res.indexed:
                b.also(BUCKETS, f"{bucket}:{day}", {"$addToSet": {"ids": doc_id}})
                if day <= today:
                    # due (or to be warned) already: the scanner may have
                    # passed that day, so it looks at this clock next pass
                    b.also(RECHECKS, f"{bucket}:{doc_id}", {"$set": {"day": day}})
            by_kind[kind] = res
            label = clock_label(kind)
            tallies[(label, "")].update(res.stats)
            for unit, deltas in res.unit_stats.items():
                tallies[(label, unit)].update(deltas)
            if res.duration_days is not None:
                STAGE_DAYS.labels(event.district_id, label).observe(res.duration_days)
        k = payload_name(event)
        if counted := _COUNTED.get(k):
            payload = getattr(event, k)
            tallies[(clock_label(payload.clock), "")][counted] += 1
            if payload.unit_id:
                tallies[(clock_label(payload.clock), payload.unit_id)][counted] += 1
        await self._count(b, event, pos, district, info, by_kind, tallies)
        b.update(CASES, event.case_id, {"$set": {**case_upd, **marker}})
        return "applied"

    async def _count(
        self,
        b: Batch,
        event: ev.CaseEvent,
        pos: Position,
        district: District,
        info: dict[str, Any],
        by_kind: dict[int, Applied],
        tallies: defaultdict[tuple[str, str], Counter[str]],
    ) -> None:
        """Every counter the event moves, each refused at a position it has
        counted already."""
        for (label, unit), deltas in tallies.items():
            inc = {f: n for f, n in deltas.items() if n}
            if not inc:
                continue
            warn = district.limit(_stats_limit(ev.ClockKind.Value(f"CLOCK_KIND_{label.upper()}")))
            doc = {"district_id": event.district_id, "clock": label, "warn_days": warn.warn_days}
            if unit:
                doc["unit_id"] = unit
            await b.count(STATS, stats_doc_id(event.district_id, label, unit), pos, inc, doc)
        month = month_of(event)
        for kind_name, subject, inc in tally_deltas(
            event,
            info.get("unit_id", ""),
            info.get("leader_id", ""),
            bool(info.get("escalated")),
            by_kind,
        ):
            await b.count(
                TALLIES,
                tally_doc_id(event.district_id, month, kind_name, subject),
                pos,
                inc,
                {"district_id": event.district_id, "month": month, "kind": kind_name,
                 "subject": subject},
            )  # fmt: skip

    async def _index(self, bucket: str, day: str, clock_id: str) -> None:
        await upsert_by_id(self.buckets, f"{bucket}:{day}", {"$addToSet": {"ids": clock_id}})
        if day <= datetime.now(SHANGHAI).strftime("%Y%m%d"):
            # due (or to be warned) already: the scanner may have passed that
            # day, so it looks at this one clock on its next pass
            with contextlib.suppress(DuplicateKeyError):
                await self.rechecks.insert_one({"_id": f"{bucket}:{clock_id}"})

    # ---- the scanner ------------------------------------------------------------------

    async def scan(self, now: datetime, lookback_days: int = 90) -> int:
        """One pass over the buckets due up to today; returns events emitted."""
        today = now.astimezone(SHANGHAI).date()
        meta = await self.meta.find_one({"_id": "scan"}) or {}
        start = today - timedelta(days=lookback_days)
        if "done_through" in meta:  # catch up from where the last pass ended
            start = _day(meta["done_through"]) + timedelta(days=1)
        emitted = 0
        # clocks indexed on days already passed (the collection holds only those)
        for r in await self.rechecks.find({}).to_list(5000):
            bucket, clock_id = r["_id"].split(":", 1)
            emitted += await self._check(clock_id, bucket, now)
            await self.rechecks.delete_one({"_id": r["_id"]})
        day = start
        while day <= today:
            key = day.strftime("%Y%m%d")
            for bucket in ("warn", "due"):
                doc = await self.buckets.find_one({"_id": f"{bucket}:{key}"})
                for clock_id in (doc or {}).get("ids", []):
                    emitted += await self._check(clock_id, bucket, now)
            day += timedelta(days=1)
        # a day's clocks fall due at its 00:00, so today's buckets are done too;
        # a clock indexed under them later comes through the rechecks
        done = today.strftime("%Y%m%d")
        await upsert_by_id(self.meta, "scan", {"$set": {"done_through": done}})
        return emitted

    async def _check(self, clock_id: str, bucket: str, now: datetime) -> int:
        async with doc_lock(self.clocks, clock_id):
            return await self._check_locked(clock_id, bucket, now)

    async def _check_locked(self, clock_id: str, bucket: str, now: datetime) -> int:
        c = await self.clocks.find_one({"_id": clock_id})
        if c is None or not c.get("open") or c.get("paused"):
            return 0
        kind = c["kind"]
        events: list[ev.CaseEvent] = []
        fields: dict[str, Any] = {}
        due_ts = to_timestamp(c["due_at"])

        def event_id(what: str) -> str:  # deterministic: a second pass emits the same ids
            return str(uuid.uuid5(_IDS, f"{clock_id}:{what}:{c['due_at'].isoformat()}"))

        def make(what: str, **payload: Any) -> ev.CaseEvent:
            return new_event(
                case_id=c["case_id"],
                district_id=c["district_id"],
                producer=SERVICE,
                case_version=0,
                actor=_SYSTEM,
                event_id=event_id(what),
                **payload,
            )

        info = await self.cases.find_one({"_id": c["case_id"]}) or {}
        unit = str(info.get("unit_id") or c.get("unit_id") or "")
        leader = str(info.get("leader_id") or "")
        if bucket == "warn" and not c.get("warned") and c["warn_at"] <= now < c["due_at"]:
            if c.get("duty"):
                events.append(
                    make("warn", deadline_warned=ev.DeadlineWarned(
                        clock=kind, due_at=due_ts, unit_id=unit))
                )  # fmt: skip
            fields["warned"] = True
        if bucket == "due" and not c.get("breached") and c["due_at"] <= now:
            if c.get("duty"):
                days = max(1, (now - c["due_at"]).days + 1)
                events.append(
                    make("breach", deadline_breached=ev.DeadlineBreached(
                        clock=kind, due_at=due_ts, unit_id=unit, tier=c.get("tier", 0)))
                )  # fmt: skip
                events.append(
                    make("order", supervision_order_issued=ev.SupervisionOrderIssued(
                        order_id=event_id("order-id"), clock=kind, unit_id=unit,
                        leader_id=leader, days_overdue=days))
                )  # fmt: skip
                fields["breached"] = True
            elif not c.get("closing"):
                # a window ran out: it closes, nobody failed. Closed by the
                # consumer at this event, so its counts move exactly once
                events.append(
                    make("closed", deadline_window_closed=ev.DeadlineWindowClosed(
                        clock=kind, due_at=due_ts))
                )  # fmt: skip
                fields["closing"] = True
        if not fields:
            return 0
        if events:
            # the notices are one immutable record, its _id fixed by the clock
            # and due date: a second pass, or a second replica, cannot record
            # them twice, and the outbox publishes what one recorded
            await self.outbox.record(
                NOTICES,
                [{"_id": events[0].event_id, "district_id": c["district_id"],
                  "case_id": c["case_id"], "outbox": outbox_field(events)}],
            )  # fmt: skip
        await self.clocks.update_one({"_id": clock_id}, {"$set": fields})
        return len(events)

    async def reevaluate(self, district_id: str, horizon_days: int = 400) -> tuple[int, int]:
        """Recompute the deadlines of a district's open clocks (its calendar or
        limits changed). Reads the due buckets around today: work grows with
        the open clocks of that district, not with all clocks."""
        district = await self.directory.get(district_id)
        today = datetime.now(SHANGHAI).date()
        seen: set[str] = set()
        open_n = moved = 0
        for offset in range(-horizon_days, horizon_days + 1):
            key = (today + timedelta(days=offset)).strftime("%Y%m%d")
            doc = await self.buckets.find_one({"_id": f"due:{key}"})
            for clock_id in (doc or {}).get("ids", []):
                if clock_id in seen:
                    continue
                seen.add(clock_id)
                async with doc_lock(self.clocks, clock_id):
                    moved_to = await self._reschedule(clock_id, district, key)
                if moved_to is None:
                    continue
                open_n += 1
                if moved_to:
                    moved += 1
        return open_n, moved

    async def _reschedule(self, clock_id: str, district: District, key: str) -> str | None:
        """Recompute one open clock (caller holds its lock); None if it is not
        an open clock of the district indexed under ``key``, "" if unmoved."""
        c = await self.clocks.find_one({"_id": clock_id})
        if c is None or c["district_id"] != district.district_id or not c.get("open"):
            return None
        if c.get("due_day") != key:
            return None  # a stale bucket entry; the clock is indexed elsewhere
        dl, warn = schedule(
            c["kind"], c.get("tier", 0), c["started_at"], c.get("extra_days", 0), district
        )
        if dl.due_at == c["due_at"]:
            return ""
        new_day = day_key(dl.due_at)
        await self.clocks.update_one(
            {"_id": clock_id},
            {"$set": {"due_at": dl.due_at, "due_day": new_day, "warn_at": warn,
                      "estimated": dl.estimated, "warned": False, "breached": False,
                      "closing": False}},
        )  # fmt: skip
        if not c.get("paused"):
            moved = {"$inc": {f"due.{c['due_day']}": -1, f"due.{new_day}": 1}}
            label = clock_label(c["kind"])
            await upsert_by_id(self.stats, stats_doc_id(district.district_id, label), moved)
            if unit := tallied_unit(c):
                unit_doc = stats_doc_id(district.district_id, label, unit)
                await upsert_by_id(self.stats, unit_doc, moved)
        await self._index("due", new_day, clock_id)
        await self._index("warn", day_key(warn), clock_id)
        return new_day

    # ---- queries and rankings ----------------------------------------------------------

    async def case_clocks(self, district_id: str, case_id: str) -> pb.CaseClocks:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        if not case_id:
            raise InvalidArgument("case_id", "is required")
        out = pb.CaseClocks(case_id=case_id)
        for kind in ev.ClockKind.values():
            if kind == ev.CLOCK_KIND_UNSPECIFIED:
                continue
            c = await self.clocks.find_one({"_id": clock_doc_id(case_id, kind)})
            if c is None or c["district_id"] != district_id:
                continue
            out.clocks.append(
                pb.Clock(
                    kind=c["kind"],
                    started_at=to_timestamp(c["started_at"]),
                    due_at=to_timestamp(c["due_at"]),
                    open=c["open"],
                    breached=c.get("breached", False),
                    warned=c.get("warned", False),
                    paused=c.get("paused", False),
                    extra_days=c.get("extra_days", 0),
                    estimated=c.get("estimated", False),
                    unit_id=c.get("unit_id", ""),
                )
            )
        return out

    async def publish_ranking(self, district_id: str, period: str) -> list[pb.Ranking]:
        months = _months(period)
        district = await self.directory.get(district_id)
        rules = scoring.parse_scoring(district.scoring)
        subjects = {
            "unit": [u for u, x in district.units.items() if x.kind != "external"],
            "leader": list(district.leaders),
        }
        out = []
        for kind, ids in subjects.items():
            tallies = []
            for subject in ids:
                total = dict.fromkeys(TALLY_FIELDS, 0)
                for m in months:
                    doc = await self.tallies.find_one(
                        {"_id": tally_doc_id(district_id, m, kind, subject)}
                    )
                    for f in TALLY_FIELDS:
                        total[f] += int((doc or {}).get(f, 0))
                tallies.append(scoring.Tally(subject=subject, kind=kind, **total))
            scores = scoring.score_all(tallies, rules)
            ranking = pb.Ranking(
                district_id=district_id,
                period=period,
                kind=kind,
                ranking_id=str(uuid.uuid4()),
                published_at=to_timestamp(datetime.now(UTC)),
                rows=[
                    pb.ScoreRow(
                        subject=s.subject,
                        score=s.score,
                        volume=s.volume,
                        ranked=s.ranked,
                        rank=s.rank or 0,
                        bottom=s.bottom,
                        components=s.components,
                    )
                    for s in scores
                ],
            )
            await upsert_by_id(
                self.rankings,
                f"{district_id}:{period}:{kind}",
                {"$set": {"district_id": district_id, "bytes": ranking.SerializeToString()}},
            )
            if self.producer is not None:
                await self.producer.send_and_wait(
                    self.rankings_topic, value=ranking.SerializeToString(), key=district_id.encode()
                )
            out.append(ranking)
        return out

    async def get_ranking(self, district_id: str, period: str, kind: str) -> pb.Ranking:
        _months(period)
        if kind not in ("unit", "leader"):
            raise InvalidArgument("kind", "unit or leader")
        doc = await self.rankings.find_one({"_id": f"{district_id}:{period}:{kind}"})
        if doc is None or doc["district_id"] != district_id:
            raise NotFound(f"period: no {kind} ranking published for {district_id} {period}")
        return pb.Ranking.FromString(doc["bytes"])


# event type -> what it changes in supervision's record of the case (who
# answers for it); the record's other changes are the event's marker
CASE_INFO: Registry[Callable[[ev.CaseEvent], dict[str, Any]]] = Registry("supervision cases")
CASE_INFO.on("registered")(lambda e: {"escalated": e.registered.escalated})
CASE_INFO.on("routed")(lambda e: {"unit_id": e.routed.unit_id})
CASE_INFO.on("remit_objected")(lambda e: {"unit_id": ""})
CASE_INFO.on("accepted")(lambda e: {"unit_id": e.accepted.unit_id})
CASE_INFO.on("leader_package_assigned")(
    lambda e: {"leader_id": e.leader_package_assigned.leader_id}
)
# the steps whose new unit or leader answers for the clocks the step starts
_ANSWERS_FOR_WHAT_IT_STARTS = frozenset({"accepted", "leader_package_assigned"})
# event type -> the clock tally it counts (the scanner's own notices)
_COUNTED = {
    "deadline_warned": "warned",
    "deadline_breached": "breached",
    "supervision_order_issued": "orders",
}


def _case_info(event: ev.CaseEvent, before: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What the event changes in the case's record, and who answers for the
    case (its unit and packaged leader) as they were before this event, or
    as this step makes them where it starts something for them."""
    fn = CASE_INFO.get(event)
    upd: dict[str, Any] = {"district_id": event.district_id, **(fn(event) if fn else {})}
    info = dict(before)
    if payload_name(event) in _ANSWERS_FOR_WHAT_IT_STARTS:
        info.update(upd)
    return upd, info


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y%m%d").date()


def stats_doc_id(district_id: str, clock: str, unit_id: str = "") -> str:
    """The tally document of a district's clocks of one kind, or of one unit's."""
    return f"{district_id}:{clock}:{unit_id}" if unit_id else f"{district_id}:{clock}"


def _stats_limit(kind: int) -> str:
    return limit_name(kind, ev.TIER_TOWNSHIP) if kind == ev.CLOCK_KIND_TIER else limit_name(kind)


def _months(period: str) -> list[str]:
    """The months of a bulletin's or ranking's period: ``2026-03`` -> itself,
    ``2026-Q1`` -> three. A year is not a supervision period."""
    try:
        ok = parse_period(period) == period and len(period) == 7
    except ValueError:
        ok = False
    if not ok:
        raise InvalidArgument("period", "a month YYYY-MM or a quarter YYYY-Qn")
    return months_of(period)


class ClockMetrics(Collector):
    """Exports the per-district clock tallies last read by ``refresh``.

    Gauges and counters from the store, not from this process: they survive
    restarts, and every replica exports the same figures (aggregate with
    ``max``). Labels: district, clock, sla_state: bounded by configuration.
    """

    def __init__(self, max_units: int) -> None:
        self.stats: list[dict[str, Any]] = []
        self.unit_stats: list[dict[str, Any]] = []
        self.max_units = max_units

    async def refresh(self, sup: Supervision) -> None:
        # one document per district and clock kind, and per unit and duty
        # clock kind: small, read whole
        docs = await sup.stats.find({}, {"_wm": 0}).to_list(None)
        self.stats = [d for d in docs if not d.get("unit_id")]
        self.unit_stats = [d for d in docs if d.get("unit_id")]

    def collect(self) -> Iterable[Metric]:
        today = datetime.now(SHANGHAI).strftime("%Y%m%d")
        labels2 = ["district", "clock"]
        open_ = GaugeMetricFamily(
            "xinfang_clocks_open", "Open statutory clocks by SLA state",
            labels=["district", "clock", "sla_state"],
        )  # fmt: skip
        overdue = GaugeMetricFamily(
            "xinfang_clocks_overdue", "Open clocks past due", labels=labels2
        )
        oldest = GaugeMetricFamily(
            "xinfang_clocks_oldest_overdue_days",
            "Days since the oldest open overdue clock fell due",
            labels=labels2,
        )
        totals = {
            f: GaugeMetricFamily(f"xinfang_clocks_{f}", doc, labels=labels2)
            for f, doc in (
                ("started", "Clocks started (all time)"),
                ("completed", "Clocks stopped (all time)"),
                ("completed_on_time", "Clocks stopped before they fell due (all time)"),
            )
        }
        counters = {
            f: CounterMetricFamily(name, doc, labels=labels2)
            for f, name, doc in (
                ("warned", "xinfang_deadline_warnings", "Warnings before a deadline"),
                ("breached", "xinfang_deadline_breaches", "Deadlines breached"),
            )
        }
        orders = CounterMetricFamily(
            "xinfang_supervision_orders", "Supervision orders (督办) issued", labels=["district"]
        )
        orders_by_district: dict[str, float] = {}
        for s in self.stats:
            labels = [str(s.get("district_id", "")), str(s.get("clock", ""))]
            tally = tally_sla(s.get("due", {}), today, int(s.get("warn_days", 3)))
            for state in SlaState:
                open_.add_metric([*labels, state.value], tally[state])
            overdue.add_metric(labels, tally[SlaState.OVERDUE])
            oldest.add_metric(labels, oldest_overdue_days(s.get("due", {}), today))
            for f, fam in totals.items():
                fam.add_metric(labels, float(s.get(f, 0)))
            for f, cfam in counters.items():
                cfam.add_metric(labels, float(s.get(f, 0)))
            orders_by_district[labels[0]] = orders_by_district.get(labels[0], 0.0) + float(
                s.get("orders", 0)
            )
        for district_id, n in orders_by_district.items():
            orders.add_metric([district_id], n)
        yield from (open_, overdue, oldest, *totals.values(), *counters.values(), orders)
        yield from self._per_unit(today)

    def _per_unit(self, today: str) -> Iterable[Metric]:
        """The same figures per unit, over its duty clocks of every kind."""
        lu = ["district", "unit"]
        open_ = GaugeMetricFamily(
            "xinfang_unit_clocks_open", "A unit's open duty clocks by SLA state",
            labels=[*lu, "sla_state"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "xinfang_unit_clocks_oldest_overdue_days",
            "Days since the unit's oldest open overdue duty clock fell due", labels=lu,
        )  # fmt: skip
        fams = {
            f: cls(name, doc, labels=lu)
            for f, cls, name, doc in (
                ("completed", GaugeMetricFamily, "xinfang_unit_clocks_completed",
                 "A unit's duty clocks stopped (all time)"),
                ("completed_on_time", GaugeMetricFamily, "xinfang_unit_clocks_completed_on_time",
                 "A unit's duty clocks stopped before they fell due (all time)"),
                ("breached", CounterMetricFamily, "xinfang_unit_deadline_breaches",
                 "A unit's deadlines breached"),
                ("orders", CounterMetricFamily, "xinfang_unit_supervision_orders",
                 "Supervision orders (督办) issued to a unit"),
            )
        }  # fmt: skip
        for (district_id, unit), f in sorted(
            unit_rollup(self.unit_stats, today, self.max_units).items()
        ):
            for state in SlaState:
                open_.add_metric([district_id, unit, state.value], f.sla[state])
            oldest.add_metric([district_id, unit], f.oldest_overdue_days)
            for field, fam in fams.items():
                fam.add_metric([district_id, unit], float(getattr(f, field)))
        yield from (open_, oldest, *fams.values())


class SupervisionServicer(pb_grpc.SupervisionServiceServicer):
    def __init__(self, sup: Supervision) -> None:
        self.sup = sup

    @rpc(SERVICE)
    async def GetCaseClocks(
        self, request: pb.GetCaseClocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseClocks:
        return await self.sup.case_clocks(request.district_id, request.case_id)

    @rpc(SERVICE, OVERSIGHT)
    async def PublishRanking(
        self, request: pb.PublishRankingRequest, context: grpc.aio.ServicerContext
    ) -> pb.Ranking:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        rankings = await self.sup.publish_ranking(request.district_id, request.period)
        return rankings[0]

    @rpc(SERVICE)
    async def GetRanking(
        self, request: pb.GetRankingRequest, context: grpc.aio.ServicerContext
    ) -> pb.Ranking:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        return await self.sup.get_ranking(request.district_id, request.period, request.kind)

    @rpc(SERVICE, OVERSIGHT)
    async def ReevaluateClocks(
        self, request: pb.ReevaluateClocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReevaluateClocksResponse:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        open_n, moved = await self.sup.reevaluate(request.district_id)
        return pb.ReevaluateClocksResponse(open_clocks=open_n, moved=moved)


async def _every(seconds: float, what: str, fn: Any) -> None:
    while True:
        try:
            await fn()
        except Exception:
            log.exception(f"{what} failed")
        await asyncio.sleep(seconds)


async def _setup(rt: Runtime) -> BatchHandler | None:
    sup = Supervision(rt.db, rt.outbox, rt.directory)
    consume = sup.consumer(rt.store)
    sup.producer = rt.producer
    sup.rankings_topic = rt.settings.rankings_topic
    rt.grpc.add(
        pb_grpc.add_SupervisionServiceServicer_to_server,
        SupervisionServicer(sup),
        pb.DESCRIPTOR.services_by_name["SupervisionService"].full_name,
    )
    metrics = ClockMetrics(rt.settings.metrics_max_units)
    REGISTRY.register(metrics)
    every = rt.settings.metrics_refresh_seconds
    rt.spawn(_every(every, "metrics refresh", lambda: metrics.refresh(sup)), "clock-metrics")
    scan_every = rt.settings.scan_seconds
    lease = Lease(rt.store, "deadline-scanner", ttl=max(10.0, 3 * scan_every))

    async def scan() -> None:  # one replica scans at a time
        if await lease.held():
            await sup.scan(datetime.now(UTC))

    rt.spawn(_every(scan_every, "deadline scan", scan), "scanner")
    return consume


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup, batched=True)
