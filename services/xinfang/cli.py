"""``xinfang``: the operators' command line.

    xinfang district load FILE      load or update a district (JSON)
    xinfang district sample         print the sample district (JSON)
    xinfang demo [--n N] [--lang zh|en]
                                    feed the sample district's petitions
                                    through the running services, print what came out
    xinfang summary DISTRICT PERIOD [--lang zh|en]
                                    a period's figures, with the district's names
    xinfang report DISTRICT PERIOD [--format docx|markdown|json] [--lang zh|en] [-o FILE]
                                    the district's report, written to out/ (or FILE)
    xinfang calendar show|template|load|withdraw|reevaluate ...
                                    the platform's working calendar (cli_calendar.py)
    xinfang rebuild [--district D] [--into PREFIX]
                                    replay the case log into reporting's read models
    xinfang import FILE [--district D] [--format csv|jsonl] [--rejects OUT.csv]
                                    register a batch of petitions, report rejected rows
    xinfang unrouted DISTRICT [--lang zh|en]
                                    cases no routing row matched, waiting to be routed by hand
    xinfang dead-letters list (--district D | --all-districts) [--service S] [--case C]
                              [--error-type T] [--since WHEN] [--state S] [--limit N] [--json]
    xinfang dead-letters replay (--district D | --all-districts)
                                (--id ID ... | [--service S] [--case C] ... | --all) [--dry-run]
                                    what consumers could not handle, and putting it back

User-facing text is Chinese by default; ``--lang en`` gives English.
A command that cannot go ahead (a wrong district or period, a missing key or
file, a service that does not answer) says why in one line on stderr and
exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from tqdm import tqdm

from xinfang import cli_calendar
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.cli_common import Refused, read_json
from xinfang.core import deadletters as dlq
from xinfang.core.auth import ROLES, Authenticator, Caller, tool_channel
from xinfang.core.calendar import SHANGHAI
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.districts import District
from xinfang.core.errors import XinfangError
from xinfang.core.mongo import connect
from xinfang.core.periods import parse_period
from xinfang.intake import bulk, history
from xinfang.intake.keys import reseal
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.rebuild import ServiceRunning, rebuild
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.demo import run as run_demo
from xinfang.sample.generator import sample_district
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

__all__ = ["main"]

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{name} {period} 信访情况汇总",
        "received": "受理来信来访总量",
        "people": "涉及人数",
        "by_channel": "按渠道",
        "by_category": "按类别（前八）",
        "by_township": "按乡镇（街道）（前八）",
        "kinds": "初信初访 {first} 件，重复信访 {repeat} 件，"
        "集体访 {group} 件，越级访 {escalated} 件",
        "routed": "已登记转送 {routed} 件",
        "by_unit": "按承办单位（前八）",
        "clocks": "登记转送时限（15日）：在办 {open} 件，已办结 {done} 件，"
        "其中按期 {ontime} 件，超期未办 {overdue} 件",
        "pieces": "件",
        "letter": "来信", "visit": "来访", "online": "网上信访", "phone": "来电", "fax": "传真",
        "accept": "受理", "forward": "转送", "decline": "不予受理",
        "out_litigation": "导入诉讼仲裁", "out_discipline": "转纪检监察",
    },
    "en": {
        "title": "{name}: petitions, {period}",
        "received": "Petitions received",
        "people": "People involved",
        "by_channel": "By channel",
        "by_category": "By category (top 8)",
        "by_township": "By township (top 8)",
        "kinds": "first {first}, repeat {repeat}, group {group}, escalated {escalated}",
        "routed": "Registered and routed: {routed}",
        "by_unit": "By handling unit (top 8)",
        "clocks": "Register-and-route clock (15 d): open {open}, completed {done} "
        "({ontime} on time), overdue {overdue}",
        "pieces": "",
        "letter": "letter", "visit": "visit", "online": "online", "phone": "phone", "fax": "fax",
        "accept": "accepted", "forward": "forwarded", "decline": "declined",
        "out_litigation": "to courts/arbitration", "out_discipline": "to discipline inspection",
    },
}  # fmt: skip


async def _load_district(settings: Settings, doc: dict[str, Any]) -> int:
    client = connect(settings.mongo_uri, "xinfang-cli")
    try:
        d = await Directory(client[f"{settings.mongo_db_prefix}_directory"]).put(doc)
        return d.version
    finally:
        await client.close()


async def submit_all(
    target: str,
    requests: Sequence[ipb.RegisterPetitionRequest],
    concurrency: int = 32,
    progress: bool = True,
    rate: float = 0,
    created_flags: list[bool] | None = None,
) -> tuple[int, list[float]]:
    """Register petitions over gRPC; returns (newly created, submit times).
    ``rate`` > 0 paces submissions (petitions per second) for latency runs."""
    created = 0
    times: list[float] = [0.0] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    bar = tqdm(total=len(requests), disable=not progress, unit="件", file=sys.stderr)
    t_start = time.perf_counter()
    async with tool_channel(target) as channel:
        stub = igrpc.IntakeServiceStub(channel)

        async def worker() -> None:
            nonlocal created
            while not queue.empty():
                i = queue.get_nowait()
                if rate:
                    await asyncio.sleep(max(0.0, t_start + i / rate - time.perf_counter()))
                times[i] = time.perf_counter()
                resp = await stub.RegisterPetition(requests[i], timeout=30)
                created += int(resp.created)
                if created_flags is not None:
                    created_flags[i] = resp.created
                bar.update(1)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    bar.close()
    return created, times


async def fetch_summary(target: str, district_id: str, period: str) -> rpb.DistrictSummary:
    async with tool_channel(target) as channel:
        stub = rgrpc.ReportingServiceStub(channel)
        resp: rpb.DistrictSummary = await stub.GetDistrictSummary(
            rpb.GetDistrictSummaryRequest(district_id=district_id, period=period), timeout=10
        )
        return resp


def prometheus_query(base_url: str, query: str) -> dict[str, float]:
    """Instant query; returns {district: value}. Empty when Prometheus is away."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
    except OSError:
        return {}
    return {
        res["metric"].get("district", ""): float(res["value"][1])
        for res in body.get("data", {}).get("result", [])
    }


