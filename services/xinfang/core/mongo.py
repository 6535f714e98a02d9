"""MongoDB access: the async client, idempotent writes and the outbox fields.

Two limits of the embedded store (FerretDB 1.x on SQLite) shape this module:
it has no multi-document transactions, and it pushes down to SQLite only a
filter that is exactly ``{"_id": <string>}``; any other filter reads the whole
collection. So every hot-path read and write here addresses one document by
``_id`` and nothing else, and every guarantee rests on single-document writes:

* ``apply_once``: the effect and the record that event X was applied land in
  one update of one document (eventsourcing's tracking record);
* ``inc_once``: counters shared by many cases carry, per source partition, the
  highest offset already counted; a redelivery at or below it is ignored;
* the outbox (``core.outbox``): a document's new state and its unpublished
  events are written together; a relay publishes and clears them.

Both ``apply_once`` and ``inc_once`` read, then write: safe because a case's
documents, and a partition's watermark field, are written only by the one
consumer that owns that partition (Kafka's consumer group guarantees it
outside the short hand-over of a rebalance). On a real MongoDB the same
calls work unchanged.

A third limit, found the hard way: FerretDB 1.x applies an update as a read
of the document and a later write of all of it, so two updates of one
document at once can lose one of them (measured: an outbox entry written
while the relay cleared another vanished). MongoDB updates a document
atomically. Every writer here therefore takes ``doc_lock`` for the document
it changes, which serialises writers within a process; on FerretDB, run
one replica per service (the local stack does). Readers take no lock.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect, ConnectionFailure, DuplicateKeyError, NetworkTimeout

__all__ = [
    "TRANSIENT_ERRORS",
    "Applied",
    "Position",
    "apply_once",
    "connect",
    "doc_lock",
    "inc_once",
    "upsert_by_id",
    "upsert_unlocked",
]

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]

# Errors worth retrying rather than dead-lettering: the store is briefly away.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    AutoReconnect,
    NetworkTimeout,
)


def connect(uri: str, app_name: str) -> AsyncMongoClient[Doc]:
    """Create the client; call inside the running event loop (PyMongo's async
    client binds to the loop it is first used in)."""
    return AsyncMongoClient(uri, appname=app_name, tz_aware=True, serverSelectionTimeoutMS=10_000)


@dataclass(frozen=True)
class Position:
    """Where an event was read: (partition, offset) of the case-events topic."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Applied:
    """Outcome of ``apply_once``: ``first`` is True when this call applied the
    event; ``here`` is True when the event was first applied from this same
    position (a redelivery of the same message, whose follow-up writes must
    be retried) rather than from a duplicate publish at another offset."""

    first: bool
    here: bool


_LOCKS: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def doc_lock(coll: Collection, doc_id: str) -> asyncio.Lock:
    """The in-process lock of one document (see the module docstring)."""
    key = (coll.database.name, coll.name, doc_id)
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = asyncio.Lock()
    return lock


async def upsert_by_id(coll: Collection, doc_id: str, update: Mapping[str, Any]) -> None:
    """Update-or-insert one document by ``_id``, under its lock."""
    async with doc_lock(coll, doc_id):
        await upsert_unlocked(coll, doc_id, update)


async def upsert_unlocked(coll: Collection, doc_id: str, update: Mapping[str, Any]) -> None:
    """``upsert_by_id`` for a caller that holds the document's lock. Two
    concurrent upserts of a new ``_id`` can both try the insert; MongoDB
    retries the loser itself, FerretDB reports a duplicate key, so retry
    here: the second try is an update."""
    try:
        await coll.update_one({"_id": doc_id}, update, upsert=True)
    except DuplicateKeyError:
        await coll.update_one({"_id": doc_id}, update, upsert=True)


async def apply_once(
    coll: Collection,
    doc_id: str,
    event_id: str,
    update: Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]],
    pos: Position,
    *,
    upsert: bool = True,
) -> Applied:
    """Apply ``update`` unless ``event_id`` is recorded as applied to the document.

    ``update`` may be a coroutine function, called only when the event is new,
    so work with side effects (staging outbox events) is not done for a
    duplicate."""
    async with doc_lock(coll, doc_id):
        marker = f"_applied.{event_id}"
        doc = await coll.find_one({"_id": doc_id}, {marker: 1})
        seen = (doc or {}).get("_applied", {}).get(event_id)
        if seen is not None:
            return Applied(first=False, here=seen == [pos.partition, pos.offset])
        if doc is None and not upsert:
            raise LookupError(f"document {doc_id!r} does not exist")
        if callable(update):
            update = await update()
        upd: Doc = {k: dict(v) for k, v in update.items()}
        upd.setdefault("$set", {})[marker] = [pos.partition, pos.offset]
        if upsert:
            await upsert_unlocked(coll, doc_id, upd)
        else:
            await coll.update_one({"_id": doc_id}, upd)
        return Applied(first=True, here=True)


async def inc_once(
    coll: Collection,
    doc_id: str,
    pos: Position,
    inc: Mapping[str, int],
    set_on_insert: Mapping[str, Any] | None = None,
) -> bool:
    """Add ``inc`` to a shared counter document unless this position was counted."""
    async with doc_lock(coll, doc_id):
        wm = f"_wm.{pos.partition}"
        doc = await coll.find_one({"_id": doc_id}, {wm: 1})
        last = (doc or {}).get("_wm", {}).get(str(pos.partition))
        if last is not None and last >= pos.offset:
            return False
        upd: Doc = {"$inc": dict(inc), "$set": {wm: pos.offset}}
        if set_on_insert:
            upd["$setOnInsert"] = dict(set_on_insert)
        await upsert_unlocked(coll, doc_id, upd)
        return True
