"""
FETCH data items (RFC 3501 6.4.5, 9 fetch-att; RFC 3516 BINARY; RFC 7162 MODSEQ): parsing and
the section names that responses repeat.
"""

from __future__ import annotations

import enum

from attrs import frozen

from ._reader import DIGITS, MAX_NUMBER, Reader, Syntax

__all__ = [
    "Attribute", "BinarySize", "BodySection", "FetchItem", "MACROS", "Section", "read_fetch_items",
]  # fmt: skip


class Attribute(enum.Enum):
    """The FETCH items that take no section."""

    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_SIZE = "RFC822.SIZE"
    RFC822_TEXT = "RFC822.TEXT"
    BODY = "BODY"
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"


@frozen
class Section:
    """
    RFC 3501 6.4.5 section-spec: a part path (C{(1, 2)} for C{1.2}, empty for the whole message)
    and an optional text: C{HEADER}, C{HEADER.FIELDS}, C{HEADER.FIELDS.NOT}, C{TEXT} or C{MIME}.
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@frozen
class BodySection:
    """C{BODY[section]<partial>}, C{BODY.PEEK[...]} or C{BINARY[.PEEK][part]<partial>}."""

    section: Section = Section()
    peek: bool = False
    #: C{(origin, length)} of C{<origin.length>}.
    partial: tuple[int, int] | None = None
    binary: bool = False


@frozen
class BinarySize:
    """RFC 3516 C{BINARY.SIZE[part]}."""

    part: tuple[int, ...] = ()


FetchItem = Attribute | BodySection | BinarySize

_A = Attribute
MACROS: dict[str, tuple[FetchItem, ...]] = {
    "ALL": (_A.FLAGS, _A.INTERNALDATE, _A.RFC822_SIZE, _A.ENVELOPE),
    "FAST": (_A.FLAGS, _A.INTERNALDATE, _A.RFC822_SIZE),
    "FULL": (_A.FLAGS, _A.INTERNALDATE, _A.RFC822_SIZE, _A.ENVELOPE, _A.BODY),
}
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
_SIMPLE = {a.value: a for a in Attribute}
_MAX_PART_DEPTH = 64


def _part(reader: Reader) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number), stopping before C{.TEXT} etc."""
    numbers = [reader.number(nonzero=True)]
    text = reader.text
    while (
        text[reader.pos : reader.pos + 1] == b"."
        and text[reader.pos + 1 : reader.pos + 2].isdigit()
    ):
        reader.pos += 1
        numbers.append(reader.number(nonzero=True))
        if len(numbers) > _MAX_PART_DEPTH:
            raise Syntax("section part nested too deeply")
    return tuple(numbers)


def _header_list(reader: Reader) -> tuple[str, ...]:
    reader.expect(b"(")
    names = [reader.astring()]
    while not reader.maybe(b")"):
        reader.sp()
        names.append(reader.astring())
    for name in names:
        # RFC 5322 2.2: a field name is printable US-ASCII except ":".
        if not name or any(c < 0x21 or c > 0x7E or c == 0x3A for c in name):
            raise Syntax("bad header field name")
    return tuple(n.decode("ascii") for n in names)


def _section(reader: Reader) -> Section:
    reader.expect(b"[")
    if reader.maybe(b"]"):
        return Section()
    part: tuple[int, ...] = ()
    c = reader.peek()
    if c is not None and c in DIGITS:
        part = _part(reader)
        if reader.maybe(b"]"):
            return Section(part)
        reader.expect(b".")
    text = reader.take(_NAME_CHARS, "a section text").decode("ascii").upper()
    fields: tuple[str, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        reader.sp()
        fields = _header_list(reader)
    elif text not in ("HEADER", "TEXT") and not (text == "MIME" and part):
        raise Syntax(f"unknown section {text}")
    reader.expect(b"]")
    return Section(part, text, fields)


def _binary_part(reader: Reader) -> tuple[int, ...]:
    reader.expect(b"[")
    if reader.maybe(b"]"):
        return ()
    part = _part(reader)
    reader.expect(b"]")
    return part


def _partial(reader: Reader) -> tuple[int, int] | None:
    if not reader.maybe(b"<"):
        return None
    origin = reader.number()
    reader.expect(b".")
    length = reader.number(nonzero=True, limit=MAX_NUMBER)
    reader.expect(b">")
    return (origin, length)


def read_fetch_item(reader: Reader) -> FetchItem:
    name = reader.take(_NAME_CHARS, "a fetch item").decode("ascii").upper()
    if name in ("BODY", "BODY.PEEK") and reader.peek() == ord("["):
        section = _section(reader)
        return BodySection(section, name == "BODY.PEEK", _partial(reader))
    if name in ("BINARY", "BINARY.PEEK"):
        part = _binary_part(reader)
        return BodySection(Section(part), name == "BINARY.PEEK", _partial(reader), binary=True)
    if name == "BINARY.SIZE":
        return BinarySize(_binary_part(reader))
    if name in _SIMPLE and name != "BODY.PEEK":
        return _SIMPLE[name]
    raise Syntax(f"unknown fetch item {name}")


def read_fetch_items(reader: Reader) -> tuple[tuple[FetchItem, ...], str | None]:
    """The items after the sequence set, with the macro name if one was used."""
    if reader.maybe(b"("):
        items = [read_fetch_item(reader)]
        while not reader.maybe(b")"):
            reader.sp()
            items.append(read_fetch_item(reader))
        return tuple(items), None
    start = reader.pos
    word = reader.take(_NAME_CHARS, "a fetch item").decode("ascii").upper()
    if word in MACROS and reader.peek() != ord("["):
        return MACROS[word], word
    reader.pos = start
    return (read_fetch_item(reader),), None
