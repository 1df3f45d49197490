"""
The SEARCH engine (RFC 3501 6.4.4; RFC 7162 3.1.5) over the memory backend, against the
expected results of Dovecot's imaptest (src/tests/search-*), and random keys with hypothesis.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.imap4.engine_helpers import BatchMailbox, CountingMailbox, make_mailbox, result, run
from tests.imap4.helpers import command
from tests.mime.samples import crlf
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
from twisted_mail_stack.imap4.cache import MessageCache
from twisted_mail_stack.imap4.search import search, uses_modseq
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.values import MessageInfo

Messages = list[tuple[int, MessageInfo]]


def key_of(text: bytes) -> SearchKey:
    cmd = command(b"t " + text)
    assert isinstance(cmd, Search)
    return cmd.key


def utf8(text: str) -> bytes:
    """A literal: 8-bit search strings cannot be atoms or quoted strings (RFC 3501 9)."""
    raw = text.encode("utf-8")
    return b"{%d}\r\n" % len(raw) + raw


def numbers(
    mailbox: IMailbox, messages: Messages, text: bytes, recent: frozenset[int] = frozenset()
) -> list[int]:
    found = run(search(mailbox, messages, key_of(text), MessageCache(), recent=recent))
    return [n for n, _ in found]


# -- imaptest src/tests/search-flags ----------------------------------------------------------


@pytest.fixture
def flagged() -> tuple[IMailbox, Messages]:
    return make_mailbox(
        [
            (b"a: 1\r\n\r\nx\r\n", ["$$hello"]),
            (b"a: 2\r\n\r\nx\r\n", ["\\Seen", "\\Flagged"]),
            (b"a: 3\r\n\r\nx\r\n", ["\\Answered", "$$hello"]),
            (b"a: 4\r\n\r\nx\r\n", ["\\Flagged", "\\Draft"]),
            (b"a: 5\r\n\r\nx\r\n", ["\\Deleted", "\\Answered"]),
        ]
    )


@pytest.mark.parametrize(
    "key, expected",
    [
        (b"ANSWERED", [3, 5]),
        (b"UNANSWERED", [1, 2, 4]),
        (b"DELETED", [5]),
        (b"UNDELETED", [1, 2, 3, 4]),
        (b"DRAFT", [4]),
        (b"UNDRAFT", [1, 2, 3, 5]),
        (b"FLAGGED", [2, 4]),
        (b"UNFLAGGED", [1, 3, 5]),
        (b"SEEN", [2]),
        (b"UNSEEN", [1, 3, 4, 5]),
        (b"KEYWORD $$hello", [1, 3]),
        (b"KEYWORD $$HELLO", [1, 3]),
        (b"UNKEYWORD $$hello", [2, 4, 5]),
        (b"NEW", [1, 3, 4, 5]),
        (b"OLD", []),
        (b"RECENT", [1, 2, 3, 4, 5]),
        (b"ALL", [1, 2, 3, 4, 5]),
    ],
)
def test_imaptest_search_flags(
    flagged: tuple[IMailbox, Messages], key: bytes, expected: list[int]
) -> None:
    inner, messages = flagged
    mailbox = CountingMailbox(inner)
    everything = frozenset(range(1, 6))
    assert numbers(mailbox, messages, b"SEARCH " + key, recent=everything) == expected  # type: ignore[arg-type]
    assert mailbox.opened == []  # flags come from the index


def test_new_and_old_with_some_recent(flagged: tuple[IMailbox, Messages]) -> None:
    mailbox, messages = flagged
    recent = frozenset({2, 3})
    assert numbers(mailbox, messages, b"SEARCH NEW", recent) == [3]
    assert numbers(mailbox, messages, b"SEARCH OLD", recent) == [1, 4, 5]
    assert numbers(mailbox, messages, b"SEARCH RECENT", recent) == [2, 3]


# -- imaptest src/tests/search-sets -------------------------------------------------------------


@pytest.fixture
def gapped() -> tuple[IMailbox, Messages, list[int]]:
    """Six messages with the second expunged: sequence numbers and UIDs differ."""
    mailbox, _ = make_mailbox([b"n: %d\r\n\r\nx\r\n" % i for i in range(1, 7)])
    result(mailbox.remove([2]))
    infos = result(mailbox.list_messages())
    return mailbox, list(enumerate(infos, 1)), [i.uid for i in infos]


@pytest.mark.parametrize(
    "key, expected",
    [
        (b"ALL", [1, 2, 3, 4, 5]),
        (b"1:3,5", [1, 2, 3, 5]),
        (b"4:2", [2, 3, 4]),
        (b"UID 1:3,5", [1, 2, 4]),
        (b"UID 4:2", [2, 3]),
        (b"1:3 NOT UID 3", [1, 3]),
        (b"NOT 2,4", [1, 3, 5]),
        (b"OR 1 UID 3", [1, 2]),
        (b"*", [5]),
        (b"UID *", [5]),
        (b"6:*", [5]),
        (b"*:6", [5]),
        (b"UID 7:*", [5]),
        (b"*:3", [3, 4, 5]),
        (b"1,4,*", [1, 4, 5]),
    ],
)
def test_imaptest_search_sets(
    gapped: tuple[IMailbox, Messages, list[int]], key: bytes, expected: list[int]
) -> None:
    mailbox, messages, uids = gapped
    assert uids == [1, 3, 4, 5, 6]
    assert numbers(mailbox, messages, b"SEARCH " + key) == expected


# -- imaptest src/tests/search-size, search-header, search-addresses --------------------------


def test_imaptest_search_size() -> None:
    bodies = [b"x\r\n", b"xx\r\n", b"xxx\r\n", b"xxxx\r\n"]
    mailbox, messages = make_mailbox([b"S: s\r\n\r\n" + b for b in bodies])
    size = messages[2][1].size
    assert numbers(mailbox, messages, b"SEARCH SMALLER %d" % size) == [1, 2]
    assert numbers(mailbox, messages, b"SEARCH LARGER %d" % size) == [4]
    assert numbers(mailbox, messages, b"SEARCH NOT SMALLER %d" % size) == [3, 4]
    assert numbers(mailbox, messages, b"SEARCH NOT LARGER %d" % size) == [1, 2, 3]
    assert numbers(mailbox, messages, b"SEARCH NOT SMALLER %d NOT LARGER %d" % (size, size)) == [3]
    assert numbers(mailbox, messages, b"SEARCH OR SMALLER %d LARGER %d" % (size, size)) == [1, 2, 4]


HEADERS = [
    crlf("Subject: hello beautiful world\n\nbody\n"),
    crlf("X-Extra: hello beautiful header\n\nbody\n"),
]


@pytest.mark.parametrize(
    "key, expected",
    [
        (b"SUBJECT hello", [1]),
        (b"SUBJECT beautiful", [1]),
        (b'SUBJECT "hello beautiful world"', [1]),
        (b'SUBJECT "eautiful worl"', [1]),
        (b'HEADER subject ""', [1]),
        (b'NOT HEADER subject ""', [2]),
        (b'HEADER x-extra ""', [2]),
        (b'NOT HEADER x-extra ""', [1]),
        (b"HEADER x-extra hello", [2]),
        (b'HEADER X-EXTRA "eautiful head"', [2]),
    ],
)
def test_imaptest_search_header(key: bytes, expected: list[int]) -> None:
    mailbox, messages = make_mailbox(HEADERS)
    assert numbers(mailbox, messages, b"SEARCH " + key) == expected


ADDRESSES = [
    crlf(
        "From: user-from@domain.org\nTo: user-to@domain.org\nCc: user-cc@domain.org\n"
        "Bcc: user-bcc@domain.org\n\nbody\n"
    ),
    crlf(
        "From: RealFrom <user-from@domain.org>\nTo: RealTo <user-to@domain.org>\n"
        "Cc: RealCc <user-cc@domain.org>\nBcc: RealBcc <user-bcc@domain.org>\n\nbody2\n"
    ),
    crlf(
        "From: <user-from (comment)@ (comment) domain.org>\nTo: <user-to@domain.org>\n"
        "Cc: <user-cc@domain.org>\nBcc: <user-bcc@domain.org>\n\nbody3\n"
    ),
    crlf(
        "From: user-from@domain.org (RealFrom)\nTo: user-to@domain.org (RealTo)\n"
        "Cc: user-cc@domain.org (RealCc)\nBcc: user-bcc@domain.org (RealBcc)\n\nbody4\n"
    ),
    crlf("From: user-from1@domain.org, user-from2@domain.org\nCc: user-cc@domain.org\n\nbody5\n"),
    crlf(
        "To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\n"
        "  groupname2: groupuser3@domain.org;\n\nbody5\n"
    ),
]


@pytest.mark.parametrize(
    "key, expected",
    [
        # A substring of the header text (RFC 3501 6.4.4) or, as imaptest expects, of the
        # addresses as parsed (comments removed: message 3).
        (b"FROM user-from@domain.org", [1, 2, 3, 4]),  # 3 by its parsed address
        (b'FROM "user-from (comment)@"', [3]),  # the header text still matches too
        (b"TO user-to@domain.org", [1, 2, 3, 4]),
        (b"CC user-cc@domain.org", [1, 2, 3, 4, 5]),
        (b"BCC user-bcc@domain.org", [1, 2, 3, 4]),
        (b"FROM realfrom", [2, 4]),
        (b"TO realto", [2, 4]),
        (b"CC realcc", [2, 4]),
        (b"BCC realbcc", [2, 4]),
        (b'HEADER from ""', [1, 2, 3, 4, 5]),
        (b'HEADER to ""', [1, 2, 3, 4, 6]),
        (b'HEADER cc ""', [1, 2, 3, 4, 5]),
        (b'HEADER bcc ""', [1, 2, 3, 4]),
        (b"FROM ser-fro", [1, 2, 3, 4, 5]),
        (b"TO ser-t", [1, 2, 3, 4]),
        (b"FROM ealfro", [2, 4]),
        (b"FROM user-from1", [5]),
        (b"FROM user-from2", [5]),
        (b"TO groupname", [6]),
        (b"TO groupname2", [6]),
        (b"TO groupuser3", [6]),
        (b"TO groupuser4", []),
    ],
)
def test_imaptest_search_addresses(key: bytes, expected: list[int]) -> None:
    mailbox, messages = make_mailbox(ADDRESSES)
    assert numbers(mailbox, messages, b"SEARCH " + key) == expected


def test_encoded_words_are_decoded() -> None:
    mailbox, messages = make_mailbox(
        [
            b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nx\r\n",
            b"Subject: plain\r\n\r\nx\r\n",
        ]
    )
    assert numbers(mailbox, messages, b"SEARCH CHARSET UTF-8 FROM " + utf8("jörg")) == [1]
    # Full case folding: "ß" matches "SS".
    assert numbers(mailbox, messages, b"SEARCH CHARSET UTF-8 SUBJECT " + utf8("GRÜSSE")) == [1]
    assert numbers(mailbox, messages, b"SEARCH CHARSET UTF-8 SUBJECT " + utf8("grüsse!")) == []
    assert numbers(mailbox, messages, b"SEARCH CHARSET UTF-8 SUBJECT " + utf8("grüße")) == [1]


# -- imaptest src/tests/search-body -------------------------------------------------------------

BODIES = [
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\n\nasdfghjkl zxcvbnm\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\nSubject: qwertyuiop\n\nasdfghjkl\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\nX-Header: qwertyuiop\n\nzxcvbnm\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\n\nzxcvbnm qwertyuiop\n"),
]


@pytest.mark.parametrize(
    "key, expected",
    [
        (b"TEXT asdfghjkl", [1, 2]),
        (b"TEXT zxcvbnm", [1, 3, 4]),
        (b"TEXT qwertyuiop", [2, 3, 4]),
        (b"BODY asdfghjkl", [1, 2]),
        (b"BODY qwertyuiop", [4]),
        (b"TEXT wertyuio", [2, 3, 4]),
        (b"BODY xcvbn", [1, 3, 4]),
        (b"TEXT WERTYUIO", [2, 3, 4]),
    ],
)
def test_imaptest_search_body(key: bytes, expected: list[int]) -> None:
    mailbox, messages = make_mailbox(BODIES)
    assert numbers(mailbox, messages, b"SEARCH " + key) == expected
    batched = BatchMailbox(mailbox)
    assert numbers(batched, messages, b"SEARCH " + key) == expected  # type: ignore[arg-type]
    assert batched.opened == [] and len(batched.batches) == 1


def test_base64_body_is_decoded() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"R3LDvMOfZSBhdXMgQmVybGlu\r\n"
    )
    mailbox, messages = make_mailbox([raw])
    assert numbers(mailbox, messages, b"SEARCH BODY berlin") == [1]
    assert numbers(mailbox, messages, b"SEARCH CHARSET UTF-8 BODY " + utf8("grüße")) == [1]


# -- dates ---------------------------------------------------------------------------------------


def test_internal_dates() -> None:
    day = datetime(2007, 3, 25, 12, 0, tzinfo=UTC)
    mailbox, messages = make_mailbox(
        [(b"a: b\r\n\r\nx\r\n", [], day + timedelta(days=d)) for d in (-1, 0, 0, 1)]
    )
    assert numbers(mailbox, messages, b"SEARCH BEFORE 25-Mar-2007") == [1]
    assert numbers(mailbox, messages, b"SEARCH ON 25-mar-2007") == [2, 3]
    assert numbers(mailbox, messages, b"SEARCH SINCE 25-Mar-2007") == [2, 3, 4]
    assert numbers(mailbox, messages, b'SEARCH SINCE "27-Mar-2007"') == []


def test_sent_dates_use_the_header_date_in_its_own_zone() -> None:
    """imaptest search-date: the Date header's calendar day, time and zone disregarded."""
    dates = [
        "Sat, 24 Mar 2007 23:59:59 +0200",
        "Sun, 25 Mar 2007 00:00:00 +0200",
        "Sun, 25 Mar 2007 23:59:59 +0300",
        "Mon, 26 Mar 2007 00:00:00 +0300",
    ]
    mailbox, messages = make_mailbox(
        [crlf(f"Date: {d}\n\nx\n") for d in dates] + [b"Subject: undated\r\n\r\nx\r\n"]
    )
    assert numbers(mailbox, messages, b"SEARCH SENTBEFORE 24-mar-2007") == []
    assert numbers(mailbox, messages, b"SEARCH SENTBEFORE 25-mar-2007") == [1]
    assert numbers(mailbox, messages, b"SEARCH SENTON 25-mar-2007") == [2, 3]
    assert numbers(mailbox, messages, b"SEARCH SENTSINCE 26-mar-2007") == [4]
    assert numbers(mailbox, messages, b"SEARCH 1:4 SENTSINCE 24-mar-2007") == [1, 2, 3, 4]


