"""Kafka for every service: topics, the idempotent producer and dead letters.

Topics are created explicitly with fixed partition counts (the local broker
refuses auto-creation): the case-events topic keeps its events forever so
read models can be rebuilt by replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import Settings
from xinfang.core.logging import get_logger
from xinfang.core.metrics import DEAD_LETTERS

__all__ = [
    "DeadLetters",
    "dead_letter_headers",
    "ensure_topics",
    "make_producer",
    "read_to_end",
    "topic_specs",
]

log = get_logger(__name__)

NINETY_DAYS_MS = str(90 * 24 * 3600 * 1000)
# a dead letter sent without its value, which was too large: the value's size
VALUE_OMITTED = "x-value-omitted"


def topic_specs(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        settings.case_events_topic: {
            "partitions": settings.partitions,
            "config": {"retention.ms": "-1", "retention.bytes": "-1"},
        },
        settings.dead_letter_topic: {
            "partitions": 1,
            "config": {"retention.ms": NINETY_DAYS_MS},
        },
        # monthly bulletins and quarterly rankings, keyed by district
        settings.rankings_topic: {"partitions": 1, "config": {"retention.ms": "-1"}},
    }


def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create missing topics; returns the names created. Existing topics with a
    different partition count are reported, not changed: repartitioning would
    break per-case ordering."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap, client_id="xinfang-admin"
            )
            break
        except (KafkaConnectionError, KafkaTimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        specs = topic_specs(settings)
        for name, spec in specs.items():
            if name in existing:
                parts = admin.describe_topics([name])[0]["partitions"]
                if len(parts) != spec["partitions"]:
                    log.warning(
                        "topic partition count differs",
                        topic=name,
                        have=len(parts),
                        want=spec["partitions"],
                    )
                continue
            try:
                admin.create_topics(
                    [NewTopic(name, spec["partitions"], 1, topic_configs=spec["config"])]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


async def read_to_end(
    settings: Settings,
    topic: str,
    client_id: str,
    *,
    max_poll_records: int = 2000,
    timeout_s: float | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[list[Any]]:
    """Every record a topic holds when the call starts, in batches, read
    without a consumer group (every partition is the reader's) and stopping
    at the end offsets of that moment: what a replay, a dead-letter listing
    or a benchmark reads. ``on_total`` is told how many records that is."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
    )
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            raise LookupError(f"topic {topic} does not exist: create the topics first")
        # aiokafka learns a topic's partitions once it tracks the topic:
        # assigning partition 0 (every topic has one) and asking its end does that
        tp0 = TopicPartition(topic, 0)
        consumer.assign([tp0])
        await consumer.end_offsets([tp0])
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        start = await consumer.beginning_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        if on_total is not None:
            on_total(sum(end[tp] - start[tp] for tp in tps))
        todo = {tp for tp in tps if end[tp] > start[tp]}
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while todo:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout_s:.0f} s")
            batch = await consumer.getmany(*todo, timeout_ms=500)
            records = [r for tp, recs in batch.items() for r in recs if r.offset < end[tp]]
            if records:
                yield records
            todo = {tp for tp in todo if await consumer.position(tp) < end[tp]}
    finally:
        await consumer.stop()


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """Idempotent, acks=all: a retried send never duplicates within a session,
    and nothing is acknowledged before the broker has it."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
    )


def dead_letter_headers(
    service: str,
    error: BaseException,
    source_topic: str,
    partition: int,
    offset: int,
    event: ev.CaseEvent | None = None,
) -> list[tuple[str, bytes]]:
    """What an operator filters and acts on (``xinfang dead-letters``): who
    gave up, why, where the message came from and, when the bytes decoded, the
    event's ids and payload type. Only envelope ids: an event carries no
    identity, and its content (the petition text) stays in the value."""
    headers = [
        ("x-service", service.encode()),
        ("x-error-type", type(error).__name__.encode()),
        ("x-error", str(error)[:2000].encode()),
        ("x-source-topic", source_topic.encode()),
        ("x-source-partition", str(partition).encode()),
        ("x-source-offset", str(offset).encode()),
    ]
    if event is not None:
        headers += [
            ("x-event-id", event.event_id.encode()),
            ("x-case-id", event.case_id.encode()),
            ("x-district-id", event.district_id.encode()),
            ("x-payload", (event.WhichOneof("payload") or "unknown").encode()),
        ]
    return headers


class DeadLetters:
    """Sends what a consumer cannot handle to the dead-letter topic, with why.

    It retries until Kafka takes the message: a dead letter is never dropped.
    """

    def __init__(self, service: str, producer: AIOKafkaProducer, topic: str) -> None:
        self.service = service
        self.producer = producer
        self.topic = topic

    async def send(
        self,
        *,
        value: bytes | None,
        key: bytes | None,
        source_topic: str,
        partition: int,
        offset: int,
        error: BaseException,
        event: ev.CaseEvent | None = None,
    ) -> str:
        """Returns the dead letter's id, ``<partition>:<offset>`` on the
        dead-letter topic: what ``xinfang dead-letters replay --id`` takes and
        what a parked case remembers it is waiting for."""
        headers = dead_letter_headers(self.service, error, source_topic, partition, offset, event)
        delay = 0.5
        while True:
            try:
                md = await self.producer.send_and_wait(
                    self.topic, value=value, key=key, headers=headers
                )
                break
            except MessageSizeTooLargeError:
                if value is None:
                    raise
                # the value and the headers are over the broker's limit (a
                # record the source topic took at its very limit): no retry
                # can send it, and retrying for ever would stall the
                # partition. The letter goes without the value, which stays
                # where the headers say it came from.
                log.error("dead letter too large: sent without its value", size=len(value))
                headers = [*headers, (VALUE_OMITTED, str(len(value)).encode())]
                value = None
            except Exception as e:
                log.error("dead-letter send failed, retrying", error=str(e))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        DEAD_LETTERS.labels(self.service).inc()
        dead_letter_id = f"{md.partition}:{md.offset}"
        log.warning(
            "dead-lettered",
            dead_letter_id=dead_letter_id,
            source_partition=partition,
            source_offset=offset,
            error_type=type(error).__name__,
            error=str(error)[:300],
        )
        return dead_letter_id
