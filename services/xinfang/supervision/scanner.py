"""Supervision's scanner and re-evaluation: what falls due, found by day
buckets of clock ids (work proportional to what is due, not to what is
open), and the open clocks recomputed after a district's limits or calendar
change.

Both decide and neither writes a clock. What they decide is an event (a
warning, a breach and its supervision order, a window's end, a deadline
moved), recorded once in ``notices`` (the outbox publishes it) and applied
by the consumer, which alone writes clocks and their counters, with the
tracking that makes a retry or a second replica change nothing twice. The
scanner's own documents (day buckets, rechecks, where its last pass ended)
are sets and marks that a repeated write leaves as they are. Every call goes
through the store port, so the fault test covers it and the benchmark counts
it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import ALL_DISTRICTS
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event, to_timestamp
from xinfang.core.districts import District
from xinfang.core.errors import NotFound
from xinfang.core.mongo import Doc
from xinfang.core.outbox import outbox_field
from xinfang.core.store import Update
from xinfang.supervision import buckets
from xinfang.supervision.clocks import moved_deadline
from xinfang.supervision.docs import CASES, CLOCKS, NOTICES, RECHECKS, Documents

__all__ = ["SETTLE", "Scanner", "judge"]

SERVICE = "supervision"
_IDS = uuid.UUID("0d5b8a7e-93f1-4a0c-9c55-2f1f6c1f2b33")
_SYSTEM = ev.Actor(user_id="supervision", role="system")
SETTLE = timedelta(seconds=5)
META = "meta"
_READ_CHUNK = 1000  # documents read at once (bounded memory and concurrency)
_RECORD_CHUNK = 500  # events recorded and published at once


def judge(
    clock: Doc | None, case: Mapping[str, Any], bucket: str, now: datetime
) -> list[ev.CaseEvent] | None:
    """The notices one clock is due, found in a ``bucket`` ("warn"/"due") at
    ``now``; None when it was written too recently to judge: a clock written
    a moment ago may be due already (a petition registered long after it was
    received), and the case's routing, which names the unit the notices go
    to, follows its registration within moments. So a clock is judged once
    ``SETTLE`` has passed since its last write, on a later pass.

    Pure, and deterministic: the event ids derive from the clock and its
    deadline, so judging again (another pass, another replica, a retry after
    a crash) records nothing new."""
    if clock is None or not clock.get("open") or clock.get("paused"):
        return []
    written = clock.get("_written_at")
    if written is not None and now - written < SETTLE:
        return None
    if (hold := case.get("history_hold")) is not None and now < hold:
        return None  # a case imported with its history: its steps are on their way
    kind = clock["kind"]
    clock_id = clock["_id"]
    due_at: datetime = clock["due_at"]
    due_ts = to_timestamp(due_at)

    def event_id(what: str) -> str:
        return str(uuid.uuid5(_IDS, f"{clock_id}:{what}:{due_at.isoformat()}"))

    def make(what: str, **payload: Any) -> ev.CaseEvent:
        return new_event(
            case_id=clock["case_id"],
            district_id=clock["district_id"],
            producer=SERVICE,
            case_version=0,
            actor=_SYSTEM,
            event_id=event_id(what),
            **payload,
        )

    unit = str(case.get("unit_id") or clock.get("unit_id") or "")
    leader = str(case.get("leader_id") or "")
    duty = bool(clock.get("duty"))
    if bucket == "warn" and duty and not clock.get("warned") and clock["warn_at"] <= now < due_at:
        return [
            make("warn", deadline_warned=ev.DeadlineWarned(clock=kind, due_at=due_ts, unit_id=unit))
        ]
    if bucket != "due" or clock.get("breached") or now < due_at:
        return []
    if not duty:
        # a window ran out: it closes, nobody failed (the consumer closes it
        # at this event, so its counts move exactly once)
        return [
            make(
                "closed", deadline_window_closed=ev.DeadlineWindowClosed(clock=kind, due_at=due_ts)
            )
        ]
    days = max(1, (now - due_at).days + 1)
    return [
        make("breach", deadline_breached=ev.DeadlineBreached(
            clock=kind, due_at=due_ts, unit_id=unit, tier=clock.get("tier", 0))),
        make("order", supervision_order_issued=ev.SupervisionOrderIssued(
            order_id=event_id("order-id"), clock=kind, unit_id=unit, leader_id=leader,
            days_overdue=days)),
    ]  # fmt: skip


def _notice(events: Sequence[ev.CaseEvent]) -> Doc:
    """One immutable record of a clock's notices, its ``_id`` fixed by the
    first: a second pass, or a second replica, cannot record them twice."""
    e = events[0]
    return {"_id": e.event_id, "district_id": e.district_id, "case_id": e.case_id,
            "outbox": outbox_field(events)}  # fmt: skip


class Scanner(Documents):
    async def _read(self, coll: str, ids: Sequence[str]) -> dict[str, Doc]:
        out: dict[str, Doc] = {}
        for i in range(0, len(ids), _READ_CHUNK):
            out.update(await self.store.get_many(coll, ids[i : i + _READ_CHUNK]))
        return out

    async def _buckets(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """The clock ids of due buckets, each the union of its partitions'
        shards and their pages (``supervision.buckets``)."""
        return await buckets.read(self._read, ids, self.partitions)

    async def _record(self, notices: Sequence[Doc]) -> None:
        for i in range(0, len(notices), _RECORD_CHUNK):
            await self.outbox.record(NOTICES, notices[i : i + _RECORD_CHUNK], republish_taken=True)

    async def scan(self, now: datetime, lookback_days: int = 90) -> int:
        """One pass over the buckets due up to today; returns events recorded
        (or found recorded already)."""
        today = now.astimezone(SHANGHAI).date()
        meta = await self.store.get(META, "scan") or {}
        start = today - timedelta(days=lookback_days)
        if "done_through" in meta:  # catch up from where the last pass ended
            start = _day(meta["done_through"]) + timedelta(days=1)
        # clocks indexed on days already passed (the collection holds only those)
        found: list[tuple[str, str, str | None]] = []  # (bucket, clock id, recheck id)
        for r in await self.store.scan(RECHECKS, 5000):
            bucket, clock_id = r["_id"].split(":", 1)
            found.append((bucket, clock_id, r["_id"]))
        days = [
            (start + timedelta(days=i)).strftime("%Y%m%d") for i in range((today - start).days + 1)
        ]
        bucket_ids = [f"{b}:{d}" for d in days for b in ("warn", "due")]
        for bid, clock_ids in sorted((await self._buckets(bucket_ids)).items()):
            found.extend((bid.split(":", 1)[0], clock_id, None) for clock_id in clock_ids)
        clocks = await self._read(CLOCKS, list(dict.fromkeys(c for _, c, _ in found)))
        cases = await self._read(CASES, list(dict.fromkeys(c["case_id"] for c in clocks.values())))
        notices: dict[str, Doc] = {}
        emitted = 0
        recheck: list[Update] = []
        checked: list[str] = []
        for bucket, clock_id, recheck_id in found:
            c = clocks.get(clock_id)
            events = judge(c, cases.get(c["case_id"], {}) if c else {}, bucket, now)
            if events is None:  # too young: looked at again next pass
                if recheck_id is None:
                    recheck.append(
                        (f"{bucket}:{clock_id}", {"$set": {"day": today.strftime("%Y%m%d")}})
                    )
                continue
            if events and events[0].event_id not in notices:
                notices[events[0].event_id] = _notice(events)
                emitted += len(events)
            if recheck_id is not None:
                checked.append(recheck_id)
        # notices first: a crash after them redoes the pass, which finds
        # them recorded; the marks after say how far it got
        await self._record(list(notices.values()))
        if recheck:
            await self.store.write(RECHECKS, recheck)
        if checked:
            await self.store.delete(RECHECKS, checked)
        # a day's clocks fall due at its 00:00, so today's buckets are done too;
        # a clock indexed under them later comes through the rechecks
        done = today.strftime("%Y%m%d")
        await self.store.write(META, [("scan", {"$set": {"done_through": done}})])
        return emitted

    async def reevaluate(self, district_id: str, horizon_days: int = 400) -> tuple[int, int, int]:
        """Recompute the deadlines of a district's open clocks (its calendar or
        limits changed), or of every district's (``*``: the platform's
        calendar changed): (open clocks, deadlines moved, clocks still on an
        estimated year). Each move is a ``DeadlineRescheduled`` event the
        consumer applies. Reads the due buckets around today: work grows with
        the open clocks, not with all clocks."""
        every = district_id == ALL_DISTRICTS
        districts: dict[str, District | None] = {}
        if not every:  # an unknown district is refused, not skipped
            districts[district_id] = await self.directory.get(district_id, fresh=True)
        # the platform's loaded years, in the moves' ids: a later load moves again
        loaded = await self.directory.arrangements(fresh=True)
        calendar = ",".join(f"{a.year}v{a.version}" for a in loaded.years)
        today = datetime.now(SHANGHAI).date()
        keys = [
            (today + timedelta(days=o)).strftime("%Y%m%d")
            for o in range(-horizon_days, horizon_days + 1)
        ]
        due = await self._buckets([f"due:{k}" for k in keys])
        # every clock indexed around today, once (a clock that moved is
        # indexed under its old day too: that entry is stale, not the clock)
        ids = list(dict.fromkeys(i for k in keys for i in due.get(f"due:{k}", [])))
        clocks = await self._read(CLOCKS, ids)
        open_n = estimated = 0
        notices: list[Doc] = []
        for clock_id in ids:
            c = clocks.get(clock_id)
            if c is None or not c.get("open"):
                continue
            did = str(c["district_id"])
            if did not in districts:
                if not every:
                    continue
                try:
                    districts[did] = await self.directory.get(did, fresh=True)
                except NotFound:
                    districts[did] = None  # a clock of a district since removed
            district = districts[did]
            if district is None:
                continue
            open_n += 1
            moved = moved_deadline(c, district)
            if moved is None:
                estimated += bool(c.get("estimated"))
                continue
            dl, warn = moved
            estimated += dl.estimated
            # the id derives from the move, the district's version and the
            # loaded years: a second run of one re-evaluation (after a crash)
            # records nothing new, a later change moves the clock again
            basis = (c["due_at"], dl.due_at, dl.estimated, c["started_at"],
                     c.get("extra_days", 0), c.get("tier", 0))  # fmt: skip
            e = new_event(
                event_id=str(
                    uuid.uuid5(_IDS, f"{clock_id}:move:{basis}:{district.version}:{calendar}")
                ),
                case_id=c["case_id"],
                district_id=did,
                producer=SERVICE,
                case_version=0,
                actor=_SYSTEM,
                deadline_rescheduled=ev.DeadlineRescheduled(
                    clock=c["kind"],
                    due_at=to_timestamp(dl.due_at),
                    warn_at=to_timestamp(warn),
                    estimated=dl.estimated,
                    started_at=to_timestamp(c["started_at"]),
                    extra_days=c.get("extra_days", 0),
                    tier=c.get("tier", 0),
                ),
            )
            notices.append(_notice([e]))
        await self._record(notices)
        return open_n, len(notices), estimated


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y%m%d").date()
