"""Responses as bytes (RFC 3501 7, 9), and round trips through the parser where both exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_mail_stack.imap4 import _format as f
from twisted_mail_stack.imap4._commands import Append, Copy, Login, Select
from twisted_mail_stack.imap4._fetch import BodySection, Section
from twisted_mail_stack.imap4._sequence import SequenceSet, compact, parse_sequence_set

from .helpers import command


def test_status_lines() -> None:
    assert f.tagged("a1", b"OK", "SELECT completed", "READ-WRITE") == b"a1 OK [READ-WRITE] SELECT completed\r\n"  # fmt: skip
    assert f.tagged(b"a2", b"NO", "no\r\nsuch") == b"a2 NO no  such\r\n"
    assert f.untagged(b"3 EXISTS") == b"* 3 EXISTS\r\n"
    assert f.untagged_status(b"OK", "Ready", b"UIDNEXT 4") == b"* OK [UIDNEXT 4] Ready\r\n"
    assert f.untagged_status(b"BYE", "bye") == b"* BYE bye\r\n"
    assert f.continuation() == b"+ Ready\r\n"
    assert f.continuation(b"") == b"+ \r\n"


def test_response_codes() -> None:
    assert f.appenduid(38505, 3955) == b"APPENDUID 38505 3955"
    # RFC 4315 3 example: COPYUID 38505 304,319:320 3956:3958
    assert f.copyuid(38505, [(320, 3958), (304, 3956), (319, 3957)]) == b"COPYUID 38505 304,319:320 3956:3958"  # fmt: skip
    assert f.permanentflags(["\\Seen", "\\Deleted"]) == b"PERMANENTFLAGS (\\Seen \\Deleted \\*)"
    assert f.permanentflags([], keywords=False) == b"PERMANENTFLAGS ()"


@pytest.mark.parametrize(
    ("numbers", "text"),
    [
        ([1], b"1"),
        ([1, 2, 3, 4, 5, 7, 9, 10, 11, 12], b"1:5,7,9:12"),
        ([5, 4, 3], b"5,4,3"),
        ([2, 9, 10], b"2,9:10"),
    ],  # fmt: skip
)
def test_compact(numbers: list[int], text: bytes) -> None:
    assert compact(numbers) == text


def test_compact_empty_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        compact([])


@given(st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=50))
def test_compact_round_trips(numbers: list[int]) -> None:
    ordered = sorted(set(numbers))
    parsed = parse_sequence_set(compact(ordered))
    assert list(parsed.select(ordered, largest=ordered[-1])) == ordered
    assert sum(hi - lo + 1 for lo, hi in parsed.resolve(ordered[-1])) == len(ordered)


def test_sequence_set_resolution() -> None:
    s = parse_sequence_set(b"9:7,1,*,3:4")
    assert s.resolve(20) == [(1, 1), (3, 4), (7, 9), (20, 20)]
    # RFC 3501 6.4.8: "*" is the largest number in use, so 30:* with 20 in use is 20:30.
    assert parse_sequence_set(b"30:*").resolve(20) == [(20, 30)]
    assert list(s.select([1, 2, 3, 8, 10, 20], 20)) == [1, 3, 8, 20]
    assert bytes(s) == b"9:7,1,*,3:4"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("fred", b'"fred"'),
        ('a"b\\c', b'"a\\"b\\\\c"'),
        ("", b'""'),
        ("déjà", b"{6}\r\nd\xc3\xa9j\xc3\xa0"),
        (b"a\r\nb", b"{4}\r\na\r\nb"),
        (b"\x00", b"{1}\r\n\x00"),
    ],
)
def test_string_quotes_when_safe(value: str | bytes, wire: bytes) -> None:
    assert f.string(value) == wire


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("fred", b"fred"),
        ("a]b", b"a]b"),
        ("nil", b'"nil"'),
        ("a b", b'"a b"'),
        ("a(", b'"a("'),
        ("", b'""'),
    ],  # fmt: skip
)
def test_astring(value: str, wire: bytes) -> None:
    assert f.astring(value) == wire


def test_nstring_and_literal_headers() -> None:
    assert f.nstring(None) == b"NIL"
    assert f.nstring("x") == b'"x"'
    assert f.literal_header(12) == b"{12}\r\n"
    assert f.literal_header(3, binary=True) == b"~{3}\r\n"


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("inbox", b"INBOX"),
        ("Entwürfe", b"Entw&APw-rfe"),
        ("A&B", b"A&-B"),
        ("Sent Items", b'"Sent Items"'),
        ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ],  # fmt: skip
)
def test_mailbox_names_in_modified_utf7(name: str, wire: bytes) -> None:
    assert f.mailbox(name) == wire
    # and back: the parser reads what we write
    assert command(b"t SELECT " + wire) == Select(name if name.upper() != "INBOX" else "INBOX")


names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(names)
def test_any_mailbox_name_round_trips(name: str) -> None:
    wire = f.mailbox(name)
    expected = "INBOX" if name.upper() == "INBOX" else name
    assert command(b"t COPY 1 " + wire) == Copy(SequenceSet(((1, 1),)), expected)


@given(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")))
def test_any_string_round_trips_as_login_argument(value: bytes) -> None:
    assert command(b"t LOGIN " + f.astring(value) + b" " + f.string(value)) == Login(value, value)


def test_date_time_format() -> None:
    when = datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8)))
    assert f.date_time(when) == b'"07-Feb-1994 21:52:25 -0800"'
    assert f.date_time(datetime(2024, 12, 1, 0, 0, 0, tzinfo=UTC)) == b'"01-Dec-2024 00:00:00 +0000"'  # fmt: skip
    assert f.date_time(datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))).endswith(b'+0530"')  # fmt: skip


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)), st.integers(-23 * 60 - 59, 23 * 60 + 59))  # fmt: skip
def test_date_time_round_trips_through_append(when: datetime, offset: int) -> None:
    when = when.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    result = command(b"t APPEND x " + f.date_time(when) + b" {1+}\r\nm")
    assert isinstance(result, Append)
    assert result.internal_date == when
    assert result.internal_date is not None and result.internal_date.utcoffset() == when.utcoffset()


def test_list_and_status_responses() -> None:
    assert f.list_response(b"LIST", ["\\HasNoChildren", "\\Sent"], "/", "Sent") == b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n'  # fmt: skip
    assert f.list_response(b"LSUB", [], None, "a b") == b'* LSUB () NIL "a b"\r\n'
    assert f.status_response("INBOX", [("MESSAGES", 2), ("UIDNEXT", 9)]) == b"* STATUS INBOX (MESSAGES 2 UIDNEXT 9)\r\n"  # fmt: skip


def test_fetch_response_with_streamed_body() -> None:
    body = b"Subject: x\r\n\r\nhi\r\n"
    item = BodySection(Section(), peek=True, partial=(0, 100))
    wire = (
        f.fetch_start(12)
        + f.fetch_item(b"UID", b"7")
        + b" "
        + f.fetch_item(b"FLAGS", f.flag_list(["\\Seen", "\\Recent"]))
        + b" "
        + f.fetch_item(b"INTERNALDATE", f.date_time(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)))
        + b" "
        + f.fetch_item(b"RFC822.SIZE", b"%d" % len(body))
        + b" "
        + f.fetch_item(b"MODSEQ", b"(42)")
        + b" "
        + f.fetch_body_header(item, len(body))
        + body
        + f.FETCH_END
    )
    assert wire == (
        b'* 12 FETCH (UID 7 FLAGS (\\Seen \\Recent) INTERNALDATE "02-Jan-2020 03:04:05 +0000" '
        b"RFC822.SIZE 18 MODSEQ (42) BODY[]<0> {18}\r\nSubject: x\r\n\r\nhi\r\n)\r\n"
    )
    assert f.fetch_body_header(BodySection(Section((9,))), None) == b"BODY[9] NIL"
    assert f.fetch_body_header(BodySection(binary=True), 3) == b"BINARY[] ~{3}\r\n"


def test_error_responses() -> None:
    from twisted_mail_stack.imap4._framer import Rejected, RejectReason
    from twisted_mail_stack.imap4._parser import ParseError

    assert f.parse_error_response(ParseError("a1", "unknown command FROB")) == b"a1 BAD unknown command FROB\r\n"  # fmt: skip
    assert f.parse_error_response(ParseError(None, "missing tag")) == b"* BAD missing tag\r\n"
    assert f.parse_error_response(ParseError("a", "x", "BADCHARSET (UTF-8)", "NO")) == b"a NO [BADCHARSET (UTF-8)] x\r\n"  # fmt: skip
    too_big = Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 9, synchronising=True)
    assert f.rejected_response(too_big) == b"a NO [TOOBIG] Literal too big\r\n"
    sent = Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 9, synchronising=False)
    assert f.rejected_response(sent) == b"a BAD [TOOBIG] Literal too big\r\n"
    assert f.rejected_response(Rejected(None, RejectReason.LINE_TOO_LONG)) == b"* BAD [TOOBIG] Command line too long\r\n"  # fmt: skip


def test_search_response() -> None:
    assert f.search_response([]) == b"* SEARCH\r\n"
    assert f.search_response([2, 3, 6], modseq=917162500) == b"* SEARCH 2 3 6 (MODSEQ 917162500)\r\n"  # fmt: skip


def test_typed_fetch_items_and_mailbox_data() -> None:
    line = f.fetch_line(
        3,
        [
            f.fetch_uid(9),
            f.fetch_flags(frozenset({"zeta", "\\Deleted", "$Label1", "\\Seen"}), recent=True),
            f.fetch_size(4096),
            f.fetch_internaldate(datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
            f.fetch_modseq(12),
        ],
    )
    assert line == (
        b"* 3 FETCH (UID 9 FLAGS (\\Seen \\Deleted \\Recent $Label1 zeta) RFC822.SIZE 4096 "
        b'INTERNALDATE "04-Mar-2021 05:06:07 +0000" MODSEQ (12))\r\n'
    )
    assert f.exists(23) == b"* 23 EXISTS\r\n"
    assert f.recent(1) == b"* 1 RECENT\r\n"
    assert f.expunge(4) == b"* 4 EXPUNGE\r\n"
    assert f.flags_response(["\\Draft", "\\Answered"]) == b"* FLAGS (\\Answered \\Draft)\r\n"


keywords = st.text(st.sampled_from("abcXYZ019$_-.&'!#"), min_size=1, max_size=8)
system = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"])


@given(st.frozensets(st.one_of(keywords, system), max_size=6))
def test_flag_lists_round_trip_through_store(flags: frozenset[str]) -> None:
    from twisted_mail_stack.imap4._commands import Store
    from twisted_mail_stack.values import StoreMode

    result = command(b"t STORE 1 FLAGS " + f.flag_list(f.sorted_flags(flags)))
    assert result == Store(SequenceSet(((1, 1),)), StoreMode.REPLACE, flags)
