"""Dead-letter headers: what an operator filters on, and nothing personal."""

from __future__ import annotations

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import DecodeFailed, encode_event, new_event
from xinfang.core.errors import NotFound
from xinfang.core.kafka import dead_letter_headers


def _registered() -> ev.CaseEvent:
    return new_event(
        case_id="case-7",
        district_id="d-1",
        producer="intake",
        case_version=1,
        registered=ev.CaseRegistered(
            category="land",
            township_id="t01",
            people_count=1,
            content="我家的地被占了，请求处理",
            petitioner_ref="p_abc",
        ),
    )


def test_decoded_event_names_its_ids_and_payload_type() -> None:
    event = _registered()
    h = dict(dead_letter_headers("reporting", NotFound("district_id: unknown"), "t", 2, 41, event))
    assert h["x-service"] == b"reporting"
    assert h["x-error-type"] == b"NotFound"
    assert h["x-error"] == b"district_id: unknown"
    assert (h["x-source-topic"], h["x-source-partition"], h["x-source-offset"]) == (
        b"t",
        b"2",
        b"41",
    )
    assert h["x-event-id"] == event.event_id.encode()
    assert h["x-case-id"] == b"case-7"
    assert h["x-district-id"] == b"d-1"
    assert h["x-payload"] == b"registered"


def test_headers_never_carry_content_or_the_petitioner_ref() -> None:
    event = _registered()
    headers = dead_letter_headers("assignment", ValueError("boom"), "t", 0, 0, event)
    blob = b"".join(v for _, v in headers)
    assert "我家的地".encode() not in blob
    assert b"p_abc" not in blob
    assert encode_event(event) not in blob


def test_undecodable_bytes_have_no_event_headers() -> None:
    h = dict(dead_letter_headers("supervision", DecodeFailed("empty message"), "t", 1, 5))
    assert h["x-error-type"] == b"DecodeFailed"
    assert not {"x-event-id", "x-case-id", "x-district-id", "x-payload"} & set(h)


def test_error_text_is_bounded() -> None:
    h = dict(dead_letter_headers("reporting", ValueError("x" * 10_000), "t", 0, 0))
    assert len(h["x-error"]) == 2000
