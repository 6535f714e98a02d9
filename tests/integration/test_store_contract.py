"""The store contract on FerretDB, the stack's MongoDB-protocol server, and on
a MongoDB when ``XINFANG_CONTRACT_MONGO_URI`` points at one (the same suite
runs on the in-memory fake in the unit tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from tests.store_contract import CHECKS, Check
from xinfang.core.config import Settings
from xinfang.core.mongo import Doc, connect
from xinfang.core.store import MongoStore

pytestmark = pytest.mark.integration

_URIS = {"ferretdb": None, "mongodb": os.environ.get("XINFANG_CONTRACT_MONGO_URI")}


@pytest.fixture(scope="module", params=[k for k, v in _URIS.items() if k == "ferretdb" or v])
async def server(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client = connect(_URIS[request.param] or settings.mongo_uri, "xinfang-contract")
    yield client
    await client.close()


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_server_keeps_the_contract(server: AsyncMongoClient[Doc], name: str) -> None:
    db = server[f"xinfang_contract_{uuid.uuid4().hex[:8]}"]
    try:
        check: Check = CHECKS[name]
        await check(MongoStore(db, "contract"), "contract")
    finally:
        await server.drop_database(db.name)
