"""Petitioner identity: encrypted at rest, pseudonymous everywhere else.

Arts. 30 and 46 of the regulations forbid passing a petitioner's details to
those complained about, so the identity never leaves intake's store in clear.
Each district has its own keys, derived from one master key with HKDF, so a
leaked district key exposes one district and pseudonyms do not link people
across districts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import unicodedata
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Identity", "IdentityVault", "SealedIdentity", "normalize_phone"]


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


class IdentityVault:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._master = master_key
        self._cache: dict[tuple[str, str], bytes] = {}

    def _key(self, district_id: str, purpose: str) -> bytes:
        k = (district_id, purpose)
        if k not in self._cache:
            self._cache[k] = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=f"xinfang/{purpose}/v1/{district_id}".encode(),
            ).derive(self._master)
        return self._cache[k]

    def pseudonym(self, district_id: str, identity: Identity) -> str:
        """Stable per district: the same person gets the same reference, so
        first/repeat petitions can be told apart without knowing who."""
        basis = (
            identity.id_number.upper() or normalize_phone(identity.phone) or _norm(identity.name)
        )
        mac = hmac.new(self._key(district_id, "pseudonym"), basis.encode(), hashlib.sha256)
        return "p_" + mac.hexdigest()[:32]

    def seal(self, district_id: str, case_id: str, identity: Identity) -> SealedIdentity:
        nonce = os.urandom(12)
        aad = f"{district_id}/{case_id}".encode()
        plaintext = json.dumps(asdict(identity), ensure_ascii=False).encode()
        ct = AESGCM(self._key(district_id, "identity")).encrypt(nonce, plaintext, aad)
        return SealedIdentity(nonce=nonce, ciphertext=ct)

    def open(self, district_id: str, case_id: str, sealed: SealedIdentity) -> Identity:
        aad = f"{district_id}/{case_id}".encode()
        pt = AESGCM(self._key(district_id, "identity")).decrypt(
            sealed.nonce, sealed.ciphertext, aad
        )
        return Identity(**json.loads(pt))


def normalize_phone(s: str) -> str:
    """Digits only, without China's country code, so "+86 138 0013 8000" and
    "13800138000" are one number (and one pseudonym)."""
    digits = "".join(ch for ch in s if ch.isdigit())
    if s.strip().startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
        digits = digits[2:]
    return digits


def _norm(s: str) -> str:
    return unicodedata.normalize("NFKC", s).strip()
