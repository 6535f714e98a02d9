"""The isolation matrix: every role × every RPC × own district, another
district, and another district's case id, on the running services.

The expected outcomes are declared in one table (``EXPECTED``); the test
builds every request, calls it with the role's token, prints the whole
table (kept in the README) and asserts:

* a district role never gets another district's data: a request naming the
  other district is refused (PERMISSION_DENIED naming the district field, or
  the role first), and the other district's case id under the own district
  is not found (or, for the clocks, an empty answer);
* no answer a district role gets (refusal or not) holds anything of the
  other district: its names (district, units, townships), its cases'
  content, its petitioners' names, or its case ids other than the one the
  request itself carried;
* the other district's cases, routing table, figures, rankings and
  suggestions are as they were after every district role has called;
* a city-wide token (``office@*``) reaches both districts, yet a case is
  still found only under its own district.

Every method of the generated code must have a row, so a new RPC fails this
test until its expected outcomes are declared.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo import AsyncMongoClient

from tests.fuzz.strategies import Method, methods
from tests.fuzz.world import ROLES, World, build_world
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import tool_channel
from xinfang.core.config import Settings
from xinfang.core.errors import field_of
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

pytestmark = pytest.mark.integration

ANY = None
OFFICE = frozenset({"office"})
OVERSIGHT = frozenset({"office", "supervisor"})
# own-district outcomes: "ok" (answered), "step" (answered, or refused by the
# case's state or the actor's unit: the request passed the district check);
# other-case outcomes: "nf" (NOT_FOUND), "empty" (answered with nothing of
# the case), "-" (the request names no case)
# method: (roles the method admits, own district, another district's case id)
EXPECTED: dict[str, tuple[frozenset[str] | None, str, str]] = {
    "intake.RegisterPetition": (OFFICE, "ok", "-"),
    "intake.RevealPetitioner": (ANY, "office-only", "nf"),
    "assignment.SetRoutingRules": (OFFICE, "ok", "-"),
    "assignment.GetRoutingRules": (ANY, "ok", "-"),
    "assignment.GetAssignment": (ANY, "ok", "nf"),
    "assignment.RouteCase": (ANY, "step", "nf"),
    "assignment.SendNotice": (ANY, "step", "nf"),
    "assignment.AcceptCase": (ANY, "step", "nf"),
    "assignment.ObjectRemit": (ANY, "step", "nf"),
    "assignment.DesignateUnit": (ANY, "step", "nf"),
    "assignment.Escalate": (ANY, "step", "nf"),
    "assignment.AssignLeaderPackage": (ANY, "step", "nf"),
    "assignment.RecordVisitOut": (ANY, "step", "nf"),
    "assignment.ExtendHandling": (ANY, "step", "nf"),
    "assignment.Reply": (ANY, "step", "nf"),
    "assignment.RateSatisfaction": (ANY, "step", "nf"),
    "assignment.RequestReview": (ANY, "step", "nf"),
    "assignment.DecideReview": (ANY, "step", "nf"),
    "assignment.ReopenBackflow": (ANY, "step", "nf"),
    "assignment.StartHearing": (ANY, "step", "nf"),
    "assignment.EndHearing": (ANY, "step", "nf"),
    "assignment.ImportHistory": (OFFICE, "step", "nf"),
    "assignment.GetCase": (ANY, "ok", "nf"),
    "assignment.GetTimeline": (ANY, "ok", "nf"),
    "assignment.ListUnroutedCases": (ANY, "ok", "-"),
    "reporting.GetDistrictSummary": (ANY, "ok", "-"),
    "reporting.GetPeriodReport": (ANY, "ok", "-"),
    "reporting.SearchCases": (ANY, "ok", "-"),
    "reporting.GetCaseTimeline": (ANY, "ok", "nf"),
    "reporting.RenderReport": (ANY, "ok", "-"),
    "reporting.GetCitySummary": (ANY, "ok", "-"),
    "reporting.RecordSuggestion": (OFFICE, "ok", "-"),
    "reporting.MarkSuggestionAdopted": (OFFICE, "step", "nf"),
    "supervision.GetCaseClocks": (ANY, "ok", "empty"),
    "supervision.PublishRanking": (OVERSIGHT, "ok", "-"),
    "supervision.GetRanking": (ANY, "ok", "-"),
    "supervision.ReevaluateClocks": (OVERSIGHT, "ok", "-"),
}
DISTRICT_FIELDS = frozenset({"district_id", "ctx.district_id", "district_ids"})
ROW_TOKENS = [*(f"{r}@a" for r in ROLES), "office@*"]
COLUMNS = ("own", "other", "case")


@pytest.fixture(scope="module")
async def world(settings: Settings, mongo: AsyncMongoClient[Doc]) -> AsyncIterator[World]:
    # one fresh case of a per row (its commands move it on), two of b
    w = await build_world(settings, mongo, cases_per_district=len(ROW_TOKENS))
    key, host = settings.auth_key_bytes, settings.grpc_host
    month = datetime.now(UTC).strftime("%Y-%m")
    async with tool_channel(f"{host}:{settings.supervision_grpc}", key=key) as sch:
        supervision = sgrpc.SupervisionServiceStub(sch)
        for did in (w.a, w.b):  # a ranking in each (a suggestion in each: build_world)
            await supervision.PublishRanking(
                spb.PublishRankingRequest(district_id=did, period=month)
            )
    yield w


def request_for(m: Method, w: World, district: str, case_id: str) -> Message:
    """A request of ``m`` that an entitled caller of ``district`` could make."""
    doc = w.docs[w.a if district == w.a else w.b]
    unit = doc["units"][0]["id"]
    leader = doc["leaders"][0]["id"]
    year = str(datetime.now(UTC).year)
    month = datetime.now(UTC).strftime("%Y-%m")
    ctx = apb.CommandContext(district_id=district, case_id=case_id)
    sug = w.suggestions[w.b] if case_id in w.cases[w.b] else w.suggestions[district]
    now = datetime.now(UTC)
    build: dict[str, Callable[[], Message]] = {
        "RegisterPetition": lambda: _petition(doc, district),
        "RevealPetitioner": lambda: ipb.RevealPetitionerRequest(
            district_id=district, case_id=case_id, reason="isolation matrix check"
        ),
        "SetRoutingRules": lambda: apb.SetRoutingRulesRequest(
            district_id=district,
            rules=[
                apb.RoutingRule(
                    rule_id=r["rule_id"],
                    unit_id=r["unit_id"],
                    category=r.get("category", ""),
                    township_id=r.get("township_id", ""),
                    decision=ev.ROUTING_DECISION_ACCEPT,
                )
                for r in doc["routing"]
            ],
        ),
        "GetRoutingRules": lambda: apb.GetRoutingRulesRequest(district_id=district),
        "GetAssignment": lambda: apb.GetAssignmentRequest(district_id=district, case_id=case_id),
        "RouteCase": lambda: apb.RouteCaseRequest(
            ctx=ctx, decision=ev.ROUTING_DECISION_ACCEPT, unit_id=unit
        ),
        "SendNotice": lambda: apb.SendNoticeRequest(ctx=ctx),
        "AcceptCase": lambda: apb.AcceptCaseRequest(ctx=ctx),
        "ObjectRemit": lambda: apb.ObjectRemitRequest(ctx=ctx, reason="not ours, says the unit"),
        "DesignateUnit": lambda: apb.DesignateUnitRequest(ctx=ctx, unit_id=unit, reason="ours"),
        "Escalate": lambda: apb.EscalateRequest(ctx=ctx, reason="not solved at this tier"),
        "AssignLeaderPackage": lambda: apb.AssignLeaderPackageRequest(ctx=ctx),
        "RecordVisitOut": lambda: apb.RecordVisitOutRequest(
            ctx=ctx, leader_id=leader, visited_at=_ts(now)
        ),
        "ExtendHandling": lambda: apb.ExtendHandlingRequest(
            ctx=ctx, days=10, approver_id=leader, reason="an expert opinion is due"
        ),
        "Reply": lambda: apb.ReplyRequest(ctx=ctx, resolved=True),
        "RateSatisfaction": lambda: apb.RateSatisfactionRequest(
            ctx=ctx, rating=ev.SATISFACTION_SATISFIED
        ),
        "RequestReview": lambda: apb.RequestReviewRequest(ctx=ctx),
        "DecideReview": lambda: apb.DecideReviewRequest(ctx=ctx, upheld=True),
        "ReopenBackflow": lambda: apb.ReopenBackflowRequest(ctx=ctx, reason="it came back"),
        "StartHearing": lambda: apb.HearingRequest(ctx=ctx),
        "EndHearing": lambda: apb.HearingRequest(ctx=ctx),
        # a live case takes no imported history: refused by the case's state
        "ImportHistory": lambda: apb.ImportHistoryRequest(
            ctx=ctx,
            source="isolation matrix",
            steps=[
                apb.HistoryStep(
                    notice=apb.SendNoticeRequest(
                        ctx=apb.CommandContext(occurred_at=_ts(now - timedelta(days=1)))
                    )
                )
            ],
        ),
        "GetCase": lambda: apb.GetCaseRequest(district_id=district, case_id=case_id),
        "GetTimeline": lambda: apb.GetTimelineRequest(district_id=district, case_id=case_id),
        "ListUnroutedCases": lambda: apb.ListUnroutedCasesRequest(district_id=district),
        "GetDistrictSummary": lambda: rpb.GetDistrictSummaryRequest(
            district_id=district, period=year
        ),
        "GetPeriodReport": lambda: rpb.GetPeriodReportRequest(district_id=district, period=year),
        "SearchCases": lambda: rpb.SearchCasesRequest(district_id=district),
        "GetCaseTimeline": lambda: rpb.GetCaseTimelineRequest(
            district_id=district, case_id=case_id
        ),
        "RenderReport": lambda: rpb.RenderReportRequest(
            district_id=district, period=year, format="json"
        ),
        "GetCitySummary": lambda: rpb.GetCitySummaryRequest(district_ids=[district], period=year),
        "RecordSuggestion": lambda: rpb.RecordSuggestionRequest(
            district_id=district, title="isolation matrix suggestion"
        ),
        "MarkSuggestionAdopted": lambda: rpb.MarkSuggestionAdoptedRequest(
            district_id=district, suggestion_id=sug
        ),
        "GetCaseClocks": lambda: spb.GetCaseClocksRequest(district_id=district, case_id=case_id),
        "PublishRanking": lambda: spb.PublishRankingRequest(district_id=district, period=month),
        "GetRanking": lambda: spb.GetRankingRequest(
            district_id=district, period=month, kind="unit"
        ),
        "ReevaluateClocks": lambda: spb.ReevaluateClocksRequest(district_id=district),
    }
    return build[m.name]()


def _ts(dt: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(dt)
    return t


def _petition(doc: dict[str, Any], district: str) -> Message:
    day = datetime.now(UTC).date()
    req = next(petitions({**doc, "district_id": district}, 1, seed=3, start=day, end=day))
    req.request_id = uuid.uuid4().hex
    req.received_at.FromDatetime(datetime.now(UTC))
    return req


def classify(code: grpc.StatusCode | None, details: str) -> str:
    if code is None:
        return "ok"
    field = field_of(details) or ""
    if code == grpc.StatusCode.PERMISSION_DENIED:
        if field in DISTRICT_FIELDS:
            return "denied"
        if field in ("authorization", "actor.role", "ctx.actor.role"):
            return "role"
        return "step"  # the actor's unit, or the designating superior: a rule of the case
    if code == grpc.StatusCode.NOT_FOUND:
        return "nf"
    if code in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ABORTED,
    ):
        return "step"
    return str(code.name)


def expected(method: str, token: str, column: str) -> set[str]:
    roles, own, case = EXPECTED[method]
    role = token.split("@", maxsplit=1)[0]
    city = token.endswith("@*")
    if column == "case" and case == "-":
        return {"-"}
    if roles is not None and role not in roles:
        return {"role"}
    if column == "case":
        if own == "office-only" and role != "office":
            return {"role"}
        return {case}
    if column == "other" and not city:
        return {"denied"}
    if own == "office-only":
        return {"ok"} if role == "office" else {"role"}
    # a step of a case may also be refused for the actor's role (designating a unit)
    return {"ok"} if own == "ok" else {"ok", "step", "role"}


async def call(
    ch: grpc.aio.Channel, m: Method, req: Message, md: Any
) -> tuple[str, str, Message | None]:
    fn = ch.unary_unary(
        m.path,
        request_serializer=m.request.SerializeToString,
        response_deserializer=m.response.FromString,
    )
    try:
        resp = await fn(req, metadata=md, timeout=60)
        return "ok", "", resp
    except grpc.aio.AioRpcError as e:
        return classify(e.code(), e.details() or ""), e.details() or "", None


async def b_state(settings: Settings, w: World) -> list[str]:
    """What district b holds, read as its own office would."""
    key, host = settings.auth_key_bytes, settings.grpc_host
    month = datetime.now(UTC).strftime("%Y-%m")
    out: list[str] = []
    async with (
        tool_channel(f"{host}:{settings.assignment_grpc}", key=key) as ach,
        tool_channel(f"{host}:{settings.reporting_grpc}", key=key) as rch,
        tool_channel(f"{host}:{settings.supervision_grpc}", key=key) as sch,
    ):
        a, r, s = (
            agrpc.AssignmentServiceStub(ach),
            rgrpc.ReportingServiceStub(rch),
            sgrpc.SupervisionServiceStub(sch),
        )
        for case_id in w.cases[w.b]:
            v = await a.GetCase(apb.GetCaseRequest(district_id=w.b, case_id=case_id))
            out.append(f"case {case_id} v{v.version} {v.status}")
        t = await a.GetRoutingRules(apb.GetRoutingRulesRequest(district_id=w.b))
        out.append(f"routing v{t.version}")
        year = str(datetime.now(UTC).year)
        summary = await r.GetDistrictSummary(
            rpb.GetDistrictSummaryRequest(district_id=w.b, period=year)
        )
        out.append(f"summary {text_format.MessageToString(summary, as_one_line=True)}")
        sug = w.suggestions[w.b]
        tl = await r.GetCaseTimeline(rpb.GetCaseTimelineRequest(district_id=w.b, case_id=sug))
        out.append(f"suggestion {[e.kind for e in tl.entries]}")
        for kind in ("unit", "leader"):
            rk = await s.GetRanking(spb.GetRankingRequest(district_id=w.b, period=month, kind=kind))
            out.append(f"ranking {kind} {rk.ranking_id}")
    return out


def leaks(w: World, text: str, request: Message) -> list[str]:
    """What of district b is in an answer and was not in the request."""
    sent = text_format.MessageToString(request, as_utf8=True)
    theirs = [*w.secrets, *w.cases[w.b], w.suggestions[w.b]]
    return [s for s in theirs if s in text and s not in sent]


async def test_isolation_matrix(settings: Settings, world: World) -> None:
    w = world
    all_methods = methods()
    assert {m.label for m in all_methods} == set(EXPECTED), "declare every RPC in EXPECTED"
    chans = {
        s: grpc.aio.insecure_channel(f"{settings.grpc_host}:{settings.ports(s)[0]}")
        for s in ("intake", "assignment", "supervision", "reporting")
    }
    table: dict[tuple[str, str, str], str] = {}
    problems: list[str] = []
    before = await b_state(settings, w)
    b_checked = False
    try:
        for row, token in enumerate(ROW_TOKENS):
            if token == "office@*":  # city-wide may change b: check b first
                after = await b_state(settings, w)
                assert after == before, "a district role changed another district's data"
                b_checked = True
            md = w.tokens[token]
            for m in all_methods:
                own_case = w.cases[w.a][row]
                variants = {
                    "own": request_for(m, w, w.a, own_case),
                    "other": request_for(m, w, w.b, w.cases[w.b][0]),
                    "case": request_for(m, w, w.a, w.cases[w.b][1]),
                }
                for column, req in variants.items():
                    want = expected(m.label, token, column)
                    if want == {"-"}:
                        table[(m.label, token, column)] = "-"
                        continue
                    got, details, resp = await call(chans[m.service], m, req, md)
                    if column == "case" and got == "ok" and resp is not None:
                        got = "empty" if _empty(resp) else "ok"
                    table[(m.label, token, column)] = got
                    if got not in want:
                        problems.append(
                            f"{m.label} {token} {column}: {got} ({details}); want {want}"
                        )
                    city_other = token == "office@*" and column == "other"
                    if not city_other:
                        text = details + (
                            text_format.MessageToString(resp, as_utf8=True) if resp else ""
                        )
                        if resp is not None and m.name == "RenderReport":
                            text += resp.content.decode("utf-8", "replace")  # type: ignore[attr-defined]
                        found = leaks(w, text, req)
                        if found:
                            problems.append(f"{m.label} {token} {column} leaks {found}")
    finally:
        for ch in chans.values():
            await ch.close()
    assert b_checked
    print("\n" + render_table(table, all_methods))
    assert not problems, "\n".join(problems)


def _empty(resp: Message) -> bool:
    """An answer that holds nothing but the id it was asked about."""
    return all(f.name == "case_id" for f, _ in resp.ListFields())


CELL = {
    "ok": "ok",
    "step": "step",
    "denied": "PD",
    "role": "PD·role",
    "nf": "NF",
    "empty": "∅",
    "-": "–",
}


def render_table(table: dict[tuple[str, str, str], str], all_methods: list[Method]) -> str:
    head = ["RPC"] + [f"{t} {c}" for t in ROW_TOKENS for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in all_methods:
        cells = [
            CELL.get(table[(m.label, t, c)], table[(m.label, t, c)])
            for t in ROW_TOKENS
            for c in COLUMNS
        ]
        lines.append(f"| {m.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
