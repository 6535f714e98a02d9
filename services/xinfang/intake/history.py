"""Importing whole case histories from the system a district used before.

A history file is JSON lines, one case a line::

    {"source_id": "old-xf:2025-00017",
     "registration": {...the columns of a bulk import row...},
     "steps": [{"step": "route", "at": "2025-03-05T10:00", "decision": "accept",
                "unit_id": "u-t01"},
               {"step": "accept", "at": "2025-03-06T09:30"},
               {"step": "reply", "at": "2025-04-20T16:00", "resolved": true}, ...]}

A step is one of the fields of ``assignment.v1.HistoryStep`` (``route``,
``notice``, ``accept``, ``object_remit``, ``designate``, ``escalate``,
``leader_package``, ``visit_out``, ``extend``, ``reply``, ``rate``,
``review``, ``decide_review``, ``backflow``, ``hearing_start``,
``hearing_end``), its other keys the fields of that command's request (an
enum by its short name: ``"decision": "forward"``, ``"rating":
"satisfied"``); ``at`` is when it happened, Beijing time unless it says
otherwise.

Each case is imported whole or rejected with its reason. Its history is
first checked by assignment through the lifecycle without recording
anything (``ImportHistory`` with ``dry_run``), against the registration it
is about to have; only then is the petition registered with intake
(``history_source``, so assignment does not route it by the table) and the
history recorded as one record. The case id comes from ``source_id``, the
history's record from a digest of its steps: importing the same file again
changes nothing.

Authorisation: ``ImportHistory`` is the petition office's (its token), and
it alone may record steps older than the late-entry window; every imported
event says ``ENTRY_HISTORY`` and carries the source as its reason.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from tqdm import tqdm

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import tool_channel
from xinfang.core.calendar import SHANGHAI
from xinfang.core.codec import to_timestamp
from xinfang.core.crypto import normalize_phone
from xinfang.intake.bulk import (
    COLUMNS,
    ImportReport,
    _json_cell,
    _request,
    format_for,
    render_report,
    write_rejects,
)
from xinfang.intake.domain import GROUP_MIN_PEOPLE, case_id_for
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc

__all__ = [
    "HistoryCase",
    "import_histories",
    "is_history",
    "is_history_file",
    "parse_histories",
    "registration_of",
    "run_import",
]

STEPS = apb.HistoryStep.DESCRIPTOR.oneofs_by_name["step"].fields
_STEP_NAMES = {f.name for f in STEPS}
# how long to wait for assignment to record a registration before its history
SEEN_TIMEOUT_S = 60.0
RETRIES = 3
RPC_TIMEOUT_S = 30.0
_RETRY = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)


@dataclass(frozen=True)
class HistoryCase:
    """One line of the file: the registration and the history, or why not."""

    line: int
    register: ipb.RegisterPetitionRequest | None = None
    history: apb.ImportHistoryRequest | None = None
    error: str | None = None


def is_history(text: str) -> bool:
    """Whether a JSON-lines file holds histories (its first object has
    ``steps``) rather than petitions to register."""
    for raw in text.removeprefix("\ufeff").split("\n"):
        if raw.strip():
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                return False
            return isinstance(obj, dict) and "steps" in obj
    return False


# ---------------------------------------------------------------- parsing


def parse_histories(text: str, *, district_id: str | None) -> list[HistoryCase]:
    """Every line read into its two requests; a line that cannot be read is
    an error of that case only."""
    out: list[HistoryCase] = []
    district = (district_id or "").strip()
    for line, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            out.append(HistoryCase(line, error=f"not valid JSON: {e.msg} (column {e.colno})"))
            continue
        try:
            register, history = _case(obj, district)
        except ValueError as e:
            out.append(HistoryCase(line, error=str(e)))
            continue
        out.append(HistoryCase(line, register, history))
    return out


def _case(obj: Any, district: str) -> tuple[ipb.RegisterPetitionRequest, apb.ImportHistoryRequest]:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(obj) - {"source_id", "registration", "steps"})
    if unknown:
        raise ValueError(f"unknown keys {', '.join(unknown)}; source_id, registration, steps")
    source = obj.get("source_id")
    if not isinstance(source, str) or not source.strip():
        raise ValueError("source_id: is required: the case's number in the system used before")
    source = source.strip()
    reg = obj.get("registration")
    if not isinstance(reg, dict):
        raise ValueError("registration: is required (the columns of a bulk import row)")
    cells: dict[str, str] = {}
    problems: list[str] = []
    for key, value in reg.items():
        if key not in COLUMNS:
            problems.append(f"registration.{key}: unknown column")
        elif (cell := _json_cell(value)) is None:
            problems.append(f"registration.{key}: not a string, number or boolean")
        else:
            cells[key] = cell
    req, more = _request(cells, district)
    problems += [f"registration.{p}" for p in more]
    steps_in = obj.get("steps")
    if not isinstance(steps_in, list) or not steps_in:
        problems.append("steps: a list of at least one step")
        steps_in = []
    steps: list[apb.HistoryStep] = []
    for i, s in enumerate(steps_in):
        try:
            steps.append(_step(s))
        except ValueError as e:
            problems.append(f"steps[{i}].{e}")
    if problems:
        raise ValueError("; ".join(problems))
    req.request_id = f"history:{source}"
    req.history_source = source
    history = apb.ImportHistoryRequest(
        ctx=apb.CommandContext(
            district_id=req.district_id, case_id=case_id_for(req.district_id, req.request_id)
        ),
        source=source,
        steps=steps,
    )
    return req, history


def _step(obj: Any) -> apb.HistoryStep:
    """One step, field by field through the request's own descriptor; errors
    start with the key, for the caller's ``steps[i].`` prefix."""
    if not isinstance(obj, dict):
        raise ValueError("step: not a JSON object")
    kind = obj.get("step")
    if kind not in _STEP_NAMES:
        raise ValueError(f"step: {kind!r} is not one of {', '.join(sorted(_STEP_NAMES))}")
    step = apb.HistoryStep()
    msg: Message = getattr(step, kind)
    msg.SetInParent()
    at = obj.get("at")
    if not isinstance(at, str) or not at.strip():
        raise ValueError("at: is required: when the step happened")
    msg.ctx.occurred_at.CopyFrom(_time(at, "at"))  # type: ignore[attr-defined]
    for key, value in obj.items():
        if key in ("step", "at"):
            continue
        fd = msg.DESCRIPTOR.fields_by_name.get(key)
        if fd is None or key == "ctx":
            known = [f.name for f in msg.DESCRIPTOR.fields if f.name != "ctx"]
            raise ValueError(f"{key}: not a field of {kind} ({', '.join(known) or 'none'})")
        _set(msg, fd, key, value)
    return step


