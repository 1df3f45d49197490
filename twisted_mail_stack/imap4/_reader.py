"""
The lexical layer of the IMAP command grammar (RFC 3501 9): atoms, numbers, quoted strings,
literals, astrings, list-mailboxes, flags and mailbox names over one L{RawCommand}.

A L{Syntax} exception is raised on the first error; the parser turns it into a typed error.
"""

from __future__ import annotations

from ..mutf7 import decode_mutf7
from ..values import INBOX
from ._framer import LiteralSpool, RawCommand

__all__ = ["Reader", "Syntax", "decode_mailbox"]


class Syntax(Exception):
    """A grammar error; C{code} is a response code such as C{BADCHARSET}, C{status} BAD or NO."""

    def __init__(self, text: str, code: str | None = None, status: str = "BAD") -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.status = status


def _chars(*ranges: tuple[int, int], minus: bytes = b"") -> frozenset[int]:
    out = {c for lo, hi in ranges for c in range(lo, hi + 1)}
    return frozenset(out - set(minus))


# RFC 3501 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
# resp-specials.
ATOM_CHARS = _chars((0x21, 0x7E), minus=b'(){%*"\\]')
ASTRING_CHARS = ATOM_CHARS | {ord("]")}
LIST_CHARS = ASTRING_CHARS | {ord("%"), ord("*")}
TAG_CHARS = ASTRING_CHARS - {ord("+")}
DIGITS = frozenset(b"0123456789")
#: Largest "number" of RFC 3501 9 (unsigned 32-bit); mod-sequences are 63-bit (RFC 7162 7).
MAX_NUMBER = 2**32 - 1
MAX_MODSEQ = 2**63 - 1


#: Prefix of a name that is not valid modified UTF-7 (see L{decode_mailbox}).
UNDECODABLE = "\x00"


def decode_mailbox(raw: bytes) -> str:
    """A mailbox name from the wire: modified UTF-7 (RFC 3501 5.1.3), INBOX case-insensitive."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise Syntax("mailbox name is not modified UTF-7 (8-bit octets)") from None
    if text.upper() == INBOX:
        return INBOX
    try:
        return decode_mutf7(text)
    except ValueError:
        # Still a well-formed astring: the command is not BAD, but no mailbox has this name.
        # The NUL makes every backend refuse it (interfaces: control characters are invalid),
        # so SELECT or CREATE get NO and a LIST pattern matches nothing (as Dovecot answers).
        return UNDECODABLE + text


class Reader:
    """A cursor over the alternating line texts and literals of one command."""

    def __init__(self, raw: RawCommand) -> None:
        self._parts = raw.parts
        self._binary = raw.binary
        self._spools = raw.spools
        self._index = 0
        self.text = raw.parts[0]
        self.pos = 0

    # -- position ---------------------------------------------------------------------

    def peek(self) -> int | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def at_literal(self) -> bool:
        return self.pos == len(self.text) and self._index + 1 < len(self._parts)

    def at_end(self) -> bool:
        return self.pos == len(self.text) and self._index + 1 >= len(self._parts)

    def end(self) -> None:
        if not self.at_end():
            raise Syntax("unexpected characters at end of command")

    def maybe(self, token: bytes) -> bool:
        """Consume C{token} (ASCII, case-insensitive) if it comes next."""
        n = len(token)
        if self.text[self.pos : self.pos + n].upper() == token.upper():
            self.pos += n
            return True
        return False

    def expect(self, token: bytes) -> None:
        if not self.maybe(token):
            raise Syntax(f"expected {token.decode()!r}")

    def sp(self) -> None:
        if not self.maybe(b" "):
            raise Syntax("expected a space")

    def maybe_sp(self) -> bool:
        """Consume a space if one follows; True if it did."""
        return self.maybe(b" ")

    # -- tokens -------------------------------------------------------------------------

    def take(self, allowed: frozenset[int], what: str) -> bytes:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] in allowed:
            self.pos += 1
        if self.pos == start:
            raise Syntax(f"expected {what}")
        return text[start : self.pos]

    def atom(self) -> bytes:
        return self.take(ATOM_CHARS, "an atom")

    def keyword(self) -> str:
        """An atom, upper-cased, as text."""
        return self.atom().decode("ascii").upper()

    def number(self, *, nonzero: bool = False, limit: int = MAX_NUMBER) -> int:
        digits = self.take(DIGITS, "a number")
        if len(digits) > 20 or int(digits) > limit:
            raise Syntax("number out of range")
        value = int(digits)
        if nonzero and value == 0:
            raise Syntax("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        text = self.text
        while True:
            if self.pos >= len(text):
                raise Syntax("unterminated quoted string")
            c = text[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5C:
                # RFC 3501 9: only quoted-specials may be escaped.
                if self.pos >= len(text) or text[self.pos] not in b'"\\':
                    raise Syntax("bad escape in quoted string")
                c = text[self.pos]
                self.pos += 1
            elif c == 0 or c in b"\r\n":
                raise Syntax("NUL, CR or LF in quoted string")
            out.append(c)

    def literal(self) -> bytes:
        data = self.large_literal()
        if isinstance(data, bytes):
            return data
        try:
            return data.read()  # a large literal where a small one was expected: bounded anyway
        except OSError:
            raise Syntax("cannot read the literal back", status="NO") from None

    def large_literal(self) -> bytes | LiteralSpool:
        """The next literal, as its spool if the framer spooled it (for APPEND's message)."""
        if not self.at_literal():
            raise Syntax("expected a literal")
        literal = self._index // 2
        spool = self._spools[literal] if literal < len(self._spools) else None
        data = self._parts[self._index + 1]
        self._index += 2
        self.text = self._parts[self._index]
        self.pos = 0
        return data if spool is None else spool

    def literal_is_binary(self) -> bool:
        """True if the literal that comes next was sent as literal8 (C{~{n}})."""
        return self.at_literal() and self._binary[self._index // 2]

    def string(self) -> bytes:
        if self.at_literal():
            if self.literal_is_binary():
                raise Syntax("literal8 is allowed only in APPEND")
            data = self.literal()
            if b"\x00" in data:
                raise Syntax("NUL in a literal")  # RFC 3501 9: literal is CHAR8, no NUL
            return data
        if self.peek() == 0x22:
            return self.quoted()
        raise Syntax("expected a string")

    def astring(self) -> bytes:
        if self.at_literal() or self.peek() == 0x22:
            return self.string()
        return self.take(ASTRING_CHARS, "an astring")

    def nstring(self) -> bytes | None:
        if self.maybe(b"NIL") and self.peek() not in ASTRING_CHARS:
            return None
        return self.string()

    def utf8(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Syntax("string is not valid UTF-8") from None

    def mailbox(self) -> str:
        return decode_mailbox(self.astring())

    def list_mailbox(self) -> str:
        if self.at_literal() or self.peek() == 0x22:
            raw = self.string()
        else:
            raw = self.take(LIST_CHARS, "a mailbox pattern")
        return decode_mailbox(raw)

    def flag(self) -> str:
        """RFC 3501 9 flag: C{\\atom} or a keyword atom."""
        if self.maybe(b"\\"):
            return "\\" + self.atom().decode("ascii")
        return self.atom().decode("ascii")

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        if not self.maybe(b")"):
            flags.append(self.flag())
            while not self.maybe(b")"):
                self.sp()
                flags.append(self.flag())
        return tuple(flags)

    def paren_list(self) -> bool:
        """Consume C{(} and return True, or return False if no list starts here."""
        return self.maybe(b"(")
