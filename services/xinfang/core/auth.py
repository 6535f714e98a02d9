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
``tool_channel``.

A deployment with an identity provider (the usual OIDC set-up) also accepts
the provider's tokens, signed with RS256/ES256 (``XINFANG_AUTH_ALGORITHMS``)
and verified with the public keys of its JWKS document
(``XINFANG_AUTH_JWKS_URL`` or ``XINFANG_AUTH_JWKS_FILE``; ``_Jwks``). Which
key verifies a token follows from its header, never from the token's say
alone: ``HS256`` only ever meets the shared key, an asymmetric algorithm only
the JWKS key named by ``kid`` and only when that key is of that algorithm
(so a token "signed" with the public key as an HMAC secret, the classic
algorithm confusion, fails), and anything else (``none``) is refused. The
provider's token must carry ``iss`` = ``XINFANG_AUTH_ISSUER``, ``aud`` =
``XINFANG_AUTH_AUDIENCE`` (``xinfang``), ``exp`` and ``sub``
(``XINFANG_AUTH_REQUIRED_CLAIMS``); role, districts and unit are read from
the claims ``XINFANG_AUTH_ROLE_CLAIM`` (``role``), ``XINFANG_AUTH_DISTRICTS_CLAIM``
(``districts``) and ``XINFANG_AUTH_UNIT_CLAIM`` (``unit``), each a claim name
or a dotted path (``realm_access.roles``). A role claim that is a list must
hold exactly one of the platform's roles; districts are a list or a
space-separated string.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    "IdentityProvider",
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


class _FileJwks(jwt.PyJWKClient):
    """PyJWKClient's caching and refresh-on-unknown-kid, over a file."""

    def __init__(self, path: str, lifespan: float, cooldown: float) -> None:
        super().__init__(
            "https://jwks.file.invalid/", lifespan=lifespan, cooldown_duration=cooldown
        )
        self.path = path

    def fetch_data(self) -> Any:
        try:
            data = json.loads(Path(self.path).read_text())
        except (OSError, ValueError) as e:
            raise jwt.PyJWKClientConnectionError(f"JWKS file {self.path}: {e}") from e
        data = self._as_jwk_set_payload(data)
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(data)
        self._last_successful_fetch = time.monotonic()
        return data


