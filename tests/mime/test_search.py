"""SEARCH helpers (RFC 3501 6.4.4): decoded header words, decoded bodies, Date header dates."""

from __future__ import annotations

import datetime

import pytest

from tests.mime import samples
from tests.mime.samples import crlf
from twisted_mail_stack.mime import decode_words, matches_text, parse_date, sent_date

# imaptest src/tests/search-body.mbox, and src/tests/search-body's expected results.
SEARCH_BODY = [
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\n\nasdfghjkl zxcvbnm\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\nSubject: qwertyuiop\n\nasdfghjkl\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\nX-Header: qwertyuiop\n\nzxcvbnm\n"),
    crlf("Date: Sat, 24 Mar 2007 23:00:00 +0200\n\nzxcvbnm qwertyuiop\n"),
]


@pytest.mark.parametrize(
    "where, needle, expected",
    [
        ("TEXT", "asdfghjkl", [1, 2]),
        ("TEXT", "zxcvbnm", [1, 3, 4]),
        ("TEXT", "qwertyuiop", [2, 3, 4]),
        ("BODY", "asdfghjkl", [1, 2]),
        ("BODY", "zxcvbnm", [1, 3, 4]),
        ("BODY", "qwertyuiop", [4]),
        ("TEXT", "sdfghjk", [1, 2]),
        ("TEXT", "xcvbn", [1, 3, 4]),
        ("TEXT", "wertyuio", [2, 3, 4]),
        ("BODY", "sdfghjk", [1, 2]),
        ("BODY", "xcvbn", [1, 3, 4]),
        ("BODY", "wertyuio", [4]),
        ("TEXT", "WERTYUIO", [2, 3, 4]),
    ],
)
def test_imaptest_search_body(where: str, needle: str, expected: list[int]) -> None:
    found = [i for i, raw in enumerate(SEARCH_BODY, 1) if matches_text(raw, needle, where)]  # type: ignore[arg-type]
    assert found == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"=?utf-8?q?J=C3=B6rg?=", "Jörg"),
        (b"=?UTF-8?B?R3LDvMOfZQ==?= aus Berlin", "Grüße aus Berlin"),
        # Whitespace between adjacent encoded-words is dropped (RFC 2047 6.2), not elsewhere.
        (b"=?utf-8?q?a?= =?utf-8?q?b?= c", "ab c"),
        (b"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        (b"=?iso-8859-1?q?=E9t=E9?=", "été"),
        (b"=?utf-8*en?q?x?=", "x"),  # RFC 2231 language suffix
        (b"=?x-unknown?q?plain?=", "plain"),  # unknown charset: decoded as UTF-8
        (b"=?utf-8?b?###?=", ""),  # bad base64 is tolerated
        (b"Gr\xc3\xbc\xc3\x9fe", "Grüße"),  # raw 8-bit UTF-8
        (b"\xff", "\ufffd"),
        (b"not =? an encoded word", "not =? an encoded word"),
    ],
)
def test_decode_words(value: bytes, expected: str) -> None:
    assert decode_words(value) == expected


def test_header_keys_match_decoded_words() -> None:
    raw = samples.ALTERNATIVE
    # Full Unicode case folding (as RFC 5051 i;unicode-casemap, Dovecot's comparator): ß ~ ss.
    assert matches_text(raw, "GRÜSSE", "SUBJECT")
    assert not matches_text(raw, "grüsze", "SUBJECT")
    assert matches_text(raw, "grüße aus", "SUBJECT")
    assert matches_text(raw, "MÜLLER", "FROM")
    assert matches_text(raw, "smith, ann", "TO")
    assert not matches_text(raw, "smith", "CC")
    assert not matches_text(raw, "x", "BCC")
    assert matches_text(raw, "alt-1@", "HEADER", "Message-ID")
    assert matches_text(raw, "", "HEADER", "message-id")  # empty: the field exists
    assert not matches_text(raw, "", "HEADER", "X-Missing")


def test_body_decodes_transfer_encodings_and_charsets() -> None:
    raw = samples.ALTERNATIVE
    assert matches_text(raw, "schönes wetter", "BODY")  # quoted-printable soft line break
    assert matches_text(raw, "<P>GRÜßE", "BODY")  # base64, ISO-8859-1
    assert not matches_text(raw, "=C3=B6", "BODY")
    assert matches_text(raw, "Berlin", "BODY")
    assert not matches_text(raw, "joerg@example.de", "BODY")
    assert matches_text(raw, "joerg@example.de", "TEXT")


def test_body_skips_non_text_parts_but_reads_inner_messages() -> None:
    assert not matches_text(samples.ATTACHMENT, "PDF", "BODY")
    assert matches_text(samples.ATTACHMENT, "attached report", "BODY")
    assert matches_text(samples.IMAPTEST_MIME, "ANOTHER WORLD", "BODY")
    assert matches_text(samples.IMAPTEST_MIME, "submsg", "BODY")  # the inner message's header
    assert not matches_text(samples.IMAPTEST_MIME, "submsg", "SUBJECT")


def test_never_raises_on_garbage() -> None:
    for raw in (b"", b"\r\n", b"Content-Transfer-Encoding: base64\r\n\r\n!!!", b"\xff\xfe:\x00"):
        for where in ("BODY", "TEXT", "SUBJECT"):
            assert matches_text(raw, "zzz", where) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"Thu, 15 Feb 2007 01:02:03 +0200", datetime.date(2007, 2, 15)),
        # The date as written: the time zone is not applied (RFC 3501 6.4.4).
        (b"Mon, 31 Dec 2007 23:30:00 -1200", datetime.date(2007, 12, 31)),
        (b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", datetime.date(1996, 7, 17)),
        (b"1 Jan 99 00:00 GMT", datetime.date(1999, 1, 1)),
        (b"garbage", None),
        (b"Thu, 31 Feb 2007 01:02:03 +0200", None),
        (b"", None),
    ],
)
def test_parse_date(value: bytes, expected: datetime.date | None) -> None:
    assert parse_date(value) == expected


def test_sent_date_reads_the_header_only() -> None:
    assert sent_date(SEARCH_BODY[0]) == datetime.date(2007, 3, 24)
    assert sent_date(b"Subject: x\r\n\r\nDate: Thu, 15 Feb 2007 01:02:03 +0200\r\n") is None