def render_summary(
    s: rpb.DistrictSummary,
    district: dict[str, Any],
    lang: str,
    clocks: dict[str, float] | None = None,
) -> str:
    t = TEXT[lang]
    names: dict[str, str] = {c["code"]: c["name"] for c in district.get("categories", [])}
    names |= {x["id"]: x["name"] for x in district.get("townships", [])}
    names |= {u["id"]: u["name"] for u in district.get("units", [])}
    unit = t["pieces"]

    def top(m: Any, n: int = 8) -> list[str]:
        items = sorted(m.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [f"    {t.get(k, names.get(k, k))}: {v}{unit}" for k, v in items]

    out = [t["title"].format(name=district.get("name", s.district_id), period=s.period), ""]
    out.append(f"  {t['received']}: {s.received}{unit}    {t['people']}: {s.people}")
    out.append(
        "  "
        + t["kinds"].format(
            first=s.first_petitions,
            repeat=s.repeat_petitions,
            group=s.group_petitions,
            escalated=s.escalated_petitions,
        )
    )
    out += [f"  {t['by_channel']}:", *top(s.by_channel, 5)]
    out += [f"  {t['by_category']}:", *top(s.by_category)]
    out += [f"  {t['by_township']}:", *top(s.by_township)]
    routed = ", ".join(f"{t.get(k, k)} {v}" for k, v in sorted(s.by_decision.items()))
    out.append("  " + t["routed"].format(routed=s.routed) + (f" ({routed})" if routed else ""))
    out += [f"  {t['by_unit']}:", *top(s.by_unit)]
    if clocks:
        out.append("  " + t["clocks"].format(**{k: int(v) for k, v in clocks.items()}))
    return "\n".join(out)


async def _reevaluate(settings: Settings, district_id: str) -> spb.ReevaluateClocksResponse:
    async with tool_channel(f"{settings.grpc_host}:{settings.supervision_grpc}") as ch:
        r: spb.ReevaluateClocksResponse = await sgrpc.SupervisionServiceStub(ch).ReevaluateClocks(
            spb.ReevaluateClocksRequest(district_id=district_id), timeout=600
        )
        return r


_UNROUTED_TEXT = {
    "zh": ("{n} 件信访事项未匹配到分办规则，待人工分办：", "无待人工分办的信访事项。",
           "  {case}  {received}  {category} / {township}"),
    "en": ("{n} case(s) matched no routing rule and wait to be routed by hand:",
           "No case waits to be routed by hand.", "  {case}  {received}  {category} / {township}"),
}  # fmt: skip


async def _unrouted(settings: Settings, district_id: str, lang: str) -> int:
    """The office's list of cases to route by hand, with names, not codes."""
    head, none, line = _UNROUTED_TEXT[lang]
    async with tool_channel(f"{settings.grpc_host}:{settings.assignment_grpc}") as ch:
        try:
            res = await agrpc.AssignmentServiceStub(ch).ListUnroutedCases(
                apb.ListUnroutedCasesRequest(district_id=district_id), timeout=30
            )
        except grpc.aio.AioRpcError as e:
            print(f"xinfang unrouted: {e.details()} ({e.code().name})", file=sys.stderr)
            return 2
    client = connect(settings.mongo_uri, "xinfang-cli")
    try:
        names = await Directory(client[f"{settings.mongo_db_prefix}_directory"]).get(district_id)
    finally:
        await client.close()
    print(head.format(n=len(res.cases)) if res.cases else none)
    for c in res.cases:
        received = c.received_at.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI)
        print(
            line.format(
                case=c.case_id,
                received=received.strftime("%Y-%m-%d %H:%M"),
                category=names.categories.get(c.category, c.category),
                township=names.townships.get(c.township_id, c.township_id),
            )
        )
    return 0


