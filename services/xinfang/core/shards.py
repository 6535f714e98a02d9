"""Shared documents, split by the partition whose events write them.

A district's monthly figures, a unit's clock tallies, the clocks due on a
day: events of every partition move them. With one replica of a service one
process writes such a document; with two, two processes update it at once,
and FerretDB applies an update as read, change, write back, with no lock
between: one of two concurrent updates to a document is lost
(``scripts/ferretdb_race.py``; README "The store"). A compare-and-set does
not help, for the same reason.

So each partition's events write a shard of their own, ``<id>@<partition>``.
A partition has one consumer at a time, so every shard has one writer, on
FerretDB as on MongoDB, however many replicas run, and a partition's
watermark (``core.batch``) sits in the one shard it guards. A read takes
every shard of a document and adds them up (``merge``): the partitions are
few (``Settings.partitions``, checked against the topic at start), and reads
of figures are rare beside the writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xinfang.core.mongo import Doc
from xinfang.core.store import Store

__all__ = ["META", "base_id", "merge", "merge_all", "read", "shard_id", "shard_ids"]

SEP = "@"
# the fields a shard was created with (``$setOnInsert``: a district, a month,
# a limit): named in each shard, so ``merge`` takes them as they are instead
# of adding them up
META = "_meta"


def shard_id(doc_id: str, partition: int) -> str:
    return f"{doc_id}{SEP}{partition}"


def shard_ids(doc_id: str, partitions: int) -> list[str]:
    return [shard_id(doc_id, p) for p in range(partitions)]


def base_id(shard: str) -> str:
    """The document a shard is part of."""
    return _order(shard)[0]


def merge(shards: Iterable[Mapping[str, Any]]) -> Doc | None:
    """One document from its shards: numbers add up, sub-documents merge
    field by field, lists (a day's due clocks) are joined without repeats,
    and anything else (a name, a flag, a field of ``_meta``) is taken from
    the first shard that has it. Watermarks, being per partition, are left
    out. None when there are no shards."""
    out: Doc | None = None
    for s in shards:
        meta = set(s.get(META) or ())
        body = {k: v for k, v in s.items() if k not in ("_id", "_wm", META)}
        if out is None:
            out = {}
        _add(out, body, meta)
    return out


def _add(into: Doc, doc: Mapping[str, Any], keep: set[str]) -> None:
    for k, v in doc.items():
        have = into.get(k)
        if k not in into:
            into[k] = _copy(v)
        elif k in keep:
            continue
        elif isinstance(v, Mapping) and isinstance(have, dict):
            _add(have, v, set())
        elif isinstance(v, list) and isinstance(have, list):
            have.extend(x for x in v if x not in have)
        elif _number(v) and _number(have):
            into[k] = have + v


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _copy(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


async def read(store: Store, coll: str, ids: Sequence[str], partitions: int) -> dict[str, Doc]:
    """The documents among ``ids`` that have a shard, each merged, by id."""
    want = [s for i in dict.fromkeys(ids) for s in shard_ids(i, partitions)]
    got = await store.get_many(coll, want)
    return {d.pop("_id"): d for d in merge_all(got.values())}


def _order(shard: str) -> tuple[str, int]:
    head, sep, tail = shard.rpartition(SEP)
    return (head, int(tail)) if sep and tail.isdigit() else (shard, -1)


def merge_all(docs: Iterable[Mapping[str, Any]]) -> list[Doc]:
    """Documents read as shards, each document's shards merged (the lowest
    partition first), with its ``_id``: for a collection a reader scans
    whole (metrics) or the shards ``read`` fetched."""
    by_doc: dict[str, list[Mapping[str, Any]]] = {}
    for d in sorted(docs, key=lambda d: _order(str(d["_id"]))):
        by_doc.setdefault(base_id(str(d["_id"])), []).append(d)
    out = []
    for i, shards in by_doc.items():
        m = merge(shards)
        if m is not None:
            out.append({"_id": i, **m})
    return out
