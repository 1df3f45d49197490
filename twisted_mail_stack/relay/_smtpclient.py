"""
The outbound ESMTP client, sans-IO: replies parsed from bytes, commands formatted to bytes,
the message body dot-stuffed, and the rules that decide what may be sent to which server.
No Twisted here; L{twisted_mail_stack.relay.client} drives it over a connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from attrs import field, frozen

from ..errors import PermanentDeliveryError
from ..values import Envelope, EnvelopeRecipient

__all__ = [
    "Reply",
    "ReplyParser",
    "SMTPProtocolError",
    "Extensions",
    "check_message",
    "mail_command",
    "rcpt_command",
    "DotStuffer",
    "encode_xtext",
]

_LINE = re.compile(rb"([2-5][0-9][0-9])([ -]?)(.*)")
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


def _strings(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(lines)


class SMTPProtocolError(Exception):
    """The server sent something that is not an SMTP reply (or too much of one)."""


@frozen
class Reply:
    """A complete server reply: the code and the text of each line (without code and CRLF)."""

    code: int
    lines: tuple[str, ...] = field(converter=_strings)

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code of the first line, if it has one of the same class."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return m.group(0).strip() if m and m.group(1) == str(self.code)[0] else None

    @property
    def text(self) -> str:
        """Code and lines as one line, for logs and the DSN C{Diagnostic-Code: smtp; ...}."""
        return " ".join([str(self.code), *(line.strip() for line in self.lines)]).strip()

    def status(self, default: str) -> str:
        """The enhanced code, or C{default}'s detail under this reply's class (C{x.0.0})."""
        return self.enhanced or f"{str(self.code)[0]}.{default.split('.', 1)[1]}"

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def permanent(self) -> bool:
        """5xx: give up (RFC 5321 4.2.1); 4xx is transient."""
        return self.code >= 500


class ReplyParser:
    """Bytes in, L{Reply} values out (RFC 5321 4.2). Lines end in CRLF (a bare LF is accepted)."""

    def __init__(self, max_line: int = 4096, max_lines: int = 200) -> None:
        self._buffer = b""
        self._lines: list[str] = []
        self._code: bytes | None = None
        self._max_line = max_line
        self._max_lines = max_lines

    @property
    def pending(self) -> bool:
        """True if part of a reply has been received."""
        return bool(self._buffer or self._lines)

    def feed(self, data: bytes) -> list[Reply]:
        self._buffer += data
        replies: list[Reply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max_line:
                    raise SMTPProtocolError("reply line too long")
                return replies
            line, self._buffer = self._buffer[:end].rstrip(b"\r"), self._buffer[end + 1 :]
            if len(line) > self._max_line:
                raise SMTPProtocolError("reply line too long")
            m = _LINE.fullmatch(line)
            if m is None or (self._code is not None and m.group(1) != self._code):
                raise SMTPProtocolError(f"malformed reply line {line[:80]!r}")
            self._code = m.group(1)
            self._lines.append(m.group(3).decode("utf-8", "replace"))
            if len(self._lines) > self._max_lines:
                raise SMTPProtocolError("reply has too many lines")
            if m.group(2) != b"-":
                replies.append(Reply(int(self._code), self._lines))
                self._code, self._lines = None, []


@frozen
class Extensions:
    """What the server's EHLO reply offers: keyword (upper case) -> parameter text."""

    keywords: Mapping[str, str] = field(factory=dict, hash=False)

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Extensions:
        """The first line is the greeting; each further line is one extension (RFC 5321 4.1.1.1)."""
        found = {}
        for line in reply.lines[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                found[keyword.upper()] = params.strip()
        return cls(found)

    def __contains__(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def size_limit(self) -> int | None:
        """The SIZE limit (RFC 1870), None if SIZE is absent or has no (or a zero) limit."""
        value = self.keywords.get("SIZE", "")
        return int(value) if value.isdigit() and int(value) > 0 else None


def check_message(envelope: Envelope, size: int, ext: Extensions) -> None:
    """
    Raise L{PermanentDeliveryError} if this server can never take the message: it needs
    SMTPUTF8 (RFC 6531 3.4: 5.6.7) or 8BITMIME (RFC 6152 3: 5.6.3, no downgrade here) that the
    server lacks, or BINARYMIME (RFC 3030, not implemented: 5.6.3), or it exceeds the server's SIZE (RFC 1870: 5.3.4).
    """
    if envelope.smtputf8 and "SMTPUTF8" not in ext:
        raise PermanentDeliveryError(
            "the message needs SMTPUTF8, the server lacks it", 553, "5.6.7"
        )
    if envelope.body == "8BITMIME" and "8BITMIME" not in ext:
        raise PermanentDeliveryError("8-bit message, the server lacks 8BITMIME", 554, "5.6.3")
    if envelope.body == "BINARYMIME":  # needs BDAT (RFC 3030), which this client lacks
        raise PermanentDeliveryError("binary message, BDAT is not supported", 554, "5.6.3")
    limit = ext.size_limit
    if limit is not None and size > limit:
        raise PermanentDeliveryError(f"message of {size} bytes exceeds {limit}", 552, "5.3.4")


def encode_xtext(text: str) -> str:
    """RFC 3461 4: C{+}, C{=}, controls, space and non-ASCII as C{+XX} (UTF-8 octets)."""
    return "".join(
        chr(b) if 33 <= b <= 126 and b not in (43, 61) else f"+{b:02X}" for b in text.encode()
    )


def mail_command(envelope: Envelope, size: int, ext: Extensions) -> bytes:
    """MAIL FROM with the parameters the server announced (SIZE, BODY, SMTPUTF8, DSN)."""
    params = []
    if "SIZE" in ext:
        params.append(f"SIZE={size}")
    if envelope.body in ("8BITMIME", "BINARYMIME"):
        params.append(f"BODY={envelope.body}")
    if envelope.smtputf8:
        params.append("SMTPUTF8")
    if "DSN" in ext:  # RFC 3461 4.3, 4.4: passed on only to a server that knows them
        if envelope.ret:
            params.append(f"RET={envelope.ret}")
        if envelope.envid:
            params.append(f"ENVID={encode_xtext(envelope.envid)}")
    return _command(f"MAIL FROM:<{envelope.sender}>", params)


def rcpt_command(recipient: EnvelopeRecipient, ext: Extensions) -> bytes:
    """RCPT TO, with NOTIFY and ORCPT if the server offers DSN (RFC 3461 4.1, 4.2)."""
    params = []
    if "DSN" in ext:
        if recipient.notify:
            params.append("NOTIFY=" + ",".join(sorted(recipient.notify)))
        if recipient.orcpt:
            kind, _, address = recipient.orcpt.partition(";")
            params.append(f"ORCPT={kind};{encode_xtext(address)}")
    return _command(f"RCPT TO:<{recipient.address}>", params)


def _command(verb: str, params: list[str]) -> bytes:
    line = " ".join([verb, *params])
    if "\r" in line or "\n" in line:
        raise ValueError("line break in an SMTP command")
    return line.encode("utf-8") + b"\r\n"


class DotStuffer:
    """
    The DATA body encoder (RFC 5321 4.5.2): a C{.} starting a line is doubled, every line end
    becomes CRLF (a bare CR or LF too: never sent bare), and L{end} closes with C{CRLF.CRLF}.
    """

    def __init__(self) -> None:
        self._at_line_start = True
        self._pending_cr = False

    def feed(self, data: bytes) -> bytes:
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data, self._pending_cr = data[:-1], True
        if not data:
            return b""
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
        out = data.replace(b"\r\n.", b"\r\n..")
        if self._at_line_start and out.startswith(b"."):
            out = b"." + out
        self._at_line_start = out.endswith(b"\r\n")
        return out

    def end(self) -> bytes:
        tail = b""
        if self._pending_cr:
            tail, self._pending_cr, self._at_line_start = b"\r\n", False, True
        return tail + (b".\r\n" if self._at_line_start else b"\r\n.\r\n")
