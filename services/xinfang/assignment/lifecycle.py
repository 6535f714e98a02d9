"""The statutory life of a case after registration, as a pure state machine.

``decide(state, command, ctx)`` either refuses (``FailedPrecondition`` naming
the case's status and the rule, ``PermissionDenied``, ``InvalidArgument``)
or returns the event payloads the command causes; ``apply(state, event)``
folds one event into the state. No I/O: the store (``assignment.store``)
persists the events and the state with optimistic versioning.

Statuses::

    registered ─route─► routed ─accept─► accepted ─reply─► replied ─review─► review_requested
        ▲  │              │ object (5 working days)            │                 │ decide
        │  └─decline─► declined                                │ reopen (倒流)    ▼
        └─────────────────┘         accepted ◄─────────────────┴────────────── reviewed
                                                                                 │ re-review
                                   final ◄── decide ── rereview_requested ◄──────┘

A routing decision out of the system (courts or arbitration, discipline
inspection) ends in ``out_of_system``. Nothing is done on a final case.

An objection sends the case to the next competent unit. When a second unit
objects to the same matter the units are in dispute: the case is
``disputed`` until their common superior designates the unit (Art. 24),
which may not object again.

Late entry (补录): a step may say when it really happened (``Ctx.occurred_at``),
and every rule of the step (windows, times written into its events) is
judged at that time, as it would have been then. ``check_when`` keeps the
time honest: not in the future, not before the case's previous step, not
further back than the district's window (``late_entry_days``) unless the
step comes with an imported history, and with a reason when it is more than
a day late. ``history`` runs a whole imported history through the same
rules, so a history is accepted whole or refused at its first bad step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from google.protobuf.message import Message

from xinfang.assignment.routing import DECISIONS, route
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import payload_field, to_timestamp
from xinfang.core.districts import District
from xinfang.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    XinfangError,
)
from xinfang.core.registry import Registry

__all__ = [
    "LADDER",
    "AcceptCase",
    "AssignLeader",
    "CaseState",
    "Command",
    "Ctx",
    "DecideReview",
    "DesignateUnit",
    "EndHearing",
    "Escalate",
    "ExtendHandling",
    "ObjectRemit",
    "RateSatisfaction",
    "RecordVisitOut",
    "ReopenBackflow",
    "Reply",
    "RequestReview",
    "RouteCase",
    "SendNotice",
    "StartHearing",
    "Status",
    "apply",
    "at_top",
    "check_when",
    "decide",
    "envelope",
    "from_doc",
    "from_registration",
    "handling_due",
    "history",
    "pick_leader",
    "previous_step",
    "replace_inputs",
    "to_doc",
]


class Status(StrEnum):
    REGISTERED = "registered"
    ROUTED = "routed"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    REVIEW_REQUESTED = "review_requested"
    REVIEWED = "reviewed"
    REREVIEW_REQUESTED = "rereview_requested"
    FINAL = "final"
    DECLINED = "declined"
    OUT_OF_SYSTEM = "out_of_system"
    DISPUTED = "disputed"


# The 民事直说 ladder, bottom to top.
LADDER: tuple[int, ...] = (
    ev.TIER_VILLAGE_MEDIATION,
    ev.TIER_TOWNSHIP,
    ev.TIER_TOWNSHIP_JOINT_MEETING,
    ev.TIER_TOWNSHIP_LEADER_PACKAGE,
    ev.TIER_DISTRICT_LEADER_PACKAGE,
)
OFFICE_ROLES = frozenset({"office", "system"})  # the petition office, and the platform itself
# who speaks for the units' common superior, the district (Art. 24)
SUPERIOR_ROLES = frozenset({"office", "leader"})


@dataclass(frozen=True)
class CaseState:
    case_id: str
    district_id: str
    version: int
    status: Status
    received_at: datetime
    channel: int
    category: str
    township_id: str
    people_count: int = 1
    group: bool = False
    escalated: bool = False
    higher_level: bool = False
    repeat_count: int = 0
    decision: int = ev.ROUTING_DECISION_UNSPECIFIED
    unit_id: str = ""
    rule_id: str = ""
    rules_version: int = 0
    routed_at: datetime | None = None
    notice_sent: bool = False
    objected_units: tuple[str, ...] = ()
    designated: bool = False  # the unit was designated by the common superior (Art. 24)
    accepted_at: datetime | None = None
    tier: int = ev.TIER_UNSPECIFIED
    leader_id: str = ""
    extension_days: int = 0
    replied_at: datetime | None = None
    resolved: bool = False
    rating: int = ev.SATISFACTION_UNSPECIFIED
    review_requested_at: datetime | None = None
    reviewed_at: datetime | None = None
    backflow_count: int = 0
    in_hearing: bool = False
    # when the case's latest recorded step happened, and which step it was
    # (None in a snapshot older than these fields: ``previous_step`` falls back)
    last_at: datetime | None = None
    last_step: str = ""
    # ids of events from other services this case has reacted to (idempotency)
    inputs: tuple[str, ...] = ()


# ---- commands -------------------------------------------------------------


@dataclass(frozen=True)
class RouteCase:
    decision: int
    unit_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SendNotice:
    pass


@dataclass(frozen=True)
class AcceptCase:
    pass


@dataclass(frozen=True)
class ObjectRemit:
    reason: str


@dataclass(frozen=True)
class DesignateUnit:
    unit_id: str
    reason: str


@dataclass(frozen=True)
class Escalate:
    reason: str
    on_breach: bool = False


@dataclass(frozen=True)
class AssignLeader:
    leader_id: str = ""


@dataclass(frozen=True)
class RecordVisitOut:
    leader_id: str
    visited_at: datetime


@dataclass(frozen=True)
class ExtendHandling:
    days: int
    approver_id: str
    reason: str


@dataclass(frozen=True)
class Reply:
    resolved: bool


@dataclass(frozen=True)
class RateSatisfaction:
    rating: int


@dataclass(frozen=True)
class RequestReview:
    rereview: bool = False


@dataclass(frozen=True)
class DecideReview:
    upheld: bool
    rereview: bool = False


@dataclass(frozen=True)
class ReopenBackflow:
    reason: str


@dataclass(frozen=True)
class StartHearing:
    pass


@dataclass(frozen=True)
class EndHearing:
    pass


Command = (
    RouteCase
    | SendNotice
    | AcceptCase
    | ObjectRemit
    | DesignateUnit
    | Escalate
    | AssignLeader
    | RecordVisitOut
    | ExtendHandling
    | Reply
    | RateSatisfaction
    | RequestReview
    | DecideReview
    | ReopenBackflow
    | StartHearing
    | EndHearing
)


@dataclass(frozen=True)
class Ctx:
    """What a decision may look at besides the case: the district's data, the
    time, who asks, and how many open packages each leader holds."""

    district: District
    now: datetime
    role: str = "office"
    unit_id: str = ""
    leader_load: Mapping[str, int] = field(default_factory=dict)
    # when the step really happened (补录); None: now
    occurred_at: datetime | None = None
    late_reason: str = ""
    entry: int = ev.ENTRY_UNSPECIFIED  # ENTRY_HISTORY: an imported history's step

    @property
    def at(self) -> datetime:
        """When the step happened: what its rules are judged at."""
        return self.occurred_at if self.occurred_at is not None else self.now

    @property
    def entry_mode(self) -> int:
        """How the step's events are marked: a history's, late (补录: a time
        given, before now) or live."""
        if self.entry == ev.ENTRY_HISTORY:
            return ev.ENTRY_HISTORY
        if self.occurred_at is not None and self.occurred_at < self.now:
            return ev.ENTRY_LATE
        return ev.ENTRY_UNSPECIFIED


# ---- when a step happened -------------------------------------------------------

# a time this little ahead of the server's clock is the caller's clock, taken as now
CLOCK_SKEW = timedelta(minutes=1)
# a step entered later than this after it happened says why
LATE_REASON_AFTER = timedelta(days=1)

_STEP_PHRASES = {
    "registered": "the petition was received",
    "routed": "the case was routed",
    "notice_sent": "the written notice was sent",
    "accepted": "the case was accepted",
    "remit_objected": "the remit was objected to",
    "remit_disputed": "the units disputed the case",
    "tier_escalated": "the case was escalated",
    "leader_package_assigned": "the case was packaged to a leader",
    "leader_visit_out": "the visit out was recorded",
    "handling_extended": "handling was extended",
    "reply_issued": "the reply was issued",
    "satisfaction_rated": "the answer was rated",
    "review_requested": "review was requested",
    "review_decided": "the review was decided",
    "finalized": "the case became final",
    "backflow_reopened": "the case came back (倒流)",
    "hearing_started": "the hearing started",
    "hearing_ended": "the hearing ended",
}


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def previous_step(state: CaseState) -> tuple[datetime, str]:
    """When the case's latest step happened, and what it was."""
    if state.last_at is not None:
        return state.last_at, state.last_step
    known = [
        (t, name)
        for t, name in (
            (state.received_at, "registered"),
            (state.routed_at, "routed"),
            (state.accepted_at, "accepted"),
            (state.replied_at, "reply_issued"),
            (state.review_requested_at, "review_requested"),
            (state.reviewed_at, "review_decided"),
        )
        if t is not None
    ]
    return max(known, key=lambda x: x[0])


