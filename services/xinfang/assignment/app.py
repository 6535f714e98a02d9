"""Assignment: routes each registered case and carries it through its
statutory life (accept, object, tiers, leader packages, extension, reply,
rating, review, re-review, backflow).

Commands arrive over gRPC; registrations and breaches arrive as events. Both
go through one path: load the case, ``lifecycle.decide``, commit the events
with optimistic versioning (``store.CaseStore``), publish through the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

import grpc
from google.protobuf.message import Message
from prometheus_client import Gauge

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.routing import DECISIONS, route
from xinfang.assignment.store import CaseStore, first_event, first_event_id
from xinfang.assignment.v1 import assignment_pb2 as pb
from xinfang.assignment.v1 import assignment_pb2_grpc as pb_grpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.auth import OFFICE
from xinfang.core.batch import CaseBlocked
from xinfang.core.codec import new_event, payload_name, request_time, to_timestamp
from xinfang.core.config import DEFAULT_PARTITIONS
from xinfang.core.directory import Directory
from xinfang.core.errors import (
    Conflict,
    FailedPrecondition,
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
# the namespace of an imported history's event ids (uuid5 of its digest and version)
_HISTORY_IDS = uuid.UUID("6f1d3c52-7a0e-5b8c-9d41-2e6a8f0b7c13")


# Per district, in one shard per partition (core.shards), written only by the
# consumer of the cases' partition, so each shard has one writer however many
# replicas serve commands (FerretDB loses one of two concurrent updates):
LOADS = "leader_load"  # the open packaged cases, case -> leader, for balancing
UNROUTED = "unrouted"  # the cases waiting for the office to route them by hand
log = get_logger(__name__)

UNROUTED_CASES = Gauge(
    "xinfang_unrouted_cases",
    "Registered cases no routing row matched, waiting for the office to route them",
    ["district"],
)


def _moves_members(event: ev.CaseEvent) -> bool:
    """Whether the event may move its case on or off a district list: any
    step assignment recorded, except the routing recorded with a
    registration (``_routing``: a case routed at once was never listed)."""
    if event.producer != SERVICE or event.WhichOneof("payload") == "registered":
        return False
    auto_routed = event.WhichOneof("payload") == "routed" and event.case_version == 2
    return not (auto_routed and event.actor.role == _SYSTEM.role)


# the events assignment acts on (commands arrive over gRPC)
ON_EVENT: Registry[Callable[[Assignment, ev.CaseEvent], Awaitable[str]]] = Registry("assignment")


class Assignment:
    def __init__(
        self, store: CaseStore, directory: Directory, partitions: int = DEFAULT_PARTITIONS
    ) -> None:
        self.store = store
        self.directory = directory
        self.partitions = partitions

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
        # the cases whose place in the shared lists may have moved: case ->
        # (index of its last such event, its partition, its state if known)
        members: dict[str, tuple[int, ev.CaseEvent, int, lc.CaseState | None]] = {}

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
                    if state.status is lc.Status.REGISTERED and event.entry != ev.ENTRY_HISTORY:
                        # no row matched: it waits, listed as unrouted (a
                        # routed new case is on no list, so costs no write)
                        members[event.case_id] = (i, event, items[i][1].partition, state)
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
                if _moves_members(event):
                    members[event.case_id] = (i, event, pos.partition, None)
            except TRANSIENT_ERRORS:
                raise
            except Exception as e:
                out[i] = e
                failed.add(event.case_id)
        await flush()
        await self._sync_members(members, out)
        return [r if r is not None else "ignored" for r in out]

    async def _sync_members(
        self,
        members: dict[str, tuple[int, ev.CaseEvent, int, lc.CaseState | None]],
        out: list[str | Exception | None],
    ) -> None:
        """Bring each case's entries in the district's lists (open packages
        per leader, cases waiting to be routed) to its latest state, in its
        partition's shard: set or removed, so a redelivery changes nothing.
        After the batch's records, before its offsets: a crash in between
        redoes it. Commands do not write the lists; the consumer of the
        case's partition does, moments after the command's events."""
        if not members:
            return
        loads: dict[str, dict[str, dict[str, Any]]] = {}
        waiting: dict[str, dict[str, dict[str, Any]]] = {}
        for case_id, (i, event, partition, known) in members.items():
            if isinstance(out[i], Exception):
                continue
            state = known or await self.store.find(event.district_id, case_id)
            if state is None:
                out[i] = NotFound(f"case_id: no case {case_id!r} in district {event.district_id!r}")
                continue
            doc = shards.shard_id(state.district_id, partition)
            key = f"cases.{case_id}"
            load = loads.setdefault(doc, {})
            if state.status is lc.Status.ACCEPTED and state.leader_id:
                load.setdefault("$set", {})[key] = state.leader_id
            else:
                load.setdefault("$unset", {})[key] = ""
            wait = waiting.setdefault(doc, {})
            if state.status is lc.Status.REGISTERED:
                wait.setdefault("$set", {})[key] = {
                    "received_at": state.received_at,
                    "category": state.category,
                    "township_id": state.township_id,
                }
            else:
                wait.setdefault("$unset", {})[key] = ""
            if out[i] == "ignored":
                out[i] = "applied"
        if loads:
            await self.store.store.write(LOADS, list(loads.items()))
        if waiting:
            await self.store.store.write(UNROUTED, list(waiting.items()))

    async def _routing(self, event: ev.CaseEvent) -> tuple[list[ev.CaseEvent], lc.CaseState]:
        """A registration's first record: the registration and its routing
        decision, or (no row matched, not even a catch-all) the registration
        alone, and the case waits, listed as unrouted, for the office to
        route it by hand (RouteCase); nothing is dead-lettered."""
        district = await self.directory.get(event.district_id)
        state = lc.from_registration(event)
        if event.entry == ev.ENTRY_HISTORY:
            return [event], state  # its history's steps route it (ImportHistory)
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
        return "applied" if inserted else "duplicate"

    async def unrouted(self, district_id: str) -> pb.UnroutedCases:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        await self.directory.get(district_id)
        got = await shards.read(self.store.store, UNROUTED, [district_id], self.partitions)
        doc = got.get(district_id, {})
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
            return "duplicate"
        if state.status is not lc.Status.ACCEPTED or state.tier != event.deadline_breached.tier:
            return "ignored"  # the case moved on before the breach was seen
        if lc.at_top(state):
            return "ignored"  # nowhere to climb (lc.at_top): not a dead letter
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
        occurred_at: datetime | None = None,
        late_reason: str = "",
    ) -> lc.CaseState:
        """One command against the case's latest state; ``occurred_at`` is
        when it really happened (补录, checked by ``lifecycle.check_when``),
        None for now."""
        district = await self.directory.get(district_id)
        state = await self.store.load_for_change(district_id, case_id)
        if expected_version and expected_version != state.version:
            raise Conflict(
                f"expected_version: case {case_id} is at version {state.version}, "
                f"not {expected_version}"
            )
        ctx = lc.Ctx(
            district=district,
            now=datetime.now(UTC),
            role=actor.role,
            unit_id=actor.unit_id,
            leader_load=await self._leader_load(district_id),
            occurred_at=occurred_at,
            late_reason=late_reason.strip(),
        )
        ctx = lc.check_when(state, ctx)
        payloads = lc.decide(state, cmd, ctx)
        events = [self._event(state, i + 1, p, actor, ctx) for i, p in enumerate(payloads)]
        new_state = reduce(lc.apply, events, state)
        if input_event:
            new_state = lc.replace_inputs(new_state, input_event)
        await self.store.commit(state, events, new_state, publish=events, input_event=input_event)
        return new_state

    async def import_history(self, req: pb.ImportHistoryRequest) -> pb.ImportHistoryResponse:
        """A case's history from the system used before, recorded whole as the
        one record after its registration, or refused whole.

        Authorised by the method itself: the petition office only (its token
        says so), and only for a case registered with ``history_source``, which
        assignment did not route by the table. Its steps are not bound by the
        late-entry window (a migrated year is older than 30 days); each event
        is marked ``ENTRY_HISTORY``, carries the importing user as its actor
        and the source as its late reason. Importing the same history again
        changes nothing: its record is known by a digest of the request, and
        its event ids are derived from it.
        """
        c = req.ctx
        source = req.source.strip()
        if not source:
            raise InvalidArgument("source", "names the system the history comes from and its case")
        steps = history_steps(req.steps)
        district = await self.directory.get(c.district_id)
        # of what the history says, not of who imports it
        h = hashlib.sha256(source.encode())
        for step in req.steps:
            h.update(step.SerializeToString(deterministic=True))
        digest = h.hexdigest()[:32]
        marker = f"history:{digest}"
        ctx = lc.Ctx(
            district=district,
            now=datetime.now(UTC),
            role=c.actor.role,
            unit_id=c.actor.unit_id,
            leader_load=await self._leader_load(c.district_id),
            late_reason=f"history: {source}",
            entry=ev.ENTRY_HISTORY,
        )
        if req.dry_run:
            found = await self.store.find(c.district_id, c.case_id)
        else:
            found = await self.store.load_for_change(c.district_id, c.case_id)
        if found is not None:
            first = await self.store.first_record(c.case_id)
            if first is None or first_event(first).entry != ev.ENTRY_HISTORY:
                raise FailedPrecondition(
                    f"case {c.case_id} was registered to be handled here, not with a history "
                    "(register it with history_source)"
                )
            if found.version > 1:
                second = await self.store.record(c.case_id, 2)
                if second is not None and second.get("input") == marker:
                    return pb.ImportHistoryResponse(case=to_view(found), imported_before=True)
                raise FailedPrecondition(
                    f"case {c.case_id} has steps recorded already; a history is imported "
                    "into a case that has none"
                )
        if req.dry_run:
            if found is None and req.HasField("registration"):
                found = lc.from_registration(
                    ev.CaseEvent(
                        case_id=c.case_id,
                        district_id=c.district_id,
                        registered=req.registration,
                        occurred_at=req.registration.received_at,
                    )
                )
            state = found or await self.store.load(c.district_id, c.case_id)
            _events, after = lc.history(state, steps, ctx)
            return pb.ImportHistoryResponse(case=to_view(after), applied=False)
        assert found is not None  # load_for_change raised NotFound otherwise
        state = found

        def make(st: lc.CaseState, step: int, payload: Message, cx: lc.Ctx) -> ev.CaseEvent:
            version = st.version + step
            eid = str(uuid.uuid5(_HISTORY_IDS, f"{marker}:{c.case_id}:{version}"))
            return self._event(st, step, payload, c.actor, cx, event_id=eid)

        events, new_state = lc.history(state, steps, ctx, make)
        new_state = lc.replace_inputs(new_state, marker)
        await self.store.commit(state, events, new_state, publish=events, input_event=marker)
        return pb.ImportHistoryResponse(case=to_view(new_state), applied=True)

    async def _leader_load(self, district_id: str) -> dict[str, int]:
        """Open packages per leader, for balancing: as the consumer last saw
        them (a package given moments ago may not be counted yet)."""
        got = await shards.read(self.store.store, LOADS, [district_id], self.partitions)
        cases = got.get(district_id, {}).get("cases") or {}
        return dict(Counter(str(v) for v in cases.values()))

    @staticmethod
    def _event(
        state: lc.CaseState,
        step: int,
        payload: Message,
        actor: ev.Actor,
        ctx: lc.Ctx | None = None,
        event_id: str | None = None,
    ) -> ev.CaseEvent:
        """A step's event: when it happened (``ctx.at``), how it was entered
        (live, late, history) and why late; recorded_at is the server's now."""
        event = new_event(
            case_id=state.case_id,
            district_id=state.district_id,
            producer=SERVICE,
            case_version=state.version + step,
            actor=actor,
            payload=payload,
            occurred_at=ctx.at if ctx is not None else None,
            event_id=event_id,
        )
        if ctx is not None:
            event.entry = ctx.entry_mode  # type: ignore[assignment]
            if ctx.entry_mode != ev.ENTRY_UNSPECIFIED:
                event.late_reason = ctx.late_reason
        return event

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


