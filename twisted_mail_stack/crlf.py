"""
Line ends for the wire: stored messages may use bare LF (as MTAs and Maildir writers often do),
while POP3 and IMAP send CRLF (RFC 5322 2.3, RFC 1939 3). No I/O, no Twisted.
"""

from __future__ import annotations

__all__ = ["CRLFNormaliser"]


class CRLFNormaliser:
    """
    Turn a message, fed in chunks of any size, into its canonical form: every bare LF becomes
    CRLF, CRLF and a CR inside a line pass unchanged, and a final line without a line end gets
    CRLF (a message ending in a lone CR gets its LF). C{count} is the length of the canonical
    form emitted so far; after L{end} it is the message's canonical size.
    """

    def __init__(self) -> None:
        self._held_cr = False  # the last chunk ended in CR: it may pair with the next LF
        self._line_open = False  # bytes were emitted since the last line end
        self.count = 0

    def feed(self, data: bytes) -> bytes:
        """Return the canonical form of C{data}, the next bytes of the message."""
        if self._held_cr:
            data = b"\r" + data
            self._held_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._held_cr = True
        if not data:
            return b""
        newlines = data.count(b"\n")
        if newlines and newlines != data.count(b"\r\n"):
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self._line_open = not data.endswith(b"\n")
        self.count += len(data)
        return data

    def end(self) -> bytes:
        """Return what completes the message: nothing, or the CRLF its last line lacks."""
        tail = b"\r\n" if self._held_cr or self._line_open else b""
        self._held_cr = self._line_open = False
        self.count += len(tail)
        return tail
