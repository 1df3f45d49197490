"""ENVELOPE (RFC 3501 7.4.2) against Dovecot's imaptest expectations and RFC 3501's example."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.mime import samples
from twisted_mail_stack.mime import Address, analyse, envelope_only, parse_addresses
from twisted_mail_stack.mime.envelope import parse_addresses_fully


@pytest.mark.parametrize(
    "raw, expected",
    list(zip(samples.IMAPTEST_ENVELOPE, samples.IMAPTEST_ENVELOPE_EXPECTED, strict=True)),
)
def test_imaptest_fetch_envelope(raw: bytes, expected: bytes) -> None:
    """imaptest src/tests/fetch-envelope: the same bytes from the whole message or the header."""
    assert analyse(raw).envelope == expected
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    assert envelope_only(header).to_imap() == expected
    assert envelope_only(raw).to_imap() == expected


def test_rfc3501_example() -> None:
    """RFC 3501 section 8, message 12: ENVELOPE with a Cc list and sender/reply-to from From."""
    assert analyse(samples.rfc3501_example()).envelope == samples.RFC3501_ENVELOPE


def test_encoded_words_kept_raw() -> None:
    env = envelope_only(samples.ALTERNATIVE)
    assert env.subject == b"=?UTF-8?B?R3LDvMOfZQ==?= aus Berlin"
    assert env.from_ == (
        Address(b"=?utf-8?q?J=C3=B6rg_M=C3=BCller?=", None, b"joerg", b"example.de"),
    )
    assert env.to == (
        Address(b"Smith, Ann", None, b"ann", b"example.com"),
        Address(None, None, b"bob", b"example.com"),
    )
    assert env.message_id == b"<alt-1@example.de>"


def test_eight_bit_and_quoting() -> None:
    """8-bit values go as literals; quotes and backslashes are escaped in quoted strings."""
    env = envelope_only(samples.EIGHT_BIT).to_imap()
    name = "Jörg".encode()
    subject = 'Grüße "quoted" \\ back'.encode()
    assert b"{%d}\r\n%s" % (len(subject), subject) in env
    assert b'(({%d}\r\n%s NIL "joerg" "example.de"))' % (len(name), name) in env
    plain = envelope_only(b'Subject: say "hi" \\o/\r\n\r\n').to_imap()
    assert plain.startswith(b'(NIL "say \\"hi\\" \\\\o/" NIL')


def test_folded_header_unfolded() -> None:
    raw = b"Subject: a long\r\n\tsubject\r\nTo: x@y,\r\n  z@w\r\n\r\n"
    env = envelope_only(raw)
    assert env.subject == b"a long\tsubject"
    assert [a.mailbox for a in env.to] == [b"x", b"z"]


def test_lf_only_message() -> None:
    raw = samples.IMAPTEST_ENVELOPE[0].replace(b"\r\n", b"\n")
    assert analyse(raw).envelope == samples.IMAPTEST_ENVELOPE_EXPECTED[0]


def test_no_header_at_all() -> None:
    assert analyse(b"\r\nbody only\r\n").envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert analyse(b"").envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_first_field_wins() -> None:
    env = envelope_only(b"Subject: one\r\nSubject: two\r\n\r\n")
    assert env.subject == b"one"


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"<>", ()),
        (b"", ()),
        (b"user", (Address(None, None, b"user", b""),)),
        (b'"a b"@example.com', (Address(None, None, b'"a b"', b"example.com"),)),
        (
            b"Name (comment) <u@h> (trailing)",
            (Address(b"Name", None, b"u", b"h"),),
        ),
        (b"<u@h> (Only Comment)", (Address(b"Only Comment", None, b"u", b"h"),)),
        (b"<@a,@b:u@h>", (Address(None, b"@a,@b", b"u", b"h"),)),
        (
            b"undisclosed-recipients:;",
            (Address(None, None, b"undisclosed-recipients", None), Address(None, None, None, None)),
        ),
        (b"u@[192.0.2.1]", (Address(None, None, b"u", b"[192.0.2.1]"),)),
        (b"a@b,, ,c@d", (Address(None, None, b"a", b"b"), Address(None, None, b"c", b"d"))),
        # An unterminated quote runs to the end: one local part, kept raw.
        (b'"unterminated <x@y>', (Address(None, None, b'"unterminated <x@y>', b""),)),
    ],
)
def test_address_forms(value: bytes, expected: tuple[Address, ...]) -> None:
    assert parse_addresses(value) == expected


def test_obsolete_dot_in_phrase() -> None:
    assert parse_addresses(b"J. Smith <js@example.com>") == (
        Address(b"J. Smith", None, b"js", b"example.com"),
    )


_atoms = st.text(alphabet="abcXYZ019-_=?+", min_size=1, max_size=6).map(str.encode)
_names = st.one_of(
    st.just(b""),
    st.lists(_atoms, min_size=1, max_size=3).map(b" ".join),
    st.text(alphabet='ab ,<>@.\\"', max_size=8).map(
        lambda t: b'"' + t.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    ),
)
_item = st.one_of(
    st.tuples(_atoms, _atoms).map(lambda t: t[0] + b"@" + t[1]),
    st.tuples(_names, _atoms, _atoms, st.sampled_from([b"", b" ", b"\t"])).map(
        lambda t: t[0] + t[3] + b"<" + t[1] + b"@" + t[2] + b">"
    ),
)


_group = st.tuples(
    st.lists(_atoms, max_size=2).map(b" ".join),
    st.lists(_item.filter(lambda i: b'"' not in i), max_size=3).map(b", ".join),
    st.sampled_from([b"", b" "]),
).map(lambda t: t[0] + b":" + t[2] + t[1] + b";")


@settings(max_examples=800, deadline=None)
@given(st.lists(_item | _group, min_size=1, max_size=4), st.sampled_from([b",", b", ", b" ,  "]))
def test_fast_path_agrees_with_full_parser(items: list[bytes], sep: bytes) -> None:
    value = sep.join(items)
    assert parse_addresses(value) == parse_addresses_fully(value)
