"""Send the shots to the running services and hold every answer to the rules.

Per answer:
* never INTERNAL or UNKNOWN (or any code outside ``ALLOWED``);
* a refusal names its field (``core.errors.field_of``): a field path of the
  method's request message, ``authorization`` or ``request``. The one
  exception is RESOURCE_EXHAUSTED, which gRPC itself gives a message over
  the server's size limit before any handler runs; it must come only for
  such a message;
* bytes that do not decode are never accepted.

Nothing stored or published by a refused request, checked soundly while
accepted requests do write: the shots go in rounds. Before a round the stack
is quiet (every consumer group has committed the end of the case topic, and
two snapshots a scan interval apart are equal); a snapshot is every
document of every service database (the ``leases`` collections aside: the
scanner's and sweeper's liveness, renewed on their own) and the end offset
of every topic. A round in which no command was accepted (``OK`` from a
method not named ``Get…``, ``List…``, ``Search…`` or ``Render…``) must leave
the snapshot as it found it, which checks its refusals and its reads at
once. When it does not, the stack is let settle and each refused request of
the round is sent again on its own between two snapshots, twice when it
seems to have written, so a background write (a clock falling due) is told
from the request's. A round with an accepted command checks nothing about
store or topics; the report says how many refusals were checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bson
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition
from pymongo import AsyncMongoClient

from xinfang.core.config import Settings
from xinfang.core.errors import field_of
from xinfang.core.mongo import Doc

from .strategies import Method, Shot, resolve_field

__all__ = ["ALLOWED", "Campaign", "Outcome", "Report", "read_only"]

ALLOWED = frozenset(
    {
        "OK",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ABORTED",
        "ALREADY_EXISTS",
        "RESOURCE_EXHAUSTED",
    }
)
PSEUDO_FIELDS = frozenset({"authorization", "request"})
SKIP_COLLECTIONS = frozenset({"leases"})
CONSUMERS = ("assignment", "supervision", "reporting")


def read_only(m: Method) -> bool:
    """The API's naming: queries are Get…, List…, Search…, Render…."""
    return m.name.startswith(("Get", "List", "Search", "Render"))


@dataclass
class Outcome:
    shot: Shot
    code: str
    details: str
    response: bytes = b""


@dataclass
class Report:
    by_method: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)  # kind, method, …
    rounds: int = 0
    rounds_checked: int = 0
    refusals: int = 0
    refusals_checked: int = 0
    reads_checked: int = 0
    rechecked: int = 0
    wrote_when_refused: int = 0
    crashed: list[str] = field(default_factory=list)
    internal_on_servers: float = 0.0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_method.values())

    def count(self, kind: str) -> int:
        return sum(1 for f in self.failures if f[0] == kind)

    def fail(self, kind: str, o: Outcome, why: str = "") -> None:
        self.failures.append((kind, o.shot.method.label, f"{o.code}: {o.details[:200]}", why))

    def table(self) -> str:
        codes = sorted({c for cnt in self.by_method.values() for c in cnt})
        head = ["method", *codes, "total"]
        rows = [head]
        for m in sorted(self.by_method):
            cnt = self.by_method[m]
            rows.append([m, *(str(cnt.get(c, 0) or "") for c in codes), str(sum(cnt.values()))])
        total = Counter[str]()
        for cnt in self.by_method.values():
            total.update(cnt)
        rows.append(["all", *(str(total.get(c, 0)) for c in codes), str(sum(total.values()))])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        )

    def summary(self) -> str:
        kinds = Counter(f[0] for f in self.failures)
        lines = [
            f"requests: {self.total} in {self.seconds:.0f} s",
            f"INTERNAL or UNKNOWN: {kinds.get('internal', 0)} "
            f"(servers' own count of INTERNAL: {self.internal_on_servers:.0f})",
            f"other codes outside the allowed set: {kinds.get('code', 0)}",
            f"refusals not naming a field of the request: {kinds.get('unnamed', 0)}",
            f"RESOURCE_EXHAUSTED for a message within the limit: {kinds.get('size', 0)}",
            f"undecodable bytes accepted: {kinds.get('decoded', 0)}",
            f"crashed processes: {len(self.crashed)} {' '.join(self.crashed)}".rstrip(),
            f"nothing stored or published by refused requests: {self.refusals_checked} of "
            f"{self.refusals} refusals checked in {self.rounds_checked} of {self.rounds} rounds "
            f"(and {self.reads_checked} accepted reads); {self.rechecked} re-sent alone after a "
            f"change; refused requests that wrote: {self.wrote_when_refused}",
        ]
        for kind, method, answer, why in self.failures[:40]:
            lines.append(f"  FAIL {kind} {method}: {answer} {why}".rstrip())
        return "\n".join(lines)


