"""The fault harness: a steady load of registrations, and while it runs each
victim is struck in turn; then every acknowledged registration is checked.

Run through scripts/chaos.sh, which starts a fresh stack and services of its
own (ports from ``XINFANG_CHAOS_PORT_BASE``) and stops them afterwards.

Victims (``--kill``, comma-separated, in that order):

* ``intake``, ``assignment``, ``supervision``, ``reporting``: SIGKILL, then
  ``scripts/services.sh up`` (with ``--replicas 2`` every service runs two
  replicas and the first is the one killed, while the second goes on);
* ``kafka``, ``ferretdb``: SIGKILL, then ``scripts/stack.sh up``;
* ``ferretdb-down``: FerretDB SIGKILLed and left down for ``--outage`` s
  (30) under load before it is started again: intake must answer
  UNAVAILABLE meanwhile (never INTERNAL) and consumers retry;
* ``poison``: records written to the case topic under load: garbage bytes,
  a valid event of an unknown district, a valid event of an unknown case,
  an oversized value. Each must be dead-lettered (or ignored, for what a
  consumer does not act on) with its reason, and the consumers keep going.

The load: ``--n`` registrations offered at ``--rate``/s, spread over the
intake replicas; a registration refused as UNAVAILABLE or timed out is sent
again with the same request id (as a client would; intake registers a
request id once), for up to ``--retry-s``. Every answer's status is counted.

When the load and the last victim are done it waits until every consumer
group has committed the end of the case topic and no outbox holds
anything, then checks, through the public gRPC API and by reading the
topics, that every acknowledged registration

* is exactly one case (assignment knows it; reporting's search lists exactly
  the acknowledged cases; one distinct registration event id);
* was routed exactly once (one distinct CaseRouted event id; every copy of a
  re-published event is byte for byte the same event);
* has its register-and-route clock in supervision;
* is counted once by reporting (the district's received and routed);

and that the read models equal those of the same input without faults: the
same petitions registered again, in a twin district, after the faults
(``--no-reference`` skips it). It prints, per victim, what was acknowledged
while it was the last one struck, what was lost, duplicated effects, dead
letters, the seconds until the victim answered again (gRPC health SERVING
for a service; the port and a first request for Kafka and FerretDB) and
until every consumer group had committed what the topic held when it was
back; then the privacy probe's figures (scripts/privacy_probe.py) over the
topics, every log, every metric series and the reports. ``--json FILE``
writes every figure. The exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition

from bench_common import scrape
from privacy_probe import Identities, Probe
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import tool_channel
from xinfang.core.codec import DecodeFailed, decode_event, encode_event, new_event, payload_name
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.kafka import read_to_end
from xinfang.core.mongo import connect
from xinfang.intake.domain import case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

SERVICES = ("intake", "assignment", "supervision", "reporting")
CONSUMERS = ("assignment", "supervision", "reporting")
VICTIMS = (*SERVICES, "kafka", "ferretdb", "ferretdb-down", "poison")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def now() -> float:
    return time.time()


# ---- the load ------------------------------------------------------------------------


@dataclass
class Registration:
    index: int
    request_id: str
    case_id: str
    submitted: float = 0.0  # first attempt, wall clock
    acked: float = 0.0  # 0: never acknowledged
    attempts: int = 0
    codes: list[str] = field(default_factory=list)  # every answer but OK


class Load:
    """``n`` registrations at ``rate``/s over the intake replicas' ports."""

    def __init__(
        self,
        settings: Settings,
        requests: Sequence[ipb.RegisterPetitionRequest],
        ports: Sequence[int],
        rate: float,
        retry_s: float,
    ) -> None:
        self.settings = settings
        self.requests = requests
        self.ports = list(ports)
        self.rate = rate
        self.retry_s = retry_s
        self.regs = [
            Registration(i, r.request_id, case_id_for(r.district_id, r.request_id))
            for i, r in enumerate(requests)
        ]
        self.codes: Counter[str] = Counter()  # every answer, OK included
        self.started = 0.0
        self.ended = 0.0

    async def run(self) -> None:
        width = max(32, round(4 * self.rate))
        channels = [tool_channel(f"{self.settings.grpc_host}:{p}") for p in self.ports]
        stubs = [igrpc.IntakeServiceStub(ch) for ch in channels]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(self.requests)):
            queue.put_nowait(i)
        t0 = time.perf_counter()
        self.started = now()

        async def one(i: int) -> None:
            reg = self.regs[i]
            reg.submitted = now()
            deadline = time.monotonic() + self.retry_s
            delay = 0.2
            while True:
                stub = stubs[(i + reg.attempts) % len(stubs)]
                reg.attempts += 1
                try:
                    # longer than the store's server selection (10 s), so an outage
                    # is answered UNAVAILABLE by intake rather than timed out here
                    await stub.RegisterPetition(self.requests[i], timeout=30)
                except grpc.aio.AioRpcError as e:
                    code = e.code().name
                    self.codes[code] += 1
                    reg.codes.append(code)
                    # INTERNAL is counted and tried again too: the client
                    # does not know it is a bug, and the figure shows it
                    if time.monotonic() > deadline or e.code() not in (
                        *RETRYABLE,
                        grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.UNKNOWN,
                    ):
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 3.0)
                    continue
                self.codes["OK"] += 1
                reg.acked = now()
                return

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                await asyncio.sleep(max(0.0, t0 + i / self.rate - time.perf_counter()))
                await one(i)

        try:
            await asyncio.gather(*(worker() for _ in range(width)))
        finally:
            for ch in channels:
                await ch.close()
        self.ended = now()


