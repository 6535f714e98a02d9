"""Assignment: routes each registered case to the unit that must solve it.

Consumes CaseRegistered, decides with the district's routing table and
publishes CaseRouted through its own outbox, in the same single-document
write that records the decision and that the registration was processed.
"""

from __future__ import annotations

from typing import Any

import grpc

from xinfang.assignment.routing import DECISIONS, route
from xinfang.assignment.v1 import assignment_pb2 as pb
from xinfang.assignment.v1 import assignment_pb2_grpc as pb_grpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event
from xinfang.core.directory import Directory
from xinfang.core.errors import Conflict, InvalidArgument, NotFound
from xinfang.core.grpc_server import rpc
from xinfang.core.mongo import Collection, Position, apply_once
from xinfang.core.outbox import Outbox
from xinfang.core.runtime import Handler, Runtime, ServiceSpec

__all__ = ["SPEC", "Assignment", "NoRoutingRule"]

SERVICE = "assignment"
_DECISION_NAMES = {v: k for k, v in DECISIONS.items()}


class NoRoutingRule(LookupError):
    """The district's table has no row for this case, not even a catch-all."""


class Assignment:
    def __init__(self, cases: Collection, outbox: Outbox, directory: Directory) -> None:
        self.cases = cases
        self.outbox = outbox
        self.directory = directory

    async def handle(self, event: ev.CaseEvent, pos: Position) -> str:
        if event.WhichOneof("payload") != "registered":
            return "ignored"
        reg = event.registered
        district = await self.directory.get(event.district_id)
        row = route(district.routing, reg.category, reg.township_id)
        if row is None:
            raise NoRoutingRule(
                f"district {event.district_id}: no routing row for category "
                f"{reg.category!r} / township {reg.township_id!r}"
            )
        routed = new_event(
            case_id=event.case_id,
            district_id=event.district_id,
            producer=SERVICE,
            case_version=1,
            routed=ev.CaseRouted(
                decision=DECISIONS[row.decision],
                unit_id=row.unit_id,
                rule_id=row.rule_id,
                rules_version=district.version,
            ),
        )

        async def update() -> dict[str, Any]:
            staged = await self.outbox.stage(self.cases, event.case_id, [routed])
            return {
                "$set": {
                    "district_id": event.district_id,
                    "unit_id": row.unit_id,
                    "decision": row.decision,
                    "rule_id": row.rule_id,
                    "rules_version": district.version,
                    "status": "routed",
                    "version": 1,
                    **staged,
                }
            }

        applied = await apply_once(self.cases, event.case_id, event.event_id, update, pos)
        return "applied" if applied.first else "duplicate"

    async def get(self, district_id: str, case_id: str) -> pb.Assignment:
        doc = await self.cases.find_one({"_id": case_id})
        if doc is None or doc["district_id"] != district_id:
            raise NotFound(f"case_id: no assignment for case {case_id!r} in {district_id!r}")
        return pb.Assignment(
            case_id=case_id,
            district_id=district_id,
            unit_id=doc["unit_id"],
            decision=DECISIONS[doc["decision"]],
            rule_id=doc["rule_id"],
            rules_version=doc["rules_version"],
        )

    async def set_rules(self, req: pb.SetRoutingRulesRequest) -> int:
        if not req.district_id:
            raise InvalidArgument("district_id", "is required")
        district = await self.directory.get(req.district_id)
        if req.expected_version and req.expected_version != district.version:
            raise Conflict(
                f"expected_version: table is at version {district.version}, "
                f"not {req.expected_version}"
            )
        raw = await self.directory.coll.find_one({"_id": req.district_id})
        assert raw is not None
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
        updated = await self.directory.put({**raw["doc"], "routing": rows})
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


class AssignmentServicer(pb_grpc.AssignmentServiceServicer):
    def __init__(self, assignment: Assignment) -> None:
        self.a = assignment

    @rpc(SERVICE)
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


async def _setup(rt: Runtime) -> Handler | None:
    a = Assignment(rt.db["cases"], rt.outbox, rt.directory)
    rt.grpc.add(
        pb_grpc.add_AssignmentServiceServicer_to_server,
        AssignmentServicer(a),
        pb.DESCRIPTOR.services_by_name["AssignmentService"].full_name,
    )

    async def handle(event: ev.CaseEvent, pos: Position) -> str:
        outcome = await a.handle(event, pos)
        if outcome == "applied":
            rt.wake_relay()
        return outcome

    return handle


SPEC = ServiceSpec(
    name=SERVICE,
    consumes=True,
    setup=_setup,
    outbox_collections=lambda rt: [rt.db["cases"]],
)
