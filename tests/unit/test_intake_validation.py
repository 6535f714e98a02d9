"""Registration rules: a complete petition is accepted, anything else is
refused naming the first bad field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.districts import District, parse_district
from xinfang.core.errors import InvalidArgument
from xinfang.intake.domain import (
    MAX_CONTENT_CHARS,
    valid_id_number,
    valid_phone,
    validate,
)
from xinfang.intake.v1 import intake_pb2 as pb

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_with_check(first17: str) -> str:
    """Complete 17 digits with their ISO 7064 MOD 11-2 check character."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + _CHECK[total % 11]


VALID_ID = id_with_check("44030419900101001")  # born 1990-01-01


def _district() -> District:
    doc: dict[str, Any] = {
        "district_id": "test-district",
        "name": "测试区",
        "townships": [
            {
                "id": "t1",
                "name": "东镇",
                "villages": [{"id": "v1", "name": "东村"}, {"id": "v2", "name": "西村"}],
            },
            {"id": "t2", "name": "南镇", "villages": [{"id": "v3", "name": "南村"}]},
        ],
        "categories": [{"code": "land", "name": "土地"}, {"code": "labour", "name": "劳动"}],
        "units": [{"id": "u1", "name": "东镇政府", "kind": "township"}],
        "routing": [{"rule_id": "r1", "unit_id": "u1"}],
    }
    return parse_district(doc)


DISTRICT = _district()


def _request(**overrides: Any) -> pb.RegisterPetitionRequest:
    petitioner = overrides.pop(
        "petitioner",
        pb.Petitioner(name="张三", id_number=VALID_ID, phone="13800138000", address="东村1号"),
    )
    req = pb.RegisterPetitionRequest(
        request_id="req-1",
        district_id="test-district",
        channel=ev.CHANNEL_VISIT,
        township_id="t1",
        village_id="v1",
        category="land",
        content="宅基地边界纠纷",
        people_count=1,
        source=ev.SOURCE_DIRECT,
        petitioner=petitioner,
    )
    req.received_at.FromDatetime(NOW - timedelta(hours=1))
    for k, v in overrides.items():
        setattr(req, k, v)
    return req


def _refused_field(req: pb.RegisterPetitionRequest) -> str:
    with pytest.raises(InvalidArgument) as info:
        validate(req, DISTRICT, NOW)
    return info.value.field


# --- helpers -------------------------------------------------------------


def test_helper_builds_the_textbook_check_character() -> None:
    assert id_with_check("11010519491231002") == "11010519491231002X"


@pytest.mark.parametrize("number", ["11010519491231002X", "11010519491231002x", VALID_ID])
def test_valid_id_number_accepts_correct_check_character(number: str) -> None:
    assert valid_id_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # wrong check character
        "11010519491231002",  # 17 characters
        id_with_check("11010519491301002"),  # month 13, right check character
        "1101051949123100X2",  # X not last
        "",
    ],
)
def test_valid_id_number_refuses(number: str) -> None:
    assert not valid_id_number(number)


def test_valid_id_number_refuses_30_february_with_right_check_character() -> None:
    assert not valid_id_number(id_with_check("11010519490230002"))


@pytest.mark.parametrize(
    "phone", ["13800138000", "+86 138 0013 8000", "+8619912345678", "010-12345678", "0755-1234567"]
)
def test_valid_phone_accepts_mobile_and_landline(phone: str) -> None:
    assert valid_phone(phone)


@pytest.mark.parametrize("phone", ["12345", "12800138000", "1380013800", "10-12345678", "abc"])
def test_valid_phone_refuses(phone: str) -> None:
    assert not valid_phone(phone)


# --- acceptance ----------------------------------------------------------


def test_complete_request_is_accepted() -> None:
    reg = validate(_request(), DISTRICT, NOW)
    assert reg.district_id == "test-district"
    assert reg.township_id == "t1"
    assert reg.village_id == "v1"
    assert reg.category == "land"
    assert reg.received_at == NOW - timedelta(hours=1)
    assert reg.identity.name == "张三"
    assert reg.identity.id_number == VALID_ID


def test_five_people_make_a_group_petition() -> None:
    reg = validate(_request(people_count=5, representatives=3), DISTRICT, NOW)
    assert reg.group is True


def test_four_people_are_not_a_group_petition() -> None:
    reg = validate(_request(people_count=4), DISTRICT, NOW)
    assert reg.group is False


