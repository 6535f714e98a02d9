"""The platform's calendar on the real stack: ``xinfang calendar load`` stores a
year's arrangement for every district, supervision re-evaluates the open
clocks of every district at once, ``estimated`` goes where the loaded year
decides, a district's own working day stays on top, and ``withdraw`` puts
the estimate back. The arrangement loaded is made up for the test, in the
notice's shape: it rests on the day the handling clock would have ended."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.case.v1 import events_pb2 as ev
from xinfang.cli import main
from xinfang.cli_calendar import template
from xinfang.core.calendar import SHANGHAI, Arrangements, library_source, parse_arrangement
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.districts import District, parse_district
from xinfang.core.mongo import Doc
from xinfang.sample.generator import sample_district

from .conftest import clocks_of, eventually
from .test_lifecycle_e2e import register, unit_actor

pytestmark = pytest.mark.integration


async def _handling(
    district: dict[str, Any],
    intake: grpc.aio.Channel,
    assignment: grpc.aio.Channel,
    supervision: grpc.aio.Channel,
) -> tuple[str, Any]:
    """A case accepted now: its handling clock (60 calendar days) as served."""
    case = await register(district, intake, assignment, seed=31)
    unit = unit_actor((await case.view()).unit_id)
    await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
    clocks = await eventually(
        lambda: clocks_of(supervision, district["district_id"], case.case_id),
        lambda c: ev.CLOCK_KIND_HANDLING in c,
    )
    return case.case_id, clocks[ev.CLOCK_KIND_HANDLING]


def _due(district: District, clock: Any, loaded: Arrangements) -> tuple[datetime, bool]:
    on = replace(district, calendar=district.calendar.with_arrangements(loaded))
    dl = on.deadline("handling", clock.started_at.ToDatetime(tzinfo=UTC))
    return dl.due_at, dl.estimated


def _served(clock: Any) -> tuple[datetime, bool]:
    return clock.due_at.ToDatetime(tzinfo=UTC), clock.estimated


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


async def _served_eventually(
    channel: grpc.aio.Channel, district_id: str, case_id: str, want: tuple[datetime, bool]
) -> Any:
    clocks = await eventually(
        lambda: clocks_of(channel, district_id, case_id),
        lambda c: _served(c[ev.CLOCK_KIND_HANDLING]) == want,
        wait_s=30,
    )
    return clocks[ev.CLOCK_KIND_HANDLING]


async def test_calendar_load_re_evaluates_every_district_and_withdraw_undoes_it(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    channels = (intake_channel, assignment_channel, supervision_channel)
    a_district = parse_district(district)
    a_case, a_clock = await _handling(district, *channels)
    none = Arrangements()
    assert _served(a_clock) == _due(a_district, a_clock, none)
    last_day = a_district.deadline("handling", a_clock.started_at.ToDatetime(tzinfo=UTC)).last_day
    year = last_day.year
    if library_source(year) is None:  # today: 2027, which no library knows
        assert a_clock.estimated

    # a second district keeps that day as a working day of its own
    b_doc = sample_district(seed=7, district_id=f"it-{uuid.uuid4().hex[:10]}")
    b_doc["calendar"] = {"working_days": [last_day.isoformat()]}
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(b_doc)
    b_district = parse_district(b_doc)
    b_case, b_clock = await _handling(b_doc, *channels)

    doc = template(year)
    doc["source"] = "integration test: a made-up arrangement"
    doc["holidays"].append({"name": "test day off", "from": str(last_day), "to": str(last_day)})
    path = tmp_path / f"{year}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    loaded = Arrangements((parse_arrangement(doc),))
    try:
        out = await _cli(capsys, "calendar", "load", str(path), "--by", "it-operator")
        assert f"{year}: loaded, version " in out and "by it-operator" in out
        assert "open clocks of every district re-evaluated" in out

        # re-evaluation records each move; supervision's consumer applies it
        expected = _due(a_district, a_clock, loaded)
        a_after = await _served_eventually(
            supervision_channel, district["district_id"], a_case, expected
        )
        assert _served(a_after) == expected
        assert expected[1] is False  # the loaded year decides: no longer estimated
        assert expected[0] > _served(a_clock)[0]  # and the day off moved it
        b_expected = _due(b_district, b_clock, loaded)
        b_after = await _served_eventually(
            supervision_channel, b_doc["district_id"], b_case, b_expected
        )
        assert _served(b_after) == b_expected
        b_last = b_district.deadline("handling", b_clock.started_at.ToDatetime(tzinfo=UTC)).last_day
        if b_last == last_day:  # (both accepted on the same day) the district's working day holds
            assert _served(b_after)[0] == _served(b_clock)[0]

        shown = await _cli(capsys, "calendar", "show", str(year))
        assert f"{year}: loaded" in shown and "load by it-operator" in shown
    finally:
        await _cli(capsys, "calendar", "withdraw", str(year), "--by", "it-operator")
    back = _due(a_district, a_clock, none)
    a_back = await _served_eventually(supervision_channel, district["district_id"], a_case, back)
    assert _served(a_back) == back
    log = await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).arrangement_log(year)
    assert [r["action"] for r in log][-2:] == ["load", "withdraw"]
    assert {r["by"] for r in log[-2:]} == {"it-operator"}


async def test_a_wrong_district_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["summary", "no-such-district", "2026"], ["report", "no-such-district", "2026"]):
        code = await asyncio.to_thread(main, argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        said = f"xinfang {argv[0]}: district_id: unknown district 'no-such-district'"
        assert err.startswith(said), err


async def test_summary_shows_the_district_s_names(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await register(district, intake_channel, assignment_channel, seed=32)
    period = str(datetime.now(SHANGHAI).year)
    out = await _cli(capsys, "summary", district["district_id"], period)
    assert district["name"] in out
    township_names = {t["name"] for t in district["townships"]}
    assert any(name in out for name in township_names)
    for t in district["townships"]:  # names, not codes
        assert f"    {t['id']}:" not in out
