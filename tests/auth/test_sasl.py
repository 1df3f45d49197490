"""SASL PLAIN and LOGIN: good exchanges, malformed input, and fuzzing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.cred.credentials import UsernamePassword

from twisted_mail_stack.auth.sasl import (
    Challenge,
    LoginMechanism,
    PlainMechanism,
    SASLMechanism,
    create_mechanism,
)
from twisted_mail_stack.errors import SASLError


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def creds(result: object) -> tuple[bytes, bytes]:
    assert isinstance(result, UsernamePassword)
    return result.username, result.password


@pytest.mark.parametrize(
    "message",
    [b"\0alice@example.org\0s3cret", b"alice@example.org\0alice@example.org\0s3cret"],
)
def test_plain_initial_response(message: bytes) -> None:
    assert creds(PlainMechanism().start(b64(message))) == (b"alice@example.org", b"s3cret")


def test_plain_authzid_differing_only_in_case() -> None:
    result = PlainMechanism().start(b64(b"Alice@Example.org\0alice@example.org\0pw"))
    assert creds(result) == (b"alice@example.org", b"pw")


def test_plain_without_initial_response() -> None:
    mech = PlainMechanism()
    challenge = mech.start()
    assert challenge == Challenge(b"") and challenge.encoded == b""
    result = mech.receive(b64(b"\0caf\xc3\xa9@example.org\0p\xc3\xa4ss") + b"\r\n")
    assert creds(result) == ("café@example.org".encode(), "päss".encode())
    with pytest.raises(RuntimeError):
        mech.receive(b"")


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "authzid NUL authcid NUL password"),
        (b"alice\0pw", "authzid NUL authcid NUL password"),
        (b"\0alice\0pw\0", "authzid NUL authcid NUL password"),
        (b"\0\0pw", "must not be empty"),
        (b"\0alice\0", "must not be empty"),
        (b"\0al\xffice\0pw", "not valid UTF-8"),
        (b"\0alice\0p\xc3", "not valid UTF-8"),
        (b"bob\0alice\0pw", "authorization identity differs"),
    ],
)
def test_plain_malformed(message: bytes, problem: str) -> None:
    with pytest.raises(SASLError, match=problem):
        PlainMechanism().start(b64(message))


@pytest.mark.parametrize("line", [b"not base64!", b"AAA", b"AA=A", "é".encode()])
def test_bad_base64(line: bytes) -> None:
    with pytest.raises(SASLError, match="not valid base64"):
        PlainMechanism().start(line)
    mech = LoginMechanism()
    mech.start()
    with pytest.raises(SASLError, match="not valid base64"):
        mech.receive(line)


def test_empty_initial_response_is_equals_sign() -> None:
    # RFC 4954 4: "=" is an empty initial response; for PLAIN that is malformed.
    with pytest.raises(SASLError, match="authzid NUL authcid"):
        PlainMechanism().start(b"=")


def test_login_exchange() -> None:
    mech = LoginMechanism()
    assert mech.start() == Challenge(b"Username:")
    step = mech.receive(b64(b"alice@example.org"))
    assert isinstance(step, Challenge) and step.encoded == b"UGFzc3dvcmQ6"
    assert creds(mech.receive(b64(b"s3cret"))) == (b"alice@example.org", b"s3cret")


def test_login_with_initial_user_name() -> None:
    mech = LoginMechanism()
    assert mech.start(b64(b"alice@example.org")) == Challenge(b"Password:")
    assert creds(mech.receive(b64(b"pw"))) == (b"alice@example.org", b"pw")


@pytest.mark.parametrize(
    ("user", "password", "problem"),
    [
        (b"", b"pw", "user name must not be empty"),
        (b"a\0b", b"pw", "user name contains NUL"),
        (b"\xff", b"pw", "user name is not valid UTF-8"),
        (b"alice", b"", "password must not be empty"),
        (b"alice", b"p\0w", "password contains NUL"),
        (b"alice", b"\xc3(", "password is not valid UTF-8"),
    ],
)
def test_login_malformed(user: bytes, password: bytes, problem: str) -> None:
    mech = LoginMechanism()
    mech.start()
    with pytest.raises(SASLError, match=problem):
        mech.receive(b64(user))
        mech.receive(b64(password))


def test_error_ends_the_exchange() -> None:
    mech = LoginMechanism()
    mech.start()
    with pytest.raises(SASLError):
        mech.receive(b"!!")
    with pytest.raises(RuntimeError):
        mech.receive(b64(b"alice"))


def test_state_misuse() -> None:
    mech = PlainMechanism()
    with pytest.raises(RuntimeError):
        mech.receive(b"")
    mech.start()
    with pytest.raises(RuntimeError):
        mech.start()


def test_registry() -> None:
    assert isinstance(create_mechanism("plain"), PlainMechanism)
    assert isinstance(create_mechanism("LOGIN"), LoginMechanism)
    assert create_mechanism("CRAM-MD5") is None
    assert create_mechanism("") is None


def run(mech: SASLMechanism, initial: bytes | None, lines: list[bytes]) -> None:
    try:
        step = mech.start(initial)
        for line in lines:
            if isinstance(step, UsernamePassword):
                break
            step = mech.receive(line)
    except SASLError:
        pass


lines = st.one_of(st.binary(max_size=64), st.binary(max_size=64).map(base64.b64encode))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([PlainMechanism, LoginMechanism]),
    st.one_of(st.none(), lines),
    st.lists(lines, max_size=3),
)
def test_fuzz_only_sasl_errors(
    mechanism: type[SASLMechanism], initial: bytes | None, rest: list[bytes]
) -> None:
    run(mechanism(), initial, rest)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_fuzz_plain_round_trip(authzid: str, authcid: str, password: str) -> None:
    message = "\0".join([authzid, authcid, password]).encode("utf-8", "surrogatepass")
    try:
        result = PlainMechanism().start(b64(message))
    except SASLError:
        return
    assert creds(result) == (authcid.encode(), password.encode())
