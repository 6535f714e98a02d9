"""The store port: every operation the services' state goes through.

Why a port: the write path's guarantees (one write per command, one write
per document per batch, tracking in the same write) are properties of *which*
calls are made in *which* order. Keeping those calls behind six operations
lets the same wiring run on FerretDB, on MongoDB, on an in-memory fake for
the unit tests, and on a fault-injecting wrapper that fails each call in
turn (tests/unit/test_faults.py). The contract suite (tests/store_contract.py)
runs against every implementation, so the fake cannot drift from the real
adapters.

Every lookup is an exact ``_id``: FerretDB 1.x on SQLite pushes down only
``{"_id": <value>}`` and reads the whole collection for any other filter.
``scan`` is the one exception and is for collections that hold only work in
flight (outbox pointers, rechecks), which stay small.

``MongoStore`` counts its round trips in ``xinfang_store_calls_total`` per
service and operation: the benchmark prints store calls per case from it.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions
from prometheus_client import Counter
from pymongo import DeleteOne, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from xinfang.core.docops import apply_update
from xinfang.core.mongo import Doc, doc_lock

__all__ = [
    "BULK_MAX",
    "STORE_CALLS",
    "WRITE_MAX",
    "MemoryStore",
    "MongoStore",
    "Store",
    "Update",
    "WriteTrace",
    "normalise",
]

# (doc_id, update operators): always by _id, always an upsert
Update = tuple[str, Mapping[str, Any]]

# FerretDB 1.24 never answers a bulk_write of 100 or more operations (99
# works): measured, see README "The store". MongoDB takes any size.
BULK_MAX = 99
# Updates are sent in smaller bulks still. FerretDB 1.24's `update` command
# keeps each statement's query open (a connection of the database's pool,
# which has 100) until the whole command ends, and each statement's write
# takes one more: at its last statement a bulk of n updates holds n and asks
# for one more. So a bulk of 100 deadlocks alone, and two bulks of 99 on one
# database at once (two replicas flushing their batches) deadlock each other
# and every later request to that database waits for ever (seen in
# scripts/chaos.sh --replicas 2; README "Faults"). Four bulks of 20 at once
# need at most 84, which leaves room for the other requests.
WRITE_MAX = 20
_DUPLICATE_KEY = 11000

STORE_CALLS = Counter(
    "xinfang_store_calls_total",
    "Round trips to the document store, by service and operation",
    ["service", "op"],
)


class Store(abc.ABC):
    """One database's documents, addressed by collection name and ``_id``."""

    @abc.abstractmethod
    async def get(self, coll: str, doc_id: str) -> Doc | None:
        """The document, or None."""

    @abc.abstractmethod
    async def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, Doc]:
        """The documents that exist among ``ids``, by id."""

    @abc.abstractmethod
    async def insert(self, coll: str, doc: Doc) -> bool:
        """Insert ``doc``; False when its ``_id`` is taken. The insert is the
        compare-and-set every exclusive claim rests on."""

    @abc.abstractmethod
    async def insert_many(self, coll: str, docs: Sequence[Doc]) -> list[bool]:
        """``insert`` of each document, in few round trips; True where it was
        inserted, False where its ``_id`` was taken."""

    @abc.abstractmethod
    async def write(self, coll: str, updates: Sequence[Update]) -> None:
        """Apply each update to its document by ``_id`` (upserting), in as few
        round trips as the server allows. Each document's update is atomic on
        MongoDB; the set as a whole is not."""

    @abc.abstractmethod
    async def delete(self, coll: str, ids: Sequence[str]) -> None:
        """Remove these documents; missing ones are ignored."""

    @abc.abstractmethod
    async def scan(self, coll: str, limit: int) -> list[Doc]:
        """Up to ``limit`` documents of a small collection, in ``_id`` order."""


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class WriteTrace:
    """Every write call as it was sent, appended to a file of BSON documents
    (``{"coll", "op", "body", "t"}``, one per round trip, ``t`` the Unix
    time it was sent). The benchmark replays a run's traces straight at the
    store (``scripts/bench_store.py``): the store's ceiling for the very
    writes the services made, in their shapes and order, without the
    services; ``t`` picks the writes of the phase it compares with (the
    burst, not the steady phase's one-case bulks after it). Flushed per
    call, so a killed process leaves whole records."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("ab")

    def add(self, coll: str, op: str, body: list[Any]) -> None:
        self._f.write(bson.encode({"coll": coll, "op": op, "body": body, "t": time.time()}))
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class MongoStore(Store):
    """The adapter for any MongoDB-protocol server (FerretDB locally)."""

    def __init__(self, db: AsyncDatabase[Doc], service: str, trace: Path | None = None) -> None:
        self.db = db
        self.service = service
        self._calls = {
            op: STORE_CALLS.labels(service, op)
            for op in ("get", "insert", "write", "delete", "scan")
        }
        self._trace = WriteTrace(trace) if trace is not None else None

    def close(self) -> None:
        """Let go of the trace file (the client is the caller's to close)."""
        if self._trace is not None:
            self._trace.close()

    def _count(self, op: str, n: int = 1) -> None:
        self._calls[op].inc(n)

    async def get(self, coll: str, doc_id: str) -> Doc | None:
        self._count("get")
        return await self.db[coll].find_one({"_id": doc_id})

    async def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, Doc]:
        # one exact-_id read each, at once: an $in filter would read the whole
        # collection on FerretDB
        wanted = list(dict.fromkeys(ids))
        docs = await asyncio.gather(*(self.get(coll, i) for i in wanted))
        return {i: d for i, d in zip(wanted, docs, strict=True) if d is not None}

    async def insert(self, coll: str, doc: Doc) -> bool:
        self._count("insert")
        if self._trace is not None:
            self._trace.add(coll, "insert", [doc])
        try:
            await self.db[coll].insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def insert_many(self, coll: str, docs: Sequence[Doc]) -> list[bool]:
        out: list[bool] = []
        for chunk in _chunks(docs, BULK_MAX):
            self._count("insert")
            if self._trace is not None:
                self._trace.add(coll, "insert", list(chunk))
            ok = [True] * len(chunk)
            try:
                await self.db[coll].bulk_write([InsertOne(d) for d in chunk], ordered=False)
            except BulkWriteError as e:
                for w in e.details.get("writeErrors", []):
                    if w.get("code") != _DUPLICATE_KEY:
                        raise
                    ok[w["index"]] = False
            out.extend(ok)
        return out

    async def write(self, coll: str, updates: Sequence[Update]) -> None:
        c = self.db[coll]
        for chunk in _chunks(updates, WRITE_MAX):
            # FerretDB applies an update as a read and a later rewrite of the
            # whole document, so two writers of one document in this process
            # are serialised (core.mongo.doc_lock); sorted, so no deadlock
            ids = sorted({i for i, _ in chunk})
            locks = [doc_lock(c, i) for i in ids]
            for lock in locks:
                await lock.acquire()
            try:
                if self._trace is not None:
                    self._trace.add(coll, "write", [{"_id": i, "u": dict(u)} for i, u in chunk])
                await self._bulk(
                    coll, [UpdateOne({"_id": i}, dict(u), upsert=True) for i, u in chunk]
                )
            finally:
                for lock in reversed(locks):
                    lock.release()

    async def _bulk(self, coll: str, ops: list[Any]) -> None:
        self._count("write")
        try:
            await self.db[coll].bulk_write(ops, ordered=True)
        except BulkWriteError as e:
            # two upserts of a new _id at once: the loser reports a duplicate
            # key (FerretDB; MongoDB retries itself). Redo from that one on:
            # the second try is an update.
            errs = e.details.get("writeErrors", [])
            if not errs or errs[0].get("code") != _DUPLICATE_KEY:
                raise
            await self._bulk(coll, ops[errs[0]["index"] :])

    async def delete(self, coll: str, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(dict.fromkeys(ids)), BULK_MAX):
            self._count("delete")
            if self._trace is not None:
                self._trace.add(coll, "delete", list(chunk))
            await self.db[coll].bulk_write([DeleteOne({"_id": i}) for i in chunk], ordered=False)

    async def scan(self, coll: str, limit: int) -> list[Doc]:
        self._count("scan")
        return await self.db[coll].find({}).sort("_id", 1).to_list(limit)


