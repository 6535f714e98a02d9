"""Full case lifecycles through the real stack: gRPC commands on assignment,
events through Kafka, state in FerretDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import Settings
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc

from .conftest import clocks_of, eventually, metric_value
from .test_pipeline import petition

pytestmark = pytest.mark.integration

OFFICE = ev.Actor(user_id="office-1", role="office")


def unit_actor(unit_id: str) -> ev.Actor:
    return ev.Actor(user_id=f"staff-{unit_id}", role="unit", unit_id=unit_id)


class Case:
    """A registered case and the calls made on it."""

    def __init__(self, stub: agrpc.AssignmentServiceStub, district_id: str, case_id: str):
        self.stub = stub
        self.district_id = district_id
        self.case_id = case_id

    def ctx(self, actor: ev.Actor = OFFICE, expected_version: int = 0) -> apb.CommandContext:
        return apb.CommandContext(
            district_id=self.district_id,
            case_id=self.case_id,
            actor=actor,
            expected_version=expected_version,
        )

    async def view(self) -> apb.CaseView:
        v: apb.CaseView = await self.stub.GetCase(
            apb.GetCaseRequest(district_id=self.district_id, case_id=self.case_id)
        )
        return v

    async def timeline(self) -> list[str]:
        t = await self.stub.GetTimeline(
            apb.GetTimelineRequest(district_id=self.district_id, case_id=self.case_id)
        )
        return [e.WhichOneof("payload") for e in t.events]


async def register(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    seed: int = 1,
    **fields: Any,
) -> Case:
    req = petition(district, seed)
    for k, v in fields.items():
        setattr(req, k, v)
    resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)
    case = Case(
        agrpc.AssignmentServiceStub(assignment_channel), district["district_id"], resp.case_id
    )

    async def routed() -> apb.CaseView | None:
        try:
            return await case.view()
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    await eventually(routed, lambda v: v is not None and v.status == "routed")
    return case


async def refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    return e.value.details() or ""


async def test_group_petition_is_packaged_to_a_district_leader(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    case = await register(
        district, intake_channel, assignment_channel, people_count=30, representatives=5
    )
    v = await case.view()
    accepted = await case.stub.AcceptCase(
        apb.AcceptCaseRequest(ctx=case.ctx(unit_actor(v.unit_id)))
    )
    assert accepted.status == "accepted"
    assert accepted.tier == ev.TIER_DISTRICT_LEADER_PACKAGE
    leaders = {ld["id"] for ld in district["leaders"] if ld["level"] == "district"}
    assert accepted.leader_id in leaders
    assert await case.timeline() == ["registered", "routed", "accepted", "leader_package_assigned"]


async def test_misrouted_case_is_objected_and_rerouted(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    # a category with its own department, so the catch-all office remains
    case = await register(
        district, intake_channel, assignment_channel, seed=2, category="real_estate"
    )
    first = await case.view()
    other_unit = next(u["id"] for u in district["units"] if u["id"] != first.unit_id)
    detail = await refused(
        case.stub.ObjectRemit(
            apb.ObjectRemitRequest(ctx=case.ctx(unit_actor(other_unit)), reason="not ours")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert detail.startswith("ctx.actor.unit_id")
    after = await case.stub.ObjectRemit(
        apb.ObjectRemitRequest(
            ctx=case.ctx(unit_actor(first.unit_id)), reason="housing matter, not ours"
        )
    )
    assert list(after.objected_units) == [first.unit_id]
    assert after.status == "routed" and after.unit_id not in ("", first.unit_id)
    assert await case.timeline() == ["registered", "routed", "remit_objected", "routed"]


async def test_units_disputing_a_case_get_a_unit_designated(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
    supervision_channel: grpc.aio.Channel,
    reporting_channel: grpc.aio.Channel,
) -> None:
    case = await register(
        district, intake_channel, assignment_channel, seed=4, category="real_estate"
    )
    first = (await case.view()).unit_id
    second = (
        await case.stub.ObjectRemit(
            apb.ObjectRemitRequest(ctx=case.ctx(unit_actor(first)), reason="not ours")
        )
    ).unit_id
    disputed = await case.stub.ObjectRemit(
        apb.ObjectRemitRequest(ctx=case.ctx(unit_actor(second)), reason="nor ours")
    )
    assert disputed.status == "disputed" and list(disputed.objected_units) == [first, second]
    # a unit cannot settle it; the common superior (a district leader here) does
    detail = await refused(
        case.stub.DesignateUnit(
            apb.DesignateUnitRequest(ctx=case.ctx(unit_actor(second)), unit_id=first, reason="x")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "Art. 24" in detail
    leader = ev.Actor(user_id="deputy-head", role="leader")
    routed = await case.stub.DesignateUnit(
        apb.DesignateUnitRequest(
            ctx=case.ctx(leader), unit_id=second, reason="the matter is in its remit"
        )
    )
    assert (routed.status, routed.unit_id, routed.designated) == ("routed", second, True)
    detail = await refused(
        case.stub.ObjectRemit(
            apb.ObjectRemitRequest(ctx=case.ctx(unit_actor(second)), reason="still not ours")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "Art. 24" in detail
    await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit_actor(second))))
    assert await case.timeline() == [
        "registered", "routed", "remit_objected", "routed", "remit_objected",
        "remit_disputed", "routed", "accepted",
    ]  # fmt: skip
    # supervision: the designation ended the new register-and-route clock and
    # opened no objection window; reporting counted one dispute
    did = district["district_id"]
    # (a batch's flush inserts the clocks new in it, the handling clock here,
    # before it updates the others: read in between, the window still shows
    # the previous batch's state, so wait for the state asked about)
    by_kind = await eventually(
        lambda: clocks_of(supervision_channel, did, case.case_id),
        lambda c: ev.CLOCK_KIND_HANDLING in c and not c[ev.CLOCK_KIND_REMIT_OBJECTION].open,
    )
    assert not by_kind[ev.CLOCK_KIND_REGISTER_AND_ROUTE].open
    assert not by_kind[ev.CLOCK_KIND_REMIT_OBJECTION].open
    year = str(datetime.now(UTC).year)
    report = await eventually(
        lambda: rgrpc.ReportingServiceStub(reporting_channel).GetPeriodReport(
            rpb.GetPeriodReportRequest(district_id=did, period=year)
        ),
        lambda r: r.current.accepted == 1,
    )
    assert report.current.unit_disputes == 1


async def test_extension_once_then_reply_review_rereview_and_finality(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    case = await register(district, intake_channel, assignment_channel, seed=3)
    unit = unit_actor((await case.view()).unit_id)
    s = case.stub
    await s.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
    ext = await s.ExtendHandling(
        apb.ExtendHandlingRequest(
            ctx=case.ctx(unit), days=20, approver_id="leader-x", reason="needs a site survey"
        )
    )
    assert ext.extension_days == 20
    detail = await refused(
        s.ExtendHandling(
            apb.ExtendHandlingRequest(ctx=case.ctx(unit), days=5, approver_id="a", reason="more")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "Art. 34" in detail and "accepted" in detail
    await s.Reply(apb.ReplyRequest(ctx=case.ctx(unit), resolved=False))
    await s.RateSatisfaction(
        apb.RateSatisfactionRequest(ctx=case.ctx(), rating=ev.SATISFACTION_DISSATISFIED)
    )
    await s.RequestReview(apb.RequestReviewRequest(ctx=case.ctx()))
    await s.DecideReview(apb.DecideReviewRequest(ctx=case.ctx(), upheld=True))
    await s.RequestReview(apb.RequestReviewRequest(ctx=case.ctx(), rereview=True))
    final = await s.DecideReview(
        apb.DecideReviewRequest(ctx=case.ctx(), rereview=True, upheld=True)
    )
    assert final.status == "final"
    detail = await refused(
        s.ReopenBackflow(apb.ReopenBackflowRequest(ctx=case.ctx(), reason="again")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "final" in detail and "Art. 36" in detail
    assert (await case.timeline())[-3:] == ["review_requested", "review_decided", "finalized"]


async def test_resolved_case_that_comes_back_is_backflow(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    case = await register(district, intake_channel, assignment_channel, seed=4)
    unit = unit_actor((await case.view()).unit_id)
    await case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit)))
    await case.stub.Reply(apb.ReplyRequest(ctx=case.ctx(unit), resolved=True))
    back = await case.stub.ReopenBackflow(
        apb.ReopenBackflowRequest(ctx=case.ctx(), reason="the settlement was not paid")
    )
    assert back.status == "accepted" and back.backflow_count == 1


async def test_illegal_steps_name_the_state_and_the_rule(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    case = await register(district, intake_channel, assignment_channel, seed=5)
    detail = await refused(
        case.stub.Reply(apb.ReplyRequest(ctx=case.ctx(), resolved=True)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "is routed" in detail and "accepted" in detail
    detail = await refused(
        case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(expected_version=1))),
        grpc.StatusCode.ABORTED,
    )
    assert detail.startswith("ctx.expected_version")
    missing = apb.CommandContext(district_id=case.district_id, case_id="nope", actor=OFFICE)
    await refused(
        case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=missing)), grpc.StatusCode.NOT_FOUND
    )
    # the platform's own processes act as "system"; a person's command may not
    as_system = apb.CommandContext(
        district_id=case.district_id,
        case_id=case.case_id,
        actor=ev.Actor(user_id="x", role="system"),
    )
    detail = await refused(
        case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=as_system)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert detail.startswith("ctx.actor.role")


async def test_conflicting_commands_at_once_exactly_one_wins(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    for seed in range(6, 11):
        case = await register(district, intake_channel, assignment_channel, seed=seed)
        unit = unit_actor((await case.view()).unit_id)
        results = await asyncio.gather(
            case.stub.AcceptCase(apb.AcceptCaseRequest(ctx=case.ctx(unit))),
            case.stub.ObjectRemit(apb.ObjectRemitRequest(ctx=case.ctx(unit), reason="not ours")),
            return_exceptions=True,
        )
        ok = [r for r in results if isinstance(r, apb.CaseView)]
        errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(ok) == 1 and len(errors) == 1, results
        assert errors[0].code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        timeline = await case.timeline()
        # no lost update: exactly one of the two steps is in the log
        assert ("accepted" in timeline) != ("remit_objected" in timeline), timeline
        assert (await case.view()).version == len(timeline)


async def test_leader_visit_out_is_recorded(
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    case = await register(district, intake_channel, assignment_channel, seed=12)
    when = Timestamp()
    when.GetCurrentTime()
    leader = district["leaders"][0]["id"]
    await case.stub.RecordVisitOut(
        apb.RecordVisitOutRequest(ctx=case.ctx(), leader_id=leader, visited_at=when)
    )
    assert (await case.timeline())[-1] == "leader_visit_out"


async def test_a_case_no_rule_matches_waits_unrouted_for_the_office(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    did = district["district_id"]
    stub = agrpc.AssignmentServiceStub(assignment_channel)
    table = await stub.GetRoutingRules(apb.GetRoutingRulesRequest(district_id=did))
    req = petition(district, seed=5)
    # a table without a catch-all, whose one row is for another category
    other = next(c["code"] for c in district["categories"] if c["code"] != req.category)
    row = next(r for r in table.rules if r.unit_id)
    only = apb.RoutingRule(
        rule_id="only", category=other, unit_id=row.unit_id, decision=row.decision
    )
    await stub.SetRoutingRules(apb.SetRoutingRulesRequest(district_id=did, rules=[only]))
    await asyncio.sleep(6)  # the directory's cache in every consumer (5 s)
    resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(req)
    waiting = await eventually(
        lambda: stub.ListUnroutedCases(apb.ListUnroutedCasesRequest(district_id=did)),
        lambda w: [c.case_id for c in w.cases] == [resp.case_id],
    )
    assert waiting.cases[0].category == req.category
    case = Case(stub, did, resp.case_id)
    assert (await case.view()).status == "registered"  # readable, not dead-lettered
    await eventually(
        lambda: metric_value(settings, "assignment", f'xinfang_unrouted_cases{{district="{did}"}}'),
        lambda n: n == 1,
    )
    routed = await stub.RouteCase(
        apb.RouteCaseRequest(
            ctx=case.ctx(), decision=ev.ROUTING_DECISION_ACCEPT, unit_id=row.unit_id
        )
    )
    assert routed.status == "routed"
    # the list is the consumer's (one writer per partition): it follows the
    # routing's event moments later
    await eventually(
        lambda: stub.ListUnroutedCases(apb.ListUnroutedCasesRequest(district_id=did)),
        lambda w: list(w.cases) == [],
    )
