"""Bearer tokens and the request checks made with them (core.auth), without I/O."""

from __future__ import annotations

import base64
import time

import jwt
import pytest

from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.cli import main
from xinfang.core.auth import ALL_DISTRICTS, Authenticator, Caller, authorize, bearer
from xinfang.core.errors import PermissionDenied, Unauthenticated
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.reporting.v1 import reporting_pb2 as rpb

KEY = b"k" * 32
authn = Authenticator(KEY)
OFFICE_A = Caller("li", "office", "", frozenset({"a"}))


def test_a_token_round_trips_its_caller() -> None:
    caller = Caller("wang", "unit", "u-edu", frozenset({"a", "b"}))
    assert authn.verify(authn.issue(caller)) == caller


def test_a_verified_token_is_kept_until_it_expires_and_no_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = Authenticator(KEY, leeway_s=0)
    token = a.issue(OFFICE_A, ttl_s=100)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    assert a.verify(token) == OFFICE_A
    decoded: list[str] = []
    real = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        decoded.append("x")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    assert a.verify(token) == OFFICE_A and decoded == []  # from the cache
    monkeypatch.setattr(time, "time", lambda: now + a.CACHE_SECONDS + 1)
    assert a.verify(token) == OFFICE_A and decoded == ["x"]  # checked again


def test_a_cached_token_is_refused_once_it_expires() -> None:
    a = Authenticator(KEY, leeway_s=0)
    token = a.issue(OFFICE_A, ttl_s=1)
    assert a.verify(token) == OFFICE_A
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        a.verify(token)


async def test_metadata_without_a_bearer_token_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="no bearer token"):
        await authn.from_metadata([("x-other", "1")])
    with pytest.raises(Unauthenticated, match="Bearer"):
        await authn.from_metadata([("authorization", "Basic abc")])
    assert await authn.from_metadata(bearer(authn.issue(OFFICE_A))) == OFFICE_A


def test_a_token_signed_with_another_key_is_refused() -> None:
    forged = Authenticator(b"x" * 32).issue(Caller("li", "office", "", frozenset({"*"})))
    with pytest.raises(Unauthenticated, match="invalid token"):
        authn.verify(forged)


def test_an_expired_token_is_refused() -> None:
    old = jwt.encode(
        {"sub": "li", "role": "office", "aud": "xinfang", "exp": int(time.time()) - 120},
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="expired"):
        authn.verify(old)


def test_unsigned_and_unknown_role_tokens_are_refused() -> None:
    none_alg = jwt.encode(
        {"sub": "li", "role": "office", "aud": "xinfang", "exp": int(time.time()) + 60},
        key="",
        algorithm="none",
    )
    with pytest.raises(Unauthenticated):
        authn.verify(none_alg)
    odd = jwt.encode(
        {"sub": "li", "role": "god", "aud": "xinfang", "exp": int(time.time()) + 60},
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="unknown role"):
        authn.verify(odd)


def test_a_request_for_another_district_is_denied_naming_the_field() -> None:
    with pytest.raises(PermissionDenied, match=r"^district_id: not entitled to district 'b'"):
        authorize(OFFICE_A, rpb.GetDistrictSummaryRequest(district_id="b"))
    cmd = apb.AcceptCaseRequest(ctx=apb.CommandContext(district_id="b", case_id="c"))
    with pytest.raises(PermissionDenied, match=r"^ctx.district_id"):
        authorize(OFFICE_A, cmd)
    with pytest.raises(PermissionDenied, match=r"^district_ids"):
        authorize(OFFICE_A, rpb.GetCitySummaryRequest(district_ids=["a", "b"]))
    authorize(OFFICE_A, rpb.GetDistrictSummaryRequest(district_id="a"))


def test_a_city_wide_query_needs_a_city_wide_token() -> None:
    with pytest.raises(PermissionDenied, match=r"^district_ids"):
        authorize(OFFICE_A, rpb.GetCitySummaryRequest())
    city = Caller("zhao", "supervisor", "", frozenset({ALL_DISTRICTS}))
    authorize(city, rpb.GetCitySummaryRequest())
    authorize(city, rpb.GetDistrictSummaryRequest(district_id="anything"))


def test_an_empty_actor_is_filled_from_the_token() -> None:
    unit = Caller("wang", "unit", "u-edu", frozenset({"a"}))
    cmd = apb.AcceptCaseRequest(ctx=apb.CommandContext(district_id="a", case_id="c"))
    authorize(unit, cmd)
    assert (cmd.ctx.actor.user_id, cmd.ctx.actor.role, cmd.ctx.actor.unit_id) == (
        "wang",
        "unit",
        "u-edu",
    )


def test_an_actor_that_is_not_the_caller_is_denied() -> None:
    unit = Caller("wang", "unit", "u-edu", frozenset({"a"}))
    req = ipb.RevealPetitionerRequest(district_id="a", case_id="c", reason="check the address")
    req.actor.role = "office"  # a unit clerk claiming to be the office
    with pytest.raises(PermissionDenied, match=r"^actor\.role: 'office' is not the caller"):
        authorize(unit, req)
    other = apb.AcceptCaseRequest(ctx=apb.CommandContext(district_id="a", case_id="c"))
    other.ctx.actor.unit_id = "u-health"
    with pytest.raises(PermissionDenied, match=r"^ctx\.actor\.unit_id"):
        authorize(unit, other)


def test_roles_limit_who_may_call() -> None:
    unit = Caller("wang", "unit", "u-edu", frozenset({"a"}))
    with pytest.raises(PermissionDenied, match="only office"):
        authorize(unit, ipb.RegisterPetitionRequest(district_id="a"), frozenset({"office"}))
    authorize(OFFICE_A, ipb.RegisterPetitionRequest(district_id="a"), frozenset({"office"}))


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Authenticator(b"short")


def test_the_cli_issues_a_token_the_services_accept(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINFANG_AUTH_KEY", base64.b64encode(KEY).decode())
    assert main(["token", "wang", "--role", "unit", "--unit", "u-edu", "--district", "a"]) == 0
    caller = authn.verify(capsys.readouterr().out.strip())
    assert caller == Caller("wang", "unit", "u-edu", frozenset({"a"}))
