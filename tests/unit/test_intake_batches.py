"""Registrations that arrive together are written together (``core.coalesce``):
the same cases, places and events as one at a time, in fewer store calls."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import decode_event
from xinfang.core.crypto import IdentityVault
from xinfang.core.districts import District, parse_district
from xinfang.core.outbox import Outbox
from xinfang.core.store import MemoryStore
from xinfang.intake.app import Intake
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.sample.generator import petitions, sample_district


class OneDistrict:
    def __init__(self, district: District) -> None:
        self.district = district

    async def find(self, district_id: str) -> District | None:
        return self.district if district_id == self.district.district_id else None


def requests() -> list[ipb.RegisterPetitionRequest]:
    raw = sample_district(seed=3, district_id="batches")
    day = datetime.now(UTC).date()
    out = []
    for i, req in enumerate(petitions(raw, 40, seed=5, start=day, end=day)):
        req.received_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        req.request_id = f"r{i}"
        out.append(req)
    # the same petitioner on the same matter three times at once, and one
    # request sent twice at once
    for j in (1, 2):
        again = ipb.RegisterPetitionRequest()
        again.CopyFrom(out[7])
        again.request_id = f"r7-again-{j}"
        out.append(again)
    twice = ipb.RegisterPetitionRequest()
    twice.CopyFrom(out[12])
    out.append(twice)
    return out


def world() -> tuple[Intake, MemoryStore, list[tuple[bytes, bytes]]]:
    store = MemoryStore()
    bus: list[tuple[bytes, bytes]] = []

    async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
        bus.extend(messages)

    raw = sample_district(seed=3, district_id="batches")
    directory: Any = OneDistrict(parse_district(raw))
    return (
        Intake(store, Outbox(store, publish, "intake"), directory, IdentityVault(b"k" * 32)),
        store,
        bus,
    )


def outcome(store: MemoryStore, bus: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    events = {e.case_id: e.registered for e in (decode_event(v) for _k, v in bus)}
    cases = store.dump()["cases"]
    return {
        cid: (c["kind"], events[cid].repeat_count, events[cid].previous_case_id)
        for cid, c in sorted(cases.items())
    }


async def test_together_equals_one_at_a_time_in_fewer_calls() -> None:
    reqs = requests()
    alone, alone_store, alone_bus = world()
    one_by_one = [await alone.register(r) for r in reqs]
    together, store, bus = world()
    at_once = await asyncio.gather(*(together.register(r) for r in reqs))
    assert [(r.case_id, r.kind) for r in at_once] == [(r.case_id, r.kind) for r in one_by_one]
    assert [r.created for r in at_once] == [r.created for r in one_by_one]
    assert sum(not r.created for r in at_once) == 1  # the request sent twice
    assert outcome(store, bus) == outcome(alone_store, alone_bus)
    # the matter sent three times at once takes three different places, the
    # copies after the original
    sent = {at_once[k].case_id for k in (7, 40, 41)}
    matter = [r.case_id for r in at_once if r.case_id in sent]
    got = outcome(store, bus)
    counts = [got[c][1] for c in matter]
    assert len(set(counts)) == 3 and min(counts) == counts[0]
    assert all(got[c][0] == ev.PETITION_KIND_REPEAT for c in matter[1:])
    assert all(got[c][2] for c in matter[1:])  # each names a case before it
    assert len(bus) == len(got) == len(reqs) - 1  # one event per case, none twice
    calls, alone_calls = sum(store.calls.values()), sum(alone_store.calls.values())
    # reads stay one per document (FerretDB reads a whole collection for an
    # $in), and a matter's petitions in one batch probe for their places one
    # by one; the rest of the inserts go together
    assert Counter(store.calls)["insert"] < Counter(alone_store.calls)["insert"] / 3
    assert calls < alone_calls * 0.7, (calls, alone_calls)


async def test_a_failed_batch_fails_each_of_its_requests_and_a_retry_registers_them() -> None:
    # with the second petition of one matter: its retry must find its own
    # place 2 again, as the first petition's retry its own place 1
    everything = requests()
    reqs = [*everything[:10], everything[40]]
    intake, store, bus = world()
    real = store.insert_many
    failing = True

    async def insert_many(coll: str, docs: Sequence[dict[str, Any]]) -> list[bool]:
        if failing and coll == "cases":
            raise ConnectionError("store unavailable")
        return await real(coll, docs)

    store.insert_many = insert_many  # type: ignore[method-assign]
    results = await asyncio.gather(*(intake.register(r) for r in reqs), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert "cases" not in store.dump() and bus == []
    failing = False
    retried = await asyncio.gather(*(intake.register(r) for r in reqs))
    assert all(r.created for r in retried) and len(bus) == len(reqs)
    clean, clean_store, clean_bus = world()
    for r in reqs:
        await clean.register(r)
    assert outcome(store, bus) == outcome(clean_store, clean_bus)
    assert store.dump()["petitioner_matters"] == clean_store.dump()["petitioner_matters"]
