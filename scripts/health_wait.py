"""Waits for a restarted service and prints how long it took, for bench_restart.sh.

  health_wait.py health SERVICE --since EPOCH [--timeout S]
      seconds from EPOCH until SERVICE's gRPC health check answers SERVING
  health_wait.py processed SERVICE --since EPOCH [--timeout S]
      registers one petition through intake, then prints the seconds from
      EPOCH until SERVICE's consumer has finished an event after that
      registration (its xinfang_consumer_last_processed_timestamp_seconds
      gauge, read from its own /metrics on loopback)

Both poll on loopback only and give up (exit 1) after --timeout, so a
benchmark that uses them always ends. Settings (ports, keys) come from the
same XINFANG_* environment as the services.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from xinfang.cli import submit_all
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import connect
from xinfang.sample.generator import petitions, sample_district

# one district for every probe of a run: put once, re-putting is harmless
PROBE_DISTRICT = "bench-restart"


async def wait_serving(settings: Settings, service: str, deadline: float) -> None:
    """Poll the standard gRPC health service until the whole server is SERVING.
    A refused connection or a NOT_SERVING answer both mean "not yet"."""
    port = settings.ports(service)[0]
    request = health_pb2.HealthCheckRequest(service="")
    while time.monotonic() < deadline:
        async with grpc.aio.insecure_channel(f"{settings.grpc_host}:{port}") as ch:
            try:
                r = await health_pb2_grpc.HealthStub(ch).Check(request, timeout=1.0)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{service} not SERVING in time")


def last_processed(settings: Settings, service: str) -> float:
    """The service's last-processed gauge (0 when it has not processed yet or
    its metrics port is not open)."""
    port = settings.ports(service)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("xinfang_consumer_last_processed_timestamp_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def register_one(settings: Settings) -> float:
    """Register one fresh petition through intake; returns when intake took it."""
    district = sample_district(7, district_id=PROBE_DISTRICT)
    client = connect(settings.mongo_uri, "xinfang-bench-restart")
    try:
        await Directory(client[f"{settings.mongo_db_prefix}_directory"]).put(district)
    finally:
        await client.close()
    today = datetime.now(UTC).date()
    (req,) = petitions(
        district,
        1,
        seed=int(time.time()),
        start=today - timedelta(days=3),
        end=today - timedelta(days=1),
    )
    req.request_id = uuid.uuid4().hex
    await submit_all(f"{settings.grpc_host}:{settings.intake_grpc}", [req], 1, progress=False)
    return time.time()


async def wait_processed(settings: Settings, service: str, deadline: float) -> None:
    """Register one petition, then wait until the service's consumer has
    finished an event after it: the first moment the restarted consumer is
    processing again (after any replay of offsets it had not committed)."""
    await wait_serving(settings, "intake", deadline)
    registered = await register_one(settings)
    while time.monotonic() < deadline:
        if await asyncio.to_thread(last_processed, settings, service) >= registered:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{service} processed nothing new in time")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=("health", "processed"))
    p.add_argument("service", choices=("intake", "assignment", "supervision", "reporting"))
    p.add_argument("--since", type=float, required=True, help="Unix time of the restart")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this (seconds)")
    a = p.parse_args()
    settings = Settings()
    deadline = time.monotonic() + a.timeout
    wait = wait_serving if a.what == "health" else wait_processed
    try:
        asyncio.run(wait(settings, a.service, deadline))
    except TimeoutError as e:
        print(f"timeout: {e} ({a.timeout:g} s)", file=sys.stderr)
        raise SystemExit(1) from e
    print(f"{time.time() - a.since:.1f}")


if __name__ == "__main__":
    main()
