"""Random command sequences against the lifecycle state machine.

A hypothesis ``RuleBasedStateMachine`` starts from a registered case and
issues every kind of command with valid-ish and invalid arguments, random
roles and units, and a clock that moves on by minutes to weeks (so windows
close). After every step it checks what must always hold: a refusal changes
nothing, the version counts the events, a final case is untouchable, at most
one extension and only upward tier moves per handling cycle, and the fields
that go with each status are there. Some commands are entered late (补录):
they are refused exactly when their time cannot be right, their rules are
judged at that time, and the case's steps never go back in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from google.protobuf.message import Message
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.lifecycle import LADDER, CaseState, Ctx, Status
from xinfang.assignment.routing import route
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI, compute_deadline
from xinfang.core.codec import new_event, payload_field, to_timestamp
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    XinfangError,
)
from xinfang.sample.generator import sample_district

from .test_lifecycle import EVERY_COMMAND

DISTRICT_ID = "d1"
DOC = sample_district(7, DISTRICT_ID)
FULL = parse_district(DOC)
# the same district with township t02's leader gone, and with no leaders at all
PARTIAL = parse_district({**DOC, "leaders": [ld for ld in DOC["leaders"] if ld["id"] != "l-t02"]})
BARE = parse_district({**DOC, "leaders": [], "reception": {}})

UNIT_IDS = sorted(FULL.units)
LEADER_IDS = sorted(FULL.leaders)
TOWNSHIPS = ["t01", "t02", "t03"]
# property disputes go to the township (the ladder), the rest to a department or the office
CATEGORIES = ["property_management"] * 3 + ["real_estate", "labour_wages", "other"]


def sh(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


RECEIVED = [
    sh(2025, 3, 3, 9),  # an ordinary Monday
    sh(2025, 6, 18, 15),  # a Wednesday
    sh(2025, 9, 29, 16),  # just before the National Day holidays
    sh(2026, 3, 12, 10),  # a Thursday on the reception rota
    sh(2026, 1, 1, 1, 30),  # the rota's first Thursday, Wednesday in UTC
    sh(2026, 12, 24, 11),  # the calendar's last covered year runs out soon after
]

UNIT_ONLY = (lc.AcceptCase, lc.ObjectRemit, lc.ExtendHandling, lc.Reply)
HANDLED = (
    Status.ACCEPTED,
    Status.REPLIED,
    Status.REVIEW_REQUESTED,
    Status.REVIEWED,
    Status.REREVIEW_REQUESTED,
    Status.FINAL,
)
REPLIED = (
    Status.REPLIED,
    Status.REVIEW_REQUESTED,
    Status.REVIEWED,
    Status.REREVIEW_REQUESTED,
    Status.FINAL,
)
NOT_FINAL = frozenset(Status) - {Status.FINAL}

# from which statuses each command may succeed
ALLOWED: dict[str, frozenset[Status]] = {
    "RouteCase": frozenset({Status.REGISTERED}),
    "SendNotice": NOT_FINAL,
    "AcceptCase": frozenset({Status.ROUTED}),
    "ObjectRemit": frozenset({Status.ROUTED}),
    "DesignateUnit": frozenset({Status.DISPUTED}),
    "Escalate": frozenset({Status.ACCEPTED}),
    "AssignLeader": frozenset({Status.ACCEPTED}),
    "RecordVisitOut": NOT_FINAL
    - {Status.REGISTERED, Status.DECLINED, Status.OUT_OF_SYSTEM, Status.DISPUTED},
    "ExtendHandling": frozenset({Status.ACCEPTED}),
    "Reply": frozenset({Status.ACCEPTED}),
    "RateSatisfaction": frozenset({Status.REPLIED, Status.REVIEWED}),
    "RequestReview": frozenset({Status.REPLIED}),
    "RequestReview+": frozenset({Status.REVIEWED}),
    "DecideReview": frozenset({Status.REVIEW_REQUESTED}),
    "DecideReview+": frozenset({Status.REREVIEW_REQUESTED}),
    "ReopenBackflow": frozenset({Status.REPLIED, Status.REVIEWED}),
    "StartHearing": frozenset({Status.REREVIEW_REQUESTED}),
    "EndHearing": frozenset({Status.REREVIEW_REQUESTED}),  # where a hearing can be open
}

ROLES = st.sampled_from(["office", "system", "unit", "unit", "leader"])
REASONS = st.sampled_from(["", "  ", "not ours", "情况复杂", "x"])
DECISIONS = st.sampled_from(
    [
        ev.ROUTING_DECISION_ACCEPT,
        ev.ROUTING_DECISION_ACCEPT,
        ev.ROUTING_DECISION_FORWARD,
        ev.ROUTING_DECISION_OUT_LITIGATION,
        ev.ROUTING_DECISION_OUT_DISCIPLINE,
        ev.ROUTING_DECISION_DECLINE,
        ev.ROUTING_DECISION_UNSPECIFIED,
        9,
    ]
)
UNITS = st.sampled_from([*UNIT_IDS, "", "u-nowhere"])
LEADERS = st.sampled_from([*LEADER_IDS, "", "l-nobody"])
RATINGS = st.sampled_from(
    [
        ev.SATISFACTION_UNSPECIFIED,
        ev.SATISFACTION_SATISFIED,
        ev.SATISFACTION_BASICALLY,
        ev.SATISFACTION_DISSATISFIED,
        7,
    ]
)
GAPS = st.one_of(
    st.timedeltas(timedelta(minutes=1), timedelta(days=2)),
    st.timedeltas(timedelta(days=2), timedelta(days=45)),
)
LOADS = st.dictionaries(st.sampled_from(LEADER_IDS), st.integers(0, 6), max_size=8)
# how long before now the next commands say they happened (None: now), and
# whether they say why
LATE = st.one_of(
    st.none(),
    st.timedeltas(timedelta(0), timedelta(hours=20)),
    st.timedeltas(timedelta(hours=20), timedelta(days=40)),
)


def fold(state: CaseState, payloads: Sequence[Message], now: datetime) -> list[CaseState]:
    """The states after each event, in order."""
    out: list[CaseState] = []
    new = state
    for i, p in enumerate(payloads):
        new = lc.apply(
            new,
            new_event(
                case_id=state.case_id,
                district_id=state.district_id,
                producer="test",
                case_version=state.version + i + 1,
                occurred_at=now,
                payload=p,
            ),
        )
        out.append(new)
    return out


def step(state: CaseState, cmd: lc.Command, c: Ctx) -> CaseState:
    """Decide, wrap each payload in an envelope, and fold the events in."""
    states = fold(state, lc.decide(state, cmd, c), c.now)
    return states[-1] if states else state


def command_key(cmd: lc.Command) -> str:
    name = type(cmd).__name__
    if isinstance(cmd, lc.RequestReview | lc.DecideReview) and cmd.rereview:
        name += "+"
    return name


def rank(tier: int) -> int:
    """Position on the ladder; a department's case (no tier) is below it."""
    return LADDER.index(tier) if tier in LADDER else -1


