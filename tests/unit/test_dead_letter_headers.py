"""Dead-letter headers: what an operator filters on, and nothing personal."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from aiokafka.errors import MessageSizeTooLargeError

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import DecodeFailed, encode_event, new_event
from xinfang.core.deadletters import DeadLetter, parse_record, plan_replay
from xinfang.core.errors import NotFound
from xinfang.core.kafka import VALUE_OMITTED, DeadLetters, dead_letter_headers


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


class _Limited:
    """A producer with the broker's limit on a record: over it, refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[tuple[bytes | None, list[tuple[str, bytes]]]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Any:
        size = len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        if size > self.limit:
            raise MessageSizeTooLargeError(f"{size} bytes")
        self.sent.append((value, headers))
        return SimpleNamespace(partition=0, offset=len(self.sent) - 1)


async def test_a_letter_over_the_size_limit_goes_without_its_value_rather_than_never() -> None:
    """A record the case topic took at its limit cannot be dead-lettered with
    headers added; retrying for ever stalled the partition (scripts/chaos.py's
    oversized poison). It goes without the value, saying how big it was."""
    producer = _Limited(limit=1000)
    letters = DeadLetters("reporting", cast(Any, producer), "dl")
    dl_id = await letters.send(
        value=b"\xff" * 990,
        key=b"k",
        source_topic="xinfang.case-events.v1",
        partition=2,
        offset=7,
        error=NotFound("case_id: no case"),
        event=_registered(),
    )
    assert dl_id == "0:0"
    ((value, headers),) = producer.sent
    h = dict(headers)
    assert value is None
    assert h[VALUE_OMITTED] == b"990"
    assert (h["x-source-partition"], h["x-source-offset"]) == (b"2", b"7")
    # and a replay has nothing to put back for it
    letter = parse_record(0, 0, 0, b"k", None, headers)
    assert isinstance(letter, DeadLetter) and letter.event_id
    plan, skipped = plan_replay([letter])
    assert plan == [] and skipped == [letter]


async def test_a_letter_within_the_limit_keeps_its_value() -> None:
    producer = _Limited(limit=10_000)
    await DeadLetters("reporting", cast(Any, producer), "dl").send(
        value=b"\xff" * 990,
        key=b"k",
        source_topic="t",
        partition=0,
        offset=1,
        error=DecodeFailed("x"),
    )
    ((value, headers),) = producer.sent
    assert value == b"\xff" * 990 and VALUE_OMITTED not in dict(headers)
