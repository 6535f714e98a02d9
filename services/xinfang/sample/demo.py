"""``xinfang demo``: two years of the sample district, run through the
running services as its office would have worked them, then its figures.

The petitions are the generator's (``sample.generator``); what the office and
units did with each is planned by ``sample.office``, every step with the
moment it happened. The steps are real commands, issued for many cases at
once (each case's own steps in order), and the run waits for the consumers
by their lag on the case-events topic rather than by sleeping.

A second run against the same data registers nothing new (the request ids are
the seed's) and takes no step again: it prints the figures as they stand.
``scripts/stack.sh reset`` starts over.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import tool_channel
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import to_timestamp
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import connect
from xinfang.intake import bulk
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district
from xinfang.sample.office import OFFICE, CasePlan, Step, plan_office

__all__ = ["TEXT", "request_for", "run", "span"]

# the load drifts down a tenth a year, so the years have a trend to compare
YEARLY_CHANGE = -0.1
CONCURRENCY = 24
CONSUMERS = ("assignment", "supervision", "reporting")
# The sample district's story: it moved onto xinfang today. What happened
# until CUTOVER_DAYS ago comes with each case's history from its earlier
# ledger; the steps since were kept on paper and are entered late (补录),
# inside the district's late-entry window.
CUTOVER_DAYS = 20
LEDGER = "demo-ledger"
LATE_REASON = "据纸质台账补录"
# what a step the case's state does not allow is answered with
_REFUSED = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "span": "示范区（{district}）{start} 至 {end} 的信访事项：{n} 件（每年约 {per_year} 件）",
        "submitted": "登记 {n} 件（新登记 {created} 件），耗时 {secs:.1f} 秒",
        "reused": "这些信访事项已在库中，沿用已有数据（重新开始：scripts/stack.sh reset）",
        "waiting": "等待各服务处理完毕……",
        "imported": "  {cutover} 前的办理经过随案导入（原台账）：{steps} 步（{kinds}）",
        "live": "  {cutover} 以来的办理逐步补录（注明实际发生时间）：{steps} 步（{kinds}）",
        "handled": "办理 {cases} 件，耗时 {secs:.1f} 秒",
        "late": "其中 {late} 件按计划逾期（书面告知或答复晚于时限）；仍在办的超期事项由督办跟进",
        "caught_up": "各服务处理完毕，耗时 {secs:.1f} 秒",
        "done": "演示数据就绪，共耗时 {secs:.1f} 秒",
        "refused": "{n} 个步骤被拒绝（示例：{example}）",
        "compare": "  同比（{ly}）：受理 {ly_received} 件 → {received} 件；"
        "环比（{prev}）：受理 {prev_received} 件",
        "no_compare": "  无可比数据",
        "ind": "  三降一好转：信访总量{r}，集体访{g}，越级访{e}，存量{b}",
        "down": "下降", "up": "未降", "na": "无可比数据",
        "orders": "  按期答复 {ontime}/{replied} 件，预警 {warnings} 次，超期 {breaches} 次，"
        "督办 {orders} 件",
        "report": "报告已生成：{path}",
        "notice": "书面告知时限（15日）：在办 {open} 件，已办结 {done} 件，其中按期 {ontime} 件，"
        "超期未办 {overdue} 件",
        "clocks": "登记转送时限（15日）：在办 {open} 件，已办结 {done} 件，"
        "其中按期 {ontime} 件，超期未办 {overdue} 件",
        "notice_sent": "书面告知", "accepted": "受理", "replied": "答复", "escalated": "提级",
        "extended": "延期", "rated": "评价", "review": "复查", "backflow": "倒流",
        "objected": "异议", "routed": "转送",
    },
    "en": {
        "span": "The sample district ({district}), {start} to {end}: {n} petitions "
        "(about {per_year} a year)",
        "submitted": "Registered {n} petitions ({created} new) in {secs:.1f} s",
        "reused": "These petitions are in the store already: the data is reused "
        "(to start over: scripts/stack.sh reset)",
        "waiting": "Waiting for the services to catch up...",
        "imported": "  before {cutover}, imported with each case's history (the earlier "
        "ledger): {steps} steps ({kinds})",
        "live": "  since {cutover}, entered late one by one with when they happened: "
        "{steps} steps ({kinds})",
        "handled": "Handled {cases} cases in {secs:.1f} s",
        "late": "{late} of them were drawn to run late (notice or reply after its time); "
        "those still open are supervised",
        "caught_up": "The services caught up in {secs:.1f} s",
        "done": "Demo data ready in {secs:.1f} s",
        "refused": "{n} steps were refused (e.g. {example})",
        "compare": "  Year on year ({ly}): received {ly_received} -> {received}; "
        "period on period ({prev}): received {prev_received}",
        "no_compare": "  Nothing to compare with",
        "ind": "  Three declines, one improvement: petitions {r}, group {g}, escalated {e}, "
        "backlog {b}",
        "down": "down", "up": "not down", "na": "no comparison",
        "orders": "  Replied on time {ontime}/{replied}, warnings {warnings}, breaches "
        "{breaches}, supervision orders {orders}",
        "report": "Report written: {path}",
        "notice": "Written notice clock (15 d): open {open}, completed {done} ({ontime} on "
        "time), overdue {overdue}",
        "clocks": "Register-and-route clock (15 d): open {open}, completed {done} "
        "({ontime} on time), overdue {overdue}",
        "notice_sent": "notice", "accepted": "accept", "replied": "reply",
        "escalated": "escalate", "extended": "extend", "rated": "rate", "review": "review",
        "backflow": "backflow", "objected": "object", "routed": "route",
    },
}  # fmt: skip


def span(today: date) -> tuple[date, date]:
    """The demo's two years: all of last year and this year up to yesterday."""
    return date(today.year - 1, 1, 1), max(date(today.year, 1, 1), today - timedelta(days=1))


