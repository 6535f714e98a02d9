"""One case end to end through the real stack: gRPC -> intake -> Kafka ->
assignment / supervision / reporting -> FerretDB -> Prometheus."""

from __future__ import annotations

import asyncio
import functools
import operator
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import decode_event, encode_event, new_event
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

from .conftest import eventually, metric_value, prometheus, read_topic

pytestmark = pytest.mark.integration

YEAR = datetime.now(UTC).year


def petition(district: dict[str, Any], seed: int = 1) -> ipb.RegisterPetitionRequest:
    """A valid petition received this year, within the last hour.

    Recent on purpose: a petition received weeks ago is already past its
    15-day register-and-route limit, so supervision would (rightly) add a
    breach and a supervision order to the case's events while a test runs.
    """
    now = datetime.now(UTC)
    day = now.date()
    req = next(petitions(district, 1, seed=seed, start=day, end=day))
    received = max(now - timedelta(hours=1), datetime(YEAR, 1, 1, tzinfo=UTC))
    req.received_at.FromDatetime(received)
    req.request_id = uuid.uuid4().hex
    return req


async def summary(ch: grpc.aio.Channel, district_id: str) -> rpb.DistrictSummary:
    s: rpb.DistrictSummary = await rgrpc.ReportingServiceStub(ch).GetDistrictSummary(
        rpb.GetDistrictSummaryRequest(district_id=district_id, period=str(YEAR))
    )
    return s


