"""Supervision: keeps every case's statutory clocks and exposes, per district,
where they stand, as Prometheus metrics.

Each clock is one document (indexed by due time), written idempotently with
the id of the event that opened or closed it. Per-district tallies are
counter documents updated once per event position, so the exported figures
need no scan of open cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import grpc
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import to_timestamp
from xinfang.core.directory import Directory
from xinfang.core.errors import InvalidArgument
from xinfang.core.grpc_server import rpc
from xinfang.core.logging import get_logger
from xinfang.core.mongo import Collection, Position, apply_once, inc_once
from xinfang.core.runtime import Handler, Runtime, ServiceSpec
from xinfang.supervision.clocks import (
    SlaState,
    clock_doc_id,
    clock_label,
    closed_by,
    oldest_overdue_days,
    opened_by,
    tally_sla,
)
from xinfang.supervision.v1 import supervision_pb2 as pb
from xinfang.supervision.v1 import supervision_pb2_grpc as pb_grpc

__all__ = ["SPEC", "ClockMetrics", "Supervision"]

SERVICE = "supervision"
log = get_logger(__name__)


class Supervision:
    def __init__(self, clocks: Collection, stats: Collection, directory: Directory) -> None:
        self.clocks = clocks
        self.stats = stats
        self.directory = directory

    async def handle(self, event: ev.CaseEvent, pos: Position) -> str:
        district = await self.directory.get(event.district_id)
        opened = opened_by(event, district)
        kind = closed_by(event)
        if opened is None and kind is None:
            return "ignored"
        extra: dict[str, object] = {}
        if opened is not None:
            label = clock_label(opened.kind)
            due_day = _day_key(opened.due_at)
            applied = await apply_once(
                self.clocks,
                clock_doc_id(event.case_id, opened.kind),
                event.event_id,
                {
                    "$set": {
                        "district_id": event.district_id,
                        "case_id": event.case_id,
                        "kind": opened.kind,
                        "started_at": opened.started_at,
                        "due_at": opened.due_at,
                        "due_day": due_day,
                        "warn_at": opened.warn_at,
                        "estimated": opened.estimated,
                        "unit_id": opened.unit_id,
                        "open": True,
                        "breached": False,
                    }
                },
                pos,
            )
            inc = {"open": 1, "started": 1, f"due.{due_day}": 1}
            extra = {"warn_days": district.limit(opened.limit_name).warn_days}
        else:
            assert kind is not None
            label = clock_label(kind)
            doc_id = clock_doc_id(event.case_id, kind)
            clock = await self.clocks.find_one({"_id": doc_id})
            if clock is None or clock["district_id"] != event.district_id:
                raise LookupError(f"{label} clock of case {event.case_id} was never started")
            if not clock["open"] and event.event_id not in clock.get("_applied", {}):
                return "ignored"  # already stopped by an earlier event (a re-routing)
            closed_at = event.occurred_at.ToDatetime(tzinfo=UTC)
            on_time = closed_at < clock["due_at"]
            applied = await apply_once(
                self.clocks,
                doc_id,
                event.event_id,
                {"$set": {"open": False, "closed_at": closed_at, "on_time": on_time}},
                pos,
                upsert=False,
            )
            inc = {
                "open": -1,
                "completed": 1,
                "completed_on_time": int(on_time),
                f"due.{clock['due_day']}": -1,
            }
        if applied.here:
            await inc_once(
                self.stats,
                f"{event.district_id}:{label}",
                pos,
                inc,
                {"district_id": event.district_id, "clock": label, **extra},
            )
        return "applied" if applied.first else "duplicate"

    async def case_clocks(self, district_id: str, case_id: str) -> pb.CaseClocks:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        if not case_id:
            raise InvalidArgument("case_id", "is required")
        out = pb.CaseClocks(case_id=case_id)
        for kind in ev.ClockKind.values():
            if kind == ev.CLOCK_KIND_UNSPECIFIED:
                continue
            c = await self.clocks.find_one({"_id": clock_doc_id(case_id, kind)})
            if c is None or c["district_id"] != district_id:
                continue
            out.clocks.append(
                pb.Clock(
                    kind=c["kind"],
                    started_at=to_timestamp(c["started_at"]),
                    due_at=to_timestamp(c["due_at"]),
                    open=c["open"],
                    breached=c["breached"],
                    unit_id=c.get("unit_id", ""),
                )
            )
        return out


def _day_key(due_at: datetime) -> str:
    """Clocks are bucketed by the local day they fall due on (due_at is 00:00
    of the day after the last day), so "how many are overdue" is a sum over a
    few buckets in one document rather than a query over every open clock."""
    return due_at.astimezone(SHANGHAI).strftime("%Y%m%d")


class ClockMetrics(Collector):
    """Exports the per-district clock tallies last read by ``refresh``.

    Gauges, not counters: the figures live in the store and survive restarts
    of this process, so every replica exports the same numbers (aggregate with
    ``max``). Labels: district, clock, sla_state: bounded by configuration.
    """

    def __init__(self) -> None:
        self.stats: list[dict[str, Any]] = []

    async def refresh(self, sup: Supervision) -> None:
        # one document per district and clock kind: small, read whole
        self.stats = await sup.stats.find({}, {"_wm": 0}).to_list(None)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        today = datetime.now(SHANGHAI).strftime("%Y%m%d")
        open_ = GaugeMetricFamily(
            "xinfang_clocks_open",
            "Open statutory clocks by SLA state",
            labels=["district", "clock", "sla_state"],
        )
        overdue = GaugeMetricFamily(
            "xinfang_clocks_overdue", "Open clocks past due", labels=["district", "clock"]
        )
        oldest = GaugeMetricFamily(
            "xinfang_clocks_oldest_overdue_days",
            "Days since the oldest open overdue clock fell due",
            labels=["district", "clock"],
        )
        totals = {
            f: GaugeMetricFamily(f"xinfang_clocks_{f}", doc, labels=["district", "clock"])
            for f, doc in (
                ("started", "Clocks started (all time)"),
                ("completed", "Clocks stopped (all time)"),
                ("completed_on_time", "Clocks stopped before they fell due (all time)"),
            )
        }
        for s in self.stats:
            labels = [str(s.get("district_id", "")), str(s.get("clock", ""))]
            tally = tally_sla(s.get("due", {}), today, int(s.get("warn_days", 3)))
            for state in SlaState:
                open_.add_metric([*labels, state.value], tally[state])
            overdue.add_metric(labels, tally[SlaState.OVERDUE])
            oldest.add_metric(labels, oldest_overdue_days(s.get("due", {}), today))
            for f, fam in totals.items():
                fam.add_metric(labels, float(s.get(f, 0)))
        yield from (open_, overdue, oldest, *totals.values())


class SupervisionServicer(pb_grpc.SupervisionServiceServicer):
    def __init__(self, sup: Supervision) -> None:
        self.sup = sup

    @rpc(SERVICE)
    async def GetCaseClocks(
        self, request: pb.GetCaseClocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.CaseClocks:
        return await self.sup.case_clocks(request.district_id, request.case_id)


async def _refresh_metrics(metrics: ClockMetrics, sup: Supervision, every: float) -> None:
    while True:
        try:
            await metrics.refresh(sup)
        except Exception:
            log.exception("metrics refresh failed")
        await asyncio.sleep(every)


async def _setup(rt: Runtime) -> Handler | None:
    sup = Supervision(rt.db["clocks"], rt.db["clock_stats"], rt.directory)
    rt.grpc.add(
        pb_grpc.add_SupervisionServiceServicer_to_server,
        SupervisionServicer(sup),
        pb.DESCRIPTOR.services_by_name["SupervisionService"].full_name,
    )
    metrics = ClockMetrics()
    REGISTRY.register(metrics)
    rt.spawn(_refresh_metrics(metrics, sup, rt.settings.metrics_refresh_seconds), "clock-metrics")
    return sup.handle


SPEC = ServiceSpec(name=SERVICE, consumes=True, setup=_setup)
