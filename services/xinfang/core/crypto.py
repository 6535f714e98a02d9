"""Petitioner identity: encrypted at rest, pseudonymous everywhere else.

Arts. 30 and 46 of the regulations forbid passing a petitioner's details to
those complained about, so the identity never leaves intake's store in clear.
Each district has its own keys, derived from one master key with HKDF, so a
leaked district key exposes one district and pseudonyms do not link people
across districts.

The master keys form a versioned ring (``KeyRing``) so the sealing key can be
rotated without downtime: a sealed identity records the version that sealed
it, the ring's sealing version seals from the moment the ring holds it, and
every older version still opens what it sealed until ``xinfang keys reseal``
has re-sealed those records (``intake.keys``). Pseudonyms are keyed by
version 1 for good: events carry them and the case log keeps events forever,
so a new pseudonym key would split every petitioner's history in two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xinfang.core.config import Settings, parse_ring
from xinfang.core.errors import FailedPrecondition
from xinfang.core.logging import get_logger

__all__ = [
    "PSEUDONYM_VERSION",
    "Identity",
    "IdentityVault",
    "KeyRing",
    "SealedIdentity",
    "UnknownKeyVersion",
    "normalize_phone",
    "parse_ring",
    "ring_of",
]

log = get_logger(__name__)

# the version whose key derives pseudonyms; see the module docstring
PSEUDONYM_VERSION = 1


@dataclass(frozen=True)
class Identity:
    name: str
    id_number: str = ""
    phone: str = ""
    address: str = ""

    def __repr__(self) -> str:  # never print identity by accident
        return "Identity([redacted])"


@dataclass(frozen=True)
class SealedIdentity:
    nonce: bytes
    ciphertext: bytes
    key_version: int = 1


class UnknownKeyVersion(FailedPrecondition):
    """A record sealed with a key version this process does not hold: the
    ring was rotated elsewhere and not here yet, or a version was dropped
    while records still use it."""

    def __init__(self, version: int, held: frozenset[int]) -> None:
        super().__init__(
            f"identity: sealed with key version {version}, which this intake does not hold "
            f"(it holds {', '.join(map(str, sorted(held)))}); add it to XINFANG_IDENTITY_KEYS"
        )
        self.version = version


@dataclass(frozen=True)
class KeyRing:
    """Master keys by version; ``seal_version`` seals, every version opens.

    ``seal_version`` defaults to the newest. Pinning it to the old version
    while the new key reaches every replica, then unpinning, is the two-step
    rotation for several replicas: no replica ever meets a record sealed with
    a version it does not hold yet.
    """

    keys: Mapping[int, bytes]
    seal_version: int = 0  # 0: the newest
    _derived: dict[tuple[int, str, str], bytes] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("the identity key ring is empty")
        for v, k in self.keys.items():
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"identity key version {v!r}: versions are integers from 1")
            if len(k) != 32:
                raise ValueError(f"identity key version {v}: must be 32 bytes")
        if PSEUDONYM_VERSION not in self.keys:
            raise ValueError(
                f"identity key version {PSEUDONYM_VERSION} must stay in the ring: "
                "it keys the pseudonyms, which the case log keeps for good"
            )
        if self.seal_version == 0:
            object.__setattr__(self, "seal_version", max(self.keys))
        elif self.seal_version not in self.keys:
            raise ValueError(f"identity seal version {self.seal_version} is not in the ring")

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self.keys)

    def key(self, version: int, district_id: str, purpose: str) -> bytes:
        k = (version, district_id, purpose)
        if k not in self._derived:
            if version not in self.keys:
                raise UnknownKeyVersion(version, self.versions)
            self._derived[k] = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=f"xinfang/{purpose}/v1/{district_id}".encode(),
            ).derive(self.keys[version])
        return self._derived[k]

    def __repr__(self) -> str:  # never print key material by accident
        return f"KeyRing(versions={sorted(self.keys)}, seal_version={self.seal_version})"


def ring_of(settings: Settings, file_text: str | None = None) -> KeyRing:
    """One ring from every source: ``XINFANG_IDENTITY_KEY`` is version 1,
    then ``XINFANG_IDENTITY_KEYS``, then the text of
    ``XINFANG_IDENTITY_KEYS_FILE``; a version given twice must be the same
    key. The sealing version is the last source's ``seal``, else the newest."""
    sources: list[tuple[str, dict[int, bytes], int]] = []
    if settings.identity_key is not None:
        sources.append(("XINFANG_IDENTITY_KEY", {1: settings.identity_key_bytes}, 0))
    if settings.identity_keys is not None:
        sources.append(("XINFANG_IDENTITY_KEYS", *parse_ring(settings.identity_keys)))
    if file_text is not None:
        where = f"XINFANG_IDENTITY_KEYS_FILE ({settings.identity_keys_file})"
        sources.append((where, *parse_ring(file_text, where=where)))
    if not sources:
        raise RuntimeError(
            "XINFANG_IDENTITY_KEY (or XINFANG_IDENTITY_KEYS) is not set: "
            "intake cannot store petitioner identity"
        )
    keys: dict[int, bytes] = {}
    origin: dict[int, str] = {}
    seal = 0
    for where, ks, s in sources:
        for v, k in ks.items():
            if v in keys and not hmac.compare_digest(keys[v], k):
                raise ValueError(
                    f"identity key version {v} differs between {origin[v]} and {where}"
                )
            keys[v], origin[v] = k, where
        seal = s or seal
    try:
        return KeyRing(keys, seal)
    except ValueError as e:
        raise ValueError(f"{', '.join(w for w, _, _ in sources)}: {e}") from None


