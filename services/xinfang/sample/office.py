"""What the sample district's office and units do with each case, planned
ahead from a seed: every step with the moment it happened.

The demo needs cases that went through their life the way an office's do:
routed within days of arrival, the written notice sent, accepted by the unit,
settled up the 民事直说 ladder within each tier's time box, now and then
extended, answered, rated, reviewed or come back, and a few left to run
late. A plan is checked step by step against the real state machine
(``assignment.lifecycle``) at the moment the step happens, so a plan the
service would refuse is never made; steps after ``now`` are not taken yet,
which leaves the cases of the last weeks open, as they would be.

Pure: no I/O, the same seed and case give the same plan. The runner
(``sample.demo``) decides how each step reaches the services.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import reduce

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.routing import DECISIONS, route
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event
from xinfang.core.districts import District
from xinfang.core.errors import FailedPrecondition
from xinfang.intake.domain import GROUP_MIN_PEOPLE, case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb

__all__ = ["OFFICE", "CasePlan", "Step", "plan_case", "plan_office", "repeat_counts"]

OFFICE = "demo-office"
_APPROVER = "demo-leader"
_OPENS = time(8, 30)
_OFFICE_MINUTES = 9 * 60

# shares, per case
_LATE_NOTICE = 0.03  # the written notice goes out after its 15 days
_OUT_LITIGATION = 0.08  # of labour and social-security matters: to arbitration (诉访分离)
_OBJECT = 0.02  # the unit objects to the remit (Art. 23)
_EXTEND = 0.06  # handling extended (Art. 34), departments' cases
_LATE = 0.08  # handling runs past its 60 days, departments' cases
_ESCALATE_DEPARTMENT = 0.05  # a department's case goes to a county-level leader
_RESOLVED = 0.86
_RATED = 0.8
_REVIEW_IF_DISSATISFIED = 0.35
_BACKFLOW = 0.03
# the chance a case is settled at each tier of the ladder, before it climbs
_SETTLE_AT: dict[int, float] = {
    ev.TIER_VILLAGE_MEDIATION: 0.55,
    ev.TIER_TOWNSHIP: 0.6,
    ev.TIER_TOWNSHIP_JOINT_MEETING: 0.65,
    ev.TIER_TOWNSHIP_LEADER_PACKAGE: 0.8,
    ev.TIER_DISTRICT_LEADER_PACKAGE: 1.0,
}
_LITIGATION_CATEGORIES = frozenset({"labour_wages", "social_security"})
_TO_COURT = "依法通过仲裁诉讼途径解决"
_WHY_EXTEND = "情况复杂，需进一步调查核实"


@dataclass(frozen=True)
class Step:
    """One command as it happened: when, by whom (the petition office, or the
    unit the case is with) and what."""

    at: datetime
    command: lc.Command
    role: str = "office"
    unit_id: str = ""

    def actor(self) -> ev.Actor:
        if self.role == "unit":
            return ev.Actor(user_id=f"{OFFICE}-{self.unit_id}", role="unit", unit_id=self.unit_id)
        return ev.Actor(user_id=OFFICE, role="office")


@dataclass(frozen=True)
class CasePlan:
    case_id: str
    received_at: datetime
    steps: tuple[Step, ...]  # taken before ``now``, oldest first
    late: bool  # drawn to run late (its handling, or its notice)


def repeat_counts(requests: Iterable[ipb.RegisterPetitionRequest]) -> list[int]:
    """Each petition's earlier petitions on the same matter (same person, same
    category), in the order given: what intake counts when they are
    registered in that order. The identity never leaves this function."""
    seen: dict[tuple[str, str], int] = {}
    out: list[int] = []
    for r in requests:
        key = (r.petitioner.id_number.upper(), r.category)
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


def plan_office(
    district: District,
    requests: Iterable[ipb.RegisterPetitionRequest],
    *,
    seed: int,
    now: datetime,
) -> Iterator[CasePlan]:
    """The plan of every petition, in the order given (oldest first)."""
    reqs = list(requests)
    for req, repeats in zip(reqs, repeat_counts(reqs), strict=True):
        yield plan_case(district, req, repeat_count=repeats, seed=seed, now=now)


def plan_case(
    district: District,
    req: ipb.RegisterPetitionRequest,
    *,
    repeat_count: int,
    seed: int,
    now: datetime,
) -> CasePlan:
    case_id = case_id_for(req.district_id, req.request_id)
    rng = random.Random(f"{seed}:{case_id}")
    received = req.received_at.ToDatetime(tzinfo=UTC)
    state = lc.CaseState(
        case_id=case_id,
        district_id=req.district_id,
        version=1,
        status=lc.Status.REGISTERED,
        received_at=received,
        channel=req.channel,
        category=req.category,
        township_id=req.township_id,
        people_count=req.people_count,
        group=req.people_count >= GROUP_MIN_PEOPLE,
        escalated=req.escalated,
        higher_level=req.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
        repeat_count=repeat_count,
    )
    p = _Planner(district, rng, state, now)
    late = p.run()
    return CasePlan(case_id, received, tuple(p.steps), late)


class _Stop(Exception):
    """The plan reached ``now``: the rest has not happened yet."""


class _Planner:
    def __init__(
        self, district: District, rng: random.Random, state: lc.CaseState, now: datetime
    ) -> None:
        self.d = district
        self.rng = rng
        self.state = state
        self.now = now
        self.steps: list[Step] = []

    # ---- time ---------------------------------------------------------------

    def after(self, at: datetime, days: float) -> datetime:
        """A moment in office hours on a working day, about ``days`` after ``at``
        and always after it."""
        local = (at + timedelta(days=days)).astimezone(SHANGHAI)
        day = self.d.calendar.next_working_day(local.date())
        minute = self.rng.randrange(_OFFICE_MINUTES)
        moment = datetime.combine(day, _OPENS, tzinfo=SHANGHAI) + timedelta(minutes=minute)
        while moment <= at:  # same day, earlier hour: the next working day instead
            day = self.d.calendar.next_working_day(day + timedelta(days=1))
            moment = datetime.combine(day, _OPENS, tzinfo=SHANGHAI) + timedelta(minutes=minute)
        return moment.astimezone(UTC)

    def last(self) -> datetime:
        return self.steps[-1].at if self.steps else self.state.received_at

    # ---- steps --------------------------------------------------------------

    def take(self, at: datetime, cmd: lc.Command, role: str = "office") -> None:
        """Record a step, checked by the state machine as of ``at``."""
        if at >= self.now:
            raise _Stop
        unit = self.state.unit_id if role == "unit" else ""
        payloads = lc.decide(self.state, cmd, self.ctx(at, role, unit))
        v = self.state.version
        events = [
            new_event(
                case_id=self.state.case_id,
                district_id=self.state.district_id,
                producer="sample",
                case_version=v + i + 1,
                occurred_at=at,
                payload=pl,
            )
            for i, pl in enumerate(payloads)
        ]
        self.state = reduce(lc.apply, events, self.state)
        self.steps.append(Step(at, cmd, role, unit))

    def ctx(self, at: datetime, role: str, unit_id: str) -> lc.Ctx:
        """The context the service judges the step in: entered now, as of ``at``."""
        return lc.Ctx(district=self.d, now=self.now, role=role, unit_id=unit_id,
                      occurred_at=at, entry=ev.ENTRY_HISTORY)  # fmt: skip

    def run(self) -> bool:
        """Plan the case; True if it was drawn to run late."""
        r = self.rng
        late = r.random() < _LATE
        late_notice = r.random() < _LATE_NOTICE
        try:
            if not self.route():
                return False
            if late_notice:
                at = self.after(self.state.received_at, r.uniform(16, 22))
            else:
                at = self.after(self.last(), r.uniform(0, 4))
            self.take(max(at, self.after(self.last(), 0)), lc.SendNotice())
            if self.state.status is not lc.Status.ROUTED:
                return late_notice  # out of the system: the notice says where to go
            if r.random() < _OBJECT:
                self.object()
            if self.state.status is not lc.Status.ROUTED:
                return late_notice
            self.take(self.after(self.last(), r.uniform(0.5, 3)), lc.AcceptCase(), "unit")
            late = self.handle(late)
            self.after_reply()
        except _Stop:
            pass
        return late or late_notice

    def route(self) -> bool:
        """The register-and-route decision, within days of arrival: the
        routing table's, or arbitration for some labour matters."""
        s = self.state
        row = route(self.d.routing, s.category, s.township_id)
        if row is None:
            return False  # waits for the office to route it by hand
        at = self.after(s.received_at, self.rng.uniform(0, 2))
        if (
            s.category in _LITIGATION_CATEGORIES
            and "u-court" in self.d.units
            and self.rng.random() < _OUT_LITIGATION
        ):
            cmd = lc.RouteCase(ev.ROUTING_DECISION_OUT_LITIGATION, "u-court", _TO_COURT)
        else:
            cmd = lc.RouteCase(DECISIONS[row.decision], row.unit_id, "")
        self.take(at, cmd)
        return True

    def object(self) -> None:
        """The unit says the matter is not its own, within its window; the
        table names the next unit. Planned only when there is one."""
        objection = lc.ObjectRemit("不属于本单位职责范围")
        at = self.after(self.last(), self.rng.uniform(0.5, 2))
        if at >= self.now:
            raise _Stop
        try:
            payloads = lc.decide(self.state, objection, self.ctx(at, "unit", self.state.unit_id))
        except FailedPrecondition:
            return  # the window closed (a late notice came first)
        if any(isinstance(p, ev.CaseRouted) for p in payloads):
            self.take(at, objection, "unit")

    def handle(self, late: bool) -> bool:
        """From acceptance to the reply: up the ladder within each tier's time
        box, or (a department's case) extended, escalated or run late."""
        r = self.rng
        s = self.state
        assert s.accepted_at is not None
        accepted = s.accepted_at
        due = lc.handling_due(s, self.d)
        assert due is not None
        if s.tier == ev.TIER_UNSPECIFIED:  # a department's case: no tier box
            if r.random() < _ESCALATE_DEPARTMENT:
                self.take(self.after(self.last(), r.uniform(3, 20)), lc.Escalate("部门协调未果"))
                return self.on_tier(due, late=False)
            if late:  # the unit lets it run past its 60 days: supervision follows
                self.take(self.after(accepted, r.uniform(62, 120)), self.reply(), "unit")
                return True
            if r.random() < _EXTEND:
                ext = self.after(accepted, r.uniform(40, 55))
                self.take(ext, lc.ExtendHandling(30, _APPROVER, _WHY_EXTEND), "unit")
                self.take(self.after(accepted, r.uniform(61, 85)), self.reply(), "unit")
                return False
            self.take(self.after(accepted, r.triangular(5, 55, 20)), self.reply(), "unit")
            return False
        return self.on_tier(due, late=False)

    def on_tier(self, due: datetime, *, late: bool) -> bool:
        """Settle at this tier within its time box, or climb one rung before
        the box runs out; the reply always comes before handling falls due."""
        r = self.rng
        while True:
            s = self.state
            start = self.last()
            box = self.d.deadline(
                "tier_" + ev.Tier.Name(ev.Tier.ValueType(s.tier)).removeprefix("TIER_").lower(),
                start,
            ).due_at
            end = min(box, due) - timedelta(days=1)
            span = max(0.5, (end - start).total_seconds() / 86400 - 1)
            at = self.after(start, r.uniform(0.5, span))
            if at >= end:
                at = self.after(start, 0.2)
            climb = s.tier != ev.TIER_DISTRICT_LEADER_PACKAGE and r.random() >= _SETTLE_AT.get(
                s.tier, 1.0
            )
            if climb and at + timedelta(days=10) < due:
                self.take(at, lc.Escalate("调解未果，提级化解"))
                continue
            self.take(at, self.reply(), "unit")
            return late

    def reply(self) -> lc.Reply:
        return lc.Reply(resolved=self.rng.random() < _RESOLVED)

    def after_reply(self) -> None:
        """Rating, review, backflow: what petitioners do with the answer."""
        r = self.rng
        if self.state.status is not lc.Status.REPLIED:
            return
        resolved = self.state.resolved
        if r.random() < _RATED:
            roll = r.random()
            if not resolved:
                roll *= 0.6  # unresolved answers please fewer people
            rating = (
                ev.SATISFACTION_SATISFIED
                if roll > 0.3
                else ev.SATISFACTION_BASICALLY
                if roll > 0.12
                else ev.SATISFACTION_DISSATISFIED
            )
            self.take(self.after(self.last(), r.uniform(1, 10)), lc.RateSatisfaction(rating))
            if rating == ev.SATISFACTION_DISSATISFIED and r.random() < _REVIEW_IF_DISSATISFIED:
                self.take(self.after(self.last(), r.uniform(2, 15)), lc.RequestReview())
                upheld = r.random() < 0.8
                self.take(self.after(self.last(), r.uniform(8, 25)), lc.DecideReview(upheld))
                return
        if resolved and r.random() < _BACKFLOW:
            back = lc.ReopenBackflow("化解后再次反映")
            self.take(self.after(self.last(), r.uniform(20, 80)), back)
            self.take(self.after(self.last(), r.uniform(10, 40)), self.reply(), "unit")
