"""A fault at every store call of the write path, in turn; after recovery the
stored state and the published events equal those of the fault-free run.

The scenario runs intake's registration, assignment's consumer (routing the
registration), supervision's and reporting's batched consumers, and
assignment's commands
(notice, accept, reply) through the
services' own classes and the real outbox, wired as the services wire them,
on the in-memory fake of the store port (``core.store.MemoryStore``, held to
the servers by tests/store_contract.py). Kafka is a list.

Each fault is injected at one call, before it reaches the store (nothing
written) or after (written, but the answer lost), and is either

* a crash: the process dies there. The outbox's memory goes with it; a
  gRPC client retries its request, Kafka redelivers from the last committed
  offset, and at the end the outbox sweeper runs after its grace period;
* a transient error (``AutoReconnect``): the same process retries, as
  ``Runtime`` does for a consumer and a client does for a command.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from pymongo.errors import AutoReconnect

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.app import Assignment
from xinfang.assignment.store import CaseStore
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.batch import BatchConsumer
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import decode_event
from xinfang.core.crypto import IdentityVault
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import NotFound, XinfangError
from xinfang.core.mongo import Doc, Position
from xinfang.core.outbox import Outbox
from xinfang.core.store import MemoryStore, Store, Update
from xinfang.intake.app import Intake
from xinfang.intake.domain import case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.reporting.app import Reporting
from xinfang.sample.generator import petitions, sample_district
from xinfang.supervision.app import Supervision


class Crash(BaseException):
    """The process died at this point: no handler of the code under test
    catches it (as none catches the process's death)."""


@dataclass
class Faults:
    """Where to fail: the ``fail_at``-th store call of the run, counted over
    every service's store."""

    fail_at: int = 0
    after: bool = False
    error: type[BaseException] = Crash
    n: int = 0


class FaultyStore(Store):
    """One service's database, failing where ``faults`` says."""

    def __init__(self, inner: MemoryStore, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        f = self.faults
        f.n += 1
        hit = f.n == f.fail_at
        if hit and not f.after:
            raise f.error("injected before the call")
        result = await fn()
        if hit:
            raise f.error("injected after the call")
        return result

    async def get(self, coll: str, doc_id: str) -> Doc | None:
        r: Doc | None = await self._call(lambda: self.inner.get(coll, doc_id))
        return r

    async def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, Doc]:
        ids = list(ids)
        r: dict[str, Doc] = await self._call(lambda: self.inner.get_many(coll, ids))
        return r

    async def insert(self, coll: str, doc: Doc) -> bool:
        r: bool = await self._call(lambda: self.inner.insert(coll, doc))
        return r

    async def insert_many(self, coll: str, docs: Sequence[Doc]) -> list[bool]:
        r: list[bool] = await self._call(lambda: self.inner.insert_many(coll, docs))
        return r

    async def write(self, coll: str, updates: Sequence[Update]) -> None:
        await self._call(lambda: self.inner.write(coll, updates))

    async def delete(self, coll: str, ids: Sequence[str]) -> None:
        await self._call(lambda: self.inner.delete(coll, ids))

    async def scan(self, coll: str, limit: int) -> list[Doc]:
        r: list[Doc] = await self._call(lambda: self.inner.scan(coll, limit))
        return r


class StaticDirectory:
    """The directory's two reads, from one district in memory."""

    def __init__(self, district: District) -> None:
        self.district = district

    async def get(self, district_id: str) -> District:
        if district_id != self.district.district_id:
            raise NotFound(f"district_id: unknown district {district_id!r}")
        return self.district

    async def find(self, district_id: str) -> District | None:
        return self.district if district_id == self.district.district_id else None


@dataclass
class World:
    """One deployment: the store survives a crash, the processes do not."""

    faults: Faults
    district: District
    stores: dict[str, FaultyStore] = field(default_factory=dict)
    bus: list[tuple[bytes, bytes]] = field(default_factory=list)
    committed: int = 0  # assignment's committed offset on the bus
    committed_reporting: int = 0
    committed_supervision: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        for service in ("intake", "assignment", "supervision", "reporting"):  # a db each
            self.stores[service] = FaultyStore(MemoryStore(), self.faults)

    def boot(self) -> tuple[Intake, Assignment, list[Outbox], dict[str, BatchConsumer]]:
        async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
            self.bus.extend(messages)

        directory: Any = StaticDirectory(self.district)
        si, sa = self.stores["intake"], self.stores["assignment"]
        oi = Outbox(si, publish, "intake", clock=lambda: self.now)
        oa = Outbox(sa, publish, "assignment", clock=lambda: self.now)
        intake = Intake(si, oi, directory, IdentityVault(b"k" * 32))
        # queries and the scanner read through the driver; the consumers, here, not
        no_db: Any = defaultdict(lambda: None)
        ss = self.stores["supervision"]
        os_ = Outbox(ss, publish, "supervision", clock=lambda: self.now)
        consumers = {
            "reporting": Reporting(no_db, directory).consumer(self.stores["reporting"]),
            "supervision": Supervision(no_db, os_, directory).consumer(ss),
        }
        return intake, Assignment(CaseStore(sa, oa), directory), [oi, oa, os_], consumers


async def _consume(w: World, a: Assignment) -> None:
    """Assignment's consumer, in batches of up to three, as Runtime does (a
    transient error retries the batch; the offset is committed after it)."""
    while w.committed < len(w.bus):
        start = w.committed
        items = [
            (decode_event(v), Position(0, start + i))
            for i, (_k, v) in enumerate(w.bus[start : start + 3])
        ]
        while True:
            try:
                results = await a.handle_batch(items)
                break
            except AutoReconnect:
                continue
        assert not [r for r in results if isinstance(r, Exception)], results
        w.committed = start + len(items)


async def _consume_batches(w: World, consumers: dict[str, BatchConsumer]) -> None:
    """Supervision's and reporting's consumers: batches of up to three events,
    retried whole on a transient error, committed after each."""
    for name, consume in consumers.items():
        await _consume_batched(w, name, consume)


async def _consume_batched(w: World, name: str, consume: BatchConsumer) -> None:
    attr = f"committed_{name}"
    while getattr(w, attr) < len(w.bus):
        start = getattr(w, attr)
        items = [
            (decode_event(v), Position(0, start + i))
            for i, (_k, v) in enumerate(w.bus[start : start + 3])
        ]
        while True:
            try:
                results = await consume(items)
                break
            except AutoReconnect:
                continue
        assert not [r for r in results if isinstance(r, Exception)], results
        setattr(w, attr, start + len(items))


async def _command(step: Callable[[], Awaitable[Any]], crashed: list[bool]) -> None:
    """A client's call: retried on a transient error; after a crash a
    refusal means the first try landed (the final comparison checks that)."""
    while True:
        try:
            await step()
            return
        except AutoReconnect:
            continue
        except XinfangError:
            if crashed and crashed[-1]:
                return
            raise


async def scenario(w: World, requests: list[ipb.RegisterPetitionRequest]) -> None:
    """Register, route, and carry each case to a reply; restart on a crash."""
    steps: list[tuple[str, ipb.RegisterPetitionRequest]] = []
    for req in requests:
        steps += [("register", req), ("consume", req), ("handle", req)]
    crashed: list[bool] = []
    procs = w.boot()

    async def run(what: str, req: ipb.RegisterPetitionRequest) -> None:
        intake, assignment, _, consumers = procs
        if what == "register":
            await intake.register(req)
        elif what == "consume":
            await _consume(w, assignment)
            await _consume_batches(w, consumers)
        else:
            await _handle(assignment, req)

    for what, req in steps:
        while True:
            try:
                await _command(functools.partial(run, what, req), crashed)
                crashed.append(False)
                break
            except Crash:
                crashed.append(True)
                procs = w.boot()  # a new process
    # the end: every process restarted once, the sweeper runs after its grace
    w.now += timedelta(minutes=5)
    for _ in range(3):
        try:
            _, assignment, outboxes, consumers = w.boot()
            for outbox in outboxes:
                await outbox.sweep()
            await _consume(w, assignment)
            await _consume_batches(w, consumers)
            break
        except (Crash, AutoReconnect):
            continue


async def _handle(a: Assignment, req: ipb.RegisterPetitionRequest) -> None:
    """The office sends the notice, the unit accepts and replies: each step
    only if the case is not past it (a retried step after a crash)."""
    did = req.district_id
    case_id = case_id_for(did, req.request_id)
    office = ev.Actor(user_id="clerk", role="office")
    s = await a.store.load(did, case_id)
    if not s.notice_sent and s.unit_id:
        await a.execute(did, case_id, lc.SendNotice(), office)
        s = await a.store.load(did, case_id)
    unit = ev.Actor(user_id="u1", role="unit", unit_id=s.unit_id)
    if s.status is lc.Status.ROUTED and s.unit_id:
        await a.execute(did, case_id, lc.AcceptCase(), unit)
        s = await a.store.load(did, case_id)
    if s.status is lc.Status.ACCEPTED:
        await a.execute(did, case_id, lc.Reply(resolved=True), unit)


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _canon(value: Any, now: datetime) -> Any:
    """Comparable across runs: event ids and this run's clock readings masked,
    events decoded."""
    if isinstance(value, Mapping):
        # where on the bus an event was read differs when a crash had it
        # published twice: positions (markers, watermarks) are masked
        return {
            _UUID.sub("<id>", str(k)): (
                {_UUID.sub("<id>", str(i)): "<position>" for i in v}
                if k in ("_applied", "_wm")
                else _canon(v, now)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_canon(v, now) for v in value]
    if isinstance(value, bytes):
        try:
            return _canon(_event_dict(decode_event(value)), now)
        except Exception:
            return "<bytes>"
    if isinstance(value, datetime):
        return "<now>" if abs(value - now) < timedelta(hours=2) else value.isoformat()
    if isinstance(value, str):
        if _ISO.fullmatch(value):
            return _canon(datetime.fromisoformat(value.replace("Z", "+00:00")), now)
        return _UUID.sub("<id>", value)
    return value


def _event_dict(e: ev.CaseEvent) -> dict[str, Any]:
    d = MessageToDict(e)
    for k in ("eventId", "recordedAt"):
        d.pop(k, None)
    return d


def _state(w: World) -> tuple[str, str]:
    dump = {name: s.inner.dump() for name, s in w.stores.items()}
    for d in dump.values():
        d.pop("outbox_pointers", None)
    stored = json.dumps(_canon(dump, w.now), sort_keys=True, default=str)
    distinct: dict[str, Any] = {}
    for _key, value in w.bus:
        e = decode_event(value)
        distinct.setdefault(e.event_id, _event_dict(e))
    published = json.dumps(
        _canon(sorted(distinct.values(), key=lambda d: json.dumps(d, sort_keys=True)), w.now),
        sort_keys=True,
    )
    return stored, published


def _requests(district: dict[str, Any], n: int) -> list[ipb.RegisterPetitionRequest]:
    day = datetime.now(UTC).date()
    out = []
    for i, req in enumerate(petitions(district, n, seed=11, start=day, end=day)):
        req.received_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        req.request_id = f"req-{i}"
        out.append(req)
    return out


async def _run(fail_at: int = 0, after: bool = False, error: type[BaseException] = Crash) -> World:
    raw = sample_district(seed=7, district_id="faults")
    w = World(Faults(fail_at, after, error), parse_district({**raw, "version": 1}))
    await scenario(w, _requests(raw, 2))
    return w


async def test_every_store_call_faulted_in_turn_recovers_to_the_same_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean = await _run()
    want = _state(clean)
    calls = clean.faults.n
    assert calls > 20  # the scenario exercises the write path
    snapshots = clean.stores["assignment"].inner.dump()["cases"].values()
    assert [c["state"]["status"] for c in snapshots] == ["replied", "replied"]
    counters = clean.stores["reporting"].inner.dump()["counters"]
    year = counters[f"faults:{clean.now.astimezone(SHANGHAI).year}"]
    assert (year["y"]["received"], year["y"]["routed"], year["y"]["replied"]) == (2, 2, 2)
    clocks = clean.stores["supervision"].inner.dump()["clocks"].values()
    assert len(clocks) >= 4 and not any(c["open"] for c in clocks if c.get("duty"))
    points = 0
    for at in range(1, calls + 1):
        for after in (False, True):
            for error in (Crash, AutoReconnect):
                w = await _run(at, after, error)
                got = _state(w)
                where = f"call {at} ({'after' if after else 'before'}, {error.__name__})"
                assert got[0] == want[0], f"stored state differs after a fault at {where}"
                assert got[1] == want[1], f"published events differ after a fault at {where}"
                points += 1
    with capsys.disabled():
        print(f"\nfault injection: {points} faults at {calls} store calls, all recovered")
