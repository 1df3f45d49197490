"""
The POP3 wire format without I/O: command parsing, reply formatting and the multi-line message
encoder (RFC 1939, RFC 2449 capabilities and response codes, RFC 3206 codes, RFC 5034 AUTH).
Imports nothing from Twisted.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen

from ..crlf import CRLFNormaliser

__all__ = [
    "Command",
    "CommandError",
    "MessageEncoder",
    "encode_whole",
    "parse_command",
    "parse_number",
    "ok",
    "err",
    "multiline",
    "challenge",
    "TERMINATOR",
]

CRLF = b"\r\n"
#: The line that ends every multi-line response (RFC 1939 3).
TERMINATOR = b".\r\n"

# RFC 2449 8 (extended response codes) and RFC 3206.
IN_USE = "IN-USE"
AUTH = "AUTH"
SYS_TEMP = "SYS/TEMP"
SYS_PERM = "SYS/PERM"

#: Each verb with its least and most argument count. PASS takes the rest of the line as one
#: argument, spaces included (RFC 1939 7); AUTH's second argument is the initial response.
ARITY: dict[str, tuple[int, int]] = {
    "USER": (1, 1),
    "PASS": (1, 1),
    "AUTH": (0, 2),
    "STLS": (0, 0),
    "CAPA": (0, 0),
    "STAT": (0, 0),
    "LIST": (0, 1),
    "UIDL": (0, 1),
    "RETR": (1, 1),
    "TOP": (2, 2),
    "DELE": (1, 1),
    "NOOP": (0, 0),
    "RSET": (0, 0),
    "QUIT": (0, 0),
}

#: Longest number we parse: keeps int() cheap and far below any real maildrop.
_MAX_DIGITS = 10


class CommandError(Exception):
    """A client error answered with C{-ERR}; C{code} is the RFC 2449 response code, if any."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


@frozen
class Command:
    """One parsed command: the verb upper-cased, the arguments as sent."""

    verb: str
    args: tuple[bytes, ...] = ()


def parse_command(line: bytes) -> Command:
    """
    Parse one command line (without its line end). Keywords are case-insensitive
    (RFC 1939 3); raise L{CommandError} for an unknown verb or a wrong argument count.
    """
    word, space, rest = line.partition(b" ")
    try:
        verb = word.decode("ascii").upper()
    except UnicodeDecodeError:
        raise CommandError("unknown command") from None
    arity = ARITY.get(verb)
    if arity is None:
        raise CommandError("unknown command")
    if verb == "PASS":
        args: tuple[bytes, ...] = (rest,) if rest else ()
    else:
        args = tuple(rest.split())
    least, most = arity
    if not least <= len(args) <= most:
        raise CommandError(f"wrong number of arguments for {verb}")
    return Command(verb, args)


def parse_number(arg: bytes, *, zero: bool = False) -> int:
    """A message number (1 or more) or, with C{zero}, a line count; else L{CommandError}."""
    if not (arg.isdigit() and arg.isascii() and len(arg) <= _MAX_DIGITS):
        raise CommandError("invalid number")
    value = int(arg)
    if value == 0 and not zero:
        raise CommandError("invalid message number")
    return value


def _line(text: str) -> bytes:
    # Reply text never carries a line end or anything outside printable ASCII.
    return text.encode("ascii", "replace").replace(b"\r", b" ").replace(b"\n", b" ")


def ok(text: str = "") -> bytes:
    """A positive status line."""
    return b"+OK " + _line(text) + CRLF if text else b"+OK" + CRLF


def err(text: str, code: str | None = None) -> bytes:
    """A negative status line, with an RFC 2449 response code in brackets if given."""
    prefix = f"[{code}] " if code else ""
    return b"-ERR " + _line(prefix + text) + CRLF


def multiline(status: bytes, lines: Iterable[bytes]) -> bytes:
    """A positive status line, dot-stuffed C{lines}, and the terminator (RFC 1939 3)."""
    body = b"".join((b"." + line if line.startswith(b".") else line) + CRLF for line in lines)
    return status + body + TERMINATOR


def challenge(encoded: bytes) -> bytes:
    """A SASL server challenge: C{+}, a space and base64 (RFC 5034 4)."""
    return b"+ " + encoded + CRLF