def _rebuild(settings: Settings, district: str | None, into: str | None) -> int:
    try:
        res = asyncio.run(rebuild(settings, district, into))
    except ServiceRunning as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    print(
        f"rebuilt {district or 'all districts'}: {res.read} events read, {res.applied} applied, "
        f"{res.skipped} skipped, {res.seconds:.1f} s ({res.rate:.0f} events/s)"
    )
    return 0


async def _render(settings: Settings, a: argparse.Namespace) -> rpb.RenderedReport:
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        r: rpb.RenderedReport = await rgrpc.ReportingServiceStub(ch).RenderReport(
            rpb.RenderReportRequest(
                district_id=a.district_id, period=a.period, format=a.format, lang=a.lang
            ),
            timeout=120,
        )
        return r


def _report(settings: Settings, a: argparse.Namespace) -> int:
    r = asyncio.run(_render(settings, a))
    out = Path(a.output) if a.output else Path("out") / r.filename
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(r.content)
    print(TEXT[a.lang]["report"].format(path=out))
    return 0


def _names(d: District) -> dict[str, Any]:
    """The district's names in the shape ``render_summary`` reads."""
    return {
        "name": d.name,
        "categories": [{"code": k, "name": v} for k, v in d.categories.items()],
        "townships": [{"id": k, "name": v} for k, v in d.townships.items()],
        "units": [{"id": u.unit_id, "name": u.name} for u in d.units.values()],
    }


async def _summary(settings: Settings, district_id: str, period: str, lang: str) -> int:
    """A period's figures, with the township, unit and category names of the
    district (reporting answers in codes)."""
    client = connect(settings.mongo_uri, "xinfang-cli")
    try:
        district = await Directory(client[f"{settings.mongo_db_prefix}_directory"]).get(district_id)
    finally:
        await client.close()
    target = f"{settings.grpc_host}:{settings.reporting_grpc}"
    s = await fetch_summary(target, district_id, period)
    print(render_summary(s, _names(district), lang))
    return 0


def _period(value: str) -> str:
    try:
        return parse_period(value)
    except ValueError as e:
        raise Refused(f"period: {value!r}: {e}") from None


def _need_key(settings: Settings) -> None:
    if settings.auth_key is None:
        raise Refused(
            "XINFANG_AUTH_KEY is not set: the CLI signs its requests with it "
            "(local stack: export XINFANG_AUTH_KEY=$(cat .local/auth.key))"
        )


def _need_file(path: str) -> None:
    if not Path(path).is_file():
        raise Refused(f"{path}: no such file")


