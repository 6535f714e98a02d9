"""Cases of the assignment service: one record per command, and a snapshot.

A command (or an event that acts like one: a registration to route, a tier
breach to escalate) is recorded as *one* document of ``case_records`` whose
``_id`` is ``<case id>:<first version it holds>`` and which holds all of the
command's events, the input event it answers, and the events to publish
(``core.outbox``). Inserting it is the compare-and-set: of two writers that
read version v, exactly one inserts ``<case>:v+1``; the other is refused
(``Conflict``). A crash leaves either no record (nothing happened: the retry
does it) or the whole record (it happened: the outbox sweeper publishes it).

The snapshot (``cases``: state and version) is a cache written after the
record. Every load reads it and then the records past its version, folding
them in memory with the pure ``lifecycle.apply``; so a snapshot that lags
after a crash costs a read, never a wrong answer, and a read never writes.
The records are also the case's timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from bson.binary import Binary

from xinfang.assignment.lifecycle import (
    CaseState,
    apply,
    from_doc,
    from_registration,
    replace_inputs,
    to_doc,
)
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import decode_event, encode_event
from xinfang.core.errors import Conflict, NotFound
from xinfang.core.mongo import Doc
from xinfang.core.outbox import Outbox, outbox_field
from xinfang.core.store import Store

__all__ = [
    "RECORDS",
    "SNAPSHOTS",
    "CaseStore",
    "Recorded",
    "first_event",
    "first_event_id",
    "record_id",
]

RECORDS = "case_records"
SNAPSHOTS = "cases"


def record_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


@dataclass(frozen=True)
class Recorded:
    """One command's record, as read back."""

    first: int
    last: int
    events: list[ev.CaseEvent]
    input_event: str


def _recorded(doc: Doc) -> Recorded:
    return Recorded(
        first=int(doc["first"]),
        last=int(doc["last"]),
        events=[decode_event(bytes(b)) for b in doc["events"]],
        input_event=str(doc.get("input") or ""),
    )


