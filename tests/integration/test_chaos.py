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


async def test_every_victim_struck_once_under_load_costs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    env = dict(os.environ)
    # a stack of its own, beside the suite's (whose ports end below base + 200)
    base = int(env.get("XINFANG_TEST_PORT_BASE", "29000")) + 300
    env["XINFANG_CHAOS_PORT_BASE"] = str(base)
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / "scripts" / "chaos.sh"),
        *("--n", "300", "--rate", "3.5", "--outage", "15", "--json", str(out)),
        *("--catch-up-s", "120", "--quiet-s", "240"),
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
    r: dict[str, Any] = json.loads(out.read_text())

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
    for row in r["rows"]:
        assert (row["lost"], row["duplicated"], row["dead_letters"]) == (0, 0, 0), row
    assert r["acknowledged"] == 300
    assert r["problems"] == {}
    assert (r["received"], r["routed"], r["listed"]) == (300, 300, 300)
    assert r["copies_differ"] == 0
    # the store away: intake said so, and never INTERNAL
    assert "INTERNAL" not in r["answers"] and "UNKNOWN" not in r["answers"]
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
    assert r["reference_diffs"] == [] and r["reference_cases_differ"] == 0
    assert r["privacy"]["found"] == 0, r["privacy"]["findings"]
    assert r["privacy"]["searched"]["messages"] > 300
    assert r["privacy"]["searched"]["log lines"] > 0
    assert r["privacy"]["searched"]["metric series"] > 0
    assert r["privacy"]["searched"]["reports"] >= 6
    assert r["failed"] == [], printed[-3000:]
    assert proc.returncode == 0