def _set(msg: Message, fd: Any, key: str, value: Any) -> None:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        names = {v.name for v in fd.enum_type.values}
        prefix = next(n for n in names if n.endswith("_UNSPECIFIED")).removesuffix("UNSPECIFIED")
        full = prefix + str(value).upper()
        if not isinstance(value, str) or full not in names or full.endswith("_UNSPECIFIED"):
            shown = sorted(n.removeprefix(prefix).lower() for n in names if "UNSPECIFIED" not in n)
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(shown)}")
        setattr(msg, key, fd.enum_type.values_by_name[full].number)
    elif fd.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: true or false")
        setattr(msg, key, value)
    elif fd.type == FieldDescriptor.TYPE_INT32:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: a whole number")
        setattr(msg, key, value)
    elif fd.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise ValueError(f"{key}: a string")
        setattr(msg, key, value)
    elif fd.message_type is not None and fd.message_type.full_name == "google.protobuf.Timestamp":
        getattr(msg, key).CopyFrom(_time(value, key))
    else:  # pragma: no cover - every request field is one of the above
        raise ValueError(f"{key}: cannot be given in a history")


def _time(value: Any, key: str) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"{key}: an ISO 8601 time")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise ValueError(f"{key}: not an ISO 8601 time ({value!r})") from e
    # the office's own clock: a time written without a zone is Beijing time
    return to_timestamp(at if at.tzinfo else at.replace(tzinfo=SHANGHAI))


def registration_of(req: ipb.RegisterPetitionRequest) -> ev.CaseRegistered:
    """The registration intake will publish for ``req`` (less what only intake
    knows: the pseudonym and the repeat count), for checking its history first."""
    people = req.people_count or 1
    return ev.CaseRegistered(
        channel=req.channel,
        township_id=req.township_id,
        village_id=req.village_id,
        category=req.category,
        content=req.content,
        people_count=people,
        received_at=req.received_at,
        source=req.source,
        batch_id=req.batch_id,
        group=people >= GROUP_MIN_PEOPLE,
        representatives=req.representatives,
        oral=req.oral,
        escalated=req.escalated,
    )


# ---------------------------------------------------------------- sending

R = TypeVar("R")


async def _call(fn: Callable[[Any], Awaitable[R]], req: Message, backoff_s: float) -> R:
    """A call retried on what may pass (the ids make that safe); a refusal raises."""
    for attempt in range(RETRIES + 1):
        try:
            return await fn(req, timeout=RPC_TIMEOUT_S)  # type: ignore[call-arg]
        except grpc.aio.AioRpcError as e:
            if e.code() not in _RETRY or attempt == RETRIES:
                raise
            await asyncio.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(e: grpc.aio.AioRpcError) -> str:
    return str(e.details() or e.code().name)


