"""A tier's time box running out climbs the case one rung of the 民事直说
ladder, through assignment's consumer on the real wiring; at the top (a
district leader's package) there is no rung left, and the breach must not
become a dead letter: the consumer answers "ignored" and the case stays."""

from __future__ import annotations

import uuid

from tests.unit.test_assignment_lists import _world, accepted
from xinfang.assignment import lifecycle as lc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import new_event
from xinfang.core.mongo import Position
from xinfang.sample.generator import sample_district

SCANNER = ev.Actor(user_id="supervision", role="system")


def _breach(district_id: str, case_id: str, tier: int) -> ev.CaseEvent:
    """What supervision's scanner publishes when a tier's time box runs out."""
    return new_event(
        case_id=case_id,
        district_id=district_id,
        producer="supervision",
        case_version=0,
        actor=SCANNER,
        event_id=str(uuid.uuid4()),
        deadline_breached=ev.DeadlineBreached(clock=ev.CLOCK_KIND_TIER, tier=tier),  # type: ignore[arg-type]
    )


async def test_breaches_climb_the_ladder_and_stop_at_its_top() -> None:
    raw = sample_district(seed=7, district_id="lists")
    township = next(u["id"] for u in raw["units"] if u["kind"] == "township")
    # every category to a township: its case starts on the ladder's first rung
    w, reqs = _world([{"rule_id": f"t-{c['code']}", "category": c["code"], "unit_id": township,
                       "decision": "accept"} for c in raw["categories"]])  # fmt: skip
    a, s, _unit = await accepted(w, reqs[0])
    did, case_id = s.district_id, s.case_id
    assert s.tier == lc.LADDER[0]
    climbed = [s.tier]
    offset = len(w.bus)
    while not lc.at_top(s):
        [result] = await a.handle_batch([(_breach(did, case_id, s.tier), Position(0, offset))])
        offset += 1
        assert result == "applied"
        s = await a.store.load(did, case_id)
        climbed.append(s.tier)
    assert climbed == list(lc.LADDER[lc.LADDER.index(climbed[0]) :])
    top = _breach(did, case_id, s.tier)
    [result] = await a.handle_batch([(top, Position(0, offset))])
    assert result == "ignored"  # before the fix: a FailedPrecondition, dead-lettered
    after = await a.store.load(did, case_id)
    assert (after.version, after.tier, after.status) == (s.version, s.tier, s.status)
    # a breach of a rung the case has left is ignored too (it moved on first)
    [stale] = await a.handle_batch([(_breach(did, case_id, climbed[0]), Position(0, offset + 1))])
    assert stale == "ignored"
