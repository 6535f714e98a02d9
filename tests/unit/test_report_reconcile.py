"""Reports that reconcile: every report a district gets (zh and en; a year,
a quarter, a month; ended or still running) states totals that are the sums
of the parts it lists, and figures equal to what an independent count of
the events gives.

Two years of a sample district's petitions are given a history (routing,
acceptance, replies on time or late, ratings, breaches of several kinds of
clock with their supervision orders), fed through reporting's real
projection (``Reporting.consumer`` over a ``MemoryStore``), and the reports
are rendered from the counter documents it wrote. The expected figures are
counted here from the events themselves, by the day each one happened, with
none of reporting's code.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event
from xinfang.core.directory import Directory
from xinfang.core.districts import District, parse_district
from xinfang.core.mongo import Position
from xinfang.core.store import MemoryStore
from xinfang.reporting.app import COUNTERS, Reporting, report_figures_from
from xinfang.reporting.figures import ReportFigures
from xinfang.reporting.projections import ReportSpans
from xinfang.reporting.report import render_markdown
from xinfang.sample.generator import petitions, sample_district

TODAY = date(2026, 12, 2)  # the reports are made on this day: 2026 has not ended
FIRST_DAY = date(2025, 1, 1)
DECISION = {
    ev.ROUTING_DECISION_ACCEPT: "accept",
    ev.ROUTING_DECISION_FORWARD: "forward",
    ev.ROUTING_DECISION_OUT_LITIGATION: "out_litigation",
    ev.ROUTING_DECISION_DECLINE: "decline",
}
CLOCK = {
    ev.CLOCK_KIND_REGISTER_AND_ROUTE: "register_and_route",
    ev.CLOCK_KIND_HANDLING: "handling",
    ev.CLOCK_KIND_TIER: "tier",
}
CLOCK_ZH = {
    "register_and_route": "登记转送期限超期",
    "handling": "办理期限超期",
    "tier": "化解层级时限超期",
}
CLOCK_EN = {
    "register_and_route": "registering and routing",
    "handling": "handling",
    "tier": "a tier's time box",
}


@dataclass
class Happened:
    """One event and what it counts as, written down when it was made."""

    event: ev.CaseEvent
    day: date  # the day (Shanghai) it happened
    counts: dict[str, int] = field(default_factory=dict)
    received: date | None = None  # its case's: the cohort it adds to
    cohort: dict[str, int] = field(default_factory=dict)


def _local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def _history(district: dict[str, Any], n: int, seed: int) -> list[Happened]:
    """``n`` petitions over two years and what the office did with them."""
    rng = random.Random(seed)
    did = district["district_id"]
    out: list[Happened] = []
    end = TODAY - timedelta(days=1)
    seen_refs: set[str] = set()
    for i, req in enumerate(petitions(district, n, seed=seed, start=FIRST_DAY, end=end)):
        make = _Case(f"case-{i}", did).make
        received = req.received_at.ToDatetime(tzinfo=UTC)
        ref = req.petitioner.id_number or f"p{i}"
        kind = ev.PETITION_KIND_REPEAT if ref in seen_refs else ev.PETITION_KIND_FIRST
        seen_refs.add(ref)
        reg = ev.CaseRegistered(
            channel=req.channel,
            township_id=req.township_id,
            category=req.category,
            people_count=req.people_count,
            source=req.source,
            kind=kind,
            group=req.people_count >= 5,
            escalated=req.escalated,
        )
        reg.received_at.CopyFrom(req.received_at)
        # entered up to ten days after it was received: still counts when received
        entered = received + timedelta(days=rng.randint(0, 10))
        out.append(
            Happened(
                make(entered, registered=reg),
                _local_day(received),
                {"received": 1, "first": int(kind == ev.PETITION_KIND_FIRST)},
            )
        )
        now = entered
        decision = rng.choices(list(DECISION), weights=(70, 20, 4, 6))[0]
        now += timedelta(hours=rng.randint(1, 24 * 20))
        if _local_day(now) >= TODAY:
            continue
        routed = ev.CaseRouted(decision=decision, unit_id="u-zjj", rule_id="r")
        out.append(
            Happened(
                make(now, routed=routed),
                _local_day(now),
                {f"d.{DECISION[decision]}": 1},
                _local_day(received),
                {"routed": 1},
            )
        )
        if rng.random() < 0.3:  # the routing took too long: a breach and its order
            out += _breach(make, now, ev.CLOCK_KIND_REGISTER_AND_ROUTE)
        if decision != ev.ROUTING_DECISION_ACCEPT:
            continue
        now += timedelta(days=rng.randint(1, 5))
        if _local_day(now) >= TODAY:
            continue
        accepted = ev.CaseAccepted(unit_id="u-zjj", tier=ev.TIER_TOWNSHIP)
        out.append(Happened(make(now, accepted=accepted), _local_day(now), {"units": 1}))
        late = rng.random() < 0.25
        if late and rng.random() < 0.8:  # the tier's box ran out first, then handling's
            t = now + timedelta(days=20)
            if _local_day(t) < TODAY:
                out += _breach(make, t, ev.CLOCK_KIND_TIER)
            t = now + timedelta(days=130)
            if _local_day(t) < TODAY:
                out += _breach(make, t, ev.CLOCK_KIND_HANDLING)
        # well inside 60 days, or well past 60 + 30
        now += timedelta(days=rng.randint(150, 170) if late else rng.randint(3, 40))
        if _local_day(now) >= TODAY:
            continue
        reply = ev.ReplyIssued(reply_id=f"r{i}", resolved=rng.random() < 0.8)
        out.append(
            Happened(
                make(now, reply_issued=reply),
                _local_day(now),
                {"replied": 1, "late": int(late), "on_time": int(not late)},
                _local_day(received),
                {"replied": 1},
            )
        )
        if rng.random() < 0.7:
            now += timedelta(days=rng.randint(1, 10))
            if _local_day(now) >= TODAY:
                continue
            rating = rng.choice(
                (ev.SATISFACTION_SATISFIED, ev.SATISFACTION_BASICALLY, ev.SATISFACTION_DISSATISFIED)
            )
            rated = ev.SatisfactionRated(rating=rating)
            out.append(
                Happened(make(now, satisfaction_rated=rated), _local_day(now), {f"r.{rating}": 1})
            )
    return out


class _Case:
    """Makes one case's events, numbering its versions."""

    def __init__(self, case_id: str, district_id: str) -> None:
        self.case_id, self.district_id, self.version = case_id, district_id, 0

    def make(self, at: datetime, **payload: Any) -> ev.CaseEvent:
        self.version += 1
        return new_event(
            case_id=self.case_id,
            district_id=self.district_id,
            producer="test",
            case_version=self.version,
            occurred_at=at,
            **payload,
        )


