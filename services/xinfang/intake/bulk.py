"""Bulk import: a batch of petitions from a CSV or JSON-lines file into intake.

Offices arrive with backlogs kept in spreadsheets, or with a higher level's
batch of assignments; typing them in one by one is where mistakes creep in.

Every row is registered whole or rejected whole. Parsing only turns text into
``RegisterPetitionRequest``s and says which column it could not read; the
registration rules stay in intake (``intake.domain.validate``), which refuses
a bad row without storing anything, so there is one set of rules, not two.

A row's request id is ``import:<first 16 hex of sha256(file)>:<line>``:
importing the same file again (after a crash, a timeout, or by mistake)
registers nothing twice. The flip side: an *edited* file is a new file, and
its rows get new ids, so rejected rows are fixed and imported as a file of
their own (the report says so).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import grpc
from tqdm import tqdm

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import tool_channel
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import to_timestamp
from xinfang.core.crypto import normalize_phone
from xinfang.intake.v1 import intake_pb2 as pb
from xinfang.intake.v1 import intake_pb2_grpc as pb_grpc

__all__ = [
    "COLUMNS",
    "ImportReport",
    "RowResult",
    "format_for",
    "import_rows",
    "parse_rows",
    "render_report",
    "run_import",
    "to_row",
    "write_rejects",
]

Format = Literal["csv", "jsonl"]

COLUMNS: tuple[str, ...] = (
    "district_id",
    "channel",
    "township_id",
    "village_id",
    "category",
    "content",
    "people_count",
    "received_at",
    "source",
    "batch_id",
    "oral",
    "representatives",
    "escalated",
    "petitioner_name",
    "petitioner_id_number",
    "petitioner_phone",
    "petitioner_address",
)

_CHANNELS: dict[str, ev.Channel.ValueType] = {
    "letter": ev.CHANNEL_LETTER,
    "visit": ev.CHANNEL_VISIT,
    "online": ev.CHANNEL_ONLINE,
    "phone": ev.CHANNEL_PHONE,
    "fax": ev.CHANNEL_FAX,
    "来信": ev.CHANNEL_LETTER,
    "来访": ev.CHANNEL_VISIT,
    "网上": ev.CHANNEL_ONLINE,
    "网上信访": ev.CHANNEL_ONLINE,
    "来电": ev.CHANNEL_PHONE,
    "传真": ev.CHANNEL_FAX,
}
_CHANNEL_NAMES = {v: k for k, v in _CHANNELS.items() if k.isascii()}
_SOURCES: dict[str, ev.Source.ValueType] = {
    "": ev.SOURCE_DIRECT,
    "direct": ev.SOURCE_DIRECT,
    "直接": ev.SOURCE_DIRECT,
    "higher_level": ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
    "上级交办": ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT,
}
_TRUE = frozenset({"true", "1", "是"})
_FALSE = frozenset({"false", "0", "否", ""})
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_INT32 = (-(2**31), 2**31 - 1)

# Refusals: the row itself is wrong, so asking again cannot help.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
RETRIES = 3
RPC_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RowResult:
    """One row of the file: a request ready to send, or why it is not."""

    line: int
    request: pb.RegisterPetitionRequest | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.request is None) == (self.error is None):
            raise ValueError("a row has either a request or an error")


@dataclass
class ImportReport:
    created: int = 0
    already_present: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def total(self) -> int:
        return self.created + self.already_present + len(self.rejected)


# ---------------------------------------------------------------- parsing


def parse_rows(
    text: str, fmt: Format, *, district_id: str | None, source_name: str
) -> list[RowResult]:
    """Read every row; a row that cannot be read is an error for that row only.

    ``text`` must be the file decoded as UTF-8 with newlines untouched, so
    that its UTF-8 encoding is the file's bytes (the request ids hash it).
    Raises ``ValueError`` (naming ``source_name``) for problems of the whole
    file, above all unknown columns: a typo in a header would otherwise drop
    that column's data from every row without a word.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    body = text.removeprefix("\ufeff")  # Excel's "CSV UTF-8" starts with a BOM
    if fmt == "csv":
        records = _csv_records(body, source_name)
    elif fmt == "jsonl":
        records = _jsonl_records(body, source_name)
    else:
        raise ValueError(f"{source_name}: unknown format {fmt!r}; csv or jsonl")
    district = (district_id or "").strip()
    out: list[RowResult] = []
    for line, values in records:
        if isinstance(values, str):
            out.append(RowResult(line, error=values))
            continue
        req, problems = _request(values, district)
        if problems:
            out.append(RowResult(line, error="; ".join(problems)))
        else:
            req.request_id = f"import:{digest}:{line}"
            out.append(RowResult(line, request=req))
    return out


