"""A small blocking raw-socket IMAP client, cheap enough not to be the benchmark's bottleneck.

It reads the socket in large chunks and only scans response lines for literals and the tag, so
that one core of client time stays well under the server's for bulk FETCH.
"""

from __future__ import annotations

import re
import socket
import time

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class ImapError(Exception):
    """A tagged NO/BAD, a closed connection, or a reply that did not come in time."""


class Client:
    """One IMAP session over plain TCP; every read is bounded by C{timeout} seconds."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0
        self.n = 0
        self.received = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting[:100]!r}")

    def _fill(self) -> None:
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ImapError("connection closed")
        self.buf += chunk
        self.received += len(chunk)

    def line(self) -> bytes:
        """One response line without CRLF (literal bytes are skipped, not returned)."""
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                break
            self._fill()
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        while m := _LITERAL.search(line):
            n = int(m.group(1))
            while len(self.buf) - self.pos < n:
                self._fill()
            self.pos += n
            while (end := self.buf.find(b"\r\n", self.pos)) < 0:
                self._fill()
            line = line[: m.start()] + b"{}" + bytes(self.buf[self.pos : end])
            self.pos = end + 2
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, text: str) -> tuple[list[bytes], int]:
        """Send C{text}; return (untagged lines, bytes received). NO/BAD raise L{ImapError}."""
        self.n += 1
        tag = b"b%d " % self.n
        before = self.received
        self.sock.sendall(tag + text.encode() + b"\r\n")
        lines: list[bytes] = []
        while True:
            line = self.line()
            if line.startswith(tag):
                if line[len(tag) : len(tag) + 2] != b"OK":
                    raise ImapError(f"{text[:50]} -> {line[:200]!r}")
                return lines, self.received - before
            lines.append(line)

    def timed(self, text: str) -> tuple[float, list[bytes], int]:
        t = time.perf_counter()
        lines, nbytes = self.command(text)
        return time.perf_counter() - t, lines, nbytes

    def close(self) -> None:
        try:
            self.sock.settimeout(2)
            self.command("LOGOUT")
        except (OSError, ImapError):
            pass
        self.sock.close()


def login(host: str, port: int, user: str, password: str, timeout: float) -> Client:
    c = Client(host, port, timeout)
    c.command(f'LOGIN "{user}" "{password}"')
    return c
