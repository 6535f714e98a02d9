"""A consuming service killed with SIGKILL and started again by scripts/services.sh.

What a crash must not cost: the restarted service answers health, queries
and commands, and the events registered while it was down are processed
after it is back. How fast it is back is measured by scripts/bench_restart.sh;
the timeouts here are only bounds, so a slow machine does not fail the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.core.config import Settings
from xinfang.intake.v1 import intake_pb2_grpc as igrpc

from .conftest import eventually
from .test_lifecycle_e2e import Case, register, unit_actor
from .test_pipeline import petition

pytestmark = pytest.mark.integration

SERVICES_SH = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"


async def services_sh(*args: str, bound_s: float = 180.0) -> str:
    """Run scripts/services.sh with the test run's environment (its stack)."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(SERVICES_SH),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), bound_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode()
    assert proc.returncode == 0, f"services.sh {' '.join(args)} failed:\n{text}"
    return text


async def service_pid(service: str) -> int:
    """The pid services.sh started the service as (its `status` line)."""
    for line in (await services_sh("status")).splitlines():
        name, state, *rest = line.split()
        if name == service:
            assert state == "up", line
            return int(rest[0].strip("()"))
    raise AssertionError(f"services.sh status does not list {service}")


def gone(pid: int) -> bool:
    """The process no longer runs (no /proc entry, or a zombie not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def sigkill(pid: int, wait_s: float = 10.0) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while not gone(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        await asyncio.sleep(0.1)


async def health(settings: Settings, service: str) -> int:
    """The server-wide health status, or UNKNOWN while nothing answers."""
    port = settings.ports(service)[0]
    async with grpc.aio.insecure_channel(f"{settings.grpc_host}:{port}") as ch:
        try:
            r = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.aio.AioRpcError:
            return int(health_pb2.HealthCheckResponse.UNKNOWN)
        return int(r.status)


async def view_or_none(case: Case) -> apb.CaseView | None:
    try:
        return await case.view()
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
            return None
        raise


async def test_assignment_is_back_after_sigkill(
    settings: Settings,
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
    assignment_channel: grpc.aio.Channel,
) -> None:
    # a case routed before the crash, to command afterwards
    before = await register(district, intake_channel, assignment_channel, seed=11)
    pid = await service_pid("assignment")
    try:
        await sigkill(pid)
        assert await health(settings, "assignment") == health_pb2.HealthCheckResponse.UNKNOWN

        # registered while assignment is down: its event waits in Kafka
        resp = await igrpc.IntakeServiceStub(intake_channel).RegisterPetition(
            petition(district, seed=12)
        )
        assert resp.created
        during = Case(before.stub, district["district_id"], resp.case_id)

        await services_sh("up")  # starts what is down, i.e. assignment
        assert await service_pid("assignment") != pid
        await eventually(
            lambda: health(settings, "assignment"),
            lambda s: s == health_pb2.HealthCheckResponse.SERVING,
            wait_s=60,
        )

        # a query and a command on the restarted service
        v = await before.view()
        assert v.status == "routed"
        accepted = await before.stub.AcceptCase(
            apb.AcceptCaseRequest(ctx=before.ctx(unit_actor(v.unit_id)))
        )
        assert accepted.status == "accepted"

        # the event registered during the outage is consumed after the restart
        routed = await eventually(
            lambda: view_or_none(during),
            lambda v: v is not None and v.status == "routed",
            wait_s=120,
        )
        assert routed is not None and routed.unit_id
    finally:
        # the tests after this one expect all four services running
        await services_sh("up")
        await eventually(
            lambda: health(settings, "assignment"),
            lambda s: s == health_pb2.HealthCheckResponse.SERVING,
            wait_s=60,
        )