def _occurred_at(c: pb.CommandContext) -> datetime | None:
    return c.occurred_at.ToDatetime(tzinfo=UTC) if c.HasField("occurred_at") else None


def _check_ctx(c: pb.CommandContext) -> None:
    if not c.district_id:
        raise InvalidArgument("ctx.district_id", "is required")
    if not c.case_id:
        raise InvalidArgument("ctx.case_id", "is required")
    if c.actor.role not in ROLES - {"system"}:
        raise InvalidArgument("ctx.actor.role", "office, unit, leader or supervisor")
    if not c.actor.user_id:
        raise InvalidArgument("ctx.actor.user_id", "is required")


def _visit_out(r: pb.RecordVisitOutRequest) -> lc.Command:
    if not r.HasField("visited_at"):
        raise InvalidArgument("visited_at", "is required")
    when = request_time(r.visited_at, "visited_at")
    if not _EARLIEST <= when <= datetime.now(UTC) + _CLOCK_SKEW:
        raise InvalidArgument("visited_at", "must be after 2000-01-01 and not in the future")
    return lc.RecordVisitOut(r.leader_id, when)


# a command request (by its field in ``HistoryStep``) -> the lifecycle's command
COMMANDS: dict[str, Callable[[Any], lc.Command]] = {
    "route": lambda r: lc.RouteCase(r.decision, r.unit_id, r.reason),
    "notice": lambda r: lc.SendNotice(),
    "accept": lambda r: lc.AcceptCase(),
    "object_remit": lambda r: lc.ObjectRemit(r.reason),
    "designate": lambda r: lc.DesignateUnit(r.unit_id, r.reason),
    "escalate": lambda r: lc.Escalate(r.reason),
    "leader_package": lambda r: lc.AssignLeader(r.leader_id),
    "visit_out": _visit_out,
    "extend": lambda r: lc.ExtendHandling(r.days, r.approver_id, r.reason),
    "reply": lambda r: lc.Reply(r.resolved),
    "rate": lambda r: lc.RateSatisfaction(r.rating),
    "review": lambda r: lc.RequestReview(r.rereview),
    "decide_review": lambda r: lc.DecideReview(r.upheld, r.rereview),
    "backflow": lambda r: lc.ReopenBackflow(r.reason),
    "hearing_start": lambda r: lc.StartHearing(),
    "hearing_end": lambda r: lc.EndHearing(),
}


