"""Supervision's clock work on the store: the scanner and re-evaluation that
the service runs, timed against FerretDB.

    scripts/bench.sh                                  # runs this with --n 2000
    XINFANG_MONGO_URI=mongodb://127.0.0.1:PORT/ .venv/bin/python scripts/bench_clocks.py --n 20000

It imports and drives ``xinfang.supervision.app.Supervision`` itself (not a
copy of it) on databases of its own (``benchclocks_*``, dropped before and
after), so the running services are not disturbed:

1. ``--n`` open clocks are made through the service's consumer
   (``Supervision.consumer``, in the runtime's batches): ``--n``/2
   ``CaseRegistered`` events of a sample district, received over the last
   six days, each starting its
   register-and-route and written-notice clocks (15 days each);
2. ``scan(now)`` with nothing due (the first pass, which looks back 90 days);
3. the district changes (register and route 15 -> 10 days, a local rest day
   among the due days) and ``reevaluate(district)`` recomputes every open
   clock, recording a ``DeadlineRescheduled`` for each that moves, which the
   consumer then applies: clocks/s is open clocks over both;
4. ``scan(now)`` at the day when ``--due`` clocks have fallen due: each due
   clock is breached and supervised (its notices recorded and published), and the
   clocks whose warning day has come are warned; the consumer applies the
   notices (it marks the clocks); clocks/s is clocks checked over both.

Steps 2-4 time the scanner's pass and the consumer's applying of what it
recorded together, since the scanner writes no clock itself.

Where the store adapter exports ``xinfang_store_calls_total`` (read from this
process's own registry), store calls per clock are printed for each step.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, TypeVar

from prometheus_client import REGISTRY, generate_latest

from bench_common import save_section, store_calls
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import decode_event, new_event, to_timestamp
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Position, connect
from xinfang.core.outbox import Outbox
from xinfang.core.store import MongoStore
from xinfang.sample.generator import sample_district
from xinfang.supervision.app import Supervision

PREFIX = "benchclocks"
T = TypeVar("T")


def calls_now() -> float | None:
    """Store calls made by this process so far (None: counter not exported)."""
    c = store_calls(generate_latest(REGISTRY).decode())
    return None if c is None else sum(c.values())


async def timed(what: Awaitable[T]) -> tuple[T, float, float | None]:
    """(result, seconds, store calls) of one awaited step."""
    c0 = calls_now()
    t0 = time.perf_counter()
    res = await what
    seconds = time.perf_counter() - t0
    c1 = calls_now()
    return res, seconds, (None if c0 is None or c1 is None else c1 - c0)


def _calls(calls: float | None, per: int, what: str) -> str:
    if calls is None:
        return "store calls n/a (counter not exported)"
    return f"{calls:,.0f} store calls, {calls / max(per, 1):.1f} per {what}"


def registered(district: dict[str, Any], i: int, received_at: datetime) -> ev.CaseEvent:
    """A CaseRegistered as intake writes it (the fields supervision reads)."""
    township = district["townships"][i % len(district["townships"])]
    category = district["categories"][i % len(district["categories"])]
    return new_event(
        case_id=str(uuid.uuid4()),
        district_id=district["district_id"],
        producer="intake",
        case_version=1,
        occurred_at=received_at,
        registered=ev.CaseRegistered(
            channel=ev.CHANNEL_LETTER,
            township_id=township["id"],
            category=category["code"],
            content="bench",
            people_count=1,
            received_at=to_timestamp(received_at),
            petitioner_ref="p_" + "0" * 32,
        ),
    )


def changed(district: dict[str, Any], rest_day: date) -> dict[str, Any]:
    """Register and route 15 -> 10 days, and a local rest day."""
    cal = dict(district.get("calendar") or {})
    cal["rest_days"] = sorted({*cal.get("rest_days", []), rest_day.isoformat()})
    limits = dict(district.get("limits") or {})
    limits["register_and_route"] = {"days": 10, "day_type": "calendar", "warn_days": 2}
    return {**district, "limits": limits, "calendar": cal}


async def run(a: argparse.Namespace) -> None:
    settings = Settings()
    client = connect(settings.mongo_uri, "xinfang-bench-clocks")
    names = (f"{PREFIX}_supervision", f"{PREFIX}_directory")
    for name in names:
        await client.drop_database(name)
    db = client[names[0]]
    directory = Directory(client[names[1]])
    doc = sample_district(a.seed, district_id=f"benchclocks-{uuid.uuid4().hex[:6]}")
    did = doc["district_id"]
    await directory.put(doc)
    store = MongoStore(db, "supervision")
    notices: list[tuple[bytes, bytes]] = []

    async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
        notices.extend(messages)  # no Kafka here: the scanner's notices are kept

    sup = Supervision(db, Outbox(store, publish, "supervision"), directory)
    consume = sup.consumer(store)
    figures: dict[str, Any] = {"n": 0}

    # 1. open clocks, through the service's own consumer, in batches of the
    # size its runtime takes (XINFANG_CONSUMER_BATCH_MAX)
    cases = max(1, a.n // 2)
    now = datetime.now(UTC)
    rng = random.Random(a.seed)
    events = [
        registered(doc, i, now - timedelta(seconds=rng.uniform(3600, 6 * 86400)))
        for i in range(cases)
    ]

    batch = settings.consumer_batch_max

    offset = 0

    async def feed(what: Sequence[ev.CaseEvent]) -> None:
        """Through the consumer, in the runtime's batches, at the next offsets."""
        nonlocal offset
        for start in range(0, len(what), batch):
            chunk = what[start : start + batch]
            items = [(e, Position(0, offset + i)) for i, e in enumerate(chunk)]
            offset += len(chunk)
            for r in await consume(items):
                if isinstance(r, Exception):
                    raise r

    async def recorded_then_applied(step: Awaitable[T]) -> T:
        """A scanner step and then the consumer applying what it recorded:
        the scanner decides, the consumer writes the clocks."""
        del notices[:]
        res = await step
        await feed([decode_event(v) for _k, v in notices])
        return res

    _, s, calls = await timed(feed(events))
    n = await sup.clocks.count_documents({})  # once, untimed: a scan on FerretDB
    figures.update(n=n, handle_events_per_s=cases / s)
    print(
        f"clocks: {n:,} open clocks made by supervision's consumer from {cases:,} CaseRegistered "
        f"in {s:.1f} s = {cases / s:,.0f} events/s; {_calls(calls, cases, 'event')}"
    )

    # 2. a pass with nothing due
    emitted, s, calls = await timed(recorded_then_applied(sup.scan(datetime.now(UTC))))
    figures["scan_idle_s"] = s
    print(
        f"scan, nothing due (first pass: 90 days back): {emitted} events in {s * 1000:.0f} ms; "
        f"{_calls(calls, 1, 'pass')}"
    )

    # 3. a change, and re-evaluation
    today = datetime.now(SHANGHAI).date()
    rest = today + timedelta(days=12)
    while rest.weekday() >= 5:  # a working day becomes a rest day
        rest += timedelta(days=1)
    await directory.put(changed(doc, rest))
    (open_n, moved, _), s, calls = await timed(recorded_then_applied(sup.reevaluate(did)))
    figures.update(
        reeval_open=open_n, reeval_moved=moved, reeval_s=s, reeval_clocks_per_s=open_n / s
    )
    print(
        f"reevaluate after register_and_route 15 -> 10 days and a rest day on {rest}: "
        f"{open_n:,} open, {moved:,} moved in {s:.2f} s = {open_n / s:,.0f} clocks/s; "
        f"{_calls(calls, open_n, 'clock')}"
    )

    # 4. the day when --due clocks have fallen due
    due_days = sorted([c["due_day"] async for c in sup.clocks.find({}, {"due_day": 1})])
    k = max(1, min(a.due or n // 4, len(due_days)))
    day = datetime.strptime(due_days[k - 1], "%Y%m%d").date()
    k = sum(1 for d in due_days if d <= due_days[k - 1])
    at = datetime.combine(day, dtime(12), tzinfo=SHANGHAI).astimezone(UTC)
    emitted, s, calls = await timed(recorded_then_applied(sup.scan(at)))
    breached = await sup.clocks.count_documents({"breached": True})
    warned = await sup.clocks.count_documents({"warned": True})
    checked = breached + warned
    figures.update(
        scan_due=breached,
        scan_warned=warned,
        scan_events=emitted,
        scan_s=s,
        scan_clocks_per_s=checked / s if s else None,
    )
    print(
        f"scan at {day} (buckets {today + timedelta(days=1)}..{day}): {breached:,} of "
        f"{k:,} due clocks breached, {warned:,} warned, {emitted:,} events staged in "
        f"{s:.2f} s = {checked / s:,.0f} clocks/s; {_calls(calls, checked, 'clock')}"
    )
    save_section("clocks", figures)
    for name in names:
        await client.drop_database(name)
    await client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=2000, help="open clocks (two per case)")
    ap.add_argument("--due", type=int, default=0, help="clocks due at the timed scan (n/4)")
    ap.add_argument("--seed", type=int, default=20261201)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
