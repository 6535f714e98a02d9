"""Pushes N petitions through the running services and prints the figures.

Run through scripts/bench.sh, which starts a fresh stack for it. Measures:
cases/s end to end (first submit to last case visible in reporting), p50/p99
latency from submit to the case's routing being visible in the reporting
read model, peak RSS per process, and, in the same run, Kafka's own producer
and consumer throughput for the same number and size of messages, so the
pipeline's figure is also a ratio of what the broker can do here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic

from xinfang.case.v1 import events_pb2 as ev
from xinfang.cli import fetch_summary, submit_all
from xinfang.core.auth import tool_channel
from xinfang.core.codec import encode_event, new_event
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import connect
from xinfang.intake.domain import case_id_for
from xinfang.reporting.rebuild import rebuild
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pids(data_dir: Path) -> dict[str, int]:
    out = {}
    for name in ("intake", "assignment", "supervision", "reporting"):
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def broker_ceiling(settings: Settings, records: int, size: int) -> tuple[float, float]:
    """Kafka's ProducerPerformance and ConsumerPerformance, same jars, same broker."""
    libs = os.environ["XINFANG_KAFKA_LIBS"]
    topic = f"xinfang.bench-perf.{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, settings.partitions, 1)])
    admin.close()
    java = ["java", "-Xmx512m", "-cp", f"{libs}/*"]
    prod = subprocess.run(
        [*java, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={settings.kafka_bootstrap}", "acks=all",
         "enable.idempotence=true", "linger.ms=2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(r"([\d.]+) records/sec", prod.stdout.strip().splitlines()[-1])
    produce = float(m.group(1)) if m else float("nan")
    cons = subprocess.run(
        [*java, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
         settings.kafka_bootstrap, "--topic", topic, "--messages", str(records)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [ln for ln in cons.stdout.splitlines() if ln and ln[0].isdigit()]
    consume = float(lines[-1].split(",")[5]) if lines else float("nan")
    return produce, consume


async def run(n: int, concurrency: int, seed: int, rate: float) -> None:
    settings = Settings()
    district = sample_district(seed, district_id=f"bench-{uuid.uuid4().hex[:8]}")
    did = district["district_id"]
    client = connect(settings.mongo_uri, "xinfang-bench")
    await Directory(client[f"{settings.mongo_db_prefix}_directory"]).put(district)
    today = datetime.now(UTC).date()
    # live load: received in the last few days, so no statutory clock is already
    # past due (a backfill of a year would add a breach and an order per case)
    start = today - timedelta(days=5)
    reqs = list(petitions(district, n, seed=seed, start=start, end=today - timedelta(days=1)))
    for r in reqs:
        r.request_id = uuid.uuid4().hex
    sizes = [
        len(encode_event(new_event(case_id=str(uuid.uuid4()), district_id=did, producer="intake",
                                   case_version=1, registered=ev.CaseRegistered(
                                       category=r.category, township_id=r.township_id,
                                       village_id=r.village_id, content=r.content,
                                       people_count=r.people_count, channel=r.channel,
                                       received_at=r.received_at, petitioner_ref="p_" + "0" * 32,
                                   ))))
        for r in reqs
    ]  # fmt: skip
    target = f"{settings.grpc_host}:{settings.reporting_grpc}"
    offered = f"offered at {rate:g}/s" if rate else "as fast as intake takes them"
    print(f"benchmark: {n} petitions {offered}, concurrency {concurrency}, "
          f"{settings.partitions} partitions")  # fmt: skip
    wall0 = time.time()
    t0 = time.perf_counter()
    created, submit_perf = await submit_all(
        f"{settings.grpc_host}:{settings.intake_grpc}",
        reqs,
        concurrency,
        progress=False,
        rate=rate,
    )
    t_submitted = time.perf_counter()
    assert created == n, f"only {created} of {n} registered"
    while True:
        s = await fetch_summary(target, did, str(today.year))
        if s.received == n and s.routed == n:
            break
        if time.perf_counter() - t0 > 1800:
            raise SystemExit(f"gave up: received={s.received} routed={s.routed}")
        await asyncio.sleep(0.2)
    t_visible = time.perf_counter()
    # submit times on the wall clock, to compare with the read model's applied_at
    submit_wall = {i: wall0 + (submit_perf[i] - t0) for i in range(n)}
    case_ids = [case_id_for(did, r.request_id) for r in reqs]
    cases = client[f"{settings.mongo_db_prefix}_reporting"][f"cases_{did}"]
    lat: list[float] = []
    for i, cid in enumerate(case_ids):
        doc = await cases.find_one({"_id": cid}, {"applied_at": 1})
        assert doc is not None
        lat.append(doc["applied_at"]["routed"].timestamp() - submit_wall[i])
    await client.close()

    elapsed = t_visible - t0
    events = 2 * n  # CaseRegistered and CaseRouted per case
    print(f"submit (gRPC, intake):      {n / (t_submitted - t0):8.1f} cases/s")
    print(f"end to end:                 {n / elapsed:8.1f} cases/s"
          f"  ({events / elapsed:.1f} events/s)  in {elapsed:.1f} s")  # fmt: skip
    print(f"submit -> visible in reporting (routed):  p50 {pct(lat, 50) * 1000:8.0f} ms"
          f"   p99 {pct(lat, 99) * 1000:8.0f} ms   max {max(lat) * 1000:8.0f} ms")  # fmt: skip
    print("peak RSS (VmHWM):")
    for name, pid in pids(Path(os.environ["XINFANG_DATA"])).items():
        print(f"  {name:<12} {peak_rss_mib(pid):8.1f} MiB")
    # reporting: replay the whole log into fresh read models, and render the report
    res = await rebuild(settings, into_prefix="benchrebuild", progress=False)
    print(f"rebuild by replay: {res.read} events in {res.seconds:.1f} s = {res.rate:.0f} events/s "
          f"({res.applied} applied)")  # fmt: skip
    client = connect(settings.mongo_uri, "xinfang-bench")
    await client.drop_database("benchrebuild_reporting")
    await client.close()
    for fmt in ("docx", "markdown"):
        t_r = time.perf_counter()
        rendered = await render_report(settings, did, str(today.year), fmt)
        print(f"report {fmt}: {len(rendered)} bytes in {time.perf_counter() - t_r:.2f} s "
              f"(gRPC RenderReport, figures from the read models)")  # fmt: skip
    size = round(statistics.mean(sizes))
    produce, consume = broker_ceiling(settings, events, size)
    print(f"broker ceiling, {events} records of {size} B (Kafka's own perf tools, acks=all):")
    print(f"  ProducerPerformance  {produce:10.0f} records/s")
    print(f"  ConsumerPerformance  {consume:10.0f} records/s")
    print(f"pipeline events/s as a share of the producer ceiling: {events / elapsed / produce:.2%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--rate", type=float, default=0, help="offered petitions/s (0: no limit)")
    a = p.parse_args()
    asyncio.run(run(a.n, a.concurrency, a.seed, a.rate))


if __name__ == "__main__":
    main()
