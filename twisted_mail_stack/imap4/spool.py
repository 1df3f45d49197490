"""
Spool files for large IMAP literals (an APPENDed message): the framer writes the literal here as
it arrives, so a session holds no more than a read buffer of it in memory, and the store then
links or copies the file (it is an L{IMessageSource} with a C{path}).

Written from the reactor thread, like the SMTP spool: plain writes land in the page cache and
the store's fsync makes the message durable. A write error (disk full) is kept, later writes are
dropped and the command using the literal is refused.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import BinaryIO

from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IMessageSource

__all__ = ["LiteralFile", "remove_stale"]

_log = Logger()
_PREFIX = "imap-literal-"
#: Age after which a spool file can only be a leftover of a crash (the Maildir tmp convention).
STALE_AGE = 36 * 3600


def remove_stale(directory: str, now: float | None = None) -> int:
    """Delete spool files that a crashed server left in C{directory}; return how many."""
    limit = (time.time() if now is None else now) - STALE_AGE
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.name.startswith(_PREFIX) and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed


@implementer(IMessageSource)
class LiteralFile:
    """One literal of C{size} octets in a file of C{directory}, deleted by L{close}."""

    def __init__(self, directory: str, size: int) -> None:
        self.size = size
        self.path: str | None = None
        self.error: OSError | None = None
        self._file: BinaryIO | None = None
        self._closed = False
        try:
            fd, self.path = tempfile.mkstemp(prefix=_PREFIX, dir=directory)
            self._file = os.fdopen(fd, "wb")
        except OSError as e:
            self._failed(e)

    def _failed(self, error: OSError) -> None:
        _log.error(
            "cannot write IMAP literal spool file in {path}: {error}", path=self.path, error=error
        )
        self.error = self.error or error
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as e:
                self.error = self.error or e
            self._file = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
        except OSError as e:
            self._failed(e)

    def finish(self) -> None:
        self._close_file()

    def open(self) -> BinaryIO:
        if self.error is not None or self.path is None or self._closed:
            raise OSError("the literal's spool file is not usable")
        return open(self.path, "rb")

    def read(self) -> bytes:
        with self.open() as f:
            return f.read()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_file()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                _log.error("cannot remove spool file {path}: {error}", path=self.path, error=e)