def check_when(state: CaseState, ctx: Ctx) -> Ctx:
    """Refuse a step whose time cannot be right; returns the context with a
    time a hair ahead of the server's clock taken as now."""
    at = ctx.occurred_at
    if at is None:
        return ctx  # happening now: after every recorded step
    if at.tzinfo is None:
        raise InvalidArgument("occurred_at", "needs a time zone")
    if at > ctx.now + CLOCK_SKEW:
        raise InvalidArgument(
            "occurred_at", f"is in the future ({_local(at)}; now is {_local(ctx.now)})"
        )
    if at > ctx.now:
        ctx = replace(ctx, occurred_at=ctx.now)
        at = ctx.now
    prev_at, prev = previous_step(state)
    if at < prev_at:
        what = _STEP_PHRASES.get(prev, "the case's previous step")
        raise InvalidArgument("occurred_at", f"is before {what} ({_local(prev_at)})")
    if ctx.entry == ev.ENTRY_HISTORY:
        return ctx  # an imported history: the window and the reason are the import's
    window = ctx.district.late_entry_days
    if at < ctx.now - timedelta(days=window):
        raise InvalidArgument(
            "occurred_at",
            f"is more than {window} days ago ({_local(at)}); the district takes late "
            f"entries (补录) within {window} days",
        )
    if ctx.now - at > LATE_REASON_AFTER and not ctx.late_reason.strip():
        raise InvalidArgument(
            "late_reason", "a step entered more than a day after it happened says why"
        )
    return ctx


