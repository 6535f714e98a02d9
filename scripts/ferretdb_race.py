"""Two writers of one document in two processes, as two replicas of a
service are: does the store lose an update?

  ferretdb_race.py [--uri mongodb://127.0.0.1:27018/] [--n 500] [--writers 2]

Each writer process has its own client and applies ``--n`` updates to the
same documents: ``$inc`` of a shared counter (what reporting's district
figures and supervision's stats take), with ``$max`` of a per-writer
watermark beside it as ``core.batch`` writes them, and ``$addToSet`` of its
own values to a shared set (supervision's day buckets of due clocks). Then it
prints what the documents hold against what was written. MongoDB applies
each update atomically, so nothing is lost; FerretDB 1.x applies an update as
a read of the document and a later write of all of it, so two writers at once
can each write over the other's update. ``core.mongo.doc_lock`` serialises
writers within one process only. Exit status 1 when an update was lost.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import uuid

from pymongo import MongoClient


def _writer(uri: str, db: str, k: int, n: int, start: mp.synchronize.Event) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(uri)
    coll = client[db]["race"]
    start.wait()
    for i in range(n):
        coll.update_one(
            {"_id": "counter"},
            {"$inc": {"n": 1}, "$max": {f"_wm.{k}": i}},
            upsert=True,
        )
        coll.update_one({"_id": "bucket"}, {"$addToSet": {"ids": f"w{k}-{i}"}}, upsert=True)
    client.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--uri", default="mongodb://127.0.0.1:27018/")
    p.add_argument("--n", type=int, default=500, help="updates of each document per writer")
    p.add_argument("--writers", type=int, default=2)
    a = p.parse_args()
    db = f"race_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(a.uri)
    # the documents exist first, so no writer's upsert races an insert
    client[db]["race"].insert_many([{"_id": "counter", "n": 0}, {"_id": "bucket", "ids": []}])
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(a.uri, db, k, a.n, start)) for k in range(a.writers)]
    for pr in procs:
        pr.start()
    start.set()
    for pr in procs:
        pr.join()
    counter = client[db]["race"].find_one({"_id": "counter"}) or {}
    bucket = client[db]["race"].find_one({"_id": "bucket"}) or {}
    client.drop_database(db)
    client.close()
    want = a.n * a.writers
    n = int(str(counter.get("n", 0)))
    ids = bucket.get("ids")
    members = len(ids) if isinstance(ids, list) else 0
    wm = counter.get("_wm")
    print(f"{a.writers} writer processes x {a.n} updates of each document at once")
    print(f"  $inc counter:   {n:,} of {want:,} ({want - n:,} lost)")
    print(f"  $addToSet set:  {members:,} of {want:,} ({want - members:,} lost)")
    print(f"  $max watermarks: {wm}")
    sys.exit(1 if n != want or members != want else 0)


if __name__ == "__main__":
    main()
