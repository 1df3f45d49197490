"""scrypt password hashes: format, round trip, malformed input, parameter upgrades."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_mail_stack.auth import passwords
from twisted_mail_stack.auth.passwords import (
    DUMMY_HASH,
    hash_password,
    needs_rehash,
    verify_dummy,
    verify_password,
)


def test_round_trip_and_format() -> None:
    encoded = hash_password("correct horse")
    assert encoded.startswith("$scrypt$ln=14,r=8,p=1$")
    _, _, _, salt, key = encoded.split("$")
    assert len(base64.b64decode(salt + "==")) == 16
    assert len(base64.b64decode(key + "=")) == 32
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert not verify_password("", encoded)
    assert not needs_rehash(encoded)


def test_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_unicode_normalised_nfc(cheap_hashes: None) -> None:
    # "é" precomposed (NFC) and as e + combining accent (NFD) are the same password.
    encoded = hash_password("caf\u00e9")
    assert verify_password("cafe\u0301", encoded)


def test_old_parameters_still_verify(cheap_hashes: None) -> None:
    weak = hash_password("pw")
    assert weak.startswith("$scrypt$ln=4,")
    passwords._LN = 14  # the parameters are raised; monkeypatch restores them
    assert needs_rehash(weak)
    assert verify_password("pw", weak)


def test_dummy_hash_is_valid_and_matches_nothing_known() -> None:
    assert not needs_rehash(DUMMY_HASH)
    assert not verify_dummy("anything")
    assert not verify_password("", DUMMY_HASH)


GOOD = "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "$scrypt$",
        "$bcrypt$ln=4,r=8,p=1$c2FsdA$" + "A" * 43,
        GOOD.replace("ln=4", "ln=40"),  # would need terabytes: refused, not attempted
        GOOD.replace("ln=4", "ln=-1"),
        GOOD.replace("ln=4", "ln=x"),
        GOOD.replace("ln=4,", ""),
        GOOD.replace("p=1", "p=1,p=1"),
        GOOD.replace("p=1", "p=1,q=2"),
        GOOD.replace("r=8", "r=\u0668"),  # an Arabic-Indic digit
        GOOD.replace("c2FsdHNhbHRzYWx0c2FsdA", "!!!"),
        GOOD.replace("c2FsdHNhbHRzYWx0c2FsdA", ""),
        GOOD[:-30],  # key too short
        GOOD + "$extra",
        "$scrypt$ln=" + "9" * 5000 + ",r=8,p=1$c2FsdA$" + "A" * 43,
    ],
)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert verify_password("pw", encoded) is False
    assert needs_rehash(encoded)


def test_good_shape_wrong_key() -> None:
    assert verify_password("pw", GOOD) is False


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_verify_never_raises(password: str, encoded: str) -> None:
    assert verify_password(password, encoded) in (True, False)


def test_lone_surrogate_password_hashes(cheap_hashes: None) -> None:
    encoded = hash_password("\udc80x")
    assert verify_password("\udc80x", encoded)
    assert not verify_password("x", encoded)