def volume(per_year: int, start: date, end: date) -> int:
    """Petitions over the span at ``per_year`` in its first year, drifting by
    ``YEARLY_CHANGE``."""
    days = (end - start).days + 1
    years = days / 365.25
    if not YEARLY_CHANGE:
        return round(per_year * years)
    g = 1 + YEARLY_CHANGE
    # the integral of per_year * g**t over t in [0, years]
    return round(per_year * (math.pow(g, years) - 1) / math.log(g))


# ---- one step as a gRPC request -----------------------------------------------------


@dataclass(frozen=True)
class _Call:
    rpc: str  # the AssignmentService method
    field: str  # the step's field in an imported history (``HistoryStep``)
    name: str  # what the step is called in the counts
    request: Message


def request_for(step: Step, ctx: apb.CommandContext) -> _Call:
    """The command request a planned step is issued as, with ``ctx``."""
    c = step.command
    match c:
        case lc.RouteCase():
            return _Call("RouteCase", "route", "routed", apb.RouteCaseRequest(
                ctx=ctx, decision=c.decision, unit_id=c.unit_id, reason=c.reason))  # type: ignore[arg-type]  # fmt: skip
        case lc.SendNotice():
            return _Call("SendNotice", "notice", "notice_sent", apb.SendNoticeRequest(ctx=ctx))
        case lc.AcceptCase():
            return _Call("AcceptCase", "accept", "accepted", apb.AcceptCaseRequest(ctx=ctx))
        case lc.ObjectRemit():
            return _Call("ObjectRemit", "object_remit", "objected",
                         apb.ObjectRemitRequest(ctx=ctx, reason=c.reason))  # fmt: skip
        case lc.Escalate():
            return _Call("Escalate", "escalate", "escalated",
                         apb.EscalateRequest(ctx=ctx, reason=c.reason))  # fmt: skip
        case lc.ExtendHandling():
            return _Call("ExtendHandling", "extend", "extended", apb.ExtendHandlingRequest(
                ctx=ctx, days=c.days, approver_id=c.approver_id, reason=c.reason))  # fmt: skip
        case lc.Reply():
            return _Call(
                "Reply", "reply", "replied", apb.ReplyRequest(ctx=ctx, resolved=c.resolved)
            )
        case lc.RateSatisfaction():
            return _Call("RateSatisfaction", "rate", "rated", apb.RateSatisfactionRequest(
                ctx=ctx, rating=c.rating))  # type: ignore[arg-type]  # fmt: skip
        case lc.RequestReview():
            return _Call("RequestReview", "review", "review", apb.RequestReviewRequest(
                ctx=ctx, rereview=c.rereview))  # fmt: skip
        case lc.DecideReview():
            return _Call("DecideReview", "decide_review", "review", apb.DecideReviewRequest(
                ctx=ctx, rereview=c.rereview, upheld=c.upheld))  # fmt: skip
        case lc.ReopenBackflow():
            return _Call("ReopenBackflow", "backflow", "backflow", apb.ReopenBackflowRequest(
                ctx=ctx, reason=c.reason))  # fmt: skip
    raise ValueError(f"the office does not plan {type(c).__name__}")