# -- MODSEQ, cheap keys first, large messages ---------------------------------------------------


def test_modseq_key() -> None:
    mailbox, messages = make_mailbox([b"a: b\r\n\r\nx\r\n"] * 3)
    second = messages[1][1].modseq
    assert numbers(mailbox, messages, b"SEARCH MODSEQ %d" % second) == [2, 3]
    assert numbers(mailbox, messages, b'SEARCH MODSEQ "/flags/\\\\draft" all %d' % second) == [2, 3]
    assert uses_modseq(key_of(b"SEARCH OR SEEN NOT MODSEQ 5"))
    assert uses_modseq(key_of(b"SEARCH (ALL (MODSEQ 5))"))
    assert not uses_modseq(key_of(b"SEARCH OR SEEN NOT ANSWERED"))


def test_content_read_only_for_candidates() -> None:
    """UNSEEN BODY x reads the unseen messages only; SUBJECT reads headers, not bodies."""
    raw = b"Subject: needle\r\n\r\n" + b"body\r\n" * 10
    inner, messages = make_mailbox([(raw, ["\\Seen"]), raw, (raw, ["\\Seen"]), raw])
    mailbox = CountingMailbox(inner)
    assert numbers(mailbox, messages, b"SEARCH BODY body UNSEEN") == [2, 4]  # type: ignore[arg-type]
    assert mailbox.opened == [2, 4]
    assert numbers(mailbox, messages, b"SEARCH OR SEEN SUBJECT needle") == [1, 2, 3, 4]  # type: ignore[arg-type]
    assert mailbox.opened == [2, 4, 2, 4]