class _TopLimit:
    """Pass the headers, the blank line and then C{lines} body lines (RFC 1939 7, TOP)."""

    def __init__(self, lines: int) -> None:
        self._left = lines
        self._in_body = False
        self._line_start = True
        self.complete = False

    def feed(self, data: bytes) -> bytes:
        """Cut C{data} (canonical CRLF text) where the wanted part ends."""
        pos = 0
        while not self.complete:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if pos < len(data):
                    self._line_start = False
                return data
            if self._in_body:
                self._left -= 1
            elif self._line_start and nl - pos <= 1:  # an empty line ends the headers
                self._in_body = True
            self._line_start = True
            pos = nl + 1
            if self._in_body and self._left <= 0:
                self.complete = True
                return data[:pos]
        return b""


class MessageEncoder:
    """
    A stored message, fed in chunks, as the body of a multi-line response: canonical CRLF line
    ends (see L{CRLFNormaliser}), dot-stuffed across chunk boundaries (RFC 1939 3), cut after
    C{body_lines} body lines for TOP, and terminated by L{end}.
    """

    def __init__(self, body_lines: int | None = None) -> None:
        self._normaliser = CRLFNormaliser()
        self._top = _TopLimit(body_lines) if body_lines is not None else None
        self._line_start = True

    @property
    def complete(self) -> bool:
        """True once TOP has all it wants: the rest of the message need not be read."""
        return self._top is not None and self._top.complete

    @property
    def size(self) -> int | None:
        """The message's canonical size, known after L{end} of a whole message (not TOP)."""
        return self._normaliser.count if self._top is None else None

    def feed(self, data: bytes) -> bytes:
        """Encode the next chunk of the stored message."""
        if self.complete:
            return b""
        data = self._normaliser.feed(data)
        if self._top is not None:
            data = self._top.feed(data)
        return self._stuff(data)

    def end(self) -> bytes:
        """The rest of the response: a last line end if the message lacks one, and the terminator."""
        tail = b"" if self.complete else self._normaliser.end()
        if not self._line_start and not tail:
            tail = CRLF  # a TOP cut never leaves a line open, but stay safe
        return self._stuff(tail) + TERMINATOR

    def _stuff(self, data: bytes) -> bytes:
        if not data:
            return data
        if b"\n." in data:
            data = data.replace(b"\n.", b"\n..")
        if self._line_start and data.startswith(b"."):
            data = b"." + data
        self._line_start = data.endswith(b"\n")
        return data


def encode_whole(message: bytes) -> tuple[bytes, int]:
    """
    A whole stored message as a multi-line response body (what L{MessageEncoder} gives, the
    terminator included) and its canonical size, in a few passes over the bytes: a message
    without CR (bare-LF storage) or already in CRLF form needs no line-by-line work.
    """
    if b"\r" not in message:
        data = message.replace(b"\n", b"\r\n")
        if data and not data.endswith(b"\n"):
            data += CRLF
    elif message.count(b"\n") == message.count(b"\r\n") == message.count(b"\r"):
        data = message if not message or message.endswith(b"\n") else message + CRLF
    else:
        encoder = MessageEncoder()
        body = encoder.feed(message) + encoder.end()
        assert encoder.size is not None
        return body, encoder.size
    size = len(data)
    if _dot_after_newline(data):
        data = data.replace(b"\n.", b"\n..")  # RFC 1939 3: byte-stuff lines starting with "."
    if data.startswith(b"."):
        data = b"." + data
    return data + TERMINATOR, size


#: Dots looked at one by one before L{_dot_after_newline} searches for the pair instead.
_DOTS_CHECKED = 8


def _dot_after_newline(data: bytes) -> bool:
    """
    C{b"\\n." in data}, faster for typical mail: CPython finds a single byte with memchr but
    a two-byte pattern about ten times slower, and most messages have few dots, so the first
    few are checked one by one before the search for the pair takes over.
    """
    i = data.find(b".", 1)
    for _ in range(_DOTS_CHECKED):
        if i < 0:
            return False
        if data[i - 1] == 0x0A:
            return True
        i = data.find(b".", i + 1)
    # Every dot before i was looked at, so a pair left starts at i - 1 or later.
    return i > 0 and data.find(b"\n.", i - 1) >= 0
