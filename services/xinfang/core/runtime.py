"""One process of a service: its settings, store, Kafka, gRPC and metrics.

A service supplies a ``ServiceSpec`` (what it serves and what it consumes);
``run`` wires the rest. Consumers run as faust-streaming agents: faust owns the
consumer group, partition assignment and offset commits, while every message
goes, in a bounded batch, through ``Runtime.process_batch``, which
deduplicates (via the handler's idempotent writes, ``core.batch``), retries
transient store errors and dead-letters anything else, so an exception never
silently acknowledges a message. A case whose event was dead-lettered has its
later events parked until that event is applied (``core.parking``), so they
are never applied out of order.

Start order matters after a crash. The runtime (store, producer, gRPC,
metrics) starts before faust's app, so a service answers commands and health
checks while its consumer is still joining the group, which after a SIGKILL
can take up to the broker's session timeout (see ``_Worker``). Events still
wait for the runtime: ``Runtime.process_batch`` awaits ``ready``.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import mode.loop
from faust.transport.drivers import aiokafka as faust_aiokafka
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import Authenticator
from xinfang.core.batch import CaseBlocked, OwnedDocs
from xinfang.core.codec import DecodeFailed, decode_event, payload_name
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.errors import NotFound
from xinfang.core.grpc_server import GrpcServer
from xinfang.core.kafka import DeadLetters, make_producer
from xinfang.core.lease import Lease
from xinfang.core.logging import configure, get_logger
from xinfang.core.metrics import (
    CONSUMER_EVENTS,
    CONSUMER_LAG,
    CONSUMER_LAST_OFFSET,
    CONSUMER_LAST_PROCESSED,
    serve_metrics,
)
from xinfang.core.mongo import TRANSIENT_ERRORS, Doc, Position, connect
from xinfang.core.outbox import Outbox, kafka_publisher
from xinfang.core.parking import Gate, Parking, Role
from xinfang.core.store import MongoStore

__all__ = ["BatchHandler", "Runtime", "ServiceSpec", "run"]

log = get_logger(__name__)

# A batch handler applies events in the order given (each partition's in its
# order) and returns per event "applied", "duplicate" or "ignored", or the
# error that makes it a dead letter; a transient store error raised from it
# has the runtime retry the whole batch (core.batch.BatchConsumer is one).
BatchHandler = Callable[[Sequence[tuple[ev.CaseEvent, Position]]], Awaitable[list[str | Exception]]]


@dataclass(frozen=True)
class Message:
    """One record of the case-events topic, as the consumer read it."""

    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass
class ServiceSpec:
    name: str
    consumes: bool
    # Called once inside the running loop; registers gRPC servicers on
    # rt.grpc and returns the event handler (None for a service that
    # consumes nothing)
    setup: Callable[[Runtime], Awaitable[BatchHandler | None]]


class Runtime:
    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.service = spec.name
        self.grpc_port, self.metrics_port = settings.ports(spec.name)
        self._grpc: GrpcServer | None = None
        self.mongo: AsyncMongoClient[Doc] | None = None
        self._outbox: Outbox | None = None
        self._stop = asyncio.Event()
        self.dead_letters: DeadLetters | None = None
        self.handler: BatchHandler | None = None
        self.parking: Parking | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self._owned: list[OwnedDocs] = []

    def owned_docs(self) -> OwnedDocs | None:
        """A cache of the documents this process's consumer alone writes,
        dropped whenever partitions are revoked or assigned (None: caching
        is off)."""
        if self.settings.owned_cache_docs <= 0:
            return None
        owned = OwnedDocs(max_docs=self.settings.owned_cache_docs)
        self._owned.append(owned)
        return owned

    def drop_owned(self) -> None:
        """The partitions moved: what another replica may write next is not ours."""
        for owned in self._owned:
            owned.drop()

    @property
    def grpc(self) -> GrpcServer:
        assert self._grpc is not None, "runtime not started"
        return self._grpc

    @property
    def outbox(self) -> Outbox:
        assert self._outbox is not None, "runtime not started"
        return self._outbox

    @property
    def db(self) -> AsyncDatabase[Doc]:
        assert self.mongo is not None, "runtime not started"
        return self.mongo[self.settings.db_name(self.service)]

    def database(self, name: str) -> AsyncDatabase[Doc]:
        assert self.mongo is not None, "runtime not started"
        return self.mongo[f"{self.settings.mongo_db_prefix}_{name}"]

    async def start(self) -> None:
        # grpc.aio binds to the loop it is created in: create it here, not in __init__
        self._grpc = GrpcServer(
            self.settings.grpc_host,
            self.grpc_port,
            Authenticator.from_settings(self.settings),
            max_receive_bytes=self.settings.grpc_max_receive_bytes(self.service),
        )
        self.mongo = connect(self.settings.mongo_uri, f"xinfang-{self.service}")
        await self.mongo.admin.command("ping")
        self.producer = make_producer(self.settings, f"xinfang-{self.service}")
        await self.producer.start()
        self.dead_letters = DeadLetters(
            self.service, self.producer, self.settings.dead_letter_topic
        )
        self.store = MongoStore(
            self.db,
            self.service,
            trace=Path(self.settings.store_trace) / f"{self.service}.bson"
            if self.settings.store_trace
            else None,
        )
        self._outbox = Outbox(
            self.store,
            kafka_publisher(self.producer, self.settings.case_events_topic),
            self.service,
        )
        self.parking = Parking(self.service, self.db["parked"], self._publish_case_event)
        if self.spec.consumes:
            await self.parking.refresh()
        self.directory = Directory(self.database("directory"))
        self.handler = await self.spec.setup(self)
        # the sweeper runs in one replica at a time; every replica deletes
        # the pointers of what it published itself
        self.spawn(
            self._outbox.run(
                Lease(self.store, "outbox-sweeper"), self.settings.outbox_poll_seconds, self._stop
            ),
            "outbox",
        )
        if self.spec.consumes:
            self.spawn(self._refresh_parking(), "parking-refresh")
        await self.grpc.start()
        serve_metrics(self.metrics_port, self.settings.grpc_host)
        self.ready.set()
        log.info("service started", metrics_port=self.metrics_port)

    async def stop(self) -> None:
        await self.grpc.stop()
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.producer.stop()
        if self.mongo is not None:
            self.store.close()
            await self.mongo.close()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background loop for the life of the process; cancelled on stop."""
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _refresh_parking(self) -> None:
        """Another replica's parked cases reach this one's knowledge within
        seconds (a rebalance may hand their partitions over)."""
        assert self.parking is not None
        while True:
            await asyncio.sleep(5)
            try:
                await self.parking.refresh()
            except Exception:
                log.exception("parking refresh failed")

    async def _publish_case_event(
        self, value: bytes | None, key: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Parking sends a released case's parked events back through the
        case-events topic (see core.parking); retried until Kafka has it."""
        delay = 0.5
        while True:
            try:
                await self.producer.send_and_wait(
                    self.settings.case_events_topic, value=value, key=key, headers=list(headers)
                )
                return
            except Exception as e:
                log.error("unparked event send failed, retrying", error=str(e))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def process_batch(self, msgs: Sequence[Message]) -> list[str]:
        """Handle a batch of messages from the case-events topic; never raises.
        Returns once every message is applied, a duplicate, ignored or
        dead-lettered: only then may its offset be committed."""
        await self.ready.wait()
        assert self.handler is not None and self.dead_letters is not None
        assert self.parking is not None
        outcomes = ["dead_letter"] * len(msgs)
        payloads = ["unknown"] * len(msgs)
        events: list[ev.CaseEvent | None] = []
        for i, m in enumerate(msgs):
            try:
                event = decode_event(m.value)
            except DecodeFailed as e:
                events.append(None)
                await self._dead_letter(m, e)
                continue
            events.append(event)
            payloads[i] = payload_name(event)
        start = 0
        while start < len(msgs):
            start = await self._process_run(msgs, events, start, outcomes)
        for i, m in enumerate(msgs):
            CONSUMER_EVENTS.labels(self.service, payloads[i], outcomes[i]).inc()
            CONSUMER_LAST_OFFSET.labels(self.service, str(m.partition)).set(m.offset)
        CONSUMER_LAST_PROCESSED.labels(self.service).set(time.time())
        return outcomes

    async def _process_run(
        self,
        msgs: Sequence[Message],
        events: Sequence[ev.CaseEvent | None],
        start: int,
        outcomes: list[str],
    ) -> int:
        """Handle ``msgs[start:]`` up to the first event of a case whose
        parking state an earlier event of the run changes when applied (the
        blocked event back, or the head of a releasing queue): parking is
        asked before the handler runs, so that event is asked in the next
        run, once the state has moved. Asked too early, the next parked
        event's copy was taken for one not yet due and dropped. Returns
        where the next run starts."""
        assert self.parking is not None
        items: list[tuple[ev.CaseEvent, Position]] = []
        gates: list[Gate] = []
        where: list[int] = []
        moving: set[str] = set()  # cases whose parking state this run changes
        end = start
        for i in range(start, len(msgs)):
            event, m = events[i], msgs[i]
            if event is not None and event.case_id in moving:
                break
            end = i + 1
            if event is None:
                continue  # dead-lettered as undecodable
            pos = Position(m.partition, m.offset)
            # a case with a dead-lettered event waits for it (core.parking)
            gate = await self.parking.admit(event, m.value, m.key, pos)
            if gate.parked:
                outcomes[i] = "parked"
                continue
            if gate.role is not Role.FREE:
                moving.add(event.case_id)
            items.append((event, pos))
            gates.append(gate)
            where.append(i)
        results = await self._retrying(items)
        for i, (event, pos), gate, result in zip(where, items, gates, results, strict=True):
            m = msgs[i]
            r = result
            if isinstance(r, CaseBlocked):  # behind an event of this batch that failed
                if (await self.parking.admit(event, m.value, m.key, pos)).parked:
                    outcomes[i] = "parked"
                    continue
                r = RuntimeError("an earlier event of the case failed in the same batch")
            if isinstance(r, Exception):
                log.error(
                    "cannot handle event",
                    event_id=event.event_id,
                    case_id=event.case_id,
                    district_id=event.district_id,
                    error_type=type(r).__name__,
                    error=str(r)[:300],
                )
                letter = await self._dead_letter(m, r, event)
                await self.parking.dead_lettered(event, letter, gate)
                continue
            await self.parking.applied(event, gate)
            outcomes[i] = r
            if r == "applied":
                CONSUMER_LAG.labels(self.service).observe(
                    max(0.0, time.time() - event.recorded_at.ToNanoseconds() / 1e9)
                )
        return end

    async def _retrying(self, items: list[tuple[ev.CaseEvent, Position]]) -> list[str | Exception]:
        """The handler's results for ``items``, retrying while the store is away.
        An event of a district this deployment does not know is processed
        nowhere: it is dead-lettered (NotFound) by every consumer."""
        assert self.handler is not None
        delay = 0.2
        while True:
            try:
                known: list[tuple[ev.CaseEvent, Position]] = []
                unknown: dict[int, Exception] = {}
                for j, (event, pos) in enumerate(items):
                    try:
                        await self.directory.get(event.district_id)
                        known.append((event, pos))
                    except NotFound as e:
                        unknown[j] = e
                results = iter(await self.handler(known) if known else [])
                return [unknown[j] if j in unknown else next(results) for j in range(len(items))]
            except TRANSIENT_ERRORS as e:
                log.warning("store unavailable, retrying", error=str(e), events=len(items))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _dead_letter(
        self, m: Message, error: BaseException, event: ev.CaseEvent | None = None
    ) -> str:
        """Send ``m`` to the dead-letter topic; returns the dead letter's id."""
        assert self.dead_letters is not None
        return await self.dead_letters.send(
            value=m.value,
            key=m.key,
            source_topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            error=error,
            event=event,
        )


def _tune_fetch(max_wait_ms: int, min_bytes: int) -> None:
    """faust-streaming builds its aiokafka consumer with a fetch wait of
    1.5 s and a minimum of 1 byte, and offers no setting for either (see
    ``Settings.consumer_fetch_max_wait_ms``). The consumer it builds is given
    these before it starts: aiokafka hands them to its fetcher on start."""
    cls = faust_aiokafka.AIOKafkaConsumerThread
    build = getattr(cls, "_xinfang_build", cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = build(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer._fetch_min_bytes = min_bytes
        return consumer

    cls._xinfang_build = build  # type: ignore[attr-defined]  # faust's own, for the next call
    cls._create_worker_consumer = create  # type: ignore[method-assign]


def _faust_app(rt: Runtime) -> Any:
    s = rt.settings
    _tune_fetch(s.consumer_fetch_max_wait_ms, s.consumer_fetch_min_bytes)
    datadir = Path(s.state_dir) / "faust" / rt.service
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"xinfang-{rt.service}",
        broker=[f"kafka://{b}" for b in s.kafka_bootstrap.split(",")],
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=500,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=1000,
        producer_acks=-1,
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        # A crashed member stays in the group, holding its partitions, until the
        # broker has heard no heartbeat for the session timeout; a restarted
        # consumer's join waits that long (faust's default of 60 s was most of
        # the minute a restart took). Heartbeats go at a third of it.
        broker_session_timeout=s.kafka_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, s.kafka_session_timeout_seconds / 3),
    )
    topic = app.topic(
        s.case_events_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=s.partitions,
        internal=False,
    )

    async def consume(stream: Any) -> None:
        # faust acks (and so commits) a batch's events only after this body
        # has handled the batch and asks for the next one
        async for events in stream.take_events(s.consumer_batch_max, s.consumer_batch_seconds):
            await rt.process_batch(
                [
                    Message(m.value, m.key, m.topic, m.partition, m.offset)
                    for m in (e.message for e in events)
                ]
            )

    app.agent(topic, name=f"xinfang-{rt.service}-case-events", concurrency=1)(consume)

    def rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        rt.drop_owned()

    app.on_partitions_revoked.connect(rebalanced)
    app.on_partitions_assigned.connect(rebalanced)
    return app


def _use_loop(name: str) -> None:
    """Called before any loop exists: faust's worker and ``asyncio.run``
    make theirs from the policy this sets."""
    if name == "uvloop":
        mode.loop.use("uvloop")


def _tune_gc(young_threshold: int) -> None:
    """The heap a service has once started (its libraries' modules, classes,
    protobuf descriptors) lives as long as the process: frozen, the cyclic
    collector no longer walks it. And a consumer's cache of the documents it
    owns (``OwnedDocs``) is tens of thousands of dicts the collector walked
    again at every full collection: with CPython's default of a collection
    every 700 allocations, supervision spent 1.7 of its 11.8 CPU-seconds of a
    benchmark in the collector. Collected every ``young_threshold``
    allocations, and the start-up heap frozen, 0.2. Cycles are still
    collected, only less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


def run(spec: ServiceSpec, settings: Settings | None = None) -> None:
    """Entry point of a service process: blocks until SIGINT/SIGTERM."""
    settings = settings or Settings()
    configure(spec.name, settings.log_level, settings.log_json)
    _use_loop(settings.event_loop)
    rt = Runtime(spec, settings)
    _tune_gc(settings.gc_young_threshold)
    if not spec.consumes:
        asyncio.run(_serve_plain(rt))
        return
    app = _faust_app(rt)

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def _stop(app: Any, **kwargs: Any) -> None:
        if rt.ready.is_set():
            await rt.stop()

    worker = _Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    worker.runtime = rt
    worker.execute_from_commandline()


class _Worker(faust.Worker):
    """A faust worker that starts the runtime before the app.

    faust starts ``app.task``s only once the app has started, and the app
    waits for its consumer's first partition assignment (table recovery)
    before that. After a SIGKILL the broker keeps the dead member in the group
    until its session timeout expires, so a runtime started as an app task
    answered gRPC only after about a minute. Here it starts in the worker's
    ``on_start``, which runs before the worker starts its children (the app,
    whose consumer then joins the group): gRPC, health and metrics are up at
    once, commands work meanwhile (they write the store and the outbox, which
    the runtime's own producer relays), and the consumer's messages still
    wait in ``Runtime.process_batch`` for ``ready``. A runtime that cannot start
    (store or broker unreachable) fails the worker, so the process exits.
    """

    runtime: Runtime

    async def on_start(self) -> None:
        await super().on_start()
        await self.runtime.start()


async def _serve_plain(rt: Runtime) -> None:
    """A service that consumes nothing (intake) needs no faust worker."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await rt.start()
    await stop.wait()
    await rt.stop()