# ---- decisions --------------------------------------------------------------


def _refuse(state: CaseState, rule: str) -> FailedPrecondition:
    return FailedPrecondition(f"case {state.case_id} is {state.status.value}: {rule}")


def _need(state: CaseState, allowed: tuple[Status, ...], rule: str) -> None:
    if state.status not in allowed:
        raise _refuse(state, rule)


def _as_unit(state: CaseState, ctx: Ctx) -> None:
    """Handling steps belong to the unit the case was routed to."""
    if ctx.role in OFFICE_ROLES:
        return
    if ctx.unit_id != state.unit_id:
        raise PermissionDenied(
            f"actor.unit_id: only unit {state.unit_id!r} or the petition office may do this"
        )


def _window_open(start: datetime | None, limit_name: str, ctx: Ctx) -> tuple[bool, datetime]:
    assert start is not None
    due = ctx.district.deadline(limit_name, start).due_at
    return ctx.at < due, due


def pick_leader(ctx: Ctx, level: str, township_id: str = "") -> str:
    """The least-loaded leader of a level (ties by id), so packages spread."""
    candidates = [
        lead
        for lead in ctx.district.leaders.values()
        if lead.level == level and (level == "district" or lead.township_id == township_id)
    ]
    if not candidates:
        return ""
    best = min(candidates, key=lambda x: (ctx.leader_load.get(x.leader_id, 0), x.leader_id))
    return best.leader_id


