"""MongoDB access: the async client, the per-document lock, upserts by ``_id``.

Two limits of the embedded store (FerretDB 1.x on SQLite) shape how the
services write: it has no multi-document transactions, and it pushes down to
SQLite only a filter that is exactly ``{"_id": <string>}``; any other filter
reads the whole collection. So every hot-path read and write addresses one
document by ``_id``, and every guarantee rests on single-document writes
(``core.store`` is the port the write path goes through; ``core.batch`` puts
an event's effect and its tracking in one write per document).

A third limit, found the hard way: FerretDB 1.x applies an update as a read
of the document and a later write of all of it, so two updates of one
document at once can lose one of them (measured: an outbox entry written
while the relay cleared another vanished). MongoDB updates a document
atomically. Every writer therefore takes ``doc_lock`` for the document it
changes, which serialises writers within a process; on FerretDB, run one
replica per service (the local stack does). Readers take no lock.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect, ConnectionFailure, DuplicateKeyError, NetworkTimeout

__all__ = [
    "TRANSIENT_ERRORS",
    "Position",
    "connect",
    "doc_lock",
    "upsert_by_id",
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
    """Update-or-insert one document by ``_id``, under its lock. Two
    concurrent upserts of a new ``_id`` can both try the insert; MongoDB
    retries the loser itself, FerretDB reports a duplicate key, so retry
    here: the second try is an update."""
    async with doc_lock(coll, doc_id):
        try:
            await coll.update_one({"_id": doc_id}, update, upsert=True)
        except DuplicateKeyError:
            await coll.update_one({"_id": doc_id}, update, upsert=True)
