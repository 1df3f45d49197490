"""
Header blocks as byte ranges: where a header ends, its fields with their exact spans, unfolding,
and the parameters of structured MIME fields. No decoding: IMAP wants raw values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "HeaderBlock",
    "find_body_start",
    "iter_fields",
    "parse_header",
    "unfold",
    "split_params",
]

# A field: a name of printable non-colon characters, a colon, and continuation lines (RFC 5322 2.2).
# Lines that match nothing (garbage, an mbox "From " line) are skipped, not fatal.
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*\n?)", re.M)
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FOLD = re.compile(rb"\r?\n")


def find_body_start(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """
    Return C{(header_end, body_start)} for the entity in C{raw[start:end]}: the header is
    C{raw[start:header_end]} without the blank line, the body starts after it. An entity with
    no blank line is all header and has an empty body at C{end}.
    """
    # An entity that starts with its blank line has an empty header.
    if raw.startswith(b"\n", start) and start < end:
        return start, start + 1
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start, start + 2
    m = _BLANK_LINE.search(raw, start, end)
    if m is None:
        return end, end
    return m.start() + 1, m.end()


class HeaderBlock:
    """The fields of one header, by lower-cased name: first occurrence wins for our lookups."""

    __slots__ = ("_first",)

    def __init__(self, first: dict[bytes, bytes]) -> None:
        self._first = first

    def get(self, name: bytes) -> bytes | None:
        """Return the raw (still folded) value of the first field C{name}, or None."""
        return self._first.get(name)

    def unfolded(self, name: bytes) -> bytes | None:
        """Return the unfolded, stripped value of the first field C{name}, or None."""
        value = self._first.get(name)
        return None if value is None else unfold(value)


def iter_fields(raw: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield C{(lower-cased name, field start, field end)} for each field of C{raw[start:end]}."""
    for m in _FIELD.finditer(raw, start, end):
        yield m.group(1).lower(), m.start(), m.end()


def parse_header(raw: bytes, start: int, end: int, wanted: frozenset[bytes]) -> HeaderBlock:
    """Collect the first value of each field in C{wanted} (lower-case names) from C{raw[start:end]}."""
    first: dict[bytes, bytes] = {}
    for m in _FIELD.finditer(raw, start, end):
        name = m.group(1).lower()
        if name in wanted and name not in first:
            first[name] = m.group(2)
    return HeaderBlock(first)


def unfold(value: bytes) -> bytes:
    """Unfold a field value (RFC 5322 2.2.3: remove the CRLFs only) and strip it."""
    if b"\n" in value:
        value = _FOLD.sub(b"", value)
    return value.strip(b" \t\r\n\x00")


_TOKEN = re.compile(rb'\s*([^\s;=()"<>@,:\\/\[\]?]+)')
_QUOTED = re.compile(rb'\s*"((?:[^"\\]|\\.)*)"?', re.S)
_UNQUOTE = re.compile(rb"\\(.)", re.S)
_COMMENT = re.compile(rb"\((?:[^()\\]|\\.)*\)", re.S)


def strip_comments(value: bytes) -> bytes:
    """Remove RFC 822 comments (nested ones from the inside out) outside quoted strings."""
    if b"(" not in value:
        return value
    parts = re.split(rb'("(?:[^"\\]|\\.)*")', value)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            for _ in range(20):
                new = _COMMENT.sub(b" ", part)
                if new == part:
                    break
                part = new
        out.append(part)
    return b"".join(out)


def split_params(value: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """
    Split a structured MIME value (Content-Type, Content-Disposition) into its leading value
    and its C{(attribute, value)} parameters, values unquoted but otherwise raw (RFC 2045 5.1).
    Malformed parameters are skipped.
    """
    value = strip_comments(value)
    head, _, rest = value.partition(b";")
    params: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(rest):
        m = _TOKEN.match(rest, pos)
        if m is None:
            nxt = rest.find(b";", pos + 1)
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        attr = m.group(1)
        pos = m.end()
        while pos < len(rest) and rest[pos] in b" \t":
            pos += 1
        if not rest.startswith(b"=", pos):
            nxt = rest.find(b";", pos)
            pos = len(rest) if nxt < 0 else nxt + 1
            continue
        pos += 1
        q = _QUOTED.match(rest, pos)
        if q is not None:
            val = _UNQUOTE.sub(rb"\1", q.group(1))
            pos = q.end()
        else:
            nxt = rest.find(b";", pos)
            stop = len(rest) if nxt < 0 else nxt
            val = rest[pos:stop].strip()
            pos = stop
        params.append((attr, val))
        nxt = rest.find(b";", pos)
        if nxt < 0:
            break
        pos = nxt + 1
    return head.strip(), params
