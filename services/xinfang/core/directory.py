"""The district directory: every service reads district data from here.

Stored as the district's JSON document (validated by ``parse_district``) with
a version that grows on every change; readers cache a parsed copy briefly,
so a change reaches every service within ``ttl`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from xinfang.core.districts import District, parse_district
from xinfang.core.errors import NotFound
from xinfang.core.mongo import Doc

__all__ = ["Directory"]


class Directory:
    def __init__(self, db: AsyncDatabase[Doc], ttl: float = 5.0) -> None:
        self.coll = db["districts"]
        self.ttl = ttl
        self._cache: dict[str, tuple[float, District]] = {}

    async def put(self, doc: dict[str, Any]) -> District:
        """Validate and store a district; returns it with its new version."""
        parse_district(doc)  # refuse bad data before it is stored
        did = doc["district_id"]
        body = {k: v for k, v in doc.items() if k != "version"}
        res = await self.coll.find_one_and_update(
            {"_id": did},
            {"$set": {"doc": body}, "$inc": {"version": 1}},
            upsert=True,
            return_document=True,
        )
        assert res is not None  # upsert always returns the document
        district = parse_district({**res["doc"], "version": res["version"]})
        self._cache[did] = (time.monotonic(), district)
        return district

    async def get(self, district_id: str) -> District:
        hit = self._cache.get(district_id)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        res = await self.coll.find_one({"_id": district_id})
        if res is None:
            raise NotFound(f"district_id: unknown district {district_id!r}")
        district = parse_district({**res["doc"], "version": res["version"]})
        self._cache[district_id] = (time.monotonic(), district)
        return district

    async def find(self, district_id: str) -> District | None:
        try:
            return await self.get(district_id)
        except NotFound:
            return None
