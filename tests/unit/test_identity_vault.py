"""Petitioner identity: sealed per district and case, pseudonymous per district."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from xinfang.core.crypto import Identity, IdentityVault

MASTER = bytes(range(32))
PERSON = Identity(
    name="张三", id_number="11010519491231002X", phone="13800138000", address="东村1号"
)


@pytest.fixture
def vault() -> IdentityVault:
    return IdentityVault(MASTER)


def test_seal_then_open_returns_the_identity(vault: IdentityVault) -> None:
    sealed = vault.seal("d1", "case-1", PERSON)
    assert vault.open("d1", "case-1", sealed) == PERSON


def test_another_vault_with_the_same_master_key_opens_it() -> None:
    sealed = IdentityVault(MASTER).seal("d1", "case-1", PERSON)
    assert IdentityVault(MASTER).open("d1", "case-1", sealed) == PERSON


def test_ciphertext_holds_no_identity_bytes(vault: IdentityVault) -> None:
    ct = vault.seal("d1", "case-1", PERSON).ciphertext
    for secret in (PERSON.name, PERSON.id_number, PERSON.phone, PERSON.address):
        assert secret.encode() not in ct
        assert secret.encode("unicode_escape") not in ct


def test_each_seal_uses_a_fresh_nonce(vault: IdentityVault) -> None:
    one = vault.seal("d1", "case-1", PERSON)
    two = vault.seal("d1", "case-1", PERSON)
    assert len(one.nonce) == 12
    assert one.nonce != two.nonce
    assert one.ciphertext != two.ciphertext


def test_open_with_another_district_fails(vault: IdentityVault) -> None:
    sealed = vault.seal("d1", "case-1", PERSON)
    with pytest.raises(InvalidTag):
        vault.open("d2", "case-1", sealed)


def test_open_with_another_case_fails(vault: IdentityVault) -> None:
    sealed = vault.seal("d1", "case-1", PERSON)
    with pytest.raises(InvalidTag):
        vault.open("d1", "case-2", sealed)


def test_open_with_another_master_key_fails(vault: IdentityVault) -> None:
    sealed = vault.seal("d1", "case-1", PERSON)
    with pytest.raises(InvalidTag):
        IdentityVault(bytes(32)).open("d1", "case-1", sealed)


def test_pseudonym_is_stable_for_the_same_person_in_a_district() -> None:
    one = IdentityVault(MASTER).pseudonym("d1", PERSON)
    two = IdentityVault(MASTER).pseudonym("d1", Identity(name="张三", id_number=PERSON.id_number))
    assert one == two
    assert one.startswith("p_")
    assert len(one) == 2 + 32


def test_pseudonym_ignores_case_of_id_check_character(vault: IdentityVault) -> None:
    upper = vault.pseudonym("d1", Identity(name="张三", id_number="11010519491231002X"))
    lower = vault.pseudonym("d1", Identity(name="张三", id_number="11010519491231002x"))
    assert upper == lower


def test_pseudonym_differs_across_districts(vault: IdentityVault) -> None:
    assert vault.pseudonym("d1", PERSON) != vault.pseudonym("d2", PERSON)


def test_pseudonym_differs_for_different_people(vault: IdentityVault) -> None:
    other = Identity(name="张三", id_number="440304199001010019")
    assert vault.pseudonym("d1", PERSON) != vault.pseudonym("d1", other)


def test_pseudonym_does_not_contain_the_id_number(vault: IdentityVault) -> None:
    assert PERSON.id_number.lower() not in vault.pseudonym("d1", PERSON)


def test_pseudonym_by_phone_ignores_spaces_and_dashes(vault: IdentityVault) -> None:
    plain = vault.pseudonym("d1", Identity(name="张三", phone="01012345678"))
    dashed = vault.pseudonym("d1", Identity(name="张三", phone="010-1234 5678"))
    assert plain == dashed


def test_pseudonym_by_phone_ignores_country_code(vault: IdentityVault) -> None:
    # intake accepts both spellings of one mobile number (valid_phone strips
    # "+86"), so both must lead to the same petitioner reference
    plain = vault.pseudonym("d1", Identity(name="张三", phone="13800138000"))
    international = vault.pseudonym("d1", Identity(name="张三", phone="+86 138 0013 8000"))
    assert plain == international


def test_repr_hides_every_field() -> None:
    text = repr(PERSON) + str(PERSON) + f"{PERSON}"
    for secret in (PERSON.name, PERSON.id_number, PERSON.phone, PERSON.address):
        assert secret not in text
    assert "redacted" in text


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        IdentityVault(bytes(length))