def _package_rule(state: CaseState, ctx: Ctx) -> str:
    """Which rule, if any, makes a county-level leader package this case."""
    rules = ctx.district.leader_rules
    if state.channel == ev.CHANNEL_VISIT:
        local = state.received_at.astimezone(SHANGHAI)
        if ctx.district.reception.leader_on(local.date()):
            return "reception_day"
    if rules.group and state.group:
        return "group"
    if rules.higher_level and state.higher_level:
        return "higher_level"
    if rules.escalated and state.escalated:
        return "escalated"
    if rules.repeat_threshold and state.repeat_count >= rules.repeat_threshold:
        return "repeat"
    return ""


def decide(state: CaseState, cmd: Command, ctx: Ctx) -> list[Message]:
    ctx = check_when(state, ctx)
    if state.status is Status.FINAL:
        raise _refuse(
            state, "the matter is final after re-review and is not handled again (Art. 36)"
        )
    match cmd:
        case RouteCase():
            return _route(state, cmd, ctx)
        case SendNotice():
            if state.decision == ev.ROUTING_DECISION_UNSPECIFIED:
                raise _refuse(state, "a written notice follows the register-and-route decision")
            if state.notice_sent:
                raise _refuse(state, "the written notice was already sent (Art. 23)")
            return [ev.NoticeSent(sent_at=to_timestamp(ctx.at))]
        case AcceptCase():
            _need(state, (Status.ROUTED,), "only a routed case is accepted")
            _as_unit(state, ctx)
            return _accept(state, ctx)
        case ObjectRemit():
            _need(state, (Status.ROUTED,), "only a routed, not yet accepted case is objected to")
            _as_unit(state, ctx)
            if state.designated:
                raise _refuse(
                    state,
                    f"unit {state.unit_id} was designated by the common superior (Art. 24) "
                    "and handles the matter",
                )
            if not cmd.reason.strip():
                raise InvalidArgument("reason", "an objection states why the matter is not ours")
            ok, due = _window_open(state.routed_at, "remit_objection", ctx)
            if not ok:
                raise _refuse(
                    state,
                    f"the objection window (Art. 23) closed at {due.isoformat()}",
                )
            out: list[Message] = [ev.RemitObjected(unit_id=state.unit_id, reason=cmd.reason)]
            excluded = (*state.objected_units, state.unit_id)
            if state.objected_units:  # a second unit refuses it: a dispute (Art. 24)
                out.append(ev.RemitDisputed(unit_ids=list(excluded)))
                return out
            rows = [r for r in ctx.district.routing if r.unit_id not in excluded]
            row = route(rows, state.category, state.township_id)
            if row is not None:
                out.append(
                    ev.CaseRouted(
                        decision=DECISIONS[row.decision],
                        unit_id=row.unit_id,
                        rule_id=row.rule_id,
                        rules_version=ctx.district.version,
                        reason="re-routed after objection",
                    )
                )
            return out
        case DesignateUnit():
            _need(state, (Status.DISPUTED,), "a unit is designated when units dispute a case")
            if ctx.role not in SUPERIOR_ROLES:
                raise PermissionDenied(
                    "actor.role: the units' common superior designates the unit (Art. 24): "
                    f"{', '.join(sorted(SUPERIOR_ROLES))}"
                )
            if cmd.unit_id not in ctx.district.units:
                raise InvalidArgument("unit_id", f"unknown unit {cmd.unit_id!r}")
            if not cmd.reason.strip():
                raise InvalidArgument("reason", "say why this unit is competent")
            return [
                ev.CaseRouted(
                    decision=ev.ROUTING_DECISION_FORWARD,
                    unit_id=cmd.unit_id,
                    reason=f"designated by the common superior (Art. 24): {cmd.reason.strip()}",
                    rules_version=ctx.district.version,
                    designated=True,
                )
            ]
        case Escalate():
            _need(state, (Status.ACCEPTED,), "only a case in handling is escalated")
            return _escalate(state, cmd, ctx)
        case AssignLeader():
            _need(state, (Status.ACCEPTED,), "a leader packages a case in handling")
            leader = cmd.leader_id or pick_leader(ctx, "district")
            if leader not in ctx.district.leaders:
                raise InvalidArgument("leader_id", f"unknown leader {cmd.leader_id!r}")
            if leader == state.leader_id:
                raise _refuse(state, f"leader {leader} already packages this case")
            return [
                ev.LeaderPackageAssigned(
                    leader_id=leader,
                    rule="manual",
                    tier=state.tier,  # type: ignore[arg-type]
                )
            ]
        case RecordVisitOut():
            if state.status in (
                Status.REGISTERED,
                Status.DECLINED,
                Status.OUT_OF_SYSTEM,
                Status.DISPUTED,
            ):
                raise _refuse(state, "a visit out serves a case that is being handled")
            if cmd.leader_id not in ctx.district.leaders:
                raise InvalidArgument("leader_id", f"unknown leader {cmd.leader_id!r}")
            return [
                ev.LeaderVisitOutRecorded(
                    leader_id=cmd.leader_id,
                    township_id=state.township_id,
                    visited_at=to_timestamp(cmd.visited_at),
                )
            ]
        case ExtendHandling():
            _need(state, (Status.ACCEPTED,), "only a case in handling is extended")
            _as_unit(state, ctx)
            if state.extension_days:
                raise _refuse(state, "handling may be extended once (Art. 34)")
            most = ctx.district.limit("handling_extension_max").days
            if not 1 <= cmd.days <= most:
                raise InvalidArgument("days", f"an extension is 1 to {most} days (Art. 34)")
            if not cmd.approver_id.strip():
                raise InvalidArgument("approver_id", "an extension needs its approver")
            if not cmd.reason.strip():
                raise InvalidArgument("reason", "the petitioner is told why (Art. 34)")
            return [
                ev.HandlingExtended(days=cmd.days, approver_id=cmd.approver_id, reason=cmd.reason)
            ]
        case Reply():
            _need(state, (Status.ACCEPTED,), "the reply closes handling of an accepted case")
            _as_unit(state, ctx)
            return [ev.ReplyIssued(replied_at=to_timestamp(ctx.at), resolved=cmd.resolved)]
        case RateSatisfaction():
            _need(
                state,
                (Status.REPLIED, Status.REVIEWED),
                "the petitioner rates a reply or a review decision",
            )
            if cmd.rating not in (
                ev.SATISFACTION_SATISFIED,
                ev.SATISFACTION_BASICALLY,
                ev.SATISFACTION_DISSATISFIED,
            ):
                raise InvalidArgument("rating", "satisfied, basically satisfied or dissatisfied")
            if state.rating != ev.SATISFACTION_UNSPECIFIED:
                raise _refuse(state, "this answer was already rated")
            return [ev.SatisfactionRated(rating=cmd.rating)]  # type: ignore[arg-type]
        case RequestReview(rereview=False):
            _need(state, (Status.REPLIED,), "review (复查) is asked of a reply")
            ok, due = _window_open(state.replied_at, "review_request", ctx)
            if not ok:
                raise _refuse(state, f"the review window (Art. 35) closed at {due.isoformat()}")
            return [ev.ReviewRequested(rereview=False)]
        case RequestReview(rereview=True):
            _need(state, (Status.REVIEWED,), "re-review (复核) is asked of a review decision")
            ok, due = _window_open(state.reviewed_at, "rereview_request", ctx)
            if not ok:
                raise _refuse(state, f"the re-review window (Art. 36) closed at {due.isoformat()}")
            return [ev.ReviewRequested(rereview=True)]
        case DecideReview(rereview=False):
            _need(state, (Status.REVIEW_REQUESTED,), "a review decision answers a review request")
            return [ev.ReviewDecided(rereview=False, upheld=cmd.upheld)]
        case DecideReview(rereview=True):
            _need(
                state,
                (Status.REREVIEW_REQUESTED,),
                "a re-review decision answers a re-review request",
            )
            if state.in_hearing:
                raise _refuse(state, "the hearing is still open; end it before deciding")
            return [
                ev.ReviewDecided(rereview=True, upheld=cmd.upheld),
                ev.CaseFinalized(reason="re-review decided (Art. 36)"),
            ]
        case StartHearing():
            _need(state, (Status.REREVIEW_REQUESTED,), "a hearing is held during re-review")
            if state.in_hearing:
                raise _refuse(state, "a hearing is already open")
            return [ev.HearingStarted()]
        case EndHearing():
            if not state.in_hearing:
                raise _refuse(state, "no hearing is open")
            return [ev.HearingEnded()]
        case ReopenBackflow():
            _need(
                state,
                (Status.REPLIED, Status.REVIEWED),
                "only a case reported resolved comes back as backflow (倒流)",
            )
            if not state.resolved:
                raise _refuse(state, "the case was answered but never reported resolved")
            if not cmd.reason.strip():
                raise InvalidArgument("reason", "say why the case came back")
            return [ev.BackflowReopened(reason=cmd.reason)]
    raise InvalidArgument("command", f"unknown command {type(cmd).__name__}")


