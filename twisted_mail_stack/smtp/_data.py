"""
Message bodies without I/O: DATA's end detection and dot-unstuffing (RFC 5321 4.1.1.4, 4.5.2),
and the checks both DATA and BDAT (RFC 3030) apply while streaming the body to a sink.

Against SMTP smuggling, DATA ends only at C{<CRLF>.<CRLF>}; a bare LF or CR anywhere is
recorded (and the message refused) or rewritten as CRLF, by policy, so that no other reading of
the stream can find a second message inside. No Twisted here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

__all__ = ["BareLinePolicy", "BodySink", "DataReader"]

_END = b"\r\n.\r\n"
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class BareLinePolicy(enum.Enum):
    """What to do with a bare CR or LF in a message body."""

    #: Refuse the message at its end (the default).
    REJECT = "reject"
    #: Rewrite each bare CR or LF as CRLF.
    NORMALISE = "normalise"


class BodySink:
    """
    Checks a body as it streams by and passes it to C{write}.

    Counts its size (and stops writing once over C{max_size}: the message will be refused),
    spots bare CR/LF and lines longer than C{max_line} octets with their CRLF (0: no limit).
    Pieces must never end in a CR whose LF is in the next piece; L{DataReader} guarantees it,
    and L{feed_chunk} holds such a CR back for BDAT.
    """

    def __init__(
        self,
        write: Callable[[bytes], object],
        max_size: int,
        max_line: int = 1000,
        bare: BareLinePolicy = BareLinePolicy.REJECT,
    ) -> None:
        self._write = write
        self.max_size = max_size
        self.max_line = max_line
        self.bare_policy = bare
        self.size = 0
        self.too_big = False
        self.bare_line_end = False
        self.line_too_long = False
        self._line = 0  # length of the current unfinished line
        self._held = b""  # a CR at the end of a BDAT chunk

    def feed(self, piece: bytes) -> None:
        if not piece:
            return
        crlf = piece.count(b"\r\n")
        if piece.count(b"\n") != crlf or piece.count(b"\r") != crlf:
            if self.bare_policy is BareLinePolicy.NORMALISE:
                piece = _LINE_ENDS.sub(b"\r\n", piece)
            else:
                self.bare_line_end = True
        if self.max_line and not self.line_too_long:
            self._check_lines(piece)
        self.size += len(piece)
        if self.size > self.max_size:
            self.too_big = True
        if not self.too_big:
            self._write(piece)

    def _check_lines(self, piece: bytes) -> None:
        # Lines counted with their CRLF: RFC 5321 4.5.3.1.6 (1000 octets).
        first = piece.find(b"\n")
        if first < 0:
            self._line += len(piece)
        else:
            longest = self._line + first + 1
            last = piece.rfind(b"\n")
            if last > first and len(piece) > self.max_line:
                longest = max(longest, max(map(len, piece[first + 1 : last].split(b"\n"))) + 1)
            self._line = len(piece) - last - 1
            if longest > self.max_line:
                self.line_too_long = True
        if self._line > self.max_line:
            self.line_too_long = True

    def feed_chunk(self, data: bytes, last: bool) -> None:
        """Feed BDAT data: a CR at the end of a chunk waits for the next one."""
        data = self._held + data
        self._held = b""
        if data.endswith(b"\r") and not last:
            data, self._held = data[:-1], b"\r"
        self.feed(data)

    @property
    def refused(self) -> bool:
        return self.too_big or self.bare_line_end or self.line_too_long


class DataReader:
    """
    Reads DATA's body: feed it what the client sends; it unstuffs dots and passes the body to
    a L{BodySink} until C{<CRLF>.<CRLF>}. The final CRLF belongs to the message
    (RFC 5321 4.1.1.4).
    """

    def __init__(self, sink: BodySink) -> None:
        self._sink = sink
        # The body starts at the start of a line, as if a CRLF preceded it; those two bytes
        # are never passed on (see _skip).
        self._buf = b"\r\n"
        self._skip = 2
        self.done = False

    def feed(self, data: bytes) -> bytes | None:
        """
        Take more of the stream. Returns None while the body goes on, else the bytes after the
        terminator (pipelined commands).
        """
        buf = self._buf + data if self._buf else data
        start = 0  # start of what has not been passed on
        search = 0
        while True:
            i = buf.find(b"\r\n.", search)
            if i < 0:
                break
            after = buf[i + 3 : i + 5]
            if after == b"\r\n":
                self._emit(buf, start, i + 2)
                self.done = True
                self._buf = b""
                return buf[i + 5 :]
            if len(after) < 2 and _END[3 : 3 + len(after)] == after:
                # Maybe the terminator: wait for more.
                self._emit(buf, start, i)
                self._buf = buf[i:]
                return None
            # A line starting with a dot: drop the dot (transparency, RFC 5321 4.5.2).
            self._emit(buf, start, i + 2)
            start = search = i + 3
        # Hold back a tail that may begin "\r\n.".
        keep = 2 if buf.endswith(b"\r\n") else 1 if buf.endswith(b"\r") else 0
        end = len(buf) - keep
        if end < start:
            end = start
        self._emit(buf, start, end)
        self._buf = buf[end:]
        return None

    def _emit(self, buf: bytes, start: int, end: int) -> None:
        if self._skip:
            taken = min(self._skip, end - start)
            start += taken
            self._skip -= taken
        if end > start:
            self._sink.feed(buf[start:end])
