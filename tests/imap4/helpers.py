"""Shared helpers for the IMAP wire tests: frame and parse whole byte streams."""

from __future__ import annotations

from twisted_mail_stack.imap4._commands import Command, TaggedCommand
from twisted_mail_stack.imap4._framer import (
    ContinuationRequest,
    Framer,
    FramerEvent,
    RawCommand,
)
from twisted_mail_stack.imap4._parser import ParseError, parse_command


def frame_all(framer: Framer, chunks: list[bytes]) -> list[FramerEvent]:
    """Feed C{chunks}, answering every continuation request as a session sending C{+} would."""
    events: list[FramerEvent] = []
    for chunk in chunks:
        new = framer.feed(chunk)
        while new:
            events += new
            new = framer.accept_literal() if isinstance(new[-1], ContinuationRequest) else []
    return events


def raw(data: bytes) -> RawCommand:
    """Exactly one command from C{data} and a line end."""
    commands = [e for e in frame_all(Framer(), [data + b"\r\n"]) if isinstance(e, RawCommand)]
    assert len(commands) == 1, commands
    return commands[0]


def parse(data: bytes) -> TaggedCommand | ParseError:
    return parse_command(raw(data))


def command(data: bytes) -> Command:
    """The command of C{data}, which must parse; the tag must be C{t}."""
    result = parse(data)
    assert isinstance(result, TaggedCommand), result
    assert result.tag == "t"
    return result.command


def error(data: bytes) -> ParseError:
    result = parse(data)
    assert isinstance(result, ParseError), result
    return result
