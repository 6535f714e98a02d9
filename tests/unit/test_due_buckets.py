"""Day buckets in pages (supervision.buckets), on the fake store."""

from __future__ import annotations

from xinfang.core.batch import Batch
from xinfang.core.mongo import Position
from xinfang.core.store import MemoryStore
from xinfang.supervision import buckets
from xinfang.supervision.docs import BUCKETS


async def _index(s: MemoryStore, entries: list[tuple[str, Position]]) -> None:
    b = Batch(s)
    for clock_id, pos in entries:
        buckets.index(b, "due", "20260301", clock_id, pos)
    await b.flush()


async def test_a_bucket_is_read_whole_from_every_partitions_pages() -> None:
    s = MemoryStore()
    step = buckets.PAGE_OFFSETS
    await _index(s, [(f"k{i}", Position(i % 2, i * 40)) for i in range(12)])
    # partition 0 had offsets 0, 80, ..., 400: pages 0..3, each a few ids
    head = await s.get(BUCKETS, "due:20260301@0")
    assert head is not None and head["pages"] == sorted({i * 40 // step for i in range(0, 12, 2)})
    page = await s.get(BUCKETS, "due:20260301@0#0")
    assert page is not None and page["ids"] == ["k0", "k2"]
    got = await buckets.read(s.get_many, ["due:20260301", "due:20260302"], partitions=4)
    assert sorted(got) == ["due:20260301"]
    assert sorted(got["due:20260301"]) == sorted(f"k{i}" for i in range(12))


async def test_a_redelivered_event_changes_nothing_and_the_old_single_list_is_read() -> None:
    s = MemoryStore()
    entries = [("k1", Position(0, 5)), ("k2", Position(0, 300))]
    await _index(s, entries)
    before = s.dump()
    await _index(s, entries)  # the same events again (another batch's boundaries)
    await _index(s, entries[1:])
    assert s.dump() == before
    # a bucket written before the pages: its ids are in the head itself
    await s.write(BUCKETS, [("due:20260301@3", {"$addToSet": {"ids": "old"}})])
    got = await buckets.read(s.get_many, ["due:20260301"], partitions=4)
    assert sorted(got["due:20260301"]) == ["k1", "k2", "old"]
