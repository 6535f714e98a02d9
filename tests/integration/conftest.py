"""Fixtures for tests against the real local stack.

``scripts/test.sh`` starts Kafka, FerretDB and Prometheus (its own data and
ports) and the four services before pytest runs; these fixtures only connect.
A stack that is not there is an error, never a skip: these tests exist to
prove the real parts work together.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.consumer import KafkaConsumer
from kafka.structs import TopicPartition
from pymongo import AsyncMongoClient

from xinfang.core.auth import tool_channel
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc, connect
from xinfang.sample.generator import sample_district
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client = connect(settings.mongo_uri, "xinfang-tests")
    try:
        await client.admin.command("ping")
    except Exception as e:  # pragma: no cover - environment problem
        pytest.fail(
            f"no MongoDB-protocol server at {settings.mongo_uri}: run scripts/test.sh ({e})"
        )
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def district(settings: Settings, mongo: AsyncMongoClient[Doc]) -> dict[str, Any]:
    """A fresh district per test, so tests never see each other's figures."""
    doc = sample_district(seed=7, district_id=f"it-{uuid.uuid4().hex[:10]}")
    await Directory(mongo[f"{settings.mongo_db_prefix}_directory"]).put(doc)
    return doc


@pytest.fixture(scope="session")
async def intake_channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    # created inside the session's event loop: grpc.aio binds to it
    async with tool_channel(f"{settings.grpc_host}:{settings.intake_grpc}") as ch:
        yield ch


@pytest.fixture(scope="session")
async def reporting_channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    # created inside the session's event loop: grpc.aio binds to it
    async with tool_channel(f"{settings.grpc_host}:{settings.reporting_grpc}") as ch:
        yield ch


@pytest.fixture(scope="session")
async def assignment_channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    # created inside the session's event loop: grpc.aio binds to it
    async with tool_channel(f"{settings.grpc_host}:{settings.assignment_grpc}") as ch:
        yield ch


@pytest.fixture(scope="session")
async def supervision_channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    # created inside the session's event loop: grpc.aio binds to it
    async with tool_channel(f"{settings.grpc_host}:{settings.supervision_grpc}") as ch:
        yield ch


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], wait_s: float = 60.0
) -> T:
    """Poll until ``ok(probe())``; the system is asynchronous by design."""
    deadline = time.monotonic() + wait_s
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {wait_s}s; last value: {value!r}")
        await asyncio.sleep(0.25)


async def _http_get(url: str) -> bytes:
    """A GET off the event loop, so polling never stalls the test's gRPC calls."""

    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as r:
            body: bytes = r.read()
            return body

    return await asyncio.to_thread(get)


async def prometheus(settings: Settings, query: str) -> list[dict[str, Any]]:
    url = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    body = json.loads(await _http_get(url))
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def metric_value(settings: Settings, service: str, text_filter: str) -> float:
    """Sum of the samples of a service's own /metrics lines containing text_filter."""
    port = getattr(settings, f"{service}_metrics")
    lines = (await _http_get(f"http://127.0.0.1:{port}/metrics")).decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if not line.startswith("#") and text_filter in line
    )


async def read_topic(
    settings: Settings, topic: str, match: Callable[[Any], bool], want: int, wait_s: float = 60
) -> list[Any]:
    """Read a topic from the start until ``want`` records match."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: list[Any] = []
    deadline = time.monotonic() + wait_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend(r for r in records if match(r))
    finally:
        await consumer.stop()
    return found


async def consumers_caught_up(settings: Settings) -> bool:
    """Every service's consumer group has committed the case topic's end."""

    def check() -> bool:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        try:
            parts = consumer.partitions_for_topic(settings.case_events_topic) or set()
            tps = [TopicPartition(settings.case_events_topic, p) for p in parts]
            end = consumer.end_offsets(tps)
            groups = [f"xinfang-{s}" for s in ("assignment", "supervision", "reporting")]
            committed = admin.list_group_offsets(groups)
            return all(
                (done := committed.get(g, {}).get(tp)) is not None and done.offset >= end[tp]
                for g in groups
                for tp in tps
            )
        finally:
            consumer.close()
            admin.close()

    return await asyncio.to_thread(check)


async def clocks_of(ch: grpc.aio.Channel, district_id: str, case_id: str) -> dict[int, Any]:
    """A case's clocks by kind, as supervision serves them."""
    c = await sgrpc.SupervisionServiceStub(ch).GetCaseClocks(
        spb.GetCaseClocksRequest(district_id=district_id, case_id=case_id)
    )
    return {k.kind: k for k in c.clocks}
