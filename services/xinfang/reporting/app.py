"""Reporting: read models of the case stream, the queries on them, and the
district report rendered from them.

Per district, two kinds of documents:
* one case document per case (collection ``cases_<district>``: a district's
  own collection, so a search reads that district's cases only), recording
  each event against its case (deduplicated by event id) with its timeline;
* one counter document per district and year, holding the year, its
  quarters and months (``projections.year_doc_fields``), plus the monthly
  backlog changes; both deduplicated by event position.
A redelivery or a replay therefore changes no figure; ``rebuild`` replays the
log into empty read models and must arrive at the same figures.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import grpc
from pymongo.asynchronous.database import AsyncDatabase

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.auth import OFFICE, tool_channel
from xinfang.core.batch import Batch, BatchConsumer, OwnedDocs, cases_of
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import (
    encode_event,
    new_event,
    new_id,
    payload_name,
    request_time,
    to_timestamp,
)
from xinfang.core.config import DEFAULT_PARTITIONS
from xinfang.core.directory import Directory
from xinfang.core.districts import District
from xinfang.core.errors import FailedPrecondition, InvalidArgument, NotFound, renamed
from xinfang.core.grpc_server import rpc
from xinfang.core.mongo import TRANSIENT_ERRORS, Collection, Doc, Position
from xinfang.core.runtime import BatchHandler, Runtime, ServiceSpec
from xinfang.core.store import Store
from xinfang.reporting import report as render
from xinfang.reporting.figures import PeriodFigures, ReportFigures
from xinfang.reporting.projections import (
    ReportSpans,
    attributed_at,
    case_update,
    contributions,
    counter_writes,
    parse_period,
    span_figures,
)
from xinfang.reporting.v1 import reporting_pb2 as pb
from xinfang.reporting.v1 import reporting_pb2_grpc as pb_grpc
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as spb_grpc

__all__ = ["SPEC", "Reporting", "to_pb_figures"]

SERVICE = "reporting"
MAX_PAGE = 500
COUNTERS = "counters"


def _cases(district_id: str) -> str:
    """A district's own collection of case documents: a search reads only it."""
    return f"cases_{district_id}"


# the events that start a document of the read model: a case's registration,
# and a suggestion (its own record); every other event needs one of these first
_OPENS_A_DOCUMENT = frozenset({"registered", "suggestion_made", "unknown"})


