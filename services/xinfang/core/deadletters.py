"""Dead letters as a workflow: list them, then replay them.

What a consumer cannot handle goes to the dead-letter topic with headers that
say who gave up, why, and which event of which case and district it was
(``core.kafka.dead_letter_headers``). This module reads that topic, filters
it, and replays: it publishes the original value and key to the case-events
topic again, with ``x-replay-of: <id>[,<id>...]``. Consumers then apply it
through their normal path, so a replay of an event already applied changes
nothing (deduplication by event id), and a case parked behind the event is
released (``core.parking``).

A dead letter's id is ``<partition>:<offset>`` on the dead-letter topic:
stable for as long as the topic keeps the record (90 days).

Which dead letters were replayed is recorded as a *marker record on the
dead-letter topic itself* (header ``x-replay-marker``, key the id, empty
value), not in a store: listing already reads that topic from the start, so
state and letter are found in one pass with no second system to agree with,
and a marker expires with the letters it marks. Markers are never listed as
dead letters.

Reading takes no consumer group (nothing is committed, no group is joined)
and stops at the end offsets taken when the call starts, so a busy topic
cannot keep it reading forever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from xinfang.core.calendar import SHANGHAI
from xinfang.core.config import Settings
from xinfang.core.kafka import make_producer, read_to_end
from xinfang.core.mongo import connect
from xinfang.core.parking import BLOCKED

__all__ = [
    "MARKER",
    "DeadLetter",
    "Filter",
    "ReplayMark",
    "Replayed",
    "fold",
    "parked_behind",
    "parse_id",
    "parse_record",
    "parse_since",
    "plan_replay",
    "read_dead_letters",
    "replay",
]

MARKER = "x-replay-marker"
REPLAY_OF = "x-replay-of"
OPEN = "open"
REPLAYED = "replayed"
_ID = re.compile(r"^(\d+):(\d+)$")
_AGO = re.compile(r"^(\d+)\s*([mhd])$")


@dataclass(frozen=True)
class ReplayMark:
    """A dead letter was replayed: when, and where its event landed again."""

    of: str
    to: str
    at: datetime


@dataclass(frozen=True)
class DeadLetter:
    id: str
    at: datetime  # when it was dead-lettered (the record's timestamp)
    headers: dict[str, str]
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)  # the event: never printed or logged
    replays: tuple[ReplayMark, ...] = ()

    def _h(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def service(self) -> str:
        return self._h("x-service")

    @property
    def error_type(self) -> str:
        return self._h("x-error-type")

    @property
    def error(self) -> str:
        return self._h("x-error")

    @property
    def event_id(self) -> str:
        return self._h("x-event-id")

    @property
    def case_id(self) -> str:
        return self._h("x-case-id")

    @property
    def district_id(self) -> str:
        return self._h("x-district-id")

    @property
    def payload(self) -> str:
        return self._h("x-payload")

    @property
    def source(self) -> str:
        """Where the consumer read it: ``<topic>/<partition>:<offset>``."""
        return (
            f"{self._h('x-source-topic')}/"
            f"{self._h('x-source-partition')}:{self._h('x-source-offset')}"
        )

    @property
    def state(self) -> str:
        return REPLAYED if self.replays else OPEN

    def summary(self) -> dict[str, Any]:
        """What ``list --json`` prints: the headers and the state, never the value."""
        return {
            "id": self.id,
            "state": self.state,
            "at": self.at.isoformat(),
            "service": self.service,
            "district_id": self.district_id or None,
            "case_id": self.case_id or None,
            "event_id": self.event_id or None,
            "payload": self.payload or None,
            "error_type": self.error_type,
            "error": self.error,
            "source": self.source,
            "replays": [{"to": r.to, "at": r.at.isoformat()} for r in self.replays],
        }


def parse_id(text: str) -> str:
    """A dead letter id as typed by an operator, normalised; ValueError if it is none."""
    m = _ID.match(text.strip())
    if m is None:
        raise ValueError(
            f"--id: {text!r} is not a dead letter id (<partition>:<offset>, e.g. 0:42)"
        )
    return f"{int(m[1])}:{int(m[2])}"


def _text(v: bytes) -> str:
    return v.decode("utf-8", errors="replace")


def parse_record(
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> DeadLetter | ReplayMark:
    """One record of the dead-letter topic: a dead letter, or a replay marker."""
    h = {k: _text(v) for k, v in headers}
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    if MARKER in h:
        return ReplayMark(of=h.get(REPLAY_OF, ""), to=h.get("x-replayed-to", ""), at=at)
    return DeadLetter(id=f"{partition}:{offset}", at=at, headers=h, key=key, value=value)


def fold(records: Iterable[DeadLetter | ReplayMark]) -> list[DeadLetter]:
    """The dead letters in topic order, each with the replays marked for it."""
    letters: dict[str, DeadLetter] = {}
    marks: dict[str, list[ReplayMark]] = {}
    for r in records:
        if isinstance(r, ReplayMark):
            marks.setdefault(r.of, []).append(r)
        else:
            letters[r.id] = r
    out = []
    for dl in letters.values():
        m = marks.get(dl.id)
        out.append(DeadLetter(dl.id, dl.at, dl.headers, dl.key, dl.value, tuple(m)) if m else dl)
    return out


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an age (``30m``, ``12h``, ``7d``), a date or a date-time in
    ISO 8601. A date or time without a zone is Shanghai's, as an office reads
    its clock."""
    now = now or datetime.now(UTC)
    s = text.strip()
    m = _AGO.match(s)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m[2]]
        return now - timedelta(**{unit: int(m[1])})
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"--since: {text!r} is neither an age (30m, 12h, 7d) nor an ISO date or time"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Filter:
    """Which dead letters an operator sees. ``districts`` None means every
    district (the city-wide operator); otherwise only letters of those
    districts, so a letter whose bytes did not decode (no district) is seen
    city-wide only."""

    districts: frozenset[str] | None
    service: str | None = None
    case_id: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    state: str | None = None

    def visible(self, dl: DeadLetter) -> bool:
        return self.districts is None or dl.district_id in self.districts

    def matches(self, dl: DeadLetter) -> bool:
        return (
            self.visible(dl)
            and (self.service is None or dl.service == self.service)
            and (self.case_id is None or dl.case_id == self.case_id)
            and (self.error_type is None or dl.error_type == self.error_type)
            and (self.since is None or dl.at >= self.since)
            and (self.state is None or dl.state == self.state)
        )

    @property
    def narrowed(self) -> bool:
        """Whether anything but the district narrows it (replay by filter wants
        that, or an explicit ``--all``)."""
        return any(v is not None for v in (self.service, self.case_id, self.error_type, self.since))


