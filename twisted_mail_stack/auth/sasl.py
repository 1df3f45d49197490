"""
Server side of the SASL password mechanisms PLAIN (RFC 4616) and LOGIN, without I/O.

The same machines serve SMTP AUTH (RFC 4954), POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE
(RFC 3501 6.2.2). The protocol feeds each client line (base64, CRLF removed) in and gets either
a L{Challenge} to send (base64 after C{334 } or C{+ }) or the finished credentials. A client's
C{*} cancel (RFC 4422 3.5) is the protocol's to handle before feeding the line. Malformed input
raises L{SASLError} only.
"""

from __future__ import annotations

import base64
import binascii
from typing import ClassVar

from attrs import frozen
from twisted.cred.credentials import UsernamePassword

from ..errors import SASLError

__all__ = [
    "CANCEL",
    "Challenge",
    "SASLMechanism",
    "PlainMechanism",
    "LoginMechanism",
    "MECHANISMS",
    "create_mechanism",
]

#: The line a client sends to abort an exchange.
CANCEL = b"*"


@frozen
class Challenge:
    """Server data to send to the client; L{encoded} is the base64 for the wire."""

    data: bytes

    @property
    def encoded(self) -> bytes:
        return base64.b64encode(self.data)


def _decode_base64(line: bytes) -> bytes:
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SASLError("response is not valid base64") from None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SASLError(f"{what} is not valid UTF-8") from None


class SASLMechanism:
    """One exchange of one mechanism: L{start} once, then L{receive} after each challenge."""

    #: The mechanism's name as advertised.
    name: ClassVar[str]
    #: Whether the password travels in the clear (see L{twisted_mail_stack.auth.policy}).
    plaintext: ClassVar[bool] = True

    def __init__(self) -> None:
        self._started = False
        self._done = False

    def start(self, initial: bytes | None = None) -> Challenge | UsernamePassword:
        """
        Begin, with the client's initial response if the command carried one.

        An initial response of C{=} stands for an empty one (RFC 4954 4, RFC 4959 3,
        RFC 5034 4).
        """
        if self._started:
            raise RuntimeError("exchange already started")
        self._started = True
        if initial is None:
            return self._first_challenge()
        return self._advance(initial)

    def receive(self, line: bytes) -> Challenge | UsernamePassword:
        """
        Feed the client's answer to the last challenge.

        Raises L{SASLError} for a malformed answer; that ends the exchange (the protocol
        reports the error and the client starts over).
        """
        if not self._started or self._done:
            raise RuntimeError("no challenge is outstanding")
        return self._advance(line)

    def _advance(self, line: bytes) -> Challenge | UsernamePassword:
        # An error ends the exchange too: the client must start over.
        self._done = True
        line = line.strip()
        result = self._step(b"" if line == b"=" else _decode_base64(line))
        self._done = isinstance(result, UsernamePassword)
        return result

    def _first_challenge(self) -> Challenge:
        raise NotImplementedError

    def _step(self, data: bytes) -> Challenge | UsernamePassword:
        raise NotImplementedError


class PlainMechanism(SASLMechanism):
    """RFC 4616: one message C{authzid NUL authcid NUL passwd}."""

    name = "PLAIN"

    def _first_challenge(self) -> Challenge:
        return Challenge(b"")  # RFC 4616 2: the server's empty challenge

    def _step(self, data: bytes) -> UsernamePassword:
        parts = data.split(b"\0")
        if len(parts) != 3:
            raise SASLError("PLAIN message must be authzid NUL authcid NUL password")
        authzid, authcid, passwd = (_utf8(p, "PLAIN message") for p in parts)
        if not authcid or not passwd:
            raise SASLError("PLAIN user name and password must not be empty")
        # We offer no proxy authorisation: an authzid, if given, must name the same user.
        # Addresses are compared without case, as account names are.
        if authzid and authzid.casefold() != authcid.casefold():
            raise SASLError("PLAIN authorization identity differs from the user name")
        return UsernamePassword(authcid.encode("utf-8"), passwd.encode("utf-8"))


class LoginMechanism(SASLMechanism):
    """
    The obsolete but widespread LOGIN mechanism (draft-murchison-sasl-login): the server asks
    C{Username:} then C{Password:}. An initial response, if any, is the user name.
    """

    name = "LOGIN"

    def __init__(self) -> None:
        super().__init__()
        self._username: bytes | None = None

    def _first_challenge(self) -> Challenge:
        return Challenge(b"Username:")

    def _step(self, data: bytes) -> Challenge | UsernamePassword:
        what = "LOGIN user name" if self._username is None else "LOGIN password"
        if not data:
            raise SASLError(f"{what} must not be empty")
        if b"\0" in data:
            raise SASLError(f"{what} contains NUL")
        _utf8(data, what)
        if self._username is None:
            self._username = data
            return Challenge(b"Password:")
        return UsernamePassword(self._username, data)


#: Every mechanism by name. All are plaintext: advertise them only where policy allows.
MECHANISMS: dict[str, type[SASLMechanism]] = {m.name: m for m in (PlainMechanism, LoginMechanism)}


def create_mechanism(name: str) -> SASLMechanism | None:
    """A new exchange for the mechanism C{name} (any case), or None if we lack it."""
    cls = MECHANISMS.get(name.upper())
    return cls() if cls is not None else None
