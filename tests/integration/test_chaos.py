"""The fault harness's short run: every victim struck once under load, on a
stack of its own (scripts/chaos.sh starts Kafka, FerretDB, Prometheus and
the four services on other ports, so the suite's stack is left alone).

What it asserts is what the harness checks (scripts/chaos.py): every
acknowledged registration is exactly one case, routed exactly once, with its
register-and-route clock, counted once; the read models equal those of the
same petitions registered without faults; FerretDB down means UNAVAILABLE,
never INTERNAL; every poison record is dead-lettered with its reason while
the consumers go on; and no petitioner's name, ID number or phone is in any
topic, log, metric series or report. How fast victims are back is printed,
not asserted (scripts/chaos.sh prints it for longer runs).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def _chaos(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str, int]:
    """One run of the harness on its own ports: (figures, what it printed, exit code)."""
    out = tmp_path / "chaos.json"
    env = dict(os.environ)
    # a stack of its own, beside the suite's (whose ports end below base + 200)
    base = int(env.get("XINFANG_TEST_PORT_BASE", "29000")) + 300
    env["XINFANG_CHAOS_PORT_BASE"] = str(base)
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "chaos.sh"),
        *args,
        *("--json", str(out)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        text, _ = await asyncio.wait_for(proc.communicate(), 900)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    printed = text.decode("utf-8", "replace")
    print(printed)  # the figures, in the test's output
    assert out.exists(), printed[-3000:]
    return json.loads(out.read_text()), printed, proc.returncode or 0


def _nothing_lost(r: dict[str, Any], n: int, printed: str) -> None:
    """What every run must show: each acknowledged registration one case,
    routed once, listed once; the read models those of the run without
    faults; nothing private anywhere."""
    for row in r["rows"]:
        assert (row["lost"], row["duplicated"], row["dead_letters"]) == (0, 0, 0), row
    assert r["acknowledged"] == n
    assert r["problems"] == {}
    assert (r["received"], r["routed"], r["listed"]) == (n, n, n)
    assert r["copies_differ"] == 0
    assert "INTERNAL" not in r["answers"] and "UNKNOWN" not in r["answers"]
    assert r["reference_diffs"] == [] and r["reference_cases_differ"] == 0
    assert r["privacy"]["found"] == 0, r["privacy"]["findings"]
    assert r["failed"] == [], printed[-3000:]


async def test_every_victim_struck_once_under_load_costs_nothing(tmp_path: Path) -> None:
    r, printed, code = await _chaos(
        tmp_path,
        *("--n", "300", "--rate", "3.5", "--outage", "15"),
        *("--catch-up-s", "120", "--quiet-s", "240"),
    )
    _nothing_lost(r, 300, printed)
    struck = {row["victim"]: row for row in r["rows"]}
    assert set(struck) >= {
        "intake",
        "assignment",
        "supervision",
        "reporting",
        "kafka",
        "ferretdb",
        "ferretdb-down",
        "poison",
    }
    # the store away: intake said so, and never INTERNAL
    assert r["store_down_answers"].get("UNAVAILABLE", 0) > 0, r["store_down_answers"]
    assert "INTERNAL" not in r["store_down_answers"]
    # poison: dead-lettered with its reason by each consumer it concerns
    letters = r["poison_letters"]
    for kind in ("garbage bytes", "unknown district", "oversized value"):
        assert {x.split(":")[0] for x in letters[kind]} == {
            "assignment",
            "supervision",
            "reporting",
        }, (kind, letters)
    assert any(x.startswith("reporting: NotFound: case_id") for x in letters["unknown case"])
    assert r["privacy"]["searched"]["messages"] > 300
    assert r["privacy"]["searched"]["log lines"] > 0
    assert r["privacy"]["searched"]["metric series"] > 0
    assert r["privacy"]["searched"]["reports"] >= 6
    assert code == 0


async def test_two_replicas_of_every_service_one_killed_count_as_one(tmp_path: Path) -> None:
    """Two replicas of each service on one broker and one store (FerretDB,
    whose updates of one document are not atomic), the first of each
    SIGKILLed in turn under load: the counts and the read models are those
    of one replica without faults. Shared counters hold because each shard
    has one writer (core.shards); the relay and the scanner hold a lease."""
    r, printed, code = await _chaos(
        tmp_path,
        *("--n", "300", "--rate", "3.5", "--replicas", "2"),
        *("--kill", "intake,assignment,supervision,reporting"),
        *("--catch-up-s", "120", "--quiet-s", "240"),
    )
    assert {row["victim"] for row in r["rows"]} - {"before"} == {
        "intake",
        "assignment",
        "supervision",
        "reporting",
    }
    assert r["args"]["replicas"] == 2
    _nothing_lost(r, 300, printed)
    assert code == 0