# ---- probes --------------------------------------------------------------------------


async def serving(settings: Settings, port: int) -> bool:
    async with grpc.aio.insecure_channel(f"{settings.grpc_host}:{port}") as ch:
        try:
            r = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(r.status == health_pb2.HealthCheckResponse.SERVING)


async def store_answers(settings: Settings) -> bool:
    client = connect(settings.mongo_uri, "xinfang-chaos-probe")
    try:
        await asyncio.wait_for(client.admin.command("ping"), 3)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def _group_offsets(settings: Settings) -> tuple[dict[int, int], dict[str, dict[int, int]]]:
    """(end offsets of the case topic, each consumer group's committed ones)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    try:
        tps = [TopicPartition(settings.case_events_topic, p) for p in range(settings.partitions)]
        end = {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
        groups = [f"xinfang-{s}" for s in CONSUMERS]
        offsets = admin.list_group_offsets(groups)
        committed = {
            g: {
                tp.partition: int(m.offset)
                for tp, m in offsets.get(g, {}).items()
                if tp.topic == settings.case_events_topic
            }
            for g in groups
        }
        return end, committed
    finally:
        consumer.close()
        admin.close()


async def group_offsets(
    settings: Settings,
) -> tuple[dict[int, int], dict[str, dict[int, int]]] | None:
    try:
        return await asyncio.wait_for(asyncio.to_thread(_group_offsets, settings), 20)
    except Exception:
        return None


def caught_up(end: dict[int, int], committed: dict[str, dict[int, int]]) -> bool:
    return all(committed[g].get(p, 0) >= o for g in committed for p, o in end.items())


async def wait_caught_up(settings: Settings, target: dict[int, int] | None, bound_s: float) -> bool:
    """Until every group has committed ``target`` (None: the end as of each
    poll) of every partition; False after ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        got = await group_offsets(settings)
        if got is not None and caught_up(target or got[0], got[1]):
            return True
        await asyncio.sleep(0.5)
    return False


async def outboxes_empty(settings: Settings) -> bool:
    client = connect(settings.mongo_uri, "xinfang-chaos-outbox")
    try:
        for s in ("intake", "assignment", "supervision"):
            if await client[settings.db_name(s)]["outbox_pointers"].find_one({}) is not None:
                return False
        return True
    except Exception:
        return False
    finally:
        await client.close()


# ---- the victims ---------------------------------------------------------------------


@dataclass
class Strike:
    victim: str
    killed: float = 0.0  # wall clock of the SIGKILL (or of the poison)
    back_s: float | None = None  # until it answered again
    caught_up_s: float | None = None  # until every group committed the end as of then
    note: str = ""


def _pid(data: Path, name: str) -> int:
    return int((data / f"{name}.pid").read_text())


