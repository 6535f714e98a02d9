"""What each event adds to the units' and leaders' monthly tallies, and the
clock operations that move a deadline or mark a clock noticed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event
from xinfang.supervision.clocks import ClockOp, Moved, apply_ops, day_key
from xinfang.supervision.tallies import tally_deltas

from .test_clock_ops import at
from .test_supervision_clocks import small_district

H = ev.CLOCK_KIND_HANDLING
R = ev.CLOCK_KIND_REMIT_OBJECTION


def event(**payload: Any) -> ev.CaseEvent:
    return new_event(case_id="c", district_id="d", producer="t", case_version=1, **payload)


def handling(start: datetime, stop: datetime) -> Any:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, start)], d, "c", "u1", "")
    return apply_ops(started.doc, [ClockOp("stop", H, stop)], d, "c", "u1", "")


def test_a_late_reply_counts_resolved_late_and_its_overdue_days_for_unit_and_leader() -> None:
    stopped = handling(at(2025, 6, 2), at(2025, 8, 5))  # due 2025-08-02 00:00
    deltas = tally_deltas(event(reply_issued=ev.ReplyIssued()), "u1", "l1", False, {H: stopped})
    want = {"resolved": 1, "overdue_days": 4}
    assert deltas == [("unit", "u1", want), ("leader", "l1", want)]


def test_an_on_time_acceptance_counts_for_the_unit_only_without_a_leader() -> None:
    d = small_district()
    remit = apply_ops(None, [ClockOp("start", R, at(2025, 6, 2))], d, "c", "u1", "")
    stopped = apply_ops(remit.doc, [ClockOp("stop", R, at(2025, 6, 3))], d, "c", "u1", "")
    deltas = tally_deltas(
        event(accepted=ev.CaseAccepted(unit_id="u1")), "u1", "", False, {R: stopped}
    )
    assert deltas == [("unit", "u1", {"accepted": 1, "accepted_on_time": 1})]


def test_an_escalated_routing_counts_against_the_unit_routed_to_never_the_leader() -> None:
    routed = event(routed=ev.CaseRouted(unit_id="u9", decision=ev.ROUTING_DECISION_ACCEPT))
    assert tally_deltas(routed, "", "l1", True, {}) == [("unit", "u9", {"escalated_petitions": 1})]
    assert tally_deltas(routed, "", "l1", False, {}) == []


def test_a_supervision_order_counts_for_whom_it_names_and_nothing_else() -> None:
    order = event(supervision_order_issued=ev.SupervisionOrderIssued(unit_id="u2", leader_id="l2"))
    stopped = handling(at(2025, 6, 2), at(2025, 8, 5))
    assert tally_deltas(order, "u1", "l1", False, {H: stopped}) == [
        ("unit", "u2", {"supervision_orders": 1}),
        ("leader", "l2", {"supervision_orders": 1}),
    ]


def test_ratings_and_backflow() -> None:
    rated = event(satisfaction_rated=ev.SatisfactionRated(rating=ev.SATISFACTION_BASICALLY))
    assert tally_deltas(rated, "u1", "", False, {}) == [
        ("unit", "u1", {"rated": 1, "basically_satisfied": 1})
    ]
    back = event(backflow_reopened=ev.BackflowReopened())
    assert tally_deltas(back, "", "l1", False, {}) == [("leader", "l1", {"backflow": 1})]


def test_a_move_applies_once_and_only_to_the_clock_it_was_computed_from() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "u1", "").doc
    new_due = started["due_at"] + timedelta(days=3)
    moved = Moved(started["warn_at"] + timedelta(days=3), False, started["started_at"], 0)
    move = ClockOp("move", H, new_due, moved=moved)
    res = apply_ops({**started, "warned": True}, [move], d, "c", "u1", "")
    assert res.doc["due_at"] == new_due and not res.doc["warned"]
    assert res.stats == {f"due.{started['due_day']}": -1, f"due.{day_key(new_due)}": 1}
    assert ("due", day_key(new_due)) in res.indexed
    again = apply_ops(res.doc, [move], d, "c", "u1", "")  # a redelivery: nothing moves
    assert again.doc == res.doc and again.stats == {}
    # extended since the move was computed: the move is stale, the clock keeps its deadline
    extended = apply_ops(started, [ClockOp("extend", H, at(2025, 6, 9), days=10)], d, "c", "u1", "")
    stale = apply_ops(extended.doc, [move], d, "c", "u1", "")
    assert stale.doc == extended.doc and stale.stats == {}


def test_a_notice_marks_the_clock_only_for_the_deadline_it_was_about() -> None:
    d = small_district()
    started = apply_ops(None, [ClockOp("start", H, at(2025, 6, 2))], d, "c", "u1", "").doc
    warned = apply_ops(started, [ClockOp("warned", H, started["due_at"])], d, "c", "u1", "")
    assert warned.doc["warned"] and warned.stats == {}
    old = apply_ops(
        started, [ClockOp("breached", H, started["due_at"] - timedelta(days=1))], d, "c", "u1", ""
    )
    assert not old.doc.get("breached")
