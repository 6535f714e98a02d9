"""A new case's documents are not looked for (``Batch.load_cases``): its
registration's roster says whether they can exist. A copy of a registration
(republished by an outbox after a crash, replayed from the dead letters) is
still found to be one, by the roster its first delivery entered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.batch import ROSTERS, Batch, OwnedDocs, cases_of, roster_id
from xinfang.core.codec import new_event, to_timestamp
from xinfang.core.mongo import Doc, Position
from xinfang.core.store import MemoryStore
from xinfang.reporting.app import Reporting, _cases

from .test_reporting_unknown_case import DISTRICT, StaticDirectory


class Spied(MemoryStore):
    """The fake store, noting each document read and each collection written."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[tuple[str, str]] = []
        self.written: list[str] = []

    async def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, Doc]:
        ids = list(ids)
        self.read += [(coll, i) for i in ids]
        return await super().get_many(coll, ids)

    async def write(self, coll: str, updates: Sequence[Any]) -> None:
        self.written.append(coll)
        await super().write(coll, updates)

    async def insert_many(self, coll: str, docs: Sequence[Doc]) -> list[bool]:
        self.written.append(f"{coll} (new)")
        return await super().insert_many(coll, docs)


async def test_a_case_its_roster_does_not_list_is_not_read_and_its_roster_goes_first() -> None:
    s = Spied()
    await s.insert("cases", {"_id": "old", "n": 1})
    b = Batch(s, order=["cases"])
    await b.load_cases("cases", {"new": ("d:0:20261203080000", "d"), "old": None})
    assert sorted(s.read) == [(ROSTERS, "d:0:20261203080000"), ("cases", "old")]
    assert b.peek("cases", "new") is None
    b.update("cases", "new", {"$set": {"n": 1}})
    b.update("cases", "old", {"$inc": {"n": 1}})
    await b.flush()
    assert s.written == [f"{ROSTERS} (new)", "cases", "cases (new)"]
    assert await s.get(ROSTERS, "d:0:20261203080000") == {
        "_id": "d:0:20261203080000",
        "district_id": "d",
        "cases": {"new": True},
    }


async def test_a_case_its_roster_lists_is_read() -> None:
    s = Spied()
    await s.insert(ROSTERS, {"_id": "r", "district_id": "d", "cases": {"c": True}})
    await s.insert("cases", {"_id": "c", "n": 1})
    b = Batch(s)
    await b.load_cases("cases", {"c": ("r", "d")})
    assert b.peek("cases", "c") == {"_id": "c", "n": 1}
    await b.flush()
    assert s.written == []  # listed already: the roster is not written again


def _registration(case_id: str) -> ev.CaseEvent:
    return new_event(
        case_id=case_id,
        district_id=DISTRICT.district_id,
        producer="t",
        case_version=1,
        registered=ev.CaseRegistered(
            channel=ev.CHANNEL_LETTER,
            township_id=next(iter(DISTRICT.townships)),
            category=next(iter(DISTRICT.categories)),
            people_count=1,
            received_at=to_timestamp(datetime.now(UTC) - timedelta(days=1)),
        ),
    )


def _reporting(store: MemoryStore, owned: OwnedDocs | None = None) -> Any:
    no_db: Any = defaultdict(lambda: None)
    directory: Any = StaticDirectory(DISTRICT)
    return Reporting(no_db, directory).consumer(store, owned)


async def test_a_registration_republished_after_a_restart_is_a_duplicate() -> None:
    s = Spied()
    first, other = _registration("c-1"), _registration("c-2")
    other.recorded_at.CopyFrom(first.recorded_at)
    assert await _reporting(s, OwnedDocs())([(first, Position(0, 3))]) == ["applied"]
    # the consumer read no case document for it, only the (new) roster
    assert [c for c, _ in s.read] == [ROSTERS]
    stored = s.dump()
    # a new process (nothing in memory) gets the same registration again, at
    # a later offset, beside a new case recorded in the same second
    s.read.clear()
    results = await _reporting(s, OwnedDocs())([(first, Position(0, 9)), (other, Position(0, 10))])
    assert results == ["duplicate", "applied"]
    coll = _cases(DISTRICT.district_id)
    assert (coll, "c-1") in s.read
    assert (coll, "c-2") not in s.read
    after = s.dump()
    assert after[coll]["c-1"] == stored[coll]["c-1"]
    rid = roster_id(DISTRICT.district_id, 0, first.recorded_at.ToDatetime())
    assert after[ROSTERS][rid]["cases"] == {"c-1": True, "c-2": True}


def test_a_batch_names_the_roster_of_each_registration_only() -> None:
    reg = _registration("c-1")
    later = new_event(
        case_id="c-1",
        district_id=DISTRICT.district_id,
        producer="t",
        case_version=2,
        accepted=ev.CaseAccepted(),
    )
    rid = roster_id(DISTRICT.district_id, 2, reg.recorded_at.ToDatetime())
    assert cases_of([(later, Position(2, 1))]) == {"c-1": None}
    assert cases_of([(reg, Position(2, 0)), (later, Position(2, 1))]) == {
        "c-1": (rid, DISTRICT.district_id)
    }
    assert rid.endswith(reg.recorded_at.ToDatetime().strftime(":%Y%m%d%H%M%S"))