def _breach(
    make: Callable[..., ev.CaseEvent], at: datetime, clock: ev.ClockKind.ValueType
) -> list[Happened]:
    day = _local_day(at)
    name = CLOCK[clock]
    return [
        Happened(
            make(at, deadline_breached=ev.DeadlineBreached(clock=clock, unit_id="u-zjj")),
            day,
            {f"b.{name}": 1},
        ),
        Happened(
            make(
                at,
                supervision_order_issued=ev.SupervisionOrderIssued(
                    order_id=uuid.uuid4().hex, clock=clock
                ),
            ),
            day,
            {"orders": 1},
        ),
    ]


class _OneDistrict(Directory):
    def __init__(self, district: District) -> None:
        self.district = district

    async def get(self, district_id: str, fresh: bool = False) -> District:
        return self.district


def _spans_days(period: str) -> tuple[date, date]:
    """First and last day a report of ``period`` made on TODAY covers."""
    y = int(period[:4])
    if len(period) == 4:
        start, end = date(y, 1, 1), date(y, 12, 31)
    elif period[5] == "Q":
        q = int(period[6])
        start = date(y, 3 * q - 2, 1)
        end = (date(y + (q == 4), (3 * q) % 12 + 1, 1)) - timedelta(days=1)
    else:
        m = int(period[5:])
        start = date(y, m, 1)
        end = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
    return start, min(end, TODAY)


def _expected(history: list[Happened], first: date, last: date) -> Counter[str]:
    c: Counter[str] = Counter()
    for h in history:
        if first <= h.day <= last:
            c.update(h.counts)
        if h.received is not None and first <= h.received <= last:
            c.update({f"cohort.{k}": v for k, v in h.cohort.items()})
    return c


def _year_earlier(d: date) -> date:
    return d.replace(year=d.year - 1, day=min(d.day, 28) if d.month == 2 else d.day)


