"""Every gRPC request is authenticated by its bearer token, on the running services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.core.auth import Authenticator, Caller, bearer
from xinfang.core.config import Settings
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc

from .test_pipeline import petition

pytestmark = pytest.mark.integration


@pytest.fixture
async def raw(settings: Settings) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    """Plain channels: the test sets each request's token itself."""
    chans = {
        s: grpc.aio.insecure_channel(f"{settings.grpc_host}:{settings.ports(s)[0]}")
        for s in ("intake", "assignment", "reporting")
    }
    yield chans
    for ch in chans.values():
        await ch.close()


def token(
    settings: Settings, role: str, districts: set[str], user: str = "u1", unit: str = ""
) -> Any:
    return bearer(
        Authenticator(settings.auth_key_bytes).issue(Caller(user, role, unit, frozenset(districts)))
    )


async def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value.code(), e.value.details() or ""


async def test_requests_without_a_valid_token_are_unauthenticated(
    settings: Settings, district: dict[str, Any], raw: dict[str, grpc.aio.Channel]
) -> None:
    did = district["district_id"]
    intake = igrpc.IntakeServiceStub(raw["intake"])
    reporting = rgrpc.ReportingServiceStub(raw["reporting"])
    code, msg = await code_of(intake.RegisterPetition(petition(district)))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "authorization" in msg
    forged = bearer(Authenticator(b"f" * 32).issue(Caller("x", "office", "", frozenset({did}))))
    code, _ = await code_of(
        reporting.GetDistrictSummary(
            rpb.GetDistrictSummaryRequest(district_id=did), metadata=forged
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # health checks stay open for probes
    h = await health_pb2_grpc.HealthStub(raw["intake"]).Check(health_pb2.HealthCheckRequest())
    assert h.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_district_token_sees_only_its_district(
    settings: Settings, district: dict[str, Any], raw: dict[str, grpc.aio.Channel]
) -> None:
    did = district["district_id"]
    mine = token(settings, "office", {did})
    other = token(settings, "office", {"it-some-other-district"})
    intake = igrpc.IntakeServiceStub(raw["intake"])
    reporting = rgrpc.ReportingServiceStub(raw["reporting"])
    resp = await intake.RegisterPetition(petition(district), metadata=mine)
    assert resp.created
    code, msg = await code_of(
        reporting.GetDistrictSummary(rpb.GetDistrictSummaryRequest(district_id=did), metadata=other)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("district_id:")
    code, msg = await code_of(intake.RegisterPetition(petition(district), metadata=other))
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("district_id:")
    code, msg = await code_of(reporting.GetCitySummary(rpb.GetCitySummaryRequest(), metadata=mine))
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("district_ids:")


async def test_the_token_not_the_request_decides_the_role(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    raw: dict[str, grpc.aio.Channel],
) -> None:
    did = district["district_id"]
    intake = igrpc.IntakeServiceStub(raw["intake"])
    case = await intake.RegisterPetition(
        petition(district), metadata=token(settings, "office", {did})
    )
    clerk = token(settings, "unit", {did}, user="clerk-9", unit="u-edu")

    # a unit clerk who writes "office" into the request is still a unit clerk
    claim = ipb.RevealPetitionerRequest(
        district_id=did, case_id=case.case_id, reason="need the address"
    )
    claim.actor.role = "office"
    code, msg = await code_of(intake.RevealPetitioner(claim, metadata=clerk))
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("actor.role:")
    # ...and with the actor left empty the token's role applies, which may not reveal
    plain = ipb.RevealPetitionerRequest(
        district_id=did, case_id=case.case_id, reason="need the address"
    )
    code, msg = await code_of(intake.RevealPetitioner(plain, metadata=clerk))
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("actor.role: unit")
    # a unit may not register petitions or change routing
    code, _ = await code_of(intake.RegisterPetition(petition(district), metadata=clerk))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(
        agrpc.AssignmentServiceStub(raw["assignment"]).SetRoutingRules(
            apb.SetRoutingRulesRequest(district_id=did), metadata=clerk
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # the office, named by its token only, may; the audit record names the token's user
    office = token(settings, "office", {did}, user="office-3")
    shown = await intake.RevealPetitioner(plain, metadata=office)
    assert shown.petitioner.name
    rec = await mongo[f"{settings.mongo_db_prefix}_intake"]["identity_reveals"].find_one(
        {"_id": shown.reveal_id}
    )
    assert rec is not None and (rec["user_id"], rec["role"]) == ("office-3", "office")