@settings(max_examples=200, stateful_step_count=40, deadline=None)
class Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.district: District = FULL
        self.load: dict[str, int] = {}
        self._start(FULL, "property_management", "t01", ev.CHANNEL_ONLINE, RECEIVED[0])

    def _start(
        self,
        district: District,
        category: str,
        township: str,
        channel: ev.Channel.ValueType,
        received_at: datetime,
        group: bool = False,
        escalated: bool = False,
        higher_level: bool = False,
        repeat_count: int = 0,
    ) -> None:
        reg = ev.CaseRegistered(
            channel=channel,
            township_id=township,
            category=category,
            people_count=20 if group else 1,
            group=group,
            escalated=escalated,
            source=ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT if higher_level else ev.SOURCE_DIRECT,
            repeat_count=repeat_count,
        )
        reg.received_at.CopyFrom(to_timestamp(received_at))
        self.district = district
        self.state = lc.from_registration(
            new_event(
                case_id="case-p",
                district_id=DISTRICT_ID,
                producer="intake",
                case_version=1,
                occurred_at=received_at,
                registered=reg,
            )
        )
        self.now = received_at + timedelta(hours=1)
        self.events = 0  # events applied since registration
        self.cycle_extensions = 0
        self.cycle_tier: int | None = None  # None: not in handling yet
        self.backflows = 0
        self.objected: tuple[str, ...] = ()
        self.late: timedelta | None = None
        self.late_reason = ""
        self.last_at = received_at

    @initialize(
        district=st.sampled_from([FULL, FULL, PARTIAL, BARE]),
        category=st.sampled_from(CATEGORIES),
        township=st.sampled_from(TOWNSHIPS),
        channel=st.sampled_from([ev.CHANNEL_VISIT, ev.CHANNEL_ONLINE, ev.CHANNEL_LETTER]),
        received_at=st.sampled_from(RECEIVED),
        group=st.booleans(),
        escalated=st.booleans(),
        higher_level=st.booleans(),
        repeat_count=st.integers(0, 3),
    )
    def register(
        self,
        district: District,
        category: str,
        township: str,
        channel: ev.Channel.ValueType,
        received_at: datetime,
        group: bool,
        escalated: bool,
        higher_level: bool,
        repeat_count: int,
    ) -> None:
        self._start(
            district,
            category,
            township,
            channel,
            received_at,
            # most cases carry no packaging rule; a few carry one or several
            group and repeat_count == 1,
            escalated and repeat_count == 2,
            higher_level and repeat_count in (1, 2),
            repeat_count,
        )

    # ---- running one command and checking the step ---------------------------------

    def _ctx(self, role: str, own: bool, other_unit: str) -> Ctx:
        unit_id = self.state.unit_id if own else other_unit
        return Ctx(
            district=self.district,
            now=self.now,
            role=role,
            unit_id=unit_id,
            leader_load=dict(self.load),
            occurred_at=None if self.late is None else self.now - self.late,
            late_reason=self.late_reason,
        )

    def _time_refusal(self, s: CaseState, c: Ctx) -> str:
        """The field a late step's time is refused for, or "" when it is right."""
        at = c.occurred_at
        if at is None:
            return ""
        if at < lc.previous_step(s)[0]:
            return "occurred_at"
        if at < c.now - timedelta(days=c.district.late_entry_days):
            return "occurred_at"
        if c.now - at > timedelta(days=1) and not c.late_reason.strip():
            return "late_reason"
        return ""

    def _run(self, cmd: lc.Command, c: Ctx) -> None:
        before = self.state
        doc_before = lc.to_doc(before)
        load_before = dict(c.leader_load)
        key = command_key(cmd)
        allowed = before.status in ALLOWED[key]
        foreign = (
            isinstance(cmd, UNIT_ONLY)
            and c.role not in ("office", "system")
            and c.unit_id != before.unit_id
        )
        bad_time = self._time_refusal(before, c)
        try:
            payloads = lc.decide(before, cmd, c)
        except XinfangError as e:
            # a refusal changes nothing: not the case, not the load it was shown
            assert self.state is before
            assert lc.to_doc(self.state) == doc_before
            assert dict(c.leader_load) == load_before
            if bad_time:  # a time that cannot be right is refused before anything else
                assert isinstance(e, InvalidArgument) and e.field == bad_time, (bad_time, e)
                return
            if before.status is Status.FINAL:
                assert isinstance(e, FailedPrecondition), e
                assert "Art. 36" in e.message
            elif not allowed:
                assert isinstance(e, FailedPrecondition), (key, before.status, e)
                assert f"is {before.status.value}" in e.message
            elif foreign:
                assert isinstance(e, PermissionDenied), (key, e)
            self._window_oracle(before, cmd, c, refused=e)
            self._hearing_oracle(before, cmd, refused=e)
            return

        assert not bad_time, f"{key} taken at a time refused for {bad_time}"
        assert before.status is not Status.FINAL, f"{key} acted on a final case"
        assert allowed, f"{key} succeeded on a {before.status.value} case"
        assert not foreign, f"{key} by unit {c.unit_id!r} on {before.unit_id!r}'s case"
        assert payloads, f"{key} succeeded without an event"
        self._window_oracle(before, cmd, c, refused=None)
        self._hearing_oracle(before, cmd, refused=None)

        states = fold(before, payloads, c.at)
        prev = before
        for p, s in zip(payloads, states, strict=True):
            self._event_step(prev, p, s)
            prev = s
        after = states[-1]
        assert after.version == before.version + len(payloads)
        self.events += len(payloads)
        self.state = after
        self._check_state()

    def _window_oracle(
        self, s: CaseState, cmd: lc.Command, c: Ctx, refused: XinfangError | None
    ) -> None:
        """Where only a time window can refuse, it refuses exactly when it has closed."""
        start: datetime | None = None
        limit = ""
        if isinstance(cmd, lc.ObjectRemit) and s.status is Status.ROUTED:
            foreign = c.role not in ("office", "system") and c.unit_id != s.unit_id
            if foreign or not cmd.reason.strip() or s.designated:
                return
            start, limit = s.routed_at, "remit_objection"
        elif isinstance(cmd, lc.RequestReview) and not cmd.rereview and s.status is Status.REPLIED:
            start, limit = s.replied_at, "review_request"
        elif isinstance(cmd, lc.RequestReview) and cmd.rereview and s.status is Status.REVIEWED:
            start, limit = s.reviewed_at, "rereview_request"
        else:
            return
        assert start is not None
        spec = c.district.limit(limit)
        due = compute_deadline(start, spec.days, spec.day_type, c.district.calendar).due_at
        if c.at < due:  # judged when the step happened
            assert refused is None, f"{limit} window open until {due}, refused: {refused}"
        else:
            assert isinstance(refused, FailedPrecondition), f"{limit} closed at {due}"
            assert "Art. 3" in refused.message or "Art. 2" in refused.message

    def _hearing_oracle(self, s: CaseState, cmd: lc.Command, refused: XinfangError | None) -> None:
        """During re-review a hearing opens, closes, and blocks the decision."""
        if s.status is not Status.REREVIEW_REQUESTED:
            return
        if isinstance(cmd, lc.StartHearing):
            expect_ok = not s.in_hearing
        elif isinstance(cmd, lc.EndHearing):
            expect_ok = s.in_hearing
        elif isinstance(cmd, lc.DecideReview) and cmd.rereview:
            expect_ok = not s.in_hearing
        else:
            return
        if expect_ok:
            assert refused is None, f"{command_key(cmd)} refused: {refused}"
        else:
            assert isinstance(refused, FailedPrecondition), command_key(cmd)

    def _event_step(self, prev: CaseState, payload: Message, s: CaseState) -> None:
        """Per event: handling cycles, extensions, tiers, packages, backflows."""
        kind = payload_field(payload)
        assert s.version == prev.version + 1
        if kind in ("accepted", "backflow_reopened"):
            assert s.status is Status.ACCEPTED
            self.cycle_extensions = 0
            self.cycle_tier = s.tier
        elif kind == "handling_extended":
            self.cycle_extensions += 1
            assert self.cycle_extensions <= 1, "a second extension in one handling cycle"
        if isinstance(payload, ev.CaseAccepted):
            assert payload.unit_id == prev.unit_id
        if isinstance(payload, ev.TierEscalated):
            assert payload.from_tier == prev.tier
            assert rank(s.tier) > rank(prev.tier), (prev.tier, s.tier)
        if self.cycle_tier is not None:
            assert rank(s.tier) >= rank(self.cycle_tier), (self.cycle_tier, s.tier)
            self.cycle_tier = s.tier
        if isinstance(payload, ev.LeaderPackageAssigned) and payload.rule != "manual":
            # a package by rule goes to a leader of the level the tier names
            leader = self.district.leaders[payload.leader_id]
            assert payload.tier == s.tier
            if payload.tier == ev.TIER_TOWNSHIP_LEADER_PACKAGE:
                assert (leader.level, leader.township_id) == ("township", s.township_id)
            else:
                assert payload.tier == ev.TIER_DISTRICT_LEADER_PACKAGE
                assert leader.level == "district"
        if kind == "remit_objected":
            assert s.objected_units[-1] == prev.unit_id
        if kind == "remit_disputed":  # only a second unit's objection makes a dispute
            assert s.status is Status.DISPUTED and len(s.objected_units) >= 2
            assert list(payload.unit_ids) == list(s.objected_units)  # type: ignore[attr-defined]
        if isinstance(payload, ev.CaseRouted) and payload.designated:
            assert prev.status is Status.DISPUTED and s.status is Status.ROUTED
        if kind == "backflow_reopened":
            assert s.backflow_count == prev.backflow_count + 1
            assert s.extension_days == 0

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def status_is_a_status(self) -> None:
        assert isinstance(self.state.status, Status)

    @invariant()
    def version_counts_the_events(self) -> None:
        assert self.state.version == 1 + self.events

    @invariant()
    def extension_is_zero_or_one_to_thirty_days(self) -> None:
        days = self.state.extension_days
        assert days == 0 or 1 <= days <= 30, days

    @invariant()
    def backflow_count_never_decreases(self) -> None:
        assert self.state.backflow_count >= self.backflows
        self.backflows = self.state.backflow_count

    @invariant()
    def objected_units_only_grow(self) -> None:
        s = self.state
        assert s.objected_units[: len(self.objected)] == self.objected
        self.objected = s.objected_units
        if s.status is Status.ROUTED and not s.designated:
            assert s.unit_id not in s.objected_units
        if s.status is Status.DISPUTED:
            assert len(s.objected_units) >= 2 and s.unit_id == ""

    @invariant()
    def a_designated_unit_may_not_object(self) -> None:
        s = self.state
        if s.status is not Status.ROUTED or not s.designated:
            return
        for role in ("unit", "office"):
            try:
                lc.decide(
                    s, lc.ObjectRemit("not ours"), Ctx(self.district, self.now, role, s.unit_id)
                )
            except FailedPrecondition as e:
                assert "Art. 24" in e.message
            else:
                raise AssertionError("a designated unit objected")

    @invariant()
    def packaged_tiers_have_a_leader(self) -> None:
        s = self.state
        leaders = self.district.leaders.values()
        if s.tier == ev.TIER_TOWNSHIP_LEADER_PACKAGE and any(
            ld.level == "township" and ld.township_id == s.township_id for ld in leaders
        ):
            assert s.leader_id, "a township leader package without a leader"
        if s.tier == ev.TIER_DISTRICT_LEADER_PACKAGE and any(
            ld.level == "district" for ld in leaders
        ):
            assert s.leader_id, "a district leader package without a leader"
        if s.leader_id:
            assert s.leader_id in self.district.leaders

    @invariant()
    def status_fields_agree(self) -> None:
        s = self.state
        if s.status in HANDLED:
            assert s.accepted_at is not None
        assert (s.replied_at is not None) == (s.status in REPLIED), (s.status, s.replied_at)
        if s.status is Status.REGISTERED:
            assert s.unit_id == "" and s.routed_at is None
            assert s.decision == ev.ROUTING_DECISION_UNSPECIFIED
        if s.status is Status.ROUTED:
            assert s.unit_id and s.routed_at is not None
            assert s.decision in (ev.ROUTING_DECISION_ACCEPT, ev.ROUTING_DECISION_FORWARD)
        if s.status is Status.DECLINED:
            assert s.decision == ev.ROUTING_DECISION_DECLINE
        if s.status is Status.REVIEWED:
            assert s.reviewed_at is not None
        if s.status not in HANDLED:
            assert s.tier == ev.TIER_UNSPECIFIED and s.extension_days == 0
        if s.in_hearing:
            assert s.status is Status.REREVIEW_REQUESTED

    @invariant()
    def a_final_case_refuses_everything(self) -> None:
        if self.state.status is not Status.FINAL:
            return
        for cmd in EVERY_COMMAND:
            for role in ("office", "unit"):
                c = Ctx(self.district, self.now, role, self.state.unit_id)
                try:
                    lc.decide(self.state, cmd, c)
                except FailedPrecondition as e:
                    assert "Art. 36" in e.message
                else:
                    raise AssertionError(f"{command_key(cmd)} accepted on a final case")

    @invariant()
    def the_state_survives_persistence(self) -> None:
        assert lc.from_doc(lc.to_doc(self.state)) == self.state

    @invariant()
    def steps_never_go_back_in_time(self) -> None:
        at, _step = lc.previous_step(self.state)
        assert self.last_at <= at <= self.now
        self.last_at = at

    def _check_state(self) -> None:
        self.status_is_a_status()
        self.version_counts_the_events()
        self.extension_is_zero_or_one_to_thirty_days()
        self.backflow_count_never_decreases()
        self.objected_units_only_grow()
        self.a_designated_unit_may_not_object()
        self.packaged_tiers_have_a_leader()
        self.status_fields_agree()

    # ---- rules ------------------------------------------------------------------------

    @rule(gap=GAPS)
    def time_passes(self, gap: timedelta) -> None:
        self.now += gap

    @rule(late=LATE, reason=st.booleans())
    def entered_late(self, late: timedelta | None, reason: bool) -> None:
        self.late = late
        self.late_reason = "entered from the paper register" if reason else ""

    @rule(load=LOADS)
    def packages_change_hands(self, load: dict[str, int]) -> None:
        self.load = load

    @rule(decision=DECISIONS, unit_id=UNITS, reason=REASONS, role=ROLES)
    def route_case(self, decision: int, unit_id: str, reason: str, role: str) -> None:
        self._run(lc.RouteCase(decision, unit_id, reason), self._ctx(role, False, ""))

    @rule(role=ROLES, own=st.booleans(), other=UNITS)
    def send_notice(self, role: str, own: bool, other: str) -> None:
        self._run(lc.SendNotice(), self._ctx(role, own, other))

    @rule(role=ROLES, own=st.booleans(), other=UNITS)
    def accept(self, role: str, own: bool, other: str) -> None:
        self._run(lc.AcceptCase(), self._ctx(role, own, other))

    @rule(reason=REASONS, role=ROLES, own=st.booleans(), other=UNITS)
    def object_remit(self, reason: str, role: str, own: bool, other: str) -> None:
        self._run(lc.ObjectRemit(reason), self._ctx(role, own, other))

    @rule(unit_id=UNITS, reason=REASONS, role=ROLES)
    def designate_unit(self, unit_id: str, reason: str, role: str) -> None:
        self._run(lc.DesignateUnit(unit_id, reason), self._ctx(role, False, ""))

    @rule(reason=REASONS, on_breach=st.booleans(), role=ROLES, own=st.booleans(), other=UNITS)
    def escalate(self, reason: str, on_breach: bool, role: str, own: bool, other: str) -> None:
        self._run(lc.Escalate(reason, on_breach), self._ctx(role, own, other))

    @rule(leader=LEADERS, role=ROLES)
    def assign_leader(self, leader: str, role: str) -> None:
        self._run(lc.AssignLeader(leader), self._ctx(role, True, ""))

    @rule(leader=LEADERS, back=st.timedeltas(timedelta(0), timedelta(days=3)))
    def record_visit_out(self, leader: str, back: timedelta) -> None:
        self._run(lc.RecordVisitOut(leader, self.now - back), self._ctx("office", False, ""))

    @rule(
        days=st.one_of(st.integers(1, 30), st.integers(-3, 40)),
        approver=st.sampled_from(["", " ", "deputy-head"]),
        reason=REASONS,
        role=ROLES,
        own=st.booleans(),
        other=UNITS,
    )
    def extend(
        self, days: int, approver: str, reason: str, role: str, own: bool, other: str
    ) -> None:
        cmd = lc.ExtendHandling(days, approver, reason)
        self._run(cmd, self._ctx(role, own, other))

    @rule(resolved=st.booleans(), role=ROLES, own=st.booleans(), other=UNITS)
    def reply(self, resolved: bool, role: str, own: bool, other: str) -> None:
        self._run(lc.Reply(resolved), self._ctx(role, own, other))

    @rule(rating=RATINGS)
    def rate(self, rating: int) -> None:
        self._run(lc.RateSatisfaction(rating), self._ctx("petitioner", False, ""))

    @rule(rereview=st.booleans())
    def request_review(self, rereview: bool) -> None:
        self._run(lc.RequestReview(rereview), self._ctx("petitioner", False, ""))

    @rule(upheld=st.booleans(), rereview=st.booleans())
    def decide_review(self, upheld: bool, rereview: bool) -> None:
        self._run(lc.DecideReview(upheld, rereview), self._ctx("office", False, ""))

    @rule(reason=REASONS)
    def reopen_backflow(self, reason: str) -> None:
        self._run(lc.ReopenBackflow(reason), self._ctx("office", False, ""))

    @rule(role=ROLES)
    def start_hearing(self, role: str) -> None:
        self._run(lc.StartHearing(), self._ctx(role, False, ""))

    @rule(role=ROLES)
    def end_hearing(self, role: str) -> None:
        self._run(lc.EndHearing(), self._ctx(role, False, ""))

    @rule(choices=st.lists(st.integers(0, 9), min_size=1, max_size=5))
    def carry_on(self, choices: list[int]) -> None:
        """A few ordinary next steps (each choice picks one where there are
        several), so that deep statuses and every ladder tier are reached."""
        for choice in choices:
            cmd = self._next(choice)
            if cmd is None:
                return
            self.now += timedelta(hours=3)
            role = "leader" if isinstance(cmd, lc.DesignateUnit) else "unit"
            self._run(cmd, self._ctx(role, True, ""))

    def _next(self, choice: int) -> lc.Command | None:
        s = self.state
        match s.status:
            case Status.REGISTERED:
                if choice == 0:
                    return lc.RouteCase(ev.ROUTING_DECISION_DECLINE, reason="重复信访")
                rows = [r for r in self.district.routing if r.unit_id not in s.objected_units]
                row = route(rows, s.category, s.township_id)
                target = row.unit_id if row else f"u-{s.township_id}"
                return lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, target)
            case Status.ROUTED:
                return lc.ObjectRemit("not ours") if choice < 2 else lc.AcceptCase()
            case Status.ACCEPTED:
                if choice < 4:
                    return lc.Escalate("not settled at this tier", on_breach=choice == 0)
                if choice < 6:
                    return lc.ExtendHandling(choice * 5, "deputy-head", "情况复杂")
                if choice == 6:
                    return lc.AssignLeader()
                return lc.Reply(resolved=choice != 7)
            case Status.REPLIED | Status.REVIEWED:
                if choice < 2:
                    return lc.RateSatisfaction(ev.SATISFACTION_BASICALLY)
                if choice == 2:
                    return lc.ReopenBackflow("came back")
                return lc.RequestReview(rereview=s.status is Status.REVIEWED)
            case Status.DISPUTED:
                return lc.DesignateUnit(s.objected_units[choice % len(s.objected_units)], "remit")
            case Status.REVIEW_REQUESTED:
                return lc.DecideReview(upheld=choice % 2 == 0)
            case Status.REREVIEW_REQUESTED:
                if choice < 3:
                    return lc.EndHearing() if s.in_hearing else lc.StartHearing()
                return lc.DecideReview(upheld=choice % 2 == 0, rereview=True)
        return None


TestLifecycle = Machine.TestCase


def test_the_helpers_agree_with_the_machine() -> None:
    """``step`` folds what ``decide`` returns; a sanity check of the helper itself."""
    m = Machine()
    s = m.state
    c = Ctx(FULL, m.now)
    after = step(s, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-t01"), c)
    assert (after.status, after.version, after.unit_id) == (Status.ROUTED, 2, "u-t01")
    with pytest.raises(FailedPrecondition, match="routed"):
        step(after, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-t01"), c)
    with pytest.raises(InvalidArgument) as info:
        step(s, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-nowhere"), c)
    assert info.value.field == "unit_id"