def _route(state: CaseState, cmd: RouteCase, ctx: Ctx) -> list[Message]:
    _need(state, (Status.REGISTERED,), "only a registered, not yet routed case is routed")
    if cmd.decision not in DECISIONS.values():
        raise InvalidArgument(
            "decision", "accept, forward, out_litigation, out_discipline or decline"
        )
    if cmd.decision == ev.ROUTING_DECISION_DECLINE:
        if not cmd.reason.strip():
            raise InvalidArgument("reason", "a declined petition is told why (Art. 22)")
    elif cmd.unit_id not in ctx.district.units:
        raise InvalidArgument("unit_id", f"unknown unit {cmd.unit_id!r}")
    elif cmd.unit_id in state.objected_units:
        raise InvalidArgument("unit_id", f"unit {cmd.unit_id} objected to this matter (Art. 23)")
    return [
        ev.CaseRouted(
            decision=cmd.decision,  # type: ignore[arg-type]
            unit_id=cmd.unit_id,
            rule_id="manual",
            rules_version=ctx.district.version,
            reason=cmd.reason,
        )
    ]


def _accept(state: CaseState, ctx: Ctx) -> list[Message]:
    unit = ctx.district.units.get(state.unit_id)
    tier = ev.TIER_VILLAGE_MEDIATION if unit is not None and unit.kind == "township" else 0
    out: list[Message] = []
    rule = _package_rule(state, ctx)
    if rule:
        leader = (
            ctx.district.reception.leader_on(state.received_at.astimezone(SHANGHAI).date())
            if rule == "reception_day"
            else pick_leader(ctx, "district")
        )
        if leader:
            tier = ev.TIER_DISTRICT_LEADER_PACKAGE
            out = [ev.LeaderPackageAssigned(leader_id=leader, rule=rule, tier=tier)]
    return [ev.CaseAccepted(unit_id=state.unit_id, tier=tier), *out]  # type: ignore[arg-type]


