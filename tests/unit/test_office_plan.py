"""The sample office's plans are what the demo's figures stand on: a plan the
service would refuse, a step after ``now``, a tier left past its time box or
a notice never sent would make the demo say something that did not happen."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xinfang.assignment import lifecycle as lc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.districts import District, parse_district
from xinfang.intake.domain import GROUP_MIN_PEOPLE, case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.sample.demo import YEARLY_CHANGE, span, volume
from xinfang.sample.generator import petitions, sample_district
from xinfang.sample.office import CasePlan, plan_office, repeat_counts

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
PER_YEAR = 600


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return sample_district()


@pytest.fixture(scope="module")
def district(doc: dict[str, Any]) -> District:
    return parse_district(doc)


@pytest.fixture(scope="module")
def reqs(doc: dict[str, Any]) -> list[ipb.RegisterPetitionRequest]:
    start, end = span(NOW.astimezone(SHANGHAI).date())
    n = volume(PER_YEAR, start, end)
    return list(petitions(doc, n, seed=7, start=start, end=end, yearly_change=YEARLY_CHANGE))


@pytest.fixture(scope="module")
def plans(district: District, reqs: list[ipb.RegisterPetitionRequest]) -> list[CasePlan]:
    return list(plan_office(district, reqs, seed=7, now=NOW))


def _registered(req: ipb.RegisterPetitionRequest, repeats: int) -> lc.CaseState:
    return lc.CaseState(
        case_id=case_id_for(req.district_id, req.request_id),
        district_id=req.district_id,
        version=1,
        status=lc.Status.REGISTERED,
        received_at=req.received_at.ToDatetime(tzinfo=UTC),
        channel=req.channel,
        category=req.category,
        township_id=req.township_id,
        people_count=req.people_count,
        group=req.people_count >= GROUP_MIN_PEOPLE,
        escalated=req.escalated,
        higher_level=req.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
        repeat_count=repeats,
    )


def test_two_years_drifting_down(reqs: list[ipb.RegisterPetitionRequest]) -> None:
    years = Counter(r.received_at.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI).year for r in reqs)
    assert set(years) == {2025, 2026}
    assert PER_YEAR * 0.9 < years[2025] < PER_YEAR * 1.05
    # eleven months of 2026 at a tenth less a year
    assert years[2026] < years[2025] * 11 / 12


def test_every_plan_is_accepted_as_an_imported_history(
    district: District, reqs: list[ipb.RegisterPetitionRequest], plans: list[CasePlan]
) -> None:
    """What ImportHistory checks: each step through the lifecycle at its own
    time, never before the previous one."""
    ctx = lc.Ctx(district=district, now=NOW, role="office", entry=ev.ENTRY_HISTORY)
    for req, repeats, plan in zip(reqs, repeat_counts(reqs), plans, strict=True):
        if not plan.steps:
            continue
        lc.history(_registered(req, repeats), [(s.command, s.at) for s in plan.steps], ctx)


def test_steps_in_the_late_entry_window_are_accepted_one_by_one(
    district: District, reqs: list[ipb.RegisterPetitionRequest], plans: list[CasePlan]
) -> None:
    """The steps of the last weeks, entered late (补录) by whoever took them:
    inside the district's window, with a reason, each after the one before."""
    cutover = NOW - timedelta(days=20)
    live = 0
    for req, repeats, plan in zip(reqs, repeat_counts(reqs), plans, strict=True):
        state = _registered(req, repeats)
        for step in plan.steps:
            actor = step.actor()
            ctx = lc.Ctx(district=district, now=NOW, role=actor.role, unit_id=actor.unit_id,
                         occurred_at=step.at, late_reason="据纸质台账补录")  # fmt: skip
            if step.at < cutover:
                ctx = replace(ctx, entry=ev.ENTRY_HISTORY)
            else:
                live += 1
            events, state = lc.history(state, [(step.command, step.at)], ctx)
            assert events
    assert live > 50


