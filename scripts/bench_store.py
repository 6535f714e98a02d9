"""The store's own ceilings, measured in the same run as the pipeline.

Run by scripts/bench.sh after the pipeline, against the same FerretDB, so
"pipeline cases/s ÷ store ceiling" compares figures of one machine at one
time. Two figures:

* raw updates/s by ``_id``: one at a time, 16 at once, and in bulk_writes of
  99 (FerretDB 1.24 never answers a bulk_write of 100 or more). Each on a
  fresh collection of ``--docs`` documents of ``--doc-bytes`` bytes, after a
  warm-up of the same kind, each update one ``$set`` of one document;
* the pipeline's writes replayed: every write call the four services made
  in the burst (from its start until every consumer had finished), as they
  sent it (``XINFANG_STORE_TRACE``, ``core.store.
  WriteTrace``: the same inserts, updates by ``_id`` and deletes, the same
  documents, bulks and order), is sent again straight at the store, into
  scratch databases, one stream per service as the pipeline has them. The
  cases/s of that replay is the store's ceiling for the same writes: what
  the pipeline's cases/s would be if the services cost nothing. Reads are
  not replayed (they are not writes, and the pipeline makes them too), so
  the ceiling is generous and the ratio an honest floor;
* beside it, for reference, what every case left in the services'
  databases (documents per collection divided by cases, and each
  collection's mean document size) written once each, by ``_id``, in
  bulk_writes of at most 99 (one bulk in flight and four; the faster): the
  cases/s if each document were written once, which no pipeline that
  inserts and then updates can reach.

Uses the results file (``$XINFANG_BENCH_RESULTS``) for the pipeline's
cases and cases/s; without one, ``--cases`` and ``--cases-per-s`` say them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from bench_common import MAX_BULK, SERVICES, load_results, save_section
from xinfang.core.config import Settings
from xinfang.core.mongo import Collection, connect

SCRATCH_DB = "xinfang_benchstore"


def padded(doc_id: str, size: int, n: int = 0) -> dict[str, Any]:
    """A document of about ``size`` bytes of BSON: its id, a counter, padding."""
    base = {"_id": doc_id, "n": n, "pad": ""}
    pad = max(0, size - len(bson.encode(base)))
    return {"_id": doc_id, "n": n, "pad": "x" * pad}


def chunks(items: Sequence[Any], size: int = MAX_BULK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def fill(coll: Collection, ids: Sequence[str], size: int) -> None:
    for part in chunks(ids):
        await coll.insert_many([padded(i, size) for i in part], ordered=False)


# ---- raw updates by _id ----------------------------------------------------------------


async def updates_one(coll: Collection, ids: Sequence[str]) -> None:
    for n, doc_id in enumerate(ids):
        await coll.update_one({"_id": doc_id}, {"$set": {"n": n}})


async def updates_concurrent(coll: Collection, ids: Sequence[str], width: int = 16) -> None:
    it = iter(enumerate(ids))

    async def worker() -> None:
        for n, doc_id in it:  # shared iterator: each update is done once
            await coll.update_one({"_id": doc_id}, {"$set": {"n": n}})

    await asyncio.gather(*(worker() for _ in range(width)))


async def updates_bulk(coll: Collection, ids: Sequence[str]) -> None:
    for part in chunks(ids):
        await coll.bulk_write(
            [UpdateOne({"_id": i}, {"$set": {"n": n}}) for n, i in enumerate(part)],
            ordered=False,
        )


async def raw_rate(
    db: Any, name: str, mode: Any, docs: int, size: int, updates: int, warmup: int, seed: int
) -> float:
    """Updates/s of one mode on a fresh collection, after a warm-up."""
    coll: Collection = db[f"raw_{name}"]
    await coll.drop()
    ids = [f"doc-{i:06d}" for i in range(docs)]
    await fill(coll, ids, size)
    rng = random.Random(seed)
    await mode(coll, rng.choices(ids, k=warmup))
    order = rng.choices(ids, k=updates)
    t0 = time.perf_counter()
    await mode(coll, order)
    rate = updates / (time.perf_counter() - t0)
    await coll.drop()
    return rate


# ---- the pipeline's writes ---------------------------------------------------------------


@dataclass
class Written:
    db: str
    coll: str
    docs: int
    mean_bytes: float


async def inventory(client: Any, settings: Settings) -> list[Written]:
    """Every collection of the four services' databases: documents and their
    mean BSON size (read whole, once, after the run: the store scans anyway)."""
    raw = CodecOptions(document_class=RawBSONDocument)
    out = []
    for service in SERVICES:
        db = client[settings.db_name(service)]
        for name in sorted(await db.list_collection_names()):
            coll = db.get_collection(name, codec_options=raw)
            n = size = 0
            async for doc in coll.find({}, batch_size=1000):
                n += 1
                size += len(doc.raw)
            if n:
                out.append(Written(db.name, name, n, size / n))
    return out


async def replay(
    db: Any, written: list[Written], cases: int, replay_cases: int, width: int
) -> float:
    """Cases/s: ``replay_cases`` cases' share of every collection's documents,
    upserted by _id in bulks of ≤ 99, ``width`` bulks in flight."""
    work: list[tuple[Collection, list[Any]]] = []
    for w in written:
        coll: Collection = db[f"{w.db}__{w.coll}"]
        await coll.drop()
        m = round(w.docs * replay_cases / cases)
        ops = []
        for i in range(m):
            body = padded(f"r{i:07d}", round(w.mean_bytes))
            ops.append(UpdateOne({"_id": body.pop("_id")}, {"$set": body}, upsert=True))
        for part in chunks(ops):
            work.append((coll, list(part)))
    # the pipeline writes its collections side by side: interleave them
    random.Random(7).shuffle(work)
    it = iter(work)

    async def worker() -> None:
        for coll, ops in it:
            await coll.bulk_write(ops, ordered=False)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    seconds = time.perf_counter() - t0
    for w in written:
        await db[f"{w.db}__{w.coll}"].drop()
    return replay_cases / seconds


# ---- the pipeline's own writes, replayed ------------------------------------------------


def read_trace(path: Path, span: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """A service's write calls; with ``span`` (Unix times), those sent in it."""
    with path.open("rb") as f:
        calls = list(bson.decode_file_iter(f))
    if span is None:
        return calls
    return [c for c in calls if span[0] <= c.get("t", span[0]) <= span[1]]