async def _one(
    intake: igrpc.IntakeServiceStub,
    assignment: agrpc.AssignmentServiceStub,
    case: HistoryCase,
    backoff_s: float,
) -> tuple[str, str]:
    """("created" | "present" | "rejected", reason)."""
    assert case.register is not None and case.history is not None
    dry = apb.ImportHistoryRequest()
    dry.CopyFrom(case.history)
    dry.dry_run = True
    dry.registration.CopyFrom(registration_of(case.register))
    try:
        checked: apb.ImportHistoryResponse = await _call(assignment.ImportHistory, dry, backoff_s)
    except grpc.aio.AioRpcError as e:
        return "rejected", _reason(e)
    if checked.imported_before:
        return "present", ""
    try:
        await _call(intake.RegisterPetition, case.register, backoff_s)
    except grpc.aio.AioRpcError as e:
        reason = _reason(e)
        if reason.startswith("petitioner."):
            reason = "registration.petitioner_" + reason.removeprefix("petitioner.")
        else:
            reason = "registration." + reason
        return "rejected", reason
    get = apb.GetCaseRequest(district_id=case.history.ctx.district_id,
                             case_id=case.history.ctx.case_id)  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEEN_TIMEOUT_S
    while True:  # assignment records the registration from its event
        try:
            await assignment.GetCase(get, timeout=RPC_TIMEOUT_S)
            break
        except grpc.aio.AioRpcError as e:
            if e.code() not in (grpc.StatusCode.NOT_FOUND, *_RETRY):
                return "rejected", _reason(e)
            if loop.time() > deadline:
                return "rejected", (
                    f"assignment did not record the registration within {SEEN_TIMEOUT_S:.0f} s; "
                    "import the file again"
                )
            await asyncio.sleep(0.2)
    try:
        done: apb.ImportHistoryResponse = await _call(
            assignment.ImportHistory, case.history, backoff_s
        )
    except grpc.aio.AioRpcError as e:
        return "rejected", f"{_reason(e)} (the petition is registered; its history is not)"
    return ("present" if done.imported_before else "created"), ""


def _by_petitioner(cases: Sequence[HistoryCase]) -> list[list[HistoryCase]]:
    """A petitioner's cases one after another in received order (intake marks
    first and repeat petitions by what it has registered); groups in file order."""
    groups: dict[tuple[str, str], list[HistoryCase]] = {}
    for c in cases:
        if c.register is None:
            continue
        p = c.register.petitioner
        who = p.id_number.strip().upper() or normalize_phone(p.phone) or p.name.strip()
        groups.setdefault((c.register.district_id, who), []).append(c)
    for g in groups.values():
        g.sort(key=lambda c: (c.register.received_at.ToNanoseconds(), c.line))  # type: ignore[union-attr]
    return list(groups.values())


async def import_histories(
    intake_target: str,
    assignment_target: str,
    cases: list[HistoryCase],
    concurrency: int = 8,
    progress: bool = True,
    *,
    backoff_s: float = 0.5,
) -> ImportReport:
    """Import every readable case; a case that could not be read is reported
    as rejected without being sent."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, not {concurrency}")
    report = ImportReport()
    report.rejected.extend((c.line, c.error) for c in cases if c.error is not None)
    groups = _by_petitioner(cases)
    queue: asyncio.Queue[list[HistoryCase]] = asyncio.Queue()
    for g in groups:
        queue.put_nowait(g)
    bar = tqdm(total=sum(len(g) for g in groups), disable=not progress, unit="件", file=sys.stderr)
    try:
        async with (
            tool_channel(intake_target) as ich,
            tool_channel(assignment_target) as ach,
        ):
            intake, assignment = igrpc.IntakeServiceStub(ich), agrpc.AssignmentServiceStub(ach)

            async def worker() -> None:
                while not queue.empty():
                    for case in queue.get_nowait():
                        outcome, reason = await _one(intake, assignment, case, backoff_s)
                        if outcome == "rejected":
                            report.rejected.append((case.line, reason))
                        elif outcome == "created":
                            report.created += 1
                        else:
                            report.already_present += 1
                        bar.update(1)

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(groups)))))
    finally:
        bar.close()
    report.rejected.sort()
    return report


def is_history_file(path: str, fmt: str | None) -> bool:
    """Whether ``xinfang import`` was given histories (JSON lines whose first
    object has ``steps``); an unreadable file is left to the row import's
    messages."""
    try:
        if (fmt or format_for(path)) != "jsonl":
            return False
        return is_history(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return False


def run_import(
    path: str,
    *,
    intake_target: str,
    assignment_target: str,
    district_id: str | None,
    concurrency: int,
    rejects: str | None,
    lang: str,
    progress: bool = True,
) -> int:
    """``xinfang import`` of a history file: 0 when every case went in, else 1."""
    if concurrency < 1:
        print(f"--concurrency must be at least 1, not {concurrency}", file=sys.stderr)
        return 1
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 1
    cases = parse_histories(text, district_id=district_id)
    report = asyncio.run(
        import_histories(intake_target, assignment_target, cases, concurrency, progress)
    )
    print(render_report(report, lang))
    if rejects:
        write_rejects(rejects, report)
    return 0 if not report.rejected else 1
