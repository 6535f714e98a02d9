"""A year of case histories as the file ``xinfang import`` takes, and the
year's figures computed from that file alone (for the tests of history
import, unit and integration).

The expected figures are counted here from the file's own times and values,
not through reporting's projections: a petition in the year it was received,
a step in the year it happened (Beijing time); a reply on time when it came
less than 60 days (plus the extension) after acceptance. Reply delays are
drawn far from that boundary, so no calendar is needed to tell.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from xinfang.core.calendar import SHANGHAI
from xinfang.intake.bulk import to_row
from xinfang.sample.generator import petitions

# days from acceptance to reply: clearly on time or clearly late, with or
# without a 30-day extension
REPLY_AFTER_DAYS = (8, 20, 35, 50, 110, 130)
RATINGS = ("satisfied", "basically", "dissatisfied")
YEAR_FIELDS = (
    "received",
    "people",
    "by_channel",
    "by_category",
    "by_township",
    "group",
    "group_people",
    "escalated",
    "higher_level",
    "routed",
    "by_decision",
    "by_unit",
    "accepted",
    "replied",
    "resolved",
    "replied_on_time",
    "rated",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "reviews",
    "backlog_start",
    "backlog_end",
)


def _iso(at: datetime) -> str:
    """As an office writes it: Beijing time without a zone."""
    return at.astimezone(SHANGHAI).replace(tzinfo=None).isoformat(timespec="minutes")


def history_lines(
    district: dict[str, Any], year: int, n: int, *, seed: int = 11, prefix: str = "old-xf"
) -> list[dict[str, Any]]:
    """``n`` cases received in ``year``, each carried through routing,
    notice, acceptance, perhaps an extension, the reply, and perhaps a
    rating and a review, at times drawn from ``seed``."""
    rng = random.Random(seed)
    units = [u["id"] for u in district["units"] if u.get("kind") in ("township", "department")]
    out: list[dict[str, Any]] = []
    reqs = petitions(district, n, seed=seed, start=date(year, 1, 1), end=date(year, 12, 31))
    for i, req in enumerate(reqs):
        received = req.received_at.ToDatetime(tzinfo=SHANGHAI)
        routed = received + timedelta(hours=rng.randint(2, 72))
        accepted = routed + timedelta(hours=rng.randint(1, 96))
        decision = rng.choice(("accept", "forward"))
        steps: list[dict[str, Any]] = [
            {"step": "route", "at": _iso(routed), "decision": decision,
             "unit_id": rng.choice(units), "reason": "按原系统记录"},
            {"step": "notice", "at": _iso(routed + timedelta(minutes=30))},
            {"step": "accept", "at": _iso(accepted)},
        ]  # fmt: skip
        if rng.random() < 0.25:
            steps.append({"step": "extend", "at": _iso(accepted + timedelta(days=5)), "days": 30,
                          "approver_id": "l-d1", "reason": "情况复杂"})  # fmt: skip
        replied = accepted + timedelta(days=rng.choice(REPLY_AFTER_DAYS), hours=rng.randint(0, 6))
        steps.append({"step": "reply", "at": _iso(replied), "resolved": rng.random() < 0.7})
        if rng.random() < 0.8:
            steps.append({"step": "rate", "at": _iso(replied + timedelta(days=2)),
                          "rating": rng.choice(RATINGS)})  # fmt: skip
        if rng.random() < 0.2:
            steps.append({"step": "review", "at": _iso(replied + timedelta(days=6))})
            steps.append({"step": "decide_review", "at": _iso(replied + timedelta(days=25)),
                          "upheld": rng.random() < 0.8})  # fmt: skip
        row = {k: v for k, v in to_row(req).items() if v != ""}
        out.append({"source_id": f"{prefix}:{year}-{i:05d}", "registration": row, "steps": steps})
    return out


def write_file(path: str, lines: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def expected_year(lines: list[dict[str, Any]], year: int) -> dict[str, Any]:
    """The year's figures (``YEAR_FIELDS``) from the file alone."""
    c: Counter[str] = Counter()
    maps: dict[str, Counter[str]] = {
        k: Counter() for k in ("by_channel", "by_category", "by_township", "by_decision", "by_unit")
    }
    backlog_end = 0
    for obj in lines:
        r = obj["registration"]
        received = _at(r["received_at"])
        people = int(r.get("people_count") or 1)
        if received.year <= year:
            backlog_end += 1
        if received.year == year:
            c["received"] += 1
            c["people"] += people
            maps["by_channel"][r["channel"]] += 1
            maps["by_category"][r["category"]] += 1
            maps["by_township"][r["township_id"]] += 1
            if people >= 5:
                c["group"] += 1
                c["group_people"] += people
            c["escalated"] += int(r.get("escalated") == "true")
            c["higher_level"] += int(r.get("source") == "higher_level")
        accepted: datetime | None = None
        extension = 0
        for s in obj["steps"]:
            at = _at(s["at"])
            kind = s["step"]
            if kind == "accept":
                accepted = at
            elif kind == "extend":
                extension += s["days"]
            elif kind == "reply" and at.year <= year:
                backlog_end -= 1
            if at.year != year:
                continue
            if kind == "route":
                c["routed"] += 1
                maps["by_decision"][s["decision"]] += 1
                maps["by_unit"][s["unit_id"]] += 1
            elif kind == "accept":
                c["accepted"] += 1
            elif kind == "reply":
                assert accepted is not None
                c["replied"] += 1
                c["resolved"] += int(s["resolved"])
                c["replied_on_time"] += int(at - accepted < timedelta(days=60 + extension))
            elif kind == "rate":
                c["rated"] += 1
                field = {"basically": "basically_satisfied"}.get(s["rating"], s["rating"])
                c[field] += 1
            elif kind == "review":
                c["reviews"] += 1
    out: dict[str, Any] = {k: c.get(k, 0) for k in YEAR_FIELDS if k not in maps}
    out.update({k: dict(v) for k, v in maps.items()})
    out["backlog_start"] = 0
    out["backlog_end"] = backlog_end
    return out
