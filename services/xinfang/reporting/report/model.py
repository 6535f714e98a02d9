"""The figures a report states, each total the sum of its parts.

The read models count parts (decisions by kind, replies on time and late,
breaches by clock...). A sentence that states a total and then its parts
takes both from one :class:`Parts`, so the two cannot disagree; a part the
sentence does not name is still in the total, and is named as "other".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from xinfang.reporting.figures import PeriodFigures

__all__ = ["CHANNEL_ORDER", "CLOCK_ORDER", "DECISION_ORDER", "Parts", "Stated"]

CHANNEL_ORDER = ("letter", "visit", "online", "phone", "fax")  # 信、访、网、电、传真
DECISION_ORDER = ("accept", "forward", "out_litigation", "out_discipline", "decline")
CLOCK_ORDER = (
    "handling",
    "register_and_route",
    "written_notice",
    "remit_objection",
    "tier",
    "review_request",
    "review_decision",
    "rereview_request",
    "rereview_decision",
)


@dataclass(frozen=True)
class Parts:
    """Named counts and their total, which is nothing but their sum."""

    items: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, counts: Mapping[str, int], order: tuple[str, ...] = ()) -> Parts:
        """The counts in ``order`` (zeros included), then any others by size."""
        items = [(k, int(counts.get(k, 0))) for k in order]
        rest = sorted(
            ((k, int(v)) for k, v in counts.items() if k not in order and v),
            key=lambda kv: (-kv[1], kv[0]),
        )
        return cls(tuple(items + rest))

    @property
    def total(self) -> int:
        return sum(v for _, v in self.items)

    def __getitem__(self, key: str) -> int:
        return next((v for k, v in self.items if k == key), 0)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.items)

    def others(self, named: tuple[str, ...]) -> int:
        """What the parts not in ``named`` add up to."""
        return sum(v for k, v in self.items if k not in named)

    def share(self, key: str) -> float | None:
        return self[key] / self.total if self.total else None


@dataclass(frozen=True)
class Stated:
    """One period's figures as the report states them."""

    f: PeriodFigures

    @property
    def channels(self) -> Parts:
        return Parts.of(self.f.by_channel, CHANNEL_ORDER)

    @property
    def kinds(self) -> Parts:
        """初信初访 + 重复信访 (+ any petition of neither kind) = received."""
        other = self.f.received - self.f.first - self.f.repeat
        return Parts((("first", self.f.first), ("repeat", self.f.repeat), ("other", other)))

    @property
    def decisions(self) -> Parts:
        """The routing decisions made in the period, by kind: 共作出处理决定
        is their sum. Not the units' acceptances (``accepted``), which a
        unit records after the office has routed a case to it."""
        return Parts.of(self.f.by_decision, DECISION_ORDER)

    @property
    def replies(self) -> Parts:
        """按期办结 + 超期办结 = 办结."""
        return Parts((("on_time", self.f.replied_on_time), ("late", self.f.replied_late)))

    @property
    def ratings(self) -> Parts:
        f = self.f
        return Parts(
            (
                ("satisfied", f.satisfied),
                ("basically", f.basically_satisfied),
                ("dissatisfied", f.dissatisfied),
            )
        )

    @property
    def breaches(self) -> Parts:
        """Statutory clocks that ran out, by kind of clock: breaches, not cases."""
        return Parts.of(self.f.breaches_by_clock, CLOCK_ORDER)

    @property
    def orders(self) -> Parts:
        """Supervision orders issued, by the kind of clock that ran out."""
        return Parts.of(self.f.orders_by_clock, CLOCK_ORDER)

    @property
    def on_time_rate(self) -> float | None:
        return self.replies.share("on_time")

    @property
    def satisfaction_rate(self) -> float | None:
        r = self.ratings
        return (r["satisfied"] + r["basically"]) / r.total if r.total else None

    @property
    def resolution_rate(self) -> float | None:
        total = self.replies.total
        return self.f.resolved / total if total else None
