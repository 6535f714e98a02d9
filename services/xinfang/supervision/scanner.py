"""Supervision's scanner and re-evaluation: what falls due, found by day
buckets of clock ids (work proportional to what is due, not to what is
open), and the open clocks recomputed after a district's limits or calendar
change."""

from __future__ import annotations

import contextlib
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import ALL_DISTRICTS
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event, to_timestamp
from xinfang.core.districts import District
from xinfang.core.errors import NotFound
from xinfang.core.mongo import doc_lock, upsert_by_id
from xinfang.core.outbox import outbox_field
from xinfang.supervision.clocks import clock_label, day_key, schedule, tallied_unit
from xinfang.supervision.docs import NOTICES, Documents, stats_doc_id

__all__ = ["Scanner"]

SERVICE = "supervision"
_IDS = uuid.UUID("0d5b8a7e-93f1-4a0c-9c55-2f1f6c1f2b33")
_SYSTEM = ev.Actor(user_id="supervision", role="system")
SETTLE = timedelta(seconds=5)


class Scanner(Documents):
    # ---- the scanner ------------------------------------------------------------------

    async def _index(self, bucket: str, day: str, clock_id: str) -> None:
        await upsert_by_id(self.buckets, f"{bucket}:{day}", {"$addToSet": {"ids": clock_id}})
        if day <= datetime.now(SHANGHAI).strftime("%Y%m%d"):
            # due (or to be warned) already: the scanner may have passed that
            # day, so it looks at this one clock on its next pass
            with contextlib.suppress(DuplicateKeyError):
                await self.rechecks.insert_one({"_id": f"{bucket}:{clock_id}"})

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
            n = await self._check(clock_id, bucket, now)
            if n is not None:  # else: too young, looked at again next pass
                emitted += n
                await self.rechecks.delete_one({"_id": r["_id"]})
        day = start
        while day <= today:
            key = day.strftime("%Y%m%d")
            for bucket in ("warn", "due"):
                doc = await self.buckets.find_one({"_id": f"{bucket}:{key}"})
                for clock_id in (doc or {}).get("ids", []):
                    n = await self._check(clock_id, bucket, now)
                    if n is None:
                        recheck = {"$set": {"day": key}}
                        await upsert_by_id(self.rechecks, f"{bucket}:{clock_id}", recheck)
                    emitted += n or 0
            day += timedelta(days=1)
        # a day's clocks fall due at its 00:00, so today's buckets are done too;
        # a clock indexed under them later comes through the rechecks
        done = today.strftime("%Y%m%d")
        await upsert_by_id(self.meta, "scan", {"$set": {"done_through": done}})
        return emitted

    async def _check(self, clock_id: str, bucket: str, now: datetime) -> int | None:
        async with doc_lock(self.clocks, clock_id):
            return await self._check_locked(clock_id, bucket, now)

    async def _check_locked(self, clock_id: str, bucket: str, now: datetime) -> int | None:
        """Events emitted for one clock; None when it was written too recently
        to judge: a clock written a moment ago may be due already (a petition
        registered long after it was received), and the case's routing, which
        names the unit the notices go to, follows its registration within
        moments. So a clock is judged once ``SETTLE`` has passed since its
        last write, on a later pass."""
        c = await self.clocks.find_one({"_id": clock_id})
        if c is None or not c.get("open") or c.get("paused"):
            return 0
        written = c.get("_written_at")
        if written is not None and now - written < SETTLE:
            return None
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

    async def reevaluate(self, district_id: str, horizon_days: int = 400) -> tuple[int, int, int]:
        """Recompute the deadlines of a district's open clocks (its calendar or
        limits changed), or of every district's (``*``: the platform's
        calendar changed). Reads the due buckets around today: work grows with
        the open clocks, not with all clocks. Returns (open clocks, moved,
        still estimated)."""
        every = district_id == ALL_DISTRICTS
        districts: dict[str, District | None] = {}
        if not every:  # an unknown district is refused, not skipped
            districts[district_id] = await self.directory.get(district_id, fresh=True)
        today = datetime.now(SHANGHAI).date()
        seen: set[str] = set()
        open_n = moved = estimated = 0
        for offset in range(-horizon_days, horizon_days + 1):
            key = (today + timedelta(days=offset)).strftime("%Y%m%d")
            doc = await self.buckets.find_one({"_id": f"due:{key}"})
            for clock_id in (doc or {}).get("ids", []):
                if clock_id in seen:
                    continue
                async with doc_lock(self.clocks, clock_id):
                    found = await self._reschedule(clock_id, key, districts, every)
                if found is None:
                    continue  # a stale entry (moved before): met again under its day
                seen.add(clock_id)  # once, even if it moves to a later day of the loop
                moved_to, still_estimated = found
                open_n += 1
                moved += bool(moved_to)
                estimated += still_estimated
        return open_n, moved, estimated

    async def _reschedule(
        self, clock_id: str, key: str, districts: dict[str, District | None], every: bool
    ) -> tuple[str, bool] | None:
        """Recompute one open clock (caller holds its lock); None if it is not
        an open clock of the districts asked for indexed under ``key``, else
        (its new due day, "" if unmoved; whether it is still estimated)."""
        c = await self.clocks.find_one({"_id": clock_id})
        if c is None or not c.get("open") or c.get("due_day") != key:
            return None  # closed, or a stale bucket entry: indexed elsewhere
        did = str(c["district_id"])
        if did not in districts:
            if not every:
                return None
            try:
                districts[did] = await self.directory.get(did, fresh=True)
            except NotFound:
                districts[did] = None  # a clock of a district since removed
        district = districts[did]
        if district is None:
            return None
        dl, warn = schedule(
            c["kind"], c.get("tier", 0), c["started_at"], c.get("extra_days", 0), district
        )
        if dl.due_at == c["due_at"]:
            if dl.estimated != bool(c.get("estimated")):  # the same day, now known
                await self.clocks.update_one(
                    {"_id": clock_id}, {"$set": {"estimated": dl.estimated}}
                )
            return "", dl.estimated
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
        return new_day, dl.estimated


def _day(key: str) -> date:
    return datetime.strptime(key, "%Y%m%d").date()
