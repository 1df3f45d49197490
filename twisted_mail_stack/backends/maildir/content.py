"""Open message contents and maildrop locks: both hold a file descriptor until released."""

from __future__ import annotations

import fcntl
import os

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from ...errors import MailboxInUse, NoSuchMailbox
from ...interfaces import IMaildropLock, IMessageContent
from .layout import POP3_LOCK_FILE
from .worker import Worker


@implementer(IMessageContent)
class MaildirContent:
    """
    A message file kept open, so it stays readable after an expunge unlinks it (POSIX keeps
    an unlinked file while it is open). Reads run in the thread pool.
    """

    def __init__(self, worker: Worker, fd: int, size: int) -> None:
        self._worker = worker
        self._fd: int | None = fd
        self.size = size

    def read(self, offset: int, length: int) -> Deferred[bytes]:
        length = min(length, self.size - offset)
        if self._fd is None or length <= 0:
            return succeed(b"")
        return Deferred.fromCoroutine(self._worker.run(os.pread, self._fd, length, offset))

    def close(self) -> Deferred[None]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return succeed(None)


def read_file(folder: str, path: str, size: int) -> bytes:
    """The first C{size} bytes of message file C{path} of C{folder} (fewer if it is shorter)."""
    fd = os.open(os.path.join(folder, path), os.O_RDONLY)
    try:
        data = os.read(fd, size)
        while len(data) < size:  # a regular file reads short only at its end, but be sure
            more = os.read(fd, size - len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


@implementer(IMaildropLock)
class MaildropLock:
    """
    An exclusive C{flock} of the folder's C{mailstack-pop3.lock}. C{flock} locks belong to an
    open file, so a second lock in the same process conflicts like one in another process, and
    the kernel drops the lock when the holder dies.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, folder: str, name: str) -> MaildropLock:
        """Take the lock of folder C{name} at C{folder}, or fail with L{MailboxInUse}. Blocking."""
        if not os.path.isdir(os.path.join(folder, "cur")):
            raise NoSuchMailbox(name)
        fd = os.open(os.path.join(folder, POP3_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MailboxInUse(name) from None
        return cls(fd)

    def release(self) -> Deferred[None]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return succeed(None)
