"""The demo on the real stack, small: two years of a district registered
from its ledger, the histories imported, the last weeks entered late, and
figures that compare the years; a second run takes no step again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc
import pytest

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.cli import render_summary
from xinfang.core.config import Settings
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.demo import run

pytestmark = pytest.mark.integration


async def test_the_demo_compares_two_years_of_steps_taken_when_they_happened(
    settings: Settings,
    assignment_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    did = f"it-demo-{uuid.uuid4().hex[:8]}"
    code = await run(settings, 60, 7, "en", 240, render_summary, district_id=did, out_dir=tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "refused" not in out
    assert "imported with each case's history" in out and "entered late one by one" in out

    reports = sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir())))
    assert len(reports) == 2 and reports[0].startswith(did)

    rep = await rgrpc.ReportingServiceStub(reporting_channel).GetPeriodReport(
        rpb.GetPeriodReportRequest(district_id=did, period=reports[0].split("-")[-2]), timeout=10
    )
    assert rep.HasField("last_year") and rep.last_year.received > 0 and rep.current.received > 0
    assert rep.indicators.HasField("received_down")
    assert rep.current.replied > 0 and rep.current.replied_on_time > 0

    # one case's timeline: its history marked so, later steps entered late
    cases = await rgrpc.ReportingServiceStub(reporting_channel).SearchCases(
        rpb.SearchCasesRequest(district_id=did, page_size=500), timeout=10
    )
    stub = agrpc.AssignmentServiceStub(assignment_channel)
    entries: set[int] = set()
    for row in cases.cases:
        tl = await stub.GetTimeline(apb.GetTimelineRequest(district_id=did, case_id=row.case_id))
        entries |= {e.entry for e in tl.events}
        for e in tl.events:
            if e.entry == ev.ENTRY_LATE:
                assert e.late_reason
                assert e.occurred_at.ToDatetime() < e.recorded_at.ToDatetime()
    assert {ev.ENTRY_HISTORY, ev.ENTRY_LATE} <= entries

    # again: nothing new is registered and no step is taken twice
    again = await run(settings, 60, 7, "en", 60, render_summary, district_id=did, out_dir=tmp_path)
    out = capsys.readouterr().out
    assert again == 0, out
    assert "the data is reused" in out
    rep2 = await rgrpc.ReportingServiceStub(reporting_channel).GetPeriodReport(
        rpb.GetPeriodReportRequest(district_id=did, period=rep.period), timeout=10
    )
    assert rep2.current.replied == rep.current.replied
