"""Case-event envelope: how events are built, encoded, decoded and identified."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import (
    DecodeFailed,
    decode_event,
    encode_event,
    from_timestamp,
    new_event,
    new_id,
    payload_name,
)

OCCURRED = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _routed(**envelope: object) -> ev.CaseEvent:
    fields: dict[str, object] = {
        "case_id": "case-1",
        "district_id": "d1",
        "producer": "assignment",
        "case_version": 2,
        "occurred_at": OCCURRED,
    }
    fields.update(envelope)
    return new_event(
        **fields,  # type: ignore[arg-type]
        routed=ev.CaseRouted(decision=ev.ROUTING_DECISION_ACCEPT, unit_id="u1", rule_id="r1"),
    )


# --- new_event -------------------------------------------------------------


def test_new_event_wraps_its_payload_and_stamps_times() -> None:
    before = datetime.now(UTC)
    event = _routed()
    after = datetime.now(UTC)
    assert payload_name(event) == "routed"
    assert event.routed.unit_id == "u1"
    assert from_timestamp(event.occurred_at) == OCCURRED
    assert before - timedelta(milliseconds=1) <= from_timestamp(event.recorded_at) <= after
    assert event.event_id


def test_new_event_converts_other_zones_to_the_same_instant() -> None:
    shanghai_time = OCCURRED.astimezone(timezone(timedelta(hours=8)))
    event = _routed(occurred_at=shanghai_time)
    assert from_timestamp(event.occurred_at) == OCCURRED


def test_new_event_without_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one payload"):
        new_event(case_id="c", district_id="d", producer="p", case_version=1)


def test_new_event_with_two_payloads_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one payload"):
        new_event(
            case_id="c",
            district_id="d",
            producer="p",
            case_version=1,
            routed=ev.CaseRouted(),
            finalized=ev.CaseFinalized(),
        )


def test_new_event_with_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        _routed(occurred_at=datetime(2026, 3, 10, 9, 30))


@pytest.mark.parametrize("missing", ["case_id", "district_id"])
def test_new_event_without_case_or_district_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match="required"):
        _routed(**{missing: ""})


def test_new_event_keeps_a_given_event_id() -> None:
    assert _routed(event_id="evt-7").event_id == "evt-7"


# --- encode / decode -------------------------------------------------------


def test_encode_then_decode_round_trips() -> None:
    event = _routed(actor=ev.Actor(user_id="staff-1", role="clerk", unit_id="u1"))
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.actor.user_id == "staff-1"


def test_encoding_is_deterministic() -> None:
    event = _routed()
    assert encode_event(event) == encode_event(event)


@pytest.mark.parametrize("data", [b"", None])
def test_decode_refuses_empty_message(data: bytes | None) -> None:
    with pytest.raises(DecodeFailed, match="empty"):
        decode_event(data)


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"garbage!", b"\x0a\x05ab"])
def test_decode_refuses_garbage(data: bytes) -> None:
    with pytest.raises(DecodeFailed, match="not a CaseEvent"):
        decode_event(data)


def _bytes_without(field: Literal["event_id", "case_id", "district_id", "routed"]) -> bytes:
    event = _routed()
    event.ClearField(field)
    return event.SerializeToString()


def test_decode_refuses_missing_event_id() -> None:
    with pytest.raises(DecodeFailed, match="event_id"):
        decode_event(_bytes_without("event_id"))


def test_decode_refuses_missing_case_id() -> None:
    with pytest.raises(DecodeFailed, match="case_id"):
        decode_event(_bytes_without("case_id"))


def test_decode_refuses_missing_district_id() -> None:
    with pytest.raises(DecodeFailed, match="district_id"):
        decode_event(_bytes_without("district_id"))


def test_decode_refuses_event_without_payload() -> None:
    with pytest.raises(DecodeFailed, match="no payload"):
        decode_event(_bytes_without("routed"))


def test_decode_failure_is_a_value_error() -> None:
    assert issubclass(DecodeFailed, ValueError)


# --- ids -------------------------------------------------------------------


def test_new_ids_are_unique() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)


def test_new_ids_sort_in_creation_order_across_milliseconds() -> None:
    ids = []
    for _ in range(20):
        ids.append(new_id())
        time.sleep(0.002)
    assert sorted(ids) == ids


def test_new_id_is_a_version_7_rfc_4122_uuid_stamped_with_now() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(new_id())
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after
