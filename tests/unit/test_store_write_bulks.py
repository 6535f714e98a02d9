"""How many updates ``MongoStore.write`` sends in one bulk: few enough that
FerretDB 1.24, whose ``update`` command holds a pooled connection per
statement until it ends (100 per database), cannot run out of connections
with a few bulks on one database at once (two replicas flushing together
deadlocked the database: README "Faults")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bson

from xinfang.core.store import WRITE_MAX, MemoryStore, MongoStore


class _Coll:
    def __init__(self, db: _Db, name: str) -> None:
        self.database = db
        self.name = name
        self.bulks: list[int] = db.bulks

    async def bulk_write(self, ops: list[Any], ordered: bool = True) -> None:
        self.bulks.append(len(ops))


class _Db:
    name = "t"

    def __init__(self) -> None:
        self.bulks: list[int] = []

    def __getitem__(self, name: str) -> _Coll:
        return _Coll(self, name)


async def test_updates_go_in_bulks_small_enough_for_several_at_once() -> None:
    db = _Db()
    store = MongoStore(db, "test")  # type: ignore[arg-type]
    await store.write("c", [(f"d{i}", {"$set": {"i": i}}) for i in range(200)])
    assert sum(db.bulks) == 200
    assert max(db.bulks) == WRITE_MAX
    # four flushes at once leave room in FerretDB's 100 connections of a database
    assert 4 * (WRITE_MAX + 1) <= 90


async def test_the_fake_counts_the_same_round_trips() -> None:
    mem = MemoryStore()
    await mem.write("c", [(f"d{i}", {"$set": {"i": i}}) for i in range(200)])
    assert mem.calls["write"] == -(-200 // WRITE_MAX)


async def test_the_write_trace_holds_each_write_call_as_sent(tmp_path: Path) -> None:
    db = _Db()
    store = MongoStore(db, "test", trace=tmp_path / "t" / "test.bson")  # type: ignore[arg-type]
    await store.write("c", [(f"d{i}", {"$set": {"i": i}}) for i in range(30)])
    await store.delete("c", ["d1", "d1", "d2"])
    store.close()
    with (tmp_path / "t" / "test.bson").open("rb") as f:
        calls = list(bson.decode_file_iter(f))
    # one record per round trip, in order: two update bulks, then one delete
    assert [(c["op"], c["coll"], len(c["body"])) for c in calls] == [
        ("write", "c", WRITE_MAX),
        ("write", "c", 30 - WRITE_MAX),
        ("delete", "c", 2),
    ]
    assert calls[0]["body"][3] == {"_id": "d3", "u": {"$set": {"i": 3}}}
    assert calls[2]["body"] == ["d1", "d2"]
