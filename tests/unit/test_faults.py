"""A fault at every store call of the write path, in turn; after recovery the
stored state and the published events equal those of the fault-free run.

The scenario runs intake's registration, assignment's consumer (routing the
registration), supervision's and reporting's batched consumers,
assignment's commands (notice, accept, reply), and supervision's
re-evaluation (the district's limits change) and deadline scanner (a pass
weeks later: breaches, orders, windows closed) through the
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
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from pymongo.errors import AutoReconnect

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.app import Assignment
from xinfang.assignment.lifecycle import to_doc
from xinfang.assignment.store import CaseStore
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.batch import ROSTERS, BatchConsumer, OwnedDocs
from xinfang.core.calendar import SHANGHAI, Arrangements
from xinfang.core.codec import decode_event
from xinfang.core.crypto import IdentityVault
from xinfang.core.districts import DEFAULT_LIMITS, District, parse_district
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
    """The directory's two reads, from the world's district in memory (which
    the scenario changes once)."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def get(self, district_id: str, fresh: bool = False) -> District:
        if district_id != self.world.district.district_id:
            raise NotFound(f"district_id: unknown district {district_id!r}")
        return self.world.district

    async def find(self, district_id: str) -> District | None:
        return (
            await self.get(district_id) if district_id == self.world.district.district_id else None
        )

    async def arrangements(self, fresh: bool = False) -> Arrangements:
        return Arrangements()  # no year loaded for the platform


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

    def boot(self) -> Procs:
        async def publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
            self.bus.extend(messages)

        directory: Any = StaticDirectory(self)
        si, sa = self.stores["intake"], self.stores["assignment"]
        oi = Outbox(si, publish, "intake", clock=lambda: self.now)
        oa = Outbox(sa, publish, "assignment", clock=lambda: self.now)
        intake = Intake(si, oi, directory, IdentityVault(b"k" * 32))
        # the queries read through the driver; the consumers and the scanner
        # go through the store port
        no_db: Any = defaultdict(lambda: None)
        ss = self.stores["supervision"]
        os_ = Outbox(ss, publish, "supervision", clock=lambda: self.now)
        sup = Supervision(no_db, os_, directory)
        # each consumer keeps what it wrote, as the services' do (a new
        # process starts with nothing kept)
        consumers = {
            "reporting": Reporting(no_db, directory).consumer(
                self.stores["reporting"], OwnedDocs(max_docs=1000)
            ),
            "supervision": sup.consumer(ss, OwnedDocs(max_docs=1000)),
        }
        assignment = Assignment(CaseStore(sa, oa), directory)
        return Procs(intake, assignment, [oi, oa, os_], consumers, sup)


@dataclass
class Procs:
    """The processes of one boot."""

    intake: Intake
    assignment: Assignment
    outboxes: list[Outbox]
    consumers: dict[str, BatchConsumer]
    supervision: Supervision


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