def _gone(pid: int) -> bool:
    """Dead: no /proc entry, or a zombie none of whose threads still run. A
    killed JVM's main thread shows as a zombie while its other threads are
    still being torn down, its listening socket open; a script that looked
    then found Kafka "already up" and did not start it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z" and len(threads) <= 1


async def sigkill(pid: int, port: int | None = None) -> None:
    """SIGKILL, then wait until it is gone and (``port``) nothing listens there."""
    os.kill(pid, signal.SIGKILL)
    for _ in range(600):
        if _gone(pid) and (port is None or not await _listening(port)):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"pid {pid} survived SIGKILL")


async def _listening(port: int) -> bool:
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return False
    w.close()
    return True


async def script(*args: str, bound_s: float = 300) -> None:
    """One of the project's scripts, output to the chaos log."""
    log = Path(os.environ["XINFANG_LOGS"]) / "chaos-scripts.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "scripts" / args[0]), *args[1:], stdout=out, stderr=out
        )
        try:
            rc = await asyncio.wait_for(proc.wait(), bound_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    if rc != 0:
        raise RuntimeError(f"scripts/{' '.join(args)} failed ({rc}); see {log}")


async def until(probe: Callable[[], Awaitable[bool]], bound_s: float) -> bool:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.1)
    return False


class Poison:
    """The records a producer other than ours wrote to the case topic."""

    def __init__(self, settings: Settings, district_id: str) -> None:
        self.settings = settings
        self.district_id = district_id
        self.written: dict[tuple[int, int], str] = {}  # (partition, offset) -> kind
        self.oversized = 0  # bytes of the oversized value the broker took

    def records(self) -> list[tuple[str, bytes, bytes]]:
        def event(district: str, case: str) -> bytes:
            return encode_event(
                new_event(
                    case_id=case,
                    district_id=district,
                    producer="chaos",
                    case_version=2,
                    accepted=ev.CaseAccepted(),
                )
            )

        unknown_case = f"c-chaos-{uuid.uuid4().hex[:12]}"
        return [
            ("garbage bytes", b"c-chaos-garbage", b"\xff\x00not a protobuf\xfe" * 8),
            (
                "unknown district",
                b"c-chaos-nodistrict",
                event(f"nowhere-{uuid.uuid4().hex[:6]}", "c-chaos-nodistrict"),
            ),
            ("unknown case", unknown_case.encode(), event(self.district_id, unknown_case)),
        ]

    async def write(self) -> None:
        p = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            max_request_size=2 * 1024 * 1024,
        )
        await p.start()
        try:
            for kind, key, value in self.records():
                md = await p.send_and_wait(self.settings.case_events_topic, value=value, key=key)
                self.written[(md.partition, md.offset)] = kind
            # the largest value the broker takes (its limit is 1 MiB a batch):
            # a consumer must carry it to the dead-letter topic, headers and all
            size = 1024 * 1024
            while size > 900_000:
                try:
                    md = await p.send_and_wait(
                        self.settings.case_events_topic,
                        value=b"\x0a" + b"\xff" * size,
                        key=b"c-chaos-oversized",
                    )
                except MessageSizeTooLargeError:
                    size -= 64
                    continue
                self.written[(md.partition, md.offset)] = "oversized value"
                self.oversized = size + 1
                break
        finally:
            await p.stop()


