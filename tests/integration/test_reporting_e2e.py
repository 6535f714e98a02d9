"""Reporting on the real stack: figures against what was submitted, period
boundaries, comparisons, search, timelines, and rebuild-by-replay."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.app import Reporting
from xinfang.reporting.rebuild import ServiceRunning, rebuild
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions

from .conftest import consumers_caught_up, eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(SHANGHAI)
YEAR = NOW.year
CHANNEL = {
    ev.CHANNEL_LETTER: "letter",
    ev.CHANNEL_VISIT: "visit",
    ev.CHANNEL_ONLINE: "online",
    ev.CHANNEL_PHONE: "phone",
    ev.CHANNEL_FAX: "fax",
}
OFFICE = ev.Actor(user_id="office-1", role="office")


def local(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI)


@pytest.fixture
async def dataset(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> dict[str, Any]:
    """40 petitions of this year, one received at 23:30 on the last day of Q1,
    then some handling: what the figures must show, computed from the raw
    submissions and the steps taken, never from the read models."""
    did = district["district_id"]
    reqs = list(
        petitions(district, 40, seed=41, start=date(YEAR, 1, 1), end=NOW.date() - timedelta(days=1))
    )
    boundary = reqs[0]
    boundary.received_at.FromDatetime(datetime(YEAR, 3, 31, 23, 30, tzinfo=SHANGHAI))
    intake = igrpc.IntakeServiceStub(intake_channel)
    kinds = []
    case_ids = []
    for r in reqs:  # one by one: first/repeat depends on order
        r.request_id = uuid.uuid4().hex
        resp = await intake.RegisterPetition(r)
        kinds.append(resp.kind)
        case_ids.append(resp.case_id)
    stub = rgrpc.ReportingServiceStub(reporting_channel)

    async def year_summary() -> rpb.DistrictSummary:
        s: rpb.DistrictSummary = await stub.GetDistrictSummary(
            rpb.GetDistrictSummaryRequest(district_id=did, period=str(YEAR))
        )
        return s

    await eventually(year_summary, lambda s: s.routed == len(reqs))
    a = agrpc.AssignmentServiceStub(assignment_channel)
    ratings = [ev.SATISFACTION_SATISFIED] * 3 + [ev.SATISFACTION_BASICALLY] * 2
    ratings += [ev.SATISFACTION_DISSATISFIED]
    for i, cid in enumerate(case_ids[:10]):
        ctx = apb.CommandContext(district_id=did, case_id=cid, actor=OFFICE)
        await a.AcceptCase(apb.AcceptCaseRequest(ctx=ctx))
        if i < 6:
            await a.Reply(apb.ReplyRequest(ctx=ctx, resolved=True))
            await a.RateSatisfaction(apb.RateSatisfactionRequest(ctx=ctx, rating=ratings[i]))
    back = apb.CommandContext(district_id=did, case_id=case_ids[0], actor=OFFICE)
    await a.ReopenBackflow(apb.ReopenBackflowRequest(ctx=back, reason="came back"))
    await eventually(  # every step has reached the read models
        lambda: period_report(reporting_channel, did, str(YEAR)),
        lambda r: r.current.backflow == 1 and r.current.rated == 6,
    )
    return {"reqs": reqs, "kinds": kinds, "case_ids": case_ids, "district_id": did}


async def period_report(ch: grpc.aio.Channel, did: str, period: str) -> rpb.PeriodReport:
    r: rpb.PeriodReport = await rgrpc.ReportingServiceStub(ch).GetPeriodReport(
        rpb.GetPeriodReportRequest(district_id=did, period=period)
    )
    return r


async def test_figures_match_what_was_submitted_and_done(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    reqs: list[ipb.RegisterPetitionRequest] = dataset["reqs"]
    did = dataset["district_id"]
    n = len(reqs)
    report = await period_report(reporting_channel, did, str(YEAR))
    cur = report.current
    assert cur.received == n
    assert cur.people == sum(r.people_count for r in reqs)
    assert dict(cur.by_channel) == Counter(CHANNEL[r.channel] for r in reqs)
    assert dict(cur.by_category) == Counter(r.category for r in reqs)
    assert dict(cur.by_township) == Counter(r.township_id for r in reqs)
    assert cur.first == dataset["kinds"].count(ev.PETITION_KIND_FIRST)
    assert cur.repeat == dataset["kinds"].count(ev.PETITION_KIND_REPEAT)
    assert cur.group_petitions == sum(r.people_count >= 5 for r in reqs)
    assert cur.group_people == sum(r.people_count for r in reqs if r.people_count >= 5)
    assert cur.escalated == sum(r.escalated for r in reqs)
    assert cur.higher_level == sum(r.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT for r in reqs)
    assert cur.routed == n and sum(cur.by_unit.values()) == n
    assert (cur.accepted, cur.replied, cur.resolved) == (10, 6, 6)
    assert (cur.satisfied, cur.basically_satisfied, cur.dissatisfied) == (3, 2, 1)
    assert cur.replied_on_time == 6  # replied the day they were accepted
    # 存量: every case came in this year; 6 answered, 1 came back
    assert (cur.backlog_start, cur.backlog_end) == (0, n - 6 + 1)
    # months: registrations by the local month they were received in
    months = Counter(local(r.received_at).strftime("%Y-%m") for r in reqs)
    assert {m.period: m.received for m in report.monthly if m.received} == dict(months)
    # nothing the year before: no comparison, rather than a comparison with zero
    assert not report.HasField("previous") and not report.HasField("last_year")
    assert not report.indicators.HasField("received_down")


async def test_a_case_received_at_the_end_of_a_quarter_counts_in_that_quarter(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    reqs: list[ipb.RegisterPetitionRequest] = dataset["reqs"]
    did = dataset["district_id"]
    q1 = sum(local(r.received_at).month <= 3 for r in reqs)
    q2 = sum(4 <= local(r.received_at).month <= 6 for r in reqs)
    r1 = await period_report(reporting_channel, did, f"{YEAR}-Q1")
    r2 = await period_report(reporting_channel, did, f"{YEAR}-Q2")
    assert (r1.current.received, r2.current.received) == (q1, q2)
    march = await period_report(reporting_channel, did, f"{YEAR}-03")
    assert march.current.received == sum(local(r.received_at).month == 3 for r in reqs) >= 1
    # the quarter's months add up to it; the backlog carries over
    assert sum(m.received for m in r1.monthly) == q1
    assert r2.current.backlog_start == r1.current.backlog_end
    # answered now: replies count in the current quarter, not the one received in
    current_q = f"{YEAR}-Q{(NOW.month - 1) // 3 + 1}"
    rq = await period_report(reporting_channel, did, current_q)
    assert rq.current.replied == 6
    if current_q != f"{YEAR}-Q1":
        assert r1.current.replied == 0
        assert rq.HasField("previous")  # an earlier quarter of the same year has data


async def test_search_pages_are_stable_and_filters_apply(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    did = dataset["district_id"]
    stub = rgrpc.ReportingServiceStub(reporting_channel)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.SearchCases(
            rpb.SearchCasesRequest(district_id=did, page_size=7, page_token=token)
        )
        seen += [c.case_id for c in page.cases]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(dataset["case_ids"]) and len(seen) == len(set(seen))
    replied = await stub.SearchCases(rpb.SearchCasesRequest(district_id=did, status="replied"))
    assert {c.case_id for c in replied.cases} == set(dataset["case_ids"][1:6])
    category = dataset["reqs"][3].category
    by_cat = await stub.SearchCases(rpb.SearchCasesRequest(district_id=did, category=category))
    assert len(by_cat.cases) == sum(r.category == category for r in dataset["reqs"])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.SearchCases(rpb.SearchCasesRequest(district_id=did, page_token="garbage"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    timeline = await stub.GetCaseTimeline(
        rpb.GetCaseTimelineRequest(district_id=did, case_id=dataset["case_ids"][0])
    )
    supervision = ("deadline_warned", "deadline_breached", "supervision_order_issued")
    kinds = [t.kind for t in timeline.entries if t.kind not in supervision]
    assert kinds[:3] == ["registered", "routed", "accepted"] and kinds[-1] == "backflow_reopened"


async def test_rebuild_from_the_log_equals_the_live_figures(
    settings: Settings, mongo: AsyncMongoClient[Doc], dataset: dict[str, Any]
) -> None:
    did = dataset["district_id"]
    with pytest.raises(ServiceRunning):  # in place, while the service writes: refused
        await rebuild(settings, district_id=did, progress=False)
    directory = Directory(mongo[f"{settings.mongo_db_prefix}_directory"])
    live = Reporting(mongo[f"{settings.mongo_db_prefix}_reporting"], directory)
    # the scanner keeps publishing breaches of the back-dated cases while
    # supervision works through them: replay once every consumer has caught
    # up with the log and the figures stay put over a few scanner passes
    last: list[Any] = [None]

    async def settled() -> bool:
        if not await consumers_caught_up(settings):
            await asyncio.sleep(1)
            return False
        now = await live.figures(did, str(YEAR))
        same, last[0] = bool(now == last[0]), now
        if not same:
            await asyncio.sleep(3)
        return same and await consumers_caught_up(settings)

    await eventually(settled, bool, wait_s=180)
    prefix = f"rebuild{uuid.uuid4().hex[:8]}"
    result = await rebuild(settings, district_id=did, into_prefix=prefix, progress=False)
    assert result.applied > 0
    rebuilt = Reporting(mongo[f"{prefix}_reporting"], directory)
    periods = [str(YEAR), *(f"{YEAR}-Q{q}" for q in range(1, 5))]
    periods += [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    for p in periods:
        assert await rebuilt.figures(did, p) == await live.figures(did, p), p
    await mongo.drop_database(f"{prefix}_reporting")


async def test_city_view_is_an_explicit_call_over_named_districts(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    stub = rgrpc.ReportingServiceStub(reporting_channel)
    city = await stub.GetCitySummary(
        rpb.GetCitySummaryRequest(district_ids=[dataset["district_id"]], period=str(YEAR))
    )
    assert [d.district_id for d in city.districts] == [dataset["district_id"]]
    assert city.districts[0].figures.received == len(dataset["reqs"])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetCitySummary(rpb.GetCitySummaryRequest(district_ids=[], period=str(YEAR)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_report_renders_as_json_and_docx(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    stub = rgrpc.ReportingServiceStub(reporting_channel)
    did = dataset["district_id"]
    j = await stub.RenderReport(
        rpb.RenderReportRequest(district_id=did, period=str(YEAR), format="json")
    )
    body = json.loads(j.content)
    assert body["current"]["received"] == len(dataset["reqs"])
    d = await stub.RenderReport(rpb.RenderReportRequest(district_id=did, period=str(YEAR)))
    assert d.content[:2] == b"PK" and d.filename.endswith(".docx")


async def test_suggestions_made_and_adopted_are_counted_once(
    district: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    """Art. 41 asks which of the office's suggestions were adopted."""
    did = district["district_id"]
    stub = rgrpc.ReportingServiceStub(reporting_channel)
    ids = []
    for title in ("规范物业服务收费", "加快历史遗留房产办证", "完善代课人员补偿政策"):
        r = await stub.RecordSuggestion(
            rpb.RecordSuggestionRequest(district_id=did, title=title, to_unit_id="u-zjj")
        )
        ids.append(r.suggestion_id)

    async def adopt(sid: str) -> bool:
        try:
            await stub.MarkSuggestionAdopted(
                rpb.MarkSuggestionAdoptedRequest(district_id=did, suggestion_id=sid)
            )
            return True
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:  # not in the read model yet
                return False
            raise

    for sid in ids[:2]:
        await eventually(functools.partial(adopt, sid), bool)
    report = await eventually(
        lambda: period_report(reporting_channel, did, str(YEAR)),
        lambda r: r.current.suggestions_adopted == 2,
    )
    assert report.current.suggestions_made == 3
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.MarkSuggestionAdopted(
            rpb.MarkSuggestionAdoptedRequest(district_id=did, suggestion_id=ids[0])
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RecordSuggestion(rpb.RecordSuggestionRequest(district_id=did, title=""))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    md = await stub.RenderReport(
        rpb.RenderReportRequest(district_id=did, period=str(YEAR), format="markdown")
    )
    assert "信访工作建议3件" in md.content.decode() and "采纳2件" in md.content.decode()


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_running_year_report_reconciles_with_the_read_models(
    dataset: dict[str, Any], reporting_channel: grpc.aio.Channel, lang: str
) -> None:
    """The report of the year so far says so, and each total it states is
    the sum of the parts it lists and the read models' figure."""
    did = dataset["district_id"]
    stub = rgrpc.ReportingServiceStub(reporting_channel)

    # the scanner may add breaches between reading the figures and the
    # report: read both until they agree on them
    async def both() -> tuple[rpb.PeriodReport, str]:
        rep = await period_report(reporting_channel, did, str(YEAR))
        md = await stub.RenderReport(
            rpb.RenderReportRequest(district_id=did, period=str(YEAR), format="markdown", lang=lang)
        )
        return rep, md.content.decode()

    def agree(x: tuple[rpb.PeriodReport, str]) -> bool:
        rep, md = x
        orders = rep.current.supervision_orders
        return (f"督办通知{orders}份" if lang == "zh" else f"and {orders} supervision") in md

    before = datetime.now(SHANGHAI).date()
    rep, md = await eventually(both, agree, wait_s=60)
    after = datetime.now(SHANGHAI).date()
    cur = rep.current
    # the day the report was made, in Shanghai: the suite may have crossed
    # midnight there (16:00 UTC) since NOW was taken, and did once
    through = date.fromisoformat(rep.through)
    assert before <= through <= after
    assert sum(cur.by_decision.values()) == cur.routed
    assert cur.replied_on_time + cur.replied_late == cur.replied
    assert sum(cur.breaches_by_clock.values()) == cur.breaches
    if lang == "zh":
        assert f"（截至{through.month}月{through.day}日）" in md
        assert f"共作出处理决定{cur.routed}件" in md
        assert f"共办结信访事项{cur.replied}件，其中按期办结{cur.replied_on_time}件" in md
        if cur.breaches:
            assert f"各类法定期限超期共{cur.breaches}次" in md
    else:
        assert "year to date" in md
        assert f"Decisions were made on {cur.routed} registered petitions" in md