def history_steps(steps: Sequence[pb.HistoryStep]) -> list[tuple[lc.Command, datetime]]:
    """An imported history's steps as commands, each at its time."""
    out: list[tuple[lc.Command, datetime]] = []
    for i, step in enumerate(steps):
        kind = step.WhichOneof("step")
        if kind is None:
            raise InvalidArgument(f"steps[{i}]", "names no step")
        req = getattr(step, kind)
        if not req.ctx.HasField("occurred_at"):
            raise InvalidArgument(f"steps[{i}].ctx.occurred_at", "is required: when it happened")
        try:
            cmd = COMMANDS[kind](req)
        except InvalidArgument as e:
            raise InvalidArgument(f"steps[{i}].{e.field}", e.message.split(": ", 1)[1]) from e
        out.append((cmd, req.ctx.occurred_at.ToDatetime(tzinfo=UTC)))
    return out


class AssignmentServicer(pb_grpc.AssignmentServiceServicer):
    def __init__(self, assignment: Assignment) -> None:
        self.a = assignment

    async def _run(self, c: pb.CommandContext, cmd: lc.Command) -> pb.CaseView:
        _check_ctx(c)
        try:
            state = await self.a.execute(
                c.district_id,
                c.case_id,
                cmd,
                c.actor,
                c.expected_version,
                occurred_at=_occurred_at(c),
                late_reason=c.late_reason,
            )
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
        return await self._run(request.ctx, COMMANDS["route"](request))

    @rpc(SERVICE)
    async def SendNotice(
        self, request: pb.SendNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["notice"](request))

    @rpc(SERVICE)
    async def AcceptCase(
        self, request: pb.AcceptCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["accept"](request))

    @rpc(SERVICE)
    async def ObjectRemit(
        self, request: pb.ObjectRemitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["object_remit"](request))

    @rpc(SERVICE)
    async def DesignateUnit(
        self, request: pb.DesignateUnitRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["designate"](request))

    @rpc(SERVICE)
    async def Escalate(
        self, request: pb.EscalateRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["escalate"](request))

    @rpc(SERVICE)
    async def AssignLeaderPackage(
        self, request: pb.AssignLeaderPackageRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["leader_package"](request))

    @rpc(SERVICE)
    async def RecordVisitOut(
        self, request: pb.RecordVisitOutRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["visit_out"](request))

    @rpc(SERVICE)
    async def ExtendHandling(
        self, request: pb.ExtendHandlingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["extend"](request))

    @rpc(SERVICE)
    async def Reply(
        self, request: pb.ReplyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["reply"](request))

    @rpc(SERVICE)
    async def RateSatisfaction(
        self, request: pb.RateSatisfactionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["rate"](request))

    @rpc(SERVICE)
    async def RequestReview(
        self, request: pb.RequestReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["review"](request))

    @rpc(SERVICE)
    async def DecideReview(
        self, request: pb.DecideReviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["decide_review"](request))

    @rpc(SERVICE)
    async def ReopenBackflow(
        self, request: pb.ReopenBackflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["backflow"](request))

    @rpc(SERVICE)
    async def StartHearing(
        self, request: pb.HearingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["hearing_start"](request))

    @rpc(SERVICE)
    async def EndHearing(
        self, request: pb.HearingRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseView:
        return await self._run(request.ctx, COMMANDS["hearing_end"](request))

    @rpc(SERVICE, OFFICE)
    async def ImportHistory(
        self, request: pb.ImportHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportHistoryResponse:
        _check_ctx(request.ctx)
        return await self.a.import_history(request)

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
    a = Assignment(CaseStore(rt.store, rt.outbox), rt.directory, rt.settings.partitions)

    async def gauge_unrouted() -> None:  # a small document per district and partition
        while True:
            try:
                for doc in shards.merge_all(await rt.store.scan(UNROUTED, 10_000)):
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
