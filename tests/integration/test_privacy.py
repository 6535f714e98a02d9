"""Petitioner identity: sealed at rest, shown only to the petition office,
every reveal recorded first."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import Settings
from xinfang.core.kafka import read_to_end
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc

from .conftest import _http_get, eventually
from .test_pipeline import YEAR, petition, summary

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from privacy_probe import Identities, Probe

pytestmark = pytest.mark.integration


async def test_only_the_office_sees_who_petitioned_and_every_look_is_recorded(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
) -> None:
    stub = igrpc.IntakeServiceStub(intake_channel)
    req = petition(district, seed=8)
    resp = await stub.RegisterPetition(req)
    did = district["district_id"]
    db = mongo[f"{settings.mongo_db_prefix}_intake"]

    # at rest the identity is sealed: no clear name, ID or phone in the document
    stored = await db["cases"].find_one({"_id": resp.case_id})
    assert stored is not None
    raw = repr(stored)
    for secret in (req.petitioner.name, req.petitioner.id_number, req.petitioner.phone):
        assert secret not in raw

    unit = ev.Actor(user_id="u-staff", role="unit", unit_id="u-zjj")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(
                district_id=did, case_id=resp.case_id, actor=unit, reason="want to call"
            )
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (e.value.details() or "").startswith("actor.role")

    office = ev.Actor(user_id="office-7", role="office")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(district_id=did, case_id=resp.case_id, actor=office)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(
                district_id="demo-district", case_id=resp.case_id, actor=office, reason="check"
            )
        )
    assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    assert await db["identity_reveals"].count_documents({"case_id": resp.case_id}) == 0

    shown = await stub.RevealPetitioner(
        ipb.RevealPetitionerRequest(
            district_id=did, case_id=resp.case_id, actor=office, reason="send the written notice"
        )
    )
    assert shown.petitioner.name == req.petitioner.name
    assert shown.petitioner.id_number == req.petitioner.id_number.upper()
    audit = await db["identity_reveals"].find_one({"_id": shown.reveal_id})
    assert audit is not None
    assert (audit["user_id"], audit["case_id"], audit["reason"]) == (
        "office-7",
        resp.case_id,
        "send the written notice",
    )


async def test_no_identity_in_any_topic_log_metric_series_or_report(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    """Petitions whose identities the test knows go through every service;
    then every record of every topic (every test's so far, dead letters
    included), every line of every service's log, every series of every
    service's /metrics and of Prometheus, and the district's report in each
    format and language are searched for those identities and for anything
    shaped like an ID number or a mobile number (scripts/privacy_probe.py):
    nothing is found."""
    stub = igrpc.IntakeServiceStub(intake_channel)
    reqs = [petition(district, seed=200 + i) for i in range(20)]
    for req in reqs:
        await stub.RegisterPetition(req)
    did = district["district_id"]
    await eventually(
        lambda: summary(reporting_channel, did), lambda s: s.routed == len(reqs), wait_s=120
    )

    probe = Probe(Identities.of(reqs))
    for topic in (settings.case_events_topic, settings.dead_letter_topic, settings.rankings_topic):
        async for records in read_to_end(settings, topic, "xinfang-privacy-test", timeout_s=300):
            probe.search_records(topic, records)
    logs = Path(os.environ.get("XINFANG_LOGS", ""))
    assert await asyncio.to_thread(logs.is_dir), "XINFANG_LOGS: the services' logs (test.sh)"
    await asyncio.to_thread(probe.search_logs, logs)
    for service in ("intake", "assignment", "supervision", "reporting"):
        probe.search_series(
            f"{service}/metrics",
            (await _http_get(f"http://127.0.0.1:{settings.ports(service)[1]}/metrics")).decode(),
        )
    series = json.loads(
        await _http_get(
            f"{settings.prometheus_url}/api/v1/series?"
            + urllib.parse.urlencode({"match[]": '{__name__=~".+"}'})
        )
    )
    for s in series["data"]:
        probe.search("metric series", "prometheus", json.dumps(s, ensure_ascii=False))
    rstub = rgrpc.ReportingServiceStub(reporting_channel)
    for fmt in ("docx", "markdown", "json"):
        for lang in ("zh", "en"):
            r = await rstub.RenderReport(
                rpb.RenderReportRequest(district_id=did, period=str(YEAR), format=fmt, lang=lang)
            )
            probe.search_report(f"{did}-{lang}.{'md' if fmt == 'markdown' else fmt}", r.content)

    print(probe.summary())
    assert probe.findings == [], "\n".join(map(str, probe.findings[:20]))
    # the searches reached something: the petitions' events, the logs, the series
    assert probe.searched["messages"] >= len(reqs)
    assert probe.searched["log lines"] > 0 and probe.searched["metric series"] > 0
    assert probe.searched["reports"] == 6
