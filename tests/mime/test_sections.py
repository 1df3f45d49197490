"""
BODY[section]<partial> (RFC 3501 6.4.5), byte-exact, against the expected outputs of Dovecot's
imaptest src/tests/fetch-body, fetch-body-mime, fetch-body-message-rfc822{,-mime,-x2}.
"""

from __future__ import annotations

import pytest

from tests.mime import samples
from twisted_mail_stack.mime import SectionSpec, analyse, locate, section_bytes

MIME = samples.IMAPTEST_MIME
# Part 2's body: the whole message/rfc822 between its header and the CRLF before "--foo bar--".
_SUB_START = MIME.index(b"From: sub@domain.org")
SUB_MESSAGE = MIME[_SUB_START : MIME.index(b"\r\n--foo bar--", _SUB_START)]
assert SUB_MESSAGE.endswith(b"Sub MIME epilogue\r\n")

H, HF, HFN, T, M = "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"

CASES = [
    # fetch-body-mime
    (MIME, (), "", (), MIME),
    (MIME, (), T, (), MIME[MIME.index(b"Root MIME prologue") :]),
    (MIME, (1,), "", (), b"hello\r\n"),
    (MIME, (1,), M, (), b"Content-Type: text/x-myown; charset=us-ascii\r\n\r\n"),
    (MIME, (2,), "", (), SUB_MESSAGE),
    (MIME, (2,), M, (), b"Content-Type: message/rfc822\r\n\r\n"),
    (MIME, (2,), H, (), SUB_MESSAGE[: SUB_MESSAGE.index(b"Sub MIME prologue")]),
    (
        MIME,
        (2,),
        HF,
        (b"from", b"subject", b"X-foo"),
        b"From: sub@domain.org\r\nSubject: submsg\r\n\r\n",
    ),
    (
        MIME,
        (2,),
        HFN,
        (b"from", b"subject", b"X-foo"),
        b"Date: Sun, 12 Aug 2012 12:34:56 +0300\r\n"
        b'Content-Type: multipart/alternative; boundary="sub1"\r\n\r\n',
    ),
    (MIME, (2,), T, (), SUB_MESSAGE[SUB_MESSAGE.index(b"Sub MIME prologue") :]),
    (MIME, (2, 1), M, (), b"Content-Type: text/html\r\n\r\n"),
    (MIME, (2, 1), "", (), b"<p>Hello world</p>\r\n"),
    (MIME, (2, 2), M, (), b"Content-Type: text/plain\r\n\r\n"),
    (MIME, (2, 2), "", (), b"Hello another world\r\n"),
    # fetch-body-message-rfc822
    (
        samples.IMAPTEST_RFC822,
        (1,),
        "",
        (),
        samples.IMAPTEST_RFC822[samples.IMAPTEST_RFC822.index(b"From: sub") :],
    ),
    (samples.IMAPTEST_RFC822, (1, 1), "", (), b"Hello world\r\n"),
    (
        samples.IMAPTEST_RFC822,
        (1,),
        H,
        (),
        b"From: sub@domain.org\r\nDate: Sun, 12 Aug 2012 12:34:56 +0300\r\nSubject: submsg\r\n\r\n",
    ),
    (samples.IMAPTEST_RFC822, (1,), T, (), b"Hello world\r\n"),
    (
        samples.IMAPTEST_RFC822,
        (1,),
        HFN,
        (b"from", b"subject", b"X-foo"),
        b"Date: Sun, 12 Aug 2012 12:34:56 +0300\r\n\r\n",
    ),
    # fetch-body-message-rfc822-mime (a digest inside)
    (
        samples.IMAPTEST_DIGEST,
        (1, 1),
        "",
        (),
        b"From: m1@example.com\r\nSubject: m1\r\n\r\nm1 body\r\n",
    ),
    (samples.IMAPTEST_DIGEST, (1, 1), M, (), b"\r\n"),
    (samples.IMAPTEST_DIGEST, (1, 1), H, (), b"From: m1@example.com\r\nSubject: m1\r\n\r\n"),
    (samples.IMAPTEST_DIGEST, (1, 1), T, (), b"m1 body\r\n"),
    (samples.IMAPTEST_DIGEST, (1, 2), M, (), b"X-Mime: m2 header\r\n\r\n"),
    (samples.IMAPTEST_DIGEST, (1, 2), T, (), b"m2 body\r\n"),
    (
        samples.IMAPTEST_DIGEST,
        (1,),
        T,
        (),
        samples.IMAPTEST_DIGEST[samples.IMAPTEST_DIGEST.index(b"prologue") :],
    ),
    # fetch-body-message-rfc822-x2
    (samples.IMAPTEST_RFC822_X2, (1, 1, 1), "", (), b"Hello world\r\n"),
    (
        samples.IMAPTEST_RFC822_X2,
        (1, 1),
        H,
        (),
        b"From: sub@domain.org\r\nDate: Sun, 12 Aug 2012 12:34:56 +0300\r\nSubject: submsg\r\n\r\n",
    ),
    (
        samples.IMAPTEST_RFC822_X2,
        (1,),
        H,
        (),
        b"From: user2@domain.org\r\nDate: Fri, 23 Mar 2007 11:22:33 +0200\r\n"
        b"Mime-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n",
    ),
    (samples.IMAPTEST_RFC822_X2, (1, 1), T, (), b"Hello world\r\n"),
    # fetch-body: header fields, repeated and missing names
    (samples.IMAPTEST_BODY[0], (), HF, (b"from",), b"From: User1 <user1@domain.org>\r\n\r\n"),
    (
        samples.IMAPTEST_BODY[0],
        (),
        HF,
        (b"from", b"from"),
        b"From: User1 <user1@domain.org>\r\n\r\n",
    ),
    (
        samples.IMAPTEST_BODY[0],
        (),
        HF,
        (b"FROM", b"subject"),
        b"From: User1 <user1@domain.org>\r\nSubject: s1\r\n\r\n",
    ),
    (
        samples.IMAPTEST_BODY[0],
        (),
        HFN,
        (b"date", b"date"),
        b"From: User1 <user1@domain.org>\r\nSubject: s1\r\n\r\n",
    ),
    (samples.IMAPTEST_BODY[0], (), HF, (b"xyz",), b"\r\n"),
    (samples.IMAPTEST_BODY[0], (), T, (), b"body1\r\n"),
    # A non-multipart message: part 1 is its body; 1.MIME its header.
    (samples.IMAPTEST_BODY[0], (1,), "", (), b"body1\r\n"),
    (samples.IMAPTEST_BODY[0], (1,), M, (), samples.IMAPTEST_BODY[0][:-7]),
]