@dataclass(frozen=True)
class IdentityProvider:
    """How the deployment's identity provider signs and what it claims."""

    jwks: jwt.PyJWKClient
    issuer: str
    audience: str = _AUDIENCE
    algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    required: Sequence[str] = ("iss", "aud", "exp", "sub")
    role_claim: str = "role"
    districts_claim: str = "districts"
    unit_claim: str = "unit"

    @classmethod
    def from_settings(cls, s: Settings) -> IdentityProvider | None:
        if s.auth_jwks_url is None and s.auth_jwks_file is None:
            return None
        jwks: jwt.PyJWKClient
        if s.auth_jwks_url is not None:
            # a fetch holds up the caller's request alone (in a worker thread,
            # Authenticator.verify_async), bounded by the timeout; an unknown
            # kid fetches again at most every refetch interval
            jwks = jwt.PyJWKClient(
                s.auth_jwks_url,
                lifespan=s.auth_jwks_cache_seconds,
                timeout=5,
                cooldown_duration=s.auth_jwks_refetch_seconds,
            )
        else:
            jwks = _FileJwks(
                str(s.auth_jwks_file), s.auth_jwks_cache_seconds, s.auth_jwks_refetch_seconds
            )
        return cls(
            jwks=jwks,
            issuer=str(s.auth_issuer),
            audience=s.auth_audience,
            algorithms=frozenset(a.strip() for a in s.auth_algorithms.split(",") if a.strip()),
            required=tuple(c.strip() for c in s.auth_required_claims.split(",") if c.strip()),
            role_claim=s.auth_role_claim,
            districts_claim=s.auth_districts_claim,
            unit_claim=s.auth_unit_claim,
        )


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class Authenticator:
    """Issues and verifies the platform's tokens with the shared key, and
    verifies the identity provider's when one is configured."""

    def __init__(
        self, key: bytes, leeway_s: float = 30.0, idp: IdentityProvider | None = None
    ) -> None:
        if len(key) < 32:
            raise ValueError("the auth key must be at least 32 bytes")
        self._key = key
        self._leeway = leeway_s
        self._idp = idp
        # tokens verified lately: a client sends the same token with every
        # request, and decoding it again was a twentieth of intake's CPU.
        # An entry lives until the token expires or ``CACHE_SECONDS`` pass,
        # whichever is first, so a key the identity provider withdraws stops
        # its tokens within a minute here as well
        self._verified: dict[str, tuple[Caller, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        return cls(settings.auth_key_bytes, idp=IdentityProvider.from_settings(settings))

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

    CACHE_SECONDS = 60.0
    CACHE_TOKENS = 10_000

    def verify(self, token: str) -> Caller:
        hit = self._kept(token)
        return hit if hit is not None else self._keep(token, *self._verify(token))

    async def verify_async(self, token: str) -> Caller:
        """``verify`` for the event loop. A token of the identity provider
        not verified lately is verified in a worker thread: its key may have
        to be fetched from the JWKS URL (up to the 5-s timeout), and a fetch
        on the loop would hold up every request and consumer of the service
        meanwhile. The shared key's tokens need no I/O and stay on the loop."""
        hit = self._kept(token)
        if hit is not None:
            return hit
        if self._idp is None or _alg(token) not in self._idp.algorithms:
            return self._keep(token, *self._verify(token))
        return self._keep(token, *(await asyncio.to_thread(self._verify, token)))

    def _kept(self, token: str) -> Caller | None:
        hit = self._verified.get(token)
        if hit is None:
            return None
        if time.time() < hit[1]:
            return hit[0]
        del self._verified[token]
        return None

    def _keep(self, token: str, caller: Caller, exp: float | None) -> Caller:
        if len(self._verified) >= self.CACHE_TOKENS:
            self._verified.clear()
        until = time.time() + self.CACHE_SECONDS
        self._verified[token] = (caller, until if exp is None else min(until, exp))
        return caller

    def _verify(self, token: str) -> tuple[Caller, float | None]:
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as e:
            raise Unauthenticated(f"authorization: invalid token ({e})") from e
        if alg == _ALGORITHM:
            return self._verify_shared(token)
        if self._idp is not None and alg in self._idp.algorithms:
            return self._verify_idp(self._idp, token, str(alg))
        accepted = sorted({_ALGORITHM} | (self._idp.algorithms if self._idp else set()))
        raise Unauthenticated(
            f"authorization: token algorithm {alg!r} is not accepted ({', '.join(accepted)})"
        )

    def _verify_idp(
        self, idp: IdentityProvider, token: str, alg: str
    ) -> tuple[Caller, float | None]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if not kid:
                raise Unauthenticated("authorization: the token names no key (kid)")
            try:
                key = idp.jwks.get_signing_key(str(kid))
            except jwt.PyJWKClientConnectionError as e:
                raise Unauthenticated(f"authorization: the JWKS is unavailable ({e})") from e
            except jwt.PyJWKClientError as e:
                raise Unauthenticated(f"authorization: no key {kid!r} in the JWKS") from e
            if key.algorithm_name != alg:
                raise Unauthenticated(
                    f"authorization: key {kid!r} is for {key.algorithm_name}, not {alg}"
                )
            c = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=idp.audience,
                issuer=idp.issuer,
                leeway=self._leeway,
                options={"require": list(idp.required)},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthenticated("authorization: the token has expired") from e
        except jwt.InvalidTokenError as e:
            raise Unauthenticated(f"authorization: invalid token ({e})") from e
        role = _claim(c, idp.role_claim)
        if isinstance(role, list):
            mine = [r for r in role if r in ROLES]
            if len(mine) != 1:
                raise Unauthenticated(
                    f"authorization: {idp.role_claim} must hold exactly one of "
                    f"{', '.join(sorted(ROLES))}"
                )
            role = mine[0]
        districts = _claim(c, idp.districts_claim)
        if isinstance(districts, str):
            districts = districts.split()
        caller = self._caller(
            c.get("sub"), role, _claim(c, idp.unit_claim), [] if districts is None else districts
        )
        return caller, _expiry(c)

    def _verify_shared(self, token: str) -> tuple[Caller, float | None]:
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
        caller = self._caller(c["sub"], c.get("role"), c.get("unit"), c.get("districts", []))
        return caller, _expiry(c)

    @staticmethod
    def _caller(sub: Any, role: Any, unit: Any, districts: Any) -> Caller:
        if not sub:
            raise Unauthenticated("authorization: the token names no subject (sub)")
        if role not in ROLES:
            raise Unauthenticated(f"authorization: unknown role {role!r} in the token")
        if not isinstance(districts, list) or not all(isinstance(d, str) for d in districts):
            raise Unauthenticated("authorization: districts must be a list of strings")
        return Caller(str(sub), role, str(unit or ""), frozenset(districts))

    async def from_metadata(self, metadata: Iterable[tuple[str, Any]] | None) -> Caller:
        return await self.verify_async(_bearer(metadata))


def _bearer(metadata: Iterable[tuple[str, Any]] | None) -> str:
    for k, v in metadata or ():
        if k == "authorization":
            scheme, _, token = str(v).partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthenticated("authorization: expected 'Bearer <token>'")
            return token.strip()
    raise Unauthenticated("authorization: no bearer token on the request")


def _alg(token: str) -> Any:
    """The algorithm a token's header names; None for a malformed header
    (``_verify`` then refuses it with the reason)."""
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return None


def _expiry(claims: dict[str, Any]) -> float | None:
    """When a verified token stops being accepted (``exp`` and the leeway
    that ``jwt.decode`` allowed are not added: a cached token ends at its
    ``exp``, never later)."""
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


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
