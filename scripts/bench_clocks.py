"""Open statutory clocks in memory, at 1 M and 10 M: memory, re-evaluation and
finding what is due.

    .venv/bin/python scripts/bench_clocks.py              # 1 M, then 10 M
    .venv/bin/python scripts/bench_clocks.py --n 1000000

What a supervision worker would hold to re-evaluate open clocks: one row per
clock in columns (``array``): start day ordinal (I), district (B), clock kind
(B), tier (B), extra days (H: extension, hearing days) and due day ordinal (I,
the local day of ``due_at``, i.e. ``day_key(due_at)``), plus the day-bucket
index ``due:<day>`` as a dict from due day ordinal to ``array('I')`` of clock
ids (row numbers). Clocks are drawn with a fixed seed over 50 districts (a few
with local calendars or limits), the 9 clock kinds (tiers 1-5 for the tier
clock) and start days over the 400 days before a fixed "today".

Then, after a change of configuration (one district gets a local rest day via
``WorkCalendar.with_overrides``; every district's handling limit goes 60 -> 45
days), every clock's due day is recomputed two ways:

* naive: ``schedule()`` (hence ``compute_deadline``) per clock, the per-clock
  work of ``Supervision.reevaluate`` without its reads and writes;
* memoized: a due day depends only on (calendar, period days incl. extra days,
  day type, start day), so one table per (calendar, days, day type) keyed by
  start day (400 entries, each from ``compute_deadline``) serves every clock
  with that period; a clock is one dict lookup and one index.

Last, collecting the ids due on a day (or days) from the bucket index is
timed against a full scan of the due column. No timing is asserted; figures
are printed, with a table at the end.

Memory: "held" is sys.getsizeof of the columns and the index; RSS delta is
VmRSS after the build less before it; peak RSS is VmHWM (reset through
/proc/self/clear_refs at the start of each size) over the same start.
tracemalloc slows allocation-heavy code several times over, so its current
and peak figures come from a second build of the same clocks, traced, after
the timed work; the timings are all taken with tracemalloc off.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import operator
import os
import random
import sys
import time
import tracemalloc
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from itertools import compress
from pathlib import Path
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI, DayType, WorkCalendar, compute_deadline
from xinfang.core.districts import DEFAULT_LIMITS, District, Limit, parse_district
from xinfang.supervision.clocks import day_key, limit_name, schedule

SEED = 20261201
TODAY = date(2026, 12, 1)  # fixed, so runs compare
WINDOW = 400  # start days: the WINDOW days before TODAY
FIRST_START = TODAY - timedelta(days=WINDOW)
BASE = FIRST_START.toordinal()
N_DISTRICTS = 50
CHUNK = 1 << 20  # rows per chunk in per-clock passes (bounds transient lists)
MIB = 1 << 20

# (kind, tier, share in %) of open clocks; the tier clock's five time boxes
SLOTS: list[tuple[int, int, int]] = [
    (ev.CLOCK_KIND_REGISTER_AND_ROUTE, 0, 10),
    (ev.CLOCK_KIND_WRITTEN_NOTICE, 0, 10),
    (ev.CLOCK_KIND_REMIT_OBJECTION, 0, 5),
    (ev.CLOCK_KIND_TIER, ev.TIER_VILLAGE_MEDIATION, 4),
    (ev.CLOCK_KIND_TIER, ev.TIER_TOWNSHIP, 5),
    (ev.CLOCK_KIND_TIER, ev.TIER_TOWNSHIP_JOINT_MEETING, 3),
    (ev.CLOCK_KIND_TIER, ev.TIER_TOWNSHIP_LEADER_PACKAGE, 2),
    (ev.CLOCK_KIND_TIER, ev.TIER_DISTRICT_LEADER_PACKAGE, 1),
    (ev.CLOCK_KIND_HANDLING, 0, 25),
    (ev.CLOCK_KIND_REVIEW_REQUEST, 0, 15),
    (ev.CLOCK_KIND_REVIEW_DECISION, 0, 8),
    (ev.CLOCK_KIND_REREVIEW_REQUEST, 0, 8),
    (ev.CLOCK_KIND_REREVIEW_DECISION, 0, 4),
]

# a few districts with local calendars (rest days, a make-up working day) and
# limits of their own; the other districts follow the national calendar
LOCAL_CALENDARS: dict[int, dict[str, list[str]]] = {
    0: {"rest_days": ["2026-03-20"]},
    1: {"rest_days": ["2026-04-20", "2026-04-21"]},
    2: {"working_days": ["2026-05-09"]},
    3: {"rest_days": ["2026-09-24"]},
    4: {"rest_days": ["2026-12-14"]},
}
LOCAL_LIMITS: dict[int, dict[str, dict[str, Any]]] = {
    i: (
        {"tier_township": {"days": 10, "day_type": "calendar", "warn_days": 2}}
        if i % 10 == 3
        else {"remit_objection": {"days": 3, "day_type": "working", "warn_days": 1}}
    )
    for i in range(N_DISTRICTS)
    if i % 10 in (3, 6)
}
CHANGED_DISTRICT = 7  # gets a local rest day in the change
NEW_HANDLING = Limit(45, DayType.CALENDAR, DEFAULT_LIMITS["handling"].warn_days)


# ---- measuring -------------------------------------------------------------------


def _status(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _release() -> None:
    """Collect, and hand freed heap back to the OS (glibc keeps it otherwise,
    so a later RSS delta would reuse what an earlier size freed)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        return False
    return True


