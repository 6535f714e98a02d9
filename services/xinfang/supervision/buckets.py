"""Day buckets of clock ids, kept in small pages.

The scanner finds what falls due on a day by reading that day's bucket, and
re-evaluation reads the buckets around today. A bucket used to be one list
per day (and partition) that every batch added to. FerretDB rewrites a whole
document for every update, so that list grew into the store's most costly
write: an ``$addToSet`` on a bucket of 1,500 ids took 20 to 30 ms of the
server's CPU, and in a burst of 3,000 cases the buckets took a third of it
(README "FerretDB, and why every lookup is by ``_id``").

So each partition's shard of a bucket (``core.shards``) is a head, which
lists its pages, and pages of ids. An event's clocks go to the page of its
offset (``PAGE_OFFSETS`` consecutive offsets of the partition share one), so
a page stays small, and a redelivered event goes to the page it went to
before: both writes are set unions, and a repeat changes nothing. The page
is written before the head (``Batch.also`` keeps that order), so a page a
head names is there. A head's own ``ids`` (the single list of before) are
read too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from xinfang.core.batch import Batch
from xinfang.core.mongo import Doc, Position
from xinfang.core.shards import shard_id, shard_ids
from xinfang.supervision.docs import BUCKETS

# reads documents of a collection by _id (the store's ``get_many``, or the
# scanner's chunked reads of it)
GetMany = Callable[[str, Sequence[str]], Awaitable[dict[str, Doc]]]

__all__ = ["PAGE_OFFSETS", "index", "page_id", "read"]

# consecutive offsets of a partition whose clocks share a page: a burst's
# registrations put at most ~64 ids in a day's page
PAGE_OFFSETS = 128


def page_id(head: str, page: int) -> str:
    return f"{head}#{page}"


def index(b: Batch, bucket: str, day: str, clock_id: str, pos: Position) -> None:
    """Put a clock under a day's bucket, in the page of the event's offset."""
    head = shard_id(f"{bucket}:{day}", pos.partition)
    page = pos.offset // PAGE_OFFSETS
    b.also(BUCKETS, page_id(head, page), {"$addToSet": {"ids": clock_id}})
    b.also(BUCKETS, head, {"$addToSet": {"pages": page}})


async def read(get_many: GetMany, ids: Sequence[str], partitions: int) -> dict[str, list[str]]:
    """The clock ids of each bucket among ``ids`` that has any (every
    partition's head, then the pages the heads name), by bucket id."""
    heads: dict[str, str] = {s: i for i in dict.fromkeys(ids) for s in shard_ids(i, partitions)}
    got = await get_many(BUCKETS, list(heads))
    out: dict[str, list[str]] = {}
    pages: dict[str, str] = {}
    for head, bucket_id in heads.items():  # in partition order, as the shards' merge
        doc = got.get(head)
        if doc is None:
            continue
        out.setdefault(bucket_id, []).extend(str(x) for x in doc.get("ids") or ())
        for p in sorted(int(x) for x in doc.get("pages") or ()):
            pages[page_id(head, p)] = bucket_id
    got = await get_many(BUCKETS, list(pages))
    for pid, bucket_id in pages.items():
        out.setdefault(bucket_id, []).extend(str(x) for x in (got.get(pid) or {}).get("ids") or ())
    return {i: list(dict.fromkeys(v)) for i, v in out.items() if v}