def _dl_filter(a: argparse.Namespace) -> dlq.Filter:
    if a.all_districts and a.district:
        raise Refused("name --district or --all-districts, not both")
    if not a.all_districts and not a.district:
        raise Refused(
            "name the district: --district D (the city-wide operator: --all-districts); "
            "a district's operators see only its dead letters"
        )
    try:
        since = dlq.parse_since(a.since) if a.since else None
    except ValueError as e:
        raise Refused(str(e)) from None
    return dlq.Filter(
        districts=None if a.all_districts else frozenset(a.district),
        service=a.service,
        case_id=a.case,
        error_type=a.error_type,
        since=since,
        state=getattr(a, "state", None),
    )


def _dl_row(dl: dlq.DeadLetter, parked: int | None) -> list[str]:
    error = f"{dl.error_type}: {dl.error}".replace("\n", " ")
    return [
        dl.id,
        dl.state,
        dl.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
        dl.service,
        dl.district_id or "-",
        dl.case_id or "-",
        dl.payload or "-",
        "-" if parked is None else str(parked),
        error if len(error) <= 80 else error[:79] + "…",
    ]


async def _dl_list(settings: Settings, a: argparse.Namespace) -> int:
    flt = _dl_filter(a)
    letters = await dlq.read_dead_letters(settings)
    matching = [dl for dl in letters if flt.matches(dl)]
    shown = matching[-a.limit :] if a.limit > 0 else matching
    parked = await dlq.parked_behind(settings, shown)
    if a.json:
        for dl in shown:
            print(json.dumps({**dl.summary(), "parked": parked.get(dl.id)}, ensure_ascii=False))
        return 0
    head = ["ID", "STATE", "AT (Asia/Shanghai)", "SERVICE", "DISTRICT", "CASE", "PAYLOAD",
            "PARKED", "ERROR"]  # fmt: skip
    rows = [head, *(_dl_row(dl, parked.get(dl.id)) for dl in shown)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    n_open = sum(dl.state == dlq.OPEN for dl in matching)
    print(f"{len(shown)} shown of {len(matching)} matching, {n_open} open")
    return 0


async def _dl_replay(settings: Settings, a: argparse.Namespace) -> int:
    flt = _dl_filter(a)
    if a.id and (flt.narrowed or a.all):
        raise Refused("--id names the dead letters to replay: drop the other filters and --all")
    if not a.id and not flt.narrowed and not a.all:
        raise Refused(
            "replaying by filter: narrow it (--service, --case, --error-type, --since) "
            "or say --all to replay every open dead letter of the district"
        )
    try:
        ids = [dlq.parse_id(i) for i in a.id or []]
    except ValueError as e:
        raise Refused(str(e)) from None
    letters = await dlq.read_dead_letters(settings)
    if ids:
        by_id = {dl.id: dl for dl in letters}
        for i in ids:
            if i not in by_id or not flt.visible(by_id[i]):
                where = "" if flt.districts is None else " of " + ", ".join(sorted(flt.districts))
                raise Refused(f"--id: no dead letter {i}{where} (ids are <partition>:<offset>)")
        chosen = [by_id[i] for i in dict.fromkeys(ids)]
    else:  # by filter: only what is still open
        chosen = [dl for dl in letters if flt.matches(dl) and dl.state == dlq.OPEN]
    plan, undecodable = dlq.plan_replay(chosen)
    for dl in undecodable:
        print(f"skipped {dl.id}: its bytes never decoded, there is no event to replay")
    if not plan:
        print("nothing to replay")
        return 0
    by_id = {dl.id: dl for dl in chosen}
    if a.dry_run:
        done = plan
    else:
        done = await dlq.replay(settings, chosen)
    for r in done:
        dl = by_id[r.dead_letters[0]]
        verb = f"replayed as {settings.case_events_topic}/{r.to}" if r.to else "would replay"
        print(
            f"{verb}: event {r.event_id} ({dl.payload}, case {dl.case_id}), "
            f"dead letters {', '.join(r.dead_letters)}"
        )
    n = sum(len(r.dead_letters) for r in done)
    print(f"{'would replay' if a.dry_run else 'replayed'} {len(done)} events ({n} dead letters)")
    return 0


def _dead_letters(settings: Settings, a: argparse.Namespace) -> int:
    run = _dl_list if a.dlcmd == "list" else _dl_replay
    # the client libraries' own complaints would repeat the one line below
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(run(settings, a))
    except Refused as e:
        print(f"dead-letters {a.dlcmd}: {e}", file=sys.stderr)
    except KafkaError as e:
        print(f"dead-letters {a.dlcmd}: Kafka at {settings.kafka_bootstrap}: {e}", file=sys.stderr)
    except PyMongoError as e:
        print(f"dead-letters {a.dlcmd}: store: {type(e).__name__}", file=sys.stderr)
    except (LookupError, TimeoutError, OSError) as e:
        print(f"dead-letters {a.dlcmd}: {e}", file=sys.stderr)
    return 2


def _dl_parser(sub: Any) -> None:
    dl = sub.add_parser("dead-letters", help="list and replay what consumers could not handle")
    dls = dl.add_subparsers(dest="dlcmd", required=True)
    ls = dls.add_parser("list", help="dead letters, their reason and state (open/replayed)")
    rp = dls.add_parser("replay", help="put dead-lettered events back for the consumers")
    for x in (ls, rp):
        x.add_argument("--district", action="append", default=[],
                       help="only this district's dead letters (repeat for several)")  # fmt: skip
        x.add_argument("--all-districts", action="store_true",
                       help="every district's, and undecodable bytes (city-wide)")  # fmt: skip
        x.add_argument("--service", choices=dlq.CONSUMERS, help="dead-lettered by this consumer")
        x.add_argument("--case", help="of this case id")
        x.add_argument("--error-type", help="with this error type (e.g. NotFound)")
        x.add_argument("--since", help="dead-lettered since: 30m, 12h, 7d, a date or a time")
    ls.add_argument("--state", choices=[dlq.OPEN, dlq.REPLAYED])
    ls.add_argument("--limit", type=int, default=50, help="the newest N (0: all; default 50)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    rp.add_argument("--id", nargs="+", action="extend", metavar="ID",
                    help="these dead letters (<partition>:<offset>), open or replayed")  # fmt: skip
    rp.add_argument("--all", action="store_true",
                    help="every open dead letter the district filter matches")  # fmt: skip
    rp.add_argument("--dry-run", action="store_true", help="say what would be replayed")


def _keys_parser(sub: Any) -> None:
    k = sub.add_parser("keys", help="petitioner-identity keys: re-seal after a rotation")
    ks = k.add_subparsers(dest="kcmd", required=True)
    rs = ks.add_parser("reseal", help="re-seal identities sealed with older key versions")
    rs.add_argument("--district", action="append", default=[],
                    help="only this district (repeat; default: all)")  # fmt: skip
    rs.add_argument("--dry-run", action="store_true",
                    help="count records by key version, change nothing")  # fmt: skip
    rs.add_argument("--lang", choices=["zh", "en"], default="zh")


def _keys(settings: Settings, a: argparse.Namespace) -> int:
    try:
        res = asyncio.run(reseal(settings, frozenset(a.district), dry_run=a.dry_run))
    except (RuntimeError, ValueError, LookupError) as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    except (KafkaError, PyMongoError) as e:  # safe to run again: it resumes by skipping
        print(f"stopped ({e.__class__.__name__}: {e}); run it again", file=sys.stderr)
        return 3
    versions = ", ".join(f"v{v}: {n}" for v, n in sorted(res.by_version.items())) or "-"
    if a.lang == "en":
        print(f"sealing version {res.seal_version}; {res.checked} identities checked, "
              f"{res.resealed} re-sealed, {res.left} still on older versions; by version: "
              f"{versions}; {res.seconds:.1f} s")  # fmt: skip
        if res.failed:
            print(f"{len(res.failed)} could not be opened (their key version is not in the "
                  f"ring), e.g. {', '.join(res.failed[:5])}", file=sys.stderr)  # fmt: skip
    else:
        print(f"加密密钥版本 {res.seal_version}；检查身份信息 {res.checked} 条，重新加密 "
              f"{res.resealed} 条，仍用旧版本 {res.left} 条；按版本：{versions}；"
              f"用时 {res.seconds:.1f} 秒")  # fmt: skip
        if res.failed:
            print(f"{len(res.failed)} 条无法解密（其密钥版本不在密钥环中），如 "
                  f"{', '.join(res.failed[:5])}", file=sys.stderr)  # fmt: skip
    return 1 if res.failed else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xinfang", description="信访 case-work platform CLI")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("district", help="district data").add_subparsers(dest="dcmd", required=True)
    dl = d.add_parser("load", help="load or update a district from a JSON file")
    dl.add_argument("file")
    ds = d.add_parser("sample", help="print the sample district")
    ds.add_argument("--seed", type=int, default=7)
    dm = sub.add_parser("demo", help="run the sample district through the running services")
    dm.add_argument("--n", type=int, default=600, help="petitions a year (default 600)")
    dm.add_argument("--seed", type=int, default=7)
    dm.add_argument("--lang", choices=["zh", "en"], default="zh")
    dm.add_argument("--timeout", type=float, default=300)
    sm = sub.add_parser("summary", help="a district's figures for a period")
    sm.add_argument("district_id")
    sm.add_argument("period", help="YYYY, YYYY-Qn or YYYY-MM")
    sm.add_argument("--lang", choices=["zh", "en"], default="zh")
    rb = sub.add_parser("rebuild", help="rebuild reporting's read models from the case log")
    rb.add_argument("--district", help="only this district (default: all)")
    rb.add_argument("--into", metavar="PREFIX", help="into a fresh database prefix, live")
    rp = sub.add_parser("report", help="render a district's report for a period")
    rp.add_argument("district_id")
    rp.add_argument("period", help="YYYY, YYYY-Qn or YYYY-MM")
    rp.add_argument("--format", choices=["docx", "markdown", "json"], default="docx")
    rp.add_argument("--lang", choices=["zh", "en"], default="zh")
    rp.add_argument("-o", "--output", help="file to write (default: out/<suggested name>)")
    im = sub.add_parser(
        "import",
        help="register a batch of petitions from CSV or JSON lines, or import whole case "
        "histories (JSON lines with registration and steps) from the system used before",
    )
    im.add_argument("file")
    im.add_argument("--district", help="district of rows that do not name one")
    im.add_argument("--format", choices=["csv", "jsonl"], help="default: from the extension")
    im.add_argument("--concurrency", type=int, default=16)
    im.add_argument("--rejects", help="write rejected rows (line, reason) to this CSV")
    im.add_argument("--lang", choices=["zh", "en"], default="zh")
    ur = sub.add_parser("unrouted", help="cases waiting for the office to route them by hand")
    ur.add_argument("district_id")
    ur.add_argument("--lang", choices=["zh", "en"], default="zh")
    tk = sub.add_parser("token", help="issue a bearer token for a user (needs XINFANG_AUTH_KEY)")
    tk.add_argument("user_id")
    tk.add_argument("--role", choices=sorted(ROLES), required=True)
    tk.add_argument("--district", action="append", required=True,
                    help="a district the user works for (repeat; * for city-wide)")  # fmt: skip
    tk.add_argument("--unit", default="", help="the user's unit (role unit)")
    tk.add_argument("--hours", type=float, default=8.0, help="lifetime (default: a working day)")
    _dl_parser(sub)
    _keys_parser(sub)
    cli_calendar.add_parser(sub, _os_user())
    return p


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without passwd entry)
        return "operator"