async def scenario(
    w: World, requests: list[ipb.RegisterPetitionRequest], changed: District
) -> None:
    """Register and route each case and carry all but the last to a reply;
    then the district's limits change (re-evaluation), and a scan weeks
    later finds what fell due. Restart on a crash."""
    steps: list[tuple[str, ipb.RegisterPetitionRequest | None]] = []
    for i, req in enumerate(requests):
        steps += [("register", req), ("consume", req)]
        if i < len(requests) - 1:
            steps.append(("handle", req))
    # what a crash left unpublished is out (the sweeper, after its grace)
    # before the district changes, as it would be in the half minute a
    # change takes to make
    steps += [("sweep", None), ("consume", None)]
    steps += [("reevaluate", None), ("consume", None), ("scan", None), ("consume", None)]
    crashed: list[bool] = []
    procs = w.boot()

    async def run(what: str, req: ipb.RegisterPetitionRequest | None) -> None:
        if what == "register" and req is not None:
            await procs.intake.register(req)
        elif what == "consume":
            await _consume(w, procs.assignment)
            await _consume_batches(w, procs.consumers)
        elif what == "handle" and req is not None:
            await _handle(procs.assignment, req)
        elif what == "sweep":
            w.now += timedelta(minutes=5)
            for outbox in procs.outboxes:
                await outbox.sweep()
        elif what == "reevaluate":
            w.district = changed
            await procs.supervision.reevaluate(changed.district_id)
        elif what == "scan":
            await procs.supervision.scan(w.now + timedelta(days=40))

    for what, step_req in steps:
        while True:
            try:
                await _command(functools.partial(run, what, step_req), crashed)
                crashed.append(False)
                break
            except Crash:
                crashed.append(True)
                procs = w.boot()  # a new process
    # the end: every process restarted once, the sweeper runs after its grace
    w.now += timedelta(minutes=5)
    for _ in range(3):
        try:
            p = w.boot()
            for outbox in p.outboxes:
                await outbox.sweep()
            await _consume(w, p.assignment)
            await _consume_batches(w, p.consumers)
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
        # documents whose ids mask alike (one per case) are kept as a
        # sorted list under the masked id, so no document hides another
        grouped: defaultdict[str, list[Any]] = defaultdict(list)
        for k, v in value.items():
            grouped[_UUID.sub("<id>", str(k))].append(
                {_UUID.sub("<id>", str(i)): "<position>" for i in v}
                if k in ("_applied", "_wm")
                else _canon(v, now)
            )
        return {
            k: vs[0] if len(vs) == 1 else sorted(vs, key=lambda x: json.dumps(x, sort_keys=True))
            for k, vs in grouped.items()
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


async def _state(w: World) -> tuple[str, str]:
    """What is stored and what was published, comparable across runs.
    Assignment's snapshots are a cache that may lag its records after a
    fault (``assignment.store``: the next load folds the records past it):
    each case is compared as a load reads it, records folded in."""
    dump: dict[str, dict[str, Any]] = {name: s.inner.dump() for name, s in w.stores.items()}
    for d in dump.values():
        d.pop("outbox_pointers", None)
        # a registration retried after a fault may be recorded a second later,
        # into another roster: compared are the cases a district's partition
        # listed, not the seconds they fell in
        if ROSTERS in d:
            listed: defaultdict[str, set[str]] = defaultdict(set)
            for rid, roster in d[ROSTERS].items():
                listed[rid.rsplit(":", 1)[0]] |= set(roster["cases"])
            d[ROSTERS] = {k: sorted(v) for k, v in listed.items()}
    sa = w.stores["assignment"].inner
    cases = CaseStore(sa, Outbox(sa, _no_publish, "assignment"))
    recorded = {
        (r["case_id"], r["district_id"]) for r in dump["assignment"]["case_records"].values()
    }
    dump["assignment"]["cases"] = {
        cid: {"_id": cid, "district_id": did, "version": st.version, "state": to_doc(st)}
        for cid, did in sorted(recorded)
        if (st := await cases.find(did, cid)) is not None
    }
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


async def _no_publish(messages: Sequence[tuple[bytes, bytes]]) -> None:
    raise AssertionError("a load never publishes")


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
    # every limit two days longer: each open clock's deadline moves
    limits = {
        name: {"days": lim.days + 2, "day_type": lim.day_type.value, "warn_days": lim.warn_days}
        for name, lim in DEFAULT_LIMITS.items()
    }
    changed = parse_district({**raw, "limits": limits, "version": 2})
    await scenario(w, _requests(raw, 3), changed)
    return w


def w_before(clock: Mapping[str, Any]) -> datetime:
    """The deadline a clock had before the district changed."""
    raw = sample_district(seed=7, district_id="faults")
    return parse_district(raw).deadline("written_notice", clock["started_at"]).due_at


async def test_every_store_call_faulted_in_turn_recovers_to_the_same_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean = await _run()
    want = await _state(clean)
    calls = clean.faults.n
    assert calls > 20  # the scenario exercises the write path
    snapshots = clean.stores["assignment"].inner.dump()["cases"].values()
    assert sorted(c["state"]["status"] for c in snapshots) == ["replied", "replied", "routed"]
    counters = shards.merge_all(clean.stores["reporting"].inner.dump()["counters"].values())
    year = {d["_id"]: d for d in counters}[f"faults:{clean.now.astimezone(SHANGHAI).year}"]
    assert (year["y"]["received"], year["y"]["routed"], year["y"]["replied"]) == (3, 3, 2)
    # re-evaluation moved the open clocks, and the scan weeks later found
    # the unhandled case's notice overdue and the others' windows over
    kinds = Counter(decode_event(v).WhichOneof("payload") for _k, v in clean.bus)
    assert kinds["deadline_rescheduled"] >= 3, kinds
    assert kinds["deadline_breached"] >= 1 and kinds["supervision_order_issued"] >= 1, kinds
    assert kinds["deadline_window_closed"] >= 2, kinds
    clocks = list(clean.stores["supervision"].inner.dump()["clocks"].values())
    assert any(c.get("breached") for c in clocks)
    moved = [c for c in clocks if c["kind"] == ev.CLOCK_KIND_WRITTEN_NOTICE and c["open"]]
    assert moved and all(
        c["due_at"] == clean.district.deadline("written_notice", c["started_at"]).due_at
        and c["due_at"] > w_before(c)
        for c in moved
    )
    points = 0
    for at in range(1, calls + 1):
        for after in (False, True):
            for error in (Crash, AutoReconnect):
                w = await _run(at, after, error)
                got = await _state(w)
                where = f"call {at} ({'after' if after else 'before'}, {error.__name__})"
                assert got[0] == want[0], f"stored state differs after a fault at {where}"
                assert got[1] == want[1], f"published events differ after a fault at {where}"
                points += 1
    with capsys.disabled():
        print(f"\nfault injection: {points} faults at {calls} store calls, all recovered")


async def test_events_kafka_refused_go_out_before_the_next_commands() -> None:
    """A command whose events Kafka refused has still happened; the case's
    next command must not publish its own events before them (a consumer
    would see the case go backwards when the sweep delivered them later)."""
    raw = sample_district(seed=7, district_id="faults")
    w = World(Faults(), parse_district({**raw, "version": 1}))
    procs = w.boot()
    (req,) = _requests(raw, 1)
    await procs.intake.register(req)
    await _consume(w, procs.assignment)  # routed
    did, case_id = req.district_id, case_id_for(req.district_id, req.request_id)
    outbox = procs.outboxes[1]
    deliver = outbox.publish
    refuse = [True]

    async def flaky(messages: Sequence[tuple[bytes, bytes]]) -> None:
        if refuse[0]:
            raise ConnectionError("broker away")
        await deliver(messages)

    outbox.publish = flaky
    office = ev.Actor(user_id="clerk", role="office")
    await procs.assignment.execute(did, case_id, lc.SendNotice(), office)
    refuse[0] = False
    s = await procs.assignment.store.load(did, case_id)
    assert s.notice_sent  # recorded, though not published
    unit = ev.Actor(user_id="u1", role="unit", unit_id=s.unit_id)
    await procs.assignment.execute(did, case_id, lc.AcceptCase(), unit)
    kinds = [decode_event(v).WhichOneof("payload") for _k, v in w.bus]
    assert "notice_sent" in kinds and kinds.index("notice_sent") < kinds.index("accepted"), kinds
    # and the sweep, later, delivers the notice once more, which consumers
    # take as the duplicate it is
    w.now += timedelta(minutes=5)
    assert await outbox.sweep() == 1
    await _consume_batches(w, procs.consumers)
