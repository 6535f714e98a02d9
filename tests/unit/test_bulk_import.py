"""Bulk import parsing: a file's rows become exactly the requests an operator
meant, a row that cannot be read is rejected alone and named by line and
column, and a header typo stops the whole import rather than drop data."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.districts import parse_district
from xinfang.intake.bulk import (
    COLUMNS,
    ImportReport,
    RowResult,
    format_for,
    parse_rows,
    render_report,
    to_row,
)
from xinfang.intake.domain import validate
from xinfang.intake.v1 import intake_pb2 as pb
from xinfang.sample.generator import petitions, sample_district

D = "test-district"
ID = "440304199001010011"  # valid check character
BASE: dict[str, str] = {
    "channel": "visit",
    "township_id": "t01",
    "village_id": "t01-v01",
    "category": "labour_wages",
    "content": "拖欠工资，请求协调追讨。",
    "people_count": "6",
    "received_at": "2026-03-02 09:30",
    "source": "上级交办",
    "batch_id": "2026-5",
    "oral": "是",
    "representatives": "2",
    "escalated": "0",
    "petitioner_name": "王伟",
    "petitioner_id_number": ID,
    "petitioner_phone": "13800138000",
    "petitioner_address": "城东街道东风社区1幢",
}


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    if header is None:
        header = list(rows[0]) if rows else list(BASE)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def parse_csv(text: str, district_id: str | None = D) -> list[RowResult]:
    return parse_rows(text, "csv", district_id=district_id, source_name="batch.csv")


def parse_jsonl(text: str, district_id: str | None = D) -> list[RowResult]:
    return parse_rows(text, "jsonl", district_id=district_id, source_name="batch.jsonl")


def request(r: RowResult) -> pb.RegisterPetitionRequest:
    assert r.error is None, r.error
    assert r.request is not None
    return r.request


def test_csv_row_becomes_the_request_it_describes() -> None:
    [row] = parse_csv(csv_text([BASE]))
    assert row.line == 2
    req = request(row)
    assert req.district_id == D
    assert req.channel == ev.CHANNEL_VISIT
    assert (req.township_id, req.village_id, req.category) == ("t01", "t01-v01", "labour_wages")
    assert req.content == BASE["content"]
    assert (req.people_count, req.representatives) == (6, 2)
    # 09:30 Beijing time is 01:30 UTC
    assert req.received_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert req.source == ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT
    assert req.batch_id == "2026-5"
    assert req.oral is True
    assert req.escalated is False
    assert req.petitioner == pb.Petitioner(
        name="王伟", id_number=ID, phone="13800138000", address="城东街道东风社区1幢"
    )


def test_jsonl_takes_json_types() -> None:
    obj: dict[str, Any] = {
        **BASE,
        "channel": "phone",
        "people_count": 1,
        "representatives": 0,
        "oral": True,
        "escalated": False,
        "source": "direct",
        "batch_id": None,
        "received_at": "2026-03-02T23:15:00",
    }
    [row] = parse_jsonl(json.dumps(obj, ensure_ascii=False) + "\n")
    req = request(row)
    assert row.line == 1
    assert req.channel == ev.CHANNEL_PHONE
    assert (req.people_count, req.representatives) == (1, 0)
    assert req.oral is True and req.escalated is False
    assert req.source == ev.SOURCE_DIRECT and req.batch_id == ""
    # late evening in Beijing is still the same day, 15:15 UTC
    assert req.received_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 2, 15, 15, tzinfo=UTC)


def test_jsonl_nested_value_is_a_row_error() -> None:
    rows = parse_jsonl(json.dumps({**BASE, "content": {"text": "x"}}) + "\n" + json.dumps(BASE))
    assert rows[0].error is not None and rows[0].error.startswith("content:")
    assert rows[1].request is not None


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("来信", ev.CHANNEL_LETTER),
        ("来访", ev.CHANNEL_VISIT),
        ("网上", ev.CHANNEL_ONLINE),
        ("网上信访", ev.CHANNEL_ONLINE),
        ("来电", ev.CHANNEL_PHONE),
        ("传真", ev.CHANNEL_FAX),
        ("letter", ev.CHANNEL_LETTER),
        (" Online ", ev.CHANNEL_ONLINE),
        ("FAX", ev.CHANNEL_FAX),
    ],
)
def test_channel_names_in_chinese_and_english(text: str, channel: int) -> None:
    [row] = parse_csv(csv_text([{**BASE, "channel": text, "oral": "否"}]))
    assert request(row).channel == channel


@pytest.mark.parametrize(
    ("value", "source", "batch"),
    [
        ("", ev.SOURCE_DIRECT, ""),
        ("direct", ev.SOURCE_DIRECT, ""),
        ("直接", ev.SOURCE_DIRECT, ""),
        ("higher_level", ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT, "2026-5"),
        ("上级交办", ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT, "2026-5"),
    ],
)
def test_source(value: str, source: int, batch: str) -> None:
    """An empty source is the office's own intake, the common case."""
    [row] = parse_csv(csv_text([{**BASE, "source": value, "batch_id": batch}]))
    assert request(row).source == source


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("是", True),
        ("false", False),
        ("0", False),
        ("否", False),
        ("", False),
    ],
)
def test_yes_no_columns(value: str, expected: bool) -> None:
    [row] = parse_csv(csv_text([{**BASE, "oral": value, "escalated": value}]))
    req = request(row)
    assert (req.oral, req.escalated) == (expected, expected)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2026-03-02T09:30:00+08:00", datetime(2026, 3, 2, 1, 30, tzinfo=UTC)),
        ("2026-03-02T01:30:00Z", datetime(2026, 3, 2, 1, 30, tzinfo=UTC)),
        ("2026-03-02T03:30:00+02:00", datetime(2026, 3, 2, 1, 30, tzinfo=UTC)),
        ("2026-03-02T09:30:00", datetime(2026, 3, 2, 1, 30, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 1, 16, 0, tzinfo=UTC)),  # midnight in Beijing
    ],
)
def test_received_at_zone(value: str, utc: datetime) -> None:
    [row] = parse_csv(csv_text([{**BASE, "received_at": value}]))
    assert request(row).received_at.ToDatetime(tzinfo=UTC) == utc


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("received_at", "2026/03/02 9:30"),
        ("received_at", "yesterday"),
        ("people_count", "three"),
        ("people_count", "2.5"),
        ("people_count", "99999999999"),
        ("representatives", "-"),
        ("channel", "email"),
        ("source", "self"),
        ("oral", "maybe"),
        ("escalated", "y"),
    ],
)
def test_unreadable_value_rejects_that_row_only(column: str, value: str) -> None:
    text = csv_text([BASE, {**BASE, column: value}, BASE])
    first, bad, last = parse_csv(text)
    assert bad.line == 3
    assert bad.request is None
    assert bad.error is not None and bad.error.startswith(f"{column}: "), bad.error
    assert value.strip() in bad.error
    assert request(first) is not None and request(last) is not None
    assert (first.line, last.line) == (2, 4)


