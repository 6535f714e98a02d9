"""How many updates ``MongoStore.write`` sends in one bulk: few enough that
FerretDB 1.24, whose ``update`` command holds a pooled connection per
statement until it ends (100 per database), cannot run out of connections
with a few bulks on one database at once (two replicas flushing together
deadlocked the database: README "Faults")."""

from __future__ import annotations

from typing import Any

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