# (line, cells) or (line, why the row could not be split into cells)
_Record = tuple[int, Mapping[str, str] | str]


def _csv_records(text: str, source_name: str) -> list[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ValueError(f"{source_name}: line 1: {e}") from e
    if header is None:
        return []
    names = [_column(h) for h in header]
    _check_columns(source_name, names)
    unnamed = [i for i, n in enumerate(names) if not n]
    out: list[_Record] = []
    last = reader.line_num
    try:
        for cells in reader:
            # a quoted value may span lines: the row's line is where it starts
            line, last = last + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines and the ",,,," rows spreadsheets leave behind
            if len(cells) != len(names):
                out.append((line, f"row has {len(cells)} fields; the header has {len(names)}"))
                continue
            if any(cells[i].strip() for i in unnamed):
                raise ValueError(f"{source_name}: line {line} has data in a column without a name")
            out.append((line, {n: c for n, c in zip(names, cells, strict=True) if n}))
    except csv.Error as e:
        raise ValueError(f"{source_name}: line {reader.line_num}: {e}") from e
    return out


def _jsonl_records(text: str, source_name: str) -> list[_Record]:
    out: list[_Record] = []
    unknown: dict[str, int] = {}  # column -> first line it appears on
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue  # skipped, but still counted so line numbers match an editor's
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            out.append((line, f"not valid JSON: {e.msg} (column {e.colno})"))
            continue
        if not isinstance(obj, dict):
            out.append((line, "not a JSON object"))
            continue
        cells: dict[str, str] = {}
        problems: list[str] = []
        for key, value in obj.items():
            name = _column(key)
            if name not in COLUMNS:
                unknown.setdefault(key, line)
                continue
            cell = _json_cell(value)
            if cell is None:
                problems.append(f"{name}: not a string, number or boolean")
            else:
                cells[name] = cell
        out.append((line, "; ".join(problems) if problems else cells))
    if unknown:
        listed = ", ".join(f"{k!r} (line {n})" for k, n in unknown.items())
        raise ValueError(
            f"{source_name}: unknown keys {listed}; nothing imported. "
            f"Known keys: {', '.join(COLUMNS)}"
        )
    return out


def _column(name: str) -> str:
    return name.strip().lower()


def _check_columns(source_name: str, names: Sequence[str]) -> None:
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        raise ValueError(
            f"{source_name}: unknown columns {', '.join(map(repr, unknown))}; nothing imported. "
            f"Known columns: {', '.join(COLUMNS)}"
        )
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise ValueError(f"{source_name}: columns given twice: {', '.join(twice)}")


def _json_cell(value: object) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _request(
    cells: Mapping[str, str], district_id: str
) -> tuple[pb.RegisterPetitionRequest, list[str]]:
    """The request a row describes, and every column that could not be read."""
    problems: list[str] = []
    get = cells.get
    req = pb.RegisterPetitionRequest(
        township_id=get("township_id", ""),
        village_id=get("village_id", ""),
        category=get("category", ""),
        content=get("content", ""),
        batch_id=get("batch_id", ""),
        petitioner=pb.Petitioner(
            name=get("petitioner_name", ""),
            id_number=get("petitioner_id_number", ""),
            phone=get("petitioner_phone", ""),
            address=get("petitioner_address", ""),
        ),
    )

    own = get("district_id", "").strip()
    if own and district_id and own != district_id:
        problems.append(f"district_id: {own!r} is not the district being imported, {district_id}")
    elif not (own or district_id):
        problems.append("district_id: is required (in the file or given for the whole file)")
    req.district_id = own or district_id

    channel = get("channel", "").strip()
    if channel:  # empty: intake says it is required
        if (value := _CHANNELS.get(channel.lower())) is None:
            problems.append(
                f"channel: {channel!r} is not letter, visit, online, phone or fax "
                "(来信、来访、网上信访、来电、传真)"
            )
        else:
            req.channel = value

    source = get("source", "").strip()
    if (src := _SOURCES.get(source.lower())) is None:
        problems.append(f"source: {source!r} is not direct or higher_level (直接、上级交办)")
    else:
        req.source = src

    for name in ("people_count", "representatives"):
        number, problem = _int32(get(name, ""))
        if problem:
            problems.append(f"{name}: {problem}")
        else:
            setattr(req, name, number)

    for name in ("oral", "escalated"):
        flag = get(name, "").strip().lower()
        if flag in _TRUE:
            setattr(req, name, True)
        elif flag not in _FALSE:
            problems.append(f"{name}: {flag!r} is not true/false, 1/0 or 是/否")

    received = get("received_at", "").strip()
    if received:  # empty: intake says it is required
        try:
            at = datetime.fromisoformat(received)
        except ValueError:
            problems.append(f"received_at: not an ISO 8601 time ({received!r})")
        else:
            # the office's own clock: a time written without a zone is Beijing time
            req.received_at.CopyFrom(to_timestamp(at if at.tzinfo else at.replace(tzinfo=SHANGHAI)))
    return req, problems


def _int32(text: str) -> tuple[int, str]:
    s = text.strip()
    if not s:
        return 0, ""
    if not _INTEGER_RE.match(s):
        return 0, f"not a whole number ({s!r})"
    n = int(s)
    if not _INT32[0] <= n <= _INT32[1]:
        return 0, f"out of range ({s})"
    return n, ""


def to_row(req: pb.RegisterPetitionRequest) -> dict[str, str]:
    """The columns ``parse_rows`` reads back into ``req`` (less its request
    id), so sample batches and templates can be written out; the time is
    written as an office would, Beijing time without a zone."""
    at = req.received_at.ToDatetime(tzinfo=SHANGHAI) if req.HasField("received_at") else None
    p = req.petitioner
    return {
        "district_id": req.district_id,
        "channel": _CHANNEL_NAMES.get(req.channel, ""),
        "township_id": req.township_id,
        "village_id": req.village_id,
        "category": req.category,
        "content": req.content,
        "people_count": str(req.people_count) if req.people_count else "",
        "received_at": at.replace(tzinfo=None).isoformat() if at else "",
        "source": "higher_level" if req.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT else "direct",
        "batch_id": req.batch_id,
        "oral": "true" if req.oral else "false",
        "representatives": str(req.representatives),
        "escalated": "true" if req.escalated else "false",
        "petitioner_name": p.name,
        "petitioner_id_number": p.id_number,
        "petitioner_phone": p.phone,
        "petitioner_address": p.address,
    }


def format_for(path: str) -> Format:
    """The format a file's name implies, so operators rarely need ``--format``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValueError(f"{path}: cannot tell the format from the name; give --format csv|jsonl")


# ---------------------------------------------------------------- sending


async def import_rows(
    target: str,
    rows: list[RowResult],
    concurrency: int = 16,
    progress: bool = True,
    *,
    backoff_s: float = 0.5,
) -> ImportReport:
    """Register every readable row with intake at ``target``; rows that could
    not be read are reported as rejected without being sent.

    A petitioner's rows go one after another in the order they were received:
    intake marks a petition first or repeat by what it has already
    registered, so sending them side by side could mark them wrongly.
    Transient failures are retried (the request id makes that safe); a row
    that was in fact registered by an attempt that timed out then counts as
    already present.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, not {concurrency}")
    report = ImportReport()
    report.rejected.extend((r.line, r.error) for r in rows if r.error is not None)
    groups = list(_by_petitioner(rows))
    queue: asyncio.Queue[list[tuple[int, pb.RegisterPetitionRequest]]] = asyncio.Queue()
    for g in groups:
        queue.put_nowait(g)
    bar = tqdm(total=sum(len(g) for g in groups), disable=not progress, unit="件", file=sys.stderr)
    try:
        async with tool_channel(target) as channel:
            stub = pb_grpc.IntakeServiceStub(channel)

            async def worker() -> None:
                while not queue.empty():
                    for line, req in queue.get_nowait():
                        created, reason = await _register(stub, req, backoff_s)
                        if reason:
                            report.rejected.append((line, reason))
                        elif created:
                            report.created += 1
                        else:
                            report.already_present += 1
                        bar.update(1)

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(groups)))))
    finally:
        bar.close()
    report.rejected.sort()
    return report


