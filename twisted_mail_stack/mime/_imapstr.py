"""IMAP string forms (RFC 3501 4.3, 9 "nstring"): NIL, quoted strings and literals."""

from __future__ import annotations

import re

__all__ = ["nstring", "string", "param_list"]

# Quoted strings carry TEXT-CHARs only: 7-bit, no CR, LF or NUL (RFC 3501 9, "quoted").
_NEEDS_LITERAL = re.compile(rb"[\x00\r\n\x80-\xff]")
_PLAIN = re.compile(rb'[^\x00\r\n\x80-\xff"\\]*')


def string(value: bytes) -> bytes:
    """A quoted string, or a literal when C{value} has 8-bit, CR or LF octets."""
    if _PLAIN.fullmatch(value):
        return b'"' + value + b'"'
    if _NEEDS_LITERAL.search(value):
        # NUL may not appear even in a literal (RFC 3501 9, CHAR8): drop it.
        value = value.replace(b"\x00", b"")
        return b"{%d}\r\n%s" % (len(value), value)
    if b"\\" in value or b'"' in value:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def nstring(value: bytes | None) -> bytes:
    """NIL for None, else L{string}."""
    return b"NIL" if value is None else string(value)


def param_list(params: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """body-fld-param: NIL or C{("attr" "value" ...)}."""
    if not params:
        return b"NIL"
    return b"(" + b" ".join(string(a) + b" " + string(v) for a, v in params) + b")"
