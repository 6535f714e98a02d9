"""Petitioner identity: sealed at rest, shown only to the petition office,
every reveal recorded first."""

from __future__ import annotations

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

pytestmark = pytest.mark.integration


async def test_only_the_office_sees_who_petitioned_and_every_look_is_recorded(
    settings: Settings,
    mongo: AsyncMongoClient[Doc],
    district: dict[str, Any],
    intake_channel: grpc.aio.Channel,
) -> None:
    stub = igrpc.IntakeServiceStub(intake_channel)
    req = petition(district, seed=8)
    resp = await stub.RegisterPetition(req)
    did = district["district_id"]
    db = mongo[f"{settings.mongo_db_prefix}_intake"]

    # at rest the identity is sealed: no clear name, ID or phone in the document
    stored = await db["cases"].find_one({"_id": resp.case_id})
    assert stored is not None
    raw = repr(stored)
    for secret in (req.petitioner.name, req.petitioner.id_number, req.petitioner.phone):
        assert secret not in raw

    unit = ev.Actor(user_id="u-staff", role="unit", unit_id="u-zjj")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(
                district_id=did, case_id=resp.case_id, actor=unit, reason="want to call"
            )
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (e.value.details() or "").startswith("actor.role")

    office = ev.Actor(user_id="office-7", role="office")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(district_id=did, case_id=resp.case_id, actor=office)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.RevealPetitioner(
            ipb.RevealPetitionerRequest(
                district_id="demo-district", case_id=resp.case_id, actor=office, reason="check"
            )
        )
    assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    assert await db["identity_reveals"].count_documents({"case_id": resp.case_id}) == 0

    shown = await stub.RevealPetitioner(
        ipb.RevealPetitionerRequest(
            district_id=did, case_id=resp.case_id, actor=office, reason="send the written notice"
        )
    )
    assert shown.petitioner.name == req.petitioner.name
    assert shown.petitioner.id_number == req.petitioner.id_number.upper()
    audit = await db["identity_reveals"].find_one({"_id": shown.reveal_id})
    assert audit is not None
    assert (audit["user_id"], audit["case_id"], audit["reason"]) == (
        "office-7",
        resp.case_id,
        "send the written notice",
    )
