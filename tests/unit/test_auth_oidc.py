"""Tokens of an identity provider (RS256/ES256, JWKS by file or URL) beside the shared key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from xinfang.core.auth import Authenticator, Caller
from xinfang.core.config import Settings
from xinfang.core.errors import Unauthenticated

SHARED = b"s" * 32
ISSUER = "https://idp.example.test/realms/xinfang"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    d: dict[str, Any] = algo.to_jwk(key.public_key(), as_dict=True)
    return {**d, "kid": kid, "alg": alg, "use": "sig"}


def jwks_doc(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "xinfang",
        "sub": "zhao",
        "iat": now,
        "exp": now + 600,
        "role": "office",
        "districts": ["a"],
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(key: Any, alg: str, kid: str | None, **over: Any) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims(**over), key, algorithm=alg, headers=headers)


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    f = tmp_path / "jwks.json"
    f.write_text(jwks_doc(jwk(RSA_KEY, "r1", "RS256"), jwk(EC_KEY, "e1", "ES256")))
    return f


@pytest.fixture
def authn(jwks_file: Path) -> Authenticator:
    s = Settings(
        auth_key=base64.b64encode(SHARED).decode(),
        auth_jwks_file=str(jwks_file),
        auth_issuer=ISSUER,
    )
    return Authenticator.from_settings(s)


def test_rs256_and_es256_tokens_of_the_provider_are_accepted(authn: Authenticator) -> None:
    assert authn.verify(sign(RSA_KEY, "RS256", "r1")) == Caller(
        "zhao", "office", "", frozenset({"a"})
    )
    assert authn.verify(sign(EC_KEY, "ES256", "e1", role="unit", unit="u1")) == Caller(
        "zhao", "unit", "u1", frozenset({"a"})
    )


def test_the_shared_key_still_works_for_local_tools(authn: Authenticator) -> None:
    caller = Caller("xinfang-cli", "office", "", frozenset({"*"}))
    assert authn.verify(Authenticator(SHARED).issue(caller)) == caller


def test_an_unsigned_token_is_refused(authn: Authenticator) -> None:
    token = jwt.encode(claims(), key="", algorithm="none", headers={"kid": "r1"})
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        authn.verify(token)


def _hs256(secret: bytes, header: dict[str, Any], body: dict[str, Any]) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    authn: Authenticator, jwks_file: Path, form: str
) -> None:
    """The algorithm-confusion attack: the public key is public, so a token
    MACed with it as the HS256 secret must not pass as the provider's."""
    if form == "pem":
        secret = RSA_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        secret = json.dumps(json.loads(jwks_file.read_text())["keys"][0]).encode()
    forged = _hs256(secret, {"alg": "HS256", "typ": "JWT", "kid": "r1"}, claims(role="office"))
    with pytest.raises(Unauthenticated, match="invalid token"):
        authn.verify(forged)


def test_a_key_id_the_jwks_lacks_is_refused(authn: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="no key 'r9' in the JWKS"):
        authn.verify(sign(RSA_KEY, "RS256", "r9"))
    with pytest.raises(Unauthenticated, match="names no key"):
        authn.verify(sign(RSA_KEY, "RS256", None))


def test_a_token_signed_with_another_key_under_a_known_kid_is_refused(
    authn: Authenticator,
) -> None:
    with pytest.raises(Unauthenticated, match=r"invalid token \(Signature verification failed"):
        authn.verify(sign(OTHER_RSA, "RS256", "r1"))


def test_an_algorithm_the_named_key_is_not_for_is_refused(authn: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="key 'r1' is for RS256, not ES256"):
        authn.verify(sign(EC_KEY, "ES256", "r1"))


