"""Parking: a case whose event was dead-lettered waits for it, per service.

Events are keyed by case id so a consumer sees a case's events in order and
may rely on it. When one event of a case is dead-lettered, applying the
case's later events anyway would apply them out of order (an acceptance
before its registration). So the consumer *blocks* the case for this service
and *parks* every later event of it, until the dead-lettered event comes back
(replayed by ``xinfang dead-letters replay``, or simply delivered again) and
is applied. Then the case is released and its parked events follow, in order.

Store layout, in the ``parked`` collection of the service's database, every
read and write an exact ``{"_id": ...}`` (FerretDB scans the collection for
anything else):

* ``<case>``: the head. ``state`` is ``blocked`` (waiting for ``event_id``,
  dead-lettered as ``dead_letter``) or ``releasing``; ``queue`` lists the
  parked events in arrival order (``n``, event id, source position).
* ``<case>:<n>``: one parked event's bytes and key.

How parked events are released: they are **published again** to the
case-events topic (header ``x-unparked-by``), in order, and applied as they
come back, not applied in-process at their old positions. Shared counters
(reporting's figures, supervision's tallies) deduplicate by the highest
offset counted per partition (``core.batch``'s ``_wm``); by the time of the
release that watermark has passed the parked events' offsets, so applying
them at those offsets would silently count nothing. A fresh offset is the
only position that is both above the watermark and not some later event's.
While ``releasing``, the case stays parked for everything but its queue's
head, so events that arrive meanwhile still wait their turn; when the queue
is empty the head document is removed and the case flows freely again. For
the other services the copies are duplicates (deduplicated by event id).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.logging import get_logger
from xinfang.core.mongo import TRANSIENT_ERRORS, Collection, Doc, Position, doc_lock

__all__ = ["BLOCKED", "RELEASING", "Gate", "Parking", "Role"]

log = get_logger(__name__)

BLOCKED = "blocked"
RELEASING = "releasing"

T = TypeVar("T")

# publish(value, key, headers): send one message to the case-events topic and
# return once the broker has it (the runtime's idempotent producer)
Publish = Callable[[bytes | None, bytes | None, Sequence[tuple[str, bytes]]], Awaitable[None]]


class Role(enum.Enum):
    """What the consumer does with an event of a case, given its parking state."""

    FREE = "free"  # not blocked: hand it to the handler
    RETRY = "retry"  # the event the case is blocked on, back again
    HEAD = "head"  # the next parked event of a releasing case
    PARKED = "parked"  # kept for later: not handed to the handler


@dataclass(frozen=True)
class Gate:
    """``admit``'s answer, handed back to ``applied`` or ``dead_lettered``."""

    role: Role

    @property
    def parked(self) -> bool:
        return self.role is Role.PARKED


FREE = Gate(Role.FREE)


def entry_id(case_id: str, n: int) -> str:
    return f"{case_id}:{n}"


def queued_ids(head: Doc) -> list[str]:
    return [e["event_id"] for e in head.get("queue", [])]