class CaseStore:
    def __init__(self, store: Store, outbox: Outbox) -> None:
        self.store = store
        self.outbox = outbox
        outbox.after_sweep[RECORDS] = self._refresh

    async def _refresh(self, records: list[Doc]) -> None:
        """Bring the snapshots of swept records' cases up to date: their
        writer died between its record and its snapshot."""
        for case_id, district_id in sorted({(r["case_id"], r["district_id"]) for r in records}):
            state, past = await self._read(district_id, case_id)
            if state is not None and past:
                await self._snapshot(state)

    async def _read(self, district_id: str, case_id: str) -> tuple[CaseState | None, list[Doc]]:
        """The case as of its latest record, and the records past its snapshot
        (None also for another district's case: it does not exist here)."""
        if not case_id:
            return None, []
        snap = await self.store.get(SNAPSHOTS, case_id)
        if snap is not None and snap["district_id"] != district_id:
            return None, []
        state = from_doc(snap["state"]) if snap is not None else None
        version = state.version if state is not None else 0
        past: list[Doc] = []
        while (doc := await self.store.get(RECORDS, record_id(case_id, version + 1))) is not None:
            if doc["district_id"] != district_id:
                return None, []
            state = _fold(state, _recorded(doc))
            version = state.version
            past.append(doc)
        return state, past

    async def find(self, district_id: str, case_id: str) -> CaseState | None:
        """For a query: reads, never writes."""
        return (await self._read(district_id, case_id))[0]

    async def load(self, district_id: str, case_id: str) -> CaseState:
        """For a query: reads, never writes."""
        return _found(await self.find(district_id, case_id), district_id, case_id)

    async def load_for_change(self, district_id: str, case_id: str) -> CaseState:
        """For a command: as ``load``, and what a crashed writer recorded past
        the snapshot is published again and the snapshot brought up to date,
        before this command adds to it."""
        state, past = await self._read(district_id, case_id)
        state = _found(state, district_id, case_id)
        if past:
            await self.outbox.republish(past)
            await self._snapshot(state)
        return state

    async def first_record(self, case_id: str) -> Doc | None:
        return await self.store.get(RECORDS, record_id(case_id, 1))

    async def record(self, case_id: str, first_version: int) -> Doc | None:
        """The record whose first event is at ``first_version``, if any."""
        return await self.store.get(RECORDS, record_id(case_id, first_version))

    async def commit_new(
        self, cases: Sequence[tuple[Sequence[ev.CaseEvent], CaseState, Sequence[ev.CaseEvent]]]
    ) -> list[bool]:
        """``commit`` of many new cases (events, state, events to publish) in
        as few store calls as the server allows: their first records in one
        insert, their snapshots in one write. False where the case's first
        record exists already (a redelivery, or another registration)."""
        docs = [self._record(None, events, state, publish) for events, state, publish in cases]
        inserted = await self.outbox.record(RECORDS, docs)
        fresh = [state for (_e, state, _p), ok in zip(cases, inserted, strict=True) if ok]
        if fresh and inserted.published:  # else left behind: see ``commit``
            # inserted, not upserted: FerretDB looks for a document before it
            # upserts it, and a new one cost it five times the CPU of an
            # insert here. One that is there already (the sweeper's refresh
            # wrote it since the record went in) is updated, as ``_snapshot``
            # would have done
            updates = [_snapshot_update(s) for s in fresh]
            docs = [{"_id": case_id, **u["$set"]} for case_id, u in updates]
            ok = await self.store.insert_many(SNAPSHOTS, docs)
            if again := [u for u, o in zip(updates, ok, strict=True) if not o]:
                await self.store.write(SNAPSHOTS, again)
        return inserted

    def _record(
        self,
        before: CaseState | None,
        events: Sequence[ev.CaseEvent],
        new_state: CaseState,
        publish: Sequence[ev.CaseEvent],
        input_event: str = "",
    ) -> Doc:
        base = before.version if before is not None else 0
        doc: Doc = {
            "_id": record_id(new_state.case_id, base + 1),
            "district_id": new_state.district_id,
            "case_id": new_state.case_id,
            "first": base + 1,
            "last": new_state.version,
            "events": [Binary(encode_event(e)) for e in events],
            "outbox": outbox_field(publish),
        }
        if input_event:
            doc["input"] = input_event
        return doc

    async def commit(
        self,
        before: CaseState | None,
        events: Sequence[ev.CaseEvent],
        new_state: CaseState,
        publish: Sequence[ev.CaseEvent],
        input_event: str = "",
    ) -> None:
        """Record ``events`` as the versions after ``before`` (None: a new case)
        in one insert, or raise ``Conflict`` when another writer got there
        first; then refresh the snapshot."""
        base = before.version if before is not None else 0
        doc = self._record(before, events, new_state, publish, input_event)
        inserted = await self.outbox.record(RECORDS, [doc])
        if not inserted[0]:
            raise Conflict(
                f"case {new_state.case_id} changed concurrently (it is past version "
                f"{base}); read it again and retry"
            )
        # A record whose events Kafka refused leaves the snapshot behind it,
        # so the case's next command, on whichever replica, finds the record
        # past the snapshot and publishes its events again before its own
        # (``load_for_change``). Brought up to date, the snapshot would let
        # the next command's events out first, and the sweep would deliver
        # these after them: a consumer would see the case go backwards
        if inserted.published:
            await self._snapshot(new_state)

    async def _snapshot(self, state: CaseState) -> None:
        """The cache of the case's state. Two writers may land out of order
        (each after its own record): an older snapshot then costs the next
        load one more record read, nothing else."""
        await self.store.write(SNAPSHOTS, [_snapshot_update(state)])

    async def timeline(self, district_id: str, case_id: str) -> list[ev.CaseEvent]:
        await self.load(district_id, case_id)
        out: list[ev.CaseEvent] = []
        version = 0
        while (doc := await self.store.get(RECORDS, record_id(case_id, version + 1))) is not None:
            rec = _recorded(doc)
            out.extend(rec.events)
            version = rec.last
        return out


def _snapshot_update(state: CaseState) -> tuple[str, Doc]:
    upd = {"district_id": state.district_id, "version": state.version, "state": to_doc(state)}
    return state.case_id, {"$set": upd}


def _found(state: CaseState | None, district_id: str, case_id: str) -> CaseState:
    if not case_id:
        raise NotFound("case_id: is required")
    if state is None:
        raise NotFound(f"case_id: no case {case_id!r} in district {district_id!r}")
    return state


def first_event(doc: Doc) -> ev.CaseEvent:
    """The event a case's first record starts with (its registration)."""
    return _recorded(doc).events[0]


def first_event_id(doc: Doc) -> str:
    """The id of the event a case's first record starts with (its registration)."""
    return first_event(doc).event_id


def _fold(state: CaseState | None, rec: Recorded) -> CaseState:
    events = rec.events
    if state is None:  # the first record starts with the registration
        state, events = from_registration(events[0]), events[1:]
    state = reduce(apply, events, state)
    if rec.input_event:
        state = replace_inputs(state, rec.input_event)
    return state