def _by_petitioner(
    rows: Sequence[RowResult],
) -> Iterator[list[tuple[int, pb.RegisterPetitionRequest]]]:
    """Readable rows grouped by the person intake's pseudonym is keyed on,
    each group in received order, groups in file order."""
    groups: dict[tuple[str, str], list[tuple[int, pb.RegisterPetitionRequest]]] = {}
    for r in rows:
        if r.request is None:
            continue
        p = r.request.petitioner
        who = p.id_number.strip().upper() or normalize_phone(p.phone) or p.name.strip()
        groups.setdefault((r.request.district_id, who), []).append((r.line, r.request))
    for g in groups.values():
        g.sort(key=lambda item: (item[1].received_at.ToNanoseconds(), item[0]))
        yield g


async def _register(
    stub: pb_grpc.IntakeServiceStub, req: pb.RegisterPetitionRequest, backoff_s: float
) -> tuple[bool, str]:
    """(created, "") or (False, why the row was rejected)."""
    for attempt in range(RETRIES + 1):
        try:
            resp = await stub.RegisterPetition(req, timeout=RPC_TIMEOUT_S)
            return bool(resp.created), ""
        except grpc.aio.AioRpcError as e:
            code = e.code()
            details = e.details() or ""
            if code in _REFUSALS:
                return False, _as_column(details or code.name)
            if attempt == RETRIES:
                return False, f"{code.name}: {details}" if details else code.name
            await asyncio.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _as_column(reason: str) -> str:
    """Intake names the petitioner's fields ``petitioner.name``; the file
    calls them ``petitioner_name``, and the report should name what the
    operator can see."""
    if reason.startswith("petitioner."):
        return "petitioner_" + reason.removeprefix("petitioner.")
    return reason