def _best(fn: Callable[[], object], min_seconds: float = 0.05, max_reps: int = 2000) -> float:
    """Best time of repeated runs (seconds)."""
    best = float("inf")
    total = 0.0
    reps = 0
    while reps < max_reps and (reps < 3 or total < min_seconds):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        total += dt
        reps += 1
    return best


def _rate(n: float, seconds: float) -> str:
    r = n / seconds if seconds > 0 else float("inf")
    if r >= 1e6:
        return f"{r / 1e6:.2f} M/s"
    return f"{r / 1e3:.0f} k/s"


def _mib(b: float) -> str:
    return f"{b / MIB:,.1f} MiB"


def _day(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


# ---- districts ---------------------------------------------------------------------


def district_doc(i: int) -> dict[str, Any]:
    did = f"d{i:02d}"
    return {
        "district_id": did,
        "name": f"District {i:02d}",
        "townships": [{"id": f"{did}-t1", "name": "Township 1"}],
        "categories": [{"code": "land", "name": "Land"}],
        "units": [{"id": f"{did}-u1", "name": "Unit 1"}],
        "limits": LOCAL_LIMITS.get(i, {}),
        "calendar": LOCAL_CALENDARS.get(i, {}),
    }


def make_districts() -> list[District]:
    return [parse_district(district_doc(i)) for i in range(N_DISTRICTS)]


def changed_districts(districts: list[District]) -> tuple[list[District], date]:
    """The change: a local rest day for one district (its first working day
    five or more days after today), handling 60 -> 45 days everywhere."""
    d = districts[CHANGED_DISTRICT]
    rest = d.calendar.next_working_day(TODAY + timedelta(days=5))
    cal = WorkCalendar.with_overrides(
        rest=d.calendar.extra_rest_days | {rest}, working=d.calendar.extra_working_days
    )
    out = []
    for i, x in enumerate(districts):
        limits = {**x.limits, "handling": NEW_HANDLING}
        out.append(
            replace(
                x,
                limits=limits,
                calendar=cal if i == CHANGED_DISTRICT else x.calendar,
                version=x.version + 1,
            )
        )
    return out, rest


# ---- deadline tables (the memo) ---------------------------------------------------

# started_at of a clock starting on a start day (10:00 local, UTC-aware as the
# store returns it): one per start day, shared by both strategies
START_AT: list[datetime] = [
    datetime.combine(FIRST_START + timedelta(days=k), dtime(10), tzinfo=SHANGHAI).astimezone(UTC)
    for k in range(WINDOW)
]


def due_ordinal(start_at: datetime, days: int, day_type: DayType, cal: WorkCalendar) -> int:
    """The due day (local day of due_at, as day_key) as a date ordinal."""
    return compute_deadline(start_at, days, day_type, cal).due_at.toordinal()


class PeriodTables:
    """Due day by start day, one table per (calendar, period days, day type).

    Kept across configurations: after a change only the tables of new
    (calendar, days, day type) keys are computed."""

    def __init__(self) -> None:
        self.tables: dict[tuple[WorkCalendar, int, DayType], list[int]] = {}
        self.built = 0
        self.seconds = 0.0

    def get(self, cal: WorkCalendar, days: int, day_type: DayType) -> list[int]:
        key = (cal, days, day_type)
        table = self.tables.get(key)
        if table is None:
            t0 = time.perf_counter()
            table = [due_ordinal(s, days, day_type, cal) for s in START_AT]
            self.seconds += time.perf_counter() - t0
            self.built += 1
            self.tables[key] = table
        return table


def group_key(district: int, kind: int, tier: int, extra: int) -> int:
    return (district << 24) | (kind << 20) | (tier << 16) | extra


class GroupTables(dict[int, list[int]]):
    """(district, kind, tier, extra days) -> its period's table, resolved on
    first use against one configuration of the districts."""

    def __init__(self, districts: list[District], tables: PeriodTables) -> None:
        super().__init__()
        self.districts = districts
        self.tables = tables

    def __missing__(self, key: int) -> list[int]:
        d, kind, tier, extra = key >> 24, (key >> 20) & 15, (key >> 16) & 15, key & 0xFFFF
        district = self.districts[d]
        limit = district.limit(limit_name(kind, tier))
        table = self.tables.get(district.calendar, limit.days + extra, limit.day_type)
        self[key] = table
        return table


# ---- the clocks --------------------------------------------------------------------


@dataclass
class Clocks:
    start: array[int]  # 'I' start day ordinal
    district: array[int]  # 'B'
    kind: array[int]  # 'B' ev.ClockKind
    tier: array[int]  # 'B' ev.Tier, 0 unless kind is the tier clock
    extra: array[int]  # 'H' extra days (extension, hearing days)
    due: array[int]  # 'I' due day ordinal (day_key of due_at)

    def __len__(self) -> int:
        return len(self.start)

    def columns(self) -> list[array[int]]:
        return [self.start, self.district, self.kind, self.tier, self.extra, self.due]


def _byte_table(weights: list[int]) -> bytes:
    """256 byte values -> index, apportioned by weight (for bytes.translate)."""
    total = sum(weights)
    bounds = [sum(weights[: i + 1]) for i in range(len(weights))]
    out = []
    for b in range(256):
        u = (b + 0.5) * total / 256
        out.append(next(i for i, x in enumerate(bounds) if u < x))
    return bytes(out)


def _extra_table(kind: int) -> bytes:
    """Random byte -> extra days for a kind: 20 % of handling clocks extended
    by 1-30 days (Art. 34), 30 % of re-review decisions paused for a hearing
    of 1-10 days (Art. 36); none for the others."""
    if kind == ev.CLOCK_KIND_HANDLING:
        return bytes(0 if b < 205 else 1 + (b - 205) * 30 // 51 for b in range(256))
    if kind == ev.CLOCK_KIND_REREVIEW_DECISION:
        return bytes(0 if b < 180 else 1 + (b - 180) * 10 // 76 for b in range(256))
    return bytes(256)


def generate(n: int, seed: int) -> Clocks:
    """Columns but the due day; all bulk operations at C speed."""
    rng = random.Random(seed)
    slot = rng.randbytes(n).translate(_byte_table([w for _, _, w in SLOTS]))
    kind = array("B", slot.translate(bytes(k for k, _, _ in SLOTS) + bytes(256 - len(SLOTS))))
    tier = array("B", slot.translate(bytes(t for _, t, _ in SLOTS) + bytes(256 - len(SLOTS))))
    del slot
    district = array(
        "B", rng.randbytes(n).translate(bytes(b * N_DISTRICTS // 256 for b in range(256)))
    )
    # start day: a uniform 16-bit value scaled onto the window
    start_of = [BASE + u * WINDOW // 65536 for u in range(65536)]
    start = array("I", map(start_of.__getitem__, array("H", rng.randbytes(2 * n))))
    extra_of = [_extra_table(k) for k in range(16)]
    extra = array("H", map(operator.getitem, map(extra_of.__getitem__, kind), rng.randbytes(n)))
    return Clocks(start, district, kind, tier, extra, array("I"))


def _chunks(n: int) -> Iterable[tuple[int, int]]:
    for a in range(0, n, CHUNK):
        yield a, min(n, a + CHUNK)


def due_memo(c: Clocks, groups: GroupTables) -> array[int]:
    """Every clock's due day from the tables: one dict lookup and one index each."""
    out = array("I")
    g = groups
    for a, b in _chunks(len(c)):
        out.fromlist(
            [
                g[(d << 24) | (k << 20) | (t << 16) | e][s - BASE]
                for d, k, t, e, s in zip(
                    c.district[a:b],
                    c.kind[a:b],
                    c.tier[a:b],
                    c.extra[a:b],
                    c.start[a:b],
                    strict=True,
                )
            ]
        )
    return out


def due_naive(c: Clocks, districts: list[District], m: int) -> array[int]:
    """The first m clocks' due days, schedule() per clock."""
    out = array("I")
    start_at = START_AT
    for i in range(m):
        dl, _warn = schedule(
            c.kind[i], c.tier[i], start_at[c.start[i] - BASE], c.extra[i], districts[c.district[i]]
        )
        out.append(dl.due_at.toordinal())
    return out


def count_moved(old: array[int], new: array[int]) -> int:
    return sum(map(operator.ne, old, new))


def build_index(due: array[int]) -> dict[int, array[int]]:
    """due day -> ids (the ``due:<YYYYMMDD>`` buckets)."""
    idx: defaultdict[int, array[int]] = defaultdict(lambda: array("I"))
    for i, d in enumerate(due):
        idx[d].append(i)
    return dict(idx)


def held_bytes(c: Clocks, index: dict[int, array[int]]) -> tuple[int, int]:
    cols = sum(sys.getsizeof(a) for a in c.columns())
    idx = sys.getsizeof(index) + sum(sys.getsizeof(k) + sys.getsizeof(a) for k, a in index.items())
    return cols, idx


# ---- finding what is due -----------------------------------------------------------


def from_buckets(index: dict[int, array[int]], lo: int, hi: int) -> list[int]:
    ids: list[int] = []
    for d in range(lo, hi + 1):
        bucket = index.get(d)
        if bucket is not None:
            ids.extend(bucket)
    return ids


def full_scan(due: array[int], lo: int, hi: int) -> list[int]:
    """Every open clock's due day looked at (the fastest of the plain ways tried)."""
    return [i for i, d in enumerate(due) if lo <= d <= hi]


@dataclass
class DueRow:
    label: str
    lo: int
    hi: int
    ids: int
    bucket_s: float
    scan_s: float


def due_rows(c: Clocks, index: dict[int, array[int]]) -> list[DueRow]:
    today = TODAY.toordinal()
    sizes = sorted((len(a), d) for d, a in index.items())
    picks = [
        ("smallest bucket", sizes[0][1], sizes[0][1]),
        ("today", today, today),
        ("median bucket", sizes[len(sizes) // 2][1], sizes[len(sizes) // 2][1]),
        ("largest bucket", sizes[-1][1], sizes[-1][1]),
        ("last 7 days", today - 6, today),
    ]
    rows = []
    for label, lo, hi in picks:
        ids = from_buckets(index, lo, hi)
        check = full_scan(c.due, lo, hi)
        if sorted(ids) != check:
            raise SystemExit(f"bucket index and due column disagree on {_day(lo)}..{_day(hi)}")
        bucket_s = _best(partial(from_buckets, index, lo, hi))
        scan_s = _best(partial(full_scan, c.due, lo, hi), 0.0, 3)
        rows.append(DueRow(label, lo, hi, len(ids), bucket_s, scan_s))
    return rows


# ---- one size ----------------------------------------------------------------------


@dataclass
class Build:
    total_s: float
    gen_s: float
    due_s: float
    index_s: float
    tables: int
    tables_s: float


@dataclass
class Result:
    n: int
    build: Build
    held: int
    tm_current: int
    tm_peak: int
    rss_delta: int
    peak_rss: int
    naive_m: int
    naive_s: float  # for naive_m clocks
    mismatches: int
    memo_warm_s: float
    warm_new_tables: int
    memo_cold_s: float
    cold_tables: int
    cold_tables_s: float
    moved: int
    reindex_s: float
    rows: list[DueRow]

    @property
    def naive_full_s(self) -> float:
        return self.naive_s * self.n / self.naive_m


def build(
    n: int, seed: int, districts: list[District], tables: PeriodTables
) -> tuple[Clocks, dict[int, array[int]], Build]:
    t0 = time.perf_counter()
    clocks = generate(n, seed)
    t1 = time.perf_counter()
    clocks.due = due_memo(clocks, GroupTables(districts, tables))
    t2 = time.perf_counter()
    index = build_index(clocks.due)
    t3 = time.perf_counter()
    return clocks, index, Build(t3 - t0, t1 - t0, t2 - t1, t3 - t2, tables.built, tables.seconds)


def run(n: int, seed: int, naive_max: int) -> Result:
    print(
        f"\n== N = {n:,} open clocks: {N_DISTRICTS} districts, 9 clock kinds (13 limits), "
        f"starts {FIRST_START}..{TODAY - timedelta(days=1)}, today {TODAY}, seed {seed} =="
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    districts = make_districts()
    _release()
    peak_reset = _reset_peak_rss()
    rss0 = _status("VmRSS")
    tables = PeriodTables()
    clocks, index, b = build(n, seed, districts, tables)
    _release()
    rss1 = _status("VmRSS")
    cols, idx = held_bytes(clocks, index)
    print(
        f"build {b.total_s:.2f} s: generate {b.gen_s:.2f} s, due days {b.due_s:.2f} s "
        f"({b.tables} period tables, {b.tables_s:.2f} s of it), bucket index {b.index_s:.2f} s "
        f"({len(index):,} due days {_day(min(index))}..{_day(max(index))})"
    )
    print(
        f"memory: held {_mib(cols + idx)} = {(cols + idx) / n:.1f} B/clock "
        f"(columns {cols / n:.1f}, bucket index {idx / n:.1f}); "
        f"RSS +{_mib(rss1 - rss0)} = {(rss1 - rss0) / n:.1f} B/clock"
    )

    # the change, and re-evaluation three ways
    new_districts, rest = changed_districts(districts)
    print(
        f"change: d{CHANGED_DISTRICT:02d} local rest day {rest} (WorkCalendar.with_overrides); "
        f"handling 60 -> {NEW_HANDLING.days} days in all {N_DISTRICTS} districts"
    )
    m = min(n, naive_max)
    gc.collect()
    t0 = time.perf_counter()
    naive = due_naive(clocks, new_districts, m)
    naive_s = time.perf_counter() - t0

    # warm: the tables of the configuration before the change are kept
    kept, kept_s = tables.built, tables.seconds
    gc.collect()
    t0 = time.perf_counter()
    new_due = due_memo(clocks, GroupTables(new_districts, tables))
    memo_warm_s = time.perf_counter() - t0
    warm_new, warm_new_s = tables.built - kept, tables.seconds - kept_s
    del new_due, tables

    cold = PeriodTables()
    gc.collect()
    t0 = time.perf_counter()
    new_due = due_memo(clocks, GroupTables(new_districts, cold))
    memo_cold_s = time.perf_counter() - t0

    mismatches = count_moved(naive, new_due[:m])
    moved = count_moved(clocks.due, new_due)
    handling = ev.CLOCK_KIND_HANDLING
    moved_handling = sum(
        map(operator.ne, compress(clocks.due, map(handling.__eq__, clocks.kind)),
            compress(new_due, map(handling.__eq__, clocks.kind)))
    )  # fmt: skip
    del naive
    naive_full_s = naive_s * n / m
    basis = "measured on all" if m == n else f"extrapolated from the first {m:,} of"
    print(
        f"re-evaluate, naive (schedule() per clock): {naive_s:.2f} s for {m:,} clocks, "
        f"{_rate(m, naive_s)}; {n:,} clocks: {naive_full_s:.1f} s ({basis} {n:,})"
    )
    print(
        f"re-evaluate, memoized: warm {memo_warm_s:.2f} s, {_rate(n, memo_warm_s)} "
        f"({warm_new} new period tables in {warm_new_s:.2f} s, {kept} kept); "
        f"cold {memo_cold_s:.2f} s, {_rate(n, memo_cold_s)} "
        f"({cold.built} tables x {WINDOW} start days in {cold.seconds:.2f} s)"
    )
    print(
        f"moved {moved:,} of {n:,} ({100 * moved / n:.1f} %: {moved_handling:,} handling "
        f"clocks, {moved - moved_handling:,} others, by the rest day); memoized vs naive on "
        f"{m:,} clocks: {mismatches} differ; speed-up x{naive_full_s / memo_warm_s:.0f} warm, "
        f"x{naive_full_s / memo_cold_s:.0f} cold"
    )
    clocks.due = new_due
    del new_due
    index = {}
    gc.collect()
    t0 = time.perf_counter()
    index = build_index(clocks.due)
    reindex_s = time.perf_counter() - t0
    print(f"re-index (rebuild the due buckets from the new due column): {reindex_s:.2f} s")

    rows = due_rows(clocks, index)
    print("finding what is due (after the change): bucket index vs full scan of the due column")
    print(f"  {'days':<34} {'ids':>9} {'buckets':>12} {'ns/id':>7} {'full scan':>11} {'ratio':>8}")
    for r in rows:
        days = _day(r.lo) if r.lo == r.hi else f"{_day(r.lo)}..{_day(r.hi)}"
        print(
            f"  {r.label + ' ' + days:<34} {r.ids:>9,} {r.bucket_s * 1e6:>9.1f} µs "
            f"{r.bucket_s * 1e9 / max(r.ids, 1):>7.1f} {r.scan_s * 1e3:>8.1f} ms "
            f"{r.scan_s / r.bucket_s:>7.0f}x"
        )
    peak = _status("VmHWM") - rss0 if peak_reset else 0
    if peak_reset:
        print(f"peak RSS so far for this N: +{_mib(peak)} over the start of the build")
    else:
        print("peak RSS: /proc/self/clear_refs not writable, not measured")

    # tracemalloc slows allocation-heavy code several times over: its figures
    # come from a second, traced build of the same clocks, after the first is freed
    del clocks, index
    gc.collect()
    tracemalloc.start()
    clocks, index, traced = build(n, seed, districts, PeriodTables())
    tm_current, tm_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del clocks, index
    gc.collect()
    hwm = _status("VmHWM") - rss0 if peak_reset else 0
    print(
        f"tracemalloc (second build, traced, {traced.total_s:.1f} s): current "
        f"{_mib(tm_current)} = {tm_current / n:.1f} B/clock, peak {_mib(tm_peak)} = "
        f"{tm_peak / n:.1f} B/clock; peak RSS incl. this build +{_mib(hwm)}"
    )
    res = Result(
        n=n,
        build=b,
        held=cols + idx,
        tm_current=tm_current,
        tm_peak=tm_peak,
        rss_delta=rss1 - rss0,
        peak_rss=peak,
        naive_m=m,
        naive_s=naive_s,
        mismatches=mismatches,
        memo_warm_s=memo_warm_s,
        warm_new_tables=warm_new,
        memo_cold_s=memo_cold_s,
        cold_tables=cold.built,
        cold_tables_s=cold.seconds,
        moved=moved,
        reindex_s=reindex_s,
        rows=rows,
    )
    print(summary(res))
    return res


def summary(r: Result) -> str:
    today = next(x for x in r.rows if x.label == "today")
    naive = "measured" if r.naive_m == r.n else f"extrapolated from {r.naive_m:,}"
    return (
        f"SUMMARY N={r.n:,}: {r.held / r.n:.1f} B/clock held ({_mib(r.held)}, RSS +"
        f"{_mib(r.rss_delta)}); re-evaluating all open clocks after a calendar and limit "
        f"change takes {r.memo_warm_s:.2f} s memoized ({_rate(r.n, r.memo_warm_s)}) vs "
        f"{r.naive_full_s:.1f} s naive ({naive}); {r.moved:,} moved; today's "
        f"{today.ids:,} due ids in {today.bucket_s * 1e3:.2f} ms from the buckets vs "
        f"{today.scan_s * 1e3:.0f} ms scanning every open clock"
    )


def table(results: list[Result]) -> None:
    rows: list[tuple[str, Callable[[Result], str]]] = [
        ("open clocks", lambda r: f"{r.n:,}"),
        ("build s", lambda r: f"{r.build.total_s:.2f}"),
        (
            "  generate / due days / index s",
            lambda r: f"{r.build.gen_s:.1f}/{r.build.due_s:.1f}/{r.build.index_s:.1f}",
        ),
        ("held MiB (columns + buckets)", lambda r: f"{r.held / MIB:,.1f}"),
        ("held B/clock", lambda r: f"{r.held / r.n:.1f}"),
        ("tracemalloc current MiB (built)", lambda r: f"{r.tm_current / MIB:,.1f}"),
        ("tracemalloc peak MiB (build)", lambda r: f"{r.tm_peak / MIB:,.1f}"),
        ("RSS delta MiB (after build)", lambda r: f"{r.rss_delta / MIB:,.1f}"),
        ("RSS delta B/clock", lambda r: f"{r.rss_delta / r.n:.1f}"),
        ("peak RSS MiB (whole run of N)", lambda r: f"{r.peak_rss / MIB:,.1f}"),
        (
            "naive re-eval s (all N)",
            lambda r: f"{r.naive_full_s:.1f}" + ("" if r.naive_m == r.n else "*"),
        ),
        ("naive clocks/s", lambda r: _rate(r.naive_m, r.naive_s)),
        ("memo re-eval s, warm tables", lambda r: f"{r.memo_warm_s:.2f}"),
        ("memo clocks/s, warm", lambda r: _rate(r.n, r.memo_warm_s)),
        ("memo re-eval s, cold tables", lambda r: f"{r.memo_cold_s:.2f}"),
        ("  period tables (cold) / s", lambda r: f"{r.cold_tables} / {r.cold_tables_s:.2f}"),
        ("speed-up memo warm vs naive", lambda r: f"x{r.naive_full_s / r.memo_warm_s:.0f}"),
        ("memo vs naive differences", lambda r: f"{r.mismatches} of {r.naive_m:,}"),
        ("clocks moved", lambda r: f"{r.moved:,} ({100 * r.moved / r.n:.1f} %)"),
        ("re-index s (rebuild buckets)", lambda r: f"{r.reindex_s:.2f}"),
    ]
    for label in ("today", "largest bucket", "last 7 days"):
        rows.append((f"due {label}: ids", partial(_due_ids, label)))
        rows.append(("  buckets ms / full scan ms", partial(_due_times, label)))
    width = 34
    print("\n== figures ==")
    print(f"{'':<{width}}" + "".join(f"{'N=' + format(r.n, ','):>20}" for r in results))
    for label, fn in rows:
        print(f"{label:<{width}}" + "".join(f"{fn(r):>20}" for r in results))
    if any(r.naive_m < r.n for r in results):
        print(
            "* naive extrapolated linearly from the first clocks (drawn i.i.d., so a fair sample)"
        )


def _row(r: Result, label: str) -> DueRow:
    return next(x for x in r.rows if x.label == label)


def _due_ids(label: str, r: Result) -> str:
    return f"{_row(r, label).ids:,}"


def _due_times(label: str, r: Result) -> str:
    x = _row(r, label)
    return f"{x.bucket_s * 1e3:.3f} / {x.scan_s * 1e3:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--n", type=int, action="append", help="open clocks (repeatable); default 1M then 10M"
    )
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--naive-max",
        type=int,
        default=1_000_000,
        help="run the naive strategy on at most this many clocks, extrapolating beyond",
    )
    args = ap.parse_args()
    sizes = args.n or [1_000_000, 10_000_000]
    _sanity()
    results = []
    for n in sizes:
        results.append(run(n, args.seed, args.naive_max))
        gc.collect()
    table(results)


def _sanity() -> None:
    """The due ordinal is day_key(due_at), and the naive and memo paths agree."""
    d = make_districts()[0]
    at = START_AT[17]
    dl, _ = schedule(ev.CLOCK_KIND_HANDLING, 0, at, 3, d)
    o = dl.due_at.toordinal()
    if day_key(dl.due_at) != date.fromordinal(o).strftime("%Y%m%d"):
        raise SystemExit("due ordinal is not day_key(due_at)")
    if o != due_ordinal(at, 63, DayType.CALENDAR, d.calendar):
        raise SystemExit("schedule() and compute_deadline() disagree")


if __name__ == "__main__":
    main()