class Reporting:
    def __init__(
        self,
        db: AsyncDatabase[Doc],
        directory: Directory,
        supervision: str | None = None,
        publish: Callable[[ev.CaseEvent], Awaitable[None]] | None = None,
        auth_key: bytes | None = None,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        self.partitions = partitions  # the counters' shards (core.shards)
        self.publish = publish
        self.auth_key = auth_key  # signs reporting's own calls to supervision
        self.db = db
        self.counters: Collection = db[COUNTERS]
        self.directory = directory
        self.supervision = supervision  # address of supervision's gRPC, for rankings
        self._channel: grpc.aio.Channel | None = None

    async def rankings(self, district_id: str, period: str) -> dict[str, list[dict[str, Any]]]:
        """The latest published ranking for the report (supervision owns them):
        the period's own, or for a year the last quarter that has one."""
        if self.supervision is None:
            return {}
        if self._channel is None:
            self._channel = tool_channel(
                self.supervision, key=self.auth_key, user_id="reporting", role="system"
            )
        stub = spb_grpc.SupervisionServiceStub(self._channel)
        candidates = [period] if len(period) > 4 else [f"{period}-Q{q}" for q in (4, 3, 2, 1)]
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in ("unit", "leader"):
            for p in candidates:
                try:
                    r = await stub.GetRanking(
                        spb.GetRankingRequest(district_id=district_id, period=p, kind=kind),
                        timeout=5,
                    )
                except grpc.aio.AioRpcError as e:
                    if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                        continue
                    raise
                out[kind] = [
                    {"subject": row.subject, "score": row.score, "volume": row.volume,
                     "ranked": row.ranked, "rank": row.rank or None, "bottom": row.bottom}
                    for row in r.rows
                ]  # fmt: skip
                break
        return out

    def cases(self, district_id: str) -> Collection:
        return self.db[_cases(district_id)]

    # ---- projection ------------------------------------------------------------------

    def consumer(self, store: Store, owned: OwnedDocs | None = None) -> BatchConsumer:
        """The projection over batches (``core.batch``): live, and in a
        rebuild by replay, which is the same code with bigger batches and the
        case documents it has written kept in memory (``owned``)."""
        return BatchConsumer(store, (), self._prepare, self._apply, TRANSIENT_ERRORS, owned=owned)

    async def _prepare(self, b: Batch, items: Sequence[tuple[ev.CaseEvent, Position]]) -> None:
        by_district: dict[str, list[tuple[ev.CaseEvent, Position]]] = {}
        for event, pos in items:
            by_district.setdefault(event.district_id, []).append((event, pos))
        for district_id, of_district in by_district.items():
            await b.load_cases(_cases(district_id), cases_of(of_district))

    async def _apply(self, b: Batch, event: ev.CaseEvent, pos: Position) -> str:
        """One event's effect on its case's document and on the district's
        counters. The case document carries the event's marker and is
        written after the counters (``Batch.flush``), so a marker means the
        counters hold the event too."""
        district = await self.directory.get(event.district_id)
        coll = _cases(event.district_id)
        case = await b.get(coll, event.case_id) or {}
        if event.event_id in case.get("_applied", {}):
            return "duplicate"  # published twice, or replayed: counted once
        kind = payload_name(event)
        if not case and kind not in _OPENS_A_DOCUMENT:
            # a case's events follow its registration on its partition, so
            # this is an event of a case that was never registered (a foreign
            # producer, a bug): applied, it would be a document without a
            # registration, which search and the figures cannot read
            raise NotFound(
                f"case_id: no case {event.case_id!r} registered in district "
                f"{event.district_id!r}; a {kind} event cannot be its first"
            )
        contrib = contributions(event, case)
        at = attributed_at(event)  # the timeline and the clocks, as the figures
        upd = case_update(event, _handling_due(event, case, district))
        if kind in ("accepted", "backflow_reopened"):
            upd.update(accepted_at=at, extension_days=0)
        elif kind == "handling_extended":
            upd["extension_days"] = case.get("extension_days", 0) + event.handling_extended.days
        b.update(
            coll,
            event.case_id,
            {
                "$set": {
                    **upd,
                    f"_applied.{event.event_id}": [pos.partition, pos.offset],
                    # when the read model showed it: the benchmark's end point
                    f"applied_at.{kind}": datetime.now(UTC),
                },
                # entries are documents: FerretDB stores no arrays in arrays
                "$push": {"timeline": {"at": at, "kind": kind, "id": event.event_id}},
            },
        )
        if contrib is not None:
            for doc_id, fields, on_insert in counter_writes(event.district_id, contrib):
                await b.count(COUNTERS, doc_id, pos, fields, on_insert)
        return "applied" if contrib is not None or kind != "unknown" else "ignored"

    # ---- queries ------------------------------------------------------------------------

    async def _district(self, district_id: str) -> District:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        return await self.directory.get(district_id)

    async def _counter_docs(self, ids: Sequence[str]) -> dict[str, Doc]:
        """The counters, each the sum of its partitions' shards (core.shards)."""
        want = [s for i in ids for s in shards.shard_ids(i, self.partitions)]
        docs = await self.counters.find({"_id": {"$in": want}}).to_list(None)
        return {d["_id"]: d for d in shards.merge_all(docs)}

    async def figures(self, district_id: str, period: str) -> PeriodFigures | None:
        """A whole period's figures, or None when nothing was counted in it."""
        ids = [f"{district_id}:{period[:4]}", f"{district_id}:backlog"]
        return span_figures(district_id, period, await self._counter_docs(ids))

    async def report_figures(
        self, district_id: str, period: str, today: date | None = None
    ) -> ReportFigures:
        """The report's figures. A period that has not ended is reported up
        to today, and compared with the same span of the previous period and
        of last year, so that both sides count the same days."""
        district = await self._district(district_id)
        period = _period(period)
        spans = ReportSpans.of(period, today or datetime.now(SHANGHAI).date())
        docs = await self._counter_docs(spans.doc_ids(district_id))
        return report_figures_from(
            district,
            spans,
            docs,
            rankings=await self.rankings(district_id, period),
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    async def summary(self, district_id: str, period: str) -> pb.DistrictSummary:
        await self._district(district_id)
        period = _period(period)
        f = await self.figures(district_id, period) or PeriodFigures(period=period)
        return pb.DistrictSummary(
            district_id=district_id,
            period=period,
            received=f.received,
            people=f.people,
            by_channel=f.by_channel,
            by_category=f.by_category,
            by_township=f.by_township,
            first_petitions=f.first,
            repeat_petitions=f.repeat,
            group_petitions=f.group,
            escalated_petitions=f.escalated,
            routed=f.routed,
            by_decision=f.by_decision,
            by_unit=f.by_unit,
        )

    async def search(self, req: pb.SearchCasesRequest) -> pb.SearchCasesResponse:
        await self._district(req.district_id)
        size = req.page_size or 50
        if not 1 <= size <= MAX_PAGE:
            raise InvalidArgument("page_size", f"1 to {MAX_PAGE}")
        flt: dict[str, Any] = {}
        for name in ("status", "sla_state", "township_id", "category", "channel"):
            value = getattr(req, name)
            if value:
                flt[name] = value
        # the district's collection also holds its suggestions (``sug-…``),
        # which are not cases and have no time received
        received: dict[str, Any] = {"$exists": True}
        if req.HasField("received_from"):
            received["$gte"] = request_time(req.received_from, "received_from")
        if req.HasField("received_to"):
            received["$lt"] = request_time(req.received_to, "received_to")
        flt["received_at"] = received
        if req.page_token:  # stable paging: resume after the last (received_at, _id)
            try:
                after_at, after_id = json.loads(base64.urlsafe_b64decode(req.page_token))
                after = datetime.fromisoformat(after_at)
            except (ValueError, TypeError) as e:
                raise InvalidArgument("page_token", "not a token this service issued") from e
            flt["$or"] = [
                {"received_at": {"$gt": after}},
                {"received_at": after, "_id": {"$gt": after_id}},
            ]
        rows = (
            await self.cases(req.district_id)
            .find(flt, {"timeline": 0, "_applied": 0, "applied_at": 0})
            .sort([("received_at", 1), ("_id", 1)])
            .limit(size + 1)
            .to_list(None)
        )
        out = pb.SearchCasesResponse()
        for d in rows[:size]:
            out.cases.append(
                pb.CaseRow(
                    case_id=d["_id"],
                    received_at=to_timestamp(d["received_at"]),
                    channel=d.get("channel", ""),
                    category=d.get("category", ""),
                    township_id=d.get("township_id", ""),
                    status=d.get("status", ""),
                    sla_state=d.get("sla_state", ""),
                    unit_id=d.get("unit_id", ""),
                    leader_id=d.get("leader_id", ""),
                    people=d.get("people", 0),
                )
            )
        if len(rows) > size:
            last = rows[size - 1]
            token = json.dumps([last["received_at"].isoformat(), last["_id"]])
            out.next_page_token = base64.urlsafe_b64encode(token.encode()).decode()
        return out

    async def timeline(self, district_id: str, case_id: str) -> pb.CaseTimeline:
        await self._district(district_id)
        doc = await self.cases(district_id).find_one({"_id": case_id}, {"timeline": 1})
        if doc is None:
            raise NotFound(f"case_id: no case {case_id!r} in district {district_id!r}")
        return pb.CaseTimeline(
            case_id=case_id,
            entries=[
                pb.TimelineEntry(at=to_timestamp(t["at"]), kind=t["kind"], event_id=t["id"])
                for t in doc.get("timeline", [])
            ],
        )

    async def city(self, district_ids: list[str], period: str) -> pb.CitySummary:
        if not district_ids:
            raise InvalidArgument("district_ids", "name the districts of the view")
        period = _period(period)
        out = pb.CitySummary(period=period)
        for i, did in enumerate(district_ids):
            try:
                await self._district(did)
            except (InvalidArgument, NotFound) as e:  # named where the request holds it
                raise renamed(e, f"district_ids[{i}]: {e.message.split(': ', 1)[-1]}") from e
            f = await self.figures(did, period) or PeriodFigures(period=period)
            out.districts.append(pb.DistrictFigures(district_id=did, figures=to_pb_figures(f)))
        return out

    async def suggest(self, req: pb.RecordSuggestionRequest) -> str:
        district = await self._district(req.district_id)
        title = req.title.strip()
        if not title or len(title) > 200:
            raise InvalidArgument("title", "1 to 200 characters")
        if req.to_unit_id and req.to_unit_id not in district.units:
            raise InvalidArgument("to_unit_id", f"unknown unit {req.to_unit_id!r}")
        sid = f"sug-{new_id()}"
        await self._publish(
            new_event(
                case_id=sid,
                district_id=req.district_id,
                producer=SERVICE,
                case_version=1,
                suggestion_made=ev.SuggestionMade(title=title, to_unit_id=req.to_unit_id),
            )
        )
        return sid

    async def adopt(self, req: pb.MarkSuggestionAdoptedRequest) -> str:
        await self._district(req.district_id)
        doc = await self.cases(req.district_id).find_one({"_id": req.suggestion_id})
        if doc is None or not req.suggestion_id.startswith("sug-"):
            raise NotFound(f"suggestion_id: no suggestion {req.suggestion_id!r}")
        if doc.get("status") == "adopted":
            raise FailedPrecondition(
                f"suggestion_id: suggestion {req.suggestion_id} is already adopted"
            )
        await self._publish(
            new_event(
                case_id=req.suggestion_id,
                district_id=req.district_id,
                producer=SERVICE,
                case_version=2,
                suggestion_adopted=ev.SuggestionAdopted(),
            )
        )
        return req.suggestion_id

    async def _publish(self, event: ev.CaseEvent) -> None:
        if self.publish is None:
            raise FailedPrecondition("this reporting instance does not publish")
        await self.publish(event)

    async def render(self, req: pb.RenderReportRequest) -> pb.RenderedReport:
        fmt = req.format or "docx"
        lang = req.lang or "zh"
        if lang not in ("zh", "en"):
            raise InvalidArgument("lang", "zh or en")
        figures = await self.report_figures(req.district_id, req.period)
        name = f"{req.district_id}-{figures.period}-{lang}"
        if fmt == "docx":
            content = render.render_docx(figures, lang)
            ctype = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        elif fmt == "markdown":
            content = render.render_markdown(figures, lang).encode()
            ctype = "text/markdown; charset=utf-8"
        elif fmt == "json":
            content = render.render_json(figures)
            ctype = "application/json"
        else:
            raise InvalidArgument("format", "docx, markdown or json")
        ext = {"docx": "docx", "markdown": "md", "json": "json"}[fmt]
        return pb.RenderedReport(content=content, content_type=ctype, filename=f"{name}.{ext}")


def report_figures_from(
    district: District,
    spans: ReportSpans,
    docs: Mapping[str, Mapping[str, Any]],
    rankings: dict[str, list[dict[str, Any]]] | None = None,
    generated_at: str = "",
) -> ReportFigures:
    """A report's figures from the counter documents it reads: pure, so a
    test can build the report of a projection fed in memory."""
    did = district.district_id
    period = spans.current.period
    names = {**district.townships, **district.categories}
    names |= {u.unit_id: u.name for u in district.units.values()}
    names |= {lead.leader_id: lead.name for lead in district.leaders.values()}
    through = spans.current.through
    return ReportFigures(
        district_id=did,
        district_name=district.name,
        period=period,
        current=span_figures(did, spans.current, docs) or PeriodFigures(period=period),
        previous=span_figures(did, spans.previous, docs),
        last_year=span_figures(did, spans.last_year, docs),
        monthly=[span_figures(did, m, docs) or PeriodFigures(period=m) for m in spans.months],
        names=names,
        rankings=rankings or {},
        generated_at=generated_at,
        through=through.isoformat() if through else "",
    )


def _period(period: str) -> str:
    try:
        return parse_period(period)
    except ValueError as e:
        raise InvalidArgument("period", str(e)) from e


def _handling_due(event: ev.CaseEvent, case: dict[str, Any], district: District) -> datetime | None:
    """When handling falls due (Art. 34), for the on-time figure of replies."""
    k = event.WhichOneof("payload")
    at = attributed_at(event)
    if k in ("accepted", "backflow_reopened"):
        start, extra = at, 0
    elif k == "handling_extended" and case.get("accepted_at") is not None:
        start, extra = case["accepted_at"], case.get("extension_days", 0)
        extra += event.handling_extended.days
    else:
        return None
    return district.deadline("handling", start, extra).due_at


_RENAMES = {"group": "group_petitions"}


def to_pb_figures(f: PeriodFigures) -> pb.Figures:
    return pb.Figures(**{_RENAMES.get(k, k): v for k, v in asdict(f).items()})


class ReportingServicer(pb_grpc.ReportingServiceServicer):
    def __init__(self, r: Reporting) -> None:
        self.r = r

    @rpc(SERVICE)
    async def GetDistrictSummary(
        self, request: pb.GetDistrictSummaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DistrictSummary:
        return await self.r.summary(request.district_id, request.period)

    @rpc(SERVICE)
    async def GetPeriodReport(
        self, request: pb.GetPeriodReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.PeriodReport:
        f = await self.r.report_figures(request.district_id, request.period)
        ind = f.indicators
        out = pb.PeriodReport(
            district_id=f.district_id,
            period=f.period,
            current=to_pb_figures(f.current),
            monthly=[to_pb_figures(m) for m in f.monthly],
            indicators=pb.Indicators(**{k: v for k, v in asdict(ind).items() if v is not None}),
            through=f.through,
        )
        if f.previous is not None:
            out.previous.CopyFrom(to_pb_figures(f.previous))
        if f.last_year is not None:
            out.last_year.CopyFrom(to_pb_figures(f.last_year))
        return out

    @rpc(SERVICE)
    async def SearchCases(
        self, request: pb.SearchCasesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchCasesResponse:
        return await self.r.search(request)

    @rpc(SERVICE)
    async def GetCaseTimeline(
        self, request: pb.GetCaseTimelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseTimeline:
        return await self.r.timeline(request.district_id, request.case_id)

    @rpc(SERVICE)
    async def RenderReport(
        self, request: pb.RenderReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.RenderedReport:
        return await self.r.render(request)

    @rpc(SERVICE, OFFICE)
    async def RecordSuggestion(
        self, request: pb.RecordSuggestionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordSuggestionResponse:
        return pb.RecordSuggestionResponse(suggestion_id=await self.r.suggest(request))

    @rpc(SERVICE, OFFICE)
    async def MarkSuggestionAdopted(
        self, request: pb.MarkSuggestionAdoptedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordSuggestionResponse:
        return pb.RecordSuggestionResponse(suggestion_id=await self.r.adopt(request))

    @rpc(SERVICE)
    async def GetCitySummary(
        self, request: pb.GetCitySummaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.CitySummary:
        return await self.r.city(list(request.district_ids), request.period)


async def _setup(rt: Runtime) -> BatchHandler | None:
    s = rt.settings

    async def publish(event: ev.CaseEvent) -> None:
        # the event is the whole record of a suggestion: nothing else to keep
        # consistent with it, so no outbox; acks=all, idempotent producer
        await rt.producer.send_and_wait(
            s.case_events_topic, value=encode_event(event), key=event.case_id.encode()
        )

    supervision = s.supervision_addr or f"{s.grpc_host}:{s.supervision_grpc}"
    r = Reporting(rt.db, rt.directory, supervision, publish, s.auth_key_bytes, s.partitions)
    rt.grpc.add(
        pb_grpc.add_ReportingServiceServicer_to_server,
        ReportingServicer(r),
        pb.DESCRIPTOR.services_by_name["ReportingService"].full_name,
    )
    return r.consumer(rt.store, rt.owned_docs())


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup)
