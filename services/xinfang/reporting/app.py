"""Reporting: read models of the case stream and the district summary query.

Each event is first recorded against its case (deduplicated by event id),
then added to the district's period counters (deduplicated by position), so
a redelivery or a replay changes no figure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.directory import Directory
from xinfang.core.errors import InvalidArgument
from xinfang.core.grpc_server import rpc
from xinfang.core.mongo import Collection, Position, apply_once, inc_once
from xinfang.core.runtime import Handler, Runtime, ServiceSpec
from xinfang.reporting.projections import (
    contributions,
    parse_period,
    period_section,
    year_doc_fields,
)
from xinfang.reporting.v1 import reporting_pb2 as pb
from xinfang.reporting.v1 import reporting_pb2_grpc as pb_grpc

__all__ = ["SPEC", "Reporting"]

SERVICE = "reporting"


class Reporting:
    def __init__(self, cases: Collection, counters: Collection, directory: Directory) -> None:
        self.cases = cases
        self.counters = counters
        self.directory = directory

    async def handle(self, event: ev.CaseEvent, pos: Position) -> str:
        contrib = contributions(event)
        if contrib is None:
            return "ignored"
        at, inc = contrib
        kind = event.WhichOneof("payload")
        applied = await apply_once(
            self.cases,
            event.case_id,
            event.event_id,
            {
                "$set": {
                    "district_id": event.district_id,
                    f"seen.{kind}": at,
                    # when the read model showed it: the benchmark's end point
                    f"applied_at.{kind}": datetime.now(UTC),
                }
            },
            pos,
        )
        if applied.here:
            year, fields = year_doc_fields(at, inc)
            await inc_once(
                self.counters,
                f"{event.district_id}:{year}",
                pos,
                fields,
                {"district_id": event.district_id, "year": int(year)},
            )
        return "applied" if applied.first else "duplicate"

    async def summary(self, district_id: str, period: str) -> pb.DistrictSummary:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        try:
            period = parse_period(period)
        except ValueError as e:
            raise InvalidArgument("period", str(e)) from e
        await self.directory.get(district_id)  # NOT_FOUND for an unknown district
        year_doc = await self.counters.find_one({"_id": f"{district_id}:{period[:4]}"})
        doc: dict[str, Any] = period_section(year_doc or {}, period)
        return pb.DistrictSummary(
            district_id=district_id,
            period=period,
            received=doc.get("received", 0),
            people=doc.get("people", 0),
            by_channel=doc.get("channel", {}),
            by_category=doc.get("category", {}),
            by_township=doc.get("township", {}),
            first_petitions=doc.get("first", 0),
            repeat_petitions=doc.get("repeat", 0),
            group_petitions=doc.get("group", 0),
            escalated_petitions=doc.get("escalated", 0),
            routed=doc.get("routed", 0),
            by_decision=doc.get("decision", {}),
            by_unit=doc.get("unit", {}),
        )


class ReportingServicer(pb_grpc.ReportingServiceServicer):
    def __init__(self, r: Reporting) -> None:
        self.r = r

    @rpc(SERVICE)
    async def GetDistrictSummary(
        self, request: pb.GetDistrictSummaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DistrictSummary:
        return await self.r.summary(request.district_id, request.period)


async def _setup(rt: Runtime) -> Handler | None:
    r = Reporting(rt.db["cases"], rt.db["counters"], rt.directory)
    rt.grpc.add(
        pb_grpc.add_ReportingServiceServicer_to_server,
        ReportingServicer(r),
        pb.DESCRIPTOR.services_by_name["ReportingService"].full_name,
    )
    return r.handle


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup)
