"""Hostile input, a fixed-seed 500 requests over every gRPC method, on the
running services (``scripts/fuzz.sh`` runs 10,000 on a stack of its own).

Holds the answers to the rules of ``tests/fuzz/campaign.py``: no INTERNAL
or UNKNOWN, every refusal names a field of its request, no process crashed,
and no refused request stored or published anything.
"""

from __future__ import annotations

import glob
import os
import time

import pytest
from pymongo import AsyncMongoClient

from tests.fuzz.campaign import Campaign
from tests.fuzz.strategies import generate, methods, shots
from tests.fuzz.world import build_world
from xinfang.core.config import Settings
from xinfang.core.mongo import Doc

pytestmark = pytest.mark.integration

SEED = 20261202
N = 500


async def test_hostile_input_fixed_seed(settings: Settings, mongo: AsyncMongoClient[Doc]) -> None:
    world = await build_world(settings, mongo, cases_per_district=3)
    all_methods = methods()
    drawn = generate(shots(all_methods, world.pools(), int(time.time())), N, SEED)
    home = os.environ.get("XINFANG_HOME", "")
    pid_files = sorted(glob.glob(f"{home}/data/svc-*.pid")) if home else []
    campaign = Campaign(settings, mongo, pid_files=pid_files)
    try:
        report = await campaign.run(drawn, round_size=25)
    finally:
        await campaign.close()
    print("\n" + report.table() + "\n" + report.summary())
    assert report.total == N
    assert set(report.by_method) == {m.label for m in all_methods}, "every method fuzzed"
    assert not report.failures, report.summary()
    assert not report.crashed
    assert report.internal_on_servers == 0
    # the store check is only sound in rounds without an accepted command:
    # most refusals must have been checked, or the check proved nothing
    assert report.refusals_checked >= report.refusals // 2, report.summary()
