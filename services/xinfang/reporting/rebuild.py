"""Rebuild reporting's read models by replaying the case log from the start.

Case events are kept forever on their topic, so the read models are
disposable: drop them (one district's, or all) and replay. Two ways:

* in place (the reporting service stopped, so nobody else writes): drop the
  projections and replay into them. When the service starts again it
  re-reads from its own committed offsets; what the replay already applied
  is recognised (event ids, positions) and not counted twice;
* ``into`` another database prefix, while the service keeps running: a
  fresh copy to compare with the live one (the test does), or to switch to.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient
from tqdm import tqdm

from xinfang.case.v1.events_pb2 import CaseEvent
from xinfang.core.batch import OwnedDocs
from xinfang.core.codec import DecodeFailed, decode_event
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.errors import NotFound
from xinfang.core.kafka import read_to_end
from xinfang.core.mongo import Position, connect
from xinfang.core.store import MongoStore
from xinfang.reporting.app import Reporting

__all__ = ["RebuildResult", "ServiceRunning", "rebuild"]

GROUP = "xinfang-reporting"  # faust's app id, the service's consumer group
# events applied as one batch: a case's events are spread over the log, and
# a batch writes each document it touched once, so the larger the batch the
# fewer writes per event (the documents of 20,000 events are tens of MB)
BATCH_EVENTS = 20_000


class ServiceRunning(RuntimeError):
    """An in-place rebuild while the service writes the same documents."""


@dataclass(frozen=True)
class RebuildResult:
    read: int  # records read from the log
    applied: int  # events applied to the rebuilt read models
    skipped: int  # records of other districts, or unusable (dead-lettered live)
    seconds: float

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


def _group_is_active(settings: Settings) -> bool:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="xinfang-rebuild"
    )
    try:
        groups = admin.describe_groups([GROUP])
    finally:
        admin.close()
    return bool((groups.get(GROUP) or {}).get("members"))


async def rebuild(
    settings: Settings,
    district_id: str | None = None,
    into_prefix: str | None = None,
    progress: bool = True,
    batch_events: int = BATCH_EVENTS,
) -> RebuildResult:
    if into_prefix is None and _group_is_active(settings):
        raise ServiceRunning(
            "the reporting service is running: stop it first (scripts/services.sh down), "
            "or rebuild --into a new database prefix"
        )
    t0 = time.perf_counter()
    client = connect(settings.mongo_uri, "xinfang-rebuild")
    try:
        db = client[f"{into_prefix or settings.mongo_db_prefix}_reporting"]
        if district_id is None:
            await client.drop_database(db.name)
        else:
            await db.drop_collection(f"cases_{district_id}")
            await db["counters"].delete_many({"district_id": district_id})
        directory = Directory(client[f"{settings.mongo_db_prefix}_directory"])
        # the live projection's own code, over batches of a replay's size. The
        # read models were dropped and nobody else writes them: every case
        # document is one this replay wrote, so it is kept, never read back
        consume = Reporting(db, directory).consumer(
            MongoStore(db, "rebuild"), OwnedDocs(complete=True)
        )
        bar = tqdm(unit="ev", disable=not progress, file=sys.stderr)

        def total(n: int) -> None:
            bar.total = n
            bar.refresh()

        read = applied = skipped = 0
        items: list[tuple[CaseEvent, Position]] = []

        async def apply() -> None:
            nonlocal applied, skipped
            for outcome in await consume(items) if items else []:
                if isinstance(outcome, NotFound):  # an unknown district: dead-lettered live
                    skipped += 1
                elif isinstance(outcome, Exception):
                    raise outcome
                else:
                    applied += 1
            items.clear()

        async for records in read_to_end(
            settings, settings.case_events_topic, "xinfang-rebuild", on_total=total
        ):
            for r in records:
                read += 1
                try:
                    event = decode_event(r.value)
                except DecodeFailed:
                    skipped += 1
                    continue
                if district_id is not None and event.district_id != district_id:
                    skipped += 1
                    continue
                items.append((event, Position(r.partition, r.offset)))
            bar.update(len(records))
            if len(items) >= batch_events:
                await apply()
        await apply()
        bar.close()
    finally:
        await client.close()
    return RebuildResult(read, applied, skipped, time.perf_counter() - t0)
