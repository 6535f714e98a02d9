"""Pushes petitions through the running services and prints the figures.

Run through scripts/bench.sh, which starts a fresh stack for it. In order:

* a warm-up of ``--warmup`` cases through the whole pipeline, in a district
  of its own, timed and printed but not counted: a freshly started broker
  spends its first minute compiling its hot paths (the JIT used 5 of the
  broker's 11 CPU-seconds in a burst of 3,000 cases on a fresh stack), and
  the services open their connection pools. A deployed stack runs warm;
* a burst of ``--n`` cases as fast as intake takes them: cases/s end to end
  (first submit to last case routed in reporting's read model), and store
  calls per case by service, from each service's own
  ``xinfang_store_calls_total`` on /metrics, read before the burst and after
  every consumer has handled every event of it;
* a steady phase of ``--steady-n`` cases offered at ``--steady-rate``/s:
  p50/p99/max from submit until the case's routing is visible in reporting;
* peak RSS per process; the rebuild of reporting by replay (events/s); the
  report rendered;
* Kafka's own ProducerPerformance and ConsumerPerformance on a scratch
  topic, records of the pipeline's mean event size, after a warm-up run, so
  the JVMs' start and the broker's first segments are not what is measured.

The figures go to the results file (``$XINFANG_BENCH_RESULTS``) that
bench.sh's summary reads; ``--summary`` prints that summary.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from bench_common import (
    SERVICES,
    calls_by_op,
    calls_per_case,
    load_results,
    pct,
    save_section,
    scrape,
    summary,
)
from bench_store import replay_traces
from xinfang.cli import fetch_summary, submit_all
from xinfang.core.auth import tool_channel
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.kafka import read_to_end
from xinfang.core.mongo import connect
from xinfang.intake.domain import case_id_for
from xinfang.reporting.rebuild import rebuild
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district

CONSUMERS = ("assignment", "supervision", "reporting")
QUIET_WAIT_S = 1800  # bound on waiting for consumers and relays to finish
STALL_S = 120  # ... and on waiting for a consumer that has stopped moving


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def machine_cpu() -> dict[str, float]:
    """The machine's CPU time so far by kind, in seconds summed over its
    cores (/proc/stat): steal is time the hypervisor gave to someone else,
    which no process here can account for."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    ticks = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    return {k: int(v) / TICK for k, v in zip(names, ticks, strict=True)}


REPLAY_CPU = ("ferretdb", "bench client", "machine idle", "machine steal", "machine total")


def cpu_snapshot(data_dir: Path) -> dict[str, float]:
    """CPU seconds of every process of the stack, this script and the machine."""
    out = {name: cpu_seconds(pid) for name, pid in pids(data_dir).items()}
    t = os.times()
    out["bench client"] = t.user + t.system
    m = machine_cpu()
    out["machine idle"] = m["idle"] + m["iowait"]
    out["machine steal"] = m["steal"]
    out["machine total"] = sum(m.values())
    return out


def pids(data_dir: Path) -> dict[str, int]:
    out = {}
    for name in SERVICES:
        out[name] = int((data_dir / f"svc-{name}.pid").read_text())
    for name in ("kafka", "ferretdb", "prometheus"):
        out[name] = int((data_dir / f"{name}.pid").read_text())
    return out


async def render_report(settings: Settings, district_id: str, period: str, fmt: str) -> bytes:
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        r = await rgrpc.ReportingServiceStub(ch).RenderReport(
            rpb.RenderReportRequest(district_id=district_id, period=period, format=fmt),
            timeout=300,
        )
        return bytes(r.content)


# ---- /metrics ------------------------------------------------------------------------


async def scrape_all(settings: Settings) -> dict[str, str]:
    """Every service's /metrics text (the GETs run off the event loop)."""
    texts = await asyncio.gather(
        *(asyncio.to_thread(scrape, settings.grpc_host, settings.ports(s)[1]) for s in SERVICES)
    )
    return dict(zip(SERVICES, texts, strict=True))


