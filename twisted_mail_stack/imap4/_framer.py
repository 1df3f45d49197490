"""
Incremental framing of IMAP client input into whole commands (RFC 3501 2.2, 4.3, 7.5; RFC 7888;
RFC 3516 literal8).

A command is one or more lines; a line that ends in a literal marker C{{n}}, C{{n+}}, C{~{n}} or
C{~{n+}} is followed by exactly n octets and then the rest of the command. The framer hands out a
L{RawCommand} whose C{parts} alternate line text and literal data, so that the parser never sees
a marker or a line end.

Rejections keep the stream in step with the client:

- A synchronising literal over the limit is rejected before the client sends it: the session
  answers the tag with C{NO [TOOBIG]} or C{BAD} (RFC 3501 7.1) instead of C{+} (RFC 3501 7.5),
  so the client sends no octets and the framer simply returns to reading lines.
- A non-synchronising literal over the limit is already on its way (RFC 7888 4: the server
  answers C{BAD [TOOBIG]} and then either reads and drops the octets or closes the connection).
  Since its length is announced the framer skips exactly that many octets and then drops the rest
  of the command, skipping any further non-synchronising literals it announces. Only a count
  above C{max_skip} (which a sane client never sends) makes it give up and ask for the
  connection to be closed (L{Fatal}): skipping gigabytes would only feed an attacker.
- A line longer than C{max_line_length} is dropped up to its line end; the last octets are kept
  to see whether it announced a literal, which is then handled as above.

A literal larger than C{spool_over} octets is not held in memory: the framer writes it, as it
arrives, to a L{LiteralSpool} that the caller's C{spool} factory opens (the session's spool
file), and the command carries the spool in L{RawCommand.spools}. The limits above are unchanged.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Protocol

from attrs import frozen

__all__ = [
    "Framer",
    "RawCommand",
    "ContinuationRequest",
    "Rejected",
    "RejectReason",
    "Fatal",
    "FramerEvent",
    "LITERAL_MINUS_MAX",
    "LiteralSpool",
]

#: RFC 7888 4: with LITERAL-, a non-synchronising literal may carry at most 4096 octets.
LITERAL_MINUS_MAX = 4096

_MARKER = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\r?$")
#: Octets kept from a dropped line: enough for a tag and for a literal marker at its end.
_KEEP = 64
_MAX_DIGITS = 12


class LiteralSpool(Protocol):
    """Where a large literal goes instead of memory (written by the framer, then owned by the
    session, which closes it once the command is done)."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None:
        """Append octets of the literal (called until C{size} octets are written)."""

    def finish(self) -> None:
        """All C{size} octets are written."""

    def read(self) -> bytes:
        """The whole literal (for a command that needs it in memory). May raise L{OSError}."""

    def close(self) -> None:
        """Release the spool (delete its file); harmless twice."""


@frozen
class RawCommand:
    """One command as sent: C{parts[0::2]} are line texts, C{parts[1::2]} literal data."""

    parts: tuple[bytes, ...]
    #: For each literal, whether it was a literal8 (C{~{n}}, RFC 3516).
    binary: tuple[bool, ...] = ()
    #: Empty, or for each literal the spool holding it (its part is then C{b""}), or None.
    spools: tuple[LiteralSpool | None, ...] = ()

    def close_spools(self) -> None:
        """Release the spooled literals (the command was run or dropped)."""
        for spool in self.spools:
            if spool is not None:
                spool.close()

    @property
    def tag(self) -> bytes | None:
        return tag_of(self.parts[0])


@frozen
class ContinuationRequest:
    """
    A synchronising literal of C{size} octets was announced within the limits. The framer is now
    paused: it only buffers input until the session either sends C{+ ...} and calls
    L{Framer.accept_literal}, or answers the tag with NO/BAD and calls L{Framer.refuse_literal}.
    """

    tag: bytes | None
    size: int
    #: The command's first line up to the first marker, so that the session can refuse, say,
    #: an APPEND to a missing mailbox before the client sends the message.
    first_line: bytes = b""


class RejectReason(enum.Enum):
    LITERAL_TOO_BIG = "literal too big"
    LINE_TOO_LONG = "line too long"
    COMMAND_TOO_BIG = "command too big"


@frozen
class Rejected:
    """A command was dropped; answer C{tag} (or C{*} when None) with BAD, or NO [TOOBIG]."""

    tag: bytes | None
    reason: RejectReason
    #: The announced literal size, for LITERAL_TOO_BIG.
    size: int = 0
    #: True if the client waits for our answer (synchronising literal) and sends nothing more.
    synchronising: bool = False


@frozen
class Fatal:
    """The framer cannot stay in step with the client: say BYE and close the connection."""

    reason: str