class Chaos:
    def __init__(self, settings: Settings, a: argparse.Namespace, district_id: str) -> None:
        self.settings = settings
        self.a = a
        self.data = Path(os.environ["XINFANG_DATA"])
        self.poison = Poison(settings, district_id)
        self.intake_codes_while_store_down: Counter[str] = Counter()

    async def strike(self, victim: str, load: Load) -> Strike:
        s = Strike(victim)
        if victim == "poison":
            s.killed = now()
            await self.poison.write()
            s.back_s = 0.0
        elif victim in SERVICES:
            pid = _pid(self.data, f"svc-{victim}")
            await sigkill(pid, self.settings.ports(victim)[0])
            s.killed = now()
            up = asyncio.create_task(script("services.sh", "up"))
            port = self.settings.ports(victim)[0]
            if await until(lambda: serving(self.settings, port), 180):
                s.back_s = now() - s.killed
            await up
        else:
            name = "ferretdb" if victim.startswith("ferretdb") else "kafka"
            host_port = (
                self.settings.mongo_uri if name == "ferretdb" else self.settings.kafka_bootstrap
            )
            port = int(host_port.rstrip("/").rsplit(":", 1)[1].split(",")[0])
            await sigkill(_pid(self.data, name), port)
            s.killed = now()
            if victim == "ferretdb-down":
                before = Counter(load.codes)
                await asyncio.sleep(self.a.outage)
                self.intake_codes_while_store_down = Counter(load.codes) - before
                s.note = "intake answered " + ", ".join(
                    f"{k} {v}" for k, v in sorted(self.intake_codes_while_store_down.items())
                )
            # the project's script, tried again should the broker still be
            # starting when it creates the topics
            for attempt in range(3):
                try:
                    await script("stack.sh", "up")
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(2)
            probe: Callable[[], Awaitable[bool]] = (
                (lambda: store_answers(self.settings))
                if name == "ferretdb"
                else self._kafka_answers
            )
            if await until(probe, 120):
                s.back_s = now() - s.killed
        got = await self._offsets_when_back()
        if got is not None and await wait_caught_up(self.settings, got, self.a.catch_up_s):
            s.caught_up_s = now() - s.killed
        return s

    async def _kafka_answers(self) -> bool:
        return await group_offsets(self.settings) is not None

    async def _offsets_when_back(self) -> dict[int, int] | None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = await group_offsets(self.settings)
            if got is not None:
                return got[0]
            await asyncio.sleep(0.5)
        return None

    async def run(self, load: Load) -> list[Strike]:
        victims: list[str] = self.a.kill
        strikes: list[Strike] = []
        slot = len(load.requests) / load.rate / max(1, len(victims))
        t0 = time.monotonic()
        for k, v in enumerate(victims):
            await asyncio.sleep(max(0.0, t0 + (k + 0.25) * slot - time.monotonic()))
            print(f"  striking {v} ({now() - load.started:.0f} s into the load)", flush=True)
            s = await self.strike(v, load)
            if load.ended:
                s.note = (s.note + "; " if s.note else "") + "the load had ended"
            print(f"    back after {_s(s.back_s)}, caught up after {_s(s.caught_up_s)}", flush=True)
            strikes.append(s)
        return strikes


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.1f} s"


# ---- reading back --------------------------------------------------------------------


@dataclass
class Topics:
    by_case: dict[str, dict[str, set[str]]]  # case -> payload -> distinct event ids
    copies_differ: int  # event ids whose copies are not the same bytes
    case_records: int
    dead_letters: list[Any]
    all_records: dict[str, list[Any]]


async def read_topics(settings: Settings) -> Topics:
    by_case: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    seen: dict[str, bytes] = {}
    differ = 0
    records: dict[str, list[Any]] = {}
    for topic in (settings.case_events_topic, settings.dead_letter_topic, settings.rankings_topic):
        got: list[Any] = []
        async for batch in read_to_end(settings, topic, "xinfang-chaos", timeout_s=600):
            got.extend(batch)
        records[topic] = got
    for r in records[settings.case_events_topic]:
        try:
            e = decode_event(r.value)
        except DecodeFailed:
            continue
        by_case[e.case_id][payload_name(e)].add(e.event_id)
        # a copy re-published by the outbox or released by parking is the
        # same event: the same bytes
        if e.event_id in seen and seen[e.event_id] != r.value:
            differ += 1
        seen.setdefault(e.event_id, r.value)
    dls = [
        r
        for r in records[settings.dead_letter_topic]
        if not any(k == "x-replay-marker" for k, _ in r.headers or ())
    ]
    return Topics(by_case, differ, len(records[settings.case_events_topic]), dls, records)


async def gather_bounded(coros: Sequence[Awaitable[T]], width: int = 16) -> list[T]:
    sem = asyncio.Semaphore(width)

    async def one(c: Awaitable[T]) -> T:
        async with sem:
            return await c

    return list(await asyncio.gather(*(one(c) for c in coros)))


@dataclass
class CaseState:
    """What the public API says of one case."""

    assignment: dict[str, Any] | None
    clocks: list[dict[str, Any]]


