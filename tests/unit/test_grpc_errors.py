"""How the gRPC layer answers a handler's failure: a store or an event bus
that is away is UNAVAILABLE (retry), a domain error its own code, never
INTERNAL for either."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from xinfang.core.auth import Authenticator, Caller
from xinfang.core.errors import InvalidArgument
from xinfang.core.grpc_server import rpc
from xinfang.intake.v1 import intake_pb2 as ipb

KEY = b"k" * 32


class Aborted(Exception):
    pass


class Context:
    def __init__(self, token: str) -> None:
        self.token = token
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted


class Servicer:
    _xinfang_auth = Authenticator(KEY)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    @rpc("test")
    async def RegisterPetition(self, request: Any, context: Any) -> Any:
        raise self.error


def _context() -> Context:
    caller = Caller("office-1", "office", "", frozenset({"d1"}))
    return Context(Authenticator(KEY).issue(caller))


@pytest.mark.parametrize(
    ("error", "details"),
    [
        (AutoReconnect("connection refused"), "store unavailable; retry"),
        (ServerSelectionTimeoutError("no server"), "store unavailable; retry"),
        # a command republishing what an earlier one recorded, before its own
        (KafkaTimeoutError(), "event bus unavailable; retry"),
        (KafkaConnectionError("refused"), "event bus unavailable; retry"),
    ],
)
async def test_a_store_or_bus_that_is_away_is_unavailable_not_internal(
    error: BaseException, details: str
) -> None:
    ctx = _context()
    with pytest.raises(Aborted):
        await Servicer(error).RegisterPetition(ipb.RegisterPetitionRequest(district_id="d1"), ctx)
    assert ctx.code == grpc.StatusCode.UNAVAILABLE
    assert ctx.details == details


async def test_a_domain_error_keeps_its_code() -> None:
    ctx = _context()
    with pytest.raises(Aborted):
        await Servicer(InvalidArgument("channel", "is required")).RegisterPetition(
            ipb.RegisterPetitionRequest(district_id="d1"), ctx
        )
    assert ctx.code == grpc.StatusCode.INVALID_ARGUMENT
    assert ctx.details.startswith("channel")
