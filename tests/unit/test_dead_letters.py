"""Reading dead letters: records, replay markers, filters, and the CLI's refusals."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xinfang.case.v1 import events_pb2 as ev
from xinfang.cli import main
from xinfang.core.codec import DecodeFailed, encode_event, new_event
from xinfang.core.deadletters import (
    MARKER,
    DeadLetter,
    Filter,
    ReplayMark,
    fold,
    parse_id,
    parse_record,
    parse_since,
    plan_replay,
)
from xinfang.core.errors import NotFound
from xinfang.core.kafka import dead_letter_headers

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _event(case_id: str, district_id: str) -> ev.CaseEvent:
    return new_event(
        case_id=case_id,
        district_id=district_id,
        producer="test",
        case_version=1,
        registered=ev.CaseRegistered(category="land", township_id="t01", people_count=1),
    )


def letter(
    offset: int,
    service: str = "reporting",
    case_id: str = "c1",
    district_id: str = "d1",
    minutes: int = 0,
    event: ev.CaseEvent | None = None,
    error: BaseException | None = None,
) -> DeadLetter:
    e = event or _event(case_id, district_id)
    rec = parse_record(
        0,
        offset,
        int((T0 + timedelta(minutes=minutes)).timestamp() * 1000),
        case_id.encode(),
        encode_event(e),
        dead_letter_headers(service, error or NotFound("district_id: unknown"), "t", 1, 9, e),
    )
    assert isinstance(rec, DeadLetter)
    return rec


def mark(of: str, to: str = "1:77") -> ReplayMark:
    rec = parse_record(
        0, 999, 0, of.encode(), b"", [(MARKER, b"1"), ("x-replay-of", of.encode()),
                                       ("x-replayed-to", to.encode())]
    )  # fmt: skip
    assert isinstance(rec, ReplayMark)
    return rec


def test_a_record_becomes_a_dead_letter_with_its_headers() -> None:
    dl = letter(5, service="supervision", case_id="c9", district_id="d2", minutes=3)
    assert dl.id == "0:5"
    assert dl.at == T0 + timedelta(minutes=3)
    assert (dl.service, dl.case_id, dl.district_id, dl.payload) == (
        "supervision",
        "c9",
        "d2",
        "registered",
    )
    assert dl.error_type == "NotFound" and dl.error == "district_id: unknown"
    assert dl.source == "t/1:9"
    assert dl.state == "open"


def test_the_summary_never_carries_the_value() -> None:
    e = new_event(
        case_id="c1",
        district_id="d1",
        producer="test",
        case_version=1,
        registered=ev.CaseRegistered(category="land", content="宅基地纠纷具体内容"),
    )
    s = letter(1, event=e).summary()
    assert "宅基地" not in repr(s)
    assert s["event_id"] == e.event_id and s["payload"] == "registered"


def test_undecodable_bytes_have_no_event_and_no_district() -> None:
    rec = parse_record(
        0, 3, 0, b"k", b"\xff", dead_letter_headers("reporting", DecodeFailed("x"), "t", 0, 1)
    )
    assert isinstance(rec, DeadLetter)
    assert (rec.event_id, rec.district_id, rec.case_id) == ("", "", "")
    assert rec.summary()["district_id"] is None


def test_markers_set_the_state_and_are_not_listed() -> None:
    letters = fold([letter(1), letter(2), mark("0:1"), letter(3), mark("0:1", "1:80")])
    assert [d.id for d in letters] == ["0:1", "0:2", "0:3"]
    assert [d.state for d in letters] == ["replayed", "open", "open"]
    assert [r.to for r in letters[0].replays] == ["1:77", "1:80"]


def test_district_filter_hides_other_districts_and_undecodable_bytes() -> None:
    garbage = parse_record(
        0, 9, 0, None, b"\xff", dead_letter_headers("reporting", DecodeFailed("x"), "t", 0, 1)
    )
    assert isinstance(garbage, DeadLetter)
    letters = [letter(1, district_id="d1"), letter(2, district_id="d2"), garbage]
    mine = Filter(districts=frozenset({"d1"}))
    assert [d.id for d in letters if mine.matches(d)] == ["0:1"]
    city = Filter(districts=None)
    assert [d.id for d in letters if city.matches(d)] == ["0:1", "0:2", "0:9"]


def test_filters_combine() -> None:
    letters = [
        letter(1, service="reporting", case_id="c1", minutes=0),
        letter(2, service="assignment", case_id="c1", minutes=10),
        letter(3, service="assignment", case_id="c2", minutes=20, error=ValueError("x")),
    ]
    d1 = frozenset({"d1"})

    def ids(f: Filter) -> list[str]:
        return [d.id for d in letters if f.matches(d)]

    assert ids(Filter(d1, service="assignment")) == ["0:2", "0:3"]
    assert ids(Filter(d1, case_id="c1")) == ["0:1", "0:2"]
    assert ids(Filter(d1, error_type="ValueError")) == ["0:3"]
    assert ids(Filter(d1, since=T0 + timedelta(minutes=10))) == ["0:2", "0:3"]
    assert ids(Filter(d1, service="assignment", case_id="c1")) == ["0:2"]
    assert ids(Filter(d1, state="replayed")) == []
    assert not Filter(d1).narrowed
    assert Filter(d1, case_id="c1").narrowed


def test_since_takes_ages_dates_and_times() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("7d", now) == now - timedelta(days=7)
    # a date or time without a zone is Shanghai's (UTC+8)
    assert parse_since("2026-12-01", now) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert parse_since("2026-12-01T09:00", now) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert parse_since("2026-12-01T09:00+00:00", now) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", now)


def test_ids_are_partition_and_offset() -> None:
    assert parse_id(" 0:042 ") == "0:42"
    for bad in ("42", "0-42", "a:1", ""):
        with pytest.raises(ValueError, match="--id"):
            parse_id(bad)


def test_an_event_dead_lettered_by_three_consumers_is_replayed_once() -> None:
    e = _event("c1", "d1")
    letters = [letter(i, service=s, event=e) for i, s in enumerate(("assignment", "supervision",
                                                                      "reporting"))]  # fmt: skip
    other = letter(7, case_id="c2")
    garbage = parse_record(
        0, 9, 0, None, b"\xff", dead_letter_headers("reporting", DecodeFailed("x"), "t", 0, 1)
    )
    assert isinstance(garbage, DeadLetter)
    plan, skipped = plan_replay([*letters, other, garbage])
    assert [(p.event_id, p.dead_letters) for p in plan] == [
        (e.event_id, ("0:0", "0:1", "0:2")),
        (other.event_id, ("0:7",)),
    ]
    assert skipped == [garbage]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["list"], "name the district"),
        (["replay", "--case", "c1"], "name the district"),
        (["list", "--district", "d1", "--all-districts"], "not both"),
        (["replay", "--district", "d1"], "--all"),
        (["replay", "--district", "d1", "--id", "0:1", "--all"], "--id names"),
        (["replay", "--district", "d1", "--id", "x"], "is not a dead letter id"),
        (["list", "--district", "d1", "--since", "soon"], "--since"),
    ],
)
def test_cli_refuses_in_one_line_with_exit_code_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_says_in_one_line_when_kafka_is_away(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINFANG_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    assert main(["dead-letters", "list", "--district", "d1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dead-letters list: Kafka at 127.0.0.1:9:")
    assert err.count("\n") == 1


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> list[DeadLetter]:
    """The CLI over a dead-letter topic held in memory: d1 has an open and a
    replayed letter, d2 one open letter; replays are recorded, not sent."""
    letters = fold(
        [
            letter(1, service="reporting", case_id="c1", district_id="d1"),
            letter(2, service="assignment", case_id="c2", district_id="d1"),
            mark("0:2"),
            letter(3, service="reporting", case_id="c3", district_id="d2"),
        ]
    )
    sent: list[DeadLetter] = []

    async def read(settings: object) -> list[DeadLetter]:
        return letters

    async def parked(settings: object, shown: object) -> dict[str, int]:
        return {"0:1": 2}

    async def replay(settings: object, chosen: list[DeadLetter]) -> list[Any]:
        sent.extend(chosen)
        plan, _ = plan_replay(chosen)
        return [dataclasses.replace(p, to="1:500") for p in plan]

    monkeypatch.setattr("xinfang.core.deadletters.read_dead_letters", read)
    monkeypatch.setattr("xinfang.core.deadletters.parked_behind", parked)
    monkeypatch.setattr("xinfang.core.deadletters.replay", replay)
    return sent


def test_list_shows_one_districts_letters_with_state_and_parked(
    topic: list[DeadLetter], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", "list", "--district", "d1", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["state"], r["parked"]) for r in rows] == [
        ("0:1", "open", 2),
        ("0:2", "replayed", None),
    ]
    assert main(["dead-letters", "list", "--district", "d1", "--state", "open"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["ID", "STATE"]
    assert [x.split()[0] for x in out[1:-1]] == ["0:1"]
    assert out[-1] == "1 shown of 1 matching, 1 open"
    assert main(["dead-letters", "list", "--all-districts", "--json", "--limit", "1"]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["0:3"]


def test_replay_by_filter_takes_only_open_letters_of_the_district(
    topic: list[DeadLetter], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", "replay", "--district", "d1", "--all"]) == 0
    assert [d.id for d in topic] == ["0:1"]
    out = capsys.readouterr().out
    assert "replayed as xinfang.case-events.v1/1:500" in out
    assert out.splitlines()[-1] == "replayed 1 events (1 dead letters)"


def test_replay_by_id_takes_replayed_letters_too_but_not_another_districts(
    topic: list[DeadLetter], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dead-letters", "replay", "--district", "d1", "--id", "0:2", "0:1"]) == 0
    assert [d.id for d in topic] == ["0:2", "0:1"]
    topic.clear()
    assert main(["dead-letters", "replay", "--district", "d1", "--id", "0:1", "0:3"]) == 2
    assert "no dead letter 0:3 of d1" in capsys.readouterr().err
    assert topic == []  # all or nothing


def test_dry_run_sends_nothing(topic: list[DeadLetter], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dead-letters", "replay", "--district", "d1", "--case", "c1", "--dry-run"]) == 0
    assert topic == []
    assert capsys.readouterr().out.splitlines()[-1] == "would replay 1 events (1 dead letters)"