async def replay_stream(db: Any, calls: Sequence[dict[str, Any]]) -> None:
    """One service's write calls in order, each one round trip as it was.
    A refused insert (a duplicate ``_id``: a claim lost, a retry) is refused
    again here, as it was in the run."""
    for c in calls:
        coll = db[c["coll"]]
        body = c["body"]
        if c["op"] == "insert":
            with contextlib.suppress(BulkWriteError):
                await coll.bulk_write([InsertOne(d) for d in body], ordered=False)
        elif c["op"] == "write":
            ops = [UpdateOne({"_id": u["_id"]}, u["u"], upsert=True) for u in body]
            await coll.bulk_write(ops, ordered=True)
        else:
            await coll.bulk_write([DeleteOne({"_id": i}) for i in body], ordered=False)


async def replay_traces(
    client: Any, folder: Path, span: Sequence[float] | None = None
) -> tuple[float, dict[str, int]]:
    """Seconds to replay every service's trace at once, one stream each,
    and calls per service. (More streams a service were tried: calls dealt
    round-robin lose their order, and FerretDB on SQLite, one writer at a
    time, took longer than the four streams did.)"""
    traces = {
        s: read_trace(folder / f"{s}.bson", span)
        for s in SERVICES
        if (folder / f"{s}.bson").exists()
    }
    dbs = {s: client[f"{SCRATCH_DB}_{s}"] for s in traces}
    for db in dbs.values():
        await client.drop_database(db.name)
    t0 = time.perf_counter()
    await asyncio.gather(*(replay_stream(dbs[s], c) for s, c in traces.items()))
    seconds = time.perf_counter() - t0
    for db in dbs.values():
        await client.drop_database(db.name)
    return seconds, {s: len(c) for s, c in traces.items()}


# ---- the run -----------------------------------------------------------------------------