def _escalate(state: CaseState, cmd: Escalate, ctx: Ctx) -> list[Message]:
    if at_top(state):
        raise _refuse(state, "already packaged by a district leader, the top of the ladder")
    if state.tier in LADDER:
        to = LADDER[LADDER.index(state.tier) + 1]
    else:  # a department's case goes straight to a county-level leader
        to = ev.TIER_DISTRICT_LEADER_PACKAGE
    out: list[Message] = [
        ev.TierEscalated(
            from_tier=state.tier,  # type: ignore[arg-type]
            to_tier=to,  # type: ignore[arg-type]
            reason=cmd.reason,
            on_breach=cmd.on_breach,
        )
    ]
    if to == ev.TIER_TOWNSHIP_LEADER_PACKAGE:
        leader = pick_leader(ctx, "township", state.township_id)
    elif to == ev.TIER_DISTRICT_LEADER_PACKAGE:  # via the petition agency (信访代理)
        leader = pick_leader(ctx, "district")
    else:
        leader = ""
    if leader:
        out.append(ev.LeaderPackageAssigned(leader_id=leader, rule="escalation", tier=to))  # type: ignore[arg-type]
    return out


def at_top(state: CaseState) -> bool:
    """Packaged by a district leader: no tier above to escalate to, so a time
    box that runs out there is left to supervision (its breach, order and
    score) and moves the case nowhere."""
    return state.tier == LADDER[-1]


# ---- applying events --------------------------------------------------------