def test_time_error_says_iso_8601() -> None:
    [row] = parse_csv(csv_text([{**BASE, "received_at": "2026-13-01 09:00"}]))
    assert row.error is not None
    assert row.error.startswith("received_at: not an ISO 8601 time")


def test_every_unreadable_column_of_a_row_is_named() -> None:
    [row] = parse_csv(csv_text([{**BASE, "people_count": "x", "channel": "pigeon"}]))
    assert row.error is not None
    assert "people_count:" in row.error and "channel:" in row.error


def test_empty_values_are_left_for_intake_to_refuse() -> None:
    """Intake owns the rules on what is required; parsing only reads."""
    [row] = parse_csv(csv_text([{**BASE, "channel": "", "received_at": "", "category": ""}]))
    req = request(row)
    assert req.channel == ev.CHANNEL_UNSPECIFIED
    assert not req.HasField("received_at")
    assert req.category == ""


def test_unknown_header_column_stops_the_whole_import() -> None:
    header = [*BASE, "petitoner_phone", "notes"]
    text = csv_text([dict.fromkeys(header, "")], header=header)
    with pytest.raises(ValueError, match=r"^batch\.csv: unknown columns") as e:
        parse_csv(text)
    assert "petitoner_phone" in str(e.value) and "notes" in str(e.value)


