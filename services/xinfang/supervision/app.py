"""Supervision: holds every unit and leader to time (全流程办理，全方位监督).

* Consumes case events and keeps every statutory clock (``clocks.py``), one
  document per case and clock kind, written idempotently.
* A scanner finds what is due by reading day buckets (``due:<day>``,
  ``warn:<day>``) of clock ids, so its work is proportional to what falls
  due, not to what is open. It publishes ``DeadlineWarned``,
  ``DeadlineBreached`` and ``SupervisionOrderIssued`` (to the unit and the
  packaged leader) as one immutable notice record per clock and due date,
  published by the outbox (a second pass or replica records nothing twice).
  A tier's breach makes assignment escalate the case.
* Tallies per district and clock feed Prometheus; tallies per unit and
  leader and month feed scores and rankings (``scoring.py``), published on
  the rankings topic and queryable over gRPC.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
from prometheus_client.registry import REGISTRY

from xinfang.core.auth import OVERSIGHT
from xinfang.core.errors import InvalidArgument
from xinfang.core.grpc_server import rpc
from xinfang.core.lease import Lease
from xinfang.core.logging import get_logger
from xinfang.core.runtime import BatchHandler, Runtime, ServiceSpec
from xinfang.supervision.consumer import ClockConsumer
from xinfang.supervision.metrics import ClockMetrics
from xinfang.supervision.queries import Queries
from xinfang.supervision.scanner import Scanner
from xinfang.supervision.v1 import supervision_pb2 as pb
from xinfang.supervision.v1 import supervision_pb2_grpc as pb_grpc

__all__ = ["SPEC", "ClockMetrics", "Supervision"]

SERVICE = "supervision"
log = get_logger(__name__)


class Supervision(ClockConsumer, Scanner, Queries):
    """The service's parts over one database: the consumer
    (``consumer.py``), the scanner and re-evaluation (``scanner.py``), the
    queries and rankings (``queries.py``); metrics are ``metrics.py``.
    Built as ``Documents`` is: database, outbox, directory, partitions."""


class SupervisionServicer(pb_grpc.SupervisionServiceServicer):
    def __init__(self, sup: Supervision) -> None:
        self.sup = sup

    @rpc(SERVICE)
    async def GetCaseClocks(
        self, request: pb.GetCaseClocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseClocks:
        return await self.sup.case_clocks(request.district_id, request.case_id)

    @rpc(SERVICE, OVERSIGHT)
    async def PublishRanking(
        self, request: pb.PublishRankingRequest, context: grpc.aio.ServicerContext
    ) -> pb.Ranking:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        rankings = await self.sup.publish_ranking(request.district_id, request.period)
        return rankings[0]

    @rpc(SERVICE)
    async def GetRanking(
        self, request: pb.GetRankingRequest, context: grpc.aio.ServicerContext
    ) -> pb.Ranking:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required")
        return await self.sup.get_ranking(request.district_id, request.period, request.kind)

    @rpc(SERVICE, OVERSIGHT)
    async def ReevaluateClocks(
        self, request: pb.ReevaluateClocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReevaluateClocksResponse:
        if not request.district_id:
            raise InvalidArgument("district_id", "is required (* for every district)")
        open_n, moved, estimated = await self.sup.reevaluate(request.district_id)
        return pb.ReevaluateClocksResponse(open_clocks=open_n, moved=moved, estimated=estimated)


async def _every(seconds: float, what: str, fn: Any) -> None:
    while True:
        try:
            await fn()
        except Exception:
            log.exception(f"{what} failed")
        await asyncio.sleep(seconds)


async def _setup(rt: Runtime) -> BatchHandler | None:
    sup = Supervision(rt.db, rt.outbox, rt.directory, rt.settings.partitions)
    consume = sup.consumer(rt.store, rt.owned_docs())
    sup.producer = rt.producer
    sup.rankings_topic = rt.settings.rankings_topic
    rt.grpc.add(
        pb_grpc.add_SupervisionServiceServicer_to_server,
        SupervisionServicer(sup),
        pb.DESCRIPTOR.services_by_name["SupervisionService"].full_name,
    )
    metrics = ClockMetrics(rt.settings.metrics_max_units)
    REGISTRY.register(metrics)
    every = rt.settings.metrics_refresh_seconds
    rt.spawn(_every(every, "metrics refresh", lambda: metrics.refresh(sup)), "clock-metrics")
    scan_every = rt.settings.scan_seconds
    lease = Lease(rt.store, "deadline-scanner", ttl=max(10.0, 3 * scan_every))

    async def scan() -> None:  # one replica scans at a time
        if await lease.held():
            await sup.scan(datetime.now(UTC))

    rt.spawn(_every(scan_every, "deadline scan", scan), "scanner")
    return consume


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup)
