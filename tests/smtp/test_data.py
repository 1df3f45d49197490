"""DATA end detection, dot-unstuffing and body checks, including SMTP smuggling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_mail_stack.smtp._data import BareLinePolicy, BodySink, DataReader


def read(chunks: list[bytes], **kw: object) -> tuple[bytes, bytes | None, BodySink]:
    out: list[bytes] = []
    sink = BodySink(out.append, max_size=kw.pop("max_size", 10**9), **kw)  # type: ignore[arg-type]
    reader = DataReader(sink)
    rest = None
    for chunk in chunks:
        rest = reader.feed(chunk)
        if rest is not None:
            break
    return b"".join(out), rest, sink


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("split", [lambda d: [d], bytewise])
def test_end_and_unstuffing(split: object) -> None:
    data = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n"
    body, rest, sink = read(split(data))  # type: ignore[operator]
    assert body == b"Subject: x\r\n\r\n.leading dot\r\n"
    assert rest in (b"QUIT\r\n", b"")  # bytewise feeding stops at the terminator
    assert not sink.refused


def test_empty_message_and_dot_first_line() -> None:
    assert read([b".\r\n"])[:2] == (b"", b"")
    assert read([b"..x\r\n.\r\n"])[0] == b".x\r\n"


@pytest.mark.parametrize(
    "trick", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r", b"\n.\r"]
)
def test_smuggling_never_ends_the_message(trick: bytes) -> None:
    smuggled = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nforged\r\n"
    data = b"Subject: a\r\n\r\nfirst" + trick + smuggled + b".\r\n"
    body, rest, sink = read([data])
    assert rest == b""
    assert smuggled in body  # still part of the one message
    assert sink.bare_line_end and sink.refused


def test_normalise_policy_rewrites_bare_line_ends() -> None:
    body, rest, sink = read([b"a\nb\rc\r\n.\r\n"], bare=BareLinePolicy.NORMALISE)
    assert body == b"a\r\nb\r\nc\r\n"
    assert not sink.refused


def test_size_limit_stops_writing() -> None:
    body, rest, sink = read([b"x" * 50 + b"\r\n" + b"y" * 50 + b"\r\n.\r\n"], max_size=60)
    assert sink.too_big and rest == b""
    assert len(body) <= 60


def test_long_lines() -> None:
    line = b"z" * 998 + b"\r\n"  # 1000 octets with CRLF: the RFC 5321 limit
    assert not read([line + line + b".\r\n"], max_line=1000)[2].line_too_long
    assert not read(bytewise(line + b".\r\n"), max_line=1000)[2].line_too_long
    assert read([b"a\r\n" + b"z" * 999 + b"\r\n.\r\n"], max_line=1000)[2].line_too_long
    assert read(bytewise(b"z" * 999 + b"\r\n.\r\n"), max_line=1000)[2].line_too_long
    assert not read([b"z" * 5000 + b"\r\n.\r\n"], max_line=0)[2].line_too_long


def test_bdat_chunks_hold_a_trailing_cr() -> None:
    out: list[bytes] = []
    sink = BodySink(out.append, max_size=100)
    sink.feed_chunk(b"a\r", last=False)
    sink.feed_chunk(b"\nb\r\n", last=True)
    assert b"".join(out) == b"a\r\nb\r\n" and not sink.refused
    sink = BodySink(out.append, max_size=100)
    sink.feed_chunk(b"a\r", last=True)
    assert sink.bare_line_end


@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(1, 7))
def test_any_stream_any_split(parts: list[bytes], step: int) -> None:
    """Whatever the content and however it is split, the body is the unstuffed content."""
    content = b"\r\n".join(p.replace(b"\r", b"").replace(b"\n", b"") for p in parts) + b"\r\n"
    stuffed = b"\r\n".join(
        (b"." + line if line.startswith(b".") else line) for line in content.split(b"\r\n")
    )
    stream = stuffed + b".\r\nNEXT"
    chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
    out: list[bytes] = []
    reader = DataReader(BodySink(out.append, max_size=10**6, max_line=0))
    rest = None
    for i, chunk in enumerate(chunks):
        rest = reader.feed(chunk)
        if rest is not None:
            rest += b"".join(chunks[i + 1 :])
            break
    assert rest == b"NEXT"
    assert b"".join(out) == (content if content != b"\r\n" else b"\r\n")
