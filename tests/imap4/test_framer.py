"""The framer: lines, literals of every kind, limits and staying in step after a rejection."""

from __future__ import annotations

import pytest

from twisted_mail_stack.imap4._framer import (
    LITERAL_MINUS_MAX,
    ContinuationRequest,
    Fatal,
    Framer,
    RawCommand,
    Rejected,
    RejectReason,
)

from .helpers import frame_all


def test_lines_crlf_and_bare_lf() -> None:
    events = Framer().feed(b"a NOOP\r\nb NOOP\nc NO")
    assert events == [RawCommand((b"a NOOP",)), RawCommand((b"b NOOP",))]


def test_synchronising_literal_waits_for_the_session() -> None:
    framer = Framer()
    # RFC 3501 7.5: the client waits for "+"; the framer reads nothing past the marker until
    # the session has answered, even if a broken client sent the data early.
    assert framer.feed(b"a LOGIN {4}\r\nfred x\r\n") == [ContinuationRequest(b"a", 4, b"a LOGIN ")]
    assert framer.feed(b"y") == []
    assert framer.accept_literal() == [RawCommand((b"a LOGIN ", b"fred", b" x"), (False,))]
    assert framer.feed(b" NOOP\r\n") == [RawCommand((b"y NOOP",))]


def test_impatient_client_is_bounded() -> None:
    framer = Framer(max_line_length=12)
    assert framer.feed(b"a LOGIN {4}\r\n") == [ContinuationRequest(b"a", 4, b"a LOGIN ")]
    assert framer.feed(b"x" * 18) == []
    assert isinstance(framer.feed(b"x")[0], Fatal)
    assert framer.buffered == 0


def test_literal_data_may_hold_crlf_and_braces() -> None:
    events = frame_all(Framer(), [b"a APPEND x {9}\r\nab\r\n{2}\r\n\r\n"])
    assert events[-1] == RawCommand((b"a APPEND x ", b"ab\r\n{2}\r\n", b""), (False,))


def test_non_synchronising_literal_asks_nothing() -> None:
    events = Framer().feed(b"a LOGIN {4+}\r\nfred {1+}\r\nx\r\n")
    assert events == [RawCommand((b"a LOGIN ", b"fred", b" ", b"x", b""), (False, False))]


def test_literal8_is_marked_binary() -> None:
    events = frame_all(Framer(), [b"a APPEND x ~{3}\r\n\x00\x01\x02\r\n"])
    assert events == [ContinuationRequest(b"a", 3, b"a APPEND x "), RawCommand((b"a APPEND x ", b"\x00\x01\x02", b""), (True,))]  # fmt: skip


def test_refused_literal_returns_to_lines() -> None:
    framer = Framer()
    assert framer.feed(b"a APPEND x {10}\r\n") == [ContinuationRequest(b"a", 10, b"a APPEND x ")]
    assert framer.feed(b"b NOOP\r\n") == []
    assert framer.refuse_literal() == [RawCommand((b"b NOOP",))]
    assert framer.feed(b"c NOOP\r\n") == [RawCommand((b"c NOOP",))]


def test_synchronising_literal_too_big_is_rejected_before_the_data() -> None:
    framer = Framer(max_literal_size=100)
    events = framer.feed(b"a APPEND x {101}\r\nb NOOP\r\n")
    assert events == [
        Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 101, synchronising=True),
        RawCommand((b"b NOOP",)),
    ]


@pytest.mark.parametrize("split", [1, 7, 50, 1000])
def test_non_synchronising_literal_too_big_is_skipped(split: int) -> None:
    # RFC 7888 4: the data comes anyway; the framer drops exactly the announced octets, then the
    # rest of the command, including its further non-synchronising literals.
    framer = Framer(max_literal_size=100)
    stream = b"a APPEND x {200+}\r\n" + b"\r\n" * 100 + b" more {5+}\r\nb NOO tail\r\nc NOOP\r\n"
    events = frame_all(framer, [stream[i : i + split] for i in range(0, len(stream), split)])
    assert events == [
        Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 200, synchronising=False),
        RawCommand((b"c NOOP",)),
    ]
    assert framer.buffered == 0


