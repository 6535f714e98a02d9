"""Reporting's consumer and an event of a case it never saw registered: a
case's events follow its registration on its partition, so such an event
comes from a foreign producer or a bug. It is refused (dead-lettered, with
its reason), not made into a document without a registration, which the
case search could not read (found by scripts/chaos.py's poison)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event, to_timestamp
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import NotFound
from xinfang.core.mongo import Position
from xinfang.core.store import MemoryStore
from xinfang.reporting.app import Reporting
from xinfang.sample.generator import sample_district

DISTRICT = parse_district(sample_district(7, district_id="d-unknown-case"))


class StaticDirectory:
    """The directory's reads, from one district in memory."""

    def __init__(self, district: District) -> None:
        self.district = district

    async def get(self, district_id: str, fresh: bool = False) -> District:
        if district_id != self.district.district_id:
            raise NotFound(f"district_id: unknown district {district_id!r}")
        return self.district


def _consumer(store: MemoryStore) -> Any:
    no_db: Any = defaultdict(lambda: None)
    directory: Any = StaticDirectory(DISTRICT)
    return Reporting(no_db, directory).consumer(store)


def _event(case_id: str, **payload: Any) -> ev.CaseEvent:
    return new_event(
        case_id=case_id, district_id=DISTRICT.district_id, producer="t", case_version=1, **payload
    )


async def test_an_event_of_a_case_never_registered_is_refused_and_stores_nothing() -> None:
    store = MemoryStore()
    (result,) = await _consumer(store)(
        [(_event("c-nobody", accepted=ev.CaseAccepted()), Position(0, 0))]
    )
    assert isinstance(result, NotFound)
    assert str(result).startswith("case_id")
    assert not any(store.dump().values())


async def test_a_registered_case_takes_its_later_events_and_a_suggestion_its_own() -> None:
    store = MemoryStore()
    at = datetime.now(UTC) - timedelta(days=1)
    township = next(iter(DISTRICT.townships))
    registered = _event(
        "c-1",
        registered=ev.CaseRegistered(
            channel=ev.CHANNEL_LETTER,
            township_id=township,
            category=next(iter(DISTRICT.categories)),
            people_count=1,
            received_at=to_timestamp(at),
        ),
    )
    results = await _consumer(store)(
        [
            (registered, Position(0, 0)),
            (_event("c-1", accepted=ev.CaseAccepted()), Position(0, 1)),
            (_event("sug-1", suggestion_made=ev.SuggestionMade(title="t")), Position(0, 2)),
        ]
    )
    assert results == ["applied", "applied", "applied"]
