"""
IMAP responses as bytes (RFC 3501 7, 9): status lines with response codes, untagged data,
continuation requests, strings, mailbox names, sequence sets, dates and FETCH items.

A body is never copied in here: L{literal_header} and L{fetch_body_header} give the octets that go
before it, so the session can stream the content after them and then close the FETCH with
L{FETCH_END}.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ..mutf7 import encode_mutf7
from ..values import INBOX
from ._fetch import BinarySize, BodySection
from ._framer import Rejected, RejectReason
from ._parser import ParseError
from ._reader import ATOM_CHARS
from ._sequence import compact

__all__ = [
    "exists", "expunge", "fetch_flags", "fetch_internaldate", "fetch_line", "fetch_modseq",
    "fetch_size", "fetch_uid", "flags_response", "recent", "sorted_flags",
    "CRLF", "FETCH_END", "appenduid", "astring", "continuation", "copyuid", "date_time", "fetch_body_header",
    "fetch_item", "fetch_start", "flag_list", "list_response", "literal_header", "mailbox",
    "nstring", "parse_error_response", "permanentflags", "quoted", "rejected_response",
    "search_response", "section_name", "status_response", "string", "tagged", "untagged", "untagged_status",
]  # fmt: skip

CRLF = b"\r\n"
FETCH_END = b")\r\n"
_STATUSES = (b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE")
_ASTRING = ATOM_CHARS | {ord("]")}


def _text(text: str | bytes) -> bytes:
    """resp-text: one line of TEXT-CHAR (RFC 3501 9); CR and LF never get through."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return raw.replace(b"\r", b" ").replace(b"\n", b" ")


def _code(code: str | bytes | None) -> bytes:
    if not code:
        return b""
    return b"[" + _text(code) + b"] "


def tagged(
    tag: str | bytes, status: bytes, text: str | bytes, code: str | bytes | None = None
) -> bytes:
    """C{a1 OK [CODE] text} (RFC 3501 7.1)."""
    assert status in _STATUSES[:3]
    raw_tag = tag.encode("ascii") if isinstance(tag, str) else tag
    return raw_tag + b" " + status + b" " + _code(code) + _text(text) + CRLF


def untagged(data: bytes) -> bytes:
    """C{* data}; for untagged OK/NO/BAD/BYE/PREAUTH use L{untagged_status}."""
    return b"* " + data + CRLF


def untagged_status(status: bytes, text: str | bytes, code: str | bytes | None = None) -> bytes:
    assert status in _STATUSES
    return b"* " + status + b" " + _code(code) + _text(text) + CRLF


def continuation(text: str | bytes = b"Ready") -> bytes:
    """C{+ text} (RFC 3501 7.5); AUTHENTICATE challenges pass their base64 here."""
    return b"+ " + _text(text) + CRLF


# -- strings ------------------------------------------------------------------------------


def literal_header(size: int, *, binary: bool = False) -> bytes:
    """The C{{n}} (or literal8 C{~{n}}) and line end that go before n octets of data."""
    return (b"~{%d}" if binary else b"{%d}") % size + CRLF


def _quotable(raw: bytes) -> bool:
    # RFC 3501 9: QUOTED-CHAR is 7-bit TEXT-CHAR; we keep quoted strings short, too.
    return len(raw) <= 1024 and all(0 < c < 0x80 and c not in b"\r\n" for c in raw)


def quoted(raw: bytes) -> bytes:
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(value: str | bytes) -> bytes:
    """A quoted string when it can be one, else a literal (CR, LF, NUL, 8-bit or long)."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if _quotable(raw):
        return quoted(raw)
    return literal_header(len(raw)) + raw


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else string(value)


def astring(value: str | bytes) -> bytes:
    """An atom when every octet may stand bare (and it is not C{NIL}), else L{string}."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if raw and all(c in _ASTRING for c in raw) and raw.upper() != b"NIL":
        return raw
    return string(raw)


def mailbox(name: str) -> bytes:
    """A mailbox name in modified UTF-7 (RFC 3501 5.1.3), as an astring."""
    if name.upper() == INBOX:
        return b"INBOX"
    return astring(encode_mutf7(name).encode("ascii"))


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + b" ".join(f.encode("ascii") for f in flags) + b")"