def test_large_message_header_search_reads_the_header_only() -> None:
    raw = b"Subject: big\r\n\r\n" + b"y" * (2 * 1024 * 1024)
    inner, messages = make_mailbox([raw])
    mailbox = CountingMailbox(inner)
    assert numbers(mailbox, messages, b"SEARCH SUBJECT big") == [1]  # type: ignore[arg-type]
    assert mailbox.bytes_read <= 64 * 1024
    assert numbers(mailbox, messages, b"SEARCH BODY yyy") == [1]  # type: ignore[arg-type]


def test_vanished_message_does_not_match() -> None:
    mailbox, messages = make_mailbox(BODIES)
    result(mailbox.remove([1]))
    assert numbers(mailbox, messages, b"SEARCH TEXT zxcvbnm") == [3, 4]
    assert numbers(mailbox, messages, b"SEARCH ALL") == [1, 2, 3, 4]  # from the given infos


def test_empty_mailbox() -> None:
    mailbox, messages = make_mailbox([])
    assert numbers(mailbox, messages, b"SEARCH ALL") == []


# -- random keys ---------------------------------------------------------------------------------

RANDOM_MESSAGES = [
    (BODIES[0], ["\\Seen"], datetime(2007, 3, 24, tzinfo=UTC)),
    (ADDRESSES[1], ["$Work", "\\Flagged"], datetime(2007, 3, 25, tzinfo=UTC)),
    (HEADERS[0], [], datetime(2007, 3, 26, tzinfo=UTC)),
    (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n",
        ["\\Deleted"],
        datetime(2020, 1, 1, tzinfo=UTC),
    ),
    (b"\x00\xff garbage without header", ["\\Answered"], datetime(1999, 1, 1, tzinfo=UTC)),
]
MAILBOX, MESSAGES = make_mailbox(RANDOM_MESSAGES)
UIDS = frozenset(i.uid for _, i in MESSAGES)

