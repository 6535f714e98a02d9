"""Dead letters as a workflow, against the running stack: an event no consumer
can apply is dead-lettered and listed, the case's later event is parked (not
applied out of order), the cause is fixed, the operator replays, both events
are applied in order, and a second replay changes nothing.

The poison is realistic: events of a district that was not yet loaded into
the directory (every consumer refuses them with NotFound). Loading the
district is the fix.
"""

from __future__ import annotations

import asyncio
import functools
import json
import operator
import os
import sys
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
from xinfang.core.codec import encode_event, new_event, to_timestamp
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import sample_district

from .conftest import eventually, metric_value

pytestmark = pytest.mark.integration

CONSUMERS = ("assignment", "supervision", "reporting")


async def cli(*args: str) -> tuple[int, str, str]:
    """The operators' CLI as a process, with the test run's settings (env)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xinfang.cli",
        "dead-letters",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def listed(district_id: str, *extra: str) -> list[dict[str, Any]]:
    rc, out, err = await cli("list", "--district", district_id, "--json", "--limit", "0", *extra)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


async def timeline(ch: grpc.aio.Channel, district_id: str, case_id: str) -> list[str]:
    try:
        t = await rgrpc.ReportingServiceStub(ch).GetCaseTimeline(
            rpb.GetCaseTimelineRequest(district_id=district_id, case_id=case_id)
        )
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return []
        raise
    return [x.event_id for x in t.entries]


async def counters(settings: Settings, outcome: str) -> dict[str, float]:
    return {s: await metric_value(settings, s, f'outcome="{outcome}"') for s in CONSUMERS}


async def test_dead_letter_is_listed_later_event_parked_replay_applies_both_in_order(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    producer: AIOKafkaProducer,
    reporting_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    # a district whose data has not been loaded yet: its events cannot be applied
    district = sample_district(seed=7, district_id=f"it-dl-{uuid.uuid4().hex[:10]}")
    did = district["district_id"]
    case_id = str(uuid.uuid4())
    row = district["routing"][0]
    now = datetime.now(UTC)
    first = new_event(
        case_id=case_id,
        district_id=did,
        producer="intake",
        case_version=1,
        registered=ev.CaseRegistered(
            channel=ev.CHANNEL_LETTER,
            township_id=district["townships"][0]["id"],
            category=row["category"],
            content="测试：因区划数据未载入而无法处理的信访事项",
            people_count=1,
            received_at=to_timestamp(now - timedelta(hours=1)),
            petitioner_ref="p_" + uuid.uuid4().hex,
        ),
    )
    later = new_event(
        case_id=case_id,
        district_id=did,
        producer="assignment",
        case_version=3,
        accepted=ev.CaseAccepted(unit_id=row["unit_id"], tier=ev.TIER_VILLAGE_MEDIATION),
    )
    parked_before = await counters(settings, "parked")

    await producer.send_and_wait(
        settings.case_events_topic, value=encode_event(first), key=case_id.encode()
    )
    letters = await eventually(lambda: listed(did), lambda ls: len(ls) == len(CONSUMERS), wait_s=60)
    assert {x["service"] for x in letters} == set(CONSUMERS)
    for x in letters:
        assert (x["state"], x["case_id"], x["event_id"]) == ("open", case_id, first.event_id)
        assert (x["payload"], x["error_type"]) == ("registered", "NotFound")
        assert "测试" not in json.dumps(x, ensure_ascii=False)  # content is never listed
    # another district's operator does not see them
    assert await listed(f"it-dl-other-{uuid.uuid4().hex[:6]}") == []

    # a later event of the case waits in every consumer: parked, not applied
    await producer.send_and_wait(
        settings.case_events_topic, value=encode_event(later), key=case_id.encode()
    )
    for s in CONSUMERS:
        await eventually(
            functools.partial(metric_value, settings, s, 'outcome="parked"'),
            functools.partial(operator.le, parked_before[s] + 1),
        )
    letters = await eventually(
        lambda: listed(did), lambda ls: all(x["parked"] == 1 for x in ls), wait_s=30
    )
    for s in CONSUMERS:
        head = await mongo[settings.db_name(s)]["parked"].find_one({"_id": case_id})
        assert head is not None, s
        assert head["state"] == "blocked"
        assert [q["event_id"] for q in head["queue"]] == [later.event_id]
        assert head["dead_letter"] in {x["id"] for x in letters}

    # fix the cause: load the district. Nothing is applied until the replay.
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(district)
    await asyncio.sleep(2)
    assert await timeline(reporting_channel, did, case_id) == []

    rc, out, err = await cli("replay", "--district", did)
    assert rc == 2 and "--all" in err  # a whole district wants an explicit --all
    rc, out, err = await cli("replay", "--district", did, "--all")
    assert rc == 0, err
    assert "replayed 1 events (3 dead letters)" in out

    # both applied in order (the router's own event follows), once each
    applied = await eventually(
        lambda: timeline(reporting_channel, did, case_id),
        lambda t: later.event_id in t and len(t) >= 3,
    )
    assert applied[:2] == [first.event_id, later.event_id]
    assert len(applied) == len(set(applied))
    a = await agrpc.AssignmentServiceStub(assignment_channel).GetAssignment(
        apb.GetAssignmentRequest(district_id=did, case_id=case_id)
    )
    assert a.unit_id == row["unit_id"]
    for s in CONSUMERS:  # unblocked, parked bytes gone
        parked = mongo[settings.db_name(s)]["parked"]
        await eventually(
            functools.partial(parked.find_one, {"_id": case_id}), lambda d: d is None, wait_s=30
        )
        assert await parked.find_one({"_id": f"{case_id}:1"}) is None
    letters = await listed(did)
    assert [x["state"] for x in letters] == ["replayed"] * len(CONSUMERS)
    assert all(x["parked"] is None and x["replays"] for x in letters)
    assert await listed(did, "--state", "open") == []

    # replaying again (by id) changes nothing: every consumer sees a duplicate
    summary_before = await rgrpc.ReportingServiceStub(reporting_channel).GetDistrictSummary(
        rpb.GetDistrictSummaryRequest(district_id=did, period=str(now.year))
    )
    assert summary_before.received == 1
    dup_before = await counters(settings, "duplicate")
    rc, out, err = await cli("replay", "--district", did, "--id", *(x["id"] for x in letters))
    assert rc == 0, err
    for s in CONSUMERS:
        await eventually(
            functools.partial(metric_value, settings, s, 'outcome="duplicate"'),
            functools.partial(operator.le, dup_before[s] + 1),
        )
    assert await timeline(reporting_channel, did, case_id) == applied
    summary_after = await rgrpc.ReportingServiceStub(reporting_channel).GetDistrictSummary(
        rpb.GetDistrictSummaryRequest(district_id=did, period=str(now.year))
    )
    assert summary_after == summary_before
    letters = await listed(did)
    assert all(len(x["replays"]) == 2 for x in letters)


async def test_replay_by_id_refuses_a_letter_of_another_district(settings: Settings) -> None:
    rc, out, err = await cli("replay", "--district", "it-nobody", "--id", "0:0")
    assert rc == 2
    assert err.startswith("dead-letters replay: --id: no dead letter 0:0 of it-nobody")
    assert out == ""
