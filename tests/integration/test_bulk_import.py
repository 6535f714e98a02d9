"""Bulk import against the real stack: good rows are registered once however
often the file is imported, bad rows are refused whole and named by line and
column, and what went in is what reporting counts."""

from __future__ import annotations

import csv
import io
import json
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from xinfang import cli
from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import Settings
from xinfang.intake.bulk import COLUMNS, import_rows, parse_rows, to_row
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions

from .conftest import eventually

pytestmark = pytest.mark.integration

YEAR = datetime.now(UTC).year
START = date(YEAR, 1, 1)
END = max(date(YEAR, 1, 2), datetime.now(UTC).date() - timedelta(days=1))
_ZH_CHANNEL = {ev.CHANNEL_VISIT: "来访", ev.CHANNEL_PHONE: "来电", ev.CHANNEL_ONLINE: "网上信访"}


async def summary(ch: grpc.aio.Channel, district_id: str) -> rpb.DistrictSummary:
    s: rpb.DistrictSummary = await rgrpc.ReportingServiceStub(ch).GetDistrictSummary(
        rpb.GetDistrictSummaryRequest(district_id=district_id, period=str(YEAR))
    )
    return s


def generated(district: dict[str, Any], n: int, seed: int) -> list[ipb.RegisterPetitionRequest]:
    return list(petitions(district, n, seed=seed, start=START, end=END))


def row(req: ipb.RegisterPetitionRequest, **changes: str) -> dict[str, str]:
    """A file row as an office would write it: no district column value
    (it comes from --district), some channels in Chinese."""
    r = to_row(req) | {"district_id": ""}
    if req.channel in _ZH_CHANNEL:
        r["channel"] = _ZH_CHANNEL[req.channel]
    return r | changes


def csv_text(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def expected_repeats(reqs: list[ipb.RegisterPetitionRequest]) -> int:
    """Intake marks a petition repeat when the same person already has one on
    the same matter (category) registered."""
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for r in sorted(reqs, key=lambda r: r.received_at.ToNanoseconds()):
        key = (r.petitioner.id_number, r.category)
        repeats += key in seen
        seen.add(key)
    return repeats


async def test_batch_goes_in_once_and_bad_rows_are_named(
    settings: Settings, district: dict[str, Any], reporting_channel: grpc.aio.Channel
) -> None:
    did = district["district_id"]
    target = f"{settings.grpc_host}:{settings.intake_grpc}"
    good = generated(district, 30, seed=21)
    spare = generated(district, 3, seed=22)  # other people, for the bad rows
    bad_id = spare[1].petitioner.id_number
    bad_id = bad_id[:-1] + ("0" if bad_id[-1] != "0" else "1")
    rows = [row(r) for r in good]
    # (index in the file's data rows, row): header is line 1, data row i is line i + 2
    bad = [
        (4, row(spare[0], category="astrology")),
        (17, row(spare[1], petitioner_id_number=bad_id)),
        (32, row(spare[2], received_at="2026-02-30 25:61")),
    ]
    for i, r in bad:
        rows.insert(i, r)
    lines = [i + 2 for i, _ in bad]
    text = csv_text(rows)

    parsed = parse_rows(text, "csv", district_id=did, source_name="batch.csv")
    assert len(parsed) == 33
    report = await import_rows(target, parsed, concurrency=8, progress=False)
    assert (report.created, report.already_present) == (30, 0)
    assert [line for line, _ in report.rejected] == lines
    reasons = [reason for _, reason in report.rejected]
    assert reasons[0].startswith("category:") and "astrology" in reasons[0]
    assert reasons[1].startswith("petitioner_id_number:")
    assert reasons[2].startswith("received_at: not an ISO 8601 time")

    # the same file again: nothing new, the same rows refused for the same reasons
    again = await import_rows(
        target,
        parse_rows(text, "csv", district_id=did, source_name="batch.csv"),
        progress=False,
    )
    assert (again.created, again.already_present) == (0, 30)
    assert again.rejected == report.rejected

    s = await eventually(
        lambda: summary(reporting_channel, did), lambda s: s.received >= 30 and s.routed >= 30
    )
    assert (s.received, s.routed) == (30, 30)
    assert s.people == sum(r.people_count or 1 for r in good)
    assert sum(s.by_channel.values()) == 30
    # a petitioner's rows went in their received order, so repeats are marked as
    # the office would have marked them at the time
    assert s.repeat_petitions == expected_repeats(good)
    assert s.first_petitions == 30 - expected_repeats(good)


async def test_unreachable_intake_rejects_rows_after_retrying(
    district: dict[str, Any],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = csv_text([row(r) for r in generated(district, 2, seed=23)])
    parsed = parse_rows(text, "csv", district_id=district["district_id"], source_name="x.csv")
    report = await import_rows(f"127.0.0.1:{port}", parsed, progress=False, backoff_s=0.01)
    assert (report.created, report.already_present) == (0, 0)
    assert [line for line, _ in report.rejected] == [2, 3]
    assert all(reason.startswith("UNAVAILABLE") for _, reason in report.rejected)


def test_cli_imports_json_lines_and_writes_the_rejects(
    district: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    did = district["district_id"]
    reqs = generated(district, 3, seed=24)
    lines = [json.dumps(row(r), ensure_ascii=False) for r in reqs]
    lines.insert(1, "")  # line 2: blank, skipped but counted
    lines.append(json.dumps(row(reqs[0], people_count="many"), ensure_ascii=False))  # line 5
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    args = ["import", str(batch), "--district", did, "--rejects", str(rejects), "--lang", "en"]

    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "4 rows: 3 newly registered, 0 already registered, 1 rejected" in out
    assert "line 5: people_count: not a whole number" in out
    with rejects.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f)) == [
            ["line", "reason"],
            ["5", "people_count: not a whole number ('many')"],
        ]

    assert cli.main(args) == 1
    assert "0 newly registered, 3 already registered" in capsys.readouterr().out

    # a header typo imports nothing
    typo = tmp_path / "typo.csv"
    typo.write_text(csv_text([row(reqs[0])]).replace("category", "catgory", 1), encoding="utf-8")
    assert cli.main(["import", str(typo), "--district", did]) == 1
    assert "catgory" in capsys.readouterr().err
