"""Supervision's consumer: each case event's clocks, the counters they
move and the case's record, applied to a batch (``core.batch``) and written
in the order that makes a retry after a crash redo only what is missing."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Histogram

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.batch import Batch, BatchConsumer, OwnedDocs, cases_of
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import payload_name
from xinfang.core.districts import District
from xinfang.core.errors import InvalidArgument
from xinfang.core.mongo import TRANSIENT_ERRORS, Position
from xinfang.core.registry import Registry
from xinfang.core.store import Store
from xinfang.supervision import buckets
from xinfang.supervision.clocks import Applied, apply_ops, clock_doc_id, clock_label, clock_ops
from xinfang.supervision.docs import (
    CASES,
    CLOCKS,
    RECHECKS,
    STATS,
    TALLIES,
    Documents,
    stats_doc_id,
    stats_limit,
    unset_fields,
)
from xinfang.supervision.tallies import month_of, tally_deltas, tally_doc_id

__all__ = ["CASE_INFO", "HISTORY_SETTLE", "ClockConsumer"]

# how long the clocks of a case imported with its history wait for its steps,
# at most (``intake.history`` records them within moments of the
# registration, and the first of them ends the wait)
HISTORY_SETTLE = timedelta(minutes=10)

STAGE_DAYS = Histogram(
    "xinfang_stage_duration_days",
    "How long a statutory clock ran before it was stopped, in days",
    ["district", "clock"],
    buckets=(0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120),
)


class ClockConsumer(Documents):
    def consumer(self, store: Store, owned: OwnedDocs | None = None) -> BatchConsumer:
        """The consumer over batches (``core.batch``): counters are written
        first, then clocks (each with its applied marker), and last the
        case's record of the event, whose marker therefore means that
        everything the event changed is written."""
        return BatchConsumer(
            store, (CLOCKS, CASES), self._prepare, self.apply, TRANSIENT_ERRORS, owned=owned
        )

    async def _prepare(self, b: Batch, items: Sequence[tuple[ev.CaseEvent, Position]]) -> None:
        """Read the batch's cases, then only the clocks their records say
        exist (``clock_kinds``): a new case's clocks are not looked for. A
        record written before ``clock_kinds`` existed has all looked for."""
        await b.load_cases(CASES, cases_of(items))
        read: list[str] = []
        absent: list[str] = []
        for e, _ in items:
            case = b.peek(CASES, e.case_id)
            known = None if case is not None and "clock_kinds" not in case else (
                set((case or {}).get("clock_kinds") or ())
            )  # fmt: skip
            for op in clock_ops(e):
                doc_id = clock_doc_id(e.case_id, op.kind)
                (read if known is None or op.kind in known else absent).append(doc_id)
        await b.load(CLOCKS, read)
        b.assume_absent(CLOCKS, absent)

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
        written_at = datetime.now(UTC)
        # a registration imported with its history (its clocks are long due,
        # and the steps that stop them are on their way)
        history = event.entry == ev.ENTRY_HISTORY and payload_name(event) == "registered"
        today = written_at.astimezone(SHANGHAI).strftime("%Y%m%d")
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
            # when it was written: the scanner judges a clock once it settled
            upd: dict[str, Any] = {"$set": {**res.doc, **marker, "_written_at": written_at}}
            if unset := unset_fields(old, res.doc):
                upd["$unset"] = unset
            b.update(CLOCKS, doc_id, upd)
            for bucket, day in res.indexed:
                # the partition's shard of the day (core.shards): one writer
                buckets.index(b, bucket, day, doc_id, pos)
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
        case_write: dict[str, Any] = {"$set": {**case_upd, **marker}}
        if history:  # its steps follow: its clocks wait for them (the scanner reads this)
            case_write["$set"]["history_hold"] = written_at + HISTORY_SETTLE
        elif "history_hold" in case:  # they have begun to come: each clock they write settles
            case_write["$unset"] = {"history_hold": ""}
        if by_kind:  # which clocks the case has, so a batch reads only those
            case_write["$addToSet"] = {"clock_kinds": {"$each": sorted(by_kind)}}
        b.update(CASES, event.case_id, case_write)
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
            warn = district.limit(stats_limit(ev.ClockKind.Value(f"CLOCK_KIND_{label.upper()}")))
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
