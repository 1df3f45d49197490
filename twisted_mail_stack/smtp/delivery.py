"""
From an accepted transaction to durable copies: the spool file, trace headers, local delivery
into the store and remote recipients into the queue, all or nothing.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import BinaryIO

from attrs import frozen
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import AccountExists, NoSuchAccount
from ..interfaces import IDeliveryQueue, IMailStore, IMessageSource
from ..sources import BytesSource, FileSource
from ..values import INBOX, Envelope, MessageInfo

__all__ = ["Spool", "SliceSource", "new_queue_id", "received_header", "deliver"]

_log = Logger()


#: Queue ids need to be unique, not secret: a fast generator, seeded from the system's, and
#: seeded again in a forked child so that parent and child never draw the same ids.
_random = random.Random(secrets.randbits(128))
os.register_at_fork(after_in_child=lambda: _random.seed(secrets.randbits(128)))


def new_queue_id(seconds: float) -> str:
    """A queue id: the time in milliseconds (sortable) and 48 random bits, in hex."""
    return f"{int(seconds * 1000):011X}{_random.getrandbits(48):012X}"


class Spool:
    """
    One message being received: in memory while it is at most C{in_memory} bytes, then in a
    file of C{directory} (on the same file system as the store and queue, so that they can
    hard-link it). Written from the reactor thread: plain writes land in the page cache; the
    fsync is left to whoever makes the copy durable, and a small message is written to disk
    only once, by the store.
    """

    def __init__(self, directory: str, name: str, in_memory: int = 64 * 1024) -> None:
        self.path = os.path.join(directory, name)
        self.in_memory = in_memory
        self._parts: list[bytes] | None = []
        self._data: bytes | None = None
        self._file: BinaryIO | None = None
        self.size = 0
        #: The first write error (disk full...): later writes are dropped, the message refused.
        self.error: OSError | None = None

    @property
    def in_file(self) -> bool:
        """Whether the message went to the spool file (it outgrew memory)."""
        return self._parts is None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.error is not None:
            return
        parts = self._parts
        if parts is not None:
            parts.append(data)
            if self.size <= self.in_memory:
                return
            self._parts = None
            data = b"".join(parts)
            try:
                self._file = open(self.path, "xb")
            except OSError as e:
                self._failed(e)
                return
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as e:
                self._failed(e)

    def _failed(self, error: OSError) -> None:
        _log.error("cannot write spool file {path}: {error}", path=self.path, error=error)
        self.error = error

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as e:
                self.error = self.error or e
            self._file = None

    def source(self, offset: int = 0) -> IMessageSource:
        """The message from byte C{offset} on, once closed."""
        if self._parts is not None:
            if self._data is None:
                self._data = b"".join(self._parts)
                self._parts = [self._data]
            return BytesSource(self._data[offset:] if offset else self._data)
        if offset:
            return SliceSource(self.path, offset, self.size - offset)
        return FileSource(self.path, self.size)

    def discard(self) -> None:
        """Drop the message; blocking if it is in a file (see L{in_file})."""
        self.close()
        if self._parts is not None:
            self._parts, self._data = [], None
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@implementer(IMessageSource)
@frozen
class SliceSource:
    """The bytes of a file from C{offset} to its end (the spool file without Return-Path)."""

    file: str
    offset: int
    size: int
    path: None = None

    def open(self) -> BinaryIO:
        f = open(self.file, "rb")
        f.seek(self.offset)
        return f


def received_header(
    *,
    helo: str | None,
    client: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    tls: str | None,
    user: str | None,
    recipient: str | None,
    when: float,
) -> bytes:
    """
    The Received: trace field of RFC 5321 4.4, C{with} one of RFC 3848's protocol names.

    The recipient is named only for a single-recipient message, so that a Bcc is not revealed.
    """
    lines = [f"Received: from {helo or 'unknown'} ({client})"]
    lines.append(f"\tby {hostname} (twisted-mail-stack) with {protocol} id {queue_id}")
    if tls:
        lines.append(f"\t({tls})")
    if user:
        lines.append(f"\t(authenticated as {user})")
    date = format_datetime(datetime.fromtimestamp(when, UTC))
    if recipient:
        lines.append(f"\tfor <{recipient}>; {date}")
    else:
        lines[-1] += f"; {date}"
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


async def deliver(
    store: IMailStore,
    queue: IDeliveryQueue,
    queue_id: str,
    users: Sequence[str],
    envelope: Envelope,
    local: IMessageSource,
    remote: IMessageSource,
    internal_date: datetime | None = None,
) -> None:
    """
    Deliver to local C{users} from C{local} and queue C{envelope}'s recipients from C{remote};
    either every copy is durable when this returns, or it raises and none is left.
    """
    infos: dict[str, MessageInfo] = {}
    if users:
        infos = await _deliver_local(store, users, local, internal_date)
    if envelope.recipients:
        try:
            await queue.enqueue(queue_id, envelope, remote)
        except BaseException:
            await _take_back(store, infos)
            raise


async def _deliver_local(
    store: IMailStore,
    users: Sequence[str],
    source: IMessageSource,
    internal_date: datetime | None,
) -> dict[str, MessageInfo]:
    # A user of the password file may have no account in the store yet: create it and retry.
    for _ in range(len(users) + 1):
        try:
            return dict(await store.deliver(users, source, internal_date))
        except NoSuchAccount as e:
            missing = str(e.args[0]) if e.args else ""
            if missing not in users:
                raise
            try:
                await store.create_account(missing)
            except AccountExists:
                pass
    raise NoSuchAccount("accounts could not be created")


async def _take_back(store: IMailStore, infos: dict[str, MessageInfo]) -> None:
    """Remove copies already delivered (best effort: a failure here is logged)."""
    for user, info in infos.items():
        try:
            account = await store.open_account(user)
            try:
                mailbox = await account.open_mailbox(INBOX)
                try:
                    await mailbox.remove([info.uid])
                finally:
                    await mailbox.close()
            finally:
                await account.close()
        except Exception:
            _log.failure("could not take back the copy delivered to {user}", user=user)