def history_request(
    plan: CasePlan, steps: Sequence[Step], district_id: str
) -> tuple[apb.ImportHistoryRequest, Counter[str]]:
    """The steps a case took before the cutover, as one imported history."""
    req = apb.ImportHistoryRequest(
        ctx=apb.CommandContext(
            district_id=district_id,
            case_id=plan.case_id,
            actor=ev.Actor(user_id=OFFICE, role="office"),
        ),
        source=source_of(plan),
    )
    names: Counter[str] = Counter()
    for step in steps:
        call = request_for(step, apb.CommandContext(occurred_at=to_timestamp(step.at)))
        getattr(req.steps.add(), call.field).CopyFrom(call.request)
        names[call.name] += 1
    return req, names


def source_of(plan: CasePlan) -> str:
    """The case's number in the sample district's earlier ledger."""
    return f"{LEDGER}:{plan.case_id}"


# ---- the run ------------------------------------------------------------------------


@dataclass
class _Handled:
    imported: Counter[str]  # steps recorded with the imported histories
    live: Counter[str]  # steps entered one by one, late (补录)
    refused: list[str]
    late: int


async def _handle(
    settings: Settings, district_id: str, plans: Sequence[CasePlan], cutover: datetime
) -> _Handled:
    """Every plan's steps, many cases at once, each case's in order: what
    happened before ``cutover`` as the case's imported history (one call),
    what happened since one command at a time, each with when it happened.
    A step the service refuses ends that case's plan (and is counted); it
    does not end the demo."""
    done = _Handled(Counter(), Counter(), [], sum(p.late for p in plans))
    queue = list(reversed(plans))
    async with tool_channel(f"{settings.grpc_host}:{settings.assignment_grpc}") as ch:
        stub = agrpc.AssignmentServiceStub(ch)

        async def one(plan: CasePlan) -> None:
            before = [s for s in plan.steps if s.at < cutover]
            if before:
                req, names = history_request(plan, before, district_id)
                await stub.ImportHistory(req, timeout=30)
                done.imported.update(names)
            for step in plan.steps[len(before) :]:
                ctx = apb.CommandContext(
                    district_id=district_id,
                    case_id=plan.case_id,
                    actor=step.actor(),
                    occurred_at=to_timestamp(step.at),
                    late_reason=LATE_REASON,
                )
                call = request_for(step, ctx)
                await getattr(stub, call.rpc)(call.request, timeout=30)
                done.live[call.name] += 1

        async def worker() -> None:
            while queue:
                plan = queue.pop()
                try:
                    await one(plan)
                except grpc.aio.AioRpcError as e:
                    if e.code() not in _REFUSED:
                        raise
                    done.refused.append(f"{plan.case_id}: {e.details()}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done


async def _lag(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, topic: str,
               partitions: int, services: Sequence[str]) -> int:  # fmt: skip
    """Events on the case-events topic the services have not committed yet."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    end = await consumer.end_offsets(tps)
    behind = 0
    for service in services:
        offsets = await admin.list_consumer_group_offsets(f"xinfang-{service}", partitions=tps)
        for tp in tps:
            meta = offsets.get(tp)
            behind += end[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return behind


async def wait_caught_up(
    settings: Settings,
    timeout_s: float,
    settle_s: float = 0.0,
    services: Sequence[str] = CONSUMERS,
) -> bool:
    """Until every consumer has committed every event on the case-events topic
    (and, with ``settle_s``, stayed so that long: the scanner's breaches and
    the routing a registration causes are events too)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    try:
        while time.monotonic() < deadline:
            behind = await _lag(
                admin, consumer, settings.case_events_topic, settings.partitions, services
            )
            if behind == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return True
            else:
                quiet_since = None
            await asyncio.sleep(0.25)
        return False
    finally:
        await consumer.stop()
        await admin.close()


async def _figures(
    settings: Settings, district_id: str, period: str
) -> tuple[rpb.DistrictSummary, rpb.PeriodReport]:
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        stub = rgrpc.ReportingServiceStub(ch)
        summary: rpb.DistrictSummary = await stub.GetDistrictSummary(
            rpb.GetDistrictSummaryRequest(district_id=district_id, period=period), timeout=10
        )
        report: rpb.PeriodReport = await stub.GetPeriodReport(
            rpb.GetPeriodReportRequest(district_id=district_id, period=period), timeout=10
        )
        return summary, report


def _prometheus(base_url: str, query: str) -> float | None:
    """An instant query's one value; None when there is none (or no Prometheus)."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.load(r).get("data", {}).get("result", [])
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


async def fresh_clocks(
    settings: Settings, district_id: str, since: float, timeout_s: float
) -> None:
    """Until Prometheus holds supervision's clock figures as they were after
    ``since`` (wall time): a scrape at least one metrics refresh later."""
    query = f'min(timestamp(xinfang_clocks_open{{district="{district_id}"}}))'
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at = await asyncio.to_thread(_prometheus, settings.prometheus_url, query)
        if at is not None and at >= since + settings.metrics_refresh_seconds:
            return
        await asyncio.sleep(0.5)


def _clock_figures(settings: Settings, district_id: str, clock: str) -> dict[str, int]:
    sel = f'{{district="{district_id}",clock="{clock}"}}'
    return {
        key: int(_prometheus(settings.prometheus_url, f"max({metric}{sel})") or 0)
        for key, metric in (
            ("open", "xinfang_clocks_open"),
            ("done", "xinfang_clocks_completed"),
            ("ontime", "xinfang_clocks_completed_on_time"),
            ("overdue", "xinfang_clocks_overdue"),
        )
    }


def _comparison(rep: rpb.PeriodReport, lang: str) -> list[str]:
    t = TEXT[lang]
    out: list[str] = []
    if rep.HasField("last_year") or rep.HasField("previous"):
        out.append(t["compare"].format(
            ly=rep.last_year.period or "-", ly_received=rep.last_year.received,
            received=rep.current.received, prev=rep.previous.period or "-",
            prev_received=rep.previous.received))  # fmt: skip
    else:
        out.append(t["no_compare"])
    ind = rep.indicators

    def word(name: str) -> str:
        if not ind.HasField(name):  # type: ignore[arg-type]
            return t["na"]
        return t["down"] if getattr(ind, name) else t["up"]

    out.append(t["ind"].format(r=word("received_down"), g=word("group_down"),
                               e=word("escalated_down"), b=word("backlog_down")))  # fmt: skip
    c = rep.current
    out.append(t["orders"].format(ontime=c.replied_on_time, replied=c.replied,
                                  warnings=c.warnings, breaches=c.breaches,
                                  orders=c.supervision_orders))  # fmt: skip
    return out


async def _load_district(settings: Settings, doc: dict[str, Any]) -> None:
    client = connect(settings.mongo_uri, "xinfang-demo")
    try:
        await Directory(client[f"{settings.mongo_db_prefix}_directory"]).put(doc)
    finally:
        await client.close()


async def _write_report(
    settings: Settings, district_id: str, period: str, lang: str, out_dir: Path
) -> list[Path]:
    """The district's report for the period, as .docx and Markdown, in ``out_dir``."""
    await asyncio.to_thread(out_dir.mkdir, exist_ok=True)
    paths: list[Path] = []
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        stub = rgrpc.ReportingServiceStub(ch)
        for fmt in ("docx", "markdown"):
            r = await stub.RenderReport(
                rpb.RenderReportRequest(district_id=district_id, period=period, format=fmt,
                                        lang=lang),
                timeout=120,
            )  # fmt: skip
            await asyncio.to_thread((out_dir / r.filename).write_bytes, r.content)
            paths.append(out_dir / r.filename)
    return paths


async def run(
    settings: Settings,
    per_year: int,
    seed: int,
    lang: str,
    timeout_s: float,
    render_summary: Callable[..., str],
    *,
    district_id: str = "demo-district",
    out_dir: Path = Path("out"),
) -> int:
    """The demo; ``render_summary`` is the CLI's summary (``xinfang summary``)."""
    t = TEXT[lang]
    t0 = time.perf_counter()
    district_doc = sample_district(seed, district_id)
    did = district_doc["district_id"]
    await _load_district(settings, district_doc)
    now = datetime.now(UTC)
    start, end = span(now.astimezone(SHANGHAI).date())
    n = volume(per_year, start, end)
    reqs = list(petitions(district_doc, n, seed=seed, start=start, end=end,
                          yearly_change=YEARLY_CHANGE))  # fmt: skip
    print(t["span"].format(district=did, start=start, end=end, n=n, per_year=per_year))
    client = connect(settings.mongo_uri, "xinfang-demo")
    try:
        district = await Directory(client[f"{settings.mongo_db_prefix}_directory"]).get(did)
    finally:
        await client.close()
    plans = list(plan_office(district, reqs, seed=seed, now=now))
    for req, plan in zip(reqs, plans, strict=True):
        # registered from the ledger: assignment leaves the routing to its steps
        req.history_source = source_of(plan)

    t_reg = time.perf_counter()
    # each petitioner's petitions in the order they came, as the plans count them
    got = await bulk.import_rows(
        f"{settings.grpc_host}:{settings.intake_grpc}",
        [bulk.RowResult(line=i + 1, request=r) for i, r in enumerate(reqs)],
        concurrency=CONCURRENCY,
    )
    if got.rejected:
        row, reason = got.rejected[0]
        print(f"intake refused {len(got.rejected)} petitions (#{row}: {reason})", file=sys.stderr)
        return 1
    print(t["submitted"].format(n=n, created=got.created, secs=time.perf_counter() - t_reg))
    # a run that registered nothing new takes no step again: the data is reused
    new = plans if got.created else []
    deadline = time.monotonic() + timeout_s
    print(t["waiting"], flush=True)
    if new:
        # a history goes onto the case assignment recorded: wait until it has
        if not await wait_caught_up(settings, deadline - time.monotonic(), services=CONSUMERS[:1]):
            print("timeout: the services did not catch up", file=sys.stderr)
            return 1
        t_h = time.perf_counter()
        cutover = now - timedelta(days=min(CUTOVER_DAYS, district.late_entry_days - 1))
        done = await _handle(settings, did, new, cutover)
        sep = "、" if lang == "zh" else ", "
        for key, steps in (("imported", done.imported), ("live", done.live)):
            kinds = sep.join(f"{t.get(k, k)} {v}" for k, v in steps.most_common())
            print(t[key].format(steps=sum(steps.values()), kinds=kinds,
                                cutover=cutover.astimezone(SHANGHAI).date()))  # fmt: skip
        print(t["handled"].format(cases=len(new), secs=time.perf_counter() - t_h))
        print(t["late"].format(late=done.late))
        if done.refused:
            print(t["refused"].format(n=len(done.refused), example=done.refused[0]))
    else:
        print(t["reused"])
    t_w = time.perf_counter()
    # the scanner's supervision (its breaches are events too) follows its next pass
    settle = settings.scan_seconds + 1 if new else 0.0
    if not await wait_caught_up(settings, max(1.0, deadline - time.monotonic()), settle):
        print("timeout: the services did not catch up", file=sys.stderr)
        return 1
    print(t["caught_up"].format(secs=time.perf_counter() - t_w))
    period = str(end.year)
    # the figures, the report and a scrape of the clocks as they are now, side by side
    _, (summary, rep), paths = await asyncio.gather(
        fresh_clocks(settings, did, time.time(), 15),
        _figures(settings, did, period),
        _write_report(settings, did, period, lang, out_dir),
    )
    print(t["done"].format(secs=time.perf_counter() - t0))
    print()
    print(
        render_summary(
            summary, district_doc, lang, _clock_figures(settings, did, "register_and_route")
        )
    )
    print("  " + t["notice"].format(**_clock_figures(settings, did, "written_notice")))
    for line in _comparison(rep, lang):
        print(line)
    for path in paths:
        print(t["report"].format(path=path))
    return 0
