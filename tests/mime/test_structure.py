"""BODY and BODYSTRUCTURE (RFC 3501 7.4.2) of real-world shaped and malformed messages."""

from __future__ import annotations

import email
import email.policy

import pytest

from tests.mime import samples
from twisted_mail_stack.mime import MessageStructure, Part, analyse, parse_structure


def test_rfc3501_example_body() -> None:
    """RFC 3501 section 8: BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)."""
    s = analyse(samples.rfc3501_example())
    assert s.body == samples.RFC3501_BODY
    assert s.bodystructure == samples.RFC3501_BODY[:-1] + b" NIL NIL NIL NIL)"


def test_imaptest_fetch_bodystructure() -> None:
    """imaptest src/tests/fetch-bodystructure; imaptest compares case-insensitively."""
    s = analyse(samples.IMAPTEST_BODYSTRUCTURE)
    assert s.body == b'(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1) "mixed")'
    assert s.body.lower() == samples.IMAPTEST_BODY_EXPECTED.lower()
    assert s.bodystructure == (
        b'(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "foo bar") NIL NIL NIL)'
    )


def test_nested_message_rfc822() -> None:
    s = analyse(samples.IMAPTEST_MIME)
    inner_env = (
        b'("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org"))'
        b' ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) NIL NIL NIL NIL NIL)'
    )
    assert s.body == (
        b'(("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 298 ' + inner_env + b" "
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1)'
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 18)'
        b' "mixed")'
    )
    root, _ = parse_structure(samples.IMAPTEST_MIME)
    rfc822 = root.children[1]
    # The size is that of the encapsulated message, as BODY[2] returns it.
    assert rfc822.size == 298
    assert samples.IMAPTEST_MIME[rfc822.body_start : rfc822.end].endswith(b"Sub MIME epilogue\r\n")


def test_digest_defaults_to_message_rfc822() -> None:
    root, _ = parse_structure(samples.IMAPTEST_DIGEST)
    digest = root.message
    assert digest is not None and digest.subtype == b"digest"
    assert [(c.type, c.subtype) for c in digest.children] == [(b"message", b"rfc822")] * 2
    assert digest.children[0].message is not None
    assert b'"m1" ((NIL NIL "m1" "example.com"))' in analyse(samples.IMAPTEST_DIGEST).body


def test_alternative_with_encodings() -> None:
    s = analyse(samples.ALTERNATIVE)
    assert s.bodystructure == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 51 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "iso-8859-1") NIL NIL "base64" 32 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "=_alt") NIL NIL NIL)'
    )


def test_attachment_extension_data() -> None:
    s = analyse(samples.ATTACHMENT)
    assert s.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0 NIL NIL NIL NIL)'
        b'("application" "pdf" ("name" "report.pdf") "<part2@example.org>" "The report"'
        b' "base64" 16 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "report.pdf"'
        b' "size" "12")) ("en" "de") "http://example.org/report.pdf")'
        b' "mixed" ("boundary" "XYZ") NIL "en" NIL)'
    )
    assert s.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 24 0)'
        b'("application" "pdf" ("name" "report.pdf") "<part2@example.org>" "The report"'
        b' "base64" 16) "mixed")'
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        # No Content-Type at all: text/plain; charset=us-ascii (RFC 2045 5.2).
        (
            b"Subject: x\r\n\r\nhi\r\n",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)',
        ),
        # No header, no body.
        (b"", b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'),
        # A header without the blank line: the body is empty.
        (b"Subject: x\r\n", b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'),
        # Unusable Content-Type values fall back to the default.
        (
            b"Content-Type: garbage\r\n\r\nhi",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0)',
        ),
        (
            b"Content-Type: text/\r\n\r\nhi",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0)',
        ),
        # A multipart without a boundary is not a multipart.
        (
            b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n",
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 3)',
        ),
        # A boundary that never occurs: one empty text part, as Dovecot does.
        (
            b"Content-Type: multipart/mixed; boundary=q\r\n\r\nno parts\r\n",
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
        ),
        # Truncated: no close delimiter; the last part runs to the end.
        (
            b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nab\r\n--q\r\n\r\ncd",
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0)'
            b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0) "mixed")',
        ),
        # A longer boundary sharing the prefix is not a delimiter.
        (
            b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n--qq\r\n--q--\r\n",
            b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) "mixed")',
        ),
        # Text without parameters gets the default charset; others keep NIL.
        (
            b"Content-Type: image/png\r\nContent-Transfer-Encoding: BASE64\r\n\r\niVBO\r\n",
            b'("image" "png" NIL NIL NIL "BASE64" 6)',
        ),
        # A header line that is not a field is skipped, the fields around it still count.
        (
            b"garbage line\r\nContent-Type: text/html\r\n\r\n<p>\r\n",
            b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 5 1)',
        ),
        # 8-bit parameter values go as literals.
        (
            b'Content-Type: text/plain; name="\xc3\xa9.txt"\r\n\r\n',
            b'("text" "plain" ("name" {6}\r\n\xc3\xa9.txt) NIL NIL "7bit" 0 0)',
        ),
    ],
)
def test_defaults_and_malformed(raw: bytes, expected: bytes) -> None:
    assert analyse(raw).body == expected


def test_lf_only_sizes_are_those_of_the_stored_bytes() -> None:
    """An LF-only copy has the same tree; each size is smaller by one octet per line."""

    def walk(raw: bytes, part: Part) -> list[tuple[bytes, int, int]]:
        out = [(part.subtype, part.size, raw.count(b"\n", part.body_start, part.end))]
        for child in part.children:
            out += walk(raw, child)
        if part.message is not None:
            out += walk(raw, part.message)
        return out

    lf = samples.IMAPTEST_MIME.replace(b"\r\n", b"\n")
    crlf_tree = walk(samples.IMAPTEST_MIME, parse_structure(samples.IMAPTEST_MIME)[0])
    lf_tree = walk(lf, parse_structure(lf)[0])
    assert len(crlf_tree) == len(lf_tree) == 6
    for (sub, size, lines), (lsub, lsize, llines) in zip(crlf_tree, lf_tree, strict=True):
        assert (lsub, lsize, llines) == (sub, size - lines, lines)


def test_parts_agree_with_stdlib_email() -> None:
    """Our part bodies decode to what the stdlib email package decodes."""
    raw = samples.ALTERNATIVE
    ours, _ = parse_structure(raw)
    theirs = email.message_from_bytes(raw, policy=email.policy.compat32)
    payloads = theirs.get_payload()
    assert isinstance(payloads, list)
    assert len(payloads) == len(ours.children)
    for part, msg in zip(ours.children, payloads, strict=True):
        assert raw[part.body_start : part.end] == msg.get_payload().encode().rstrip(b"\r\n")
        assert part.subtype.decode() == msg.get_content_subtype()


def test_cache_round_trip() -> None:
    for raw in (samples.IMAPTEST_MIME, samples.ATTACHMENT, samples.EIGHT_BIT, b""):
        s = analyse(raw)
        assert MessageStructure.from_bytes(s.to_bytes()) == s


@pytest.mark.parametrize("bad", [b"", b"[]", b"[2,1,2,3,4]", b'[1,"a","b","c",[1]]', b"\xff"])
def test_cache_rejects_other_bytes(bad: bytes) -> None:
    with pytest.raises(ValueError):
        MessageStructure.from_bytes(bad)


def test_deep_nesting_is_bounded() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 500 + b"x"
    s = analyse(raw)  # no RecursionError
    assert s.body.count(b'"rfc822"') <= 51