class Parking:
    """The parking state machine of one service (see the module docstring).

    ``admit`` is asked before the handler, ``applied`` after it succeeded,
    ``dead_lettered`` after the event went to dead letters. Store outages are
    retried here, never turned into a dead letter or a lost event.
    """

    def __init__(self, service: str, coll: Collection, publish: Publish) -> None:
        self.service = service
        self.coll = coll
        self.publish = publish
        # the cases with a head document, as this process knows them: a case
        # not in it is free without a store read (nearly every event). Kept
        # up to date by this process's own changes and reloaded by ``refresh``
        # (at start, and often, for heads another replica wrote before a
        # rebalance handed their partition over). None: not loaded yet.
        self._heads: set[str] | None = None

    async def refresh(self) -> None:
        """Reload which cases have a head (the collection holds only what is
        parked, so reading its ids is cheap)."""
        docs = await self.coll.find({"state": {"$exists": True}}, {"_id": 1}).to_list(None)
        self._heads = {str(d["_id"]) for d in docs}

    # ---- the runtime's three questions ----------------------------------------

    async def admit(
        self, event: ev.CaseEvent, value: bytes | None, key: bytes | None, pos: Position
    ) -> Gate:
        if self._heads is not None and event.case_id not in self._heads:
            return FREE
        head = await self._find(event.case_id)
        if head is None:
            return FREE
        async with doc_lock(self.coll, event.case_id):
            head = await self._find(event.case_id)
            if head is None:
                return FREE
            eid = event.event_id
            queued = queued_ids(head)
            if head["state"] == BLOCKED and eid == head["event_id"]:
                return Gate(Role.RETRY)
            if head["state"] == RELEASING:
                if queued and eid == queued[0]:
                    return Gate(Role.HEAD)
                if eid == head["event_id"] or eid in head.get("done", []):
                    return FREE  # applied already: the handler deduplicates it
            if eid not in queued:  # else: a redelivery, or a copy not yet due
                await self._park(head, event, value, key, pos)
            return Gate(Role.PARKED)

    async def applied(self, event: ev.CaseEvent, gate: Gate) -> None:
        if gate.role is Role.RETRY:
            await self._release(event)
        elif gate.role is Role.HEAD:
            await self._advance(event)

    async def dead_lettered(self, event: ev.CaseEvent, dead_letter_id: str, gate: Gate) -> None:
        async with doc_lock(self.coll, event.case_id):
            head = await self._find(event.case_id)
            if head is None:
                await self._write_head(
                    event.case_id,
                    {
                        "service": self.service,
                        "district_id": event.district_id,
                        "state": BLOCKED,
                        "event_id": event.event_id,
                        "dead_letter": dead_letter_id,
                        "dead_letters": [dead_letter_id],
                        "queue": [],
                        "done": [],
                        "next_n": 0,
                        "blocked_at": datetime.now(UTC),
                    },
                )
                log.warning("case blocked", case_id=event.case_id, dead_letter_id=dead_letter_id)
                return
            letters = [*head.get("dead_letters", []), dead_letter_id]
            if head["state"] == BLOCKED and head["event_id"] == event.event_id:
                await self._write_head(
                    event.case_id, {"dead_letter": dead_letter_id, "dead_letters": letters}
                )
                return
            queue = head.get("queue", [])
            if gate.role is Role.HEAD and queue and queue[0]["event_id"] == event.event_id:
                # a parked event failed on its turn: the case now waits for it,
                # and its bytes live in its dead letter
                await self._retry(
                    lambda: self.coll.delete_one({"_id": entry_id(event.case_id, queue[0]["n"])})
                )
                await self._write_head(
                    event.case_id,
                    {
                        "state": BLOCKED,
                        "event_id": event.event_id,
                        "dead_letter": dead_letter_id,
                        "dead_letters": letters,
                        "queue": queue[1:],
                        "done": [],
                    },
                )
                log.warning(
                    "case blocked again", case_id=event.case_id, dead_letter_id=dead_letter_id
                )
            # else: an event already applied failed on a second delivery; it is
            # dead-lettered for the operator, the case's order is not at stake

    # ---- transitions ------------------------------------------------------------

    async def _park(
        self,
        head: Doc,
        event: ev.CaseEvent,
        value: bytes | None,
        key: bytes | None,
        pos: Position,
    ) -> None:
        """Keep an event (caller holds the head's lock): its bytes first, then
        its place in the queue, so a crash in between leaves an unreferenced
        entry, never a queue entry without bytes. A case already releasing
        sends the event's copy at once: it then comes back after the copies
        sent before it."""
        n = int(head.get("next_n", 0)) + 1
        eid = entry_id(event.case_id, n)
        entry = {"n": n, "event_id": event.event_id, "p": pos.partition, "o": pos.offset}
        await self._retry(
            lambda: self.coll.replace_one(
                {"_id": eid},
                {"case_id": event.case_id, **entry, "value": value, "key": key},
                upsert=True,
            )
        )
        if head["state"] == RELEASING:
            await self._send_copy(value, key, entry)
        queue = [*head.get("queue", []), entry]
        await self._write_head(event.case_id, {"queue": queue, "next_n": n})
        log.info(
            "event parked",
            case_id=event.case_id,
            event_id=event.event_id,
            waiting_for=head["event_id"],
        )

    async def _release(self, event: ev.CaseEvent) -> None:
        """The blocked event was applied: send the parked events' copies, in
        order, then mark the case releasing. Copies first: a crash before the
        mark redelivers the blocked event, which sends them again (applied
        once, by event id); a mark without copies would wait forever."""
        async with doc_lock(self.coll, event.case_id):
            head = await self._find(event.case_id)
            if head is None or head["state"] != BLOCKED or head["event_id"] != event.event_id:
                return
            queue = head.get("queue", [])
            if not queue:
                await self._drop_head(event.case_id)
                log.info("case released", case_id=event.case_id, parked=0)
                return
            for entry in queue:
                doc = await self._find(entry_id(event.case_id, entry["n"]))
                if doc is None:  # pragma: no cover - bytes are written before the queue entry
                    raise LookupError(f"parked event {event.case_id}:{entry['n']} has no bytes")
                await self._send_copy(doc.get("value"), doc.get("key"), entry)
            await self._write_head(event.case_id, {"state": RELEASING, "done": []})
            log.info("case released", case_id=event.case_id, parked=len(queue))

    async def _advance(self, event: ev.CaseEvent) -> None:
        """The queue's head was applied: drop its bytes, then its queue entry;
        the last one removes the head document and the case is free."""
        async with doc_lock(self.coll, event.case_id):
            head = await self._find(event.case_id)
            queue = (head or {}).get("queue", [])
            if head is None or not queue or queue[0]["event_id"] != event.event_id:
                return
            first = queue[0]
            await self._retry(
                lambda: self.coll.delete_one({"_id": entry_id(event.case_id, first["n"])})
            )
            if len(queue) == 1:
                await self._drop_head(event.case_id)
                log.info("case unblocked", case_id=event.case_id)
                return
            done = [*head.get("done", []), event.event_id]
            await self._write_head(event.case_id, {"queue": queue[1:], "done": done})

    # ---- plumbing ---------------------------------------------------------------

    async def _send_copy(self, value: bytes | None, key: bytes | None, entry: Doc) -> None:
        await self.publish(
            value,
            key,
            [
                ("x-unparked-by", self.service.encode()),
                ("x-parked-from", f"{entry['p']}:{entry['o']}".encode()),
                ("x-event-id", str(entry["event_id"]).encode()),
            ],
        )

    async def _find(self, doc_id: str) -> Doc | None:
        return await self._retry(lambda: self.coll.find_one({"_id": doc_id}))

    async def _write_head(self, case_id: str, fields: dict[str, Any]) -> None:
        if self._heads is not None:
            self._heads.add(case_id)
        await self._retry(
            lambda: self.coll.update_one({"_id": case_id}, {"$set": fields}, upsert=True)
        )

    async def _drop_head(self, case_id: str) -> None:
        await self._retry(lambda: self.coll.delete_one({"_id": case_id}))
        if self._heads is not None:
            self._heads.discard(case_id)

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """A store outage waits, like the runtime's: parking must neither
        drop an event nor dead-letter it for the store's sake."""
        delay = 0.2
        while True:
            try:
                return await call()
            except TRANSIENT_ERRORS as e:
                log.warning("store unavailable, retrying", error=str(e))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