def test_no_step_is_in_the_future_and_time_runs_forward(plans: list[CasePlan]) -> None:
    for plan in plans:
        times = [plan.received_at, *(s.at for s in plan.steps)]
        assert times == sorted(times)
        assert all(t < NOW for t in times)


def test_steps_happen_in_office_hours_on_working_days(
    district: District, plans: list[CasePlan]
) -> None:
    for plan in plans:
        for s in plan.steps:
            local = s.at.astimezone(SHANGHAI)
            assert district.calendar.is_working_day(local.date())
            assert 8 * 60 + 30 <= local.hour * 60 + local.minute < 17 * 60 + 30


def test_the_written_notice_goes_out_mostly_in_time(
    district: District, plans: list[CasePlan]
) -> None:
    sent = on_time = 0
    for plan in plans:
        notices = [s for s in plan.steps if isinstance(s.command, lc.SendNotice)]
        routed = any(isinstance(s.command, lc.RouteCase) for s in plan.steps)
        later = len(plan.steps) > 2
        assert len(notices) <= 1
        assert notices or not later or not routed, plan.case_id
        for s in notices:
            sent += 1
            on_time += s.at < district.deadline("written_notice", plan.received_at).due_at
    assert sent > 0.9 * len(plans)
    assert 0.9 < on_time / sent < 1.0  # a few late, drawn so


def _tier_label(tier: int) -> str:
    return "tier_" + ev.Tier.Name(ev.Tier.ValueType(tier)).removeprefix("TIER_").lower()


def test_tiers_move_within_their_time_boxes_and_some_handling_runs_late(
    district: District, reqs: list[ipb.RegisterPetitionRequest], plans: list[CasePlan]
) -> None:
    """A tier's box running out makes the service escalate by itself, which
    the plan would then contradict: the ladder is climbed or settled inside
    each box. Handling runs late only where the plan says so, and some of
    those cases are overdue and open now, for supervision to act on."""
    ctx = lc.Ctx(district=district, now=NOW, role="office", entry=ev.ENTRY_HISTORY)
    overdue_open = late_replies = 0
    for req, repeats, plan in zip(reqs, repeat_counts(reqs), plans, strict=True):
        state = _registered(req, repeats)
        tier_since: datetime | None = None
        for step in plan.steps:
            before = state
            _events, state = lc.history(state, [(step.command, step.at)], ctx)
            if tier_since is not None and before.tier and before.status is lc.Status.ACCEPTED:
                box = district.deadline(_tier_label(before.tier), tier_since).due_at
                assert step.at < box, (plan.case_id, step)
            if isinstance(step.command, lc.ReopenBackflow):
                tier_since = None  # handling starts again; no tier box runs (clock_ops)
            elif state.tier != before.tier or before.status is not lc.Status.ACCEPTED:
                tier_since = step.at if state.status is lc.Status.ACCEPTED else None
            if isinstance(step.command, lc.Reply):
                due = lc.handling_due(before, district)
                assert due is not None
                if step.at >= due:
                    late_replies += 1
                    assert plan.late, plan.case_id
        if state.status is lc.Status.ACCEPTED:
            due = lc.handling_due(state, district)
            assert due is not None
            if due <= NOW:
                overdue_open += 1
                assert plan.late, plan.case_id
    assert late_replies > 5
    assert overdue_open > 0


def test_the_same_seed_gives_the_same_plans(
    district: District, reqs: list[ipb.RegisterPetitionRequest], plans: list[CasePlan]
) -> None:
    again = list(plan_office(district, reqs[:200], seed=7, now=NOW))
    assert again == plans[:200]
    other = list(plan_office(district, reqs[:200], seed=8, now=NOW))
    assert other != plans[:200]


def test_repeat_counts_follow_person_and_matter() -> None:
    def req(id_number: str, category: str) -> ipb.RegisterPetitionRequest:
        return ipb.RegisterPetitionRequest(
            category=category, petitioner=ipb.Petitioner(id_number=id_number)
        )

    rows = [req("11x", "a"), req("11X", "a"), req("22", "a"), req("11x", "b"), req("11x", "a")]
    assert repeat_counts(rows) == [0, 1, 0, 0, 2]