async def case_states(
    settings: Settings, district_id: str, case_ids: Sequence[str]
) -> dict[str, CaseState]:
    async with (
        tool_channel(f"{settings.grpc_host}:{settings.assignment_grpc}") as ach,
        tool_channel(f"{settings.grpc_host}:{settings.supervision_grpc}") as sch,
    ):
        astub = agrpc.AssignmentServiceStub(ach)
        sstub = sgrpc.SupervisionServiceStub(sch)

        async def one(cid: str) -> tuple[str, CaseState]:
            view: dict[str, Any] | None
            try:
                v = await astub.GetCase(
                    apb.GetCaseRequest(district_id=district_id, case_id=cid), timeout=30
                )
                view = {"status": v.status, "unit_id": v.unit_id, "decision": int(v.decision)}
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                view = None
            c = await sstub.GetCaseClocks(
                spb.GetCaseClocksRequest(district_id=district_id, case_id=cid), timeout=30
            )
            clocks = sorted(
                (
                    {
                        "kind": int(k.kind),
                        "due_at": k.due_at.ToJsonString(),
                        "open": k.open,
                        "breached": k.breached,
                        "unit_id": k.unit_id,
                        "warned": k.warned,
                    }
                    for k in c.clocks
                ),
                key=lambda d: (d["kind"], d["unit_id"], d["due_at"]),
            )
            return cid, CaseState(view, clocks)

        return dict(await gather_bounded([one(c) for c in case_ids]))


async def reporting_view(settings: Settings, district_id: str, years: Sequence[str]) -> Any:
    """What reporting answers for the district: each year's period report
    and the ids its case search lists."""
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        stub = rgrpc.ReportingServiceStub(ch)
        reports = {}
        for y in years:
            r = await stub.GetPeriodReport(
                rpb.GetPeriodReportRequest(district_id=district_id, period=y), timeout=60
            )
            d = MessageToDict(r, preserving_proto_field_name=True)
            d.pop("district_id", None)
            reports[y] = d
        ids: list[str] = []
        token = ""
        while True:
            page = await stub.SearchCases(
                rpb.SearchCasesRequest(district_id=district_id, page_size=500, page_token=token),
                timeout=60,
            )
            ids.extend(c.case_id for c in page.cases)
            token = page.next_page_token
            if not token:
                break
        return reports, ids


async def render_reports(settings: Settings, district_id: str, year: str) -> dict[str, bytes]:
    out = {}
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        stub = rgrpc.ReportingServiceStub(ch)
        for fmt, ext in (("docx", "docx"), ("markdown", "md"), ("json", "json")):
            for lang in ("zh", "en"):
                r = await stub.RenderReport(
                    rpb.RenderReportRequest(
                        district_id=district_id, period=year, format=fmt, lang=lang
                    ),
                    timeout=300,
                )
                out[f"{district_id}-{year}-{lang}.{ext}"] = bytes(r.content)
    return out


# ---- the run -------------------------------------------------------------------------


def _requests(
    district: dict[str, Any], n: int, seed: int, prefix: str
) -> list[ipb.RegisterPetitionRequest]:
    today = datetime.now(UTC).date()
    reqs = list(
        petitions(
            district, n, seed=seed, start=today - timedelta(days=5), end=today - timedelta(days=1)
        )
    )
    for i, r in enumerate(reqs):
        r.request_id = f"{prefix}-{i:06d}"
    return reqs


async def wait_quiet(settings: Settings, bound_s: float) -> float | None:
    """Until every group has committed the topic's end and no outbox holds
    anything, twice in a row; seconds waited, None after ``bound_s``."""
    t0 = time.monotonic()
    calm = 0
    while time.monotonic() - t0 < bound_s:
        got = await group_offsets(settings)
        if got is not None and caught_up(*got) and await outboxes_empty(settings):
            calm += 1
            if calm >= 2:
                return time.monotonic() - t0
        else:
            calm = 0
        await asyncio.sleep(1.0)
    return None


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ (paths), for the report."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


