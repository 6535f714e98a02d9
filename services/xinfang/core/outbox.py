"""The outbox: events recorded in the write that makes them true, published
right after it, and swept up after a crash. For a store without transactions.

A writer records what happened as *one insert* of a document that holds the
events to publish in its ``outbox`` field (intake's case document, one of
assignment's command records, one of supervision's emitted notices). The
insert is the fact: before it nothing happened, after it the events must
reach Kafka. So:

1. a *pointer* naming the document is inserted first (``outbox_pointers``
   holds only what is in flight, so reading it whole is cheap);
2. the document is inserted (the command's compare-and-set);
3. its events are published at once (idempotent producer, acks=all);
4. the pointer is deleted, in bulk, a moment later.

A crash between 2 and 4 leaves a pointer to a document whose events may not
be out: the *sweeper* publishes them again once the pointer is older than
``grace`` (consumers deduplicate by event id). A pointer whose document never
appeared (the writer died before 2, or lost the compare-and-set) is dropped.
The documents are never changed by the outbox, so it never races their
writers. One replica sweeps at a time (``core.lease``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.binary import Binary

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import encode_event
from xinfang.core.lease import Lease
from xinfang.core.logging import get_logger
from xinfang.core.metrics import OUTBOX_PUBLISHED
from xinfang.core.mongo import TRANSIENT_ERRORS, Doc
from xinfang.core.store import Store

__all__ = ["POINTERS", "Inserted", "Outbox", "Publish", "outbox_field"]

log = get_logger(__name__)

POINTERS = "outbox_pointers"
# publishes (key, value) messages to the case-events topic and returns once
# the broker has all of them
Publish = Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[None]]


class Inserted(list[bool]):
    """Per document, whether ``Outbox.record`` inserted it; and whether the
    events of those inserted went out (False: Kafka refused them, and they
    wait for a sweep). A writer whose later events must follow these, as a
    case's next command's do, keeps what it records next from overtaking
    them (``assignment.store``)."""

    published: bool = True


def outbox_field(events: Sequence[ev.CaseEvent]) -> list[Doc]:
    """The ``outbox`` field of a document that records ``events``."""
    return [{"key": e.case_id, "value": Binary(encode_event(e))} for e in events]


def _messages(doc: Doc) -> list[tuple[bytes, bytes]]:
    return [(str(m["key"]).encode(), bytes(m["value"])) for m in doc.get("outbox") or ()]


class Outbox:
    def __init__(
        self,
        store: Store,
        publish: Publish,
        service: str,
        grace: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.publish = publish
        self.service = service
        self.grace = grace
        self.clock = clock
        self._done: list[str] = []  # pointers whose events are out, to delete
        # per collection: what a writer does after its record, redone for the
        # records a sweep finds (assignment refreshes the case's snapshot)
        self.after_sweep: dict[str, Callable[[list[Doc]], Awaitable[None]]] = {}

    async def record(
        self, coll: str, docs: Sequence[Doc], republish_taken: bool = False
    ) -> Inserted:
        """Insert ``docs`` (each with its ``outbox``) and publish the events of
        those inserted; False where the ``_id`` was taken (nothing published
        for it: the document that holds it is someone else's fact). With
        ``republish_taken`` a taken ``_id`` is this writer's own fact, its id
        derived from what it records (the scanner's notices): an earlier try
        recorded it and may have died before publishing, so what is stored
        under it is published again, now rather than at the next sweep."""
        if not docs:
            return Inserted()
        token = uuid.uuid4().hex[:12]
        now = self.clock()
        pointers = [
            {"_id": f"{coll}:{d['_id']}:{token}", "coll": coll, "doc": d["_id"], "at": now}
            for d in docs
        ]
        await self.store.insert_many(POINTERS, pointers)
        inserted = Inserted(await self.store.insert_many(coll, list(docs)))
        messages = [m for d, ok in zip(docs, inserted, strict=True) if ok for m in _messages(d)]
        taken = [d["_id"] for d, ok in zip(docs, inserted, strict=True) if not ok]
        if republish_taken and taken:
            stored = await self.store.get_many(coll, taken)
            messages += [m for i in taken if i in stored for m in _messages(stored[i])]
        try:
            if messages:
                await self.publish(messages)
        except Exception as e:  # the facts are stored: the sweeper publishes them
            log.warning("outbox: publish failed, the sweeper will retry", error=str(e))
            # a sweeper may have dropped our pointers already if this writer
            # stalled past the grace period: leave fresh ones
            with contextlib.suppress(Exception):
                fresh = [{**p, "_id": p["_id"] + "+", "at": self.clock()} for p in pointers]
                await self.store.insert_many(POINTERS, fresh)
            inserted.published = False
            return inserted
        OUTBOX_PUBLISHED.labels(self.service).inc(len(messages))
        self._done.extend(p["_id"] for p in pointers)
        return inserted

    async def republish(self, docs: Sequence[Doc]) -> None:
        """Publish again what these recorded documents hold: for a writer that
        finds its own earlier attempt's record (a retried request, a
        redelivered event), so its events go out now rather than at the
        next sweep. Consumers deduplicate by event id."""
        messages = [m for d in docs for m in _messages(d)]
        if messages:
            await self.publish(messages)
            OUTBOX_PUBLISHED.labels(self.service).inc(len(messages))

    async def flush(self) -> None:
        """Delete the pointers of what was published."""
        done, self._done = self._done, []
        if done:
            try:
                await self.store.delete(POINTERS, done)
            except BaseException:
                self._done.extend(done)
                raise

    async def sweep(self, limit: int = 1000) -> int:
        """Publish what crashed writers left behind; returns events published."""
        await self.flush()
        stale = self.clock() - self.grace
        ptrs = [p for p in await self.store.scan(POINTERS, limit) if p["at"] < stale]
        if not ptrs:
            return 0
        by_coll: dict[str, list[Doc]] = {}
        for p in ptrs:
            by_coll.setdefault(p["coll"], []).append(p)
        published = 0
        for coll, group in by_coll.items():
            docs = await self.store.get_many(coll, [p["doc"] for p in group])
            messages = [m for d in docs.values() for m in _messages(d)]
            if messages:
                await self.publish(messages)
                published += len(messages)
            if docs and coll in self.after_sweep:
                await self.after_sweep[coll](list(docs.values()))
        OUTBOX_PUBLISHED.labels(self.service).inc(published)
        await self.store.delete(POINTERS, [p["_id"] for p in ptrs])
        if published:
            log.info("outbox: swept what a crashed writer left", events=published)
        return published

    async def run(self, lease: Lease, poll_seconds: float, stop: asyncio.Event) -> None:
        """The background loop: delete done pointers; sweep while leased."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
            try:
                if await lease.held():
                    await self.sweep()
                else:
                    await self.flush()
            except TRANSIENT_ERRORS as e:
                log.warning("outbox: store unavailable, will retry", error=str(e))
            except Exception:
                log.exception("outbox sweep failed, will retry")


def kafka_publisher(producer: Any, topic: str) -> Publish:
    """``Publish`` over an aiokafka producer: every send queued, then all
    awaited, so a batch costs one round of acknowledgements."""

    async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)

    return publish