_CODEC: CodecOptions[Doc] = CodecOptions(tz_aware=True)


def normalise(doc: Mapping[str, Any]) -> Doc:
    """The document as the server would hand it back: BSON types (datetimes
    to the millisecond and aware, tuples as lists, binary as bytes)."""
    return bson.decode(bson.encode(doc), codec_options=_CODEC)


class MemoryStore(Store):
    """The in-memory fake. Documents are stored as BSON, so what comes back
    has the server's types; updates use the same operator semantics
    (``core.docops``). ``calls`` counts operations like the real adapter."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, bytes]] = {}
        self.calls: dict[str, int] = {}

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    def _coll(self, coll: str) -> dict[str, bytes]:
        return self.data.setdefault(coll, {})

    def _read(self, coll: str, doc_id: str) -> Doc | None:
        raw = self._coll(coll).get(doc_id)
        return None if raw is None else bson.decode(raw, codec_options=_CODEC)

    async def get(self, coll: str, doc_id: str) -> Doc | None:
        self._count("get")
        return self._read(coll, doc_id)

    async def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, Doc]:
        out = {}
        for i in dict.fromkeys(ids):
            d = await self.get(coll, i)
            if d is not None:
                out[i] = d
        return out

    async def insert(self, coll: str, doc: Doc) -> bool:
        self._count("insert")
        c = self._coll(coll)
        if doc["_id"] in c:
            return False
        c[doc["_id"]] = bson.encode(normalise(doc))
        return True

    async def insert_many(self, coll: str, docs: Sequence[Doc]) -> list[bool]:
        out: list[bool] = []
        for chunk in _chunks(docs, BULK_MAX):
            self._count("insert")
            c = self._coll(coll)
            for d in chunk:
                taken = d["_id"] in c
                if not taken:
                    c[d["_id"]] = bson.encode(normalise(d))
                out.append(not taken)
        return out

    async def write(self, coll: str, updates: Sequence[Update]) -> None:
        c = self._coll(coll)
        for chunk in _chunks(updates, WRITE_MAX):
            self._count("write")
            for doc_id, upd in chunk:  # ordered, like the adapter's bulk_write
                c[doc_id] = bson.encode(apply_update(self._read(coll, doc_id), upd, doc_id))

    async def delete(self, coll: str, ids: Sequence[str]) -> None:
        c = self._coll(coll)
        for _chunk in _chunks(list(dict.fromkeys(ids)), BULK_MAX):
            self._count("delete")
        for i in ids:
            c.pop(i, None)

    async def scan(self, coll: str, limit: int) -> list[Doc]:
        self._count("scan")
        c = self._coll(coll)
        return [bson.decode(c[k], codec_options=_CODEC) for k in sorted(c)[:limit]]

    def dump(self) -> dict[str, dict[str, Doc]]:
        """Every document, for comparing two runs."""
        return {
            name: {k: bson.decode(v, codec_options=_CODEC) for k, v in sorted(c.items())}
            for name, c in sorted(self.data.items())
            if c
        }