@pytest.fixture(scope="module")
def reports() -> Iterator[tuple[list[Happened], dict[str, ReportFigures]]]:
    raw = sample_district(7)
    district = parse_district(raw)
    history = _history(raw, 600, seed=11)
    store = MemoryStore()
    reporting = Reporting({COUNTERS: None}, _OneDistrict(district))  # type: ignore[arg-type]
    consumer = reporting.consumer(store)
    ordered = sorted(history, key=lambda h: h.event.occurred_at.ToDatetime())
    items = [(h.event, Position(0, i)) for i, h in enumerate(ordered)]

    async def feed() -> dict[str, Any]:
        for i in range(0, len(items), 250):
            results = await consumer(items[i : i + 250])
            assert all(r == "applied" for r in results), results
        return {d["_id"]: d for d in shards.merge_all(await store.scan(COUNTERS, 10_000))}

    docs = asyncio.run(feed())
    periods = ["2025", "2026", "2025-Q3", "2026-Q3", "2026-Q4", "2026-07", "2026-12", "2026-11"]
    out = {
        p: report_figures_from(district, ReportSpans.of(p, TODAY), docs, generated_at="2026-12-02")
        for p in periods
    }
    yield history, out


def _num(s: str) -> int:
    return int(s.replace(",", ""))


def _one(pattern: str, text: str) -> re.Match[str]:
    m = re.search(pattern, text)
    assert m is not None, f"{pattern!r} not in the report"
    return m


def _table_row(md: str, label: str) -> list[str]:
    m = _one(r"\| " + re.escape(label) + r" \|([^\n]*)\|", md)
    return [x.strip() for x in m.group(1).split("|")]


PERIODS = ["2025", "2026", "2025-Q3", "2026-Q3", "2026-Q4", "2026-07", "2026-12", "2026-11"]


@pytest.mark.parametrize("period", PERIODS)
def test_zh_totals_are_their_parts_and_match_the_events(
    reports: tuple[list[Happened], dict[str, ReportFigures]], period: str
) -> None:
    history, figures = reports
    md = render_markdown(figures[period], "zh")
    first, last = _spans_days(period)
    want = _expected(history, first, last)

    m = _one(r"共登记群众来信来访([\d,]+)件", md)
    assert _num(m.group(1)) == want["received"]
    m = _one(r"初信初访([\d,]+)件，占[^；]*；重复信访([\d,]+)件", md)
    assert _num(m.group(1)) + _num(m.group(2)) == want["received"]
    assert _num(m.group(1)) == want["first"]

    m = _one(
        r"共作出处理决定([\d,]+)件，其中依法受理([\d,]+)件、转送有权处理机关([\d,]+)件"
        r"(?:、导入诉讼等法定途径([\d,]+)件)?(?:、转纪检监察机关([\d,]+)件)?"
        r"(?:、其他处理([\d,]+)件)?、不予受理([\d,]+)件",
        md,
    )
    parts = [_num(g) if g else 0 for g in m.groups()[1:]]
    assert _num(m.group(1)) == sum(parts)
    assert _num(m.group(2)) == want["d.accept"]
    assert _num(m.group(3)) == want["d.forward"]
    assert (_num(m.group(4)) if m.group(4) else 0) == want["d.out_litigation"]
    assert _num(m.group(7)) == want["d.decline"]
    m = _one(r"各承办单位确认受理信访事项([\d,]+)件", md)
    assert _num(m.group(1)) == want["units"]
    # the period's own petitions, and what has become of them since
    m = _one(
        r"本期登记的([\d,]+)件信访事项中，截至[^已]*已作出处理决定([\d,]+)件、已办结([\d,]+)件", md
    )
    assert _num(m.group(1)) == want["received"]
    assert _num(m.group(2)) == want["cohort.routed"] <= want["received"]
    assert _num(m.group(3)) == want["cohort.replied"] <= _num(m.group(2))

    if want["replied"]:
        m = _one(r"共办结信访事项([\d,]+)件，其中按期办结([\d,]+)件、超期办结([\d,]+)件", md)
        replied, on_time, late = (_num(g) for g in m.groups())
        assert replied == on_time + late == want["replied"]
        assert (on_time, late) == (want["on_time"], want["late"])
        rate = _one(r"按期办结率([\d.]+)%", md).group(1)
        assert rate == f"{on_time / replied * 100:.1f}"
    else:
        assert "本期暂无办结的信访事项" in md
    rated = sum(v for k, v in want.items() if k.startswith("r."))
    if rated:
        m = _one(
            r"群众参与评价([\d,]+)件，其中满意([\d,]+)件、基本满意([\d,]+)件、不满意([\d,]+)件", md
        )
        assert _num(m.group(1)) == sum(_num(g) for g in m.groups()[1:]) == rated
        assert _num(m.group(2)) == want[f"r.{ev.SATISFACTION_SATISFIED}"]
        assert _num(m.group(4)) == want[f"r.{ev.SATISFACTION_DISSATISFIED}"]

    breaches = {k[2:]: v for k, v in want.items() if k.startswith("b.") and v}
    m = _one(r"督办通知([\d,]+)份", md)
    assert _num(m.group(1)) == want["orders"] == sum(breaches.values())
    if breaches:
        m = _one(r"各类法定期限超期共([\d,]+)次，其中([^。]*)。", md)
        items = dict(
            (name, _num(n)) for name, n in re.findall(r"([^、\d]+?)([\d,]+)次", m.group(2))
        )
        assert _num(m.group(1)) == sum(items.values()) == sum(breaches.values())
        assert items == {CLOCK_ZH[k]: v for k, v in breaches.items()}
    else:
        assert "未发生超过法定期限的情况" in md

    # the key table says the same, and so does its comparison with last year
    row = _table_row(md, "来信来访总量（件）")
    assert _num(row[0]) == want["received"]
    ly = _expected(history, _year_earlier(first), _year_earlier(last))
    assert row[2] == ("—" if not any(ly.values()) else str(ly["received"]))
    assert _num(_table_row(md, "作出处理决定（件）")[0]) == sum(parts)
    assert _num(_table_row(md, "超期办结（件）")[0]) == want["late"]
    assert _num(_table_row(md, "法定期限超期（次）")[0]) == sum(breaches.values())
    assert _num(_table_row(md, "督办通知（份）")[0]) == want["orders"]


