"""Rotating the identity key under load, without restarting intake.

scripts/env.sh's dev_keys gives the stack's intake a key ring file
(XINFANG_IDENTITY_KEYS_FILE, empty at first: XINFANG_IDENTITY_KEY is version
1). This test adds the next version to that file while petitions keep being
registered, waits for intake to seal with it (it reads the file again on
use), runs `xinfang keys reseal` while registrations continue, and reveals
identities registered before and after the rotation. The ring is left
rotated, as a real rotation would leave it; a later run adds the next version.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.config import Settings
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc

from .test_pipeline import petition

# the ring file gets its next version the way the benchmark adds one
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_reseal import add_version

pytestmark = pytest.mark.integration

OFFICE = ev.Actor(user_id="office-keys", role="office")
CLI = [sys.executable, "-m", "xinfang.cli"]


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_rotation_under_load_then_reseal_and_reveal(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
) -> None:
    assert settings.identity_keys_file, "dev_keys exports XINFANG_IDENTITY_KEYS_FILE"
    ring_file = Path(settings.identity_keys_file)
    did = district["district_id"]
    stub = igrpc.IntakeServiceStub(intake_channel)
    cases = mongo[settings.db_name("intake")]["cases"]
    registered: dict[str, ipb.RegisterPetitionRequest] = {}
    failures: list[str] = []
    seed = iter(range(1000, 100_000))

    async def register_one() -> str:
        req = petition(district, seed=next(seed))
        try:
            resp = await stub.RegisterPetition(req)
        except grpc.aio.AioRpcError as e:  # would be downtime
            failures.append(f"{e.code().name}: {e.details()}")
            return ""
        registered[resp.case_id] = req
        return str(resp.case_id)

    async def kv(case_id: str) -> int:
        doc = await cases.find_one({"_id": case_id}, {"identity.kv": 1})
        assert doc is not None
        return int(doc["identity"]["kv"])

    before = [await register_one() for _ in range(12)]
    old_version = await kv(before[0])
    assert {await kv(c) for c in before} == {old_version}

    stop = asyncio.Event()

    async def load() -> None:  # four registrations in flight, all the time
        async def worker() -> None:
            while not stop.is_set():
                await register_one()

        await asyncio.gather(*(worker() for _ in range(4)))

    loader = asyncio.create_task(load())
    try:
        await asyncio.sleep(1.0)
        new_version = add_version(ring_file)
        assert new_version == old_version + 1
        # intake reads the ring again on use, every XINFANG_IDENTITY_KEYS_RELOAD_SECONDS
        deadline = time.monotonic() + 60
        while True:
            probe = await register_one()
            if probe and await kv(probe) == new_version:
                break
            assert time.monotonic() < deadline, "intake did not seal with the new key version"
            await asyncio.sleep(0.5)
        # re-sealed while intake keeps registering
        rc, out, err = await run_cli("keys", "reseal", "--district", did, "--lang", "en")
        assert rc == 0, err
        assert f"sealing version {new_version}" in out
        assert ", 0 still on older versions" in out
    finally:
        stop.set()
        await loader
    assert failures == [], failures[:5]
    assert len(registered) > len(before) + 10

    versions = {c: await kv(c) for c in registered}
    assert set(versions.values()) == {new_version}, "every identity is on the new version"
    # a second run finds nothing to do
    rc, again, again_err = await run_cli("keys", "reseal", "--district", did, "--lang", "en")
    assert rc == 0 and f"{len(registered)} identities checked, 0 re-sealed" in again

    # old and new identities reveal (sealed first with the old key, and from the start
    # with the new one)
    after = [c for c in registered if c not in before]
    for case_id in [*before[:3], *after[-3:]]:
        req = registered[case_id]
        shown = await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(
                district_id=did, case_id=case_id, actor=OFFICE, reason="check after rotation"
            )
        )
        assert shown.petitioner.name == req.petitioner.name
        assert shown.petitioner.id_number == req.petitioner.id_number.upper()
        assert shown.petitioner.phone == req.petitioner.phone.strip()
    # the walk's output names counts and versions, never a person
    for req in registered.values():
        assert req.petitioner.name not in out + err + again + again_err