texts = st.text(alphabet="abcdehlorwxyz @.-\u00e9", max_size=6)
bounds = st.sampled_from([1, 2, 3, 5, 9, STAR])
leaves = st.one_of(
    st.just(All()),
    st.sampled_from(
        ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft", RECENT, "$work", "$x"]
    ).map(FlagKey),
    st.builds(
        DateKey,
        st.sampled_from(list(DateField)),
        st.sampled_from(list(DateOp)),
        st.dates(date(1990, 1, 1), date(2030, 1, 1)),
    ),
    st.builds(SizeKey, st.booleans(), st.integers(0, 500)),
    st.builds(
        HeaderKey, st.sampled_from(["From", "To", "Cc", "Bcc", "Subject", "X-Extra", "Date"]), texts
    ),
    st.builds(TextKey, texts, st.booleans()),
    st.builds(
        SequenceKey,
        st.lists(st.tuples(bounds, bounds), min_size=1, max_size=3).map(
            lambda r: SequenceSet(tuple(r))
        ),
        st.booleans(),
    ),
    st.builds(ModSeqKey, st.integers(0, 20)),
)
keys = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(Or, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda k: And(tuple(k))),
    ),
    max_leaves=8,
)


def found(key: SearchKey) -> set[int]:
    hits = run(search(MAILBOX, MESSAGES, key, MessageCache(), recent=frozenset({2})))
    assert [n for n, _ in hits] == sorted(n for n, _ in hits)
    return {n for n, _ in hits}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys, keys)
