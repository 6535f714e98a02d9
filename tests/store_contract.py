"""The store port's contract: one suite, run against every implementation.

tests/unit/test_store_contract.py runs it on the in-memory fake;
tests/integration/test_store_contract.py on FerretDB (and on a MongoDB when
XINFANG_CONTRACT_MONGO_URI names one). A behaviour the services rely on
belongs here, so the fake the fault tests use cannot drift from the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from xinfang.core.docops import UnsupportedUpdate
from xinfang.core.store import BULK_MAX, Store

# each check takes a store and a fresh collection name
Check = Callable[[Store, str], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


@check
async def insert_is_a_compare_and_set(s: Store, c: str) -> None:
    assert await s.insert(c, {"_id": "a", "v": 1})
    assert not await s.insert(c, {"_id": "a", "v": 2})
    assert await s.get(c, "a") == {"_id": "a", "v": 1}


@check
async def get_missing_is_none(s: Store, c: str) -> None:
    assert await s.get(c, "nope") is None
    assert await s.get_many(c, ["nope", "nada"]) == {}


@check
async def get_many_returns_what_exists(s: Store, c: str) -> None:
    for i in range(3):
        await s.insert(c, {"_id": f"d{i}", "n": i})
    got = await s.get_many(c, ["d2", "x", "d0", "d2"])
    assert got == {"d2": {"_id": "d2", "n": 2}, "d0": {"_id": "d0", "n": 0}}


@check
async def write_upserts_with_every_operator(s: Store, c: str) -> None:
    await s.write(
        c,
        [
            (
                "k",
                {
                    "$set": {"a.b": 1, "s": "x"},
                    "$inc": {"n": 2, "m.x": 1},
                    "$max": {"wm.0": 5},
                    "$min": {"lo": 3},
                    "$setOnInsert": {"created": True},
                    "$push": {"log": {"e": 1}},
                    "$addToSet": {"ids": "p"},
                },
            )
        ],
    )
    await s.write(
        c,
        [
            (
                "k",
                {
                    "$set": {"a.c": 2},
                    "$unset": {"s": "", "missing.path": ""},
                    "$inc": {"n": -1},
                    "$max": {"wm.0": 4},
                    "$min": {"lo": 1},
                    "$setOnInsert": {"created": False, "other": 1},
                    "$push": {"log": {"e": 2}},
                    "$addToSet": {"ids": "p"},
                },
            )
        ],
    )
    assert await s.get(c, "k") == {
        "_id": "k",
        "a": {"b": 1, "c": 2},
        "n": 1,
        "m": {"x": 1},
        "wm": {"0": 5},
        "lo": 1,
        "created": True,
        "log": [{"e": 1}, {"e": 2}],
        "ids": ["p"],
    }


@check
async def write_many_documents_in_order(s: Store, c: str) -> None:
    # more than one bulk round trip's worth, and one document twice
    n = BULK_MAX * 2 + 3
    ups = [(f"d{i:04d}", {"$set": {"i": i}}) for i in range(n)]
    ups.append(("d0000", {"$inc": {"i": 10}}))
    await s.write(c, ups)
    got = await s.get_many(c, [f"d{i:04d}" for i in range(n)])
    assert len(got) == n
    assert got["d0000"]["i"] == 10
    assert got[f"d{n - 1:04d}"]["i"] == n - 1


@check
async def types_come_back_as_bson(s: Store, c: str) -> None:
    at = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    await s.insert(c, {"_id": "t", "at": at, "b": b"\x00\x01", "t": (1, 2)})
    await s.write(c, [("t", {"$set": {"at2": at}})])
    got = await s.get(c, "t")
    assert got is not None
    assert got["at"] == at.replace(microsecond=123000)  # milliseconds, aware
    assert got["at"].tzinfo is not None
    assert got["at2"] == got["at"]
    assert got["b"] == b"\x00\x01"
    assert got["t"] == [1, 2]


@check
async def conflicting_paths_are_refused(s: Store, c: str) -> None:
    with pytest.raises((UnsupportedUpdate, Exception)):
        await s.write(c, [("x", {"$set": {"a": 1}, "$inc": {"a": 1}})])
    with pytest.raises((UnsupportedUpdate, Exception)):
        await s.write(c, [("x", {"$set": {"a": {"b": 1}, "a.b": 2}})])


@check
async def delete_ignores_missing(s: Store, c: str) -> None:
    await s.insert(c, {"_id": "a"})
    await s.insert(c, {"_id": "b"})
    await s.delete(c, ["a", "zzz"])
    assert await s.get(c, "a") is None
    assert await s.get(c, "b") == {"_id": "b"}
    await s.delete(c, [])


@check
async def scan_reads_a_small_collection_in_id_order(s: Store, c: str) -> None:
    for k in ("c", "a", "b"):
        await s.insert(c, {"_id": k})
    assert [d["_id"] for d in await s.scan(c, 10)] == ["a", "b", "c"]
    assert [d["_id"] for d in await s.scan(c, 2)] == ["a", "b"]
    assert await s.scan(c + "-empty", 5) == []


@check
async def insert_many_says_which_ids_were_taken(s: Store, c: str) -> None:
    await s.insert(c, {"_id": "b", "v": 0})
    docs: list[dict[str, object]] = [{"_id": f"n{i:03d}", "v": i} for i in range(BULK_MAX + 5)]
    docs.insert(3, {"_id": "b", "v": 1})
    docs.append({"_id": "n000", "v": -1})
    got = await s.insert_many(c, docs)
    assert got == [d["_id"] != "b" and d["v"] != -1 for d in docs]
    assert await s.get(c, "b") == {"_id": "b", "v": 0}
    assert await s.get(c, "n000") == {"_id": "n000", "v": 0}
    assert len(await s.get_many(c, [str(d["_id"]) for d in docs])) == BULK_MAX + 6


@check
async def add_to_set_and_push_take_each(s: Store, c: str) -> None:
    await s.write(c, [("b", {"$addToSet": {"ids": {"$each": ["x", "y", "x"]}}})])
    await s.write(
        c,
        [("b", {"$addToSet": {"ids": {"$each": ["y", "z"]}}, "$push": {"log": {"$each": [1, 1]}}})],
    )
    assert await s.get(c, "b") == {"_id": "b", "ids": ["x", "y", "z"], "log": [1, 1]}
