"""``xinfang calendar``: the platform's working calendar, for operators.

    xinfang calendar show [YEAR]          who decides each year (a loaded notice, a
                                          library, or the estimate); a year's days
    xinfang calendar template YEAR        a file to fill in from the State Council's
                                          notice, the statutory holidays already in
    xinfang calendar load FILE [--by U]   load a year's arrangement for every district
                                          (versioned, recorded), then re-evaluate the
                                          open clocks of every district
    xinfang calendar withdraw YEAR [--by U]
    xinfang calendar reevaluate           re-evaluate every district's open clocks

load and withdraw exit 1 when the change is stored but supervision could not
re-evaluate the clocks (run reevaluate when it is up).

The load is platform-wide: the notice is the State Council's, the same for
every district; a district's own rest and working days stay on top of it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

import grpc

from xinfang.cli_common import Refused, read_json
from xinfang.core.auth import ALL_DISTRICTS, tool_channel
from xinfang.core.calendar import (
    SHANGHAI,
    STATUTE,
    Arrangement,
    Source,
    WorkCalendar,
    library_source,
    statutory_holidays,
)
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import connect
from xinfang.supervision.v1 import supervision_pb2 as spb
from xinfang.supervision.v1 import supervision_pb2_grpc as sgrpc

__all__ = ["add_parser", "run", "template"]


@asynccontextmanager
async def _directory(settings: Settings) -> AsyncIterator[Directory]:
    client = connect(settings.mongo_uri, "xinfang-cli")
    try:
        yield Directory(client[f"{settings.mongo_db_prefix}_directory"])
    finally:
        await client.close()


def _year(value: str) -> int:
    if not value.isdigit() or len(value) != 4:
        raise Refused(f"year: {value!r} is not a year (YYYY)")
    return int(value)


def _blocks(days: list[date]) -> list[list[date]]:
    out: list[list[date]] = []
    for d in sorted(days):
        if out and d - out[-1][-1] == timedelta(days=1):
            out[-1].append(d)
        else:
            out.append([d])
    return out


def template(year: int) -> dict[str, Any]:
    """A file for ``calendar load`` with the year's statutory holidays in it;
    the operator stretches ``from``/``to``, adds the make-up working days and
    names the notice (an unnamed ``source`` is refused, so the template
    itself never loads)."""
    days = statutory_holidays(year)
    holidays = []
    for block in _blocks(list(days)):
        names = dict.fromkeys(n for d in block for n in days[d].split("、"))
        holidays.append(
            {"name": "、".join(names), "from": block[0].isoformat(),
             "to": block[-1].isoformat(), "work": []}
        )  # fmt: skip
    return {
        "year": year,
        "source": "",
        "note": f"statutory holidays of {STATUTE} filled in; copy the days off and the "
        "make-up working days (调休上班) from the notice, and name it in source",
        "holidays": holidays,
    }


def _dates(days: frozenset[date]) -> str:
    return ", ".join(d.strftime("%m-%d") for d in sorted(days)) or "-"


def _describe(a: Arrangement) -> str:
    return f"loaded, version {a.version}, by {a.loaded_by} at {a.loaded_at} ({a.source})"


def _differences(a: Arrangement) -> list[str]:
    """Days where the loaded year overrules a library that knows it."""
    bare = WorkCalendar()
    out = []
    for d in sorted({*a.rest_days, *a.working_days}):
        working, source = bare.day(d)
        if source not in (Source.ESTIMATE, Source.DISTRICT) and working != a.decides(d):
            out.append(f"{d} ({source}: {'working' if working else 'rest'})")
    return out


async def _reevaluate(settings: Settings) -> int:
    try:
        async with tool_channel(f"{settings.grpc_host}:{settings.supervision_grpc}") as ch:
            r: spb.ReevaluateClocksResponse = await sgrpc.SupervisionServiceStub(
                ch
            ).ReevaluateClocks(spb.ReevaluateClocksRequest(district_id=ALL_DISTRICTS), timeout=600)
    except grpc.aio.AioRpcError as e:
        print(
            f"xinfang calendar: open clocks not re-evaluated (supervision: {e.code().name}); "
            "run `xinfang calendar reevaluate` when supervision is up",
            file=sys.stderr,
        )
        return 1
    print(
        f"open clocks of every district re-evaluated: {r.open_clocks}, moved: {r.moved}, "
        f"still estimated: {r.estimated}"
    )
    return 0


async def _load(settings: Settings, path: str, by: str) -> int:
    doc = read_json(path)
    async with _directory(settings) as d:
        a = await d.load_arrangement(doc, by)
    print(f"{a.year}: {_describe(a)}")
    print(f"  days off ({len(a.rest_days)}): {_dates(a.rest_days)}")
    print(f"  make-up working days ({len(a.working_days)}): {_dates(a.working_days)}")
    for line in _differences(a):
        print(f"  overrules {line}")
    return await _reevaluate(settings)  # 1: stored, but the clocks wait for a re-evaluation


async def _withdraw(settings: Settings, year: int, by: str) -> int:
    async with _directory(settings) as d:
        a = await d.withdraw_arrangement(year, by)
    print(f"{year}: withdrawn (version {a.version}, by {by}); {_decider(year, None)} decides")
    return await _reevaluate(settings)


def _decider(year: int, loaded: Arrangement | None) -> str:
    if loaded is not None:
        return _describe(loaded)
    source = library_source(year)
    if source is not None:
        return str(source)
    if year < 2025:
        return "nobody: before the amended regulation, and no library knows it"
    return (
        f"estimate: the statutory holidays of {STATUTE} and the week; make-up working "
        "days unknown, deadlines marked estimated"
    )


async def _show(settings: Settings, year: int | None) -> int:
    async with _directory(settings) as d:
        loaded = await d.arrangements(fresh=True)
        log = await d.arrangement_log(year) if year is not None else []
    if year is None:
        this = datetime.now(SHANGHAI).year
        for y in range(this - 1, this + 3):
            print(f"{y}: {_decider(y, loaded.get(y))}")
        return 0
    print(f"{year}: {_decider(year, loaded.get(year))}")
    cal = WorkCalendar().with_arrangements(loaded)
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(366)]
    days = [d for d in days if d.year == year]
    off = frozenset(d for d in days if d.weekday() < 5 and not cal.is_working_day(d))
    work = frozenset(d for d in days if d.weekday() >= 5 and cal.is_working_day(d))
    print(f"  weekdays off ({len(off)}): {_dates(off)}")
    print(f"  make-up working days ({len(work)}): {_dates(work)}")
    if year >= 2025:
        statutory = statutory_holidays(year)
        print("  statutory: " + ", ".join(f"{d:%m-%d} {n}" for d, n in statutory.items()))
    for r in log:
        print(f"  version {r['version']}: {r['action']} by {r['by']} at {r['at']}")
    return 0


def add_parser(sub: Any, default_by: str) -> None:
    c = sub.add_parser("calendar", help="the platform's working calendar (holiday notices)")
    cs = c.add_subparsers(dest="calcmd", required=True)
    sh = cs.add_parser("show", help="who decides each year; a year's days off")
    sh.add_argument("year", nargs="?")
    tp = cs.add_parser("template", help="a year's file to fill in from the notice")
    tp.add_argument("year")
    ld = cs.add_parser("load", help="load a year's arrangement for every district")
    ld.add_argument("file")
    ld.add_argument("--by", default=default_by, help="who loads it (default: this user)")
    wd = cs.add_parser("withdraw", help="take a loaded year out of force")
    wd.add_argument("year")
    wd.add_argument("--by", default=default_by, help="who withdraws it (default: this user)")
    cs.add_parser("reevaluate", help="re-evaluate every district's open clocks")


async def run(settings: Settings, a: Any) -> int:
    if a.calcmd == "template":
        year = _year(a.year)
        if year < 2025:
            raise Refused(f"year: {year} is before the amended regulation (2025)")
        print(json.dumps(template(year), ensure_ascii=False, indent=2))
        return 0
    if a.calcmd == "show":
        return await _show(settings, _year(a.year) if a.year else None)
    if a.calcmd == "load":
        return await _load(settings, a.file, a.by)
    if a.calcmd == "withdraw":
        return await _withdraw(settings, _year(a.year), a.by)
    return await _reevaluate(settings)
