"""The district's lists that commands do not write: open packages per leader
(for balancing) and the cases waiting to be routed by hand. The consumer of
the case's partition keeps them, from the case's latest state, in its own
shard, so two replicas serving commands never update one document at once."""

from __future__ import annotations

from datetime import UTC, timedelta

from tests.unit.test_faults import Faults, World, _consume, _requests
from xinfang.assignment import lifecycle as lc
from xinfang.assignment.app import LOADS, UNROUTED, Assignment
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.districts import parse_district
from xinfang.intake.domain import case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.sample.generator import sample_district

OFFICE = ev.Actor(user_id="clerk", role="office")


def _world(routing: list[dict[str, str]] | None = None) -> tuple[World, list]:  # type: ignore[type-arg]
    raw = sample_district(seed=7, district_id="lists")
    reqs = _requests(raw, 2)
    if routing is not None:
        raw = {**raw, "routing": routing}
    district = parse_district({**raw, "version": 1})
    # received on a leader's reception day, a case is packaged by that leader
    # as it is accepted (``lifecycle._accept``): these tests package by hand,
    # so their petitions come in on a day without one
    for r in reqs:
        at = r.received_at.ToDatetime(tzinfo=UTC)
        while district.reception.leader_on(at.astimezone(SHANGHAI).date()):
            at -= timedelta(days=1)
        r.received_at.FromDatetime(at)
    return World(Faults(), district), reqs


async def test_a_routed_new_case_writes_no_list() -> None:
    w, reqs = _world()
    p = w.boot()
    for r in reqs:
        await p.intake.register(r)
    await _consume(w, p.assignment)
    dump = w.stores["assignment"].inner.dump()
    assert LOADS not in dump and UNROUTED not in dump
    assert (await p.assignment.unrouted("lists")).cases == []


async def accepted(
    w: World, req: ipb.RegisterPetitionRequest
) -> tuple[Assignment, lc.CaseState, ev.Actor]:
    """A petition registered, routed by the consumer, noticed and accepted by
    its unit: assignment, the case's state, and the unit's caller."""
    p = w.boot()
    a = p.assignment
    await p.intake.register(req)
    await _consume(w, a)
    s = await a.store.load("lists", case_id_for("lists", req.request_id))
    unit = ev.Actor(user_id="u1", role="unit", unit_id=s.unit_id)
    await a.execute(s.district_id, s.case_id, lc.SendNotice(), OFFICE)
    return a, await a.execute(s.district_id, s.case_id, lc.AcceptCase(), unit), unit


async def test_leader_load_follows_the_packages_once_consumed() -> None:
    w, reqs = _world()
    a, s, unit = await accepted(w, reqs[0])
    did, case_id = s.district_id, s.case_id
    first, second = sorted(w.district.leaders)[:2]
    await a.execute(did, case_id, lc.AssignLeader(first), OFFICE)
    assert await a._leader_load(did) == {}  # the consumer has not seen it yet
    await _consume(w, a)
    assert await a._leader_load(did) == {first: 1}
    await a.execute(did, case_id, lc.AssignLeader(second), OFFICE)
    await _consume(w, a)
    assert await a._leader_load(did) == {second: 1}
    await _consume(w, a)  # nothing new: the list stays
    w.committed = 0  # every event delivered again: the list is the same
    await _consume(w, a)
    assert await a._leader_load(did) == {second: 1}
    await a.execute(did, case_id, lc.Reply(resolved=True), unit)
    await _consume(w, a)
    assert await a._leader_load(did) == {}


async def test_a_case_no_row_matches_is_listed_until_routed_by_hand() -> None:
    raw = sample_district(seed=7, district_id="lists")
    asked = {r.category for r in _requests(raw, 2)}
    other = next(c["code"] for c in raw["categories"] if c["code"] not in asked)
    w, reqs = _world([{"rule_id": "only", "category": other,
                       "unit_id": raw["units"][0]["id"], "decision": "forward"}])  # fmt: skip
    p = w.boot()
    a = p.assignment
    for r in reqs:
        await p.intake.register(r)
    await _consume(w, a)
    did = "lists"
    ids = sorted(case_id_for(did, r.request_id) for r in reqs)
    assert sorted(c.case_id for c in (await a.unrouted(did)).cases) == ids
    unit = raw["units"][0]["id"]
    await a.execute(
        did, ids[0], lc.RouteCase(decision=ev.ROUTING_DECISION_FORWARD, unit_id=unit), OFFICE
    )
    await _consume(w, a)
    assert [c.case_id for c in (await a.unrouted(did)).cases] == ids[1:]
