"""The identity key ring: rotation without downtime, and re-sealing old records."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bson
import pytest
from bson.binary import Binary
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from xinfang.cli import main
from xinfang.core.config import Settings
from xinfang.core.crypto import (
    Identity,
    IdentityVault,
    KeyRing,
    SealedIdentity,
    UnknownKeyVersion,
    ring_of,
)
from xinfang.core.outbox import POINTERS
from xinfang.core.store import MemoryStore
from xinfang.intake.keys import CASES, reseal_store

K1, K2, K3 = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))
PERSON = Identity(name="李四", id_number="11010519491231002X", phone="13800138000")


def b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


def ring_json(keys: dict[int, bytes], seal: int | None = None) -> str:
    doc: dict[str, object] = {"keys": {str(v): b64(k) for v, k in keys.items()}}
    if seal is not None:
        doc["seal"] = seal
    return json.dumps(doc)


def test_the_newest_version_seals_and_every_version_opens() -> None:
    old = IdentityVault(KeyRing({1: K1}))
    sealed_v1 = old.seal("d1", "c1", PERSON)
    assert sealed_v1.key_version == 1
    rotated = IdentityVault(KeyRing({1: K1, 2: K2}))
    sealed_v2 = rotated.seal("d1", "c2", PERSON)
    assert sealed_v2.key_version == 2
    assert rotated.open("d1", "c1", sealed_v1) == PERSON
    assert rotated.open("d1", "c2", sealed_v2) == PERSON
    # the new version really is another key: the old ring cannot open it
    with pytest.raises(UnknownKeyVersion, match="key version 2, which this intake does not hold"):
        old.open("d1", "c2", sealed_v2)


def test_a_version_under_another_key_does_not_open() -> None:
    sealed = IdentityVault(KeyRing({1: K1, 2: K2})).seal("d1", "c1", PERSON)
    with pytest.raises(InvalidTag):
        IdentityVault(KeyRing({1: K1, 2: K3})).open("d1", "c1", sealed)


def test_a_pinned_seal_version_seals_with_the_old_key_while_the_new_one_rolls_out() -> None:
    pinned = IdentityVault(KeyRing({1: K1, 2: K2}, seal_version=1))
    assert pinned.seal("d1", "c1", PERSON).key_version == 1


def test_pseudonyms_survive_a_rotation() -> None:
    before = IdentityVault(KeyRing({1: K1})).pseudonym("d1", PERSON)
    assert IdentityVault(KeyRing({1: K1, 2: K2})).pseudonym("d1", PERSON) == before


def test_version_one_must_stay_in_the_ring() -> None:
    with pytest.raises(ValueError, match="version 1 must stay in the ring"):
        KeyRing({2: K2})


def test_the_ring_never_prints_a_key() -> None:
    text = repr(KeyRing({1: K1, 2: K2}))
    assert b64(K1) not in text and K1.hex() not in text
    assert text == "KeyRing(versions=[1, 2], seal_version=2)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "XINFANG_IDENTITY_KEYS: not JSON"),
        ('{"1": "x"}', "XINFANG_IDENTITY_KEYS: expected"),
        ('{"keys": {"one": "AA=="}}', "key version 'one' is not an integer"),
        ('{"keys": {"1": "not base64!"}}', "key version 1 is not base64"),
        ('{"keys": {"1": "' + b64(b"k" * 16) + '"}}', "key version 1 must decode to 32 bytes"),
        (ring_json({1: K1}, seal=-1), "seal must be a key version"),
    ],
)
def test_a_malformed_ring_is_refused_at_start(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(identity_keys=value)


def test_the_single_key_is_version_one_of_the_ring() -> None:
    s = Settings(identity_key=b64(K1), identity_keys=ring_json({2: K2}))
    ring = ring_of(s)
    assert ring.versions == {1, 2} and ring.seal_version == 2
    sealed = IdentityVault(KeyRing({1: K1})).seal("d1", "c1", PERSON)
    assert IdentityVault(ring).open("d1", "c1", sealed) == PERSON


def test_a_version_given_twice_with_two_keys_is_refused() -> None:
    s = Settings(identity_key=b64(K1), identity_keys=ring_json({1: K3, 2: K2}))
    with pytest.raises(ValueError, match="version 1 differs between XINFANG_IDENTITY_KEY and"):
        ring_of(s)


def test_a_seal_version_outside_the_ring_is_refused() -> None:
    s = Settings(identity_key=None, identity_keys=ring_json({1: K1}, seal=3))
    with pytest.raises(ValueError, match="seal version 3 is not in the ring"):
        ring_of(s)


def test_no_key_at_all_is_refused() -> None:
    with pytest.raises(RuntimeError, match="XINFANG_IDENTITY_KEY"):
        ring_of(Settings(identity_key=None, identity_keys=None))


def test_a_ring_file_is_read_again_while_running(tmp_path: Path) -> None:
    f = tmp_path / "ring.json"
    f.write_text(ring_json({1: K1}))
    s = Settings(identity_key=None, identity_keys_file=str(f), identity_keys_reload_seconds=60)
    vault = IdentityVault.from_settings(s)
    v1 = vault.seal("d1", "c1", PERSON)
    assert v1.key_version == 1
    f.write_text(ring_json({1: K1, 2: K2}))
    # a record of the new version reloads the ring at once (another replica
    # may have sealed it before this one's next check)
    v2 = IdentityVault(KeyRing({1: K1, 2: K2})).seal("d1", "c2", PERSON)
    assert vault.open("d1", "c2", v2) == PERSON
    assert vault.seal("d1", "c3", PERSON).key_version == 2
    assert vault.open("d1", "c1", v1) == PERSON
    # a broken file keeps the ring in use
    f.write_text("{broken")
    assert vault.open("d1", "c2", v2) == PERSON
    assert vault.seal_version == 2


def test_the_ring_file_is_checked_on_use_after_the_interval(tmp_path: Path) -> None:
    f = tmp_path / "ring.json"
    f.write_text(ring_json({1: K1}))
    s = Settings(identity_key=None, identity_keys_file=str(f), identity_keys_reload_seconds=0.01)
    vault = IdentityVault.from_settings(s)
    f.write_text(ring_json({1: K1, 2: K2}))
    time.sleep(0.02)
    assert vault.seal("d1", "c1", PERSON).key_version == 2


def _doc(case_id: str, district_id: str, sealed: SealedIdentity) -> dict[str, object]:
    return {
        "_id": case_id,
        "district_id": district_id,
        "identity": {
            "nonce": Binary(sealed.nonce),
            "ct": Binary(sealed.ciphertext),
            "kv": sealed.key_version,
        },
    }


def _open(store: MemoryStore, vault: IdentityVault, case_id: str) -> tuple[int, Identity]:
    raw = store.data[CASES][case_id]
    doc = bson.decode(raw)
    i = doc["identity"]
    return i["kv"], vault.open(
        doc["district_id"], case_id, SealedIdentity(i["nonce"], i["ct"], i["kv"])
    )


async def _ids(ids: list[list[str]]) -> AsyncIterator[list[str]]:
    for chunk in ids:
        yield chunk


async def test_reseal_moves_old_records_to_the_new_version_idempotently() -> None:
    store = MemoryStore()
    old = IdentityVault(KeyRing({1: K1}))
    new = IdentityVault(KeyRing({1: K1, 2: K2}))
    people = {f"c{i}": Identity(name=f"人{i}", phone=f"1380013{i:04d}") for i in range(250)}
    for n, (case_id, person) in enumerate(people.items()):
        vault = old if n < 200 else new  # the last 50 registered after the rotation
        district = "d1" if n % 2 else "d2"
        await store.insert(CASES, _doc(case_id, district, vault.seal(district, case_id, person)))
    ids = list(people)
    # the log names each case once per registration; a retry names it twice
    log = [ids[:120], ids[100:250]]
    pages: list[int] = []  # the updates of each write the reseal asks for
    real_write = store.write

    async def write(coll: str, updates: Any) -> None:
        pages.append(len(updates))
        await real_write(coll, updates)

    store.write = write  # type: ignore[method-assign]
    res = await reseal_store(store, new, lambda: _ids(log))
    assert (res.checked, res.resealed, res.left, res.failed) == (250, 200, 0, [])
    assert res.by_version == {2: 250}
    # pages of at most 99: exact-id reads and one bulk write per page (the
    # adapter splits it into the server's bulks)
    assert len(pages) == 3 and sum(pages) == 200 and max(pages) <= 99
    for case_id, person in people.items():
        assert _open(store, new, case_id) == (2, person)
    again = await reseal_store(store, new, lambda: _ids(log))
    assert (again.checked, again.resealed) == (250, 0)
    assert len(pages) == 3


async def test_reseal_by_district_and_dry_run_and_never_downgrades() -> None:
    store = MemoryStore()
    v1 = IdentityVault(KeyRing({1: K1}))
    v3 = IdentityVault(KeyRing({1: K1, 2: K2, 3: K3}))
    await store.insert(CASES, _doc("a", "d1", v1.seal("d1", "a", PERSON)))
    await store.insert(CASES, _doc("b", "d2", v1.seal("d2", "b", PERSON)))
    await store.insert(CASES, _doc("c", "d1", v3.seal("d1", "c", PERSON)))
    ring2 = IdentityVault(KeyRing({1: K1, 2: K2}))
    dry = await reseal_store(store, ring2, lambda: _ids([["a", "b", "c"]]), dry_run=True)
    assert (dry.resealed, dry.left, dict(dry.by_version)) == (0, 2, {1: 2, 3: 1})
    res = await reseal_store(
        store, ring2, lambda: _ids([["a", "b", "c"]]), districts=frozenset({"d1"})
    )
    assert (res.checked, res.resealed) == (2, 1)
    assert _open(store, v3, "a")[0] == 2
    assert _open(store, v3, "b")[0] == 1  # another district: untouched
    assert _open(store, v3, "c")[0] == 3  # a newer ring's record: left alone


async def test_reseal_finds_cases_only_an_outbox_pointer_names() -> None:
    store = MemoryStore()
    v1 = IdentityVault(KeyRing({1: K1}))
    await store.insert(CASES, _doc("lost", "d1", v1.seal("d1", "lost", PERSON)))
    await store.insert(POINTERS, {"_id": "cases:lost:t", "coll": CASES, "doc": "lost"})
    res = await reseal_store(store, IdentityVault(KeyRing({1: K1, 2: K2})), lambda: _ids([]))
    assert res.resealed == 1


async def test_a_record_the_ring_cannot_open_is_reported_not_fatal() -> None:
    store = MemoryStore()
    await store.insert(
        CASES, _doc("x", "d1", IdentityVault(KeyRing({1: K3})).seal("d1", "x", PERSON))
    )
    await store.insert(
        CASES, _doc("y", "d1", IdentityVault(KeyRing({1: K1})).seal("d1", "y", PERSON))
    )
    res = await reseal_store(
        store, IdentityVault(KeyRing({1: K1, 2: K2})), lambda: _ids([["x", "y"]])
    )
    assert (res.resealed, res.failed, res.left) == (1, ["x"], 1)


def test_a_refused_key_or_ring_is_not_echoed_in_the_error() -> None:
    bad_ring = json.dumps({"keys": {"1": b64(K1), "2": b64(b"k" * 16)}})
    for settings in ({"identity_keys": bad_ring}, {"identity_key": b64(b"k" * 16)}):
        with pytest.raises(ValidationError) as e:
            Settings(**settings)  # type: ignore[arg-type]
        assert b64(K1) not in str(e.value) and b64(b"k" * 16) not in str(e.value)


def test_reseal_without_a_key_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("XINFANG_IDENTITY_KEY", "XINFANG_IDENTITY_KEYS", "XINFANG_IDENTITY_KEYS_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["keys", "reseal", "--lang", "en"]) == 2
    assert "XINFANG_IDENTITY_KEY" in capsys.readouterr().err