@pytest.mark.parametrize("raw, part, kind, fields, expected", CASES)
def test_imaptest_sections(
    raw: bytes, part: tuple[int, ...], kind: str, fields: tuple[bytes, ...], expected: bytes
) -> None:
    spec = SectionSpec(part, kind, fields)  # type: ignore[arg-type]
    assert section_bytes(raw, spec) == expected
    # The same from the cached offsets tree.
    cached = analyse(raw).spans
    assert section_bytes(raw, spec, cached) == expected


@pytest.mark.parametrize(
    "partial, expected",
    [
        ((0, 3), b"bod"),
        ((5, 1), b"3"),
        ((5, 2), b"3\r"),
        ((5, 3), b"3\r\n"),
        ((6, 1), b"\r"),
        ((6, 2), b"\r\n"),
        ((7, 1), b"\n"),
        ((7, 100), b"\n"),
        ((8, 1), b""),
        ((1000, 5), b""),
    ],
)
def test_imaptest_partial(partial: tuple[int, int], expected: bytes) -> None:
    """fetch-body: BODY.PEEK[TEXT]<origin.size> of "body33\\r\\n"."""
    spec = SectionSpec((), "TEXT", partial=partial)
    assert section_bytes(samples.IMAPTEST_BODY[2], spec) == expected


@pytest.mark.parametrize(
    "raw, part, kind",
    [
        (MIME, (3,), ""),  # no such part
        (MIME, (0,), ""),
        (MIME, (1, 1), ""),  # a text part has no sub-parts
        (MIME, (1,), "HEADER"),  # HEADER only of a message
        (MIME, (1,), "TEXT"),
        (samples.IMAPTEST_BODY[0], (2,), ""),
        (samples.IMAPTEST_BODY[0], (), "MIME"),
    ],
)
def test_missing_sections(raw: bytes, part: tuple[int, ...], kind: str) -> None:
    assert section_bytes(raw, SectionSpec(part, kind)) is None  # type: ignore[arg-type]


def test_locate_gives_ranges_for_streaming() -> None:
    """A session can read a section's range from the store instead of the whole message."""
    s = analyse(MIME)
    where = locate(s.spans, SectionSpec((2, 2)))
    assert where is not None and not where.filter
    assert MIME[where.start : where.end] == b"Hello another world\r\n"
    fields = locate(s.spans, SectionSpec((), "HEADER.FIELDS", (b"from",)))
    assert fields is not None and fields.filter


def test_header_fields_keep_folding_and_lf_line_ends() -> None:
    raw = b"Subject: a\n b\nX-A: 1\nsubject: second\n\nbody\n"
    spec = SectionSpec((), "HEADER.FIELDS", (b"Subject",))
    assert section_bytes(raw, spec) == b"Subject: a\n b\nsubject: second\n\n"


def test_sections_of_lf_only_message_are_stored_bytes() -> None:
    raw = MIME.replace(b"\r\n", b"\n")
    assert section_bytes(raw, SectionSpec((2, 1))) == b"<p>Hello world</p>\n"
    assert section_bytes(raw, SectionSpec((1,), "MIME")) == (
        b"Content-Type: text/x-myown; charset=us-ascii\n\n"
    )
    assert section_bytes(raw, SectionSpec()) == raw
