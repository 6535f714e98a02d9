"""The figures of a district's period report, as plain data.

This is the contract between the read models (which fill it from events) and
the renderers (.docx, Markdown, JSON), so each side can change alone. Every
figure the annual report's section 一 leaves blank, and what Art. 41 of the
regulations adds, has a field here. Counts only: no names of people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PeriodFigures", "ReportFigures", "ThreeDeclines", "three_declines"]


@dataclass
class PeriodFigures:
    period: str  # "2026", "2026-Q3" or "2026-07"
    # 来信来访: what came in, counted by when it was received
    received: int = 0
    people: int = 0  # 涉及人数
    by_channel: dict[str, int] = field(default_factory=dict)  # letter, visit, online, phone, fax
    by_category: dict[str, int] = field(default_factory=dict)  # category code -> cases
    by_township: dict[str, int] = field(default_factory=dict)  # township id -> cases
    first: int = 0  # 初信初访
    repeat: int = 0  # 重复信访
    group: int = 0  # 集体访
    group_people: int = 0
    escalated: int = 0  # 越级访
    higher_level: int = 0  # assigned from above (上级交办), e.g. backlog batches
    # what was done with it, counted by when it was done
    routed: int = 0
    by_decision: dict[str, int] = field(default_factory=dict)  # accept, forward, decline, out_*
    by_unit: dict[str, int] = field(default_factory=dict)  # unit id -> cases routed to it
    unit_disputes: int = 0  # units disputed a case; their common superior decided (Art. 24)
    accepted: int = 0  # 受理
    replied: int = 0  # 办结 (written reply)
    resolved: int = 0  # 化解 (reported settled)
    replied_on_time: int = 0  # within 60 (+30) days
    replied_late: int = 0  # after the due date (or with none known): on time + late = replied
    rated: int = 0
    satisfied: int = 0  # 满意
    basically_satisfied: int = 0  # 基本满意
    dissatisfied: int = 0  # 不满意
    reviews: int = 0  # 复查 requested
    rereviews: int = 0  # 复核 requested
    backflow: int = 0  # 倒流
    # disputes screened and resolved on the ladder (排查/化解)
    mediation_entered: int = 0  # cases that entered the 民事直说 ladder
    mediation_resolved: int = 0  # resolved before reaching a district leader
    # leaders
    leader_receptions: int = 0  # batches received on reception days (接访批次)
    leader_reception_people: int = 0  # people received (人次)
    leader_visits_out: int = 0  # 下访
    leader_packages: int = 0  # cases packaged (包案)
    leader_resolved: int = 0  # packaged cases resolved
    higher_level_resolved: int = 0  # assigned-from-above cases resolved
    # supervision
    warnings: int = 0  # warnings before a clock runs out, of every kind
    breaches: int = 0  # statutory clocks that ran out, of every kind: not cases
    breaches_by_clock: dict[str, int] = field(default_factory=dict)  # clock kind -> breaches
    supervision_orders: int = 0  # 督办通知 issued, one per breach: orders, not cases
    orders_by_clock: dict[str, int] = field(default_factory=dict)  # clock kind -> orders
    # the office's suggestions drawn from petitions (Art. 41)
    suggestions_made: int = 0
    suggestions_adopted: int = 0
    # the cohort: of the petitions received in the period, how many have
    # been decided (routed) and answered since, whenever that was
    cohort_routed: int = 0
    cohort_replied: int = 0
    # backlog (存量): open at the start and end of the period; new (增量) = received
    backlog_start: int = 0
    backlog_end: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return self.replied_on_time / self.replied if self.replied else None

    @property
    def satisfaction_rate(self) -> float | None:
        """(满意 + 基本满意) / rated, the usual office measure."""
        return (self.satisfied + self.basically_satisfied) / self.rated if self.rated else None

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.replied if self.replied else None


@dataclass
class ThreeDeclines:
    """三降一好转: petitions, group petitions and escalated petitions fall
    against the same period last year, and order improves (we measure order
    by the backlog: fewer cases open at the end than at the start). None
    where there is nothing to compare with."""

    received_down: bool | None
    group_down: bool | None
    escalated_down: bool | None
    backlog_down: bool | None

    @property
    def achieved(self) -> bool | None:
        parts = (self.received_down, self.group_down, self.escalated_down, self.backlog_down)
        if any(p is None for p in parts):
            return None
        return all(parts)


def three_declines(cur: PeriodFigures, last_year: PeriodFigures | None) -> ThreeDeclines:
    def down(a: int, b: int | None) -> bool | None:
        return None if b is None else a < b or (a == 0 and b == 0)

    ly = last_year
    return ThreeDeclines(
        received_down=down(cur.received, ly.received if ly else None),
        group_down=down(cur.group, ly.group if ly else None),
        escalated_down=down(cur.escalated, ly.escalated if ly else None),
        backlog_down=cur.backlog_end < cur.backlog_start if cur.backlog_start else None,
    )


@dataclass
class ReportFigures:
    district_id: str
    district_name: str
    period: str
    current: PeriodFigures
    previous: PeriodFigures | None  # 环比: the period before (None: no data at all)
    last_year: PeriodFigures | None  # 同比: the same period a year earlier
    monthly: list[PeriodFigures]  # the months of the period, for the trend chart
    names: dict[str, str]  # ids and codes -> display names (townships, units, categories, leaders)
    rankings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> rows
    generated_at: str = ""
    # the period has not ended: the last day counted (YYYY-MM-DD), and
    # previous / last_year cover the same span of their periods
    through: str = ""

    @property
    def indicators(self) -> ThreeDeclines:
        return three_declines(self.current, self.last_year)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("current", "previous", "last_year"):
            p: PeriodFigures | None = getattr(self, key)
            if p is not None:
                d[key]["rates"] = {
                    "on_time": p.on_time_rate,
                    "satisfaction": p.satisfaction_rate,
                    "resolution": p.resolution_rate,
                }
        ind = self.indicators
        d["indicators"] = {**asdict(ind), "achieved": ind.achieved}
        return d