async def run(a: argparse.Namespace) -> None:
    settings = Settings()
    client = connect(settings.mongo_uri, "xinfang-bench-store")
    await client.drop_database(SCRATCH_DB)
    db = client[SCRATCH_DB]
    figures: dict[str, Any] = {}
    print(
        f"store: raw updates by _id, {a.docs:,} documents of {a.doc_bytes} B, "
        f"{a.warmup:,} warm-up updates, then timed:"
    )
    modes = (
        ("one", updates_one, a.updates_one),
        ("c16", updates_concurrent, a.updates),
        ("bulk", updates_bulk, a.updates),
    )
    labels = {"one": "one at a time", "c16": "16 concurrent", "bulk": f"bulk_write of {MAX_BULK}"}
    for name, mode, updates in modes:
        rate = await raw_rate(db, name, mode, a.docs, a.doc_bytes, updates, a.warmup, a.seed)
        figures[f"{name}_per_s"] = rate
        print(f"  {labels[name]:<18} {rate:8,.0f} updates/s  ({updates:,} updates)")

    results = load_results()
    pipeline = results.get("pipeline", {})
    cases = a.cases or int(pipeline.get("total_cases", 0))
    cps = a.cases_per_s or pipeline.get("cases_per_s")
    if not cases:
        print("store: no pipeline cases known (--cases): no replay")
        save_section("store", figures)
        await client.drop_database(SCRATCH_DB)
        await client.close()
        return
    trace = Path(settings.store_trace) if settings.store_trace else None
    if trace is not None and trace.is_dir():
        # the burst's writes (its cases/s is what the ceiling is compared
        # with), not the steady phase's after it, whose bulks hold a case or
        # two because cases come one at a time: replayed flat out, those
        # give a lower "ceiling" per case than the burst's
        span = pipeline.get("burst_wall") if not a.cases else None
        if span and pipeline.get("trace_cases_per_s"):
            # replayed by bench.py right after the burst, on the machine as
            # the burst had it; a replay here, minutes later, would measure
            # another moment of this shared machine
            traced = float(pipeline["trace_cases_per_s"])
            print(
                f"the burst's write calls replayed straight at the store right after it "
                f"(bench.py): {traced:,.1f} cases/s"
            )
        else:
            replayed = int(pipeline.get("cases", 0)) if span else cases
            seconds, calls = await replay_traces(client, trace, span)
            traced = replayed / seconds
            which = "the burst's" if span else "the pipeline's"
            print(
                f"{which} write calls replayed straight at the store ({replayed:,} cases; "
                + ", ".join(f"{s} {n:,}" for s, n in calls.items())
                + f" calls), one stream per service: {seconds:.1f} s = {traced:,.1f} cases/s"
            )
            figures.update(trace_calls=calls, trace_seconds=seconds)
        figures.update(trace_cases_per_s=traced)
    else:
        traced = None
        print("store: no write trace (XINFANG_STORE_TRACE): the ceiling is the documents once")
    written = await inventory(client, settings)
    per_case = sum(w.docs for w in written) / cases
    bytes_per_case = sum(w.docs * w.mean_bytes for w in written) / cases
    print(
        f"what the pipeline left, {cases:,} cases: {per_case:.2f} documents, "
        f"{bytes_per_case:,.0f} B per case:"
    )
    for w in written:
        print(f"  {w.db + '.' + w.coll:<42} {w.docs / cases:7.3f} per case  {w.mean_bytes:7,.0f} B")
    n = min(cases, a.replay_cases)
    rates = {}
    for width in (1, 4):
        rates[width] = await replay(db, written, cases, n, width)
        print(f"  replayed for {n:,} cases, {width} bulk(s) in flight: {rates[width]:,.1f} cases/s")
    once = max(rates.values())
    ceiling = traced if traced is not None else once
    figures.update(
        replay_cases=n,
        docs_per_case=per_case,
        bytes_per_case=bytes_per_case,
        once_cases_per_s=once,
        replay_cases_per_s=ceiling,
        replay_by_width={str(k): v for k, v in rates.items()},
        ratio=(cps / ceiling) if cps else None,
    )
    how = "its write calls replayed" if traced is not None else "each document once"
    print(f"store ceiling for the pipeline's writes: {ceiling:,.1f} cases/s ({how})")
    if cps:
        print(f"pipeline {cps:,.1f} cases/s ÷ ceiling = {cps / ceiling:.3f}")
    save_section("store", figures)
    await client.drop_database(SCRATCH_DB)
    await client.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--docs", type=int, default=5000, help="documents per raw collection")
    p.add_argument("--doc-bytes", type=int, default=700)
    p.add_argument("--warmup", type=int, default=500, help="untimed updates before each mode")
    p.add_argument("--updates-one", type=int, default=2000, help="timed updates, one at a time")
    p.add_argument("--updates", type=int, default=5000, help="timed updates, 16 at once / bulk")
    p.add_argument("--replay-cases", type=int, default=2000, help="cases replayed at most")
    p.add_argument("--cases", type=int, default=0, help="pipeline cases (default: results file)")
    p.add_argument("--cases-per-s", type=float, default=0, help="pipeline cases/s (ditto)")
    p.add_argument("--seed", type=int, default=11)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
