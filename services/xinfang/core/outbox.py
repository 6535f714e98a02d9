"""The transactional outbox, in one document, for a store without transactions.

A writer puts a document's new state and the events that describe it into the
same single-document write (``stage`` gives the fields). The relay publishes
those events to Kafka (idempotent producer, acks=all), then removes them from
the document. A crash in between publishes them again; consumers deduplicate
by event id.

How the relay finds work without scanning every document (the embedded store
scans for any filter but ``{"_id": ...}``): before the state write, the writer
inserts one small *pointer* per event into ``outbox_pointers``. That
collection holds only what is in flight, so reading it whole is cheap. The
pointer is a hint, the document is the truth: a pointer whose event never
reached its document (the writer failed) is dropped after ``orphan_after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import encode_event
from xinfang.core.logging import get_logger
from xinfang.core.metrics import OUTBOX_PUBLISHED
from xinfang.core.mongo import TRANSIENT_ERRORS, Collection, Doc, doc_lock

__all__ = ["Outbox", "OutboxRelay"]

log = get_logger(__name__)
_DUPLICATE_KEY = 11000


class Outbox:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.pointers: Collection = db["outbox_pointers"]

    async def stage(self, coll: Collection, doc_id: str, events: Sequence[ev.CaseEvent]) -> Doc:
        """Record pointers, then return the ``$set`` fields to write with the state."""
        now = datetime.now(UTC)
        try:
            await self.pointers.insert_many(
                [{"_id": e.event_id, "coll": coll.name, "doc": doc_id, "at": now} for e in events],
                ordered=False,
            )
        except BulkWriteError as e:  # a retry of the same events: pointers already there
            if any(w.get("code") != _DUPLICATE_KEY for w in e.details.get("writeErrors", [])):
                raise
        base = time.time_ns()
        return {
            f"outbox.{e.event_id}": {
                "seq": base + i,
                "key": e.case_id,
                "value": Binary(encode_event(e)),
            }
            for i, e in enumerate(events)
        }


class OutboxRelay:
    """Publishes staged events. A write wakes it at once (``notify``); it also
    polls, to finish what a crashed process left behind."""

    def __init__(
        self,
        service: str,
        producer: AIOKafkaProducer,
        topic: str,
        outbox: Outbox,
        collections: Sequence[Collection],
        poll_seconds: float = 1.0,
        batch: int = 1000,
        orphan_after: timedelta = timedelta(minutes=2),
    ) -> None:
        self.service = service
        self.producer = producer
        self.topic = topic
        self.pointers = outbox.pointers
        self.collections = {c.name: c for c in collections}
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.orphan_after = orphan_after
        self._wake = asyncio.Event()
        self._stopped = False

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                while await self.drain() >= self.batch:
                    pass
            except TRANSIENT_ERRORS as e:
                log.warning("outbox relay: store unavailable, will retry", error=str(e))
            except Exception:
                log.exception("outbox relay failed, will retry")
                await asyncio.sleep(self.poll_seconds)

    async def drain(self) -> int:
        """Publish what one batch of pointers leads to; returns pointers read."""
        ptrs = await self.pointers.find({}).to_list(self.batch)
        if not ptrs:
            return 0
        by_doc: dict[tuple[str, str], list[Doc]] = {}
        for p in ptrs:
            by_doc.setdefault((p["coll"], p["doc"]), []).append(p)
        futures = []
        published: dict[tuple[str, str], list[str]] = {}
        for cname, doc_id in by_doc:
            coll = self.collections.get(cname)
            doc = await coll.find_one({"_id": doc_id}, {"outbox": 1}) if coll is not None else None
            items = sorted(((doc or {}).get("outbox") or {}).items(), key=lambda kv: kv[1]["seq"])
            for _eid, item in items:
                futures.append(
                    await self.producer.send(
                        self.topic, value=bytes(item["value"]), key=item["key"].encode()
                    )
                )
            published[(cname, doc_id)] = [eid for eid, _ in items]
        await asyncio.gather(*futures)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(futures))
        stale = datetime.now(UTC) - self.orphan_after
        done: list[str] = []
        for key, eids in published.items():
            if eids:
                coll = self.collections[key[0]]
                async with doc_lock(coll, key[1]):  # see core.mongo on FerretDB's updates
                    await coll.update_one(
                        {"_id": key[1]}, {"$unset": {f"outbox.{e}": "" for e in eids}}
                    )
            sent = set(eids)
            for p in by_doc[key]:
                # a pointer whose event is not in the document yet may belong to
                # a write still in progress: keep it until it is clearly orphaned
                if p["_id"] in sent or p["at"] < stale:
                    done.append(p["_id"])
        if done:  # the pointer collection is small: one $in scan beats one call each
            await self.pointers.delete_many({"_id": {"$in": done}})
        return len(ptrs)
