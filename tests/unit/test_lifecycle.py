"""The case lifecycle (``assignment.lifecycle``): every transition and every
refusal of ``decide``, and how ``apply`` folds the events it causes.

The district is the sample one (``sample_district(7, "d1")``): township
units ``u-t01``..., departments such as ``u-zjj``, the petition office
``u-xfj``, district leaders ``l-d1``..``l-d6`` on a Thursday reception rota
from 2026-01-01, and one leader ``l-tNN`` per township. Dates in 2025 fall in
years the official calendar covers, so the windows below are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message

from xinfang.assignment import lifecycle as lc
from xinfang.assignment.lifecycle import CaseState, Ctx, Status
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import new_event, payload_field, to_timestamp
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from xinfang.sample.generator import sample_district

CASE_ID = "case-1"
DISTRICT_ID = "d1"
DOC = sample_district(7, DISTRICT_ID)
DISTRICT = parse_district(DOC)

TOWNSHIP = "t01"
TOWN_UNIT = "u-t01"  # the township's government: 属地 for property disputes in t01
TOWN_LEADER = "l-t01"
DEPT = "u-zjj"  # 区住房和城乡建设局, competent for real estate
OFFICE_UNIT = "u-xfj"  # the petition office: the table's catch-all (forward)
DISTRICT_LEADERS = sorted(lid for lid, ld in DISTRICT.leaders.items() if ld.level == "district")


def sh(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI)


RECEIVED = sh(2025, 3, 3, 9)  # a Monday
ROUTED_AT = sh(2025, 3, 5)  # Wednesday; 5 working days end Wed 12 March, 24:00
OBJECTION_DUE = sh(2025, 3, 13, 0)
ACCEPTED_AT = sh(2025, 3, 6)
REPLIED_AT = sh(2025, 3, 6, 15)  # +30 days is Sat 5 April (清明), so the window runs to Mon 7 April
REVIEW_DUE = sh(2025, 4, 8, 0)
REVIEWED_AT = sh(2025, 4, 21)  # Monday; +30 days is Wed 21 May
REREVIEW_DUE = sh(2025, 5, 22, 0)


# ---- helpers -------------------------------------------------------------------------


def ctx(
    now: datetime,
    role: str = "office",
    unit_id: str = "",
    *,
    district: District = DISTRICT,
    load: Mapping[str, int] | None = None,
) -> Ctx:
    return Ctx(district=district, now=now, role=role, unit_id=unit_id, leader_load=load or {})


def unit(unit_id: str, now: datetime) -> Ctx:
    return ctx(now, "unit", unit_id)


def registered(
    *,
    category: str = "property_management",
    township: str = TOWNSHIP,
    channel: ev.Channel.ValueType = ev.CHANNEL_ONLINE,
    received_at: datetime = RECEIVED,
    group: bool = False,
    source: ev.Source.ValueType = ev.SOURCE_DIRECT,
    escalated: bool = False,
    repeat_count: int = 0,
) -> CaseState:
    reg = ev.CaseRegistered(
        channel=channel,
        township_id=township,
        village_id=f"{township}-v01",
        category=category,
        content="反映有关问题",
        people_count=30 if group else 1,
        source=source,
        group=group,
        representatives=3 if group else 0,
        escalated=escalated,
        repeat_count=repeat_count,
    )
    reg.received_at.CopyFrom(to_timestamp(received_at))
    event = new_event(
        case_id=CASE_ID,
        district_id=DISTRICT_ID,
        producer="intake",
        case_version=1,
        occurred_at=received_at,
        registered=reg,
    )
    return lc.from_registration(event)


def fold(state: CaseState, payloads: Sequence[Message], now: datetime) -> CaseState:
    new = state
    for i, p in enumerate(payloads):
        new = lc.apply(
            new,
            new_event(
                case_id=state.case_id,
                district_id=state.district_id,
                producer="test",
                case_version=state.version + i + 1,
                occurred_at=now,
                payload=p,
            ),
        )
    return new


def step(state: CaseState, cmd: lc.Command, c: Ctx) -> CaseState:
    """Decide, wrap each payload in an envelope, and fold the events in."""
    return fold(state, lc.decide(state, cmd, c), c.now)


def kinds(payloads: Sequence[Message]) -> list[str]:
    return [payload_field(p) for p in payloads]


def routed(
    state: CaseState | None = None,
    unit_id: str = TOWN_UNIT,
    decision: ev.RoutingDecision.ValueType = ev.ROUTING_DECISION_ACCEPT,
    at: datetime = ROUTED_AT,
) -> CaseState:
    return step(state or registered(), lc.RouteCase(decision, unit_id), ctx(at))


def accepted(state: CaseState | None = None, at: datetime = ACCEPTED_AT) -> CaseState:
    s = state or routed()
    return step(s, lc.AcceptCase(), unit(s.unit_id, at))


def replied(
    state: CaseState | None = None, resolved: bool = True, at: datetime = REPLIED_AT
) -> CaseState:
    s = state or accepted()
    return step(s, lc.Reply(resolved=resolved), unit(s.unit_id, at))


def reviewed(state: CaseState | None = None, at: datetime = REVIEWED_AT) -> CaseState:
    s = step(state or replied(), lc.RequestReview(), ctx(sh(2025, 3, 20)))
    return step(s, lc.DecideReview(upheld=True), ctx(at))


def refused(state: CaseState, cmd: lc.Command, c: Ctx) -> str:
    with pytest.raises(FailedPrecondition) as info:
        lc.decide(state, cmd, c)
    return info.value.message


def invalid(state: CaseState, cmd: lc.Command, c: Ctx) -> str:
    with pytest.raises(InvalidArgument) as info:
        lc.decide(state, cmd, c)
    return info.value.field


# ---- the sample district is what these tests assume ----------------------------------


def test_sample_district_has_what_the_tests_rely_on() -> None:
    assert DISTRICT.units[TOWN_UNIT].kind == "township"
    assert DISTRICT.units[DEPT].kind == "department"
    assert DISTRICT.units[OFFICE_UNIT].kind == "office"
    assert DISTRICT.leaders[TOWN_LEADER].township_id == TOWNSHIP
    assert DISTRICT_LEADERS == ["l-d1", "l-d2", "l-d3", "l-d4", "l-d5", "l-d6"]
    assert DISTRICT.reception.rota == tuple(DOC["reception"]["rota"])


# ---- registration --------------------------------------------------------------------


def test_registration_starts_the_case() -> None:
    s = registered(group=True, source=ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT, repeat_count=2)
    assert s.status is Status.REGISTERED
    assert s.version == 1
    assert s.received_at == RECEIVED
    assert s.group and s.higher_level and s.repeat_count == 2
    assert s.township_id == TOWNSHIP and s.category == "property_management"
    assert len(s.inputs) == 1


# ---- route ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "unit_id"),
    [(ev.ROUTING_DECISION_ACCEPT, TOWN_UNIT), (ev.ROUTING_DECISION_FORWARD, OFFICE_UNIT)],
)
def test_route_to_a_unit(decision: ev.RoutingDecision.ValueType, unit_id: str) -> None:
    s = registered()
    payloads = lc.decide(s, lc.RouteCase(decision, unit_id), ctx(ROUTED_AT))
    assert payloads == [
        ev.CaseRouted(
            decision=decision, unit_id=unit_id, rule_id="manual", rules_version=DISTRICT.version
        )
    ]
    after = fold(s, payloads, ROUTED_AT)
    assert after.status is Status.ROUTED
    assert after.decision == decision
    assert after.unit_id == unit_id
    assert after.rule_id == "manual"
    assert after.routed_at == ROUTED_AT
    assert after.version == 2


def test_decline_with_a_reason() -> None:
    s = step(
        registered(),
        lc.RouteCase(ev.ROUTING_DECISION_DECLINE, reason="already settled by a court"),
        ctx(ROUTED_AT),
    )
    assert s.status is Status.DECLINED
    assert s.decision == ev.ROUTING_DECISION_DECLINE


@pytest.mark.parametrize("reason", ["", "   "])
def test_decline_needs_a_reason(reason: str) -> None:
    cmd = lc.RouteCase(ev.ROUTING_DECISION_DECLINE, reason=reason)
    assert invalid(registered(), cmd, ctx(ROUTED_AT)) == "reason"


@pytest.mark.parametrize(
    ("decision", "unit_id"),
    [
        (ev.ROUTING_DECISION_OUT_LITIGATION, "u-court"),
        (ev.ROUTING_DECISION_OUT_DISCIPLINE, "u-discipline"),
    ],
)
def test_out_of_the_petition_system(decision: ev.RoutingDecision.ValueType, unit_id: str) -> None:
    s = step(registered(), lc.RouteCase(decision, unit_id), ctx(ROUTED_AT))
    assert s.status is Status.OUT_OF_SYSTEM
    assert s.unit_id == unit_id


def test_route_to_an_unknown_unit() -> None:
    cmd = lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-nowhere")
    assert invalid(registered(), cmd, ctx(ROUTED_AT)) == "unit_id"


def test_route_with_no_decision() -> None:
    cmd = lc.RouteCase(ev.ROUTING_DECISION_UNSPECIFIED, TOWN_UNIT)
    assert invalid(registered(), cmd, ctx(ROUTED_AT)) == "decision"


def test_routing_a_routed_case_names_its_status() -> None:
    cmd = lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, DEPT)
    message = refused(routed(), cmd, ctx(ROUTED_AT))
    assert "routed" in message
    assert CASE_ID in message


def test_a_declined_case_is_not_routed_again() -> None:
    s = step(registered(), lc.RouteCase(ev.ROUTING_DECISION_DECLINE, reason="x"), ctx(ROUTED_AT))
    assert "declined" in refused(s, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, DEPT), ctx(ROUTED_AT))


# ---- written notice ------------------------------------------------------------------


def test_notice_before_a_decision_is_refused() -> None:
    refused(registered(), lc.SendNotice(), ctx(ROUTED_AT))


def test_notice_once_only() -> None:
    s = routed()
    now = ROUTED_AT + timedelta(hours=2)
    payloads = lc.decide(s, lc.SendNotice(), ctx(now))
    assert payloads == [ev.NoticeSent(sent_at=to_timestamp(now))]
    s = fold(s, payloads, now)
    assert s.notice_sent
    assert s.status is Status.ROUTED
    assert "Art. 23" in refused(s, lc.SendNotice(), ctx(now))


def test_a_declined_petitioner_is_told_in_writing() -> None:
    s = step(registered(), lc.RouteCase(ev.ROUTING_DECISION_DECLINE, reason="x"), ctx(ROUTED_AT))
    assert step(s, lc.SendNotice(), ctx(ROUTED_AT)).notice_sent


# ---- accept --------------------------------------------------------------------------


def test_the_routed_township_accepts_at_village_mediation() -> None:
    s = routed()
    payloads = lc.decide(s, lc.AcceptCase(), unit(TOWN_UNIT, ACCEPTED_AT))
    assert payloads == [ev.CaseAccepted(unit_id=TOWN_UNIT, tier=ev.TIER_VILLAGE_MEDIATION)]
    s = fold(s, payloads, ACCEPTED_AT)
    assert s.status is Status.ACCEPTED
    assert s.accepted_at == ACCEPTED_AT
    assert s.tier == ev.TIER_VILLAGE_MEDIATION
    assert s.leader_id == ""


def test_a_department_accepts_off_the_ladder() -> None:
    s = accepted(routed(registered(category="real_estate"), DEPT))
    assert s.status is Status.ACCEPTED
    assert s.tier == ev.TIER_UNSPECIFIED


def test_another_unit_may_not_accept() -> None:
    with pytest.raises(PermissionDenied):
        lc.decide(routed(), lc.AcceptCase(), unit(DEPT, ACCEPTED_AT))


@pytest.mark.parametrize("role", ["office", "system"])
def test_the_office_may_accept_for_the_unit(role: str) -> None:
    s = step(routed(), lc.AcceptCase(), ctx(ACCEPTED_AT, role))
    assert s.status is Status.ACCEPTED
    assert s.unit_id == TOWN_UNIT


def test_accept_needs_a_routed_case() -> None:
    assert "registered" in refused(registered(), lc.AcceptCase(), ctx(ACCEPTED_AT))
    assert "accepted" in refused(accepted(), lc.AcceptCase(), ctx(ACCEPTED_AT))


# ---- leader packages on acceptance (领导包案) --------------------------------------------


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ({"group": True}, "group"),
        ({"source": ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT}, "higher_level"),
        ({"escalated": True}, "escalated"),
        ({"repeat_count": 3}, "repeat"),
        ({"repeat_count": 7}, "repeat"),
    ],
)
def test_leader_package_on_acceptance_by_rule(case: dict[str, Any], rule: str) -> None:
    s = routed(registered(**case))
    payloads = lc.decide(s, lc.AcceptCase(), unit(TOWN_UNIT, ACCEPTED_AT))
    assert kinds(payloads) == ["accepted", "leader_package_assigned"]
    assert payloads[0] == ev.CaseAccepted(unit_id=TOWN_UNIT, tier=ev.TIER_DISTRICT_LEADER_PACKAGE)
    package = payloads[1]
    assert isinstance(package, ev.LeaderPackageAssigned)
    assert package.rule == rule
    assert package.tier == ev.TIER_DISTRICT_LEADER_PACKAGE
    assert DISTRICT.leaders[package.leader_id].level == "district"
    s = fold(s, payloads, ACCEPTED_AT)
    assert s.tier == ev.TIER_DISTRICT_LEADER_PACKAGE
    assert s.leader_id == package.leader_id
    assert s.version == 4


def test_below_the_repeat_threshold_no_package() -> None:
    s = accepted(routed(registered(repeat_count=2)))
    assert s.tier == ev.TIER_VILLAGE_MEDIATION
    assert s.leader_id == ""


def test_rules_a_district_switched_off_package_nothing() -> None:
    doc = {**DOC, "leader_rules": {"group": False, "repeat_threshold": 0}}
    district = parse_district(doc)
    s = routed(registered(group=True, repeat_count=9))
    payloads = lc.decide(s, lc.AcceptCase(), ctx(ACCEPTED_AT, district=district))
    assert kinds(payloads) == ["accepted"]


def test_a_district_without_leaders_packages_nothing() -> None:
    district = parse_district({**DOC, "leaders": [], "reception": {}})
    s = routed(registered(group=True))
    payloads = lc.decide(s, lc.AcceptCase(), ctx(ACCEPTED_AT, district=district))
    assert payloads == [ev.CaseAccepted(unit_id=TOWN_UNIT, tier=ev.TIER_VILLAGE_MEDIATION)]


def test_the_least_loaded_district_leader_packages_ties_by_id() -> None:
    # l-d3 and l-d4 hold one open package each; a township leader with none is not eligible
    load = {"l-d1": 4, "l-d2": 2, "l-d3": 1, "l-d4": 1, "l-d5": 3, "l-d6": 2, TOWN_LEADER: 0}
    s = routed(registered(group=True))
    payloads = lc.decide(s, lc.AcceptCase(), ctx(ACCEPTED_AT, load=load))
    assert payloads[1] == ev.LeaderPackageAssigned(
        leader_id="l-d3", rule="group", tier=ev.TIER_DISTRICT_LEADER_PACKAGE
    )


def test_a_leader_missing_from_the_load_holds_nothing() -> None:
    load = {lid: 1 for lid in DISTRICT_LEADERS if lid != "l-d5"}
    s = routed(registered(group=True))
    payloads = lc.decide(s, lc.AcceptCase(), ctx(ACCEPTED_AT, load=load))
    assert isinstance(payloads[1], ev.LeaderPackageAssigned)
    assert payloads[1].leader_id == "l-d5"


def _rota_leader(day: date) -> str:
    reception = DOC["reception"]
    start = date.fromisoformat(reception["start"])
    rota: list[str] = reception["rota"]
    return rota[((day - start).days // 7) % len(rota)]


@pytest.mark.parametrize(
    "received_at",
    [
        sh(2026, 3, 12, 10),  # a Thursday, ten weeks into the rota
        sh(2026, 3, 12, 1, 30),  # still Thursday in Shanghai, Wednesday in UTC
        sh(2026, 1, 8, 9),  # the rota's second week
        sh(2026, 2, 19, 16),  # week 7: the rota has wrapped round
    ],
)
def test_a_visit_on_reception_day_goes_to_the_rota_leader(received_at: datetime) -> None:
    day = received_at.date()
    assert day.weekday() == 3
    expected = _rota_leader(day)
    # the rota leader is the busiest: the reception rule, not load balancing, chose them
    load = {lid: (9 if lid == expected else 0) for lid in DISTRICT_LEADERS}
    s = routed(registered(channel=ev.CHANNEL_VISIT, received_at=received_at))
    payloads = lc.decide(s, lc.AcceptCase(), unit(TOWN_UNIT, received_at + timedelta(days=1)))
    assert payloads[1:] == [
        ev.LeaderPackageAssigned(
            leader_id=expected, rule="reception_day", tier=ev.TIER_DISTRICT_LEADER_PACKAGE
        )
    ]
    # and with load balancing the same case would have gone elsewhere
    assert lc.pick_leader(ctx(received_at, load=load), "district") != expected


def test_the_rota_index_is_weeks_since_the_start() -> None:
    assert _rota_leader(date(2026, 1, 1)) == "l-d1"
    assert _rota_leader(date(2026, 1, 8)) == "l-d2"
    assert _rota_leader(date(2026, 3, 12)) == "l-d5"  # 10 weeks in: 10 % 6 == 4
    assert _rota_leader(date(2026, 2, 12)) == "l-d1"  # 6 weeks in: round again


@pytest.mark.parametrize(
    ("channel", "received_at"),
    [
        (ev.CHANNEL_VISIT, sh(2026, 3, 11)),  # a Wednesday
        (ev.CHANNEL_ONLINE, sh(2026, 3, 12)),  # Thursday, but not a visit
        (ev.CHANNEL_VISIT, sh(2025, 12, 25)),  # a Thursday before the rota starts
        (ev.CHANNEL_VISIT, sh(2026, 3, 13, 0, 30)),  # Thursday in UTC, Friday in Shanghai
    ],
)
def test_no_reception_package_off_the_rota(
    channel: ev.Channel.ValueType, received_at: datetime
) -> None:
    s = routed(registered(channel=channel, received_at=received_at))
    payloads = lc.decide(s, lc.AcceptCase(), unit(TOWN_UNIT, received_at + timedelta(days=1)))
    assert kinds(payloads) == ["accepted"]


# ---- remit objection (Art. 23) -------------------------------------------------------


def test_objection_in_time_reroutes_by_the_table_without_the_objector() -> None:
    s = routed()
    now = OBJECTION_DUE - timedelta(minutes=1)  # five working days later, over a weekend
    payloads = lc.decide(s, lc.ObjectRemit("not ours"), unit(TOWN_UNIT, now))
    assert payloads == [
        ev.RemitObjected(unit_id=TOWN_UNIT, reason="not ours"),
        ev.CaseRouted(
            decision=ev.ROUTING_DECISION_ACCEPT,
            unit_id=DEPT,
            rule_id="r-property_management",
            rules_version=DISTRICT.version,
            reason="re-routed after objection",
        ),
    ]
    back = fold(s, payloads[:1], now)
    assert back.status is Status.REGISTERED
    assert back.objected_units == (TOWN_UNIT,)
    assert back.unit_id == ""
    assert back.decision == ev.ROUTING_DECISION_UNSPECIFIED
    assert back.routed_at is None

    after = fold(s, payloads, now)
    assert after.status is Status.ROUTED
    assert after.unit_id == DEPT
    assert after.objected_units == (TOWN_UNIT,)
    assert after.routed_at == now
    assert after.version == s.version + 2


def test_a_second_objection_is_a_dispute_the_common_superior_decides() -> None:
    s = routed()
    s = step(s, lc.ObjectRemit("not ours"), unit(TOWN_UNIT, sh(2025, 3, 6)))
    assert (s.status, s.unit_id) == (Status.ROUTED, DEPT)
    # the department refuses it too: the two units dispute it (Art. 24)
    payloads = lc.decide(s, lc.ObjectRemit("nor ours"), unit(DEPT, sh(2025, 3, 7)))
    assert kinds(payloads) == ["remit_objected", "remit_disputed"]
    assert list(payloads[1].unit_ids) == [TOWN_UNIT, DEPT]  # type: ignore[attr-defined]
    s = fold(s, payloads, sh(2025, 3, 7))
    assert (s.status, s.unit_id) == (Status.DISPUTED, "")
    assert s.objected_units == (TOWN_UNIT, DEPT)
    # nothing moves it but the designation
    for cmd in (lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-t02"), lc.AcceptCase()):
        assert "disputed" in refused(s, cmd, ctx(sh(2025, 3, 8)))
    with pytest.raises(PermissionDenied, match=r"^actor\.role"):
        lc.decide(s, lc.DesignateUnit(DEPT, "its remit"), unit(DEPT, sh(2025, 3, 8)))
    assert invalid(s, lc.DesignateUnit("u-nowhere", "x"), ctx(sh(2025, 3, 8))) == "unit_id"
    assert invalid(s, lc.DesignateUnit(DEPT, " "), ctx(sh(2025, 3, 8))) == "reason"
    # a district leader speaks for the superior and may name one of the disputants
    leader = ctx(sh(2025, 3, 9), "leader")
    s = step(s, lc.DesignateUnit(DEPT, "property services are the department's remit"), leader)
    assert (s.status, s.unit_id, s.designated) == (Status.ROUTED, DEPT, True)
    assert s.decision == ev.ROUTING_DECISION_FORWARD
    message = refused(s, lc.ObjectRemit("still not ours"), unit(DEPT, sh(2025, 3, 10)))
    assert "Art. 24" in message
    s = step(s, lc.AcceptCase(), unit(DEPT, sh(2025, 3, 10)))
    assert s.status is Status.ACCEPTED
    refused(s, lc.DesignateUnit(TOWN_UNIT, "again"), ctx(sh(2025, 3, 11)))


def test_an_objection_with_no_unit_left_waits_for_the_office() -> None:
    table_without_other_rows = routed()
    only = tuple(r for r in DISTRICT.routing if r.unit_id == TOWN_UNIT)
    c = replace(unit(TOWN_UNIT, sh(2025, 3, 6)), district=replace(DISTRICT, routing=only))
    payloads = lc.decide(table_without_other_rows, lc.ObjectRemit("not ours"), c)
    assert kinds(payloads) == ["remit_objected"]
    s = fold(table_without_other_rows, payloads, sh(2025, 3, 6))
    assert (s.status, s.objected_units) == (Status.REGISTERED, (TOWN_UNIT,))
    refused(s, lc.SendNotice(), ctx(sh(2025, 3, 6)))
    assert invalid(s, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, TOWN_UNIT), ctx(sh(2025, 3, 6))) == (
        "unit_id"
    )
    s = step(s, lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, "u-t02"), ctx(sh(2025, 3, 6)))
    assert (s.status, s.unit_id) == (Status.ROUTED, "u-t02")


def test_objection_after_five_working_days_is_refused() -> None:
    message = refused(routed(), lc.ObjectRemit("not ours"), unit(TOWN_UNIT, OBJECTION_DUE))
    assert "Art. 23" in message
    assert "routed" in message


def test_the_objection_window_counts_working_days_not_calendar_days() -> None:
    # seven calendar days after routing, but only five working days: still open
    s = step(routed(), lc.ObjectRemit("not ours"), unit(TOWN_UNIT, sh(2025, 3, 12, 18)))
    assert s.objected_units == (TOWN_UNIT,)


def test_the_window_restarts_when_the_case_is_rerouted() -> None:
    s = step(routed(), lc.ObjectRemit("not ours"), unit(TOWN_UNIT, sh(2025, 3, 12, 18)))
    # the first window closed at OBJECTION_DUE; the new unit has its own five days
    s = step(s, lc.ObjectRemit("nor ours"), unit(DEPT, OBJECTION_DUE + timedelta(days=1)))
    assert s.objected_units == (TOWN_UNIT, DEPT)


@pytest.mark.parametrize("reason", ["", "  \n"])
def test_an_objection_states_why(reason: str) -> None:
    assert invalid(routed(), lc.ObjectRemit(reason), unit(TOWN_UNIT, sh(2025, 3, 6))) == "reason"


def test_only_the_routed_unit_objects() -> None:
    with pytest.raises(PermissionDenied):
        lc.decide(routed(), lc.ObjectRemit("not ours"), unit(DEPT, sh(2025, 3, 6)))


def test_an_accepted_case_is_not_objected_to() -> None:
    assert "accepted" in refused(accepted(), lc.ObjectRemit("x"), unit(TOWN_UNIT, ACCEPTED_AT))


def test_manual_routing_to_an_objected_unit_is_invalid() -> None:
    s = fold(
        routed(),
        [ev.RemitObjected(unit_id=TOWN_UNIT, reason="not ours")],
        sh(2025, 3, 6),
    )
    assert s.status is Status.REGISTERED
    cmd = lc.RouteCase(ev.ROUTING_DECISION_FORWARD, TOWN_UNIT)
    assert invalid(s, cmd, ctx(sh(2025, 3, 6))) == "unit_id"


# ---- the 民事直说 ladder -----------------------------------------------------------------


def test_escalation_climbs_the_whole_ladder() -> None:
    s = accepted()
    now = sh(2025, 3, 20)
    load = {"l-d1": 2, "l-d2": 1, "l-d3": 2, "l-d4": 2, "l-d5": 2, "l-d6": 2}
    c = ctx(now, load=load)

    climb = [
        (ev.TIER_VILLAGE_MEDIATION, ev.TIER_TOWNSHIP, None),
        (ev.TIER_TOWNSHIP, ev.TIER_TOWNSHIP_JOINT_MEETING, None),
        (ev.TIER_TOWNSHIP_JOINT_MEETING, ev.TIER_TOWNSHIP_LEADER_PACKAGE, TOWN_LEADER),
        (ev.TIER_TOWNSHIP_LEADER_PACKAGE, ev.TIER_DISTRICT_LEADER_PACKAGE, "l-d2"),
    ]
    for frm, to, leader in climb:
        assert s.tier == frm
        payloads = lc.decide(s, lc.Escalate("not settled"), c)
        assert payloads[0] == ev.TierEscalated(from_tier=frm, to_tier=to, reason="not settled")
        if leader is None:
            assert len(payloads) == 1
        else:
            assert payloads[1:] == [
                ev.LeaderPackageAssigned(leader_id=leader, rule="escalation", tier=to)
            ]
        s = fold(s, payloads, now)
        assert s.tier == to
        assert s.status is Status.ACCEPTED
        if leader is not None:
            assert s.leader_id == leader

    assert DISTRICT.leaders[s.leader_id].level == "district"
    message = refused(s, lc.Escalate("still not settled"), c)
    assert "top of the ladder" in message


def test_escalation_on_breach_is_marked() -> None:
    payloads = lc.decide(
        accepted(), lc.Escalate("time box ran out", on_breach=True), ctx(ACCEPTED_AT)
    )
    assert isinstance(payloads[0], ev.TierEscalated)
    assert payloads[0].on_breach


def test_a_department_case_goes_straight_to_a_district_leader() -> None:
    s = accepted(routed(registered(category="real_estate"), DEPT))
    assert s.tier == ev.TIER_UNSPECIFIED
    payloads = lc.decide(s, lc.Escalate("needs the district"), ctx(sh(2025, 3, 20)))
    assert payloads == [
        ev.TierEscalated(
            from_tier=ev.TIER_UNSPECIFIED,
            to_tier=ev.TIER_DISTRICT_LEADER_PACKAGE,
            reason="needs the district",
        ),
        ev.LeaderPackageAssigned(
            leader_id="l-d1", rule="escalation", tier=ev.TIER_DISTRICT_LEADER_PACKAGE
        ),
    ]
    s = fold(s, payloads, sh(2025, 3, 20))
    assert (s.tier, s.leader_id) == (ev.TIER_DISTRICT_LEADER_PACKAGE, "l-d1")
    refused(s, lc.Escalate("again"), ctx(sh(2025, 3, 21)))


def test_a_case_packaged_on_acceptance_is_already_at_the_top() -> None:
    s = accepted(routed(registered(group=True)))
    assert "top of the ladder" in refused(s, lc.Escalate("x"), ctx(sh(2025, 3, 20)))


@pytest.mark.parametrize("make", [registered, routed])
def test_escalation_before_acceptance_is_refused(make: Any) -> None:
    state: CaseState = make()
    assert state.status.value in refused(state, lc.Escalate("x"), ctx(ACCEPTED_AT))


def test_a_township_without_a_leader_is_packaged_by_nobody() -> None:
    doc = {**DOC, "leaders": [ld for ld in DOC["leaders"] if ld["id"] != TOWN_LEADER]}
    district = parse_district(doc)
    s = accepted()
    c = ctx(sh(2025, 3, 20), district=district)
    s = step(s, lc.Escalate("x"), c)
    s = step(s, lc.Escalate("x"), c)
    payloads = lc.decide(s, lc.Escalate("x"), c)
    assert kinds(payloads) == ["tier_escalated"]


# ---- manual leader packages ----------------------------------------------------------


def test_assign_a_named_leader() -> None:
    s = accepted()
    payloads = lc.decide(s, lc.AssignLeader("l-d4"), ctx(sh(2025, 3, 20)))
    assert payloads == [
        ev.LeaderPackageAssigned(leader_id="l-d4", rule="manual", tier=ev.TIER_VILLAGE_MEDIATION)
    ]
    s = fold(s, payloads, sh(2025, 3, 20))
    assert s.leader_id == "l-d4"
    assert s.tier == ev.TIER_VILLAGE_MEDIATION  # a manual package does not move the case
    assert "already packages" in refused(s, lc.AssignLeader("l-d4"), ctx(sh(2025, 3, 21)))
    assert step(s, lc.AssignLeader("l-d5"), ctx(sh(2025, 3, 21))).leader_id == "l-d5"


def test_assign_without_a_name_picks_the_least_loaded_district_leader() -> None:
    load = {lid: 3 for lid in DISTRICT_LEADERS} | {"l-d6": 0}
    s = step(accepted(), lc.AssignLeader(), ctx(sh(2025, 3, 20), load=load))
    assert s.leader_id == "l-d6"


def test_assign_an_unknown_leader() -> None:
    assert invalid(accepted(), lc.AssignLeader("l-nobody"), ctx(sh(2025, 3, 20))) == "leader_id"


def test_assign_without_leaders_is_invalid() -> None:
    district = parse_district({**DOC, "leaders": [], "reception": {}})
    c = ctx(sh(2025, 3, 20), district=district)
    assert invalid(accepted(), lc.AssignLeader(), c) == "leader_id"


def test_assign_before_acceptance_is_refused() -> None:
    assert "routed" in refused(routed(), lc.AssignLeader("l-d1"), ctx(sh(2025, 3, 20)))


# ---- extension (Art. 34) -------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 15, 30])
def test_extend_once(days: int) -> None:
    s = accepted()
    before = lc.handling_due(s, DISTRICT)
    cmd = lc.ExtendHandling(days, "approver-1", "site survey needed")
    payloads = lc.decide(s, cmd, unit(TOWN_UNIT, sh(2025, 4, 1)))
    assert payloads == [
        ev.HandlingExtended(days=days, approver_id="approver-1", reason="site survey needed")
    ]
    s = fold(s, payloads, sh(2025, 4, 1))
    assert s.extension_days == days
    after = lc.handling_due(s, DISTRICT)
    assert before is not None and after is not None and after >= before
    again = lc.ExtendHandling(1, "approver-1", "more")
    assert "Art. 34" in refused(s, again, unit(TOWN_UNIT, sh(2025, 4, 2)))


def test_handling_falls_due_sixty_days_after_acceptance_plus_the_extension() -> None:
    s = accepted()  # 6 March 2025; day 60 is 5 May (劳动节), so handling runs to 6 May
    assert lc.handling_due(s, DISTRICT) == sh(2025, 5, 7, 0)
    extended = step(s, lc.ExtendHandling(30, "a", "b"), ctx(sh(2025, 4, 1)))
    assert lc.handling_due(extended, DISTRICT) == sh(2025, 6, 5, 0)
    assert lc.handling_due(registered(), DISTRICT) is None


@pytest.mark.parametrize("days", [0, -1, 31, 365])
def test_extension_days_out_of_range(days: int) -> None:
    cmd = lc.ExtendHandling(days, "approver-1", "why")
    assert invalid(accepted(), cmd, ctx(sh(2025, 4, 1))) == "days"


@pytest.mark.parametrize(
    ("approver", "reason", "field"),
    [
        ("", "why", "approver_id"),
        ("  ", "why", "approver_id"),
        ("a", "", "reason"),
        ("a", " ", "reason"),
    ],
)
def test_extension_needs_approver_and_reason(approver: str, reason: str, field: str) -> None:
    cmd = lc.ExtendHandling(10, approver, reason)
    assert invalid(accepted(), cmd, ctx(sh(2025, 4, 1))) == field


def test_another_unit_may_not_extend() -> None:
    with pytest.raises(PermissionDenied):
        lc.decide(accepted(), lc.ExtendHandling(10, "a", "b"), unit(DEPT, sh(2025, 4, 1)))


def test_extend_needs_a_case_in_handling() -> None:
    refused(routed(), lc.ExtendHandling(10, "a", "b"), ctx(sh(2025, 4, 1)))
    refused(replied(), lc.ExtendHandling(10, "a", "b"), ctx(sh(2025, 4, 1)))


# ---- reply ---------------------------------------------------------------------------


def test_the_unit_replies() -> None:
    s = accepted()
    payloads = lc.decide(s, lc.Reply(resolved=True), unit(TOWN_UNIT, REPLIED_AT))
    assert payloads == [ev.ReplyIssued(replied_at=to_timestamp(REPLIED_AT), resolved=True)]
    s = fold(s, payloads, REPLIED_AT)
    assert s.status is Status.REPLIED
    assert s.replied_at == REPLIED_AT
    assert s.resolved


@pytest.mark.parametrize(("make", "status"), [(registered, "registered"), (routed, "routed")])
def test_reply_before_acceptance_names_the_status(make: Any, status: str) -> None:
    message = refused(make(), lc.Reply(resolved=True), ctx(REPLIED_AT))
    assert f"is {status}" in message


def test_another_unit_may_not_reply() -> None:
    with pytest.raises(PermissionDenied):
        lc.decide(accepted(), lc.Reply(resolved=True), unit(DEPT, REPLIED_AT))


def test_no_second_reply() -> None:
    assert "replied" in refused(replied(), lc.Reply(resolved=False), ctx(REPLIED_AT))


# ---- satisfaction --------------------------------------------------------------------


def test_rate_before_a_reply_is_refused() -> None:
    refused(accepted(), lc.RateSatisfaction(ev.SATISFACTION_SATISFIED), ctx(REPLIED_AT))


@pytest.mark.parametrize(
    "rating", [ev.SATISFACTION_SATISFIED, ev.SATISFACTION_BASICALLY, ev.SATISFACTION_DISSATISFIED]
)
def test_rate_a_reply_once(rating: ev.Satisfaction.ValueType) -> None:
    s = step(replied(), lc.RateSatisfaction(rating), ctx(sh(2025, 3, 10)))
    assert s.rating == rating
    assert s.status is Status.REPLIED
    again = lc.RateSatisfaction(ev.SATISFACTION_SATISFIED)
    assert "already rated" in refused(s, again, ctx(sh(2025, 3, 11)))


@pytest.mark.parametrize("rating", [ev.SATISFACTION_UNSPECIFIED, 4, -1])
def test_rate_with_an_invalid_value(rating: int) -> None:
    assert invalid(replied(), lc.RateSatisfaction(rating), ctx(sh(2025, 3, 10))) == "rating"


def test_a_review_decision_is_rated_afresh() -> None:
    s = step(replied(), lc.RateSatisfaction(ev.SATISFACTION_DISSATISFIED), ctx(sh(2025, 3, 10)))
    s = step(s, lc.RequestReview(), ctx(sh(2025, 3, 11)))
    refused(s, lc.RateSatisfaction(ev.SATISFACTION_SATISFIED), ctx(sh(2025, 3, 12)))
    s = step(s, lc.DecideReview(upheld=False), ctx(REVIEWED_AT))
    assert s.rating == ev.SATISFACTION_UNSPECIFIED
    s = step(s, lc.RateSatisfaction(ev.SATISFACTION_BASICALLY), ctx(REVIEWED_AT))
    assert s.rating == ev.SATISFACTION_BASICALLY


# ---- review and re-review (Arts. 35, 36) ---------------------------------------------


def test_review_requested_within_thirty_days() -> None:
    now = REPLIED_AT + timedelta(days=29)
    payloads = lc.decide(replied(), lc.RequestReview(), ctx(now))
    assert payloads == [ev.ReviewRequested(rereview=False)]
    s = fold(replied(), payloads, now)
    assert s.status is Status.REVIEW_REQUESTED
    assert s.review_requested_at == now


def test_the_review_window_ends_on_a_working_day() -> None:
    # day 30 (5 April) and the two days after are 清明 rest days: the window runs to 7 April
    assert step(replied(), lc.RequestReview(), ctx(REVIEW_DUE - timedelta(minutes=1))).status == (
        Status.REVIEW_REQUESTED
    )
    message = refused(replied(), lc.RequestReview(), ctx(REVIEW_DUE))
    assert "Art. 35" in message
    assert "replied" in message


def test_review_is_asked_of_a_reply() -> None:
    refused(accepted(), lc.RequestReview(), ctx(REPLIED_AT))
    refused(reviewed(), lc.RequestReview(), ctx(REVIEWED_AT))


def test_decide_review() -> None:
    s = step(replied(), lc.RequestReview(), ctx(sh(2025, 3, 20)))
    refused(s, lc.DecideReview(upheld=True, rereview=True), ctx(REVIEWED_AT))
    payloads = lc.decide(s, lc.DecideReview(upheld=True), ctx(REVIEWED_AT))
    assert payloads == [ev.ReviewDecided(rereview=False, upheld=True)]
    s = fold(s, payloads, REVIEWED_AT)
    assert s.status is Status.REVIEWED
    assert s.reviewed_at == REVIEWED_AT
    assert s.replied_at == REPLIED_AT


def test_decide_review_needs_a_request() -> None:
    refused(replied(), lc.DecideReview(upheld=True), ctx(REVIEWED_AT))


def test_rereview_within_thirty_days_of_the_review_decision() -> None:
    s = step(reviewed(), lc.RequestReview(rereview=True), ctx(REREVIEW_DUE - timedelta(hours=1)))
    assert s.status is Status.REREVIEW_REQUESTED


def test_rereview_after_the_window_is_refused() -> None:
    message = refused(reviewed(), lc.RequestReview(rereview=True), ctx(REREVIEW_DUE))
    assert "Art. 36" in message


def test_rereview_is_asked_of_a_review_decision() -> None:
    refused(replied(), lc.RequestReview(rereview=True), ctx(sh(2025, 3, 20)))


def test_the_rereview_decision_is_final() -> None:
    s = step(reviewed(), lc.RequestReview(rereview=True), ctx(sh(2025, 5, 1)))
    refused(s, lc.DecideReview(upheld=True), ctx(sh(2025, 5, 20)))
    payloads = lc.decide(s, lc.DecideReview(upheld=True, rereview=True), ctx(sh(2025, 5, 20)))
    assert kinds(payloads) == ["review_decided", "finalized"]
    assert payloads[0] == ev.ReviewDecided(rereview=True, upheld=True)
    s2 = fold(s, payloads, sh(2025, 5, 20))
    assert s2.status is Status.FINAL
    assert s2.version == s.version + 2


# ---- hearings during re-review (Art. 36) ------------------------------------------------


def _rereview_requested() -> CaseState:
    return step(reviewed(), lc.RequestReview(rereview=True), ctx(sh(2025, 5, 1)))


def test_a_hearing_is_held_during_rereview() -> None:
    s = _rereview_requested()
    assert not s.in_hearing
    payloads = lc.decide(s, lc.StartHearing(), ctx(sh(2025, 5, 6)))
    assert payloads == [ev.HearingStarted()]
    s = fold(s, payloads, sh(2025, 5, 6))
    assert s.in_hearing
    assert s.status is Status.REREVIEW_REQUESTED
    assert "already open" in refused(s, lc.StartHearing(), ctx(sh(2025, 5, 7)))
    # no decision while the hearing is open
    open_hearing = refused(s, lc.DecideReview(upheld=True, rereview=True), ctx(sh(2025, 5, 7)))
    assert "hearing" in open_hearing
    s = step(s, lc.EndHearing(), ctx(sh(2025, 5, 8)))
    assert not s.in_hearing
    assert "no hearing" in refused(s, lc.EndHearing(), ctx(sh(2025, 5, 9)))
    s = step(s, lc.DecideReview(upheld=False, rereview=True), ctx(sh(2025, 5, 20)))
    assert s.status is Status.FINAL
    assert not s.in_hearing


@pytest.mark.parametrize(
    "make",
    [
        accepted,
        replied,
        reviewed,
        lambda: step(replied(), lc.RequestReview(), ctx(sh(2025, 3, 20))),
    ],
)
def test_a_hearing_belongs_to_rereview_only(make: Any) -> None:
    state: CaseState = make()
    assert state.status.value in refused(state, lc.StartHearing(), ctx(sh(2025, 5, 6)))


def test_ending_a_hearing_that_never_started() -> None:
    refused(_rereview_requested(), lc.EndHearing(), ctx(sh(2025, 5, 6)))
    refused(accepted(), lc.EndHearing(), ctx(sh(2025, 5, 6)))


def _final() -> CaseState:
    s = _rereview_requested()
    return step(s, lc.DecideReview(upheld=True, rereview=True), ctx(sh(2025, 5, 20)))


# one of each command, for the checks that every command is refused somewhere
EVERY_COMMAND: list[lc.Command] = [
    lc.RouteCase(ev.ROUTING_DECISION_ACCEPT, DEPT),
    lc.SendNotice(),
    lc.AcceptCase(),
    lc.ObjectRemit("not ours"),
    lc.DesignateUnit(DEPT, "its remit"),
    lc.Escalate("x"),
    lc.AssignLeader("l-d1"),
    lc.RecordVisitOut("l-d1", sh(2025, 5, 21)),
    lc.ExtendHandling(10, "a", "b"),
    lc.Reply(resolved=True),
    lc.RateSatisfaction(ev.SATISFACTION_SATISFIED),
    lc.RequestReview(),
    lc.RequestReview(rereview=True),
    lc.DecideReview(upheld=True),
    lc.DecideReview(upheld=False, rereview=True),
    lc.ReopenBackflow("it came back"),
    lc.StartHearing(),
    lc.EndHearing(),
]


@pytest.mark.parametrize("cmd", EVERY_COMMAND, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("role", ["office", "system", "unit"])
def test_nothing_is_done_on_a_final_case(cmd: lc.Command, role: str) -> None:
    s = _final()
    message = refused(s, cmd, ctx(sh(2025, 5, 21), role, TOWN_UNIT))
    assert "Art. 36" in message
    assert "final" in message


# ---- backflow (倒流) -------------------------------------------------------------------


def test_a_resolved_case_that_comes_back_is_handled_again() -> None:
    s = step(accepted(), lc.ExtendHandling(30, "a", "b"), ctx(sh(2025, 3, 10)))
    s = replied(s, resolved=True)
    s = step(s, lc.RateSatisfaction(ev.SATISFACTION_SATISFIED), ctx(sh(2025, 3, 10)))
    now = sh(2025, 3, 25)
    payloads = lc.decide(s, lc.ReopenBackflow("the dispute flared up again"), ctx(now))
    assert payloads == [ev.BackflowReopened(reason="the dispute flared up again")]
    s = fold(s, payloads, now)
    assert s.status is Status.ACCEPTED
    assert s.backflow_count == 1
    assert s.accepted_at == now
    assert s.replied_at is None
    assert not s.resolved
    assert s.rating == ev.SATISFACTION_UNSPECIFIED
    assert s.extension_days == 0
    # a new handling cycle: extension is allowed again, and the case can come back again
    s = step(s, lc.ExtendHandling(20, "a", "b"), unit(TOWN_UNIT, sh(2025, 3, 26)))
    assert s.extension_days == 20
    s = replied(s, resolved=True, at=sh(2025, 4, 10))
    s = step(s, lc.ReopenBackflow("again"), ctx(sh(2025, 4, 20)))
    assert s.backflow_count == 2


def test_a_reviewed_resolved_case_can_come_back() -> None:
    s = step(reviewed(), lc.ReopenBackflow("came back"), ctx(sh(2025, 4, 25)))
    assert s.status is Status.ACCEPTED
    assert s.backflow_count == 1
    assert s.reviewed_at is None and s.review_requested_at is None


def test_an_unresolved_reply_is_not_reopened() -> None:
    message = refused(replied(resolved=False), lc.ReopenBackflow("x"), ctx(sh(2025, 3, 25)))
    assert "never reported resolved" in message


def test_backflow_on_an_accepted_case_is_refused() -> None:
    assert "accepted" in refused(accepted(), lc.ReopenBackflow("x"), ctx(sh(2025, 3, 25)))


def test_backflow_needs_a_reason() -> None:
    assert invalid(replied(), lc.ReopenBackflow(" "), ctx(sh(2025, 3, 25))) == "reason"


# ---- visits out (下访) -----------------------------------------------------------------


def test_a_visit_out_is_recorded_with_the_case_township() -> None:
    s = accepted(routed(registered(category="real_estate", township="t03"), DEPT))
    visited = sh(2025, 3, 15, 14)
    payloads = lc.decide(s, lc.RecordVisitOut("l-d2", visited), ctx(sh(2025, 3, 16)))
    assert payloads == [
        ev.LeaderVisitOutRecorded(
            leader_id="l-d2", township_id="t03", visited_at=to_timestamp(visited)
        )
    ]
    after = fold(s, payloads, sh(2025, 3, 16))
    # tracked elsewhere: in the state only as the case's latest step
    assert after == replace(
        s, version=s.version + 1, last_at=sh(2025, 3, 16), last_step="leader_visit_out"
    )


def test_a_visit_out_by_an_unknown_leader() -> None:
    cmd = lc.RecordVisitOut("l-nobody", sh(2025, 3, 15))
    assert invalid(accepted(), cmd, ctx(sh(2025, 3, 16))) == "leader_id"


def test_a_visit_out_serves_a_case_being_handled() -> None:
    refused(registered(), lc.RecordVisitOut("l-d1", sh(2025, 3, 15)), ctx(sh(2025, 3, 16)))


# ---- apply and persistence -----------------------------------------------------------


def test_the_version_follows_the_event() -> None:
    s = registered()
    event = new_event(
        case_id=CASE_ID,
        district_id=DISTRICT_ID,
        producer="test",
        case_version=17,
        occurred_at=ROUTED_AT,
        payload=ev.CaseRouted(decision=ev.ROUTING_DECISION_ACCEPT, unit_id=TOWN_UNIT),
    )
    assert lc.apply(s, event).version == 17


def test_an_event_without_a_version_counts_one_up() -> None:
    s = registered()
    event = new_event(
        case_id=CASE_ID,
        district_id=DISTRICT_ID,
        producer="test",
        case_version=0,
        payload=ev.NoticeSent(),
    )
    assert lc.apply(s, event).version == s.version + 1


def test_other_services_events_only_move_the_version() -> None:
    s = accepted()
    event = new_event(
        case_id=CASE_ID,
        district_id=DISTRICT_ID,
        producer="supervision",
        case_version=s.version + 1,
        payload=ev.ClockStarted(clock=ev.CLOCK_KIND_HANDLING),
    )
    assert lc.apply(s, event) == replace(s, version=s.version + 1)


def test_replace_inputs_remembers_an_event() -> None:
    s = lc.replace_inputs(registered(), "evt-1")
    assert s.inputs[-1] == "evt-1"
    assert len(s.inputs) == 2


def test_to_doc_and_back() -> None:
    s = step(routed(), lc.ObjectRemit("not ours"), unit(TOWN_UNIT, sh(2025, 3, 6)))
    s = accepted(s)
    s = step(s, lc.ExtendHandling(10, "a", "b"), ctx(sh(2025, 3, 8)))
    s = lc.replace_inputs(replied(s), "evt-from-supervision")
    assert s.objected_units and s.routed_at and s.accepted_at and s.replied_at
    doc = lc.to_doc(s)
    assert doc["status"] == "replied"
    assert doc["objected_units"] == [TOWN_UNIT]
    assert isinstance(doc["inputs"], list)
    back = lc.from_doc(doc)
    assert back == s
    assert isinstance(back.objected_units, tuple) and isinstance(back.inputs, tuple)
    assert back.status is Status.REPLIED


def test_to_doc_keeps_the_latest_fifty_inputs() -> None:
    s = registered()
    for i in range(60):
        s = lc.replace_inputs(s, f"evt-{i}")
    back = lc.from_doc(lc.to_doc(s))
    assert back.inputs == s.inputs[-50:]
    assert back.inputs[-1] == "evt-59"
