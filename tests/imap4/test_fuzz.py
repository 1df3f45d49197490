"""
Hypothesis: any split of a valid stream frames and parses identically; random bytes never raise
and never make the framer hold more than its limits.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted_mail_stack.imap4._commands import TaggedCommand
from twisted_mail_stack.imap4._framer import (
    ContinuationRequest,
    Framer,
    FramerEvent,
    RawCommand,
)
from twisted_mail_stack.imap4._parser import ParseError, parse_command

from .helpers import frame_all
from .test_fetch import ITEMS
from .test_parser import BAD, CASES
from .test_search import KEYS

VALID = [data for data, _ in CASES] + [b"t SEARCH " + k for k, _ in KEYS]
VALID += [b"t FETCH 1:* " + item for item, _ in ITEMS]
SAMPLES = VALID + BAD


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=8), st.lists(st.integers(0, 10**6), max_size=20))  # fmt: skip
def test_any_split_parses_identically(commands: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(c + b"\r\n" for c in commands)
    whole = frame_all(Framer(), [stream])
    pieces = frame_all(Framer(), _split(stream, cuts))
    assert pieces == whole
    parsed = [parse_command(e) for e in whole if isinstance(e, RawCommand)]
    assert len(parsed) == len(commands)
    for data, result in zip(commands, parsed, strict=True):
        assert isinstance(result, TaggedCommand) == (data in VALID and data not in BAD)


def _bound(framer: Framer) -> int:
    return framer.max_command_size + framer.max_line_length + 2


tokens = st.sampled_from(
    [b"t", b" ", b"\r\n", b"\n", b"{3}\r\n", b"{2+}\r\n", b"~{4}\r\n", b"{99999}\r\n",
     b"{70+}\r\n", b"{999999999999999}\r\n", b'"', b"\\", b"(", b")", b"[", b"]", b"<", b">",
     b"*", b"%", b"1:*", b"UID", b"FETCH", b"BODY[", b"SEARCH", b"NOT", b"OR", b"APPEND",
     b"LOGIN", b"SELECT", b"&", b"-", b"\x00", b"\xff", b"\xc3", b"NIL", b"x" * 70]
)  # fmt: skip


def _check_stream(framer: Framer, chunks: list[bytes], refuse: bool) -> None:
    for chunk in chunks:
        events: list[FramerEvent] = framer.feed(chunk)
        assert framer.buffered <= _bound(framer)
        while events:
            for event in events:
                if isinstance(event, RawCommand):
                    result = parse_command(event)
                    assert isinstance(result, TaggedCommand | ParseError)
            if isinstance(events[-1], ContinuationRequest):
                events = framer.refuse_literal() if refuse else framer.accept_literal()
                assert framer.buffered <= _bound(framer)
            else:
                events = []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(tokens, st.binary(max_size=30)), max_size=60), st.integers(1, 40), st.booleans())  # fmt: skip
def test_random_input_never_raises_and_stays_bounded(
    pieces: list[bytes], step: int, refuse: bool
) -> None:
    data = b"".join(pieces)
    framer = Framer(max_line_length=64, max_literal_size=80, max_command_size=120, max_skip=500)
    _check_stream(framer, [data[i : i + step] for i in range(0, len(data), step)], refuse)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_parse_without_raising(data: bytes) -> None:
    framer = Framer(max_line_length=100, max_literal_size=50)
    _check_stream(framer, [data], refuse=False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_mutated_commands_never_raise(data: bytes, at: int, insert: bytes) -> None:
    pos = at % (len(data) + 1)
    mutated = data[:pos] + insert + data[pos:]
    for event in frame_all(Framer(), [mutated + b"\r\n"]):
        if isinstance(event, RawCommand):
            assert isinstance(parse_command(event), TaggedCommand | ParseError)
