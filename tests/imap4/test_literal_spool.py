"""
Large literals go to a spool file, not memory: the framer's spool hook (bytes in, events out),
the parser's APPEND of a spooled message, and the session over StringTransport, where a 20 MiB
APPEND keeps the session's Python memory bounded and every spool file is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted_mail_stack.backends.memory import MemoryMailbox
from twisted_mail_stack.imap4 import _commands as c
from twisted_mail_stack.imap4._framer import (
    ContinuationRequest,
    Framer,
    FramerEvent,
    RawCommand,
    Rejected,
    RejectReason,
)
from twisted_mail_stack.imap4._parser import ParseError, parse_command
from twisted_mail_stack.imap4.spool import LiteralFile, remove_stale
from twisted_mail_stack.sources import BytesSource

from .test_fuzz import tokens as fuzz_tokens
from .test_session import MESSAGE, World, result

CHUNK = 64 * 1024


class MemorySpool:
    """A spool that records what the framer does with it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray()
        self.finished = False
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.finished and len(self.data) + len(data) <= self.size
        self.data += data

    def finish(self) -> None:
        assert len(self.data) == self.size
        self.finished = True

    def read(self) -> bytes:
        return bytes(self.data)

    def close(self) -> None:
        self.closed = True


class Spools:
    def __init__(self) -> None:
        self.opened: list[MemorySpool] = []

    def __call__(self, size: int) -> MemorySpool:
        spool = MemorySpool(size)
        self.opened.append(spool)
        return spool


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def framer(spools: Spools, **kwargs: Any) -> Framer:
    return Framer(spool=spools, spool_over=1000, **kwargs)


# -- the framer --------------------------------------------------------------------------


@pytest.mark.parametrize("plus", [b"", b"+"])
def test_large_literal_streams_to_spool(plus: bytes) -> None:
    spools = Spools()
    f = framer(spools)
    body = bytes(range(256)) * 4096  # 1 MiB
    events = f.feed(b"a APPEND INBOX {%d%s}\r\n" % (len(body), plus))
    if not plus:
        assert len(events) == 1 and events[0].size == len(body)  # type: ignore[union-attr]
        events = f.accept_literal()
    assert events == []
    for piece in chunks(body + b"\r\n"):
        events += f.feed(piece)
        assert f.buffered <= CHUNK  # never the whole literal
    [raw] = events
    assert isinstance(raw, RawCommand)
    assert raw.parts == (b"a APPEND INBOX ", b"", b"")
    [spool] = spools.opened
    assert raw.spools == (spool,) and spool.finished and spool.data == body
    assert not spool.closed and f.buffered == 0
    raw.close_spools()
    assert spool.closed


def test_small_literals_stay_in_memory() -> None:
    spools = Spools()
    f = framer(spools)
    events = f.feed(b"a LOGIN {3+}\r\nbob {1000+}\r\n" + b"p" * 1000 + b"\r\n")
    assert events == [RawCommand((b"a LOGIN ", b"bob", b" ", b"p" * 1000, b""), (False, False))]
    assert spools.opened == []


def test_mixed_literals_keep_their_places() -> None:
    spools = Spools()
    f = framer(spools)
    big = b"x" * 5000
    [raw] = f.feed(b"a X {2+}\r\nhi {5000+}\r\n" + big + b" {1+}\r\n!\r\n")
    assert isinstance(raw, RawCommand)
    assert raw.parts == (b"a X ", b"hi", b" ", b"", b" ", b"!", b"")
    assert raw.spools == (None, spools.opened[0], None)
    assert spools.opened[0].data == big


def test_refused_synchronising_literal_opens_no_spool() -> None:
    spools = Spools()
    f = framer(spools)
    [request] = f.feed(b"a APPEND INBOX {5000}\r\n")
    assert f.refuse_literal() == []
    assert spools.opened == []
    assert f.feed(b"b NOOP\r\n") == [RawCommand((b"b NOOP",))]


def test_oversized_literal_is_skipped_not_spooled() -> None:
    spools = Spools()
    f = framer(spools, max_literal_size=4000)
    events = f.feed(b"a APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\nb NOOP\r\n")
    assert events == [
        Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 5000),
        RawCommand((b"b NOOP",)),
    ]
    assert spools.opened == []


def test_dropped_command_releases_its_spool() -> None:
    spools = Spools()
    f = framer(spools, max_line_length=100)
    events = f.feed(b"a APPEND INBOX {2000+}\r\n" + b"x" * 2000 + b"y" * 200 + b"\r\nb NOOP\r\n")
    assert events == [
        Rejected(b"a", RejectReason.LINE_TOO_LONG),
        RawCommand((b"b NOOP",)),
    ]
    assert spools.opened[0].closed