# ---------------------------------------------------------------- reporting

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "summary": "共 {total} 行：新登记 {created} 件，此前已登记 {present} 件，"
        "退回 {rejected} 行",
        "rejected": "退回的行：",
        "row": "  第 {line} 行：{reason}",
        "hint": "提示：改正后请只把退回的行另存为新文件再导入；"
        "改动原文件后整份重新导入，其余各行会被重复登记。",
    },
    "en": {
        "summary": "{total} rows: {created} newly registered, {present} already registered, "
        "{rejected} rejected",
        "rejected": "Rejected rows:",
        "row": "  line {line}: {reason}",
        "hint": "Note: fix the rejected rows and import them as a file of their own; "
        "re-importing an edited copy of the whole file would register the other rows again.",
    },
}


def render_report(report: ImportReport, lang: str = "zh") -> str:
    t = TEXT[lang]
    out = [
        t["summary"].format(
            total=report.total,
            created=report.created,
            present=report.already_present,
            rejected=len(report.rejected),
        )
    ]
    if report.rejected:
        out.append(t["rejected"])
        out += [t["row"].format(line=line, reason=reason) for line, reason in report.rejected]
        out.append(t["hint"])
    return "\n".join(out)


def write_rejects(path: str, report: ImportReport) -> None:
    # utf-8-sig: the office opens this in Excel, which reads UTF-8 only with a BOM
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["line", "reason"])
        w.writerows(report.rejected)


def run_import(
    path: str,
    *,
    target: str,
    district_id: str | None,
    fmt: Format | None,
    concurrency: int,
    rejects: str | None,
    lang: str,
    progress: bool = True,
) -> int:
    """The ``xinfang import`` command: 0 when every row went in, else 1.
    A file that cannot be read as a whole imports nothing."""
    if concurrency < 1:
        print(f"--concurrency must be at least 1, not {concurrency}", file=sys.stderr)
        return 1
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8")
        rows = parse_rows(text, fmt or format_for(path), district_id=district_id, source_name=path)
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8 (in Excel, save as “CSV UTF-8”)", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(str(e), file=sys.stderr)
        return 1
    report = asyncio.run(import_rows(target, rows, concurrency, progress))
    print(render_report(report, lang))
    if rejects:
        write_rejects(rejects, report)
    return 0 if not report.rejected else 1