FramerEvent = RawCommand | ContinuationRequest | Rejected | Fatal

_TAG = re.compile(rb"[\x21-\x7e]+")
_TAG_FORBIDDEN = frozenset(b'(){%*"\\+')


def tag_of(line: bytes) -> bytes | None:
    """The tag at the start of C{line}, or None if it does not start with a valid tag (RFC 3501 9)."""
    tag = line.split(b" ", 1)[0]
    if not tag or not _TAG.fullmatch(tag) or any(c in _TAG_FORBIDDEN for c in tag):
        return None
    return tag


class _State(enum.Enum):
    LINE = 0
    LITERAL = 1
    DISCARD_LINE = 2
    SKIP = 3
    CLOSED = 4


class Framer:
    """
    Feed bytes, get L{FramerEvent}s. Between calls it holds at most
    C{max_command_size + max_line_length + 2} octets, whatever the input.
    """

    def __init__(
        self,
        *,
        max_line_length: int = 65536,
        max_literal_size: int = 64 * 1024 * 1024,
        max_command_size: int | None = None,
        literal_minus: bool = False,
        max_skip: int = 1024 * 1024 * 1024,
        spool: Callable[[int], LiteralSpool] | None = None,
        spool_over: int = 64 * 1024,
    ) -> None:
        self.max_line_length = max_line_length
        self.max_literal_size = max_literal_size
        self.max_command_size = (
            max_command_size if max_command_size is not None else max_literal_size + 1024 * 1024
        )
        self.literal_minus = literal_minus
        self.max_skip = max_skip
        self.spool = spool
        self.spool_over = spool_over
        self._buffer = bytearray()
        self._state = _State.LINE
        self._parts: list[bytes] = []
        self._binary: list[bool] = []
        self._spools: list[LiteralSpool | None] = []
        #: The literal being written to a spool, and how many of its octets are still to come.
        self._spooling: LiteralSpool | None = None
        self._remaining = 0
        self._held = 0
        #: Octets of C{_held} that are in spools, not in memory.
        self._spooled = 0
        self._literal_size = 0
        self._skip = 0
        self._tail = b""
        self._paused = False

    @property
    def buffered(self) -> int:
        """Octets held in memory: unparsed input plus the parts of the command being collected."""
        return len(self._buffer) + self._held - self._spooled

    def accept_literal(self) -> list[FramerEvent]:
        """The session sent C{+} for the pending L{ContinuationRequest}: go on reading."""
        self._paused = False
        return self.feed(b"")

    def refuse_literal(self) -> list[FramerEvent]:
        """
        The session answered a L{ContinuationRequest} with NO/BAD instead of C{+}: the client
        will not send the literal, so drop the command and read lines again.
        """
        if self._paused:
            self._paused = False
            self._reset()
        return self.feed(b"")

    def abort(self) -> None:
        """The connection is gone (or the framer replaced): release the spools of a partial command."""
        self._reset()

    def feed(self, data: bytes) -> list[FramerEvent]:
        if self._state is _State.CLOSED:
            return []
        self._buffer += data
        if self._paused:
            # RFC 3501 7.5: the client must wait for "+". Tolerate an impatient client that
            # sends the literal anyway, within the literal's size and one line.
            if len(self._buffer) > self._literal_size + self.max_line_length + 2:
                self._close()
                return [Fatal("data sent before the continuation request was answered")]
            return []
        events: list[FramerEvent] = []
        while self._step(events):
            pass
        return events

    # -- the state machine ---------------------------------------------------------------

    def _step(self, events: list[FramerEvent]) -> bool:
        state = self._state
        if state is _State.LINE:
            return self._read_line(events)
        if state is _State.LITERAL:
            return self._read_literal(events)
        if state is _State.SKIP:
            return self._skip_octets()
        if state is _State.DISCARD_LINE:
            return self._discard_line(events)
        return False

    def _reset(self) -> None:
        self._state = _State.LINE
        self._drop()
        self._paused = False

    def _drop(self) -> None:
        """Forget the command being collected, releasing its spools."""
        for spool in [*self._spools, self._spooling]:
            if spool is not None:
                spool.close()
        self._parts, self._binary, self._spools, self._spooling = [], [], [], None
        self._held = self._spooled = 0

    def _close(self) -> None:
        self._reset()
        self._state = _State.CLOSED
        del self._buffer[:]

    def _current_tag(self, line: bytes) -> bytes | None:
        return tag_of(self._parts[0] if self._parts else line)

    def _read_line(self, events: list[FramerEvent]) -> bool:
        end = self._buffer.find(b"\n", 0, self.max_line_length + 2)
        if end < 0:
            if len(self._buffer) > self.max_line_length + 1:
                line = bytes(self._buffer[:_KEEP])
                # A tag cut off by _KEEP is no tag.
                tag = self._current_tag(line) if self._parts or b" " in line else None
                events.append(Rejected(tag, RejectReason.LINE_TOO_LONG))
                self._drop()
                self._tail = b""
                self._state = _State.DISCARD_LINE
                return True
            return False
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line_length:
            events.append(Rejected(self._current_tag(line), RejectReason.LINE_TOO_LONG))
            self._drop()
            return self._after_dropped_line(line, events)
        match = _MARKER.search(line) if line.endswith(b"}") else None
        if match is None:
            if self._held + len(line) > self.max_command_size:
                events.append(Rejected(self._current_tag(line), RejectReason.COMMAND_TOO_BIG))
                self._reset()
                return True
            self._parts.append(line)
            spools = tuple(self._spools) if any(s is not None for s in self._spools) else ()
            events.append(RawCommand(tuple(self._parts), tuple(self._binary), spools))
            self._spools = []  # the command owns them now
            self._reset()
            return True
        text = line[: match.start()]
        digits, sync = match.group(2), not match.group(3)
        size = int(digits) if len(digits) <= _MAX_DIGITS else 1 << 62
        limit = self.max_literal_size
        if not sync and self.literal_minus:
            limit = min(limit, LITERAL_MINUS_MAX)
        if size > limit or self._held + len(text) + size > self.max_command_size:
            events.append(
                Rejected(
                    self._current_tag(text), RejectReason.LITERAL_TOO_BIG, size, synchronising=sync
                )
            )
            self._drop()
            if sync:
                self._reset()
                return True
            return self._start_skip(size, events)
        self._parts.append(text)
        self._binary.append(bool(match.group(1)))
        self._held += len(text)
        self._literal_size = size
        self._remaining = size
        self._state = _State.LITERAL
        if sync:
            # Stop here: the session answers before anything after the marker is read.
            events.append(ContinuationRequest(self._current_tag(text), size, self._parts[0]))
            self._paused = True
            return False
        return True

    def _read_literal(self, events: list[FramerEvent]) -> bool:
        size = self._literal_size
        if self.spool is not None and size > self.spool_over:
            return self._spool_literal()
        if len(self._buffer) < size:
            return False
        self._parts.append(bytes(self._buffer[:size]))
        self._spools.append(None)
        del self._buffer[:size]
        self._held += size
        self._state = _State.LINE
        return True

    def _spool_literal(self) -> bool:
        """Pass what has come of a large literal to its spool: memory stays bounded."""
        spool = self._spooling
        if spool is None:
            assert self.spool is not None
            spool = self._spooling = self.spool(self._literal_size)
        n = min(self._remaining, len(self._buffer))
        if n:
            spool.write(bytes(self._buffer[:n]))
            del self._buffer[:n]
            self._remaining -= n
        if self._remaining:
            return False
        spool.finish()
        self._parts.append(b"")
        self._spools.append(spool)
        self._spooling = None
        self._held += self._literal_size
        self._spooled += self._literal_size
        self._state = _State.LINE
        return True

    def _start_skip(self, size: int, events: list[FramerEvent]) -> bool:
        if size > self.max_skip:
            events.append(Fatal(f"non-synchronising literal of {size} octets"))
            self._close()
            return False
        self._skip = size
        self._state = _State.SKIP
        return True

    def _skip_octets(self) -> bool:
        n = min(self._skip, len(self._buffer))
        del self._buffer[:n]
        self._skip -= n
        if self._skip:
            return False
        self._tail = b""
        self._state = _State.DISCARD_LINE
        return True

    def _discard_line(self, events: list[FramerEvent]) -> bool:
        end = self._buffer.find(b"\n")
        if end < 0:
            self._tail = (self._tail + bytes(self._buffer[-_KEEP:]))[-_KEEP:]
            del self._buffer[:]
            return False
        line = (self._tail + bytes(self._buffer[max(0, end - _KEEP) : end]))[-_KEEP:]
        del self._buffer[: end + 1]
        return self._after_dropped_line(line, events)

    def _after_dropped_line(self, line: bytes, events: list[FramerEvent]) -> bool:
        """The rest of a rejected command: follow its non-synchronising literals, if any."""
        self._tail = b""
        match = _MARKER.search(line)
        if match is None or not match.group(3):
            # No literal, or a synchronising one for which the client now waits in vain.
            self._reset()
            return True
        digits = match.group(2)
        return self._start_skip(int(digits) if len(digits) <= _MAX_DIGITS else 1 << 62, events)