Snapshot = tuple[dict[str, tuple[int, str]], dict[str, int]]


class Campaign:
    def __init__(
        self,
        settings: Settings,
        mongo: AsyncMongoClient[Doc],
        pid_files: Sequence[str] = (),
        timeout_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.mongo = mongo
        self.pid_files = list(pid_files)
        self.timeout_s = timeout_s
        big = [
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ]
        self.channels = {
            s: grpc.aio.insecure_channel(
                f"{settings.grpc_host}:{settings.ports(s)[0]}", options=big
            )
            for s in ("intake", "assignment", "supervision", "reporting")
        }
        self._kafka: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        if self._kafka is not None:
            self._kafka.close()
        if self._admin is not None:
            self._admin.close()

    # ---- sending ---------------------------------------------------------------

    async def send(self, shot: Shot) -> Outcome:
        call = self.channels[shot.method.service].unary_unary(shot.method.path)
        try:
            resp = await call(shot.raw, metadata=shot.metadata, timeout=self.timeout_s)
            return Outcome(shot, "OK", "", resp)
        except grpc.aio.AioRpcError as e:
            return Outcome(shot, e.code().name, e.details() or "")

    def judge(self, o: Outcome, report: Report) -> None:
        m = o.shot.method
        report.by_method[m.label][o.code] += 1
        if o.code in ("INTERNAL", "UNKNOWN"):
            report.fail("internal", o)
        elif o.code not in ALLOWED:
            report.fail("code", o)
        decodes = True
        try:
            m.request.FromString(o.shot.raw)
        except Exception:
            decodes = False
        if o.code == "OK":
            if not decodes:
                report.fail("decoded", o, "undecodable bytes were accepted")
            return
        if o.code == "RESOURCE_EXHAUSTED":
            if len(o.shot.raw) <= self.settings.grpc_max_receive_bytes(m.service):
                report.fail("size", o, f"{len(o.shot.raw)} bytes")
            return
        if o.code in ("INTERNAL", "UNKNOWN") or o.code not in ALLOWED:
            return
        name = field_of(o.details)
        if name is None:
            report.fail("unnamed", o, "names no field")
        elif name not in PSEUDO_FIELDS and not resolve_field(m.input, name):
            report.fail("unnamed", o, f"{name!r} is not a field of {m.input.name}")

    async def _send_all(self, shots: Sequence[Shot], concurrency: int) -> list[Outcome]:
        sem = asyncio.Semaphore(concurrency)

        async def one(s: Shot) -> Outcome:
            async with sem:
                return await self.send(s)

        return list(await asyncio.gather(*(one(s) for s in shots)))

    # ---- the store and the topics ------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        store: dict[str, tuple[int, str]] = {}
        prefix = f"{self.settings.mongo_db_prefix}_"
        for db_name in sorted(await self.mongo.list_database_names()):
            if not db_name.startswith(prefix):
                continue
            db = self.mongo[db_name]
            for coll in sorted(await db.list_collection_names()):
                if coll in SKIP_COLLECTIONS:
                    continue
                docs = await db[coll].find({}).to_list(None)
                digests = sorted(
                    hashlib.blake2b(bson.encode(d), digest_size=16).digest() for d in docs
                )
                store[f"{db_name}.{coll}"] = (
                    len(docs),
                    hashlib.sha256(b"".join(digests)).hexdigest(),
                )
        return store, await asyncio.to_thread(self._end_offsets)

    def _end_offsets(self) -> dict[str, int]:
        if self._kafka is None:
            self._kafka = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        s = self.settings
        tps = [
            TopicPartition(t, p)
            for t in (s.case_events_topic, s.dead_letter_topic, s.rankings_topic)
            for p in sorted(self._kafka.partitions_for_topic(t) or ())
        ]
        return {
            f"{tp.topic}:{tp.partition}": int(v) for tp, v in self._kafka.end_offsets(tps).items()
        }

    def _caught_up(self) -> bool:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        end = self._end_offsets()
        topic = self.settings.case_events_topic
        groups = [f"xinfang-{svc}" for svc in CONSUMERS]
        committed = self._admin.list_group_offsets(groups)
        for g in groups:
            done = committed.get(g, {})
            for key, offset in end.items():
                t, p = key.rsplit(":", 1)
                if t != topic:
                    continue
                got = done.get(TopicPartition(t, int(p)))
                if offset > 0 and (got is None or got.offset < offset):
                    return False
        return True

    async def quiet(self, wait_s: float = 120.0) -> Snapshot:
        """A snapshot of a settled stack: consumers caught up, and nothing
        changing over more than a scan interval."""
        gap = self.settings.scan_seconds + 0.3
        deadline = time.monotonic() + wait_s
        last = await self.snapshot()
        while True:
            await asyncio.sleep(gap)
            now = await self.snapshot()
            if now == last and await asyncio.to_thread(self._caught_up):
                return now
            if time.monotonic() > deadline:
                return now  # a busy stack: the next check may find background writes
            last = now

    @staticmethod
    def diff(a: Snapshot, b: Snapshot) -> list[str]:
        keys = sorted(set(a[0]) | set(b[0]))
        out = [
            f"{k} {a[0].get(k, (0, ''))[0]}->{b[0].get(k, (0, ''))[0]} docs"
            for k in keys
            if a[0].get(k) != b[0].get(k)
        ]
        out += [
            f"{k} end {a[1].get(k, 0)}->{b[1].get(k, 0)}"
            for k in sorted(set(a[1]) | set(b[1]))
            if a[1].get(k) != b[1].get(k)
        ]
        return out

    async def _alone(self, o: Outcome, report: Report) -> None:
        """Send a refused request again on its own: did it write?"""
        for attempt in (1, 2):
            before = await self.quiet()
            again = await self.send(o.shot)
            if again.code == "OK":
                return  # accepted now (the state moved on): nothing to learn
            after = await self.snapshot()
            if after == before:
                return
            if attempt == 2:
                report.wrote_when_refused += 1
                report.fail("wrote", again, "; ".join(self.diff(before, after))[:300])

    # ---- the campaign ----------------------------------------------------------------------

    async def run(
        self,
        shots: Sequence[Shot],
        round_size: int = 25,
        concurrency: int = 8,
        check_store: bool = True,
    ) -> Report:
        report = Report()
        t0 = time.monotonic()
        before_internal = await self._server_internal()
        base = await self.quiet() if check_store else None
        for i in range(0, len(shots), round_size):
            outcomes = await self._send_all(shots[i : i + round_size], concurrency)
            for o in outcomes:
                self.judge(o, report)
            refused = [o for o in outcomes if o.code != "OK"]
            report.rounds += 1
            report.refusals += len(refused)
            if base is None:
                continue
            wrote = any(o.code == "OK" and not read_only(o.shot.method) for o in outcomes)
            if wrote:
                base = await self.quiet()
                continue
            after = await self.snapshot()
            if after != base:
                for o in refused:
                    report.rechecked += 1
                    await self._alone(o, report)
                after = await self.quiet()
            report.rounds_checked += 1
            report.refusals_checked += len(refused)
            report.reads_checked += len(outcomes) - len(refused)
            base = after
        report.internal_on_servers = await self._server_internal() - before_internal
        report.crashed = await self.crashed()
        report.seconds = time.monotonic() - t0
        return report

    async def _server_internal(self) -> float:
        """INTERNAL as the services count it (xinfang_grpc_requests_total)."""

        def read(port: int) -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("xinfang_grpc_requests_total{") and 'code="INTERNAL"' in line
            )

        total = 0.0
        for s in self.channels:
            total += await asyncio.to_thread(read, self.settings.ports(s)[1])
        return total

    async def crashed(self) -> list[str]:
        """Services that stopped answering health checks, or whose process died."""
        out = []
        for s, ch in self.channels.items():
            try:
                h = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
                if h.status != health_pb2.HealthCheckResponse.SERVING:
                    out.append(f"{s}(not serving)")
            except grpc.aio.AioRpcError as e:
                out.append(f"{s}({e.code().name})")
        for pf in self.pid_files:
            if not await asyncio.to_thread(_alive, pf):
                out.append(f"{pf}(process gone)")
        return out


def _alive(pid_file: str) -> bool:
    """The process of a pid file runs (a zombie is dead)."""
    try:
        pid = int(Path(pid_file).read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ValueError):
        return False
    return state != "Z"
