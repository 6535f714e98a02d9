"""Who is calling: signed bearer tokens on every gRPC request.

A caller's role decides what it may do (only the petition office may see who
petitioned) and its districts decide whose data it may touch, so neither can
be taken from the request body, which the caller writes. Each request carries
``authorization: Bearer <JWT>`` (HS256, audience ``xinfang``) with the
claims ``sub`` (user), ``role``, ``unit`` and ``districts`` (``["*"]`` for
city-level staff). The server checks the signature and expiry, then checks
the request against the token: every district the request names must be one
of the token's, and the request's actor, when given, must be the token's
subject (when left empty it is filled from the token, so events and audit
records name who really acted).

The key is a shared secret (``XINFANG_AUTH_KEY``) held by the services and by
the issuer of tokens. Operator tools on a machine that holds the key (the
CLI, the demo, the tests) sign each request as the actor it names:
``tool_channel``. A deployment with an identity provider gives its users
tokens signed with the same key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt

from xinfang.core.config import Settings
from xinfang.core.errors import PermissionDenied, Unauthenticated

__all__ = [
    "ALL_DISTRICTS",
    "OFFICE",
    "OVERSIGHT",
    "ROLES",
    "Authenticator",
    "Caller",
    "authorize",
    "bearer",
    "tool_channel",
]

ROLES = frozenset({"office", "unit", "leader", "supervisor", "system"})
# who may call the few RPCs that change a district's set-up or publish for it
OFFICE = frozenset({"office"})
OVERSIGHT = frozenset({"office", "supervisor", "system"})
ALL_DISTRICTS = "*"
_AUDIENCE = "xinfang"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str
    unit_id: str = ""
    districts: frozenset[str] = frozenset()

    def may_see(self, district_id: str) -> bool:
        return ALL_DISTRICTS in self.districts or district_id in self.districts


class Authenticator:
    """Issues and verifies the platform's tokens with one key."""

    def __init__(self, key: bytes, leeway_s: float = 30.0) -> None:
        if len(key) < 32:
            raise ValueError("the auth key must be at least 32 bytes")
        self._key = key
        self._leeway = leeway_s

    def issue(self, caller: Caller, ttl_s: float = 3600.0) -> str:
        if caller.role not in ROLES:
            raise ValueError(f"unknown role {caller.role!r}")
        now = int(time.time())
        claims = {
            "sub": caller.user_id,
            "role": caller.role,
            "unit": caller.unit_id,
            "districts": sorted(caller.districts),
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + int(ttl_s),
        }
        token: str = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return token

    def verify(self, token: str) -> Caller:
        try:
            c = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                leeway=self._leeway,
                options={"require": ["sub", "role", "exp", "aud"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthenticated("authorization: the token has expired") from e
        except jwt.InvalidTokenError as e:
            raise Unauthenticated(f"authorization: invalid token ({e})") from e
        role, districts = c.get("role"), c.get("districts", [])
        if role not in ROLES:
            raise Unauthenticated(f"authorization: unknown role {role!r} in the token")
        if not isinstance(districts, list) or not all(isinstance(d, str) for d in districts):
            raise Unauthenticated("authorization: districts must be a list of strings")
        return Caller(str(c["sub"]), role, str(c.get("unit") or ""), frozenset(districts))

    def from_metadata(self, metadata: Iterable[tuple[str, Any]] | None) -> Caller:
        for k, v in metadata or ():
            if k == "authorization":
                scheme, _, token = str(v).partition(" ")
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated("authorization: expected 'Bearer <token>'")
                return self.verify(token.strip())
        raise Unauthenticated("authorization: no bearer token on the request")


def _districts_named(request: Any) -> list[tuple[str, str]]:
    """(field, district) pairs a request names, wherever our protos put them."""
    out: list[tuple[str, str]] = []
    if hasattr(request, "district_id"):
        out.append(("district_id", request.district_id))
    if request.DESCRIPTOR.fields_by_name.get("ctx") is not None:
        out.append(("ctx.district_id", request.ctx.district_id))
    if hasattr(request, "district_ids"):
        out.extend(("district_ids", d) for d in request.district_ids)
    return out


def _actor_of(request: Any) -> tuple[str, Any] | None:
    fields = request.DESCRIPTOR.fields_by_name
    if "actor" in fields:
        return "actor", request.actor
    if "ctx" in fields:
        return "ctx.actor", request.ctx.actor
    return None


def authorize(caller: Caller, request: Any, roles: frozenset[str] | None = None) -> None:
    """Check a request against its caller's token; fill an empty actor from it.

    An empty district is left for the handler, which names it as a missing
    field; a city-wide query with no districts needs a city-level token.
    """
    if roles is not None and caller.role not in roles:
        raise PermissionDenied(
            f"authorization: role {caller.role} may not do this; only {', '.join(sorted(roles))}"
        )
    named = _districts_named(request)
    for field, district_id in named:
        if district_id and not caller.may_see(district_id):
            raise PermissionDenied(f"{field}: not entitled to district {district_id!r}")
    city_wide = hasattr(request, "district_ids") and not request.district_ids
    if city_wide and not caller.may_see(ALL_DISTRICTS):
        raise PermissionDenied("district_ids: name the districts (the token is not city-wide)")
    found = _actor_of(request)
    if found is None:
        return
    prefix, actor = found
    for name, mine in (("user_id", caller.user_id), ("role", caller.role),
                       ("unit_id", caller.unit_id)):  # fmt: skip
        given = getattr(actor, name)
        if not given:
            setattr(actor, name, mine)
        elif given != mine:
            raise PermissionDenied(f"{prefix}.{name}: {given!r} is not the caller ({mine!r})")


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


class _SignEachRequest(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Signs every request as the actor and districts it names (tools only)."""

    def __init__(self, authn: Authenticator, default: Caller) -> None:
        self.authn = authn
        self.default = default

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        caller = self.default
        found = _actor_of(request)
        if found is not None and found[1].user_id:
            a = found[1]
            caller = Caller(a.user_id, a.role or caller.role, a.unit_id, caller.districts)
        named = frozenset(d for _, d in _districts_named(request) if d)
        caller = Caller(caller.user_id, caller.role, caller.unit_id, named or caller.districts)
        md = list(client_call_details.metadata or ())
        md = [(k, v) for k, v in md if k != "authorization"]
        md.extend(bearer(self.authn.issue(caller, ttl_s=300)))
        details = client_call_details._replace(metadata=grpc.aio.Metadata(*md))
        return await continuation(details, request)


def tool_channel(
    target: str,
    *,
    key: bytes | None = None,
    user_id: str = "xinfang-cli",
    role: str = "office",
) -> grpc.aio.Channel:
    """A channel for a trusted tool that holds the key (CLI, demo, tests,
    service-to-service calls): each request is signed as the actor it names,
    or as ``user_id``/``role`` when it names none. Without ``key``, the key
    is ``XINFANG_AUTH_KEY`` from the environment, like every other setting."""
    authn = Authenticator(key if key is not None else Settings().auth_key_bytes)
    default = Caller(user_id, role, "", frozenset({ALL_DISTRICTS}))
    return grpc.aio.insecure_channel(target, interceptors=[_SignEachRequest(authn, default)])
