"""Assignment: routes each registered case and carries it through its
statutory life (accept, object, tiers, leader packages, extension, reply,
rating, review, re-review, backflow).

Commands arrive over gRPC; registrations and breaches arrive as events. Both
go through one path: load the case, ``lifecycle.decide``, commit the events
with optimistic versioning (``store.CaseStore``), publish through the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

import grpc
from google.protobuf.message import Message
from prometheus_client import Gauge

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.routing import DECISIONS, route
from xinfang.assignment.store import CaseStore, first_event_id
from xinfang.assignment.v1 import assignment_pb2 as pb
from xinfang.assignment.v1 import assignment_pb2_grpc as pb_grpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import OFFICE
from xinfang.core.batch import CaseBlocked
from xinfang.core.codec import new_event, payload_name, request_time, to_timestamp
from xinfang.core.directory import Directory
from xinfang.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    XinfangError,
    field_of,
    renamed,
)
from xinfang.core.grpc_server import rpc
from xinfang.core.logging import get_logger
from xinfang.core.mongo import TRANSIENT_ERRORS, Position
from xinfang.core.registry import Registry
from xinfang.core.runtime import BatchHandler, Runtime, ServiceSpec

__all__ = ["SPEC", "Assignment"]

SERVICE = "assignment"
_DECISION_NAMES = {v: k for k, v in DECISIONS.items()}
ROLES = frozenset({"office", "unit", "leader", "supervisor", "system"})
_SYSTEM = ev.Actor(user_id="assignment", role="system")


LOADS = "leader_load"
UNROUTED = "unrouted"  # per district: the cases waiting to be routed by hand
log = get_logger(__name__)

UNROUTED_CASES = Gauge(
    "xinfang_unrouted_cases",
    "Registered cases no routing row matched, waiting for the office to route them",
    ["district"],
)


# the events assignment acts on (commands arrive over gRPC)
ON_EVENT: Registry[Callable[[Assignment, ev.CaseEvent], Awaitable[str]]] = Registry("assignment")


class Assignment:
    def __init__(self, store: CaseStore, directory: Directory) -> None:
        self.store = store
        self.directory = directory

    # ---- events from other services ----------------------------------------

    async def handle(self, event: ev.CaseEvent, pos: Position) -> str:
        fn = ON_EVENT.get(event)
        return "ignored" if fn is None else await fn(self, event)

    async def handle_batch(
        self, items: Sequence[tuple[ev.CaseEvent, Position]]
    ) -> list[str | Exception]:
        """A batch of events: the registrations among them are recorded
        together (``CaseStore.commit_new``: their first records in one insert,
        their snapshots in one write); any other event is handled on its own,
        after the registrations before it. An event behind a failed one of
        its case is not applied (``CaseBlocked``): the runtime parks it."""
        out: list[str | Exception | None] = [None] * len(items)
        pending: list[tuple[int, ev.CaseEvent, list[ev.CaseEvent], lc.CaseState]] = []
        failed: set[str] = set()

        async def flush() -> None:
            if not pending:
                return
            batch = list(pending)
            pending.clear()
            inserted = await self.store.commit_new(
                [(events, state, events[1:]) for _i, _e, events, state in batch]
            )
            for (i, event, _events, state), ok in zip(batch, inserted, strict=True):
                try:
                    out[i] = await self._recorded(event, state, ok)
                except TRANSIENT_ERRORS:
                    raise
                except Exception as e:
                    out[i] = e
                    failed.add(event.case_id)

        for i, (event, pos) in enumerate(items):
            if event.case_id in failed:
                out[i] = CaseBlocked(event.case_id)
                continue
            try:
                if payload_name(event) == "registered":
                    pending.append((i, event, *await self._routing(event)))
                    continue
                await flush()
                if event.case_id in failed:
                    out[i] = CaseBlocked(event.case_id)
                    continue
                out[i] = await self.handle(event, pos)
            except TRANSIENT_ERRORS:
                raise
            except Exception as e:
                out[i] = e
                failed.add(event.case_id)
        await flush()
        return [r if r is not None else "ignored" for r in out]

    async def _routing(self, event: ev.CaseEvent) -> tuple[list[ev.CaseEvent], lc.CaseState]:
        """A registration's first record: the registration and its routing
        decision, or (no row matched, not even a catch-all) the registration
        alone, and the case waits, listed as unrouted, for the office to
        route it by hand (RouteCase); nothing is dead-lettered."""
        district = await self.directory.get(event.district_id)
        state = lc.from_registration(event)
        row = route(district.routing, state.category, state.township_id)
        if row is None:
            log.warning(
                "no routing row: the case waits for the office",
                case_id=event.case_id,
                district_id=event.district_id,
                category=state.category,
                township_id=state.township_id,
            )
            return [event], state
        routed = self._event(
            state,
            1,
            ev.CaseRouted(
                decision=DECISIONS[row.decision],
                unit_id=row.unit_id,
                rule_id=row.rule_id,
                rules_version=district.version,
            ),
            _SYSTEM,
        )
        return [event, routed], lc.apply(state, routed)

    @ON_EVENT.on("registered")
    async def _registered(self, event: ev.CaseEvent) -> str:
        events, state = await self._routing(event)
        (inserted,) = await self.store.commit_new([(events, state, events[1:])])
        return await self._recorded(event, state, inserted)

    async def _recorded(self, event: ev.CaseEvent, new_state: lc.CaseState, inserted: bool) -> str:
        """After a registration's first record was inserted, or refused
        because it exists: a redelivery (the first try may have died before
        publishing: publish it again), or another registration's (refused)."""
        if not inserted:
            first = await self.store.first_record(event.case_id)
            if first is None or first_event_id(first) != event.event_id:
                raise Conflict(
                    f"case {event.case_id} was registered by another event "
                    f"({first_event_id(first) if first else '?'})"
                )
            await self.store.outbox.republish([first])
        if new_state.status is lc.Status.REGISTERED:
            await self._sync_unrouted(new_state)
        return "applied" if inserted else "duplicate"

    async def _sync_unrouted(self, state: lc.CaseState) -> None:
        """The district's list of cases waiting to be routed by hand: a case
        is on it while it is registered and not routed (no row matched, or
        an objection found no other unit). Written after the case's record,
        idempotently; a crash in between is mended by the case's next step
        or redelivery."""
        key = f"cases.{state.case_id}"
        if state.status is lc.Status.REGISTERED:
            entry = {
                "received_at": state.received_at,
                "category": state.category,
                "township_id": state.township_id,
            }
            upd: dict[str, Any] = {"$set": {key: entry}}
        else:
            upd = {"$unset": {key: ""}}
        await self.store.store.write(UNROUTED, [(state.district_id, upd)])

    async def unrouted(self, district_id: str) -> pb.UnroutedCases:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        await self.directory.get(district_id)
        doc = await self.store.store.get(UNROUTED, district_id) or {}
        rows = sorted(
            (doc.get("cases") or {}).items(), key=lambda kv: (kv[1]["received_at"], kv[0])
        )
        return pb.UnroutedCases(
            district_id=district_id,
            cases=[
                pb.UnroutedCase(
                    case_id=case_id,
                    received_at=to_timestamp(e["received_at"]),
                    category=e["category"],
                    township_id=e["township_id"],
                )
                for case_id, e in rows
            ],
        )

    @ON_EVENT.on("deadline_breached")
    async def _tier_breached(self, event: ev.CaseEvent) -> str:
        if event.deadline_breached.clock != ev.CLOCK_KIND_TIER:
            return "ignored"  # only a tier's time box running out moves the case
        state = await self.store.load_for_change(event.district_id, event.case_id)
        if event.event_id in state.inputs:
            await self._sync_load(state, state)  # a crash may have come before it
            return "duplicate"
        if state.status is not lc.Status.ACCEPTED or state.tier != event.deadline_breached.tier:
            return "ignored"  # the case moved on before the breach was seen
        await self.execute(
            event.district_id,
            event.case_id,
            lc.Escalate(reason="tier time box ran out", on_breach=True),
            _SYSTEM,
            input_event=event.event_id,
        )
        return "applied"

    # ---- commands -------------------------------------------------------------

    async def execute(
        self,
        district_id: str,
        case_id: str,
        cmd: lc.Command,
        actor: ev.Actor,
        expected_version: int = 0,
        input_event: str = "",
    ) -> lc.CaseState:
        district = await self.directory.get(district_id)
        state = await self.store.load_for_change(district_id, case_id)
        if expected_version and expected_version != state.version:
            raise Conflict(
                f"expected_version: case {case_id} is at version {state.version}, "
                f"not {expected_version}"
            )
        loads = await self.store.store.get(LOADS, district_id) or {}
        ctx = lc.Ctx(
            district=district,
            now=datetime.now(UTC),
            role=actor.role,
            unit_id=actor.unit_id,
            leader_load={
                k: len(v) for k, v in (loads.get("open") or {}).items() if isinstance(v, dict)
            },
        )
        payloads = lc.decide(state, cmd, ctx)
        events = [self._event(state, i + 1, p, actor) for i, p in enumerate(payloads)]
        new_state = reduce(lc.apply, events, state)
        if input_event:
            new_state = lc.replace_inputs(new_state, input_event)
        await self.store.commit(state, events, new_state, publish=events, input_event=input_event)
        await self._sync_load(state, new_state)
        if lc.Status.REGISTERED in (state.status, new_state.status):
            await self._sync_unrouted(new_state)
        return new_state

    async def _sync_load(self, before: lc.CaseState, after: lc.CaseState) -> None:
        """Open packages per leader, for load balancing: the set of a leader's
        open packaged cases, so writing it again changes nothing (a retry, a
        redelivery). Written after the case's record; a crash in between
        leaves the balance a case off until the case's next step."""
        upd: dict[str, dict[str, object]] = {}
        key = f"open.{after.leader_id}.{after.case_id}"
        if before.leader_id and before.leader_id != after.leader_id:
            upd.setdefault("$unset", {})[f"open.{before.leader_id}.{after.case_id}"] = ""
        if after.leader_id and after.status is lc.Status.ACCEPTED:
            upd.setdefault("$set", {})[key] = True
        elif after.leader_id:
            upd.setdefault("$unset", {})[key] = ""
        if upd and (before.leader_id or after.leader_id):
            await self.store.store.write(LOADS, [(after.district_id, upd)])

    @staticmethod
    def _event(state: lc.CaseState, step: int, payload: Message, actor: ev.Actor) -> ev.CaseEvent:
        return new_event(
            case_id=state.case_id,
            district_id=state.district_id,
            producer=SERVICE,
            case_version=state.version + step,
            actor=actor,
            payload=payload,
        )

    async def view(self, district_id: str, case_id: str) -> pb.CaseView:
        return to_view(await self.store.load(district_id, case_id))

    async def get(self, district_id: str, case_id: str) -> pb.Assignment:
        state = await self.store.find(district_id, case_id)
        if state is None or not state.unit_id:
            raise NotFound(f"case_id: no assignment for case {case_id!r} in {district_id!r}")
        return pb.Assignment(
            case_id=case_id,
            district_id=district_id,
            unit_id=state.unit_id,
            decision=state.decision,  # type: ignore[arg-type]
            rule_id=state.rule_id,
            rules_version=state.rules_version,
        )

    async def set_rules(self, req: pb.SetRoutingRulesRequest) -> int:
        if not req.district_id:
            raise InvalidArgument("district_id", "is required")
        raw = await self.directory.coll.find_one({"_id": req.district_id})
        if raw is None:
            raise NotFound(f"district_id: unknown district {req.district_id!r}")
        # checked against the stored version, not the directory's cache, and
        # again by the write itself (Directory.put's compare-and-set)
        if req.expected_version and req.expected_version != raw["version"]:
            raise Conflict(
                f"expected_version: table is at version {raw['version']}, "
                f"not {req.expected_version}"
            )
        rows = []
        for i, r in enumerate(req.rules):
            if r.decision not in _DECISION_NAMES:
                raise InvalidArgument(f"rules[{i}].decision", "is required")
            rows.append(
                {
                    "rule_id": r.rule_id,
                    "unit_id": r.unit_id,
                    "category": r.category,
                    "township_id": r.township_id,
                    "decision": _DECISION_NAMES[r.decision],
                }
            )
        try:
            updated = await self.directory.put(
                {**raw["doc"], "routing": rows}, expected_version=int(raw["version"])
            )
        except InvalidArgument as e:  # the district's ``routing`` is the request's ``rules``
            if e.field.startswith("routing"):
                raise InvalidArgument(
                    "rules" + e.field[len("routing") :], e.message.split(": ", 1)[1]
                ) from e
            raise
        return updated.version

    async def get_rules(self, district_id: str) -> pb.RoutingTable:
        district = await self.directory.get(district_id)
        return pb.RoutingTable(
            district_id=district_id,
            version=district.version,
            rules=[
                pb.RoutingRule(
                    rule_id=r.rule_id,
                    category=r.category,
                    township_id=r.township_id,
                    unit_id=r.unit_id,
                    decision=DECISIONS[r.decision],
                )
                for r in district.routing
            ],
        )


