"""Routing (属地管理、分级负责，谁主管、谁负责) as a lookup in the district's table.

The most specific row wins: category and township, then category alone, then
township alone, then the district's catch-all row. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.districts import RoutingRow

__all__ = ["DECISIONS", "route"]

DECISIONS: dict[str, ev.RoutingDecision.ValueType] = {
    "accept": ev.ROUTING_DECISION_ACCEPT,
    "forward": ev.ROUTING_DECISION_FORWARD,
    "out_litigation": ev.ROUTING_DECISION_OUT_LITIGATION,
    "out_discipline": ev.ROUTING_DECISION_OUT_DISCIPLINE,
    "decline": ev.ROUTING_DECISION_DECLINE,
}


def route(rows: Iterable[RoutingRow], category: str, township_id: str) -> RoutingRow | None:
    best: tuple[int, RoutingRow] | None = None
    for row in rows:
        if row.category and row.category != category:
            continue
        if row.township_id and row.township_id != township_id:
            continue
        score = (2 if row.category else 0) + (1 if row.township_id else 0)
        if best is None or score > best[0]:
            best = (score, row)
    return best[1] if best else None