def date_time(when: datetime) -> bytes:
    """RFC 3501 9 date-time: C{"02-Jan-2006 15:04:05 +0000"} (the day as two digits)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    text = (
        f"{when.day:02d}-{months[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
    return b'"' + text.encode("ascii") + b'"'


# -- response codes and data ------------------------------------------------------------


def copyuid(uidvalidity: int, pairs: Iterable[tuple[int, int]]) -> bytes:
    """RFC 4315 3: C{COPYUID v src dst}, the pairs in ascending source order."""
    ordered = sorted(pairs)
    return b"COPYUID %d %s %s" % (
        uidvalidity,
        compact(p[0] for p in ordered),
        compact(p[1] for p in ordered),
    )


def list_response(
    kind: bytes, attributes: Iterable[str], delimiter: str | None, name: str
) -> bytes:
    """C{* LIST (\\HasNoChildren) "/" name} (or LSUB)."""
    delim = b"NIL" if delimiter is None else quoted(delimiter.encode("ascii"))
    return untagged(kind + b" " + flag_list(attributes) + b" " + delim + b" " + mailbox(name))


def status_response(name: str, items: Iterable[tuple[str, int]]) -> bytes:
    body = b" ".join(b"%s %d" % (k.encode("ascii"), v) for k, v in items)
    return untagged(b"STATUS " + mailbox(name) + b" (" + body + b")")


def section_name(item: BodySection | BinarySize, *, with_origin: bool = True) -> bytes:
    """
    The item's name as a FETCH response repeats it (RFC 3501 7.4.2): C{BODY[1.HEADER]<0>},
    without C{.PEEK} and with only the partial's origin.
    """
    if isinstance(item, BinarySize):
        return b"BINARY.SIZE[" + b".".join(b"%d" % n for n in item.part) + b"]"
    section = item.section
    spec = b".".join(b"%d" % n for n in section.part)
    if section.text:
        spec += (b"." if spec else b"") + section.text.encode("ascii")
    if section.fields:
        spec += b" (" + b" ".join(astring(f) for f in section.fields) + b")"
    out = (b"BINARY[" if item.binary else b"BODY[") + spec + b"]"
    if item.partial is not None and with_origin:
        out += b"<%d>" % item.partial[0]
    return out


def fetch_start(number: int) -> bytes:
    """C{* n FETCH (}; items follow, separated by spaces, then L{FETCH_END}."""
    return b"* %d FETCH (" % number


def fetch_item(name: bytes, value: bytes) -> bytes:
    """One C{NAME value} pair, e.g. C{fetch_item(b"UID", b"7")}."""
    return name + b" " + value


def fetch_body_header(item: BodySection, size: int | None) -> bytes:
    """
    C{BODY[...] {n}\\r\\n} before the session streams n octets, or C{BODY[...] NIL} when the
    section does not exist (C{size} None). BINARY sections use literal8 (RFC 3516 4.3).
    """
    name = section_name(item)
    if size is None:
        return name + b" NIL"
    return name + b" " + literal_header(size, binary=item.binary)


def appenduid(uidvalidity: int, uid: int) -> bytes:
    """RFC 4315 3: the C{APPENDUID} response code."""
    return b"APPENDUID %d %d" % (uidvalidity, uid)


def permanentflags(flags: Iterable[str], *, keywords: bool = True) -> bytes:
    """RFC 3501 7.1: C{PERMANENTFLAGS (...)}, with C{\\*} when new keywords may be created."""
    return b"PERMANENTFLAGS " + flag_list([*flags, *(["\\*"] if keywords else [])])


def search_response(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """C{* SEARCH 2 3 6}, with C{(MODSEQ n)} after a MODSEQ search (RFC 7162 3.1.5)."""
    text = " ".join(map(str, numbers))  # one join: a search may find 100,000 messages
    out = b"* SEARCH " + text.encode("ascii") if text else b"* SEARCH"
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return out + CRLF


def parse_error_response(error: ParseError) -> bytes:
    """C{tag BAD text}, C{* BAD text} when the tag is unknown, or the NO the error asks for."""
    status = error.status.encode("ascii")
    if error.tag is None:
        return untagged_status(status, error.text, error.code)
    return tagged(error.tag, status, error.text, error.code)


def rejected_response(event: Rejected) -> bytes:
    """
    The answer to a command the framer dropped. A synchronising literal the client is still
    holding gets C{NO [TOOBIG]}; one already sent (RFC 7888 4) and over-long lines get
    C{BAD [TOOBIG]} (RFC 9051 7.1 defines TOOBIG for any command too large to process).
    """
    status = b"NO" if event.synchronising else b"BAD"
    text = {
        RejectReason.LITERAL_TOO_BIG: "Literal too big",
        RejectReason.LINE_TOO_LONG: "Command line too long",
        RejectReason.COMMAND_TOO_BIG: "Command too big",
    }[event.reason]
    if event.tag is None:
        return untagged_status(b"BAD", text, b"TOOBIG")
    return tagged(event.tag, status, text, b"TOOBIG")


# -- FETCH items with their values ----------------------------------------------------------

_SYSTEM_ORDER = {f: i for i, f in enumerate(("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"))}  # fmt: skip


def sorted_flags(flags: Iterable[str]) -> list[str]:
    """System flags in a fixed order, then keywords sorted, so that responses are stable."""
    return sorted(flags, key=lambda f: (_SYSTEM_ORDER.get(f, len(_SYSTEM_ORDER)), f))


def fetch_flags(flags: Iterable[str], *, recent: bool = False) -> bytes:
    """C{FLAGS (\\Seen ...)}, with C{\\Recent} added for a message this session holds as recent."""
    return fetch_item(
        b"FLAGS", flag_list(sorted_flags([*flags, *(["\\Recent"] if recent else [])]))
    )


def fetch_uid(uid: int) -> bytes:
    return b"UID %d" % uid


def fetch_size(size: int) -> bytes:
    return b"RFC822.SIZE %d" % size


def fetch_internaldate(when: datetime) -> bytes:
    return b"INTERNALDATE " + date_time(when)


def fetch_modseq(modseq: int) -> bytes:
    """RFC 7162 3.1.4.1: C{MODSEQ (n)}."""
    return b"MODSEQ (%d)" % modseq


def fetch_line(number: int, items: Iterable[bytes]) -> bytes:
    """A whole C{* n FETCH (...)} line from items that carry no literal."""
    return fetch_start(number) + b" ".join(items) + FETCH_END


def exists(count: int) -> bytes:
    return b"* %d EXISTS\r\n" % count


def recent(count: int) -> bytes:
    return b"* %d RECENT\r\n" % count


def expunge(number: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % number


def flags_response(flags: Iterable[str]) -> bytes:
    """C{* FLAGS (...)}, the flags defined in the mailbox (RFC 3501 7.2.6)."""
    return untagged(b"FLAGS " + flag_list(sorted_flags(flags)))