def test_random_keys_never_raise_and_obey_boolean_laws(a: SearchKey, b: SearchKey) -> None:
    every = {n for n, _ in MESSAGES}
    fa, fb = found(a), found(b)
    assert fa <= every
    assert found(Not(a)) == every - fa
    assert found(And((a, b))) == fa & fb
    assert found(Or(a, b)) == fa | fb


# -- the quick look before a full text search ---------------------------------------------------

FRAGMENTS = [
    b"Subject: Hello\r\n World",
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
    b"X-Note: a\r\n\tfolded\r\n line",
    b"Content-Type: text/plain; charset=us-ascii",
    b"Content-Type: text/plain; charset=utf-7",
    b"Content-Type: text/plain; charset=iso-8859-1",
    b"Content-Type: text/plain; charset=cp500",
    b"Content-Type: text/plain; charset(c)=utf-7",
    b"Content-Type: text/plain; charset*=utf-7''en",
    b'Content-Type: text/plain; charset="utf-7"',
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: base64",
    b'Content-Type: multipart/mixed; boundary="b"',
    b"Content-Type: message/rfc822",
]
BODY_FRAGMENTS = [
    b"plain words here",
    b"caf=C3=A9 so=\r\nft break",
    b"Stra=DFe",
    b"=DF",
    b"+AGEAYgBj-",
    b"aGVsbG8gd29ybGQ=",
    b"K\xe2\x84\xaa kelvin",
    b"--b\r\nContent-Type: text/plain\r\n\r\ninner part\r\n--b--",
    b"Subject: inner\r\n folded\r\n\r\ninner body",
    b"=?utf-8?q?x?=",
    b"\xdf",
]


