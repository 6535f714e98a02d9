"""One process of a service: its settings, store, Kafka, gRPC and metrics.

A service supplies a ``ServiceSpec`` (what it serves and what it consumes);
``run`` wires the rest. Consumers run as faust-streaming agents: faust owns the
consumer group, partition assignment and offset commits, while every message
goes through ``Runtime.process``, which deduplicates (via the handler's
idempotent writes), retries transient store errors and dead-letters anything
else, so an exception never silently acknowledges a message.

Start order matters after a crash. The runtime (store, producer, gRPC,
metrics) starts before faust's app, so a service answers commands and health
checks while its consumer is still joining the group, which after a SIGKILL
can take up to the broker's session timeout (see ``_Worker``). Events still
wait for the runtime: ``Runtime.process`` awaits ``ready``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import Authenticator
from xinfang.core.codec import DecodeFailed, decode_event, payload_name
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.grpc_server import GrpcServer
from xinfang.core.kafka import DeadLetters, make_producer
from xinfang.core.logging import configure, get_logger
from xinfang.core.metrics import (
    CONSUMER_EVENTS,
    CONSUMER_LAG,
    CONSUMER_LAST_OFFSET,
    CONSUMER_LAST_PROCESSED,
    serve_metrics,
)
from xinfang.core.mongo import TRANSIENT_ERRORS, Collection, Doc, Position, connect
from xinfang.core.outbox import Outbox, OutboxRelay

__all__ = ["Handler", "Runtime", "ServiceSpec", "run"]

log = get_logger(__name__)

# A handler applies one event idempotently and says what happened:
# "applied", "duplicate" or "ignored".
Handler = Callable[[ev.CaseEvent, Position], Awaitable[str]]


@dataclass
class ServiceSpec:
    name: str
    consumes: bool
    # Called once inside the running loop; registers gRPC servicers on
    # rt.grpc, may set rt.relay collections, and returns the event handler
    # (None for a service that consumes nothing).
    setup: Callable[[Runtime], Awaitable[Handler | None]]
    outbox_collections: Callable[[Runtime], Sequence[Collection]] = lambda rt: ()


class Runtime:
    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.service = spec.name
        self.grpc_port, self.metrics_port = settings.ports(spec.name)
        self._grpc: GrpcServer | None = None
        self.mongo: AsyncMongoClient[Doc] | None = None
        self.relay: OutboxRelay | None = None
        self._outbox: Outbox | None = None
        self.dead_letters: DeadLetters | None = None
        self.handler: Handler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

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
            self.settings.grpc_host, self.grpc_port, Authenticator(self.settings.auth_key_bytes)
        )
        self.mongo = connect(self.settings.mongo_uri, f"xinfang-{self.service}")
        await self.mongo.admin.command("ping")
        self.producer = make_producer(self.settings, f"xinfang-{self.service}")
        await self.producer.start()
        self.dead_letters = DeadLetters(
            self.service, self.producer, self.settings.dead_letter_topic
        )
        self._outbox = Outbox(self.db)
        self.directory = Directory(self.database("directory"))
        self.handler = await self.spec.setup(self)
        colls = self.spec.outbox_collections(self)
        if colls:
            self.relay = OutboxRelay(
                self.service,
                self.producer,
                self.settings.case_events_topic,
                self._outbox,
                colls,
                poll_seconds=self.settings.outbox_poll_seconds,
            )
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        await self.grpc.start()
        serve_metrics(self.metrics_port, self.settings.grpc_host)
        self.ready.set()
        log.info("service started", metrics_port=self.metrics_port)

    async def stop(self) -> None:
        await self.grpc.stop()
        if self.relay:
            self.relay.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.producer.stop()
        if self.mongo is not None:
            await self.mongo.close()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background loop for the life of the process; cancelled on stop."""
        self._tasks.append(asyncio.create_task(coro, name=name))

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    async def process(
        self, value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
    ) -> str:
        """Handle one message from the case-events topic; never raises."""
        await self.ready.wait()
        assert self.handler is not None and self.dead_letters is not None
        payload = "unknown"
        try:
            event = decode_event(value)
            payload = payload_name(event)
        except DecodeFailed as e:
            await self.dead_letters.send(
                value=value,
                key=key,
                source_topic=topic,
                partition=partition,
                offset=offset,
                error=e,
            )
            outcome = "dead_letter"
        else:
            outcome = await self._handle(event, value, key, topic, Position(partition, offset))
            if outcome == "applied":
                CONSUMER_LAG.labels(self.service).observe(
                    max(0.0, time.time() - event.recorded_at.ToNanoseconds() / 1e9)
                )
        CONSUMER_EVENTS.labels(self.service, payload, outcome).inc()
        CONSUMER_LAST_OFFSET.labels(self.service, str(partition)).set(offset)
        CONSUMER_LAST_PROCESSED.labels(self.service).set(time.time())
        return outcome

    async def _handle(
        self,
        event: ev.CaseEvent,
        value: bytes | None,
        key: bytes | None,
        topic: str,
        pos: Position,
    ) -> str:
        assert self.handler is not None and self.dead_letters is not None
        delay = 0.2
        while True:
            try:
                # an event of a district this deployment does not know is not
                # processed anywhere: it is dead-lettered (NotFound) by every consumer
                await self.directory.get(event.district_id)
                return await self.handler(event, pos)
            except TRANSIENT_ERRORS as e:
                log.warning("store unavailable, retrying", error=str(e), event_id=event.event_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception as e:
                log.exception(
                    "cannot handle event",
                    event_id=event.event_id,
                    case_id=event.case_id,
                    district_id=event.district_id,
                )
                await self.dead_letters.send(
                    value=value,
                    key=key,
                    source_topic=topic,
                    partition=pos.partition,
                    offset=pos.offset,
                    error=e,
                )
                return "dead_letter"


def _faust_app(rt: Runtime) -> Any:
    s = rt.settings
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
        async for event in stream.events():
            m = event.message
            await rt.process(m.value, m.key, m.topic, m.partition, m.offset)

    app.agent(topic, name=f"xinfang-{rt.service}-case-events", concurrency=1)(consume)
    return app


def run(spec: ServiceSpec, settings: Settings | None = None) -> None:
    """Entry point of a service process: blocks until SIGINT/SIGTERM."""
    settings = settings or Settings()
    configure(spec.name, settings.log_level, settings.log_json)
    rt = Runtime(spec, settings)
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
    wait in ``Runtime.process`` for ``ready``. A runtime that cannot start
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