def _ts(dt: datetime | None) -> Any:
    return to_timestamp(dt) if dt is not None else None


def to_view(s: lc.CaseState) -> pb.CaseView:
    return pb.CaseView(
        case_id=s.case_id,
        district_id=s.district_id,
        version=s.version,
        status=s.status.value,
        unit_id=s.unit_id,
        decision=s.decision,  # type: ignore[arg-type]
        tier=s.tier,  # type: ignore[arg-type]
        leader_id=s.leader_id,
        notice_sent=s.notice_sent,
        extension_days=s.extension_days,
        resolved=s.resolved,
        rating=s.rating,  # type: ignore[arg-type]
        backflow_count=s.backflow_count,
        objected_units=list(s.objected_units),
        designated=s.designated,
        received_at=_ts(s.received_at),
        routed_at=_ts(s.routed_at),
        accepted_at=_ts(s.accepted_at),
        replied_at=_ts(s.replied_at),
        in_hearing=s.in_hearing,
    )


# a time a caller reports (a visit out) is after this and not in the future
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(minutes=10)
_CTX_FIELDS = frozenset(pb.CommandContext.DESCRIPTOR.fields_by_name)


def _named_in_request(e: XinfangError) -> XinfangError:
    """A command's refusal, naming the field where the request holds it: the
    lifecycle names the case's fields bare (``actor.unit_id``,
    ``expected_version``), the request holds them in ``ctx``; a refusal of
    the step in the case's state (``FailedPrecondition``) is about the case."""
    field = field_of(e.message)
    if field is None:
        return renamed(e, f"ctx.case_id: {e.message}")
    if field.split(".")[0] in _CTX_FIELDS:
        return renamed(e, f"ctx.{e.message}")
    return e