def test_unset_people_count_means_one_person() -> None:
    reg = validate(_request(people_count=0), DISTRICT, NOW)
    assert reg.people_count == 1


def test_lowercase_x_in_id_number_is_accepted_and_upper_cased() -> None:
    petitioner = pb.Petitioner(name="李四", id_number="11010519491231002x")
    reg = validate(_request(petitioner=petitioner), DISTRICT, NOW)
    assert reg.identity.id_number == "11010519491231002X"


def test_phone_alone_identifies_the_petitioner() -> None:
    reg = validate(
        _request(petitioner=pb.Petitioner(name="王五", phone="13800138000")), DISTRICT, NOW
    )
    assert reg.identity.id_number == ""
    assert reg.identity.phone == "13800138000"


def test_received_at_within_clock_skew_is_accepted() -> None:
    req = _request()
    req.received_at.FromDatetime(NOW + timedelta(minutes=5))
    assert validate(req, DISTRICT, NOW).received_at == NOW + timedelta(minutes=5)


def test_higher_level_assignment_with_batch_is_accepted() -> None:
    req = _request(source=ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT, batch_id="2023-3")
    assert validate(req, DISTRICT, NOW).batch_id == "2023-3"


def test_oral_visit_is_accepted() -> None:
    assert validate(_request(oral=True), DISTRICT, NOW).oral is True


# --- refusals: one per rule ---------------------------------------------


def _without_received_at() -> pb.RegisterPetitionRequest:
    req = _request()
    req.ClearField("received_at")
    return req


def _received_in_future() -> pb.RegisterPetitionRequest:
    req = _request()
    req.received_at.FromDatetime(NOW + timedelta(minutes=11))
    return req


def _received_before_2000() -> pb.RegisterPetitionRequest:
    req = _request()
    req.received_at.FromDatetime(datetime(1999, 12, 31, tzinfo=UTC))
    return req


REFUSALS: dict[str, tuple[Callable[[], pb.RegisterPetitionRequest], str]] = {
    "channel unspecified": (
        lambda: _request(channel=ev.CHANNEL_UNSPECIFIED),
        "channel",
    ),
    "unknown township": (lambda: _request(township_id="t9", village_id=""), "township_id"),
    "missing township": (lambda: _request(township_id="  ", village_id=""), "township_id"),
    "village of another township": (lambda: _request(village_id="v3"), "village_id"),
    "unknown village": (lambda: _request(village_id="v9"), "village_id"),
    "unknown category": (lambda: _request(category="tax"), "category"),
    "empty content": (lambda: _request(content="   "), "content"),
    "content too long": (lambda: _request(content="字" * (MAX_CONTENT_CHARS + 1)), "content"),
    "people_count too big": (lambda: _request(people_count=100_001), "people_count"),
    "people_count negative": (lambda: _request(people_count=-1), "people_count"),
    "six representatives": (
        lambda: _request(people_count=10, representatives=6),
        "representatives",
    ),
    "representatives outnumber people": (
        lambda: _request(people_count=2, representatives=3),
        "representatives",
    ),
    "missing received_at": (_without_received_at, "received_at"),
    "received_at in the future": (_received_in_future, "received_at"),
    "received_at before 2000": (_received_before_2000, "received_at"),
    "source unspecified": (lambda: _request(source=ev.SOURCE_UNSPECIFIED), "source"),
    "higher-level source without batch": (
        lambda: _request(source=ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT, batch_id=" "),
        "batch_id",
    ),
    "batch_id with a slash": (lambda: _request(batch_id="2023/3"), "batch_id"),
    "batch_id too long": (lambda: _request(batch_id="b" * 65), "batch_id"),
    "oral letter": (lambda: _request(channel=ev.CHANNEL_LETTER, oral=True), "oral"),
    "missing petitioner name": (
        lambda: _request(petitioner=pb.Petitioner(name=" ", id_number=VALID_ID)),
        "petitioner.name",
    ),
    "bad ID checksum": (
        lambda: _request(petitioner=pb.Petitioner(name="张三", id_number="110105194912310021")),
        "petitioner.id_number",
    ),
    "bad phone": (
        lambda: _request(petitioner=pb.Petitioner(name="张三", phone="12345")),
        "petitioner.phone",
    ),
    "neither ID nor phone": (
        lambda: _request(petitioner=pb.Petitioner(name="张三", address="东村1号")),
        "petitioner.id_number",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusal_names_the_bad_field(case: str) -> None:
    build, field = REFUSALS[case]
    assert _refused_field(build()) == field
