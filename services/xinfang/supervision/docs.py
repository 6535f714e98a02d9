"""Supervision's documents: collection names, the handles every part of
the service uses, and the ids of its tally documents. No logic."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import DEFAULT_PARTITIONS
from xinfang.core.directory import Directory
from xinfang.core.mongo import Collection
from xinfang.core.outbox import Outbox
from xinfang.supervision.clocks import limit_name

NOTICES = "notices"  # the scanner's recorded warnings, breaches and orders
CLOCKS = "clocks"  # one per case and clock kind
CASES = "cases"  # per case: who answers for it, and which events it has seen
STATS = "clock_stats"  # per district (and unit) and clock kind: counters
TALLIES = "tallies"  # per unit or leader and month: counters for scores
BUCKETS = "due_buckets"  # per day: the clocks due (or to be warned) that day
RECHECKS = "rechecks"  # clocks indexed under a day the scanner has passed


class Documents:
    """The service's collections: the queries and metrics read them through
    the driver; the consumer, the scanner and re-evaluation go through the
    store port (``core.store``)."""

    def __init__(
        self,
        rt_db: Any,
        outbox: Outbox,
        directory: Directory,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        # the shards of the counters and due buckets (core.shards)
        self.partitions = partitions
        self.clocks: Collection = rt_db[CLOCKS]
        self.stats: Collection = rt_db[STATS]
        self.cases: Collection = rt_db[CASES]
        self.buckets: Collection = rt_db[BUCKETS]
        self.meta: Collection = rt_db["meta"]
        self.rechecks: Collection = rt_db[RECHECKS]
        self.tallies: Collection = rt_db[TALLIES]
        self.rankings: Collection = rt_db["rankings"]
        self.outbox = outbox
        self.store = outbox.store  # the scanner's and re-evaluation's reads and writes
        self.directory = directory
        self.producer: AIOKafkaProducer | None = None
        self.rankings_topic = "xinfang.rankings.v1"


def stats_doc_id(district_id: str, clock: str, unit_id: str = "") -> str:
    """The tally document of a district's clocks of one kind, or of one unit's."""
    return f"{district_id}:{clock}:{unit_id}" if unit_id else f"{district_id}:{clock}"


def stats_limit(kind: int) -> str:
    return limit_name(kind, ev.TIER_TOWNSHIP) if kind == ev.CLOCK_KIND_TIER else limit_name(kind)


def unset_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, str]:
    return {k: "" for k in (old or {}) if not k.startswith("_") and k not in new}