async def run(a: argparse.Namespace) -> int:
    settings = Settings()
    client = connect(settings.mongo_uri, "xinfang-chaos")
    directory = Directory(client[f"{settings.mongo_db_prefix}_directory"])
    tag = uuid.uuid4().hex[:6]
    district = sample_district(a.seed, district_id=f"chaos-{tag}")
    did = district["district_id"]
    await directory.put(district)
    reqs = _requests(district, a.n, a.seed, f"chaos-{tag}")
    step = int(os.environ.get("XINFANG_REPLICA_PORT_STEP", "100"))
    if a.replicas > 1:
        for service in SERVICES:
            for replica in range(2, a.replicas + 1):
                await script("services.sh", "replica", service, str(replica))
        print(f"{a.replicas} replicas of every service", flush=True)
    ports = [settings.intake_grpc + k * step for k in range(a.replicas)]
    # steady state first: every consumer has joined its group
    if not await wait_caught_up(settings, None, 180):
        print("warning: consumers not caught up before the load", file=sys.stderr)

    load = Load(settings, reqs, ports, a.rate, a.retry_s)
    chaos = Chaos(settings, a, did)
    print(
        f"load: {a.n:,} registrations at {a.rate:g}/s over {len(ports)} intake replica(s); "
        f"victims in turn: {', '.join(a.kill)}",
        flush=True,
    )
    load_task = asyncio.create_task(load.run())
    strikes = await chaos.run(load)
    await load_task
    print(
        f"load done in {load.ended - load.started:.0f} s; answers: {dict(load.codes)}", flush=True
    )
    # the replicas that were killed come back with services.sh up; the second
    # replicas were never struck, but one may have died: start what is down
    await script("services.sh", "up")
    quiet = await wait_quiet(settings, a.quiet_s)
    print(f"quiet after {_s(quiet)}", flush=True)

    topics = await read_topics(settings)
    acked = [r for r in load.regs if r.acked]
    ids = [r.case_id for r in acked]
    states = await case_states(settings, did, ids)
    years = sorted({str(r.received_at.ToDatetime().year) for r in reqs})
    reports, listed = await reporting_view(settings, did, years)

    # per case: what is wrong with it
    listed_count = Counter(listed)
    problems: dict[str, list[str]] = {}
    for r in acked:
        p = []
        events = topics.by_case.get(r.case_id, {})
        reg, routed = events.get("registered", set()), events.get("routed", set())
        if not reg:
            p.append("lost: no registration event")
        if not routed:
            p.append("lost: never routed")
        st = states[r.case_id]
        if st.assignment is None:
            p.append("lost: assignment does not know it")
        if not any(c["kind"] == ev.CLOCK_KIND_REGISTER_AND_ROUTE for c in st.clocks):
            p.append("lost: no register-and-route clock")
        if listed_count[r.case_id] == 0:
            p.append("lost: reporting does not list it")
        if len(reg) > 1:
            p.append(f"duplicated: {len(reg)} registration events")
        if len(routed) > 1:
            p.append(f"duplicated: {len(routed)} routing events")
        if listed_count[r.case_id] > 1:
            p.append("duplicated: listed twice by reporting")
        if p:
            problems[r.case_id] = p
    acked_ids = set(ids)
    unacked_cases = [
        r.case_id
        for r in load.regs
        if not r.acked and "registered" in topics.by_case.get(r.case_id, {})
    ]
    extra_listed = [c for c in listed_count if c not in acked_ids]
    received = sum(int(reports[y].get("current", {}).get("received", 0)) for y in years)
    routed_n = sum(int(reports[y].get("current", {}).get("routed", 0)) for y in years)

    # per victim: the registrations first submitted since it was struck
    # (before the first strike: 'before'), and the dead letters since then
    dl_times = []
    poison_offsets = chaos.poison.written
    poison_letters: dict[str, list[str]] = defaultdict(list)
    for r in topics.dead_letters:
        h = {k: (v or b"").decode() for k, v in r.headers or ()}
        src = (int(h.get("x-source-partition", -1)), int(h.get("x-source-offset", -1)))
        if h.get("x-source-topic") == settings.case_events_topic and src in poison_offsets:
            poison_letters[poison_offsets[src]].append(
                f"{h.get('x-service')}: {h.get('x-error-type')}: {h.get('x-error', '')[:80]}"
            )
            continue
        dl_times.append(r.timestamp / 1000)
    bounds = [s.killed for s in strikes]
    rows = []
    windows = [("before", 0.0, bounds[0] if bounds else float("inf"))]
    for k, s in enumerate(strikes):
        windows.append((s.victim, s.killed, bounds[k + 1] if k + 1 < len(bounds) else float("inf")))
    for name, lo, hi in windows:
        regs = [r for r in load.regs if lo <= r.submitted < hi]
        ack = [r for r in regs if r.acked]
        lost = sum(1 for r in ack if any(x.startswith("lost") for x in problems.get(r.case_id, [])))
        dup = sum(
            1 for r in ack if any(x.startswith("duplicated") for x in problems.get(r.case_id, []))
        )
        strike = next((s for s in strikes if s.victim == name and s.killed == lo), None)
        rows.append(
            {
                "victim": name,
                "offered": len(regs),
                "acknowledged": len(ack),
                "not_acknowledged": len(regs) - len(ack),
                "lost": lost,
                "duplicated": dup,
                "dead_letters": sum(1 for t in dl_times if lo <= t < hi),
                "back_s": strike.back_s if strike else None,
                "caught_up_s": strike.caught_up_s if strike else None,
                "note": strike.note if strike else "",
            }
        )

    # ---- print --------------------------------------------------------------------
    print()
    print(f"{'victim':<14}{'offered':>8}{'acked':>8}{'lost':>6}{'dup':>5}{'DLs':>5}"
          f"{'back s':>8}{'caught up s':>12}  note")  # fmt: skip
    for row in rows:
        back = "-" if row["back_s"] is None else f"{row['back_s']:.1f}"
        cu = "-" if row["caught_up_s"] is None else f"{row['caught_up_s']:.1f}"
        if row["victim"] != "before" and row["back_s"] is None:
            back = "never"
        if row["victim"] != "before" and row["caught_up_s"] is None:
            cu = "never"
        print(f"{row['victim']:<14}{row['offered']:>8}{row['acknowledged']:>8}"
              f"{row['lost']:>6}{row['duplicated']:>5}{row['dead_letters']:>5}{back:>8}"
              f"{cu:>12}  {row['note']}")  # fmt: skip
    print()
    print(f"acknowledged {len(acked):,} of {a.n:,}; answers {dict(load.codes)}")
    print(f"case topic: {topics.case_records:,} records; copies of one event id that differ: "
          f"{topics.copies_differ}")  # fmt: skip
    print(f"reporting counts: received {received:,}, routed {routed_n:,} "
          f"(acknowledged {len(acked):,}); lists {len(listed):,} cases, "
          f"{len(extra_listed)} not acknowledged")  # fmt: skip
    print(f"registered but never acknowledged: {len(unacked_cases)}")
    for kind in (
        k for k in ("garbage bytes", "unknown district", "unknown case", "oversized value")
    ):
        if "poison" in a.kill:
            letters = poison_letters.get(kind, [])
            print(
                f"poison {kind}: {len(letters)} dead letters"
                + "".join(f"\n    {x}" for x in sorted(letters))
            )
    # the same input without faults: a twin district, the same petitions
    ref_diffs: list[str] = []
    ref_cases_differ = 0
    ref_error = ""
    try:
        if a.reference:
            twin = sample_district(a.seed, district_id=f"chaos-ref-{tag}")
            await directory.put(twin)
            treqs = _requests(twin, a.n, a.seed, f"chaos-ref-{tag}")
            acked_index = [r.index for r in acked]
            treqs_acked = [treqs[i] for i in acked_index]
            print(f"reference: the {len(treqs_acked):,} acknowledged petitions again, in a twin "
                  f"district, without faults", flush=True)  # fmt: skip
            ref = Load(settings, treqs_acked, ports[:1], max(a.rate, 100.0), a.retry_s)
            await ref.run()
            await wait_quiet(settings, a.quiet_s)
            tdid = twin["district_id"]
            tstates = await case_states(settings, tdid, [r.case_id for r in ref.regs])
            treports, tlisted = await reporting_view(settings, tdid, years)
            ref_diffs = _diff(reports, treports)
            for r, t in zip(acked, ref.regs, strict=True):
                if asdict(states[r.case_id]) != asdict(tstates[t.case_id]):
                    ref_cases_differ += 1
            if len(tlisted) != len(ref.regs):
                ref_diffs.append(f"twin lists {len(tlisted)} of {len(ref.regs)}")

    except Exception as e:  # the figures above stand; say why this one is missing
        ref_error = f"{type(e).__name__}: {e}"
        print(f"reference run failed: {ref_error}", flush=True)
    # privacy: the topics, every log, every metric series, the reports
    probe = Probe(Identities.of(reqs))
    privacy_error = ""
    try:
        for topic, recs in topics.all_records.items():
            probe.search_records(topic, recs)
        probe.search_logs(Path(os.environ["XINFANG_LOGS"]))
        for service in SERVICES:
            for k in range(a.replicas):
                port = settings.ports(service)[1] + k * step
                probe.search_series(
                    f"{service}#{k + 1}/metrics", await asyncio.to_thread(scrape, "127.0.0.1", port)
                )
        rendered = await render_reports(settings, did, years[-1])
        for name, data in rendered.items():
            probe.search_report(name, data)
        out_dir = ROOT / "out"
        for path in sorted(out_dir.glob("*")) if out_dir.is_dir() else []:
            if path.suffix in (".docx", ".md", ".json"):
                probe.search_report(f"out/{path.name}", path.read_bytes())

    except Exception as e:
        privacy_error = f"{type(e).__name__}: {e}"
        print(f"privacy probe failed: {privacy_error}", flush=True)
    await client.close()
    if a.reference:
        print(f"read models vs the same input without faults: reporting {len(ref_diffs)} "
              f"differences, cases whose assignment or supervision state differs: "
              f"{ref_cases_differ}")  # fmt: skip
        for d in ref_diffs[:20]:
            print(f"    {d}")
    for cid, p in list(problems.items())[:20]:
        print(f"  {cid}: {'; '.join(p)}")
    print(probe.summary())
    for f in probe.findings[:20]:
        print(f"    {f}")

    internal = load.codes.get("INTERNAL", 0) + load.codes.get("UNKNOWN", 0)
    failed = {
        "lost or duplicated": bool(problems),
        "reporting counts": received != len(acked) or routed_n != len(acked),
        "reporting lists extra cases": bool(extra_listed),
        "copies differ": topics.copies_differ > 0,
        "intake answered INTERNAL/UNKNOWN": internal > 0,
        "not acknowledged": len(acked) < a.n,
        "dead letters besides the poison": bool(dl_times),
        "a victim never came back": any(s.back_s is None or s.caught_up_s is None for s in strikes),
        "read models differ from the run without faults": bool(ref_diffs) or ref_cases_differ > 0,
        "privacy": probe.count > 0 or bool(privacy_error),
        "reference run failed": bool(ref_error),
        "never quiet": quiet is None,
    }
    if "poison" in a.kill:
        # bytes that do not decode and an unknown district: every consumer
        for kind in ("garbage bytes", "unknown district", "oversized value"):
            services = {x.split(":")[0] for x in poison_letters.get(kind, [])}
            failed[f"poison {kind} not dead-lettered by every consumer"] = services != set(
                CONSUMERS
            )
    bad = [k for k, v in failed.items() if v]
    print("checks: " + ("all passed" if not bad else "FAILED: " + "; ".join(bad)))
    if a.json:
        Path(a.json).write_text(  # noqa: ASYNC240 - once, at the end
            json.dumps(
                {
                    "args": {k: v for k, v in vars(a).items()},
                    "rows": rows,
                    "acknowledged": len(acked),
                    "answers": dict(load.codes),
                    "store_down_answers": dict(chaos.intake_codes_while_store_down),
                    "problems": problems,
                    "received": received,
                    "routed": routed_n,
                    "listed": len(listed),
                    "extra_listed": len(extra_listed),
                    "copies_differ": topics.copies_differ,
                    "poison_letters": poison_letters,
                    "reference_diffs": ref_diffs,
                    "reference_cases_differ": ref_cases_differ,
                    "privacy": {
                        "found": probe.count,
                        "searched": probe.searched,
                        "findings": [str(f) for f in probe.findings[:50]],
                    },
                    "failed": bad,
                },
                indent=2,
                default=str,
            )
        )
    return 1 if bad else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=600, help="registrations offered")
    p.add_argument("--rate", type=float, default=20, help="registrations offered per second")
    p.add_argument(
        "--kill",
        default=",".join(VICTIMS),
        help=f"victims, in order, comma-separated (default: all of {', '.join(VICTIMS)})",
    )
    p.add_argument(
        "--replicas", type=int, default=1, choices=(1, 2), help="replicas of every service"
    )
    p.add_argument("--outage", type=float, default=30, help="ferretdb-down: seconds down")
    p.add_argument(
        "--retry-s", type=float, default=180, help="a client retries a registration this long"
    )
    p.add_argument("--catch-up-s", type=float, default=300, help="bound on each victim's catch-up")
    p.add_argument("--quiet-s", type=float, default=900, help="bound on the final wait")
    p.add_argument("--no-reference", dest="reference", action="store_false")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", help="write every figure here")
    a = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    a.kill = [v for v in a.kill.split(",") if v]
    unknown = [v for v in a.kill if v not in VICTIMS]
    if unknown:
        p.error(f"--kill: unknown victims {unknown}; choose from {', '.join(VICTIMS)}")
    raise SystemExit(asyncio.run(run(a)))


if __name__ == "__main__":
    main()