def test_unknown_jsonl_key_stops_the_whole_import() -> None:
    text = "\n".join(json.dumps(x) for x in (BASE, {**BASE, "catgory": "x"}, BASE))
    with pytest.raises(ValueError, match="catgory") as e:
        parse_jsonl(text)
    assert "line 2" in str(e.value)


def test_duplicate_column_stops_the_whole_import() -> None:
    text = "channel,channel\nvisit,letter\n"
    with pytest.raises(ValueError, match="channel"):
        parse_csv(text)


def test_header_names_are_trimmed_and_case_blind() -> None:
    text = " Channel ,TOWNSHIP_ID\nvisit,t01\n"
    [row] = parse_csv(text)
    assert (request(row).channel, request(row).township_id) == (ev.CHANNEL_VISIT, "t01")


def test_unnamed_empty_column_is_harmless_but_unnamed_data_is_not() -> None:
    assert request(parse_csv("channel,\nvisit,\n")[0]).channel == ev.CHANNEL_VISIT
    with pytest.raises(ValueError, match="line 3"):
        parse_csv("channel,\nvisit,\nvisit,surprise\n")


def test_row_with_the_wrong_number_of_fields_is_rejected() -> None:
    text = "channel,township_id\nvisit,t01\nvisit,t01,extra\nvisit\n"
    ok, extra, short = parse_csv(text)
    assert ok.request is not None
    assert extra.error == "row has 3 fields; the header has 2"
    assert short.error == "row has 1 fields; the header has 2"


def test_district_from_the_caller_the_row_or_both_if_they_agree() -> None:
    rows = [
        {**BASE, "district_id": ""},
        {**BASE, "district_id": D},
        {**BASE, "district_id": "elsewhere"},
    ]
    caller_only, same, other = parse_csv(csv_text(rows))
    assert request(caller_only).district_id == D
    assert request(same).district_id == D
    assert other.error is not None and other.error.startswith("district_id:")
    assert "elsewhere" in other.error

    row_only, _, elsewhere = parse_csv(csv_text(rows), district_id=None)
    assert row_only.error is not None and row_only.error.startswith("district_id:")
    assert request(elsewhere).district_id == "elsewhere"


def test_request_id_is_the_file_hash_and_line() -> None:
    text = csv_text([BASE, {**BASE, "content": "另一件事"}])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    a, b = parse_csv(text)
    assert request(a).request_id == f"import:{digest}:2"
    assert request(b).request_id == f"import:{digest}:3"


def test_request_id_is_stable_for_the_same_file_and_new_for_another() -> None:
    text = csv_text([BASE, BASE])
    ids = [request(r).request_id for r in parse_csv(text)]
    assert ids == [request(r).request_id for r in parse_csv(text)]
    assert len(set(ids)) == 2  # identical rows are still two petitions
    edited = text.replace("王伟", "王伟伟", 1)
    assert not set(ids) & {request(r).request_id for r in parse_csv(edited)}


def test_request_id_hashes_the_bytes_including_a_bom() -> None:
    text = csv_text([BASE])
    with_bom = "\ufeff" + text
    [plain], [bom] = parse_csv(text), parse_csv(with_bom)
    assert request(bom).channel == ev.CHANNEL_VISIT  # the BOM is not part of the header
    digest = hashlib.sha256(with_bom.encode("utf-8")).hexdigest()[:16]
    assert request(bom).request_id == f"import:{digest}:2"
    assert request(plain).request_id != request(bom).request_id


