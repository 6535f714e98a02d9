"""Typed settings from the environment (prefix ``XINFANG_``).

A service refuses to start when a setting it needs is missing or malformed,
rather than failing later on the first request.
"""

from __future__ import annotations

import base64
import json
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# the case topic's partitions: also how many shards a shared counter has
# (core.shards), so readers built without settings (tests, tools) agree
DEFAULT_PARTITIONS = 4

__all__ = ["ASYMMETRIC_ALGORITHMS", "Settings", "parse_ring"]

# what an identity provider may sign with (never HS*, never none)
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


def parse_ring(text: str, *, where: str = "XINFANG_IDENTITY_KEYS") -> tuple[dict[int, bytes], int]:
    """The keys and sealing version (0: the newest) of a ring's JSON form,
    ``{"keys": {"1": "<base64>", "2": "<base64>"}, "seal": 2}`` with ``seal``
    optional. Errors name ``where`` and the version, never a key."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{where}: not JSON ({e.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
        raise ValueError(f'{where}: expected {{"keys": {{"<version>": "<base64>"}}, "seal": N}}')
    keys: dict[int, bytes] = {}
    for v, k in doc["keys"].items():
        if not str(v).isdigit() or int(v) < 1:
            raise ValueError(f"{where}: key version {v!r} is not an integer from 1")
        try:
            raw = base64.b64decode(str(k), validate=True)
        except ValueError:
            raise ValueError(f"{where}: key version {v} is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"{where}: key version {v} must decode to 32 bytes")
        keys[int(v)] = raw
    seal = doc.get("seal", 0)
    if not isinstance(seal, int) or isinstance(seal, bool) or seal < 0:
        raise ValueError(f"{where}: seal must be a key version")
    return keys, seal


class Settings(BaseSettings):
    # hide_input_in_errors: a malformed key must not be echoed into a start-up log
    model_config = SettingsConfigDict(
        env_prefix="XINFANG_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    kafka_bootstrap: str = "127.0.0.1:19092"
    mongo_uri: str = "mongodb://127.0.0.1:27018/"
    # Database names are prefixed so several deployments can share one server.
    mongo_db_prefix: str = "xinfang"
    partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=256)
    case_events_topic: str = "xinfang.case-events.v1"
    dead_letter_topic: str = "xinfang.dead-letter.v1"
    rankings_topic: str = "xinfang.rankings.v1"
    log_level: str = "INFO"
    log_json: bool = True

    intake_grpc: int = 50061
    intake_metrics: int = 9161
    assignment_grpc: int = 50062
    assignment_metrics: int = 9162
    supervision_grpc: int = 50063
    supervision_metrics: int = 9163
    reporting_grpc: int = 50064
    reporting_metrics: int = 9164
    # the largest request message each gRPC server takes, in bytes; a larger
    # one is refused by gRPC itself with RESOURCE_EXHAUSTED before any
    # handler runs. Sized from the largest valid request: a petition (content
    # at most 20,000 characters, 3 bytes each in UTF-8), a district's routing
    # table (thousands of rows), a city view's list of districts.
    intake_grpc_max_receive_bytes: int = Field(default=256 * 1024, ge=4096, le=64 << 20)
    assignment_grpc_max_receive_bytes: int = Field(default=1 << 20, ge=4096, le=64 << 20)
    supervision_grpc_max_receive_bytes: int = Field(default=64 * 1024, ge=4096, le=64 << 20)
    reporting_grpc_max_receive_bytes: int = Field(default=64 * 1024, ge=4096, le=64 << 20)
    # where servers listen (0.0.0.0 in a container) and, by default, where the
    # CLI and other services dial
    grpc_host: str = "127.0.0.1"
    # reporting asks supervision for rankings: "host:port" (default: grpc_host)
    supervision_addr: str | None = None
    prometheus_url: str = "http://127.0.0.1:19090"

    # faust keeps a little local state per app; not the working directory, which
    # is read-only in the container images
    state_dir: str = Field(default_factory=lambda: str(Path(tempfile.gettempdir()) / "xinfang"))

    # Base64 of 32 random bytes; per-district keys are derived from it.
    # Only intake needs it; see identity_key_bytes.
    identity_key: str | None = None
    # The key ring, for rotation (core.crypto.KeyRing): JSON
    # {"keys": {"1": "<base64>", "2": "<base64>"}, "seal": 2}, ``seal`` optional
    # (the newest). XINFANG_IDENTITY_KEY, when also set, is version 1. The file
    # (a mounted Secret) is read again while intake runs, every
    # identity_keys_reload_seconds at most: a new key seals without a restart.
    identity_keys: str | None = None
    identity_keys_file: str | None = None
    identity_keys_reload_seconds: float = Field(default=5.0, gt=0)

    # Base64 of at least 32 random bytes: signs and verifies the bearer tokens
    # of every gRPC request (see core.auth). Every service needs it.
    auth_key: str | None = None

    # Tokens from the deployment's identity provider (OIDC), besides the shared
    # key's: verified with the public keys of a JWKS document, fetched from
    # auth_jwks_url (cached auth_jwks_cache_seconds, fetched again at once for
    # an unknown key id, at most every auth_jwks_refetch_seconds) or read from auth_jwks_file (a
    # mounted ConfigMap or Secret, read again the same way). Set one of the two
    # and the issuer. See core.auth for the claims and how they are mapped.
    auth_jwks_url: str | None = None
    auth_jwks_file: str | None = None
    auth_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    auth_jwks_refetch_seconds: float = Field(default=30.0, ge=0)
    auth_issuer: str | None = None
    auth_audience: str = "xinfang"
    # comma-separated; asymmetric algorithms only (HS* is the shared key's)
    auth_algorithms: str = "RS256,ES256"
    auth_required_claims: str = "iss,aud,exp,sub"
    # where the caller's role, districts and unit are in an IdP token: a claim
    # name, or a dotted path into nested claims (realm_access.roles)
    auth_role_claim: str = "role"
    auth_districts_claim: str = "districts"
    auth_unit_claim: str = "unit"

    # Consumer group membership (faust/aiokafka, classic group protocol). The
    # session timeout is how long the broker keeps a member that stopped
    # heartbeating: after a crash (SIGKILL, OOM, lost node) the restarted or
    # surviving consumers get its partitions only once it has expired, so it
    # bounds how long events wait after a crash. faust's default is 60 s; 10 s
    # still allows a few missed heartbeats (sent every third of it) and is above
    # the broker's group.min.session.timeout.ms (6 s by default). Heartbeats
    # run on the service's event loop: a loop blocked for longer (a long
    # synchronous report render) costs a rebalance and the replay of
    # uncommitted events, which the idempotent handlers absorb, never an event.
    kafka_session_timeout_seconds: float = Field(default=10.0, ge=6, le=90)
    # Membership stays dynamic (no group.instance.id): a static member sends
    # no LeaveGroup when it stops, so after every graceful stop its partitions
    # would wait out the session timeout, and reporting's in-place rebuild
    # (which refuses while the group has members) would be refused meanwhile;
    # tried on the local stack, it brought a restarted consumer back no sooner.

    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # a consumer reads up to this many events, or what arrived within this
    # time, and applies them as one batch (core.batch)
    consumer_batch_max: int = Field(default=200, ge=1, le=5000)
    consumer_batch_seconds: float = Field(default=0.05, gt=0)
    # how long the broker holds a consumer's fetch while fewer than
    # ``consumer_fetch_min_bytes`` have arrived. faust fixes 1.5 s, and a
    # fetch in flight for some partitions held back the others' new records
    # until it answered: at 50 cases/s a hop from Kafka into a read model
    # took 180 ms at the median and 400 ms at p99, with 50 ms 90 and 230 ms.
    # Waiting for 16 KiB as well was slower in a burst (156 against 167
    # cases/s, one run after the other), so an answer goes at the first byte
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=1, le=1500)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1, le=1_048_576)
    # the event loop a service runs on: uvloop (libuv) or the standard
    # library's. The services spend much of their CPU in the loop's own
    # machinery (sockets, callbacks) between small store and broker calls
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # allocations between two collections of the youngest generation
    # (CPython's default is 700; ``core.runtime._tune_gc`` says why more)
    gc_young_threshold: int = Field(default=20_000, ge=100)
    # documents a consumer keeps of what it alone writes (its partitions'
    # clocks and case records), so a case's later events read nothing;
    # past this many it forgets them all and reads again (0: keep none)
    owned_cache_docs: int = Field(default=50_000, ge=0)
    # a folder: every write to the store is appended to <service>.bson there,
    # as sent, for scripts/bench_store.py to replay (the benchmark sets it)
    store_trace: str = ""
    metrics_refresh_seconds: float = Field(default=2.0, gt=0)
    # per-unit series per district at most (the rest add up as unit="_other")
    metrics_max_units: int = Field(default=300, ge=1)
    # how often supervision looks for clocks that fall due
    scan_seconds: float = Field(default=5.0, gt=0)

    @field_validator("identity_key", "auth_key")
    @classmethod
    def _key_is_base64(cls, v: str | None, info: ValidationInfo) -> str | None:
        """Keys are checked at start, so a bad one stops the service at once.
        The identity key is exactly 32 bytes (AES-256); the auth key at least
        32 (HMAC-SHA256 wants no less)."""
        if v is None:
            return v
        var = f"XINFANG_{str(info.field_name).upper()}"
        try:
            raw = base64.b64decode(v, validate=True)
        except ValueError as e:
            raise ValueError(f"{var} must be base64") from e
        if info.field_name == "identity_key" and len(raw) != 32:
            raise ValueError(f"{var} must decode to 32 bytes")
        if len(raw) < 32:
            raise ValueError(f"{var} must decode to at least 32 bytes")
        return v

    @field_validator(
        "identity_keys",
        "identity_keys_file",
        "auth_jwks_url",
        "auth_jwks_file",
        "auth_issuer",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        """An empty value is no value: compose passes ``${VAR:-}`` through."""
        return None if v == "" else v

    @field_validator("identity_keys")
    @classmethod
    def _ring_parses(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ring(v)
        return v

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, v: str) -> str:
        algs = [a.strip() for a in v.split(",") if a.strip()]
        bad = [a for a in algs if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not algs:
            raise ValueError(
                f"XINFANG_AUTH_ALGORITHMS: {', '.join(bad) or 'empty'} not accepted; "
                f"choose from {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
            )
        return v

    @model_validator(mode="after")
    def _jwks_complete(self) -> Settings:
        if self.auth_jwks_url is not None and self.auth_jwks_file is not None:
            raise ValueError("set XINFANG_AUTH_JWKS_URL or XINFANG_AUTH_JWKS_FILE, not both")
        if (self.auth_jwks_url or self.auth_jwks_file) and not self.auth_issuer:
            raise ValueError("XINFANG_AUTH_ISSUER is required with a JWKS (the tokens' iss)")
        if self.auth_jwks_url is not None and not self.auth_jwks_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("XINFANG_AUTH_JWKS_URL must be an http(s) URL")
        return self

    @cached_property
    def auth_key_bytes(self) -> bytes:
        if self.auth_key is None:
            raise RuntimeError("XINFANG_AUTH_KEY is not set: gRPC requests cannot be authenticated")
        return base64.b64decode(self.auth_key)

    @cached_property
    def identity_key_bytes(self) -> bytes:
        if self.identity_key is None:
            raise RuntimeError(
                "XINFANG_IDENTITY_KEY is not set: intake cannot store petitioner identity"
            )
        return base64.b64decode(self.identity_key)

    def ports(self, service: str) -> tuple[int, int]:
        """(gRPC port, metrics port) of a service."""
        return int(getattr(self, f"{service}_grpc")), int(getattr(self, f"{service}_metrics"))

    def grpc_max_receive_bytes(self, service: str) -> int:
        return int(getattr(self, f"{service}_grpc_max_receive_bytes"))

    def db_name(self, service: str) -> str:
        return f"{self.mongo_db_prefix}_{service}"
