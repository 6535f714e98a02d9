"""Cases of the assignment service: an event log per case plus a snapshot,
with optimistic versioning on a store that has neither transactions nor
conditional updates by anything but ``_id`` (see ``core.mongo``).

Every step of a case is recorded as event records whose ``_id`` is
``<case id>:<version>``. Inserting the record of version v+1 is the
compare-and-set: of two writers that both read version v, exactly one insert
succeeds; the other gets a duplicate key and is refused (``Conflict``). The
snapshot (state, version and the outbox of events to publish) is then written
by ``_id``. If a process dies between the two, the next ``load`` finds records
past the snapshot's version and rolls the snapshot forward by applying them:
``lifecycle.apply`` is pure, so that is always possible. The records are also
the case's timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

from bson.binary import Binary
from pymongo.errors import DuplicateKeyError

from xinfang.assignment.lifecycle import CaseState, apply, from_doc, from_registration, to_doc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import decode_event, encode_event
from xinfang.core.errors import Conflict, NotFound
from xinfang.core.mongo import Collection, upsert_by_id
from xinfang.core.outbox import Outbox

__all__ = ["CaseStore", "record_id"]


def record_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


class CaseStore:
    def __init__(
        self,
        snapshots: Collection,
        records: Collection,
        outbox: Outbox,
        wake: Callable[[], None],
    ) -> None:
        self.snapshots = snapshots
        self.records = records
        self.outbox = outbox
        self.wake = wake

    async def find(self, district_id: str, case_id: str) -> CaseState | None:
        doc = await self.snapshots.find_one({"_id": case_id})
        if doc is not None and doc["district_id"] != district_id:
            return None  # another district's case does not exist for this one
        if doc is None:
            first = await self.records.find_one({"_id": record_id(case_id, 1)})
            if first is None or first["district_id"] != district_id:
                return None
            state = from_registration(decode_event(first["event"]))
        else:
            state = from_doc(doc["state"])
        return await self._roll_forward(state)

    async def load(self, district_id: str, case_id: str) -> CaseState:
        if not case_id:
            raise NotFound("case_id: is required")
        state = await self.find(district_id, case_id)
        if state is None:
            raise NotFound(f"case_id: no case {case_id!r} in district {district_id!r}")
        return state

    async def _roll_forward(self, state: CaseState) -> CaseState:
        pending: list[dict[str, Any]] = []
        while rec := await self.records.find_one(
            {"_id": record_id(state.case_id, state.version + len(pending) + 1)}
        ):
            pending.append(rec)
        if not pending and await self.snapshots.find_one({"_id": state.case_id}, {"_id": 1}):
            return state
        events = [decode_event(r["event"]) for r in pending]
        new_state = reduce(apply, events, state)
        publish = [e for e, r in zip(events, pending, strict=True) if r.get("publish")]
        await self._write_snapshot(new_state, publish)
        return new_state

    async def commit(
        self,
        before: CaseState | None,
        events: Sequence[ev.CaseEvent],
        new_state: CaseState,
        publish: Sequence[ev.CaseEvent],
    ) -> None:
        """Record ``events`` as the versions after ``before`` (None: a new case)
        or raise ``Conflict`` when another writer got there first."""
        base = before.version if before is not None else 0
        published = {e.event_id for e in publish}
        staged = await self.outbox.stage(self.snapshots, new_state.case_id, publish)
        for i, e in enumerate(events):
            try:
                await self.records.insert_one(
                    {
                        "_id": record_id(new_state.case_id, base + i + 1),
                        "district_id": new_state.district_id,
                        "case_id": new_state.case_id,
                        "event_id": e.event_id,
                        "publish": e.event_id in published,
                        "event": Binary(encode_event(e)),
                    }
                )
            except DuplicateKeyError as err:
                raise Conflict(
                    f"case {new_state.case_id} changed concurrently (it is past version "
                    f"{base + i}); read it again and retry"
                ) from err
        await self._write_snapshot(new_state, staged=staged)

    async def _write_snapshot(
        self,
        state: CaseState,
        publish: Sequence[ev.CaseEvent] = (),
        staged: dict[str, Any] | None = None,
    ) -> None:
        if staged is None:
            staged = await self.outbox.stage(self.snapshots, state.case_id, publish)
        await upsert_by_id(
            self.snapshots,
            state.case_id,
            {
                "$set": {
                    "district_id": state.district_id,
                    "version": state.version,
                    "state": to_doc(state),
                    **staged,
                }
            },
        )
        if staged:
            self.wake()

    async def first_event_id(self, case_id: str) -> str | None:
        rec = await self.records.find_one({"_id": record_id(case_id, 1)}, {"event_id": 1})
        return None if rec is None else str(rec["event_id"])

    async def timeline(self, district_id: str, case_id: str) -> list[ev.CaseEvent]:
        state = await self.load(district_id, case_id)
        out = []
        for v in range(1, state.version + 1):
            rec = await self.records.find_one({"_id": record_id(case_id, v)})
            if rec is not None:
                out.append(decode_event(rec["event"]))
        return out
