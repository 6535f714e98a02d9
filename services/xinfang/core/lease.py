"""A lease that one replica of a service holds at a time, on any store.

Background work that must run once per deployment, not once per replica (the
outbox sweeper, the deadline scanner), runs only while its replica holds the
lease. The store port has no conditional update, so the lease is built from
the one compare-and-set every MongoDB-protocol server has, the insert of a
unique ``_id``: time is cut into terms of ``ttl`` seconds, and whoever first
inserts ``<name>:<term>`` holds term ``term``, its owner and expiry in that
document. The holder renews by inserting the next term before the current one
ends (at ``renew_at`` of it), so it keeps the lease while alive; when it dies,
nobody renews, and at the next term's start the survivors race for it and one
wins: taken over within one term.

Replicas' clocks must agree to well under a term (NTP does); a holder whose
clock runs ahead only loses a term early.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from xinfang.core.store import Store

__all__ = ["Lease"]


class Lease:
    def __init__(
        self,
        store: Store,
        name: str,
        ttl: float = 10.0,
        renew_at: float = 0.6,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.name = name
        self.ttl = ttl
        self.renew_at = renew_at
        self.owner = owner or uuid.uuid4().hex
        self.clock = clock
        self._held: set[int] = set()  # terms this replica won
        self._lost = -1  # the latest term another replica holds

    def _id(self, term: int) -> str:
        return f"{self.name}:{term}"

    async def _claim(self, term: int) -> bool:
        if term in self._held:
            return True
        expires = datetime.fromtimestamp((term + 1) * self.ttl, UTC)
        doc = {"_id": self._id(term), "owner": self.owner, "expires": expires}
        if await self.store.insert("leases", doc):
            self._held.add(term)
            return True
        got = await self.store.get("leases", self._id(term))
        if got is not None and got.get("owner") == self.owner:
            self._held.add(term)  # our own insert, whose answer was lost
            return True
        return False

    async def held(self) -> bool:
        """Whether this replica holds the lease now; claims or renews it."""
        now = self.clock()
        term = int(now // self.ttl)
        # the previous holder renews ahead of time; a free term is claimed
        if term not in self._held and (term == self._lost or not await self._claim(term)):
            self._lost = term
            return False
        if now - term * self.ttl >= self.renew_at * self.ttl:
            await self._claim(term + 1)
            stale = [t for t in self._held if t < term - 1]
            if stale:
                await self.store.delete("leases", [self._id(t) for t in stale])
                self._held.difference_update(stale)
        return True