class IdentityVault:
    """Seals with the ring's sealing version, opens with a record's own.

    With ``reload`` (the ring from a mounted Secret file), the ring is read
    again at most every ``reload_s`` seconds on use, and at once when a
    record names a version the ring lacks: a new key seals from the moment
    the file holds it, without a restart. A file that does not parse keeps
    the ring in use (and says so in the log).
    """

    def __init__(
        self,
        ring: KeyRing | bytes,
        *,
        reload: Callable[[], KeyRing] | None = None,
        reload_s: float = 5.0,
    ) -> None:
        if isinstance(ring, bytes):
            if len(ring) != 32:
                raise ValueError("master key must be 32 bytes")
            ring = KeyRing({1: ring})
        self._ring = ring
        self._reload = reload
        self._reload_s = reload_s
        self._checked = time.monotonic()

    @property
    def ring(self) -> KeyRing:
        self._maybe_reload()
        return self._ring

    @property
    def seal_version(self) -> int:
        return self.ring.seal_version

    def _maybe_reload(self, force: bool = False) -> None:
        if self._reload is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < self._reload_s:
            return
        self._checked = now
        try:
            ring = self._reload()
        except (OSError, ValueError) as e:
            log.error("identity key ring not reloaded; keeping the one in use", error=str(e))
            return
        if ring != self._ring:
            log.info(
                "identity key ring reloaded",
                versions=sorted(ring.versions),
                seal_version=ring.seal_version,
            )
            self._ring = ring

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityVault:
        """The vault of ``XINFANG_IDENTITY_KEY`` (version 1),
        ``XINFANG_IDENTITY_KEYS`` and ``XINFANG_IDENTITY_KEYS_FILE`` together;
        the file is read again while the process runs."""
        path = settings.identity_keys_file
        if path is None:
            return cls(ring_of(settings))

        def reload() -> KeyRing:
            return ring_of(settings, Path(path).read_text())

        return cls(reload(), reload=reload, reload_s=settings.identity_keys_reload_seconds)

    def pseudonym(self, district_id: str, identity: Identity) -> str:
        """Stable per district: the same person gets the same reference, so
        first/repeat petitions can be told apart without knowing who."""
        basis = (
            identity.id_number.upper() or normalize_phone(identity.phone) or _norm(identity.name)
        )
        key = self.ring.key(PSEUDONYM_VERSION, district_id, "pseudonym")
        mac = hmac.new(key, basis.encode(), hashlib.sha256)
        return "p_" + mac.hexdigest()[:32]

    def seal(self, district_id: str, case_id: str, identity: Identity) -> SealedIdentity:
        ring = self.ring
        version = ring.seal_version
        nonce = os.urandom(12)
        aad = f"{district_id}/{case_id}".encode()
        plaintext = json.dumps(asdict(identity), ensure_ascii=False).encode()
        ct = AESGCM(ring.key(version, district_id, "identity")).encrypt(nonce, plaintext, aad)
        return SealedIdentity(nonce=nonce, ciphertext=ct, key_version=version)

    def open(self, district_id: str, case_id: str, sealed: SealedIdentity) -> Identity:
        """The identity; ``UnknownKeyVersion`` when the ring lacks the version
        that sealed it, ``InvalidTag`` when the record does not belong to
        this district and case (or the key of its version changed)."""
        if sealed.key_version not in self.ring.versions:
            self._maybe_reload(force=True)
        aad = f"{district_id}/{case_id}".encode()
        key = self._ring.key(sealed.key_version, district_id, "identity")
        pt = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad)
        return Identity(**json.loads(pt))

    def reseal(self, district_id: str, case_id: str, sealed: SealedIdentity) -> SealedIdentity:
        """The same identity sealed with the sealing version (a fresh nonce)."""
        return self.seal(district_id, case_id, self.open(district_id, case_id, sealed))


def normalize_phone(s: str) -> str:
    """Digits only, without China's country code, so "+86 138 0013 8000" and
    "13800138000" are one number (and one pseudonym)."""
    digits = "".join(ch for ch in s if ch.isdigit())
    if s.strip().startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
        digits = digits[2:]
    return digits


def _norm(s: str) -> str:
    return unicodedata.normalize("NFKC", s).strip()