def test_expired_and_foreign_tokens_are_refused(authn: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        authn.verify(sign(RSA_KEY, "RS256", "r1", exp=int(time.time()) - 120))
    with pytest.raises(Unauthenticated, match="issuer"):
        authn.verify(sign(RSA_KEY, "RS256", "r1", iss="https://other.example.test"))
    with pytest.raises(Unauthenticated, match="Audience doesn't match"):
        authn.verify(sign(RSA_KEY, "RS256", "r1", aud="account"))
    with pytest.raises(Unauthenticated, match="exp"):
        authn.verify(sign(RSA_KEY, "RS256", "r1", exp=None))
    with pytest.raises(Unauthenticated, match="unknown role"):
        authn.verify(sign(RSA_KEY, "RS256", "r1", role="admin"))


def test_without_a_provider_asymmetric_tokens_are_refused() -> None:
    with pytest.raises(Unauthenticated, match="algorithm 'RS256' is not accepted"):
        Authenticator(SHARED).verify(sign(RSA_KEY, "RS256", "r1"))


def test_claims_are_mapped_from_where_the_provider_puts_them(jwks_file: Path) -> None:
    s = Settings(
        auth_key=base64.b64encode(SHARED).decode(),
        auth_jwks_file=str(jwks_file),
        auth_issuer=ISSUER,
        auth_role_claim="realm_access.roles",
        auth_districts_claim="xinfang_districts",
        auth_unit_claim="org.unit",
    )
    authn = Authenticator.from_settings(s)
    token = sign(
        RSA_KEY,
        "RS256",
        "r1",
        role=None,
        districts=None,
        realm_access={"roles": ["offline_access", "leader"]},
        xinfang_districts="a b",
        org={"unit": "u-town"},
    )
    assert authn.verify(token) == Caller("zhao", "leader", "u-town", frozenset({"a", "b"}))
    two = sign(RSA_KEY, "RS256", "r1", realm_access={"roles": ["leader", "office"]})
    with pytest.raises(Unauthenticated, match="exactly one of"):
        authn.verify(two)


class _Jwks(http.server.BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Jwks)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/certs"
    finally:
        server.shutdown()
        server.server_close()


def test_a_jwks_by_url_is_fetched_and_a_new_key_picked_up(jwks_url: str) -> None:
    _Jwks.body = jwks_doc(jwk(RSA_KEY, "r1", "RS256")).encode()
    _Jwks.hits = 0
    s = Settings(
        auth_key=base64.b64encode(SHARED).decode(), auth_jwks_url=jwks_url, auth_issuer=ISSUER
    )
    authn = Authenticator.from_settings(s)
    eager = Authenticator.from_settings(s.model_copy(update={"auth_jwks_refetch_seconds": 0.0}))
    assert authn.verify(sign(RSA_KEY, "RS256", "r1")).role == "office"
    assert authn.verify(sign(RSA_KEY, "RS256", "r1")).role == "office"
    assert eager.verify(sign(RSA_KEY, "RS256", "r1")).role == "office"
    assert _Jwks.hits == 2  # once each, then cached
    # the provider rotates its signing key: an unknown kid fetches again, but
    # not sooner than XINFANG_AUTH_JWKS_REFETCH_SECONDS after the last fetch,
    # so made-up kids cannot make every request fetch
    _Jwks.body = jwks_doc(jwk(RSA_KEY, "r1", "RS256"), jwk(EC_KEY, "e2", "ES256")).encode()
    with pytest.raises(Unauthenticated, match="no key 'e2'"):
        authn.verify(sign(EC_KEY, "ES256", "e2"))
    assert _Jwks.hits == 2
    assert eager.verify(sign(EC_KEY, "ES256", "e2")).role == "office"
    assert _Jwks.hits == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_algorithms": "RS256,HS256"}, "HS256 not accepted"),
        ({"auth_algorithms": "none"}, "none not accepted"),
        ({"auth_jwks_file": "/x", "auth_jwks_url": "https://x", "auth_issuer": ISSUER}, "not both"),
        ({"auth_jwks_file": "/x"}, "XINFANG_AUTH_ISSUER is required"),
        ({"auth_jwks_url": "file:///etc/passwd", "auth_issuer": ISSUER}, "http"),
    ],
)
def test_incomplete_provider_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**settings)


class _HeldJwks(_Jwks):
    """A JWKS that answers only once the event loop has let it (``release``):
    a fetch made on the loop itself could never be answered."""

    release = threading.Event()

    def do_GET(self) -> None:
        if not type(self).release.wait(timeout=3):
            self.send_response(503)
            self.end_headers()
            return
        super().do_GET()


async def test_a_jwks_fetch_does_not_hold_up_the_event_loop() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _HeldJwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _HeldJwks.body = jwks_doc(jwk(RSA_KEY, "r1", "RS256")).encode()
    _HeldJwks.release.clear()
    try:
        s = Settings(
            auth_key=base64.b64encode(SHARED).decode(),
            auth_jwks_url=f"http://127.0.0.1:{server.server_port}/certs",
            auth_issuer=ISSUER,
        )
        authn = Authenticator.from_settings(s)

        async def let_it_answer() -> None:  # runs only if the loop is free
            _HeldJwks.release.set()

        token = sign(RSA_KEY, "RS256", "r1")
        caller, _ = await asyncio.gather(
            authn.from_metadata([("authorization", f"Bearer {token}")]), let_it_answer()
        )
        assert caller.role == "office"
        # verified once: the next request is answered from the cache, on the loop
        _HeldJwks.release.clear()
        assert (await authn.verify_async(token)).user_id == "zhao"
        # the shared key's tokens need no fetch
        local = authn.issue(Caller("tool", "office", "", frozenset({"a"})))
        assert (await authn.verify_async(local)).user_id == "tool"
        with pytest.raises(Unauthenticated, match="invalid token"):
            await authn.verify_async("not.a.token")
    finally:
        server.shutdown()
        server.server_close()
