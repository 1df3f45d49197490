"""
Helpers for SEARCH (RFC 3501 6.4.4): header words decoded (RFC 2047), text parts decoded
(transfer encoding and charset), case-insensitive substring tests, and the date of the Date
header. Tolerant throughout: bad charsets and bad encodings give replacement characters.
"""

from __future__ import annotations

import binascii
import codecs
import datetime
import re
from collections.abc import Iterator
from email.utils import parsedate_tz
from typing import Literal

from twisted_mail_stack.mime._headers import find_body_start, iter_fields, unfold
from twisted_mail_stack.mime.structure import Part, parse_structure

__all__ = [
    "decode_words",
    "decode_body",
    "matches_text",
    "parse_date",
    "sent_date",
    "SearchWhere",
]

SearchWhere = Literal["HEADER", "SUBJECT", "FROM", "TO", "CC", "BCC", "BODY", "TEXT"]

_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(rb"\?=[ \t\r\n]+=\?")


def _codec(charset: str) -> str:
    charset = charset.split("*", 1)[0].strip().lower()  # RFC 2231 5: charset*language
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return "utf-8"


def _to_str(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(_codec(charset) if charset else "utf-8", "replace")
    except Exception:  # a codec that fails outright (e.g. a non-text codec)
        return data.decode("utf-8", "replace")


def _decode_word(charset: bytes, enc: bytes, text: bytes) -> str | None:
    try:
        if enc in b"Bb":
            data = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
        else:
            data = binascii.a2b_qp(text.replace(b"_", b" "))
    except (binascii.Error, ValueError):
        return None
    return _to_str(data, charset.decode("ascii", "replace"))


def decode_words(value: bytes) -> str:
    """A header value unfolded, with its RFC 2047 encoded-words decoded; 8-bit bytes as UTF-8."""
    value = unfold(value)
    if b"=?" not in value:
        return _to_str(value, None)
    # Whitespace between two adjacent encoded-words is not displayed (RFC 2047 6.2).
    value = _BETWEEN_WORDS.sub(b"?==?", value)
    out = []
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            continue  # left as it stands, with the plain text around it
        out.append(_to_str(value[pos : m.start()], None))
        out.append(decoded)
        pos = m.end()
    out.append(_to_str(value[pos:], None))
    return "".join(out)


def decode_body(raw: bytes, part: Part) -> str:
    """The body of a leaf part decoded from its transfer encoding and charset."""
    data = raw[part.body_start : part.end]
    encoding = part.encoding.lower()
    try:
        if encoding == b"base64":
            data = binascii.a2b_base64(re.sub(rb"[^A-Za-z0-9+/]", b"", data) + b"==")
        elif encoding == b"quoted-printable":
            data = binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        pass
    charset = part.param(b"charset")
    return _to_str(data, charset.decode("ascii", "replace") if charset else None)


def _header_values(raw: bytes, part: Part, name: bytes | None) -> Iterator[bytes]:
    """The raw values of the fields C{name} (every field when None) of an entity's header."""
    for fname, start, end in iter_fields(raw, part.header_start, part.header_end):
        if name is None or fname == name:
            colon = raw.index(b":", start, end)
            yield fname + b": " + raw[colon + 1 : end] if name is None else raw[colon + 1 : end]


def _text_chunks(raw: bytes, part: Part) -> Iterator[str]:
    """Decoded body text of C{part}: text leaves, and the headers and texts of inner messages."""
    if part.children:
        for child in part.children:
            yield from _text_chunks(raw, child)
    elif part.message is not None:
        for value in _header_values(raw, part.message, None):
            yield decode_words(value)
        yield from _text_chunks(raw, part.message)
    elif part.type.lower() in (b"text", b"message"):
        yield decode_body(raw, part)


def _contains(haystack: str, needle: str) -> bool:
    return needle in haystack.casefold()


def matches_text(
    message_bytes: bytes, needle: str, where: SearchWhere, field: str | None = None
) -> bool:
    """
    Whether C{needle} occurs, case-insensitively, in the message C{where} says (RFC 3501
    6.4.4): a header field (C{field} names it for HEADER, where an empty needle matches
    any message that has the field), SUBJECT/FROM/TO/CC/BCC, BODY (decoded text parts) or
    TEXT (header and body). Never raises.
    """
    folded = needle.casefold()
    if where == "BODY" or where == "TEXT":
        root, _ = parse_structure(message_bytes)
        if where == "TEXT":
            for value in _header_values(message_bytes, root, None):
                if _contains(decode_words(value), folded):
                    return True
        return any(_contains(chunk, folded) for chunk in _text_chunks(message_bytes, root))
    name = (
        (field or "").lower().encode("ascii", "replace")
        if where == "HEADER"
        else where.lower().encode()
    )
    header_end, _ = find_body_start(message_bytes, 0, len(message_bytes))
    for fname, start, end in iter_fields(message_bytes, 0, header_end):
        if fname != name:
            continue
        if not folded:
            return True
        colon = message_bytes.index(b":", start, end)
        if _contains(decode_words(message_bytes[colon + 1 : end]), folded):
            return True
    return False


def parse_date(value: bytes) -> datetime.date | None:
    """The calendar date of a Date header value, timezone and time ignored (RFC 3501 6.4.4)."""
    try:
        parsed = parsedate_tz(unfold(value).decode("ascii", "replace"))
    except Exception:  # parsedate_tz raises on some malformed input
        return None
    if parsed is None:
        return None
    year, month, day = parsed[0], parsed[1], parsed[2]
    try:
        return datetime.date(year, month, day)
    except (ValueError, TypeError, OverflowError):
        return None


def sent_date(raw_header: bytes) -> datetime.date | None:
    """The date of the first Date field of a message (or its header alone), for SENT*."""
    header_end, _ = find_body_start(raw_header, 0, len(raw_header))
    for name, start, end in iter_fields(raw_header, 0, header_end):
        if name == b"date":
            return parse_date(raw_header[raw_header.index(b":", start, end) + 1 : end])
    return None