def test_csv_line_numbers_count_blank_lines_and_multiline_values() -> None:
    text = (
        "channel,content\n"  # 1
        "visit,one\n"  # 2
        "\n"  # 3: skipped
        ',"two\n'  # 4: a value over two lines
        'lines"\n'  # 5
        ",\n"  # 6: an empty row a spreadsheet left
        "fax,three\r\n"  # 7
        "letter,four"  # 8, no final newline
    )
    rows = parse_csv(text)
    assert [r.line for r in rows] == [2, 4, 7, 8]
    assert request(rows[1]).content == "two\nlines"
    assert request(rows[2]).channel == ev.CHANNEL_FAX


def test_jsonl_line_numbers_count_blank_lines() -> None:
    line = json.dumps(BASE, ensure_ascii=False)
    text = f"\n{line}\n   \n{line}\r\nnot json\n[1, 2]\n{line}\n\n"
    rows = parse_jsonl(text)
    assert [r.line for r in rows] == [2, 4, 5, 6, 7]
    assert rows[2].error is not None and rows[2].error.startswith("not valid JSON")
    assert rows[3].error == "not a JSON object"
    assert [r.request is not None for r in rows] == [True, True, False, False, True]
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert request(rows[4]).request_id == f"import:{digest}:7"


def test_empty_files() -> None:
    assert parse_csv("") == []
    assert parse_csv(",".join(COLUMNS) + "\n") == []
    assert parse_jsonl("\n\n") == []


def test_generated_petitions_survive_the_round_trip_and_pass_intake_rules() -> None:
    doc = sample_district(seed=7, district_id=D)
    originals = list(petitions(doc, 200, seed=11, start=date(2026, 1, 5), end=date(2026, 3, 1)))
    text = csv_text([to_row(r) for r in originals], header=list(COLUMNS))
    rows = parse_csv(text, district_id=None)
    district = parse_district(doc)
    for original, row in zip(originals, rows, strict=True):
        req = request(row)
        assert req.request_id.startswith("import:")
        expected = pb.RegisterPetitionRequest()
        expected.CopyFrom(original)
        expected.request_id = req.request_id
        assert req == expected
        validate(req, district, datetime(2026, 3, 2, tzinfo=UTC))
    # the same rows as JSON lines give the same requests
    jsonl = "\n".join(json.dumps(to_row(r), ensure_ascii=False) for r in originals)
    again = parse_jsonl(jsonl, district_id=None)
    for a, b in zip(rows, again, strict=True):
        ra, rb = request(a), request(b)
        rb.request_id = ra.request_id
        assert ra == rb


def test_format_from_the_file_name() -> None:
    assert format_for("batch.CSV") == "csv"
    assert format_for("/tmp/x.jsonl") == "jsonl"
    assert format_for("x.ndjson") == "jsonl"
    with pytest.raises(ValueError, match="--format"):
        format_for("x.xlsx")


def test_report_in_chinese_and_english() -> None:
    report = ImportReport(created=30, already_present=2, rejected=[(5, "category: unknown")])
    zh = render_report(report)
    assert "共 33 行" in zh and "新登记 30 件" in zh and "第 5 行：category: unknown" in zh
    en = render_report(report, "en")
    assert "33 rows: 30 newly registered, 2 already registered, 1 rejected" in en
    assert "line 5: category: unknown" in en
    clean = render_report(ImportReport(created=3), "en")
    assert "Rejected" not in clean and "0 rejected" in clean


def test_a_row_is_a_request_or_an_error_never_both() -> None:
    with pytest.raises(ValueError):
        RowResult(1)
    with pytest.raises(ValueError):
        RowResult(1, request=pb.RegisterPetitionRequest(), error="x")
