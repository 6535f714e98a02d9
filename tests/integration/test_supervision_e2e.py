"""Supervision on the real stack: breaches, supervision orders, escalation
of a tier whose time box ran out, and published rankings."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import decode_event, encode_event, new_event
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

from .conftest import clocks_of, eventually, prometheus, read_topic
from .test_lifecycle_e2e import register, unit_actor

pytestmark = pytest.mark.integration


async def test_missed_written_notice_is_breached_and_supervised(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
) -> None:
    # received 40 days ago and never answered in writing: the 15-day notice
    # duty (Art. 23) is long past when the case reaches supervision
    received = datetime.now(UTC) - timedelta(days=40)
    case = await register(
        district, intake_channel, assignment_channel, seed=21, received_at=received
    )
    did = district["district_id"]
    clocks = await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: ev.CLOCK_KIND_WRITTEN_NOTICE in c and c[ev.CLOCK_KIND_WRITTEN_NOTICE].breached,
    )
    assert clocks[ev.CLOCK_KIND_WRITTEN_NOTICE].open  # breached, still owed
    records = await read_topic(
        settings,
        settings.case_events_topic,
        lambda r: (
            r.key == case.case_id.encode()
            and decode_event(r.value).WhichOneof("payload")
            in ("deadline_breached", "supervision_order_issued")
        ),
        want=2,
    )
    kinds = {decode_event(r.value).WhichOneof("payload"): decode_event(r.value) for r in records}
    order = kinds["supervision_order_issued"].supervision_order_issued
    assert order.clock == ev.CLOCK_KIND_WRITTEN_NOTICE
    assert order.unit_id == (await case.view()).unit_id
    assert order.days_overdue >= 20
    await eventually(
        lambda: prometheus(
            settings,
            f'max(xinfang_deadline_breaches_total{{district="{did}",clock="written_notice"}})',
        ),
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
    )
    # ...and against the unit it was issued to (per-unit series, bounded by the directory)
    for series in ("xinfang_unit_supervision_orders_total", "xinfang_unit_deadline_breaches_total"):
        query = f'max({series}{{district="{did}",unit="{order.unit_id}"}})'
        await eventually(
            functools.partial(prometheus, settings, query),
            lambda r: bool(r) and float(r[0]["value"][1]) == 1,
        )


async def test_tier_time_box_running_out_escalates_the_case(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
) -> None:
    # property disputes go to the township first (属地管理): the ladder applies
    case = await register(
        district, intake_channel, assignment_channel, seed=22, category="property_management"
    )
    unit = unit_actor((await case.view()).unit_id)
    accepted = await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
    assert accepted.tier == ev.TIER_VILLAGE_MEDIATION
    did = district["district_id"]
    await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: ev.CLOCK_KIND_TIER in c and c[ev.CLOCK_KIND_TIER].open,
    )
    # the unit's open duty clocks (the tier box, and handling) show under its own label
    await eventually(
        lambda: prometheus(
            settings,
            f'sum(max by (sla_state) (xinfang_unit_clocks_open{{district="{did}",'
            f'unit="{unit.unit_id}"}}))',
        ),
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
    )
    # Let the village's 7-day time box run out without waiting a week: move
    # the stored due time into the past and index it under today, exactly
    # what the clock would look like a week from now.
    db = mongo[f"{settings.mongo_db_prefix}_supervision"]
    now = datetime.now(UTC)
    today = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    clock_id = f"{case.case_id}:tier"
    await db["clocks"].update_one(
        {"_id": clock_id},
        {"$set": {"due_at": now - timedelta(hours=1), "due_day": today,
                  "warn_at": now - timedelta(days=2)}},
    )  # fmt: skip
    await db["due_buckets"].update_one(
        {"_id": f"due:{today}@0"}, {"$addToSet": {"ids": clock_id}}, upsert=True
    )
    # as for any clock indexed under a day the scanner has passed: look again
    await db["rechecks"].insert_one({"_id": f"due:{clock_id}"})
    view = await eventually(case.view, lambda v: v.tier == ev.TIER_TOWNSHIP)
    assert view.status == "accepted"
    timeline = await case.timeline()
    assert timeline[-1] == "tier_escalated"
    # the township's own 15-day box now runs from the escalation (the
    # consumer restarts the clock when it applies the escalation, moments
    # after assignment recorded it)
    clocks = await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: c[ev.CLOCK_KIND_TIER].started_at.ToDatetime(tzinfo=UTC) > now,
    )
    tier = clocks[ev.CLOCK_KIND_TIER]
    assert tier.open and not tier.breached
    assert tier.due_at.ToDatetime(tzinfo=UTC) > now + timedelta(days=14)


async def test_monthly_bulletin_ranks_units_and_is_published(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
) -> None:
    did = district["district_id"]
    units = set()
    for seed in (31, 32, 33):
        case = await register(district, intake_channel, assignment_channel, seed=seed)
        unit = unit_actor((await case.view()).unit_id)
        units.add(unit.unit_id)
        await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
        await case.stub.Reply(apb.ReplyRequest(ctx=case.ctx(unit), resolved=True))
    month = datetime.now(SHANGHAI).strftime("%Y-%m")
    stub = sgrpc.SupervisionServiceStub(supervision_channel)

    async def ranking() -> spb.Ranking:
        await stub.PublishRanking(spb.PublishRankingRequest(district_id=did, period=month))
        r: spb.Ranking = await stub.GetRanking(
            spb.GetRankingRequest(district_id=did, period=month, kind="unit")
        )
        return r

    r = await eventually(
        ranking, lambda r: sum(row.volume for row in r.rows if row.subject in units) >= 3
    )
    assert r.kind == "unit" and r.period == month
    assert {row.subject for row in r.rows} >= units
    assert all(0 <= row.score <= 100 for row in r.rows)
    published = await read_topic(
        settings, settings.rankings_topic, lambda m: m.key == did.encode(), want=1
    )
    assert spb.Ranking.FromString(published[0].value).district_id == did
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetRanking(spb.GetRankingRequest(district_id=did, period="2026-13", kind="unit"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_changed_limit_moves_open_clocks(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
) -> None:
    case = await register(district, intake_channel, assignment_channel, seed=23)
    unit = unit_actor((await case.view()).unit_id)
    await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
    did = district["district_id"]
    before = await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: ev.CLOCK_KIND_HANDLING in c,
    )
    due_before = before[ev.CLOCK_KIND_HANDLING].due_at.ToDatetime(tzinfo=UTC)
    # the district shortens handling from 60 to 45 days
    changed = {**district, "limits": {"handling": {"days": 45, "warn_days": 5}}}
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(changed)
    stub = sgrpc.SupervisionServiceStub(supervision_channel)

    async def reevaluate() -> spb.ReevaluateClocksResponse:
        r: spb.ReevaluateClocksResponse = await stub.ReevaluateClocks(
            spb.ReevaluateClocksRequest(district_id=did)
        )
        return r

    # re-evaluation reads the district as just stored (not its cache), and
    # records each move as an event that supervision's consumer applies
    res = await reevaluate()
    assert res.moved >= 1 and res.open_clocks >= res.moved
    after = await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: c[ev.CLOCK_KIND_HANDLING].due_at.ToDatetime(tzinfo=UTC) != due_before,
    )
    due_after = after[ev.CLOCK_KIND_HANDLING].due_at.ToDatetime(tzinfo=UTC)
    assert due_before - timedelta(days=20) <= due_after <= due_before - timedelta(days=10)
    # once the consumer has applied every move, a second run finds none to make
    await eventually(reevaluate, lambda r: r.moved == 0, wait_s=20)


async def test_a_window_that_ran_out_closes_once_through_its_event(
    settings: Settings,
    district: dict[str, Any],
    producer: AIOKafkaProducer,
    supervision_channel: grpc.aio.Channel,
) -> None:
    # a reply recorded 60 days ago: its 30-day window to ask for a review ran
    # out long since. The scanner publishes DeadlineWindowClosed once, and the
    # consumer closes the window at that event (nobody failed: no breach)
    did = district["district_id"]
    case_id = f"window-{datetime.now(UTC).timestamp()}"
    replied = new_event(
        case_id=case_id,
        district_id=did,
        producer="test",
        case_version=5,
        occurred_at=datetime.now(UTC) - timedelta(days=60),
        reply_issued=ev.ReplyIssued(resolved=True),
    )
    await producer.send_and_wait(
        settings.case_events_topic, value=encode_event(replied), key=case_id.encode()
    )
    clocks = await eventually(
        lambda: clocks_of(supervision_channel, did, case_id),
        lambda c: ev.CLOCK_KIND_REVIEW_REQUEST in c and not c[ev.CLOCK_KIND_REVIEW_REQUEST].open,
    )
    window = clocks[ev.CLOCK_KIND_REVIEW_REQUEST]
    assert not window.breached
    closed = await read_topic(
        settings,
        settings.case_events_topic,
        lambda r: (
            r.key == case_id.encode()
            and decode_event(r.value).WhichOneof("payload") == "deadline_window_closed"
        ),
        want=2,
        wait_s=5,
    )
    assert len({decode_event(r.value).event_id for r in closed}) == 1