async def test_petition_reaches_every_service(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
) -> None:
    did = district["district_id"]
    req = petition(district)
    resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)
    assert resp.created
    assert resp.kind == ev.PETITION_KIND_FIRST

    s = await eventually(
        lambda: summary(reporting_channel, did), lambda s: s.received == 1 and s.routed == 1
    )
    assert s.people == req.people_count
    assert dict(s.by_category) == {req.category: 1}
    assert dict(s.by_township) == {req.township_id: 1}

    # routed by the district's table (data, not code)
    a = await agrpc.AssignmentServiceStub(assignment_channel).GetAssignment(
        apb.GetAssignmentRequest(district_id=did, case_id=resp.case_id)
    )
    rows = [r for r in district["routing"] if r.get("category") == req.category]
    expected_units = {r["unit_id"] for r in rows} or {"u-xfj"}
    assert a.unit_id in expected_units
    assert dict(s.by_unit) == {a.unit_id: 1}

    # the 15-day register-and-route clock was started and stopped; the written
    # notice clock (Art. 23) and the unit's objection window are running
    clocks = await eventually(
        lambda: sgrpc.SupervisionServiceStub(supervision_channel).GetCaseClocks(
            spb.GetCaseClocksRequest(district_id=did, case_id=resp.case_id)
        ),
        lambda c: any(k.kind == ev.CLOCK_KIND_REGISTER_AND_ROUTE and not k.open for k in c.clocks),
    )
    by_kind = {k.kind: k for k in clocks.clocks}
    clock = by_kind[ev.CLOCK_KIND_REGISTER_AND_ROUTE]
    assert clock.due_at.ToDatetime() > req.received_at.ToDatetime() + timedelta(days=15)
    assert ev.CLOCK_KIND_WRITTEN_NOTICE in by_kind
    assert by_kind[ev.CLOCK_KIND_REMIT_OBJECTION].open

    # ...and Prometheus has it, labelled by district
    await eventually(
        lambda: prometheus(settings, f'max(xinfang_clocks_completed{{district="{did}"}})'),
        lambda r: bool(r) and float(r[0]["value"][1]) == 1.0,
    )

    # a district never sees another's data
    other = sample_district(seed=7, district_id=f"it-other-{uuid.uuid4().hex[:8]}")
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(other)
    assert (await summary(reporting_channel, other["district_id"])).received == 0
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await agrpc.AssignmentServiceStub(assignment_channel).GetAssignment(
            apb.GetAssignmentRequest(district_id=other["district_id"], case_id=resp.case_id)
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    clocks_elsewhere = await sgrpc.SupervisionServiceStub(supervision_channel).GetCaseClocks(
        spb.GetCaseClocksRequest(district_id=other["district_id"], case_id=resp.case_id)
    )
    assert len(clocks_elsewhere.clocks) == 0


async def test_retried_request_registers_once(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    stub = igrpc.IntakeServiceStub(intake_channel)
    req = petition(district)
    first = await stub.RegisterPetition(req)
    again = await stub.RegisterPetition(req)
    assert first.created and not again.created
    assert first.case_id == again.case_id
    await eventually(
        lambda: summary(reporting_channel, district["district_id"]), lambda s: s.routed == 1
    )


async def test_repeat_petition_is_marked_and_linked(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    stub = igrpc.IntakeServiceStub(intake_channel)
    req = petition(district, seed=3)
    first = await stub.RegisterPetition(req)
    req.request_id = uuid.uuid4().hex  # same person, same matter, new visit
    second = await stub.RegisterPetition(req)
    assert first.kind == ev.PETITION_KIND_FIRST
    assert second.kind == ev.PETITION_KIND_REPEAT
    s = await eventually(
        lambda: summary(reporting_channel, district["district_id"]), lambda s: s.received == 2
    )
    assert (s.first_petitions, s.repeat_petitions) == (1, 1)


async def test_simultaneous_visits_of_one_person_make_one_first_petition(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    stub = igrpc.IntakeServiceStub(intake_channel)
    reqs = []
    for _ in range(6):  # the same person and matter at six windows at once
        req = petition(district, seed=5)
        req.request_id = uuid.uuid4().hex
        reqs.append(req)
    resps = await asyncio.gather(*(stub.RegisterPetition(r) for r in reqs))
    kinds = sorted(r.kind for r in resps)
    assert kinds.count(ev.PETITION_KIND_FIRST) == 1, kinds
    assert kinds.count(ev.PETITION_KIND_REPEAT) == 5, kinds
    s = await eventually(
        lambda: summary(reporting_channel, district["district_id"]), lambda s: s.received == 6
    )
    assert (s.first_petitions, s.repeat_petitions) == (1, 5)
    # ...and the events form one chain: each repeat links the case before it
    keys = {r.case_id.encode() for r in resps}
    records = await read_topic(
        settings,
        settings.case_events_topic,
        lambda r: r.key in keys and decode_event(r.value).WhichOneof("payload") == "registered",
        want=6,
    )
    regs = {e.case_id: e.registered for e in (decode_event(r.value) for r in records)}
    assert sorted(r.repeat_count for r in regs.values()) == [0, 1, 2, 3, 4, 5]
    by_count = {r.repeat_count: (cid, r.previous_case_id) for cid, r in regs.items()}
    assert by_count[0][1] == ""
    for n in range(1, 6):
        assert by_count[n][1] == by_count[n - 1][0]


async def test_redelivered_event_changes_nothing(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
    producer: AIOKafkaProducer,
) -> None:
    did = district["district_id"]
    resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(petition(district))
    before = await eventually(lambda: summary(reporting_channel, did), lambda s: s.routed == 1)
    records = await read_topic(
        settings,
        settings.case_events_topic,
        lambda r: r.key == resp.case_id.encode(),
        want=2,
    )
    assert {decode_event(r.value).WhichOneof("payload") for r in records} == {
        "registered",
        "routed",
    }
    dup = {s: await metric_value(settings, s, 'outcome="duplicate"') for s in _CONSUMERS}
    for r in records:  # the same bytes again: a redelivery or a second publish
        await producer.send_and_wait(settings.case_events_topic, value=r.value, key=r.key)
    for s in _CONSUMERS:
        # assignment itself published one of the two (routed): only the other is new to it
        want = dup[s] + (2 if s != "assignment" else 1)
        await eventually(
            functools.partial(metric_value, settings, s, 'outcome="duplicate"'),
            functools.partial(operator.le, want),
        )
    after = await summary(reporting_channel, did)
    assert after == before


_CONSUMERS = ("assignment", "supervision", "reporting")


async def test_unusable_messages_are_dead_lettered_and_consumers_go_on(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
    producer: AIOKafkaProducer,
) -> None:
    marker = uuid.uuid4().hex.encode()
    garbage = b"\xff\xfe not a protobuf " + marker
    unknown_district = encode_event(
        new_event(
            case_id="case-" + marker.decode(),
            district_id="no-such-district",
            producer="test",
            case_version=1,
            registered=ev.CaseRegistered(category="other", township_id="t01", people_count=1),
        )
    )
    await producer.send_and_wait(settings.case_events_topic, value=garbage, key=marker)
    await producer.send_and_wait(settings.case_events_topic, value=unknown_district, key=marker)

    letters = await read_topic(
        settings,
        settings.dead_letter_topic,
        lambda r: r.key == marker,
        want=2 * len(_CONSUMERS),
    )
    by = {(dict(r.headers)["x-service"].decode(), r.value) for r in letters}
    for service in _CONSUMERS:
        assert (service, garbage) in by
        assert (service, unknown_district) in by
    for r in letters:
        h = dict(r.headers)
        assert h["x-error"]  # says why
        assert h["x-source-topic"].decode() == settings.case_events_topic
        assert int(h["x-source-offset"]) >= 0

    # the consumers are alive and keep counting
    await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(petition(district))
    await eventually(
        lambda: summary(reporting_channel, district["district_id"]), lambda s: s.routed == 1
    )


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.ClearField("category"), "category"),
        (lambda r: setattr(r, "category", "astrology"), "category"),
        (lambda r: setattr(r, "district_id", "atlantis"), "district_id"),
        (lambda r: r.ClearField("district_id"), "district_id"),
        (lambda r: setattr(r, "content", "长" * 20_001), "content"),
        (lambda r: r.ClearField("received_at"), "received_at"),
        (
            lambda r: setattr(r.petitioner, "id_number", "110105194912310021"),
            "petitioner.id_number",
        ),
        (lambda r: setattr(r.petitioner, "phone", "12345"), "petitioner.phone"),
        (lambda r: setattr(r, "channel", ev.CHANNEL_UNSPECIFIED), "channel"),
        (lambda r: setattr(r, "representatives", 6), "representatives"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    mutate: Any,
    field: str,
) -> None:
    req = petition(district)
    mutate(req)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (e.value.details() or "").startswith(field + ":")
    cases = mongo[f"{settings.mongo_db_prefix}_intake"]["cases"]
    assert await cases.count_documents({"request_id": req.request_id}) == 0


async def test_identity_never_reaches_kafka(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    req = petition(district, seed=5)
    resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)
    await eventually(
        lambda: summary(reporting_channel, district["district_id"]), lambda s: s.routed == 1
    )
    records = await read_topic(
        settings, settings.case_events_topic, lambda r: r.key == resp.case_id.encode(), want=2
    )
    secrets = [
        req.petitioner.name.encode(),
        req.petitioner.id_number.encode(),
        req.petitioner.phone.encode(),
        req.petitioner.address.encode(),
    ]
    for r in records:
        for s in secrets:
            assert s not in r.value
        ev_ = decode_event(r.value)
        if ev_.WhichOneof("payload") == "registered":
            assert ev_.registered.petitioner_ref.startswith("p_")


async def test_prometheus_scrapes_all_four_services(settings: Settings) -> None:
    all_up = dict.fromkeys(("intake", "assignment", "supervision", "reporting"), 1.0)
    await eventually(
        lambda: prometheus(settings, 'up{job="xinfang"}'),
        lambda rows: {r["metric"]["service"]: float(r["value"][1]) for r in rows} == all_up,
        wait_s=30,
    )
