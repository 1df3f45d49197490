"""SEARCH keys (RFC 3501 6.4.4, 9 search-key; RFC 7162 3.1.5) into the typed tree."""

from __future__ import annotations

from datetime import date

import pytest

from twisted_mail_stack.imap4._commands import Search
from twisted_mail_stack.imap4._search import (
    RECENT,
    All,
    And,
    DateField,
    DateKey,
    DateOp,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    Not,
    Or,
    SearchKey,
    SequenceKey,
    SizeKey,
    TextKey,
)
from twisted_mail_stack.imap4._sequence import STAR, SequenceSet
from twisted_mail_stack.values import Flag

from .helpers import command, error

SEEN = FlagKey(Flag.SEEN)
D = date(1994, 2, 1)

KEYS: list[tuple[bytes, SearchKey]] = [
    (b"ALL", All()),
    (b"ANSWERED", FlagKey(Flag.ANSWERED)),
    (b"DELETED", FlagKey(Flag.DELETED)),
    (b"DRAFT", FlagKey(Flag.DRAFT)),
    (b"FLAGGED", FlagKey(Flag.FLAGGED)),
    (b"seen", SEEN),
    (b"RECENT", FlagKey(RECENT)),
    (b"UNANSWERED", Not(FlagKey(Flag.ANSWERED))),
    (b"UNDELETED", Not(FlagKey(Flag.DELETED))),
    (b"UNDRAFT", Not(FlagKey(Flag.DRAFT))),
    (b"UNFLAGGED", Not(FlagKey(Flag.FLAGGED))),
    (b"UNSEEN", Not(SEEN)),
    (b"NEW", And((FlagKey(RECENT), Not(SEEN)))),
    (b"OLD", Not(FlagKey(RECENT))),
    (b"KEYWORD $Junk", FlagKey("$Junk")),
    (b"UNKEYWORD $Junk", Not(FlagKey("$Junk"))),
    (b"BCC x", HeaderKey("Bcc", "x")),
    (b"CC x", HeaderKey("Cc", "x")),
    (b'FROM "Smith, J"', HeaderKey("From", "Smith, J")),
    (b"TO x", HeaderKey("To", "x")),
    (b"SUBJECT {5}\r\nhe ll", HeaderKey("Subject", "he ll")),
    (b"HEADER X-Mailer mutt", HeaderKey("X-Mailer", "mutt")),
    (b'HEADER Message-ID ""', HeaderKey("Message-ID", "")),
    (b"BODY hello", TextKey("hello", body_only=True)),
    (b"TEXT hello", TextKey("hello", body_only=False)),
    (b"BEFORE 1-Feb-1994", DateKey(DateField.INTERNAL, DateOp.BEFORE, D)),
    (b"ON 01-feb-1994", DateKey(DateField.INTERNAL, DateOp.ON, D)),
    (b'SINCE "1-Feb-1994"', DateKey(DateField.INTERNAL, DateOp.SINCE, D)),
    (b"SENTBEFORE 1-Feb-1994", DateKey(DateField.SENT, DateOp.BEFORE, D)),
    (b"SENTON 1-Feb-1994", DateKey(DateField.SENT, DateOp.ON, D)),
    (b"SENTSINCE 1-Feb-1994", DateKey(DateField.SENT, DateOp.SINCE, D)),
    (b"LARGER 1000", SizeKey(True, 1000)),
    (b"SMALLER 0", SizeKey(False, 0)),
    (b"2,4:*", SequenceKey(SequenceSet(((2, 2), (4, STAR))), uid=False)),
    (b"UID 5:3", SequenceKey(SequenceSet(((5, 3),)), uid=True)),
    (b"NOT SEEN", Not(SEEN)),
    (b"NOT NOT SEEN", Not(Not(SEEN))),
    (b"OR SEEN DRAFT", Or(SEEN, FlagKey(Flag.DRAFT))),
    (
        b"OR (SEEN DRAFT) NOT 1",
        Or(And((SEEN, FlagKey(Flag.DRAFT))), Not(SequenceKey(SequenceSet(((1, 1),)), False))),
    ),  # fmt: skip
    (b"(SEEN)", SEEN),
    (b"((SEEN) (ALL))", And((SEEN, All()))),
    (b"SEEN ALL 1", And((SEEN, All(), SequenceKey(SequenceSet(((1, 1),)), False)))),
    (b"OR OR SEEN DRAFT DELETED", Or(Or(SEEN, FlagKey(Flag.DRAFT)), FlagKey(Flag.DELETED))),
    # RFC 7162 3.1.5
    (b"MODSEQ 720162338", ModSeqKey(720162338)),
    (b'MODSEQ "/flags/\\\\draft" all 620162338', ModSeqKey(620162338, ("/flags/\\draft", "all"))),
]


@pytest.mark.parametrize(("text", "key"), KEYS, ids=[k[:30].decode() for k, _ in KEYS])
def test_search_key(text: bytes, key: SearchKey) -> None:
    assert command(b"t SEARCH " + text) == Search(key)


def test_utf8_strings_with_charset() -> None:
    result = command(b"t SEARCH CHARSET UTF-8 SUBJECT {6}\r\nd\xc3\xa9j\xc3\xa0")
    assert result == Search(HeaderKey("Subject", "déjà"), charset="UTF-8")


BAD = [
    b"FROB",
    b"UNRECENT",
    b"SEEN  DRAFT",
    b"(SEEN",
    b"SEEN)",
    b"()",
    b"OR SEEN",
    b"NOT",
    b"FROM",
    b"HEADER X",
    b"BEFORE 1-Foo-1994",
    b"BEFORE 31-Feb-1994",
    b"BEFORE 1-Feb-94",
    b"BEFORE 123-Feb-1994",
    b'BEFORE "1-Feb-1994',
    b"LARGER -1",
    b"LARGER x",
    b"UID",
    b"UID x",
    b"0",
    b"KEYWORD",
    b"MODSEQ",
    b'MODSEQ "/flags/x" bogus 5',
    b"CHARSET UTF-8",
    b"CHARSET UTF-8 SUBJECT {2}\r\n\xc3(",  # bad UTF-8
    b"CHARSET US-ASCII SUBJECT {1}\r\n\xe9",
    b'SUBJECT "\xc3("',  # bad UTF-8 in a quoted string
    b'CHARSET US-ASCII SUBJECT "\xc3\xa9"',
    b"NOT " * 40 + b"SEEN",  # nesting is bounded, no RecursionError
    b"(" * 40 + b"SEEN" + b")" * 40,
]


@pytest.mark.parametrize("text", BAD, ids=[k[:30].decode("latin-1") for k in BAD])
def test_bad_search(text: bytes) -> None:
    result = error(b"t SEARCH " + text)
    assert (result.tag, result.status) == ("t", "BAD")


def test_deep_nesting_does_not_recurse_forever() -> None:
    assert error(b"t SEARCH " + b"NOT " * 10000 + b"SEEN").tag == "t"
