"""The CLI refuses in one line on stderr with exit code 2, never a traceback:
a bad period, a missing key or file, a file that is not JSON or not a valid
arrangement, a service that does not answer. These paths are refused before
anything is sent (or against a port nothing listens on)."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from xinfang.cli import _names, main, render_summary
from xinfang.cli_calendar import template
from xinfang.core.calendar import parse_arrangement
from xinfang.core.districts import parse_district
from xinfang.core.errors import InvalidArgument
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.sample.generator import sample_district

KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINFANG_AUTH_KEY", KEY)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("cmd", ["summary", "report"])
@pytest.mark.parametrize("period", ["2026-5", "2026Q3", "26", "2026-13"])
def test_a_bad_period_is_refused(capsys: pytest.CaptureFixture[str], cmd: str, period: str) -> None:
    line = _refused(capsys, [cmd, "demo-district", period])
    assert line == f"xinfang {cmd}: period: {period!r}: use YYYY, YYYY-Qn or YYYY-MM"


@pytest.mark.parametrize(
    "argv",
    [["summary", "demo-district", "2026"], ["report", "demo-district", "2026-Q3"],
     ["unrouted", "demo-district"], ["calendar", "reevaluate"]],
)  # fmt: skip
def test_a_missing_key_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.delenv("XINFANG_AUTH_KEY")
    line = _refused(capsys, argv)
    assert line.startswith(f"xinfang {argv[0]}")
    assert "XINFANG_AUTH_KEY is not set" in line


def test_a_malformed_key_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XINFANG_AUTH_KEY", "not base64!")
    line = _refused(capsys, ["summary", "demo-district", "2026"])
    assert line == "xinfang summary: XINFANG_AUTH_KEY: XINFANG_AUTH_KEY must be base64"


@pytest.mark.parametrize(
    "argv",
    [["district", "load", "{f}"], ["calendar", "load", "{f}"], ["import", "{f}"],
     ["import", "{f}", "--district", "d"]],
)  # fmt: skip
def test_a_missing_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    missing = str(tmp_path / "nope.json")
    line = _refused(capsys, [x.format(f=missing) for x in argv])
    assert line.endswith(f"{missing}: no such file")


@pytest.mark.parametrize("cmd", [["district", "load"], ["calendar", "load"]])
def test_a_file_that_is_not_json_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cmd: list[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"year": 2027,\n "source": }', encoding="utf-8")
    line = _refused(capsys, [*cmd, str(bad)])
    assert line == f"xinfang {' '.join(cmd)}: {bad}: not JSON (Expecting value, line 2 column 12)"


def test_a_wrong_arrangement_is_refused_before_it_is_stored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = template(2027)
    doc["source"] = "a notice"
    doc["holidays"] = [h for h in doc["holidays"] if h["name"] != "国庆节"]
    f = tmp_path / "2027.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    line = _refused(capsys, ["calendar", "load", str(f)])
    assert line.startswith("xinfang calendar load: holidays: 2027-10-01 (国庆节) is a statutory")


def test_the_template_holds_the_statutory_days_and_does_not_load_unnamed() -> None:
    doc = template(2027)
    with pytest.raises(InvalidArgument, match="source: is required"):
        parse_arrangement(doc)
    doc["source"] = "a notice"
    a = parse_arrangement(doc)
    assert {str(d) for d in a.rest_days} == {
        "2027-01-01", "2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08", "2027-04-05",
        "2027-05-01", "2027-05-02", "2027-06-09", "2027-09-15", "2027-10-01", "2027-10-02",
        "2027-10-03",
    }  # fmt: skip
    assert a.working_days == frozenset()


def test_a_year_that_is_not_a_year_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert _refused(capsys, ["calendar", "template", "27"]) == (
        "xinfang calendar template: year: '27' is not a year (YYYY)"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_service_that_does_not_answer_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XINFANG_GRPC_HOST", "127.0.0.1")
    monkeypatch.setenv("XINFANG_REPORTING_GRPC", str(_closed_port()))
    line = _refused(capsys, ["report", "demo-district", "2026"])
    assert line == (
        "xinfang report: a service does not answer: is it up? (scripts/services.sh status) "
        "(UNAVAILABLE)"
    )


def test_the_summary_names_townships_units_and_categories() -> None:
    d = parse_district(sample_district())
    township, category = next(iter(d.townships)), next(iter(d.categories))
    unit = next(iter(d.units))
    s = rpb.DistrictSummary(
        district_id=d.district_id, period="2026", received=3,
        by_township={township: 3}, by_category={category: 2}, by_unit={unit: 1},
    )  # fmt: skip
    names = [(township, d.townships[township]), (category, d.categories[category]),
             (unit, d.units[unit].name)]  # fmt: skip
    for lang in ("zh", "en"):
        out = render_summary(s, _names(d), lang)
        assert d.name in out
        for code, name in names:
            assert f"    {name}: " in out
            assert f"    {code}: " not in out
