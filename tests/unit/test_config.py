"""Settings refuse malformed keys at start, naming the variable."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from xinfang.core.config import Settings


def b64(n: int) -> str:
    return base64.b64encode(b"k" * n).decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("identity_key", "not base64!", "XINFANG_IDENTITY_KEY must be base64"),
        ("identity_key", b64(31), "XINFANG_IDENTITY_KEY must decode to 32 bytes"),
        ("identity_key", b64(48), "XINFANG_IDENTITY_KEY must decode to 32 bytes"),
        ("auth_key", "not base64!", "XINFANG_AUTH_KEY must be base64"),
        ("auth_key", b64(16), "XINFANG_AUTH_KEY must decode to at least 32 bytes"),
    ],
)
def test_a_malformed_key_is_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_good_keys_are_decoded() -> None:
    s = Settings(identity_key=b64(32), auth_key=b64(64))
    assert s.identity_key_bytes == b"k" * 32
    assert s.auth_key_bytes == b"k" * 64


def test_a_missing_key_is_refused_when_it_is_needed() -> None:
    s = Settings(auth_key=None)
    with pytest.raises(RuntimeError, match="XINFANG_AUTH_KEY is not set"):
        _ = s.auth_key_bytes
