"""District documents: what parse_district refuses and what it accepts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from xinfang.core.calendar import DayType
from xinfang.core.districts import DEFAULT_LIMITS, Limit, RoutingRow, parse_district
from xinfang.core.errors import InvalidArgument


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "district_id": "d1",
        "name": "测试区",
        "townships": [
            {"id": "t1", "name": "东镇", "villages": [{"id": "v1", "name": "东村"}]},
            {"id": "t2", "name": "南镇"},
        ],
        "categories": [{"code": "land", "name": "土地"}],
        "units": [
            {"id": "u1", "name": "东镇政府", "kind": "township"},
            {"id": "office", "name": "信访局", "kind": "office"},
        ],
        "routing": [
            {"rule_id": "r1", "unit_id": "u1", "township_id": "t1"},
            {"rule_id": "r2", "unit_id": "office"},
        ],
    }
    doc.update(overrides)
    return doc


def _refused_field(doc: dict[str, Any]) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_district(doc)
    return info.value.field


# --- accepted ------------------------------------------------------------------


def test_minimal_document_parses() -> None:
    d = parse_district(_doc())
    assert d.district_id == "d1"
    assert d.townships == {"t1": "东镇", "t2": "南镇"}
    assert d.villages == {"v1": ("t1", "东村")}
    assert d.categories == {"land": "土地"}
    assert d.units["office"].kind == "office"
    assert d.routing[0] == RoutingRow("r1", "u1", township_id="t1")
    assert d.version == 1


def test_defaults_apply_without_limits() -> None:
    d = parse_district(_doc())
    assert d.limits == DEFAULT_LIMITS
    assert d.limit("register_and_route") == Limit(15, DayType.CALENDAR, 3)


def test_limit_override_replaces_only_that_limit() -> None:
    d = parse_district(
        _doc(limits={"handling": {"days": 30, "day_type": "working", "warn_days": 5}})
    )
    assert d.limit("handling") == Limit(30, DayType.WORKING, 5)
    assert d.limit("register_and_route") == DEFAULT_LIMITS["register_and_route"]


def test_limit_override_defaults_to_calendar_days_and_three_warning_days() -> None:
    d = parse_district(_doc(limits={"written_notice": {"days": 10}}))
    assert d.limit("written_notice") == Limit(10, DayType.CALENDAR, 3)


def test_calendar_overrides_change_working_days() -> None:
    d = parse_district(_doc(calendar={"rest_days": ["2025-03-18"], "working_days": ["2025-03-08"]}))
    assert d.calendar.extra_rest_days == frozenset({date(2025, 3, 18)})
    assert d.calendar.extra_working_days == frozenset({date(2025, 3, 8)})
    assert d.calendar.is_working_day(date(2025, 3, 18)) is False  # a Tuesday
    assert d.calendar.is_working_day(date(2025, 3, 8)) is True  # a Saturday


def test_version_is_read_from_the_document() -> None:
    assert parse_district(_doc(version=7)).version == 7


# --- refused -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["D1", "", "-d1", "d 1", "d/1", "x" * 65])
def test_bad_district_id_is_refused(bad: str) -> None:
    assert _refused_field(_doc(district_id=bad)) == "district.district_id"


def test_bad_township_id_is_refused() -> None:
    assert _refused_field(_doc(townships=[{"id": "East", "name": "东镇"}])) == "townships[0].id"


def test_missing_district_name_is_refused() -> None:
    assert _refused_field(_doc(name="")) == "district.name"


def test_routing_row_with_unknown_unit_is_refused() -> None:
    routing = [{"rule_id": "r1", "unit_id": "u9"}]
    assert _refused_field(_doc(routing=routing)) == "routing[0].unit_id"


def test_routing_row_with_unknown_category_is_refused() -> None:
    routing = [
        {"rule_id": "r1", "unit_id": "u1"},
        {"rule_id": "r2", "unit_id": "u1", "category": "tax"},
    ]
    assert _refused_field(_doc(routing=routing)) == "routing[1].category"


def test_routing_row_with_unknown_township_is_refused() -> None:
    routing = [{"rule_id": "r1", "unit_id": "u1", "township_id": "t9"}]
    assert _refused_field(_doc(routing=routing)) == "routing[0].township_id"


def test_routing_row_without_rule_id_is_refused() -> None:
    routing = [{"unit_id": "u1"}]
    assert _refused_field(_doc(routing=routing)) == "routing[0].rule_id"


def test_unknown_limit_name_is_refused() -> None:
    assert _refused_field(_doc(limits={"lunch_break": {"days": 1}})) == "limits.lunch_break"


@pytest.mark.parametrize("days", [0, -15])
def test_limit_shorter_than_one_day_is_refused(days: int) -> None:
    # compute_deadline refuses such a period, so a district that stores one
    # would fail every registration's clock later (in supervision)
    doc = _doc(limits={"register_and_route": {"days": days}})
    assert _refused_field(doc) == "limits.register_and_route.days"


@pytest.mark.parametrize(
    "calendar",
    [
        {"rest_days": ["2025-02-30"]},
        {"rest_days": ["next monday"]},
        {"working_days": ["2025/03/08"]},
        {"working_days": [20250308]},
    ],
)
def test_malformed_calendar_date_is_refused(calendar: dict[str, Any]) -> None:
    assert _refused_field(_doc(calendar=calendar)) == "calendar"