@pytest.mark.parametrize("period", PERIODS)
def test_en_totals_are_their_parts_and_match_the_events(
    reports: tuple[list[Happened], dict[str, ReportFigures]], period: str
) -> None:
    history, figures = reports
    md = render_markdown(figures[period], "en")
    first, last = _spans_days(period)
    want = _expected(history, first, last)
    m = _one(r"the district received ([\d,]+) petitions", md)
    assert _num(m.group(1)) == want["received"]
    m = _one(
        r"Decisions were made on ([\d,]+) registered petitions: ([\d,]+) accepted, ([\d,]+) "
        r"forwarded to the competent authority(?:, ([\d,]+) directed to litigation or other "
        r"statutory channels)?(?:, ([\d,]+) referred to the discipline inspection bodies)?"
        r"(?:, ([\d,]+) otherwise disposed of)?, and ([\d,]+) declined",
        md,
    )
    parts = [_num(g) if g else 0 for g in m.groups()[1:]]
    assert _num(m.group(1)) == sum(parts) == sum(v for k, v in want.items() if k[:2] == "d.")
    if want["replied"]:
        m = _one(r"([\d,]+) cases were concluded, ([\d,]+) on time and ([\d,]+) late", md)
        replied, on_time, late = (_num(g) for g in m.groups())
        assert replied == on_time + late == want["replied"]
        assert late == want["late"]
    breaches = {k[2:]: v for k, v in want.items() if k.startswith("b.") and v}
    m = _one(r"and ([\d,]+) supervision orders \(one for each breach\)", md)
    assert _num(m.group(1)) == want["orders"]
    if breaches:
        m = _one(r"statutory time limits of all kinds ran out ([\d,]+) times: ([^.]*)\.", md)
        items = {name: _num(n) for name, n in re.findall(r"([^,\d]+?) ([\d,]+)", m.group(2))}
        items = {k.strip(): v for k, v in items.items()}
        assert _num(m.group(1)) == sum(items.values()) == sum(breaches.values())
        assert items == {CLOCK_EN[k]: v for k, v in breaches.items()}


def test_a_running_period_says_so_and_compares_the_same_span(
    reports: tuple[list[Happened], dict[str, ReportFigures]],
) -> None:
    history, figures = reports
    f = figures["2026"]
    assert f.through == "2026-12-02"
    md = render_markdown(f, "zh")
    assert md.startswith("# 示范区2026年（截至12月2日）信访工作开展情况报告")
    assert "本期尚未结束，统计截至2026年12月2日；上期、上年同期均按相同时段统计。" in md
    en = render_markdown(f, "en")
    assert "2026, year to date (through 2 December)" in en
    # last year's figures are those of 1 January to 2 December 2025, not all of 2025
    assert f.last_year is not None
    span = _expected(history, date(2025, 1, 1), date(2025, 12, 2))
    whole = _expected(history, date(2025, 1, 1), date(2025, 12, 31))
    assert f.last_year.received == span["received"] < whole["received"]
    assert figures["2025"].through == ""  # an ended period is reported whole
    assert figures["2025"].current.received == whole["received"]
    # a month still running: its previous month to the same day
    dec = figures["2026-12"]
    assert dec.previous is not None
    assert (
        dec.previous.received
        == _expected(history, date(2026, 11, 1), date(2026, 11, 2))["received"]
    )
    assert [m.period for m in figures["2026-Q4"].monthly] == ["2026-10", "2026-11", "2026-12"]