def test_abort_releases_a_partial_literal() -> None:
    spools = Spools()
    f = framer(spools)
    assert f.feed(b"a APPEND INBOX {5000+}\r\n" + b"x" * 3000) == []
    assert not spools.opened[0].closed
    f.abort()
    assert spools.opened[0].closed


# -- the parser ---------------------------------------------------------------------------


def test_append_carries_the_spool_and_other_commands_read_it() -> None:
    spools = Spools()
    f = framer(spools)
    [raw] = f.feed(b"a APPEND INBOX (\\Seen) {2000+}\r\n" + b"m" * 2000 + b"\r\n")
    assert isinstance(raw, RawCommand)
    parsed = parse_command(raw)
    assert not isinstance(parsed, ParseError)
    assert parsed.command == c.Append("INBOX", spools.opened[0], frozenset({"\\Seen"}))
    [raw] = f.feed(b"b SEARCH TEXT {2000+}\r\n" + b"q" * 2000 + b"\r\n")
    assert isinstance(raw, RawCommand)
    parsed = parse_command(raw)
    assert not isinstance(parsed, ParseError) and isinstance(parsed.command, c.Search)
    assert b"q" * 2000 in repr(parsed.command).encode()


# -- the spool file -----------------------------------------------------------------------


def test_literal_file_is_a_message_source(tmp_path: Path) -> None:
    spool = LiteralFile(str(tmp_path), 6)
    spool.write(b"abc")
    spool.write(b"def")
    spool.finish()
    assert spool.path is not None and os.path.dirname(spool.path) == str(tmp_path)
    assert spool.read() == b"abcdef"
    with spool.open() as f:
        assert f.read() == b"abcdef"
    spool.close()
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_literal_file_in_a_missing_directory_reports_its_error(tmp_path: Path) -> None:
    spool = LiteralFile(str(tmp_path / "missing"), 3)
    spool.write(b"abc")
    spool.finish()
    assert isinstance(spool.error, OSError)
    with pytest.raises(OSError):
        spool.open()
    spool.close()


# -- the session ---------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World()
    w.factory.spool_dir = str(tmp_path)
    return w


def big_message(size: int) -> bytes:
    head = b"From: a@example.net\r\nSubject: big\r\n\r\n"
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[:size]


