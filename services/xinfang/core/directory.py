"""The district directory: every service reads district data from here.

Stored as the district's JSON document (validated by ``parse_district``) with
a version that grows on every change; readers cache a parsed copy briefly,
so a change reaches every service within ``ttl`` seconds.

The platform's working calendar lives here too: the years' arrangements an
operator loaded (``xinfang calendar load``), one document per year in
``calendar`` (versioned) and every load or withdrawal kept in
``calendar_log`` (``<year>:<version>``: what, who, when). Every district a
reader gets counts on them, under its own overrides.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from xinfang.core.calendar import Arrangement, Arrangements, parse_arrangement
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import Conflict, NotFound
from xinfang.core.mongo import Doc, doc_lock

__all__ = ["Directory"]


class Directory:
    def __init__(self, db: AsyncDatabase[Doc], ttl: float = 5.0) -> None:
        self.coll = db["districts"]
        self.calendar = db["calendar"]
        self.calendar_log = db["calendar_log"]
        self.ttl = ttl
        self._cache: dict[str, tuple[float, District]] = {}
        self._arrangements: tuple[float, Arrangements] | None = None

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
        return await self._on_platform_calendar(district, fresh=False)

    async def get(self, district_id: str, fresh: bool = False) -> District:
        """The district, on the platform's calendar. ``fresh`` reads past the
        cache (re-evaluation right after a change must see it)."""
        hit = self._cache.get(district_id)
        if hit and not fresh and time.monotonic() - hit[0] < self.ttl:
            return await self._on_platform_calendar(hit[1], fresh=False)
        res = await self.coll.find_one({"_id": district_id})
        if res is None:
            raise NotFound(f"district_id: unknown district {district_id!r}")
        district = parse_district({**res["doc"], "version": res["version"]})
        self._cache[district_id] = (time.monotonic(), district)
        return await self._on_platform_calendar(district, fresh=fresh)

    async def _on_platform_calendar(self, district: District, fresh: bool) -> District:
        loaded = await self.arrangements(fresh=fresh)
        cal = district.calendar.with_arrangements(loaded)
        return district if cal is district.calendar else replace(district, calendar=cal)

    # ---- the platform's calendar ----------------------------------------------------

    async def arrangements(self, fresh: bool = False) -> Arrangements:
        """Every year's arrangement in force (withdrawn ones excluded)."""
        hit = self._arrangements
        if hit and not fresh and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        years = []
        async for doc in self.calendar.find({}):  # one small document per year
            if doc.get("active"):
                years.append(_arrangement(doc))
        loaded = Arrangements(tuple(sorted(years, key=lambda a: a.year)))
        self._arrangements = (time.monotonic(), loaded)
        return loaded

    async def load_arrangement(self, doc: Any, by: str) -> Arrangement:
        """Validate and store a year's arrangement for the whole platform; the
        log record ``<year>:<version>`` is the compare-and-set, so of two
        operators loading at once one is refused (``Conflict``)."""
        parsed = parse_arrangement(doc)
        return await self._record(parsed.year, "load", doc, by)

    async def withdraw_arrangement(self, year: int, by: str) -> Arrangement:
        """Take a loaded year out of force (its record stays): the libraries, or
        the estimate, decide that year again."""
        cur = await self.calendar.find_one({"_id": str(year)})
        if cur is None or not cur.get("active"):
            raise NotFound(f"year: no arrangement for {year} is loaded")
        return await self._record(year, "withdraw", cur["doc"], by)

    async def arrangement_log(self, year: int) -> list[dict[str, Any]]:
        out = [d async for d in self.calendar_log.find({"year": year})]
        return sorted(out, key=lambda d: int(d["version"]))

    async def _record(self, year: int, action: str, doc: Any, by: str) -> Arrangement:
        key = str(year)
        async with doc_lock(self.calendar, key):
            cur = await self.calendar.find_one({"_id": key}) or {}
            version = int(cur.get("version", 0)) + 1
            at = datetime.now(UTC).isoformat(timespec="seconds")
            record = {"year": year, "version": version, "action": action, "doc": doc,
                      "by": by, "at": at}  # fmt: skip
            try:
                await self.calendar_log.insert_one({"_id": f"{key}:{version}", **record})
            except DuplicateKeyError:
                raise Conflict(
                    f"year: the {year} arrangement changed concurrently (now past version "
                    f"{version - 1}); look at it again"
                ) from None
            body = {"doc": doc, "version": version, "active": action == "load",
                    "loaded_by": by, "loaded_at": at}  # fmt: skip
            await self.calendar.replace_one({"_id": key}, body, upsert=True)
        self._arrangements = None
        return _arrangement({"_id": key, **body})

    async def district_ids(self) -> list[str]:
        return sorted([str(d["_id"]) async for d in self.coll.find({}, {"_id": 1})])

    async def find(self, district_id: str) -> District | None:
        try:
            return await self.get(district_id)
        except NotFound:
            return None


def _arrangement(stored: dict[str, Any]) -> Arrangement:
    a = parse_arrangement(stored["doc"])
    return replace(
        a,
        version=int(stored["version"]),
        loaded_by=str(stored.get("loaded_by", "")),
        loaded_at=str(stored.get("loaded_at", "")),
    )
