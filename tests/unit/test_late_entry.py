"""Late entry (补录) on the pure lifecycle: when a step says it happened
(``Ctx.occurred_at``), ``check_when`` refuses a time that cannot be right
and every rule of the step is judged at that time; ``history`` runs an
imported history through the same rules, whole or not at all.

Reuses the case builders of ``test_lifecycle`` (the sample district, a case
received Monday 3 March 2025, routed on the 5th, accepted on the 6th).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.unit.test_lifecycle import (
    ACCEPTED_AT,
    DISTRICT,
    DOC,
    OBJECTION_DUE,
    ROUTED_AT,
    TOWN_UNIT,
    accepted,
    ctx,
    registered,
    routed,
    sh,
)
from xinfang.assignment import lifecycle as lc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import from_timestamp
from xinfang.core.districts import parse_district
from xinfang.core.errors import FailedPrecondition, InvalidArgument


def late(now: datetime, at: datetime | None, reason: str = "", **kw: object) -> lc.Ctx:
    return replace(ctx(now, **kw), occurred_at=at, late_reason=reason)  # type: ignore[arg-type]


def unit_late(now: datetime, at: datetime, reason: str = "") -> lc.Ctx:
    return replace(late(now, at, reason), role="unit", unit_id=TOWN_UNIT)


def refusal(state: lc.CaseState, cmd: lc.Command, c: lc.Ctx) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        lc.decide(state, cmd, c)
    return info.value


# ---- the time itself ---------------------------------------------------------------


def test_a_step_in_the_future_is_refused() -> None:
    now = sh(2025, 3, 6, 9)
    e = refusal(routed(), lc.AcceptCase(), unit_late(now, now + timedelta(hours=1)))
    assert e.field == "occurred_at"
    assert "is in the future" in e.message


def test_a_clock_a_few_seconds_ahead_is_taken_as_now() -> None:
    now = sh(2025, 3, 6, 9)
    c = lc.check_when(routed(), unit_late(now, now + timedelta(seconds=20)))
    assert c.at == now
    assert c.entry_mode == ev.ENTRY_UNSPECIFIED  # it happened now: a live step


def test_a_step_before_the_previous_step_is_refused_naming_it() -> None:
    now = sh(2025, 3, 10)
    before_routing = ROUTED_AT - timedelta(hours=2)
    e = refusal(routed(), lc.AcceptCase(), unit_late(now, before_routing, "paper file"))
    assert e.message == "occurred_at: is before the case was routed (2025-03-05 10:00)"


def test_a_step_before_the_petition_was_received_is_refused() -> None:
    s = registered()
    e = refusal(
        s,
        lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, TOWN_UNIT),
        late(sh(2025, 3, 4), s.received_at - timedelta(minutes=1)),
    )
    assert e.message == "occurred_at: is before the petition was received (2025-03-03 09:00)"


def test_a_step_at_the_same_time_as_the_previous_one_is_taken() -> None:
    s = routed()
    payloads = lc.decide(s, lc.AcceptCase(), unit_late(sh(2025, 3, 5, 12), ROUTED_AT))
    assert [type(p) for p in payloads] == [ev.CaseAccepted]


def test_a_step_older_than_the_window_is_refused() -> None:
    s = routed()
    at = ACCEPTED_AT
    now = at + timedelta(days=30, minutes=1)
    e = refusal(s, lc.AcceptCase(), unit_late(now, at, "entered from the paper register"))
    assert e.field == "occurred_at"
    assert "more than 30 days ago" in e.message and "within 30 days" in e.message
    # just inside the window it is taken
    inside = lc.decide(s, lc.AcceptCase(), unit_late(at + timedelta(days=29), at, "paper"))
    assert [type(p) for p in inside] == [ev.CaseAccepted]


def test_the_district_sets_the_window() -> None:
    wide = parse_district({**DOC, "late_entry_days": 90})
    assert wide.late_entry_days == 90 and DISTRICT.late_entry_days == 30
    s = routed()
    c = replace(unit_late(ACCEPTED_AT + timedelta(days=60), ACCEPTED_AT, "paper"), district=wide)
    assert [type(p) for p in lc.decide(s, lc.AcceptCase(), c)] == [ev.CaseAccepted]
    narrow = parse_district({**DOC, "late_entry_days": 0})
    c = replace(unit_late(ACCEPTED_AT + timedelta(hours=1), ACCEPTED_AT), district=narrow)
    assert refusal(s, lc.AcceptCase(), c).field == "occurred_at"


@pytest.mark.parametrize("value", [-1, 367, "30", 2.5, True])
def test_a_bad_window_is_refused_when_the_district_is_loaded(value: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_district({**DOC, "late_entry_days": value})
    assert info.value.field == "late_entry_days"


def test_more_than_a_day_late_needs_a_reason() -> None:
    s = routed()
    now = ACCEPTED_AT + timedelta(days=1, minutes=1)
    e = refusal(s, lc.AcceptCase(), unit_late(now, ACCEPTED_AT, "  "))
    assert e.field == "late_reason"
    ok = lc.decide(s, lc.AcceptCase(), unit_late(now, ACCEPTED_AT, "the clerk was away"))
    assert [type(p) for p in ok] == [ev.CaseAccepted]


def test_less_than_a_day_late_needs_no_reason() -> None:
    now = ACCEPTED_AT + timedelta(hours=23)
    c = unit_late(now, ACCEPTED_AT)
    assert [type(p) for p in lc.decide(routed(), lc.AcceptCase(), c)] == [ev.CaseAccepted]
    assert c.entry_mode == ev.ENTRY_LATE


def test_a_live_step_is_not_checked_against_the_past() -> None:
    c = ctx(sh(2025, 3, 6))
    assert lc.check_when(routed(), c) is c
    assert c.entry_mode == ev.ENTRY_UNSPECIFIED and c.at == c.now


# ---- the step's rules are judged when it happened ------------------------------------


def test_an_objection_entered_after_its_window_closed_counts_when_it_was_made() -> None:
    s = routed()
    made = OBJECTION_DUE - timedelta(hours=3)
    now = OBJECTION_DUE + timedelta(days=2)
    live = ctx(now, "unit", TOWN_UNIT)
    with pytest.raises(FailedPrecondition):
        lc.decide(s, lc.ObjectRemit("not ours"), live)
    payloads = lc.decide(s, lc.ObjectRemit("not ours"), unit_late(now, made, "letter came late"))
    assert isinstance(payloads[0], ev.RemitObjected)


def test_an_objection_made_after_its_window_is_refused_even_when_entered_late() -> None:
    s = routed()
    made = OBJECTION_DUE + timedelta(hours=1)
    with pytest.raises(FailedPrecondition) as info:
        lc.decide(s, lc.ObjectRemit("not ours"), unit_late(made + timedelta(days=3), made, "x"))
    assert "objection window" in info.value.message


def test_a_late_reply_carries_when_it_was_issued() -> None:
    s = accepted()
    issued = sh(2025, 3, 20, 15)
    (reply,) = lc.decide(s, lc.Reply(resolved=True), unit_late(sh(2025, 3, 24), issued, "x"))
    assert isinstance(reply, ev.ReplyIssued)
    assert from_timestamp(reply.replied_at) == issued


def test_apply_remembers_the_latest_step() -> None:
    s = accepted()
    assert s.last_at == ACCEPTED_AT and s.last_step == "accepted"
    assert lc.previous_step(s) == (ACCEPTED_AT, "accepted")


def test_a_snapshot_without_the_latest_step_falls_back_to_the_known_times() -> None:
    doc = lc.to_doc(accepted())
    del doc["last_at"], doc["last_step"]
    old = lc.from_doc(doc)
    assert old.last_at is None
    assert lc.previous_step(old) == (ACCEPTED_AT, "accepted")
    e = refusal(old, lc.Reply(True), unit_late(sh(2025, 3, 7), ROUTED_AT))
    assert e.message == "occurred_at: is before the case was accepted (2025-03-06 10:00)"


# ---- imported histories --------------------------------------------------------------

YEAR_LATER = sh(2026, 3, 3)


def a_history() -> list[tuple[lc.Command, datetime]]:
    return [
        (lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, TOWN_UNIT), ROUTED_AT),
        (lc.SendNotice(), ROUTED_AT + timedelta(hours=1)),
        (lc.AcceptCase(), ACCEPTED_AT),
        (lc.Reply(resolved=True), sh(2025, 3, 20)),
        (lc.RateSatisfaction(ev.SATISFACTION_SATISFIED), sh(2025, 3, 22)),
    ]


def history_ctx() -> lc.Ctx:
    return replace(ctx(YEAR_LATER), late_reason="history: old-xf:17", entry=ev.ENTRY_HISTORY)


def test_a_history_a_year_old_is_taken_whole() -> None:
    events, after = lc.history(registered(), a_history(), history_ctx())
    assert [e.WhichOneof("payload") for e in events] == [
        "routed",
        "notice_sent",
        "accepted",
        "reply_issued",
        "satisfaction_rated",
    ]
    assert [e.case_version for e in events] == [2, 3, 4, 5, 6]
    assert all(e.entry == ev.ENTRY_HISTORY for e in events)
    assert all(e.late_reason == "history: old-xf:17" for e in events)
    assert from_timestamp(events[2].occurred_at) == ACCEPTED_AT
    assert from_timestamp(events[2].recorded_at) == YEAR_LATER
    assert after.status is lc.Status.REPLIED and after.version == 6
    assert after.rating == ev.SATISFACTION_SATISFIED
    assert after.accepted_at == ACCEPTED_AT


def test_the_same_steps_entered_late_one_by_one_are_refused_by_the_window() -> None:
    cmd, at = a_history()[0]
    e = refusal(registered(), cmd, late(YEAR_LATER, at, "moved from the old system"))
    assert e.field == "occurred_at" and "30 days" in e.message


def test_a_history_out_of_order_is_refused_naming_the_step() -> None:
    steps = a_history()
    steps[3] = (steps[3][0], ROUTED_AT - timedelta(days=1))
    with pytest.raises(InvalidArgument) as info:
        lc.history(registered(), steps, history_ctx())
    assert info.value.field == "steps[3].occurred_at"
    assert "is before the case was accepted" in info.value.message


def test_a_history_with_an_illegal_step_is_refused_naming_it() -> None:
    steps = a_history()
    steps.insert(1, (lc.Reply(resolved=True), ROUTED_AT + timedelta(minutes=30)))
    with pytest.raises(FailedPrecondition) as info:
        lc.history(registered(), steps, history_ctx())
    assert info.value.message.startswith("steps[1] (Reply): case case-1 is routed")


def test_a_history_in_the_future_is_refused() -> None:
    steps = a_history()
    steps[-1] = (steps[-1][0], YEAR_LATER + timedelta(days=1))
    with pytest.raises(InvalidArgument) as info:
        lc.history(registered(), steps, history_ctx())
    assert info.value.field == "steps[4].occurred_at"


def test_an_empty_history_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        lc.history(registered(), [], history_ctx())
    assert info.value.field == "steps"