def from_registration(event: ev.CaseEvent) -> CaseState:
    r = event.registered
    return CaseState(
        case_id=event.case_id,
        district_id=event.district_id,
        version=1,
        status=Status.REGISTERED,
        received_at=r.received_at.ToDatetime(tzinfo=UTC),
        channel=r.channel,
        category=r.category,
        township_id=r.township_id,
        people_count=r.people_count,
        group=r.group,
        escalated=r.escalated,
        higher_level=r.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
        repeat_count=r.repeat_count,
        last_at=r.received_at.ToDatetime(tzinfo=UTC),
        last_step="registered",
        inputs=(event.event_id,),
    )


def _when(event: ev.CaseEvent) -> datetime:
    return event.occurred_at.ToDatetime(tzinfo=UTC)


# event type -> how it changes the case's state (the version is set by ``apply``)
APPLY: Registry[Callable[[CaseState, ev.CaseEvent], CaseState]] = Registry("case state")


def apply(state: CaseState, event: ev.CaseEvent) -> CaseState:
    """Fold one event into the state; the version follows the event's. Events
    this aggregate does not track (visits out, supervision's) change only it."""
    s = replace(state, version=event.case_version or state.version + 1)
    kind = event.WhichOneof("payload") or ""
    if kind in _STEP_PHRASES and event.HasField("occurred_at"):  # a step of the case
        at = _when(event)
        if s.last_at is None or at >= s.last_at:
            s = replace(s, last_at=at, last_step=kind)
    fn = APPLY.get(event)
    return s if fn is None else fn(s, event)


_OUT_OF_SYSTEM = (ev.ROUTING_DECISION_OUT_LITIGATION, ev.ROUTING_DECISION_OUT_DISCIPLINE)


@APPLY.on("routed")
def _routed(s: CaseState, event: ev.CaseEvent) -> CaseState:
    d = event.routed.decision
    status = (
        Status.DECLINED
        if d == ev.ROUTING_DECISION_DECLINE
        else Status.OUT_OF_SYSTEM
        if d in _OUT_OF_SYSTEM
        else Status.ROUTED
    )
    return replace(
        s,
        status=status,
        decision=d,
        unit_id=event.routed.unit_id,
        rule_id=event.routed.rule_id,
        rules_version=event.routed.rules_version,
        routed_at=_when(event),
        designated=event.routed.designated,
    )


@APPLY.on("remit_objected")
def _objected(s: CaseState, event: ev.CaseEvent) -> CaseState:
    return replace(
        s,
        status=Status.REGISTERED,
        objected_units=(*s.objected_units, event.remit_objected.unit_id),
        unit_id="",
        decision=ev.ROUTING_DECISION_UNSPECIFIED,
        routed_at=None,
    )


@APPLY.on("accepted")
def _accepted(s: CaseState, event: ev.CaseEvent) -> CaseState:
    return replace(s, status=Status.ACCEPTED, accepted_at=_when(event), tier=event.accepted.tier)


@APPLY.on("reply_issued")
def _replied(s: CaseState, event: ev.CaseEvent) -> CaseState:
    return replace(
        s,
        status=Status.REPLIED,
        replied_at=_when(event),
        resolved=event.reply_issued.resolved,
        rating=ev.SATISFACTION_UNSPECIFIED,
    )


@APPLY.on("review_requested")
def _review_requested(s: CaseState, event: ev.CaseEvent) -> CaseState:
    st = Status.REREVIEW_REQUESTED if event.review_requested.rereview else Status.REVIEW_REQUESTED
    return replace(s, status=st, review_requested_at=_when(event))


@APPLY.on("review_decided")
def _review_decided(s: CaseState, event: ev.CaseEvent) -> CaseState:
    if event.review_decided.rereview:
        return s  # CaseFinalized follows in the same step
    return replace(
        s, status=Status.REVIEWED, reviewed_at=_when(event), rating=ev.SATISFACTION_UNSPECIFIED
    )


@APPLY.on("backflow_reopened")
def _backflow(s: CaseState, event: ev.CaseEvent) -> CaseState:
    return replace(
        s,
        status=Status.ACCEPTED,
        backflow_count=s.backflow_count + 1,
        accepted_at=_when(event),
        replied_at=None,
        resolved=False,
        rating=ev.SATISFACTION_UNSPECIFIED,
        extension_days=0,
        reviewed_at=None,
        review_requested_at=None,
    )