def _check_ctx(c: pb.CommandContext) -> None:
    if not c.district_id:
        raise InvalidArgument("ctx.district_id", "is required")
    if not c.case_id:
        raise InvalidArgument("ctx.case_id", "is required")
    if c.actor.role not in ROLES - {"system"}:
        raise InvalidArgument("ctx.actor.role", "office, unit, leader or supervisor")
    if not c.actor.user_id:
        raise InvalidArgument("ctx.actor.user_id", "is required")


class AssignmentServicer(pb_grpc.AssignmentServiceServicer):
    def __init__(self, assignment: Assignment) -> None:
        self.a = assignment

    async def _run(self, c: pb.CommandContext, cmd: lc.Command) -> pb.CaseView:
        _check_ctx(c)
        try:
            state = await self.a.execute(c.district_id, c.case_id, cmd, c.actor, c.expected_version)
        except XinfangError as e:
            raise _named_in_request(e) from e
        return to_view(state)

    @rpc(SERVICE, OFFICE)
    async def SetRoutingRules(
        self, request: pb.SetRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetRoutingRulesResponse:
        return pb.SetRoutingRulesResponse(version=await self.a.set_rules(request))

    @rpc(SERVICE)
    async def GetRoutingRules(
        self, request: pb.GetRoutingRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RoutingTable:
        return await self.a.get_rules(request.district_id)

    @rpc(SERVICE)
    async def GetAssignment(
        self, request: pb.GetAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Assignment:
        return await self.a.get(request.district_id, request.case_id)

    @rpc(SERVICE)
    async def RouteCase(
        self, request: pb.RouteCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        cmd = lc.RouteCase(request.decision, request.unit_id, request.reason)
        return await self._run(request.ctx, cmd)

    @rpc(SERVICE)
    async def SendNotice(
        self, request: pb.SendNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.SendNotice())

    @rpc(SERVICE)
    async def AcceptCase(
        self, request: pb.AcceptCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.AcceptCase())

    @rpc(SERVICE)
    async def ObjectRemit(
        self, request: pb.ObjectRemitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.ObjectRemit(request.reason))

    @rpc(SERVICE)
    async def DesignateUnit(
        self, request: pb.DesignateUnitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.DesignateUnit(request.unit_id, request.reason))

    @rpc(SERVICE)
    async def Escalate(
        self, request: pb.EscalateRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.Escalate(request.reason))

    @rpc(SERVICE)
    async def AssignLeaderPackage(
        self, request: pb.AssignLeaderPackageRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.AssignLeader(request.leader_id))

    @rpc(SERVICE)
    async def RecordVisitOut(
        self, request: pb.RecordVisitOutRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        if not request.HasField("visited_at"):
            raise InvalidArgument("visited_at", "is required")
        when = request_time(request.visited_at, "visited_at")
        if not _EARLIEST <= when <= datetime.now(UTC) + _CLOCK_SKEW:
            raise InvalidArgument("visited_at", "must be after 2000-01-01 and not in the future")
        return await self._run(request.ctx, lc.RecordVisitOut(request.leader_id, when))

    @rpc(SERVICE)
    async def ExtendHandling(
        self, request: pb.ExtendHandlingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        cmd = lc.ExtendHandling(request.days, request.approver_id, request.reason)
        return await self._run(request.ctx, cmd)

    @rpc(SERVICE)
    async def Reply(
        self, request: pb.ReplyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.Reply(request.resolved))

    @rpc(SERVICE)
    async def RateSatisfaction(
        self, request: pb.RateSatisfactionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.RateSatisfaction(request.rating))

    @rpc(SERVICE)
    async def RequestReview(
        self, request: pb.RequestReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.RequestReview(request.rereview))

    @rpc(SERVICE)
    async def DecideReview(
        self, request: pb.DecideReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.DecideReview(request.upheld, request.rereview))

    @rpc(SERVICE)
    async def ReopenBackflow(
        self, request: pb.ReopenBackflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.ReopenBackflow(request.reason))

    @rpc(SERVICE)
    async def StartHearing(
        self, request: pb.HearingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.StartHearing())

    @rpc(SERVICE)
    async def EndHearing(
        self, request: pb.HearingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, lc.EndHearing())

    @rpc(SERVICE)
    async def GetCase(
        self, request: pb.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        return await self.a.view(request.district_id, request.case_id)

    @rpc(SERVICE)
    async def ListUnroutedCases(
        self, request: pb.ListUnroutedCasesRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnroutedCases:
        return await self.a.unrouted(request.district_id)

    @rpc(SERVICE)
    async def GetTimeline(
        self, request: pb.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.Timeline:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        events = await self.a.store.timeline(request.district_id, request.case_id)
        return pb.Timeline(case_id=request.case_id, events=events)


async def _setup(rt: Runtime) -> BatchHandler | None:
    a = Assignment(CaseStore(rt.store, rt.outbox), rt.directory)

    async def gauge_unrouted() -> None:  # one small document per district
        while True:
            try:
                for doc in await rt.store.scan(UNROUTED, 10_000):
                    UNROUTED_CASES.labels(doc["_id"]).set(len(doc.get("cases") or {}))
            except Exception:
                log.exception("unrouted gauge refresh failed")
            await asyncio.sleep(rt.settings.metrics_refresh_seconds)

    rt.spawn(gauge_unrouted(), "unrouted-gauge")
    rt.grpc.add(
        pb_grpc.add_AssignmentServiceServicer_to_server,
        AssignmentServicer(a),
        pb.DESCRIPTOR.services_by_name["AssignmentService"].full_name,
    )
    return a.handle_batch


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup)
