"""Re-sealing after an identity-key rotation, on a running stack: figures.

Registers ``--n`` petitions of a fresh district under the ring's current
version, adds the next version to the stack's ring file
(``XINFANG_IDENTITY_KEYS_FILE``, which intake reads again while it runs), and
prints how soon intake sealed with it, how fast ``xinfang keys reseal`` went
while ``--load`` registrations stayed in flight, whether any registration
failed meanwhile, and what a second (idempotent) run costs.

    scripts/bench_reseal.sh [--n 2000] [--load 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from xinfang.cli import _load_district, submit_all
from xinfang.core.auth import tool_channel
from xinfang.core.config import Settings
from xinfang.core.mongo import connect
from xinfang.intake.keys import reseal
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.sample.generator import petitions, sample_district


def add_version(path: Path) -> int:
    """The next key version, added to the ring file in one rename (a reader
    never sees half a file); the sealing version follows the newest."""
    doc = json.loads(path.read_text())
    keys = doc.setdefault("keys", {})
    version = max([1, *map(int, keys)]) + 1
    keys[str(version)] = base64.b64encode(os.urandom(32)).decode()
    doc.pop("seal", None)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.chmod(0o600)
    tmp.replace(path)
    return version


async def main(n: int, load: int) -> None:
    settings = Settings()
    assert settings.identity_keys_file, "run through scripts/bench_reseal.sh (dev_keys)"
    did = f"bench-keys-{uuid.uuid4().hex[:6]}"
    district = sample_district(seed=7, district_id=did)
    await _load_district(settings, district)
    # received up to yesterday: a time later today would be in the future
    today = datetime.now(UTC).date() - timedelta(days=1)
    reqs = list(petitions(district, n, seed=11, start=today.replace(month=1, day=1), end=today))
    for r in reqs:
        r.request_id = uuid.uuid4().hex
    target = f"{settings.grpc_host}:{settings.intake_grpc}"
    t0 = time.perf_counter()
    created, _ = await submit_all(target, reqs, progress=False)
    reg_s = time.perf_counter() - t0
    print(f"registered {created} petitions in {reg_s:.1f} s ({created / reg_s:.0f}/s)")

    client = connect(settings.mongo_uri, "bench-reseal")
    cases = client[settings.db_name("intake")]["cases"]
    extra = list(petitions(district, 20_000, seed=12, start=today, end=today))
    stop = asyncio.Event()
    done: list[str] = []
    failed: list[str] = []

    async def worker(stub: igrpc.IntakeServiceStub) -> None:
        while not stop.is_set() and extra:
            req = extra.pop()
            req.request_id = uuid.uuid4().hex
            try:
                resp = await stub.RegisterPetition(req, timeout=30)
                done.append(resp.case_id)
            except grpc.aio.AioRpcError as e:
                failed.append(e.code().name)

    async with tool_channel(target) as ch:
        stub = igrpc.IntakeServiceStub(ch)
        loader = asyncio.gather(*(worker(stub) for _ in range(load)))
        await asyncio.sleep(1.0)
        version = add_version(Path(settings.identity_keys_file))
        t_rot = time.perf_counter()
        seen = len(done)
        while True:
            fresh = done[seen:]
            docs = [await cases.find_one({"_id": c}, {"identity.kv": 1}) for c in fresh[-3:]]
            if any(d and d["identity"]["kv"] == version for d in docs):
                break
            if time.perf_counter() - t_rot > 120:
                raise SystemExit("intake did not seal with the new version within 120 s")
            await asyncio.sleep(0.2)
        picked = time.perf_counter() - t_rot
        print(f"rotated to version {version}: intake sealed with it {picked:.1f} s "
              "after the ring file changed (no restart)")  # fmt: skip
        during = len(done)
        res = await reseal(settings, frozenset({did}), progress=False)
        in_reseal = len(done) - during
        stop.set()
        await loader
    print(f"reseal under load: {res.checked} checked, {res.resealed} re-sealed in "
          f"{res.seconds:.1f} s ({res.resealed / res.seconds:.0f}/s), {res.left} left; "
          f"{in_reseal} registrations meanwhile ({load} in flight)")  # fmt: skip
    again = await reseal(settings, frozenset({did}), progress=False)
    print(f"second run: {again.checked} checked, {again.resealed} re-sealed in "
          f"{again.seconds:.1f} s")  # fmt: skip
    print(f"registrations failed during the rotation and reseal: {len(failed)} "
          f"of {len(done) + len(failed)}")  # fmt: skip
    await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--load", type=int, default=4, help="registrations in flight meanwhile")
    a = p.parse_args()
    asyncio.run(main(a.n, a.load))