# commands that sign gRPC requests, and so need XINFANG_AUTH_KEY
_SIGNED = {"token", "demo", "summary", "report", "import", "unrouted", "district", "calendar"}


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    sub_cmd = getattr(a, "dcmd", None) or getattr(a, "calcmd", None) or getattr(a, "dlcmd", None)
    where = " ".join(x for x in (a.cmd, sub_cmd) if x)
    try:
        return _run(p, a)
    except Refused as e:
        print(f"xinfang {where}: {e}", file=sys.stderr)
    except XinfangError as e:  # refused here, before anything was sent
        print(f"xinfang {where}: {e.message}", file=sys.stderr)
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            why = "a service does not answer: is it up? (scripts/services.sh status)"
        else:
            why = (e.details() or "").splitlines()[0] if e.details() else ""
        print(f"xinfang {where}: {why} ({e.code().name})", file=sys.stderr)
    except ValidationError as e:
        err = e.errors()[0]
        name = "XINFANG_" + "_".join(str(x) for x in err["loc"]).upper()
        msg = str(err["msg"]).removeprefix("Value error, ")
        print(f"xinfang {where}: {name}: {msg}", file=sys.stderr)
    except PyMongoError as e:
        print(f"xinfang {where}: the store does not answer ({type(e).__name__}): is it up? "
              "(scripts/stack.sh status)", file=sys.stderr)  # fmt: skip
    except KafkaError as e:
        print(f"xinfang {where}: Kafka: {e}", file=sys.stderr)
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        print(f"xinfang {where}: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 2


def _run(p: argparse.ArgumentParser, a: argparse.Namespace) -> int:
    settings = Settings()
    # what is checkable here is checked before anything is sent
    if getattr(a, "period", None) and a.cmd in ("summary", "report"):
        a.period = _period(a.period)
    if getattr(a, "file", None) and a.cmd in ("import", "district", "calendar"):
        _need_file(a.file)
    offline = (getattr(a, "dcmd", None) == "sample"
               or getattr(a, "calcmd", None) in ("show", "template"))  # fmt: skip
    if a.cmd in _SIGNED and not offline:
        _need_key(settings)
    if a.cmd == "token":
        if a.role == "unit" and not a.unit:
            p.error("--unit is required for role unit")
        caller = Caller(a.user_id, a.role, a.unit, frozenset(a.district))
        print(Authenticator(settings.auth_key_bytes).issue(caller, ttl_s=a.hours * 3600))
        return 0
    if a.cmd == "district" and a.dcmd == "sample":
        print(json.dumps(sample_district(a.seed), ensure_ascii=False, indent=2))
        return 0
    if a.cmd == "district" and a.dcmd == "load":
        doc = read_json(a.file)
        version = asyncio.run(_load_district(settings, doc))
        print(f"{doc['district_id']}: version {version}")
        # limits or calendar may have changed: open clocks follow
        try:
            moved = asyncio.run(_reevaluate(settings, doc["district_id"]))
            print(f"open clocks re-evaluated: {moved.open_clocks}, moved: {moved.moved}, "
                  f"still estimated: {moved.estimated}")  # fmt: skip
        except grpc.aio.AioRpcError as e:
            print(f"clocks not re-evaluated (supervision: {e.code().name}); "
                  "run it again when supervision is up", file=sys.stderr)  # fmt: skip
            return 1  # stored; the open clocks wait for a re-evaluation
        return 0
    if a.cmd == "calendar":
        return asyncio.run(cli_calendar.run(settings, a))
    if a.cmd == "demo":
        return asyncio.run(run_demo(settings, a.n, a.seed, a.lang, a.timeout, render_summary))
    if a.cmd == "summary":
        return asyncio.run(_summary(settings, a.district_id, a.period, a.lang))
    if a.cmd == "unrouted":
        return asyncio.run(_unrouted(settings, a.district_id, a.lang))
    if a.cmd == "dead-letters":
        return _dead_letters(settings, a)
    if a.cmd == "rebuild":
        return _rebuild(settings, a.district, a.into)
    if a.cmd == "keys":
        return _keys(settings, a)
    if a.cmd == "report":
        return _report(settings, a)
    if a.cmd == "import":
        if history.is_history_file(a.file, a.format):
            return history.run_import(
                a.file,
                intake_target=f"{settings.grpc_host}:{settings.intake_grpc}",
                assignment_target=f"{settings.grpc_host}:{settings.assignment_grpc}",
                district_id=a.district,
                concurrency=a.concurrency,
                rejects=a.rejects,
                lang=a.lang,
            )
        return bulk.run_import(
            a.file,
            target=f"{settings.grpc_host}:{settings.intake_grpc}",
            district_id=a.district,
            fmt=a.format,
            concurrency=a.concurrency,
            rejects=a.rejects,
            lang=a.lang,
        )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
