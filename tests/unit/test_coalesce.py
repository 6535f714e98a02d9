"""The coalescer writes what has queued up, never waiting for a batch to fill."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from xinfang.core.coalesce import Coalescer


async def test_a_lone_item_is_written_at_once_and_a_burst_in_few_batches() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        await gate.wait()
        return [i * 10 if i != 13 else ValueError("13: refused") for i in items]

    c: Coalescer[int, int] = Coalescer(flush, max_batch=4, in_flight=1)
    first = asyncio.create_task(c.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[0]]  # written at once, no waiting for others
    rest = [asyncio.create_task(c.submit(i)) for i in range(1, 15)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert [r for r in results if not isinstance(r, BaseException)] == [
        i * 10 for i in range(15) if i != 13
    ]
    assert isinstance(results[13], ValueError)  # only its own item fails
    # what queued while the first batch was written went in batches of at most 4
    assert batches[1:] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14]]


async def test_a_failed_flush_fails_each_of_its_items() -> None:
    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("down")

    c: Coalescer[int, int] = Coalescer(flush)
    results = await asyncio.gather(*(c.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await c.submit(9)
