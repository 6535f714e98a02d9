"""Concurrent requests written together.

Why: a store call costs the same round trip for one document as for 99
(``core.store.BULK_MAX``), and FerretDB's ceiling is in round trips. A
service that answers many requests at once (intake under a burst of
registrations) hands each request's prepared write to a ``Coalescer``,
which writes whatever has queued up in one batch. It never waits for a
batch to fill: an idle coalescer writes a lone request at once, and requests
that arrive while a batch is being written form the next one. So batching
costs no latency and grows with the load.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")

# writes a batch; returns a result or an exception per item, in order
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], max_batch: int = 99, in_flight: int = 2) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """The item's result, once the batch it joined is written."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if len(self._queue) == 1:  # the first of a new batch starts its writer
            task = asyncio.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _run(self) -> None:
        async with self._slots:  # waits while enough batches are being written
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            if self._queue:  # more than one batch's worth: the rest goes next
                task = asyncio.create_task(self._run())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not batch:
                return
            try:
                results = await self._flush([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, fut in batch:
                    fut.cancel()
                raise
            except BaseException as e:  # the whole batch failed: each caller hears why
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                return
            for (_, fut), res in zip(batch, results, strict=True):
                if fut.done():  # its caller gave up (cancelled)
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)

    async def close(self) -> None:
        """Let the batches being written finish."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
