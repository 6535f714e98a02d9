"""The store contract on the in-memory fake (the same suite runs on FerretDB
in tests/integration/test_store_contract.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.store_contract import CHECKS, Check
from xinfang.core.store import WRITE_MAX, MemoryStore


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_fake_keeps_the_contract(name: str) -> None:
    check: Check = CHECKS[name]
    await check(MemoryStore(), "contract")


def test_the_fake_counts_calls_like_the_adapter() -> None:
    s = MemoryStore()

    async def go() -> None:
        await s.write("c", [(f"d{i}", {"$set": {"i": i}}) for i in range(150)])
        await s.get_many("c", ["d1", "d2"])
        await s.insert("c", {"_id": "x"})

    asyncio.run(go())
    assert s.calls == {"write": -(-150 // WRITE_MAX), "get": 2, "insert": 1}
