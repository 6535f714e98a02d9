"""Importing case histories, on the in-memory store: intake registers each
petition with ``history_source``, assignment records its history whole
(``Assignment.import_history``), supervision and reporting consume the
events as they would live. Reading the file (``intake.history``) is tested
here too. The stack-level test is ``tests/integration/test_history_import``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.history_file import YEAR_FIELDS, expected_year, history_lines
from tests.unit.test_faults import Faults, World, _consume, _consume_batches
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.codec import decode_event
from xinfang.core.config import DEFAULT_PARTITIONS
from xinfang.core.districts import parse_district
from xinfang.core.errors import FailedPrecondition, InvalidArgument
from xinfang.intake import history
from xinfang.reporting.projections import backlog_between, figures_from, period_section
from xinfang.sample.generator import sample_district
from xinfang.supervision.consumer import HISTORY_SETTLE
from xinfang.supervision.scanner import judge

DOC = sample_district(7, "d1")
OFFICE = ev.Actor(user_id="clerk-1", role="office")
YEAR = 2025


def text_of(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in lines)


async def import_all(w: World, cases: list[history.HistoryCase]) -> list[str]:
    """What the CLI does for each case, without gRPC; the outcome of each."""
    procs = w.boot()
    intake, assignment, consumers = procs.intake, procs.assignment, procs.consumers
    out: list[str] = []
    for group in history._by_petitioner(cases):
        for c in group:
            assert c.register is not None and c.history is not None
            req = apb.ImportHistoryRequest()
            req.CopyFrom(c.history)
            req.ctx.actor.CopyFrom(OFFICE)
            dry = apb.ImportHistoryRequest()
            dry.CopyFrom(req)
            dry.dry_run = True
            dry.registration.CopyFrom(history.registration_of(c.register))
            try:
                checked = await assignment.import_history(dry)
            except (InvalidArgument, FailedPrecondition) as e:
                out.append(f"rejected: {e.message}")
                continue
            if checked.imported_before:
                out.append("present")
                continue
            await intake.register(c.register)
            await _consume(w, assignment)
            done = await assignment.import_history(req)
            out.append("present" if done.imported_before else "created")
    await _consume(w, assignment)
    await _consume_batches(w, consumers)
    return out


async def year_figures(w: World, district_id: str, year: int) -> dict[str, Any]:
    store = w.stores["reporting"].inner
    docs = await shards.read(
        store, "counters", [f"{district_id}:{year}", f"{district_id}:backlog"], DEFAULT_PARTITIONS
    )
    doc = docs.get(f"{district_id}:{year}", {})
    backlog = docs.get(f"{district_id}:backlog", {})
    section = period_section(doc, str(year)) or {}
    f = asdict(figures_from(str(year), section, backlog_between(backlog.get("m", {}), str(year))))
    return {k: f[k] for k in YEAR_FIELDS}


async def test_a_year_imported_is_the_year_the_file_describes() -> None:
    lines = history_lines(DOC, YEAR, 40)
    w = World(Faults(), parse_district(DOC))
    outcomes = await import_all(w, history.parse_histories(text_of(lines), district_id=None))
    assert outcomes == ["created"] * 40
    expected = expected_year(lines, YEAR)
    assert expected["replied_on_time"] not in (0, expected["replied"])  # both kinds drawn
    assert await year_figures(w, "d1", YEAR) == expected


async def test_importing_the_same_file_again_changes_nothing() -> None:
    lines = history_lines(DOC, YEAR, 12, seed=5)
    w = World(Faults(), parse_district(DOC))
    cases = history.parse_histories(text_of(lines), district_id=None)
    await import_all(w, cases)
    before = {name: s.inner.dump() for name, s in w.stores.items()}
    published = len(w.bus)
    assert await import_all(w, cases) == ["present"] * 12
    after = {name: s.inner.dump() for name, s in w.stores.items()}
    assert len(w.bus) == published
    assert after == before


async def test_imported_events_say_how_and_when_they_were_entered() -> None:
    lines = history_lines(DOC, YEAR, 3, seed=8)
    w = World(Faults(), parse_district(DOC))
    await import_all(w, history.parse_histories(text_of(lines), district_id=None))
    events = [decode_event(v) for _k, v in w.bus]
    steps = [e for e in events if e.producer == "assignment"]
    assert steps and all(e.entry == ev.ENTRY_HISTORY for e in steps)
    assert {e.late_reason for e in steps} == {f"history: old-xf:{YEAR}-0000{i}" for i in range(3)}
    assert all(e.actor.user_id == "clerk-1" for e in steps)
    assert all(e.occurred_at.ToDatetime().year == YEAR for e in steps if e.case_version == 2)
    assert all(e.recorded_at.ToDatetime().year > YEAR for e in steps)
    registrations = [e for e in events if e.WhichOneof("payload") == "registered"]
    assert all(e.entry == ev.ENTRY_HISTORY for e in registrations)
    # nothing routed them by the table: their first step is the history's route
    assert all(e.case_version == 1 for e in registrations)
    assert [e.case_version for e in steps if e.WhichOneof("payload") == "routed"] == [2, 2, 2]


async def test_a_bad_history_is_rejected_whole_and_the_others_go_in() -> None:
    lines = history_lines(DOC, YEAR, 4, seed=9)
    # the third case's reply is dated before its acceptance
    accept = next(s for s in lines[2]["steps"] if s["step"] == "accept")
    reply = next(s for s in lines[2]["steps"] if s["step"] == "reply")
    before = datetime.fromisoformat(accept["at"]) - timedelta(hours=1)
    reply["at"] = before.isoformat(timespec="minutes")
    w = World(Faults(), parse_district(DOC))
    cases = history.parse_histories(text_of(lines), district_id=None)
    outcomes = await import_all(w, cases)
    rejected = [o for o in outcomes if o.startswith("rejected")]
    assert len(rejected) == 1 and outcomes.count("created") == 3
    assert "occurred_at: is before the case was accepted" in rejected[0]
    bad = cases[2]
    assert bad.history is not None
    # nothing of it was written anywhere: not registered, no record, no event
    assert await w.stores["intake"].inner.get("cases", bad.history.ctx.case_id) is None
    assert await w.stores["assignment"].inner.get("cases", bad.history.ctx.case_id) is None
    assert all(decode_event(v).case_id != bad.history.ctx.case_id for _k, v in w.bus)


async def test_a_live_case_takes_no_history() -> None:
    lines = history_lines(DOC, YEAR, 1, seed=3)
    w = World(Faults(), parse_district(DOC))
    procs = w.boot()
    intake, assignment, _c = procs.intake, procs.assignment, procs.consumers
    (case,) = history.parse_histories(text_of(lines), district_id=None)
    assert case.register is not None and case.history is not None
    case.register.history_source = ""  # registered as a live petition: routed by the table
    await intake.register(case.register)
    await _consume(w, assignment)
    req = apb.ImportHistoryRequest()
    req.CopyFrom(case.history)
    req.ctx.actor.CopyFrom(OFFICE)
    with pytest.raises(FailedPrecondition) as info:
        await assignment.import_history(req)
    assert "not with a history" in info.value.message


# ---- reading the file ----------------------------------------------------------------


def test_a_history_file_is_told_from_a_file_of_petitions() -> None:
    assert history.is_history(text_of(history_lines(DOC, YEAR, 1)))
    assert not history.is_history('{"district_id": "d1", "channel": "letter"}\n')
    assert not history.is_history("")


def test_the_file_reads_into_a_registration_and_its_steps() -> None:
    lines = history_lines(DOC, YEAR, 1, seed=4)
    (case,) = history.parse_histories(text_of(lines), district_id=None)
    assert case.error is None and case.register is not None and case.history is not None
    assert case.register.history_source == lines[0]["source_id"]
    assert case.register.request_id == f"history:{lines[0]['source_id']}"
    kinds = [s.WhichOneof("step") for s in case.history.steps]
    assert kinds == [s["step"] for s in lines[0]["steps"]]
    route = case.history.steps[0].route
    assert route.unit_id == lines[0]["steps"][0]["unit_id"]
    assert route.ctx.HasField("occurred_at")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: o.pop("source_id"), "source_id: is required"),
        (lambda o: o["steps"].append({"step": "sing", "at": "2025-05-01T10:00"}), "step: 'sing'"),
        (lambda o: o["steps"][0].pop("at"), "steps[0].at: is required"),
        (lambda o: o["steps"][0].update(decision="maybe"), "steps[0].decision: 'maybe'"),
        (lambda o: o["steps"][2].update(colour="red"), "steps[2].colour: not a field of accept"),
        (lambda o: o["registration"].update(channel="pigeon"), "registration.channel"),
        (lambda o: o.update(steps=[]), "steps: a list of at least one step"),
        (lambda o: o.update(extra=1), "unknown keys extra"),
    ],
)
def test_a_line_that_cannot_be_read_is_that_case_s_error(change: Any, reason: str) -> None:
    lines = history_lines(DOC, YEAR, 2, seed=4)
    change(lines[1])
    first, second = history.parse_histories(text_of(lines), district_id=None)
    assert first.error is None
    assert second.error is not None and reason in second.error, second.error


async def test_a_history_registration_s_clocks_wait_for_its_steps() -> None:
    """Its clocks are long due when it is registered; the scanner leaves them
    (the case's ``history_hold``) until its steps, which stop them, begin to
    come, or the hold runs out."""
    lines = history_lines(DOC, YEAR, 1, seed=6)
    w = World(Faults(), parse_district(DOC))
    procs = w.boot()
    intake, assignment, consumers = procs.intake, procs.assignment, procs.consumers
    (case,) = history.parse_histories(text_of(lines), district_id=None)
    assert case.register is not None and case.history is not None
    await intake.register(case.register)
    await _consume(w, assignment)
    await _consume_batches(w, consumers)
    clocks = w.stores["supervision"].inner
    cid = case.history.ctx.case_id
    held = await clocks.get("clocks", f"{cid}:register_and_route")
    assert held is not None and held["open"]
    record = await clocks.get("cases", cid)
    assert record is not None and record["history_hold"] - held["_written_at"] == HISTORY_SETTLE
    assert judge(held, record, "due", held["_written_at"] + timedelta(minutes=1)) is None
    later = held["_written_at"] + HISTORY_SETTLE + timedelta(seconds=1)
    assert judge(held, record, "due", later)  # held no longer: a breach and its order
    req = apb.ImportHistoryRequest()
    req.CopyFrom(case.history)
    req.ctx.actor.CopyFrom(OFFICE)
    await assignment.import_history(req)
    await _consume(w, assignment)
    await _consume_batches(w, consumers)
    for kind in ("register_and_route", "written_notice"):
        done = await clocks.get("clocks", f"{cid}:{kind}")
        assert done is not None and not done["open"]
    record = await clocks.get("cases", cid)
    assert record is not None and "history_hold" not in record
