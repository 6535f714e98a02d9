"""Looks for petitioners' identities where none may be: topics, logs, metric
series, reports.

The identity (name, resident ID number, phone) is sealed in intake's store
and shown only through ``RevealPetitioner``; it must never be in an event, a
dead letter, a log line, a metric label or a report. Whoever generated the
petitions knows exactly which identities went in, so this searches for
exactly those, and also for anything shaped like one: an 18-digit resident
ID number whose check digit is right, and an 11-digit mainland mobile
number. The chaos harness (scripts/chaos.py) prints its findings, and the
integration tests assert there are none.

Every haystack is text: a Kafka record is its key, value and headers decoded
as UTF-8 (protobuf keeps strings as UTF-8 bytes, so an identity in an event
would show as itself), a .docx is the text of every XML part in it.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Finding",
    "Identities",
    "Probe",
    "docx_text",
    "id_number_ok",
    "record_text",
]

# a resident ID number: area, birth date (19xx/20xx), sequence, check digit
# bounded by anything but a letter or digit: the digits inside a hex id (a
# pseudonym's HMAC, a UUID) are not a number of their own
ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"(?![0-9A-Za-z])"
)
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
# not the decimals of a number (a metric's value, seconds: seen in the
# two-replica long run as "…_seconds_sum 34659.13xxxxxxxxx")
PHONE = re.compile(r"(?<![0-9A-Za-z])(?<!\d\.)1[3-9]\d{9}(?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_number_ok(s: str) -> bool:
    """GB 11643's check digit: what makes 18 digits an ID number and not,
    say, a nanosecond timestamp."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == s[17].upper()


@dataclass
class Identities:
    """The identities that went in (from the generated requests)."""

    names: set[str] = field(default_factory=set)
    id_numbers: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)

    def add(self, petitioner: Any) -> None:
        if petitioner.name:
            self.names.add(petitioner.name)
        if petitioner.id_number:
            self.id_numbers.add(petitioner.id_number.upper())
        if petitioner.phone:
            self.phones.add(petitioner.phone)

    @classmethod
    def of(cls, requests: Iterable[Any]) -> Identities:
        out = cls()
        for r in requests:
            out.add(r.petitioner)
        return out


@dataclass(frozen=True)
class Finding:
    where: str  # which haystack: a topic record, a log file's line, a series
    what: str  # name / id_number / phone, and whether known or by pattern
    context: str  # the text around it, the identity itself masked

    def __str__(self) -> str:
        return f"{self.what} in {self.where}: …{self.context}…"


def _mask(text: str, start: int, end: int) -> str:
    lo, hi = max(0, start - 40), min(len(text), end + 40)
    return (text[lo:start] + "█" * (end - start) + text[end:hi]).replace("\n", " ")


def record_text(record: Any) -> str:
    """A Kafka record (aiokafka's ConsumerRecord) as one searchable text."""
    parts = [
        (record.key or b"").decode("utf-8", "replace"),
        (record.value or b"").decode("utf-8", "replace"),
    ]
    for k, v in record.headers or ():
        parts.append(f"{k}={(v or b'').decode('utf-8', 'replace')}")
    return "\n".join(parts)


def docx_text(data: bytes) -> str:
    """Every XML part of a .docx (the body, headers, charts), as text."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return "\n".join(
            z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml")
        )


class Probe:
    """Feed it haystacks; it counts what it searched and keeps what it found."""

    def __init__(self, known: Identities, max_findings: int = 50) -> None:
        self.known = known
        self.max_findings = max_findings
        self.findings: list[Finding] = []
        self.searched: dict[str, int] = {}  # kind of haystack -> how many
        # names are Chinese: each run of Han characters of a text is cut
        # into every substring of a name's length and looked up (a regular
        # expression of thousands of alternatives is far slower); a name
        # with anything else in it is searched for as it is
        self._han = {n for n in known.names if _HAN_RUN.fullmatch(n)}
        self._other = sorted(known.names - self._han)
        self._lengths = sorted({len(n) for n in self._han}, reverse=True)

    @property
    def count(self) -> int:
        return len(self.findings)

    def _found(self, where: str, what: str, text: str, m: re.Match[str]) -> None:
        self._found_at(where, what, text, m.start(), m.end())

    def _found_at(self, where: str, what: str, text: str, start: int, end: int) -> None:
        if len(self.findings) < self.max_findings:
            self.findings.append(Finding(where, what, _mask(text, start, end)))
        else:  # counted, not kept
            self.findings.append(Finding(where, what, ""))

    def search(self, kind: str, where: str, text: str) -> None:
        self.searched[kind] = self.searched.get(kind, 0) + 1
        for m in _HAN_RUN.finditer(text):
            run, at = m.group(0), m.start()
            for n in self._lengths:
                for i in range(len(run) - n + 1):
                    if run[i : i + n] in self._han:
                        self._found_at(where, "name (known)", text, at + i, at + i + n)
        for name in self._other:
            start = text.find(name)
            while start >= 0:
                self._found_at(where, "name (known)", text, start, start + len(name))
                start = text.find(name, start + 1)
        for m in ID_NUMBER.finditer(text):
            known = m.group(0).upper() in self.known.id_numbers
            if known or id_number_ok(m.group(0)):
                self._found(where, f"id_number ({'known' if known else 'pattern'})", text, m)
        for m in PHONE.finditer(text):
            known = m.group(0) in self.known.phones
            self._found(where, f"phone ({'known' if known else 'pattern'})", text, m)

    def search_records(self, topic: str, records: Sequence[Any]) -> None:
        for r in records:
            self.search("messages", f"{topic}/{r.partition}:{r.offset}", record_text(r))

    def search_logs(self, folder: Path) -> None:
        for path in sorted(folder.glob("*.log")):
            for i, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
                self.search("log lines", f"{path.name}:{i}", line)

    def search_series(self, source: str, exposition: str) -> None:
        """Every sample line of a /metrics text (its labels and values)."""
        for line in exposition.splitlines():
            if line and not line.startswith("#"):
                self.search("metric series", source, line)

    def search_report(self, name: str, data: bytes) -> None:
        text = docx_text(data) if name.endswith(".docx") else data.decode("utf-8", "replace")
        self.search("reports", name, text)

    def summary(self) -> str:
        searched = ", ".join(f"{n:,} {kind}" for kind, n in self.searched.items())
        kinds: dict[str, int] = {}
        for f in self.findings:
            kinds[f.what] = kinds.get(f.what, 0) + 1
        found = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"
        return (
            f"privacy: {found} found in {searched} "
            f"({len(self.known.names):,} names, {len(self.known.id_numbers):,} ID numbers, "
            f"{len(self.known.phones):,} phones known)"
        )
