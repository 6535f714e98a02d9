"""Registration rules, free of I/O: what makes a petition complete (全要素登记).

``validate`` turns a request into a ``Registration`` or raises
``InvalidArgument`` naming the first bad field, so nothing half-valid is
ever stored or published.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import request_time
from xinfang.core.crypto import Identity
from xinfang.core.districts import District
from xinfang.core.errors import InvalidArgument
from xinfang.intake.v1 import intake_pb2 as pb

__all__ = [
    "GROUP_MIN_PEOPLE",
    "MAX_CONTENT_CHARS",
    "MAX_REPRESENTATIVES",
    "Registration",
    "case_id_for",
    "valid_id_number",
    "valid_phone",
    "validate",
]

MAX_CONTENT_CHARS = 20_000
MAX_PEOPLE = 100_000
GROUP_MIN_PEOPLE = 5  # 集体访: five or more people on one shared matter
MAX_REPRESENTATIVES = 5  # 2022 regulations, Art. 20
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(minutes=10)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
_BATCH_RE = re.compile(r"^[\w.-]{1,64}$")


_CASE_NS = uuid.UUID("6f1c8f5e-3c1e-4a55-9a43-0b7e0e4b6a11")


def case_id_for(district_id: str, request_id: str) -> str:
    """The case id a client's request id maps to, so a retried registration
    finds the case the first attempt created."""
    return str(uuid.uuid5(_CASE_NS, f"{district_id}/{request_id}"))


def valid_id_number(s: str) -> bool:
    """GB 11643 resident identity number: 17 digits and an ISO 7064 check character."""
    s = s.upper()
    if not _ID_RE.match(s):
        return False
    try:
        datetime.strptime(s[6:14], "%Y%m%d")
    except ValueError:
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == s[17]


def valid_phone(s: str) -> bool:
    s = s.replace(" ", "")
    if s.startswith("+86"):
        s = s[3:]
    return bool(_MOBILE_RE.match(s) or _LANDLINE_RE.match(s))


@dataclass(frozen=True)
class Registration:
    district_id: str
    channel: int
    township_id: str
    village_id: str
    category: str
    content: str
    people_count: int
    received_at: datetime
    source: int
    batch_id: str
    oral: bool
    representatives: int
    escalated: bool
    identity: Identity

    @property
    def group(self) -> bool:
        return self.people_count >= GROUP_MIN_PEOPLE


def _text(value: str, field: str, max_len: int, required: bool = True) -> str:
    v = value.strip()
    if required and not v:
        raise InvalidArgument(field, "is required")
    if len(v) > max_len:
        raise InvalidArgument(field, f"is {len(v)} characters; at most {max_len}")
    return v


def validate(req: pb.RegisterPetitionRequest, district: District, now: datetime) -> Registration:
    if req.channel not in ev.Channel.values() or req.channel == ev.CHANNEL_UNSPECIFIED:
        raise InvalidArgument("channel", "is required (letter, visit, online, phone or fax)")
    if req.oral and req.channel not in (ev.CHANNEL_VISIT, ev.CHANNEL_PHONE):
        raise InvalidArgument("oral", "only a visit or a phone call is recorded orally (Art. 19)")
    township = _text(req.township_id, "township_id", 64)
    if township not in district.townships:
        raise InvalidArgument(
            "township_id", f"unknown township {township!r} in {district.district_id}"
        )
    village = _text(req.village_id, "village_id", 64, required=False)
    if village and district.villages.get(village, ("",))[0] != township:
        raise InvalidArgument("village_id", f"unknown village {village!r} in township {township!r}")
    category = _text(req.category, "category", 64)
    if category not in district.categories:
        raise InvalidArgument(
            "category", f"unknown category {category!r} in {district.district_id}"
        )
    content = _text(req.content, "content", MAX_CONTENT_CHARS)
    people = req.people_count or 1
    if not 1 <= people <= MAX_PEOPLE:
        raise InvalidArgument("people_count", f"must be between 1 and {MAX_PEOPLE}")
    reps = req.representatives
    if reps < 0 or reps > MAX_REPRESENTATIVES:
        raise InvalidArgument("representatives", f"at most {MAX_REPRESENTATIVES} (Art. 20)")
    if reps > people:
        raise InvalidArgument("representatives", "more representatives than people")
    if not req.HasField("received_at"):
        raise InvalidArgument("received_at", "is required")
    received = request_time(req.received_at, "received_at")
    if received < _EARLIEST or received > now + _CLOCK_SKEW:
        raise InvalidArgument("received_at", "must be after 2000-01-01 and not in the future")
    if req.source not in ev.Source.values() or req.source == ev.SOURCE_UNSPECIFIED:
        raise InvalidArgument("source", "is required (direct or higher-level assignment)")
    batch = req.batch_id.strip()
    if req.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT and not batch:
        raise InvalidArgument("batch_id", "is required for a higher level's assignment")
    if batch and not _BATCH_RE.match(batch):
        raise InvalidArgument("batch_id", "letters, digits, '.', '_' or '-', at most 64")
    p = req.petitioner
    name = _text(p.name, "petitioner.name", 100)
    id_number = p.id_number.strip().upper()
    if id_number and not valid_id_number(id_number):
        raise InvalidArgument("petitioner.id_number", "is not a valid 18-digit resident ID number")
    phone = p.phone.strip()
    if phone and not valid_phone(phone):
        raise InvalidArgument("petitioner.phone", "is not a valid mobile or landline number")
    if not id_number and not phone:
        raise InvalidArgument("petitioner.id_number", "an ID number or a phone number is required")
    address = _text(p.address, "petitioner.address", 300, required=False)
    return Registration(
        district_id=district.district_id,
        channel=req.channel,
        township_id=township,
        village_id=village,
        category=category,
        content=content,
        people_count=people,
        received_at=received,
        source=req.source,
        batch_id=batch,
        oral=req.oral,
        representatives=reps,
        escalated=req.escalated,
        identity=Identity(name=name, id_number=id_number, phone=phone, address=address),
    )