def test_large_append_is_stored_byte_identical(world: World, tmp_path: Path) -> None:
    s = world.connect()
    s.login()
    message = big_message(1024 * 1024 + 17)
    out = s.send(b'a APPEND INBOX (\\Flagged) "05-Jan-2024 10:00:00 +0100" {%d}\r\n' % len(message))
    assert out == b"+ Ready for literal data\r\n"
    for piece in chunks(message[:300000]):
        assert s.send(piece) == b""
    assert len(list(tmp_path.iterdir())) == 1  # written to the spool file as it arrives
    out = s.send(message[300000:] + b"\r\n")
    assert out.startswith(b"a OK [APPENDUID "), out
    out = s.send(b"b APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    assert out.startswith(b"b OK [APPENDUID "), out
    assert list(tmp_path.iterdir()) == []
    mailbox = world.open()
    infos = result(mailbox.list_messages())
    assert [i.size for i in infos] == [len(message)] * 2
    assert infos[0].flags == {"\\Flagged"}
    assert infos[0].internal_date == datetime(2024, 1, 5, 9, tzinfo=UTC)
    content = result(mailbox.open_content(infos[1].uid))
    assert result(content.read(0, len(message) + 1)) == message


def test_spool_files_are_deleted_whatever_happens(world: World, tmp_path: Path) -> None:
    body = b"x" * 100000
    s = world.connect()
    s.login()
    s.cmd("SELECT INBOX")
    # A bad command around a large literal.
    out = s.send(b"a APPEND INBOX {%d+}\r\n" % len(body) + body + b" junk\r\n")
    assert out.startswith(b"a BAD"), out
    # A large literal where a small one belongs: read back, then deleted.
    out = s.send(b"b SEARCH TEXT {%d+}\r\n" % len(body) + body + b"\r\n")
    assert out.startswith(b"* SEARCH"), out
    # APPEND to a missing mailbox.
    out = s.send(b"c APPEND Nope {%d+}\r\n" % len(body) + body + b"\r\n")
    assert out == b"c NO [TRYCREATE] no such mailbox\r\n"
    assert list(tmp_path.iterdir()) == []
    # The connection drops halfway through a literal.
    s.send(b"d APPEND INBOX {%d+}\r\n" % len(body) + body[:50000])
    assert len(list(tmp_path.iterdir())) == 1
    s.drop()
    assert list(tmp_path.iterdir()) == []
    assert len(result(world.open().list_messages())) == 0


def test_unwritable_spool_refuses_the_append(world: World, tmp_path: Path) -> None:
    world.factory.spool_dir = str(tmp_path / "gone")
    s = world.connect()
    s.login()
    body = b"x" * 100000
    out = s.send(b"a APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert out == b"a NO [SERVERBUG] cannot spool the message; try again later\r\n"
    assert s.cmd("NOOP").endswith(b"OK NOOP completed\r\n")


def test_twenty_mib_append_keeps_memory_bounded(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peak of Python allocations while a 20 MiB APPEND arrives and is stored."""
    size = 20 * 1024 * 1024
    seen: dict[str, Any] = {}
    original = MemoryMailbox.append

    def hashing_append(self: MemoryMailbox, source: Any, *args: Any) -> Any:
        # The memory store would hold the message itself: read it in chunks instead.
        digest, n = hashlib.sha256(), 0
        with source.open() as f:
            while piece := f.read(CHUNK):
                digest.update(piece)
                n += len(piece)
        seen.update(digest=digest.hexdigest(), size=n, path=source.path)
        return original(self, BytesSource(MESSAGE), *args)

    monkeypatch.setattr(MemoryMailbox, "append", hashing_append)
    s = world.connect()
    s.login()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?\r\n"
    piece = line * (CHUNK // len(line)) + line[: CHUNK % len(line)]
    assert len(piece) == CHUNK and size % CHUNK == 0
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = s.send(b"a APPEND INBOX {%d+}\r\n" % size)
        for _ in range(size // CHUNK):
            out += s.send(piece)
            expected.update(piece)
        out += s.send(b"\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.startswith(b"a OK [APPENDUID "), out
    assert seen["size"] == size and seen["digest"] == expected.hexdigest()
    assert seen["path"] is not None and os.path.dirname(seen["path"]) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []
    print(f"peak Python memory during a 20 MiB APPEND: {peak / 1024:.0f} KiB")
    assert peak < 2 * 1024 * 1024, peak


# -- property: spooling changes where literals live, nothing else -------------------------


def _materialise(event: FramerEvent) -> FramerEvent:
    if not isinstance(event, RawCommand) or not event.spools:
        return event
    parts = list(event.parts)
    for i, spool in enumerate(event.spools):
        if spool is not None:
            assert isinstance(spool, MemorySpool) and spool.finished and not spool.closed
            parts[2 * i + 1] = spool.read()
    return RawCommand(tuple(parts), event.binary)


def _run(framer: Framer, chunks: list[bytes], refuse: bool) -> list[FramerEvent]:
    out: list[FramerEvent] = []
    for chunk in chunks:
        events = framer.feed(chunk)
        while events:
            out += events
            if isinstance(events[-1], ContinuationRequest):
                events = framer.refuse_literal() if refuse else framer.accept_literal()
            else:
                events = []
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(fuzz_tokens, st.binary(max_size=30)), max_size=60),
    st.integers(1, 40),
    st.booleans(),
)
def test_spooling_frames_like_memory(pieces: list[bytes], step: int, refuse: bool) -> None:
    data = b"".join(pieces)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    limits: dict[str, Any] = dict(
        max_line_length=64, max_literal_size=80, max_command_size=120, max_skip=500
    )
    plain = _run(Framer(**limits), chunks, refuse)
    spools = Spools()
    spooling = Framer(spool=spools, spool_over=2, **limits)
    events = _run(spooling, chunks, refuse)
    assert [_materialise(e) for e in events] == plain
    owned = {id(s) for e in events if isinstance(e, RawCommand) for s in e.spools if s}
    spooling.abort()
    for spool in spools.opened:
        assert (id(spool) in owned) != spool.closed


def test_stale_spool_files_are_removed(tmp_path: Path) -> None:
    live = LiteralFile(str(tmp_path), 1)
    old = LiteralFile(str(tmp_path), 1)
    other = tmp_path / "imap-other"
    other.write_bytes(b"x")
    assert live.path is not None and old.path is not None
    day = 24 * 3600
    os.utime(old.path, (0, time.time() - 2 * day))
    os.utime(other, (0, time.time() - 2 * day))
    assert remove_stale(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [os.path.basename(live.path), "imap-other"]
    )
    assert remove_stale(str(tmp_path / "missing")) == 0
    live.close()
