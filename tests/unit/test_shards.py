"""Shards of a shared document add up to what one document would hold."""

from __future__ import annotations

from xinfang.core import shards
from xinfang.core.batch import Batch
from xinfang.core.mongo import Position
from xinfang.core.store import MemoryStore


def test_merge_adds_numbers_keeps_meta_and_joins_lists() -> None:
    a = {
        "_id": "x@0",
        "_wm": {"0": 9},
        "_meta": ["warn_days"],
        "warn_days": 3,
        "n": 2,
        "m": {"2026-01": 1},
        "ids": ["c1", "c2"],
        "name": "d",
        "flag": True,
    }
    b = {"_id": "x@1", "_wm": {"1": 4}, "_meta": ["warn_days"], "warn_days": 3,
         "n": 5, "m": {"2026-01": 2, "2026-02": 1}, "ids": ["c2", "c3"], "name": "d",
         "flag": True}  # fmt: skip
    assert shards.merge([a, b]) == {
        "warn_days": 3,  # named in _meta: not added up
        "n": 7,
        "m": {"2026-01": 3, "2026-02": 1},
        "ids": ["c1", "c2", "c3"],
        "name": "d",
        "flag": True,  # a bool is not a number to add
    }
    assert shards.merge([]) is None
    assert a["n"] == 2 and a["m"] == {"2026-01": 1}  # the shards are left as they were


def test_base_id_strips_only_a_partition_suffix() -> None:
    assert shards.base_id("d:2026@3") == "d:2026"
    assert shards.base_id("someone@example") == "someone@example"
    assert shards.base_id("plain") == "plain"


async def test_two_partitions_counted_apart_read_as_one_document() -> None:
    s = MemoryStore()
    b = Batch(s)
    for p, o in ((0, 1), (0, 2), (1, 1), (3, 7)):
        await b.count("c", "d:2026", Position(p, o), {"received": 1}, {"year": 2026})
    await b.flush()
    assert sorted(d["_id"] for d in await s.scan("c", 10)) == ["d:2026@0", "d:2026@1", "d:2026@3"]
    assert await shards.read(s, "c", ["d:2026", "d:2027"], 4) == {
        "d:2026": {"received": 4, "year": 2026}
    }
    rows = shards.merge_all(await s.scan("c", 10))
    assert rows == [{"_id": "d:2026", "received": 4, "year": 2026}]
