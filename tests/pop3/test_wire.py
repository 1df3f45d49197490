"""The POP3 wire layer: pure bytes in and out."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_mail_stack.crlf import CRLFNormaliser
from twisted_mail_stack.pop3._wire import (
    Command,
    CommandError,
    MessageEncoder,
    _dot_after_newline,
    challenge,
    encode_whole,
    err,
    multiline,
    ok,
    parse_command,
    parse_number,
)


def test_verbs_are_case_insensitive_and_split_on_spaces() -> None:
    assert parse_command(b"list 3") == Command("LIST", (b"3",))
    assert parse_command(b"TOP  1   10") == Command("TOP", (b"1", b"10"))
    assert parse_command(b"QUIT") == Command("QUIT")


def test_pass_keeps_spaces_in_the_password() -> None:  # RFC 1939 7
    assert parse_command(b"PASS my secret  pw ") == Command("PASS", (b"my secret  pw ",))


@pytest.mark.parametrize(
    "line", [b"", b" ", b"XYZZY", b"RETR", b"RETR 1 2", b"STAT 1", b"TOP 1", b"\xff\xfe", b"PASS"]
)
def test_bad_commands(line: bytes) -> None:
    with pytest.raises(CommandError):
        parse_command(line)


@pytest.mark.parametrize(
    "arg", [b"0", b"-1", b"+1", b"1.0", b"x", b"", b"12345678901", "١".encode()]
)
def test_bad_message_numbers(arg: bytes) -> None:
    with pytest.raises(CommandError):
        parse_number(arg)


def test_numbers() -> None:
    assert parse_number(b"42") == 42
    assert parse_number(b"0", zero=True) == 0


def test_replies() -> None:
    assert ok() == b"+OK\r\n"
    assert ok("2 320") == b"+OK 2 320\r\n"
    assert err("locked", "IN-USE") == b"-ERR [IN-USE] locked\r\n"
    assert err("a\r\nb") == b"-ERR a  b\r\n"  # never a second line
    assert challenge(b"") == b"+ \r\n"
    assert multiline(ok(), [b"a", b".b", b""]) == b"+OK\r\na\r\n..b\r\n\r\n.\r\n"


def encode(
    message: bytes, cuts: list[int] = (), lines: int | None = None
) -> tuple[bytes, MessageEncoder]:  # type: ignore[assignment]
    encoder = MessageEncoder(lines)
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(message)]:
        out.append(encoder.feed(message[start:cut]))
        start = cut
    out.append(encoder.end())
    return b"".join(out), encoder


def unstuff(wire: bytes) -> bytes:
    assert wire.endswith(b".\r\n")
    lines = wire[:-3].split(b"\r\n")
    assert lines[-1] == b""
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines[:-1])


def test_retr_encoding() -> None:
    wire, encoder = encode(b".x\r\nb\n..\r\nlast")
    assert wire == b"..x\r\nb\r\n...\r\nlast\r\n.\r\n"
    assert encoder.size == len(b".x\r\nb\r\n..\r\nlast\r\n")


def test_empty_message() -> None:
    wire, encoder = encode(b"")
    assert wire == b".\r\n" and encoder.size == 0


def test_top() -> None:
    message = b"A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"
    assert encode(message, lines=0)[0] == b"A: 1\r\nB: 2\r\n\r\n.\r\n"
    assert encode(message, lines=2)[0] == b"A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"
    assert encode(message, lines=99)[0] == message.replace(b"\n.", b"\n..") + b".\r\n"
    assert encode(b"A: 1\n\nbody", lines=5)[0] == b"A: 1\r\n\r\nbody\r\n.\r\n"
    assert encode(b"A: 1\r\n", lines=0)[0] == b"A: 1\r\n.\r\n"  # no body at all


def reference(message: bytes) -> bytes:
    """The canonical form, the slow and obvious way."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", message)
    if out.endswith(b"\r"):
        return out + b"\n"
    return out + b"\r\n" if out and not out.endswith(b"\n") else out


messages = st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"Subject: x", b" "]), max_size=40
).map(b"".join)


@given(messages, st.lists(st.integers(0, 200), max_size=8))
def test_chunking_never_changes_the_output(message: bytes, cuts: list[int]) -> None:
    whole, encoder = encode(message)
    chunked, _ = encode(message, [c for c in cuts if c <= len(message)])
    assert chunked == whole
    canonical = unstuff(whole)
    assert encoder.size == len(canonical)
    assert b"\n" not in canonical.replace(b"\r\n", b"")  # every LF is part of a CRLF
    assert canonical == reference(message)


@given(messages, st.lists(st.integers(0, 200), max_size=8), st.integers(0, 5))
def test_top_chunking_never_changes_the_output(message: bytes, cuts: list[int], n: int) -> None:
    whole, _ = encode(message, lines=n)
    chunked, _ = encode(message, [c for c in cuts if c <= len(message)], lines=n)
    assert chunked == whole
    retr = unstuff(encode(message)[0])
    assert retr.startswith(unstuff(whole))


@given(messages, st.lists(st.integers(0, 200), max_size=8))
def test_normaliser_counts_what_it_emits(message: bytes, cuts: list[int]) -> None:
    normaliser = CRLFNormaliser()
    out, start = [], 0
    for cut in sorted({c for c in cuts if c <= len(message)}) + [len(message)]:
        out.append(normaliser.feed(message[start:cut]))
        start = cut
    out.append(normaliser.end())
    data = b"".join(out)
    assert normaliser.count == len(data)
    assert data == reference(message)


@given(messages)
def test_whole_message_encoding_matches_the_streaming_encoder(message: bytes) -> None:
    wire, encoder = encode(message)
    assert encode_whole(message) == (wire, encoder.size)


def test_whole_message_encoding_paths() -> None:
    # bare LF (the common Maildir case), CRLF already, and mixed line ends
    assert encode_whole(b"a\n.b\nc") == (b"a\r\n..b\r\nc\r\n.\r\n", 10)
    assert encode_whole(b".a\r\nb\r\n") == (b"..a\r\nb\r\n.\r\n", 7)
    assert encode_whole(b"a\r\nb") == (b"a\r\nb\r\n.\r\n", 6)
    assert encode_whole(b"a\rb\n.\r") == (b"a\rb\r\n..\r\n.\r\n", 8)
    assert encode_whole(b"") == (b".\r\n", 0)


@given(st.lists(st.sampled_from([b".", b"\n", b"\r", b"a", b"\n.", b".."]), max_size=60))
def test_dot_after_newline_is_the_pair_search(parts: list[bytes]) -> None:
    # Many dots before the first pair: the check falls back to the plain search correctly.
    data = b"".join(parts)
    assert _dot_after_newline(data) == (b"\n." in data)


def test_dot_after_newline_beyond_the_checked_dots() -> None:
    assert _dot_after_newline(b"a." * 20 + b"\n.x")
    assert not _dot_after_newline(b"a." * 20 + b"\nx.")
    assert _dot_after_newline(b"x\n.")
    assert not _dot_after_newline(b".abc")  # a first-line dot is stuffed separately