def consumed(text: str) -> float:
    """Events a consumer finished (any outcome), from its /metrics."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("xinfang_consumer_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def topic_records(settings: Settings) -> tuple[int, float]:
    """(records, mean value size in bytes) on the case-events topic: the
    pipeline's own events, read back, so the broker's ceiling is measured
    with records of their size."""
    n = size = 0
    async for records in read_to_end(
        settings, settings.case_events_topic, "xinfang-bench", max_poll_records=5000, timeout_s=300
    ):
        n += len(records)
        size += sum(len(r.value or b"") for r in records)
    return n, (size / n if n else float("nan"))


async def wait_quiet(settings: Settings, client: Any) -> tuple[float, bool]:
    """Wait until every consumer has handled every record on the case-events
    topic and no outbox holds unpublished events; returns (seconds waited,
    whether it got there). Store calls counted after this include
    everything the cases caused. Gives up after QUIET_WAIT_S, or sooner
    when no consumer has moved for STALL_S (a stalled service is reported,
    not waited for)."""
    t0 = time.perf_counter()
    dbs = [client[settings.db_name(s)] for s in ("intake", "assignment", "supervision")]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    tps = [TopicPartition(settings.case_events_topic, p) for p in range(settings.partitions)]

    async def records() -> int:
        end = await consumer.end_offsets(tps)
        begin = await consumer.beginning_offsets(tps)
        return sum(end[tp] - begin[tp] for tp in tps)

    last: dict[str, float] = {}
    moved_at = time.perf_counter()
    why = f"the pipeline was still busy after {QUIET_WAIT_S} s"
    try:
        while time.perf_counter() - t0 < QUIET_WAIT_S:
            n = await records()
            texts = await scrape_all(settings)
            done = {s: consumed(texts[s]) for s in CONSUMERS}
            if all(v >= n for v in done.values()):
                left = [await db["outbox_pointers"].find_one({}) for db in dbs]
                if all(x is None for x in left) and await records() == n:
                    return time.perf_counter() - t0, True
            behind = ", ".join(f"{s} {v:,.0f}" for s, v in done.items() if v < n)
            if done != last:
                last, moved_at = done, time.perf_counter()
            elif behind and time.perf_counter() - moved_at > STALL_S:
                why = f"no consumer moved for {STALL_S} s; of {n:,} events: {behind}"
                break
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    print(f"warning: {why}", file=sys.stderr)
    return time.perf_counter() - t0, False


# ---- one phase: submit, wait until visible, latencies ------------------------------------


@dataclass
class Phase:
    district_id: str
    n: int
    submit_s: float
    visible_s: float
    latencies: list[float]


async def run_phase(
    settings: Settings,
    client: Any,
    label: str,
    n: int,
    concurrency: int,
    seed: int,
    rate: float,
    started: Callable[[], None] | None = None,
    visible: Callable[[], None] | None = None,
) -> Phase:
    """N petitions of a district of their own, submitted at ``rate``/s (0: as
    fast as intake takes them), timed until reporting shows all N routed."""
    district = sample_district(seed, district_id=f"bench-{label}-{uuid.uuid4().hex[:6]}")
    did = district["district_id"]
    await Directory(client[f"{settings.mongo_db_prefix}_directory"]).put(district)
    today = datetime.now(UTC).date()
    # live load: received in the last few days, so no statutory clock is already
    # past due (a backfill of a year would add a breach and an order per case)
    start = today - timedelta(days=5)
    reqs = list(petitions(district, n, seed=seed, start=start, end=today - timedelta(days=1)))
    for r in reqs:
        r.request_id = uuid.uuid4().hex
    target = f"{settings.grpc_host}:{settings.reporting_grpc}"
    if started is not None:  # the petitions are made: the phase starts now
        started()
    wall0 = time.time()
    t0 = time.perf_counter()
    created, submit_perf = await submit_all(
        f"{settings.grpc_host}:{settings.intake_grpc}", reqs, concurrency, progress=False, rate=rate
    )
    t_submitted = time.perf_counter()
    if created != n:
        raise SystemExit(f"{label}: only {created} of {n} registered")
    while True:
        s = await fetch_summary(target, did, str(today.year))
        if s.received == n and s.routed == n:
            break
        if time.perf_counter() - t0 > 1800:
            raise SystemExit(f"{label}: gave up: received={s.received} routed={s.routed}")
        await asyncio.sleep(0.1)
    t_visible = time.perf_counter()
    if visible is not None:  # ... and ends here, before its latencies are read
        visible()
    # submit times on the wall clock, to compare with the read model's applied_at
    submit_wall = [wall0 + (submit_perf[i] - t0) for i in range(n)]
    cases = client[f"{settings.mongo_db_prefix}_reporting"][f"cases_{did}"]
    lat: list[float] = []
    for i, r in enumerate(reqs):
        doc = await cases.find_one({"_id": case_id_for(did, r.request_id)}, {"applied_at": 1})
        routed = ((doc or {}).get("applied_at") or {}).get("routed")
        if routed is not None:
            lat.append(routed.timestamp() - submit_wall[i])
    if len(lat) < n:
        print(f"{label}: {n - len(lat)} cases without applied_at.routed", file=sys.stderr)
    return Phase(did, n, t_submitted - t0, t_visible - t0, lat)


# ---- Kafka's own ceiling ---------------------------------------------------------------


def _java(libs: str) -> list[str]:
    return ["java", "-Xmx512m", "-cp", f"{libs}/*"]


def _topic(settings: Settings) -> str:
    topic = f"xinfang.bench-perf.{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, settings.partitions, 1)])
    finally:
        admin.close()
    return topic


def _produce(settings: Settings, libs: str, topic: str, records: int, size: int) -> float:
    """ProducerPerformance with the services' producer settings (core/kafka.py:
    idempotent, acks=all, linger 2 ms, batches up to 256 KiB)."""
    out = subprocess.run(
        [*_java(libs), "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={settings.kafka_bootstrap}", "acks=all",
         "enable.idempotence=true", "linger.ms=2", "batch.size=262144"],
        capture_output=True, text=True, check=True, timeout=900,
    ).stdout  # fmt: skip
    m = re.search(r"([\d.]+) records/sec", out.strip().splitlines()[-1])
    return float(m.group(1)) if m else float("nan")


def _consume(settings: Settings, libs: str, topic: str, records: int) -> tuple[float, float]:
    """ConsumerPerformance: (records/s including the group join, records/s of
    fetching only)."""
    out = subprocess.run(
        [*_java(libs), "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
         settings.kafka_bootstrap, "--topic", topic, "--messages", str(records),
         "--timeout", "60000"],
        capture_output=True, text=True, check=True, timeout=900,
    ).stdout  # fmt: skip
    # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.ms, fetch.ms,
    # fetch.MB.sec, fetch.nMsg.sec
    lines = [ln for ln in out.splitlines() if ln and ln[0].isdigit()]
    if not lines:
        return float("nan"), float("nan")
    cols = lines[-1].split(",")
    return float(cols[5]), float(cols[9])


def broker_ceiling(
    settings: Settings, records: int, warmup: int, size: int
) -> dict[str, float | int]:
    """Kafka's own tools, same jars, same broker, on scratch topics: a warm-up
    run of ``warmup`` records first (its figures are printed, not kept), then
    ``records`` on a topic of their own."""
    libs = os.environ["XINFANG_KAFKA_LIBS"]
    w = _topic(settings)
    wp = _produce(settings, libs, w, warmup, size)
    wc, wf = _consume(settings, libs, w, warmup)
    print(f"  warm-up, {warmup:,} records: producer {wp:,.0f}/s, consumer {wf:,.0f}/s "
          f"(fetch) {wc:,.0f}/s (incl. join); not kept")  # fmt: skip
    t = _topic(settings)
    produce = _produce(settings, libs, t, records, size)
    consume, fetch = _consume(settings, libs, t, records)
    return {
        "warmup": warmup,
        "records": records,
        "size": size,
        "producer": produce,
        "consumer": consume,
        "consumer_fetch": fetch,
    }


# ---- the run -------------------------------------------------------------------------


def _ms(x: float) -> float:
    return x * 1000


async def run(a: argparse.Namespace) -> None:
    settings = Settings()
    client = connect(settings.mongo_uri, "xinfang-bench")
    figures: dict[str, Any] = {}
    offered = f"offered at {a.rate:g}/s" if a.rate else "as fast as intake takes them"
    print(f"burst: {a.n} petitions {offered}, concurrency {a.concurrency}, "
          f"{settings.partitions} partitions")  # fmt: skip
    if a.warmup:
        w = await run_phase(settings, client, "warmup", a.warmup, a.concurrency, a.seed + 2, 0)
        await wait_quiet(settings, client)
        figures["warmup"] = {"cases": a.warmup, "cases_per_s": a.warmup / w.visible_s}
        print(f"warm-up (not counted): {a.warmup} cases, "
              f"{figures['warmup']['cases_per_s']:.1f} cases/s end to end")  # fmt: skip
    before = await scrape_all(settings)
    data_dir = Path(os.environ["XINFANG_DATA"])
    cpu0: dict[str, float] = {}
    cpu1: dict[str, float] = {}
    burst_began = time.time()
    burst = await run_phase(
        settings, client, "burst", a.n, a.concurrency, a.seed, a.rate,
        started=lambda: cpu0.update(cpu_snapshot(data_dir)),
        visible=lambda: cpu1.update(cpu_snapshot(data_dir)),
    )  # fmt: skip
    quiet_s, quiet = await wait_quiet(settings, client)
    burst_ended = time.time()
    after = await scrape_all(settings)
    calls = calls_per_case(before, after, a.n)
    by_op = calls_by_op(before, after, a.n)
    elapsed = burst.visible_s
    figures.update(
        cases=a.n,
        cases_per_s=a.n / elapsed,
        submit_per_s=a.n / burst.submit_s,
        # until every consumer (supervision too) had handled every event
        all_done_per_s=(a.n / (elapsed + quiet_s)) if quiet else None,
        seconds=elapsed,
        p50_ms=_ms(pct(burst.latencies, 50)),
        p99_ms=_ms(pct(burst.latencies, 99)),
        max_ms=_ms(max(burst.latencies, default=float("nan"))),
        store_calls_per_case=calls,
        store_calls_complete=quiet,  # False: read while the pipeline was still busy
        store_calls_per_case_by_op=by_op,
        # the burst's span, Unix time: bench_store.py replays the writes made in it
        burst_wall=[burst_began, burst_ended],
        # CPU seconds each process used from the first submit until every
        # case was visible: on a machine of few cores the services, the broker
        # and the store share them, which the store's ceiling alone does not see
        burst_cpu_s={k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
        cores=os.cpu_count(),
    )
    if settings.store_trace:
        # the store's ceiling for the burst's writes, measured now, on the
        # machine as the burst had it: replayed minutes later, after the
        # other phases, the same kind of calls gave between 278 and 466
        # cases/s in runs within an hour of each other
        replay0 = cpu_snapshot(data_dir)
        seconds, traced = await replay_traces(
            client, Path(settings.store_trace), figures["burst_wall"]
        )
        replay1 = cpu_snapshot(data_dir)
        if sum(traced.values()):
            figures.update(
                trace_cases_per_s=a.n / seconds,
                trace_calls=traced,
                trace_seconds=seconds,
                # the store's CPU for the same writes without the services
                trace_cpu_s={k: round(replay1[k] - replay0[k], 2) for k in REPLAY_CPU},
            )
    print(f"submit (gRPC, intake):      {figures['submit_per_s']:8.1f} cases/s")
    print(f"end to end:                 {figures['cases_per_s']:8.1f} cases/s in {elapsed:.1f} s")
    if quiet:
        print(f"every consumer finished:    {figures['all_done_per_s']:8.1f} cases/s in "
              f"{elapsed + quiet_s:.1f} s")  # fmt: skip
    if "trace_cases_per_s" in figures:
        print(
            "store ceiling, right after the burst: its write calls replayed straight at the "
            f"store ({', '.join(f'{k} {v:,}' for k, v in figures['trace_calls'].items())} calls), "
            f"one stream per service: {figures['trace_seconds']:.1f} s = "
            f"{figures['trace_cases_per_s']:,.1f} cases/s"
        )
        print("  CPU during the replay, seconds: "
              + "  ".join(f"{k} {v:.1f}" for k, v in figures["trace_cpu_s"].items()))  # fmt: skip
    used = dict(figures["burst_cpu_s"])
    total = used.pop("machine total")
    print(f"CPU during the burst, seconds (the machine's {figures['cores']} cores had "
          f"{total:.1f} in {elapsed:.1f} s):")  # fmt: skip
    print("  " + "  ".join(f"{k} {v:.1f}" for k, v in used.items()))
    print(f"submit -> visible in reporting (routed):  p50 {figures['p50_ms']:8.0f} ms"
          f"   p99 {figures['p99_ms']:8.0f} ms   max {figures['max_ms']:8.0f} ms")  # fmt: skip
    when = (
        f"read when every consumer and relay had finished, {quiet_s:.1f} s after the last "
        "case was visible"
        if quiet
        else f"read while the pipeline was still busy, {quiet_s:.0f} s after: too few"
    )
    print(f"store calls per case (xinfang_store_calls_total on /metrics; {when}):")
    for service, v in calls.items():
        shown = f"{v:6.2f}" if v is not None else "n/a (counter not exported)"
        ops = "  ".join(f"{op} {x:.1f}" for op, x in by_op.get(service, {}).items())
        print(f"  {service:<12} {shown}  {ops}".rstrip())

    if a.steady_n:
        # enough submits in flight that a slow answer does not lower the rate
        # offered: each of them may take up to 4 s before the pacing slips
        width = max(a.concurrency, round(4 * a.steady_rate))
        print(f"steady: {a.steady_n} petitions offered at {a.steady_rate:g}/s, up to {width} "
              f"in flight")  # fmt: skip
        steady = await run_phase(
            settings, client, "steady", a.steady_n, width, a.seed + 1, a.steady_rate
        )
        figures["steady"] = {
            "rate": a.steady_rate,
            "n": a.steady_n,
            "achieved_per_s": a.steady_n / steady.submit_s,
            "p50_ms": _ms(pct(steady.latencies, 50)),
            "p99_ms": _ms(pct(steady.latencies, 99)),
            "max_ms": _ms(max(steady.latencies, default=float("nan"))),
        }
        st = figures["steady"]
        print(f"  submitted at {st['achieved_per_s']:.1f}/s; submit -> visible: "
              f"p50 {st['p50_ms']:.0f} ms   p99 {st['p99_ms']:.0f} ms   "
              f"max {st['max_ms']:.0f} ms")  # fmt: skip
    figures["total_cases"] = a.warmup + a.n + a.steady_n
    await wait_quiet(settings, client)
    print("peak RSS (VmHWM):")
    for name, pid in pids(data_dir).items():
        print(f"  {name:<12} {peak_rss_mib(pid):8.1f} MiB")
    # reporting: replay the whole log into fresh read models, and render the report
    res = await rebuild(settings, into_prefix="benchrebuild", progress=False)
    figures.update(rebuild_events=res.read, rebuild_events_per_s=res.rate)
    print(f"rebuild by replay: {res.read} events in {res.seconds:.1f} s = {res.rate:.0f} events/s "
          f"({res.applied} applied)")  # fmt: skip
    await client.drop_database("benchrebuild_reporting")
    year = str(date.today().year)
    for fmt in ("docx", "markdown"):
        t_r = time.perf_counter()
        rendered = await render_report(settings, burst.district_id, year, fmt)
        print(f"report {fmt}: {len(rendered)} bytes in {time.perf_counter() - t_r:.2f} s "
              f"(gRPC RenderReport, figures from the read models)")  # fmt: skip
    await client.close()
    save_section("pipeline", figures)

    if a.kafka_records:
        n, size = await topic_records(settings)
        mean = round(size)
        print(
            f"broker ceiling: Kafka's own perf tools, {a.kafka_records:,} records of {mean} B "
            f"(the mean of the {n:,} pipeline events on the topic), acks=all, idempotent:"
        )
        k = broker_ceiling(settings, a.kafka_records, a.kafka_warmup, mean)
        print(f"  ProducerPerformance  {k['producer']:10,.0f} records/s")
        print(f"  ConsumerPerformance  {k['consumer_fetch']:10,.0f} records/s fetching, "
              f"{k['consumer']:,.0f} records/s including the group join")  # fmt: skip
        save_section("kafka", k)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=5000, help="cases in the burst")
    p.add_argument("--warmup", type=int, default=1000, help="cases before the burst (0: none)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rate", type=float, default=0, help="burst: offered cases/s (0: no limit)")
    p.add_argument("--steady-n", type=int, default=1500, help="cases in the steady phase (0: none)")
    p.add_argument("--steady-rate", type=float, default=50, help="steady phase: offered cases/s")
    p.add_argument("--kafka-records", type=int, default=200_000, help="0: no broker ceiling")
    p.add_argument("--kafka-warmup", type=int, default=50_000)
    p.add_argument("--summary", action="store_true", help="print the results file's summary")
    a = p.parse_args()
    if a.summary:
        print(summary(load_results()))
        return
    if a.kafka_records and a.kafka_records < 100_000:
        p.error("--kafka-records: at least 100,000 (fewer measures the JVM's start)")
    asyncio.run(run(a))


if __name__ == "__main__":
    main()
