"""Building, encoding and decoding case events (``xinfang.case.v1.CaseEvent``).

One place decides how an event id is made and how times are stamped, so every
producer agrees and consumers can rely on both.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.errors import InvalidArgument

__all__ = [
    "DecodeFailed",
    "decode_event",
    "encode_event",
    "from_timestamp",
    "new_event",
    "new_id",
    "payload_field",
    "payload_name",
    "request_time",
    "to_timestamp",
]


class DecodeFailed(ValueError):
    """The bytes are not a usable CaseEvent; the message goes to dead letters."""


def new_id() -> str:
    """A UUIDv7-style id: time-ordered, so ids sort roughly by creation."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def to_timestamp(dt: datetime) -> Timestamp:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: every time in xinfang is zone-aware")
    ts = Timestamp()
    ts.FromDatetime(dt.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


# the range a Timestamp may hold (its own definition), which is datetime's too
_TS_MIN, _TS_MAX = -62_135_596_800, 253_402_300_799


def request_time(ts: Timestamp, field: str) -> datetime:
    """A time a caller sent, or ``InvalidArgument`` naming its field: a
    Timestamp outside 0001-01-01..9999-12-31 or with nanos outside 0..1e9-1
    does not convert (left to ``ToDatetime``, it raised and came back UNKNOWN)."""
    if not (_TS_MIN <= ts.seconds <= _TS_MAX and 0 <= ts.nanos < 1_000_000_000):
        raise InvalidArgument(field, "not a valid time (0001-01-01 to 9999-12-31 UTC)")
    return ts.ToDatetime(tzinfo=UTC)


# payload message type -> its field name in the CaseEvent oneof
PAYLOAD_FIELDS: dict[str, str] = {
    f.message_type.full_name: f.name
    for f in ev.CaseEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
    if f.message_type is not None
}


def payload_field(payload: Message) -> str:
    """The oneof field a payload message goes in (``CaseAccepted`` -> ``accepted``)."""
    return PAYLOAD_FIELDS[payload.DESCRIPTOR.full_name]


def new_event(
    *,
    case_id: str,
    district_id: str,
    producer: str,
    case_version: int,
    occurred_at: datetime | None = None,
    actor: ev.Actor | None = None,
    event_id: str | None = None,
    payload: Message | None = None,
    **payload_by_name: Message,
) -> ev.CaseEvent:
    """Wrap exactly one payload in an envelope: ``payload=CaseAccepted(...)``
    or by its field name, ``accepted=CaseAccepted(...)``."""
    if payload is not None:
        payload_by_name[payload_field(payload)] = payload
    if len(payload_by_name) != 1:
        raise ValueError("an event carries exactly one payload")
    if not case_id or not district_id:
        raise ValueError("case_id and district_id are required on every event")
    now = datetime.now(UTC)
    event = ev.CaseEvent(
        event_id=event_id or new_id(),
        case_id=case_id,
        district_id=district_id,
        case_version=case_version,
        producer=producer,
        occurred_at=to_timestamp(occurred_at or now),
        recorded_at=to_timestamp(now),
        **payload_by_name,  # type: ignore[arg-type]
    )
    if actor is not None:
        event.actor.CopyFrom(actor)
    return event


def encode_event(event: ev.CaseEvent) -> bytes:
    return event.SerializeToString(deterministic=True)


def decode_event(data: bytes | None) -> ev.CaseEvent:
    if not data:
        raise DecodeFailed("empty message")
    event = ev.CaseEvent()
    try:
        event.ParseFromString(data)
    except DecodeError as e:
        raise DecodeFailed(f"not a CaseEvent: {e}") from e
    if not event.event_id:
        raise DecodeFailed("event_id missing")
    if not event.case_id:
        raise DecodeFailed("case_id missing")
    if not event.district_id:
        raise DecodeFailed("district_id missing")
    if event.WhichOneof("payload") is None:
        raise DecodeFailed("no payload (unknown event type from a newer producer?)")
    return event


def payload_name(event: ev.CaseEvent) -> str:
    name = event.WhichOneof("payload")
    return name or "unknown"
