"""FETCH items (RFC 3501 6.4.5, 9 fetch-att; RFC 3516; RFC 7162) and the section names echoed."""

from __future__ import annotations

import pytest

from twisted_mail_stack.imap4._commands import Fetch
from twisted_mail_stack.imap4._fetch import (
    MACROS,
    Attribute,
    BinarySize,
    BodySection,
    FetchItem,
    Section,
)
from twisted_mail_stack.imap4._format import section_name
from twisted_mail_stack.imap4._sequence import SequenceSet

from .helpers import command, error

A = Attribute

ITEMS: list[tuple[bytes, FetchItem]] = [
    (b"ENVELOPE", A.ENVELOPE),
    (b"flags", A.FLAGS),
    (b"INTERNALDATE", A.INTERNALDATE),
    (b"RFC822", A.RFC822),
    (b"RFC822.HEADER", A.RFC822_HEADER),
    (b"RFC822.SIZE", A.RFC822_SIZE),
    (b"RFC822.TEXT", A.RFC822_TEXT),
    (b"BODY", A.BODY),
    (b"BODYSTRUCTURE", A.BODYSTRUCTURE),
    (b"UID", A.UID),
    (b"MODSEQ", A.MODSEQ),
    (b"BODY[]", BodySection()),
    (b"BODY.PEEK[]", BodySection(peek=True)),
    (b"BODY[]<0.100>", BodySection(partial=(0, 100))),
    (b"BODY[HEADER]", BodySection(Section(text="HEADER"))),
    (b"BODY[TEXT]<10.5>", BodySection(Section(text="TEXT"), partial=(10, 5))),
    (
        b"body.peek[header.fields (From To)]",
        BodySection(Section(text="HEADER.FIELDS", fields=("From", "To")), peek=True),
    ),  # fmt: skip
    (
        b'BODY[HEADER.FIELDS.NOT ("X-A" {3}\r\nX-B)]',
        BodySection(Section(text="HEADER.FIELDS.NOT", fields=("X-A", "X-B"))),
    ),  # fmt: skip
    (b"BODY[1]", BodySection(Section((1,)))),
    (b"BODY[1.2.3]", BodySection(Section((1, 2, 3)))),
    (b"BODY[4.2.MIME]", BodySection(Section((4, 2), "MIME"))),
    (b"BODY[3.HEADER]", BodySection(Section((3,), "HEADER"))),
    (b"BODY[3.TEXT]", BodySection(Section((3,), "TEXT"))),
    (b"BODY[3.HEADER.FIELDS (SUBJECT)]", BodySection(Section((3,), "HEADER.FIELDS", ("SUBJECT",)))),
    (b"BINARY[]", BodySection(binary=True)),
    (
        b"BINARY.PEEK[1.2]<0.10>",
        BodySection(Section((1, 2)), peek=True, partial=(0, 10), binary=True),
    ),  # fmt: skip
    (b"BINARY.SIZE[1]", BinarySize((1,))),
]


@pytest.mark.parametrize(("text", "item"), ITEMS, ids=[t[:30].decode() for t, _ in ITEMS])
def test_single_item_with_and_without_parentheses(text: bytes, item: FetchItem) -> None:
    seq = SequenceSet(((1, 1),))
    assert command(b"t FETCH 1 " + text) == Fetch(seq, (item,))
    assert command(b"t UID FETCH 1 (" + text + b")") == Fetch(seq, (item,), uid=True)


@pytest.mark.parametrize("macro", ["ALL", "FAST", "FULL"])
def test_macros(macro: str) -> None:
    result = command(b"t FETCH 1:* " + macro.lower().encode())
    assert isinstance(result, Fetch)
    assert (result.items, result.macro) == (MACROS[macro], macro)


def test_many_items_and_changedsince() -> None:
    # RFC 7162 3.1.4.2 example
    result = command(b"t FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)")
    assert result == Fetch(SequenceSet(((1, 0),)), (A.UID, A.FLAGS), changed_since=12345)


BAD = [
    b"FOO",
    b"ALL FLAGS",
    b"(ALL)",
    b"(FLAGS",
    b"(FLAGS  UID)",
    b"BODY[",
    b"BODY[MIME]",  # MIME needs a part (RFC 3501 6.4.5)
    b"BODY[0]",
    b"BODY[1.]",
    b"BODY[1.0]",
    b"BODY[HEADER.FIELDS]",
    b"BODY[HEADER.FIELDS ()]",
    b"BODY[HEADER.FIELDS (a:b)]",
    b"BODY[TEXTX]",
    b"BODY[]<0>",
    b"BODY[]<0.0>",
    b"BODY[]<x.1>",
    b"BODY.PEEK",
    b"BINARY[TEXT]",
    b"BODY[1." + b"1." * 100 + b"1]",
    b"FLAGS (CHANGEDSINCE 0)",
    b"FLAGS (CHANGEDSINCE)",
    b"FLAGS (VANISHED)",
]


@pytest.mark.parametrize("text", BAD, ids=[t[:30].decode() for t in BAD])
def test_bad_fetch(text: bytes) -> None:
    result = error(b"t FETCH 1 " + text)
    assert (result.tag, result.status) == ("t", "BAD")


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        (b"BODY.PEEK[]<5.10>", b"BODY[]<5>"),
        (b"BODY[1.2.HEADER.FIELDS (From X-Y)]", b"BODY[1.2.HEADER.FIELDS (From X-Y)]"),
        (b'BODY[HEADER.FIELDS ("NIL")]', b'BODY[HEADER.FIELDS ("NIL")]'),
        (b"BODY[4.MIME]", b"BODY[4.MIME]"),
        (b"BINARY.PEEK[1]", b"BINARY[1]"),
        (b"BINARY.SIZE[]", b"BINARY.SIZE[]"),
    ],
)
def test_section_echo_round_trips(text: bytes, echo: bytes) -> None:
    """RFC 3501 7.4.2: the response names the section without .PEEK, the partial by origin."""
    result = command(b"t FETCH 1 " + text)
    assert isinstance(result, Fetch)
    item = result.items[0]
    assert isinstance(item, BodySection | BinarySize)
    assert section_name(item) == echo
    # What the server echoes parses back to the same section (PEEK and length aside).
    again = command(b"t FETCH 1 " + echo.split(b"<")[0])
    assert isinstance(again, Fetch)
    again_item = again.items[0]
    if isinstance(item, BodySection):
        assert isinstance(again_item, BodySection)
        assert again_item.section == item.section
    else:
        assert again_item == item
