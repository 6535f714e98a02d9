"""The sample generator is what the demo and the benchmarks stand on: if it
drifts between runs or emits something intake would refuse, every number
built on it is wrong."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.districts import District, parse_district
from xinfang.intake.domain import MAX_REPRESENTATIVES, valid_id_number, validate
from xinfang.intake.v1 import intake_pb2 as pb
from xinfang.sample.generator import petitions, sample_district, valid_id_number_for

START = date(2026, 1, 5)
END = date(2026, 6, 30)
N = 2000


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return sample_district()


@pytest.fixture(scope="module")
def district(doc: dict[str, Any]) -> District:
    return parse_district(doc)


@pytest.fixture(scope="module")
def batch(doc: dict[str, Any]) -> list[pb.RegisterPetitionRequest]:
    return list(petitions(doc, N, start=START, end=END))


def _bytes(reqs: list[pb.RegisterPetitionRequest]) -> list[bytes]:
    return [r.SerializeToString(deterministic=True) for r in reqs]


def test_same_seed_same_output_and_other_seed_differs() -> None:
    assert sample_district(7) == sample_district(7)
    assert sample_district(7) != sample_district(8)
    doc = sample_district()
    one = _bytes(list(petitions(doc, 200, seed=3, start=START, end=END)))
    two = _bytes(list(petitions(doc, 200, seed=3, start=START, end=END)))
    other = _bytes(list(petitions(doc, 200, seed=4, start=START, end=END)))
    assert one == two
    assert one != other


def test_sample_district_parses_and_routes_to_known_units(district: District) -> None:
    assert 10 <= len(district.townships) <= 14
    for tid in district.townships:
        villages = [v for v, (t, _) in district.villages.items() if t == tid]
        assert 4 <= len(villages) <= 10
    assert {
        "illegal_fundraising",
        "real_estate",
        "land_expropriation",
        "property_management",
        "substitute_teachers",
    } <= set(district.categories)
    assert district.routing
    for row in district.routing:
        assert row.unit_id in district.units
    catch_all = [r for r in district.routing if not r.category and not r.township_id]
    assert [(r.unit_id, r.decision) for r in catch_all] == [("u-xfj", "forward")]
    kinds = Counter(u.kind for u in district.units.values())
    assert kinds["township"] == len(district.townships)
    assert kinds["office"] == 1
    assert kinds["external"] == 2


def test_every_petition_passes_intake(
    batch: list[pb.RegisterPetitionRequest], district: District
) -> None:
    now = datetime.combine(END + timedelta(days=1), time(), tzinfo=UTC)
    assert len(batch) == N
    for req in batch:
        validate(req, district, now)
    assert len({r.request_id for r in batch}) == N


def test_channel_mix_and_oral_only_in_person_or_by_phone(
    batch: list[pb.RegisterPetitionRequest],
) -> None:
    channels = Counter(r.channel for r in batch)
    assert set(channels) == {
        ev.CHANNEL_ONLINE,
        ev.CHANNEL_VISIT,
        ev.CHANNEL_LETTER,
        ev.CHANNEL_PHONE,
        ev.CHANNEL_FAX,
    }
    assert channels[ev.CHANNEL_ONLINE] > channels[ev.CHANNEL_FAX]
    assert any(r.oral for r in batch)
    assert all(r.channel in (ev.CHANNEL_VISIT, ev.CHANNEL_PHONE) for r in batch if r.oral)


def test_group_petitions_have_few_representatives(
    batch: list[pb.RegisterPetitionRequest],
) -> None:
    groups = [r for r in batch if r.people_count >= 5]
    assert groups
    assert all(1 <= r.representatives <= min(MAX_REPRESENTATIVES, r.people_count) for r in groups)
    assert all(r.representatives == 0 for r in batch if r.people_count < 5)


def test_higher_level_assignments_carry_a_batch(batch: list[pb.RegisterPetitionRequest]) -> None:
    assigned = [r for r in batch if r.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT]
    assert assigned
    assert all(r.batch_id for r in assigned)
    assert all(r.source == ev.SOURCE_DIRECT for r in batch if r not in assigned)


def test_repeat_petitioners_keep_their_identity(batch: list[pb.RegisterPetitionRequest]) -> None:
    seen: dict[str, pb.Petitioner] = {}
    repeats = 0
    for req in batch:
        p = req.petitioner
        if p.id_number in seen:
            repeats += 1
            assert seen[p.id_number] == p
        seen[p.id_number] = p
    assert repeats >= N // 10


def test_id_numbers_are_valid(batch: list[pb.RegisterPetitionRequest]) -> None:
    assert all(valid_id_number(r.petitioner.id_number) for r in batch)
    rng = random.Random(1)
    for birth in (date(1940, 1, 1), date(1972, 2, 29), date(2004, 12, 31)):
        number = valid_id_number_for(rng, birth)
        assert len(number) == 18
        assert number[6:14] == f"{birth:%Y%m%d}"
        assert valid_id_number(number)


def test_received_in_range_and_in_order(batch: list[pb.RegisterPetitionRequest]) -> None:
    received = [r.received_at.ToDatetime(tzinfo=UTC) for r in batch]
    assert received == sorted(received)
    for moment in received:
        local = moment.astimezone(SHANGHAI)
        assert START <= local.date() <= END
        assert time(8, 30) <= local.time() < time(17, 30)
    weekdays = sum(1 for m in received if m.astimezone(SHANGHAI).weekday() < 5)
    assert weekdays > len(received) * 0.8


def test_content_never_names_the_petitioner(batch: list[pb.RegisterPetitionRequest]) -> None:
    for req in batch:
        p = req.petitioner
        assert req.content
        assert p.name not in req.content
        assert p.id_number not in req.content
        assert p.phone not in req.content