async def read_dead_letters(settings: Settings, timeout_s: float = 60.0) -> list[DeadLetter]:
    """Every dead letter the topic holds now, with its replay state."""
    records: list[DeadLetter | ReplayMark] = []
    async for batch in read_to_end(
        settings, settings.dead_letter_topic, "xinfang-dead-letters", timeout_s=timeout_s
    ):
        records.extend(
            parse_record(r.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
            for r in batch
        )
    return fold(records)


@dataclass(frozen=True)
class Replayed:
    """One event put back: which dead letters it answers and where it landed."""

    event_id: str
    dead_letters: tuple[str, ...]
    to: str = ""


def plan_replay(letters: Sequence[DeadLetter]) -> tuple[list[Replayed], list[DeadLetter]]:
    """Group the chosen dead letters by event: an event dead-lettered by three
    consumers is published once (every consumer reads it), and all three are
    marked. Letters whose bytes never decoded carry no event and are returned
    apart: publishing them again could only dead-letter them again; so are
    letters sent without their value (too large), which have nothing to put
    back."""
    groups: dict[str, list[str]] = {}
    undecodable = []
    for dl in letters:
        if not dl.event_id or dl.value is None:
            undecodable.append(dl)
            continue
        groups.setdefault(dl.event_id, []).append(dl.id)
    return [Replayed(eid, tuple(ids)) for eid, ids in groups.items()], undecodable


async def replay(settings: Settings, letters: Sequence[DeadLetter]) -> list[Replayed]:
    """Publish each chosen event again (original value and key, so the same
    partition and the case's order), then mark its dead letters replayed.
    Publish first: a replay that is not marked shows ``open`` and can be
    replayed again without harm; a mark without a replay would hide one."""
    plan, _ = plan_replay(letters)
    by_id = {dl.id: dl for dl in letters}
    producer = make_producer(settings, "xinfang-dead-letters")
    await producer.start()
    done: list[Replayed] = []
    try:
        for item in plan:
            first = by_id[item.dead_letters[0]]
            md = await producer.send_and_wait(
                settings.case_events_topic,
                value=first.value,
                key=first.key,
                headers=[(REPLAY_OF, ",".join(item.dead_letters).encode())],
            )
            to = f"{md.partition}:{md.offset}"
            for dl_id in item.dead_letters:
                await producer.send_and_wait(
                    settings.dead_letter_topic,
                    value=b"",
                    key=dl_id.encode(),
                    headers=[
                        (MARKER, b"1"),
                        (REPLAY_OF, dl_id.encode()),
                        ("x-replayed-to", f"{settings.case_events_topic}/{to}".encode()),
                    ],
                )
            done.append(Replayed(item.event_id, item.dead_letters, to))
    finally:
        await producer.stop()
    return done


CONSUMERS = ("assignment", "supervision", "reporting")


async def parked_behind(settings: Settings, letters: Sequence[DeadLetter]) -> dict[str, int]:
    """For each open dead letter its consumer still waits for, how many later
    events of its case that consumer holds parked (``core.parking``): what a
    replay will release. One exact ``_id`` read per letter."""
    out: dict[str, int] = {}
    wanted = [dl for dl in letters if dl.state == OPEN and dl.case_id and dl.service in CONSUMERS]
    if not wanted:
        return out
    client = connect(settings.mongo_uri, "xinfang-dead-letters")
    try:
        for dl in wanted:
            head = await client[settings.db_name(dl.service)]["parked"].find_one(
                {"_id": dl.case_id}, {"state": 1, "event_id": 1, "queue": 1}
            )
            if head and head.get("state") == BLOCKED and head.get("event_id") == dl.event_id:
                out[dl.id] = len(head.get("queue", []))
    finally:
        await client.close()
    return out
