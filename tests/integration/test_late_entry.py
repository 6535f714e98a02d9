"""Late entry (补录) and imported histories through the real stack.

A step entered late over gRPC is refused with the field named when its time
cannot be right; taken, its events keep when it happened and when it was
recorded, and supervision's clocks and reporting's periods count from when
it happened. A year of histories imported from a file gives the year's
report the file describes; importing the file again changes nothing; a bad
history is rejected whole with its reason.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from tests.history_file import YEAR_FIELDS, expected_year, history_lines, write_file
from xinfang import cli
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import from_timestamp, to_timestamp
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.districts import parse_district
from xinfang.core.mongo import Doc
from xinfang.intake import history
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.figures import PeriodFigures
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import sample_district

from .conftest import clocks_of, eventually
from .test_pipeline import petition

pytestmark = pytest.mark.integration

OFFICE = ev.Actor(user_id="office-1", role="office")
IMPORTED_YEAR = 2025


def unit_actor(unit_id: str) -> ev.Actor:
    return ev.Actor(user_id=f"staff-{unit_id}", role="unit", unit_id=unit_id)


def ctx(
    district_id: str,
    case_id: str,
    at: datetime | None = None,
    reason: str = "",
    actor: ev.Actor = OFFICE,
) -> apb.CommandContext:
    c = apb.CommandContext(district_id=district_id, case_id=case_id, actor=actor)
    if at is not None:
        c.occurred_at.CopyFrom(to_timestamp(at))
    c.late_reason = reason
    return c


async def refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    return e.value.details() or ""


async def period_figures(ch: grpc.aio.Channel, district_id: str, period: str) -> rpb.Figures:
    r: rpb.PeriodReport = await rgrpc.ReportingServiceStub(ch).GetPeriodReport(
        rpb.GetPeriodReportRequest(district_id=district_id, period=period)
    )
    return r.current


@pytest.fixture
async def unrouted_district(settings: Settings, mongo: AsyncMongoClient[Doc]) -> dict[str, Any]:
    """A fresh district whose routing table matches nothing, so the office
    routes every case by hand (and may say when it did)."""
    doc = sample_district(seed=7, district_id=f"it-{uuid.uuid4().hex[:10]}")
    doc["routing"] = []
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(doc)
    return doc


async def registered(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    stub: agrpc.AssignmentServiceStub,
    received: datetime,
    seed: int,
) -> str:
    req = petition(district, seed)
    req.received_at.CopyFrom(to_timestamp(received))
    case_id = (await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)).case_id

    async def view() -> apb.CaseView | None:
        try:
            v: apb.CaseView = await stub.GetCase(
                apb.GetCaseRequest(district_id=district["district_id"], case_id=case_id)
            )
            return v
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    await eventually(view, lambda v: v is not None and v.status == "registered")
    return str(case_id)


async def test_a_late_step_counts_from_when_it_happened(
    unrouted_district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    did = unrouted_district["district_id"]
    district = parse_district(unrouted_district)
    stub = agrpc.AssignmentServiceStub(assignment_channel)
    now = datetime.now(UTC).replace(microsecond=0)
    received = now - timedelta(days=5)
    case_id = await registered(unrouted_district, intake_channel, stub, received, seed=31)
    unit_id = next(u["id"] for u in unrouted_district["units"] if u["kind"] == "township")
    routed_at = received + timedelta(hours=2)
    accepted_at = now - timedelta(days=3)

    # routed by hand five days ago, entered now
    paper = "entered from the paper register"
    v = await stub.RouteCase(
        apb.RouteCaseRequest(
            ctx=ctx(did, case_id, routed_at, paper),
            decision=ev.ROUTING_DECISION_ACCEPT,
            unit_id=unit_id,
        )
    )
    assert v.status == "routed" and from_timestamp(v.routed_at) == routed_at

    unit = unit_actor(unit_id)
    accept = apb.AcceptCaseRequest
    detail = await refused(
        stub.AcceptCase(accept(ctx=ctx(did, case_id, routed_at - timedelta(hours=1), paper, unit))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    local = routed_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    assert detail == f"ctx.occurred_at: is before the case was routed ({local})"
    detail = await refused(
        stub.AcceptCase(accept(ctx=ctx(did, case_id, now + timedelta(hours=2), "", unit))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert detail.startswith("ctx.occurred_at: is in the future")
    detail = await refused(
        stub.AcceptCase(accept(ctx=ctx(did, case_id, accepted_at, "", unit))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert detail.startswith("ctx.late_reason:")
    v = await stub.AcceptCase(accept(ctx=ctx(did, case_id, accepted_at, "clerk was away", unit)))
    assert v.status == "accepted" and from_timestamp(v.accepted_at) == accepted_at

    # the events keep both times, how they were entered, and why late
    t = await stub.GetTimeline(apb.GetTimelineRequest(district_id=did, case_id=case_id))
    by_kind = {e.WhichOneof("payload"): e for e in t.events}
    late = (("routed", routed_at, paper), ("accepted", accepted_at, "clerk was away"))
    for kind, at, reason in late:
        e = by_kind[kind]
        assert from_timestamp(e.occurred_at) == at
        assert from_timestamp(e.recorded_at) >= now
        assert e.entry == ev.ENTRY_LATE and e.late_reason == reason
        assert e.actor.user_id in ("office-1", f"staff-{unit_id}")
    assert by_kind["registered"].entry == ev.ENTRY_UNSPECIFIED

    # supervision's clocks run from when the steps happened
    handling_due = district.deadline("handling", accepted_at).due_at
    clocks = await eventually(
        lambda: clocks_of(supervision_channel, did, case_id),
        lambda c: ev.CLOCK_KIND_HANDLING in c and not c[ev.CLOCK_KIND_REMIT_OBJECTION].open,
    )
    handling = clocks[ev.CLOCK_KIND_HANDLING]
    assert from_timestamp(handling.started_at) == accepted_at
    assert from_timestamp(handling.due_at) == handling_due
    assert from_timestamp(clocks[ev.CLOCK_KIND_REMIT_OBJECTION].started_at) == routed_at
    assert not clocks[ev.CLOCK_KIND_REGISTER_AND_ROUTE].open

    # reporting counts the acceptance in the month it happened
    month = accepted_at.astimezone(SHANGHAI).strftime("%Y-%m")
    f = await eventually(
        lambda: period_figures(reporting_channel, did, month), lambda f: f.accepted == 1
    )
    assert f.accepted == 1
    this_month = now.astimezone(SHANGHAI).strftime("%Y-%m")
    if this_month != month:
        assert (await period_figures(reporting_channel, did, this_month)).accepted == 0


async def test_a_step_older_than_the_window_is_refused(
    unrouted_district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    did = unrouted_district["district_id"]
    stub = agrpc.AssignmentServiceStub(assignment_channel)
    received = datetime.now(UTC) - timedelta(days=40)
    case_id = await registered(unrouted_district, intake_channel, stub, received, seed=32)
    unit_id = unrouted_district["units"][0]["id"]
    detail = await refused(
        stub.RouteCase(
            apb.RouteCaseRequest(
                ctx=ctx(did, case_id, received + timedelta(days=1), "found in a drawer"),
                decision=ev.ROUTING_DECISION_ACCEPT,
                unit_id=unit_id,
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert detail.startswith("ctx.occurred_at: is more than 30 days ago")
    v = await stub.GetCase(apb.GetCaseRequest(district_id=did, case_id=case_id))
    assert v.status == "registered" and v.version == 1


# ---- history import -------------------------------------------------------------------

_FIGURE_NAMES = {"group": "group_petitions"}


def year_of(f: rpb.Figures) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in YEAR_FIELDS:
        v = getattr(f, _FIGURE_NAMES.get(k, k))
        out[k] = int(v) if isinstance(v, int) else dict(v)
    return out


async def timelines(stub: agrpc.AssignmentServiceStub, did: str, ids: list[str]) -> list[Any]:
    out = []
    for case_id in ids:
        t = await stub.GetTimeline(apb.GetTimelineRequest(district_id=did, case_id=case_id))
        out.append([(e.event_id, e.case_version, e.recorded_at.ToNanoseconds()) for e in t.events])
    return out


async def test_a_year_of_histories_imports_once_and_reports_as_the_file_says(
    settings: Settings,
    district: dict[str, Any],
    assignment_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    did = district["district_id"]
    lines = history_lines(district, IMPORTED_YEAR, 60, seed=41, prefix=f"old-{did}")
    # one bad history: its reply dated before its acceptance
    bad = lines[7]
    accept = next(s for s in bad["steps"] if s["step"] == "accept")
    reply = next(s for s in bad["steps"] if s["step"] == "reply")
    reply["at"] = (datetime.fromisoformat(accept["at"]) - timedelta(hours=1)).isoformat()
    path = tmp_path / "history.jsonl"
    write_file(str(path), lines)
    intake_target = f"{settings.grpc_host}:{settings.intake_grpc}"
    assignment_target = f"{settings.grpc_host}:{settings.assignment_grpc}"

    cases = history.parse_histories(path.read_text("utf-8"), district_id=None)
    report = await history.import_histories(
        intake_target, assignment_target, cases, concurrency=8, progress=False
    )
    assert (report.created, report.already_present) == (59, 0)
    assert [line for line, _ in report.rejected] == [8]
    assert "occurred_at: is before the case was accepted" in report.rejected[0][1]
    # rejected whole: the bad case was not even registered
    stub = agrpc.AssignmentServiceStub(assignment_channel)
    bad_case = cases[7].history
    assert bad_case is not None
    await refused(
        stub.GetCase(apb.GetCaseRequest(district_id=did, case_id=bad_case.ctx.case_id)),
        grpc.StatusCode.NOT_FOUND,
    )

    good = [obj for i, obj in enumerate(lines) if i != 7]
    expected = expected_year(good, IMPORTED_YEAR)
    year = str(IMPORTED_YEAR)
    got = await eventually(
        lambda: period_figures(reporting_channel, did, year),
        lambda f: year_of(f) == expected,
        wait_s=120,
    )
    assert year_of(got) == expected
    assert {f.name for f in fields(PeriodFigures)} >= set(YEAR_FIELDS)

    ids = [c.history.ctx.case_id for i, c in enumerate(cases) if i != 7 and c.history]
    before = await timelines(stub, did, ids)
    assert all(len(t) > 3 for t in before)

    # the same file again, through the command: nothing changes
    rejects = tmp_path / "rejects.csv"
    capsys.readouterr()
    args = ["import", str(path), "--lang", "en", "--rejects", str(rejects)]
    assert await asyncio.to_thread(cli.main, args) == 1  # the bad line is still rejected
    out = capsys.readouterr().out
    assert "60 rows: 0 newly registered, 59 already registered, 1 rejected" in out, out
    assert rejects.read_text("utf-8-sig").splitlines()[1].startswith("8,")
    assert await timelines(stub, did, ids) == before
    await asyncio.sleep(3)  # anything published again would have been counted by now
    assert year_of(await period_figures(reporting_channel, did, year)) == expected
