"""Two districts with cases, and the tokens of every role, on the running stack.

District ``a`` is the caller's own; district ``b`` is "another district".
``b``'s names (district, units, townships), its cases' content and its
petitioners' names carry a marker, so an answer that leaks ``b``'s data to a
caller of ``a`` can be found by looking for it (``World.secrets``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
from pymongo import AsyncMongoClient

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.assignment.v1 import assignment_pb2_grpc as agrpc
from xinfang.core.auth import Authenticator, Caller, bearer, tool_channel
from xinfang.core.config import Settings
from xinfang.core.directory import Directory
from xinfang.core.mongo import Doc
from xinfang.intake.v1 import intake_pb2_grpc as igrpc
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.reporting.v1 import reporting_pb2_grpc as rgrpc
from xinfang.sample.generator import petitions, sample_district

from .strategies import Metadata, Pools

__all__ = ["ROLES", "World", "build_world"]

ROLES = ("office", "unit", "leader", "supervisor")
MARK = "乙区机密"  # in every name and text of district b


@dataclass
class World:
    a: str
    b: str
    docs: dict[str, dict[str, Any]]
    cases: dict[str, list[str]]  # district -> its case ids, routed
    tokens: dict[str, Metadata]  # "office@a", "unit@*", "none", "forged", …
    secrets: list[str] = field(default_factory=list)  # b's data, never shown to a
    suggestions: dict[str, str] = field(default_factory=dict)  # district -> a suggestion id

    def unit_of(self, district: str) -> str:
        return str(self.docs[district]["units"][0]["id"])

    def pools(self) -> Pools:
        a = self.docs[self.a]
        year = datetime.now(UTC).year
        month = datetime.now(UTC).month
        units = [u["id"] for u in a["units"]]
        leaders = [lead["id"] for lead in a.get("leaders", [])]
        townships = [t["id"] for t in a["townships"]]
        villages = [v["id"] for t in a["townships"] for v in t.get("villages", [])]
        cases_a, cases_b = self.cases[self.a], self.cases[self.b]
        districts = [self.a] * 4 + [self.b, "fz-unknown-district", "*"]
        by_field: dict[str, list[str]] = {
            "district_id": districts,
            "district_ids": districts,
            "case_id": cases_a * 3 + cases_b + [str(uuid.uuid4())],
            "unit_id": units,
            "to_unit_id": units,
            "leader_id": leaders,
            "approver_id": leaders,
            "township_id": townships,
            "village_id": villages,
            "category": [c["code"] for c in a["categories"]],
            "period": [
                str(year),
                f"{year}-Q{(month - 1) // 3 + 1}",
                f"{year}-{month:02d}",
                f"{year - 1}",
                f"{year}-01",
            ],
            "kind": ["unit", "leader"],
            "format": ["docx", "markdown", "json"],
            "lang": ["zh", "en"],
            "status": ["registered", "routed", "accepted", "replied"],
            "sla_state": ["on_track", "due_soon", "overdue"],
            "channel": ["letter", "visit", "online", "phone", "fax"],
            "role": [*ROLES, "system", "root"],
            "user_id": [f"fz-{r}" for r in ROLES],
            "request_id": [uuid.uuid4().hex for _ in range(3)],
            "content": ["fuzz: the road outside the school floods every summer"],
            "title": ["fuzz: drain the school road"],
            "reason": ["fuzz: the matter belongs to another unit"],
            "name": ["张三"],
            "id_number": ["11010519491231002X"],
            "phone": ["13800138000"],
            "address": ["幸福路 1 号"],
            "batch_id": ["b-2026-1"],
            "rule_id": ["r-fuzz"],
            "suggestion_id": [*self.suggestions.values(), "sug-none"],
        }
        ids = [*cases_a, *units, *leaders, self.a]
        weights = {"office@a": 6, "office@*": 3}
        weights |= {f"{r}@a": 2 for r in ROLES if r != "office"}
        return Pools(by_field=by_field, ids=ids, tokens=list(self.tokens.items()), weights=weights)


def _district(district_id: str, marked: bool) -> dict[str, Any]:
    doc = sample_district(seed=7, district_id=district_id)
    if marked:
        doc["name"] = f"{MARK}{doc['name']}"
        for u in doc["units"]:
            u["name"] = f"{MARK}{u['name']}"
        for t in doc["townships"]:
            t["name"] = f"{MARK}{t['name']}"
    return doc


def _tokens(authn: Authenticator, key: bytes, w: World) -> dict[str, Metadata]:
    out: dict[str, Metadata] = {}
    for scope, districts in (("a", {w.a}), ("b", {w.b}), ("*", {"*"})):
        for role in (*ROLES, "system"):
            unit = w.unit_of(w.a if scope != "b" else w.b) if role == "unit" else ""
            caller = Caller(f"fz-{role}", role, unit, frozenset(districts))
            out[f"{role}@{scope}"] = bearer(authn.issue(caller, ttl_s=6 * 3600))
    now = int(time.time())
    claims = {"sub": "fz-office", "role": "office", "districts": [w.a], "aud": "xinfang"}
    out["none"] = ()
    out["garbage"] = (("authorization", "Bearer not.a.token"),)
    plain = authn.issue(Caller("fz-office", "office", "", frozenset({w.a})))
    out["no-scheme"] = (("authorization", plain),)

    def signed(k: bytes | str, alg: str = "HS256", **extra: Any) -> Metadata:
        return bearer(jwt.encode({**claims, "exp": now + 3600, **extra}, k, algorithm=alg))

    out["expired"] = signed(key, exp=now - 3600)
    out["forged"] = signed(b"f" * 32)
    out["alg-none"] = signed("", "none")
    out["bad-role"] = signed(key, role="root")
    out["bad-districts"] = signed(key, districts="*")
    return out


async def _suggest(settings: Settings, w: World) -> None:
    """A suggestion in each district (they share the district's collection of
    case documents in reporting, which a case search once tripped over)."""
    key, host = settings.auth_key_bytes, settings.grpc_host
    async with tool_channel(f"{host}:{settings.reporting_grpc}", key=key) as rch:
        reporting = rgrpc.ReportingServiceStub(rch)
        for did in (w.a, w.b):
            title = f"{MARK} suggestion" if did == w.b else "a suggestion"
            r = await reporting.RecordSuggestion(
                rpb.RecordSuggestionRequest(district_id=did, title=title), timeout=30
            )
            w.suggestions[did] = r.suggestion_id
        w.secrets.append(f"{MARK} suggestion")
        for did, sid in w.suggestions.items():
            for _ in range(400):  # until reporting has recorded it
                try:
                    await reporting.GetCaseTimeline(
                        rpb.GetCaseTimelineRequest(district_id=did, case_id=sid), timeout=10
                    )
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.3)


async def build_world(
    settings: Settings, mongo: AsyncMongoClient[Doc], cases_per_district: int = 4
) -> World:
    """Two fresh districts, ``cases_per_district`` routed cases in each."""
    tag = uuid.uuid4().hex[:8]
    a, b = f"fz-{tag}-a", f"fz-{tag}-b"
    docs = {a: _district(a, marked=False), b: _district(b, marked=True)}
    directory = Directory(mongo[f"{settings.mongo_db_prefix}_directory"])
    for doc in docs.values():
        await directory.put(doc)
    w = World(a, b, docs, {a: [], b: []}, {})
    key = settings.auth_key_bytes
    w.tokens = _tokens(Authenticator(key), key, w)
    w.secrets = sorted(
        {docs[b]["name"]}
        | {u["name"] for u in docs[b]["units"]}
        | {t["name"] for t in docs[b]["townships"]}
    )
    host = settings.grpc_host
    async with (
        tool_channel(f"{host}:{settings.intake_grpc}", key=key) as ich,
        tool_channel(f"{host}:{settings.assignment_grpc}", key=key) as ach,
    ):
        intake, assignment = igrpc.IntakeServiceStub(ich), agrpc.AssignmentServiceStub(ach)
        now = datetime.now(UTC)
        for did in (a, b):
            reqs = petitions(
                docs[did], cases_per_district, seed=11, start=now.date(), end=now.date()
            )
            for i, req in enumerate(reqs):
                req.request_id = uuid.uuid4().hex
                req.received_at.FromDatetime(now - timedelta(minutes=30))
                if did == b:
                    req.content = f"{MARK}-content-{tag}-{i}"
                    req.petitioner.name = f"{MARK}{i}"
                    w.secrets += [req.content, req.petitioner.name]
                resp = await intake.RegisterPetition(req, timeout=30)
                w.cases[did].append(resp.case_id)
        await _suggest(settings, w)
        deadline = time.monotonic() + 120
        for did, case_ids in w.cases.items():
            for case_id in case_ids:
                while True:
                    try:
                        view = await assignment.GetCase(
                            apb.GetCaseRequest(district_id=did, case_id=case_id), timeout=10
                        )
                        if view.status != "registered":
                            break
                    except grpc.aio.AioRpcError as e:
                        if e.code() != grpc.StatusCode.NOT_FOUND:
                            raise
                    if time.monotonic() > deadline:
                        raise AssertionError(f"case {case_id} of {did} was never routed")
                    await asyncio.sleep(0.3)
    return w