@settings(max_examples=400, deadline=None)
@example([b"Content-Type: text/plain; charset(c)=utf-7"], [b"+AGEAYgBj-"], "abc", True)
@example([b"Content-Type: text/plain; charset*=utf-7''en"], [b"+AGEAYgBj-"], "abc", False)
@example([b"Content-Type: text/plain; charset=cp500"], [b"plain words here"], "x", True)
@example([b"Content-Transfer-Encoding: quoted-printable"], [b"Stra=DFe"], "ss", True)
@example([b"X-Note: a\r\n\tfolded\r\n line"], [], "folded", False)
@given(
    st.lists(st.sampled_from(FRAGMENTS), max_size=4),
    st.lists(st.sampled_from(BODY_FRAGMENTS), max_size=3),
    st.sampled_from(
        [
            "hello",
            "world",
            "folded",
            "inner",
            "k",
            "ss",
            "abc",
            "café",
            "soft",
            "x",
            "ß",
            "grüße",
            "plain",
        ]
    ),
    st.booleans(),
)
def test_quick_look_never_hides_a_match(
    header: list[bytes], body: list[bytes], needle: str, body_only: bool
) -> None:
    from twisted_mail_stack.imap4.search import _cannot_contain
    from twisted_mail_stack.mime import matches_text

    raw = b"\r\n".join(header) + b"\r\n\r\n" + b"\r\n".join(body) + b"\r\n"
    where = "BODY" if body_only else "TEXT"
    if _cannot_contain(raw, needle.casefold().encode(), body_only):
        assert not matches_text(raw, needle, where)  # type: ignore[arg-type]


def test_quick_look_spares_plain_mail() -> None:
    from twisted_mail_stack.imap4.search import _cannot_contain

    plain = b"Subject: =?utf-8?q?x?=\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n"
    assert _cannot_contain(plain, b"zebra", body_only=True)
    assert not _cannot_contain(plain, b"zebra", body_only=False)  # the subject must be decoded
    assert not _cannot_contain(plain, b"hello", body_only=True)


flag_leaves = st.one_of(
    st.just(All()),
    st.sampled_from(
        ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft", "$work", "$X"]
    ).map(FlagKey),
)
flag_keys = st.recursive(
    flag_leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(Or, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda k: And(tuple(k))),
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(flag_keys)
def test_flags_only_keys_agree_with_the_message_by_message_path(key: SearchKey) -> None:
    """
    Keys on flags alone are judged once per flag set; a SIZE key that every message passes
    sends the same key down the per-message path, which must find the same messages.
    """
    from twisted_mail_stack.imap4.search import _compile, _Context

    assert _compile(key, _Context(1, 1, frozenset())).by_flags is not None
    slow = And((key, SizeKey(False, 10**9)))
    assert _compile(slow, _Context(1, 1, frozenset())).by_flags is None
    assert found(key) == found(slow)


def test_recent_is_not_judged_by_flags_alone(flagged: tuple[IMailbox, Messages]) -> None:
    mailbox, messages = flagged
    assert numbers(mailbox, messages, b"SEARCH UNSEEN NOT RECENT", frozenset({1, 4})) == [3, 5]
    assert numbers(mailbox, messages, b"SEARCH OR RECENT SEEN", frozenset({4})) == [2, 4]