APPLY.on("notice_sent")(lambda s, e: replace(s, notice_sent=True))
APPLY.on("remit_disputed")(lambda s, e: replace(s, status=Status.DISPUTED))
APPLY.on("tier_escalated")(lambda s, e: replace(s, tier=e.tier_escalated.to_tier))
APPLY.on("leader_package_assigned")(
    lambda s, e: replace(s, leader_id=e.leader_package_assigned.leader_id)
)
APPLY.on("handling_extended")(lambda s, e: replace(s, extension_days=e.handling_extended.days))
APPLY.on("satisfaction_rated")(lambda s, e: replace(s, rating=e.satisfaction_rated.rating))
APPLY.on("finalized")(lambda s, e: replace(s, status=Status.FINAL))
APPLY.on("hearing_started")(lambda s, e: replace(s, in_hearing=True))
APPLY.on("hearing_ended")(lambda s, e: replace(s, in_hearing=False))


# ---- imported histories ---------------------------------------------------------

MakeEvent = Callable[[CaseState, int, Message, Ctx], ev.CaseEvent]


def envelope(state: CaseState, step: int, payload: Message, ctx: Ctx) -> ev.CaseEvent:
    """The bare event a decision's payload becomes (no ids, no actor): what
    ``apply`` needs to fold it, for a history checked before it is recorded."""
    event = ev.CaseEvent(
        case_id=state.case_id,
        district_id=state.district_id,
        case_version=state.version + step,
        entry=ctx.entry_mode,  # type: ignore[arg-type]
        late_reason=ctx.late_reason,
        occurred_at=to_timestamp(ctx.at),
        recorded_at=to_timestamp(ctx.now),
    )
    getattr(event, payload_field(payload)).CopyFrom(payload)
    return event


def history(
    state: CaseState,
    steps: Sequence[tuple[Command, datetime]],
    ctx: Ctx,
    make_event: MakeEvent = envelope,
) -> tuple[list[ev.CaseEvent], CaseState]:
    """Every step of an imported history, each at its own time, through
    ``decide`` and ``apply`` as if entered one after another: the events
    and the state they lead to, or the first refusal, naming the step
    (``steps[3].occurred_at: is before the case was routed (…)``)."""
    if not steps:
        raise InvalidArgument("steps", "a history has at least one step")
    events: list[ev.CaseEvent] = []
    for i, (cmd, at) in enumerate(steps):
        step_ctx = replace(ctx, occurred_at=at, entry=ev.ENTRY_HISTORY)
        try:
            step_ctx = check_when(state, step_ctx)
            payloads = decide(state, cmd, step_ctx)
        except InvalidArgument as e:
            raise InvalidArgument(f"steps[{i}].{e.field}", e.message.split(": ", 1)[1]) from e
        except XinfangError as e:
            raise type(e)(f"steps[{i}] ({type(cmd).__name__}): {e.message}") from e
        new = [make_event(state, j + 1, p, step_ctx) for j, p in enumerate(payloads)]
        for event in new:
            state = apply(state, event)
        events.extend(new)
    return events, state


def replace_inputs(state: CaseState, event_id: str) -> CaseState:
    """Remember that an event from another service was acted on."""
    return replace(state, inputs=(*state.inputs, event_id))


def handling_due(state: CaseState, district: District) -> datetime | None:
    """When handling of an accepted case falls due: 60 days from acceptance
    plus an approved extension (Art. 34)."""
    if state.accepted_at is None:
        return None
    return district.deadline("handling", state.accepted_at, state.extension_days).due_at


def to_doc(state: CaseState) -> dict[str, Any]:
    d = {k: getattr(state, k) for k in state.__dataclass_fields__}
    d["status"] = state.status.value
    d["objected_units"] = list(state.objected_units)
    d["inputs"] = list(state.inputs[-50:])  # bounded: recent inputs suffice for redeliveries
    return d


def from_doc(doc: Mapping[str, Any]) -> CaseState:
    fields = {k: doc[k] for k in CaseState.__dataclass_fields__ if k in doc}
    fields["status"] = Status(fields["status"])
    fields["objected_units"] = tuple(fields.get("objected_units", ()))
    fields["inputs"] = tuple(fields.get("inputs", ()))
    return CaseState(**fields)
