"""Supervision's Prometheus series: open clocks by SLA state, overdue,
completions, warnings, breaches and orders, per district and clock kind and
per unit, read from the tally documents (so every replica exports the same
figures, and they survive restarts)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xinfang.core import shards
from xinfang.core.calendar import SHANGHAI
from xinfang.supervision.clocks import SlaState, oldest_overdue_days, tally_sla, unit_rollup
from xinfang.supervision.docs import Documents

__all__ = ["ClockMetrics"]


class ClockMetrics(Collector):
    """Exports the per-district clock tallies last read by ``refresh``.

    Gauges and counters from the store, not from this process: they survive
    restarts, and every replica exports the same figures (aggregate with
    ``max``). Labels: district, clock, sla_state: bounded by configuration.
    """

    def __init__(self, max_units: int) -> None:
        self.stats: list[dict[str, Any]] = []
        self.unit_stats: list[dict[str, Any]] = []
        self.max_units = max_units

    async def refresh(self, sup: Documents) -> None:
        # one document per district and clock kind, and per unit and duty
        # clock kind: small, read whole
        docs = shards.merge_all(await sup.stats.find({}, {"_wm": 0}).to_list(None))
        self.stats = [d for d in docs if not d.get("unit_id")]
        self.unit_stats = [d for d in docs if d.get("unit_id")]

    def collect(self) -> Iterable[Metric]:
        today = datetime.now(SHANGHAI).strftime("%Y%m%d")
        labels2 = ["district", "clock"]
        open_ = GaugeMetricFamily(
            "xinfang_clocks_open", "Open statutory clocks by SLA state",
            labels=["district", "clock", "sla_state"],
        )  # fmt: skip
        overdue = GaugeMetricFamily(
            "xinfang_clocks_overdue", "Open clocks past due", labels=labels2
        )
        oldest = GaugeMetricFamily(
            "xinfang_clocks_oldest_overdue_days",
            "Days since the oldest open overdue clock fell due",
            labels=labels2,
        )
        totals = {
            f: GaugeMetricFamily(f"xinfang_clocks_{f}", doc, labels=labels2)
            for f, doc in (
                ("started", "Clocks started (all time)"),
                ("completed", "Clocks stopped (all time)"),
                ("completed_on_time", "Clocks stopped before they fell due (all time)"),
            )
        }
        counters = {
            f: CounterMetricFamily(name, doc, labels=labels2)
            for f, name, doc in (
                ("warned", "xinfang_deadline_warnings", "Warnings before a deadline"),
                ("breached", "xinfang_deadline_breaches", "Deadlines breached"),
            )
        }
        orders = CounterMetricFamily(
            "xinfang_supervision_orders", "Supervision orders (督办) issued", labels=["district"]
        )
        orders_by_district: dict[str, float] = {}
        for s in self.stats:
            labels = [str(s.get("district_id", "")), str(s.get("clock", ""))]
            tally = tally_sla(s.get("due", {}), today, int(s.get("warn_days", 3)))
            for state in SlaState:
                open_.add_metric([*labels, state.value], tally[state])
            overdue.add_metric(labels, tally[SlaState.OVERDUE])
            oldest.add_metric(labels, oldest_overdue_days(s.get("due", {}), today))
            for f, fam in totals.items():
                fam.add_metric(labels, float(s.get(f, 0)))
            for f, cfam in counters.items():
                cfam.add_metric(labels, float(s.get(f, 0)))
            orders_by_district[labels[0]] = orders_by_district.get(labels[0], 0.0) + float(
                s.get("orders", 0)
            )
        for district_id, n in orders_by_district.items():
            orders.add_metric([district_id], n)
        yield from (open_, overdue, oldest, *totals.values(), *counters.values(), orders)
        yield from self._per_unit(today)

    def _per_unit(self, today: str) -> Iterable[Metric]:
        """The same figures per unit, over its duty clocks of every kind."""
        lu = ["district", "unit"]
        open_ = GaugeMetricFamily(
            "xinfang_unit_clocks_open", "A unit's open duty clocks by SLA state",
            labels=[*lu, "sla_state"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "xinfang_unit_clocks_oldest_overdue_days",
            "Days since the unit's oldest open overdue duty clock fell due", labels=lu,
        )  # fmt: skip
        fams = {
            f: cls(name, doc, labels=lu)
            for f, cls, name, doc in (
                ("completed", GaugeMetricFamily, "xinfang_unit_clocks_completed",
                 "A unit's duty clocks stopped (all time)"),
                ("completed_on_time", GaugeMetricFamily, "xinfang_unit_clocks_completed_on_time",
                 "A unit's duty clocks stopped before they fell due (all time)"),
                ("breached", CounterMetricFamily, "xinfang_unit_deadline_breaches",
                 "A unit's deadlines breached"),
                ("orders", CounterMetricFamily, "xinfang_unit_supervision_orders",
                 "Supervision orders (督办) issued to a unit"),
            )
        }  # fmt: skip
        for (district_id, unit), f in sorted(
            unit_rollup(self.unit_stats, today, self.max_units).items()
        ):
            for state in SlaState:
                open_.add_metric([district_id, unit, state.value], f.sla[state])
            oldest.add_metric([district_id, unit], f.oldest_overdue_days)
            for field, fam in fams.items():
                fam.add_metric([district_id, unit], float(getattr(f, field)))
        yield from (open_, oldest, *fams.values())
