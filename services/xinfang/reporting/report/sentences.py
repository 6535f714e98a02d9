"""The report's sentences and tables, built from its figures in one language.

Reads like the 工作情况报告 a district petition office (区信访局) sends up:
title, opening, 一、来信来访基本情况 (every figure with 同比 and 环比),
二、开展的主要工作, 三、存在的主要问题 (the fields and the townships and units
most complained about, Art. 41), 四、下一步工作, then an appendix with the
breakdown tables, the ranking and the charts. Every total a sentence states
is the sum of the parts it then lists (``model.Parts``); every word comes
from ``catalogue.TEXT``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from xinfang.reporting.figures import PeriodFigures, ReportFigures
from xinfang.reporting.report.blocks import (
    TEXT_WIDTH_CM,
    Block,
    Chart,
    ChartKind,
    Para,
    ParaKind,
    Table,
    ems,
)
from xinfang.reporting.report.catalogue import MONTHS_EN, QUARTERS_ZH, TEXT, Lang
from xinfang.reporting.report.model import Stated

__all__ = ["build"]

# characters of 2号 (22 pt) that fit on a line of the title
_TITLE_EMS = 19.5


@dataclass
class _Writer:
    """Builds the report's blocks from the figures, in one language."""

    f: ReportFigures
    lang: Lang
    out: list[Block] = field(default_factory=list)

    # -- small formatting helpers --

    @property
    def gap(self) -> str:
        """Between two sentences run together."""
        return "" if self.lang == "zh" else " "

    def t(self, key: str, **kw: object) -> str:
        s = TEXT[self.lang][key]
        return s.format(**kw) if kw else s

    @property
    def big(self) -> int:
        """Thousands separators from here on: 四位以内的整数不分节 in Chinese."""
        return 10_000 if self.lang == "zh" else 1_000

    def n(self, v: int) -> str:
        return f"{v:,}" if abs(v) >= self.big else str(v)

    def chart(
        self,
        caption: str,
        kind: ChartKind,
        labels: list[str],
        values: list[int],
        total: int = 0,
    ) -> Chart:
        """total > 0: each bar also shows its share of it."""
        texts = [
            f"{self.n(v)} ({self.pct(self.share(v, total))})" if total else self.n(v)
            for v in values
        ]
        return Chart(caption, kind, labels, values, texts, self.t("axis_unit"), self.big)

    @staticmethod
    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%"

    def pshare(self, part: int, total: int) -> str:
        """A share in prose: of nothing, nothing (0.0%), where a table shows —."""
        return self.pct(part / total if total > 0 else 0.0)

    def rate(self, x: float | None) -> str:
        return self.t("rate_na") if x is None else self.pct(x)

    @staticmethod
    def share(part: int, total: int) -> float | None:
        return part / total if total > 0 else None

    @staticmethod
    def rel(cur: int, base: int | None) -> float | None:
        if base is None:
            return None
        if base == 0:
            return 0.0 if cur == 0 else None
        return (cur - base) / base

    def cmp(self, cur: int, base: int | None) -> str:
        """'上升3.1%' / '下降5.2%' / '持平' / '无可比数据'."""
        r = self.rel(cur, base)
        if r is None:
            return self.t("cmp_na")
        if round(r * 100, 1) == 0:
            return self.t("cmp_same")
        return self.t("cmp_up" if r > 0 else "cmp_down", pct=f"{abs(r) * 100:.1f}%")

    def cmp_pp(self, cur: float | None, base: float | None) -> str:
        if cur is None or base is None:
            return self.t("cmp_na")
        d = round((cur - base) * 100, 1)
        if d == 0:
            return self.t("cmp_same")
        return self.t("pp_up" if d > 0 else "pp_down", pp=f"{abs(d):.1f}")

    def cell_rel(self, cur: int, base: int | None) -> str:
        r = self.rel(cur, base)
        if r is None:
            return "—"
        if round(r * 100, 1) == 0:
            return self.t("cell_same")
        return f"{r * 100:+.1f}%"

    def cell_pp(self, cur: float | None, base: float | None) -> str:
        if cur is None or base is None:
            return "—"
        d = round((cur - base) * 100, 1)
        return self.t("cell_same") if d == 0 else f"{d:+.1f}"

    def period_label(self, period: str) -> str:
        y, _, rest = period.partition("-")
        if not y.isdigit():
            return period
        if not rest:
            return self.t("period_year", y=y)
        if rest.startswith("Q") and rest[1:] in ("1", "2", "3", "4"):
            q = int(rest[1:])
            return self.t("period_quarter", y=y, q=QUARTERS_ZH[q - 1] if self.lang == "zh" else q)
        if rest.isdigit() and 1 <= int(rest) <= 12:
            m = int(rest)
            return self.t("period_month", y=y, m=m, month=MONTHS_EN[m - 1])
        return period

    def month_label(self, period: str, short: bool = True) -> str:
        """7月 / Jul (short) or July."""
        _, _, rest = period.partition("-")
        if rest.isdigit() and 1 <= int(rest) <= 12:
            m = int(rest)
            name = MONTHS_EN[m - 1]
            return self.t("month_short", m=m, mon=name[:3] if short else name)
        return period

    def name(self, key: str) -> str:
        return self.f.names.get(key, key)

    def channel_name(self, key: str) -> str:
        k = f"ch_{key}"
        return self.t(k) if k in TEXT[self.lang] else self.name(key)

    def join(self, items: Iterable[str], sep: str = "list_sep") -> str:
        return self.t(sep).join(items)

    def para(
        self,
        kind: ParaKind,
        text: str,
        keep_with_next: bool = False,
    ) -> None:
        self.out.append(Para(kind, text, keep_with_next))

    # -- the report --

    def span_label(self, period: str) -> str:
        """The period's name, and for one that has not ended, to when."""
        if not self.f.through:
            return period
        d = date.fromisoformat(self.f.through)
        p = self.f.period
        kind = "year" if len(p) == 4 else "quarter" if p[5] == "Q" else "month"
        return self.t(
            "period_to_date",
            period=period,
            kind=self.t(f"kind_{kind}"),
            m=d.month,
            d=d.day,
            month=MONTHS_EN[d.month - 1],
        )

    def span_note(self) -> str:
        if not self.f.through:
            return ""
        return self.gap + self.t("note_span", date=self.day_label(self.f.through))

    def day_label(self, iso: str) -> str:
        d = date.fromisoformat(iso)
        return self.t("date", y=d.year, m=d.month, d=d.day, month=MONTHS_EN[d.month - 1])

    def build(self) -> list[Block]:
        f = self.f
        period = self.span_label(self.period_label(f.period))
        title = self.t("title", district=f.district_name, period=period)
        if self.lang == "zh" and ems(title) > _TITLE_EMS:
            head = f"{f.district_name}{period}"
            title = f"{head}\n{title[len(head) :]}"
        self.para("title", title)
        self.para(
            "p", self.t("opening", period=period, district=f.district_name, trend=self.trend())
        )
        self.section_one(period)
        self.section_two()
        self.section_three()
        self.para("h1", self.t("h4"))
        # the last lines of the body stay on the page of the signature
        self.para("p", self.t("p_next"), keep_with_next=True)
        self.para("sign", self.t("sign_org", district=f.district_name), keep_with_next=True)
        self.para("sign", self.report_date())
        self.appendix(period)
        return self.out

    def trend(self) -> str:
        ind = self.f.indicators
        if ind.achieved:
            return self.t("trend_achieved")
        if ind.received_down is None:
            return self.t("trend_unknown")
        return self.t("trend_down" if ind.received_down else "trend_up")

    def report_day(self) -> date:
        d = date.today()
        if self.f.generated_at:
            with contextlib.suppress(ValueError):
                d = datetime.fromisoformat(self.f.generated_at.replace("Z", "+00:00")).date()
        return d

    def report_date(self) -> str:
        return self.day_label(self.report_day().isoformat())

    def section_one(self, period: str) -> None:
        c, p, ly = self.f.current, self.f.previous, self.f.last_year
        self.para("h1", self.t("h1"))

        self.para("h2", self.t("h1_total"))
        yoy_total = self.rel(c.received, ly.received if ly else None)
        mom_total = self.rel(c.received, p.received if p else None)
        text = self.t(
            "p_total" if yoy_total is not None or mom_total is not None else "p_total_na",
            period=period,
            received=self.n(c.received),
            people=self.n(c.people),
            yoy=self.cmp(c.received, ly.received if ly else None),
            mom=self.cmp(c.received, p.received if p else None),
        )
        months = [m for m in self.f.monthly if m.received or m.period]
        if len(months) >= 2 and c.received > 0:
            peak = max(months, key=lambda m: m.received)
            avg = sum(m.received for m in months) / len(months)
            text += self.gap + self.t(
                "p_peak",
                avg=self.n(round(avg)),
                month=self.month_label(peak.period, short=False),
                n=self.n(peak.received),
            )
        self.para("p", text)

        self.para("h2", self.t("h1_channel"))
        ch = _channel_counts(c)
        total_ch = sum(ch.values())
        if total_ch:
            items = [
                self.t(
                    "channel_item",
                    name=self.channel_name(k),
                    n=self.n(v),
                    share=self.pct(self.share(v, total_ch)),
                )
                for k, v in ch.items()
            ]
            top = max(ch, key=lambda k: ch[k])
            self.para(
                "p",
                self.t(
                    "p_channel",
                    items=self.join(items),
                    top=self.t("channel_top", name=_capital(self.channel_name(top))),
                ),
            )
        else:
            self.para("p", self.t("p_channel_none"))

        self.para("h2", self.t("h1_kind"))
        kinds = Stated(c).kinds.total  # = received
        self.para(
            "p",
            self.t(
                "p_kind",
                first=self.n(c.first),
                first_share=self.pshare(c.first, kinds),
                repeat=self.n(c.repeat),
                repeat_share=self.pshare(c.repeat, kinds),
                repeat_yoy=self.cmp(c.repeat, ly.repeat if ly else None),
                group=self.n(c.group),
                group_people=self.n(c.group_people),
                group_yoy=self.cmp(c.group, ly.group if ly else None),
                escalated=self.n(c.escalated),
                escalated_yoy=self.cmp(c.escalated, ly.escalated if ly else None),
                higher=self.n(c.higher_level),
            ),
        )

        self.para("h2", self.t("h1_route"))
        dec = Stated(c).decisions
        outs = ""
        if lit := dec["out_litigation"]:
            outs += self.t("route_litigation", n=self.n(lit))
        if disc := dec["out_discipline"]:
            outs += self.t("route_discipline", n=self.n(disc))
        if other := dec.others(
            ("accept", "forward", "out_litigation", "out_discipline", "decline")
        ):
            outs += self.t("route_other", n=self.n(other))
        text = self.t(
            "p_route",
            routed=self.n(dec.total),
            accepted=self.n(dec["accept"]),
            forward=self.n(dec["forward"]),
            outs=outs,
            decline=self.n(dec["decline"]),
        )
        if c.unit_disputes:
            text += self.gap + self.t("route_disputes", n=self.n(c.unit_disputes))
        # the units' own acceptances, recorded after the office routed a case
        # to them: a different count from the office's decisions above
        text += self.gap + self.t("route_units", n=self.n(c.accepted))
        if c.received:
            # the petitions of this period and what has become of them since:
            # the decisions above are those made in the period, on any petition
            text += self.gap + self.t(
                "route_cohort",
                received=self.n(c.received),
                date=self.day_label(self.f.through or self.report_day().isoformat()),
                routed=self.n(c.cohort_routed),
                replied=self.n(c.cohort_replied),
            )
        self.para("p", text)

        self.para("h2", self.t("h1_done"))
        st, sl = Stated(c), Stated(ly) if ly else None
        replies = st.replies
        if replies.total:
            text = self.t(
                "p_done",
                replied=self.n(replies.total),
                on_time=self.n(replies["on_time"]),
                late=self.n(replies["late"]),
                on_time_rate=self.rate(st.on_time_rate),
                on_time_yoy=self.cmp_pp(st.on_time_rate, sl.on_time_rate if sl else None),
                resolved=self.n(c.resolved),
                resolution_rate=self.rate(st.resolution_rate),
            )
        else:
            text = self.t("p_done_none")
        ratings = st.ratings
        if ratings.total:
            text += self.gap + self.t(
                "p_rated",
                rated=self.n(ratings.total),
                satisfied=self.n(ratings["satisfied"]),
                basic=self.n(ratings["basically"]),
                dissatisfied=self.n(ratings["dissatisfied"]),
                rate=self.rate(st.satisfaction_rate),
                yoy=self.cmp_pp(st.satisfaction_rate, sl.satisfaction_rate if sl else None),
            )
        else:
            text += self.gap + self.t("p_rated_none")
        text += self.gap + self.t(
            "p_review", reviews=self.n(c.reviews), rereviews=self.n(c.rereviews)
        )
        self.para("p", text)

        self.para("h2", self.t("h1_backlog"))
        self.para(
            "p",
            self.t(
                "p_backlog",
                start=self.n(c.backlog_start),
                end=self.n(c.backlog_end),
                change=self.backlog_change(c),
                received=self.n(c.received),
                yoy=self.cmp(c.received, ly.received if ly else None),
            ),
        )

        self.para("h2", self.t("h1_ind"))
        self.para("p", self.indicators_text())

        self.out.append(self.key_table(period))

    def backlog_change(self, c: PeriodFigures) -> str:
        d = c.backlog_end - c.backlog_start
        if d == 0:
            return self.t("cmp_same")
        if c.backlog_start == 0:
            return self.t("backlog_new", n=self.n(d))
        pct = f"{abs(d) / c.backlog_start * 100:.1f}%"
        return self.t("backlog_down" if d < 0 else "backlog_up", n=self.n(abs(d)), pct=pct)

    def indicators_text(self) -> str:
        c, ly = self.f.current, self.f.last_year
        ind = self.f.indicators

        def status(v: bool | None) -> str:
            # nothing to add where the change itself already says 无可比数据
            return "" if v is None else self.t("st_yes" if v else "st_no")

        items = [
            self.t(
                "ind_received",
                chg=self.cmp(c.received, ly.received if ly else None),
                status=status(ind.received_down),
            ),
            self.t(
                "ind_group",
                chg=self.cmp(c.group, ly.group if ly else None),
                status=status(ind.group_down),
            ),
            self.t(
                "ind_escalated",
                chg=self.cmp(c.escalated, ly.escalated if ly else None),
                status=status(ind.escalated_down),
            ),
            self.t("ind_backlog_na")
            if ind.backlog_down is None
            else self.t(
                "ind_backlog",
                chg=self.cmp(c.backlog_end, c.backlog_start),
                order=self.t("order_better" if ind.backlog_down else "order_worse"),
                status=status(ind.backlog_down),
            ),
        ]
        parts = (ind.received_down, ind.group_down, ind.escalated_down, ind.backlog_down)
        if ind.achieved:
            conclusion = self.t("ind_all")
        elif any(v is False for v in parts):
            conclusion = self.t("ind_some", n=sum(1 for v in parts if v is False))
        else:
            conclusion = self.t("ind_unknown")
        return self.t("p_ind", items=self.join(items), conclusion=conclusion)

    def key_table(self, period: str) -> Table:
        c, p, ly = self.f.current, self.f.previous, self.f.last_year
        counts: list[tuple[str, Callable[[PeriodFigures], int]]] = [
            ("row_received", lambda x: x.received),
            ("row_people", lambda x: x.people),
            ("row_first", lambda x: x.first),
            ("row_repeat", lambda x: x.repeat),
            ("row_group", lambda x: x.group),
            ("row_group_people", lambda x: x.group_people),
            ("row_escalated", lambda x: x.escalated),
            ("row_higher", lambda x: x.higher_level),
            ("row_routed", lambda x: Stated(x).decisions.total),
            ("row_accepted", lambda x: Stated(x).decisions["accept"]),
            ("row_replied", lambda x: Stated(x).replies.total),
            ("row_late", lambda x: Stated(x).replies["late"]),
            ("row_resolved", lambda x: x.resolved),
        ]
        rates: list[tuple[str, Callable[[PeriodFigures], float | None]]] = [
            ("row_on_time", lambda x: Stated(x).on_time_rate),
            ("row_resolution", lambda x: Stated(x).resolution_rate),
            ("row_satisfaction", lambda x: Stated(x).satisfaction_rate),
        ]
        tail: list[tuple[str, Callable[[PeriodFigures], int]]] = [
            ("row_backlog_end", lambda x: x.backlog_end),
            ("row_backflow", lambda x: x.backflow),
            ("row_receptions", lambda x: x.leader_receptions),
            ("row_breaches", lambda x: Stated(x).breaches.total),
            ("row_orders", lambda x: Stated(x).orders.total),
        ]
        rows: list[list[str]] = []

        def count_row(key: str, get: Callable[[PeriodFigures], int]) -> list[str]:
            cv, pv, lv = get(c), get(p) if p else None, get(ly) if ly else None
            return [
                self.t(key),
                self.n(cv),
                "—" if pv is None else self.n(pv),
                "—" if lv is None else self.n(lv),
                self.cell_rel(cv, pv),
                self.cell_rel(cv, lv),
            ]

        rows += [count_row(k, g) for k, g in counts]
        for key, get_rate in rates:
            cr, pr, lr = get_rate(c), get_rate(p) if p else None, get_rate(ly) if ly else None
            rows.append(
                [
                    self.t(key),
                    self.pct(cr),
                    self.pct(pr),
                    self.pct(lr),
                    self.cell_pp(cr, pr),
                    self.cell_pp(cr, lr),
                ]
            )
        rows += [count_row(k, g) for k, g in tail]
        header = [
            self.t(k) for k in ("col_item", "col_cur", "col_prev", "col_ly", "col_mom", "col_yoy")
        ]
        first = 4.6 if self.lang == "zh" else 5.0
        rest = (TEXT_WIDTH_CM - first) / 5
        return Table(
            caption=self.t("cap_key", period=period),
            header=header,
            rows=rows,
            widths=[first] + [rest] * 5,
            note=self.t("note_key")
            + (
                self.gap + self.t("note_span", date=self.day_label(self.f.through))
                if self.f.through
                else ""
            ),
        )

    def section_two(self) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("h1", self.t("h2"))
        self.para("h2", self.t("h2_leader"))
        self.para(
            "p",
            self.t(
                "p_leader",
                batches=self.n(c.leader_receptions),
                people=self.n(c.leader_reception_people),
                out=self.n(c.leader_visits_out),
                packages=self.n(c.leader_packages),
                resolved=self.n(c.leader_resolved),
                rate=self.rate(self.share(c.leader_resolved, c.leader_packages)),
            ),
        )
        self.para("h2", self.t("h2_mediation"))
        self.para(
            "p",
            self.t(
                "p_mediation",
                entered=self.n(c.mediation_entered),
                resolved=self.n(c.mediation_resolved),
                rate=self.rate(self.share(c.mediation_resolved, c.mediation_entered)),
            ),
        )
        self.para("h2", self.t("h2_supervision"))
        breaches, orders = Stated(c).breaches, Stated(c).orders
        if breaches.total:
            by_clock = [
                self.t("clock_item", name=self.t(f"clock_{k}"), n=self.n(v))
                for k, v in breaches
                if v
            ]
            breach = self.t(
                "breach_some", n=self.n(breaches.total), items=self.join(by_clock, "enum_sep")
            )
        else:
            breach = self.t("breach_none")
        self.para(
            "p",
            self.t(
                "p_supervision",
                orders=self.n(orders.total),
                warnings=self.n(c.warnings),
                breach=breach,
            ),
        )
        self.para("h2", self.t("h2_backlog"))
        self.para(
            "p",
            self.t(
                "p_backlog_work",
                higher=self.n(c.higher_level),
                resolved=self.n(c.higher_level_resolved),
                rate=self.rate(self.share(c.higher_level_resolved, c.higher_level)),
                backflow=self.n(c.backflow),
                yoy=self.cmp(c.backflow, ly.backflow if ly else None),
            ),
        )
        self.para("h2", self.t("h2_suggest"))
        self.para(
            "p",
            self.t(
                "p_suggest",
                made=self.n(c.suggestions_made),
                adopted=self.n(c.suggestions_adopted),
                rate=self.rate(self.share(c.suggestions_adopted, c.suggestions_made)),
            ),
        )

    def top_items(self, counts: dict[str, int], k: int) -> tuple[list[str], float | None, int]:
        total = sum(counts.values())
        top = _sorted_desc(counts)[:k]
        items = [
            self.t(
                "top_item",
                name=self.name(key),
                n=self.n(v),
                share=self.pct(self.share(v, total)),
            )
            for key, v in top
        ]
        return items, self.share(sum(v for _, v in top), total), len(top)

    def section_three(self) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("h1", self.t("h3"))
        for head, text_key, none_key, counts in (
            ("h3_cat", "p_cat", "p_cat_none", c.by_category),
            ("h3_town", "p_town", "p_town_none", c.by_township),
            ("h3_unit", "p_unit", "p_unit_none", c.by_unit),
        ):
            self.para("h2", self.t(head))
            items, total_share, k = self.top_items(counts, 3)
            if k:
                text = self.t(
                    text_key,
                    k=k if self.lang == "en" else "一二三"[k - 1],
                    items=self.join(items, "enum_sep"),
                    sum=self.pct(total_share),
                )
            else:
                text = self.t(none_key)
            self.para("p", text)
        self.para("h2", self.t("h3_quality"))
        self.para(
            "p",
            self.t(
                "p_quality",
                on_time=self.rate(Stated(c).on_time_rate),
                late=self.n(Stated(c).replies["late"]),
                handling=self.n(Stated(c).breaches["handling"]),
                dissatisfied=self.n(c.dissatisfied),
                reviews=self.n(c.reviews),
                rereviews=self.n(c.rereviews),
                repeat=self.n(c.repeat),
                repeat_share=self.pshare(c.repeat, c.received),
            ),
        )
        if c.backflow:
            self.para("h2", self.t("h3_backflow"))
            yoy = self.cmp(c.backflow, ly.backflow if ly else None)
            self.para("p", self.t("p_backflow", n=self.n(c.backflow), yoy=yoy))
        else:
            self.para("h2", self.t("h3_backflow_none"))
            self.para("p", self.t("p_backflow_none", esc=self.n(c.escalated)))

    def breakdown(
        self, caption: str, col: str, counts: dict[str, int], last: dict[str, int] | None
    ) -> Table:
        total = sum(counts.values())
        rows: list[list[str]] = []
        keys = _sorted_desc(counts)
        if last is not None:
            keys += [(k, 0) for k in sorted(last) if k not in counts and last[k]]
        for key, v in keys:
            row = [self.name(key), self.n(v), self.pct(self.share(v, total))]
            if last is not None:
                lv = last.get(key, 0)
                row += [self.n(lv), self.cell_rel(v, lv)]
            rows.append(row)
        total_row = [self.t("total"), self.n(total), self.pct(1.0 if total else None)]
        header = [self.t(col), self.t("col_cases"), self.t("col_share")]
        if last is not None:
            lt = sum(last.values())
            total_row += [self.n(lt), self.cell_rel(total, lt)]
            header += [self.t("col_ly"), self.t("col_yoy")]
        rows.append(total_row)
        first = 6.0 if last is not None else 8.6
        rest = (TEXT_WIDTH_CM - first) / (len(header) - 1)
        return Table(
            caption=caption,
            header=header,
            rows=rows,
            widths=[first] + [rest] * (len(header) - 1),
            bold_rows=frozenset({len(rows) - 1}),
        )

    def appendix(self, period: str) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("appendix", self.t("appendix"))
        self.out.append(
            self.breakdown(
                self.t("cap_cat"), "col_category", c.by_category, ly.by_category if ly else None
            )
        )
        self.out.append(
            self.breakdown(
                self.t("cap_town"), "col_township", c.by_township, ly.by_township if ly else None
            )
        )
        self.out.append(self.breakdown(self.t("cap_unit"), "col_unit", c.by_unit, None))
        no = 4
        for kind, ranking in self.f.rankings.items():
            if not ranking:
                continue
            self.out.append(self.ranking_table(no, period, kind, ranking))
            no += 1
        # charts
        if len(self.f.monthly) > 1 and any(m.received for m in self.f.monthly):
            self.out.append(
                self.chart(
                    self.t("fig_trend", period=period),
                    "trend",
                    [self.month_label(m.period) for m in self.f.monthly],
                    [m.received for m in self.f.monthly],
                )
            )
        ch = _channel_counts(c)
        if sum(ch.values()):
            self.out.append(
                self.chart(
                    self.t("fig_channel"),
                    "channel",
                    [_capital(self.channel_name(k)) for k in ch],
                    list(ch.values()),
                    sum(ch.values()),
                )
            )
        for caption, counts, k in (
            (self.t("fig_cat"), c.by_category, 10),
            (self.t("fig_town"), c.by_township, 12),
        ):
            top = _sorted_desc(counts)[:k]
            if top:
                self.out.append(
                    self.chart(
                        caption,
                        "barh",
                        [self.name(key) for key, _ in top],
                        [v for _, v in top],
                        sum(counts.values()),
                    )
                )

    def ranking_table(
        self, no: int, period: str, kind: str, ranking: list[dict[str, object]]
    ) -> Table:
        kind_key = f"rank_kind_{kind}"
        kind_label = self.t(kind_key) if kind_key in TEXT[self.lang] else kind
        rows: list[list[str]] = []
        flagged: set[int] = set()
        for i, r in enumerate(ranking):
            subject = str(r.get("subject") or r.get("name") or "")
            rank = r.get("rank")
            ranked = bool(r.get("ranked", bool(rank)))
            score = r.get("score")
            volume = r.get("volume", 0)
            note = ""
            if r.get("bottom"):
                note = self.t("rank_bottom")
                flagged.add(i)
            elif not ranked:
                note = self.t("rank_unranked")
            rows.append(
                [
                    str(rank) if ranked and rank else "—",
                    self.name(subject),
                    f"{score:.1f}" if isinstance(score, int | float) else "—",
                    self.n(volume) if isinstance(volume, int) else str(volume),
                    note,
                ]
            )
        header = [
            self.t(k) for k in ("col_rank", "col_name", "col_score", "col_volume", "col_note")
        ]
        return Table(
            caption=self.t("cap_rank", no=no, period=period, kind=kind_label),
            header=header,
            rows=rows,
            widths=[1.6, 6.0, 2.2, 2.2, TEXT_WIDTH_CM - 12.0],
            left=frozenset({1}),
            bold_rows=frozenset(flagged),
            flag_rows=frozenset(flagged),
        )


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def _channel_counts(p: PeriodFigures) -> dict[str, int]:
    """The five channels in the usual order (信、访、网、电、传真), then any other."""
    return dict(Stated(p).channels)


def _sorted_desc(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))


def build(f: ReportFigures, lang: Lang) -> list[Block]:
    """The report's blocks, in order."""
    return _Writer(f, lang).build()
