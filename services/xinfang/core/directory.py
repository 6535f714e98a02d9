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
from xinfang.core.errors import Conflict, NotFound
from xinfang.core.mongo import Doc, doc_lock

__all__ = ["Directory"]


class Directory:
    def __init__(self, db: AsyncDatabase[Doc], ttl: float = 5.0) -> None:
        self.coll = db["districts"]
        self.ttl = ttl
        self._cache: dict[str, tuple[float, District]] = {}

    async def put(self, doc: dict[str, Any], expected_version: int | None = None) -> District:
        """Validate and store a district; returns it with its new version.

        With ``expected_version`` the write is a compare-and-set: it lands
        only on that version (the filter names it; the collection holds one
        small document per district, so the non-``_id`` filter costs little
        on FerretDB), else ``Conflict``."""
        parse_district(doc)  # refuse bad data before it is stored
        did = doc["district_id"]
        body = {k: v for k, v in doc.items() if k != "version"}
        flt: dict[str, Any] = {"_id": did}
        if expected_version is not None:
            flt["version"] = expected_version
        async with doc_lock(self.coll, did):  # FerretDB's update is read-then-write
            res = await self.coll.find_one_and_update(
                flt,
                {"$set": {"doc": body}, "$inc": {"version": 1}},
                upsert=expected_version is None,
                return_document=True,
            )
        if res is None:
            raise Conflict(
                f"expected_version: district {did!r} changed concurrently "
                f"(it is past version {expected_version}); read it again"
            )
        district = parse_district({**res["doc"], "version": res["version"]})
        self._cache[did] = (time.monotonic(), district)
        return district

    async def get(self, district_id: str, fresh: bool = False) -> District:
        """The district, from a cache up to ``ttl`` old unless ``fresh``: what
        acts on a change just made (re-evaluation after a load from another
        process) must not see the version before it."""
        hit = self._cache.get(district_id)
        if hit and not fresh and time.monotonic() - hit[0] < self.ttl:
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