def test_literal_minus_limits_non_synchronising_literals() -> None:
    framer = Framer(literal_minus=True)
    big = LITERAL_MINUS_MAX + 1
    events = framer.feed(b"a APPEND x {%d+}\r\n" % big + b"x" * big + b"\r\nb NOOP\r\n")
    assert events == [
        Rejected(b"a", RejectReason.LITERAL_TOO_BIG, big, synchronising=False),
        RawCommand((b"b NOOP",)),
    ]
    # A synchronising literal of the same size is fine.
    assert framer.feed(b"c APPEND x {%d}\r\n" % big) == [
        ContinuationRequest(b"c", big, b"c APPEND x ")
    ]


def test_huge_count_is_rejected_without_overflow() -> None:
    framer = Framer()
    events = framer.feed(b"a LOGIN {" + b"9" * 5000 + b"}\r\nb NOOP\r\n")
    assert events[0] == Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 1 << 62, synchronising=True)
    assert events[1:] == [RawCommand((b"b NOOP",))]


def test_skip_beyond_max_skip_is_fatal() -> None:
    framer = Framer(max_literal_size=10, max_skip=1000)
    events = framer.feed(b"a APPEND x {1001+}\r\nxxxx")
    assert isinstance(events[-1], Fatal)
    assert framer.feed(b"b NOOP\r\n") == []


def test_long_line_is_dropped_and_tag_kept() -> None:
    framer = Framer(max_line_length=50)
    events = framer.feed(b"t1 SEARCH " + b"x" * 60)
    assert events == [Rejected(b"t1", RejectReason.LINE_TOO_LONG)]
    assert framer.buffered <= 64
    assert framer.feed(b"y" * 1000 + b"\r\nb NOOP\r\n") == [RawCommand((b"b NOOP",))]


def test_long_line_ending_in_literal_skips_it() -> None:
    framer = Framer(max_line_length=50)
    stream = b"t1 LOGIN " + b"x" * 80 + b" {6+}\r\nab\r\ncd rest\r\nb NOOP\r\n"
    events = frame_all(framer, [stream[i : i + 3] for i in range(0, len(stream), 3)])
    assert events == [Rejected(b"t1", RejectReason.LINE_TOO_LONG), RawCommand((b"b NOOP",))]


def test_long_complete_line_in_one_read() -> None:
    framer = Framer(max_line_length=20)
    assert framer.feed(b"t2 " + b"x" * 20 + b"\r\nb NOOP\r\n") == [
        Rejected(b"t2", RejectReason.LINE_TOO_LONG),
        RawCommand((b"b NOOP",)),
    ]


def test_command_size_limit_over_many_literals() -> None:
    framer = Framer(max_literal_size=10, max_command_size=25)
    events = framer.feed(
        b"a SEARCH TEXT {10+}\r\n0123456789 TEXT {10+}\r\n0123456789\r\nb NOOP\r\n"
    )
    assert events == [
        Rejected(b"a", RejectReason.LITERAL_TOO_BIG, 10, synchronising=False),
        RawCommand((b"b NOOP",)),
    ]


def test_untagged_garbage_gives_no_tag() -> None:
    framer = Framer(max_line_length=10)
    assert framer.feed(b"(((((((((((((\r\n") == [Rejected(None, RejectReason.LINE_TOO_LONG)]


def test_long_tag_cut_off_is_no_tag() -> None:
    framer = Framer(max_line_length=100)
    assert framer.feed(b"t" * 200) == [Rejected(None, RejectReason.LINE_TOO_LONG)]


def test_continuation_request_names_the_first_line() -> None:
    framer = Framer()
    assert framer.feed(b"a LOGIN {1+}\r\nx {2}\r\n") == [ContinuationRequest(b"a", 2, b"a LOGIN ")]
