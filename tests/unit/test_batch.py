"""The consumer batch (core.batch), the lease and the outbox, on the fake store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xinfang.core import shards
from xinfang.core.batch import Batch, BatchConsumer, OwnedDocs
from xinfang.core.lease import Lease
from xinfang.core.mongo import Position
from xinfang.core.outbox import POINTERS, Outbox
from xinfang.core.store import MemoryStore


async def test_a_document_changed_by_many_events_is_read_once_and_written_once() -> None:
    s = MemoryStore()
    await s.insert("cases", {"_id": "c1", "n": 0})
    s.calls.clear()
    b = Batch(s)
    await b.load("cases", ["c1", "c2"])
    for i in range(10):
        b.update("cases", "c1", {"$inc": {"n": 1}, "$set": {f"_applied.e{i}": [0, i]}})
        b.update("cases", "c2", {"$push": {"log": i}})
    assert b.peek("cases", "c1") == {
        "_id": "c1",
        "n": 10,
        "_applied": {f"e{i}": [0, i] for i in range(10)},
    }
    await b.flush()
    # c1 existed: one update; c2 is new: inserted whole
    assert s.calls == {"get": 2, "write": 1, "insert": 1}
    assert (await s.get("cases", "c1") or {})["n"] == 10
    assert (await s.get("cases", "c2") or {})["log"] == list(range(10))


async def test_a_new_document_that_exists_after_all_is_updated_as_an_upsert_would() -> None:
    s = MemoryStore()
    b = Batch(s)
    b.assume_absent("cases", ["c1", "c2"])  # wrong for c1: another writer made it
    await s.insert("cases", {"_id": "c1", "other": "kept", "n": 5})
    b.update("cases", "c1", {"$set": {"n": 1}, "$push": {"log": "a"}})
    b.update("cases", "c2", {"$set": {"n": 2}})
    assert await b.flush() == 2
    assert await s.get("cases", "c1") == {"_id": "c1", "other": "kept", "n": 1, "log": ["a"]}
    assert await s.get("cases", "c2") == {"_id": "c2", "n": 2}


async def test_a_counter_refuses_a_position_it_has_counted() -> None:
    s = MemoryStore()
    b = Batch(s)
    assert await b.count("counters", "d:2026", Position(0, 5), {"received": 1}, {"year": 2026})
    assert await b.count("counters", "d:2026", Position(0, 6), {"received": 1})
    assert not await b.count("counters", "d:2026", Position(0, 6), {"received": 1})
    assert await b.count("counters", "d:2026", Position(1, 2), {"received": 1})
    await b.flush()
    # each partition writes a shard of its own, with its own watermark
    assert await s.get("counters", "d:2026@0") == {
        "_id": "d:2026@0",
        "_wm": {"0": 6},
        "_meta": ["year"],
        "received": 2,
        "year": 2026,
    }
    assert await s.get("counters", "d:2026@1") == {
        "_id": "d:2026@1",
        "_wm": {"1": 2},
        "received": 1,
    }
    again = Batch(s)  # a redelivery of the same batch, then one more event
    assert not await again.count("counters", "d:2026", Position(0, 5), {"received": 1})
    assert not await again.count("counters", "d:2026", Position(1, 2), {"received": 1})
    assert await again.count("counters", "d:2026", Position(0, 7), {"received": 1})
    await again.flush()
    merged = await shards.read(s, "counters", ["d:2026"], 4)
    assert merged == {"d:2026": {"received": 4, "year": 2026}}


async def test_flush_writes_counters_then_owned_collections_in_order() -> None:
    s = MemoryStore()
    written: list[str] = []
    real, real_insert = s.write, s.insert_many

    async def spy(coll: str, updates: Sequence[Any]) -> None:
        written.append(coll)
        await real(coll, updates)

    async def spy_insert(coll: str, docs: Sequence[Any]) -> list[bool]:
        written.append(f"{coll} (new)")
        return await real_insert(coll, docs)

    s.write = spy  # type: ignore[method-assign]
    s.insert_many = spy_insert  # type: ignore[method-assign]
    await s.insert("cases", {"_id": "c"})
    b = Batch(s, order=["clocks", "cases"])
    await b.load("cases", ["c"])
    await b.load("clocks", ["k"])
    b.update("cases", "c", {"$set": {"x": 1}})
    b.update("clocks", "k", {"$set": {"y": 1}})
    b.also("buckets", "due:1", {"$addToSet": {"ids": "k"}})
    await b.count("stats", "s", Position(0, 1), {"open": 1})
    await b.flush()
    assert written == ["stats", "buckets", "clocks (new)", "cases"]


async def test_rollback_undoes_one_event_only() -> None:
    s = MemoryStore()
    b = Batch(s)
    await b.load("cases", ["c"])
    b.savepoint()
    b.update("cases", "c", {"$set": {"kept": True}})
    await b.count("stats", "s", Position(0, 1), {"n": 1})
    b.release()
    b.savepoint()
    b.update("cases", "c", {"$set": {"undone": True}})
    await b.count("stats", "s", Position(0, 2), {"n": 5, "m": 2}, {"district_id": "d"})
    await b.count("stats", "t", Position(0, 2), {"n": 1})  # a counter the event alone touched
    b.also("buckets", "b", {"$set": {"x": 1}})
    b.rollback()
    assert b.peek("cases", "c") == {"_id": "c", "kept": True}
    pending = b.pending()
    assert pending["stats"] == [("s@0", {"$max": {"_wm.0": 1}, "$inc": {"n": 1}})]
    assert "buckets" not in pending
    # the same position again after the rollback counts (it was taken back)
    await b.count("stats", "s", Position(0, 2), {"n": 5})
    assert b.pending()["stats"][0] == ("s@0", {"$max": {"_wm.0": 2}, "$inc": {"n": 6}})


async def test_a_failing_event_is_returned_and_the_rest_of_the_batch_is_written() -> None:
    s = MemoryStore()

    async def prepare(b: Batch, items: Sequence[tuple[str, Position]]) -> None:
        await b.load("cases", [e for e, _ in items])

    async def apply(b: Batch, event: str, pos: Position) -> str:
        b.update("cases", event, {"$set": {"seen": pos.offset}})
        if event == "bad":
            raise ValueError("cannot apply")
        return "applied"

    consume = BatchConsumer(s, ["cases"], prepare, apply)
    out = await consume([("a", Position(0, 1)), ("bad", Position(0, 2)), ("b", Position(0, 3))])
    assert out[0] == "applied" and out[2] == "applied"
    assert isinstance(out[1], ValueError)
    assert await s.get("cases", "bad") is None
    assert (await s.get("cases", "b") or {})["seen"] == 3


async def test_a_lease_is_held_by_one_replica_renewed_and_taken_over() -> None:
    s = MemoryStore()
    now = [1000.0]
    a = Lease(s, "sweeper", ttl=10, owner="a", clock=lambda: now[0])
    b = Lease(s, "sweeper", ttl=10, owner="b", clock=lambda: now[0])
    assert await a.held()
    assert not await b.held()
    now[0] = 1007.0  # a renews ahead of the next term
    assert await a.held()
    now[0] = 1011.0
    assert not await b.held()
    assert await a.held()
    now[0] = 1031.0  # a died at 1011: its last term ran out, b takes over
    assert await b.held()
    assert not await a.held()


async def test_the_outbox_publishes_at_once_and_sweeps_what_a_crash_left() -> None:
    s = MemoryStore()
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    bus: list[tuple[bytes, bytes]] = []

    async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
        bus.extend(messages)

    out = Outbox(s, publish, "t", clock=lambda: now[0])
    doc = {"_id": "r1", "outbox": [{"key": "c1", "value": b"e1"}]}
    assert await out.record("records", [doc]) == [True]
    assert await out.record("records", [{**doc, "outbox": []}]) == [False]  # taken
    assert bus == [(b"c1", b"e1")]
    await out.flush()
    assert await s.scan(POINTERS, 10) == []

    async def broken(messages: Sequence[tuple[bytes, bytes]]) -> None:
        raise ConnectionError("broker away")

    down = Outbox(s, broken, "t", clock=lambda: now[0])
    assert await down.record("records", [{"_id": "r2", "outbox": [{"key": "c2", "value": b"e2"}]}])
    await s.insert(
        POINTERS, {"_id": "records:ghost:x", "coll": "records", "doc": "ghost", "at": now[0]}
    )
    assert await out.sweep() == 0  # within the grace period: a writer may be at work
    now[0] += timedelta(minutes=1)
    assert await out.sweep() == 1
    assert bus[-1] == (b"c2", b"e2")
    assert await s.scan(POINTERS, 10) == []  # the ghost's pointer is dropped too


@pytest.mark.parametrize("n", [1, 150])
async def test_the_outbox_records_many_documents_in_few_calls(n: int) -> None:
    s = MemoryStore()
    bus: list[tuple[bytes, bytes]] = []

    async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
        bus.extend(messages)

    out = Outbox(s, publish, "t")
    docs = [{"_id": f"r{i}", "outbox": [{"key": "c", "value": b"%d" % i}]} for i in range(n)]
    assert await out.record("records", docs) == [True] * n
    assert len(bus) == n
    assert s.calls["insert"] == 2 * ((n + 98) // 99)


async def test_many_additions_to_one_shared_set_are_one_write() -> None:
    s = MemoryStore()
    b = Batch(s)
    for i in range(150):
        b.also("due_buckets", "due:20260301", {"$addToSet": {"ids": f"clock-{i % 120}"}})
    b.also("rechecks", "due:c1", {"$set": {"day": "20260301"}})
    await b.flush()
    assert s.calls == {"write": 2}
    doc = await s.get("due_buckets", "due:20260301")
    assert doc is not None and doc["ids"] == [f"clock-{i}" for i in range(120)]


async def test_documents_a_replay_owns_are_kept_not_read_back() -> None:
    s = MemoryStore()
    owned = OwnedDocs(complete=True, max_docs=3)
    for _ in range(2):
        b = Batch(s, owned=owned)
        await b.load("cases", ["c1", "c2"])
        b.update("cases", "c1", {"$inc": {"n": 1}})
        await b.flush()
    assert s.calls.get("get", 0) == 0  # nothing read: a fresh read model
    assert (await s.get("cases", "c1") or {})["n"] == 2
    b = Batch(s, owned=owned)
    await b.load("cases", ["c3", "c4"])  # past max_docs: memory let go
    await b.flush()
    assert not owned.complete and owned.docs == {}
    b = Batch(s, owned=owned)
    await b.load("cases", ["c1"])
    assert b.peek("cases", "c1") == {"_id": "c1", "n": 2}  # read from the store again


async def test_a_live_consumer_reads_what_it_wrote_from_memory_until_a_rebalance() -> None:
    s = MemoryStore()
    owned = OwnedDocs(max_docs=100)
    b = Batch(s, owned=owned)
    await b.load("cases", ["c1"])  # not known yet: read (and found absent)
    b.update("cases", "c1", {"$set": {"n": 1}})
    await b.flush()
    reads = s.calls.get("get", 0)
    b = Batch(s, owned=owned)
    await b.load("cases", ["c1"])  # the case's next event: from memory
    assert s.calls.get("get", 0) == reads and b.peek("cases", "c1") == {"_id": "c1", "n": 1}
    b.update("cases", "c1", {"$set": {"n": 2}})
    owned.drop()  # partitions revoked while the batch ran: it keeps nothing
    await b.flush()
    assert owned.docs == {}
    await s.write("cases", [("c1", {"$set": {"n": 7}})])  # another replica's write
    b = Batch(s, owned=owned)
    await b.load("cases", ["c1"])
    assert b.peek("cases", "c1") == {"_id": "c1", "n": 7}


async def test_a_write_that_fails_in_part_forgets_what_was_kept() -> None:
    s = MemoryStore()
    owned = OwnedDocs(max_docs=100)
    b = Batch(s, ["clocks", "cases"], owned=owned)
    await b.load("clocks", ["k1"])
    await b.load("cases", ["c1"])
    b.update("clocks", "k1", {"$set": {"open": True}})
    b.update("cases", "c1", {"$set": {"n": 1}})
    real = s.insert_many

    async def insert_many(coll: str, docs: Any) -> list[bool]:
        if coll == "cases":
            raise ConnectionError("lost")
        return await real(coll, docs)

    s.insert_many = insert_many  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await b.flush()
    assert owned.docs == {}  # the clock was written, the case not: read both again


async def test_a_counters_watermark_is_kept_with_the_owned_documents_until_a_drop() -> None:
    s = MemoryStore()
    owned = OwnedDocs()
    b = Batch(s, owned=owned)
    assert await b.count("stats", "d", Position(0, 5), {"n": 1})
    await b.flush()
    s.calls.clear()
    again = Batch(s, owned=owned)  # the next batch of the partition: nothing read
    assert not await again.count("stats", "d", Position(0, 5), {"n": 1})
    assert await again.count("stats", "d", Position(0, 6), {"n": 1})
    await again.flush()
    assert s.calls == {"write": 1}
    owned.drop()  # revoked: another replica may have counted since
    await s.write("stats", [("d@0", {"$max": {"_wm.0": 9}, "$inc": {"n": 3}})])
    s.calls.clear()
    after = Batch(s, owned=owned)
    assert not await after.count("stats", "d", Position(0, 9), {"n": 1})
    assert await after.count("stats", "d", Position(0, 10), {"n": 1})
    await after.flush()
    assert s.calls == {"get": 1, "write": 1}
    assert (await s.get("stats", "d@0") or {})["n"] == 6


async def test_a_new_document_is_written_after_the_changes_to_its_collection() -> None:
    """A query that finds the clock an acceptance starts also finds the
    window it stops closed: a batch updates the documents that existed
    before it inserts the new ones of the same collection."""
    seen: list[Any] = []

    class Watching(MemoryStore):
        async def insert_many(self, coll: str, docs: Sequence[dict[str, Any]]) -> list[bool]:
            if coll == "clocks":
                seen.append(await self.get("clocks", "c1:remit_objection"))
            return await super().insert_many(coll, docs)

    s = Watching()
    await s.insert("clocks", {"_id": "c1:remit_objection", "open": True})
    b = Batch(s, ["clocks"])
    await b.load("clocks", ["c1:remit_objection", "c1:handling"])
    b.update("clocks", "c1:remit_objection", {"$set": {"open": False}})
    b.update("clocks", "c1:handling", {"$set": {"open": True}})
    await b.flush()
    assert seen == [{"_id": "c1:remit_objection", "open": False}]
    assert await s.get("clocks", "c1:handling") == {"_id": "c1:handling", "open": True}
