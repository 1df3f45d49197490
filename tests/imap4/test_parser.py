"""
Every command of RFC 3501 6 and of the extensions, bytes in, typed value out; the grammar is
RFC 3501 9 (and the ABNF of each extension RFC named per case).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from twisted_mail_stack.imap4 import _commands as c
from twisted_mail_stack.imap4._parser import (
    ParseError,
    parse_command,
    parse_done,
    parse_sasl_response,
)
from twisted_mail_stack.imap4._reader import UNDECODABLE
from twisted_mail_stack.imap4._search import All, FlagKey, SequenceKey
from twisted_mail_stack.imap4._sequence import STAR, SequenceSet
from twisted_mail_stack.values import Flag, SpecialUse, StoreMode

from .helpers import command, error, parse, raw

S1 = SequenceSet(((1, 1),))

CASES: list[tuple[bytes, c.Command]] = [
    # RFC 3501 6.1, any state
    (b"t CAPABILITY", c.Capability()),
    (b"t capability", c.Capability()),
    (b"t NOOP", c.Noop()),
    (b"t LOGOUT", c.Logout()),
    # RFC 2971 ID
    (b"t ID NIL", c.Id(None)),
    (b't ID ("name" "mutt" "version" NIL)', c.Id((("name", "mutt"), ("version", None)))),
    (b't ID ("n\\"a" {3+}\r\nx y)', c.Id((('n"a', "x y"),))),
    # RFC 5161 ENABLE
    (b"t ENABLE CONDSTORE utf8=accept", c.Enable(("CONDSTORE", "UTF8=ACCEPT"))),
    # RFC 3501 6.2, not authenticated
    (b"t STARTTLS", c.StartTLS()),
    (b"t AUTHENTICATE plain", c.Authenticate("PLAIN")),
    # RFC 4959 SASL-IR
    (b"t AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0", c.Authenticate("PLAIN", b"AGZyZWQAc2VjcmV0")),
    (b"t AUTHENTICATE PLAIN =", c.Authenticate("PLAIN", b"=")),
    (b"t LOGIN fred secret", c.Login(b"fred", b"secret")),
    (b't LOGIN "fr\\\\ed" "se cr\\"et"', c.Login(b"fr\\ed", b'se cr"et')),
    (b"t LOGIN {4}\r\nfred {6+}\r\nse\r\ncr", c.Login(b"fred", b"se\r\ncr")),
    (b"t LOGIN fred] x", c.Login(b"fred]", b"x")),  # ASTRING-CHAR includes "]"
    (b't LOGIN "\xc3\xa9" x', c.Login("é".encode(), b"x")),
    # RFC 3501 6.3, authenticated
    (b"t SELECT inbox", c.Select("INBOX")),
    (b"t SELECT InBoX", c.Select("INBOX")),
    (b't SELECT "Sent Items"', c.Select("Sent Items")),
    (b"t SELECT Entw&APw-rfe", c.Select("Entwürfe")),
    (b"t SELECT &-x", c.Select("&x")),
    (b"t SELECT inbox (CONDSTORE)", c.Select("INBOX", condstore=True)),  # RFC 7162 3.1.8
    # Not modified UTF-7, yet an astring (not BAD): a name no backend accepts (imaptest "atoms").
    (b"t SELECT &Jjo", c.Select(UNDECODABLE + "&Jjo")),  # unterminated
    (b"t SELECT &AGE-", c.Select(UNDECODABLE + "&AGE-")),  # "a" must not be base64-encoded
    (b't LIST "" &\'+,-%', c.List("", (UNDECODABLE + "&'+,-%",))),
    (b"t EXAMINE a/b", c.Examine("a/b")),
    (b"t EXAMINE a (condstore)", c.Examine("a", condstore=True)),
    (b"t CREATE Foo", c.Create("Foo")),
    (b"t CREATE Foo (USE (\\Sent \\trash))", c.Create("Foo", (SpecialUse.SENT, SpecialUse.TRASH))),
    (b"t DELETE Foo", c.Delete("Foo")),
    (b"t RENAME Foo {3}\r\nBar", c.Rename("Foo", "Bar")),
    (b"t RENAME INBOX Old", c.Rename("INBOX", "Old")),
    (b"t SUBSCRIBE Foo", c.Subscribe("Foo")),
    (b"t UNSUBSCRIBE Foo", c.Unsubscribe("Foo")),
    (b'\x74 LIST "" *', c.List("", ("*",))),
    (b"t LIST ~/Mail/ %", c.List("~/Mail/", ("%",))),
    (b't LIST "" "&AOk-t&AOk-/%"', c.List("", ("été/%",))),
    (b"t LIST foo ]x*", c.List("foo", ("]x*",))),
    # RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE
    (
        b'\x74 LIST (SUBSCRIBED RECURSIVEMATCH) "" (INBOX Sent/%) RETURN (CHILDREN SPECIAL-USE)',
        c.List(
            "",
            ("INBOX", "Sent/%"),
            frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
            frozenset({"CHILDREN", "SPECIAL-USE"}),
            extended=True,
        ),
    ),
    (b'\x74 LIST "" % RETURN ()', c.List("", ("%",), extended=True)),
    (b'\x74 LIST () "" %', c.List("", ("%",), extended=True)),
    (b"t LSUB #news. comp.mail.*", c.Lsub("#news.", "comp.mail.*")),
    (b"t NAMESPACE", c.Namespace()),
    (
        b"t STATUS blurdybloop (UIDNEXT MESSAGES highestmodseq)",
        c.Status(
            "blurdybloop", (c.StatusItem.UIDNEXT, c.StatusItem.MESSAGES, c.StatusItem.HIGHESTMODSEQ)
        ),
    ),  # fmt: skip
    (b"t APPEND saved {5}\r\nhello", c.Append("saved", b"hello")),
    (
        b'\x74 APPEND saved (\\Seen $Junk) " 7-Feb-1994 21:52:25 -0800" {2+}\r\nhi',
        c.Append(
            "saved",
            b"hi",
            frozenset({Flag.SEEN, "$Junk"}),
            datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8))),
        ),
    ),
    (b"t APPEND saved () {0}\r\n", c.Append("saved", b"")),
    (b"t APPEND x ~{3}\r\n\x00\r\n", c.Append("x", b"\x00\r\n", binary=True)),  # RFC 3516 4.4
    (b"t IDLE", c.Idle()),  # RFC 2177
    # RFC 3501 6.4, selected
    (b"t CHECK", c.Check()),
    (b"t CLOSE", c.Close()),
    (b"t UNSELECT", c.Unselect()),  # RFC 3691
    (b"t EXPUNGE", c.Expunge()),
    (b"t UID EXPUNGE 3:5,9", c.Expunge(SequenceSet(((3, 5), (9, 9))))),  # RFC 4315 2.1
    (b"t SEARCH ALL", c.Search(All())),
    (b"t UID SEARCH CHARSET UTF-8 ALL", c.Search(All(), uid=True, charset="UTF-8")),
    (
        b"t SEARCH charset us-ascii 1:*",
        c.Search(SequenceKey(SequenceSet(((1, STAR),)), False), charset="US-ASCII"),
    ),  # fmt: skip
    (b"t SEARCH SEEN", c.Search(FlagKey(Flag.SEEN))),
    (b"t STORE 1 FLAGS (\\Deleted)", c.Store(S1, StoreMode.REPLACE, frozenset({Flag.DELETED}))),
    (
        b"t STORE 1 +FLAGS \\Seen \\Flagged",
        c.Store(S1, StoreMode.ADD, frozenset({Flag.SEEN, Flag.FLAGGED})),
    ),  # fmt: skip
    (b"t STORE 1 -flags.silent ()", c.Store(S1, StoreMode.REMOVE, frozenset(), silent=True)),
    (
        b"t UID STORE 1 (UNCHANGEDSINCE 0) FLAGS.SILENT (foo)",
        c.Store(S1, StoreMode.REPLACE, frozenset({"foo"}), True, True, 0),
    ),  # RFC 7162 3.1.3
    (b"t COPY 2:4 MEETING", c.Copy(SequenceSet(((2, 4),)), "MEETING")),
    (b"t UID COPY 4:2 x", c.Copy(SequenceSet(((4, 2),)), "x", uid=True)),
    (b"t MOVE * Trash", c.Move(SequenceSet(((STAR, STAR),)), "Trash")),  # RFC 6851
    (b"t UID MOVE 1,3:* Trash", c.Move(SequenceSet(((1, 1), (3, STAR))), "Trash", uid=True)),
]


@pytest.mark.parametrize(
    ("data", "expected"), CASES, ids=[d[:40].decode("latin-1") for d, _ in CASES]
)
def test_command(data: bytes, expected: c.Command) -> None:
    assert command(data) == expected


def test_tag_is_kept_as_sent() -> None:
    result = parse(b"A.0001] NOOP")
    assert isinstance(result, c.TaggedCommand)
    assert result.tag == "A.0001]"


BAD: list[bytes] = [
    b"t",
    b"t ",
    b"t FROB",
    b"t NOOP extra",
    b"t NOOP ",
    b"t  NOOP",
    b"t LOGIN fred",
    b"t LOGIN fred  x",
    b't LOGIN "fred x',
    b't LOGIN "fr\\ed" x',  # only quoted-specials may be escaped
    b"t LOGIN ~{1}\r\nx y",  # literal8 only in APPEND
    b"t LOGIN {1}\r\n\x00 y",  # RFC 3501 9: a literal is CHAR8, without NUL
    b't LOGIN "a\x00" y',
    b'\x74 ID ("name" "\xc3(")',  # bad UTF-8 in a quoted string
    b"t SELECT",
    b"t SELECT a(b",
    b"t SELECT a (FOO)",
    b't SELECT "\xc3\xa9"',  # 8-bit mailbox name
    b"t SELECT {2}\r\n\xff\xfe",
    b"t CREATE x (USE \\Sent)",
    b"t RENAME a",
    b"t LIST",
    b'\x74 LIST ""',
    b'\x74 LIST (RECURSIVEMATCH) "" %',  # RFC 5258 3
    b'\x74 LIST (RECURSIVEMATCH REMOTE) "" %',  # RFC 5258 3: REMOTE is no base option
    b'\x74 LIST (BOGUS) "" %',
    b'\x74 LIST "" % RETURN (BOGUS)',
    b'\x74 LIST "" % RETURN',
    b"t STATUS x ()",
    b"t STATUS x (BOGUS)",
    b"t STATUS x MESSAGES",
    b't APPEND x "hello"',  # the message must be a literal
    b'\x74 APPEND x "31-Feb-2020 00:00:00 +0000" {1+}\r\nx',
    b'\x74 APPEND x "1-Jan-2020 00:00 +0000" {1+}\r\nx',
    b'\x74 APPEND x "1-Jan-2020 00:00:00 0000" {1+}\r\nx',
    b"t APPEND x (\\Recent) {1+}\r\nx",
    b"t APPEND x (\\Bogus) {1+}\r\nx",
    b"t APPEND x {1+}\r\nx extra",
    b"t EXPUNGE 1",
    b"t UID EXPUNGE",
    b"t UID FROB 1",
    b"t UID",
    b"t FETCH 0 FLAGS",
    b"t FETCH 1 FLAGS ()",
    b"t FETCH 1:2: FLAGS",
    b"t FETCH 1,,2 FLAGS",
    b"t FETCH 4294967296 FLAGS",
    b"t STORE 1 FLAGS",
    b"t STORE 1 XFLAGS (\\Seen)",
    b"t STORE 1 FLAGS (\\Seen",
    b"t STORE 1 FLAGS (\\Recent)",
    b"t STORE 1 (UNCHANGEDSINCE) FLAGS ()",
    b"t COPY 1",
    b"t COPY x y",
    b"t MOVE 1 ",
    b"t ENABLE",
    b"t ID (",
    b't ID ("a")',
    b"t AUTHENTICATE",
    b"t AUTHENTICATE PLAIN a b",
    b"t SEARCH",
    b"t SEARCH RETURN (ALL) ALL",
]


@pytest.mark.parametrize("data", BAD, ids=[d[:40].decode("latin-1") for d in BAD])
def test_malformed_commands_get_tagged_bad(data: bytes) -> None:
    result = error(data)
    assert result.tag == "t"
    assert result.status == "BAD"
    assert result.text


@pytest.mark.parametrize("data", [b"", b" NOOP", b"+ NOOP", b"(a) NOOP", b'"t" NOOP', b"a{ NOOP"])
def test_without_a_valid_tag_the_error_is_untagged(data: bytes) -> None:
    assert error(data).tag is None


def test_unknown_special_use_is_no_useattr() -> None:
    # RFC 6154 3: "NO [USEATTR]" for a use the server does not support.
    assert error(b"t CREATE x (USE (\\Important))") == ParseError(
        "t", "unsupported special use \\IMPORTANT", "USEATTR", "NO"
    )


def test_unknown_charset_is_no_badcharset() -> None:
    result = error(b"t SEARCH CHARSET KOI8-R TEXT x")
    assert (result.tag, result.status, result.code) == ("t", "NO", "BADCHARSET (UTF-8 US-ASCII)")


def test_idle_done_and_sasl_lines() -> None:
    assert parse_done(raw(b"DONE"))
    assert parse_done(raw(b"done"))
    assert not parse_done(raw(b"DONE x"))
    assert parse_sasl_response(raw(b"AGZyZWQA"), "a") == b"AGZyZWQA"
    assert parse_sasl_response(raw(b""), "a") == b""
    assert parse_sasl_response(raw(b"*"), "a") is None
    for bad in (b"AG Zy", b"abc{3}\r\nxyz", b"**", b"a=b"):
        assert parse_sasl_response(raw(bad), "a") == ParseError(
            "a", "AUTHENTICATE response is not base64"
        )


def test_parse_never_raises_on_parts_with_odd_literals() -> None:
    from twisted_mail_stack.imap4._framer import RawCommand

    assert isinstance(parse_command(RawCommand((b"t LOGIN ", b"x", b""), (False,))), ParseError)


@pytest.mark.parametrize(
    "when",
    [
        b"+1:+2:+3",
        b"01:02:03 +0160",
        b"01:02:03 +2400",
        b"24:00:00 +0000",
        b"01:02:03 +000",
        b"1:02:03 +0000",
    ],  # fmt: skip
)
def test_bad_append_times(when: bytes) -> None:
    assert error(b'\x74 APPEND x "01-Jan-2020 ' + when + b'" {1+}\r\nx').tag == "t"


@pytest.mark.parametrize("day", [b" 7", b"7", b"07"])
def test_append_day_forms(day: bytes) -> None:
    result = command(b'\x74 APPEND x "' + day + b'-feb-1994 21:52:25 +0000" {1+}\r\nx')
    assert isinstance(result, c.Append) and result.internal_date is not None
    assert result.internal_date.day == 7


def test_every_command_has_its_states() -> None:
    from typing import get_args

    from twisted_mail_stack.imap4._commands import State, valid_states

    assert set(get_args(c.Command)) == set(c._STATES)  # no command type is missing
    assert valid_states(c.Login(b"a", b"b")) == State.NOT_AUTHENTICATED
    assert valid_states(c.Noop()) == State.ANY
    assert valid_states(c.Enable(("X",))) == State.AUTHENTICATED
    assert State.SELECTED in valid_states(c.Idle())
    assert State.AUTHENTICATED not in valid_states(c.Close())
